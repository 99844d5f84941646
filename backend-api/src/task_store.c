#include "task_store.h"

#include "common/log.h"
#include "common/rfc3339.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A timestamptz from a bigint parameter of microseconds since the epoch (exact,
 * unlike to_timestamp(double)); NULL stays NULL. */
/* In two parts: interval * bigint multiplies in double precision, which is exact
 * only below 2^53 (year 2255 in microseconds); seconds and the remainder are exact
 * for every four-digit year. */
#define TS_PARAM(p)                                                                                \
	"('epoch'::timestamptz + (" p "::bigint / 1000000) * interval '1 second' + (" p            \
	"::bigint % 1000000) * interval '1 microsecond')"
#define US_COL(c) "(extract(epoch FROM " c ") * 1000000)::bigint"
/* The task columns in the order row_task() reads them, with a table prefix. */
#define COLS(p)                                                                                    \
	p "id::text, " p "title, " p "description, " p "priority, " US_COL(                        \
	    p "due_at") ", " p "completed, " p "position, " p                                      \
	                "version, " US_COL(p "created_at") ", " US_COL(p "updated_at")
#define NCOLS 10
/* Keys are unique per user (a constraint) and the column is COLLATE "C": bytewise. */
#define ORDER_BY(p) " ORDER BY " p "position COLLATE \"C\""
/* The text bytes of a task row, a lower bound of its JSON, for the SQL side of the
 * list page's byte bound (it bounds what PostgreSQL sends; json_len() the reply). */
#define ROW_BYTES     "(octet_length(title) + coalesce(octet_length(description), 0) + 320)"
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
	S_KEY_BEFORE,
	S_KEY_AFTER,
	S_KEY_FIRST,
	S_MOVE,
	S_IDS,
	S_REORDER,
	S_LIST,
	S_EVENTS_HEAD,
	S_EVENTS,
	S_TOMB,
	S_IDEM_GET,
	S_IDEM_PUT,
	S_CREATE_BEGIN,
	S__COUNT
};

const char *const ts_field_names[TS_FIELDS] = {"title", "description", "priority", "due_at",
                                               "completed"};
/* The field versions, after the task columns, in TS_F_* order (S_GET_LOCK). */
#define FV_COLS ", title_v, description_v, priority_v, due_at_v, completed_v"

