#include "ws_server.h"

#include "client_msg.h"
#include "common/auth.h"
#include "common/http.h"
#include "common/json.h"
#include "common/log.h"
#include "tickets.h"
#include "ws_guard.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_SPARE_THREADS 16  /* civetweb threads kept for HTTP and refusals */
#define CONN_QUEUE         64  /* civetweb's queue of accepted sockets (connection_queue) */
#define FD_HEADROOM        512 /* Kafka, epoll, logs, the reserve fd, the ops listener */
#define OPS_THREADS        4   /* threads of the HEALTH_PORT listener */
/* Resident memory per allowed socket, as the start-up check counts it: a civetweb
 * worker thread's touched stack plus the socket's buffers and its conn, measured at
 * 22-45 KiB (README, "Memory and descriptors"); and what the process needs beside:
 * librdkafka's prefetch queue (queued.max.messages.kbytes, 64 MiB by default) and
 * about 32 MiB for the heap's arenas, the binary and the libraries. */
#define SOCKET_COST_BYTES (48L * 1024)
#define BASE_COST_BYTES   (96L * 1024 * 1024)
#define SWEEP_MS          250
#define SHED_MIN_MS       20         /* shedding passes at most this often (each is O(sockets)) */
#define STACK_TRIM_KEEP   (8 * 1024) /* stack kept below ws_ready's frame (madvise's own) */

struct ws_server {
	const gw_config *cfg;
	registry *reg;
	writer *w;
	const gw_stats *st;
	consumer *cons;
	presence_bus *pres; /* NULL: presence off */
	struct mg_context *ctx;
	conn_limits lim;
	atomic_long open; /* accepted WebSockets not yet closed */
	atomic_int draining;
	atomic_int stop;
	pthread_t sweeper;
	int have_sweeper;
	frame *ping;            /* the heartbeat ping frame, shared */
	ticket_set *tickets;    /* the WebSocket tickets used here (single use) */
	char rate_reason[96];   /* close reason of the client rate limit */
	send_budget budget;     /* SEND_QUEUE_TOTAL_BYTES, shared by every conn */
	struct mg_context *ops; /* HEALTH_PORT listener (NULL: none) */
};

/* ---- accept never spins on EMFILE ----
 *
 * civetweb's master thread polls the listening socket and calls accept(); when that
 * fails for want of a file descriptor, the connection stays pending, poll() returns
 * at once and the thread spins. The interposed accept() below keeps one descriptor
 * in reserve: on EMFILE/ENFILE it gives it up, accepts the pending connection,
 * closes it at once (the client sees a reset and retries elsewhere), and takes the
 * reserve back. The caps checked at start (MAX_CONNECTIONS against RLIMIT_NOFILE)
 * make this a last resort; it is counted (ws_accept_no_fd_total) and logged at
 * most once a second. */
static int g_reserve_fd = -1;
static metric *g_emfile_counter;
static _Atomic int64_t g_emfile_logged_ms;

static void shed_pending(int s)
{
	if (g_reserve_fd < 0)
		return;
	close(g_reserve_fd);
	int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* RST: no TIME_WAIT */
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	g_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (g_emfile_counter)
		metric_inc(g_emfile_counter);
	int64_t now = mono_ms(), last = atomic_load(&g_emfile_logged_ms);
	if (now - last >= 1000 && atomic_compare_exchange_strong(&g_emfile_logged_ms, &last, now))
		log_warn("out of file descriptors: connection dropped at accept", "{s:f}",
		         "dropped_total", g_emfile_counter ? metric_value(g_emfile_counter) : 0.0);
}

/* Every accept of civetweb's (its master thread's) comes here first. */
int accept(int s, struct sockaddr *addr, socklen_t *len)
{
	int fd = accept4(s, addr, len, 0);
	if (fd < 0) {
		int e = errno;
		if (e == EMFILE || e == ENFILE)
			shed_pending(s);
		errno = e;
	}
	return fd;
}

/* ---- the socket of a civetweb connection ----
 *
 * civetweb 1.15 does not expose a connection's socket, and the gateway needs it:
 * writer threads write whole frames to it without blocking (a stalled client must
 * not hold a thread) and cut it (shutdown) to end civetweb's read loop from
 * outside. Every read civetweb makes of it passes through ws_guard's recv() on
 * the connection's own worker thread, which remembers it (ws_guard_fd): exact for
 * any address family, no table of peers. getpeername() confirms it is the peer
 * civetweb reports (it formats the address the same way, getnameinfo). */

static int peer_is(int fd, const struct mg_request_info *ri)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), NULL, 0, NI_NUMERICHOST))
		return 0;
	int port = ss.ss_family == AF_INET6  ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	           : ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
	                                     : -1;
	return port == ri->remote_port && strcmp(host, ri->remote_addr) == 0;
}

static int socket_of(const struct mg_request_info *ri)
{
	int fd = ws_guard_fd();
	return peer_is(fd, ri) ? fd : -1;
}

/* ---- helpers ---- */

static ws_server *server_of(const struct mg_connection *c)
{
	return mg_get_user_data(mg_get_context(c));
}

static int refuse(ws_server *s, const struct mg_connection *mc, refuse_reason why, int status,
                  const char *code, const char *msg)
{
	metric_inc(s->st->refusals[why]);
	const struct mg_request_info *ri = mg_get_request_info(mc);
	log_info("websocket refused", "{s:i, s:s, s:s, s:i}", "status", status, "code", code,
	         "remote", ri->remote_addr, "port", ri->remote_port);
	(void)http_reply_error((struct mg_connection *)mc, status, code, "%s", msg);
	return 1;
}

