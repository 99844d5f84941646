#include "common/log.h"
#include "suites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr redirected to a temporary file and returns what it wrote. */
static char *capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	int saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	long n = ftell(tmp);
	fseek(tmp, 0, SEEK_END);
	n = ftell(tmp);
	rewind(tmp);
	char *buf = calloc(1, (size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, tmp), (size_t)n);
	fclose(tmp);
	return buf;
}

static void write_lines(void)
{
	log_setup("svc", LOG_INFO);
	log_debug("hidden", "{}");
	log_info("hello \"world\"", "{s:s, s:i}", "user", "u\n1", "n", 3);
	log_warn("bad format", "{s:s}", "x", (const char *)NULL);
}

START_TEST(one_json_object_per_line)
{
	char *out = capture(write_lines);
	char *save = NULL;
	int lines = 0;
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
		json_t *j = json_loads(l, 0, NULL);
		ck_assert_msg(j != NULL, "not JSON: %s", l);
		ck_assert_str_eq(json_string_value(json_object_get(j, "service")), "svc");
		ck_assert_ptr_nonnull(json_object_get(j, "ts"));
		if (lines == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(j, "msg")),
			                 "hello \"world\"");
			ck_assert_str_eq(json_string_value(json_object_get(j, "user")), "u\n1");
			ck_assert_int_eq(json_integer_value(json_object_get(j, "n")), 3);
			ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
		} else {
			ck_assert_ptr_nonnull(json_object_get(j, "log_format_error"));
		}
		json_decref(j);
	}
	ck_assert_int_eq(lines, 2);
	free(out);
}
END_TEST

START_TEST(levels)
{
	ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
	ck_assert_int_eq(log_level_parse("warning"), LOG_WARN);
	ck_assert_int_eq(log_level_parse("loud"), -1);
	log_setup(NULL, LOG_ERROR);
	ck_assert(!log_enabled(LOG_WARN));
	ck_assert(log_enabled(LOG_ERROR));
	ck_assert(!log_enabled(LOG_OFF));
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, one_json_object_per_line);
	tcase_add_test(tc, levels);
	suite_add_tcase(s, tc);
	return s;
}
