/*
 * asynckey.c — a token key whose signatures leave the event loop
 * (tlskey-int.h: tg_tlskey_async_new), swappable when the token is
 * removed and inserted again (tg_tlskey_async_swap), counting what it
 * signs.
 *
 * Why this design. A signature on an HSM blocks for a network round trip
 * or a slow token (50–200 ms on a YubiKey), and the gate's workers run one
 * event loop each: a blocking C_Sign there stalls every connection of the
 * worker. OpenSSL already knows how to pause a handshake mid-way: with
 * SSL_MODE_ASYNC, SSL_do_handshake runs in an ASYNC job (its own stack),
 * and code inside may ASYNC_pause_job(); the handshake then returns
 * SSL_ERROR_WANT_ASYNC and the loop waits for the job's wait fd, exactly
 * as it waits for a socket. What OpenSSL lacks is the key that pauses:
 * its async-capable keys live in engines (afalg, QAT). So the key here is
 * an RSA / EC_KEY with our own RSA_METHOD / EC_KEY_METHOD — the mechanism
 * libp11's own keys use, which OpenSSL 3 still honours (a key with a
 * non-default method is "foreign" and signs through it). Its private
 * operation, called inside a job, queues the request for a small pool of
 * signing threads, registers an eventfd as the job's wait fd and pauses;
 * the thread makes the signature with libp11's key (the token's session
 * pool lets threads sign at once), writes the eventfd, and the loop
 * resumes the job, which returns the signature to the TLS code. Outside a
 * job (a caller without SSL_MODE_ASYNC, SSL_CTX_check_private_key, a test)
 * it signs inline.
 *
 * Alternatives and why not: a provider with async signatures does not
 * exist in OpenSSL 3.0 (providers cannot pause a job portably); signing
 * the whole handshake on a thread (a thread per handshake, or handing the
 * SSL to another thread) moves every TLS computation off the loop and
 * costs a hand-off per record; SSL_CTX_set_cert_cb can pause but only
 * before the key is used. The ASYNC job keeps everything on the loop but
 * the one slow call.
 *
 * Lifetimes. A request is shared by the paused job and the thread that
 * serves it (two references). The thread writes into the request, never
 * into the job's buffers: when the connection is closed while its job is
 * paused (SSL_free), the wait fd's cleanup drops the job's reference and
 * the thread finishes on memory it owns. The pool and the token key live
 * as long as the wrapped key, i.e. until the last SSL_CTX and SSL using it
 * are freed; freeing it lets the threads finish what is queued first.
 *
 * Presence. The key that signs (inner) may be swapped while SSLs use the
 * wrapper: each operation takes a reference to the current inner under
 * the signer's lock and signs with it outside the lock, so a swap never
 * waits for the token and the old key is freed after its last signature.
 * With no inner (the token is out) operations fail at once.
 */
/* RSA_METHOD / EC_KEY_METHOD are deprecated in OpenSSL 3, which offers no
 * other way for a key to pause an ASYNC job (see above). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "tlskey-int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "tg_secret.h"
#include "tg_wakefd.h"

enum op_kind {
	OP_RSA_PRIV_ENC, /* signatures: the gate's ciphers have no RSA key exchange */
	OP_ECDSA_SIGN,
};

struct tg_tlskey_async;

/* One private-key operation, shared by the paused job and a signing thread. */
struct req {
	atomic_int refs;
	struct tg_tlskey_async *s;
	int efd; /* the job's wait fd: readable when done */
	enum op_kind kind;
	int arg; /* RSA padding, or the ECDSA type */
	unsigned char *in, *out;
	size_t inlen, outcap;
	int result; /* RSA: output length or -1; ECDSA: signature length or -1 */
	int done;   /* under s->mu */
	struct req *next;
};

struct tg_tlskey_async {
	EVP_PKEY *inner;            /* the key that signs (blocking); NULL: absent; under mu */
	atomic_uint_fast64_t count; /* operations that reached the token */
	tg_tlskey_async_release release;
	void *release_arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct req *head, *tail;
	int stop;
	pthread_t *threads;
	unsigned nthreads; /* running */
};

