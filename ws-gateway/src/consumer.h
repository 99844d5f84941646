/* consumer: reads KAFKA_TOPIC and hands every message to fanout, in order.
 *
 * Every replica must see every event, so there is no consumer group: all
 * partitions are assigned manually, each starting at its high watermark (the end
 * of the log) as queried at start-up; no offsets are committed. Clients fill gaps
 * through backend-api's /api/v1/events. Metadata is refreshed every
 * KAFKA_METADATA_REFRESH_MS and partitions added later are read from their start. */
#ifndef GW_CONSUMER_H
#define GW_CONSUMER_H

#include "common/util.h"
#include "fanout.h"

typedef struct consumer consumer;

typedef struct consumer_opts {
	const char *brokers;
	const char *topic;
	long fetch_wait_ms;
	long refresh_ms;
	size_t max_event_bytes;
} consumer_opts;

/* Creates the client and starts the consumer thread. NULL with a reason in err. */
consumer *consumer_start(const consumer_opts *o, fanout *f, char *err, size_t errlen);
/* Stops the thread, closes and destroys the client. NULL is fine. */
void consumer_stop(consumer *c);
/* 1 once every partition is assigned and positioned at the end of the log. */
int consumer_ready(consumer *c);
/* Messages between the consumer's position and the high watermarks (cached). */
double consumer_lag(void *c);

#endif
