/*
 * key.c — private key lookup (by object= and/or id=), public keys built
 * from token attributes, object listing, and the EVP_PKEY from libp11 whose
 * signatures happen on the token.
 */
#include "p11-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "tg_buf.h"
#include "tg_hex.h"
#include "tg_pkey.h"
#include "tg_secret.h"

#define FIND_BATCH 32
#define FIND_MAX   4096

void
tg_p11_hex(const uint8_t *id, size_t len, char *buf, size_t bufsz)
{
	char tail[40];
	size_t fit, tl;

	if (len == 0) {
		snprintf(buf, bufsz, "-");
		goto out;
	}
	snprintf(tail, sizeof(tail), "...(%zu bytes)", len);
	tl = strlen(tail);
	fit = bufsz > 0 ? (bufsz - 1) / 2 : 0;
	if (len <= fit) {
		tg_hex_encode(id, len, buf, bufsz);
		goto out;
	}
	/* never cut silently: the first bytes, then "...(N bytes)" */
	fit = bufsz > tl + 1 ? (bufsz - tl - 1) / 2 : 0;
	tg_hex_encode(id, fit, buf, bufsz);
	snprintf(buf + 2 * fit, bufsz - 2 * fit, "%s", tail);
out:
	return;
}

CK_RV
tg_p11_attr_get(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                CK_ATTRIBUTE_TYPE type, uint8_t **out, size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*out = NULL;
	*len = 0;
	if ((rv = t->m->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == (CK_ULONG)-1)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
		return CKR_HOST_MEMORY;
	if ((rv = t->m->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*out = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

int
tg_p11_objects_find(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                    const char *label, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE **out,
                    size_t *n, struct tg_error *err)
{
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG nt = 0, got = 0;
	CK_OBJECT_HANDLE *v = NULL, *nv;
	size_t k = 0;
	CK_RV rv;
	int r = TG_ERR_PKCS11;

	tmpl[nt].type = CKA_CLASS;
	tmpl[nt].pValue = &cls;
	tmpl[nt++].ulValueLen = sizeof(cls);
	if (label != NULL) {
		tmpl[nt].type = CKA_LABEL;
		tmpl[nt].pValue = (void *)label;
		tmpl[nt++].ulValueLen = strlen(label);
	}
	if (id != NULL) {
		tmpl[nt].type = CKA_ID;
		tmpl[nt].pValue = (void *)id;
		tmpl[nt++].ulValueLen = id_len;
	}
	if ((rv = t->m->f->C_FindObjectsInit(s, tmpl, nt)) != CKR_OK) {
		tg_error_set(err, r, "cannot search token '%s': %s", t->info.label,
		             tg_p11_ckr_name(rv));
		goto out;
	}
	do {
		if (k + FIND_BATCH > FIND_MAX)
			break;
		if ((nv = realloc(v, (k + FIND_BATCH) * sizeof(*v))) == NULL) {
			t->m->f->C_FindObjectsFinal(s);
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
		v = nv;
		if ((rv = t->m->f->C_FindObjects(s, v + k, FIND_BATCH, &got)) != CKR_OK) {
			t->m->f->C_FindObjectsFinal(s);
			tg_error_set(err, r, "cannot search token '%s': %s", t->info.label,
			             tg_p11_ckr_name(rv));
			goto out;
		}
		k += got;
	} while (got == FIND_BATCH);
	t->m->f->C_FindObjectsFinal(s);
	*out = v;
	*n = k;
	v = NULL;
	r = 0;
out:
	free(v);
	return r;
}

/* The tg_p11_alg of a row of tg_piv.h's table: the row's id when it has a
 * command-line name (an algorithm tokengate generates), else other. */
static enum tg_p11_alg
alg_of_row(const struct tg_piv_alg *a, enum tg_p11_alg other)
{
	return a != NULL && a->cli != NULL ? (enum tg_p11_alg)a->id : other;
}

/* Algorithm of an EC key from its DER CKA_EC_PARAMS (a named curve); *bits
 * the curve's size for the curves tokengate generates, else 0. */
static enum tg_p11_alg
ec_alg_from_params(const uint8_t *der, size_t len, int *bits)
{
	const unsigned char *p = der;
	ASN1_OBJECT *o = NULL;
	const struct tg_piv_alg *a = NULL;
	enum tg_p11_alg alg = TG_P11_ALG_EC_OTHER;

	*bits = 0;
	if (len > 0 && d2i_ASN1_OBJECT(&o, &p, (long)len) != NULL &&
	    (a = tg_piv_alg_by_nid(OBJ_obj2nid(o))) != NULL && a->kind == TG_PIV_KIND_EC) {
		alg = alg_of_row(a, TG_P11_ALG_EC_OTHER);
		if (alg != TG_P11_ALG_EC_OTHER)
			*bits = (int)a->bits;
	}
	ASN1_OBJECT_free(o);
	return alg;
}

enum tg_p11_alg
tg_p11_alg_of(const EVP_PKEY *pk, int *bits)
{
	const struct tg_piv_alg *a = tg_piv_alg_of_pkey(pk);
	enum tg_p11_alg alg = TG_P11_ALG_UNKNOWN;

	*bits = EVP_PKEY_get_bits(pk);
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		alg = alg_of_row(a, TG_P11_ALG_RSA_OTHER);
		break;
	case EVP_PKEY_EC:
		alg = alg_of_row(a, TG_P11_ALG_EC_OTHER);
		break;
	default:
		break;
	}
	return alg;
}

/* Algorithm and size of a key object from its public attributes. */
static enum tg_p11_alg
key_alg_attrs(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_KEY_TYPE type,
              int *bits)
{
	uint8_t *v = NULL;
	size_t len = 0;
	enum tg_p11_alg alg = TG_P11_ALG_UNKNOWN;
	CK_ULONG mb = 0;
	CK_ATTRIBUTE a = {CKA_MODULUS_BITS, &mb, sizeof(mb)};

	*bits = 0;
	switch (type) {
	case CKK_RSA:
		if (tg_p11_attr_get(t, s, h, CKA_MODULUS, &v, &len) == CKR_OK && len > 0)
			*bits = (int)len * 8;
		else if (t->m->f->C_GetAttributeValue(s, h, &a, 1) == CKR_OK)
			*bits = (int)mb;
		alg = alg_of_row(tg_piv_alg_by_rsa_bits(*bits), TG_P11_ALG_RSA_OTHER);
		break;
	case CKK_EC:
		if (tg_p11_attr_get(t, s, h, CKA_EC_PARAMS, &v, &len) == CKR_OK)
			alg = ec_alg_from_params(v, len, bits);
		else
			alg = TG_P11_ALG_EC_OTHER;
		break;
	default:
		break;
	}
	free(v);
	return alg;
}

static int
ec_pub_build(const uint8_t *params_der, size_t pl, const uint8_t *point, size_t ptl, EVP_PKEY **out)
{
	const unsigned char *p = point;
	ASN1_OCTET_STRING *os = NULL;
	const uint8_t *pt = point;
	size_t ptlen = ptl;
	int bits;
	enum tg_p11_alg alg = ec_alg_from_params(params_der, pl, &bits);
	const struct tg_piv_alg *a = tg_piv_alg_by_id((uint8_t)alg);
	int r = TG_ERR_CRYPTO;

	/* PKCS#11 v2.40 2.3.3: CKA_EC_POINT is DER OCTET STRING of the point;
	 * some modules give the raw point. */
	if (ptl > 0 && point[0] == V_ASN1_OCTET_STRING &&
	    (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptl)) != NULL && p == point + ptl) {
		pt = ASN1_STRING_get0_data(os);
		ptlen = (size_t)ASN1_STRING_length(os);
	}
	if (alg == TG_P11_ALG_EC_OTHER || a == NULL)
		goto out;
	r = tg_pkey_ec_public(a->group, pt, ptlen, out);
out:
	ASN1_OCTET_STRING_free(os);
	return r;
}

int
tg_p11_pub_from_object(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                       CK_KEY_TYPE type, EVP_PKEY **out)
{
	uint8_t *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	int r = TG_ERR_NOT_FOUND;

	*out = NULL;
	if (type == CKK_RSA) {
		if (tg_p11_attr_get(t, s, h, CKA_MODULUS, &a, &al) == CKR_OK &&
		    tg_p11_attr_get(t, s, h, CKA_PUBLIC_EXPONENT, &b, &bl) == CKR_OK)
			r = tg_pkey_rsa_public(a, al, b, bl, out);
	} else if (type == CKK_EC) {
		if (tg_p11_attr_get(t, s, h, CKA_EC_PARAMS, &a, &al) == CKR_OK &&
		    tg_p11_attr_get(t, s, h, CKA_EC_POINT, &b, &bl) == CKR_OK)
			r = ec_pub_build(a, al, b, bl, out);
	}
	free(a);
	free(b);
	return r;
}

/* An EC signature of the token (r||s, PKCS#11 v2.40 2.3.6) as DER. */
static int
ecdsa_raw_to_der(const uint8_t *raw, size_t n, uint8_t **der, size_t *dl)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *p = NULL;
	int len, r = TG_ERR_CRYPTO;

	if (n == 0 || n % 2 != 0 || (es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(raw, (int)(n / 2), NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + n / 2, (int)(n / 2), NULL)) == NULL ||
	    ECDSA_SIG_set0(es, br, bs) != 1)
		goto out;
	br = bs = NULL; /* owned by es */
	if ((len = i2d_ECDSA_SIG(es, &p)) <= 0)
		goto out;
	*der = p;
	*dl = (size_t)len;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

/*
 * The context-specific login a CKA_ALWAYS_AUTHENTICATE key needs after
 * C_SignInit, with the PIN read again from the source of the URI the token
 * was opened with (a stack buffer, wiped right after). A pin-value serves
 * only the tg_p11_key_find that parsed it: later, err says to use
 * pin-source= or TOKENGATE_PIN. 0 or the CKR code (CKR_PIN_INCORRECT when no PIN).
 */
static CK_RV
context_login(struct tg_p11_key *k, CK_SESSION_HANDLE s, struct tg_error *err)
{
	struct tg_pin pin;
	char who[160];
	CK_RV rv = CKR_PIN_INCORRECT;

	memset(&pin, 0, sizeof(pin));
	snprintf(who, sizeof(who), "key '%s' on token '%s' (CKA_ALWAYS_AUTHENTICATE)", k->label,
	         k->t->info.label);
	if (tg_pin_src_read(k->t->pin, who, 0, &pin, err) != 0)
		goto out;
	rv =
	    k->t->m->f->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)pin.v, (CK_ULONG)pin.len);
out:
	tg_pin_wipe(&pin);
	return rv;
}

/* The refusal of a signature that needs the PIN (CKA_ALWAYS_AUTHENTICATE)
 * when the key's source is a spent pin-value: tg_pin_src_read's message. */
static int
context_pin_gone(struct tg_p11_key *k, struct tg_error *err)
{
	struct tg_pin pin;
	char who[160];
	int r;

	snprintf(who, sizeof(who), "key '%s' on token '%s' (CKA_ALWAYS_AUTHENTICATE)", k->label,
	         k->t->info.label);
	r = tg_pin_src_read(k->t->pin, who, 0, &pin, err);
	tg_pin_wipe(&pin);
	return r != 0 ? r : TG_ERR_INTERNAL;
}

/*
 * Signs msg through the key's own handle k->h on our session: ECDSA over
 * its SHA-256 digest (CKM_ECDSA; the result turned into DER), or RSA
 * PKCS#1 v1.5 with SHA-256 (CKM_SHA256_RSA_PKCS). p->lock held. 0 and
 * *sig (free with OPENSSL_free), else TG_ERR_PKCS11 / TG_ERR_CRYPTO with
 * the CKR code in err.
 */
static int
handle_sign(struct tg_p11_key *k, CK_SESSION_HANDLE s, const uint8_t *msg, size_t ml, uint8_t **sig,
            size_t *sl, struct tg_error *err)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_FUNCTION_LIST_PTR f = k->t->m->f;
	uint8_t dgst[32], *raw = NULL, *out = NULL;
	const uint8_t *in = msg;
	CK_ULONG inl = ml, rl = 0;
	unsigned int dl = 0;
	CK_RV rv;
	struct tg_error lerr; /* the PIN source's cause when the context login fails */
	int r = TG_ERR_PKCS11;

	tg_error_clear(&lerr);
	if (k->type == CKK_RSA) {
		mech.mechanism = CKM_SHA256_RSA_PKCS;
	} else if (k->type == CKK_EC) {
		if (EVP_Digest(msg, ml, dgst, &dl, EVP_sha256(), NULL) != 1) {
			r = tg_error_set(err, TG_ERR_CRYPTO, "cannot hash the challenge");
			goto out;
		}
		in = dgst;
		inl = dl;
	} else {
		r = tg_error_set(err, TG_ERR_UNSUPPORTED, "key type %lu is neither RSA nor EC",
		                 (unsigned long)k->type);
		goto out;
	}
	if ((rv = f->C_SignInit(s, &mech, k->h)) != CKR_OK ||
	    (k->trust.always_authenticate == 1 && (rv = context_login(k, s, &lerr)) != CKR_OK) ||
	    (rv = f->C_Sign(s, (CK_BYTE_PTR)in, inl, NULL, &rl)) != CKR_OK)
		goto fail;
	if ((raw = OPENSSL_malloc(rl ? rl : 1)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((rv = f->C_Sign(s, (CK_BYTE_PTR)in, inl, raw, &rl)) != CKR_OK)
		goto fail;
	if (k->type == CKK_EC) {
		if ((r = ecdsa_raw_to_der(raw, rl, &out, sl)) != 0) {
			tg_error_set(err, r, "the token's ECDSA signature is malformed");
			goto out;
		}
		*sig = out;
	} else {
		*sig = raw;
		*sl = rl;
		raw = NULL;
	}
	r = 0;
	goto out;
fail:
	/* end an operation C_SignInit may have left active */
	(void)f->C_SignInit(s, NULL, k->h);
	if (err != NULL)
		*err = lerr;
	tg_error_wrap(err, r, "signing a challenge through the key's handle failed: %s",
	              tg_p11_ckr_name(rv));
out:
	OPENSSL_free(raw);
	return r;
}

/* 1 when sig (DER for EC) over msg verifies with pub (SHA-256). */
static int
sig_verifies(EVP_PKEY *pub, const uint8_t *msg, size_t ml, const uint8_t *sig, size_t sl)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	int ok = 0;

	if (mc != NULL && EVP_DigestVerifyInit(mc, NULL, EVP_sha256(), NULL, pub) == 1 &&
	    EVP_DigestVerify(mc, sig, sl, msg, ml) == 1)
		ok = 1;
	EVP_MD_CTX_free(mc);
	ERR_clear_error();
	return ok;
}

/* Adds the public keys of the public-key objects and certificates with k's
 * CKA_ID to *v (candidates only: anyone may have written them). */
static void
candidates_add(struct tg_p11_key *k, CK_SESSION_HANDLE s, EVP_PKEY **v, size_t *n, size_t max)
{
	CK_OBJECT_HANDLE *hs = NULL;
	size_t nh = 0, i;
	uint8_t *der = NULL;
	size_t dl = 0;
	const unsigned char *p;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;

	if (tg_p11_objects_find(k->t, s, CKO_PUBLIC_KEY, NULL, k->id, k->id_len, &hs, &nh, NULL) ==
	    0) {
		for (i = 0; i < nh && *n < max; i++) {
			if (tg_p11_pub_from_object(k->t, s, hs[i], k->type, &pk) == 0)
				v[(*n)++] = pk;
			pk = NULL;
		}
	}
	free(hs);
	hs = NULL;
	nh = 0;
	if (tg_p11_objects_find(k->t, s, CKO_CERTIFICATE, NULL, k->id, k->id_len, &hs, &nh, NULL) ==
	    0) {
		for (i = 0; i < nh && *n < max; i++) {
			if (tg_p11_attr_get(k->t, s, hs[i], CKA_VALUE, &der, &dl) != CKR_OK)
				continue;
			p = der;
			if ((x = d2i_X509(NULL, &p, (long)dl)) != NULL &&
			    (pk = X509_get_pubkey(x)) != NULL)
				v[(*n)++] = pk;
			pk = NULL;
			X509_free(x);
			x = NULL;
			free(der);
			der = NULL;
		}
	}
	free(hs);
}

#define CANDIDATES_MAX 16

/* The short name of the named curve in h's CKA_EC_PARAMS ("secp256k1"),
 * or its OID when OpenSSL has no name for it, into buf: 0, or -1 when the
 * object has no readable named curve. */
static int
ec_curve_name(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, char *buf,
              size_t bufsz)
{
	const unsigned char *p;
	ASN1_OBJECT *o = NULL;
	uint8_t *v = NULL;
	size_t len = 0;
	int nid, r = -1;

	if (tg_p11_attr_get(t, s, h, CKA_EC_PARAMS, &v, &len) == CKR_OK && len > 0 &&
	    (p = v, d2i_ASN1_OBJECT(&o, &p, (long)len)) != NULL) {
		nid = OBJ_obj2nid(o);
		if (nid != NID_undef && OBJ_nid2sn(nid) != NULL)
			r = snprintf(buf, bufsz, "%s", OBJ_nid2sn(nid)) > 0 ? 0 : -1;
		else
			r = OBJ_obj2txt(buf, (int)bufsz, o, 1) > 0 ? 0 : -1;
	}
	ASN1_OBJECT_free(o);
	free(v);
	return r;
}

/*
 * Establishes k->pub for the one object k->h (issue: a public-key object
 * found by CKA_ID can be planted without the PIN). Evidence, in order:
 *  1. the private object's own public attributes (CKA_EC_PARAMS +
 *     CKA_EC_POINT, or CKA_MODULUS + CKA_PUBLIC_EXPONENT);
 *  2. else the candidate (public-key object or certificate with its id)
 *     that verifies a signature made through k->h over a fresh 32-byte
 *     random challenge.
 * p->lock held. 0, or TG_ERR_CERT_MISMATCH / TG_ERR_NOT_FOUND /
 * TG_ERR_PKCS11 / TG_ERR_UNSUPPORTED (an EC key on a curve other than
 * P-256 and P-384) with a message naming the key and the fix.
 */
static int
key_pub_establish(struct tg_p11_key *k, CK_SESSION_HANDLE s, struct tg_error *err)
{
	EVP_PKEY *cand[CANDIDATES_MAX];
	size_t nc = 0, i;
	uint8_t chal[32], *sig = NULL;
	size_t sl = 0;
	char hex[TG_P11_HEX_BUF], curve[80];
	struct tg_error serr;
	int r;

	if ((r = tg_p11_pub_from_object(k->t, s, k->h, k->type, &k->pub)) == 0)
		goto out;
	tg_p11_hex(k->id, k->id_len, hex, sizeof(hex));
	if (k->type == CKK_EC && k->alg == TG_P11_ALG_EC_OTHER &&
	    ec_curve_name(k->t, s, k->h, curve, sizeof(curve)) == 0) {
		/* no public key on its curve can be built: neither from a
		 * public-key object nor proven by a signature */
		r = tg_error_set(
		    err, TG_ERR_UNSUPPORTED,
		    "the public key of key '%s' on token '%s' cannot be established: "
		    "it is an EC key on curve %s, which tokengate does not support; use "
		    "a P-256 or P-384 key",
		    k->label, k->t->info.label, curve);
		goto out;
	}
	candidates_add(k, s, cand, &nc, CANDIDATES_MAX);
	if (nc == 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "the public key of key '%s' on token '%s' cannot be established: "
		                 "the private key object does not show it and no public-key object "
		                 "or certificate has its id %s; store its certificate with "
		                 "'tokengate token import-cert'",
		                 k->label, k->t->info.label, hex);
		goto out;
	}
	tg_error_clear(&serr);
	if (RAND_bytes(chal, sizeof(chal)) != 1) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "no random bytes for a challenge");
		goto out;
	}
	if ((r = handle_sign(k, s, chal, sizeof(chal), &sig, &sl, &serr)) != 0) {
		r = tg_error_set(
		    err, TG_ERR_CERT_MISMATCH,
		    "the public key of key '%s' on token '%s' cannot be established: "
		    "the private key object does not show it, and the %zu candidate(s) "
		    "with id %s could not be proven: %s; log in to the token",
		    k->label, k->t->info.label, nc, hex, serr.msg);
		goto out;
	}
	for (i = 0; i < nc && k->pub == NULL; i++) {
		if (sig_verifies(cand[i], chal, sizeof(chal), sig, sl) &&
		    EVP_PKEY_up_ref(cand[i]) == 1)
			k->pub = cand[i];
	}
	if (k->pub == NULL) {
		r = tg_error_set(
		    err, TG_ERR_CERT_MISMATCH,
		    "the public key of key '%s' on token '%s' cannot be established: "
		    "none of the %zu public-key object(s) or certificate(s) with its id "
		    "%s verifies a signature made by the key (one may have been planted); "
		    "delete them and store the key's own certificate with "
		    "'tokengate token import-cert'",
		    k->label, k->t->info.label, nc, hex);
		goto out;
	}
	r = 0;