static const stmt stmts[S__COUNT] = {
    /* A whole create in one statement (one round trip, one implicit transaction):
     * take the next seq and the next integer key (locking the user's counter row),
     * unless the user is at the task quota ($13: then no row, nothing written), insert
     * the task and the outbox row. The event JSON is built in C; only seq and the key,
     * known once the row is locked, are spliced in ($10 seq $11 "key" $12). A
     * duplicate id fails the statement as a whole, so no seq is used up. */
    [S_CREATE] =
        {"create",
         "WITH s AS (INSERT INTO user_seq (user_id, seq, next_pos, task_count) VALUES ($2, 1, 1, "
         "1) ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq + 1, next_pos = "
         "user_seq.next_pos + 1, task_count = user_seq.task_count + 1 WHERE "
         "user_seq.task_count < $13::bigint AND NOT EXISTS (SELECT 1 FROM task_tombstones WHERE "
         "user_id = $2 AND id = $1::uuid) RETURNING seq, task_pos_key(next_pos - 1) AS pos), "
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
    [S_GET_LOCK] = {"get_lock", "SELECT " COLS("") FV_COLS
                    " FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE"},
    [S_UPDATE] =
        {"update",
         "WITH t AS (UPDATE tasks SET title = $3, description = $4, priority = $5, "
         "due_at = " TS_PARAM("$6") ", completed = $7, version = $8, updated_at = " TS_PARAM(
             "$9") ", title_v = $14, description_v = $15, priority_v = $16, due_at_v = $17, "
                   "completed_v = $18 WHERE id = $1 AND user_id = $2) " OUTBOX_INSERT
                   "VALUES ($2, $10, $11, $12, $13)"},
    [S_DELETE] = {"delete",
                  "WITH t AS (DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING id), "
                  "c AS (UPDATE user_seq SET task_count = task_count - (SELECT count(*) FROM t) "
                  "WHERE user_id = $2), d AS (INSERT INTO task_tombstones (user_id, id) "
                  "SELECT $2, id FROM t ON CONFLICT DO NOTHING) " OUTBOX_INSERT
                  "VALUES ($2, $3, $4, 'task.deleted', $5)"},
    /* The neighbours of a key, the moving task ($3) left out. */
    [S_KEY_BEFORE] = {"key_before",
                      "SELECT position FROM tasks WHERE user_id = $1 AND position < $2::text "
                      "COLLATE \"C\" AND id <> $3::uuid ORDER BY position COLLATE \"C\" DESC "
                      "LIMIT 1"},
    [S_KEY_AFTER] = {"key_after",
                     "SELECT position FROM tasks WHERE user_id = $1 AND position > "
                     "$2::text COLLATE \"C\" AND id <> $3::uuid" ORDER_BY("") " LIMIT 1"},
    [S_KEY_FIRST] = {"key_first", "SELECT position FROM tasks WHERE user_id = $1 AND id <> "
                                  "$2::uuid" ORDER_BY("") " LIMIT 1"},
    [S_MOVE] = {"move", "WITH t AS (UPDATE tasks SET position = $3 WHERE id = $1 AND user_id = "
                        "$2), u AS (UPDATE user_seq SET next_pos = $4 WHERE user_id = $2) "
                        "" OUTBOX_INSERT "VALUES ($2, $5, $6, 'task.moved', $7)"},
    /* At most $2 ids (the caller asks for one more than it accepts). */
    [S_IDS] = {"ids",
               "SELECT id::text, position FROM tasks WHERE user_id = $1" ORDER_BY("") " LIMIT $2"},
    [S_REORDER] = {"reorder",
                   "WITH o AS (SELECT * FROM unnest($2::uuid[], $3::text[]) AS o(id, pos)), t AS "
                   "(UPDATE tasks SET position = o.pos FROM o WHERE tasks.id = o.id AND "
                   "tasks.user_id = $1), u AS (UPDATE user_seq SET next_pos = $4 WHERE user_id = "
                   "$1) " OUTBOX_INSERT "VALUES ($1, $5, $6, 'task.reordered', $7)"},
    /* One statement, so one snapshot: a page of the list and the seq it is current
     * at. $2: the key to continue after (NULL: the start); $3: limit + 1 rows; $4: the
     * byte bound: rows whose predecessors already reach it are not sent (the one
     * that passes it is, so the caller sees the bound was reached). */
    [S_LIST] = {"list", "SELECT s.seq, " COLS(
                            "t.") ", t.before FROM (SELECT coalesce((SELECT seq FROM "
                                  "user_seq WHERE user_id = $1), 0) AS seq) s LEFT "
                                  "JOIN LATERAL (SELECT *, sum(" ROW_BYTES ") OVER w - " ROW_BYTES
                                  " AS before FROM tasks "
                                  "WHERE user_id = $1 AND ($2::text IS NULL OR "
                                  "position > $2::text COLLATE \"C\") WINDOW w AS "
                                  "(" ORDER_BY("") ")" ORDER_BY(
                                      "") " LIMIT $3) t ON t.before <= $4::bigint" ORDER_BY("t.")},
    [S_EVENTS_HEAD] = {"events_head",
                       "SELECT coalesce((SELECT seq FROM user_seq WHERE user_id = $1), 0), "
                       "(SELECT min(seq) FROM outbox WHERE user_id = $1)"},
    /* limit + 1 rows ($3), and of those only the ones whose predecessors are within
     * the byte bound ($4): the first past it is sent, so the caller knows. */
    [S_EVENTS] =
        {"events",
         "SELECT payload FROM (SELECT payload, seq, sum(octet_length(payload)) OVER (ORDER "
         "BY seq) - octet_length(payload) AS before FROM outbox WHERE user_id = $1 AND "
         "seq > $2 ORDER BY seq LIMIT $3) e WHERE before <= $4::bigint ORDER BY seq"},
    [S_TOMB] = {"tomb", "SELECT 1 FROM task_tombstones WHERE user_id = $1 AND id = $2::uuid"},
    [S_IDEM_GET] = {"idem_get", "SELECT request_md5 = md5($3), status, body FROM "
                                "idempotency_keys WHERE user_id = $1 AND key = $2"},
    [S_IDEM_PUT] = {"idem_put",
                    "INSERT INTO idempotency_keys (user_id, key, request_md5, status, body) "
                    "VALUES ($1, $2, md5($3), $4::int, $5) ON CONFLICT DO NOTHING"},
    /* A keyed create's first statement: the user's lock (when the user has a row). */
    [S_CREATE_BEGIN] = {"create_begin", "SELECT seq FROM user_seq WHERE user_id = $1 FOR UPDATE"},
};

const char *ts_strerror(int code)
{
	switch (code) {
	case TS_OK:
		return "ok";
	case TS_NOT_FOUND:
		return "not found";
	case TS_CONFLICT:
		return "id vanished during the create";
	case TS_STALE:
		return "version does not match";
	case TS_INVALID:
		return "invalid";
	case TS_GONE:
		return "events pruned";
	case TS_DB:
		return "database error";
	case TS_QUOTA:
		return "task quota reached";
	case TS_NO_ANCHOR:
		return "no such neighbour task";
	case TS_EXHAUSTED:
		return "position keys exhausted in this gap";
	case TS_TOO_MANY:
		return "list too long to renumber";
	case TS_TOO_LARGE:
		return "event too large";
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
	snprintf(t->position, sizeof(t->position), "%s", PQgetvalue(r, row, col + 6));
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

/* A time as the API shows it: exact (parses back to the same microsecond). */
static json_t *time_json(int64_t us)
{
	char buf[RFC3339_LEN];
	if (rfc3339_format(us, RFC3339_EXACT, buf, sizeof(buf)) < 0)
		return json_null(); /* cannot happen: what is stored was parsed or is now */
	return json_string(buf);
}

json_t *ts_task_json(const ts_task *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(t->id));
	json_object_set_new(o, "title", json_string(t->title ? t->title : ""));
	json_object_set_new(o, "description",
	                    t->description ? json_string(t->description) : json_null());
	json_object_set_new(o, "priority", json_string(t->priority));
	json_object_set_new(o, "due_at", t->has_due ? time_json(t->due_us) : json_null());
	json_object_set_new(o, "completed", json_boolean(t->completed));
	json_object_set_new(o, "position", json_string(t->position));
	json_object_set_new(o, "version", json_integer(t->version));
	json_object_set_new(o, "created_at", time_json(t->created_us));
	json_object_set_new(o, "updated_at", time_json(t->updated_us));
	return o;
}

json_t *ts_merge_reply(const ts_task *t, const ts_patch *p, unsigned conflicts)
{
	json_t *task = ts_task_json(t);
	json_t *list = json_array();
	for (int f = 0; f < TS_FIELDS; f++) {
		if (!(conflicts & (1u << f)))
			continue;
		json_t *yours;
		switch (f) {
		case TS_F_TITLE:
			yours = json_string(p->title);
			break;
		case TS_F_DESCRIPTION:
			yours = p->description ? json_string(p->description) : json_null();
			break;
		case TS_F_PRIORITY:
			yours = json_string(p->priority);
			break;
		case TS_F_DUE_AT:
			yours = p->due_null ? json_null() : time_json(p->due_us);
			break;
		default:
			yours = json_boolean(p->completed);
		}
		json_t *theirs = json_object_get(task, ts_field_names[f]);
		json_array_append_new(list, json_pack("{s:s, s:o, s:O}", "field", ts_field_names[f],
		                                      "yours", yours, "theirs",
		                                      theirs ? theirs : json_null()));
	}
	return json_pack("{s:o, s:o}", "task", task, "conflicts", list);
}

json_t *ts_move_reply(const ts_task *t, int64_t seq)
{
	return json_pack("{s:o, s:o}", "task", ts_task_json(t), "seq",
	                 seq ? json_integer(seq) : json_null());
}

char *ts_event_build(event_type type, const char *user, int64_t seq, const char *origin,
                     int64_t ts_us, json_t *payload, char event_id[UUID_STR_LEN])
{
	char ts[RFC3339_LEN];
	uuid_new(event_id);
	json_t *e = json_object();
	json_object_set_new(e, "event_id", json_string(event_id));
	json_object_set_new(e, "event_type", json_string(event_type_name(type)));
	json_object_set_new(e, "user_id", json_string(user));
	json_object_set_new(e, "seq", json_integer(seq));
	json_object_set_new(e, "origin", origin ? json_string(origin) : json_null());
	json_object_set_new(e, "timestamp", json_string(time_iso8601(ts_us, ts, sizeof(ts))));
	json_object_set(e, type == EV_TASK_REORDERED ? "positions" : "task", payload);
	char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(e);
	if (!s)
		abort();
	if (strlen(s) > EVENT_MAX_BYTES - TS_EVENT_SLACK) {
		free(s);
		return NULL;
	}
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

/* The bytes s takes as a JSON string (quotes and escapes included). */
static size_t json_len(const char *s)
{
	size_t n = 2;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
		n += *p < 0x20 ? 6 : (*p == '"' || *p == '\\') ? 2 : 1;
	return n;
}

/* Room for the other members of a task object (ids, times, key, names). */
#define TASK_JSON_OVERHEAD (320 + POSKEY_MAX)

int ts_list(PGconn *pg, const char *user, const char *after, int limit, long max_bytes,
            json_t **tasks, int64_t *seq, char next[POSKEY_BUF])
{
	*tasks = NULL;
	next[0] = '\0';
	char limb[24], capb[24];
	snprintf(limb, sizeof(limb), "%d", limit + 1);
	snprintf(capb, sizeof(capb), "%ld", max_bytes);
	const char *v[] = {user, after, limb, capb};
	PGresult *r = run(pg, S_LIST, 4, v);
	if (!r)
		return TS_DB;
	json_t *arr = json_array();
	*seq = PQntuples(r) ? getll(r, 0, 0) : 0;
	int n = 0, more = 0;
	size_t bytes = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetisnull(r, i, 1))
			continue; /* the LEFT JOIN's row of a user without (more) tasks */
		ts_task t;
		row_task(r, i, 1, &t);
		size_t len = TASK_JSON_OVERHEAD + json_len(t.title) + json_len(t.description);
		/* Past the count, or past the byte bound (a page holds at least one). */
		if (n == limit || (n > 0 && bytes + len > (size_t)max_bytes)) {
			ts_task_clear(&t);
			more = 1;
			break;
		}
		bytes += len;
		json_array_append_new(arr, ts_task_json(&t));
		snprintf(next, POSKEY_BUF, "%s", t.position);
		ts_task_clear(&t);
		n++;
	}
	if (!more)
		next[0] = '\0';
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
		if (s == S_GET_LOCK)
			for (int f = 0; f < TS_FIELDS; f++)
				out->fv[f] =
				    PQgetisnull(r, 0, NCOLS + f) ? 0 : getll(r, 0, NCOLS + f);
		rc = TS_OK;
	}
	PQclear(r);
	return rc;
}

