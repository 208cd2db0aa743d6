/*
 * test_gate_tls.c — the gate's server TLS set-up (host/gate/tls.c) from a
 * configuration struct, on files the test writes: a good PEM certificate
 * (with its chain) and key, session tickets from a key file; each refusal
 * with its code and message (no certificate or key, a pkcs11: certificate
 * with a PEM key, a key that is not the certificate's, a key file readable
 * by others, a certificate OpenSSL refuses as too weak, a bad ticket key
 * file); the CRL reload (unchanged, forced, changed, unreadable, not a CRL:
 * the old CRL stays); and the handshake's waits (tg_gate_hs_io_wait) on a
 * real event loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gate_authz_pki.h"
#include "tg_gate_tls.h"
#include "tg_test.h"

/* 80 bytes 0x00..0x4f in base64: one session-ticket key */
#define TICKET_KEY                                                                                 \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"     \
	"P0BBQkNERUZHSElKS0xNTk8="

struct fx {
	char dir[64];
	char ca[128], crl[128], cert[128], key[128], other_key[128], chain[128], weak_cert[128],
	    weak_key[128], tickets[128];
	const char *client_ca[1];
	struct tg_gate_tls_cfg cfg;
};

static void
path_of(const struct fx *f, char *out, size_t n, const char *name)
{
	assert_true(snprintf(out, n, "%s/%s", f->dir, name) < (int)n);
}

