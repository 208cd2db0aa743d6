/*
 * test_enroll_pivc.c — what host/enroll/piv_client.c still parses itself
 * next to libykpiv: public keys from the inner TLVs of GET METADATA tag 04
 * (after ykpiv_util_parse_metadata) and from GENERATE's parts, the dynamic
 * authentication template of the AES management-key exchange, the
 * management key's algorithm from its GET METADATA, ATTEST's DER; each
 * built from real OpenSSL keys and certificates, and tables of malformed
 * ones (truncated, trailing bytes, wrong tags, wrong lengths, points off
 * the curve), copied to an exact-size heap buffer so AddressSanitizer sees
 * any over-read. Also the status-word messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <ykpiv/ykpiv.h>

#include "tg_buf.h"
#include "tg_pivc.h"
#include "tg_test.h"

/* ---- helpers ---- */

static EVP_PKEY *
ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	assert_non_null(k);
	return k;
}

/* The uncompressed point of an EC key into out (size cap); its length. */
static size_t
ec_point(EVP_PKEY *k, uint8_t *out, size_t cap)
{
	size_t n = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, out, cap, &n),
	                 1);
	return n;
}

/* A self-signed certificate's DER (caller frees with OPENSSL_free). */
static int
cert_der(uint8_t **der)
{
	EVP_PKEY *k = ec_key("P-256");
	X509 *x = X509_new();
	int n;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	*der = NULL;
	n = i2d_X509(x, der);
	assert_true(n > 0);
	X509_free(x);
	EVP_PKEY_free(k);
	return n;
}

/* ---- public keys (GET METADATA tag 04, GENERATE) ---- */

static void
test_pubkey_ec_ok(void **state)
{
	static const struct {
		const char *curve;
		uint8_t alg;
	} t[] = {{"P-256", YKPIV_ALGO_ECCP256}, {"P-384", YKPIV_ALGO_ECCP384}};
	uint8_t pt[128], raw[256], *copy;
	struct tg_buf w;
	struct tg_error err;
	EVP_PKEY *k, *got = NULL;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		k = ec_key(t[i].curve);
		n = ec_point(k, pt, sizeof(pt));
		tg_buf_writer(&w, raw, sizeof(raw));
		assert_int_equal(tg_buf_put_tlv(&w, 0x86, pt, n), 0);
		copy = tg_test_memdup(tg_buf_data(&w), tg_buf_len(&w));
		assert_int_equal(
		    tg_pivc_parse_pubkey_inner(copy, tg_buf_len(&w), t[i].alg, &got, &err), 0);
		assert_int_equal(EVP_PKEY_eq(got, k), 1);
		EVP_PKEY_free(got);
		got = NULL;
		/* GENERATE's point as ykpiv_util_generate_key returns it */
		assert_int_equal(
		    tg_pivc_pubkey_from_parts(t[i].alg, pt, n, NULL, 0, NULL, 0, &got, &err), 0);
		assert_int_equal(EVP_PKEY_eq(got, k), 1);
		/* the wrong algorithm for this point is refused */
		EVP_PKEY_free(got);
		got = NULL;
		assert_int_equal(tg_pivc_parse_pubkey_inner(copy, tg_buf_len(&w),
		                                            t[i].alg == YKPIV_ALGO_ECCP256
		                                                ? YKPIV_ALGO_ECCP384
		                                                : YKPIV_ALGO_ECCP256,
		                                            &got, &err),
		                 TG_ERR_FORMAT);
		assert_null(got);
		free(copy);
		EVP_PKEY_free(k);
	}
}

