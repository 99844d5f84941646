/* outbox: the relay from the outbox to Kafka, and the process's one producer.
 *
 * One thread. It streams the outbox's inserts from PostgreSQL's WAL through a
 * logical replication slot (wal.h): committed transactions, in commit order, which
 * is each user's seq order (a user's writes serialise on the user's counter row).
 * Only one connection can stream a slot, so of several backend-api processes on
 * one database exactly one publishes; the others try every OUTBOX_TAKEOVER_MS / 4
 * and take over when the leader's stream ends (its connection closed, or silent
 * for OUTBOX_TAKEOVER_MS). Each event is produced keyed by user id (idempotent
 * producer, acks=all, gapless, message.timeout.ms=0: an outage delays, never
 * drops); the slot's confirmed LSN is moved past a transaction once Kafka has
 * acknowledged all its events, so what is confirmed is published and what is not
 * is streamed again (at least once: duplicates keep their event_id and seq).
 *
 * An event Kafka refuses for itself (too large, invalid) is dead-lettered: a row in
 * outbox_dead_letter, outbox_dead_letters_total, a log line; the stream goes on
 * and clients close the seq gap from /api/v1/events. Any other failure (a fatal
 * producer error, a topic that does not exist or may not be written, the database
 * connection) resets the relay: what is in flight gets a second to be acknowledged,
 * the rest of the producer's queue is purged (the producer made anew after a fatal
 * error), and the stream is reopened past what Kafka acknowledged (the slot's
 * confirmed LSN when another process or another timeline comes between), with
 * exponential backoff (0.1 s doubling to 30 s) while no transaction gets through.
 * So a reset repeats only what was purged in flight; a new leader repeats what its
 * predecessor had acknowledged but not yet confirmed (at most about 100 ms).
 * Rows are pruned EVENT_RETENTION after commit, except each user's latest. */
#ifndef BA_OUTBOX_H
#define BA_OUTBOX_H

#include "common/metrics.h"
#include "common/util.h"

#define OUTBOX_PUBLICATION "tasksync_outbox" /* created by migrations/0003 */

typedef struct outbox_relay outbox_relay;

typedef struct outbox_opts {
	const char *database_url;
	const char *session_options; /* libpq options of the relay's SQL connection */
	const char *brokers;
	const char *topic;
	const char *slot; /* "" : tasksync_<database name> */
	long linger_ms;
	long max_in_flight; /* produce requests per broker connection (1-5) */
	long takeover_ms;   /* OUTBOX_TAKEOVER_MS: the stream's wal_sender_timeout */
	long retention_s;   /* EVENT_RETENTION */
	long idem_window_s; /* IDEMPOTENCY_WINDOW: keys and tombstones pruned beside events */
} outbox_opts;

/* Checks the database can be streamed (wal_level=logical, the publication, the
 * replication privilege), creates the slot when it does not exist, creates the
 * producer and starts the relay thread. NULL with err filled, saying what the
 * database lacks. An unreachable broker is not an error: the relay keeps trying. */
outbox_relay *outbox_start(const outbox_opts *o, metrics *m, char *err, size_t errlen);

/* 1 when the producer reaches a broker (a metadata request answered within
 * timeout_ms). @locality any thread. */
int outbox_kafka_ready(outbox_relay *r, int timeout_ms);

/* 1 while the relay thread makes progress (its loop turned within the last 30 s;
 * liveness). @locality any thread. */
int outbox_alive(outbox_relay *r);

/* Stops the relay: it stops reading the stream, lets the producer deliver what is
 * in flight until deadline_ms (mono_ms), confirms what was delivered, then
 * destroys everything. What was not delivered is streamed to the next leader.
 * Accepts NULL. */
void outbox_stop(outbox_relay *r, int64_t deadline_ms);

#endif
