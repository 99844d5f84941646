/* The whole system through a broker crash: a 3-node KRaft cluster of the test's own
 * (replication factor 3, min.insync.replicas=2, unclean.leader.election.enable=
 * false), one backend-api, two ws-gateways on its topic, SYSTEM_USERS users (50)
 * with one socket on each gateway, SYSTEM_WRITES writes (5,000) from WRITERS
 * threads. The node that leads partition 0 is SIGKILLed after a third of the writes
 * and started again after two thirds; the writes go on throughout.
 *
 * The contract checked: every write answers 201/200; the topic holds every seq
 * 1..n of every user (a duplicate with the same event_id is the documented
 * at-least-once, counted; a missing seq is acknowledged loss); every socket, read as
 * the web client reads it (apply seq == last+1, drop seq <= last, on a gap or at the
 * end GET /api/v1/events?since=last), ends with exactly 1..n of its user in order,
 * with the topic's event ids; no socket ever sees another user's event. Stricter
 * than the client needs: every event reaches every socket by push (or the catch-up
 * of a gap) within SETTLE_MS of the outbox draining; one that only the catch-up at
 * the end supplies means pushes stalled, which a live client would never notice.
 *
 * The services are the sanitizer build ($TASKSYNC_BIN): unpaced they answer 5,000
 * writes in about 7 s on 2 cores, so the writes are paced (MIN_WRITE_S) to span the
 * crash and the restart; the whole test takes about 85 s. `make failover-long`
 * (tests/system/module.mk) runs 50,000, about as fast as the services take them. */
#include "suites.h"

#include "cluster.h"

#include "../support/broker.h"
#include "../support/fixtures.h"
#include "../support/http_client.h"
#include "../support/kafka_io.h"
#include "../support/pgtest.h"
#include "../support/proc.h"
#include "../support/runner.h"
#include "../ws-gateway/ws_client.h"
#include "common/util.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRITERS  8 /* client threads; user u is written by thread u % WRITERS */
#define GATEWAYS 2 /* each user has one socket on each */
_Static_assert(GATEWAYS == 2, "the summary lines name two gateways");
#define TOKEN_TTL_S 7200
#define HTTP_MS     20000 /* one request's bound */
#define SETTLE_MS   60000 /* after the outbox drained, until every socket is complete */
#define LOGGED_MAX  20    /* violations printed one per line (all are counted) */
/* Unpaced, 5,000 writes take about 7 s on 2 cores: less than the crash takes (3-6 s
 * until partition 0 has a new leader, 5-15 s to restart the node), so the writes
 * would be over before the node is back. By default they are spread over at least
 * MIN_WRITE_S, so that the restarted node rejoins while they go on;
 * SYSTEM_WRITE_RATE (writes per second, 0: unpaced) overrides. */
#define MIN_WRITE_S 50

typedef char event_id[UUID_STR_LEN];

typedef struct user {
	char id[64];
	char auth[1024];      /* "Authorization: Bearer <token>\r\n" */
	long quota;           /* writes asked of it */
	long acked;           /* writes answered 201/200: its events are seq 1..acked */
	char task[64];        /* the task it created last (patches go there) */
	atomic_llong *ack_us; /* ack_us[s-1]: mono_us() when the write of seq s was answered */
} user;

/* One socket as the web client keeps it. @locality the reader thread while it
 * runs (last is also read by the main thread), then the main thread. */
typedef struct sock {
	ws_client *ws;
	int user;          /* index into run.users */
	int gw;            /* 0 .. GATEWAYS-1 */
	atomic_llong last; /* seq applied last */
	event_id *ids;     /* ids[s-1]: the event applied as seq s (user.quota entries) */
	long pushed;       /* applied from a push */
	long caught_up;    /* applied from a catch-up after a gap */
	long final_caught; /* applied from the catch-up at the end */
	long dups;         /* pushes dropped: seq <= last when they came */
	long covered;      /* pushes that opened a gap the catch-up then filled */
	long gaps;         /* catch-ups a gap caused */
	int64_t *delay_us; /* answer of a write to its push here, per push applied */
	size_t ndelay;
	int64_t *calm_us; /* the same, of the writes answered before the crash */
	size_t ncalm;
	long overtook;     /* pushes that came before their write's HTTP answer */
	atomic_int closed; /* 0 while open; the close code, or -1 after an error */
} sock;

typedef struct run {
	user *users;
	int nusers;
	sock *socks;
	int nsocks;
	int be_port;
	long writes;
	long rate;               /* writes started per second, all threads together (0: unpaced) */
	int64_t t0_us;           /* mono_us() when the writes began (the pace's origin) */
	atomic_long tickets;     /* writes started */
	atomic_long done;        /* writes answered, whatever the answer */
	atomic_int writers_left; /* writer threads still running */
	int64_t *lat_us;         /* latency of each answered write, in answer order */
	atomic_long bad_writes;  /* answered otherwise than 201/200 */
	atomic_int stop;         /* tells the reader to return */
	atomic_llong kill_us;    /* mono_us() of the SIGKILL (INT64_MAX before) */
	atomic_int foreign;      /* a socket saw another user's event */
	atomic_long violations;  /* every broken promise, counted */
	pthread_mutex_t mu;      /* guards first and foreign_msg */
	char first[1024];        /* the first violation */
	char foreign_msg[1024];  /* the first foreign event */
} run;

