/* ws_server: the civetweb side. GET /ws and /ws/{user_id} (token, Origin and limits
 * checked before the upgrade), the client message protocol, heartbeat, and the
 * operational endpoints /health /ready /status /metrics. */
#ifndef GW_WS_SERVER_H
#define GW_WS_SERVER_H

#include "common/util.h"
#include "config.h"
#include "consumer.h"
#include "presence_bus.h"
#include "registry.h"
#include "stats.h"
#include "writer.h"

typedef struct ws_server ws_server;

/* Starts civetweb on cfg->port (and cfg->health_port). NULL with a reason in err,
 * also when MAX_CONNECTIONS cannot fit RLIMIT_NOFILE or the memory limit. pres
 * (NULL: presence off) serves the subscribe/unsubscribe messages; it must outlive
 * the server. */
ws_server *ws_server_start(const gw_config *cfg, registry *reg, writer *w, const gw_stats *st,
                           consumer *cons, presence_bus *pres, char *err, size_t errlen);
/* SIGTERM: refuses new sockets (503), closes every socket with 1001 and waits for
 * them to go, cutting the stragglers, until deadline_ms (mono_ms clock). */
void ws_server_drain(ws_server *s, int64_t deadline_ms);
/* Stops civetweb and the heartbeat thread; frees s. NULL is fine. */
void ws_server_stop(ws_server *s);
/* Open WebSockets (metrics callback). */
double ws_server_open(void *s);
/* The WebSocket cap (MAX_CONNECTIONS, checked at start). */
long ws_server_cap(const ws_server *s);

#define GW_VERSION "1.0.0"

#endif
