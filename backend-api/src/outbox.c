/* The relay (see outbox.h).
 *
 * Transactions come from the stream in commit order and are kept in a queue, each
 * with the number of its events Kafka has not acknowledged yet. The head of the
 * queue, once closed (its COMMIT seen) and acknowledged, is popped and its end LSN
 * becomes the position to confirm; with the queue empty, the server's keepalive
 * position may be confirmed too (there is nothing of ours before it). Events carry
 * their transaction's serial number as opaque; serials never repeat, so a delivery
 * report from before a reset (serial below the queue's base) is ignored.
 *
 * Order. Within one producer, the idempotent producer keeps each partition's order
 * and enable.gapless.guarantee turns any failure that would let n+1 land without n
 * into a fatal error, which resets the relay. After a reset everything after the
 * acknowledged position is produced again in commit order, so a user's events on
 * the topic, with repeats dropped, are in seq order. */
#include "outbox.h"
#include "task_store.h"

#include "common/log.h"
#include "db.h"
#include "wal.h"

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

#define READ_BURST      1000  /* stream messages read per round */
#define MAX_IN_FLIGHT   50000 /* events produced, not acknowledged */
#define RESET_GRACE_MS  1000  /* a reset waits this long for what is in flight */
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  30000
#define DEAD_REMEMBERED 1024 /* dead-lettered ids skipped when streamed again */
#define PRUNE_BATCH     2000 /* rows deleted per loop turn */
#define ALIVE_MS        30000
#define LOG_EVERY_MS    10000 /* rate limit of repeated warnings */

/* A transaction from the stream. */
typedef struct txn {
	uint64_t end_lsn; /* 0 until its COMMIT */
	int64_t commit_us;
	long pending; /* events produced, not yet acknowledged or dead-lettered */
} txn;

/* What a produced message carries (its opaque): freed in its delivery report. */
typedef struct ev_ref {
	uint64_t serial;
	int64_t id, seq;
	int solo; /* produced with nothing else in flight (see suspects) */
	char event_id[UUID_STR_LEN];
	char user[];
} ev_ref;

/* A failed event, waiting to be dead-lettered (a database write, done outside the
 * delivery report callback). */
typedef struct dead {
	ev_ref *ref;
	rd_kafka_resp_err_t err;
} dead;

struct outbox_relay {
	outbox_opts o; /* strings owned */
	char slot[64];
	rd_kafka_t *rk; /* replaced after a fatal error: @locks rk_mu (for other threads) */
	pthread_mutex_t rk_mu;
	rd_kafka_queue_t *mainq;
	int wake[2]; /* pipe: librdkafka's queue io-event and outbox_stop write here */
	pthread_t th;
	atomic_int stop;
	atomic_llong deadline_ms;
	atomic_int fatal;     /* the producer hit a fatal error: made anew */
	atomic_llong beat_ms; /* the loop's last turn (outbox_alive) */

	/* Relay-thread state. @locality relay thread only (delivery reports run inside
	 * rd_kafka_poll on that thread). */
	PGconn *pg; /* SQL: slot checks, dead letters, pruning, lag */
	wal_stream *ws;
	txn *tq; /* ring of transactions, head first */
	size_t tq_head, tq_n, tq_cap;
	uint64_t tq_base; /* serial of tq[tq_head] */
	uint64_t flushed; /* confirmed position */
	long in_flight;
	int reset_due;
	int solo_wait; /* a solo event was produced: read on once it is acknowledged */
	long backoff_ms;
	int64_t next_try_ms, next_prune_ms, next_lag_ms, last_warn_ms;
	uint64_t flushed_at_reset;
	char server[48]; /* wal_server_id of the stream flushed was reached on */
	dead *dq;
	size_t ndq, capdq;
	int64_t dead_ids[DEAD_REMEMBERED];
	size_t ndead_ids;
	/* Events of a batch Kafka refused: the broker judges a batch as a whole, so
	 * after the reset each is produced alone; only one refused alone is dead. */
	int64_t suspect_ids[DEAD_REMEMBERED];
	size_t nsuspect_ids;
	/* A message the producer's queue had no room for: produced before reading on. */
	ev_ref *held;
	char *held_payload;
	size_t held_len;

	metric *published, *errors, *backlog, *lag, *dead_letters, *resets, *leader, *slot_created;
	metric *commit_to_ack, *commit_to_read;
};

static txn *tq_at(outbox_relay *r, size_t i)
{
	return &r->tq[(r->tq_head + i) % r->tq_cap];
}

