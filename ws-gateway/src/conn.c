#include "conn.h"

#include "common/log.h"
#include "writer.h"

#include <civetweb.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_BATCH_FRAMES 64
#define FLUSH_BATCH_BYTES  (256 * 1024)

/* NONE -> PENDING (asked for; applied when no writer is on the socket) -> QUEUED
 * (the close frame is in the ring behind at most a partly sent frame) -> SENT. */
typedef enum { CLOSE_NONE = 0, CLOSE_PENDING, CLOSE_QUEUED, CLOSE_SENT } close_state;

struct conn {
	atomic_int refs;
	pthread_mutex_t mu;       /* protects everything below marked (mu) */
	pthread_cond_t idle;      /* signalled when writing drops to 0 */
	struct mg_connection *mg; /* civetweb connection; its lock serialises socket writes */
	int fd;                   /* the socket; valid while !dead */
	char id[UUID_STR_LEN];
	char user[USER_ID_MAX + 1];
	char device[USER_ID_MAX + 1];
	conn_limits lim;
	struct writer *w;
	const gw_stats *st;
	/* (mu) outbound queue: ring of frame references */
	frame **ring;
	size_t cap, head, n, bytes;
	size_t partial_off;       /* (mu) bytes of the head frame already on the socket */
	int64_t blocked_since_ms; /* (mu) socket full with frames waiting since (0: not) */
	int scheduled;            /* (mu) owned by the write pipeline */
	int writing;              /* (mu) a writer is on the socket */
	int dead;                 /* (mu) detached: the socket is no longer ours */
	int cut;                  /* (mu) socket shut down by us */
	close_state cstate;       /* (mu) */
	frame *close_frame;       /* (mu) pending close frame */
	int64_t close_since_ms;   /* (mu) */
	int parked;               /* (mu) waiting for POLLOUT in the writer's poller */
	int park_epfd;            /* (mu) epoll set fd is registered with (-1: none) */
	size_t acct;              /* (mu) bytes of this queue counted in lim.budget */
	int64_t drain_since_ms;   /* (mu) backlogged since (0: queue emptied since) */
	int64_t drain_win_ms;     /* (mu) start of the current drain-rate window */
	size_t drain_bytes;       /* (mu) bytes the socket took in that window */
	int note_pending;         /* (mu) a close was started and not logged yet */
	int note_code;            /* (mu) */
	const char *note_reason;  /* (mu) a string literal */
	size_t reg_slot;          /* (registry's lock) index in the registry's list */
	atomic_llong last_seen_ms;
	double tokens; /* rate limiter (connection thread only) */
	int64_t tokens_at_us;
	atomic_llong expires_us; /* the token's exp, wall clock us (0: none) */
	atomic_int hello_owed;   /* told "catching_up": "connected" still to send */
};

/* ---- frames ---- */

frame *frame_new(int opcode, const void *payload, size_t len, int64_t ts_us)
{
	unsigned char hdr[10];
	size_t hl;
	hdr[0] = (unsigned char)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		hdr[1] = (unsigned char)len;
		hl = 2;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		hl = 4;
	} else {
		hdr[1] = 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	frame *f = xmalloc(sizeof(*f) + hl + len);
	atomic_init(&f->refs, 1);
	f->ts_us = ts_us;
	f->recv_us = 0;
	f->len = hl + len;
	memcpy(f->data, hdr, hl);
	if (len && payload)
		memcpy(f->data + hl, payload, len);
	return f;
}

frame *frame_close_new(int code, const char *reason)
{
	unsigned char buf[125];
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > sizeof(buf) - 2)
		rl = sizeof(buf) - 2;
	buf[0] = (unsigned char)(code >> 8);
	buf[1] = (unsigned char)code;
	if (rl)
		memcpy(buf + 2, reason, rl);
	return frame_new(WS_OP_CLOSE, buf, rl + 2, 0);
}

