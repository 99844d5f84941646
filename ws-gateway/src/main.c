/* ws-gateway: wiring only. See README.md and the module headers. */
#include "common/log.h"
#include "config.h"
#include "consumer.h"
#include "fanout.h"
#include "presence_bus.h"
#include "registry.h"
#include "stats.h"
#include "writer.h"
#include "ws_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double active_users(void *reg)
{
	return (double)registry_users(reg);
}

/* A member left a list (fanout_on_leave): its presence subscriptions end. */
static void presence_left(void *pres, const char *user, const char *list)
{
	presence_bus_revoke(pres, user, list);
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		gw_config_help(stdout, argv[0]);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: %s [--help] (configuration comes from the environment)\n",
		        argv[0]);
		return 2;
	}
	gw_config cfg;
	char err[4096];
	if (gw_config_load(&cfg, err, sizeof(err))) {
		fprintf(stderr, "ws-gateway: bad configuration:\n%s", err);
		return 2;
	}
	log_setup("ws-gateway", (log_level)cfg.log_level);
	gw_config_log();

	/* Signals are taken synchronously by this thread (sigwait below). */
	sigset_t set;
	signals_take_over(&set);

	int rc = 1;
	metrics *m = metrics_new();
	gw_stats st;
	gw_stats_init(&st, m);
	registry *reg = registry_new((size_t)cfg.max_conn_per_user);
	fanout *fan = fanout_new(reg, &st, (size_t)cfg.max_event_bytes);
	consumer *cons = NULL;
	ws_server *srv = NULL;
	presence_bus *pres = NULL;
	writer *w =
	    writer_new((int)cfg.writer_threads, (size_t)cfg.write_inline_max, err, sizeof(err));
	if (!w)
		goto fail;
	if (cfg.presence_enabled) {
		presence_bus_opts po = {.brokers = cfg.kafka_brokers,
		                        .topic = cfg.presence_topic,
		                        .gateway_id = cfg.gateway_id,
		                        .jwt_secret = cfg.jwt_secret,
		                        .ttl_ms = cfg.presence_ttl_ms,
		                        .heartbeat_ms = cfg.presence_heartbeat_ms,
		                        .max_lists = cfg.presence_max_lists,
		                        .max_entries = cfg.presence_max_entries,
		                        .m = m};
		pres = presence_bus_start(&po, err, sizeof(err));
		if (!pres)
			goto fail;
		fanout_on_leave(fan, presence_left, pres);
	}
	consumer_opts co = {.brokers = cfg.kafka_brokers,
	                    .topic = cfg.kafka_topic,
	                    .fetch_wait_ms = cfg.kafka_fetch_wait_ms,
	                    .fetch_min_bytes = cfg.kafka_fetch_min_bytes,
	                    .refresh_ms = cfg.kafka_refresh_ms,
	                    .clock_skew_ms = cfg.kafka_clock_skew_ms,
	                    .max_event_bytes = (size_t)cfg.max_event_bytes,
	                    .st = &st};
	cons = consumer_start(&co, fan, err, sizeof(err));
	if (!cons)
		goto fail;
	srv = ws_server_start(&cfg, reg, w, &st, cons, pres, err, sizeof(err));
	if (!srv)
		goto fail;
	metrics_gauge_fn(m, "ws_connections_open", "Open WebSocket connections.", NULL,
	                 ws_server_open, srv);
	metrics_gauge_fn(m, "ws_active_users", "Users with at least one open WebSocket.", NULL,
	                 active_users, reg);
	metrics_gauge_fn(m, "kafka_consumer_lag", "Messages between position and high watermark.",
	                 NULL, consumer_lag, cons);
	metrics_gauge_fn(
	    m, "kafka_consumer_ready",
	    "1 while every partition is assigned and the consumer is fetching (/ready).", NULL,
	    consumer_fetching, cons);

	int sig = 0;
	sigwait(&set, &sig);
	int64_t deadline = mono_ms() + cfg.shutdown_timeout * 1000 - 1000;
	log_info("shutting down", "{s:i}", "signal", sig);
	ws_server_drain(srv, deadline);
	rc = 0;
fail:
	if (rc)
		log_error("could not start", "{s:s}", "err", err);
	ws_server_stop(srv);
	consumer_stop(cons);     /* before the presence: the consumer calls presence_left */
	presence_bus_stop(pres); /* after the sockets: their tombstones are queued */
	writer_free(w);
	fanout_free(fan);
	registry_free(reg);
	metrics_free(m);
	gw_config_free(&cfg);
	if (!rc)
		log_info("stopped", "{}");
	return rc;
}
