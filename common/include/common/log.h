/* log: one JSON object per line on stderr.
 *
 *   log_info("consumer started", "{s:s, s:i}", "topic", topic, "partitions", n);
 *
 * The field format is jansson's json_pack() format (an object, "{}" for none).
 * The level is checked before anything is formatted. Thread-safe: each line is
 * written with one write(2). */
#ifndef TASKSYNC_LOG_H
#define TASKSYNC_LOG_H

#include <jansson.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level;

/* Sets the process-wide level and the "service" field of every line. */
void log_setup(const char *service, log_level level);
/* "debug"|"info"|"warn"|"error"|"off" -> level; -1 when unknown. */
int log_level_parse(const char *s);
int log_enabled(log_level level);

/* Writes one line. fmt/... are a json_pack() object format and its arguments; a
 * format error is logged as such rather than lost. */
void log_pack(log_level level, const char *msg, const char *fmt, ...);
/* Writes one line with the fields of obj (may be NULL). Steals the reference. */
void log_json(log_level level, const char *msg, json_t *obj);

#define log_at(lvl, msg, ...)                                                                      \
	do {                                                                                       \
		if (log_enabled(lvl))                                                              \
			log_pack(lvl, msg, __VA_ARGS__);                                           \
	} while (0)
#define log_debug(msg, ...) log_at(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_at(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_at(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, msg, __VA_ARGS__)

#endif
