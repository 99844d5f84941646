/* server: the civetweb HTTP server of backend-api. One begin_request callback
 * dispatches every request through the route table (404 / 405 + Allow), answers CORS
 * preflights, authenticates /api routes, serves /healthz /readyz /metrics
 * /config.json and the static web client, and counts every request by route
 * pattern, method and status. */
#ifndef BA_SERVER_H
#define BA_SERVER_H

#include "tasks.h"

typedef struct server server;

/* Starts listening on ctx->cfg->port. ctx must outlive the server. NULL with err. */
server *server_start(const api_ctx *ctx, char *err, size_t errlen);
/* Stops accepting and waits for the requests in progress. Accepts NULL. */
void server_stop(server *s);

#endif
