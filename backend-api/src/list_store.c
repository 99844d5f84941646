#include "list_store.h"

#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many lists in GET /api/v1/lists (others can add a user to lists: the
 * reply is bounded whatever they do). */
#define LS_LISTS_MAX 1000

#define LIST_COLS "l.id::text, l.name, l.owner_id, l.is_default, m.role"

/* Runs a parameterised statement; NULL (logged, transaction rolled back) unless it
 * succeeded. */
static PGresult *q(PGconn *pg, const char *sql, int n, const char *const *v)
{
	PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_warn("statement failed", "{s:s, s:s}", "sql", sql, "err", PQresultErrorMessage(r));
	PQclear(r);
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
	return NULL;
}

/* A statement whose rows are not needed: 0, or TS_DB (rolled back). */
static int x(PGconn *pg, const char *sql, int n, const char *const *v)
{
	PGresult *r = q(pg, sql, n, v);
	if (!r)
		return TS_DB;
	PQclear(r);
	return 0;
}

static void rollback(PGconn *pg)
{
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
}

static int commit(PGconn *pg)
{
	PGresult *r = PQexec(pg, "COMMIT");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok)
		rollback(pg);
	return ok ? 0 : TS_DB;
}

/* A row of LIST_COLS (from col) as the API shows a list. */
static json_t *row_list(const PGresult *r, int row)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s}", "id", PQgetvalue(r, row, 0), "name",
	                 PQgetvalue(r, row, 1), "owner_id", PQgetvalue(r, row, 2), "default",
	                 PQgetvalue(r, row, 3)[0] == 't', "role", PQgetvalue(r, row, 4));
}

/* The list as events carry it (no per-member role). */
static json_t *event_list(const char *id, const char *name, const char *owner)
{
	json_t *l = json_pack("{s:s}", "id", id);
	if (name)
		json_object_set_new(l, "name", json_string(name));
	if (owner)
		json_object_set_new(l, "owner_id", json_string(owner));
	return l;
}

/* Writes the user's default list's row and owner row when missing (outside or
 * inside a transaction). A row with that id that is not the user's default list
 * (list ids of version 3, the default lists', are refused by ls_create) is left. */
static int ensure_default(PGconn *pg, const char *user, char id[UUID_STR_LEN])
{
	ts_default_list_id(user, id);
	const char *v[] = {id, user};
	return x(pg,
	         "WITH l AS (INSERT INTO lists (id, owner_id, name, is_default) VALUES ($1::uuid, "
	         "$2, 'Tasks', true) ON CONFLICT DO NOTHING RETURNING id) INSERT INTO list_members "
	         "(list_id, user_id, role) SELECT id, $2, 'owner' FROM l",
	         2, v);
}

int ls_all(PGconn *pg, const char *user, json_t **out)
{
	*out = NULL;
	char def[UUID_STR_LEN];
	int rc = ensure_default(pg, user, def);
	if (rc)
		return rc;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", LS_LISTS_MAX);
	const char *v[] = {user, lim};
	PGresult *r =
	    q(pg,
	      "SELECT " LIST_COLS ", (SELECT count(*) FROM list_members c WHERE "
	      "c.list_id = l.id) FROM list_members m JOIN lists l ON l.id = m.list_id "
	      "WHERE m.user_id = $1 ORDER BY l.is_default DESC, l.name, l.id LIMIT $2::int",
	      2, v);
	if (!r)
		return TS_DB;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *l = row_list(r, i);
		json_object_set_new(l, "members",
		                    json_integer(strtoll(PQgetvalue(r, i, 5), NULL, 10)));
		json_array_append_new(arr, l);
	}
	PQclear(r);
	*out = arr;
	return TS_OK;
}

