#include "tickets.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 256

typedef struct slot {
	char jti[UUID_STR_LEN]; /* "" = empty */
	int64_t exp_s;
} slot;

/* Open addressing with linear probing. Nothing is deleted in place: when the
 * slots in use reach half the table, it is rebuilt with the unexpired ones only. */
struct ticket_set {
	pthread_mutex_t mu;
	slot *slots;
	size_t cap; /* a power of two */
	size_t used;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static slot *find(slot *slots, size_t cap, const char *jti)
{
	size_t i = (size_t)hash(jti) & (cap - 1);
	while (slots[i].jti[0] && strcmp(slots[i].jti, jti) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void rebuild(ticket_set *t, int64_t now_s)
{
	size_t live = 0;
	for (size_t i = 0; i < t->cap; i++)
		live += t->slots[i].jti[0] && t->slots[i].exp_s > now_s;
	size_t cap = MIN_SLOTS;
	while (cap < live * 4)
		cap *= 2;
	slot *ns = xcalloc(cap, sizeof(slot));
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].jti[0] && t->slots[i].exp_s > now_s)
			*find(ns, cap, t->slots[i].jti) = t->slots[i];
	free(t->slots);
	t->slots = ns;
	t->cap = cap;
	t->used = live;
}

ticket_set *ticket_set_new(void)
{
	ticket_set *t = xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->cap = MIN_SLOTS;
	t->slots = xcalloc(t->cap, sizeof(slot));
	return t;
}

void ticket_set_free(ticket_set *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->slots);
	free(t);
}

int ticket_set_claim(ticket_set *t, const char *jti, int64_t exp_s, int64_t now_s)
{
	if (strlen(jti) >= UUID_STR_LEN)
		return 0;
	pthread_mutex_lock(&t->mu);
	if ((t->used + 1) * 2 > t->cap)
		rebuild(t, now_s);
	slot *s = find(t->slots, t->cap, jti);
	int fresh = !s->jti[0];
	if (fresh) {
		memcpy(s->jti, jti, strlen(jti) + 1);
		s->exp_s = exp_s;
		t->used++;
	}
	pthread_mutex_unlock(&t->mu);
	return fresh;
}

size_t ticket_set_size(ticket_set *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->used;
	pthread_mutex_unlock(&t->mu);
	return n;
}
