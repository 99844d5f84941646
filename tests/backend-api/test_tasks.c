/* The HTTP API of backend-api (backend-api/src/tasks.c and its routes): every
 * route and every error path of the contract, against the real binary, the
 * harness's PostgreSQL and the devbroker. One backend per TCase; each test works
 * as users of its own. */
#include "../support/runner.h"
#include "harness.h"
#include "suites.h"

#include "common/auth.h"
#include "common/event.h"
#include "common/poskey.h"
#include "common/rfc3339.h"
#include "common/util.h"

#include <jwt.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static backend B;

static void setup(void)
{
	shared_start(&B, NULL);
}
static void teardown(void)
{
	shared_stop(&B);
}

/* RFC 3339 UTC with milliseconds (microseconds when the time has any), as the
 * contract writes timestamps. */
static void assert_ts(const json_t *o, const char *key)
{
	const char *v = jstr(o, key);
	ck_assert_msg(v != NULL, "%s missing", key);
	regex_t re;
	ck_assert_int_eq(
	    regcomp(
	        &re,
	        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.([0-9]{3}|[0-9]{6})Z$",
	        REG_EXTENDED | REG_NOSUB),
	    0);
	int ok = regexec(&re, v, 0, NULL, 0) == 0;
	regfree(&re);
	ck_assert_msg(ok, "%s is not RFC 3339 UTC with milliseconds: %s", key, v);
}

/* Every member of a task as proto/task.schema.json has it. */
static void assert_task_shape(const json_t *t)
{
	ck_assert(json_is_object(t));
	ck_assert(uuid_valid(jstr(t, "id")));
	ck_assert(json_is_string(json_object_get(t, "title")));
	const json_t *d = json_object_get(t, "description");
	ck_assert(json_is_string(d) || json_is_null(d));
	const char *p = jstr(t, "priority");
	ck_assert(p && (!strcmp(p, "low") || !strcmp(p, "medium") || !strcmp(p, "high")));
	const json_t *due = json_object_get(t, "due_at");
	ck_assert(json_is_null(due) || json_is_string(due));
	if (json_is_string(due))
		assert_ts(t, "due_at");
	ck_assert(json_is_boolean(json_object_get(t, "completed")));
	ck_assert_msg(poskey_valid(jstr(t, "position")), "position is not a key");
	ck_assert_int_ge(jint(t, "version"), 1);
	assert_ts(t, "created_at");
	assert_ts(t, "updated_at");
}

static void assert_etag(const http_resp *r, long long version)
{
	char etag[64], want[64];
	ck_assert_msg(http_resp_header(r, "ETag", etag, sizeof(etag)), "no ETag");
	snprintf(want, sizeof(want), "\"%lld\"", version);
	ck_assert_str_eq(etag, want);
}

static long long user_seq(const char *user)
{
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, user, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	long long s = jint(l, "seq");
	json_decref(l);
	return s;
}

/* The user's events from /api/v1/events?since=0 (asserts 200). */
static json_t *feed(const char *user, long since)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/events?since=%ld", since);
	json_t *f = NULL;
	ck_assert_int_eq(api(&B, user, "GET", path, NULL, NULL, &f, NULL), 200);
	ck_assert(json_is_array(json_object_get(f, "events")));
	return f;
}

/* ---- auth ---- */

/* A token signed with alg and key (NULL for none), with exp unless no_exp. */
static char *token_alg(const char *user, jwt_alg_t alg, const char *key, int no_exp)
{
	jwt_t *j = NULL;
	ck_assert_int_eq(jwt_new(&j), 0);
	ck_assert_int_eq(jwt_add_grant(j, "sub", user), 0);
	if (!no_exp)
		ck_assert_int_eq(jwt_add_grant_int(j, "exp", (long)time(NULL) + 600), 0);
	ck_assert_int_eq(
	    jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
	char *t = jwt_encode_str(j);
	jwt_free(j);
	ck_assert_ptr_nonnull(t);
	return t;
}

static void expect_401(const char *auth_line, const char *method, const char *path,
                       const char *body)
{
	http_resp r;
	json_t *j = NULL;
	int st = api(&B, NULL, method, path, body, auth_line, &j, &r);
	ck_assert_msg(st == 401, "%s %s with [%s]: %d", method, path, auth_line ? auth_line : "",
	              st);
	char v[128];
	ck_assert_msg(http_resp_header(&r, "WWW-Authenticate", v, sizeof(v)),
	              "no WWW-Authenticate");
	ck_assert_msg(!strncmp(v, "Bearer", 6), "WWW-Authenticate: %s", v);
	http_resp_free(&r);
	expect_error(j, "unauthorized", NULL);
}

START_TEST(auth_rejects_bad_tokens)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "mine");
	char line[4096];
	char *tok;
	const char *routes[][3] = {
	    {"GET", "/api/v1/tasks", NULL},
	    {"POST", "/api/v1/tasks", "{\"title\":\"x\"}"},
	    {"GET", task_path(jstr(t, "id")), NULL},
	    {"PATCH", task_path(jstr(t, "id")), "{\"title\":\"y\"}"},
	    {"DELETE", task_path(jstr(t, "id")), NULL},
	    {"PUT", "/api/v1/tasks/order", "{\"order\":[]}"},
	    {"GET", "/api/v1/events?since=0", NULL},
	};
	char paths[7][256];
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s", routes[i][1]);
		routes[i][1] = paths[i];
	}
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		const char *m = routes[i][0], *p = routes[i][1], *b = routes[i][2];
		expect_401(NULL, m, p, b);                                  /* missing */
		expect_401("Authorization: Bearer not.a.jwt\r\n", m, p, b); /* garbage */
		expect_401("Authorization: Basic dTE6cHc=\r\n", m, p, b);   /* other scheme */
		tok = token_for(u, -120);                                   /* expired */
		snprintf(line, sizeof(line), "Authorization: Bearer %s\r\n", tok);
		free(tok);
		expect_401(line, m, p, b);
		tok = auth_mint("another-secret-0123456789", u, 600); /* bad signature */
		snprintf(line, sizeof(line), "Authorization: Bearer %s\r\n", tok);
		free(tok);
		expect_401(line, m, p, b);
		tok = token_alg(u, JWT_ALG_HS384, TEST_SECRET, 0); /* other algorithm */
		snprintf(line, sizeof(line), "Authorization: Bearer %s\r\n", tok);
		free(tok);
		expect_401(line, m, p, b);
		tok = token_alg(u, JWT_ALG_HS256, TEST_SECRET, 1); /* no exp */
		snprintf(line, sizeof(line), "Authorization: Bearer %s\r\n", tok);
		free(tok);
		expect_401(line, m, p, b);
	}
	/* alg none, unsigned, and alg none with a signature of the real secret's
	 * token appended */
	char payload[256];
	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%ld}", u,
	         (long)time(NULL) + 600);
	char *h = b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *pl = b64url(payload);
	snprintf(line, sizeof(line), "Authorization: Bearer %s.%s.\r\n", h, pl);
	expect_401(line, "GET", "/api/v1/tasks", NULL);
	snprintf(line, sizeof(line), "Authorization: Bearer %s.%s\r\n", h, pl);
	expect_401(line, "GET", "/api/v1/tasks", NULL);
	char *good = token_for(u, 600);
	snprintf(line, sizeof(line), "Authorization: Bearer %s.%s.%s\r\n", h, pl,
	         strrchr(good, '.') + 1);
	expect_401(line, "GET", "/api/v1/tasks", NULL);
	free(good);
	free(h);
	free(pl);
	/* nothing was changed by the rejected calls */
	json_t *got = NULL;
	http_resp r;
	ck_assert_int_eq(api(&B, u, "GET", task_path(jstr(t, "id")), NULL, NULL, &got, &r), 200);
	ck_assert_str_eq(jstr(got, "title"), "mine");
	ck_assert_int_eq(jint(got, "version"), 1);
	http_resp_free(&r);
	json_decref(got);
	ck_assert_int_eq(user_seq(u), 1);
	json_decref(t);
}
END_TEST

/* ---- create / get / list ---- */

START_TEST(create_defaults_and_get)
{
	char u[64];
	new_user(u, sizeof(u));
	http_resp r;
	json_t *t = NULL;
	ck_assert_int_eq(
	    api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"buy milk\"}", NULL, &t, &r), 201);
	assert_task_shape(t);
	ck_assert_str_eq(jstr(t, "title"), "buy milk");
	ck_assert(json_is_null(json_object_get(t, "description")));
	ck_assert_str_eq(jstr(t, "priority"), "medium");
	ck_assert(json_is_null(json_object_get(t, "due_at")));
	ck_assert(json_is_false(json_object_get(t, "completed")));
	ck_assert_int_eq(jint(t, "version"), 1);
	assert_etag(&r, 1);
	char loc[256];
	ck_assert_msg(http_resp_header(&r, "Location", loc, sizeof(loc)), "no Location");
	ck_assert_ptr_nonnull(strstr(loc, task_path(jstr(t, "id"))));
	http_resp_free(&r);

	json_t *g = NULL;
	ck_assert_int_eq(api(&B, u, "GET", task_path(jstr(t, "id")), NULL, NULL, &g, &r), 200);
	ck_assert_msg(json_equal(t, g), "GET differs from the created task");
	assert_etag(&r, 1);
	http_resp_free(&r);
	json_decref(g);
	json_decref(t);
}
END_TEST