/* A text frame of obj (takes it); NULL when it cannot be serialised. */
static frame *json_frame(json_t *obj)
{
	char *txt = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!txt)
		return NULL;
	frame *f = frame_new(WS_OP_TEXT, txt, strlen(txt), 0);
	free(txt);
	return f;
}

/* Queues f and drops the caller's reference (NULL: nothing). */
static void send_frame(conn *c, frame *f)
{
	if (!f)
		return;
	(void)conn_enqueue(c, f);
	frame_unref(f);
}

static void send_json(conn *c, json_t *obj)
{
	send_frame(c, json_frame(obj));
}

/* The first message of a socket: "connected" (events for it are delivered from now
 * on) or "catching_up" (the consumer is not reading yet; "connected" follows). */
static frame *hello_frame(ws_server *s, conn *c, const char *type)
{
	json_t *hello =
	    json_pack("{s:s, s:s, s:s, s:I}", "type", type, "connection_id", conn_id(c), "user_id",
	              conn_user(c), "heartbeat_interval", (json_int_t)s->cfg->heartbeat_interval);
	if (conn_device(c))
		json_object_set_new(hello, "device_id", json_string(conn_device(c)));
	if (strcmp(type, "connected") != 0)
		json_object_set_new(hello, "message",
		                    json_string("not reading Kafka yet (starting, or the broker is "
		                                "unreachable); \"connected\" follows"));
	return json_frame(hello);
}

static void send_error(ws_server *s, conn *c, const char *code, const char *msg)
{
	metric_inc(s->st->client_errors);
	send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", msg));
}

/* Logs the close c started, once, with no lock held. */
static void log_close_note(conn *c)
{
	int code;
	char reason[128];
	if (conn_take_close_note(c, &code, reason, sizeof(reason)))
		log_info("closing connection", "{s:s, s:s, s:i, s:s}", "conn", conn_id(c), "user",
		         conn_user(c), "code", code, "reason", reason);
}

/* Forgets c: no I/O on its socket after this. @locality its civetweb thread. */
static void release_conn(ws_server *s, const struct mg_connection *mc)
{
	conn *c = mg_get_user_connection_data(mc);
	mg_set_user_connection_data(mc, NULL);
	if (!c)
		return;
	ws_guard_detach();
	log_close_note(c);
	if (conn_detach(c)) {
		presence_bus_conn_closed(s->pres, c);
		registry_detach(s->reg, c);
		atomic_fetch_sub(&s->open, 1);
		log_debug("websocket closed", "{s:s, s:s}", "conn", conn_id(c), "user",
		          conn_user(c));
	}
	conn_unref(c);
}

/* ---- WebSocket handlers ---- */

enum { TICKET_REUSED = 1, QUERY_TOKEN_OFF = 2 };

/* Who the handshake is from: ?ticket= (single use, common/auth.h), else ?token=
 * (unless ALLOW_QUERY_TOKEN is off), else Authorization: Bearer. Copies the user
 * id into user and the session's expiry into *exp_s. Returns AUTH_OK, a negative
 * AUTH_ERR_*, TICKET_REUSED or QUERY_TOKEN_OFF. */
static int authenticate(ws_server *s, const struct mg_connection *mc, char *user, int64_t *exp_s)
{
	const char *q = mg_get_request_info(mc)->query_string;
	char token[AUTH_TOKEN_MAX + 1];
	int n = http_query_param(q, "ticket", token, sizeof(token));
	if (n == -2)
		return AUTH_ERR_MALFORMED;
	if (n >= 0) {
		auth_ticket tk;
		int rc = auth_verify_ticket(s->cfg->jwt_secret, token, &tk);
		if (rc != AUTH_OK)
			return rc;
		if (!ticket_set_claim(s->tickets, tk.jti, tk.exp_s, (int64_t)time(NULL)))
			return TICKET_REUSED;
		memcpy(user, tk.user, strlen(tk.user) + 1);
		*exp_s = tk.session_exp_s;
		return AUTH_OK;
	}
	n = http_query_param(q, "token", token, sizeof(token));
	if (n == -2)
		return AUTH_ERR_MALFORMED;
	if (n >= 0 && !s->cfg->allow_query_token)
		return QUERY_TOKEN_OFF;
	if (n < 0) {
		const char *b = auth_bearer(mg_get_header(mc, "Authorization"));
		if (b && strlen(b) <= AUTH_TOKEN_MAX)
			snprintf(token, sizeof(token), "%s", b);
		else
			token[0] = '\0';
	}
	return auth_verify_exp(s->cfg->jwt_secret, token, user, USER_ID_MAX + 1, exp_s);
}

