/* Integration tests of ws-gateway: the real binary, the harness's devbroker, a real
 * WebSocket client. Each test runs its own gateway on its own topic. */
#include "harness.h"

#include "../support/broker.h"
#include "../support/kafka_io.h"
#include "suites.h"
#include "ws_client.h"

#include "../support/proc.h"
#include "../support/runner.h"

#include "common/auth.h"
#include "common/util.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ws_client *open_user(gw_proc *g, const char *user)
{
	char t[1024];
	int st;
	ws_target(t, sizeof(t), user);
	ws_client *c = ws_open(g->port, t, NULL, 0, &st);
	ck_assert_msg(c != NULL, "connect %s: status %d", user, st);
	char *hello = ws_recv_text(c, 5000);
	ck_assert_ptr_nonnull(hello);
	json_t *j = json_loads(hello, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "connected");
	ck_assert_str_eq(json_string_value(json_object_get(j, "user_id")), user);
	ck_assert(uuid_valid(json_string_value(json_object_get(j, "connection_id"))));
	ck_assert(json_is_integer(json_object_get(j, "heartbeat_interval")));
	json_decref(j);
	free(hello);
	return c;
}

/* Reads the next task_update and checks its event_id (and user). */
static void expect_event(ws_client *c, const char *user, const char *id, int timeout_ms)
{
	char *m = ws_recv_text(c, timeout_ms);
	ck_assert_msg(m != NULL, "no event for %s (close %d)", user, ws_close_code(c));
	json_t *j = json_loads(m, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "task_update");
	ck_assert_str_eq(json_string_value(json_object_get(j, "user_id")), user);
	if (id)
		ck_assert_str_eq(json_string_value(json_object_get(j, "event_id")), id);
	json_decref(j);
	free(m);
}

static void expect_nothing(ws_client *c, int ms)
{
	char *m = ws_recv_text(c, ms);
	ck_assert_msg(m == NULL, "unexpected message: %s", m ? m : "");
}

static char *metrics_text(gw_proc *g)
{
	char *body;
	ck_assert_int_eq(http_get(g->port, "/metrics", &body), 200);
	return body;
}

