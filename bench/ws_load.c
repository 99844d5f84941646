/* ws-load: an epoll WebSocket load client for ws-gateway. One thread holds every
 * socket (a thread per socket would measure the client, not the gateway).
 *
 * MODE=connect  open CONNECTIONS sockets over USERS users (tokens minted with
 *               JWT_SECRET), at most CONCURRENCY handshakes in flight; report the
 *               handshake rate (token verification included: it happens before 101);
 *               then close them.
 * MODE=hold     the same, then hold the sockets idle for HOLD_S seconds (answering
 *               pings) and report how many the gateway accepted and kept.
 * MODE=recv     the same, then count task_update frames for DURATION_S seconds (or
 *               until EXPECT_FRAMES, or IDLE_S without a frame): frames/s and the
 *               latency receive time - send time. The send time is the microsecond
 *               wall clock kafka-load embeds in the task description ("bench-ts:N");
 *               without it the event's millisecond "timestamp" is used.
 * STALLED=K     the first K sockets get a tiny SO_RCVBUF and stop reading after the
 *               connected message; their frames are not counted, and how many the
 *               gateway closed is reported.
 * SUBSCRIBE=1   each socket, once connected, subscribes to the presence of list
 *               i % LISTS (a presence ticket minted with JWT_SECRET) and the connect
 *               phase waits for every answer (presence or error): sessions_per_s is
 *               sockets opened and answered per second, subscribe_reply the time
 *               from the subscribe to its answer.
 * WATCH_PORT=P  (with SUBSCRIBE) first a watcher socket on the gateway at port P (the
 *               other gateway) subscribes to every list; then, for each load socket,
 *               the time from its subscribe to the watcher's first presence message
 *               showing its user online in its list (presence_delay; USERS must
 *               equal CONNECTIONS, so a user is a socket).
 *
 * Once the connect phase is over, READY_FILE (when set) is written, so a driver can
 * start producing. The result is one JSON line on stdout; progress goes to stderr. */
#include "bench_hist.h"

#include "common/auth.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- configuration ---- */
static struct {
	char *host, *path, *secret, *mode, *prefix, *ready_file, *origin;
	long port, conns, users, concurrency, hs_timeout_ms, connect_deadline_s, hold_s;
	long duration_s, idle_s, expect, stalled, stalled_rcvbuf, src_addrs;
	long lists, watch_port, pace_ms;
	int level, subscribe;
} cfg;

