/* harness: runs the real backend-api ($TASKSYNC_BIN/backend-api, the sanitizer
 * build) as a child on a free port with a fresh database and a topic of its own
 * on the harness's devbroker, and speaks its HTTP API as a given user. */
#ifndef BA_TEST_HARNESS_H
#define BA_TEST_HARNESS_H

#include "../support/fixtures.h"
#include "../support/http_client.h"
#include "../support/kafka_io.h"
#include "../support/pgtest.h"
#include "../support/proc.h"

#include <check.h>
#include <jansson.h>
#include <stddef.h>

typedef struct backend {
	proc p;
	char db[256];    /* its DATABASE_URL */
	char topic[128]; /* its KAFKA_TOPIC */
} backend;

/* Starts backend-api on a new database and topic with extra "NAME=value"
 * settings (NULL-terminated, may be NULL) and waits until /readyz is 200. */
void be_start(backend *b, const char *const *extra);
/* Starts another process on other's database and topic. */
void be_start_same(backend *b, const backend *other, const char *const *extra);
/* SIGTERM; asserts a clean exit (status 0, no sanitizer report in its log). */
void be_stop(backend *b);
/* SIGTERM without assertions. Returns 1 when it exited 0 with a clean log. */
int be_stop_quiet(backend *b);
/* 1 when the log holds no AddressSanitizer/UBSan/LeakSanitizer report. */
int be_log_clean(const backend *b);

/* A user id unique to this run. */
void new_user(char *out, size_t len);

/* One API call. user NULL: no Authorization header. body (JSON text) NULL: none;
 * with a body "Content-Type: application/json" is sent unless headers name a
 * Content-Type. headers: NULL or complete lines. Returns the status; *out (may be
 * NULL) gets the parsed JSON body or NULL; resp (may be NULL) the raw answer
 * (release with http_resp_free). */
int api(const backend *b, const char *user, const char *method, const char *path, const char *body,
        const char *headers, json_t **out, http_resp *resp);
/* api() with a printf-formatted body. */
int apif(const backend *b, const char *user, const char *method, const char *path, json_t **out,
         const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Asserts body is {"error":{"code":code,"message":"..."}} (and, when field is
 * not NULL, error.field == field). Takes body (decref'd). */
void expect_error(json_t *body, const char *code, const char *field);
/* POST a task {"title":title} for user; asserts 201 and returns the task. */
json_t *create_task(const backend *b, const char *user, const char *title);
/* "/api/v1/tasks/<id>" (static buffer: copy or use at once). */
const char *task_path(const char *id);
const char *jstr(const json_t *o, const char *key);
long long jint(const json_t *o, const char *key);

/* Waits up to timeout_ms until every event committed so far (user's among them)
 * is published: the replication slot confirmed past the current WAL position. */
void wait_published(const backend *b, const char *user, int timeout_ms);

/* The events of user on b's topic, in topic order, as parsed JSON (each asserted
 * to pass common/event.h's parser and to be keyed by user). Waits until at least
 * n arrived (timeout_ms), then ~linger_ms more for extras. *count is set; caller
 * frees with free_events. */
json_t **topic_events(const backend *b, const char *user, size_t n, int timeout_ms, int linger_ms,
                      size_t *count);
void free_events(json_t **ev, size_t n);

/* Asserts that every document validates against proto/<schema> (JSON Schema,
 * checked by tests/backend-api/check_schema.py with python3-jsonschema). */
void assert_schema(const char *schema, json_t *const *docs, size_t n);

/* A Kafka outage: the harness's broker SIGKILLed (with a guard that starts it
 * again when this test process ends, however it ends), then started again on the
 * same log dirs by broker_up (which waits until it has started). */
void broker_down(void);
void broker_up(void);

/* A backend shared by the tests of one TCase: start it from an unchecked setup
 * (runs once, in the runner process) and stop it from the unchecked teardown,
 * which records an unclean exit for verdict_suite() (teardowns cannot assert). */
void shared_start(backend *b, const char *const *extra);
void shared_stop(backend *b);
/* The last suite of the binary: fails when a shared backend exited uncleanly. */
Suite *verdict_suite(void);

#endif
