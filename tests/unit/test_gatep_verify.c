/*
 * test_gatep_verify.c — the gate's client-certificate verifier
 * (host/gate/verify.c, tg_gate_verify.h) on certificates and CRLs made here
 * with OpenSSL: loading the client CA files (missing, empty, a leaf among
 * them) and the CRL file (missing, not a CRL, DER, signed by a key that
 * only shares the CA's name, of another configured CA), reloading the CRL
 * (the new one used, a refused one leaving the old in use), and every
 * refusal of a leaf with its code and message: revoked, not yet valid, no
 * CRL of its issuer, a stale CRL, an unhandled critical extension, no
 * basicConstraints, no identity, no or a broken provenance extension, no
 * certificate at all. The accepted leaf's fields, also through an
 * X509_STORE_CTX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg_gate_verify.h"
#include "tg_prov.h"
#include "tg_test.h"

#define ALICE "spiffe://example.org/dev/alice"

/* What every case works on, made once. */
static struct {
	char dir[128];
	char ca1[200], ca2[200], both[200], leafca[200], empty[200], missing[200];
	char crl1[200], crl1der[200], crl1b[200], crl2[200], crlfake[200], garbage[200];
	EVP_PKEY *k1, *k2, *kfake, *k;
	X509 *c1, *c2, *cfake;
	X509 *good, *victim, *notyet, *nobc, *crit, *noid, *noprov, *badprov, *of2;
	time_t next; /* nextUpdate of the CRLs */
} fx;

