#include "common/metrics.h"

#include "common/util.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 32

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM, M_GAUGE_FN } mkind;

struct metric {
	mkind kind;
	char *name;
	char *help;
	char *labels;
	_Atomic uint64_t bits; /* double value (counter, gauge) or histogram sum */
	_Atomic uint64_t count;
	size_t nbounds;
	double bounds[MAX_BUCKETS];
	_Atomic uint64_t buckets[MAX_BUCKETS + 1];
	double (*fn)(void *);
	void *arg;
	struct metric *next;
};

struct metrics {
	pthread_mutex_t mu;
	metric *head, *tail;
};

const double METRICS_LATENCY_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};
const size_t METRICS_LATENCY_NBUCKETS = ARRAY_LEN(METRICS_LATENCY_BUCKETS);

static uint64_t d2u(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double u2d(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v),
	                                              memory_order_relaxed, memory_order_relaxed))
		;
}

metrics *metrics_new(void)
{
	metrics *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void metrics_free(metrics *m)
{
	if (!m)
		return;
	for (metric *x = m->head, *next; x; x = next) {
		next = x->next;
		free(x->name);
		free(x->help);
		free(x->labels);
		free(x);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static metric *get(metrics *m, mkind kind, const char *name, const char *help, const char *labels)
{
	if (!labels)
		labels = "";
	pthread_mutex_lock(&m->mu);
	for (metric *x = m->head; x; x = x->next) {
		if (strcmp(x->name, name) == 0 && strcmp(x->labels, labels) == 0) {
			pthread_mutex_unlock(&m->mu);
			return x;
		}
	}
	metric *x = xcalloc(1, sizeof(*x));
	x->kind = kind;
	x->name = xstrdup(name);
	x->help = xstrdup(help ? help : "");
	x->labels = xstrdup(labels);
	/* Keep series of one family together so HELP/TYPE are written once. */
	metric *after = NULL;
	for (metric *y = m->head; y; y = y->next)
		if (strcmp(y->name, name) == 0)
			after = y;
	if (after) {
		x->next = after->next;
		after->next = x;
		if (m->tail == after)
			m->tail = x;
	} else if (m->tail) {
		m->tail->next = x;
		m->tail = x;
	} else {
		m->head = m->tail = x;
	}
	pthread_mutex_unlock(&m->mu);
	return x;
}

metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels)
{
	return get(m, M_COUNTER, name, help, labels);
}

metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels)
{
	return get(m, M_GAUGE, name, help, labels);
}

metric *metrics_histogram(metrics *m, const char *name, const char *help, const char *labels,
                          const double *bounds, size_t nbounds)
{
	metric *h = get(m, M_HISTOGRAM, name, help, labels);
	pthread_mutex_lock(&m->mu);
	if (h->nbounds == 0) {
		h->nbounds = nbounds > MAX_BUCKETS ? MAX_BUCKETS : nbounds;
		memcpy(h->bounds, bounds, h->nbounds * sizeof(double));
	}
	pthread_mutex_unlock(&m->mu);
	return h;
}

void metrics_gauge_fn(metrics *m, const char *name, const char *help, const char *labels,
                      double (*fn)(void *arg), void *arg)
{
	metric *g = get(m, M_GAUGE_FN, name, help, labels);
	pthread_mutex_lock(&m->mu);
	g->fn = fn;
	g->arg = arg;
	pthread_mutex_unlock(&m->mu);
}

void metric_inc(metric *c)
{
	atomic_add_double(&c->bits, 1.0);
}
void metric_add(metric *c, double v)
{
	atomic_add_double(&c->bits, v);
}
void metric_set(metric *g, double v)
{
	atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}
double metric_value(const metric *c)
{
	return u2d(atomic_load_explicit(&c->bits, memory_order_relaxed));
}

void metric_observe(metric *h, double v)
{
	size_t i = 0;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_add_double(&h->bits, v);
}

typedef struct {
	char *buf;
	size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
		b->buf = xrealloc(b->buf, b->cap);
	}
}

static void num(char *out, size_t n, double v)
{
	if (isinf(v))
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(out, n, "%.0f", v);
	else
		snprintf(out, n, "%.9g", v);
}

static void labelset(char *out, size_t n, const char *labels, const char *extra)
{
	if (*labels && extra)
		snprintf(out, n, "{%s,%s}", labels, extra);
	else if (*labels || extra)
		snprintf(out, n, "{%s}", *labels ? labels : extra);
	else
		out[0] = '\0';
}

char *metrics_render(metrics *m, size_t *len)
{
	sbuf b = {xmalloc(4096), 0, 4096};
	b.buf[0] = '\0';
	static const char *const types[] = {"counter", "gauge", "histogram", "gauge"};
	pthread_mutex_lock(&m->mu);
	const char *family = NULL;
	for (metric *x = m->head; x; x = x->next) {
		if (!family || strcmp(family, x->name) != 0) {
			sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", x->name, x->help, x->name,
			          types[x->kind]);
			family = x->name;
		}
		char v[64], ls[512];
		if (x->kind == M_HISTOGRAM) {
			uint64_t cum = 0;
			for (size_t i = 0; i <= x->nbounds; i++) {
				cum += atomic_load_explicit(&x->buckets[i], memory_order_relaxed);
				char le[80], bound[48];
				num(bound, sizeof(bound), i < x->nbounds ? x->bounds[i] : INFINITY);
				snprintf(le, sizeof(le), "le=\"%s\"", bound);
				labelset(ls, sizeof(ls), x->labels, le);
				sb_printf(&b, "%s_bucket%s %llu\n", x->name, ls,
				          (unsigned long long)cum);
			}
			labelset(ls, sizeof(ls), x->labels, NULL);
			num(v, sizeof(v), metric_value(x));
			sb_printf(&b, "%s_sum%s %s\n%s_count%s %llu\n", x->name, ls, v, x->name, ls,
			          (unsigned long long)atomic_load(&x->count));
			continue;
		}
		labelset(ls, sizeof(ls), x->labels, NULL);
		num(v, sizeof(v), x->kind == M_GAUGE_FN && x->fn ? x->fn(x->arg) : metric_value(x));
		sb_printf(&b, "%s%s %s\n", x->name, ls, v);
	}
	pthread_mutex_unlock(&m->mu);
	*len = b.len;
	return b.buf;
}