START_TEST(create_all_fields)
{
	char u[64], id[UUID_STR_LEN];
	new_user(u, sizeof(u));
	uuid_new(id);
	json_t *t = NULL;
	ck_assert_int_eq(
	    apif(&B, u, "POST", "/api/v1/tasks", &t,
	         "{\"id\":\"%s\",\"title\":\"  pad  \",\"description\":\"d\\u00e9tails\","
	         "\"priority\":\"high\",\"due_at\":\"2026-12-01T10:00:00+02:00\","
	         "\"completed\":true}",
	         id),
	    201);
	assert_task_shape(t);
	ck_assert_str_eq(jstr(t, "id"), id);
	ck_assert_str_eq(jstr(t, "description"), "d\xc3\xa9tails");
	ck_assert_str_eq(jstr(t, "priority"), "high");
	ck_assert(json_is_true(json_object_get(t, "completed")));
	int64_t due, want;
	ck_assert_int_eq(time_parse_iso8601(jstr(t, "due_at"), &due), 0);
	ck_assert_int_eq(time_parse_iso8601("2026-12-01T08:00:00Z", &want), 0);
	ck_assert_int_eq(due, want);
	/* upper-case UUID from a client names the same task */
	char up[UUID_STR_LEN];
	for (size_t i = 0; i < sizeof(up); i++)
		up[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
	json_t *g = NULL;
	int st = api(&B, u, "GET", task_path(up), NULL, NULL, &g, NULL);
	ck_assert_msg(st == 200 || st == 404, "upper-case id: %d", st);
	json_decref(g);
	json_decref(t);
}
END_TEST

START_TEST(create_idempotent_with_client_id)
{
	char u[64], u2[64], id[UUID_STR_LEN];
	new_user(u, sizeof(u));
	new_user(u2, sizeof(u2));
	uuid_new(id);
	json_t *a = NULL, *b = NULL;
	http_resp r;
	char body[256];
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"once\"}", id);
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, NULL, &a, NULL), 201);
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, NULL, &b, &r), 200);
	ck_assert_msg(json_equal(a, b), "repeat returned a different task");
	assert_etag(&r, 1);
	http_resp_free(&r);
	json_decref(b);
	/* a repeat with other content still returns the stored task */
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"twice\"}", id);
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, NULL, &b, NULL), 200);
	ck_assert_str_eq(jstr(b, "title"), "once");
	json_decref(b);
	ck_assert_int_eq(user_seq(u), 1); /* one event only */
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 1);
	json_decref(l);
	/* the same id for another user: ids are per user, so it is a fresh create that
	 * reveals nothing of the first user's task */
	json_t *c = NULL;
	ck_assert_int_eq(api(&B, u2, "POST", "/api/v1/tasks", body, NULL, &c, &r), 201);
	ck_assert_ptr_null(strstr(r.body, "once"));
	http_resp_free(&r);
	ck_assert_str_eq(jstr(c, "id"), id);
	ck_assert_str_eq(jstr(c, "title"), "twice");
	json_decref(c);
	ck_assert_int_eq(user_seq(u2), 1);
	ck_assert_int_eq(api(&B, u, "GET", task_path(id), NULL, NULL, &c, NULL), 200);
	ck_assert_str_eq(jstr(c, "title"), "once");
	json_decref(c);
	/* each user deletes only their own */
	ck_assert_int_eq(api(&B, u2, "DELETE", task_path(id), NULL, NULL, NULL, NULL), 204);
	ck_assert_int_eq(api(&B, u, "GET", task_path(id), NULL, NULL, &c, NULL), 200);
	json_decref(c);
	/* a bad id is a validation error */
	ck_assert_int_eq(
	    api(&B, u, "POST", "/api/v1/tasks", "{\"id\":\"t1\",\"title\":\"x\"}", NULL, &c, NULL),
	    422);
	expect_error(c, "validation_failed", "id");
	ck_assert_int_eq(
	    api(&B, u, "POST", "/api/v1/tasks", "{\"id\":7,\"title\":\"x\"}", NULL, &c, NULL), 422);
	expect_error(c, "validation_failed", "id");
	json_decref(a);
}
END_TEST

START_TEST(list_order_and_seq)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 0);
	ck_assert_int_eq(jint(l, "seq"), 0);
	json_decref(l);
	const char *titles[] = {"first", "second", "third", "fourth"};
	for (size_t i = 0; i < ARRAY_LEN(titles); i++)
		json_decref(create_task(&B, u, titles[i]));
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	json_t *ts = json_object_get(l, "tasks");
	ck_assert_int_eq(json_array_size(ts), 4);
	const char *prev = NULL;
	for (size_t i = 0; i < 4; i++) {
		json_t *t = json_array_get(ts, i);
		assert_task_shape(t);
		ck_assert_str_eq(jstr(t, "title"), titles[i]);
		ck_assert(!prev || strcmp(prev, jstr(t, "position")) < 0);
		prev = jstr(t, "position");
	}
	ck_assert(json_is_null(json_object_get(l, "next_cursor")));
	ck_assert_int_eq(jint(l, "seq"), 4);
	json_decref(l);
}
END_TEST

START_TEST(get_not_found)
{
	char u[64], u2[64], id[UUID_STR_LEN];
	new_user(u, sizeof(u));
	new_user(u2, sizeof(u2));
	uuid_new(id);
	json_t *j = NULL;
	ck_assert_int_eq(api(&B, u, "GET", task_path(id), NULL, NULL, &j, NULL), 404);
	expect_error(j, "not_found", NULL);
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks/not-a-uuid", NULL, NULL, &j, NULL), 404);
	expect_error(j, "not_found", NULL);
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks/%27%20OR%201=1--", NULL, NULL, &j, NULL),
	                 404);
	expect_error(j, "not_found", NULL);
	json_t *t = create_task(&B, u, "private");
	http_resp r;
	ck_assert_int_eq(api(&B, u2, "GET", task_path(jstr(t, "id")), NULL, NULL, &j, &r), 404);
	ck_assert_ptr_null(strstr(r.body, "private"));
	http_resp_free(&r);
	expect_error(j, "not_found", NULL);
	json_decref(t);
}
END_TEST

/* ---- patch ---- */

START_TEST(patch_partial_and_events)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "draft");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	http_resp r;
	json_t *p = NULL;
	ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"final\"}", NULL, &p, &r), 200);
	assert_task_shape(p);
	assert_etag(&r, 2);
	http_resp_free(&r);
	ck_assert_str_eq(jstr(p, "title"), "final");
	ck_assert_int_eq(jint(p, "version"), 2);
	ck_assert_str_eq(jstr(p, "priority"), "medium");
	ck_assert_str_eq(jstr(p, "created_at"), jstr(t, "created_at"));
	ck_assert_str_eq(jstr(p, "position"), jstr(t, "position"));
	ck_assert(strcmp(jstr(p, "updated_at"), jstr(t, "updated_at")) >= 0);
	json_decref(p);

	ck_assert_int_eq(api(&B, u, "PATCH", path,
	                     "{\"description\":\"more\",\"priority\":\"low\","
	                     "\"due_at\":\"2027-01-02T03:04:05.678Z\"}",
	                     NULL, &p, NULL),
	                 200);
	ck_assert_str_eq(jstr(p, "description"), "more");
	ck_assert_str_eq(jstr(p, "priority"), "low");
	ck_assert_str_eq(jstr(p, "due_at"), "2027-01-02T03:04:05.678Z");
	ck_assert_str_eq(jstr(p, "title"), "final");
	ck_assert_int_eq(jint(p, "version"), 3);
	json_decref(p);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", path, "{\"description\":null,\"due_at\":null}", NULL, &p, NULL),
	    200);
	ck_assert(json_is_null(json_object_get(p, "description")));
	ck_assert(json_is_null(json_object_get(p, "due_at")));
	ck_assert_int_eq(jint(p, "version"), 4);
	json_decref(p);
	ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"completed\":true}", NULL, &p, NULL), 200);
	ck_assert(json_is_true(json_object_get(p, "completed")));
	json_decref(p);
	ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"completed\":false}", NULL, &p, NULL), 200);
	ck_assert(json_is_false(json_object_get(p, "completed")));
	json_decref(p);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", path, "{\"completed\":true,\"title\":\"done\"}", NULL, &p, NULL),
	    200);
	ck_assert_int_eq(jint(p, "version"), 7);
	json_t *last = p;

	/* the GET agrees with the last answer */
	ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &p, NULL), 200);
	ck_assert(json_equal(p, last));
	json_decref(p);

	/* created, updated x3, completed, updated (un-complete), completed */
	const char *want[] = {"task.created",   "task.updated", "task.updated",  "task.updated",
	                      "task.completed", "task.updated", "task.completed"};
	json_t *f = feed(u, 0);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		json_t *e = json_array_get(evs, i);
		ck_assert_str_eq(jstr(e, "event_type"), want[i]);
		ck_assert_int_eq(jint(e, "seq"), (long long)i + 1);
	}
	ck_assert(json_equal(json_object_get(json_array_get(evs, 6), "task"), last));
	ck_assert_int_eq(jint(f, "seq"), 7);
	json_decref(f);
	json_decref(last);
	json_decref(t);
}
END_TEST

START_TEST(patch_if_match)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "v1");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	json_t *p = NULL;
	ck_assert_int_eq(
	    api(&B, u, "PATCH", path, "{\"title\":\"v2\"}", "If-Match: 1\r\n", &p, NULL), 200);
	ck_assert_int_eq(jint(p, "version"), 2);
	json_decref(p);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", path, "{\"title\":\"v3\"}", "If-Match: \"2\"\r\n", &p, NULL), 200);
	ck_assert_int_eq(jint(p, "version"), 3);
	json_decref(p);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", path, "{\"title\":\"v4\"}", "If-Match: W/\"3\"\r\n", &p, NULL),
	    200);
	ck_assert_int_eq(jint(p, "version"), 4);
	json_t *cur = p;
	/* stale: 412 with the current task, nothing changed */
	http_resp r;
	ck_assert_int_eq(
	    api(&B, u, "PATCH", path, "{\"title\":\"lost\"}", "If-Match: \"2\"\r\n", &p, &r), 412);
	http_resp_free(&r);
	ck_assert_msg(json_equal(json_object_get(p, "task"), cur), "412 without the current task");
	json_incref(p);
	expect_error(p, "precondition_failed", NULL);
	json_decref(p);
	/* without If-Match the last writer wins */
	ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"v5\"}", NULL, &p, NULL), 200);
	ck_assert_int_eq(jint(p, "version"), 5);
	json_decref(p);
	ck_assert_int_eq(user_seq(u), 5);
	json_decref(cur);
	json_decref(t);
}
END_TEST

START_TEST(patch_noop)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "same");
	json_t *p = NULL;
	http_resp r;
	ck_assert_int_eq(api(&B, u, "PATCH", task_path(jstr(t, "id")),
	                     "{\"title\":\"same\",\"priority\":\"medium\",\"completed\":false,"
	                     "\"description\":null}",
	                     NULL, &p, &r),
	                 200);
	assert_etag(&r, 1);
	http_resp_free(&r);
	ck_assert_msg(json_equal(p, t), "a no-op PATCH changed the task");
	json_decref(p);
	ck_assert_int_eq(user_seq(u), 1);
	json_decref(t);
}
END_TEST

