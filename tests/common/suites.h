#ifndef TASKSYNC_TEST_COMMON_SUITES_H
#define TASKSYNC_TEST_COMMON_SUITES_H
#include <check.h>
Suite *util_suite(void);
Suite *log_suite(void);
Suite *config_suite(void);
Suite *auth_suite(void);
Suite *event_suite(void);
Suite *http_suite(void);
Suite *metrics_suite(void);
Suite *json_suite(void);
Suite *rfc3339_suite(void);
Suite *poskey_suite(void);
Suite *ratelimit_suite(void);
#endif
