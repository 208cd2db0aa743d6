/*
 * test_tlskey_softhsm.c — the token key for TLS (tg_tlskey.h) on SoftHSM2
 * (run under tests/lib/with-softhsm.sh: token tg-test, PIN 1234, keys p256,
 * p384, rsa2048 generated on the token, exportable/04 exportable).
 *
 * Certificates for the token keys come from a software CA made here; the
 * p256 key's certificate is also stored on the token. Each handshake is a
 * TLS 1.3 client (the token key) against an in-memory server that requires
 * and verifies a client certificate, both driven over a BIO pair:
 *   - open with a PEM certificate and with the token's; a handshake signs
 *     once (tg_tlskey_sign_count 0 -> 1); the SSL_CTX outlives the key;
 *   - ASYNC: the signature pauses the handshake (SSL_ERROR_WANT_ASYNC, its
 *     wait fd) and is counted, ECDSA and RSA-PSS;
 *   - refusals: an exportable key (the trust check's reason), a
 *     certificate of another key, no certificate on the token, not a URI;
 *   - presence (WATCH) through p11_watch_wrap (SoftHSM2 behind a module
 *     that hides the token on demand): REMOVED on the event fd, handshakes
 *     fail without reaching the token, INSERTED, and the SSL_CTX configured
 *     before the removal handshakes again.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tg_p11.h"
#include "tg_test.h"
#include "tg_test_tls.h"
#include "tg_tlskey.h"

#define PIN_ENV  "TG_TLSKEY_PIN"
#define URI(obj) "pkcs11:token=tg-test;object=" obj "?pin-source=env:" PIN_ENV
#define WRAP_URI                                                                                   \
	"pkcs11:token=tg-test;object=p256?module-path=" TG_P11_WATCH_WRAP_PATH                     \
	"&pin-source=env:" PIN_ENV

static EVP_PKEY *ca_key;
static X509 *ca_cert;
static char dir[512], p256_pem[600], p384_pem[600], rsa_pem[600], ctl_dir[600];

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

static X509 *
cert_make(EVP_PKEY *pub, const char *cn, EVP_PKEY *signer, X509 *issuer)
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
	if (issuer == NULL) { /* the CA */
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

static void
pem_write(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

/*
 * The CA, and certificates of p256, p384 and rsa2048 in PEM files; the
 * p256 one stored on the token too. Uses its own libtgp11 context, freed
 * before any tg_tlskey (one context at a time).
 */
static void
certs_setup(void)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	const char *objs[] = {"p256", "p384", "rsa2048"};
	char *paths[] = {p256_pem, p384_pem, rsa_pem};
	char uri[256];
	EVP_PKEY *pub;
	X509 *x;
	size_t i;

	tg_error_clear(&err);
	ca_key = EVP_EC_gen("P-256");
	assert_non_null(ca_key);
	ca_cert = cert_make(ca_key, "tlskey test CA", ca_key, NULL);
	if (tg_p11_new(&p, &err) != 0)
		fail_msg("tg_p11_new: %s", err.msg);
	for (i = 0; i < 3; i++) {
		snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=%s?pin-source=env:%s",
		         objs[i], PIN_ENV);
		if (tg_p11_key_find(p, uri, 0, &k, &err) != 0)
			fail_msg("find %s: %s", objs[i], err.msg);
		assert_non_null(pub = tg_p11_key_public(k));
		x = cert_make(pub, objs[i], ca_key, ca_cert);
		pem_write(paths[i], x);
		if (i == 0 && tg_p11_key_cert_import(k, x, NULL, 1, &err) != 0)
			fail_msg("import-cert: %s", err.msg);
		X509_free(x);
		EVP_PKEY_free(pub);
		tg_p11_key_free(k);
	}
	tg_p11_free(p);
}

/* ------------------------------------------------------------------ */
/* A handshake                                                         */
/* ------------------------------------------------------------------ */

/* The server: a software key, a client certificate required and verified
 * against the test CA. */
