#include "pgtest.h"

#include "common/util.h"
#include "proc.h"
#include "runner.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static PGconn *connect_to(const char *url)
{
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQfinish(c);
		ck_abort_msg("could not connect to %s: %s", url, msg);
	}
	return c;
}

void pgtest_createdb(char *url, size_t len)
{
	static int n;
	const char *admin = test_env("PG_ADMIN_URL");
	char u[UUID_STR_LEN], name[64];
	uuid_new(u);
	snprintf(name, sizeof(name), "bt_%d_%d_%.8s", (int)getpid(), ++n, u);
	PGconn *c = connect_to(admin);
	char sql[128];
	/* the name is generated here from digits and hex: nothing to quote */
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	ck_assert_msg(ok, "CREATE DATABASE %s: %s", name, msg);
	/* The admin URL ends in /postgres: same server, the new database. */
	const char *slash = strrchr(admin, '/');
	ck_assert_ptr_nonnull(slash);
	snprintf(url, len, "%.*s/%s", (int)(slash - admin), admin, name);
}

PGresult *pgtest_exec_on(PGconn *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQclear(r);
		ck_abort_msg("%s: %s", sql, msg);
	}
	return r;
}

PGresult *pgtest_exec(const char *url, const char *sql, int nparams, const char *const *params)
{
	PGconn *c = connect_to(url);
	PGresult *r = pgtest_exec_on(c, sql, nparams, params);
	PQfinish(c);
	return r;
}

char *pgtest_value(const char *url, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = pgtest_exec(url, sql, nparams, params);
	char *v = NULL;
	if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
		v = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

long pgtest_long(const char *url, const char *sql, int nparams, const char *const *params)
{
	char *v = pgtest_value(url, sql, nparams, params);
	long l = v ? strtol(v, NULL, 10) : -1;
	free(v);
	return l;
}

long pgtest_wal_lsn(const char *url)
{
	return pgtest_long(url, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", 0, NULL);
}

long pgtest_slot_confirmed(const char *url)
{
	return pgtest_long(
	    url,
	    "SELECT coalesce((SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint "
	    "FROM pg_replication_slots WHERE database = current_database() LIMIT 1), "
	    "-1)",
	    0, NULL);
}

/* Runs a bash script with tools/lib.sh loaded and $1 = dir: its exit status. */
static int lib_sh(const char *script, const char *dir, int timeout_ms)
{
	char full[1024], log[600];
	snprintf(full, sizeof(full), ". \"$TASKSYNC_ROOT/tools/lib.sh\"; %s", script);
	snprintf(log, sizeof(log), "%s/pg_ctl.log", dir);
	const char *args[] = {"-c", full, "pgtest", dir, NULL};
	return proc_run("/bin/bash", args, NULL, log, timeout_ms);
}

void pgtest_cluster_start(const char *dir, char *url, size_t len)
{
	ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	int rc = lib_sh("pg_start \"$1/pg\" && echo \"$PGPORT\" >\"$1/port\"", dir, 60000);
	char path[600];
	snprintf(path, sizeof(path), "%s/port", dir);
	char *port = read_text_file(path);
	ck_assert_msg(rc == 0 && atoi(port) > 0, "PostgreSQL in %s did not start (%d)", dir, rc);
	snprintf(url, len, "postgresql://postgres@127.0.0.1:%d/postgres", atoi(port));
	free(port);
}

int pgtest_cluster_ctl(const char *dir, const char *action, const char *mode, int timeout_s)
{
	char script[512];
	snprintf(script, sizeof(script),
	         "run_as=(); [ \"$(id -u)\" -eq 0 ] && run_as=(runuser -u postgres --); "
	         "\"${run_as[@]}\" \"$PG_BIN/pg_ctl\" -D \"$1/pg/data\" -l \"$1/pg/postgres.log\" "
	         "-m %s -w -t %d %s",
	         mode, timeout_s, action);
	return lib_sh(script, dir, (timeout_s + 30) * 1000);
}

void pgtest_cluster_remove(const char *dir)
{
	(void)pgtest_cluster_ctl(dir, "stop", "immediate", 20);
	(void)lib_sh("rm -rf \"$1\"", dir, 20000);
}
