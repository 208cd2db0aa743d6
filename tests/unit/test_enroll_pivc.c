/*
 * test_enroll_pivc.c — the parsers of host/enroll/piv_client.c over the
 * card's answers: well-formed GENERATE / GET DATA / GET METADATA / dynamic
 * authentication / ATTEST responses built from real OpenSSL keys and
 * certificates, and tables of malformed ones (truncated, trailing bytes,
 * wrong tags, wrong lengths, points off the curve, compressed
 * certificates, repeated metadata tags), each copied to an exact-size heap
 * buffer so AddressSanitizer sees any over-read. Also the status-word
 * messages.
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

/* ---- GENERATE ---- */

static void
test_generate_ec_ok(void **state)
{
	static const struct {
		const char *curve;
		uint8_t alg;
	} t[] = {{"P-256", TG_PIVC_ALG_ECCP256}, {"P-384", TG_PIVC_ALG_ECCP384}};
	uint8_t pt[128], raw[256], *copy;
	struct tg_buf w;
	struct tg_error err;
	EVP_PKEY *k, *got = NULL;
	size_t i, n, mark;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		k = ec_key(t[i].curve);
		n = ec_point(k, pt, sizeof(pt));
		tg_buf_writer(&w, raw, sizeof(raw));
		assert_int_equal(tg_buf_tlv_begin(&w, 0x7F49, &mark), 0);
		assert_int_equal(tg_buf_put_tlv(&w, 0x86, pt, n), 0);
		assert_int_equal(tg_buf_tlv_end(&w, mark), 0);
		copy = tg_test_memdup(tg_buf_data(&w), tg_buf_len(&w));
		assert_int_equal(tg_pivc_parse_generate(copy, tg_buf_len(&w), t[i].alg, &got, &err),
		                 0);
		assert_int_equal(EVP_PKEY_eq(got, k), 1);
		/* the wrong algorithm for this point is refused */
		EVP_PKEY_free(got);
		got = NULL;
		assert_int_equal(tg_pivc_parse_generate(copy, tg_buf_len(&w),
		                                        t[i].alg == TG_PIVC_ALG_ECCP256
		                                            ? TG_PIVC_ALG_ECCP384
		                                            : TG_PIVC_ALG_ECCP256,
		                                        &got, &err),
		                 TG_ERR_FORMAT);
		assert_null(got);
		free(copy);
		EVP_PKEY_free(k);
	}
}

static void
test_generate_rsa_ok(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), *got = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	uint8_t nb[256], eb[4], raw[600], *copy;
	struct tg_buf w;
	struct tg_error err;
	size_t mark;
	int elen;

	(void)state;
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &be), 1);
	assert_int_equal(BN_bn2binpad(bn, nb, sizeof(nb)), 256);
	elen = BN_bn2bin(be, eb);
	tg_buf_writer(&w, raw, sizeof(raw));
	assert_int_equal(tg_buf_tlv_begin(&w, 0x7F49, &mark), 0);
	assert_int_equal(tg_buf_put_tlv(&w, 0x81, nb, sizeof(nb)), 0);
	assert_int_equal(tg_buf_put_tlv(&w, 0x82, eb, (size_t)elen), 0);
	assert_int_equal(tg_buf_tlv_end(&w, mark), 0);
	copy = tg_test_memdup(tg_buf_data(&w), tg_buf_len(&w));
	assert_int_equal(
	    tg_pivc_parse_generate(copy, tg_buf_len(&w), TG_PIVC_ALG_RSA2048, &got, &err), 0);
	assert_int_equal(EVP_PKEY_eq(got, k), 1);
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
    {"empty", TG_PIVC_ALG_ECCP256, "", TG_ERR_FORMAT},
    {"tag only", TG_PIVC_ALG_ECCP256, "7F49", TG_ERR_FORMAT},
    {"truncated length", TG_PIVC_ALG_ECCP256, "7F49 81", TG_ERR_FORMAT},
    {"length past end", TG_PIVC_ALG_ECCP256, "7F49 43 86 41 04", TG_ERR_FORMAT},
    {"wrong outer tag", TG_PIVC_ALG_ECCP256, "7F48 02 86 00", TG_ERR_FORMAT},
    {"empty template", TG_PIVC_ALG_ECCP256, "7F49 00", TG_ERR_FORMAT},
    {"point of 0", TG_PIVC_ALG_ECCP256, "7F49 02 86 00", TG_ERR_FORMAT},
    {"point not on curve", TG_PIVC_ALG_ECCP256, "7F49 43 86 41" PT64, TG_ERR_FORMAT},
    {"compressed point", TG_PIVC_ALG_ECCP256,
     "7F49 23 86 21 02 1111111111111111111111111111111111111111111111111111111111111111",
     TG_ERR_FORMAT},
    {"trailing after template", TG_PIVC_ALG_ECCP256, "7F49 02 86 00 90", TG_ERR_FORMAT},
    {"extra TLV in template", TG_PIVC_ALG_ECCP256, "7F49 04 86 00 87 00", TG_ERR_FORMAT},
    {"rsa: exponent first", TG_PIVC_ALG_RSA2048, "7F49 08 82 03 010001 81 01 00", TG_ERR_FORMAT},
    {"rsa: short modulus", TG_PIVC_ALG_RSA2048, "7F49 08 81 01 C1 82 03 010001", TG_ERR_FORMAT},
    {"rsa: no exponent", TG_PIVC_ALG_RSA2048, "7F49 03 81 01 C1", TG_ERR_FORMAT},
    {"unknown algorithm", 0x99, "7F49 02 86 00", TG_ERR_UNSUPPORTED},
    {"indefinite length", TG_PIVC_ALG_ECCP256, "7F49 80 86 00 00 00", TG_ERR_FORMAT},
    {"length form 84", TG_PIVC_ALG_ECCP256, "7F49 84 00 00 00 02 86 00", TG_ERR_FORMAT},
};

