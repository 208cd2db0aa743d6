/*
 * tlskey.c — a token key for TLS (tg_tlskey.h): the key found through
 * libtgp11 and trust-checked, its certificate, the signing wrapper of
 * asynckey.c, and the presence watcher that swaps the wrapper's inner key.
 *
 * Lifetimes. The wrapped EVP_PKEY owns the token key and a reference to
 * the process's libtgp11 context (released by p11_key_release when the
 * last SSL_CTX and SSL using the key are freed). The tg_tlskey holds one
 * reference to the wrapped key, the certificate, the watcher and the event
 * queue; freeing it stops the watcher first (the watcher reads the token
 * key), then drops its reference.
 *
 * One libtgp11 context per process: freeing a context finalizes its
 * modules under any other context (tg_p11.h), and a gate's reload builds a
 * new configuration while the old one still serves its connections. The
 * context lives while any token key opened here does.
 */
#include "tg_tlskey.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "tg_p11.h"
#include "tg_wakefd.h"
#include "tlskey-int.h"

#define EVQ_MAX   16 /* queued events kept; the oldest goes first */
#define NAME_MAX_ 48

struct evq_entry {
	enum tg_tlskey_event ev;
	char msg[512];
};

struct tg_tlskey {
	struct tg_p11_key *key; /* the wrapped key's (released with it) */
	EVP_PKEY *wrapped;      /* our reference */
	struct tg_tlskey_async *signer;
	X509 *cert;
	STACK_OF(X509) * chain; /* after the leaf, from a PEM file; may be NULL */
	char *uri;              /* masked */
	char kname[NAME_MAX_];  /* "server key", "key" */
	unsigned flags;
	struct tg_p11_watch *watch;
	atomic_int present;
	pthread_mutex_t mu; /* the event queue */
	int efd;            /* eventfd: readable while events are queued */
	struct evq_entry q[EVQ_MAX];
	unsigned qhead, qlen;
};

/* ------------------------------------------------------------------ */
/* The process's libtgp11 context                                      */
/* ------------------------------------------------------------------ */

static pthread_mutex_t p11_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tg_p11 *p11_ctx;
static unsigned p11_refs;

static int
p11_get(struct tg_p11 **out, struct tg_error *err)
{
	int r = 0;

	pthread_mutex_lock(&p11_mu);
	if (p11_refs == 0 && (r = tg_p11_new(&p11_ctx, err)) != 0)
		goto out;
	p11_refs++;
	*out = p11_ctx;
out:
	pthread_mutex_unlock(&p11_mu);
	return r;
}

static void
p11_put(void)
{
	pthread_mutex_lock(&p11_mu);
	if (p11_refs > 0 && --p11_refs == 0) {
		tg_p11_free(p11_ctx);
		p11_ctx = NULL;
	}
	pthread_mutex_unlock(&p11_mu);
}

/* The wrapper's release: the token key, then the context's reference. */
static void
p11_key_release(void *arg)
{
	tg_p11_key_free(arg);
	p11_put();
}

/* Signing threads: enough for a few slow signatures at once. */
static unsigned
sign_threads(unsigned want)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (want > 0)
		return want > 64 ? 64 : want;
	n = n < 1 ? 2 : 2 * n;
	return (unsigned)(n > 16 ? 16 : n);
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static void
ev_push(struct tg_tlskey *k, enum tg_tlskey_event ev, const char *msg)
{

	pthread_mutex_lock(&k->mu);
	if (k->qlen == EVQ_MAX) { /* drop the oldest, keep the newest */
		k->qhead = (k->qhead + 1) % EVQ_MAX;
		k->qlen--;
	}
	k->q[(k->qhead + k->qlen) % EVQ_MAX].ev = ev;
	snprintf(k->q[(k->qhead + k->qlen) % EVQ_MAX].msg, sizeof(k->q[0].msg), "%s", msg);
	k->qlen++;
	tg_wakefd_signal(k->efd);
	pthread_mutex_unlock(&k->mu);
}

