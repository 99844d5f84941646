/* util: allocation that aborts on out-of-memory, clocks, identifiers. */
#ifndef TASKSYNC_UTIL_H
#define TASKSYNC_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MUST_CHECK   __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation wrappers: they abort the process on out-of-memory, so callers never
 * check for NULL. xstrdup(NULL) returns NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Room for need elements of elem bytes in the array p of *cap elements: p itself
 * when it has it, else p grown (at least doubled; *cap updated). */
void *xgrow(void *p, size_t *cap, size_t need, size_t elem);

/* Milliseconds and microseconds of CLOCK_MONOTONIC (for durations). */
int64_t mono_ms(void);
int64_t mono_us(void);
/* Microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t wall_us(void);
/* The time ms from now on clock clk, as pthread_cond_timedwait wants it (the
 * clock the condition variable was made with: CLOCK_REALTIME by default). */
struct timespec deadline_in(clockid_t clk, int64_t ms);

/* A user id is 1..128 bytes of [A-Za-z0-9._@:-]. Returns 1 when valid. */
int user_id_valid(const char *s);
#define USER_ID_MAX 128

/* Canonical lower-case UUID text (36 bytes + NUL). */
#define UUID_STR_LEN 37
void uuid_new(char out[UUID_STR_LEN]);
/* 1 when s is a UUID in canonical 8-4-4-4-12 hex form (any case). */
int uuid_valid(const char *s);

/* For a service's main thread, before it starts any other: blocks SIGTERM and
 * SIGINT (every thread started later inherits the mask, so only a sigwait() on
 * *stop takes them) and ignores SIGPIPE (a peer that went away is an error code
 * from write, not a signal). Fills *stop with the two signals. */
void signals_take_over(sigset_t *stop);

/* time_iso8601 and time_parse_iso8601 live in common/rfc3339.h (included here for
 * their callers). */
#include "common/rfc3339.h"

#endif
