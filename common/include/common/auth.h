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
/* Extracts the token of an "Authorization: Bearer <token>" header value. Returns
 * a pointer into header, or NULL. */
const char *auth_bearer(const char *header);

#endif
