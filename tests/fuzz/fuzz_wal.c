/* fuzz_wal: the relay's decoder of the logical replication stream
 * (backend-api/src/wal.c wal_decode): XLogData with pgoutput's Relation, Begin,
 * Insert and Commit messages, and keepalives. The input is a sequence of CopyData
 * messages, each a 2-byte big-endian length and its bytes, decoded in order with
 * one decoder (a Relation is remembered for the Inserts after it). A decoded row
 * must point inside its message and carry a 36-byte event id; a commit time is
 * never negative (the relay subtracts it from the wall clock). */
#include "wal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static int inside(const char *p, size_t n, const unsigned char *buf, size_t len)
{
	return (const unsigned char *)p >= buf && (const unsigned char *)p + n <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wal_decoder d;
	memset(&d, 0, sizeof(d));
	size_t off = 0;
	while (off + 2 <= size) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		/* a copy of exactly len bytes, as PQgetCopyData returns it */
		unsigned char *buf = malloc(len ? len : 1);
		memcpy(buf, data + off, len);
		off += len;
		wal_msg m;
		int what;
		char err[128];
		uint64_t lsn0 = d.server_lsn;
		int rc = wal_decode(&d, buf, len, &m, &what, err, sizeof(err));
		CHECK(rc == WAL_OK || rc == WAL_ERR);
		CHECK(d.server_lsn >= lsn0);
		if (rc == WAL_ERR) {
			CHECK(err[0]);
			free(buf);
			break; /* the stream is unusable */
		}
		if (what == WAL_DEC_MSG && m.kind == WAL_ROW) {
			CHECK(d.relid != 0);
			CHECK(m.event_id && inside(m.event_id, UUID_STR_LEN - 1, buf, len));
			CHECK(m.user && inside(m.user, m.user_len, buf, len));
			CHECK(m.payload && inside(m.payload, m.payload_len, buf, len));
		} else if (what == WAL_DEC_MSG) {
			CHECK(m.kind == WAL_BEGIN || m.kind == WAL_COMMIT);
			CHECK(m.commit_us >= 0); /* wall_us() - commit_us cannot overflow */
		}
		free(buf);
	}
	return 0;
}
