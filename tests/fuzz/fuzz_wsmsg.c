/* fuzz_wsmsg: ws-gateway's spliced client message (ws-gateway/src/wsmsg.c), built
 * from the raw bytes of every event a socket of this replica receives. A
 * differential harness: for every event event_parse accepts, the frame wsmsg
 * splices (when it takes the fast way) must carry the same JSON value, with its
 * keys in the same order, as event_ws_message's re-serialisation. And wsmsg_fast,
 * the one-pass validation that stands in for event_parse on nearly every event,
 * must take only what event_parse accepts, with the same values and, byte for
 * byte, the frame wsmsg_frame splices. */
#include "common/event.h"
#include "wsmsg.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The top-level keys of the object text s, in order, into out (NUL-separated). */
static size_t keys(const char *s, size_t n, char *out, size_t cap)
{
	size_t used = 0;
	int depth = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"') {
			size_t j = i + 1;
			while (j < n && s[j] != '"')
				j += s[j] == '\\' ? 2 : 1;
			if (depth == 1 && j + 1 < n && s[j + 1] == ':' && used + (j - i) < cap) {
				memcpy(out + used, s + i + 1, j - i - 1);
				used += j - i - 1;
				out[used++] = '\0';
			}
			i = j;
		} else if (s[i] == '{' || s[i] == '[') {
			depth++;
		} else if (s[i] == '}' || s[i] == ']') {
			depth--;
		}
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > EVENT_MAX_BYTES)
		return -1;
	event ev;
	char err[256];
	wsmsg_event we;
	frame *ff = wsmsg_fast((const char *)data, size, &we);
	if (event_parse((const char *)data, size, &ev, err, sizeof(err))) {
		if (ff)
			abort(); /* the one pass took an event event_parse rejects */
		return 0;
	}
	if (ff) {
		frame *sf = wsmsg_frame((const char *)data, size, &ev);
		if (we.type != ev.type || strcmp(we.user_id, ev.user_id) || we.seq != ev.seq ||
		    we.timestamp_us != ev.timestamp_us || !sf || sf->len != ff->len ||
		    memcmp(sf->data, ff->data, sf->len) || sf->ts_us != ff->ts_us)
			abort(); /* other values, or another message */
		frame_unref(sf);
		frame_unref(ff);
	}
	size_t slen;
	char *slow = event_ws_message(&ev, &slen);
	frame *f = wsmsg_frame((const char *)data, size, &ev);
	if (f) {
		size_t h = (f->data[1] & 0x7f) == 126 ? 4 : (f->data[1] & 0x7f) == 127 ? 10 : 2;
		if (f->data[0] != 0x81 || f->len < h)
			abort();
		const char *fast = (const char *)f->data + h;
		size_t flen = f->len - h;
		json_t *a = json_loadb(fast, flen, 0, NULL), *b = json_loadb(slow, slen, 0, NULL);
		if (!a || !b || !json_equal(a, b))
			abort(); /* not the same message */
		/* compact output of both: the key order is then comparable as text */
		char *ca = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
		char *cb = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
		char ka[512], kb[512];
		size_t na = keys(ca, strlen(ca), ka, sizeof(ka)),
		       nb = keys(cb, strlen(cb), kb, sizeof(kb));
		if (na != nb || memcmp(ka, kb, na))
			abort(); /* the same fields in another order */
		free(ca);
		free(cb);
		json_decref(a);
		json_decref(b);
		frame_unref(f);
	}
	free(slow);
	event_clear(&ev);
	return 0;
}
