/*
 * tg_mgm.h — the PIV management key algorithms (NIST SP 800-78-4 table 6-2
 * and Yubico's AES extension): their algorithm ids, ECB ciphers and key
 * lengths. Part of tgcore: the simulator's init and the enroll PIV client
 * share it.
 */
#ifndef TG_MGM_H
#define TG_MGM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define TG_MGM_ALG_3DES   0x03
#define TG_MGM_ALG_AES128 0x08
#define TG_MGM_ALG_AES192 0x0A
#define TG_MGM_ALG_AES256 0x0C

/*
 * The ECB cipher of management key algorithm alg, and its key length in
 * *keylen (24 for 3DES and AES-192, 16 for AES-128, 32 for AES-256).
 * NULL, and *keylen 0, for any other alg.
 */
const EVP_CIPHER *tg_mgm_cipher(uint8_t alg, size_t *keylen);

#endif /* TG_MGM_H */
