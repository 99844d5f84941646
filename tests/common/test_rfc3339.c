#include "common/rfc3339.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

static const char *fmt(int64_t us, rfc3339_precision p, char *buf)
{
	ck_assert_int_gt(rfc3339_format(us, p, buf, RFC3339_LEN), 0);
	return buf;
}

/* The bug of issue 11: half a second before the epoch was "1970-01-01T00:00:00.-500Z". */
START_TEST(before_epoch_floors)
{
	char buf[RFC3339_LEN];
	ck_assert_str_eq(fmt(-500000, RFC3339_MS, buf), "1969-12-31T23:59:59.500Z");
	ck_assert_str_eq(fmt(-1, RFC3339_EXACT, buf), "1969-12-31T23:59:59.999999Z");
	ck_assert_str_eq(fmt(-1, RFC3339_MS, buf), "1969-12-31T23:59:59.999Z");
	ck_assert_str_eq(fmt(-1000000, RFC3339_MS, buf), "1969-12-31T23:59:59.000Z");
	ck_assert_str_eq(fmt(0, RFC3339_MS, buf), "1970-01-01T00:00:00.000Z");
	int64_t us;
	ck_assert_int_eq(rfc3339_parse("1969-12-31T23:59:59.5Z", &us), RFC3339_OK);
	ck_assert_int_eq(us, -500000);
}
END_TEST

/* Whatever parses formats back (EXACT) to text that parses to the same microsecond. */
START_TEST(exact_round_trips)
{
	const char *in[] = {"1969-12-31T23:59:59.5Z",       "2026-11-22T10:00:00Z",
	                    "2026-11-22T10:00:00.123456Z",  "2026-11-22T10:00:00.1234567Z",
	                    "1900-02-28T23:59:59.000001Z",  "0000-01-01T00:00:00Z",
	                    "9999-12-31T23:59:59.999999Z",  "2000-02-29T12:00:00+05:30",
	                    "1600-03-01T00:00:00.001-01:00"};
	for (size_t i = 0; i < ARRAY_LEN(in); i++) {
		int64_t a, b;
		char buf[RFC3339_LEN];
		ck_assert_msg(rfc3339_parse(in[i], &a) == RFC3339_OK, "refused %s", in[i]);
		fmt(a, RFC3339_EXACT, buf);
		ck_assert_int_eq(rfc3339_parse(buf, &b), RFC3339_OK);
		ck_assert_msg(a == b, "%s -> %s moved", in[i], buf);
	}
	char buf[RFC3339_LEN];
	int64_t us;
	ck_assert_int_eq(rfc3339_parse("2026-11-22T10:00:00.123456Z", &us), 0);
	ck_assert_str_eq(fmt(us, RFC3339_EXACT, buf), "2026-11-22T10:00:00.123456Z");
	ck_assert_str_eq(fmt(us, RFC3339_MS, buf), "2026-11-22T10:00:00.123Z");
	ck_assert_int_eq(rfc3339_parse("2026-11-22T10:00:00.5Z", &us), 0);
	ck_assert_str_eq(fmt(us, RFC3339_EXACT, buf), "2026-11-22T10:00:00.500Z");
	ck_assert_int_eq(rfc3339_parse("0099-01-01T00:00:00Z", &us), 0);
	ck_assert_str_eq(fmt(us, RFC3339_MS, buf), "0099-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(errors_and_range)
{
	int64_t us;
	ck_assert_int_eq(rfc3339_parse("2026-02-31T00:00:00Z", &us), RFC3339_ERR_DATE);
	ck_assert_int_eq(rfc3339_parse("2026-13-01T00:00:00Z", &us), RFC3339_ERR_DATE);
	ck_assert_int_eq(rfc3339_parse("2026-11-22T10:00:00", &us), RFC3339_ERR_SYNTAX);
	ck_assert_int_eq(rfc3339_parse("2026-11-22T10:00:00.", &us), RFC3339_ERR_SYNTAX);
	ck_assert_int_eq(rfc3339_parse(NULL, &us), RFC3339_ERR_SYNTAX);
	/* the offset carries these outside the four-digit years */
	ck_assert_int_eq(rfc3339_parse("0000-01-01T00:00:00+00:01", &us), RFC3339_ERR_RANGE);
	ck_assert_int_eq(rfc3339_parse("9999-12-31T23:59:59-00:01", &us), RFC3339_ERR_RANGE);
	char buf[RFC3339_LEN], small[8];
	ck_assert_int_eq(rfc3339_format(RFC3339_MAX_US + 1, RFC3339_MS, buf, sizeof(buf)),
	                 RFC3339_ERR_RANGE);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(rfc3339_format(RFC3339_MIN_US - 1, RFC3339_MS, buf, sizeof(buf)),
	                 RFC3339_ERR_RANGE);
	ck_assert_int_eq(rfc3339_format(0, RFC3339_MS, small, sizeof(small)), RFC3339_ERR_BUFFER);
	ck_assert_str_eq(fmt(RFC3339_MIN_US, RFC3339_EXACT, buf), "0000-01-01T00:00:00.000Z");
	ck_assert_str_eq(fmt(RFC3339_MAX_US, RFC3339_EXACT, buf), "9999-12-31T23:59:59.999999Z");
	ck_assert_str_ne(rfc3339_strerror(RFC3339_ERR_RANGE), "unknown");
}
END_TEST

/* Every millisecond around the epoch and a spread of instants: MS output parses back
 * to the time floored to the millisecond. */
START_TEST(ms_floors_everywhere)
{
	for (int64_t us = -3000000; us <= 3000000; us += 777) {
		char buf[RFC3339_LEN];
		int64_t back;
		fmt(us, RFC3339_MS, buf);
		ck_assert_int_eq(rfc3339_parse(buf, &back), 0);
		int64_t floor_ms = us >= 0 ? us / 1000 * 1000 : -((-us + 999) / 1000) * 1000;
		ck_assert_msg(back == floor_ms, "%lld -> %s", (long long)us, buf);
	}
}
END_TEST

Suite *rfc3339_suite(void)
{
	Suite *s = suite_create("rfc3339");
	TCase *tc = tcase_create("rfc3339");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, before_epoch_floors);
	tcase_add_test(tc, exact_round_trips);
	tcase_add_test(tc, errors_and_range);
	tcase_add_test(tc, ms_floors_everywhere);
	suite_add_tcase(s, tc);
	return s;
}
