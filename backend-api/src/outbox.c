/* The relay.
 *
 * Reading. Outbox ids come from a sequence before commit, so rows become visible
 * out of id order. The relay keeps a read position wm: every id <= wm was read,
 * or lies in a hole, an id passed over because it was not visible then (its
 * transaction had not committed, or never will). A round reads, in one statement
 * (one snapshot), the rows above wm (at most BATCH) and those that appeared in the
 * holes, in id order; so it reads only what is new, not the rows in flight and the
 * dead index entries of rows just marked published that a read of every
 * unpublished row walks. A hole is read again for OUTBOX_HOLE_MS, then given up.
 *
 * Per-user order. A user's event n+1 is inserted only after event n committed (the
 * user_seq row lock) and gets a higher id, so a snapshot that sees n+1 sees n: n is
 * published, in flight, or read in the same statement ahead of n+1 - unless its
 * hole was given up or this leader started past it. The guard covers those cases
 * without trusting the first argument: each row comes with the id of the user's
 * previous event when that one is unpublished, and a row whose previous event is
 * unpublished and not in flight is not produced. The relay then does a full read
 * (every unpublished row not in flight, in id order), which produces the previous
 * event first. The relay also reads what is new every OUTBOX_POLL_MS (rows of a
 * writer that did not wake it) and reads everything every FULL_EVERY_POLLS polls (a
 * row in a given-up hole whose user writes nothing more), and after a failed
 * delivery. A full read walks the unpublished index from its start, through the
 * dead entries of every row marked since the last vacuum (1.5-3 ms under load),
 * hence not every poll.
 *
 * Hand-off. The events this process commits come to the relay at commit
 * (outbox_handoff) and are produced without a read when they are new to it (above
 * the read position or in a hole) and the user's next after the last event this
 * leader produced (last_seq; a user it has not produced for yet only with seq 1).
 * Anything else - a user seen first, two writes of one user handed over out of
 * order - falls back to a read, whose guard keeps the order. So the common path
 * costs the database nothing and the relay waits for nothing but Kafka.
 *
 * Marking. Delivered rows are marked published in batches with an UPDATE sent
 * without waiting (libpq's asynchronous calls); its result is collected when it
 * arrives, or before the next statement on the connection. Rows stay "in flight"
 * until their mark has committed, so a read never takes them for unproduced. */
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
#define LEADER_LOCK_KEY  0x7461736b02L
#define BATCH            500 /* new rows read per query */
#define MAX_IN_FLIGHT    20000
#define MAX_HOLES        4096  /* ranges; beyond, the oldest are given up early */
#define LEAD_EVERY_MS    1000  /* a follower's tries for the leader lock */
#define MAX_HANDOFFS     20000 /* queued hand-offs; beyond, events go by a read */
#define MAX_LAST_SEQ     65536 /* users in last_seq; beyond, it starts afresh */
#define PARK_MS          20    /* a hand-off ahead of its user's waits this long */
#define SENT_RING        32768 /* hand-off times of produced events, by id (> MAX_IN_FLIGHT) */
#define FULL_EVERY_POLLS 30    /* every 30th OUTBOX_POLL_MS poll reads every unpublished row */
#define PRUNE_BATCH      10000
#define MARK_EVERY_MS    20
#define MARK_BATCH       500
#define STR_(x)          #x
#define STR(x)           STR_(x)

struct outbox_relay {
	outbox_opts o; /* strings owned */
	rd_kafka_t *rk;
	rd_kafka_queue_t *mainq;
	int wake[2]; /* pipe: librdkafka's queue io-event and outbox_stop write here */
	pthread_t th;
	atomic_int stop;
	atomic_llong deadline_ms;
	atomic_int fatal;  /* the producer hit a fatal error: readyz says so */
	atomic_int kicked; /* a commit not handed over: read (a follower: NOTIFY) */
	atomic_int handed; /* hand-offs queued since the relay last took them */
	pthread_mutex_t hmu;
	struct handoff *hq; /* @locks hmu */
	size_t nhq, caphq;  /* @locks hmu */

