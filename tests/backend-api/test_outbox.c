/* The transactional outbox and its relay (backend-api/src/outbox.c): what the API
 * commits reaches the topic, keyed by user, in seq order, exactly once in normal
 * operation, through a devbroker outage and with two processes on one database;
 * published rows are pruned after EVENT_RETENTION. Each test runs its own
 * backend(s) on a fresh database and topic. */
#include "harness.h"
#include "suites.h"

#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The events of user on the topic are 1..n in order, each once. */
static void assert_gapless(json_t **ev, size_t count, size_t n)
{
	ck_assert_msg(count == n, "%zu events on the topic, %zu expected", count, n);
	for (size_t i = 0; i < count; i++) {
		long long s = jint(ev[i], "seq");
		ck_assert_msg(s == (long long)i + 1, "event %zu has seq %lld", i, s);
	}
}

START_TEST(events_match_api_calls)
{
	backend b;
	be_start(&b, NULL);
	char u[64], other[64];
	new_user(u, sizeof(u));
	new_user(other, sizeof(other));
	json_t *resp[8] = {0};
	const char *types[8];
	const char *origins[8];
	size_t n = 0;
	json_t *a = NULL, *c = NULL;
	ck_assert_int_eq(api(&b, u, "POST", "/api/v1/tasks",
	                     "{\"title\":\"a\",\"priority\":\"high\",\"description\":\"da\"}",
	                     "X-Client-Id: dev-1\r\n", &a, NULL),
	                 201);
	resp[n] = json_incref(a), types[n] = "task.created", origins[n++] = "dev-1";
	json_decref(create_task(&b, other, "noise")); /* another user's event between */
	ck_assert_int_eq(api(&b, u, "POST", "/api/v1/tasks", "{\"title\":\"c\"}", NULL, &c, NULL),
	                 201);
	resp[n] = json_incref(c), types[n] = "task.created", origins[n++] = NULL;
	char pa[256], pc[256];
	snprintf(pa, sizeof(pa), "%s", task_path(jstr(a, "id")));
	snprintf(pc, sizeof(pc), "%s", task_path(jstr(c, "id")));
	json_t *p = NULL;
	ck_assert_int_eq(
	    api(&b, u, "PATCH", pa, "{\"title\":\"a2\"}", "X-Client-Id: dev-2\r\n", &p, NULL), 200);
	resp[n] = p, types[n] = "task.updated", origins[n++] = "dev-2";
	ck_assert_int_eq(api(&b, u, "PATCH", pc, "{\"completed\":true}", NULL, &p, NULL), 200);
	resp[n] = p, types[n] = "task.completed", origins[n++] = NULL;
	/* idempotent repeat: no event */
	char body[128];
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"a\"}", jstr(a, "id"));
	ck_assert_int_eq(api(&b, u, "POST", "/api/v1/tasks", body, NULL, NULL, NULL), 200);
	/* no-op PATCH: no event */
	ck_assert_int_eq(api(&b, u, "PATCH", pc, "{\"completed\":true}", NULL, NULL, NULL), 200);
	/* rejected calls: no event */
	ck_assert_int_eq(api(&b, u, "PATCH", pa, "{\"title\":\"\"}", NULL, NULL, NULL), 422);
	ck_assert_int_eq(
	    api(&b, u, "PATCH", pa, "{\"title\":\"x\"}", "If-Match: 1\r\n", NULL, NULL), 412);
	json_t *o = NULL;
	ck_assert_int_eq(apif(&b, u, "PUT", "/api/v1/tasks/order", &o,
	                      "{\"order\":[\"%s\",\"%s\"]}", jstr(c, "id"), jstr(a, "id")),
	                 200);
	resp[n] = o, types[n] = "task.reordered", origins[n++] = NULL;
	ck_assert_int_eq(api(&b, u, "DELETE", pa, NULL, "X-Client-Id: dev-1\r\n", NULL, NULL), 204);
	resp[n] = NULL, types[n] = "task.deleted", origins[n++] = "dev-1";

	size_t count;
	json_t **ev = topic_events(&b, u, n, 30000, 1500, &count);
	assert_gapless(ev, count, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(jstr(ev[i], "event_type"), types[i]);
		ck_assert_str_eq(jstr(ev[i], "user_id"), u);
		ck_assert(uuid_valid(jstr(ev[i], "event_id")));
		ck_assert_ptr_nonnull(jstr(ev[i], "timestamp"));
		if (origins[i])
			ck_assert_str_eq(jstr(ev[i], "origin"), origins[i]);
		else
			ck_assert(json_is_null(json_object_get(ev[i], "origin")));
		if (!strcmp(types[i], "task.reordered")) {
			ck_assert_msg(json_equal(json_object_get(ev[i], "order"),
			                         json_object_get(resp[i], "order")),
			              "reordered event's order differs from the API's");
			ck_assert_int_eq(jint(resp[i], "seq"), (long long)i + 1);
		} else if (!strcmp(types[i], "task.deleted")) {
			ck_assert_str_eq(jstr(json_object_get(ev[i], "task"), "id"), jstr(a, "id"));
		} else {
			ck_assert_msg(json_equal(json_object_get(ev[i], "task"), resp[i]),
			              "event %zu's task differs from the API's answer", i);
		}
	}
	/* what was published and answered matches proto/ */
	assert_schema("task-event.schema.json", ev, count);
	json_t *tasks[8];
	size_t nt = 0;
	for (size_t i = 0; i < n; i++)
		if (resp[i] && json_object_get(resp[i], "id"))
			tasks[nt++] = resp[i];
	assert_schema("task.schema.json", tasks, nt);
	/* the catch-up feed serves the very same events */
	json_t *f = NULL;
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/events?since=0", NULL, NULL, &f, NULL), 200);
	json_t *evs = json_object_get(f, "events");
	ck_assert_int_eq(json_array_size(evs), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(json_equal(json_array_get(evs, i), ev[i]),
		              "feed event %zu differs from the topic's", i);
	json_decref(f);
	free_events(ev, count);
	/* the other user's event is on the topic too, under its own key */
	ev = topic_events(&b, other, 1, 10000, 0, &count);
	assert_gapless(ev, count, 1);
	free_events(ev, count);
	wait_published(&b, u, 10000);
	for (size_t i = 0; i < n; i++)
		json_decref(resp[i]);
	json_decref(a);
	json_decref(c);
	be_stop(&b);
}
END_TEST