/* Before the upgrade: every refusal is a plain HTTP error and no socket. */
static int ws_connect(const struct mg_connection *mc, void *cbdata)
{
	ws_server *s = cbdata;
	mg_set_user_connection_data(mc, NULL); /* never trust a reused thread's pointer */
	const struct mg_request_info *ri = mg_get_request_info(mc);

	if (atomic_load(&s->draining))
		return refuse(s, mc, REFUSE_SHUTTING_DOWN, 503, "shutting_down",
		              "this replica is shutting down; reconnect");
	if (!http_origin_allowed(s->cfg->allowed_origins, mg_get_header(mc, "Origin")))
		return refuse(s, mc, REFUSE_BAD_ORIGIN, 403, "forbidden_origin",
		              "origin not allowed");

	/* /ws or /ws/{user_id} */
	const char *uri = ri->local_uri ? ri->local_uri : "";
	char path_user[USER_ID_MAX + 1] = "";
	if (strcmp(uri, "/ws") != 0) {
		if (strncmp(uri, "/ws/", 4) != 0 || strlen(uri + 4) > USER_ID_MAX ||
		    !user_id_valid(uri + 4))
			return refuse(s, mc, REFUSE_BAD_REQUEST, 404, "not_found",
			              "use /ws or /ws/{user_id}");
		snprintf(path_user, sizeof(path_user), "%s", uri + 4);
	}

	char user[USER_ID_MAX + 1];
	int64_t exp_s = 0;
	int ar = authenticate(s, mc, user, &exp_s);
	if (ar == TICKET_REUSED)
		return refuse(s, mc, REFUSE_TICKET_REUSED, 401, "unauthorized",
		              "ticket already used: get a new one from POST /api/v1/ws-ticket");
	if (ar == QUERY_TOKEN_OFF)
		return refuse(s, mc, REFUSE_UNAUTHORIZED, 401, "unauthorized",
		              "?token= is off on this gateway: connect with ?ticket= from POST "
		              "/api/v1/ws-ticket");
	if (ar != AUTH_OK)
		return refuse(s, mc, REFUSE_UNAUTHORIZED, 401, "unauthorized", auth_strerror(ar));
	if (path_user[0] && strcmp(path_user, user) != 0)
		return refuse(s, mc, REFUSE_WRONG_USER, 403, "forbidden",
		              "the token's user differs from the path's");

	char device[USER_ID_MAX + 1];
	int dl = http_query_param(ri->query_string, "device_id", device, sizeof(device));
	if (dl == -2 || (dl >= 0 && !user_id_valid(device)))
		return refuse(s, mc, REFUSE_BAD_REQUEST, 400, "invalid_device_id",
		              "device_id must be 1..128 characters of [A-Za-z0-9._@:-]");

	/* The total cap keeps civetweb's threads and the process's file descriptors
	 * from running out (civetweb spins when accept fails for want of fds). */
	if (atomic_fetch_add(&s->open, 1) >= s->cfg->max_connections) {
		atomic_fetch_sub(&s->open, 1);
		return refuse(s, mc, REFUSE_TOTAL_CAP, 503, "over_capacity",
		              "this replica is full; try again");
	}
	int fd = socket_of(ri);
	if (fd < 0) {
		atomic_fetch_sub(&s->open, 1);
		log_error("socket of connection not found", "{s:s, s:i}", "remote", ri->remote_addr,
		          "port", ri->remote_port);
		(void)http_reply_error((struct mg_connection *)mc, 500, "internal",
		                       "could not set up the connection");
		return 1;
	}
	conn *c = conn_new((struct mg_connection *)mc, fd, user, dl >= 0 ? device : NULL, &s->lim,
	                   s->w, s->st);
	conn_set_expiry(c, exp_s * 1000000);
	mg_set_user_connection_data(mc, c);
	ws_guard_attach(c);
	return 0;
}

/* Hands the kernel back the pages of this thread's stack below the current frame
 * (STACK_TRIM). The handshake (token verification: libjwt, jansson, OpenSSL's HMAC)
 * runs deep and leaves pages resident that the WebSocket's idle life never touches
 * again: measured 25.6 -> 21.7 KiB of RSS per idle socket. Off by default: the
 * madvise() costs a TLB shootdown across the process's CPUs, and on this 2-core VM
 * the handshake rate dropped from a median of about 2,300/s to 1,700/s.
 * Everything below the current frame is dead (signals are blocked in these
 * threads); STACK_TRIM_KEEP spares madvise's own frames.
 * @locality a civetweb worker thread, between handshake and read loop. */
static void trim_stack(void)
{
	pthread_attr_t a;
	void *lo;
	size_t size, guard;
	if (pthread_getattr_np(pthread_self(), &a))
		return;
	int ok = !pthread_attr_getstack(&a, &lo, &size) && !pthread_attr_getguardsize(&a, &guard);
	pthread_attr_destroy(&a);
	if (!ok)
		return;
	volatile char here = 0;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = ((uintptr_t)lo + guard + page - 1) & ~(page - 1);
	uintptr_t sp = (uintptr_t)&here;
	if (sp < start + STACK_TRIM_KEEP + page)
		return;
	uintptr_t end = (sp - STACK_TRIM_KEEP) & ~(page - 1);
	(void)madvise((void *)start, end - start, MADV_DONTNEED);
}

