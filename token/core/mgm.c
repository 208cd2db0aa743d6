/* mgm.c — PIV management key algorithms (tg_mgm.h). */
#include "tg_mgm.h"

#include "tg_piv.h"

const EVP_CIPHER *
tg_mgm_cipher(uint8_t alg, size_t *keylen)
{
	const struct tg_piv_alg *a = tg_piv_alg_by_id(alg);
	const EVP_CIPHER *c = NULL;

	*keylen = 0;
	if (a == NULL || a->kind != TG_PIV_KIND_SYM || (c = EVP_get_cipherbynid(a->nid)) == NULL)
		goto out;
	*keylen = a->bytes;
out:
	return c;
}