int ls_get(PGconn *pg, const char *user, const char *id, json_t **out)
{
	*out = NULL;
	char def[UUID_STR_LEN];
	ts_default_list_id(user, def);
	if (strcmp(def, id) == 0 && ensure_default(pg, user, def))
		return TS_DB;
	PGresult *r;
	if ((r = q(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL)) == NULL)
		return TS_DB;
	PQclear(r);
	const char *v[] = {id, user};
	r = q(pg,
	      "SELECT " LIST_COLS " FROM lists l JOIN list_members m ON m.list_id = l.id WHERE "
	      "l.id = $1::uuid AND m.user_id = $2",
	      2, v);
	if (!r)
		return TS_DB;
	if (PQntuples(r) != 1) {
		PQclear(r);
		rollback(pg);
		return TS_NO_LIST;
	}
	json_t *l = row_list(r, 0);
	PQclear(r);
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", TS_LIST_MEMBERS_MAX);
	const char *v2[] = {id, lim};
	r = q(pg,
	      "SELECT user_id, role FROM list_members WHERE list_id = $1::uuid ORDER BY role = "
	      "'owner' DESC, user_id LIMIT $2::int",
	      2, v2);
	if (!r) {
		json_decref(l);
		return TS_DB;
	}
	json_t *members = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(members,
		                      json_pack("{s:s, s:s}", "user_id", PQgetvalue(r, i, 0),
		                                "role", PQgetvalue(r, i, 1)));
	PQclear(r);
	json_object_set_new(l, "members", members);
	if (commit(pg)) {
		json_decref(l);
		return TS_DB;
	}
	*out = l;
	return TS_OK;
}

/* Wall clock now at millisecond precision (what the API shows is what is stored). */
static int64_t now_ms_us(void)
{
	return wall_us() / 1000 * 1000;
}

/* A scope whose only recipient is user (valid user ids need no quoting). */
static void one_recipient(ts_scope *sc, const char *user)
{
	size_t n = strlen(user) + 5;
	free(sc->recipients);
	sc->recipients = xmalloc(n);
	snprintf(sc->recipients, n, "{\"%s\"}", user);
	sc->nrecipients = 1;
}

/* Takes user out of sc's recipients (the literal rebuilt: user ids hold no quote,
 * backslash, comma or brace). */
static void drop_recipient(ts_scope *sc, const char *user)
{
	size_t cap = strlen(sc->recipients) + 1, len = 0, ulen = strlen(user);
	char *out = xmalloc(cap);
	int n = 0;
	out[len++] = '{';
	for (const char *p = sc->recipients; (p = strchr(p, '"'));) {
		const char *end = strchr(p + 1, '"');
		if (!end)
			break;
		size_t k = (size_t)(end - p - 1);
		if (k != ulen || memcmp(p + 1, user, k) != 0) {
			if (n++)
				out[len++] = ',';
			memcpy(out + len, p, k + 2);
			len += k + 2;
		}
		p = end + 1;
	}
	out[len++] = '}';
	out[len] = '\0';
	free(sc->recipients);
	sc->recipients = out;
	sc->nrecipients = n;
}

int ls_create(PGconn *pg, const char *user, const char *id, const char *name, const char *origin,
              json_t **out, int *created)
{
	*out = NULL;
	*created = 0;
	/* version 3 UUIDs are the default lists' (ts_default_list_id): never taken */
	if (id[14] == '3')
		return LS_EXISTS;
	PGresult *r = q(pg, "BEGIN", 0, NULL);
	if (!r)
		return TS_DB;
	PQclear(r);
	const char *v[] = {id, user, name};
	r = q(pg,
	      "INSERT INTO lists (id, owner_id, name) VALUES ($1::uuid, $2, $3) ON CONFLICT DO "
	      "NOTHING RETURNING id",
	      3, v);
	if (!r)
		return TS_DB;
	int inserted = PQntuples(r) == 1;
	PQclear(r);
	if (!inserted) {
		rollback(pg);
		/* a repeat of this user's create answers the list; another user's id: no */
		int rc = ls_get(pg, user, id, out);
		if (rc == TS_OK &&
		    strcmp(json_string_value(json_object_get(*out, "owner_id")), user)) {
			json_decref(*out);
			*out = NULL;
			return LS_EXISTS;
		}
		return rc == TS_NO_LIST ? LS_EXISTS : rc;
	}
	const char *v2[] = {id, user};
	if (x(pg,
	      "INSERT INTO list_members (list_id, user_id, role) VALUES ($1::uuid, $2, 'owner')", 2,
	      v2))
		return TS_DB;
	ts_scope sc;
	char ns[UUID_STR_LEN + 1];
	ts_scope_list(&sc, user, id, ns);
	one_recipient(&sc, user);
	json_t *l = event_list(id, name, user);
	int rc = ts_fan_out(pg, &sc, EV_LIST_CREATED, origin, now_ms_us(), "list", l, NULL, NULL);
	ts_scope_clear(&sc);
	if (rc || (rc = commit(pg))) {
		json_decref(l);
		return rc;
	}
	json_object_set_new(l, "default", json_false());
	json_object_set_new(l, "role", json_string("owner"));
	json_object_set_new(l, "members", json_integer(1));
	*out = l;
	*created = 1;
	return TS_OK;
}