START_TEST(patch_validation)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "valid");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	char *long_title = xcalloc(1, 600), *long_desc = xcalloc(1, 10010);
	memset(long_title, 'x', 501);
	memset(long_desc, 'd', 10001);
	struct {
		const char *body, *field;
	} cases[] = {
	    {"{}", NULL},
	    {"{\"colour\":\"red\"}", NULL},
	    {"{\"title\":\"\"}", "title"},
	    {"{\"title\":\"   \\t \"}", "title"},
	    {"{\"title\":5}", "title"},
	    {"{\"title\":null}", "title"},
	    {"{\"priority\":\"urgent\"}", "priority"},
	    {"{\"priority\":1}", "priority"},
	    {"{\"due_at\":\"tomorrow\"}", "due_at"},
	    {"{\"due_at\":12}", "due_at"},
	    {"{\"completed\":\"yes\"}", "completed"},
	    {"{\"completed\":null}", "completed"},
	    {"{\"description\":5}", "description"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		json_t *e = NULL;
		int st = api(&B, u, "PATCH", path, cases[i].body, NULL, &e, NULL);
		ck_assert_msg(st == 422, "PATCH %s: %d", cases[i].body, st);
		expect_error(e, "validation_failed", cases[i].field);
	}
	json_t *e = NULL;
	ck_assert_int_eq(apif(&B, u, "PATCH", path, &e, "{\"title\":\"%s\"}", long_title), 422);
	expect_error(e, "validation_failed", "title");
	ck_assert_int_eq(apif(&B, u, "PATCH", path, &e, "{\"description\":\"%s\"}", long_desc),
	                 422);
	expect_error(e, "validation_failed", "description");
	/* the limits count characters: 500 two-byte characters are a valid title */
	char *wide = xcalloc(1, 1100);
	for (int i = 0; i < 500; i++)
		memcpy(wide + 2 * i, "\xc3\xa9", 2);
	ck_assert_int_eq(apif(&B, u, "PATCH", path, &e, "{\"title\":\"%s\"}", wide), 200);
	ck_assert_int_eq(jint(e, "version"), 2);
	json_decref(e);
	long_title[500] = 0;
	ck_assert_int_eq(apif(&B, u, "PATCH", path, &e, "{\"title\":\"%s\"}", long_title), 200);
	json_decref(e);
	/* nothing but the two valid PATCHes wrote */
	ck_assert_int_eq(user_seq(u), 3);
	free(wide);
	free(long_title);
	free(long_desc);
	json_decref(t);
}
END_TEST

START_TEST(create_validation)
{
	char u[64];
	new_user(u, sizeof(u));
	char *long_title = xcalloc(1, 600);
	memset(long_title, 'x', 501);
	struct {
		const char *body, *field;
	} cases[] = {
	    {"{}", "title"},
	    {"{\"title\":\"\"}", "title"},
	    {"{\"title\":\" \\n \"}", "title"},
	    {"{\"title\":[\"x\"]}", "title"},
	    {"{\"title\":\"x\",\"priority\":\"urgent\"}", "priority"},
	    {"{\"title\":\"x\",\"due_at\":\"2026-13-45\"}", "due_at"},
	    {"{\"title\":\"x\",\"completed\":1}", "completed"},
	    {"{\"title\":\"x\",\"description\":{}}", "description"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		json_t *e = NULL;
		int st = api(&B, u, "POST", "/api/v1/tasks", cases[i].body, NULL, &e, NULL);
		ck_assert_msg(st == 422, "POST %s: %d", cases[i].body, st);
		expect_error(e, "validation_failed", cases[i].field);
	}
	json_t *e = NULL;
	ck_assert_int_eq(apif(&B, u, "POST", "/api/v1/tasks", &e, "{\"title\":\"%s\"}", long_title),
	                 422);
	expect_error(e, "validation_failed", "title");
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 0);
	ck_assert_int_eq(jint(l, "seq"), 0);
	json_decref(l);
	free(long_title);
}
END_TEST

/* ---- delete ---- */

START_TEST(delete_then_gone)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "bye");
	json_t *keep = create_task(&B, u, "stay");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	http_resp r;
	ck_assert_int_eq(api(&B, u, "DELETE", path, NULL, NULL, NULL, &r), 204);
	ck_assert_int_eq(r.body_len, 0);
	http_resp_free(&r);
	json_t *e = NULL;
	ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &e, NULL), 404);
	expect_error(e, "not_found", NULL);
	/* a deleted task's tombstone: edits and deletes of it are 410 (delete wins) */
	ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"back\"}", NULL, &e, NULL), 410);
	expect_error(e, "task_deleted", "id");
	ck_assert_int_eq(api(&B, u, "DELETE", path, NULL, NULL, &e, NULL), 410);
	expect_error(e, "task_deleted", "id");
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 1);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(l, "tasks"), 0), "id"),
	                 jstr(keep, "id"));
	ck_assert_int_eq(jint(l, "seq"), 3);
	json_decref(l);
	json_t *f = feed(u, 2);
	json_t *ev = json_array_get(json_object_get(f, "events"), 0);
	ck_assert_str_eq(jstr(ev, "event_type"), "task.deleted");
	ck_assert_int_eq(jint(ev, "seq"), 3);
	ck_assert_str_eq(jstr(json_object_get(ev, "task"), "id"), jstr(t, "id"));
	json_decref(f);
	json_decref(t);
	json_decref(keep);
}
END_TEST

/* ---- order: moves and renumbering ---- */

/* The list's ids in order (GET, every page). */
static size_t list_ids(const char *user, char ids[][UUID_STR_LEN], size_t max)
{
	size_t n = 0;
	char path[512] = "/api/v1/tasks?limit=1000";
	for (;;) {
		json_t *l = NULL;
		ck_assert_int_eq(api(&B, user, "GET", path, NULL, NULL, &l, NULL), 200);
		json_t *ts = json_object_get(l, "tasks");
		for (size_t i = 0; i < json_array_size(ts); i++) {
			ck_assert(n < max);
			snprintf(ids[n++], UUID_STR_LEN, "%s", jstr(json_array_get(ts, i), "id"));
		}
		const char *next = jstr(l, "next_cursor");
		if (!next) {
			json_decref(l);
			return n;
		}
		snprintf(path, sizeof(path), "/api/v1/tasks?limit=1000&cursor=%s", next);
		json_decref(l);
	}
}

typedef struct replayed {
	char id[UUID_STR_LEN];
	char key[POSKEY_BUF];
} replayed;

static int replayed_cmp(const void *a, const void *b)
{
	return strcmp(((const replayed *)a)->key, ((const replayed *)b)->key);
}

/* The order a client derives by applying the user's events from seq 0 in seq order
 * (created: its position; moved: the new key; reordered: the changed keys; deleted:
 * gone), sorted by key with plain byte comparison. Asserts the keys are unique. */
static size_t replay_order(const char *user, char ids[][UUID_STR_LEN], size_t max)
{
	replayed *r = calloc(max, sizeof(*r));
	size_t n = 0;
	long since = 0;
	for (;;) {
		json_t *f = feed(user, since);
		json_t *evs = json_object_get(f, "events");
		for (size_t i = 0; i < json_array_size(evs); i++) {
			json_t *e = json_array_get(evs, i);
			ck_assert_int_eq(jint(e, "seq"), since + 1);
			since = (long)jint(e, "seq");
			const char *type = jstr(e, "event_type");
			json_t *t = json_object_get(e, "task");
			if (!strcmp(type, "task.reordered")) {
				const char *id;
				json_t *k;
				json_object_foreach(json_object_get(e, "positions"), id, k)
				{
					for (size_t j = 0; j < n; j++)
						if (!strcmp(r[j].id, id))
							snprintf(r[j].key, POSKEY_BUF, "%s",
							         json_string_value(k));
				}
				continue;
			}
			size_t j;
			for (j = 0; j < n && strcmp(r[j].id, jstr(t, "id")); j++)
				;
			if (!strcmp(type, "task.deleted")) {
				if (j < n)
					r[j] = r[--n];
				continue;
			}
			if (j == n) {
				ck_assert(n < max);
				snprintf(r[n++].id, UUID_STR_LEN, "%s", jstr(t, "id"));
			}
			snprintf(r[j].key, POSKEY_BUF, "%s", jstr(t, "position"));
		}
		int more = json_is_true(json_object_get(f, "has_more"));
		json_decref(f);
		if (!more)
			break;
	}
	qsort(r, n, sizeof(*r), replayed_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			ck_assert_msg(strcmp(r[i - 1].key, r[i].key) < 0, "equal keys %s",
			              r[i].key);
		snprintf(ids[i], UUID_STR_LEN, "%s", r[i].id);
	}
	free(r);
	return n;
}

/* The list as GET shows it equals the order derived from the events. */
static void assert_list_is_replay(const char *user, size_t want)
{
	static char a[2048][UUID_STR_LEN], b[2048][UUID_STR_LEN];
	size_t na = list_ids(user, a, 2048), nb = replay_order(user, b, 2048);
	ck_assert_int_eq(na, want);
	ck_assert_int_eq(nb, want);
	for (size_t i = 0; i < na; i++)
		ck_assert_msg(!strcmp(a[i], b[i]), "list and replay differ at %zu", i);
}

static int move(const char *user, const char *id, const char *where, const char *anchor,
                json_t **out)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", id);
	if (anchor)
		return apif(&B, user, "POST", path, out, "{\"%s\":\"%s\"}", where, anchor);
	return apif(&B, user, "POST", path, out, "{\"%s\":null}", where);
}

static void assert_ids(const char *user, const char *const *want, size_t n)
{
	char ids[16][UUID_STR_LEN];
	ck_assert_int_eq(list_ids(user, ids, 16), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!strcmp(ids[i], want[i]), "position %zu", i);
}

