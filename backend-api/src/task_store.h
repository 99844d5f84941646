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
#include "common/util.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

enum {
	TS_OK = 0,
	TS_NOT_FOUND = -1, /* no such task for this user */
	TS_CONFLICT = -2,  /* create: the id belongs to another user */
	TS_STALE = -3,     /* update: If-Match does not match; *out is the current task */
	TS_INVALID = -4,   /* reorder: unknown or duplicate ids */
	TS_GONE = -5,      /* events: since is older than what is retained */
	TS_DB = -6,        /* database error or unreachable: answer 503 */
};
const char *ts_strerror(int code);

#define TS_PRIORITY_MAX 8

/* A task as stored. Timestamps are microseconds since the epoch, kept at millisecond
 * precision so that what the API returns equals what is stored. */
typedef struct ts_task {
	char id[UUID_STR_LEN];
	char *title;       /* owned */
	char *description; /* owned; NULL is JSON null */
	char priority[TS_PRIORITY_MAX];
	int has_due; /* 0: due_at is null */
	int64_t due_us;
	int completed;
	int64_t position;
	int64_t version;
	int64_t created_us;
	int64_t updated_us;
} ts_task;

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

/* Builds the event of proto/task-event.schema.json as compact JSON (caller frees):
 * {"event_id","event_type","user_id","seq","origin","timestamp","task"|"order"}.
 * payload is the task object or, for EV_TASK_REORDERED, the order array (borrowed).
 * event_id receives the new event's UUID. */
char *ts_event_build(event_type type, const char *user, int64_t seq, const char *origin,
                     int64_t ts_us, json_t *payload, char event_id[UUID_STR_LEN]);

/* Prepares the statements on a new connection (db on_connect hook). 0 or -1. */
int ts_prepare(PGconn *pg, void *arg);

/* SELECT 1: 0 when the connection answers. */
MUST_CHECK int ts_ping(PGconn *pg);

/* The user's tasks in display order and the user's current seq, read in one
 * snapshot. *tasks is a new JSON array. */
MUST_CHECK int ts_list(PGconn *pg, const char *user, json_t **tasks, int64_t *seq);
/* One task of the user (id must be a valid UUID). */
MUST_CHECK int ts_get(PGconn *pg, const char *user, const char *id, ts_task *out);
/* Creates in->id (a UUID) at the end of the user's list and publishes task.created.
 * When the user already has that id, fills *out with the stored task, sets *created
 * to 0 and publishes nothing. TS_CONFLICT when another user has it. */
MUST_CHECK int ts_create(PGconn *pg, const char *user, const ts_task *in, const char *origin,
                         ts_task *out, int *created);
/* Applies patch. if_match < 0: unconditional. A patch that changes nothing commits
 * nothing (*changed = 0, *out the task). TS_STALE leaves the current task in *out. */
MUST_CHECK int ts_update(PGconn *pg, const char *user, const char *id, const ts_patch *patch,
                         int64_t if_match, const char *origin, ts_task *out, int *changed);
/* Deletes and publishes task.deleted (with the last state of the task). */
MUST_CHECK int ts_delete(PGconn *pg, const char *user, const char *id, const char *origin);
/* Rewrites positions: ids (lower-case UUIDs, n of them) first, then the user's other
 * tasks in their current relative order. Publishes task.reordered with the full
 * order. TS_INVALID (reason in err) for an unknown or duplicate id. *order is a new
 * JSON array; *seq the event's seq. */
MUST_CHECK int ts_reorder(PGconn *pg, const char *user, const char *const *ids, size_t n,
                          const char *origin, json_t **order, int64_t *seq, char *err,
                          size_t errlen);
/* The user's events with seq > since (at most limit), as the JSON reply body
 * {"events":[...],"seq":N,"has_more":b} (caller frees *body). TS_GONE when events
 * after since were pruned; *seq is set in every case. */
MUST_CHECK int ts_events(PGconn *pg, const char *user, int64_t since, int limit, char **body,
                         size_t *len, int64_t *seq);

#endif
