/* migrate: applies the migrations embedded at build time (migrations/NNNN_name.sql,
 * in name order), each exactly once and in its own transaction, recorded in
 * schema_migrations(version, name, applied_at). A session advisory lock makes two
 * processes starting at once safe: the second waits, then finds nothing to do. */
#ifndef BA_MIGRATE_H
#define BA_MIGRATE_H

#include "common/util.h"

#include <libpq-fe.h>

/* Applies every pending migration on pg. Returns the number applied (>= 0), or -1
 * with the reason in err. @locality caller's thread; pg must be idle. */
MUST_CHECK int migrate_apply(PGconn *pg, char *err, size_t errlen);

/* How many migrations the binary carries. */
size_t migrate_count(void);

#endif
