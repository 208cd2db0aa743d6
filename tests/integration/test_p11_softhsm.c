/*
 * test_p11_softhsm.c — libtgp11 against SoftHSM2 through p11-kit's proxy
 * (run under tests/lib/with-softhsm.sh: token tg-test, PIN 1234, keys
 * p256/01, p384/02, rsa2048/03, exportable/04). Adds tokens tg-two and
 * tg-gen with softhsm2-util for the multi-token and keygen cases, and a
 * CKA_SENSITIVE=false key (sensitive-false/5f, destroyed again) on tg-test
 * through SoftHSM2's own C_GenerateKeyPair.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "p11-int.h" /* tg_p11_key_rebind, for the presence watcher */
#include "tg_p11.h"
#include "tg_test.h"
#include "tg_test_p11.h"

#define MSG             "tokengate threaded signature"
#define SIGS_PER_THREAD 25

struct fx {
	struct tg_p11 *p;
};

static void
run(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static int
group_setup(void **state)
{
	static struct fx fx;
	static int tokens_added;

	tg_test_require_env("SOFTHSM2_CONF");
	if (!tokens_added) {
		run("softhsm2-util --init-token --free --label tg-two --pin 1234 "
		    "--so-pin 5678 >/dev/null");
		run("softhsm2-util --init-token --free --label tg-gen --pin 1234 "
		    "--so-pin 5678 >/dev/null");
		tokens_added = 1;
	}
	unsetenv("TOKENGATE_PIN");
	if (tg_p11_new(&fx.p, NULL) != 0)
		return -1;
	*state = &fx;
	return 0;
}

/* A context, no token added yet. */
static int
first_setup(void **state)
{
	static struct fx fx;

	tg_test_require_env("SOFTHSM2_CONF");
	unsetenv("TOKENGATE_PIN");
	if (tg_p11_new(&fx.p, NULL) != 0)
		return -1;
	*state = &fx;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fx *fx = *state;

	tg_p11_free(fx->p);
	return 0;
}

static struct tg_p11_key *
find_ok(struct tg_p11 *p, const char *uri, unsigned flags)
{
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri, flags, &k, &err);
	if (r != 0)
		fail_msg("%s: %d %s", uri, r, err.msg);
	return k;
}

static void
test_find_default_keys(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *uri;
		enum tg_p11_alg alg;
	} v[] = {
	    {"pkcs11:token=tg-test;object=p256;type=private?pin-value=1234", TG_P11_ALG_EC_P256},
	    {"pkcs11:token=tg-test;id=%02?pin-value=1234", TG_P11_ALG_EC_P384},
	    {"pkcs11:token=tg-test;object=rsa2048?pin-value=1234", TG_P11_ALG_RSA_2048},
	};
	struct tg_p11_trust tr;
	struct tg_p11_key *k;
	uint8_t *sig;
	size_t sl, i;
	char *uri = NULL;
	struct tg_error err;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		k = find_ok(fx->p, v[i].uri, 0);
		assert_int_equal(tg_p11_key_alg(k), v[i].alg);
		assert_int_equal(tg_p11_key_trust(k, &tr), 0);
		assert_int_equal(tr.verdict, TG_P11_TRUST_OK);
		assert_int_equal(tr.sensitive, 1);
		assert_int_equal(tr.extractable, 0);
		assert_int_equal(tr.never_extractable, 1);
		assert_int_equal(tr.always_sensitive, 1);
		assert_int_equal(tr.local, 1);
		tg_error_clear(&err);
		if (tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
		                         &err) != 0)
			fail_msg("%s: %s", v[i].uri, err.msg);
		free(sig);
		/* the canonical URI finds the same key again */
		assert_int_equal(tg_p11_key_uri(k, &uri), 0);
		assert_non_null(strstr(uri, "token=tg-test"));
		tg_p11_key_free(k);
		k = find_ok(fx->p, uri, TG_P11_KEY_NO_LOGIN);
		assert_int_equal(tg_p11_key_alg(k), v[i].alg);
		tg_p11_key_free(k);
		free(uri);
		uri = NULL;
	}
}

static void
test_module_path(void **state)
{
	struct fx *fx = *state;
	const char *mod = tg_test_require_env("TG_SOFTHSM2_MODULE");
	char uri[512];
	struct tg_p11_key *k;

	snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=p256?module-path=%s&pin-value=1234",
	         mod);
	k = find_ok(fx->p, uri, 0);
	assert_int_equal(tg_p11_key_alg(k), TG_P11_ALG_EC_P256);
	assert_string_equal(tg_p11_token_get_info(tg_p11_key_token(k))->module, mod);
	tg_p11_key_free(k);

	/* by p11-kit registry name */
	k = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?module-name=softhsm2&pin-value=1234",
	            0);
	assert_int_equal(tg_p11_key_alg(k), TG_P11_ALG_EC_P256);
	tg_p11_key_free(k);

	/* unknown name and bad path: the message names them and the fix */
	{
		struct tg_error err;
		struct tg_p11_key *none = NULL;

		tg_error_clear(&err);
		assert_int_equal(tg_p11_key_find(fx->p,
		                                 "pkcs11:token=t;object=k?module-name=nosuch", 0,
		                                 &none, &err),
		                 TG_ERR_MODULE);
		assert_non_null(strstr(err.msg, "'nosuch'"));
		assert_non_null(strstr(err.msg, "p11-kit list-modules"));
		tg_error_clear(&err);
		assert_int_equal(
		    tg_p11_key_find(fx->p, "pkcs11:token=t;object=k?module-path=/nonexistent/x.so",
		                    0, &none, &err),
		    TG_ERR_MODULE);
		assert_non_null(strstr(err.msg, "/nonexistent/x.so"));
		assert_null(none);
	}
}