frame *frame_ref(frame *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void frame_unref(frame *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		free(f);
}

/* ---- the send-queue budget ---- */

void send_budget_init(send_budget *b, size_t limit)
{
	atomic_init(&b->used, 0);
	atomic_init(&b->peak, 0);
	b->limit = limit;
	b->high = limit - limit / 8;
	b->low = limit - limit / 4;
	atomic_init(&b->pressure, 0);
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* immune to wall-clock steps */
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
}

void send_budget_destroy(send_budget *b)
{
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
}

size_t send_budget_used(const send_budget *b)
{
	return atomic_load_explicit(&b->used, memory_order_relaxed);
}

size_t send_budget_peak(const send_budget *b)
{
	return atomic_load_explicit(&b->peak, memory_order_relaxed);
}

int send_budget_wait(send_budget *b, int ms)
{
	pthread_mutex_lock(&b->mu);
	if (!atomic_load(&b->pressure)) {
		struct timespec ts = deadline_in(CLOCK_MONOTONIC, ms);
		(void)pthread_cond_timedwait(&b->cv, &b->mu, &ts);
	}
	pthread_mutex_unlock(&b->mu);
	return atomic_exchange(&b->pressure, 0) ||
	       atomic_load_explicit(&b->used, memory_order_relaxed) > b->high;
}

static void budget_peak(send_budget *b, size_t v)
{
	size_t p = atomic_load_explicit(&b->peak, memory_order_relaxed);
	while (v > p && !atomic_compare_exchange_weak(&b->peak, &p, v))
		;
}

/* Reserves len bytes; 0, or -1 when that would pass the limit. Wakes the shedder
 * when the reservation crosses the high-water mark. No I/O (any lock may be held). */
static int budget_take(send_budget *b, size_t len)
{
	size_t old = atomic_fetch_add(&b->used, len);
	if (old + len > b->limit) {
		atomic_fetch_sub(&b->used, len);
		return -1;
	}
	budget_peak(b, old + len);
	if (old + len > b->high && !atomic_exchange(&b->pressure, 1)) {
		pthread_mutex_lock(&b->mu); /* held for the signal only */
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
	}
	return 0;
}

/* ---- connection ---- */

conn *conn_new(struct mg_connection *mg, int fd, const char *user, const char *device,
               const conn_limits *lim, struct writer *w, const gw_stats *st)
{
	conn *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->mg = mg;
	c->fd = fd;
	uuid_new(c->id);
	snprintf(c->user, sizeof(c->user), "%s", user);
	snprintf(c->device, sizeof(c->device), "%s", device ? device : "");
	c->lim = *lim;
	c->w = w;
	c->st = st;
	c->park_epfd = -1;
	atomic_init(&c->last_seen_ms, mono_ms());
	c->tokens = -1; /* filled on first use */
	return c;
}

conn *conn_ref(conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

/* The queued bytes the budget counts: all but a close frame at the tail. (mu) */
static size_t acct_bytes(const conn *c)
{
	size_t b = c->bytes;
	if (c->n && c->close_frame && c->ring[(c->head + c->n - 1) % c->cap] == c->close_frame)
		b -= c->close_frame->len;
	return b;
}

/* Brings the budget in line with this queue after it changed. (mu) held. */
static void sync_acct(conn *c)
{
	send_budget *b = c->lim.budget;
	size_t now = acct_bytes(c);
	if (!b || now == c->acct)
		return;
	if (now > c->acct) {
		size_t v = atomic_fetch_add(&b->used, now - c->acct) + (now - c->acct);
		budget_peak(b, v);
	} else {
		atomic_fetch_sub(&b->used, c->acct - now);
	}
	c->acct = now;
}

static void drop_queue(conn *c)
{
	for (size_t i = 0; i < c->n; i++)
		frame_unref(c->ring[(c->head + i) % c->cap]);
	c->head = c->n = c->bytes = 0;
	c->partial_off = 0;
	c->drain_since_ms = 0;
	sync_acct(c);
}

static int ring_push(conn *c, frame *f);

/* Replaces the queue by the close frame, behind the head frame when part of it is
 * already on the socket (a frame is never cut short: the stream stays valid).
 * (mu) held, no writer on the socket. */
static void apply_close(conn *c)
{
	frame *keep = NULL;
	if (c->partial_off > 0 && c->n > 0) {
		keep = c->ring[c->head];
		c->n--;
		c->head = (c->head + 1) % c->cap;
		c->bytes -= keep->len;
	}
	size_t off = c->partial_off;
	drop_queue(c);
	if (keep) {
		(void)ring_push(c, keep); /* the ring is empty: cannot fail */
		c->partial_off = off;
	}
	(void)ring_push(c, frame_ref(c->close_frame));
	c->cstate = CLOSE_QUEUED;
	sync_acct(c);
}

void conn_unref(conn *c)
{
	if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	drop_queue(c);
	free(c->ring);
	frame_unref(c->close_frame);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->idle);
	free(c);
}

const char *conn_id(const conn *c)
{
	return c->id;
}
const char *conn_user(const conn *c)
{
	return c->user;
}
const char *conn_device(const conn *c)
{
	return c->device[0] ? c->device : NULL;
}
int conn_fd(const conn *c)
{
	return c->fd;
}

void conn_touch(conn *c, int64_t now_ms)
{
	atomic_store_explicit(&c->last_seen_ms, now_ms, memory_order_relaxed);
}

int64_t conn_last_seen(const conn *c)
{
	return atomic_load_explicit(&c->last_seen_ms, memory_order_relaxed);
}

void conn_set_expiry(conn *c, int64_t wall_us)
{
	atomic_store(&c->expires_us, wall_us);
}

int64_t conn_expiry(const conn *c)
{
	return atomic_load(&c->expires_us);
}

void conn_owe_hello(conn *c)
{
	atomic_store(&c->hello_owed, 1);
}

int conn_take_hello(conn *c)
{
	return atomic_exchange(&c->hello_owed, 0);
}

int conn_rate_ok(conn *c, int64_t now_us, double rate, double burst)
{
	if (c->tokens < 0) {
		c->tokens = burst;
		c->tokens_at_us = now_us;
	}
	c->tokens += (double)(now_us - c->tokens_at_us) * rate / 1e6;
	if (c->tokens > burst)
		c->tokens = burst;
	c->tokens_at_us = now_us;
	if (c->tokens < 1.0)
		return 0;
	c->tokens -= 1.0;
	return 1;
}

/* Claims the scheduling token when free. (mu) held. */
static int claim_schedule(conn *c)
{
	if (c->scheduled || c->dead)
		return 0;
	c->scheduled = 1;
	return 1;
}

int conn_try_schedule(conn *c)
{
	pthread_mutex_lock(&c->mu);
	int go = claim_schedule(c);
	pthread_mutex_unlock(&c->mu);
	if (go)
		writer_schedule(c->w, conn_ref(c));
	return go;
}

/* Makes room for one more frame (the bound is checked by the callers); -1 when the
 * ring is at its largest size. (mu) held. */
static int ring_grow(conn *c)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 8;
		if (ncap > c->lim.max_frames + 1)
			ncap = c->lim.max_frames + 1;
		if (ncap <= c->n)
			return -1;
		frame **nr = xmalloc(ncap * sizeof(*nr));
		for (size_t i = 0; i < c->n; i++)
			nr[i] = c->ring[(c->head + i) % c->cap];
		free(c->ring);
		c->ring = nr;
		c->cap = ncap;
		c->head = 0;
	}
	return 0;
}

