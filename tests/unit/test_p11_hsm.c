/*
 * test_p11_hsm.c — libtgp11's error paths and less travelled calls against
 * SoftHSM2 (run under tests/lib/with-softhsm.sh: token tg-test, PIN 1234,
 * keys p256/01, p384/02, rsa2048/03, exportable/04): object listing, a key
 * whose public key cannot be established, certificates replaced and
 * planted, key generation refusals, a CKA_ALWAYS_AUTHENTICATE key, the
 * watcher's start, module loading, token selection and fork. White-box
 * (p11-int.h) for the helpers shared inside libtgp11. Every object a case
 * makes on the token it destroys again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "p11-int.h"
#include "tg_p11.h"
#include "tg_test.h"
#include "tg_test_p11.h"

#define TOKEN_URI "pkcs11:token=tg-test"
#define P256_URI  "pkcs11:token=tg-test;object=p256?pin-value=1234"
#define MSG       "tokengate hsm test"

struct fx {
	struct tg_p11 *p;
};

static int
group_setup(void **state)
{
	static struct fx fx;

	tg_test_require_env("SOFTHSM2_CONF");
	/* a second token, before SoftHSM2 is loaded: its slots are read then */
	if (system("softhsm2-util --init-token --free --label tg-aa2 --pin 1234 "
	           "--so-pin 5678 >/dev/null") != 0)
		return -1;
	unsetenv("TOKENGATE_PIN");
	unsetenv("TOKENGATE_PKCS11_MODULE");
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

	tg_error_clear(&err);
	if (tg_p11_key_find(p, uri, flags, &k, &err) != 0)
		fail_msg("%s: %s", uri, err.msg);
	return k;
}

/* ---- raw objects through SoftHSM2's own function list ----------------- */

/* DER OID 1.2.840.10045.3.1.7 (prime256v1) */
static const CK_BYTE p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* A non-exportable EC P-256 token key pair (CKA_ALWAYS_AUTHENTICATE when
 * always_auth); fails the test when the module refuses it. */
static void
raw_keygen(struct tg_test_p11 *w, const char *label, const uint8_t *id, size_t idl, int always_auth,
           CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE, aa = always_auth ? CK_TRUE : CK_FALSE;
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
	    {CKA_EXTRACTABLE, &no, sizeof(no)},
	    {CKA_ALWAYS_AUTHENTICATE, &aa, sizeof(aa)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, idl},
	};
	CK_RV rv = w->f->C_GenerateKeyPair(w->s, &mech, pubt, sizeof(pubt) / sizeof(pubt[0]), privt,
	                                   sizeof(privt) / sizeof(privt[0]), pub, priv);

	if (rv != CKR_OK)
		fail_msg("C_GenerateKeyPair '%s': 0x%lx", label, (unsigned long)rv);
}

/* A token key pair of mechanism mech on the curve params (DER OID). */
static CK_RV
raw_keygen_curve(struct tg_test_p11 *w, CK_MECHANISM_TYPE mt, const CK_BYTE *params, size_t pl,
                 const char *label, const uint8_t *id, size_t idl)
{
	CK_MECHANISM mech = {mt, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_HANDLE pub, priv;
	CK_ATTRIBUTE pubt[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},      {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_EC_PARAMS, (void *)params, pl}, {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, idl},
	};
	CK_ATTRIBUTE privt[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},     {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SIGN, &yes, sizeof(yes)},      {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, idl},
	};

	return w->f->C_GenerateKeyPair(w->s, &mech, pubt, sizeof(pubt) / sizeof(pubt[0]), privt,
	                               sizeof(privt) / sizeof(privt[0]), &pub, &priv);
}

/* A certificate object with the given id and CKA_VALUE (any bytes). */
static CK_OBJECT_HANDLE
raw_cert(struct tg_test_p11 *w, const char *label, const uint8_t *id, size_t idl,
         const uint8_t *value, size_t vl)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static const CK_BYTE subj[] = {0x30, 0x00}; /* empty Name */
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &no, sizeof(no)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_ID, (void *)id, idl},
	    {CKA_SUBJECT, (void *)subj, sizeof(subj)},
	    {CKA_VALUE, (void *)value, vl},
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = w->f->C_CreateObject(w->s, t, sizeof(t) / sizeof(t[0]), &h);

	if (rv != CKR_OK)
		fail_msg("C_CreateObject certificate '%s': 0x%lx", label, (unsigned long)rv);
	return h;
}

/* Destroys every object labelled `label` (any class). */
static void
raw_destroy_label(struct tg_test_p11 *w, const char *label)
{
	CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE hs[32];
	CK_ULONG n = 0, i;

	assert_int_equal(w->f->C_FindObjectsInit(w->s, t, 1), CKR_OK);
	assert_int_equal(w->f->C_FindObjects(w->s, hs, 32, &n), CKR_OK);
	assert_int_equal(w->f->C_FindObjectsFinal(w->s), CKR_OK);
	for (i = 0; i < n; i++)
		assert_int_equal(w->f->C_DestroyObject(w->s, hs[i]), CKR_OK);
}

/* Objects labelled `label` of class cls. */
static CK_ULONG
raw_count(struct tg_test_p11 *w, const char *label, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)},
	                    {CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE hs[32];
	CK_ULONG n = 0;

	assert_int_equal(w->f->C_FindObjectsInit(w->s, t, 2), CKR_OK);
	assert_int_equal(w->f->C_FindObjects(w->s, hs, 32, &n), CKR_OK);
	assert_int_equal(w->f->C_FindObjectsFinal(w->s), CKR_OK);
	return n;
}

/* A certificate for pub named cn, signed by ca (NULL: a throw-away P-256
 * key). */
static X509 *
cert_by(EVP_PKEY *pub, const char *cn, long serial, EVP_PKEY *ca_key)
{
	EVP_PKEY *ca = ca_key != NULL ? ca_key : EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(ca);
	assert_non_null(x);
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
	if (ca_key == NULL)
		EVP_PKEY_free(ca);
	return x;
}

static X509 *
cert_for(EVP_PKEY *pub, const char *cn, long serial)
{
	return cert_by(pub, cn, serial, NULL);
}

/* ---- helpers without a token ----------------------------------------- */

