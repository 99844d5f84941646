#include "config.h"

#include <string.h>

static ba_config g_cfg;

/* The one table: name, type, destination, default, bounds, help. */
static const cfg_entry table[] = {
    {"PORT", CFG_INT, &g_cfg.port, "8000", 1, 65535, "HTTP listen port"},
    {"DATABASE_URL", CFG_STR, &g_cfg.database_url, NULL, 1, 4096,
     "PostgreSQL connection string (libpq conninfo or postgresql:// URL)"},
    {"KAFKA_BROKERS", CFG_STR, &g_cfg.kafka_brokers, NULL, 1, 1024, "Kafka bootstrap servers"},
    {"KAFKA_TOPIC", CFG_STR, &g_cfg.kafka_topic, "task-updates", 1, 249,
     "topic task events are published to (key: user id)"},
    {"JWT_SECRET", CFG_SECRET, &g_cfg.jwt_secret, NULL, 16, 4096,
     "HS256 secret shared with ws-gateway (at least 16 bytes)"},
    {"ALLOWED_ORIGINS", CFG_STR, &g_cfg.allowed_origins, "", 0, 4096,
     "CORS: allowed Origin values, comma-separated; * allows any; empty: same origin only"},
    {"LOG_LEVEL", CFG_LEVEL, &g_cfg.log_level, "info", 0, 0, "debug|info|warn|error|off"},
    {"DB_POOL_SIZE", CFG_INT, &g_cfg.db_pool_size, "4", 1, 64,
     "PostgreSQL connections of request handlers (beyond ~2 per database core they starve the "
     "relay)"},
    {"HTTP_THREADS", CFG_INT, &g_cfg.http_threads, "32", 1, 1024,
     "civetweb worker threads (each keep-alive connection holds one)"},
    {"MAX_BODY_BYTES", CFG_INT, &g_cfg.max_body_bytes, "65536", 64, 16777216,
     "largest request body; bigger ones get 413"},
    {"EVENT_RETENTION", CFG_INT, &g_cfg.event_retention, "604800", 60, 31536000,
     "seconds published events are kept for GET /api/v1/events"},
    {"IDEMPOTENCY_WINDOW", CFG_INT, &g_cfg.idempotency_window, "86400", 1, 31536000,
     "seconds an Idempotency-Key's first reply, and a deleted task's tombstone, are kept: "
     "a retry within it is answered once and a late create of a deleted id gets 410"},
    {"OUTBOX_SLOT", CFG_STR, &g_cfg.outbox_slot, "", 0, 63,
     "logical replication slot the relay streams the outbox from ([a-z0-9_]; empty: "
     "tasksync_<database name>); created when missing"},
    {"OUTBOX_TAKEOVER_MS", CFG_INT, &g_cfg.outbox_takeover_ms, "3000", 1000, 60000,
     "a silent leader (frozen, its host gone) loses the slot after this long "
     "(wal_sender_timeout; the leader sends a status update every third of it, at most "
     "every second); followers try every quarter of it"},
    {"DB_STATEMENT_TIMEOUT_MS", CFG_INT, &g_cfg.db_statement_timeout_ms, "5000", 100, 600000,
     "statement_timeout of every database session (idle in transaction: 4 times it)"},
    {"DB_LOCK_TIMEOUT_MS", CFG_INT, &g_cfg.db_lock_timeout_ms, "2000", 10, 600000,
     "lock_timeout of every database session"},
    {"KAFKA_LINGER_MS", CFG_INT, &g_cfg.kafka_linger_ms, "0", 0, 1000,
     "producer linger.ms: 0 sends at once (batches form while requests are in flight)"},
    {"KAFKA_MAX_IN_FLIGHT", CFG_INT, &g_cfg.kafka_max_in_flight, "1", 1, 5,
     "produce requests in flight per broker connection; 1: the next batch forms while one "
     "is acknowledged (more makes librdkafka's broker thread spin while it waits)"},
    {"DEV_LOGIN", CFG_BOOL, &g_cfg.dev_login, "false", 0, 0,
     "enable POST /api/v1/dev/login (tokens for any user name: development only)"},
    {"STATIC_DIR", CFG_STR, &g_cfg.static_dir, "", 0, 4096,
     "directory of the web client served at / (empty: not served)"},
    {"PUBLIC_GATEWAY_URL", CFG_STR, &g_cfg.public_gateway_url, "", 0, 1024,
     "ws-gateway URL that /config.json gives browsers"},
    {"SHUTDOWN_TIMEOUT_MS", CFG_INT, &g_cfg.shutdown_timeout_ms, "10000", 100, 600000,
     "after SIGTERM, how long the relay may keep publishing before exit"},
    /* The API's per-user quotas (tasks.c). */
    {"MAX_TASKS_PER_USER", CFG_INT, &g_cfg.max_tasks_per_user, "100000", 1, 100000000,
     "tasks a user may have; a create beyond it gets 409 task_quota_exceeded"},
    {"USER_RATE_LIMIT", CFG_INT, &g_cfg.user_rate_limit, "1000", 0, 1000000,
     "API requests per second per user, per process (token bucket; over it: 429 with "
     "Retry-After); 0: no limit"},
    {"USER_RATE_BURST", CFG_INT, &g_cfg.user_rate_burst, "2000", 1, 10000000,
     "requests a user may send at once above USER_RATE_LIMIT (the bucket's size)"},
};

/* `backend-api migrate` needs only the database (a job or init container need not
 * carry the broker and the secret). */
static const cfg_entry migrate_table[] = {
    {"DATABASE_URL", CFG_STR, &g_cfg.database_url, NULL, 1, 4096,
     "PostgreSQL connection string (libpq conninfo or postgresql:// URL)"},
    {"LOG_LEVEL", CFG_LEVEL, &g_cfg.log_level, "info", 0, 0, "debug|info|warn|error|off"},
};

int ba_config_load_migrate(ba_config *cfg, char *err, size_t errlen)
{
	memset(&g_cfg, 0, sizeof(g_cfg));
	if (config_load(migrate_table, ARRAY_LEN(migrate_table), err, errlen))
		return -1;
	*cfg = g_cfg;
	return 0;
}

int ba_config_load(ba_config *cfg, char *err, size_t errlen)
{
	if (config_load(table, ARRAY_LEN(table), err, errlen))
		return -1;
	*cfg = g_cfg;
	return 0;
}

void ba_config_free(ba_config *cfg)
{
	config_free(table, ARRAY_LEN(table));
	memset(cfg, 0, sizeof(*cfg));
}

void ba_config_help(FILE *out, const char *prog)
{
	config_print_help(out, prog,
	                  "backend-api: task CRUD on PostgreSQL, events to Kafka through a "
	                  "transactional outbox\n\n"
	                  "  backend-api          apply migrations, then serve\n"
	                  "  backend-api migrate  apply migrations and exit",
	                  table, ARRAY_LEN(table));
}

void ba_config_log(void)
{
	config_log(table, ARRAY_LEN(table));
}
