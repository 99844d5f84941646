/* consumer: reads KAFKA_TOPIC and hands every message to fanout, in order.
 *
 * Every replica must see every event, so there is no consumer group: all
 * partitions are assigned manually and no offsets are committed. Clients fill gaps
 * through backend-api's /api/v1/events.
 *
 * Where reading starts. The first assignment starts each partition at the first
 * event whose timestamp is at or after T - KAFKA_CLOCK_SKEW_MS, where T is the
 * earliest moment a socket was accepted while the consumer was not yet reading
 * (consumer_note_waiting), or the moment of the assignment when none was: an event
 * produced after a socket was opened is never skipped, however long the broker took
 * to come up, and the watermark query cannot race a producer (the offset by time is
 * capped by the high watermark queried before it). Partitions added to the topic
 * later are read from their start as soon as the metadata shows them (every
 * KAFKA_METADATA_REFRESH_MS). An offset out of range is a logged decision (see
 * consumer.c: resume at the log start when retention removed what was not read
 * yet, at the last event's time when the log was truncated), counted in
 * kafka_offset_resets_total.
 *
 * Readiness. consumer_ready() is 1 while every partition is assigned AND the
 * consumer is fetching: librdkafka's statistics (every 500 ms) show the broker
 * each partition is fetched from UP and answering (its response count moved, or a
 * message arrived, within the stall window), and no "all brokers down" error came
 * since. A crashed or frozen broker turns it to 0 within the stall window, and it
 * turns back by itself once fetch responses flow again. */
#ifndef GW_CONSUMER_H
#define GW_CONSUMER_H

#include "common/util.h"
#include "fanout.h"
#include "stats.h"

typedef struct consumer consumer;

typedef struct consumer_opts {
	const char *brokers;
	const char *topic;
	long fetch_wait_ms;
	long fetch_min_bytes; /* fetch.min.bytes (0: 1) */
	long refresh_ms;
	long clock_skew_ms; /* KAFKA_CLOCK_SKEW_MS: the first assignment reads back this far */
	size_t max_event_bytes;
	const gw_stats *st; /* offset resets are counted here */
} consumer_opts;

/* Creates the client and starts the consumer thread. NULL with a reason in err. */
consumer *consumer_start(const consumer_opts *o, fanout *f, char *err, size_t errlen);
/* Stops the thread, closes and destroys the client. NULL is fine. */
void consumer_stop(consumer *c);
/* 1 while every partition is assigned and the consumer is fetching (see above).
 * Any thread. */
int consumer_ready(consumer *c);
/* A socket was accepted at wall_us while the consumer was not ready: the first
 * assignment reads from then on (see above). Any thread. */
void consumer_note_waiting(consumer *c, int64_t wall_us);
/* Messages between the consumer's position and the high watermarks (cached). */
double consumer_lag(void *c);
/* consumer_ready() as a gauge value (metrics callback). */
double consumer_fetching(void *c);

#endif
