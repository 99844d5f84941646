/* gw-costs: what each step of ws-gateway's event path costs, in CPU microseconds
 * of one thread (CLOCK_THREAD_CPUTIME_ID, so other processes on the machine do not
 * inflate it), on a representative event (the full form kafka-load produces).
 *
 *   parse          event_parse: jansson load + validation (done once per event)
 *   message        event_ws_message: the client message through jansson (the
 *                  gateway's path before issue 16; now the fallback)
 *   splice         wsmsg_frame: the same message spliced from the event's bytes,
 *                  straight into its frame (the gateway's path now)
 *   fast           wsmsg_fast: validation and message in one pass over the event's
 *                  bytes, straight into its frame (the gateway's path since round 2:
 *                  it replaces parse + splice)
 *   frame          frame_new + frame_unref: header + payload in one buffer
 *   key probe      registry_has on a miss: the whole cost of an event for a user
 *                  with no socket here, before librdkafka's own per-message cost
 *   enqueue        conn_enqueue_batch of one frame to one socket (lock, ring, budget)
 *   send           one frame (the message's size) written with send() to each of 10
 *                  loopback TCP sockets (TCP_NODELAY, as civetweb's), read by a
 *                  thread in epoll_wait: "paced" 10 sends then 1 ms asleep (an event
 *                  to a user with 10 sockets at 1,000 events/s, the latency
 *                  scenario), "back to back" without the sleep. On loopback the
 *                  sender's thread also runs the receiving side's TCP and wakes
 *                  the reader: what a frame costs the gateway in the bench.
 *
 * N=200000 (iterations per step). One JSON line on stdout. Figures, not pass/fail. */
#include "common/config.h"
#include "common/event.h"
#include "common/util.h"

#include "../ws-gateway/src/conn.h"
#include "../ws-gateway/src/registry.h"
#include "../ws-gateway/src/wsmsg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct {
	long n;
} cfg;

static const cfg_entry table[] = {
    {"N", CFG_INT, &cfg.n, "200000", 1000, 100000000, "iterations per step"},
};

static const char EV[] =
    "{\"event_id\":\"0b6f5a0c-1c1d-4e55-9a43-3f2c1d0e9a11\",\"event_type\":\"task.updated\","
    "\"user_id\":\"bench-u42\",\"seq\":17,\"origin\":null,\"timestamp\":\"2026-12-07T00:00:"
    "00.123456Z\",\"task\":{\"id\":\"00000000-0000-4000-8000-00000000002a\",\"title\":"
    "\"bench task of bench-u42\",\"description\":\"bench-ts:1796601766687123\",\"priority\":"
    "\"medium\",\"due_at\":null,\"completed\":false,\"position\":1,\"version\":17,"
    "\"created_at\":\"2026-12-07T00:00:00.123456Z\",\"updated_at\":\"2026-12-07T00:00:00."
    "123456Z\"}}";

static int64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double per_us(int64_t t0, int64_t t1, long n)
{
	return (double)(t1 - t0) / 1e3 / (double)n;
}

enum { SOCKS = 10 };

