/* rfc3339: the one routine that turns microseconds since the epoch into RFC 3339
 * text and back, through libc (timegm, gmtime_r, strftime) with floor division, so
 * times before 1970 and fractions at any precision format correctly.
 *
 * The range is that of a four-digit year, 0000-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999999Z (RFC3339_MIN_US .. RFC3339_MAX_US); the parser
 * refuses anything that falls outside it after applying the offset, so whatever it
 * accepts formats back. */
#ifndef TASKSYNC_RFC3339_H
#define TASKSYNC_RFC3339_H

#include "common/util.h"

#include <stddef.h>
#include <stdint.h>

#define RFC3339_MIN_US (-62167219200LL * 1000000)     /* 0000-01-01T00:00:00Z */
#define RFC3339_MAX_US (253402300800LL * 1000000 - 1) /* 9999-12-31T23:59:59.999999Z */
#define RFC3339_LEN    32 /* room for "YYYY-MM-DDTHH:MM:SS.ffffffZ" and the NUL */

typedef enum {
	RFC3339_MS,    /* always 3 fraction digits; finer digits are dropped (floor) */
	RFC3339_EXACT, /* 3 digits when the time is whole milliseconds, else 6: parses back
	                  to the same microsecond */
} rfc3339_precision;

enum {
	RFC3339_OK = 0,
	RFC3339_ERR_SYNTAX = -1, /* not "YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)" */
	RFC3339_ERR_DATE = -2,   /* a field out of range (month 13, 31 February, 25:00) */
	RFC3339_ERR_RANGE = -3,  /* outside RFC3339_MIN_US .. RFC3339_MAX_US */
	RFC3339_ERR_BUFFER = -4, /* the output buffer is shorter than RFC3339_LEN */
};
const char *rfc3339_strerror(int code);

/* Writes us as UTC ("1969-12-31T23:59:59.500Z") into buf. Returns the length
 * written, or a negative RFC3339_ERR_* (buf then holds ""). */
MUST_CHECK int rfc3339_format(int64_t us, rfc3339_precision p, char *buf, size_t len);
/* Parses RFC 3339 (fraction optional, of any length: digits past the sixth are
 * dropped, which is a floor; 'T', 't' or ' ' between date and time; 'Z', 'z' or an
 * offset) into microseconds since the epoch. RFC3339_OK or a negative code. */
MUST_CHECK int rfc3339_parse(const char *s, int64_t *out_us);

/* The older names, kept for their callers (logs, bench): time_iso8601 is
 * rfc3339_format(RFC3339_MS) returning buf ("" when out of range);
 * time_parse_iso8601 is rfc3339_parse returning 0 or -1. */
char *time_iso8601(int64_t wall_us, char *buf, size_t len);
MUST_CHECK int time_parse_iso8601(const char *s, int64_t *out_us);

#endif