out:
	for (i = 0; i < nc; i++)
		EVP_PKEY_free(cand[i]);
	OPENSSL_free(sig);
	return r;
}

int
tg_p11_key_prove(struct tg_p11_key *k, EVP_PKEY *cand, struct tg_error *err)
{
	CK_SESSION_HANDLE s;
	uint8_t chal[32], *sig = NULL;
	size_t sl = 0;
	int r;

	tg_p11_lock(k->t->p);
	tg_p11_fork_check(k->t->p);
	if ((r = tg_p11_token_session(k->t, &s, err)) != 0)
		goto out;
	if (RAND_bytes(chal, sizeof(chal)) != 1) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "no random bytes for a challenge");
		goto out;
	}
	if ((r = handle_sign(k, s, chal, sizeof(chal), &sig, &sl, err)) != 0)
		goto out;
	if (!sig_verifies(cand, chal, sizeof(chal), sig, sl) ||
	    (k->pub != NULL && EVP_PKEY_eq(k->pub, cand) != 1)) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "key '%s' on token '%s' signed a random challenge, but the "
		                 "signature does not verify with the public key given: it is not "
		                 "this key's",
		                 k->label, k->t->info.label);
		goto out;
	}
	if (k->pub == NULL) {
		if (EVP_PKEY_up_ref(cand) != 1) {
			r = tg_error_set(err, TG_ERR_CRYPTO, "cannot reference the public key");
			goto out;
		}
		k->pub = cand;
		k->alg = tg_p11_alg_of(k->pub, &k->bits);
		k->pub_why[0] = '\0';
	}
	r = 0;