static void
test_helpers(void **state)
{
	uint8_t id[100];
	char buf[TG_P11_HEX_BUF], tiny[10], out[8];
	struct tg_p11_token_info v[2];
	char desc[256], small[12];
	struct tg_error err;
	size_t i;

	(void)state;
	/* tg_p11_new refuses a NULL out */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_new(NULL, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "out is NULL"));

	/* the default module: TOKENGATE_PKCS11_MODULE, else p11-kit's proxy */
	setenv("TOKENGATE_PKCS11_MODULE", "/opt/x/mod.so", 1);
	assert_string_equal(tg_p11_default_module(), "/opt/x/mod.so");
	setenv("TOKENGATE_PKCS11_MODULE", "", 1);
	assert_non_null(strstr(tg_p11_default_module(), "p11-kit-proxy.so"));
	unsetenv("TOKENGATE_PKCS11_MODULE");

	/* ids in hex: empty, whole, and long ones never cut silently */
	for (i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)i;
	tg_p11_hex(id, 0, buf, sizeof(buf));
	assert_string_equal(buf, "-");
	tg_p11_hex(id + 1, 3, buf, sizeof(buf));
	assert_string_equal(buf, "010203");
	tg_p11_hex(id, sizeof(id), buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "00010203", 8), 0);
	assert_non_null(strstr(buf, "...(100 bytes)"));
	assert_true(strlen(buf) < sizeof(buf));
	/* a buffer too small even for the tail: no byte shown, no overflow */
	tg_p11_hex(id, 8, tiny, sizeof(tiny));
	assert_int_equal(strncmp(tiny, "...(8 by", 8), 0);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);

	/* padded strings: blanks and NULs trimmed, cut to the buffer */
	tg_p11_padded_copy(out, sizeof(out), (const unsigned char *)"ab  \0 ", 6);
	assert_string_equal(out, "ab");
	tg_p11_padded_copy(out, sizeof(out), (const unsigned char *)"0123456789abcdef", 16);
	assert_string_equal(out, "0123456");
	tg_p11_padded_copy(out, sizeof(out), (const unsigned char *)"    ", 4);
	assert_string_equal(out, "");

	/* token lists: none says where to look, an empty serial is "-" */
	tg_p11_tokens_describe(NULL, 0, desc, sizeof(desc));
	assert_non_null(strstr(desc, "none (is the token inserted"));
	memset(v, 0, sizeof(v));
	snprintf(v[0].label, sizeof(v[0].label), "alice");
	snprintf(v[0].manufacturer, sizeof(v[0].manufacturer), "Acme");
	snprintf(v[0].serial, sizeof(v[0].serial), "42");
	snprintf(v[1].label, sizeof(v[1].label), "bob");
	snprintf(v[1].manufacturer, sizeof(v[1].manufacturer), "Acme");
	tg_p11_tokens_describe(v, 2, desc, sizeof(desc));
	assert_string_equal(desc, "'alice' (Acme, serial 42), 'bob' (Acme, serial -)");
	tg_p11_tokens_describe(v, 2, small, sizeof(small));
	assert_string_equal(small, "'alice' (Ac");

	/* CKR names */
	assert_string_equal(tg_p11_ckr_name(CKR_PIN_LOCKED), "CKR_PIN_LOCKED");
	assert_string_equal(tg_p11_ckr_name(CKR_OK), "CKR_OK");
	assert_string_equal(tg_p11_ckr_name(0x7fff1234UL), "CKR_(unknown)");

	/* free functions accept NULL */
	tg_p11_free(NULL);
	tg_p11_key_free(NULL);
	tg_p11_token_free(NULL);
}

static void
test_alg_of(void **state)
{
	EVP_PKEY *pk;
	int bits = 0;

	(void)state;
	pk = EVP_RSA_gen(1024);
	assert_non_null(pk);
	assert_int_equal(tg_p11_alg_of(pk, &bits), TG_P11_ALG_RSA_OTHER);
	assert_int_equal(bits, 1024);
	EVP_PKEY_free(pk);
	pk = EVP_RSA_gen(2048);
	assert_non_null(pk);
	assert_int_equal(tg_p11_alg_of(pk, &bits), TG_P11_ALG_RSA_2048);
	assert_int_equal(bits, 2048);
	EVP_PKEY_free(pk);
	pk = EVP_EC_gen("P-384");
	assert_non_null(pk);
	assert_int_equal(tg_p11_alg_of(pk, &bits), TG_P11_ALG_EC_P384);
	assert_int_equal(bits, 384);
	EVP_PKEY_free(pk);
	pk = EVP_EC_gen("secp256k1"); /* EC, but no curve tokengate generates */
	assert_non_null(pk);
	assert_int_equal(tg_p11_alg_of(pk, &bits), TG_P11_ALG_EC_OTHER);
	EVP_PKEY_free(pk);
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); /* neither RSA nor EC */
	assert_non_null(pk);
	assert_int_equal(tg_p11_alg_of(pk, &bits), TG_P11_ALG_UNKNOWN);
	EVP_PKEY_free(pk);
	assert_string_equal(tg_p11_alg_name(TG_P11_ALG_RSA_OTHER), "rsa");
	assert_string_equal(tg_p11_alg_name(TG_P11_ALG_EC_OTHER), "ec");
	assert_string_equal(tg_p11_alg_name((enum tg_p11_alg)0x1ff), "unknown");
}

/* ---- modules and tokens ----------------------------------------------- */

static void
test_modules(void **state)
{
	struct fx *fx = *state;
	const char *mod = tg_test_require_env("TG_SOFTHSM2_MODULE");
	struct tg_p11_module_info *v = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	char uri[512];
	size_t n = 0, i;
	int seen = 0;

	/* the registry lists SoftHSM2 (registered by its Debian package) */
	tg_error_clear(&err);
	if (tg_p11_modules_list(&v, &n, &err) != 0)
		fail_msg("modules_list: %s", err.msg);
	for (i = 0; i < n; i++) {
		assert_true(v[i].path[0] != '\0');
		if (strstr(v[i].path, "softhsm2") != NULL && strcmp(v[i].name, "softhsm2") == 0)
			seen = 1;
	}
	free(v);
	if (!seen)
		fail_msg("softhsm2 not in the %zu modules listed (its module is %s)", n, mod);

	/* a shared object that is not a PKCS#11 module */
	snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=p256?module-path=%s", "libz.so.1");
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, uri, 0, &k, &err), TG_ERR_MODULE);
	assert_null(k);
	assert_non_null(strstr(err.msg, "'libz.so.1' is not a PKCS#11 module"));
	/* a text file is no shared object at all */
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_key_find(fx->p, "pkcs11:token=t;object=k?module-path=/etc/passwd", 0, &k, &err),
	    TG_ERR_MODULE);
	assert_non_null(strstr(err.msg, "cannot load PKCS#11 module '/etc/passwd'"));
	assert_non_null(strstr(err.msg, "fix module-path="));
}

