/*
 * test_p11_fault.c — libtgp11 when the module fails: every token, login,
 * key, certificate and signature call against p11_fault_module.c over
 * SoftHSM2's fixture token tg-test (with-softhsm.sh: PIN 1234, keys
 * p256/01, p384/02, rsa2048/03), with the failure $TG_P11_FAULT names;
 * each refusal asserted with its code and message. White-box (p11-int.h)
 * to log the token out between login cases.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11-int.h"
#include "tg_p11.h"
#include "tg_test.h"
#include "tg_test_p11.h"

#define MSG "tokengate fault test"

static struct tg_p11 *p;
static const char *mod;
static char ctl[64]; /* $TG_P11_FAULT_CTL: switch files for the watcher cases */

/* "pkcs11:token=tg-test[;object=OBJ]?module-path=MOD[&pin-value=1234]" */
static const char *
uri_of(const char *obj, int pin)
{
	static char u[1024];

	snprintf(u, sizeof(u), "pkcs11:token=tg-test%s%s?module-path=%s%s", obj ? ";object=" : "",
	         obj ? obj : "", mod, pin ? "&pin-value=1234" : "");
	return u;
}

static void
fault(const char *words)
{
	if (words == NULL)
		unsetenv("TG_P11_FAULT");
	else
		setenv("TG_P11_FAULT", words, 1);
}

static int
setup(void **state)
{
	(void)state;
	mod = tg_test_require_env("TG_P11_FAULT_MODULE");
	tg_test_require_env("SOFTHSM2_CONF");
	unsetenv("TOKENGATE_PIN");
	fault(NULL);
	/* set before any thread runs: the module reads it on every call */
	if (tg_test_tmpdir("p11-fault", ctl, sizeof(ctl)) != 0)
		return -1;
	setenv("TG_P11_FAULT_CTL", ctl, 1);
	setenv("TG_WK_PIN", "1234", 1); /* the watched key's PIN source */
	return tg_p11_new(&p, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	fault(NULL);
	tg_p11_free(p);
	tg_test_tmpdir_remove(ctl);
	return 0;
}

static struct tg_p11_key *
find_ok(const char *obj, unsigned flags)
{
	struct tg_p11_key *k = NULL;
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_p11_key_find(p, uri_of(obj, 1), flags, &k, &err) != 0)
		fail_msg("%s: %s", obj, err.msg);
	return k;
}

/* Ends the login (libp11's and the module's) so the next one is real. */
static void
logout(struct tg_p11_token *t)
{
	PKCS11_SLOT *ls;
	CK_SESSION_HANDLE s;

	tg_p11_lock(p);
	if ((ls = tg_p11_module_lslot(t->m, t->slot)) != NULL)
		(void)PKCS11_logout(ls);
	if (tg_p11_token_session(t, &s, NULL) == 0)
		(void)t->m->f->C_Logout(s);
	t->logged_in = 0;
	tg_p11_unlock(p);
}

/* The module's C_Initialize fails: nothing is loaded (first: a module is
 * loaded once per context). */
static void
test_init_fails(void **state)
{
	struct tg_p11_key *k = NULL;
	struct tg_error err;

	(void)state;
	fault("init-fail");
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err), TG_ERR_MODULE);
	fault(NULL);
	assert_null(k);
	assert_non_null(strstr(err.msg, "failed to initialize: CKR_GENERAL_ERROR"));
	assert_non_null(strstr(err.msg, mod));
	/* loaded now that it initializes */
	k = find_ok("p256", 0);
	tg_p11_key_free(k);
}

static void
test_slot_list_fails(void **state)
{
	static const char *v[] = {"slotlist-fail", "slotlist2-fail"};
	struct tg_p11_token_info *ti = NULL;
	struct tg_p11_token *t = NULL;
	struct tg_error err, err2;
	size_t n = 5, i;
	int r_list, r_open;

	(void)state;
	for (i = 0; i < 2; i++) {
		fault(v[i]);
		tg_error_clear(&err);
		r_list = tg_p11_tokens_list(p, uri_of(NULL, 0), &ti, &n, &err);
		tg_error_clear(&err2);
		r_open = tg_p11_token_open(p, uri_of(NULL, 0), &t, &err2);
		fault(NULL);
		assert_int_equal(r_list, TG_ERR_PKCS11);
		assert_null(ti);
		assert_int_equal(n, 0);
		assert_non_null(strstr(err.msg, "C_GetSlotList failed on module '"));
		assert_non_null(strstr(err.msg, "': CKR_DEVICE_ERROR"));
		assert_int_equal(r_open, TG_ERR_PKCS11);
		assert_null(t);
		assert_string_equal(err2.msg, err.msg);
	}
}