out:
	tg_p11_unlock(k->t->p);
	OPENSSL_free(sig);
	return r;
}

/*
 * A whole attribute as a NUL-terminated heap string in *out ("" when the
 * object has none). 0, or TG_ERR_ALLOC / TG_ERR_PKCS11 (the module's
 * error, with its CKR name, for 'what'): a label a module fails to give is
 * not an empty one.
 */
static int
attr_string(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
            const char *what, char **out, struct tg_error *err)
{
	uint8_t *v = NULL;
	size_t len = 0;
	CK_RV rv = tg_p11_attr_get(t, s, h, type, &v, &len);
	int r = TG_ERR_ALLOC;

	*out = NULL;
	if (rv == CKR_HOST_MEMORY) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
		r = tg_error_set(err, TG_ERR_PKCS11,
		                 "cannot read the %s of a private key on token '%s': %s; check the "
		                 "token and its PKCS#11 module",
		                 what, t->info.label, tg_p11_ckr_name(rv));
		goto out;
	}
	if ((*out = malloc(len + 1)) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	if (len > 0)
		memcpy(*out, v, len);
	(*out)[len] = '\0';
	r = 0;
out:
	free(v);
	return r;
}

int
tg_p11_key_load(struct tg_p11_token *t, CK_OBJECT_HANDLE h, unsigned flags, struct tg_p11_key **out,
                struct tg_error *err)
{
	struct tg_p11_key *k = NULL;
	CK_SESSION_HANDLE s;
	CK_KEY_TYPE type = 0;
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof(type)};
	struct tg_error perr;
	CK_RV rv;
	int r;

	if ((r = tg_p11_token_session(t, &s, err)) != 0)
		goto out;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	k->t = t;
	k->h = h;
	k->flags = flags;
	if (t->m->f->C_GetAttributeValue(s, h, &a, 1) == CKR_OK)
		k->type = type;
	/* label and id whole, whatever their length: libp11's key is matched
	 * on both later (tg_p11_key_evp_get) */
	if ((r = attr_string(t, s, h, CKA_LABEL, "label (CKA_LABEL)", &k->label, err)) != 0)
		goto out;
	/* an id the object does not have is the empty id; a module error is
	 * not (the key would be matched on the wrong id later) */
	rv = tg_p11_attr_get(t, s, h, CKA_ID, &k->id, &k->id_len);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_HOST_MEMORY) {
		r = tg_error_set(err, TG_ERR_PKCS11,
		                 "cannot read the id (CKA_ID) of key '%s' on token '%s': %s; check "
		                 "the token and its PKCS#11 module",
		                 k->label, t->info.label, tg_p11_ckr_name(rv));
		goto out;
	}
	if (rv != CKR_OK && (k->id = calloc(1, 1)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	k->alg = key_alg_attrs(t, s, h, k->type, &k->bits);
	tg_p11_trust_read(t, s, h, &k->trust);
	/* a key whose public key cannot be established is still found (its
	 * private object is the evidence, e.g. for the CA's own challenge);
	 * everything that needs the public key refuses with pub_why */
	tg_error_clear(&perr);
	if (key_pub_establish(k, s, &perr) == TG_ERR_ALLOC) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (k->pub != NULL)
		k->alg = tg_p11_alg_of(k->pub, &k->bits);
	else
		snprintf(k->pub_why, sizeof(k->pub_why), "%s", perr.msg);
	*out = k;
	k = NULL;
	r = 0;
out:
	if (k != NULL) {
		k->t = NULL; /* the token stays the caller's */
		tg_p11_key_free(k);
	}
	return r;
}

int
tg_p11_key_rebind(struct tg_p11_key *k, CK_OBJECT_HANDLE h, struct tg_error *err)
{
	struct tg_p11_key *n = NULL;
	int r;

	if ((r = tg_p11_key_load(k->t, h, k->flags & ~(unsigned)TG_P11_KEY_NO_LOGIN, &n, err)) != 0)
		goto out;
	if (n->pub == NULL || k->pub == NULL) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH, "key '%s' cannot be bound again: %s",
		                 k->label, n->pub == NULL ? n->pub_why : k->pub_why);
		goto out;
	}
	if (EVP_PKEY_eq(n->pub, k->pub) != 1) {
		r = tg_error_set(
		    err, TG_ERR_CERT_MISMATCH,
		    "the key now on token '%s' under the id of key '%s' is not the key "
		    "that was checked (different public key): another card or key is "
		    "in the slot; put the original token back",
		    k->t->info.label, k->label);
		goto out;
	}
	/* card evidence was about this very public key */
	n->trust.origin = k->trust.origin;
	memcpy(n->trust.evidence, k->trust.evidence, sizeof(n->trust.evidence));
	tg_p11_trust_verdict(&n->trust);
	if ((r = tg_p11_key_trust_check(n, k->flags, err)) != 0)
		goto out;
	k->h = h;
	k->trust = n->trust;
	r = 0;
