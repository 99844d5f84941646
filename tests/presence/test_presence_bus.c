/* ws-gateway/src/presence_bus.c: list presence end to end, through real ws-gateway
 * processes and the harness's Apache Kafka (issue 13). Each test starts its own
 * gateways on an event topic and a compacted presence topic of its own. */
#include "../../ws-gateway/src/presence.h"
#include "../support/kafka_io.h"
#include "../support/proc.h"
#include "../support/runner.h"
#include "../ws-gateway/harness.h"
#include "../ws-gateway/ws_client.h"
#include "common/auth.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TTL_MS 3000 /* the short TTL of these tests (heartbeat: TTL_MS / 6) */

typedef struct topics {
	char events[64];
	char presence[64];
	char env_topic[96];
	char env_ttl[48];
	char env_hb[48];
	char env_id[64];
} topics;

/* An event topic and a compacted presence topic, unique to this test. */
static void make_topics(topics *t)
{
	test_topic(t->events, sizeof(t->events));
	unique_name(t->presence, sizeof(t->presence), "presence");
	kafka_create_topic(t->presence, 3);
	kafka_set_topic_config(t->presence, "cleanup.policy", "compact");
	snprintf(t->env_topic, sizeof(t->env_topic), "PRESENCE_TOPIC=%s", t->presence);
	snprintf(t->env_ttl, sizeof(t->env_ttl), "PRESENCE_TTL_MS=%d", TTL_MS);
	snprintf(t->env_hb, sizeof(t->env_hb), "PRESENCE_HEARTBEAT_MS=%d", TTL_MS / 6);
}

/* A gateway of this test's topics; extra: one more "NAME=value" or NULL. Returns
 * once it reads the presence topic (/ready is the event consumer's only). */
static void start_gw(gw_proc *g, topics *t, const char *id, const char *extra)
{
	snprintf(t->env_id, sizeof(t->env_id), "GATEWAY_ID=%s", id);
	const char *env[] = {t->env_topic, t->env_ttl, t->env_hb, t->env_id, extra, NULL};
	gw_start(g, t->events, env);
	if (extra && !strcmp(extra, "PRESENCE_ENABLED=false"))
		return;
	long long end = ms_now() + 10000;
	for (;;) {
		char *body = NULL;
		ck_assert_int_eq(http_get(g->port, "/metrics", &body), 200);
		int ok = strstr(body, "\npresence_partitions_assigned 3\n") != NULL;
		free(body);
		if (ok)
			return;
		ck_assert_msg(ms_now() < end, "gateway %s: presence partitions not assigned", id);
		usleep(50 * 1000);
	}
}

static ws_client *open_sock(gw_proc *g, const char *user)
{
	char target[1024];
	int st;
	ws_target(target, sizeof(target), user);
	ws_client *c = ws_open(g->port, target, NULL, 0, &st);
	ck_assert_msg(c != NULL, "connect %s: status %d", user, st);
	char *hello = ws_recv_text(c, 5000);
	ck_assert_msg(hello && strstr(hello, "\"connected\""), "hello: %s", hello ? hello : "none");
	free(hello);
	return c;
}

static void send_subscribe(ws_client *c, const char *list, const char *ticket)
{
	json_t *j = json_pack("{s:s, s:s}", "type", "subscribe", "list_id", list);
	if (ticket)
		json_object_set_new(j, "ticket", json_string(ticket));
	char *m = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	ck_assert_int_eq(ws_send_text(c, m), 0);
	free(m);
}

/* Subscribes c (user's socket) to list with a fresh, valid ticket. */
static void subscribe(ws_client *c, const char *user, const char *list)
{
	char *t = auth_mint_presence(TEST_SECRET, user, list, 60);
	ck_assert_ptr_nonnull(t);
	send_subscribe(c, list, t);
	free(t);
}

static void unsubscribe(ws_client *c, const char *list)
{
	char m[128];
	snprintf(m, sizeof(m), "{\"type\":\"unsubscribe\",\"list_id\":\"%s\"}", list);
	ck_assert_int_eq(ws_send_text(c, m), 0);
}

/* user's device count in a presence message of list (-1: not such a message). */
static const char *str(json_t *j, const char *k)
{
	const char *v = json_string_value(json_object_get(j, k));
	return v ? v : "";
}

