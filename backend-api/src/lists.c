#include "lists.h"

#include "common/auth.h"
#include "common/event.h"
#include "common/util.h"
#include "list_store.h"
#include "reqparse.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a request waits for a pooled connection before answering 503. */
#define POOL_WAIT_MS 2000
/* How long a presence proof is valid: a member removed keeps seeing who of the list
 * is online at most this long (presence is advisory; task data is never in it). */
#define PRESENCE_TICKET_TTL_S 300

/* The reply for a list_store / task_store result other than TS_OK. */
static int list_fail(api_req *r, int rc, const char *what)
{
	switch (rc) {
	case TS_NO_LIST:
		return api_no_list(r);
	case TS_FORBIDDEN:
		return api_forbidden(r, what);
	case LS_DEFAULT:
		return api_error(r, 422, "default_list", NULL, NULL, NULL,
		                 "your default list cannot be shared, left or deleted: create a "
		                 "list (POST /api/v1/lists) to share");
	case LS_OWNER_STAYS:
		return api_error(r, 409, "owner_stays", "user_id", NULL, NULL,
		                 "the owner cannot leave, be removed or get another role: transfer "
		                 "ownership first (POST /api/v1/lists/{id}/owner)");
	case LS_NOT_MEMBER:
		return api_error(r, 404, "not_member", "user_id", NULL, NULL,
		                 "that user is not a member of this list");
	case LS_TOO_MANY:
		return api_error(r, 409, "too_many_members", "user_id", NULL,
		                 json_pack("{s:i}", "max", TS_LIST_MEMBERS_MAX),
		                 "a list has at most %d members", TS_LIST_MEMBERS_MAX);
	case LS_EXISTS:
		return api_error(r, 409, "conflict", "id", NULL, NULL,
		                 "that list id is taken: choose another (or leave id out)");
	case TS_TOO_LARGE:
		return api_error(r, 413, "event_too_large", NULL, NULL, NULL,
		                 "the change would make an event larger than %d bytes",
		                 EVENT_MAX_BYTES);
	default:
		return api_unavailable(r);
	}
}

/* The body's "name" as a list name: 0, or the 422 sent. */
static int check_name(api_req *r, json_t *b)
{
	if (!rq_list_name_valid(json_object_get(b, "name")))
		return api_error(r, 422, "validation_failed", "name", NULL, NULL,
		                 "name must be 1..%d characters, not only blanks",
		                 RQ_LIST_NAME_MAX);
	return 0;
}

/* The body's "user_id": 0 with *out, or the 422 sent. */
static int check_user(api_req *r, json_t *b, const char **out)
{
	*out = json_string_value(json_object_get(b, "user_id"));
	if (!user_id_valid(*out))
		return api_error(r, 422, "validation_failed", "user_id", NULL, NULL,
		                 "user_id must be 1..%d characters of A-Z a-z 0-9 . _ @ : -",
		                 USER_ID_MAX);
	return 0;
}

int lists_index(api_req *r)
{
	int st = api_throttle(r);
	if (st)
		return st;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return api_unavailable(r);
	json_t *lists;
	int rc = ls_all(db_pg(dc), r->user, &lists);
	api_release(r, dc, rc);
	if (rc)
		return list_fail(r, rc, "");
	return api_json(r, 200, json_pack("{s:o}", "lists", lists), NULL);
}

int lists_create(api_req *r)
{
	static const char *const allowed[] = {"id", "name", NULL};
	int st = api_throttle(r);
	if (st)
		return st;
	json_t *b;
	if ((st = api_read_json(r, &b)))
		return st;
	if ((st = api_check_keys(r, b, allowed)) || (st = check_name(r, b)))
		goto done;
	char id[UUID_STR_LEN];
	json_t *jid = json_object_get(b, "id");
	if (jid) {
		if (!json_is_string(jid) || !uuid_valid(json_string_value(jid))) {
			st = api_error(r, 422, "validation_failed", "id", NULL, NULL,
			               "id must be a UUID");
			goto done;
		}
		snprintf(id, sizeof(id), "%s", json_string_value(jid));
		rq_lower(id);
	} else {
		uuid_new(id);
	}
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = api_unavailable(r);
		goto done;
	}
	json_t *l;
	int created;
	int rc = ls_create(db_pg(dc), r->user, id, json_string_value(json_object_get(b, "name")),
	                   r->origin, &l, &created);
	api_release(r, dc, rc);
	if (rc) {
		st = list_fail(r, rc, "");
		goto done;
	}
	char hdr[128];
	snprintf(hdr, sizeof(hdr), "Location: /api/v1/lists/%s\r\n", id);
	st = api_json(r, created ? 201 : 200, l, hdr);
done:
	json_decref(b);
	return st;
}

/* PATCH /api/v1/lists/{id}: {"name"}. */
static int list_patch(api_req *r, const char *id)
{
	static const char *const allowed[] = {"name", NULL};
	json_t *b;
	int st = api_read_json(r, &b);
	if (st)
		return st;
	if ((st = api_check_keys(r, b, allowed)) || (st = check_name(r, b)))
		goto done;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = api_unavailable(r);
		goto done;
	}
	json_t *l;
	int rc = ls_rename(db_pg(dc), r->user, id, json_string_value(json_object_get(b, "name")),
	                   r->origin, &l);
	api_release(r, dc, rc);
	st = rc ? list_fail(r, rc, "only the list's owner can rename it")
	        : api_json(r, 200, l, NULL);
