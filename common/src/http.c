#include "common/http.h"

#include <civetweb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *http_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	}
	return "Unknown";
}

int http_reply(struct mg_connection *c, int status, const char *ctype, const char *body, size_t len,
               const char *extra_headers)
{
	int no_body = status == 204 || status == 304;
	if (no_body)
		len = 0;
	/* Header and a small body go out in one write: one syscall, one segment. */
	static const char head[] = "HTTP/1.1 %d %s\r\n"
	                           "Content-Type: %s\r\n"
	                           "Content-Length: %zu\r\n"
	                           "Cache-Control: no-store\r\n"
	                           "X-Content-Type-Options: nosniff\r\n"
	                           "%s\r\n";
	const char *extra = extra_headers ? extra_headers : "";
	char buf[8192];
	int n =
	    snprintf(buf, sizeof(buf), head, status, http_status_text(status), ctype, len, extra);
	if (n < 0)
		return status;
	if ((size_t)n < sizeof(buf) && len <= sizeof(buf) - (size_t)n) {
		if (len)
			memcpy(buf + n, body, len);
		mg_write(c, buf, (size_t)n + len);
		return status;
	}
	if ((size_t)n < sizeof(buf))
		mg_write(c, buf, (size_t)n);
	else
		mg_printf(c, head, status, http_status_text(status), ctype, len, extra);
	if (len)
		mg_write(c, body, len);
	return status;
}

int http_reply_json(struct mg_connection *c, int status, json_t *body, const char *extra_headers)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	int rc = http_reply(c, status, "application/json", s ? s : "{}", s ? strlen(s) : 2,
	                    extra_headers);
	free(s);
	return rc;
}

int http_reply_error_ex(struct mg_connection *c, int status, const char *code, json_t *error_extra,
                        json_t *top_extra, const char *message)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message ? message : "");
	if (error_extra)
		json_object_update(err, error_extra);
	json_decref(error_extra);
	json_t *body = json_pack("{s:o}", "error", err);
	if (top_extra)
		json_object_update(body, top_extra);
	json_decref(top_extra);
	return http_reply_json(c, status, body, NULL);
}

int http_reply_error(struct mg_connection *c, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return http_reply_error_ex(c, status, code, NULL, NULL, msg);
}

int http_read_body(struct mg_connection *c, size_t max, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	const struct mg_request_info *ri = mg_get_request_info(c);
	if (ri->content_length > 0 && (size_t)ri->content_length > max)
		return HTTP_BODY_TOO_LARGE;
	size_t cap = ri->content_length > 0 ? (size_t)ri->content_length : 4096;
	char *buf = xmalloc(cap + 1);
	size_t n = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= max + 1) {
				free(buf);
				return HTTP_BODY_TOO_LARGE;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		int r = mg_read(c, buf + n, cap - n);
		if (r < 0) {
			free(buf);
			return HTTP_BODY_IO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			free(buf);
			return HTTP_BODY_TOO_LARGE;
		}
	}
	if (ri->content_length > 0 && n != (size_t)ri->content_length) {
		free(buf);
		return HTTP_BODY_IO;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return HTTP_BODY_OK;
}

int http_query_param(const char *query, const char *name, char *out, size_t outlen)
{
	if (!query)
		return -1;
	int r = mg_get_var(query, strlen(query), name, out, outlen);
	if (r >= 0)
		return r;
	return r == -1 ? -1 : -2;
}

int http_origin_allowed(const char *allowed_list, const char *origin)
{
	if (!origin || !*origin)
		return 1;
	if (!allowed_list)
		return 0;
	const char *p = allowed_list;
	size_t olen = strlen(origin);
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *last = end;
		while (last > p && last[-1] == ' ')
			last--;
		size_t n = (size_t)(last - p);
		if ((n == 1 && *p == '*') || (n == olen && strncasecmp(p, origin, n) == 0))
			return 1;
		p = end;
	}
	return 0;
}