static int devices_in(const char *msg, const char *list, const char *user)
{
	json_t *j = json_loads(msg, 0, NULL);
	int n = -1;
	if (j && !strcmp(str(j, "type"), "presence") && !strcmp(str(j, "list_id"), list)) {
		n = 0;
		json_t *on = json_object_get(j, "online"), *e;
		size_t i;
		json_array_foreach(on, i, e)
		{
			if (!strcmp(str(e, "user_id"), user))
				n = (int)json_integer_value(json_object_get(e, "devices"));
		}
	}
	json_decref(j);
	return n;
}

/* Reads c until a presence message of list shows user on want devices (0: offline);
 * returns the ms it took, or -1 after timeout_ms. */
static long long wait_devices(ws_client *c, const char *list, const char *user, int want,
                              int timeout_ms)
{
	long long t0 = ms_now(), end = t0 + timeout_ms;
	for (long long now = t0; now < end; now = ms_now()) {
		char *m = ws_recv_text(c, (int)(end - now));
		if (!m)
			return -1;
		int n = devices_in(m, list, user);
		free(m);
		if (n == want)
			return ms_now() - t0;
	}
	return -1;
}

/* The next text message's "code" when it is an error (static buffer; "" else). */
static const char *next_error(ws_client *c)
{
	static char code[64];
	code[0] = '\0';
	char *m = ws_recv_text(c, 3000);
	ck_assert_msg(m != NULL, "no reply");
	json_t *j = json_loads(m, 0, NULL);
	if (j && !strcmp(str(j, "type"), "error"))
		snprintf(code, sizeof(code), "%s", str(j, "code"));
	ck_assert_msg(!strstr(m, "\"presence\""), "presence leaked: %s", m);
	json_decref(j);
	free(m);
	return code;
}

/* Reads c (skipping presence messages) until an error; its code (static buffer). */
static const char *wait_error(ws_client *c)
{
	static char code[64];
	code[0] = '\0';
	long long end = ms_now() + 3000;
	while (!code[0] && ms_now() < end) {
		char *m = ws_recv_text(c, 3000);
		ck_assert_msg(m != NULL, "no error reply");
		json_t *j = json_loads(m, 0, NULL);
		if (j && !strcmp(str(j, "type"), "error"))
			snprintf(code, sizeof(code), "%s", str(j, "code"));
		json_decref(j);
		free(m);
	}
	return code;
}

/* Reads c until it is quiet for quiet_ms; with needle, asserts no message holds it
 * (what names the leak). */
static void drain(ws_client *c, int quiet_ms, const char *needle, const char *what)
{
	char *m;
	while ((m = ws_recv_text(c, quiet_ms)) != NULL) {
		ck_assert_msg(!needle || !strstr(m, needle), "%s: %s", what, m);
		free(m);
	}
}

/* The tombstones (records without a value) of user in list on the presence topic. */
static size_t tombstones(const char *topic, const char *list, const char *user, size_t min)
{
	kreader *r = kreader_open(topic, 5000);
	ck_assert_ptr_nonnull(r);
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%s|%s|", list, user);
	size_t found = 0;
	long long end = ms_now() + 10000;
	while (found < min && ms_now() < end) {
		(void)kreader_collect(r, 1000000, 500);
		size_t n;
		const kmsg *v = kreader_msgs(r, &n);
		found = 0;
		for (size_t i = 0; i < n; i++)
			if (v[i].key && !strncmp(v[i].key, prefix, strlen(prefix)) &&
			    v[i].value_len == 0)
				found++;
	}
	kreader_free(r);
	return found;
}

/* B comes online through the other gateway, on one device, then two; closing one
 * socket and unsubscribing the other each take B down a step, with tombstones. */