START_TEST(isolation_and_all_sockets)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"STACK_TRIM=1", NULL}; /* exercised under ASan here */
	gw_start(&g, topic, extra);
	ws_client *a[3];
	for (int i = 0; i < 3; i++)
		a[i] = open_user(&g, "u1");
	ws_client *b = open_user(&g, "u2");

	char *ev = make_event("u1", id, 0);
	produce(topic, "u1", ev, strlen(ev));
	free(ev);
	for (int i = 0; i < 3; i++)
		expect_event(a[i], "u1", id, 5000);
	expect_nothing(b, 500);

	ev = make_event("u2", id, 0);
	produce(topic, "u2", ev, strlen(ev));
	free(ev);
	expect_event(b, "u2", id, 5000);
	for (int i = 0; i < 3; i++)
		expect_nothing(a[i], 200);
	for (int i = 0; i < 3; i++)
		ws_free(a[i]);
	ws_free(b);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(minimal_event_delivered)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	ws_client *c = open_user(&g, "u1");
	const char *ev = "{\"event_type\":\"task.created\",\"user_id\":\"u1\","
	                 "\"task\":{\"id\":\"t1\",\"title\":\"typed by hand\"}}";
	produce(topic, NULL, ev, strlen(ev)); /* no key, like kafka-console-producer */
	char *m = ws_recv_text(c, 5000);
	ck_assert_ptr_nonnull(m);
	json_t *j = json_loads(m, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "event")), "task.created");
	ck_assert(json_is_null(json_object_get(j, "seq")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "task"), "title")),
	                 "typed by hand");
	json_decref(j);
	free(m);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(malformed_events_skipped)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"MAX_EVENT_BYTES=2048", NULL};
	gw_start(&g, topic, extra);
	ws_client *c = open_user(&g, "u1");
	/* a socket for u2 too: a keyed event for a user with no socket here is skipped
	 * unparsed (kafka_events_skipped_total), so the mismatch below is only judged
	 * when someone would receive it */
	ws_client *c2 = open_user(&g, "u2");
	const char *bad[] = {
	    "this is not json",
	    "{\"event_type\":\"task.created\",\"task\":{\"id\":\"t1\",\"title\":\"x\"}}",
	    "{\"event_type\":\"task.exploded\",\"user_id\":\"u1\",\"task\":{\"id\":\"t1\"}}",
	};
	for (size_t i = 0; i < 3; i++)
		produce(topic, i == 0 ? "u1" : NULL, bad[i], strlen(bad[i]));
	char *big = make_event("u1", id, 4000); /* valid but over MAX_EVENT_BYTES */
	produce(topic, "u1", big, strlen(big));
	free(big);
	char *mis = make_event("u1", id, 0); /* key says u2, payload u1 */
	produce(topic, "u2", mis, strlen(mis));
	free(mis);
	char *good = make_event("u1", id, 0);
	produce(topic, "u1", good, strlen(good));
	free(good);
	expect_event(c, "u1", id, 5000); /* the first thing to arrive is the good one */
	expect_nothing(c, 300);
	expect_nothing(c2, 100);

	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "kafka_events_rejected_total{reason=\"not_json\"}"), 1);
	ck_assert_double_eq(metric_in(mt, "kafka_events_rejected_total{reason=\"bad_user_id\"}"),
	                    1);
	ck_assert_double_eq(metric_in(mt, "kafka_events_rejected_total{reason=\"bad_event_type\"}"),
	                    1);
	ck_assert_double_eq(metric_in(mt, "kafka_events_rejected_total{reason=\"too_large\"}"), 1);
	ck_assert_double_eq(metric_in(mt, "kafka_events_rejected_total{reason=\"key_mismatch\"}"),
	                    1);
	ck_assert_double_eq(metric_in(mt, "kafka_events_consumed_total"), 6);
	free(mt);
	ws_free(c2);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(two_gateways_each_deliver)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g1, g2;
	gw_start(&g1, topic, NULL);
	gw_start(&g2, topic, NULL);
	ws_client *c1 = open_user(&g1, "u1");
	ws_client *c2 = open_user(&g2, "u1");
	char *ev = make_event("u1", id, 0);
	produce(topic, "u1", ev, strlen(ev));
	free(ev);
	expect_event(c1, "u1", id, 5000);
	expect_event(c2, "u1", id, 5000);
	ws_free(c1);
	ws_free(c2);
	ck_assert_int_eq(gw_stop(&g1, NULL), 0);
	ck_assert_int_eq(gw_stop(&g2, NULL), 0);
}
END_TEST

