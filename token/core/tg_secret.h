/*
 * tg_secret.h — handling of secrets (PINs, management keys, private keys).
 *
 * Every buffer that held a secret is wiped before it is freed or goes out of
 * scope, and secrets are compared in constant time (docs/architecture.md,
 * rule 2). These are thin wrappers over OPENSSL_cleanse and CRYPTO_memcmp so
 * every part uses the same calls.
 */
#ifndef TG_SECRET_H
#define TG_SECRET_H

#include <stddef.h>

/* Overwrites n bytes at p with zeros in a way the compiler keeps. p may be
 * NULL when n is 0. */
void tg_wipe(void *p, size_t n);

/* Wipes n bytes at p, then frees p. p may be NULL. */
void tg_freezero(void *p, size_t n);

/* Wipes and frees a NUL-terminated string. s may be NULL. */
void tg_strfreezero(char *s);

/*
 * Compares two secrets in time independent of their contents. Returns 1 when
 * alen == blen and the bytes are equal, else 0. When the lengths differ it
 * still reads min(alen, blen) bytes, so the length is the only thing a timer
 * learns.
 */
int tg_secret_eq(const void *a, size_t alen, const void *b, size_t blen);

#endif /* TG_SECRET_H */
