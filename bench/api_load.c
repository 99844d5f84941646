/* api-load: an epoll HTTP/1.1 keep-alive load client for backend-api. CONNECTIONS
 * sockets, one request in flight on each, POST /api/v1/tasks with a Bearer token of
 * one of USERS users (minted with JWT_SECRET).
 *
 * MODE=saturation  every connection sends its next request as soon as the previous
 *                  answer is in: the writes/s the service sustains.
 * MODE=rate        open loop at RATE requests/s: request i is due at t0 + i/RATE and
 *                  its latency runs from when it was due (so a stalled service is not
 *                  hidden by a client that waits: no coordinated omission).
 *
 * With KAFKA_BROKERS set, a consumer thread reads KAFKA_TOPIC from the end (all
 * partitions assigned at their high watermarks before the first request) and, for
 * each event of this run, measures consume time minus the event's "timestamp" (the
 * time the backend stamps on the event, millisecond precision) and consume time
 * minus the time the client received the 201. Each POST carries a client-generated
 * id whose last group is the request number, so events map back to requests.
 * The result is one JSON line on stdout. */
#include "bench_hist.h"

#include "common/auth.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
	char *host, *secret, *mode, *prefix, *brokers, *topic, *list_id;
	long port, conns, users, rate, duration_s, warmup_s, max_requests, drain_s;
	int level;
} cfg;

static const cfg_entry table[] = {
    {"API_HOST", CFG_STR, &cfg.host, "127.0.0.1", 0, 64, "backend-api IPv4 address"},
    {"API_PORT", CFG_INT, &cfg.port, "8000", 1, 65535, "backend-api port"},
    {"JWT_SECRET", CFG_SECRET, &cfg.secret, NULL, 16, 4096, "the backend's JWT_SECRET"},
    {"MODE", CFG_STR, &cfg.mode, "saturation", 0, 16, "saturation | rate"},
    {"CONNECTIONS", CFG_INT, &cfg.conns, "32", 1, 4096, "keep-alive connections"},
    {"USERS", CFG_INT, &cfg.users, "100", 1, 1000000, "users; request i is user i % USERS"},
    {"USER_PREFIX", CFG_STR, &cfg.prefix, "bench-u", 0, 64, "user ids are PREFIX<n>"},
    {"RATE", CFG_INT, &cfg.rate, "1000", 1, 1000000, "rate mode: requests per second"},
    {"DURATION_S", CFG_INT, &cfg.duration_s, "10", 1, 3600, "length of the run"},
    {"WARMUP_S", CFG_INT, &cfg.warmup_s, "1", 0, 600,
     "first seconds not counted in latency and throughput"},
    {"MAX_REQUESTS", CFG_INT, &cfg.max_requests, "1000000", 1, 100000000, "bound on requests sent"},
    {"KAFKA_BROKERS", CFG_STR, &cfg.brokers, "", 0, 1024,
     "measure commit-to-topic from these brokers (empty: skip)"},
    {"KAFKA_TOPIC", CFG_STR, &cfg.topic, "task-updates", 1, 249, "topic of task events"},
    {"DRAIN_S", CFG_INT, &cfg.drain_s, "10", 1, 600,
     "after the run, wait at most this long for the last events"},
    {"LIST_ID", CFG_STR, &cfg.list_id, "", 0, 36,
     "write into this list (shared lists; \"default\": the user's default list); each "
     "task's description carries the send time (bench-ts:<wall us>) for ws-load"},
    {"LOG_LEVEL", CFG_LEVEL, &cfg.level, "info", 0, 0, "stderr log level"},
};

typedef enum { C_DOWN = 0, C_CONNECTING, C_IDLE, C_BUSY } cst;

typedef struct hconn {
	int fd;
	cst st;
	long req;        /* request in flight */
	int64_t t_sched; /* mono us the request was due (rate) or sent (saturation) */
	char out[2048];
	size_t outlen, outoff;
	char in[16384];
	size_t inlen;
} hconn;

static hconn *conns;
static char **tokens;
static int epfd;
static unsigned run_tag;
static volatile sig_atomic_t stop_flag;
static int64_t *resp_wall; /* per request: wall us of its 2xx answer, 0 until then */
static volatile int load_done;

