/* metrics: a small Prometheus registry. Series are created once (by name and
 * label text) and updated lock-free; metrics_render() writes the text format.
 *
 *   metric *req = metrics_counter(reg, "http_requests_total", "Requests.",
 *                                 "route=\"/api/v1/tasks\",status=\"201\"");
 *   metric_inc(req);
 *
 * @locks the registry mutex only while creating a series or rendering. */
#ifndef TASKSYNC_METRICS_H
#define TASKSYNC_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;
typedef struct metric metric;

metrics *metrics_new(void);
void metrics_free(metrics *m);

/* Returns the series of that name and labels (NULL or "" for none), creating it on
 * first use. The same (name, labels) always returns the same pointer, valid until
 * metrics_free. help is taken from the first call for a name. */
metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds (the +Inf bucket is implicit), at most 32. */
metric *metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                          const double *bounds, size_t nbounds);
/* A gauge read at render time from fn(arg). */
void metrics_gauge_fn(metrics *m, const char *name, const char *help, const char *labels,
                      double (*fn)(void *arg), void *arg);

void metric_inc(metric *c);
void metric_add(metric *c, double v); /* counters and gauges */
void metric_set(metric *g, double v); /* gauges */
void metric_observe(metric *h, double v);
double metric_value(const metric *c); /* counter or gauge value (tests, /status) */

/* The registry in Prometheus text format 0.0.4; caller frees; *len set. */
char *metrics_render(metrics *m, size_t *len);

/* Latency buckets in seconds, 100 us to 10 s. */
extern const double METRICS_LATENCY_BUCKETS[];
extern const size_t METRICS_LATENCY_NBUCKETS;

#endif