out:
	if (n != NULL) {
		n->t = NULL; /* k's token */
		tg_p11_key_free(n);
	}
	return r;
}

static void
keys_describe(struct tg_p11_token *t, CK_SESSION_HANDLE s, char *buf, size_t bufsz)
{
	CK_OBJECT_HANDLE *hs = NULL;
	size_t n = 0, i, off = 0;
	uint8_t *lab = NULL, *id = NULL;
	size_t ll, il;
	char hex[TG_P11_HEX_BUF];
	int w;

	snprintf(buf, bufsz, "none");
	if (tg_p11_objects_find(t, s, CKO_PRIVATE_KEY, NULL, NULL, 0, &hs, &n, NULL) != 0)
		return;
	for (i = 0; i < n && off < bufsz; i++) {
		ll = il = 0;
		(void)tg_p11_attr_get(t, s, hs[i], CKA_LABEL, &lab, &ll);
		(void)tg_p11_attr_get(t, s, hs[i], CKA_ID, &id, &il);
		tg_p11_hex(id, il, hex, sizeof(hex));
		w = snprintf(buf + off, bufsz - off, "%s'%.*s' (id %s)", i ? ", " : "", (int)ll,
		             lab ? (char *)lab : "", hex);
		free(lab);
		free(id);
		lab = id = NULL;
		if (w < 0)
			break;
		off += (size_t)w;
	}
	free(hs);
}