START_TEST(token_and_origin_refused)
{
	char topic[64], t[1024];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"ALLOWED_ORIGINS=http://good.example,http://127.0.0.1:3000", NULL};
	gw_start(&g, topic, extra);
	int st;
	ck_assert_ptr_null(ws_open(g.port, "/ws", NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	ck_assert_ptr_null(ws_open(g.port, "/ws?token=not.a.jwt", NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	char *tok = auth_mint("some-other-secret-0123456789", "u1", 600);
	snprintf(t, sizeof(t), "/ws?token=%s", tok);
	free(tok);
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	tok = token_for("u1", -120); /* expired */
	snprintf(t, sizeof(t), "/ws?token=%s", tok);
	free(tok);
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	tok = token_for("u1", 600);
	snprintf(t, sizeof(t), "/ws/u2?token=%s", tok); /* someone else's path */
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 403);
	snprintf(t, sizeof(t), "/ws/u1?token=%s", tok);
	ck_assert_ptr_null(ws_open(g.port, t, "http://evil.example", 0, &st));
	ck_assert_int_eq(st, 403);
	snprintf(t, sizeof(t), "/ws/u1?token=%s&device_id=bad%%20device", tok);
	ck_assert_ptr_null(ws_open(g.port, t, "http://good.example", 0, &st));
	ck_assert_int_eq(st, 400);
	snprintf(t, sizeof(t), "/ws/u1?token=%s&device_id=phone-1", tok);
	ws_client *ok = ws_open(g.port, t, "http://good.example", 0, &st);
	ck_assert_msg(ok != NULL, "status %d", st);
	char *hello = ws_recv_text(ok, 5000);
	ck_assert_ptr_nonnull(strstr(hello, "\"device_id\":\"phone-1\""));
	free(hello);
	free(tok);

	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "ws_refusals_total{reason=\"unauthorized\"}"), 4);
	ck_assert_double_eq(metric_in(mt, "ws_refusals_total{reason=\"wrong_user\"}"), 1);
	ck_assert_double_eq(metric_in(mt, "ws_refusals_total{reason=\"bad_origin\"}"), 1);
	ck_assert_double_eq(metric_in(mt, "ws_connections_open"), 1);
	free(mt);
	ws_free(ok);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(connection_caps)
{
	char topic[64], t[1024];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"MAX_CONNECTIONS_PER_USER=2", "MAX_CONNECTIONS=3", NULL};
	gw_start(&g, topic, extra);
	ws_client *a = open_user(&g, "u1");
	ws_client *b = open_user(&g, "u1");
	int st;
	ws_target(t, sizeof(t), "u1");
	ws_client *c = ws_open(g.port, t, NULL, 0, &st);
	ck_assert_ptr_nonnull(c); /* upgraded, then closed with a reason */
	char *m = ws_recv_text(c, 5000);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(ws_close_code(c), 1008);
	ck_assert_ptr_nonnull(strstr(ws_close_reason(c), "too many connections"));
	ws_free(c);
	usleep(300000);
	ws_client *d = open_user(&g, "u2"); /* third socket in total */
	ws_target(t, sizeof(t), "u3");
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 503);
	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "ws_refusals_total{reason=\"user_cap\"}"), 1);
	ck_assert_double_eq(metric_in(mt, "ws_refusals_total{reason=\"total_cap\"}"), 1);
	free(mt);
	ws_free(a);
	ws_free(b);
	ws_free(d);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(heartbeat_closes_silent_client)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"HEARTBEAT_INTERVAL=1", "CLOSE_GRACE_MS=500", NULL};
	gw_start(&g, topic, extra);
	ws_client *silent = open_user(&g, "u1");
	ws_client *alive = open_user(&g, "u1");
	ws_set_auto_pong(silent, 0);
	long long t0 = ms_now();
	int got_ping = 0, closed = 0;
	while (ms_now() - t0 < 8000 && !closed) {
		char *d;
		size_t l;
		int op = ws_recv(silent, 100, &d, &l);
		if (op == 0x9)
			got_ping = 1;
		if (op == 0x8 || op == WS_RECV_ERROR)
			closed = 1;
		free(d);
		expect_nothing(alive, 1); /* answers the pings */
	}
	ck_assert(got_ping);
	ck_assert(closed);
	ck_assert_int_ge(ms_now() - t0, 1500); /* not before two intervals */
	ck_assert_int_eq(ws_send_text(alive, "{\"type\":\"ping\"}"), 0);
	char *m = ws_recv_text(alive, 3000);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m, "{\"type\":\"pong\"}");
	free(m);
	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "ws_server_closes_total{reason=\"heartbeat\"}"), 1);
	free(mt);
	ws_free(silent);
	ws_free(alive);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(stalled_client_closed_1013)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"SEND_QUEUE_MAX_FRAMES=16", "SEND_QUEUE_MAX_BYTES=131072",
	                       "WS_SNDBUF=16384", "CLOSE_GRACE_MS=20000", NULL};
	gw_start(&g, topic, extra);
	int st;
	char t[1024];
	ws_target(t, sizeof(t), "slow");
	ws_client *slow = ws_open(g.port, t, NULL, 4096, &st);
	ck_assert_ptr_nonnull(slow);
	ws_client *fast = open_user(&g, "fast");
	/* slow never reads from here on; fast must keep getting its events on time */
	long long worst = 0;
	for (int i = 0; i < 60; i++) {
		char *big = make_event("slow", id, 9000);
		produce(topic, "slow", big, strlen(big));
		free(big);
		char *ev = make_event("fast", id, 0);
		long long t0 = ms_now();
		produce(topic, "fast", ev, strlen(ev));
		free(ev);
		expect_event(fast, "fast", id, 3000);
		if (ms_now() - t0 > worst)
			worst = ms_now() - t0;
	}
	ck_assert_msg(worst < 1000, "fast client waited %lld ms", worst);
	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "ws_server_closes_total{reason=\"slow_client\"}"), 1);
	free(mt);
	/* slow reads again: what was in flight, then the close with 1013 */
	int code = 0;
	for (int i = 0; i < 1000 && !code; i++) {
		char *d;
		size_t l;
		int op = ws_recv(slow, 5000, &d, &l);
		free(d);
		if (op == 0x8)
			code = ws_close_code(slow);
		else if (op < 0)
			break;
	}
	ck_assert_int_eq(code, 1013);
	ws_free(slow);
	ws_free(fast);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(sigterm_closes_1001)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	ws_client *a = open_user(&g, "u1");
	ws_client *b = open_user(&g, "u2");
	kill(g.pid, SIGTERM);
	ck_assert_ptr_null(ws_recv_text(a, 5000));
	ck_assert_int_eq(ws_close_code(a), 1001);
	ck_assert_ptr_null(ws_recv_text(b, 5000));
	ck_assert_int_eq(ws_close_code(b), 1001);
	long ms;
	ck_assert_int_eq(gw_stop(&g, &ms), 0);
	ck_assert_int_lt(ms, 5000);
	ws_free(a);
	ws_free(b);
}
END_TEST