/* Why the user has no task id: TS_DELETED (a tombstone), TS_NOT_FOUND or TS_DB. */
static int missing(PGconn *pg, const char *user, const char *id)
{
	const char *v[] = {user, id};
	PGresult *r = run(pg, S_TOMB, 2, v);
	if (!r)
		return TS_DB;
	int rc = PQntuples(r) ? TS_DELETED : TS_NOT_FOUND;
	PQclear(r);
	return rc;
}

/* In a transaction holding the user's lock: the key's first result. 0 when the key
 * is new; TS_REPLAY (idem->status/body filled), TS_KEY_REUSED or TS_DB otherwise,
 * the transaction rolled back. */
static int idem_get(PGconn *pg, const char *user, ts_idem *idem)
{
	if (!idem)
		return 0;
	const char *v[] = {user, idem->key, idem->request};
	PGresult *r = run(pg, S_IDEM_GET, 3, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	int rc = 0;
	if (PQntuples(r) == 1) {
		if (PQgetvalue(r, 0, 0)[0] != 't') {
			rc = TS_KEY_REUSED;
		} else {
			rc = TS_REPLAY;
			idem->status = (int)getll(r, 0, 1);
			idem->body = PQgetisnull(r, 0, 2) ? NULL : xstrdup(PQgetvalue(r, 0, 2));
		}
		rollback(pg);
	}
	PQclear(r);
	return rc;
}

/* Stores the reply (status, body: NULL for none; not stolen) with the mutation,
 * before COMMIT. 0; otherwise (TS_REPLAY: a concurrent request with the key came
 * first; TS_KEY_REUSED; TS_DB) the transaction is rolled back. */
static int idem_put(PGconn *pg, const char *user, ts_idem *idem, int status, const json_t *body)
{
	if (!idem)
		return 0;
	char st[16];
	snprintf(st, sizeof(st), "%d", status);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *v[] = {user, idem->key, idem->request, st, text};
	PGresult *r = run(pg, S_IDEM_PUT, 5, v);
	free(text);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	int stored = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	if (stored)
		return 0;
	rollback(pg);
	if (simple(pg, "BEGIN"))
		return TS_DB;
	int rc = idem_get(pg, user, idem);
	rollback(pg);
	return rc ? rc : TS_DB;
}

long ts_prune(PGconn *pg, long window_s, int batch)
{
	char w[24], b[24];
	snprintf(w, sizeof(w), "%ld", window_s);
	snprintf(b, sizeof(b), "%d", batch);
	const char *v[] = {w, b};
	static const char *const sql[] = {
	    "DELETE FROM idempotency_keys WHERE (user_id, key) IN (SELECT user_id, key FROM "
	    "idempotency_keys WHERE created_at < now() - make_interval(secs => $1::bigint) "
	    "LIMIT $2::int)",
	    "DELETE FROM task_tombstones WHERE (user_id, id) IN (SELECT user_id, id FROM "
	    "task_tombstones WHERE deleted_at < now() - make_interval(secs => $1::bigint) "
	    "LIMIT $2::int)"};
	long total = 0;
	for (size_t i = 0; i < ARRAY_LEN(sql); i++) {
		PGresult *r = PQexecParams(pg, sql[i], 2, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_warn("could not prune", "{s:s}", "err", PQresultErrorMessage(r));
			PQclear(r);
			return -1;
		}
		total += strtol(PQcmdTuples(r), NULL, 10);
		PQclear(r);
	}
	return total;
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

/* A keyed create's transaction: BEGIN, the user's lock, the key looked up. 0, or
 * what idem_get returns (rolled back). */
static int create_begin(PGconn *pg, const char *user, ts_idem *idem)
{
	if (simple(pg, "BEGIN"))
		return TS_DB;
	const char *v[] = {user};
	PGresult *r = run(pg, S_CREATE_BEGIN, 1, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	PQclear(r);
	return idem_get(pg, user, idem);
}

int ts_create(PGconn *pg, const char *user, const ts_task *in, const char *origin, long max_tasks,
              ts_idem *idem, ts_task *out, int *created)
{
	memset(out, 0, sizeof(*out));
	*created = 0;
	int irc = idem ? create_begin(pg, user, idem) : 0;
	if (irc)
		return irc;
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
	if (!ev) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_TOO_LARGE;
	}
	char *seq_at = strstr(ev, "\"seq\":0,");
	const char *pos_at = last_occurrence(ev, POS_MARK);
	if (!seq_at || !pos_at || pos_at < seq_at)
		abort(); /* cannot happen: the builder writes both */
	seq_at += strlen("\"seq\":");
	char *part1 = xstrndup(ev, (size_t)(seq_at - ev));
	/* The key's quotes stay in the parts around it (keys need no escaping). */
	char *part2 = xstrndup(seq_at + 1, (size_t)(pos_at + 1 - seq_at - 1));
	const char *part3 = pos_at + strlen(POS_MARK) - 1;

	char due[24], created_b[24], maxb[24];
	snprintf(maxb, sizeof(maxb), "%ld", max_tasks);
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
	                   part3,
	                   maxb};
	int unique = 0;
	PGresult *r = run_unique(pg, S_CREATE, 13, v, &unique);
	free(part1);
	free(part2);
	free(ev);
	if (r) {
		int ok = PQntuples(r) == 1;
		if (ok)
			snprintf(t.position, sizeof(t.position), "%s", PQgetvalue(r, 0, 1));
		PQclear(r);
		if (ok && idem) {
			json_t *reply = ts_task_json(&t);
			int prc = idem_put(pg, user, idem, 201, reply);
			json_decref(reply);
			if (!prc && commit(pg))
				prc = TS_DB;
			if (prc) {
				ts_task_clear(&t);
				return prc;
			}
		}
		if (ok) {
			*out = t;
			*created = 1;
			return TS_OK;
		}
		rollback(pg);
		ts_task_clear(&t);
		/* No row: the quota or a tombstone held the insert back, unless this is a
		 * retried create of a task the user has (idempotent whatever the count). */
		int rc = get_task(pg, S_GET, user, in->id, out);
		if (rc == TS_NOT_FOUND)
			rc = missing(pg, user, in->id);
		return rc == TS_NOT_FOUND ? TS_QUOTA : rc;
	}
	rollback(pg);
	ts_task_clear(&t);
	if (!unique)
		return TS_DB;
	/* A keyed create of a new user that raced another with the same key. */
	if (idem && (irc = create_begin(pg, user, idem)) != 0)
		return irc;
	rollback(pg);
	/* The id exists for this user (ids are per user): a retried create. */
	int rc = get_task(pg, S_GET, user, in->id, out);
	if (rc == TS_NOT_FOUND)
		return TS_CONFLICT; /* deleted in between */
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

/* The fields of p that differ from t (bit 1 << TS_F_*). */
static unsigned patch_changes(const ts_task *t, const ts_patch *p)
{
	ts_task c;
	memset(&c, 0, sizeof(c));
	task_copy(&c, t);
	unsigned bits = 0;
	ts_patch one;
	const int has[TS_FIELDS] = {p->has_title, p->has_description, p->has_priority, p->has_due,
	                            p->has_completed};
	for (int f = 0; f < TS_FIELDS; f++) {
		if (!has[f])
			continue;
		one = *p;
		one.has_title = f == TS_F_TITLE;
		one.has_description = f == TS_F_DESCRIPTION;
		one.has_priority = f == TS_F_PRIORITY;
		one.has_due = f == TS_F_DUE_AT;
		one.has_completed = f == TS_F_COMPLETED;
		if (apply_patch(&c, &one))
			bits |= 1u << f;
	}
	ts_task_clear(&c);
	return bits;
}

int ts_update(PGconn *pg, const char *user, const char *id, const ts_patch *patch, int64_t if_match,
              int64_t base, const char *origin, ts_idem *idem, ts_task *out, int *changed,
              unsigned *conflicts)
{
	memset(out, 0, sizeof(*out));
	*changed = 0;
	*conflicts = 0;
	int64_t seq, pos;
	/* The user's lock first, as every writer takes it first: no lock-order deadlock
	 * with a concurrent reorder, and a concurrent delete is fully before or after. */
	if (begin_bump(pg, S_BUMP, user, &seq, &pos))
		return TS_DB;
	int rc = idem_get(pg, user, idem);
	if (rc)
		return rc;
	ts_task t;
	rc = get_task(pg, S_GET_LOCK, user, id, &t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc == TS_NOT_FOUND ? missing(pg, user, id) : rc;
	}
	if (if_match >= 0 && if_match != t.version) {
		rollback(pg);
		*out = t;
		return TS_STALE;
	}
	/* Per-field merge: a field changed since base, to another value, keeps it. */
	unsigned diff = patch_changes(&t, patch);
	ts_patch merged = *patch;
	if (base >= 0) {
		for (int f = 0; f < TS_FIELDS; f++) {
			int64_t fv = t.fv[f] ? t.fv[f] : t.version;
			if ((diff & (1u << f)) && fv > base)
				*conflicts |= 1u << f;
		}
		merged.has_title &= !(*conflicts & (1u << TS_F_TITLE));
		merged.has_description &= !(*conflicts & (1u << TS_F_DESCRIPTION));
		merged.has_priority &= !(*conflicts & (1u << TS_F_PRIORITY));
		merged.has_due &= !(*conflicts & (1u << TS_F_DUE_AT));
		merged.has_completed &= !(*conflicts & (1u << TS_F_COMPLETED));
		diff &= ~*conflicts;
	}
	int was_completed = t.completed;
	if (!apply_patch(&t, &merged)) {
		rollback(pg); /* nothing changed: no event, no seq taken */
		*out = t;
		return TS_OK;
	}
	t.version++;
	for (int f = 0; f < TS_FIELDS; f++) {
		if (diff & (1u << f))
			t.fv[f] = t.version;
		else if (!t.fv[f])
			t.fv[f] = t.version - 1; /* unknown: no later than the version before */
	}
	t.updated_us = now_ms_us();
	event_type type = !was_completed && t.completed ? EV_TASK_COMPLETED : EV_TASK_UPDATED;
	json_t *tj = ts_task_json(&t);
	char event_id[UUID_STR_LEN];
	char *payload = ts_event_build(type, user, seq, origin, t.updated_us, tj, event_id);
	json_decref(tj);
	if (!payload) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_TOO_LARGE;
	}
	char due[24], ver[24], upd[24], seqb[24];
	snprintf(due, sizeof(due), "%" PRId64, t.due_us);
	snprintf(ver, sizeof(ver), "%" PRId64, t.version);
	snprintf(upd, sizeof(upd), "%" PRId64, t.updated_us);
	snprintf(seqb, sizeof(seqb), "%" PRId64, seq);
	char fvb[TS_FIELDS][24];
	for (int f = 0; f < TS_FIELDS; f++)
		snprintf(fvb[f], sizeof(fvb[f]), "%" PRId64, t.fv[f]);
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
	                   payload,
	                   fvb[0],
	                   fvb[1],
	                   fvb[2],
	                   fvb[3],
	                   fvb[4]};
	PGresult *r = run(pg, S_UPDATE, 18, v);
	if (!r) {
		free(payload);
		rollback(pg);
		ts_task_clear(&t);
		return TS_DB;
	}
	PQclear(r);
	if (idem) {
		json_t *reply =
		    base >= 0 ? ts_merge_reply(&t, patch, *conflicts) : ts_task_json(&t);
		rc = idem_put(pg, user, idem, 200, reply);
		json_decref(reply);
		if (rc) {
			free(payload);
			ts_task_clear(&t);
			return rc;
		}
	}
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

int ts_delete(PGconn *pg, const char *user, const char *id, const char *origin, ts_idem *idem)
{
	int64_t seq, pos;
	if (begin_bump(pg, S_BUMP, user, &seq, &pos))
		return TS_DB;
	int rc = idem_get(pg, user, idem);
	if (rc)
		return rc;
	ts_task t;
	rc = get_task(pg, S_GET_LOCK, user, id, &t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc == TS_NOT_FOUND ? missing(pg, user, id) : rc;
	}
	json_t *tj = ts_task_json(&t);
	char event_id[UUID_STR_LEN];
	char *payload =
	    ts_event_build(EV_TASK_DELETED, user, seq, origin, now_ms_us(), tj, event_id);
	json_decref(tj);
	if (!payload) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_TOO_LARGE;
	}
	char seqb[24];
	snprintf(seqb, sizeof(seqb), "%" PRId64, seq);
	const char *v[] = {t.id, user, seqb, event_id, payload};
	PGresult *r = run(pg, S_DELETE, 5, v);
	ts_task_clear(&t);
	free(payload);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	PQclear(r);
	if ((rc = idem_put(pg, user, idem, 204, NULL)))
		return rc;
	return commit(pg) ? TS_DB : TS_OK;
}

