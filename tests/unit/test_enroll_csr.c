/*
 * test_enroll_csr.c — host/enroll/csr.c: the request's subject, URI SAN and
 * key; signing through an external signer (as the PIV token does: the hash
 * for ECDSA, the PKCS#1 v1.5 block for RSA) with a software key standing in
 * for the token, checked by OpenSSL's own X509_REQ_verify; a signer that
 * signs with another key, or returns garbage, is caught (TG_ERR_CSR).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg_csr.h"
#include "tg_test.h"

#define ID "spiffe://example.org/dev/alice"

struct signer {
	EVP_PKEY *key;
	int garbage;
};

/* Signs like the token: ECDSA over the given hash; raw RSA over the block. */
static int
soft_sign(void *ctx, const uint8_t *in, size_t n, uint8_t **sig, size_t *siglen,
          struct tg_error *err)
{
	struct signer *s = ctx;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(s->key, NULL);
	size_t len = 0;

	(void)err;
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	if (EVP_PKEY_is_a(s->key, "RSA"))
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING), 1);
	assert_int_equal(EVP_PKEY_sign(c, NULL, &len, in, n), 1);
	*sig = malloc(len);
	assert_non_null(*sig);
	assert_int_equal(EVP_PKEY_sign(c, *sig, &len, in, n), 1);
	if (s->garbage)
		(*sig)[len / 2] ^= 0x01;
	*siglen = len;
	EVP_PKEY_CTX_free(c);
	return 0;
}

static void
check_req(X509_REQ *req, EVP_PKEY *pub)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens;
	GENERAL_NAME *g;
	char cn[128];

	assert_int_equal(X509_REQ_verify(req, pub), 1);
	assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
	                                      sizeof(cn)) > 0);
	assert_string_equal(cn, ID);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	g = sk_GENERAL_NAME_value(gens, 0);
	assert_int_equal(g->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
	                    ID);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void
run(EVP_PKEY *key, EVP_PKEY *other)
{
	struct signer s = {key, 0}, bad = {other, 0}, junk = {key, 1};
	struct tg_error err;
	X509_REQ *req = NULL;

	assert_int_equal(tg_csr_new(ID, key, &req, &err), 0);
	assert_int_equal(tg_csr_sign_external(req, key, soft_sign, &s, &err), 0);
	check_req(req, key);
	X509_REQ_free(req);
	req = NULL;
	/* a signature by another key does not verify */
	assert_int_equal(tg_csr_new(ID, key, &req, &err), 0);
	assert_int_equal(tg_csr_sign_external(req, key, soft_sign, &bad, &err), TG_ERR_CSR);
	X509_REQ_free(req);
	req = NULL;
	/* a corrupted signature does not verify */
	tg_error_clear(&err);
	assert_int_equal(tg_csr_new(ID, key, &req, &err), 0);
	assert_int_equal(tg_csr_sign_external(req, key, soft_sign, &junk, &err), TG_ERR_CSR);
	assert_non_null(strstr(err.msg, "does not verify"));
	X509_REQ_free(req);
	req = NULL;
	/* EVP signing (HSM path) */
	assert_int_equal(tg_csr_new(ID, key, &req, &err), 0);
	assert_int_equal(tg_csr_sign_evp(req, key, key, &err), 0);
	check_req(req, key);
	X509_REQ_free(req);
}

static void
test_ec(void **state)
{
	static const char *const curves[] = {"P-256", "P-384"};
	EVP_PKEY *k, *o;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
		o = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
		assert_non_null(k);
		assert_non_null(o);
		assert_true(tg_csr_md(k) == (i == 0 ? EVP_sha256() : EVP_sha384()));
		run(k, o);
		EVP_PKEY_free(k);
		EVP_PKEY_free(o);
	}
}

static void
test_rsa(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *o = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	(void)state;
	assert_non_null(k);
	assert_non_null(o);
	run(k, o);
	EVP_PKEY_free(k);
	EVP_PKEY_free(o);
}

static void
test_rsa_pad(void **state)
{
	uint8_t dg[32], out[256];
	struct tg_error err = {0, ""};
	size_t i;

	(void)state;
	memset(dg, 0xAB, sizeof(dg));
	assert_int_equal(tg_csr_rsa_pad(EVP_sha256(), dg, sizeof(dg), out, sizeof(out), &err), 0);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0x01);
	/* 256 - 3 - 51 (DigestInfo of SHA-256) = 202 bytes of FF */
	for (i = 2; i < 2 + 202; i++)
		assert_int_equal(out[i], 0xFF);
	assert_int_equal(out[204], 0x00);
	assert_memory_equal(out + 256 - 32, dg, 32);
	/* a key too small for the digest */
	assert_int_equal(tg_csr_rsa_pad(EVP_sha256(), dg, sizeof(dg), out, 60, &err),
	                 TG_ERR_INVALID_ARG);
}

/*
 * tg_csr_verify refuses a request whose key is not the token's: another
 * key of the same type, and a key of another type (which EVP_PKEY_eq
 * answers with -1, not 0), each with the message naming the key.
 */
static void
test_verify_other_key(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *others[] = {EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
	                      EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")};
	struct tg_error err = {0, ""};
	X509_REQ *req = NULL;
	size_t i;

	(void)state;
	assert_non_null(k);
	assert_int_equal(tg_csr_new(ID, k, &req, &err), 0);
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	assert_int_equal(tg_csr_verify(req, k, &err), 0);
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		assert_non_null(others[i]);
		tg_error_clear(&err);
		assert_int_equal(tg_csr_verify(req, others[i], &err), TG_ERR_CSR);
		assert_non_null(strstr(err.msg, "the request's public key is not the token's key"));
		EVP_PKEY_free(others[i]);
	}
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void
test_long_id(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	const char *id = "spiffe://a-very-long-trust-domain.example.org/svc/"
	                 "a-service-name-that-is-long";
	struct tg_error err = {0, ""};
	X509_REQ *req = NULL;
	char cn[128];

	(void)state;
	assert_true(strlen(id) > 64);
	assert_int_equal(tg_csr_new(id, k, &req, &err), 0);
	assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
	                                      sizeof(cn)) > 0);
	assert_string_equal(cn, "a-service-name-that-is-long");
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ec),      cmocka_unit_test(test_rsa),
	    cmocka_unit_test(test_rsa_pad), cmocka_unit_test(test_verify_other_key),
	    cmocka_unit_test(test_long_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
