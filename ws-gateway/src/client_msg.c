#include "client_msg.h"

#include "common/json.h"

#include <string.h>

cmsg_kind client_msg_parse(const char *data, size_t len)
{
	json_error_t jerr;
	json_t *m = json_load_untrusted(data, len, 0, &jerr);
	if (!m || !json_is_object(m)) {
		json_decref(m);
		return CMSG_INVALID_JSON;
	}
	const char *type = json_string_value(json_object_get(m, "type"));
	cmsg_kind k = !type                   ? CMSG_NO_TYPE
	              : !strcmp(type, "ping") ? CMSG_PING
	              : !strcmp(type, "pong") ? CMSG_PONG
	                                      : CMSG_UNKNOWN_TYPE;
	json_decref(m);
	return k;
}
