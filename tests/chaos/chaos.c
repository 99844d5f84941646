/* The chaos run (docs/chaos.md): the whole stack on loopback (a 3-node KRaft
 * cluster with replication factor 3 and min.insync.replicas 2, PostgreSQL, two
 * backend-api, two ws-gateway), CHAOS_USERS users with CHAOS_SOCKETS devices each
 * (spread over both gateways, applying events as web/tasksync.js does: model.c),
 * CHAOS_WRITERS threads making changes (create, patch, toggle, move, delete)
 * through the REST API with an Idempotency-Key and retries, while a schedule of
 * faults runs. After a quiet settle every device's history and list are compared
 * with the database's; the table per fault kind must show zero lost, applied twice,
 * out of order and delivered to a wrong user.
 *
 * One Check test (the harness's conventions: the services die with the test
 * process, the Kafka cluster has a guard that stops it whatever ends the test;
 * PostgreSQL is the caller's: tests/chaos/suite.sh starts one of its own, since
 * the run restarts it). SIGINT/SIGTERM end the schedule early and still stop
 * everything and print what was seen (the test then fails). */
#include "chaos.h"

#include "../support/broker.h"
#include "../support/fixtures.h"
#include "../support/http_client.h"
#include "../support/kafka_io.h"
#include "../support/pgtest.h"
#include "../support/proc.h"
#include "../support/runner.h"
#include "../system/cluster.h"
#include "../ws-gateway/ws_client.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

chaos g_chaos;

#define WRITE_HTTP_MS   3000   /* one attempt's bound; then the other backend */
#define WRITE_GIVEUP_MS 120000 /* a write retried this long is abandoned (counted) */
#define PARTITIONS      6
#define GARBAGE_N       10000
#define MAX_LIVE_TASKS  40 /* per user; more: deletes */

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	if (g_interrupted)
		_exit(130); /* a second signal: the guards and PDEATHSIG stop the rest */
	g_interrupted = 1;
}

/* ---- settings ---- */

typedef struct setting {
	const char *name;
	long *dst;
	long def, lo, hi;
	const char *help;
} setting;

static int read_settings(chaos *c, char *err, size_t errlen)
{
	const setting table[] = {
	    {"CHAOS_SECONDS", &c->seconds, 90, 10, 86400, "longest time the faults run"},
	    {"CHAOS_FAULTS", &c->max_faults, 8, 1, 100000, "faults to run (fewer if time is up)"},
	    {"CHAOS_MIN_FAULTS", &c->min_faults, 8, 0, 100000,
	     "faults to run even past CHAOS_SECONDS"},
	    {"CHAOS_USERS", &c->users_n, 12, 1, 1000, "users"},
	    {"CHAOS_SOCKETS", &c->spu, 3, 1, 16, "devices (sockets) per user"},
	    {"CHAOS_RATE", &c->rate, 15, 1, 2000, "writes per second, all writers"},
	    {"CHAOS_WRITERS", &c->writers_n, 4, 1, 64, "writer threads"},
	    {"CHAOS_READERS", &c->readers_n, 2, 1, 32, "device reader threads"},
	    {"CHAOS_SEED", &c->seed, 1, 0, 1L << 40, "schedule and write seed"},
	    {"CHAOS_SETTLE_S", &c->settle_s, 60, 5, 3600, "quiet settle before the verdict"},
	    {"CHAOS_FREEZE_S", &c->freeze_s, 20, 1, 600, "relay leader SIGSTOP"},
	    {"CHAOS_STALL_S", &c->stall_s, 15, 1, 600, "a client not reading"},
	    {"CHAOS_GAP_S", &c->gap_s, 3, 0, 600, "calm between two faults"},
	    {"CHAOS_DOWN_MS", &c->down_ms, 2000, 0, 60000, "a killed service stays down"},
	};
	err[0] = 0;
	size_t used = 0;
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		const setting *s = &table[i];
		const char *v = getenv(s->name);
		*s->dst = s->def;
		if (!v || !*v)
			continue;
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || *end || n < s->lo || n > s->hi) {
			used += (size_t)snprintf(err + used, used < errlen ? errlen - used : 0,
			                         "%s=%s: not an integer in %ld..%ld (%s); ",
			                         s->name, v, s->lo, s->hi, s->help);
			continue;
		}
		*s->dst = n;
	}
	return err[0] ? -1 : 0;
}

/* ---- services ---- */

static proc g_be[CHAOS_BACKENDS], g_gw[CHAOS_GATEWAYS];
static char g_db[256], g_topic[128];

static void start_backend(int i)
{
	char bin[1024], dbv[300], brokers[600], t[160];
	snprintf(bin, sizeof(bin), "%s/backend-api", test_env("TASKSYNC_BIN"));
	snprintf(dbv, sizeof(dbv), "DATABASE_URL=%s", g_db);
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", g_topic);
	const char *env[] = {dbv,
	                     brokers,
	                     t,
	                     "JWT_SECRET=" TEST_SECRET,
	                     "LOG_LEVEL=info",
	                     "DB_POOL_SIZE=4",
	                     "HTTP_THREADS=24",
	                     "SHUTDOWN_TIMEOUT_MS=5000",
	                     "DEV_LOGIN=0",
	                     "STATIC_DIR=",
	                     "ALLOWED_ORIGINS=",
	                     "EVENT_RETENTION=604800",
	                     NULL};
	proc_start(&g_be[i], bin, NULL, env, "/readyz", 200);
	atomic_store(&g_chaos.be_port[i], g_be[i].port);
}

