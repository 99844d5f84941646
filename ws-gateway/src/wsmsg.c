#include "wsmsg.h"

#include "common/poskey.h"
#include "common/rfc3339.h"

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

/* What the message carries: the event's type, which fields (bit F_x) and reload. */
typedef struct shape {
	event_type type;
	unsigned has;
	int reload;
} shape;

#define HAS(sh, x) (((sh)->has >> (x)) & 1u)

static shape shape_of(const event *ev)
{
	shape sh = {ev->type, 1u << F_USER_ID, ev->reload};
	sh.has |= (unsigned)(ev->event_id != NULL) << F_EVENT_ID;
	sh.has |= (unsigned)(ev->seq > 0) << F_SEQ;
	sh.has |= (unsigned)(ev->task != NULL) << F_TASK;
	sh.has |= (unsigned)(ev->positions != NULL) << F_POSITIONS;
	sh.has |= (unsigned)(ev->order != NULL) << F_ORDER;
	sh.has |= (unsigned)(ev->list != NULL) << F_LIST;
	sh.has |= (unsigned)(ev->origin != NULL) << F_ORIGIN;
	sh.has |= (unsigned)(ev->timestamp != NULL) << F_TIMESTAMP;
	sh.has |= (unsigned)(ev->list_id != NULL) << F_LIST_ID;
	sh.has |= (unsigned)(ev->actor != NULL) << F_ACTOR;
	return sh;
}

/* Writes the message into o (o->p NULL: only counts). Mirrors event_ws_message. */
static void build(out *o, const shape *sh, const span f[F__N])
{
	put_s(o, "{\"type\":\"task_update\",\"event\":\"");
	put_s(o, event_type_name(sh->type));
	put_s(o, "\"");
	field(o, "event_id", &f[F_EVENT_ID], HAS(sh, F_EVENT_ID));
	field(o, "user_id", &f[F_USER_ID], 1);
	field(o, "seq", &f[F_SEQ], HAS(sh, F_SEQ));
	if (HAS(sh, F_TASK))
		field(o, "task", &f[F_TASK], 1);
	if (HAS(sh, F_POSITIONS))
		field(o, "positions", &f[F_POSITIONS], 1);
	if (HAS(sh, F_ORDER))
		field(o, "order", &f[F_ORDER], 1);
	if (HAS(sh, F_LIST))
		field(o, "list", &f[F_LIST], 1);
	field(o, "origin", &f[F_ORIGIN], HAS(sh, F_ORIGIN));
	field(o, "timestamp", &f[F_TIMESTAMP], HAS(sh, F_TIMESTAMP));
	if (HAS(sh, F_LIST_ID))
		field(o, "list_id", &f[F_LIST_ID], 1);
	if (HAS(sh, F_ACTOR))
		field(o, "actor", &f[F_ACTOR], 1);
	if (sh->reload)
		put_s(o, ",\"reload\":true");
	put_s(o, "}");
}

static frame *frame_of(const shape *sh, const span f[F__N], int64_t ts_us)
{
	out o = {0};
	build(&o, sh, f);
	frame *fr = frame_new(WS_OP_TEXT, NULL, o.n, ts_us);
	o.p = fr->data + (fr->len - o.n); /* the payload, after the header */
	o.n = 0;
	build(&o, sh, f);
	return fr;
}

frame *wsmsg_frame(const char *raw, size_t len, const event *ev)
{
	span f[F__N] = {{0}};
	if (scan(raw, len, f))
		return NULL;
	shape sh = shape_of(ev);
	/* every value the message carries must have been found as written */
	for (int j = 0; j < F__N; j++)
		if (HAS(&sh, j) && !f[j].p)
			return NULL;
	return frame_of(&sh, f, ev->timestamp_us);
}

/* ---- one validating pass: wsmsg_fast ----
 *
 * Every function below returns 0, or -1 for "this pass cannot tell": a document
 * outside the subset it knows, valid or not, which event_parse then judges. It never
 * rejects, so all it must get right is to accept only what event_parse accepts,
 * with the same values (tests/fuzz/fuzz_wsmsg.c checks both on every input). */

#define V_DEPTH 8  /* deeper nesting: event_parse judges (JSON_UNTRUSTED_MAX_DEPTH 32) */
#define V_KEYS  32 /* more keys in one object: event_parse judges */
#define V_SHORT 64 /* the longest uuid, timestamp or enum value copied for a check */

typedef struct vs {
	const char *s;
	size_t len, i;
} vs;

