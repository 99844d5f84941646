#include "outbox.h"

#include "common/log.h"
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

/* Session advisory lock of the publishing leader ("tasksync" relay). */
#define LEADER_LOCK_KEY 0x7461736b02L
#define BATCH           500 /* rows read per query beyond those in flight */
#define MAX_IN_FLIGHT   20000
#define PRUNE_BATCH     10000
#define MARK_EVERY_MS   20
#define MARK_BATCH      500
#define STR_(x)         #x
#define STR(x)          STR_(x)

struct outbox_relay {
	outbox_opts o; /* strings owned */
	rd_kafka_t *rk;
	rd_kafka_queue_t *mainq;
	int wake[2]; /* pipe: librdkafka's queue io-event and outbox_stop write here */
	pthread_t th;
	atomic_int stop;
	atomic_llong deadline_ms;
	atomic_int fatal; /* the producer hit a fatal error: readyz says so */

	/* Relay-thread state. @locality relay thread only (the delivery report
	 * callback runs inside rd_kafka_poll on that thread). */
	PGconn *pg;
	int leader;
	int64_t *fl; /* produced, not yet marked published: sorted ascending */
	size_t nfl, capfl;
	int64_t *acked; /* delivered, to be marked published */
	size_t nacked, capacked;
	int restart; /* a delivery failed: purge and produce again from the lowest id */
	int64_t next_prune_ms, next_backlog_ms;
	int64_t next_mark_ms; /* marks are batched: they do not delay any event */

	metric *published, *errors, *backlog;
};

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int fl_has(const outbox_relay *r, int64_t id)
{
	return r->nfl && bsearch(&id, r->fl, r->nfl, sizeof(int64_t), cmp64) != NULL;
}

/* Adds id (ids are produced in ascending order, so this is an append but for rows
 * that committed late with a lower id). */
static void fl_add(outbox_relay *r, int64_t id)
{
	if (r->nfl == r->capfl) {
		r->capfl = r->capfl ? r->capfl * 2 : 1024;
		r->fl = xrealloc(r->fl, r->capfl * sizeof(int64_t));
	}
	size_t i = r->nfl;
	while (i > 0 && r->fl[i - 1] > id)
		i--;
	memmove(r->fl + i + 1, r->fl + i, (r->nfl - i) * sizeof(int64_t));
	r->fl[i] = id;
	r->nfl++;
}

/* Removes every id of the sorted list ids from the in-flight set. */
static void fl_remove_sorted(outbox_relay *r, const int64_t *ids, size_t n)
{
	size_t w = 0, j = 0;
	for (size_t i = 0; i < r->nfl; i++) {
		while (j < n && ids[j] < r->fl[i])
			j++;
		if (j < n && ids[j] == r->fl[i])
			continue;
		r->fl[w++] = r->fl[i];
	}
	r->nfl = w;
}

static void fl_remove(outbox_relay *r, int64_t id)
{
	fl_remove_sorted(r, &id, 1);
}

/* @locality relay thread (inside rd_kafka_poll). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	outbox_relay *r = opaque;
	int64_t id = (int64_t)(intptr_t)m->_private;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (r->nacked == r->capacked) {
			r->capacked = r->capacked ? r->capacked * 2 : 1024;
			r->acked = xrealloc(r->acked, r->capacked * sizeof(int64_t));
		}
		r->acked[r->nacked++] = id;
		metric_inc(r->published);
		return;
	}
	fl_remove(r, id);
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		return; /* we purged it: it is produced again */
	metric_inc(r->errors);
	log_error("event delivery failed", "{s:I, s:s}", "outbox_id", (json_int_t)id, "err",
	          rd_kafka_err2str(m->err));
	r->restart = 1;
}