static void start_gateway(int i)
{
	char bin[1024], brokers[600], t[160], mc[48];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", g_topic);
	snprintf(mc, sizeof(mc), "MAX_CONNECTIONS=%ld", g_chaos.users_n * g_chaos.spu + 200);
	const char *env[] = {brokers, t, "JWT_SECRET=" TEST_SECRET, "LOG_LEVEL=info", mc,
	                     "ALLOWED_ORIGINS=*", "KAFKA_METADATA_REFRESH_MS=1000",
	                     /* a small send buffer, so that a device that stops
	                      * reading fills it and meets the gateway's bounds */
	                     "WS_SNDBUF=32768", NULL};
	proc_start(&g_gw[i], bin, NULL, env, "/ready", 200);
	atomic_store(&g_chaos.gw_port[i], g_gw[i].port);
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

/* Service logs of every process this run started (restarts make new ones). */
static char **g_logs;
static size_t g_nlogs;

static void keep_log(const char *path)
{
	g_logs = xrealloc(g_logs, (g_nlogs + 1) * sizeof(*g_logs));
	g_logs[g_nlogs++] = xstrdup(path);
}

/* ---- randomness (xorshift64*, seeded: a schedule can be replayed) ---- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static long rnd_below(uint64_t *s, long n)
{
	return n > 0 ? (long)(rnd(s) % (uint64_t)n) : 0;
}

/* ---- writes, as the client makes them ---- */

/* One change with its Idempotency-Key, retried on the other backend until it is
 * answered (connection errors, timeouts, 5xx and 429 are retried with the same
 * key; what the client would do). Returns the final status (-1: abandoned) and
 * the body in *body when not NULL (caller frees). tag names the fault running
 * when the change was made: it travels as X-Client-Id and comes back as the
 * event's origin. @locality any thread. */
static int write_change(const user *u, int *rr, const char *method, const char *path,
                        const char *body, int tag, char **out)
{
	chaos *c = &g_chaos;
	char key[UUID_STR_LEN], hdr[1600];
	uuid_new(key);
	snprintf(hdr, sizeof(hdr),
	         "%sContent-Type: application/json\r\nIdempotency-Key: %s\r\nX-Client-Id: "
	         "chaos-%s\r\n",
	         u->auth, key, chaos_kind_name[tag]);
	atomic_fetch_add(&c->ops, 1);
	int64_t give_up = mono_ms() + WRITE_GIVEUP_MS;
	int backoff = 50;
	for (int attempt = 0;; attempt++) {
		int port = atomic_load(&c->be_port[(*rr)++ % CHAOS_BACKENDS]);
		http_resp r;
		int st = http_request(port, method, path, hdr, body, body ? strlen(body) : 0,
		                      WRITE_HTTP_MS, &r);
		if (st >= 0 && st != 429 && st < 500) {
			if (attempt)
				atomic_fetch_add(&c->writes_retried, 1);
			if (out)
				*out = xstrdup(r.body);
			http_resp_free(&r);
			return st;
		}
		http_resp_free(&r);
		if (mono_ms() > give_up || (atomic_load(&c->stop_writes) > 1)) {
			atomic_fetch_add(&c->writes_abandoned, 1);
			chaos_note("%s %s of %s abandoned after %d attempts (last %d)", method,
			           path, u->id, attempt + 1, st);
			return -1;
		}
		usleep((useconds_t)backoff * 1000);
		if (backoff < 1000)
			backoff *= 2;
	}
}

typedef struct live {
	char (*ids)[UUID_STR_LEN];
	int n;
} live_set;

typedef struct writer {
	int index;
	pthread_t thread;
} writer;

static void live_drop(live_set *l, int i)
{
	memmove(l->ids[i], l->ids[l->n - 1], UUID_STR_LEN);
	l->n--;
}

/* One random change of user ui. @locality its writer thread. */
static void write_one(int ui, live_set *l, uint64_t *rs, int *rr)
{
	chaos *c = &g_chaos;
	const user *u = &c->users[ui];
	int tag = atomic_load(&c->kind);
	char path[200], body[300];
	long op = l->n < 3 ? 0 : rnd_below(rs, 10);
	if (op >= 9 && l->n < MAX_LIVE_TASKS / 2)
		op = 0;
	if (l->n >= MAX_LIVE_TASKS)
		op = 9;
	int pick = (int)rnd_below(rs, l->n);
	const char *id = l->n ? l->ids[pick] : "";
	const char *method;
	int st;
	if (op <= 2) { /* create */
		char nid[UUID_STR_LEN];
		uuid_new(nid);
		snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"t%ld\"}", nid,
		         (long)rnd_below(rs, 1000000));
		method = "POST";
		st = write_change(u, rr, method, "/api/v1/tasks", body, tag, NULL);
		if (st == 201 || st == 200)
			snprintf(l->ids[l->n++], UUID_STR_LEN, "%s", nid);
	} else if (op <= 4) { /* patch */
		snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
		snprintf(body, sizeof(body), "{\"title\":\"p%ld\"}", (long)rnd_below(rs, 1000000));
		method = "PATCH";
		st = write_change(u, rr, method, path, body, tag, NULL);
	} else if (op <= 6) { /* toggle */
		snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
		snprintf(body, sizeof(body), "{\"completed\":%s}", rnd(rs) & 1 ? "true" : "false");
		method = "PATCH";
		st = write_change(u, rr, method, path, body, tag, NULL);
	} else if (op <= 8) { /* move before another task, or to the end */
		snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", id);
		int other = (int)rnd_below(rs, l->n);
		if (other == pick)
			snprintf(body, sizeof(body), "{\"before\":null}");
		else
			snprintf(body, sizeof(body), "{\"before\":\"%s\"}", l->ids[other]);
		method = "POST";
		st = write_change(u, rr, method, path, body, tag, NULL);
	} else { /* delete */
		snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
		method = "DELETE";
		st = write_change(u, rr, method, path, NULL, tag, NULL);
		if (st == 200 || st == 204 || st == 410)
			live_drop(l, pick);
	}
	if (st >= 200 && st < 300) {
		atomic_fetch_add(&c->writes_ok, 1);
	} else if (st == 410) {
		atomic_fetch_add(&c->writes_gone, 1); /* the stall burst deleted nothing: never */
	} else if (st >= 0) {
		atomic_fetch_add(&c->writes_bad, 1);
		chaos_note("%s of %s (%s) answered %d", method, u->id, id, st);
	}
}

static void *writer_main(void *arg)
{
	chaos *c = &g_chaos;
	writer *w = arg;
	uint64_t rs = (uint64_t)c->seed * 7919 + (uint64_t)w->index + 1;
	int rr = w->index;
	int mine = 0;
	for (int u = w->index; u < c->users_n; u += (int)c->writers_n)
		mine++;
	live_set *ls = xcalloc((size_t)mine + 1, sizeof(*ls));
	for (int i = 0; i < mine; i++)
		ls[i].ids = xcalloc(MAX_LIVE_TASKS + 1, UUID_STR_LEN);
	int64_t t0 = mono_us();
	long k = 0;
	while (!atomic_load(&c->stop_writes)) {
		/* paced: writer w makes every writers_n-th of rate writes per second */
		int64_t due = t0 + k * 1000000 * c->writers_n / c->rate;
		int64_t now = mono_us();
		if (due > now)
			usleep((useconds_t)(due - now > 200000 ? 200000 : due - now));
		if (due > mono_us())
			continue;
		k++;
		int i = (int)rnd_below(&rs, mine);
		write_one(w->index + i * (int)c->writers_n, &ls[i], &rs, &rr);
	}
	for (int i = 0; i < mine; i++)
		free(ls[i].ids);
	free(ls);
	return NULL;
}

/* ---- faults ---- */

typedef struct fault_log {
	int kind;
	double at_s, took_s;
	char what[200];
} fault_log;

static long g_nfaults;
static fault_log *g_faults;
static cluster g_kafka;

/* Sleeps ms, cut short by a signal. */
static void nap_ms(long ms)
{
	for (int64_t end = mono_ms() + ms; mono_ms() < end && !g_interrupted;)
		usleep(20000);
}

static void fault_gateway_kill(uint64_t *rs, char *what, size_t len)
{
	int g = (int)rnd_below(rs, CHAOS_GATEWAYS);
	int old = g_gw[g].port;
	proc_kill(&g_gw[g]);
	nap_ms(g_chaos.down_ms);
	start_gateway(g);
	keep_log(g_gw[g].log);
	snprintf(what, len, "gateway %d SIGKILLed (:%d), restarted on :%d", g, old, g_gw[g].port);
}

static void fault_backend_kill(uint64_t *rs, char *what, size_t len)
{
	int b = (int)rnd_below(rs, CHAOS_BACKENDS);
	int old = g_be[b].port;
	proc_kill(&g_be[b]);
	nap_ms(g_chaos.down_ms);
	start_backend(b);
	keep_log(g_be[b].log);
	snprintf(what, len, "backend %d SIGKILLed (:%d), restarted on :%d", b, old, g_be[b].port);
}