START_TEST(move_rewrites_one_task)
{
	char u[64], u2[64];
	new_user(u, sizeof(u));
	new_user(u2, sizeof(u2));
	json_t *t[4];
	const char *id[4];
	for (int i = 0; i < 4; i++) {
		t[i] = create_task(&B, u, "m");
		id[i] = jstr(t[i], "id");
	}
	json_t *m = NULL;
	/* c before a */
	ck_assert_int_eq(move(u, id[2], "before", id[0], &m), 200);
	json_t *task = json_object_get(m, "task");
	assert_task_shape(task);
	ck_assert_int_eq(jint(task, "version"), 1); /* the order is not the content */
	ck_assert_int_eq(jint(m, "seq"), 5);
	ck_assert(strcmp(jstr(task, "position"), jstr(t[0], "position")) < 0);
	json_decref(m);
	const char *w1[] = {id[2], id[0], id[1], id[3]};
	assert_ids(u, w1, 4);
	/* its event: task.moved with the id and the new key only */
	json_t *f = feed(u, 4);
	json_t *e = json_array_get(json_object_get(f, "events"), 0);
	ck_assert_str_eq(jstr(e, "event_type"), "task.moved");
	json_t *et = json_object_get(e, "task");
	ck_assert_int_eq(json_object_size(et), 2);
	ck_assert_str_eq(jstr(et, "id"), id[2]);
	ck_assert(poskey_valid(jstr(et, "position")));
	assert_schema("task-event.schema.json", &e, 1);
	json_decref(f);
	/* a after d; d to the top (after nothing); b to the end (before nothing) */
	ck_assert_int_eq(move(u, id[0], "after", id[3], NULL), 200);
	ck_assert_int_eq(move(u, id[3], "after", NULL, NULL), 200);
	ck_assert_int_eq(move(u, id[1], "before", NULL, NULL), 200);
	const char *w2[] = {id[3], id[2], id[0], id[1]};
	assert_ids(u, w2, 4);
	/* where it already is: nothing written, seq null */
	long long seq = user_seq(u);
	ck_assert_int_eq(move(u, id[2], "after", id[3], &m), 200);
	ck_assert(json_is_null(json_object_get(m, "seq")));
	json_decref(m);
	ck_assert_int_eq(move(u, id[1], "before", NULL, NULL), 200);
	ck_assert_int_eq(user_seq(u), seq);
	/* a new task still goes to the end */
	json_t *d = create_task(&B, u, "new");
	const char *w3[] = {id[3], id[2], id[0], id[1], jstr(d, "id")};
	assert_ids(u, w3, 5);
	/* errors */
	json_t *other = create_task(&B, u2, "theirs");
	char unknown[UUID_STR_LEN], path[128];
	uuid_new(unknown);
	ck_assert_int_eq(move(u, unknown, "before", NULL, &m), 404);
	expect_error(m, "not_found", NULL);
	ck_assert_int_eq(move(u, jstr(other, "id"), "before", NULL, &m), 404);
	expect_error(m, "not_found", NULL);
	ck_assert_int_eq(move(u, id[0], "before", jstr(other, "id"), &m), 422);
	expect_error(m, "validation_failed", "before");
	ck_assert_int_eq(move(u, id[0], "after", unknown, &m), 422);
	expect_error(m, "validation_failed", "after");
	ck_assert_int_eq(move(u, id[0], "after", id[0], &m), 422);
	expect_error(m, "validation_failed", "after");
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", id[0]);
	const char *bad[] = {"{}", "{\"before\":null,\"after\":null}", "{\"before\":3}",
	                     "{\"before\":\"x\"}", "{\"to\":null}"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int st = api(&B, u, "POST", path, bad[i], NULL, &m, NULL);
		ck_assert_msg(st == 422, "%s: %d", bad[i], st);
		expect_error(m, "validation_failed", NULL);
	}
	ck_assert_int_eq(
	    api(&B, u, "POST", "/api/v1/tasks/nope/move", "{\"before\":null}", NULL, &m, NULL),
	    404);
	json_decref(m);
	ck_assert_int_eq(user_seq(u), seq + 1);
	ck_assert_int_eq(user_seq(u2), 1);
	assert_list_is_replay(u, 5);
	json_decref(other);
	json_decref(d);
	for (int i = 0; i < 4; i++)
		json_decref(t[i]);
}
END_TEST

/* Always into the same gap: keys grow, and at the bound the move is refused with a
 * clear 409 (never a longer key); a renumbering makes room again. */
START_TEST(move_into_one_gap_until_exhausted)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *a = create_task(&B, u, "a"), *b = create_task(&B, u, "b");
	json_t *c = create_task(&B, u, "c"), *d = create_task(&B, u, "d");
	const char *mv[2] = {jstr(c, "id"), jstr(d, "id")};
	int st = 200, i;
	json_t *m = NULL;
	for (i = 0; i < 5000 && st == 200; i++) {
		/* alternately put c and d right after a: the gap after a halves each time */
		st = move(u, mv[i % 2], "after", jstr(a, "id"), &m);
		if (st == 200) {
			ck_assert_int_le(strlen(jstr(json_object_get(m, "task"), "position")),
			                 POSKEY_MAX);
			json_decref(m);
		}
	}
	ck_assert_int_eq(st, 409);
	ck_assert_msg(i > 1000, "exhausted after %d moves", i);
	ck_assert_int_eq(jint(m, "max_key_bytes"), POSKEY_MAX);
	expect_error(m, "position_exhausted", "after");
	assert_list_is_replay(u, 4);
	/* renumbered: short keys, the move works again */
	ck_assert_int_eq(apif(&B, u, "PUT", "/api/v1/tasks/order", &m, "{\"order\":[]}"), 200);
	json_decref(m);
	ck_assert_int_eq(move(u, mv[i % 2], "after", jstr(a, "id"), &m), 200);
	ck_assert_int_le(strlen(jstr(json_object_get(m, "task"), "position")), 4);
	json_decref(m);
	assert_list_is_replay(u, 4);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}
END_TEST

START_TEST(reorder)
{
	char u[64], u2[64];
	new_user(u, sizeof(u));
	new_user(u2, sizeof(u2));
	json_t *t[3];
	const char *id[3];
	for (int i = 0; i < 3; i++) {
		t[i] = create_task(&B, u, i == 0 ? "a" : i == 1 ? "b" : "c");
		id[i] = jstr(t[i], "id");
	}
	json_t *o = NULL;
	ck_assert_int_eq(apif(&B, u, "PUT", "/api/v1/tasks/order", &o,
	                      "{\"order\":[\"%s\",\"%s\",\"%s\"]}", id[2], id[0], id[1]),
	                 200);
	const char *want1[] = {id[2], id[0], id[1]};
	ck_assert_int_eq(jint(o, "seq"), 4);
	ck_assert_int_eq(json_array_size(json_object_get(o, "skipped")), 0);
	ck_assert_int_eq(json_object_size(json_object_get(o, "positions")), 3);
	json_decref(o);
	assert_ids(u, want1, 3);
	/* a partial list: the others keep their relative order after it; unknown,
	 * another user's and repeated ids are skipped and reported */
	json_t *other = create_task(&B, u2, "theirs");
	char unknown[UUID_STR_LEN];
	uuid_new(unknown);
	ck_assert_int_eq(apif(&B, u, "PUT", "/api/v1/tasks/order", &o,
	                      "{\"order\":[\"%s\",\"%s\",\"%s\",\"%s\"]}", id[1], unknown,
	                      jstr(other, "id"), id[1]),
	                 200);
	const char *want2[] = {id[1], id[2], id[0]};
	json_t *sk = json_object_get(o, "skipped");
	ck_assert_int_eq(json_array_size(sk), 3);
	ck_assert_str_eq(jstr(json_array_get(sk, 0), "id"), unknown);
	ck_assert_str_eq(jstr(json_array_get(sk, 0), "reason"), "not_found");
	ck_assert_str_eq(jstr(json_array_get(sk, 1), "reason"), "not_found");
	ck_assert_str_eq(jstr(json_array_get(sk, 2), "reason"), "duplicate");
	ck_assert_int_eq(jint(o, "seq"), 5);
	json_t *pos = json_object_get(o, "positions");
	json_decref(o);
	(void)pos;
	assert_ids(u, want2, 3);
	/* the event carries positions (only the keys that changed), not the list */
	json_t *f = feed(u, 4);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), 1);
	json_t *e = json_array_get(evs, 0);
	ck_assert_str_eq(jstr(e, "event_type"), "task.reordered");
	ck_assert_ptr_null(json_object_get(e, "order"));
	ck_assert(json_is_object(json_object_get(e, "positions")));
	ck_assert_int_le(json_object_size(json_object_get(e, "positions")), 3);
	assert_schema("task-event.schema.json", &e, 1);
	json_decref(f);
	/* the same order again: nothing changes, no event */
	ck_assert_int_eq(
	    apif(&B, u, "PUT", "/api/v1/tasks/order", &o, "{\"order\":[\"%s\"]}", id[1]), 200);
	ck_assert(json_is_null(json_object_get(o, "seq")));
	json_decref(o);
	/* a new task goes to the end */
	json_t *d = create_task(&B, u, "d");
	const char *want3[] = {id[1], id[2], id[0], jstr(d, "id")};
	assert_ids(u, want3, 4);

	/* 422s: wrong types, malformed ids */
	char bodies[3][512];
	snprintf(bodies[0], 512, "{\"order\":\"%s\"}", id[0]);
	snprintf(bodies[1], 512, "{\"order\":[1,2]}");
	snprintf(bodies[2], 512, "{\"order\":[\"not-a-uuid\"]}");
	for (int i = 0; i < 3; i++) {
		json_t *e2 = NULL;
		int st = api(&B, u, "PUT", "/api/v1/tasks/order", bodies[i], NULL, &e2, NULL);
		ck_assert_msg(st == 422, "PUT order %s: %d", bodies[i], st);
		expect_error(e2, "validation_failed", "order");
	}
	json_t *e2 = NULL;
	ck_assert_int_eq(api(&B, u, "PUT", "/api/v1/tasks/order", "{}", NULL, &e2, NULL), 422);
	expect_error(e2, "validation_failed", "order");
	/* more ids than a renumbering takes: use moves */
	size_t cap = 16 + (TASK_ORDER_MAX + 1) * (UUID_STR_LEN + 2), len = 0;
	char *big = malloc(cap);
	len += (size_t)snprintf(big, cap, "{\"order\":[");
	for (int i = 0; i <= TASK_ORDER_MAX; i++) {
		char x[UUID_STR_LEN];
		uuid_new(x);
		len += (size_t)snprintf(big + len, cap - len, "%s\"%s\"", i ? "," : "", x);
	}
	snprintf(big + len, cap - len, "]}");
	ck_assert_int_eq(api(&B, u, "PUT", "/api/v1/tasks/order", big, NULL, &e2, NULL), 422);
	ck_assert_int_eq(jint(e2, "max"), TASK_ORDER_MAX);
	ck_assert_ptr_nonnull(strstr(jstr(json_object_get(e2, "error"), "message"), "/move"));
	expect_error(e2, "list_too_long", "order");
	free(big);
	ck_assert_int_eq(user_seq(u), 6);
	ck_assert_int_eq(user_seq(u2), 1);
	assert_list_is_replay(u, 4);
	json_decref(other);
	json_decref(d);
	for (int i = 0; i < 3; i++)
		json_decref(t[i]);
}
END_TEST

/* ---- events feed ---- */