static void
test_open_session_fails(void **state)
{
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	int r;

	(void)state;
	fault("open-fail");
	tg_error_clear(&err);
	r = tg_p11_token_open(p, uri_of(NULL, 0), &t, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(t);
	assert_string_equal(err.msg, "cannot open a session on token 'tg-test': CKR_DEVICE_ERROR");

	fault("open-removed");
	tg_error_clear(&err);
	r = tg_p11_token_open(p, uri_of(NULL, 0), &t, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_CARD_REMOVED);
	assert_null(t);
	assert_non_null(strstr(err.msg, "CKR_DEVICE_REMOVED"));

	/* a write-protected token: a read-only session, keys found, but no
	 * key can be generated on it */
	fault("open-ro");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err);
	fault(NULL);
	if (r != 0)
		fail_msg("key on a write-protected token: %s", err.msg);
	tg_p11_key_free(k);
	k = NULL;
	fault("open-ro");
	tg_error_clear(&err);
	r = tg_p11_keygen(p, uri_of("ro-gen", 1), TG_P11_ALG_EC_P256, 0, &k, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(k);
	assert_non_null(strstr(err.msg, "token 'tg-test' could not generate a ec-p256 key: "
	                                "CKR_SESSION_READ_ONLY"));
}

struct login_case {
	const char *fault;
	int r;
	const char *msg;
};

static void
test_login_errors(void **state)
{
	static const struct login_case v[] = {
	    {"login-locked", TG_ERR_PIN_LOCKED,
	     "the user PIN of token 'tg-test' is locked; unblock it with the SO PIN or PUK"},
	    {"login-expired", TG_ERR_LOGIN,
	     "the user PIN of token 'tg-test' has expired; change it (pkcs11-tool --change-pin)"},
	    {"login-removed", TG_ERR_CARD_REMOVED,
	     "token 'tg-test' was removed during login; insert it and try again"},
	    {"login-general", TG_ERR_LOGIN, "login to token 'tg-test' failed: CKR_GENERAL_ERROR"},
	    {"login-incorrect", TG_ERR_PIN_INCORRECT,
	     "wrong PIN for token 'tg-test' (from pin-value; the token does not report tries "
	     "left); not retried: fix the PIN source"},
	    {"login-incorrect,flag-final", TG_ERR_PIN_INCORRECT,
	     "wrong PIN for token 'tg-test' (from pin-value; final try left: the next wrong PIN "
	     "locks it)"},
	    {"login-locks", TG_ERR_PIN_LOCKED,
	     "wrong PIN for token 'tg-test' (from pin-value); the user PIN is now locked"},
	    /* locked before any PIN is sent */
	    {"flag-locked", TG_ERR_PIN_LOCKED, "the user PIN of token 'tg-test' is locked"},
	};
	struct tg_p11_token *t = NULL;
	struct tg_error err;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(tg_p11_token_open(p, uri_of(NULL, 1), &t, NULL), 0);
		logout(t);
		fault(v[i].fault);
		tg_error_clear(&err);
		r = tg_p11_token_login(t, NULL, 0, &err);
		fault(NULL);
		tg_p11_token_free(t);
		if (r != v[i].r || strstr(err.msg, v[i].msg) == NULL)
			fail_msg("%s: %d %s", v[i].fault, r, err.msg);
	}
}

