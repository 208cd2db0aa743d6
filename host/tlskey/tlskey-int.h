/*
 * tlskey-int.h — inside host/tlskey: the key that signs off the event loop
 * (asynckey.c), used by tlskey.c. Not a public header.
 */
#ifndef TG_TLSKEY_INT_H
#define TG_TLSKEY_INT_H

#include <stdint.h>

#include <openssl/evp.h>

#include "tg_err.h"
#include "tg_p11.h"

/* The signer behind a wrapped key (owned by the wrapped EVP_PKEY). */
struct tg_tlskey_async;

/* Frees what the inner key needs (the token key, its context). */
typedef void (*tg_tlskey_async_release)(void *arg);

/*
 * Wraps inner (an RSA or EC private key whose operations may block, e.g.
 * libp11's key on an HSM; the reference is taken) in a new EVP_PKEY *out
 * with the public key pub (inner's, e.g. as the token proved it; not
 * taken) whose signatures run on a pool of nthreads signing threads when
 * called inside an OpenSSL ASYNC job (the job pauses; its wait fd becomes
 * readable when the signature is ready), and inline otherwise (always
 * inline when nthreads is 0). what names the key in messages ("server
 * key"). When the last reference to *out is freed (after every SSL using
 * it), the threads finish, inner is freed and release(arg) is called. On
 * failure release(arg) is not called and inner is left to the caller.
 * *signer (may be NULL) is the signer, valid while *out is: for
 * tg_tlskey_async_swap and _count. 0, or TG_ERR_UNSUPPORTED (neither RSA
 * nor EC) / TG_ERR_CRYPTO / TG_ERR_ALLOC / TG_ERR_INTERNAL (threads).
 */
int tg_tlskey_async_new(EVP_PKEY *inner, EVP_PKEY *pub, unsigned nthreads, const char *what,
                        tg_tlskey_async_release release, void *arg, EVP_PKEY **out,
                        struct tg_tlskey_async **signer, struct tg_error *err);

/*
 * Replaces the key that signs (the reference is taken; the previous one
 * is freed once no signature uses it). NULL: the key is absent, and every
 * signature fails at once (without reaching a thread) until a key is set
 * again. Any thread.
 */
void tg_tlskey_async_swap(struct tg_tlskey_async *s, EVP_PKEY *inner);

/* Operations that reached the token (signatures attempted with a key
 * present), inline or on a thread. */
uint64_t tg_tlskey_async_count(const struct tg_tlskey_async *s);

/*
 * tg_tlskey_key_evidence (tg_p11_key_find with the card's evidence of the
 * key's origin for a PKCS#15-emulated token; evidence.c), then the trust
 * check with flags. Errors
 * as tg_p11_key_find; a refused emulated key without evidence says that
 * no PIV metadata was found and why.
 */
int tg_tlskey_key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                       struct tg_error *err);

#endif /* TG_TLSKEY_INT_H */
