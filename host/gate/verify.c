/*
 * verify.c — the gate's client-certificate verifier (tg_gate_verify.h).
 */
#include "tg_gate_verify.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tg_ca_issue.h"

struct tg_gate_verify {
	STACK_OF(X509) * cas;      /* the trusted tokengate CAs */
	STACK_OF(X509_CRL) * crls; /* NULL when no CRL is configured */
	X509_STORE *store;         /* cas + crls */
};

/* Seconds since the epoch of t; 0 on failure. */
static time_t
asn1_to_time(const ASN1_TIME *t)
{
	time_t r = 0;
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int day = 0, sec = 0;

	if (epoch != NULL && t != NULL && ASN1_TIME_diff(&day, &sec, epoch, t))
		r = (time_t)day * 86400 + sec;
	ASN1_TIME_free(epoch);
	return r;
}

/* The subject of c as one line into buf. */
static const char *
subject_of(X509 *c, char *buf, size_t n)
{
	const char *r = "(no subject)";

	if (c != NULL && X509_NAME_oneline(X509_get_subject_name(c), buf, (int)n) != NULL)
		r = buf;
	return r;
}

static int
load_cas(const char *const *files, size_t n, STACK_OF(X509) * cas, struct tg_error *err)
{
	int rc = 0;
	BIO *b = NULL;
	X509 *c = NULL;
	size_t i;
	int count;

	for (i = 0; i < n && rc == 0; i++) {
		b = BIO_new_file(files[i], "r");
		if (b == NULL) {
			rc = tg_error_set(
			    err, TG_ERR_IO,
			    "cannot read the client CA file '%s'; give the CA's ca.pem", files[i]);
			break;
		}
		count = 0;
		while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
			if (!X509_check_ca(c)) {
				rc = tg_error_set(
				    err, TG_ERR_CONFIG,
				    "client CA file '%s' holds a certificate that is not a CA "
				    "(no basicConstraints CA:TRUE); give the CA's ca.pem",
				    files[i]);
				X509_free(c);
				break;
			}
			if (!sk_X509_push(cas, c)) {
				X509_free(c);
				rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
				break;
			}
			count++;
		}
		ERR_clear_error();
		if (rc == 0 && count == 0)
			rc = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "client CA file '%s' holds no PEM certificate; give the CA's ca.pem",
			    files[i]);
		BIO_free(b);
		b = NULL;
	}
	return rc;
}

/* The configured CA that issued crl, or NULL. */
static X509 *
crl_issuer(STACK_OF(X509) * cas, X509_CRL *crl)
{
	X509 *r = NULL;
	int i;
	EVP_PKEY *k;

	for (i = 0; i < sk_X509_num(cas) && r == NULL; i++) {
		X509 *ca = sk_X509_value(cas, i);
		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) != 0)
			continue;
		k = X509_get0_pubkey(ca);
		if (k != NULL && X509_CRL_verify(crl, k) == 1)
			r = ca;
	}
	ERR_clear_error();
	return r;
}

/* Reads and checks the CRLs of path at time now into *out. */
static int
load_crls(const char *path, STACK_OF(X509) * cas, time_t now, STACK_OF(X509_CRL) * *out,
          struct tg_error *err)
{
	int rc = 0;
	BIO *b = NULL;
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	X509_CRL *crl = NULL;
	const ASN1_TIME *next;
	int i;

	*out = NULL;
	b = BIO_new_file(path, "rb");
	if (crls == NULL || b == NULL) {
		rc = tg_error_set(err, TG_ERR_IO,
		                  "cannot read the CRL file '%s'; give the file "
		                  "`tokengate ca crl` wrote",
		                  path);
		goto out;
	}
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_CRL_push(crls, crl)) {
			X509_CRL_free(crl);
			rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
	}
	if (sk_X509_CRL_num(crls) == 0 && BIO_reset(b) == 0 &&
	    (crl = d2i_X509_CRL_bio(b, NULL)) != NULL && !sk_X509_CRL_push(crls, crl)) {
		X509_CRL_free(crl);
		rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	ERR_clear_error();
	if (sk_X509_CRL_num(crls) == 0) {
		rc = tg_error_set(err, TG_ERR_CONFIG,
		                  "CRL file '%s' holds no CRL (PEM or DER); give "
		                  "the file `tokengate ca crl` wrote",
		                  path);
		goto out;
	}
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		crl = sk_X509_CRL_value(crls, i);
		if (crl_issuer(cas, crl) == NULL) {
			rc = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "CRL file '%s': a CRL is not signed by any "
			    "configured client CA; give the CRL of the CA the gate trusts",
			    path);
			goto out;
		}
		next = X509_CRL_get0_nextUpdate(crl);
		if (next == NULL || asn1_to_time(next) <= now) {
			rc = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "CRL file '%s' is out of date (its "
			    "nextUpdate has passed or is missing); make a fresh one with "
			    "`tokengate ca crl` and reload",
			    path);
			goto out;
		}
	}
	*out = crls;
	crls = NULL;
