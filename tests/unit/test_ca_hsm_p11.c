/*
 * test_ca_hsm_p11.c — the CA's HSM paths on SoftHSM2 (run through
 * tests/lib/with-softhsm.sh): a CA key on the token (found, or generated
 * when absent; an exportable one refused; a ca.key.uri naming no key) and
 * tg_ca_hsm_check / tg_ca_hsm_precheck of level hsm-operator, with the
 * module picked from hsm_tokens or named by module-path or module-name,
 * and each refusal (no HSM listed, a module or token the policy does not
 * list, an exportable key, a CSR for another key, a pin-value) asserted
 * with its code and message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "tg_ca_hsm.h"
#include "tg_ca_issue.h"
#include "tg_ca_policy.h"
#include "tg_ca_store.h"
#include "tg_p11.h"
#include "tg_test.h"

static const char *mod, *tok;

#define assert_err(r, err, want, part)                                                             \
	do {                                                                                       \
		int r_ = (r);                                                                      \
		if (r_ != (want) || strstr((err).msg, (part)) == NULL)                             \
			fail_msg("line %d: got %d '%s', want %d '%s'", __LINE__, r_, (err).msg,    \
			         (want), (part));                                                  \
	} while (0)

static void
rm_ca(const char *dir)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/issued", dir);
	tg_test_tmpdir_remove(p);
	snprintf(p, sizeof(p), "%s/attestation-roots", dir);
	tg_test_tmpdir_remove(p);
	tg_test_tmpdir_remove(dir);
}

static void
test_store_hsm_key(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_ca_store *s = NULL;
	struct tg_error err;
	char dir[64], uri[1024], p[256], text[1100];
	X509_CRL *crl = NULL;
	FILE *f;
	size_t n;

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-test-ca-hsm-p11", dir, sizeof(dir)), 0);
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256;type=private?module-path=%s", tok,
	         mod);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.trust_domain = "example.org";
	o.key_uri = uri;
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init on the HSM key: %s", err.msg);
	snprintf(p, sizeof(p), "%s/ca.key", dir);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/ca.key.uri", dir);
	assert_non_null(f = fopen(p, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_string_equal(text, uri);

	/* the key signs through the token: the CRL verifies with ca.pem */
	tg_error_clear(&err);
	if (tg_ca_store_open(dir, 1, &s, &err) != 0)
		fail_msg("open: %s", err.msg);
	assert_non_null(tg_ca_store_key(s));
	tg_error_clear(&err);
	if (tg_ca_store_crl(s, &crl, &err) != 0)
		fail_msg("crl: %s", err.msg);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(tg_ca_store_cert(s))), 1);
	X509_CRL_free(crl);
	tg_ca_store_free(s);
	s = NULL;

	/* ca.key.uri naming a key the token does not hold */
	snprintf(text, sizeof(text), "pkcs11:token=%s;object=nosuch?module-path=%s", tok, mod);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 1, &s, &err), err, TG_ERR_KEY_NOT_FOUND, "object=nosuch");
	assert_non_null(strstr(err.msg, "CA key 'pkcs11:"));
	assert_null(s);
	rm_ca(dir);

	/* an exportable key is no CA key */
	assert_int_equal(tg_test_tmpdir("tg-test-ca-hsm-p11", dir, sizeof(dir)), 0);
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=exportable?module-path=%s", tok, mod);
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_KEY_EXPORTABLE, "object=exportable");
	snprintf(p, sizeof(p), "%s/ca.pem", dir);
	assert_int_equal(access(p, F_OK), -1);
	rm_ca(dir);

	/* a key the token does not hold yet is generated there */
	assert_int_equal(tg_test_tmpdir("tg-test-ca-hsm-p11", dir, sizeof(dir)), 0);
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=ca-new?module-path=%s", tok, mod);
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init with a new HSM key: %s", err.msg);
	tg_error_clear(&err);
	if (tg_ca_store_open(dir, 1, &s, &err) != 0)
		fail_msg("open: %s", err.msg);
	assert_int_equal(EVP_PKEY_get_bits(tg_ca_store_key(s)), 256);
	tg_ca_store_free(s);
	rm_ca(dir);
}

/* A policy listing SoftHSM2 with manufacturer glob man (NULL: no
 * hsm_tokens), and an absent module before it. */
static void
policy(struct tg_ca_policy *pol, const char *man)
{
	char text[2048];
	struct tg_error err;
	int w;

	w = snprintf(text, sizeof(text),
	             "trust_domain: example.org\n"
	             "attestation_roots: attestation-roots\n"
	             "pin_policies: [once, always, never]\n"
	             "touch_policies: [never, always, cached]\n"
	             "default_validity: 24h\n"
	             "max_validity: 720h\n");
	if (man != NULL)
		snprintf(text + w, sizeof(text) - (size_t)w,
		         "hsm_tokens:\n"
		         "  - module: /nonexistent/libnothing.so\n"
		         "  - module: \"%s\"\n"
		         "    manufacturer: \"%s\"\n"
		         "    model: \"SoftHSM v2\"\n",
		         mod, man);
	tg_error_clear(&err);
	if (tg_ca_policy_parse(text, strlen(text), "policy.yaml", pol, &err) != 0)
		fail_msg("policy: %s", err.msg);
}