/* The backend whose relay streams (outbox_leader 1), or -1. */
static int relay_leader(void)
{
	for (int b = 0; b < CHAOS_BACKENDS; b++) {
		char *m = NULL;
		if (http_get(g_be[b].port, "/metrics", &m) == 200 &&
		    metric_in(m, "outbox_leader") == 1) {
			free(m);
			return b;
		}
		free(m);
	}
	return -1;
}

static void fault_relay_freeze(char *what, size_t len)
{
	int b = -1;
	for (int64_t end = mono_ms() + 15000; b < 0 && mono_ms() < end && !g_interrupted;) {
		b = relay_leader();
		if (b < 0)
			usleep(200000);
	}
	if (b < 0) {
		snprintf(what, len, "no relay leader found in 15 s: nothing frozen");
		chaos_note("relay_freeze: no backend reports outbox_leader 1");
		return;
	}
	ck_assert_int_eq(kill(g_be[b].pid, SIGSTOP), 0);
	nap_ms(g_chaos.freeze_s * 1000);
	int other = relay_leader(); /* answered by the one not frozen */
	ck_assert_int_eq(kill(g_be[b].pid, SIGCONT), 0);
	snprintf(what, len, "relay leader backend %d SIGSTOPped %ld s; leader then: %d", b,
	         g_chaos.freeze_s, other);
}

static void fault_kafka_kill(uint64_t *rs, char *what, size_t len)
{
	int p = (int)rnd_below(rs, PARTITIONS);
	int node = kafka_leader(g_topic, p);
	if (node < 1 || node > 3) {
		snprintf(what, len, "partition %d has no leader (%d): nothing killed", p, node);
		return;
	}
	int64_t t0 = mono_ms();
	broker_kill(node);
	nap_ms(3000); /* fenced after broker.session.timeout.ms (3 s) */
	int64_t t1 = mono_ms();
	broker_start(node);
	snprintf(what, len,
	         "node %d (leader of partition %d) SIGKILLed, down %.1f s, restart took %.1f s",
	         node, p, (t1 - t0) / 1e3, (mono_ms() - t1) / 1e3);
}

static void fault_pg_restart(long n, char *what, size_t len)
{
	const char *dir = getenv("CHAOS_PG_DIR");
	const char *mode = n % 2 ? "immediate" : "fast";
	if (!dir || !*dir) {
		snprintf(what, len, "CHAOS_PG_DIR unset: PostgreSQL not restarted");
		chaos_note("pg_restart: CHAOS_PG_DIR is not set (tests/chaos/suite.sh sets it)");
		return;
	}
	char script[1200], log[600];
	snprintf(
	    script, sizeof(script),
	    ". \"$TASKSYNC_ROOT/tools/lib.sh\"; run_as=(); [ \"$(id -u)\" -eq 0 ] && "
	    "run_as=(runuser -u postgres --); \"${run_as[@]}\" \"$PG_BIN/pg_ctl\" -D '%s/data' "
	    "-l '%s/postgres.log' -m %s -w -t 120 restart",
	    dir, dir, mode);
	snprintf(log, sizeof(log), "%s/pg-restart.log", test_env("TEST_RUN_DIR"));
	const char *args[] = {"-c", script, NULL};
	int64_t t0 = mono_ms();
	/* A fast shutdown waits until each walsender's client has confirmed all it
	 * was sent. The relay used to answer the walsender's requests with an older
	 * position, which held every shutdown under writes for seconds and one in CI
	 * past pg_ctl's 60 s (fixed; tests/backend-api test_outbox.c
	 * fast_shutdown_not_held_by_relay). The bound stays above wal_sender_timeout
	 * (60 s), and a failure shows pg_ctl's own words. */
	int rc = proc_run("/bin/bash", args, NULL, log, 150000);
	if (rc != 0) {
		char *out = read_text_file(log);
		size_t olen = strlen(out);
		ck_abort_msg("pg_ctl restart -m %s failed (%d): %s", mode, rc,
		             out + (olen > 600 ? olen - 600 : 0));
	}
	snprintf(what, len, "PostgreSQL restarted (-m %s) in %.1f s", mode, (mono_ms() - t0) / 1e3);
}

static void fault_stall(uint64_t *rs, char *what, size_t len)
{
	chaos *c = &g_chaos;
	int ui = (int)rnd_below(rs, c->users_n);
	device *d = &c->devs[ui * c->spu + c->spu - 1]; /* the one with a small SO_RCVBUF */
	long closes = atomic_load(&d->closes);
	int64_t t0 = mono_ms();
	atomic_store(&d->stalled, 1);
	/* enough to fill its socket's buffers: a task of its own, 40 patches of 8 KiB */
	const user *u = &c->users[ui];
	char id[UUID_STR_LEN], body[200], path[200];
	uuid_new(id);
	int rr = 0;
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"stall\"}", id);
	int st = write_change(u, &rr, "POST", "/api/v1/tasks", body, K_STALL, NULL);
	int sent = 0;
	if (st == 201 || st == 200) {
		char *big = xmalloc(8300);
		snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
		for (int i = 0; i < 40 && !g_interrupted; i++) {
			int n = snprintf(big, 8300, "{\"description\":\"%d ", i);
			memset(big + n, 'a' + i % 26, 8192);
			snprintf(big + n + 8192, 8300 - (size_t)n - 8192, "\"}");
			st = write_change(u, &rr, "PATCH", path, big, K_STALL, NULL);
			sent += st == 200;
		}
		free(big);
		/* a stall task does not stay: delete it (an event more) */
		(void)write_change(u, &rr, "DELETE", path, NULL, K_STALL, NULL);
	}
	long left = c->stall_s * 1000 - (long)(mono_ms() - t0);
	if (left > 0)
		nap_ms(left);
	atomic_store(&d->stalled, 0);
	double stalled_s = (mono_ms() - t0) / 1e3;
	/* what the gateway did shows once the device reads again */
	for (int64_t end = mono_ms() + 3000;
	     mono_ms() < end && atomic_load(&d->closes) == closes && !g_interrupted;)
		usleep(50000);
	char ended[64] = "no, it was kept";
	if (atomic_load(&d->closes) > closes)
		snprintf(ended, sizeof(ended), "yes (close code %d; -1: no close frame)",
		         atomic_load(&d->last_close));
	/* a line of the report: one cut short ends in "..." */
	int n = snprintf(what, len,
	                 "device %d of %s stopped reading %.1f s (%d x 8 KiB patches meanwhile); "
	                 "socket ended by the gateway: %s",
	                 (int)(d - c->devs), u->id, stalled_s, sent, ended);
	if (n >= (int)len && len > 4)
		memcpy(what + len - 4, "...", 4);
}

