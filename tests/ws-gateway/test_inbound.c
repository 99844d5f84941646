/* What a client sends to the gateway: ws-gateway/src/ws_guard.c (the frame parser
 * as a unit; the guard in the real binary against Apache Kafka): oversize frames
 * and fragmented messages refused with 1009 before their payload is read, control
 * frame and protocol errors with 1002, the inbound rate limit with 1008, IPv6. */
#include "../../ws-gateway/src/ws_guard.h"
#include "harness.h"
#include "suites.h"
#include "ws_client.h"

#include "../support/runner.h"
#include "common/util.h"

#include <civetweb.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- frames as a client writes them ---- */

/* A masked client frame header for opcode with fin and a payload of len bytes; the
 * payload that follows is not masked here (nobody reads it as text). */
static size_t client_header(unsigned char *h, int fin, int opcode, uint64_t len)
{
	size_t n = 2;
	h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[1] = (unsigned char)(0x80 | len);
	} else if (len <= 0xffff) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		n = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
		n = 10;
	}
	memset(h + n, 0x5a, 4); /* the mask */
	return n + 4;
}

/* ---- the parser ---- */

#define MAX 1000

static size_t feed(ws_parser *p, const void *b, size_t n)
{
	return ws_parser_feed(p, b, n);
}

START_TEST(parser_request_then_frames)
{
	ws_parser p;
	ws_parser_init(&p, MAX, 1);
	const char *req = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
	unsigned char buf[256], h[14];
	size_t n = strlen(req);
	memcpy(buf, req, n);
	size_t hl = client_header(h, 1, 0x1, 5);
	memcpy(buf + n, h, hl);
	memcpy(buf + n + hl, "hello", 5);
	n += hl + 5;
	ck_assert_uint_eq(feed(&p, buf, n), n); /* the request and a frame in one read */
	ck_assert_int_eq(p.verdict, GUARD_OK);
	ck_assert_int_eq(p.in_http, 0);
	/* civetweb ends headers at "\n\n" too: so does the parser */
	ws_parser_init(&p, MAX, 1);
	hl = client_header(h, 1, 0x1, MAX + 1);
	memcpy(buf, "GET / HTTP/1.0\n\n", 16);
	memcpy(buf + 16, h, hl);
	ck_assert_uint_eq(feed(&p, buf, 16 + hl), 16);
	ck_assert_int_eq(p.verdict, GUARD_TOO_LARGE);
	ck_assert_uint_eq(p.claimed, MAX + 1);
}
END_TEST

START_TEST(parser_oversize_header_never_handed_whole)
{
	unsigned char h[14];
	size_t hl = client_header(h, 1, 0x1, 300000000ull);
	ws_parser p;
	ws_parser_init(&p, MAX, 0);
	/* byte by byte: every byte but the one that completes the header passes */
	for (size_t i = 0; i + 1 < hl; i++)
		ck_assert_uint_eq(feed(&p, h + i, 1), 1);
	ck_assert_uint_eq(feed(&p, h + hl - 1, 1), 0);
	ck_assert_int_eq(p.verdict, GUARD_TOO_LARGE);
	ck_assert_uint_eq(feed(&p, "x", 1), 0); /* terminal */
	/* after a valid frame in the same read: the bytes before the header pass */
	unsigned char buf[64];
	size_t a = client_header(buf, 1, 0x1, 3);
	memcpy(buf + a, "abc", 3);
	memcpy(buf + a + 3, h, hl);
	ws_parser_init(&p, MAX, 0);
	ck_assert_uint_eq(feed(&p, buf, a + 3 + hl), a + 3);
	ck_assert_int_eq(p.verdict, GUARD_TOO_LARGE);
	/* the limit itself is allowed */
	ws_parser_init(&p, MAX, 0);
	hl = client_header(h, 1, 0x1, MAX);
	ck_assert_uint_eq(feed(&p, h, hl), hl);
	ck_assert_uint_eq(p.left, MAX);
}
END_TEST

