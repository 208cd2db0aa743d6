/* csr.c — the PKCS#10 request of enroll, signed on the token (tg_csr.h). */
/* RSA_padding_add_PKCS1_type_1 is deprecated in OpenSSL 3, which has no
 * EVP call that encodes EMSA-PKCS1-v1_5 for a key held elsewhere (the PIV
 * token signs the raw block); keep it without the deprecation warning. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "tg_csr.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "tg_secret.h"

#define CN_MAX      64 /* RFC 5280 ub-common-name */
#define MD_MAX      EVP_MAX_MD_SIZE
#define RSA_PAD_MIN 11 /* RFC 8017 9.2: at least 8 bytes of FF plus 3 */
#define DI_MAX      128

int
tg_csr_new(const char *id, EVP_PKEY *pub, X509_REQ **out, struct tg_error *err)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gen = NULL;
	ASN1_IA5STRING *uri = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext = NULL;
	const char *cn = id, *slash;
	int r = TG_ERR_CRYPTO;

	if (strlen(cn) > CN_MAX && (slash = strrchr(id, '/')) != NULL)
		cn = slash + 1;
	if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, 0) != 1 ||
	    (name = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pub) != 1) {
		tg_error_set(err, r, "cannot build the request for '%s' (CN '%s')", id, cn);
		goto out;
	}
	if ((gens = GENERAL_NAMES_new()) == NULL || (gen = GENERAL_NAME_new()) == NULL ||
	    (uri = ASN1_IA5STRING_new()) == NULL || ASN1_STRING_set(uri, id, -1) != 1)
		goto fail;
	GENERAL_NAME_set0_value(gen, GEN_URI, uri);
	uri = NULL;
	if (!sk_GENERAL_NAME_push(gens, gen))
		goto fail;
	gen = NULL;
	if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL || !sk_X509_EXTENSION_push(exts, ext))
		goto fail;
	ext = NULL;
	if (X509_REQ_add_extensions(req, exts) != 1)
		goto fail;
	*out = req;
	req = NULL;
	r = 0;
	goto out;
fail:
	tg_error_set(err, r, "cannot add the subjectAltName URI '%s' to the request", id);
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(uri);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return r;
}

const EVP_MD *
tg_csr_md(EVP_PKEY *pub)
{
	if (EVP_PKEY_is_a(pub, "EC") && EVP_PKEY_get_bits(pub) == 384)
		return EVP_sha384();
	return EVP_sha256();
}

int
tg_csr_rsa_pad(const EVP_MD *md, const uint8_t *dgst, size_t dlen, uint8_t *out, size_t klen,
               struct tg_error *err)
{
	X509_SIG *di = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char *der = NULL;
	int n = 0, r = TG_ERR_CRYPTO;

	/* DigestInfo through OpenSSL's ASN.1 (RFC 8017 9.2 step 2) */
	if ((di = X509_SIG_new()) == NULL) {
		tg_error_set(err, r, "cannot encode the DigestInfo of the request's digest");
		goto out;
	}
	X509_SIG_getm(di, &alg, &os);
	if (X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL, NULL) != 1 ||
	    ASN1_OCTET_STRING_set(os, dgst, (int)dlen) != 1 || (n = i2d_X509_SIG(di, &der)) <= 0) {
		tg_error_set(err, r, "cannot encode the DigestInfo of the request's digest");
		goto out;
	}
	r = TG_ERR_INVALID_ARG;
	if ((size_t)n + RSA_PAD_MIN > klen || klen > INT_MAX) {
		tg_error_set(err, r, "RSA key of %zu bytes too short for the digest", klen);
		goto out;
	}
	/* EM = 00 01 FF..FF 00 DigestInfo (steps 3-5), by OpenSSL */
	r = TG_ERR_CRYPTO;
	if (RSA_padding_add_PKCS1_type_1(out, (int)klen, der, n) != 1) {
		tg_error_set(err, r, "OpenSSL cannot pad the digest for an RSA key of %zu bytes",
		             klen);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	X509_SIG_free(di);
	return r;
}

