#include "common/json.h"

#include <stdio.h>

void json_nesting_init(json_nesting *s, int max_depth)
{
	*s = (json_nesting){.max = max_depth};
}

int json_nesting_feed(json_nesting *s, const char *buf, size_t len)
{
	for (size_t i = 0; i < len && !s->exceeded; i++) {
		char ch = buf[i];
		if (s->in_str) {
			if (s->esc)
				s->esc = 0;
			else if (ch == '\\')
				s->esc = 1;
			else if (ch == '"')
				s->in_str = 0;
		} else if (ch == '"') {
			s->in_str = 1;
		} else if (ch == '[' || ch == '{') {
			if (++s->depth > s->max)
				s->exceeded = 1;
		} else if (ch == ']' || ch == '}') {
			s->depth--;
		}
	}
	return s->exceeded ? -1 : 0;
}

json_t *json_load_untrusted(const char *buf, size_t len, size_t flags, json_error_t *err)
{
	json_nesting s;
	json_nesting_init(&s, JSON_UNTRUSTED_MAX_DEPTH);
	if (json_nesting_feed(&s, buf, len) < 0) {
		*err = (json_error_t){.line = -1, .column = -1, .position = -1};
		snprintf(err->text, sizeof(err->text), "JSON nested deeper than %d levels",
		         JSON_UNTRUSTED_MAX_DEPTH);
		return NULL;
	}
	return json_loadb(buf, len, flags, err);
}
