/* issue.c — checks and leaf issuance (tg_ca_issue.h). */
#include "tg_ca_issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#ifdef TG_CA_HAVE_P11
#include "tg_p11.h"
#endif
#include "tg_att.h"

#define SPIFFE_SCHEME "spiffe://"
#define ID_MAX        2048

int
tg_ca_id_check(const char *id, const char *td, char *name, size_t n, struct tg_error *err)
{
	const char *p, *slash, *nm;
	char tdbuf[TG_CA_TD_MAX + 1];
	size_t tdlen, i, nlen;
	int r = TG_ERR_IDENTITY;

	if (id == NULL || strlen(id) > ID_MAX ||
	    strncmp(id, SPIFFE_SCHEME, strlen(SPIFFE_SCHEME)) != 0) {
		tg_error_set(err, r,
		             "identity '%s' is not a spiffe:// URI; use "
		             "spiffe://TRUST-DOMAIN/dev/NAME or .../svc/NAME",
		             id != NULL ? id : "");
		goto out;
	}
	p = id + strlen(SPIFFE_SCHEME);
	if ((slash = strchr(p, '/')) == NULL) {
		tg_error_set(err, r,
		             "identity '%s' has no path; use "
		             "spiffe://TRUST-DOMAIN/dev/NAME or .../svc/NAME",
		             id);
		goto out;
	}
	tdlen = (size_t)(slash - p);
	if (tdlen == 0 || tdlen > TG_CA_TD_MAX) {
		tg_error_set(err, r, "identity '%s' has no valid trust domain", id);
		goto out;
	}
	memcpy(tdbuf, p, tdlen);
	tdbuf[tdlen] = '\0';
	if (tg_ca_td_check(tdbuf, err) != 0) {
		tg_error_set(err, r, "identity '%s'", id);
		goto out;
	}
	if (td != NULL && strcmp(tdbuf, td) != 0) {
		tg_error_set(err, r,
		             "identity '%s' is not in the trust domain "
		             "'%s' of this CA; use spiffe://%s/dev/NAME or "
		             "spiffe://%s/svc/NAME",
		             id, td, td, td);
		goto out;
	}
	if (strncmp(slash, "/dev/", 5) != 0 && strncmp(slash, "/svc/", 5) != 0) {
		tg_error_set(err, r,
		             "identity '%s': the path must start with "
		             "/dev/ (people) or /svc/ (services)",
		             id);
		goto out;
	}
	nm = slash + 5;
	nlen = strlen(nm);
	if (nlen == 0 || nlen > TG_CA_NAME_MAX || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
	    nlen >= n) {
		tg_error_set(err, r,
		             "identity '%s': NAME must be 1 to %d "
		             "characters (not '.' or '..')",
		             id, TG_CA_NAME_MAX);
		goto out;
	}
	for (i = 0; i < nlen; i++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		           "0123456789._-",
		           nm[i]) == NULL) {
			tg_error_set(err, r,
			             "identity '%s': NAME may hold only "
			             "letters, digits, '.', '-' and '_'",
			             id);
			goto out;
		}
	}
	memcpy(name, nm, nlen + 1);
	r = 0;
out:
	return r;
}

int
tg_ca_id_from_cert(X509 *cert, char *buf, size_t n, struct tg_error *err)
{
	GENERAL_NAMES *gens = NULL;
	const GENERAL_NAME *g;
	const ASN1_IA5STRING *uri = NULL;
	int i, count = 0, crit = 0, r = TG_ERR_IDENTITY;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI) {
			uri = g->d.uniformResourceIdentifier;
			count++;
		}
	}
	if (count != 1 || ASN1_STRING_length(uri) <= 0 || (size_t)ASN1_STRING_length(uri) >= n ||
	    memchr(ASN1_STRING_get0_data(uri), 0, (size_t)ASN1_STRING_length(uri)) != NULL) {
		tg_error_set(err, r,
		             "certificate has %d URI SANs; a tokengate "
		             "identity is exactly one",
		             count);
		goto out;
	}
	memcpy(buf, ASN1_STRING_get0_data(uri), (size_t)ASN1_STRING_length(uri));
	buf[ASN1_STRING_length(uri)] = '\0';
	r = 0;
out:
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return r;
}

static int
attested_check(struct tg_ca_store *s, const struct tg_ca_issue_req *req, EVP_PKEY *csrkey,
               struct tg_prov *prov, struct tg_error *err)
{
	const struct tg_ca_policy *pol = tg_ca_store_policy(s);
	struct tg_att_roots *roots = NULL;
	struct tg_att_facts f;
	char dir[4096];
	int r;