int
tg_csr_verify(X509_REQ *req, EVP_PKEY *pub, struct tg_error *err)
{
	unsigned char *der = NULL;
	const unsigned char *q;
	X509_REQ *back = NULL;
	EVP_PKEY *inreq;
	int n, r = TG_ERR_CSR;

	if ((n = i2d_X509_REQ(req, &der)) <= 0) {
		tg_error_set(err, r, "cannot encode the request");
		goto out;
	}
	q = der;
	if ((back = d2i_X509_REQ(NULL, &q, n)) == NULL || q != der + n) {
		tg_error_set(err, r, "the encoded request does not parse back");
		goto out;
	}
	if ((inreq = X509_REQ_get0_pubkey(back)) == NULL || EVP_PKEY_eq(inreq, pub) != 1) {
		tg_error_set(err, r, "the request's public key is not the token's key");
		goto out;
	}
	if (X509_REQ_verify(back, pub) != 1) {
		tg_error_set(err, r,
		             "the request's signature made by the token does not verify with the "
		             "key the token generated");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_REQ_free(back);
	OPENSSL_free(der);
	return r;
}

int
tg_csr_sign_external(X509_REQ *req, EVP_PKEY *pub, tg_csr_sign_fn fn, void *ctx,
                     struct tg_error *err)
{
	const EVP_MD *md = tg_csr_md(pub);
	int is_rsa = EVP_PKEY_is_a(pub, "RSA");
	unsigned char *tbs = NULL;
	uint8_t dgst[MD_MAX], *block = NULL, *sig = NULL;
	unsigned dlen = 0;
	size_t klen = 0, siglen = 0;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *bs = NULL;
	int n, nid, r = TG_ERR_CRYPTO;

	if (!is_rsa && !EVP_PKEY_is_a(pub, "EC")) {
		r = tg_error_set(err, TG_ERR_UNSUPPORTED, "only EC and RSA keys are supported");
		goto out;
	}
	if ((n = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0 ||
	    EVP_Digest(tbs, (size_t)n, dgst, &dlen, md, NULL) != 1) {
		tg_error_set(err, r, "cannot hash the request");
		goto out;
	}
	if (is_rsa) {
		klen = (size_t)EVP_PKEY_get_size(pub);
		r = TG_ERR_ALLOC;
		if ((block = malloc(klen)) == NULL) {
			tg_error_set(err, r, "out of memory for the RSA block of %zu bytes", klen);
			goto out;
		}
		if ((r = tg_csr_rsa_pad(md, dgst, dlen, block, klen, err)) != 0)
			goto out;
		r = fn(ctx, block, klen, &sig, &siglen, err);
	} else {
		r = fn(ctx, dgst, dlen, &sig, &siglen, err);
	}
	if (r != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	nid = is_rsa ? (EVP_MD_get_type(md) == NID_sha384 ? NID_sha384WithRSAEncryption
	                                                  : NID_sha256WithRSAEncryption)
	             : (EVP_MD_get_type(md) == NID_sha384 ? NID_ecdsa_with_SHA384
	                                                  : NID_ecdsa_with_SHA256);
	if ((alg = X509_ALGOR_new()) == NULL ||
	    X509_ALGOR_set0(alg, OBJ_nid2obj(nid), is_rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL) !=
	        1 ||
	    (bs = ASN1_BIT_STRING_new()) == NULL || siglen > INT32_MAX ||
	    ASN1_BIT_STRING_set(bs, sig, (int)siglen) != 1) {
		tg_error_set(err, r, "cannot set the token's signature on the request");
		goto out;
	}
	/* no unused bits: without this flag the encoder would trim trailing
	 * zero bytes of the signature (as X509_sign also sets it) */
	bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	if (X509_REQ_set1_signature_algo(req, alg) != 1) {
		tg_error_set(err, r, "cannot set the token's signature on the request");
		goto out;
	}
	X509_REQ_set0_signature(req, bs);
	bs = NULL;
	r = tg_csr_verify(req, pub, err);
out:
	ASN1_BIT_STRING_free(bs);
	X509_ALGOR_free(alg);
	free(sig);
	free(block);
	OPENSSL_free(tbs);
	return r;
}

int
tg_csr_sign_evp(X509_REQ *req, EVP_PKEY *key, EVP_PKEY *pub, struct tg_error *err)
{
	unsigned long e;
	int r = TG_ERR_CRYPTO;

	if (X509_REQ_sign(req, key, tg_csr_md(pub)) <= 0) {
		e = ERR_peek_last_error();
		tg_error_set(err, r, "signing the request with the token's key failed: %s",
		             e ? ERR_reason_error_string(e) : "unknown error");
		ERR_clear_error();
		goto out;
	}
	r = tg_csr_verify(req, pub, err);
out:
	return r;
}