static void
test_pubkey_rsa_ok(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), *got = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	uint8_t nb[256], eb[4], raw[600], *copy;
	struct tg_buf w;
	struct tg_error err;
	int elen;

	(void)state;
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &be), 1);
	assert_int_equal(BN_bn2binpad(bn, nb, sizeof(nb)), 256);
	elen = BN_bn2bin(be, eb);
	tg_buf_writer(&w, raw, sizeof(raw));
	assert_int_equal(tg_buf_put_tlv(&w, 0x81, nb, sizeof(nb)), 0);
	assert_int_equal(tg_buf_put_tlv(&w, 0x82, eb, (size_t)elen), 0);
	copy = tg_test_memdup(tg_buf_data(&w), tg_buf_len(&w));
	assert_int_equal(
	    tg_pivc_parse_pubkey_inner(copy, tg_buf_len(&w), YKPIV_ALGO_RSA2048, &got, &err), 0);
	assert_int_equal(EVP_PKEY_eq(got, k), 1);
	EVP_PKEY_free(got);
	got = NULL;
	assert_int_equal(tg_pivc_pubkey_from_parts(YKPIV_ALGO_RSA2048, NULL, 0, nb, sizeof(nb), eb,
	                                           (size_t)elen, &got, &err),
	                 0);
	assert_int_equal(EVP_PKEY_eq(got, k), 1);
	/* a short modulus from GENERATE is refused */
	EVP_PKEY_free(got);
	got = NULL;
	assert_int_equal(tg_pivc_pubkey_from_parts(YKPIV_ALGO_RSA2048, NULL, 0, nb, 255, eb,
	                                           (size_t)elen, &got, &err),
	                 TG_ERR_FORMAT);
	assert_null(got);
	EVP_PKEY_free(got);
	free(copy);
	BN_free(bn);
	BN_free(be);
	EVP_PKEY_free(k);
}

/* A valid-looking P-256 point prefix: 04 then 64 bytes (not on the curve). */
#define PT64                                                                                       \
	"04 11111111111111111111111111111111 11111111111111111111111111111111"                     \
	"   11111111111111111111111111111111 11111111111111111111111111111111"

struct bad_case {
	const char *name;
	uint8_t alg;
	const char *hex;
	int want;
};

static const struct bad_case bad_generate[] = {
    {"empty", YKPIV_ALGO_ECCP256, "", TG_ERR_FORMAT},
    {"tag only", YKPIV_ALGO_ECCP256, "86", TG_ERR_FORMAT},
    {"truncated length", YKPIV_ALGO_ECCP256, "86 81", TG_ERR_FORMAT},
    {"length past end", YKPIV_ALGO_ECCP256, "86 41 04", TG_ERR_FORMAT},
    {"wrong tag", YKPIV_ALGO_ECCP256, "87 00", TG_ERR_FORMAT},
    {"point of 0", YKPIV_ALGO_ECCP256, "86 00", TG_ERR_FORMAT},
    {"point not on curve", YKPIV_ALGO_ECCP256, "86 41" PT64, TG_ERR_FORMAT},
    {"compressed point", YKPIV_ALGO_ECCP256,
     "86 21 02 1111111111111111111111111111111111111111111111111111111111111111", TG_ERR_FORMAT},
    {"trailing after point", YKPIV_ALGO_ECCP256, "86 00 90", TG_ERR_FORMAT},
    {"extra TLV", YKPIV_ALGO_ECCP256, "86 00 87 00", TG_ERR_FORMAT},
    {"rsa: exponent first", YKPIV_ALGO_RSA2048, "82 03 010001 81 01 00", TG_ERR_FORMAT},
    {"rsa: short modulus", YKPIV_ALGO_RSA2048, "81 01 C1 82 03 010001", TG_ERR_FORMAT},
    {"rsa: no exponent", YKPIV_ALGO_RSA2048, "81 01 C1", TG_ERR_FORMAT},
    {"unknown algorithm", 0x99, "86 00", TG_ERR_UNSUPPORTED},
    {"indefinite length", YKPIV_ALGO_ECCP256, "86 80 00 00", TG_ERR_FORMAT},
    {"length form 84", YKPIV_ALGO_ECCP256, "86 84 00 00 00 02 00", TG_ERR_FORMAT},
};

static void
test_pubkey_bad(void **state)
{
	struct tg_error err;
	EVP_PKEY *got;
	uint8_t *p;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad_generate) / sizeof(bad_generate[0]); i++) {
		p = tg_test_hexdup(bad_generate[i].hex, &n);
		got = NULL;
		tg_error_clear(&err);
		print_message("public key: %s\n", bad_generate[i].name);
		assert_int_equal(tg_pivc_parse_pubkey_inner(p, n, bad_generate[i].alg, &got, &err),
		                 bad_generate[i].want);
		assert_null(got);
		assert_true(err.msg[0] != '\0');
		free(p);
	}
}

