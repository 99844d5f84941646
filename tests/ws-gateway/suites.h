#ifndef GW_TEST_SUITES_H
#define GW_TEST_SUITES_H
#include <check.h>
Suite *conn_suite(void);
Suite *registry_suite(void);
Suite *gateway_suite(void);
Suite *inbound_suite(void);
Suite *ready_suite(void);
Suite *budget_suite(void);
Suite *tickets_suite(void);
Suite *wsmsg_suite(void);
Suite *writer_suite(void);
#endif
