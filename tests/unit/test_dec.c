/* test_dec.c — tg_dec: integers as decimal text, the same as printf's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_dec.h"

/* A TG_DEC_MAX-byte heap buffer: ASan catches a write past it. */
static char *
dec_buf(void)
{
	char *out = malloc(TG_DEC_MAX);

	assert_non_null(out);
	return out;
}

/* out, which holds n bytes of text, is want; frees out. */
static void
expect_text(const char *want, char *out, size_t n)
{
	if (strcmp(out, want) != 0 || n != strlen(want))
		fail_msg("%s: got '%s' (%zu)", want, out, n);
	free(out);
}

/* tg_dec_u64(v) against "%" PRIu64 */
static void
check_u64(uint64_t v)
{
	char want[32], *out = dec_buf();

	snprintf(want, sizeof(want), "%" PRIu64, v);
	expect_text(want, out, tg_dec_u64(v, out));
}

/* tg_dec_i64(v) against "%" PRId64 */
static void
check_i64(int64_t v)
{
	char want[32], *out = dec_buf();

	snprintf(want, sizeof(want), "%" PRId64, v);
	expect_text(want, out, tg_dec_i64(v, out));
}

static void
test_edges(void **state)
{
	static const uint64_t u[] = {0,
	                             1,
	                             9,
	                             10,
	                             99,
	                             100,
	                             403,
	                             65535,
	                             4294967295u,
	                             4294967296u,
	                             9999999999999999999u,
	                             10000000000000000000u,
	                             UINT64_MAX};
	static const int64_t s[] = {0,   1,   -1,   9,         -9,        10,
	                            -10, 200, -200, INT64_MAX, INT64_MIN, INT64_MIN + 1};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		check_u64(u[i]);
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		check_i64(s[i]);
}

/* every power of ten and its neighbours, and pseudo-random values of
 * every length (a fixed seed: the same cases every run) */
static void
test_lengths(void **state)
{
	uint64_t p = 1, x = 0x9e3779b97f4a7c15u;
	int i;

	(void)state;
	for (i = 0; i < 20; i++, p *= 10u) {
		check_u64(p - 1);
		check_u64(p);
		check_u64(p + 1);
		check_i64(-(int64_t)(p % (uint64_t)INT64_MAX));
	}
	for (i = 0; i < 10000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check_u64(x >> (i % 64));
		check_i64((int64_t)(x >> (i % 64)) * (i % 2 ? -1 : 1));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edges),
	    cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