/* Tokens without a PIN to type here: none needed, or a PIN pad. */
static void
test_login_without_pin(void **state)
{
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	int r;

	(void)state;
	/* no PIN source at all (no pin-value, no TOKENGATE_PIN) */
	assert_int_equal(tg_p11_token_open(p, uri_of(NULL, 0), &t, NULL), 0);
	logout(t);
	tg_error_clear(&err);
	assert_int_equal(tg_p11_token_login(t, NULL, 0, &err), TG_ERR_NO_PIN);
	fault("flag-nologin");
	r = tg_p11_token_login(t, NULL, 0, &err);
	fault(NULL);
	assert_int_equal(r, 0);
	/* a PIN pad: the library sends no PIN, the user types it there */
	logout(t);
	fault("flag-pinpad");
	setenv("TG_P11_FAULT_PIN", "1234", 1);
	tg_error_clear(&err);
	r = tg_p11_token_login(t, NULL, 0, &err);
	if (r == 0)
		r = tg_p11_key_find(p, uri_of("p256", 0), 0, &k, &err);
	fault(NULL);
	unsetenv("TG_P11_FAULT_PIN");
	if (r != 0)
		fail_msg("login on a PIN pad: %s", err.msg);
	assert_int_equal(tg_p11_token_get_info(t)->protected_auth_path, 1);
	assert_int_equal(tg_p11_key_alg(k), TG_P11_ALG_EC_P256);
	tg_p11_key_free(k);
	/* a PIN pad whose user gives the wrong PIN */
	logout(t);
	fault("flag-pinpad");
	setenv("TG_P11_FAULT_PIN", "9999", 1);
	tg_error_clear(&err);
	r = tg_p11_token_login(t, NULL, 0, &err);
	fault(NULL);
	unsetenv("TG_P11_FAULT_PIN");
	assert_int_equal(r, TG_ERR_PIN_INCORRECT);
	assert_non_null(strstr(err.msg, "wrong PIN for token 'tg-test' (from pin-pad"));
	tg_p11_token_free(t);
}

static void
test_keygen_fails(void **state)
{
	static const struct {
		const char *fault;
		enum tg_p11_alg alg;
		int r;
		const char *msg;
	} v[] = {
	    {"keygen-mech", TG_P11_ALG_EC_P384, TG_ERR_PKCS11,
	     "token 'tg-test' could not generate a ec-p384 key: CKR_MECHANISM_INVALID (the token "
	     "does not support this algorithm; try another --algorithm)"},
	    {"keygen-login", TG_P11_ALG_RSA_2048, TG_ERR_PKCS11,
	     "could not generate a rsa-2048 key: CKR_USER_NOT_LOGGED_IN (log in first: give a "
	     "PIN)"},
	    {"keygen-general", TG_P11_ALG_EC_P256, TG_ERR_PKCS11,
	     "could not generate a ec-p256 key: CKR_GENERAL_ERROR"},
	    {"find-fail", TG_P11_ALG_EC_P256, TG_ERR_PKCS11,
	     "cannot search token 'tg-test': CKR_DEVICE_ERROR"},
	    {"findinit-fail", TG_P11_ALG_EC_P256, TG_ERR_PKCS11,
	     "cannot search token 'tg-test': CKR_DEVICE_ERROR"},
	};
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		fault(v[i].fault);
		tg_error_clear(&err);
		r = tg_p11_keygen(p, uri_of("never", 1), v[i].alg, 0, &k, &err);
		fault(NULL);
		assert_null(k);
		if (r != v[i].r || strstr(err.msg, v[i].msg) == NULL)
			fail_msg("%s: %d %s", v[i].fault, r, err.msg);
		/* the general error gets no hint */
		if (strcmp(v[i].fault, "keygen-general") == 0)
			assert_null(strstr(err.msg, "("));
	}
	/* nothing was generated */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(p, uri_of("never", 1), 0, &k, &err), TG_ERR_KEY_NOT_FOUND);
}

