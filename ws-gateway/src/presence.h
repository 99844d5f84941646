/* presence: the merged view of who of a list is online, on how many devices (issue
 * 13), built from the records of the compacted Kafka topic every gateway writes.
 *
 * A record is one socket's subscription to one list: key "<list>|<user>|<conn>"
 * (conn: the writing gateway's id for the socket), value {"expires_at_ms":N}, or a
 * tombstone (no value) when the socket closes or unsubscribes. The writing gateway
 * refreshes its sockets' records by heartbeat, so the records of a gateway that
 * crashed expire (presence_expire) instead of staying online; compaction keeps the
 * topic at one record per live subscription, so a gateway that starts reads the
 * whole view from the beginning of the topic.
 *
 * This module is the view, its bounds and the message a subscribed socket gets;
 * presence_bus.c wires it to Kafka and the sockets. Thread-safe (one mutex inside;
 * no I/O under it). */
#ifndef GW_PRESENCE_H
#define GW_PRESENCE_H

#include "common/util.h"

#include <stddef.h>
#include <stdint.h>

typedef struct presence presence;

#define PRESENCE_CONN_MAX 64 /* bytes of a connection id */
#define PRESENCE_KEY_MAX  (UUID_STR_LEN + USER_ID_MAX + PRESENCE_CONN_MAX + 3)

enum {
	PRESENCE_UNCHANGED = 0, /* applied; the list's users and device counts are the same */
	PRESENCE_CHANGED = 1,   /* applied; the list's (user, devices) changed */
	PRESENCE_BAD = -1,      /* not a presence record: ignored */
	PRESENCE_FULL = -2,     /* a new subscription beyond max_entries: ignored */
};

/* A view holding at most max_entries subscriptions (each about 250 bytes). */
presence *presence_new(size_t max_entries);
void presence_free(presence *p);

/* The key of user's socket conn subscribed to list into out; 0, or -1 when a part is
 * invalid (list a UUID, user a user id, conn 1..PRESENCE_CONN_MAX of
 * [A-Za-z0-9._:-]). */
MUST_CHECK int presence_key(const char *list, const char *user, const char *conn,
                            char out[PRESENCE_KEY_MAX]);

/* Applies one record (value NULL or vlen 0: a tombstone) at now_ms; a record already
 * expired counts as a tombstone. list receives the record's list. Returns a
 * PRESENCE_* code. */
int presence_apply(presence *p, const char *key, size_t klen, const char *value, size_t vlen,
                   int64_t now_ms, char list[UUID_STR_LEN]);

/* Drops the subscriptions whose expiry is before now_ms; changed(list, arg) is
 * called (outside the lock) once per list whose users or device counts changed.
 * Returns how many were dropped. */
size_t presence_expire(presence *p, int64_t now_ms, void (*changed)(const char *list, void *arg),
                       void *arg);

/* The message for list's subscribers (caller frees; length in *len):
 * {"type":"presence","list_id":L,"online":[{"user_id":U,"devices":N},...]}, users in
 * bytewise order; "online" is empty when nobody is. */
char *presence_message(presence *p, const char *list, size_t *len);

/* Subscriptions held (all lists). */
size_t presence_count(presence *p);

#endif
