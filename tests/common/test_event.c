#include "common/event.h"
#include "suites.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole file; the test binary runs from the repository root. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = xmalloc((size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static int for_each_example(const char *dir, int expect_ok)
{
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s (run from the repository root)", dir);
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".json"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		size_t len;
		char *buf = slurp(path, &len);
		event ev;
		char err[256] = "";
		int rc = event_parse(buf, len, &ev, err, sizeof(err));
		ck_assert_msg((rc == 0) == expect_ok, "%s: expected %s, got %s (%s)", path,
		              expect_ok ? "accept" : "reject", rc == 0 ? "accept" : "reject", err);
		if (rc == 0)
			event_clear(&ev);
		else
			ck_assert_msg(err[0] != '\0', "%s: rejected without a reason", path);
		free(buf);
		count++;
	}
	closedir(d);
	return count;
}

START_TEST(valid_examples_accepted)
{
	ck_assert_int_ge(for_each_example("proto/examples/event/valid", 1), 5);
}
END_TEST

START_TEST(invalid_examples_rejected)
{
	ck_assert_int_ge(for_each_example("proto/examples/event/invalid", 0), 10);
}
END_TEST

START_TEST(full_event_fields)
{
	size_t len;
	char *buf = slurp("proto/examples/event/valid/created-full.json", &len);
	event ev;
	char err[256];
	ck_assert_int_eq(event_parse(buf, len, &ev, err, sizeof(err)), 0);
	ck_assert_int_eq(ev.type, EV_TASK_CREATED);
	ck_assert_str_eq(ev.user_id, "u1");
	ck_assert_int_eq(ev.seq, 42);
	ck_assert_str_eq(ev.origin, "tab-7f3a");
	ck_assert_str_eq(ev.event_id, "3f2b9c1e-8d4a-4b6f-9e2d-7a1c5b8e0f34");
	ck_assert_int_gt(ev.timestamp_us, 0);
	ck_assert_str_eq(json_string_value(json_object_get(ev.task, "title")), "Buy groceries");

	size_t mlen;
	char *msg = event_ws_message(&ev, &mlen);
	ck_assert_uint_eq(strlen(msg), mlen);
	json_t *m = json_loads(msg, 0, NULL);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "task_update");
	ck_assert_str_eq(json_string_value(json_object_get(m, "event")), "task.created");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "seq")), 42);
	ck_assert_str_eq(json_string_value(json_object_get(m, "origin")), "tab-7f3a");
	ck_assert(json_equal(json_object_get(m, "task"), ev.task));
	json_decref(m);
	free(msg);
	event_clear(&ev);
	free(buf);
}
END_TEST

START_TEST(minimal_event_message_has_null_seq)
{
	const char *in =
	    "{\"event_type\":\"task.reordered\",\"user_id\":\"u1\",\"order\":[\"b\",\"a\"]}";
	event ev;
	char err[256];
	ck_assert_int_eq(event_parse(in, strlen(in), &ev, err, sizeof(err)), 0);
	ck_assert_int_eq(ev.seq, -1);
	size_t mlen;
	char *msg = event_ws_message(&ev, &mlen);
	json_t *m = json_loads(msg, 0, NULL);
	ck_assert(json_is_null(json_object_get(m, "seq")));
	ck_assert_int_eq(json_array_size(json_object_get(m, "order")), 2);
	ck_assert_ptr_null(json_object_get(m, "task"));
	json_decref(m);
	free(msg);
	event_clear(&ev);
}
END_TEST

/* task.moved carries the task's id and new key; task.reordered the changed keys. */
START_TEST(moved_and_positions_events)
{
	event ev;
	char err[256];
	const char *moved = "{\"event_type\":\"task.moved\",\"user_id\":\"u1\",\"seq\":7,"
	                    "\"task\":{\"id\":\"t1\",\"position\":\"a0V\"}}";
	ck_assert_int_eq(event_parse(moved, strlen(moved), &ev, err, sizeof(err)), 0);
	ck_assert_int_eq(ev.type, EV_TASK_MOVED);
	ck_assert_str_eq(json_string_value(json_object_get(ev.task, "position")), "a0V");
	event_clear(&ev);
	const char *bad[] = {
	    "{\"event_type\":\"task.moved\",\"user_id\":\"u1\",\"task\":{\"id\":\"t1\"}}",
	    "{\"event_type\":\"task.moved\",\"user_id\":\"u1\",\"task\":{\"id\":\"t1\","
	    "\"position\":\"a00\"}}",
	    "{\"event_type\":\"task.created\",\"user_id\":\"u1\",\"task\":{\"id\":\"t1\","
	    "\"position\":\"a-1\"}}",
	    "{\"event_type\":\"task.reordered\",\"user_id\":\"u1\",\"positions\":[\"a0\"]}",
	    "{\"event_type\":\"task.reordered\",\"user_id\":\"u1\",\"positions\":{\"t1\":3}}",
	    "{\"event_type\":\"task.reordered\",\"user_id\":\"u1\"}",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ck_assert_msg(event_parse(bad[i], strlen(bad[i]), &ev, err, sizeof(err)) == -1,
		              "accepted %s", bad[i]);
	const char *re = "{\"event_type\":\"task.reordered\",\"user_id\":\"u1\",\"seq\":8,"
	                 "\"positions\":{\"t1\":\"a1\",\"t2\":\"a0\"}}";
	ck_assert_int_eq(event_parse(re, strlen(re), &ev, err, sizeof(err)), 0);
	size_t mlen;
	char *msg = event_ws_message(&ev, &mlen);
	json_t *m = json_loads(msg, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "positions"), "t2")),
	                 "a0");
	ck_assert_ptr_null(json_object_get(m, "order"));
	json_decref(m);
	free(msg);
	event_clear(&ev);
}
END_TEST

