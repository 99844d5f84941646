/* tasksync-token: prints an HS256 token for a user, signed with JWT_SECRET. */
#include "common/auth.h"
#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *secret;
static long ttl;
static const cfg_entry table[] = {
    {"JWT_SECRET", CFG_SECRET, &secret, "dev-secret-change-me-0123456789abcdef", 16, 4096,
     "HS256 signing secret (the services' JWT_SECRET)"},
    {"TOKEN_TTL", CFG_INT, &ttl, "86400", 1, 31536000, "token lifetime in seconds"},
};

int main(int argc, char **argv)
{
	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		config_print_help(
		    argc == 2 ? stdout : stderr, "tasksync-token USER",
		    "Prints a token for USER (the JWT sub claim), signed HS256 with JWT_SECRET.",
		    table, ARRAY_LEN(table));
		return argc == 2 ? 0 : 2;
	}
	char err[1024];
	if (config_load(table, ARRAY_LEN(table), err, sizeof(err))) {
		fprintf(stderr, "%s", err);
		return 2;
	}
	char *tok = auth_mint(secret, argv[1], ttl);
	if (!tok) {
		fprintf(stderr,
		        "tasksync-token: \"%s\" is not a valid user id (1-128 of A-Z a-z 0-9 . _ @ "
		        ": -)\n",
		        argv[1]);
		config_free(table, ARRAY_LEN(table));
		return 2;
	}
	printf("%s\n", tok);
	free(tok);
	config_free(table, ARRAY_LEN(table));
	return 0;
}