	if (req->f9 == NULL) {
		r = tg_error_set(err, TG_ERR_USAGE,
		                 "an attestation needs its F9 "
		                 "device certificate: give "
		                 "--intermediate FILE");
		goto out;
	}
	if ((r = tg_ca_store_roots_dir(s, dir, sizeof(dir))) != 0 ||
	    (r = tg_att_roots_load(dir, &roots, err)) != 0)
		goto out;
	if ((r = tg_att_verify(roots, req->att, req->f9, req->intermediates, csrkey, &f, err)) != 0)
		goto out;
	if ((r = tg_ca_policy_check(pol, &f, TG_CA_CHECK_ALL, err)) != 0)
		goto out;
	memset(prov, 0, sizeof(*prov));
	prov->version = TG_PROV_VERSION;
	prov->level = TG_PROV_DEVICE_ATTESTED;
	if (f.has_serial)
		snprintf(prov->serial, sizeof(prov->serial), "%llu", (unsigned long long)f.serial);
	else
		snprintf(prov->serial, sizeof(prov->serial), "unknown");
	prov->pin_policy = f.pin_policy;
	prov->touch_policy = f.touch_policy;
	prov->has_form_factor = f.has_form_factor;
	prov->form_factor = f.form_factor;
	prov->has_att_sha256 = 1;
	memcpy(prov->att_sha256, f.sha256, sizeof(prov->att_sha256));
	r = 0;
out:
	tg_att_roots_free(roots);
	return r;
}

#ifdef TG_CA_HAVE_P11
static int
hsm_check(struct tg_ca_store *s, const struct tg_ca_issue_req *req, EVP_PKEY *csrkey,
          struct tg_prov *prov, struct tg_error *err)
{
	const struct tg_ca_policy *pol = tg_ca_store_policy(s);
	const struct tg_p11_token_info *ti;
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust t;
	struct tg_att_facts f;
	EVP_PKEY *pub = NULL;
	const char *label;
	int r;

	if (!pol->allow_hsm_operator) {
		r = tg_error_set(err, TG_ERR_POLICY,
		                 "the CA policy does not allow "
		                 "level hsm-operator "
		                 "(allow_hsm_operator: false)");
		goto out;
	}
	if ((r = tg_p11_new(&p11, err)) != 0)
		goto out;
	/* the CA checks the trust attributes itself, so it can say which failed */
	if ((r = tg_p11_key_find(p11, req->hsm_key_uri,
	                         TG_P11_KEY_ALLOW_EXPORTABLE | TG_P11_KEY_ALLOW_IMPORTED, &k,
	                         err)) != 0)
		goto out;
	tg_p11_key_trust(k, &t);
	label = tg_p11_key_label(k);
	r = TG_ERR_KEY_EXPORTABLE;
	if (t.extractable != 0) {
		tg_error_set(err, r,
		             "HSM key '%s' is exportable (CKA_EXTRACTABLE "
		             "is %s): its private key can be read out; "
		             "generate a non-exportable key on the HSM",
		             label, t.extractable == 1 ? "true" : "unknown");
		goto out;
	}
	if (t.sensitive != 1 || t.always_sensitive != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' was not always sensitive "
		             "(CKA_SENSITIVE/CKA_ALWAYS_SENSITIVE not true)",
		             label);
		goto out;
	}
	if (t.never_extractable != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' was exportable once "
		             "(CKA_NEVER_EXTRACTABLE not true)",
		             label);
		goto out;
	}
	if (t.local != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' was not generated on the token "
		             "(CKA_LOCAL not true): an imported key gets no "
		             "certificate",
		             label);
		goto out;
	}
	if (t.verdict != TG_P11_TRUST_OK) { /* e.g. a PKCS#15-emulated token */
		tg_error_set(err, r, "HSM key '%s' is not shown to be generated on the token: %s",
		             label, t.reason);
		goto out;
	}
	if ((pub = tg_p11_key_public(k)) == NULL || EVP_PKEY_eq(pub, csrkey) != 1) {
		r = tg_error_set(err, TG_ERR_CSR,
		                 "the CSR's public key is not the "
		                 "public key of HSM key '%s'",
		                 label);
		goto out;
	}
	ti = tg_p11_token_get_info(tg_p11_key_token(k));
	memset(prov, 0, sizeof(*prov));
	prov->version = TG_PROV_VERSION;
	prov->level = TG_PROV_HSM_OPERATOR;
	snprintf(prov->serial, sizeof(prov->serial), "%s",
	         ti != NULL && ti->serial[0] != '\0' ? ti->serial : "unknown");
	prov->pin_policy = t.always_authenticate == 1 ? TG_ATT_PIN_ALWAYS : TG_ATT_PIN_ONCE;
	prov->touch_policy = TG_ATT_TOUCH_NEVER;
	memset(&f, 0, sizeof(f));
	f.pin_policy = prov->pin_policy;
	f.touch_policy = prov->touch_policy;
	if ((r = tg_ca_policy_check(pol, &f, TG_CA_CHECK_PIN | TG_CA_CHECK_TOUCH, err)) != 0)
		goto out;
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_free(p11);
	return r;
}
#endif

static int
san_add(X509 *x, const char *id, struct tg_error *err)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *g = NULL;
	ASN1_IA5STRING *s = NULL;
	int r = TG_ERR_CRYPTO;

	if ((gens = GENERAL_NAMES_new()) == NULL || (g = GENERAL_NAME_new()) == NULL ||
	    (s = ASN1_IA5STRING_new()) == NULL || !ASN1_STRING_set(s, id, -1))
		goto out;
	GENERAL_NAME_set0_value(g, GEN_URI, s);
	s = NULL;
	if (!sk_GENERAL_NAME_push(gens, g))
		goto out;
	g = NULL;
	if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
		goto out;
	r = 0;