static void
test_token_select_errors(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_token_info *v = (struct tg_p11_token_info *)&v;
	struct tg_p11_token *t = NULL;
	struct tg_error err;
	char longpin[512];
	size_t n = 99, i;
	int found = 0;

	/* a malformed URI: nothing listed */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_tokens_list(fx->p, "pkcs11:token=a%zz", &v, &n, &err), TG_ERR_URI);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err.msg, "malformed PKCS#11 URI"));

	/* no match: 0 tokens, no array */
	v = (struct tg_p11_token_info *)&v;
	assert_int_equal(tg_p11_tokens_list(fx->p, "pkcs11:token=nosuch", &v, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_null(v);

	/* all tokens (NULL URI): tg-test among them, with its flags */
	assert_int_equal(tg_p11_tokens_list(fx->p, NULL, &v, &n, NULL), 0);
	for (i = 0; i < n; i++) {
		if (strcmp(v[i].label, "tg-test") == 0) {
			found = 1;
			assert_int_equal(v[i].initialized, 1);
			assert_int_equal(v[i].login_required, 1);
			assert_string_equal(v[i].manufacturer, "SoftHSM project");
		}
	}
	free(v);
	assert_true(found);

	/* the right slot-id selects the token */
	assert_int_equal(tg_p11_tokens_list(fx->p, TOKEN_URI, &v, &n, NULL), 0);
	assert_int_equal(n, 1);
	{
		char uri[128];

		snprintf(uri, sizeof(uri), TOKEN_URI ";slot-id=%lu", v[0].slot_id);
		free(v);
		v = NULL;
		assert_int_equal(tg_p11_token_open(fx->p, uri, &t, NULL), 0);
		assert_string_equal(tg_p11_token_get_info(t)->label, "tg-test");
		tg_p11_token_free(t);
		t = NULL;
	}

	/* no token= in the URI: the message shows the URI */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_token_open(fx->p, "pkcs11:model=NoSuchModel", &t, &err),
	                 TG_ERR_TOKEN_NOT_FOUND);
	assert_null(t);
	assert_non_null(strstr(err.msg, "no token matches 'pkcs11:model=NoSuchModel'"));
	assert_non_null(strstr(err.msg, "; tokens present: '"));
	assert_non_null(strstr(err.msg, "'tg-test' (SoftHSM project, serial "));
	assert_non_null(strstr(err.msg, "'tg-aa2' (SoftHSM project, serial "));

	/* a slot-id no token has */
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_token_open(fx->p, "pkcs11:token=tg-test;slot-id=4294967295", &t, &err),
	    TG_ERR_TOKEN_NOT_FOUND);
	assert_non_null(strstr(err.msg, "token 'tg-test' not found"));

	/* a token found, but its URI's PIN source is not one */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_token_open(fx->p, TOKEN_URI "?pin-source=http://x/pin", &t, &err),
	                 TG_ERR_INVALID_ARG);
	assert_null(t);
	assert_non_null(strstr(err.msg, "is not supported; use file:PATH or env:NAME"));
	memset(longpin, '7', sizeof(longpin));
	memcpy(longpin, TOKEN_URI "?pin-value=", strlen(TOKEN_URI "?pin-value="));
	longpin[sizeof(longpin) - 1] = '\0';
	tg_error_clear(&err);
	assert_int_equal(tg_p11_token_open(fx->p, longpin, &t, &err), TG_ERR_INVALID_ARG);
	assert_null(t);
	assert_non_null(strstr(err.msg, "pin-value is longer than"));
}

static void
test_token_login(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_token *t = NULL;
	struct tg_p11_uri *u = NULL, *bad = NULL;
	struct tg_error err;

	assert_int_equal(tg_p11_token_open(fx->p, TOKEN_URI, &t, NULL), 0);
	assert_string_equal(tg_p11_token_get_info(t)->label, "tg-test");
	assert_null(strstr(tg_p11_token_uri(t), "pin"));
	/* the caller's URI gives the PIN source; a bad one is refused first */
	assert_int_equal(tg_p11_uri_parse("pkcs11:?pin-source=ftp:x", &bad, NULL), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_p11_token_login(t, bad, 0, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "pin-source 'ftp:x'"));
	assert_int_equal(tg_p11_uri_parse("pkcs11:?pin-value=1234", &u, NULL), 0);
	tg_error_clear(&err);
	if (tg_p11_token_login(t, u, 0, &err) != 0)
		fail_msg("login with the caller's URI: %s", err.msg);
	/* logged in: a second login reads no PIN (the token's source has none) */
	assert_int_equal(tg_p11_token_login(t, NULL, 0, &err), 0);
	tg_p11_uri_free(bad);
	tg_p11_uri_free(u);
	tg_p11_token_free(t);
}

/* ---- keys -------------------------------------------------------------- */

static void
test_key_uri_errors(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = NULL;
	struct tg_error err;

	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_key_find(fx->p, "pkcs11:token=tg-test;object=p256;type=cert?pin-value=1234", 0,
	                    &k, &err),
	    TG_ERR_URI);
	assert_null(k);
	assert_non_null(strstr(err.msg, "names a 'cert' object; a key URI needs type=private"));
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p,
	                                 "pkcs11:token=tg-test;object=x;type=data?pin-value=1234",
	                                 0, &k, &err),
	                 TG_ERR_URI);
	assert_non_null(strstr(err.msg, "names a 'data' object"));
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_key_find(fx->p, "pkcs11:token=tg-test;object=x;type=secret-key?pin-value=1234",
	                    0, &k, &err),
	    TG_ERR_URI);
	assert_non_null(strstr(err.msg, "names a 'secret-key' object"));
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, "pkcs11:token=tg-test;bogus=1", 0, &k, &err),
	                 TG_ERR_URI);
	assert_non_null(strstr(err.msg, "malformed PKCS#11 URI"));
	/* not logged in: the listing says private keys may be hidden */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_find(fx->p, "pkcs11:token=tg-test;object=nope",
	                                 TG_P11_KEY_NO_LOGIN, &k, &err),
	                 TG_ERR_KEY_NOT_FOUND);
	assert_null(k);
	assert_non_null(strstr(err.msg,
	                       "no private key matching 'pkcs11:token=tg-test;object=nope' "
	                       "on token 'tg-test' (not logged in: private keys may be "
	                       "hidden); keys present: "));
}

static const struct tg_p11_object_info *
obj_find(const struct tg_p11_object_info *v, size_t n, enum tg_p11_obj_class cls, const char *label)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].cls == cls && strcmp(v[i].label, label) == 0)
			return &v[i];
	return NULL;
}

/* obj_find for an object that must be listed (fails the test otherwise). */
static const struct tg_p11_object_info *
obj_get(const struct tg_p11_object_info *v, size_t n, enum tg_p11_obj_class cls, const char *label)
{
	const struct tg_p11_object_info *o = obj_find(v, n, cls, label);

	if (o == NULL) {
		fail_msg("object '%s' is not listed", label);
		abort();
	}
	return o;
}