START_TEST(events_since_limit)
{
	char u[64];
	new_user(u, sizeof(u));
	for (int i = 0; i < 5; i++) {
		char title[16];
		snprintf(title, sizeof(title), "t%d", i);
		json_decref(create_task(&B, u, title));
	}
	json_t *f = feed(u, 0);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), 5);
	for (size_t i = 0; i < 5; i++) {
		json_t *ev = json_array_get(evs, i);
		ck_assert_int_eq(jint(ev, "seq"), (long long)i + 1);
		ck_assert_str_eq(jstr(ev, "user_id"), u);
		ck_assert_str_eq(jstr(ev, "event_type"), "task.created");
		ck_assert(uuid_valid(jstr(ev, "event_id")));
	}
	ck_assert_int_eq(jint(f, "seq"), 5);
	ck_assert(json_is_false(json_object_get(f, "has_more")));
	json_decref(f);

	json_t *p = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/events?since=1&limit=2", NULL, NULL, &p, NULL),
	                 200);
	evs = json_object_get(p, "events");
	ck_assert_int_eq(json_array_size(evs), 2);
	ck_assert_int_eq(jint(json_array_get(evs, 0), "seq"), 2);
	ck_assert_int_eq(jint(json_array_get(evs, 1), "seq"), 3);
	ck_assert(json_is_true(json_object_get(p, "has_more")));
	ck_assert_int_eq(jint(p, "seq"), 5);
	json_decref(p);
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/events?since=3&limit=2", NULL, NULL, &p, NULL),
	                 200);
	ck_assert_int_eq(json_array_size(json_object_get(p, "events")), 2);
	ck_assert(json_is_false(json_object_get(p, "has_more")));
	json_decref(p);
	f = feed(u, 5);
	ck_assert_int_eq(json_array_size(json_object_get(f, "events")), 0);
	ck_assert(json_is_false(json_object_get(f, "has_more")));
	ck_assert_int_eq(jint(f, "seq"), 5);
	json_decref(f);
	f = feed(u, 99); /* ahead of the user: nothing, not an error */
	ck_assert_int_eq(json_array_size(json_object_get(f, "events")), 0);
	json_decref(f);

	const char *bad[] = {"/api/v1/events",
	                     "/api/v1/events?since=",
	                     "/api/v1/events?since=-1",
	                     "/api/v1/events?since=abc",
	                     "/api/v1/events?since=1.5",
	                     "/api/v1/events?since=0&limit=0",
	                     "/api/v1/events?since=0&limit=1001",
	                     "/api/v1/events?since=0&limit=x",
	                     "/api/v1/events?since=99999999999999999999999"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *e = NULL;
		int st = api(&B, u, "GET", bad[i], NULL, NULL, &e, NULL);
		ck_assert_msg(st == 400, "%s: %d", bad[i], st);
		json_t *err = json_object_get(e, "error");
		ck_assert_msg(json_is_string(json_object_get(err, "code")), "%s: no error code",
		              bad[i]);
		json_decref(e);
	}
	ck_assert_int_eq(
	    api(&B, u, "GET", "/api/v1/events?since=0&limit=1000", NULL, NULL, &p, NULL), 200);
	json_decref(p);
}
END_TEST

START_TEST(events_gone_after_pruning)
{
	char u[64];
	new_user(u, sizeof(u));
	for (int i = 0; i < 4; i++)
		json_decref(create_task(&B, u, "e"));
	wait_published(&B, u, 30000);
	/* What the pruner does to old published rows (the pruner itself is tested
	 * with EVENT_RETENTION in test_outbox.c): the user's oldest events go. */
	const char *p[] = {u};
	PGresult *r = pgtest_exec(B.db, "DELETE FROM outbox WHERE user_id = $1 AND seq <= 2", 1, p);
	PQclear(r);
	for (long since = 0; since <= 1; since++) {
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/events?since=%ld", since);
		json_t *e = NULL;
		ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &e, NULL), 410);
		ck_assert_int_eq(jint(e, "seq"), 4);
		expect_error(e, "gone", NULL);
	}
	json_t *f = feed(u, 2);
	ck_assert_int_eq(json_array_size(json_object_get(f, "events")), 2);
	json_decref(f);
	f = feed(u, 4);
	ck_assert_int_eq(json_array_size(json_object_get(f, "events")), 0);
	json_decref(f);
}
END_TEST

START_TEST(origin_from_client_id)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = NULL;
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"o\"}",
	                     "X-Client-Id: tab-1.a:B_2\r\n", &t, NULL),
	                 201);
	json_t *p = NULL;
	ck_assert_int_eq(
	    api(&B, u, "PATCH", task_path(jstr(t, "id")), "{\"title\":\"p\"}", NULL, &p, NULL),
	    200);
	json_decref(p);
	char *long_id = xcalloc(1, 200);
	memset(long_id, 'c', 128);
	char h[300];
	snprintf(h, sizeof(h), "X-Client-Id: %s\r\n", long_id);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", task_path(jstr(t, "id")), "{\"title\":\"q\"}", h, &p, NULL), 200);
	json_decref(p);
	json_t *f = feed(u, 0);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), 3);
	ck_assert_str_eq(jstr(json_array_get(evs, 0), "origin"), "tab-1.a:B_2");
	ck_assert(json_is_null(json_object_get(json_array_get(evs, 1), "origin")));
	ck_assert_str_eq(jstr(json_array_get(evs, 2), "origin"), long_id);
	json_decref(f);
	/* invalid ids: 400 and nothing written */
	memset(long_id, 'c', 129);
	snprintf(h, sizeof(h), "X-Client-Id: %s\r\n", long_id);
	const char *bad[] = {"X-Client-Id: bad id\r\n", "X-Client-Id: a/b\r\n", h,
	                     "X-Client-Id: \"quoted\"\r\n"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *e = NULL;
		int st = api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"x\"}", bad[i], &e, NULL);
		ck_assert_msg(st == 400, "%s: %d", bad[i], st);
		json_decref(e);
	}
	ck_assert_int_eq(user_seq(u), 3);
	free(long_id);
	json_decref(t);
}
END_TEST

/* ---- malformed requests ---- */

START_TEST(bad_json_and_media_type)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "x");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	const char *malformed[] = {"{", "{\"title\":", "not json", "{\"title\":\"x\"} trailing",
	                           "\xff\xfe"};
	for (size_t i = 0; i < ARRAY_LEN(malformed); i++) {
		json_t *e = NULL;
		ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", malformed[i], NULL, &e, NULL),
		                 400);
		expect_error(e, "bad_json", NULL);
		ck_assert_int_eq(api(&B, u, "PATCH", path, malformed[i], NULL, &e, NULL), 400);
		expect_error(e, "bad_json", NULL);
		ck_assert_int_eq(
		    api(&B, u, "PUT", "/api/v1/tasks/order", malformed[i], NULL, &e, NULL), 400);
		expect_error(e, "bad_json", NULL);
	}
	/* an empty body is not JSON either */
	json_t *e = NULL;
	int st = api(&B, u, "POST", "/api/v1/tasks", "", NULL, &e, NULL);
	ck_assert_msg(st == 400 || st == 422, "empty body: %d", st);
	json_decref(e);
	/* the top level must be an object */
	st = api(&B, u, "POST", "/api/v1/tasks", "[\"title\"]", NULL, &e, NULL);
	ck_assert_msg(st == 400 || st == 422, "array body: %d", st);
	json_decref(e);

	const char *types[] = {"Content-Type: text/plain\r\n",
	                       "Content-Type: application/x-www-form-urlencoded\r\n",
	                       "Content-Type: application/jsonx\r\n"};
	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		ck_assert_int_eq(
		    api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"x\"}", types[i], &e, NULL),
		    415);
		expect_error(e, "unsupported_media_type", NULL);
		ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"y\"}", types[i], &e, NULL),
		                 415);
		expect_error(e, "unsupported_media_type", NULL);
		ck_assert_int_eq(
		    api(&B, u, "PUT", "/api/v1/tasks/order", "{\"order\":[]}", types[i], &e, NULL),
		    415);
		expect_error(e, "unsupported_media_type", NULL);
	}
	/* no Content-Type at all: raw request */
	char *tok = token_for(u, 600);
	char h[2048];
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
	free(tok);
	http_resp r;
	ck_assert_int_eq(
	    http_request(B.p.port, "POST", "/api/v1/tasks", h, "{\"title\":\"x\"}", 13, 0, &r),
	    415);
	http_resp_free(&r);
	/* parameters are fine */
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"cs\"}",
	                     "Content-Type: application/json; charset=utf-8\r\n", &e, NULL),
	                 201);
	json_decref(e);
	ck_assert_int_eq(user_seq(u), 2);
	json_decref(t);
}
END_TEST

START_TEST(body_too_large)
{
	char u[64];
	new_user(u, sizeof(u));
	size_t n = 65536 + 1;
	char *big = xmalloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"title\":\"", 10);
	memcpy(big + n - 2, "\"}", 2);
	memset(big + 10, 'a', n - 12);
	big[n] = 0;
	json_t *e = NULL;
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", big, NULL, &e, NULL), 413);
	expect_error(e, "too_large", NULL);
	/* exactly the limit is read (and then judged on its content) */
	big[n - 3] = '"';
	big[n - 2] = '}';
	big[n - 1] = 0;
	int st = api(&B, u, "POST", "/api/v1/tasks", big, NULL, &e, NULL);
	ck_assert_msg(st == 422, "a 64 KiB body with a long title: %d", st);
	expect_error(e, "validation_failed", "title");
	ck_assert_int_eq(user_seq(u), 0);
	free(big);
	/* the server still answers */
	json_decref(create_task(&B, u, "after"));
}
END_TEST

START_TEST(unknown_route_and_method)
{
	char u[64];
	new_user(u, sizeof(u));
	const char *nf[][2] = {{"GET", "/api/v1/nope"},
	                       {"GET", "/api/v2/tasks"},
	                       {"GET", "/api/v1/tasks/a/b"},
	                       {"POST", "/api/v1/dev/login"}, /* DEV_LOGIN is off */
	                       {"GET", "/nothing-here"}};
	for (size_t i = 0; i < ARRAY_LEN(nf); i++) {
		json_t *e = NULL;
		const char *body = strcmp(nf[i][0], "POST") ? NULL : "{\"user\":\"alice\"}";
		int st = api(&B, u, nf[i][0], nf[i][1], body, NULL, &e, NULL);
		ck_assert_msg(st == 404, "%s %s: %d", nf[i][0], nf[i][1], st);
		expect_error(e, "not_found", NULL);
	}
	json_t *t = create_task(&B, u, "m");
	char tp[256];
	snprintf(tp, sizeof(tp), "%s", task_path(jstr(t, "id")));
	struct {
		const char *method, *path, *allow[3];
	} cases[] = {
	    {"DELETE", "/api/v1/tasks", {"GET", "POST", NULL}},
	    {"PATCH", "/api/v1/tasks", {"GET", "POST", NULL}},
	    {"POST", tp, {"GET", "PATCH", "DELETE"}},
	    {"PUT", tp, {"GET", "PATCH", "DELETE"}},
	    {"POST", "/api/v1/events?since=0", {"GET", NULL, NULL}},
	    {"POST", "/healthz", {"GET", NULL, NULL}},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		http_resp r;
		json_t *e = NULL;
		int st = api(&B, u, cases[i].method, cases[i].path, NULL, NULL, &e, &r);
		ck_assert_msg(st == 405, "%s %s: %d", cases[i].method, cases[i].path, st);
		char allow[128];
		ck_assert_msg(http_resp_header(&r, "Allow", allow, sizeof(allow)),
		              "%s %s: no Allow", cases[i].method, cases[i].path);
		for (int k = 0; k < 3 && cases[i].allow[k]; k++)
			ck_assert_msg(strstr(allow, cases[i].allow[k]), "Allow: %s lacks %s", allow,
			              cases[i].allow[k]);
		ck_assert_msg(!strstr(allow, cases[i].method), "Allow: %s has %s", allow,
		              cases[i].method);
		http_resp_free(&r);
		expect_error(e, "method_not_allowed", NULL);
	}
	ck_assert_int_eq(user_seq(u), 1);
	json_decref(t);
}
END_TEST