/* Once per process: the methods and the ex_data slot of the signer. */
static pthread_once_t meth_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *rsa_meth;
static EC_KEY_METHOD *ec_meth;
static int rsa_idx = -1, ec_idx = -1;

/* ------------------------------------------------------------------ */
/* Doing the operation                                                 */
/* ------------------------------------------------------------------ */

/* The current inner key (a new reference), or NULL while absent. */
static EVP_PKEY *
inner_get(struct tg_tlskey_async *s)
{
	EVP_PKEY *k;

	pthread_mutex_lock(&s->mu);
	if ((k = s->inner) != NULL && EVP_PKEY_up_ref(k) != 1)
		k = NULL;
	pthread_mutex_unlock(&s->mu);
	return k;
}

/* op_do's result when the token is out (any other failure: -1) */
#define OP_ABSENT (-2)

static int
op_do(struct tg_tlskey_async *s, enum op_kind kind, int arg, const unsigned char *in, size_t inlen,
      unsigned char *out)
{
	EVP_PKEY *k = inner_get(s);
	unsigned int siglen = 0;
	int r = OP_ABSENT;

	if (k == NULL)
		goto out; /* the token is out: fail fast */
	r = -1;
	atomic_fetch_add(&s->count, 1);
	switch (kind) {
	case OP_RSA_PRIV_ENC:
		r = RSA_private_encrypt((int)inlen, in, out, (RSA *)EVP_PKEY_get0_RSA(k), arg);
		break;
	case OP_ECDSA_SIGN:
		if (ECDSA_sign(arg, in, (int)inlen, out, &siglen,
		               (EC_KEY *)EVP_PKEY_get0_EC_KEY(k)) == 1)
			r = (int)siglen;
		break;
	default:
		break;
	}
	EVP_PKEY_free(k);
out:
	return r;
}

/* 1 when a key is there to sign with. */
static int
inner_present(struct tg_tlskey_async *s)
{
	int p;

	pthread_mutex_lock(&s->mu);
	p = s->inner != NULL;
	pthread_mutex_unlock(&s->mu);
	return p;
}

static void
req_put(struct req *q)
{
	if (q != NULL && atomic_fetch_sub(&q->refs, 1) == 1) {
		if (q->efd >= 0)
			close(q->efd);
		tg_freezero(q->in, q->inlen);
		tg_freezero(q->out, q->outcap);
		free(q);
	}
}

static void *
worker(void *arg)
{
	struct tg_tlskey_async *s = arg;
	struct req *q;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (s->head == NULL && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if ((q = s->head) == NULL) {
			pthread_mutex_unlock(&s->mu);
			break; /* stopping, nothing left */
		}
		s->head = q->next;
		if (s->head == NULL)
			s->tail = NULL;
		pthread_mutex_unlock(&s->mu);
		q->result = op_do(s, q->kind, q->arg, q->in, q->inlen, q->out);
		ERR_clear_error(); /* this thread's queue; the job reports its own */
		pthread_mutex_lock(&s->mu);
		q->done = 1;
		tg_wakefd_signal(q->efd);
		pthread_mutex_unlock(&s->mu);
		req_put(q);
	}
	return NULL;
}

/* ASYNC_WAIT_CTX cleanup: the wait ctx went away with its paused job. */
static void
wait_cleanup(ASYNC_WAIT_CTX *wctx, const void *key, OSSL_ASYNC_FD fd, void *custom)
{
	(void)wctx, (void)key, (void)fd;
	req_put(custom);
}