/* The public key of the token's key label. */
static EVP_PKEY *
token_pub(const char *label)
{
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	EVP_PKEY *pub;
	char uri[1024];

	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=%s?module-path=%s", tok, label, mod);
	tg_error_clear(&err);
	if (tg_p11_new(&p11, &err) != 0 ||
	    tg_p11_key_find(p11, uri, TG_P11_KEY_ALLOW_EXPORTABLE, &k, &err) != 0)
		fail_msg("%s: %s", uri, err.msg);
	pub = tg_p11_key_public(k);
	assert_non_null(pub);
	tg_p11_key_free(k);
	tg_p11_free(p11);
	return pub;
}

static void
test_hsm_check(void **state)
{
	struct tg_ca_policy pol, none, nope;
	struct tg_prov prov;
	struct tg_error err;
	EVP_PKEY *pub = token_pub("p256"), *xpub = token_pub("exportable"),
	         *other = EVP_EC_gen("P-256");
	char uri[1024];

	(void)state;
	assert_non_null(other);
	policy(&pol, "SoftHSM*");
	policy(&none, NULL);
	policy(&nope, "Nope*");

	/* module picked from hsm_tokens (the absent one skipped) */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256;type=private", tok);
	tg_error_clear(&err);
	memset(&prov, 0, sizeof(prov));
	if (tg_ca_hsm_check(&pol, uri, TG_CA_HSM_NO_PIN_VALUE, pub, &prov, &err) != 0)
		fail_msg("hsm check: %s", err.msg);
	assert_int_equal(prov.level, TG_PROV_HSM_OPERATOR);
	assert_string_equal(prov.token_manufacturer, "SoftHSM project");
	assert_string_equal(prov.token_model, "SoftHSM v2");
	assert_int_equal(prov.touch_policy, TG_ATT_TOUCH_NEVER);
	assert_true(prov.serial[0] != '\0');
	tg_error_clear(&err);
	assert_int_equal(tg_ca_hsm_precheck(&pol, uri, &err), 0);

	/* named by module-path */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256?module-path=%s", tok, mod);
	tg_error_clear(&err);
	memset(&prov, 0, sizeof(prov));
	if (tg_ca_hsm_check(&pol, uri, 0, pub, &prov, &err) != 0)
		fail_msg("hsm check by module-path: %s", err.msg);
	assert_int_equal(prov.level, TG_PROV_HSM_OPERATOR);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_hsm_precheck(&pol, uri, &err), 0);

	/* named by module-name, as p11-kit registers SoftHSM2 (when it does) */
	if (access("/usr/share/p11-kit/modules/softhsm2.module", F_OK) == 0) {
		snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256?module-name=softhsm2", tok);
		tg_error_clear(&err);
		memset(&prov, 0, sizeof(prov));
		if (tg_ca_hsm_check(&pol, uri, 0, pub, &prov, &err) != 0)
			fail_msg("hsm check by module-name: %s", err.msg);
		assert_int_equal(prov.level, TG_PROV_HSM_OPERATOR);
		tg_error_clear(&err);
		assert_int_equal(tg_ca_hsm_precheck(&pol, uri, &err), 0);
		tg_error_clear(&err);
		assert_err(tg_ca_hsm_precheck(&none, uri, &err), err, TG_ERR_POLICY, "hsm_tokens");
	}
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256?module-path=%s", tok, mod);
	/* a CSR for another key: the token's signature does not verify */
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&pol, uri, 0, other, &prov, &err), err, TG_ERR_CSR,
	           "the CSR is not for this HSM key");
	/* an exportable key */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=exportable", tok);
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_hsm_check(&pol, uri, 0, xpub, &prov, &err), 0);
	assert_non_null(strstr(err.msg, "exportable"));
	/* the token is not one hsm_tokens lists */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256", tok);
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&nope, uri, 0, pub, &prov, &err), err, TG_ERR_POLICY,
	           "SoftHSM project");
	/* no token of that name in the listed modules */
	snprintf(uri, sizeof(uri), "pkcs11:token=nosuch;object=p256");
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&pol, uri, 0, pub, &prov, &err), err, TG_ERR_POLICY,
	           "no token matching the --hsm-key URI in the modules hsm_tokens lists");
	/* no HSM listed at all */
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&none, uri, 0, pub, &prov, &err), err, TG_ERR_POLICY,
	           "hsm_tokens");
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_precheck(&none, uri, &err), err, TG_ERR_POLICY, "hsm_tokens");
	/* a module the policy does not list, by path */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256?module-path=%s", tok, mod);
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&none, uri, 0, pub, &prov, &err), err, TG_ERR_POLICY,
	           "hsm_tokens");
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_precheck(&none, uri, &err), err, TG_ERR_POLICY, "hsm_tokens");
	/* a module-name p11-kit does not register */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256?module-name=tg-no-such-module",
	         tok);
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&pol, uri, 0, pub, &prov, &err), err, TG_ERR_MODULE,
	           "no PKCS#11 module named 'tg-no-such-module'");
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_precheck(&pol, uri, &err), err, TG_ERR_MODULE,
	           "no PKCS#11 module named 'tg-no-such-module'");
	/* a PIN on the command line */
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256;pin-value=1234", tok);
	tg_error_clear(&err);
	assert_err(tg_ca_hsm_check(&pol, uri, TG_CA_HSM_NO_PIN_VALUE, pub, &prov, &err), err,
	           TG_ERR_USAGE, "pin-value=");
	/* not a URI */
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_hsm_check(&pol, "file:/x", 0, pub, &prov, &err), 0);
	assert_true(err.msg[0] != '\0');
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_hsm_precheck(&pol, "file:/x", &err), 0);

	tg_ca_policy_clear(&pol);
	tg_ca_policy_clear(&none);
	tg_ca_policy_clear(&nope);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(xpub);
	EVP_PKEY_free(other);
}

