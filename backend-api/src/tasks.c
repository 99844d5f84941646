#include "tasks.h"

#include "common/auth.h"
#include "common/event.h"
#include "common/http.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "common/rfc3339.h"
#include "reqparse.h"
#include "task_store.h"

#include <civetweb.h>
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How long a request waits for a pooled connection before answering 503. */
#define POOL_WAIT_MS         2000
#define DEV_TOKEN_TTL_S      86400
#define EVENTS_LIMIT_DEFAULT 500
#define EVENTS_LIMIT_MAX     1000
#define LIST_LIMIT_DEFAULT   500
#define LIST_LIMIT_MAX       1000
/* A reply of /events or of one list page stops once it holds this much (the item
 * that reaches it is the last; one event is at most EVENT_MAX_BYTES). */
#define READ_MAX_BYTES (1024 * 1024)

int api_json(api_req *r, int status, json_t *body, const char *extra)
{
	char hdr[1024];
	snprintf(hdr, sizeof(hdr), "%s%s", r->cors ? r->cors : "", extra ? extra : "");
	return http_reply_json(r->c, status, body, hdr);
}

int api_error(api_req *r, int status, const char *code, const char *field, const char *extra,
              json_t *top_extra, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (field)
		json_object_set_new(err, "field", json_string(field));
	json_t *body = json_pack("{s:o}", "error", err);
	if (top_extra)
		json_object_update(body, top_extra);
	json_decref(top_extra);
	return api_json(r, status, body, extra);
}

static int unavailable(api_req *r)
{
	return api_error(r, 503, "unavailable", NULL, "Retry-After: 1\r\n", NULL,
	                 "database unavailable, retry shortly");
}

/* Gives the connection back, counting a database failure (rc TS_DB). */
static void release(api_req *r, db_conn *dc, int rc)
{
	if (rc == TS_DB)
		db_count_error(r->ctx->pool);
	db_release(r->ctx->pool, dc);
}

static int not_found(api_req *r)
{
	return api_error(r, 404, "not_found", NULL, NULL, NULL, "no such task");
}

static int deleted(api_req *r)
{
	return api_error(r, 410, "task_deleted", "id", NULL, NULL,
	                 "the task was deleted (delete wins): it is not created, changed or moved "
	                 "again");
}

/* ---- Lists: which namespace a task request works in (task_store.h ts_scope) ---- */

int api_no_list(api_req *r)
{
	return api_error(r, 404, "not_found", "list_id", NULL, NULL,
	                 "no such list (or you are not one of its members)");
}

int api_forbidden(api_req *r, const char *what)
{
	return api_error(r, 403, "forbidden", NULL, NULL, NULL, "%s", what);
}

/* The scope of a task request in list list_id ("" or NULL: the user's default
 * list; the default list's own id is the same). */
void api_scope(api_req *r, const char *list_id, api_scope_buf *b)
{
	ts_scope_default(&b->sc, r->user, b->id);
	if (list_id && list_id[0] && strcmp(list_id, b->id) != 0) {
		snprintf(b->id, sizeof(b->id), "%s", list_id);
		ts_scope_list(&b->sc, r->user, b->id, b->ns);
	}
}

/* The scope from the query's list_id; 0, or the 404 sent (not a list id). */
static int query_scope(api_req *r, api_scope_buf *b)
{
	char lid[UUID_STR_LEN];
	if (rq_list_id(mg_get_request_info(r->c)->query_string, lid))
		return api_no_list(r);
	api_scope(r, lid, b);
	return 0;
}

/* The replies every list-scoped task call may get. */
static int scope_reply(api_req *r, int rc)
{
	if (rc == TS_NO_LIST)
		return api_no_list(r);
	return api_forbidden(r, "you are a viewer of this list: only its owner and editors "
	                        "change its tasks");
}

/* ---- Idempotency-Key (task_store.h ts_idem) ---- */

typedef struct keyed {
	ts_idem idem;
	char *request; /* owned: method, path, canonical body */
	int on;        /* the header was given */
} keyed;

