/* test-backend-units: unit tests of backend-api modules that need no database or
 * broker: the event JSON the store writes is what common/event.h's parser (the
 * gateway's) accepts, task JSON follows the shared task contract, and the
 * migrations are embedded. Integration tests of the running service are in
 * tests/backend-api (test-backend). */
#include "../support/runner.h"
#include "../../backend-api/src/migrate.h"
#include "../../backend-api/src/reqparse.h"
#include "../../backend-api/src/task_store.h"
#include "../../backend-api/src/wal.h"

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

/* reqparse: the checks the handlers map to 400 and 422 (tests/fuzz/fuzz_request.c
 * and fuzz_task_body.c fuzz them). */
START_TEST(request_query_and_headers)
{
	long limit;
	ck_assert_int_eq(rq_limit(NULL, 500, 1000, &limit), 0);
	ck_assert_int_eq(limit, 500);
	ck_assert_int_eq(rq_limit("since=3&limit=1000", 500, 1000, &limit), 0);
	ck_assert_int_eq(limit, 1000);
	ck_assert_int_eq(rq_limit("limit=1001", 500, 1000, &limit), -1);
	ck_assert_int_eq(rq_limit("limit=%2B1", 500, 1000, &limit), -1);
	ck_assert_int_eq(rq_limit("limit=0", 500, 1000, &limit), -1);
	int64_t since;
	ck_assert_int_eq(rq_since("since=0", &since), 0);
	ck_assert_int_eq(since, 0);
	ck_assert_int_eq(rq_since("limit=1", &since), -1);
	ck_assert_int_eq(rq_since("since=1234567890123456789", &since), -1);
	char buf[RQ_CURSOR_BUF];
	const char *after;
	ck_assert_int_eq(rq_cursor("limit=1", buf, &after), 0);
	ck_assert_ptr_null(after);
	ck_assert_int_eq(rq_cursor("cursor=k1.a0", buf, &after), 0);
	ck_assert_str_eq(after, "a0");
	ck_assert_int_eq(rq_cursor("cursor=k2.a0", buf, &after), -1);
	ck_assert_int_eq(rq_if_match(NULL), -1);
	ck_assert_int_eq(rq_if_match("*"), -1);
	ck_assert_int_eq(rq_if_match(" W/\"42\" "), 42);
	ck_assert_int_eq(rq_if_match("\"42"), INT64_MAX);
	ck_assert_int_eq(rq_if_match("-1"), INT64_MAX);
	ck_assert_int_eq(rq_idem_key_valid("a.b_c:d-9"), 1);
	ck_assert_int_eq(rq_idem_key_valid(""), 0);
	ck_assert_int_eq(rq_idem_key_valid("a b"), 0);
	char id[UUID_STR_LEN];
	ck_assert_int_eq(rq_move_id("3F1C2A4E-8B7D-4C6E-9A1F-0B2C3D4E5F60/move", id), 0);
	ck_assert_str_eq(id, "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60");
	ck_assert_int_eq(rq_move_id("t1/move", id), -1);
}
END_TEST