START_TEST(outage_loses_nothing)
{
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	const int total = 1000;
	int64_t down_at = 0;
	for (int i = 1; i <= total; i++) {
		if (i == 101) {
			broker_down();
			down_at = mono_ms();
		}
		if (i == 901) {
			/* the outage lasts a few seconds at least, long enough for the
			 * producer to notice it */
			while (mono_ms() - down_at < 4000)
				usleep(50000);
			char *body = NULL;
			int st = http_get(b.p.port, "/readyz", &body);
			free(body);
			ck_assert_msg(st == 503, "/readyz %d with the devbroker down", st);
			broker_up();
		}
		char title[32];
		snprintf(title, sizeof(title), "w%d", i);
		json_t *t = create_task(&b, u, title);
		json_decref(t);
	}
	size_t count;
	json_t **ev = topic_events(&b, u, (size_t)total, 90000, 2000, &count);
	assert_gapless(ev, count, (size_t)total);
	for (size_t i = 0; i < count; i++) {
		char title[32];
		snprintf(title, sizeof(title), "w%zu", i + 1);
		ck_assert_str_eq(jstr(json_object_get(ev[i], "task"), "title"), title);
	}
	free_events(ev, count);
	wait_published(&b, u, 30000);
	be_stop(&b);
}
END_TEST

typedef struct writer_arg {
	const backend *b;
	const char *user;
	int n;
	int ok;
} writer_arg;

static void *writer(void *p)
{
	writer_arg *w = p;
	for (int i = 0; i < w->n; i++)
		w->ok += api(w->b, w->user, "POST", "/api/v1/tasks", "{\"title\":\"two\"}", NULL,
		             NULL, NULL) == 201;
	return NULL;
}

START_TEST(two_processes_one_order)
{
	backend a, b;
	be_start(&a, NULL);
	be_start_same(&b, &a, NULL);
	char u[64];
	new_user(u, sizeof(u));
	const int per = 200;
	writer_arg wa = {&a, u, per, 0}, wb = {&b, u, per, 0};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, writer, &wa);
	pthread_create(&tb, NULL, writer, &wb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_int_eq(wa.ok, per);
	ck_assert_int_eq(wb.ok, per);
	size_t count;
	json_t **ev = topic_events(&a, u, 2 * per, 60000, 2000, &count);
	assert_gapless(ev, count, 2 * (size_t)per);
	/* distinct events: no event_id twice */
	for (size_t i = 1; i < count; i++)
		ck_assert_str_ne(jstr(ev[i], "event_id"), jstr(ev[i - 1], "event_id"));
	free_events(ev, count);
	wait_published(&a, u, 30000);

	/* The process that publishes dies: the other takes over. A duplicate may
	 * appear after a crash (same event_id and seq); nothing may be missing or
	 * out of order. */
	proc_kill(&a.p);
	for (int i = 0; i < 50; i++)
		json_decref(create_task(&b, u, "after"));
	ev = topic_events(&b, u, 2 * per + 50, 60000, 2000, &count);
	ck_assert_int_ge(count, 2 * per + 50);
	long long expect = 1;
	for (size_t i = 0; i < count; i++) {
		long long s = jint(ev[i], "seq");
		if (s == expect - 1)
			continue; /* a re-publication of the previous one */
		ck_assert_msg(s == expect, "seq %lld after %lld", s, expect - 1);
		expect++;
	}
	ck_assert_int_eq(expect - 1, 2 * per + 50);
	free_events(ev, count);
	be_stop(&b);
}
END_TEST

