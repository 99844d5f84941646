#include "kafka_io.h"

#include "common/util.h"
#include "runner.h"

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kreader {
	rd_kafka_t *rk;
	kmsg *msgs;
	size_t n, cap;
};

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char e[512];
	ck_assert_msg(rd_kafka_conf_set(c, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK, "%s: %s", k, e);
}

/* The partition count of topic once it exists, 0 when it does not yet. */
static int partitions_of(rd_kafka_t *rk, const char *topic)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 2000);
	rd_kafka_topic_destroy(t);
	int np = 0;
	if (!e && md->topic_cnt == 1 && !md->topics[0].err)
		np = md->topics[0].partition_cnt;
	if (md)
		rd_kafka_metadata_destroy(md);
	return np;
}

kreader *kreader_open(const char *topic, int wait_ms)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	/* A group id is required by the consumer API even without subscribe; nothing
	 * is committed. */
	char gid[64], u[UUID_STR_LEN];
	uuid_new(u);
	snprintf(gid, sizeof(gid), "test-reader-%s", u);
	conf_set(conf, "group.id", gid);
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "fetch.wait.max.ms", "10");
	conf_set(conf, "fetch.error.backoff.ms", "50");
	conf_set(conf, "topic.metadata.refresh.interval.ms", "1000");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "consumer: %s", e);
	rd_kafka_poll_set_consumer(rk);
	int np = 0;
	int64_t deadline = mono_ms() + wait_ms;
	while ((np = partitions_of(rk, topic)) == 0 && mono_ms() < deadline)
		usleep(100000);
	if (np == 0) {
		rd_kafka_destroy(rk);
		ck_abort_msg("topic %s did not appear within %d ms", topic, wait_ms);
	}
	rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(np);
	for (int p = 0; p < np; p++)
		rd_kafka_topic_partition_list_add(pl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_resp_err_t err = rd_kafka_assign(rk, pl);
	rd_kafka_topic_partition_list_destroy(pl);
	ck_assert_msg(!err, "assign: %s", rd_kafka_err2str(err));
	kreader *r = xcalloc(1, sizeof(*r));
	r->rk = rk;
	return r;
}

size_t kreader_collect(kreader *r, size_t n, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	while (r->n < n && mono_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 50);
		if (!m)
			continue;
		if (!m->err) {
			if (r->n == r->cap) {
				r->cap = r->cap ? r->cap * 2 : 256;
				r->msgs = xrealloc(r->msgs, r->cap * sizeof(*r->msgs));
			}
			kmsg *k = &r->msgs[r->n++];
			k->key = m->key ? xstrndup(m->key, m->key_len) : NULL;
			k->value = xstrndup(m->payload ? m->payload : "", m->len);
			k->value_len = m->len;
			k->partition = m->partition;
			k->offset = m->offset;
		}
		rd_kafka_message_destroy(m);
	}
	return r->n;
}

const kmsg *kreader_msgs(const kreader *r, size_t *n)
{
	*n = r->n;
	return r->msgs;
}

void kreader_free(kreader *r)
{
	if (!r)
		return;
	rd_kafka_consumer_close(r->rk);
	rd_kafka_destroy(r->rk);
	for (size_t i = 0; i < r->n; i++) {
		free(r->msgs[i].key);
		free(r->msgs[i].value);
	}
	free(r->msgs);
	free(r);
}

/* One producer per test process (each Check test runs in its own process). */
static rd_kafka_t *producer(void)
{
	static rd_kafka_t *rk;
	if (rk)
		return rk;
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	conf_set(conf, "linger.ms", "0");
	conf_set(conf, "message.max.bytes", "2000000");
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "producer: %s", e);
	return rk;
}

void kafka_produce(const char *topic, const char *key, const char *payload, size_t len)
{
	rd_kafka_t *rk = producer();
	rd_kafka_resp_err_t err =
	    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                      RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
	                      RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_END);
	ck_assert_msg(!err, "produce: %s", rd_kafka_err2str(err));
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
}
