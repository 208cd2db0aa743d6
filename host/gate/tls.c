/*
 * tls.c — the gate's server TLS (tg_gate_tls.h).
 *
 * Each SSL made by tg_gate_tls_ssl_new carries a struct conn (SSL ex_data):
 * the reference to its tg_gate_tls, the verified client once the
 * certificate callback (full handshake) or the ticket callback (resumption)
 * accepted it, and the reason of a refusal. The ex_data free callback
 * drops the reference when the SSL is freed.
 *
 * Sessions are stateless only (no server-side cache): tickets encrypted
 * with the ticket key file's first key (or the process's own key), so
 * gates sharing the file resume each other's sessions. A resumed session
 * is never trusted as it was: its client certificate is verified again
 * with the current verifier (CA, CRL, time) before the ticket is accepted,
 * and a session's lifetime is cut to its certificate's remaining life.
 */
#include "tg_gate_tls.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tg_ca_io.h"
#include "tg_file.h"
#include "tg_tlskey.h"
#include "tg_secret.h"
#include "tls-int.h"

/* TLS 1.2 suites: forward secret, AEAD only (TLS 1.3 keeps OpenSSL's). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Same on every gate: a session of one gate resumes on another. */
#define TLS_SID_CTX "tokengate-gate"
/* Longest a session lives (seconds), before the certificate's own limit. */
#define TLS_SESSION_LIFETIME 7200
#define TLS_KEY_FILE_MAX     (64 * 1024)
#define TLS_REASON_MAX       512
#define NO_CERT_REASON       "no client certificate: the gate requires a token-backed client certificate"

struct tg_gate_tls {
	atomic_int refs;
	SSL_CTX *ctx;
	struct tg_gate_verify *verify;
	char *crl;                             /* path, NULL when none */
	struct stat crl_st;                    /* of the CRL file last loaded */
	struct tg_gate_tickets own;            /* the ticket key file's keys (may be empty) */
	const struct tg_gate_tickets *tickets; /* &own or the process's key */
	int async;
};

/*
 * One connection's TLS state (SSL ex_data). The verified client is on the
 * heap only from its verification until tg_gate_tls_peer hands it over
 * (the connection keeps its own copy): an idle connection does not hold it
 * twice.
 */
struct conn {
	struct tg_gate_tls *t;          /* a reference */
	struct tg_gate_peer_info *peer; /* NULL before verification and after */
	int have_peer;
	int refused;  /* reason is final */
	char *reason; /* why the client was refused (heap, only on a refusal) */
	char *resume; /* why its session was not resumed (heap, idem) */
};

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_idx = -1;

/* Wipes and frees c's verified client. */
static void
peer_drop(struct conn *c)
{
	if (c->peer != NULL)
		tg_freezero(c->peer, sizeof(*c->peer));
	c->peer = NULL;
	c->have_peer = 0;
}

/* c->peer, allocated when it is not yet: NULL on OOM. */
static struct tg_gate_peer_info *
peer_slot(struct conn *c)
{
	if (c->peer == NULL)
		c->peer = calloc(1, sizeof(*c->peer));
	return c->peer;
}

static void
conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct conn *c = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (c != NULL) {
		tg_gate_tls_unref(c->t);
		peer_drop(c);
		free(c->reason);
		free(c->resume);
		tg_freezero(c, sizeof(*c));
	}
}

static void
ex_init(void)
{
	ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
}

static struct conn *
conn_of(const SSL *ssl)
{
	return ex_idx < 0 ? NULL : SSL_get_ex_data(ssl, ex_idx);
}

/* *dst becomes a heap copy of the message (cut short when longer); on
 * OOM it keeps what it had. */
static void __attribute__((format(printf, 2, 3))) msg_set(char **dst, const char *fmt, ...)
{
	char buf[TLS_REASON_MAX], *m;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((m = strdup(buf)) != NULL) {
		free(*dst);
		*dst = m;
	}
}

/* ------------------------------------------------------------------ */
/* Client verification                                                 */
/* ------------------------------------------------------------------ */

/*
 * The reason of a refusal OpenSSL raised itself (no certificate, no shared
 * cipher, a bad message, ...), from this thread's error queue, kept with
 * the SSL (c->refused): the verifier's own refusals are kept by
 * cert_verify_cb.
 */
