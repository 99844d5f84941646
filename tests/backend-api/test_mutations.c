/* Exactly-once mutations, delete-wins tombstones and per-field merge (issue 14):
 * Idempotency-Key, 410 task_deleted, PATCH base_version, against the real
 * backend-api, PostgreSQL and Apache Kafka. */
#include "harness.h"
#include "suites.h"

#include "../support/fixtures.h"
#include "common/util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static backend B;

static void setup(void)
{
	/* the default window (a day): what a test expects to be remembered is, however
	 * slowly it runs; the window's end is tested on a backend of its own */
	shared_start(&B, NULL);
}
static void teardown(void)
{
	shared_stop(&B);
}

static long long user_seq(const char *u)
{
	json_t *l = NULL;
	ck_assert_int_eq(api(&B, u, "GET", "/api/v1/tasks", NULL, NULL, &l, NULL), 200);
	long long s = jint(l, "seq");
	json_decref(l);
	return s;
}

static const char *key_hdr(const char *key)
{
	static __thread char h[256];
	snprintf(h, sizeof(h), "Idempotency-Key: %s\r\n", key);
	return h;
}

/* A repeat of a keyed create, patch, move and delete answers the first reply byte for
 * byte with Idempotent-Replayed, writes nothing and publishes nothing. */
START_TEST(replay_returns_the_first_reply)
{
	char u[64], id[UUID_STR_LEN], key[UUID_STR_LEN], body[256];
	new_user(u, sizeof(u));
	uuid_new(id);
	uuid_new(key);
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"milk\"}", id);
	http_resp r1, r2;
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, key_hdr(key), NULL, &r1), 201);
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, key_hdr(key), NULL, &r2), 201);
	ck_assert_str_eq(r1.body, r2.body);
	char v[64];
	ck_assert(!http_resp_header(&r1, "Idempotent-Replayed", v, sizeof(v)));
	ck_assert(http_resp_header(&r2, "Idempotent-Replayed", v, sizeof(v)));
	ck_assert_str_eq(v, "true");
	http_resp_free(&r1);
	http_resp_free(&r2);
	/* the same key with another request: refused, nothing written */
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"eggs\"}", id);
	json_t *e = NULL;
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, key_hdr(key), &e, NULL), 422);
	expect_error(e, "idempotency_key_reused", "Idempotency-Key");

	/* patch: applied once, even when another change came in between */
	char pk[UUID_STR_LEN];
	uuid_new(pk);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", task_path(id), "{\"title\":\"oat milk\"}", key_hdr(pk), NULL, &r1),
	    200);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", task_path(id), "{\"title\":\"soy milk\"}", NULL, NULL, NULL), 200);
	ck_assert_int_eq(
	    api(&B, u, "PATCH", task_path(id), "{\"title\":\"oat milk\"}", key_hdr(pk), NULL, &r2),
	    200);
	ck_assert_str_eq(r1.body, r2.body);
	http_resp_free(&r1);
	http_resp_free(&r2);
	json_t *t = NULL;
	ck_assert_int_eq(api(&B, u, "GET", task_path(id), NULL, NULL, &t, NULL), 200);
	ck_assert_str_eq(jstr(t, "title"), "soy milk"); /* the replay changed nothing */
	json_decref(t);

	/* move and delete */
	json_t *other = create_task(&B, u, "bread");
	char mk[UUID_STR_LEN], mv[256], path[128];
	uuid_new(mk);
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", id);
	snprintf(mv, sizeof(mv), "{\"after\":\"%s\"}", jstr(other, "id"));
	ck_assert_int_eq(api(&B, u, "POST", path, mv, key_hdr(mk), NULL, &r1), 200);
	ck_assert_int_eq(api(&B, u, "POST", path, mv, key_hdr(mk), NULL, &r2), 200);
	ck_assert_str_eq(r1.body, r2.body);
	http_resp_free(&r1);
	http_resp_free(&r2);
	char dk[UUID_STR_LEN];
	uuid_new(dk);
	ck_assert_int_eq(api(&B, u, "DELETE", task_path(id), NULL, key_hdr(dk), NULL, NULL), 204);
	ck_assert_int_eq(api(&B, u, "DELETE", task_path(id), NULL, key_hdr(dk), NULL, &r2), 204);
	ck_assert(http_resp_header(&r2, "Idempotent-Replayed", v, sizeof(v)));
	http_resp_free(&r2);
	json_decref(other);

	/* events: create, create(bread), patch, patch, move, delete: six, each once */
	ck_assert_int_eq(user_seq(u), 6);
	size_t n;
	json_t **ev = topic_events(&B, u, 6, 20000, 1000, &n);
	ck_assert_int_eq(n, 6);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(jint(ev[i], "seq"), (long long)i + 1);
	free_events(ev, n);
}
END_TEST

