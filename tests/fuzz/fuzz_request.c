/* fuzz_request: the query strings and headers backend-api reads
 * (backend-api/src/reqparse.c, common/src/http.c): "limit", "since" and "cursor"
 * of GET /api/v1/tasks and /api/v1/events, If-Match, Idempotency-Key and the
 * {id}/move path. The first byte picks the input, the rest is its text (cut at
 * the first NUL, as civetweb hands it over). */
#include "common/http.h"
#include "common/poskey.h"
#include "reqparse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static void query(const char *q)
{
	long limit;
	if (rq_limit(q, 500, 1000, &limit) == 0)
		CHECK(limit >= 1 && limit <= 1000);
	int64_t since;
	if (rq_since(q, &since) == 0)
		CHECK(since >= 0);
	else
		CHECK(since == -1);
	char buf[RQ_CURSOR_BUF];
	const char *after;
	if (rq_cursor(q, buf, &after) == 0)
		CHECK(!after || (after == buf + strlen(RQ_CURSOR_PREFIX) && poskey_valid(after)));
	/* the raw decoder, with a small buffer and a name of the query's own */
	char small[8];
	int n = http_query_param(q, "x", small, sizeof(small));
	CHECK(n >= -2 && n < (int)sizeof(small));
	if (n >= 0)
		CHECK(strlen(small) <= (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return -1;
	char *s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] & 3) {
	case 0:
		query(s);
		break;
	case 1: {
		int64_t v = rq_if_match(s);
		CHECK(v >= -1);
		break;
	}
	case 2:
		if (rq_idem_key_valid(s))
			CHECK(strlen(s) >= 1 && strlen(s) <= RQ_IDEM_KEY_MAX);
		break;
	default: {
		char id[UUID_STR_LEN];
		if (rq_move_id(s, id) == 0)
			CHECK(uuid_valid(id) && !strncasecmp(id, s, UUID_STR_LEN - 1));
	}
	}
	free(s);
	return 0;
}