static void
test_objects_list(void **state)
{
	struct fx *fx = *state;
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x05};
	struct tg_p11_key *k = find_ok(fx->p, P256_URI, 0);
	struct tg_p11_token *t = tg_p11_key_token(k);
	struct tg_p11_object_info *v = NULL;
	const struct tg_p11_object_info *o;
	struct tg_test_p11 w;
	struct tg_error err;
	EVP_PKEY *pub = tg_p11_key_public(k);
	X509 *x = cert_for(pub, "listed", 11);
	size_t n = 0;
	char *uri = NULL;
	int r_import, r_list;

	tg_test_p11_open(&w, 1);
	tg_error_clear(&err);
	r_import = tg_p11_key_cert_import(k, x, "p256-cert", 0, &err);
	(void)raw_cert(&w, "junk-cert", (const uint8_t *)"\x01", 1, junk, sizeof(junk));
	r_list = tg_p11_token_objects_list(t, &v, &n, &err);
	raw_destroy_label(&w, "p256-cert");
	raw_destroy_label(&w, "junk-cert");
	tg_test_p11_close(&w);
	X509_free(x);
	EVP_PKEY_free(pub);
	if (r_import != 0 || r_list != 0)
		fail_msg("import %d, list %d: %s", r_import, r_list, err.msg);

	o = obj_get(v, n, TG_P11_OBJ_PRIVATE_KEY, "p256");
	assert_non_null(o);
	assert_int_equal(o->alg, TG_P11_ALG_EC_P256);
	assert_int_equal(o->bits, 256);
	assert_int_equal(o->id_len, 1);
	assert_int_equal(o->id_full_len, 1);
	assert_int_equal(o->id[0], 0x01);
	assert_int_equal(o->trust.sensitive, 1);
	assert_int_equal(o->trust.verdict, TG_P11_TRUST_OK);
	o = obj_get(v, n, TG_P11_OBJ_PRIVATE_KEY, "rsa2048");
	assert_non_null(o);
	assert_int_equal(o->alg, TG_P11_ALG_RSA_2048);
	assert_int_equal(o->bits, 2048);
	o = obj_get(v, n, TG_P11_OBJ_PUBLIC_KEY, "p384");
	assert_non_null(o);
	assert_int_equal(o->alg, TG_P11_ALG_EC_P384);
	o = obj_get(v, n, TG_P11_OBJ_CERT, "p256-cert");
	assert_non_null(o);
	assert_non_null(strstr(o->subject, "CN=listed"));
	assert_int_equal(strlen(o->not_after), 20);
	assert_int_equal(o->alg, TG_P11_ALG_EC_P256);
	/* the object's URI names its class, label and id */
	assert_int_equal(tg_p11_object_uri(tg_p11_token_get_info(t), o, &uri), 0);
	assert_non_null(strstr(uri, "type=cert"));
	assert_non_null(strstr(uri, "object=p256-cert"));
	assert_non_null(strstr(uri, "id=%01"));
	free(uri);
	/* a certificate whose DER does not parse is listed without details */
	o = obj_get(v, n, TG_P11_OBJ_CERT, "junk-cert");
	assert_non_null(o);
	assert_string_equal(o->subject, "");
	assert_int_equal(o->alg, TG_P11_ALG_UNKNOWN);
	free(v);
	/* without certificates: none listed, the keys still are */
	v = NULL;
	assert_int_equal(tg_p11_token_objects_list(t, &v, &n, NULL), 0);
	assert_null(obj_find(v, n, TG_P11_OBJ_CERT, "p256-cert"));
	assert_null(obj_find(v, n, TG_P11_OBJ_CERT, "junk-cert"));
	assert_non_null(obj_find(v, n, TG_P11_OBJ_PRIVATE_KEY, "p256"));
	free(v);
	tg_p11_key_free(k);
}

/*
 * A key whose public key object was deleted and that has no certificate:
 * found (its private object is the evidence), but everything that needs the
 * public key refuses with the reason, until a proof establishes it.
 */
static void
test_no_public_key(void **state)
{
	struct fx *fx = *state;
	static const uint8_t id[] = {0x91};
	const char *uri = "pkcs11:token=tg-test;object=nopub?pin-value=1234";
	struct tg_p11_key *ref = find_ok(fx->p, P256_URI, 0), *k = NULL;
	struct tg_p11_watch *wt = NULL;
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE pubh, privh;
	EVP_PKEY *real = NULL, *other = EVP_EC_gen("P-256"), *got;
	X509 *own, *foreign, *xout = NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	struct tg_error e_pem, e_sign, e_cert, e_watch, e_ssl, e_ssl2, e_rebind, e_rebind2, err;
	char *pem = NULL;
	uint8_t *sig = NULL;
	size_t sl = 0;
	BIO *b;
	int r_pem, r_sign, r_cert, r_watch, r_ssl, r_ssl2, r_rebind, r_rebind2, r_import, r_pem2,
	    r_ssl3;
	enum tg_p11_alg alg_before, alg_after;

	tg_test_p11_open(&w, 1);
	raw_keygen(&w, "nopub", id, sizeof(id), 0, &pubh, &privh);
	k = find_ok(fx->p, uri, 0);
	real = tg_p11_key_public(k);
	tg_p11_key_free(k);
	assert_int_equal(w.f->C_DestroyObject(w.s, pubh), CKR_OK);
	k = find_ok(fx->p, uri, 0);
	alg_before = tg_p11_key_alg(k);
	got = tg_p11_key_public(k);
	tg_error_clear(&e_pem);
	r_pem = tg_p11_key_public_pem(k, &pem, &e_pem);
	tg_error_clear(&e_sign);
	r_sign = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &e_sign);
	tg_error_clear(&e_cert);
	r_cert = tg_p11_key_cert_get(k, &xout, &e_cert);
	tg_error_clear(&e_watch);
	r_watch = tg_p11_watch_start(k, 0, NULL, NULL, &wt, &e_watch);
	tg_error_clear(&e_ssl);
	r_ssl = tg_p11_ssl_ctx_use_key(ctx, k, NULL, &e_ssl);
	foreign = cert_for(other, "foreign", 21);
	tg_error_clear(&e_ssl2);
	r_ssl2 = tg_p11_ssl_ctx_use_key(ctx, k, foreign, &e_ssl2);
	/* the watcher's rebind (white-box): p256 cannot be bound to it */
	tg_error_clear(&e_rebind);
	tg_p11_lock(fx->p);
	r_rebind = tg_p11_key_rebind(ref, privh, &e_rebind);
	/* and it cannot be bound to p256's object: it has nothing to compare */
	tg_error_clear(&e_rebind2);
	r_rebind2 = tg_p11_key_rebind(k, ref->h, &e_rebind2);
	tg_p11_unlock(fx->p);
	/* importing its own certificate proves the key */
	own = cert_for(real, "nopub", 22);
	tg_error_clear(&err);
	r_import = tg_p11_key_cert_import(k, own, NULL, 0, &err);
	alg_after = tg_p11_key_alg(k);
	r_pem2 = tg_p11_key_public_pem(k, &pem, NULL);
	r_ssl3 = tg_p11_ssl_ctx_use_key(ctx, k, own, NULL);
	SSL_CTX_free(ctx);
	tg_p11_key_free(k);
	raw_destroy_label(&w, "nopub");
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);

	assert_non_null(real);
	assert_null(got);
	assert_int_equal(alg_before, TG_P11_ALG_EC_P256); /* from CKA_EC_PARAMS */
	assert_int_equal(r_pem, TG_ERR_CERT_MISMATCH);
	if (strstr(e_pem.msg, "the public key of key 'nopub' on token 'tg-test' cannot be "
	                      "established: the private key object does not show it and no "
	                      "public-key object or certificate has its id 91") == NULL)
		fail_msg("public_pem without a public key: %s", e_pem.msg);
	assert_int_equal(r_sign, TG_ERR_CERT_MISMATCH);
	assert_null(sig);
	assert_string_equal(e_sign.msg, e_pem.msg);
	assert_int_equal(r_cert, TG_ERR_CERT_MISMATCH);
	assert_null(xout);
	assert_string_equal(e_cert.msg, e_pem.msg);
	assert_int_equal(r_watch, TG_ERR_NOT_FOUND);
	assert_null(wt);
	assert_non_null(strstr(e_watch.msg, "the public key of key 'nopub' on token 'tg-test' is "
	                                    "unknown"));
	assert_int_equal(r_ssl, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(e_ssl.msg, "cannot be established"));
	assert_int_equal(r_ssl2, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(e_ssl2.msg, "the certificate given does not belong to key 'nopub' "
	                                   "on token 'tg-test'"));
	assert_non_null(strstr(e_ssl2.msg, "does not verify with the public key given"));
	assert_int_equal(r_rebind, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(e_rebind.msg, "key 'p256' cannot be bound again: the public key of "
	                                     "key 'nopub'"));
	assert_int_equal(r_rebind2, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(e_rebind2.msg, "key 'nopub' cannot be bound again: the public key "
	                                      "of key 'nopub'"));
	if (r_import != 0)
		fail_msg("import of the key's own certificate: %s", err.msg);
	assert_int_equal(alg_after, TG_P11_ALG_EC_P256);
	assert_int_equal(r_pem2, 0);
	assert_int_equal(r_ssl3, 0);
	/* the PEM is the real public key */
	b = BIO_new_mem_buf(pem, -1);
	got = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	assert_non_null(got);
	assert_int_equal(EVP_PKEY_eq(got, real), 1);
	BIO_free(b);
	EVP_PKEY_free(got);
	free(pem);
	X509_free(own);
	X509_free(foreign);
	EVP_PKEY_free(other);
	EVP_PKEY_free(real);
}

