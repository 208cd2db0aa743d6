/*
 * test_tok_failalloc.c — the token core under allocation failure
 * (tg_test_failalloc.h): every allocation of creating a token, saving and
 * loading its state, and the commands that build keys, certificates and
 * signatures (GENERATE, IMPORT, ATTEST, GENERAL AUTHENTICATE, PUT DATA) is
 * made to fail in turn, OpenSSL's
 * included. The core reports codes and status words only (tg_tok.h), so
 * each operation names what it got: a failure must be an error code or an
 * error status word, or be absorbed with the same answer; nothing crashes,
 * and under the ASan suite nothing leaks.
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
#include "tg_piv.h"
#include "tg_err.h"
#include "tg_secret.h"
#include "tg_test_failalloc.h"

/* Made once, before the sweeps. */
struct fx {
	struct tt_mfr mfr;
	EVP_PKEY *rsa;    /* an RSA-1024 key to import */
	EVP_PKEY *ec;     /* a P-256 key to import */
	uint8_t peer[65]; /* an uncompressed P-256 point for ECDH */
};

static struct fx fx;

/* The host's persist: counts, allocates nothing (so only the core's
 * allocations are failed). */
static int
persist_count(void *ctx, const uint8_t *blob, size_t len)
{
	(void)blob;
	(void)len;
	(*(int *)ctx)++;
	return 0;
}

static int persists;

static struct tg_tok_params
params(void)
{
	struct tg_tok_params p;

	memset(&p, 0, sizeof(p));
	p.mfr_cert_der = fx.mfr.cert_der;
	p.mfr_cert_len = fx.mfr.cert_len;
	p.mfr_key_der = fx.mfr.key_der;
	p.mfr_key_len = fx.mfr.key_len;
	return p;
}

/* A token with default credentials, PIV selected, management key
 * authenticated (made while allocations are held). */
static struct tg_tok *
admin_token(void)
{
	struct tg_tok_host host = {persist_count, NULL, NULL, &persists};
	struct tg_tok_params p = params();
	struct tg_tok *t = NULL;

	assert_int_equal(tg_tok_create(&p, &host, &t), 0);
	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	return t;
}

/*
 * Sends cmd (no test allocation: stack buffers) and checks the SW against
 * want (0x6100: any 61xx). 0, or an error naming the SW.
 */
static int
send_apdu(struct tg_tok *t, const uint8_t *cmd, size_t n, uint16_t want, struct tg_error *err)
{
	uint8_t rsp[4096];
	size_t rl = 0;
	uint16_t sw;
	int r;

	if ((r = tg_tok_apdu(t, cmd, n, rsp, sizeof(rsp), &rl)) != 0)
		return tg_error_set(err, r, "tg_tok_apdu: %s", tg_strerror(r));
	assert_true(rl >= 2);
	sw = (uint16_t)(rsp[rl - 2] << 8 | rsp[rl - 1]);
	if (sw == want || (want == 0x6100 && (sw & 0xFF00) == 0x6100))
		return 0;
	/* the card may only answer an error (never another success) */
	assert_true(sw != 0x9000 && (sw & 0xFF00) != 0x6100);
	return tg_error_set(err, TG_ERR_CRYPTO, "status word %04X, not %04X", sw, want);
}

/* One command on a fresh admin token (setup under hold). */
struct cmd_op {
	const char *setup[4]; /* commands sent first (hex, each must get 9000) */
	int verify;           /* VERIFY the default PIN first */
	uint8_t cmd[600];
	size_t n;
	uint16_t want;
};

static int
op_cmd(void *ctx, struct tg_error *err)
{
	struct cmd_op *o = ctx;
	struct tg_tok *t;
	size_t i;
	int r;

	tg_failalloc_hold(1);
	t = admin_token();
	for (i = 0; i < 4 && o->setup[i] != NULL; i++)
		assert_int_equal(tt_hex(t, o->setup[i], NULL, 0, NULL), 0x9000);
	if (o->verify)
		assert_int_equal(tt_verify(t, "123456"), 0x9000);
	tg_failalloc_hold(0);
	r = send_apdu(t, o->cmd, o->n, o->want, err);
	tg_failalloc_hold(1);
	tg_tok_free(t);
	tg_failalloc_hold(0);
	return r;
}

static void
cmd_sweep(const char *what, struct cmd_op *o, const char *hex)
{
	o->n = tt_unhex(hex, o->cmd, sizeof(o->cmd));
	assert_true(tg_failalloc_sweep(what, op_cmd, o) > 0);
}

static int
op_create(void *ctx, struct tg_error *err)
{
	struct tg_tok_params p = params();
	struct tg_tok *t = NULL;
	int r;

	(void)ctx;
	if ((r = tg_tok_create(&p, NULL, &t)) != 0) {
		assert_null(t);
		return tg_error_set(err, r, "tg_tok_create: %s", tg_strerror(r));
	}
	assert_non_null(t);
	tg_tok_free(t);
	return 0;
}