static const cfg_entry table[] = {
    {"WS_HOST", CFG_STR, &cfg.host, "127.0.0.1", 0, 64, "gateway IPv4 address"},
    {"WS_PORT", CFG_INT, &cfg.port, "8005", 1, 65535, "gateway port"},
    {"WS_PATH", CFG_STR, &cfg.path, "/ws", 0, 256, "WebSocket path (token appended)"},
    {"JWT_SECRET", CFG_SECRET, &cfg.secret, NULL, 16, 4096, "the gateway's JWT_SECRET"},
    {"MODE", CFG_STR, &cfg.mode, "recv", 0, 16, "connect | hold | recv"},
    {"CONNECTIONS", CFG_INT, &cfg.conns, "1000", 1, 19990, "sockets to open"},
    {"USERS", CFG_INT, &cfg.users, "100", 1, 1000000, "users; socket i belongs to user i % USERS"},
    {"USER_PREFIX", CFG_STR, &cfg.prefix, "bench-u", 0, 64, "user ids are PREFIX<n>"},
    {"CONCURRENCY", CFG_INT, &cfg.concurrency, "200", 1, 19990, "handshakes in flight"},
    {"HANDSHAKE_TIMEOUT_MS", CFG_INT, &cfg.hs_timeout_ms, "10000", 10, 600000,
     "a handshake slower than this fails"},
    {"CONNECT_DEADLINE_S", CFG_INT, &cfg.connect_deadline_s, "120", 1, 3600,
     "bound of the whole connect phase"},
    {"HOLD_S", CFG_INT, &cfg.hold_s, "10", 0, 3600, "hold mode: seconds to hold the sockets"},
    {"DURATION_S", CFG_INT, &cfg.duration_s, "30", 1, 3600, "recv mode: longest receive phase"},
    {"IDLE_S", CFG_INT, &cfg.idle_s, "3", 1, 3600,
     "recv mode: stop after this long without a frame (once frames came)"},
    {"EXPECT_FRAMES", CFG_INT, &cfg.expect, "0", 0, 2000000000,
     "recv mode: stop once this many frames came (0: no bound)"},
    {"STALLED", CFG_INT, &cfg.stalled, "0", 0, 19990, "sockets that stop reading"},
    {"STALLED_RCVBUF", CFG_INT, &cfg.stalled_rcvbuf, "4096", 1024, 1048576,
     "SO_RCVBUF of a stalled socket"},
    {"SRC_ADDRS", CFG_INT, &cfg.src_addrs, "1", 1, 250,
     "spread sockets over 127.0.0.2.. source addresses (more port tuples)"},
    {"READY_FILE", CFG_STR, &cfg.ready_file, "", 0, 4096, "written when connected"},
    {"ORIGIN", CFG_STR, &cfg.origin, "http://127.0.0.1", 0, 256, "Origin header"},
    {"SUBSCRIBE", CFG_BOOL, &cfg.subscribe, "false", 0, 0,
     "each socket subscribes to a list's presence once connected"},
    {"LISTS", CFG_INT, &cfg.lists, "10", 1, 1000000,
     "SUBSCRIBE: lists; socket i takes i % LISTS (at most 64 with WATCH_PORT)"},
    {"WATCH_PORT", CFG_INT, &cfg.watch_port, "0", 0, 65535,
     "SUBSCRIBE: a watcher on this port measures the presence delay (0: none)"},
    {"PACE_MS", CFG_INT, &cfg.pace_ms, "0", 0, 60000,
     "start a handshake at most every PACE_MS (0: as CONCURRENCY allows)"},
    {"LOG_LEVEL", CFG_LEVEL, &cfg.level, "info", 0, 0, "stderr log level"},
};

/* ---- connections ---- */
typedef enum { ST_IDLE = 0, ST_CONNECTING, ST_HS_RECV, ST_OPEN, ST_CLOSED } cstate;

typedef struct wconn {
	int fd;
	cstate st;
	int stalled;       /* stops reading once open */
	int connected_msg; /* got {"type":"connected"} */
	int user;          /* index into users[]; -1: the watcher */
	int watcher;       /* the WATCH_PORT socket */
	char *ticket;      /* SUBSCRIBE: its presence ticket */
	int64_t t_sub;     /* mono us the subscribe was queued (0: not yet) */
	int answered;      /* its subscribe got an answer */
	int seen;          /* the watcher saw it online */
	int64_t t_start;   /* mono us when connect() began */
	char *out;         /* pending output (handshake, pongs) */
	size_t outlen, outoff;
	char *in; /* unparsed input */
	size_t inlen, incap;
	char *frag; /* fragmented message being assembled */
	size_t fraglen;
	int frag_op;
} wconn;

static wconn *conns;
static char **tokens;   /* per user */
static char **user_pat; /* per user: "\"user_id\":\"<id>\"" */
static int epfd;
static volatile sig_atomic_t stop_flag;

/* ---- results ---- */
static struct {
	long opened, failed_connect, failed_status, failed_eof, failed_timeout, failed_proto;
	long status_counts[600];
	long close_codes[5000]; /* close frames received, by code */
	long closed_eof;        /* sockets the server closed without a close frame */
	long frames, other_msgs, wrong_user, no_ts, stalled_closed, pings;
	long in_flight;
	int64_t t_first_start, t_last_open, t_first_frame, t_last_frame;
	long second_frames[3600];
	int64_t recv_start;
	bhist *lat;
	long answered, sub_errors, watch_lists, watch_seen;
	int64_t t_last_answer;
	bhist *sub_lat, *watch_lat;
} R;

static char list_prefix[9];  /* this run's lists: "<prefix>-0000-4000-8000-<k>" */
static char *watch_token;    /* the watcher's session token */
static char **watch_tickets; /* the watcher's ticket per list */
static long watch_idx = -1;  /* the watcher's index in conns */

