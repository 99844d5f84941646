/* config: backend-api's whole configuration, one declarative table of environment
 * variables (see config.c), validated at start-up; `backend-api --help` prints it. */
#ifndef BA_CONFIG_H
#define BA_CONFIG_H

#include "common/config.h"

#include <stdio.h>

typedef struct ba_config {
	long port;                    /* PORT */
	char *database_url;           /* DATABASE_URL: libpq conninfo or URL */
	char *kafka_brokers;          /* KAFKA_BROKERS */
	char *kafka_topic;            /* KAFKA_TOPIC */
	char *jwt_secret;             /* JWT_SECRET (HS256, >= 16 bytes) */
	char *allowed_origins;        /* ALLOWED_ORIGINS: "" same-origin only, "*" or a list */
	int log_level;                /* LOG_LEVEL */
	long db_pool_size;            /* DB_POOL_SIZE */
	long http_threads;            /* HTTP_THREADS: civetweb workers (one per keep-alive conn) */
	long max_body_bytes;          /* MAX_BODY_BYTES: larger bodies -> 413 */
	long event_retention;         /* EVENT_RETENTION seconds published events are kept */
	long idempotency_window;      /* IDEMPOTENCY_WINDOW seconds keys and tombstones are kept */
	char *outbox_slot;            /* OUTBOX_SLOT: "" derives it from the database */
	long outbox_takeover_ms;      /* OUTBOX_TAKEOVER_MS */
	long db_statement_timeout_ms; /* DB_STATEMENT_TIMEOUT_MS */
	long db_lock_timeout_ms;      /* DB_LOCK_TIMEOUT_MS */
	long kafka_linger_ms;         /* KAFKA_LINGER_MS */
	long kafka_max_in_flight;     /* KAFKA_MAX_IN_FLIGHT */
	int dev_login;                /* DEV_LOGIN: POST /api/v1/dev/login exists */
	char *static_dir;             /* STATIC_DIR: web client served at / when set */
	char *public_gateway_url;     /* PUBLIC_GATEWAY_URL: what /config.json tells browsers */
	long shutdown_timeout_ms;     /* SHUTDOWN_TIMEOUT_MS */
	/* The API's per-user quotas (tasks.c). */
	long max_tasks_per_user; /* MAX_TASKS_PER_USER: a create beyond it -> 409 */
	long user_rate_limit;    /* USER_RATE_LIMIT: requests/s per user and process; 0 off */
	long user_rate_burst;    /* USER_RATE_BURST: the token bucket's size */
} ba_config;

/* Loads the configuration from the environment. 0, or -1 with every problem in err. */
MUST_CHECK int ba_config_load(ba_config *cfg, char *err, size_t errlen);
/* The same for `backend-api migrate`: DATABASE_URL and LOG_LEVEL only. */
MUST_CHECK int ba_config_load_migrate(ba_config *cfg, char *err, size_t errlen);
/* Frees what either load stored. */
void ba_config_free(ba_config *cfg);
void ba_config_help(FILE *out, const char *prog);
void ba_config_log(void);

#endif
