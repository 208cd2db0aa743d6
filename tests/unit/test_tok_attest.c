/* test_tok_attest.c — slot F9 and ATTEST (token/attest.c): the slot
 * certificate verifies through the F9 certificate to the manufacturer CA
 * and carries the Yubico extensions with the slot's real values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "test_tok_util.h"
#include "tg_buf.h"
#include "tg_err.h"

static X509 *
f9_cert(struct tt_fx *f)
{
	uint8_t out[2000];
	struct tg_buf b, v, c;
	const uint8_t *p;
	size_t n;
	X509 *x;

	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FFF01", out, sizeof(out), &n), 0x9000);
	tg_buf_reader(&b, out, n);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x53, &v), 0);
	assert_int_equal(tg_buf_get_tlv_tag(&v, 0x70, &c), 0);
	p = tg_buf_cur(&c);
	x = d2i_X509(NULL, &p, (long)tg_buf_remaining(&c));
	assert_non_null(x);
	return x;
}

static X509 *
attest(struct tt_fx *f, uint8_t slot)
{
	uint8_t cmd[4] = {0x00, 0xF9, 0x00, 0x00}, out[3000];
	const uint8_t *p = out;
	size_t n;
	X509 *x;

	cmd[2] = slot;
	assert_int_equal(tt_apdu(f->t, cmd, 4, out, sizeof(out), &n), 0x9000);
	assert_int_equal(out[0], 0x30);
	x = d2i_X509(NULL, &p, (long)n);
	assert_non_null(x);
	assert_ptr_equal(p, out + n); /* nothing after the certificate */
	return x;
}

/* The raw value of extension `oid`, copied into v. */
static size_t
ext_value(X509 *x, const char *oid, uint8_t *v, size_t cap)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int i = X509_get_ext_by_OBJ(x, o, -1);
	X509_EXTENSION *e;
	const ASN1_OCTET_STRING *os;
	size_t n;

	ASN1_OBJECT_free(o);
	assert_true(i >= 0);
	e = X509_get_ext(x, i);
	assert_int_equal(X509_EXTENSION_get_critical(e), 0);
	os = X509_EXTENSION_get_data(e);
	n = (size_t)ASN1_STRING_length(os);
	assert_true(n <= cap);
	memcpy(v, ASN1_STRING_get0_data(os), n);
	return n;
}

static void
check_chain(const struct tt_mfr *mfr, X509 *leaf, X509 *f9)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();

	assert_int_equal(X509_STORE_add_cert(st, mfr->cert), 1);
	assert_true(sk_X509_push(untrusted, f9) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
	if (X509_verify_cert(ctx) != 1)
		fail_msg("chain: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_free(untrusted);
}

/* The F9 certificate is what a YubiKey 5's is: a CA with path length 0,
 * the firmware extension, and neither the serial nor the policy extension
 * (those belong to slot certificates; verifiers refuse an F9 with them). */
static void
check_f9(X509 *f9)
{
	static const char *const absent[] = {"1.3.6.1.4.1.41482.3.7", "1.3.6.1.4.1.41482.3.8",
	                                     "1.3.6.1.4.1.41482.3.9"};
	ASN1_OBJECT *o;
	uint8_t v[8];
	size_t i;

	assert_int_equal(X509_check_ca(f9), 1);
	assert_int_equal(X509_get_pathlen(f9), 0);
	assert_int_equal(ext_value(f9, "1.3.6.1.4.1.41482.3.3", v, sizeof(v)), 3);
	assert_memory_equal(v, "\x05\x04\x03", 3);
	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		o = OBJ_txt2obj(absent[i], 1);
		assert_non_null(o);
		if (X509_get_ext_by_OBJ(f9, o, -1) >= 0)
			fail_msg("the F9 certificate carries %s", absent[i]);
		ASN1_OBJECT_free(o);
	}
}