/*
 * Certificates: a different one is replaced only when asked; a planted
 * one of another key and one that does not parse are passed over; with
 * only those left, the lookup says the certificate is not the key's.
 */
static void
test_cert_replace_and_planted(void **state)
{
	struct fx *fx = *state;
	const char *uri = "pkcs11:token=tg-test;object=certk;id=%93?pin-value=1234";
	static const uint8_t id[] = {0x93};
	static const uint8_t junk[] = {0x01, 0x02, 0x03};
	struct tg_p11_key *k = NULL;
	struct tg_test_p11 w;
	struct tg_error err, e_dup, e_other, e_ssl;
	EVP_PKEY *pub, *other = EVP_EC_gen("P-256");
	X509 *a, *b, *foreign, *got_a = NULL, *got_b = NULL, *got_c = NULL, *got_none = NULL;
	EVP_PKEY *ca;
	unsigned char *der = NULL, *bder = NULL, *trail;
	int bl;
	int dl, r_dup, r_rep, r_a, r_b, r_c, r_none, r_ssl, r_ssl_own, r_again, r_again2;
	CK_ULONG certs_after_rep;
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	tg_error_clear(&err);
	if (tg_p11_keygen(fx->p, uri, TG_P11_ALG_EC_P256, 0, &k, &err) != 0)
		fail_msg("keygen certk: %s", err.msg);
	pub = tg_p11_key_public(k);
	/* one RSA issuer, names and serials of one length: a and b have DER of
	 * the same length, different bytes */
	ca = EVP_RSA_gen(2048);
	assert_non_null(ca);
	a = cert_by(pub, "first", 31, ca);
	b = cert_by(pub, "other", 32, ca);
	EVP_PKEY_free(ca);
	foreign = cert_for(other, "foreign", 33);
	tg_test_p11_open(&w, 1);
	assert_int_equal(tg_p11_key_cert_import(k, a, "certk-a", 0, &err), 0);
	r_a = tg_p11_key_cert_get(k, &got_a, NULL);
	tg_error_clear(&e_dup);
	r_dup = tg_p11_key_cert_import(k, b, "certk-b", 0, &e_dup);
	r_rep = tg_p11_key_cert_import(k, b, "certk-b", 1, NULL);
	certs_after_rep = raw_count(&w, "certk-a", CKO_CERTIFICATE);
	r_again = tg_p11_key_cert_import(k, b, "certk-b", 0, NULL); /* already there */
	r_b = tg_p11_key_cert_get(k, &got_b, NULL);
	/* a foreign certificate and junk under the same id: passed over */
	dl = i2d_X509(foreign, &der);
	assert_true(dl > 0);
	(void)raw_cert(&w, "certk-foreign", id, sizeof(id), der, (size_t)dl);
	(void)raw_cert(&w, "certk-junk", id, sizeof(id), junk, sizeof(junk));
	/* b's DER with a byte after it: not a certificate */
	bl = i2d_X509(b, &bder);
	assert_true(bl > 0);
	trail = calloc(1, (size_t)bl + 1);
	assert_non_null(trail);
	memcpy(trail, bder, (size_t)bl);
	(void)raw_cert(&w, "certk-trail", id, sizeof(id), trail, (size_t)bl + 1);
	free(trail);
	OPENSSL_free(bder);
	r_c = tg_p11_key_cert_get(k, &got_c, NULL);
	/* b is still there: importing it again passes the others over */
	r_again2 = tg_p11_key_cert_import(k, b, "certk-b", 0, NULL);
	tg_error_clear(&e_ssl);
	r_ssl = tg_p11_ssl_ctx_use_key(ctx, k, foreign, &e_ssl);
	r_ssl_own = tg_p11_ssl_ctx_use_key(ctx, k, NULL, NULL);
	raw_destroy_label(&w, "certk-b");
	tg_error_clear(&e_other);
	r_none = tg_p11_key_cert_get(k, &got_none, &e_other);
	tg_p11_key_free(k);
	raw_destroy_label(&w, "certk");
	raw_destroy_label(&w, "certk-foreign");
	raw_destroy_label(&w, "certk-junk");
	raw_destroy_label(&w, "certk-trail");
	tg_test_p11_close(&w);
	SSL_CTX_free(ctx);

	assert_int_equal(r_a, 0);
	assert_int_equal(X509_cmp(got_a, a), 0);
	assert_int_equal(r_dup, TG_ERR_INVALID_ARG);
	assert_non_null(strstr(e_dup.msg, "token 'tg-test' already holds a different certificate "
	                                  "with id 93; pass --replace to overwrite it"));
	assert_int_equal(r_rep, 0);
	assert_int_equal(certs_after_rep, 0); /* the old one is gone */
	assert_int_equal(r_again, 0);
	assert_int_equal(r_b, 0);
	assert_int_equal(X509_cmp(got_b, b), 0);
	assert_int_equal(r_c, 0);
	assert_int_equal(r_again2, 0);
	assert_int_equal(X509_cmp(got_c, b), 0);
	assert_int_equal(r_ssl, TG_ERR_CERT_MISMATCH);
	assert_string_equal(
	    e_ssl.msg, "the certificate given does not belong to key 'certk' on token 'tg-test'");
	assert_int_equal(r_ssl_own, 0);
	assert_int_equal(r_none, TG_ERR_CERT_MISMATCH);
	assert_null(got_none);
	assert_non_null(strstr(e_other.msg, "the certificate with id 93 on token 'tg-test' does "
	                                    "not belong to key 'certk' (different public key)"));
	X509_free(got_a);
	X509_free(got_b);
	X509_free(got_c);
	OPENSSL_free(der);
	X509_free(a);
	X509_free(b);
	X509_free(foreign);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(other);
}