static int ring_push(conn *c, frame *f)
{
	if (ring_grow(c))
		return -1;
	c->ring[(c->head + c->n) % c->cap] = f;
	c->n++;
	c->bytes += f->len;
	return 0;
}

/* (mu) held. reason: a string literal. The log line is written later, outside
 * every lock (conn_take_close_note). */
static void start_close(conn *c, int code, const char *reason, close_reason why)
{
	c->cstate = CLOSE_PENDING;
	c->close_frame = frame_close_new(code, reason);
	c->close_since_ms = mono_ms();
	if (!c->writing)
		apply_close(c);
	metric_inc(c->st->closes[why]);
	c->note_pending = 1;
	c->note_code = code;
	c->note_reason = reason;
}

int conn_take_close_note(conn *c, int *code, char *reason, size_t reason_len)
{
	pthread_mutex_lock(&c->mu);
	int r = c->note_pending;
	if (r) {
		c->note_pending = 0;
		*code = c->note_code;
		snprintf(reason, reason_len, "%s", c->note_reason);
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

size_t *conn_registry_slot(conn *c)
{
	return &c->reg_slot;
}

int conn_enqueue(conn *c, frame *f)
{
	return conn_enqueue_batch(c, f, NULL);
}

/* Hands b's sockets over and empties b. here: a short batch may be written by the
 * calling thread (writer_run_many); 0: to the writer threads only, for the early
 * flush inside conn_enqueue_batch, whose caller may hold the registry's lock (no
 * I/O under it). */
static void batch_hand_over(conn_batch *b, int here)
{
	/* every connection of a process shares its one writer; runs of the same
	 * writer go together all the same */
	size_t i = 0;
	while (i < b->n) {
		size_t j = i + 1;
		while (j < b->n && b->v[j]->w == b->v[i]->w)
			j++;
		if (here)
			writer_run_many(b->v[i]->w, b->v + i, j - i);
		else
			writer_schedule_many(b->v[i]->w, b->v + i, j - i);
		i = j;
	}
	b->n = 0;
	b->frames = b->bytes = 0;
}

void conn_batch_flush(conn_batch *b)
{
	batch_hand_over(b, 1);
}

void conn_batch_free(conn_batch *b)
{
	conn_batch_flush(b);
	free(b->v);
	b->v = NULL;
	b->cap = 0;
}

int conn_enqueue_batch(conn *c, frame *f, conn_batch *b)
{
	int rc = CONN_QUEUED;
	pthread_mutex_lock(&c->mu);
	if (c->dead || c->cut || c->cstate != CLOSE_NONE) {
		pthread_mutex_unlock(&c->mu);
		return CONN_CLOSING;
	}
	if (c->n >= c->lim.max_frames || c->bytes + f->len > c->lim.max_bytes || ring_grow(c)) {
		start_close(c, 1013, "send queue full: reconnect and catch up", CLOSE_SLOW_CLIENT);
		rc = CONN_OVERFLOW;
	} else if (c->lim.budget && budget_take(c->lim.budget, f->len)) {
		start_close(c, 1013, CONN_BUDGET_REASON, CLOSE_SEND_BUDGET);
		rc = CONN_OVERFLOW;
	} else {
		if (c->lim.budget)
			c->acct += f->len;        /* reserved just above */
		(void)ring_push(c, frame_ref(f)); /* room made by ring_grow */
		sync_acct(c);
	}
	int go = claim_schedule(c);
	pthread_mutex_unlock(&c->mu);
	if (b) {
		if (go) {
			b->v = xgrow(b->v, &b->cap, b->n + 1, sizeof(*b->v));
			b->v[b->n++] = conn_ref(c);
		}
		if (rc == CONN_QUEUED) {
			b->frames++;
			b->bytes += f->len;
		}
		size_t qf = c->lim.max_frames / 4, qb = c->lim.max_bytes / 4;
		if (b->n && (b->frames >= b->n * (qf ? qf : 1) || b->bytes >= b->n * (qb ? qb : 1)))
			batch_hand_over(b, 0);
	} else if (go) {
		writer_schedule(c->w, conn_ref(c));
	}
	return rc;
}

int conn_close(conn *c, int code, const char *reason, close_reason why)
{
	pthread_mutex_lock(&c->mu);
	if (c->dead || c->cut || c->cstate != CLOSE_NONE) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	start_close(c, code, reason, why);
	int go = claim_schedule(c);
	pthread_mutex_unlock(&c->mu);
	if (go)
		writer_schedule(c->w, conn_ref(c));
	return 1;
}

/* (mu) held. */
static void cut_locked(conn *c)
{
	if (c->dead || c->cut)
		return;
	c->cut = 1;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

void conn_kill(conn *c)
{
	pthread_mutex_lock(&c->mu);
	cut_locked(c);
	pthread_mutex_unlock(&c->mu);
}

int conn_closing(conn *c, int64_t *since_ms)
{
	pthread_mutex_lock(&c->mu);
	int r = c->cstate != CLOSE_NONE || c->cut;
	if (since_ms)
		*since_ms = c->close_since_ms;
	pthread_mutex_unlock(&c->mu);
	return r;
}

int conn_wait_closed(conn *c, int64_t timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	pthread_mutex_lock(&c->mu);
	/* The writer broadcasts idle in the critical section that marks the close
	 * frame sent; a cut does not, hence the short slices. */
	while (c->cstate != CLOSE_SENT && !c->cut && !c->dead) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			break;
		struct timespec ts = deadline_in(CLOCK_REALTIME, left < 50 ? left : 50);
		(void)pthread_cond_timedwait(&c->idle, &c->mu, &ts);
	}
	int sent = c->cstate == CLOSE_SENT;
	pthread_mutex_unlock(&c->mu);
	return sent;
}

int conn_detach(conn *c)
{
	pthread_mutex_lock(&c->mu);
	if (c->dead) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	while (c->writing)
		pthread_cond_wait(&c->idle, &c->mu);
	/* The socket is registered with epoll under its own number: remove it now,
	 * while the fd is still open and still this socket (civetweb closes it after
	 * we return, and the number may then be reused by a new connection at once).
	 * A parked conn's token and reference then go to the poller's orphan list:
	 * the poller may hold this pointer from an event fetched before the removal,
	 * so only the poller, after that batch, may hand it on to be released. */
	int orphan = c->parked;
	if (c->park_epfd >= 0 && c->fd >= 0)
		writer_epoll_disarm(c->park_epfd, c->fd);
	c->park_epfd = -1;
	c->parked = 0;
	c->dead = 1;
	drop_queue(c);
	pthread_mutex_unlock(&c->mu);
	if (orphan)
		writer_orphan(c->w, c);
	return 1;
}

void conn_hold(conn *c)
{
	pthread_mutex_lock(&c->mu);
	c->scheduled = 1; /* a fresh connection: nobody else can hold the token yet */
	pthread_mutex_unlock(&c->mu);
}

void conn_send_first(conn *c, frame *f)
{
	mg_lock_connection(c->mg);
	pthread_mutex_lock(&c->mu);
	if (c->dead || c->cut || c->cstate != CLOSE_NONE || c->partial_off > 0)
		goto out;
	/* We hold the token: no writer is on the socket, and nothing queued has been
	 * written, so f can go first. */
	ssize_t r = send(c->fd, f->data, f->len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r == (ssize_t)f->len) {
		metric_inc(c->st->frames_delivered);
		goto out;
	}
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		cut_locked(c);
		drop_queue(c);
		goto out;
	}
	if (ring_grow(c)) { /* a queue of max_frames already: the client is gone anyway */
		if (r > 0)
			cut_locked(c); /* half a frame is out: the stream cannot be repaired */
		goto out;
	}
	if (c->lim.budget && budget_take(c->lim.budget, f->len)) {
		if (r > 0)
			cut_locked(c);
		else
			start_close(c, 1013, CONN_BUDGET_REASON, CLOSE_SEND_BUDGET);
		goto out;
	}
	if (c->lim.budget)
		c->acct += f->len; /* reserved just above */
	c->head = (c->head + c->cap - 1) % c->cap;
	c->ring[c->head] = frame_ref(f);
	c->n++;
	c->bytes += f->len;
	c->partial_off = r > 0 ? (size_t)r : 0;
	sync_acct(c);
out:
	pthread_mutex_unlock(&c->mu);
	mg_unlock_connection(c->mg);
}

void conn_release(conn *c)
{
	pthread_mutex_lock(&c->mu);
	int go = c->n > 0 && !c->dead && !c->cut;
	if (!go)
		c->scheduled = 0;
	pthread_mutex_unlock(&c->mu);
	if (go)
		writer_schedule(c->w, conn_ref(c));
}

void conn_send_now(conn *c, const frame *f)
{
	/* The connection's own thread, before conn_detach: the fd is valid. Skipped
	 * when a queued frame is partly out (the stream must stay whole). */
	mg_lock_connection(c->mg);
	pthread_mutex_lock(&c->mu);
	if (!c->dead && !c->cut && c->fd >= 0 && c->partial_off == 0 && !c->writing) {
		ssize_t r = send(c->fd, f->data, f->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)r; /* best effort: the socket is closing */
	}
	pthread_mutex_unlock(&c->mu);
	mg_unlock_connection(c->mg);
}

int conn_park(conn *c, int epfd)
{
	pthread_mutex_lock(&c->mu);
	int rc = -1;
	if (!c->dead && !c->cut && c->fd >= 0) {
		/* Registered once (ADD) and re-armed (MOD) on later parks: EPOLLONESHOT
		 * leaves it registered but disarmed after each event. */
		rc = writer_epoll_arm(epfd, c->fd, c, c->park_epfd >= 0);
		if (rc == 0) {
			c->park_epfd = epfd;
			c->parked = 1;
		} else {
			cut_locked(c); /* cannot wait for it: let it reconnect */
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int conn_unpark(conn *c, int epfd)
{
	(void)epfd; /* stays registered (disarmed) until re-armed or detached */
	pthread_mutex_lock(&c->mu);
	int was = c->parked;
	c->parked = 0;
	pthread_mutex_unlock(&c->mu);
	return was;
}

/* Writes frames f[0..nf) to fd without blocking, the first from byte off0.
 * Returns 0 (all written), 1 (socket full) or -1 (error). *done counts whole
 * frames written and *off the bytes of the next one already out. */
static int write_frames(int fd, frame **f, size_t nf, size_t off0, size_t *done, size_t *off)
{
	struct iovec iov[FLUSH_BATCH_FRAMES];
	size_t idx = 0, o = off0;
	int rc = 0;
	while (idx < nf) {
		size_t k = 0;
		for (size_t i = idx; i < nf; i++, k++) {
			iov[k].iov_base = f[i]->data + (i == idx ? o : 0);
			iov[k].iov_len = f[i]->len - (i == idx ? o : 0);
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = k};
		ssize_t r = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			size_t left = (size_t)r;
			while (left > 0 && idx < nf) {
				size_t rest = f[idx]->len - o;
				if (left >= rest) {
					left -= rest;
					idx++;
					o = 0;
				} else {
					o += left;
					left = 0;
				}
			}
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		rc = (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? 1 : -1;
		break;
	}
	*done = idx;
	*off = o;
	return rc;
}

int conn_flush(conn *c)
{
	frame *batch[FLUSH_BATCH_FRAMES];
	size_t nb = 0, bytes = 0;

	pthread_mutex_lock(&c->mu);
	if (c->dead || c->cut || c->cstate == CLOSE_SENT) {
		c->scheduled = 0;
		pthread_mutex_unlock(&c->mu);
		return FLUSH_DONE;
	}
	if (c->cstate == CLOSE_PENDING)
		apply_close(c);
	while (nb < c->n && nb < FLUSH_BATCH_FRAMES && bytes < FLUSH_BATCH_BYTES) {
		batch[nb] = c->ring[(c->head + nb) % c->cap];
		bytes += batch[nb]->len;
		nb++;
	}
	if (nb == 0) {
		c->scheduled = 0;
		c->blocked_since_ms = 0;
		c->drain_since_ms = 0;
		pthread_mutex_unlock(&c->mu);
		return FLUSH_IDLE;
	}
	size_t off0 = c->partial_off;
	c->writing = 1;
	pthread_mutex_unlock(&c->mu);

	/* The frames stay referenced by the ring while we write: only this writer
	 * removes from the head, producers only append, and a close waits for us
	 * (CLOSE_PENDING) before it drops anything. A partly written frame is resumed
	 * by the next flush; nothing else writes to the socket meanwhile (see
	 * conn_send_now), so the stream stays whole. */
	size_t done = 0, off = 0;
	mg_lock_connection(c->mg);
	int r = write_frames(c->fd, batch, nb, off0, &done, &off);

	int64_t now = 0, now_mono = 0;
	size_t events = 0;
	for (size_t i = 0; i < done; i++) {
		if (batch[i]->ts_us > 0) {
			if (!now)
				now = wall_us();
			double lat = (double)(now - batch[i]->ts_us) / 1e6;
			metric_observe(c->st->latency, lat < 0 ? 0 : lat);
		}
		if (batch[i]->recv_us > 0) {
			if (!now_mono)
				now_mono = mono_us();
			metric_observe(c->st->gw_latency,
			               (double)(now_mono - batch[i]->recv_us) / 1e6);
		}
		if (batch[i] != c->close_frame)
			events++;
	}
	if (events)
		metric_add(c->st->frames_delivered, (double)events);

	size_t written = off - off0;
	for (size_t i = 0; i < done; i++)
		written += batch[i]->len;

	int res, sent_close = 0, failed = 0;
	pthread_mutex_lock(&c->mu); /* order: civetweb's connection lock, then mu */
	c->drain_bytes += written;
	c->writing = 0;
	pthread_cond_broadcast(&c->idle);
	for (size_t i = 0; i < done; i++) {
		frame *f = c->ring[c->head];
		c->head = (c->head + 1) % c->cap;
		c->n--;
		c->bytes -= f->len;
		if (f == c->close_frame)
			sent_close = 1;
		frame_unref(f);
	}
	c->partial_off = off;
	mg_unlock_connection(c->mg);
	if (r < 0) {
		if (c->cstate == CLOSE_NONE)
			metric_inc(c->st->closes[CLOSE_WRITE_FAILED]);
		failed = 1;
		cut_locked(c);
		drop_queue(c);
		c->scheduled = 0;
		res = FLUSH_DONE;
	} else if (sent_close) {
		c->cstate = CLOSE_SENT;
		if (!c->dead && c->fd >= 0)
			shutdown(c->fd, SHUT_WR);
		drop_queue(c);
		c->scheduled = 0;
		res = FLUSH_DONE;
	} else {
		if (c->cstate == CLOSE_PENDING)
			apply_close(c); /* asked for while we were writing */
		if (r == 1) {
			if (done > 0 || off != off0 || !c->blocked_since_ms)
				c->blocked_since_ms = mono_ms();
			if (!c->drain_since_ms) {
				c->drain_since_ms = c->drain_win_ms = c->blocked_since_ms;
				c->drain_bytes = 0;
			}
			res = FLUSH_BLOCKED;
		} else if (c->n > 0) {
			c->blocked_since_ms = 0;
			res = FLUSH_MORE;
		} else {
			c->blocked_since_ms = 0;
			c->drain_since_ms = 0; /* caught up: the drain-rate clock stops */
			c->scheduled = 0;
			res = FLUSH_IDLE;
		}
	}
	sync_acct(c);
	pthread_mutex_unlock(&c->mu);
	if (failed)
		log_debug("write failed: socket cut", "{s:s, s:s}", "conn", c->id, "user", c->user);
	return res;
}

size_t conn_queued_bytes(conn *c)
{
	pthread_mutex_lock(&c->mu);
	size_t b = acct_bytes(c);
	pthread_mutex_unlock(&c->mu);
	return b;
}

int conn_drain_too_slow(conn *c, int64_t now_ms, int64_t window_ms, int64_t min_rate)
{
	int slow = 0;
	pthread_mutex_lock(&c->mu);
	if (c->drain_since_ms && c->n > 0 && now_ms - c->drain_win_ms >= window_ms) {
		double need = (double)min_rate * (double)(now_ms - c->drain_win_ms) / 1000.0;
		slow = (double)c->drain_bytes < need;
		c->drain_win_ms = now_ms;
		c->drain_bytes = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return slow;
}

int64_t conn_blocked_since(conn *c)
{
	pthread_mutex_lock(&c->mu);
	int64_t t = c->blocked_since_ms;
	pthread_mutex_unlock(&c->mu);
	return t;
}
