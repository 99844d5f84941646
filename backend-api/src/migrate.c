#include "migrate.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generated from the migrations directory by backend-api/gen-migrations.sh. */
extern const char *const ba_migration_names[];
extern const char *const ba_migration_sql[];
extern const size_t ba_migration_count;

/* Advisory lock key of the migrator ("tasksync" migrations). */
#define MIGRATE_LOCK_KEY 0x7461736b01L

size_t migrate_count(void)
{
	return ba_migration_count;
}

/* Runs sql (no parameters, possibly several statements); 0 or -1 with err. */
static int exec(PGconn *pg, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/* The version number of a name "0001_init": its leading digits. */
static long name_version(const char *name)
{
	return strtol(name, NULL, 10);
}

int migrate_apply(PGconn *pg, char *err, size_t errlen)
{
	int applied = 0;
	char lock_sql[96];
	snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_lock(%ld)", MIGRATE_LOCK_KEY);
	if (exec(pg, lock_sql, err, errlen))
		return -1;
	if (exec(pg,
	         "SET client_min_messages = warning;"
	         "CREATE TABLE IF NOT EXISTS schema_migrations ("
	         " version integer PRIMARY KEY,"
	         " name text NOT NULL,"
	         " applied_at timestamptz NOT NULL DEFAULT now())",
	         err, errlen))
		goto fail;
	for (size_t i = 0; i < ba_migration_count; i++) {
		const char *name = ba_migration_names[i];
		char ver[24];
		snprintf(ver, sizeof(ver), "%ld", name_version(name));
		const char *p1[] = {ver};
		PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1",
		                           1, NULL, p1, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "%s", PQresultErrorMessage(r));
			PQclear(r);
			goto fail;
		}
		int done = PQntuples(r) > 0;
		PQclear(r);
		if (done)
			continue;
		if (exec(pg, "BEGIN", err, errlen))
			goto fail;
		if (exec(pg, ba_migration_sql[i], err, errlen)) {
			char why[512];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "migration %s failed: %s", name, why);
			PQclear(PQexec(pg, "ROLLBACK"));
			goto fail;
		}
		const char *p2[] = {ver, name};
		r = PQexecParams(pg,
		                 "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
		                 NULL, p2, NULL, NULL, 0);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		if (!ok || exec(pg, "COMMIT", err, errlen)) {
			PQclear(PQexec(pg, "ROLLBACK"));
			goto fail;
		}
		log_info("migration applied", "{s:s}", "name", name);
		applied++;
	}
	snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_unlock(%ld)", MIGRATE_LOCK_KEY);
	PQclear(PQexec(pg, lock_sql));
	return applied;
fail:
	snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_unlock(%ld)", MIGRATE_LOCK_KEY);
	PQclear(PQexec(pg, lock_sql));
	return -1;
}
