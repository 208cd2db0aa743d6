/*
 * tg_pkey.h — public keys from their raw parts (an RSA modulus and
 * exponent, an EC point), as tokens and PKCS#11 modules give them. Part of
 * tgcore: the enroll PIV client and the PKCS#11 layer share it.
 */
#ifndef TG_PKEY_H
#define TG_PKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/*
 * RSA public key from the big-endian modulus n (nlen bytes) and exponent e
 * (elen bytes) into *out (free with EVP_PKEY_free). 0 or TG_ERR_CRYPTO.
 */
int tg_pkey_rsa_public(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
                       EVP_PKEY **out);

/*
 * EC public key on the curve group (an OpenSSL group name: "P-256",
 * "prime256v1", "secp384r1", ...) from the encoded point pt (ptlen bytes,
 * SEC 1) into *out. 0 or TG_ERR_CRYPTO (also for a point not on the curve).
 */
int tg_pkey_ec_public(const char *group, const uint8_t *pt, size_t ptlen, EVP_PKEY **out);

#endif /* TG_PKEY_H */
