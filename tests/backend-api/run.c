#include "../support/runner.h"
#include "harness.h"
#include "suites.h"

int main(void)
{
	Suite *s[] = {config_suite(), migrate_suite(),   tasks_suite(),  server_suite(),
	              outbox_suite(), mutations_suite(), verdict_suite()};
	return run_suites("test-backend", s, sizeof(s) / sizeof(s[0]));
}