static void
test_generate_bad(void **state)
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
		print_message("generate: %s\n", bad_generate[i].name);
		assert_int_equal(tg_pivc_parse_generate(p, n, bad_generate[i].alg, &got, &err),
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

/* ---- GET DATA / certificate objects ---- */

static void
test_cert_object(void **state)
{
	uint8_t *der = NULL, *raw, *copy;
	struct tg_buf w;
	struct tg_error err;
	X509 *x = NULL;
	size_t mark, mark2, cap;
	int n, variant;

	(void)state;
	n = cert_der(&der);
	cap = (size_t)n + 32;
	raw = malloc(cap);
	assert_non_null(raw);
	/* 0: 70 71 FE; 1: 70 only; 2: 70 71; 3: compressed; 4: trailing after
	 * 53; 5: unknown tag; 6: cert with a byte cut; 7: 71 of 2 bytes */
	for (variant = 0; variant < 8; variant++) {
		tg_buf_writer(&w, raw, cap);
		if (variant == 6) {
			assert_int_equal(tg_buf_tlv_begin(&w, 0x53, &mark), 0);
			assert_int_equal(tg_buf_put_tlv(&w, 0x70, der, (size_t)n - 1), 0);
		} else {
			assert_int_equal(tg_buf_tlv_begin(&w, 0x53, &mark), 0);
			assert_int_equal(tg_buf_tlv_begin(&w, 0x70, &mark2), 0);
			assert_int_equal(tg_buf_put_bytes(&w, der, (size_t)n), 0);
			assert_int_equal(tg_buf_tlv_end(&w, mark2), 0);
		}
		if (variant == 0 || variant == 2)
			assert_int_equal(tg_buf_put_tlv(&w, 0x71, (const uint8_t *)"\0", 1), 0);
		if (variant == 3)
			assert_int_equal(tg_buf_put_tlv(&w, 0x71, (const uint8_t *)"\1", 1), 0);
		if (variant == 7)
			assert_int_equal(tg_buf_put_tlv(&w, 0x71, (const uint8_t *)"\0\0", 2), 0);
		if (variant == 0)
			assert_int_equal(tg_buf_put_tlv(&w, 0xFE, NULL, 0), 0);
		if (variant == 5)
			assert_int_equal(tg_buf_put_tlv(&w, 0x72, NULL, 0), 0);
		assert_int_equal(tg_buf_tlv_end(&w, mark), 0);
		if (variant == 4)
			assert_int_equal(tg_buf_put_u8(&w, 0x00), 0);
		copy = tg_test_memdup(tg_buf_data(&w), tg_buf_len(&w));
		x = NULL;
		print_message("cert object variant %d\n", variant);
		switch (variant) {
		case 0:
		case 1:
		case 2:
			assert_int_equal(tg_pivc_parse_cert_object(copy, tg_buf_len(&w), &x, &err),
			                 0);
			assert_non_null(x);
			break;
		case 3:
			assert_int_equal(tg_pivc_parse_cert_object(copy, tg_buf_len(&w), &x, &err),
			                 TG_ERR_UNSUPPORTED);
			break;
		default:
			assert_true(tg_pivc_parse_cert_object(copy, tg_buf_len(&w), &x, &err) != 0);
			assert_null(x);
			break;
		}
		X509_free(x);
		free(copy);
	}
	free(raw);
	OPENSSL_free(der);
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

static void
test_object(void **state)
{
	static const struct {
		const char *hex;
		int want;
	} t[] = {
	    {"53 00", 0},
	    {"53 02 AABB", 0},
	    {"", TG_ERR_FORMAT},
	    {"53", TG_ERR_FORMAT},
	    {"53 03 AABB", TG_ERR_FORMAT},
	    {"54 00", TG_ERR_FORMAT},
	    {"53 00 00", TG_ERR_FORMAT},
	    {"53 81", TG_ERR_FORMAT},
	};
	struct tg_error err;
	struct tg_buf v;
	uint8_t *p;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = tg_test_hexdup(t[i].hex, &n);
		assert_int_equal(tg_pivc_parse_object(p, n, &v, &err), t[i].want);
		free(p);
	}
}

/* ---- GET METADATA ---- */

static void
test_metadata(void **state)
{
	static const struct {
		const char *name;
		const char *hex;
		int want;
		uint8_t alg;
		int is_default;
	} t[] = {
	    {"mgm 3DES default", "01 01 03 02 02 00 01 05 01 01", 0, 0x03, 1},
	    {"mgm AES not default", "01 01 0C 02 02 00 01 05 01 00", 0, 0x0C, 0},
	    {"unknown tag skipped", "01 01 03 99 02 AABB", 0, 0x03, -1},
	    {"empty", "", 0, 0, -1},
	    {"alg twice", "01 01 03 01 01 03", TG_ERR_FORMAT, 0, -1},
	    {"alg of 2 bytes", "01 02 0303", TG_ERR_FORMAT, 0, -1},
	    {"policy of 1 byte", "02 01 01", TG_ERR_FORMAT, 0, -1},
	    {"default of 2", "05 01 02", TG_ERR_FORMAT, 0, -1},
	    {"truncated", "01 01", TG_ERR_FORMAT, 0, -1},
	    {"pubkey without alg", "04 02 86 00", TG_ERR_FORMAT, 0, -1},
	    {"bad pubkey", "01 01 11 04 02 86 00", TG_ERR_FORMAT, 0, -1},
	    {"origin empty", "03 00", TG_ERR_FORMAT, 0, -1},
	};
	struct tg_pivc_meta m;
	struct tg_error err;
	uint8_t *p;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = tg_test_hexdup(t[i].hex, &n);
		print_message("metadata: %s\n", t[i].name);
		assert_int_equal(tg_pivc_parse_metadata(p, n, &m, &err), t[i].want);
		if (t[i].want == 0) {
			assert_int_equal(m.alg, t[i].alg);
			assert_int_equal(m.is_default, t[i].is_default);
		}
		assert_null(m.pub);
		tg_pivc_meta_clear(&m);
		free(p);
	}
}

