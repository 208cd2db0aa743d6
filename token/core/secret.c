/* secret.c — wiping and constant-time comparison of secrets (tg_secret.h). */
#include "tg_secret.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void
tg_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void
tg_freezero(void *p, size_t n)
{
	if (p != NULL) {
		tg_wipe(p, n);
		free(p);
	}
}

void
tg_strfreezero(char *s)
{
	if (s != NULL)
		tg_freezero(s, strlen(s));
}

int
tg_secret_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int same = 1;

	/* Compare the common prefix whatever the lengths, so the lengths are
	 * the only thing the timing shows: no early return. */
	if (n > 0 && CRYPTO_memcmp(a, b, n) != 0)
		same = 0;
	if (alen != blen)
		same = 0;
	return same;
}