/* Records a broken promise: counted, the first kept for the assertion, the first
 * LOGGED_MAX printed as they happen (evidence in the test's output). @locality any
 * thread. @locks takes r->mu briefly. */
__attribute__((format(printf, 2, 3))) static void violation(run *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	long n = atomic_fetch_add(&r->violations, 1);
	pthread_mutex_lock(&r->mu);
	if (!r->first[0])
		snprintf(r->first, sizeof(r->first), "%s", msg);
	pthread_mutex_unlock(&r->mu);
	if (n < LOGGED_MAX)
		fprintf(stderr, "system: violation: %s\n", msg);
}

/* An integer setting from the environment: def when unset; -1 when not a decimal
 * in lo..hi. */
static int env_long(const char *name, long def, long lo, long hi, long *out)
{
	const char *v = getenv(name);
	*out = def;
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

/* ---- services ---- */

static void start_backend(proc *p, const char *db, const char *topic)
{
	char bin[1024], dbv[300], brokers[600], t[160];
	snprintf(bin, sizeof(bin), "%s/backend-api", test_env("TASKSYNC_BIN"));
	snprintf(dbv, sizeof(dbv), "DATABASE_URL=%s", db);
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", topic);
	const char *env[] = {dbv,
	                     brokers,
	                     t,
	                     "JWT_SECRET=" TEST_SECRET,
	                     "LOG_LEVEL=info",
	                     "DB_POOL_SIZE=4",
	                     "HTTP_THREADS=16",
	                     "SHUTDOWN_TIMEOUT_MS=5000",
	                     "DEV_LOGIN=0",
	                     "STATIC_DIR=",
	                     "ALLOWED_ORIGINS=",
	                     "EVENT_RETENTION=604800",
	                     NULL};
	proc_start(p, bin, NULL, env, "/readyz", 200);
}

static void start_gateway(proc *p, const char *topic, int max_conn)
{
	char bin[1024], brokers[600], t[160], mc[48];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", topic);
	snprintf(mc, sizeof(mc), "MAX_CONNECTIONS=%d", max_conn);
	const char *env[] = {brokers,
	                     t,
	                     "JWT_SECRET=" TEST_SECRET,
	                     "LOG_LEVEL=info",
	                     mc,
	                     "ALLOWED_ORIGINS=*",
	                     "KAFKA_METADATA_REFRESH_MS=1000",
	                     NULL};
	proc_start(p, bin, NULL, env, "/ready", 200);
}

/* The settings the scenario depends on, as the nodes were given them. */
static void assert_cluster_settings(const cluster *k)
{
	static const char *const want[] = {"default.replication.factor=3", "min.insync.replicas=2",
	                                   "unclean.leader.election.enable=false"};
	for (int i = 1; i <= k->nodes; i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s/node-%d/server.properties", k->dir, i);
		char *props = read_text_file(path);
		for (size_t w = 0; w < ARRAY_LEN(want); w++)
			ck_assert_msg(strstr(props, want[w]), "%s lacks %s", path, want[w]);
		free(props);
	}
}

/* 1 when the log holds no AddressSanitizer/UBSan/LeakSanitizer report. */
static int log_clean(const char *path)
{
	char *log = read_text_file(path);
	int bad = strstr(log, "AddressSanitizer") || strstr(log, "LeakSanitizer") ||
	          strstr(log, "runtime error:");
	free(log);
	return !bad;
}

/* Prints the warnings and errors of a service log that are not the broker's
 * (those are expected around the crash), at most max of them: the service's side
 * of a failed write. */
static void print_service_warnings(const char *path, int max)
{
	char *log = read_text_file(path);
	int n = 0;
	for (char *p = log, *e; p && *p && n < max; p = e ? e + 1 : NULL) {
		e = strchr(p, '\n');
		if (e)
			*e = 0;
		if ((strstr(p, "\"level\":\"warn\"") || strstr(p, "\"level\":\"error\"")) &&
		    !strstr(p, "kafka") && !strstr(p, "librdkafka")) {
			fprintf(stderr, "system: %s: %.400s\n", path, p);
			n++;
		}
	}
	free(log);
}

/* ---- writers ---- */

typedef struct writer {
	run *r;
	int index;
	pthread_t thread;
} writer;

/* Write k of u: a create, every fourth (once it has a task) a patch of its last
 * task. @locality u's writer thread. */
static void write_one(run *r, user *u, long k)
{
	int patch = k % 4 == 3 && u->task[0];
	char path[160], body[96], hdr[1200];
	if (patch) {
		snprintf(path, sizeof(path), "/api/v1/tasks/%s", u->task);
		snprintf(body, sizeof(body), "{\"title\":\"p%ld\"}", k);
	} else {
		snprintf(path, sizeof(path), "/api/v1/tasks");
		snprintf(body, sizeof(body), "{\"title\":\"w%ld\"}", k);
	}
	snprintf(hdr, sizeof(hdr), "%sContent-Type: application/json\r\n", u->auth);
	if (r->rate > 0) {
		int64_t due = r->t0_us + atomic_fetch_add(&r->tickets, 1) * 1000000 / r->rate;
		int64_t now = mono_us();
		if (due > now)
			usleep((useconds_t)(due - now));
	}
	int64_t t0 = mono_us();
	http_resp resp;
	int st = http_request(r->be_port, patch ? "PATCH" : "POST", path, hdr, body, strlen(body),
	                      HTTP_MS, &resp);
	int64_t lat = mono_us() - t0;
	int want = patch ? 200 : 201;
	if (st == want) {
		atomic_store(&u->ack_us[u->acked++], mono_us());
		if (!patch) {
			json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
			const char *id = json_string_value(json_object_get(j, "id"));
			snprintf(u->task, sizeof(u->task), "%s", id ? id : "");
			json_decref(j);
		}
	} else {
		atomic_fetch_add(&r->bad_writes, 1);
		violation(r, "write %ld of %s: %s %s answered %d (%d expected): %.200s", k, u->id,
		          patch ? "PATCH" : "POST", path, st, want, resp.body ? resp.body : "");
	}
	http_resp_free(&resp);
	long slot = atomic_fetch_add(&r->done, 1);
	if (slot < r->writes)
		r->lat_us[slot] = lat;
}

/* @locality a writer thread: its users round-robin until each has its quota. */
static void *writer_main(void *arg)
{
	writer *w = arg;
	run *r = w->r;
	long most = 0;
	for (int u = w->index; u < r->nusers; u += WRITERS)
		if (r->users[u].quota > most)
			most = r->users[u].quota;
	for (long k = 0; k < most; k++)
		for (int u = w->index; u < r->nusers; u += WRITERS)
			if (k < r->users[u].quota)
				write_one(r, &r->users[u], k);
	atomic_fetch_sub(&r->writers_left, 1);
	return NULL;
}

/* ---- the web client's rules, per socket ---- */

static void apply(sock *s, long long seq, const char *eid)
{
	snprintf(s->ids[seq - 1], sizeof(s->ids[0]), "%s", eid);
	atomic_store(&s->last, seq);
}

/* A delivery of seq already applied must be the same event. */
static void same_event(run *r, const sock *s, long long seq, const char *eid, const char *how)
{
	if (strcmp(s->ids[seq - 1], eid))
		violation(r,
		          "socket %d (%s, gateway %d): %s of seq %lld is event %s, %s was applied",
		          (int)(s - r->socks), r->users[s->user].id, s->gw, how, seq, eid,
		          s->ids[seq - 1]);
}

/* Checks the user and reads seq and event_id of an event (a frame or a catch-up
 * entry). 0, or -1 after recording a violation. */
static int event_fields(run *r, const sock *s, const json_t *j, const char *from, long long *seq,
                        const char **eid)
{
	const user *u = &r->users[s->user];
	const char *uid = json_string_value(json_object_get(j, "user_id"));
	if (!uid || strcmp(uid, u->id)) {
		char *dump = json_dumps(j, JSON_COMPACT);
		char msg[1024];
		snprintf(msg, sizeof(msg),
		         "socket %d of %s (gateway %d) got an event of %s via %s: %.300s",
		         (int)(s - r->socks), u->id, s->gw, uid ? uid : "(none)", from, dump);
		free(dump);
		pthread_mutex_lock(&r->mu);
		if (!r->foreign_msg[0])
			snprintf(r->foreign_msg, sizeof(r->foreign_msg), "%s", msg);
		pthread_mutex_unlock(&r->mu);
		atomic_store(&r->foreign, 1);
		violation(r, "%s", msg);
		return -1;
	}
	const json_t *sq = json_object_get(j, "seq");
	*eid = json_string_value(json_object_get(j, "event_id"));
	if (!json_is_integer(sq) || !*eid || strlen(*eid) >= UUID_STR_LEN) {
		violation(r, "socket %d (%s): an event via %s without seq or event_id",
		          (int)(s - r->socks), u->id, from);
		return -1;
	}
	*seq = json_integer_value(sq);
	if (*seq < 1 || *seq > u->quota) {
		/* bounds what an event can make us store */
		violation(r, "socket %d (%s): seq %lld via %s, only %ld writes were made",
		          (int)(s - r->socks), u->id, *seq, from, u->quota);
		return -1;
	}
	return 0;
}

/* GET /api/v1/events?since=last until has_more is false, applying what follows
 * last; *count gets the events applied. Retries a failed request a few times (a
 * client would). 0, or -1 after recording a violation. @locality the reader
 * thread, or the main thread once the reader has returned. */
static int catch_up(run *r, sock *s, long *count)
{
	const user *u = &r->users[s->user];
	for (int more = 1; more;) {
		long long since = atomic_load(&s->last);
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/events?since=%lld&limit=1000", since);
		http_resp resp;
		int st = -1;
		for (int attempt = 0; attempt < 5; attempt++) {
			st =
			    http_request(r->be_port, "GET", path, u->auth, NULL, 0, HTTP_MS, &resp);
			if (st == 200)
				break;
			http_resp_free(&resp);
			usleep(100000u << attempt);
		}
		if (st != 200) {
			violation(r, "socket %d (%s): GET %s answered %d five times",
			          (int)(s - r->socks), u->id, path, st);
			return -1;
		}
		json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
		http_resp_free(&resp);
		const json_t *evs = json_object_get(j, "events");
		if (!json_is_array(evs)) {
			violation(r, "socket %d (%s): GET %s: no events array", (int)(s - r->socks),
			          u->id, path);
			json_decref(j);
			return -1;
		}
		more = json_is_true(json_object_get(j, "has_more")) && json_array_size(evs) > 0;
		size_t i;
		const json_t *e;
		json_array_foreach(evs, i, e)
		{
			long long seq;
			const char *eid;
			if (event_fields(r, s, e, "catch-up", &seq, &eid)) {
				json_decref(j);
				return -1;
			}
			long long last = atomic_load(&s->last);
			if (seq != last + 1) {
				violation(r, "socket %d (%s): GET %s: seq %lld follows %lld",
				          (int)(s - r->socks), u->id, path, seq, last);
				json_decref(j);
				return -1;
			}
			apply(s, seq, eid);
			(*count)++;
		}
		json_decref(j);
	}
	return 0;
}

/* A pushed event, by the client's rule. */
static void on_push(run *r, sock *s, long long seq, const char *eid)
{
	long long last = atomic_load(&s->last);
	if (seq <= last) {
		s->dups++;
		same_event(r, s, seq, eid, "a duplicate push");
		return;
	}
	if (seq > last + 1) {
		s->gaps++;
		if (catch_up(r, s, &s->caught_up))
			return;
		last = atomic_load(&s->last);
		if (seq <= last) {
			s->covered++;
			same_event(r, s, seq, eid, "the push that opened a gap");
			return;
		}
		if (seq > last + 1) {
			violation(r,
			          "socket %d (%s, gateway %d): seq %lld pushed, %lld applied, and "
			          "/api/v1/events has nothing after %lld",
			          (int)(s - r->socks), r->users[s->user].id, s->gw, seq, last,
			          last);
			return;
		}
	}
	apply(s, seq, eid);
	s->pushed++;
	int64_t acked = atomic_load(&r->users[s->user].ack_us[seq - 1]);
	if (!acked) {
		s->overtook++; /* no delay to measure */
		return;
	}
	int64_t d = mono_us() - acked;
	s->delay_us[s->ndelay++] = d;
	if (acked < atomic_load(&r->kill_us))
		s->calm_us[s->ncalm++] = d;
}

static void on_text(run *r, sock *s, const char *d, size_t l)
{
	json_t *j = json_loadb(d, l, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	if (!type) {
		violation(r, "socket %d: a frame without a type: %.200s", (int)(s - r->socks), d);
	} else if (!strcmp(type, "task_update")) {
		long long seq;
		const char *eid;
		if (!event_fields(r, s, j, "push", &seq, &eid))
			on_push(r, s, seq, eid);
	} else if (!strcmp(type, "error")) {
		violation(r, "socket %d: the gateway sent %.200s", (int)(s - r->socks), d);
	}
	json_decref(j);
}

/* Reads every complete frame of s without waiting. */
static void drain(run *r, sock *s)
{
	for (;;) {
		char *d;
		size_t l;
		int op = ws_recv(s->ws, 0, &d, &l);
		if (op == WS_RECV_TIMEOUT)
			return;
		if (op == 0x1) {
			on_text(r, s, d, l);
		} else if (op == 0x9) {
			(void)ws_send(s->ws, 0xa, d, l);
		} else if (op == 0x8 || op < 0) {
			int code = op == 0x8 ? ws_close_code(s->ws) : -1;
			atomic_store(&s->closed, code ? code : -1);
			violation(r, "socket %d (%s, gateway %d) ended: close %d %s",
			          (int)(s - r->socks), r->users[s->user].id, s->gw, code,
			          ws_close_reason(s->ws));
			free(d);
			return;
		}
		free(d);
	}
}

/* @locality the reader thread: poll() over every open socket until r->stop. */
static void *reader_main(void *arg)
{
	run *r = arg;
	struct pollfd *pf = xcalloc((size_t)r->nsocks, sizeof(*pf));
	int *which = xcalloc((size_t)r->nsocks, sizeof(*which));
	while (!atomic_load(&r->stop)) {
		int n = 0;
		for (int i = 0; i < r->nsocks; i++) {
			if (atomic_load(&r->socks[i].closed))
				continue;
			pf[n] = (struct pollfd){.fd = ws_fd(r->socks[i].ws), .events = POLLIN};
			which[n++] = i;
		}
		if (poll(pf, (nfds_t)n, 100) <= 0) {
			if (n == 0)
				usleep(100000);
			continue;
		}
		for (int i = 0; i < n; i++)
			if (pf[i].revents)
				drain(r, &r->socks[which[i]]);
	}
	free(pf);
	free(which);
	return NULL;
}

/* ---- the main thread ---- */

static void open_socket(sock *s, int port, const user *u)
{
	char target[1200];
	char *tok = token_for(u->id, TOKEN_TTL_S);
	ck_assert_ptr_nonnull(tok);
	snprintf(target, sizeof(target), "/ws?token=%s", tok);
	free(tok);
	int st;
	s->ws = ws_open(port, target, NULL, 0, &st);
	ck_assert_msg(s->ws != NULL, "connect %s to :%d: status %d", u->id, port, st);
	char *hello = ws_recv_text(s->ws, 10000);
	ck_assert_msg(hello != NULL, "no connected frame for %s on :%d", u->id, port);
	json_t *j = json_loads(hello, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *uid = json_string_value(json_object_get(j, "user_id"));
	ck_assert_msg(type && !strcmp(type, "connected") && uid && !strcmp(uid, u->id),
	              "first frame for %s: %s", u->id, hello);
	json_decref(j);
	free(hello);
}

/* Fails the test at once when a socket saw another user's event. */
static void check_foreign(run *r)
{
	if (atomic_load(&r->foreign)) {
		pthread_mutex_lock(&r->mu);
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", r->foreign_msg);
		pthread_mutex_unlock(&r->mu);
		ck_abort_msg("%s", msg);
	}
}

/* Waits until at least n writes were answered. */
static void wait_done(run *r, long n, int64_t deadline)
{
	while (atomic_load(&r->done) < n && atomic_load(&r->writers_left) > 0) {
		check_foreign(r);
		ck_assert_msg(mono_ms() < deadline, "only %ld of %ld writes answered in time",
		              atomic_load(&r->done), r->writes);
		usleep(10000);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The pct-th percentile of n microsecond values (sorts v), in milliseconds. */
static double pct_ms(int64_t *v, size_t n, int pct)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	size_t i = n * (size_t)pct / 100;
	return (double)v[i < n ? i : n - 1] / 1e3;
}

/* What the topic holds of one user. */
typedef struct topic_user {
	event_id *ids; /* ids[s-1]: the event with seq s */
	int *copies;   /* how often seq s is on the topic */
	long max_seen; /* the greatest seq read so far, in topic order */
} topic_user;

typedef struct topic_tally {
	size_t msgs;
	long dups;     /* the same event again (at-least-once) */
	long reorders; /* a seq read after a greater one of its user */
	long missing;  /* acknowledged writes whose event is not on the topic */
} topic_tally;

static int user_index(const run *r, const char *id)
{
	for (int i = 0; id && i < r->nusers; i++)
		if (!strcmp(r->users[i].id, id))
			return i;
	return -1;
}

/* Reads the topic from the beginning and tallies it against the acknowledged
 * writes (violations recorded). */
static void read_topic(run *r, const char *topic, topic_user *tu, topic_tally *t)
{
	size_t want = 0;
	for (int i = 0; i < r->nusers; i++)
		want += (size_t)r->users[i].acked;
	kreader *kr = kreader_open(topic, 30000);
	kreader_collect(kr, want, 60000);
	kreader_collect(kr, (size_t)-1, 1000); /* duplicates past the count */
	size_t n;
	const kmsg *m = kreader_msgs(kr, &n);
	t->msgs = n;
	for (size_t i = 0; i < n; i++) {
		json_t *j = json_loadb(m[i].value, m[i].value_len, 0, NULL);
		const char *uid = json_string_value(json_object_get(j, "user_id"));
		const char *eid = json_string_value(json_object_get(j, "event_id"));
		const json_t *sq = json_object_get(j, "seq");
		int u = user_index(r, uid);
		long long seq = json_is_integer(sq) ? json_integer_value(sq) : -1;
		if (u < 0 || !eid || strlen(eid) >= UUID_STR_LEN || !m[i].key ||
		    strcmp(m[i].key, uid) || seq < 1 || seq > r->users[u].acked) {
			violation(
			    r, "topic %d/%" PRId64 " (key %s): not an acknowledged event: %.300s",
			    (int)m[i].partition, m[i].offset, m[i].key ? m[i].key : "(none)",
			    m[i].value);
			json_decref(j);
			continue;
		}
		topic_user *x = &tu[u];
		if (x->copies[seq - 1]++) {
			t->dups++;
			if (strcmp(x->ids[seq - 1], eid))
				violation(r,
				          "topic: %s seq %lld is both event %s and %s (%d/%" PRId64
				          ")",
				          uid, seq, x->ids[seq - 1], eid, (int)m[i].partition,
				          m[i].offset);
		} else {
			snprintf(x->ids[seq - 1], sizeof(x->ids[0]), "%s", eid);
			if (seq < x->max_seen) {
				t->reorders++;
				if (t->reorders <= 5)
					fprintf(stderr,
					        "system: topic order: %s seq %lld at %d/%" PRId64
					        " after seq %ld\n",
					        uid, seq, (int)m[i].partition, m[i].offset,
					        x->max_seen);
			}
		}
		if (seq > x->max_seen)
			x->max_seen = (long)seq;
		json_decref(j);
	}
	kreader_free(kr);
	for (int u = 0; u < r->nusers; u++) {
		for (long s = 1; s <= r->users[u].acked; s++) {
			if (tu[u].copies[s - 1])
				continue;
			t->missing++;
			violation(r, "topic: %s seq %ld is missing (acknowledged loss)",
			          r->users[u].id, s);
		}
	}
}

START_TEST(leader_killed_during_writes)
{
	long writes, nusers, rate;
	ck_assert_msg(env_long("SYSTEM_WRITES", 5000, 1, 10000000, &writes) == 0,
	              "SYSTEM_WRITES=%s: not an integer in 1..10000000", getenv("SYSTEM_WRITES"));
	ck_assert_msg(
	    env_long("SYSTEM_WRITE_RATE", writes / MIN_WRITE_S + 1, 0, 1000000, &rate) == 0,
	    "SYSTEM_WRITE_RATE=%s: not an integer in 0..1000000", getenv("SYSTEM_WRITE_RATE"));
	ck_assert_msg(env_long("SYSTEM_USERS", 50, 1, 1000, &nusers) == 0,
	              "SYSTEM_USERS=%s: not an integer in 1..1000", getenv("SYSTEM_USERS"));
	int64_t t_start = mono_ms();

	cluster k;
	cluster_up(&k, 3);
	assert_cluster_settings(&k);
	char topic[128], db[256];
	unique_name(topic, sizeof(topic), "sys-test");
	kafka_create_topic(topic, 3);
	pgtest_createdb(db, sizeof(db));
	proc be, gw[GATEWAYS];
	start_backend(&be, db, topic);
	for (int g = 0; g < GATEWAYS; g++)
		start_gateway(&gw[g], topic, (int)nusers * 2 + 16);

	run *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->writes = writes;
	r->rate = rate;
	atomic_init(&r->kill_us, INT64_MAX);
	r->be_port = be.port;
	r->nusers = (int)nusers;
	r->users = xcalloc((size_t)nusers, sizeof(*r->users));
	r->lat_us = xcalloc((size_t)writes, sizeof(*r->lat_us));
	for (int i = 0; i < r->nusers; i++) {
		user *u = &r->users[i];
		unique_name(u->id, sizeof(u->id), "sys");
		char *tok = token_for(u->id, TOKEN_TTL_S);
		ck_assert_ptr_nonnull(tok);
		snprintf(u->auth, sizeof(u->auth), "Authorization: Bearer %s\r\n", tok);
		free(tok);
		u->quota = writes / nusers + (i < writes % nusers);
		u->ack_us = xcalloc((size_t)u->quota + 1, sizeof(*u->ack_us));
	}
	r->nsocks = r->nusers * GATEWAYS;
	r->socks = xcalloc((size_t)r->nsocks, sizeof(*r->socks));
	for (int i = 0; i < r->nsocks; i++) {
		sock *s = &r->socks[i];
		s->user = i / GATEWAYS;
		s->gw = i % GATEWAYS;
		atomic_init(&s->last, 0);
		s->ids = xcalloc((size_t)r->users[s->user].quota + 1, sizeof(*s->ids));
		s->delay_us = xcalloc((size_t)r->users[s->user].quota + 1, sizeof(*s->delay_us));
		s->calm_us = xcalloc((size_t)r->users[s->user].quota + 1, sizeof(*s->calm_us));
		open_socket(s, gw[s->gw].port, &r->users[s->user]);
	}
	pthread_t reader;
	ck_assert_int_eq(pthread_create(&reader, NULL, reader_main, r), 0);

	/* the writes, the crash and the restart */
	int64_t t_writes = mono_ms();
	int64_t deadline = t_writes + 60000 + writes * 15 + (rate ? writes * 1000 / rate : 0);
	writer w[WRITERS];
	atomic_init(&r->writers_left, WRITERS);
	r->t0_us = mono_us();
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (writer){.r = r, .index = i};
		ck_assert_int_eq(pthread_create(&w[i].thread, NULL, writer_main, &w[i]), 0);
	}
	wait_done(r, writes / 3, deadline);
	int victim = kafka_leader(topic, 0);
	ck_assert_msg(victim >= 1 && victim <= 3, "partition 0 of %s has no leader", topic);
	long at_kill = atomic_load(&r->done);
	int64_t t_kill = mono_ms();
	atomic_store(&r->kill_us, mono_us());
	broker_kill(victim);
	int leader = -1;
	while (mono_ms() < t_kill + 30000) {
		check_foreign(r);
		leader = kafka_leader(topic, 0);
		if (leader >= 1 && leader != victim)
			break;
		usleep(50000);
	}
	long failover_ms = (long)(mono_ms() - t_kill), at_leader = atomic_load(&r->done);
	ck_assert_msg(leader >= 1 && leader != victim,
	              "partition 0 has no new leader %ld ms after node %d was killed (%d)",
	              failover_ms, victim, leader);
	wait_done(r, 2 * writes / 3, deadline);
	long at_restart = atomic_load(&r->done);
	int64_t t_restart = mono_ms();
	broker_start(victim);
	long restart_ms = (long)(mono_ms() - t_restart), at_started = atomic_load(&r->done);
	wait_done(r, writes, deadline);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(w[i].thread, NULL);
	long write_ms = (long)(mono_ms() - t_writes);

	/* every row handed to Kafka and acknowledged, then every socket complete */
	int64_t t_drain = mono_ms();
	/* published = the slot confirmed past every commit (WAL bytes left) */
	long target = pgtest_wal_lsn(db);
	long unpublished = -1;
	while (mono_ms() < t_drain + 60000) {
		check_foreign(r);
		unpublished = target - pgtest_slot_confirmed(db);
		if (unpublished <= 0)
			break;
		usleep(50000);
	}
	long drain_ms = (long)(mono_ms() - t_drain);
	if (unpublished > 0)
		violation(r, "%ld WAL bytes of commits unpublished %ld ms after the last write",
		          unpublished, drain_ms);
	long outbox_rows = pgtest_long(db, "SELECT count(*) FROM outbox", 0, NULL), acked = 0;
	for (int i = 0; i < r->nusers; i++)
		acked += r->users[i].acked;
	if (outbox_rows != acked)
		violation(r, "%ld outbox rows for %ld acknowledged writes (one event each)",
		          outbox_rows, acked);
	int64_t t_settle = mono_ms();
	for (int complete = 0; !complete && mono_ms() < t_settle + SETTLE_MS;) {
		check_foreign(r);
		complete = 1;
		for (int i = 0; i < r->nsocks && complete; i++)
			complete =
			    atomic_load(&r->socks[i].closed) ||
			    atomic_load(&r->socks[i].last) >= r->users[r->socks[i].user].acked;
		if (!complete)
			usleep(20000);
	}
	long settle_ms = (long)(mono_ms() - t_settle);
	atomic_store(&r->stop, 1);
	pthread_join(reader, NULL);
	check_foreign(r);

	/* the client's catch-up at the end, then the verdicts */
	for (int i = 0; i < r->nsocks; i++)
		(void)catch_up(r, &r->socks[i], &r->socks[i].final_caught);
	topic_user *tu = xcalloc((size_t)r->nusers, sizeof(*tu));
	for (int i = 0; i < r->nusers; i++) {
		tu[i].ids = xcalloc((size_t)r->users[i].acked + 1, sizeof(*tu[i].ids));
		tu[i].copies = xcalloc((size_t)r->users[i].acked + 1, sizeof(*tu[i].copies));
	}
	topic_tally tt = {0};
	read_topic(r, topic, tu, &tt);
	long pushed = 0, caught = 0, final_caught = 0, dups = 0, covered = 0, gaps = 0, closed = 0;
	long overtook = 0;
	for (int i = 0; i < r->nsocks; i++) {
		sock *s = &r->socks[i];
		const user *u = &r->users[s->user];
		pushed += s->pushed;
		caught += s->caught_up;
		final_caught += s->final_caught;
		dups += s->dups;
		covered += s->covered;
		gaps += s->gaps;
		closed += atomic_load(&s->closed) != 0;
		overtook += s->overtook;
		long long last = atomic_load(&s->last);
		if (last != u->acked)
			violation(
			    r, "socket %d (%s, gateway %d) applied %lld events, %ld were written",
			    i, u->id, s->gw, last, u->acked);
		for (long long q = 1; q <= last && q <= u->acked; q++)
			if (tu[s->user].copies[q - 1] &&
			    strcmp(s->ids[q - 1], tu[s->user].ids[q - 1]))
				violation(r,
				          "socket %d (%s): seq %lld applied as event %s, the topic "
				          "has %s",
				          i, u->id, q, s->ids[q - 1], tu[s->user].ids[q - 1]);
	}
	if (final_caught > 0)
		violation(r,
		          "%ld events reached their sockets only through the catch-up at the end "
		          "(%ld ms after the outbox drained): pushes stalled",
		          final_caught, settle_ms);
	long answered = atomic_load(&r->done) < writes ? atomic_load(&r->done) : writes;
	size_t na = (size_t)answered, nd = 0, nc = 0;
	for (int i = 0; i < r->nsocks; i++) {
		nd += r->socks[i].ndelay;
		nc += r->socks[i].ncalm;
	}
	int64_t *delay = xcalloc(nd + 1, sizeof(*delay)), *calm = xcalloc(nc + 1, sizeof(*calm));
	nd = nc = 0;
	for (int i = 0; i < r->nsocks; i++) {
		memcpy(delay + nd, r->socks[i].delay_us, r->socks[i].ndelay * sizeof(*delay));
		nd += r->socks[i].ndelay;
		memcpy(calm + nc, r->socks[i].calm_us, r->socks[i].ncalm * sizeof(*calm));
		nc += r->socks[i].ncalm;
	}
	printf("system: writes=%ld rate=%ld/s acked=%ld bad_writes=%ld users=%d sockets=%d "
	       "write_s=%.1f write_p50_ms=%.1f write_p99_ms=%.1f write_max_ms=%.1f "
	       "killed=node%d killed_at_write=%ld new_leader=node%d failover_ms=%ld "
	       "new_leader_at_write=%ld restart_at_write=%ld restart_ms=%ld restarted_at_write=%ld "
	       "outbox=%ld drain_ms=%ld settle_ms=%ld topic_msgs=%zu topic_dups=%ld "
	       "topic_reorders=%ld topic_missing=%ld via_push=%ld via_gap_catchup=%ld "
	       "via_end_catchup=%ld dups_dropped=%ld gaps=%ld covered=%ld closed=%ld "
	       "push_p50_ms=%.1f push_p99_ms=%.1f push_max_ms=%.1f push_p50_ms_before_kill=%.1f "
	       "push_p99_ms_before_kill=%.1f push_before_answer=%ld violations=%ld "
	       "cluster_up_s=%.1f total_s=%.1f\n",
	       writes, rate, acked, atomic_load(&r->bad_writes), r->nusers, r->nsocks,
	       write_ms / 1e3, pct_ms(r->lat_us, na, 50), pct_ms(r->lat_us, na, 99),
	       pct_ms(r->lat_us, na, 100), victim, at_kill, leader, failover_ms, at_leader,
	       at_restart, restart_ms, at_started, outbox_rows, drain_ms, settle_ms, tt.msgs,
	       tt.dups, tt.reorders, tt.missing, pushed, caught, final_caught, dups, gaps, covered,
	       closed, pct_ms(delay, nd, 50), pct_ms(delay, nd, 99), pct_ms(delay, nd, 100),
	       pct_ms(calm, nc, 50), pct_ms(calm, nc, 99), overtook, atomic_load(&r->violations),
	       k.up_ms / 1e3, (mono_ms() - t_start) / 1e3);
	fflush(stdout);
	free(delay);
	free(calm);

	/* stop everything, then judge */
	for (int i = 0; i < r->nsocks; i++)
		ws_free(r->socks[i].ws);
	int rc_gw[GATEWAYS], rc_be;
	long gw_ms[GATEWAYS], be_ms;
	for (int g = 0; g < GATEWAYS; g++)
		rc_gw[g] = proc_stop(&gw[g], &gw_ms[g]);
	rc_be = proc_stop(&be, &be_ms);
	if (atomic_load(&r->bad_writes) > 0)
		print_service_warnings(be.log, 20);
	int64_t t_down = mono_ms();
	cluster_down(&k);
	printf("system: stopped in: ws-gateway %.1f s and %.1f s, backend-api %.1f s, the "
	       "cluster %.1f s\n",
	       gw_ms[0] / 1e3, gw_ms[1] / 1e3, be_ms / 1e3, (mono_ms() - t_down) / 1e3);
	fflush(stdout);
	char first[1024];
	snprintf(first, sizeof(first), "%s", r->first);
	long nviol = atomic_load(&r->violations);
	for (int i = 0; i < r->nusers; i++) {
		free(tu[i].ids);
		free(tu[i].copies);
	}
	free(tu);
	for (int i = 0; i < r->nsocks; i++) {
		free(r->socks[i].ids);
		free(r->socks[i].delay_us);
		free(r->socks[i].calm_us);
	}
	for (int i = 0; i < r->nusers; i++)
		free(r->users[i].ack_us);
	free(r->socks);
	free(r->users);
	free(r->lat_us);
	pthread_mutex_destroy(&r->mu);
	free(r);

	ck_assert_msg(nviol == 0, "%ld violations; the first: %s", nviol, first);
	for (int g = 0; g < GATEWAYS; g++) {
		ck_assert_msg(rc_gw[g] == 0, "ws-gateway exited with %d (log %s)", rc_gw[g],
		              gw[g].log);
		ck_assert_msg(log_clean(gw[g].log), "sanitizer report in %s", gw[g].log);
	}
	ck_assert_msg(rc_be == 0, "backend-api exited with %d (log %s)", rc_be, be.log);
	ck_assert_msg(log_clean(be.log), "sanitizer report in %s", be.log);
}
END_TEST

Suite *failover_suite(void)
{
	long writes;
	if (env_long("SYSTEM_WRITES", 5000, 1, 10000000, &writes))
		writes = 5000; /* the test itself reports the bad value */
	Suite *s = suite_create("failover");
	TCase *tc = tcase_create("integration");
	tcase_set_tags(tc, "integration");
	/* 300 s for the default run (it takes about 85 s); more for a longer one */
	tcase_set_timeout(tc, 300 + (writes > 5000 ? (double)(writes - 5000) / 40 : 0));
	tcase_add_test(tc, leader_killed_during_writes);
	suite_add_tcase(s, tc);
	return s;
}
