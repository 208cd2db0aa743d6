/*
 * keygen.c — key pair generation on the token with the non-exportable
 * template (CKA_EXTRACTABLE=false, CKA_SENSITIVE=true).
 */
#include "p11-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/rand.h>

/* DER of the curve OID for CKA_EC_PARAMS (X9.62 namedCurve). */
static int
ec_params_der(int nid, uint8_t *buf, size_t bufsz, size_t *len)
{
	ASN1_OBJECT *o = OBJ_nid2obj(nid);
	unsigned char *p = buf;
	int n;

	if (o == NULL || (n = i2d_ASN1_OBJECT(o, NULL)) <= 0 || (size_t)n > bufsz)
		return TG_ERR_CRYPTO;
	n = i2d_ASN1_OBJECT(o, &p);
	*len = (size_t)n;
	return 0;
}

static int
keygen_locked(struct tg_p11_token *t, const struct tg_p11_uri *u, enum tg_p11_alg alg,
              unsigned flags, struct tg_p11_key **out, struct tg_error *err)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static CK_BYTE exp65537[] = {0x01, 0x00, 0x01};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[8], priv[10];
	CK_ULONG np = 0, nk = 0, bits = 0;
	CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE *hs = NULL;
	CK_SESSION_HANDLE s;
	const struct tg_piv_alg *a = NULL;
	uint8_t idbuf[TG_P11_RANDOM_ID_LEN], params[16];
	const uint8_t *id = NULL;
	size_t idl = 0, pl = 0, n = 0;
	const char *label = tg_p11_uri_get(u, TG_P11_URI_OBJECT);
	char hex[TG_P11_HEX_BUF];
	CK_RV rv;
	int r;

	if ((r = tg_p11_token_session(t, &s, err)) != 0)
		goto out;
	if (!tg_p11_uri_id(u, &id, &idl)) {
		if (RAND_bytes(idbuf, sizeof(idbuf)) != 1) {
			r = tg_error_set(err, TG_ERR_CRYPTO, "no random bytes for a key id");
			goto out;
		}
		id = idbuf;
		idl = sizeof(idbuf);
	}
	if (label == NULL) {
		r = tg_error_set(err, TG_ERR_URI,
		                 "the key URI names no label: add object=LABEL to it");
		goto out;
	}
	/* refuse duplicates: a second key with the label or id would make
	 * every later lookup ambiguous */
	if ((r = tg_p11_objects_find(t, s, CKO_PRIVATE_KEY, label, NULL, 0, &hs, &n, err)) != 0)
		goto out;
	free(hs);
	hs = NULL;
	if (n == 0 &&
	    (r = tg_p11_objects_find(t, s, CKO_PRIVATE_KEY, NULL, id, idl, &hs, &n, err)) != 0)
		goto out;
	if (n > 0) {
		tg_p11_hex(id, idl, hex, sizeof(hex));
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "token '%s' already has a private key labelled '%s' "
		                 "or with id %s; choose another object= or id=",
		                 t->info.label, label, hex);
		goto out;
	}
#define ATTR(arr, cnt, ty, p, l)                                                                   \
	do {                                                                                       \
		arr[cnt].type = (ty);                                                              \
		arr[cnt].pValue = (void *)(p);                                                     \
		arr[cnt].ulValueLen = (l);                                                         \
		cnt++;                                                                             \
	} while (0)
	ATTR(pub, np, CKA_TOKEN, &yes, sizeof(yes));
	ATTR(pub, np, CKA_VERIFY, &yes, sizeof(yes));
	ATTR(pub, np, CKA_PRIVATE, &no, sizeof(no));
	ATTR(pub, np, CKA_LABEL, label, strlen(label));
	ATTR(pub, np, CKA_ID, id, idl);
	ATTR(priv, nk, CKA_TOKEN, &yes, sizeof(yes));
	ATTR(priv, nk, CKA_PRIVATE, &yes, sizeof(yes));
	ATTR(priv, nk, CKA_SENSITIVE, &yes, sizeof(yes));
	ATTR(priv, nk, CKA_EXTRACTABLE, &no, sizeof(no));
	ATTR(priv, nk, CKA_SIGN, &yes, sizeof(yes));
	ATTR(priv, nk, CKA_LABEL, label, strlen(label));
	ATTR(priv, nk, CKA_ID, id, idl);
	/* the algorithms with a command-line name are the generatable ones */
	if (alg > 0 && alg <= 0xFF && (a = tg_piv_alg_by_id((uint8_t)alg)) != NULL &&
	    a->cli == NULL)
		a = NULL;
	switch (a != NULL ? a->kind : 0) {
	case TG_PIV_KIND_EC:
		if ((r = ec_params_der(a->nid, params, sizeof(params), &pl)) != 0)
			goto out;
		ATTR(pub, np, CKA_EC_PARAMS, params, pl);
		break;
	case TG_PIV_KIND_RSA:
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		bits = a->bits;
		ATTR(pub, np, CKA_MODULUS_BITS, &bits, sizeof(bits));
		ATTR(pub, np, CKA_PUBLIC_EXPONENT, exp65537, sizeof(exp65537));
		break;
	default:
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "cannot generate '%s' keys; use ec-p256, ec-p384, "
		                 "rsa-2048 or rsa-3072",
		                 tg_p11_alg_name(alg));
		goto out;
	}
#undef ATTR
	rv = t->m->f->C_GenerateKeyPair(s, &mech, pub, np, priv, nk, &hpub, &hpriv);
	if (rv != CKR_OK) {
		r = tg_error_set(err, TG_ERR_PKCS11, "token '%s' could not generate a %s key: %s%s",
		                 t->info.label, tg_p11_alg_name(alg), tg_p11_ckr_name(rv),
		                 rv == CKR_MECHANISM_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID
		                     ? " (the token does not support this algorithm; "
		                       "try another --algorithm)"
		                 : rv == CKR_USER_NOT_LOGGED_IN ? " (log in first: give a PIN)"
		                                                : "");
		goto out;
	}
	r = tg_p11_key_load(t, hpriv, flags, out, err);
out:
	free(hs);
	return r;
}

int
tg_p11_keygen(struct tg_p11 *p, const char *uri, enum tg_p11_alg alg, unsigned flags,
              struct tg_p11_key **out, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	int r;

	if ((r = tg_p11_uri_parse(uri, &u, err)) != 0)
		goto out;
	if ((r = tg_p11_token_open(p, uri, &t, err)) != 0)
		goto out;
	if ((r = tg_p11_token_login_src(
	         t, t->pin, (flags & TG_P11_KEY_INTERACTIVE) ? TG_P11_LOGIN_INTERACTIVE : 0,
	         err)) != 0)
		goto out;
	tg_p11_lock(p);
	r = keygen_locked(t, u, alg, flags, &k, err);
	tg_p11_unlock(p);
	if (r != 0)
		goto out;
	t = NULL;                    /* owned by k */
	tg_pin_src_spend(k->t->pin); /* a pin-value serves this call only */
	if (out != NULL) {
		*out = k;
		k = NULL;
	}
	r = 0;
out:
	tg_p11_key_free(k);
	tg_p11_token_free(t);
	tg_p11_uri_free(u);
	return r;
}
