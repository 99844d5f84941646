#include "consumer.h"

#include "common/log.h"
#include "kafka_dl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTITIONS 4096

struct consumer {
	rd_kafka_t *rk;
	char *topic;
	fanout *fan;
	long refresh_ms;
	pthread_t thread;
	int have_thread;
	atomic_int stop;
	atomic_int ready;
	atomic_int npart;                  /* partitions assigned */
	atomic_llong next[MAX_PARTITIONS]; /* next offset to read per partition */
};

int consumer_ready(consumer *c)
{
	return c && atomic_load(&c->ready);
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

/* Assigns partitions [from, to): at the high watermark when at_end, else from the
 * start (partitions created while running). 0 or -1. */
static int assign_range(consumer *c, int from, int to, int at_end)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(to - from);
	for (int p = from; p < to; p++) {
		int64_t off = RD_KAFKA_OFFSET_BEGINNING;
		if (at_end) {
			int64_t lo, hi;
			rd_kafka_resp_err_t e =
			    rd_kafka_query_watermark_offsets(c->rk, c->topic, p, &lo, &hi, 5000);
			if (e) {
				log_warn("could not query watermarks", "{s:i, s:s}", "partition", p,
				         "err", rd_kafka_err2str(e));
				rd_kafka_topic_partition_list_destroy(l);
				return -1;
			}
			off = hi;
			atomic_store(&c->next[p], hi);
		} else {
			atomic_store(&c->next[p], 0);
		}
		rd_kafka_topic_partition_list_add(l, c->topic, p)->offset = off;
	}
	rd_kafka_error_t *err = rd_kafka_incremental_assign(c->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err) {
		log_warn("could not assign partitions", "{s:s}", "err", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
		return -1;
	}
	atomic_store(&c->npart, to);
	log_info("partitions assigned", "{s:s, s:i, s:i, s:s}", "topic", c->topic, "from", from,
	         "to", to, "start", at_end ? "end" : "beginning");
	return 0;
}

/* @locality the consumer thread. */
static void *consumer_main(void *arg)
{
	consumer *c = arg;
	/* Wait for the topic (the broker may be down, or the topic not created yet). */
	while (!atomic_load(&c->stop)) {
		int n = partition_count(c, 2000);
		if (n > 0 && assign_range(c, 0, n, 1) == 0)
			break;
		for (int i = 0; i < 5 && !atomic_load(&c->stop); i++)
			rd_kafka_poll(c->rk, 100);
	}
	if (!atomic_load(&c->stop)) {
		atomic_store(&c->ready, 1);
		log_info("consumer ready", "{s:s, s:i}", "topic", c->topic, "partitions",
		         atomic_load(&c->npart));
	}
	int64_t next_refresh = mono_ms() + c->refresh_ms;
	while (!atomic_load(&c->stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
		if (m) {
			if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
				int32_t p = m->partition;
				(void)fanout_message(c->fan, m->key, m->key_len, m->payload, m->len,
				                     c->topic, p, m->offset);
				if (p >= 0 && p < MAX_PARTITIONS)
					atomic_store(&c->next[p], m->offset + 1);
			} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				/* not rd_kafka_message_errstr(): an inline of rdkafka.h that
				 * would link librdkafka in (see kafka_dl.h) */
				log_warn("consumer error", "{s:s, s:i}", "err",
				         rd_kafka_err2str(m->err), "partition", (int)m->partition);
			}
			rd_kafka_message_destroy(m);
		}
		if (mono_ms() >= next_refresh) {
			next_refresh = mono_ms() + c->refresh_ms;
			int have = atomic_load(&c->npart);
			int n = partition_count(c, 1000);
			if (n > have)
				(void)assign_range(c, have, n, 0);
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
	c->refresh_ms = o->refresh_ms;
	for (int i = 0; i < MAX_PARTITIONS; i++)
		atomic_init(&c->next[i], -1);
	char gid[64], uuid[UUID_STR_LEN], fw[32], fmax[32];
	uuid_new(uuid);
	/* A group id only names this client: it never joins the group (no subscribe). */
	snprintf(gid, sizeof(gid), "ws-gateway-%s", uuid);
	snprintf(fw, sizeof(fw), "%ld", o->fetch_wait_ms);
	snprintf(fmax, sizeof(fmax), "%zu",
	         o->max_event_bytes + 1024 > 1048576 ? o->max_event_bytes + 1024 : 1048576);
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
	    {"fetch.min.bytes", "1"}, /* a fetch returns as soon as one event is there */
	    {"fetch.error.backoff.ms", "50"},
	    {"reconnect.backoff.ms", "50"},
	    {"reconnect.backoff.max.ms", "1000"},
	    {"message.max.bytes", fmax},
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
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e)); /* owns conf on success */
	if (!c->rk) {
		snprintf(err, errlen, "could not create Kafka consumer: %s", e);
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
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
