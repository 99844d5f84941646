/* wal: the outbox's inserts, in commit order, from PostgreSQL's WAL.
 *
 * A logical replication stream (libpq's replication protocol, the built-in
 * pgoutput plugin, proto_version 1) of the publication of the outbox table. It
 * delivers each committed transaction whole, in commit order: BEGIN, its outbox
 * rows, COMMIT with the LSN to confirm once the rows are safely elsewhere. The
 * slot keeps everything after the last confirmed LSN, so a stream opened again
 * (by this process or another) starts there. Only one connection can stream a
 * slot: that is what makes a relay the leader.
 *
 * A wal_stream is used by one thread. */
#ifndef BA_WAL_H
#define BA_WAL_H

#include "common/util.h"

#include <stddef.h>
#include <stdint.h>

typedef struct wal_stream wal_stream;

typedef enum wal_kind {
	WAL_BEGIN = 1, /* commit_us */
	WAL_ROW,       /* id, user, seq, event_id, payload */
	WAL_COMMIT,    /* lsn (the transaction's end), commit_us */
	WAL_REPLY,     /* the server asks for a status update now: wal_confirm(force) */
} wal_kind;

/* One decoded message. The strings point into the stream's buffer: valid until the
 * next wal_next. user and payload are not NUL-terminated (use the lengths). */
typedef struct wal_msg {
	wal_kind kind;
	uint64_t lsn;
	int64_t commit_us; /* commit time, microseconds since the Unix epoch */
	int64_t id, seq;
	const char *user, *event_id, *payload;
	size_t user_len, payload_len;
} wal_msg;

enum {
	WAL_OK = 0,
	WAL_AGAIN = 1,  /* wal_next: nothing to read now (wait on wal_socket) */
	WAL_BUSY = 2,   /* wal_open: another connection streams the slot */
	WAL_NOSLOT = 3, /* wal_open: the slot does not exist (dropped; a failover) */
	WAL_ERR = -1,   /* err says why; the stream is unusable: wal_close it */
};

/* Where a new stream may resume: past lsn, what this client had done on the
 * server named server (wal_server_id) before its last stream ended. */
typedef struct wal_resume {
	uint64_t lsn;    /* 0: from the slot's confirmed LSN */
	char server[48]; /* "system identifier/timeline" */
} wal_resume;

/* Opens a replication connection to url and starts streaming slot (which must
 * exist) for the publication pub: past resume->lsn when resume is given and the
 * server is resume->server with its WAL flushed that far (what the client had done,
 * though the confirmation may not have reached the server), else from the slot's
 * confirmed LSN (a failover to another timeline never skips its transactions).
 * sender_timeout_ms is the server's wal_sender_timeout for this connection: how
 * soon the server ends a stream whose client went silent (frozen, or its host
 * gone), freeing the slot. WAL_OK with *out set, WAL_BUSY, WAL_NOSLOT, or WAL_ERR;
 * err filled but for OK. resume may be NULL. */
MUST_CHECK int wal_open(wal_stream **out, const char *url, const char *slot, const char *pub,
                        long sender_timeout_ms, const wal_resume *resume, char *err, size_t errlen);
/* The server's "system identifier/timeline" (IDENTIFY_SYSTEM), for a wal_resume. */
const char *wal_server_id(const wal_stream *w);
/* The next message: WAL_OK (m filled), WAL_AGAIN, or WAL_ERR (err filled).
 * A keepalive that asks for a reply comes out as WAL_REPLY: the caller answers it
 * with what it can confirm now (a server shutting down waits until the client has
 * confirmed everything sent, asking again after each reply: a reply carrying an
 * older position would keep it waiting). */
MUST_CHECK int wal_next(wal_stream *w, wal_msg *m, char *err, size_t errlen);
/* Tells the server everything up to flush_lsn is done (the slot's confirmed LSN
 * moves there). Sent at once when force, when the position moved at most every
 * 100 ms, else every second; 0, or WAL_ERR. */
MUST_CHECK int wal_confirm(wal_stream *w, uint64_t flush_lsn, int force, char *err, size_t errlen);
/* The position the server reported in its last keepalive: everything before it
 * was sent (0: none yet). With nothing of its own in progress, the caller may
 * confirm up to it, so the slot does not hold WAL that has no outbox rows. */
uint64_t wal_server_lsn(const wal_stream *w);
int wal_socket(const wal_stream *w);
/* Ends the stream and closes the connection. Accepts NULL. */
void wal_close(wal_stream *w);

/* ---- the decoder: the pure part of wal_next, without a connection (a unit
 * test or tests/fuzz/fuzz_wal.c drives it with bytes) ---- */

#define WAL_COLS 5 /* outbox columns the relay reads: id, user_id, seq, event_id, payload */

/* What decoding needs to remember between messages. Zeroed to start. */
typedef struct wal_decoder {
	uint32_t relid;      /* the outbox's relation id (0: no Relation message yet) */
	int col[WAL_COLS];   /* each outbox column's position in a row */
	int ncols;           /* the outbox's column count */
	uint64_t server_lsn; /* the highest position a keepalive reported */
} wal_decoder;

enum {
	WAL_DEC_NONE = 0,  /* nothing for the caller (a Relation, another table, ...) */
	WAL_DEC_MSG = 1,   /* m is filled */
	WAL_DEC_REPLY = 2, /* a keepalive that asks for a status update now */
};

/* Decodes one CopyData message of the stream (n bytes): an XLogData ('w') with
 * its pgoutput message, or a keepalive ('k'). WAL_OK with *what one of
 * WAL_DEC_*, or WAL_ERR with err filled when the message is malformed. m's
 * strings point into buf. */
MUST_CHECK int wal_decode(wal_decoder *d, const void *buf, size_t n, wal_msg *m, int *what,
                          char *err, size_t errlen);

/* "X/Y", PostgreSQL's spelling of an LSN, into buf (at least 24 bytes). */
const char *wal_lsn_str(uint64_t lsn, char *buf, size_t len);

#endif