START_TEST(online_across_gateways)
{
	topics t;
	make_topics(&t);
	gw_proc ga, gb;
	start_gw(&ga, &t, "gw-a", NULL);
	start_gw(&gb, &t, "gw-b", NULL);
	char list[UUID_STR_LEN], a[64], b[64];
	uuid_new(list);
	unique_name(a, sizeof(a), "alice");
	unique_name(b, sizeof(b), "bob");

	ws_client *ca = open_sock(&ga, a);
	subscribe(ca, a, list);
	/* the first message at once, with A itself in it */
	ck_assert_int_ge(wait_devices(ca, list, a, 1, 2000), 0);

	ws_client *cb1 = open_sock(&gb, b);
	subscribe(cb1, b, list);
	long long ms = wait_devices(ca, list, b, 1, 2000);
	ck_assert_msg(ms >= 0, "A did not see B online within 2 s");
	printf("presence: B online at A (other gateway) after %lld ms\n", ms);
	fflush(stdout);
	/* B's own socket sees A (from the topic) and itself */
	ck_assert_int_ge(wait_devices(cb1, list, a, 1, 2000), 0);

	ws_client *cb2 = open_sock(&gb, b);
	subscribe(cb2, b, list);
	ck_assert_msg(wait_devices(ca, list, b, 2, 2000) >= 0, "A did not see B's 2 devices");

	ws_free(cb2); /* close: a tombstone */
	ck_assert_msg(wait_devices(ca, list, b, 1, 2000) >= 0, "A did not see B's close");
	unsubscribe(cb1, list); /* unsubscribe: a tombstone */
	ck_assert_msg(wait_devices(ca, list, b, 0, 2000) >= 0, "A did not see B unsubscribe");
	ck_assert_uint_ge(tombstones(t.presence, list, b, 2), 2);

	/* B's socket gets nothing of the list after its unsubscribe: what was queued
	 * to it before is read first, then the list changes */
	drain(cb1, 500, NULL, NULL);
	ws_client *ca2 = open_sock(&ga, a);
	subscribe(ca2, a, list);
	ck_assert_int_ge(wait_devices(ca, list, a, 2, 2000), 0);
	drain(cb1, 500, "\"presence\"", "presence after unsubscribe");
	ws_free(ca2);
	ws_free(cb1);
	ws_free(ca);
	ck_assert_int_eq(gw_stop(&gb, NULL), 0);
	ck_assert_int_eq(gw_stop(&ga, NULL), 0);
}
END_TEST

/* A member removed from a list (the backend's list.unshared event for B reaches B's
 * sockets) learns nothing more of the list's presence: the gateway ends B's
 * subscriptions to it at once (tombstones: A sees B go offline there), while B's
 * subscription to another list stays. */
START_TEST(removed_member_learns_nothing_more)
{
	topics t;
	make_topics(&t);
	gw_proc ga, gb;
	start_gw(&ga, &t, "gw-a", NULL);
	start_gw(&gb, &t, "gw-b", NULL);
	char list[UUID_STR_LEN], other[UUID_STR_LEN], a[64], b[64];
	uuid_new(list);
	uuid_new(other);
	unique_name(a, sizeof(a), "alice");
	unique_name(b, sizeof(b), "bob");
	ws_client *ca = open_sock(&ga, a);
	subscribe(ca, a, list);
	ck_assert_int_ge(wait_devices(ca, list, a, 1, 2000), 0);
	ws_client *cb = open_sock(&gb, b);
	subscribe(cb, b, list);
	subscribe(cb, b, other);
	ck_assert_msg(wait_devices(ca, list, b, 1, 2000) >= 0, "A did not see B online");

	char ev[1024];
	int n = snprintf(ev, sizeof(ev),
	                 "{\"event_id\":\"2e1a4c73-5c9f-4b20-9d4e-8f3a0b6c4d59\",\"event_type\":"
	                 "\"list.unshared\",\"user_id\":\"%s\",\"seq\":9,\"origin\":null,"
	                 "\"timestamp\":\"2026-12-06T10:05:00.000Z\",\"list_id\":\"%s\",\"actor\":"
	                 "\"%s\",\"list\":{\"id\":\"%s\",\"name\":\"Groceries\"}}",
	                 b, list, a, list);
	produce(t.events, b, ev, (size_t)n);
	/* B's socket gets the event; A sees B leave the list's presence */
	long long end = ms_now() + 5000;
	int got = 0;
	while (!got && ms_now() < end) {
		char *m = ws_recv_text(cb, 500);
		got = m && strstr(m, "\"list.unshared\"");
		free(m);
	}
	ck_assert_msg(got, "B's socket did not get list.unshared");
	long long ms = wait_devices(ca, list, b, 0, 3000);
	ck_assert_msg(ms >= 0, "A still sees B online in the list B left");
	printf("presence: B's subscription ended %lld ms after its list.unshared\n", ms);
	fflush(stdout);
	ck_assert_uint_ge(tombstones(t.presence, list, b, 1), 1);

	/* A second device of A changes the list's presence: B hears nothing of it */
	drain(cb, 300, NULL, NULL);
	ws_client *ca2 = open_sock(&ga, a);
	subscribe(ca2, a, list);
	ck_assert_int_ge(wait_devices(ca, list, a, 2, 2000), 0);
	drain(cb, 500, list, "B learned of the list it left");
	/* B's other subscription stays: B still online there for a newcomer */
	ws_client *ca3 = open_sock(&ga, a);
	subscribe(ca3, a, other);
	ck_assert_msg(wait_devices(ca3, other, b, 1, 2000) >= 0, "B's other subscription ended");
	ws_free(ca3);
	ws_free(ca2);
	ws_free(cb);
	ws_free(ca);
	ck_assert_int_eq(gw_stop(&gb, NULL), 0);
	ck_assert_int_eq(gw_stop(&ga, NULL), 0);
}
END_TEST

