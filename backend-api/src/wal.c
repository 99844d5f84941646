/* The replication protocol (PostgreSQL docs, "Streaming Replication Protocol" and
 * "Logical Streaming Replication Protocol Message Formats"): after
 * START_REPLICATION the connection is in COPY BOTH mode; the server sends XLogData
 * ('w': start LSN, end LSN, send time, then one pgoutput message) and keepalives
 * ('k': its send position, send time, reply requested); the client sends standby
 * status updates ('r': write, flush and apply LSN, its time, reply requested).
 * pgoutput sends a Relation message ('R') describing a table before its first row,
 * then Begin ('B'), Insert ('I') ..., Commit ('C') per transaction. All integers
 * are big-endian. */
#include "wal.h"

#include "common/log.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US 946684800000000LL
/* ms between unprompted status updates; at most a third of wal_sender_timeout */
#define FEEDBACK_EVERY 1000
#define FEEDBACK_MIN                                                                               \
	100 /* ms between updates of a moved position (each costs the walsender a slot update) */
#define NAME_MAX_LEN       63
#define SQLSTATE_IN_USE    "55006"
#define SQLSTATE_UNDEFINED "42704"

/* Outbox columns the relay needs, by name. */
enum { C_ID, C_USER, C_SEQ, C_EVENT_ID, C_PAYLOAD, C__COUNT };
_Static_assert(C__COUNT == WAL_COLS, "wal_decoder.col holds the outbox columns");
static const char *const col_names[C__COUNT] = {"id", "user_id", "seq", "event_id", "payload"};

struct wal_stream {
	PGconn *pg;
	char *buf;       /* the last message PQgetCopyData returned */
	wal_decoder dec; /* relation and keepalive state */
	uint64_t sent_flush;
	int64_t sent_ms;
	long every_ms;   /* between unprompted status updates */
	char server[48]; /* "system identifier/timeline" */
};

typedef struct reader {
	const unsigned char *p, *end;
	int bad;
} reader;

