#include "cluster.h"

#include "../support/broker.h"
#include "../support/fixtures.h"
#include "../support/proc.h"
#include "../support/runner.h"
#include "common/util.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cluster_sh(char *out, size_t len)
{
	snprintf(out, len, "%s/tools/kafka/cluster.sh", test_env("TASKSYNC_ROOT"));
}

/* Copies the value of NAME= in the kafka.env text into out; 0 or -1 when absent. */
static int env_value(const char *text, const char *name, char *out, size_t len)
{
	size_t l = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, l) || p[l] != '=')
			continue;
		const char *v = p + l + 1, *e = strchr(v, '\n');
		size_t n = e ? (size_t)(e - v) : strlen(v);
		if (n >= len)
			return -1;
		memcpy(out, v, n);
		out[n] = 0;
		return 0;
	}
	return -1;
}

/* Copies the line of path holding mark into out, prefixed with what; 1 when found. */
static int line_with(const char *path, const char *mark, const char *what, char *out, size_t len)
{
	char *text = read_text_file(path);
	const char *hit = strstr(text, mark);
	if (hit) {
		const char *b = hit, *e = strchr(hit, '\n');
		while (b > text && b[-1] != '\n')
			b--;
		size_t n = e ? (size_t)(e - b) : strlen(b);
		snprintf(out, len, "%s: %.*s", what, (int)(n > 300 ? 300 : n), b);
	}
	free(text);
	return hit != NULL;
}

/* The first line that says why the cluster did not start ("" if none): the
 * storage format's error, then a node's bind failure or first error. */
static void failure_reason(const char *dir, int nodes, char *out, size_t len)
{
	static const char *const marks[] = {"Address already in use", "failed to bind", "ERROR"};
	char path[700], what[32];
	out[0] = 0;
	for (int i = 1; i <= nodes; i++) {
		snprintf(path, sizeof(path), "%s/node-%d/format.log", dir, i);
		snprintf(what, sizeof(what), "node %d format", i);
		if (line_with(path, "error:", what, out, len))
			return;
	}
	for (size_t m = 0; m < ARRAY_LEN(marks); m++) {
		for (int i = 1; i <= nodes; i++) {
			snprintf(path, sizeof(path), "%s/node-%d/server.log", dir, i);
			snprintf(what, sizeof(what), "node %d", i);
			if (line_with(path, marks[m], what, out, len))
				return;
		}
	}
}

void cluster_up(cluster *c, int nodes)
{
	memset(c, 0, sizeof(*c));
	char name[128], sh[1024], n[16], log[600], why[400] = "";
	unique_name(name, sizeof(name), "c");
	snprintf(c->dir, sizeof(c->dir), "%s/kafka%d-%s", test_env("TEST_RUN_DIR"), nodes, name);
	ck_assert_msg(mkdir(c->dir, 0755) == 0, "mkdir %s: %s", c->dir, strerror(errno));
	broker_on_exit("down", c->dir, 0); /* no JVM outlives the test */
	cluster_sh(sh, sizeof(sh));
	snprintf(n, sizeof(n), "%d", nodes);
	snprintf(log, sizeof(log), "%s/up.log", c->dir);
	const char *args[] = {sh, "up", c->dir, n, NULL};
	int64_t t0 = mono_ms();
	int rc = proc_run("/bin/bash", args, NULL, log, 180000);
	c->up_ms = (long)(mono_ms() - t0);
	if (rc != 0)
		failure_reason(c->dir, nodes, why, sizeof(why));
	ck_assert_msg(rc == 0, "could not start a %d-node kafka cluster: %s (see %s)", nodes,
	              why[0] ? why : "no reason in the node logs", log);

	char envf[600];
	snprintf(envf, sizeof(envf), "%s/kafka.env", c->dir);
	char *env = read_text_file(envf);
	char nodes_s[16], dir[512];
	ck_assert_msg(env_value(env, "KAFKA_BROKERS", c->brokers, sizeof(c->brokers)) == 0 &&
	                  env_value(env, "KAFKA_NODES", nodes_s, sizeof(nodes_s)) == 0 &&
	                  env_value(env, "KAFKA_DIR", dir, sizeof(dir)) == 0,
	              "%s lacks KAFKA_BROKERS, KAFKA_NODES or KAFKA_DIR", envf);
	free(env);
	c->nodes = (int)strtol(nodes_s, NULL, 10);
	ck_assert_msg(c->nodes == nodes, "%s: KAFKA_NODES=%s, %d asked", envf, nodes_s, nodes);
	ck_assert_int_eq(setenv("KAFKA_DIR", dir, 1), 0);
	ck_assert_int_eq(setenv("KAFKA_BROKERS", c->brokers, 1), 0);
	ck_assert_int_eq(setenv("KAFKA_NODES", nodes_s, 1), 0);
}

void cluster_down(cluster *c)
{
	char sh[1024], log[600];
	cluster_sh(sh, sizeof(sh));
	snprintf(log, sizeof(log), "%s/down.log", c->dir);
	const char *args[] = {sh, "down", c->dir, NULL};
	int rc = proc_run("/bin/bash", args, NULL, log, 120000);
	ck_assert_msg(rc == 0, "could not stop the kafka cluster in %s (see %s)", c->dir, log);
}
