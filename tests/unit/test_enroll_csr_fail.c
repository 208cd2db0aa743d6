/*
 * test_enroll_csr_fail.c — host/enroll/csr.c when things go wrong: a key
 * type the PIV token cannot have (Ed25519) is refused before the signer
 * is asked, a signer's own error comes back unchanged, a signing key
 * OpenSSL cannot use is reported; and every allocation of building,
 * signing and verifying a request failing in turn (OpenSSL's allocations
 * included) is a clean error, never a request that was not verified.
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

#include "tg_csr.h"
#include "tg_err.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

#define ID "spiffe://example.org/dev/alice"

struct signer {
	EVP_PKEY *key;
	int calls;
	int fail; /* return this error instead of signing */
};

static int
soft_sign(void *ctx, const uint8_t *in, size_t n, uint8_t **sig, size_t *siglen,
          struct tg_error *err)
{
	struct signer *s = ctx;
	EVP_PKEY_CTX *c = NULL;
	size_t len = 0;
	int r = TG_ERR_CRYPTO;

	s->calls++;
	if (s->fail != 0)
		return tg_error_set(err, s->fail, "the token says no");
	if ((c = EVP_PKEY_CTX_new(s->key, NULL)) == NULL || EVP_PKEY_sign_init(c) != 1)
		goto out;
	if (EVP_PKEY_is_a(s->key, "RSA") && EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) != 1)
		goto out;
	if (EVP_PKEY_sign(c, NULL, &len, in, n) != 1 || (*sig = malloc(len)) == NULL)
		goto out;
	if (EVP_PKEY_sign(c, *sig, &len, in, n) != 1) {
		free(*sig);
		*sig = NULL;
		goto out;
	}
	*siglen = len;
	r = 0;
out:
	if (r != 0)
		tg_error_set(err, r, "software signer failed");
	EVP_PKEY_CTX_free(c);
	return r;
}

static EVP_PKEY *
key_gen(const char *type, const char *param)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	else if (strcmp(type, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(k);
	return k;
}

/* An Ed25519 key: the request can be built, but the external signer (a
 * PIV token) is never asked to sign for it. */
static void
test_unsupported_key(void **state)
{
	struct signer s = {0};
	struct tg_error err;
	X509_REQ *req = NULL;
	EVP_PKEY *ed = key_gen("ED25519", NULL);

	(void)state;
	s.key = ed;
	tg_error_clear(&err);
	assert_int_equal(tg_csr_new(ID, ed, &req, &err), 0);
	assert_int_equal(tg_csr_sign_external(req, ed, soft_sign, &s, &err), TG_ERR_UNSUPPORTED);
	assert_string_equal(err.msg, "only EC and RSA keys are supported");
	assert_int_equal(s.calls, 0);
	assert_int_not_equal(X509_REQ_verify(req, ed), 1); /* left unsigned */
	X509_REQ_free(req);
	EVP_PKEY_free(ed);
}

/* The signer's error (a wrong PIN, say) is returned as it is, for EC and
 * RSA keys; the request stays unsigned. */
static void
test_signer_error(void **state)
{
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	EVP_PKEY *keys[2];
	struct signer s = {0};
	struct tg_error err;
	X509_REQ *req;
	size_t i;

	(void)state;
	keys[0] = key_gen("EC", "P-256");
	keys[1] = key_gen("RSA", NULL);
	for (i = 0; i < 2; i++) {
		req = NULL;
		s.key = keys[i];
		s.calls = 0;
		s.fail = TG_ERR_PIN_INCORRECT;
		tg_error_clear(&err);
		assert_int_equal(tg_csr_new(ID, keys[i], &req, &err), 0);
		assert_int_equal(tg_csr_sign_external(req, keys[i], soft_sign, &s, &err),
		                 TG_ERR_PIN_INCORRECT);
		assert_string_equal(err.msg, "the token says no");
		assert_int_equal(s.calls, 1);
		X509_REQ_get0_signature(req, &sig, &alg);
		assert_true(sig == NULL || ASN1_STRING_length(sig) == 0);
		assert_int_not_equal(X509_REQ_verify(req, keys[i]), 1);
		X509_REQ_free(req);
	}
	EVP_PKEY_free(keys[0]);
	EVP_PKEY_free(keys[1]);
}

/* X509_REQ_sign cannot use the key given with the digest for pub
 * (Ed25519 takes no digest): OpenSSL's reason is in the message. */
static void
test_sign_evp_fails(void **state)
{
	EVP_PKEY *ec = key_gen("EC", "P-256"), *ed = key_gen("ED25519", NULL);
	struct tg_error err;
	X509_REQ *req = NULL;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(tg_csr_new(ID, ec, &req, &err), 0);
	assert_int_equal(tg_csr_sign_evp(req, ed, ec, &err), TG_ERR_CRYPTO);
	assert_non_null(strstr(err.msg, "signing the request with the token's key failed: "));
	assert_int_not_equal(X509_REQ_verify(req, ec), 1);
	X509_REQ_free(req);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

/* ---- allocation failures ---- */

struct op_ctx {
	EVP_PKEY *key;
	int evp; /* sign with tg_csr_sign_evp instead of the external signer */
};

static int
op_csr(void *arg, struct tg_error *err)
{
	struct op_ctx *c = arg;
	struct signer s = {0};
	X509_REQ *req = NULL;
	int r;

	s.key = c->key;
	if ((r = tg_csr_new(ID, c->key, &req, err)) != 0)
		goto out;
	r = c->evp ? tg_csr_sign_evp(req, c->key, c->key, err)
	           : tg_csr_sign_external(req, c->key, soft_sign, &s, err);
	if (r == 0) {
		tg_failalloc_hold(1);
		assert_int_equal(X509_REQ_verify(req, c->key), 1);
		tg_failalloc_hold(0);
	}
out:
	X509_REQ_free(req);
	return r;
}

static void
test_failalloc(void **state)
{
	struct op_ctx c[3];

	(void)state;
	c[0] = (struct op_ctx){key_gen("EC", "P-256"), 0};
	c[1] = (struct op_ctx){key_gen("RSA", NULL), 0};
	c[2] = (struct op_ctx){key_gen("EC", "P-384"), 1};
	assert_true(tg_failalloc_sweep("csr EC external", op_csr, &c[0]) > 0);
	assert_true(tg_failalloc_sweep("csr RSA external", op_csr, &c[1]) > 0);
	assert_true(tg_failalloc_sweep("csr EC evp", op_csr, &c[2]) > 0);
	EVP_PKEY_free(c[0].key);
	EVP_PKEY_free(c[1].key);
	EVP_PKEY_free(c[2].key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unsupported_key),
	    cmocka_unit_test(test_signer_error),
	    cmocka_unit_test(test_sign_evp_fails),
	    cmocka_unit_test(test_failalloc),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