static void
test_keygen_refusals(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = NULL;
	struct tg_error err;

	/* no label */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_keygen(fx->p, "pkcs11:token=tg-test;id=%44?pin-value=1234",
	                               TG_P11_ALG_EC_P256, 0, &k, &err),
	                 TG_ERR_URI);
	assert_null(k);
	assert_non_null(strstr(err.msg, "the key URI names no label: add object=LABEL"));
	/* an id already taken, under another label */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_keygen(fx->p,
	                               "pkcs11:token=tg-test;object=fresh;id=%01?pin-value=1234",
	                               TG_P11_ALG_EC_P256, 0, &k, &err),
	                 TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "token 'tg-test' already has a private key labelled "
	                                "'fresh' or with id 01"));
	/* algorithms tokengate only finds */
	tg_error_clear(&err);
	assert_int_equal(tg_p11_keygen(fx->p, "pkcs11:token=tg-test;object=fresh?pin-value=1234",
	                               TG_P11_ALG_RSA_OTHER, 0, &k, &err),
	                 TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "cannot generate 'rsa' keys; use ec-p256, ec-p384, "
	                                "rsa-2048 or rsa-3072"));
	tg_error_clear(&err);
	assert_int_equal(tg_p11_keygen(fx->p, "pkcs11:token=tg-test;object=fresh?pin-value=1234",
	                               TG_P11_ALG_UNKNOWN, 0, &k, &err),
	                 TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "cannot generate 'unknown' keys"));
	/* a malformed URI and a missing token */
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_keygen(fx->p, "pkcs11:object=a%zz", TG_P11_ALG_EC_P256, 0, &k, &err),
	    TG_ERR_URI);
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_keygen(fx->p, "pkcs11:token=nosuch;object=x", TG_P11_ALG_EC_P256, 0, &k, &err),
	    TG_ERR_TOKEN_NOT_FOUND);
	assert_null(k);
	/* nothing was made */
	tg_error_clear(&err);
	assert_int_equal(
	    tg_p11_key_find(fx->p, "pkcs11:token=tg-test;object=fresh?pin-value=1234", 0, &k, &err),
	    TG_ERR_KEY_NOT_FOUND);
}

/*
 * A CKA_ALWAYS_AUTHENTICATE key: each signature needs a context-specific
 * login with the PIN read again from the key's source (env: here); a spent
 * pin-value cannot give it, and the refusal names the sources that can.
 */
static void
test_always_authenticate(void **state)
{
	struct fx *fx = *state;
	static const uint8_t id[] = {0xaa};
	struct tg_p11_key *ref = find_ok(fx->p, P256_URI, 0), *k = NULL, *kv = NULL;
	struct tg_p11_trust tr;
	struct tg_test_p11 w;
	CK_OBJECT_HANDLE pubh, privh;
	struct tg_error err, e_find, e_evp, e_prove;
	EVP_PKEY *evp = NULL, *pub = NULL;
	uint8_t *sig = NULL;
	size_t sl = 0;
	int r_find, r_sign = -1, r_evp = -1, r_prove = -1, r_prove_env = -1;

	tg_test_p11_open(&w, 1);
	raw_keygen(&w, "always", id, sizeof(id), 1, &pubh, &privh);
	setenv("TG_AA_PIN", "1234", 1);
	tg_error_clear(&e_find);
	r_find = tg_p11_key_find(
	    fx->p, "pkcs11:token=tg-test;object=always?pin-source=env:TG_AA_PIN", 0, &k, &e_find);
	memset(&tr, 0, sizeof(tr));
	if (k != NULL) {
		tg_p11_key_trust(k, &tr);
		pub = tg_p11_key_public(k);
		tg_error_clear(&err);
		r_sign =
		    tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &err);
		free(sig);
		sig = NULL;
		r_prove_env = pub != NULL ? tg_p11_key_prove(k, pub, NULL) : -1;
	}
	/* the same key through a pin-value: spent by the lookup */
	kv = find_ok(fx->p, "pkcs11:token=tg-test;object=always?pin-value=1234", 0);
	tg_error_clear(&e_evp);
	r_evp = tg_p11_key_evp_get(kv, &evp, &e_evp);
	tg_error_clear(&e_prove);
	if (pub != NULL)
		r_prove = tg_p11_key_prove(kv, pub, &e_prove);
	EVP_PKEY_free(evp);
	tg_p11_key_free(kv);
	tg_p11_key_free(k);
	EVP_PKEY_free(pub);
	unsetenv("TG_AA_PIN");
	raw_destroy_label(&w, "always");
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);

	if (r_find != 0)
		fail_msg("CKA_ALWAYS_AUTHENTICATE key with pin-source=env: %s", e_find.msg);
	assert_int_equal(tr.always_authenticate, 1);
	assert_non_null(pub);
	if (r_sign != 0)
		fail_msg("sign-test of the CKA_ALWAYS_AUTHENTICATE key: %s", err.msg);
	assert_int_equal(r_prove_env, 0);
	assert_int_equal(r_evp, TG_ERR_NO_PIN);
	assert_null(evp);
	assert_non_null(strstr(e_evp.msg, "key 'always' on token 'tg-test' "
	                                  "(CKA_ALWAYS_AUTHENTICATE)"));
	assert_int_equal(r_prove, TG_ERR_PKCS11);
	assert_non_null(strstr(e_prove.msg, "signing a challenge through the key's handle failed: "
	                                    "CKR_PIN_INCORRECT"));
}

/*
 * CKA_ALWAYS_AUTHENTICATE keys on two tokens of one module: libp11 asks
 * for the PIN without saying which token, so none is given (a wrong guess
 * would cost a PIN try): the signature fails, no PIN was sent.
 */
static void
test_always_authenticate_two_tokens(void **state)
{
	struct fx *fx = *state;
	static const uint8_t id[] = {0xab};
	struct tg_p11_key *ref = find_ok(fx->p, P256_URI, 0), *k = NULL, *k2 = NULL;
	struct tg_test_p11 w, w2;
	CK_OBJECT_HANDLE pubh, privh;
	struct tg_error err, e_sign;
	uint8_t *sig = NULL;
	size_t sl = 0;
	int r_sign = 0, r_sign2 = -1;

	setenv("TG_AA_PIN", "1234", 1);
	tg_test_p11_open(&w, 1);
	raw_keygen(&w, "always1", id, sizeof(id), 1, &pubh, &privh);
	setenv("TG_SOFTHSM_TOKEN", "tg-aa2", 1);
	tg_test_p11_open(&w2, 1);
	setenv("TG_SOFTHSM_TOKEN", "tg-test", 1);
	raw_keygen(&w2, "always2", id, sizeof(id), 1, &pubh, &privh);
	k = find_ok(fx->p, "pkcs11:token=tg-test;object=always1?pin-source=env:TG_AA_PIN", 0);
	/* one token with such keys: its PIN source answers */
	tg_error_clear(&err);
	r_sign2 = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &err);
	free(sig);
	sig = NULL;
	tg_p11_key_free(k);
	k = NULL;
	k2 = find_ok(fx->p, "pkcs11:token=tg-aa2;object=always2?pin-source=env:TG_AA_PIN", 0);
	k = find_ok(fx->p, "pkcs11:token=tg-test;object=always1?pin-source=env:TG_AA_PIN", 0);
	tg_error_clear(&e_sign);
	r_sign = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &e_sign);
	free(sig);
	tg_p11_key_free(k);
	tg_p11_key_free(k2);
	unsetenv("TG_AA_PIN");
	raw_destroy_label(&w, "always1");
	raw_destroy_label(&w2, "always2");
	tg_test_p11_close(&w2);
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);

	if (r_sign2 != 0)
		fail_msg("CKA_ALWAYS_AUTHENTICATE key, one token: %s", err.msg);
	assert_int_equal(r_sign, TG_ERR_CRYPTO);
	assert_non_null(strstr(e_sign.msg,
	                       "libp11's key for 'always1' on token 'tg-test' could not "
	                       "sign a challenge"));
}

