/* fuzz_ws_message: the gateway's parser of the text messages clients send
 * (ws-gateway/src/client_msg.c). Whatever it takes for an object must be one to
 * jansson too, a ping or pong must say so in a string "type", and a subscribe or
 * unsubscribe must carry the very list_id (a UUID) and ticket of the message. */
#include "client_msg.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cmsg out; /* 4 KiB: not on the fuzzer's stack */
	cmsg_kind k = client_msg_parse((const char *)data, size, &out);
	if (k == CMSG_INVALID_JSON)
		return 0;
	json_t *m = json_loadb((const char *)data, size, 0, NULL);
	if (!json_is_object(m))
		abort();
	const char *type = json_string_value(json_object_get(m, "type"));
	if ((k == CMSG_PING && strcmp(type, "ping")) || (k == CMSG_PONG && strcmp(type, "pong")) ||
	    (k == CMSG_NO_TYPE && type) || (k == CMSG_UNKNOWN_TYPE && !type))
		abort();
	if (k == CMSG_SUBSCRIBE || k == CMSG_UNSUBSCRIBE) {
		const char *list = json_string_value(json_object_get(m, "list_id"));
		if (strcmp(type, k == CMSG_SUBSCRIBE ? "subscribe" : "unsubscribe") || !list ||
		    strcmp(list, out.list_id) || !uuid_valid(out.list_id))
			abort();
	}
	if (k == CMSG_SUBSCRIBE) {
		const char *t = json_string_value(json_object_get(m, "ticket"));
		if (!t || strcmp(t, out.ticket) || !out.ticket[0])
			abort();
	}
	if ((k == CMSG_BAD_LIST || k == CMSG_BAD_TICKET) && strcmp(type, "subscribe") &&
	    strcmp(type, "unsubscribe"))
		abort();
	json_decref(m);
	return 0;
}
