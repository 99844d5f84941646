#include "common/ratelimit.h"
#include "suites.h"

#include <stdio.h>

START_TEST(burst_then_rate)
{
	ratelimit *rl = ratelimit_new(10, 5); /* 10/s, 5 at once */
	int64_t t = 1000000;
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(ratelimit_take(rl, "u1", t), 0);
	int64_t wait = ratelimit_take(rl, "u1", t);
	ck_assert_int_gt(wait, 0);
	ck_assert_int_le(wait, 100000); /* one token every 100 ms */
	/* another user is not affected */
	ck_assert_int_eq(ratelimit_take(rl, "u2", t), 0);
	/* after the wait, one more */
	ck_assert_int_eq(ratelimit_take(rl, "u1", t + wait), 0);
	ck_assert_int_gt(ratelimit_take(rl, "u1", t + wait), 0);
	/* a refused request takes nothing: after 100 ms exactly one token is back */
	ck_assert_int_eq(ratelimit_take(rl, "u1", t + wait + 100000), 0);
	ck_assert_int_gt(ratelimit_take(rl, "u1", t + wait + 100000), 0);
	ratelimit_free(rl);
}
END_TEST

/* Keys whose buckets are full again are forgotten once the table grows. */
START_TEST(idle_keys_are_forgotten)
{
	ratelimit *rl = ratelimit_new(1000, 2);
	char key[32];
	int64_t t = 0;
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "user-%d", i);
		ck_assert_int_eq(ratelimit_take(rl, key, t), 0);
		t += 1000; /* 1 ms: each bucket is full again 2 ms later */
	}
	ck_assert_msg(ratelimit_size(rl) < 40000, "holds %zu keys", ratelimit_size(rl));
	ratelimit_free(rl);
	ratelimit_free(NULL);
}
END_TEST

Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, burst_then_rate);
	tcase_add_test(tc, idle_keys_are_forgotten);
	suite_add_tcase(s, tc);
	return s;
}
