/* kafka-load: produces task events (the full form of proto/task-event.schema.json,
 * keyed by user id) to KAFKA_TOPIC at RATE events/s (0: flat out), for USERS users,
 * COUNT events or DURATION_S seconds, whichever comes first. Each event carries its
 * send time, the microsecond wall clock, in the task description ("bench-ts:N") so
 * ws-load can measure produce-to-socket latency more precisely than the
 * millisecond "timestamp".
 *
 * The producer batches (LINGER_MS, default 5): the librdkafka mock broker spends far
 * less CPU on a few large batches than on many small ones, which matters on two
 * cores. The result is one JSON line on stdout. */
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

static struct {
	char *brokers, *topic, *prefix, *type;
	long users, rate, count, duration_s, linger_ms, user_offset;
	int level;
} cfg;

static const cfg_entry table[] = {
    {"KAFKA_BROKERS", CFG_STR, &cfg.brokers, "127.0.0.1:9092", 1, 1024, "bootstrap servers"},
    {"KAFKA_TOPIC", CFG_STR, &cfg.topic, "task-updates", 1, 249, "topic"},
    {"USERS", CFG_INT, &cfg.users, "100", 1, 1000000, "users; event i goes to user i % USERS"},
    {"USER_PREFIX", CFG_STR, &cfg.prefix, "bench-u", 0, 64, "user ids are PREFIX<n>"},
    {"USER_OFFSET", CFG_INT, &cfg.user_offset, "0", 0, 1000000,
     "first user number (PREFIX<offset>...)"},
    {"RATE", CFG_INT, &cfg.rate, "0", 0, 10000000, "events per second (0: flat out)"},
    {"COUNT", CFG_INT, &cfg.count, "100000", 1, 2000000000, "events to produce"},
    {"DURATION_S", CFG_INT, &cfg.duration_s, "30", 1, 3600, "longest run"},
    {"LINGER_MS", CFG_INT, &cfg.linger_ms, "5", 0, 1000, "producer linger.ms"},
    {"EVENT_TYPE", CFG_STR, &cfg.type, "task.updated", 1, 32, "task.created | task.updated"},
    {"LOG_LEVEL", CFG_LEVEL, &cfg.level, "info", 0, 0, "stderr log level"},
};

static volatile sig_atomic_t stop_flag;
static long delivered, delivery_errors;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* @locality the thread calling rd_kafka_poll/flush (main). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		if (delivery_errors++ < 5)
			log_warn("delivery failed", "{s:s}", "err", rd_kafka_err2str(m->err));
	} else {
		delivered++;
	}
}

static rd_kafka_t *producer_new(void)
{
	char err[512], linger[32];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	snprintf(linger, sizeof(linger), "%ld", cfg.linger_ms);
	const char *kv[][2] = {
	    {"bootstrap.servers", cfg.brokers},
	    {"linger.ms", linger},
	    {"batch.num.messages", "10000"},
	    {"queue.buffering.max.messages", "1000000"},
	    {"queue.buffering.max.kbytes", "1048576"},
	    {"acks", "1"},
	    {"compression.type", "none"},
	    {"socket.nagle.disable", "true"},
	};
	for (size_t i = 0; i < ARRAY_LEN(kv); i++)
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK) {
			log_error("bad producer setting", "{s:s, s:s}", "key", kv[i][0], "err",
			          err);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		log_error("could not create producer", "{s:s}", "err", err);
		rd_kafka_conf_destroy(conf); /* ownership passes only on success */
	}
	return rk;
}

/* Waits (at most 10 s) until the topic's metadata names a leader for every
 * partition, so the first events are not timed while the producer still looks up
 * a topic it has never seen (that wait, about 100-200 ms for a new topic, once put
 * the first 1-2 % of a latency run's frames at the p99). 0 or -1. */
