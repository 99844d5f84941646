/* stats: the gateway's Prometheus series, created once at start-up and shared
 * read-only (each metric is updated lock-free). */
#ifndef GW_STATS_H
#define GW_STATS_H

#include "common/metrics.h"

typedef enum {
	REFUSE_SHUTTING_DOWN = 0,
	REFUSE_TOTAL_CAP,
	REFUSE_BAD_ORIGIN,
	REFUSE_UNAUTHORIZED,
	REFUSE_WRONG_USER,
	REFUSE_BAD_REQUEST,
	REFUSE_USER_CAP,
	REFUSE_TICKET_REUSED,
	REFUSE__COUNT
} refuse_reason;

typedef enum {
	CLOSE_SLOW_CLIENT = 0, /* send queue past its bound: 1013 */
	CLOSE_WRITE_FAILED,    /* short or failed write: socket cut */
	CLOSE_HEARTBEAT,       /* silent for two heartbeat intervals */
	CLOSE_RATE_LIMITED,    /* 1008 */
	CLOSE_TOO_LARGE,       /* 1009 */
	CLOSE_SHUTDOWN,        /* 1001 */
	CLOSE_USER_CAP,        /* 1008 after the upgrade */
	CLOSE_PROTOCOL,        /* 1002: a control frame over 125 bytes, unmasked, ... */
	CLOSE_TOKEN_EXPIRED,   /* 4001: the token's exp was reached */
	CLOSE_SEND_BUDGET,     /* 1013: SEND_QUEUE_TOTAL_BYTES reached (largest queues first) */
	CLOSE_SLOW_DRAIN,      /* 1013: backlogged and below SEND_MIN_DRAIN_RATE */
	CLOSE__COUNT
} close_reason;

typedef enum {
	REJECT_TOO_LARGE = 0,
	REJECT_NOT_JSON,
	REJECT_BAD_TYPE,
	REJECT_BAD_USER,
	REJECT_INVALID,
	REJECT_KEY_MISMATCH,
	REJECT__COUNT
} reject_reason;

typedef struct gw_stats {
	metrics *reg;
	metric *connects;                /* WebSockets opened */
	metric *refusals[REFUSE__COUNT]; /* connection attempts refused, by reason */
	metric *closes[CLOSE__COUNT];    /* server-initiated closes, by reason */
	metric *frames_delivered;        /* frames fully written to sockets */
	metric *event_frames;            /* event frames queued (one per recipient) */
	metric *events_consumed;         /* Kafka messages read */
	metric *events_delivered;        /* valid events (with or without recipients) */
	metric *events_skipped;          /* events for users with no socket here, by key */
	metric *events_rejected[REJECT__COUNT];
	metric *client_messages;  /* frames received from clients */
	metric *client_errors;    /* error replies sent */
	metric *client_bytes;     /* bytes read from client sockets */
	metric *latency;          /* event timestamp -> socket write, seconds */
	metric *gw_latency;       /* consumed -> socket write (this process's share) */
	metric *kafka_age;        /* Kafka record timestamp -> consumed, events delivered here */
	metric *offset_resets[2]; /* offsets out of range: [0] retention, [1] truncated */
	metric *reject_logs_suppressed; /* "event rejected" lines not written (rate limit) */
	metric *status_refusals;        /* /status asked without the right token */
	metric *accept_emfile;          /* accepts that found no file descriptor (shed at once) */
} gw_stats;

/* Creates every series in m. */
void gw_stats_init(gw_stats *s, metrics *m);
const char *close_reason_name(close_reason r);

#endif
