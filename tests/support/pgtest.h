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

#endif
