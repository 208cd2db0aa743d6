/* issue.c — checks and leaf issuance (tg_ca_issue.h). */
#include "tg_ca_issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tg_ca_hsm.h"
#include "tg_att.h"
#include "tg_ca_record.h"

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
		tg_error_wrap(err, r, "identity '%s'", id);
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

/* The CRL distribution point: one fullName URI (RFC 5280 4.2.1.13). */
static int
crldp_add(X509 *x, const char *url, struct tg_error *err)
{
	CRL_DIST_POINTS *dps = NULL;
	DIST_POINT *dp = NULL;
	GENERAL_NAME *g = NULL;
	ASN1_IA5STRING *s = NULL;
	int r = TG_ERR_CRYPTO;

	if ((dps = sk_DIST_POINT_new_null()) == NULL || (dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
	    (dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL ||
	    (g = GENERAL_NAME_new()) == NULL || (s = ASN1_IA5STRING_new()) == NULL ||
	    !ASN1_STRING_set(s, url, -1))
		goto out;
	dp->distpoint->type = 0; /* fullName */
	GENERAL_NAME_set0_value(g, GEN_URI, s);
	s = NULL;
	if (!sk_GENERAL_NAME_push(dp->distpoint->name.fullname, g))
		goto out;
	g = NULL;
	if (!sk_DIST_POINT_push(dps, dp))
		goto out;
	dp = NULL;
	if (!X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0, X509V3_ADD_DEFAULT))
		goto out;
	r = 0;
out:
	if (r != 0)
		tg_error_set(err, r, "cannot add the CRL distribution point '%s'", url);
	ASN1_IA5STRING_free(s);
	GENERAL_NAME_free(g);
	DIST_POINT_free(dp);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
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
	char asked[32], until[32];
	int r = TG_ERR_CRYPTO;

	if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3))
		goto fail;
	if ((r = tg_ca_serial_random(x, err)) != 0) {
		r = tg_error_wrap(err, r, "cannot build or sign the certificate");
		goto out;
	}
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
		tg_ca_duration_str(validity, asked, sizeof(asked));
		r = tg_error_set(err, TG_ERR_POLICY,
		                 "the CA certificate expires on %s, before the requested "
		                 "validity of %s ends; ask for a shorter validity",
		                 tg_ca_time_str(X509_get0_notAfter(ca), until, sizeof(until)),
		                 asked);
		goto out;
	}
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if ((r = tg_ca_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_key_usage, "critical,digitalSignature", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_ext_key_usage, "clientAuth", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_subject_key_identifier, "hash", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always", err)) != 0 ||
	    (r = san_add(x, req->id, err)) != 0 ||
	    (tg_ca_store_policy(s)->crl_url[0] != '\0' &&
	     (r = crldp_add(x, tg_ca_store_policy(s)->crl_url, err)) != 0) ||
	    (r = tg_prov_ext_make(prov, &pext, err)) != 0)
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
	char asked[32], most[32];
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
		if ((r = tg_ca_hsm_check(
		         pol, req->hsm_key_uri,
		         (req->flags & TG_CA_ISSUE_NO_PIN_VALUE) ? TG_CA_HSM_NO_PIN_VALUE : 0,
		         csrkey, &p, err)) != 0)
			goto out;
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
		tg_ca_duration_str(validity, asked, sizeof(asked));
		tg_ca_duration_str(pol->max_validity, most, sizeof(most));
		r = tg_error_set(err, TG_ERR_POLICY,
		                 "validity %s exceeds the policy maximum of %s (max_validity in "
		                 "policy.yaml); ask for at most %s",
		                 asked, most, most);
		goto out;
	}
	if ((r = leaf_build(s, req, name, csrkey, validity, &p, &leaf, err)) != 0)
		goto out;
	if ((r = tg_ca_store_record(s, leaf, NULL, 0, err)) != 0)
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