static uint64_t rd_u(reader *r, int bytes)
{
	if (r->end - r->p < bytes) {
		r->bad = 1;
		r->p = r->end;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | *r->p++;
	return v;
}

/* A NUL-terminated string in the message. */
static const char *rd_str(reader *r)
{
	const unsigned char *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
	if (!nul) {
		r->bad = 1;
		r->p = r->end;
		return "";
	}
	const char *s = (const char *)r->p;
	r->p = nul + 1;
	return s;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

const char *wal_lsn_str(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
	return buf;
}

static void set_err(char *err, size_t errlen, const char *what, const char *detail)
{
	snprintf(err, errlen, "%s: %s", what, detail);
	size_t n = strlen(err);
	while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/* "X/Y" into an LSN; 0 when it is not one. */
static uint64_t lsn_parse(const char *s)
{
	unsigned int hi, lo;
	char end;
	if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &end) != 2)
		return 0;
	return (uint64_t)hi << 32 | lo;
}

/* IDENTIFY_SYSTEM: the server's "system identifier/timeline" and flushed WAL. */
static int identify(PGconn *pg, char *id, size_t idlen, uint64_t *flushed, char *err, size_t errlen)
{
	PGresult *res = PQexec(pg, "IDENTIFY_SYSTEM");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 3) {
		set_err(err, errlen, "IDENTIFY_SYSTEM", PQresultErrorMessage(res));
		PQclear(res);
		return WAL_ERR;
	}
	snprintf(id, idlen, "%s/%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	*flushed = lsn_parse(PQgetvalue(res, 0, 2));
	PQclear(res);
	return 0;
}

int wal_open(wal_stream **out, const char *url, const char *slot, const char *pub,
             long sender_timeout_ms, const wal_resume *resume, char *err, size_t errlen)
{
	*out = NULL;
	if (!valid_name(slot) || !valid_name(pub)) {
		snprintf(err, errlen, "slot and publication names must match [a-z0-9_]{1,63}");
		return WAL_ERR;
	}
	char options[64];
	snprintf(options, sizeof(options), "-c wal_sender_timeout=%ld", sender_timeout_ms);
	/* Later keywords override what the expanded dbname (the URL) sets. Keepalives
	 * find a dead server; wal_sender_timeout lets the server find a dead client. */
	const char *keys[] = {"dbname",
	                      "replication",
	                      "connect_timeout",
	                      "application_name",
	                      "keepalives",
	                      "keepalives_idle",
	                      "keepalives_interval",
	                      "keepalives_count",
	                      "options",
	                      NULL};
	const char *vals[] = {url, "database", "2", "backend-api-relay", "1", "5", "2",
	                      "3", options,    NULL};
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		set_err(err, errlen, "replication connection",
		        pg ? PQerrorMessage(pg) : "no memory");
		PQfinish(pg);
		return WAL_ERR;
	}
	char server[48];
	uint64_t flushed = 0;
	if (identify(pg, server, sizeof(server), &flushed, err, errlen)) {
		PQfinish(pg);
		return WAL_ERR;
	}
	/* The server skips transactions that commit before the start position (and
	 * ignores a position behind the slot's): what this client had done is not
	 * streamed again even when its last confirmation was lost with the connection.
	 * Only on the same history: after a failover, a position of the old timeline
	 * may name other transactions. */
	uint64_t start = 0;
	if (resume && resume->lsn && !strcmp(resume->server, server) && flushed >= resume->lsn)
		start = resume->lsn;
	char sql[256], at[24];
	snprintf(sql, sizeof(sql),
	         "START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', publication_names "
	         "'%s')",
	         slot, wal_lsn_str(start, at, sizeof(at)), pub);
	PGresult *res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		int busy = state && !strcmp(state, SQLSTATE_IN_USE);
		int noslot = state && !strcmp(state, SQLSTATE_UNDEFINED);
		set_err(err, errlen, "START_REPLICATION", PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(pg);
		return busy ? WAL_BUSY : noslot ? WAL_NOSLOT : WAL_ERR;
	}
	PQclear(res);
	wal_stream *w = xcalloc(1, sizeof(*w));
	w->pg = pg;
	w->every_ms =
	    sender_timeout_ms / 3 < FEEDBACK_EVERY ? sender_timeout_ms / 3 : FEEDBACK_EVERY;
	snprintf(w->server, sizeof(w->server), "%s", server);
	*out = w;
	return WAL_OK;
}

static int send_feedback(wal_stream *w, uint64_t flush, char *err, size_t errlen)
{
	unsigned char msg[34];
	msg[0] = 'r';
	put_u64(msg + 1, flush);  /* written */
	put_u64(msg + 9, flush);  /* flushed: the slot's confirmed LSN */
	put_u64(msg + 17, flush); /* applied */
	put_u64(msg + 25, (uint64_t)(wall_us() - PG_EPOCH_US));
	msg[33] = 0;
	if (PQputCopyData(w->pg, (const char *)msg, sizeof(msg)) != 1 || PQflush(w->pg) != 0) {
		set_err(err, errlen, "standby status update", PQerrorMessage(w->pg));
		return WAL_ERR;
	}
	w->sent_flush = flush;
	w->sent_ms = mono_ms();
	return WAL_OK;
}

int wal_confirm(wal_stream *w, uint64_t flush_lsn, int force, char *err, size_t errlen)
{
	if (flush_lsn < w->sent_flush)
		flush_lsn = w->sent_flush; /* never backwards */
	int64_t since = mono_ms() - w->sent_ms;
	if (force || (flush_lsn != w->sent_flush && since >= FEEDBACK_MIN) || since >= w->every_ms)
		return send_feedback(w, flush_lsn, err, errlen);
	return WAL_OK;
}

const char *wal_server_id(const wal_stream *w)
{
	return w->server;
}

uint64_t wal_server_lsn(const wal_stream *w)
{
	return w->dec.server_lsn;
}

int wal_socket(const wal_stream *w)
{
	return PQsocket(w->pg);
}

