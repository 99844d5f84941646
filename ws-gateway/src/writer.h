/* writer: the threads that write queued frames to sockets.
 *
 * A connection with something to send is put on one ready queue (at most once: see
 * conn_try_schedule); WRITER_THREADS threads take connections from it and flush a
 * bounded batch each. A socket that is full at a frame boundary is parked in an
 * epoll set watched by one poller thread and comes back when writable (a frame
 * partly written is resumed there), so a client that stopped reading never holds
 * a writer thread. */
#ifndef GW_WRITER_H
#define GW_WRITER_H

#include "common/util.h"

struct conn;
typedef struct writer writer;

writer *writer_new(int nthreads, char *err, size_t errlen);
/* Stops and joins the threads, dropping what is still queued. NULL is fine. */
void writer_free(writer *w);
/* Hands c (and the reference that comes with it) to the writer. @locks w->mu. */
void writer_schedule(writer *w, struct conn *c);
/* Hands v[0..n) (each with its reference) to the writer at once: one lock and at
 * most one wake-up for the whole batch. @locks w->mu. */
void writer_schedule_many(writer *w, struct conn **v, size_t n);

/* epoll helpers for conn.c: arm fd for one EPOLLOUT (MOD when registered, else ADD),
 * and remove it. */
int writer_epoll_arm(int epfd, int fd, struct conn *c, int registered);
void writer_epoll_disarm(int epfd, int fd);
/* Takes back a parked connection whose socket went away (conn_detach removed it from
 * the epoll set): the poller releases it after its current batch of events, the
 * last point at which it may still hold the pointer. Takes the token's reference. */
void writer_orphan(writer *w, struct conn *c);

#endif