START_TEST(parser_fragments_add_up)
{
	unsigned char h[14], buf[2048];
	ws_parser p;
	ws_parser_init(&p, MAX, 0);
	size_t hl = client_header(h, 0, 0x1, 400);
	memcpy(buf, h, hl);
	memset(buf + hl, 'a', 400);
	ck_assert_uint_eq(feed(&p, buf, hl + 400), hl + 400);
	hl = client_header(h, 1, 0x9, 4); /* a ping between fragments is allowed */
	memcpy(buf, h, hl);
	ck_assert_uint_eq(feed(&p, buf, hl + 4), hl + 4);
	hl = client_header(h, 0, 0x0, 600); /* 1000: the limit */
	memcpy(buf, h, hl);
	ck_assert_uint_eq(feed(&p, buf, hl + 600), hl + 600);
	ck_assert_int_eq(p.verdict, GUARD_OK);
	hl = client_header(h, 1, 0x0, 1); /* 1001 */
	ck_assert_uint_eq(feed(&p, h, hl), 0);
	ck_assert_int_eq(p.verdict, GUARD_TOO_LARGE);

	/* a finished message resets the sum */
	ws_parser_init(&p, MAX, 0);
	hl = client_header(h, 0, 0x1, 600);
	ck_assert_uint_eq(feed(&p, h, hl), hl);
	ck_assert_uint_eq(feed(&p, buf, 600), 600);
	hl = client_header(h, 1, 0x0, 400);
	ck_assert_uint_eq(feed(&p, h, hl), hl);
	ck_assert_uint_eq(feed(&p, buf, 400), 400);
	hl = client_header(h, 1, 0x1, 900);
	ck_assert_uint_eq(feed(&p, h, hl), hl);
	ck_assert_int_eq(p.verdict, GUARD_OK);
}
END_TEST

static guard_verdict verdict_of(const unsigned char *h, size_t n)
{
	ws_parser p;
	ws_parser_init(&p, MAX, 0);
	(void)feed(&p, h, n);
	return p.verdict;
}

START_TEST(parser_protocol_errors)
{
	unsigned char h[14];
	size_t hl = client_header(h, 1, 0x9, 126); /* ping over 125 */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_CONTROL);
	hl = client_header(h, 0, 0x9, 2); /* fragmented ping */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_CONTROL);
	hl = client_header(h, 1, 0x8, 200); /* close over 125 */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_CONTROL);
	hl = client_header(h, 1, 0x9, 125); /* the largest ping */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_OK);
	hl = client_header(h, 1, 0x1, 5);
	h[1] &= 0x7f; /* unmasked */
	ck_assert_int_eq(verdict_of(h, hl - 4), GUARD_PROTOCOL);
	hl = client_header(h, 1, 0x1, 5);
	h[0] |= 0x40; /* RSV1 without an extension */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_PROTOCOL);
	hl = client_header(h, 1, 0x3, 5); /* reserved opcode */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_PROTOCOL);
	hl = client_header(h, 1, 0x0, 5); /* continuation of nothing */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_PROTOCOL);
	hl = client_header(h, 1, 0x1, 70000);
	h[2] = 0x80; /* 64-bit length with its top bit */
	ck_assert_int_eq(verdict_of(h, hl), GUARD_PROTOCOL);
	unsigned char two[28];
	hl = client_header(two, 0, 0x1, 0);
	size_t h2 = client_header(two + hl, 1, 0x1, 0); /* new message inside one */
	ck_assert_int_eq(verdict_of(two, hl + h2), GUARD_PROTOCOL);
	ck_assert_int_eq(ws_guard_code(GUARD_TOO_LARGE), 1009);
	ck_assert_int_eq(ws_guard_code(GUARD_CONTROL), 1002);
	ck_assert_int_eq(ws_guard_code(GUARD_PROTOCOL), 1002);
}
END_TEST

/* ---- against the real gateway ---- */

static ws_client *open_at(gw_proc *g, const char *host, const char *user)
{
	char t[1024];
	int st;
	ws_target(t, sizeof(t), user);
	ws_client *c = ws_open_host(host, g->port, t, NULL, 0, &st);
	ck_assert_msg(c != NULL, "connect %s at %s: status %d", user, host, st);
	char *hello = ws_recv_text(c, 5000);
	ck_assert_msg(hello != NULL, "no connected message for %s", user);
	json_t *j = json_loads(hello, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "connected");
	json_decref(j);
	free(hello);
	return c;
}

static ws_client *open_user(gw_proc *g, const char *user)
{
	return open_at(g, "127.0.0.1", user);
}

static void expect_event(ws_client *c, const char *id)
{
	char *m = ws_recv_text(c, 15000);
	ck_assert_msg(m != NULL, "no event (close %d)", ws_close_code(c));
	json_t *j = json_loads(m, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "task_update");
	ck_assert_str_eq(json_string_value(json_object_get(j, "event_id")), id);
	json_decref(j);
	free(m);
}

static void produce_for(gw_proc *g, const char *user, char *id)
{
	char *ev = make_event(user, id, 0);
	produce(g->topic, user, ev, strlen(ev));
	free(ev);
}