/* Reads the request's Idempotency-Key. 0 (k->on says whether one was given), or the
 * 400 already sent. body (may be NULL) is the parsed request body. */
static int keyed_init(api_req *r, const json_t *body, keyed *k)
{
	memset(k, 0, sizeof(*k));
	const char *key = mg_get_header(r->c, "Idempotency-Key");
	if (!key)
		return 0;
	if (!rq_idem_key_valid(key))
		return api_error(r, 400, "bad_request", "Idempotency-Key", NULL, NULL,
		                 "Idempotency-Key must be 1..%d characters of A-Z a-z 0-9 . _ : -",
		                 RQ_IDEM_KEY_MAX);
	const struct mg_request_info *ri = mg_get_request_info(r->c);
	char *canon = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	const char *q = ri->query_string ? ri->query_string : "";
	size_t len = strlen(ri->request_method) + strlen(ri->local_uri) + strlen(q) +
	             (canon ? strlen(canon) : 0) + 4;
	k->request = xmalloc(len);
	snprintf(k->request, len, "%s %s?%s %s", ri->request_method, ri->local_uri, q,
	         canon ? canon : "");
	free(canon);
	k->idem.key = key;
	k->idem.request = k->request;
	k->on = 1;
	return 0;
}

static ts_idem *keyed_idem(keyed *k)
{
	return k->on ? &k->idem : NULL;
}

static void keyed_free(keyed *k)
{
	free(k->request);
	free(k->idem.body);
}

/* The answers every keyed mutation may get from the store: the first reply again
 * (TS_REPLAY), or the key reused with another request. */
static int keyed_reply(api_req *r, keyed *k, int rc)
{
	if (rc == TS_KEY_REUSED)
		return api_error(r, 422, "idempotency_key_reused", "Idempotency-Key", NULL, NULL,
		                 "this Idempotency-Key was used for another request: send a new "
		                 "key with each new change");
	metric_inc(metrics_counter(r->ctx->m, "api_idempotent_replays_total",
	                           "Mutations answered with their first reply (Idempotency-Key).",
	                           ""));
	char hdr[1024];
	snprintf(hdr, sizeof(hdr), "%sIdempotent-Replayed: true\r\n", r->cors ? r->cors : "");
	const char *b = k->idem.body;
	return http_reply(r->c, k->idem.status, "application/json", b ? b : "", b ? strlen(b) : 0,
	                  hdr);
}

/* The process's one per-user token bucket table, made at the first request (the
 * configuration is read-only by then). */
static pthread_mutex_t g_limiter_mu = PTHREAD_MUTEX_INITIALIZER;
static ratelimit *g_limiter;

static ratelimit *limiter(const ba_config *cfg)
{
	pthread_mutex_lock(&g_limiter_mu);
	if (!g_limiter)
		g_limiter =
		    ratelimit_new((double)cfg->user_rate_limit, (double)cfg->user_rate_burst);
	ratelimit *rl = g_limiter;
	pthread_mutex_unlock(&g_limiter_mu);
	return rl;
}

/* 0 when the user may make this request; otherwise the 429 already sent. */
static int throttle(api_req *r)
{
	const ba_config *cfg = r->ctx->cfg;
	if (cfg->user_rate_limit <= 0)
		return 0;
	int64_t wait_us = ratelimit_take(limiter(cfg), r->user, mono_us());
	if (wait_us == 0)
		return 0;
	metric_inc(metrics_counter(r->ctx->m, "api_rate_limited_total",
	                           "Requests refused by the per-user rate limit.", ""));
	long secs = (long)((wait_us + 999999) / 1000000);
	char hdr[64];
	snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", secs);
	return api_error(r, 429, "rate_limited", NULL, hdr,
	                 json_pack("{s:I}", "retry_after_ms", (json_int_t)((wait_us + 999) / 1000)),
	                 "more than %ld requests a second for this user: retry after %ld s",
	                 cfg->user_rate_limit, secs);
}