static struct req *
req_new(struct tg_tlskey_async *s, enum op_kind kind, int arg, const unsigned char *in,
        size_t inlen, size_t outcap)
{
	struct req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		goto out;
	q->efd = -1;
	atomic_init(&q->refs, 1);
	q->s = s;
	q->kind = kind;
	q->arg = arg;
	q->inlen = inlen;
	q->outcap = outcap;
	if ((q->in = malloc(inlen ? inlen : 1)) == NULL || (q->out = malloc(outcap)) == NULL ||
	    (q->efd = tg_wakefd_new()) < 0) {
		req_put(q);
		q = NULL;
		goto out;
	}
	memcpy(q->in, in, inlen);
out:
	return q;
}

/*
 * The operation: on a signing thread with the job paused when inside an
 * ASYNC job, else inline (also when the hand-off cannot be set up: slower
 * but correct). Returns op_do's result with the output in out (outcap).
 */
static int
run(struct tg_tlskey_async *s, enum op_kind kind, int arg, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outcap)
{
	ASYNC_JOB *job = ASYNC_get_current_job();
	ASYNC_WAIT_CTX *wctx = job != NULL ? ASYNC_get_wait_ctx(job) : NULL;
	struct req *q = NULL;
	int done = 0, r = -1;

	if (wctx == NULL || s->nthreads == 0 || !inner_present(s) ||
	    (q = req_new(s, kind, arg, in, inlen, outcap)) == NULL) {
		r = op_do(s, kind, arg, in, inlen, out);
		goto out;
	}
	if (!ASYNC_WAIT_CTX_set_wait_fd(wctx, q, q->efd, q, wait_cleanup)) {
		req_put(q);
		r = op_do(s, kind, arg, in, inlen, out);
		goto out;
	}
	atomic_fetch_add(&q->refs, 2); /* the wait ctx's (cleanup) and the thread's */
	pthread_mutex_lock(&s->mu);
	if (s->tail != NULL)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	req_put(q); /* ours: the wait ctx holds the job's reference now */
	/*
	 * Pause at once, even when the thread may already be done: the loop
	 * then sees the wait fd readable and resumes us. Resumed early (the
	 * loop may resume a job whenever it likes): pause again.
	 */
	while (!done && ASYNC_pause_job()) {
		pthread_mutex_lock(&s->mu);
		done = q->done;
		pthread_mutex_unlock(&s->mu);
	}
	if (done && q->result >= 0 && (size_t)q->result <= outcap) {
		memcpy(out, q->out, (size_t)q->result);
		r = q->result;
	} else if (done && q->result < 0) {
		r = q->result;
	}
	if (done)
		(void)tg_wakefd_drain(q->efd); /* nothing to drain: harmless */
	/* the job lives on: the request goes, with the job's reference */
	ASYNC_WAIT_CTX_clear_fd(wctx, q);
	req_put(q);
out:
	/* why, for the handshake's error queue: OpenSSL's own entry on top of
	 * it says only "EVP lib" (the agent names this one in its 502) */
	if (r < 0)
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s",
		               r == OP_ABSENT
		                   ? "the token is not there (removed, or its reader is gone)"
		                   : "the token did not sign (it failed or stopped answering)");
	return r;
}

/* ------------------------------------------------------------------ */
/* The methods                                                         */
/* ------------------------------------------------------------------ */

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	struct tg_tlskey_async *s = RSA_get_ex_data(rsa, rsa_idx);
	int n = -1;

	if (s != NULL && flen >= 0)
		n = run(s, OP_RSA_PRIV_ENC, padding, from, (size_t)flen, to, (size_t)RSA_size(rsa));
	return n < 0 ? -1 : n; /* OpenSSL's error value, whatever the reason */
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
        const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	struct tg_tlskey_async *s = EC_KEY_get_ex_data(eckey, ec_idx);
	int n = -1, ok = 0;

	(void)kinv, (void)r; /* the token picks its own nonce */
	if (s != NULL && dlen >= 0)
		n = run(s, OP_ECDSA_SIGN, type, dgst, (size_t)dlen, sig, (size_t)ECDSA_size(eckey));
	if (n >= 0) {
		*siglen = (unsigned int)n;
		ok = 1;
	}
	return ok;
}