typedef struct race {
	const char *user, *body, *key;
	int status;
	char *reply;
} race;

static void *race_create(void *arg)
{
	race *r = arg;
	http_resp resp;
	r->status =
	    api(&B, r->user, "POST", "/api/v1/tasks", r->body, key_hdr(r->key), NULL, &resp);
	r->reply = xstrdup(resp.body ? resp.body : "");
	http_resp_free(&resp);
	return NULL;
}

/* Two requests with one key at once, for a brand-new user (no counter row yet to
 * lock) and for one that has written before: one create, the same reply twice. */
START_TEST(concurrent_same_key_applies_once)
{
	for (int round = 0; round < 2; round++) {
		char u[64], id[UUID_STR_LEN], key[UUID_STR_LEN], body[256];
		new_user(u, sizeof(u));
		if (round == 1) {
			json_t *t = create_task(&B, u, "first");
			json_decref(t);
		}
		uuid_new(id);
		uuid_new(key);
		snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"raced\"}", id);
		race a = {u, body, key, 0, NULL}, b = {u, body, key, 0, NULL};
		pthread_t ta, tb;
		pthread_create(&ta, NULL, race_create, &a);
		pthread_create(&tb, NULL, race_create, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		ck_assert_int_eq(a.status, 201);
		ck_assert_int_eq(b.status, 201);
		ck_assert_str_eq(a.reply, b.reply);
		free(a.reply);
		free(b.reply);
		ck_assert_int_eq(user_seq(u), round + 1);
	}
}
END_TEST

/* Delete wins: a late create of a deleted id (its first reply lost, another device
 * deleted it) is 410 and publishes nothing; so are edits, moves and deletes of it. */
START_TEST(deleted_task_stays_deleted)
{
	char u[64], body[256], path[128];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "milk");
	char id[UUID_STR_LEN];
	snprintf(id, sizeof(id), "%s", jstr(t, "id"));
	json_decref(t);
	ck_assert_int_eq(api(&B, u, "DELETE", task_path(id), NULL, NULL, NULL, NULL), 204);
	long long seq = user_seq(u);
	json_t *e = NULL;
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"milk\"}", id);
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, NULL, &e, NULL), 410);
	expect_error(e, "task_deleted", "id");
	char key[UUID_STR_LEN];
	uuid_new(key); /* a keyed retry whose first attempt never arrived: 410 too */
	ck_assert_int_eq(api(&B, u, "POST", "/api/v1/tasks", body, key_hdr(key), &e, NULL), 410);
	expect_error(e, "task_deleted", "id");
	ck_assert_int_eq(api(&B, u, "PATCH", task_path(id), "{\"title\":\"x\"}", NULL, &e, NULL),
	                 410);
	expect_error(e, "task_deleted", "id");
	ck_assert_int_eq(api(&B, u, "DELETE", task_path(id), NULL, NULL, &e, NULL), 410);
	expect_error(e, "task_deleted", "id");
	snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", id);
	ck_assert_int_eq(api(&B, u, "POST", path, "{\"after\":null}", NULL, &e, NULL), 410);
	expect_error(e, "task_deleted", "id");
	ck_assert_int_eq(api(&B, u, "GET", task_path(id), NULL, NULL, &e, NULL), 404);
	json_decref(e);
	ck_assert_int_eq(user_seq(u), seq);
	size_t n;
	json_t **ev = topic_events(&B, u, 2, 20000, 1000, &n);
	ck_assert_int_eq(n, 2); /* created, deleted: nothing after */
	ck_assert_str_eq(jstr(ev[1], "event_type"), "task.deleted");
	free_events(ev, n);
	/* another user's id space is untouched by this tombstone */
	char u2[64];
	new_user(u2, sizeof(u2));
	ck_assert_int_eq(api(&B, u2, "POST", "/api/v1/tasks", body, NULL, NULL, NULL), 201);
}
END_TEST

