/*
 * tokengate.h — the tokengate embedding API: TLS with a private key that
 * never leaves its token (a smart card, a YubiKey, an HSM, SoftHSM2), for
 * any C program that uses OpenSSL.
 *
 * The key is named by a pkcs11: URI (RFC 7512) and reached through
 * PKCS#11 (p11-kit's proxy module by default: every registered module,
 * e.g. OpenSC and SoftHSM2; module-path= names another). Its certificate
 * is the token's certificate object with the key's CKA_ID, or a PEM file.
 * The key must pass tokengate's trust check: a key the token says can be
 * exported is always refused, and a key that was imported into the token
 * (or whose origin the token cannot vouch for) is refused unless
 * TOKENGATE_ALLOW_IMPORTED is given; the error message says which
 * attribute failed and what to do.
 *
 * The PIN is never prompted for: it comes from the URI (pin-source=
 * file:PATH or env:NAME; pin-value= for one login only) or the
 * TOKENGATE_PIN environment variable, is read at login into a buffer that
 * is wiped right after, and never appears in messages.
 *
 *   tokengate_key *key;
 *   char err[1024];
 *   if (tokengate_key_open("pkcs11:token=alice;object=api?pin-source=env:PIN",
 *                          NULL, 0, &key, err, sizeof(err)) != 0)
 *           fprintf(stderr, "%s\n", err);
 *   ... for each SSL_CTX the program (or libcurl) makes:
 *   tokengate_key_use(key, ctx, err, sizeof(err));
 *   ...
 *   tokengate_key_free(key);   // SSL_CTXs keep the key alive as needed
 *
 * Off-loop signing (TOKENGATE_ASYNC): a token signature can take 50–200 ms.
 * With this flag the SSL_CTX gets SSL_MODE_ASYNC and each signature runs
 * on a signing thread while the handshake pauses: SSL_do_handshake (or
 * SSL_read/SSL_write) returns -1 with SSL_get_error() == SSL_ERROR_WANT_ASYNC,
 * and the fd from SSL_get_all_async_fds() becomes readable when the
 * signature is ready; call the function again then. Only for programs
 * whose event loop handles SSL_ERROR_WANT_ASYNC; without the flag the
 * signature is made inline (blocking), which suits every other program,
 * libcurl included.
 *
 * Threads: a tokengate_key may be used by SSL_CTXs and SSLs on any
 * threads; open, use and free it from one thread. The library keeps one
 * PKCS#11 context per process, shared by all keys and released with the
 * last one.
 *
 * Link: libtokengate.a (CMake target tokengate_embed, which brings its
 * dependencies: libtgp11, libp11, p11-kit, OpenSSL, libykpiv).
 *
 * Every function returning int returns TOKENGATE_OK (0) or one of the
 * negative TOKENGATE_ERR_* codes, and then writes a one-line message
 * naming the problem and the fix into errbuf (when errbuf is not NULL and
 * errlen > 0; cut short to fit, always NUL-terminated).
 */
#ifndef TOKENGATE_H
#define TOKENGATE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOKENGATE_API_VERSION 1

/* Flags */
#define TOKENGATE_ASYNC 0x1u /* sign on threads, pausing the handshake (see above) */
#define TOKENGATE_WATCH                                                                            \
	0x2u /* watch the token: removed -> signatures fail at once;
                                         inserted again -> logged in again (PIN from its
                                         source), existing SSL_CTXs work again */
#define TOKENGATE_ALLOW_IMPORTED                                                                   \
	0x4u                    /* accept a key imported into the token (a service key
                                         on an HSM); never an exportable key */
#define TOKENGATE_SERVER 0x100u /* tokengate_ssl_ctx_new: a server SSL_CTX (else client) */

/* Results */
#define TOKENGATE_OK            0
#define TOKENGATE_ERR_INVALID   (-1) /* a bad argument: not a pkcs11: URI, NULL, ... */
#define TOKENGATE_ERR_NOT_FOUND (-2) /* no such token or key, or more than one match */
#define TOKENGATE_ERR_REFUSED   (-3) /* the key fails the trust check (exportable, imported) */
#define TOKENGATE_ERR_CERT      (-4) /* no certificate, unreadable, or not the key's */
#define TOKENGATE_ERR_LOGIN     (-5) /* no PIN source, wrong or locked PIN */
#define TOKENGATE_ERR_TOKEN     (-6) /* the module or token failed */
#define TOKENGATE_ERR_TLS       (-7) /* OpenSSL refused the key or certificate */
#define TOKENGATE_ERR_INTERNAL  (-8) /* out of memory, threads, ... */

/* A key on a token with its certificate (opaque). */
typedef struct tokengate_key tokengate_key;

/*
 * Finds the key named by key_uri (a pkcs11: URI), logs in, applies the
 * trust check, and loads its certificate: cert NULL or "" (or a pkcs11:
 * URI) takes the token's certificate with the key's CKA_ID; otherwise
 * cert is a PEM file (the leaf, then any intermediate certificates sent
 * with it). The certificate must be the key's. flags: TOKENGATE_ASYNC,
 * TOKENGATE_WATCH, TOKENGATE_ALLOW_IMPORTED. TOKENGATE_OK and *key (free
 * with tokengate_key_free), or an error code and message.
 */
int tokengate_key_open(const char *key_uri, const char *cert, unsigned flags, tokengate_key **key,
                       char *errbuf, size_t errlen);

/*
 * Installs the key and its certificate (and chain) in ctx, a client or
 * server SSL_CTX the caller owns (SSL_MODE_ASYNC too with
 * TOKENGATE_ASYNC). ctx holds its own references: it may outlive key.
 * Call it for every SSL_CTX, e.g. from libcurl's CURLOPT_SSL_CTX_FUNCTION.
 */
int tokengate_key_use(tokengate_key *key, SSL_CTX *ctx, char *errbuf, size_t errlen);

/* Signatures the token made for TLS through key since it was opened. */
uint64_t tokengate_key_sign_count(const tokengate_key *key);

/* 1 while the token is present and the key usable (always 1 without
 * TOKENGATE_WATCH), else 0. */
int tokengate_key_present(const tokengate_key *key);

/* Drops the caller's reference (and stops watching); SSL_CTXs using the
 * key keep theirs. NULL is accepted. */
void tokengate_key_free(tokengate_key *key);

/*
 * tokengate_key_open, tokengate_key_use on ctx (the caller's, client or
 * server), tokengate_key_free: for a program that configures one SSL_CTX.
 */
int tokengate_ssl_ctx_configure(SSL_CTX *ctx, const char *key_uri, const char *cert, unsigned flags,
                                char *errbuf, size_t errlen);

/*
 * A new SSL_CTX (TLS_client_method, or TLS_server_method with
 * TOKENGATE_SERVER; TLS 1.2 at least; peer verification is the caller's to
 * set, e.g. SSL_CTX_load_verify_locations and SSL_CTX_set_verify)
 * configured with the key. TOKENGATE_OK and *ctx (free with SSL_CTX_free),
 * or an error code and message.
 */
int tokengate_ssl_ctx_new(const char *key_uri, const char *cert, unsigned flags, SSL_CTX **ctx,
                          char *errbuf, size_t errlen);

/* The message for a code (never NULL). */
const char *tokengate_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* TOKENGATE_H */