static struct {
	long sent, answered, ok, reconnects, conn_errors, bad_responses;
	long status[600];
	long measured_ok;
	int64_t t_measure_start, t_measure_end;
	bhist *lat;
} R;

static struct {
	long events, ours, foreign, unparsable;
	long seq_breaks;   /* a user's event whose seq is not the previous one + 1 */
	int64_t *last_seq; /* per user index: the last seq read (0: none yet) */
	bhist *commit_topic, *resp_topic;
} K;

/* Per-user order on the topic: after a user's first event here, each next one must
 * carry seq + 1 (a gap, a repeat or a step back is counted). */
static void check_seq(const char *user, json_int_t seq)
{
	size_t n = strlen(cfg.prefix);
	char *end;
	if (strncmp(user, cfg.prefix, n) != 0)
		return;
	long u = strtol(user + n, &end, 10);
	if (*end || u < 0 || u >= cfg.users)
		return;
	if (K.last_seq[u] && seq != K.last_seq[u] + 1)
		K.seq_breaks++;
	K.last_seq[u] = seq;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- topic consumer ---- */

/* @locality consumer thread. */
static void on_event_msg(const rd_kafka_message_t *m, int64_t now_wall)
{
	K.events++;
	json_error_t je;
	json_t *root = json_loadb(m->payload, m->len, 0, &je);
	const char *ts = NULL, *id = NULL, *user = NULL;
	json_int_t seq = 0;
	if (root && json_unpack(root, "{s:s, s:s, s:I, s:{s:s}}", "timestamp", &ts, "user_id",
	                        &user, "seq", &seq, "task", "id", &id) == 0) {
		check_seq(user, seq);
		unsigned tag = 0;
		unsigned long long idx = 0;
		int64_t t_us;
		if (sscanf(id, "%8x-0000-4000-8000-%12llx", &tag, &idx) == 2 && tag == run_tag &&
		    idx < (unsigned long long)cfg.max_requests) {
			K.ours++;
			if (time_parse_iso8601(ts, &t_us) == 0)
				bhist_add(K.commit_topic, now_wall - t_us);
			int64_t r = __atomic_load_n(&resp_wall[idx], __ATOMIC_ACQUIRE);
			if (r)
				bhist_add(K.resp_topic, now_wall - r);
		} else {
			K.foreign++;
		}
	} else {
		K.unparsable++;
	}
	json_decref(root);
}

static rd_kafka_t *consumer_new(void)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *kv[][2] = {
	    {"bootstrap.servers", cfg.brokers}, {"group.id", "api-load-bench"},
	    {"enable.auto.commit", "false"},    {"fetch.wait.max.ms", "1"},
	    {"fetch.error.backoff.ms", "10"},
	};
	for (size_t i = 0; i < ARRAY_LEN(kv); i++)
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK) {
			log_error("bad consumer setting", "{s:s, s:s}", "key", kv[i][0], "err",
			          err);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		log_error("could not create consumer", "{s:s}", "err", err);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, cfg.topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
	rd_kafka_topic_destroy(t);
	if (e || md->topic_cnt != 1 || md->topics[0].err) {
		log_error("no metadata for topic", "{s:s, s:s}", "topic", cfg.topic, "err",
		          rd_kafka_err2str(e               ? e
		                           : md->topic_cnt ? md->topics[0].err
		                                           : e));
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_destroy(rk);
		return NULL;
	}
	int np = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	/* Explicit high watermarks, not OFFSET_END: OFFSET_END resolves lazily and
	 * could skip the first events of the run. */
	rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(np);
	for (int p = 0; p < np; p++) {
		int64_t lo = 0, hi = 0;
		e = rd_kafka_query_watermark_offsets(rk, cfg.topic, p, &lo, &hi, 10000);
		if (e) {
			log_error("no watermarks", "{s:i, s:s}", "partition", p, "err",
			          rd_kafka_err2str(e));
			rd_kafka_topic_partition_list_destroy(pl);
			rd_kafka_destroy(rk);
			return NULL;
		}
		rd_kafka_topic_partition_list_add(pl, cfg.topic, p)->offset = hi;
	}
	e = rd_kafka_assign(rk, pl);
	rd_kafka_topic_partition_list_destroy(pl);
	if (e) {
		log_error("assign failed", "{s:s}", "err", rd_kafka_err2str(e));
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

/* @locality consumer thread. Runs until the load is over and every answered
 * request's event came (or DRAIN_S passed). */
static void *consumer_main(void *arg)
{
	rd_kafka_t *rk = arg;
	int64_t drain_deadline = 0;
	while (!stop_flag) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 5);
		if (m) {
			if (!m->err)
				on_event_msg(m, wall_us());
			rd_kafka_message_destroy(m);
		}
		if (__atomic_load_n(&load_done, __ATOMIC_ACQUIRE)) {
			if (!drain_deadline)
				drain_deadline = mono_us() + cfg.drain_s * 1000000;
			if (K.ours >= __atomic_load_n(&R.ok, __ATOMIC_ACQUIRE) ||
			    mono_us() > drain_deadline)
				break;
		}
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return NULL;
}

/* ---- HTTP connections ---- */

static void ep(hconn *c, int op, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(epfd, op, c->fd, &e) < 0 && op != EPOLL_CTL_DEL)
		log_warn("epoll_ctl failed", "{s:s}", "err", strerror(errno));
}

