#include "common/metrics.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

static double seven(void *arg)
{
	(void)arg;
	return 7;
}

START_TEST(render_text_format)
{
	metrics *m = metrics_new();
	metric *a = metrics_counter(m, "req_total", "Requests.", "route=\"/a\"");
	metric *b = metrics_counter(m, "other_total", "Other.", NULL);
	metric *a2 = metrics_counter(m, "req_total", "Requests.", "route=\"/b\"");
	ck_assert_ptr_eq(a, metrics_counter(m, "req_total", "x", "route=\"/a\""));
	metric_inc(a);
	metric_add(a, 2);
	metric_inc(b);
	metric_inc(a2);
	double bounds[] = {0.1, 1};
	metric *h = metrics_histogram(m, "lat_seconds", "Latency.", NULL, bounds, 2);
	metric_observe(h, 0.05);
	metric_observe(h, 0.5);
	metric_observe(h, 5);
	metrics_gauge_fn(m, "open", "Open things.", NULL, seven, NULL);
	size_t len;
	char *text = metrics_render(m, &len);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_ptr_nonnull(strstr(
	    text,
	    "# TYPE req_total counter\nreq_total{route=\"/a\"} 3\nreq_total{route=\"/b\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "other_total 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"0.1\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"1\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "lat_seconds_bucket{le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "lat_seconds_count 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "open 7\n"));
	/* HELP/TYPE once per family. */
	ck_assert_ptr_eq(strstr(text, "# TYPE req_total"),
	                 strrchr(text, '#') > text ? strstr(text, "# TYPE req_total") : NULL);
	free(text);
	metrics_free(m);
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, render_text_format);
	suite_add_tcase(s, tc);
	return s;
}