START_TEST(retention_prunes_old_events)
{
	backend b;
	const char *env[] = {"EVENT_RETENTION=60", NULL};
	be_start(&b, env);
	char u[64];
	new_user(u, sizeof(u));
	for (int i = 0; i < 3; i++)
		json_decref(create_task(&b, u, "old"));
	wait_published(&b, u, 30000);
	/* make the rows two hours old: the pruner must remove all but the latest */
	const char *p[] = {u};
	PQclear(pgtest_exec(b.db,
	                    "UPDATE outbox SET created_at = created_at - interval '2 hours', "
	                    "published_at = published_at - interval '2 hours' WHERE user_id = $1",
	                    1, p));
	int64_t deadline = mono_ms() + 150000;
	long left = -1;
	while (mono_ms() < deadline) {
		left = pgtest_long(b.db, "SELECT count(*) FROM outbox WHERE user_id = $1", 1, p);
		if (left <= 1)
			break;
		usleep(500000);
	}
	ck_assert_msg(left == 1, "%ld rows left after pruning (want the latest only)", left);
	ck_assert_int_eq(pgtest_long(b.db, "SELECT seq FROM outbox WHERE user_id = $1", 1, p), 3);
	json_t *e = NULL;
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/events?since=0", NULL, NULL, &e, NULL), 410);
	ck_assert_int_eq(jint(e, "seq"), 3);
	expect_error(e, "gone", NULL);
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/events?since=3", NULL, NULL, &e, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 0);
	json_decref(e);
	/* recent rows stay */
	json_decref(create_task(&b, u, "new"));
	wait_published(&b, u, 30000);
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/events?since=3", NULL, NULL, &e, NULL), 200);
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 1);
	json_decref(e);
	be_stop(&b);
}
END_TEST

START_TEST(writes_during_outage_then_restart)
{
	/* Rows written while Kafka is down and not yet published when the process
	 * stops are published by the next process. */
	backend a, b;
	be_start(&a, NULL);
	char u[64];
	new_user(u, sizeof(u));
	json_decref(create_task(&a, u, "before"));
	wait_published(&a, u, 30000);
	broker_down();
	for (int i = 0; i < 20; i++)
		json_decref(create_task(&a, u, "during"));
	const char *p[] = {u};
	ck_assert_int_gt(pgtest_long(a.db,
	                             "SELECT count(*) FROM outbox WHERE user_id = $1 AND "
	                             "published_at IS NULL",
	                             1, p),
	                 0);
	/* SHUTDOWN_TIMEOUT_MS bounds the stop even with the broker down */
	long ms = 0;
	int rc = proc_stop(&a.p, &ms);
	ck_assert_msg(rc == 0, "exit %d with the broker down (log %s)", rc, a.p.log);
	ck_assert_int_lt(ms, 15000);
	ck_assert(be_log_clean(&a));
	broker_up();
	be_start_same(&b, &a, NULL);
	size_t count;
	json_t **ev = topic_events(&b, u, 21, 60000, 1500, &count);
	/* a row in flight at the stop may come twice, with the same seq */
	long long expect = 1;
	for (size_t i = 0; i < count; i++) {
		long long s = jint(ev[i], "seq");
		if (s == expect - 1)
			continue;
		ck_assert_msg(s == expect, "seq %lld after %lld", s, expect - 1);
		expect++;
	}
	ck_assert_int_eq(expect - 1, 21);
	free_events(ev, count);
	wait_published(&b, u, 30000);
	be_stop(&b);
}
END_TEST

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

START_TEST(relay_wakes_on_commit)
{
	/* With the fallback poll at 10 s, only the commit's wake-up (NOTIFY) can get
	 * events onto the topic quickly. */
	backend b;
	const char *env[] = {"OUTBOX_POLL_MS=10000", NULL};
	be_start(&b, env);
	char u[64];
	new_user(u, sizeof(u));
	json_decref(create_task(&b, u, "first"));
	kreader *r = kreader_open(b.topic, 30000);
	ck_assert_uint_eq(kreader_collect(r, 1, 15000), 1);
	enum { N = 30 };
	long lat[N];
	for (int i = 0; i < N; i++) {
		size_t have;
		kreader_msgs(r, &have);
		int64_t t0 = mono_ms();
		json_decref(create_task(&b, u, "timed"));
		ck_assert_uint_eq(kreader_collect(r, have + 1, 9000), have + 1);
		lat[i] = (long)(mono_ms() - t0);
	}
	kreader_free(r);
	qsort(lat, N, sizeof(lat[0]), cmp_long);
	fprintf(stderr, "relay_wakes_on_commit: POST-to-consumed ms p50 %ld max %ld\n", lat[N / 2],
	        lat[N - 1]);
	ck_assert_msg(lat[N / 2] < 500, "median POST-to-topic %ld ms: no wake-up at commit?",
	              lat[N / 2]);
	ck_assert_msg(lat[N - 1] < 3000, "slowest POST-to-topic %ld ms", lat[N - 1]);
	be_stop(&b);
}
END_TEST

Suite *outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("relay");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, events_match_api_calls);
	tcase_add_test(tc, relay_wakes_on_commit);
	tcase_add_test(tc, outage_loses_nothing);
	tcase_add_test(tc, two_processes_one_order);
	tcase_add_test(tc, writes_during_outage_then_restart);
	tcase_add_test(tc, retention_prunes_old_events);
	suite_add_tcase(s, tc);
	return s;
}