static void conn_down(hconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->st = C_DOWN;
	c->inlen = c->outlen = c->outoff = 0;
}

static void conn_up(hconn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		R.conn_errors++;
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
	inet_pton(AF_INET, cfg.host, &sa.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		R.conn_errors++;
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->st = C_CONNECTING;
	ep(c, EPOLL_CTL_ADD, EPOLLOUT);
}

static int flush(hconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		c->outoff += (size_t)n;
	}
	return 0;
}

static void send_request(hconn *c, long idx, int64_t t_sched)
{
	char body[384], extra[160] = "";
	if (strcmp(cfg.list_id, "default") == 0)
		snprintf(extra, sizeof(extra), ",\"description\":\"bench-ts:%lld\"",
		         (long long)wall_us());
	else if (cfg.list_id[0])
		snprintf(extra, sizeof(extra),
		         ",\"list_id\":\"%s\",\"description\":\"bench-ts:%lld\"", cfg.list_id,
		         (long long)wall_us());
	int bl = snprintf(body, sizeof(body),
	                  "{\"id\":\"%08x-0000-4000-8000-%012lx\",\"title\":\"bench task %ld\","
	                  "\"priority\":\"medium\"%s}",
	                  run_tag, (unsigned long)idx, idx, extra);
	int n = snprintf(c->out, sizeof(c->out),
	                 "POST /api/v1/tasks HTTP/1.1\r\nHost: %s:%ld\r\n"
	                 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	                 "X-Client-Id: api-load\r\nContent-Length: %d\r\n\r\n%s",
	                 cfg.host, cfg.port, tokens[idx % cfg.users], bl, body);
	c->outlen = (size_t)n;
	c->outoff = 0;
	c->req = idx;
	c->t_sched = t_sched;
	c->st = C_BUSY;
	R.sent++;
	if (flush(c) < 0) {
		R.conn_errors++;
		conn_down(c);
		return;
	}
	ep(c, EPOLL_CTL_MOD, EPOLLIN | (c->outoff < c->outlen ? EPOLLOUT : 0));
}

/* A complete response in c->in: 1 done (c->in consumed), 0 incomplete, -1 bad. */
static int parse_response(hconn *c, int *status, int *close_after)
{
	char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	if (!end)
		return c->inlen >= sizeof(c->in) ? -1 : 0;
	*end = 0;
	if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1)
		return -1;
	long clen = 0;
	*close_after = 0;
	for (char *l = strstr(c->in, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (!strncasecmp(h, "Content-Length:", 15))
			clen = strtol(h + 15, NULL, 10);
		else if (!strncasecmp(h, "Connection:", 11) && strcasestr(h, "close"))
			*close_after = 1;
		else if (!strncasecmp(h, "Transfer-Encoding:", 18))
			return -1; /* the backend answers with Content-Length */
	}
	*end = '\r';
	size_t total = (size_t)(end + 4 - c->in) + (size_t)clen;
	if (clen < 0 || total > sizeof(c->in))
		return -1;
	if (c->inlen < total)
		return 0;
	memmove(c->in, c->in + total, c->inlen - total);
	c->inlen -= total;
	return 1;
}