/* Checks Content-Type, reads and parses the body as a JSON object. Returns 0 with
 * *out set, or the error status already sent. */
static int read_json(api_req *r, json_t **out)
{
	*out = NULL;
	const char *ct = mg_get_header(r->c, "Content-Type");
	size_t n = strlen("application/json");
	if (!ct || strncasecmp(ct, "application/json", n) != 0 ||
	    (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t'))
		return api_error(r, 415, "unsupported_media_type", NULL, NULL, NULL,
		                 "Content-Type must be application/json");
	char *buf;
	size_t len;
	int rc = http_read_body(r->c, (size_t)r->ctx->cfg->max_body_bytes, &buf, &len);
	if (rc == HTTP_BODY_TOO_LARGE)
		return api_error(r, 413, "too_large", NULL, "Connection: close\r\n", NULL,
		                 "body larger than %ld bytes", r->ctx->cfg->max_body_bytes);
	if (rc != HTTP_BODY_OK)
		return api_error(r, 400, "bad_json", NULL, NULL, NULL, "could not read the body");
	json_error_t jerr;
	/* Nesting is checked before jansson's recursive parser sees the body. */
	json_t *j = json_load_untrusted(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!j)
		return api_error(r, 400, "bad_json", NULL, NULL, NULL, "malformed JSON: %s",
		                 jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return api_error(r, 400, "bad_json", NULL, NULL, NULL,
		                 "the body must be a JSON object");
	}
	*out = j;
	return 0;
}

/* 422 for the first key of o not in allowed (NULL-terminated); 0 when all known. */
static int check_keys(api_req *r, json_t *o, const char *const *allowed)
{
	const char *key = rq_unknown_key(o, allowed);
	if (key)
		return api_error(r, 422, "validation_failed", key, NULL, NULL,
		                 "unknown field \"%.64s\"", key);
	return 0;
}

/* Validates the task fields of o (with id set to id) per the shared contract. */
static int validate(api_req *r, json_t *o, const char *id, int require_title)
{
	const char *field;
	char why[256];
	if (rq_task_fields(o, id, require_title, &field, why, sizeof(why)))
		return api_error(r, 422, "validation_failed", field, NULL, NULL, "%s", why);
	return 0;
}

int api_throttle(api_req *r)
{
	return throttle(r);
}

int api_read_json(api_req *r, json_t **out)
{
	return read_json(r, out);
}

int api_check_keys(api_req *r, json_t *o, const char *const *allowed)
{
	return check_keys(r, o, allowed);
}

int api_unavailable(api_req *r)
{
	return unavailable(r);
}

void api_release(api_req *r, db_conn *dc, int rc)
{
	release(r, dc, rc);
}

/* The guard of EVENT_MAX_BYTES (the field bounds keep every event below it). */
static int too_large_event(api_req *r)
{
	return api_error(r, 413, "event_too_large", NULL, NULL, NULL,
	                 "the change would make an event larger than %d bytes", EVENT_MAX_BYTES);
}

static const char *task_headers(const ts_task *t, int location, char *buf, size_t len)
{
	int n = snprintf(buf, len, "ETag: \"%" PRId64 "\"\r\n", t->version);
	if (location)
		snprintf(buf + n, len - (size_t)n, "Location: /api/v1/tasks/%s\r\n", t->id);
	return buf;
}

/* The reply to a store result every task write shares (scope, idempotency key,
 * a missing or deleted task, an event too large; anything else: 503). */
static int write_reply(api_req *r, keyed *k, int rc)
{
	switch (rc) {
	case TS_NO_LIST:
	case TS_FORBIDDEN:
		return scope_reply(r, rc);
	case TS_REPLAY:
	case TS_KEY_REUSED:
		return keyed_reply(r, k, rc);
	case TS_NOT_FOUND:
		return not_found(r);
	case TS_DELETED:
		return deleted(r);
	case TS_TOO_LARGE:
		return too_large_event(r);
	default:
		return unavailable(r);
	}
}

/* The limit query parameter into *out (default def, 1..max); 0 or the 400 sent. */
static int query_limit(api_req *r, const char *q, long def, long max, long *out)
{
	if (rq_limit(q, def, max, out))
		return api_error(r, 400, "bad_request", "limit", NULL, NULL,
		                 "limit must be an integer in 1..%ld", max);
	return 0;
}

int tasks_list(api_req *r)
{
	int st = throttle(r);
	if (st)
		return st;
	const char *q = mg_get_request_info(r->c)->query_string;
	long limit;
	if ((st = query_limit(r, q, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, &limit)))
		return st;
	char cursor[RQ_CURSOR_BUF];
	const char *after;
	if (rq_cursor(q, cursor, &after))
		return api_error(r, 400, "bad_request", "cursor", NULL, NULL,
		                 "cursor must be a next_cursor this API returned");
	api_scope_buf sb;
	if ((st = query_scope(r, &sb)))
		return st;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	json_t *tasks;
	int64_t seq;
	char next[POSKEY_BUF];
	int rc = ts_list(db_pg(dc), &sb.sc, after, (int)limit, READ_MAX_BYTES, &tasks, &seq, next);
	release(r, dc, rc);
	if (rc == TS_NO_LIST)
		return api_no_list(r);
	if (rc != TS_OK)
		return unavailable(r);
	char nc[RQ_CURSOR_BUF];
	snprintf(nc, sizeof(nc), "%s%s", RQ_CURSOR_PREFIX, next);
	return api_json(r, 200,
	                json_pack("{s:o, s:I, s:o, s:s}", "tasks", tasks, "seq", (json_int_t)seq,
	                          "next_cursor", next[0] ? json_string(nc) : json_null(), "list_id",
	                          sb.sc.list_id),
	                NULL);
}

int tasks_create(api_req *r)
{
	static const char *const allowed[] = {"id",     "title",     "description", "priority",
	                                      "due_at", "completed", "list_id",     NULL};
	int st = throttle(r);
	if (st)
		return st;
	json_t *b;
	if ((st = read_json(r, &b)))
		return st;
	ts_task in;
	memset(&in, 0, sizeof(in));
	if ((st = check_keys(r, b, allowed)))
		goto done;
	json_t *id = json_object_get(b, "id");
	if (id) {
		if (!json_is_string(id) || !uuid_valid(json_string_value(id))) {
			st = api_error(r, 422, "validation_failed", "id", NULL, NULL,
			               "id must be a UUID");
			goto done;
		}
		snprintf(in.id, sizeof(in.id), "%s", json_string_value(id));
		rq_lower(in.id);
	} else {
		uuid_new(in.id);
	}
	if ((st = validate(r, b, in.id, 1)))
		goto done;
	in.title = (char *)json_string_value(json_object_get(b, "title"));
	in.description = (char *)json_string_value(json_object_get(b, "description"));
	const char *prio = json_string_value(json_object_get(b, "priority"));
	snprintf(in.priority, sizeof(in.priority), "%s", prio ? prio : "medium");
	const char *due = json_string_value(json_object_get(b, "due_at"));
	in.has_due = due && rfc3339_parse(due, &in.due_us) == RFC3339_OK;
	in.completed = json_is_true(json_object_get(b, "completed"));
	json_t *jl = json_object_get(b, "list_id");
	char lid[UUID_STR_LEN] = "";
	if (jl && !json_is_null(jl)) {
		if (!json_is_string(jl) || !uuid_valid(json_string_value(jl))) {
			st = api_error(r, 422, "validation_failed", "list_id", NULL, NULL,
			               "list_id must be a list's id (a UUID) or null (the default "
			               "list)");
			goto done;
		}
		snprintf(lid, sizeof(lid), "%s", json_string_value(jl));
		rq_lower(lid);
	}
	api_scope_buf sb;
	api_scope(r, lid, &sb);

	keyed k;
	if ((st = keyed_init(r, b, &k)))
		goto done;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		keyed_free(&k);
		goto done;
	}
	ts_task out;
	int created = 0;
	int rc = ts_create(db_pg(dc), &sb.sc, &in, r->origin, r->ctx->cfg->max_tasks_per_user,
	                   keyed_idem(&k), &out, &created);
	release(r, dc, rc);
	ts_scope_clear(&sb.sc);
	char hdr[256];
	switch (rc) {
	case TS_OK:
		st = api_json(r, created ? 201 : 200, ts_task_json(&out),
		              task_headers(&out, 1, hdr, sizeof(hdr)));
		ts_task_clear(&out);
		break;
	case TS_QUOTA:
		metric_inc(metrics_counter(r->ctx->m, "api_task_quota_refused_total",
		                           "Creates refused by MAX_TASKS_PER_USER.", ""));
		st = api_error(
		    r, 409, "task_quota_exceeded", NULL, NULL,
		    json_pack("{s:I}", "limit", (json_int_t)r->ctx->cfg->max_tasks_per_user),
		    "a user may have at most %ld tasks: delete some first",
		    r->ctx->cfg->max_tasks_per_user);
		break;
	case TS_CONFLICT:
		st = api_error(r, 409, "conflict", "id", NULL, NULL,
		               "the task changed during the create: retry");
		break;
	default:
		st = write_reply(r, &k, rc);
	}
	keyed_free(&k);
done:
	json_decref(b);
	return st;
}

int tasks_get(api_req *r)
{
	int st = throttle(r);
	if (st)
		return st;
	if (!uuid_valid(r->id))
		return not_found(r);
	api_scope_buf sb;
	if ((st = query_scope(r, &sb)))
		return st;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	ts_task t;
	int rc = ts_get(db_pg(dc), &sb.sc, r->id, &t);
	release(r, dc, rc);
	if (rc == TS_NOT_FOUND)
		return not_found(r);
	if (rc == TS_NO_LIST)
		return api_no_list(r);
	if (rc != TS_OK)
		return unavailable(r);
	char hdr[256];
	st = api_json(r, 200, ts_task_json(&t), task_headers(&t, 0, hdr, sizeof(hdr)));
	ts_task_clear(&t);
	return st;
}

int tasks_patch(api_req *r)
{
	static const char *const allowed[] = {"title",     "description",  "priority", "due_at",
	                                      "completed", "base_version", NULL};
	int st = throttle(r);
	if (st)
		return st;
	if (!uuid_valid(r->id))
		return not_found(r);
	json_t *b;
	if ((st = read_json(r, &b)))
		return st;
	if ((st = check_keys(r, b, allowed)))
		goto done;
	/* base_version: the version the change was made on (per-field merge). */
	int64_t base;
	if (rq_base_version(b, &base)) {
		st = api_error(r, 422, "validation_failed", "base_version", NULL, NULL,
		               "base_version must be an integer >= 1 (the task's version "
		               "the change was made on)");
		goto done;
	}
	if (json_object_size(b) == (base >= 0 ? 1u : 0u)) {
		st = api_error(r, 422, "validation_failed", "body", NULL, NULL,
		               "nothing to change: give at least one field");
		goto done;
	}
	json_t *fields = json_copy(b);
	json_object_del(fields, "base_version");
	st = validate(r, fields, r->id, 0);
	json_decref(fields);
	if (st)
		goto done;
	ts_patch p;
	memset(&p, 0, sizeof(p));
	json_t *v;
	if ((v = json_object_get(b, "title"))) {
		p.has_title = 1;
		p.title = json_string_value(v);
	}
	if ((v = json_object_get(b, "description"))) {
		p.has_description = 1;
		p.description = json_string_value(v); /* NULL for null */
	}
	if ((v = json_object_get(b, "priority"))) {
		p.has_priority = 1;
		p.priority = json_string_value(v);
	}
	if ((v = json_object_get(b, "due_at"))) {
		p.has_due = 1;
		p.due_null = json_is_null(v);
		if (!p.due_null && rfc3339_parse(json_string_value(v), &p.due_us) != RFC3339_OK)
			p.due_null = 1; /* cannot happen: validated above */
	}
	if ((v = json_object_get(b, "completed"))) {
		p.has_completed = 1;
		p.completed = json_is_true(v);
	}
	int64_t if_match = rq_if_match(mg_get_header(r->c, "If-Match"));
	api_scope_buf sb;
	if ((st = query_scope(r, &sb)))
		goto done;
	keyed k;
	if ((st = keyed_init(r, b, &k)))
		goto done;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		keyed_free(&k);
		goto done;
	}
	ts_task t;
	int changed;
	unsigned conflicts;
	int rc = ts_update(db_pg(dc), &sb.sc, r->id, &p, if_match, base, r->origin, keyed_idem(&k),
	                   &t, &changed, &conflicts);
	release(r, dc, rc);
	ts_scope_clear(&sb.sc);
	char hdr[256];
	switch (rc) {
	case TS_OK:
		if (conflicts)
			metric_inc(metrics_counter(
			    r->ctx->m, "api_merge_conflicts_total",
			    "PATCH fields kept at a newer value (base_version).", ""));
		st = api_json(r, 200,
		              base >= 0 ? ts_merge_reply(&t, &p, conflicts) : ts_task_json(&t),
		              task_headers(&t, 0, hdr, sizeof(hdr)));
		break;
	case TS_STALE:
		st = api_error(r, 412, "precondition_failed", NULL,
		               task_headers(&t, 0, hdr, sizeof(hdr)),
		               json_pack("{s:o}", "task", ts_task_json(&t)),
		               "the task has changed: version is %" PRId64, t.version);
		break;
	default:
		st = write_reply(r, &k, rc);
	}
	ts_task_clear(&t);
	keyed_free(&k);
done:
	json_decref(b);
	return st;
}