static uint64_t tq_push(outbox_relay *r, int64_t commit_us)
{
	if (r->tq_n == r->tq_cap) {
		size_t cap = r->tq_cap ? r->tq_cap * 2 : 256;
		txn *q = xmalloc(cap * sizeof(txn));
		for (size_t i = 0; i < r->tq_n; i++)
			q[i] = *tq_at(r, i);
		free(r->tq);
		r->tq = q;
		r->tq_cap = cap;
		r->tq_head = 0;
	}
	*tq_at(r, r->tq_n) = (txn){0, commit_us, 0};
	r->tq_n++;
	return r->tq_base + r->tq_n - 1;
}

static txn *tq_find(outbox_relay *r, uint64_t serial)
{
	if (serial < r->tq_base || serial - r->tq_base >= r->tq_n)
		return NULL;
	return tq_at(r, (size_t)(serial - r->tq_base));
}

/* Pops the acknowledged transactions off the head: what may be confirmed. */
static void tq_settle(outbox_relay *r)
{
	while (r->tq_n && tq_at(r, 0)->end_lsn && tq_at(r, 0)->pending == 0) {
		r->flushed = tq_at(r, 0)->end_lsn;
		r->tq_head = (r->tq_head + 1) % r->tq_cap;
		r->tq_n--;
		r->tq_base++;
	}
	if (!r->tq_n && r->ws && wal_server_lsn(r->ws) > r->flushed)
		r->flushed = wal_server_lsn(r->ws);
}

/* Forgets every transaction (a reset): later reports of their events are stale. */
static void tq_clear(outbox_relay *r)
{
	r->tq_base += r->tq_n;
	r->tq_n = 0;
	r->tq_head = 0;
}

static int warn_due(outbox_relay *r)
{
	int64_t now = mono_ms();
	if (now - r->last_warn_ms < LOG_EVERY_MS && r->last_warn_ms)
		return 0;
	r->last_warn_ms = now;
	return 1;
}

/* Errors of the message itself: no retry can get it through. */
static int message_refused(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
		return 1;
	default:
		return 0;
	}
}

/* An event is done: acknowledged, or dead-lettered. */
static void done_one(outbox_relay *r, uint64_t serial)
{
	txn *t = tq_find(r, serial);
	if (t)
		t->pending--;
}

/* @locality relay thread (inside rd_kafka_poll). Every produced message gets one
 * report. A failed event is never done: its transaction is not confirmed, the
 * relay resets and it is streamed again. A refusal of the message itself (of a
 * batch, for the broker judges a batch whole) makes it a suspect, produced alone
 * after the reset; refused alone, it is dead-lettered. That holds for a report
 * that comes after the reset too (the fatal error can come first). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	outbox_relay *r = opaque;
	ev_ref *ref = m->_private;
	r->in_flight--;
	metric_set(r->backlog, (double)r->in_flight);
	txn *t = tq_find(r, ref->serial);
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (t) {
			metric_observe(r->commit_to_ack, (double)(wall_us() - t->commit_us) / 1e6);
			t->pending--;
		}
		metric_inc(r->published);
		free(ref);
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
		free(ref); /* we purged it (a reset): streamed again */
		return;
	}
	metric_inc(r->errors);
	if (message_refused(m->err) && ref->solo) {
		r->dq = xgrow(r->dq, &r->capdq, r->ndq + 1, sizeof(dead));
		r->dq[r->ndq++] = (dead){ref, m->err};
		return;
	}
	if (message_refused(m->err))
		r->suspect_ids[r->nsuspect_ids++ % DEAD_REMEMBERED] = ref->id;
	if (t && warn_due(r))
		log_error("event delivery failed: relay resets", "{s:I, s:s}", "outbox_id",
		          (json_int_t)ref->id, "err", rd_kafka_err2str(m->err));
	free(ref);
	r->reset_due = 1;
}

/* @locality librdkafka threads. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	outbox_relay *r = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		rd_kafka_fatal_error(rk, why, sizeof(why));
		atomic_store(&r->fatal, 1);
		log_error("kafka producer fatal error: the producer is made anew", "{s:s}", "err",
		          why);
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
	char linger[24], in_flight[24];
	snprintf(linger, sizeof(linger), "%ld", r->o.linger_ms);
	snprintf(in_flight, sizeof(in_flight), "%ld",
	         r->o.max_in_flight > 0 ? r->o.max_in_flight : 1);
	const char *kv[][2] = {
	    {"bootstrap.servers", r->o.brokers},
	    {"enable.idempotence", "true"},
	    /* A failure that would leave a gap in a partition is fatal (the relay
	     * resets) rather than skipped over. */
	    {"enable.gapless.guarantee", "true"},
	    {"acks", "all"},
	    {"linger.ms", linger},
	    /* Retry forever: an outage delays events, never drops them. */
	    {"message.timeout.ms", "0"},
	    {"queue.buffering.max.messages", "100000"},
	    {"socket.nagle.disable", "true"},
	    /* The idempotent producer allows 5 requests in flight per partition, but
	     * while 5 are out and messages wait, librdkafka's broker thread (2.0 to
	     * 2.8 at least) sets its wakeup to now and spins in poll() until an
	     * acknowledgement comes: a third of a core at 4,000 writes/s. With one
	     * request per connection the next batch waits, built, in the output
	     * queue instead, and the thread sleeps until the acknowledgement. */
	    {"max.in.flight.requests.per.connection", in_flight},
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

