/* test_tok_keys.c — GENERATE, IMPORT and GET METADATA (token/keys.c). */
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
#include <openssl/rsa.h>

#include "test_tok_util.h"
#include "tg_buf.h"
#include "tg_piv.h"

static const struct tt_sw_case gen_cases[] = {
    {"P1 01", "0047019A 05 AC03800111", 0x6A86},
    {"slot F9", "004700F9 05 AC03800111", 0x6A86},
    {"slot 9B", "0047009B 05 AC03800111", 0x6A86},
    {"slot 80", "00470080 05 AC03800111", 0x6A86},
    {"slot 96", "00470096 05 AC03800111", 0x6A86},
    {"no data", "0047009A", 0x6A80},
    {"no AC", "0047009A 03 800111", 0x6A80},
    {"AC without alg", "0047009A 05 AC03AA0101", 0x6A80},
    {"AC truncated", "0047009A 05 AC05800111", 0x6A80},
    {"alg 2 bytes", "0047009A 06 AC0480021100", 0x6A80},
    {"alg empty", "0047009A 04 AC028000", 0x6A80},
    {"alg 99", "0047009A 05 AC03800199", 0x6A80},
    {"alg 3DES", "0047009A 05 AC03800103", 0x6A80},
    {"pin policy 04", "0047009A 08 AC06800111AA0104", 0x6A80},
    {"touch policy 04", "0047009A 08 AC06800111AB0104", 0x6A80},
    {"duplicate alg", "0047009A 08 AC06800111800114", 0x6A80},
    {"unknown tag", "0047009A 08 AC06800111810100", 0x6A80},
    {"trailing", "0047009A 06 AC03800111 00", 0x6A80},
};

static const struct tt_sw_case meta_cases[] = {
    {"P1 01", "00F7019A", 0x6A86},
    {"with data", "00F7009A 01 00", 0x6700},
    {"empty slot", "00F7009A", 0x6A88},
    {"unknown slot", "00F70099", 0x6A88},
    {"retired 20 empty", "00F70095", 0x6A88},
};

