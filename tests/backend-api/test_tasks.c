/* The HTTP API of backend-api (backend-api/src/tasks.c and its routes): every
 * route and every error path of the contract, against the real binary, the
 * harness's PostgreSQL and the devbroker. One backend per TCase; each test works
 * as users of its own. */
#include "harness.h"
#include "suites.h"

#include "common/auth.h"
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

/* RFC 3339 UTC with milliseconds, as the contract writes timestamps. */
static void assert_ts(const json_t *o, const char *key)
{
	const char *v = jstr(o, key);
	ck_assert_msg(v != NULL, "%s missing", key);
	regex_t re;
	ck_assert_int_eq(
	    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
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
	(void)jint(t, "position");
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
	/* the same id for another user: 409, the task is not revealed */
	json_t *c = NULL;
	ck_assert_int_eq(api(&B, u2, "POST", "/api/v1/tasks", body, NULL, &c, &r), 409);
	ck_assert_ptr_null(strstr(r.body, "once"));
	http_resp_free(&r);
	expect_error(c, "conflict", NULL);
	ck_assert_int_eq(user_seq(u2), 0);
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
	long long prev = -1;
	for (size_t i = 0; i < 4; i++) {
		json_t *t = json_array_get(ts, i);
		assert_task_shape(t);
		ck_assert_str_eq(jstr(t, "title"), titles[i]);
		ck_assert_int_gt(jint(t, "position"), prev);
		prev = jint(t, "position");
	}
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
	ck_assert_int_eq(jint(p, "position"), jint(t, "position"));
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
	ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"back\"}", NULL, &e, NULL), 404);
	expect_error(e, "not_found", NULL);
	ck_assert_int_eq(api(&B, u, "DELETE", path, NULL, NULL, &e, NULL), 404);
	expect_error(e, "not_found", NULL);
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

/* ---- reorder ---- */

static void assert_order(json_t *order, const char *const *ids, size_t n)
{
	ck_assert_int_eq(json_array_size(order), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(json_string_value(json_array_get(order, i)), ids[i]);
}

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
	assert_order(json_object_get(o, "order"), want1, 3);
	ck_assert_int_eq(jint(o, "seq"), 4);
	json_decref(o);
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	json_t *ts = json_object_get(l, "tasks");
	for (int i = 0; i < 3; i++) {
		ck_assert_str_eq(jstr(json_array_get(ts, (size_t)i), "id"), want1[i]);
		ck_assert_int_eq(jint(json_array_get(ts, (size_t)i), "position"), i);
	}
	json_decref(l);
	/* a partial list: the others keep their relative order after it */
	ck_assert_int_eq(
	    apif(&B, u, "PUT", "/api/v1/tasks/order", &o, "{\"order\":[\"%s\"]}", id[1]), 200);
	const char *want2[] = {id[1], id[2], id[0]};
	assert_order(json_object_get(o, "order"), want2, 3);
	json_decref(o);
	/* the event carries the full order */
	json_t *f = feed(u, 4);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), 1);
	ck_assert_str_eq(jstr(json_array_get(evs, 0), "event_type"), "task.reordered");
	assert_order(json_object_get(json_array_get(evs, 0), "order"), want2, 3);
	json_decref(f);
	/* a new task goes to the end */
	json_t *d = create_task(&B, u, "d");
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	ts = json_object_get(l, "tasks");
	ck_assert_int_eq(json_array_size(ts), 4);
	ck_assert_str_eq(jstr(json_array_get(ts, 3), "id"), jstr(d, "id"));
	ck_assert_str_eq(jstr(json_array_get(ts, 0), "id"), id[1]);
	json_decref(l);

	/* 422s: duplicates, unknown ids, another user's ids, wrong types */
	json_t *other = create_task(&B, u2, "theirs");
	char unknown[UUID_STR_LEN];
	uuid_new(unknown);
	char bodies[6][512];
	snprintf(bodies[0], 512, "{\"order\":[\"%s\",\"%s\"]}", id[0], id[0]);
	snprintf(bodies[1], 512, "{\"order\":[\"%s\"]}", unknown);
	snprintf(bodies[2], 512, "{\"order\":[\"%s\"]}", jstr(other, "id"));
	snprintf(bodies[3], 512, "{\"order\":\"%s\"}", id[0]);
	snprintf(bodies[4], 512, "{\"order\":[1,2]}");
	snprintf(bodies[5], 512, "{\"order\":[\"not-a-uuid\"]}");
	for (int i = 0; i < 6; i++) {
		json_t *e = NULL;
		int st = api(&B, u, "PUT", "/api/v1/tasks/order", bodies[i], NULL, &e, NULL);
		ck_assert_msg(st == 422, "PUT order %s: %d", bodies[i], st);
		expect_error(e, "validation_failed", "order");
	}
	json_t *e = NULL;
	ck_assert_int_eq(api(&B, u, "PUT", "/api/v1/tasks/order", "{}", NULL, &e, NULL), 422);
	expect_error(e, "validation_failed", "order");
	ck_assert_int_eq(user_seq(u), 6);
	ck_assert_int_eq(user_seq(u2), 1);
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
		ck_assert(a.status == 200 || a.status == 404);
		ck_assert(b.status == 200 || b.status == 404);
		ck_assert_int_eq(api(&B, u, "GET", path, NULL, NULL, NULL, NULL), 404);
		ck_assert_int_eq(api(&B, u, "PATCH", path, "{\"title\":\"z\"}", NULL, NULL, NULL),
		                 404);
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
		/* the list equals the order of the last task.reordered event */
		json_t *l = NULL;
		ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
		json_t *f = feed(u, 0);
		json_t *evs = json_object_get(f, "events");
		json_t *last = json_array_get(evs, json_array_size(evs) - 1);
		ck_assert_str_eq(jstr(last, "event_type"), "task.reordered");
		ck_assert_int_eq(jint(last, "seq"), jint(l, "seq"));
		json_t *order = json_object_get(last, "order");
		json_t *ts = json_object_get(l, "tasks");
		ck_assert_int_eq(json_array_size(order), 3);
		for (size_t i = 0; i < 3; i++)
			ck_assert_str_eq(json_string_value(json_array_get(order, i)),
			                 jstr(json_array_get(ts, i), "id"));
		json_decref(f);
		json_decref(l);
	}
	for (int i = 0; i < 3; i++)
		json_decref(t[i]);
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
	tcase_add_test(tc, list_and_seq_are_one_snapshot);
	tcase_add_test(tc, user_isolation);
	suite_add_tcase(s, tc);
	return s;
}
