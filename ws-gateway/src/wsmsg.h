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

/* The text frame of ev's client message, built from raw (the len bytes ev was
 * parsed from), refs=1; NULL when raw cannot be used as it is (a top-level key
 * written with escapes): the caller then builds it with event_ws_message. */
frame *wsmsg_frame(const char *raw, size_t len, const event *ev);

#endif
