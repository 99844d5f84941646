/* harness: runs the real ws-gateway ($TASKSYNC_BIN/ws-gateway) as a child on a
 * free port against the harness's devbroker, produces events with librdkafka, and
 * speaks plain HTTP to it. Generic pieces live in tests/support/ (proc, http_client,
 * kafka_io, fixtures). */
#ifndef GW_TEST_HARNESS_H
#define GW_TEST_HARNESS_H

#include "../support/fixtures.h"
#include "../support/http_client.h"
#include "../support/kafka_io.h"

#include <stddef.h>
#include <sys/types.h>

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

/* "/ws?token=..." for user (static buffer per call site: caller copies). */
void ws_target(char *out, size_t len, const char *user);

/* kafka_produce (tests/support/kafka_io.h). */
void produce(const char *topic, const char *key, const char *payload, size_t len);
/* Builds a full task.created event for user; event_id is written to id (37 bytes).
 * desc_len > 0 adds a description of that many characters. Caller frees. */
char *make_event(const char *user, char *id, size_t desc_len);

long long ms_now(void);

#endif