/* The heartbeat keeps B online past the TTL; B's gateway SIGKILLed (no tombstone):
 * A sees B offline within the TTL. */
START_TEST(killed_gateway_expires)
{
	topics t;
	make_topics(&t);
	gw_proc ga, gb;
	start_gw(&ga, &t, "gw-a", NULL);
	start_gw(&gb, &t, "gw-b", NULL);
	char list[UUID_STR_LEN], a[64], b[64];
	uuid_new(list);
	unique_name(a, sizeof(a), "alice");
	unique_name(b, sizeof(b), "bob");
	ws_client *ca = open_sock(&ga, a);
	subscribe(ca, a, list);
	ws_client *cb = open_sock(&gb, b);
	subscribe(cb, b, list);
	ck_assert_msg(wait_devices(ca, list, b, 1, 2000) >= 0, "A did not see B online");

	/* two TTLs later B is still online: a new subscriber at A's gateway sees it */
	usleep(2 * TTL_MS * 1000);
	ws_client *ca2 = open_sock(&ga, a);
	subscribe(ca2, a, list);
	char *m = ws_recv_text(ca2, 2000);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(devices_in(m, list, b) == 1, "B gone after 2 TTLs despite heartbeats: %s", m);
	free(m);

	proc p = {.pid = gb.pid, .port = gb.port};
	long long t0 = ms_now();
	proc_kill(&p);
	gb.pid = 0;
	long long ms = wait_devices(ca, list, b, 0, TTL_MS + 3000);
	ck_assert_msg(ms >= 0, "B still online %d ms after its gateway was killed", TTL_MS + 3000);
	ms = ms_now() - t0;
	printf("presence: B offline %lld ms after SIGKILL of its gateway (TTL %d ms)\n", ms,
	       TTL_MS);
	fflush(stdout);
	/* expiry runs every second and the last heartbeat was at most TTL/6 before */
	ck_assert_int_le(ms, TTL_MS + 1500);
	ws_free(cb);
	ws_free(ca2);
	ws_free(ca);
	ck_assert_int_eq(gw_stop(&ga, NULL), 0);
}
END_TEST

