#include "ws_guard.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- verdicts ---- */

int ws_guard_code(guard_verdict v)
{
	return v == GUARD_TOO_LARGE ? 1009 : 1002;
}

const char *ws_guard_reason(guard_verdict v)
{
	switch (v) {
	case GUARD_TOO_LARGE:
		return "message too large";
	case GUARD_CONTROL:
		return "control frame over 125 bytes or fragmented";
	case GUARD_PROTOCOL:
		return "protocol error";
	default:
		return "";
	}
}

/* ---- the parser ---- */

void ws_parser_init(ws_parser *p, uint64_t max_message_bytes, int http)
{
	*p = (ws_parser){.max = max_message_bytes, .in_http = http};
}

/* Bytes a header has, from its first two (RFC 6455 5.2). */
static unsigned header_size(const unsigned char *h)
{
	unsigned l7 = h[1] & 0x7f;
	return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* Judges a complete header and sets up its payload. */
static guard_verdict check_header(ws_parser *p)
{
	const unsigned char *h = p->hdr;
	int fin = h[0] & 0x80, rsv = h[0] & 0x70, op = h[0] & 0x0f;
	unsigned l7 = h[1] & 0x7f;
	uint64_t len = l7;
	if (l7 == 126) {
		len = ((uint64_t)h[2] << 8) | h[3];
	} else if (l7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | h[2 + i];
	}
	p->claimed = len;
	/* No extension is negotiated (RSV), clients must mask (5.1), and a 64-bit
	 * length has its top bit clear (5.2). */
	if (rsv || !(h[1] & 0x80) || (len >> 63))
		return GUARD_PROTOCOL;
	if (op >= 0x8) {
		if (op > 0xa)
			return GUARD_PROTOCOL;
		if (!fin || len > 125)
			return GUARD_CONTROL;
	} else if (op == 0x0) {
		if (!p->in_msg)
			return GUARD_PROTOCOL; /* a continuation of nothing */
		if (len > p->max - p->msg)
			return GUARD_TOO_LARGE;
		p->msg += len;
		if (fin)
			p->in_msg = 0;
	} else if (op == 0x1 || op == 0x2) {
		if (p->in_msg)
			return GUARD_PROTOCOL; /* a new message inside a fragmented one */
		if (len > p->max)
			return GUARD_TOO_LARGE;
		if (!fin) {
			p->in_msg = 1;
			p->msg = len;
		}
	} else {
		return GUARD_PROTOCOL;
	}
	p->left = len;
	return GUARD_OK;
}

size_t ws_parser_feed(ws_parser *p, const unsigned char *b, size_t n)
{
	if (p->verdict != GUARD_OK)
		return 0;
	size_t i = 0;
	/* The request headers end where civetweb's get_http_header_len ends them: at
	 * the first "\n\n" or "\r\n\r\n". */
	while (p->in_http && i < n) {
		p->http_tail = (p->http_tail << 8) | b[i++];
		if ((p->http_tail & 0xffff) == 0x0a0a || p->http_tail == 0x0d0a0d0a)
			p->in_http = 0;
	}
	while (i < n) {
		if (p->left > 0) {
			uint64_t k = n - i < p->left ? n - i : p->left;
			i += (size_t)k;
			p->left -= k;
			continue;
		}
		size_t start = i;
		int here = p->hlen == 0; /* the header starts in this chunk */
		while (i < n && (p->hneed == 0 || p->hlen < p->hneed)) {
			p->hdr[p->hlen++] = b[i++];
			if (p->hlen == 2)
				p->hneed = header_size(p->hdr);
		}
		if (p->hneed == 0 || p->hlen < p->hneed)
			break; /* the rest of the header comes later */
		p->hlen = p->hneed = 0;
		guard_verdict v = check_header(p);
		if (v != GUARD_OK) {
			p->verdict = v;
			return here ? start : 0;
		}
	}
	return n;
}

/* ---- the civetweb side ---- */

typedef struct guard_conn {
	int active;    /* a connection of a civetweb worker */
	int fd;        /* its socket (-1: not read yet) */
	int stopped;   /* read no more: finish at the next read */
	int finished;  /* end of stream reported */
	void *owner;   /* the gateway's connection, after the upgrade */
	uint64_t read; /* bytes read */
	ws_parser p;
} guard_conn;

static _Thread_local guard_conn tl_conn;
static size_t g_max = 4096;
static ws_guard_refuse_fn g_refuse;
static void *g_arg;
static metric *g_bytes;

void ws_guard_init(size_t max_message_bytes, ws_guard_refuse_fn refuse, void *arg,
                   metric *bytes_read)
{
	g_max = max_message_bytes;
	g_refuse = refuse;
	g_arg = arg;
	g_bytes = bytes_read;
}

void ws_guard_begin(void)
{
	guard_conn *g = &tl_conn;
	*g = (guard_conn){.active = 1, .fd = -1};
	ws_parser_init(&g->p, g_max, 1);
}

int ws_guard_fd(void)
{
	return tl_conn.active ? tl_conn.fd : -1;
}

void ws_guard_attach(void *owner)
{
	tl_conn.owner = owner;
}

void ws_guard_detach(void)
{
	tl_conn.owner = NULL;
}

/* civetweb polls the socket before each read: once the read side is shut, the
 * poll answers at once (end of stream) and the next read finishes, even when the
 * client sends nothing more. Bytes still arriving stay in the kernel's buffer. */
static void stop_reading(guard_conn *g)
{
	g->stopped = 1;
	if (g->fd >= 0)
		(void)shutdown(g->fd, SHUT_RD);
}

void ws_guard_stop(void)
{
	stop_reading(&tl_conn);
}

/* Refused or stopped: have the close sent, then report end of stream. */
static ssize_t finish(guard_conn *g)
{
	if (!g->finished && g->owner && g_refuse)
		g_refuse(g->owner, g->p.verdict, g->p.claimed, g->read, g_arg);
	g->finished = 1;
	return 0;
}

/* civetweb's every read of a client socket (pull_inner). recv(2) is recvfrom(2)
 * without an address: the real call, whoever else interposes (ASan does). */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	guard_conn *g = &tl_conn;
	if (!g->active || (g->fd >= 0 && g->fd != fd) || (flags & MSG_PEEK))
		return recvfrom(fd, buf, len, flags, NULL, NULL);
	g->fd = fd;
	if (g->stopped || g->p.verdict != GUARD_OK)
		return finish(g);
	ssize_t r = recvfrom(fd, buf, len, flags, NULL, NULL);
	if (r <= 0)
		return r;
	g->read += (uint64_t)r;
	if (g_bytes)
		metric_add(g_bytes, (double)r);
	size_t pass = ws_parser_feed(&g->p, buf, (size_t)r);
	if (g->p.verdict == GUARD_OK)
		return r;
	stop_reading(g);
	if (pass > 0)
		return (ssize_t)pass; /* the frames before the refused one; finish next */
	return finish(g);
}
