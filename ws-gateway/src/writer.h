/* writer: the threads that write queued frames to sockets.
 *
 * A connection with something to send is put on one ready queue (at most once: see
 * conn_try_schedule); WRITER_THREADS threads take connections from it and flush a
 * bounded batch each. A short batch that finds the queue empty is flushed by its
 * caller instead (writer_run_many: the consumer at low rates, no thread woken). A
 * socket that is full at a frame boundary is parked in an epoll set watched by one
 * poller thread and comes back when writable (a frame partly written is resumed
 * there), so a client that stopped reading never holds a writer thread. */
#ifndef GW_WRITER_H
#define GW_WRITER_H

#include "common/util.h"

struct conn;
typedef struct writer writer;

/* inline_max: the longest batch writer_run_many flushes in its caller's thread (0:
 * never; also 0 without threads, so that tests with no writer keep frames queued). */
writer *writer_new(int nthreads, size_t inline_max, char *err, size_t errlen);
/* Stops and joins the threads, dropping what is still queued. NULL is fine. */
void writer_free(writer *w);
/* Hands c (and the reference that comes with it) to the writer. @locks w->mu. */
void writer_schedule(writer *w, struct conn *c);
/* Hands v[0..n) (each with its reference) to the writer at once: one lock and at
 * most one wake-up for the whole batch. @locks w->mu. */
void writer_schedule_many(writer *w, struct conn **v, size_t n);
/* Like writer_schedule_many, but a batch of at most inline_max sockets that finds no
 * socket waiting for a writer is flushed here, in the caller's thread: no writer
 * wakes, and at a low rate an event goes out with one thread hand-over less. Each
 * write is non-blocking and bounded (conn_flush), so this holds the caller for at
 * most inline_max such writes; what a socket does not take goes to the writer or
 * the poller as usual. @locks w->mu briefly. */
void writer_run_many(writer *w, struct conn **v, size_t n);

/* epoll helpers for conn.c: arm fd for one EPOLLOUT (MOD when registered, else ADD),
 * and remove it. */
int writer_epoll_arm(int epfd, int fd, struct conn *c, int registered);
void writer_epoll_disarm(int epfd, int fd);
/* Takes back a parked connection whose socket went away (conn_detach removed it from
 * the epoll set): the poller releases it after its current batch of events, the
 * last point at which it may still hold the pointer. Takes the token's reference. */
void writer_orphan(writer *w, struct conn *c);

#endif