/* ---- concurrency ---- */

typedef struct patch_arg {
	const char *user, *path, *body, *headers;
	pthread_barrier_t *go;
	int status;
} patch_arg;

static void *patch_thread(void *p)
{
	patch_arg *a = p;
	pthread_barrier_wait(a->go);
	a->status = api(&B, a->user, "PATCH", a->path, a->body, a->headers, NULL, NULL);
	return NULL;
}

START_TEST(concurrent_if_match_one_wins)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "race");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	for (int round = 1; round <= 10; round++) {
		char h[64];
		snprintf(h, sizeof(h), "If-Match: \"%d\"\r\n", round);
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 2);
		/* distinct titles each round: a PATCH that changes nothing is a 200
		 * that keeps the version, and would let the other one through */
		char ba[64], bb[64];
		snprintf(ba, sizeof(ba), "{\"title\":\"a%d\"}", round);
		snprintf(bb, sizeof(bb), "{\"title\":\"b%d\"}", round);
		patch_arg a = {u, path, ba, h, &go, 0};
		patch_arg b = {u, path, bb, h, &go, 0};
		pthread_t ta, tb;
		pthread_create(&ta, NULL, patch_thread, &a);
		pthread_create(&tb, NULL, patch_thread, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&go);
		ck_assert_msg((a.status == 200 && b.status == 412) ||
		                  (a.status == 412 && b.status == 200),
		              "round %d: %d and %d", round, a.status, b.status);
	}
	json_t *g = NULL;
	ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &g, NULL), 200);
	ck_assert_int_eq(jint(g, "version"), 11);
	json_decref(g);
	ck_assert_int_eq(user_seq(u), 11);
	json_decref(t);
}
END_TEST

START_TEST(delete_wins_over_concurrent_patches)
{
	char u[64];
	new_user(u, sizeof(u));
	for (int round = 0; round < 5; round++) {
		json_t *t = create_task(&B, u, "contested");
		char path[256];
		snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 3);
		patch_arg a = {u, path, "{\"title\":\"a\"}", NULL, &go, 0};
		patch_arg b = {u, path, "{\"completed\":true}", NULL, &go, 0};
		pthread_t ta, tb;
		pthread_create(&ta, NULL, patch_thread, &a);
		pthread_create(&tb, NULL, patch_thread, &b);
		pthread_barrier_wait(&go);
		int del = api(&B, u, "DELETE", path, NULL, NULL, NULL, NULL);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&go);
		ck_assert_int_eq(del, 204);
		/* a patch after the delete meets the tombstone (410) */
		ck_assert(a.status == 200 || a.status == 410);
		ck_assert(b.status == 200 || b.status == 410);
		ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, NULL, NULL), 404);
		ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"z\"}", NULL, NULL, NULL),
		                 410);
		json_decref(t);
	}
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 0);
	/* the feed is gapless and ends each task with its delete */
	long long seq = jint(l, "seq");
	json_decref(l);
	json_t *f = feed(u, 0);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq((long long)json_array_size(evs), seq);
	for (size_t i = 0; i < json_array_size(evs); i++)
		ck_assert_int_eq(jint(json_array_get(evs, i), "seq"), (long long)i + 1);
	ck_assert_str_eq(jstr(json_array_get(evs, json_array_size(evs) - 1), "event_type"),
	                 "task.deleted");
	json_decref(f);
}
END_TEST

typedef struct order_arg {
	const char *user;
	char body[512];
	pthread_barrier_t *go;
	int status;
} order_arg;

static void *order_thread(void *p)
{
	order_arg *a = p;
	pthread_barrier_wait(a->go);
	a->status = api(&B, a->user, "PUT", "/api/v1/tasks/order", a->body, NULL, NULL, NULL);
	return NULL;
}

START_TEST(concurrent_reorders_converge)
{
	char u[64];
	new_user(u, sizeof(u));
	json_t *t[3];
	for (int i = 0; i < 3; i++)
		t[i] = create_task(&B, u, "r");
	const char *a0 = jstr(t[0], "id"), *a1 = jstr(t[1], "id"), *a2 = jstr(t[2], "id");
	for (int round = 0; round < 5; round++) {
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 2);
		order_arg x = {.user = u, .go = &go}, y = {.user = u, .go = &go};
		snprintf(x.body, sizeof(x.body), "{\"order\":[\"%s\",\"%s\",\"%s\"]}", a2, a1, a0);
		snprintf(y.body, sizeof(y.body), "{\"order\":[\"%s\",\"%s\",\"%s\"]}", a1, a0, a2);
		pthread_t tx, ty;
		pthread_create(&tx, NULL, order_thread, &x);
		pthread_create(&ty, NULL, order_thread, &y);
		pthread_join(tx, NULL);
		pthread_join(ty, NULL);
		pthread_barrier_destroy(&go);
		ck_assert_int_eq(x.status, 200);
		ck_assert_int_eq(y.status, 200);
		/* the list equals the order derived from the events in seq order */
		assert_list_is_replay(u, 3);
	}
	for (int i = 0; i < 3; i++)
		json_decref(t[i]);
}
END_TEST

typedef struct move_arg {
	const char *user;
	char (*ids)[UUID_STR_LEN];
	int n, moves, seed;
	pthread_barrier_t *go;
	int bad; /* answers other than 200 */
} move_arg;

static void *move_thread(void *p)
{
	move_arg *a = p;
	unsigned seed = (unsigned)a->seed;
	pthread_barrier_wait(a->go);
	for (int i = 0; i < a->moves; i++) {
		int x = rand_r(&seed) % a->n, y = rand_r(&seed) % (a->n + 1);
		const char *where = rand_r(&seed) % 2 ? "after" : "before";
		if (y == x)
			y = a->n; /* null: the top or the end */
		int st = move(a->user, a->ids[x], where, y < a->n ? a->ids[y] : NULL, NULL);
		if (st != 200)
			a->bad++;
	}
	return NULL;
}

/* Two devices (two connections) move the same user's tasks at once: the user's seq
 * lock serialises them, and the list equals the order a client derives from the
 * task.moved events applied in seq order. */
START_TEST(concurrent_moves_converge)
{
	enum { N = 8, MOVES = 60 };
	char u[64];
	new_user(u, sizeof(u));
	static char ids[N][UUID_STR_LEN];
	for (int i = 0; i < N; i++) {
		json_t *t = create_task(&B, u, "mv");
		snprintf(ids[i], UUID_STR_LEN, "%s", jstr(t, "id"));
		json_decref(t);
	}
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	move_arg x = {.user = u, .ids = ids, .n = N, .moves = MOVES, .seed = 1, .go = &go};
	move_arg y = {.user = u, .ids = ids, .n = N, .moves = MOVES, .seed = 2, .go = &go};
	pthread_t tx, ty;
	pthread_create(&tx, NULL, move_thread, &x);
	pthread_create(&ty, NULL, move_thread, &y);
	pthread_join(tx, NULL);
	pthread_join(ty, NULL);
	pthread_barrier_destroy(&go);
	ck_assert_int_eq(x.bad + y.bad, 0);
	ck_assert_int_gt(user_seq(u), N + MOVES); /* most moves moved something */
	assert_list_is_replay(u, N);
}
END_TEST

typedef struct create_arg {
	const char *user;
	int n;
	volatile int done;
} create_arg;

static void *creator(void *p)
{
	create_arg *c = p;
	for (int i = 0; i < c->n; i++)
		api(&B, c->user, "POST", "/api/v1/tasks", "{\"title\":\"snap\"}", NULL, NULL, NULL);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(list_and_seq_are_one_snapshot)
{
	/* With creates only, a consistent snapshot always has as many tasks as seq;
	 * a list read apart from its seq would sometimes disagree. */
	char u[64];
	new_user(u, sizeof(u));
	create_arg c = {u, 150, 0};
	pthread_t t;
	pthread_create(&t, NULL, creator, &c);
	int reads = 0;
	while (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE)) {
		json_t *l = NULL;
		ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
		ck_assert_int_eq((long long)json_array_size(json_object_get(l, "tasks")),
		                 jint(l, "seq"));
		json_decref(l);
		reads++;
	}
	pthread_join(t, NULL);
	ck_assert_int_gt(reads, 0);
	ck_assert_int_eq(user_seq(u), 150);
}
END_TEST

/* ---- isolation ---- */

