/* runner: the one Check runner every test binary uses. */
#ifndef TASKSYNC_TEST_RUNNER_H
#define TASKSYNC_TEST_RUNNER_H

#include <check.h>
#include <stddef.h>

/* Runs the suites (taking ownership), prints Check's summary and returns the exit
 * status: 0 only when every test passed and at least one ran. Honours
 * CK_RUN_SUITE / CK_RUN_CASE / CK_INCLUDE_TAGS / CK_EXCLUDE_TAGS. */
int run_suites(const char *name, Suite **suites, size_t n);

/* Reads a required environment variable set by tests/support/run-tests.sh; fails
 * the current test with a clear message when it is missing. */
const char *test_env(const char *name);

#endif
