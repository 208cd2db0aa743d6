/*
 * tg_csr.h — the certificate request `tokengate enroll` sends to the CA.
 *
 * A PKCS#10 request built with OpenSSL's X509_REQ API: subject CN = the
 * identity (its last path segment when the identity is longer than the 64
 * characters a CN may hold), the identity as the one URI subjectAltName of
 * a requested extension, the token's public key. It is signed either by an
 * external signer (a PIV token: the signer gets the hash for ECDSA or the
 * PKCS#1 v1.5 padded block for RSA, never the key) or by an EVP_PKEY (an
 * HSM key through libp11), and always verified locally afterwards.
 */
#ifndef TG_CSR_H
#define TG_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_err.h"

/*
 * An external signer: signs n bytes at in (the digest for ECDSA, the padded
 * block for RSA) and returns 0 and *sig (heap, caller frees with free()),
 * *siglen: the DER ECDSA-Sig-Value or the RSA block.
 */
typedef int (*tg_csr_sign_fn)(void *ctx, const uint8_t *in, size_t n, uint8_t **sig, size_t *siglen,
                              struct tg_error *err);

/* Builds the unsigned request for id and pub. *out owned by the caller. */
int tg_csr_new(const char *id, EVP_PKEY *pub, X509_REQ **out, struct tg_error *err);

/*
 * The digest enroll signs with for a key: SHA-384 for P-384, else SHA-256.
 */
const EVP_MD *tg_csr_md(EVP_PKEY *pub);

/*
 * The RSA EMSA-PKCS1-v1_5 block (RFC 8017 9.2) of digest md over dlen
 * bytes at dgst, for a modulus of klen bytes, into out (klen bytes).
 */
int tg_csr_rsa_pad(const EVP_MD *md, const uint8_t *dgst, size_t dlen, uint8_t *out, size_t klen,
                   struct tg_error *err);

/*
 * Signs req with an external signer: hashes i2d_re_X509_REQ_tbs, has fn
 * sign it, sets the signature and its algorithm
 * (X509_REQ_set0_signature / X509_REQ_set1_signature_algo), then checks
 * the DER of the whole request verifies with pub. TG_ERR_CSR when the
 * token's signature does not verify.
 */
int tg_csr_sign_external(X509_REQ *req, EVP_PKEY *pub, tg_csr_sign_fn fn, void *ctx,
                         struct tg_error *err);

/* Signs req with key (X509_REQ_sign) and verifies it with pub. */
int tg_csr_sign_evp(X509_REQ *req, EVP_PKEY *key, EVP_PKEY *pub, struct tg_error *err);

/* Verifies the DER round trip of req with pub (0 or TG_ERR_CSR). */
int tg_csr_verify(X509_REQ *req, EVP_PKEY *pub, struct tg_error *err);

#endif /* TG_CSR_H */
