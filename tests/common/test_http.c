#include "common/http.h"
#include "suites.h"

START_TEST(origins)
{
	ck_assert(http_origin_allowed("*", "http://evil.example"));
	ck_assert(http_origin_allowed("http://a.example, http://127.0.0.1:8000",
	                              "http://127.0.0.1:8000"));
	ck_assert(!http_origin_allowed("http://a.example, http://127.0.0.1:8000",
	                               "http://127.0.0.1:9000"));
	ck_assert(!http_origin_allowed("http://a.example", "http://a.example.evil"));
	ck_assert(!http_origin_allowed("", "http://a.example"));
	ck_assert(http_origin_allowed("http://a.example", NULL));
}
END_TEST

START_TEST(query_params)
{
	char out[16];
	ck_assert_int_eq(http_query_param("since=42&limit=10", "since", out, sizeof(out)), 2);
	ck_assert_str_eq(out, "42");
	ck_assert_int_eq(http_query_param("since=42&limit=10", "limit", out, sizeof(out)), 2);
	ck_assert_int_eq(http_query_param("since=42", "limit", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param(NULL, "limit", out, sizeof(out)), -1);
	ck_assert_int_eq(http_query_param("token=a%20b", "token", out, sizeof(out)), 3);
	ck_assert_str_eq(out, "a b");
	ck_assert_int_eq(http_query_param("token=0123456789abcdefXYZ", "token", out, sizeof(out)),
	                 -2);
}
END_TEST

START_TEST(status_text)
{
	ck_assert_str_eq(http_status_text(404), "Not Found");
	ck_assert_str_eq(http_status_text(412), "Precondition Failed");
	ck_assert_str_eq(http_status_text(799), "Unknown");
}
END_TEST

Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, origins);
	tcase_add_test(tc, query_params);
	tcase_add_test(tc, status_text);
	suite_add_tcase(s, tc);
	return s;
}
