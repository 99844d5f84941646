#include "task_store.h"

#include "common/log.h"
#include "common/rfc3339.h"

#include <inttypes.h>
#include <uuid/uuid.h>
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

static void text_add(char **buf, size_t *len, size_t *cap, const char *s);
static int read_begin(PGconn *pg, const ts_scope *sc);
static int read_end(PGconn *pg, const ts_scope *sc, int rc);

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
	S_LIST_LOCK,
	S_LIST_LOCK_X,
	S_MEMBERS,
	S_MEMBER_ROLE,
	S_FANOUT,
	S_LOCK_NS,
	S_LOCK_USERS,
	S_MOVE_IN,
	S_MOVE_OUT,
	S__COUNT
};

const char *const ts_field_names[TS_FIELDS] = {"title", "description", "priority", "due_at",
                                               "completed"};
/* The field versions, after the task columns, in TS_F_* order (S_GET_LOCK). */
#define FV_COLS ", title_v, description_v, priority_v, due_at_v, completed_v"

static const stmt stmts[S_LOCK_NS] = {
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
                                       "$12::text FROM s WHERE $14::boolean RETURNING "
                                       "id) SELECT s.seq, s.pos FROM s"},
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
                   "SELECT $2::text, $10::bigint, $11::uuid, $12::text, $13::text WHERE "
                   "$19::boolean"},
    [S_DELETE] = {"delete",
                  "WITH t AS (DELETE FROM tasks WHERE id = $1 AND user_id = $2 RETURNING id), "
                  "c AS (UPDATE user_seq SET task_count = task_count - (SELECT count(*) FROM t) "
                  "WHERE user_id = $2), d AS (INSERT INTO task_tombstones (user_id, id) "
                  "SELECT $2, id FROM t ON CONFLICT DO NOTHING) " OUTBOX_INSERT
                  "SELECT $2::text, $3::bigint, $4::uuid, 'task.deleted', $5::text WHERE "
                  "$6::boolean"},
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
                        "" OUTBOX_INSERT "SELECT $2::text, $5::bigint, $6::uuid, 'task.moved', "
                        "$7::text WHERE $8::boolean"},
    /* At most $2 ids (the caller asks for one more than it accepts). */
    [S_IDS] = {"ids",
               "SELECT id::text, position FROM tasks WHERE user_id = $1" ORDER_BY("") " LIMIT $2"},
    [S_REORDER] = {"reorder",
                   "WITH o AS (SELECT * FROM unnest($2::uuid[], $3::text[]) AS o(id, pos)), t AS "
                   "(UPDATE tasks SET position = o.pos FROM o WHERE tasks.id = o.id AND "
                   "tasks.user_id = $1), u AS (UPDATE user_seq SET next_pos = $4 WHERE user_id = "
                   "$1) " OUTBOX_INSERT "SELECT $1::text, $5::bigint, $6::uuid, "
                   "'task.reordered', $7::text WHERE $8::boolean"},
    /* One statement, so one snapshot: a page of the list and the seq it is current
     * at. $2: the key to continue after (NULL: the start); $3: limit + 1 rows; $4: the
     * byte bound: rows whose predecessors already reach it are not sent (the one
     * that passes it is, so the caller sees the bound was reached). */
    [S_LIST] = {"list", "SELECT s.seq, " COLS(
                            "t.") ", t.before FROM (SELECT coalesce((SELECT seq FROM "
                                  "user_seq WHERE user_id = $5), 0) AS seq) s LEFT "
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
    /* A list's lock: FOR SHARE by its writers, FOR UPDATE by membership changes. */
    [S_LIST_LOCK] = {"list_lock", "SELECT owner_id FROM lists WHERE id = $1::uuid FOR SHARE"},
    [S_LIST_LOCK_X] = {"list_lock_x", "SELECT owner_id FROM lists WHERE id = $1::uuid FOR UPDATE"},
    /* In a statement of its own after the lock: its snapshot sees every membership
     * change committed before the lock was granted. */
    [S_MEMBERS] = {"members", "SELECT user_id, role FROM list_members WHERE list_id = $1::uuid "
                              "ORDER BY user_id COLLATE \"C\""},
    [S_MEMBER_ROLE] = {"member_role", "SELECT role FROM list_members WHERE list_id = $1::uuid "
                                      "AND user_id = $2"},
    /* One event per member ($1, a text[]): each member's next seq, their counter rows
     * locked in bytewise user id order (every fan-out sorts the same way, so writers
     * of lists with common members never deadlock), and the payload spliced from
     * the parts around event_id, user_id and seq (user ids need no JSON escaping). */
    [S_FANOUT] = {"fanout",
                  "WITH s AS (INSERT INTO user_seq (user_id, seq, next_pos) SELECT u, 1, 0 FROM "
                  "unnest($1::text[]) AS u ORDER BY u COLLATE \"C\" ON CONFLICT (user_id) DO "
                  "UPDATE SET seq = user_seq.seq + 1 RETURNING user_id, seq), e AS (SELECT "
                  "user_id, seq, gen_random_uuid() AS eid FROM s) " OUTBOX_INSERT
                  "SELECT user_id, seq, eid, $2::text, '{\"event_id\":\"' || eid || $3::text || "
                  "user_id || '\",\"seq\":' || seq || $4::text FROM e RETURNING user_id, seq"},
};

