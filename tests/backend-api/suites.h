#ifndef BA_TEST_SUITES_H
#define BA_TEST_SUITES_H
#include <check.h>
Suite *tasks_suite(void);
Suite *outbox_suite(void);
Suite *server_suite(void);
Suite *migrate_suite(void);
Suite *config_suite(void);
Suite *mutations_suite(void);
#endif