int tasks_delete(api_req *r)
{
	int st = throttle(r);
	if (st)
		return st;
	if (!uuid_valid(r->id))
		return not_found(r);
	api_scope_buf sb;
	if ((st = query_scope(r, &sb)))
		return st;
	keyed k;
	if ((st = keyed_init(r, NULL, &k)))
		return st;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		keyed_free(&k);
		return unavailable(r);
	}
	int rc = ts_delete(db_pg(dc), &sb.sc, r->id, r->origin, keyed_idem(&k));
	release(r, dc, rc);
	ts_scope_clear(&sb.sc);
	st = rc == TS_OK ? api_json(r, 204, NULL, NULL) : write_reply(r, &k, rc);
	keyed_free(&k);
	return st;
}

static int list_too_long(api_req *r)
{
	return api_error(r, 422, "list_too_long", "order", NULL,
	                 json_pack("{s:i}", "max", TASK_ORDER_MAX),
	                 "PUT /api/v1/tasks/order renumbers lists of at most %d tasks: use POST "
	                 "/api/v1/tasks/{id}/move",
	                 TASK_ORDER_MAX);
}

int tasks_reorder(api_req *r)
{
	static const char *const allowed[] = {"order", NULL};
	int st = throttle(r);
	if (st)
		return st;
	json_t *b;
	if ((st = read_json(r, &b)))
		return st;
	const char **ids = NULL;
	size_t n, bad;
	if ((st = check_keys(r, b, allowed)))
		goto done;
	switch (rq_order_body(b, &ids, &n, &bad)) {
	case 0:
		break;
	case RQ_ORDER_TOO_LONG:
		st = list_too_long(r);
		goto done;
	case RQ_ORDER_BAD_ID:
		st = api_error(r, 422, "validation_failed", "order", NULL, NULL,
		               "order[%zu] is not a task id", bad);
		goto done;
	default:
		st = api_error(r, 422, "validation_failed", "order", NULL, NULL,
		               "order must be an array of task ids");
		goto done;
	}
	api_scope_buf sb;
	if ((st = query_scope(r, &sb)))
		goto done;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		goto done;
	}
	json_t *positions, *skipped;
	int64_t seq;
	int rc = ts_reorder(db_pg(dc), &sb.sc, ids, n, r->origin, &positions, &skipped, &seq);
	release(r, dc, rc);
	ts_scope_clear(&sb.sc);
	if (rc == TS_NO_LIST || rc == TS_FORBIDDEN)
		st = scope_reply(r, rc);
	else if (rc == TS_OK)
		st = api_json(r, 200,
		              json_pack("{s:o, s:o, s:o}", "positions", positions, "skipped",
		                        skipped, "seq", seq ? json_integer(seq) : json_null()),
		              NULL);
	else if (rc == TS_TOO_MANY)
		st = list_too_long(r);
	else if (rc == TS_TOO_LARGE)
		st = too_large_event(r);
	else
		st = unavailable(r);