static void
write_file(const char *path, const char *data, size_t n, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
write_str(const char *path, const char *s, mode_t mode)
{
	write_file(path, s, strlen(s), mode);
}

/* A certificate for key, CN cn, issued by ikey (issuer NULL: self-signed). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca)
{
	static long serial = 100;
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                            -1, 0),
	                 1);
	assert_int_equal(
	    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	                        ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
pem_out(const char *path, X509 *const *certs, size_t ncerts, EVP_PKEY *key)
{
	FILE *fp = fopen(path, "w");
	size_t i;

	assert_non_null(fp);
	for (i = 0; i < ncerts; i++)
		assert_int_equal(PEM_write_X509(fp, certs[i]), 1);
	if (key != NULL)
		assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ik = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *wk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	X509 *self, *issuer, *leaf, *weak, *chain[2];

	assert_non_null(f);
	assert_true(k != NULL && k2 != NULL && ik != NULL && wk != NULL);
	assert_int_equal(tg_test_tmpdir("tg-gate-tls", f->dir, sizeof(f->dir)), 0);
	path_of(f, f->ca, sizeof(f->ca), "ca.pem");
	path_of(f, f->crl, sizeof(f->crl), "crl.pem");
	path_of(f, f->cert, sizeof(f->cert), "server.pem");
	path_of(f, f->key, sizeof(f->key), "server.key");
	path_of(f, f->other_key, sizeof(f->other_key), "other.key");
	path_of(f, f->chain, sizeof(f->chain), "chain.pem");
	path_of(f, f->weak_cert, sizeof(f->weak_cert), "weak.pem");
	path_of(f, f->weak_key, sizeof(f->weak_key), "weak.key");
	path_of(f, f->tickets, sizeof(f->tickets), "tickets");
	write_str(f->ca, GA_CA_PEM, 0644);
	write_str(f->crl, GA_CRL_PEM, 0644);
	self = make_cert("gate", k, NULL, NULL, 0);
	issuer = make_cert("gate-issuer", ik, NULL, NULL, 1);
	leaf = make_cert("gate", k, issuer, ik, 0);
	weak = make_cert("weak", wk, NULL, NULL, 0);
	pem_out(f->cert, &self, 1, NULL);
	pem_out(f->key, NULL, 0, k);
	pem_out(f->other_key, NULL, 0, k2);
	chain[0] = leaf;
	chain[1] = issuer;
	pem_out(f->chain, chain, 2, NULL);
	pem_out(f->weak_cert, &weak, 1, NULL);
	pem_out(f->weak_key, NULL, 0, wk);
	write_str(f->tickets, "# one key\n" TICKET_KEY "\n", 0600);
	X509_free(self);
	X509_free(issuer);
	X509_free(leaf);
	X509_free(weak);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(wk);
	f->client_ca[0] = f->ca;
	f->cfg.cert = f->cert;
	f->cfg.key = f->key;
	f->cfg.client_ca = f->client_ca;
	f->cfg.nclient_ca = 1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tg_test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* tg_gate_tls_new on cfg: its code; on failure *out stays NULL. */
static int
tls_new(const struct tg_gate_tls_cfg *cfg, struct tg_gate_tls **out, struct tg_error *err)
{
	int r;

	*out = NULL;
	tg_error_clear(err);
	r = tg_gate_tls_new(cfg, out, err);
	if (r != 0)
		assert_null(*out);
	ERR_clear_error();
	return r;
}

static void
test_good(void **state)
{
	struct fx *f = *state;
	struct tg_gate_tls *t;
	struct tg_gate_peer_info peer;
	struct tg_error err;
	STACK_OF(X509) *extra = NULL;
	X509 *mine = NULL;
	SSL *ssl;
	FILE *fp;
	int resumed = -1;

	/* a self-signed certificate, per-process ticket keys */
	assert_int_equal(tls_new(&f->cfg, &t, &err), 0);
	assert_int_equal(tg_gate_tls_async(t), 0);
	assert_non_null(fp = fopen(f->cert, "r"));
	assert_non_null(mine = PEM_read_X509(fp, NULL, NULL, NULL));
	fclose(fp);
	assert_int_equal(X509_cmp(SSL_CTX_get0_certificate(tg_gate_tls_ctx(t)), mine), 0);
	X509_free(mine);
	assert_int_equal(SSL_CTX_get0_chain_certs(tg_gate_tls_ctx(t), &extra), 1);
	assert_int_equal(extra != NULL ? sk_X509_num(extra) : 0, 0);
	/* a fresh connection: no verified peer yet, and the reason of a
	 * handshake that never began */
	assert_non_null(ssl = tg_gate_tls_ssl_new(t));
	assert_int_equal(tg_gate_tls_peer(ssl, &peer, &resumed), TG_ERR_INTERNAL);
	assert_int_equal(resumed, -1);
	assert_string_equal(tg_gate_tls_reject_reason(ssl),
	                    "TLS handshake failed: the client closed the connection or sent no "
	                    "valid TLS");
	SSL_free(ssl);
	tg_gate_tls_unref(t);

	/* a certificate with its issuer after it: the chain is sent; tickets
	 * from a key file */
	f->cfg.cert = f->chain;
	f->cfg.tickets = f->tickets;
	assert_int_equal(tls_new(&f->cfg, &t, &err), 0);
	extra = NULL;
	assert_int_equal(SSL_CTX_get0_chain_certs(tg_gate_tls_ctx(t), &extra), 1);
	assert_non_null(extra);
	assert_int_equal(sk_X509_num(extra), 1);
	tg_gate_tls_unref(t);
	tg_gate_tls_unref(NULL);
}

static void
test_refused(void **state)
{
	struct fx *f = *state;
	struct tg_gate_tls_cfg c;
	struct tg_gate_tls *t;
	struct tg_error err;
	char path[512];

	c = f->cfg;
	c.key = NULL;
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_CONFIG);
	assert_string_equal(err.msg, "no server certificate or key; give both (PEM files or a "
	                             "pkcs11: URI)");
	c = f->cfg;
	c.cert = NULL;
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "no server certificate or key"));

	c = f->cfg;
	c.cert = "pkcs11:token=gate;object=server";
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "server certificate 'pkcs11:token=gate;object=server' is a "
	                                "pkcs11: URI but the key"));
	assert_non_null(strstr(err.msg, "a token's certificate goes with its token key"));

	/* the key of another certificate */
	c = f->cfg;
	c.key = f->other_key;
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_CONFIG);
	snprintf(path, sizeof(path),
	         "server key '%s' is not the key of server certificate '%s'; give the "
	         "certificate issued for that key",
	         f->other_key, f->cert);
	assert_string_equal(err.msg, path);

	/* a key file others may read */
	assert_int_equal(chmod(f->key, 0644), 0);
	assert_int_equal(tls_new(&f->cfg, &t, &err), TG_ERR_PERMISSION);
	assert_non_null(strstr(err.msg, f->key));
	assert_non_null(strstr(err.msg, "chmod"));
	assert_int_equal(chmod(f->key, 0600), 0);

	/* a key path that is a directory */
	c = f->cfg;
	c.key = f->dir;
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_IO);
	snprintf(path, sizeof(path), "server key '%s' is not a regular file", f->dir);
	assert_non_null(strstr(err.msg, path));

	/* a 512-bit RSA certificate: OpenSSL's security level refuses it */
	c = f->cfg;
	c.cert = f->weak_cert;
	c.key = f->weak_key;
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_TLS);
	snprintf(path, sizeof(path),
	         "server certificate '%s' cannot be used for TLS (OpenSSL refuses it, e.g. "
	         "its key is too weak)",
	         f->weak_cert);
	assert_string_equal(err.msg, path);

	/* a ticket key file that is not one */
	snprintf(path, sizeof(path), "%s/bad-tickets", f->dir);
	write_str(path, "not base64 at all\n", 0600);
	c = f->cfg;
	c.tickets = path;
	assert_int_equal(tls_new(&c, &t, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "bad-tickets line 1:"));
	/* nothing was left behind by the refusals: the good set-up still works */
	assert_int_equal(tls_new(&f->cfg, &t, &err), 0);
	tg_gate_tls_unref(t);
}

