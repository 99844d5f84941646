#include "harness.h"

#include "../support/kafka_io.h"
#include "../support/proc.h"
#include "../support/runner.h"
#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long long ms_now(void)
{
	return mono_ms();
}

void test_topic(char *out, size_t len)
{
	unique_name(out, len, "gw-test");
	kafka_create_topic(out, 3);
}

void gw_start(gw_proc *g, const char *topic, const char *const *extra)
{
	memset(g, 0, sizeof(*g));
	char bin[1024], brokers[512], t[128];
	snprintf(bin, sizeof(bin), "%s/ws-gateway", test_env("TASKSYNC_BIN"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(t, sizeof(t), "KAFKA_TOPIC=%s", topic);
	snprintf(g->topic, sizeof(g->topic), "%s", topic);
	const char *env[64] = {brokers,
	                       t,
	                       "JWT_SECRET=" TEST_SECRET,
	                       "LOG_LEVEL=info",
	                       "MAX_CONNECTIONS=32",
	                       "KAFKA_METADATA_REFRESH_MS=1000",
	                       "ALLOWED_ORIGINS=*"};
	size_t n = 7;
	for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(env) - 1; i++)
		env[n++] = extra[i];
	proc p;
	proc_start(&p, bin, NULL, env, "/ready", 200);
	g->pid = p.pid;
	g->port = p.port;
	snprintf(g->log, sizeof(g->log), "%s", p.log);
}

int gw_stop(gw_proc *g, long *ms)
{
	proc p = {.pid = g->pid, .port = g->port};
	int rc = proc_stop(&p, ms);
	g->pid = 0;
	return rc;
}

void ws_target(char *out, size_t len, const char *user)
{
	char *t = token_for(user, 600);
	snprintf(out, len, "/ws?token=%s", t);
	free(t);
}

void produce(const char *topic, const char *key, const char *payload, size_t len)
{
	kafka_produce(topic, key, payload, len);
}

char *make_event(const char *user, char *id, size_t desc_len)
{
	char ts[40], tid[UUID_STR_LEN];
	uuid_new(id);
	uuid_new(tid);
	time_iso8601(wall_us(), ts, sizeof(ts));
	char *desc = calloc(1, desc_len + 1);
	memset(desc, 'd', desc_len);
	size_t cap = desc_len + 1024;
	char *out = malloc(cap);
	snprintf(out, cap,
	         "{\"event_id\":\"%s\",\"event_type\":\"task.created\",\"user_id\":\"%s\","
	         "\"seq\":1,\"origin\":null,\"timestamp\":\"%s\",\"task\":{\"id\":\"%s\","
	         "\"title\":\"t\",\"description\":%s%s%s,\"priority\":\"medium\",\"due_at\":null,"
	         "\"completed\":false,\"position\":1,\"version\":1,\"created_at\":\"%s\","
	         "\"updated_at\":\"%s\"}}",
	         id, user, ts, tid, desc_len ? "\"" : "", desc_len ? desc : "null",
	         desc_len ? "\"" : "", ts, ts);
	free(desc);
	return out;
}
