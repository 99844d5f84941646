#include "common/log.h"

#include "common/util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int min_level = LOG_INFO;
static char service_name[64] = "tasksync";

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_setup(const char *service, log_level level)
{
	if (service)
		snprintf(service_name, sizeof(service_name), "%s", service);
	atomic_store(&min_level, level);
}

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_LEN(level_names); i++)
		if (s && strcmp(s, level_names[i]) == 0)
			return (int)i;
	if (s && strcmp(s, "warning") == 0)
		return LOG_WARN;
	return -1;
}

int log_enabled(log_level level)
{
	return level != LOG_OFF && (int)level >= atomic_load(&min_level);
}

void log_json(log_level level, const char *msg, json_t *fields)
{
	if (!log_enabled(level)) {
		json_decref(fields);
		return;
	}
	char ts[40];
	json_t *line = json_object();
	json_object_set_new(line, "ts", json_string(time_iso8601(wall_us(), ts, sizeof(ts))));
	json_object_set_new(line, "level", json_string(level_names[level]));
	json_object_set_new(line, "service", json_string(service_name));
	json_object_set_new(line, "msg", json_string(msg ? msg : ""));
	if (fields && json_is_object(fields)) {
		const char *k;
		json_t *v;
		json_object_foreach(fields, k, v)
		{
			if (!json_object_get(line, k))
				json_object_set(line, k, v);
		}
	}
	json_decref(fields);
	char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (!s)
		return;
	size_t n = strlen(s);
	s[n] = '\n'; /* json_dumps leaves room: replace NUL, write n+1 */
	ssize_t w = write(STDERR_FILENO, s, n + 1);
	(void)w;
	free(s);
}

void log_pack(log_level level, const char *msg, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	json_error_t jerr;
	va_list ap;
	va_start(ap, fmt);
	json_t *fields = json_vpack_ex(&jerr, 0, fmt, ap);
	va_end(ap);
	if (!fields)
		fields = json_pack("{s:s, s:s}", "log_format_error", jerr.text, "log_format", fmt);
	log_json(level, msg, fields);
}