static void
test_exportable(void **state)
{
	struct fx *fx = *state;
	const char *uri = "pkcs11:token=tg-test;object=exportable?pin-value=1234";
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust tr;
	struct tg_error err;

	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, uri, 0, &k, &err), TG_ERR_KEY_EXPORTABLE);
	assert_null(k);
	assert_non_null(strstr(err.msg, "CKA_EXTRACTABLE is true"));
	assert_non_null(strstr(err.msg, "'exportable'"));
	assert_non_null(strstr(err.msg, "allow exportable keys explicitly"));
	/* explicit override: found, verdict still reported */
	k = find_ok(fx->p, uri, TG_P11_KEY_ALLOW_EXPORTABLE);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_EXPORTABLE);
	assert_int_equal(tr.extractable, 1);
	tg_p11_key_free(k);
}

/* ---- a CKA_SENSITIVE=false key, made through SoftHSM2 itself ---------- */

#define INSENSITIVE_LABEL "sensitive-false"
#define INSENSITIVE_ID    0x5f

/*
 * Generates an EC P-256 token key pair whose private key is readable
 * (CKA_SENSITIVE=false) and wrappable (CKA_EXTRACTABLE=true): a truly
 * exportable key, whose refusal must name both. Returns the module's
 * CK_RV.
 */
static CK_RV
raw_keygen_insensitive(struct tg_test_p11 *w, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	/* DER OID 1.2.840.10045.3.1.7 (prime256v1) */
	static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE id = INSENSITIVE_ID;
	CK_ATTRIBUTE pubt[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
	    {CKA_LABEL, INSENSITIVE_LABEL, sizeof(INSENSITIVE_LABEL) - 1},
	    {CKA_ID, &id, sizeof(id)},
	};
	CK_ATTRIBUTE privt[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &no, sizeof(no)},
	    {CKA_EXTRACTABLE, &yes, sizeof(yes)},
	    {CKA_LABEL, INSENSITIVE_LABEL, sizeof(INSENSITIVE_LABEL) - 1},
	    {CKA_ID, &id, sizeof(id)},
	};

	*pub = CK_INVALID_HANDLE;
	*priv = CK_INVALID_HANDLE;
	return w->f->C_GenerateKeyPair(w->s, &mech, pubt, sizeof(pubt) / sizeof(pubt[0]), privt,
	                               sizeof(privt) / sizeof(privt[0]), pub, priv);
}

/* CKA_SENSITIVE of h as stored by the module: 1, 0, or -1 when unreadable. */
static int
raw_sensitive(struct tg_test_p11 *w, CK_OBJECT_HANDLE h)
{
	CK_BBOOL v = CK_TRUE;
	CK_ATTRIBUTE a = {CKA_SENSITIVE, &v, sizeof(v)};
	int r = -1;

	if (w->f->C_GetAttributeValue(w->s, h, &a, 1) != CKR_OK || a.ulValueLen != sizeof(v))
		goto out;
	r = v == CK_TRUE ? 1 : 0;
out:
	return r;
}

/* Destroys the pair (either handle may be CK_INVALID_HANDLE). */
static void
raw_destroy(struct tg_test_p11 *w, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
	if (priv != CK_INVALID_HANDLE)
		assert_int_equal(w->f->C_DestroyObject(w->s, priv), CKR_OK);
	if (pub != CK_INVALID_HANDLE)
		assert_int_equal(w->f->C_DestroyObject(w->s, pub), CKR_OK);
}

/*
 * Ends the test program as skipped (tg_test_skip), after freeing what the
 * test and the group hold so LeakSanitizer has nothing to report.
 */
static void
skip_insensitive(struct fx *fx, struct tg_test_p11 *w, struct tg_p11_key *ref, const char *why)
{
	tg_test_p11_close(w);
	tg_p11_key_free(ref);
	tg_p11_free(fx->p);
	fx->p = NULL;
	tg_test_skip("SoftHSM2 (%s) %s: no CKA_SENSITIVE=false key to test the trust check with",
	             tg_test_getenv("TG_SOFTHSM2_MODULE"), why);
}

static void
test_sensitive_false(void **state)
{
	struct fx *fx = *state;
	const char *uri = "pkcs11:token=tg-test;object=" INSENSITIVE_LABEL "?pin-value=1234";
	struct tg_p11_key *ref, *k = NULL, *allowed = NULL;
	struct tg_p11_trust tr;
	struct tg_error err, err_allow;
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE pub, priv;
	CK_RV rv;
	char why[128];
	int r_default, r_allow, stored;

	/* libtgp11 loads and initializes SoftHSM2 (and logs in) first, so the
	 * direct use below shares its instance and never finalizes it */
	ref = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	tg_test_p11_open(&w, 1);
	rv = raw_keygen_insensitive(&w, &pub, &priv);
	if (rv != CKR_OK) {
		snprintf(why, sizeof(why),
		         "refuses C_GenerateKeyPair with CKA_SENSITIVE=false (CK_RV 0x%lx)",
		         (unsigned long)rv);
		skip_insensitive(fx, &w, ref, why);
	}
	stored = raw_sensitive(&w, priv);
	if (stored != 0) {
		raw_destroy(&w, pub, priv);
		skip_insensitive(fx, &w, ref,
		                 stored == 1 ? "stored CKA_SENSITIVE=true despite the template"
		                             : "does not report the key's CKA_SENSITIVE");
	}

	/* what libtgp11 says, gathered before the key is destroyed and the
	 * assertions run, so a failed assertion leaves no key behind */
	tg_error_clear(&err);
	r_default = tg_p11_key_find(fx->p, uri, 0, &k, &err);
	tg_error_clear(&err_allow);
	r_allow = tg_p11_key_find(fx->p, uri, TG_P11_KEY_ALLOW_EXPORTABLE, &allowed, &err_allow);
	memset(&tr, 0, sizeof(tr));
	tr.sensitive = -2; /* not read */
	if (allowed != NULL)
		tg_p11_key_trust(allowed, &tr);
	tg_p11_key_free(allowed);
	tg_p11_key_free(k);
	raw_destroy(&w, pub, priv);
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);

	/* refused by default, for both reasons */
	assert_int_equal(r_default, TG_ERR_KEY_EXPORTABLE);
	assert_null(k);
	if (strstr(err.msg, "CKA_SENSITIVE is false") == NULL ||
	    strstr(err.msg, "CKA_EXTRACTABLE is true") == NULL)
		fail_msg("refusal does not name CKA_SENSITIVE and CKA_EXTRACTABLE: %s", err.msg);
	assert_non_null(strstr(err.msg, "'" INSENSITIVE_LABEL "'"));
	/* accepted with the explicit flag, the report says why it is weak */
	if (r_allow != 0)
		fail_msg("%s with TG_P11_KEY_ALLOW_EXPORTABLE: %d %s", uri, r_allow, err_allow.msg);
	assert_int_equal(tr.verdict, TG_P11_TRUST_EXPORTABLE);
	assert_int_equal(tr.sensitive, 0);
	assert_int_equal(tr.extractable, 1);
	assert_non_null(strstr(tr.reason, "CKA_SENSITIVE is false"));
	assert_non_null(strstr(tr.reason, "CKA_EXTRACTABLE is true"));

	/* destroyed: the token is back to its default layout */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, uri, TG_P11_KEY_ALLOW_EXPORTABLE, &k, &err),
	                 TG_ERR_KEY_NOT_FOUND);
	assert_null(k);
}

