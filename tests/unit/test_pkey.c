/* test_pkey.c — tg_pkey: public keys rebuilt from their raw parts equal the
 * originals; bad points, curves and empty parts are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "tg_err.h"
#include "tg_pkey.h"

/* Heap copy of exact size, so ASan catches a read past the end. */
static uint8_t *
dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n > 0 ? n : 1);

	assert_non_null(q);
	memcpy(q, p, n);
	return q;
}

static void
test_ec(void **state)
{
	static const char *groups[] = {"P-256", "P-384"};
	uint8_t pt[200], *copy;
	EVP_PKEY *k, *pub = NULL;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", groups[i]);
		assert_non_null(k);
		assert_int_equal(
		    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n),
		    1);
		copy = dup_exact(pt, n);
		assert_int_equal(tg_pkey_ec_public(groups[i], copy, n, &pub), 0);
		assert_int_equal(EVP_PKEY_eq(k, pub), 1);
		EVP_PKEY_free(pub);
		pub = NULL;
		/* the point of one curve is not a point of the other */
		assert_int_equal(tg_pkey_ec_public(i == 0 ? "P-384" : "P-256", copy, n, &pub),
		                 TG_ERR_CRYPTO);
		assert_null(pub);
		/* off the curve: last coordinate byte changed */
		copy[n - 1] ^= 0x01;
		assert_int_equal(tg_pkey_ec_public(groups[i], copy, n, &pub), TG_ERR_CRYPTO);
		assert_null(pub);
		free(copy);
		EVP_PKEY_free(k);
	}
	assert_int_equal(tg_pkey_ec_public("no-such-curve", pt, n, &pub), TG_ERR_CRYPTO);
	assert_int_equal(tg_pkey_ec_public("P-256", pt, 0, &pub), TG_ERR_CRYPTO);
	assert_null(pub);
}

static void
test_rsa(void **state)
{
	uint8_t nb[256], eb[8], *nc, *ec;
	BIGNUM *bn = NULL, *be = NULL;
	EVP_PKEY *k, *pub = NULL;
	int nl, el;

	(void)state;
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &be), 1);
	nl = BN_bn2bin(bn, nb);
	el = BN_bn2bin(be, eb);
	nc = dup_exact(nb, (size_t)nl);
	ec = dup_exact(eb, (size_t)el);
	assert_int_equal(tg_pkey_rsa_public(nc, (size_t)nl, ec, (size_t)el, &pub), 0);
	assert_int_equal(EVP_PKEY_eq(k, pub), 1);
	EVP_PKEY_free(pub);
	pub = NULL;
	/* another modulus is another key */
	nc[nl - 1] ^= 0x02;
	assert_int_equal(tg_pkey_rsa_public(nc, (size_t)nl, ec, (size_t)el, &pub), 0);
	assert_int_not_equal(EVP_PKEY_eq(k, pub), 1);
	EVP_PKEY_free(pub);
	free(nc);
	free(ec);
	BN_free(bn);
	BN_free(be);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ec),
	    cmocka_unit_test(test_rsa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
