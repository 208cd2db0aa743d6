/* mgm.c — PIV management key algorithms (tg_mgm.h). */
#include "tg_mgm.h"

const EVP_CIPHER *
tg_mgm_cipher(uint8_t alg, size_t *keylen)
{
	const EVP_CIPHER *c = NULL;

	*keylen = 0;
	switch (alg) {
	case TG_MGM_ALG_3DES:
		*keylen = 24;
		c = EVP_des_ede3_ecb();
		break;
	case TG_MGM_ALG_AES128:
		*keylen = 16;
		c = EVP_aes_128_ecb();
		break;
	case TG_MGM_ALG_AES192:
		*keylen = 24;
		c = EVP_aes_192_ecb();
		break;
	case TG_MGM_ALG_AES256:
		*keylen = 32;
		c = EVP_aes_256_ecb();
		break;
	default:
		break;
	}
	return c;
}
