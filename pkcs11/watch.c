/*
 * watch.c — token presence watcher. A thread polls the key's slot
 * (C_GetSlotInfo, CKF_TOKEN_PRESENT, and the token's serial so another
 * token in the same reader is not taken for ours) at most every 250 ms.
 * Blocking C_WaitForSlotEvent is not used: it can only be interrupted by
 * C_Finalize, which would end every other user of the shared module, and
 * its events are shared by all callers of the module; polling costs one
 * cheap slot call per interval instead.
 */
#include "p11-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#define WATCH_MAX_INTERVAL_MS 250
#define WATCH_QUEUE           16

struct tg_p11_watch {
	struct tg_p11_key *k;
	unsigned interval_ms;
	tg_p11_watch_fn cb;
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int present; /* our token is in the slot, bound to the key */
	int full;    /* a token (ours or not) is in the slot */
	int pipefd[2];
	struct tg_p11_watch_event q[WATCH_QUEUE];
	size_t qhead, qlen;
	char serial[17]; /* the token's, when the watcher started */
	char label[33];
	EVP_PKEY *known;           /* the key's public key when the watcher started */
	struct tg_p11_trust trust; /* and its trust verdict then */
};

static void emit(struct tg_p11_watch *w, enum tg_p11_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
emit(struct tg_p11_watch *w, enum tg_p11_event ev, const char *fmt, ...)
{
	va_list ap;
	struct tg_p11_watch_event e;
	char one = 'e';
	ssize_t wr;

	memset(&e, 0, sizeof(e));
	e.ev = ev;
	snprintf(e.token_label, sizeof(e.token_label), "%s", w->k->t->info.label);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&w->mu);
	if (w->qlen == WATCH_QUEUE) { /* drop the oldest, keep the newest */
		w->qhead = (w->qhead + 1) % WATCH_QUEUE;
		w->qlen--;
	} else {
		wr = write(w->pipefd[1], &one, 1);
		(void)wr;
	}
	w->q[(w->qhead + w->qlen) % WATCH_QUEUE] = e;
	w->qlen++;
	pthread_mutex_unlock(&w->mu);
	if (w->cb != NULL)
		w->cb(w->arg, &e);
}

/*
 * 1 when a token is in the slot: C_GetSlotInfo's CKF_TOKEN_PRESENT only.
 * The token's info is read once, when the slot goes from empty to full
 * (token_arrived): OpenSC 0.23 was seen hanging for good in C_GetTokenInfo
 * (while another card sat in the slot, and when the card goes away during
 * the call), so that call stays off every poll. Runs under p->lock, so a
 * fork() never finds this thread inside the module (module.c's atfork
 * handlers take the lock first).
 */
static int
slot_full(struct tg_p11_watch *w)
{
	struct tg_p11_token *t = w->k->t;
	CK_SLOT_INFO si;
	CK_ULONG n = 0;
	int full;

	tg_p11_lock(t->p);
	tg_p11_fork_check(t->p);
	/* OpenSC refreshes reader and card state in C_GetSlotList; its
	 * C_GetSlotInfo may answer from a cache for up to a second */
	(void)t->m->f->C_GetSlotList(CK_FALSE, NULL, &n);
	full = t->m->f->C_GetSlotInfo(t->slot, &si) == CKR_OK && (si.flags & CKF_TOKEN_PRESENT);
	tg_p11_unlock(t->p);
	return full;
}

enum cand {
	CAND_NONE,  /* the token shows no public key for the id before login */
	CAND_SAME,  /* it shows the public key the watcher had */
	CAND_OTHER, /* it shows another public key: not our key */
};

/* Among the objects with the key's id, 1 when one holds `known`, 0 when
 * some hold another public key, -1 when none holds a public key. */
