#include "common/poskey.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

START_TEST(integer_keys_increase)
{
	char prev[16], k[16];
	poskey_from_index(0, prev);
	ck_assert_str_eq(prev, "a0");
	for (uint64_t n = 1; n < 300000; n += (n < 5000 ? 1 : 97)) {
		poskey_from_index(n, k);
		ck_assert_msg(strcmp(prev, k) < 0, "%s !< %s", prev, k);
		ck_assert(poskey_valid(k));
		strcpy(prev, k);
	}
	poskey_from_index(61, k);
	ck_assert_str_eq(k, "az");
	poskey_from_index(62, k);
	ck_assert_str_eq(k, "b10");
	poskey_from_index(UINT64_MAX, k);
	ck_assert(poskey_valid(k));
}
END_TEST

START_TEST(validity)
{
	const char *good[] = {"a0", "a0V", "b10", "Zz", "zzzzzzzzzzzzzzzzzzzzzzzzzzz", "a01"};
	const char *bad[] = {
	    "", "a", "a00", "b1", "a0-", "0a", "a0 ", "A00000000000000000000000000", NULL};
	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		ck_assert_msg(poskey_valid(good[i]), "refused %s", good[i]);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ck_assert_msg(!poskey_valid(bad[i]), "accepted %s", bad[i] ? bad[i] : "NULL");
	char big[POSKEY_MAX + 2];
	memset(big, 'V', sizeof(big) - 1);
	big[0] = 'a';
	big[sizeof(big) - 1] = '\0';
	ck_assert(!poskey_valid(big));
	big[POSKEY_MAX] = '\0';
	ck_assert(poskey_valid(big));
}
END_TEST

static void between_ok(const char *lo, const char *hi, char *out)
{
	int rc = poskey_between(lo, hi, out);
	ck_assert_msg(rc == POSKEY_OK, "between %s and %s: %s", lo ? lo : "-", hi ? hi : "-",
	              poskey_strerror(rc));
	ck_assert(poskey_valid(out));
	if (lo)
		ck_assert_msg(strcmp(lo, out) < 0, "%s !< %s", lo, out);
	if (hi)
		ck_assert_msg(strcmp(out, hi) < 0, "%s !< %s", out, hi);
}

/* Random inserts into a list keep it strictly ordered, keys stay short. */
START_TEST(random_inserts_stay_ordered)
{
	enum { N = 2000 };
	static char keys[N][POSKEY_BUF];
	size_t n = 0;
	srand(11);
	for (int i = 0; i < N; i++) {
		size_t at = n ? (size_t)rand() % (n + 1) : 0;
		char k[POSKEY_BUF];
		between_ok(at ? keys[at - 1] : NULL, at < n ? keys[at] : NULL, k);
		memmove(keys[at + 1], keys[at], (n - at) * POSKEY_BUF);
		strcpy(keys[at], k);
		n++;
	}
	size_t longest = 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			ck_assert(strcmp(keys[i - 1], keys[i]) < 0);
		if (strlen(keys[i]) > longest)
			longest = strlen(keys[i]);
	}
	ck_assert_msg(longest <= 12, "random inserts made a %zu-byte key", longest);
}
END_TEST

START_TEST(edges)
{
	char k[POSKEY_BUF], k2[POSKEY_BUF];
	between_ok(NULL, NULL, k);
	ck_assert_str_eq(k, "a0");
	between_ok(NULL, "a0", k);
	ck_assert_str_eq(k, "Zz");
	between_ok("a0", NULL, k);
	ck_assert_str_eq(k, "a1");
	between_ok("az", NULL, k);
	ck_assert_str_eq(k, "b00");
	between_ok("a0", "a1", k);
	between_ok("a0", k, k2);
	between_ok("b10", "b11", k);
	between_ok("Zz", "a0", k);
	ck_assert_int_eq(poskey_between("a1", "a0", k), POSKEY_ERR_ORDER);
	ck_assert_str_eq(k, "");
	ck_assert_int_eq(poskey_between("a1", "a1", k), POSKEY_ERR_ORDER);
	ck_assert_int_eq(poskey_between("a00", "a1", k), POSKEY_ERR_INVALID);
	/* the top, again and again: keys stay short (decrementing integers) */
	char top[POSKEY_BUF] = "a0";
	for (int i = 0; i < 10000; i++) {
		between_ok(NULL, top, k);
		strcpy(top, k);
	}
	ck_assert_int_le(strlen(top), 5);
}
END_TEST

/* Always into the same gap: the key grows about one byte per six moves and stops at
 * POSKEY_MAX with POSKEY_ERR_TOO_LONG, never beyond. */
START_TEST(one_gap_exhausts_at_the_bound)
{
	char lo[POSKEY_BUF] = "a0", hi[POSKEY_BUF] = "a1", k[POSKEY_BUF];
	int moves = 0, rc;
	while ((rc = poskey_between(lo, hi, k)) == POSKEY_OK) {
		ck_assert(strcmp(lo, k) < 0 && strcmp(k, hi) < 0);
		ck_assert_int_le(strlen(k), POSKEY_MAX);
		strcpy(hi, k);
		moves++;
		ck_assert_int_lt(moves, 100000);
	}
	ck_assert_int_eq(rc, POSKEY_ERR_TOO_LONG);
	ck_assert_str_eq(k, "");
	ck_assert_msg(moves > 1000, "only %d moves before exhaustion", moves);
}
END_TEST

Suite *poskey_suite(void)
{
	Suite *s = suite_create("poskey");
	TCase *tc = tcase_create("poskey");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, integer_keys_increase);
	tcase_add_test(tc, validity);
	tcase_add_test(tc, random_inserts_stay_ordered);
	tcase_add_test(tc, edges);
	tcase_add_test(tc, one_gap_exhausts_at_the_bound);
	suite_add_tcase(s, tc);
	return s;
}