static void
test_create(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("token create", op_create, NULL) > 0);
}

/* Save and load of a token with an EC and an RSA key and an object. */
static int
op_save_load(void *ctx, struct tg_error *err)
{
	struct tg_tok *t, *t2 = NULL;
	uint8_t *b = NULL, *b2 = NULL;
	size_t n = 0, n2 = 0;
	int r;

	(void)ctx;
	tg_failalloc_hold(1);
	t = admin_token();
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x11, 0, 0));
	EVP_PKEY_free(tt_generate(t, 0x82, 0x06, 0, 0));
	assert_int_equal(tt_hex(t, "00DB3FFF 0A 5C035FC105 5303 700100", NULL, 0, NULL), 0x9000);
	tg_failalloc_hold(0);
	if ((r = tg_tok_save(t, &b, &n)) != 0) {
		tg_error_set(err, r, "tg_tok_save: %s", tg_strerror(r));
		goto out;
	}
	if ((r = tg_tok_load(b, n, NULL, &t2)) != 0) {
		assert_null(t2);
		tg_error_set(err, r, "tg_tok_load: %s", tg_strerror(r));
		goto out;
	}
	tg_failalloc_hold(1);
	assert_int_equal(tg_tok_save(t2, &b2, &n2), 0);
	assert_int_equal(n2, n);
	assert_memory_equal(b2, b, n);
out:
	tg_failalloc_hold(1);
	tg_freezero(b, n);
	tg_freezero(b2, n2);
	tg_tok_free(t2);
	tg_tok_free(t);
	tg_failalloc_hold(0);
	return r;
}

static void
test_save_load(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("token state save and load", op_save_load, NULL) > 0);
}

static void
test_generate(void **state)
{
	struct cmd_op o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.want = 0x9000;
	cmd_sweep("GENERATE P-256", &o, "0047009A 05 AC03800111");
	cmd_sweep("GENERATE RSA-1024", &o, "0047009D 05 AC03800106");
}

static void
test_attest(void **state)
{
	struct cmd_op o;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.setup[0] = "0047009A 05 AC03800111";
	o.want = 0x6100; /* the certificate comes in parts */
	cmd_sweep("ATTEST", &o, "00F99A00 00");
}

/* Tag, length (1 or 82 2 bytes) and value of one key part. */
static size_t
put_part(uint8_t *p, uint8_t tag, const BIGNUM *bn, size_t width)
{
	size_t k = 0;

	p[k++] = tag;
	p[k++] = (uint8_t)width;
	assert_int_equal(BN_bn2binpad(bn, p + k, (int)width), (int)width);
	return k + width;
}

static void
test_import(void **state)
{
	static const char *const names[5] = {
	    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	struct cmd_op o;
	BIGNUM *bn;
	size_t i, m;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.want = 0x9000;
	/* EC: 00FE 11 9C, 06 20 scalar (a short APDU) */
	bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(fx.ec, OSSL_PKEY_PARAM_PRIV_KEY, &bn), 1);
	m = tt_unhex("00FE119C 22", o.cmd, sizeof(o.cmd));
	m += put_part(o.cmd + m, 0x06, bn, 32);
	BN_clear_free(bn);
	o.n = m;
	assert_true(tg_failalloc_sweep("IMPORT P-256", op_cmd, &o) > 0);
	/* RSA-1024: five 64-byte parts, 330 bytes: an extended APDU */
	m = tt_unhex("00FE069A 00014A", o.cmd, sizeof(o.cmd));
	for (i = 0; i < 5; i++) {
		bn = NULL;
		assert_int_equal(EVP_PKEY_get_bn_param(fx.rsa, names[i], &bn), 1);
		m += put_part(o.cmd + m, (uint8_t)(i + 1), bn, 64);
		BN_clear_free(bn);
	}
	assert_int_equal(m, 7 + 330);
	o.n = m;
	assert_true(tg_failalloc_sweep("IMPORT RSA-1024", op_cmd, &o) > 0);
	OPENSSL_cleanse(o.cmd, sizeof(o.cmd));
}

