#include "harness.h"

#include "../support/broker.h"
#include "../support/kafka_io.h"
#include "../support/runner.h"
#include "common/event.h"
#include "common/util.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void start(backend *b, const char *const *extra)
{
	char bin[1024], db[300], brokers[512], topic[160];
	snprintf(bin, sizeof(bin), "%s/backend-api", test_env("TASKSYNC_BIN"));
	snprintf(db, sizeof(db), "DATABASE_URL=%s", b->db);
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(topic, sizeof(topic), "KAFKA_TOPIC=%s", b->topic);
	const char *env[64] = {db, brokers, topic, "JWT_SECRET=" TEST_SECRET, "LOG_LEVEL=info",
	                       "DB_POOL_SIZE=4", "HTTP_THREADS=16", "SHUTDOWN_TIMEOUT_MS=5000",
	                       /* settings the harness may leak must not change a test */
	                       "DEV_LOGIN=0",
	                       "STATIC_DIR=", "ALLOWED_ORIGINS=", "EVENT_RETENTION=604800"};
	size_t n = 12;
	for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(env) - 1; i++)
		env[n++] = extra[i];
	proc_start(&b->p, bin, NULL, env, "/readyz", 200);
}

void be_start(backend *b, const char *const *extra)
{
	memset(b, 0, sizeof(*b));
	pgtest_createdb(b->db, sizeof(b->db));
	unique_name(b->topic, sizeof(b->topic), "ba-test");
	kafka_create_topic(b->topic, 3);
	start(b, extra);
}

void be_start_same(backend *b, const backend *other, const char *const *extra)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->db, sizeof(b->db), "%s", other->db);
	snprintf(b->topic, sizeof(b->topic), "%s", other->topic);
	start(b, extra);
}

int be_log_clean(const backend *b)
{
	char *log = read_text_file(b->p.log);
	int bad = strstr(log, "AddressSanitizer") || strstr(log, "LeakSanitizer") ||
	          strstr(log, "runtime error:");
	free(log);
	return !bad;
}

int be_stop_quiet(backend *b)
{
	int rc = proc_stop(&b->p, NULL);
	return rc == 0 && be_log_clean(b);
}

void be_stop(backend *b)
{
	long ms = 0;
	int rc = proc_stop(&b->p, &ms);
	ck_assert_msg(rc == 0, "backend-api exited with %d after SIGTERM (log %s)", rc, b->p.log);
	ck_assert_msg(be_log_clean(b), "sanitizer report in %s", b->p.log);
}

void new_user(char *out, size_t len)
{
	unique_name(out, len, "u");
}

int api(const backend *b, const char *user, const char *method, const char *path, const char *body,
        const char *headers, json_t **out, http_resp *resp)
{
	char *h = NULL;
	size_t cap = 8192 + (headers ? strlen(headers) : 0);
	h = xmalloc(cap);
	size_t n = 0;
	h[0] = 0;
	if (user) {
		char *tok = token_for(user, 600);
		ck_assert_ptr_nonnull(tok);
		n += (size_t)snprintf(h + n, cap - n, "Authorization: Bearer %s\r\n", tok);
		free(tok);
	}
	if (body && !(headers && strcasestr(headers, "Content-Type:")))
		n += (size_t)snprintf(h + n, cap - n, "Content-Type: application/json\r\n");
	if (headers)
		snprintf(h + n, cap - n, "%s", headers);
	http_resp r;
	int st = http_request(b->p.port, method, path, h, body, body ? strlen(body) : 0, 20000, &r);
	free(h);
	if (out)
		*out = r.body_len ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	if (resp)
		*resp = r;
	else
		http_resp_free(&r);
	return st;
}

int apif(const backend *b, const char *user, const char *method, const char *path, json_t **out,
         const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *body = NULL;
	ck_assert_int_ge(vasprintf(&body, fmt, ap), 0);
	va_end(ap);
	int st = api(b, user, method, path, body, NULL, out, NULL);
	free(body);
	return st;
}

void expect_error(json_t *body, const char *code, const char *field)
{
	char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_t *e = json_object_get(body, "error");
	ck_assert_msg(json_is_object(e), "no error object in %s", dump ? dump : "(not JSON)");
	ck_assert_msg(json_is_string(json_object_get(e, "code")) &&
	                  !strcmp(json_string_value(json_object_get(e, "code")), code),
	              "error code %s expected in %s", code, dump);
	ck_assert_msg(json_is_string(json_object_get(e, "message")) &&
	                  json_string_length(json_object_get(e, "message")) > 0,
	              "no message in %s", dump);
	if (field)
		ck_assert_msg(json_is_string(json_object_get(e, "field")) &&
		                  !strcmp(json_string_value(json_object_get(e, "field")), field),
		              "field %s expected in %s", field, dump);
	free(dump);
	json_decref(body);
}