/* Sum of every kafka_events_rejected_total series of a gateway (-1: no answer). */
static double rejected_total(int g)
{
	char *m = NULL;
	double sum = -1;
	if (http_get(g_gw[g].port, "/metrics", &m) == 200) {
		sum = 0;
		for (char *p = m; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (!strncmp(p, "kafka_events_rejected_total", 27) &&
			    (p[27] == '{' || p[27] == ' ')) {
				const char *sp = strchr(p, ' ');
				const char *nl = strchr(p, '\n');
				if (sp && (!nl || sp < nl))
					sum += strtod(sp + 1, NULL);
			}
	}
	free(m);
	return sum;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	if (m->err)
		(*(long *)opaque)++;
}

static void fault_garbage(uint64_t *rs, char *what, size_t len)
{
	chaos *c = &g_chaos;
	char errstr[512];
	long failed = 0;
	double before[CHAOS_GATEWAYS];
	for (int g = 0; g < CHAOS_GATEWAYS; g++)
		before[g] = rejected_total(g);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"), errstr,
	                            sizeof(errstr)) == RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) ==
	          RD_KAFKA_CONF_OK);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, &failed);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	ck_assert_msg(rk != NULL, "garbage producer: %s", errstr);
	static char big[60000];
	memset(big, 'A', sizeof(big));
	char buf[1024];
	for (int i = 0; i < GARBAGE_N && !g_interrupted; i++) {
		const char *key = c->users[rnd_below(rs, c->users_n)].id;
		const void *val = buf;
		size_t vl;
		char eid[UUID_STR_LEN];
		uuid_new(eid);
		switch (i % 10) {
		case 0: /* random bytes */
			vl = 1 + (size_t)rnd_below(rs, 512);
			for (size_t k = 0; k < vl; k++)
				buf[k] = (char)rnd(rs);
			break;
		case 1:
			vl = 0;
			break;
		case 2:
			val = NULL;
			vl = 0;
			break;
		case 3:
			vl = (size_t)snprintf(buf, sizeof(buf),
			                      "{\"event_id\":\"%s\",\"user_id\":", eid);
			break;
		case 4:
			vl = (size_t)snprintf(buf, sizeof(buf), "%s", i % 20 == 4 ? "[]" : "null");
			break;
		case 5: /* no event_type */
			vl = (size_t)snprintf(buf, sizeof(buf),
			                      "{\"event_id\":\"%s\",\"user_id\":\"%s\",\"seq\":1,"
			                      "\"task\":{\"id\":\"%s\"}}",
			                      eid, key, eid);
			break;
		case 6: /* an event type nobody knows */
			vl = (size_t)snprintf(
			    buf, sizeof(buf),
			    "{\"event_id\":\"%s\",\"event_type\":\"task.exploded\","
			    "\"user_id\":\"%s\",\"seq\":1,\"task\":{\"id\":\"%s\"}}",
			    eid, key, eid);
			break;
		case 7: /* a well-formed event of a user no device has */
			vl = (size_t)snprintf(
			    buf, sizeof(buf),
			    "{\"event_id\":\"%s\",\"event_type\":\"task.created\","
			    "\"user_id\":\"ghost-%d\",\"seq\":%d,\"task\":{\"id\":\"%s\","
			    "\"title\":\"boo\"}}",
			    eid, i, i, eid);
			key = "ghost";
			break;
		case 8: /* wrong types */
			vl = (size_t)snprintf(buf, sizeof(buf),
			                      "{\"event_id\":7,\"event_type\":\"task.created\","
			                      "\"user_id\":[\"%s\"],\"seq\":\"3\",\"task\":\"x\"}",
			                      key);
			break;
		default: /* 60 KB of one letter (every hundredth), else a lone brace */
			if (i % 100 == 9) {
				val = big;
				vl = sizeof(big);
			} else {
				vl = (size_t)snprintf(buf, sizeof(buf), "}");
			}
			break;
		}
		for (;;) {
			rd_kafka_resp_err_t e = rd_kafka_producev(
			    rk, RD_KAFKA_V_TOPIC(g_topic), RD_KAFKA_V_KEY(key, strlen(key)),
			    RD_KAFKA_V_VALUE((void *)val, vl),
			    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(rk, 50);
		}
		rd_kafka_poll(rk, 0);
	}
	int64_t t0 = mono_ms();
	rd_kafka_flush(rk, 60000);
	int unflushed = rd_kafka_outq_len(rk);
	rd_kafka_destroy(rk);
	/* the gateways read them: until their counts stop moving (at most 30 s) */
	double after[CHAOS_GATEWAYS] = {0}, prev[CHAOS_GATEWAYS] = {-1, -1};
	for (int64_t end = mono_ms() + 30000; mono_ms() < end && !g_interrupted;) {
		nap_ms(1000);
		int still = 1;
		for (int g = 0; g < CHAOS_GATEWAYS; g++) {
			after[g] = rejected_total(g);
			still &= after[g] == prev[g];
			prev[g] = after[g];
		}
		if (still)
			break;
	}
	snprintf(what, len,
	         "%d garbage records produced (%ld failed, %d unflushed, flush %.1f s); gateways "
	         "rejected +%.0f and +%.0f",
	         GARBAGE_N, failed, unflushed, (mono_ms() - t0) / 1e3, after[0] - before[0],
	         after[1] - before[1]);
}

/* ---- hostile input ---- */

typedef struct hostile {
	long sent, refused, accepted; /* accepted: a hostile request answered 2xx/101 */
} hostile;

static void raw_send(int port, const void *data, size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		(void)!write(fd, data, len);
		char b[512];
		(void)!read(fd, b, sizeof(b));
	}
	close(fd);
}

/* A request that must be refused: anything but 2xx (or no answer) counts as
 * refused; want > 0 also requires exactly that status. */
static void hostile_http(hostile *h, int port, const char *method, const char *path,
                         const char *hdr, const char *body, size_t blen, int want)
{
	http_resp r;
	int st = http_request(port, method, path, hdr, body, body ? blen : 0, 5000, &r);
	h->sent++;
	if ((st >= 200 && st < 300) || (want > 0 && st != want)) {
		h->accepted++;
		chaos_note("hostile %s %s answered %d (%s expected): %.200s", method, path, st,
		           want > 0 ? "exactly that" : "a refusal", r.body ? r.body : "");
	} else {
		h->refused++;
	}
	http_resp_free(&r);
}

/* Opens a socket with target: it must be refused. */
static void hostile_ws_open(hostile *h, int port, const char *target)
{
	int st = -1;
	ws_client *w = ws_open(port, target, NULL, 0, &st);
	h->sent++;
	if (w) {
		h->accepted++;
		chaos_note("hostile WebSocket %.80s was accepted", target);
		ws_free(w);
	} else {
		h->refused++;
	}
}

/* Sends raw bytes on an open socket of user u: the gateway must close it. */
static void hostile_ws_frame(hostile *h, int port, const user *u, const void *bytes, size_t len)
{
	char target[1200];
	snprintf(target, sizeof(target), "/ws?token=%s", u->token);
	int st;
	ws_client *w = ws_open(port, target, NULL, 0, &st);
	if (!w)
		return;
	h->sent++;
	(void)!write(ws_fd(w), bytes, len);
	int closed = 0;
	for (int64_t end = mono_ms() + 5000; !closed && mono_ms() < end;) {
		char *d = NULL;
		size_t l;
		int op = ws_recv(w, 200, &d, &l);
		free(d);
		closed = op == 0x8 || op == WS_RECV_CLOSED || op == WS_RECV_ERROR;
	}
	if (closed) {
		h->refused++;
	} else {
		h->accepted++;
		chaos_note("hostile frame on a socket of %s: not closed within 5 s", u->id);
	}
	ws_free(w);
}

