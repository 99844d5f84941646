#include "consumer.h"

#include "common/log.h"
#include "kafka_dl.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTITIONS 4096
#define MAX_BROKERS    64
#define STATS_MS       500  /* statistics.interval.ms: how often readiness is judged */
#define STALL_MIN_MS   5000 /* a leader silent this long (no response, no message): not fetching */
#define QUERY_MS       5000 /* watermark and offsets-for-times queries */
#define NO_WAITER      INT64_MAX
/* Messages taken per wait, at most, and handed to the writers with one wake-up.
 * Slices of 64 were tried: a socket then got about one frame per wake-up and the
 * writers made 0.22 sendmsg per frame instead of 0.07, for 3x their CPU. */
#define CONSUME_BATCH 1024

typedef struct broker_seen {
	int32_t id;    /* node id */
	int up;        /* state "UP" in the last statistics */
	int64_t rx;    /* responses received, as last seen (-1: not yet) */
	int64_t rx_ms; /* mono ms when rx last moved (0: not seen moving) */
	int64_t sum;   /* rx of this statistics document (all its connections) */
} broker_seen;

struct consumer {
	rd_kafka_t *rk;
	char *topic;
	fanout *fan;
	const gw_stats *st;
	long refresh_ms;
	long skew_ms;
	int64_t stall_ms;
	pthread_t thread;
	int have_thread;
	atomic_int stop;
	atomic_int ready;                  /* assigned && fetching: consumer_ready() */
	atomic_int npart;                  /* partitions assigned */
	atomic_llong waiting_since;        /* earliest wall us a socket waited (NO_WAITER) */
	atomic_llong next[MAX_PARTITIONS]; /* next offset to read per partition */
	/* consumer thread only (statistics and error callbacks run in its polls) */
	int assigned;                    /* the first assignment was made */
	int fetching;                    /* the last judgement of the statistics */
	int64_t all_down_ms;             /* mono ms of the last "all brokers down" error */
	int64_t last_msg_ms;             /* mono ms of the last message consumed */
	int64_t last_ts[MAX_PARTITIONS]; /* timestamp (ms) of the last message per partition */
	unsigned char oor_retry[MAX_PARTITIONS]; /* out of range, not resumed yet: retry */
	broker_seen brokers[MAX_BROKERS];
	int nbrokers;
};

int consumer_ready(consumer *c)
{
	return c && atomic_load(&c->ready);
}

double consumer_fetching(void *arg)
{
	return consumer_ready(arg) ? 1 : 0;
}

void consumer_note_waiting(consumer *c, int64_t wall)
{
	if (!c)
		return;
	long long cur = atomic_load(&c->waiting_since);
	while (wall < cur && !atomic_compare_exchange_weak(&c->waiting_since, &cur, wall))
		;
}

double consumer_lag(void *arg)
{
	consumer *c = arg;
	if (!c)
		return 0;
	double lag = 0;
	int n = atomic_load(&c->npart);
	for (int p = 0; p < n; p++) {
		int64_t lo, hi, next = atomic_load(&c->next[p]);
		if (next < 0)
			continue;
		if (rd_kafka_get_watermark_offsets(c->rk, c->topic, p, &lo, &hi) ==
		        RD_KAFKA_RESP_ERR_NO_ERROR &&
		    hi > next)
			lag += (double)(hi - next);
	}
	return lag;
}

/* Number of partitions of the topic (creating it on a broker that allows it), or
 * -1 on error. */
static int partition_count(consumer *c, int timeout_ms)
{
	rd_kafka_topic_t *t = rd_kafka_topic_new(c->rk, c->topic, NULL);
	if (!t)
		return -1;
	const struct rd_kafka_metadata *md = NULL;
	int n = -1;
	rd_kafka_resp_err_t err = rd_kafka_metadata(c->rk, 0, t, &md, timeout_ms);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err)
		n = md->topics[0].partition_cnt;
	else if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1)
		log_debug("topic metadata not ready", "{s:s}", "err",
		          rd_kafka_err2str(md->topics[0].err));
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	return n > MAX_PARTITIONS ? MAX_PARTITIONS : n;
}

/* ---- readiness: librdkafka's statistics ---- */

static broker_seen *broker_find(consumer *c, int32_t id)
{
	for (int i = 0; i < c->nbrokers; i++)
		if (c->brokers[i].id == id)
			return &c->brokers[i];
	if (c->nbrokers == MAX_BROKERS)
		return NULL;
	broker_seen *b = &c->brokers[c->nbrokers++];
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->rx = -1;
	return b;
}

