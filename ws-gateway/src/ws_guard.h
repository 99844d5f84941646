/* ws_guard: what a client sends is checked before civetweb reads it.
 *
 * civetweb (1.15 and 1.16 alike) allocates a whole client frame, sized from the
 * length in its header (up to ~2 GB), before any handler sees it, and has no
 * option or callback to refuse it earlier. Every byte civetweb reads from a
 * client comes through one recv() call (pull_inner; plain TCP, no TLS here),
 * which it calls through the PLT: the gateway interposes recv() (our definition
 * in the executable wins) and runs each connection's byte stream through a small
 * incremental parser first: the request headers (up to where civetweb's own
 * get_http_header_len ends them), then WebSocket frame headers. A header that
 * claims more than MAX_MESSAGE_BYTES, a continuation that takes its message past
 * it, a control frame over 125 bytes or fragmented, and any other protocol error
 * are refused before civetweb holds the complete header: civetweb is handed only
 * the bytes before it, the connection is closed with 1009 or 1002, and nothing
 * more is read from it (the next read waits until the close frame is out, then
 * reports end of stream, which ends civetweb's read loop).
 *
 * State is per civetweb worker thread (thread-local): a worker serves one
 * connection at a time, ws_guard_begin() (civetweb's init_connection callback)
 * starts each, and every other thread's recv() passes straight through. The
 * socket the worker reads is its connection's: ws_guard_fd() hands it to the
 * connect handler (exact, whatever the address family). */
#ifndef GW_WS_GUARD_H
#define GW_WS_GUARD_H

#include "common/metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
	GUARD_OK = 0,
	GUARD_TOO_LARGE, /* a frame, or a fragmented message, past the limit: 1009 */
	GUARD_CONTROL,   /* a control frame over 125 bytes or fragmented: 1002 */
	GUARD_PROTOCOL,  /* reserved bits or opcodes, unmasked, bad fragmentation: 1002 */
	GUARD__COUNT
} guard_verdict;

/* The close code of a verdict (1009 or 1002) and the reason sent with it. */
int ws_guard_code(guard_verdict v);
const char *ws_guard_reason(guard_verdict v);

/* ---- the parser (pure; one per connection) ---- */

typedef struct ws_parser {
	uint64_t max;          /* largest message payload accepted */
	int in_http;           /* still in the request headers */
	unsigned http_tail;    /* the last bytes of the headers (end-of-headers match) */
	unsigned char hdr[14]; /* the frame header being assembled */
	unsigned hlen, hneed;  /* bytes of it seen, bytes it has (0: not known yet) */
	uint64_t left;         /* payload bytes left of the current frame */
	uint64_t msg;          /* payload bytes of the open fragmented message */
	int in_msg;            /* a fragmented data message is open */
	uint64_t claimed;      /* length in the refused header (diagnostics) */
	guard_verdict verdict; /* the first refusal; terminal */
} ws_parser;

/* http: the stream starts with an HTTP request (the headers pass unparsed). */
void ws_parser_init(ws_parser *p, uint64_t max_message_bytes, int http);
/* Feeds the next n bytes of the stream. Returns how many of them may be handed
 * on: n, or fewer when a frame header among them is refused (p->verdict is set;
 * the bytes returned end before that header, so the reader never has it whole).
 * After a refusal every call returns 0. */
size_t ws_parser_feed(ws_parser *p, const unsigned char *b, size_t n);

/* ---- the civetweb side ---- */

/* Called on the connection's thread when the guard refused what the client sent
 * (v != GUARD_OK: the close is to be started) or after ws_guard_stop() (v ==
 * GUARD_OK: a close is already under way); returns once the close frame is out
 * (bounded). bytes_read: what was read from this connection. */
typedef void (*ws_guard_refuse_fn)(void *owner, guard_verdict v, uint64_t claimed,
                                   uint64_t bytes_read, void *arg);

/* Before mg_start. bytes_read counts every byte read from clients (may be NULL). */
void ws_guard_init(size_t max_message_bytes, ws_guard_refuse_fn refuse, void *arg,
                   metric *bytes_read);
/* A new connection on this worker thread (civetweb's init_connection callback).
 * @locality a civetweb worker thread, for everything below. */
void ws_guard_begin(void);
/* The socket this thread's connection reads, or -1 when it has read nothing yet. */
int ws_guard_fd(void);
/* The upgrade is accepted: owner is passed to the refuse callback. */
void ws_guard_attach(void *owner);
/* The connection is going: the callback is no longer called for it. */
void ws_guard_detach(void);
/* The gateway closed this connection for what the client sent (a rate limit, say):
 * read no more from it. */
void ws_guard_stop(void);

#endif