/* One change to a list's row or its members, in one transaction under the list's
 * exclusive lock. */
typedef struct list_op {
	ts_scope sc; /* the list's members (recipients), filled under its lock */
	char ns[UUID_STR_LEN + 1];
	char role[8]; /* the actor's */
} list_op;

/* BEGIN and the lock of list id for user, with its members and user's role. The
 * default list is LS_DEFAULT unless default_ok (then created if it is not yet);
 * when owner_only, a member who is not the owner gets TS_FORBIDDEN. TS_OK, or the
 * code with the transaction rolled back and op holding nothing. */
static int op_begin(PGconn *pg, list_op *op, const char *user, const char *id, int default_ok,
                    int owner_only)
{
	char def[UUID_STR_LEN];
	ts_default_list_id(user, def);
	ts_scope_list(&op->sc, user, id, op->ns);
	if (strcmp(def, id) == 0 && (!default_ok || ensure_default(pg, user, def)))
		return default_ok ? TS_DB : LS_DEFAULT;
	int rc = ts_list_lock(pg, &op->sc, 1, 1, op->role);
	if (!rc && owner_only && strcmp(op->role, "owner") != 0) {
		rollback(pg);
		rc = TS_FORBIDDEN;
	}
	if (rc)
		ts_scope_clear(&op->sc);
	return rc;
}

/* Publishes a list event to op's recipients and commits: TS_OK, or the code with
 * the transaction rolled back. Ends op. */
static int op_commit(PGconn *pg, list_op *op, event_type type, const char *origin, json_t *list,
                     json_t *extra)
{
	int rc = ts_fan_out(pg, &op->sc, type, origin, now_ms_us(), "list", list, extra, NULL);
	ts_scope_clear(&op->sc);
	return rc ? rc : commit(pg);
}

/* Ends op without a change (rolled back). */
static int op_abort(PGconn *pg, list_op *op, int rc)
{
	rollback(pg);
	ts_scope_clear(&op->sc);
	return rc;
}

/* list.updated (id, name, owner) to op's members but member, whose own event
 * follows: the others learn the members changed. TS_OK, or the code with the
 * transaction rolled back. */
static int tell_others(PGconn *pg, list_op *op, const char *member, const char *origin,
                       const char *id, const char *name, const char *owner)
{
	drop_recipient(&op->sc, member);
	if (op->sc.nrecipients == 0)
		return TS_OK;
	json_t *l = event_list(id, name, owner);
	int rc =
	    ts_fan_out(pg, &op->sc, EV_LIST_UPDATED, origin, now_ms_us(), "list", l, NULL, NULL);
	json_decref(l);
	return rc;
}

/* The reply of a list's owner-side change: l with its flags. */
static json_t *with_flags(json_t *l, int is_default, const char *role, int members)
{
	json_object_set_new(l, "default", json_boolean(is_default));
	json_object_set_new(l, "role", json_string(role));
	json_object_set_new(l, "members", json_integer(members));
	return l;
}

