/* fuzz_ws_message: the gateway's parser of the text messages clients send
 * (ws-gateway/src/client_msg.c). Whatever it takes for an object must be one to
 * jansson too, and a ping or pong must say so in a string "type". */
#include "client_msg.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cmsg_kind k = client_msg_parse((const char *)data, size);
	if (k == CMSG_INVALID_JSON)
		return 0;
	json_t *m = json_loadb((const char *)data, size, 0, NULL);
	if (!json_is_object(m))
		abort();
	const char *type = json_string_value(json_object_get(m, "type"));
	if ((k == CMSG_PING && strcmp(type, "ping")) || (k == CMSG_PONG && strcmp(type, "pong")) ||
	    (k == CMSG_NO_TYPE && type) || (k == CMSG_UNKNOWN_TYPE && !type))
		abort();
	json_decref(m);
	return 0;
}