static void
test_find_fails(void **state)
{
	struct tg_p11_key *k = NULL, *ok;
	struct tg_p11_token *t = NULL;
	struct tg_p11_object_info *v = NULL;
	struct tg_error err;
	size_t n = 0;
	int r;

	(void)state;
	fault("findinit-fail");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(k);
	assert_string_equal(err.msg, "cannot search token 'tg-test': CKR_DEVICE_ERROR");

	fault("find-fail");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(k);
	assert_string_equal(err.msg, "cannot search token 'tg-test': CKR_DEVICE_ERROR");

	/* listing fails as a whole, nothing returned */
	assert_int_equal(tg_p11_token_open(p, uri_of(NULL, 1), &t, NULL), 0);
	fault("find-fail");
	tg_error_clear(&err);
	r = tg_p11_token_objects_list(t, &v, &n, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_string_equal(err.msg, "cannot search token 'tg-test': CKR_DEVICE_ERROR");
	tg_p11_token_free(t);

	/* a key found, then the search for its certificate fails */
	ok = find_ok("p256", 0);
	fault("find-fail");
	{
		X509 *x = NULL;

		tg_error_clear(&err);
		r = tg_p11_key_cert_get(ok, &x, &err);
		assert_null(x);
	}
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_string_equal(err.msg, "cannot search token 'tg-test': CKR_DEVICE_ERROR");
	/* and libp11's key cannot be told apart when the search fails */
	{
		EVP_PKEY *evp = NULL;

		fault("find-fail");
		tg_error_clear(&err);
		r = tg_p11_key_evp_get(ok, &evp, &err);
		fault(NULL);
		assert_null(evp);
		assert_int_equal(r, TG_ERR_PKCS11);
		assert_string_equal(err.msg, "cannot search token 'tg-test': CKR_DEVICE_ERROR");
	}
	tg_p11_key_free(ok);
}

static X509 *
cert_for(EVP_PKEY *pub, const char *cn, long serial)
{
	EVP_PKEY *ca = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(ca);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
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
test_cert_store_fails(void **state)
{
	struct tg_p11_key *k = find_ok("p384", 0);
	EVP_PKEY *pub = tg_p11_key_public(k);
	X509 *a = cert_for(pub, "a", 1), *b = cert_for(pub, "b", 2), *got = NULL;
	struct tg_error err;
	int r;

	(void)state;
	/* the token refuses the new object: nothing stored */
	fault("create-fail");
	tg_error_clear(&err);
	r = tg_p11_key_cert_import(k, a, NULL, 0, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_string_equal(err.msg, "token 'tg-test' refused to store the certificate: "
	                             "CKR_TOKEN_WRITE_PROTECTED");
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_cert_get(k, &got, &err), TG_ERR_NOT_FOUND);
	assert_null(got);

	/* stored; replacing it fails when the old one cannot be removed */
	assert_int_equal(tg_p11_key_cert_import(k, a, NULL, 0, NULL), 0);
	fault("destroy-fail");
	tg_error_clear(&err);
	r = tg_p11_key_cert_import(k, b, NULL, 1, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_string_equal(err.msg, "cannot remove the old certificate from token 'tg-test': "
	                             "CKR_TOKEN_WRITE_PROTECTED");
	assert_int_equal(tg_p11_key_cert_get(k, &got, NULL), 0);
	assert_int_equal(X509_cmp(got, a), 0);
	X509_free(got);
	got = NULL;

	/* its bytes cannot be read: no certificate proves to be the key's */
	fault("value-fail");
	tg_error_clear(&err);
	r = tg_p11_key_cert_get(k, &got, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_CERT_MISMATCH);
	assert_null(got);
	assert_non_null(strstr(err.msg, "the certificate with id 02 on token 'tg-test' does not "
	                                "belong to key 'p384'"));
	/* and TLS cannot use the key without it */
	{
		SSL_CTX *ctx = SSL_CTX_new(TLS_method());

		fault("value-fail");
		tg_error_clear(&err);
		r = tg_p11_ssl_ctx_use_key(ctx, k, NULL, &err);
		fault(NULL);
		SSL_CTX_free(ctx);
		assert_int_equal(r, TG_ERR_CERT_MISMATCH);
	}
	/* the listing shows the certificate without details */
	{
		struct tg_p11_object_info *v = NULL;
		size_t n = 0, i;
		int seen = 0;

		fault("value-fail");
		r = tg_p11_token_objects_list(tg_p11_key_token(k), &v, &n, NULL);
		fault(NULL);
		assert_int_equal(r, 0);
		for (i = 0; i < n; i++) {
			if (v[i].cls == TG_P11_OBJ_CERT && strcmp(v[i].label, "p384") == 0) {
				seen = 1;
				assert_string_equal(v[i].subject, "");
			}
		}
		free(v);
		assert_true(seen);
	}
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
}

static void
test_sign_fails(void **state)
{
	struct tg_p11_key *k = find_ok("p384", 0), *rsa = find_ok("rsa2048", 0), *k2 = NULL;
	EVP_PKEY *pub = tg_p11_key_public(k), *rpub = tg_p11_key_public(rsa), *evp = NULL;
	struct tg_error err;
	uint8_t *sig = NULL;
	size_t sl = 0;
	char *pem = NULL;
	int r;

	(void)state;
	assert_non_null(pub);
	/* the proofs through the key's handle, EC and RSA, as they work */
	assert_int_equal(tg_p11_key_prove(k, pub, NULL), 0);
	assert_int_equal(tg_p11_key_prove(rsa, rpub, NULL), 0);

	fault("sign-fail");
	tg_error_clear(&err);
	r = tg_p11_key_prove(rsa, rpub, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_string_equal(err.msg, "signing a challenge through the key's handle failed: "
	                             "CKR_DEVICE_ERROR");

	fault("signinit-fail");
	tg_error_clear(&err);
	r = tg_p11_key_prove(k, pub, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_string_equal(err.msg, "signing a challenge through the key's handle failed: "
	                             "CKR_DEVICE_ERROR");

	fault("sign-odd");
	tg_error_clear(&err);
	r = tg_p11_key_prove(k, pub, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_CRYPTO);
	assert_string_equal(err.msg, "the token's ECDSA signature is malformed");

	/* libp11's key cannot sign: no EVP_PKEY, OpenSSL's reason given */
	fault("sign-fail");
	tg_error_clear(&err);
	r = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_CRYPTO);
	assert_null(sig);
	assert_non_null(strstr(err.msg, "libp11's key for 'p384' on token 'tg-test' could not "
	                                "sign a challenge: "));
	/* a key whose public key must be proven while signing fails: found,
	 * without one, and the reason kept */
	fault("sign-fail");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k2, &err);
	fault(NULL);
	if (r != 0)
		fail_msg("find while signing fails: %s", err.msg);
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_public_pem(k2, &pem, &err), TG_ERR_CERT_MISMATCH);
	assert_null(pem);
	assert_non_null(strstr(err.msg, "the public key of key 'p256' on token 'tg-test' cannot "
	                                "be established: the private key object does not show "
	                                "it, and the 1 candidate(s) with id 01 could not be "
	                                "proven: signing a challenge through the key's handle "
	                                "failed: CKR_DEVICE_ERROR; log in to the token"));
	/* without a public key, libp11's key is handed out unchecked */
	assert_int_equal(tg_p11_key_evp_get(k2, &evp, NULL), 0);
	assert_non_null(evp);
	EVP_PKEY_free(evp);
	tg_p11_key_free(k2);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(rpub);
	tg_p11_key_free(k);
	tg_p11_key_free(rsa);
}

/* Modules that give attributes in other shapes. */
static void
test_attribute_shapes(void **state)
{
	struct tg_p11_key *ref = find_ok("p256", 0), *k = NULL;
	EVP_PKEY *want = tg_p11_key_public(ref), *got;
	struct tg_error err;
	int r;

	(void)state;
	/* the bare EC point: the same public key */
	fault("ecpoint-raw");
	k = find_ok("p256", 0);
	fault(NULL);
	got = tg_p11_key_public(k);
	assert_non_null(got);
	assert_int_equal(EVP_PKEY_eq(got, want), 1);
	EVP_PKEY_free(got);
	tg_p11_key_free(k);
	k = NULL;

	/* no CKA_MODULUS: an RSA key of unknown size and no public key */
	fault("hide-modulus");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("rsa2048", 1), 0, &k, &err);
	fault(NULL);
	if (r != 0)
		fail_msg("RSA key without CKA_MODULUS: %s", err.msg);
	assert_int_equal(tg_p11_key_alg(k), TG_P11_ALG_RSA_OTHER);
	assert_null(tg_p11_key_public(k));
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_cert_get(k, &(X509 *){NULL}, &err), TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(err.msg, "key 'rsa2048' on token 'tg-test' cannot be established: "
	                                "the private key object does not show it and no public-key "
	                                "object or certificate has its id 03"));
	tg_p11_key_free(k);
	k = NULL;

	/* no CKA_EC_PARAMS: the curve is unknown from the attributes, and the
	 * public key object cannot be read; the certificate imported for p384
	 * (test_cert_store_fails) still proves its public key */
	fault("hide-ecparams");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p384", 1), 0, &k, &err);
	fault(NULL);
	if (r != 0)
		fail_msg("EC key without CKA_EC_PARAMS: %s", err.msg);
	got = tg_p11_key_public(k);
	assert_non_null(got);
	EVP_PKEY_free(got);
	assert_int_equal(tg_p11_key_alg(k), TG_P11_ALG_EC_P384);
	tg_p11_key_free(k);
	k = NULL;

	/* CKA_ID unavailable: an empty id (shown as "-"), matched as such */
	fault("id-unavail");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err);
	if (r == 0) {
		struct tg_p11_object_info *v = NULL;
		size_t n = 0, i, ids = 0;
		char *pem = NULL;

		assert_int_equal(tg_p11_token_objects_list(tg_p11_key_token(k), &v, &n, NULL), 0);
		for (i = 0; i < n; i++)
			ids += v[i].id_len;
		free(v);
		assert_true(n > 0);
		assert_int_equal(ids, 0);
		tg_error_clear(&err);
		assert_int_equal(tg_p11_key_public_pem(k, &pem, &err), TG_ERR_CERT_MISMATCH);
		assert_null(pem);
	}
	fault(NULL);
	if (r != 0)
		fail_msg("key whose CKA_ID is unavailable: %s", err.msg);
	{
		size_t idl = 99;

		assert_non_null(tg_p11_key_id(k, &idl));
		assert_int_equal(idl, 0);
	}
	assert_non_null(strstr(err.msg, "no public-key object or certificate has its id -;"));
	tg_p11_key_free(k);
	k = NULL;

	/* a module failing to give the label or the id: an error with its
	 * CKR name, not a key without a label or with an empty id */
	fault("label-fail");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(k);
	assert_string_equal(err.msg, "cannot read the label (CKA_LABEL) of a private key on token "
	                             "'tg-test': CKR_DEVICE_ERROR; check the token and its PKCS#11 "
	                             "module");
	fault("id-fail");
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri_of("p256", 1), 0, &k, &err);
	fault(NULL);
	assert_int_equal(r, TG_ERR_PKCS11);
	assert_null(k);
	assert_string_equal(err.msg,
	                    "cannot read the id (CKA_ID) of key 'p256' on token 'tg-test': "
	                    "CKR_DEVICE_ERROR; check the token and its PKCS#11 module");
	EVP_PKEY_free(want);
	tg_p11_key_free(ref);
}

