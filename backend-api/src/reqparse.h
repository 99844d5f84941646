/* reqparse: the pure checks of what a request to /api/v1 carries (query
 * parameters, headers, the JSON bodies' shapes), apart from the handlers' I/O so
 * each can be unit-tested and fuzzed without a server (tests/fuzz/). tasks.c maps
 * each result to its reply. No function here allocates more than its input bounds. */
#ifndef BA_REQPARSE_H
#define BA_REQPARSE_H

#include "common/poskey.h"
#include "common/util.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The list cursor: this prefix and the position key to continue after. Opaque to
 * clients (the README says so); the prefix versions it. */
#define RQ_CURSOR_PREFIX "k1."
#define RQ_CURSOR_BUF    (sizeof(RQ_CURSOR_PREFIX) + POSKEY_BUF)
#define RQ_IDEM_KEY_MAX  128

/* A non-negative decimal integer of at most 18 digits; -1 otherwise. */
int64_t rq_count(const char *s);
/* The query's "limit" into *out: def when absent; 0, or -1 when it is not an
 * integer in 1..max. query may be NULL. */
MUST_CHECK int rq_limit(const char *query, long def, long max, long *out);
/* The query's "since" (required) into *out; 0, or -1 when absent or not a count. */
MUST_CHECK int rq_since(const char *query, int64_t *out);
/* The query's "cursor": *after is NULL when absent, else the position key to
 * continue after (inside buf, RQ_CURSOR_BUF bytes). 0, or -1 when it is not a
 * cursor this API returned. */
MUST_CHECK int rq_cursor(const char *query, char buf[RQ_CURSOR_BUF], const char **after);
/* The query's "list_id" (lower-cased into buf): 0 with buf "" when absent, 0 with
 * the id, or -1 when it is not a UUID. */
MUST_CHECK int rq_list_id(const char *query, char buf[UUID_STR_LEN]);
/* A list name: a string of 1..RQ_LIST_NAME_MAX characters, not only blanks. */
#define RQ_LIST_NAME_MAX 200
int rq_list_name_valid(const json_t *v);
/* A member role: "editor" or "viewer" (the owner's role moves by a transfer). */
int rq_member_role_valid(const char *role);
/* The rest of a /api/v1/lists/{rest} path split: the list id (lower-cased into id),
 * then *sub: "" (the list), "members", "members/<user>" (user into user), "owner",
 * "presence-ticket".
 * 0, or -1 when it is none of these. */
enum { RQ_LIST_SELF, RQ_LIST_MEMBERS, RQ_LIST_MEMBER, RQ_LIST_OWNER, RQ_LIST_PRESENCE };
MUST_CHECK int rq_list_path(const char *rest, char id[UUID_STR_LEN], int *sub,
                            char user[USER_ID_MAX + 1]);

/* If-Match: 3, "3" or W/"3" -> 3; NULL or * -> -1; anything else INT64_MAX (never
 * matches a version). */
int64_t rq_if_match(const char *h);
/* 1 when key is an acceptable Idempotency-Key (1..RQ_IDEM_KEY_MAX of A-Z a-z 0-9
 * . _ : -), else 0. */
int rq_idem_key_valid(const char *key);
/* Lower-cases s in place (ASCII). */
void rq_lower(char *s);

/* The first key of object o not in allowed (NULL-terminated), or NULL. */
const char *rq_unknown_key(const json_t *o, const char *const *allowed);
/* Validates the task fields of body o as task id would carry them (the shared
 * contract, event_validate_task). 0, or -1 with the field's name (static) in
 * *field and a reason in why. */
MUST_CHECK int rq_task_fields(const json_t *o, const char *id, int require_title,
                              const char **field, char *why, size_t whylen);
/* PATCH's optional base_version into *base (-1 when absent); 0, or -1 when it is
 * not an integer >= 1. */
MUST_CHECK int rq_base_version(const json_t *o, int64_t *base);

/* The {id} of POST /api/v1/tasks/{id}/move from the path's rest "<id>/move",
 * lower-cased into id; 0, or -1 when it is not a task id. */
MUST_CHECK int rq_move_id(const char *rest, char id[UUID_STR_LEN]);

enum {
	RQ_MOVE_SHAPE = -1,  /* not exactly one of before / after */
	RQ_MOVE_ANCHOR = -2, /* the anchor is neither a task id nor null */
};
/* The move body: exactly one of {"before": id|null} or {"after": id|null}.
 * *field is "before" or "after" (also on RQ_MOVE_ANCHOR), *after whether it is
 * "after", *has_anchor whether an id was given (lower-cased into anchor). 0 or
 * a negative RQ_MOVE_*. */
MUST_CHECK int rq_move_body(const json_t *b, const char **field, int *after, int *has_anchor,
                            char anchor[UUID_STR_LEN]);

enum {
	RQ_ORDER_NOT_ARRAY = -1, /* "order" is not an array */
	RQ_ORDER_TOO_LONG = -2,  /* more than TASK_ORDER_MAX ids */
	RQ_ORDER_BAD_ID = -3,    /* order[*bad] is not a task id */
};
/* The reorder body's "order": the task ids, lower-cased, in *ids (one allocation
 * holding the pointers and the strings, NULL-terminated; caller frees) and their
 * count in *n. 0 or a negative RQ_ORDER_* (*ids NULL). The count is checked before
 * anything is allocated. */
MUST_CHECK int rq_order_body(const json_t *b, const char ***ids, size_t *n, size_t *bad);

#endif
