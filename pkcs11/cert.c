/*
 * cert.c — certificates on the token: lookup by the key's CKA_ID with a
 * public-key match check, import with the key's CKA_ID, and installing a
 * token key (and its certificate) into an SSL_CTX.
 */
#include "p11-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

/* Handles of the certificate objects with k's id; p->lock held. */
static int
certs_by_id(struct tg_p11_key *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE **hs, size_t *n,
            struct tg_error *err)
{
	return tg_p11_objects_find(k->t, s, CKO_CERTIFICATE, NULL, k->id, k->id_len, hs, n, err);
}

static X509 *
cert_load(struct tg_p11_key *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, uint8_t **der_out,
          size_t *dl_out)
{
	uint8_t *der = NULL;
	size_t dl = 0;
	const unsigned char *p;
	X509 *x = NULL;

	if (tg_p11_attr_get(k->t, s, h, CKA_VALUE, &der, &dl) != CKR_OK)
		return NULL;
	p = der;
	x = d2i_X509(NULL, &p, (long)dl);
	if (x != NULL && p != der + dl) {
		X509_free(x);
		x = NULL;
	}
	if (der_out != NULL && x != NULL) {
		*der_out = der;
		*dl_out = dl;
		der = NULL;
	}
	free(der);
	return x;
}

static int
cert_matches(struct tg_p11_key *k, X509 *x)
{
	EVP_PKEY *cp = X509_get0_pubkey(x);

	return k->pub != NULL && cp != NULL && EVP_PKEY_eq(k->pub, cp) == 1;
}

/* tg_p11_key_prove with the certificate's public key. */
static int
cert_key_prove(struct tg_p11_key *k, X509 *x, struct tg_error *err)
{
	EVP_PKEY *cp = X509_get0_pubkey(x);

	if (cp == NULL)
		return tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                    "the certificate has no usable public key");
	return tg_p11_key_prove(k, cp, err);
}

int
tg_p11_key_cert_get(struct tg_p11_key *k, X509 **out, struct tg_error *err)
{
	CK_OBJECT_HANDLE *hs = NULL;
	CK_SESSION_HANDLE s;
	size_t n = 0, i;
	char hex[TG_P11_HEX_BUF];
	X509 *x = NULL;
	int r;

	*out = NULL;
	tg_p11_hex(k->id, k->id_len, hex, sizeof(hex));
	if (k->pub == NULL) /* no certificate with its id proved to be its */
		return tg_error_set(err, TG_ERR_CERT_MISMATCH, "%s", k->pub_why);
	tg_p11_lock(k->t->p);
	if ((r = tg_p11_token_session(k->t, &s, err)) != 0 ||
	    (r = certs_by_id(k, s, &hs, &n, err)) != 0)
		goto out;
	if (n == 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "no certificate with id %s (key '%s') on token '%s'; "
		                 "install one with 'tokengate token import-cert'",
		                 hex, k->label, k->t->info.label);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((x = cert_load(k, s, hs[i], NULL, NULL)) == NULL)
			continue;
		if (cert_matches(k, x)) {
			*out = x;
			x = NULL;
			r = 0;
			goto out;
		}
		X509_free(x);
		x = NULL;
	}
	r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
	                 "the certificate with id %s on token '%s' does not belong "
	                 "to key '%s' (different public key); replace it with "
	                 "'tokengate token import-cert --replace'",
	                 hex, k->t->info.label, k->label);
out:
	tg_p11_unlock(k->t->p);
	free(hs);
	return r;
}

static int
cert_store(struct tg_p11_key *k, CK_SESSION_HANDLE s, X509 *cert, const char *label,
           struct tg_error *err)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL, *p;
	int dl, sl, il, rl;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r = TG_ERR_CRYPTO;

	if ((dl = i2d_X509(cert, &der)) <= 0 ||
	    (sl = i2d_X509_NAME(X509_get_subject_name(cert), &subj)) <= 0 ||
	    (il = i2d_X509_NAME(X509_get_issuer_name(cert), &iss)) <= 0 ||
	    (rl = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), NULL)) <= 0 ||
	    (ser = OPENSSL_malloc((size_t)rl)) == NULL) {
		tg_error_set(err, r, "cannot encode the certificate");
		goto out;
	}
	p = ser;
	i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &p);
	{
		CK_ATTRIBUTE t[] = {
		    {CKA_CLASS, &cls, sizeof(cls)},
		    {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &no, sizeof(no)},
		    {CKA_LABEL, (void *)label, strlen(label)},
		    {CKA_ID, k->id, k->id_len},
		    {CKA_SUBJECT, subj, (CK_ULONG)sl},
		    {CKA_ISSUER, iss, (CK_ULONG)il},
		    {CKA_SERIAL_NUMBER, ser, (CK_ULONG)rl},
		    {CKA_VALUE, der, (CK_ULONG)dl},
		};
		rv = k->t->m->f->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &h);
	}
	if (rv != CKR_OK) {
		r = tg_error_set(err, TG_ERR_PKCS11,
		                 "token '%s' refused to store the certificate: %s",
		                 k->t->info.label, tg_p11_ckr_name(rv));
		goto out;
	}
	r = 0;