static void fault_hostile(uint64_t *rs, char *what, size_t len)
{
	chaos *c = &g_chaos;
	hostile h = {0};
	int a = (int)rnd_below(rs, c->users_n), b = (int)((a + 1) % c->users_n);
	const user *ua = &c->users[a], *ub = &c->users[b];
	/* a task of b's, which a must not see or touch */
	char bid[UUID_STR_LEN], body[256], path[200], hdr[1600];
	uuid_new(bid);
	int rr = 0;
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"title\":\"mine\"}", bid);
	int made = write_change(ub, &rr, "POST", "/api/v1/tasks", body, K_HOSTILE, NULL);
	char *expired = token_for(ua->id, -60);
	char *garbage = xmalloc(200000);
	for (int k = 0; k < 200000; k++)
		garbage[k] = (char)rnd(rs);
	for (int i = 0; i < CHAOS_BACKENDS && !g_interrupted; i++) {
		int port = g_be[i].port;
		raw_send(port, garbage, 4096);
		raw_send(port, "GET / HTTP/1.1\r\nHost: x\r\nX-A: ", 30);
		char *huge = xmalloc(100100);
		int n = snprintf(huge, 100100, "GET /api/v1/tasks HTTP/1.1\r\nX-Big: ");
		memset(huge + n, 'b', 100000 - (size_t)n);
		memcpy(huge + 100000, "\r\n\r\n", 4);
		raw_send(port, huge, 100004);
		free(huge);
		snprintf(hdr, sizeof(hdr), "%sContent-Type: application/json\r\n", ua->auth);
		hostile_http(&h, port, "POST", "/api/v1/tasks", hdr, "{{{", 3, 400);
		hostile_http(&h, port, "POST", "/api/v1/tasks", hdr, garbage, 150000, 0);
		hostile_http(&h, port, "POST", "/api/v1/tasks", hdr, "{\"title\":5}", 11, 0);
		hostile_http(&h, port, "GET", "/api/v1/tasks", NULL, NULL, 0, 401);
		hostile_http(&h, port, "GET", "/api/v1/tasks",
		             "Authorization: Bearer abc.def.ghi\r\n", NULL, 0, 401);
		char eh[1200];
		snprintf(eh, sizeof(eh), "Authorization: Bearer %s\r\n", expired);
		hostile_http(&h, port, "GET", "/api/v1/tasks", eh, NULL, 0, 401);
		hostile_http(&h, port, "GET", "/api/v1/events?since=-1", ua->auth, NULL, 0, 400);
		hostile_http(&h, port, "GET", "/api/v1/events?since=x%00", ua->auth, NULL, 0, 400);
		hostile_http(&h, port, "GET", "/api/v1/tasks?limit=99999999999", ua->auth, NULL, 0,
		             0);
		snprintf(hdr, sizeof(hdr),
		         "%sContent-Type: application/json\r\nIdempotency-Key: ../../etc\r\n",
		         ua->auth);
		hostile_http(&h, port, "POST", "/api/v1/tasks", hdr, "{\"title\":\"k\"}", 13, 400);
		if (made == 201 || made == 200) {
			/* another user's task: invisible (404) whatever a does */
			snprintf(path, sizeof(path), "/api/v1/tasks/%s", bid);
			snprintf(hdr, sizeof(hdr), "%sContent-Type: application/json\r\n",
			         ua->auth);
			hostile_http(&h, port, "GET", path, ua->auth, NULL, 0, 404);
			hostile_http(&h, port, "PATCH", path, hdr, "{\"title\":\"stolen\"}", 18,
			             404);
			hostile_http(&h, port, "DELETE", path, ua->auth, NULL, 0, 404);
			snprintf(path, sizeof(path), "/api/v1/tasks/%s/move", bid);
			hostile_http(&h, port, "POST", path, hdr, "{\"before\":null}", 15, 404);
		}
	}
	char target[1400];
	for (int g = 0; g < CHAOS_GATEWAYS && !g_interrupted; g++) {
		int port = g_gw[g].port;
		raw_send(port, garbage, 4096);
		hostile_ws_open(&h, port, "/ws?token=abc.def.ghi");
		snprintf(target, sizeof(target), "/ws?token=%s", expired);
		hostile_ws_open(&h, port, target);
		snprintf(target, sizeof(target), "/ws/%s?token=%s", ub->id, ua->token);
		hostile_ws_open(&h, port, target);
		hostile_ws_open(&h, port, "/ws/..%2f..?token=x");
		/* a text frame claiming 1 TiB */
		unsigned char huge[] = {0x81, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4};
		hostile_ws_frame(&h, port, ua, huge, sizeof(huge));
		/* an unmasked frame */
		unsigned char unmasked[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
		hostile_ws_frame(&h, port, ua, unmasked, sizeof(unmasked));
		/* reserved bits and opcode */
		unsigned char rsv[] = {0xf3, 0x80, 1, 2, 3, 4};
		hostile_ws_frame(&h, port, ua, rsv, sizeof(rsv));
		/* random bytes after the handshake */
		hostile_ws_frame(&h, port, ua, garbage, 2048);
	}
	free(garbage);
	free(expired);
	/* every service still up and answering */
	int alive = 1;
	for (int i = 0; i < CHAOS_BACKENDS; i++) {
		char *x = NULL;
		alive &= proc_alive(&g_be[i]) && http_get(g_be[i].port, "/healthz", &x) == 200;
		free(x);
	}
	for (int g = 0; g < CHAOS_GATEWAYS; g++) {
		char *x = NULL;
		alive &= proc_alive(&g_gw[g]) && http_get(g_gw[g].port, "/health", &x) == 200;
		free(x);
	}
	if (h.accepted || !alive)
		atomic_fetch_add(&c->garbage[K_HOSTILE], h.accepted + !alive);
	snprintf(what, len,
	         "%ld hostile requests and frames (plus raw garbage): %ld refused, %ld accepted; "
	         "services %s",
	         h.sent, h.refused, h.accepted, alive ? "all up" : "NOT ALL UP");
	ck_assert_msg(alive, "a service died of hostile input (%s)", what);
}

static void run_fault(int kind, uint64_t *rs, long n_of_kind, char *what, size_t len)
{
	switch (kind) {
	case K_GW_KILL:
		fault_gateway_kill(rs, what, len);
		break;
	case K_BE_KILL:
		fault_backend_kill(rs, what, len);
		break;
	case K_RELAY_FREEZE:
		fault_relay_freeze(what, len);
		break;
	case K_KAFKA_KILL:
		fault_kafka_kill(rs, what, len);
		break;
	case K_PG_RESTART:
		fault_pg_restart(n_of_kind, what, len);
		break;
	case K_STALL:
		fault_stall(rs, what, len);
		break;
	case K_GARBAGE:
		fault_garbage(rs, what, len);
		break;
	case K_HOSTILE:
		fault_hostile(rs, what, len);
		break;
	default:
		snprintf(what, len, "?");
	}
}

/* ---- the verdict ---- */

/* The database's events of one user, in seq order (GET /api/v1/events?since=0). */
typedef struct truth_ev {
	char eid[UUID_STR_LEN];
	int kind;
	int64_t ts_ms;
} truth_ev;

static int kind_of_origin(const char *origin)
{
	if (origin && !strncmp(origin, "chaos-", 6))
		for (int k = 0; k < K_N; k++)
			if (!strcmp(origin + 6, chaos_kind_name[k]))
				return k;
	return K_CALM;
}

