#include "common/config.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

static long port, workers;
static char *secret, *name;
static int flag, level;
static const cfg_entry table[] = {
    {"TST_PORT", CFG_INT, &port, "8000", 1, 65535, "port"},
    {"TST_WORKERS", CFG_INT, &workers, "4", 1, 64, "workers"},
    {"TST_SECRET", CFG_SECRET, &secret, NULL, 8, 100, "secret"},
    {"TST_NAME", CFG_STR, &name, "x", 0, 10, "name"},
    {"TST_FLAG", CFG_BOOL, &flag, "false", 0, 0, "flag"},
    {"TST_LEVEL", CFG_LEVEL, &level, "info", 0, 0, "level"},
};

static void clear_env(void)
{
	for (size_t i = 0; i < ARRAY_LEN(table); i++)
		unsetenv(table[i].name);
}

START_TEST(defaults_and_values)
{
	clear_env();
	char err[512];
	setenv("TST_SECRET", "longenough", 1);
	setenv("TST_FLAG", "yes", 1);
	ck_assert_int_eq(config_load(table, ARRAY_LEN(table), err, sizeof(err)), 0);
	ck_assert_int_eq(port, 8000);
	ck_assert_int_eq(workers, 4);
	ck_assert_str_eq(secret, "longenough");
	ck_assert_str_eq(name, "x");
	ck_assert_int_eq(flag, 1);
	ck_assert_int_eq(level, 1);
	config_free(table, ARRAY_LEN(table));
	ck_assert_ptr_null(secret);
}
END_TEST

START_TEST(every_bad_variable_is_reported)
{
	clear_env();
	char err[1024];
	setenv("TST_PORT", "80x", 1);
	setenv("TST_WORKERS", "65", 1);
	setenv("TST_NAME", "far too long a name", 1);
	setenv("TST_FLAG", "maybe", 1);
	setenv("TST_LEVEL", "loud", 1);
	ck_assert_int_eq(config_load(table, ARRAY_LEN(table), err, sizeof(err)), -1);
	const char *names[] = {"TST_PORT:", "TST_WORKERS:", "TST_SECRET: is required",
	                       "TST_NAME:", "TST_FLAG:",    "TST_LEVEL:"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		ck_assert_msg(strstr(err, names[i]), "missing \"%s\" in: %s", names[i], err);
	config_free(table, ARRAY_LEN(table));
	clear_env();
}
END_TEST

START_TEST(bounds_are_inclusive)
{
	clear_env();
	char err[512];
	setenv("TST_SECRET", "12345678", 1);
	setenv("TST_PORT", "65535", 1);
	ck_assert_int_eq(config_load(table, ARRAY_LEN(table), err, sizeof(err)), 0);
	ck_assert_int_eq(port, 65535);
	config_free(table, ARRAY_LEN(table));
	setenv("TST_SECRET", "1234567", 1);
	ck_assert_int_eq(config_load(table, ARRAY_LEN(table), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "TST_SECRET: must be at least 8"));
	config_free(table, ARRAY_LEN(table));
	clear_env();
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, defaults_and_values);
	tcase_add_test(tc, every_bad_variable_is_reported);
	tcase_add_test(tc, bounds_are_inclusive);
	suite_add_tcase(s, tc);
	return s;
}
