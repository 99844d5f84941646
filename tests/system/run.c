#include "../support/runner.h"
#include "suites.h"

int main(void)
{
	Suite *s[] = {failover_suite()};
	return run_suites("test-system", s, sizeof(s) / sizeof(s[0]));
}