static int warm_up(rd_kafka_t *rk, rd_kafka_topic_t *topic)
{
	int64_t until = mono_ms() + 10000;
	while (mono_ms() < until && !stop_flag) {
		const struct rd_kafka_metadata *md = NULL;
		int ok = 0;
		if (rd_kafka_metadata(rk, 0, topic, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
			ok = 1;
			for (int i = 0; i < md->topics[0].partition_cnt; i++)
				if (md->topics[0].partitions[i].leader < 0)
					ok = 0;
		}
		if (md)
			rd_kafka_metadata_destroy(md);
		if (ok)
			return 0;
		rd_kafka_poll(rk, 100);
	}
	log_error("topic has no leaders", "{s:s}", "topic", cfg.topic);
	return -1;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		config_print_help(stdout, "kafka-load", "Produces task events for the benchmarks.",
		                  table, ARRAY_LEN(table));
		return strcmp(argv[1], "--help") ? 2 : 0;
	}
	char err[2048];
	if (config_load(table, ARRAY_LEN(table), err, sizeof(err))) {
		fprintf(stderr, "%s", err);
		return 2;
	}
	log_setup("kafka-load", (log_level)cfg.level);
	if (strcmp(cfg.type, "task.created") && strcmp(cfg.type, "task.updated")) {
		fprintf(stderr, "EVENT_TYPE: not one of task.created|task.updated\n");
		return 2;
	}
	char probe[USER_ID_MAX + 32];
	snprintf(probe, sizeof(probe), "%s%ld", cfg.prefix, cfg.user_offset + cfg.users - 1);
	if (!user_id_valid(probe)) {
		fprintf(stderr, "USER_PREFIX: \"%s\" is not a valid user id\n", probe);
		return 2;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	rd_kafka_t *rk = producer_new();
	if (!rk)
		return 1;
	rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, cfg.topic, NULL);
	if (warm_up(rk, topic)) {
		rd_kafka_topic_destroy(topic);
		rd_kafka_destroy(rk);
		config_free(table, ARRAY_LEN(table));
		return 1;
	}

	int64_t *seq = xcalloc((size_t)cfg.users, sizeof(int64_t));
	int64_t t0 = mono_us(), deadline = t0 + cfg.duration_s * 1000000;
	long sent = 0, queue_full = 0;
	char buf[1024], ts[40], uid[USER_ID_MAX + 1], eid[UUID_STR_LEN], tid[64];
	while (!stop_flag && sent < cfg.count) {
		int64_t now = mono_us();
		if (now >= deadline)
			break;
		long allowed = cfg.count;
		if (cfg.rate) {
			allowed = (long)((double)(now - t0) * (double)cfg.rate / 1e6) + 1;
			if (allowed > cfg.count)
				allowed = cfg.count;
			if (sent >= allowed) {
				rd_kafka_poll(rk, 0);
				struct timespec ts_sleep = {0, 100000};
				nanosleep(&ts_sleep, NULL);
				continue;
			}
		}
		for (; sent < allowed && !stop_flag; sent++) {
			long u = sent % cfg.users;
			int64_t s = ++seq[u];
			int64_t w = wall_us();
			time_iso8601(w, ts, sizeof(ts));
			snprintf(uid, sizeof(uid), "%s%ld", cfg.prefix, cfg.user_offset + u);
			uuid_new(eid);
			snprintf(tid, sizeof(tid), "00000000-0000-4000-8000-%012lx",
			         (unsigned long)(cfg.user_offset + u) & 0xffffffffffffUL);
			int n = snprintf(
			    buf, sizeof(buf),
			    "{\"event_id\":\"%s\",\"event_type\":\"%s\",\"user_id\":\"%s\","
			    "\"seq\":%lld,\"origin\":null,\"timestamp\":\"%s\",\"task\":{\"id\":\"%"
			    "s\","
			    "\"title\":\"bench task of %s\",\"description\":\"bench-ts:%lld\","
			    "\"priority\":\"medium\",\"due_at\":null,\"completed\":false,"
			    "\"position\":1,\"version\":%lld,\"created_at\":\"%s\","
			    "\"updated_at\":\"%s\"}}",
			    eid, cfg.type, uid, (long long)s, ts, tid, uid, (long long)w,
			    (long long)s, ts, ts);
			for (int tries = 0;; tries++) {
				if (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA,
				                     RD_KAFKA_MSG_F_COPY, buf, (size_t)n, uid,
				                     strlen(uid), NULL) == 0)
					break;
				if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
				    tries > 1000 || mono_us() >= deadline) {
					log_error("produce failed", "{s:s}", "err",
					          rd_kafka_err2str(rd_kafka_last_error()));
					goto done;
				}
				queue_full++;
				rd_kafka_poll(rk, 1);
			}
			if ((sent & 1023) == 0)
				rd_kafka_poll(rk, 0);
			if (cfg.rate == 0 && mono_us() >= deadline)
				break;
		}
	}
done:;
	int64_t t_produced = mono_us();
	rd_kafka_flush(rk, 10000);
	int64_t t_flushed = mono_us();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	double prod_s = (double)(t_produced - t0) / 1e6, all_s = (double)(t_flushed - t0) / 1e6;
	printf("{\"sent\":%ld,\"delivered\":%ld,\"delivery_errors\":%ld,\"queue_full\":%ld,"
	       "\"produce_s\":%.3f,\"produce_rate\":%.0f,\"delivered_rate\":%.0f,\"linger_ms\":%ld,"
	       "\"cpu_s\":%.3f}\n",
	       sent, delivered, delivery_errors, queue_full, prod_s,
	       prod_s > 0 ? (double)sent / prod_s : 0.0,
	       all_s > 0 ? (double)delivered / all_s : 0.0, cfg.linger_ms, cpu_s);
	fflush(stdout);
	free(seq);
	rd_kafka_topic_destroy(topic);
	rd_kafka_destroy(rk);
	config_free(table, ARRAY_LEN(table));
	return delivery_errors ? 1 : 0;
}