/* Purges the producer and serves the reports of what it held (freeing their
 * refs), at most ms. */
static void producer_drain(outbox_relay *r, int ms)
{
	rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	int64_t until = mono_ms() + ms;
	do
		rd_kafka_poll(r->rk, 10);
	while (rd_kafka_outq_len(r->rk) > 0 && mono_ms() < until);
}

static int producer_open(outbox_relay *r, char *err, size_t errlen)
{
	rd_kafka_t *rk = producer_new(r, err, errlen);
	if (!rk)
		return -1;
	pthread_mutex_lock(&r->rk_mu);
	r->rk = rk;
	pthread_mutex_unlock(&r->rk_mu);
	r->mainq = rd_kafka_queue_get_main(r->rk);
	rd_kafka_queue_io_event_enable(r->mainq, r->wake[1], "k", 1);
	return 0;
}

static void producer_close(outbox_relay *r)
{
	if (!r->rk)
		return;
	producer_drain(r, 2000);
	rd_kafka_queue_io_event_enable(r->mainq, -1, NULL, 0);
	rd_kafka_queue_destroy(r->mainq);
	pthread_mutex_lock(&r->rk_mu);
	rd_kafka_destroy(r->rk);
	r->rk = NULL;
	pthread_mutex_unlock(&r->rk_mu);
	r->mainq = NULL;
	r->in_flight = 0; /* what was left is streamed again */
}

