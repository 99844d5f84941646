/* conn: one WebSocket connection: identity, a bounded outbound queue of frames,
 * the flush step the writer threads run, and a server-initiated close.
 *
 * Frames are built once (WebSocket header + payload in one buffer) and shared by
 * reference between every queue they are in, so one event is serialised once
 * whatever the number of recipients.
 *
 * Life cycle: conn_new (civetweb connect handler) -> conn_start (ready handler,
 * after the upgrade) -> conn_detach (close handler: no I/O on the socket after it
 * returns) -> the last conn_unref frees it. Any thread may enqueue or close. */
#ifndef GW_CONN_H
#define GW_CONN_H

#include "common/util.h"
#include "stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct mg_connection;
struct writer;

enum {
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa
};

typedef struct frame {
	atomic_int refs;
	int64_t ts_us;        /* wall clock of the event (latency histogram); 0: none */
	int64_t recv_us;      /* mono_us when the consumer got the event; 0: none */
	size_t len;           /* bytes in data */
	unsigned char data[]; /* header + payload, ready for the socket */
} frame;

/* A new unmasked server frame (FIN set) of opcode with a copy of payload. refs=1.
 * payload NULL: the len bytes at the end of data are left for the caller to fill. */
frame *frame_new(int opcode, const void *payload, size_t len, int64_t ts_us);
/* A close frame carrying code and a reason (truncated to fit a control frame). */
frame *frame_close_new(int code, const char *reason);
frame *frame_ref(frame *f);
void frame_unref(frame *f);

/* The process's memory budget for send queues (SEND_QUEUE_TOTAL_BYTES): the bytes of
 * event frames queued on every socket, accounted lock-free. A frame that would take
 * `used` past `limit` is not queued: its socket is closed with 1013 instead, so
 * `used` never exceeds `limit`. Crossing `high` (7/8 of the limit) wakes the
 * shedder (the sweeper thread), which closes the sockets holding the most queued
 * bytes until `used` is back under `low` (3/4): under pressure the slowest readers
 * go first, before the hard limit hurts anyone else. Close frames (at most 127
 * bytes per socket) are not counted. */
typedef struct send_budget {
	atomic_size_t used; /* bytes queued now */
	atomic_size_t peak; /* the highest `used` seen */
	size_t limit, high, low;
	atomic_int pressure; /* 1 from crossing `high` until the shedder ran */
	pthread_mutex_t mu;  /* guards only the wake-up below */
	pthread_cond_t cv;
} send_budget;

void send_budget_init(send_budget *b, size_t limit);
void send_budget_destroy(send_budget *b);
size_t send_budget_used(const send_budget *b);
size_t send_budget_peak(const send_budget *b);
/* Waits up to ms (or until pressure) and returns 1 when the shedder should run.
 * @locality the sweeper thread. */
int send_budget_wait(send_budget *b, int ms);

typedef struct conn_limits {
	size_t max_frames;   /* queue bound in frames */
	size_t max_bytes;    /* queue bound in bytes */
	send_budget *budget; /* shared by every connection; NULL: no global bound */
} conn_limits;

typedef struct conn conn;

/* A connection for user on socket fd (-1 when unknown) of civetweb connection mg.
 * refs=1 (the caller's). device may be NULL. */
conn *conn_new(struct mg_connection *mg, int fd, const char *user, const char *device,
               const conn_limits *lim, struct writer *w, const gw_stats *st);
conn *conn_ref(conn *c);
void conn_unref(conn *c);

const char *conn_id(const conn *c);
const char *conn_user(const conn *c);
const char *conn_device(const conn *c);
int conn_fd(const conn *c);

/* The reason of every 1013 close for SEND_QUEUE_TOTAL_BYTES. */
#define CONN_BUDGET_REASON "server send budget exhausted: reconnect and catch up"

enum {
	CONN_QUEUED = 0,
	CONN_CLOSING = -1,  /* the connection is closing: frame dropped */
	CONN_OVERFLOW = -2, /* the bound was passed now: close 1013 started, frame dropped */
};
/* Appends f (a new reference is taken) and wakes a writer. @locks c->mu briefly. */
int conn_enqueue(conn *c, frame *f);

/* Sockets given frames whose hand-over to the writer is put off to the end of the
 * caller's batch (conn_batch_flush): the writer wakes once per batch, not once per
 * frame, and a socket that got several frames of the batch writes them in one
 * sendmsg. Each entry holds the socket's scheduling token and a reference.
 * @locality one thread (the consumer's). Zero-initialised is empty. */
typedef struct conn_batch {
	conn **v;
	size_t n, cap;
	size_t frames, bytes; /* queued through this batch since its last flush */
} conn_batch;
/* conn_enqueue, with the wake-up left to conn_batch_flush(b) (b NULL: now). The
 * batch hands its sockets to the writer threads early once it has queued, on
 * average, a quarter of a socket's bound (frames or bytes) to each socket it holds:
 * a backlog never fills a queue before a writer could start on it. No I/O here in
 * either case (the registry calls this under its lock). */