/* ---- dynamic authentication template ---- */

static void
test_dynauth(void **state)
{
	static const struct {
		const char *hex;
		uint32_t tag;
		int want;
		size_t vlen;
	} t[] = {
	    {"7C 0A 80 08 0102030405060708", 0x80, 0, 8},
	    {"7C 04 82 02 3000", 0x82, 0, 2},
	    {"7C 02 82 00", 0x82, 0, 0},
	    {"", 0x82, TG_ERR_FORMAT, 0},
	    {"7C", 0x82, TG_ERR_FORMAT, 0},
	    {"7C 05 82 02 3000", 0x82, TG_ERR_FORMAT, 0},       /* outer length past end */
	    {"7C 04 82 03 3000", 0x82, TG_ERR_FORMAT, 0},       /* inner length past end */
	    {"7C 04 80 02 3000", 0x82, TG_ERR_FORMAT, 0},       /* wrong inner tag */
	    {"7D 04 82 02 3000", 0x82, TG_ERR_FORMAT, 0},       /* wrong outer tag */
	    {"7C 04 82 02 3000 00", 0x82, TG_ERR_FORMAT, 0},    /* trailing outside */
	    {"7C 06 82 02 3000 81 00", 0x82, TG_ERR_FORMAT, 0}, /* trailing inside */
	};
	struct tg_error err;
	struct tg_buf v;
	uint8_t *p;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = tg_test_hexdup(t[i].hex, &n);
		print_message("dynauth: %s\n", t[i].hex);
		assert_int_equal(tg_pivc_parse_dynauth(p, n, t[i].tag, &v, &err), t[i].want);
		if (t[i].want == 0)
			assert_int_equal(tg_buf_remaining(&v), t[i].vlen);
		free(p);
	}
}

static void
test_cert_der(void **state)
{
	uint8_t *der = NULL, *copy;
	struct tg_error err;
	X509 *x = NULL;
	int n;

	(void)state;
	n = cert_der(&der);
	copy = tg_test_memdup(der, (size_t)n);
	assert_int_equal(tg_pivc_parse_cert_der(copy, (size_t)n, &x, &err), 0);
	X509_free(x);
	x = NULL;
	/* truncated, empty */
	assert_int_equal(tg_pivc_parse_cert_der(copy, (size_t)n - 1, &x, &err), TG_ERR_FORMAT);
	assert_int_equal(tg_pivc_parse_cert_der(copy, 0, &x, &err), TG_ERR_FORMAT);
	free(copy);
	/* trailing byte */
	copy = malloc((size_t)n + 1);
	assert_non_null(copy);
	memcpy(copy, der, (size_t)n);
	copy[n] = 0x90;
	assert_int_equal(tg_pivc_parse_cert_der(copy, (size_t)n + 1, &x, &err), TG_ERR_TRAILING);
	assert_null(x);
	free(copy);
	OPENSSL_free(der);
}

/* ---- GET METADATA ---- */

static void
test_mgm_alg(void **state)
{
	static const struct {
		const char *name;
		const char *hex;
		int want;
		uint8_t alg;
	} t[] = {
	    {"mgm 3DES default", "01 01 03 02 02 00 01 05 01 01", 0, 0x03},
	    {"mgm AES not default", "01 01 0C 02 02 00 01 05 01 00", 0, 0x0C},
	    {"unknown tag skipped", "99 02 AABB 01 01 0A", 0, 0x0A},
	    {"empty", "", TG_ERR_FORMAT, 0},
	    {"no algorithm", "02 02 00 01 05 01 01", TG_ERR_FORMAT, 0},
	    {"alg twice", "01 01 03 01 01 03", TG_ERR_FORMAT, 0},
	    {"alg of 2 bytes", "01 02 0303", TG_ERR_FORMAT, 0},
	    {"alg empty", "01 00", TG_ERR_FORMAT, 0},
	    {"truncated", "01 01", TG_ERR_FORMAT, 0},
	    {"length past end", "05 01 01 01 02 03", TG_ERR_FORMAT, 0},
	};
	struct tg_error err;
	uint8_t *p, alg;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = tg_test_hexdup(t[i].hex, &n);
		alg = 0;
		tg_error_clear(&err);
		print_message("mgm metadata: %s\n", t[i].name);
		assert_int_equal(tg_pivc_parse_mgm_alg(p, n, &alg, &err), t[i].want);
		if (t[i].want == 0)
			assert_int_equal(alg, t[i].alg);
		else
			assert_true(err.msg[0] != '\0');
		free(p);
	}
}