static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x;

	assert_non_null(c);
	assert_non_null(k);
	x = cert_make(k, "server", ca_key, ca_cert);
	assert_int_equal(SSL_CTX_use_certificate(c, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(c, k), 1);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), ca_cert), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	assert_non_null(c);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

/*
 * One handshake of a client on cctx against a new server; 1 when both
 * sides finished and the server verified the client's certificate (the
 * token key's, *peer_cn its CN), 0 when it failed. *pauses counts the
 * client's WANT_ASYNC returns (each waited for on the job's wait fd).
 */
static int
handshake(SSL_CTX *cctx, int *pauses, char *peer_cn, size_t cn_cap)
{
	SSL_CTX *sctx = server_ctx();
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	int r[2], ok = 0;
	X509 *peer;

	assert_non_null(c);
	assert_non_null(s);
	if (!tg_test_tls_handshake(c, s, 10000, pauses, r)) {
		print_message("handshake failed: client %d, server %d, verify %ld: ", r[0], r[1],
		              SSL_get_verify_result(s));
		ERR_print_errors_fp(stdout);
	}
	ERR_clear_error();
	if (r[0] == 1 && r[1] == 1 && (peer = SSL_get0_peer_certificate(s)) != NULL &&
	    SSL_get_verify_result(s) == X509_V_OK) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, peer_cn,
		                          (int)cn_cap);
		ok = 1;
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(sctx);
	return ok;
}

/* The options of a client key at uri with cert and flags; *err cleared. */
static void
client_opts(struct tg_tlskey_opts *o, const char *uri, const char *cert, unsigned flags,
            struct tg_error *err)
{
	memset(o, 0, sizeof(*o));
	tg_error_clear(err);
	o->key_uri = uri;
	o->cert = cert;
	o->flags = flags;
	o->role = "client";
}

/* A client SSL_CTX with the key at uri, cert, flags; the key in *out. */
static SSL_CTX *
client_with(const char *uri, const char *cert, unsigned flags, struct tg_tlskey **out)
{
	struct tg_tlskey_opts o;
	struct tg_error err;
	SSL_CTX *c = client_ctx();

	client_opts(&o, uri, cert, flags, &err);
	o.watch_ms = 10;
	if (tg_tlskey_open(&o, out, &err) != 0)
		fail_msg("tg_tlskey_open %s: %s", uri, err.msg);
	if (tg_tlskey_ssl_ctx_use(*out, c, &err) != 0)
		fail_msg("tg_tlskey_ssl_ctx_use: %s", err.msg);
	return c;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* Inline: a PEM certificate, one signature per full handshake, no pause;
 * the SSL_CTX keeps working after tg_tlskey_free. */
static void
test_pem_inline(void **state)
{
	struct tg_tlskey *k = NULL;
	SSL_CTX *c = client_with(URI("p256"), p256_pem, 0, &k);
	char cn[64] = "";
	int pauses = -1;

	(void)state;
	assert_int_equal(tg_tlskey_sign_count(k), 0);
	assert_int_equal(tg_tlskey_present(k), 1);
	assert_int_equal(tg_tlskey_event_fd(k), -1);
	assert_non_null(strstr(tg_tlskey_uri(k), "object=p256"));
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	assert_string_equal(cn, "p256");
	assert_int_equal(pauses, 0);
	assert_int_equal(tg_tlskey_sign_count(k), 1);
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	assert_int_equal(tg_tlskey_sign_count(k), 2);
	tg_tlskey_free(k);
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	SSL_CTX_free(c);
}

/* The certificate from the token: cert NULL and a pkcs11: URI. */
static void
test_token_cert(void **state)
{
	struct tg_tlskey *k = NULL;
	SSL_CTX *c = client_with(URI("p256"), NULL, 0, &k);
	char cn[64] = "";
	int pauses;

	(void)state;
	assert_non_null(tg_tlskey_cert(k));
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	assert_string_equal(cn, "p256");
	tg_tlskey_free(k);
	SSL_CTX_free(c);
	c = client_with(URI("p256"), "pkcs11:token=tg-test;object=p256;type=cert", 0, &k);
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	tg_tlskey_free(k);
	SSL_CTX_free(c);
}

/* ASYNC: the signature pauses the handshake and is counted once. */
static void
test_async(void **state)
{
	const char *objs[] = {"p256", "rsa2048"};
	const char *pems[] = {p256_pem, rsa_pem};
	struct tg_tlskey *k = NULL;
	SSL_CTX *c;
	char cn[64] = "";
	int pauses, i;

	(void)state;
	for (i = 0; i < 2; i++) {
		char uri[256];

		snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=%s?pin-source=env:%s",
		         objs[i], PIN_ENV);
		c = client_with(uri, pems[i], TG_TLSKEY_ASYNC, &k);
		assert_true((SSL_CTX_get_mode(c) & SSL_MODE_ASYNC) != 0);
		assert_true(handshake(c, &pauses, cn, sizeof(cn)));
		assert_string_equal(cn, objs[i]);
		print_message("%s: %d pause(s)\n", objs[i], pauses);
		assert_true(pauses >= 1);
		assert_int_equal(tg_tlskey_sign_count(k), 1);
		tg_tlskey_free(k);
		SSL_CTX_free(c);
	}
}

