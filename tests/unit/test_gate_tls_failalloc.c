/*
 * test_gate_tls_failalloc.c — the gate's server TLS set-up (host/gate/tls.c)
 * under allocation failure (tg_test_failalloc.h): every allocation of
 * tg_gate_tls_new (certificate with its chain, key, client CA, CRL, ticket
 * key file), of a refused set-up (a key that is not the certificate's), of
 * the CRL reload and of a connection's SSL made to fail in turn. Each run
 * fails cleanly with a message (or absorbs the failure with the same
 * result); a refusal never turns into a success; nothing is handed out on
 * failure (*out stays NULL, *reloaded 0).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gate_authz_pki.h"
#include "tg_gate_tls.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

/* 80 bytes 0x00..0x4f in base64: one session-ticket key */
#define TICKET_KEY                                                                                 \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"     \
	"P0BBQkNERUZHSElKS0xNTk8="

static struct {
	char dir[64];
	char ca[128], crl[128], chain[128], key[128], other_key[128], tickets[128];
	const char *client_ca[1];
	struct tg_gate_tls_cfg cfg;
	struct tg_gate_tls *t; /* for the reload and the SSL */
} fx;

static void
write_str(const char *path, const char *s, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(s, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey)
{
	X509 *x = X509_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), issuer != NULL ? 2 : 1), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                            -1, 0),
	                 1);
	assert_int_equal(
	    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
key_out(const char *path, EVP_PKEY *k)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

static int
setup(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ik = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *issuer, *leaf;
	FILE *fp;

	(void)state;
	assert_true(k != NULL && k2 != NULL && ik != NULL);
	assert_int_equal(tg_test_tmpdir("tg-gate-tls-fa", fx.dir, sizeof(fx.dir)), 0);
	snprintf(fx.ca, sizeof(fx.ca), "%s/ca.pem", fx.dir);
	snprintf(fx.crl, sizeof(fx.crl), "%s/crl.pem", fx.dir);
	snprintf(fx.chain, sizeof(fx.chain), "%s/chain.pem", fx.dir);
	snprintf(fx.key, sizeof(fx.key), "%s/server.key", fx.dir);
	snprintf(fx.other_key, sizeof(fx.other_key), "%s/other.key", fx.dir);
	snprintf(fx.tickets, sizeof(fx.tickets), "%s/tickets", fx.dir);
	write_str(fx.ca, GA_CA_PEM, 0644);
	write_str(fx.crl, GA_CRL_PEM, 0644);
	write_str(fx.tickets, TICKET_KEY "\n", 0600);
	issuer = make_cert("gate-issuer", ik, NULL, NULL);
	leaf = make_cert("gate", k, issuer, ik);
	assert_non_null(fp = fopen(fx.chain, "w"));
	assert_int_equal(PEM_write_X509(fp, leaf), 1);
	assert_int_equal(PEM_write_X509(fp, issuer), 1);
	assert_int_equal(fclose(fp), 0);
	key_out(fx.key, k);
	key_out(fx.other_key, k2);
	X509_free(issuer);
	X509_free(leaf);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(ik);
	fx.client_ca[0] = fx.ca;
	fx.cfg.cert = fx.chain;
	fx.cfg.key = fx.key;
	fx.cfg.client_ca = fx.client_ca;
	fx.cfg.nclient_ca = 1;
	fx.cfg.crl = fx.crl;
	fx.cfg.tickets = fx.tickets;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_test_tmpdir_remove(fx.dir);
	return 0;
}

/* The whole set-up; on success the chain is there. */
static int
op_new(void *ctx, struct tg_error *err)
{
	const struct tg_gate_tls_cfg *cfg = ctx;
	struct tg_gate_tls *t = NULL;
	STACK_OF(X509) *extra = NULL;
	int r;

	r = tg_gate_tls_new(cfg, &t, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_non_null(t);
		assert_int_equal(SSL_CTX_get0_chain_certs(tg_gate_tls_ctx(t), &extra), 1);
		assert_non_null(extra);
		assert_int_equal(sk_X509_num(extra), 1);
	} else {
		assert_null(t);
	}
	tg_gate_tls_unref(t);
	return r;
}

static int
op_reload(void *ctx, struct tg_error *err)
{
	int reloaded = -1, r;

	(void)ctx;
	r = tg_gate_tls_crl_reload(fx.t, 1, &reloaded, err);
	tg_failalloc_hold(1);
	assert_int_equal(reloaded, r == 0 ? 1 : 0);
	return r;
}

/* tg_gate_tls_ssl_new's contract: an SSL, or NULL on OOM (no message of
 * its own: the caller's is "out of memory"). */
static int
op_ssl(void *ctx, struct tg_error *err)
{
	SSL *ssl;
	int r = 0;

	(void)ctx;
	ssl = tg_gate_tls_ssl_new(fx.t);
	tg_failalloc_hold(1);
	if (ssl == NULL)
		r = tg_error_set(err, TG_ERR_ALLOC, "tg_gate_tls_ssl_new: out of memory");
	SSL_free(ssl);
	return r;
}

static void
test_new(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("gate tls new", op_new, &fx.cfg) > 0);
}

static void
test_new_refused(void **state)
{
	struct tg_gate_tls_cfg c = fx.cfg;

	(void)state;
	c.key = fx.other_key;
	assert_true(tg_failalloc_sweep("gate tls new, key of another certificate", op_new, &c) > 0);
}

static void
test_reload_and_ssl(void **state)
{
	struct tg_error err;

	(void)state;
	tg_failalloc_hold(1);
	assert_int_equal(tg_gate_tls_new(&fx.cfg, &fx.t, &err), 0);
	tg_failalloc_hold(0);
	assert_true(tg_failalloc_sweep("gate tls crl reload", op_reload, NULL) > 0);
	assert_true(tg_failalloc_sweep("gate tls ssl new", op_ssl, NULL) > 0);
	tg_failalloc_hold(1);
	tg_gate_tls_unref(fx.t);
	fx.t = NULL;
	tg_failalloc_hold(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new),
	    cmocka_unit_test(test_new_refused),
	    cmocka_unit_test(test_reload_and_ssl),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