static void list_id(long k, char out[UUID_STR_LEN])
{
	snprintf(out, UUID_STR_LEN, "%.8s-0000-4000-8000-%012u", list_prefix,
	         (unsigned)(k % 1000000));
}

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void ep_set(wconn *c, uint32_t ev, int op)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(epfd, op, c->fd, &e) < 0)
		log_warn("epoll_ctl failed", "{s:s}", "err", strerror(errno));
}

static void conn_close(wconn *c)
{
	if (c->st == ST_CONNECTING || c->st == ST_HS_RECV)
		R.in_flight--;
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->st = ST_CLOSED;
	free(c->out);
	free(c->in);
	free(c->frag);
	c->out = c->in = c->frag = NULL;
	c->outlen = c->outoff = c->inlen = c->incap = c->fraglen = 0;
}

static uint32_t want_events(const wconn *c)
{
	if (c->st == ST_CONNECTING)
		return EPOLLOUT;
	uint32_t ev = (c->stalled && c->st == ST_OPEN && c->connected_msg) ? EPOLLRDHUP : EPOLLIN;
	if (c->outoff < c->outlen)
		ev |= EPOLLOUT;
	return ev;
}

/* Writes what is pending; 0, or -1 when the socket failed (closed). */
static int flush_out(wconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen) {
		free(c->out);
		c->out = NULL;
		c->outlen = c->outoff = 0;
	}
	return 0;
}

static void queue_out(wconn *c, const void *buf, size_t len)
{
	c->out = xrealloc(c->out, c->outlen + len);
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
}

/* A masked client frame (RFC 6455 5.3: every client frame is masked). */
static void queue_frame(wconn *c, int opcode, const unsigned char *payload, size_t len)
{
	unsigned char hdr[14];
	size_t h = 0;
	hdr[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		hdr[h++] = (unsigned char)(0x80 | len);
	} else {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(len >> 8);
		hdr[h++] = (unsigned char)len;
	}
	unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
	memcpy(hdr + h, mask, 4);
	h += 4;
	queue_out(c, hdr, h);
	unsigned char *tmp = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		tmp[i] = payload[i] ^ mask[i % 4];
	queue_out(c, tmp, len);
	free(tmp);
}

