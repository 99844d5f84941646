/* outbox: the relay from the outbox table to Kafka, and the process's one producer.
 *
 * One thread with its own PostgreSQL connection (not from the pool). Only the
 * holder of a session advisory lock publishes, so two backend processes never
 * publish concurrently; the others retry every second and take over when the
 * leader's session ends. The leader gets each event of its own process at commit
 * (outbox_handoff); the other processes pass a wake-up on with NOTIFY outbox, upon
 * which it reads the rows committed since its last read. It produces each event
 * keyed by user id (idempotent producer, acks=all, message.timeout.ms=0: an outage
 * delays, never drops) and marks rows published when their delivery report
 * succeeds. Per-user order is seq order: see outbox.c. Rows are pruned
 * EVENT_RETENTION after publication, except each user's latest. */
#ifndef BA_OUTBOX_H
#define BA_OUTBOX_H

#include "common/metrics.h"
#include "common/util.h"

typedef struct outbox_relay outbox_relay;

typedef struct outbox_opts {
	const char *database_url;
	const char *brokers;
	const char *topic;
	long linger_ms;
	long poll_ms;     /* poll of the outbox (the safety net; see outbox.c) */
	long hole_ms;     /* how long an id passed while uncommitted is read again */
	long retention_s; /* EVENT_RETENTION */
} outbox_opts;

/* Creates the producer and starts the relay thread. NULL with err filled when the
 * producer cannot be created (an unreachable database or broker is not an error:
 * the relay keeps retrying). */
outbox_relay *outbox_start(const outbox_opts *o, metrics *m, char *err, size_t errlen);

/* Hands the relay an event just committed: outbox row id, the user (copied), its
 * seq and payload (taken: a malloc'd string the relay frees), so that it is
 * published without reading the outbox: at once when it is the user's next event
 * after the last one this relay produced, else through a read of the outbox (which
 * keeps per-user order). When this process is not the publishing leader, the relay
 * passes a wake-up on to the leader with NOTIFY outbox. Accepts NULL (then frees
 * payload). @locality any thread. @locks takes the relay's hand-off lock briefly. */
void outbox_handoff(outbox_relay *r, int64_t id, const char *user, int64_t seq, char *payload);

/* 1 when the producer reaches a broker (a metadata request answered within
 * timeout_ms). @locality any thread. */
int outbox_kafka_ready(outbox_relay *r, int timeout_ms);

/* Stops the relay: it keeps publishing what is unpublished until the backlog is
 * empty or deadline_ms (mono_ms) passes, flushes the producer within the deadline,
 * marks what was delivered, then destroys everything. Accepts NULL. */
void outbox_stop(outbox_relay *r, int64_t deadline_ms);

#endif