static void
test_crl_reload(void **state)
{
	struct fx *f = *state;
	struct tg_gate_tls_cfg c = f->cfg;
	struct tg_gate_tls *t;
	struct tg_error err;
	int reloaded;

	/* without a CRL there is nothing to reload */
	assert_int_equal(tls_new(&c, &t, &err), 0);
	reloaded = -1;
	assert_int_equal(tg_gate_tls_crl_reload(t, 1, &reloaded, &err), 0);
	assert_int_equal(reloaded, 0);
	tg_gate_tls_unref(t);

	c.crl = f->crl;
	assert_int_equal(tls_new(&c, &t, &err), 0);
	/* unchanged: not loaded again, unless forced */
	reloaded = -1;
	assert_int_equal(tg_gate_tls_crl_reload(t, 0, &reloaded, &err), 0);
	assert_int_equal(reloaded, 0);
	assert_int_equal(tg_gate_tls_crl_reload(t, 1, &reloaded, &err), 0);
	assert_int_equal(reloaded, 1);
	/* a new file (another size): loaded; then unchanged again */
	write_str(f->crl, GA_CRL_PEM "\n", 0644);
	assert_int_equal(tg_gate_tls_crl_reload(t, 0, &reloaded, &err), 0);
	assert_int_equal(reloaded, 1);
	assert_int_equal(tg_gate_tls_crl_reload(t, 0, &reloaded, &err), 0);
	assert_int_equal(reloaded, 0);
	/* not a CRL: refused, the old one stays */
	write_str(f->crl, "no CRL in here\n", 0644);
	tg_error_clear(&err);
	reloaded = -1;
	assert_int_equal(tg_gate_tls_crl_reload(t, 0, &reloaded, &err), TG_ERR_CONFIG);
	assert_int_equal(reloaded, 0);
	assert_non_null(strstr(err.msg, "holds no CRL (PEM or DER)"));
	/* gone: refused naming the file */
	assert_int_equal(unlink(f->crl), 0);
	tg_error_clear(&err);
	reloaded = -1;
	assert_int_equal(tg_gate_tls_crl_reload(t, 1, &reloaded, &err), TG_ERR_IO);
	assert_int_equal(reloaded, 0);
	assert_non_null(strstr(err.msg, "cannot read the CRL file '"));
	assert_non_null(strstr(err.msg, "No such file or directory"));
	assert_non_null(strstr(err.msg, "new CRL refused, the previous one stays in use"));
	/* back: loaded again */
	write_str(f->crl, GA_CRL_PEM, 0644);
	assert_int_equal(tg_gate_tls_crl_reload(t, 0, &reloaded, &err), 0);
	assert_int_equal(reloaded, 1);
	tg_gate_tls_unref(t);
}

struct steps {
	int n;
};

static void
step(void *arg)
{
	((struct steps *)arg)->n++;
}

static void
test_hs_io(void **state)
{
	struct fx *f = *state;
	struct tg_gate_tls *t;
	struct tg_gate_hs_io io;
	struct tg_error err;
	struct event_base *base = event_base_new();
	struct steps s = {0};
	int sv[2];
	SSL *ssl;

	assert_non_null(base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(tls_new(&f->cfg, &t, &err), 0);
	assert_non_null(ssl = tg_gate_tls_ssl_new(t));
	memset(&io, 0, sizeof(io));
	assert_int_equal(tg_gate_hs_io_init(&io, ssl, sv[0], base, step, &s), 0);
	/* writable: the step runs once */
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_WANT_WRITE), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(s.n, 1);
	/* no async job free: the step runs again after the retry timer, twice */
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_WANT_ASYNC_JOB), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(s.n, 2);
	assert_non_null(io.retry);
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_WANT_ASYNC_JOB), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(s.n, 3);
	/* WANT_ASYNC with no paused job (no wait fds): out, nothing waited on */
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_WANT_ASYNC), -1);
	assert_int_equal(io.aw.n, 0);
	assert_null(io.aw.ev);
	/* readable: the peer writes a byte */
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_WANT_READ), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(s.n, 4);
	/* no wait: done or failed */
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_NONE), 1);
	assert_int_equal(tg_gate_hs_io_wait(&io, SSL_ERROR_SSL), 1);
	tg_gate_hs_io_free(&io);
	assert_null(io.rd);
	assert_null(io.wr);
	assert_null(io.retry);
	tg_gate_hs_io_free(&io); /* an empty one again */
	SSL_free(ssl);
	tg_gate_tls_unref(t);
	close(sv[0]);
	close(sv[1]);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crl_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hs_io, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
