/* Unit tests of ws-gateway/src/registry.c. */
#include "../../ws-gateway/src/registry.h"
#include "../../ws-gateway/src/writer.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

START_TEST(attach_deliver_detach)
{
	metrics *mr = metrics_new();
	gw_stats st;
	gw_stats_init(&st, mr);
	char err[128];
	writer *w = writer_new(0, err, sizeof(err));
	registry *r = registry_new(2);
	conn_limits lim = {.max_frames = 10, .max_bytes = 1 << 20};
	conn *a1 = conn_new(NULL, -1, "alice", NULL, &lim, w, &st);
	conn *a2 = conn_new(NULL, -1, "alice", NULL, &lim, w, &st);
	conn *a3 = conn_new(NULL, -1, "alice", NULL, &lim, w, &st);
	conn *b1 = conn_new(NULL, -1, "bob", NULL, &lim, w, &st);
	ck_assert_int_eq(registry_attach(r, a1, NULL), REG_OK);
	ck_assert_int_eq(registry_attach(r, a2, NULL), REG_OK);
	ck_assert_int_eq(registry_attach(r, a3, NULL), REG_USER_FULL);
	ck_assert_int_eq(registry_attach(r, b1, NULL), REG_OK);
	ck_assert_uint_eq(registry_connections(r), 4);
	ck_assert_uint_eq(registry_users(r), 2);

	frame *f = frame_new(WS_OP_TEXT, "e", 1, 0);
	ck_assert_uint_eq(registry_deliver(r, "alice", f), 2); /* not the one over the cap */
	ck_assert_uint_eq(registry_deliver(r, "bob", f), 1);
	ck_assert_uint_eq(registry_deliver(r, "carol", f), 0);

	json_t *s = registry_status(r, 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "connections")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "active_users")), 2);
	ck_assert_uint_eq(json_object_size(json_object_get(s, "connections_per_user")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "users_not_listed")), 1);
	json_decref(s);

	conn *all[] = {a1, a2, a3, b1};
	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(conn_detach(all[i]), 1);
		registry_detach(r, all[i]);
		registry_detach(r, all[i]); /* idempotent */
	}
	ck_assert_uint_eq(registry_connections(r), 0);
	ck_assert_uint_eq(registry_users(r), 0);
	ck_assert_uint_eq(registry_deliver(r, "alice", f), 0);
	frame_unref(f);
	for (size_t i = 0; i < 4; i++)
		conn_unref(all[i]);
	registry_free(r);
	writer_free(w);
	metrics_free(mr);
}
END_TEST

Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, attach_deliver_detach);
	suite_add_tcase(s, tc);
	return s;
}
