#include "common/auth.h"
#include "common/json.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *auth_strerror(int code)
{
	switch (code) {
	case AUTH_OK:
		return "ok";
	case AUTH_ERR_MISSING:
		return "missing token";
	case AUTH_ERR_MALFORMED:
		return "invalid token";
	case AUTH_ERR_ALG:
		return "token algorithm must be HS256";
	case AUTH_ERR_EXPIRED:
		return "token expired or without exp";
	case AUTH_ERR_SUBJECT:
		return "token subject is not a valid user id";
	case AUTH_ERR_KIND:
		return "wrong kind of token (a ws ticket is not a session token, nor the reverse)";
	}
	return "unknown error";
}

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Deepest JSON nesting accepted in a token's header or payload. libjwt hands them
 * to jansson, whose recursive parser overflows a small thread stack (civetweb's
 * workers) long before its own depth limit: a crafted token of '[' would crash the
 * process before its signature is checked. */
#define TOKEN_JSON_MAX_DEPTH 16

/* 1 when the base64url text seg (n bytes) decodes to JSON nested at most
 * TOKEN_JSON_MAX_DEPTH deep, 0 otherwise or when not base64url. */
static int segment_shallow(const char *seg, size_t n)
{
	json_nesting nest;
	json_nesting_init(&nest, TOKEN_JSON_MAX_DEPTH);
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)seg[i]);
		if (v < 0)
			return 0;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits < 8)
			continue;
		bits -= 8;
		char ch = (char)((acc >> bits) & 0xff);
		if (json_nesting_feed(&nest, &ch, 1) < 0)
			return 0;
	}
	return 1;
}

/* The header's "alg" is checked before libjwt sees the token, so a token that
 * says "none" (or anything but HS256) never reaches a path that might skip the
 * signature. Returns 1 for HS256, 0 for another algorithm, -1 when malformed. */
static int header_alg_is_hs256(const char *token)
{
	const char *dot = strchr(token, '.');
	if (!dot || dot == token || dot - token > 1024)
		return -1;
	unsigned char head[800];
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;
	for (const char *p = token; p < dot; p++) {
		int v = b64url_val((unsigned char)*p);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			head[n++] = (unsigned char)((acc >> bits) & 0xff);
		}
	}
	json_error_t jerr;
	json_t *h = json_loadb((const char *)head, n, 0, &jerr);
	if (!h || !json_is_object(h)) {
		json_decref(h);
		return -1;
	}
	const char *alg = json_string_value(json_object_get(h, "alg"));
	int ok = alg && strcmp(alg, "HS256") == 0;
	json_decref(h);
	return ok;
}

#define TICKET_USE   "ws-ticket"
#define PRESENCE_USE "list-presence"

/* What a token is, by its "use" claim: a session token has neither of ours. */
enum { KIND_SESSION, KIND_TICKET, KIND_PRESENCE };
static int kind_of(const char *use)
{
	if (use && strcmp(use, TICKET_USE) == 0)
		return KIND_TICKET;
	if (use && strcmp(use, PRESENCE_USE) == 0)
		return KIND_PRESENCE;
	return KIND_SESSION;
}

/* Checks token's form, algorithm, signature, exp and sub, and that it is of kind
 * (KIND_*). On success copies the user id into user and returns the decoded token
 * in *out (caller frees with jwt_free). */
static int verify(const char *secret, const char *token, int kind, char *user, size_t userlen,
                  int64_t *exp_s, jwt_t **out)
{
	if (!token || !*token)
		return AUTH_ERR_MISSING;
	if (strlen(token) > AUTH_TOKEN_MAX)
		return AUTH_ERR_MALFORMED;
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d2 || !segment_shallow(token, (size_t)(d1 - token)) ||
	    !segment_shallow(d1 + 1, (size_t)(d2 - d1 - 1)))
		return AUTH_ERR_MALFORMED;
	int alg = header_alg_is_hs256(token);
	if (alg < 0)
		return AUTH_ERR_MALFORMED;
	if (alg == 0)
		return AUTH_ERR_ALG;
	jwt_t *jwt = NULL;
	if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0 ||
	    !jwt) {
		jwt_free(jwt);
		return AUTH_ERR_MALFORMED;
	}
	int rc = AUTH_OK;
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		rc = AUTH_ERR_ALG;
		goto out;
	}
	errno = 0;
	long exp = jwt_get_grant_int(jwt, "exp");
	if (errno || exp <= 0 || (time_t)exp <= time(NULL)) {
		rc = AUTH_ERR_EXPIRED;
		goto out;
	}
	if (kind_of(jwt_get_grant(jwt, "use")) != kind) {
		rc = AUTH_ERR_KIND;
		goto out;
	}
	const char *sub = jwt_get_grant(jwt, "sub");
	if (!user_id_valid(sub) || strlen(sub) >= userlen) {
		rc = AUTH_ERR_SUBJECT;
		goto out;
	}
	memcpy(user, sub, strlen(sub) + 1);
	if (exp_s)
		*exp_s = (int64_t)exp;
	*out = jwt;
	return AUTH_OK;