static void
test_missing_and_ambiguous(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = NULL;
	struct tg_p11_token *t = NULL;
	struct tg_error err;

	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, "pkcs11:token=alice;object=api", 0, &k, &err),
	                 TG_ERR_TOKEN_NOT_FOUND);
	assert_non_null(strstr(err.msg, "token 'alice' not found"));
	assert_non_null(strstr(err.msg, "'tg-test' (SoftHSM project"));
	assert_non_null(strstr(err.msg, "'tg-two'"));

	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_token_open(fx->p, "pkcs11:manufacturer=SoftHSM%20project", &t, &err),
	    TG_ERR_TOKEN_AMBIGUOUS);
	assert_null(t);
	assert_non_null(strstr(err.msg, "'tg-test'"));
	assert_non_null(strstr(err.msg, "'tg-two'"));
	assert_non_null(strstr(err.msg, "add token= or serial="));

	/* missing key: lists the keys present */
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_key_find(fx->p, "pkcs11:token=tg-test;object=nope?pin-value=1234", 0, &k, &err),
	    TG_ERR_KEY_NOT_FOUND);
	assert_non_null(strstr(err.msg, "'p256' (id 01)"));

	/* a URI without object= or id= names no key */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, "pkcs11:token=tg-test?pin-value=1234", 0, &k, &err),
	                 TG_ERR_URI);

	/* tokens_list filters */
	{
		struct tg_p11_token_info *v = NULL;
		size_t n = 0;

		assert_int_equal(tg_p11_tokens_list(fx->p, "pkcs11:token=tg-two", &v, &n, NULL), 0);
		assert_int_equal(n, 1);
		assert_string_equal(v[0].label, "tg-two");
		assert_string_equal(v[0].manufacturer, "SoftHSM project");
		free(v);
	}
}

static void
test_wrong_pin_and_no_pin(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = NULL;
	struct tg_p11 *p2 = NULL;
	struct tg_error err;

	/* a fresh context: the shared one may already be logged in */
	assert_int_equal(tg_p11_new(&p2, NULL), 0);
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_key_find(p2, "pkcs11:token=tg-two;object=x?pin-value=0000", 0, &k, &err),
	    TG_ERR_PIN_INCORRECT);
	assert_non_null(strstr(err.msg, "wrong PIN for token 'tg-two'"));
	assert_non_null(strstr(err.msg, "not retried"));
	/* SoftHSM2 raises CKF_USER_PIN_COUNT_LOW after a failure */
	assert_non_null(strstr(err.msg, "few tries left"));

	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(p2, "pkcs11:token=tg-two;object=x", 0, &k, &err),
	                 TG_ERR_NO_PIN);
	assert_non_null(strstr(err.msg, "TOKENGATE_PIN"));
	tg_p11_free(p2);
	(void)fx;
}

static X509 *
cert_for(EVP_PKEY *pub, const char *cn)
{
	EVP_PKEY *ca = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(ca);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pub);
	assert_true(X509_sign(x, ca, EVP_sha256()) > 0);
	X509_NAME_free(n);
	EVP_PKEY_free(ca);
	return x;
}

