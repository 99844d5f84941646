/* Unit tests of ws-gateway/src/wsmsg.c: the spliced client message is the same JSON
 * value, with the same fields in the same order, as event_ws_message's. */
#include "../../ws-gateway/src/wsmsg.h"
#include "suites.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys of a JSON object text in their written order, comma-joined (keys of the
 * top level only; enough for the messages compared here). */
static void key_order(const char *s, char *out, size_t cap)
{
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(j);
	out[0] = '\0';
	/* top-level keys are at depth 1, each followed by ':' */
	int depth = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '"') {
			const char *q = p + 1;
			while (*q && *q != '"')
				q += (*q == '\\') ? 2 : 1;
			const char *after = q + 1;
			while (*after == ' ')
				after++;
			if (depth == 1 && *after == ':') {
				size_t used = strlen(out);
				snprintf(out + used, cap - used, "%.*s,", (int)(q - p - 1), p + 1);
			}
			p = q;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		}
	}
	json_decref(j);
}

/* Parses in, builds both messages, compares them; 1 when wsmsg took the fast way. */
static int same_message(const char *in, size_t len)
{
	event ev;
	char err[256];
	ck_assert_msg(event_parse(in, len, &ev, err, sizeof(err)) == 0, "%s: %s", in, err);
	size_t mlen;
	char *slow = event_ws_message(&ev, &mlen);
	frame *f = wsmsg_frame(in, len, &ev);
	int fast = f != NULL;
	if (f) {
		size_t h = (f->data[1] & 0x7f) == 126 ? 4 : (f->data[1] & 0x7f) == 127 ? 10 : 2;
		ck_assert_int_eq(f->data[0], 0x81);
		char *text = strndup((const char *)f->data + h, f->len - h);
		json_t *a = json_loads(text, 0, NULL), *b = json_loads(slow, 0, NULL);
		ck_assert_msg(a != NULL, "not JSON: %s", text);
		ck_assert_msg(json_equal(a, b), "differs:\n%s\n%s", text, slow);
		char ka[512], kb[512];
		key_order(text, ka, sizeof(ka));
		key_order(slow, kb, sizeof(kb));
		ck_assert_str_eq(ka, kb);
		ck_assert_int_eq(f->ts_us, ev.timestamp_us);
		json_decref(a);
		json_decref(b);
		free(text);
		frame_unref(f);
	}
	free(slow);
	event_clear(&ev);
	return fast;
}

START_TEST(examples_match_event_ws_message)
{
	const char *dir = "proto/examples/event/valid";
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strstr(e->d_name, ".json"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *fp = fopen(path, "rb");
		ck_assert_ptr_nonnull(fp);
		char buf[65536];
		size_t len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		ck_assert_msg(same_message(buf, len), "%s: not spliced", path);
		n++;
	}
	closedir(d);
	ck_assert_int_ge(n, 5);
}
END_TEST

START_TEST(escapes_whitespace_and_nulls)
{
	const char *ok[] = {
	    /* whitespace everywhere, escapes and brackets inside strings */
	    " { \"event_type\" : \"task.updated\" ,\n \"user_id\" : \"u1\" , \"seq\" : 7 ,"
	    " \"task\" : { \"id\" : \"t1\" , \"title\" : \"a \\\"quoted\\\" } ] { [ title\" ,"
	    " \"description\" : \"caf\\u00e9 \\\\ \\/\" } , \"origin\" : \"tab\\n1\" ,"
	    " \"timestamp\" : \"2026-12-07T00:00:00Z\" } ",
	    /* event_id, seq, origin and timestamp null or absent */
	    "{\"event_type\":\"task.deleted\",\"user_id\":\"u1\",\"event_id\":null,\"seq\":null,"
	    "\"origin\":null,\"task\":{\"id\":\"t1\"}}",
	    /* positions, and an unknown field before it */
	    "{\"extra\":{\"a\":[1,{\"b\":\"}\"}]},\"event_type\":\"task.reordered\","
	    "\"user_id\":\"u1\",\"positions\":{\"a\":\"a0\",\"b\":\"a1\"}}",
	    /* legacy order */
	    "{\"event_type\":\"task.reordered\",\"user_id\":\"u1\",\"order\":[\"b\",\"a\"]}",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(same_message(ok[i], strlen(ok[i])), "case %zu: not spliced", i);
	/* a key written with an escape: jansson reads it as "task"; the splice cannot
	 * match it byte for byte, so it declines and the caller builds the message */
	const char *esc = "{\"event_type\":\"task.created\",\"user_id\":\"u1\","
	                  "\"t\\u0061sk\":{\"id\":\"t1\",\"title\":\"x\"}}";
	ck_assert_int_eq(same_message(esc, strlen(esc)), 0);
}
END_TEST

Suite *wsmsg_suite(void)
{
	Suite *s = suite_create("wsmsg");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, examples_match_event_ws_message);
	tcase_add_test(tc, escapes_whitespace_and_nulls);
	suite_add_tcase(s, tc);
	return s;
}
