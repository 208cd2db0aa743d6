/*
 * test_tok_edges.c — the token core's edges across modules: tg_tok_create's
 * parameter refusals, a host without callbacks (nothing persists, touch is
 * given, the cached touch has no clock), the memory failure (6581) of every
 * command that persists, and the APDU-level refusals the per-module tests
 * leave out (management-key templates, SET MANAGEMENT KEY data, IMPORT
 * parts, GENERATE policies, GENERAL AUTHENTICATE templates, ECDH points,
 * GET RESPONSE, PUT DATA, the management application).
 */
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

#include "test_tok_util.h"
#include "tg_err.h"
#include "tg_piv.h"
#include "tok-int.h"

static struct tg_tok_params
params_of(const struct tt_mfr *m)
{
	struct tg_tok_params p;

	memset(&p, 0, sizeof(p));
	p.serial = 7654321;
	p.mfr_cert_der = m->cert_der;
	p.mfr_cert_len = m->cert_len;
	p.mfr_key_der = m->key_der;
	p.mfr_key_len = m->key_len;
	return p;
}

/* Every refused parameter leaves *out alone; the accepted ones show. */
static void
test_create_params(void **state)
{
	const struct tt_mfr *m = *state;
	struct tg_tok_params p = params_of(m);
	struct tg_tok *t = NULL;
	struct tg_tok_info info;
	uint8_t aes[32];
	size_t len = 0;

	p.puk = "12";
	assert_int_equal(tg_tok_create(&p, NULL, &t), TG_ERR_INVALID_ARG);
	p.puk = NULL;
	p.pin = "123456789";
	assert_int_equal(tg_tok_create(&p, NULL, &t), TG_ERR_INVALID_ARG);
	p.pin = NULL;
	/* an AES algorithm without its key (the default key is 3DES) */
	p.mgm_key_alg = TG_PIV_ALG_AES128;
	assert_int_equal(tg_tok_create(&p, NULL, &t), TG_ERR_INVALID_ARG);
	/* a key of the wrong length for the algorithm, an unknown algorithm */
	memset(aes, 0x5A, sizeof(aes));
	p.mgm_key = aes;
	p.mgm_key_len = 24;
	assert_int_equal(tg_tok_create(&p, NULL, &t), TG_ERR_INVALID_ARG);
	p.mgm_key_alg = 0x99;
	assert_int_equal(tg_tok_create(&p, NULL, &t), TG_ERR_INVALID_ARG);
	assert_null(t);
	assert_int_equal(tg_tok_create(&p, NULL, NULL), TG_ERR_INVALID_ARG);

	/* AES-256 key, firmware version, form factor, random serial */
	p.mgm_key_alg = TG_PIV_ALG_AES256;
	p.mgm_key_len = 32;
	p.version[0] = 5;
	p.version[1] = 7;
	p.version[2] = 1;
	p.form_factor = 0x82;
	p.serial = 0;
	p.pin = "87654321";
	p.puk = "11223344";
	assert_int_equal(tg_tok_create(&p, NULL, &t), 0);
	tg_tok_info_get(t, &info);
	assert_int_not_equal(info.serial, 0);
	assert_memory_equal(info.version, "\x05\x07\x01", 3);
	assert_int_equal(info.form_factor, 0x82);
	assert_int_equal(info.mgm_key_alg, TG_PIV_ALG_AES256);
	assert_int_equal(info.default_pin, 0);
	assert_int_equal(info.default_puk, 0);
	assert_int_equal(info.default_mgm_key, 0);
	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, TG_PIV_ALG_AES256, aes, 32), 0x9000);
	assert_int_equal(tt_verify(t, "87654321"), 0x9000);
	tg_tok_free(t);

	/* a version with only its last part set is used as given */
	p = params_of(m);
	p.version[2] = 9;
	assert_int_equal(tg_tok_create(&p, NULL, &t), 0);
	tg_tok_info_get(t, &info);
	assert_memory_equal(info.version, "\x00\x00\x09", 3);
	tg_tok_free(t);
	/* NULL is accepted by the lifecycle calls */
	tg_tok_reset(NULL);
	tg_tok_power_off(NULL);
	tg_tok_faults_set(NULL, TG_TOK_FAULT_ATTEST_OTHER_KEY);
	tg_tok_info_get(NULL, &info);
	assert_int_equal(info.nslots, 0);
	assert_int_equal(info.serial, 0);
	assert_non_null(tg_tok_atr(NULL));
	assert_non_null(tg_tok_atr(&len));
	assert_true(len > 0);
}