done:
	free(ids);
	json_decref(b);
	return st;
}

int tasks_move(api_req *r)
{
	int st = throttle(r);
	if (st)
		return st;
	/* r->id is "<id>/move" (the route's {id} segment and its suffix). */
	char id[UUID_STR_LEN];
	if (rq_move_id(r->id, id))
		return not_found(r);
	json_t *b;
	if ((st = read_json(r, &b)))
		return st;
	const char *field;
	int after, has_anchor;
	char anchor[UUID_STR_LEN];
	/* "list_id": the list to move the task into (the anchor is then of that list) */
	char target[UUID_STR_LEN] = "";
	json_t *jt = json_object_get(b, "list_id");
	if (jt && !json_is_null(jt)) {
		if (!json_is_string(jt) || !uuid_valid(json_string_value(jt))) {
			st = api_error(r, 422, "validation_failed", "list_id", NULL, NULL,
			               "list_id must be the id of the list to move the task into");
			goto done;
		}
		snprintf(target, sizeof(target), "%s", json_string_value(jt));
		rq_lower(target);
	}
	json_t *shape = json_copy(b);
	json_object_del(shape, "list_id");
	int mv = rq_move_body(shape, &field, &after, &has_anchor, anchor);
	json_decref(shape);
	if (mv == RQ_MOVE_SHAPE) {
		st = api_error(r, 422, "validation_failed", "body", NULL, NULL,
		               "give exactly one of {\"before\": id|null} (null: the end) or "
		               "{\"after\": id|null} (null: the top)");
		goto done;
	}
	if (mv) {
		st = api_error(r, 422, "validation_failed", field, NULL, NULL,
		               "%s must be a task id or null", field);
		goto done;
	}
	api_scope_buf sb;
	if ((st = query_scope(r, &sb)))
		goto done;
	keyed k;
	if ((st = keyed_init(r, b, &k)))
		goto done;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		keyed_free(&k);
		goto done;
	}
	ts_task t;
	int64_t seq;
	api_scope_buf tb;
	api_scope(r, target[0] ? target : sb.sc.list_id, &tb);
	int rc;
	if (strcmp(tb.sc.list_id, sb.sc.list_id) != 0)
		rc = ts_move_list(db_pg(dc), &sb.sc, &tb.sc, id, has_anchor ? anchor : NULL, after,
		                  r->origin, r->ctx->cfg->max_tasks_per_user, keyed_idem(&k), &t,
		                  &seq);
	else
		rc = ts_move(db_pg(dc), &sb.sc, id, has_anchor ? anchor : NULL, after, r->origin,
		             keyed_idem(&k), &t, &seq);
	release(r, dc, rc);
	ts_scope_clear(&sb.sc);
	ts_scope_clear(&tb.sc);
	char hdr[256];
	switch (rc) {
	case TS_OK:
		st =
		    api_json(r, 200, ts_move_reply(&t, seq), task_headers(&t, 0, hdr, sizeof(hdr)));
		ts_task_clear(&t);
		break;
	case TS_NO_ANCHOR:
		st = api_error(r, 422, "validation_failed", field, NULL, NULL,
		               "%s names no task of this user", field);
		break;
	case TS_INVALID:
		st = api_error(r, 422, "validation_failed", field, NULL, NULL,
		               "a task cannot move relative to itself");
		break;
	case TS_CONFLICT:
		st = api_error(r, 409, "conflict", "list_id", NULL, NULL,
		               "the target list already has a task with this id");
		break;
	case TS_QUOTA:
		st = api_error(
		    r, 409, "task_quota_exceeded", "list_id", NULL,
		    json_pack("{s:I}", "limit", (json_int_t)r->ctx->cfg->max_tasks_per_user),
		    "the target list holds at most %ld tasks", r->ctx->cfg->max_tasks_per_user);
		break;
	case TS_EXHAUSTED:
		st = api_error(r, 409, "position_exhausted", field, NULL,
		               json_pack("{s:i}", "max_key_bytes", POSKEY_MAX),
		               "no position key of at most %d bytes fits between these neighbours: "
		               "move one of them, or renumber with PUT /api/v1/tasks/order",
		               POSKEY_MAX);
		break;
	default:
		st = write_reply(r, &k, rc);
	}
	keyed_free(&k);
