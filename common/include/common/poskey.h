/* poskey: fractional-index position keys, the order of a user's list.
 *
 * A key is ASCII text over the base-62 alphabet "0-9A-Za-z" (ASCII order), and keys
 * compare bytewise (strcmp, memcmp, SQL COLLATE "C", JavaScript's < on strings). A
 * key is an integer part whose first character says its length ('a'..'z': 2..27
 * characters, head included; 'A'..'Z': 27..2, for the keys before "a0") followed by
 * an optional fraction that never ends in '0'. So between any two keys there is
 * another, after any key there is a short one, and one move rewrites one key.
 *
 * Appends use poskey_from_index(n) for a per-user counter n ("a0", "a1", ... "az",
 * "b10", ...): 3 characters up to 3,844 tasks, 4 up to 238,328.
 *
 * Keys are bounded to POSKEY_MAX bytes. Each move into the same gap lengthens the key
 * by about one character every six moves (each character halves the gap about six
 * times), so about 1,500 moves in a row between the same two neighbours exhaust it;
 * poskey_between then returns POSKEY_ERR_TOO_LONG instead of a longer key (the API
 * answers 409 position_exhausted; PUT /api/v1/tasks/order renumbers a small list to
 * short keys, and moving one of the two neighbours elsewhere opens the gap). */
#ifndef TASKSYNC_POSKEY_H
#define TASKSYNC_POSKEY_H

#include "common/util.h"

#include <stddef.h>
#include <stdint.h>

#define POSKEY_MAX 255 /* bytes, without the NUL */
#define POSKEY_BUF (POSKEY_MAX + 1)

enum {
	POSKEY_OK = 0,
	POSKEY_ERR_INVALID = -1,  /* an input is not a key */
	POSKEY_ERR_ORDER = -2,    /* before is not strictly less than after */
	POSKEY_ERR_TOO_LONG = -3, /* the key between would exceed POSKEY_MAX */
};
const char *poskey_strerror(int code);

/* 1 when s (NUL-terminated) is a valid key of at most POSKEY_MAX bytes. */
int poskey_valid(const char *s);

/* A key strictly between lo and hi into out (POSKEY_BUF bytes). lo NULL: before hi
 * (hi NULL too: the first key "a0"); hi NULL: after lo. POSKEY_OK or a negative code
 * (out then holds ""). */
MUST_CHECK int poskey_between(const char *lo, const char *hi, char out[POSKEY_BUF]);

/* The integer key of n (strictly increasing in n, no fraction) into out (at least
 * 16 bytes); migrations/0004's task_pos_key(bigint) computes the same text. */
void poskey_from_index(uint64_t n, char out[16]);

#endif
