#include "fixtures.h"

#include "common/auth.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void unique_name(char *out, size_t len, const char *prefix)
{
	static int n;
	char u[UUID_STR_LEN];
	uuid_new(u);
	snprintf(out, len, "%s-%d-%d-%.8s", prefix, (int)getpid(), ++n, u);
}

char *token_for(const char *user, long ttl)
{
	return auth_mint(TEST_SECRET, user, ttl);
}

double metric_in(const char *text, const char *series)
{
	size_t l = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, series, l) && p[l] == ' ')
			return strtod(p + l + 1, NULL);
	}
	return -1;
}

char *b64url(const char *s)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(s), j = 0;
	char *o = xmalloc(n * 2 + 4);
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)(unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)(unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		o[j++] = t[(v >> 18) & 63];
		o[j++] = t[(v >> 12) & 63];
		if (i + 1 < n)
			o[j++] = t[(v >> 6) & 63];
		if (i + 2 < n)
			o[j++] = t[v & 63];
	}
	o[j] = 0;
	return o;
}
