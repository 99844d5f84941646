/* fuzz_ws_frame: the WebSocket reading path the gateway owns (ws-gateway/src/
 * ws_guard.c ws_parser_feed), which sees every byte a client sends before civetweb
 * does: the upgrade request's headers, then frame headers.
 *
 * The first byte picks the mode (bit 0: the stream starts with HTTP headers; bits
 * 1-2: the message limit; bits 3-7 seed the piece sizes), the rest is the stream.
 * It is fed whole and again in pieces: the verdict must not depend on how the bytes
 * arrive, a stream that passes must be handed on whole, and a refusal must hold
 * back bytes (the refused header never reaches civetweb complete). */
#include "ws_guard.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return -1;
	static const uint64_t limits[4] = {0, 125, 4096, 65536};
	int http = data[0] & 1;
	uint64_t max = limits[(data[0] >> 1) & 3];
	unsigned seed = (unsigned)(data[0] >> 3) + 1;
	const uint8_t *b = data + 1;
	size_t n = size - 1;

	ws_parser whole;
	ws_parser_init(&whole, max, http);
	size_t passed = ws_parser_feed(&whole, b, n);
	if (passed > n)
		abort();
	if (whole.verdict == GUARD_OK ? passed != n : passed == n && n > 0)
		abort();
	if (whole.verdict != GUARD_OK && ws_parser_feed(&whole, b, n) != 0)
		abort(); /* terminal */

	ws_parser pieces;
	ws_parser_init(&pieces, max, http);
	size_t off = 0, total = 0, step = 0;
	while (off < n) {
		size_t k = 1 + (seed * 7 + step++ * 13) % 17;
		if (k > n - off)
			k = n - off;
		size_t got = ws_parser_feed(&pieces, b + off, k);
		if (got > k)
			abort();
		total += got;
		off += k;
	}
	if (pieces.verdict != whole.verdict || (whole.verdict == GUARD_OK && total != n))
		abort();
	if (whole.verdict != GUARD_OK &&
	    (ws_guard_code(whole.verdict) != 1009 && ws_guard_code(whole.verdict) != 1002))
		abort();
	return 0;
}