static void
test_metadata_slot(void **state)
{
	EVP_PKEY *k = ec_key("P-256");
	uint8_t pt[128], raw[256], *copy;
	ykpiv_metadata md;
	EVP_PKEY *pub = NULL;
	struct tg_error err;
	struct tg_buf w;
	size_t n, mark;

	(void)state;
	n = ec_point(k, pt, sizeof(pt));
	tg_buf_writer(&w, raw, sizeof(raw));
	assert_int_equal(tg_buf_put_tlv(&w, 0x01, (const uint8_t *)"\x11", 1), 0);
	assert_int_equal(tg_buf_put_tlv(&w, 0x02, (const uint8_t *)"\x02\x01", 2), 0);
	assert_int_equal(tg_buf_put_tlv(&w, 0x03, (const uint8_t *)"\x02", 1), 0);
	assert_int_equal(tg_buf_tlv_begin(&w, 0x04, &mark), 0);
	assert_int_equal(tg_buf_put_tlv(&w, 0x86, pt, n), 0);
	assert_int_equal(tg_buf_tlv_end(&w, mark), 0);
	copy = tg_test_memdup(tg_buf_data(&w), tg_buf_len(&w));
	/* libykpiv parses the response; tag 04's value is the inner TLVs */
	assert_int_equal(ykpiv_util_parse_metadata(copy, tg_buf_len(&w), &md), YKPIV_OK);
	assert_int_equal(md.pin_policy, YKPIV_PINPOLICY_ONCE);
	assert_int_equal(md.touch_policy, YKPIV_TOUCHPOLICY_NEVER);
	assert_int_equal(md.origin, YKPIV_METADATA_ORIGIN_IMPORTED);
	assert_int_equal(
	    tg_pivc_parse_pubkey_inner(md.pubkey, md.pubkey_len, md.algorithm, &pub, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pub, k), 1);
	EVP_PKEY_free(pub);
	free(copy);
	EVP_PKEY_free(k);
}

/* ---- status words ---- */