static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	unsigned char der[256];
	const unsigned char *p = der;
	unsigned int len = 0;
	ECDSA_SIG *sig = NULL;

	if (ECDSA_size(eckey) <= (int)sizeof(der) &&
	    ec_sign(0, dgst, dlen, der, &len, kinv, r, eckey) == 1)
		sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	return sig;
}

static void
signer_free(struct tg_tlskey_async *s)
{
	unsigned i;

	if (s != NULL) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		for (i = 0; i < s->nthreads; i++)
			pthread_join(s->threads[i], NULL);
		free(s->threads);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		EVP_PKEY_free(s->inner);
		if (s->release != NULL)
			s->release(s->release_arg);
		free(s);
	}
}

/* ex_data free callback of the wrapped RSA / EC_KEY: the key is going. */
static void
signer_exfree(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	signer_free(ptr);
}

static void
meth_init(void)
{
	int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, signer_exfree);
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, signer_exfree);
	if ((rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) != NULL &&
	    (RSA_meth_set1_name(rsa_meth, "tokengate async token key") != 1 ||
	     RSA_meth_set_priv_enc(rsa_meth, rsa_priv_enc) != 1 ||
	     RSA_meth_set_flags(rsa_meth, RSA_meth_get_flags(rsa_meth) | RSA_FLAG_EXT_PKEY) != 1)) {
		RSA_meth_free(rsa_meth);
		rsa_meth = NULL;
	}
	if ((ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) != NULL) {
		EC_KEY_METHOD_get_sign(ec_meth, NULL, &sign_setup, NULL);
		EC_KEY_METHOD_set_sign(ec_meth, ec_sign, sign_setup, ec_sign_sig);
	}
}

/* ------------------------------------------------------------------ */
/* Building the key                                                    */
/* ------------------------------------------------------------------ */

