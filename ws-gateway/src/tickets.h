/* tickets: the WebSocket tickets this replica has accepted, so each is used once.
 * A ticket (common/auth.h) is remembered until it expires (at most
 * AUTH_TICKET_TTL_S), so the set holds at most the tickets of the last 30 s:
 * tens of bytes each. With several replicas a ticket is single-use per replica; a
 * replayed ticket still needs to be stolen and used within its 30 s. */
#ifndef GW_TICKETS_H
#define GW_TICKETS_H

#include "common/util.h"

#include <stdint.h>

typedef struct ticket_set ticket_set;

ticket_set *ticket_set_new(void);
void ticket_set_free(ticket_set *t);
/* Claims ticket id jti (a UUID) expiring at exp_s (seconds since the epoch), at
 * now_s: 1 when it was unused (it is used now), 0 when it was claimed before.
 * Thread-safe. */
MUST_CHECK int ticket_set_claim(ticket_set *t, const char *jti, int64_t exp_s, int64_t now_s);
/* Tickets remembered now (expired ones included until the next rebuild). */
size_t ticket_set_size(ticket_set *t);

#endif