/* tg_tok_apdu's own refusals: no token, no room for a short response,
 * a NULL command with a length. */
static void
test_apdu_args(void **state)
{
	const struct tt_mfr *m = *state;
	struct tg_tok_params p = params_of(m);
	struct tg_tok *t = NULL;
	uint8_t cmd[4] = {0x00, 0xFD, 0x00, 0x00}, rsp[258];
	size_t n = 99;

	assert_int_equal(tg_tok_create(&p, NULL, &t), 0);
	assert_int_equal(tg_tok_apdu(NULL, cmd, 4, rsp, sizeof(rsp), &n), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(t, cmd, 4, rsp, 257, &n), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(t, NULL, 4, rsp, sizeof(rsp), &n), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(t, cmd, 4, NULL, sizeof(rsp), &n), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(t, cmd, 4, rsp, sizeof(rsp), NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(n, 99);
	/* an empty command is answered, not refused */
	assert_int_equal(tg_tok_apdu(t, NULL, 0, rsp, sizeof(rsp), &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rsp[0], 0x67);
	assert_int_equal(rsp[1], 0x00);
	tg_tok_free(t);
}

/* A host without callbacks: every change stays in memory (no failure),
 * touch-always and touch-cached keys sign without a touch, a management
 * key needing touch authenticates. */
static void
test_no_host_callbacks(void **state)
{
	const struct tt_mfr *m = *state;
	struct tg_tok_params p = params_of(m);
	struct tg_tok *t = NULL;
	struct tg_tok_info info;
	uint8_t h[32], sig[128], cmd[40];
	size_t siglen, n;

	assert_int_equal(tg_tok_create(&p, NULL, &t), 0);
	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(
	    tt_generate(t, 0x9A, 0x11, TG_PIV_PIN_POLICY_NEVER, TG_PIV_TOUCH_POLICY_ALWAYS));
	EVP_PKEY_free(
	    tt_generate(t, 0x9E, 0x11, TG_PIV_PIN_POLICY_NEVER, TG_PIV_TOUCH_POLICY_CACHED));
	memset(h, 0x42, sizeof(h));
	assert_int_equal(tt_sign(t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_sign(t, 0x11, 0x9E, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_sign(t, 0x11, 0x9E, h, 32, sig, &siglen), 0x9000);
	tg_tok_info_get(t, &info);
	assert_int_equal(info.private_key_operations, 3);
	/* management key with touch required: no touch callback, given */
	n = tt_unhex("00FFFFFE 1B 039B18", cmd, sizeof(cmd));
	memcpy(cmd + n, tt_mgm_default, 24);
	assert_int_equal(tt_apdu(t, cmd, n + 24, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	tg_tok_free(t);
}

/* With a clock missing, the cached touch policy asks every time. */
static void
test_cached_touch_without_clock(void **state)
{
	const struct tt_mfr *m = *state;
	struct tg_tok_params p = params_of(m);
	struct tt_host hr;
	struct tg_tok_host host = tt_host_make(&hr);
	struct tg_tok *t = NULL;
	uint8_t h[32], sig[128];
	size_t siglen;

	host.now_ms = NULL;
	assert_int_equal(tg_tok_create(&p, &host, &t), 0);
	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(
	    tt_generate(t, 0x9A, 0x11, TG_PIV_PIN_POLICY_NEVER, TG_PIV_TOUCH_POLICY_CACHED));
	memset(h, 0x24, sizeof(h));
	hr.touch_calls = 0;
	assert_int_equal(tt_sign(t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_sign(t, 0x11, 0x9A, h, 32, sig, &siglen), 0x9000);
	assert_int_equal(hr.touch_calls, 2);
	/* a refused touch: 6982, no signature counted */
	hr.touch_answer = 0;
	assert_int_equal(tt_sign(t, 0x11, 0x9A, h, 32, sig, &siglen), 0x6982);
	assert_int_equal(hr.touch_calls, 3);
	assert_int_equal(hr.last_ops, 2);
	tg_tok_free(t);
	tt_host_free(&hr);
}

/* Expects 6581 from a command whose change cannot be persisted, and a
 * persist call made for it. */
static void
expect_6581(struct tt_fx *f, const uint8_t *cmd, size_t n, const char *what)
{
	int calls = f->h.persist_calls;
	uint16_t sw = tt_apdu(f->t, cmd, n, NULL, 0, NULL);

	if (sw != 0x6581)
		fail_msg("%s: SW %04X, not 6581", what, sw);
	if (f->h.persist_calls <= calls)
		fail_msg("%s: nothing persisted", what);
}

static void
expect_hex_6581(struct tt_fx *f, const char *hex, const char *what)
{
	uint8_t cmd[300];
	size_t n = tt_unhex(hex, cmd, sizeof(cmd));

	expect_6581(f, cmd, n, what);
}

static void
test_persist_failures(void **state)
{
	struct tt_fx *f = *state;
	uint8_t cmd[64], out[300];
	size_t n;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIGNUM *d = NULL;

	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	f->h.persist_fail = 1;
	/* SET PIN RETRIES (needs the PIN verified: before VERIFY fails) */
	expect_hex_6581(f, "00FA0505", "SET PIN RETRIES");
	assert_int_equal(tt_verify(f->t, "123456"), 0x6581);
	f->h.persist_fail = 0;
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	f->h.persist_fail = 1;
	/* GENERATE: the key is kept in memory only */
	expect_hex_6581(f, "0047009A 05 AC03800111", "GENERATE");
	assert_int_equal(tt_hex(f->t, "00F7009A", out, sizeof(out), &n), 0x9000);
	assert_int_equal(out[2], 0x11);
	/* IMPORT */
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	n = tt_unhex("00FE119C 22 0620", cmd, sizeof(cmd));
	assert_int_equal(BN_bn2binpad(d, cmd + n, 32), 32);
	expect_6581(f, cmd, n + 32, "IMPORT");
	assert_int_equal(tt_hex(f->t, "00F7009C", out, sizeof(out), &n), 0x9000);
	assert_int_equal(out[9], TG_PIV_ORIGIN_IMPORTED);
	/* SET MANAGEMENT KEY (to the same key) */
	n = tt_unhex("00FFFFFF 1B 039B18", cmd, sizeof(cmd));
	memcpy(cmd + n, tt_mgm_default, 24);
	expect_6581(f, cmd, n + 24, "SET MANAGEMENT KEY");
	/* VERIFY: the decrement cannot be saved, so no compare */
	expect_hex_6581(f, "00200080 08 313233343536FFFF", "VERIFY");
	/* CHANGE REFERENCE, RESET RETRY */
	expect_hex_6581(f, "00240080 10 313233343536FFFF 313233343536FFFF", "CHANGE REFERENCE");
	expect_hex_6581(f, "002C0080 10 3132333435363738 313233343536FFFF", "RESET RETRY");
	f->h.persist_fail = 0;
	/* nothing lost: the PIN and PUK still work */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 3132333435363738 313233343536FFFF", NULL, 0, NULL), 0x9000);
	EVP_PKEY_free(k);
	BN_clear_free(d);
}

/* FACTORY RESET (PIN and PUK blocked) whose result cannot be saved. */
static void
test_factory_reset_persist_failure(void **state)
{
	struct tt_fx *f = *state;
	int i;

	for (i = 0; i < 3; i++)
		(void)tt_verify(f->t, "000000");
	for (i = 0; i < 3; i++)
		(void)tt_hex(f->t, "002C0080 10 3030303030303030 313233343536FFFF", NULL, 0, NULL);
	assert_int_equal(tt_verify(f->t, "123456"), 0x6983);
	f->h.persist_fail = 1;
	expect_hex_6581(f, "00FB0000", "FACTORY RESET");
	f->h.persist_fail = 0;
	/* the reset happened in memory: the default PIN works again */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
}

/* More than 15 tries left: the 63Cx counter shows 15 (its largest). */
static void
test_many_tries_capped(void **state)
{
	struct tt_fx *f = *state;
	struct tg_tok_info info;

	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, "00FA1414", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(f->t, "000000"), 0x63CF);
	tg_tok_info_get(f->t, &info);
	assert_int_equal(info.pin_tries_left, 19);
	assert_int_equal(info.pin_tries_max, 20);
	/* the status query (no data) shows the same cap */
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63CF);
}

static const struct tt_sw_case mgm_cases[] = {
    {"duplicate challenge", "0087039B 06 7C04 8100 8100", 0x6A80},
    {"duplicate response", "0087039B 06 7C04 8200 8200", 0x6A80},
    {"challenge with data, alone", "0087039B 0C 7C0A 81080102030405060708", 0x6A80},
    {"witness with data, alone", "0087039B 0C 7C0A 80080102030405060708", 0x6A80},
    {"all three", "0087039B 08 7C06 8000 8100 8200", 0x6A80},
    {"random with a response", "0087009B 06 7C04 8100 8200", 0x6A86},
    {"random with a witness", "0087009B 06 7C04 8100 8000", 0x6A86},
    {"random without challenge", "0087009B 04 7C02 8000", 0x6A86},
};

static void
test_mgm_templates(void **state)
{
	struct tt_fx *f = *state;

	TT_RUN_SW_CASES(f->t, mgm_cases);
	/* a response of the wrong length after a challenge */
	assert_int_equal(tt_hex(f->t, "0087039B 04 7C028100", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "0087039B 06 7C04 82020102", NULL, 0, NULL), 0x6A80);
	/* a response while a witness (not a challenge) is in flight */
	assert_int_equal(tt_hex(f->t, "0087039B 04 7C028000", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "0087039B 0C 7C0A 82080102030405060708", NULL, 0, NULL),
	                 0x6982);
	/* none of that authenticated */
	assert_int_equal(tt_hex(f->t, "0047009A 05 AC03800111", NULL, 0, NULL), 0x6982);
}

static const struct tt_sw_case setmgm_cases[] = {
    {"algorithm only", "00FFFFFF 01 03", 0x6A80},
    {"algorithm and reference only", "00FFFFFF 02 039B", 0x6A80},
    {"wrong reference", "00FFFFFF 04 039A0100", 0x6A80},
    {"length byte off", "00FFFFFF 05 039B1700AA", 0x6A80},
    {"P1 not FF", "00FFFEFF 03 039B00", 0x6A86},
    {"P2 not FF/FE", "00FFFFFD 03 039B00", 0x6A86},
};

static void
test_set_mgm_key_data(void **state)
{
	struct tt_fx *f = *state;
	uint8_t cmd[64];
	size_t n;

	TT_RUN_SW_CASES(f->t, setmgm_cases);
	/* key shorter than its length byte says */
	n = tt_unhex("00FFFFFF 1A 039B18", cmd, sizeof(cmd));
	memcpy(cmd + n, tt_mgm_default, 23);
	assert_int_equal(tt_apdu(f->t, cmd, n + 23, NULL, 0, NULL), 0x6A80);
	/* still the default key */
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
}

static const struct tt_sw_case gen_policy_cases[] = {
    {"PIN policy twice", "0047009A 0B AC09800111 AA0101 AA0102", 0x6A80},
    {"touch policy twice", "0047009A 0B AC09800111 AB0101 AB0102", 0x6A80},
    {"PIN policy 2 bytes", "0047009A 09 AC07800111 AA020101", 0x6A80},
    {"PIN policy 0 is default", "0047009A 08 AC06800111 AA0100", 0x9000},
    {"touch policy 0 is default", "0047009A 08 AC06800111 AB0100", 0x9000},
    {"inner TLV past the template", "0047009A 07 AC05800111 AA05", 0x6A80},
};

/* An RSA-1024 IMPORT with the five CRT parts of k, with one part
 * replaced by repl (NULL: as is). */
static uint16_t
import_rsa(struct tt_fx *f, EVP_PKEY *k, int which, const uint8_t *repl, size_t repl_len)
{
	static const char *const names[5] = {
	    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	uint8_t data[1200];
	size_t m = 0, i, len;
	BIGNUM *bn;
	uint16_t sw;

	for (i = 0; i < 5; i++) {
		data[m++] = (uint8_t)(i + 1);
		if ((int)i == which) {
			len = repl_len;
			if (len > 127) {
				data[m++] = 0x82;
				data[m++] = (uint8_t)(len >> 8);
			}
			data[m++] = (uint8_t)len;
			memcpy(data + m, repl, len);
			m += len;
			continue;
		}
		bn = NULL;
		assert_int_equal(EVP_PKEY_get_bn_param(k, names[i], &bn), 1);
		data[m++] = 64;
		assert_int_equal(BN_bn2binpad(bn, data + m, 64), 64);
		m += 64;
		BN_clear_free(bn);
	}
	sw = tt_send(f->t, 0xFE, 0x06, 0x9A, data, m, NULL, 0, NULL);
	OPENSSL_cleanse(data, sizeof(data));
	return sw;
}

static void
test_keys_refusals(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	uint8_t big[300], one = 1, zero = 0, flip[64];
	BIGNUM *bn = NULL;

	TT_RUN_SW_CASES(f->t, gen_policy_cases);
	assert_non_null(k);
	memset(big, 0x11, sizeof(big));
	/* a part longer than any RSA-3072 part */
	assert_int_equal(import_rsa(f, k, 0, big, sizeof(big)), 0x6A80);
	/* p = 0, q = 1 */
	assert_int_equal(import_rsa(f, k, 0, &zero, 1), 0x6A80);
	assert_int_equal(import_rsa(f, k, 1, &one, 1), 0x6A80);
	assert_int_equal(import_rsa(f, k, 0, &one, 1), 0x6A80);
	/* a wrong dQ, a wrong qInv */
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_EXPONENT2, &bn), 1);
	assert_int_equal(BN_bn2binpad(bn, flip, 64), 64);
	flip[20] ^= 0x01;
	assert_int_equal(import_rsa(f, k, 3, flip, 64), 0x6A80);
	BN_clear_free(bn);
	bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, &bn), 1);
	assert_int_equal(BN_bn2binpad(bn, flip, 64), 64);
	flip[20] ^= 0x01;
	assert_int_equal(import_rsa(f, k, 4, flip, 64), 0x6A80);
	BN_clear_free(bn);
	/* nothing was imported; the genuine parts are */
	assert_int_equal(tt_hex(f->t, "00F7009A", NULL, 0, NULL), 0x9000); /* generated above */
	assert_int_equal(import_rsa(f, k, -1, NULL, 0), 0x9000);
	EVP_PKEY_free(k);
}

/* ECDH: a compressed-point prefix and a point off the curve are wrong
 * data, and cost no operation. */
static void
test_ecdh_points(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *pub = tt_generate(f->t, 0x9D, 0x11, TG_PIV_PIN_POLICY_NEVER, 0);
	uint8_t cmd[100], pt[65];
	size_t n, ptlen = 0;
	uint64_t ops;

	assert_non_null(pub);
	assert_int_equal(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                                 pt, sizeof(pt), &ptlen),
	                 1);
	assert_int_equal(ptlen, 65);
	ops = f->h.last_ops;
	n = tt_unhex("0087119D 47 7C45 8200 8541", cmd, sizeof(cmd));
	memcpy(cmd + n, pt, 65);
	/* the genuine point works */
	assert_int_equal(tt_apdu(f->t, cmd, n + 65, NULL, 0, NULL), 0x9000);
	assert_int_equal(f->h.last_ops, ops + 1);
	/* prefix 02 instead of 04 */
	cmd[n] = 0x02;
	assert_int_equal(tt_apdu(f->t, cmd, n + 65, NULL, 0, NULL), 0x6A80);
	/* Y changed: not on the curve */
	cmd[n] = 0x04;
	cmd[n + 64] ^= 0x01;
	assert_int_equal(tt_apdu(f->t, cmd, n + 65, NULL, 0, NULL), 0x6A80);
	assert_int_equal(f->h.last_ops, ops + 1);
	EVP_PKEY_free(pub);
}

/* GET RESPONSE while data is pending: another CLA or P1/P2 is 6A86 and
 * keeps the data; the right one gets it. */
static void
test_get_response_params(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[300], rest[2000];
	size_t n, m;
	uint16_t sw;
	uint8_t cmd[16];

	n = tt_unhex("00CB3FFF 05 5C035FFF01 00", cmd, sizeof(cmd));
	sw = tt_apdu1(f->t, cmd, n, out, sizeof(out), &m);
	assert_int_equal(sw & 0xFF00, 0x6100);
	assert_int_equal(m, 256);
	assert_int_equal(tt_hex(f->t, "10C00000 00", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00C00100 00", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00C00001 00", NULL, 0, NULL), 0x6A86);
	/* the pending data is still there */
	assert_int_equal(tt_hex(f->t, "00C00000 00", rest, sizeof(rest), &n), 0x9000);
	assert_true(n > 0);
	/* and gone after it was fetched */
	assert_int_equal(tt_hex(f->t, "00C00000 00", NULL, 0, NULL), 0x6985);
}

static const struct tt_sw_case data_cases[] = {
    {"PUT DATA P2 not FF", "00DB3F00 07 5C035FC105 5300", 0x6A86},
    {"PUT DATA P1 not 3F", "00DB3EFF 07 5C035FC105 5300", 0x6A86},
    {"GET DATA P2 not FF", "00CB3F00 05 5C035FC102", 0x6A86},
};

static const struct tt_sw_case mgmt_app_cases[] = {
    {"select management", "00A40400 08 A000000527471117", 0x9000},
    {"WRITE CONFIG P2 01", "001C0001 01 00", 0x6A86},
    {"WRITE CONFIG P1 01", "001C0100 01 00", 0x6A86},
    {"WRITE CONFIG length byte off", "001C0000 02 0300", 0x6700},
    {"WRITE CONFIG no data", "001C0000", 0x6700},
};

static void
test_data_and_mgmt_app(void **state)
{
	struct tt_fx *f = *state;

	TT_RUN_SW_CASES(f->t, data_cases);
	TT_RUN_SW_CASES(f->t, mgmt_app_cases);
	/* the management application selected without FCI (P2 0C): no answer */
	{
		uint8_t out[64];
		size_t n = 99;

		assert_int_equal(tt_hex(f->t, "00A4040C 08 A000000527471117", out, sizeof(out), &n),
		                 0x9000);
		assert_int_equal(n, 0);
	}
}

static const struct tt_sw_case auth_template_cases[] = {
    {"82 twice", "0087119A 0A 7C08 8200 8200 8102AABB", 0x6A80},
    {"81 twice", "0087119A 0C 7C0A 8200 8102AABB 8102AABB", 0x6A80},
    {"85 then 81", "0087119A 0C 7C0A 8200 8502AABB 8102AABB", 0x6A80},
    {"85 twice", "0087119A 0C 7C0A 8200 8502AABB 8502AABB", 0x6A80},
    {"82 after the input", "0087119A 08 7C06 8102AABB 8200", 0x9000},
};

/* GENERAL AUTHENTICATE templates: each tag once, and 81 or 85, not both;
 * the order of 81 and 82 does not matter. */
static void
test_auth_templates(void **state)
{
	struct tt_fx *f = *state;

	EVP_PKEY_free(tt_generate(f->t, 0x9A, 0x11, TG_PIV_PIN_POLICY_NEVER, 0));
	TT_RUN_SW_CASES(f->t, auth_template_cases);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_params),
	    cmocka_unit_test(test_apdu_args),
	    cmocka_unit_test(test_no_host_callbacks),
	    cmocka_unit_test(test_cached_touch_without_clock),
	    cmocka_unit_test_setup_teardown(test_persist_failures, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_many_tries_capped, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_factory_reset_persist_failure,
	                                    tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mgm_templates, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_set_mgm_key_data, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_keys_refusals, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ecdh_points, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_auth_templates, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_get_response_params, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_data_and_mgmt_app, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
