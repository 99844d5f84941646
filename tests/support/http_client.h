/* http_client: a small blocking HTTP/1.1 client for tests. One request per
 * connection (Connection: close) to 127.0.0.1:port; the answer is read whole
 * (Content-Length, chunked or until close) within a deadline. Thread-safe: no
 * shared state. */
#ifndef TASKSYNC_TEST_HTTP_CLIENT_H
#define TASKSYNC_TEST_HTTP_CLIENT_H

#include <stddef.h>

typedef struct http_resp {
	int status;      /* -1 when there was no (parsable) answer */
	char *headers;   /* the header lines after the status line, NUL-terminated */
	char *body;      /* the decoded body, NUL-terminated (never NULL after a request) */
	size_t body_len; /* bytes in body */
} http_resp;

/* Sends method path with headers (NULL or complete lines "Name: value\r\n") and a
 * body of body_len bytes (body NULL: none; a Content-Length is added when body is
 * not NULL) and reads the answer for at most timeout_ms (0: 15 s). Returns the
 * status (also in out->status), -1 on a connection error or timeout. Release out
 * with http_resp_free whatever the result. */
int http_request(int port, const char *method, const char *path, const char *headers,
                 const char *body, size_t body_len, int timeout_ms, http_resp *out);
void http_resp_free(http_resp *r);

/* Copies the value of header name (case-insensitive, first occurrence, trimmed)
 * into out. Returns 1 when present, 0 otherwise (out is then ""). */
int http_resp_header(const http_resp *r, const char *name, char *out, size_t len);

/* GET path; returns the status (-1 on error) and the body in *body (caller frees;
 * NULL on error). */
int http_get(int port, const char *path, char **body);

#endif