/* Every event of u; *n gets the count. NULL (after a note) on error. */
static truth_ev *read_truth(const user *u, long *n)
{
	size_t cap = 256;
	truth_ev *t = xcalloc(cap, sizeof(*t));
	*n = 0;
	int rr = 0;
	for (int pages = 0; pages < 100000; pages++) {
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/events?since=%ld&limit=1000", *n);
		http_resp r;
		int st = -1;
		for (int a = 0; a < 10 && st != 200; a++) {
			if (a) {
				http_resp_free(&r);
				usleep(300000);
			}
			st = http_request(atomic_load(&g_chaos.be_port[rr++ % CHAOS_BACKENDS]),
			                  "GET", path, u->auth, NULL, 0, 10000, &r);
		}
		json_t *j = st == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		http_resp_free(&r);
		const json_t *evs = json_object_get(j, "events");
		if (!json_is_array(evs)) {
			chaos_note("the events of %s: GET %s answered %d", u->id, path, st);
			json_decref(j);
			free(t);
			return NULL;
		}
		size_t i;
		const json_t *e;
		json_array_foreach(evs, i, e)
		{
			long long seq = json_integer_value(json_object_get(e, "seq"));
			const char *eid = json_string_value(json_object_get(e, "event_id"));
			if (seq != *n + 1 || !eid || strlen(eid) >= UUID_STR_LEN) {
				chaos_note("the events of %s: seq %lld after %ld", u->id, seq, *n);
				atomic_fetch_add(&g_chaos.api_gaps, 1);
				json_decref(j);
				free(t);
				return NULL;
			}
			if ((size_t)seq + 1 >= cap) {
				t = xrealloc(t, cap * 2 * sizeof(*t));
				memset(t + cap, 0, cap * sizeof(*t));
				cap *= 2;
			}
			truth_ev *x = &t[seq];
			snprintf(x->eid, sizeof(x->eid), "%s", eid);
			x->kind = kind_of_origin(json_string_value(json_object_get(e, "origin")));
			x->ts_ms =
			    chaos_parse_time(json_string_value(json_object_get(e, "timestamp")));
			*n = (long)seq;
		}
		int more = json_is_true(json_object_get(j, "has_more")) && json_array_size(evs) > 0;
		json_decref(j);
		if (!more)
			break;
	}
	return t;
}

