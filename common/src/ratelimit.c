#include "common/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS     16
#define SWEEP_MIN  1024 /* a shard sweeps idle keys once it holds this many */
#define INIT_SLOTS 64

typedef struct bucket {
	struct bucket *next;
	double tokens;
	int64_t at_us; /* when tokens was computed */
	char key[];
} bucket;

typedef struct shard {
	pthread_mutex_t mu;
	bucket **slots;
	size_t nslots, count, sweep_at;
} shard;

struct ratelimit {
	double rate_per_us, burst;
	shard shards[SHARDS];
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

ratelimit *ratelimit_new(double rate, double burst)
{
	ratelimit *rl = xcalloc(1, sizeof(*rl));
	rl->rate_per_us = rate / 1e6;
	rl->burst = burst < 1 ? 1 : burst;
	for (int i = 0; i < SHARDS; i++) {
		shard *s = &rl->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->nslots = INIT_SLOTS;
		s->slots = xcalloc(s->nslots, sizeof(bucket *));
		s->sweep_at = SWEEP_MIN;
	}
	return rl;
}

void ratelimit_free(ratelimit *rl)
{
	if (!rl)
		return;
	for (int i = 0; i < SHARDS; i++) {
		shard *s = &rl->shards[i];
		for (size_t j = 0; j < s->nslots; j++)
			for (bucket *b = s->slots[j], *n; b; b = n) {
				n = b->next;
				free(b);
			}
		free(s->slots);
		pthread_mutex_destroy(&s->mu);
	}
	free(rl);
}

static double refilled(const ratelimit *rl, const bucket *b, int64_t now_us)
{
	double t = b->tokens + (double)(now_us - b->at_us) * rl->rate_per_us;
	return t > rl->burst ? rl->burst : t;
}

/* Drops the keys whose buckets are full again; grows the slot array when it stays
 * crowded. @locks s->mu held. */
static void sweep(const ratelimit *rl, shard *s, int64_t now_us)
{
	for (size_t j = 0; j < s->nslots; j++) {
		bucket **pp = &s->slots[j];
		while (*pp) {
			bucket *b = *pp;
			if (refilled(rl, b, now_us) >= rl->burst) {
				*pp = b->next;
				free(b);
				s->count--;
			} else {
				pp = &b->next;
			}
		}
	}
	if (s->count * 2 > s->nslots) {
		size_t n = s->nslots * 4;
		while (n < s->count * 2)
			n *= 2;
		bucket **slots = xcalloc(n, sizeof(bucket *));
		for (size_t j = 0; j < s->nslots; j++)
			for (bucket *b = s->slots[j], *next; b; b = next) {
				next = b->next;
				size_t k = hash(b->key) / SHARDS % n;
				b->next = slots[k];
				slots[k] = b;
			}
		free(s->slots);
		s->slots = slots;
		s->nslots = n;
	}
	s->sweep_at = s->count * 2 > SWEEP_MIN ? s->count * 2 : SWEEP_MIN;
}

int64_t ratelimit_take(ratelimit *rl, const char *key, int64_t now_us)
{
	uint64_t h = hash(key);
	shard *s = &rl->shards[h % SHARDS];
	int64_t wait = 0;
	pthread_mutex_lock(&s->mu);
	size_t k = h / SHARDS % s->nslots;
	bucket *b = s->slots[k];
	while (b && strcmp(b->key, key) != 0)
		b = b->next;
	if (!b) {
		if (s->count + 1 >= s->sweep_at) {
			sweep(rl, s, now_us);
			k = h / SHARDS % s->nslots;
		}
		size_t len = strlen(key);
		b = xmalloc(sizeof(*b) + len + 1);
		memcpy(b->key, key, len + 1);
		b->tokens = rl->burst;
		b->at_us = now_us;
		b->next = s->slots[k];
		s->slots[k] = b;
		s->count++;
	}
	double t = refilled(rl, b, now_us);
	b->at_us = now_us;
	if (t >= 1) {
		b->tokens = t - 1;
	} else {
		b->tokens = t;
		wait = (int64_t)ceil((1 - t) / rl->rate_per_us);
		if (wait < 1)
			wait = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return wait;
}

size_t ratelimit_size(ratelimit *rl)
{
	size_t n = 0;
	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&rl->shards[i].mu);
		n += rl->shards[i].count;
		pthread_mutex_unlock(&rl->shards[i].mu);
	}
	return n;
}