static void
test_sign(void **state)
{
	struct cmd_op o;
	size_t m;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.setup[0] = "0047009A 05 AC03800111";
	o.verify = 1;
	o.want = 0x9000;
	cmd_sweep("ECDSA P-256", &o,
	          "0087119A 26 7C24 8200 8120 "
	          "1111111111111111111111111111111111111111111111111111111111111111");
	/* ECDH with the fixture's point */
	m = tt_unhex("0087119A 47 7C45 8200 8541", o.cmd, sizeof(o.cmd));
	memcpy(o.cmd + m, fx.peer, sizeof(fx.peer));
	o.n = m + sizeof(fx.peer);
	assert_true(tg_failalloc_sweep("ECDH P-256", op_cmd, &o) > 0);
	/* RSA-1024 raw: 128 bytes below the modulus (leading 00) */
	o.setup[0] = "0047009D 05 AC03800106";
	m = tt_unhex("0087069D 88 7C8185 8200 818180 00", o.cmd, sizeof(o.cmd));
	memset(o.cmd + m, 0x42, 127);
	o.n = m + 127;
	o.want = 0x9000;
	assert_true(tg_failalloc_sweep("RSA-1024 private operation", op_cmd, &o) > 0);
}

/* PUT DATA of a large object (copied, counted against the capacity, then
 * persisted). */
static void
test_put_data(void **state)
{
	struct cmd_op o;
	size_t m;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.want = 0x9000;
	m = tt_unhex("00DB3FFF 00 0201 5C035FC105 5382 01F8 70 8201F4", o.cmd, sizeof(o.cmd));
	memset(o.cmd + m, 0x30, 500);
	o.n = m + 500;
	assert_true(tg_failalloc_sweep("PUT DATA 5FC105", op_cmd, &o) > 0);
}

/* Management key authentication, external (challenge, then its
 * encryption) and mutual (witness decrypted, the card's answer to a
 * challenge): the cipher runs in the core. */
static int
op_mgm(void *ctx, struct tg_error *err)
{
	int mutual = *(int *)ctx;
	struct tg_tok_params p = params();
	struct tg_tok *t = NULL;
	uint8_t rsp[64], blk[8], cmd[32];
	size_t rl = 0, n;
	int r;

	tg_failalloc_hold(1);
	assert_int_equal(tg_tok_create(&p, NULL, &t), 0);
	tt_select(t);
	if (mutual) {
		assert_int_equal(tt_hex(t, "0087039B 04 7C028000", rsp, sizeof(rsp), &rl), 0x9000);
		assert_int_equal(rl, 12);
		tt_mgm_block(0x03, tt_mgm_default, 0, rsp + 4, blk, 8);
		n = tt_unhex("0087039B 16 7C14 8008", cmd, sizeof(cmd));
		memcpy(cmd + n, blk, 8);
		n += 8;
		n += tt_unhex("8108 0102030405060708", cmd + n, sizeof(cmd) - n);
	} else {
		assert_int_equal(tt_hex(t, "0087039B 04 7C028100", rsp, sizeof(rsp), &rl), 0x9000);
		assert_int_equal(rl, 12);
		tt_mgm_block(0x03, tt_mgm_default, 1, rsp + 4, blk, 8);
		n = tt_unhex("0087039B 0C 7C0A 8208", cmd, sizeof(cmd));
		memcpy(cmd + n, blk, 8);
		n += 8;
	}
	tg_failalloc_hold(0);
	r = send_apdu(t, cmd, n, 0x9000, err);
	tg_failalloc_hold(1);
	/* authenticated exactly when the answer was 9000 */
	assert_int_equal(tt_hex(t, "0047009A 05 AC03800111", NULL, 0, NULL),
	                 r == 0 ? 0x9000 : 0x6982);
	tg_tok_free(t);
	tg_failalloc_hold(0);
	return r;
}

static void
test_mgm(void **state)
{
	int mutual = 0;
	struct cmd_op o;

	(void)state;
	assert_true(tg_failalloc_sweep("management key external auth", op_mgm, &mutual) > 0);
	mutual = 1;
	assert_true(tg_failalloc_sweep("management key mutual auth", op_mgm, &mutual) > 0);
	/* SET MANAGEMENT KEY (AES-128), persisted */
	memset(&o, 0, sizeof(o));
	o.want = 0x9000;
	cmd_sweep("SET MANAGEMENT KEY", &o, "00FFFFFF 13 089B10 00112233445566778899AABBCCDDEEFF");
}

static int
setup(void **state)
{
	size_t n = 0;

	(void)state;
	tt_mfr_make(&fx.mfr);
	fx.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	fx.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	{
		EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

		if (p == NULL ||
		    EVP_PKEY_get_octet_string_param(p, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, fx.peer,
		                                    sizeof(fx.peer), &n) != 1)
			return -1;
		EVP_PKEY_free(p);
	}
	return fx.rsa != NULL && fx.ec != NULL && n == sizeof(fx.peer) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(fx.rsa);
	EVP_PKEY_free(fx.ec);
	tt_mfr_free(&fx.mfr);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create),   cmocka_unit_test(test_save_load),
	    cmocka_unit_test(test_generate), cmocka_unit_test(test_attest),
	    cmocka_unit_test(test_import),   cmocka_unit_test(test_sign),
	    cmocka_unit_test(test_put_data), cmocka_unit_test(test_mgm),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
