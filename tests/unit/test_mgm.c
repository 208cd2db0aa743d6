/* test_mgm.c — tg_mgm: each PIV management key algorithm's cipher and key
 * length; any other algorithm id is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tg_mgm.h"
#include "tg_piv.h"

static void
test_algs(void **state)
{
	static const struct {
		uint8_t alg;
		size_t keylen;
		int block; /* 0: refused */
	} t[] = {
	    {TG_PIV_ALG_3DES, 24, 8},
	    {TG_PIV_ALG_AES128, 16, 16},
	    {TG_PIV_ALG_AES192, 24, 16},
	    {TG_PIV_ALG_AES256, 32, 16},
	    {0x00, 0, 0},
	    {0x07, 0, 0},
	    {0x11, 0, 0},
	    {0xFF, 0, 0},
	};
	const EVP_CIPHER *c;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = 99;
		c = tg_mgm_cipher(t[i].alg, &len);
		assert_int_equal(len, t[i].keylen);
		if (t[i].block == 0) {
			assert_null(c);
			continue;
		}
		assert_non_null(c);
		assert_int_equal(EVP_CIPHER_get_key_length(c), (int)t[i].keylen);
		assert_int_equal(EVP_CIPHER_get_block_size(c), t[i].block);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_algs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
