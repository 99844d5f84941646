/* fixtures: small shared values and helpers of the integration tests: the JWT
 * secret the services are started with, tokens, unique names, /metrics lookups. */
#ifndef TASKSYNC_TEST_FIXTURES_H
#define TASKSYNC_TEST_FIXTURES_H

#include <stddef.h>

#define TEST_SECRET "test-secret-0123456789abcdef"

/* "<prefix>-<pid>-<n>-<8 hex>": unique to this run (topics, users, names). */
void unique_name(char *out, size_t len, const char *prefix);
/* A token for user (HS256 with TEST_SECRET), valid for ttl seconds (negative:
 * already expired). Caller frees. */
char *token_for(const char *user, long ttl);
/* base64url without padding of the text s (hand-made JWT parts). Caller frees. */
char *b64url(const char *s);
/* The value of an unlabelled (or exactly labelled) series in a /metrics text; -1
 * when absent. */
double metric_in(const char *text, const char *series);

#endif