static void
refusal_note(struct conn *c)
{
	unsigned long e = ERR_peek_last_error();
	char why[256];

	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		msg_set(&c->reason, "%s", NO_CERT_REASON);
	} else if (e != 0) {
		ERR_error_string_n(e, why, sizeof(why));
		msg_set(&c->reason, "TLS handshake failed: %s%s%s", why,
		        c->resume != NULL ? "; " : "", c->resume != NULL ? c->resume : "");
	} else if (c->resume != NULL) {
		msg_set(&c->reason, "%s", c->resume);
	} else {
		msg_set(&c->reason, "%s",
		        "TLS handshake failed: the client closed the connection or sent no valid "
		        "TLS");
	}
	c->refused = 1;
}

/*
 * SSL_CTX_set_info_callback: when the gate sends a fatal alert, the reason
 * is on this thread's error queue now; keep it, so the caller may clear the
 * queue (or let a library do it) before tg_gate_tls_reject_reason.
 */
static void
info_cb(const SSL *ssl, int where, int ret)
{
	struct conn *c;

	if ((where & SSL_CB_ALERT) != 0 && (where & SSL_CB_WRITE) != 0 &&
	    (ret >> 8) == SSL3_AL_FATAL && (c = conn_of(ssl)) != NULL && !c->refused)
		refusal_note(c);
}

/* SSL_CTX_set_cert_verify_callback: the full handshake's client check. */
static int
cert_verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn *c = ssl != NULL ? conn_of(ssl) : NULL;
	struct tg_error err;
	int r, ok = 0;

	(void)arg; /* the configuration is the SSL's own (c->t) */
	tg_error_clear(&err);
	if (c == NULL) {
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
		goto out;
	}
	c->have_peer = 0;
	if (peer_slot(c) == NULL) {
		msg_set(&c->reason, "%s", "out of memory verifying the client certificate");
		c->refused = 1;
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_OUT_OF_MEM);
		goto out;
	}
	r = tg_gate_verify_store_ctx(c->t->verify, sctx, time(NULL), c->peer, &err);
	if (r != 0) {
		msg_set(&c->reason, "%s", tg_error_msg(&err, r));
		c->refused = 1;
		/* the alert says "revoked" where it applies; the rest is generic */
		X509_STORE_CTX_set_error(sctx, r == TG_ERR_REVOKED
		                                   ? X509_V_ERR_CERT_REVOKED
		                                   : X509_V_ERR_APPLICATION_VERIFICATION);
		goto out;
	}
	c->have_peer = 1;
	ok = 1;
out:
	return ok;
}

/*
 * Seconds the session may still live: TLS_SESSION_LIFETIME, cut to the
 * certificate's remaining life (at least 1: a session is made only after
 * the certificate was verified valid now).
 */
static long
session_life(const struct conn *c, time_t now)
{
	long life = TLS_SESSION_LIFETIME;

	if (c->peer->not_after - now < (time_t)life)
		life = c->peer->not_after > now ? (long)(c->peer->not_after - now) : 1;
	return life;
}

/* SSL_CTX_set_session_ticket_cb, generate: a new session's lifetime. */
static int
ticket_gen_cb(SSL *ssl, void *arg)
{
	struct conn *c = conn_of(ssl);
	SSL_SESSION *s = SSL_get0_session(ssl);
	int ok = 0;

	(void)arg;
	/* no verified client, no ticket (never happens after a handshake) */
	if (c == NULL || !c->have_peer || s == NULL)
		goto out;
	ok = SSL_SESSION_set_timeout(s, session_life(c, time(NULL))) == 1;
out:
	return ok;
}

/*
 * SSL_CTX_set_session_ticket_cb, decrypt: a ticket the client offered. A
 * session is resumed only when its client certificate passes the verifier
 * again, now (CRL, validity): otherwise the client gets a full handshake,
 * which refuses a revoked or expired certificate with its reason.
 */
