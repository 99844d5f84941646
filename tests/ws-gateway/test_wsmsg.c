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

/* wsmsg_fast on in: NULL, or a frame whose message and values are those of the
 * event_parse + wsmsg_frame path (which must then accept in and splice it). 1 when
 * wsmsg_fast took it. */
static int fast_agrees(const char *in, size_t len)
{
	wsmsg_event we;
	frame *ff = wsmsg_fast(in, len, &we);
	if (!ff)
		return 0;
	event ev;
	char err[256];
	ck_assert_msg(event_parse(in, len, &ev, err, sizeof(err)) == 0,
	              "wsmsg_fast took what event_parse rejects: %s: %s", in, err);
	ck_assert_int_eq(we.type, ev.type);
	ck_assert_str_eq(we.user_id, ev.user_id);
	ck_assert_int_eq(we.seq, ev.seq);
	ck_assert_int_eq(we.timestamp_us, ev.timestamp_us);
	frame *f = wsmsg_frame(in, len, &ev);
	ck_assert_msg(f != NULL, "wsmsg_fast took what wsmsg_frame declines: %s", in);
	ck_assert_int_eq(ff->len, f->len);
	ck_assert_msg(!memcmp(ff->data, f->data, f->len), "frames differ: %s", in);
	ck_assert_int_eq(ff->ts_us, f->ts_us);
	frame_unref(f);
	frame_unref(ff);
	event_clear(&ev);
	return 1;
}

