/* Tests common/json.c: the nesting check in front of jansson. */
#include "common/json.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

static char *nested(int depth, char open, char close)
{
	char *s = malloc((size_t)depth * 2 + 1);
	memset(s, open, (size_t)depth);
	memset(s + depth, close, (size_t)depth);
	s[depth * 2] = '\0';
	return s;
}

START_TEST(depth_at_limit_parses)
{
	char *s = nested(JSON_UNTRUSTED_MAX_DEPTH, '[', ']');
	json_error_t err;
	json_t *j = json_load_untrusted(s, strlen(s), 0, &err);
	ck_assert_ptr_nonnull(j);
	json_decref(j);
	free(s);
}
END_TEST

START_TEST(one_deeper_is_refused)
{
	char *s = nested(JSON_UNTRUSTED_MAX_DEPTH + 1, '[', ']');
	json_error_t err;
	ck_assert_ptr_null(json_load_untrusted(s, strlen(s), 0, &err));
	ck_assert_ptr_nonnull(strstr(err.text, "nested deeper"));
	free(s);
}
END_TEST

START_TEST(brackets_in_strings_do_not_count)
{
	const char *s = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[\",\"b\":[1]}";
	json_nesting n;
	json_nesting_init(&n, 2);
	ck_assert_int_eq(json_nesting_feed(&n, s, strlen(s)), 0);
	json_error_t err;
	json_t *j = json_load_untrusted(s, strlen(s), 0, &err);
	ck_assert_ptr_nonnull(j);
	json_decref(j);
}
END_TEST

START_TEST(feed_in_pieces_equals_feed_at_once)
{
	const char *s = "{\"x\":[{\"y\":[\"\\\\\",[[]]]}]}"; /* depth 6 */
	for (int max = 4; max <= 7; max++) {
		json_nesting whole, bytes;
		json_nesting_init(&whole, max);
		json_nesting_init(&bytes, max);
		int a = json_nesting_feed(&whole, s, strlen(s)), b = 0;
		for (size_t i = 0; s[i]; i++)
			b |= json_nesting_feed(&bytes, s + i, 1);
		ck_assert_int_eq(a, b);
		ck_assert_int_eq(a, max < 6 ? -1 : 0);
	}
}
END_TEST

/* What the check is for: 100,000 levels on a 64 KiB stack (civetweb's workers are
 * small) must be refused, not crash. */
static void *load_deep(void *arg)
{
	const char *s = arg;
	json_error_t err;
	json_t *j = json_load_untrusted(s, strlen(s), 0, &err);
	json_decref(j);
	return j ? (void *)1 : NULL;
}

START_TEST(deep_input_on_small_stack_is_refused)
{
	char *s = nested(100000, '{', '}');
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, &attr, load_deep, s), 0);
	void *rc = (void *)1;
	pthread_join(th, &rc);
	ck_assert_ptr_null(rc);
	pthread_attr_destroy(&attr);
	free(s);
}
END_TEST

Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("nesting");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, depth_at_limit_parses);
	tcase_add_test(tc, one_deeper_is_refused);
	tcase_add_test(tc, brackets_in_strings_do_not_count);
	tcase_add_test(tc, feed_in_pieces_equals_feed_at_once);
	tcase_add_test(tc, deep_input_on_small_stack_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
