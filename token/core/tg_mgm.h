/*
 * tg_mgm.h — the PIV management key algorithms (NIST SP 800-78-4 table 6-2
 * and Yubico's AES extension): their ECB ciphers and key lengths, read from
 * the algorithm table of tg_piv.h. Part of tgcore: the simulator's init and
 * the enroll PIV client share it.
 */
#ifndef TG_MGM_H
#define TG_MGM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/*
 * The ECB cipher of management key algorithm alg (TG_PIV_ALG_3DES,
 * TG_PIV_ALG_AES128, TG_PIV_ALG_AES192, TG_PIV_ALG_AES256; tg_piv.h), and
 * its key length in *keylen (24 for 3DES and AES-192, 16 for AES-128, 32
 * for AES-256).
 * NULL, and *keylen 0, for any other alg.
 */
const EVP_CIPHER *tg_mgm_cipher(uint8_t alg, size_t *keylen);

#endif /* TG_MGM_H */