static double metric_of(gw_proc *g, const char *series)
{
	char *body;
	ck_assert_int_eq(http_get(g->port, "/metrics", &body), 200);
	double v = metric_in(body, series);
	free(body);
	return v;
}

/* The peak resident set of pid in KiB (VmHWM). */
static long vm_hwm_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	long kib = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	ck_assert_int_gt(kib, 0);
	return kib;
}

/* Writes head once and then unit again and again (at most total bytes in all),
 * without blocking, while reading what the gateway sends, until it closes, the
 * socket fails or timeout_ms pass. Returns the close code received (0: none);
 * *sent: bytes the kernel took. */
static int stream_until_close(ws_client *c, const unsigned char *head, size_t head_len,
                              const unsigned char *unit, size_t unit_len, uint64_t total,
                              int timeout_ms, uint64_t *sent)
{
	int fd = ws_fd(c);
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	long long deadline = ms_now() + timeout_ms;
	uint64_t off = 0; /* bytes of the stream written */
	int sending = 1;
	*sent = 0;
	while (ms_now() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sending ? POLLOUT : 0)};
		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			char *d;
			size_t l;
			int op = ws_recv(c, 0, &d, &l);
			free(d);
			if (op == 0x8 || op == WS_RECV_ERROR)
				break;
		}
		if (sending && (p.revents & POLLOUT)) {
			const unsigned char *b;
			size_t n;
			if (off < head_len) {
				b = head + off;
				n = head_len - off;
			} else {
				size_t in = (size_t)((off - head_len) % unit_len);
				b = unit + in;
				n = unit_len - in;
			}
			if (n > total - off)
				n = (size_t)(total - off);
			ssize_t r = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (r > 0) {
				off += (uint64_t)r;
				if (off >= total)
					sending = 0;
			} else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			           errno != EINTR) {
				sending = 0; /* cut: what was sent before still reads */
			}
		}
	}
	*sent = off;
	return ws_close_code(c);
}

#define CIVETWEB_READ (16 * 1024) /* civetweb's request buffer: its largest read */

START_TEST(frame_of_300mb_refused_unread)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL); /* MAX_MESSAGE_BYTES: the default, 4096 */
	ws_client *other = open_user(&g, "u2");
	ws_client *c = open_user(&g, "u1");
	long hwm0 = vm_hwm_kib(g.pid);
	double read0 = metric_of(&g, "ws_client_bytes_read_total");

	const uint64_t claim = 300ull * 1000 * 1000;
	unsigned char head[14];
	size_t hl = client_header(head, 1, 0x1, claim);
	static unsigned char unit[64 * 1024];
	memset(unit, 'x', sizeof(unit));
	uint64_t sent;
	int code = stream_until_close(c, head, hl, unit, sizeof(unit), hl + claim, 30000, &sent);
	ck_assert_int_eq(code, 1009);
	ck_assert_str_eq(ws_close_reason(c), "message too large");

	double read = metric_of(&g, "ws_client_bytes_read_total") - read0;
	long hwm1 = vm_hwm_kib(g.pid);
	fprintf(
	    stderr,
	    "inbound: 300 MB frame: client wrote %llu bytes, gateway read %.0f, VmHWM %ld -> %ld "
	    "KiB\n",
	    (unsigned long long)sent, read, hwm0, hwm1);
	ck_assert_double_le(read, 4096 + CIVETWEB_READ + 1024);
	ck_assert_int_lt(hwm1 - hwm0, 16 * 1024);
	ck_assert_double_eq(metric_of(&g, "ws_server_closes_total{reason=\"message_too_large\"}"),
	                    1);
	ws_free(c);

	produce_for(&g, "u2", id); /* the rest of the gateway goes on */
	expect_event(other, id);
	ws_free(other);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* The close code in the server frames of an upgraded stream (after the 101's
 * headers), 0 when there is none. */