static void
test_metadata_slot(void **state)
{
	EVP_PKEY *k = ec_key("P-256");
	uint8_t pt[128], raw[256], *copy;
	struct tg_pivc_meta m;
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
	assert_int_equal(tg_pivc_parse_metadata(copy, tg_buf_len(&w), &m, &err), 0);
	assert_int_equal(m.pin_policy, TG_PIVC_PIN_ONCE);
	assert_int_equal(m.touch_policy, TG_PIVC_TOUCH_NEVER);
	assert_int_equal(m.origin, TG_PIVC_ORIGIN_IMPORTED);
	assert_int_equal(EVP_PKEY_eq(m.pub, k), 1);
	tg_pivc_meta_clear(&m);
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
	    {0x6A82, TG_PIVC_OP_SELECT, TG_ERR_NOT_FOUND, "no PIV application"},
	    {0x6A88, TG_PIVC_OP_ATTEST, TG_ERR_NOT_FOUND, "holds no key"},
	    {0x6D00, TG_PIVC_OP_ATTEST, TG_ERR_UNSUPPORTED, "does not support"},
	    {0x6A86, TG_PIVC_OP_GENERATE, TG_ERR_UNSUPPORTED, "--algorithm"},
	    {0x6985, TG_PIVC_OP_SIGN, TG_ERR_TOUCH_REQUIRED, "touch"},
	    {0x6A84, TG_PIVC_OP_PUT_DATA, TG_ERR_STATUS_WORD, "no room"},
	    {0x6F00, TG_PIVC_OP_PUT_DATA, TG_ERR_STATUS_WORD, "6F00"},
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
}

static void
test_slot_object(void **state)
{
	(void)state;
	assert_int_equal(tg_pivc_slot_object(0x9A), 0x5FC105);
	assert_int_equal(tg_pivc_slot_object(0x9C), 0x5FC10A);
	assert_int_equal(tg_pivc_slot_object(0x9D), 0x5FC10B);
	assert_int_equal(tg_pivc_slot_object(0x9E), 0x5FC101);
	assert_int_equal(tg_pivc_slot_object(0x9B), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_generate_ec_ok), cmocka_unit_test(test_generate_rsa_ok),
	    cmocka_unit_test(test_generate_bad),   cmocka_unit_test(test_dynauth),
	    cmocka_unit_test(test_cert_object),    cmocka_unit_test(test_cert_der),
	    cmocka_unit_test(test_object),         cmocka_unit_test(test_metadata),
	    cmocka_unit_test(test_metadata_slot),  cmocka_unit_test(test_sw),
	    cmocka_unit_test(test_slot_object),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
