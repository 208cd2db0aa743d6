/*
 * attest.c — slot F9 (the device attestation key, provisioned once and
 * certified by the manufacturer CA) and ATTEST (Yubico INS F9): a
 * certificate for a slot's generated key, in the Yubico PIV attestation
 * format (what a verifier checks of it: docs/provenance.md, "Attestation
 * verification"), built with OpenSSL's X509 API.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

#define OID_YK_FIRMWARE   "1.3.6.1.4.1.41482.3.3"
#define OID_YK_SERIAL     "1.3.6.1.4.1.41482.3.7"
#define OID_YK_POLICY     "1.3.6.1.4.1.41482.3.8"
#define OID_YK_FORMFACTOR "1.3.6.1.4.1.41482.3.9"
#define ATTEST_SERIAL_LEN 16
#define F9_SUBJECT_CN     "tokengate-sim PIV Attestation"
#define ATTEST_SUBJECT_CN "YubiKey PIV Attestation " /* + the slot, "9a" */
#define CERT_MAX          TOK_OBJ_MAX

static int
set_random_serial(X509 *x)
{
	uint8_t rnd[ATTEST_SERIAL_LEN];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int r = TG_ERR_CRYPTO;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	rnd[0] &= 0x7F; /* RFC 5280 4.1.2.2: positive */
	rnd[0] |= 0x40; /* and all 16 bytes significant */
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL || X509_set_serialNumber(x, ai) != 1)
		goto out;
	r = 0;
out:
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return r;
}

/* Adds a non-critical extension whose value is the given raw bytes. */
static int
add_raw_ext(X509 *x, const char *oid, const uint8_t *v, size_t n)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *ext = NULL;
	int r = TG_ERR_CRYPTO;

	if ((obj = OBJ_txt2obj(oid, 1)) == NULL || (os = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(os, v, (int)n) != 1 ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		goto out;
	r = 0;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return r;
}

/* The serial extension's value is a DER INTEGER (encoded by OpenSSL). */
static int
add_serial_ext(X509 *x, uint32_t serial)
{
	ASN1_INTEGER *ai = NULL;
	uint8_t *der = NULL;
	int n, r = TG_ERR_CRYPTO;

	if ((ai = ASN1_INTEGER_new()) == NULL || ASN1_INTEGER_set_uint64(ai, serial) != 1 ||
	    (n = i2d_ASN1_INTEGER(ai, &der)) <= 0)
		goto out;
	r = add_raw_ext(x, OID_YK_SERIAL, der, (size_t)n);
out:
	OPENSSL_free(der);
	ASN1_INTEGER_free(ai);
	return r;
}

static int
add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	int r = TG_ERR_CRYPTO;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		goto out;
	r = 0;
out:
	X509_EXTENSION_free(ext);
	return r;
}

static int
set_cn(X509_NAME *name, const char *cn)
{
	return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                  -1, 0) == 1
	           ? 0
	           : TG_ERR_CRYPTO;
}

/* Stores a DER certificate as slot F9's object (70 cert 71 00 FE). */
static int
store_f9_cert(struct tg_tok *t, X509 *x)
{
	uint8_t *der = NULL;
	struct tg_buf b;
	int n, r = TG_ERR_CRYPTO;

	memset(&b, 0, sizeof(b));
	if ((n = i2d_X509(x, &der)) <= 0)
		goto out;
	if ((r = tg_buf_alloc(&b, (size_t)n + 16, TOK_OBJ_MAX)) != 0 ||
	    (r = tok_obj_put_cert(&b, der, (size_t)n)) != 0)
		goto out;
	r = tok_obj_set(t, TG_PIV_OBJ_ATTEST, tg_buf_data(&b), tg_buf_len(&b));
out:
	tg_buf_free(&b);
	OPENSSL_free(der);
	return r;
}