done:
	json_decref(b);
	return st;
}

/* POST /api/v1/lists/{id}/members: {"user_id", "role"}. */
static int member_put(api_req *r, const char *id)
{
	static const char *const allowed[] = {"user_id", "role", NULL};
	json_t *b;
	int st = api_read_json(r, &b);
	if (st)
		return st;
	const char *member;
	if ((st = api_check_keys(r, b, allowed)) || (st = check_user(r, b, &member)))
		goto done;
	const char *role = json_string_value(json_object_get(b, "role"));
	if (!rq_member_role_valid(role)) {
		st = api_error(r, 422, "validation_failed", "role", NULL, NULL,
		               "role must be editor or viewer");
		goto done;
	}
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = api_unavailable(r);
		goto done;
	}
	json_t *l;
	int changed;
	int rc = ls_member_put(db_pg(dc), r->user, id, member, role, r->origin, &l, &changed);
	api_release(r, dc, rc);
	if (rc) {
		st = list_fail(r, rc, "only the list's owner can share it");
		goto done;
	}
	st = api_json(r, 200,
	              json_pack("{s:s, s:s, s:o, s:b}", "user_id", member, "role", role, "list", l,
	                        "changed", changed),
	              NULL);
done:
	json_decref(b);
	return st;
}

/* POST /api/v1/lists/{id}/owner: {"user_id"}. */
static int transfer(api_req *r, const char *id)
{
	static const char *const allowed[] = {"user_id", NULL};
	json_t *b;
	int st = api_read_json(r, &b);
	if (st)
		return st;
	const char *member;
	if ((st = api_check_keys(r, b, allowed)) || (st = check_user(r, b, &member)))
		goto done;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = api_unavailable(r);
		goto done;
	}
	json_t *l;
	int rc = ls_transfer(db_pg(dc), r->user, id, member, r->origin, &l);
	api_release(r, dc, rc);
	st = rc ? list_fail(r, rc, "only the list's owner can transfer it")
	        : api_json(r, 200, l, NULL);
done:
	json_decref(b);
	return st;
}

/* POST /api/v1/lists/{id}/presence-ticket: a member's proof of membership for the
 * gateway's presence of this list (common/auth.h auth_presence). */
static int presence_ticket(api_req *r, const char *id)
{
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return api_unavailable(r);
	char role[8];
	int rc = ls_role(db_pg(dc), r->user, id, role);
	api_release(r, dc, rc);
	if (rc)
		return list_fail(r, rc, "");
	char *t = auth_mint_presence(r->ctx->cfg->jwt_secret, r->user, id, PRESENCE_TICKET_TTL_S);
	if (!t)
		return api_unavailable(r);
	/* http_reply sends Cache-Control: no-store with every answer (a second copy made
	 * the header "no-store, no-store"; tests/contract) */
	int st = api_json(r, 200,
	                  json_pack("{s:s, s:s, s:s, s:i}", "ticket", t, "list_id", id, "role",
	                            role, "expires_in", PRESENCE_TICKET_TTL_S),
	                  NULL);
	free(t);
	return st;
}

int lists_route(api_req *r)
{
	int st = api_throttle(r);
	if (st)
		return st;
	char id[UUID_STR_LEN], user[USER_ID_MAX + 1];
	int sub;
	if (rq_list_path(r->id, id, &sub, user))
		return api_error(r, 404, "not_found", NULL, NULL, NULL, "no such route");
	const char *m = mg_get_request_info(r->c)->request_method;
	int get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), patch = !strcmp(m, "PATCH"),
	    del = !strcmp(m, "DELETE");
	const char *allow = sub == RQ_LIST_SELF     ? "GET, PATCH, DELETE"
	                    : sub == RQ_LIST_MEMBER ? "DELETE"
	                                            : "POST";
	if (sub == RQ_LIST_SELF && patch)
		return list_patch(r, id);
	if (sub == RQ_LIST_MEMBERS && post)
		return member_put(r, id);
	if (sub == RQ_LIST_OWNER && post)
		return transfer(r, id);
	if (sub == RQ_LIST_PRESENCE && post)
		return presence_ticket(r, id);
	if ((sub == RQ_LIST_SELF && (get || del)) || (sub == RQ_LIST_MEMBER && del)) {
		db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
		if (!dc)
			return api_unavailable(r);
		json_t *l = NULL;
		int rc;
		const char *what = "only the list's owner can delete it";
		if (sub == RQ_LIST_MEMBER) {
			rc = ls_member_delete(db_pg(dc), r->user, id, user, r->origin);
			what = "only the list's owner can remove other members";
		} else if (get) {
			rc = ls_get(db_pg(dc), r->user, id, &l);
		} else {
			rc = ls_delete(db_pg(dc), r->user, id, r->origin);
		}
		api_release(r, dc, rc);
		if (rc)
			return list_fail(r, rc, what);
		return l ? api_json(r, 200, l, NULL) : api_json(r, 204, NULL, NULL);
	}
	char hdr[96];
	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	return api_error(r, 405, "method_not_allowed", NULL, hdr, NULL,
	                 "%s is not allowed here (allowed: %s)", m, allow);
}