START_TEST(client_messages)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"MAX_MESSAGE_BYTES=256", "CLIENT_RATE_LIMIT=5",
	                       "CLIENT_RATE_BURST=10", NULL};
	gw_start(&g, topic, extra);
	ws_client *c = open_user(&g, "u1");
	ws_send_text(c, "{\"type\":\"ping\"}");
	char *m = ws_recv_text(c, 3000);
	ck_assert_str_eq(m, "{\"type\":\"pong\"}");
	free(m);
	ws_send_text(c, "{\"type\":\"hello\"}");
	m = ws_recv_text(c, 3000);
	ck_assert_ptr_nonnull(strstr(m, "\"code\":\"unknown_type\""));
	free(m);
	/* a presence subscribe without its list (tests/presence has the rest) */
	ws_send_text(c, "{\"type\":\"subscribe\"}");
	m = ws_recv_text(c, 3000);
	ck_assert_ptr_nonnull(strstr(m, "\"code\":\"invalid_message\""));
	free(m);
	ws_send_text(c, "{not json");
	m = ws_recv_text(c, 3000);
	ck_assert_ptr_nonnull(strstr(m, "\"code\":\"invalid_json\""));
	free(m);
	char deep[241]; /* nested past common/json.h's limit: refused before jansson */
	memset(deep, '[', 120);
	memset(deep + 120, ']', 120);
	deep[240] = '\0';
	ws_send_text(c, deep);
	m = ws_recv_text(c, 3000);
	ck_assert_ptr_nonnull(strstr(m, "\"code\":\"invalid_json\""));
	free(m);
	ws_send(c, 0x9, "hb", 2); /* a WebSocket ping gets a pong */
	char *d;
	size_t l;
	ck_assert_int_eq(ws_recv(c, 3000, &d, &l), 0xa);
	ck_assert_str_eq(d, "hb");
	free(d);
	ws_send_text(c, "{\"type\":\"ping\"}"); /* still open */
	m = ws_recv_text(c, 3000);
	ck_assert_str_eq(m, "{\"type\":\"pong\"}");
	free(m);

	char big[1000];
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ws_send_text(c, big);
	ck_assert_ptr_null(ws_recv_text(c, 3000));
	ck_assert_int_eq(ws_close_code(c), 1009);
	ws_free(c);

	c = open_user(&g, "u1");
	for (int i = 0; i < 40; i++)
		ws_send_text(c, "{\"type\":\"ping\"}");
	int pongs = 0;
	while ((m = ws_recv_text(c, 3000)) != NULL) {
		pongs++;
		free(m);
	}
	ck_assert_int_eq(ws_close_code(c), 1008);
	ck_assert_int_le(pongs, 12);
	ws_free(c);
	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "ws_server_closes_total{reason=\"message_too_large\"}"),
	                    1);
	ck_assert_double_eq(metric_in(mt, "ws_server_closes_total{reason=\"rate_limited\"}"), 1);
	free(mt);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(operational_endpoints)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"STATUS_TOKEN=status-token-0123456789", NULL};
	gw_start(&g, topic, extra);
	ws_client *c = open_user(&g, "u1");
	char *ev = make_event("u1", id, 0);
	produce(topic, "u1", ev, strlen(ev));
	free(ev);
	expect_event(c, "u1", id, 5000);
	char *body;
	ck_assert_int_eq(http_get(g.port, "/health", &body), 200);
	free(body);
	ck_assert_int_eq(http_get(g.port, "/ready", &body), 200);
	free(body);
	http_resp r;
	ck_assert_int_eq(http_request(g.port, "GET", "/status",
	                              "Authorization: Bearer status-token-0123456789\r\n", NULL, 0,
	                              0, &r),
	                 200);
	json_t *j = json_loads(r.body, 0, NULL);
	http_resp_free(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "service")), "ws-gateway");
	ck_assert(json_is_string(json_object_get(j, "version")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "active_users")), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(j, "connections_per_user"), "u1")),
	    1);
	json_decref(j);
	char *mt = metrics_text(&g);
	ck_assert_double_eq(metric_in(mt, "ws_connections_open"), 1);
	ck_assert_double_eq(metric_in(mt, "ws_connects_total"), 1);
	ck_assert_double_eq(metric_in(mt, "kafka_events_consumed_total"), 1);
	ck_assert_double_eq(metric_in(mt, "ws_event_delivery_seconds_count"), 1);
	ck_assert_double_eq(metric_in(mt, "ws_consumed_to_write_seconds_count"), 1);
	ck_assert_double_eq(metric_in(mt, "kafka_event_age_seconds_count"), 1);
	ck_assert_double_eq(metric_in(mt, "kafka_consumer_lag"), 0);
	ck_assert_double_ge(metric_in(mt, "ws_frames_delivered_total"), 2);
	free(mt);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* /ready is 503 until the consumer has its partitions at the end of the log: with the
 * broker down (crashed) the gateway runs (/health 200) but is not ready; once the
 * broker is back (started again on its log dirs, the gateway still waiting) it gets
 * ready by itself and delivers. */