done:
	json_decref(b);
	return st;
}

int tasks_events(api_req *r)
{
	int st = throttle(r);
	if (st)
		return st;
	const char *q = mg_get_request_info(r->c)->query_string;
	int64_t since;
	if (rq_since(q, &since))
		return api_error(r, 400, "bad_request", "since", NULL, NULL,
		                 "since must be an integer >= 0");
	long limit;
	if ((st = query_limit(r, q, EVENTS_LIMIT_DEFAULT, EVENTS_LIMIT_MAX, &limit)))
		return st;
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	char *body;
	size_t len;
	int64_t seq;
	int rc =
	    ts_events(db_pg(dc), r->user, since, (int)limit, READ_MAX_BYTES, &body, &len, &seq);
	release(r, dc, rc);
	if (rc == TS_GONE)
		return api_error(
		    r, 410, "gone", NULL, NULL, json_pack("{s:I}", "seq", (json_int_t)seq),
		    "events after %" PRId64 " are no longer kept: reload the list", since);
	if (rc != TS_OK)
		return unavailable(r);
	char hdr[1024];
	snprintf(hdr, sizeof(hdr), "%s", r->cors ? r->cors : "");
	st = http_reply(r->c, 200, "application/json", body, len, hdr);
	free(body);
	return st;
}

