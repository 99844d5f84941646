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
