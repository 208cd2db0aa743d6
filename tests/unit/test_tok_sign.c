/* test_tok_sign.c — private-key operations (token/sign.c): RSA raw, ECDSA,
 * ECDH, PIN and touch policies, the operation counter, GET CHALLENGE.
 * Every result is checked with OpenSSL against the public key GENERATE
 * returned. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "test_tok_util.h"

static int
ec_verify(EVP_PKEY *pub, const uint8_t *sig, size_t siglen, const uint8_t *h, size_t hn)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	int ok;

	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	ok = EVP_PKEY_verify(c, sig, siglen, h, hn);
	EVP_PKEY_CTX_free(c);
	return ok;
}

static void
test_ecdsa(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *p256 = tt_generate(f->t, 0x9A, 0x11, 1, 0);
	EVP_PKEY *p384 = tt_generate(f->t, 0x9D, 0x14, 1, 0);
	uint8_t h[64], padded[48], sig[200];
	size_t siglen, i;
	uint64_t ops = f->h.last_ops;

	for (i = 0; i < sizeof(h); i++)
		h[i] = (uint8_t)(0xA0 + i);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(sig[0], 0x30);
	assert_int_equal(ec_verify(p256, sig, siglen, h, 32), 1);
	assert_int_equal(ec_verify(p256, sig, siglen, h + 1, 32), 0);
	assert_int_equal(f->h.last_ops, ops + 1);
	/* P-384 over a 48-byte hash */
	assert_int_equal(tt_sign(f->t, 0x14, 0x9D, h, 48, sig, &siglen), 0x9000);
	assert_int_equal(ec_verify(p384, sig, siglen, h, 48), 1);
	/* a 20-byte hash is left-padded */
	memset(padded, 0, sizeof(padded));
	memcpy(padded + 12, h, 20);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 20, sig, &siglen), 0x9000);
	assert_int_equal(ec_verify(p256, sig, siglen, padded, 32), 1);
	/* a 64-byte hash is truncated to the leftmost 32 bytes */
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 64, sig, &siglen), 0x9000);
	assert_int_equal(ec_verify(p256, sig, siglen, h, 32), 1);
	assert_int_equal(f->h.last_ops, ops + 4);
	{
		struct tg_tok_info info;

		tg_tok_info_get(f->t, &info);
		assert_int_equal(info.private_key_operations, ops + 4);
	}
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
}

static void
test_rsa(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *pub = tt_generate(f->t, 0x9A, 0x07, 1, 0);
	uint8_t dgst[32], block[256], sig[300];
	size_t siglen;
	EVP_PKEY_CTX *c;
	/* DigestInfo prefix of SHA-256 (RFC 8017 9.2 note 1) */
	static const uint8_t di[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	                               0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

	memset(dgst, 0x42, sizeof(dgst));
	/* EMSA-PKCS1-v1_5 block built by the host */
	block[0] = 0x00;
	block[1] = 0x01;
	memset(block + 2, 0xFF, 256 - 3 - sizeof(di) - 32);
	block[256 - 1 - sizeof(di) - 32] = 0x00;
	memcpy(block + 256 - sizeof(di) - 32, di, sizeof(di));
	memcpy(block + 256 - 32, dgst, 32);
	assert_int_equal(tt_sign(f->t, 0x07, 0x9A, block, 256, sig, &siglen), 0x9000);
	assert_int_equal(siglen, 256);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_verify(c, sig, siglen, dgst, 32), 1);
	EVP_PKEY_CTX_free(c);
	/* not the modulus length, or not below the modulus */
	assert_int_equal(tt_sign(f->t, 0x07, 0x9A, block, 255, sig, &siglen), 0x6A80);
	memset(block, 0xFF, sizeof(block));
	assert_int_equal(tt_sign(f->t, 0x07, 0x9A, block, 256, sig, &siglen), 0x6A80);
	EVP_PKEY_free(pub);
}

/* RSA-3072 (alg 05): generated, 384-byte raw operation checked by
 * recovering the block with the public key. */