/* open's refusal: code and a message part. */
static void
refused(const char *uri, const char *cert, unsigned flags, int code, const char *part)
{
	struct tg_tlskey_opts o;
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	int r;

	client_opts(&o, uri, cert, flags, &err);
	r = tg_tlskey_open(&o, &k, &err);
	print_message("refused: %s\n", err.msg);
	assert_int_equal(r, code);
	assert_null(k);
	if (strstr(err.msg, part) == NULL)
		fail_msg("'%s' lacks '%s'", err.msg, part);
}

static void
test_refusals(void **state)
{
	(void)state;
	/* an exportable key, even for a service key */
	refused(URI("exportable"), p256_pem, 0, TG_ERR_KEY_EXPORTABLE, "exportable");
	refused(URI("exportable"), p256_pem, TG_TLSKEY_ALLOW_IMPORTED, TG_ERR_KEY_EXPORTABLE,
	        "client key: ");
	/* another key's certificate */
	refused(URI("p256"), p384_pem, 0, TG_ERR_CERT_MISMATCH,
	        "is not the key of client certificate");
	/* no certificate on the token for rsa2048 */
	refused(URI("rsa2048"), NULL, 0, TG_ERR_NOT_FOUND, "client certificate 'from the token'");
	/* a PEM file that is not there, or holds no certificate */
	refused(URI("p256"), "/nonexistent/cert.pem", 0, TG_ERR_IO, "cannot be read");
	refused(URI("p256"), "/dev/null", 0, TG_ERR_CONFIG, "holds no PEM certificate");
	/* a key that is not on a token */
	refused("/tmp/key.pem", p256_pem, 0, TG_ERR_INVALID_ARG, "is not a pkcs11: URI");
	refused("pkcs11/token=x?pin-value=55555", p256_pem, 0, TG_ERR_INVALID_ARG,
	        "client key 'pkcs11/token=x?pin-value=***' is not a pkcs11: URI");
	/* no such key */
	refused(URI("nokey"), NULL, 0, TG_ERR_KEY_NOT_FOUND, "client key: ");
}

/* The message of a refused pin-value URI never carries the PIN. */
static void
test_pin_masked(void **state)
{
	struct tg_tlskey_opts o;
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	const char *pin = tg_test_require_env("TG_SOFTHSM_PIN");
	char uri[256];

	(void)state;
	memset(&o, 0, sizeof(o));
	tg_error_clear(&err);
	snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=p256?pin-value=%s", pin);
	o.key_uri = uri;
	o.cert = p384_pem;
	assert_int_equal(tg_tlskey_open(&o, &k, &err), TG_ERR_CERT_MISMATCH);
	assert_null(strstr(err.msg, pin));
	assert_non_null(strstr(err.msg, "pin-value=***"));
}