static int exec_ok(PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* The SQL connection, opened when missing. */
static PGconn *sql(outbox_relay *r)
{
	if (r->pg && PQstatus(r->pg) != CONNECTION_OK) {
		PQfinish(r->pg);
		r->pg = NULL;
	}
	if (!r->pg) {
		char err[512];
		r->pg = db_connect(r->o.database_url, "backend-api-relay-sql", r->o.session_options,
		                   err, sizeof(err));
		if (!r->pg && warn_due(r))
			log_warn("relay could not connect to the database", "{s:s}", "err", err);
	}
	return r->pg;
}

static int dead_letter_flush(outbox_relay *r);

/* Resets (see outbox.h): the stream closed, the producer purged, or made anew
 * after a fatal error; the next try after the backoff. */
static void reset(outbox_relay *r, const char *why)
{
	metric_inc(r->resets);
	if (r->flushed != r->flushed_at_reset)
		r->backoff_ms = BACKOFF_MIN_MS; /* something got through since the last */
	else if (r->backoff_ms < BACKOFF_MAX_MS)
		r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (r->backoff_ms > BACKOFF_MAX_MS)
		r->backoff_ms = BACKOFF_MAX_MS;
	r->flushed_at_reset = r->flushed;
	/* What is in flight is given a moment to be acknowledged, its transactions
	 * still known, rather than purged and produced again: when the stream or the
	 * database failed and Kafka did not, a purged request the broker had already
	 * written would be a duplicate. After a fatal error nothing more comes. */
	int64_t grace_until = mono_ms() + RESET_GRACE_MS;
	while (r->rk) {
		rd_kafka_poll(r->rk, r->in_flight > 0 ? 10 : 0);
		if (r->in_flight <= 0 || atomic_load(&r->fatal) || mono_ms() >= grace_until)
			break;
	}
	if (r->ndq && dead_letter_flush(r))
		log_warn("dead letters not written before the reset", "{s:I}", "left",
		         (json_int_t)r->ndq);
	log_warn("relay resets", "{s:s, s:i}", "why", why, "retry_in_ms", (int)r->backoff_ms);
	if (r->ws) {
		char err[256];
		tq_settle(r);
		/* What is confirmed is not streamed again; if this fails, more is. */
		if (wal_confirm(r->ws, r->flushed, 1, err, sizeof(err)))
			log_debug("could not confirm before the reset", "{s:s}", "err", err);
		wal_close(r->ws);
		r->ws = NULL;
	}
	metric_set(r->leader, 0);
	free(r->held);
	free(r->held_payload);
	r->held = NULL;
	r->held_payload = NULL;
	tq_clear(r); /* before the purge: its reports are stale */
	if (atomic_load(&r->fatal) || !r->rk) {
		producer_close(r);
		char err[512];
		if (producer_open(r, err, sizeof(err)))
			log_error("could not make the producer anew", "{s:s}", "err", err);
		else
			atomic_store(&r->fatal, 0);
	} else {
		producer_drain(r, 1000);
	}
	metric_set(r->backlog, (double)r->in_flight);
	r->reset_due = 0;
	r->next_try_ms = mono_ms() + r->backoff_ms;
}

/* Writes the dead letters the reports collected; an event counts as done once its
 * row is written. 0, or -1 (the database failed: reset). */
static int dead_letter_flush(outbox_relay *r)
{
	while (r->ndq) {
		dead *d = &r->dq[r->ndq - 1];
		PGconn *pg = sql(r);
		if (!pg)
			return -1;
		char id[24], seq[24];
		snprintf(id, sizeof(id), "%" PRId64, d->ref->id);
		snprintf(seq, sizeof(seq), "%" PRId64, d->ref->seq);
		const char *v[] = {id, d->ref->user, seq, d->ref->event_id,
		                   rd_kafka_err2str(d->err)};
		PGresult *res = PQexecParams(
		    pg,
		    "INSERT INTO outbox_dead_letter (outbox_id, user_id, seq, event_id, error) "
		    "VALUES ($1::bigint, $2, $3::bigint, $4::uuid, $5) ON CONFLICT DO NOTHING",
		    5, NULL, v, NULL, NULL, 0);
		int ok = exec_ok(res);
		if (!ok)
			log_warn("could not write a dead letter", "{s:s}", "err",
			         PQresultErrorMessage(res));
		PQclear(res);
		if (!ok)
			return -1;
		metric_inc(r->dead_letters);
		log_error("event dead-lettered: Kafka refuses it; clients fetch it from "
		          "/api/v1/events",
		          "{s:I, s:s, s:I, s:s, s:s}", "outbox_id", (json_int_t)d->ref->id, "user",
		          d->ref->user, "seq", (json_int_t)d->ref->seq, "event_id",
		          d->ref->event_id, "err", rd_kafka_err2str(d->err));
		r->dead_ids[r->ndead_ids++ % DEAD_REMEMBERED] = d->ref->id;
		done_one(r, d->ref->serial);
		free(d->ref);
		r->ndq--;
	}
	return 0;
}

static int id_in(const int64_t *ids, size_t count, int64_t id)
{
	size_t n = count < DEAD_REMEMBERED ? count : DEAD_REMEMBERED;
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* Produces one event; on a full queue, or while a solo one must wait for what is
 * in flight, keeps it (r->held). 0, or -1 (reset). */
static int produce(outbox_relay *r, ev_ref *ref, const char *payload, size_t plen)
{
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__QUEUE_FULL; /* a solo one waits */
	if (!ref->solo || r->in_flight == 0)
		e = rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(r->o.topic),
		                      RD_KAFKA_V_KEY(ref->user, strlen(ref->user)),
		                      RD_KAFKA_V_VALUE((void *)payload, plen),
		                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                      RD_KAFKA_V_OPAQUE(ref), RD_KAFKA_V_END);
	int was_held = r->held == ref;
	if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL && was_held) {
		free(r->held_payload);
		r->held = NULL;
		r->held_payload = NULL;
	}
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
		r->in_flight++;
		metric_set(r->backlog, (double)r->in_flight);
		return 0;
	}
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL || (ref->solo && r->in_flight > 0)) {
		if (!was_held) {
			r->held = ref;
			r->held_payload = xstrndup(payload, plen);
			r->held_len = plen;
		}
		return 0;
	}
	metric_inc(r->errors);
	if (message_refused(e)) {
		r->dq = xgrow(r->dq, &r->capdq, r->ndq + 1, sizeof(dead));
		r->dq[r->ndq++] = (dead){ref, e};
		return 0;
	}
	if (warn_due(r))
		log_error("could not produce event: relay resets", "{s:I, s:s}", "outbox_id",
		          (json_int_t)ref->id, "err", rd_kafka_err2str(e));
	free(ref);
	return -1;
}

static int produce_held(outbox_relay *r)
{
	ev_ref *ref = r->held;
	if (!ref)
		return 0;
	return produce(r, ref, r->held_payload, r->held_len);
}

/* Reads and produces what the stream has, up to READ_BURST messages. 0 when it
 * has read all there was (or must wait for room), 1 when more may be there, -1
 * with why (reset). */
