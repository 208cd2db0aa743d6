/* test_tok_state.c — persistent state (token/state.c): round trip, and
 * every corruption rejected (byte flips, truncations, bad version,
 * well-checksummed but invalid contents). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/sha.h>

#include "test_tok_util.h"
#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

/* Copies blob into an exact-size heap buffer and loads it. */
static int
load_copy(const uint8_t *blob, size_t n, struct tg_tok **t)
{
	uint8_t *c = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(c);
	if (n > 0)
		memcpy(c, blob, n);
	r = tg_tok_load(n > 0 ? c : NULL, n, NULL, t);
	free(c);
	return r;
}

static void
rechecksum(uint8_t *blob, size_t n)
{
	SHA256(blob, n - 32, blob + n - 32);
}

static void
test_round_trip(void **state)
{
	struct tt_host h, h2;
	struct tg_tok *t = tt_token_new(*state, &h), *t2 = NULL;
	struct tg_tok_host host2 = tt_host_make(&h2);
	struct tg_tok_info i1, i2;
	uint8_t *b1 = NULL, *b2 = NULL, hash[32], sig[200];
	size_t n1 = 0, n2 = 0, siglen, k;
	EVP_PKEY *pa, *pr;
	EVP_PKEY_CTX *c;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	pa = tt_generate(t, 0x9A, 0x11, 2, 3);
	pr = tt_generate(t, 0x82, 0x06, 0, 0);
	EVP_PKEY_free(tt_generate(t, 0x9C, 0x14, 0, 0));
	assert_int_equal(tt_hex(t, "00DB3FFF 0A 5C035FC105 5303 700100", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(t, "123456"), 0x9000);
	memset(hash, 3, sizeof(hash));
	assert_int_equal(tt_sign(t, 0x11, 0x9A, hash, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_verify(t, "999999"), 0x63C2);
	assert_int_equal(
	    tt_hex(t, "00FFFFFF 13 089B10 0102030405060708090A0B0C0D0E0F10", NULL, 0, NULL),
	    0x9000);
	assert_int_equal(tg_tok_save(t, &b1, &n1), 0);
	/* the last persisted blob is the state */
	assert_int_equal(h.last_len, n1);
	assert_memory_equal(h.last_blob, b1, n1);
	assert_int_equal(load_copy(b1, n1, &t2), 0);
	assert_int_equal(tg_tok_save(t2, &b2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	tg_tok_info_get(t, &i1);
	tg_tok_info_get(t2, &i2);
	assert_int_equal(i1.serial, i2.serial);
	assert_int_equal(i1.nslots, i2.nslots);
	assert_int_equal(i2.pin_tries_left, 2);
	assert_int_equal(i2.private_key_operations, 1);
	assert_int_equal(i2.mgm_key_alg, 0x08);
	for (k = 0; k < i1.nslots; k++) {
		assert_int_equal(i1.slots[k].slot, i2.slots[k].slot);
		assert_int_equal(i1.slots[k].algorithm, i2.slots[k].algorithm);
		assert_int_equal(i1.slots[k].pin_policy, i2.slots[k].pin_policy);
		assert_int_equal(i1.slots[k].touch_policy, i2.slots[k].touch_policy);
		assert_int_equal(i1.slots[k].cert_len, i2.slots[k].cert_len);
	}
	tg_tok_free(t2);
	/* volatile state is not in the blob; the keys are */
	assert_int_equal(tg_tok_load(b1, n1, &host2, &t2), 0);
	tt_select(t2);
	assert_int_equal(tt_hex(t2, "00200080", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_hex(t2, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_verify(t2, "123456"), 0x9000);
	assert_int_equal(tt_sign(t2, 0x11, 0x9A, hash, 32, sig, &siglen), 0x9000);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, pa, NULL);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_int_equal(EVP_PKEY_verify(c, sig, siglen, hash, 32), 1);
	EVP_PKEY_CTX_free(c);
	assert_int_equal(h2.last_ops, 2);
	tg_tok_free(t2);
	tg_freezero(b1, n1);
	tg_freezero(b2, n2);
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pr);
	tg_tok_free(t);
	tt_host_free(&h);
	tt_host_free(&h2);
}

static void
test_corruption(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h), *t2 = NULL;
	uint8_t *b = NULL;
	size_t n = 0, i;
	int r;

	assert_int_equal(tg_tok_save(t, &b, &n), 0);
	assert_true(n > 100);
	/* every byte flipped, two ways */
	for (i = 0; i < n; i++) {
		b[i] ^= 0x01;
		r = load_copy(b, n, &t2);
		if (r == 0)
			fail_msg("flip 01 at %zu accepted", i);
		b[i] ^= 0x01 ^ 0xFF;
		r = load_copy(b, n, &t2);
		if (r == 0)
			fail_msg("flip FF at %zu accepted", i);
		b[i] ^= 0xFF;
	}
	/* every truncation */
	for (i = 0; i < n; i++)
		if (load_copy(b, i, &t2) == 0)
			fail_msg("truncation to %zu accepted", i);
	assert_null(t2);
	assert_int_equal(load_copy(b, n, &t2), 0);
	tg_tok_free(t2);
	tg_freezero(b, n);
	tg_tok_free(t);
	tt_host_free(&h);
}

static void
test_invalid_contents(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h), *t2 = NULL;
	uint8_t *b = NULL, *c;
	size_t n = 0;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x11, 0, 0));
	assert_int_equal(tg_tok_save(t, &b, &n), 0);
	c = malloc(n + 1);
	assert_non_null(c);

	/* magic, version, checksum */
	memcpy(c, b, n);
	c[0] = 'X';
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[5] = 2;
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_VERSION);
	memcpy(c, b, n);
	c[n - 1] ^= 0x80;
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_CHECKSUM);
	/* layout: 6 header, serial 4, version 3, form 1, PIN 8 @14,
	 * tries @22, max @23, PUK 8 @24, tries @32, max @33, mgm alg @34 */
	memcpy(c, b, n);
	c[22] = 4; /* tries above max */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[23] = 0; /* max 0 */
	c[22] = 0;
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[34] = 0x08; /* AES-128 with a 24-byte key */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	/* mgm len @35, key @36..59, touch @60, ops @61..68, nkeys @69,
	 * first key: slot @70, alg @71, origin @72, pin @73, touch @74 */
	memcpy(c, b, n);
	c[60] = 2; /* touch flag */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[70] = 0x99; /* unknown slot */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[71] = 0x14; /* P-384 id for a P-256 key */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[72] = 0; /* origin none */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[73] = 4; /* PIN policy */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[69] = 9; /* more keys than there are */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	/* a byte of garbage before the checksum */
	memcpy(c, b, n - 32);
	c[n - 32] = 0;
	rechecksum(c, n + 1);
	assert_int_equal(load_copy(c, n + 1, &t2), TG_ERR_FORMAT);
	assert_null(t2);
	/* arguments */
	assert_int_equal(tg_tok_load(NULL, 10, NULL, &t2), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_load(b, n, NULL, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_save(NULL, &c, &n), TG_ERR_INVALID_ARG);
	free(c);
	tg_freezero(b, n);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* tok_dup (the fuzz target's fixture copy) keeps the persistent state and
 * drops the volatile one. */
static void
test_dup(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h), *d;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t n1 = 0, n2 = 0;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x11, 0, 0));
	assert_int_equal(tt_verify(t, "123456"), 0x9000);
	d = tok_dup(t, NULL);
	assert_non_null(d);
	assert_int_equal(tg_tok_save(t, &b1, &n1), 0);
	assert_int_equal(tg_tok_save(d, &b2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	/* the copy starts unselected and unauthenticated */
	assert_int_equal(tt_hex(d, "00FD0000", NULL, 0, NULL), 0x6D00);
	tt_select(d);
	assert_int_equal(tt_hex(d, "00200080", NULL, 0, NULL), 0x63C3);
	/* the original lives on after the copy is freed (shared keys) */
	tg_tok_free(d);
	{
		uint8_t hsh[32], sig[100];
		size_t sl;

		memset(hsh, 1, sizeof(hsh));
		assert_int_equal(tt_sign(t, 0x11, 0x9A, hsh, 32, sig, &sl), 0x9000);
	}
	tg_freezero(b1, n1);
	tg_freezero(b2, n2);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* A failed save is TG_ERR_PERSIST (it was -1, which is TG_ERR_INTERNAL). */
static void
test_persist_code(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h);

	assert_int_equal(tok_persist(t), 0);
	h.persist_fail = 1;
	assert_int_equal(tok_persist(t), TG_ERR_PERSIST);
	h.persist_fail = 0;
	tg_tok_free(t);
	tt_host_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_corruption),
	    cmocka_unit_test(test_invalid_contents), cmocka_unit_test(test_dup),
	    cmocka_unit_test(test_persist_code),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
