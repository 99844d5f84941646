#include "common/config.h"

#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void append(char *err, size_t errlen, const char *name, const char *what)
{
	size_t used = strlen(err);
	if (used < errlen)
		snprintf(err + used, errlen - used, "%s: %s\n", name, what);
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static int load_one(const cfg_entry *e, const char *val, char *err, size_t errlen)
{
	char msg[256];
	switch (e->type) {
	case CFG_INT: {
		char *end;
		errno = 0;
		long v = strtol(val, &end, 10);
		if (errno || end == val || *end != '\0') {
			snprintf(msg, sizeof(msg), "\"%.64s\" is not an integer", val);
			append(err, errlen, e->name, msg);
			return -1;
		}
		if (v < e->min || v > e->max) {
			snprintf(msg, sizeof(msg), "%ld is out of range [%ld, %ld]", v, e->min,
			         e->max);
			append(err, errlen, e->name, msg);
			return -1;
		}
		*(long *)e->dst = v;
		return 0;
	}
	case CFG_BOOL:
		if (parse_bool(val, (int *)e->dst)) {
			snprintf(msg, sizeof(msg), "\"%.64s\" is not a boolean (1|0|true|false)",
			         val);
			append(err, errlen, e->name, msg);
			return -1;
		}
		return 0;
	case CFG_LEVEL: {
		int lvl = log_level_parse(val);
		if (lvl < 0) {
			snprintf(msg, sizeof(msg),
			         "\"%.64s\" is not one of debug|info|warn|error|off", val);
			append(err, errlen, e->name, msg);
			return -1;
		}
		*(int *)e->dst = lvl;
		return 0;
	}
	case CFG_STR:
	case CFG_SECRET: {
		size_t len = strlen(val);
		size_t maxlen = e->max > 0 ? (size_t)e->max : 4096;
		if (len < (size_t)(e->min > 0 ? e->min : 0)) {
			snprintf(msg, sizeof(msg), "must be at least %ld characters", e->min);
			append(err, errlen, e->name, msg);
			return -1;
		}
		if (len > maxlen) {
			snprintf(msg, sizeof(msg), "must be at most %zu characters", maxlen);
			append(err, errlen, e->name, msg);
			return -1;
		}
		char **dst = (char **)e->dst;
		free(*dst);
		*dst = xstrdup(val);
		return 0;
	}
	}
	return -1;
}

int config_load(const cfg_entry *table, size_t n, char *err, size_t errlen)
{
	int bad = 0;
	if (errlen)
		err[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const cfg_entry *e = &table[i];
		const char *val = getenv(e->name);
		if (!val || (val[0] == '\0' && e->type != CFG_STR)) {
			if (!e->def) {
				append(err, errlen, e->name, "is required");
				bad = 1;
				continue;
			}
			val = e->def;
		}
		if (load_one(e, val, err, errlen))
			bad = 1;
	}
	return bad ? -1 : 0;
}

void config_free(const cfg_entry *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].type == CFG_STR || table[i].type == CFG_SECRET) {
			char **dst = (char **)table[i].dst;
			free(*dst);
			*dst = NULL;
		}
	}
}

void config_print_help(FILE *out, const char *prog, const char *summary, const cfg_entry *table,
                       size_t n)
{
	fprintf(out, "usage: %s [--help]\n\n%s\n\nConfiguration (environment variables):\n", prog,
	        summary);
	for (size_t i = 0; i < n; i++) {
		const cfg_entry *e = &table[i];
		char bounds[64] = "";
		if (e->type == CFG_INT)
			snprintf(bounds, sizeof(bounds), " [%ld..%ld]", e->min, e->max);
		fprintf(out, "  %-26s %s\n  %-26s default: %s%s\n", e->name, e->help, "",
		        e->def ? (e->def[0] ? e->def : "(empty)") : "(required)", bounds);
	}
}

void config_log(const cfg_entry *table, size_t n)
{
	json_t *fields = json_object();
	for (size_t i = 0; i < n; i++) {
		const cfg_entry *e = &table[i];
		switch (e->type) {
		case CFG_INT:
			json_object_set_new(fields, e->name, json_integer(*(long *)e->dst));
			break;
		case CFG_BOOL:
			json_object_set_new(fields, e->name, json_boolean(*(int *)e->dst));
			break;
		case CFG_LEVEL:
			json_object_set_new(fields, e->name, json_integer(*(int *)e->dst));
			break;
		case CFG_STR:
			json_object_set_new(fields, e->name, json_string(*(char **)e->dst));
			break;
		case CFG_SECRET:
			json_object_set_new(fields, e->name, json_string("(set)"));
			break;
		}
	}
	log_json(LOG_INFO, "configuration", json_pack("{s:o}", "config", fields));
}
