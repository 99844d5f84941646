/* json: parsing untrusted JSON safely. jansson's parser is recursive: a few
 * thousand '[' overflow a small thread stack (civetweb's workers) long before its
 * own depth limit is reached, so every outside JSON is checked for nesting first.
 * One scanner, used for request bodies, WebSocket messages, Kafka events and the
 * JWT header and payload. */
#ifndef COMMON_JSON_H
#define COMMON_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "common/util.h"

/* Nesting accepted by json_load_untrusted() (objects and arrays; strings skipped).
 * The contract (proto/) nests at most 3 deep. */
#define JSON_UNTRUSTED_MAX_DEPTH 32

/* Incremental nesting scanner: feed the text in any number of pieces. A value;
 * no allocation. */
typedef struct json_nesting {
	int depth;    /* current depth */
	int max;      /* deepest accepted */
	int in_str;   /* inside a string */
	int esc;      /* the previous byte was a backslash inside a string */
	int exceeded; /* sticky: max was passed */
} json_nesting;

void json_nesting_init(json_nesting *s, int max_depth);
/* Feeds len bytes; returns 0 while within the limit, -1 once it was passed. */
int json_nesting_feed(json_nesting *s, const char *buf, size_t len);

/* json_loadb() after the nesting check: NULL with err->text set ("JSON nested
 * deeper than N levels", or jansson's message) when buf is not acceptable.
 * flags as for json_loadb. The caller owns the result. */
MUST_CHECK json_t *json_load_untrusted(const char *buf, size_t len, size_t flags,
                                       json_error_t *err);

#endif