static int close_code_in(const unsigned char *b, size_t n)
{
	const unsigned char *end = memmem(b, n, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t i = (size_t)(end + 4 - b);
	while (i + 2 <= n) {
		size_t hl = 2, len = b[i + 1] & 0x7f;
		if (len == 126) {
			if (i + 4 > n)
				return 0;
			len = ((size_t)b[i + 2] << 8) | b[i + 3];
			hl = 4;
		}
		if (i + hl + len > n)
			return 0;
		if ((b[i] & 0x0f) == 0x8 && len >= 2)
			return (b[i + hl] << 8) | b[i + hl + 1];
		i += hl + len;
	}
	return 0;
}

START_TEST(oversize_header_with_the_request)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	double read0 = metric_of(&g, "ws_client_bytes_read_total");
	/* The request, the header of a 300 MB frame and some of its payload in one
	 * write: civetweb reads them together, before the upgrade. */
	char target[1024];
	ws_target(target, sizeof(target), "u1");
	static unsigned char out[8192 + 14 + 4096];
	int n = snprintf((char *)out, 8192,
	                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 target);
	ck_assert(n > 0 && n < 8192);
	size_t len = (size_t)n;
	len += client_header(out + len, 1, 0x1, 300ull * 1000 * 1000);
	memset(out + len, 'x', 4096);
	len += 4096;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(send(fd, out, len, MSG_NOSIGNAL), (ssize_t)len);
	static unsigned char in[65536];
	size_t got = 0;
	long long deadline = ms_now() + 10000;
	while (got < sizeof(in) && ms_now() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = recv(fd, in + got, sizeof(in) - got, 0);
		if (r <= 0)
			break; /* the gateway closed */
		got += (size_t)r;
	}
	close(fd);
	ck_assert_msg(got > 12 && !memcmp(in, "HTTP/1.1 101", 12), "no upgrade: %.*s", (int)got,
	              (const char *)in);
	ck_assert_int_eq(close_code_in(in, got), 1009);
	double read = metric_of(&g, "ws_client_bytes_read_total") - read0;
	fprintf(
	    stderr,
	    "inbound: 300 MB header with the request: client wrote %zu bytes, gateway read %.0f "
	    "(a /metrics request included)\n",
	    len, read);
	ck_assert_double_le(read, CIVETWEB_READ + 1024);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(fragments_adding_up_refused)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"MAX_MESSAGE_BYTES=65536", NULL};
	gw_start(&g, topic, extra);
	ws_client *c = open_user(&g, "u1");
	long hwm0 = vm_hwm_kib(g.pid);
	double read0 = metric_of(&g, "ws_client_bytes_read_total");

	enum { FRAG = 8192 };
	static unsigned char first[14 + FRAG], cont[14 + FRAG];
	size_t h1 = client_header(first, 0, 0x1, FRAG);
	memset(first + h1, 'x', FRAG);
	size_t h2 = client_header(cont, 0, 0x0, FRAG);
	memset(cont + h2, 'x', FRAG);
	uint64_t sent;
	/* 300 MB of continuations, never finished */
	int code = stream_until_close(c, first, h1 + FRAG, cont, h2 + FRAG, 300ull * 1000 * 1000,
	                              30000, &sent);
	ck_assert_int_eq(code, 1009);

	double read = metric_of(&g, "ws_client_bytes_read_total") - read0;
	long hwm1 = vm_hwm_kib(g.pid);
	fprintf(stderr,
	        "inbound: fragments of 8 KiB past 64 KiB: client wrote %llu bytes, gateway read "
	        "%.0f, VmHWM %ld -> %ld KiB\n",
	        (unsigned long long)sent, read, hwm0, hwm1);
	ck_assert_double_ge(read, 65536); /* the fragments within the limit were read */
	ck_assert_double_le(read, 65536 + CIVETWEB_READ + 1024);
	ck_assert_int_lt(hwm1 - hwm0, 16 * 1024);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* Sends raw bytes and waits for the close; returns its code. */
static int close_after(ws_client *c, const unsigned char *b, size_t n)
{
	ck_assert_int_eq(send(ws_fd(c), b, n, MSG_NOSIGNAL), (ssize_t)n);
	for (int i = 0; i < 20; i++) {
		char *d;
		size_t l;
		int op = ws_recv(c, 5000, &d, &l);
		free(d);
		if (op == 0x8 || op < 0)
			break;
	}
	return ws_close_code(c);
}