static json_t *patch(const char *u, const char *id, const char *body, int want)
{
	json_t *j = NULL;
	ck_assert_int_eq(api(&B, u, "PATCH", task_path(id), body, NULL, &j, NULL), want);
	return j;
}

/* PATCH with base_version: fields changed by others since the base keep their
 * value and are reported; the others apply; all-conflict writes nothing. */
START_TEST(per_field_merge)
{
	char u[64], b[256];
	new_user(u, sizeof(u));
	json_t *t = create_task(&B, u, "milk");
	char id[UUID_STR_LEN];
	snprintf(id, sizeof(id), "%s", jstr(t, "id"));
	json_decref(t);
	/* laptop (online) changes the priority: v2 */
	json_t *r = patch(u, id, "{\"priority\":\"high\",\"base_version\":1}", 200);
	ck_assert_int_eq(jint(json_object_get(r, "task"), "version"), 2);
	ck_assert_int_eq(json_array_size(json_object_get(r, "conflicts")), 0);
	json_decref(r);
	/* phone (offline since v1) changes the title: no conflict, both survive */
	r = patch(u, id, "{\"title\":\"oat milk\",\"base_version\":1}", 200);
	json_t *task = json_object_get(r, "task");
	ck_assert_str_eq(jstr(task, "title"), "oat milk");
	ck_assert_str_eq(jstr(task, "priority"), "high");
	ck_assert_int_eq(jint(task, "version"), 3);
	ck_assert_int_eq(json_array_size(json_object_get(r, "conflicts")), 0);
	json_decref(r);
	/* a tablet, also on v1, sets title and completed: the title changed since v1
	 * (v3) so it is a conflict; completed applies */
	r = patch(u, id, "{\"title\":\"soy milk\",\"completed\":true,\"base_version\":1}", 200);
	task = json_object_get(r, "task");
	ck_assert_str_eq(jstr(task, "title"), "oat milk");
	ck_assert(json_is_true(json_object_get(task, "completed")));
	json_t *c = json_object_get(r, "conflicts");
	ck_assert_int_eq(json_array_size(c), 1);
	ck_assert_str_eq(jstr(json_array_get(c, 0), "field"), "title");
	ck_assert_str_eq(jstr(json_array_get(c, 0), "yours"), "soy milk");
	ck_assert_str_eq(jstr(json_array_get(c, 0), "theirs"), "oat milk");
	json_decref(r);
	long long seq = user_seq(u);
	/* every field a conflict: nothing written, no event */
	r = patch(u, id, "{\"title\":\"rice milk\",\"priority\":\"low\",\"base_version\":1}", 200);
	ck_assert_int_eq(json_array_size(json_object_get(r, "conflicts")), 2);
	ck_assert_int_eq(jint(json_object_get(r, "task"), "version"), 4);
	json_decref(r);
	ck_assert_int_eq(user_seq(u), seq);
	/* a field set to the value it already has is no conflict */
	r = patch(u, id, "{\"title\":\"oat milk\",\"base_version\":1}", 200);
	ck_assert_int_eq(json_array_size(json_object_get(r, "conflicts")), 0);
	json_decref(r);
	/* a base at the current version changes anything */
	r = patch(u, id, "{\"title\":\"rice milk\",\"base_version\":4}", 200);
	ck_assert_str_eq(jstr(json_object_get(r, "task"), "title"), "rice milk");
	json_decref(r);
	/* without base_version: the plain reply, last writer wins */
	r = patch(u, id, "{\"priority\":\"low\"}", 200);
	ck_assert_str_eq(jstr(r, "priority"), "low");
	json_decref(r);
	json_t *e;
	snprintf(b, sizeof(b), "{\"title\":\"x\",\"base_version\":0}");
	e = patch(u, id, b, 422);
	expect_error(e, "validation_failed", "base_version");
	e = patch(u, id, "{\"base_version\":3}", 422);
	expect_error(e, "validation_failed", "body");
	e = patch(u, id, "{\"title\":\"x\",\"base_version\":\"3\"}", 422);
	expect_error(e, "validation_failed", "base_version");
}
END_TEST