static SSL_TICKET_RETURN
ticket_dec_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *name, size_t namelen,
              SSL_TICKET_STATUS status, void *arg)
{
	struct conn *c = conn_of(ssl);
	struct tg_gate_peer_info info;
	struct tg_error err;
	SSL_TICKET_RETURN ret = SSL_TICKET_RETURN_IGNORE_RENEW;
	time_t now = time(NULL);
	X509 *leaf;
	int r;

	(void)name, (void)namelen, (void)arg;
	memset(&info, 0, sizeof(info));
	tg_error_clear(&err);
	if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
		goto out;
	if (c == NULL || ss == NULL || (leaf = SSL_SESSION_get0_peer(ss)) == NULL) {
		ret = SSL_TICKET_RETURN_IGNORE;
		goto out;
	}
	/* the lifetime the gate gave it, checked here whatever OpenSSL checks */
	if (SSL_SESSION_get_time(ss) + SSL_SESSION_get_timeout(ss) < now) {
		msg_set(&c->resume, "%s", "session not resumed: it has expired");
		goto out;
	}
	/* tokengate CAs issue leaves directly: the leaf alone is the chain */
	r = tg_gate_verify_peer(c->t->verify, leaf, NULL, now, &info, &err);
	if (r != 0) {
		msg_set(&c->resume, "session not resumed: %s", tg_error_msg(&err, r));
		ret = status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_IGNORE_RENEW
		                                         : SSL_TICKET_RETURN_IGNORE;
		goto out;
	}
	if (peer_slot(c) == NULL) {
		msg_set(&c->resume, "%s", "session not resumed: out of memory");
		goto out;
	}
	*c->peer = info;
	c->have_peer = 1;
	/*
	 * TLS 1.3: always a fresh ticket (RFC 8446 C.4: a client should not
	 * reuse one), which is also how a session moves to the newest key; TLS
	 * 1.2: a new one when an older key decrypted it.
	 */
	ret = SSL_version(ssl) >= TLS1_3_VERSION || status == SSL_TICKET_SUCCESS_RENEW
	          ? SSL_TICKET_RETURN_USE_RENEW
	          : SSL_TICKET_RETURN_USE;
out:
	OPENSSL_cleanse(&info, sizeof(info));
	return ret;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: the ticket keys of the SSL's config. */
static int
ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
              EVP_MAC_CTX *hctx, int enc)
{
	struct conn *c = conn_of(ssl);

	return c == NULL ? -1 : tg_gate_tickets_crypt(c->t->tickets, name, iv, cctx, hctx, enc);
}

/* ------------------------------------------------------------------ */
/* Building the context                                                */
/* ------------------------------------------------------------------ */

/* OpenSSL's last error, for messages ("" when none). */
static const char *
ossl_reason(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();

	buf[0] = '\0';
	if (e != 0)
		ERR_error_string_n(e, buf, n);
	return buf;
}

static int
is_p11(const char *s)
{
	return strncmp(s, "pkcs11:", 7) == 0;
}

/* The key about to be installed is the certificate's (installed before). */
static int
key_matches(SSL_CTX *ctx, EVP_PKEY *key, const char *cert, const char *keyname,
            struct tg_error *err)
{
	X509 *c = SSL_CTX_get0_certificate(ctx);
	int r = 0;

	if (c == NULL || EVP_PKEY_eq(X509_get0_pubkey(c), key) != 1)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "server key '%s' is not the key of server certificate '%s'; give "
		                 "the certificate issued for that key",
		                 keyname, cert);
	ERR_clear_error();
	return r;
}

static int
pem_key_use(SSL_CTX *ctx, const char *path, const char *cert, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	int r;

	if ((r = tg_file_read_checked(path, "server key", TG_FILE_SECRET | TG_FILE_FOLLOW,
	                              TLS_KEY_FILE_MAX, &data, &len, err)) != 0)
		goto out;
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "server key '%s' is not an unencrypted PEM private key; give "
		                 "the key of the server certificate (PEM) or a pkcs11: URI",
		                 path);
		goto out;
	}
	if ((r = key_matches(ctx, key, cert, path, err)) != 0)
		goto out;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		r = tg_error_set(err, TG_ERR_TLS, "server key '%s' cannot be used for TLS", path);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	BIO_free(bio);
	tg_freezero(data, len);
	return r;
}

