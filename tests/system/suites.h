#ifndef SYS_TEST_SUITES_H
#define SYS_TEST_SUITES_H
#include <check.h>
Suite *failover_suite(void);
#endif