static void
test_rsa3072(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *pub = tt_generate(f->t, 0x9E, 0x05, 1, 0);
	uint8_t block[384], sig[500], back[384];
	size_t siglen, backlen = sizeof(back), i;
	EVP_PKEY_CTX *c;

	assert_int_equal(EVP_PKEY_get_bits(pub), 3072);
	for (i = 0; i < sizeof(block); i++)
		block[i] = (uint8_t)i;
	block[0] = 0x00;
	assert_int_equal(tt_sign(f->t, 0x05, 0x9E, block, sizeof(block), sig, &siglen), 0x9000);
	assert_int_equal(siglen, 384);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	assert_int_equal(EVP_PKEY_verify_recover_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING), 1);
	assert_int_equal(EVP_PKEY_verify_recover(c, back, &backlen, sig, siglen), 1);
	assert_int_equal(backlen, sizeof(block));
	assert_memory_equal(back, block, sizeof(block));
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pub);
}

static void
test_ecdh(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *pub = tt_generate(f->t, 0x9D, 0x11, 1, 0);
	EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t *pt = NULL, data[100], out[100], z[32];
	size_t ptlen, m = 0, n, zlen = sizeof(z);
	EVP_PKEY_CTX *c;

	ptlen = EVP_PKEY_get1_encoded_public_key(peer, &pt);
	assert_int_equal(ptlen, 65);
	data[m++] = 0x7C;
	data[m++] = 2 + 2 + 65;
	data[m++] = 0x82;
	data[m++] = 0x00;
	data[m++] = 0x85;
	data[m++] = 65;
	memcpy(data + m, pt, 65);
	m += 65;
	assert_int_equal(tt_send(f->t, 0x87, 0x11, 0x9D, data, m, out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 4 + 32);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
	assert_int_equal(EVP_PKEY_derive_init(c), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(c, pub), 1);
	assert_int_equal(EVP_PKEY_derive(c, z, &zlen), 1);
	EVP_PKEY_CTX_free(c);
	assert_memory_equal(out + 4, z, 32);
	/* a point off the curve */
	data[m - 1] ^= 1;
	assert_int_equal(tt_send(f->t, 0x87, 0x11, 0x9D, data, m, out, sizeof(out), &n), 0x6A80);
	/* a compressed point */
	data[6] = 0x02;
	data[5] = 33;
	data[1] = 2 + 2 + 33;
	assert_int_equal(tt_send(f->t, 0x87, 0x11, 0x9D, data, 6 + 33, out, sizeof(out), &n),
	                 0x6A80);
	OPENSSL_free(pt);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(pub);
}

static const struct tt_sw_case sign_cases[] = {
    {"empty slot", "00871182 08 7C06 8200 8102AABB", 0x6A88},
    {"alg mismatch", "0087149A 08 7C06 8200 8102AABB", 0x6A80},
    {"RSA alg on EC key", "0087079A 08 7C06 8200 8102AABB", 0x6A80},
    {"slot F9", "008711F9 08 7C06 8200 8102AABB", 0x6A86},
    {"slot 99", "00871199 08 7C06 8200 8102AABB", 0x6A86},
    {"no 7C", "0087119A 06 8200 8102AABB", 0x6A80},
    {"7C truncated", "0087119A 08 7C08 8200 8102AABB", 0x6A80},
    {"no 82", "0087119A 06 7C04 8102AABB", 0x6A80},
    {"82 not empty", "0087119A 09 7C07 820100 8102AABB", 0x6A80},
    {"no input", "0087119A 04 7C02 8200", 0x6A80},
    {"empty input", "0087119A 06 7C04 8200 8100", 0x6A80},
    {"81 and 85", "0087119A 0C 7C0A 8200 8102AABB 8502AABB", 0x6A80},
    {"unknown tag", "0087119A 0B 7C09 8200 8102AABB 830100", 0x6A80},
    {"trailing after 7C", "0087119A 09 7C06 8200 8102AABB 00", 0x6A80},
    {"inner TLV past end", "0087119A 08 7C06 8200 8105AABB", 0x6A80},
    {"ECDH wrong length", "0087119A 08 7C06 8200 8502AABB", 0x6A80},
};

static void
test_bad(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *pub = tt_generate(f->t, 0x9A, 0x11, 1, 0);
	EVP_PKEY *rsa = tt_generate(f->t, 0x83, 0x06, 1, 0);
	uint64_t ops = f->h.last_ops;
	uint8_t h[32], sig[200];
	size_t siglen;

	TT_RUN_SW_CASES(f->t, sign_cases);
	/* ECDH with an RSA key */
	assert_int_equal(tt_hex(f->t, "00870683 08 7C06 8200 8502AABB", NULL, 0, NULL), 0x6A80);
	assert_int_equal(f->h.last_ops, ops);
	/* the count cannot be saved: no signature */
	memset(h, 1, sizeof(h));
	f->h.persist_fail = 1;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x6581);
	f->h.persist_fail = 0;
	EVP_PKEY_free(pub);
	EVP_PKEY_free(rsa);
}