out:
	jwt_free(jwt);
	return rc;
}

int auth_verify(const char *secret, const char *token, char *user, size_t userlen)
{
	return auth_verify_exp(secret, token, user, userlen, NULL);
}

int auth_verify_exp(const char *secret, const char *token, char *user, size_t userlen,
                    int64_t *exp_s)
{
	jwt_t *jwt = NULL;
	int rc = verify(secret, token, KIND_SESSION, user, userlen, exp_s, &jwt);
	jwt_free(jwt);
	return rc;
}

int auth_verify_ticket(const char *secret, const char *ticket, auth_ticket *out)
{
	jwt_t *jwt = NULL;
	int rc =
	    verify(secret, ticket, KIND_TICKET, out->user, sizeof(out->user), &out->exp_s, &jwt);
	if (rc != AUTH_OK)
		return rc;
	const char *jti = jwt_get_grant(jwt, "jti");
	errno = 0;
	long sexp = jwt_get_grant_int(jwt, "sexp");
	if (!jti || !uuid_valid(jti) || errno || sexp <= 0 || (time_t)sexp <= time(NULL))
		rc = AUTH_ERR_MALFORMED;
	else {
		snprintf(out->jti, sizeof(out->jti), "%s", jti);
		out->session_exp_s = sexp;
	}
	jwt_free(jwt);
	return rc;
}

char *auth_mint(const char *secret, const char *user, long ttl_s)
{
	if (!user_id_valid(user))
		return NULL;
	jwt_t *jwt = NULL;
	char *out = NULL;
	if (jwt_new(&jwt) != 0)
		return NULL;
	time_t now = time(NULL);
	if (jwt_add_grant(jwt, "sub", user) || jwt_add_grant_int(jwt, "iat", (long)now) ||
	    jwt_add_grant_int(jwt, "exp", (long)now + ttl_s) ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
		goto out;
	out = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	return out;
}

char *auth_mint_ticket(const char *secret, const char *user, int64_t session_exp_s)
{
	time_t now = time(NULL);
	if (!user_id_valid(user) || session_exp_s <= (int64_t)now)
		return NULL;
	int64_t exp = (int64_t)now + AUTH_TICKET_TTL_S;
	if (exp > session_exp_s)
		exp = session_exp_s;
	char jti[UUID_STR_LEN];
	uuid_new(jti);
	jwt_t *jwt = NULL;
	char *out = NULL;
	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "sub", user) || jwt_add_grant(jwt, "use", TICKET_USE) ||
	    jwt_add_grant(jwt, "jti", jti) || jwt_add_grant_int(jwt, "iat", (long)now) ||
	    jwt_add_grant_int(jwt, "exp", (long)exp) ||
	    jwt_add_grant_int(jwt, "sexp", (long)session_exp_s) ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
		goto out;
	out = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	return out;
}

char *auth_mint_presence(const char *secret, const char *user, const char *list_id, long ttl_s)
{
	if (!user_id_valid(user) || !uuid_valid(list_id) || ttl_s <= 0)
		return NULL;
	time_t now = time(NULL);
	jwt_t *jwt = NULL;
	char *out = NULL;
	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "sub", user) || jwt_add_grant(jwt, "use", PRESENCE_USE) ||
	    jwt_add_grant(jwt, "list", list_id) || jwt_add_grant_int(jwt, "iat", (long)now) ||
	    jwt_add_grant_int(jwt, "exp", (long)now + ttl_s) ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
		goto out;
	out = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	return out;
}

int auth_verify_presence(const char *secret, const char *token, auth_presence *out)
{
	jwt_t *jwt = NULL;
	int rc =
	    verify(secret, token, KIND_PRESENCE, out->user, sizeof(out->user), &out->exp_s, &jwt);
	if (rc != AUTH_OK)
		return rc;
	const char *list = jwt_get_grant(jwt, "list");
	if (!list || !uuid_valid(list))
		rc = AUTH_ERR_MALFORMED;
	else
		snprintf(out->list_id, sizeof(out->list_id), "%s", list);
	jwt_free(jwt);
	return rc;
}

const char *auth_bearer(const char *header)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return *header ? header : NULL;
}
