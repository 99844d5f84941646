/* auth: HS256 JSON Web Tokens (libjwt). The user id is the "sub" claim; "exp" is
 * required and enforced; every algorithm but HS256 (including "none") is refused. */
#ifndef TASKSYNC_AUTH_H
#define TASKSYNC_AUTH_H

#include "common/util.h"

#include <stddef.h>

enum {
	AUTH_OK = 0,
	AUTH_ERR_MISSING = -1,   /* no token */
	AUTH_ERR_MALFORMED = -2, /* not a JWT, or a bad signature */
	AUTH_ERR_ALG = -3,       /* not HS256 */
	AUTH_ERR_EXPIRED = -4,   /* exp in the past, or no exp */
	AUTH_ERR_SUBJECT = -5,   /* no sub, or not a valid user id */
	AUTH_ERR_KIND = -6,      /* a ticket where a session token belongs, or the reverse */
};

/* Longest token accepted (bytes). */
#define AUTH_TOKEN_MAX 4096

/* Verifies token with secret. On success copies the user id into user (at least
 * USER_ID_MAX + 1 bytes) and returns AUTH_OK; otherwise a negative AUTH_ERR_*.
 * Thread-safe. */
MUST_CHECK int auth_verify(const char *secret, const char *token, char *user, size_t userlen);
/* auth_verify that also returns the token's "exp" (seconds since the epoch) in
 * *exp_s on success (exp_s may be NULL). */
MUST_CHECK int auth_verify_exp(const char *secret, const char *token, char *user, size_t userlen,
                               int64_t *exp_s);
/* A short lower-case text for an AUTH_ERR_* code. */
const char *auth_strerror(int code);
/* Returns a new HS256 token for user valid for ttl_s seconds (caller frees), or
 * NULL when user is not a valid user id. */
char *auth_mint(const char *secret, const char *user, long ttl_s);
/* WebSocket tickets. backend-api mints one for a signed-in session (POST
 * /api/v1/ws-ticket) and the browser puts it in the WebSocket URL instead of the
 * session token: it is valid AUTH_TICKET_TTL_S seconds, carries a UUID "jti" that
 * the gateway accepts once, and "sexp", the session token's own exp, at which the
 * gateway closes the socket (4001) as it would for the session token. The claim
 * "use":"ws-ticket" tells the two apart: auth_verify refuses a ticket and
 * auth_verify_ticket a session token (AUTH_ERR_KIND), so a ticket that leaks from
 * a URL never works as an API token. */
#define AUTH_TICKET_TTL_S 30

typedef struct {
	char user[USER_ID_MAX + 1];
	char jti[UUID_STR_LEN];
	int64_t exp_s;         /* the ticket's own expiry */
	int64_t session_exp_s; /* the session's expiry: the socket's end */
} auth_ticket;

/* A new ticket for user whose session token expires at session_exp_s (caller
 * frees); it expires AUTH_TICKET_TTL_S from now or at session_exp_s, whichever is
 * first. NULL when user is not a valid user id or the session has expired. */
char *auth_mint_ticket(const char *secret, const char *user, int64_t session_exp_s);
/* Verifies a ticket (not its single use: the caller remembers out->jti until
 * out->exp_s). Returns AUTH_OK or a negative AUTH_ERR_*. Thread-safe. */
MUST_CHECK int auth_verify_ticket(const char *secret, const char *ticket, auth_ticket *out);

/* Presence proofs (shared lists, issue 13). backend-api mints one for a member of a
 * list (POST /api/v1/lists/{id}/presence-ticket): "use":"list-presence", "list":
 * the list id, a short exp. A gateway that verifies it knows the socket's user is a
 * member of that list (at minting time) without any membership table, and may tell
 * that socket who else of the list is online. Session tokens, tickets and proofs
 * are refused for each other (AUTH_ERR_KIND). */
typedef struct {
	char user[USER_ID_MAX + 1];
	char list_id[UUID_STR_LEN];
	int64_t exp_s;
} auth_presence;

/* A proof that user is a member of list_id, valid ttl_s seconds (caller frees);
 * NULL when user or list_id is invalid. */
char *auth_mint_presence(const char *secret, const char *user, const char *list_id, long ttl_s);
/* Verifies a presence proof. AUTH_OK or a negative AUTH_ERR_*. Thread-safe. */
MUST_CHECK int auth_verify_presence(const char *secret, const char *token, auth_presence *out);

/* Extracts the token of an "Authorization: Bearer <token>" header value. Returns
 * a pointer into header, or NULL. */
const char *auth_bearer(const char *header);

#endif