static int
key_find_locked(struct tg_p11 *p, struct tg_p11_token *t, const struct tg_p11_uri *u,
                unsigned flags, struct tg_p11_key **out, struct tg_error *err)
{
	CK_OBJECT_HANDLE *hs = NULL;
	CK_SESSION_HANDLE s;
	const char *label = tg_p11_uri_get(u, TG_P11_URI_OBJECT);
	const char *type = tg_p11_uri_get(u, TG_P11_URI_TYPE);
	const uint8_t *id = NULL;
	size_t idl = 0, n = 0;
	char desc[512];
	int r;

	(void)p;
	(void)tg_p11_uri_id(u, &id, &idl);
	if (label == NULL && id == NULL) {
		r = tg_error_set(err, TG_ERR_URI,
		                 "PKCS#11 URI '%s' names no key: add object=LABEL or "
		                 "id=%%XX to it",
		                 u->str);
		goto out;
	}
	if (type != NULL && strcmp(type, "private") != 0) {
		r = tg_error_set(err, TG_ERR_URI,
		                 "PKCS#11 URI '%s' names a '%s' object; a key URI "
		                 "needs type=private (or no type)",
		                 u->str, type);
		goto out;
	}
	if ((r = tg_p11_token_session(t, &s, err)) != 0)
		goto out;
	if ((r = tg_p11_objects_find(t, s, CKO_PRIVATE_KEY, label, id, idl, &hs, &n, err)) != 0)
		goto out;
	if (n == 0) {
		keys_describe(t, s, desc, sizeof(desc));
		r = tg_error_set(err, TG_ERR_KEY_NOT_FOUND,
		                 "no private key matching '%s' on token '%s'%s; keys "
		                 "present: %s",
		                 u->str, t->info.label,
		                 t->logged_in ? "" : " (not logged in: private keys may be hidden)",
		                 desc);
		goto out;
	}
	if (n > 1) {
		keys_describe(t, s, desc, sizeof(desc));
		r = tg_error_set(err, TG_ERR_KEY_AMBIGUOUS,
		                 "%zu private keys match '%s' on token '%s': %s; add "
		                 "id= to the URI",
		                 n, u->str, t->info.label, desc);
		goto out;
	}
	if ((r = tg_p11_key_load(t, hs[0], flags, out, err)) != 0)
		goto out;
	if ((*out)->trust.always_authenticate == 1 &&
	    tg_p11_module_auth_add(t->m, t->slot, t->pin) != 0) {
		(*out)->t = NULL; /* the token stays the caller's */
		tg_p11_key_free(*out);
		*out = NULL;
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	r = 0;
out:
	free(hs);
	return r;
}

int
tg_p11_key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	int r;

	if ((r = tg_p11_uri_parse(uri, &u, err)) != 0)
		goto out;
	if ((r = tg_p11_token_open(p, uri, &t, err)) != 0)
		goto out;
	if (!(flags & TG_P11_KEY_NO_LOGIN) &&
	    (r = tg_p11_token_login_src(
	         t, t->pin, (flags & TG_P11_KEY_INTERACTIVE) ? TG_P11_LOGIN_INTERACTIVE : 0,
	         err)) != 0)
		goto out;
	tg_p11_lock(p);
	r = key_find_locked(p, t, u, flags, &k, err);
	tg_p11_unlock(p);
	if (r != 0)
		goto out;
	t = NULL; /* owned by k now */
	if (!(flags & TG_P11_KEY_DEFER_TRUST) && (r = tg_p11_key_trust_check(k, flags, err)) != 0)
		goto out;
	/* a pin-value serves this call only (its login and the signatures
	 * proving the key): none stays with the key (freeing wipes it on the
	 * other paths) */
	tg_pin_src_spend(k->t->pin);
	*out = k;
	k = NULL;
	r = 0;
out:
	tg_p11_key_free(k);
	tg_p11_token_free(t);
	tg_p11_uri_free(u);
	return r;
}