static int
cand_of_class(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
              const struct tg_p11_key *k, const EVP_PKEY *known)
{
	CK_OBJECT_HANDLE *hs = NULL;
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	uint8_t *der = NULL;
	const unsigned char *dp;
	size_t n = 0, i, dl = 0;
	int res = -1;

	if (tg_p11_objects_find(t, s, cls, NULL, k->id, k->id_len, &hs, &n, NULL) != 0)
		goto out;
	for (i = 0; i < n && res != 1; i++) {
		if (cls == CKO_CERTIFICATE) {
			if (tg_p11_attr_get(t, s, hs[i], CKA_VALUE, &der, &dl) == CKR_OK) {
				dp = der;
				if ((x = d2i_X509(NULL, &dp, (long)dl)) != NULL)
					pub = X509_get_pubkey(x);
			}
		} else {
			(void)tg_p11_pub_from_object(t, s, hs[i], k->type, &pub);
		}
		if (pub != NULL)
			res = EVP_PKEY_eq(pub, known) == 1 ? 1 : 0;
		EVP_PKEY_free(pub);
		pub = NULL;
		X509_free(x);
		x = NULL;
		free(der);
		der = NULL;
	}
out:
	free(hs);
	return res;
}

/*
 * What the token in the slot shows, before any login, as the public key of
 * the key: the private key object's own public attributes (CKA_EC_POINT,
 * CKA_MODULUS) where the module exposes them, else public key objects, else
 * certificates with the key's id. Only a candidate: a card can carry any
 * public key object or certificate. p->lock held.
 */
static enum cand
candidate(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
          const struct tg_p11_key *k, const EVP_PKEY *known)
{
	EVP_PKEY *pub = NULL;
	enum cand c = CAND_NONE;
	int res = -1;

	if (priv != CK_INVALID_HANDLE && tg_p11_pub_from_object(t, s, priv, k->type, &pub) == 0 &&
	    pub != NULL)
		res = EVP_PKEY_eq(pub, known) == 1 ? 1 : 0;
	if (res < 0)
		res = cand_of_class(t, s, CKO_PUBLIC_KEY, k, known);
	if (res < 0)
		res = cand_of_class(t, s, CKO_CERTIFICATE, k, known);
	if (res >= 0)
		c = res == 1 ? CAND_SAME : CAND_OTHER;
	EVP_PKEY_free(pub);
	return c;
}

/*
 * Proof of possession: k2 signs a fresh random challenge through its own
 * object handle (tg_p11_key_prove) and the signature must verify with
 * `known`, the public key the watcher had before the removal. 0 when it
 * does.
 */
static int
prove(struct tg_p11_key *k2, EVP_PKEY *known, struct tg_error *err)
{
	int r = tg_p11_key_prove(k2, known, err);

	if (r == TG_ERR_CERT_MISMATCH) {
		/* the watcher's words say what it means here */
		r = tg_error_set(err, r,
		                 "its signature over a fresh challenge does not verify with the "
		                 "public key checked before the removal");
	} else if (r != 0) {
		r = tg_error_wrap(err, r, "the key found again cannot sign a challenge");
	}
	return r;
}

/* 1 when the verdict now is worse than the one the key had: another verdict
 * than before that is not "ok" (whatever verdicts the trust check has). */
static int
trust_worse(const struct tg_p11_trust *before, const struct tg_p11_trust *now)
{
	return now->verdict != before->verdict && now->verdict != TG_P11_TRUST_OK;
}

/* Ends the login made on a card that turned out not to be ours, so that
 * card's sessions do not stay authenticated. */
static void
logout(struct tg_p11_token *t)
{
	PKCS11_SLOT *ls;
	CK_SESSION_HANDLE s;

	tg_p11_lock(t->p);
	if ((ls = tg_p11_module_lslot(t->m, t->slot)) != NULL)
		(void)PKCS11_logout(ls); /* also forgets libp11's PIN copy */
	if (tg_p11_token_session(t, &s, NULL) == 0)
		(void)t->m->f->C_Logout(s);
	t->logged_in = 0;
	tg_p11_unlock(t->p);
}

