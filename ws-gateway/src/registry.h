/* registry: user id -> that user's open connections on this replica, plus the list
 * of every connection. The only shared mutable state of the gateway.
 *
 * @locks one rwlock; lookups (fan-out) take it shared and only queue frames under
 * it (no socket I/O under it, ever); attach/detach take it exclusively. */
#ifndef GW_REGISTRY_H
#define GW_REGISTRY_H

#include "common/util.h"
#include "conn.h"

#include <jansson.h>

typedef struct registry registry;

registry *registry_new(size_t max_per_user);
void registry_free(registry *r);

enum { REG_OK = 0, REG_USER_FULL = -1 };
/* Adds c (taking a reference) to the list of all connections and, when its user
 * is below the per-user cap, queues first (may be NULL) to it and then adds it to
 * the user's set, so first precedes every event (REG_OK); otherwise REG_USER_FULL
 * (c is listed, so heartbeat and shutdown still see it, but gets no events). */
MUST_CHECK int registry_attach(registry *r, conn *c, frame *first);
/* Removes c from both; drops the reference. Idempotent. */
void registry_detach(registry *r, conn *c);

/* Queues f to every connection of user. Returns the number of recipients. */
size_t registry_deliver(registry *r, const char *user, frame *f);
/* The same, with the writer's wake-up put off to conn_batch_flush(b). */
size_t registry_deliver_batch(registry *r, const char *user, frame *f, conn_batch *b);
/* 1 when user (len bytes, no NUL needed) has a connection that takes events here.
 * A hash probe under the shared lock: what the consumer asks of every event before
 * paying for its parse. */
int registry_has(registry *r, const void *user, size_t len);

/* A snapshot of every connection, each with a reference (release with
 * registry_snapshot_free). */
conn **registry_snapshot(registry *r, size_t *n);
void registry_snapshot_free(conn **v, size_t n);

size_t registry_connections(registry *r);
size_t registry_users(registry *r);
/* {"connections":N,"active_users":N,"connections_per_user":{..at most max..},
 *  "users_not_listed":N} */
json_t *registry_status(registry *r, size_t max_users);

#endif
