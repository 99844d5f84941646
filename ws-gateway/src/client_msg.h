/* client_msg: what a client's text message to the gateway is. The protocol
 * (proto/ws-message.schema.json) has four client messages: {"type":"ping"},
 * {"type":"pong"}, {"type":"subscribe","list_id":L,"ticket":T} (presence of list
 * L, T from backend-api's POST /api/v1/lists/{id}/presence-ticket) and
 * {"type":"unsubscribe","list_id":L}; anything else is answered with an error.
 * Pure, so it can be fuzzed without a server (tests/fuzz/fuzz_ws_message.c). */
#ifndef GW_CLIENT_MSG_H
#define GW_CLIENT_MSG_H

#include "common/auth.h"
#include "common/util.h"

#include <stddef.h>

typedef enum {
	CMSG_PING = 0,     /* answer {"type":"pong"} */
	CMSG_PONG,         /* nothing to do */
	CMSG_SUBSCRIBE,    /* list_id and ticket filled in */
	CMSG_UNSUBSCRIBE,  /* list_id filled in */
	CMSG_INVALID_JSON, /* not a JSON object (or nested too deep) */
	CMSG_NO_TYPE,      /* an object without a string "type" */
	CMSG_UNKNOWN_TYPE, /* a type the gateway does not know */
	CMSG_BAD_LIST,     /* subscribe/unsubscribe without a UUID string "list_id" */
	CMSG_BAD_TICKET,   /* subscribe without a string "ticket" of 1..AUTH_TOKEN_MAX bytes */
} cmsg_kind;

typedef struct cmsg {
	char list_id[UUID_STR_LEN];      /* CMSG_SUBSCRIBE, CMSG_UNSUBSCRIBE */
	char ticket[AUTH_TOKEN_MAX + 1]; /* CMSG_SUBSCRIBE */
} cmsg;

/* Classifies one text message of len bytes (not necessarily NUL-terminated) and
 * fills out with the fields its kind carries. */
cmsg_kind client_msg_parse(const char *data, size_t len, cmsg *out);

#endif