/* A Relation message: finds the outbox columns by name. */
static int relation(wal_decoder *w, reader *r, char *err, size_t errlen)
{
	uint32_t relid = (uint32_t)rd_u(r, 4);
	rd_str(r); /* namespace */
	const char *name = rd_str(r);
	rd_u(r, 1); /* replica identity */
	int ncols = (int)rd_u(r, 2);
	int col[C__COUNT];
	for (int k = 0; k < C__COUNT; k++)
		col[k] = -1;
	for (int i = 0; i < ncols && !r->bad; i++) {
		rd_u(r, 1); /* flags */
		const char *cname = rd_str(r);
		rd_u(r, 8); /* type oid, typmod */
		for (int k = 0; k < C__COUNT; k++)
			if (!strcmp(cname, col_names[k]))
				col[k] = i;
	}
	if (r->bad) {
		snprintf(err, errlen, "malformed Relation message");
		return WAL_ERR;
	}
	if (strcmp(name, "outbox") != 0)
		return WAL_OK; /* not ours: its rows are skipped */
	for (int k = 0; k < C__COUNT; k++) {
		if (col[k] < 0) {
			snprintf(err, errlen, "outbox has no column %s", col_names[k]);
			return WAL_ERR;
		}
	}
	w->relid = relid;
	w->ncols = ncols;
	memcpy(w->col, col, sizeof(col));
	return WAL_OK;
}

static int64_t to_i64(const char *s, size_t n)
{
	char buf[24];
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end;
	long long v = strtoll(buf, &end, 10);
	return *end ? -1 : v;
}

/* An Insert message of the outbox: the columns in place (text format). */
static int insert(wal_decoder *w, reader *r, wal_msg *m, int *skip, char *err, size_t errlen)
{
	uint32_t relid = (uint32_t)rd_u(r, 4);
	if (relid != w->relid || !w->relid) {
		*skip = 1;
		return WAL_OK;
	}
	if (rd_u(r, 1) != 'N' || (int)rd_u(r, 2) != w->ncols) {
		snprintf(err, errlen, "unexpected Insert message");
		return WAL_ERR;
	}
	const char *val[C__COUNT] = {0};
	size_t len[C__COUNT] = {0};
	for (int i = 0; i < w->ncols && !r->bad; i++) {
		int kind = (int)rd_u(r, 1);
		const char *v = NULL;
		size_t n = 0;
		if (kind == 't') {
			n = (size_t)rd_u(r, 4);
			if ((size_t)(r->end - r->p) < n) {
				r->bad = 1;
				break;
			}
			v = (const char *)r->p;
			r->p += n;
		} else if (kind != 'n') {
			r->bad = 1;
		}
		for (int k = 0; k < C__COUNT; k++)
			if (w->col[k] == i)
				val[k] = v, len[k] = n;
	}
	for (int k = 0; k < C__COUNT; k++)
		if (!val[k])
			r->bad = 1;
	if (r->bad || len[C_EVENT_ID] != UUID_STR_LEN - 1) {
		snprintf(err, errlen, "malformed outbox Insert message");
		return WAL_ERR;
	}
	m->kind = WAL_ROW;
	m->id = to_i64(val[C_ID], len[C_ID]);
	m->seq = to_i64(val[C_SEQ], len[C_SEQ]);
	m->user = val[C_USER];
	m->user_len = len[C_USER];
	m->event_id = val[C_EVENT_ID];
	m->payload = val[C_PAYLOAD];
	m->payload_len = len[C_PAYLOAD];
	return WAL_OK;
}

/* A pgoutput timestamp (signed microseconds since 2000-01-01) as microseconds since
 * the Unix epoch, clamped to 0..INT64_MAX: PostgreSQL's infinity is INT64_MAX, and
 * the relay subtracts it from the wall clock (a lag metric), which must not
 * overflow either. */
static int64_t pg_time_us(uint64_t raw)
{
	int64_t t = (int64_t)raw;
	if (t > INT64_MAX - PG_EPOCH_US)
		return INT64_MAX;
	return t < -PG_EPOCH_US ? 0 : t + PG_EPOCH_US;
}

