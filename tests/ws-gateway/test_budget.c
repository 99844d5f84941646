/* Integration tests of what the gateway sends and the resources it holds: stalled and
 * trickle-reading sockets against the per-socket and total send-queue budgets and
 * the minimum drain rate, file descriptors (no dup per parked socket), the health
 * listener that WebSockets cannot starve, and the start-up capacity checks. The real
 * binary against the harness's Kafka, real sockets. */
#include "harness.h"

#include "../support/proc.h"
#include "../support/runner.h"
#include "suites.h"
#include "ws_client.h"

#include "../../ws-gateway/src/conn.h"
#include "../../ws-gateway/src/writer.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- units: the budget's accounting (no broker, no socket) ---- */

START_TEST(budget_accounting)
{
	metrics *mr = metrics_new();
	gw_stats st;
	gw_stats_init(&st, mr);
	char err[128];
	writer *w = writer_new(0, 0, err, sizeof(err)); /* no writer thread: frames stay queued */
	send_budget b;
	send_budget_init(&b, 1000);
	ck_assert_uint_eq(b.high, 875);
	ck_assert_uint_eq(b.low, 750);
	conn_limits lim = {.max_frames = 100, .max_bytes = 1 << 20, .budget = &b};
	conn *c1 = conn_new(NULL, -1, "u1", NULL, &lim, w, &st);
	conn *c2 = conn_new(NULL, -1, "u2", NULL, &lim, w, &st);
	char buf[298] = {0};
	frame *f = frame_new(WS_OP_TEXT, buf, sizeof(buf), 0); /* 302 bytes with its header */
	ck_assert_uint_eq(f->len, 302);
	ck_assert_int_eq(conn_enqueue(c1, f), CONN_QUEUED);
	ck_assert_int_eq(conn_enqueue(c1, f), CONN_QUEUED);
	ck_assert_uint_eq(send_budget_used(&b), 604);
	ck_assert_uint_eq(conn_queued_bytes(c1), 604);
	ck_assert_int_eq(send_budget_wait(&b, 0), 0); /* under the high-water mark */
	ck_assert_int_eq(conn_enqueue(c2, f), CONN_QUEUED);
	ck_assert_uint_eq(send_budget_used(&b), 906);
	ck_assert_int_eq(send_budget_wait(&b, 0), 1); /* past 7/8: the shedder is woken */
	/* a frame that would pass the limit is not queued: its socket is closed */
	ck_assert_int_eq(conn_enqueue(c2, f), CONN_OVERFLOW);
	ck_assert_uint_eq(send_budget_used(&b), 604); /* c2's queue dropped for the close */
	ck_assert_uint_eq(send_budget_peak(&b), 906);
	ck_assert_double_eq(metric_value(st.closes[CLOSE_SEND_BUDGET]), 1);
	int code;
	char reason[128];
	ck_assert_int_eq(conn_take_close_note(c2, &code, reason, sizeof(reason)), 1);
	ck_assert_int_eq(code, 1013);
	ck_assert_int_eq(conn_take_close_note(c2, &code, reason, sizeof(reason)), 0);
	/* a close drops the queue and gives its bytes back; the close frame is free */
	ck_assert_int_eq(conn_close(c1, 1001, "bye", CLOSE_SHUTDOWN), 1);
	ck_assert_uint_eq(send_budget_used(&b), 0);
	ck_assert_int_eq(conn_detach(c1), 1);
	ck_assert_int_eq(conn_detach(c2), 1);
	ck_assert_uint_eq(send_budget_used(&b), 0);
	frame_unref(f);
	conn_unref(c1);
	conn_unref(c2);
	writer_free(w);
	send_budget_destroy(&b);
	metrics_free(mr);
}
END_TEST

/* Open file descriptors of process pid (/proc/<pid>/fd). */
static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static double metric_now(int port, const char *series)
{
	char *body;
	ck_assert_int_eq(http_get(port, "/metrics", &body), 200);
	double v = metric_in(body, series);
	free(body);
	return v;
}