static int stream_round(outbox_relay *r, char *why, size_t whylen)
{
	for (int i = 0; i < READ_BURST; i++) {
		if (r->held || r->in_flight >= MAX_IN_FLIGHT || (r->solo_wait && r->in_flight > 0))
			return 0;
		r->solo_wait = 0;
		wal_msg m;
		int rc = wal_next(r->ws, &m, why, whylen);
		if (rc == WAL_AGAIN)
			return 0;
		if (rc != WAL_OK)
			return -1;
		if (m.kind == WAL_BEGIN) {
			metric_observe(r->commit_to_read, (double)(wall_us() - m.commit_us) / 1e6);
			tq_push(r, m.commit_us);
		} else if (m.kind == WAL_COMMIT) {
			if (!r->tq_n) {
				snprintf(why, whylen, "COMMIT without BEGIN in the stream");
				return -1;
			}
			tq_at(r, r->tq_n - 1)->end_lsn = m.lsn;
		} else if (m.kind == WAL_REPLY) {
			tq_settle(r);
			if (wal_confirm(r->ws, r->flushed, 1, why, whylen))
				return -1;
		} else if (m.kind == WAL_ROW) {
			if (!r->tq_n || tq_at(r, r->tq_n - 1)->end_lsn) {
				snprintf(why, whylen, "row outside a transaction in the stream");
				return -1;
			}
			if (m.id < 0 || m.seq < 1 || m.user_len == 0) {
				snprintf(why, whylen, "outbox row with a bad id, seq or user");
				return -1;
			}
			if (id_in(r->dead_ids, r->ndead_ids, m.id))
				continue; /* dead-lettered before a reset */
			ev_ref *ref = xmalloc(sizeof(*ref) + m.user_len + 1);
			ref->serial = r->tq_base + r->tq_n - 1;
			ref->id = m.id;
			ref->seq = m.seq;
			ref->solo = id_in(r->suspect_ids, r->nsuspect_ids, m.id);
			r->solo_wait |= ref->solo;
			memcpy(ref->event_id, m.event_id, UUID_STR_LEN - 1);
			ref->event_id[UUID_STR_LEN - 1] = '\0';
			memcpy(ref->user, m.user, m.user_len);
			ref->user[m.user_len] = '\0';
			tq_at(r, r->tq_n - 1)->pending++;
			if (produce(r, ref, m.payload, m.payload_len)) {
				snprintf(why, whylen, "produce failed");
				return -1;
			}
		}
	}
	return 1;
}

/* Creates the slot (it waits for the transactions running now to end: a
 * consistent start). 0 (also when another process created it just now), or -1. */
static int create_slot(outbox_relay *r, PGconn *pg, char *err, size_t errlen)
{
	const char *v[] = {r->slot};
	PGresult *res =
	    PQexecParams(pg, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", 1, NULL,
	                 v, NULL, NULL, 0);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int rc = -1;
	if (exec_ok(res)) {
		log_info("replication slot created", "{s:s}", "slot", r->slot);
		rc = 0;
	} else if (state && !strcmp(state, "42710")) {
		rc = 0;
	} else {
		snprintf(err, errlen, "could not create replication slot %s: %s", r->slot,
		         PQresultErrorMessage(res));
	}
	PQclear(res);
	return rc;
}

/* Derives the slot name from the database's when none is configured, checks what
 * streaming needs, creates the slot when missing. 0, or -1 with err. */
static int prepare_slot(outbox_relay *r, char *err, size_t errlen)
{
	PGconn *pg = db_connect(r->o.database_url, "backend-api-relay-sql", r->o.session_options,
	                        err, errlen);
	if (!pg)
		return -1;
	int rc = -1;
	PGresult *res = PQexec(
	    pg, "SELECT current_setting('wal_level'), current_database(), "
	        "(SELECT count(*) FROM pg_publication WHERE pubname = '" OUTBOX_PUBLICATION "'), "
	        "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)");
	if (!exec_ok(res) || PQntuples(res) != 1) {
		snprintf(err, errlen, "could not read the database's settings: %s",
		         PQresultErrorMessage(res));
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0) {
		snprintf(err, errlen,
		         "PostgreSQL has wal_level=%s; the relay streams the outbox from the WAL "
		         "and needs wal_level=logical (set it and restart PostgreSQL; see README, "
		         "\"PostgreSQL\")",
		         PQgetvalue(res, 0, 0));
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "1") != 0) {
		snprintf(err, errlen, "publication " OUTBOX_PUBLICATION " is missing (migrations)");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "t") != 0) {
		snprintf(err, errlen,
		         "the database role has no REPLICATION attribute (ALTER ROLE ... "
		         "REPLICATION): the relay streams the outbox through a replication slot");
		goto out;
	}
	if (!r->o.slot[0]) {
		const char *db = PQgetvalue(res, 0, 1);
		size_t n = (size_t)snprintf(r->slot, sizeof(r->slot), "tasksync_%s", db);
		if (n >= sizeof(r->slot))
			n = sizeof(r->slot) - 1;
		for (size_t i = strlen("tasksync_"); i < n; i++) {
			char c = r->slot[i];
			if (c >= 'A' && c <= 'Z')
				r->slot[i] = (char)(c - 'A' + 'a');
			else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
				r->slot[i] = '_';
		}
	} else {
		snprintf(r->slot, sizeof(r->slot), "%s", r->o.slot);
	}
	PQclear(res);
	const char *v[] = {r->slot};
	res = PQexecParams(pg,
	                   "SELECT plugin, database = current_database() FROM pg_replication_slots "
	                   "WHERE slot_name = $1",
	                   1, NULL, v, NULL, NULL, 0);
	if (!exec_ok(res)) {
		snprintf(err, errlen, "pg_replication_slots: %s", PQresultErrorMessage(res));
		goto out;
	}
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 0), "pgoutput") != 0 ||
		    strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
			snprintf(err, errlen,
			         "replication slot %s exists for another plugin or database "
			         "(set OUTBOX_SLOT)",
			         r->slot);
			goto out;
		}
		rc = 0;
		goto out;
	}
	rc = create_slot(r, pg, err, errlen);