static void
test_sw(void **state)
{
	static const struct {
		uint16_t sw;
		enum tg_pivc_op op;
		int want;
		const char *text;
	} t[] = {
	    {0x9000, TG_PIVC_OP_SIGN, 0, ""},
	    {0x63C2, TG_PIVC_OP_VERIFY, TG_ERR_PIN_INCORRECT, "2 tries left"},
	    {0x63C1, TG_PIVC_OP_VERIFY, TG_ERR_PIN_INCORRECT, "1 try left"},
	    {0x63C0, TG_PIVC_OP_VERIFY, TG_ERR_PIN_BLOCKED, "unblock-pin"},
	    {0x6983, TG_PIVC_OP_VERIFY, TG_ERR_PIN_BLOCKED, "blocked"},
	    {0x6982, TG_PIVC_OP_MGM_AUTH, TG_ERR_AUTH_REQUIRED, "not this token's management key"},
	    {0x6982, TG_PIVC_OP_SIGN, TG_ERR_AUTH_REQUIRED, "PIN was not verified"},
	    {0x6982, TG_PIVC_OP_GENERATE, TG_ERR_AUTH_REQUIRED, "security status"},
	    {0x6A80, TG_PIVC_OP_ATTEST, TG_ERR_ATTESTATION, "imported"},
	    {0x6A82, TG_PIVC_OP_CONNECT, TG_ERR_NOT_FOUND, "no PIV application"},
	    {0x6A88, TG_PIVC_OP_ATTEST, TG_ERR_NOT_FOUND, "holds no key"},
	    {0x6D00, TG_PIVC_OP_ATTEST, TG_ERR_UNSUPPORTED, "does not support"},
	    {0x6A86, TG_PIVC_OP_GENERATE, TG_ERR_UNSUPPORTED, "--algorithm"},
	    {0x6985, TG_PIVC_OP_SIGN, TG_ERR_TOUCH_REQUIRED, "touch"},
	    {0x6A84, TG_PIVC_OP_PUT_DATA, TG_ERR_STATUS_WORD, "no room"},
	    {0x6F00, TG_PIVC_OP_PUT_DATA, TG_ERR_STATUS_WORD, "6F00"},
	    /* every operation's name, and the remaining status words, with the
	     * whole message */
	    {0x6983, TG_PIVC_OP_MGM_AUTH, TG_ERR_PIN_BLOCKED,
	     "the management key of the token in 'R' is blocked (6983)"},
	    {0x6A80, TG_PIVC_OP_GENERATE, TG_ERR_STATUS_WORD,
	     "the token in 'R' rejected the data of key generation (6A80 incorrect data)"},
	    {0x6A82, TG_PIVC_OP_GET_DATA, TG_ERR_NOT_FOUND,
	     "GET DATA on the token in 'R': object not found (6A82)"},
	    {0x6A88, TG_PIVC_OP_METADATA, TG_ERR_NOT_FOUND,
	     "GET METADATA on the token in 'R': slot 9a holds no key (6A88); generate one "
	     "(tokengate enroll without --existing-key)"},
	    {0x6A81, TG_PIVC_OP_MGM_AUTH, TG_ERR_UNSUPPORTED,
	     "the token in 'R' does not support management key authentication (6A81)"},
	    {0x6E00, TG_PIVC_OP_VERIFY, TG_ERR_UNSUPPORTED,
	     "the token in 'R' does not support PIN verification (6E00)"},
	    {0x6985, TG_PIVC_OP_ATTEST, TG_ERR_TOUCH_REQUIRED,
	     "the token in 'R' refused attestation (6985 conditions of use not satisfied)"},
	    {0x6581, TG_PIVC_OP_PUT_DATA, TG_ERR_STATUS_WORD,
	     "the token in 'R' has no room for storing the certificate (PUT DATA) (6581)"},
	    {0x6700, TG_PIVC_OP_SIGN, TG_ERR_STATUS_WORD,
	     "the token in 'R' rejected the length of signing (6700)"},
	    {0x6B00, TG_PIVC_OP_CONNECT, TG_ERR_STATUS_WORD,
	     "the token in 'R' answered 6B00 to SELECT of the PIV application"},
	    {0x6B00, (enum tg_pivc_op)99, TG_ERR_STATUS_WORD,
	     "the token in 'R' answered 6B00 to a PIV command"},
	};
	struct tg_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		tg_error_clear(&err);
		assert_int_equal(tg_pivc_sw_error(t[i].sw, t[i].op, 0x9A, "R", &err), t[i].want);
		print_message("%04X: %s\n", t[i].sw, err.msg);
		assert_non_null(strstr(err.msg, t[i].text));
	}
	/* no reader name: "?" stands for it */
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_sw_error(0x6982, TG_PIVC_OP_MGM_AUTH, 0x9B, NULL, &err),
	                 TG_ERR_AUTH_REQUIRED);
	assert_non_null(strstr(err.msg, "management key authentication with the token in '?' "
	                                "failed (6982)"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pubkey_ec_ok),  cmocka_unit_test(test_pubkey_rsa_ok),
	    cmocka_unit_test(test_pubkey_bad),    cmocka_unit_test(test_dynauth),
	    cmocka_unit_test(test_cert_der),      cmocka_unit_test(test_mgm_alg),
	    cmocka_unit_test(test_metadata_slot), cmocka_unit_test(test_sw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
