/* test_secret.c — tg_secret: wiping and constant-time comparison. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_secret.h"

struct eq_case {
	const char *name;
	const char *a;
	size_t alen;
	const char *b;
	size_t blen;
	int eq;
};

static const struct eq_case eq_cases[] = {
    {"equal", "123456", 6, "123456", 6, 1},
    {"both empty", "", 0, "", 0, 1},
    {"last byte differs", "123456", 6, "123457", 6, 0},
    {"first byte differs", "023456", 6, "123456", 6, 0},
    {"prefix, a shorter", "12345", 5, "123456", 6, 0},
    {"prefix, b shorter", "123456", 6, "12345", 5, 0},
    {"one empty", "", 0, "1", 1, 0},
    {"embedded NUL equal", "a\0b", 3, "a\0b", 3, 1},
    {"embedded NUL differs", "a\0b", 3, "a\0c", 3, 0},
};

static void
test_secret_eq(void **state)
{
	size_t i;
	uint8_t *a, *b;

	for (i = 0; i < sizeof(eq_cases) / sizeof(eq_cases[0]); i++) {
		const struct eq_case *c = &eq_cases[i];

		print_message("secret_eq: %s\n", c->name);
		/* exact-size copies: ASan catches a read past either */
		a = malloc(c->alen + (c->alen == 0));
		b = malloc(c->blen + (c->blen == 0));
		assert_non_null(a);
		assert_non_null(b);
		memcpy(a, c->a, c->alen);
		memcpy(b, c->b, c->blen);
		assert_int_equal(tg_secret_eq(a, c->alen, b, c->blen), c->eq);
		assert_int_equal(tg_secret_eq(b, c->blen, a, c->alen), c->eq);
		free(a);
		free(b);
	}
	assert_int_equal(tg_secret_eq(NULL, 0, NULL, 0), 1);
}

static void
test_wipe(void **state)
{
	uint8_t buf[32];
	size_t i;

	memset(buf, 0xA5, sizeof(buf));
	tg_wipe(buf + 8, 16);
	for (i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (i >= 8 && i < 24) ? 0 : 0xA5);
	tg_wipe(NULL, 0);
	tg_wipe(buf, 0);
	assert_int_equal(buf[0], 0xA5);
}

/* The free functions accept NULL and release memory (LeakSanitizer checks
 * the latter in TG_SANITIZE builds). */
static void
test_freezero(void **state)
{
	char *s;
	uint8_t *p;

	tg_freezero(NULL, 0);
	tg_freezero(NULL, 10);
	tg_strfreezero(NULL);
	p = malloc(16);
	assert_non_null(p);
	memset(p, 0x11, 16);
	tg_freezero(p, 16);
	s = strdup("123456");
	assert_non_null(s);
	tg_strfreezero(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_eq),
	    cmocka_unit_test(test_wipe),
	    cmocka_unit_test(test_freezero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