/* Sets ready from assigned and fetching; logs each change with its reason.
 * @locality the consumer thread. */
static void set_fetching(consumer *c, int fetching, const char *why, int32_t id)
{
	int was = c->fetching;
	c->fetching = fetching;
	int ready = c->assigned && fetching;
	if (atomic_exchange(&c->ready, ready) == ready)
		return;
	if (ready)
		log_info("consumer fetching: ready", "{s:s, s:i, s:b}", "topic", c->topic,
		         "partitions", atomic_load(&c->npart), "was_fetching", was);
	else
		log_warn("consumer not fetching: not ready", "{s:s, s:s, s:i}", "topic", c->topic,
		         "reason", why, "broker", (int)id);
}

/* Judges "fetching" from one statistics document: every assigned partition has a
 * broker it is fetched from, in state UP, which answered (its rx count moved) or
 * delivered a message within the stall window, after the last all-brokers-down
 * error. @locality the consumer thread (called from its polls). */
static void judge_stats(consumer *c, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *doc = json_loadb(json, len, 0, &jerr);
	if (!doc)
		return;
	int64_t now = mono_ms();
	const char *name;
	json_t *b;
	for (int i = 0; i < c->nbrokers; i++) {
		c->brokers[i].up = 0;
		c->brokers[i].sum = 0;
	}
	json_object_foreach(json_object_get(doc, "brokers"), name, b)
	{
		/* bootstrap entries have no node id; the "GroupCoordinator" entry is
		 * logical (the same node id, counters of its own): only real connections */
		json_int_t id = json_integer_value(json_object_get(b, "nodeid"));
		const char *src = json_string_value(json_object_get(b, "source"));
		if (id < 0 || (src && (!strcmp(src, "logical") || !strcmp(src, "internal"))))
			continue;
		broker_seen *s = broker_find(c, (int32_t)id);
		if (!s)
			continue;
		const char *state = json_string_value(json_object_get(b, "state"));
		s->up |= state && !strcmp(state, "UP");
		s->sum += json_integer_value(json_object_get(b, "rx"));
	}
	for (int i = 0; i < c->nbrokers; i++) {
		broker_seen *s = &c->brokers[i];
		if (s->rx >= 0 && s->sum != s->rx)
			s->rx_ms = now;
		s->rx = s->sum;
	}
	int fetching = 1;
	const char *why = "";
	int32_t bad = -1;
	json_t *parts = json_object_get(json_object_get(json_object_get(doc, "topics"), c->topic),
	                                "partitions");
	int n = atomic_load(&c->npart);
	for (int p = 0; p < n && fetching; p++) {
		char key[16];
		snprintf(key, sizeof(key), "%d", p);
		json_t *tp = json_object_get(parts, key);
		json_int_t id = tp ? json_integer_value(json_object_get(tp, "broker")) : -1;
		broker_seen *s = id >= 0 ? broker_find(c, (int32_t)id) : NULL;
		const char *fs = json_string_value(json_object_get(tp, "fetch_state"));
		bad = (int32_t)id;
		if (fs && (!strcmp(fs, "none") || !strncmp(fs, "stop", 4))) {
			fetching = 0; /* e.g. stopped by an offset out of range, not resumed */
			why = "a partition is not being fetched";
			bad = p;
		} else if (!s) {
			fetching = 0;
			why = "partition has no broker to fetch from";
		} else if (!s->up) {
			fetching = 0;
			why = "the partition's broker is not up";
		} else if ((now - s->rx_ms > c->stall_ms || s->rx_ms <= c->all_down_ms) &&
		           (now - c->last_msg_ms > c->stall_ms ||
		            c->last_msg_ms <= c->all_down_ms)) {
			fetching = 0;
			why = "no fetch response within the stall window";
		}
	}
	json_decref(doc);
	set_fetching(c, n > 0 && fetching, why, bad);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	judge_stats(opaque, json, len);
	return 0; /* librdkafka frees json */
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	consumer *c = opaque;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		c->all_down_ms = mono_ms();
		set_fetching(c, 0, "all brokers down", -1);
	} else {
		log_debug("kafka error", "{s:s, s:s}", "err", rd_kafka_err2str(err), "detail",
		          reason);
	}
}