/* ---- the presence watcher, the token coming and going ----------------- */

struct evlog {
	pthread_mutex_t mu;
	int n;
	struct tg_p11_watch_event ev[64];
};

static void
on_event(void *arg, const struct tg_p11_watch_event *e)
{
	struct evlog *l = arg;

	pthread_mutex_lock(&l->mu);
	if (l->n < 64)
		l->ev[l->n] = *e;
	l->n++;
	pthread_mutex_unlock(&l->mu);
}

/* Event number idx (from 0), waited for up to 10 s; the test fails
 * without it. */
static struct tg_p11_watch_event
event_wait(struct evlog *l, int idx, enum tg_p11_event ev, const char *part)
{
	struct tg_p11_watch_event e;
	int i, n = 0;

	memset(&e, 0, sizeof(e));
	for (i = 0; i < 1000 && n <= idx; i++) {
		pthread_mutex_lock(&l->mu);
		n = l->n;
		if (n > idx)
			e = l->ev[idx];
		pthread_mutex_unlock(&l->mu);
		if (n <= idx)
			usleep(10 * 1000);
	}
	if (n <= idx)
		fail_msg("no watcher event %d after 10 s (%d seen)", idx, n);
	if (e.ev != ev || strstr(e.msg, part) == NULL)
		fail_msg("event %d: want %d with '%s', got %d: %s", idx, (int)ev, part, (int)e.ev,
		         e.msg);
	assert_string_equal(e.token_label, "tg-test");
	return e;
}

