/*
 * tg_gate_tls.h — the gate's server TLS: one SSL_CTX per configuration,
 * built from the gate's files, that
 *   - offers TLS 1.3 and 1.2 (nothing older), no renegotiation;
 *   - uses the server certificate and key from PEM files, or from a
 *     pkcs11: URI through libtgp11 (a service key on an HSM); a token key
 *     signs off the event loop: the SSL_CTX has SSL_MODE_ASYNC and the key
 *     hands each signature to a signing thread, pausing the handshake's
 *     ASYNC job, whose wait fd becomes readable when the signature is
 *     ready (the caller's loop then calls SSL_do_handshake again on
 *     SSL_ERROR_WANT_ASYNC; SSL_get_all_async_fds gives the fds);
 *   - requires a client certificate and verifies it with tg_gate_verify
 *     (no certificate, or a refused one, fails the handshake: never a 401);
 *   - issues session tickets encrypted with the keys of the ticket key file
 *     (several gates share it; rotation: see tg_gate_tls_ticket_keys_parse)
 *     or, without a file, with keys made once per process (kept across
 *     reloads); a ticket's lifetime never exceeds the remaining life of the
 *     client certificate; on resumption the session's client certificate
 *     is verified again (current CRL, current time): a certificate revoked
 *     or expired since is not resumed (full handshake, which refuses it).
 *
 * Threads: an SSL_CTX of a tg_gate_tls may be used by many threads. A
 * tg_gate_tls is reference counted: every SSL made by tg_gate_tls_ssl_new
 * holds a reference until SSL_free, so a reload can drop its reference to
 * the old configuration while old connections finish.
 */
#ifndef TG_GATE_TLS_H
#define TG_GATE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "tg_err.h"
#include "tg_gate_verify.h"

struct tg_gate_tls_cfg {
	const char *cert;             /* PEM file, or pkcs11: URI (certificate object) */
	const char *key;              /* PEM file, or pkcs11: URI */
	const char *const *client_ca; /* PEM files, nclient_ca >= 1 */
	size_t nclient_ca;
	const char *crl;       /* NULL: none */
	const char *tickets;   /* NULL: per-process keys */
	unsigned handshake_ms; /* for the caller; not used here */
};

struct tg_gate_tls;

/*
 * Builds the TLS configuration. 0 and *out (one reference), or
 * TG_ERR_CONFIG / TG_ERR_IO / TG_ERR_TLS / a libtgp11 error with err naming
 * the file or URI, the problem and the fix (e.g. key and certificate do
 * not match).
 */
int tg_gate_tls_new(const struct tg_gate_tls_cfg *cfg, struct tg_gate_tls **out,
                    struct tg_error *err);

/* Reference counting; unref frees at zero. NULL is accepted by unref. */
void tg_gate_tls_ref(struct tg_gate_tls *t);
void tg_gate_tls_unref(struct tg_gate_tls *t);

/* The SSL_CTX (borrowed). */
SSL_CTX *tg_gate_tls_ctx(const struct tg_gate_tls *t);

/* 1 when the server key signs off the loop (SSL_MODE_ASYNC set). */
int tg_gate_tls_async(const struct tg_gate_tls *t);

/* A server SSL for one connection, holding a reference to t. NULL on OOM. */
SSL *tg_gate_tls_ssl_new(struct tg_gate_tls *t);

/*
 * After the handshake completed: the verified client (from the full
 * handshake's verification, or the re-verification of the resumed
 * session's certificate) into *out, *resumed 1 for a resumed session.
 * 0, or TG_ERR_INTERNAL when the SSL has no verified peer (never after a
 * successful handshake on an SSL of tg_gate_tls_ssl_new). Once: the SSL
 * gives its copy away (a second call is TG_ERR_INTERNAL).
 */
int tg_gate_tls_peer(SSL *ssl, struct tg_gate_peer_info *out, int *resumed);

/*
 * After a failed handshake: why the client was refused (the verifier's
 * message, "no client certificate", or OpenSSL's reason). Never NULL.
 */
