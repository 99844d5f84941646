/* task_store: every SQL statement of backend-api.
 *
 * Each mutation is ONE transaction: take the user's next seq (which locks the
 * user's counter row and so serialises that user's writes), change tasks, insert
 * the event into the outbox, commit. The relay (outbox.h) reads the committed
 * outbox rows from PostgreSQL's WAL. Statements are prepared once per connection
 * (ts_prepare, the pool's on_connect hook).
 *
 * Every function takes a connection the caller holds exclusively and leaves it idle
 * (outside a transaction) or broken; results are TS_* codes. */
#ifndef BA_TASK_STORE_H
#define BA_TASK_STORE_H

#include "common/event.h"
#include "common/poskey.h"
#include "common/util.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

enum {
	TS_OK = 0,
	TS_NOT_FOUND = -1,   /* no such task for this user */
	TS_CONFLICT = -2,    /* create: the id vanished between the insert and the read */
	TS_STALE = -3,       /* update: If-Match does not match; *out is the current task */
	TS_INVALID = -4,     /* move: relative to itself */
	TS_GONE = -5,        /* events: since is older than what is retained */
	TS_DB = -6,          /* database error or unreachable: answer 503 */
	TS_QUOTA = -7,       /* create: the user has max_tasks tasks */
	TS_NO_ANCHOR = -8,   /* move: the before/after task does not exist */
	TS_EXHAUSTED = -9,   /* move: no key of at most POSKEY_MAX bytes fits the gap */
	TS_TOO_MANY = -10,   /* reorder: the user has more than TASK_ORDER_MAX tasks */
	TS_TOO_LARGE = -11,  /* the event would exceed EVENT_MAX_BYTES (cannot happen
	                        within the field bounds; a guard) */
	TS_DELETED = -12,    /* the task was deleted (a tombstone): delete wins, answer 410 */
	TS_KEY_REUSED = -13, /* the Idempotency-Key came with another request */
	TS_REPLAY = -14,     /* the Idempotency-Key's first result is in the ts_idem */
	TS_NO_LIST = -15,    /* no such list, or the user is not a member (404: a
	                        non-member learns nothing, not even that it exists) */
	TS_FORBIDDEN = -16,  /* a viewer's write, or a change only the owner may make */
};
const char *ts_strerror(int code);

#define TS_PRIORITY_MAX 8

/* A task as stored. Timestamps are microseconds since the epoch; the API shows them
 * exactly (RFC3339_EXACT: milliseconds, or microseconds when there are any), so what
 * it returns parses back to what is stored. created_at and updated_at are taken at
 * millisecond precision. */
/* The fields a PATCH merges one by one (ts_task.fv, the conflicts bitmask). */
enum { TS_F_TITLE, TS_F_DESCRIPTION, TS_F_PRIORITY, TS_F_DUE_AT, TS_F_COMPLETED, TS_FIELDS };
extern const char *const ts_field_names[TS_FIELDS];

typedef struct ts_task {
	char id[UUID_STR_LEN];
	char *title;       /* owned */
	char *description; /* owned; NULL is JSON null */
	char priority[TS_PRIORITY_MAX];
	int has_due; /* 0: due_at is null */
	int64_t due_us;
	int completed;
	char position[POSKEY_BUF]; /* the position key (common/poskey.h) */
	int64_t version;
	int64_t created_us;
	int64_t updated_us;
	int64_t fv[TS_FIELDS];      /* the version that last changed each field (read for
	                               updates only; 0: not known, taken as version) */
	char list_id[UUID_STR_LEN]; /* the task's list ("" omits it from the JSON) */
} ts_task;

/* Where a task change happens and who makes it (lists, issue 13). A list is a task
 * namespace: the default list's namespace is its owner's user id (every task
 * written before lists existed is there), any other list's is "#<list id>". Ids,
 * position keys, tombstones and the namespace's counter row stay per namespace.
 *
 * shared = 0 (the actor's default list): as before lists, one event on the actor's
 * seq. shared = 1: every mutation first takes the list row FOR SHARE, then reads the
 * members in a new statement (a membership change takes it FOR UPDATE, so a write
 * is wholly before or after it), refuses a non-member (TS_NO_LIST) and a viewer
 * (TS_FORBIDDEN), and writes one outbox event per member, each on that member's own
 * gapless seq, the members' counter rows locked in user id order (bytewise: no
 * deadlock between writers of lists with common members). Idempotency keys are the
 * actor's. */
typedef struct ts_scope {
	const char *ns;      /* the task namespace */
	const char *list_id; /* the list's id (events and tasks carry it) */
	const char *actor;   /* the authenticated user */
	int shared;          /* a list with a members table (see above) */
	char *recipients;    /* the members as a text[] literal, filled under the list's
	                        lock (owned; ts_scope_clear) */
	int nrecipients;
} ts_scope;
/* The scope of user's default list (ns_buf and id_buf hold the strings). */
void ts_scope_default(ts_scope *sc, const char *user, char id_buf[UUID_STR_LEN]);
/* The scope of list list_id (lower-case UUID) for actor (ns_buf holds "#<id>"). */
void ts_scope_list(ts_scope *sc, const char *actor, const char *list_id,
                   char ns_buf[UUID_STR_LEN + 1]);