/*
 * tg_ca_issue at level hsm-operator: a CA whose policy lists SoftHSM2
 * certifies a CSR the token key signed, with the provenance of the token;
 * a URI holding pin-value is refused when the caller says so, and nothing
 * is recorded.
 */
static void
test_issue_hsm(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_ca_store *s = NULL;
	struct tg_ca_issue_req req;
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_prov prov;
	struct tg_error err;
	EVP_PKEY *evp = NULL;
	X509_REQ *csr = X509_REQ_new();
	X509 *leaf = NULL;
	char dir[64], p[256], uri[1024];
	FILE *f;

	(void)state;
	assert_non_null(csr);
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256?module-path=%s", tok, mod);
	tg_error_clear(&err);
	if (tg_p11_new(&p11, &err) != 0 || tg_p11_key_find(p11, uri, 0, &k, &err) != 0 ||
	    tg_p11_key_evp_get(k, &evp, &err) != 0)
		fail_msg("%s: %s", uri, err.msg);
	assert_int_equal(X509_REQ_set_pubkey(csr, evp), 1);
	assert_true(X509_REQ_sign(csr, evp, EVP_sha256()) > 0);

	assert_int_equal(tg_test_tmpdir("tg-test-ca-hsm-p11", dir, sizeof(dir)), 0);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.trust_domain = "example.org";
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init: %s", err.msg);
	snprintf(p, sizeof(p), "%s/policy.yaml", dir);
	assert_non_null(f = fopen(p, "a"));
	fprintf(f, "hsm_tokens:\n  - module: \"%s\"\n    manufacturer: \"SoftHSM*\"\n", mod);
	assert_int_equal(fclose(f), 0);
	tg_error_clear(&err);
	if (tg_ca_store_open(dir, 1, &s, &err) != 0)
		fail_msg("open: %s", err.msg);

	memset(&req, 0, sizeof(req));
	req.csr = csr;
	req.id = "spiffe://example.org/svc/hsm";
	req.hsm_key_uri = uri;
	req.flags = TG_CA_ISSUE_NO_PIN_VALUE;
	tg_error_clear(&err);
	memset(&prov, 0, sizeof(prov));
	if (tg_ca_issue(s, &req, &leaf, &prov, &err) != 0)
		fail_msg("issue: %s", err.msg);
	assert_int_equal(prov.level, TG_PROV_HSM_OPERATOR);
	assert_string_equal(prov.token_model, "SoftHSM v2");
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(tg_ca_store_cert(s))), 1);
	X509_free(leaf);
	leaf = NULL;
	snprintf(p, sizeof(p), "%s/issued", dir);
	assert_int_equal(tg_test_dir_count(p), 2);

	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=p256;pin-value=1234", tok);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_issue(s, &req, &leaf, &prov, &err), TG_ERR_USAGE);
	assert_non_null(strstr(err.msg, "the URI holds pin-value="));
	assert_null(leaf);
	assert_int_equal(tg_test_dir_count(p), 2);

	tg_ca_store_free(s);
	X509_REQ_free(csr);
	EVP_PKEY_free(evp);
	tg_p11_key_free(k);
	tg_p11_free(p11);
	rm_ca(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_hsm_key),
	    cmocka_unit_test(test_hsm_check),
	    cmocka_unit_test(test_issue_hsm),
	};

	mod = tg_test_require_env("TG_SOFTHSM2_MODULE");
	tok = tg_test_require_env("TG_SOFTHSM_TOKEN");
	setenv("TOKENGATE_PIN", tg_test_require_env("TG_SOFTHSM_PIN"), 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