/* @locality librdkafka threads. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	outbox_relay *r = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		rd_kafka_fatal_error(rk, why, sizeof(why));
		atomic_store(&r->fatal, 1);
		metric_inc(r->errors);
		log_error("kafka producer fatal error", "{s:s}", "err", why);
		return;
	}
	log_warn("kafka error", "{s:s, s:s}", "err", rd_kafka_err2name(err), "reason", reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	log_at(level <= 3   ? LOG_ERROR
	       : level <= 5 ? LOG_WARN
	                    : LOG_DEBUG,
	       "librdkafka", "{s:s, s:s}", "facility", fac, "detail", buf);
}

static void wake_write(outbox_relay *r)
{
	ssize_t n = write(r->wake[1], "s", 1);
	(void)n; /* a full pipe already wakes the relay */
}

static rd_kafka_t *producer_new(outbox_relay *r, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char linger[24];
	snprintf(linger, sizeof(linger), "%ld", r->o.linger_ms);
	const char *kv[][2] = {
	    {"bootstrap.servers", r->o.brokers},
	    {"enable.idempotence", "true"},
	    {"acks", "all"},
	    {"linger.ms", linger},
	    /* Retry forever: an outage delays events, never drops them; idempotence
	     * keeps each partition's order through the retries. */
	    {"message.timeout.ms", "0"},
	    {"socket.nagle.disable", "true"},
	    {"client.id", "backend-api"},
	};
	for (size_t i = 0; i < ARRAY_LEN(kv); i++) {
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, errlen) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_opaque(conf, r);
	/* Ownership of conf passes to rd_kafka_new on success only. */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

static void drop_pg(outbox_relay *r, const char *why)
{
	if (r->pg) {
		log_warn("relay lost its database connection", "{s:s, s:b}", "err", why, "leader",
		         r->leader);
		PQfinish(r->pg);
	}
	r->pg = NULL;
	r->leader = 0;
}

static int stopping(outbox_relay *r)
{
	return atomic_load(&r->stop);
}

/* Reads what the server sent and discards the notifications. Returns how many
 * there were (-1 when the connection broke). libpq also reads notifications while
 * a query runs, leaving the socket quiet: so this is checked before every sleep. */
static int drain_notifies(outbox_relay *r)
{
	if (!r->pg)
		return -1;
	if (!PQconsumeInput(r->pg)) {
		drop_pg(r, PQerrorMessage(r->pg));
		return -1;
	}
	int n = 0;
	PGnotify *nt;
	while ((nt = PQnotifies(r->pg))) {
		PQfreemem(nt);
		n++;
	}
	return n;
}

/* Waits up to ms for a NOTIFY, a delivery report or a stop. */
static void wait_events(outbox_relay *r, long ms)
{
	fd_set rd;
	FD_ZERO(&rd);
	FD_SET(r->wake[0], &rd);
	int maxfd = r->wake[0];
	int pgfd = r->pg ? PQsocket(r->pg) : -1;
	if (pgfd >= 0) {
		FD_SET(pgfd, &rd);
		if (pgfd > maxfd)
			maxfd = pgfd;
	}
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	int n = select(maxfd + 1, &rd, NULL, NULL, &tv);
	if (n <= 0)
		return;
	if (FD_ISSET(r->wake[0], &rd)) {
		char buf[256];
		while (read(r->wake[0], buf, sizeof(buf)) > 0) {
		}
	}
	if (pgfd >= 0 && FD_ISSET(pgfd, &rd))
		drain_notifies(r);
}

static int exec_ok(PGconn *pg, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	(void)pg;
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Connects, LISTENs and tries to become leader. */
static void try_lead(outbox_relay *r)
{
	if (!r->pg) {
		char err[512];
		r->pg = db_connect(r->o.database_url, "backend-api-relay", err, sizeof(err));
		if (!r->pg) {
			log_warn("relay could not connect to database", "{s:s}", "err", err);
			return;
		}
		PGresult *res = PQexec(r->pg, "LISTEN outbox");
		int ok = exec_ok(r->pg, res);
		PQclear(res);
		/* The two statements of every round, planned once per connection. */
		static const char *const prep[][2] = {
		    {"relay_fetch",
		     "SELECT id, user_id, payload FROM outbox WHERE published_at IS "
		     "NULL AND id <> ALL($1::bigint[]) ORDER BY id LIMIT " STR(BATCH)},
		    {"relay_mark", "UPDATE outbox SET published_at = now() WHERE id = "
		                   "ANY($1::bigint[])"},
		};
		for (size_t i = 0; ok && i < ARRAY_LEN(prep); i++) {
			res = PQprepare(r->pg, prep[i][0], prep[i][1], 0, NULL);
			ok = exec_ok(r->pg, res);
			PQclear(res);
		}
		if (!ok) {
			drop_pg(r, PQerrorMessage(r->pg));
			return;
		}
	}
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%ld)", LEADER_LOCK_KEY);
	PGresult *res = PQexec(r->pg, sql);
	if (!exec_ok(r->pg, res) || PQntuples(res) != 1) {
		PQclear(res);
		drop_pg(r, PQerrorMessage(r->pg));
		return;
	}
	r->leader = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (r->leader)
		log_info("relay is the publishing leader", "{}");
}

/* The array literal {1,2,3} of n ids (caller frees). */
static char *id_array(const int64_t *ids, size_t n)
{
	size_t cap = 3 + n * 21, len = 0;
	char *arr = xmalloc(cap);
	arr[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(arr + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
	arr[len++] = '}';
	arr[len] = '\0';
	return arr;
}

/* Marks delivered rows published. 0, or -1 when the database failed. */
static int mark_acked(outbox_relay *r)
{
	if (!r->nacked)
		return 0;
	qsort(r->acked, r->nacked, sizeof(int64_t), cmp64);
	char *arr = id_array(r->acked, r->nacked);
	const char *v[] = {arr};
	PGresult *res = PQexecPrepared(r->pg, "relay_mark", 1, v, NULL, NULL, 0);
	free(arr);
	int ok = exec_ok(r->pg, res);
	if (!ok)
		log_warn("could not mark events published", "{s:s}", "err",
		         PQresultErrorMessage(res));
	PQclear(res);
	if (!ok)
		return -1;
	fl_remove_sorted(r, r->acked, r->nacked);
	r->nacked = 0;
	return 0;
}

/* Purges everything in flight after a failed delivery so that the unpublished rows
 * are produced again in id order. */
static void restart_from_lowest(outbox_relay *r)
{
	log_warn("relay restarts from the lowest unpublished event", "{s:I}", "in_flight",
	         (json_int_t)r->nfl);
	rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	for (int i = 0; i < 100 && rd_kafka_outq_len(r->rk) > 0; i++)
		rd_kafka_poll(r->rk, 10);
	rd_kafka_poll(r->rk, 0);
	r->restart = 0;
	/* Delivered ones stay to be marked; the rest are read again. */
	r->nfl = 0;
	for (size_t i = 0; i < r->nacked; i++)
		fl_add(r, r->acked[i]);
}

/* Reads unpublished rows and produces those not in flight. Returns the number of
 * rows produced, or -1 when the database failed. *more is set when rows are left. */
static int produce_batch(outbox_relay *r, int *more)
{
	*more = 0;
	if (r->nfl >= MAX_IN_FLIGHT)
		return 0;
	/* Rows in flight are left out by id: their payloads are not read again. */
	char *skip = id_array(r->fl, r->nfl);
	const char *v[] = {skip};
	PGresult *res = PQexecPrepared(r->pg, "relay_fetch", 1, v, NULL, NULL, 0);
	free(skip);
	if (!exec_ok(r->pg, res)) {
		log_warn("could not read the outbox", "{s:s}", "err", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	int rows = PQntuples(res), produced = 0;
	*more = rows >= BATCH;
	for (int i = 0; i < rows; i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (fl_has(r, id))
			continue;
		const char *user = PQgetvalue(res, i, 1);
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    r->rk, RD_KAFKA_V_TOPIC(r->o.topic),
		    RD_KAFKA_V_KEY(user, (size_t)PQgetlength(res, i, 1)),
		    RD_KAFKA_V_VALUE(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2)),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			/* Later rows wait for the next round, so order is kept. */
			*more = 1;
			break;
		}
		if (e) {
			metric_inc(r->errors);
			log_error("could not produce event", "{s:I, s:s}", "outbox_id",
			          (json_int_t)id, "err", rd_kafka_err2str(e));
			*more = 1;
			break;
		}
		fl_add(r, id);
		produced++;
	}
	PQclear(res);
	return produced;
}

static void update_backlog(outbox_relay *r)
{
	PGresult *res = PQexec(r->pg, "SELECT count(*) FROM outbox WHERE published_at IS NULL");
	if (exec_ok(r->pg, res) && PQntuples(res) == 1)
		metric_set(r->backlog, (double)strtoll(PQgetvalue(res, 0, 0), NULL, 10));
	PQclear(res);
}

/* Deletes published rows older than the retention, keeping each user's latest event
 * so /events can tell "nothing new" from "gone". */
static void prune(outbox_relay *r)
{
	char ret[24];
	snprintf(ret, sizeof(ret), "%ld", r->o.retention_s);
	const char *v[] = {ret, "10000"};
	long total = 0;
	for (int round = 0; round < 100; round++) {
		PGresult *res = PQexecParams(
		    r->pg,
		    "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o WHERE "
		    "o.published_at IS NOT NULL AND o.created_at < now() - make_interval(secs => "
		    "$1::bigint) AND o.seq < (SELECT u.seq FROM user_seq u WHERE u.user_id = "
		    "o.user_id) LIMIT $2::int)",
		    2, NULL, v, NULL, NULL, 0);
		int ok = exec_ok(r->pg, res);
		long n = ok ? strtol(PQcmdTuples(res), NULL, 10) : 0;
		if (!ok)
			log_warn("could not prune the outbox", "{s:s}", "err",
			         PQresultErrorMessage(res));
		PQclear(res);
		total += n;
		if (!ok || n < PRUNE_BATCH)
			break;
	}
	if (total)
		log_info("outbox pruned", "{s:i}", "rows", (int)total);
}

static void *relay_main(void *arg)
{
	outbox_relay *r = arg;
	long prune_every_ms = r->o.retention_s * 1000 / 4;
	if (prune_every_ms > 60000)
		prune_every_ms = 60000;
	if (prune_every_ms < 5000)
		prune_every_ms = 5000;
	for (;;) {
		int stop = stopping(r);
		if (stop && mono_ms() >= atomic_load(&r->deadline_ms))
			break;
		rd_kafka_poll(r->rk, 0);
		if (!r->leader) {
			try_lead(r);
			if (!r->leader) {
				if (stop)
					break; /* not publishing: nothing to flush */
				wait_events(r, 1000);
				continue;
			}
		}
		if (r->restart)
			restart_from_lowest(r);
		/* Marking published costs the database a write but delays no event, so it is
		 * batched: at most every MARK_EVERY_MS unless many are waiting. */
		int64_t tnow = mono_ms();
		if (r->nacked && (stop || r->nacked >= MARK_BATCH || tnow >= r->next_mark_ms)) {
			if (mark_acked(r)) {
				drop_pg(r, PQerrorMessage(r->pg));
				continue;
			}
			r->next_mark_ms = tnow + MARK_EVERY_MS;
		}
		/* Notifications up to here are covered by the read that follows. */
		if (drain_notifies(r) < 0)
			continue;
		int more = 0;
		int n = produce_batch(r, &more);
		if (n < 0) {
			drop_pg(r, PQerrorMessage(r->pg));
			continue;
		}
		int64_t now = mono_ms();
		if (now >= r->next_backlog_ms) {
			update_backlog(r);
			r->next_backlog_ms = now + 1000;
		}
		if (now >= r->next_prune_ms) {
			if (r->next_prune_ms)
				prune(r);
			r->next_prune_ms = now + prune_every_ms;
		}
		if (stop && !more && n == 0 && r->nfl == 0 && r->nacked == 0)
			break; /* everything published and marked */
		if (more && r->nfl < MAX_IN_FLIGHT)
			continue;
		int woke = drain_notifies(r);
		if (woke < 0)
			continue;
		if (woke > 0)
			continue; /* a commit after our read: read again now */
		long wait = r->o.poll_ms;
		if (stop || r->nfl > 0)
			wait = wait < 100 ? wait : 100;
		if (r->nacked)
			wait = MARK_EVERY_MS;
		wait_events(r, wait);
	}
	/* Flush what is in flight within the deadline, then mark it. */
	int64_t left = atomic_load(&r->deadline_ms) - mono_ms();
	rd_kafka_flush(r->rk, left > 0 ? (int)left : 0);
	rd_kafka_poll(r->rk, 0);
	if (r->pg && r->leader && mark_acked(r) == 0 && r->nfl)
		log_warn("events left unpublished at exit (published by the next leader)", "{s:I}",
		         "in_flight", (json_int_t)r->nfl);
	return NULL;
}

outbox_relay *outbox_start(const outbox_opts *o, metrics *m, char *err, size_t errlen)
{
	outbox_relay *r = xcalloc(1, sizeof(*r));
	r->o = *o;
	r->o.database_url = xstrdup(o->database_url);
	r->o.brokers = xstrdup(o->brokers);
	r->o.topic = xstrdup(o->topic);
	r->wake[0] = r->wake[1] = -1;
	r->published = metrics_counter(m, "outbox_published_total",
	                               "Events delivered to Kafka and marked published.", NULL);
	r->errors = metrics_counter(m, "kafka_publish_errors_total",
	                            "Events Kafka refused or failed to deliver.", NULL);
	r->backlog = metrics_gauge(m, "outbox_backlog", "Outbox rows not yet published.", NULL);
	if (pipe2(r->wake, O_NONBLOCK | O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	r->rk = producer_new(r, err, errlen);
	if (!r->rk)
		goto fail;
	r->mainq = rd_kafka_queue_get_main(r->rk);
	rd_kafka_queue_io_event_enable(r->mainq, r->wake[1], "k", 1);
	if (pthread_create(&r->th, NULL, relay_main, r)) {
		snprintf(err, errlen, "could not start the relay thread");
		goto fail;
	}
	return r;
fail:
	if (r->mainq)
		rd_kafka_queue_destroy(r->mainq);
	if (r->rk)
		rd_kafka_destroy(r->rk);
	if (r->wake[0] >= 0) {
		close(r->wake[0]);
		close(r->wake[1]);
	}
	free((char *)r->o.database_url);
	free((char *)r->o.brokers);
	free((char *)r->o.topic);
	free(r);
	return NULL;
}

int outbox_kafka_ready(outbox_relay *r, int timeout_ms)
{
	if (atomic_load(&r->fatal))
		return 0;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(r->rk, 0, NULL, &md, timeout_ms);
	if (e)
		return 0;
	int ok = md->broker_cnt > 0;
	rd_kafka_metadata_destroy(md);
	return ok;
}

void outbox_stop(outbox_relay *r, int64_t deadline_ms)
{
	if (!r)
		return;
	atomic_store(&r->deadline_ms, deadline_ms);
	atomic_store(&r->stop, 1);
	wake_write(r);
	pthread_join(r->th, NULL);
	rd_kafka_queue_io_event_enable(r->mainq, -1, NULL, 0);
	rd_kafka_queue_destroy(r->mainq);
	rd_kafka_destroy(r->rk);
	if (r->pg)
		PQfinish(r->pg);
	close(r->wake[0]);
	close(r->wake[1]);
	free(r->fl);
	free(r->acked);
	free((char *)r->o.database_url);
	free((char *)r->o.brokers);
	free((char *)r->o.topic);
	free(r);
}