const char *tg_gate_tls_reject_reason(SSL *ssl);

/*
 * Reloads the CRL when its file changed since the last load (size, mtime
 * or inode), or always when force. 0 when nothing changed or the new CRL
 * was loaded (*reloaded set); on a refused file the old CRL stays and err
 * says why. Not concurrent with handshakes on other threads: the gate
 * calls it through a fresh tg_gate_tls, or with its workers paused.
 */
int tg_gate_tls_crl_reload(struct tg_gate_tls *t, int force, int *reloaded, struct tg_error *err);

/* Session-ticket keys: name 16, HMAC 32, AES-256 32 bytes. */
#define TG_GATE_TICKET_KEY_LEN 80

/*
 * Bytes per read of a TLS connection's bufferevent
 * (bufferevent_set_max_single_read): a record's plaintext at most (SSL_read
 * returns one record), in one 16 KiB evbuffer chunk. libevent rounds a
 * chunk and its header up to a power of two: reserving 16 KiB takes a
 * 32 KiB chunk, 64 KiB a 128 KiB one (which, allocated and freed per
 * request, made glibc grow and trim its heap each time).
 */
#define TG_GATE_TLS_READ_MAX (16384 - 64)

/*
 * Parses a ticket key file: one key per line, 80 bytes as base64 (e.g.
 * `openssl rand -base64 80 | tr -d '\n'`), '#' comments and blank lines
 * ignored, at most 8 keys. The first key encrypts new tickets; every key
 * decrypts: to rotate, add the new key as a second line on every gate,
 * reload, then move it first, reload, and later drop the old one. *keys is
 * allocated (nkeys * 80 bytes; wipe and free with tg_gate_tls_ticket_keys_free).
 * 0, or TG_ERR_CONFIG with "NAME line N: problem; fix".
 */
int tg_gate_tls_ticket_keys_parse(const char *text, size_t n, const char *name, uint8_t **keys,
                                  size_t *nkeys, struct tg_error *err);
void tg_gate_tls_ticket_keys_free(uint8_t *keys, size_t nkeys);

/* The wait fds of a handshake's paused ASYNC job (a token signature on a
 * signing thread) as libevent read events. */
struct tg_gate_async_wait {
	struct event **ev; /* one per async wait fd */
	size_t n;          /* > 0 while a signature is pending */
};

/*
 * A non-blocking TLS handshake on a libevent loop: what it waits on
 * between SSL_do_handshake calls (readable, writable, the wait fds of a
 * paused ASYNC job, a 1 ms retry timer when no ASYNC job is free). Each
 * calls step(arg), which calls SSL_do_handshake again and
 * tg_gate_hs_io_wait with its SSL_get_error. The gate's handshakes and the
 * agent's upstream connections use it. Zeroed memory is an empty one.
 */
struct tg_gate_hs_io {
	SSL *ssl;
	struct event_base *base;
	struct event *rd, *wr, *retry;
	struct tg_gate_async_wait aw;
	void (*step)(void *arg);
	void *arg;
};

/* Sets io up for ssl on socket fd (its read and write events, not added):
 * 0, or -1 (out of memory; io is still freed with tg_gate_hs_io_free). */
int tg_gate_hs_io_init(struct tg_gate_hs_io *io, SSL *ssl, evutil_socket_t fd,
                       struct event_base *base, void (*step)(void *arg), void *arg);

/*
 * Waits for what lets the handshake go on after SSL_get_error gave e:
 * WANT_READ, WANT_WRITE, WANT_ASYNC (the job's wait fds), WANT_ASYNC_JOB
 * (the retry timer). 0 when waiting; 1 when e is no wait (SSL_ERROR_NONE:
 * done; anything else: failed); -1 out of memory.
 */
int tg_gate_hs_io_wait(struct tg_gate_hs_io *io, int e);

/* Frees io's events (not the SSL); io is empty after. */
void tg_gate_hs_io_free(struct tg_gate_hs_io *io);

#endif /* TG_GATE_TLS_H */
