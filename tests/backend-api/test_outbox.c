/* The transactional outbox and its relay (backend-api/src/outbox.c, wal.c): what
 * the API commits reaches the topic, keyed by user, in seq order, exactly once in
 * normal operation, at least once (a repeat keeps its event_id) through Apache
 * Kafka outages and restarts, a leader's death or freeze with two processes on one
 * database; an event Kafka refuses is dead-lettered and the stream goes on; rows are
 * pruned after EVENT_RETENTION. Each test runs its own backend(s) on a fresh
 * database and topic. */
#include "harness.h"
#include "suites.h"

#include "../support/runner.h"

#include "common/util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/* The seq at position k of want (NULL: 1, 2, 3, ...). */
static long long seq_at(const long long *want, size_t k)
{
	return want ? want[k] : (long long)k + 1;
}

/* One user's events in topic order: the first copies are want[0..n) in that order
 * (want NULL: 1..n), and a repeat (at least once, after a reset or a takeover)
 * carries its first copy's event_id. Returns the repeats; *seen gets how many of
 * the n have come. */
static size_t seq_walk(json_t *const *ev, size_t count, const long long *want, size_t n,
                       const char *who, size_t *seen)
{
	const char **ids = xcalloc(n + 1, sizeof(char *));
	size_t next = 0, repeats = 0; /* next: the position due */
	for (size_t i = 0; i < count; i++) {
		long long s = jint(ev[i], "seq");
		if (next < n && s == seq_at(want, next)) {
			ids[next++] = jstr(ev[i], "event_id");
			continue;
		}
		size_t k = 0;
		while (k < next && seq_at(want, k) != s)
			k++;
		ck_assert_msg(k < next, "%s: seq %lld where %lld was due (a gap or a reordering)",
		              who, s, next < n ? seq_at(want, next) : -1);
		ck_assert_msg(!strcmp(ids[k], jstr(ev[i], "event_id")),
		              "%s: seq %lld twice with different event ids", who, s);
		repeats++;
	}
	free(ids);
	*seen = next;
	if (repeats)
		fprintf(stderr, "%s: %zu repeated events (same event_id)\n", who, repeats);
	return repeats;
}

/* The events of one user in topic order are seqs 1..n, each first copy in order,
 * repeats allowed (seq_walk). Returns the number of repeats. */
static size_t assert_seq_order(json_t *const *ev, size_t count, size_t n, const char *who)
{
	size_t seen;
	size_t repeats = seq_walk(ev, count, NULL, n, who, &seen);
	ck_assert_msg(seen == n, "%s: %zu of %zu events on the topic", who, seen, n);
	return repeats;
}

/* The value of the counter name on b's /metrics (-1 when absent). */
static double metric_value(const backend *b, const char *name)
{
	http_resp resp;
	ck_assert_int_eq(api(b, NULL, "GET", "/metrics", NULL, NULL, NULL, &resp), 200);
	double v = -1;
	for (const char *p = resp.body; (p = strstr(p, name)); p++)
		if ((p == resp.body || p[-1] == '\n') && p[strlen(name)] == ' ') {
			v = strtod(p + strlen(name), NULL);
			break;
		}
	http_resp_free(&resp);
	return v;
}

/* The messages keyed by user that r collected. */
static size_t user_msgs(const kreader *r, const char *user)
{
	size_t n, c = 0;
	const kmsg *m = kreader_msgs(r, &n);
	for (size_t i = 0; i < n; i++)
		c += m[i].key && !strcmp(m[i].key, user);
	return c;
}

/* Collects from r until it holds n messages of user or timeout_ms passed since t0
 * (mono_ms); returns the milliseconds since t0. */