/* The watcher's callback (its thread, no lock of libtgp11 held). */
static void
on_watch(void *arg, const struct tg_p11_watch_event *e)
{
	struct tg_tlskey *k = arg;
	struct tg_error err;
	EVP_PKEY *inner = NULL;
	char msg[1024];
	int r;

	tg_error_clear(&err);
	switch (e->ev) {
	case TG_P11_EV_REMOVED:
		atomic_store(&k->present, 0);
		tg_tlskey_async_swap(k->signer, NULL); /* signatures fail fast */
		snprintf(msg, sizeof(msg), "%s; the %s signs nothing until it is back", e->msg,
		         k->kname);
		ev_push(k, TG_TLSKEY_EV_REMOVED, msg);
		break;
	case TG_P11_EV_INSERTED:
		if ((r = tg_p11_key_evp_get(k->key, &inner, &err)) != 0) {
			snprintf(msg, sizeof(msg), "%s, but the %s cannot sign: %s", e->msg,
			         k->kname, tg_error_msg(&err, r));
			ev_push(k, TG_TLSKEY_EV_FAILED, msg);
			break;
		}
		tg_tlskey_async_swap(k->signer, inner); /* the signer's now */
		atomic_store(&k->present, 1);
		snprintf(msg, sizeof(msg), "%s; the %s signs again", e->msg, k->kname);
		ev_push(k, TG_TLSKEY_EV_INSERTED, msg);
		break;
	default: /* RELOGIN_FAILED, REPLACED: still absent */
		ev_push(k, TG_TLSKEY_EV_FAILED, e->msg);
		break;
	}
	ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

/* The leaf and the certificates after it from a PEM file. */
static int
pem_certs(struct tg_tlskey *k, const char *path, const char *cname, struct tg_error *err)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = NULL;
	int r = TG_ERR_CONFIG;

	ERR_clear_error();
	if (b == NULL) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "%s '%s' cannot be read: %s; give the PEM file of "
		                 "the key's certificate",
		                 cname, path, strerror(errno));
		goto out;
	}
	if ((k->cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s '%s' holds no PEM certificate; give the PEM file of the "
		                 "key's certificate (the leaf first, then any intermediates)",
		                 cname, path);
		goto out;
	}
	if ((k->chain = sk_X509_new_null()) == NULL)
		goto oom;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(k->chain, x) <= 0)
			goto oom;
		x = NULL;
	}
	r = 0;
	goto out;
oom:
	r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
out:
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

static int
is_p11(const char *s)
{
	return s != NULL && strncmp(s, "pkcs11:", 7) == 0;
}

static void
tlskey_free(struct tg_tlskey *k)
{
	tg_p11_watch_stop(k->watch);
	EVP_PKEY_free(k->wrapped);
	X509_free(k->cert);
	sk_X509_pop_free(k->chain, X509_free);
	free(k->uri);
	if (k->efd >= 0)
		close(k->efd);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

int
tg_tlskey_open(const struct tg_tlskey_opts *o, struct tg_tlskey **out, struct tg_error *err)
{
	struct tg_tlskey *k = NULL;
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *key = NULL;
	EVP_PKEY *inner = NULL, *pub = NULL;
	char cname[NAME_MAX_], *shown;
	const char *role = o != NULL && o->role != NULL && o->role[0] != '\0' ? o->role : NULL;
	unsigned fflags;
	int r = TG_ERR_ALLOC;

	if (o == NULL || !is_p11(o->key_uri)) {
		/* a mistyped URI may still carry a PIN: masked too */
		shown = o != NULL && o->key_uri != NULL ? tg_p11_uri_mask(o->key_uri) : NULL;
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "%s key '%s' is not a pkcs11: URI; give the URI of the key on its "
		                 "token (tokengate token list shows them)",
		                 role ? role : "token", shown != NULL ? shown : "(none)");
		free(shown);
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	k->efd = -1;
	pthread_mutex_init(&k->mu, NULL);
	k->flags = o->flags;
	snprintf(k->kname, sizeof(k->kname), "%s key", role ? role : "token");
	snprintf(cname, sizeof(cname), "%s%scertificate", role ? role : "", role ? " " : "");
	if ((k->uri = tg_p11_uri_mask(o->key_uri)) == NULL || (k->efd = tg_wakefd_new()) < 0) {
		tg_error_set(err, r, "out of memory (or file descriptors)");
		goto out;
	}
	if ((r = p11_get(&p11, err)) != 0)
		goto out;
	/*
	 * Identity keys must be generated on the token; a service key (the
	 * gate's server key) may have been imported into its HSM. Never
	 * exportable, and no flag of libtgp11's is offered to the user
	 * (TG_P11_KEY_NO_OPTIN: a refusal names the real fix only).
	 */
	fflags = TG_P11_KEY_NO_OPTIN |
	         ((o->flags & TG_TLSKEY_ALLOW_IMPORTED) ? TG_P11_KEY_ALLOW_IMPORTED : 0);
	if ((r = tg_tlskey_key_find(p11, o->key_uri, fflags, &key, err)) != 0) {
		r = tg_error_wrap(err, r, "%s", k->kname);
		goto out;
	}
	if (o->cert == NULL || o->cert[0] == '\0' || is_p11(o->cert)) {
		if ((r = tg_p11_key_cert_get(key, &k->cert, err)) != 0) {
			r = tg_error_wrap(err, r, "%s '%s'", cname,
			                  o->cert != NULL && o->cert[0] != '\0' ? o->cert
			                                                        : "from the token");
			goto out;
		}
	} else if ((r = pem_certs(k, o->cert, cname, err)) != 0) {
		goto out;
	}
	if ((pub = tg_p11_key_public(key)) == NULL) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "%s '%s': its public key cannot be established; import its "
		                 "certificate to the token (tokengate token import-cert)",
		                 k->kname, k->uri);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(k->cert), pub) != 1) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "%s '%s' is not the key of %s '%s'; give the certificate issued "
		                 "for that key",
		                 k->kname, k->uri, cname,
		                 o->cert != NULL && o->cert[0] != '\0' ? o->cert
		                                                       : "from the token");
		goto out;
	}
	if ((r = tg_p11_key_evp_get(key, &inner, err)) != 0) {
		r = tg_error_wrap(err, r, "%s", k->kname);
		goto out;
	}
	if ((r = tg_tlskey_async_new(
	         inner, pub, (o->flags & TG_TLSKEY_ASYNC) ? sign_threads(o->sign_threads) : 0,
	         k->kname, p11_key_release, key, &k->wrapped, &k->signer, err)) != 0)
		goto out;
	inner = NULL; /* these three go with the wrapped key */
	k->key = key;
	key = NULL;
	p11 = NULL;
	atomic_init(&k->present, 1);
	if ((o->flags & TG_TLSKEY_WATCH) != 0 &&
	    (r = tg_p11_watch_start(k->key, o->watch_ms, on_watch, k, &k->watch, err)) != 0) {
		r = tg_error_wrap(err, r, "%s '%s': cannot watch its token", k->kname, k->uri);
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	ERR_clear_error();
	if (k != NULL)
		tlskey_free(k);
	EVP_PKEY_free(inner);
	EVP_PKEY_free(pub);
	tg_p11_key_free(key);
	if (p11 != NULL)
		p11_put();
	return r;
}