static void
test_keygen_all_and_certs(void **state)
{
	struct fx *fx = *state;
	static const struct {
		enum tg_p11_alg alg;
		const char *label;
	} v[] = {
	    {TG_P11_ALG_EC_P256, "g256"},
	    {TG_P11_ALG_EC_P384, "g384"},
	    {TG_P11_ALG_RSA_2048, "g2048"},
	    {TG_P11_ALG_RSA_3072, "g3072"},
	};
	struct tg_p11_key *k, *k2;
	struct tg_p11_trust tr;
	struct tg_error err;
	char uri[256];
	uint8_t *sig;
	size_t sl, i;
	EVP_PKEY *pub, *other;
	X509 *x, *got, *wrong;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		snprintf(uri, sizeof(uri), "pkcs11:token=tg-gen;object=%s?pin-value=1234",
		         v[i].label);
		tg_error_clear(&err);
		k = NULL;
		if (tg_p11_keygen(fx->p, uri, v[i].alg, 0, &k, &err) != 0)
			fail_msg("keygen %s: %s", v[i].label, err.msg);
		assert_int_equal(tg_p11_key_alg(k), v[i].alg);
		tg_p11_key_trust(k, &tr);
		assert_int_equal(tr.verdict, TG_P11_TRUST_OK);
		tg_p11_key_free(k);

		/* found again through key_find, trust check passes */
		k = find_ok(fx->p, uri, 0);
		tg_p11_key_trust(k, &tr);
		assert_int_equal(tr.verdict, TG_P11_TRUST_OK);
		tg_error_clear(&err);
		if (tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
		                         &err) != 0)
			fail_msg("sign %s: %s", v[i].label, err.msg);
		free(sig);
		if (v[i].alg == TG_P11_ALG_RSA_2048 || v[i].alg == TG_P11_ALG_RSA_3072) {
			if (tg_p11_key_sign_test(k, 1, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
			                         &err) != 0)
				fail_msg("PSS sign %s: %s", v[i].label, err.msg);
			free(sig);
		}

		/* duplicates refused */
		tg_error_clear(&err);
		assert_int_equal(tg_p11_keygen(fx->p, uri, v[i].alg, 0, NULL, &err),
		                 TG_ERR_INVALID_ARG);
		assert_non_null(strstr(err.msg, "already has a private key"));

		/* no certificate yet */
		tg_error_clear(&err);
		assert_int_equal(tg_p11_key_cert_get(k, &got, &err), TG_ERR_NOT_FOUND);
		assert_non_null(strstr(err.msg, "import-cert"));

		/* import with the key's id, read back, equal */
		pub = tg_p11_key_public(k);
		assert_non_null(pub);
		x = cert_for(pub, v[i].label);
		tg_error_clear(&err);
		if (tg_p11_key_cert_import(k, x, NULL, 0, &err) != 0)
			fail_msg("import %s: %s", v[i].label, err.msg);
		assert_int_equal(tg_p11_key_cert_import(k, x, NULL, 0, &err), 0); /* idempotent */
		assert_int_equal(tg_p11_key_cert_get(k, &got, &err), 0);
		assert_int_equal(X509_cmp(x, got), 0);
		X509_free(got);

		/* a certificate of another key is refused, nothing stored */
		other = EVP_EC_gen("P-256");
		wrong = cert_for(other, "wrong");
		tg_error_clear(&err);
		assert_int_equal(tg_p11_key_cert_import(k, wrong, NULL, 1, &err),
		                 TG_ERR_CERT_MISMATCH);
		assert_int_equal(tg_p11_key_cert_get(k, &got, &err), 0);
		assert_int_equal(X509_cmp(x, got), 0);
		X509_free(got);

		/* an SSL_CTX accepts the token key with its certificate */
		{
			SSL_CTX *ctx = SSL_CTX_new(TLS_method());

			tg_error_clear(&err);
			if (tg_p11_ssl_ctx_use_key(ctx, k, NULL, &err) != 0)
				fail_msg("ssl ctx %s: %s", v[i].label, err.msg);
			SSL_CTX_free(ctx);
		}
		X509_free(wrong);
		EVP_PKEY_free(other);
		X509_free(x);
		EVP_PKEY_free(pub);
		tg_p11_key_free(k);
	}

	/* mismatch detection on lookup: a foreign certificate stored under the
	 * key's id by someone else */
	k = find_ok(fx->p, "pkcs11:token=tg-gen;object=g256?pin-value=1234", 0);
	k2 = find_ok(fx->p, "pkcs11:token=tg-gen;object=g384?pin-value=1234", 0);
	(void)k2;
	tg_p11_key_free(k2);
	tg_p11_key_free(k);
}

struct thr {
	EVP_PKEY *priv, *pub;
	int pss;
	int ok;
};

static void *
sign_loop(void *arg)
{
	struct thr *t = arg;
	unsigned char sig[512];
	size_t sl;
	EVP_MD_CTX *mc;
	EVP_PKEY_CTX *pc;
	int i;

	t->ok = 0;
	for (i = 0; i < SIGS_PER_THREAD; i++) {
		mc = EVP_MD_CTX_new();
		sl = sizeof(sig);
		pc = NULL;
		if (EVP_DigestSignInit(mc, &pc, EVP_sha256(), NULL, t->priv) != 1 ||
		    (t->pss && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1) ||
		    EVP_DigestSign(mc, sig, &sl, (const unsigned char *)MSG, strlen(MSG)) != 1) {
			EVP_MD_CTX_free(mc);
			return NULL;
		}
		EVP_MD_CTX_free(mc);
		mc = EVP_MD_CTX_new();
		pc = NULL;
		if (EVP_DigestVerifyInit(mc, &pc, EVP_sha256(), NULL, t->pub) != 1 ||
		    (t->pss && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1) ||
		    EVP_DigestVerify(mc, sig, sl, (const unsigned char *)MSG, strlen(MSG)) != 1) {
			EVP_MD_CTX_free(mc);
			return NULL;
		}
		EVP_MD_CTX_free(mc);
		t->ok++;
	}
	return NULL;
}

static void
threads_run(struct tg_p11_key *k, int nthreads, int pss)
{
	pthread_t th[8];
	struct thr t[8];
	EVP_PKEY *priv = tg_p11_key_evp(k), *pub = tg_p11_key_public(k);
	int i;

	assert_non_null(priv);
	assert_non_null(pub);
	for (i = 0; i < nthreads; i++) {
		t[i].priv = priv;
		t[i].pub = pub;
		t[i].pss = pss;
		t[i].ok = -1;
		assert_int_equal(pthread_create(&th[i], NULL, sign_loop, &t[i]), 0);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (t[i].ok != SIGS_PER_THREAD)
			fail_msg("%d threads: thread %d made %d of %d verified signatures",
			         nthreads, i, t[i].ok, SIGS_PER_THREAD);
	}
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
}

static void
test_threads(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *ec =
	    find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	struct tg_p11_key *rsa =
	    find_ok(fx->p, "pkcs11:token=tg-test;object=rsa2048?pin-value=1234", 0);
	int n;

	for (n = 2; n <= 8; n *= 2) {
		threads_run(ec, n, 0);
		threads_run(rsa, n, n == 4);
	}
	tg_p11_key_free(ec);
	tg_p11_key_free(rsa);
}

