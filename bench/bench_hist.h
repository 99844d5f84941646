/* bench_hist: a latency histogram for the load tools. Microsecond resolution up to
 * 100 ms, millisecond resolution up to 60 s (longer values land in the last bucket),
 * so percentiles stay exact where the targets are and memory stays fixed (~1.3 MB).
 * Not thread-safe: one histogram per thread, or bhist_merge at the end. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <jansson.h>
#include <stdint.h>

typedef struct bhist bhist;

bhist *bhist_new(void);
void bhist_free(bhist *h);
/* Records one value in microseconds; negative values (clock skew) count as 0. */
void bhist_add(bhist *h, int64_t us);
/* Adds every sample of src to dst. */
void bhist_merge(bhist *dst, const bhist *src);
uint64_t bhist_count(const bhist *h);
/* The value (us) at or below which fraction p (0..1) of the samples lie; 0 when empty. */
int64_t bhist_pct(const bhist *h, double p);
int64_t bhist_max(const bhist *h);
/* {"n":..,"p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,"max_us":..} (new reference). */
json_t *bhist_json(const bhist *h);

#endif
