/* config: each service's whole configuration as one declarative table of
 * environment variables, validated at start-up.
 *
 *   static const cfg_entry table[] = {
 *       {"PORT", CFG_INT, &cfg.port, "8000", 1, 65535, "HTTP listen port"},
 *   };
 *
 * config_load() reads every variable, reports every bad one (naming it) and fails
 * as a whole: a bad value is never replaced by the default. */
#ifndef TASKSYNC_CONFIG_H
#define TASKSYNC_CONFIG_H

#include "common/util.h"

#include <stdio.h>

typedef enum {
	CFG_INT,    /* long, within [min, max] */
	CFG_STR,    /* char * (owned by the table's storage; config_free releases it);
	               max is the longest length accepted (0: 4096) */
	CFG_BOOL,   /* int: 1/0 from 1|0|true|false|yes|no|on|off */
	CFG_SECRET, /* like CFG_STR but never printed; min is the shortest length */
	CFG_LEVEL,  /* int log level: debug|info|warn|error|off */
} cfg_type;

typedef struct cfg_entry {
	const char *name; /* environment variable */
	cfg_type type;
	void *dst;        /* long * | char ** | int * per type */
	const char *def;  /* default as text; NULL means required */
	long min, max;    /* bounds (CFG_INT); lengths (CFG_STR, CFG_SECRET) */
	const char *help; /* one line for --help */
} cfg_entry;

/* Loads every entry from the environment. Returns 0, or -1 with every problem
 * written into err (one per line, each naming its variable). */
MUST_CHECK int config_load(const cfg_entry *table, size_t n, char *err, size_t errlen);
/* Frees the strings config_load stored. */
void config_free(const cfg_entry *table, size_t n);
/* Prints usage and the table (name, default, bounds, help) for --help. */
void config_print_help(FILE *out, const char *prog, const char *summary, const cfg_entry *table,
                       size_t n);
/* Logs the effective configuration (secrets masked) at info level. */
void config_log(const cfg_entry *table, size_t n);

#endif
