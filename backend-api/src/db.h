/* db: a small pool of PostgreSQL connections for request handlers.
 *
 * Connections are opened lazily (connect_timeout=2) and reopened when found broken,
 * so the service recovers by itself when the database returns. Each new connection
 * is handed to the on_connect hook (task_store prepares its statements there).
 * A PGconn is used by one thread at a time: the one that acquired it.
 *
 * @locks pool->mu only while picking or returning a slot; never during I/O. */
#ifndef BA_DB_H
#define BA_DB_H

#include "common/metrics.h"
#include "common/util.h"

#include <libpq-fe.h>

typedef struct db_pool db_pool;
typedef struct db_conn db_conn;

/* Called once for every new connection; 0 on success (else the connection is
 * dropped and the acquire fails). */
typedef int (*db_on_connect_fn)(PGconn *pg, void *arg);

/* Creates a pool of size connections to url (libpq conninfo or URL), each opened
 * with options (libpq's "options": db_session_options; NULL: none). Connects one
 * connection at once to report a bad URL early: returns NULL with err filled only
 * for a malformed URL; an unreachable database is not an error here. m may be NULL. */
db_pool *db_pool_new(const char *url, const char *options, int size, db_on_connect_fn on_connect,
                     void *arg, metrics *m, char *err, size_t errlen);
void db_pool_free(db_pool *p);

/* Takes a connected connection, waiting at most timeout_ms for a free slot.
 * Returns NULL when none became free in time or the database cannot be reached
 * (the caller answers 503). A recent connect failure makes it fail fast.
 * @locality any thread. */
MUST_CHECK db_conn *db_acquire(db_pool *p, int timeout_ms);
/* Returns c to the pool. A connection whose status is bad is closed (reopened on a
 * later acquire). Accepts NULL. */
void db_release(db_pool *p, db_conn *c);
PGconn *db_pg(db_conn *c);

/* Counts a database error (db_errors_total). */
void db_count_error(db_pool *p);

int db_pool_size(const db_pool *p);
int db_pool_in_use(db_pool *p);

/* Opens one connection to url outside any pool (relay, migrations), with
 * connect_timeout=2, TCP keepalives, application_name and options (NULL: none).
 * Returns NULL with err filled. */
PGconn *db_connect(const char *url, const char *app, const char *options, char *err, size_t errlen);
/* The libpq options string that gives a session statement_timeout and
 * lock_timeout (0: none) and an idle-in-transaction timeout of 4 statements'. */
void db_session_options(char *buf, size_t len, long statement_ms, long lock_ms);

#endif
