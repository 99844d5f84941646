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
	writer *w = writer_new(0, 0, err, sizeof(err));
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

/* registry_has probes by length (no NUL needed); deliveries into a batch claim each
 * socket's token once and wake nobody until the batch is flushed. */
START_TEST(has_and_batched_delivery)
{
	metrics *mr = metrics_new();
	gw_stats st;
	gw_stats_init(&st, mr);
	char err[128];
	writer *w = writer_new(0, 0, err, sizeof(err));
	registry *r = registry_new(4);
	conn_limits lim = {.max_frames = 10, .max_bytes = 1 << 20};
	conn *a1 = conn_new(NULL, -1, "alice", NULL, &lim, w, &st);
	conn *a2 = conn_new(NULL, -1, "alice", NULL, &lim, w, &st);
	ck_assert_int_eq(registry_attach(r, a1, NULL), REG_OK);
	ck_assert_int_eq(registry_attach(r, a2, NULL), REG_OK);
	ck_assert_int_eq(registry_has(r, "alice", 5), 1);
	ck_assert_int_eq(registry_has(r, "alicex", 5), 1); /* the first 5 bytes */
	ck_assert_int_eq(registry_has(r, "alic", 4), 0);
	ck_assert_int_eq(registry_has(r, "alicex", 6), 0);
	ck_assert_int_eq(registry_has(r, "bob", 3), 0);

	conn_batch b = {0};
	frame *f = frame_new(WS_OP_TEXT, "e", 1, 0);
	ck_assert_uint_eq(registry_deliver_batch(r, "alice", f, &b), 2);
	ck_assert_uint_eq(b.n, 2);
	ck_assert_uint_eq(registry_deliver_batch(r, "alice", f, &b), 2);
	/* tokens already held: not listed twice; and 4 frames for 2 sockets is a
	 * quarter of their bound (10) each, so the batch has flushed itself */
	ck_assert_uint_eq(b.n, 0);
	ck_assert_uint_eq(conn_queued_bytes(a1), 2 * f->len);
	ck_assert_uint_eq(registry_deliver_batch(r, "alice", f, &b), 2);
	ck_assert_uint_eq(b.n, 0); /* the tokens are the writer's now */
	conn_batch_flush(&b);
	ck_assert_uint_eq(b.n, 0);
	conn_batch_free(&b);
	frame_unref(f);

	conn *all[] = {a1, a2};
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(conn_detach(all[i]), 1);
		registry_detach(r, all[i]);
	}
	ck_assert_int_eq(registry_has(r, "alice", 5), 0);
	for (size_t i = 0; i < 2; i++)
		conn_unref(all[i]);
	registry_free(r);
	writer_free(w); /* releases what the ring still holds */
	metrics_free(mr);
}
END_TEST

Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, attach_deliver_detach);
	tcase_add_test(tc, has_and_batched_delivery);
	suite_add_tcase(s, tc);
	return s;
}
