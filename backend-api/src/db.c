#include "db.h"

#include "common/log.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* After a failed connect, acquires fail at once for this long so a database outage
 * costs requests a quick 503 rather than a connect attempt each. */
#define FAIL_FAST_MS 250
/* A connection idle longer than this is checked (one poll) before use; one in
 * constant use is not (a syscall per request costs throughput), and a server that
 * closed it in between costs that one request a 503. */
#define IDLE_CHECK_MS 200

struct db_conn {
	PGconn *pg;           /* NULL until connected */
	int64_t last_used_ms; /* mono ms of the last release */
	int in_use;           /* guarded by pool->mu */
};

struct db_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when a slot is returned */
	char *url;
	char *options; /* libpq options: the session's timeouts (NULL: none) */
	int size;
	int in_use;           /* slots handed out */
	int64_t last_fail_ms; /* mono ms of the last failed connect; 0 none */
	db_conn *conns;
	db_on_connect_fn on_connect;
	void *arg;
	metric *errors;
	metric *g_size, *g_in_use;
};

static void notice_processor(void *arg, const char *message);

void db_session_options(char *buf, size_t len, long statement_ms, long lock_ms)
{
	snprintf(buf, len,
	         "-c statement_timeout=%ld -c lock_timeout=%ld "
	         "-c idle_in_transaction_session_timeout=%ld",
	         statement_ms, lock_ms, statement_ms ? statement_ms * 4 : 0);
}

PGconn *db_connect(const char *url, const char *app, const char *options, char *err, size_t errlen)
{
	/* Later keywords override what the expanded dbname (the URL) sets. TCP
	 * keepalives (idle 5 s, then 3 probes 2 s apart) find a server or a path that
	 * died without closing the socket. */
	const char *keys[] = {"dbname",           "connect_timeout",          "application_name",
	                      "keepalives",       "keepalives_idle",          "keepalives_interval",
	                      "keepalives_count", options ? "options" : NULL, NULL};
	const char *vals[] = {url, "2", app, "1", "5", "2", "3", options, NULL};
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(pg));
		size_t n = strlen(err);
		while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, notice_processor, NULL);
	return pg;
}

db_pool *db_pool_new(const char *url, const char *options, int size, db_on_connect_fn on_connect,
                     void *arg, metrics *m, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	if (!opts) {
		snprintf(err, errlen, "DATABASE_URL: %s", perr ? perr : "cannot be parsed");
		PQfreemem(perr);
		return NULL;
	}
	PQconninfoFree(opts);
	db_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->url = xstrdup(url);
	p->options = options ? xstrdup(options) : NULL;
	p->size = size;
	p->conns = xcalloc((size_t)size, sizeof(db_conn));
	p->on_connect = on_connect;
	p->arg = arg;
	if (m) {
		p->errors = metrics_counter(m, "db_errors_total",
		                            "Database errors (failed connects and queries).", NULL);
		p->g_size = metrics_gauge(m, "db_pool_size", "Connections in the pool.", NULL);
		p->g_in_use = metrics_gauge(m, "db_pool_in_use", "Pool connections in use.", NULL);
		metric_set(p->g_size, size);
	}
	return p;
}

void db_pool_free(db_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->size; i++)
		if (p->conns[i].pg)
			PQfinish(p->conns[i].pg);
	free(p->conns);
	free(p->url);
	free(p->options);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void db_count_error(db_pool *p)
{
	if (p->errors)
		metric_inc(p->errors);
}

/* 1 when an idle connection is still usable. Pool connections do not LISTEN, so a
 * server that sent anything to an idle one is closing it (restart, admin shutdown,
 * idle timeout: a FATAL then EOF): it is replaced rather than used for a request
 * that would fail. */
static int idle_conn_ok(PGconn *pg)
{
	if (PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) != PQTRANS_IDLE)
		return 0;
	struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
	if (pfd.fd < 0)
		return 0;
	return poll(&pfd, 1, 0) == 0;
}

/* libpq's notices (and the FATAL of a closing server) as JSON log lines rather than
 * raw text on stderr. */
static void notice_processor(void *arg, const char *message)
{
	(void)arg;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", message);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	log_info("postgresql notice", "{s:s}", "detail", buf);
}

db_conn *db_acquire(db_pool *p, int timeout_ms)
{
	struct timespec deadline = deadline_in(CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&p->mu);
	db_conn *c = NULL;
	for (;;) {
		/* Prefer a connected slot: it needs no connect. */
		for (int i = 0; i < p->size && !c; i++)
			if (!p->conns[i].in_use && p->conns[i].pg)
				c = &p->conns[i];
		for (int i = 0; i < p->size && !c; i++)
			if (!p->conns[i].in_use)
				c = &p->conns[i];
		if (c)
			break;
		if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) != 0) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
	}
	c->in_use = 1;
	p->in_use++;
	int fail_fast = !c->pg && p->last_fail_ms && mono_ms() - p->last_fail_ms < FAIL_FAST_MS;
	pthread_mutex_unlock(&p->mu);
	if (p->g_in_use)
		metric_add(p->g_in_use, 1);

	if (c->pg && mono_ms() - c->last_used_ms > IDLE_CHECK_MS && !idle_conn_ok(c->pg)) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (!c->pg && !fail_fast) {
		char err[512];
		c->pg = db_connect(p->url, "backend-api", p->options, err, sizeof(err));
		if (c->pg && p->on_connect && p->on_connect(c->pg, p->arg)) {
			snprintf(err, sizeof(err), "%s", PQerrorMessage(c->pg));
			PQfinish(c->pg);
			c->pg = NULL;
		}
		if (!c->pg) {
			db_count_error(p);
			log_warn("could not connect to database", "{s:s}", "err", err);
		}
		pthread_mutex_lock(&p->mu);
		p->last_fail_ms = c->pg ? 0 : mono_ms();
		pthread_mutex_unlock(&p->mu);
	}
	if (!c->pg) {
		db_release(p, c);
		return NULL;
	}
	return c;
}

void db_release(db_pool *p, db_conn *c)
{
	if (!c)
		return;
	if (c->pg &&
	    (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
		/* Broken, or left inside a transaction by an error path: never reuse. */
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->last_used_ms = mono_ms();
	pthread_mutex_lock(&p->mu);
	c->in_use = 0;
	p->in_use--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->g_in_use)
		metric_add(p->g_in_use, -1);
}

PGconn *db_pg(db_conn *c)
{
	return c->pg;
}

int db_pool_size(const db_pool *p)
{
	return p->size;
}

int db_pool_in_use(db_pool *p)
{
	pthread_mutex_lock(&p->mu);
	int n = p->in_use;
	pthread_mutex_unlock(&p->mu);
	return n;
}
