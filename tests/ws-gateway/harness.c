#include "harness.h"

#include "../support/runner.h"
#include "common/auth.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void test_topic(char *out, size_t len)
{
	static int n;
	char u[UUID_STR_LEN];
	uuid_new(u);
	snprintf(out, len, "gw-test-%d-%d-%.8s", (int)getpid(), ++n, u);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &l)) {
		close(fd);
		return -1;
	}
	int p = ntohs(a.sin_port);
	close(fd);
	return p;
}

void gw_start(gw_proc *g, const char *topic, const char *const *extra)
{
	memset(g, 0, sizeof(*g));
	const char *bin = test_env("TASKSYNC_BIN");
	const char *brokers = test_env("KAFKA_BROKERS");
	const char *dir = getenv("TEST_RUN_DIR") ? getenv("TEST_RUN_DIR") : "/tmp";
	snprintf(g->topic, sizeof(g->topic), "%s", topic);
	g->port = free_port();
	ck_assert_int_gt(g->port, 0);
	snprintf(g->log, sizeof(g->log), "%s/ws-gateway-%d.log", dir, g->port);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Dies with the test process, even when a failed assertion ends it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		char v[64];
		snprintf(v, sizeof(v), "%d", g->port);
		setenv("PORT", v, 1);
		setenv("KAFKA_BROKERS", brokers, 1);
		setenv("KAFKA_TOPIC", topic, 1);
		setenv("JWT_SECRET", TEST_SECRET, 1);
		setenv("LOG_LEVEL", "info", 1);
		setenv("MAX_CONNECTIONS", "32", 1);
		setenv("KAFKA_METADATA_REFRESH_MS", "1000", 1);
		for (size_t i = 0; extra && extra[i]; i++) {
			char kv[256];
			snprintf(kv, sizeof(kv), "%s", extra[i]);
			char *eq = strchr(kv, '=');
			if (eq) {
				*eq = 0;
				setenv(kv, eq + 1, 1);
			}
		}
		int fd = open(g->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
			close(fd);
		}
		char path[1024];
		snprintf(path, sizeof(path), "%s/ws-gateway", bin);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	g->pid = pid;
	long long deadline = ms_now() + 30000;
	for (;;) {
		char *body = NULL;
		int st = http_get(g->port, "/ready", &body);
		free(body);
		if (st == 200)
			return;
		int ws;
		if (waitpid(pid, &ws, WNOHANG) == pid)
			ck_abort_msg("ws-gateway exited during start-up (log %s)", g->log);
		if (ms_now() > deadline)
			ck_abort_msg("ws-gateway not ready within 30 s (log %s)", g->log);
		usleep(50000);
	}
}

int gw_stop(gw_proc *g, long *ms)
{
	if (g->pid <= 0)
		return -1;
	long long t0 = ms_now();
	kill(g->pid, SIGTERM);
	int ws = 0, rc = -1;
	for (;;) {
		pid_t r = waitpid(g->pid, &ws, WNOHANG);
		if (r == g->pid) {
			rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
			break;
		}
		if (ms_now() - t0 > 15000) {
			kill(g->pid, SIGKILL);
			waitpid(g->pid, &ws, 0);
			break;
		}
		usleep(10000);
	}
	if (ms)
		*ms = (long)(ms_now() - t0);
	g->pid = 0;
	return rc;
}

int http_get(int port, const char *path, char **body)
{
	*body = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			 path);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -1;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	long long deadline = ms_now() + 5000;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(deadline - ms_now() > 0 ? deadline - ms_now() : 0)) <= 0)
			break;
		if (cap - len < 4096)
			buf = realloc(buf, cap *= 2);
		ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	int status = -1;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		free(buf);
		return -1;
	}
	char *b = strstr(buf, "\r\n\r\n");
	*body = strdup(b ? b + 4 : "");
	free(buf);
	return status;
}

double metric_in(const char *text, const char *series)
{
	size_t l = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, series, l) && p[l] == ' ')
			return strtod(p + l + 1, NULL);
	}
	return -1;
}

char *token_for(const char *user, long ttl) { return auth_mint(TEST_SECRET, user, ttl); }

void ws_target(char *out, size_t len, const char *user)
{
	char *t = token_for(user, 600);
	snprintf(out, len, "/ws?token=%s", t);
	free(t);
}

/* One producer per test process (each Check test runs in its own process). */
static rd_kafka_t *producer(void)
{
	static rd_kafka_t *rk;
	if (rk)
		return rk;
	char e[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", test_env("KAFKA_BROKERS"), e,
				    sizeof(e)) == RD_KAFKA_CONF_OK);
	rd_kafka_conf_set(conf, "linger.ms", "0", e, sizeof(e));
	rd_kafka_conf_set(conf, "message.max.bytes", "2000000", e, sizeof(e));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	ck_assert_msg(rk != NULL, "producer: %s", e);
	return rk;
}

void produce(const char *topic, const char *key, const char *payload, size_t len)
{
	rd_kafka_t *rk = producer();
	rd_kafka_resp_err_t err = rd_kafka_producev(
		rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)payload, len),
		RD_KAFKA_V_END);
	ck_assert_msg(!err, "produce: %s", rd_kafka_err2str(err));
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
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