/* ---- presence through p11_watch_wrap ------------------------------ */

static void
ctl(const char *name, int on)
{
	assert_int_equal(tg_test_switch(ctl_dir, name, on), 0);
}

/* Waits (poll on the event fd, 10 s) for the next event. */
static void
next_event(struct tg_tlskey *k, enum tg_tlskey_event want, const char *part)
{
	struct pollfd pfd = {.fd = tg_tlskey_event_fd(k), .events = POLLIN};
	enum tg_tlskey_event ev;
	char msg[512];

	assert_true(pfd.fd >= 0);
	if (poll(&pfd, 1, 10000) != 1)
		fail_msg("no event %d within 10 s", (int)want);
	assert_int_equal(tg_tlskey_event_next(k, &ev, msg, sizeof(msg)), 1);
	print_message("event %d: %s\n", (int)ev, msg);
	assert_int_equal(ev, want);
	if (strstr(msg, part) == NULL)
		fail_msg("event message '%s' lacks '%s'", msg, part);
	/* drained: not readable any more */
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 0), 0);
}

static void
test_presence(void **state)
{
	struct tg_tlskey *k = NULL;
	SSL_CTX *c;
	char cn[64] = "";
	enum tg_tlskey_event ev;
	int pauses;

	(void)state;
	ctl("absent", 0);
	ctl("drop-login", 1);
	c = client_with(WRAP_URI, p256_pem, TG_TLSKEY_ASYNC | TG_TLSKEY_WATCH, &k);
	assert_true(tg_tlskey_event_fd(k) >= 0);
	assert_int_equal(tg_tlskey_event_next(k, &ev, NULL, 0), 0);
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	assert_int_equal(tg_tlskey_sign_count(k), 1);
	ctl("absent", 1);
	next_event(k, TG_TLSKEY_EV_REMOVED, "removed");
	assert_int_equal(tg_tlskey_present(k), 0);
	/* fails fast: no pause, nothing reaches the token */
	assert_false(handshake(c, &pauses, cn, sizeof(cn)));
	assert_int_equal(pauses, 0);
	assert_int_equal(tg_tlskey_sign_count(k), 1);
	ctl("absent", 0);
	next_event(k, TG_TLSKEY_EV_INSERTED, "signs again");
	assert_int_equal(tg_tlskey_present(k), 1);
	/* the SSL_CTX configured before the removal works again */
	assert_true(handshake(c, &pauses, cn, sizeof(cn)));
	assert_true(pauses >= 1);
	assert_int_equal(tg_tlskey_sign_count(k), 2);
	ctl("drop-login", 0);
	tg_tlskey_free(k);
	SSL_CTX_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pem_inline), cmocka_unit_test(test_token_cert),
	    cmocka_unit_test(test_async),      cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_pin_masked), cmocka_unit_test(test_presence),
	};
	const char *tmp = tg_test_getenv("TG_TMP");

	setenv(PIN_ENV, tg_test_require_env("TG_SOFTHSM_PIN"), 1);
	unsetenv("TOKENGATE_PIN");
	snprintf(dir, sizeof(dir), "%s", tmp != NULL ? tmp : "/tmp");
	snprintf(p256_pem, sizeof(p256_pem), "%s/tlskey-p256.pem", dir);
	snprintf(p384_pem, sizeof(p384_pem), "%s/tlskey-p384.pem", dir);
	snprintf(rsa_pem, sizeof(rsa_pem), "%s/tlskey-rsa2048.pem", dir);
	snprintf(ctl_dir, sizeof(ctl_dir), "%s/tlskey-wrap-ctl", dir);
	(void)mkdir(ctl_dir, 0700);
	setenv("TG_WATCH_WRAP_CTL", ctl_dir, 1);
	setenv("TG_WATCH_WRAP_REAL", tg_test_require_env("TG_SOFTHSM2_MODULE"), 1);
	certs_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