START_TEST(hostile_inputs)
{
	event ev;
	char err[256];
	/* Not NUL-terminated, embedded NUL, duplicate keys, deep nesting, empty. */
	const char trunc[] =
	    "{\"event_type\":\"task.created\",\"user_id\":\"u1\",\"task\":{\"id\":\"t\"}}XXXX";
	ck_assert_int_eq(event_parse(trunc, sizeof(trunc) - 5, &ev, err, sizeof(err)), 0);
	event_clear(&ev);
	ck_assert_int_eq(event_parse(trunc, 10, &ev, err, sizeof(err)), -1);
	const char nul[] =
	    "{\"event_type\":\"task.created\",\"user_id\":\"u\\u0000x\",\"task\":{\"id\":\"t\"}}";
	ck_assert_int_eq(event_parse(nul, sizeof(nul) - 1, &ev, err, sizeof(err)), -1);
	const char dup[] = "{\"event_type\":\"task.created\",\"user_id\":\"u1\",\"user_id\":\"u2\","
	                   "\"task\":{\"id\":\"t\"}}";
	ck_assert_int_eq(event_parse(dup, sizeof(dup) - 1, &ev, err, sizeof(err)), -1);
	ck_assert_int_eq(event_parse("", 0, &ev, err, sizeof(err)), -1);
	size_t depth = 5000;
	char *deep = xmalloc(depth * 2 + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	ck_assert_int_eq(event_parse(deep, depth * 2, &ev, err, sizeof(err)), -1);
	free(deep);
	event_clear(NULL);
}
END_TEST

START_TEST(type_names)
{
	for (int t = 0; t < EV__COUNT; t++)
		ck_assert_int_eq(event_type_parse(event_type_name((event_type)t)), t);
	ck_assert_int_eq(event_type_parse("task.nope"), -1);
	ck_assert_int_eq(event_type_parse(NULL), -1);
	ck_assert_ptr_null(event_type_name(EV__COUNT));
}
END_TEST

START_TEST(task_validation_names_the_field)
{
	const char *field = NULL;
	char err[256];
	json_t *t = json_pack("{s:s, s:s}", "id", "t1", "title", "   ");
	ck_assert_int_eq(event_validate_task(t, 1, &field, err, sizeof(err)), -1);
	ck_assert_str_eq(field, "title");
	json_object_set_new(t, "title", json_string("ok"));
	json_object_set_new(t, "priority", json_string("urgent"));
	ck_assert_int_eq(event_validate_task(t, 1, &field, err, sizeof(err)), -1);
	ck_assert_str_eq(field, "priority");
	json_object_set_new(t, "priority", json_string("high"));
	json_object_set_new(t, "due_at", json_string("2026-11-22T10:00:00Z"));
	ck_assert_int_eq(event_validate_task(t, 1, &field, err, sizeof(err)), 0);
	/* 500 multi-byte characters are within the limit; 501 are not. */
	char title[501 * 2 + 1];
	for (int i = 0; i < 501; i++)
		memcpy(title + 2 * i, "\xc3\xa9", 2);
	title[500 * 2] = '\0';
	json_object_set_new(t, "title", json_string(title));
	ck_assert_int_eq(event_validate_task(t, 1, &field, err, sizeof(err)), 0);
	title[500 * 2] = '\xc3';
	title[501 * 2] = '\0';
	json_object_set_new(t, "title", json_string(title));
	ck_assert_int_eq(event_validate_task(t, 1, &field, err, sizeof(err)), -1);
	json_decref(t);
}
END_TEST

Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, valid_examples_accepted);
	tcase_add_test(tc, invalid_examples_rejected);
	tcase_add_test(tc, full_event_fields);
	tcase_add_test(tc, minimal_event_message_has_null_seq);
	tcase_add_test(tc, moved_and_positions_events);
	tcase_add_test(tc, hostile_inputs);
	tcase_add_test(tc, type_names);
	tcase_add_test(tc, task_validation_names_the_field);
	suite_add_tcase(s, tc);
	return s;
}