static void start_connect(int idx)
{
	wconn *c = &conns[idx];
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		R.failed_connect++;
		c->st = ST_CLOSED;
		log_warn("socket failed", "{s:s, s:i}", "err", strerror(errno), "conn", idx);
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->stalled) {
		int rb = (int)cfg.stalled_rcvbuf;
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	}
	if (cfg.src_addrs > 1) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(idx % cfg.src_addrs));
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			log_warn("bind failed", "{s:s}", "err", strerror(errno));
	}
	long port = c->watcher ? cfg.watch_port : cfg.port;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, cfg.host, &sa.sin_addr);
	c->t_start = mono_us();
	if (!R.t_first_start)
		R.t_first_start = c->t_start;
	R.in_flight++;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		R.failed_connect++;
		log_warn("connect failed", "{s:s, s:i}", "err", strerror(errno), "conn", idx);
		conn_close(c);
		return;
	}
	c->st = ST_CONNECTING;
	char req[8192];
	int n = snprintf(req, sizeof(req),
	                 "GET %s?token=%s HTTP/1.1\r\nHost: %s:%ld\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n",
	                 cfg.path, c->watcher ? watch_token : tokens[c->user], cfg.host, port,
	                 cfg.origin);
	queue_out(c, req, (size_t)n);
	ep_set(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static int64_t parse_i64(const char *p, const char *end)
{
	int64_t v = 0;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

static void send_subscribe(wconn *c, long list, const char *ticket)
{
	char id[UUID_STR_LEN], buf[4400];
	list_id(list, id);
	int n =
	    snprintf(buf, sizeof(buf),
	             "{\"type\":\"subscribe\",\"list_id\":\"%s\",\"ticket\":\"%s\"}", id, ticket);
	queue_frame(c, 0x1, (const unsigned char *)buf, (size_t)n);
	if (c->fd >= 0)
		ep_set(c, want_events(c), EPOLL_CTL_MOD);
}

/* The watcher's presence message: each load socket seen online the first time. */
static void watcher_presence(const char *m, size_t len, int64_t now)
{
	json_t *j = json_loadb(m, len, 0, NULL);
	const char *lid = json_string_value(json_object_get(j, "list_id"));
	size_t lp = strlen(list_prefix);
	if (!lid || strncmp(lid, list_prefix, lp)) {
		json_decref(j);
		return;
	}
	long k = strtol(lid + 24, NULL, 10);
	json_t *on = json_object_get(j, "online"), *e;
	size_t i;
	size_t pl = strlen(cfg.prefix);
	json_array_foreach(on, i, e)
	{
		const char *u = json_string_value(json_object_get(e, "user_id"));
		if (!u || strncmp(u, cfg.prefix, pl))
			continue;
		char *end;
		long n = strtol(u + pl, &end, 10);
		if (*end || n < 0 || n >= cfg.conns || n % cfg.lists != k)
			continue;
		wconn *lc = &conns[n];
		if (lc->t_sub && !lc->seen) {
			lc->seen = 1;
			R.watch_seen++;
			bhist_add(R.watch_lat, now - lc->t_sub);
		}
	}
	json_decref(j);
}

/* One complete text message from the server. */
static void on_message(wconn *c, const char *m, size_t len)
{
	int is_presence = memmem(m, len, "\"type\":\"presence\"", 17) != NULL;
	if (c->watcher) {
		if (memmem(m, len, "\"type\":\"connected\"", 18) && !c->connected_msg) {
			c->connected_msg = 1;
			for (long k = 0; k < cfg.lists; k++)
				send_subscribe(c, k, watch_tickets[k]);
		} else if (is_presence) {
			if (R.watch_lists < cfg.lists)
				R.watch_lists++;
			watcher_presence(m, len, mono_us());
		} else if (memmem(m, len, "\"type\":\"error\"", 14)) {
			log_warn("watcher got an error", "{s:s%}", "msg", m, len);
		}
		return;
	}
	if (c->t_sub && !c->answered && (is_presence || memmem(m, len, "\"type\":\"error\"", 14))) {
		int64_t now = mono_us();
		c->answered = 1;
		R.answered++;
		R.sub_errors += !is_presence;
		R.t_last_answer = now;
		bhist_add(R.sub_lat, now - c->t_sub);
		return;
	}
	int64_t now_wall = wall_us();
	if (memmem(m, len, "\"type\":\"task_update\"", 20)) {
		const char *pat = user_pat[c->user];
		if (!memmem(m, len, pat, strlen(pat)))
			R.wrong_user++;
		if (c->stalled)
			return;
		int64_t now = mono_us();
		if (!R.t_first_frame)
			R.t_first_frame = now;
		R.t_last_frame = now;
		R.frames++;
		int64_t sec = (now - R.recv_start) / 1000000;
		if (R.recv_start && sec >= 0 && sec < (int64_t)ARRAY_LEN(R.second_frames))
			R.second_frames[sec]++;
		const char *ts = memmem(m, len, "bench-ts:", 9);
		int64_t sent = 0;
		if (ts) {
			sent = parse_i64(ts + 9, m + len);
		} else {
			const char *t = memmem(m, len, "\"timestamp\":\"", 13);
			if (t) {
				char buf[48];
				const char *e = memchr(t + 13, '"', (size_t)(m + len - (t + 13)));
				size_t l = e ? (size_t)(e - (t + 13)) : 0;
				if (l && l < sizeof(buf)) {
					memcpy(buf, t + 13, l);
					buf[l] = 0;
					if (time_parse_iso8601(buf, &sent))
						sent = 0;
				}
			}
		}
		if (sent > 0)
			bhist_add(R.lat, now_wall - sent);
		else
			R.no_ts++;
	} else if (memmem(m, len, "\"type\":\"connected\"", 18)) {
		if (!c->connected_msg) {
			c->connected_msg = 1;
			if (cfg.subscribe && !c->stalled) {
				c->t_sub = mono_us();
				send_subscribe(c, (long)(c - conns) % cfg.lists, c->ticket);
			}
			if (c->stalled)
				ep_set(c, want_events(c), EPOLL_CTL_MOD);
		}
	} else {
		R.other_msgs++;
	}
}

/* Parses complete frames in c->in. Returns -1 when the connection is to be closed. */
static int parse_frames(wconn *c)
{
	size_t off = 0;
	int rc = 0;
	while (c->inlen - off >= 2) {
		unsigned char *p = (unsigned char *)c->in + off;
		size_t avail = c->inlen - off;
		int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
		uint64_t plen = p[1] & 0x7f;
		size_t h = 2;
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = ((uint64_t)p[2] << 8) | p[3];
			h = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = (plen << 8) | p[2 + i];
			h = 10;
		}
		if (plen > (64u << 20)) {
			R.failed_proto++;
			return -1;
		}
		if (masked)
			h += 4;
		if (avail < h + plen)
			break;
		unsigned char *pl = p + h;
		if (masked)
			for (uint64_t i = 0; i < plen; i++)
				pl[i] ^= p[h - 4 + (i % 4)];
		off += h + (size_t)plen;
		if (op == 0x8) {
			int code = plen >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
			if (code >= 0 && code < (int)ARRAY_LEN(R.close_codes))
				R.close_codes[code]++;
			rc = -1;
			break;
		} else if (op == 0x9) {
			R.pings++;
			queue_frame(c, 0xA, pl, (size_t)plen);
		} else if (op == 0xA) {
			/* pong: nothing to do */
		} else if (op == 0x1 || op == 0x2 || op == 0x0) {
			if (fin && op != 0 && !c->frag) {
				on_message(c, (const char *)pl, (size_t)plen);
			} else {
				if (op != 0)
					c->frag_op = op;
				c->frag = xrealloc(c->frag, c->fraglen + plen + 1);
				memcpy(c->frag + c->fraglen, pl, plen);
				c->fraglen += plen;
				if (fin) {
					on_message(c, c->frag, c->fraglen);
					free(c->frag);
					c->frag = NULL;
					c->fraglen = 0;
				}
			}
		} else {
			R.failed_proto++;
			rc = -1;
			break;
		}
	}
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	return rc;
}

/* The HTTP response to the upgrade; 1 when complete and 101, 0 when incomplete,
 * -1 when refused. */
static int parse_handshake(wconn *c)
{
	char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	if (!end)
		return c->inlen > 16384 ? -1 : 0;
	int status = 0;
	if (c->inlen < 12 || sscanf(c->in, "HTTP/1.%*d %d", &status) != 1) {
		R.failed_proto++;
		return -1;
	}
	if (status != 101) {
		R.failed_status++;
		if (status > 0 && status < (int)ARRAY_LEN(R.status_counts))
			R.status_counts[status]++;
		return -1;
	}
	if (!memmem(c->in, (size_t)(end - c->in), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28)) {
		R.failed_proto++;
		return -1;
	}
	size_t used = (size_t)(end + 4 - c->in);
	memmove(c->in, c->in + used, c->inlen - used);
	c->inlen -= used;
	return 1;
}

static void on_readable(wconn *c)
{
	for (int rounds = 0; rounds < 4; rounds++) {
		if (c->incap - c->inlen < 4096) {
			c->incap = c->incap ? c->incap * 2 : 8192;
			c->in = xrealloc(c->in, c->incap);
		}
		ssize_t n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			n = 0;
		}
		if (n == 0) {
			if (c->st == ST_HS_RECV)
				R.failed_eof++;
			else
				R.closed_eof++;
			conn_close(c);
			return;
		}
		c->inlen += (size_t)n;
		if (c->st == ST_HS_RECV) {
			int hs = parse_handshake(c);
			if (hs < 0) {
				conn_close(c);
				return;
			}
			if (hs == 0)
				continue;
			c->st = ST_OPEN;
			R.in_flight--;
			R.opened++;
			R.t_last_open = mono_us();
		}
		if (c->st == ST_OPEN && parse_frames(c) < 0) {
			conn_close(c);
			return;
		}
		if ((size_t)n < c->incap - c->inlen)
			break; /* drained */
	}
	if (c->st == ST_OPEN && c->inlen == 0 && c->incap > 65536) {
		free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
}

static void on_event(wconn *c, uint32_t ev)
{
	if (c->st == ST_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			R.failed_connect++;
			log_debug("connect failed", "{s:s}", "err", strerror(err));
			conn_close(c);
			return;
		}
		c->st = ST_HS_RECV;
	}
	if (c->stalled && c->st == ST_OPEN && c->connected_msg && (ev & (EPOLLRDHUP | EPOLLHUP))) {
		R.stalled_closed++;
		conn_close(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(c);
	if (c->st == ST_CLOSED)
		return;
	if (flush_out(c) < 0) {
		R.closed_eof++;
		conn_close(c);
		return;
	}
	ep_set(c, want_events(c), EPOLL_CTL_MOD);
}

/* Runs the loop until deadline (mono us) or until done() says so. */
static void loop(int64_t deadline, int (*done)(void))
{
	struct epoll_event evs[512];
	while (!stop_flag && mono_us() < deadline && !(done && done())) {
		int n = epoll_wait(epfd, evs, ARRAY_LEN(evs), 20);
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
	}
}

static long next_idx;
static int64_t connect_deadline;

static int connect_phase_done(void)
{
	int64_t now = mono_us();
	/* time out slow handshakes */
	static int64_t last_sweep;
	if (now - last_sweep > 100000) {
		last_sweep = now;
		for (long i = 0; i < next_idx; i++) {
			wconn *c = &conns[i];
			if ((c->st == ST_CONNECTING || c->st == ST_HS_RECV) &&
			    now - c->t_start > cfg.hs_timeout_ms * 1000) {
				R.failed_timeout++;
				conn_close(c);
			}
		}
	}
	static int64_t next_start;
	while (next_idx < cfg.conns && R.in_flight < cfg.concurrency &&
	       (!cfg.pace_ms || now >= next_start)) {
		next_start = now + cfg.pace_ms * 1000;
		start_connect((int)next_idx++);
	}
	if (next_idx < cfg.conns || R.in_flight > 0)
		return 0;
	/* every socket is open or failed; wait for the connected messages briefly */
	for (long i = 0; i < cfg.conns; i++)
		if (conns[i].st == ST_OPEN && !conns[i].connected_msg &&
		    now - R.t_last_open < 2000000)
			return 0;
	/* and for the subscribes' answers, and the watcher's view of them */
	for (long i = 0; cfg.subscribe && i < cfg.conns; i++) {
		if (conns[i].st == ST_OPEN && conns[i].t_sub && !conns[i].answered &&
		    now - R.t_last_open < 5000000)
			return 0;
		if (watch_idx >= 0 && conns[i].st == ST_OPEN && conns[i].answered &&
		    !conns[i].seen && now - R.t_last_answer < 5000000)
			return 0;
	}
	return 1;
}

static int watcher_ready(void)
{
	return R.watch_lists >= cfg.lists || conns[watch_idx].st == ST_CLOSED;
}

static int recv_done(void)
{
	if (cfg.expect && R.frames >= cfg.expect)
		return 1;
	if (R.t_last_frame && mono_us() - R.t_last_frame > cfg.idle_s * 1000000)
		return 1;
	return 0;
}

static long count_open(void)
{
	long n = 0;
	for (long i = 0; i < cfg.conns; i++)
		n += conns[i].st == ST_OPEN;
	return n;
}

static void write_ready(long open)
{
	if (!cfg.ready_file[0])
		return;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.ready_file);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		log_error("could not write ready file", "{s:s}", "err", strerror(errno));
		return;
	}
	fprintf(f, "%ld\n", open);
	fclose(f);
	if (rename(tmp, cfg.ready_file) < 0)
		log_error("could not rename ready file", "{s:s}", "err", strerror(errno));
}