/* ---- where reading starts ---- */

/* The first offset of partition p whose timestamp is at or after ts_ms, capped by
 * hi (the high watermark queried BEFORE this call: an event produced between the two
 * queries has an offset >= hi, so it is not skipped). hi when none. -1 on error. */
static int64_t offset_at_time(consumer *c, int32_t p, int64_t ts_ms, int64_t hi)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, c->topic, p)->offset = ts_ms;
	rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(c->rk, l, QUERY_MS);
	int64_t off = -1;
	if (!e && !l->elems[0].err)
		off = l->elems[0].offset >= 0 && l->elems[0].offset < hi ? l->elems[0].offset : hi;
	else
		log_warn("could not look up an offset by time", "{s:i, s:s}", "partition", (int)p,
		         "err", rd_kafka_err2str(e ? e : l->elems[0].err));
	rd_kafka_topic_partition_list_destroy(l);
	return off;
}

static int assign_list(consumer *c, rd_kafka_topic_partition_list_t *l)
{
	rd_kafka_error_t *err = rd_kafka_incremental_assign(c->rk, l);
	if (err) {
		log_warn("could not assign partitions", "{s:s}", "err", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
		return -1;
	}
	return 0;
}

/* The first assignment: every partition [0, n) from the time the earliest waiting
 * socket (or now) minus the clock skew (see consumer.h). 0 or -1. */
static int assign_initial(consumer *c, int n)
{
	int64_t now_us = wall_us();
	int64_t from_us = atomic_load(&c->waiting_since);
	if (from_us > now_us)
		from_us = now_us;
	int64_t ts_ms = from_us / 1000 - c->skew_ms;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	int64_t behind = 0;
	for (int p = 0; p < n; p++) {
		int64_t lo, hi;
		rd_kafka_resp_err_t e =
		    rd_kafka_query_watermark_offsets(c->rk, c->topic, p, &lo, &hi, QUERY_MS);
		int64_t off = e ? -1 : offset_at_time(c, p, ts_ms, hi);
		if (off < 0) {
			if (e)
				log_warn("could not query watermarks", "{s:i, s:s}", "partition", p,
				         "err", rd_kafka_err2str(e));
			rd_kafka_topic_partition_list_destroy(l);
			return -1;
		}
		behind += hi - off;
		atomic_store(&c->next[p], off);
		rd_kafka_topic_partition_list_add(l, c->topic, p)->offset = off;
	}
	int rc = assign_list(c, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (rc)
		return -1;
	atomic_store(&c->npart, n);
	c->assigned = 1;
	log_info("partitions assigned", "{s:s, s:i, s:s, s:I, s:I, s:b}", "topic", c->topic,
	         "partitions", n, "start", "first event at or after from_ms", "from_ms",
	         (json_int_t)ts_ms, "events_before_end", (json_int_t)behind, "sockets_waited",
	         atomic_load(&c->waiting_since) != NO_WAITER);
	return 0;
}

/* Partitions [from, to) that appeared while running: read from their start, so an
 * event produced to one before this consumer saw it is still delivered. */
static void assign_new(consumer *c, int from, int to)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(to - from);
	for (int p = from; p < to; p++) {
		atomic_store(&c->next[p], 0);
		c->last_ts[p] = 0;
		rd_kafka_topic_partition_list_add(l, c->topic, p)->offset =
		    RD_KAFKA_OFFSET_BEGINNING;
	}
	if (assign_list(c, l) == 0) {
		atomic_store(&c->npart, to);
		log_info("new partitions: reading them from their start", "{s:s, s:i, s:i}",
		         "topic", c->topic, "from", from, "to", to);
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* An offset out of range on partition p (auto.offset.reset=error: librdkafka stops
 * the partition and tells us). The decision, logged and counted:
 *   - our position is below the log start (retention removed events not read yet):
 *     resume at the log start; what was removed is lost to push (clients fetch it
 *     from /api/v1/events when they see the seq gap);
 *   - otherwise the log is shorter than our position (truncated by an unclean
 *     leader election, or the topic deleted and created again): resume at the first
 *     event at or after the last one we read (minus the clock skew), so new events
 *     are not skipped and old ones are not replayed wholesale.
 * Retried at each metadata refresh while the queries fail (the partition is stopped
 * meanwhile, and /ready says so). @locality the consumer thread. */
static void offset_out_of_range(consumer *c, int32_t p)
{
	if (p < 0 || p >= atomic_load(&c->npart))
		return;
	int64_t pos = atomic_load(&c->next[p]), lo, hi;
	rd_kafka_resp_err_t e =
	    rd_kafka_query_watermark_offsets(c->rk, c->topic, p, &lo, &hi, QUERY_MS);
	c->oor_retry[p] = 1; /* until resumed: retried at each metadata refresh */
	if (e) {
		log_warn("offset out of range: could not query watermarks", "{s:i, s:s}",
		         "partition", (int)p, "err", rd_kafka_err2str(e));
		return;
	}
	int retention = pos < lo;
	int64_t off = lo;
	if (!retention && c->last_ts[p] > 0)
		off = offset_at_time(c, p, c->last_ts[p] - c->skew_ms, hi);
	if (off < 0)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, c->topic, p)->offset = off;
	rd_kafka_error_t *err = rd_kafka_incremental_unassign(c->rk, l);
	if (err)
		rd_kafka_error_destroy(err); /* not assigned any more: assign below anyway */
	int rc = assign_list(c, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (rc)
		return;
	c->oor_retry[p] = 0;
	atomic_store(&c->next[p], off);
	metric_inc(c->st->offset_resets[retention ? 0 : 1]);
	log_warn("offset out of range: resuming", "{s:s, s:i, s:I, s:I, s:I, s:I, s:s}", "topic",
	         c->topic, "partition", (int)p, "position", (json_int_t)pos, "log_start",
	         (json_int_t)lo, "log_end", (json_int_t)hi, "resume_at", (json_int_t)off,
	         "decision",
	         retention ? "retention removed unread events: resume at the log start"
	                   : "log truncated or recreated: resume at the last event's time");
}

/* One message (or error) from the consumer queue; destroys m.
 * @locality the consumer thread. */
static void handle_message(consumer *c, rd_kafka_message_t *m)
{
	int32_t p = m->partition;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		int n = fanout_message(c->fan, m->key, m->key_len, m->payload, m->len, c->topic, p,
		                       m->offset);
		int64_t ts = rd_kafka_message_timestamp(m, NULL); /* ms; -1: none */
		if (n > 0 && ts > 0) {
			/* where a delivery's time went before this process (the bench's p99) */
			int64_t age_us = wall_us() - ts * 1000;
			metric_observe(c->st->kafka_age, age_us > 0 ? (double)age_us / 1e6 : 0);
		}
		if (p >= 0 && p < MAX_PARTITIONS) {
			atomic_store_explicit(&c->next[p], m->offset + 1, memory_order_relaxed);
			c->last_ts[p] = ts > 0 ? ts : wall_us() / 1000;
		}
		c->last_msg_ms = mono_ms();
	} else if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
	           m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
		offset_out_of_range(c, p);
	} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		/* not rd_kafka_message_errstr(): an inline of rdkafka.h that would link
		 * librdkafka in (see kafka_dl.h) */
		log_warn("consumer error", "{s:s, s:i}", "err", rd_kafka_err2str(m->err),
		         "partition", (int)m->partition);
	}
	rd_kafka_message_destroy(m);
}