static void
test_generate_bad(void **state)
{
	struct tt_fx *f = *state;

	assert_int_equal(tt_hex(f->t, "0047009A 05 AC03800111", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	TT_RUN_SW_CASES(f->t, gen_cases);
	TT_RUN_SW_CASES(f->t, meta_cases);
}

static void
check_meta(struct tt_fx *f, uint8_t slot, uint8_t alg, uint8_t pin, uint8_t touch, uint8_t origin,
           const uint8_t *pub, size_t publen)
{
	uint8_t cmd[4] = {0x00, 0xF7, 0x00, 0x00}, out[600], head[16];
	size_t n, hn;

	cmd[3] = slot;
	assert_int_equal(tt_apdu(f->t, cmd, 4, out, sizeof(out), &n), 0x9000);
	hn = tt_unhex("0101 00 0202 0000 0301 00", head, sizeof(head));
	head[2] = alg;
	head[5] = pin;
	head[6] = touch;
	head[9] = origin;
	assert_memory_equal(out, head, hn);
	assert_int_equal(out[hn], 0x04);
	/* 04 holds the same public key TLVs as GENERATE's 7F49 */
	assert_true(n > hn + publen);
	assert_memory_equal(out + n - publen, pub, publen);
}

static void
test_generate(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[600];
	size_t n;
	struct tg_tok_info info;
	int found = 0;
	size_t i;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	/* P-256 at the offsets yubico-piv-tool reads */
	assert_int_equal(tt_hex(f->t, "0047009A 05 AC03800111", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5 + 65);
	assert_memory_equal(out, "\x7F\x49\x43\x86\x41\x04", 6);
	check_meta(f, 0x9A, 0x11, 2, 1, 1, out + 3, n - 3);
	/* P-384 with policies */
	assert_int_equal(tt_hex(f->t, "0047009C 0B AC09800114 AA0102 AB0103", out, sizeof(out), &n),
	                 0x9000);
	assert_int_equal(n, 5 + 97);
	assert_memory_equal(out, "\x7F\x49\x63\x86\x61\x04", 6);
	check_meta(f, 0x9C, 0x14, 2, 3, 1, out + 3, n - 3);
	/* default policies of 9C (always) and 9E (never) */
	assert_int_equal(tt_hex(f->t, "0047009C 05 AC03800111", out, sizeof(out), &n), 0x9000);
	check_meta(f, 0x9C, 0x11, 3, 1, 1, out + 3, n - 3);
	assert_int_equal(tt_hex(f->t, "0047009E 05 AC03800111", out, sizeof(out), &n), 0x9000);
	check_meta(f, 0x9E, 0x11, 1, 1, 1, out + 3, n - 3);
	/* RSA-2048: 7F49 82 0109 { 81 82 0100 n, 82 03 010001 } */
	assert_int_equal(tt_hex(f->t, "0047009D 05 AC03800107", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5 + 265);
	assert_memory_equal(out, "\x7F\x49\x82\x01\x09\x81\x82\x01\x00", 9);
	assert_true(out[9] & 0x80);
	assert_memory_equal(out + n - 5, "\x82\x03\x01\x00\x01", 5);
	check_meta(f, 0x9D, 0x07, 2, 1, 1, out + 5, n - 5);
	/* RSA-1024 in a retired slot */
	assert_int_equal(tt_hex(f->t, "00470082 05 AC03800106", out, sizeof(out), &n), 0x9000);
	assert_memory_equal(out, "\x7F\x49\x81\x88\x81\x81\x80", 7);
	tg_tok_info_get(f->t, &info);
	for (i = 0; i < info.nslots; i++)
		if (info.slots[i].slot == 0x9C) {
			found = 1;
			assert_int_equal(info.slots[i].algorithm, 0x11);
			assert_int_equal(info.slots[i].pin_policy, 3);
			assert_int_equal(info.slots[i].origin, TG_PIV_ORIGIN_GENERATED);
		}
	assert_true(found);
	/* F9 is listed too (key and certificate) */
	assert_int_equal(info.slots[info.nslots - 1].slot, 0xF9);
	assert_non_null(info.slots[info.nslots - 1].cert_der);
}

/* The public key in a GET METADATA answer (tag 04). */
static EVP_PKEY *
meta_pub(const uint8_t *p, size_t n, uint8_t alg)
{
	struct tg_buf b, v;

	tg_buf_reader(&b, p, n);
	assert_int_equal(tg_buf_find_tlv(&b, 0x04, &v), 0);
	return tt_pubkey_parse(tg_buf_cur(&v), tg_buf_remaining(&v), alg);
}

static size_t
bn_put(uint8_t *p, uint8_t tag, const BIGNUM *bn, size_t width)
{
	size_t k = 0;

	p[k++] = tag;
	if (width > 127) {
		p[k++] = 0x81;
	}
	p[k++] = (uint8_t)width;
	assert_true(BN_bn2binpad(bn, p + k, (int)width) == (int)width);
	return k + width;
}

static void
test_import_ec(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *pub;
	BIGNUM *d = NULL;
	uint8_t data[128], out[200], sig[200], dgst[32];
	size_t n, m = 0, siglen;
	EVP_PKEY_CTX *c;

	assert_int_equal(
	    tt_hex(
	        f->t,
	        "00FE1185 22 0620 0101010101010101010101010101010101010101010101010101010101010101",
	        NULL, 0, NULL),
	    0x6982);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	m = bn_put(data, 0x06, d, 32);
	data[m++] = 0xAA;
	data[m++] = 1;
	data[m++] = 1; /* PIN never */
	assert_int_equal(tt_send(f->t, 0xFE, 0x11, 0x85, data, m, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00F70085", out, sizeof(out), &n), 0x9000);
	assert_int_equal(out[9], 2); /* imported */
	assert_int_equal(out[5], 1);
	pub = meta_pub(out, n, 0x11);
	assert_int_equal(EVP_PKEY_eq(pub, k), 1);
	memset(dgst, 0x33, sizeof(dgst));
	assert_int_equal(tt_sign(f->t, 0x11, 0x85, dgst, 32, sig, &siglen), 0x9000);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_int_equal(EVP_PKEY_verify(c, sig, siglen, dgst, 32), 1);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	BN_clear_free(d);
}

static void
test_import_rsa(void **state)
{
	struct tt_fx *f = *state;
	static const char *const names[5] = {
	    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), *pub;
	BIGNUM *bn[5];
	uint8_t data[800], out[400];
	size_t n, m = 0, i;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	for (i = 0; i < 5; i++) {
		bn[i] = NULL;
		assert_int_equal(EVP_PKEY_get_bn_param(k, names[i], &bn[i]), 1);
		m += bn_put(data + m, (uint8_t)(i + 1), bn[i], 64);
	}
	/* a wrong dP is caught */
	data[2 * 66 + 2 + 10] ^= 1;
	assert_int_equal(tt_send(f->t, 0xFE, 0x06, 0x9A, data, m, NULL, 0, NULL), 0x6A80);
	data[2 * 66 + 2 + 10] ^= 1;
	/* RSA-2048 alg id for a 1024-bit key */
	assert_int_equal(tt_send(f->t, 0xFE, 0x07, 0x9A, data, m, NULL, 0, NULL), 0x6A80);
	/* a part missing */
	assert_int_equal(tt_send(f->t, 0xFE, 0x06, 0x9A, data, m - 66, NULL, 0, NULL), 0x6A80);
	assert_int_equal(tt_send(f->t, 0xFE, 0x06, 0x9A, data, m, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00F7009A", out, sizeof(out), &n), 0x9000);
	assert_int_equal(out[9], 2);
	pub = meta_pub(out, n, 0x06);
	assert_int_equal(EVP_PKEY_eq(pub, k), 1);
	/* imported keys cannot be attested */
	assert_int_equal(tt_hex(f->t, "00F99A00", NULL, 0, NULL), 0x6A80);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	for (i = 0; i < 5; i++)
		BN_clear_free(bn[i]);
}

static const struct tt_sw_case import_cases[] = {
    {"alg 99", "00FE999A 03 060100", 0x6A86},
    {"alg 3DES", "00FE039A 03 060100", 0x6A86},
    {"slot F9", "00FE11F9 22 0620 0101010101010101010101010101010101010101010101010101010101010101",
     0x6A86},
    {"slot 9B", "00FE119B 03 060100", 0x6A86},
    {"EC scalar 31 bytes",
     "00FE119A 21 061F 01010101010101010101010101010101010101010101010101010101010101", 0x6A80},
    {"EC scalar zero",
     "00FE119A 22 0620 0000000000000000000000000000000000000000000000000000000000000000", 0x6A80},
    {"EC scalar = order",
     "00FE119A 22 0620 FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 0x6A80},
    {"EC without scalar", "00FE119A 03 AA0101", 0x6A80},
    {"EC with RSA part",
     "00FE119A 25 0620 0101010101010101010101010101010101010101010101010101010101010101 010101",
     0x6A80},
    {"EC scalar truncated", "00FE119A 03 0605AA", 0x6A80},
    {"duplicate scalar", "00FE119A 06 060101 060101", 0x6A80},
    {"bad pin policy",
     "00FE119A 25 0620 0101010101010101010101010101010101010101010101010101010101010101 AA0107",
     0x6A80},
    {"RSA with EC scalar", "00FE069A 12 010101 020101 030101 040101 050101 060101", 0x6A80},
    {"RSA factors 1", "00FE069A 0F 010101 020101 030101 040101 050101", 0x6A80},
    {"RSA part empty", "00FE069A 0E 0100 020101 030101 040101 050101", 0x6A80},
    {"no data", "00FE119A", 0x6A80},
};

static void
test_import_bad(void **state)
{
	struct tt_fx *f = *state;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	TT_RUN_SW_CASES(f->t, import_cases);
	assert_int_equal(tt_hex(f->t, "00F7009A", NULL, 0, NULL), 0x6A88);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_generate_bad, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_generate, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_import_ec, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_import_rsa, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_import_bad, tt_fx_setup_selected, tt_fx_teardown),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