static void
sw(const char *name, int on)
{
	assert_int_equal(tg_test_switch(ctl, name, on), 0);
}

/* The watcher sees the slot empty (no event when the key was unbound). */
static void
remove_quietly(void)
{
	sw("absent", 1);
	usleep(300 * 1000);
}

static void
raw_destroy(struct tg_test_p11 *w, const char *label, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)},
	                    {CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE hs[16];
	CK_ULONG n = 0, i;

	assert_int_equal(w->f->C_FindObjectsInit(w->s, t, 2), CKR_OK);
	assert_int_equal(w->f->C_FindObjects(w->s, hs, 16, &n), CKR_OK);
	assert_int_equal(w->f->C_FindObjectsFinal(w->s), CKR_OK);
	for (i = 0; i < n; i++)
		assert_int_equal(w->f->C_DestroyObject(w->s, hs[i]), CKR_OK);
}

/* raw_destroy on a session of its own: the watcher's rebinds close every
 * session of the slot (libp11 releasing its slots). */
static void
destroy_now(const char *label, CK_OBJECT_CLASS cls)
{
	struct tg_test_p11 raw;

	tg_test_p11_open(&raw, 1);
	raw_destroy(&raw, label, cls);
	tg_test_p11_close(&raw);
}

/*
 * One key through every outcome of a reinsertion: the same key (card
 * evidence kept), a token whose key cannot sign, a spent pin-value, a
 * token that needs no login but hides the key, another key under the id,
 * and a key with no public key that signs for another one; then the queue
 * keeps the newest 16 events.
 */
