/*
 * test_embed_softhsm.c — the embedding API (tokengate.h) on SoftHSM2 (run
 * under tests/lib/with-softhsm.sh: token tg-test, keys p256 and p384
 * generated on it, exportable/04 exportable), through its public names
 * only once the certificates are made:
 *   - tokengate_ssl_ctx_new (client and TOKENGATE_SERVER) and
 *     tokengate_ssl_ctx_configure give SSL_CTXs whose key is the token's
 *     (SSL_CTX_check_private_key: key and certificate installed, a pair);
 *   - each refusal maps to its public code with a message in errbuf:
 *     exportable -> TOKENGATE_ERR_REFUSED, another key's certificate ->
 *     TOKENGATE_ERR_CERT, no such key -> TOKENGATE_ERR_NOT_FOUND, not a URI
 *     or unknown flags -> TOKENGATE_ERR_INVALID; errbuf NULL or short is
 *     safe (cut, NUL-terminated); tokengate_strerror names every code;
 *   - TOKENGATE_ASYNC sets SSL_MODE_ASYNC; sign count and presence.
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

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tg_p11.h"
#include "tg_test.h"
#include "tokengate.h"

#define URI(obj) "pkcs11:token=tg-test;object=" obj "?pin-source=env:TG_EMBED_PIN"

static char p256_pem[600], p384_pem[600];

/* A self-signed certificate of pub, signed by a throw-away key (only the
 * public key matters to the API). */
static void
cert_for(const char *obj, const char *path)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	char uri[256];
	EVP_PKEY *pub, *sk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;

	tg_error_clear(&err);
	snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=%s?pin-source=env:TG_EMBED_PIN",
	         obj);
	if (tg_p11_new(&p, &err) != 0 || tg_p11_key_find(p, uri, 0, &k, &err) != 0)
		fail_msg("%s: %s", obj, err.msg);
	assert_non_null(pub = tg_p11_key_public(k));
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)obj, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_int_equal(X509_set_pubkey(x, pub), 1);
	assert_true(X509_sign(x, sk, EVP_sha256()) > 0);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(sk);
	tg_p11_key_free(k);
	tg_p11_free(p);
}

static void
test_ctx_new(void **state)
{
	SSL_CTX *c = NULL, *s = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(tokengate_ssl_ctx_new(URI("p256"), p256_pem, 0, &c, err, sizeof(err)),
	                 TOKENGATE_OK);
	assert_non_null(c);
	assert_int_equal(SSL_CTX_check_private_key(c), 1);
	assert_int_equal(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
	assert_true((SSL_CTX_get_mode(c) & SSL_MODE_ASYNC) == 0);
	assert_int_equal(tokengate_ssl_ctx_new(URI("p256"), p256_pem,
	                                       TOKENGATE_SERVER | TOKENGATE_ASYNC, &s, err,
	                                       sizeof(err)),
	                 TOKENGATE_OK);
	assert_true((SSL_CTX_get_mode(s) & SSL_MODE_ASYNC) != 0);
	assert_int_equal(SSL_CTX_check_private_key(s), 1);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void
test_configure_and_key(void **state)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method()), *c2 = SSL_CTX_new(TLS_client_method());
	tokengate_key *k = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(tokengate_ssl_ctx_configure(c, URI("p384"), p384_pem, 0, err, sizeof(err)),
	                 TOKENGATE_OK);
	assert_int_equal(SSL_CTX_check_private_key(c), 1);
	assert_int_equal(tokengate_key_open(URI("p256"), p256_pem, 0, &k, err, sizeof(err)),
	                 TOKENGATE_OK);
	assert_int_equal(tokengate_key_sign_count(k), 0);
	assert_int_equal(tokengate_key_present(k), 1);
	assert_int_equal(tokengate_key_use(k, c2, err, sizeof(err)), TOKENGATE_OK);
	assert_int_equal(tokengate_key_use(k, NULL, err, sizeof(err)), TOKENGATE_ERR_INVALID);
	assert_non_null(strstr(err, "ctx is NULL"));
	tokengate_key_free(k);
	assert_int_equal(SSL_CTX_check_private_key(c2), 1); /* c2 keeps the key */
	tokengate_key_free(NULL);
	assert_int_equal(tokengate_key_sign_count(NULL), 0);
	SSL_CTX_free(c);
	SSL_CTX_free(c2);
}

/* A refusal: its code, a message part, and no SSL_CTX. */
static void
refused(const char *uri, const char *cert, unsigned flags, int code, const char *part)
{
	SSL_CTX *c = NULL;
	char err[1024] = "";

	assert_int_equal(tokengate_ssl_ctx_new(uri, cert, flags, &c, err, sizeof(err)), code);
	assert_null(c);
	print_message("%d: %s\n", code, err);
	if (strstr(err, part) == NULL)
		fail_msg("'%s' lacks '%s'", err, part);
}

static void
test_refusals(void **state)
{
	tokengate_key *k = (tokengate_key *)1;
	char small[16];
	int i;

	(void)state;
	refused(URI("exportable"), p256_pem, TOKENGATE_ALLOW_IMPORTED, TOKENGATE_ERR_REFUSED,
	        "is refused (exportable)");
	refused(URI("p256"), p384_pem, 0, TOKENGATE_ERR_CERT, "is not the key of certificate");
	refused(URI("nokey"), p256_pem, 0, TOKENGATE_ERR_NOT_FOUND, "no private key matching");
	refused("key.pem", p256_pem, 0, TOKENGATE_ERR_INVALID, "is not a pkcs11: URI");
	refused(URI("p256"), p256_pem, 0x80, TOKENGATE_ERR_INVALID, "unknown flags");
	/* errbuf NULL, or too short: cut and terminated */
	assert_int_equal(tokengate_key_open("key.pem", NULL, 0, &k, NULL, 0),
	                 TOKENGATE_ERR_INVALID);
	assert_null(k);
	memset(small, 'x', sizeof(small));
	assert_int_equal(tokengate_key_open("key.pem", NULL, 0, &k, small, sizeof(small)),
	                 TOKENGATE_ERR_INVALID);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(tokengate_ssl_ctx_new(URI("p256"), NULL, 0, NULL, NULL, 0),
	                 TOKENGATE_ERR_INVALID);
	for (i = 0; i >= -9; i--)
		assert_true(strlen(tokengate_strerror(i)) > 0);
	assert_string_equal(tokengate_strerror(TOKENGATE_ERR_REFUSED),
	                    "the key fails the trust check");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ctx_new),
	    cmocka_unit_test(test_configure_and_key),
	    cmocka_unit_test(test_refusals),
	};
	const char *tmp = tg_test_getenv("TG_TMP");

	setenv("TG_EMBED_PIN", tg_test_require_env("TG_SOFTHSM_PIN"), 1);
	unsetenv("TOKENGATE_PIN");
	snprintf(p256_pem, sizeof(p256_pem), "%s/embed-p256.pem", tmp != NULL ? tmp : "/tmp");
	snprintf(p384_pem, sizeof(p384_pem), "%s/embed-p384.pem", tmp != NULL ? tmp : "/tmp");
	cert_for("p256", p256_pem);
	cert_for("p384", p384_pem);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