/* @locality the consumer thread. */
static void *consumer_main(void *arg)
{
	consumer *c = arg;
	/* Wait for the topic (the broker may be down, or the topic not created yet). */
	while (!atomic_load(&c->stop)) {
		int n = partition_count(c, 2000);
		if (n > 0 && assign_initial(c, n) == 0)
			break;
		/* serves the statistics and error callbacks (no message: nothing is
		 * assigned yet) */
		for (int i = 0; i < 5 && !atomic_load(&c->stop); i++) {
			rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
			if (m)
				rd_kafka_message_destroy(m);
		}
	}
	int64_t next_refresh = mono_ms() + c->refresh_ms;
	while (!atomic_load(&c->stop)) {
		/* Wait for one message, then take what else is already fetched (up to a
		 * batch) without waiting, and wake the writers once for all of it. */
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
		for (int k = 0; m; k++) {
			handle_message(c, m);
			m = k + 1 < CONSUME_BATCH ? rd_kafka_consumer_poll(c->rk, 0) : NULL;
		}
		fanout_flush(c->fan);
		if (mono_ms() >= next_refresh) {
			next_refresh = mono_ms() + c->refresh_ms;
			int have = atomic_load(&c->npart);
			int n = partition_count(c, 1000);
			if (n > have)
				assign_new(c, have, n);
			for (int p = 0; p < have; p++)
				if (c->oor_retry[p])
					offset_out_of_range(c, p);
		}
	}
	return NULL;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 3)
		log_error("kafka", "{s:s, s:s}", "facility", fac, "detail", buf);
	else if (level <= 4)
		log_warn("kafka", "{s:s, s:s}", "facility", fac, "detail", buf);
	else
		log_debug("kafka", "{s:s, s:s}", "facility", fac, "detail", buf);
}