/* The user's list (every page) compared with d's: the tasks that differ. */
static long compare_list(const user *u, device *d, long *ntasks)
{
	char cursor[512] = "";
	long diff = 0, seen = 0;
	int rr = 0;
	for (int pages = 0; pages < 1000; pages++) {
		char path[700];
		snprintf(path, sizeof(path), "/api/v1/tasks?limit=1000%s%s",
		         cursor[0] ? "&cursor=" : "", cursor);
		http_resp r;
		int st = http_request(atomic_load(&g_chaos.be_port[rr++ % CHAOS_BACKENDS]), "GET",
		                      path, u->auth, NULL, 0, 10000, &r);
		json_t *j = st == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		http_resp_free(&r);
		const json_t *tasks = json_object_get(j, "tasks");
		if (!json_is_array(tasks)) {
			json_decref(j);
			chaos_note("the list of %s: GET %s answered %d", u->id, path, st);
			return 1;
		}
		size_t i;
		const json_t *o;
		json_array_foreach(tasks, i, o)
		{
			const char *id = json_string_value(json_object_get(o, "id"));
			mtask want = {0};
			const json_t *v;
			if ((v = json_object_get(o, "title")) && json_is_string(v))
				snprintf(want.title, sizeof(want.title), "%s",
				         json_string_value(v));
			if ((v = json_object_get(o, "position")) && json_is_string(v))
				snprintf(want.position, sizeof(want.position), "%s",
				         json_string_value(v));
			want.version = (long)json_integer_value(json_object_get(o, "version"));
			want.completed = json_is_true(json_object_get(o, "completed"));
			v = json_object_get(o, "description");
			want.desc_hash = json_is_string(v) ? chaos_hash(json_string_value(v)) : 0;
			seen++;
			mtask *m = id ? model_task(d, id) : NULL;
			if (!m || m->deleted || strcmp(m->title, want.title) ||
			    strcmp(m->position, want.position) || m->version != want.version ||
			    m->completed != want.completed || m->desc_hash != want.desc_hash) {
				if (diff++ < 3)
					chaos_note("device %d of %s: task %s differs: device %s, "
					           "database title=%s position=%s version=%ld",
					           (int)(d - g_chaos.devs), u->id, id ? id : "?",
					           !m           ? "lacks it"
					           : m->deleted ? "deleted it"
					                        : "has another copy",
					           want.title, want.position, want.version);
			}
		}
		const char *next = json_string_value(json_object_get(j, "next_cursor"));
		snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
		json_decref(j);
		if (!cursor[0])
			break;
	}
	long live = 0;
	for (size_t i = 0; i < d->ntasks; i++)
		live += !d->tasks[i].deleted;
	if (live != seen) {
		diff += labs(live - seen);
		chaos_note("device %d of %s shows %ld tasks, the database has %ld",
		           (int)(d - g_chaos.devs), u->id, live, seen);
	}
	*ntasks = seen;
	return diff;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_table(const tally *t)
{
	printf("chaos: %-18s %9s %10s %10s %6s %7s %12s %10s %8s %12s\n", "fault", "written",
	       "expected", "applied", "lost", "twice", "out_of_order", "wrong_user", "garbage",
	       "max_behind_s");
	for (int k = 0; k <= K_N; k++) {
		const tally *x = &t[k];
		printf("chaos: %-18s %9ld %10ld %10ld %6ld %7ld %12ld %10ld %8ld %12.1f\n",
		       k < K_N ? chaos_kind_name[k] : "total", x->written, x->expected, x->applied,
		       x->lost, x->twice, x->disorder, x->wrong, x->garbage, x->behind_ms / 1e3);
	}
}

START_TEST(chaos_run)
{
	chaos *c = &g_chaos;
	char err[2048];
	ck_assert_msg(read_settings(c, err, sizeof(err)) == 0, "%s", err);
	pthread_mutex_init(&c->log_mu, NULL);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int64_t t_start = mono_ms();
	printf(
	    "chaos: settings: CHAOS_SECONDS=%ld CHAOS_FAULTS=%ld CHAOS_MIN_FAULTS=%ld "
	    "CHAOS_USERS=%ld "
	    "CHAOS_SOCKETS=%ld CHAOS_RATE=%ld CHAOS_WRITERS=%ld CHAOS_READERS=%ld CHAOS_SEED=%ld "
	    "CHAOS_SETTLE_S=%ld CHAOS_FREEZE_S=%ld CHAOS_STALL_S=%ld CHAOS_GAP_S=%ld "
	    "CHAOS_DOWN_MS=%ld services=%s\n",
	    c->seconds, c->max_faults, c->min_faults, c->users_n, c->spu, c->rate, c->writers_n,
	    c->readers_n, c->seed, c->settle_s, c->freeze_s, c->stall_s, c->gap_s, c->down_ms,
	    test_env("TASKSYNC_BIN"));
	fflush(stdout);

	/* the stack */
	cluster_up(&g_kafka, 3);
	unique_name(g_topic, sizeof(g_topic), "chaos");
	kafka_create_topic(g_topic, PARTITIONS);
	pgtest_createdb(g_db, sizeof(g_db));
	for (int i = 0; i < CHAOS_BACKENDS; i++) {
		start_backend(i);
		keep_log(g_be[i].log);
	}
	for (int i = 0; i < CHAOS_GATEWAYS; i++) {
		start_gateway(i);
		keep_log(g_gw[i].log);
	}
	printf("chaos: stack up in %.1f s: kafka %s (3 nodes, topic %s, %d partitions), "
	       "backend-api :%d :%d, ws-gateway :%d :%d\n",
	       (mono_ms() - t_start) / 1e3, g_kafka.brokers, g_topic, PARTITIONS, g_be[0].port,
	       g_be[1].port, g_gw[0].port, g_gw[1].port);
	fflush(stdout);

	/* users and their devices */
	long ttl = c->seconds + c->settle_s + 7200;
	c->users = xcalloc((size_t)c->users_n, sizeof(*c->users));
	for (int i = 0; i < c->users_n; i++) {
		user *u = &c->users[i];
		unique_name(u->id, sizeof(u->id), "chaos");
		char *tok = token_for(u->id, ttl);
		ck_assert_ptr_nonnull(tok);
		snprintf(u->token, sizeof(u->token), "%s", tok);
		snprintf(u->auth, sizeof(u->auth), "Authorization: Bearer %s\r\n", tok);
		free(tok);
	}
	c->ndevs = (int)(c->users_n * c->spu);
	c->devs = xcalloc((size_t)c->ndevs, sizeof(*c->devs));
	for (int i = 0; i < c->ndevs; i++) {
		device *d = &c->devs[i];
		d->user = i / (int)c->spu;
		d->gw = i % CHAOS_GATEWAYS;
		d->rcvbuf = i % c->spu == c->spu - 1 ? 4096 : 0;
		atomic_init(&d->last, 0);
	}
	pthread_t *readers = xcalloc((size_t)c->readers_n, sizeof(*readers));
	for (long i = 0; i < c->readers_n; i++)
		ck_assert_int_eq(
		    pthread_create(&readers[i], NULL, model_reader, (void *)(intptr_t)i), 0);
	for (int64_t end = mono_ms() + 30000; mono_ms() < end;) {
		long connected = 0;
		for (int i = 0; i < c->ndevs; i++)
			connected += c->devs[i].connects > 0;
		if (connected == c->ndevs)
			break;
		usleep(50000);
	}

	/* writers, then the schedule */
	writer *ws = xcalloc((size_t)c->writers_n, sizeof(*ws));
	for (long i = 0; i < c->writers_n; i++) {
		ws[i].index = (int)i;
		ck_assert_int_eq(pthread_create(&ws[i].thread, NULL, writer_main, &ws[i]), 0);
	}
	uint64_t rs = (uint64_t)c->seed * 104729 + 17;
	g_faults = xcalloc((size_t)c->max_faults, sizeof(*g_faults));
	long per_kind[K_N] = {0};
	int order[K_N - 1];
	int64_t t_faults = mono_ms();
	nap_ms(c->gap_s * 1000);
	while (g_nfaults < c->max_faults && !g_interrupted &&
	       (mono_ms() - t_faults < c->seconds * 1000 || g_nfaults < c->min_faults)) {
		int slot = (int)(g_nfaults % (K_N - 1));
		if (slot == 0) { /* a new round: every kind once, shuffled */
			for (int k = 0; k < K_N - 1; k++)
				order[k] = k + 1;
			for (int k = K_N - 2; k > 0; k--) {
				int j = (int)rnd_below(&rs, k + 1), x = order[k];
				order[k] = order[j];
				order[j] = x;
			}
		}
		fault_log *f = &g_faults[g_nfaults++];
		f->kind = order[slot];
		f->at_s = (mono_ms() - t_start) / 1e3;
		atomic_store(&c->kind, f->kind);
		int64_t t0 = mono_ms();
		run_fault(f->kind, &rs, per_kind[f->kind]++, f->what, sizeof(f->what));
		f->took_s = (mono_ms() - t0) / 1e3;
		atomic_store(&c->kind, K_CALM);
		printf("chaos: fault %ld at %.0f s: %s: %s (%.1f s)\n", g_nfaults, f->at_s,
		       chaos_kind_name[f->kind], f->what, f->took_s);
		fflush(stdout);
		nap_ms(c->gap_s * 1000);
	}
	double faults_s = (mono_ms() - t_faults) / 1e3;
	atomic_store(&c->stop_writes, 1);
	for (long i = 0; i < c->writers_n; i++)
		pthread_join(ws[i].thread, NULL);
	free(ws);

	/* the quiet settle: until every device has its user's last seq */
	int64_t t_settle = mono_ms();
	long *want_seq = xcalloc((size_t)c->users_n, sizeof(*want_seq));
	for (int i = 0; i < c->users_n; i++) {
		int rr = i;
		for (int a = 0; a < 20; a++) {
			char *body = NULL;
			int st = write_change(&c->users[i], &rr, "GET", "/api/v1/tasks?limit=1",
			                      NULL, K_CALM, &body);
			json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
			free(body);
			if (j) {
				want_seq[i] = (long)json_integer_value(json_object_get(j, "seq"));
				json_decref(j);
				break;
			}
			usleep(500000);
		}
	}
	int settled = 0;
	while (!settled && mono_ms() - t_settle < c->settle_s * 1000 && !g_interrupted) {
		settled = 1;
		for (int i = 0; i < c->ndevs && settled; i++)
			settled = atomic_load(&c->devs[i].last) >= want_seq[c->devs[i].user];
		if (!settled)
			usleep(100000);
	}
	double settle_s = (mono_ms() - t_settle) / 1e3;
	atomic_store(&c->stop_readers, 1);
	for (long i = 0; i < c->readers_n; i++)
		pthread_join(readers[i], NULL);
	free(readers);

	/* the verdict: every device against the database */
	tally t[K_N + 1];
	memset(t, 0, sizeof(t));
	long state_diff = 0, tasks_total = 0, pushed = 0, caught = 0, dups = 0, closes = 0;
	long slow = 0, reloads = 0, catchups = 0, truth_errors = 0;
	for (int ui = 0; ui < c->users_n; ui++) {
		const user *u = &c->users[ui];
		long n;
		truth_ev *tr = read_truth(u, &n);
		if (!tr) {
			truth_errors++;
			continue;
		}
		for (long s = 1; s <= n; s++)
			t[tr[s].kind].written++, t[K_N].written++;
		for (int di = ui * (int)c->spu; di < (ui + 1) * c->spu; di++) {
			device *d = &c->devs[di];
			pushed += d->pushed;
			caught += d->caught;
			dups += d->dups;
			closes += atomic_load(&d->closes);
			slow += atomic_load(&d->slow_closes);
			reloads += d->reloads;
			catchups += d->catchups;
			long last = (long)atomic_load(&d->last);
			char **ids = xcalloc((size_t)last + 1, sizeof(*ids));
			long nids = 0;
			for (long s = 1; s <= n; s++) {
				truth_ev *x = &tr[s];
				t[x->kind].expected++;
				t[K_N].expected++;
				const applied *a =
				    s <= last && (size_t)s < d->cap ? &d->seqs[s] : NULL;
				if (!a || !a->eid[0]) {
					t[x->kind].lost++;
					t[K_N].lost++;
					if (t[K_N].lost <= 5)
						chaos_note("device %d of %s never applied seq %ld "
						           "(%s, %s)",
						           di, u->id, s, x->eid,
						           chaos_kind_name[x->kind]);
					continue;
				}
				if (!strcmp(a->eid, "reload"))
					continue;
				t[x->kind].applied++;
				t[K_N].applied++;
				ids[nids++] = (char *)a->eid;
				if (strcmp(a->eid, x->eid)) {
					t[x->kind].disorder++;
					t[K_N].disorder++;
					chaos_note("device %d of %s applied %s as seq %ld, the "
					           "database has %s",
					           di, u->id, a->eid, s, x->eid);
				}
				int64_t behind = x->ts_ms > 0 ? a->at_ms - x->ts_ms : 0;
				if (behind > t[x->kind].behind_ms)
					t[x->kind].behind_ms = behind;
				if (behind > t[K_N].behind_ms)
					t[K_N].behind_ms = behind;
			}
			for (long s = n + 1; s <= last; s++) { /* applied, never written */
				t[K_N].garbage++;
				chaos_note("device %d of %s applied seq %ld, the database has %ld",
				           di, u->id, s, n);
			}
			qsort(ids, (size_t)nids, sizeof(*ids), cmp_str);
			for (long i = 1; i < nids; i++)
				if (!strcmp(ids[i], ids[i - 1])) {
					t[K_CALM].twice++;
					t[K_N].twice++;
				}
			free(ids);
			long nt = 0;
			state_diff += compare_list(u, d, &nt);
			tasks_total += nt;
		}
		free(tr);
	}
	for (int k = 0; k < K_N; k++) {
		t[k].wrong = atomic_load(&c->wrong[k]);
		t[k].garbage += atomic_load(&c->garbage[k]);
		t[K_N].wrong += t[k].wrong;
		t[K_N].garbage += atomic_load(&c->garbage[k]);
	}
	long faults_by_kind[K_N] = {0};
	for (long i = 0; i < g_nfaults; i++)
		faults_by_kind[g_faults[i].kind]++;
	printf("chaos: faults: %ld in %.0f s (", g_nfaults, faults_s);
	for (int k = 1; k < K_N; k++)
		printf("%s%s %ld", k > 1 ? ", " : "", chaos_kind_name[k], faults_by_kind[k]);
	printf("); settle %.1f s (%s)\n", settle_s,
	       settled ? "every device caught up" : "NOT settled");
	printf("chaos: writes: %ld answered 2xx, %ld retried, %ld gone (410), %ld refused, %ld "
	       "abandoned; users %ld, devices %d, tasks in the database %ld\n",
	       atomic_load(&c->writes_ok), atomic_load(&c->writes_retried),
	       atomic_load(&c->writes_gone), atomic_load(&c->writes_bad),
	       atomic_load(&c->writes_abandoned), c->users_n, c->ndevs, tasks_total);
	printf("chaos: devices: applied %ld by push, %ld by catch-up (%ld catch-ups), %ld pushes "
	       "dropped as seen, %ld sockets ended (%ld closed 1013 as slow), %ld reloads; "
	       "state differences %ld, feed gaps %ld, seq conflicts %ld, error frames %ld, "
	       "unreadable users %ld\n",
	       pushed, caught, catchups, dups, closes, slow, reloads, state_diff,
	       atomic_load(&c->api_gaps), atomic_load(&c->conflicts), atomic_load(&c->frames_error),
	       truth_errors);
	print_table(t);
	fflush(stdout);

	/* stop everything we started, then judge */
	int rc_ok = 1;
	for (int i = 0; i < CHAOS_GATEWAYS; i++) {
		int rc = proc_stop(&g_gw[i], NULL);
		if (rc != 0)
			chaos_note("ws-gateway %d exited with %d (log %s)", i, rc, g_gw[i].log);
		rc_ok &= rc == 0;
	}
	for (int i = 0; i < CHAOS_BACKENDS; i++) {
		int rc = proc_stop(&g_be[i], NULL);
		if (rc != 0)
			chaos_note("backend-api %d exited with %d (log %s)", i, rc, g_be[i].log);
		rc_ok &= rc == 0;
	}
	cluster_down(&g_kafka);
	int logs_ok = 1;
	for (size_t i = 0; i < g_nlogs; i++) {
		if (!log_clean(g_logs[i])) {
			chaos_note("sanitizer report in %s", g_logs[i]);
			logs_ok = 0;
		}
		free(g_logs[i]);
	}
	free(g_logs);
	for (int i = 0; i < c->ndevs; i++)
		model_free(&c->devs[i]);
	free(c->devs);
	free(c->users);
	free(want_seq);
	free(g_faults);
	printf("chaos: total %.0f s\n", (mono_ms() - t_start) / 1e3);
	fflush(stdout);
	ck_assert_msg(!g_interrupted, "interrupted");
	ck_assert_msg(g_nfaults > 0, "no fault ran");
	ck_assert_msg(t[K_N].lost == 0 && t[K_N].twice == 0 && t[K_N].disorder == 0 &&
	                  t[K_N].wrong == 0 && t[K_N].garbage == 0,
	              "lost %ld, twice %ld, out of order %ld, wrong user %ld, garbage %ld",
	              t[K_N].lost, t[K_N].twice, t[K_N].disorder, t[K_N].wrong, t[K_N].garbage);
	ck_assert_msg(state_diff == 0, "%ld tasks differ between devices and the database",
	              state_diff);
	ck_assert_msg(truth_errors == 0 && atomic_load(&c->api_gaps) == 0 &&
	                  atomic_load(&c->conflicts) == 0,
	              "unreadable users %ld, feed gaps %ld, seq conflicts %ld", truth_errors,
	              atomic_load(&c->api_gaps), atomic_load(&c->conflicts));
	ck_assert_msg(atomic_load(&c->writes_bad) == 0 && atomic_load(&c->writes_abandoned) == 0,
	              "%ld writes refused, %ld abandoned", atomic_load(&c->writes_bad),
	              atomic_load(&c->writes_abandoned));
	ck_assert_msg(settled, "devices still behind after %ld s of settle", c->settle_s);
	ck_assert_msg(rc_ok, "a service did not exit cleanly");
	ck_assert_msg(logs_ok, "a sanitizer report in a service log");
}
END_TEST

static Suite *chaos_suite(void)
{
	long secs = 90, settle = 60;
	const char *v = getenv("CHAOS_SECONDS");
	if (v && strtol(v, NULL, 10) > 0)
		secs = strtol(v, NULL, 10);
	v = getenv("CHAOS_SETTLE_S");
	if (v && strtol(v, NULL, 10) > 0)
		settle = strtol(v, NULL, 10);
	Suite *s = suite_create("chaos");
	TCase *tc = tcase_create("integration");
	tcase_set_tags(tc, "integration");
	/* the faults, the last one's overrun, the stack, the settle and the verdict */
	tcase_set_timeout(tc, (double)(secs + settle + 600));
	tcase_add_test(tc, chaos_run);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *s[] = {chaos_suite()};
	return run_suites("chaos", s, 1);
}
