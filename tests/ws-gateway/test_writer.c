/* Unit tests of ws-gateway/src/writer.c: who writes a batch (the caller or a writer
 * thread) and that a socket found full is resumed, whole and in order. The sockets
 * are AF_UNIX stream pairs: the gateway's writes are plain stream writes. */
#include "../../ws-gateway/src/conn.h"
#include "../../ws-gateway/src/writer.h"
#include "suites.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Reads exactly n bytes from fd within ms; returns the bytes read. */
static size_t read_n(int fd, unsigned char *buf, size_t n, int ms)
{
	size_t got = 0;
	int64_t end = mono_ms() + ms;
	while (got < n) {
		int left = (int)(end - mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* n connections of user u1 on socket pairs: sv[0] is the gateway's end, sv[1] the
 * client's. */
typedef struct sock {
	conn *c;
	int sv[2];
} sock;

static void socks_open(sock *s, int n, writer *w)
{
	static const conn_limits lim = {.max_frames = 16, .max_bytes = 1 << 20};
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s[i].sv), 0);
		s[i].c = conn_new(NULL, s[i].sv[0], "u1", NULL, &lim, w, &st);
	}
}

/* f to every socket of s in one batch, handed over as the consumer does. */
static void socks_send(sock *s, int n, frame *f)
{
	conn_batch b = {0};
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(conn_enqueue_batch(s[i].c, f, &b), CONN_QUEUED);
	conn_batch_flush(&b);
	conn_batch_free(&b);
}

static void socks_close(sock *s, int n)
{
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(conn_detach(s[i].c), 1);
		conn_unref(s[i].c);
		close(s[i].sv[0]);
		close(s[i].sv[1]);
	}
}

START_TEST(short_batch_written_by_caller)
{
	char err[128];
	writer *w = writer_new(1, 4, err, sizeof(err));
	ck_assert_ptr_nonnull(w);
	sock s[2];
	socks_open(s, 2, w);
	frame *f = frame_new(WS_OP_TEXT, "hello", 5, 0);
	socks_send(s, 2, f);
	/* Written before conn_batch_flush returned: the bytes are there without waiting
	 * (no writer thread was handed the sockets). */
	for (int i = 0; i < 2; i++) {
		unsigned char buf[16];
		ssize_t r = recv(s[i].sv[1], buf, sizeof(buf), MSG_DONTWAIT);
		ck_assert_int_eq(r, (ssize_t)f->len);
		ck_assert(!memcmp(buf, f->data, f->len));
	}
	ck_assert_double_eq(metric_value(st.frames_delivered), 2);
	frame_unref(f);
	socks_close(s, 2);
	writer_free(w);
}
END_TEST

/* A batch longer than inline_max, and any batch with inline_max 0, goes to the
 * writer threads: delivered all the same. */
START_TEST(long_batch_goes_to_writers)
{
	for (size_t inline_max = 0; inline_max <= 2; inline_max += 2) {
		char err[128];
		writer *w = writer_new(2, inline_max, err, sizeof(err));
		ck_assert_ptr_nonnull(w);
		enum { N = 3 };
		sock s[N];
		socks_open(s, N, w);
		frame *f = frame_new(WS_OP_TEXT, "abc", 3, 0);
		socks_send(s, N, f);
		for (int i = 0; i < N; i++) {
			unsigned char buf[16];
			ck_assert_uint_eq(read_n(s[i].sv[1], buf, f->len, 5000), f->len);
			ck_assert(!memcmp(buf, f->data, f->len));
		}
		frame_unref(f);
		socks_close(s, N);
		writer_free(w);
	}
}
END_TEST

/* The caller's write never waits: a socket that is full is parked, the caller
 * returns at once, and the rest goes out, in order, once the client reads. */
START_TEST(full_socket_resumed_in_order)
{
	char err[128];
	writer *w = writer_new(1, 4, err, sizeof(err));
	ck_assert_ptr_nonnull(w);
	enum { FRAMES = 200, PAYLOAD = 4000 };
	conn_limits lim = {.max_frames = FRAMES, .max_bytes = 64 << 20};
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	conn *c = conn_new(NULL, sv[0], "u1", NULL, &lim, w, &st);
	static unsigned char payload[PAYLOAD];
	frame *fr[FRAMES];
	conn_batch b = {0};
	int64_t t0 = mono_ms();
	for (int i = 0; i < FRAMES; i++) {
		memset(payload, 'a' + i % 26, sizeof(payload));
		snprintf((char *)payload, 16, "%05d", i);
		fr[i] = frame_new(WS_OP_TEXT, payload, sizeof(payload), 0);
		ck_assert_int_eq(conn_enqueue_batch(c, fr[i], &b), CONN_QUEUED);
		conn_batch_flush(&b);
	}
	ck_assert_int_lt(mono_ms() - t0, 2000); /* 800 KB into a 4 KiB socket: not waited */
	for (int i = 0; i < FRAMES; i++) {
		unsigned char buf[PAYLOAD + 16];
		ck_assert_uint_eq(read_n(sv[1], buf, fr[i]->len, 5000), fr[i]->len);
		ck_assert_msg(!memcmp(buf, fr[i]->data, fr[i]->len), "frame %d out of order", i);
		frame_unref(fr[i]);
	}
	ck_assert_double_eq(metric_value(st.frames_delivered), FRAMES);
	conn_batch_free(&b);
	ck_assert_int_eq(conn_detach(c), 1);
	conn_unref(c);
	close(sv[0]);
	close(sv[1]);
	writer_free(w);
}
END_TEST

Suite *writer_suite(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 20);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, short_batch_written_by_caller);
	tcase_add_test(tc, long_batch_goes_to_writers);
	tcase_add_test(tc, full_socket_resumed_in_order);
	suite_add_tcase(s, tc);
	return s;
}