json_t *create_task(const backend *b, const char *user, const char *title)
{
	json_t *t = NULL;
	json_t *req = json_pack("{s:s}", "title", title);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	int st = api(b, user, "POST", "/api/v1/tasks", body, NULL, &t, NULL);
	free(body);
	ck_assert_msg(st == 201, "create %s: %d", title, st);
	ck_assert_ptr_nonnull(t);
	return t;
}

const char *task_path(const char *id)
{
	static char p[256];
	snprintf(p, sizeof(p), "/api/v1/tasks/%s", id);
	return p;
}

const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

long long jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

void wait_published(const backend *b, const char *user, int timeout_ms)
{
	/* Published = the relay confirmed the slot past every commit made so far. */
	long target = pgtest_wal_lsn(b->db);
	int64_t deadline = mono_ms() + timeout_ms;
	long at = -1;
	while (mono_ms() < deadline) {
		at = pgtest_slot_confirmed(b->db);
		if (at >= target)
			return;
		usleep(50000);
	}
	ck_abort_msg("events of %s unpublished after %d ms: slot at %ld, commits up to %ld", user,
	             timeout_ms, at, target);
}

static size_t count_user(kreader *r, const char *user)
{
	size_t n, c = 0;
	const kmsg *m = kreader_msgs(r, &n);
	for (size_t i = 0; i < n; i++)
		c += m[i].key && !strcmp(m[i].key, user);
	return c;
}

json_t **topic_events(const backend *b, const char *user, size_t n, int timeout_ms, int linger_ms,
                      size_t *count)
{
	kreader *r = kreader_open(b->topic, timeout_ms);
	int64_t deadline = mono_ms() + timeout_ms;
	while (count_user(r, user) < n && mono_ms() < deadline) {
		size_t have;
		kreader_msgs(r, &have);
		kreader_collect(r, have + 1, 200);
	}
	if (linger_ms > 0) {
		size_t have;
		kreader_msgs(r, &have);
		kreader_collect(r, (size_t)-1, linger_ms);
	}
	size_t total;
	const kmsg *m = kreader_msgs(r, &total);
	json_t **ev = xcalloc(total + 1, sizeof(*ev));
	size_t c = 0;
	for (size_t i = 0; i < total; i++) {
		if (!m[i].key || strcmp(m[i].key, user))
			continue;
		event e;
		char err[256];
		ck_assert_msg(event_parse(m[i].value, m[i].value_len, &e, err, sizeof(err)) == 0,
		              "event does not parse (%s): %s", err, m[i].value);
		ck_assert_str_eq(e.user_id, user);
		event_clear(&e);
		json_t *j = json_loadb(m[i].value, m[i].value_len, 0, NULL);
		ck_assert_ptr_nonnull(j);
		ev[c++] = j;
	}
	kreader_free(r);
	*count = c;
	return ev;
}

void free_events(json_t **ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(ev[i]);
	free(ev);
}

void assert_schema(const char *schema, json_t *const *docs, size_t n)
{
	static int seq;
	const char *dir = getenv("TEST_RUN_DIR") ? getenv("TEST_RUN_DIR") : "/tmp";
	char file[600], log[640], script[1024];
	snprintf(file, sizeof(file), "%s/docs-%d-%d.jsonl", dir, (int)getpid(), ++seq);
	snprintf(log, sizeof(log), "%s.log", file);
	snprintf(script, sizeof(script), "%s/tests/backend-api/check_schema.py",
	         test_env("TASKSYNC_ROOT"));
	FILE *f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++) {
		char *line = json_dumps(docs[i], JSON_COMPACT);
		fprintf(f, "%s\n", line);
		free(line);
	}
	fclose(f);
	const char *args[] = {script, schema, file, NULL};
	int rc = proc_run("/usr/bin/python3", args, NULL, log, 60000);
	char *out = read_text_file(log);
	ck_assert_msg(rc == 0, "documents do not match proto/%s (%s):\n%s", schema, file, out);
	free(out);
}

void broker_down(void)
{
	broker_guard(1);
	broker_kill(1);
}

void broker_up(void)
{
	broker_start(1);
}

static char verdicts[4096];

void shared_start(backend *b, const char *const *extra)
{
	be_start(b, extra);
}

void shared_stop(backend *b)
{
	char log[512];
	snprintf(log, sizeof(log), "%s", b->p.log);
	if (!be_stop_quiet(b)) {
		size_t n = strlen(verdicts);
		snprintf(verdicts + n, sizeof(verdicts) - n, "%s%s", n ? ", " : "", log);
	}
}

START_TEST(shared_backends_exited_cleanly)
{
	ck_assert_msg(verdicts[0] == 0,
	              "shared backend-api exited non-zero or with a sanitizer report: %s",
	              verdicts);
}
END_TEST

Suite *verdict_suite(void)
{
	Suite *s = suite_create("verdict");
	TCase *tc = tcase_create("shared_backends");
	/* tagged like the cases it judges, so excluding integration runs nothing */
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, shared_backends_exited_cleanly);
	suite_add_tcase(s, tc);
	return s;
}
