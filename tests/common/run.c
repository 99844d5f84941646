#include "../support/runner.h"
#include "suites.h"

int main(void)
{
	Suite *s[] = {util_suite(),    log_suite(),    config_suite(),   auth_suite(),
	              event_suite(),   http_suite(),   metrics_suite(),  json_suite(),
	              rfc3339_suite(), poskey_suite(), ratelimit_suite()};
	return run_suites("test-common", s, sizeof(s) / sizeof(s[0]));
}