/* A string as jansson would decode it, from its raw bytes. */
typedef struct vstr {
	const char *p; /* raw bytes between the quotes */
	size_t n;
	size_t bytes; /* decoded bytes (json_string_length) */
	size_t chars; /* decoded characters (code points) */
	int esc;      /* written with a backslash escape */
	int blank;    /* decoded, only ' ', \t, \n, \r (or nothing) */
} vstr;

static void v_ws(vs *v)
{
	v->i = skip_ws(v->s, v->i, v->len);
}

/* The length of the UTF-8 sequence at p (jansson's utf8_check_first/_full: no
 * overlong forms, no surrogates, nothing above U+10FFFF); 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	unsigned u = p[0], value;
	size_t k;
	if (u >= 0xC2 && u <= 0xDF) {
		k = 2;
		value = u & 0x1F;
	} else if (u >= 0xE0 && u <= 0xEF) {
		k = 3;
		value = u & 0x0F;
	} else if (u >= 0xF0 && u <= 0xF4) {
		k = 4;
		value = u & 0x07;
	} else {
		return 0;
	}
	if (avail < k)
		return 0;
	for (size_t j = 1; j < k; j++) {
		if (p[j] < 0x80 || p[j] > 0xBF)
			return 0;
		value = (value << 6) | (p[j] & 0x3Fu);
	}
	if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF) || (k == 3 && value < 0x800) ||
	    (k == 4 && value < 0x10000))
		return 0;
	return k;
}

/* The string at v->i (its opening quote). \u escapes: event_parse judges. */
static int v_string(vs *v, vstr *o)
{
	size_t i = v->i + 1;
	*o = (vstr){.p = v->s + i, .blank = 1};
	while (i < v->len) {
		unsigned char c = (unsigned char)v->s[i];
		if (c == '"') {
			o->n = (size_t)(v->s + i - o->p);
			v->i = i + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			char e = i + 1 < v->len ? v->s[i + 1] : 'u';
			switch (e) {
			case 't':
			case 'n':
			case 'r':
				break;
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
				o->blank = 0;
				break;
			default:
				return -1;
			}
			o->esc = 1;
			o->bytes++;
			o->chars++;
			i += 2;
			continue;
		}
		size_t k = 1;
		if (c >= 0x80 && !(k = utf8_len((const unsigned char *)v->s + i, v->len - i)))
			return -1;
		o->bytes += k;
		o->chars++;
		o->blank &= c == ' ';
		i += k;
	}
	return -1;
}

/* The string at v->i, unescaped, copied NUL-terminated into buf (cap bytes). */
static int v_short(vs *v, char *buf, size_t cap)
{
	vstr t;
	if (v->i >= v->len || v->s[v->i] != '"' || v_string(v, &t) || t.esc || t.n >= cap)
		return -1;
	memcpy(buf, t.p, t.n);
	buf[t.n] = '\0';
	return 0;
}

/* An integer of at most 18 digits, so it cannot overflow (reals, longer ones:
 * event_parse judges). */
static int v_int(vs *v, int64_t *val)
{
	size_t i = v->i;
	int neg = i < v->len && v->s[i] == '-';
	i += (size_t)neg;
	size_t d0 = i;
	int64_t x = 0;
	while (i < v->len && v->s[i] >= '0' && v->s[i] <= '9' && i - d0 < 18)
		x = x * 10 + (v->s[i++] - '0');
	size_t nd = i - d0;
	if (nd == 0 || nd > 18 || (nd > 1 && v->s[d0] == '0'))
		return -1;
	if (i < v->len && (v->s[i] == '.' || v->s[i] == 'e' || v->s[i] == 'E' ||
	                   (v->s[i] >= '0' && v->s[i] <= '9')))
		return -1;
	v->i = i;
	*val = neg ? -x : x;
	return 0;
}

/* true, false or null at v->i: 1, 0 or 2; -1 otherwise. */
static int v_lit(vs *v)
{
	static const char *const lits[] = {"false", "true", "null"};
	for (int j = 0; j < 3; j++) {
		size_t n = strlen(lits[j]);
		if (v->len - v->i >= n && !memcmp(v->s + v->i, lits[j], n)) {
			v->i += n;
			return j;
		}
	}
	return -1;
}

typedef int (*v_member_fn)(vs *v, const vstr *key, void *ctx, int depth);
static int v_object(vs *v, int depth, v_member_fn on, void *ctx);
static int v_any_member(vs *v, const vstr *key, void *ctx, int depth);

/* After an element or member: 1 at the closing `close` (consumed), 0 after a comma
 * and the blanks behind it, -1 at anything else. */