START_TEST(ready_follows_the_consumer)
{
	char topic[64], id[UUID_STR_LEN], brokers[512], t[128], bin[1024];
	test_topic(topic, sizeof(topic));
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", topic);
	const char *env[] = {brokers,
	                     t,
	                     "JWT_SECRET=" TEST_SECRET,
	                     "LOG_LEVEL=info",
	                     "MAX_CONNECTIONS=32",
	                     "ALLOWED_ORIGINS=*",
	                     NULL};
	broker_guard(1);
	broker_kill(1);
	proc p;
	proc_start(&p, bin, NULL, env, "/health", 200);
	char *body;
	for (int i = 0; i < 10; i++) { /* two seconds of not ready */
		ck_assert_int_eq(http_get(p.port, "/ready", &body), 503);
		free(body);
		usleep(200000);
	}
	broker_start(1);
	int st = 0;
	for (long long t0 = ms_now(); ms_now() - t0 < 60000 && st != 200; usleep(100000)) {
		st = http_get(p.port, "/ready", &body);
		free(body);
	}
	ck_assert_int_eq(st, 200);
	gw_proc g = {.pid = p.pid, .port = p.port};
	ws_client *c = open_user(&g, "u1");
	char *ev = make_event("u1", id, 0);
	produce(topic, "u1", ev, strlen(ev));
	free(ev);
	expect_event(c, "u1", id, 5000);
	ws_free(c);
	ck_assert_int_eq(proc_stop(&p, NULL), 0);
}
END_TEST