/* The server certificate and the certificates after it (its chain). */
static int
pem_cert_use(SSL_CTX *ctx, const char *path, struct tg_error *err)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *c;
	int r = TG_ERR_ALLOC;

	if (certs == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = tg_ca_certs_read(path, certs, err)) != 0) {
		r = tg_error_wrap(err, TG_ERR_CONFIG, "server certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1) {
		r = tg_error_set(err, TG_ERR_TLS,
		                 "server certificate '%s' cannot be used for TLS (OpenSSL "
		                 "refuses it, e.g. its key is too weak)",
		                 path);
		goto out;
	}
	while (sk_X509_num(certs) > 1) {
		c = sk_X509_delete(certs, 1);
		if (SSL_CTX_add0_chain_cert(ctx, c) != 1) {
			X509_free(c);
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
	}
	r = 0;
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	return r;
}

/* Names of the client CAs, sent in the CertificateRequest. */
static int
client_ca_names(SSL_CTX *ctx, const struct tg_gate_tls_cfg *cfg, struct tg_error *err)
{
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	size_t i;
	int r = TG_ERR_ALLOC;

	if (names == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (i = 0; i < cfg->nclient_ca; i++) {
		if (!SSL_add_file_cert_subjects_to_stack(names, cfg->client_ca[i])) {
			r = tg_error_set(err, TG_ERR_CONFIG,
			                 "client CA file '%s' cannot be read as PEM certificates",
			                 cfg->client_ca[i]);
			goto out;
		}
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	names = NULL;
	r = 0;
out:
	ERR_clear_error();
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	return r;
}

static int
ctx_base(SSL_CTX *ctx, struct tg_gate_tls *t, struct tg_error *err)
{
	char why[256];
	int r = 0;

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SID_CTX,
	                                   sizeof(TLS_SID_CTX) - 1) != 1 ||
	    SSL_CTX_set_num_tickets(ctx, 1) != 1 ||
	    SSL_CTX_set_session_ticket_cb(ctx, ticket_gen_cb, ticket_dec_cb, t) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1) {
		r = tg_error_set(err, TG_ERR_TLS, "cannot configure TLS: %s",
		                 ossl_reason(why, sizeof(why)));
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	/* stateless tickets only: a shared key file is all gates share */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_LIFETIME);
	/* idle connections give their read and write buffers back */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, t);
	SSL_CTX_set_info_callback(ctx, info_cb);
out:
	ERR_clear_error();
	return r;
}

static int
tickets_setup(struct tg_gate_tls *t, const char *path, struct tg_error *err)
{
	int r = 0;

	if (path != NULL) {
		if ((r = tg_gate_tickets_load(path, &t->own, err)) == 0)
			t->tickets = &t->own;
	} else if ((t->tickets = tg_gate_tickets_process()) == NULL) {
		r = tg_error_set(err, TG_ERR_CRYPTO,
		                 "cannot make the session-ticket key: the random generator failed");
	}
	return r;
}

static int
crl_stat(const char *path, struct stat *st, struct tg_error *err)
{
	int r = 0;

	if (stat(path, st) != 0)
		r = tg_error_set(err, TG_ERR_IO, "cannot read the CRL file '%s': %s", path,
		                 strerror(errno));
	return r;
}

/* ------------------------------------------------------------------ */
/* Server key and certificate from a token                             */
/* ------------------------------------------------------------------ */

/*
 * The server key on a token (tgtlskey): found and trust-checked, its
 * certificate from the token or a PEM file, signatures off the event loop
 * (SSL_MODE_ASYNC). The SSL_CTX keeps the key (and the process's one
 * libtgp11 context) alive; the tg_tlskey itself is not needed after.
 */