/* Parses in, builds both messages, compares them; 1 when wsmsg took the fast way. */
static int same_message(const char *in, size_t len)
{
	event ev;
	char err[256];
	ck_assert_msg(event_parse(in, len, &ev, err, sizeof(err)) == 0, "%s: %s", in, err);
	(void)fast_agrees(in, len);
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

static size_t read_file(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	size_t len = fread(buf, 1, cap, fp);
	fclose(fp);
	return len;
}

/* Calls fn(path, bytes, len, arg) for every .json file of dir (proto/examples);
 * returns how many. */
static int each_example(const char *dir,
                        void (*fn)(const char *path, const char *buf, size_t len, void *arg),
                        void *arg)
{
	static char buf[65536];
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strstr(e->d_name, ".json"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fn(path, buf, read_file(path, buf, sizeof(buf)), arg);
		n++;
	}
	closedir(d);
	return n;
}

static void spliced(const char *path, const char *buf, size_t len, void *arg)
{
	(void)arg;
	ck_assert_msg(same_message(buf, len), "%s: not spliced", path);
}

START_TEST(examples_match_event_ws_message)
{
	ck_assert_int_ge(each_example("proto/examples/event/valid", spliced, NULL), 5);
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

/* every task event but task.reordered is taken; no list event */
static void fast_takes_task_events(const char *path, const char *buf, size_t len, void *taken)
{
	const char *name = strrchr(path, '/') + 1;
	int t = fast_agrees(buf, len);
	int want = strncmp(name, "list-", 5) && !strstr(name, "reordered");
	ck_assert_msg(t == want, "%s: wsmsg_fast took it: %d", path, t);
	*(int *)taken += t;
}

static void fast_refuses(const char *path, const char *buf, size_t len, void *arg)
{
	(void)arg;
	wsmsg_event we;
	ck_assert_msg(wsmsg_fast(buf, len, &we) == NULL, "%s: taken", path);
}

/* The one-pass validation takes the task events of proto/examples (the rest it leaves
 * to event_parse) and none of the invalid ones. */
START_TEST(fast_takes_valid_task_events_and_no_invalid_one)
{
	int taken = 0;
	(void)each_example("proto/examples/event/valid", fast_takes_task_events, &taken);
	ck_assert_int_ge(taken, 7);
	ck_assert_int_ge(each_example("proto/examples/event/invalid", fast_refuses, NULL), 20);
}
END_TEST

#define EV_HEAD    "{\"event_type\":\"task.updated\",\"user_id\":\"u1\",\"seq\":3,"
#define TASK(body) EV_HEAD "\"task\":{\"id\":\"t1\"," body "}}"

/* The edges of what the one pass judges: each case it takes must be one event_parse
 * accepts with the same message; each invalid one it must leave to event_parse. */
START_TEST(fast_edges)
{
	const char *take[] = {
	    TASK("\"title\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\\"q\\\" \\n\""),
	    TASK("\"title\":\" \\t x\",\"description\":null,\"due_at\":null"),
	    TASK("\"position\":-0,\"version\":123456789012345678,\"completed\":true"),
	    TASK("\"position\":\"a0\",\"priority\":\"high\",\"x\":[[],{},[{\"a\":[1]}]]"),
	    TASK("\"due_at\":\"2026-12-07T00:00:00+01:00\",\"\":\"empty key\""),
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"origin\":\"tab\\\"1\",\"reload\":true,"
	            "\"actor\":\"u2\",\"list_id\":\"0b6f5a0c-1c1d-4e55-9a43-3f2c1d0e9a11\","
	            "\"positions\":7,\"order\":null,\"list\":{}} \n",
	    "{\"event_type\":\"task.moved\",\"user_id\":\"u1\",\"seq\":null,\"timestamp\":null,"
	    "\"task\":{\"id\":\"t1\",\"position\":\"Zz\"},\"event_id\":null}",
	};
	for (size_t i = 0; i < sizeof(take) / sizeof(take[0]); i++)
		ck_assert_msg(fast_agrees(take[i], strlen(take[i])), "case %zu not taken: %s", i,
		              take[i]);
	const char *invalid[] = {
	    TASK("\"title\":\" \\n\\r\\t \""), /* blank title */
	    TASK("\"title\":\"\""),            /* empty title */
	    TASK("\"title\":null"),
	    TASK("\"title\":\"\xc0\xaf\""),          /* overlong UTF-8 */
	    TASK("\"title\":\"\xed\xa0\x80\""),      /* a surrogate */
	    TASK("\"title\":\"\xf4\x90\x80\x80\""),  /* above U+10FFFF */
	    TASK("\"title\":\"\xe2\x82\""),          /* cut short */
	    TASK("\"title\":\"a\tb\""),              /* raw control character */
	    TASK("\"title\":\"\\x\""),               /* bad escape */
	    TASK("\"title\":\"a\",\"title\":\"b\""), /* duplicate key */
	    TASK("\"x\":{\"a\":1,\"a\":2}"),         /* duplicate, nested */
	    TASK("\"priority\":\"urgent\""),
	    TASK("\"priority\":null"),
	    TASK("\"completed\":null"),
	    TASK("\"completed\":\"true\""),
	    TASK("\"position\":\"\""),
	    TASK("\"position\":true"),
	    TASK("\"version\":\"1\""),
	    TASK("\"version\":01"),
	    TASK("\"version\":1234567890123456789012"),
	    TASK("\"due_at\":\"tomorrow\""),
	    TASK("\"description\":7"),
	    TASK("\"x\":[1,]"),
	    TASK("\"x\":{\"a\":1,}"),
	    TASK("\"x\":tru"),
	    TASK("\"x\":truex"),
	    TASK("\"x\":-"),
	    TASK("\"x\":1x"),
	    TASK("\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
	    EV_HEAD "\"task\":{\"id\":\"t1\"}} x", /* trailing bytes */
	    EV_HEAD "\"task\":{\"id\":\"t1\"}",    /* cut short */
	    EV_HEAD "\"task\":{\"id\":\"\"}}",     /* empty id */
	    EV_HEAD "\"task\":{\"title\":\"x\"}}", /* no id */
	    EV_HEAD "\"task\":[]}",
	    EV_HEAD "\"task\":null}",
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"seq\":4}", /* duplicate seq */
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"reload\":null}",
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"origin\":1}",
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"event_id\":\"not-a-uuid\"}",
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"timestamp\":\"2026-13-07T00:00:00Z\"}",
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"actor\":\"bad user\"}",
	    EV_HEAD "\"task\":{\"id\":\"t1\"},\"list_id\":7}",
	    "{\"event_type\":\"task.updated\",\"user_id\":\"u1\",\"seq\":0,\"task\":{\"id\":\"t\"}"
	    "}",
	    "{\"event_type\":\"task.updated\",\"user_id\":\"u1\",\"seq\":-3,\"task\":{\"id\":\"t\"}"
	    "}",
	    "{\"event_type\":\"task.updated\",\"user_id\":\"\",\"task\":{\"id\":\"t\"}}",
	    "{\"event_type\":\"task.bogus\",\"user_id\":\"u1\",\"task\":{\"id\":\"t\"}}",
	    "{\"event_type\":\"task.moved\",\"user_id\":\"u1\",\"task\":{\"id\":\"t\",\"position\":"
	    "3}}",
	    "{\"user_id\":\"u1\",\"task\":{\"id\":\"t\"}}",
	    "[]",
	    "",
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		event ev;
		char err[256];
		int bad = event_parse(invalid[i], strlen(invalid[i]), &ev, err, sizeof(err));
		if (!bad)
			event_clear(&ev);
		ck_assert_msg(bad, "case %zu is valid: %s", i, invalid[i]);
		wsmsg_event we;
		ck_assert_msg(wsmsg_fast(invalid[i], strlen(invalid[i]), &we) == NULL,
		              "case %zu taken: %s", i, invalid[i]);
	}
	/* a title of 500 characters (two bytes each) is taken, 501 is not */
	static char big[4096];
	for (int chars = 500; chars <= 501; chars++) {
		int n = snprintf(big, sizeof(big), EV_HEAD "\"task\":{\"id\":\"t1\",\"title\":\"");
		for (int i = 0; i < chars; i++)
			n += snprintf(big + n, sizeof(big) - (size_t)n, "\xc3\xa9");
		n += snprintf(big + n, sizeof(big) - (size_t)n, "\"}}");
		wsmsg_event we;
		frame *f = wsmsg_fast(big, (size_t)n, &we);
		ck_assert_int_eq(f != NULL, chars == 500);
		if (f)
			ck_assert(fast_agrees(big, (size_t)n));
		frame_unref(f);
	}
}
END_TEST

Suite *wsmsg_suite(void)
{
	Suite *s = suite_create("wsmsg");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, examples_match_event_ws_message);
	tcase_add_test(tc, escapes_whitespace_and_nulls);
	tcase_add_test(tc, fast_takes_valid_task_events_and_no_invalid_one);
	tcase_add_test(tc, fast_edges);
	suite_add_tcase(s, tc);
	return s;
}