int
tok_attest_provision(struct tg_tok *t, const struct tg_tok_params *p)
{
	const uint8_t *cp = p->mfr_cert_der, *kp = p->mfr_key_der;
	X509 *mfr = NULL, *x = NULL;
	EVP_PKEY *mkey = NULL, *f9key = NULL;
	X509_NAME *subj = NULL;
	struct tok_slot *s;
	int r = TG_ERR_INVALID_ARG;

	if (cp == NULL || kp == NULL || p->mfr_cert_len == 0 || p->mfr_key_len == 0 ||
	    (s = tok_slot_find(t, TG_PIV_SLOT_ATTEST)) == NULL)
		goto out;
	r = TG_ERR_FORMAT;
	if ((mfr = d2i_X509(NULL, &cp, (long)p->mfr_cert_len)) == NULL ||
	    (mkey = d2i_AutoPrivateKey(NULL, &kp, (long)p->mfr_key_len)) == NULL)
		goto out;
	r = TG_ERR_CERT_MISMATCH;
	if (X509_check_private_key(mfr, mkey) != 1)
		goto out;
	if ((r = tok_key_generate(TG_PIV_ALG_ECCP256, &f9key)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if ((x = X509_new()) == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    set_random_serial(x) != 0 || X509_set_issuer_name(x, X509_get_subject_name(mfr)) != 1 ||
	    (subj = X509_NAME_new()) == NULL || set_cn(subj, F9_SUBJECT_CN) != 0 ||
	    X509_set_subject_name(x, subj) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_set1_notAfter(x, X509_get0_notAfter(mfr)) != 1 || X509_set_pubkey(x, f9key) != 1)
		goto out;
	/*
	 * As a YubiKey 5's F9 certificate: a CA issuing only the slot
	 * attestation certificates (pathlen 0), with the firmware extension
	 * and without the serial and policy ones, which belong to slots
	 * (verifiers refuse an F9 carrying them).
	 */
	if (add_conf_ext(x, mfr, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
	    add_conf_ext(x, mfr, NID_subject_key_identifier, "hash") != 0 ||
	    add_conf_ext(x, mfr, NID_authority_key_identifier, "keyid,issuer") != 0 ||
	    add_raw_ext(x, OID_YK_FIRMWARE, t->version, sizeof(t->version)) != 0)
		goto out;
	if (X509_sign(x, mkey, EVP_sha256()) <= 0)
		goto out;
	if ((r = store_f9_cert(t, x)) != 0)
		goto out;
	tok_slot_clear(s);
	s->pkey = f9key;
	f9key = NULL;
	s->alg = TG_PIV_ALG_ECCP256;
	s->origin = TG_PIV_ORIGIN_GENERATED;
	s->pin_policy = TG_PIV_PIN_POLICY_NEVER;
	s->touch_policy = TG_PIV_TOUCH_POLICY_NEVER;
	r = 0;
out:
	X509_NAME_free(subj);
	X509_free(x);
	X509_free(mfr);
	EVP_PKEY_free(mkey);
	EVP_PKEY_free(f9key);
	return r;
}

/* Builds the attestation certificate of slot s, certifying key pub. */
static int
attest_build(struct tg_tok *t, struct tok_slot *s, EVP_PKEY *pub, X509 *f9, EVP_PKEY *f9key,
             X509 **out)
{
	char cn[64];
	uint8_t policy[2];
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	int r = TG_ERR_CRYPTO;

	policy[0] = s->pin_policy;
	policy[1] = s->touch_policy;
	(void)snprintf(cn, sizeof(cn), ATTEST_SUBJECT_CN "%s", tg_piv_slot_by_id(s->id)->name);
	if ((x = X509_new()) == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    set_random_serial(x) != 0 || X509_set_issuer_name(x, X509_get_subject_name(f9)) != 1 ||
	    (subj = X509_NAME_new()) == NULL || set_cn(subj, cn) != 0 ||
	    X509_set_subject_name(x, subj) != 1 ||
	    X509_set1_notBefore(x, X509_get0_notBefore(f9)) != 1 ||
	    X509_set1_notAfter(x, X509_get0_notAfter(f9)) != 1 || X509_set_pubkey(x, pub) != 1)
		goto out;
	if (add_raw_ext(x, OID_YK_FIRMWARE, t->version, sizeof(t->version)) != 0 ||
	    add_serial_ext(x, t->serial) != 0 ||
	    add_raw_ext(x, OID_YK_POLICY, policy, sizeof(policy)) != 0 ||
	    add_raw_ext(x, OID_YK_FORMFACTOR, &t->form_factor, 1) != 0)
		goto out;
	if (X509_sign(x, f9key, EVP_sha256()) <= 0)
		goto out;
	*out = x;
	x = NULL;
	r = 0;
out:
	X509_NAME_free(subj);
	X509_free(x);
	return r;
}

uint16_t
tok_attest(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct tok_slot *s, *f9s;
	const uint8_t *der;
	uint8_t *xder = NULL;
	size_t n = 0;
	X509 *f9 = NULL, *x = NULL;
	EVP_PKEY *other = NULL;
	int xn;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p2 != 0 || (s = tok_slot_find(t, a->p1)) == NULL || s->id == TG_PIV_SLOT_ATTEST)
		goto out;
	sw = TG_PIV_SW_WRONG_LENGTH;
	if (tg_buf_remaining(&a->data) != 0)
		goto out;
	sw = TG_PIV_SW_REF_NOT_FOUND;
	if (s->pkey == NULL)
		goto out;
	/* Yubico: only keys generated on the card can be attested */
	sw = TG_PIV_SW_WRONG_DATA;
	if (s->origin != TG_PIV_ORIGIN_GENERATED)
		goto out;
	sw = TG_PIV_SW_REF_NOT_FOUND;
	f9s = tok_slot_find(t, TG_PIV_SLOT_ATTEST);
	der = tok_obj_cert_der(tok_obj_find(t, TG_PIV_OBJ_ATTEST), &n);
	if (f9s == NULL || f9s->pkey == NULL || der == NULL ||
	    (f9 = d2i_X509(NULL, &der, (long)n)) == NULL)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	/* fault for tests: a token lying about which key it generated */
	if ((t->faults & TG_TOK_FAULT_ATTEST_OTHER_KEY) != 0 &&
	    tok_key_generate(s->alg, &other) != 0)
		goto out;
	if (attest_build(t, s, other != NULL ? other : s->pkey, f9, f9s->pkey, &x) != 0 ||
	    (xn = i2d_X509(x, &xder)) <= 0 || tg_buf_put_bytes(out, xder, (size_t)xn) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	OPENSSL_free(xder);
	EVP_PKEY_free(other);
	X509_free(x);
	X509_free(f9);
	return sw;
}
