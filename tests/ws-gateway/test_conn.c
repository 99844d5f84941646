/* Unit tests of ws-gateway/src/conn.c: frame encoding and the bounded queue. */
#include "../../ws-gateway/src/conn.h"
#include "../../ws-gateway/src/writer.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

static gw_stats st;
static metrics *mr;

static void setup(void)
{
	mr = metrics_new();
	gw_stats_init(&st, mr);
}

static void teardown(void)
{
	metrics_free(mr);
}

START_TEST(frame_headers)
{
	frame *f = frame_new(WS_OP_TEXT, "hi", 2, 0);
	ck_assert_uint_eq(f->len, 4);
	ck_assert_uint_eq(f->data[0], 0x81);
	ck_assert_uint_eq(f->data[1], 2);
	ck_assert(!memcmp(f->data + 2, "hi", 2));
	frame_unref(f);

	char *big = calloc(1, 70000);
	f = frame_new(WS_OP_TEXT, big, 300, 0);
	ck_assert_uint_eq(f->len, 304);
	ck_assert_uint_eq(f->data[1], 126);
	ck_assert_uint_eq((f->data[2] << 8) | f->data[3], 300);
	frame_unref(f);
	f = frame_new(WS_OP_BINARY, big, 70000, 0);
	ck_assert_uint_eq(f->len, 70010);
	ck_assert_uint_eq(f->data[0], 0x82);
	ck_assert_uint_eq(f->data[1], 127);
	ck_assert_uint_eq((f->data[7] << 16) | (f->data[8] << 8) | f->data[9], 70000);
	frame_unref(f);
	free(big);

	f = frame_close_new(1013, "slow");
	ck_assert_uint_eq(f->data[0], 0x88);
	ck_assert_uint_eq(f->data[1], 6);
	ck_assert_uint_eq((f->data[2] << 8) | f->data[3], 1013);
	ck_assert(!memcmp(f->data + 4, "slow", 4));
	frame_unref(f);

	char reason[300];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = 0;
	f = frame_close_new(1008, reason);
	ck_assert_uint_eq(f->data[1], 125); /* control frames carry at most 125 bytes */
	frame_unref(f);
}
END_TEST

START_TEST(queue_bound_frames)
{
	char err[128];
	writer *w = writer_new(0, 0, err, sizeof(err)); /* no writer thread: frames stay queued */
	ck_assert_ptr_nonnull(w);
	conn_limits lim = {.max_frames = 3, .max_bytes = 1 << 20};
	conn *c = conn_new(NULL, -1, "u1", NULL, &lim, w, &st);
	frame *f = frame_new(WS_OP_TEXT, "x", 1, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(conn_enqueue(c, f), CONN_QUEUED);
	ck_assert_int_eq(conn_enqueue(c, f), CONN_OVERFLOW);
	ck_assert_int_eq(conn_enqueue(c, f), CONN_CLOSING);
	ck_assert(conn_closing(c, NULL));
	ck_assert_double_eq(metric_value(st.closes[CLOSE_SLOW_CLIENT]), 1);
	ck_assert_int_eq(conn_close(c, 1001, "again", CLOSE_SHUTDOWN), 0);
	ck_assert_int_eq(conn_detach(c), 1);
	ck_assert_int_eq(conn_detach(c), 0);
	frame_unref(f);
	conn_unref(c);
	writer_free(w); /* drops the scheduled reference */
}
END_TEST

START_TEST(queue_bound_bytes)
{
	char err[128];
	writer *w = writer_new(0, 0, err, sizeof(err));
	conn_limits lim = {.max_frames = 100, .max_bytes = 1000};
	conn *c = conn_new(NULL, -1, "u1", "dev-1", &lim, w, &st);
	ck_assert_str_eq(conn_device(c), "dev-1");
	char buf[400] = {0};
	frame *f = frame_new(WS_OP_TEXT, buf, sizeof(buf), 0);
	ck_assert_int_eq(conn_enqueue(c, f), CONN_QUEUED);
	ck_assert_int_eq(conn_enqueue(c, f), CONN_QUEUED);
	ck_assert_int_eq(conn_enqueue(c, f), CONN_OVERFLOW);
	frame_unref(f);
	ck_assert_int_eq(conn_detach(c), 1);
	conn_unref(c);
	writer_free(w);
}
END_TEST

START_TEST(rate_limit)
{
	char err[128];
	writer *w = writer_new(0, 0, err, sizeof(err));
	conn_limits lim = {.max_frames = 10, .max_bytes = 1000};
	conn *c = conn_new(NULL, -1, "u1", NULL, &lim, w, &st);
	int64_t t = 1000000;
	for (int i = 0; i < 5; i++)
		ck_assert(conn_rate_ok(c, t, 2, 5));
	ck_assert(!conn_rate_ok(c, t, 2, 5));
	ck_assert(conn_rate_ok(c, t + 500000, 2, 5)); /* one token back after 0.5 s at 2/s */
	ck_assert(!conn_rate_ok(c, t + 500000, 2, 5));
	conn_unref(c);
	writer_free(w);
}
END_TEST

Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, frame_headers);
	tcase_add_test(tc, queue_bound_frames);
	tcase_add_test(tc, queue_bound_bytes);
	tcase_add_test(tc, rate_limit);
	suite_add_tcase(s, tc);
	return s;
}
