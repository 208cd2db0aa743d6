/*
 * test_agent_tlskey.c — the agent's token key for TLS (host/tlskey/,
 * tg_tlskey.h) refusing what it cannot use, on SoftHSM2 (run under
 * tests/lib/with-softhsm.sh: token tg-test, keys p256 and p384):
 *   - a wrong PIN: the login's refusal, wrapped with the key's role;
 *   - a key that is not on the token: named, with the role;
 *   - a PEM file with the leaf and an intermediate: the chain is installed
 *     in the SSL_CTX after the leaf;
 *   - an SSL_CTX whose security level the token key's certificate does
 *     not meet, and a chain certificate with too weak a key: TG_ERR_TLS
 *     naming the key, the SSL_CTX given no key.
 * The certificates are made here with OpenSSL (a software CA).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "tg_p11.h"
#include "tg_test.h"
#include "tg_tlskey.h"

#define PIN_ENV  "TG_AGENT_TLSKEY_PIN"
#define URI(obj) "pkcs11:token=tg-test;object=" obj ";type=private?pin-source=env:" PIN_ENV

static char leaf_chain_pem[600], weak_chain_pem[600];

static X509 *
cert_make(EVP_PKEY *pub, const char *cn, EVP_PKEY *signer, X509 *issuer, int ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(x);
	assert_non_null(n);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL) ^ (long)cn[0]);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(
	    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n), 1);
	assert_int_equal(X509_set_pubkey(x, pub), 1);
	if (ca) {
		X509_EXTENSION *ext =
		    X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");

		assert_non_null(ext);
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

/* path: the leaf, then the intermediate. */
static void
chain_write(const char *path, X509 *leaf, X509 *mid)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, leaf), 1);
	assert_int_equal(PEM_write_X509(f, mid), 1);
	assert_int_equal(fclose(f), 0);
}

/*
 * Two PEM files for the p256 key: its leaf issued by a P-256 intermediate
 * (leaf_chain_pem), and by an RSA-1024 intermediate (weak_chain_pem), both
 * under a P-256 root. Its own libtgp11 context, freed before any tg_tlskey.
 */
static void
certs_setup(void)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	EVP_PKEY *root = EVP_EC_gen("P-256"), *mid = EVP_EC_gen("P-256");
	EVP_PKEY *weak = EVP_RSA_gen(1024), *pub;
	X509 *rootx, *midx, *weakx, *leaf, *leaf2;

	assert_non_null(root);
	assert_non_null(mid);
	assert_non_null(weak);
	tg_error_clear(&err);
	if (tg_p11_new(&p, &err) != 0)
		fail_msg("tg_p11_new: %s", err.msg);
	if (tg_p11_key_find(p, URI("p256"), 0, &k, &err) != 0)
		fail_msg("find p256: %s", err.msg);
	assert_non_null(pub = tg_p11_key_public(k));
	rootx = cert_make(root, "agent tlskey root", root, NULL, 1);
	midx = cert_make(mid, "agent tlskey intermediate", root, rootx, 1);
	weakx = cert_make(weak, "agent tlskey weak intermediate", root, rootx, 1);
	leaf = cert_make(pub, "p256 via mid", mid, midx, 0);
	leaf2 = cert_make(pub, "p256 via weak", weak, weakx, 0);
	chain_write(leaf_chain_pem, leaf, midx);
	chain_write(weak_chain_pem, leaf2, weakx);
	X509_free(rootx);
	X509_free(midx);
	X509_free(weakx);
	X509_free(leaf);
	X509_free(leaf2);
	EVP_PKEY_free(root);
	EVP_PKEY_free(mid);
	EVP_PKEY_free(weak);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_free(p);
}

static int
open_key(const char *uri, const char *cert, struct tg_tlskey **k, struct tg_error *err)
{
	struct tg_tlskey_opts o;

	memset(&o, 0, sizeof(o));
	tg_error_clear(err);
	o.key_uri = uri;
	o.cert = cert;
	o.role = "client";
	*k = NULL;
	return tg_tlskey_open(&o, k, err);
}

static void
want_msg(const struct tg_error *err, const char *part)
{
	if (strstr(err->msg, part) == NULL)
		fail_msg("'%s' lacks '%s'", err->msg, part);
}

/* A wrong PIN: the token's refusal, with the key's role first. */
static void
test_wrong_pin(void **state)
{
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	int r;

	(void)state;
	r = open_key("pkcs11:token=tg-test;object=p256;type=private?pin-value=999999",
	             leaf_chain_pem, &k, &err);
	print_message("wrong PIN: %d %s\n", r, err.msg);
	assert_int_equal(r, TG_ERR_PIN_INCORRECT);
	assert_null(k);
	want_msg(&err, "client key: ");
	want_msg(&err, "wrong PIN for token 'tg-test'");
	/* the PIN itself never shows */
	assert_null(strstr(err.msg, "999999"));
}