	/* Relay-thread state. @locality relay thread only (the delivery report
	 * callback runs inside rd_kafka_poll on that thread). */
	PGconn *pg;
	int leader;
	int64_t *fl; /* produced, not yet marked published: sorted ascending */
	size_t nfl, capfl;
	int64_t *acked; /* delivered, to be marked published */
	size_t nacked, capacked;
	int64_t *marking; /* in the mark statement sent (mark_busy) */
	size_t nmarking, capmarking;
	int mark_busy;
	json_t *last_seq;       /* user -> seq of the user's last event this leader produced */
	struct handoff *parked; /* hand-offs waiting for their user's previous one */
	size_t nparked, capparked;
	int restart; /* a delivery failed: purge and produce again from the lowest id */
	int64_t next_prune_ms, next_backlog_ms;
	int64_t next_mark_ms; /* marks are batched: they do not delay any event */
	int64_t next_poll_ms; /* the periodic read of what is new */
	int64_t next_full_ms; /* the periodic full read */
	int64_t next_lead_ms; /* a follower's next try for the leader lock */
	int read_due;         /* a NOTIFY came, or a hand-off fell back: read */
	int more;             /* the last read left rows: read again at once */
	int full;             /* the next read is a full read */
	int64_t wm;           /* the read position (see the top of this file) */
	struct hole *holes;   /* sorted, disjoint ranges below wm */
	size_t nholes, capholes;

	metric *published, *errors, *backlog, *guard, *holes_given_up, *fallbacks;
	metric *commit_to_ack;
	/* When each handed-over event was committed (mono_us), slot id % SENT_RING;
	 * the delivery report turns it into commit_to_ack. */
	int64_t sent_id[SENT_RING], sent_us[SENT_RING];
};

/* An event handed over at commit (outbox_handoff). */
typedef struct handoff {
	int64_t id, seq;
	char *user, *payload;
	int64_t park_until; /* 0 until the relay first looks at it */
	int64_t commit_us;  /* mono_us when handed over, just after the commit */
} handoff;

/* Ids lo..hi passed over while not visible; read again until until_ms. */
typedef struct hole {
	int64_t lo, hi;
	int64_t until_ms;
} hole;

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
	r->fl = xgrow(r->fl, &r->capfl, r->nfl + 1, sizeof(int64_t));
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

/* Appends n delivered ids, to be marked published. */
static void acked_add(outbox_relay *r, const int64_t *ids, size_t n)
{
	if (!n)
		return;
	r->acked = xgrow(r->acked, &r->capacked, r->nacked + n, sizeof(int64_t));
	memcpy(r->acked + r->nacked, ids, n * sizeof(int64_t));
	r->nacked += n;
}

static void hole_insert(outbox_relay *r, size_t at, hole h)
{
	r->holes = xgrow(r->holes, &r->capholes, r->nholes + 1, sizeof(hole));
	memmove(r->holes + at + 1, r->holes + at, (r->nholes - at) * sizeof(hole));
	r->holes[at] = h;
	r->nholes++;
}

static void holes_drop_first(outbox_relay *r, size_t n)
{
	memmove(r->holes, r->holes + n, (r->nholes - n) * sizeof(hole));
	r->nholes -= n;
	metric_add(r->holes_given_up, (double)n);
}

/* The index of the hole holding id, or -1. */
static long hole_find(const outbox_relay *r, int64_t id)
{
	size_t lo = 0, hi = r->nholes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->holes[mid].hi < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nholes && r->holes[lo].lo <= id ? (long)lo : -1;
}