void
tg_p11_key_free(struct tg_p11_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->evp);
	EVP_PKEY_free(k->pub);
	tg_p11_token_free(k->t);
	free(k->label);
	free(k->id);
	free(k);
}

struct tg_p11_token *
tg_p11_key_token(struct tg_p11_key *k)
{
	return k->t;
}

const char *
tg_p11_key_label(const struct tg_p11_key *k)
{
	return k->label;
}

const uint8_t *
tg_p11_key_id(const struct tg_p11_key *k, size_t *len)
{
	*len = k->id_len;
	return k->id;
}

enum tg_p11_alg
tg_p11_key_alg(const struct tg_p11_key *k)
{
	return k->alg;
}

static const char *
ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "unknown reason";
}

/* 1 when libp11's key is a private key with exactly k's id and label. */
static int
libp11_same(const PKCS11_KEY *lk, const struct tg_p11_key *k)
{
	const char *l = lk->label != NULL ? lk->label : "";

	return lk->isPrivate && lk->id_len == k->id_len &&
	       (k->id_len == 0 || memcmp(lk->id, k->id, k->id_len) == 0) &&
	       strcmp(l, k->label) == 0;
}

/*
 * libp11's key object for k; p->lock held. libp11 does not show object
 * handles, so the mapping is made provably unique instead: exactly one
 * private key object with k's whole id and label, through our
 * C_FindObjects (and it is k->h) and in libp11's enumeration. The caller
 * then checks the key's signature against k->pub (tg_p11_key_evp_get).
 */
