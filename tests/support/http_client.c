#include "http_client.h"

#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

void http_resp_free(http_resp *r)
{
	if (!r)
		return;
	free(r->headers);
	free(r->body);
	r->headers = r->body = NULL;
	r->body_len = 0;
}

/* Decodes a chunked body in place; returns 1 when complete (length in *out_len),
 * 0 when more bytes are needed, -1 when malformed. */
static int dechunk(const char *in, size_t len, char *out, size_t *out_len)
{
	size_t i = 0, o = 0;
	for (;;) {
		const char *crlf = memmem(in + i, len - i, "\r\n", 2);
		if (!crlf)
			return 0;
		char *end;
		unsigned long n = strtoul(in + i, &end, 16);
		if (end == in + i)
			return -1;
		i = (size_t)(crlf - in) + 2;
		if (n == 0) {
			*out_len = o;
			return 1; /* trailers are not used by the services */
		}
		if (len - i < n + 2)
			return 0;
		memcpy(out + o, in + i, n);
		o += n;
		i += n + 2;
	}
}

/* 1 when buf (len bytes, headers end at hend) holds the whole answer. */
static int complete(const char *buf, size_t len, size_t hend, http_resp *out)
{
	char v[64];
	size_t blen = len - hend;
	if (http_resp_header(out, "Content-Length", v, sizeof(v))) {
		size_t want = strtoul(v, NULL, 10);
		if (blen < want)
			return 0;
		out->body = xmalloc(want + 1);
		memcpy(out->body, buf + hend, want);
		out->body[want] = 0;
		out->body_len = want;
		return 1;
	}
	if (http_resp_header(out, "Transfer-Encoding", v, sizeof(v)) && strcasestr(v, "chunked")) {
		char *b = xmalloc(blen + 1);
		size_t n = 0;
		int r = dechunk(buf + hend, blen, b, &n);
		if (r == 0) {
			free(b);
			return 0;
		}
		if (r < 0)
			n = 0;
		b[n] = 0;
		out->body = b;
		out->body_len = n;
		return 1;
	}
	if (out->status == 204 || out->status == 304)
		return 1;
	return 0; /* until close */
}

int http_request(int port, const char *method, const char *path, const char *headers,
                 const char *body, size_t body_len, int timeout_ms, http_resp *out)
{
	memset(out, 0, sizeof(*out));
	out->status = -1;
	if (timeout_ms <= 0)
		timeout_ms = 15000;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		goto fail;

	size_t hl = strlen(headers ? headers : "");
	size_t reqcap = strlen(method) + strlen(path) + hl + 256 + (body ? body_len : 0);
	char *req = xmalloc(reqcap);
	int n =
	    snprintf(req, reqcap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s",
	             method, path, port, headers ? headers : "");
	size_t rl = (size_t)n;
	if (body)
		rl += (size_t)snprintf(req + rl, reqcap - rl, "Content-Length: %zu\r\n", body_len);
	rl += (size_t)snprintf(req + rl, reqcap - rl, "\r\n");
	if (body) {
		memcpy(req + rl, body, body_len);
		rl += body_len;
	}

	size_t sent = 0, cap = 65536, len = 0, hend = 0;
	char *buf = xmalloc(cap);
	int done = 0;
	int64_t deadline = mono_ms() + timeout_ms;
	/* Reads while writing: a server may answer (413) before taking the whole body. */
	while (!done) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < rl ? POLLOUT : 0)};
		if (poll(&p, 1, (int)left) <= 0)
			break;
		if ((p.revents & POLLOUT) && sent < rl) {
			ssize_t w = send(fd, req + sent, rl - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				sent = rl; /* peer closed: read what it said */
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (cap - len < 4096)
			buf = xrealloc(buf, cap *= 2);
		ssize_t r = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0) {
			/* closed: what arrived is the answer */
			if (hend && !out->body) {
				out->body = xmalloc(len - hend + 1);
				memcpy(out->body, buf + hend, len - hend);
				out->body[len - hend] = 0;
				out->body_len = len - hend;
			}
			done = hend != 0;
			break;
		}
		len += (size_t)r;
		buf[len] = 0;
		if (!hend) {
			char *e = strstr(buf, "\r\n\r\n");
			if (!e)
				continue;
			hend = (size_t)(e - buf) + 4;
			int st = -1;
			if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1) {
				hend = 0;
				break;
			}
			out->status = st;
			char *eol = strstr(buf, "\r\n");
			out->headers = xstrndup(eol + 2, (size_t)(e - eol));
		}
		if (complete(buf, len, hend, out))
			done = 1;
	}
	free(req);
	free(buf);
	close(fd);
	if (!done) {
		http_resp_free(out);
		out->status = -1;
	}
	if (!out->body)
		out->body = xstrdup("");
	return out->status;
fail:
	if (fd >= 0)
		close(fd);
	out->body = xstrdup("");
	return -1;
}

int http_resp_header(const http_resp *r, const char *name, char *out, size_t len)
{
	if (len)
		out[0] = 0;
	size_t nl = strlen(name);
	for (const char *p = r->headers; p && *p;) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			eol = p + strlen(p);
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *e = eol;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			snprintf(out, len, "%.*s", (int)(e - v), v);
			return 1;
		}
		p = *eol ? eol + 2 : eol;
	}
	return 0;
}

int http_get(int port, const char *path, char **body)
{
	http_resp r;
	int st = http_request(port, "GET", path, NULL, NULL, 0, 5000, &r);
	*body = NULL;
	if (st >= 0) {
		*body = r.body;
		r.body = NULL;
	}
	http_resp_free(&r);
	return st;
}