START_TEST(user_isolation)
{
	char u1[64], u2[64];
	new_user(u1, sizeof(u1));
	new_user(u2, sizeof(u2));
	json_t *t = create_task(&B, u1, "secret of u1");
	char path[256];
	snprintf(path, sizeof(path), "%s", task_path(jstr(t, "id")));
	http_resp r;
	json_t *e = NULL;
	ck_assert_int_eq(api(&B, u2, "GET", "/api/v1/tasks", NULL, NULL, &e, &r), 200);
	ck_assert_int_eq(json_array_size(json_object_get(e, "tasks")), 0);
	ck_assert_int_eq(jint(e, "seq"), 0);
	json_decref(e);
	http_resp_free(&r);
	ck_assert_int_eq(api(&B, u2, "GET", path, NULL, NULL, &e, NULL), 404);
	expect_error(e, "not_found", NULL);
	ck_assert_int_eq(api(&B, u2, "PATCH", path, "{\"title\":\"pwned\"}", NULL, &e, &r), 404);
	ck_assert_ptr_null(strstr(r.body, "secret"));
	http_resp_free(&r);
	expect_error(e, "not_found", NULL);
	ck_assert_int_eq(
	    api(&B, u2, "PATCH", path, "{\"title\":\"pwned\"}", "If-Match: 1\r\n", &e, &r), 404);
	ck_assert_ptr_null(strstr(r.body, "secret"));
	http_resp_free(&r);
	expect_error(e, "not_found", NULL);
	ck_assert_int_eq(api(&B, u2, "DELETE", path, NULL, NULL, &e, NULL), 404);
	expect_error(e, "not_found", NULL);
	ck_assert_int_eq(move(u2, jstr(t, "id"), "before", NULL, &e), 404);
	expect_error(e, "not_found", NULL);
	ck_assert_int_eq(api(&B, u2, "GET", "/api/v1/events?since=0", NULL, NULL, &e, &r), 200);
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 0);
	ck_assert_int_eq(jint(e, "seq"), 0);
	ck_assert_ptr_null(strstr(r.body, "secret"));
	http_resp_free(&r);
	json_decref(e);
	/* u2's own work does not show u1's either, and u1's task is untouched */
	json_decref(create_task(&B, u2, "u2's"));
	ck_assert_int_eq(api(&B, u2, "GET", "/api/v1/tasks", NULL, NULL, &e, &r), 200);
	ck_assert_int_eq(json_array_size(json_object_get(e, "tasks")), 1);
	ck_assert_ptr_null(strstr(r.body, "secret"));
	http_resp_free(&r);
	json_decref(e);
	ck_assert_int_eq(api(&B, u1, "GET", path, NULL, NULL, &e, NULL), 200);
	ck_assert_str_eq(jstr(e, "title"), "secret of u1");
	ck_assert_int_eq(jint(e, "version"), 1);
	json_decref(e);
	ck_assert_int_eq(user_seq(u1), 1);
	json_t *f = feed(u2, 0);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), 1);
	ck_assert_str_eq(jstr(json_array_get(evs, 0), "user_id"), u2);
	json_decref(f);
	json_decref(t);
}
END_TEST

/* ---- times ---- */

/* Issue 11: half a second before the epoch came back as "1970-01-01T00:00:00.-500Z";
 * microseconds were stored but shown as milliseconds, so echoing a task back bumped
 * its version. Now the API shows what it stores. */
START_TEST(due_at_round_trips_exactly)
{
	char u[64];
	new_user(u, sizeof(u));
	static const char *const in[][2] = {
	    {"1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z"},
	    {"2026-11-22T10:00:00.123456Z", "2026-11-22T10:00:00.123456Z"},
	    {"1900-01-01T00:00:00.000001+01:00", "1899-12-31T23:00:00.000001Z"},
	    {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"},
	    {"9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999999Z"},
	};
	for (size_t i = 0; i < ARRAY_LEN(in); i++) {
		json_t *t = NULL;
		ck_assert_int_eq(apif(&B, u, "POST", "/api/v1/tasks", &t,
		                      "{\"title\":\"due\",\"due_at\":\"%s\"}", in[i][0]),
		                 201);
		assert_task_shape(t);
		ck_assert_str_eq(jstr(t, "due_at"), in[i][1]);
		/* the event says the same, and the gateway's parser takes it */
		json_t *g = NULL;
		ck_assert_int_eq(api(&B, u, "GET", task_path(jstr(t, "id")), NULL, NULL, &g, NULL),
		                 200);
		ck_assert_str_eq(jstr(g, "due_at"), in[i][1]);
		json_decref(g);
		/* echoing the task's due_at back changes nothing */
		long long seq = user_seq(u);
		json_t *p = NULL;
		ck_assert_int_eq(apif(&B, u, "PATCH", task_path(jstr(t, "id")), &p,
		                      "{\"due_at\":\"%s\",\"title\":\"due\"}", jstr(t, "due_at")),
		                 200);
		ck_assert_int_eq(jint(p, "version"), 1);
		ck_assert_int_eq(user_seq(u), seq);
		json_decref(p);
		json_decref(t);
	}
	json_t *f = feed(u, 0);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), ARRAY_LEN(in));
	ck_assert_str_eq(jstr(json_object_get(json_array_get(evs, 0), "task"), "due_at"), in[0][1]);
	json_t **docs = calloc(json_array_size(evs), sizeof(json_t *));
	for (size_t i = 0; i < json_array_size(evs); i++)
		docs[i] = json_array_get(evs, i);
	assert_schema("task-event.schema.json", docs, json_array_size(evs));
	free(docs);
	json_decref(f);
	/* outside four-digit years after the offset: a clear 422 */
	json_t *e = NULL;
	ck_assert_int_eq(apif(&B, u, "POST", "/api/v1/tasks", &e,
	                      "{\"title\":\"x\",\"due_at\":\"0000-01-01T00:00:00+01:00\"}"),
	                 422);
	expect_error(e, "validation_failed", "due_at");
}
END_TEST

/* ---- bounded reads ---- */

typedef struct bulk_arg {
	const char *user;
	int n;
} bulk_arg;

static void *bulk_creator(void *p)
{
	bulk_arg *a = p;
	for (int i = 0; i < a->n; i++)
		ck_assert_int_eq(api(&B, a->user, "POST", "/api/v1/tasks", "{\"title\":\"bulk\"}",
		                     NULL, NULL, NULL),
		                 201);
	return NULL;
}

/* 1,001 tasks: pages of the limit asked (default 500, at most 1,000) with the seq on
 * each and a cursor to the next; every task once, in key order; a renumbering of
 * the whole list is refused with a pointer to moves, and moves still work. */
START_TEST(list_pages_and_large_lists)
{
	enum { N = TASK_ORDER_MAX + 1 };
	char u[64];
	new_user(u, sizeof(u));
	pthread_t th[4];
	bulk_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (bulk_arg){u, N / 4 + (i < N % 4)};
		pthread_create(&th[i], NULL, bulk_creator, &a[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(l, "tasks")), 500);
	ck_assert_int_eq(jint(l, "seq"), N);
	ck_assert_ptr_nonnull(jstr(l, "next_cursor"));
	json_decref(l);
	char path[512] = "/api/v1/tasks?limit=300", prev[POSKEY_BUF] = "";
	size_t total = 0, pages = 0;
	for (;;) {
		ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, &l, NULL), 200);
		ck_assert_int_eq(jint(l, "seq"), N);
		json_t *ts = json_object_get(l, "tasks");
		ck_assert_int_le(json_array_size(ts), 300);
		for (size_t i = 0; i < json_array_size(ts); i++) {
			const char *k = jstr(json_array_get(ts, i), "position");
			ck_assert(strcmp(prev, k) < 0);
			snprintf(prev, sizeof(prev), "%s", k);
		}
		total += json_array_size(ts);
		pages++;
		const char *next = jstr(l, "next_cursor");
		if (!next) {
			json_decref(l);
			break;
		}
		snprintf(path, sizeof(path), "/api/v1/tasks?limit=300&cursor=%s", next);
		json_decref(l);
	}
	ck_assert_int_eq(total, N);
	ck_assert_int_eq(pages, 4);
	assert_list_is_replay(u, N);
	/* bad parameters */
	const char *bad[][2] = {
	    {"/api/v1/tasks?limit=1001", "limit"},     {"/api/v1/tasks?limit=0", "limit"},
	    {"/api/v1/tasks?limit=x", "limit"},        {"/api/v1/tasks?cursor=a0", "cursor"},
	    {"/api/v1/tasks?cursor=k1.a00", "cursor"}, {"/api/v1/tasks?cursor=", "cursor"}};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *e = NULL;
		ck_assert_msg(api(&B, u, "GET", bad[i][0], NULL, NULL, &e, NULL) == 400, "%s",
		              bad[i][0]);
		expect_error(e, "bad_request", bad[i][1]);
	}
	/* the whole list is too long to renumber: 422 pointing at moves */
	json_t *e = NULL;
	ck_assert_int_eq(api(&B, u, "PUT", "/api/v1/tasks/order", "{\"order\":[]}", NULL, &e, NULL),
	                 422);
	expect_error(e, "list_too_long", "order");
	static char ids[N][UUID_STR_LEN];
	ck_assert_int_eq(list_ids(u, ids, N), N);
	ck_assert_int_eq(move(u, ids[N - 1], "after", NULL, &e), 200);
	json_decref(e);
	ck_assert_int_eq(move(u, ids[0], "after", ids[500], &e), 200);
	json_decref(e);
	assert_list_is_replay(u, N);
}
END_TEST

/* /events stops at about 1 MiB however large the limit: has_more, and the rest
 * follows from the last seq. */
START_TEST(events_capped_by_bytes)
{
	enum { N = 24 };
	char u[64];
	new_user(u, sizeof(u));
	/* each description: 9,000 control characters, 6 bytes each in JSON */
	size_t cap = 9000 * 6 + 64;
	char *body = malloc(cap);
	size_t len = (size_t)snprintf(body, cap, "{\"title\":\"big\",\"description\":\"");
	for (int i = 0; i < 9000; i++)
		len += (size_t)snprintf(body + len, cap - len, "\\u0001");
	snprintf(body + len, cap - len, "\"}");
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, NULL, NULL, NULL), 201);
	free(body);
	http_resp r;
	json_t *f = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/events?since=0&limit=1000", NULL, NULL, &f, &r),
	                 200);
	ck_assert_int_le(r.body_len, 1024 * 1024 + 64 * 1024);
	http_resp_free(&r);
	size_t first = json_array_size(json_object_get(f, "events"));
	ck_assert_int_gt(first, 0);
	ck_assert_int_lt(first, N);
	ck_assert(json_is_true(json_object_get(f, "has_more")));
	ck_assert_int_eq(jint(f, "seq"), N);
	json_decref(f);
	f = feed(u, (long)first);
	ck_assert_int_eq(first + json_array_size(json_object_get(f, "events")), N);
	ck_assert(json_is_false(json_object_get(f, "has_more")));
	json_decref(f);
	/* the list pages by bytes too */
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks?limit=1000", NULL, NULL, &l, &r), 200);
	ck_assert_int_le(r.body_len, 1024 * 1024 + 64 * 1024);
	http_resp_free(&r);
	ck_assert_int_lt(json_array_size(json_object_get(l, "tasks")), N);
	ck_assert_ptr_nonnull(jstr(l, "next_cursor"));
	json_decref(l);
}
END_TEST

/* ---- quotas (a backend with small ones) ---- */

static backend Q;

static void q_setup(void)
{
	static const char *const extra[] = {"MAX_TASKS_PER_USER=3", "USER_RATE_LIMIT=2",
	                                    "USER_RATE_BURST=20", NULL};
	shared_start(&Q, extra);
}
static void q_teardown(void)
{
	shared_stop(&Q);
}