/* One key of the user's list (a neighbour), or "" when none: 0, or -1 (rolled back). */
static int key_query(PGconn *pg, int st, int n, const char *const *v, char key[POSKEY_BUF])
{
	key[0] = '\0';
	PGresult *r = run(pg, st, n, v);
	if (!r) {
		rollback(pg);
		return -1;
	}
	if (PQntuples(r) == 1)
		snprintf(key, POSKEY_BUF, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int ts_move(PGconn *pg, const char *user, const char *id, const char *anchor, int after,
            const char *origin, ts_idem *idem, ts_task *out, int64_t *seq)
{
	memset(out, 0, sizeof(*out));
	*seq = 0;
	if (anchor && strcmp(anchor, id) == 0)
		return TS_INVALID;
	int64_t bump, next_pos;
	if (begin_bump(pg, S_BUMP, user, &bump, &next_pos))
		return TS_DB;
	int rc = idem_get(pg, user, idem);
	if (rc)
		return rc;
	ts_task t;
	rc = get_task(pg, S_GET_LOCK, user, id, &t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc == TS_NOT_FOUND ? missing(pg, user, id) : rc;
	}
	/* The new neighbours lo < hi ("" for none), the moving task left out. */
	char lo[POSKEY_BUF] = "", hi[POSKEY_BUF] = "";
	if (anchor) {
		ts_task a;
		rc = get_task(pg, S_GET, user, anchor, &a);
		if (rc != TS_OK) {
			rollback(pg);
			ts_task_clear(&t);
			return rc == TS_NOT_FOUND ? TS_NO_ANCHOR : rc;
		}
		const char *v[] = {user, a.position, id};
		snprintf(after ? lo : hi, POSKEY_BUF, "%s", a.position);
		rc = key_query(pg, after ? S_KEY_AFTER : S_KEY_BEFORE, 3, v, after ? hi : lo);
		ts_task_clear(&a);
	} else if (after) { /* after nothing: the top */
		const char *v[] = {user, id};
		rc = key_query(pg, S_KEY_FIRST, 2, v, hi);
	} else {                                   /* before nothing: the end */
		const char *v[] = {user, "~", id}; /* '~' sorts after every key character */
		rc = key_query(pg, S_KEY_BEFORE, 3, v, lo);
	}
	if (rc) {
		ts_task_clear(&t);
		return TS_DB;
	}
	/* Already there: nothing to write, no event (a retried move is harmless). */
	if ((!lo[0] || strcmp(lo, t.position) < 0) && (!hi[0] || strcmp(t.position, hi) < 0)) {
		rollback(pg);
		*out = t;
		return TS_OK;
	}
	char key[POSKEY_BUF];
	if (!hi[0]) {
		/* The end: the next integer key sorts after every key of the user. */
		poskey_from_index((uint64_t)next_pos, key);
		next_pos++;
	} else {
		int prc = poskey_between(lo[0] ? lo : NULL, hi, key);
		if (prc != POSKEY_OK) {
			rollback(pg);
			ts_task_clear(&t);
			if (prc == POSKEY_ERR_TOO_LONG)
				return TS_EXHAUSTED;
			log_error("position keys out of order", "{s:s, s:s, s:s, s:s}", "user",
			          user, "lo", lo, "hi", hi, "err", poskey_strerror(prc));
			return TS_DB;
		}
	}
	snprintf(t.position, sizeof(t.position), "%s", key);
	json_t *tj = json_pack("{s:s, s:s}", "id", t.id, "position", key);
	char event_id[UUID_STR_LEN];
	char *payload =
	    ts_event_build(EV_TASK_MOVED, user, bump, origin, now_ms_us(), tj, event_id);
	json_decref(tj);
	if (!payload) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_TOO_LARGE;
	}
	char np[24], seqb[24];
	snprintf(np, sizeof(np), "%" PRId64, next_pos);
	snprintf(seqb, sizeof(seqb), "%" PRId64, bump);
	const char *v[] = {t.id, user, key, np, seqb, event_id, payload};
	PGresult *r = run(pg, S_MOVE, 7, v);
	free(payload);
	if (!r) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_DB;
	}
	PQclear(r);
	if (idem) {
		json_t *reply = ts_move_reply(&t, bump);
		rc = idem_put(pg, user, idem, 200, reply);
		json_decref(reply);
		if (rc) {
			ts_task_clear(&t);
			return rc;
		}
	}
	if (commit(pg)) {
		ts_task_clear(&t);
		return TS_DB;
	}
	*out = t;
	*seq = bump;
	return TS_OK;
}