static int v_next(vs *v, char close)
{
	v_ws(v);
	if (v->i >= v->len)
		return -1;
	if (v->s[v->i] == close) {
		v->i++;
		return 1;
	}
	if (v->s[v->i++] != ',')
		return -1;
	v_ws(v);
	return 0;
}

/* Any JSON value at v->i. */
static int v_value(vs *v, int depth)
{
	if (v->i >= v->len)
		return -1;
	vstr t;
	int64_t x;
	switch (v->s[v->i]) {
	case '"':
		return v_string(v, &t);
	case '{':
		return v_object(v, depth + 1, v_any_member, NULL);
	case '[':
		if (depth + 1 > V_DEPTH)
			return -1;
		v->i++;
		v_ws(v);
		if (v->i < v->len && v->s[v->i] == ']') {
			v->i++;
			return 0;
		}
		for (;;) {
			if (v_value(v, depth + 1))
				return -1;
			int r = v_next(v, ']');
			if (r)
				return r > 0 ? 0 : -1;
		}
	case 't':
	case 'f':
	case 'n':
		return v_lit(v) < 0 ? -1 : 0;
	default:
		return v_int(v, &x);
	}
}

static int v_any_member(vs *v, const vstr *key, void *ctx, int depth)
{
	(void)key;
	(void)ctx;
	return v_value(v, depth);
}

/* The object at v->i ('{'), at nesting depth; on() reads each member's value (v->i
 * at its first byte). Keys written with escapes, duplicate keys (jansson's
 * JSON_REJECT_DUPLICATES) and more than V_KEYS keys: event_parse judges. */
static int v_object(vs *v, int depth, v_member_fn on, void *ctx)
{
	if (depth > V_DEPTH || v->i >= v->len || v->s[v->i] != '{')
		return -1;
	v->i++;
	v_ws(v);
	if (v->i < v->len && v->s[v->i] == '}') {
		v->i++;
		return 0;
	}
	span keys[V_KEYS];
	size_t nk = 0;
	for (;;) {
		vstr k;
		if (v->i >= v->len || v->s[v->i] != '"' || v_string(v, &k) || k.esc || nk == V_KEYS)
			return -1;
		for (size_t j = 0; j < nk; j++)
			/* keys[0..nk) are set below: not zeroed on this path, by design */
			// cppcheck-suppress uninitvar
			if (keys[j].n == k.n && !memcmp(keys[j].p, k.p, k.n))
				return -1;
		keys[nk++] = (span){k.p, k.n};
		v_ws(v);
		if (v->i >= v->len || v->s[v->i++] != ':')
			return -1;
		v_ws(v);
		if (v->i >= v->len || on(v, &k, ctx, depth))
			return -1;
		int r = v_next(v, '}');
		if (r)
			return r > 0 ? 0 : -1;
	}
}

static int key_is(const vstr *k, const char *name)
{
	return k->n == strlen(name) && !memcmp(k->p, name, k->n);
}

/* The task object, as event_validate_task(task, 0, ...) judges it. */
typedef struct vtask {
	int has_id;
	int pos_is_key; /* position written as a key (task.moved needs one) */
} vtask;

static int v_task_member(vs *v, const vstr *k, void *ctx, int depth)
{
	vtask *t = ctx;
	char buf[POSKEY_BUF];
	vstr s;
	int64_t x;
	int b;
	if (key_is(k, "id")) {
		if (v->s[v->i] != '"' || v_string(v, &s) || s.esc || s.bytes == 0 ||
		    s.bytes > TASK_ID_MAX)
			return -1;
		t->has_id = 1;
		return 0;
	}
	if (key_is(k, "title"))
		return v->s[v->i] != '"' || v_string(v, &s) || s.blank || s.chars > TASK_TITLE_MAX
		           ? -1
		           : 0;
	if (key_is(k, "description")) {
		if (v->s[v->i] != '"')
			return v_lit(v) == 2 ? 0 : -1;
		return v_string(v, &s) || s.chars > TASK_DESCRIPTION_MAX ? -1 : 0;
	}
	if (key_is(k, "priority"))
		return v_short(v, buf, sizeof(buf)) ||
		               (strcmp(buf, "low") && strcmp(buf, "medium") && strcmp(buf, "high"))
		           ? -1
		           : 0;
	if (key_is(k, "due_at")) {
		if (v->s[v->i] != '"')
			return v_lit(v) == 2 ? 0 : -1;
		return v_short(v, buf, V_SHORT) || time_parse_iso8601(buf, &x) ? -1 : 0;
	}
	if (key_is(k, "completed"))
		return (b = v_lit(v)) == 0 || b == 1 ? 0 : -1;
	if (key_is(k, "position")) {
		if (v->s[v->i] != '"')
			return v_int(v, &x);
		t->pos_is_key = 1;
		return v_short(v, buf, sizeof(buf)) || !poskey_valid(buf) ? -1 : 0;
	}
	if (key_is(k, "version"))
		return v_int(v, &x);
	return v_value(v, depth);
}

