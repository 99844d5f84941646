/* test-backend-units: unit tests of backend-api modules that need no database or
 * broker: the event JSON the store writes is what common/event.h's parser (the
 * gateway's) accepts, task JSON follows the shared task contract, and the
 * migrations are embedded. Integration tests of the running service are in
 * tests/backend-api (test-backend). */
#include "../support/runner.h"
#include "../../backend-api/src/migrate.h"
#include "../../backend-api/src/task_store.h"

#include "common/event.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static ts_task sample(void)
{
	ts_task t;
	memset(&t, 0, sizeof(t));
	uuid_new(t.id);
	t.title = xstrdup("Buy milk \"2%\" \xc3\xa9");
	t.description = NULL;
	strcpy(t.priority, "high");
	t.has_due = 1;
	t.due_us = 1796119200000000LL; /* 2026-12-01T10:00:00Z */
	t.completed = 1;
	strcpy(t.position, "a3");
	t.version = 7;
	t.created_us = 1796119200123000LL;
	t.updated_us = 1796119201456000LL;
	return t;
}

START_TEST(event_build_parses_for_every_task_type)
{
	static const event_type types[] = {EV_TASK_CREATED, EV_TASK_UPDATED, EV_TASK_COMPLETED,
	                                   EV_TASK_DELETED};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		ts_task t = sample();
		json_t *tj = ts_task_json(&t);
		char eid[UUID_STR_LEN];
		char *s =
		    ts_event_build(types[i], "alice@x.test", 42, "tab-1", t.updated_us, tj, eid);
		event ev;
		char err[256];
		ck_assert_msg(event_parse(s, strlen(s), &ev, err, sizeof(err)) == 0, "%s: %s", s,
		              err);
		ck_assert_int_eq(ev.type, types[i]);
		ck_assert_str_eq(ev.user_id, "alice@x.test");
		ck_assert_int_eq(ev.seq, 42);
		ck_assert_str_eq(ev.origin, "tab-1");
		ck_assert_str_eq(ev.event_id, eid);
		ck_assert_str_eq(ev.timestamp, "2026-12-01T10:00:01.456Z");
		ck_assert_int_eq(ev.timestamp_us, t.updated_us);
		ck_assert(json_equal(ev.task, tj));
		ck_assert_ptr_null(ev.order);
		event_clear(&ev);
		free(s);
		json_decref(tj);
		ts_task_clear(&t);
	}
}
END_TEST

START_TEST(event_build_reordered_and_null_origin)
{
	json_t *order = json_pack("{s:s, s:s}", "11111111-2222-4333-8444-555555555555", "a1",
	                          "21111111-2222-4333-8444-555555555555", "a0");
	char eid[UUID_STR_LEN];
	char *s = ts_event_build(EV_TASK_REORDERED, "bob", 1, NULL, 1796119200000000LL, order, eid);
	event ev;
	char err[256];
	ck_assert_msg(event_parse(s, strlen(s), &ev, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ev.type, EV_TASK_REORDERED);
	ck_assert_ptr_null(ev.origin);
	ck_assert_ptr_null(ev.task);
	ck_assert(json_equal(ev.positions, order));
	ck_assert_ptr_null(ev.order);
	/* origin is present as null, not absent (the contract's full form). */
	ck_assert_ptr_nonnull(strstr(s, "\"origin\":null"));
	event_clear(&ev);
	free(s);
	json_decref(order);
}
END_TEST

START_TEST(task_json_follows_the_contract)
{
	ts_task t = sample();
	json_t *j = ts_task_json(&t);
	const char *field = NULL;
	char err[256];
	ck_assert_msg(event_validate_task(j, 1, &field, err, sizeof(err)) == 0, "%s", err);
	static const char *const keys[] = {"id",         "title",     "description", "priority",
	                                   "due_at",     "completed", "position",    "version",
	                                   "created_at", "updated_at"};
	ck_assert_int_eq(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_msg(json_object_get(j, keys[i]), "missing %s", keys[i]);
	ck_assert(json_is_null(json_object_get(j, "description")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "due_at")),
	                 "2026-12-01T10:00:00.000Z");
	ck_assert_str_eq(json_string_value(json_object_get(j, "created_at")),
	                 "2026-12-01T10:00:00.123Z");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 7);
	ck_assert(json_is_true(json_object_get(j, "completed")));
	json_decref(j);
	t.has_due = 0;
	j = ts_task_json(&t);
	ck_assert(json_is_null(json_object_get(j, "due_at")));
	json_decref(j);
	ts_task_clear(&t);
}
END_TEST

