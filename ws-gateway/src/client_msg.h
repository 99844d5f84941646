/* client_msg: what a client's text message to the gateway is. The protocol
 * (proto/ws-message.schema.json) has two client messages, {"type":"ping"} and
 * {"type":"pong"}; anything else is answered with an error. Pure, so it can be
 * fuzzed without a server (tests/fuzz/fuzz_ws_message.c). */
#ifndef GW_CLIENT_MSG_H
#define GW_CLIENT_MSG_H

#include <stddef.h>

typedef enum {
	CMSG_PING = 0,     /* answer {"type":"pong"} */
	CMSG_PONG,         /* nothing to do */
	CMSG_INVALID_JSON, /* not a JSON object (or nested too deep) */
	CMSG_NO_TYPE,      /* an object without a string "type" */
	CMSG_UNKNOWN_TYPE, /* a type the gateway does not know */
} cmsg_kind;

/* Classifies one text message of len bytes (not necessarily NUL-terminated). */
cmsg_kind client_msg_parse(const char *data, size_t len);

#endif
