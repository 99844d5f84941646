#include "wsmsg.h"

#include <string.h>

/* The fields of the message taken from the event, in the message's order. */
enum {
	F_EVENT_ID = 0,
	F_USER_ID,
	F_SEQ,
	F_TASK,
	F_POSITIONS,
	F_ORDER,
	F_LIST,
	F_ORIGIN,
	F_TIMESTAMP,
	F_LIST_ID,
	F_ACTOR,
	F__N
};
static const char *const names[F__N] = {"event_id",  "user_id", "seq",  "task",
                                        "positions", "order",   "list", "origin",
                                        "timestamp", "list_id", "actor"};

typedef struct span {
	const char *p;
	size_t n;
} span;

static size_t skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The index just past the string whose opening quote is at i (len: malformed). */
static size_t skip_string(const char *s, size_t i, size_t len)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return len;
}

/* The index just past the value starting at i. The document is valid JSON
 * (event_parse said so), so brackets balance outside strings. */
static size_t skip_value(const char *s, size_t i, size_t len)
{
	if (i >= len)
		return len;
	if (s[i] == '"')
		return skip_string(s, i, len);
	if (s[i] == '{' || s[i] == '[') {
		size_t depth = 0;
		while (i < len) {
			char ch = s[i];
			if (ch == '"') {
				i = skip_string(s, i, len);
				continue;
			}
			if (ch == '{' || ch == '[')
				depth++;
			else if ((ch == '}' || ch == ']') && --depth == 0)
				return i + 1;
			i++;
		}
		return len;
	}
	while (i < len && !strchr(",}] \t\r\n", s[i]))
		i++;
	return i;
}

/* The raw value of each field of the top-level object; -1 when a key is written
 * with an escape (it could name a field without matching it byte for byte). */
static int scan(const char *s, size_t len, span f[F__N])
{
	size_t i = skip_ws(s, 0, len);
	if (i >= len || s[i] != '{')
		return -1;
	i = skip_ws(s, i + 1, len);
	while (i < len && s[i] == '"') {
		size_t k0 = i + 1, k1 = skip_string(s, i, len);
		if (k1 >= len)
			return -1;
		if (memchr(s + k0, '\\', k1 - 1 - k0))
			return -1;
		size_t kl = k1 - 1 - k0;
		i = skip_ws(s, k1, len);
		if (i >= len || s[i] != ':')
			return -1;
		size_t v0 = skip_ws(s, i + 1, len), v1 = skip_value(s, v0, len);
		for (int j = 0; j < F__N; j++) {
			if (strlen(names[j]) == kl && !memcmp(names[j], s + k0, kl)) {
				f[j].p = s + v0;
				f[j].n = v1 - v0;
				break;
			}
		}
		i = skip_ws(s, v1, len);
		if (i < len && s[i] == ',')
			i = skip_ws(s, i + 1, len);
		else
			break;
	}
	return i < len && s[i] == '}' ? 0 : -1;
}

typedef struct out {
	unsigned char *p;
	size_t n;
} out;

static void put(out *o, const void *p, size_t n)
{
	if (o->p)
		memcpy(o->p + o->n, p, n);
	o->n += n;
}

static void put_s(out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* ,"name":value (or null when absent). */
static void field(out *o, const char *name, const span *v, int present)
{
	put_s(o, ",\"");
	put_s(o, name);
	put_s(o, "\":");
	if (present)
		put(o, v->p, v->n);
	else
		put_s(o, "null");
}

/* Writes the message into o (o->p NULL: only counts). Mirrors event_ws_message. */
static void build(out *o, const event *ev, const span f[F__N])
{
	put_s(o, "{\"type\":\"task_update\",\"event\":\"");
	put_s(o, event_type_name(ev->type));
	put_s(o, "\"");
	field(o, "event_id", &f[F_EVENT_ID], ev->event_id != NULL);
	field(o, "user_id", &f[F_USER_ID], 1);
	field(o, "seq", &f[F_SEQ], ev->seq > 0);
	if (ev->task)
		field(o, "task", &f[F_TASK], 1);
	if (ev->positions)
		field(o, "positions", &f[F_POSITIONS], 1);
	if (ev->order)
		field(o, "order", &f[F_ORDER], 1);
	if (ev->list)
		field(o, "list", &f[F_LIST], 1);
	field(o, "origin", &f[F_ORIGIN], ev->origin != NULL);
	field(o, "timestamp", &f[F_TIMESTAMP], ev->timestamp != NULL);
	if (ev->list_id)
		field(o, "list_id", &f[F_LIST_ID], 1);
	if (ev->actor)
		field(o, "actor", &f[F_ACTOR], 1);
	if (ev->reload)
		put_s(o, ",\"reload\":true");
	put_s(o, "}");
}

frame *wsmsg_frame(const char *raw, size_t len, const event *ev)
{
	span f[F__N] = {{0}};
	if (scan(raw, len, f))
		return NULL;
	/* every value the message carries must have been found as written */
	if (!f[F_USER_ID].p || (ev->event_id && !f[F_EVENT_ID].p) || (ev->seq > 0 && !f[F_SEQ].p) ||
	    (ev->task && !f[F_TASK].p) || (ev->positions && !f[F_POSITIONS].p) ||
	    (ev->order && !f[F_ORDER].p) || (ev->list && !f[F_LIST].p) ||
	    (ev->origin && !f[F_ORIGIN].p) || (ev->timestamp && !f[F_TIMESTAMP].p) ||
	    (ev->list_id && !f[F_LIST_ID].p) || (ev->actor && !f[F_ACTOR].p))
		return NULL;
	out o = {0};
	build(&o, ev, f);
	frame *fr = frame_new(WS_OP_TEXT, NULL, o.n, ev->timestamp_us);
	o.p = fr->data + (fr->len - o.n); /* the payload, after the header */
	o.n = 0;
	build(&o, ev, f);
	return fr;
}