/* One pgoutput message; *skip when it is not one the caller sees. */
static int decode(wal_decoder *w, reader *r, wal_msg *m, int *skip, char *err, size_t errlen)
{
	*skip = 0;
	switch ((int)rd_u(r, 1)) {
	case 'B':
		m->kind = WAL_BEGIN;
		m->lsn = rd_u(r, 8); /* the commit's LSN */
		m->commit_us = pg_time_us(rd_u(r, 8));
		break;
	case 'C':
		rd_u(r, 1); /* flags */
		rd_u(r, 8); /* commit LSN */
		m->kind = WAL_COMMIT;
		m->lsn = rd_u(r, 8); /* end of the transaction: what to confirm */
		m->commit_us = pg_time_us(rd_u(r, 8));
		break;
	case 'R':
		*skip = 1;
		return relation(w, r, err, errlen);
	case 'I':
		return insert(w, r, m, skip, err, errlen);
	default: /* Origin, Type, Update, Delete, Truncate, Message: not ours */
		*skip = 1;
		return WAL_OK;
	}
	if (r->bad) {
		snprintf(err, errlen, "malformed pgoutput message");
		return WAL_ERR;
	}
	return WAL_OK;
}

int wal_next(wal_stream *w, wal_msg *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	for (;;) {
		PQfreemem(w->buf);
		w->buf = NULL;
		int n = PQgetCopyData(w->pg, &w->buf, 1);
		if (n == 0) {
			if (!PQconsumeInput(w->pg)) {
				set_err(err, errlen, "replication stream", PQerrorMessage(w->pg));
				return WAL_ERR;
			}
			n = PQgetCopyData(w->pg, &w->buf, 1);
			if (n == 0)
				return WAL_AGAIN;
		}
		if (n == -1) {
			PGresult *res = PQgetResult(w->pg);
			set_err(err, errlen, "the server ended the replication stream",
			        res ? PQresultErrorMessage(res) : "");
			PQclear(res);
			return WAL_ERR;
		}
		if (n < 0) {
			set_err(err, errlen, "replication stream", PQerrorMessage(w->pg));
			return WAL_ERR;
		}
		int what;
		if (wal_decode(&w->dec, w->buf, (size_t)n, m, &what, err, errlen))
			return WAL_ERR;
		if (what == WAL_DEC_MSG)
			return WAL_OK;
		if (what == WAL_DEC_REPLY) {
			m->kind = WAL_REPLY;
			return WAL_OK;
		}
	}
}

int wal_decode(wal_decoder *d, const void *buf, size_t n, wal_msg *m, int *what, char *err,
               size_t errlen)
{
	memset(m, 0, sizeof(*m));
	*what = WAL_DEC_NONE;
	reader r = {buf, (const unsigned char *)buf + n, 0};
	int type = (int)rd_u(&r, 1);
	if (type == 'k') {
		uint64_t lsn = rd_u(&r, 8);
		rd_u(&r, 8); /* server time */
		int reply = (int)rd_u(&r, 1);
		if (r.bad) {
			snprintf(err, errlen, "malformed keepalive");
			return WAL_ERR;
		}
		if (lsn > d->server_lsn)
			d->server_lsn = lsn;
		*what = reply ? WAL_DEC_REPLY : WAL_DEC_NONE;
		return WAL_OK;
	}
	if (type != 'w') {
		snprintf(err, errlen, "unexpected replication message '%c'", type);
		return WAL_ERR;
	}
	rd_u(&r, 8); /* start */
	rd_u(&r, 8); /* end */
	rd_u(&r, 8); /* send time */
	int skip;
	if (r.bad) {
		snprintf(err, errlen, "malformed XLogData");
		return WAL_ERR;
	}
	if (decode(d, &r, m, &skip, err, errlen))
		return WAL_ERR;
	*what = skip ? WAL_DEC_NONE : WAL_DEC_MSG;
	return WAL_OK;
}

void wal_close(wal_stream *w)
{
	if (!w)
		return;
	PQfreemem(w->buf);
	PQfinish(w->pg);
	free(w);
}
