/* fuzz_auth: the JWT pre-checks and verification (common/src/auth.c): the
 * Authorization header's Bearer token of every API request and the gateway's
 * ?token= and ?ticket=.
 *
 * The first byte picks the mode. Even: the rest is the token as sent. Odd: the rest
 * is a header and a payload (split at the first NUL byte; without one the header is
 * {"alg":"HS256","typ":"JWT"}), which the harness base64url-encodes and signs with
 * the secret, so the claim checks behind the signature are reached too. Whatever
 * passes must name a valid user id. */
#include "common/auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzz-secret-0123456789abcdef";

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tab[v & 63];
	}
	return o;
}

static char *signed_token(const uint8_t *d, size_t n)
{
	static const char def_head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	const uint8_t *head = (const uint8_t *)def_head, *pay = d;
	size_t hn = sizeof(def_head) - 1, pn = n;
	const uint8_t *nul = memchr(d, 0, n);
	if (nul) {
		head = d;
		hn = (size_t)(nul - d);
		pay = nul + 1;
		pn = n - hn - 1;
	}
	char *tok = malloc((hn + pn) * 4 / 3 + 64);
	size_t o = b64url(head, hn, tok);
	tok[o++] = '.';
	o += b64url(pay, pn, tok + o);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, o, mac,
	     &maclen);
	tok[o++] = '.';
	o += b64url(mac, maclen, tok + o);
	tok[o] = '\0';
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 2 * AUTH_TOKEN_MAX)
		return -1;
	char *tok;
	if (data[0] & 1) {
		tok = signed_token(data + 1, size - 1);
	} else {
		tok = malloc(size);
		memcpy(tok, data + 1, size - 1);
		tok[size - 1] = '\0';
	}
	char user[USER_ID_MAX + 1];
	int64_t exp = 0;
	int rc = auth_verify_exp(secret, tok, user, sizeof(user), &exp);
	if (rc == AUTH_OK && (!user_id_valid(user) || exp <= 0))
		abort();
	if (rc != AUTH_OK && strcmp(auth_strerror(rc), "unknown error") == 0)
		abort();
	auth_ticket t;
	rc = auth_verify_ticket(secret, tok, &t);
	if (rc == AUTH_OK && (!user_id_valid(t.user) || !uuid_valid(t.jti)))
		abort();

	size_t n = strlen(tok);
	char *hdr = malloc(n + 8);
	memcpy(hdr, "Bearer ", 7);
	memcpy(hdr + 7, tok, n + 1);
	const char *b = auth_bearer(hdr);
	if (b && (b < hdr || b > hdr + n + 7))
		abort();
	(void)auth_bearer(tok);
	free(hdr);
	free(tok);
	return 0;
}