out:
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	BIO_free(b);
	return rc;
}

/* A store of cas and crls (may be NULL). */
static X509_STORE *
make_store(STACK_OF(X509) * cas, STACK_OF(X509_CRL) * crls)
{
	X509_STORE *s = X509_STORE_new();
	int ok = s != NULL;
	int i;

	for (i = 0; ok && i < sk_X509_num(cas); i++)
		ok = X509_STORE_add_cert(s, sk_X509_value(cas, i));
	for (i = 0; ok && crls != NULL && i < sk_X509_CRL_num(crls); i++)
		ok = X509_STORE_add_crl(s, sk_X509_CRL_value(crls, i));
	if (!ok) {
		X509_STORE_free(s);
		s = NULL;
	}
	return s;
}

int
tg_gate_verify_new(const char *const *ca_files, size_t nca, const char *crl_file,
                   struct tg_gate_verify **out, struct tg_error *err)
{
	int rc = 0;
	struct tg_gate_verify *v = NULL;

	*out = NULL;
	if (ca_files == NULL || nca == 0) {
		rc = tg_error_set(err, TG_ERR_CONFIG,
		                  "no client CA configured; give the tokengate "
		                  "CA's ca.pem (--client-ca FILE)");
		goto out;
	}
	v = OPENSSL_zalloc(sizeof(*v));
	if (v == NULL || (v->cas = sk_X509_new_null()) == NULL) {
		rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	rc = load_cas(ca_files, nca, v->cas, err);
	if (rc == 0 && crl_file != NULL)
		rc = load_crls(crl_file, v->cas, time(NULL), &v->crls, err);
	if (rc != 0)
		goto out;
	v->store = make_store(v->cas, v->crls);
	if (v->store == NULL) {
		rc = tg_error_set(err, TG_ERR_CRYPTO, "cannot build the certificate store");
		goto out;
	}
	*out = v;
	v = NULL;
out:
	tg_gate_verify_free(v);
	return rc;
}

time_t
tg_gate_verify_crl_until(const struct tg_gate_verify *v)
{
	const ASN1_TIME *next;
	time_t t, until = 0;
	int i;

	for (i = 0; v != NULL && v->crls != NULL && i < sk_X509_CRL_num(v->crls); i++) {
		next = X509_CRL_get0_nextUpdate(sk_X509_CRL_value(v->crls, i));
		t = next != NULL ? asn1_to_time(next) : 1;
		if (t <= 0)
			t = 1; /* unreadable: already past */
		if (until == 0 || t < until)
			until = t;
	}
	return until;
}

void
tg_gate_verify_free(struct tg_gate_verify *v)
{
	if (v != NULL) {
		X509_STORE_free(v->store);
		sk_X509_CRL_pop_free(v->crls, X509_CRL_free);
		sk_X509_pop_free(v->cas, X509_free);
		OPENSSL_free(v);
	}
}

int
tg_gate_verify_reload_crl(struct tg_gate_verify *v, const char *crl_file, struct tg_error *err)
{
	int rc = 0;
	STACK_OF(X509_CRL) *crls = NULL;
	X509_STORE *s = NULL;

	rc = load_crls(crl_file, v->cas, time(NULL), &crls, err);
	if (rc != 0) {
		rc = tg_error_wrap(err, rc, "new CRL refused, the previous one stays in use");
		goto out;
	}
	s = make_store(v->cas, crls);
	if (s == NULL) {
		rc = tg_error_set(err, TG_ERR_CRYPTO,
		                  "new CRL refused, the previous one stays in "
		                  "use: cannot build the certificate store");
		goto out;
	}
	X509_STORE_free(v->store);
	sk_X509_CRL_pop_free(v->crls, X509_CRL_free);
	v->store = s;
	v->crls = crls;
	s = NULL;
	crls = NULL;
out:
	X509_STORE_free(s);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return rc;
}

/* Step 1: the chain to a configured CA, validity and revocation. */
static int
check_chain(const struct tg_gate_verify *v, X509 *leaf, STACK_OF(X509) * chain, time_t now,
            const char *who, struct tg_error *err)
{
	int rc = 0;
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int e;

	if (ctx == NULL || !X509_STORE_CTX_init(ctx, v->store, leaf, chain)) {
		rc = tg_error_set(err, TG_ERR_CRYPTO, "cannot set up certificate verification");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	if (v->crls != NULL)
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
	if (X509_verify_cert(ctx) == 1)
		goto out;
	e = X509_STORE_CTX_get_error(ctx);
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s has expired; enroll "
		                  "again for a new one",
		                  who);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s is not yet valid; check "
		                  "the clocks of the CA and the gate",
		                  who);
		break;
	case X509_V_ERR_CERT_REVOKED:
		rc = tg_error_set(err, TG_ERR_REVOKED,
		                  "client certificate %s is revoked by the "
		                  "configured CRL",
		                  who);
		break;
	case X509_V_ERR_CRL_HAS_EXPIRED:
		rc = tg_error_set(
		    err, TG_ERR_POLICY,
		    "the configured CRL is out of date (nextUpdate "
		    "passed), so client certificate %s cannot be checked; make a fresh "
		    "CRL with `tokengate ca crl` and reload",
		    who);
		break;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "the CRL file has no CRL of the CA that issued "
		                  "client certificate %s; add that CA's CRL",
		                  who);
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s was not issued by a "
		                  "configured tokengate CA (%s); enroll with the gate's CA",
		                  who, X509_verify_cert_error_string(e));
		break;
	default:
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s does not verify against "
		                  "the configured tokengate CA: %s",
		                  who, X509_verify_cert_error_string(e));
		break;
	}
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* Steps 2-3: CA:FALSE and clientAuth. */
static int
check_leaf_ext(X509 *leaf, const char *who, struct tg_error *err)
{
	int rc = 0;
	uint32_t f = X509_get_extension_flags(leaf);

	if ((f & EXFLAG_CA) != 0)
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s is a CA certificate "
		                  "(basicConstraints CA:TRUE); present a leaf certificate",
		                  who);
	else if ((f & EXFLAG_BCONS) == 0)
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s has no basicConstraints "
		                  "(CA:FALSE is required); enroll with `tokengate enroll`",
		                  who);
	else if ((f & EXFLAG_XKUSAGE) == 0 ||
	         (X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) == 0)
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "client certificate %s is not for client "
		                  "authentication (extendedKeyUsage lacks clientAuth); enroll with "
		                  "`tokengate enroll`",
		                  who);
	return rc;
}