/* Without a valid ticket of one's own for that list, nothing of the list. */
START_TEST(non_member_learns_nothing)
{
	topics t;
	make_topics(&t);
	gw_proc ga;
	start_gw(&ga, &t, "gw-a", "PRESENCE_MAX_LISTS=2");
	char list[UUID_STR_LEN], other[UUID_STR_LEN], a[64], c[64];
	uuid_new(list);
	uuid_new(other);
	unique_name(a, sizeof(a), "alice");
	unique_name(c, sizeof(c), "carol");
	ws_client *ca = open_sock(&ga, a);
	subscribe(ca, a, list);
	ck_assert_int_ge(wait_devices(ca, list, a, 1, 2000), 0);

	ws_client *cc = open_sock(&ga, c);
	send_subscribe(cc, list, NULL); /* no ticket */
	ck_assert_str_eq(next_error(cc), "forbidden");
	send_subscribe(cc, list, ""); /* an empty one */
	ck_assert_str_eq(next_error(cc), "forbidden");
	char *tk = auth_mint_presence(TEST_SECRET, c, other, 60); /* another list's */
	send_subscribe(cc, list, tk);
	free(tk);
	ck_assert_str_eq(next_error(cc), "forbidden");
	tk = auth_mint_presence("another-secret-0123456789", c, list, 60); /* forged */
	send_subscribe(cc, list, tk);
	free(tk);
	ck_assert_str_eq(next_error(cc), "forbidden");
	tk = auth_mint_presence(TEST_SECRET, a, list, 60); /* another user's */
	send_subscribe(cc, list, tk);
	free(tk);
	ck_assert_str_eq(next_error(cc), "forbidden");
	tk = auth_mint_presence(TEST_SECRET, c, list, -10); /* expired */
	send_subscribe(cc, list, tk);
	free(tk);
	ck_assert_str_eq(next_error(cc), "forbidden");
	tk = token_for(c, 600); /* a session token is not a presence ticket */
	send_subscribe(cc, list, tk);
	free(tk);
	ck_assert_str_eq(next_error(cc), "forbidden");

	/* the list changes (A on a second device): C still hears nothing of it */
	ws_client *ca2 = open_sock(&ga, a);
	subscribe(ca2, a, list);
	ck_assert_int_ge(wait_devices(ca, list, a, 2, 2000), 0);
	drain(cc, 700, list, "the list leaked to a non-member");

	/* PRESENCE_MAX_LISTS=2: a third list is refused */
	char l3[UUID_STR_LEN];
	uuid_new(l3);
	subscribe(ca2, a, other);
	ck_assert_int_ge(wait_devices(ca2, other, a, 1, 2000), 0);
	subscribe(ca2, a, l3);
	ck_assert_str_eq(wait_error(ca2), "too_many_subscriptions");
	ws_free(ca2);
	ws_free(cc);
	ws_free(ca);
	ck_assert_int_eq(gw_stop(&ga, NULL), 0);
}
END_TEST

/* A gateway started later reads the whole view from the topic. */
START_TEST(late_gateway_reads_view)
{
	topics t;
	make_topics(&t);
	gw_proc ga, gc;
	start_gw(&ga, &t, "gw-a", NULL);
	char list[UUID_STR_LEN], a[64], b[64];
	uuid_new(list);
	unique_name(a, sizeof(a), "alice");
	unique_name(b, sizeof(b), "bob");
	ws_client *cb = open_sock(&ga, b);
	subscribe(cb, b, list);
	ck_assert_int_ge(wait_devices(cb, list, b, 1, 2000), 0);
	usleep(500 * 1000); /* B's record on the topic */

	start_gw(&gc, &t, "gw-c", NULL);
	ws_client *ca = open_sock(&gc, a);
	subscribe(ca, a, list);
	long long ms = wait_devices(ca, list, b, 1, 3000);
	ck_assert_msg(ms >= 0, "the new gateway did not learn B's presence from the topic");
	ws_free(ca);
	ws_free(cb);
	ck_assert_int_eq(gw_stop(&gc, NULL), 0);
	ck_assert_int_eq(gw_stop(&ga, NULL), 0);
}
END_TEST

/* PRESENCE_ENABLED=false: subscribe is answered presence_off. */
START_TEST(presence_off)
{
	topics t;
	make_topics(&t);
	gw_proc ga;
	start_gw(&ga, &t, "gw-a", "PRESENCE_ENABLED=false");
	char list[UUID_STR_LEN], a[64];
	uuid_new(list);
	unique_name(a, sizeof(a), "alice");
	ws_client *ca = open_sock(&ga, a);
	subscribe(ca, a, list);
	ck_assert_str_eq(next_error(ca), "presence_off");
	ws_free(ca);
	ck_assert_int_eq(gw_stop(&ga, NULL), 0);
}
END_TEST

static Suite *presence_bus_suite(void)
{
	Suite *s = suite_create("presence_bus");
	TCase *tc = tcase_create("gateways");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, online_across_gateways);
	tcase_add_test(tc, killed_gateway_expires);
	tcase_add_test(tc, removed_member_learns_nothing_more);
	tcase_add_test(tc, non_member_learns_nothing);
	tcase_add_test(tc, late_gateway_reads_view);
	tcase_add_test(tc, presence_off);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *s[] = {presence_bus_suite()};
	return run_suites("test-presence-bus", s, 1);
}
