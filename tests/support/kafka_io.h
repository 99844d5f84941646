/* kafka_io: librdkafka from tests. A producer that waits for each delivery, and a
 * reader that assigns every partition of a topic from the beginning (no consumer
 * group) and collects what arrives. Each Check test runs in its own process, so
 * the producer is one per test process; never create either before a fork. */
#ifndef TASKSYNC_TEST_KAFKA_IO_H
#define TASKSYNC_TEST_KAFKA_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct kmsg {
	char *key;        /* NUL-terminated; NULL when the message had none */
	char *value;      /* NUL-terminated */
	size_t value_len; /* bytes in value */
	int32_t partition;
	int64_t offset;
} kmsg;

typedef struct kreader kreader;

/* A reader of topic on $KAFKA_BROKERS. Waits up to wait_ms for the topic to exist
 * (kafka_create_topic makes it), then assigns all its partitions
 * at the beginning. Returns NULL (after a failed assertion message) on error. */
kreader *kreader_open(const char *topic, int wait_ms);
/* Consumes until at least n messages were collected in total or timeout_ms
 * passed. Returns the number collected so far. */
size_t kreader_collect(kreader *r, size_t n, int timeout_ms);
/* The messages collected so far, in arrival order (per partition: offset order). */
const kmsg *kreader_msgs(const kreader *r, size_t *n);
void kreader_free(kreader *r);

/* Produces payload with key (NULL: none) to topic and waits for the delivery
 * (fails the test otherwise). */
void kafka_produce(const char *topic, const char *key, const char *payload, size_t len);

/* Creates topic with partitions partitions on $KAFKA_BROKERS (replication factor:
 * the node count, at most 3) and waits until its metadata shows every partition
 * with a leader. Fails the test on error. */
void kafka_create_topic(const char *topic, int partitions);
/* The node id that leads partition of topic (-1 when none does). */
int kafka_leader(const char *topic, int partition);

/* Sets one configuration of topic (AlterConfigs: the topic's other overrides are
 * reset to the broker's defaults). Asserts success. */
void kafka_set_topic_config(const char *topic, const char *name, const char *value);

#endif
