/* Configuration (backend-api/src/config.c): --help prints the table; a bad or
 * missing setting stops the start with a message naming the variable. */
#include "harness.h"
#include "suites.h"

#include "../support/runner.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void paths(char *bin, size_t blen, char *log, size_t llen, const char *tag)
{
	static int n;
	snprintf(bin, blen, "%s/backend-api", test_env("TASKSYNC_BIN"));
	snprintf(log, llen, "%s/config-%s-%d-%d.log",
	         getenv("TEST_RUN_DIR") ? getenv("TEST_RUN_DIR") : "/tmp", tag, (int)getpid(), ++n);
}

START_TEST(help_prints_the_table)
{
	char bin[1024], log[600];
	paths(bin, sizeof(bin), log, sizeof(log), "help");
	const char *args[] = {"--help", NULL};
	ck_assert_int_eq(proc_run(bin, args, NULL, log, 20000), 0);
	char *text = read_text_file(log);
	const char *names[] = {"PORT",
	                       "DATABASE_URL",
	                       "KAFKA_BROKERS",
	                       "KAFKA_TOPIC",
	                       "JWT_SECRET",
	                       "ALLOWED_ORIGINS",
	                       "LOG_LEVEL",
	                       "DB_POOL_SIZE",
	                       "HTTP_THREADS",
	                       "MAX_BODY_BYTES",
	                       "EVENT_RETENTION",
	                       "OUTBOX_SLOT",
	                       "OUTBOX_TAKEOVER_MS",
	                       "DB_STATEMENT_TIMEOUT_MS",
	                       "DB_LOCK_TIMEOUT_MS",
	                       "KAFKA_LINGER_MS",
	                       "DEV_LOGIN",
	                       "STATIC_DIR",
	                       "PUBLIC_GATEWAY_URL",
	                       "SHUTDOWN_TIMEOUT_MS"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		ck_assert_msg(strstr(text, names[i]), "--help lacks %s:\n%s", names[i], text);
	free(text);
}
END_TEST

/* Runs backend-api with env (each a full setting list) and expects a non-zero
 * exit whose output names var, with no listener left behind. */
static void expect_refused(const char *const *env, const char *var)
{
	char bin[1024], log[600];
	paths(bin, sizeof(bin), log, sizeof(log), var);
	int rc = proc_run(bin, NULL, env, log, 20000);
	ck_assert_msg(rc > 0, "started (%d) with a bad %s (log %s)", rc, var, log);
	char *text = read_text_file(log);
	ck_assert_msg(strstr(text, var), "the message does not name %s: %s", var, text);
	ck_assert_msg(!strstr(text, "AddressSanitizer") && !strstr(text, "runtime error"),
	              "sanitizer report: %s", text);
	free(text);
}

START_TEST(bad_settings_refused)
{
	char db[300], brokers[512], port[32];
	snprintf(db, sizeof(db), "DATABASE_URL=%s", test_env("PG_ADMIN_URL"));
	snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	snprintf(port, sizeof(port), "PORT=%d", free_port());
	const char *secret = "JWT_SECRET=" TEST_SECRET;
	struct {
		const char *bad, *var;
	} cases[] = {
	    {"JWT_SECRET=short", "JWT_SECRET"},
	    {"PORT=0", "PORT"},
	    {"PORT=80x", "PORT"},
	    {"DB_POOL_SIZE=0", "DB_POOL_SIZE"},
	    {"DB_POOL_SIZE=65", "DB_POOL_SIZE"},
	    {"EVENT_RETENTION=59", "EVENT_RETENTION"},
	    {"EVENT_RETENTION=31536001", "EVENT_RETENTION"},
	    {"KAFKA_LINGER_MS=1001", "KAFKA_LINGER_MS"},
	    {"MAX_BODY_BYTES=-1", "MAX_BODY_BYTES"},
	    {"DEV_LOGIN=maybe", "DEV_LOGIN"},
	    {"LOG_LEVEL=loud", "LOG_LEVEL"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *env[] = {port, db, brokers, secret, cases[i].bad, NULL};
		expect_refused(env, cases[i].var);
	}
	/* required settings: each missing one is named. An empty value counts as
	 * missing; the harness's own environment may hold some of them. */
	const char *no_db[] = {port, "DATABASE_URL=", brokers, secret, NULL};
	expect_refused(no_db, "DATABASE_URL");
	const char *no_kafka[] = {port, db, "KAFKA_BROKERS=", secret, NULL};
	expect_refused(no_kafka, "KAFKA_BROKERS");
	const char *no_secret[] = {port, db, brokers, "JWT_SECRET=", NULL};
	expect_refused(no_secret, "JWT_SECRET");
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("settings");
	tcase_set_tags(tc, "integration"); /* runs the binary */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, help_prints_the_table);
	tcase_add_test(tc, bad_settings_refused);
	suite_add_tcase(s, tc);
	return s;
}
