/* http: civetweb reply helpers shared by both services. Every error body is
 * {"error":{"code":"...","message":"..."}}. Each reply function returns the status
 * it sent, so a handler can end with `return http_reply_json(conn, 201, body);`. */
#ifndef TASKSYNC_HTTP_H
#define TASKSYNC_HTTP_H

#include "common/util.h"

#include <jansson.h>
#include <stddef.h>

struct mg_connection;

/* Reason phrase for a status code. */
const char *http_status_text(int status);

/* Sends status with body of len bytes and Content-Type ctype. extra_headers is
 * NULL or complete header lines ("ETag: \"3\"\r\n"). */
int http_reply(struct mg_connection *c, int status, const char *ctype, const char *body, size_t len,
               const char *extra_headers);
/* Sends body as compact JSON. Steals the reference to body (may be NULL: "{}"). */
int http_reply_json(struct mg_connection *c, int status, json_t *body, const char *extra_headers);
/* Sends {"error":{"code":code,"message":printf(fmt, ...)}}. */
int http_reply_error(struct mg_connection *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with extra members merged into the top-level object (stolen; e.g. "field"
 * inside error is added by passing {"field":"title"} as error_extra). */
int http_reply_error_ex(struct mg_connection *c, int status, const char *code, json_t *error_extra,
                        json_t *top_extra, const char *message);

enum {
	HTTP_BODY_OK = 0,
	HTTP_BODY_TOO_LARGE = -1, /* more than max bytes: reply 413 */
	HTTP_BODY_IO = -2,        /* the client went away or sent less than announced */
};
/* Reads the whole request body (at most max bytes) into a NUL-terminated malloc'd
 * buffer. Returns HTTP_BODY_OK or a negative code; *out is NULL on failure. */
MUST_CHECK int http_read_body(struct mg_connection *c, size_t max, char **out, size_t *len);

/* The value of query parameter name, URL-decoded into out. Returns its length,
 * -1 when absent, -2 when longer than outlen - 1. */
int http_query_param(const char *query, const char *name, char *out, size_t outlen);

/* 1 when origin is allowed by the comma-separated list (entries compared exactly;
 * "*" allows any). A request without Origin (not a browser) is allowed. */
int http_origin_allowed(const char *allowed_list, const char *origin);

#endif
