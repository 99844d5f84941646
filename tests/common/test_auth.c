#include "common/auth.h"
#include "suites.h"

#include <jwt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *SECRET = "test-secret-0123456789";

/* A token signed by libjwt directly, so tests can choose alg and claims. */
static char *raw_token(jwt_alg_t alg, const char *key, const char *sub, long exp)
{
	jwt_t *j = NULL;
	ck_assert_int_eq(jwt_new(&j), 0);
	if (sub)
		jwt_add_grant(j, "sub", sub);
	if (exp)
		jwt_add_grant_int(j, "exp", exp);
	jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0);
	char *t = jwt_encode_str(j);
	jwt_free(j);
	ck_assert_ptr_nonnull(t);
	return t;
}

START_TEST(mint_and_verify)
{
	char user[USER_ID_MAX + 1];
	char *t = auth_mint(SECRET, "alice", 60);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_OK);
	ck_assert_str_eq(user, "alice");
	ck_assert_int_eq(auth_verify("another-secret-0000", t, user, sizeof(user)),
	                 AUTH_ERR_MALFORMED);
	free(t);
	ck_assert_ptr_null(auth_mint(SECRET, "bad user", 60));
	/* auth_verify_exp hands back the exp the gateway closes the socket at */
	int64_t exp = 0, before = (int64_t)time(NULL);
	t = auth_mint(SECRET, "alice", 60);
	ck_assert_int_eq(auth_verify_exp(SECRET, t, user, sizeof(user), &exp), AUTH_OK);
	ck_assert_int_ge(exp, before + 60);
	ck_assert_int_le(exp, (int64_t)time(NULL) + 60);
	free(t);
}
END_TEST

START_TEST(expired_and_missing_exp)
{
	char user[USER_ID_MAX + 1];
	char *t = auth_mint(SECRET, "alice", -10);
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_ERR_EXPIRED);
	free(t);
	t = raw_token(JWT_ALG_HS256, SECRET, "alice", 0);
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_ERR_EXPIRED);
	free(t);
}
END_TEST

START_TEST(other_algorithms_refused)
{
	char user[USER_ID_MAX + 1];
	long exp = (long)time(NULL) + 60;
	char *t = raw_token(JWT_ALG_HS512, SECRET, "alice", exp);
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_ERR_ALG);
	free(t);
	/* {"alg":"none","typ":"JWT"}.{"sub":"alice","exp":9999999999}. */
	const char *none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	                   "eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.";
	ck_assert_int_eq(auth_verify(SECRET, none, user, sizeof(user)), AUTH_ERR_ALG);
}
END_TEST

START_TEST(malformed_tokens)
{
	char user[USER_ID_MAX + 1];
	const char *bad[] = {"x", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30.", "%%%.%%%.%%%"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ck_assert_msg(auth_verify(SECRET, bad[i], user, sizeof(user)) < 0, "%s", bad[i]);
	ck_assert_int_eq(auth_verify(SECRET, "", user, sizeof(user)), AUTH_ERR_MISSING);
	ck_assert_int_eq(auth_verify(SECRET, NULL, user, sizeof(user)), AUTH_ERR_MISSING);
	/* Tampered payload: the signature no longer matches. */
	char *t = auth_mint(SECRET, "alice", 60);
	char *dot = strchr(t, '.');
	dot[2] = dot[2] == 'A' ? 'B' : 'A';
	ck_assert_int_lt(auth_verify(SECRET, t, user, sizeof(user)), 0);
	free(t);
}
END_TEST

static void *verify_deep(void *arg)
{
	char user[USER_ID_MAX + 1];
	return (void *)(intptr_t)auth_verify(SECRET, arg, user, sizeof(user));
}

/* A token whose payload (or header) nests JSON thousands deep is refused before
 * any JSON parser sees it, even on a thread with a small stack (civetweb's). */
START_TEST(deeply_nested_token_refused)
{
	/* base64url("[[[...") is "W1tb" repeated; {"alg":"HS256","typ":"JWT"} header. */
	const char *head = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
	size_t reps = 1000;
	char *tok = malloc(strlen(head) + reps * 4 + 16);
	char *p = tok + sprintf(tok, "%s.", head);
	for (size_t i = 0; i < reps; i++)
		p += sprintf(p, "W1tb");
	strcpy(p, ".sig");
	char *tok2 = malloc(reps * 4 + 64);
	p = tok2;
	for (size_t i = 0; i < reps; i++)
		p += sprintf(p, "W1tb");
	strcpy(p, ".e30.sig");
	const char *toks[] = {tok, tok2};
	for (size_t i = 0; i < ARRAY_LEN(toks); i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		pthread_t th;
		ck_assert_int_eq(pthread_create(&th, &attr, verify_deep, (void *)toks[i]), 0);
		void *rc;
		pthread_join(th, &rc);
		pthread_attr_destroy(&attr);
		ck_assert_int_eq((int)(intptr_t)rc, AUTH_ERR_MALFORMED);
	}
	free(tok);
	free(tok2);
}
END_TEST

START_TEST(subject_checked)
{
	char user[USER_ID_MAX + 1];
	long exp = (long)time(NULL) + 60;
	char *t = raw_token(JWT_ALG_HS256, SECRET, "bad user", exp);
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_ERR_SUBJECT);
	free(t);
	t = raw_token(JWT_ALG_HS256, SECRET, NULL, exp);
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_ERR_SUBJECT);
	free(t);
}
END_TEST