/* Apache Kafka crashes (SIGKILL) and comes back on its log dirs under a gateway with
 * open sockets: the sockets stay open through it, and every event produced once
 * the broker is back reaches them, in order. */
START_TEST(broker_restart_under_open_sockets)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	ws_client *a = open_user(&g, "u1"), *b = open_user(&g, "u1");
	char *ev = make_event("u1", id, 0);
	produce(topic, "u1", ev, strlen(ev));
	free(ev);
	expect_event(a, "u1", id, 5000);
	expect_event(b, "u1", id, 5000);

	broker_guard(1);
	broker_kill(1);
	/* the sockets hear nothing, and are not closed, while the broker is gone */
	expect_nothing(a, 2000);
	ck_assert_int_eq(ws_close_code(a), 0);
	broker_start(1);

	char ids[5][UUID_STR_LEN];
	for (int i = 0; i < 5; i++) {
		ev = make_event("u1", ids[i], 0);
		produce(topic, "u1", ev, strlen(ev));
		free(ev);
	}
	for (int i = 0; i < 5; i++) {
		expect_event(a, "u1", ids[i], 30000);
		expect_event(b, "u1", ids[i], 30000);
	}
	ck_assert_int_eq(ws_close_code(a), 0);
	ck_assert_int_eq(ws_close_code(b), 0);
	ws_free(a);
	ws_free(b);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* The README's "Sending a test event by hand" pipeline, from `echo '` to the end of
 * its code block, as a caller-freed string (fails the test when it is not there). */
static char *readme_console_line(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/README.md", test_env("TASKSYNC_ROOT"));
	char *doc = read_text_file(path);
	char *sec = strstr(doc, "## Sending a test event by hand");
	ck_assert_msg(sec != NULL, "README.md has no 'Sending a test event by hand'");
	char *fence = strstr(sec, "```sh\n");
	ck_assert_msg(fence != NULL, "no ```sh block in the README's section");
	char *echo = strstr(fence, "\necho '");
	char *end = strstr(fence + 6, "\n```");
	ck_assert_msg(echo && end && echo < end, "no `echo '...' |` line in the README's block");
	char *cmd = xstrndup(echo + 1, (size_t)(end - echo - 1));
	free(doc);
	ck_assert_msg(strstr(cmd, "$KAFKA_HOME/bin/kafka-console-producer.sh") &&
	                  strstr(cmd, "parse.key=true") && strstr(cmd, "key.separator='|'"),
	              "the README's line does not use kafka-console-producer.sh with a key: %s",
	              cmd);
	return cmd;
}

/* Runs a shell pipeline with the harness's KAFKA_HOME and KAFKA_BROKERS (inherited). */
static void run_shell(const char *cmd)
{
	char log[1024];
	snprintf(log, sizeof(log), "%s/console-producer.log", test_env("TEST_RUN_DIR"));
	const char *args[] = {"-c", cmd, NULL};
	int rc = proc_run("/bin/bash", args, NULL, log, 120000);
	ck_assert_msg(rc == 0, "exit %d: %s (see %s)", rc, cmd, log);
}