out:
	if (r != 0)
		tg_error_set(err, r, "cannot add the URI SAN");
	ASN1_IA5STRING_free(s);
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	return r;
}

static int
leaf_build(struct tg_ca_store *s, const struct tg_ca_issue_req *req, const char *name,
           EVP_PKEY *csrkey, long validity, const struct tg_prov *prov, X509 **out,
           struct tg_error *err)
{
	X509 *ca = tg_ca_store_cert(s), *x = NULL;
	EVP_PKEY *cakey = tg_ca_store_key(s);
	X509_NAME *subj = NULL;
	X509_EXTENSION *pext = NULL;
	X509V3_CTX ctx;
	int r = TG_ERR_CRYPTO;

	if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    (r = tg_ca_serial_random(x, err)) != 0)
		goto fail;
	r = TG_ERR_CRYPTO;
	if ((subj = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1,
	                                -1, 0) ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), validity) == NULL || !X509_set_pubkey(x, csrkey))
		goto fail;
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0) {
		r = tg_error_set(err, TG_ERR_POLICY,
		                 "the CA certificate expires "
		                 "before the requested validity "
		                 "ends; ask for a shorter validity");
		goto out;
	}
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if ((r = tg_ca_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_key_usage, "critical,digitalSignature", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_ext_key_usage, "clientAuth", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_subject_key_identifier, "hash", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always", err)) != 0 ||
	    (r = san_add(x, req->id, err)) != 0 || (r = tg_prov_ext_make(prov, &pext, err)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if (!X509_add_ext(x, pext, -1) || X509_sign(x, cakey, tg_ca_sign_md(cakey)) <= 0)
		goto fail;
	*out = x;
	x = NULL;
	r = 0;
	goto out;
fail:
	r = tg_error_set(err, r, "cannot build or sign the certificate");
out:
	ERR_clear_error();
	X509_EXTENSION_free(pext);
	X509_NAME_free(subj);
	X509_free(x);
	return r;
}

int
tg_ca_issue(struct tg_ca_store *s, const struct tg_ca_issue_req *req, X509 **out,
            struct tg_prov *prov, struct tg_error *err)
{
	const struct tg_ca_policy *pol = tg_ca_store_policy(s);
	char name[TG_CA_NAME_MAX + 1];
	struct tg_prov p;
	EVP_PKEY *csrkey;
	X509 *leaf = NULL;
	long validity;
	int r;

	memset(&p, 0, sizeof(p));
	if (req->csr == NULL || (csrkey = X509_REQ_get0_pubkey(req->csr)) == NULL) {
		r = tg_error_set(err, TG_ERR_CSR, "the CSR holds no usable public key");
		goto out;
	}
	if (X509_REQ_verify(req->csr, csrkey) != 1) {
		ERR_clear_error();
		r = tg_error_set(err, TG_ERR_CSR,
		                 "the CSR's signature does not "
		                 "verify with its public key: the "
		                 "CSR was altered or not signed by "
		                 "the key it names");
		goto out;
	}
	if ((r = tg_ca_id_check(req->id, pol->trust_domain, name, sizeof(name), err)) != 0)
		goto out;
	if (req->att != NULL && req->hsm_key_uri != NULL) {
		r = tg_error_set(err, TG_ERR_USAGE,
		                 "give either --attestation "
		                 "(token key) or --hsm-key (HSM "
		                 "key), not both");
		goto out;
	}
	if (req->att != NULL) {
		if ((r = attested_check(s, req, csrkey, &p, err)) != 0)
			goto out;
	} else if (req->hsm_key_uri != NULL) {
#ifdef TG_CA_HAVE_P11
		if ((r = hsm_check(s, req, csrkey, &p, err)) != 0)
			goto out;
#else
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "this build has no "
		                 "PKCS#11 layer: --hsm-key "
		                 "is not available");
		goto out;
#endif
	} else {
		r = tg_error_set(err, TG_ERR_ATTESTATION,
		                 "no proof that the key lives on a token: give "
		                 "--attestation and --intermediate (token key) or "
		                 "--hsm-key (HSM key on this host); keys without "
		                 "provenance (e.g. imported keys) are not certified");
		goto out;
	}
	validity = req->validity > 0 ? req->validity : pol->default_validity;
	if (validity > pol->max_validity) {
		r = tg_error_set(err, TG_ERR_POLICY,
		                 "requested validity %lds is "
		                 "longer than the CA policy's "
		                 "max_validity %lds",
		                 validity, pol->max_validity);
		goto out;
	}
	if ((r = leaf_build(s, req, name, csrkey, validity, &p, &leaf, err)) != 0)
		goto out;
	if ((r = tg_ca_store_record(s, leaf, req->id, &p, err)) != 0)
		goto out;
	if (prov != NULL)
		*prov = p;
	*out = leaf;
	leaf = NULL;
	r = 0;
out:
	X509_free(leaf);
	return r;
}