static double closes_1013(int port)
{
	char *body;
	ck_assert_int_eq(http_get(port, "/metrics", &body), 200);
	double v = metric_in(body, "ws_server_closes_total{reason=\"slow_client\"}") +
	           metric_in(body, "ws_server_closes_total{reason=\"send_budget\"}") +
	           metric_in(body, "ws_server_closes_total{reason=\"slow_drain\"}");
	free(body);
	return v;
}

/* Produces n events (one delivery wait for all: kafka_produce waits per message). */
static void produce_many(const char *topic, char **keys, char **payloads, size_t n)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"), e,
	                            sizeof(e)) == RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "linger.ms", "5", e, sizeof(e)) == RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "message.max.bytes", "1000000", e, sizeof(e)) ==
	          RD_KAFKA_CONF_OK);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "producer: %s", e);
	for (size_t i = 0; i < n; i++) {
		rd_kafka_resp_err_t err;
		while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
		                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
		                                RD_KAFKA_V_VALUE(payloads[i], strlen(payloads[i])),
		                                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		ck_assert_msg(!err, "produce: %s", rd_kafka_err2str(err));
	}
	ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
	rd_kafka_destroy(rk);
}

static ws_client *open_user(gw_proc *g, const char *user, int rcvbuf)
{
	char t[1024];
	int st;
	ws_target(t, sizeof(t), user);
	ws_client *c = ws_open(g->port, t, NULL, rcvbuf, &st);
	ck_assert_msg(c != NULL, "connect %s: status %d", user, st);
	char *hello = ws_recv_text(c, 10000);
	ck_assert_msg(hello != NULL, "no hello for %s", user);
	ck_assert_ptr_nonnull(strstr(hello, "\"connected\""));
	free(hello);
	return c;
}

/* Reads frames at full speed until the close frame; returns its code (0: none). */
static int drain_to_close(ws_client *c)
{
	for (int i = 0; i < 100000; i++) {
		char *d = NULL;
		size_t l;
		int op = ws_recv(c, 10000, &d, &l);
		free(d);
		if (op == 8)
			return ws_close_code(c);
		if (op < 0)
			return ws_close_code(c);
	}
	return 0;
}

#define N_SOCKETS 1000
#define N_USERS   100
#define N_STALLED 300 /* 3 of each user's 10 */
#define N_EVENTS  20  /* per user */