static void on_readable(hconn *c)
{
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		if (c->st == C_BUSY)
			R.conn_errors++; /* the request is lost: counted, not retried */
		R.reconnects++;
		conn_down(c);
		return;
	}
	c->inlen += (size_t)n;
	if (c->st != C_BUSY) {
		R.bad_responses++;
		conn_down(c);
		return;
	}
	int status = 0, close_after = 0;
	int rc = parse_response(c, &status, &close_after);
	if (rc == 0)
		return;
	if (rc < 0) {
		R.bad_responses++;
		conn_down(c);
		return;
	}
	int64_t now = mono_us();
	R.answered++;
	if (status > 0 && status < (int)ARRAY_LEN(R.status))
		R.status[status]++;
	if (status == 201 || status == 200) {
		__atomic_store_n(&resp_wall[c->req], wall_us(), __ATOMIC_RELEASE);
		__atomic_add_fetch(&R.ok, 1, __ATOMIC_RELEASE);
		if (R.t_measure_start && now >= R.t_measure_start) {
			R.measured_ok++;
			bhist_add(R.lat, now - c->t_sched);
		}
	}
	c->st = C_IDLE;
	if (close_after) {
		R.reconnects++;
		conn_down(c);
		return;
	}
	ep(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void on_event(hconn *c, uint32_t ev)
{
	if (c->st == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			R.conn_errors++;
			conn_down(c);
			return;
		}
		c->st = C_IDLE;
		ep(c, EPOLL_CTL_MOD, EPOLLIN);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(c);
	if (c->fd >= 0 && (ev & EPOLLOUT) && c->outoff < c->outlen) {
		if (flush(c) < 0) {
			R.conn_errors++;
			conn_down(c);
			return;
		}
		ep(c, EPOLL_CTL_MOD, EPOLLIN | (c->outoff < c->outlen ? EPOLLOUT : 0));
	}
}

static json_t *status_json(void)
{
	json_t *o = json_object();
	for (size_t i = 0; i < ARRAY_LEN(R.status); i++)
		if (R.status[i]) {
			char k[8];
			snprintf(k, sizeof(k), "%zu", i);
			json_object_set_new(o, k, json_integer(R.status[i]));
		}
	return o;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		config_print_help(stdout, "api-load", "An epoll HTTP load client for backend-api.",
		                  table, ARRAY_LEN(table));
		return strcmp(argv[1], "--help") ? 2 : 0;
	}
	char err[2048];
	if (config_load(table, ARRAY_LEN(table), err, sizeof(err))) {
		fprintf(stderr, "%s", err);
		return 2;
	}
	log_setup("api-load", (log_level)cfg.level);
	int rate_mode = !strcmp(cfg.mode, "rate");
	if (!rate_mode && strcmp(cfg.mode, "saturation")) {
		fprintf(stderr, "MODE: not one of saturation|rate\n");
		return 2;
	}
	struct in_addr probe;
	if (inet_pton(AF_INET, cfg.host, &probe) != 1) {
		fprintf(stderr, "API_HOST: not an IPv4 address\n");
		return 2;
	}
	if (cfg.warmup_s >= cfg.duration_s) {
		fprintf(stderr, "WARMUP_S: must be shorter than DURATION_S\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	char rnd[UUID_STR_LEN];
	uuid_new(rnd);
	run_tag = (unsigned)strtoul(rnd + 0, NULL, 16) | 1u; /* first 8 hex digits */

	tokens = xcalloc((size_t)cfg.users, sizeof(char *));
	for (long u = 0; u < cfg.users; u++) {
		char uid[USER_ID_MAX + 1];
		snprintf(uid, sizeof(uid), "%s%ld", cfg.prefix, u);
		tokens[u] = auth_mint(cfg.secret, uid, 3600);
		if (!tokens[u]) {
			fprintf(stderr, "USER_PREFIX: \"%s\" is not a valid user id\n", uid);
			return 2;
		}
	}
	resp_wall = xcalloc((size_t)cfg.max_requests, sizeof(int64_t));
	R.lat = bhist_new();
	K.last_seq = xcalloc((size_t)cfg.users, sizeof(int64_t));
	K.commit_topic = bhist_new();
	K.resp_topic = bhist_new();

	pthread_t cons;
	int have_consumer = 0;
	if (cfg.brokers[0]) {
		rd_kafka_t *rk = consumer_new();
		if (!rk)
			return 1;
		if (pthread_create(&cons, NULL, consumer_main, rk)) {
			log_error("could not start consumer thread", "{}");
			return 1;
		}
		have_consumer = 1;
	}

	epfd = epoll_create1(EPOLL_CLOEXEC);
	conns = xcalloc((size_t)cfg.conns, sizeof(hconn));
	for (long i = 0; i < cfg.conns; i++) {
		conns[i].fd = -1;
		conn_up(&conns[i]);
	}
	int64_t t0 = mono_us();
	R.t_measure_start = t0 + cfg.warmup_s * 1000000;
	int64_t t_end = t0 + cfg.duration_s * 1000000;
	long next = 0; /* next request number */
	struct epoll_event evs[256];
	int64_t last_reconnect = 0;
	while (!stop_flag) {
		int64_t now = mono_us();
		if (now >= t_end)
			break;
		if (now - last_reconnect > 10000) { /* re-open dropped connections */
			last_reconnect = now;
			for (long i = 0; i < cfg.conns; i++)
				if (conns[i].st == C_DOWN)
					conn_up(&conns[i]);
		}
		for (long i = 0; i < cfg.conns && next < cfg.max_requests; i++) {
			hconn *c = &conns[i];
			if (c->st != C_IDLE)
				continue;
			int64_t due =
			    rate_mode ? t0 + (int64_t)((double)next * 1e6 / (double)cfg.rate) : now;
			if (due > now)
				break;
			send_request(c, next++, due);
		}
		int n = epoll_wait(epfd, evs, ARRAY_LEN(evs), 1);
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
	}
	R.t_measure_end = mono_us();
	/* let the requests in flight finish (bounded) */
	int64_t grace = mono_us() + 5000000;
	for (;;) {
		long busy = 0;
		for (long i = 0; i < cfg.conns; i++)
			busy += conns[i].st == C_BUSY;
		if (!busy || mono_us() > grace || stop_flag)
			break;
		int n = epoll_wait(epfd, evs, ARRAY_LEN(evs), 5);
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
	}
	__atomic_store_n(&load_done, 1, __ATOMIC_RELEASE);
	if (have_consumer)
		pthread_join(cons, NULL);

	double win = (double)(R.t_measure_end - R.t_measure_start) / 1e6;
	json_t *out = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:f, s:o}", "mode", cfg.mode,
	    "connections", (json_int_t)cfg.conns, "target_rate",
	    (json_int_t)(rate_mode ? cfg.rate : 0), "sent", (json_int_t)R.sent, "answered",
	    (json_int_t)R.answered, "ok", (json_int_t)R.ok, "conn_errors",
	    (json_int_t)R.conn_errors, "bad_responses", (json_int_t)R.bad_responses, "reconnects",
	    (json_int_t)R.reconnects, "status", status_json(), "window_s", win, "writes_per_s",
	    win > 0 ? (double)R.measured_ok / win : 0.0, "latency", bhist_json(R.lat));
	if (have_consumer)
		json_object_set_new(
		    out, "topic",
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "events", (json_int_t)K.events,
		              "ours", (json_int_t)K.ours, "missing", (json_int_t)(R.ok - K.ours),
		              "seq_breaks", (json_int_t)K.seq_breaks, "foreign",
		              (json_int_t)K.foreign, "commit_to_topic", bhist_json(K.commit_topic),
		              "response_to_topic", bhist_json(K.resp_topic)));
	char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(out);
	for (long i = 0; i < cfg.conns; i++)
		conn_down(&conns[i]);
	close(epfd);
	for (long u = 0; u < cfg.users; u++)
		free(tokens[u]);
	free(tokens);
	free(conns);
	free(resp_wall);
	bhist_free(R.lat);
	free(K.last_seq);
	bhist_free(K.commit_topic);
	bhist_free(K.resp_topic);
	config_free(table, ARRAY_LEN(table));
	return 0;
}