START_TEST(bad_keys_refused_and_window_prunes)
{
	char u[64];
	new_user(u, sizeof(u));
	const char *bad[] = {"Idempotency-Key: \r\n", "Idempotency-Key: has space\r\n",
	                     "Idempotency-Key: semi;colon\r\n"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *e = NULL;
		ck_assert_int_eq(
		    api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"x\"}", bad[i], &e, NULL),
		    400);
		expect_error(e, "bad_request", "Idempotency-Key");
	}
	char long_key[200];
	memset(long_key, 'k', 129);
	long_key[129] = '\0';
	json_t *e = NULL;
	ck_assert_int_eq(
	    api(&B, u, "POST", "/api/v1/tasks", "{\"title\":\"x\"}", key_hdr(long_key), &e, NULL),
	    400);
	expect_error(e, "bad_request", "Idempotency-Key");
	ck_assert_int_eq(user_seq(u), 0);
	/* IDEMPOTENCY_WINDOW=3 (a backend of its own): after it the key and a tombstone
	 * are forgotten (the prune runs every window/4) */
	backend w;
	const char *extra[] = {"IDEMPOTENCY_WINDOW=3", NULL};
	be_start(&w, extra);
	char key[UUID_STR_LEN], id[UUID_STR_LEN], body[256];
	uuid_new(key);
	uuid_new(id);
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"a\"}", id);
	ck_assert_int_eq(api(&w, u, "POST", "/api/v1/tasks", body, key_hdr(key), NULL, NULL), 201);
	ck_assert_int_eq(api(&w, u, "DELETE", task_path(id), NULL, NULL, NULL, NULL), 204);
	int st = 0;
	for (int64_t end = mono_ms() + 30000; mono_ms() < end && st != 201;) {
		usleep(100000);
		st = api(&w, u, "POST", "/api/v1/tasks", body, NULL, NULL, NULL);
		ck_assert_msg(st == 410 || st == 201, "a create of the deleted id: %d", st);
	}
	ck_assert_int_eq(st, 201); /* the tombstone expired */
	/* and the key: a request with it is new again (another body is no reuse) */
	snprintf(body, sizeof(body), "{\"title\":\"b\"}");
	ck_assert_int_eq(api(&w, u, "POST", "/api/v1/tasks", body, key_hdr(key), NULL, NULL), 201);
	be_stop(&w);
}
END_TEST

Suite *mutations_suite(void)
{
	Suite *s = suite_create("mutations");
	TCase *tc = tcase_create("mutations");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, replay_returns_the_first_reply);
	tcase_add_test(tc, concurrent_same_key_applies_once);
	tcase_add_test(tc, deleted_task_stays_deleted);
	tcase_add_test(tc, per_field_merge);
	tcase_add_test(tc, bad_keys_refused_and_window_prunes);
	suite_add_tcase(s, tc);
	return s;
}