/* The key signs nothing (tg_p11_key_evp NULL) until a token is proven to
 * hold it again. */
static void
unbind(struct tg_p11_key *k)
{
	tg_p11_lock(k->t->p);
	k->h = CK_INVALID_HANDLE;
	EVP_PKEY_free(k->evp);
	k->evp = NULL;
	tg_p11_unlock(k->t->p);
}

enum bind {
	BIND_OK,       /* our key, proven: INSERTED */
	BIND_REPLACED, /* another card (or a key now refused): REPLACED */
	BIND_FAILED,   /* could not log in or find the key: RELOGIN_FAILED */
};

/*
 * A token with our serial and label came in: is it ours? In this order, so
 * the PIN goes to no card that can be told apart before login:
 *   1. the key as the token shows it without login (tg_p11_key_find with
 *      TG_P11_KEY_NO_LOGIN: its trust verdict, refused or worse than before
 *      -> replaced) and the candidate public key (another -> replaced);
 *   2. login (PIN from the URI's non-interactive source);
 *   3. the key found again (private keys may be hidden before login), its
 *      candidate and verdict checked again;
 *   4. proof: it signs a fresh challenge that must verify with the public
 *      key the watcher had (failure -> replaced, logged out again).
 * Only then does the key take the new handle.
 */
static enum bind
rebind(struct tg_p11_watch *w, const CK_TOKEN_INFO *ti, int *pin_sent, struct tg_error *err)
{
	struct tg_p11_key *k = w->k, *k2 = NULL;
	struct tg_p11_token *t = k->t;
	struct tg_p11_trust tr;
	CK_SESSION_HANDLE s;
	unsigned flags = (k->flags & ~(unsigned)TG_P11_KEY_INTERACTIVE) | TG_P11_KEY_NO_LOGIN;
	enum bind b = BIND_FAILED;
	enum cand c;
	int r, logged = 0;

	memset(&tr, 0, sizeof(tr));
	unbind(k);
	tg_p11_lock(t->p);
	t->sess = CK_INVALID_HANDLE; /* the old one died with the removal */
	t->logged_in = 0;
	(void)tg_p11_module_rebuild(t->m);
	r = tg_p11_token_session(t, &s, err);
	tg_p11_unlock(t->p);
	if (r != 0)
		goto out;
	for (;;) {
		r = tg_p11_key_find(t->p, t->uri, flags, &k2, err);
		if (r == TG_ERR_KEY_EXPORTABLE || r == TG_ERR_POLICY) {
			b = BIND_REPLACED; /* refused now: err says why */
			goto out;
		}
		if (r != 0 && (r != TG_ERR_KEY_NOT_FOUND || logged))
			goto out;
		if (r != 0)
			tg_error_clear(err); /* hidden before login: look again after */
		if (k2 != NULL && (k2->t->m != t->m || k2->t->slot != t->slot)) {
			/* the URI now names a token in another slot (the
			 * original card in a second reader?): not this one */
			tg_error_set(err, TG_ERR_TOKEN_NOT_FOUND,
			             "key '%s' was found in another slot than the watched one",
			             k->label);
			goto out;
		}
		tg_p11_lock(t->p);
		c = candidate(t, s, k2 != NULL ? k2->h : CK_INVALID_HANDLE, k, w->known);
		tg_p11_unlock(t->p);
		if (c == CAND_OTHER) {
			b = BIND_REPLACED;
			tg_error_set(err, TG_ERR_KEY_NOT_FOUND,
			             "it shows another public key for key '%s' than the one "
			             "checked before the removal",
			             k->label);
			goto out;
		}
		/*
		 * Card evidence of the origin (tg_p11_key_origin_set) was about
		 * this very public key: it stays with the key the token shows
		 * again (as tg_p11_key_rebind keeps it); the proof below checks
		 * that the token holds its private key.
		 */
		if (k2 != NULL && c == CAND_SAME && k->trust.origin != TG_P11_ORIGIN_NONE) {
			k2->trust.origin = k->trust.origin;
			memcpy(k2->trust.evidence, k->trust.evidence, sizeof(k2->trust.evidence));
			tg_p11_trust_verdict(&k2->trust);
		}
		if (k2 != NULL && (tg_p11_key_trust(k2, &tr) != 0 || trust_worse(&w->trust, &tr))) {
			b = BIND_REPLACED;
			tg_error_set(err, TG_ERR_KEY_EXPORTABLE,
			             "the trust verdict of key '%s' is worse than before the "
			             "removal: %s",
			             k->label, tr.reason);
			goto out;
		}
		if (logged || !(ti->flags & CKF_LOGIN_REQUIRED)) {
			if (k2 != NULL)
				break;
			r = tg_error_set(err, TG_ERR_KEY_NOT_FOUND,
			                 "key '%s' is no longer on the token", k->label);
			goto out;
		}
		/* a spent pin-value: the login says why it is not kept */
		if (!tg_pin_src_noninteractive(t->pin) && tg_pin_src_kind(t->pin) != TG_PIN_VALUE) {
			tg_error_set(err, TG_ERR_NO_PIN,
			             "no non-interactive PIN source: log in again by "
			             "restarting, or add pin-source= to the key URI or set "
			             "TOKENGATE_PIN");
			goto out;
		}
		if (tg_p11_token_login(t, NULL, 0, err) != 0)
			goto out;
		logged = 1;
		tg_p11_key_free(k2); /* found again, now that we are logged in */
		k2 = NULL;
	}
	if (prove(k2, w->known, err) != 0) {
		b = BIND_REPLACED;
		goto out;
	}
	tg_p11_lock(t->p);
	k->h = k2->h;
	k->trust = tr;
	tg_p11_unlock(t->p);
	b = BIND_OK;
out:
	/* k2 (and its libp11 key) first: libp11's logout drops its key
	 * cache, and a key freed after that keeps its slot (and the PIN
	 * copy libp11 holds there) allocated */
	tg_p11_key_free(k2);
	if (b != BIND_OK && logged)
		logout(t);
	*pin_sent = logged;
	return b;
}