START_TEST(task_quota)
{
	char u[64], id[UUID_STR_LEN];
	new_user(u, sizeof(u));
	json_t *t[3];
	for (int i = 0; i < 3; i++)
		t[i] = create_task(&Q, u, "q");
	json_t *e = NULL;
	ck_assert_int_eq(api(&Q, u, "POST", "/api/v1/tasks", "{\"title\":\"4th\"}", NULL, &e, NULL),
	                 409);
	ck_assert_int_eq(jint(e, "limit"), 3);
	expect_error(e, "task_quota_exceeded", NULL);
	/* a retried create of a task the user has is still answered */
	ck_assert_int_eq(apif(&Q, u, "POST", "/api/v1/tasks", &e, "{\"id\":\"%s\",\"title\":\"q\"}",
	                      jstr(t[0], "id")),
	                 200);
	json_decref(e);
	/* another user has a quota of their own */
	char u2[64];
	new_user(u2, sizeof(u2));
	json_decref(create_task(&Q, u2, "other"));
	/* a delete makes room */
	ck_assert_int_eq(api(&Q, u, "DELETE", task_path(jstr(t[1], "id")), NULL, NULL, NULL, NULL),
	                 204);
	uuid_new(id);
	ck_assert_int_eq(
	    apif(&Q, u, "POST", "/api/v1/tasks", &e, "{\"id\":\"%s\",\"title\":\"q\"}", id), 201);
	json_decref(e);
	for (int i = 0; i < 3; i++)
		json_decref(t[i]);
}
END_TEST

START_TEST(rate_limit_answers_429)
{
	char u[64], u2[64];
	new_user(u, sizeof(u));
	new_user(u2, sizeof(u2));
	int ok = 0, limited = 0;
	for (int i = 0; i < 40 && !limited; i++) {
		http_resp r;
		json_t *e = NULL;
		int st = api(&Q, u, "GET", "/api/v1/tasks", NULL, NULL, &e, &r);
		if (st == 200) {
			ok++;
			json_decref(e);
		} else {
			ck_assert_int_eq(st, 429);
			char ra[32];
			ck_assert_msg(http_resp_header(&r, "Retry-After", ra, sizeof(ra)),
			              "no Retry-After");
			ck_assert_int_ge(atoi(ra), 1);
			ck_assert_int_gt(jint(e, "retry_after_ms"), 0);
			expect_error(e, "rate_limited", NULL);
			limited = 1;
		}
		http_resp_free(&r);
	}
	ck_assert(limited);
	ck_assert_int_ge(ok, 19); /* the burst, then about 2/s */
	ck_assert_int_le(ok, 25);
	/* another user is not limited by this one */
	ck_assert_int_eq(api(&Q, u2, "GET", "/api/v1/tasks", NULL, NULL, NULL, NULL), 200);
	/* the bucket refills */
	struct timespec ts = {1, 0};
	nanosleep(&ts, NULL);
	ck_assert_int_eq(api(&Q, u, "GET", "/api/v1/tasks", NULL, NULL, NULL, NULL), 200);
}
END_TEST

/* ---- migration 0004 ---- */

static void pgtest_exec_clear(const char *url, const char *sql)
{
	PQclear(pgtest_exec(url, sql, 0, NULL));
}

/* Runs a migration file from the tree on url (several statements: simple query). */
static void apply_file(const char *url, const char *name)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/migrations/%s", test_env("TASKSYNC_ROOT"), name);
	char *sql = read_text_file(path);
	ck_assert_ptr_nonnull(sql);
	PGconn *c = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	              "%s: %s", name, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	free(sql);
}

/* A database at 0002 with bigint positions (gaps, a tie broken by created_at, two
 * users, the same id for both is impossible then), migrated by `backend-api
 * migrate`: the keys keep each user's order, the counters match, ids become per
 * user, and SQL's task_pos_key equals poskey_from_index. */
START_TEST(migration_0004_keeps_the_order)
{
	char url[256];
	pgtest_createdb(url, sizeof(url));
	apply_file(url, "0001_init.sql");
	apply_file(url, "0002_outbox_handoff.sql");
	pgtest_exec_clear(url, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name "
	                       "text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
	pgtest_exec_clear(url, "INSERT INTO schema_migrations (version, name) VALUES (1, "
	                       "'0001_init'), (2, '0002_outbox_handoff')");
	/* u1: positions 40, 7, 7 (tie: older first), 1000; u2: 0 and 3 */
	static const char *const rows[][4] = {
	    {"00000000-0000-4000-8000-000000000001", "u1", "40", "2026-01-01T00:00:01Z"},
	    {"00000000-0000-4000-8000-000000000002", "u1", "7", "2026-01-01T00:00:03Z"},
	    {"00000000-0000-4000-8000-000000000003", "u1", "7", "2026-01-01T00:00:02Z"},
	    {"00000000-0000-4000-8000-000000000004", "u1", "1000", "2026-01-01T00:00:00Z"},
	    {"00000000-0000-4000-8000-000000000005", "u2", "3", "2026-01-01T00:00:00Z"},
	    {"00000000-0000-4000-8000-000000000006", "u2", "0", "2026-01-01T00:00:00Z"},
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		PQclear(pgtest_exec(url,
		                    "INSERT INTO tasks (id, user_id, title, position, created_at, "
		                    "updated_at) VALUES ($1, $2, 'old', $3, $4, $4)",
		                    4, rows[i]));
	pgtest_exec_clear(url, "INSERT INTO user_seq (user_id, seq, next_pos) VALUES ('u1', 4, "
	                       "1001), ('u2', 2, 4), ('u3', 9, 0)");
	char bin[1024], db[300], brokers[512], log[600];
	snprintf(bin, sizeof(bin), "%s/backend-api", test_env("TASKSYNC_BIN"));
	snprintf(db, sizeof(db), "DATABASE_URL=%s", url);
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(log, sizeof(log), "%s/migrate-0004-%d.log",
	         getenv("TEST_RUN_DIR") ? getenv("TEST_RUN_DIR") : "/tmp", (int)getpid());
	const char *env[] = {db, brokers, "JWT_SECRET=" TEST_SECRET, "LOG_LEVEL=info", NULL};
	const char *args[] = {"migrate", NULL};
	ck_assert_int_eq(proc_run(bin, args, env, log, 60000), 0);
	PGresult *r =
	    pgtest_exec(url,
	                "SELECT user_id, right(id::text, 1), position FROM tasks ORDER BY "
	                "user_id, position COLLATE \"C\"",
	                0, NULL);
	static const char *const want[][3] = {{"u1", "3", "a0"}, {"u1", "2", "a1"},
	                                      {"u1", "1", "a2"}, {"u1", "4", "a3"},
	                                      {"u2", "6", "a0"}, {"u2", "5", "a1"}};
	ck_assert_int_eq(PQntuples(r), ARRAY_LEN(want));
	for (int i = 0; i < PQntuples(r); i++)
		for (int j = 0; j < 3; j++)
			ck_assert_str_eq(PQgetvalue(r, i, j), want[i][j]);
	PQclear(r);
	ck_assert_int_eq(pgtest_long(url,
	                             "SELECT next_pos * 10 + task_count FROM user_seq WHERE "
	                             "user_id = 'u1'",
	                             0, NULL),
	                 44);
	ck_assert_int_eq(
	    pgtest_long(url, "SELECT task_count FROM user_seq WHERE user_id = 'u3'", 0, NULL), 0);
	/* the same id for another user is a row of its own now */
	pgtest_exec_clear(url, "INSERT INTO tasks (id, user_id, title, position, created_at, "
	                       "updated_at) VALUES ('00000000-0000-4000-8000-000000000001', 'u2', "
	                       "'x', 'a2', now(), now())");
	/* SQL's integer keys are C's */
	static const long long ns[] = {
	    0, 1, 61, 62, 3843, 3844, 238327, 238328, 9007199254740993LL};
	for (size_t i = 0; i < ARRAY_LEN(ns); i++) {
		char n[32], key[16];
		snprintf(n, sizeof(n), "%lld", ns[i]);
		const char *p[] = {n};
		char *v = pgtest_value(url, "SELECT task_pos_key($1::bigint)", 1, p);
		poskey_from_index((uint64_t)ns[i], key);
		ck_assert_str_eq(v, key);
		free(v);
	}
}
END_TEST

Suite *tasks_suite(void)
{
	Suite *s = suite_create("tasks");
	TCase *tc = tcase_create("api");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, auth_rejects_bad_tokens);
	tcase_add_test(tc, create_defaults_and_get);
	tcase_add_test(tc, create_all_fields);
	tcase_add_test(tc, create_idempotent_with_client_id);
	tcase_add_test(tc, list_order_and_seq);
	tcase_add_test(tc, get_not_found);
	tcase_add_test(tc, patch_partial_and_events);
	tcase_add_test(tc, patch_if_match);
	tcase_add_test(tc, patch_noop);
	tcase_add_test(tc, patch_validation);
	tcase_add_test(tc, create_validation);
	tcase_add_test(tc, delete_then_gone);
	tcase_add_test(tc, move_rewrites_one_task);
	tcase_add_test(tc, move_into_one_gap_until_exhausted);
	tcase_add_test(tc, reorder);
	tcase_add_test(tc, events_since_limit);
	tcase_add_test(tc, events_gone_after_pruning);
	tcase_add_test(tc, origin_from_client_id);
	tcase_add_test(tc, bad_json_and_media_type);
	tcase_add_test(tc, body_too_large);
	tcase_add_test(tc, unknown_route_and_method);
	tcase_add_test(tc, concurrent_if_match_one_wins);
	tcase_add_test(tc, delete_wins_over_concurrent_patches);
	tcase_add_test(tc, concurrent_reorders_converge);
	tcase_add_test(tc, concurrent_moves_converge);
	tcase_add_test(tc, list_and_seq_are_one_snapshot);
	tcase_add_test(tc, user_isolation);
	tcase_add_test(tc, due_at_round_trips_exactly);
	tcase_add_test(tc, list_pages_and_large_lists);
	tcase_add_test(tc, events_capped_by_bytes);
	suite_add_tcase(s, tc);
	TCase *q = tcase_create("quotas");
	tcase_add_unchecked_fixture(q, q_setup, q_teardown);
	tcase_set_tags(q, "integration");
	tcase_set_timeout(q, 60);
	tcase_add_test(q, task_quota);
	tcase_add_test(q, rate_limit_answers_429);
	suite_add_tcase(s, q);
	TCase *m = tcase_create("migration");
	tcase_set_tags(m, "integration");
	tcase_set_timeout(m, 60);
	tcase_add_test(m, migration_0004_keeps_the_order);
	suite_add_tcase(s, m);
	return s;
}