START_TEST(stalled_300_of_1000)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"MAX_CONNECTIONS=1100", "MAX_CONNECTIONS_PER_USER=20",
	                       /* above what a reader can be sent (20 x 2.3 KB), so a
	                        * burst faster than the writers cannot close one: the
	                        * stalled are closed by the write timeout */
	                       "SEND_QUEUE_MAX_BYTES=65536", "WS_SNDBUF=4096",
	                       "WRITE_TIMEOUT_MS=4000", "HEARTBEAT_INTERVAL=120", NULL};
	gw_start(&g, topic, extra);
	usleep(1000 * 1000); /* let librdkafka settle its connections */
	int base = count_fds(g.pid);

	ws_client **fast = calloc(N_SOCKETS, sizeof(*fast));
	ws_client **slow = calloc(N_STALLED, sizeof(*slow));
	size_t nf = 0, ns = 0;
	char user[32];
	for (int i = 0; i < N_SOCKETS; i++) {
		snprintf(user, sizeof(user), "b%d", i % N_USERS);
		if ((i / N_USERS) < 3)
			slow[ns++] = open_user(&g, user, 2048);
		else
			fast[nf++] = open_user(&g, user, 0);
	}
	ck_assert_int_eq(ns, N_STALLED);
	int open_fds = count_fds(g.pid);
	ck_assert_msg(open_fds >= base + N_SOCKETS && open_fds <= base + N_SOCKETS + 4,
	              "fds with %d sockets open: %d (baseline %d)", N_SOCKETS, open_fds, base);

	/* the stalled ones never read from here until the end */
	size_t ne = (size_t)N_USERS * N_EVENTS;
	char **keys = calloc(ne, sizeof(char *)), **evs = calloc(ne, sizeof(char *));
	for (size_t i = 0; i < ne; i++) {
		char id[UUID_STR_LEN];
		snprintf(user, sizeof(user), "b%zu", i % N_USERS);
		keys[i] = strdup(user);
		evs[i] = make_event(user, id, 2000);
	}
	long long t0 = ms_now();
	produce_many(topic, keys, evs, ne);
	for (size_t i = 0; i < ne; i++) {
		free(keys[i]);
		free(evs[i]);
	}
	free(keys);
	free(evs);

	int *got = calloc(nf, sizeof(int));
	struct pollfd *pf = calloc(nf, sizeof(*pf));
	size_t done = 0;
	int max_fds = open_fds, passes = 0;
	long long deadline = ms_now() + 60000;
	while (done < nf && ms_now() < deadline) {
		for (size_t i = 0; i < nf; i++)
			pf[i] = (struct pollfd){.fd = got[i] < N_EVENTS ? ws_fd(fast[i]) : -1,
			                        .events = POLLIN};
		(void)poll(pf, nf, 100);
		for (size_t i = 0; i < nf; i++) {
			while (got[i] < N_EVENTS && (pf[i].revents || ws_pending(fast[i]))) {
				pf[i].revents = 0;
				char *m = ws_recv_text(fast[i], 5000);
				ck_assert_msg(m != NULL,
				              "fast reader %zu: %d events, then close %d", i,
				              got[i], ws_close_code(fast[i]));
				ck_assert_ptr_nonnull(strstr(m, "\"task_update\""));
				free(m);
				if (++got[i] == N_EVENTS)
					done++;
			}
		}
		if (++passes % 10 == 0) {
			int n = count_fds(g.pid);
			if (n > max_fds)
				max_fds = n;
		}
	}
	long long t_fast = ms_now() - t0;
	ck_assert_msg(done == nf, "%zu of %zu readers got all %d events in 60 s", done, nf,
	              N_EVENTS);

	/* the stalled: each closed with 1013 (queue bound or write timeout) */
	deadline = ms_now() + 30000;
	while (closes_1013(g.port) < N_STALLED && ms_now() < deadline)
		usleep(200 * 1000);
	int n = count_fds(g.pid);
	if (n > max_fds)
		max_fds = n;
	ck_assert_double_eq(closes_1013(g.port), N_STALLED);
	ck_assert_double_eq(metric_now(g.port, "ws_server_closes_total{reason=\"write_failed\"}"),
	                    0);
	for (size_t i = 0; i < ns; i++)
		ck_assert_int_eq(drain_to_close(slow[i]), 1013);
	/* parking a blocked socket costs no descriptor */
	ck_assert_msg(max_fds <= base + N_SOCKETS + 4, "fds peaked at %d (baseline %d + %d)",
	              max_fds, base, N_SOCKETS);

	char *log = read_text_file(g.log);
	ck_assert_msg(!strstr(log, "out of file descriptors") && !strstr(log, "Too many open"),
	              "EMFILE in the gateway's log");
	free(log);
	ck_assert_double_eq(metric_now(g.port, "ws_accept_no_fd_total"), 0);

	for (size_t i = 0; i < nf; i++)
		ws_free(fast[i]);
	for (size_t i = 0; i < ns; i++)
		ws_free(slow[i]);
	deadline = ms_now() + 20000;
	int now_fds;
	while ((now_fds = count_fds(g.pid)) > base && ms_now() < deadline)
		usleep(200 * 1000);
	ck_assert_msg(now_fds <= base, "fds after the sockets closed: %d (baseline %d)", now_fds,
	              base);
	fprintf(stderr,
	        "# stalled_300_of_1000: 700 readers got %d events each in %lld ms; fds baseline "
	        "%d, %d with 1000 open, peak %d, after %d\n",
	        N_EVENTS, t_fast, base, open_fds, max_fds, now_fds);
	free(got);
	free(pf);
	free(fast);
	free(slow);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

#define N_TRICKLE  20
#define BUDGET     33554432
#define BIG_EVENTS 500