/* Cross-list moves (ts_move_list). */
static const stmt move_stmts[] = {
    /* A namespace's counter row, locked (created when missing) without taking a seq:
     * the events go through ts_fan_out, which takes the seqs. */
    [S_LOCK_NS - S_LOCK_NS] = {"lock_ns",
                               "INSERT INTO user_seq (user_id, seq, next_pos) VALUES ($1, "
                               "0, 0) ON CONFLICT (user_id) DO UPDATE SET seq = "
                               "user_seq.seq RETURNING seq, next_pos"},
    /* Recipients' counter rows in the one order every fan-out uses. */
    [S_LOCK_USERS - S_LOCK_NS] = {"lock_users",
                                  "SELECT 1 FROM user_seq WHERE user_id = ANY($1::text[]) ORDER BY "
                                  "user_id COLLATE \"C\" FOR UPDATE"},
    /* The target namespace takes one task more, within the quota ($3). */
    [S_MOVE_IN - S_LOCK_NS] = {"move_in",
                               "UPDATE user_seq SET task_count = task_count + 1, next_pos = "
                               "greatest(next_pos, $2::bigint) WHERE user_id = $1 AND "
                               "task_count < $3::bigint RETURNING 1"},
    [S_MOVE_OUT -
        S_LOCK_NS] = {"move_out",
                      "WITH t AS (UPDATE tasks SET user_id = $3, position = $4, version = "
                      "version + 1, updated_at = " TS_PARAM(
                          "$5") " WHERE user_id = $1 AND "
                                "id = $2::uuid RETURNING 1) UPDATE user_seq SET task_count = "
                                "task_count - (SELECT count(*) FROM t) WHERE user_id = $1"},
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
	case TS_DELETED:
		return "task deleted";
	case TS_KEY_REUSED:
		return "idempotency key reused";
	case TS_REPLAY:
		return "replayed";
	case TS_NO_LIST:
		return "no such list";
	case TS_FORBIDDEN:
		return "forbidden";
	}
	return "unknown";
}

/* The statement s (of stmts or move_stmts). */
static const stmt *stmt_of(int s)
{
	return s >= S_LOCK_NS ? &move_stmts[s - S_LOCK_NS] : &stmts[s];
}

int ts_prepare(PGconn *pg, void *arg)
{
	(void)arg;
	for (int i = 0; i < S__COUNT; i++) {
		PGresult *r = PQprepare(pg, stmt_of(i)->name, stmt_of(i)->sql, 0, NULL);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			log_error("could not prepare statement", "{s:s, s:s}", "stmt",
			          stmt_of(i)->name, "err", PQresultErrorMessage(r));
		PQclear(r);
		if (!ok)
			return -1;
	}
	return 0;
}