START_TEST(request_bodies)
{
	json_t *b = json_pack("{s:s, s:i}", "title", "x", "base_version", 0);
	static const char *const allowed[] = {"title", NULL};
	ck_assert_str_eq(rq_unknown_key(b, allowed), "base_version");
	int64_t base;
	ck_assert_int_eq(rq_base_version(b, &base), -1);
	const char *field;
	char why[256];
	ck_assert_int_eq(rq_task_fields(b, "t1", 1, &field, why, sizeof(why)), 0);
	json_decref(b);
	b = json_pack("{s:s}", "due_at", "tomorrow");
	ck_assert_int_eq(rq_task_fields(b, "t1", 0, &field, why, sizeof(why)), -1);
	ck_assert_str_eq(field, "due_at");
	json_decref(b);

	int after, has;
	char anchor[UUID_STR_LEN];
	b = json_pack("{s:s}", "after", "3F1C2A4E-8B7D-4C6E-9A1F-0B2C3D4E5F60");
	ck_assert_int_eq(rq_move_body(b, &field, &after, &has, anchor), 0);
	ck_assert(after && has);
	ck_assert_str_eq(anchor, "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60");
	json_decref(b);
	b = json_pack("{s:n, s:n}", "after", "before");
	ck_assert_int_eq(rq_move_body(b, &field, &after, &has, anchor), RQ_MOVE_SHAPE);
	json_decref(b);
	b = json_pack("{s:i}", "before", 1);
	ck_assert_int_eq(rq_move_body(b, &field, &after, &has, anchor), RQ_MOVE_ANCHOR);
	ck_assert_str_eq(field, "before");
	json_decref(b);

	const char **ids;
	size_t n, bad;
	b = json_pack("{s:[s,s]}", "order", "3F1C2A4E-8B7D-4C6E-9A1F-0B2C3D4E5F60",
	              "0b2c3d4e-8b7d-4c6e-9a1f-3f1c2a4e5f60");
	ck_assert_int_eq(rq_order_body(b, &ids, &n, &bad), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(ids[0], "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60");
	ck_assert_ptr_null(ids[2]);
	free((void *)ids);
	json_decref(b);
	b = json_pack("{s:[s,i]}", "order", "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60", 7);
	ck_assert_int_eq(rq_order_body(b, &ids, &n, &bad), RQ_ORDER_BAD_ID);
	ck_assert_uint_eq(bad, 1);
	ck_assert_ptr_null(ids);
	json_decref(b);
	json_t *big = json_array();
	for (int i = 0; i <= TASK_ORDER_MAX; i++)
		json_array_append_new(big, json_string("x"));
	b = json_pack("{s:o}", "order", big);
	ck_assert_int_eq(rq_order_body(b, &ids, &n, &bad), RQ_ORDER_TOO_LONG);
	json_decref(b);
}
END_TEST

/* wal_decode: pgoutput as PostgreSQL sends it (tests/fuzz/fuzz_wal.c fuzzes it). */
static size_t put_be(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
	return (size_t)bytes;
}

static size_t xlog_head(unsigned char *p)
{
	p[0] = 'w';
	memset(p + 1, 0, 24); /* start, end, send time */
	return 25;
}

START_TEST(wal_decodes_an_outbox_transaction)
{
	static const char *const cols[] = {"id", "user_id", "seq", "event_id", "payload"};
	static const char *const vals[] = {"17", "alice", "3",
	                                   "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60", "{}"};
	unsigned char b[512];
	wal_decoder d;
	memset(&d, 0, sizeof(d));
	wal_msg m;
	int what;
	char err[128];

	size_t n = xlog_head(b);
	b[n++] = 'R';
	n += put_be(b + n, 16390, 4);
	memcpy(b + n, "public\0outbox\0d", 15);
	n += 15;
	n += put_be(b + n, 5, 2);
	for (int i = 0; i < 5; i++) {
		b[n++] = 0;
		memcpy(b + n, cols[i], strlen(cols[i]) + 1);
		n += strlen(cols[i]) + 1;
		n += put_be(b + n, 25, 8);
	}
	ck_assert_int_eq(wal_decode(&d, b, n, &m, &what, err, sizeof(err)), WAL_OK);
	ck_assert_int_eq(what, WAL_DEC_NONE);

	n = xlog_head(b);
	b[n++] = 'I';
	n += put_be(b + n, 16390, 4);
	b[n++] = 'N';
	n += put_be(b + n, 5, 2);
	for (int i = 0; i < 5; i++) {
		b[n++] = 't';
		n += put_be(b + n, strlen(vals[i]), 4);
		memcpy(b + n, vals[i], strlen(vals[i]));
		n += strlen(vals[i]);
	}
	ck_assert_int_eq(wal_decode(&d, b, n, &m, &what, err, sizeof(err)), WAL_OK);
	ck_assert_int_eq(what, WAL_DEC_MSG);
	ck_assert_int_eq(m.kind, WAL_ROW);
	ck_assert_int_eq(m.id, 17);
	ck_assert_int_eq(m.seq, 3);
	ck_assert_uint_eq(m.user_len, 5);
	ck_assert(memcmp(m.user, "alice", 5) == 0);
	/* cut short: malformed, never read past the end */
	ck_assert_int_eq(wal_decode(&d, b, n - 1, &m, &what, err, sizeof(err)), WAL_ERR);

	n = xlog_head(b);
	b[n++] = 'C';
	b[n++] = 0;
	n += put_be(b + n, 0x100, 8);
	n += put_be(b + n, 0x180, 8);
	n += put_be(b + n, 1000, 8);
	ck_assert_int_eq(wal_decode(&d, b, n, &m, &what, err, sizeof(err)), WAL_OK);
	ck_assert_int_eq(m.kind, WAL_COMMIT);
	ck_assert_uint_eq(m.lsn, 0x180);
	ck_assert_int_eq(m.commit_us, 946684800000000LL + 1000);

	/* times at the ends of the range (PostgreSQL's infinity; a hostile server):
	 * clamped, no overflow (tests/fuzz/regress/fuzz_wal) */
	n = xlog_head(b);
	b[n++] = 'B';
	n += put_be(b + n, 0x100, 8);
	n += put_be(b + n, (uint64_t)INT64_MAX, 8);
	n += put_be(b + n, 1, 4);
	ck_assert_int_eq(wal_decode(&d, b, n, &m, &what, err, sizeof(err)), WAL_OK);
	ck_assert_int_eq(m.kind, WAL_BEGIN);
	ck_assert_int_eq(m.commit_us, INT64_MAX);
	put_be(b + 34, (uint64_t)INT64_MIN, 8);
	ck_assert_int_eq(wal_decode(&d, b, n, &m, &what, err, sizeof(err)), WAL_OK);
	ck_assert_int_eq(m.commit_us, 0);

	b[0] = 'k';
	put_be(b + 1, 0x200, 8);
	put_be(b + 9, 0, 8);
	b[17] = 1;
	ck_assert_int_eq(wal_decode(&d, b, 18, &m, &what, err, sizeof(err)), WAL_OK);
	ck_assert_int_eq(what, WAL_DEC_REPLY);
	ck_assert_uint_eq(d.server_lsn, 0x200);
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
	tcase_add_test(tc, request_query_and_headers);
	tcase_add_test(tc, request_bodies);
	tcase_add_test(tc, wal_decodes_an_outbox_transaction);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	Suite *s[] = {units_suite()};
	return run_suites("test-backend-units", s, 1);
}