/* The README's hand-typed line, exactly as written there, reaches every socket of
 * its user through Apache Kafka's console producer and nobody else's; the same
 * line with a brace missing reaches nobody, and the gateway goes on serving. */
START_TEST(console_producer_line_from_readme)
{
	char *cmd = readme_console_line();
	ck_assert_msg(strstr(cmd, "--topic task-updates"), "README's topic: %s", cmd);
	kafka_create_topic("task-updates", 3);
	gw_proc g;
	gw_start(&g, "task-updates", NULL);
	ws_client *a = open_user(&g, "u1"), *b = open_user(&g, "u1"), *o = open_user(&g, "u2");

	run_shell(cmd);
	ws_client *mine[] = {a, b};
	for (int i = 0; i < 2; i++) {
		char *m = ws_recv_text(mine[i], 15000);
		ck_assert_msg(m != NULL, "socket %d of u1 got nothing (close %d)", i,
		              ws_close_code(mine[i]));
		json_t *j = json_loads(m, 0, NULL);
		ck_assert_ptr_nonnull(j);
		ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "task_update");
		ck_assert_str_eq(json_string_value(json_object_get(j, "event")), "task.created");
		ck_assert_str_eq(json_string_value(json_object_get(j, "user_id")), "u1");
		ck_assert(json_is_null(json_object_get(j, "seq")));
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_object_get(j, "task"), "title")),
		    "Typed by hand");
		json_decref(j);
		free(m);
	}
	expect_nothing(o, 300);

	/* the same line with its last brace gone */
	char *bad = xstrdup(cmd);
	char *brace = strstr(bad, "}}'");
	ck_assert_msg(brace != NULL, "no }}' in %s", bad);
	memmove(brace, brace + 1, strlen(brace + 1) + 1);
	run_shell(bad);
	free(bad);
	double rejected = 0;
	for (long long t0 = ms_now(); ms_now() - t0 < 15000 && rejected < 1; usleep(100000)) {
		char *mt = metrics_text(&g);
		rejected = metric_in(mt, "kafka_events_rejected_total{reason=\"not_json\"}");
		free(mt);
	}
	ck_assert_msg(rejected == 1, "the malformed line was not rejected (%g)", rejected);
	expect_nothing(a, 200);
	expect_nothing(b, 200);
	expect_nothing(o, 200);

	/* still serving: the good line again reaches both sockets */
	run_shell(cmd);
	expect_event(a, "u1", NULL, 15000);
	expect_event(b, "u1", NULL, 15000);
	char *body;
	ck_assert_int_eq(http_get(g.port, "/ready", &body), 200);
	free(body);
	free(cmd);
	ws_free(a);
	ws_free(b);
	ws_free(o);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

Suite *gateway_suite(void)
{
	Suite *s = suite_create("gateway");
	TCase *tc = tcase_create("integration");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, isolation_and_all_sockets);
	tcase_add_test(tc, minimal_event_delivered);
	tcase_add_test(tc, malformed_events_skipped);
	tcase_add_test(tc, two_gateways_each_deliver);
	tcase_add_test(tc, token_and_origin_refused);
	tcase_add_test(tc, connection_caps);
	tcase_add_test(tc, heartbeat_closes_silent_client);
	tcase_add_test(tc, stalled_client_closed_1013);
	tcase_add_test(tc, sigterm_closes_1001);
	tcase_add_test(tc, client_messages);
	tcase_add_test(tc, operational_endpoints);
	tcase_add_test(tc, ready_follows_the_consumer);
	tcase_add_test(tc, console_producer_line_from_readme);
	tcase_add_test(tc, broker_restart_under_open_sockets);
	suite_add_tcase(s, tc);
	return s;
}
