#include "runner.h"

#include <stdio.h>
#include <stdlib.h>

int run_suites(const char *name, Suite **suites, size_t n)
{
	if (n == 0) {
		fprintf(stderr, "%s: no suites\n", name);
		return 1;
	}
	SRunner *sr = srunner_create(suites[0]);
	for (size_t i = 1; i < n; i++)
		srunner_add_suite(sr, suites[i]);
	srunner_run_all(sr, CK_ENV);
	int ran = srunner_ntests_run(sr);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("%s: %d passed, %d failed\n", name, ran - failed, failed);
	if (ran == 0) {
		fprintf(stderr, "%s: no test ran\n", name);
		return 1;
	}
	return failed ? 1 : 0;
}

const char *test_env(const char *name)
{
	const char *v = getenv(name);
	ck_assert_msg(v && *v, "environment variable %s is not set (run through make test)", name);
	return v;
}