START_TEST(ping_over_125_closed_1002)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	ws_client *c = open_user(&g, "u1");
	char payload[200];
	memset(payload, 'p', sizeof(payload));
	ck_assert_int_eq(ws_send(c, 0x9, payload, sizeof(payload)), 0);
	char *d;
	size_t l;
	int op;
	while ((op = ws_recv(c, 5000, &d, &l)) != 0x8 && op >= 0) {
		ck_assert_int_ne(op, 0xa); /* never answered with an invalid pong */
		free(d);
	}
	free(d);
	ck_assert_int_eq(ws_close_code(c), 1002);
	ws_free(c);

	unsigned char h[14 + 2];
	c = open_user(&g, "u1"); /* a fragmented ping */
	size_t hl = client_header(h, 0, 0x9, 2);
	ck_assert_int_eq(close_after(c, h, hl + 2), 1002);
	ws_free(c);
	c = open_user(&g, "u1"); /* an unmasked frame */
	hl = client_header(h, 1, 0x1, 2);
	h[1] &= 0x7f;
	memcpy(h + 2, "{}", 2);
	ck_assert_int_eq(close_after(c, h, 4), 1002);
	ws_free(c);

	c = open_user(&g, "u1"); /* the largest ping is answered */
	ck_assert_int_eq(ws_send(c, 0x9, payload, 125), 0);
	ck_assert_int_eq(ws_recv(c, 5000, &d, &l), 0xa);
	ck_assert_uint_eq(l, 125);
	free(d);
	ws_free(c);
	ck_assert_double_eq(metric_of(&g, "ws_server_closes_total{reason=\"protocol_error\"}"), 3);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(rate_limit_closes_one_socket)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"CLIENT_RATE_LIMIT=5", "CLIENT_RATE_BURST=10", NULL};
	gw_start(&g, topic, extra);
	ws_client *flood = open_user(&g, "u1");
	ws_client *same = open_user(&g, "u1");
	ws_client *other = open_user(&g, "u2");
	/* Once past the limit the gateway reads no more and closes: later sends may
	 * fail (reset), what it sent before still reads. */
	int sent = 0;
	while (sent < 200 && ws_send_text(flood, "{\"type\":\"ping\"}") == 0)
		sent++;
	ck_assert_int_gt(sent, 10); /* the burst, at least, before any close */
	int pongs = 0;
	char *m;
	while ((m = ws_recv_text(flood, 5000)) != NULL) {
		pongs++;
		free(m);
	}
	ck_assert_int_eq(ws_close_code(flood), 1008);
	ck_assert_ptr_nonnull(strstr(ws_close_reason(flood), "rate limit exceeded"));
	ck_assert_ptr_nonnull(strstr(ws_close_reason(flood), "5 messages/s"));
	ck_assert_int_le(pongs, 12); /* the burst, and what refilled meanwhile */
	ws_free(flood);

	/* the others are untouched: events and their own messages */
	ws_send_text(same, "{\"type\":\"ping\"}");
	m = ws_recv_text(same, 5000);
	ck_assert_str_eq(m, "{\"type\":\"pong\"}");
	free(m);
	produce_for(&g, "u1", id);
	expect_event(same, id);
	produce_for(&g, "u2", id);
	expect_event(other, id);
	ck_assert_double_eq(metric_of(&g, "ws_server_closes_total{reason=\"rate_limited\"}"), 1);
	ws_free(same);
	ws_free(other);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(ipv6_client)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	ws_client *v4 = open_user(&g, "u1");
	if (mg_check_feature(8)) {
		/* dual stack: IPv6 clients, and IPv4 ones (as mapped addresses) */
		ws_client *v6 = open_at(&g, "::1", "u1");
		produce_for(&g, "u1", id);
		expect_event(v6, id);
		expect_event(v4, id);
		ws_free(v6);
	} else {
		/* civetweb without IPv6 (Debian 12's 1.15): the gateway listens on IPv4 only */
		char t[1024];
		int st;
		ws_target(t, sizeof(t), "u1");
		ws_client *v6 = ws_open_host("::1", g.port, t, NULL, 0, &st);
		ck_assert_ptr_null(v6);
		fprintf(stderr,
		        "inbound: civetweb %s has no IPv6: the gateway listens on IPv4 only\n",
		        mg_version());
		produce_for(&g, "u1", id);
		expect_event(v4, id);
	}
	ws_free(v4);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

Suite *inbound_suite(void)
{
	Suite *s = suite_create("inbound");
	TCase *u = tcase_create("parser");
	tcase_set_timeout(u, 10);
	tcase_add_test(u, parser_request_then_frames);
	tcase_add_test(u, parser_oversize_header_never_handed_whole);
	tcase_add_test(u, parser_fragments_add_up);
	tcase_add_test(u, parser_protocol_errors);
	suite_add_tcase(s, u);
	TCase *tc = tcase_create("inbound");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, frame_of_300mb_refused_unread);
	tcase_add_test(tc, oversize_header_with_the_request);
	tcase_add_test(tc, fragments_adding_up_refused);
	tcase_add_test(tc, ping_over_125_closed_1002);
	tcase_add_test(tc, rate_limit_closes_one_socket);
	tcase_add_test(tc, ipv6_client);
	suite_add_tcase(s, tc);
	return s;
}
