#include "../support/runner.h"
#include "suites.h"

int main(void)
{
	Suite *s[] = {conn_suite(),    registry_suite(), wsmsg_suite(),
	              gateway_suite(), inbound_suite(),  ready_suite(),
	              budget_suite(),  tickets_suite(),  writer_suite()};
	return run_suites("test-gateway", s, sizeof(s) / sizeof(s[0]));
}