/* The user's current list for a renumbering: ids sorted (for the search) with their
 * index in display order. */
typedef struct cur_task {
	const char *id;  /* into the PGresult */
	const char *key; /* its key now */
	size_t rank;     /* index in display order */
	int used;        /* listed in the request */
} cur_task;

static int cur_cmp(const void *a, const void *b)
{
	return strcmp(((const cur_task *)a)->id, ((const cur_task *)b)->id);
}

/* Appends s to the growing text buffer (*buf, *len, *cap). */
static void text_add(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);
	*buf = xgrow(*buf, cap, *len + n + 1, 1);
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

int ts_reorder(PGconn *pg, const char *user, const char *const *ids, size_t n, const char *origin,
               json_t **positions, json_t **skipped, int64_t *seq)
{
	*positions = *skipped = NULL;
	*seq = 0;
	if (n > TASK_ORDER_MAX)
		return TS_TOO_MANY;
	int64_t bump, next_pos;
	if (begin_bump(pg, S_BUMP, user, &bump, &next_pos))
		return TS_DB;
	char limb[24];
	snprintf(limb, sizeof(limb), "%d", TASK_ORDER_MAX + 1);
	const char *v[] = {user, limb};
	PGresult *r = run(pg, S_IDS, 2, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	size_t have = (size_t)PQntuples(r);
	if (have > TASK_ORDER_MAX) {
		PQclear(r);
		rollback(pg);
		return TS_TOO_MANY;
	}
	cur_task *cur = xcalloc(have + 1, sizeof(*cur));
	for (size_t i = 0; i < have; i++)
		cur[i] = (cur_task){PQgetvalue(r, (int)i, 0), PQgetvalue(r, (int)i, 1), i, 0};
	qsort(cur, have, sizeof(*cur), cur_cmp);
	/* The new order: listed ids found (in request order), then the rest by rank. */
	const char **order = xcalloc(have + 1, sizeof(char *));
	const char **okey = xcalloc(have + 1, sizeof(char *));
	size_t no = 0;
	json_t *skip = json_array();
	for (size_t k = 0; k < n; k++) {
		cur_task probe = {.id = ids[k]};
		cur_task *c = bsearch(&probe, cur, have, sizeof(*cur), cur_cmp);
		if (!c || c->used) {
			json_array_append_new(skip, json_pack("{s:s, s:s}", "id", ids[k], "reason",
			                                      c ? "duplicate" : "not_found"));
			continue;
		}
		c->used = 1;
		okey[no] = c->key;
		order[no++] = c->id;
	}
	/* The rest keep their relative order: in rank order, which cur[] lost. */
	const char **rest = xcalloc(have + 1, sizeof(char *));
	const char **rkey = xcalloc(have + 1, sizeof(char *));
	for (size_t i = 0; i < have; i++)
		if (!cur[i].used) {
			rest[cur[i].rank] = cur[i].id;
			rkey[cur[i].rank] = cur[i].key;
		}
	for (size_t i = 0; i < have; i++)
		if (rest[i]) {
			okey[no] = rkey[i];
			order[no++] = rest[i];
		}
	/* The changed keys, as the event's object and as two array literals (ids are
	 * UUIDs and keys alphanumeric: no quoting needed). */
	json_t *pos = json_object();
	char *aid = NULL, *akey = NULL;
	size_t lid = 0, cid = 0, lkey = 0, ckey = 0;
	text_add(&aid, &lid, &cid, "{");
	text_add(&akey, &lkey, &ckey, "{");
	for (size_t i = 0; i < no; i++) {
		char key[16];
		poskey_from_index(i, key);
		if (strcmp(key, okey[i]) == 0)
			continue;
		json_object_set_new(pos, order[i], json_string(key));
		if (lid > 1) {
			text_add(&aid, &lid, &cid, ",");
			text_add(&akey, &lkey, &ckey, ",");
		}
		text_add(&aid, &lid, &cid, order[i]);
		text_add(&akey, &lkey, &ckey, key);
	}
	text_add(&aid, &lid, &cid, "}");
	text_add(&akey, &lkey, &ckey, "}");
	free(cur);
	free(order);
	free(okey);
	free(rest);
	free(rkey);
	int rc = TS_OK;
	if (json_object_size(pos) == 0) {
		rollback(pg); /* nothing moves: no event, no seq taken */
		goto out;
	}
	char event_id[UUID_STR_LEN];
	char *payload =
	    ts_event_build(EV_TASK_REORDERED, user, bump, origin, now_ms_us(), pos, event_id);
	if (!payload) {
		rollback(pg);
		rc = TS_TOO_LARGE;
		goto out;
	}
	char nb[24], seqb[24];
	snprintf(nb, sizeof(nb), "%zu", no > (size_t)next_pos ? no : (size_t)next_pos);
	snprintf(seqb, sizeof(seqb), "%" PRId64, bump);
	const char *v2[] = {user, aid, akey, nb, seqb, event_id, payload};
	PGresult *r2 = run(pg, S_REORDER, 7, v2);
	free(payload);
	if (!r2) {
		rollback(pg);
		rc = TS_DB;
		goto out;
	}
	PQclear(r2);
	if (commit(pg)) {
		rc = TS_DB;
		goto out;
	}
	*seq = bump;
out:
	PQclear(r);
	free(aid);
	free(akey);
	if (rc != TS_OK) {
		json_decref(pos);
		json_decref(skip);
		return rc;
	}
	*positions = pos;
	*skipped = skip;
	return TS_OK;
}

int ts_events(PGconn *pg, const char *user, int64_t since, int limit, long max_bytes, char **body,
              size_t *len, int64_t *seq)
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
	char sinceb[24], limb[24], capb[24];
	snprintf(sinceb, sizeof(sinceb), "%" PRId64, since);
	snprintf(limb, sizeof(limb), "%d", limit + 1);
	snprintf(capb, sizeof(capb), "%ld", max_bytes);
	const char *v2[] = {user, sinceb, limb, capb};
	r = run(pg, S_EVENTS, 4, v2);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	/* Up to limit rows, and no more than max_bytes of them past the first. */
	int got = PQntuples(r), rows = 0;
	size_t bytes = 0;
	while (rows < got && rows < limit) {
		size_t l = (size_t)PQgetlength(r, rows, 0);
		if (rows > 0 && bytes + l > (size_t)max_bytes)
			break;
		bytes += l;
		rows++;
	}
	int has_more = rows < got;
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
