#include "kafka_io.h"

#include "broker.h"
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

/* The partition count of topic once it exists (0 when it does not yet); *led (may be
 * NULL): how many have a leader; *leader (may be NULL): the leader of partition p
 * (-1 when it has none). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int *led, int p, int *leader)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
	rd_kafka_topic_destroy(t);
	int np = 0, n_led = 0;
	if (!e && md->topic_cnt == 1 && !md->topics[0].err) {
		np = md->topics[0].partition_cnt;
		for (int i = 0; i < np; i++) {
			const rd_kafka_metadata_partition_t *mp = &md->topics[0].partitions[i];
			if (mp->leader >= 0 && !mp->err)
				n_led++;
			if (leader && mp->id == p)
				*leader = mp->err ? -1 : mp->leader;
		}
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	if (led)
		*led = n_led;
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
	while ((np = topic_partitions(rk, topic, NULL, -1, NULL)) == 0 && mono_ms() < deadline)
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

static rd_kafka_t *admin_client(void)
{
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "kafka client: %s", e);
	return rk;
}

void kafka_create_topic(const char *topic, int partitions)
{
	rd_kafka_t *rk = admin_client();
	int rf = broker_nodes() < 3 ? broker_nodes() : 3;
	char e[512];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, rf, e, sizeof(e));
	ck_assert_msg(nt != NULL, "topic %s: %s", topic, e);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	ck_assert(rd_kafka_AdminOptions_set_operation_timeout(o, 30000, e, sizeof(e)) == 0);
	rd_kafka_CreateTopics(rk, &nt, 1, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
	ck_assert_msg(ev != NULL, "no answer to CreateTopics %s", topic);
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	ck_assert_msg(res != NULL, "CreateTopics %s: %s", topic, rd_kafka_event_error_string(ev));
	size_t n = 0;
	const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
	ck_assert_int_eq(n, 1);
	rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[0]);
	ck_assert_msg(!err || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, "create topic %s: %s",
	              topic, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	int led = 0;
	for (int64_t end = mono_ms() + 30000; mono_ms() < end; usleep(50000))
		if (topic_partitions(rk, topic, &led, -1, NULL) == partitions && led == partitions)
			break;
	rd_kafka_destroy(rk);
	ck_assert_msg(led == partitions, "topic %s: %d of %d partitions have a leader", topic, led,
	              partitions);
}

void kafka_set_topic_config(const char *topic, const char *name, const char *value)
{
	rd_kafka_t *rk = admin_client();
	char e[512];
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	ck_assert(rd_kafka_ConfigResource_set_config(cr, name, value) == 0);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
	ck_assert(rd_kafka_AdminOptions_set_request_timeout(o, 30000, e, sizeof(e)) == 0);
	rd_kafka_AlterConfigs(rk, &cr, 1, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
	ck_assert_msg(ev != NULL, "no answer to AlterConfigs %s", topic);
	ck_assert_msg(!rd_kafka_event_error(ev), "AlterConfigs %s: %s", topic,
	              rd_kafka_event_error_string(ev));
	const rd_kafka_AlterConfigs_result_t *res = rd_kafka_event_AlterConfigs_result(ev);
	size_t n = 0;
	const rd_kafka_ConfigResource_t **rs = rd_kafka_AlterConfigs_result_resources(res, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_msg(!rd_kafka_ConfigResource_error(rs[0]), "AlterConfigs %s: %s", topic,
	              rd_kafka_ConfigResource_error_string(rs[0]));
	rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_ConfigResource_destroy(cr);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

int kafka_leader(const char *topic, int partition)
{
	rd_kafka_t *rk = admin_client();
	int leader = -1;
	(void)topic_partitions(rk, topic, NULL, partition, &leader);
	rd_kafka_destroy(rk);
	return leader;
}