/* ---- watcher, fork ----------------------------------------------------- */

static void
test_watch_quiet(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = find_ok(fx->p, P256_URI, 0);
	struct tg_p11_watch *wt = NULL;
	struct tg_p11_watch_event ev;
	struct tg_error err;
	int fd;

	tg_error_clear(&err);
	/* an interval above the maximum is cut to it */
	if (tg_p11_watch_start(k, 100000, NULL, NULL, &wt, &err) != 0)
		fail_msg("watch_start: %s", err.msg);
	fd = tg_p11_watch_fd(wt);
	assert_true(fd >= 0);
	assert_int_equal(tg_p11_watch_present(wt), 1);
	usleep(300 * 1000);
	assert_int_equal(tg_p11_watch_next(wt, &ev), 0);
	assert_int_equal(tg_p11_watch_present(wt), 1);
	tg_p11_watch_stop(wt);
	tg_p11_watch_stop(NULL);
	tg_p11_key_free(k);
}

/*
 * A child after fork() re-initializes the modules before its first call
 * (PKCS#11 v2.40 6.7.7) and finds and signs with a key; it exits normally
 * so its coverage is kept.
 */
static void
test_fork_child_uses_context(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = find_ok(fx->p, P256_URI, 0);
	int status = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tg_p11_token_info *v = NULL;
		struct tg_p11_key *k2 = NULL;
		uint8_t *sig = NULL;
		size_t n = 0, sl = 0;
		int rc = 1;

		if (tg_p11_tokens_list(fx->p, TOKEN_URI, &v, &n, NULL) == 0 && n == 1 &&
		    tg_p11_key_find(fx->p, P256_URI, 0, &k2, NULL) == 0 &&
		    tg_p11_key_sign_test(k2, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl,
		                         NULL) == 0)
			rc = 0;
		free(sig);
		free(v);
		tg_p11_key_free(k2);
		tg_p11_key_free(k); /* the parent's, copied by fork: LeakSanitizer runs at exit */
		exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	tg_p11_key_free(k);
}

/*
 * Keys of algorithms tokengate only finds: secp256k1 (EC on a curve it does
 * not generate: no public key built) and Ed25519 (neither RSA nor EC: it
 * cannot sign a challenge through its handle).
 */
static void
test_unusual_keys(void **state)
{
	struct fx *fx = *state;
	/* DER OIDs 1.3.132.0.10 (secp256k1) and 1.3.101.112 (Ed25519) */
	static const CK_BYTE k1_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
	static const CK_BYTE ed_oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
	static const uint8_t k1_id[] = {0xb1}, ed_id[] = {0xb2};
	struct tg_p11_key *ref = find_ok(fx->p, P256_URI, 0), *k1 = NULL, *ed = NULL, *ed2 = NULL;
	struct tg_test_p11 w;
	struct tg_error e_k1, e_ed, e_ed2, e_prove;
	EVP_PKEY *soft = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509 *x = NULL;
	unsigned char *der = NULL;
	char *pem = NULL;
	enum tg_p11_alg a_k1 = TG_P11_ALG_UNKNOWN, a_ed = TG_P11_ALG_EC_P256;
	int dl, r_k1, r_ed, r_ed2, r_prove = 0;
	CK_RV rv_k1, rv_ed;

	assert_non_null(soft);
	tg_test_p11_open(&w, 1);
	rv_k1 = raw_keygen_curve(&w, CKM_EC_KEY_PAIR_GEN, k1_oid, sizeof(k1_oid), "k1", k1_id,
	                         sizeof(k1_id));
	rv_ed = raw_keygen_curve(&w, CKM_EC_EDWARDS_KEY_PAIR_GEN, ed_oid, sizeof(ed_oid), "ed",
	                         ed_id, sizeof(ed_id));
	k1 = find_ok(fx->p, "pkcs11:token=tg-test;object=k1?pin-value=1234", 0);
	a_k1 = tg_p11_key_alg(k1);
	tg_error_clear(&e_k1);
	r_k1 = tg_p11_key_public_pem(k1, &pem, &e_k1);
	if (rv_ed == CKR_OK) {
		ed = find_ok(fx->p, "pkcs11:token=tg-test;object=ed?pin-value=1234", 0);
		a_ed = tg_p11_key_alg(ed);
		tg_error_clear(&e_ed);
		r_ed = tg_p11_key_public_pem(ed, &pem, &e_ed);
		/* a certificate with its id is a candidate it cannot be proven by */
		x = cert_for(soft, "ed", 41);
		dl = i2d_X509(x, &der);
		assert_true(dl > 0);
		(void)raw_cert(&w, "ed-cert", ed_id, sizeof(ed_id), der, (size_t)dl);
		ed2 = find_ok(fx->p, "pkcs11:token=tg-test;object=ed?pin-value=1234", 0);
		tg_error_clear(&e_ed2);
		r_ed2 = tg_p11_key_public_pem(ed2, &pem, &e_ed2);
		tg_error_clear(&e_prove);
		r_prove = tg_p11_key_prove(ed2, soft, &e_prove);
	}
	tg_p11_key_free(ed2);
	tg_p11_key_free(ed);
	tg_p11_key_free(k1);
	raw_destroy_label(&w, "k1");
	raw_destroy_label(&w, "ed");
	raw_destroy_label(&w, "ed-cert");
	tg_test_p11_close(&w);
	tg_p11_key_free(ref);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(soft);

	if (rv_k1 != CKR_OK || rv_ed != CKR_OK)
		fail_msg("SoftHSM2 refused secp256k1 (0x%lx) or Ed25519 (0x%lx) keys",
		         (unsigned long)rv_k1, (unsigned long)rv_ed);
	assert_null(pem);
	assert_int_equal(a_k1, TG_P11_ALG_EC_OTHER);
	assert_string_equal(tg_p11_alg_name(a_k1), "ec");
	assert_int_equal(r_k1, TG_ERR_CERT_MISMATCH);
	assert_string_equal(e_k1.msg, "the public key of key 'k1' on token 'tg-test' cannot be "
	                              "established: it is an EC key on curve secp256k1, which "
	                              "tokengate does not support; use a P-256 or P-384 key");
	assert_int_equal(a_ed, TG_P11_ALG_UNKNOWN);
	assert_int_equal(r_ed, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(e_ed.msg, "its id b2"));
	assert_int_equal(r_ed2, TG_ERR_CERT_MISMATCH);
	assert_non_null(strstr(e_ed2.msg, "the 1 candidate(s) with id b2 could not be proven: key "
	                                  "type 64 is neither RSA nor EC; log in to the token"));
	assert_int_equal(r_prove, TG_ERR_UNSUPPORTED);
	assert_string_equal(e_prove.msg, "key type 64 is neither RSA nor EC");
}

