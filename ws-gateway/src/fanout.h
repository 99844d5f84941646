/* fanout: one Kafka message -> validated event -> one frame -> every queue of its
 * user. The event is parsed once and the client message built once. */
#ifndef GW_FANOUT_H
#define GW_FANOUT_H

#include "registry.h"
#include "stats.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fanout fanout;

fanout *fanout_new(registry *reg, const gw_stats *st, size_t max_event_bytes);
void fanout_free(fanout *f);

/* Calls left(arg, user, list) after a list.unshared or list.deleted event reached
 * user's sockets here: user is no longer a member of list (the backend decided it,
 * in the write's transaction; the gateway keeps no membership). Set before the
 * first fanout_message. */
void fanout_on_leave(fanout *f, void (*left)(void *arg, const char *user, const char *list),
                     void *arg);

/* Handles one message (key may be NULL). Returns the number of sockets it was
 * queued to, or -1 when the message was rejected (logged and counted with topic,
 * partition, offset and the reason). A keyed message for a user with no socket on
 * this replica is skipped before its value is parsed (counted, returns 0): every
 * replica reads every partition, so most messages are someone else's. The writers
 * are woken by fanout_flush(), not here. @locality the consumer thread. */
int fanout_message(fanout *f, const void *key, size_t keylen, const void *payload, size_t len,
                   const char *topic, int32_t partition, int64_t offset);
/* Hands the sockets given frames since the last call to the writer threads (one
 * wake-up for the batch) and adds the batch's messages to kafka_events_consumed_total
 * and kafka_events_skipped_total. Call after each batch of messages. @locality the
 * consumer thread. */
void fanout_flush(fanout *f);

#endif