/* id (below wm) was read: it is no longer a hole. */
static void hole_take(outbox_relay *r, int64_t id)
{
	long at = hole_find(r, id);
	if (at >= 0) {
		size_t i = (size_t)at;
		hole *h = &r->holes[i];
		if (h->lo == h->hi) {
			memmove(h, h + 1, (r->nholes - i - 1) * sizeof(hole));
			r->nholes--;
		} else if (id == h->lo) {
			h->lo++;
		} else if (id == h->hi) {
			h->hi--;
		} else {
			hole right = {id + 1, h->hi, h->until_ms};
			h->hi = id - 1;
			hole_insert(r, i + 1, right);
		}
	}
}

/* 1 when id was never read: neither produced by this leader nor passed over. */
static int unread(const outbox_relay *r, int64_t id)
{
	return id > r->wm || hole_find(r, id) >= 0;
}

/* Records that this leader produced the user's event seq (id). */
static void produced(outbox_relay *r, int64_t id, const char *user, int64_t seq)
{
	fl_add(r, id);
	if (json_object_size(r->last_seq) >= MAX_LAST_SEQ)
		json_object_clear(r->last_seq); /* users seen again go by a read once */
	json_object_set_new(r->last_seq, user, json_integer(seq));
}

/* 1 when seq is the user's next event after the last this leader produced. */
static int next_of_user(const outbox_relay *r, const char *user, int64_t seq)
{
	json_t *last = json_object_get(r->last_seq, user);
	return last ? json_integer_value(last) == seq - 1 : seq == 1;
}