int conn_enqueue_batch(conn *c, frame *f, conn_batch *b);
/* Hands every socket of b to its writer (one lock, one wake-up; a short batch that
 * finds the writers caught up is written by the caller: writer_run_many) and
 * empties b. */
void conn_batch_flush(conn_batch *b);
/* Flushes what is left and frees the list. */
void conn_batch_free(conn_batch *b);

/* Starts a server-initiated close: the frames still queued are dropped, the close
 * frame goes out next, then the write side is shut. Returns 1 when this call
 * started it, 0 when a close was already under way. */
int conn_close(conn *c, int code, const char *reason, close_reason why);
/* Cuts the socket now (shutdown both ways) so civetweb's read loop ends. */
void conn_kill(conn *c);
/* 1 and the start time when a close is under way. */
int conn_closing(conn *c, int64_t *since_ms);
/* Waits up to timeout_ms for the close frame of a close under way to be on the
 * socket (or the socket to be cut or detached). 1 when the close frame went out.
 * @locality the connection's civetweb thread. */
int conn_wait_closed(conn *c, int64_t timeout_ms);

/* Activity and heartbeat bookkeeping (atomics: any thread). */
void conn_touch(conn *c, int64_t now_ms);
int64_t conn_last_seen(const conn *c);
/* The token's expiry (wall clock us; 0: none), set once at connect. Any thread. */
void conn_set_expiry(conn *c, int64_t wall_us);
int64_t conn_expiry(const conn *c);
/* The socket was told "catching_up": conn_owe_hello() marks that "connected" is
 * still owed; conn_take_hello() returns 1 to exactly one caller once (who sends it).
 * Any thread. */
void conn_owe_hello(conn *c);
int conn_take_hello(conn *c);
/* Token bucket on client messages; 1 when the message is within the limit.
 * @locality the connection's civetweb thread only. */
int conn_rate_ok(conn *c, int64_t now_us, double rate, double burst);

/* The connection's socket is going away: no I/O on it after this returns (waits for
 * a write in progress). Idempotent. Returns 1 the first time. */
int conn_detach(conn *c);

/* Setup of a new connection without a writer thread (one thread wake less per
 * handshake): conn_hold() takes the scheduling token before the connection is
 * attached to the registry, so frames queued meanwhile wait in its queue;
 * conn_send_first() then writes f straight to the socket ahead of them (what the
 * socket does not take is put at the head of the queue, so the stream stays
 * whole); conn_release() hands the token to the writer when frames are waiting.
 * @locality the connection's civetweb thread, in that order. */
void conn_hold(conn *c);
void conn_send_first(conn *c, frame *f);
void conn_release(conn *c);

/* Writes one small frame now, without queueing and without blocking (best effort;
 * used for the close reply from the connection's own thread). */
void conn_send_now(conn *c, const frame *f);

enum {
	FLUSH_IDLE = 0,    /* nothing left to write; the writer lets go of the conn */
	FLUSH_MORE = 1,    /* more frames queued: schedule again */
	FLUSH_BLOCKED = 2, /* socket full at a frame boundary: wait for POLLOUT */
	FLUSH_DONE = 3,    /* dead or closed: the writer lets go */
};
/* Since when the socket has been full with frames waiting (mono ms; 0: not). */
int64_t conn_blocked_since(conn *c);
/* Bytes of event frames queued now (what a close would give back to the budget). */
size_t conn_queued_bytes(conn *c);
/* Minimum drain rate: while the socket stays backlogged (frames queued, socket
 * found full, not emptied since), the bytes it takes are counted over windows of
 * window_ms; a window in which it took fewer than min_rate bytes/s (on average)
 * returns 1 (the caller closes it with 1013). Progress does not restart the clock:
 * only an empty queue does. @locality the sweeper. */
int conn_drain_too_slow(conn *c, int64_t now_ms, int64_t window_ms, int64_t min_rate);
/* The close this connection started and has not been logged yet: 1 (once) with
 * its code and reason (reason_len bytes). Logging happens outside every lock, so
 * close starts only record what to say. */
int conn_take_close_note(conn *c, int *code, char *reason, size_t reason_len);
/* The slot of c in the registry's list of every connection. @locks registry's. */
size_t *conn_registry_slot(conn *c);
/* Writes queued frames (a bounded batch) without blocking. @locality a writer thread,
 * or the thread of writer_run_many; the caller holds the scheduling token of c (see
 * writer.c). */
int conn_flush(conn *c);
/* Scheduling token: exactly one of {ready queue, a writer, the poller} owns a
 * scheduled conn (and one reference with it). Claims it when free and hands the
 * conn to the writer; 1 when claimed. */
int conn_try_schedule(conn *c);
/* Registers c's own socket with the writer's epoll set (EPOLLOUT, one shot; no
 * dup, so parking costs no file descriptor). 0, or -1 when c is dead (the caller
 * drops it). conn_detach removes the registration while the fd is still civetweb's
 * and open, so a later socket reusing the number is never touched. @locks c->mu. */
int conn_park(conn *c, int epfd);
/* Takes c back after its event; 1 when it was parked (0: conn_detach took it and
 * handed it to writer_orphan). @locality the poller. */
int conn_unpark(conn *c, int epfd);

#endif
