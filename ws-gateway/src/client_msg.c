#include "client_msg.h"

#include "common/json.h"

#include <string.h>

/* The fields of subscribe/unsubscribe into out; the kind to return. */
static cmsg_kind presence_fields(json_t *m, int subscribe, cmsg *out)
{
	json_t *l = json_object_get(m, "list_id");
	const char *list = json_string_value(l);
	if (!list || json_string_length(l) != UUID_STR_LEN - 1 || !uuid_valid(list))
		return CMSG_BAD_LIST;
	memcpy(out->list_id, list, UUID_STR_LEN);
	if (!subscribe)
		return CMSG_UNSUBSCRIBE;
	json_t *t = json_object_get(m, "ticket");
	const char *ticket = json_string_value(t);
	size_t tl = ticket ? json_string_length(t) : 0;
	if (!ticket || tl == 0 || tl > AUTH_TOKEN_MAX || strlen(ticket) != tl)
		return CMSG_BAD_TICKET;
	memcpy(out->ticket, ticket, tl + 1);
	return CMSG_SUBSCRIBE;
}

cmsg_kind client_msg_parse(const char *data, size_t len, cmsg *out)
{
	json_error_t jerr;
	out->list_id[0] = '\0';
	out->ticket[0] = '\0';
	json_t *m = json_load_untrusted(data, len, 0, &jerr);
	if (!m || !json_is_object(m)) {
		json_decref(m);
		return CMSG_INVALID_JSON;
	}
	const char *type = json_string_value(json_object_get(m, "type"));
	cmsg_kind k = !type                          ? CMSG_NO_TYPE
	              : !strcmp(type, "ping")        ? CMSG_PING
	              : !strcmp(type, "pong")        ? CMSG_PONG
	              : !strcmp(type, "subscribe")   ? presence_fields(m, 1, out)
	              : !strcmp(type, "unsubscribe") ? presence_fields(m, 0, out)
	                                             : CMSG_UNKNOWN_TYPE;
	json_decref(m);
	return k;
}
