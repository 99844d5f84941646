#include "writer.h"

#include "common/log.h"
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* A batch of at least this many sockets wakes every idle writer, a shorter one
 * wakes one. */
#define WAKE_ALL_AT 16

struct writer {
	pthread_mutex_t mu; /* protects the ready ring and stop */
	pthread_cond_t cv;
	struct conn **ring; /* FIFO of scheduled connections */
	size_t cap, head, n;
	int stop;
	int idle; /* (mu) writer threads waiting for work */
	int epfd;
	pthread_t *threads;
	int nthreads;
	size_t inline_max; /* writer_run_many: longest batch flushed by its caller */
	pthread_t poller;
	int have_poller;
	struct conn **orphans; /* (mu) detached while parked: released by the poller */
	size_t norphans, caporphans;
};

/* Room for k more in the ready ring. (mu) held. */
static void ring_reserve(writer *w, size_t k)
{
	if (w->n + k <= w->cap)
		return;
	size_t ncap = w->cap ? w->cap : 1024;
	while (ncap < w->n + k)
		ncap *= 2;
	struct conn **nr = xmalloc(ncap * sizeof(*nr));
	for (size_t i = 0; i < w->n; i++)
		nr[i] = w->ring[(w->head + i) % w->cap];
	free(w->ring);
	w->ring = nr;
	w->cap = ncap;
	w->head = 0;
}

void writer_schedule_many(writer *w, struct conn **v, size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&w->mu);
	if (w->stop) {
		pthread_mutex_unlock(&w->mu);
		for (size_t i = 0; i < n; i++)
			conn_unref(v[i]);
		return;
	}
	ring_reserve(w, n);
	for (size_t i = 0; i < n; i++)
		w->ring[(w->head + w->n + i) % w->cap] = v[i];
	w->n += n;
	/* One wake-up per batch: a single writer takes a few sockets faster than two
	 * threads wake for them; a long batch wakes every idle writer. */
	if (n >= WAKE_ALL_AT && w->idle > 1)
		pthread_cond_broadcast(&w->cv);
	else if (w->idle)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void writer_schedule(writer *w, struct conn *c)
{
	writer_schedule_many(w, &c, 1);
}

/* Where c goes after a flush returned r: back to the queue, to the poller, or let
 * go (with the token's reference). */
static void after_flush(writer *w, struct conn *c, int r)
{
	switch (r) {
	case FLUSH_MORE:
		writer_schedule(w, c); /* to the back: fairness between sockets */
		break;
	case FLUSH_BLOCKED:
		if (conn_park(c, w->epfd) != 0) {
			/* dead meanwhile: one more flush lets it go */
			writer_schedule(w, c);
		}
		break;
	default: /* idle or done: the token was released inside conn_flush */
		conn_unref(c);
		break;
	}
}

void writer_run_many(writer *w, struct conn **v, size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&w->mu);
	int queue = n > w->inline_max || w->n > 0 || w->stop;
	pthread_mutex_unlock(&w->mu);
	if (queue) {
		writer_schedule_many(w, v, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		after_flush(w, v[i], conn_flush(v[i]));
}

int writer_epoll_arm(int epfd, int fd, struct conn *c, int registered)
{
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = c};
	return epoll_ctl(epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -1;
}

void writer_orphan(writer *w, struct conn *c)
{
	pthread_mutex_lock(&w->mu);
	w->orphans = xgrow(w->orphans, &w->caporphans, w->norphans + 1, sizeof(*w->orphans));
	w->orphans[w->norphans++] = c;
	pthread_mutex_unlock(&w->mu);
}

void writer_epoll_disarm(int epfd, int fd)
{
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* @locality writer threads. */
static void *writer_main(void *arg)
{
	writer *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->n && !w->stop) {
			w->idle++;
			pthread_cond_wait(&w->cv, &w->mu);
			w->idle--;
		}
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		struct conn *c = w->ring[w->head];
		w->head = (w->head + 1) % w->cap;
		w->n--;
		pthread_mutex_unlock(&w->mu);

		after_flush(w, c, conn_flush(c));
	}
}

/* @locality the poller thread: returns writable (or hung-up) sockets to the queue. */
static void *poller_main(void *arg)
{
	writer *w = arg;
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(w->epfd, evs, 256, 100);
		pthread_mutex_lock(&w->mu);
		int stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		if (stop)
			return NULL;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (conn_unpark(c, w->epfd))
				writer_schedule(w, c);
		}
		/* Every event fetched above has been handled: no pointer to an orphan
		 * is left here, so they can go (a flush sees them dead and lets go). */
		pthread_mutex_lock(&w->mu);
		struct conn **o = w->orphans;
		size_t no = w->norphans;
		w->orphans = NULL;
		w->norphans = w->caporphans = 0;
		pthread_mutex_unlock(&w->mu);
		for (size_t i = 0; i < no; i++)
			writer_schedule(w, o[i]);
		free(o);
	}
}

writer *writer_new(int nthreads, size_t inline_max, char *err, size_t errlen)
{
	writer *w = xcalloc(1, sizeof(*w));
	w->inline_max = nthreads > 0 ? inline_max : 0;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	w->threads = xcalloc((size_t)nthreads, sizeof(pthread_t));
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&w->threads[i], NULL, writer_main, w)) {
			snprintf(err, errlen, "could not start writer thread");
			goto fail;
		}
		w->nthreads++;
		(void)pthread_setname_np(w->threads[i], "gw-writer");
	}
	if (pthread_create(&w->poller, NULL, poller_main, w)) {
		snprintf(err, errlen, "could not start poller thread");
		goto fail;
	}
	w->have_poller = 1;
	(void)pthread_setname_np(w->poller, "gw-poller");
	return w;
fail:
	writer_free(w);
	return NULL;
}

void writer_free(writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	if (w->have_poller)
		pthread_join(w->poller, NULL);
	for (size_t i = 0; i < w->n; i++)
		conn_unref(w->ring[(w->head + i) % w->cap]);
	for (size_t i = 0; i < w->norphans; i++)
		conn_unref(w->orphans[i]);
	free(w->orphans);
	/* Connections still parked keep their reference: by now every socket has
	 * been detached and the process is exiting. */
	if (w->epfd >= 0)
		close(w->epfd);
	free(w->ring);
	free(w->threads);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
