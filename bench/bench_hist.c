/* bench_hist: see bench_hist.h. */
#include "bench_hist.h"

#include "common/util.h"

#include <stdlib.h>

#define FINE_US   100000 /* 1 us buckets below 100 ms */
#define COARSE_MS 60000  /* then 1 ms buckets up to 60 s */
#define NBUCKETS  (FINE_US + COARSE_MS)

struct bhist {
	uint64_t n;
	int64_t max;
	uint64_t b[NBUCKETS];
};

bhist *bhist_new(void)
{
	return xcalloc(1, sizeof(bhist));
}

void bhist_free(bhist *h)
{
	free(h);
}

static size_t bucket_of(int64_t us)
{
	if (us < FINE_US)
		return (size_t)us;
	int64_t ms = us / 1000;
	if (ms >= COARSE_MS + FINE_US / 1000)
		return NBUCKETS - 1;
	return (size_t)(FINE_US + ms - FINE_US / 1000);
}

static int64_t value_of(size_t b)
{
	if (b < FINE_US)
		return (int64_t)b;
	return ((int64_t)(b - FINE_US) + FINE_US / 1000) * 1000;
}

void bhist_add(bhist *h, int64_t us)
{
	if (us < 0)
		us = 0;
	h->b[bucket_of(us)]++;
	h->n++;
	if (us > h->max)
		h->max = us;
}

void bhist_merge(bhist *dst, const bhist *src)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->n += src->n;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t bhist_count(const bhist *h)
{
	return h->n;
}

int64_t bhist_max(const bhist *h)
{
	return h->max;
}

int64_t bhist_pct(const bhist *h, double p)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)(p * (double)h->n);
	if (want < 1)
		want = 1;
	if (want > h->n)
		want = h->n;
	uint64_t seen = 0;
	for (size_t i = 0; i < NBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return value_of(i) < h->max ? value_of(i) : h->max;
	}
	return h->max;
}

json_t *bhist_json(const bhist *h)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "n", (json_int_t)h->n, "p50_us",
	                 (json_int_t)bhist_pct(h, 0.50), "p90_us", (json_int_t)bhist_pct(h, 0.90),
	                 "p99_us", (json_int_t)bhist_pct(h, 0.99), "p999_us",
	                 (json_int_t)bhist_pct(h, 0.999), "max_us", (json_int_t)h->max);
}
