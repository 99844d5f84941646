#include "common/util.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

START_TEST(iso8601_round_trip)
{
	char buf[40];
	int64_t us = 1795430400123000LL; /* 2026-11-22T... */
	time_iso8601(us, buf, sizeof(buf));
	int64_t back = 0;
	ck_assert_int_eq(time_parse_iso8601(buf, &back), 0);
	ck_assert_int_eq(back, us);
	ck_assert_int_eq(buf[strlen(buf) - 1], 'Z');
}
END_TEST

START_TEST(iso8601_offsets_and_errors)
{
	int64_t a, b;
	ck_assert_int_eq(time_parse_iso8601("2026-11-22T10:00:00Z", &a), 0);
	ck_assert_int_eq(time_parse_iso8601("2026-11-22T12:00:00+02:00", &b), 0);
	ck_assert_int_eq(a, b);
	ck_assert_int_eq(time_parse_iso8601("2026-11-22T10:00:00.5Z", &b), 0);
	ck_assert_int_eq(b - a, 500000);
	const char *bad[] = {"",
	                     "2026-11-22",
	                     "2026-13-01T00:00:00Z",
	                     "2026-02-31T00:00:00Z",
	                     "2026-11-22T10:00:00",
	                     "2026-11-22T10:00:00Zjunk",
	                     "tomorrow",
	                     "2026-11-22T25:00:00Z",
	                     "2026-11-22T10:00:00."};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ck_assert_msg(time_parse_iso8601(bad[i], &a) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(deadlines_carry_into_seconds)
{
	for (int64_t ms = 0; ms <= 3999; ms += 333) {
		struct timespec now, d = deadline_in(CLOCK_MONOTONIC, ms);
		clock_gettime(CLOCK_MONOTONIC, &now);
		ck_assert(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
		int64_t diff =
		    (int64_t)(d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
		ck_assert_msg(diff <= ms && diff >= ms - 50, "%lld ms ahead for %lld",
		              (long long)diff, (long long)ms);
	}
}
END_TEST

START_TEST(user_ids)
{
	ck_assert(user_id_valid("u1"));
	ck_assert(user_id_valid("alice@example.com"));
	ck_assert(!user_id_valid(""));
	ck_assert(!user_id_valid(NULL));
	ck_assert(!user_id_valid("a b"));
	ck_assert(!user_id_valid("a\"b"));
	char long_id[200];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	ck_assert(!user_id_valid(long_id));
	long_id[USER_ID_MAX] = '\0';
	ck_assert(user_id_valid(long_id));
}
END_TEST

START_TEST(uuids)
{
	char a[UUID_STR_LEN], b[UUID_STR_LEN];
	uuid_new(a);
	uuid_new(b);
	ck_assert(uuid_valid(a));
	ck_assert_str_ne(a, b);
	ck_assert(!uuid_valid("not-a-uuid"));
	ck_assert(!uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));
	ck_assert(uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
}
END_TEST

START_TEST(grow)
{
	size_t cap = 0;
	int *a = xgrow(NULL, &cap, 1, sizeof(int));
	ck_assert_uint_ge(cap, 1);
	size_t first = cap;
	for (size_t i = 0; i < first; i++)
		a[i] = (int)i;
	ck_assert_ptr_eq(xgrow(a, &cap, first, sizeof(int)), a); /* room: unchanged */
	a = xgrow(a, &cap, first + 1, sizeof(int));
	ck_assert_uint_eq(cap, 2 * first); /* doubled */
	a = xgrow(a, &cap, 10 * first, sizeof(int));
	ck_assert_uint_eq(cap, 10 * first); /* at least what is needed */
	for (size_t i = 0; i < first; i++)
		ck_assert_int_eq(a[i], (int)i);
	free(a);
}
END_TEST

Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, iso8601_round_trip);
	tcase_add_test(tc, iso8601_offsets_and_errors);
	tcase_add_test(tc, user_ids);
	tcase_add_test(tc, deadlines_carry_into_seconds);
	tcase_add_test(tc, uuids);
	tcase_add_test(tc, grow);
	suite_add_tcase(s, tc);
	return s;
}