/* Runs a prepared statement; NULL (logged) unless it succeeded. */
static PGresult *run(PGconn *pg, int s, int n, const char *const *vals)
{
	PGresult *r = PQexecPrepared(pg, stmt_of(s)->name, n, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_warn("statement failed", "{s:s, s:s, s:s}", "stmt", stmt_of(s)->name, "sqlstate",
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
	PGresult *r = PQexecPrepared(pg, stmt_of(s)->name, n, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state && strcmp(state, "23505") == 0)
		*unique = 1;
	else
		log_warn("statement failed", "{s:s, s:s}", "stmt", stmt_of(s)->name, "err",
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
	if (t->list_id[0])
		json_object_set_new(o, "list_id", json_string(t->list_id));
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

/* The event's JSON (see ts_event_build_in); extra's members go before body_key. */
static char *event_build(event_type type, const char *user, int64_t seq, const char *origin,
                         int64_t ts_us, const char *list_id, const char *actor,
                         const char *body_key, json_t *payload, json_t *extra,
                         char event_id[UUID_STR_LEN])
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
	if (list_id)
		json_object_set_new(e, "list_id", json_string(list_id));
	if (actor)
		json_object_set_new(e, "actor", json_string(actor));
	if (extra)
		json_object_update(e, extra);
	json_object_set(e, body_key, payload);
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

char *ts_event_build_in(event_type type, const char *user, int64_t seq, const char *origin,
                        int64_t ts_us, const char *list_id, const char *actor, json_t *payload,
                        char event_id[UUID_STR_LEN])
{
	return event_build(type, user, seq, origin, ts_us, list_id, actor,
	                   type == EV_TASK_REORDERED ? "positions" : "task", payload, NULL,
	                   event_id);
}

char *ts_event_build(event_type type, const char *user, int64_t seq, const char *origin,
                     int64_t ts_us, json_t *payload, char event_id[UUID_STR_LEN])
{
	return ts_event_build_in(type, user, seq, origin, ts_us, NULL, NULL, payload, event_id);
}

/* The namespace of every default list's id (a fixed, random UUID). */
static const char DEFAULT_LIST_NS[] = "5b0c3b8e-7f0e-4a39-9d55-2f1c4a6e9b10";

void ts_default_list_id(const char *user, char out[UUID_STR_LEN])
{
	uuid_t ns, id;
	if (uuid_parse(DEFAULT_LIST_NS, ns))
		abort();
	uuid_generate_md5(id, ns, user, strlen(user));
	uuid_unparse_lower(id, out);
}

void ts_scope_default(ts_scope *sc, const char *user, char id_buf[UUID_STR_LEN])
{
	memset(sc, 0, sizeof(*sc));
	ts_default_list_id(user, id_buf);
	sc->ns = user;
	sc->list_id = id_buf;
	sc->actor = user;
}

void ts_scope_list(ts_scope *sc, const char *actor, const char *list_id,
                   char ns_buf[UUID_STR_LEN + 1])
{
	memset(sc, 0, sizeof(*sc));
	snprintf(ns_buf, UUID_STR_LEN + 1, "#%s", list_id);
	sc->ns = ns_buf;
	sc->list_id = list_id;
	sc->actor = actor;
	sc->shared = 1;
}

void ts_scope_clear(ts_scope *sc)
{
	if (!sc)
		return;
	free(sc->recipients);
	sc->recipients = NULL;
	sc->nrecipients = 0;
}

int ts_list_lock(PGconn *pg, ts_scope *sc, int begin, int exclusive, char role[8])
{
	role[0] = '\0';
	if (begin && simple(pg, "BEGIN"))
		return TS_DB;
	const char *v[] = {sc->list_id, sc->actor};
	PGresult *r = run(pg, exclusive ? S_LIST_LOCK_X : S_LIST_LOCK, 1, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	int found = PQntuples(r) == 1;
	PQclear(r);
	if (!found) {
		rollback(pg);
		return TS_NO_LIST;
	}
	if (!(r = run(pg, S_MEMBERS, 1, v))) {
		rollback(pg);
		return TS_DB;
	}
	int n = PQntuples(r);
	char *lit = NULL;
	size_t len = 0, cap = 0;
	text_add(&lit, &len, &cap, "{");
	for (int i = 0; i < n; i++) {
		const char *u = PQgetvalue(r, i, 0);
		if (strcmp(u, sc->actor) == 0)
			snprintf(role, 8, "%s", PQgetvalue(r, i, 1));
		/* user ids hold no quote, backslash, comma or brace: no escaping */
		text_add(&lit, &len, &cap, i ? ",\"" : "\"");
		text_add(&lit, &len, &cap, u);
		text_add(&lit, &len, &cap, "\"");
	}
	text_add(&lit, &len, &cap, "}");
	PQclear(r);
	if (!role[0]) {
		free(lit);
		rollback(pg);
		return TS_NO_LIST;
	}
	free(sc->recipients);
	sc->recipients = lit;
	sc->nrecipients = n;
	return TS_OK;
}

int ts_fan_out(PGconn *pg, const ts_scope *sc, event_type type, const char *origin, int64_t ts_us,
               const char *body_key, json_t *body, json_t *extra, int64_t *actor_seq)
{
	if (actor_seq)
		*actor_seq = 0;
	char eid[UUID_STR_LEN];
	char *ev = event_build(type, "", 0, origin, ts_us, sc->list_id, sc->actor, body_key, body,
	                       extra, eid);
	/* each member's copy adds its user id and seq to the template's "" and 0 */
	if (ev && strlen(ev) + USER_ID_MAX + 24 > EVENT_MAX_BYTES - TS_EVENT_SLACK) {
		free(ev);
		ev = NULL;
	}
	if (!ev) {
		rollback(pg);
		return TS_TOO_LARGE;
	}
	/* {"event_id":"<eid>","event_type":"T","user_id":"","seq":0,<tail> */
	static const char head[] = "{\"event_id\":\"";
	static const char seq0[] = "\",\"seq\":0,";
	size_t hl = sizeof(head) - 1;
	char *user_end = strstr(ev, seq0);
	if (strncmp(ev, head, hl) != 0 || strncmp(ev + hl, eid, UUID_STR_LEN - 1) != 0 || !user_end)
		abort(); /* cannot happen: event_build writes these members first */
	const char *mid_start = ev + hl + UUID_STR_LEN - 1;
	char *mid = xstrndup(mid_start, (size_t)(user_end - mid_start)); /* ends with "user_id":" */
	const char *tail = user_end + sizeof(seq0) - 2;                  /* from the comma on */
	const char *v[] = {sc->recipients, event_type_name(type), mid, tail};
	PGresult *r = run(pg, S_FANOUT, 4, v);
	free(mid);
	free(ev);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	for (int i = 0; actor_seq && i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, 0), sc->actor) == 0)
			*actor_seq = getll(r, i, 1);
	PQclear(r);
	return TS_OK;
}

/* Wall clock now at millisecond precision (what the API shows is what is stored). */
static int64_t now_ms_us(void)
{
	return wall_us() / 1000 * 1000;
}

/* A write's first steps: BEGIN; for a shared list its lock, its members and the
 * actor's right to write (a viewer: TS_FORBIDDEN); then the namespace's next seq
 * (and the lock on the namespace's writes). TS_OK, else the code with the
 * transaction rolled back. */
static int begin_bump(PGconn *pg, int s, ts_scope *sc, int64_t *seq, int64_t *next_pos)
{
	if (sc->shared) {
		char role[8];
		int rc = ts_list_lock(pg, sc, 1, 0, role);
		if (rc)
			return rc;
		if (strcmp(role, "viewer") == 0) {
			rollback(pg);
			return TS_FORBIDDEN;
		}
	} else if (simple(pg, "BEGIN")) {
		return TS_DB;
	}
	const char *v[] = {sc->ns};
	PGresult *r = run(pg, s, 1, v);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		rollback(pg);
		return TS_DB;
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

int ts_list(PGconn *pg, ts_scope *sc, const char *after, int limit, long max_bytes, json_t **tasks,
            int64_t *seq, char next[POSKEY_BUF])
{
	*tasks = NULL;
	next[0] = '\0';
	char limb[24], capb[24];
	snprintf(limb, sizeof(limb), "%d", limit + 1);
	snprintf(capb, sizeof(capb), "%ld", max_bytes);
	int rc = read_begin(pg, sc);
	if (rc)
		return rc;
	/* The tasks are the namespace's; the seq is the reader's own (its catch-up). */
	const char *v[] = {sc->ns, after, limb, capb, sc->actor};
	PGresult *r = run(pg, S_LIST, 5, v);
	if (!r)
		return read_end(pg, sc, TS_DB);
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
		snprintf(t.list_id, sizeof(t.list_id), "%s", sc->list_id);
		json_array_append_new(arr, ts_task_json(&t));
		snprintf(next, POSKEY_BUF, "%s", t.position);
		ts_task_clear(&t);
		n++;
	}
	if (!more)
		next[0] = '\0';
	PQclear(r);
	if ((rc = read_end(pg, sc, TS_OK))) {
		json_decref(arr);
		return rc;
	}
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

/* A shared list's read: a read-only snapshot in which the actor is a member (the
 * read and the check see the same membership). TS_OK (in the transaction),
 * TS_NO_LIST or TS_DB (rolled back). Nothing to do for the default list. */
static int read_begin(PGconn *pg, const ts_scope *sc)
{
	if (!sc->shared)
		return TS_OK;
	if (simple(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
		return TS_DB;
	const char *v[] = {sc->list_id, sc->actor};
	PGresult *r = run(pg, S_MEMBER_ROLE, 2, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	int member = PQntuples(r) == 1;
	PQclear(r);
	if (!member) {
		rollback(pg);
		return TS_NO_LIST;
	}
	return TS_OK;
}

static int read_end(PGconn *pg, const ts_scope *sc, int rc)
{
	if (!sc->shared)
		return rc;
	if (rc != TS_OK) {
		rollback(pg);
		return rc;
	}
	return commit(pg) ? TS_DB : TS_OK;
}

int ts_get(PGconn *pg, ts_scope *sc, const char *id, ts_task *out)
{
	memset(out, 0, sizeof(*out));
	int rc = read_begin(pg, sc);
	if (rc)
		return rc;
	rc = read_end(pg, sc, get_task(pg, S_GET, sc->ns, id, out));
	if (rc == TS_OK)
		snprintf(out->list_id, sizeof(out->list_id), "%s", sc->list_id);
	else
		ts_task_clear(out);
	return rc;
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

/* A keyed or shared create's transaction: BEGIN, the namespace's lock (a shared
 * list: the list's lock and the actor's right to write), the key looked up. 0, or
 * the code (rolled back). */
static int create_begin(PGconn *pg, ts_scope *sc, ts_idem *idem)
{
	if (sc->shared) {
		char role[8];
		int rc = ts_list_lock(pg, sc, 1, 0, role);
		if (rc)
			return rc;
		if (strcmp(role, "viewer") == 0) {
			rollback(pg);
			return TS_FORBIDDEN;
		}
		return idem_get(pg, sc->actor, idem);
	}
	if (simple(pg, "BEGIN"))
		return TS_DB;
	const char *v[] = {sc->ns};
	PGresult *r = run(pg, S_CREATE_BEGIN, 1, v);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	PQclear(r);
	return idem_get(pg, sc->actor, idem);
}

int ts_create(PGconn *pg, ts_scope *sc, const ts_task *in, const char *origin, long max_tasks,
              ts_idem *idem, ts_task *out, int *created)
{
	memset(out, 0, sizeof(*out));
	*created = 0;
	const char *user = sc->ns;
	/* A shared list's create is a transaction of several statements (the list's lock,
	 * the create, the members' events); the default list's is one statement. */
	int in_tx = idem || sc->shared;
	int irc = in_tx ? create_begin(pg, sc, idem) : 0;
	if (irc)
		return irc;
	ts_task t;
	task_copy(&t, in);
	snprintf(t.list_id, sizeof(t.list_id), "%s", sc->list_id);
	t.version = 1;
	t.created_us = t.updated_us = now_ms_us();

	/* The event with placeholders for seq and position, split around them. */
	json_t *tj = ts_task_json(&t);
	json_object_set_new(tj, "position", json_string("\x01pos\x01"));
	char event_id[UUID_STR_LEN];
	char *ev = ts_event_build_in(EV_TASK_CREATED, sc->actor, 0, origin, t.created_us,
	                             sc->list_id, sc->actor, tj, event_id);
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
	                   maxb,
	                   sc->shared ? "false" : "true"};
	int unique = 0;
	PGresult *r = run_unique(pg, S_CREATE, 14, v, &unique);
	free(part1);
	free(part2);
	free(ev);
	if (r) {
		int ok = PQntuples(r) == 1;
		if (ok)
			snprintf(t.position, sizeof(t.position), "%s", PQgetvalue(r, 0, 1));
		PQclear(r);
		if (ok && in_tx) {
			json_t *reply = ts_task_json(&t);
			int prc = sc->shared ? ts_fan_out(pg, sc, EV_TASK_CREATED, origin,
			                                  t.created_us, "task", reply, NULL, NULL)
			                     : 0;
			if (!prc)
				prc = idem_put(pg, sc->actor, idem, 201, reply);
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
		if (rc == TS_OK)
			snprintf(out->list_id, sizeof(out->list_id), "%s", sc->list_id);
		if (rc == TS_NOT_FOUND)
			rc = missing(pg, user, in->id);
		return rc == TS_NOT_FOUND ? TS_QUOTA : rc;
	}
	rollback(pg);
	ts_task_clear(&t);
	if (!unique)
		return TS_DB;
	/* A keyed create of a new user that raced another with the same key. */
	if (idem && (irc = create_begin(pg, sc, idem)) != 0)
		return irc;
	rollback(pg);
	/* The id exists for this user (ids are per user): a retried create. */
	int rc = get_task(pg, S_GET, user, in->id, out);
	if (rc == TS_OK)
		snprintf(out->list_id, sizeof(out->list_id), "%s", sc->list_id);
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

/* The first steps of a change to task id: begin_bump, the idempotency key's
 * earlier outcome (TS_REPLAY, TS_KEY_REUSED), then the task locked into *t (a
 * deleted one: TS_DELETED, else TS_NOT_FOUND). TS_OK, else the code with the
 * transaction rolled back. */
static int begin_on_task(PGconn *pg, ts_scope *sc, const char *id, ts_idem *idem, int64_t *seq,
                         int64_t *next_pos, ts_task *t)
{
	int rc = begin_bump(pg, S_BUMP, sc, seq, next_pos);
	if (rc)
		return rc;
	if ((rc = idem_get(pg, sc->actor, idem)))
		return rc;
	rc = get_task(pg, S_GET_LOCK, sc->ns, id, t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc == TS_NOT_FOUND ? missing(pg, sc->ns, id) : rc;
	}
	snprintf(t->list_id, sizeof(t->list_id), "%s", sc->list_id);
	return TS_OK;
}

int ts_update(PGconn *pg, ts_scope *sc, const char *id, const ts_patch *patch, int64_t if_match,
              int64_t base, const char *origin, ts_idem *idem, ts_task *out, int *changed,
              unsigned *conflicts)
{
	memset(out, 0, sizeof(*out));
	*changed = 0;
	*conflicts = 0;
	const char *user = sc->ns;
	int64_t seq, pos;
	/* The user's lock first, as every writer takes it first: no lock-order deadlock
	 * with a concurrent reorder, and a concurrent delete is fully before or after. */
	ts_task t;
	int rc = begin_on_task(pg, sc, id, idem, &seq, &pos, &t);
	if (rc)
		return rc;
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
	char *payload = ts_event_build_in(type, sc->actor, seq, origin, t.updated_us, sc->list_id,
	                                  sc->actor, tj, event_id);
	if (payload && sc->shared &&
	    (rc = ts_fan_out(pg, sc, type, origin, t.updated_us, "task", tj, NULL, NULL))) {
		json_decref(tj);
		free(payload);
		ts_task_clear(&t);
		return rc;
	}
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
	                   fvb[4],
	                   sc->shared ? "false" : "true"};
	PGresult *r = run(pg, S_UPDATE, 19, v);
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
		rc = idem_put(pg, sc->actor, idem, 200, reply);
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

int ts_delete(PGconn *pg, ts_scope *sc, const char *id, const char *origin, ts_idem *idem)
{
	const char *user = sc->ns;
	int64_t seq, pos;
	ts_task t;
	int rc = begin_on_task(pg, sc, id, idem, &seq, &pos, &t);
	if (rc)
		return rc;
	json_t *tj = ts_task_json(&t);
	char event_id[UUID_STR_LEN];
	int64_t now = now_ms_us();
	char *payload = ts_event_build_in(EV_TASK_DELETED, sc->actor, seq, origin, now, sc->list_id,
	                                  sc->actor, tj, event_id);
	if (payload && sc->shared &&
	    (rc = ts_fan_out(pg, sc, EV_TASK_DELETED, origin, now, "task", tj, NULL, NULL))) {
		json_decref(tj);
		free(payload);
		ts_task_clear(&t);
		return rc;
	}
	json_decref(tj);
	if (!payload) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_TOO_LARGE;
	}
	char seqb[24];
	snprintf(seqb, sizeof(seqb), "%" PRId64, seq);
	const char *v[] = {t.id, user, seqb, event_id, payload, sc->shared ? "false" : "true"};
	PGresult *r = run(pg, S_DELETE, 6, v);
	ts_task_clear(&t);
	free(payload);
	if (!r) {
		rollback(pg);
		return TS_DB;
	}
	PQclear(r);
	if ((rc = idem_put(pg, sc->actor, idem, 204, NULL)))
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

/* The neighbours lo < hi ("" for none) a task id placed before (after = 0) or after
 * the task anchor of namespace ns (NULL: the end or the top) goes between, the task
 * itself left out. TS_OK, TS_NO_ANCHOR or TS_DB (each rolled back). */
static int neighbours(PGconn *pg, const char *ns, const char *id, const char *anchor, int after,
                      char lo[POSKEY_BUF], char hi[POSKEY_BUF])
{
	int rc;
	if (anchor) {
		ts_task a;
		rc = get_task(pg, S_GET, ns, anchor, &a);
		if (rc != TS_OK) {
			rollback(pg);
			return rc == TS_NOT_FOUND ? TS_NO_ANCHOR : rc;
		}
		const char *v[] = {ns, a.position, id};
		snprintf(after ? lo : hi, POSKEY_BUF, "%s", a.position);
		rc = key_query(pg, after ? S_KEY_AFTER : S_KEY_BEFORE, 3, v, after ? hi : lo);
		ts_task_clear(&a);
	} else if (after) { /* after nothing: the top */
		const char *v[] = {ns, id};
		rc = key_query(pg, S_KEY_FIRST, 2, v, hi);
	} else {                                 /* before nothing: the end */
		const char *v[] = {ns, "~", id}; /* '~' sorts after every key character */
		rc = key_query(pg, S_KEY_BEFORE, 3, v, lo);
	}
	return rc ? TS_DB : TS_OK;
}

int ts_move(PGconn *pg, ts_scope *sc, const char *id, const char *anchor, int after,
            const char *origin, ts_idem *idem, ts_task *out, int64_t *seq)
{
	memset(out, 0, sizeof(*out));
	*seq = 0;
	if (anchor && strcmp(anchor, id) == 0)
		return TS_INVALID;
	const char *user = sc->ns;
	int64_t bump, next_pos;
	ts_task t;
	int rc = begin_on_task(pg, sc, id, idem, &bump, &next_pos, &t);
	if (rc)
		return rc;
	/* The new neighbours lo < hi ("" for none), the moving task left out. */
	char lo[POSKEY_BUF] = "", hi[POSKEY_BUF] = "";
	if ((rc = neighbours(pg, user, id, anchor, after, lo, hi))) {
		ts_task_clear(&t);
		return rc;
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
	int64_t now = now_ms_us();
	char *payload = ts_event_build_in(EV_TASK_MOVED, sc->actor, bump, origin, now, sc->list_id,
	                                  sc->actor, tj, event_id);
	if (payload && sc->shared &&
	    (rc = ts_fan_out(pg, sc, EV_TASK_MOVED, origin, now, "task", tj, NULL, &bump))) {
		json_decref(tj);
		free(payload);
		ts_task_clear(&t);
		return rc;
	}
	json_decref(tj);
	if (!payload) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_TOO_LARGE;
	}
	char np[24], seqb[24];
	snprintf(np, sizeof(np), "%" PRId64, next_pos);
	snprintf(seqb, sizeof(seqb), "%" PRId64, bump);
	const char *v[] = {t.id, user,     key,     np,
	                   seqb, event_id, payload, sc->shared ? "false" : "true"};
	PGresult *r = run(pg, S_MOVE, 8, v);
	free(payload);
	if (!r) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_DB;
	}
	PQclear(r);
	if (idem) {
		json_t *reply = ts_move_reply(&t, bump);
		rc = idem_put(pg, sc->actor, idem, 200, reply);
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

/* A namespace's counter row locked: its next integer key into *next_pos. TS_OK or
 * TS_DB (rolled back). */
static int lock_ns(PGconn *pg, const char *ns, int64_t *next_pos)
{
	const char *v[] = {ns};
	PGresult *r = run(pg, S_LOCK_NS, 1, v);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		rollback(pg);
		return TS_DB;
	}
	*next_pos = getll(r, 0, 1);
	PQclear(r);
	return TS_OK;
}

/* The recipients of a scope's events: its members (filled by its lock) or, for the
 * default list, the actor alone. */
static void scope_recipients(ts_scope *sc)
{
	if (sc->shared)
		return;
	size_t n = strlen(sc->actor) + 5;
	free(sc->recipients);
	sc->recipients = xmalloc(n);
	snprintf(sc->recipients, n, "{\"%s\"}", sc->actor);
	sc->nrecipients = 1;
}

int ts_move_list(PGconn *pg, ts_scope *src, ts_scope *dst, const char *id, const char *anchor,
                 int after, const char *origin, long max_tasks, ts_idem *idem, ts_task *out,
                 int64_t *seq)
{
	memset(out, 0, sizeof(*out));
	*seq = 0;
	if (anchor && strcmp(anchor, id) == 0)
		return TS_INVALID;
	if (simple(pg, "BEGIN"))
		return TS_DB;
	/* Locks in the order every writer takes them: the lists' rows (by list id), the
	 * namespaces' counter rows (bytewise: the shared lists' "#..." before users'),
	 * then the recipients' counter rows (by user id). */
	ts_scope *two[2] = {src, dst};
	if (strcmp(src->list_id, dst->list_id) > 0) {
		two[0] = dst;
		two[1] = src;
	}
	int rc;
	for (int i = 0; i < 2; i++) {
		char role[8];
		if (!two[i]->shared)
			continue;
		if ((rc = ts_list_lock(pg, two[i], 0, 0, role)))
			return rc;
		if (strcmp(role, "viewer") == 0) {
			rollback(pg);
			return TS_FORBIDDEN;
		}
	}
	int64_t np_src, np_dst;
	int src_first = strcmp(src->ns, dst->ns) < 0;
	if ((rc = lock_ns(pg, src_first ? src->ns : dst->ns, src_first ? &np_src : &np_dst)) ||
	    (rc = lock_ns(pg, src_first ? dst->ns : src->ns, src_first ? &np_dst : &np_src)))
		return rc;
	(void)np_src;
	scope_recipients(src);
	scope_recipients(dst);
	{
		/* both recipient sets at once, so their rows are locked in one order */
		size_t n = strlen(src->recipients) + strlen(dst->recipients) + 2;
		char *both = xmalloc(n);
		snprintf(both, n, "%.*s,%s", (int)strlen(src->recipients) - 1, src->recipients,
		         dst->recipients + 1);
		const char *v[] = {both};
		PGresult *r = run(pg, S_LOCK_USERS, 1, v);
		free(both);
		if (!r) {
			rollback(pg);
			return TS_DB;
		}
		PQclear(r);
	}
	if ((rc = idem_get(pg, src->actor, idem)))
		return rc;
	ts_task t;
	rc = get_task(pg, S_GET_LOCK, src->ns, id, &t);
	if (rc != TS_OK) {
		rollback(pg);
		return rc == TS_NOT_FOUND ? missing(pg, src->ns, id) : rc;
	}
	snprintf(t.list_id, sizeof(t.list_id), "%s", src->list_id);
	ts_task there;
	if ((rc = get_task(pg, S_GET, dst->ns, id, &there)) != TS_NOT_FOUND) {
		if (rc == TS_OK)
			ts_task_clear(&there);
		rollback(pg);
		ts_task_clear(&t);
		return rc == TS_OK ? TS_CONFLICT : rc;
	}
	char lo[POSKEY_BUF] = "", hi[POSKEY_BUF] = "", key[POSKEY_BUF];
	if ((rc = neighbours(pg, dst->ns, id, anchor, after, lo, hi))) {
		ts_task_clear(&t);
		return rc;
	}
	if (!hi[0]) {
		poskey_from_index((uint64_t)np_dst, key);
		np_dst++;
	} else {
		int prc = poskey_between(lo[0] ? lo : NULL, hi, key);
		if (prc != POSKEY_OK) {
			rollback(pg);
			ts_task_clear(&t);
			return prc == POSKEY_ERR_TOO_LONG ? TS_EXHAUSTED : TS_DB;
		}
	}
	char npb[24], maxb[24], upd[24];
	snprintf(npb, sizeof(npb), "%" PRId64, np_dst);
	snprintf(maxb, sizeof(maxb), "%ld", max_tasks);
	const char *vin[] = {dst->ns, npb, maxb};
	PGresult *r = run(pg, S_MOVE_IN, 3, vin);
	if (!r) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_DB;
	}
	int room = PQntuples(r) == 1;
	PQclear(r);
	if (!room) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_QUOTA;
	}
	int64_t now = now_ms_us();
	snprintf(upd, sizeof(upd), "%" PRId64, now);
	const char *vout[] = {src->ns, id, dst->ns, key, upd};
	if (!(r = run(pg, S_MOVE_OUT, 5, vout))) {
		rollback(pg);
		ts_task_clear(&t);
		return TS_DB;
	}
	PQclear(r);
	/* task.deleted to the source list's members first, then task.created to the
	 * target's: a member of both sees it leave one list, then arrive in the other */
	json_t *old = ts_task_json(&t);
	rc = ts_fan_out(pg, src, EV_TASK_DELETED, origin, now, "task", old, NULL, NULL);
	json_decref(old);
	snprintf(t.position, sizeof(t.position), "%s", key);
	snprintf(t.list_id, sizeof(t.list_id), "%s", dst->list_id);
	t.version++;
	t.updated_us = now;
	json_t *tj = ts_task_json(&t);
	int64_t actor_seq = 0;
	if (!rc)
		rc =
		    ts_fan_out(pg, dst, EV_TASK_CREATED, origin, now, "task", tj, NULL, &actor_seq);
	json_decref(tj);
	if (!rc && idem) {
		json_t *reply = ts_move_reply(&t, actor_seq);
		rc = idem_put(pg, src->actor, idem, 200, reply);
		json_decref(reply);
	}
	if (!rc && commit(pg))
		rc = TS_DB;
	if (rc) {
		ts_task_clear(&t);
		return rc;
	}
	*out = t;
	*seq = actor_seq;
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

int ts_reorder(PGconn *pg, ts_scope *sc, const char *const *ids, size_t n, const char *origin,
               json_t **positions, json_t **skipped, int64_t *seq)
{
	*positions = *skipped = NULL;
	*seq = 0;
	if (n > TASK_ORDER_MAX)
		return TS_TOO_MANY;
	const char *user = sc->ns;
	int64_t bump, next_pos;
	int brc = begin_bump(pg, S_BUMP, sc, &bump, &next_pos);
	if (brc)
		return brc;
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
	int64_t now = now_ms_us();
	char *payload = ts_event_build_in(EV_TASK_REORDERED, sc->actor, bump, origin, now,
	                                  sc->list_id, sc->actor, pos, event_id);
	if (!payload) {
		rollback(pg);
		rc = TS_TOO_LARGE;
		goto out;
	}
	if (sc->shared && (rc = ts_fan_out(pg, sc, EV_TASK_REORDERED, origin, now, "positions", pos,
	                                   NULL, &bump))) {
		free(payload);
		goto out;
	}
	char nb[24], seqb[24];
	snprintf(nb, sizeof(nb), "%zu", no > (size_t)next_pos ? no : (size_t)next_pos);
	snprintf(seqb, sizeof(seqb), "%" PRId64, bump);
	const char *v2[] = {user, aid,      akey,    nb,
	                    seqb, event_id, payload, sc->shared ? "false" : "true"};
	PGresult *r2 = run(pg, S_REORDER, 8, v2);
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
