#include "tasks.h"

#include "common/auth.h"
#include "common/event.h"
#include "common/http.h"
#include "common/json.h"
#include "common/log.h"
#include "task_store.h"

#include <civetweb.h>
#include <ctype.h>
#include <inttypes.h>
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
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok)
			return api_error(r, 422, "validation_failed", key, NULL, NULL,
			                 "unknown field \"%.64s\"", key);
	}
	return 0;
}

/* Validates the task fields of o (with id set to id) per the shared contract. */
static int validate(api_req *r, json_t *o, const char *id, int require_title)
{
	json_t *copy = json_copy(o);
	json_object_set_new(copy, "id", json_string(id));
	const char *field = "body";
	char why[256];
	int bad = event_validate_task(copy, require_title, &field, why, sizeof(why));
	json_decref(copy);
	if (bad)
		return api_error(r, 422, "validation_failed", field, NULL, NULL, "%s", why);
	return 0;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static const char *task_headers(const ts_task *t, int location, char *buf, size_t len)
{
	int n = snprintf(buf, len, "ETag: \"%" PRId64 "\"\r\n", t->version);
	if (location)
		snprintf(buf + n, len - (size_t)n, "Location: /api/v1/tasks/%s\r\n", t->id);
	return buf;
}

int tasks_list(api_req *r)
{
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	json_t *tasks;
	int64_t seq;
	int rc = ts_list(db_pg(dc), r->user, &tasks, &seq);
	release(r, dc, rc);
	if (rc != TS_OK)
		return unavailable(r);
	return api_json(r, 200, json_pack("{s:o, s:I}", "tasks", tasks, "seq", (json_int_t)seq),
	                NULL);
}

int tasks_create(api_req *r)
{
	static const char *const allowed[] = {"id",     "title",     "description", "priority",
	                                      "due_at", "completed", NULL};
	json_t *b;
	int st = read_json(r, &b);
	if (st)
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
		lower(in.id);
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
	in.has_due = due && time_parse_iso8601(due, &in.due_us) == 0;
	in.completed = json_is_true(json_object_get(b, "completed"));

	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		goto done;
	}
	ts_task out;
	int created = 0;
	int rc = ts_create(db_pg(dc), r->user, &in, r->origin, &out, &created);
	release(r, dc, rc);
	char hdr[256];
	switch (rc) {
	case TS_OK:
		st = api_json(r, created ? 201 : 200, ts_task_json(&out),
		              task_headers(&out, 1, hdr, sizeof(hdr)));
		ts_task_clear(&out);
		break;
	case TS_CONFLICT:
		st = api_error(r, 409, "conflict", "id", NULL, NULL,
		               "a task with this id already exists");
		break;
	default:
		st = unavailable(r);
	}
done:
	json_decref(b);
	return st;
}

int tasks_get(api_req *r)
{
	if (!uuid_valid(r->id))
		return not_found(r);
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	ts_task t;
	int rc = ts_get(db_pg(dc), r->user, r->id, &t);
	release(r, dc, rc);
	if (rc == TS_NOT_FOUND)
		return not_found(r);
	if (rc != TS_OK)
		return unavailable(r);
	char hdr[256];
	int st = api_json(r, 200, ts_task_json(&t), task_headers(&t, 0, hdr, sizeof(hdr)));
	ts_task_clear(&t);
	return st;
}

/* If-Match: 3, "3" or W/"3" -> 3; absent or * -> -1; anything else never matches. */
static int64_t parse_if_match(const char *h)
{
	if (!h)
		return -1;
	while (*h == ' ')
		h++;
	if (strcmp(h, "*") == 0)
		return -1;
	if (strncmp(h, "W/", 2) == 0)
		h += 2;
	int quoted = *h == '"';
	if (quoted)
		h++;
	if (!isdigit((unsigned char)*h))
		return INT64_MAX;
	char *end;
	long long v = strtoll(h, &end, 10);
	if (quoted && *end++ != '"')
		return INT64_MAX;
	while (*end == ' ')
		end++;
	return *end ? INT64_MAX : (int64_t)v;
}

int tasks_patch(api_req *r)
{
	static const char *const allowed[] = {"title",  "description", "priority",
	                                      "due_at", "completed",   NULL};
	if (!uuid_valid(r->id))
		return not_found(r);
	json_t *b;
	int st = read_json(r, &b);
	if (st)
		return st;
	if ((st = check_keys(r, b, allowed)))
		goto done;
	if (json_object_size(b) == 0) {
		st = api_error(r, 422, "validation_failed", "body", NULL, NULL,
		               "nothing to change: give at least one field");
		goto done;
	}
	if ((st = validate(r, b, r->id, 0)))
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
		if (!p.due_null && time_parse_iso8601(json_string_value(v), &p.due_us))
			p.due_null = 1; /* cannot happen: validated above */
	}
	if ((v = json_object_get(b, "completed"))) {
		p.has_completed = 1;
		p.completed = json_is_true(v);
	}
	int64_t if_match = parse_if_match(mg_get_header(r->c, "If-Match"));
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		goto done;
	}
	ts_task t;
	int changed;
	int rc = ts_update(db_pg(dc), r->user, r->id, &p, if_match, r->origin, &t, &changed);
	release(r, dc, rc);
	char hdr[256];
	switch (rc) {
	case TS_OK:
		st = api_json(r, 200, ts_task_json(&t), task_headers(&t, 0, hdr, sizeof(hdr)));
		break;
	case TS_NOT_FOUND:
		st = not_found(r);
		break;
	case TS_STALE:
		st = api_error(r, 412, "precondition_failed", NULL,
		               task_headers(&t, 0, hdr, sizeof(hdr)),
		               json_pack("{s:o}", "task", ts_task_json(&t)),
		               "the task has changed: version is %" PRId64, t.version);
		break;
	default:
		st = unavailable(r);
	}
	ts_task_clear(&t);