static void ws_ready(struct mg_connection *mc, void *cbdata)
{
	ws_server *s = cbdata;
	conn *c = mg_get_user_connection_data(mc);
	if (!c)
		return;
	conn_touch(c, mono_ms());
	if (s->cfg->ws_sndbuf > 0) {
		int v = (int)s->cfg->ws_sndbuf;
		(void)setsockopt(conn_fd(c), SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	/* "connected" only once events for this socket can be delivered (the consumer
	 * is ready); before that "catching_up", and "connected" follows from the
	 * sweeper (see sweep_ready). The consumer's first assignment reads from the
	 * earliest such socket's time, so none of its events is skipped. */
	int live = consumer_ready(s->cons);
	if (!live) {
		consumer_note_waiting(s->cons, wall_us());
		conn_owe_hello(c);
	}
	frame *f = hello_frame(s, c, live ? "connected" : "catching_up");
	/* The hello goes out from this thread, ahead of any event queued once the
	 * connection is in the registry (see conn_hold). */
	conn_hold(c);
	if (registry_attach(s->reg, c, NULL) == REG_USER_FULL) {
		metric_inc(s->st->refusals[REFUSE_USER_CAP]);
		(void)conn_close(c, 1008, "too many connections for this user", CLOSE_USER_CAP);
	} else {
		conn_send_first(c, f);
		metric_inc(s->st->connects);
		log_debug("websocket open", "{s:s, s:s, s:b}", "conn", conn_id(c), "user",
		          conn_user(c), "live", live);
	}
	conn_release(c);
	frame_unref(f);
	/* ready since the check above: the sweeper may have passed this socket by */
	if (!live && consumer_ready(s->cons) && conn_take_hello(c))
		send_frame(c, hello_frame(s, c, "connected"));
	if (s->cfg->stack_trim)
		trim_stack();
}

/* A presence subscribe: the list's presence at once, or an error and nothing of it. */
static void handle_subscribe(ws_server *s, conn *c, const cmsg *m)
{
	if (!s->pres) {
		send_error(s, c, "presence_off", "presence is off on this gateway");
		return;
	}
	int rc = presence_bus_subscribe(s->pres, c, m->list_id, m->ticket);
	if (rc == PB_OK)
		return;
	send_json(c, json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code",
	                       rc == PB_TOO_MANY ? "too_many_subscriptions" : "forbidden",
	                       "message", presence_bus_strerror(rc), "list_id", m->list_id));
	metric_inc(s->st->client_errors);
}

static void handle_text(ws_server *s, conn *c, const char *data, size_t len)
{
	cmsg m;
	switch (client_msg_parse(data, len, &m)) {
	case CMSG_SUBSCRIBE:
		handle_subscribe(s, c, &m);
		break;
	case CMSG_UNSUBSCRIBE:
		if (s->pres)
			presence_bus_unsubscribe(s->pres, c, m.list_id);
		break;
	case CMSG_BAD_LIST:
		send_error(s, c, "invalid_message", "list_id must be a UUID");
		break;
	case CMSG_BAD_TICKET: /* no ticket: as a bad one, nothing of the list */
		send_error(
		    s, c, "forbidden",
		    "subscribe needs a \"ticket\" from POST /api/v1/lists/{id}/presence-ticket");
		break;
	case CMSG_PING:
		send_json(c, json_pack("{s:s}", "type", "pong"));
		break;
	case CMSG_PONG:
		break;
	case CMSG_INVALID_JSON:
		send_error(s, c, "invalid_json", "message must be a JSON object");
		break;
	case CMSG_NO_TYPE:
		send_error(s, c, "invalid_message", "message needs a string \"type\"");
		break;
	case CMSG_UNKNOWN_TYPE:
		send_error(s, c, "unknown_type", "unknown message type");
		break;
	}
}

static int ws_data(struct mg_connection *mc, int bits, char *data, size_t len, void *cbdata)
{
	ws_server *s = cbdata;
	conn *c = mg_get_user_connection_data(mc);
	if (!c)
		return 0;
	int op = bits & 0x0f, fin = bits & 0x80;
	conn_touch(c, mono_ms());
	metric_inc(s->st->client_messages);
	if (op == WS_OP_CLOSE) {
		/* Echo the close; civetweb ends the read loop after this frame. */
		frame *f = len >= 2 ? frame_new(WS_OP_CLOSE, data, 2, 0)
		                    : frame_new(WS_OP_CLOSE, "", 0, 0);
		conn_send_now(c, f);
		frame_unref(f);
		return 0;
	}
	if (conn_closing(c, NULL))
		return 1;
	/* Every frame counts (control frames and fragments too: each costs a read
	 * and a reply); past the limit nothing more is read from the socket. */
	if (s->cfg->client_rate_limit > 0 &&
	    !conn_rate_ok(c, mono_us(), (double)s->cfg->client_rate_limit,
	                  (double)s->cfg->client_rate_burst)) {
		(void)conn_close(c, 1008, s->rate_reason, CLOSE_RATE_LIMITED);
		ws_guard_stop();
		return 1;
	}
	if (len > (size_t)s->cfg->max_message_bytes) { /* ws_guard refused it already */
		(void)conn_close(c, 1009, "message too large", CLOSE_TOO_LARGE);
		ws_guard_stop();
		return 1;
	}
	switch (op) {
	case WS_OP_PING: { /* at most 125 bytes (ws_guard): a valid pong */
		send_frame(c, frame_new(WS_OP_PONG, data, len, 0));
		break;
	}
	case WS_OP_PONG:
		break;
	case WS_OP_TEXT:
		if (!fin)
			send_error(s, c, "invalid_message",
			           "fragmented messages are not supported");
		else
			handle_text(s, c, data, len);
		break;
	case 0x0: /* continuation of a fragmented message: refused at its first frame */
		break;
	default:
		send_error(s, c, "invalid_message", "only text messages are supported");
		break;
	}
	return 1;
}

static void ws_close(const struct mg_connection *mc, void *cbdata)
{
	release_conn(cbdata, mc);
}

/* ws_guard refused what the client sent (or ws_data stopped reading): close, and
 * hold the read loop until the close frame is out (a client that reads nothing
 * is cut by the sweeper after CLOSE_GRACE_MS). @locality the connection's thread. */
static void guard_refused(void *owner, guard_verdict v, uint64_t claimed, uint64_t bytes_read,
                          void *arg)
{
	ws_server *s = arg;
	conn *c = owner;
	if (v != GUARD_OK) {
		log_info("client frame refused", "{s:s, s:s, s:s, s:I, s:I}", "conn", conn_id(c),
		         "user", conn_user(c), "reason", ws_guard_reason(v), "claimed",
		         (json_int_t)claimed, "bytes_read", (json_int_t)bytes_read);
		(void)conn_close(c, ws_guard_code(v), ws_guard_reason(v),
		                 v == GUARD_TOO_LARGE ? CLOSE_TOO_LARGE : CLOSE_PROTOCOL);
	}
	(void)conn_wait_closed(c, s->cfg->close_grace_ms + SWEEP_MS);
}

/* A new connection on this worker thread: before civetweb reads a byte of it. */
static int on_init_connection(const struct mg_connection *mc, void **conn_data)
{
	(void)mc;
	*conn_data = NULL;
	ws_guard_begin();
	return 0;
}

/* Every connection (HTTP or not) passes here: frees what an accepted upgrade left
 * when the handshake itself failed. */
static void on_connection_close(const struct mg_connection *mc)
{
	ws_server *s = server_of(mc);
	if (s)
		release_conn(s, mc);
}

/* ---- HTTP endpoints ---- */

static int h_health(struct mg_connection *mc, void *cbdata)
{
	(void)cbdata;
	return http_reply_json(mc, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

static int h_ready(struct mg_connection *mc, void *cbdata)
{
	ws_server *s = cbdata;
	if (atomic_load(&s->draining))
		return http_reply_error(mc, 503, "shutting_down", "shutting down");
	if (!consumer_ready(s->cons))
		return http_reply_error(mc, 503, "not_ready",
		                        "Kafka partitions not assigned, or the consumer is not "
		                        "fetching (broker unreachable)");
	return http_reply_json(mc, 200, json_pack("{s:s}", "status", "ready"), NULL);
}

/* 1 when a and b are equal strings; the time depends on the lengths only. */
static int token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return d == 0 && lb;
}

/* /status lists user ids: off unless STATUS_TOKEN is set, and then only with
 * "Authorization: Bearer STATUS_TOKEN". Counts without ids are on /metrics. */
static int h_status(struct mg_connection *mc, void *cbdata)
{
	ws_server *s = cbdata;
	if (!s->cfg->status_token[0]) {
		metric_inc(s->st->status_refusals);
		return http_reply_error(mc, 403, "status_disabled",
		                        "/status is off: set STATUS_TOKEN to enable it (counts "
		                        "without user ids are on /metrics)");
	}
	const char *b = auth_bearer(mg_get_header(mc, "Authorization"));
	if (!b || !token_equal(b, s->cfg->status_token)) {
		metric_inc(s->st->status_refusals);
		return http_reply_error(mc, 401, "unauthorized",
		                        "/status needs Authorization: Bearer <STATUS_TOKEN>");
	}
	json_t *st = registry_status(s->reg, (size_t)s->cfg->status_max_users);
	json_object_set_new(st, "service", json_string("ws-gateway"));
	json_object_set_new(st, "version", json_string(GW_VERSION));
	json_object_set_new(st, "ready", json_boolean(consumer_ready(s->cons)));
	json_object_set_new(st, "draining", json_boolean(atomic_load(&s->draining)));
	json_object_set_new(st, "max_connections", json_integer(s->cfg->max_connections));
	return http_reply_json(mc, 200, st, NULL);
}

static int h_metrics(struct mg_connection *mc, void *cbdata)
{
	ws_server *s = cbdata;
	size_t len;
	char *body = metrics_render(s->st->reg, &len);
	int rc = http_reply(mc, 200, "text/plain; version=0.0.4", body, len, NULL);
	free(body);
	return rc;
}

/* ---- heartbeat ---- */

/* The sweeper's readiness and token duties for one socket: the "connected" owed
 * to a socket told "catching_up" once the consumer is ready, and the close with
 * 4001 "token expired" when the token's exp falls within this sweep period (so at
 * exp or at most SWEEP_MS before it: the client reconnects with a fresh token; with
 * the same one it is refused with 401). @locality the sweeper thread. */
static void sweep_ready(ws_server *s, conn *c, int live, int64_t wall)
{
	if (conn_closing(c, NULL))
		return;
	int64_t exp = conn_expiry(c);
	if (exp > 0 && wall >= exp - SWEEP_MS * 1000) {
		(void)conn_close(c, 4001, "token expired", CLOSE_TOKEN_EXPIRED);
		return;
	}
	if (live && conn_take_hello(c))
		send_frame(c, hello_frame(s, c, "connected"));
}

typedef struct shed_ent {
	conn *c;
	size_t bytes;
} shed_ent;

static int shed_cmp(const void *a, const void *b)
{
	size_t x = ((const shed_ent *)a)->bytes, y = ((const shed_ent *)b)->bytes;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* The send budget passed its high-water mark: closes (1013) the sockets holding the
 * most queued bytes until what stays queued is under the low-water mark. Largest
 * first because the queue a socket holds is what its slowness costs everyone: a
 * socket that keeps up holds next to nothing, however busy it is. The bytes of a
 * closed socket go back to the budget at once (its queue is dropped unless a write
 * is under way). @locality the sweeper. */
static void shed(ws_server *s, conn **v, size_t n)
{
	size_t used = send_budget_used(&s->budget);
	if (used <= s->budget.low)
		return;
	shed_ent *e = xmalloc((n ? n : 1) * sizeof(*e));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t b = conn_queued_bytes(v[i]);
		if (b > 0 && !conn_closing(v[i], NULL))
			e[k++] = (shed_ent){v[i], b};
	}
	qsort(e, k, sizeof(*e), shed_cmp);
	size_t closed = 0;
	for (size_t i = 0; i < k && used > s->budget.low; i++) {
		if (conn_close(e[i].c, 1013, CONN_BUDGET_REASON, CLOSE_SEND_BUDGET)) {
			used = used > e[i].bytes ? used - e[i].bytes : 0;
			closed++;
		}
	}
	free(e);
	log_warn("send budget over its high-water mark: largest queues closed", "{s:I, s:I, s:I}",
	         "closed", (json_int_t)closed, "queued_bytes",
	         (json_int_t)send_budget_used(&s->budget), "budget_bytes",
	         (json_int_t)s->budget.limit);
}

/* @locality the sweeper thread: pings every HEARTBEAT_INTERVAL, closes the silent,
 * those whose socket took nothing for WRITE_TIMEOUT_MS or drained less than
 * SEND_MIN_DRAIN_RATE, cuts sockets whose close was not answered within
 * CLOSE_GRACE_MS, sheds the largest queues when the send budget is under pressure
 * (woken at once for it), and writes the log lines of the closes started elsewhere
 * under locks. */
static void *sweeper_main(void *arg)
{
	ws_server *s = arg;
	int64_t hb_ms = s->cfg->heartbeat_interval * 1000;
	int64_t next_ping = mono_ms() + hb_ms;
	int64_t next_sweep = mono_ms() + SWEEP_MS, last_shed = 0;
	while (!atomic_load(&s->stop)) {
		int64_t wait = next_sweep - mono_ms();
		int pressure = send_budget_wait(&s->budget, wait > 0 ? (int)wait : 0);
		int64_t now = mono_ms();
		if (!pressure && now < next_sweep)
			continue;
		if (pressure) {
			/* Under sustained pressure every enqueue may wake us: the hard
			 * limit holds meanwhile, so one pass per SHED_MIN_MS is enough. */
			if (now - last_shed < SHED_MIN_MS) {
				usleep((useconds_t)(SHED_MIN_MS - (now - last_shed)) * 1000);
				now = mono_ms();
			}
			last_shed = now;
			size_t n;
			conn **v = registry_snapshot(s->reg, &n);
			shed(s, v, n);
			for (size_t i = 0; i < n; i++)
				log_close_note(v[i]);
			registry_snapshot_free(v, n);
			if (now < next_sweep)
				continue;
		}
		next_sweep = now + SWEEP_MS;
		int ping = now >= next_ping;
		if (ping)
			next_ping = now + hb_ms;
		size_t n;
		int live = consumer_ready(s->cons); /* read before the snapshot: see ws_ready */
		int64_t wall = wall_us();
		conn **v = registry_snapshot(s->reg, &n);
		for (size_t i = 0; i < n; i++) {
			conn *c = v[i];
			int64_t since;
			if (conn_closing(c, &since)) {
				if (now - since > s->cfg->close_grace_ms)
					conn_kill(c);
			} else if (conn_blocked_since(c) &&
			           now - conn_blocked_since(c) > s->cfg->write_timeout_ms) {
				(void)conn_close(c, 1013, "client not reading", CLOSE_SLOW_CLIENT);
			} else if (s->cfg->send_min_drain_rate > 0 &&
			           conn_drain_too_slow(c, now, s->cfg->send_drain_window_ms,
			                               s->cfg->send_min_drain_rate)) {
				(void)conn_close(c, 1013, "client reading too slowly",
				                 CLOSE_SLOW_DRAIN);
			} else if (now - conn_last_seen(c) > 2 * hb_ms) {
				(void)conn_close(c, 1001, "heartbeat timeout", CLOSE_HEARTBEAT);
			} else if (ping) {
				(void)conn_enqueue(c, s->ping);
			}
			sweep_ready(s, c, live, wall);
			log_close_note(c);
		}
		registry_snapshot_free(v, n);
	}
	return NULL;
}

/* ---- life cycle ---- */

static int ipv6_usable(void)
{
	if (!mg_check_feature(8))
		return 0;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

double ws_server_open(void *arg)
{
	ws_server *s = arg;
	return s ? (double)atomic_load(&s->open) : 0;
}

long ws_server_cap(const ws_server *s)
{
	return s->cfg->max_connections;
}

static double gauge_queued(void *arg)
{
	return (double)send_budget_used(arg);
}

static double gauge_peak(void *arg)
{
	return (double)send_budget_peak(arg);
}

static double gauge_limit(void *arg)
{
	return (double)((send_budget *)arg)->limit;
}

/* A cgroup memory limit file's value: 0 for "max" or v1's "no limit", -1 when the
 * file is absent. */
static int64_t read_limit(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char buf[64] = "";
	int ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok || !strncmp(buf, "max", 3))
		return 0;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	/* v1 reports "no limit" as a huge page-rounded number */
	if (errno || end == buf || v <= 0 || v >= (1LL << 60))
		return 0;
	return (int64_t)v;
}

/* The memory limit of this process's cgroup in bytes (v2, then v1: the path from
 * /proc/self/cgroup, then the mount's root, which is the container's own under a
 * cgroup namespace); 0 when none is set. */
static int64_t memory_limit(void)
{
	char line[512], path[700];
	FILE *f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		const char *rel = NULL, *file = NULL, *mnt = NULL;
		if (!strncmp(line, "0::", 3)) {
			rel = line + 3;
			mnt = "/sys/fs/cgroup";
			file = "memory.max";
		} else if (strstr(line, ":memory:")) {
			rel = strstr(line, ":memory:") + 8;
			mnt = "/sys/fs/cgroup/memory";
			file = "memory.limit_in_bytes";
		}
		if (!rel)
			continue;
		snprintf(path, sizeof(path), "%s%s/%s", mnt, rel, file);
		int64_t v = read_limit(path);
		if (v >= 0) {
			fclose(f);
			return v;
		}
	}
	if (f)
		fclose(f);
	int64_t v = read_limit("/sys/fs/cgroup/memory.max");
	if (v < 0)
		v = read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes");
	return v > 0 ? v : 0;
}

/* Checks that MAX_CONNECTIONS fits the process's limits; 0, or -1 with why in err
 * (one line, what to change). */
static int check_capacity(const gw_config *cfg, char *err, size_t errlen)
{
	struct rlimit rl;
	long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	               ? (long)rl.rlim_cur
	               : 1048576;
	/* At most num_threads sockets are being served and CONN_QUEUE wait for a
	 * thread (civetweb's master blocks when its queue is full), so this is every
	 * socket the process can hold; FD_HEADROOM covers the rest. */
	long need = cfg->max_connections + HTTP_SPARE_THREADS + CONN_QUEUE + FD_HEADROOM +
	            (cfg->health_port ? OPS_THREADS + 1 : 0);
	if (need > fds) {
		snprintf(err, errlen,
		         "MAX_CONNECTIONS=%ld needs %ld file descriptors but RLIMIT_NOFILE is %ld: "
		         "set MAX_CONNECTIONS to at most %ld or raise the limit",
		         cfg->max_connections, need, fds, cfg->max_connections - (need - fds));
		return -1;
	}
	if (cfg->send_queue_max_bytes > cfg->send_queue_total) {
		snprintf(err, errlen,
		         "SEND_QUEUE_MAX_BYTES=%ld is larger than SEND_QUEUE_TOTAL_BYTES=%ld",
		         cfg->send_queue_max_bytes, cfg->send_queue_total);
		return -1;
	}
	int64_t mem = memory_limit();
	int64_t cost = BASE_COST_BYTES + cfg->send_queue_total +
	               (int64_t)(cfg->max_connections + HTTP_SPARE_THREADS) * SOCKET_COST_BYTES;
	if (mem > 0 && cost > mem) {
		int64_t fit = (mem - BASE_COST_BYTES - cfg->send_queue_total) / SOCKET_COST_BYTES -
		              HTTP_SPARE_THREADS;
		snprintf(err, errlen,
		         "MAX_CONNECTIONS=%ld with SEND_QUEUE_TOTAL_BYTES=%ld needs about %" PRId64
		         " MiB but the container's memory limit is %" PRId64
		         " MiB (%ld KiB per socket, %ld MiB base): set MAX_CONNECTIONS to at "
		         "most %" PRId64 " or raise the limit",
		         cfg->max_connections, cfg->send_queue_total, (cost + (1 << 20) - 1) >> 20,
		         mem >> 20, SOCKET_COST_BYTES >> 10, BASE_COST_BYTES >> 20,
		         fit > 0 ? fit : 0);
		return -1;
	}
	return 0;
}

ws_server *ws_server_start(const gw_config *cfg, registry *reg, writer *w, const gw_stats *st,
                           consumer *cons, presence_bus *pres, char *err, size_t errlen)
{
	ws_server *s = xcalloc(1, sizeof(*s));
	s->pres = pres;
	s->cfg = cfg;
	s->reg = reg;
	s->w = w;
	s->st = st;
	s->cons = cons;
	s->lim.max_frames = (size_t)cfg->send_queue_max_frames;
	s->lim.max_bytes = (size_t)cfg->send_queue_max_bytes;
	send_budget_init(&s->budget, (size_t)cfg->send_queue_total);
	s->lim.budget = &s->budget;
	s->ping = frame_new(WS_OP_PING, "", 0, 0);
	s->tickets = ticket_set_new();
	snprintf(s->rate_reason, sizeof(s->rate_reason),
	         "rate limit exceeded: more than %ld messages/s (burst %ld)",
	         cfg->client_rate_limit, cfg->client_rate_burst);
	if (check_capacity(cfg, err, errlen))
		goto fail;
	g_emfile_counter = st->accept_emfile;
	if (g_reserve_fd < 0)
		g_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	metrics_gauge_fn(st->reg, "ws_send_queue_bytes",
	                 "Bytes queued on all sockets (counted against SEND_QUEUE_TOTAL_BYTES).",
	                 NULL, gauge_queued, &s->budget);
	metrics_gauge_fn(st->reg, "ws_send_queue_bytes_peak",
	                 "The most bytes queued on all sockets at once since start.", NULL,
	                 gauge_peak, &s->budget);
	metrics_gauge_fn(st->reg, "ws_send_queue_budget_bytes", "SEND_QUEUE_TOTAL_BYTES.", NULL,
	                 gauge_limit, &s->budget);

	char port[32], threads[32], queue[32];
	/* "+port": IPv6 and IPv4 (one dual-stack socket) where civetweb has IPv6
	 * (mg_check_feature 8; Debian 12's 1.15 has not) and the kernel too. */
	snprintf(port, sizeof(port), "%s%ld", ipv6_usable() ? "+" : "", cfg->port);
	snprintf(threads, sizeof(threads), "%ld", cfg->max_connections + HTTP_SPARE_THREADS);
	snprintf(queue, sizeof(queue), "%d", CONN_QUEUE);
	const char *opts[] = {"listening_ports",
	                      port,
	                      "num_threads",
	                      threads,
	                      "tcp_nodelay",
	                      "1",
	                      "enable_keep_alive",
	                      "no",
	                      "request_timeout_ms",
	                      "10000",
	                      "websocket_timeout_ms",
	                      "30000",
	                      "listen_backlog",
	                      "4096",
	                      "connection_queue",
	                      queue,
	                      NULL};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.connection_close = on_connection_close;
	cb.init_connection = on_init_connection;
	ws_guard_init((size_t)cfg->max_message_bytes, guard_refused, s, st->client_bytes);
	mg_init_library(0);
	s->ctx = mg_start(&cb, s, opts);
	if (!s->ctx) {
		snprintf(err, errlen, "could not start the HTTP server on port %ld", cfg->port);
		mg_exit_library();
		goto fail;
	}
	mg_set_websocket_handler(s->ctx, "/ws", ws_connect, ws_ready, ws_data, ws_close, s);
	mg_set_request_handler(s->ctx, "/health", h_health, s);
	mg_set_request_handler(s->ctx, "/ready", h_ready, s);
	mg_set_request_handler(s->ctx, "/status", h_status, s);
	mg_set_request_handler(s->ctx, "/metrics", h_metrics, s);
	if (cfg->health_port) {
		/* Its own threads: WebSockets and idle connections on PORT cannot take
		 * them, so the probes answer however full the replica is. */
		char hport[32], hthreads[32];
		snprintf(hport, sizeof(hport), "%ld", cfg->health_port);
		snprintf(hthreads, sizeof(hthreads), "%d", OPS_THREADS);
		const char *hopts[] = {"listening_ports",
		                       hport,
		                       "num_threads",
		                       hthreads,
		                       "enable_keep_alive",
		                       "no",
		                       "request_timeout_ms",
		                       "2000",
		                       NULL};
		struct mg_callbacks hcb;
		memset(&hcb, 0, sizeof(hcb));
		s->ops = mg_start(&hcb, NULL, hopts);
		if (!s->ops) {
			snprintf(err, errlen, "could not start the health listener on port %s",
			         hport);
			goto fail;
		}
		mg_set_request_handler(s->ops, "/health", h_health, s);
		mg_set_request_handler(s->ops, "/ready", h_ready, s);
		mg_set_request_handler(s->ops, "/metrics", h_metrics, s);
	}
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s)) {
		snprintf(err, errlen, "could not start the heartbeat thread");
		goto fail;
	}
	s->have_sweeper = 1;
	(void)pthread_setname_np(s->sweeper, "gw-sweeper");
	log_info("listening", "{s:i, s:i, s:i, s:I, s:b}", "port", (int)cfg->port, "health_port",
	         (int)cfg->health_port, "max_connections", (int)cfg->max_connections,
	         "send_queue_total_bytes", (json_int_t)cfg->send_queue_total, "ipv6",
	         port[0] == '+');
	return s;