static void
test_fork(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	uint8_t *sig = NULL;
	size_t sl;
	pid_t pid;
	int st = -1;

	assert_int_equal(
	    tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, NULL), 0);
	free(sig);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tg_error err;

		/* the child signs with the key found by the parent */
		tg_error_clear(&err);
		if (tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
		                         &err) != 0) {
			fprintf(stderr, "child: %s\n", err.msg);
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* and the parent still can */
	assert_int_equal(
	    tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, NULL), 0);
	free(sig);
	tg_p11_key_free(k);
}

/* ---- issue 9: one handle, proven; once-exportable keys ------------ */

/* DER OID 1.2.840.10045.3.1.7 (prime256v1) */
static const CK_BYTE p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/*
 * Generates an EC P-256 token key pair through SoftHSM2 itself, sensitive,
 * extractable when `extractable`, with label and id (no CKA_ID when idl is
 * 0). Fails the test on error.
 */
static void
raw_keygen(struct tg_test_p11 *w, const char *label, const uint8_t *id, size_t idl, int extractable,
           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE pubt[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, idl},
	};
	CK_ATTRIBUTE privt[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, extractable ? &yes : &no, sizeof(yes)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, idl},
	};
	CK_ULONG np = sizeof(pubt) / sizeof(pubt[0]), nk = sizeof(privt) / sizeof(privt[0]);
	CK_RV rv;

	if (idl == 0) { /* leave CKA_ID out */
		np--;
		nk--;
	}
	rv = w->f->C_GenerateKeyPair(w->s, &mech, pubt, np, privt, nk, pub, priv);
	if (rv != CKR_OK)
		fail_msg("C_GenerateKeyPair '%s': 0x%lx", label, (unsigned long)rv);
}

/* Destroys every object labelled `label` on the fixture token. */
static void
raw_destroy_label(struct tg_test_p11 *w, const char *label)
{
	CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE hs[16];
	CK_ULONG n = 0, i;

	assert_int_equal(w->f->C_FindObjectsInit(w->s, &t, 1), CKR_OK);
	assert_int_equal(w->f->C_FindObjects(w->s, hs, 16, &n), CKR_OK);
	assert_int_equal(w->f->C_FindObjectsFinal(w->s), CKR_OK);
	for (i = 0; i < n; i++)
		assert_int_equal(w->f->C_DestroyObject(w->s, hs[i]), CKR_OK);
}

/*
 * Plants a public-key object with `id` holding the public key of a fresh
 * software key (what anyone may write on SoftHSM2 without the user PIN);
 * *soft gets that software key.
 */
static void
raw_plant_pub(struct tg_test_p11 *w, const char *label, const uint8_t *id, size_t idl,
              EVP_PKEY **soft, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_BBOOL yes = CK_TRUE;
	unsigned char pt[133], *der = NULL;
	size_t ptl = 0;
	int dl;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

	assert_non_null((*soft = EVP_EC_gen("P-256")));
	assert_int_equal(EVP_PKEY_get_octet_string_param(*soft, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                                 pt, sizeof(pt), &ptl),
	                 1);
	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, pt, (int)ptl), 1);
	assert_true((dl = i2d_ASN1_OCTET_STRING(os, &der)) > 0);
	{
		CK_ATTRIBUTE t[] = {
		    {CKA_CLASS, &cls, sizeof(cls)},
		    {CKA_KEY_TYPE, &kt, sizeof(kt)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_VERIFY, &yes, sizeof(yes)},
		    {CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid)},
		    {CKA_EC_POINT, der, (CK_ULONG)dl},
		    {CKA_LABEL, (void *)label, strlen(label)},
		    {CKA_ID, (void *)id, idl},
		};
		assert_int_equal(w->f->C_CreateObject(w->s, t, sizeof(t) / sizeof(t[0]), h),
		                 CKR_OK);
	}
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
}

/*
 * A public-key object planted with the key's CKA_ID is a candidate, never
 * evidence: next to the real one the key's public key is still the real
 * one; alone it is refused, naming the reason.
 */
static void
test_planted_public_key(void **state)
{
	struct fx *fx = *state;
	static const uint8_t id[] = {0x72};
	const char *uri = "pkcs11:token=tg-test;object=planted-pub?pin-value=1234";
	struct tg_p11_key *ref, *k = NULL;
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE pub, priv, fake;
	EVP_PKEY *soft = NULL, *kp = NULL, *alone_pub = NULL;
	struct tg_error err, err_sign, err_prove;
	uint8_t *sig = NULL;
	size_t sl;
	int r_alone, r_sign, r_prove_soft, r_prove_real, r_sign_after, eq_soft;

	ref = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	tg_test_p11_open(&w, 1);
	raw_keygen(&w, "planted-pub", id, sizeof(id), 0, &pub, &priv);
	raw_plant_pub(&w, "planted-pub", id, sizeof(id), &soft, &fake);
	/* both present: the proven one is the real one */
	k = find_ok(fx->p, uri, 0);
	kp = tg_p11_key_public(k);
	eq_soft = kp != NULL && EVP_PKEY_eq(kp, soft) == 1;
	tg_error_clear(&err);
	if (tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &err) != 0)
		fail_msg("sign-test next to a planted public key: %s", err.msg);
	free(sig);
	sig = NULL;
	tg_p11_key_free(k);
	k = NULL;
	/* the real public object deleted: only the planted one is left; the
	 * key is found (its private object is fine) but has no public key,
	 * and what needs one refuses, naming the reason */
	assert_int_equal(w.f->C_DestroyObject(w.s, pub), CKR_OK);
	tg_error_clear(&err);
	r_alone = tg_p11_key_find(fx->p, uri, 0, &k, &err);
	tg_error_clear(&err_sign);
	tg_error_clear(&err_prove);
	r_sign = r_prove_soft = r_prove_real = r_sign_after = -1;
	if (k != NULL) {
		alone_pub = tg_p11_key_public(k);
		r_sign = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
		                              &err_sign);
		free(sig);
		sig = NULL;
		/* the planted key is not proven, the real one is (what the CA
		 * does with a CSR's key) */
		r_prove_soft = tg_p11_key_prove(k, soft, &err_prove);
		r_prove_real = tg_p11_key_prove(k, kp, NULL);
		r_sign_after =
		    tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, NULL);
		free(sig);
	}
	tg_p11_key_free(k);
	raw_destroy_label(&w, "planted-pub");
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);
	EVP_PKEY_free(alone_pub);
	EVP_PKEY_free(kp);
	EVP_PKEY_free(soft);

	assert_false(eq_soft);
	if (r_alone != 0)
		fail_msg("find with a planted public key: %s", err.msg);
	assert_null(alone_pub);
	assert_int_equal(r_sign, TG_ERR_CERT_MISMATCH);
	if (strstr(err_sign.msg,
	           "the public key of key 'planted-pub' on token 'tg-test' cannot be "
	           "established: none of the 1 public-key object(s) or certificate(s) "
	           "with its id 72 verifies a signature made by the key (one may have "
	           "been planted)") == NULL)
		fail_msg("planted public key: %s", err_sign.msg);
	assert_int_equal(r_prove_soft, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(err_prove.msg, "signed a random challenge, but the signature does "
	                                      "not verify with the public key given"));
	assert_int_equal(r_prove_real, 0);
	assert_int_equal(r_sign_after, 0);
}