static int
signer_new(EVP_PKEY *inner, unsigned nthreads, struct tg_tlskey_async **out, struct tg_error *err)
{
	struct tg_tlskey_async *s = calloc(1, sizeof(*s));
	int r = TG_ERR_ALLOC;

	if (s == NULL ||
	    (nthreads > 0 && (s->threads = calloc(nthreads, sizeof(pthread_t))) == NULL)) {
		tg_error_set(err, r, "out of memory");
		free(s);
		goto out;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->inner = inner;
	for (; s->nthreads < nthreads; s->nthreads++) {
		if (pthread_create(&s->threads[s->nthreads], NULL, worker, s) != 0) {
			s->inner = NULL; /* still the caller's */
			signer_free(s);
			r = tg_error_set(err, TG_ERR_INTERNAL,
			                 "cannot start the signing threads: %s", strerror(errno));
			goto out;
		}
	}
	*out = s;
	r = 0;
out:
	return r;
}

/* Sets (s) or clears (NULL) the signer in the ex data of w, an RSA or
 * EC_KEY as base says: 1 or 0. */
static int
wrap_signer_set(int base, void *w, struct tg_tlskey_async *s)
{
	return base == EVP_PKEY_RSA ? RSA_set_ex_data(w, rsa_idx, s)
	                            : EC_KEY_set_ex_data(w, ec_idx, s);
}

/*
 * A new EVP_PKEY holding w (an RSA or EC_KEY with our method, as base
 * says; taken, freed on failure) with the signer s in w's ex data, or NULL
 * (then s is still the caller's).
 */
static EVP_PKEY *
wrap_key(int base, void *w, struct tg_tlskey_async *s)
{
	EVP_PKEY *pk = NULL;

	if ((pk = EVP_PKEY_new()) == NULL || wrap_signer_set(base, w, s) != 1 ||
	    EVP_PKEY_assign(pk, base, w) != 1) {
		EVP_PKEY_free(pk);
		pk = NULL;
		(void)wrap_signer_set(base, w, NULL); /* the caller still owns s */
		if (base == EVP_PKEY_RSA)
			RSA_free(w);
		else
			EC_KEY_free(w);
	}
	return pk;
}

/* The wrapper's RSA key: pub's modulus and exponent, our method, the signer. */
static EVP_PKEY *
wrap_rsa(EVP_PKEY *pub, struct tg_tlskey_async *s)
{
	RSA *src = EVP_PKEY_get1_RSA(pub), *w = NULL;
	const BIGNUM *n = NULL, *e = NULL;
	BIGNUM *n2 = NULL, *e2 = NULL;
	EVP_PKEY *pk = NULL;

	if (src == NULL || rsa_meth == NULL || (w = RSA_new()) == NULL ||
	    RSA_set_method(w, rsa_meth) != 1)
		goto out;
	RSA_get0_key(src, &n, &e, NULL);
	if ((n2 = BN_dup(n)) == NULL || (e2 = BN_dup(e)) == NULL ||
	    RSA_set0_key(w, n2, e2, NULL) != 1)
		goto out;
	n2 = e2 = NULL;
	pk = wrap_key(EVP_PKEY_RSA, w, s);
	w = NULL; /* pk's, or freed */
out:
	RSA_free(w);
	BN_free(n2);
	BN_free(e2);
	RSA_free(src);
	return pk;
}

static EVP_PKEY *
wrap_ec(EVP_PKEY *pub, struct tg_tlskey_async *s)
{
	EC_KEY *src = EVP_PKEY_get1_EC_KEY(pub), *w = NULL;
	EVP_PKEY *pk = NULL;

	if (src == NULL || ec_meth == NULL || (w = EC_KEY_new()) == NULL ||
	    EC_KEY_set_method(w, ec_meth) != 1 ||
	    EC_KEY_set_group(w, EC_KEY_get0_group(src)) != 1 ||
	    EC_KEY_set_public_key(w, EC_KEY_get0_public_key(src)) != 1)
		goto out;
	pk = wrap_key(EVP_PKEY_EC, w, s);
	w = NULL; /* pk's, or freed */
out:
	EC_KEY_free(w);
	EC_KEY_free(src);
	return pk;
}

int
tg_tlskey_async_new(EVP_PKEY *inner, EVP_PKEY *pub, unsigned nthreads, const char *what,
                    tg_tlskey_async_release release, void *arg, EVP_PKEY **out,
                    struct tg_tlskey_async **signer, struct tg_error *err)
{
	struct tg_tlskey_async *s = NULL;
	int base = EVP_PKEY_get_base_id(inner);
	int r = TG_ERR_UNSUPPORTED;

	pthread_once(&meth_once, meth_init);
	if ((base != EVP_PKEY_RSA && base != EVP_PKEY_EC) || EVP_PKEY_get_base_id(pub) != base) {
		tg_error_set(err, r,
		             "the %s is neither RSA nor EC (or its public key is of "
		             "another type); use an RSA or EC key",
		             what);
		goto out;
	}
	if (rsa_idx < 0 || ec_idx < 0) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = signer_new(inner, nthreads, &s, err)) != 0)
		goto out;
	*out = base == EVP_PKEY_RSA ? wrap_rsa(pub, s) : wrap_ec(pub, s);
	if (*out == NULL) {
		s->inner = NULL; /* still the caller's */
		signer_free(s);
		r = tg_error_set(err, TG_ERR_CRYPTO,
		                 "cannot make the %s's signing wrapper (OpenSSL)", what);
		goto out;
	}
	s->release = release;
	s->release_arg = arg;
	if (signer != NULL)
		*signer = s;
	r = 0;
out:
	ERR_clear_error();
	return r;
}

void
tg_tlskey_async_swap(struct tg_tlskey_async *s, EVP_PKEY *inner)
{
	EVP_PKEY *old;

	pthread_mutex_lock(&s->mu);
	old = s->inner;
	s->inner = inner;
	pthread_mutex_unlock(&s->mu);
	EVP_PKEY_free(old); /* signatures in flight hold their own reference */
}

uint64_t
tg_tlskey_async_count(const struct tg_tlskey_async *s)
{
	return atomic_load(&((struct tg_tlskey_async *)s)->count);
}