void ts_scope_clear(ts_scope *sc);
/* The id of user's default list: a name-based (MD5, version 3) UUID of the user id,
 * so it exists without a row and no task needs a list column. */
void ts_default_list_id(const char *user, char out[UUID_STR_LEN]);

/* At most this many members a list may have: a change writes one event per member
 * in its transaction. */
#define TS_LIST_MEMBERS_MAX 1000

void ts_task_clear(ts_task *t);
/* The task as proto/task.schema.json has it (new reference). */
json_t *ts_task_json(const ts_task *t);

/* A partial update: only the fields with has_* set change. */
typedef struct ts_patch {
	int has_title, has_description, has_priority, has_due, has_completed;
	const char *title;
	const char *description; /* NULL: set to null */
	const char *priority;
	int due_null;
	int64_t due_us;
	int completed;
} ts_patch;

/* An Idempotency-Key on a mutation. The mutation looks the key up under the user's
 * lock, in its own transaction: a key stored with the same request makes it return
 * TS_REPLAY with the first reply in status/body, writing nothing; with another
 * request TS_KEY_REUSED. Otherwise the reply is stored with the change, in the
 * same transaction. A mutation that writes nothing (no change, all conflicts) is
 * not stored: its repeat is evaluated again. */
typedef struct ts_idem {
	const char *key;     /* the header, validated */
	const char *request; /* method, path and canonical body: a repeat must match */
	int status;          /* TS_REPLAY: the first reply's status */
	char *body;          /* TS_REPLAY: its body (owned; NULL when it had none) */
} ts_idem;

/* The reply of a PATCH with base_version: {"task", "conflicts":[{"field","yours",
 * "theirs"}]} for the fields of p set in the conflicts bitmask (new reference). */
json_t *ts_merge_reply(const ts_task *t, const ts_patch *p, unsigned conflicts);
/* The reply of a move: {"task", "seq": N|null} (new reference). */
json_t *ts_move_reply(const ts_task *t, int64_t seq);

/* Builds the event of proto/task-event.schema.json as compact JSON (caller frees):
 * {"event_id","event_type","user_id","seq","origin","timestamp","task"|"positions"}.
 * payload is the task object (for EV_TASK_MOVED: {id, position}) or, for
 * EV_TASK_REORDERED, the positions object (borrowed). event_id receives the new
 * event's UUID. NULL when the event would exceed EVENT_MAX_BYTES - TS_EVENT_SLACK
 * (the slack is for what the create statement splices in: seq and position). */
#define TS_EVENT_SLACK 64
char *ts_event_build(event_type type, const char *user, int64_t seq, const char *origin,
                     int64_t ts_us, json_t *payload, char event_id[UUID_STR_LEN]);
/* ts_event_build with the list's id and the user who made the change (both NULL:
 * left out), after "timestamp". */
char *ts_event_build_in(event_type type, const char *user, int64_t seq, const char *origin,
                        int64_t ts_us, const char *list_id, const char *actor, json_t *payload,
                        char event_id[UUID_STR_LEN]);

/* In a transaction holding the list's lock (sc->recipients filled): writes one event
 * of type per member, each on the member's next seq (locked in user id order), with
 * body the event's last member (a "task", "positions" or "list" object: borrowed)
 * and extra top-level members (may be NULL, borrowed) before it. One statement: the
 * payload is built once with placeholders for event_id, user_id and seq.
 * *actor_seq (may be NULL) receives the actor's seq (0 when not a recipient). TS_OK,
 * TS_TOO_LARGE or TS_DB (rolled back). */
MUST_CHECK int ts_fan_out(PGconn *pg, const ts_scope *sc, event_type type, const char *origin,
                          int64_t ts_us, const char *body_key, json_t *body, json_t *extra,
                          int64_t *actor_seq);
/* Runs a transaction's first steps for a list: BEGIN (when begin), the list row
 * FOR SHARE (FOR UPDATE when exclusive), the members into sc->recipients and the
 * actor's role into role (owner, editor, viewer). TS_OK, TS_NO_LIST (rolled back)
 * or TS_DB. */
MUST_CHECK int ts_list_lock(PGconn *pg, ts_scope *sc, int begin, int exclusive, char role[8]);

/* Prepares the statements on a new connection (db on_connect hook). 0 or -1. */
int ts_prepare(PGconn *pg, void *arg);

/* SELECT 1: 0 when the connection answers. */
MUST_CHECK int ts_ping(PGconn *pg);

/* One page of the user's tasks in display order (position keys ascending) after the
 * key after (NULL: from the start) and the user's current seq, read in one snapshot.
 * The page ends after limit tasks or once the tasks' text passes max_bytes (the task
 * that passes it is the page's last; a page has at least one task when any follow).
 * *tasks is a new JSON array; next receives the key to continue after, "" at the end. */