static void
test_pin_policy(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *k9a = tt_generate(f->t, 0x9A, 0x11, 0, 0); /* once */
	EVP_PKEY *k9c = tt_generate(f->t, 0x9C, 0x11, 0, 0); /* always */
	EVP_PKEY *k9e = tt_generate(f->t, 0x9E, 0x11, 0, 0); /* never */
	uint8_t h[32], sig[200];
	size_t siglen;

	memset(h, 7, sizeof(h));
	assert_int_equal(tt_sign(f->t, 0x11, 0x9E, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9C, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	/* 9C: the VERIFY was used up by the 9A signatures */
	assert_int_equal(tt_sign(f->t, 0x11, 0x9C, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9C, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(ec_verify(k9c, sig, siglen, h, 32), 1);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9C, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9C, h, 32, sig, &siglen), 0x9000);
	/* a malformed input does not use up the PIN-always VERIFY */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, "0087119C 08 7C06 8200 8502AABB", NULL, 0, NULL), 0x6A80);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9C, h, 32, sig, &siglen), 0x9000);
	/* reset clears the PIN */
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9E, h, 32, sig, &siglen), 0x9000);
	EVP_PKEY_free(k9a);
	EVP_PKEY_free(k9c);
	EVP_PKEY_free(k9e);
}

static void
test_touch_policy(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *ka = tt_generate(f->t, 0x9A, 0x11, 1, 2); /* touch always */
	EVP_PKEY *kc = tt_generate(f->t, 0x9D, 0x11, 1, 3); /* touch cached */
	uint8_t h[32], sig[200];
	size_t siglen;

	memset(h, 9, sizeof(h));
	f->h.touch_calls = 0;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(f->h.touch_calls, 2);
	f->h.touch_answer = 0;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9A, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(f->h.touch_calls, 3);
	/* cached: a refused touch caches nothing */
	assert_int_equal(tt_sign(f->t, 0x11, 0x9D, h, 32, sig, &siglen), 0x6982);
	f->h.touch_answer = 1;
	f->h.touch_calls = 0;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9D, h, 32, sig, &siglen), 0x9000);
	f->h.now += 14999;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9D, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(f->h.touch_calls, 1);
	/* the cache survives a card reset (a new PC/SC session) */
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_sign(f->t, 0x11, 0x9D, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(f->h.touch_calls, 1);
	f->h.now += 2;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9D, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(f->h.touch_calls, 2);
	/* the window is 15000 ms from the touch, its end excluded */
	f->h.now += 15000;
	assert_int_equal(tt_sign(f->t, 0x11, 0x9D, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(f->h.touch_calls, 3);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kc);
}

static void
test_challenge(void **state)
{
	struct tt_fx *f = *state;
	uint8_t a[16], b[16];
	size_t n, m;

	assert_int_equal(tt_hex(f->t, "00840000 08", a, sizeof(a), &n), 0x9000);
	assert_int_equal(n, 8);
	assert_int_equal(tt_hex(f->t, "00840000 08", b, sizeof(b), &m), 0x9000);
	assert_memory_not_equal(a, b, 8);
	assert_int_equal(tt_hex(f->t, "00840100 08", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00840000 01 00", NULL, 0, NULL), 0x6700);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ecdsa, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rsa, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rsa3072, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ecdh, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_bad, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_pin_policy, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_touch_policy, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_challenge, tt_fx_setup_admin, tt_fx_teardown),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