int ls_rename(PGconn *pg, const char *user, const char *id, const char *name, const char *origin,
              json_t **out)
{
	*out = NULL;
	list_op op;
	int rc = op_begin(pg, &op, user, id, 1, 1);
	if (rc)
		return rc;
	const char *v[] = {id, name};
	PGresult *r = q(pg,
	                "UPDATE lists SET name = $2, version = version + 1, updated_at = now() "
	                "WHERE id = $1::uuid RETURNING owner_id, is_default",
	                2, v);
	if (!r)
		return op_abort(pg, &op, TS_DB);
	json_t *l = event_list(id, name, PQgetvalue(r, 0, 0));
	int is_default = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	int members = op.sc.nrecipients;
	if ((rc = op_commit(pg, &op, EV_LIST_UPDATED, origin, l, NULL))) {
		json_decref(l);
		return rc;
	}
	*out = with_flags(l, is_default, "owner", members);
	return TS_OK;
}

int ls_delete(PGconn *pg, const char *user, const char *id, const char *origin)
{
	list_op op;
	int rc = op_begin(pg, &op, user, id, 0, 1);
	if (rc)
		return rc;
	/* The list's lock comes first in every writer of the namespace, so taking the
	 * namespace's rows after it cannot deadlock. */
	const char *vn[] = {op.ns}, *v[] = {id};
	if ((rc = x(pg, "DELETE FROM tasks WHERE user_id = $1", 1, vn)) ||
	    (rc = x(pg, "DELETE FROM task_tombstones WHERE user_id = $1", 1, vn)) ||
	    (rc = x(pg, "DELETE FROM user_seq WHERE user_id = $1", 1, vn)))
		return op_abort(pg, &op, rc);
	PGresult *r = q(pg, "DELETE FROM lists WHERE id = $1::uuid RETURNING name", 1, v);
	if (!r)
		return op_abort(pg, &op, TS_DB);
	json_t *l = event_list(id, PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	rc = op_commit(pg, &op, EV_LIST_DELETED, origin, l, NULL);
	json_decref(l);
	return rc;
}

int ls_member_put(PGconn *pg, const char *user, const char *id, const char *member,
                  const char *role_new, const char *origin, json_t **out, int *changed)
{
	*out = NULL;
	*changed = 0;
	list_op op;
	int rc = op_begin(pg, &op, user, id, 0, 1);
	if (rc)
		return rc;
	if (strcmp(member, user) == 0)
		return op_abort(pg, &op, LS_OWNER_STAYS);
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", TS_LIST_MEMBERS_MAX);
	const char *v[] = {id, member, role_new, lim};
	/* a new member only below the bound; a role change always */
	PGresult *r = q(pg,
	                "INSERT INTO list_members (list_id, user_id, role) SELECT $1::uuid, $2, $3 "
	                "WHERE EXISTS (SELECT 1 FROM list_members WHERE list_id = $1::uuid AND "
	                "user_id = $2) OR (SELECT count(*) FROM list_members WHERE list_id = "
	                "$1::uuid) < $4::int ON CONFLICT (list_id, user_id) DO UPDATE SET role = "
	                "EXCLUDED.role WHERE list_members.role <> EXCLUDED.role RETURNING role",
	                4, v);
	if (!r)
		return op_abort(pg, &op, TS_DB);
	int wrote = PQntuples(r) == 1;
	PQclear(r);
	const char *v2[] = {id, member};
	r = q(pg,
	      "SELECT " LIST_COLS " FROM lists l JOIN list_members m ON m.list_id = l.id WHERE "
	      "l.id = $1::uuid AND m.user_id = $2",
	      2, v2);
	if (!r)
		return op_abort(pg, &op, TS_DB);
	if (PQntuples(r) != 1) { /* not written and not there: the bound */
		PQclear(r);
		return op_abort(pg, &op, LS_TOO_MANY);
	}
	json_t *l = row_list(r, 0);
	PQclear(r);
	if (!wrote) { /* already a member with that role: nothing to publish */
		*out = l;
		return op_abort(pg, &op, TS_OK);
	}
	/* list.updated to the others; list.shared to the member alone: the list with
	 * its role, and a reload hint (an event describes one change, never a copy of
	 * the list's tasks). */
	if ((rc = tell_others(pg, &op, member, origin, id,
	                      json_string_value(json_object_get(l, "name")),
	                      json_string_value(json_object_get(l, "owner_id"))))) {
		json_decref(l);
		return op_abort(pg, &op, rc);
	}
	json_t *extra = json_pack("{s:b}", "reload", 1);
	one_recipient(&op.sc, member);
	rc = op_commit(pg, &op, EV_LIST_SHARED, origin, l, extra);
	json_decref(extra);
	if (rc) {
		json_decref(l);
		return rc;
	}
	*out = l;
	*changed = 1;
	return TS_OK;
}

int ls_member_delete(PGconn *pg, const char *user, const char *id, const char *member,
                     const char *origin)
{
	int leaving = strcmp(member, user) == 0;
	list_op op;
	int rc = op_begin(pg, &op, user, id, 0, !leaving);
	if (rc)
		return rc;
	if (leaving && strcmp(op.role, "owner") == 0)
		return op_abort(pg, &op, LS_OWNER_STAYS);
	const char *v[] = {id, member};
	PGresult *r =
	    q(pg,
	      "DELETE FROM list_members WHERE list_id = $1::uuid AND user_id = $2 RETURNING "
	      "(SELECT name FROM lists WHERE id = $1::uuid), (SELECT owner_id FROM lists WHERE id "
	      "= $1::uuid)",
	      2, v);
	if (!r)
		return op_abort(pg, &op, TS_DB);
	if (PQntuples(r) != 1) {
		PQclear(r);
		return op_abort(pg, &op, LS_NOT_MEMBER);
	}
	json_t *l = event_list(id, PQgetvalue(r, 0, 0), NULL);
	rc = tell_others(pg, &op, member, origin, id, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
	PQclear(r);
	if (rc) {
		json_decref(l);
		return op_abort(pg, &op, rc);
	}
	one_recipient(&op.sc, member);
	rc = op_commit(pg, &op, EV_LIST_UNSHARED, origin, l, NULL);
	json_decref(l);
	return rc;
}

int ls_transfer(PGconn *pg, const char *user, const char *id, const char *member,
                const char *origin, json_t **out)
{
	*out = NULL;
	list_op op;
	int rc = op_begin(pg, &op, user, id, 0, 1);
	if (rc)
		return rc;
	const char *v[] = {id, member, user};
	if (strcmp(member, user) != 0) {
		PGresult *r =
		    q(pg,
		      "UPDATE list_members SET role = 'owner' WHERE list_id = $1::uuid AND "
		      "user_id = $2 RETURNING 1",
		      2, v);
		if (!r)
			return op_abort(pg, &op, TS_DB);
		int found = PQntuples(r) == 1;
		PQclear(r);
		if (!found)
			return op_abort(pg, &op, LS_NOT_MEMBER);
		const char *v2[] = {id, user};
		if ((rc = x(pg,
		            "UPDATE list_members SET role = 'editor' WHERE list_id = $1::uuid AND "
		            "user_id = $2",
		            2, v2)))
			return op_abort(pg, &op, rc);
	}
	PGresult *r = q(pg,
	                "UPDATE lists SET owner_id = $2, version = version + 1, updated_at = now() "
	                "WHERE id = $1::uuid RETURNING name",
	                2, v);
	if (!r)
		return op_abort(pg, &op, TS_DB);
	json_t *l = event_list(id, PQgetvalue(r, 0, 0), member);
	PQclear(r);
	int members = op.sc.nrecipients;
	if ((rc = op_commit(pg, &op, EV_LIST_UPDATED, origin, l, NULL))) {
		json_decref(l);
		return rc;
	}
	*out = with_flags(l, 0, strcmp(member, user) ? "editor" : "owner", members);
	return TS_OK;
}

int ls_role(PGconn *pg, const char *user, const char *id, char role[8])
{
	role[0] = '\0';
	char def[UUID_STR_LEN];
	ts_default_list_id(user, def);
	if (strcmp(def, id) == 0 && ensure_default(pg, user, def))
		return TS_DB;
	const char *v[] = {id, user};
	PGresult *r =
	    q(pg, "SELECT role FROM list_members WHERE list_id = $1::uuid AND user_id = $2", 2, v);
	if (!r)
		return TS_DB;
	int found = PQntuples(r) == 1;
	if (found)
		snprintf(role, 8, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return found ? TS_OK : TS_NO_LIST;
}