static int
libp11_key(struct tg_p11_key *k, PKCS11_KEY **out, struct tg_error *err)
{
	PKCS11_SLOT *ls;
	PKCS11_KEY *keys = NULL, *found = NULL;
	CK_OBJECT_HANDLE *hs = NULL;
	CK_SESSION_HANDLE s;
	unsigned n = 0, i, same = 0;
	size_t nh = 0;
	char hex[TG_P11_HEX_BUF];
	int pass, r;

	tg_p11_hex(k->id, k->id_len, hex, sizeof(hex));
	if ((r = tg_p11_token_session(k->t, &s, err)) != 0 ||
	    (r = tg_p11_objects_find(k->t, s, CKO_PRIVATE_KEY, k->label, k->id, k->id_len, &hs, &nh,
	                             err)) != 0)
		goto out;
	if (nh != 1 || hs[0] != k->h) {
		r = tg_error_set(err, nh > 1 ? TG_ERR_KEY_AMBIGUOUS : TG_ERR_KEY_NOT_FOUND,
		                 "%zu private key objects on token '%s' have the id %s and label "
		                 "'%s' of key '%s' (exactly its own one expected): the key that "
		                 "signs could not be told apart; delete the other key or give "
		                 "the key a unique id",
		                 nh, k->t->info.label, hex, k->label, k->label);
		goto out;
	}
	for (pass = 0; pass < 2 && found == NULL; pass++) {
		/* keys generated after libp11's first enumeration need a
		 * refresh; the slot array may move, so look the slot up anew */
		if (pass == 1 && tg_p11_module_refresh(k->t->m) != 0)
			break;
		ls = tg_p11_module_lslot(k->t->m, k->t->slot);
		if (ls == NULL || ls->token == NULL ||
		    PKCS11_enumerate_keys(ls->token, &keys, &n) != 0)
			continue;
		for (same = 0, i = 0; i < n; i++) {
			if (libp11_same(&keys[i], k)) {
				same++;
				found = &keys[i];
			}
		}
	}
	if (same != 1) {
		r = tg_error_set(err, same > 1 ? TG_ERR_KEY_AMBIGUOUS : TG_ERR_KEY_NOT_FOUND,
		                 "libp11 sees %u private keys with the id %s and label '%s' on "
		                 "token '%s' (exactly one expected); delete the other key or give "
		                 "the key a unique id",
		                 same, hex, k->label, k->t->info.label);
		goto out;
	}
	*out = found;
	r = 0;
out:
	free(hs);
	return r;
}

int
tg_p11_key_evp_get(struct tg_p11_key *k, EVP_PKEY **out, struct tg_error *err)
{
	PKCS11_KEY *lk = NULL;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *mc = NULL;
	uint8_t chal[32], *sig = NULL;
	size_t sl = 0;
	int r = 0;

	*out = NULL;
	tg_p11_lock(k->t->p);
	tg_p11_fork_check(k->t->p);
	if (k->trust.always_authenticate == 1 && tg_pin_src_kind(k->t->pin) == TG_PIN_VALUE &&
	    !tg_pin_src_noninteractive(k->t->pin))
		/* each signature logs in again (libp11's UI asks our source):
		 * a spent pin-value would fail there without a word */
		r = context_pin_gone(k, err);
	else if (k->h == CK_INVALID_HANDLE)
		/* unbound by the presence watcher: the token left, or another
		 * one came in its place */
		r = tg_error_set(err, TG_ERR_CARD_REMOVED,
		                 "key '%s' is not bound to a token now (its token '%s' was "
		                 "removed, or another token came in its place); insert the "
		                 "original token and wait for it to be proven again",
		                 k->label, k->t->info.label);
	else if (k->evp != NULL && EVP_PKEY_up_ref(k->evp) == 1)
		*out = k->evp;
	else if ((r = libp11_key(k, &lk, err)) == 0 && (pk = PKCS11_get_private_key(lk)) == NULL)
		r = tg_error_set(err, TG_ERR_CRYPTO, "libp11 cannot use key '%s' on token '%s'",
		                 k->label, k->t->info.label);
	tg_p11_unlock(k->t->p);
	if (r != 0 || *out != NULL)
		goto out;
	if (k->pub == NULL) /* no public key to check against: the caller's
			       (the CA verifies a challenge with the CSR's key) */
		goto keep;
	/* outside the lock: a CKA_ALWAYS_AUTHENTICATE key's PIN callback
	 * takes it */
	ERR_clear_error();
	if (RAND_bytes(chal, sizeof(chal)) != 1 || (mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(mc, NULL, &sl, chal, sizeof(chal)) != 1 || (sig = malloc(sl)) == NULL ||
	    EVP_DigestSign(mc, sig, &sl, chal, sizeof(chal)) != 1) {
		r = tg_error_set(
		    err, TG_ERR_CRYPTO,
		    "libp11's key for '%s' on token '%s' could not sign a challenge: %s", k->label,
		    k->t->info.label, ossl_reason());
		goto out;
	}
	if (!sig_verifies(k->pub, chal, sizeof(chal), sig, sl)) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "libp11's key for '%s' on token '%s' signs, but not with the key "
		                 "that was checked (its signature does not verify with the key's "
		                 "proven public key); refusing to use it",
		                 k->label, k->t->info.label);
		goto out;
	}
keep:
	tg_p11_lock(k->t->p);
	if (k->evp == NULL) {
		k->evp = pk;
		pk = NULL;
	}
	if (EVP_PKEY_up_ref(k->evp) == 1)
		*out = k->evp;
	tg_p11_unlock(k->t->p);
	r = *out != NULL ? 0 : tg_error_set(err, TG_ERR_CRYPTO, "cannot reference the key");
out:
	free(sig);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(pk);
	return r;
}

EVP_PKEY *
tg_p11_key_evp(struct tg_p11_key *k)
{
	EVP_PKEY *pk = NULL;

	(void)tg_p11_key_evp_get(k, &pk, NULL);
	return pk;
}

EVP_PKEY *
tg_p11_key_public(struct tg_p11_key *k)
{
	if (k->pub == NULL || EVP_PKEY_up_ref(k->pub) != 1)
		return NULL;
	return k->pub;
}