/* 1 when pk (a libp11 key) makes an ECDSA/SHA-256 signature. */
static int
evp_signs(EVP_PKEY *pk)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	uint8_t sig[256];
	size_t sl = sizeof(sig);
	int ok = mc != NULL && pk != NULL &&
	         EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, pk) == 1 &&
	         EVP_DigestSign(mc, sig, &sl, (const uint8_t *)MSG, strlen(MSG)) == 1 && sl > 0;

	EVP_MD_CTX_free(mc);
	return ok;
}

/*
 * A secp256k1 key generated after libp11's first enumeration: getting its
 * libp11 key (the path of `token sign-test` and TLS) re-enumerates libp11's
 * slots, which crashed inside libp11 0.4.12's PKCS11_update_slots. Now
 * libp11's key signs; sign-test refuses it, naming the key, since its
 * public key cannot be established; a key held from before and one found
 * afterwards still sign.
 */
static void
test_k1_libp11_key(void **state)
{
	struct fx *fx = *state;
	static const CK_BYTE k1_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
	static const uint8_t k1_id[] = {0xb3};
	struct tg_p11_key *k1 = NULL, *ref = NULL, *ref2 = NULL;
	struct tg_test_p11 w;
	struct tg_error e1, e2, e3, e4;
	EVP_PKEY *pk = NULL, *pk2 = NULL;
	uint8_t *sig = NULL, *sig2 = NULL, *sig3 = NULL;
	size_t sl = 0, sl2 = 0, sl3 = 0;
	int r1 = -1, r2 = -1, r_ref = -1, r_ref2 = -1, r_sign = 0, r_k1 = 0;
	CK_RV rv;

	/* found before the key appears: held, as the gate holds its key */
	ref = find_ok(fx->p, P256_URI, 0);
	tg_test_p11_open(&w, 1);
	rv = raw_keygen_curve(&w, CKM_EC_KEY_PAIR_GEN, k1_oid, sizeof(k1_oid), "k1-evp", k1_id,
	                      sizeof(k1_id));
	if (rv == CKR_OK) {
		k1 = find_ok(fx->p, "pkcs11:token=tg-test;object=k1-evp?pin-value=1234", 0);
		tg_error_clear(&e1);
		r1 = tg_p11_key_evp_get(k1, &pk, &e1);
		/* twice: the refusal does not depend on a first attempt */
		tg_error_clear(&e2);
		r2 = tg_p11_key_evp_get(k1, &pk2, &e2);
		r_sign = evp_signs(pk);
		tg_error_clear(&e4);
		r_k1 = tg_p11_key_sign_test(k1, 0, (const uint8_t *)MSG, strlen(MSG), &sig3, &sl3,
		                            &e4);
		tg_error_clear(&e3);
		r_ref =
		    tg_p11_key_sign_test(ref, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, &e3);
		ref2 = find_ok(fx->p, P256_URI, 0);
		r_ref2 = tg_p11_key_sign_test(ref2, 0, (const uint8_t *)MSG, strlen(MSG), &sig2,
		                              &sl2, &e3);
	}
	EVP_PKEY_free(pk);
	EVP_PKEY_free(pk2);
	free(sig);
	free(sig2);
	free(sig3);
	tg_p11_key_free(k1);
	tg_p11_key_free(ref);
	tg_p11_key_free(ref2);
	raw_destroy_label(&w, "k1-evp");
	tg_test_p11_close(&w);

	if (rv != CKR_OK)
		fail_msg("SoftHSM2 refused a secp256k1 key (0x%lx)", (unsigned long)rv);
	if (r1 != 0 || r2 != 0)
		fail_msg("libp11's key for k1-evp: %s / %s", e1.msg, e2.msg);
	assert_true(r_sign);
	assert_int_equal(r_k1, TG_ERR_CERT_MISMATCH);
	assert_null(sig3);
	assert_string_equal(e4.msg, "the public key of key 'k1-evp' on token 'tg-test' cannot be "
	                            "established: it is an EC key on curve secp256k1, which "
	                            "tokengate does not support; use a P-256 or P-384 key");
	if (r_ref != 0 || r_ref2 != 0)
		fail_msg("P-256 key after the refresh: %s", e3.msg);
}

/*
 * No file descriptor left for the watcher's pipe (RLIMIT_NOFILE 0, in a
 * child): refused with the reason, nothing started. The child restores the
 * limit before it exits, so its coverage data can be written.
 */
static void
test_watch_no_fds(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k = find_ok(fx->p, P256_URI, 0);
	int status = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tg_p11_watch *wt = NULL;
		struct tg_error err;
		struct rlimit old, none;
		int r, rc;

		tg_error_clear(&err);
		if (getrlimit(RLIMIT_NOFILE, &old) != 0)
			_exit(3);
		none = old;
		none.rlim_cur = 0;
		if (setrlimit(RLIMIT_NOFILE, &none) != 0)
			_exit(4);
		r = tg_p11_watch_start(k, 0, NULL, NULL, &wt, &err);
		(void)setrlimit(RLIMIT_NOFILE, &old);
		rc = r == TG_ERR_INTERNAL && wt == NULL &&
		             strcmp(err.msg, "cannot create the watcher: Too many open files") == 0
		         ? 0
		         : 1;
		if (rc != 0)
			fprintf(stderr, "watch_start without fds: %d %s\n", r, err.msg);
		tg_p11_watch_stop(wt);
		exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	tg_p11_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_helpers),
	    cmocka_unit_test(test_alg_of),
	    cmocka_unit_test(test_key_uri_errors),
	    cmocka_unit_test(test_modules),
	    cmocka_unit_test(test_token_select_errors),
	    cmocka_unit_test(test_token_login),
	    cmocka_unit_test(test_objects_list),
	    cmocka_unit_test(test_no_public_key),
	    cmocka_unit_test(test_cert_replace_and_planted),
	    cmocka_unit_test(test_keygen_refusals),
	    cmocka_unit_test(test_always_authenticate),
	    cmocka_unit_test(test_always_authenticate_two_tokens),
	    cmocka_unit_test(test_unusual_keys),
	    cmocka_unit_test(test_k1_libp11_key),
	    cmocka_unit_test(test_watch_quiet),
	    cmocka_unit_test(test_watch_no_fds),
	    cmocka_unit_test(test_fork_child_uses_context),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