/* A key the token does not have: named, with the role. */
static void
test_missing_key(void **state)
{
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	int r;

	(void)state;
	r = open_key(URI("no-such-key"), leaf_chain_pem, &k, &err);
	print_message("missing key: %d %s\n", r, err.msg);
	assert_int_equal(r, TG_ERR_KEY_NOT_FOUND);
	assert_null(k);
	want_msg(&err, "client key: ");
	want_msg(&err, "no-such-key");
}

/* The intermediate after the leaf in the PEM file goes into the SSL_CTX. */
static void
test_chain_installed(void **state)
{
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	STACK_OF(X509) *chain = NULL;
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	char cn[80] = "";

	(void)state;
	assert_non_null(c);
	if (open_key(URI("p256"), leaf_chain_pem, &k, &err) != 0)
		fail_msg("open: %s", err.msg);
	X509_NAME_get_text_by_NID(X509_get_subject_name(tg_tlskey_cert(k)), NID_commonName, cn,
	                          sizeof(cn));
	assert_string_equal(cn, "p256 via mid");
	if (tg_tlskey_ssl_ctx_use(k, c, &err) != 0)
		fail_msg("ssl_ctx_use: %s", err.msg);
	assert_int_equal(SSL_CTX_get0_chain_certs(c, &chain), 1);
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 1);
	X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, 0)), NID_commonName,
	                          cn, sizeof(cn));
	assert_string_equal(cn, "agent tlskey intermediate");
	assert_int_equal(SSL_CTX_check_private_key(c), 1);
	tg_tlskey_free(k);
	SSL_CTX_free(c);
}

/* Security level 4 (192 bits) refuses the P-256 leaf: TG_ERR_TLS. */
static void
test_leaf_too_weak(void **state)
{
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	(void)state;
	assert_non_null(c);
	SSL_CTX_set_security_level(c, 4);
	if (open_key(URI("p256"), leaf_chain_pem, &k, &err) != 0)
		fail_msg("open: %s", err.msg);
	tg_error_clear(&err);
	assert_int_equal(tg_tlskey_ssl_ctx_use(k, c, &err), TG_ERR_TLS);
	print_message("weak leaf: %s\n", err.msg);
	want_msg(&err, "the certificate of client key 'pkcs11:token=tg-test;object=p256");
	want_msg(&err, "cannot be used for TLS (OpenSSL refuses it, e.g. its key is too weak)");
	assert_null(SSL_CTX_get0_certificate(c));
	assert_int_equal(ERR_peek_error(), 0); /* nothing left on the queue */
	tg_tlskey_free(k);
	SSL_CTX_free(c);
}

/* Security level 2 (112 bits) refuses an RSA-1024 intermediate. */
static void
test_chain_too_weak(void **state)
{
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	(void)state;
	assert_non_null(c);
	SSL_CTX_set_security_level(c, 2);
	if (open_key(URI("p256"), weak_chain_pem, &k, &err) != 0)
		fail_msg("open: %s", err.msg);
	tg_error_clear(&err);
	assert_int_equal(tg_tlskey_ssl_ctx_use(k, c, &err), TG_ERR_TLS);
	print_message("weak chain: %s\n", err.msg);
	want_msg(&err,
	         "a certificate of the chain of client key 'pkcs11:token=tg-test;object=p256");
	want_msg(&err, "cannot be used for TLS (OpenSSL refuses it, e.g. its key is too weak)");
	assert_null(strstr(err.msg, "out of memory"));
	/* no key installed with a chain that cannot be sent */
	assert_int_equal(SSL_CTX_check_private_key(c), 0);
	ERR_clear_error();
	tg_tlskey_free(k);
	SSL_CTX_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrong_pin),       cmocka_unit_test(test_missing_key),
	    cmocka_unit_test(test_chain_installed), cmocka_unit_test(test_leaf_too_weak),
	    cmocka_unit_test(test_chain_too_weak),
	};
	const char *tmp = tg_test_getenv("TG_TMP");

	setenv(PIN_ENV, tg_test_require_env("TG_SOFTHSM_PIN"), 1);
	unsetenv("TOKENGATE_PIN");
	snprintf(leaf_chain_pem, sizeof(leaf_chain_pem), "%s/agent-tlskey-chain.pem",
	         tmp != NULL ? tmp : "/tmp");
	snprintf(weak_chain_pem, sizeof(weak_chain_pem), "%s/agent-tlskey-weak.pem",
	         tmp != NULL ? tmp : "/tmp");
	certs_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