/*
 * A 100-byte CKA_ID is kept whole: a planted extractable key with the same
 * label and no id (what libp11 matched by label alone when long ids were
 * dropped) never signs for it; one planted with the same id and label after
 * the key was found stops libp11's key from being handed out.
 */
static void
test_long_id_planted_label(void **state)
{
	struct fx *fx = *state;
	uint8_t id[100];
	char uri[512], *u;
	struct tg_p11_key *k = NULL, *k2 = NULL;
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE pub, priv;
	EVP_PKEY *real = NULL, *kp = NULL, *evp = NULL;
	struct tg_error err, err_dup, err_evp;
	const uint8_t *kid;
	size_t i, kidl = 0, sl;
	uint8_t *sig = NULL;
	int r_sign, eq, r_dup, r_evp;

	u = uri + snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=longid;id=");
	for (i = 0; i < sizeof(id); i++) {
		id[i] = (uint8_t)(0xa0 + i);
		u += snprintf(u, 4, "%%%02X", id[i]);
	}
	snprintf(u, sizeof(uri) - (size_t)(u - uri), "?pin-value=1234");
	tg_error_clear(&err);
	if (tg_p11_keygen(fx->p, uri, TG_P11_ALG_EC_P256, 0, &k, &err) != 0)
		fail_msg("keygen with a 100-byte id: %s", err.msg);
	real = tg_p11_key_public(k);
	assert_non_null(real);
	kid = tg_p11_key_id(k, &kidl);
	assert_int_equal(kidl, sizeof(id));
	assert_memory_equal(kid, id, sizeof(id));
	tg_p11_key_free(k);
	k = NULL;

	tg_test_p11_open(&w, 1);
	raw_keygen(&w, "longid", NULL, 0, 1, &pub, &priv); /* the planted one */
	k = find_ok(fx->p, uri, 0);
	tg_error_clear(&err);
	r_sign = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &err);
	free(sig);
	kp = tg_p11_key_public(k);
	eq = kp != NULL && EVP_PKEY_eq(kp, real) == 1;
	tg_p11_key_free(k);
	/* found again (no EVP_PKEY checked yet); then a twin with the whole
	 * id and label is made */
	k = find_ok(fx->p, uri, 0);
	raw_keygen(&w, "longid", id, sizeof(id), 1, &pub, &priv);
	tg_error_clear(&err_dup);
	r_dup = tg_p11_key_find(fx->p, uri, TG_P11_KEY_ALLOW_EXPORTABLE, &k2, &err_dup);
	tg_p11_key_free(k2);
	k2 = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	tg_p11_key_free(k2);
	tg_error_clear(&err_evp);
	r_evp = tg_p11_key_evp_get(k, &evp, &err_evp);
	EVP_PKEY_free(evp);
	EVP_PKEY_free(kp);
	tg_p11_key_free(k);
	raw_destroy_label(&w, "longid");
	tg_test_p11_close(&w);
	EVP_PKEY_free(real);

	if (r_sign != 0)
		fail_msg("sign-test with the 100-byte id: %s", err.msg);
	assert_true(eq);
	assert_int_equal(r_dup, TG_ERR_KEY_AMBIGUOUS);
	assert_non_null(strstr(err_dup.msg, "2 private keys match"));
	assert_int_equal(r_evp, TG_ERR_KEY_AMBIGUOUS);
	if (strstr(err_evp.msg, "2 private key objects on token 'tg-test' have the id "
	                        "a0a1a2a3") == NULL ||
	    strstr(err_evp.msg, "...(100 bytes) and label 'longid'") == NULL)
		fail_msg("twin key after the find: %s", err_evp.msg);
}

/*
 * A key generated extractable, then set CKA_EXTRACTABLE=false: non-
 * exportable now, a copy may exist. Refused by default naming
 * CKA_NEVER_EXTRACTABLE; accepted with TG_P11_KEY_ALLOW_IMPORTED.
 */