static long wait_user_msgs(kreader *r, const char *user, size_t n, int64_t t0, int timeout_ms)
{
	while (user_msgs(r, user) < n && mono_ms() - t0 < timeout_ms) {
		size_t have;
		kreader_msgs(r, &have);
		kreader_collect(r, have + 1, 20);
	}
	return (long)(mono_ms() - t0);
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
			ck_assert_msg(json_equal(json_object_get(ev[i], "positions"),
			                         json_object_get(resp[i], "positions")),
			              "reordered event's positions differ from the API's");
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

/* Apache Kafka SIGKILLed after write 100 of 1,000 and started again on its log dirs
 * before write 901: every write answers 201 (create_task asserts it), and all 1,000
 * events are on the topic once each, in seq order, with no gap. */
START_TEST(broker_sigkilled_during_1000_writes)
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
			/* readiness is the database: the outbox absorbs the outage */
			ck_assert_msg(st == 200, "/readyz %d with the broker killed", st);
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
	kreader *r = kreader_open(a.topic, 30000);
	proc_kill(&a.p);
	int64_t t0 = mono_ms();
	json_decref(create_task(&b, u, "after"));
	long ms = wait_user_msgs(r, u, 2 * per + 1, t0, 15000);
	kreader_free(r);
	fprintf(stderr,
	        "two_processes_one_order: leader SIGKILLed, first event via the other "
	        "on the topic after %ld ms\n",
	        ms);
	ck_assert_msg(ms < 5000, "takeover took %ld ms", ms);
	for (int i = 1; i < 50; i++)
		json_decref(create_task(&b, u, "after"));
	ev = topic_events(&b, u, 2 * per + 50, 60000, 2000, &count);
	assert_seq_order(ev, count, 2 * per + 50, "two_processes_one_order");
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
	                    "UPDATE outbox SET created_at = created_at - interval '2 hours' "
	                    "WHERE user_id = $1",
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

/* A backlog of old rows (300,000, as after a retention was shortened) is pruned a
 * batch per turn of the relay's loop: an event committed once the prune has begun
 * reaches the topic before the prune is done, and the stream is never cut (the
 * server ends a stream that sends no status update for OUTBOX_TAKEOVER_MS). The
 * relay used to prune the whole backlog in one go, holding the stream meanwhile. */
START_TEST(prune_backlog_keeps_streaming)
{
	enum { ROWS = 300000 };
	const char *env[] = {"EVENT_RETENTION=60", NULL};
	backend a, b;
	be_start(&a, env); /* the schema */
	be_stop(&a);
	/* rows written before the slot exists are not streamed: the slot is dropped,
	 * the old rows written, and the next start makes the slot anew */
	char slot[128], rows[24], old[64];
	snprintf(slot, sizeof(slot), "tasksync_%s", strrchr(a.db, '/') + 1);
	snprintf(rows, sizeof(rows), "%d", ROWS);
	new_user(old, sizeof(old));
	const char *ps[] = {slot}, *po[] = {old, rows}, *pc[] = {old};
	PQclear(pgtest_exec(a.db, "SELECT pg_drop_replication_slot($1)", 1, ps));
	PQclear(pgtest_exec(a.db, "INSERT INTO user_seq (user_id, seq) VALUES ($1, $2::bigint)", 2,
	                    po));
	PQclear(pgtest_exec(a.db,
	                    "INSERT INTO outbox (user_id, seq, event_id, event_type, payload, "
	                    "created_at) SELECT $1, g, gen_random_uuid(), 'task.created', '{}', "
	                    "now() - interval '2 hours' FROM generate_series(1, $2::bigint) g",
	                    2, po));
	const char *count = "SELECT count(*) FROM outbox WHERE user_id = $1";
	ck_assert_int_eq(pgtest_long(a.db, count, 1, pc), ROWS);
	be_start_same(&b, &a, env);
	kreader *r = kreader_open(b.topic, 10000);
	long left = ROWS;
	for (int64_t end = mono_ms() + 30000; mono_ms() < end && left == ROWS; usleep(10000))
		left = pgtest_long(b.db, count, 1, pc);
	ck_assert_msg(left < ROWS, "the prune did not begin");
	char u[64];
	new_user(u, sizeof(u));
	int64_t t0 = mono_ms();
	json_decref(create_task(&b, u, "during the prune"));
	long ms = wait_user_msgs(r, u, 1, t0, 30000);
	kreader_free(r);
	left = pgtest_long(b.db, count, 1, pc);
	fprintf(stderr,
	        "prune_backlog_keeps_streaming: event on the topic after %ld ms, %ld of %d old "
	        "rows left\n",
	        ms, left, ROWS);
	ck_assert_msg(left > 1,
	              "the event reached the topic (after %ld ms) only once the prune "
	              "was done",
	              ms);
	for (int64_t end = mono_ms() + 120000; mono_ms() < end && left > 1; usleep(200000))
		left = pgtest_long(b.db, count, 1, pc);
	ck_assert_msg(left == 1, "%ld old rows left (want the latest only)", left);
	double resets = metric_value(&b, "outbox_relay_resets_total");
	ck_assert_msg(resets == 0, "the stream was cut %g times during the prune", resets);
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
	/* not confirmed: the slot is behind the commits */
	ck_assert_int_gt(
	    pgtest_long(a.db,
	                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM "
	                "pg_replication_slots WHERE database = current_database()",
	                0, NULL),
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
	/* an event in flight at the stop may come twice, with the same event_id */
	assert_seq_order(ev, count, 21, "writes_during_outage_then_restart");
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

/* Times 30 sequential creates of user sent to target, each from the POST until the
 * event is consumed from target's topic; prints p50/max under name and asserts a
 * median under 500 ms and a maximum under 3 s. */
static void assert_post_to_topic_latency(const char *name, const backend *target, const char *user)
{
	json_decref(create_task(target, user, "first"));
	kreader *r = kreader_open(target->topic, 30000);
	ck_assert_uint_eq(kreader_collect(r, 1, 15000), 1);
	enum { N = 30 };
	long lat[N];
	for (int i = 0; i < N; i++) {
		size_t have;
		kreader_msgs(r, &have);
		int64_t t0 = mono_ms();
		json_decref(create_task(target, user, "timed"));
		ck_assert_uint_eq(kreader_collect(r, have + 1, 9000), have + 1);
		lat[i] = (long)(mono_ms() - t0);
	}
	kreader_free(r);
	qsort(lat, N, sizeof(lat[0]), cmp_long);
	fprintf(stderr, "%s: POST-to-consumed ms p50 %ld max %ld\n", name, lat[N / 2], lat[N - 1]);
	ck_assert_msg(lat[N / 2] < 500, "median POST-to-topic %ld ms: no wake-up at commit?",
	              lat[N / 2]);
	ck_assert_msg(lat[N - 1] < 3000, "slowest POST-to-topic %ld ms", lat[N - 1]);
}

START_TEST(relay_wakes_on_commit)
{
	/* The stream delivers each commit: nothing polls. */
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	assert_post_to_topic_latency("relay_wakes_on_commit", &b, u);
	be_stop(&b);
}
END_TEST

START_TEST(follower_wakes_leader)
{
	/* Writes to the process that does not publish reach the topic as fast as the
	 * leader's own: the leader streams every commit of the database. */
	backend a, b;
	be_start(&a, NULL);
	be_start_same(&b, &a, NULL);
	ck_assert_msg(metric_value(&a, "outbox_leader") == 1, "the first process does not lead");
	ck_assert_msg(metric_value(&b, "outbox_leader") == 0, "the second process leads too");
	char u[64];
	new_user(u, sizeof(u));
	assert_post_to_topic_latency("follower_wakes_leader", &b, u);
	be_stop(&b);
	be_stop(&a);
}
END_TEST

/* Saturation: SAT_THREADS writers over SAT_USERS users, as fast as they go. Writer t
 * writes user (i + 10 * (t % 4)) % SAT_USERS at step i, so four threads hit the same
 * user at once and contend for its counter row. */
enum { SAT_USERS = 40, SAT_THREADS = 16, SAT_PER_THREAD = 250 };

typedef struct sat_writer {
	const backend *b;         /* where this thread writes */
	const char (*users)[64];  /* SAT_USERS user ids */
	int t;                    /* thread number */
	int ok[SAT_USERS];        /* writes answered 2xx (one event each), per user */
	int refused;              /* writes answered 503 (no event) */
	int bad_status;           /* the first other answer, 0 if none */
	char bad_what[160];       /* which call got it */
	char last[SAT_USERS][40]; /* this thread's latest live task per user ("" none) */
} sat_writer;

/* One write for user: a create, or (with a task of this thread's at hand) a PATCH,
 * PUT order or DELETE of it, as dice (0..99) says. Only this thread touches its
 * tasks, so each call succeeds unless the backend is overloaded. Returns the
 * status (1: answered without an event: a reorder that changed nothing); what
 * names the call. */
static int sat_write(sat_writer *w, const char *user, char *last, int dice, int i, char *what,
                     size_t wlen)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/tasks/%s", last);
	if (!last[0] || dice < 70) {
		snprintf(what, wlen, "POST create");
		json_t *t = NULL;
		int st = apif(w->b, user, "POST", "/api/v1/tasks", &t, "{\"title\":\"s%d-%d\"}",
		              w->t, i);
		if (st == 201 && jstr(t, "id"))
			snprintf(last, 40, "%s", jstr(t, "id"));
		json_decref(t);
		return st == 201 ? 200 : st == 200 ? 0 : st; /* 200: an idempotent repeat */
	}
	if (dice < 85) {
		snprintf(what, wlen, "PATCH %s", path);
		return apif(w->b, user, "PATCH", path, NULL, "{\"title\":\"p%d-%d\"}", w->t, i);
	}
	if (dice < 93) {
		snprintf(what, wlen, "PUT order");
		json_t *o = NULL;
		int st = apif(w->b, user, "PUT", "/api/v1/tasks/order", &o, "{\"order\":[\"%s\"]}",
		              last);
		/* already first: nothing changed, no event (seq null) */
		int none = st == 200 && json_is_null(json_object_get(o, "seq"));
		json_decref(o);
		return none ? 1 : st;
	}
	snprintf(what, wlen, "DELETE %s", path);
	int st = api(w->b, user, "DELETE", path, NULL, NULL, NULL, NULL);
	if (st == 204)
		last[0] = '\0';
	return st == 204 ? 200 : st;
}

static void *sat_writer_main(void *p)
{
	sat_writer *w = p;
	uint32_t rnd = 2463534242u + (uint32_t)w->t * 7919u; /* xorshift32: repeatable */
	for (int i = 0; i < SAT_PER_THREAD && !w->bad_status; i++) {
		int u = (i + 10 * (w->t % 4)) % SAT_USERS;
		rnd ^= rnd << 13;
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		char what[160];
		int st =
		    sat_write(w, w->users[u], w->last[u], (int)(rnd % 100), i, what, sizeof(what));
		if (st == 200) {
			w->ok[u]++;
		} else if (st == 1) {
			/* answered, no event */
		} else if (st == 503) {
			w->refused++;
		} else {
			w->bad_status = st ? st : -2;
			snprintf(w->bad_what, sizeof(w->bad_what), "%s", what);
		}
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* No event_id twice among ev. */
static void assert_distinct_ids(json_t **ev, size_t count)
{
	const char **ids = xcalloc(count + 1, sizeof(*ids));
	for (size_t i = 0; i < count; i++) {
		ids[i] = jstr(ev[i], "event_id");
		ck_assert_ptr_nonnull(ids[i]);
	}
	qsort(ids, count, sizeof(*ids), cmp_str);
	for (size_t i = 1; i < count; i++)
		ck_assert_msg(strcmp(ids[i], ids[i - 1]), "event_id %s twice", ids[i]);
	free(ids);
}

/* Runs the writers, spread over the nbe backends (one database), then asserts that
 * every user's events on the topic are exactly its successful writes: seq 1..n in
 * order, no event_id twice. */
static void saturate(const char *name, const backend *const *bes, size_t nbe)
{
	char users[SAT_USERS][64];
	for (int u = 0; u < SAT_USERS; u++)
		new_user(users[u], sizeof(users[u]));
	sat_writer *w = xcalloc(SAT_THREADS, sizeof(*w));
	pthread_t th[SAT_THREADS];
	int64_t t0 = mono_ms();
	for (int t = 0; t < SAT_THREADS; t++) {
		w[t].b = bes[(size_t)t % nbe];
		w[t].users = (const char(*)[64])users;
		w[t].t = t;
		ck_assert_int_eq(pthread_create(&th[t], NULL, sat_writer_main, &w[t]), 0);
	}
	for (int t = 0; t < SAT_THREADS; t++)
		pthread_join(th[t], NULL);
	long ms = (long)(mono_ms() - t0);
	int n[SAT_USERS] = {0}, total = 0, refused = 0;
	for (int t = 0; t < SAT_THREADS; t++) {
		ck_assert_msg(!w[t].bad_status, "writer %d: %s answered %d", t, w[t].bad_what,
		              w[t].bad_status);
		refused += w[t].refused;
		for (int u = 0; u < SAT_USERS; u++)
			n[u] += w[t].ok[u];
	}
	free(w);
	for (int u = 0; u < SAT_USERS; u++)
		total += n[u];
	fprintf(stderr, "%s: %d writes (%d refused with 503) in %ld ms: %.0f writes/s\n", name,
	        total, refused, ms, total * 1000.0 / (double)(ms ? ms : 1));
	ck_assert_msg(refused * 10 <= total, "%d of %d writes refused", refused, total + refused);

	int64_t tp = mono_ms();
	for (int u = 0; u < SAT_USERS; u++)
		wait_published(bes[0], users[u], 60000);
	fprintf(stderr, "%s: all published %ld ms after the last write\n", name,
	        (long)(mono_ms() - tp));
	for (int u = 0; u < SAT_USERS; u++) {
		size_t count;
		json_t **ev = topic_events(bes[0], users[u], (size_t)n[u], 30000, 200, &count);
		assert_gapless(ev, count, (size_t)n[u]);
		assert_distinct_ids(ev, count);
		free_events(ev, count);
	}
}

START_TEST(saturation_keeps_user_order)
{
	backend b;
	be_start(&b, NULL);
	const backend *bes[] = {&b};
	saturate("saturation_keeps_user_order", bes, 1);
	be_stop(&b);
}
END_TEST

START_TEST(saturation_two_processes_keeps_user_order)
{
	backend a, b;
	be_start(&a, NULL);
	be_start_same(&b, &a, NULL);
	const backend *bes[] = {&a, &b};
	saturate("saturation_two_processes_keeps_user_order", bes, 2);
	be_stop(&b);
	be_stop(&a);
}
END_TEST

/* The first column of the first row of sql on pg as a new string (NULL when no
 * row); fails the test when the statement fails. */
static char *pg_value(PGconn *pg, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = pgtest_exec_on(pg, sql, nparams, params);
	char *v =
	    PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	return v;
}

/* Opens a transaction of the test's own that writes user's next event (seq) the
 * way a backend-api process that is not the publishing leader does: the user's
 * counter row (which stays locked), an outbox row whose payload is a task.updated
 * copy of the user's previous event. Returns the connection with the transaction
 * open: the row's id is taken but its insert is not in the stream until
 * late_commit. */
static PGconn *late_event_begin(const backend *b, const char *user, long long seq)
{
	PGconn *pg = PQconnectdb(b->db);
	ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "could not connect to %s: %s", b->db,
	              PQerrorMessage(pg));
	free(pg_value(pg, "BEGIN", 0, NULL));
	const char *pu[] = {user};
	char *got = pg_value(pg,
	                     "INSERT INTO user_seq (user_id, seq, next_pos) VALUES ($1, 1, 0) "
	                     "ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq + 1 "
	                     "RETURNING seq",
	                     1, pu);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(atoll(got), seq);
	free(got);
	char prev[24], seqs[24];
	snprintf(prev, sizeof(prev), "%lld", seq - 1);
	snprintf(seqs, sizeof(seqs), "%lld", seq);
	const char *pp[] = {user, prev};
	char *text =
	    pg_value(pg, "SELECT payload FROM outbox WHERE user_id = $1 AND seq = $2", 2, pp);
	ck_assert_ptr_nonnull(text);
	json_t *ev = json_loads(text, 0, NULL);
	free(text);
	ck_assert_ptr_nonnull(ev);
	char *eid = pg_value(pg, "SELECT gen_random_uuid()::text", 0, NULL);
	json_object_set_new(ev, "seq", json_integer(seq));
	json_object_set_new(ev, "event_id", json_string(eid));
	json_object_set_new(ev, "event_type", json_string("task.updated"));
	char *payload = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	const char *pi[] = {user, seqs, eid, payload};
	free(pg_value(pg,
	              "INSERT INTO outbox (user_id, seq, event_id, event_type, payload) "
	              "VALUES ($1, $2::bigint, $3::uuid, 'task.updated', $4)",
	              4, pi));
	free(payload);
	free(eid);
	return pg;
}

/* Commits late_event_begin's transaction and closes its connection. */
static void late_commit(PGconn *pg)
{
	free(pg_value(pg, "COMMIT", 0, NULL));
	PQfinish(pg);
}

/* n creates for user paced evenly over about span_ms. */
static void creates_over(const backend *b, const char *user, int n, int span_ms)
{
	int64_t t0 = mono_ms();
	for (int i = 0; i < n; i++) {
		json_decref(create_task(b, user, "pace"));
		int64_t next = t0 + (int64_t)span_ms * (i + 1) / n;
		int64_t now = mono_ms();
		if (next > now)
			usleep((useconds_t)(next - now) * 1000);
	}
}

START_TEST(late_commit_is_published_in_order)
{
	/* U's seq 2 is taken (outbox id allocated) before V's 20 events and committed
	 * after them: the stream is in commit order, so U's seq 2 comes after V's
	 * events, within a second of its COMMIT, before U's seq 3, with no poll and
	 * no further write by anyone but U. */
	backend b;
	be_start(&b, NULL);
	char u[64], v[64];
	new_user(u, sizeof(u));
	new_user(v, sizeof(v));
	json_decref(create_task(&b, u, "one"));
	wait_published(&b, u, 10000);
	kreader *r = kreader_open(b.topic, 10000);
	PGconn *late = late_event_begin(&b, u, 2);
	creates_over(&b, v, 20, 1000);
	int64_t t0 = mono_ms();
	late_commit(late);
	long ms = wait_user_msgs(r, u, 2, t0, 10000);
	size_t got = user_msgs(r, u);
	kreader_free(r);
	fprintf(stderr, "late_commit_is_published_in_order: COMMIT-to-consumed %ld ms\n", ms);
	ck_assert_msg(got >= 2, "U's seq 2 not on the topic %ld ms after its COMMIT", ms);
	ck_assert_msg(ms < 1000, "U's seq 2 on the topic %ld ms after its COMMIT", ms);
	json_decref(create_task(&b, u, "three"));
	size_t count;
	json_t **ev = topic_events(&b, u, 3, 10000, 500, &count);
	assert_gapless(ev, count, 3);
	ck_assert_str_eq(jstr(ev[1], "event_type"), "task.updated");
	free_events(ev, count);
	ev = topic_events(&b, v, 20, 10000, 0, &count);
	assert_gapless(ev, count, 20);
	free_events(ev, count);
	be_stop(&b);
}
END_TEST

START_TEST(stream_loss_repeats_little)
{
	/* The relay's stream is cut (its walsender terminated) five times, each right
	 * after a burst of writes, while Kafka stays up: what Kafka acknowledged but
	 * the slot had not been told of yet is not produced again (the stream resumes
	 * past it), nor is what was in flight purged and resent. A cut can repeat only
	 * the transaction it fell inside (its rows were produced, its COMMIT not read):
	 * one event here, where each write is a transaction of one event. Resuming
	 * from the slot's position instead repeated some 100 ms of events per cut. */
	backend b;
	be_start(&b, NULL);
	char u[64];
	new_user(u, sizeof(u));
	char slot[128];
	snprintf(slot, sizeof(slot), "tasksync_%s", strrchr(b.db, '/') + 1);
	const char *admin = test_env("PG_ADMIN_URL");
	const char *p[] = {slot};
	const char *active = "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1";
	size_t n = 0;
	for (int cut = 0; cut < 5; cut++) {
		long pid = -1;
		for (int64_t end = mono_ms() + 15000; mono_ms() < end && pid <= 0; usleep(20000))
			pid = pgtest_long(admin, active, 1, p);
		ck_assert_msg(pid > 0, "no stream on %s", slot);
		for (int i = 0; i < 40; i++, n++)
			json_decref(create_task(&b, u, "burst"));
		char spid[24];
		snprintf(spid, sizeof(spid), "%ld", pid);
		const char *kp[] = {spid};
		PQclear(pgtest_exec(admin, "SELECT pg_terminate_backend($1::int)", 1, kp));
		/* the next burst waits for a new stream */
		for (int64_t end = mono_ms() + 15000;
		     mono_ms() < end && pgtest_long(admin, active, 1, p) == pid; usleep(20000))
			;
	}
	for (int i = 0; i < 40; i++, n++)
		json_decref(create_task(&b, u, "after"));
	wait_published(&b, u, 30000);
	size_t count;
	json_t **ev = topic_events(&b, u, n, 30000, 1500, &count);
	size_t repeats = assert_seq_order(ev, count, n, "stream_loss_repeats_little");
	fprintf(stderr, "stream_loss_repeats_little: %zu events, 5 cuts, %zu repeated\n", n,
	        repeats);
	ck_assert_msg(repeats <= 5, "%zu events repeated after 5 cuts", repeats);
	free_events(ev, count);
	double resets = metric_value(&b, "outbox_relay_resets_total");
	ck_assert_msg(resets >= 5, "outbox_relay_resets_total %g after 5 cuts", resets);
	be_stop(&b);
}
END_TEST

/* The refusal resets the relay, which streams again from the last confirmed
 * transaction: an event after the refused one that Kafka had acknowledged may come
 * twice (at least once, the same event_id). Waits until the user's events on the
 * topic, repeats aside, are want[0..n) in order. */
static void expect_distinct_seqs(const backend *b, const char *u, const long long *want, size_t n)
{
	int64_t deadline = mono_ms() + 30000;
	for (;;) {
		size_t count, seen;
		json_t **ev = topic_events(b, u, n, 30000, 1000, &count);
		seq_walk(ev, count, want, n, "refused_event_is_dead_lettered", &seen);
		free_events(ev, count);
		if (seen == n)
			return;
		ck_assert_msg(mono_ms() < deadline, "%zu of %zu events on the topic", seen, n);
	}
}

START_TEST(refused_event_is_dead_lettered)
{
	/* The topic takes messages up to 2 KiB: a 3 KB task is refused by Kafka. It is
	 * dead-lettered, the events before and after it flow, /events still has it. */
	backend b;
	be_start(&b, NULL);
	kafka_set_topic_config(b.topic, "max.message.bytes", "2048");
	char u[64];
	new_user(u, sizeof(u));
	json_decref(create_task(&b, u, "one"));
	char *big = xmalloc(3200);
	int n = snprintf(big, 3200, "{\"title\":\"big\",\"description\":\"");
	memset(big + n, 'x', 3000);
	snprintf(big + n + 3000, 3200 - (size_t)n - 3000, "\"}");
	ck_assert_int_eq(api(&b, u, "POST", "/api/v1/tasks", big, NULL, NULL, NULL), 201);
	free(big);
	json_decref(create_task(&b, u, "three"));
	json_decref(create_task(&b, u, "four"));
	const long long want[] = {1, 3, 4, 5};
	expect_distinct_seqs(&b, u, want, 3);
	const char *p[] = {u};
	ck_assert_int_eq(
	    pgtest_long(b.db, "SELECT seq FROM outbox_dead_letter WHERE user_id = $1", 1, p), 2);
	ck_assert_int_eq(pgtest_long(b.db, "SELECT count(*) FROM outbox_dead_letter", 0, NULL), 1);
	ck_assert_msg(metric_value(&b, "outbox_dead_letters_total") == 1,
	              "outbox_dead_letters_total %g",
	              metric_value(&b, "outbox_dead_letters_total"));
	/* clients close the gap from the feed */
	json_t *f = NULL;
	ck_assert_int_eq(api(&b, u, "GET", "/api/v1/events?since=1&limit=1", NULL, NULL, &f, NULL),
	                 200);
	ck_assert_int_eq(jint(json_array_get(json_object_get(f, "events"), 0), "seq"), 2);
	json_decref(f);
	/* and later events keep flowing */
	json_decref(create_task(&b, u, "five"));
	expect_distinct_seqs(&b, u, want, 4);
	be_stop(&b);
}
END_TEST

START_TEST(huge_list_stalls_no_one)
{
	/* A user with 30,000 tasks asks process A to renumber the whole list: refused
	 * at once (422 list_too_long, a renumbering is bounded to TASK_ORDER_MAX tasks;
	 * moves serve longer lists), so no one waits behind it; writes of other users
	 * through process B reach the topic within a second each, and no process
	 * counts a publish error. */
	backend a, b;
	be_start(&a, NULL);
	be_start_same(&b, &a, NULL);
	char big[64], v[64];
	new_user(big, sizeof(big));
	new_user(v, sizeof(v));
	json_decref(create_task(&a, big, "first"));
	const char *p[] = {big};
	PQclear(
	    pgtest_exec(a.db,
	                "INSERT INTO tasks (id, user_id, title, position, created_at, updated_at) "
	                "SELECT gen_random_uuid(), $1, 'bulk ' || n, task_pos_key(n + 1), now(), "
	                "now() FROM generate_series(1, 29999) n",
	                1, p));
	PQclear(pgtest_exec(a.db,
	                    "UPDATE user_seq SET next_pos = 30001, task_count = 30000 WHERE "
	                    "user_id = $1",
	                    1, p));
	json_t *o = NULL;
	int st = api(&a, big, "PUT", "/api/v1/tasks/order", "{\"order\":[]}", NULL, &o, NULL);
	fprintf(stderr, "huge_list_stalls_no_one: PUT order of 30,000 tasks: %d\n", st);
	ck_assert_msg(st == 422, "PUT order of 30,000 tasks answered %d", st);
	expect_error(o, "list_too_long", "order");
	/* the stream is past the 30,000-row insert (decoded, not published): what is
	 * timed is the writes beside a huge list, not that one-off decode */
	wait_published(&a, big, 30000);
	kreader *r = kreader_open(a.topic, 30000);
	long worst = 0;
	for (int i = 0; i < 20; i++) {
		int64_t t0 = mono_ms();
		json_decref(create_task(&b, v, "elsewhere"));
		long ms = wait_user_msgs(r, v, (size_t)i + 1, t0, 5000);
		ck_assert_msg(user_msgs(r, v) >= (size_t)i + 1, "write %d of B not on the topic",
		              i);
		worst = ms > worst ? ms : worst;
	}
	kreader_free(r);
	fprintf(stderr, "huge_list_stalls_no_one: slowest POST-to-consumed via B %ld ms\n", worst);
	ck_assert_msg(worst < 1000, "a write via B took %ld ms to the topic", worst);
	ck_assert_msg(metric_value(&a, "kafka_publish_errors_total") == 0 &&
	                  metric_value(&b, "kafka_publish_errors_total") == 0,
	              "publish errors counted");
	be_stop(&b);
	be_stop(&a);
}
END_TEST

START_TEST(leader_frozen_follower_takes_over)
{
	/* The leader is frozen (SIGSTOP: its socket stays open, as with a host that
	 * vanished): the server ends its stream OUTBOX_TAKEOVER_MS (1.5 s here) after
	 * its last status update and the other process, trying every quarter of it,
	 * takes over: about 2 s at worst, asserted within 5 s. (With the default 3 s
	 * the worst case is about 3.9 s, too close to the bound on a loaded machine.)
	 * Thawed, the old leader follows; order holds and nothing is lost. */
	const char *env[] = {"OUTBOX_TAKEOVER_MS=1500", NULL};
	backend a, b;
	be_start(&a, env);
	be_start_same(&b, &a, env);
	ck_assert_msg(metric_value(&a, "outbox_leader") == 1, "the first process does not lead");
	char u[64];
	new_user(u, sizeof(u));
	for (int i = 0; i < 50; i++)
		json_decref(create_task(&b, u, "before"));
	kreader *r = kreader_open(a.topic, 30000);
	kreader_collect(r, 50, 30000);
	ck_assert_uint_eq(user_msgs(r, u), 50);
	ck_assert_int_eq(kill(a.p.pid, SIGSTOP), 0);
	int64_t t0 = mono_ms();
	json_decref(create_task(&b, u, "frozen"));
	long ms = wait_user_msgs(r, u, 51, t0, 15000);
	kreader_free(r);
	fprintf(stderr,
	        "leader_frozen_follower_takes_over: first event after the freeze on the "
	        "topic after %ld ms\n",
	        ms);
	ck_assert_int_eq(kill(a.p.pid, SIGCONT), 0);
	ck_assert_msg(ms < 5000, "takeover took %ld ms", ms);
	ck_assert_msg(metric_value(&b, "outbox_leader") == 1, "the other process does not lead");
	for (int i = 0; i < 50; i++)
		json_decref(create_task(i % 2 ? &a : &b, u, "after"));
	size_t count;
	json_t **ev = topic_events(&a, u, 101, 60000, 2000, &count);
	assert_seq_order(ev, count, 101, "leader_frozen_follower_takes_over");
	free_events(ev, count);
	be_stop(&b);
	be_stop(&a);
}
END_TEST

/* 10,000 writes from 8 clients over 100 users, Kafka SIGKILLed and restarted in
 * the middle. */
enum { BR_USERS = 100, BR_THREADS = 8, BR_PER_THREAD = 1250 };

typedef struct br_writer {
	const backend *b;
	const char (*users)[64];
	int t;
	int ok[BR_USERS];
	atomic_int *done;
} br_writer;

static void *br_writer_main(void *p)
{
	br_writer *w = p;
	for (int i = 0; i < BR_PER_THREAD; i++) {
		int k = (w->t + BR_THREADS * i) % BR_USERS;
		w->ok[k] += api(w->b, w->users[k], "POST", "/api/v1/tasks", "{\"title\":\"br\"}",
		                NULL, NULL, NULL) == 201;
		atomic_fetch_add(w->done, 1);
	}
	return NULL;
}

START_TEST(broker_restart_under_10000_writes)
{
	backend b;
	be_start(&b, NULL);
	char(*users)[64] = xcalloc(BR_USERS, 64);
	for (int k = 0; k < BR_USERS; k++)
		new_user(users[k], 64);
	atomic_int done = 0;
	br_writer *w = xcalloc(BR_THREADS, sizeof(*w));
	pthread_t th[BR_THREADS];
	for (int t = 0; t < BR_THREADS; t++) {
		w[t] =
		    (br_writer){.b = &b, .users = (const char(*)[64])users, .t = t, .done = &done};
		pthread_create(&th[t], NULL, br_writer_main, &w[t]);
	}
	while (atomic_load(&done) < 4000)
		usleep(10000);
	broker_down();
	int64_t down_at = mono_ms();
	while (mono_ms() - down_at < 3000)
		usleep(50000);
	broker_up();
	for (int t = 0; t < BR_THREADS; t++)
		pthread_join(th[t], NULL);
	int want[BR_USERS] = {0};
	long total = 0;
	for (int t = 0; t < BR_THREADS; t++)
		for (int k = 0; k < BR_USERS; k++)
			want[k] += w[t].ok[k], total += w[t].ok[k];
	ck_assert_int_eq(total, BR_THREADS * BR_PER_THREAD);
	/* read the whole topic back once; group by user */
	kreader *r = kreader_open(b.topic, 30000);
	int64_t t0 = mono_ms();
	size_t n = 0;
	while (n < (size_t)total && mono_ms() - t0 < 120000)
		n = kreader_collect(r, (size_t)total, 2000);
	kreader_collect(r, n + 1000, 2000); /* repeats, if any */
	const kmsg *m = kreader_msgs(r, &n);
	size_t repeats = n - (size_t)total;
	for (int k = 0; k < BR_USERS; k++) {
		json_t **ev = xcalloc(n, sizeof(json_t *));
		size_t c = 0;
		for (size_t i = 0; i < n; i++)
			if (m[i].key && !strcmp(m[i].key, users[k]))
				ev[c++] = json_loads(m[i].value, 0, NULL);
		assert_seq_order(ev, c, (size_t)want[k], users[k]);
		free_events(ev, c);
	}
	fprintf(stderr,
	        "broker_restart_under_10000_writes: %ld writes, %zu messages (%zu repeats)\n",
	        total, n, repeats);
	kreader_free(r);
	free(w);
	free(users);
	be_stop(&b);
}
END_TEST

/* Writes rows to a table of its own (WAL that is not the outbox's) until the
 * server ends its connection or stop is set. */
typedef struct noise {
	const char *url;
	atomic_int stop;
	long rows;
} noise;

static void *noise_run(void *arg)
{
	noise *n = arg;
	PGconn *c = PQconnectdb(n->url);
	while (PQstatus(c) == CONNECTION_OK && !atomic_load(&n->stop)) {
		PGresult *r = PQexec(c, "INSERT INTO noise VALUES (1)");
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok)
			break;
		n->rows++;
	}
	PQfinish(c);
	return NULL;
}

/* A fast shutdown of PostgreSQL is not held up by the relay. The walsender then
 * waits until the client has confirmed all it sent (other tables' WAL too),
 * asking again after each reply: the relay must answer with what it can confirm
 * now. It used to answer with the position it had last sent, which reset the
 * clock of its next update, so each shutdown under writes took 3-8 s here (none
 * took 0.2 s) and one under load went past pg_ctl's 60 s. Now 0.1-0.3 s; the
 * bound is 15 s, so a slow machine does not fail it but the old behaviour under
 * load would. */
START_TEST(fast_shutdown_not_held_by_relay)
{
	char dir[512], url[256];
	snprintf(dir, sizeof(dir), "%s/own-pg-%d", test_env("TEST_RUN_DIR"), (int)getpid());
	pgtest_cluster_start(dir, url, sizeof(url));
	PQclear(pgtest_exec(url, "CREATE TABLE noise (x int)", 0, NULL));
	backend other = {0}, b;
	snprintf(other.db, sizeof(other.db), "%s", url);
	unique_name(other.topic, sizeof(other.topic), "ba-test");
	kafka_create_topic(other.topic, 3);
	be_start_same(&b, &other, NULL);
	char user[64];
	new_user(user, sizeof(user));
	json_decref(create_task(&b, user, "before the shutdown"));
	wait_published(&b, user, 30000);
	ck_assert_msg(metric_value(&b, "outbox_leader") == 1, "the relay does not lead");

	int rounds = 3;
	for (int i = 0; i < rounds; i++) {
		noise n = {.url = url};
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, noise_run, &n), 0);
		usleep(1000000); /* writes going on, the walsender's position moving */
		int64_t t0 = mono_ms();
		int rc = pgtest_cluster_ctl(dir, "restart", "fast", 15);
		int64_t ms = mono_ms() - t0;
		atomic_store(&n.stop, 1);
		pthread_join(t, NULL);
		if (rc != 0) {
			char path[600];
			snprintf(path, sizeof(path), "%s/pg_ctl.log", dir);
			char *log = read_text_file(path);
			ck_abort_msg(
			    "pg_ctl restart -m fast under writes (%ld rows) did not end in 15 s: "
			    "%s",
			    n.rows, log);
		}
		fprintf(stderr,
		        "fast_shutdown_not_held_by_relay: restart %d under %ld rows: %lld ms\n",
		        i + 1, n.rows, (long long)ms);
		ck_assert_msg(n.rows > 0, "no writes during the restart");
	}
	/* the relay streams again after the restarts */
	json_decref(create_task(&b, user, "after the restarts"));
	wait_published(&b, user, 30000);
	be_stop(&b);
	pgtest_cluster_remove(dir);
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
	tcase_add_test(tc, broker_sigkilled_during_1000_writes);
	tcase_add_test(tc, two_processes_one_order);
	tcase_add_test(tc, writes_during_outage_then_restart);
	tcase_add_test(tc, saturation_keeps_user_order);
	tcase_add_test(tc, saturation_two_processes_keeps_user_order);
	tcase_add_test(tc, late_commit_is_published_in_order);
	tcase_add_test(tc, follower_wakes_leader);
	tcase_add_test(tc, stream_loss_repeats_little);
	tcase_add_test(tc, refused_event_is_dead_lettered);
	tcase_add_test(tc, huge_list_stalls_no_one);
	tcase_add_test(tc, leader_frozen_follower_takes_over);
	tcase_add_test(tc, broker_restart_under_10000_writes);
	suite_add_tcase(s, tc);
	TCase *pr = tcase_create("prune");
	tcase_set_tags(pr, "integration");
	tcase_set_timeout(pr, 240);
	tcase_add_test(pr, retention_prunes_old_events);
	tcase_add_test(pr, prune_backlog_keeps_streaming);
	suite_add_tcase(s, pr);
	/* on a PostgreSQL cluster of its own */
	TCase *own = tcase_create("own_cluster");
	tcase_set_tags(own, "integration");
	tcase_set_timeout(own, 240);
	tcase_add_test(own, fast_shutdown_not_held_by_relay);
	suite_add_tcase(s, own);
	return s;
}
