/* fuzz_event: the Kafka event parser (common/src/event.c), what ws-gateway runs on
 * every record of the topic. An accepted event must also give a WebSocket message
 * that is JSON naming the same event and user, and its own re-serialisation must be
 * accepted again (validation depends on the content, never on the spelling). */
#include "common/event.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > EVENT_MAX_BYTES)
		return -1;
	event ev;
	char err[256];
	if (event_parse((const char *)data, size, &ev, err, sizeof(err))) {
		if (strlen(err) == 0)
			abort(); /* a refusal always says why */
		return 0;
	}
	size_t mlen;
	char *msg = event_ws_message(&ev, &mlen);
	json_t *m = json_loadb(msg, mlen, 0, NULL);
	if (!m ||
	    strcmp(json_string_value(json_object_get(m, "event")), event_type_name(ev.type)) != 0 ||
	    strcmp(json_string_value(json_object_get(m, "user_id")), ev.user_id) != 0)
		abort();
	json_decref(m);
	free(msg);

	char *again = json_dumps(ev.root, JSON_COMPACT);
	event ev2;
	if (!again || event_parse(again, strlen(again), &ev2, err, sizeof(err)))
		abort();
	if (ev2.type != ev.type || ev2.seq != ev.seq || strcmp(ev2.user_id, ev.user_id) != 0)
		abort();
	event_clear(&ev2);
	free(again);
	event_clear(&ev);
	return 0;
}
