/* test_hex.c — tg_hex: hex text to bytes (management keys) and back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_err.h"
#include "tg_hex.h"

struct decode_case {
	const char *name;
	const char *text;
	size_t cap;
	int want;
	const char *bytes; /* want == 0: the decoded bytes */
	size_t len;
};

static const struct decode_case decode_cases[] = {
    {"lower", "0a1b", 4, 0, "\x0a\x1b", 2},
    {"upper", "FFEE", 4, 0, "\xff\xee", 2},
    {"exactly cap", "010203", 3, 0, "\x01\x02\x03", 3},
    {"empty", "", 4, TG_ERR_INVALID_ARG, NULL, 0},
    {"odd length", "abc", 4, TG_ERR_INVALID_ARG, NULL, 0},
    {"bad digit", "0g", 4, TG_ERR_INVALID_ARG, NULL, 0},
    {"bad low digit", "g0", 4, TG_ERR_INVALID_ARG, NULL, 0},
    {"separator", "01 02", 4, TG_ERR_INVALID_ARG, NULL, 0},
    {"over cap", "01020304", 3, TG_ERR_INVALID_ARG, NULL, 0},
};

static void
test_decode(void **state)
{
	uint8_t out[8];
	size_t i, n, len;
	char *text;

	(void)state;
	for (i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		const struct decode_case *c = &decode_cases[i];

		/* heap copy of exact size, so ASan catches a read past the NUL */
		len = strlen(c->text) + 1;
		text = malloc(len);
		assert_non_null(text);
		memcpy(text, c->text, len);
		memset(out, 0x55, sizeof(out));
		n = 99;
		if (tg_hex_decode(text, out, c->cap, &n) != c->want)
			fail_msg("case '%s': want %d", c->name, c->want);
		if (c->want == 0) {
			assert_int_equal(n, c->len);
			assert_memory_equal(out, c->bytes, c->len);
		} else {
			assert_int_equal(n, 99);
			assert_memory_equal(out, "\0\0\0", c->cap < 3 ? c->cap : 3);
		}
		free(text);
	}
}

static void
test_encode(void **state)
{
	static const uint8_t in[] = {0x00, 0x9f, 0xa0, 0xff};
	char out[9];

	(void)state;
	assert_int_equal(tg_hex_encode(in, sizeof(in), out, sizeof(out)), 0);
	assert_string_equal(out, "009fa0ff");
	assert_int_equal(tg_hex_encode(in, 0, out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(tg_hex_encode(in, sizeof(in), out, sizeof(out) - 1), TG_ERR_NO_SPACE);
	assert_string_equal(out, "");
	assert_int_equal(tg_hex_encode(in, 1, out, 0), TG_ERR_NO_SPACE);
}

static void
test_encode_sep(void **state)
{
	static const struct {
		const char *name;
		unsigned flags;
		char sep;
		size_t n, cap;
		int want;
		const char *text;
	} cases[] = {
	    {"upper, no separator", TG_HEX_UPPER, '\0', 4, 9, 0, "009FA0FF"},
	    {"lower, no separator", TG_HEX_LOWER, '\0', 4, 9, 0, "009fa0ff"},
	    {"upper, space (ATR)", TG_HEX_UPPER, ' ', 4, 12, 0, "00 9F A0 FF"},
	    {"lower, colon", TG_HEX_LOWER, ':', 4, 12, 0, "00:9f:a0:ff"},
	    {"one byte, separator", TG_HEX_UPPER, ' ', 1, 3, 0, "00"},
	    {"no byte, separator", TG_HEX_UPPER, ' ', 0, 1, 0, ""},
	    {"separator, one short", TG_HEX_UPPER, ' ', 4, 11, TG_ERR_NO_SPACE, ""},
	    {"one byte, separator, short", TG_HEX_UPPER, ' ', 1, 2, TG_ERR_NO_SPACE, ""},
	    {"no separator, one short", TG_HEX_UPPER, '\0', 4, 8, TG_ERR_NO_SPACE, ""},
	};
	static const uint8_t in[] = {0x00, 0x9f, 0xa0, 0xff};
	char *out;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* exact-size heap buffer, so ASan catches a write past cap */
		out = malloc(cases[i].cap);
		assert_non_null(out);
		if (tg_hex_encode_sep(in, cases[i].n, cases[i].flags, cases[i].sep, out,
		                      cases[i].cap) != cases[i].want)
			fail_msg("case '%s': want %d", cases[i].name, cases[i].want);
		if (strcmp(out, cases[i].text) != 0)
			fail_msg("case '%s': '%s', want '%s'", cases[i].name, out, cases[i].text);
		free(out);
	}
	assert_int_equal(tg_hex_encode_sep(in, 1, TG_HEX_UPPER, ' ', NULL, 0), TG_ERR_NO_SPACE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_encode_sep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