static void
ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* The provenance extension of a device-attested key, or broken DER under its OID. */
static void
prov_add(X509 *x, int broken)
{
	struct tg_prov p;
	struct tg_error err;
	X509_EXTENSION *e = NULL;
	ASN1_OBJECT *o;
	ASN1_OCTET_STRING *os;
	static const unsigned char bad[] = {0x30, 0x03, 0x02, 0x01, 0x07};

	if (broken) {
		o = OBJ_txt2obj(TG_PROV_OID, 1);
		os = ASN1_OCTET_STRING_new();
		assert_true(o != NULL && os != NULL);
		assert_int_equal(ASN1_OCTET_STRING_set(os, bad, sizeof(bad)), 1);
		e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
		ASN1_OBJECT_free(o);
		ASN1_OCTET_STRING_free(os);
	} else {
		memset(&p, 0, sizeof(p));
		p.version = TG_PROV_VERSION;
		p.level = TG_PROV_DEVICE_ATTESTED;
		snprintf(p.serial, sizeof(p.serial), "31415926");
		p.pin_policy = TG_ATT_PIN_ONCE;
		p.touch_policy = TG_ATT_TOUCH_NEVER;
		p.has_att_sha256 = 1;
		memset(p.att_sha256, 0xab, sizeof(p.att_sha256));
		tg_error_clear(&err);
		if (tg_prov_ext_make(&p, &e, &err) != 0)
			fail_msg("provenance: %s", err.msg);
	}
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A critical extension no verifier knows (an OID of the example arc, RFC 5612). */
static void
crit_add(X509 *x)
{
	static const unsigned char v[] = {0x05, 0x00};
	ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.32473.1", 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	assert_true(o != NULL && os != NULL);
	assert_int_equal(ASN1_OCTET_STRING_set(os, v, sizeof(v)), 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, o, 1, os);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OBJECT_free(o);
	ASN1_OCTET_STRING_free(os);
}

enum { F_BC = 1, F_EKU = 2, F_ID = 4, F_PROV = 8, F_BADPROV = 16, F_CRIT = 32 };
#define F_LEAF (F_BC | F_EKU | F_ID | F_PROV)

/*
 * A certificate named cn for key, valid from nb to na seconds from now,
 * issued by issuer/ikey (NULL: self-signed CA), with the parts in flags.
 */
static X509 *
cert_new(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long nb, long na,
         int flags)
{
	X509 *x = X509_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                            -1, 0),
	                 1);
	assert_int_equal(
	    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (issuer == NULL) {
		ext_add(x, x, NID_basic_constraints, "critical,CA:TRUE");
		ext_add(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		if (flags & F_BC)
			ext_add(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		if (flags & F_EKU)
			ext_add(x, issuer, NID_ext_key_usage, "clientAuth");
		if (flags & F_ID)
			ext_add(x, issuer, NID_subject_alt_name, "URI:" ALICE);
		if (flags & F_PROV)
			prov_add(x, 0);
		if (flags & F_BADPROV)
			prov_add(x, 1);
		if (flags & F_CRIT)
			crit_add(x);
	}
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static void
pem_put(const char *path, X509 *x, X509 *x2)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	if (x2 != NULL)
		assert_int_equal(PEM_write_X509(f, x2), 1);
	assert_int_equal(fclose(f), 0);
}

static void
text_put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* A CRL of issuer signed by ikey, revoking revoked (NULL: nothing), as PEM or DER. */
static void
crl_put(const char *path, X509 *issuer, EVP_PKEY *ikey, X509 *revoked, int der)
{
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *rv;
	ASN1_TIME *t;
	FILE *f;

	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
	assert_non_null(t = X509_gmtime_adj(NULL, -60));
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	assert_non_null(t = ASN1_TIME_set(NULL, fx.next));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	if (revoked != NULL) {
		assert_non_null(rv = X509_REVOKED_new());
		assert_int_equal(X509_REVOKED_set_serialNumber(rv, X509_get_serialNumber(revoked)),
		                 1);
		assert_int_equal(X509_REVOKED_set_revocationDate(rv, t), 1);
		assert_int_equal(X509_CRL_add0_revoked(crl, rv), 1);
	}
	ASN1_TIME_free(t);
	assert_true(X509_CRL_sign(crl, ikey, EVP_sha256()) > 0);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(der ? i2d_X509_CRL_fp(f, crl) : PEM_write_X509_CRL(f, crl), 1);
	assert_int_equal(fclose(f), 0);
	X509_CRL_free(crl);
}

#define P(field, name) snprintf(fx.field, sizeof(fx.field), "%s/%s", fx.dir, name)

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-gatep-verify", fx.dir, sizeof(fx.dir)), 0);
	P(ca1, "ca1.pem");
	P(ca2, "ca2.pem");
	P(both, "both.pem");
	P(leafca, "leaf-as-ca.pem");
	P(empty, "empty.pem");
	P(missing, "missing.pem");
	P(crl1, "ca1.crl");
	P(crl1der, "ca1.der");
	P(crl1b, "ca1-victim.crl");
	P(crl2, "ca2.crl");
	P(crlfake, "fake.crl");
	P(garbage, "garbage.crl");
	fx.next = time(NULL) + 3600;
	fx.k1 = EVP_EC_gen("P-256");
	fx.k2 = EVP_EC_gen("P-256");
	fx.kfake = EVP_EC_gen("P-256");
	fx.k = EVP_EC_gen("P-256");
	assert_true(fx.k1 != NULL && fx.k2 != NULL && fx.kfake != NULL && fx.k != NULL);
	fx.c1 = cert_new("gatep-ca-1", 1, fx.k1, NULL, NULL, -60, 86400L * 3650, 0);
	fx.c2 = cert_new("gatep-ca-2", 2, fx.k2, NULL, NULL, -60, 86400L * 3650, 0);
	fx.cfake = cert_new("gatep-ca-1", 3, fx.kfake, NULL, NULL, -60, 86400L * 3650, 0);
	fx.good = cert_new("alice", 10, fx.k, fx.c1, fx.k1, -60, 86400L * 365, F_LEAF);
	fx.victim = cert_new("victim", 11, fx.k, fx.c1, fx.k1, -60, 86400L * 365, F_LEAF);
	fx.notyet = cert_new("notyet", 12, fx.k, fx.c1, fx.k1, 86400, 86400L * 365, F_LEAF);
	fx.nobc = cert_new("nobc", 13, fx.k, fx.c1, fx.k1, -60, 86400L * 365, F_LEAF & ~F_BC);
	fx.crit = cert_new("crit", 14, fx.k, fx.c1, fx.k1, -60, 86400L * 365, F_LEAF | F_CRIT);
	fx.noid = cert_new("noid", 15, fx.k, fx.c1, fx.k1, -60, 86400L * 365, F_LEAF & ~F_ID);
	fx.noprov = cert_new("noprov", 16, fx.k, fx.c1, fx.k1, -60, 86400L * 365, F_LEAF & ~F_PROV);
	fx.badprov = cert_new("badprov", 17, fx.k, fx.c1, fx.k1, -60, 86400L * 365,
	                      (F_LEAF & ~F_PROV) | F_BADPROV);
	fx.of2 = cert_new("bob", 18, fx.k, fx.c2, fx.k2, -60, 86400L * 365, F_LEAF);
	pem_put(fx.ca1, fx.c1, NULL);
	pem_put(fx.ca2, fx.c2, NULL);
	pem_put(fx.both, fx.c1, fx.c2);
	pem_put(fx.leafca, fx.c1, fx.good);
	text_put(fx.empty, "no certificate here\n");
	text_put(fx.garbage, "not a CRL\n");
	crl_put(fx.crl1, fx.c1, fx.k1, NULL, 0);
	crl_put(fx.crl1der, fx.c1, fx.k1, fx.victim, 1);
	crl_put(fx.crl1b, fx.c1, fx.k1, fx.victim, 0);
	crl_put(fx.crl2, fx.c2, fx.k2, NULL, 0);
	crl_put(fx.crlfake, fx.c1, fx.kfake, NULL, 0);
	return 0;
}

static int
teardown(void **state)
{
	X509 **xs[] = {&fx.c1,   &fx.c2,   &fx.cfake, &fx.good,   &fx.victim,  &fx.notyet,
	               &fx.nobc, &fx.crit, &fx.noid,  &fx.noprov, &fx.badprov, &fx.of2};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		X509_free(*xs[i]);
	EVP_PKEY_free(fx.k1);
	EVP_PKEY_free(fx.k2);
	EVP_PKEY_free(fx.kfake);
	EVP_PKEY_free(fx.k);
	tg_test_tmpdir_remove(fx.dir);
	return 0;
}

/* tg_gate_verify_new on the CA files (NULL-terminated list) and crl; 0 or the code. */
static int
vnew(struct tg_gate_verify **v, const char *crl, struct tg_error *err, ...)
{
	const char *files[8];
	const char *f;
	size_t n = 0;
	va_list ap;

	va_start(ap, err);
	while ((f = va_arg(ap, const char *)) != NULL && n < 8)
		files[n++] = f;
	va_end(ap);
	tg_error_clear(err);
	*v = (struct tg_gate_verify *)1;
	return tg_gate_verify_new(files, n, crl, v, err);
}

static void
test_ca_files(void **state)
{
	struct tg_gate_verify *v;
	struct tg_error err;
	char msg[600];

	(void)state;
	v = (struct tg_gate_verify *)1;
	tg_error_clear(&err);
	assert_int_equal(tg_gate_verify_new(NULL, 1, NULL, &v, &err), TG_ERR_CONFIG);
	assert_null(v);
	assert_string_equal(err.msg, "no client CA configured; give the tokengate CA's ca.pem "
	                             "(--client-ca FILE)");
	assert_int_equal(vnew(&v, NULL, &err, fx.missing, NULL), TG_ERR_IO);
	assert_null(v);
	snprintf(msg, sizeof(msg), "cannot read the client CA file '%s'; give the CA's ca.pem",
	         fx.missing);
	assert_string_equal(err.msg, msg);
	/* the second of two files is the bad one */
	assert_int_equal(vnew(&v, NULL, &err, fx.ca1, fx.empty, NULL), TG_ERR_CONFIG);
	assert_null(v);
	snprintf(msg, sizeof(msg),
	         "client CA file '%s' holds no PEM certificate; give the CA's ca.pem", fx.empty);
	assert_string_equal(err.msg, msg);
	assert_int_equal(vnew(&v, NULL, &err, fx.leafca, NULL), TG_ERR_CONFIG);
	assert_null(v);
	snprintf(msg, sizeof(msg),
	         "client CA file '%s' holds a certificate that is not a CA (no basicConstraints "
	         "CA:TRUE); give the CA's ca.pem",
	         fx.leafca);
	assert_string_equal(err.msg, msg);
	/* one file with both CAs: leaves of either verify; no CRL: no until */
	assert_int_equal(vnew(&v, NULL, &err, fx.both, NULL), 0);
	assert_non_null(v);
	assert_int_equal(tg_gate_verify_crl_until(v), 0);
	{
		struct tg_gate_peer_info info;

		assert_int_equal(tg_gate_verify_peer(v, fx.good, NULL, time(NULL), &info, &err), 0);
		assert_string_equal(info.identity, ALICE);
		assert_int_equal(tg_gate_verify_peer(v, fx.of2, NULL, time(NULL), &info, &err), 0);
		assert_string_equal(info.identity, ALICE);
	}
	tg_gate_verify_free(v);
	tg_gate_verify_free(NULL);
	assert_int_equal(tg_gate_verify_crl_until(NULL), 0);
}

static void
test_crl_files(void **state)
{
	struct tg_gate_verify *v;
	struct tg_error err;
	char msg[600];

	(void)state;
	assert_int_equal(vnew(&v, fx.missing, &err, fx.ca1, NULL), TG_ERR_IO);
	assert_null(v);
	snprintf(msg, sizeof(msg),
	         "cannot read the CRL file '%s'; give the file `tokengate ca crl` wrote",
	         fx.missing);
	assert_string_equal(err.msg, msg);
	assert_int_equal(vnew(&v, fx.garbage, &err, fx.ca1, NULL), TG_ERR_CONFIG);
	assert_null(v);
	snprintf(msg, sizeof(msg),
	         "CRL file '%s' holds no CRL (PEM or DER); give the file `tokengate ca crl` wrote",
	         fx.garbage);
	assert_string_equal(err.msg, msg);
	/* the CA's name on a CRL signed by another key */
	assert_int_equal(vnew(&v, fx.crlfake, &err, fx.ca1, NULL), TG_ERR_CONFIG);
	assert_null(v);
	snprintf(msg, sizeof(msg),
	         "CRL file '%s': a CRL is not signed by any configured client CA; give the CRL "
	         "of the CA the gate trusts",
	         fx.crlfake);
	assert_string_equal(err.msg, msg);
	/* ... also when another configured CA comes first */
	assert_int_equal(vnew(&v, fx.crlfake, &err, fx.ca2, fx.ca1, NULL), TG_ERR_CONFIG);
	assert_string_equal(err.msg, msg);
	/* DER: one CRL, taken; its nextUpdate bounds cached verdicts */
	assert_int_equal(vnew(&v, fx.crl1der, &err, fx.ca1, NULL), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(tg_gate_verify_crl_until(v), fx.next);
	{
		struct tg_gate_peer_info info;
		char who[64];

		assert_int_equal(tg_gate_verify_peer(v, fx.victim, NULL, time(NULL), &info, &err),
		                 TG_ERR_REVOKED);
		snprintf(who, sizeof(who), "/CN=victim");
		snprintf(msg, sizeof(msg), "client certificate %s is revoked by the configured CRL",
		         who);
		assert_string_equal(err.msg, msg);
		assert_string_equal(info.identity, "");
		assert_int_equal(tg_gate_verify_peer(v, fx.good, NULL, time(NULL), &info, &err), 0);
	}
	tg_gate_verify_free(v);
}

static void
test_crl_reload(void **state)
{
	struct tg_gate_verify *v;
	struct tg_gate_peer_info info;
	struct tg_error err;
	char msg[800];

	(void)state;
	assert_int_equal(vnew(&v, fx.crl1, &err, fx.ca1, fx.ca2, NULL), 0);
	assert_int_equal(tg_gate_verify_peer(v, fx.victim, NULL, time(NULL), &info, &err), 0);
	/* a leaf of the CA the file has no CRL for */
	assert_int_equal(tg_gate_verify_peer(v, fx.of2, NULL, time(NULL), &info, &err),
	                 TG_ERR_POLICY);
	assert_string_equal(err.msg, "the CRL file has no CRL of the CA that issued client "
	                             "certificate /CN=bob; add that CA's CRL");
	/* a refused reload keeps the CRL in use */
	tg_error_clear(&err);
	assert_int_equal(tg_gate_verify_reload_crl(v, fx.garbage, &err), TG_ERR_CONFIG);
	snprintf(msg, sizeof(msg),
	         "new CRL refused, the previous one stays in use: CRL file '%s' holds no CRL (PEM "
	         "or DER); give the file `tokengate ca crl` wrote",
	         fx.garbage);
	assert_string_equal(err.msg, msg);
	assert_int_equal(tg_gate_verify_peer(v, fx.victim, NULL, time(NULL), &info, &err), 0);
	assert_int_equal(tg_gate_verify_reload_crl(v, fx.crlfake, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "new CRL refused, the previous one stays in use: CRL "
	                                "file '"));
	assert_int_equal(tg_gate_verify_peer(v, fx.victim, NULL, time(NULL), &info, &err), 0);
	/* the new CRL revokes victim */
	tg_error_clear(&err);
	assert_int_equal(tg_gate_verify_reload_crl(v, fx.crl1b, &err), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(tg_gate_verify_peer(v, fx.victim, NULL, time(NULL), &info, &err),
	                 TG_ERR_REVOKED);
	assert_int_equal(tg_gate_verify_peer(v, fx.good, NULL, time(NULL), &info, &err), 0);
	/* past the CRL's nextUpdate every leaf is refused */
	assert_int_equal(tg_gate_verify_peer(v, fx.good, NULL, fx.next + 60, &info, &err),
	                 TG_ERR_POLICY);
	assert_string_equal(err.msg, "the configured CRL is out of date (nextUpdate passed), so "
	                             "client certificate /CN=alice cannot be checked; make a "
	                             "fresh CRL with `tokengate ca crl` and reload");
	tg_gate_verify_free(v);
}

/* v refuses leaf with code rc and exactly msg; *out zeroed. */
static void
refused(struct tg_gate_verify *v, X509 *leaf, time_t now, int rc, const char *msg)
{
	struct tg_gate_peer_info info;
	struct tg_error err;
	int r;

	memset(&info, 0x5a, sizeof(info));
	tg_error_clear(&err);
	r = tg_gate_verify_peer(v, leaf, NULL, now, &info, &err);
	if (r != rc || strcmp(err.msg, msg) != 0)
		fail_msg("got %d \"%s\"\nwant %d \"%s\"", r, err.msg, rc, msg);
	assert_string_equal(info.identity, "");
	assert_int_equal(info.not_after, 0);
	assert_int_equal(info.prov.level, 0);
}

static void
test_leaf_refused(void **state)
{
	struct tg_gate_verify *v;
	struct tg_error err;
	time_t now = time(NULL);

	(void)state;
	assert_int_equal(vnew(&v, NULL, &err, fx.ca1, NULL), 0);
	refused(v, NULL, now, TG_ERR_POLICY,
	        "no client certificate; present the token-backed certificate `tokengate enroll` "
	        "gave");
	refused(NULL, fx.good, now, TG_ERR_POLICY,
	        "no client certificate; present the token-backed certificate `tokengate enroll` "
	        "gave");
	refused(v, fx.notyet, now, TG_ERR_POLICY,
	        "client certificate /CN=notyet is not yet valid; check the clocks of the CA and "
	        "the gate");
	refused(v, fx.crit, now, TG_ERR_POLICY,
	        "client certificate /CN=crit does not verify against the configured tokengate "
	        "CA: unhandled critical extension");
	refused(v, fx.nobc, now, TG_ERR_POLICY,
	        "client certificate /CN=nobc has no basicConstraints (CA:FALSE is required); "
	        "enroll with `tokengate enroll`");
	refused(v, fx.noprov, now, TG_ERR_POLICY,
	        "client certificate /CN=noprov has no key-provenance extension (" TG_PROV_OID
	        "), so nothing says its key is on a token; enroll with `tokengate enroll`");
	/* another CA's leaf: not issued by a configured CA */
	refused(v, fx.of2, now, TG_ERR_POLICY,
	        "client certificate /CN=bob was not issued by a configured tokengate CA (unable "
	        "to get local issuer certificate); enroll with the gate's CA");
	{
		struct tg_gate_peer_info info;

		tg_error_clear(&err);
		assert_int_equal(tg_gate_verify_peer(v, fx.noid, NULL, now, &info, &err),
		                 TG_ERR_IDENTITY);
		assert_int_equal(strncmp(err.msg, "client certificate /CN=noid: ", 29), 0);
		assert_string_equal(info.identity, "");
		tg_error_clear(&err);
		assert_int_equal(tg_gate_verify_peer(v, fx.badprov, NULL, now, &info, &err),
		                 TG_ERR_FORMAT);
		assert_int_equal(strncmp(err.msg,
		                         "client certificate /CN=badprov: bad key-provenance "
		                         "extension: ",
		                         60),
		                 0);
		assert_int_equal(info.prov.level, 0);
	}
	tg_gate_verify_free(v);
}

static void
test_leaf_good(void **state)
{
	struct tg_gate_verify *v;
	struct tg_gate_peer_info info, info2;
	struct tg_error err;
	X509_STORE *st;
	X509_STORE_CTX *sctx;
	unsigned char md[32];
	unsigned int mdlen = 0;

	(void)state;
	assert_int_equal(vnew(&v, fx.crl1, &err, fx.ca1, NULL), 0);
	assert_int_equal(tg_gate_verify_peer(v, fx.good, NULL, time(NULL), &info, &err), 0);
	assert_string_equal(info.identity, ALICE);
	assert_int_equal(info.prov.level, TG_PROV_DEVICE_ATTESTED);
	assert_string_equal(info.prov.serial, "31415926");
	assert_int_equal(info.prov.pin_policy, TG_ATT_PIN_ONCE);
	assert_int_equal(info.prov.touch_policy, TG_ATT_TOUCH_NEVER);
	assert_true(info.not_after > time(NULL) + 86400L * 364);
	assert_true(info.not_after <= time(NULL) + 86400L * 365);
	assert_int_equal(X509_digest(fx.good, EVP_sha256(), md, &mdlen), 1);
	assert_memory_equal(info.sha256, md, 32);
	/* the same through a verify callback's X509_STORE_CTX (its store unused) */
	st = X509_STORE_new();
	sctx = X509_STORE_CTX_new();
	assert_true(st != NULL && sctx != NULL);
	assert_int_equal(X509_STORE_CTX_init(sctx, st, fx.good, NULL), 1);
	assert_int_equal(tg_gate_verify_store_ctx(v, sctx, time(NULL), &info2, &err), 0);
	assert_memory_equal(&info, &info2, sizeof(info));
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(st);
	tg_gate_verify_free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ca_files),   cmocka_unit_test(test_crl_files),
	    cmocka_unit_test(test_crl_reload), cmocka_unit_test(test_leaf_refused),
	    cmocka_unit_test(test_leaf_good),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