int tasks_dev_login(api_req *r)
{
	static const char *const allowed[] = {"user", NULL};
	json_t *b;
	int st = read_json(r, &b);
	if (st)
		return st;
	if ((st = check_keys(r, b, allowed)))
		goto done;
	const char *user = json_string_value(json_object_get(b, "user"));
	if (!user || !user_id_valid(user)) {
		st = api_error(r, 422, "validation_failed", "user", NULL, NULL,
		               "user must be 1..128 characters of A-Z a-z 0-9 . _ @ : -");
		goto done;
	}
	char *token = auth_mint(r->ctx->cfg->jwt_secret, user, DEV_TOKEN_TTL_S);
	if (!token) {
		st = api_error(r, 422, "validation_failed", "user", NULL, NULL, "invalid user");
		goto done;
	}
	st = api_json(r, 200, json_pack("{s:s, s:s}", "token", token, "user_id", user), NULL);
	free(token);
done:
	json_decref(b);
	return st;
}

int tasks_ws_ticket(api_req *r)
{
	int st = throttle(r);
	if (st)
		return st;
	char *ticket = auth_mint_ticket(r->ctx->cfg->jwt_secret, r->user, r->token_exp);
	if (!ticket)
		return api_error(r, 401, "unauthorized", NULL, NULL, NULL, "session expired");
	metric_inc(metrics_counter(r->ctx->m, "api_ws_tickets_total",
	                           "WebSocket tickets issued (POST /api/v1/ws-ticket).", ""));
	/* http_reply sends Cache-Control: no-store with every answer: a second copy here
	 * made the header "no-store, no-store" to a client joining them. */
	st = api_json(r, 200,
	              json_pack("{s:s, s:i}", "ticket", ticket, "expires_in", AUTH_TICKET_TTL_S),
	              NULL);
	free(ticket);
	return st;
}