START_TEST(trickle_readers_held_to_budget)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	const char *extra[] = {"MAX_CONNECTIONS=64",
	                       "MAX_CONNECTIONS_PER_USER=30",
	                       "SEND_QUEUE_TOTAL_BYTES=33554432",
	                       "SEND_QUEUE_MAX_FRAMES=100000",
	                       "WRITE_TIMEOUT_MS=600000",
	                       "SEND_MIN_DRAIN_RATE=0",
	                       "WS_SNDBUF=16384",
	                       "HEARTBEAT_INTERVAL=600",
	                       "CLOSE_GRACE_MS=60000",
	                       NULL};
	gw_start(&g, topic, extra);
	ck_assert_double_eq(metric_now(g.port, "ws_send_queue_budget_bytes"), BUDGET);
	ws_client *t[N_TRICKLE];
	for (int i = 0; i < N_TRICKLE; i++)
		t[i] = open_user(&g, "trickle", 8192);
	ws_client *f = open_user(&g, "bystander", 0);

	/* 500 events of about 9.5 KB (a description is at most 10,000 characters) to
	 * the one user of all 20: 4.7 MB each, 95 MB queued in all without a total
	 * budget. The budget closes the largest queues first; the ones it leaves
	 * (under its low-water mark) reach their own 4 MiB bound. */
	char *keys[BIG_EVENTS], *evs[BIG_EVENTS];
	for (int i = 0; i < BIG_EVENTS; i++) {
		keys[i] = "trickle";
		evs[i] = make_event("trickle", id, 9000);
	}
	produce_many(topic, keys, evs, BIG_EVENTS);
	for (int i = 0; i < BIG_EVENTS; i++)
		free(evs[i]);

	/* each reads 1 KiB every 50 ms (20 KiB/s) while the queues fill */
	double max_seen = 0;
	long long deadline = ms_now() + 60000, next_sample = 0;
	while (closes_1013(g.port) < N_TRICKLE && ms_now() < deadline) {
		for (int i = 0; i < N_TRICKLE; i++)
			(void)ws_read_some(t[i], 1024);
		if (ms_now() >= next_sample) {
			double q = metric_now(g.port, "ws_send_queue_bytes");
			if (q > max_seen)
				max_seen = q;
			next_sample = ms_now() + 100;
		}
		usleep(50 * 1000);
	}
	ck_assert_double_eq(closes_1013(g.port), N_TRICKLE);
	double peak = metric_now(g.port, "ws_send_queue_bytes_peak");
	double shed = metric_now(g.port, "ws_server_closes_total{reason=\"send_budget\"}");
	ck_assert_msg(peak <= BUDGET && max_seen <= BUDGET, "queued peak %.0f (sampled %.0f)", peak,
	              max_seen);
	ck_assert_msg(peak > BUDGET / 2, "the budget was never approached: peak %.0f", peak);
	ck_assert_msg(shed >= 1, "no socket closed for the total budget");
	for (int i = 0; i < N_TRICKLE; i++)
		ck_assert_int_eq(drain_to_close(t[i]), 1013);

	/* the bystander is untouched and still served */
	char *ev = make_event("bystander", id, 0);
	produce(topic, "bystander", ev, strlen(ev));
	free(ev);
	char *m = ws_recv_text(f, 10000);
	ck_assert_msg(m && strstr(m, id), "bystander got no event (close %d)", ws_close_code(f));
	free(m);
	ck_assert_double_eq(metric_now(g.port, "ws_send_queue_bytes"), 0);
	fprintf(stderr,
	        "# trickle_readers_held_to_budget: peak queued %.0f of %d bytes (sampled max "
	        "%.0f); %.0f closed for the budget, %.0f for their own bound\n",
	        peak, BUDGET, max_seen, shed,
	        metric_now(g.port, "ws_server_closes_total{reason=\"slow_client\"}"));
	for (int i = 0; i < N_TRICKLE; i++)
		ws_free(t[i]);
	ws_free(f);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(trickle_below_min_drain_rate_closed)
{
	char topic[64], id[UUID_STR_LEN];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	/* a write timeout that progress resets would never fire here: only the rate */
	const char *extra[] = {"SEND_MIN_DRAIN_RATE=65536",
	                       "SEND_DRAIN_WINDOW_MS=2000",
	                       "WRITE_TIMEOUT_MS=600000",
	                       "WS_SNDBUF=16384",
	                       "HEARTBEAT_INTERVAL=600",
	                       "CLOSE_GRACE_MS=60000",
	                       NULL};
	gw_start(&g, topic, extra);
	ws_client *c = open_user(&g, "drip", 8192);
	char *keys[40], *evs[40];
	for (int i = 0; i < 40; i++) {
		keys[i] = "drip";
		evs[i] = make_event("drip", id, 9000);
	}
	produce_many(topic, keys, evs, 40);
	for (int i = 0; i < 40; i++)
		free(evs[i]);
	long long t0 = ms_now(), deadline = t0 + 30000;
	long long bytes = 0;
	/* 1 KiB every 100 ms: about 10 KiB/s, below the 64 KiB/s asked for */
	while (metric_now(g.port, "ws_server_closes_total{reason=\"slow_drain\"}") < 1 &&
	       ms_now() < deadline) {
		int r = ws_read_some(c, 1024);
		if (r > 0)
			bytes += r;
		usleep(100 * 1000);
	}
	long long took = ms_now() - t0;
	ck_assert_double_eq(metric_now(g.port, "ws_server_closes_total{reason=\"slow_drain\"}"), 1);
	ck_assert_msg(bytes > 0, "the reader took nothing: not a trickle");
	ck_assert_int_eq(drain_to_close(c), 1013);
	ck_assert_str_eq(ws_close_reason(c), "client reading too slowly");
	fprintf(stderr,
	        "# trickle_below_min_drain_rate_closed: closed %lld ms after the events, having "
	        "read %lld bytes by trickle\n",
	        took, bytes);
	ws_free(c);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

#define CAP 20

START_TEST(health_answers_with_every_worker_held)
{
	char topic[64], hp[32];
	test_topic(topic, sizeof(topic));
	int health_port = free_port();
	snprintf(hp, sizeof(hp), "HEALTH_PORT=%d", health_port);
	gw_proc g;
	const char *extra[] = {"MAX_CONNECTIONS=20", hp, NULL};
	gw_start(&g, topic, extra);
	ws_client *w[CAP];
	for (int i = 0; i < CAP; i++) {
		char u[16];
		snprintf(u, sizeof(u), "h%d", i);
		w[i] = open_user(&g, u, 0);
	}
	/* idle TCP connections take the spare threads (civetweb waits up to its
	 * request timeout, 10 s, for their request) */
	int idle[24];
	for (int i = 0; i < 24; i++)
		idle[i] = tcp_connect(g.port);
	usleep(300 * 1000);
	/* the main port is starved now: a request there gets no answer */
	int probe = tcp_connect(g.port);
	const char *req = "GET /health HTTP/1.0\r\n\r\n";
	ck_assert_int_eq(send(probe, req, strlen(req), 0), (ssize_t)strlen(req));
	struct pollfd p = {.fd = probe, .events = POLLIN};
	ck_assert_msg(poll(&p, 1, 1500) == 0,
	              "the main port answered: its threads were not all held");
	/* the health listener answers at once */
	long long t0 = ms_now();
	char *body;
	ck_assert_int_eq(http_get(health_port, "/health", &body), 200);
	free(body);
	ck_assert_int_eq(http_get(health_port, "/ready", &body), 200);
	free(body);
	ck_assert_int_eq(http_get(health_port, "/metrics", &body), 200);
	ck_assert_double_eq(metric_in(body, "ws_connections_open"), CAP);
	free(body);
	long long took = ms_now() - t0;
	ck_assert_msg(took < 3000, "the health listener took %lld ms", took);
	fprintf(stderr,
	        "# health_answers_with_every_worker_held: /health /ready /metrics in %lld ms "
	        "with %d WebSockets and 24 idle connections on the main port\n",
	        took, CAP);
	close(probe);
	for (int i = 0; i < 24; i++)
		close(idle[i]);
	for (int i = 0; i < CAP; i++)
		ws_free(w[i]);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

/* user+system CPU seconds of pid so far */
static double cpu_seconds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *t = read_text_file(path);
	char *p = strrchr(t, ')');
	ck_assert_ptr_nonnull(p);
	unsigned long ut = 0, st = 0;
	/* fields after the name: state(3) ... utime(14) stime(15) */
	int n = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	free(t);
	ck_assert_int_eq(n, 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

START_TEST(accept_out_of_fds_does_not_spin)
{
	char topic[64];
	test_topic(topic, sizeof(topic));
	gw_proc g;
	gw_start(&g, topic, NULL);
	int base = count_fds(g.pid);
	/* Lower the running gateway's open-file limit to a few above what it holds:
	 * the start-up check cannot be passed with such a limit, but a descriptor
	 * leak, another library or an operator's prlimit could bring it there. */
	struct rlimit old, low;
	ck_assert_int_eq(prlimit(g.pid, RLIMIT_NOFILE, NULL, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)base + 6;
	ck_assert_int_eq(prlimit(g.pid, RLIMIT_NOFILE, &low, NULL), 0);
	int fds[24];
	for (int i = 0; i < 24; i++)
		fds[i] = tcp_connect(g.port); /* the kernel completes the handshake */
	usleep(1500 * 1000);
	double c0 = cpu_seconds(g.pid);
	usleep(2000 * 1000);
	double busy = cpu_seconds(g.pid) - c0;
	/* the ones the gateway could not hold were reset, not left pending */
	int reset = 0;
	for (int i = 0; i < 24; i++) {
		struct pollfd p = {.fd = fds[i], .events = POLLIN};
		char b;
		if (poll(&p, 1, 0) == 1 && recv(fds[i], &b, 1, MSG_DONTWAIT) <= 0)
			reset++;
	}
	for (int i = 0; i < 24; i++)
		close(fds[i]);
	ck_assert_int_eq(prlimit(g.pid, RLIMIT_NOFILE, &old, NULL), 0);
	char *body;
	long long deadline = ms_now() + 15000;
	int st;
	while ((st = http_get(g.port, "/metrics", &body)) != 200 && ms_now() < deadline) {
		free(body);
		usleep(200 * 1000);
	}
	ck_assert_int_eq(st, 200);
	double dropped = metric_in(body, "ws_accept_no_fd_total");
	free(body);
	ck_assert_msg(busy < 0.5, "the gateway used %.2f s of CPU in 2 s with accept failing",
	              busy);
	ck_assert_msg(dropped >= 1, "no accept ran out of descriptors (%.0f)", dropped);
	ck_assert_msg(reset >= 1, "no connection was reset");
	char *log = read_text_file(g.log);
	ck_assert_ptr_nonnull(strstr(log, "out of file descriptors"));
	free(log);
	fprintf(stderr,
	        "# accept_out_of_fds_does_not_spin: limit %d, %d of 24 connections reset, %.0f "
	        "accepts shed, %.2f s CPU in 2 s\n",
	        base + 6, reset, dropped, busy);
	ck_assert_int_eq(gw_stop(&g, NULL), 0);
}
END_TEST

START_TEST(max_connections_over_nofile_refused)
{
	char bin[1024], brokers[512], port[32], logp[600];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(port, sizeof(port), "PORT=%d", free_port());
	snprintf(logp, sizeof(logp), "%s/refused-%d.log", test_env("TEST_RUN_DIR"), (int)getpid());
	const char *env[] = {
	    brokers, port, "JWT_SECRET=" TEST_SECRET, "ALLOWED_ORIGINS=*", "MAX_CONNECTIONS=100000",
	    NULL};
	int rc = proc_run(bin, NULL, env, logp, 30000);
	ck_assert_int_ne(rc, 0);
	char *log = read_text_file(logp);
	ck_assert_msg(strstr(log, "MAX_CONNECTIONS=100000 needs") && strstr(log, "RLIMIT_NOFILE"),
	              "no clear reason in the log: %s", log);
	ck_assert_ptr_nonnull(strstr(log, "set MAX_CONNECTIONS to at most"));
	ck_assert_ptr_null(strstr(log, "\"listening\""));
	free(log);
}
END_TEST

/* A memory cgroup of its own below this process's (v1 memory controller, else v2)
 * with limit bytes; its directory in dir. Fails the test when none can be made. */
static void cgroup_make(char *dir, size_t len, long long limit)
{
	char line[512], file[800];
	FILE *f = fopen("/proc/self/cgroup", "r");
	ck_assert_ptr_nonnull(f);
	dir[0] = '\0';
	const char *limit_file = "memory.max";
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *m = strstr(line, ":memory:");
		if (m) {
			snprintf(dir, len, "/sys/fs/cgroup/memory%s/tasksync-test-%d", m + 8,
			         (int)getpid());
			limit_file = "memory.limit_in_bytes";
			break;
		}
		if (!strncmp(line, "0::", 3) && !dir[0]) {
			snprintf(dir, len, "/sys/fs/cgroup%s/tasksync-test-%d", line + 3,
			         (int)getpid());
			limit_file = "memory.max";
		}
	}
	fclose(f);
	ck_assert_msg(dir[0] && mkdir(dir, 0755) == 0, "cannot make a memory cgroup %s: %s", dir,
	              strerror(errno));
	snprintf(file, sizeof(file), "%s/%s", dir, limit_file);
	FILE *l = fopen(file, "w");
	ck_assert_msg(l && fprintf(l, "%lld\n", limit) > 0 && fclose(l) == 0, "cannot set %s: %s",
	              file, strerror(errno));
}

/* Runs the gateway inside cgroup dir (the shell moves itself in, then execs it). */
static int run_in_cgroup(const char *dir, const char *max_conns, const char *logp, int timeout_ms)
{
	char bin[1024], script[2400], brokers[512], port[32], mc[64];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(script, sizeof(script), "echo $$ > '%s/cgroup.procs' && exec '%s'", dir, bin);
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(port, sizeof(port), "PORT=%d", free_port());
	snprintf(mc, sizeof(mc), "MAX_CONNECTIONS=%s", max_conns);
	const char *args[] = {"-c", script, NULL};
	const char *env[] = {brokers, port, "JWT_SECRET=" TEST_SECRET, "ALLOWED_ORIGINS=*",
	                     mc,      NULL};
	return proc_run("/bin/sh", args, env, logp, timeout_ms);
}

START_TEST(max_connections_over_memory_limit_refused)
{
	/* In a cgroup limited to 256 MiB: 5,000 sockets (about 395 MiB by the gateway's
	 * own reckoning) are refused at start with what to set; 100 start. */
	char dir[700], logp[600];
	cgroup_make(dir, sizeof(dir), 256LL << 20);
	snprintf(logp, sizeof(logp), "%s/memlimit-%d.log", test_env("TEST_RUN_DIR"), (int)getpid());
	int rc = run_in_cgroup(dir, "5000", logp, 30000);
	char *log = read_text_file(logp);
	ck_assert_msg(rc != 0, "started with MAX_CONNECTIONS=5000 under 256 MiB: %s", log);
	ck_assert_msg(strstr(log, "MAX_CONNECTIONS=5000") &&
	                  strstr(log, "memory limit is 256 MiB") &&
	                  strstr(log, "set MAX_CONNECTIONS to at most"),
	              "no clear reason in the log: %s", log);
	ck_assert_ptr_null(strstr(log, "\"listening\""));
	free(log);
	/* within the limit it starts: killed by the timeout once it listens */
	char logok[640];
	snprintf(logok, sizeof(logok), "%s.ok", logp);
	rc = run_in_cgroup(dir, "100", logok, 4000);
	log = read_text_file(logok);
	ck_assert_msg(strstr(log, "\"listening\""), "MAX_CONNECTIONS=100 did not start: %s", log);
	free(log);
	for (int i = 0; i < 50 && rmdir(dir) != 0; i++)
		usleep(100000); /* the killed process leaves the cgroup when reaped */
}
END_TEST

Suite *budget_suite(void)
{
	Suite *s = suite_create("budget");
	TCase *u = tcase_create("units");
	tcase_set_timeout(u, 10);
	tcase_add_test(u, budget_accounting);
	suite_add_tcase(s, u);
	TCase *tc = tcase_create("integration");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, stalled_300_of_1000);
	tcase_add_test(tc, trickle_readers_held_to_budget);
	tcase_add_test(tc, trickle_below_min_drain_rate_closed);
	tcase_add_test(tc, health_answers_with_every_worker_held);
	tcase_add_test(tc, accept_out_of_fds_does_not_spin);
	tcase_add_test(tc, max_connections_over_nofile_refused);
	tcase_add_test(tc, max_connections_over_memory_limit_refused);
	suite_add_tcase(s, tc);
	return s;
}
