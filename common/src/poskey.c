#include "common/poskey.h"

#include <string.h>

static const char DIGITS[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define BASE 62
/* The least integer part, "A" and 26 zeros: nothing could go before it. */
#define SMALLEST_LEN 27

const char *poskey_strerror(int code)
{
	switch (code) {
	case POSKEY_OK:
		return "ok";
	case POSKEY_ERR_INVALID:
		return "not a position key";
	case POSKEY_ERR_ORDER:
		return "neighbours out of order";
	case POSKEY_ERR_TOO_LONG:
		return "no room for a key between these neighbours";
	}
	return "unknown";
}

static int digit_of(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 36;
	return -1;
}

/* The length of the integer part a head character announces; 0 when not a head. */
static size_t int_len(char head)
{
	if (head >= 'a' && head <= 'z')
		return (size_t)(head - 'a') + 2;
	if (head >= 'A' && head <= 'Z')
		return (size_t)('Z' - head) + 2;
	return 0;
}

static int is_smallest(const char *s, size_t n)
{
	if (n != SMALLEST_LEN || s[0] != 'A')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

int poskey_valid(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n > POSKEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (digit_of(s[i]) < 0)
			return 0;
	size_t il = int_len(s[0]);
	if (il == 0 || il > n || is_smallest(s, n))
		return 0;
	return n == il || s[n - 1] != '0';
}

/* A growing key in a fixed buffer; any append past POSKEY_MAX sets over. */
typedef struct kbuf {
	char *s;
	size_t n;
	int over;
} kbuf;

static void put(kbuf *k, char c)
{
	if (k->n >= POSKEY_MAX) {
		k->over = 1;
		return;
	}
	k->s[k->n++] = c;
	k->s[k->n] = '\0';
}

/* Appends a fraction strictly between fractions a and b (b NULL: 1). Both are
 * digit strings without a trailing '0', a < b. */
static void midpoint(kbuf *k, const char *a, const char *b)
{
	size_t alen = strlen(a), blen = b ? strlen(b) : 0;
	for (;;) {
		if (b) {
			size_t n = 0;
			while (n < blen && (n < alen ? a[n] : '0') == b[n])
				n++;
			for (size_t i = 0; i < n; i++)
				put(k, b[i]);
			a += n < alen ? n : alen;
			alen -= n < alen ? n : alen;
			b += n;
			blen -= n;
		}
		int da = alen ? digit_of(a[0]) : 0;
		int db = b ? digit_of(b[0]) : BASE;
		if (db - da > 1) {
			put(k, DIGITS[(da + db + 1) / 2]);
			return;
		}
		if (b && blen > 1) {
			put(k, b[0]);
			return;
		}
		put(k, DIGITS[da]);
		if (alen) {
			a++;
			alen--;
		}
		b = NULL;
		blen = 0;
		if (k->over)
			return;
	}
}

/* x (an integer part of n characters) plus one, into out; 0, or -1 past "z...z". */
static int increment(const char *x, size_t n, char *out, size_t *outn)
{
	char head = x[0];
	char d[SMALLEST_LEN + 1];
	if (n < 2 || n > SMALLEST_LEN)
		return -1; /* cannot happen: int_len() is 2..27 */
	size_t nd = n - 1;
	memcpy(d, x + 1, nd);
	int carry = 1;
	for (size_t i = nd; carry && i-- > 0;) {
		int v = digit_of(d[i]) + 1;
		if (v == BASE) {
			d[i] = '0';
		} else {
			d[i] = DIGITS[v];
			carry = 0;
		}
	}
	if (carry) {
		if (head == 'Z') {
			memcpy(out, "a0", 2);
			*outn = 2;
			return 0;
		}
		if (head == 'z')
			return -1;
		head++;
		if (head > 'a')
			d[nd++] = '0';
		else if (nd > 1)
			nd--;
		else
			return -1; /* cannot happen: integer parts have a digit */
	}
	out[0] = head;
	memcpy(out + 1, d, nd);
	*outn = nd + 1;
	return 0;
}

/* x minus one, into out; 0, or -1 below the smallest. */
static int decrement(const char *x, size_t n, char *out, size_t *outn)
{
	char head = x[0];
	char d[SMALLEST_LEN + 1];
	if (n < 2 || n > SMALLEST_LEN)
		return -1; /* cannot happen: int_len() is 2..27 */
	size_t nd = n - 1;
	memcpy(d, x + 1, nd);
	int borrow = 1;
	for (size_t i = nd; borrow && i-- > 0;) {
		int v = digit_of(d[i]) - 1;
		if (v == -1) {
			d[i] = DIGITS[BASE - 1];
		} else {
			d[i] = DIGITS[v];
			borrow = 0;
		}
	}
	if (borrow) {
		if (head == 'a') {
			out[0] = 'Z';
			out[1] = DIGITS[BASE - 1];
			*outn = 2;
			return 0;
		}
		if (head == 'A')
			return -1;
		head--;
		if (head < 'Z')
			d[nd++] = DIGITS[BASE - 1];
		else if (nd > 1)
			nd--;
		else
			return -1; /* cannot happen: integer parts have a digit */
	}
	out[0] = head;
	memcpy(out + 1, d, nd);
	*outn = nd + 1;
	return 0;
}

static int done(kbuf *k)
{
	if (k->over) {
		k->s[0] = '\0';
		return POSKEY_ERR_TOO_LONG;
	}
	return POSKEY_OK;
}

static void put_n(kbuf *k, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(k, s[i]);
}

int poskey_between(const char *lo, const char *hi, char out[POSKEY_BUF])
{
	out[0] = '\0';
	if ((lo && !poskey_valid(lo)) || (hi && !poskey_valid(hi)))
		return POSKEY_ERR_INVALID;
	if (lo && hi && strcmp(lo, hi) >= 0)
		return POSKEY_ERR_ORDER;
	kbuf k = {out, 0, 0};
	char tmp[SMALLEST_LEN + 1];
	size_t tn;
	if (!lo && !hi) {
		put_n(&k, "a0", 2);
		return done(&k);
	}
	if (!lo) {
		size_t il = int_len(hi[0]);
		if (is_smallest(hi, il)) {
			put_n(&k, hi, il);
			midpoint(&k, "", hi + il);
			return done(&k);
		}
		if (il < strlen(hi)) {
			put_n(&k, hi, il); /* the integer part alone sorts before hi */
			return done(&k);
		}
		if (decrement(hi, il, tmp, &tn))
			return POSKEY_ERR_TOO_LONG;
		put_n(&k, tmp, tn);
		return done(&k);
	}
	size_t ila = int_len(lo[0]);
	if (!hi) {
		if (increment(lo, ila, tmp, &tn) == 0) {
			put_n(&k, tmp, tn);
		} else {
			put_n(&k, lo, ila);
			midpoint(&k, lo + ila, NULL);
		}
		return done(&k);
	}
	size_t ilb = int_len(hi[0]);
	if (ila == ilb && memcmp(lo, hi, ila) == 0) {
		put_n(&k, lo, ila);
		midpoint(&k, lo + ila, hi + ilb);
		return done(&k);
	}
	if (increment(lo, ila, tmp, &tn) == 0) {
		tmp[tn] = '\0';
		if (strcmp(tmp, hi) < 0) {
			put_n(&k, tmp, tn);
			return done(&k);
		}
	}
	put_n(&k, lo, ila);
	midpoint(&k, lo + ila, NULL);
	return done(&k);
}

void poskey_from_index(uint64_t n, char out[16])
{
	char rev[16];
	size_t nd = 0;
	do {
		rev[nd++] = DIGITS[n % BASE];
		n /= BASE;
	} while (n);
	out[0] = (char)('a' + nd - 1);
	for (size_t i = 0; i < nd; i++)
		out[1 + i] = rev[nd - 1 - i];
	out[1 + nd] = '\0';
}
