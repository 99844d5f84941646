/* tickets: the single-use set, and the handshake with ?ticket= (common/auth.h),
 * ALLOW_QUERY_TOKEN=false and the socket's end at the session's expiry. */
#include "../../ws-gateway/src/tickets.h"
#include "harness.h"
#include "suites.h"
#include "ws_client.h"

#include "common/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

START_TEST(each_ticket_claimed_once)
{
	ticket_set *t = ticket_set_new();
	char id[UUID_STR_LEN];
	uuid_new(id);
	ck_assert_int_eq(ticket_set_claim(t, id, 130, 100), 1);
	ck_assert_int_eq(ticket_set_claim(t, id, 130, 100), 0);
	ck_assert_int_eq(ticket_set_claim(t, id, 130, 129), 0);
	/* many at once: the table grows, and every one is still known */
	enum { N = 5000 };
	static char ids[N][UUID_STR_LEN];
	for (int i = 0; i < N; i++) {
		uuid_new(ids[i]);
		ck_assert_int_eq(ticket_set_claim(t, ids[i], 130, 100), 1);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(ticket_set_claim(t, ids[i], 130, 101), 0);
	ck_assert_int_eq(ticket_set_claim(t, id, 130, 101), 0);
	ck_assert_uint_eq(ticket_set_size(t), N + 1);
	/* once they expire, the next rebuild forgets them: the set stays small */
	for (int i = 0; i < 3 * N; i++) {
		char fresh[UUID_STR_LEN];
		uuid_new(fresh);
		ck_assert_int_eq(ticket_set_claim(t, fresh, 200 + i, 140 + i), 1);
	}
	/* 60 unexpired at a time: the table is back to its least size, half of it in use
	 * at most between rebuilds */
	ck_assert_uint_le(ticket_set_size(t), 128);
	ck_assert_int_eq(ticket_set_claim(t, "not-a-uuid-but-far-too-long-for-the-set-01234", 1, 0),
	                 0);
	ticket_set_free(t);
}
END_TEST

static char *ticket_for(const char *user, long session_ttl)
{
	char *t = auth_mint_ticket(TEST_SECRET, user, (int64_t)time(NULL) + session_ttl);
	ck_assert_ptr_nonnull(t);
	return t;
}

/* With ALLOW_QUERY_TOKEN=false: a ticket connects once; the session token in the
 * URL, a session token passed as a ticket and a used ticket are refused (401). */
START_TEST(ticket_connects_once)
{
	char topic[64], t[1200];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"ALLOW_QUERY_TOKEN=false", NULL};
	gw_start(&g, topic, extra);
	int st;
	char *tok = token_for("u1", 600);
	snprintf(t, sizeof(t), "/ws?token=%s", tok);
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	snprintf(t, sizeof(t), "/ws?ticket=%s", tok); /* a session token is no ticket */
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	free(tok);

	char *tk = ticket_for("u1", 600);
	snprintf(t, sizeof(t), "/ws/u1?ticket=%s", tk);
	ws_client *c = ws_open(g.port, t, NULL, 0, &st);
	ck_assert_msg(c != NULL, "status %d", st);
	char *hello = ws_recv_text(c, 5000);
	ck_assert_ptr_nonnull(hello);
	ck_assert_ptr_nonnull(strstr(hello, "\"user_id\":\"u1\""));
	free(hello);
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st)); /* used */
	ck_assert_int_eq(st, 401);
	snprintf(t, sizeof(t), "/ws/u2?ticket=%s", tk); /* and not for another path either */
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 401);
	free(tk);
	/* a ticket names its user: the path must agree */
	tk = ticket_for("u1", 600);
	snprintf(t, sizeof(t), "/ws/u2?ticket=%s", tk);
	ck_assert_ptr_null(ws_open(g.port, t, NULL, 0, &st));
	ck_assert_int_eq(st, 403);
	free(tk);

	char *body;
	ck_assert_int_eq(http_get(g.port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "ws_refusals_total{reason=\"ticket_reused\"}"), 2);
	ck_assert_double_eq(metric_in(body, "ws_refusals_total{reason=\"unauthorized\"}"), 2);
	ck_assert_double_eq(metric_in(body, "ws_connections_open"), 1);
	free(body);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* A ticket is good for 30 s but the socket lives as long as the session it was
 * minted for: a session ending in 3 s closes the socket with 4001 then; one of
 * 10 minutes keeps it open past the ticket's own expiry would be too slow to test,
 * so it is checked that the socket outlives a 3 s session's. */
START_TEST(ticket_socket_ends_with_the_session)
{
	char topic[64], t[1200];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	int st;
	long long t0 = ms_now();
	char *tk = ticket_for("u1", 3);
	snprintf(t, sizeof(t), "/ws?ticket=%s", tk);
	free(tk);
	ws_client *shortlived = ws_open(g.port, t, NULL, 0, &st);
	ck_assert_msg(shortlived != NULL, "status %d", st);
	tk = ticket_for("u1", 600);
	snprintf(t, sizeof(t), "/ws?ticket=%s", tk);
	free(tk);
	ws_client *longlived = ws_open(g.port, t, NULL, 0, &st);
	ck_assert_msg(longlived != NULL, "status %d", st);
	char *m;
	while ((m = ws_recv_text(shortlived, 10000)))
		free(m); /* the hello */
	long long took = ms_now() - t0;
	ck_assert_int_eq(ws_close_code(shortlived), 4001);
	ck_assert_msg(took >= 1700 && took <= 4500, "closed after %lld ms", took);
	ck_assert_int_eq(ws_send_text(longlived, "{\"type\":\"ping\"}"), 0);
	int pong = 0;
	while (!pong && (m = ws_recv_text(longlived, 3000))) {
		pong = strcmp(m, "{\"type\":\"pong\"}") == 0;
		free(m);
	}
	ck_assert_msg(pong, "the 10-minute session's socket closed (%d)", ws_close_code(longlived));
	/* ALLOW_QUERY_TOKEN defaults to true: the hand test's ?token= still works */
	char *tok = token_for("u1", 600);
	snprintf(t, sizeof(t), "/ws?token=%s", tok);
	free(tok);
	ws_client *legacy = ws_open(g.port, t, NULL, 0, &st);
	ck_assert_msg(legacy != NULL, "status %d", st);
	ws_free(legacy);
	ws_free(shortlived);
	ws_free(longlived);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

Suite *tickets_suite(void)
{
	Suite *s = suite_create("tickets");
	TCase *tc = tcase_create("tickets");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, each_ticket_claimed_once);
	tcase_add_test(tc, ticket_connects_once);
	tcase_add_test(tc, ticket_socket_ends_with_the_session);
	suite_add_tcase(s, tc);
	return s;
}