out:
	PQclear(res);
	PQfinish(pg);
	return rc;
}

/* A follower's try for the stream. */
static void try_lead(outbox_relay *r)
{
	char err[512];
	/* A reset within this process resumes past what Kafka acknowledged, so a
	 * confirmation lost with the connection repeats nothing. */
	wal_resume resume = {.lsn = r->flushed};
	snprintf(resume.server, sizeof(resume.server), "%s", r->server);
	int rc = wal_open(&r->ws, r->o.database_url, r->slot, OUTBOX_PUBLICATION, r->o.takeover_ms,
	                  &resume, err, sizeof(err));
	if (rc == WAL_OK) {
		snprintf(r->server, sizeof(r->server), "%s", wal_server_id(r->ws));
		log_info("relay leads: streaming the outbox", "{s:s}", "slot", r->slot);
		metric_set(r->leader, 1);
		r->next_prune_ms = mono_ms() + 5000;
		return;
	}
	if (rc == WAL_NOSLOT) {
		/* Dropped by an operator, or a failover to a standby without it: made anew;
		 * what was committed since its last confirmed position is not streamed
		 * (clients get it from /api/v1/events). */
		metric_inc(r->slot_created);
		log_error("replication slot missing: created anew; events since its last "
		          "confirmed position reach clients through /api/v1/events only",
		          "{s:s}", "slot", r->slot);
		PGconn *pg = sql(r);
		if (pg && create_slot(r, pg, err, sizeof(err)))
			log_error("could not create the replication slot", "{s:s}", "err", err);
		return;
	}
	if (rc == WAL_ERR && warn_due(r))
		log_warn("relay could not open the stream", "{s:s}", "err", err);
}

/* Deletes up to one batch of rows older than the retention, keeping each user's
 * latest event (so /events can tell "nothing new" from "gone"), and one batch of
 * expired idempotency keys and tombstones. One batch a turn keeps the loop's
 * other work going: reading the stream, and the status updates without which the
 * server ends it after OUTBOX_TAKEOVER_MS. 1 when a batch was full (more to
 * prune: the next turn goes on), else 0. */
static int prune(outbox_relay *r)
{
	PGconn *pg = sql(r);
	if (!pg)
		return 0;
	char ret[24], batch[24];
	snprintf(ret, sizeof(ret), "%ld", r->o.retention_s);
	snprintf(batch, sizeof(batch), "%d", PRUNE_BATCH);
	const char *v[] = {ret, batch};
	PGresult *res = PQexecParams(
	    pg,
	    "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o WHERE "
	    "o.created_at < now() - make_interval(secs => $1::bigint) AND o.seq < "
	    "(SELECT u.seq FROM user_seq u WHERE u.user_id = o.user_id) LIMIT $2::int)",
	    2, NULL, v, NULL, NULL, 0);
	int ok = exec_ok(res);
	long n = ok ? strtol(PQcmdTuples(res), NULL, 10) : 0;
	if (!ok)
		log_warn("could not prune the outbox", "{s:s}", "err", PQresultErrorMessage(res));
	PQclear(res);
	if (n)
		log_info("outbox pruned", "{s:i}", "rows", (int)n);
	long k = r->o.idem_window_s > 0 ? ts_prune(pg, r->o.idem_window_s, PRUNE_BATCH) : 0;
	if (k > 0)
		log_info("idempotency keys and tombstones pruned", "{s:i}", "rows", (int)k);
	return n >= PRUNE_BATCH || k >= PRUNE_BATCH;
}

