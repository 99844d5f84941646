/* Migrations (backend-api/src/migrate.c): embedded in the binary, applied in order
 * exactly once, recorded in schema_migrations, safe when two processes start at
 * once; `backend-api migrate` applies them and exits. */
#include "harness.h"

#include "../support/kafka_io.h"
#include "suites.h"

#include "../support/runner.h"

#include "common/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void bin_path(char *out, size_t len)
{
	snprintf(out, len, "%s/backend-api", test_env("TASKSYNC_BIN"));
}

/* The env of a backend-api run on db. */
static void env_for(char db[300], char brokers[512], const char *url, const char *env[8])
{
	snprintf(db, 300, "DATABASE_URL=%s", url);
	snprintf(brokers, 512, "KAFKA_BROKERS=%s", test_env("KAFKA_BROKERS"));
	env[0] = db;
	env[1] = brokers;
	env[2] = "JWT_SECRET=" TEST_SECRET;
	env[3] = "LOG_LEVEL=info";
	env[4] = NULL;
}

/* The number of .sql files in migrations/ of the tree. */
static long migration_files(void)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/migrations", test_env("TASKSYNC_ROOT"));
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	long n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		n += l > 4 && !strcmp(e->d_name + l - 4, ".sql");
	}
	closedir(d);
	return n;
}

START_TEST(migrate_command_applies_once)
{
	char url[256], bin[1024], db[300], brokers[512];
	pgtest_createdb(url, sizeof(url));
	bin_path(bin, sizeof(bin));
	const char *env[8];
	env_for(db, brokers, url, env);
	const char *args[] = {"migrate", NULL};
	char log[600];
	snprintf(log, sizeof(log), "%s/migrate-%d.log",
	         getenv("TEST_RUN_DIR") ? getenv("TEST_RUN_DIR") : "/tmp", (int)getpid());
	ck_assert_int_eq(proc_run(bin, args, env, log, 60000), 0);
	long files = migration_files();
	ck_assert_int_ge(files, 1);
	ck_assert_int_eq(pgtest_long(url, "SELECT count(*) FROM schema_migrations", 0, NULL),
	                 files);
	ck_assert_int_eq(
	    pgtest_long(url, "SELECT count(DISTINCT version) FROM schema_migrations", 0, NULL),
	    files);
	ck_assert_int_eq(pgtest_long(url,
	                             "SELECT count(*) FROM schema_migrations WHERE name IS NULL OR "
	                             "applied_at IS NULL",
	                             0, NULL),
	                 0);
	/* the tables of the contract exist */
	const char *tables[] = {"tasks", "user_seq", "outbox"};
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		const char *p[] = {tables[i]};
		ck_assert_msg(pgtest_long(url,
		                          "SELECT count(*) FROM pg_tables WHERE tablename = $1", 1,
		                          p) == 1,
		              "no table %s", tables[i]);
	}
	/* again: nothing applied twice */
	char *before =
	    pgtest_value(url, "SELECT max(applied_at)::text FROM schema_migrations", 0, NULL);
	ck_assert_int_eq(proc_run(bin, args, env, log, 60000), 0);
	ck_assert_int_eq(pgtest_long(url, "SELECT count(*) FROM schema_migrations", 0, NULL),
	                 files);
	char *after =
	    pgtest_value(url, "SELECT max(applied_at)::text FROM schema_migrations", 0, NULL);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	/* the log is JSON lines */
	char *text = read_text_file(log);
	ck_assert_ptr_nonnull(strchr(text, '{'));
	free(text);
}
END_TEST

START_TEST(concurrent_migrations)
{
	char url[256], bin[1024], db[300], brokers[512];
	pgtest_createdb(url, sizeof(url));
	bin_path(bin, sizeof(bin));
	const char *env[8];
	env_for(db, brokers, url, env);
	/* four `migrate` runs at once on an empty database */
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0) {
			const char *args[] = {"migrate", NULL};
			_exit(proc_run(bin, args, env, NULL, 60000) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < 4; i++) {
		int ws;
		ck_assert_int_eq(waitpid(kids[i], &ws, 0), kids[i]);
		ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "migrate run %d failed", i);
	}
	long files = migration_files();
	ck_assert_int_eq(pgtest_long(url, "SELECT count(*) FROM schema_migrations", 0, NULL),
	                 files);
	/* and two servers starting at once on a fresh database both come up */
	backend a, b;
	memset(&a, 0, sizeof(a));
	pgtest_createdb(a.db, sizeof(a.db));
	unique_name(a.topic, sizeof(a.topic), "ba-test");
	kafka_create_topic(a.topic, 3);
	pid_t k = fork();
	ck_assert_int_ge(k, 0);
	if (k == 0) {
		/* the child starts one and waits for it; the parent the other */
		backend c;
		be_start_same(&c, &a, NULL);
		_exit(be_stop_quiet(&c) ? 0 : 1);
	}
	be_start_same(&b, &a, NULL);
	int ws;
	ck_assert_int_eq(waitpid(k, &ws, 0), k);
	ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "the other server failed");
	ck_assert_int_eq(pgtest_long(a.db, "SELECT count(*) FROM schema_migrations", 0, NULL),
	                 files);
	char u[64];
	new_user(u, sizeof(u));
	json_decref(create_task(&b, u, "works"));
	be_stop(&b);
}
END_TEST

Suite *migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("migrations");
	tcase_set_tags(tc, "integration");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, migrate_command_applies_once);
	tcase_add_test(tc, concurrent_migrations);
	suite_add_tcase(s, tc);
	return s;
}
