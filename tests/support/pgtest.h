/* pgtest: throw-away databases in the harness's PostgreSQL cluster (through
 * $PG_ADMIN_URL) and one-shot parameterised SQL for assertions. Every call opens
 * and closes its own connection, so it is safe around fork. */
#ifndef TASKSYNC_TEST_PGTEST_H
#define TASKSYNC_TEST_PGTEST_H

#include <libpq-fe.h>
#include <stddef.h>

/* Creates a database with a name unique to this run and writes its URL into url. */
void pgtest_createdb(char *url, size_t len);
/* Runs sql with nparams text parameters on the database at url; fails the test on
 * an error. Caller PQclears the result. */
PGresult *pgtest_exec(const char *url, const char *sql, int nparams, const char *const *params);
/* pgtest_exec on a connection the caller holds (a transaction of its own). */
PGresult *pgtest_exec_on(PGconn *c, const char *sql, int nparams, const char *const *params);
/* The first column of the first row as a new string (caller frees), NULL when no
 * row or SQL NULL. */
char *pgtest_value(const char *url, const char *sql, int nparams, const char *const *params);
/* pgtest_value as a long (-1 when no row or NULL). */
long pgtest_long(const char *url, const char *sql, int nparams, const char *const *params);
/* The database's current WAL position and its replication slot's confirmed
 * position (-1: no slot), as byte offsets: what the relay has published is what
 * lies before the confirmed position. */
long pgtest_wal_lsn(const char *url);
long pgtest_slot_confirmed(const char *url);

/* A cluster of the test's own in dir (tools/lib.sh pg_start: a test that stops or
 * restarts PostgreSQL must not take the harness's down): writes the URL of its
 * postgres database into url. */
void pgtest_cluster_start(const char *dir, char *url, size_t len);
/* pg_ctl action ("stop", "restart") -m mode, waiting at most timeout_s: pg_ctl's
 * exit status (0: done within the time); its output goes to dir/pg_ctl.log. */
int pgtest_cluster_ctl(const char *dir, const char *action, const char *mode, int timeout_s);
/* Stops the cluster at once (immediate) and removes dir. */
void pgtest_cluster_remove(const char *dir);

#endif