static json_t *counts_json(const long *v, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		if (v[i]) {
			char k[24];
			snprintf(k, sizeof(k), "%zu", i);
			json_object_set_new(o, k, json_integer(v[i]));
		}
	return o;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		config_print_help(stdout, "ws-load",
		                  "An epoll WebSocket load client for ws-gateway.", table,
		                  ARRAY_LEN(table));
		return strcmp(argv[1], "--help") ? 2 : 0;
	}
	char err[2048];
	if (config_load(table, ARRAY_LEN(table), err, sizeof(err))) {
		fprintf(stderr, "%s", err);
		return 2;
	}
	log_setup("ws-load", (log_level)cfg.level);
	int mode_recv = !strcmp(cfg.mode, "recv"), mode_hold = !strcmp(cfg.mode, "hold");
	if (!mode_recv && !mode_hold && strcmp(cfg.mode, "connect")) {
		fprintf(stderr, "MODE: not one of connect|hold|recv\n");
		return 2;
	}
	struct in_addr probe;
	if (inet_pton(AF_INET, cfg.host, &probe) != 1) {
		fprintf(stderr, "WS_HOST: not an IPv4 address\n");
		return 2;
	}
	if (cfg.stalled > cfg.conns) {
		fprintf(stderr, "STALLED: more than CONNECTIONS\n");
		return 2;
	}
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if ((long)rl.rlim_cur < cfg.conns + 16)
			log_warn("open-file limit below CONNECTIONS", "{s:i}", "limit",
			         (int)rl.rlim_cur);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);

	tokens = xcalloc((size_t)cfg.users, sizeof(char *));
	user_pat = xcalloc((size_t)cfg.users, sizeof(char *));
	for (long u = 0; u < cfg.users; u++) {
		char uid[USER_ID_MAX + 1], pat[USER_ID_MAX + 20];
		snprintf(uid, sizeof(uid), "%s%ld", cfg.prefix, u);
		tokens[u] = auth_mint(cfg.secret, uid, 3600);
		if (!tokens[u]) {
			fprintf(stderr, "USER_PREFIX: \"%s\" is not a valid user id\n", uid);
			return 2;
		}
		snprintf(pat, sizeof(pat), "\"user_id\":\"%s\"", uid);
		user_pat[u] = xstrdup(pat);
	}
	if (cfg.watch_port && (!cfg.subscribe || cfg.users != cfg.conns || cfg.lists > 64)) {
		fprintf(stderr,
		        "WATCH_PORT: needs SUBSCRIBE=1, USERS=CONNECTIONS and LISTS <= 64\n");
		return 2;
	}
	{
		char u[UUID_STR_LEN];
		uuid_new(u);
		memcpy(list_prefix, u, 8);
	}
	conns = xcalloc((size_t)cfg.conns + 1, sizeof(wconn));
	for (long i = 0; i < cfg.conns; i++) {
		conns[i].fd = -1;
		conns[i].user = (int)(i % cfg.users);
		conns[i].stalled = i < cfg.stalled;
		if (cfg.subscribe) {
			char uid[USER_ID_MAX + 1], lid[UUID_STR_LEN];
			snprintf(uid, sizeof(uid), "%s%ld", cfg.prefix, i % cfg.users);
			list_id(i % cfg.lists, lid);
			conns[i].ticket = auth_mint_presence(cfg.secret, uid, lid, 3600);
		}
	}
	R.lat = bhist_new();
	R.sub_lat = bhist_new();
	R.watch_lat = bhist_new();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("epoll_create1");
		return 1;
	}

	log_info("connecting", "{s:I, s:I, s:I}", "connections", (json_int_t)cfg.conns, "users",
	         (json_int_t)cfg.users, "port", (json_int_t)cfg.port);
	if (cfg.watch_port) {
		watch_idx = cfg.conns;
		wconn *w = &conns[watch_idx];
		w->fd = -1;
		w->user = -1;
		w->watcher = 1;
		watch_token = auth_mint(cfg.secret, "bench-watch", 3600);
		watch_tickets = xcalloc((size_t)cfg.lists, sizeof(char *));
		for (long k = 0; k < cfg.lists; k++) {
			char lid[UUID_STR_LEN];
			list_id(k, lid);
			watch_tickets[k] = auth_mint_presence(cfg.secret, "bench-watch", lid, 3600);
		}
		start_connect((int)watch_idx);
		loop(mono_us() + 10000000, watcher_ready);
		if (R.watch_lists < cfg.lists)
			log_warn("watcher not subscribed to every list", "{s:I}", "lists",
			         (json_int_t)R.watch_lists);
		/* the watcher is not one of the load's handshakes */
		R.opened = 0;
		R.in_flight = 0;
		R.t_first_start = R.t_last_open = 0;
	}
	connect_deadline = mono_us() + cfg.connect_deadline_s * 1000000;
	loop(connect_deadline, connect_phase_done);
	int64_t hs_span = R.t_last_open > R.t_first_start ? R.t_last_open - R.t_first_start : 0;
	long open_after_connect = count_open();
	log_info("connect phase over", "{s:I, s:I}", "open", (json_int_t)open_after_connect,
	         "span_ms", (json_int_t)(hs_span / 1000));
	write_ready(open_after_connect);

	if (mode_hold) {
		loop(mono_us() + cfg.hold_s * 1000000, NULL);
	} else if (mode_recv) {
		R.recv_start = mono_us();
		loop(R.recv_start + cfg.duration_s * 1000000, recv_done);
	}
	long open_at_end = count_open();

	double span_s = (double)(R.t_last_frame - R.t_first_frame) / 1e6;
	long peak = 0;
	for (size_t i = 0; i < ARRAY_LEN(R.second_frames); i++)
		if (R.second_frames[i] > peak)
			peak = R.second_frames[i];
	json_t *failed = json_pack(
	    "{s:I, s:I, s:I, s:I, s:I}", "connect", (json_int_t)R.failed_connect, "http_status",
	    (json_int_t)R.failed_status, "eof", (json_int_t)R.failed_eof, "timeout",
	    (json_int_t)R.failed_timeout, "protocol", (json_int_t)R.failed_proto);
	json_t *out = json_pack(
	    "{s:s, s:I, s:I, s:I, s:o, s:o, s:f, s:f, s:I, s:I, s:o, s:o, s:I, s:f, s:I, s:o, "
	    "s:I, s:I, s:I, s:I, s:I, s:I}",
	    "mode", cfg.mode, "connections", (json_int_t)cfg.conns, "users", (json_int_t)cfg.users,
	    "opened", (json_int_t)R.opened, "failed", failed, "refusal_status",
	    counts_json(R.status_counts, ARRAY_LEN(R.status_counts)), "handshake_span_s",
	    (double)hs_span / 1e6, "handshakes_per_s",
	    hs_span ? (double)R.opened / ((double)hs_span / 1e6) : 0.0, "open_after_connect",
	    (json_int_t)open_after_connect, "open_at_end", (json_int_t)open_at_end, "close_codes",
	    counts_json(R.close_codes, ARRAY_LEN(R.close_codes)), "latency", bhist_json(R.lat),
	    "frames", (json_int_t)R.frames, "frames_per_s",
	    span_s > 0 ? (double)R.frames / span_s : 0.0, "peak_1s_frames", (json_int_t)peak,
	    "stalled", json_integer(cfg.stalled), "stalled_closed", (json_int_t)R.stalled_closed,
	    "closed_eof", (json_int_t)R.closed_eof, "wrong_user", (json_int_t)R.wrong_user,
	    "no_timestamp", (json_int_t)R.no_ts, "other_msgs", (json_int_t)R.other_msgs, "pings",
	    (json_int_t)R.pings);
	if (cfg.subscribe) {
		int64_t span =
		    R.t_last_answer > R.t_first_start ? R.t_last_answer - R.t_first_start : 0;
		json_object_set_new(out, "subscribed", json_integer(R.answered));
		json_object_set_new(out, "subscribe_errors", json_integer(R.sub_errors));
		json_object_set_new(
		    out, "sessions_per_s",
		    json_real(span ? (double)R.answered / ((double)span / 1e6) : 0.0));
		json_object_set_new(out, "subscribe_reply", bhist_json(R.sub_lat));
		if (cfg.watch_port) {
			json_object_set_new(out, "watch_seen", json_integer(R.watch_seen));
			json_object_set_new(out, "presence_delay", bhist_json(R.watch_lat));
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	json_object_set_new(out, "cpu_s",
	                    json_real((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	                              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6));
	char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(out);

	for (long i = 0; i <= cfg.conns; i++) {
		if (conns[i].fd >= 0)
			conn_close(&conns[i]);
		free(conns[i].ticket);
	}
	for (long k = 0; watch_tickets && k < cfg.lists; k++)
		free(watch_tickets[k]);
	free(watch_tickets);
	free(watch_token);
	bhist_free(R.sub_lat);
	bhist_free(R.watch_lat);
	close(epfd);
	for (long u = 0; u < cfg.users; u++) {
		free(tokens[u]);
		free(user_pat[u]);
	}
	free(tokens);
	free(user_pat);
	free(conns);
	bhist_free(R.lat);
	config_free(table, ARRAY_LEN(table));
	return 0;
}