/* The slot's lag: WAL bytes not yet confirmed. */
static void update_lag(outbox_relay *r)
{
	PGconn *pg = sql(r);
	if (!pg)
		return;
	const char *v[] = {r->slot};
	PGresult *res = PQexecParams(pg,
	                             "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM "
	                             "pg_replication_slots WHERE slot_name = $1",
	                             1, NULL, v, NULL, NULL, 0);
	if (exec_ok(res) && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		metric_set(r->lag, strtod(PQgetvalue(res, 0, 0), NULL));
	PQclear(res);
}

/* Waits up to ms for the stream, a delivery report or a stop. */
static void wait_events(outbox_relay *r, long ms)
{
	fd_set rd;
	FD_ZERO(&rd);
	FD_SET(r->wake[0], &rd);
	int maxfd = r->wake[0];
	int fd = r->ws && !r->held && r->in_flight < MAX_IN_FLIGHT ? wal_socket(r->ws) : -1;
	if (fd >= 0) {
		FD_SET(fd, &rd);
		if (fd > maxfd)
			maxfd = fd;
	}
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	if (select(maxfd + 1, &rd, NULL, NULL, &tv) > 0 && FD_ISSET(r->wake[0], &rd)) {
		char buf[256];
		while (read(r->wake[0], buf, sizeof(buf)) > 0) {
		}
	}
}

static void *relay_main(void *arg)
{
	outbox_relay *r = arg;
	long prune_every_ms = r->o.retention_s * 1000 / 4;
	if (r->o.idem_window_s > 0 && r->o.idem_window_s * 1000 / 4 < prune_every_ms)
		prune_every_ms = r->o.idem_window_s * 1000 / 4;
	if (prune_every_ms > 60000)
		prune_every_ms = 60000;
	long try_every_ms = r->o.takeover_ms / 4 > 100 ? r->o.takeover_ms / 4 : 100;
	char why[512];
	while (!atomic_load(&r->stop)) {
		atomic_store(&r->beat_ms, mono_ms());
		if (!r->rk) { /* its re-creation failed: tried again every second */
			if (producer_open(r, why, sizeof(why))) {
				wait_events(r, 1000);
				continue;
			}
			atomic_store(&r->fatal, 0);
		}
		rd_kafka_poll(r->rk, 0);
		if (r->ndq && dead_letter_flush(r))
			r->reset_due = 1;
		if (atomic_load(&r->fatal))
			r->reset_due = 1;
		if (r->reset_due) {
			reset(r,
			      atomic_load(&r->fatal) ? "fatal producer error" : "delivery failed");
			continue;
		}
		if (!r->ws) {
			if (mono_ms() >= r->next_try_ms) {
				try_lead(r);
				r->next_try_ms = mono_ms() + try_every_ms;
			}
			if (!r->ws) {
				int64_t left = r->next_try_ms - mono_ms();
				wait_events(r, left > 0 ? (long)left : 0);
				continue;
			}
		}
		if (r->held && produce_held(r)) {
			reset(r, "produce failed");
			continue;
		}
		/* Confirming first: sending can read what the server sent into libpq's
		 * buffer, where select would not see it; the read below empties it. */
		tq_settle(r);
		if (wal_confirm(r->ws, r->flushed, 0, why, sizeof(why))) {
			reset(r, why);
			continue;
		}
		int64_t now = mono_ms();
		if (now >= r->next_lag_ms) {
			update_lag(r);
			r->next_lag_ms = now + 1000;
		}
		int pruning = 0; /* a full batch: the next turn prunes on, without a wait */
		if (now >= r->next_prune_ms) {
			pruning = prune(r);
			r->next_prune_ms = pruning ? now : now + prune_every_ms;
		}
		int more = stream_round(r, why, sizeof(why));
		if (more < 0) {
			reset(r, why);
			continue;
		}
		if (!more && !pruning)
			wait_events(r, r->held ? 5 : 100);
	}
	/* Stopping: deliver what is in flight until the deadline, confirm it. */
	int64_t deadline = atomic_load(&r->deadline_ms);
	while (r->rk && r->in_flight > 0 && mono_ms() < deadline) {
		rd_kafka_poll(r->rk, 10);
		if (r->ndq && dead_letter_flush(r))
			break;
	}
	if (r->ws) {
		tq_settle(r);
		if (wal_confirm(r->ws, r->flushed, 1, why, sizeof(why)))
			log_warn("could not confirm at exit", "{s:s}", "err", why);
		if (r->in_flight > 0)
			log_warn("events left unacknowledged at exit (streamed to the next leader)",
			         "{s:I}", "in_flight", (json_int_t)r->in_flight);
		wal_close(r->ws);
		r->ws = NULL;
	}
	return NULL;
}

outbox_relay *outbox_start(const outbox_opts *o, metrics *m, char *err, size_t errlen)
{
	outbox_relay *r = xcalloc(1, sizeof(*r));
	r->o = *o;
	r->o.database_url = xstrdup(o->database_url);
	r->o.session_options = o->session_options ? xstrdup(o->session_options) : NULL;
	r->o.brokers = xstrdup(o->brokers);
	r->o.topic = xstrdup(o->topic);
	r->o.slot = xstrdup(o->slot ? o->slot : "");
	r->wake[0] = r->wake[1] = -1;
	r->tq_base = 1;
	pthread_mutex_init(&r->rk_mu, NULL);
	atomic_store(&r->beat_ms, mono_ms());
	r->published =
	    metrics_counter(m, "outbox_published_total", "Events Kafka acknowledged.", NULL);
	r->errors = metrics_counter(m, "kafka_publish_errors_total",
	                            "Events Kafka refused or failed to deliver.", NULL);
	r->backlog =
	    metrics_gauge(m, "outbox_backlog",
	                  "Events read from the WAL that Kafka has not acknowledged yet.", NULL);
	r->lag = metrics_gauge(m, "outbox_slot_lag_bytes",
	                       "WAL bytes after the replication slot's confirmed position "
	                       "(leader only).",
	                       NULL);
	r->dead_letters = metrics_counter(m, "outbox_dead_letters_total",
	                                  "Events Kafka refused for themselves (too large, "
	                                  "invalid), written to outbox_dead_letter.",
	                                  NULL);
	r->resets = metrics_counter(m, "outbox_relay_resets_total",
	                            "Relay resets: stream reopened from the confirmed position "
	                            "after a failure.",
	                            NULL);
	r->slot_created = metrics_counter(m, "outbox_slot_recreated_total",
	                                  "Replication slots found missing and created anew "
	                                  "(events in between not streamed).",
	                                  NULL);
	r->leader = metrics_gauge(m, "outbox_leader",
	                          "1 while this process streams the outbox (publishes).", NULL);
	static const double ack_bounds[] = {0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
	                                    0.015,  0.02,  0.05,  0.1,   0.25,  1,     5,      30};
	r->commit_to_ack = metrics_histogram(
	    m, "outbox_commit_to_ack_seconds",
	    "From an event's commit (PostgreSQL's commit time) to Kafka's acknowledgement.", NULL,
	    ack_bounds, ARRAY_LEN(ack_bounds));
	r->commit_to_read = metrics_histogram(
	    m, "outbox_commit_to_stream_seconds",
	    "From a transaction's commit (PostgreSQL's commit time) to the relay reading it from "
	    "the stream.",
	    NULL, ack_bounds, ARRAY_LEN(ack_bounds));
	if (prepare_slot(r, err, errlen))
		goto fail;
	if (pipe2(r->wake, O_NONBLOCK | O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (producer_open(r, err, errlen))
		goto fail;
	if (pthread_create(&r->th, NULL, relay_main, r)) {
		snprintf(err, errlen, "could not start the relay thread");
		goto fail;
	}
	return r;
fail:
	if (r->rk)
		producer_close(r);
	if (r->wake[0] >= 0) {
		close(r->wake[0]);
		close(r->wake[1]);
	}
	free((char *)r->o.database_url);
	free((char *)r->o.session_options);
	free((char *)r->o.brokers);
	free((char *)r->o.topic);
	free((char *)r->o.slot);
	pthread_mutex_destroy(&r->rk_mu);
	free(r);
	return NULL;
}

int outbox_kafka_ready(outbox_relay *r, int timeout_ms)
{
	if (atomic_load(&r->fatal))
		return 0;
	pthread_mutex_lock(&r->rk_mu);
	const struct rd_kafka_metadata *md = NULL;
	int ok =
	    r->rk && rd_kafka_metadata(r->rk, 0, NULL, &md, timeout_ms) == 0 && md->broker_cnt > 0;
	if (md)
		rd_kafka_metadata_destroy(md);
	pthread_mutex_unlock(&r->rk_mu);
	return ok;
}

int outbox_alive(outbox_relay *r)
{
	return mono_ms() - atomic_load(&r->beat_ms) < ALIVE_MS;
}

void outbox_stop(outbox_relay *r, int64_t deadline_ms)
{
	if (!r)
		return;
	atomic_store(&r->deadline_ms, deadline_ms);
	atomic_store(&r->stop, 1);
	wake_write(r);
	pthread_join(r->th, NULL);
	free(r->held);
	free(r->held_payload);
	r->held = NULL;
	tq_clear(r); /* reports from here on are stale */
	producer_close(r);
	for (size_t i = 0; i < r->ndq; i++)
		free(r->dq[i].ref);
	free(r->dq);
	if (r->pg)
		PQfinish(r->pg);
	close(r->wake[0]);
	close(r->wake[1]);
	free(r->tq);
	free((char *)r->o.database_url);
	free((char *)r->o.session_options);
	free((char *)r->o.brokers);
	free((char *)r->o.topic);
	free((char *)r->o.slot);
	pthread_mutex_destroy(&r->rk_mu);
	free(r);
}