out:
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	return r;
}

int
tg_p11_key_cert_import(struct tg_p11_key *k, X509 *cert, const char *label, int replace,
                       struct tg_error *err)
{
	CK_OBJECT_HANDLE *hs = NULL;
	CK_SESSION_HANDLE s;
	size_t n = 0, i;
	uint8_t *der = NULL, *newder = NULL;
	size_t dl = 0;
	int newdl;
	char hex[TG_P11_HEX_BUF];
	X509 *x = NULL;
	CK_RV rv;
	int r;

	tg_p11_hex(k->id, k->id_len, hex, sizeof(hex));
	/* a key whose public key was not established (e.g. its public-key
	 * object was planted): the certificate's key is proven by a signature
	 * through the key's handle */
	if (k->pub == NULL && (r = cert_key_prove(k, cert, err)) != 0)
		return r;
	if (!cert_matches(k, cert)) {
		return tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                    "the certificate's public key is not the public key "
		                    "of '%s' (id %s) on token '%s'; nothing stored: "
		                    "import the certificate issued for this key",
		                    k->label, hex, k->t->info.label);
	}
	if ((newdl = i2d_X509(cert, &newder)) <= 0)
		return tg_error_set(err, TG_ERR_CRYPTO, "cannot encode the certificate");
	tg_p11_lock(k->t->p);
	if ((r = tg_p11_token_session(k->t, &s, err)) != 0 ||
	    (r = certs_by_id(k, s, &hs, &n, err)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((x = cert_load(k, s, hs[i], &der, &dl)) == NULL)
			continue;
		X509_free(x);
		x = NULL;
		if (dl == (size_t)newdl && memcmp(der, newder, dl) == 0) {
			r = 0; /* already there */
			goto out;
		}
		free(der);
		der = NULL;
	}
	if (n > 0 && !replace) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "token '%s' already holds a different certificate with "
		                 "id %s; pass --replace to overwrite it",
		                 k->t->info.label, hex);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rv = k->t->m->f->C_DestroyObject(s, hs[i])) != CKR_OK) {
			r = tg_error_set(err, TG_ERR_PKCS11,
			                 "cannot remove the old certificate from token "
			                 "'%s': %s",
			                 k->t->info.label, tg_p11_ckr_name(rv));
			goto out;
		}
	}
	r = cert_store(k, s, cert, label ? label : k->label, err);
out:
	tg_p11_unlock(k->t->p);
	OPENSSL_free(newder);
	free(der);
	free(hs);
	return r;
}

#define NOT_ITS_CERT "the certificate given does not belong to key '%s' on token '%s'"

int
tg_p11_ssl_ctx_use_key(SSL_CTX *ctx, struct tg_p11_key *k, X509 *cert, struct tg_error *err)
{
	X509 *own = NULL;
	EVP_PKEY *pk = NULL;
	int r;

	if (cert == NULL) {
		if ((r = tg_p11_key_cert_get(k, &own, err)) != 0)
			goto out;
		cert = own;
	} else if (k->pub == NULL && cert_key_prove(k, cert, err) != 0) {
		/* the proof's cause after the context */
		r = tg_error_wrap(err, TG_ERR_CERT_MISMATCH, NOT_ITS_CERT, k->label,
		                  k->t->info.label);
		goto out;
	} else if (!cert_matches(k, cert)) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH, NOT_ITS_CERT, k->label,
		                 k->t->info.label);
		goto out;
	}
	/* the key checked to be k's own object (tg_p11_key_evp_get) */
	if ((r = tg_p11_key_evp_get(k, &pk, err)) != 0)
		goto out;
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		r = tg_error_set(err, TG_ERR_TLS,
		                 "TLS context refused key '%s' and its certificate: %s", k->label,
		                 ERR_reason_error_string(ERR_peek_last_error()));
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(pk);
	X509_free(own);
	return r;
}