/*
 * The slot went from empty to full: its token info is read (this once) and
 * a token whose serial or label is not ours is left alone, as is one with
 * an empty serial (it cannot be told from another). A token with our
 * serial and label is bound again (rebind) or reported as replaced.
 */
static void
token_arrived(struct tg_p11_watch *w)
{
	struct tg_p11_token *t = w->k->t;
	CK_TOKEN_INFO ti;
	struct tg_error err;
	char serial[17], label[33];
	enum bind b;
	int pin_sent = 0;
	CK_RV rv;

	tg_p11_lock(t->p);
	rv = t->m->f->C_GetTokenInfo(t->slot, &ti);
	tg_p11_unlock(t->p);
	if (rv != CKR_OK)
		return;
	tg_p11_padded_copy(serial, sizeof(serial), ti.serialNumber, sizeof(ti.serialNumber));
	tg_p11_padded_copy(label, sizeof(label), ti.label, sizeof(ti.label));
	if (serial[0] == '\0' || strcmp(serial, w->serial) != 0 || strcmp(label, w->label) != 0)
		return;
	tg_error_clear(&err);
	b = rebind(w, &ti, &pin_sent, &err);
	if (b == BIND_OK) {
		w->present = 1;
		emit(w, TG_P11_EV_INSERTED,
		     "token '%s' inserted; key '%s' proven by a signature over a fresh "
		     "challenge%s",
		     label, w->k->label,
		     (ti.flags & CKF_LOGIN_REQUIRED) ? "; logged in again" : "");
	} else if (b == BIND_REPLACED) {
		emit(w, TG_P11_EV_REPLACED,
		     "token '%s' (serial %s) inserted, but it is not the token checked "
		     "before the removal: %s; %s; insert the original token",
		     label, serial, err.msg,
		     pin_sent ? "logged out again" : "the PIN was not sent to it");
	} else {
		w->present = 1; /* ours by serial; its removal is reported */
		emit(w, TG_P11_EV_RELOGIN_FAILED, "token '%s' inserted, login failed: %s", label,
		     tg_error_msg(&err, TG_ERR_LOGIN));
	}
}