static int
p11_use(SSL_CTX *ctx, const struct tg_gate_tls_cfg *cfg, struct tg_error *err)
{
	struct tg_tlskey_opts o;
	struct tg_tlskey *k = NULL;
	int r;

	memset(&o, 0, sizeof(o));
	o.key_uri = cfg->key;
	o.cert = cfg->cert;
	o.role = "server";
	/*
	 * A service key: never exportable, but it may have been imported into
	 * the HSM (unlike an identity key, which the CA certifies only when it
	 * was generated on the token).
	 */
	o.flags = TG_TLSKEY_ASYNC | TG_TLSKEY_ALLOW_IMPORTED;
	if ((r = tg_tlskey_open(&o, &k, err)) != 0)
		goto out;
	r = tg_tlskey_ssl_ctx_use(k, ctx, err);
out:
	tg_tlskey_free(k);
	return r;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

static void
tls_free(struct tg_gate_tls *t)
{
	SSL_CTX_free(t->ctx);
	tg_gate_verify_free(t->verify);
	free(t->crl);
	tg_gate_tickets_clear(&t->own);
	free(t);
}

int
tg_gate_tls_new(const struct tg_gate_tls_cfg *cfg, struct tg_gate_tls **out, struct tg_error *err)
{
	struct tg_gate_tls *t = NULL;
	int r = TG_ERR_ALLOC;

	pthread_once(&ex_once, ex_init);
	if (ex_idx < 0 || (t = calloc(1, sizeof(*t))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	atomic_init(&t->refs, 1);
	if (cfg->cert == NULL || cfg->key == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "no server certificate or key; give both (PEM files or a "
		                 "pkcs11: URI)");
		goto out;
	}
	if (is_p11(cfg->cert) && !is_p11(cfg->key)) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "server certificate '%s' is a pkcs11: URI but the key '%s' is "
		                 "not; a token's certificate goes with its token key",
		                 cfg->cert, cfg->key);
		goto out;
	}
	if ((r = tg_gate_verify_new(cfg->client_ca, cfg->nclient_ca, cfg->crl, &t->verify, err)) !=
	    0)
		goto out;
	if (cfg->crl != NULL && ((t->crl = strdup(cfg->crl)) == NULL ||
	                         (r = crl_stat(cfg->crl, &t->crl_st, err)) != 0)) {
		if (t->crl == NULL)
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = tickets_setup(t, cfg->tickets, err)) != 0)
		goto out;
	if ((t->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory (SSL_CTX_new)");
		goto out;
	}
	if ((r = ctx_base(t->ctx, t, err)) != 0 || (r = client_ca_names(t->ctx, cfg, err)) != 0)
		goto out;
	if (is_p11(cfg->key)) {
		if ((r = p11_use(t->ctx, cfg, err)) != 0)
			goto out;
		t->async = 1;
	} else if ((r = pem_cert_use(t->ctx, cfg->cert, err)) != 0 ||
	           (r = pem_key_use(t->ctx, cfg->key, cfg->cert, err)) != 0) {
		goto out;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ERR_clear_error();
		r = tg_error_set(err, TG_ERR_TLS,
		                 "server key '%s' cannot be used with certificate '%s'", cfg->key,
		                 cfg->cert);
		goto out;
	}
	*out = t;
	t = NULL;
	r = 0;
out:
	if (t != NULL)
		tls_free(t);
	return r;
}

void
tg_gate_tls_ref(struct tg_gate_tls *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void
tg_gate_tls_unref(struct tg_gate_tls *t)
{
	if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
		tls_free(t);
}

SSL_CTX *
tg_gate_tls_ctx(const struct tg_gate_tls *t)
{
	return t->ctx;
}

int
tg_gate_tls_async(const struct tg_gate_tls *t)
{
	return t->async;
}

SSL *
tg_gate_tls_ssl_new(struct tg_gate_tls *t)
{
	SSL *ssl = SSL_new(t->ctx);
	struct conn *c = NULL;

	if (ssl == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->t = t;
	if (!SSL_set_ex_data(ssl, ex_idx, c))
		goto fail;
	c = NULL;           /* the SSL's now: conn_free at SSL_free */
	tg_gate_tls_ref(t); /* dropped by conn_free */
	SSL_set_accept_state(ssl);
	goto out;
fail:
	SSL_free(ssl);
	ssl = NULL;
out:
	free(c);
	return ssl;
}

int
tg_gate_tls_peer(SSL *ssl, struct tg_gate_peer_info *out, int *resumed)
{
	struct conn *c = conn_of(ssl);
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int r = TG_ERR_INTERNAL;

	if (c == NULL || !c->have_peer || c->peer == NULL || !SSL_is_init_finished(ssl) ||
	    leaf == NULL)
		goto out;
	/* the verified client is the certificate this session carries */
	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1 || mdlen != sizeof(c->peer->sha256) ||
	    CRYPTO_memcmp(md, c->peer->sha256, mdlen) != 0)
		goto out;
	*out = *c->peer;
	/* handed over: no ticket is made after the handshake (no
	 * renegotiation, no SSL_new_session_ticket) */
	peer_drop(c);
	*resumed = SSL_session_reused(ssl);
	r = 0;
out:
	return r;
}

const char *
tg_gate_tls_reject_reason(SSL *ssl)
{
	struct conn *c = conn_of(ssl);
	const char *r = "TLS handshake failed";

	if (c != NULL) {
		if (!c->refused)
			refusal_note(c);
		r = c->reason != NULL ? c->reason
		                      : "TLS handshake failed (out of memory for the reason)";
	}
	return r;
}

int
tg_gate_tls_crl_reload(struct tg_gate_tls *t, int force, int *reloaded, struct tg_error *err)
{
	struct stat st;
	int r = 0;

	*reloaded = 0;
	if (t->crl == NULL)
		goto out;
	if ((r = crl_stat(t->crl, &st, err)) != 0) {
		r = tg_error_wrap(err, r, "new CRL refused, the previous one stays in use");
		goto out;
	}
	if (!force && st.st_ino == t->crl_st.st_ino && st.st_dev == t->crl_st.st_dev &&
	    st.st_size == t->crl_st.st_size && st.st_mtim.tv_sec == t->crl_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == t->crl_st.st_mtim.tv_nsec)
		goto out;
	if ((r = tg_gate_verify_reload_crl(t->verify, t->crl, err)) != 0)
		goto out;
	t->crl_st = st;
	*reloaded = 1;
out:
	return r;
}

/* The async job's wait fds of ssl as read events on base calling cb(arg):
 * 0, or -1 (the events made so far stay in w for async_wait_free). */
static int
async_wait(struct tg_gate_async_wait *w, SSL *ssl, struct event_base *base, event_callback_fn cb,
           void *arg)
{
	OSSL_ASYNC_FD *fds = NULL;
	size_t n = 0, i;
	int r = -1;

	if (SSL_get_all_async_fds(ssl, NULL, &n) != 1 || n == 0 ||
	    (fds = calloc(n, sizeof(*fds))) == NULL ||
	    (w->ev = calloc(n, sizeof(*w->ev))) == NULL || SSL_get_all_async_fds(ssl, fds, &n) != 1)
		goto out;
	for (i = 0; i < n; i++) {
		if ((w->ev[i] = event_new(base, fds[i], EV_READ, cb, arg)) == NULL)
			goto out;
		w->n = i + 1;
		if (event_add(w->ev[i], NULL) != 0)
			goto out;
	}
	r = 0;
out:
	free(fds);
	return r;
}

static void
async_wait_free(struct tg_gate_async_wait *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		event_free(w->ev[i]);
	free(w->ev);
	w->ev = NULL;
	w->n = 0;
}

static void
hs_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_hs_io *io = arg;

	(void)fd;
	(void)what;
	io->step(io->arg); /* may free io */
}