static void
test_once_exportable(void **state)
{
	struct fx *fx = *state;
	static const uint8_t id[] = {0x73};
	const char *uri = "pkcs11:token=tg-test;object=once-exp?pin-value=1234";
	struct tg_p11_key *ref, *k = NULL, *ok = NULL;
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE pub, priv;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE a = {CKA_EXTRACTABLE, &no, sizeof(no)};
	struct tg_p11_trust tr;
	struct tg_error err, err_ok;
	uint8_t *sig = NULL;
	size_t sl;
	int r_default, r_allow, r_sign = -1;

	ref = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	tg_test_p11_open(&w, 1);
	raw_keygen(&w, "once-exp", id, sizeof(id), 1, &pub, &priv);
	assert_int_equal(w.f->C_SetAttributeValue(w.s, priv, &a, 1), CKR_OK);
	tg_error_clear(&err);
	r_default = tg_p11_key_find(fx->p, uri, 0, &k, &err);
	tg_error_clear(&err_ok);
	memset(&tr, 0, sizeof(tr));
	r_allow = tg_p11_key_find(fx->p, uri, TG_P11_KEY_ALLOW_IMPORTED, &ok, &err_ok);
	if (ok != NULL) {
		tg_p11_key_trust(ok, &tr);
		r_sign = tg_p11_key_sign_test(ok, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
		                              &err_ok);
	}
	free(sig);
	tg_p11_key_free(ok);
	tg_p11_key_free(k);
	raw_destroy(&w, pub, priv);
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);

	assert_int_equal(r_default, TG_ERR_KEY_EXPORTABLE);
	if (strstr(err.msg,
	           "key 'once-exp' on token 'tg-test' is refused (once-exportable): "
	           "CKA_NEVER_EXTRACTABLE is false: the key was extractable once") == NULL ||
	    strstr(err.msg, "--allow-imported, TG_P11_KEY_ALLOW_IMPORTED") == NULL)
		fail_msg("once-exportable refusal: %s", err.msg);
	if (r_allow != 0 || r_sign != 0)
		fail_msg("once-exportable with TG_P11_KEY_ALLOW_IMPORTED: %s", err_ok.msg);
	assert_int_equal(tr.verdict, TG_P11_TRUST_ONCE_EXPORTABLE);
	assert_int_equal(tr.extractable, 0);
	assert_int_equal(tr.never_extractable, 0);
}