struct reader {
	int epfd;
	atomic_int stop;
	long wakes; /* epoll_wait returns with something to read */
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	char buf[65536];
	struct epoll_event evs[SOCKS];
	while (!atomic_load(&rd->stop)) {
		int k = epoll_wait(rd->epfd, evs, SOCKS, 50);
		if (k > 0)
			rd->wakes++;
		for (int i = 0; i < k; i++)
			while (recv(evs[i].data.fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
	}
	return NULL;
}

/* CPU us per send() of len bytes over SOCKS loopback TCP sockets, paced and back to
 * back, and the reader's wake-ups per paced round of SOCKS sends. -1 on failure. */
static int send_costs(size_t len, long rounds, double *paced_us, double *b2b_us,
                      double *wakes_per_round)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, SOCKS) ||
	    getsockname(ls, (struct sockaddr *)&a, &al))
		return -1;
	struct reader rd = {.epfd = epoll_create1(0)};
	atomic_init(&rd.stop, 0);
	int tx[SOCKS], rx[SOCKS];
	for (int i = 0; i < SOCKS; i++) {
		rx[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (rx[i] < 0 || connect(rx[i], (struct sockaddr *)&a, sizeof(a)))
			return -1;
		tx[i] = accept(ls, NULL, NULL);
		if (tx[i] < 0)
			return -1;
		(void)setsockopt(tx[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = rx[i]};
		(void)epoll_ctl(rd.epfd, EPOLL_CTL_ADD, rx[i], &ev);
	}
	close(ls);
	pthread_t th;
	if (pthread_create(&th, NULL, reader_main, &rd))
		return -1;
	char *buf = calloc(1, len);
	struct timespec ms = {0, 1000000};
	int64_t spent = 0;
	long sent = 0, wakes0 = 0;
	for (long r = -rounds / 10; r < rounds; r++) { /* a tenth as warm-up */
		if (r == 0)
			spent = 0, sent = 0, wakes0 = rd.wakes;
		int64_t t0 = cpu_ns();
		for (int i = 0; i < SOCKS; i++)
			sent += send(tx[i], buf, len, MSG_DONTWAIT) == (ssize_t)len;
		spent += cpu_ns() - t0;
		nanosleep(&ms, NULL);
	}
	*paced_us = (double)spent / 1e3 / (double)(sent ? sent : 1);
	*wakes_per_round = (double)(rd.wakes - wakes0) / (double)rounds;
	int64_t t0 = cpu_ns();
	sent = 0;
	for (long r = 0; r < rounds; r++)
		for (int i = 0; i < SOCKS; i++)
			sent += send(tx[i], buf, len, MSG_DONTWAIT) == (ssize_t)len;
	*b2b_us = (double)(cpu_ns() - t0) / 1e3 / (double)(sent ? sent : 1);
	atomic_store(&rd.stop, 1);
	pthread_join(th, NULL);
	for (int i = 0; i < SOCKS; i++) {
		close(tx[i]);
		close(rx[i]);
	}
	close(rd.epfd);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		config_print_help(stdout, "gw-costs",
		                  "CPU microseconds of each step of ws-gateway's event path.",
		                  table, ARRAY_LEN(table));
		return strcmp(argv[1], "--help") ? 2 : 0;
	}
	char err[2048];
	if (config_load(table, ARRAY_LEN(table), err, sizeof(err))) {
		fprintf(stderr, "%s", err);
		return 2;
	}
	long n = cfg.n;
	size_t len = sizeof(EV) - 1;
	event ev;

	int64_t t0 = cpu_ns();
	for (long i = 0; i < n; i++) {
		if (event_parse(EV, len, &ev, err, sizeof(err))) {
			fprintf(stderr, "gw-costs: %s\n", err);
			return 1;
		}
		event_clear(&ev);
	}
	int64_t t1 = cpu_ns();
	if (event_parse(EV, len, &ev, err, sizeof(err)))
		return 1;
	size_t ml = 0;
	for (long i = 0; i < n; i++)
		free(event_ws_message(&ev, &ml));
	int64_t t2 = cpu_ns();
	char *msg = event_ws_message(&ev, &ml);
	for (long i = 0; i < n; i++)
		frame_unref(frame_new(WS_OP_TEXT, msg, ml, ev.timestamp_us));
	int64_t t3 = cpu_ns();
	for (long i = 0; i < n; i++) {
		frame *sf = wsmsg_frame(EV, len, &ev);
		if (!sf)
			return 1;
		frame_unref(sf);
	}
	int64_t t3b = cpu_ns();
	wsmsg_event we;
	for (long i = 0; i < n; i++) {
		frame *sf = wsmsg_fast(EV, len, &we);
		if (!sf) {
			fprintf(stderr, "gw-costs: wsmsg_fast did not take the event\n");
			return 1;
		}
		frame_unref(sf);
	}
	int64_t t3c = cpu_ns();

	/* 1,000 sockets of 100 users, as in the fan-out scenario; no socket I/O (the
	 * connections have none), no writer (the batch is emptied by hand). */
	registry *r = registry_new(200);
	/* bounds far above n, so the batch never flushes (there is no writer) */
	conn_limits lim = {(size_t)n * 8 + 16, (size_t)1 << 50, NULL};
	enum { USERS = 100, CONNS = 1000 };
	conn *cs[CONNS];
	for (int i = 0; i < CONNS; i++) {
		char id[32];
		snprintf(id, sizeof(id), "bench-u%d", i % USERS);
		cs[i] = conn_new(NULL, -1, id, NULL, &lim, NULL, NULL);
		if (registry_attach(r, cs[i], NULL) != REG_OK)
			return 1;
	}
	long hits = 0;
	char keys[1000][24];
	size_t klen[1000];
	for (int i = 0; i < 1000; i++)
		klen[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "nobody-%d", i);
	int64_t t4 = cpu_ns();
	for (long i = 0; i < n; i++)
		hits += registry_has(r, keys[i % 1000], klen[i % 1000]);
	int64_t t5 = cpu_ns();

	frame *f = frame_new(WS_OP_TEXT, msg, ml, 0);
	conn *one = cs[0];
	conn_batch b = {0};
	/* the first enqueue claims the scheduling token; the rest find it taken, as
	 * every event after the first of a batch does */
	int64_t t6 = cpu_ns();
	for (long i = 0; i < n; i++)
		(void)conn_enqueue_batch(one, f, &b);
	int64_t t7 = cpu_ns();
	for (size_t i = 0; i < b.n; i++)
		conn_unref(b.v[i]); /* the token's reference: nothing will write */
	free(b.v);

	double paced = -1, b2b = -1, wakes = -1;
	if (send_costs(f->len, n / 100 > 100 ? n / 100 : 100, &paced, &b2b, &wakes))
		fprintf(stderr, "gw-costs: the loopback send step could not set up its sockets\n");

	printf("{\"n\":%ld,\"event_bytes\":%zu,\"message_bytes\":%zu,\"parse_us\":%.3f,"
	       "\"message_us\":%.3f,\"splice_us\":%.3f,\"fast_us\":%.3f,\"frame_us\":%.3f,\"key_"
	       "probe_miss_us\":%.3f,"
	       "\"enqueue_us\":%.3f,\"probe_hits\":%ld,\"send_paced_us\":%.3f,\"send_back_to_"
	       "back_us\":%.3f,\"reader_wakes_per_10_sends\":%.2f}\n",
	       n, len, ml, per_us(t0, t1, n), per_us(t1, t2, n), per_us(t3, t3b, n),
	       per_us(t3b, t3c, n), per_us(t2, t3, n), per_us(t4, t5, n), per_us(t6, t7, n), hits,
	       paced, b2b, wakes);
	frame_unref(f);
	free(msg);
	event_clear(&ev);
	for (int i = 0; i < CONNS; i++)
		conn_unref(cs[i]);
	registry_free(r);
	config_free(table, ARRAY_LEN(table));
	return 0;
}
