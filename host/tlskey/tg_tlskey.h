/*
 * tg_tlskey.h — a token key for TLS: a private key on a PKCS#11 token
 * (found through libtgp11 by URI, trust-checked) and its certificate,
 * installed in an SSL_CTX, whose signatures can run off the caller's event
 * loop (OpenSSL's SSL_MODE_ASYNC: the handshake pauses, a signing thread
 * talks to the token, the job's wait fd wakes the loop). Shared by the gate
 * (its server key on an HSM), the agent (the client's identity key) and
 * the embedding API (tokengate.h).
 *
 * Presence: with TG_TLSKEY_WATCH the token's slot is watched
 * (tg_p11_watch_start). While the token is out, signatures fail (a
 * handshake needing one fails; resumed TLS 1.3 sessions need none); when
 * the same token comes back (PIN read again from its non-interactive
 * source) the key is bound again inside the same EVP_PKEY, so SSL_CTXs
 * already configured keep working without being rebuilt. Each change is
 * queued as an event readable through tg_tlskey_event_fd/next.
 *
 * Thread-safety: a tg_tlskey may sign from any number of threads; open,
 * use and free from one thread.
 */
#ifndef TG_TLSKEY_H
#define TG_TLSKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tg_err.h"

struct tg_tlskey;

#define TG_TLSKEY_ASYNC 0x1u /* sign on threads inside ASYNC jobs (else inline) */
#define TG_TLSKEY_WATCH 0x2u /* watch presence, re-bind on insertion */
#define TG_TLSKEY_ALLOW_IMPORTED                                                                   \
	0x4u /* a service key imported into an HSM (the gate's
                                         server key); identity keys must be generated
                                         on the token */

struct tg_tlskey_opts {
	const char *key_uri;   /* pkcs11: URI of the private key (PIN from pin-source=,
	                        pin-value= or TOKENGATE_PIN; never prompted) */
	const char *cert;      /* NULL or "": the certificate object with the key's
	                        CKA_ID on the token; a pkcs11: URI: the same; else a
	                        PEM file path (the leaf, then any intermediates) */
	unsigned flags;        /* TG_TLSKEY_* */
	unsigned sign_threads; /* 0: 2 x online CPUs, at most 16 */
	unsigned watch_ms;     /* presence poll interval, 0: 250 */
	const char *role;      /* names the key in messages: "server" gives "server
	                        key '...'", "server certificate '...'"; NULL:
	                        "token key", "certificate" */
};

/*
 * Finds the key (tg_p11_key_find with the trust check: an exportable key
 * is refused, TG_ERR_KEY_EXPORTABLE with libtgp11's reason; an imported
 * one unless TG_TLSKEY_ALLOW_IMPORTED), its certificate, checks that the
 * certificate's public key is the key's, and builds the signing key.
 * 0 and *out (free with tg_tlskey_free), or the error naming the URI (PIN
 * values masked) and the fix.
 */
int tg_tlskey_open(const struct tg_tlskey_opts *o, struct tg_tlskey **out, struct tg_error *err);

struct tg_p11;
struct tg_p11_key;

/* What tg_tlskey_key_evidence learned of the card behind a token. */
struct tg_tlskey_card {
	int emulated;    /* a PKCS#15-emulated token (OpenSC's PIV driver) */
	int no_evidence; /* emulated, and the card gave no origin for the key */
	char reader[65]; /* the token's PC/SC reader (its slot description) */
	char why[256];   /* why the card gave no PIV metadata at all, or "" */
};

/*
 * tg_p11_key_find of uri with flags | TG_P11_KEY_DEFER_TRUST: the trust
 * check is left to the caller (tg_p11_key_trust_check). On a
 * PKCS#15-emulated token (OpenSC's PIV: no CKA_LOCAL the card vouches for)
 * the card's own evidence of the key's origin is added first: GET
 * METADATA (tag 03) over PC/SC of every PIV key slot, read before the
 * login (closing the PC/SC connection resets the card), and the origin of
 * the slot whose public key is the key's (tg_p11_key_origin_set, "PIV
 * metadata of slot 9A"). Used by tg_tlskey_open and `tokengate token`.
 * 0 with *out (free with tg_p11_key_free) and *card, or the errors of
 * tg_p11_key_find.
 */
int tg_tlskey_key_evidence(struct tg_p11 *p, const char *uri, unsigned flags,
                           struct tg_p11_key **out, struct tg_tlskey_card *card,
                           struct tg_error *err);

/*
 * Installs the certificate (and chain from a PEM file) and the key in ctx
 * (client or server), and SSL_MODE_ASYNC when the key was opened with
 * TG_TLSKEY_ASYNC. ctx holds its own references and may outlive k (the
 * signing key keeps the token key and its context alive). 0, or
 * TG_ERR_TLS / TG_ERR_CERT_MISMATCH with OpenSSL's reason.
 */
int tg_tlskey_ssl_ctx_use(struct tg_tlskey *k, SSL_CTX *ctx, struct tg_error *err);

/* The certificate (borrowed, valid while k is). */
X509 *tg_tlskey_cert(const struct tg_tlskey *k);

/* The key's URI with any PIN masked (borrowed). */
const char *tg_tlskey_uri(const struct tg_tlskey *k);

/* Signatures made on the token through the TLS key since open, inline or
 * on a signing thread (the agent's "token operations"); the proofs libtgp11
 * makes when it binds the key (one per open and per re-insertion) are not
 * counted. */
uint64_t tg_tlskey_sign_count(const struct tg_tlskey *k);

/* 1 while the token is present and the key bound (always 1 without WATCH). */
int tg_tlskey_present(const struct tg_tlskey *k);

enum tg_tlskey_event {
	TG_TLSKEY_EV_REMOVED = 1, /* the token left: close what it authenticated */
	TG_TLSKEY_EV_INSERTED,    /* back and bound again: serve again */
	TG_TLSKEY_EV_FAILED,      /* back but relogin failed or another key: still absent */
};

/* -1 without WATCH; else an fd readable while events are queued (owned by k). */
int tg_tlskey_event_fd(const struct tg_tlskey *k);

/* Takes the oldest event: 1 with *ev and a one-line message in msg (it
 * names the token and the key's label, not the URI, e.g. "token 'alice'
 * removed; the client key signs nothing until it is back"), or 0. */
int tg_tlskey_event_next(struct tg_tlskey *k, enum tg_tlskey_event *ev, char *msg, size_t cap);

/* Stops the watcher, drops the caller's reference (SSL_CTXs using the key
 * keep theirs). NULL is accepted. */
void tg_tlskey_free(struct tg_tlskey *k);

#endif /* TG_TLSKEY_H */