static void
test_watch_outcomes(void **state)
{
	const char *softhsm = tg_test_require_env("TG_SOFTHSM2_MODULE");
	struct evlog l;
	struct tg_p11_key *k = NULL, *o;
	struct tg_p11_watch *w = NULL;
	struct tg_p11_watch_event q;
	struct tg_p11_trust tr;
	struct tg_error err;
	EVP_PKEY *evp = NULL;
	char direct[1024];
	int i, n, idx = 0;

	(void)state;
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.mu, NULL);
	tg_error_clear(&err);
	snprintf(direct, sizeof(direct),
	         "pkcs11:token=tg-test;object=wk;id=%%77?module-path=%s&pin-source=env:TG_WK_PIN",
	         mod);
	if (tg_p11_keygen(p, direct, TG_P11_ALG_EC_P256, 0, &k, &err) != 0)
		fail_msg("keygen wk: %s", err.msg);
	assert_int_equal(tg_p11_key_origin_set(k, TG_P11_ORIGIN_GENERATED, "PIV metadata"), 0);
	tg_error_clear(&err);
	if (tg_p11_watch_start(k, 20, on_event, &l, &w, &err) != 0)
		fail_msg("watch_start: %s", err.msg);
	assert_int_equal(tg_p11_watch_present(w), 1);

	/* removed: unbound, the refusal says so */
	sw("absent", 1);
	event_wait(&l, idx++, TG_P11_EV_REMOVED, "token 'tg-test' removed");
	assert_int_equal(tg_p11_watch_present(w), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_evp_get(k, &evp, &err), TG_ERR_CARD_REMOVED);
	assert_null(evp);
	assert_non_null(strstr(err.msg, "key 'wk' is not bound to a token now"));
	/* the same key back: bound again, its card evidence kept */
	sw("absent", 0);
	event_wait(&l, idx++, TG_P11_EV_INSERTED,
	           "key 'wk' proven by a signature over a fresh challenge; logged in again");
	assert_int_equal(tg_p11_watch_present(w), 1);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.origin, TG_P11_ORIGIN_GENERATED);
	assert_string_equal(tr.evidence, "PIV metadata");
	evp = tg_p11_key_evp(k);
	assert_non_null(evp);
	EVP_PKEY_free(evp);

	/* from now on the token shows the key's public key only in its
	 * certificate */
	{
		EVP_PKEY *pub = tg_p11_key_public(k);
		X509 *x = cert_for(pub, "wk", 77);

		assert_int_equal(tg_p11_key_cert_import(k, x, NULL, 0, NULL), 0);
		X509_free(x);
		EVP_PKEY_free(pub);
		destroy_now("wk", CKO_PUBLIC_KEY);
	}

	/* back, but the key cannot sign: replaced, logged out again */
	sw("absent", 1);
	event_wait(&l, idx++, TG_P11_EV_REMOVED, "removed");
	sw("sign-fail", 1);
	sw("absent", 0);
	event_wait(&l, idx++, TG_P11_EV_REPLACED, "the key found again cannot sign a challenge");
	assert_non_null(strstr(l.ev[idx - 1].msg, "; logged out again; insert the original token"));
	sw("sign-fail", 0);
	assert_int_equal(tg_p11_watch_present(w), 0);

	/* the login fails: reported, the PIN is not tried again */
	remove_quietly();
	sw("login-general", 1);
	sw("absent", 0);
	event_wait(&l, idx++, TG_P11_EV_RELOGIN_FAILED,
	           "token 'tg-test' inserted, login failed: login to token 'tg-test' failed: "
	           "CKR_GENERAL_ERROR");
	sw("login-general", 0);
	assert_int_equal(tg_p11_watch_present(w), 1);

	/* a token that needs no login, but shows no private key 'wk' */
	sw("absent", 1);
	event_wait(&l, idx++, TG_P11_EV_REMOVED, "removed");
	sw("flag-nologin", 1);
	sw("absent", 0);
	event_wait(&l, idx++, TG_P11_EV_RELOGIN_FAILED, "key 'wk' is no longer on the token");
	sw("flag-nologin", 0);

	/* another key under the id and label: told apart before login */
	o = find_ok("p256", 0); /* logs the token in again */
	tg_p11_key_free(o);
	sw("absent", 1);
	event_wait(&l, idx++, TG_P11_EV_REMOVED, "removed");
	destroy_now("wk", CKO_PRIVATE_KEY);
	destroy_now("wk", CKO_PUBLIC_KEY);
	snprintf(direct, sizeof(direct),
	         "pkcs11:token=tg-test;object=wk;id=%%77?module-path=%s&pin-value=1234", softhsm);
	tg_error_clear(&err);
	if (tg_p11_keygen(p, direct, TG_P11_ALG_EC_P256, 0, NULL, &err) != 0)
		fail_msg("second wk: %s", err.msg);
	sw("absent", 0);
	event_wait(&l, idx++, TG_P11_EV_REPLACED,
	           "it shows another public key for key 'wk' than the one checked before the "
	           "removal; the PIN was not sent to it");

	/* that key without its public key object: it is only told apart by
	 * its signature, after login */
	remove_quietly();
	destroy_now("wk", CKO_PUBLIC_KEY);
	sw("absent", 0);
	event_wait(&l, idx++, TG_P11_EV_REPLACED,
	           "its signature over a fresh challenge does not verify with the public key "
	           "checked before the removal; logged out again");

	/* more events than the queue holds (none taken yet): the newest 16
	 * are kept, the fd readable while any is */
	remove_quietly();
	sw("login-general", 1);
	for (i = 0; i < 4; i++) {
		sw("absent", 0);
		event_wait(&l, idx++, TG_P11_EV_RELOGIN_FAILED, "login failed");
		sw("absent", 1);
		event_wait(&l, idx++, TG_P11_EV_REMOVED, "removed");
	}
	sw("login-general", 0);
	assert_int_equal(idx, 18);
	{
		struct pollfd pf = {tg_p11_watch_fd(w), POLLIN, 0};

		assert_int_equal(poll(&pf, 1, 0), 1);
	}
	for (n = 0; tg_p11_watch_next(w, &q) == 1; n++) {
		if (n == 0) {
			assert_int_equal(q.ev, l.ev[2].ev);
			assert_string_equal(q.msg, l.ev[2].msg);
		}
	}
	assert_int_equal(n, 16);
	assert_int_equal(q.ev, TG_P11_EV_REMOVED);
	tg_p11_watch_stop(w);
	sw("absent", 0);
	tg_p11_key_free(k);
	o = find_ok("p256", 0);
	tg_p11_key_free(o);
	destroy_now("wk", CKO_PRIVATE_KEY);
	destroy_now("wk", CKO_CERTIFICATE);
	pthread_mutex_destroy(&l.mu);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_fails),         cmocka_unit_test(test_slot_list_fails),
	    cmocka_unit_test(test_open_session_fails), cmocka_unit_test(test_login_errors),
	    cmocka_unit_test(test_login_without_pin),  cmocka_unit_test(test_keygen_fails),
	    cmocka_unit_test(test_find_fails),         cmocka_unit_test(test_cert_store_fails),
	    cmocka_unit_test(test_sign_fails),         cmocka_unit_test(test_attribute_shapes),
	    cmocka_unit_test(test_watch_outcomes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
