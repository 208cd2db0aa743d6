/*
 * test_doctor_piv.c — `tokengate doctor`'s reading of PIV GET METADATA
 * (host/doctor/piv.c): the "default value" item (tag 05) of the PIN, PUK
 * and management-key responses, well formed and malformed.
 *
 * Every response is copied into a heap buffer of exactly its size, so
 * AddressSanitizer (TG_SANITIZE=ON) reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "piv.h"
#include "tg_err.h"
#include "tg_test.h"

struct meta_case {
	const char *name;
	const char *hex; /* the response body, status word removed */
	int rc;          /* expected return */
	int isdef;       /* expected *isdef when rc is 0 */
};

static const struct meta_case meta_cases[] = {
    /* PIN as a YubiKey 5 answers it: algorithm FF, default 01, retries 3/3. */
    {"pin default", "01 01 FF 05 01 01 06 02 03 03", 0, TG_DOCTOR_DEFAULT_YES},
    {"pin changed", "01 01 FF 05 01 00 06 02 03 02", 0, TG_DOCTOR_DEFAULT_NO},
    /* management key: algorithm 03 (3DES), policy, default. */
    {"mgm default", "01 01 03 02 02 00 01 05 01 01", 0, TG_DOCTOR_DEFAULT_YES},
    {"mgm changed", "01 01 0C 02 02 00 01 05 01 00", 0, TG_DOCTOR_DEFAULT_NO},
    {"default first", "05 01 01", 0, TG_DOCTOR_DEFAULT_YES},
    /* a key slot's metadata has no default item */
    {"no default item", "01 01 11 02 02 01 01 03 01 01", TG_ERR_NOT_FOUND, 0},
    {"empty", "", TG_ERR_NOT_FOUND, 0},
    {"value 02", "05 01 02", TG_ERR_FORMAT, 0},
    {"value FF", "05 01 FF", TG_ERR_FORMAT, 0},
    {"two bytes", "05 02 01 00", TG_ERR_FORMAT, 0},
    {"zero bytes", "05 00", TG_ERR_FORMAT, 0},
    {"cut value", "01 01 FF 05 01", TG_ERR_TRUNCATED, 0},
    {"cut length", "01 01 FF 05", TG_ERR_TRUNCATED, 0},
    {"length past end", "01 05 FF 05 01 01", TG_ERR_TRUNCATED, 0},
};

static void
test_default_parse_table(void **state)
{
	const struct meta_case *c;
	unsigned char *p;
	size_t i, n;
	int isdef, r;

	(void)state;
	for (i = 0; i < sizeof(meta_cases) / sizeof(meta_cases[0]); i++) {
		c = &meta_cases[i];
		p = tg_test_hexdup(c->hex, &n);
		isdef = 42;
		r = tg_doctor_piv_default_parse(p, n, &isdef);
		free(p);
		if (r != c->rc)
			fail_msg("case '%s': returned %d, expected %d", c->name, r, c->rc);
		if (c->rc == 0 && isdef != c->isdef)
			fail_msg("case '%s': isdef %d, expected %d", c->name, isdef, c->isdef);
		if (c->rc != 0 && isdef != 42)
			fail_msg("case '%s': isdef written on error", c->name);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_parse_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