int
tg_gate_verify_peer(const struct tg_gate_verify *v, X509 *leaf, STACK_OF(X509) * chain, time_t now,
                    struct tg_gate_peer_info *out, struct tg_error *err)
{
	int rc = 0;
	char who[256];
	char name[65];
	unsigned int mdlen = 0;

	memset(out, 0, sizeof(*out));
	if (v == NULL || leaf == NULL) {
		rc = tg_error_set(err, TG_ERR_POLICY,
		                  "no client certificate; present the "
		                  "token-backed certificate `tokengate enroll` gave");
		goto out;
	}
	subject_of(leaf, who, sizeof(who));
	rc = check_chain(v, leaf, chain, now, who, err);
	if (rc == 0)
		rc = check_leaf_ext(leaf, who, err);
	if (rc == 0) {
		rc = tg_ca_id_from_cert(leaf, out->identity, sizeof(out->identity), err);
		if (rc == 0)
			rc = tg_ca_id_check(out->identity, NULL, name, sizeof(name), err);
		if (rc != 0)
			rc = tg_error_wrap(err, TG_ERR_IDENTITY, "client certificate %s", who);
	}
	if (rc == 0) {
		rc = tg_prov_from_cert(leaf, &out->prov, err);
		if (rc == TG_ERR_NOT_FOUND)
			rc = tg_error_set(
			    err, TG_ERR_POLICY,
			    "client certificate %s has no key-provenance "
			    "extension (%s), so nothing says its key is on a token; enroll "
			    "with `tokengate enroll`",
			    who, TG_PROV_OID);
		else if (rc != 0)
			rc = tg_error_wrap(
			    err, rc, "client certificate %s: bad key-provenance extension", who);
	}
	if (rc == 0) {
		out->not_after = asn1_to_time(X509_get0_notAfter(leaf));
		if (!X509_digest(leaf, EVP_sha256(), out->sha256, &mdlen) || mdlen != 32)
			rc = tg_error_set(err, TG_ERR_CRYPTO, "cannot hash client certificate %s",
			                  who);
	}
	if (rc != 0)
		memset(out, 0, sizeof(*out));
out:
	ERR_clear_error();
	return rc;
}

int
tg_gate_verify_store_ctx(const struct tg_gate_verify *v, X509_STORE_CTX *sctx, time_t now,
                         struct tg_gate_peer_info *out, struct tg_error *err)
{
	return tg_gate_verify_peer(v, X509_STORE_CTX_get0_cert(sctx),
	                           X509_STORE_CTX_get0_untrusted(sctx), now, out, err);
}
