/* ratelimit: a token bucket per key (a user id), in memory, for one process.
 *
 * Each key's bucket holds up to burst tokens and refills at rate tokens a second; a
 * request takes one. A key whose bucket would be full again holds no memory: the
 * table forgets such keys when it grows (so its size follows the keys active within
 * about burst/rate seconds, not every key ever seen).
 *
 * @locks internal (one mutex per shard, held for a hash lookup only); safe from any
 * thread. */
#ifndef TASKSYNC_RATELIMIT_H
#define TASKSYNC_RATELIMIT_H

#include "common/util.h"

#include <stdint.h>

typedef struct ratelimit ratelimit;

/* rate > 0 tokens/s, burst >= 1. */
ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(ratelimit *rl);

/* Takes one token of key's bucket at now_us (a monotonic clock). Returns 0 when it
 * had one, otherwise the microseconds until it will (>= 1), taking nothing. */
int64_t ratelimit_take(ratelimit *rl, const char *key, int64_t now_us);

/* Keys the table holds now (tests, metrics). */
size_t ratelimit_size(ratelimit *rl);

#endif