done:
	json_decref(b);
	return st;
}

int tasks_delete(api_req *r)
{
	if (!uuid_valid(r->id))
		return not_found(r);
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	int rc = ts_delete(db_pg(dc), r->user, r->id, r->origin);
	release(r, dc, rc);
	if (rc == TS_NOT_FOUND)
		return not_found(r);
	if (rc != TS_OK)
		return unavailable(r);
	return api_json(r, 204, NULL, NULL);
}

int tasks_reorder(api_req *r)
{
	static const char *const allowed[] = {"order", NULL};
	json_t *b;
	int st = read_json(r, &b);
	if (st)
		return st;
	const char **ids = NULL;
	char *idbuf = NULL;
	if ((st = check_keys(r, b, allowed)))
		goto done;
	json_t *order = json_object_get(b, "order");
	if (!json_is_array(order)) {
		st = api_error(r, 422, "validation_failed", "order", NULL, NULL,
		               "order must be an array of task ids");
		goto done;
	}
	size_t n = json_array_size(order);
	ids = xcalloc(n + 1, sizeof(char *));
	idbuf = xmalloc(n * UUID_STR_LEN + 1);
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(order, i));
		if (!s || !uuid_valid(s)) {
			st = api_error(r, 422, "validation_failed", "order", NULL, NULL,
			               "order[%zu] is not a task id", i);
			goto done;
		}
		char *d = idbuf + i * UUID_STR_LEN;
		memcpy(d, s, UUID_STR_LEN);
		lower(d);
		ids[i] = d;
	}
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc) {
		st = unavailable(r);
		goto done;
	}
	json_t *full;
	int64_t seq;
	char why[128];
	int rc =
	    ts_reorder(db_pg(dc), r->user, ids, n, r->origin, &full, &seq, why, sizeof(why));
	release(r, dc, rc);
	if (rc == TS_OK)
		st = api_json(r, 200,
		              json_pack("{s:o, s:I}", "order", full, "seq", (json_int_t)seq), NULL);
	else if (rc == TS_INVALID)
		st = api_error(r, 422, "validation_failed", "order", NULL, NULL, "%s", why);
	else
		st = unavailable(r);
done:
	free(ids);
	free(idbuf);
	json_decref(b);
	return st;
}

/* A non-negative decimal integer of at most 18 digits; -1 otherwise. */
static int64_t parse_count(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	return strtoll(s, NULL, 10);
}

int tasks_events(api_req *r)
{
	const char *q = mg_get_request_info(r->c)->query_string;
	char buf[32];
	int n = http_query_param(q, "since", buf, sizeof(buf));
	int64_t since = n >= 0 ? parse_count(buf) : -1;
	if (since < 0)
		return api_error(r, 400, "bad_request", "since", NULL, NULL,
		                 "since must be an integer >= 0");
	long limit = EVENTS_LIMIT_DEFAULT;
	n = http_query_param(q, "limit", buf, sizeof(buf));
	if (n != -1) {
		int64_t l = n >= 0 ? parse_count(buf) : -1;
		if (l < 1 || l > EVENTS_LIMIT_MAX)
			return api_error(r, 400, "bad_request", "limit", NULL, NULL,
			                 "limit must be an integer in 1..%d", EVENTS_LIMIT_MAX);
		limit = (long)l;
	}
	db_conn *dc = db_acquire(r->ctx->pool, POOL_WAIT_MS);
	if (!dc)
		return unavailable(r);
	char *body;
	size_t len;
	int64_t seq;
	int rc = ts_events(db_pg(dc), r->user, since, (int)limit, &body, &len, &seq);
	release(r, dc, rc);
	if (rc == TS_GONE)
		return api_error(
		    r, 410, "gone", NULL, NULL, json_pack("{s:I}", "seq", (json_int_t)seq),
		    "events after %" PRId64 " are no longer kept: reload the list", since);
	if (rc != TS_OK)
		return unavailable(r);
	char hdr[1024];
	snprintf(hdr, sizeof(hdr), "%s", r->cors ? r->cors : "");
	int st = http_reply(r->c, 200, "application/json", body, len, hdr);
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
