/* config: ws-gateway's whole configuration, one declarative table of environment
 * variables (see config.c), validated at start-up; `ws-gateway --help` prints it. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "common/config.h"

#include <stdio.h>

typedef struct gw_config {
	long port;                  /* PORT */
	char *kafka_brokers;        /* KAFKA_BROKERS */
	char *kafka_topic;          /* KAFKA_TOPIC */
	char *jwt_secret;           /* JWT_SECRET (HS256, >= 16 bytes) */
	char *allowed_origins;      /* ALLOWED_ORIGINS ("*" or exact origins, comma-separated) */
	int log_level;              /* LOG_LEVEL */
	long max_connections;       /* MAX_CONNECTIONS: WebSockets in total (checked at start) */
	long max_conn_per_user;     /* MAX_CONNECTIONS_PER_USER */
	long max_message_bytes;     /* MAX_MESSAGE_BYTES: client frames; bigger -> 1009 */
	long client_rate_limit;     /* CLIENT_RATE_LIMIT: client frames per second (0: off) */
	long client_rate_burst;     /* CLIENT_RATE_BURST: bucket size; exceeded -> 1008 */
	long heartbeat_interval;    /* HEARTBEAT_INTERVAL seconds; silent 2x -> closed */
	long send_queue_max_frames; /* SEND_QUEUE_MAX_FRAMES: past it -> 1013 */
	long send_queue_max_bytes;  /* SEND_QUEUE_MAX_BYTES: past it -> 1013 */
	long send_queue_total;      /* SEND_QUEUE_TOTAL_BYTES: all queues; largest shed */
	long send_min_drain_rate;   /* SEND_MIN_DRAIN_RATE bytes/s while backlogged (0: off) */
	long send_drain_window_ms;  /* SEND_DRAIN_WINDOW_MS: window of that check */
	long health_port;           /* HEALTH_PORT: /health /ready /metrics listener (0: none) */
	long max_event_bytes;       /* MAX_EVENT_BYTES: bigger Kafka messages are rejected */
	long kafka_fetch_wait_ms;   /* KAFKA_FETCH_WAIT_MS */
	long kafka_fetch_min_bytes; /* KAFKA_FETCH_MIN_BYTES */
	long kafka_refresh_ms;      /* KAFKA_METADATA_REFRESH_MS: new partitions picked up */
	long kafka_clock_skew_ms;   /* KAFKA_CLOCK_SKEW_MS: first assignment reads back */
	long writer_threads;        /* WRITER_THREADS */
	long write_inline_max;      /* WRITE_INLINE_MAX */
	long write_timeout_ms;      /* WRITE_TIMEOUT_MS: socket full that long -> 1013 */
	long close_grace_ms;        /* CLOSE_GRACE_MS: close frame sent -> socket cut */
	long ws_sndbuf;             /* WS_SNDBUF: SO_SNDBUF of each socket (0: kernel's) */
	long shutdown_timeout;      /* SHUTDOWN_TIMEOUT seconds */
	long status_max_users;      /* STATUS_MAX_USERS: size cap of /status's per-user map */
	char *status_token;         /* STATUS_TOKEN: bearer token of /status ("": off) */
	int stack_trim;             /* STACK_TRIM: give back the handshake's stack pages */
	int allow_query_token;      /* ALLOW_QUERY_TOKEN: ?token= accepted (else tickets only) */
	int presence_enabled;       /* PRESENCE_ENABLED: list presence (issue 13) on */
	char *presence_topic;       /* PRESENCE_TOPIC: the compacted presence topic */
	long presence_ttl_ms;       /* PRESENCE_TTL_MS: a record's life without heartbeat */
	long presence_heartbeat_ms; /* PRESENCE_HEARTBEAT_MS: records re-produced this often */
	long presence_max_lists;    /* PRESENCE_MAX_LISTS: subscriptions per socket */
	long presence_max_entries;  /* PRESENCE_MAX_ENTRIES: subscriptions in the merged view */
	char *gateway_id;           /* GATEWAY_ID ("": hostname-pid-random, set at load) */
} gw_config;

/* Loads the configuration from the environment. 0, or -1 with every problem in err. */
MUST_CHECK int gw_config_load(gw_config *cfg, char *err, size_t errlen);
void gw_config_free(gw_config *cfg);
void gw_config_help(FILE *out, const char *prog);
void gw_config_log(void);

#endif
