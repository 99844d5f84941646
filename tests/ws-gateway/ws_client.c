#include "ws_client.h"

#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ws_client {
	int fd;
	unsigned char *buf; /* bytes read, not yet consumed */
	size_t len, cap;
	int close_code;
	char close_reason[128];
	int auto_pong;
};

static int send_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n) {
		ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads more bytes into buf within the deadline. 1 read, 0 timeout, -1 EOF/error. */
static int fill(ws_client *c, long long deadline)
{
	long long left = deadline - mono_ms();
	if (left < 0)
		left = 0;
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int pr = poll(&p, 1, (int)left);
	if (pr == 0)
		return 0;
	if (pr < 0)
		return errno == EINTR ? 0 : -1;
	if (c->cap - c->len < 65536) {
		c->cap = c->cap * 2 + 65536;
		c->buf = realloc(c->buf, c->cap);
	}
	ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 1;
}

ws_client *ws_open(int port, const char *target, const char *origin, int rcvbuf, int *status)
{
	return ws_open_host("127.0.0.1", port, target, origin, rcvbuf, status);
}

ws_client *ws_open_host(const char *host, int port, const char *target, const char *origin,
                        int rcvbuf, int *status)
{
	*status = -1;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*a6);
	} else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		sl = sizeof(*a4);
	} else {
		return NULL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return NULL;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		close(fd);
		return NULL;
	}
	ws_client *c = calloc(1, sizeof(*c));
	c->fd = fd;
	c->auto_pong = 1;
	char req[8192];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
	                 target, ss.ss_family == AF_INET6 ? "[" : "", host,
	                 ss.ss_family == AF_INET6 ? "]" : "", port, origin ? "Origin: " : "",
	                 origin ? origin : "", origin ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req) || send_all(fd, req, (size_t)n))
		goto fail;
	long long deadline = mono_ms() + 10000;
	char *end = NULL;
	while (!end) {
		if (fill(c, deadline) <= 0)
			goto fail;
		c->buf[c->len < c->cap ? c->len : c->cap - 1] = 0;
		end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	}
	if (sscanf((char *)c->buf, "HTTP/1.1 %d", status) != 1)
		goto fail;
	if (*status != 101)
		goto fail;
	size_t hl = (size_t)(end + 4 - (char *)c->buf);
	memmove(c->buf, c->buf + hl, c->len - hl);
	c->len -= hl;
	return c;
fail:
	ws_free(c);
	return NULL;
}

void ws_free(ws_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

int ws_send(ws_client *c, int opcode, const void *data, size_t len)
{
	unsigned char *f = malloc(len + 14);
	size_t hl = 2;
	f[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		f[1] = (unsigned char)(0x80 | len);
	} else if (len <= 0xffff) {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(len >> 8);
		f[3] = (unsigned char)len;
		hl = 4;
	} else {
		f[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			f[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	unsigned char mask[4] = {0x12, 0x34, 0x56, (unsigned char)rand()};
	memcpy(f + hl, mask, 4);
	hl += 4;
	for (size_t i = 0; i < len; i++)
		f[hl + i] = ((const unsigned char *)data)[i] ^ mask[i & 3];
	int r = send_all(c->fd, f, hl + len);
	free(f);
	return r;
}

int ws_send_text(ws_client *c, const char *text)
{
	return ws_send(c, 0x1, text, strlen(text));
}

int ws_recv(ws_client *c, int timeout_ms, char **data, size_t *len)
{
	long long deadline = mono_ms() + timeout_ms;
	*data = NULL;
	*len = 0;
	for (;;) {
		if (c->len >= 2) {
			size_t hl = 2;
			uint64_t pl = c->buf[1] & 0x7f;
			if (c->buf[1] & 0x80)
				return WS_RECV_ERROR; /* servers never mask */
			if (pl == 126) {
				hl = 4;
				if (c->len >= 4)
					pl = ((uint64_t)c->buf[2] << 8) | c->buf[3];
			} else if (pl == 127) {
				hl = 10;
				if (c->len >= 10) {
					pl = 0;
					for (int i = 0; i < 8; i++)
						pl = (pl << 8) | c->buf[2 + i];
				}
			}
			if (c->len >= hl && c->len >= hl + pl) {
				int op = c->buf[0] & 0x0f;
				*data = malloc(pl + 1);
				memcpy(*data, c->buf + hl, pl);
				(*data)[pl] = 0;
				*len = pl;
				memmove(c->buf, c->buf + hl + pl, c->len - hl - pl);
				c->len -= hl + pl;
				if (op == 0x8) {
					c->close_code = pl >= 2
					                    ? (((unsigned char)(*data)[0] << 8) |
					                       (unsigned char)(*data)[1])
					                    : 1005;
					snprintf(c->close_reason, sizeof(c->close_reason), "%s",
					         pl > 2 ? *data + 2 : "");
				}
				return op;
			}
		}
		int r = fill(c, deadline);
		if (r == 0)
			return WS_RECV_TIMEOUT;
		if (r < 0)
			return WS_RECV_ERROR;
	}
}

char *ws_recv_text(ws_client *c, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - mono_ms();
		char *d;
		size_t l;
		int op = ws_recv(c, left > 0 ? (int)left : 0, &d, &l);
		if (op == 0x1)
			return d;
		if (op == 0x9 && c->auto_pong)
			ws_send(c, 0xa, d, l);
		free(d);
		if (op < 0 || op == 0x8)
			return NULL;
	}
}

int ws_close_code(const ws_client *c)
{
	return c->close_code;
}
const char *ws_close_reason(const ws_client *c)
{
	return c->close_reason;
}
int ws_fd(const ws_client *c)
{
	return c->fd;
}
void ws_set_auto_pong(ws_client *c, int on)
{
	c->auto_pong = on;
}

size_t ws_pending(const ws_client *c)
{
	return c->len;
}

int ws_read_some(ws_client *c, size_t max)
{
	if (c->cap - c->len < max) {
		c->cap = c->cap * 2 + max;
		c->buf = realloc(c->buf, c->cap);
	}
	ssize_t r = recv(c->fd, c->buf + c->len, max, MSG_DONTWAIT);
	if (r == 0)
		return -1;
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	c->len += (size_t)r;
	return (int)r;
}
