/* wsmsg: the client message of an event (what event_ws_message builds), spliced
 * from the event's own bytes instead of re-serialised through jansson.
 *
 * event_parse has validated the document; the values the message carries (task,
 * positions or order, event_id, user_id, seq, origin, timestamp) are copied as the
 * producer wrote them, so the message is the same JSON value as event_ws_message's
 * (the same fields in the same order; only insignificant whitespace and string
 * escapes may differ) at a third of the cost (see bench/gw_costs.c). */
#ifndef GW_WSMSG_H
#define GW_WSMSG_H

#include "common/event.h"
#include "conn.h"

#include <stddef.h>
#include <stdint.h>

/* The text frame of ev's client message, built from raw (the len bytes ev was
 * parsed from), refs=1; NULL when raw cannot be used as it is (a top-level key
 * written with escapes): the caller then builds it with event_ws_message. */
frame *wsmsg_frame(const char *raw, size_t len, const event *ev);

/* What the gateway needs of an event that wsmsg_fast accepted. */
typedef struct wsmsg_event {
	event_type type;
	char user_id[USER_ID_MAX + 1];
	int64_t seq;          /* -1 when absent or null */
	int64_t timestamp_us; /* 0 when absent or null */
} wsmsg_event;

/* Validates raw (len bytes, not necessarily NUL-terminated) and builds its frame in
 * one pass over its bytes, without allocating for its values: the path of nearly
 * every event, in place of event_parse (a jansson document: 12.6 us) followed by
 * wsmsg_frame. It knows the task events (task.created, .updated, .completed,
 * .deleted, .moved) as backend-api writes them: strings without \u escapes, integers
 * of at most 18 digits, no duplicate keys, at most 32 keys an object and 8 levels.
 *
 * Returns the frame (refs=1, the same message wsmsg_frame would build) with e filled
 * when raw is an event that event_parse accepts, with the values event_parse would
 * give. NULL when this pass cannot tell, whether raw is valid or not (another type,
 * an escape, a real number...): the caller must then judge raw with event_parse. It
 * never rejects, so event_parse stays the one definition of a valid event
 * (tests/fuzz/fuzz_wsmsg.c checks that on every input it accepts). */
frame *wsmsg_fast(const char *raw, size_t len, wsmsg_event *e);

#endif