static void
check_attestation(struct tt_fx *f, uint8_t slot, EVP_PKEY *pub, uint8_t pin, uint8_t touch)
{
	X509 *f9 = f9_cert(f), *x = attest(f, slot);
	uint8_t v[64];
	char cn[64], want[64];
	const ASN1_INTEGER *sn;
	BIGNUM *bn;
	size_t n;

	assert_int_equal(X509_verify(x, X509_get0_pubkey(f9)), 1);
	check_f9(f9);
	check_chain(f->mfr, x, f9);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(f9)), 0);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	                                      sizeof(cn)) > 0);
	snprintf(want, sizeof(want), "YubiKey PIV Attestation %02x", slot);
	assert_string_equal(cn, want);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(f9)), 0);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(f9)), 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pub), 1);
	sn = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(sn, NULL);
	assert_int_equal(BN_num_bytes(bn), 16);
	BN_free(bn);
	/* Yubico extensions */
	n = ext_value(x, "1.3.6.1.4.1.41482.3.3", v, sizeof(v));
	assert_int_equal(n, 3);
	assert_memory_equal(v, "\x05\x04\x03", 3);
	n = ext_value(x, "1.3.6.1.4.1.41482.3.7", v, sizeof(v));
	{
		const uint8_t *p = v;
		ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, (long)n);

		assert_non_null(ai);
		assert_ptr_equal(p, v + n);
		assert_int_equal(ASN1_INTEGER_get(ai), 1234567);
		ASN1_INTEGER_free(ai);
	}
	n = ext_value(x, "1.3.6.1.4.1.41482.3.8", v, sizeof(v));
	assert_int_equal(n, 2);
	assert_int_equal(v[0], pin);
	assert_int_equal(v[1], touch);
	n = ext_value(x, "1.3.6.1.4.1.41482.3.9", v, sizeof(v));
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 0x81);
	X509_free(x);
	X509_free(f9);
}

static void
test_attest_ec(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *a = tt_generate(f->t, 0x9A, 0x11, 2, 3);
	EVP_PKEY *c = tt_generate(f->t, 0x9C, 0x14, 0, 0);
	EVP_PKEY *r = tt_generate(f->t, 0x95, 0x11, 1, 2);

	check_attestation(f, 0x9A, a, 2, 3);
	check_attestation(f, 0x9C, c, 3, 1);
	check_attestation(f, 0x95, r, 1, 2);
	/* two attestations of one key have different serials */
	{
		X509 *x1 = attest(f, 0x9A), *x2 = attest(f, 0x9A);

		assert_int_not_equal(
		    ASN1_INTEGER_cmp(X509_get0_serialNumber(x1), X509_get0_serialNumber(x2)), 0);
		X509_free(x1);
		X509_free(x2);
	}
	EVP_PKEY_free(a);
	EVP_PKEY_free(c);
	EVP_PKEY_free(r);
}

static void
test_attest_rsa(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *k = tt_generate(f->t, 0x9D, 0x07, 0, 0);

	check_attestation(f, 0x9D, k, 2, 1);
	EVP_PKEY_free(k);
}

static void
test_attest_bad(void **state)
{
	struct tt_fx *f = *state;
	uint8_t data[40];
	size_t i;

	assert_int_equal(tt_hex(f->t, "00F99A00", NULL, 0, NULL), 0x6A88); /* empty */
	assert_int_equal(tt_hex(f->t, "00F99A01", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00F9F900", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00F99B00", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00F98000", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00F99A00 01 00", NULL, 0, NULL), 0x6700);
	/* an imported key */
	data[0] = 0x06;
	data[1] = 32;
	for (i = 0; i < 32; i++)
		data[2 + i] = (uint8_t)(i + 1);
	assert_int_equal(tt_send(f->t, 0xFE, 0x11, 0x9E, data, 34, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00F99E00", NULL, 0, NULL), 0x6A80);
	/* without F9 material (deleted certificate): 6A88 */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 07 5C035FFF01 5300", NULL, 0, NULL), 0x9000);
	EVP_PKEY_free(tt_generate(f->t, 0x9A, 0x11, 0, 0));
	assert_int_equal(tt_hex(f->t, "00F99A00", NULL, 0, NULL), 0x6A88);
}

/* The attest-other-key fault: ATTEST certifies a fresh key of the slot's
 * algorithm, signed by the genuine F9; cleared, the slot's key again. */
static void
test_attest_fault_other_key(void **state)
{
	struct tt_fx *f = *state;
	EVP_PKEY *k = tt_generate(f->t, 0x9A, 0x11, 2, 1);
	X509 *f9 = f9_cert(f), *x, *y;
	char alg[2][64];

	tg_tok_faults_set(f->t, TG_TOK_FAULT_ATTEST_OTHER_KEY);
	x = attest(f, 0x9A);
	y = attest(f, 0x9A);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(f9)), 1);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(x), X509_get0_pubkey(y)), 1);
	assert_int_equal(EVP_PKEY_get_utf8_string_param(X509_get0_pubkey(x), "group", alg[0],
	                                                sizeof(alg[0]), NULL),
	                 1);
	assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", alg[1], sizeof(alg[1]), NULL),
	                 1);
	assert_string_equal(alg[0], alg[1]);
	X509_free(x);
	X509_free(y);
	tg_tok_faults_set(f->t, 0);
	check_attestation(f, 0x9A, k, 2, 1);
	X509_free(f9);
	EVP_PKEY_free(k);
}