static void *
watch_main(void *arg)
{
	struct tg_p11_watch *w = arg;
	struct timespec ts;
	int full, stop = 0;

	while (!stop) {
		full = slot_full(w);
		if (!full) {
			if (w->present) {
				w->present = 0;
				unbind(w->k);
				emit(w, TG_P11_EV_REMOVED, "token '%s' removed", w->label);
			}
			w->full = 0;
		} else if (!w->full) {
			w->full = 1;
			token_arrived(w);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)w->interval_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&w->mu);
		if (!w->stop)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		stop = w->stop;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

int
tg_p11_watch_start(struct tg_p11_key *k, unsigned interval_ms, tg_p11_watch_fn cb, void *arg,
                   struct tg_p11_watch **out, struct tg_error *err)
{
	struct tg_p11_watch *w = NULL;
	int r = TG_ERR_ALLOC, inited = 0;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		tg_error_set(err, r, "out of memory starting a token watcher");
		goto out;
	}
	w->pipefd[0] = w->pipefd[1] = -1;
	w->k = k;
	w->cb = cb;
	w->arg = arg;
	w->interval_ms = interval_ms == 0 || interval_ms > WATCH_MAX_INTERVAL_MS
	                     ? WATCH_MAX_INTERVAL_MS
	                     : interval_ms;
	snprintf(w->serial, sizeof(w->serial), "%s", k->t->info.serial);
	snprintf(w->label, sizeof(w->label), "%s", k->t->info.label);
	(void)tg_p11_key_trust(k, &w->trust);
	if ((w->known = tg_p11_key_public(k)) == NULL) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "the public key of key '%s' on token '%s' is unknown, so the "
		                 "watcher could not tell it again after a removal; give the "
		                 "key a public key object or certificate",
		                 k->label, k->t->info.label);
		goto out;
	}
	w->present = w->full = slot_full(w);
	if (pipe2(w->pipefd, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pthread_mutex_init(&w->mu, NULL) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot create the watcher: %s",
		                 strerror(errno));
		goto out;
	}
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot create the watcher");
		goto out;
	}
	inited = 1;
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot start the watcher thread");
		goto out;
	}
	*out = w;
	w = NULL;
	r = 0;
out:
	if (w != NULL) {
		if (inited) {
			pthread_cond_destroy(&w->cv);
			pthread_mutex_destroy(&w->mu);
		}
		if (w->pipefd[0] >= 0)
			close(w->pipefd[0]);
		if (w->pipefd[1] >= 0)
			close(w->pipefd[1]);
		EVP_PKEY_free(w->known);
		free(w);
	}
	return r;
}

int
tg_p11_watch_fd(const struct tg_p11_watch *w)
{
	return w->pipefd[0];
}

int
tg_p11_watch_next(struct tg_p11_watch *w, struct tg_p11_watch_event *ev)
{
	char one;
	ssize_t rd;
	int got = 0;

	pthread_mutex_lock(&w->mu);
	if (w->qlen > 0) {
		*ev = w->q[w->qhead];
		w->qhead = (w->qhead + 1) % WATCH_QUEUE;
		w->qlen--;
		rd = read(w->pipefd[0], &one, 1);
		(void)rd;
		got = 1;
	}
	pthread_mutex_unlock(&w->mu);
	return got;
}

int
tg_p11_watch_present(const struct tg_p11_watch *w)
{
	return w->present;
}

void
tg_p11_watch_stop(struct tg_p11_watch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->pipefd[0]);
	close(w->pipefd[1]);
	EVP_PKEY_free(w->known);
	free(w);
}
