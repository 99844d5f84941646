#include "broker.h"

#include "common/util.h"
#include "proc.h"
#include "runner.h"

#include <check.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *cluster_sh(void)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/tools/kafka/cluster.sh", test_env("TASKSYNC_ROOT"));
	return path;
}

int broker_nodes(void)
{
	long n = strtol(test_env("KAFKA_NODES"), NULL, 10);
	ck_assert_msg(n >= 1 && n <= 9, "KAFKA_NODES=%s", test_env("KAFKA_NODES"));
	return (int)n;
}

pid_t broker_pid(int node)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/node-%d/pid", test_env("KAFKA_DIR"), node);
	char *s = read_text_file(path);
	long pid = strtol(s, NULL, 10);
	free(s);
	ck_assert_msg(pid > 0, "kafka node %d has no pid (%s)", node, path);
	return (pid_t)pid;
}

void broker_kill(int node)
{
	pid_t pid = broker_pid(node);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	/* not our child: wait until it is gone */
	for (int64_t end = mono_ms() + 10000; kill(pid, 0) == 0 && mono_ms() < end;)
		usleep(20000);
	ck_assert_msg(kill(pid, 0) != 0, "kafka node %d (%d) survived SIGKILL", node, (int)pid);
}

void broker_freeze(int node)
{
	ck_assert_int_eq(kill(broker_pid(node), SIGSTOP), 0);
}

void broker_thaw(int node)
{
	ck_assert_int_eq(kill(broker_pid(node), SIGCONT), 0);
}

void broker_start(int node)
{
	char n[16], log[1024];
	snprintf(n, sizeof(n), "%d", node);
	snprintf(log, sizeof(log), "%s/kafka-restart.log", test_env("TEST_RUN_DIR"));
	const char *args[] = {cluster_sh(), "start", test_env("KAFKA_DIR"), n, NULL};
	int rc = proc_run("/bin/bash", args, NULL, log, 180000);
	ck_assert_msg(rc == 0, "could not restart kafka node %d (see %s)", node, log);
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char e[512];
	ck_assert_msg(rd_kafka_conf_set(c, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK, "%s: %s", k, e);
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

/* Partitions of topic with a leader, or 0; *leader of partition p when asked. */
static int partitions_led(rd_kafka_t *rk, const char *topic, int p, int *leader)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
	rd_kafka_topic_destroy(t);
	int led = 0;
	if (!e && md->topic_cnt == 1 && !md->topics[0].err) {
		for (int i = 0; i < md->topics[0].partition_cnt; i++) {
			const rd_kafka_metadata_partition_t *mp = &md->topics[0].partitions[i];
			if (mp->leader >= 0 && !mp->err)
				led++;
			if (leader && mp->id == p)
				*leader = mp->err ? -1 : mp->leader;
		}
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	return led;
}

void broker_create_topic(const char *topic, int partitions)
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
		if ((led = partitions_led(rk, topic, -1, NULL)) == partitions)
			break;
	rd_kafka_destroy(rk);
	ck_assert_msg(led == partitions, "topic %s: %d of %d partitions have a leader", topic, led,
	              partitions);
}

int broker_leader(const char *topic, int partition)
{
	rd_kafka_t *rk = admin_client();
	int leader = -1;
	(void)partitions_led(rk, topic, partition, &leader);
	rd_kafka_destroy(rk);
	return leader;
}

void broker_guard(int node)
{
	static int guarded[16];
	ck_assert(node >= 1 && node < 16);
	if (guarded[node])
		return;
	int fds[2];
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	char n[16];
	snprintf(n, sizeof(n), "%d", node);
	const char *sh = cluster_sh(), *dir = test_env("KAFKA_DIR");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* When the test process ends, however it ends, the pipe's only writer
		 * is gone. O_CLOEXEC keeps the services the test starts from holding
		 * it. */
		close(fds[1]);
		char c;
		while (read(fds[0], &c, 1) > 0)
			;
		char pidf[1024], *s;
		snprintf(pidf, sizeof(pidf), "%s/node-%d/pid", dir, node);
		s = read_text_file(pidf);
		pid_t bp = (pid_t)strtol(s, NULL, 10);
		free(s);
		if (bp > 0 && kill(bp, SIGCONT) == 0)
			_exit(0);
		execl("/bin/bash", "bash", sh, "start", dir, n, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	/* fds[1] stays open (and leaks on purpose) for the life of the test. */
	guarded[node] = 1;
}
