#include "task_store.h"

#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A timestamptz from a bigint parameter of microseconds since the epoch (exact,
 * unlike to_timestamp(double)); NULL stays NULL. */
#define TS_PARAM(p) "('epoch'::timestamptz + (" p "::bigint) * interval '1 microsecond')"
#define US_COL(c)   "(extract(epoch FROM " c ") * 1000000)::bigint"
/* The task columns in the order row_task() reads them, with a table prefix. */
#define COLS(p)                                                                                    \
	p "id::text, " p "title, " p "description, " p "priority, " US_COL(                        \
	    p "due_at") ", " p "completed, " p "position, " p                                      \
	                "version, " US_COL(p "created_at") ", " US_COL(p "updated_at")
#define NCOLS         10
#define ORDER_BY(p)   " ORDER BY " p "position, " p "created_at, " p "id"
#define OUTBOX_INSERT "INSERT INTO outbox (user_id, seq, event_id, event_type, payload) "

typedef struct stmt {
	const char *name;
	const char *sql;
} stmt;

enum {
	S_CREATE,
	S_BUMP,
	S_GET,
	S_GET_LOCK,
	S_UPDATE,
	S_DELETE,
	S_NEXTPOS,
	S_IDS,
	S_REORDER,
	S_LIST,
	S_EVENTS_HEAD,
	S_EVENTS,
	S__COUNT
};

static const stmt stmts[S__COUNT] = {
    /* A whole create in one statement (one round trip, one implicit transaction):
     * take the next seq and position (locking the user's counter row), insert the
     * task and the outbox row. The event JSON is built in C; only seq and position,
     * known once the row is locked, are spliced in ($10 seq $11 position $12). A
     * duplicate id fails the statement as a whole, so no seq is used up. */
    [S_CREATE] =
        {"create",
         "WITH s AS (INSERT INTO user_seq (user_id, seq, next_pos) VALUES ($2, 1, 1) "
         "ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq + 1, "
         "next_pos = user_seq.next_pos + 1 RETURNING seq, next_pos - 1 AS pos), "
         "t AS (INSERT INTO tasks (id, user_id, title, description, priority, due_at, "
         "completed, position, version, created_at, updated_at) SELECT $1::uuid, $2, "
         "$3::text, $4::text, $5::text, " TS_PARAM("$6") ", $7::boolean, s.pos, 1, " TS_PARAM(
             "$8") ", " TS_PARAM("$8") " FROM s), "
                                       "o AS (" OUTBOX_INSERT
                                       "SELECT $2, s.seq, $9::uuid, 'task.created', "
                                       "$10::text || s.seq || $11::text || s.pos || "
                                       "$12::text FROM s RETURNING id) SELECT s.seq, "
                                       "s.pos FROM s, o"},
    /* The next seq; takes the user's lock. */
    [S_BUMP] = {"bump", "INSERT INTO user_seq (user_id, seq, next_pos) VALUES ($1, 1, 0) "
                        "ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq + 1 RETURNING seq, "
                        "next_pos"},
    [S_GET] = {"get", "SELECT " COLS("") " FROM tasks WHERE id = $1 AND user_id = $2"},
    [S_GET_LOCK] = {"get_lock",
                    "SELECT " COLS("") " FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE"},
    [S_UPDATE] =
        {"update",
         "WITH t AS (UPDATE tasks SET title = $3, description = $4, priority = $5, "
         "due_at = " TS_PARAM("$6") ", completed = $7, version = $8, updated_at = " TS_PARAM(
             "$9") " WHERE id = $1 AND user_id = $2) " OUTBOX_INSERT
                   "VALUES ($2, $10, $11, $12, $13)"},
    [S_DELETE] = {"delete",
                  "WITH t AS (DELETE FROM tasks WHERE id = $1 AND user_id = $2) " OUTBOX_INSERT
                  "VALUES ($2, $3, $4, 'task.deleted', $5)"},
    [S_NEXTPOS] = {"nextpos", "UPDATE user_seq SET next_pos = (SELECT coalesce(max(position) "
                              "+ 1, 0) FROM tasks WHERE user_id = $1) WHERE user_id = $1"},
    [S_IDS] = {"ids", "SELECT id::text FROM tasks WHERE user_id = $1" ORDER_BY("")},
    [S_REORDER] = {"reorder",
                   "WITH o AS (SELECT id, ord FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, "
                   "ord)), t AS (UPDATE tasks SET position = o.ord - 1 FROM o WHERE tasks.id = "
                   "o.id AND tasks.user_id = $1), u AS (UPDATE user_seq SET next_pos = $3 WHERE "
                   "user_id = $1) " OUTBOX_INSERT "VALUES ($1, $4, $5, 'task.reordered', $6)"},
    /* One statement, so one snapshot: the list and the seq it is current at. */
    [S_LIST] = {"list", "SELECT s.seq, " COLS(
                            "t.") " FROM (SELECT coalesce((SELECT seq FROM user_seq WHERE "
                                  "user_id = $1), 0) AS seq) s LEFT JOIN tasks t ON t.user_id "
                                  "= $1" ORDER_BY("t.")},
    [S_EVENTS_HEAD] = {"events_head",
                       "SELECT coalesce((SELECT seq FROM user_seq WHERE user_id = $1), 0), "
                       "(SELECT min(seq) FROM outbox WHERE user_id = $1)"},
    [S_EVENTS] = {"events", "SELECT payload FROM outbox WHERE user_id = $1 AND seq > $2 "
                            "ORDER BY seq LIMIT $3"},
};