/* The largest task the API accepts (every character JSON-escaped to six bytes, the
 * longest user id and origin) still makes an event within EVENT_MAX_BYTES. */
START_TEST(largest_task_event_fits_the_bound)
{
	ts_task t = sample();
	free(t.title);
	char *title = xmalloc(TASK_TITLE_MAX + 1), *desc = xmalloc(TASK_DESCRIPTION_MAX + 1);
	memset(title, 1, TASK_TITLE_MAX);
	title[TASK_TITLE_MAX] = '\0';
	memset(desc, 1, TASK_DESCRIPTION_MAX);
	desc[TASK_DESCRIPTION_MAX] = '\0';
	t.title = title;
	t.description = desc;
	memset(t.position, 'V', POSKEY_MAX);
	t.position[0] = 'a';
	t.position[POSKEY_MAX] = '\0';
	t.version = INT64_MAX;
	char user[USER_ID_MAX + 1], origin[ORIGIN_MAX + 1];
	memset(user, 'u', USER_ID_MAX);
	user[USER_ID_MAX] = '\0';
	memset(origin, 'o', ORIGIN_MAX);
	origin[ORIGIN_MAX] = '\0';
	json_t *tj = ts_task_json(&t);
	char eid[UUID_STR_LEN];
	char *s = ts_event_build(EV_TASK_UPDATED, user, INT64_MAX, origin, t.updated_us, tj, eid);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_le(strlen(s), EVENT_MAX_BYTES - TS_EVENT_SLACK);
	free(s);
	/* and the builder refuses what would not fit */
	json_object_set_new(tj, "description", json_string(""));
	char *huge = xmalloc(EVENT_MAX_BYTES + 1);
	memset(huge, 'x', EVENT_MAX_BYTES);
	huge[EVENT_MAX_BYTES] = '\0';
	json_object_set_new(tj, "description", json_string(huge));
	ck_assert_ptr_null(ts_event_build(EV_TASK_UPDATED, user, 1, origin, t.updated_us, tj, eid));
	free(huge);
	json_decref(tj);
	ts_task_clear(&t);
}
END_TEST

/* Times show exactly: microseconds when present, so a task echoed back is unchanged. */
START_TEST(task_json_times_are_exact)
{
	ts_task t = sample();
	t.due_us = -500000; /* 1969-12-31T23:59:59.5Z */
	json_t *j = ts_task_json(&t);
	ck_assert_str_eq(json_string_value(json_object_get(j, "due_at")),
	                 "1969-12-31T23:59:59.500Z");
	json_decref(j);
	t.due_us = 1796119200123456LL;
	j = ts_task_json(&t);
	ck_assert_str_eq(json_string_value(json_object_get(j, "due_at")),
	                 "2026-12-01T10:00:00.123456Z");
	json_decref(j);
	ts_task_clear(&t);
}
END_TEST

START_TEST(migrations_are_embedded)
{
	ck_assert_uint_ge(migrate_count(), 1);
}
END_TEST

static Suite *units_suite(void)
{
	Suite *s = suite_create("backend-units");
	TCase *tc = tcase_create("units");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, event_build_parses_for_every_task_type);
	tcase_add_test(tc, event_build_reordered_and_null_origin);
	tcase_add_test(tc, task_json_follows_the_contract);
	tcase_add_test(tc, largest_task_event_fits_the_bound);
	tcase_add_test(tc, task_json_times_are_exact);
	tcase_add_test(tc, migrations_are_embedded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *s[] = {units_suite()};
	return run_suites("test-backend-units", s, 1);
}