/* The signature is ready: the job goes on in the next SSL_do_handshake. */
static void
hs_async_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_hs_io *io = arg;

	(void)fd;
	(void)what;
	async_wait_free(&io->aw);
	io->step(io->arg); /* may free io */
}

int
tg_gate_hs_io_init(struct tg_gate_hs_io *io, SSL *ssl, evutil_socket_t fd, struct event_base *base,
                   void (*step)(void *arg), void *arg)
{
	io->ssl = ssl;
	io->base = base;
	io->step = step;
	io->arg = arg;
	io->rd = event_new(base, fd, EV_READ, hs_io_cb, io);
	io->wr = event_new(base, fd, EV_WRITE, hs_io_cb, io);
	return io->rd != NULL && io->wr != NULL ? 0 : -1;
}

int
tg_gate_hs_io_wait(struct tg_gate_hs_io *io, int e)
{
	struct timeval soon = {0, 1000};
	int r = -1;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (event_add(io->rd, NULL) == 0)
			r = 0;
		break;
	case SSL_ERROR_WANT_WRITE:
		if (event_add(io->wr, NULL) == 0)
			r = 0;
		break;
	case SSL_ERROR_WANT_ASYNC:
		if (async_wait(&io->aw, io->ssl, io->base, hs_async_cb, io) == 0)
			r = 0;
		else
			async_wait_free(&io->aw);
		break;
	case SSL_ERROR_WANT_ASYNC_JOB:
		/* no async job free right now: try again in a moment */
		if (io->retry == NULL)
			io->retry = evtimer_new(io->base, hs_io_cb, io);
		if (io->retry != NULL && evtimer_add(io->retry, &soon) == 0)
			r = 0;
		break;
	default:
		r = 1;
		break;
	}
	return r;
}

void
tg_gate_hs_io_free(struct tg_gate_hs_io *io)
{
	async_wait_free(&io->aw);
	if (io->rd != NULL)
		event_free(io->rd);
	if (io->wr != NULL)
		event_free(io->wr);
	if (io->retry != NULL)
		event_free(io->retry);
	io->rd = io->wr = io->retry = NULL;
}
