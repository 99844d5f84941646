/* presence_bus: list presence wired to Kafka and to the sockets (issue 13).
 *
 * The view itself (records -> who is online on how many devices) is presence.c;
 * this module is everything around it:
 *   - the local subscriptions: a socket subscribes to a list with a presence ticket
 *     (common/auth.h auth_verify_presence: its user must be the socket's, its list
 *     the list asked for), at most max_lists per socket;
 *   - a producer of PRESENCE_TOPIC (compacted): one record per (list, user, socket),
 *     key "<list>|<user>|<gateway_id>:<serial>", value {"expires_at_ms":N}, produced
 *     on subscribe and re-produced every heartbeat_ms with a fresh expiry; a
 *     tombstone on unsubscribe and on close;
 *   - a reader of the whole topic from the beginning (every partition assigned, no
 *     consumer group): every gateway keeps the merged view of all gateways;
 *   - one thread that polls the reader, runs presence_expire every second (a killed
 *     gateway's sockets go offline within ttl_ms), re-produces the heartbeat, and
 *     sends {"type":"presence",...} to the local subscribers of each list whose
 *     online set changed, coalesced: at most one message per list per
 *     PRESENCE_COALESCE_MS.
 *
 * Presence is advisory: when Kafka is down, records are lost or late, never task
 * data. A socket's own subscription is applied to the local view at once, so its
 * first message includes itself. */
#ifndef GW_PRESENCE_BUS_H
#define GW_PRESENCE_BUS_H

#include "common/metrics.h"
#include "common/util.h"
#include "conn.h"

#include <stddef.h>

#define PRESENCE_COALESCE_MS 100

typedef struct presence_bus presence_bus;

typedef struct presence_bus_opts {
	const char *brokers;    /* KAFKA_BROKERS */
	const char *topic;      /* PRESENCE_TOPIC */
	const char *gateway_id; /* GATEWAY_ID: 1..40 of [A-Za-z0-9._-] */
	const char *jwt_secret; /* verifies presence tickets */
	long ttl_ms;            /* PRESENCE_TTL_MS */
	long heartbeat_ms;      /* PRESENCE_HEARTBEAT_MS */
	long max_lists;         /* PRESENCE_MAX_LISTS per socket */
	long max_entries;       /* PRESENCE_MAX_ENTRIES of the merged view */
	metrics *m;             /* the presence_* series are created in it */
} presence_bus_opts;

/* Starts the producer, the reader and the thread. NULL with the reason in err. */
presence_bus *presence_bus_start(const presence_bus_opts *o, char *err, size_t errlen);
/* Stops the thread, flushes what is queued (at most 2 s), destroys the clients and
 * frees b. Call after every socket has closed (their tombstones are then queued).
 * NULL is fine. */
void presence_bus_stop(presence_bus *b);

enum {
	PB_OK = 0,
	PB_FORBIDDEN = -1, /* the ticket is invalid, expired, another user's or list's */
	PB_TOO_MANY = -2,  /* the socket holds max_lists subscriptions already */
	PB_BAD_ID = -3,    /* the socket's user cannot form a key (not a valid user id) */
};

/* Subscribes c to list with ticket: verifies it, records the subscription, produces
 * its record and queues the list's presence message to c at once. Subscribing again
 * to the same list refreshes it (and sends the message again). Returns a PB_* code;
 * on failure c got nothing of the list. @locality c's civetweb thread. */
MUST_CHECK int presence_bus_subscribe(presence_bus *b, conn *c, const char *list,
                                      const char *ticket);
/* Ends c's subscription to list (a tombstone); nothing when there is none. */
void presence_bus_unsubscribe(presence_bus *b, conn *c, const char *list);
/* user is no longer a member of list (a list.unshared or list.deleted event of
 * user's reached this gateway): every local subscription of user's sockets to list
 * ends (tombstones), so a removed member learns nothing more of its presence.
 * NULL b is fine. */
void presence_bus_revoke(presence_bus *b, const char *user, const char *list);
/* c is closing: every subscription of it ends (tombstones). Idempotent. */
void presence_bus_conn_closed(presence_bus *b, conn *c);

/* A short lower-case text for a PB_* code. */
const char *presence_bus_strerror(int code);

#endif
