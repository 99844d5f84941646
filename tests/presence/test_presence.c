/* ws-gateway/src/presence.c: the merged presence view of shared lists. */
#include "../../ws-gateway/src/presence.h"
#include "../support/runner.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *L1 = "3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f";
static const char *L2 = "4a7d2e3f-9b5c-4d6e-8f80-2b3c4d5e6f70";

/* Applies the record of (list, user, conn) expiring at exp (0: a tombstone). */
static int put(presence *p, const char *list, const char *user, const char *conn, long long exp,
               long long now)
{
	char key[PRESENCE_KEY_MAX], val[64], got[UUID_STR_LEN];
	ck_assert_int_eq(presence_key(list, user, conn, key), 0);
	snprintf(val, sizeof(val), "{\"expires_at_ms\":%lld}", exp);
	int rc =
	    presence_apply(p, key, strlen(key), exp ? val : NULL, exp ? strlen(val) : 0, now, got);
	if (rc >= 0)
		ck_assert_str_eq(got, list);
	return rc;
}

/* The list's "online" array as "user:devices,..." (static buffer). */
static const char *online(presence *p, const char *list)
{
	static char out[512];
	size_t len;
	char *m = presence_message(p, list, &len);
	json_t *j = json_loads(m, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "presence");
	ck_assert_str_eq(json_string_value(json_object_get(j, "list_id")), list);
	out[0] = '\0';
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(j, "online"), i, e)
	{
		char one[160];
		snprintf(one, sizeof(one), "%s%s:%lld", i ? "," : "",
		         json_string_value(json_object_get(e, "user_id")),
		         (long long)json_integer_value(json_object_get(e, "devices")));
		strncat(out, one, sizeof(out) - strlen(out) - 1);
	}
	json_decref(j);
	free(m);
	return out;
}

START_TEST(devices_per_user_per_list)
{
	presence *p = presence_new(100);
	ck_assert_int_eq(put(p, L1, "bob", "gw1-c1", 5000, 1000), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L1, "bob", "gw2-c9", 5000, 1000), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L1, "alice", "gw1-c2", 5000, 1000), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L2, "carol", "gw1-c3", 5000, 1000), PRESENCE_CHANGED);
	/* a heartbeat refresh changes nothing anyone sees */
	ck_assert_int_eq(put(p, L1, "bob", "gw1-c1", 9000, 2000), PRESENCE_UNCHANGED);
	ck_assert_str_eq(online(p, L1), "alice:1,bob:2");
	ck_assert_str_eq(online(p, L2), "carol:1"); /* lists never mix */
	/* a socket closes: a tombstone */
	ck_assert_int_eq(put(p, L1, "bob", "gw2-c9", 0, 2000), PRESENCE_CHANGED);
	ck_assert_str_eq(online(p, L1), "alice:1,bob:1");
	ck_assert_int_eq(put(p, L1, "bob", "gw2-c9", 0, 2000), PRESENCE_UNCHANGED); /* again */
	ck_assert_int_eq(presence_count(p), 3);
	/* an unknown list: nobody */
	ck_assert_str_eq(online(p, "5b8e3f40-ac6d-4e7f-9091-3c4d5e6f7081"), "");
	presence_free(p);
}
END_TEST

static void note(const char *list, void *arg)
{
	json_t *seen = arg;
	json_array_append_new(seen, json_string(list));
}

/* A crashed gateway sends no tombstones: its records expire. */
START_TEST(records_expire)
{
	presence *p = presence_new(100);
	ck_assert_int_eq(put(p, L1, "bob", "gw1-c1", 3000, 1000), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L1, "alice", "gw2-c1", 9000, 1000), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L2, "bob", "gw1-c2", 3000, 1000), PRESENCE_CHANGED);
	json_t *seen = json_array();
	ck_assert_uint_eq(presence_expire(p, 2999, note, seen), 0);
	ck_assert_uint_eq(json_array_size(seen), 0);
	ck_assert_uint_eq(presence_expire(p, 3000, note, seen), 2);
	ck_assert_uint_eq(json_array_size(seen), 2); /* L1 and L2 changed */
	json_decref(seen);
	ck_assert_str_eq(online(p, L1), "alice:1");
	ck_assert_str_eq(online(p, L2), "");
	ck_assert_int_eq(presence_count(p), 1);
	/* a record that arrives already expired (a late read of the topic) is a tombstone */
	ck_assert_int_eq(put(p, L1, "carol", "gw3-c1", 500, 1000), PRESENCE_UNCHANGED);
	ck_assert_str_eq(online(p, L1), "alice:1");
	presence_free(p);
}
END_TEST

START_TEST(bad_records_and_bounds)
{
	presence *p = presence_new(2);
	char got[UUID_STR_LEN], key[PRESENCE_KEY_MAX];
	const char *bad_keys[] = {"",
	                          "x|bob|c1",
	                          "3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f|bob",
	                          "3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f||c1",
	                          "3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f|b\"ob|c1",
	                          "3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f|bob|c 1"};
	const char *v = "{\"expires_at_ms\":5000}";
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
		ck_assert_int_eq(
		    presence_apply(p, bad_keys[i], strlen(bad_keys[i]), v, strlen(v), 1, got),
		    PRESENCE_BAD);
	ck_assert_int_eq(presence_key(L1, "bob", "c1", key), 0);
	const char *bad_vals[] = {"{}", "[1]", "{\"expires_at_ms\":\"5\"}",
	                          "{\"expires_at_ms\":-1}", "not json"};
	for (size_t i = 0; i < sizeof(bad_vals) / sizeof(bad_vals[0]); i++)
		ck_assert_int_eq(
		    presence_apply(p, key, strlen(key), bad_vals[i], strlen(bad_vals[i]), 1, got),
		    PRESENCE_BAD);
	ck_assert_int_ne(presence_key("nope", "bob", "c1", key), 0);
	ck_assert_int_ne(presence_key(L1, "bob", "", key), 0);
	/* the bound: a third subscription is refused, a refresh of one held is not */
	ck_assert_int_eq(put(p, L1, "a", "c1", 5000, 1), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L2, "b", "c1", 5000, 1), PRESENCE_CHANGED);
	ck_assert_int_eq(put(p, L1, "c", "c1", 5000, 1), PRESENCE_FULL);
	ck_assert_int_eq(put(p, "5b8e3f40-ac6d-4e7f-9091-3c4d5e6f7081", "c", "c1", 5000, 1),
	                 PRESENCE_FULL);
	ck_assert_int_eq(put(p, L1, "a", "c1", 6000, 1), PRESENCE_UNCHANGED);
	ck_assert_int_eq(presence_count(p), 2);
	presence_free(p);
}
END_TEST

static Suite *presence_suite(void)
{
	Suite *s = suite_create("presence");
	TCase *tc = tcase_create("presence");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, devices_per_user_per_list);
	tcase_add_test(tc, records_expire);
	tcase_add_test(tc, bad_records_and_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *s[] = {presence_suite()};
	return run_suites("test-presence", s, 1);
}