int
tg_p11_key_public_pem(struct tg_p11_key *k, char **pem, struct tg_error *err)
{
	BIO *b = NULL;
	BUF_MEM *bm = NULL;
	int r = TG_ERR_CRYPTO;

	if (k->pub == NULL) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH, "%s", k->pub_why);
		goto out;
	}
	if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(b, k->pub) != 1) {
		tg_error_set(err, r, "cannot encode the public key");
		goto out;
	}
	BIO_get_mem_ptr(b, &bm);
	if ((*pem = malloc(bm->length + 1)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	memcpy(*pem, bm->data, bm->length);
	(*pem)[bm->length] = '\0';
	r = 0;
out:
	BIO_free(b);
	return r;
}

int
tg_p11_key_sign_test(struct tg_p11_key *k, int pss, const uint8_t *data, size_t len, uint8_t **sig,
                     size_t *siglen, struct tg_error *err)
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *mc = NULL;
	EVP_PKEY_CTX *pc = NULL;
	uint8_t *s = NULL;
	size_t sl = 0;
	int is_rsa, r = TG_ERR_CRYPTO;

	*sig = NULL;
	*siglen = 0;
	ERR_clear_error();
	if (k->pub == NULL) { /* nothing to verify the signature with */
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH, "%s", k->pub_why);
		goto out;
	}
	if ((r = tg_p11_key_evp_get(k, &pk, err)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	is_rsa = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mc, &pc, EVP_sha256(), NULL, pk) != 1 ||
	    (pss && is_rsa &&
	     (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
	      EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
	    EVP_DigestSign(mc, NULL, &sl, data, len) != 1 || (s = malloc(sl)) == NULL ||
	    EVP_DigestSign(mc, s, &sl, data, len) != 1) {
		tg_error_set(err, r, "signing with key '%s' on token '%s' failed: %s", k->label,
		             k->t->info.label, ossl_reason());
		goto out;
	}
	EVP_MD_CTX_free(mc);
	pc = NULL;
	if ((mc = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(mc, &pc, EVP_sha256(), NULL, k->pub) != 1 ||
	    (pss && is_rsa &&
	     (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
	      EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
	    EVP_DigestVerify(mc, s, sl, data, len) != 1) {
		tg_error_set(err, r,
		             "the signature made by key '%s' on token '%s' does not "
		             "verify with its public key: %s",
		             k->label, k->t->info.label, ossl_reason());
		goto out;
	}
	*sig = s;
	*siglen = sl;
	s = NULL;
	r = 0;
out:
	free(s);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(pk);
	return r;
}

/* ---- listing ---- */

static int
list_class(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
           enum tg_p11_obj_class oc, struct tg_p11_object_info **v, size_t *n, struct tg_error *err)
{
	CK_OBJECT_HANDLE *hs = NULL;
	size_t cnt = 0, i, l;
	struct tg_p11_object_info *nv, *o;
	uint8_t *val = NULL;
	size_t vl;
	CK_KEY_TYPE type;
	CK_ATTRIBUTE a;
	const unsigned char *p;
	X509 *x;
	EVP_PKEY *pk;
	struct tm tm;
	int r;

	if ((r = tg_p11_objects_find(t, s, cls, NULL, NULL, 0, &hs, &cnt, err)) != 0)
		goto out;
	if (cnt == 0)
		goto out;
	if ((nv = realloc(*v, (*n + cnt) * sizeof(**v))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	*v = nv;
	for (i = 0; i < cnt; i++) {
		o = &(*v)[(*n)++];
		memset(o, 0, sizeof(*o));
		o->cls = oc;
		if (tg_p11_attr_get(t, s, hs[i], CKA_LABEL, &val, &vl) == CKR_OK) {
			l = vl < sizeof(o->label) ? vl : sizeof(o->label) - 1;
			memcpy(o->label, val, l);
		}
		free(val);
		val = NULL;
		if (tg_p11_attr_get(t, s, hs[i], CKA_ID, &val, &vl) == CKR_OK) {
			/* the first bytes; id_full_len says how long it is */
			o->id_len = vl < sizeof(o->id) ? vl : sizeof(o->id);
			o->id_full_len = vl;
			if (o->id_len > 0)
				memcpy(o->id, val, o->id_len);
		}
		free(val);
		val = NULL;
		if (oc == TG_P11_OBJ_CERT) {
			if (tg_p11_attr_get(t, s, hs[i], CKA_VALUE, &val, &vl) != CKR_OK)
				continue;
			p = val;
			if ((x = d2i_X509(NULL, &p, (long)vl)) != NULL) {
				X509_NAME_oneline(X509_get_subject_name(x), o->subject,
				                  sizeof(o->subject));
				if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
					strftime(o->not_after, sizeof(o->not_after),
					         "%Y-%m-%dT%H:%M:%SZ", &tm);
				if ((pk = X509_get0_pubkey(x)) != NULL)
					o->alg = tg_p11_alg_of(pk, &o->bits);
				X509_free(x);
			}
			free(val);
			val = NULL;
			continue;
		}
		type = 0;
		a.type = CKA_KEY_TYPE;
		a.pValue = &type;
		a.ulValueLen = sizeof(type);
		if (t->m->f->C_GetAttributeValue(s, hs[i], &a, 1) == CKR_OK)
			o->alg = key_alg_attrs(t, s, hs[i], type, &o->bits);
		if (oc == TG_P11_OBJ_PRIVATE_KEY)
			tg_p11_trust_read(t, s, hs[i], &o->trust);
	}
	r = 0;
out:
	free(hs);
	return r;
}

int
tg_p11_token_objects_list(struct tg_p11_token *t, struct tg_p11_object_info **out, size_t *n,
                          struct tg_error *err)
{
	struct tg_p11_object_info *v = NULL;
	CK_SESSION_HANDLE s;
	size_t k = 0;
	int r;

	tg_p11_lock(t->p);
	if ((r = tg_p11_token_session(t, &s, err)) != 0 ||
	    (r = list_class(t, s, CKO_PRIVATE_KEY, TG_P11_OBJ_PRIVATE_KEY, &v, &k, err)) != 0 ||
	    (r = list_class(t, s, CKO_PUBLIC_KEY, TG_P11_OBJ_PUBLIC_KEY, &v, &k, err)) != 0 ||
	    (r = list_class(t, s, CKO_CERTIFICATE, TG_P11_OBJ_CERT, &v, &k, err)) != 0)
		goto out;
	*out = v;
	*n = k;
	v = NULL;
	r = 0;
out:
	tg_p11_unlock(t->p);
	free(v);
	return r;
}