typedef struct vevent {
	wsmsg_event *e;
	shape sh;
	span f[F__N];
	int has_type;
	vtask task;
} vevent;

/* A member that is null (absent for event_parse) or a string: 1 for a string, with
 * v->i still at it; 0 for null (consumed); -1 otherwise. */
static int v_null_or_string(vs *v)
{
	if (v->s[v->i] == '"')
		return 1;
	return v_lit(v) == 2 ? 0 : -1;
}

static int v_event_member(vs *v, const vstr *k, void *ctx, int depth)
{
	vevent *ve = ctx;
	size_t at = v->i;
	int j = -1;
	for (int n = 0; n < F__N; n++)
		if (key_is(k, names[n]))
			j = n;
	char buf[V_SHORT];
	int r;
	vstr s;
	if (key_is(k, "event_type")) {
		if (v_short(v, buf, sizeof(buf)))
			return -1;
		int type = event_type_parse(buf);
		/* task.reordered and the list events: event_parse judges */
		if (type < 0 || type == EV_TASK_REORDERED || event_type_is_list((event_type)type))
			return -1;
		ve->sh.type = (event_type)type;
		ve->has_type = 1;
		return 0;
	}
	if (key_is(k, "reload")) {
		if ((r = v_lit(v)) != 0 && r != 1)
			return -1;
		ve->sh.reload = r;
		return 0;
	}
	switch (j) {
	case F_USER_ID:
		if (v_short(v, ve->e->user_id, sizeof(ve->e->user_id)) ||
		    !user_id_valid(ve->e->user_id))
			return -1;
		break;
	case F_SEQ:
		if (v->s[v->i] == 'n')
			return v_lit(v) == 2 ? 0 : -1;
		if (v_int(v, &ve->e->seq) || ve->e->seq < 1)
			return -1;
		break;
	case F_EVENT_ID:
	case F_LIST_ID:
		if ((r = v_null_or_string(v)) <= 0)
			return r;
		if (v_short(v, buf, sizeof(buf)) || !uuid_valid(buf))
			return -1;
		break;
	case F_ACTOR:
		if ((r = v_null_or_string(v)) <= 0)
			return r;
		if (v_short(v, buf, sizeof(buf)) || !user_id_valid(buf))
			return -1;
		break;
	case F_ORIGIN:
		if ((r = v_null_or_string(v)) <= 0)
			return r;
		if (v_string(v, &s) || s.bytes > ORIGIN_MAX)
			return -1;
		break;
	case F_TIMESTAMP:
		if ((r = v_null_or_string(v)) <= 0)
			return r;
		if (v_short(v, buf, sizeof(buf)) || time_parse_iso8601(buf, &ve->e->timestamp_us))
			return -1;
		break;
	case F_TASK:
		if (v_object(v, depth + 1, v_task_member, &ve->task))
			return -1;
		break;
	default: /* positions, order, list: not read for the task events */
		return v_value(v, depth);
	}
	ve->f[j] = (span){v->s + at, v->i - at};
	ve->sh.has |= 1u << j;
	return 0;
}

frame *wsmsg_fast(const char *raw, size_t len, wsmsg_event *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = -1;
	vevent ve = {.e = e};
	vs v = {raw, len, 0};
	v_ws(&v);
	if (v_object(&v, 1, v_event_member, &ve))
		return NULL;
	v_ws(&v);
	if (v.i != len || !ve.has_type || !HAS(&ve.sh, F_USER_ID) || !HAS(&ve.sh, F_TASK) ||
	    !ve.task.has_id || (ve.sh.type == EV_TASK_MOVED && !ve.task.pos_is_key))
		return NULL;
	/* absent or null, and -1 / 0 then, as event_parse leaves them */
	if (!HAS(&ve.sh, F_SEQ))
		e->seq = -1;
	if (!HAS(&ve.sh, F_TIMESTAMP))
		e->timestamp_us = 0;
	e->type = ve.sh.type;
	return frame_of(&ve.sh, ve.f, e->timestamp_us);
}