static rd_kafka_resp_err_t produce(outbox_relay *r, int64_t id, const char *user, size_t ulen,
                                   const char *payload, size_t plen)
{
	rd_kafka_resp_err_t e = rd_kafka_producev(
	    r->rk, RD_KAFKA_V_TOPIC(r->o.topic), RD_KAFKA_V_KEY(user, ulen),
	    RD_KAFKA_V_VALUE((void *)payload, plen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
	if (e && e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
		metric_inc(r->errors);
		log_error("could not produce event", "{s:I, s:s}", "outbox_id", (json_int_t)id,
		          "err", rd_kafka_err2str(e));
	}
	return e;
}

/* Moves the read position over id, which a read returned. */
static void advance(outbox_relay *r, int64_t id, int64_t now)
{
	if (id <= r->wm) {
		hole_take(r, id);
		return;
	}
	if (id > r->wm + 1) {
		if (r->nholes == MAX_HOLES)
			holes_drop_first(r, 1);
		hole_insert(r, r->nholes, (hole){r->wm + 1, id - 1, now + r->o.hole_ms});
	}
	r->wm = id;
}

/* Gives up the holes whose time is over. Holes are added in id order with the same
 * wait, so the expired ones come first. */
static void holes_expire(outbox_relay *r, int64_t now)
{
	size_t n = 0;
	while (n < r->nholes && r->holes[n].until_ms <= now)
		n++;
	if (n)
		holes_drop_first(r, n);
}

/* @locality relay thread (inside rd_kafka_poll). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	outbox_relay *r = opaque;
	int64_t id = (int64_t)(intptr_t)m->_private;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		size_t slot = (size_t)(id % SENT_RING);
		if (r->sent_id[slot] == id) {
			metric_observe(r->commit_to_ack,
			               (double)(mono_us() - r->sent_us[slot]) / 1e6);
			r->sent_id[slot] = 0;
		}
		acked_add(r, &id, 1);
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
	if (r->mark_busy) {
		/* Whether it committed is unknown: marked again (the same rows) later. */
		acked_add(r, r->marking, r->nmarking);
		r->nmarking = 0;
		r->mark_busy = 0;
	}
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
	if (n)
		r->read_due = 1;
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

/* A new leader starts reading at the highest id: rows committed since are new, the
 * older unpublished ones (a previous leader's backlog, a delivery that failed) are
 * found by the full read it does first. */
static int start_reading(outbox_relay *r)
{
	PGresult *res = PQexecPrepared(r->pg, "relay_top", 0, NULL, NULL, NULL, 0);
	int ok = exec_ok(r->pg, res) && PQntuples(res) == 1;
	if (ok)
		r->wm = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	r->nholes = 0;
	r->full = 1;
	r->more = 0;
	json_object_clear(r->last_seq);
	return ok ? 0 : -1;
}

/* The relay's statements, prepared on each connection. The reads return (id,
 * user_id, payload, id of the user's previous event when that one is unpublished,
 * seq) in id order; $1 is the most new rows to return. */
#define PREV_UNPUBLISHED                                                                           \
	" LEFT JOIN outbox p ON p.user_id = r.user_id AND p.seq = r.seq - 1"                       \
	" AND p.published_at IS NULL ORDER BY r.id"
static const char *const relay_stmts[][2] = {
    /* The rows above the read position $2 and those in the holes ($3..$4). */
    {"relay_new", "SELECT r.id, r.user_id, r.payload, p.id, r.seq FROM ("
                  "(SELECT id, user_id, seq, payload FROM outbox WHERE id > $2::bigint"
                  " AND published_at IS NULL ORDER BY id LIMIT $1::int)"
                  " UNION ALL (SELECT o.id, o.user_id, o.seq, o.payload"
                  " FROM unnest($3::bigint[], $4::bigint[]) AS h(lo, hi)"
                  " JOIN outbox o ON o.id BETWEEN h.lo AND h.hi AND o.published_at IS NULL)"
                  ") r" PREV_UNPUBLISHED},
    /* Every unpublished row but those in flight ($2). */
    {"relay_all", "SELECT r.id, r.user_id, r.payload, p.id, r.seq FROM ("
                  "SELECT id, user_id, seq, payload FROM outbox WHERE published_at IS NULL"
                  " AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1::int"
                  ") r" PREV_UNPUBLISHED},
    {"relay_top", "SELECT coalesce(max(id), 0) FROM outbox"},
    {"relay_mark", "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"},
};
#undef PREV_UNPUBLISHED

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
		/* Marks and prunes are the relay's own bookkeeping: a crash that loses the
		 * last of them publishes those events again (same event_id and seq),
		 * which the contract allows after a crash; no request waits on a flush. */
		PGresult *res = PQexec(r->pg, "SET synchronous_commit = off; LISTEN outbox");
		int ok = exec_ok(r->pg, res);
		PQclear(res);
		for (size_t i = 0; ok && i < ARRAY_LEN(relay_stmts); i++) {
			res = PQprepare(r->pg, relay_stmts[i][0], relay_stmts[i][1], 0, NULL);
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
	if (!r->leader)
		return;
	log_info("relay is the publishing leader", "{}");
	if (start_reading(r))
		drop_pg(r, PQerrorMessage(r->pg));
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

/* Collects the result of the mark statement in flight, if any: waiting for it when
 * block, else only when it has arrived. The rows it marked leave the in-flight
 * set. 0, or -1 when the database failed. */
static int mark_finish(outbox_relay *r, int block)
{
	if (!r->mark_busy)
		return 0;
	if (!block) {
		if (!PQconsumeInput(r->pg))
			return -1;
		if (PQisBusy(r->pg))
			return 0;
	}
	int ok = 1;
	PGresult *res;
	while ((res = PQgetResult(r->pg))) {
		if (!exec_ok(r->pg, res)) {
			ok = 0;
			log_warn("could not mark events published", "{s:s}", "err",
			         PQresultErrorMessage(res));
		}
		PQclear(res);
	}
	if (!ok)
		return -1; /* drop_pg puts the rows back to be marked */
	r->mark_busy = 0;
	fl_remove_sorted(r, r->marking, r->nmarking);
	r->nmarking = 0;
	return 0;
}

/* Sends the statement that marks the delivered rows published, without waiting for
 * it (the connection is idle: no mark in flight). 0, or -1 when the database failed. */
static int mark_send(outbox_relay *r)
{
	if (!r->nacked)
		return 0;
	qsort(r->acked, r->nacked, sizeof(int64_t), cmp64);
	char *arr = id_array(r->acked, r->nacked);
	const char *v[] = {arr};
	int sent = PQsendQueryPrepared(r->pg, "relay_mark", 1, v, NULL, NULL, 0);
	free(arr);
	if (!sent)
		return -1;
	/* acked becomes marking; the old marking buffer takes the next acks. */
	int64_t *t = r->marking;
	size_t cap = r->capmarking;
	r->marking = r->acked, r->nmarking = r->nacked, r->capmarking = r->capacked;
	r->acked = t, r->nacked = 0, r->capacked = cap;
	r->mark_busy = 1;
	return 0;
}

/* Marks everything delivered and waits for it. 0 or -1. */
static int mark_all(outbox_relay *r)
{
	if (mark_finish(r, 1) || mark_send(r) || mark_finish(r, 1))
		return -1;
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
	/* Delivered ones stay to be marked; the rest are read again: they lie below
	 * the read position, so by a full read. */
	r->full = 1;
	json_object_clear(r->last_seq); /* what it says was produced is gone */
	r->nfl = 0;
	for (size_t i = 0; i < r->nacked; i++)
		fl_add(r, r->acked[i]);
	for (size_t i = 0; i < r->nmarking; i++)
		fl_add(r, r->marking[i]);
}

/* The holes' bounds as two array literals (caller frees both). */
static void hole_arrays(const outbox_relay *r, char **lo, char **hi)
{
	int64_t *a = xmalloc((r->nholes + 1) * sizeof(int64_t));
	for (size_t i = 0; i < r->nholes; i++)
		a[i] = r->holes[i].lo;
	*lo = id_array(a, r->nholes);
	for (size_t i = 0; i < r->nholes; i++)
		a[i] = r->holes[i].hi;
	*hi = id_array(a, r->nholes);
	free(a);
}

/* Produces the rows of a read (id order) that are not in flight and moves the read
 * position over each. Stops at a row whose user's previous event is unpublished
 * and not in flight (*gap), and when the producer refuses one (*stopped): the rest
 * is read again. *above counts the rows above the read position it started from.
 * Returns the number produced. */
static int produce_rows(outbox_relay *r, PGresult *res, int *gap, int *stopped, int *above)
{
	int rows = PQntuples(res), n = 0;
	int64_t now = mono_ms(), wm0 = r->wm;
	for (int i = 0; i < rows; i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		*above += id > wm0;
		if (!fl_has(r, id)) {
			if (!PQgetisnull(res, i, 3) &&
			    !fl_has(r, strtoll(PQgetvalue(res, i, 3), NULL, 10))) {
				*gap = 1;
				break;
			}
			const char *user = PQgetvalue(res, i, 1);
			if (produce(r, id, user, (size_t)PQgetlength(res, i, 1),
			            PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2))) {
				*stopped = 1;
				break;
			}
			produced(r, id, user, strtoll(PQgetvalue(res, i, 4), NULL, 10));
			n++;
		}
		advance(r, id, now);
	}
	return n;
}

/* One read (full or new rows, see the top of this file) and its production.
 * Returns the number of rows produced, -1 when the database failed; sets r->more
 * when rows are left and r->full when the next read must be a full one. */
static int read_and_produce(outbox_relay *r)
{
	if (r->nfl >= MAX_IN_FLIGHT) {
		r->more = 1; /* read again once deliveries make room */
		return 0;
	}
	if (mark_finish(r, 1))
		return -1;
	int full = r->full;
	PGresult *res;
	if (full) {
		char *skip = id_array(r->fl, r->nfl);
		const char *v[] = {STR(BATCH), skip};
		res = PQexecPrepared(r->pg, "relay_all", 2, v, NULL, NULL, 0);
		free(skip);
	} else {
		char wm[24], *lo, *hi;
		snprintf(wm, sizeof(wm), "%" PRId64, r->wm);
		hole_arrays(r, &lo, &hi);
		const char *v[] = {STR(BATCH), wm, lo, hi};
		res = PQexecPrepared(r->pg, "relay_new", 4, v, NULL, NULL, 0);
		free(lo);
		free(hi);
	}
	if (!exec_ok(r->pg, res)) {
		log_warn("could not read the outbox", "{s:s}", "err", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	int rows = PQntuples(res), gap = 0, stopped = 0, above = 0;
	int produced = produce_rows(r, res, &gap, &stopped, &above);
	PQclear(res);
	r->more = stopped || gap || (full ? rows >= BATCH : above >= BATCH);
	if (gap) {
		metric_inc(r->guard);
		if (full) {
			/* Cannot happen (a full read returns the previous event ahead of
			 * it); should it, the next periodic full read tries again. */
			log_error("relay full read found an event whose previous one it did not "
			          "read",
			          "{}");
			r->more = 0;
		} else {
			log_warn("relay read an event whose previous one is unread: full read",
			         "{s:I}", "holes", (json_int_t)r->nholes);
		}
		r->full = 1;
	}
	if (full && !r->more)
		r->full = 0;
	if (!stopped && !gap)
		holes_expire(r, mono_ms());
	return produced;
}

static void update_backlog(outbox_relay *r)
{
	if (mark_finish(r, 1))
		return; /* the next statement finds the connection broken */
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
	if (mark_finish(r, 1))
		return;
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

/* Takes the queued hand-offs (caller frees them with handoffs_free). */
static handoff *handoffs_take(outbox_relay *r, size_t *n)
{
	atomic_store(&r->handed, 0);
	pthread_mutex_lock(&r->hmu);
	handoff *h = r->hq;
	*n = r->nhq;
	r->hq = NULL;
	r->nhq = r->caphq = 0;
	pthread_mutex_unlock(&r->hmu);
	return h;
}

static void handoffs_free(handoff *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].user);
		free(h[i].payload);
	}
	free(h);
}

static int cmp_handoff(const void *a, const void *b)
{
	int64_t x = ((const handoff *)a)->id, y = ((const handoff *)b)->id;
	return x < y ? -1 : x > y;
}

static void park(outbox_relay *r, handoff h)
{
	r->parked = xgrow(r->parked, &r->capparked, r->nparked + 1, sizeof(handoff));
	r->parked[r->nparked++] = h;
}

/* Produces the handed-over events that are new and next for their user (see the top
 * of this file). One that is ahead of its user's last produced event waits up to
 * PARK_MS for the hand-off before it (its commit came first, its hand-off is on the
 * way); the others, and those that waited too long, are left to a read. */
static void produce_handoffs(outbox_relay *r)
{
	size_t n;
	handoff *h = handoffs_take(r, &n);
	if (r->nparked) {
		h = xrealloc(h, (n + r->nparked) * sizeof(handoff));
		memcpy(h + n, r->parked, r->nparked * sizeof(handoff));
		n += r->nparked;
		r->nparked = 0;
	}
	if (!n) {
		free(h);
		return;
	}
	qsort(h, n, sizeof(*h), cmp_handoff); /* a user's events in seq order */
	int64_t now = mono_ms();
	for (size_t i = 0; i < n; i++) {
		handoff *e = &h[i];
		if (!e->park_until)
			e->park_until = now + PARK_MS;
		if (!unread(r, e->id)) {
			/* A read got there first. In flight: nothing to do; else it was
			 * published, or passed over for longer than OUTBOX_HOLE_MS, which only
			 * a full read finds. */
			if (!fl_has(r, e->id))
				r->full = 1;
		} else if (r->restart || r->nfl >= MAX_IN_FLIGHT) {
			metric_inc(r->fallbacks);
			r->read_due = 1;
		} else if (next_of_user(r, e->user, e->seq)) {
			if (produce(r, e->id, e->user, strlen(e->user), e->payload,
			            strlen(e->payload))) {
				metric_inc(r->fallbacks);
				r->read_due = 1;
			} else {
				produced(r, e->id, e->user, e->seq);
				advance(r, e->id, now);
				r->sent_id[e->id % SENT_RING] = e->id;
				r->sent_us[e->id % SENT_RING] = e->commit_us;
			}
		} else if (json_object_get(r->last_seq, e->user) && now < e->park_until) {
			park(r, *e);
			continue; /* owned by parked now */
		} else {
			metric_inc(r->fallbacks);
			r->read_due = 1;
		}
		free(e->user);
		free(e->payload);
	}
	free(h);
}

/* A follower passes the wake-ups of this process's commits on to the leader (one
 * NOTIFY for all that came since the last). */
static void forward_kicks(outbox_relay *r)
{
	size_t n;
	handoff *h = handoffs_take(r, &n);
	handoffs_free(h, n);
	if (n)
		atomic_store(&r->kicked, 1);
	if (!r->pg || !atomic_exchange(&r->kicked, 0))
		return;
	PGresult *res = PQexec(r->pg, "NOTIFY outbox");
	int ok = exec_ok(r->pg, res);
	PQclear(res);
	if (!ok)
		drop_pg(r, PQerrorMessage(r->pg));
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
			if (mono_ms() >= r->next_lead_ms) {
				try_lead(r);
				r->next_lead_ms = mono_ms() + LEAD_EVERY_MS;
			}
			if (!r->leader) {
				if (stop)
					break; /* not publishing: nothing to flush */
				forward_kicks(r);
				int64_t left = r->next_lead_ms - mono_ms();
				wait_events(r, left > 0 ? (long)left : 0);
				continue;
			}
		}
		if (r->restart)
			restart_from_lowest(r);
		produce_handoffs(r);
		/* Marking published costs the database a write but delays no event, so it is
		 * batched: at most every MARK_EVERY_MS unless many are waiting. */
		if (mark_finish(r, 0)) {
			drop_pg(r, PQerrorMessage(r->pg));
			continue;
		}
		int64_t tnow = mono_ms();
		if (r->nacked && !r->mark_busy &&
		    (stop || r->nacked >= MARK_BATCH || tnow >= r->next_mark_ms)) {
			if (mark_send(r)) {
				drop_pg(r, PQerrorMessage(r->pg));
				continue;
			}
			r->next_mark_ms = tnow + MARK_EVERY_MS;
		}
		/* NOTIFYs up to here are covered by the read that follows. A round woken
		 * by delivery reports or hand-offs only does not read. Stopping, every
		 * round reads everything. */
		if (drain_notifies(r) < 0)
			continue;
		int due = r->read_due | atomic_exchange(&r->kicked, 0);
		r->read_due = 0;
		int64_t now = mono_ms();
		if (now >= r->next_full_ms || stop) {
			r->full = 1;
			r->next_full_ms = now + r->o.poll_ms * FULL_EVERY_POLLS;
			r->next_poll_ms = now + r->o.poll_ms;
		} else if (now >= r->next_poll_ms) {
			due = 1;
			r->next_poll_ms = now + r->o.poll_ms;
		}
		int n = 0;
		if (due || r->more || r->full) {
			n = read_and_produce(r);
			if (n < 0) {
				drop_pg(r, PQerrorMessage(r->pg));
				continue;
			}
		}
		now = mono_ms();
		if (now >= r->next_backlog_ms) {
			update_backlog(r);
			r->next_backlog_ms = now + 1000;
		}
		if (now >= r->next_prune_ms) {
			if (r->next_prune_ms)
				prune(r);
			r->next_prune_ms = now + prune_every_ms;
		}
		if (stop && !r->more && n == 0 && r->nfl == 0 && r->nacked == 0 && !r->mark_busy)
			break; /* everything published and marked */
		if (r->more && r->nfl < MAX_IN_FLIGHT)
			continue;
		if (drain_notifies(r) < 0)
			continue;
		if (r->read_due || atomic_load(&r->handed) || atomic_load(&r->kicked))
			continue; /* a commit after our read: read again now */
		if (r->mark_busy && !PQisBusy(r->pg))
			continue; /* its result was read in with the notifications */
		int64_t until = r->next_poll_ms - mono_ms();
		long wait = until > 0 ? (long)until : 0;
		if ((stop || r->nfl > 0) && wait > 100)
			wait = 100;
		if ((r->nacked || r->nparked) && wait > MARK_EVERY_MS)
			wait = MARK_EVERY_MS;
		wait_events(r, wait);
	}
	/* Flush what is in flight within the deadline, then mark it. */
	int64_t left = atomic_load(&r->deadline_ms) - mono_ms();
	rd_kafka_flush(r->rk, left > 0 ? (int)left : 0);
	rd_kafka_poll(r->rk, 0);
	if (r->pg && r->leader && mark_all(r) == 0 && r->nfl)
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
	pthread_mutex_init(&r->hmu, NULL);
	r->last_seq = json_object();
	r->published = metrics_counter(m, "outbox_published_total",
	                               "Events delivered to Kafka and marked published.", NULL);
	r->errors = metrics_counter(m, "kafka_publish_errors_total",
	                            "Events Kafka refused or failed to deliver.", NULL);
	r->backlog = metrics_gauge(m, "outbox_backlog", "Outbox rows not yet published.", NULL);
	r->guard = metrics_counter(m, "outbox_order_guard_total",
	                           "Reads stopped at an event whose user's previous event was "
	                           "unread (a full read followed).",
	                           NULL);
	r->fallbacks = metrics_counter(m, "outbox_handoff_fallbacks_total",
	                               "Events handed over at commit that were published "
	                               "through a read instead (a user's first since the "
	                               "relay started, or handed over out of order).",
	                               NULL);
	static const double ack_bounds[] = {0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
	                                    0.015,  0.02,  0.05,  0.1,   0.25,  1,     5,      30};
	r->commit_to_ack = metrics_histogram(
	    m, "outbox_commit_to_ack_seconds",
	    "From an event's commit (handed to the relay) to Kafka's acknowledgement of it: "
	    "events that go by a read are not counted.",
	    NULL, ack_bounds, ARRAY_LEN(ack_bounds));
	r->holes_given_up = metrics_counter(
	    m, "outbox_holes_given_up_total",
	    "Outbox ids the relay stopped re-reading (rolled back, or committed later than "
	    "OUTBOX_HOLE_MS: then found by the guard or the full read).",
	    NULL);
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
	pthread_mutex_destroy(&r->hmu);
	json_decref(r->last_seq);
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

void outbox_handoff(outbox_relay *r, int64_t id, const char *user, int64_t seq, char *payload)
{
	if (!r) {
		free(payload);
		return;
	}
	handoff h = {id, seq, xstrdup(user), payload, 0, mono_us()};
	pthread_mutex_lock(&r->hmu);
	int queued = r->nhq < MAX_HANDOFFS;
	if (queued) {
		r->hq = xgrow(r->hq, &r->caphq, r->nhq + 1, sizeof(handoff));
		r->hq[r->nhq++] = h;
	}
	pthread_mutex_unlock(&r->hmu);
	if (!queued) {
		/* The relay is far behind: this event goes by a read. */
		free(h.user);
		free(h.payload);
		atomic_store(&r->kicked, 1);
	}
	if (!atomic_exchange(&r->handed, 1))
		wake_write(r);
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
	free(r->marking);
	free(r->holes);
	handoffs_free(r->hq, r->nhq);
	handoffs_free(r->parked, r->nparked);
	pthread_mutex_destroy(&r->hmu);
	json_decref(r->last_seq);
	free((char *)r->o.database_url);
	free((char *)r->o.brokers);
	free((char *)r->o.topic);
	free(r);
}