/* Manufacturer CAs of other shapes: RSA key in PKCS#8, no subject key
 * identifier; and the refusals of tg_tok_create. */
static void
test_mfr_variants(void **state)
{
	struct tt_host h;
	struct tg_tok_host host = tt_host_make(&h);
	struct tg_tok_params p;
	struct tg_tok *t = NULL;
	struct tt_mfr m2;
	EVP_PKEY *rk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	X509 *rc = X509_new();
	PKCS8_PRIV_KEY_INFO *p8;
	uint8_t *cder = NULL, *kder = NULL;
	int cl, kl;
	struct tt_fx f;

	(void)state;
	assert_non_null(rk);
	assert_int_equal(X509_set_version(rc, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(rc), 7), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(rc), "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"RSA Mfr", -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(rc, X509_get_subject_name(rc)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(rc), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(rc), 86400L * 30));
	assert_int_equal(X509_set_pubkey(rc, rk), 1);
	{
		/* basicConstraints only: no subject key identifier */
		X509V3_CTX xc;
		X509_EXTENSION *e;

		X509V3_set_ctx(&xc, rc, rc, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &xc, NID_basic_constraints, "critical,CA:TRUE");
		assert_non_null(e);
		assert_int_equal(X509_add_ext(rc, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(rc, rk, EVP_sha256()) > 0);
	cl = i2d_X509(rc, &cder);
	p8 = EVP_PKEY2PKCS8(rk);
	assert_non_null(p8);
	kl = i2d_PKCS8_PRIV_KEY_INFO(p8, &kder);
	assert_true(cl > 0 && kl > 0);
	memset(&p, 0, sizeof(p));
	p.serial = 1234567;
	p.mfr_cert_der = cder;
	p.mfr_cert_len = (size_t)cl;
	p.mfr_key_der = kder;
	p.mfr_key_len = (size_t)kl;
	assert_int_equal(tg_tok_create(&p, &host, &t), 0);
	/* the chain through an RSA-signed F9 certificate */
	memset(&f, 0, sizeof(f));
	f.t = t;
	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	{
		EVP_PKEY *k = tt_generate(t, 0x9A, 0x11, 0, 0);
		X509 *f9 = f9_cert(&f), *x = attest(&f, 0x9A);
		X509_STORE *st = X509_STORE_new();
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		STACK_OF(X509) *un = sk_X509_new_null();

		assert_int_equal(X509_verify(f9, rk), 1);
		assert_int_equal(X509_STORE_add_cert(st, rc), 1);
		assert_true(sk_X509_push(un, f9) > 0);
		assert_int_equal(X509_STORE_CTX_init(ctx, st, x, un), 1);
		assert_int_equal(X509_verify_cert(ctx), 1);
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(st);
		sk_X509_free(un);
		X509_free(x);
		X509_free(f9);
		EVP_PKEY_free(k);
	}
	tg_tok_free(t);
	t = NULL;
	/* a key that is not the certificate's */
	tt_mfr_make(&m2);
	p.mfr_key_der = m2.key_der;
	p.mfr_key_len = m2.key_len;
	assert_int_equal(tg_tok_create(&p, &host, &t), TG_ERR_CERT_MISMATCH);
	/* garbage, missing pieces */
	p.mfr_cert_len = 10;
	assert_int_equal(tg_tok_create(&p, &host, &t), TG_ERR_FORMAT);
	p.mfr_cert_der = NULL;
	assert_int_equal(tg_tok_create(&p, &host, &t), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_create(NULL, &host, &t), TG_ERR_INVALID_ARG);
	assert_null(t);
	tt_mfr_free(&m2);
	PKCS8_PRIV_KEY_INFO_free(p8);
	OPENSSL_free(cder);
	OPENSSL_clear_free(kder, (size_t)kl);
	X509_free(rc);
	EVP_PKEY_free(rk);
	tt_host_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_attest_ec, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_attest_rsa, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_attest_bad, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_attest_fault_other_key, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	    cmocka_unit_test(test_mfr_variants),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