int
tg_tlskey_ssl_ctx_use(struct tg_tlskey *k, SSL_CTX *ctx, struct tg_error *err)
{
	char why[256] = "";
	unsigned long e;
	X509 *x;
	int i, r = TG_ERR_TLS;

	ERR_clear_error();
	if (SSL_CTX_use_certificate(ctx, k->cert) != 1) {
		tg_error_set(err, r,
		             "the certificate of %s '%s' cannot be used for TLS (OpenSSL refuses "
		             "it, e.g. its key is too weak)",
		             k->kname, k->uri);
		goto out;
	}
	SSL_CTX_clear_chain_certs(ctx);
	for (i = 0; k->chain != NULL && i < sk_X509_num(k->chain); i++) {
		x = sk_X509_value(k->chain, i);
		if (SSL_CTX_add1_chain_cert(ctx, x) != 1) {
			/* OpenSSL refuses a chain certificate below ctx's security
			 * level (a weak key or digest), not only for lack of memory */
			tg_error_set(err, r,
			             "a certificate of the chain of %s '%s' cannot be used for TLS "
			             "(OpenSSL refuses it, e.g. its key is too weak)",
			             k->kname, k->uri);
			goto out;
		}
	}
	if (SSL_CTX_use_PrivateKey(ctx, k->wrapped) != 1) {
		if ((e = ERR_peek_last_error()) != 0)
			ERR_error_string_n(e, why, sizeof(why));
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "%s '%s' cannot be used for TLS with its certificate: %s",
		                 k->kname, k->uri, why);
		goto out;
	}
	if ((k->flags & TG_TLSKEY_ASYNC) != 0)
		SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC);
	r = 0;
out:
	ERR_clear_error();
	return r;
}

X509 *
tg_tlskey_cert(const struct tg_tlskey *k)
{
	return k->cert;
}

const char *
tg_tlskey_uri(const struct tg_tlskey *k)
{
	return k->uri;
}

uint64_t
tg_tlskey_sign_count(const struct tg_tlskey *k)
{
	return tg_tlskey_async_count(k->signer);
}

int
tg_tlskey_present(const struct tg_tlskey *k)
{
	return atomic_load(&((struct tg_tlskey *)k)->present);
}

int
tg_tlskey_event_fd(const struct tg_tlskey *k)
{
	return k->watch != NULL ? k->efd : -1;
}

int
tg_tlskey_event_next(struct tg_tlskey *k, enum tg_tlskey_event *ev, char *msg, size_t cap)
{
	int got = 0;

	pthread_mutex_lock(&k->mu);
	if (k->qlen > 0) {
		*ev = k->q[k->qhead].ev;
		if (msg != NULL && cap > 0)
			snprintf(msg, cap, "%s", k->q[k->qhead].msg);
		k->qhead = (k->qhead + 1) % EVQ_MAX;
		k->qlen--;
		got = 1;
	}
	if (k->qlen == 0) /* no longer readable */
		(void)tg_wakefd_drain(k->efd);
	pthread_mutex_unlock(&k->mu);
	return got;
}

void
tg_tlskey_free(struct tg_tlskey *k)
{
	if (k != NULL)
		tlskey_free(k);
}