START_TEST(bearer_header)
{
	ck_assert_str_eq(auth_bearer("Bearer abc"), "abc");
	ck_assert_str_eq(auth_bearer("bearer   abc"), "abc");
	ck_assert_ptr_null(auth_bearer("Basic abc"));
	ck_assert_ptr_null(auth_bearer("Bearer "));
	ck_assert_ptr_null(auth_bearer(NULL));
}
END_TEST

/* A ticket is valid once (the gateway's job), 30 s at most and never past the
 * session it was minted for; tickets and session tokens never pass for each other. */
START_TEST(ws_tickets)
{
	char user[USER_ID_MAX + 1];
	auth_ticket tk;
	int64_t now = (int64_t)time(NULL);
	char *t = auth_mint_ticket(SECRET, "alice", now + 3600);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(auth_verify_ticket(SECRET, t, &tk), AUTH_OK);
	ck_assert_str_eq(tk.user, "alice");
	ck_assert(uuid_valid(tk.jti));
	ck_assert_int_eq(tk.session_exp_s, now + 3600);
	ck_assert(tk.exp_s >= now + AUTH_TICKET_TTL_S - 1 &&
	          tk.exp_s <= now + AUTH_TICKET_TTL_S + 1);
	/* a ticket is no session token */
	ck_assert_int_eq(auth_verify(SECRET, t, user, sizeof(user)), AUTH_ERR_KIND);
	ck_assert_int_eq(auth_verify_ticket("another-secret-0000", t, &tk), AUTH_ERR_MALFORMED);
	auth_ticket tk2;
	char *t2 = auth_mint_ticket(SECRET, "alice", now + 3600);
	ck_assert_int_eq(auth_verify_ticket(SECRET, t2, &tk2), AUTH_OK);
	ck_assert_str_ne(tk.jti, tk2.jti);
	free(t2);
	free(t);
	/* nor a session token a ticket */
	t = auth_mint(SECRET, "alice", 60);
	ck_assert_int_eq(auth_verify_ticket(SECRET, t, &tk), AUTH_ERR_KIND);
	free(t);
	/* a session ending in 5 s gives a ticket of 5 s; an ended one none */
	t = auth_mint_ticket(SECRET, "alice", now + 5);
	ck_assert_int_eq(auth_verify_ticket(SECRET, t, &tk), AUTH_OK);
	ck_assert_int_le(tk.exp_s, now + 5);
	free(t);
	ck_assert_ptr_null(auth_mint_ticket(SECRET, "alice", now - 1));
	ck_assert_ptr_null(auth_mint_ticket(SECRET, "bad user", now + 60));
	/* a hand-made "ticket" without jti or sexp is refused */
	jwt_t *j = NULL;
	ck_assert_int_eq(jwt_new(&j), 0);
	jwt_add_grant(j, "sub", "alice");
	jwt_add_grant(j, "use", "ws-ticket");
	jwt_add_grant_int(j, "exp", (long)now + 30);
	jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET));
	t = jwt_encode_str(j);
	jwt_free(j);
	ck_assert_int_eq(auth_verify_ticket(SECRET, t, &tk), AUTH_ERR_MALFORMED);
	free(t);
}
END_TEST

/* Presence proofs: verified as such only; never a session token or a ticket, and
 * neither of those is a proof. */
START_TEST(presence_proofs)
{
	const char *list = "3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f";
	char *p = auth_mint_presence(SECRET, "bob", list, 60);
	ck_assert_ptr_nonnull(p);
	auth_presence pr;
	ck_assert_int_eq(auth_verify_presence(SECRET, p, &pr), AUTH_OK);
	ck_assert_str_eq(pr.user, "bob");
	ck_assert_str_eq(pr.list_id, list);
	ck_assert(pr.exp_s > 0);
	char user[USER_ID_MAX + 1];
	ck_assert_int_eq(auth_verify(SECRET, p, user, sizeof(user)), AUTH_ERR_KIND);
	auth_ticket tk;
	ck_assert_int_eq(auth_verify_ticket(SECRET, p, &tk), AUTH_ERR_KIND);
	ck_assert_int_ne(auth_verify_presence("another-secret-0123456789", p, &pr), AUTH_OK);
	free(p);
	char *s = auth_mint(SECRET, "bob", 60);
	ck_assert_int_eq(auth_verify_presence(SECRET, s, &pr), AUTH_ERR_KIND);
	free(s);
	char *t = auth_mint_ticket(SECRET, "bob", (int64_t)time(NULL) + 60);
	ck_assert_int_eq(auth_verify_presence(SECRET, t, &pr), AUTH_ERR_KIND);
	free(t);
	ck_assert_ptr_null(auth_mint_presence(SECRET, "bob", "not-a-list", 60));
	ck_assert_ptr_null(auth_mint_presence(SECRET, "b\"ob", list, 60));
}
END_TEST

Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, mint_and_verify);
	tcase_add_test(tc, expired_and_missing_exp);
	tcase_add_test(tc, other_algorithms_refused);
	tcase_add_test(tc, malformed_tokens);
	tcase_add_test(tc, subject_checked);
	tcase_add_test(tc, deeply_nested_token_refused);
	tcase_add_test(tc, bearer_header);
	tcase_add_test(tc, ws_tickets);
	tcase_add_test(tc, presence_proofs);
	suite_add_tcase(s, tc);
	return s;
}
