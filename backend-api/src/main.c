/* backend-api: wiring only. See README.md and the module headers.
 *
 *   backend-api           apply migrations, then serve
 *   backend-api migrate   apply migrations and exit */
#include "common/log.h"
#include "config.h"
#include "db.h"
#include "migrate.h"
#include "outbox.h"
#include "server.h"
#include "task_store.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Applies the migrations, retrying while the database is not reachable yet (it may
 * start after us in compose or Kubernetes) for at most wait_s seconds. */
static int run_migrations(const char *url, int wait_s, char *err, size_t errlen)
{
	int64_t deadline = mono_ms() + (int64_t)wait_s * 1000;
	for (;;) {
		PGconn *pg = db_connect(url, "backend-api-migrate", NULL, err, errlen);
		if (pg) {
			int n = migrate_apply(pg, err, errlen);
			PQfinish(pg);
			if (n < 0)
				return -1;
			log_info("migrations up to date", "{s:i, s:i}", "applied", n, "known",
			         (int)migrate_count());
			return 0;
		}
		if (mono_ms() >= deadline)
			return -1;
		log_warn("database not reachable yet; retrying", "{s:s}", "err", err);
		sleep(1);
	}
}

int main(int argc, char **argv)
{
	int migrate_only = 0;
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		ba_config_help(stdout, argv[0]);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "migrate"))
		migrate_only = 1;
	else if (argc > 1) {
		fprintf(stderr,
		        "usage: %s [--help | migrate] (configuration comes from the "
		        "environment)\n",
		        argv[0]);
		return 2;
	}
	ba_config cfg;
	char err[4096];
	if ((migrate_only ? ba_config_load_migrate(&cfg, err, sizeof(err))
	                  : ba_config_load(&cfg, err, sizeof(err)))) {
		fprintf(stderr, "backend-api: bad configuration:\n%s", err);
		return 2;
	}
	log_setup("backend-api", (log_level)cfg.log_level);
	if (migrate_only) {
		int rc = run_migrations(cfg.database_url, 0, err, sizeof(err));
		if (rc)
			log_error("migration failed", "{s:s}", "err", err);
		ba_config_free(&cfg);
		return rc ? 1 : 0;
	}
	ba_config_log();

	/* Signals are taken synchronously by this thread (sigwait below). */
	sigset_t set;
	signals_take_over(&set);

	int rc = 1;
	metrics *m = metrics_new();
	db_pool *pool = NULL;
	outbox_relay *relay = NULL;
	server *srv = NULL;
	if (run_migrations(cfg.database_url, 30, err, sizeof(err)))
		goto fail;
	char session[160];
	db_session_options(session, sizeof(session), cfg.db_statement_timeout_ms,
	                   cfg.db_lock_timeout_ms);
	pool = db_pool_new(cfg.database_url, session, (int)cfg.db_pool_size, ts_prepare, NULL, m,
	                   err, sizeof(err));
	if (!pool)
		goto fail;
	outbox_opts oo = {.database_url = cfg.database_url,
	                  .session_options = session,
	                  .brokers = cfg.kafka_brokers,
	                  .topic = cfg.kafka_topic,
	                  .slot = cfg.outbox_slot,
	                  .linger_ms = cfg.kafka_linger_ms,
	                  .max_in_flight = cfg.kafka_max_in_flight,
	                  .takeover_ms = cfg.outbox_takeover_ms,
	                  .retention_s = cfg.event_retention,
	                  .idem_window_s = cfg.idempotency_window};
	relay = outbox_start(&oo, m, err, sizeof(err));
	if (!relay)
		goto fail;
	api_ctx ctx = {.cfg = &cfg, .pool = pool, .relay = relay, .m = m};
	srv = server_start(&ctx, err, sizeof(err));
	if (!srv)
		goto fail;

	int sig = 0;
	sigwait(&set, &sig);
	int64_t deadline = mono_ms() + cfg.shutdown_timeout_ms;
	log_info("shutting down", "{s:i}", "signal", sig);
	server_stop(srv); /* no new requests; those in progress finish */
	srv = NULL;
	log_info("http server stopped", "{}");
	rc = 0;
fail:
	if (rc)
		log_error("could not start", "{s:s}", "err", err);
	server_stop(srv);
	outbox_stop(relay, rc ? mono_ms() : deadline);
	db_pool_free(pool);
	metrics_free(m);
	ba_config_free(&cfg);
	if (!rc)
		log_info("stopped", "{}");
	return rc;
}