fail:
	ws_server_stop(s);
	return NULL;
}

void ws_server_drain(ws_server *s, int64_t deadline_ms)
{
	atomic_store(&s->draining, 1);
	size_t n;
	conn **v = registry_snapshot(s->reg, &n);
	log_info("draining", "{s:i}", "connections", (int)n);
	for (size_t i = 0; i < n; i++)
		(void)conn_close(v[i], 1001, "server shutting down", CLOSE_SHUTDOWN);
	/* Give clients half the time to answer the close, then cut the rest. */
	int64_t soft = mono_ms() + (deadline_ms - mono_ms()) / 2;
	while (atomic_load(&s->open) > 0 && mono_ms() < soft)
		usleep(20000);
	for (size_t i = 0; i < n; i++)
		conn_kill(v[i]);
	registry_snapshot_free(v, n);
	v = registry_snapshot(s->reg, &n); /* connections that raced the drain */
	for (size_t i = 0; i < n; i++)
		conn_kill(v[i]);
	registry_snapshot_free(v, n);
	while (atomic_load(&s->open) > 0 && mono_ms() < deadline_ms)
		usleep(20000);
}

void ws_server_stop(ws_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, 1);
	if (s->have_sweeper)
		pthread_join(s->sweeper, NULL);
	if (s->ops)
		mg_stop(s->ops);
	if (s->ctx) {
		mg_stop(s->ctx);
		mg_exit_library();
	}
	frame_unref(s->ping);
	ticket_set_free(s->tickets);
	send_budget_destroy(&s->budget);
	free(s);
}
