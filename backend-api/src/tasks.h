/* tasks: the /api/v1 handlers. Each parses and validates its input, calls the store
 * and replies; it returns the HTTP status it sent. server.c has already matched the
 * route, checked the method, authenticated the user and validated X-Client-Id. */
#ifndef BA_TASKS_H
#define BA_TASKS_H

#include "config.h"
#include "db.h"
#include "outbox.h"

#include <jansson.h>

struct mg_connection;

/* What handlers share; read-only after start. */
typedef struct api_ctx {
	const ba_config *cfg;
	db_pool *pool;
	outbox_relay *relay;
	metrics *m;
} api_ctx;

/* One request. @locality the civetweb worker thread serving it. */
typedef struct api_req {
	struct mg_connection *c;
	const api_ctx *ctx;
	const char *user;   /* authenticated user id ("" on public routes) */
	int64_t token_exp;  /* the session token's exp (seconds since the epoch), or 0 */
	const char *id;     /* the {id} path segment, or NULL */
	const char *origin; /* X-Client-Id, or NULL */
	const char *cors;   /* CORS header lines for every reply ("" when none) */
} api_req;

typedef int (*api_fn)(api_req *r);

int tasks_list(api_req *r);
int tasks_create(api_req *r);
int tasks_get(api_req *r);
int tasks_patch(api_req *r);
int tasks_delete(api_req *r);
int tasks_reorder(api_req *r);
/* POST /api/v1/tasks/{id}/move; r->id is the path from the id on ("<id>/move"). */
int tasks_move(api_req *r);
int tasks_events(api_req *r);
int tasks_dev_login(api_req *r);
/* POST /api/v1/ws-ticket: a single-use WebSocket ticket for this session
 * (common/auth.h), so the session token never goes into a URL. */
int tasks_ws_ticket(api_req *r);

/* The scope of a task request (task_store.h) with its strings. */
#include "task_store.h"
typedef struct api_scope_buf {
	ts_scope sc;
	char id[UUID_STR_LEN];
	char ns[UUID_STR_LEN + 1];
} api_scope_buf;
/* The scope of list list_id for r->user ("" or NULL, or the user's default list's
 * id: the default list). */
void api_scope(api_req *r, const char *list_id, api_scope_buf *b);
/* 404 not_found "no such list (or you are not one of its members)". */
int api_no_list(api_req *r);
/* 403 forbidden with the message what. */
int api_forbidden(api_req *r, const char *what);

/* What the list handlers (lists.c) share with the task handlers: the per-user rate
 * limit (0, or the 429 sent), the JSON object body (0 with *out, or the error
 * sent), unknown fields (0, or the 422 sent), the 503, and giving a pooled
 * connection back (counting a TS_DB). */
int api_throttle(api_req *r);
int api_read_json(api_req *r, json_t **out);
int api_check_keys(api_req *r, json_t *o, const char *const *allowed);
int api_unavailable(api_req *r);
void api_release(api_req *r, db_conn *dc, int rc);

/* Replies: both add r->cors. extra is NULL or complete header lines. */
int api_json(api_req *r, int status, json_t *body, const char *extra);
/* {"error":{"code","message"[,"field"]}[, top_extra members]}; top_extra stolen. */
int api_error(api_req *r, int status, const char *code, const char *field, const char *extra,
              json_t *top_extra, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

#endif