MUST_CHECK int ts_list(PGconn *pg, ts_scope *sc, const char *after, int limit, long max_bytes,
                       json_t **tasks, int64_t *seq, char next[POSKEY_BUF]);
/* One task of the user (id must be a valid UUID). */
MUST_CHECK int ts_get(PGconn *pg, ts_scope *sc, const char *id, ts_task *out);
/* Creates in->id (a UUID) at the end of the user's list and publishes task.created.
 * Ids are per user: another user's task with the same id is no concern. When the
 * user already has that id, fills *out with the stored task, sets *created to 0 and
 * publishes nothing. TS_QUOTA when the user already has max_tasks tasks. */
MUST_CHECK int ts_create(PGconn *pg, ts_scope *sc, const ts_task *in, const char *origin,
                         long max_tasks, ts_idem *idem, ts_task *out, int *created);
/* Applies patch. if_match < 0: unconditional. A patch that changes nothing commits
 * nothing (*changed = 0, *out the task). TS_STALE leaves the current task in *out.
 * base >= 1 merges per field: a field of the patch last changed by a version above
 * base, to another value than the patch's, is a conflict: it keeps its value (the
 * first committer wins) and its bit (1 << TS_F_*) is set in *conflicts; the other
 * fields apply. base < 0: no merge (*conflicts = 0). */
MUST_CHECK int ts_update(PGconn *pg, ts_scope *sc, const char *id, const ts_patch *patch,
                         int64_t if_match, int64_t base, const char *origin, ts_idem *idem,
                         ts_task *out, int *changed, unsigned *conflicts);
/* Deletes and publishes task.deleted (with the last state of the task), leaving a
 * tombstone: from then on a create of that id, and an edit, move or delete of it,
 * is TS_DELETED (until the tombstone is pruned, ts_prune). */
MUST_CHECK int ts_delete(PGconn *pg, ts_scope *sc, const char *id, const char *origin,
                         ts_idem *idem);
/* Moves task id directly before (after = 0) or after (after = 1) the task anchor, or
 * with anchor NULL to the end (before nothing) or the top (after nothing): one row
 * gets a new key between its new neighbours and one task.moved event
 * {"task":{"id","position"}} is published. A move to where the task already is
 * changes nothing (*seq = 0). *out is the moved task as it is now. TS_NOT_FOUND (the
 * task), TS_NO_ANCHOR, TS_INVALID (anchor is the task), TS_EXHAUSTED. */
MUST_CHECK int ts_move(PGconn *pg, ts_scope *sc, const char *id, const char *anchor, int after,
                       const char *origin, ts_idem *idem, ts_task *out, int64_t *seq);
/* Moves task id from list src to list dst (another list), placed as ts_move
 * places it, in one transaction: the actor must write both (TS_FORBIDDEN,
 * TS_NO_LIST); dst must not have the id (TS_CONFLICT) and must have room
 * (TS_QUOTA). Publishes task.deleted to src's members, then task.created (the task,
 * version + 1, its new list_id and key) to dst's; a member of both gets both, in
 * that order. No tombstone is left in src. *seq is the actor's seq of the created
 * event (0 when the actor does not receive it). */
MUST_CHECK int ts_move_list(PGconn *pg, ts_scope *src, ts_scope *dst, const char *id,
                            const char *anchor, int after, const char *origin, long max_tasks,
                            ts_idem *idem, ts_task *out, int64_t *seq);
/* Renumbers a small list: ids (lower-case UUIDs, n <= TASK_ORDER_MAX) first, then the
 * user's other tasks in their current order, with the integer keys 0, 1, ...
 * Publishes one task.reordered event with the keys that changed
 * ({"positions":{id: key}}); *seq is its seq, 0 when nothing changed (no event). An id
 * the user does not have, or one listed twice, is skipped and reported in *skipped
 * ([{"id","reason":"not_found"|"duplicate"}]). *positions (the changed keys) and
 * *skipped are new references on TS_OK. TS_TOO_MANY when the user has more than
 * TASK_ORDER_MAX tasks (use moves). Matching sorts the user's ids once and searches
 * them: O(n log n). */
MUST_CHECK int ts_reorder(PGconn *pg, ts_scope *sc, const char *const *ids, size_t n,
                          const char *origin, json_t **positions, json_t **skipped, int64_t *seq);
/* The user's events with seq > since (at most limit, and no more than max_bytes of
 * events once the first is in: one event is at most EVENT_MAX_BYTES), as the JSON
 * reply body {"events":[...],"seq":N,"has_more":b} (caller frees *body); has_more is
 * true when either bound cut the reply. TS_GONE when events after since were
 * pruned; *seq is set in every case. */
MUST_CHECK int ts_events(PGconn *pg, const char *user, int64_t since, int limit, long max_bytes,
                         char **body, size_t *len, int64_t *seq);

/* Deletes idempotency keys and tombstones older than window_s seconds, at most
 * batch rows of each. Returns the rows deleted, or -1. */
long ts_prune(PGconn *pg, long window_s, int batch);

#endif