/* Handle of the private key labelled `label` on the fixture token. */
static CK_OBJECT_HANDLE
raw_private_handle(struct tg_test_p11 *w, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
	                    {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	assert_int_equal(w->f->C_FindObjectsInit(w->s, t, 2), CKR_OK);
	assert_int_equal(w->f->C_FindObjects(w->s, &h, 1, &n), CKR_OK);
	assert_int_equal(w->f->C_FindObjectsFinal(w->s), CKR_OK);
	assert_int_equal(n, 1);
	return h;
}

/*
 * tg_p11_key_rebind (for the presence watcher): a key is bound to another
 * object only when that object proves to be the same key.
 */
static void
test_rebind(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE own, other;
	struct tg_error err;
	int r_other, r_own;

	tg_test_p11_open(&w, 0);
	own = raw_private_handle(&w, "p256");
	other = raw_private_handle(&w, "p384");
	tg_test_p11_close(&w);
	tg_error_clear(&err);
	tg_p11_lock(fx->p);
	r_other = tg_p11_key_rebind(k, other, &err);
	r_own = tg_p11_key_rebind(k, own, NULL);
	tg_p11_unlock(fx->p);
	assert_int_equal(r_other, TG_ERR_CERT_MISMATCH);
	if (strstr(err.msg, "the key now on token 'tg-test' under the id of key 'p256' is not the "
	                    "key that was checked (different public key)") == NULL)
		fail_msg("rebind to another key: %s", err.msg);
	assert_int_equal(r_own, 0);
	assert_true(k->h == own);
	tg_p11_key_free(k);
}

/*
 * libp11's key is handed out only when its signature over a fresh
 * challenge verifies with the key's proven public key: with k->pub swapped
 * for another key's (what a wrong libp11 match would look like), no
 * EVP_PKEY, and the refusal says why.
 */
static void
test_evp_checked_against_proven_key(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = find_ok(fx->p, "pkcs11:token=tg-test;object=p256?pin-value=1234", 0);
	struct tg_p11_key *o =
	    find_ok(fx->p, "pkcs11:token=tg-test;object=exportable?pin-value=1234",
	            TG_P11_KEY_ALLOW_EXPORTABLE);
	EVP_PKEY *own = k->pub, *evp = NULL;
	struct tg_error err;
	int r_swapped, r_own;

	k->pub = o->pub; /* same curve, another key */
	tg_error_clear(&err);
	r_swapped = tg_p11_key_evp_get(k, &evp, &err);
	k->pub = own;
	assert_null(evp);
	r_own = tg_p11_key_evp_get(k, &evp, NULL);
	EVP_PKEY_free(evp);
	tg_p11_key_free(o);
	tg_p11_key_free(k);
	assert_int_equal(r_swapped, TG_ERR_CERT_MISMATCH);
	if (strstr(err.msg,
	           "libp11's key for 'p256' on token 'tg-test' signs, but not with the key "
	           "that was checked") == NULL)
		fail_msg("swapped public key: %s", err.msg);
	assert_int_equal(r_own, 0);
}

/*
 * SoftHSM2 always shows a spare uninitialized token; it is no match for a
 * URI naming only the module or the model (run while tg-test is the one
 * initialized token: a selection finds exactly it).
 */
static void
test_spare_slot_no_match(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_token_info *v = NULL;
	struct tg_p11_token *t = NULL;
	struct tg_error err;
	char uri[512];
	size_t n = 0, i, spare = 0;
	const char *sel[2];

	snprintf(uri, sizeof(uri), "pkcs11:?module-path=%s",
	         tg_test_require_env("TG_SOFTHSM2_MODULE"));
	assert_int_equal(tg_p11_tokens_list(fx->p, uri, &v, &n, NULL), 0);
	for (i = 0; i < n; i++)
		spare += !v[i].initialized;
	free(v);
	assert_int_equal(n, 2); /* tg-test and the spare one */
	assert_int_equal(spare, 1);
	sel[0] = uri;
	sel[1] = "pkcs11:model=SoftHSM%20v2";
	for (i = 0; i < 2; i++) {
		tg_error_clear(&err);
		if (tg_p11_token_open(fx->p, sel[i], &t, &err) != 0)
			fail_msg("%s: %s", sel[i], err.msg);
		assert_string_equal(tg_p11_token_get_info(t)->label, "tg-test");
		tg_p11_token_free(t);
		t = NULL;
	}
}

/* Scans len bytes at p for the PIN's bytes. */
static int
holds(const void *p, size_t len, const char *pin)
{
	size_t n = strlen(pin), i;

	for (i = 0; p != NULL && i + n <= len; i++)
		if (memcmp((const char *)p + i, pin, n) == 0)
			return 1;
	return 0;
}

/*
 * No PIN stays in the token and key structures after the login: the token
 * keeps the URI without its pin-value (and says so through
 * tg_p11_token_uri) and a spent PIN source; the key's strings hold no PIN.
 * A second login with that source is refused, naming the sources to use.
 */
static void
test_no_pin_kept(void **state)
{
	struct fx *fx = *state;
	const char *pin = "1234"; /* the fixture's: a distinctive value below */
	struct tg_p11_key *k;
	struct tg_p11_token *t;
	struct tg_pin rd;
	struct tg_error err;

	assert_int_equal(tg_p11_keygen(fx->p, "pkcs11:token=tg-two;object=np?pin-value=1234",
	                               TG_P11_ALG_EC_P256, 0, NULL, NULL),
	                 0);
	k = find_ok(fx->p, "pkcs11:token=tg-two;object=np?pin-value=1234", 0);
	t = tg_p11_key_token(k);
	assert_string_equal(tg_p11_token_uri(t), "pkcs11:token=tg-two;object=np");
	assert_false(holds(t->uri, strlen(t->uri), pin));
	assert_false(holds(k->label, strlen(k->label), pin));
	assert_false(holds(t, sizeof(*t), pin));
	assert_false(holds(k, sizeof(*k), pin));
	assert_int_equal(tg_pin_src_kind(t->pin), TG_PIN_VALUE);
	assert_false(tg_pin_src_noninteractive(t->pin));
	/* a second login (after a reinsertion) reads the source again: spent */
	tg_error_clear(&err);
	assert_int_equal(tg_pin_src_read(t->pin, "token 'tg-two'", 0, &rd, &err), TG_ERR_NO_PIN);
	assert_string_equal(err.msg,
	                    "token 'tg-two' needs the PIN again, and a pin-value given in the URI "
	                    "serves only the lookup it came with; give the PIN with "
	                    "pin-source=file:PATH (or env:NAME) or TOKENGATE_PIN");
	tg_p11_key_free(k);
}

/* A file PIN source is read again at each login (what a re-login after a
 * reinsertion does): the token logs in with the file's PIN as it is now. */
static void
test_relogin_rereads_file(void **state)
{
	struct fx *fx = *state;
	char path[512], uri[700];
	struct tg_p11 *p2 = NULL;
	struct tg_p11_key *k;
	struct tg_p11_token *t;
	struct tg_error err;
	const char *tmp = getenv("TG_TMP");
	FILE *f;

	(void)fx;
	snprintf(path, sizeof(path), "%s/relogin.pin", tmp != NULL ? tmp : "/tmp");
	assert_non_null(f = fopen(path, "w"));
	fputs("1234\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=p256?pin-source=file:%s", path);
	assert_int_equal(tg_p11_new(&p2, NULL), 0); /* logged in afresh */
	k = find_ok(p2, uri, 0);
	t = tg_p11_key_token(k);
	/* the token was removed (its login gone), the file now holds a wrong
	 * PIN: the re-login reads it and is refused once */
	tg_p11_lock(t->p);
	(void)PKCS11_logout(tg_p11_module_lslot(t->m, t->slot)); /* as the watcher does */
	(void)t->m->f->C_Logout(t->sess);
	t->logged_in = 0;
	tg_p11_unlock(t->p);
	assert_non_null(f = fopen(path, "w"));
	fputs("0000\n", f);
	fclose(f);
	tg_error_clear(&err);
	assert_int_equal(tg_p11_token_login(t, NULL, 0, &err), TG_ERR_PIN_INCORRECT);
	assert_non_null(strstr(err.msg, "wrong PIN for token 'tg-test' (from pin-source"));
	/* fixed in the file: the next login reads it again and succeeds */
	assert_non_null(f = fopen(path, "w"));
	fputs("1234\n", f);
	fclose(f);
	tg_error_clear(&err);
	if (tg_p11_token_login(t, NULL, 0, &err) != 0)
		fail_msg("re-login: %s", err.msg);
	tg_p11_key_free(k);
	tg_p11_free(p2);
	unlink(path);
}

int
main(void)
{
	/* first, while tg-test is the only initialized token */
	const struct CMUnitTest first[] = {
	    cmocka_unit_test(test_spare_slot_no_match),
	};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find_default_keys),
	    cmocka_unit_test(test_module_path),
	    cmocka_unit_test(test_exportable),
	    cmocka_unit_test(test_missing_and_ambiguous),
	    cmocka_unit_test(test_wrong_pin_and_no_pin),
	    cmocka_unit_test(test_keygen_all_and_certs),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_fork),
	    cmocka_unit_test(test_planted_public_key),
	    cmocka_unit_test(test_long_id_planted_label),
	    cmocka_unit_test(test_once_exportable),
	    cmocka_unit_test(test_rebind),
	    cmocka_unit_test(test_evp_checked_against_proven_key),
	    cmocka_unit_test(test_no_pin_kept),
	    cmocka_unit_test(test_relogin_rereads_file),
	};
	/* A group of its own, run only when the others passed: it may end the
	 * program as skipped (status 77), which must not hide a failure. */
	const struct CMUnitTest needs_module_keygen[] = {
	    cmocka_unit_test(test_sensitive_false),
	};
	int r = cmocka_run_group_tests(first, first_setup, group_teardown);

	r |= cmocka_run_group_tests(tests, group_setup, group_teardown);

	if (r == 0)
		r = cmocka_run_group_tests(needs_module_keygen, group_setup, group_teardown);
	return r;
}