consumer *consumer_start(const consumer_opts *o, fanout *f, char *err, size_t errlen)
{
	if (kafka_dl_load(err, errlen))
		return NULL;
	consumer *c = xcalloc(1, sizeof(*c));
	c->topic = xstrdup(o->topic);
	c->fan = f;
	c->st = o->st;
	c->refresh_ms = o->refresh_ms;
	c->skew_ms = o->clock_skew_ms;
	/* an empty fetch is answered after fetch.wait.max.ms: three of them missing is
	 * a stall, not a slow poll */
	c->stall_ms =
	    3 * o->fetch_wait_ms + 2000 > STALL_MIN_MS ? 3 * o->fetch_wait_ms + 2000 : STALL_MIN_MS;
	atomic_init(&c->waiting_since, NO_WAITER);
	for (int i = 0; i < MAX_PARTITIONS; i++)
		atomic_init(&c->next[i], -1);
	char gid[64], uuid[UUID_STR_LEN], fw[32], fmin[32], fmax[32], stats[32];
	uuid_new(uuid);
	/* A group id only names this client: it never joins the group (no subscribe). */
	snprintf(gid, sizeof(gid), "ws-gateway-%s", uuid);
	snprintf(fw, sizeof(fw), "%ld", o->fetch_wait_ms);
	snprintf(fmin, sizeof(fmin), "%ld", o->fetch_min_bytes > 0 ? o->fetch_min_bytes : 1);
	snprintf(fmax, sizeof(fmax), "%zu",
	         o->max_event_bytes + 1024 > 1048576 ? o->max_event_bytes + 1024 : 1048576);
	snprintf(stats, sizeof(stats), "%d", STATS_MS);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *kv[][2] = {
	    {"bootstrap.servers", o->brokers},
	    {"group.id", gid},
	    {"client.id", "ws-gateway"},
	    {"enable.auto.commit", "false"},
	    {"enable.auto.offset.store", "false"},
	    {"enable.partition.eof", "false"},
	    {"allow.auto.create.topics", "true"},
	    {"fetch.wait.max.ms", fw},
	    {"fetch.min.bytes", fmin}, /* 1 (default): a fetch returns with the first event */
	    {"fetch.error.backoff.ms", "50"},
	    /* TCP_NODELAY: a request never waits behind Nagle for the ACK of the last */
	    {"socket.nagle.disable", "true"},
	    {"reconnect.backoff.ms", "50"},
	    {"reconnect.backoff.max.ms", "1000"},
	    {"message.max.bytes", fmax},
	    /* an offset out of range is ours to decide (offset_out_of_range), never a
	     * silent jump to the end */
	    {"auto.offset.reset", "error"},
	    {"statistics.interval.ms", stats},
	};
	char e[512];
	for (size_t i = 0; i < ARRAY_LEN(kv); i++) {
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], e, sizeof(e)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "kafka config %s: %s", kv[i][0], e);
			rd_kafka_conf_destroy(conf);
			goto fail;
		}
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e)); /* owns conf on success */
	if (!c->rk) {
		snprintf(err, errlen, "could not create Kafka consumer: %s", e);
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	/* the main queue (statistics, errors) is served by the consumer thread's polls */
	rd_kafka_poll_set_consumer(c->rk);
	if (pthread_create(&c->thread, NULL, consumer_main, c)) {
		snprintf(err, errlen, "could not start consumer thread");
		goto fail;
	}
	c->have_thread = 1;
	(void)pthread_setname_np(c->thread, "gw-consumer");
	return c;
fail:
	consumer_stop(c);
	return NULL;
}

void consumer_stop(consumer *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, 1);
	if (c->have_thread)
		pthread_join(c->thread, NULL);
	if (c->rk) {
		rd_kafka_consumer_close(c->rk);
		rd_kafka_destroy(c->rk);
	}
	free(c->topic);
	free(c);
}