const char *ts_strerror(int code)
{
	switch (code) {
	case TS_OK:
		return "ok";
	case TS_NOT_FOUND:
		return "not found";
	case TS_CONFLICT:
		return "id belongs to another user";
	case TS_STALE:
		return "version does not match";
	case TS_INVALID:
		return "invalid";
	case TS_GONE:
		return "events pruned";
	case TS_DB:
		return "database error";
	}
	return "unknown";
}

int ts_prepare(PGconn *pg, void *arg)
{
	(void)arg;
	for (int i = 0; i < S__COUNT; i++) {
		PGresult *r = PQprepare(pg, stmts[i].name, stmts[i].sql, 0, NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			log_error("could not prepare statement", "{s:s, s:s}", "stmt",
			          stmts[i].name, "err", PQresultErrorMessage(r));
		PQclear(r);
		if (!ok)
			return -1;
	}
	return 0;
}

/* Runs a prepared statement; NULL (logged) unless it succeeded. */
static PGresult *run(PGconn *pg, int s, int n, const char *const *vals)
{
	PGresult *r = PQexecPrepared(pg, stmts[s].name, n, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_warn("statement failed", "{s:s, s:s, s:s}", "stmt", stmts[s].name, "sqlstate",
	         PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
	                                                 : "",
	         "err", PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

/* Like run, but a unique violation is reported as *unique = 1 (not logged). */
static PGresult *run_unique(PGconn *pg, int s, int n, const char *const *vals, int *unique)
{
	*unique = 0;
	PGresult *r = PQexecPrepared(pg, stmts[s].name, n, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state && strcmp(state, "23505") == 0)
		*unique = 1;
	else
		log_warn("statement failed", "{s:s, s:s}", "stmt", stmts[s].name, "err",
		         PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

static int simple(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		log_warn("statement failed", "{s:s, s:s}", "sql", sql, "err",
		         PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Ends a failed or abandoned transaction; the connection stays usable if it can. */
static void rollback(PGconn *pg)
{
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
}

static int64_t getll(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Fills t from the NCOLS task columns of row starting at col. */
static void row_task(const PGresult *r, int row, int col, ts_task *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", PQgetvalue(r, row, col));
	t->title = xstrdup(PQgetvalue(r, row, col + 1));
	t->description = PQgetisnull(r, row, col + 2) ? NULL : xstrdup(PQgetvalue(r, row, col + 2));
	snprintf(t->priority, sizeof(t->priority), "%s", PQgetvalue(r, row, col + 3));
	t->has_due = !PQgetisnull(r, row, col + 4);
	t->due_us = t->has_due ? getll(r, row, col + 4) : 0;
	t->completed = PQgetvalue(r, row, col + 5)[0] == 't';
	t->position = getll(r, row, col + 6);
	t->version = getll(r, row, col + 7);
	t->created_us = getll(r, row, col + 8);
	t->updated_us = getll(r, row, col + 9);
}

void ts_task_clear(ts_task *t)
{
	if (!t)
		return;
	free(t->title);
	free(t->description);
	memset(t, 0, sizeof(*t));
}

static void task_copy(ts_task *dst, const ts_task *src)
{
	*dst = *src;
	dst->title = xstrdup(src->title);
	dst->description = xstrdup(src->description);
}

json_t *ts_task_json(const ts_task *t)
{
	char due[40], created[40], updated[40];
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(t->id));
	json_object_set_new(o, "title", json_string(t->title ? t->title : ""));
	json_object_set_new(o, "description",
	                    t->description ? json_string(t->description) : json_null());
	json_object_set_new(o, "priority", json_string(t->priority));
	json_object_set_new(o, "due_at",
	                    t->has_due ? json_string(time_iso8601(t->due_us, due, sizeof(due)))
	                               : json_null());
	json_object_set_new(o, "completed", json_boolean(t->completed));
	json_object_set_new(o, "position", json_integer(t->position));
	json_object_set_new(o, "version", json_integer(t->version));
	json_object_set_new(o, "created_at",
	                    json_string(time_iso8601(t->created_us, created, sizeof(created))));
	json_object_set_new(o, "updated_at",
	                    json_string(time_iso8601(t->updated_us, updated, sizeof(updated))));
	return o;
}

char *ts_event_build(event_type type, const char *user, int64_t seq, const char *origin,
                     int64_t ts_us, json_t *payload, char event_id[UUID_STR_LEN])
{
	char ts[40];
	uuid_new(event_id);
	json_t *e = json_object();
	json_object_set_new(e, "event_id", json_string(event_id));
	json_object_set_new(e, "event_type", json_string(event_type_name(type)));
	json_object_set_new(e, "user_id", json_string(user));
	json_object_set_new(e, "seq", json_integer(seq));
	json_object_set_new(e, "origin", origin ? json_string(origin) : json_null());
	json_object_set_new(e, "timestamp", json_string(time_iso8601(ts_us, ts, sizeof(ts))));
	json_object_set(e, type == EV_TASK_REORDERED ? "order" : "task", payload);
	char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(e);
	if (!s)
		abort();
	return s;
}

/* Wall clock now at millisecond precision (what the API shows is what is stored). */
static int64_t now_ms_us(void)
{
	return wall_us() / 1000 * 1000;
}

/* Takes the user's next seq (and the lock on the user's writes) inside a transaction
 * just begun. 0 or -1 (transaction rolled back). */
static int begin_bump(PGconn *pg, int s, const char *user, int64_t *seq, int64_t *next_pos)
{
	if (simple(pg, "BEGIN"))
		return -1;
	const char *v[] = {user};
	PGresult *r = run(pg, s, 1, v);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		rollback(pg);
		return -1;
	}
	*seq = getll(r, 0, 0);
	*next_pos = getll(r, 0, 1);
	PQclear(r);
	return 0;
}

static int commit(PGconn *pg)
{
	if (simple(pg, "COMMIT")) {
		rollback(pg);
		return -1;
	}
	return 0;
}

int ts_ping(PGconn *pg)
{
	return simple(pg, "SELECT 1");
}

int ts_list(PGconn *pg, const char *user, json_t **tasks, int64_t *seq)
{
	*tasks = NULL;
	const char *v[] = {user};
	PGresult *r = run(pg, S_LIST, 1, v);
	if (!r)
		return TS_DB;
	json_t *arr = json_array();
	*seq = PQntuples(r) ? getll(r, 0, 0) : 0;
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetisnull(r, i, 1))
			continue; /* the LEFT JOIN's row of a user without tasks */
		ts_task t;
		row_task(r, i, 1, &t);
		json_array_append_new(arr, ts_task_json(&t));
		ts_task_clear(&t);
	}
	PQclear(r);
	*tasks = arr;
	return TS_OK;
}

/* One task of the user into *out: TS_OK, TS_NOT_FOUND or TS_DB. */
static int get_task(PGconn *pg, int s, const char *user, const char *id, ts_task *out)
{
	const char *v[] = {id, user};
	PGresult *r = run(pg, s, 2, v);
	if (!r)
		return TS_DB;
	int rc = TS_NOT_FOUND;
	if (PQntuples(r) == 1) {
		row_task(r, 0, 0, out);
		rc = TS_OK;
	}
	PQclear(r);
	return rc;
}

int ts_get(PGconn *pg, const char *user, const char *id, ts_task *out)
{
	memset(out, 0, sizeof(*out));
	return get_task(pg, S_GET, user, id, out);
}

/* The placeholder for the position the create statement splices into the event: a JSON
 * string that may also occur in user text, but position follows every user-supplied
 * string, so its last occurrence is the real one. seq is spliced at the first "seq":0,
 * (only the user id, which cannot contain quotes, precedes it). */
#define POS_MARK "\"\\u0001pos\\u0001\""

static const char *last_occurrence(const char *hay, const char *needle)
{
	const char *last = NULL;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		last = p;
	return last;
}

int ts_create(PGconn *pg, const char *user, const ts_task *in, const char *origin, ts_task *out,
              int *created)
{
	memset(out, 0, sizeof(*out));
	*created = 0;
	ts_task t;
	task_copy(&t, in);
	t.version = 1;
	t.created_us = t.updated_us = now_ms_us();

	/* The event with placeholders for seq and position, split around them. */
	json_t *tj = ts_task_json(&t);
	json_object_set_new(tj, "position", json_string("\x01pos\x01"));
	char event_id[UUID_STR_LEN];
	char *ev = ts_event_build(EV_TASK_CREATED, user, 0, origin, t.created_us, tj, event_id);
	json_decref(tj);
	char *seq_at = strstr(ev, "\"seq\":0,");
	const char *pos_at = last_occurrence(ev, POS_MARK);
	if (!seq_at || !pos_at || pos_at < seq_at)
		abort(); /* cannot happen: the builder writes both */
	seq_at += strlen("\"seq\":");
	char *part1 = xstrndup(ev, (size_t)(seq_at - ev));
	char *part2 = xstrndup(seq_at + 1, (size_t)(pos_at - seq_at - 1));
	const char *part3 = pos_at + strlen(POS_MARK);

	char due[24], created_b[24];
	snprintf(due, sizeof(due), "%" PRId64, t.due_us);
	snprintf(created_b, sizeof(created_b), "%" PRId64, t.created_us);
	const char *v[] = {t.id,
	                   user,
	                   t.title,
	                   t.description,
	                   t.priority,
	                   t.has_due ? due : NULL,
	                   t.completed ? "true" : "false",
	                   created_b,
	                   event_id,
	                   part1,
	                   part2,
	                   part3};
	int unique = 0;
	PGresult *r = run_unique(pg, S_CREATE, 12, v, &unique);
	free(part1);
	free(part2);
	free(ev);
	if (r) {
		int ok = PQntuples(r) == 1;
		if (ok) {
			t.position = getll(r, 0, 1);
		}
		PQclear(r);
		if (!ok) {
			ts_task_clear(&t);
			return TS_DB;
		}
		*out = t;
		*created = 1;
		return TS_OK;
	}
	ts_task_clear(&t);
	if (!unique)
		return TS_DB;
	/* The id exists: a retried create of this user's task, or someone else's id. */
	int rc = get_task(pg, S_GET, user, in->id, out);
	if (rc == TS_NOT_FOUND)
		return TS_CONFLICT;
	return rc;
}

/* Applies p to t; returns 1 when anything changed. */
static int apply_patch(ts_task *t, const ts_patch *p)
{
	int changed = 0;
	if (p->has_title && strcmp(t->title, p->title) != 0) {
		free(t->title);
		t->title = xstrdup(p->title);
		changed = 1;
	}
	if (p->has_description) {
		int same = (!t->description && !p->description) ||
		           (t->description && p->description &&
		            strcmp(t->description, p->description) == 0);
		if (!same) {
			free(t->description);
			t->description = xstrdup(p->description);
			changed = 1;
		}
	}
	if (p->has_priority && strcmp(t->priority, p->priority) != 0) {
		snprintf(t->priority, sizeof(t->priority), "%s", p->priority);
		changed = 1;
	}
	if (p->has_due) {
		int has = !p->due_null;
		if (has != t->has_due || (has && p->due_us != t->due_us)) {
			t->has_due = has;
			t->due_us = has ? p->due_us : 0;
			changed = 1;
		}
	}
	if (p->has_completed && !!p->completed != !!t->completed) {
		t->completed = !!p->completed;
		changed = 1;
	}
	return changed;
}

int ts_update(PGconn *pg, const char *user, const char *id, const ts_patch *patch, int64_t if_match,
              const char *origin, ts_task *out, int *changed)
{
	memset(out, 0, sizeof(*out));
	*changed = 0;
	int64_t seq, pos;
	/* The user's lock first, as every writer takes it first: no lock-order deadlock
	 * with a concurrent reorder, and a concurrent delete is fully before or after. */
	if (begin_bump(pg, S_BUMP, user, &seq, &pos))
		return TS_DB;
	ts_task t;
	int rc = get_task(pg, S_GET_LOCK, user, id, &t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc;
	}
	if (if_match >= 0 && if_match != t.version) {
		rollback(pg);
		*out = t;
		return TS_STALE;
	}
	int was_completed = t.completed;
	if (!apply_patch(&t, patch)) {
		rollback(pg); /* nothing changed: no event, no seq taken */
		*out = t;
		return TS_OK;
	}
	t.version++;
	t.updated_us = now_ms_us();
	event_type type = !was_completed && t.completed ? EV_TASK_COMPLETED : EV_TASK_UPDATED;
	json_t *tj = ts_task_json(&t);
	char event_id[UUID_STR_LEN];
	char *payload = ts_event_build(type, user, seq, origin, t.updated_us, tj, event_id);
	json_decref(tj);
	char due[24], ver[24], upd[24], seqb[24];
	snprintf(due, sizeof(due), "%" PRId64, t.due_us);
	snprintf(ver, sizeof(ver), "%" PRId64, t.version);
	snprintf(upd, sizeof(upd), "%" PRId64, t.updated_us);
	snprintf(seqb, sizeof(seqb), "%" PRId64, seq);
	const char *v[] = {t.id,
	                   user,
	                   t.title,
	                   t.description,
	                   t.priority,
	                   t.has_due ? due : NULL,
	                   t.completed ? "true" : "false",
	                   ver,
	                   upd,
	                   seqb,
	                   event_id,
	                   event_type_name(type),
	                   payload};
	PGresult *r = run(pg, S_UPDATE, 13, v);
	if (!r) {
		free(payload);
		rollback(pg);
		ts_task_clear(&t);
		return TS_DB;
	}
	PQclear(r);
	if (commit(pg)) {
		free(payload);
		ts_task_clear(&t);
		return TS_DB;
	}
	free(payload);
	*out = t;
	*changed = 1;
	return TS_OK;
}

int ts_delete(PGconn *pg, const char *user, const char *id, const char *origin)
{
	int64_t seq, pos;
	if (begin_bump(pg, S_BUMP, user, &seq, &pos))
		return TS_DB;
	ts_task t;
	int rc = get_task(pg, S_GET_LOCK, user, id, &t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc;
	}
	json_t *tj = ts_task_json(&t);
	char event_id[UUID_STR_LEN];
	char *payload =
	    ts_event_build(EV_TASK_DELETED, user, seq, origin, now_ms_us(), tj, event_id);
	json_decref(tj);
	char seqb[24];
	snprintf(seqb, sizeof(seqb), "%" PRId64, seq);
	const char *v[] = {t.id, user, seqb, event_id, payload};
	PGresult *r = run(pg, S_DELETE, 5, v);
	ts_task_clear(&t);
	if (!r) {
		free(payload);
		rollback(pg);
		return TS_DB;
	}
	PQclear(r);
	const char *v2[] = {user};
	r = run(pg, S_NEXTPOS, 1, v2);
	if (!r || commit(pg)) {
		PQclear(r);
		free(payload);
		rollback(pg);
		return TS_DB;
	}
	PQclear(r);
	free(payload);
	return TS_OK;
}

int ts_reorder(PGconn *pg, const char *user, const char *const *ids, size_t n, const char *origin,
               json_t **order, int64_t *seq, char *err, size_t errlen)
{
	*order = NULL;
	int64_t pos;
	if (begin_bump(pg, S_BUMP, user, seq, &pos))
		return TS_DB;
	const char *v[] = {user};
	PGresult *r = run(pg, S_IDS, 1, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	int rc = TS_OK;
	size_t have = (size_t)PQntuples(r);
	/* used[i]: current task i was listed. Lists are small (one user's tasks), so a
	 * quadratic match is fine up to the body limit (~1,700 ids). */
	char *used = xcalloc(have + 1, 1);
	json_t *full = json_array();
	for (size_t k = 0; k < n && rc == TS_OK; k++) {
		size_t i;
		for (i = 0; i < have; i++)
			if (strcmp(PQgetvalue(r, (int)i, 0), ids[k]) == 0)
				break;
		if (i == have) {
			snprintf(err, errlen, "order[%zu]: no such task", k);
			rc = TS_INVALID;
		} else if (used[i]) {
			snprintf(err, errlen, "order[%zu]: duplicate id", k);
			rc = TS_INVALID;
		} else {
			used[i] = 1;
			json_array_append_new(full, json_string(ids[k]));
		}
	}
	for (size_t i = 0; i < have && rc == TS_OK; i++)
		if (!used[i])
			json_array_append_new(full, json_string(PQgetvalue(r, (int)i, 0)));
	PQclear(r);
	free(used);
	if (rc != TS_OK) {
		rollback(pg);
		json_decref(full);
		return rc;
	}
	/* The array literal {id,id,...}: ids are UUIDs, so no quoting is needed. */
	size_t cap = 3 + json_array_size(full) * (UUID_STR_LEN + 1), len = 0;
	char *arr = xmalloc(cap);
	arr[len++] = '{';
	for (size_t i = 0; i < json_array_size(full); i++)
		len += (size_t)snprintf(arr + len, cap - len, "%s%s", i ? "," : "",
		                        json_string_value(json_array_get(full, i)));
	arr[len++] = '}';
	arr[len] = '\0';
	char event_id[UUID_STR_LEN];
	char *payload =
	    ts_event_build(EV_TASK_REORDERED, user, *seq, origin, now_ms_us(), full, event_id);
	char nb[24], seqb[24];
	snprintf(nb, sizeof(nb), "%zu", json_array_size(full));
	snprintf(seqb, sizeof(seqb), "%" PRId64, *seq);
	const char *v2[] = {user, arr, nb, seqb, event_id, payload};
	r = run(pg, S_REORDER, 6, v2);
	free(arr);
	if (!r) {
		free(payload);
		rollback(pg);
		json_decref(full);
		return TS_DB;
	}
	PQclear(r);
	if (commit(pg)) {
		free(payload);
		json_decref(full);
		return TS_DB;
	}
	free(payload);
	*order = full;
	return TS_OK;
}

int ts_events(PGconn *pg, const char *user, int64_t since, int limit, char **body, size_t *len,
              int64_t *seq)
{
	*body = NULL;
	*len = 0;
	*seq = 0;
	/* Two statements, one snapshot. */
	if (simple(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
		return TS_DB;
	const char *v[] = {user};
	PGresult *r = run(pg, S_EVENTS_HEAD, 1, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	*seq = getll(r, 0, 0);
	int has_min = !PQgetisnull(r, 0, 1);
	int64_t min = has_min ? getll(r, 0, 1) : 0;
	PQclear(r);
	if (since < *seq && (!has_min || min > since + 1)) {
		rollback(pg);
		return TS_GONE;
	}
	char sinceb[24], limb[24];
	snprintf(sinceb, sizeof(sinceb), "%" PRId64, since);
	snprintf(limb, sizeof(limb), "%d", limit + 1);
	const char *v2[] = {user, sinceb, limb};
	r = run(pg, S_EVENTS, 3, v2);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	int rows = PQntuples(r);
	int has_more = rows > limit;
	if (has_more)
		rows = limit;
	size_t cap = 64;
	for (int i = 0; i < rows; i++)
		cap += (size_t)PQgetlength(r, i, 0) + 1;
	char *b = xmalloc(cap);
	size_t n = 0;
	memcpy(b, "{\"events\":[", 11);
	n = 11;
	for (int i = 0; i < rows; i++) {
		if (i)
			b[n++] = ',';
		size_t l = (size_t)PQgetlength(r, i, 0);
		memcpy(b + n, PQgetvalue(r, i, 0), l);
		n += l;
	}
	n += (size_t)snprintf(b + n, cap - n, "],\"seq\":%" PRId64 ",\"has_more\":%s}", *seq,
	                      has_more ? "true" : "false");
	PQclear(r);
	if (commit(pg)) {
		free(b);
		return TS_DB;
	}
	*body = b;
	*len = n;
	return TS_OK;
}
