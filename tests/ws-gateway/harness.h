/* harness: runs the real ws-gateway ($TASKSYNC_BIN/ws-gateway) as a child on a
 * free port against the harness's devbroker, produces events with librdkafka, and
 * speaks plain HTTP to it. */
#ifndef GW_TEST_HARNESS_H
#define GW_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#define TEST_SECRET "test-secret-0123456789abcdef"

typedef struct gw_proc {
	pid_t pid;
	int port;
	char topic[64];
	char log[512];
} gw_proc;

/* A topic name unique to this test process. */
void test_topic(char *out, size_t len);
/* Starts the gateway on topic with extra "NAME=value" settings (NULL-terminated)
 * and waits for /ready (fails the test otherwise). */
void gw_start(gw_proc *g, const char *topic, const char *const *extra);
/* SIGTERM and wait; returns the exit status (or -1 when it had to be killed) and
 * the time it took in *ms. */
int gw_stop(gw_proc *g, long *ms);

/* GET path; returns the status (-1 on error) and the body in *body (caller frees). */
int http_get(int port, const char *path, char **body);
/* The value of an unlabelled (or exactly labelled) series in a /metrics text. */
double metric_in(const char *text, const char *series);

/* A token for user (HS256 with TEST_SECRET), valid for ttl seconds. Caller frees. */
char *token_for(const char *user, long ttl);
/* "/ws?token=..." for user (static buffer per call site: caller copies). */
void ws_target(char *out, size_t len, const char *user);

/* Produces payload with key (NULL: none) to topic and waits for the delivery. */
void produce(const char *topic, const char *key, const char *payload, size_t len);
/* Builds a full task.created event for user; event_id is written to id (37 bytes).
 * desc_len > 0 adds a description of that many characters. Caller frees. */
char *make_event(const char *user, char *id, size_t desc_len);

long long ms_now(void);

#endif
