/*
 * test_att.c — attestation verification (host/ca/attest.c) against the real
 * YubiKey vectors of $TG_TESTDATA_DIR/yubikey-attestation, tampered copies
 * of them, and table-driven extension values. Only the tests that read the
 * vectors are skipped when they are absent; the decoding tests always run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "tg_att.h"
#include "tg_ca_io.h"
#include "tg_test.h"
#include "tg_test_x509.h"

#define VEC_COLS 14

static char vecdir[2048];
static const char *no_vectors; /* why the vectors cannot be read, or NULL */

/* Skips the calling test when the real vectors are absent. */
static void
vectors_need(void)
{
	if (no_vectors != NULL) {
		printf("SKIP: %s\n", no_vectors);
		skip();
	}
}

/* One vectors.tsv row. */
struct vec {
	char *col[VEC_COLS];
	char *line;
};

enum {
	C_SET,
	C_ATT,
	C_F9,
	C_ROOT,
	C_INTER,
	C_EXPECT,
	C_SLOT,
	C_KEY,
	C_FW,
	C_SERIAL,
	C_PIN,
	C_TOUCH,
	C_FF,
	C_NOTE
};

static int
vec_split(char *line, struct vec *v)
{
	char *save = NULL, *tok;
	int i;

	v->line = line;
	for (i = 0, tok = strtok_r(line, "\t\n", &save); tok != NULL && i < VEC_COLS;
	     tok = strtok_r(NULL, "\t\n", &save))
		v->col[i++] = tok;
	return i == VEC_COLS ? 0 : -1;
}

/* rel is relative to the vectors folder, or absolute. */
static void
path_of(char *buf, size_t n, const char *rel)
{
	if (rel[0] == '/')
		snprintf(buf, n, "%s", rel);
	else
		snprintf(buf, n, "%s/%s", vecdir, rel);
}

/* A temporary roots directory holding a symlink to one root file. */
static void
roots_dir_make(const char *rootrel, char *dir, size_t n)
{
	char target[4096], link[4200];

	snprintf(dir, n, "/tmp/tg-test-att-XXXXXX");
	assert_non_null(mkdtemp(dir));
	path_of(target, sizeof(target), rootrel);
	snprintf(link, sizeof(link), "%s/root.pem", dir);
	assert_int_equal(symlink(target, link), 0);
}

static void
roots_dir_remove(const char *dir)
{
	char link[4200];

	snprintf(link, sizeof(link), "%s/root.pem", dir);
	unlink(link);
	rmdir(dir);
}

/* Verifies a row; 0 and *f on success. */
static int
vec_verify(const struct vec *v, const char *attrel, const char *f9rel, const char *rootrel,
           EVP_PKEY *expect, struct tg_att_facts *f, struct tg_error *err)
{
	char path[4096], dir[256];
	struct tg_att_roots *roots = NULL;
	STACK_OF(X509) *inter = sk_X509_new_null();
	X509 *att = NULL, *f9 = NULL;
	int r;

	assert_non_null(inter);
	roots_dir_make(rootrel, dir, sizeof(dir));
	path_of(path, sizeof(path), attrel);
	if ((r = tg_ca_cert_read(path, &att, err)) != 0)
		goto out;
	path_of(path, sizeof(path), f9rel);
	if ((r = tg_ca_cert_read(path, &f9, err)) != 0)
		goto out;
	if (strcmp(v->col[C_INTER], "-") != 0) {
		path_of(path, sizeof(path), v->col[C_INTER]);
		if ((r = tg_ca_certs_read(path, inter, err)) != 0)
			goto out;
	}
	if ((r = tg_att_roots_load(dir, &roots, err)) != 0)
		goto out;
	r = tg_att_verify(roots, att, f9, inter, expect, f, err);
out:
	tg_att_roots_free(roots);
	X509_free(att);
	X509_free(f9);
	sk_X509_pop_free(inter, X509_free);
	roots_dir_remove(dir);
	return r;
}

static char *
tsv_read(void)
{
	char path[4096];
	uint8_t *data = NULL;
	size_t len = 0;

	path_of(path, sizeof(path), "vectors.tsv");
	assert_int_equal(tg_ca_file_read(path, &data, &len, NULL), 0);
	return (char *)data;
}

static void
test_vectors(void **state)
{
	char *text, *save = NULL, *line, ff[8];
	struct tg_att_facts f;
	struct tg_error err;
	struct vec v;
	int nok = 0, nfail = 0, bad = 0, r;

	(void)state;
	vectors_need();
	text = tsv_read();
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "set\t", 4) == 0)
			continue;
		assert_int_equal(vec_split(line, &v), 0);
		tg_error_clear(&err);
		memset(&f, 0, sizeof(f));
		r = vec_verify(&v, v.col[C_ATT], v.col[C_F9], v.col[C_ROOT], NULL, &f, &err);
		if (strcmp(v.col[C_EXPECT], "fail") == 0) {
			nfail++;
			if (r == 0) {
				printf("FAIL %s: verified but must fail\n", v.col[C_SET]);
				bad++;
			} else {
				printf("ok   %s fails: %s\n", v.col[C_SET], err.msg);
			}
			continue;
		}
		nok++;
		if (r != 0) {
			printf("FAIL %s: %s\n", v.col[C_SET], err.msg);
			bad++;
			continue;
		}
		snprintf(ff, sizeof(ff), "0x%02x", f.form_factor);
		if (strcmp(f.slot, v.col[C_SLOT]) != 0 ||
		    strcmp(f.key_algorithm, v.col[C_KEY]) != 0 ||
		    strcmp(f.has_firmware ? f.firmware_str : "-", v.col[C_FW]) != 0 ||
		    (strcmp(v.col[C_SERIAL], "-") == 0
		         ? f.has_serial
		         : !f.has_serial || strtoull(v.col[C_SERIAL], NULL, 10) != f.serial) ||
		    strcmp(tg_att_pin_name(f.pin_policy), v.col[C_PIN]) != 0 ||
		    strcmp(tg_att_touch_name(f.touch_policy), v.col[C_TOUCH]) != 0 ||
		    strcmp(f.has_form_factor ? ff : "-", v.col[C_FF]) != 0) {
			printf("FAIL %s: facts slot=%s key=%s fw=%s serial=%llu "
			       "pin=%s touch=%s ff=%s\n",
			       v.col[C_SET], f.slot, f.key_algorithm, f.firmware_str,
			       (unsigned long long)f.serial, tg_att_pin_name(f.pin_policy),
			       tg_att_touch_name(f.touch_policy), ff);
			bad++;
			continue;
		}
		printf("ok   %s: %s %s fw %s\n", v.col[C_SET], f.slot, f.key_algorithm,
		       f.firmware_str);
	}
	printf("%d ok rows, %d fail rows, %d wrong\n", nok, nfail, bad);
	assert_true(nok >= 30);
	assert_true(nfail >= 3);
	assert_int_equal(bad, 0);
	free(text);
}

/* Writes a DER copy of the certificate at rel with the byte at `from_end`
 * bytes before its end flipped (inside the signature). */
static void
tampered_write(const char *rel, size_t from_end, char *out, size_t n)
{
	char path[4096];
	unsigned char *der = NULL;
	X509 *x = NULL;
	FILE *fp;
	int len;

	path_of(path, sizeof(path), rel);
	assert_int_equal(tg_ca_cert_read(path, &x, NULL), 0);
	len = i2d_X509(x, &der);
	assert_true(len > (int)from_end);
	der[len - 1 - (int)from_end] ^= 0x01;
	snprintf(out, n, "/tmp/tg-test-att-tampered-%ld.der", (long)getpid());
	fp = fopen(out, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(der, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	OPENSSL_free(der);
	X509_free(x);
}

/* The rows tampered with: old firmware (no basicConstraints), 5.4.3, and
 * 5.7.4 through intermediates. */
static const char *const tamper_sets[] = {
    "ovh-piv-checker-5970478-fw4.3.5",
    "go-piv-ValidChain",
    "ovh-piv-checker-32718477-fw5.7.4",
};

static int
vec_find(char *text, const char *set, struct vec *v)
{
	char *save = NULL, *line;

	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (vec_split(line, v) == 0 && strcmp(v->col[C_SET], set) == 0)
			return 0;
	}
	return -1;
}

static void
test_tampered(void **state)
{
	char tmp[256];
	struct tg_att_facts f;
	struct tg_error err;
	struct vec v;
	size_t i;
	char *text;
	EVP_PKEY *other = NULL;

	(void)state;
	vectors_need();
	for (i = 0; i < sizeof(tamper_sets) / sizeof(tamper_sets[0]); i++) {
		text = tsv_read();
		assert_int_equal(vec_find(text, tamper_sets[i], &v), 0);

		/* untouched: verifies */
		tg_error_clear(&err);
		assert_int_equal(
		    vec_verify(&v, v.col[C_ATT], v.col[C_F9], v.col[C_ROOT], NULL, &f, &err), 0);

		/* a flipped bit in the attestation signature */
		tampered_write(v.col[C_ATT], 3, tmp, sizeof(tmp));
		tg_error_clear(&err);
		assert_int_equal(vec_verify(&v, tmp, v.col[C_F9], v.col[C_ROOT], NULL, &f, &err),
		                 TG_ERR_ATTESTATION);
		assert_non_null(strstr(err.msg, "signature does not verify"));
		unlink(tmp);

		/* a flipped bit in the F9 certificate's signature */
		tampered_write(v.col[C_F9], 3, tmp, sizeof(tmp));
		tg_error_clear(&err);
		assert_int_equal(vec_verify(&v, v.col[C_ATT], tmp, v.col[C_ROOT], NULL, &f, &err),
		                 TG_ERR_ATTESTATION);
		assert_non_null(strstr(err.msg, "does not chain"));
		unlink(tmp);

		/* the wrong root directory */
		tg_error_clear(&err);
		assert_int_equal(vec_verify(&v, v.col[C_ATT], v.col[C_F9],
		                            "roots/yubico-fido-ca-1_U2F-Root-457200631.pem", NULL,
		                            &f, &err),
		                 TG_ERR_ATTESTATION);
		assert_non_null(strstr(err.msg, "does not chain to a trusted root"));

		/* swapped F9: another token's device certificate */
		tg_error_clear(&err);
		assert_int_not_equal(
		    vec_verify(&v, v.col[C_ATT],
		               "docker-tuf-2024-06-04-25599865/SlotF9Intermediate.pem",
		               v.col[C_ROOT], NULL, &f, &err),
		    0);
		printf("swapped F9 (%s): %s\n", tamper_sets[i], err.msg);

		/* the attested key is not the one being certified */
		other = EVP_EC_gen("P-256");
		assert_non_null(other);
		tg_error_clear(&err);
		assert_int_equal(
		    vec_verify(&v, v.col[C_ATT], v.col[C_F9], v.col[C_ROOT], other, &f, &err),
		    TG_ERR_ATTESTATION);
		assert_non_null(strstr(err.msg, "differs from the key being certified"));
		EVP_PKEY_free(other);
		free(text);
	}
}

/* 5.7.4 needs the intermediates; without them the chain breaks. */
static void
test_missing_intermediates(void **state)
{
	char *text;
	struct tg_att_facts f;
	struct tg_error err;
	struct vec v;
	static char dash[] = "-";

	(void)state;
	vectors_need();
	text = tsv_read();
	assert_int_equal(vec_find(text, "ovh-piv-checker-32718477-fw5.7.4", &v), 0);
	v.col[C_INTER] = dash;
	tg_error_clear(&err);
	assert_int_equal(vec_verify(&v, v.col[C_ATT], v.col[C_F9], v.col[C_ROOT], NULL, &f, &err),
	                 TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "unable to get local issuer"));
	free(text);
}

/* Attestation key equals itself as given back: expected key path accepted. */
static void
test_expected_key_ok(void **state)
{
	char *text, path[4096];
	struct tg_att_facts f;
	struct tg_error err;
	EVP_PKEY *pk = NULL;
	struct vec v;

	(void)state;
	vectors_need();
	text = tsv_read();
	assert_int_equal(vec_find(text, "go-piv-ValidChain", &v), 0);
	path_of(path, sizeof(path), v.col[C_ATT]);
	assert_int_equal(tg_ca_pubkey_read(path, &pk, NULL), 0);
	tg_error_clear(&err);
	assert_int_equal(vec_verify(&v, v.col[C_ATT], v.col[C_F9], v.col[C_ROOT], pk, &f, &err), 0);
	EVP_PKEY_free(pk);
	free(text);
}

/* CSRs carrying the attestation and F9 in extensions (TameMyCerts). */
struct csr_case {
	const char *csr;
	const char *root;
	const char *inter; /* or NULL */
	int want;          /* 0 verifies with the CSR key; else the error code */
	const char *msg;   /* ok: "slot serial"; else part of the message */
};

static const struct csr_case csr_cases[] = {
    {"tamemycerts/inline-csr/"
     "L44__yubikey_valid_5_4_3_Once_Never_UsbAKeychain_9a_Normal_RSA_2048_CSR.pem",
     "roots/yubico-piv-ca-1.pem", NULL, 0, "9a 19661687"},
    {"tamemycerts/inline-csr/"
     "L136__yubikey_valid_5_4_3_Once_Cached_UsbAKeychain_9a_FIPS_RSA_2048_CSR.pem",
     "roots/yubico-piv-ca-1.pem", NULL, 0, "9a 28989702"},
    {"tamemycerts/inline-csr/"
     "L95__yubikey_valid_5_7_1_Always_Always_UsbCKeychain_9c_Normal_ECC_384_CSR.pem",
     "roots/yubico-piv-ca-1.pem", NULL, 0, "9c 30041834"},
    {"tamemycerts/resources/5_2_7.pem", "roots/yubico-piv-ca-1.pem", NULL, 0, "9a 15890263"},
    {"tamemycerts/resources/attestation_1.pem", "roots/yubico-piv-ca-1.pem", NULL, 0,
     "9a 19661687"},
    {"tamemycerts/resources/csr_5_7_4_standard.pem", "roots/yubico-ca-1_Attestation-Root-1.pem",
     "roots/yubico-intermediate.pem", 0, "9a 33064031"},
    {"tamemycerts/inline-csr/L877_csr.pem", "roots/yubico-piv-ca-1.pem", NULL, TG_ERR_ATTESTATION,
     "differs from the key being certified"},
    {"tamemycerts/inline-csr/L376_csr.pem", "roots/yubico-piv-ca-1.pem", NULL, TG_ERR_ATTESTATION,
     "is not a DER certificate"},
    {"tamemycerts/inline-csr/L331_csr.pem", "roots/yubico-piv-ca-1.pem", NULL, TG_ERR_NOT_FOUND,
     ""},
};

static void
test_from_csr(void **state)
{
	struct tg_att_roots *roots = NULL;
	STACK_OF(X509) *inter = NULL;
	struct tg_att_facts f;
	struct tg_error err;
	X509 *att = NULL, *f9 = NULL;
	X509_REQ *req = NULL;
	char path[4096], dir[256], got[64];
	size_t i;
	int r;

	(void)state;
	vectors_need();
	for (i = 0; i < sizeof(csr_cases) / sizeof(csr_cases[0]); i++) {
		const struct csr_case *c = &csr_cases[i];

		tg_error_clear(&err);
		path_of(path, sizeof(path), c->csr);
		assert_int_equal(tg_ca_csr_read(path, &req, NULL), 0);
		inter = sk_X509_new_null();
		assert_non_null(inter);
		if (c->inter != NULL) {
			path_of(path, sizeof(path), c->inter);
			assert_int_equal(tg_ca_certs_read(path, inter, NULL), 0);
		}
		roots_dir_make(c->root, dir, sizeof(dir));
		assert_int_equal(tg_att_roots_load(dir, &roots, NULL), 0);
		r = tg_att_from_csr(req, &att, &f9, &err);
		if (r == 0)
			r = tg_att_verify(roots, att, f9, inter, X509_REQ_get0_pubkey(req), &f,
			                  &err);
		if (c->want == 0) {
			if (r != 0)
				fail_msg("%s: %s", c->csr, err.msg);
			snprintf(got, sizeof(got), "%s %llu", f.slot, (unsigned long long)f.serial);
			if (strcmp(got, c->msg) != 0)
				fail_msg("%s: got '%s', want '%s'", c->csr, got, c->msg);
		} else if (r != c->want || strstr(err.msg, c->msg) == NULL) {
			fail_msg("%s: r=%d '%s', want %d '%s'", c->csr, r, err.msg, c->want,
			         c->msg);
		}
		printf("csr %s: %s\n", c->csr, r == 0 ? "verified" : err.msg);
		X509_free(att);
		X509_free(f9);
		att = f9 = NULL;
		X509_REQ_free(req);
		sk_X509_pop_free(inter, X509_free);
		tg_att_roots_free(roots);
		roots = NULL;
		roots_dir_remove(dir);
	}
}

/* A self-signed certificate, to stand in for an attestation or F9 in a CSR. */
static X509 *
cert_any(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)"Any", -1,
	                                            -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

/* A CSR carrying the DER of x in the extension oid. */
static X509_REQ *
csr_with_cert(const char *oid, X509 *x)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;
	int n;

	assert_true(exts != NULL && o != NULL && os != NULL && req != NULL);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, n), 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
	assert_non_null(e);
	assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
	OPENSSL_free(der);
	return req;
}

/* A CSR with one half of the pair (attestation, F9) is refused, naming the
 * half that is missing; no vectors needed. */
static void
test_from_csr_half(void **state)
{
	static const struct {
		const char *oid, *msg;
	} halves[] = {
	    {"1.3.6.1.4.1.41482.3.11", "carries an attestation but not its F9 certificate"},
	    {"1.3.6.1.4.1.41482.3.1", "carries an attestation but not its F9 certificate"},
	    {"1.3.6.1.4.1.41482.3.2", "carries an F9 certificate but not an attestation"},
	};
	struct tg_error err;
	X509 *x = cert_any(), *att, *f9;
	X509_REQ *req;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(halves) / sizeof(halves[0]); i++) {
		req = csr_with_cert(halves[i].oid, x);
		att = f9 = NULL;
		tg_error_clear(&err);
		assert_int_equal(tg_att_from_csr(req, &att, &f9, &err), TG_ERR_ATTESTATION);
		assert_non_null(strstr(err.msg, halves[i].msg));
		assert_null(att);
		assert_null(f9);
		X509_REQ_free(req);
	}
	X509_free(x);
}

static void
test_roots_dir_errors(void **state)
{
	struct tg_att_roots *roots = NULL;
	struct tg_error err;
	char dir[] = "/tmp/tg-test-att-empty-XXXXXX", junk[128];
	FILE *fp;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(tg_att_roots_load("/nonexistent/roots", &roots, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/roots"));
	assert_non_null(mkdtemp(dir));
	tg_error_clear(&err);
	assert_int_equal(tg_att_roots_load(dir, &roots, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "no trusted root"));
	snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
	fp = fopen(junk, "w");
	assert_non_null(fp);
	fputs("not a certificate\n", fp);
	fclose(fp);
	tg_error_clear(&err);
	assert_int_equal(tg_att_roots_load(dir, &roots, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "junk.pem"));
	unlink(junk);
	rmdir(dir);
	assert_null(roots);
}

/* ---- extension values, table-driven ---- */

struct ext_case {
	const char *name;
	enum tg_att_ext which;
	const char *hex;
	int ok;
	const char *msg; /* part of the error, or the decoded value */
};

static const struct ext_case ext_cases[] = {
    {"fw ok", TG_ATT_EXT_FIRMWARE, "05 04 03", 1, "5.4.3"},
    {"fw short", TG_ATT_EXT_FIRMWARE, "05 04", 0, "not exactly 3"},
    {"fw long", TG_ATT_EXT_FIRMWARE, "05 04 03 00", 0, "not exactly 3"},
    {"fw empty", TG_ATT_EXT_FIRMWARE, "", 0, "not exactly 3"},
    {"serial ok", TG_ATT_EXT_SERIAL, "02 04 01 85 5E 1B", 1, "25517595"},
    {"serial 0", TG_ATT_EXT_SERIAL, "02 01 00", 1, "0"},
    {"serial negative", TG_ATT_EXT_SERIAL, "02 01 80", 0, "negative"},
    {"serial trailing", TG_ATT_EXT_SERIAL, "02 01 05 00", 0, "trailing"},
    {"serial not int", TG_ATT_EXT_SERIAL, "04 01 05", 0, "not a DER INTEGER"},
    {"serial raw", TG_ATT_EXT_SERIAL, "01 85 5E 1B", 0, "not a DER INTEGER"},
    {"serial cut", TG_ATT_EXT_SERIAL, "02 04 01 85", 0, "not a DER INTEGER"},
    {"serial empty", TG_ATT_EXT_SERIAL, "", 0, "not a DER INTEGER"},
    {"serial too big", TG_ATT_EXT_SERIAL, "02 09 01 00 00 00 00 00 00 00 00", 0, "too large"},
    {"policy once never", TG_ATT_EXT_POLICY, "02 01", 1, "once/never"},
    {"policy always cached", TG_ATT_EXT_POLICY, "03 03", 1, "always/cached"},
    {"policy pin 0", TG_ATT_EXT_POLICY, "00 01", 0, "unknown PIN policy"},
    {"policy pin 6", TG_ATT_EXT_POLICY, "06 01", 0, "unknown PIN policy"},
    {"policy touch 4", TG_ATT_EXT_POLICY, "01 04", 0, "unknown touch policy"},
    {"policy short", TG_ATT_EXT_POLICY, "01", 0, "not exactly 2"},
    {"policy long", TG_ATT_EXT_POLICY, "01 01 01", 0, "not exactly 2"},
    {"ff ok", TG_ATT_EXT_FORM_FACTOR, "83", 1, "0x83"},
    {"ff long", TG_ATT_EXT_FORM_FACTOR, "01 02", 0, "not exactly 1"},
    {"ff empty", TG_ATT_EXT_FORM_FACTOR, "", 0, "not exactly 1"},
};

static void
test_ext_decode(void **state)
{
	struct tg_att_facts f;
	struct tg_error err;
	unsigned char *p;
	char got[64];
	size_t i, n;
	int r;

	(void)state;
	for (i = 0; i < sizeof(ext_cases) / sizeof(ext_cases[0]); i++) {
		const struct ext_case *c = &ext_cases[i];

		p = tg_test_hexdup(c->hex, &n);
		memset(&f, 0, sizeof(f));
		tg_error_clear(&err);
		r = tg_att_ext_decode(c->which, p, n, &f, &err);
		free(p);
		if (!c->ok) {
			if (r != TG_ERR_ATTESTATION || strstr(err.msg, c->msg) == NULL)
				fail_msg("%s: r=%d msg='%s'", c->name, r, err.msg);
			continue;
		}
		if (r != 0)
			fail_msg("%s: r=%d msg='%s'", c->name, r, err.msg);
		switch (c->which) {
		case TG_ATT_EXT_FIRMWARE:
			snprintf(got, sizeof(got), "%s", f.firmware_str);
			break;
		case TG_ATT_EXT_SERIAL:
			snprintf(got, sizeof(got), "%llu", (unsigned long long)f.serial);
			break;
		case TG_ATT_EXT_POLICY:
			snprintf(got, sizeof(got), "%s/%s", tg_att_pin_name(f.pin_policy),
			         tg_att_touch_name(f.touch_policy));
			break;
		case TG_ATT_EXT_FORM_FACTOR:
		default:
			snprintf(got, sizeof(got), "0x%02x", f.form_factor);
			break;
		}
		if (strcmp(got, c->msg) != 0)
			fail_msg("%s: got '%s', want '%s'", c->name, got, c->msg);
	}
}

static void
test_names(void **state)
{
	enum tg_att_pin p;
	enum tg_att_touch t;

	(void)state;
	assert_int_equal(tg_att_pin_parse("once", &p), 0);
	assert_int_equal(p, TG_ATT_PIN_ONCE);
	assert_int_equal(tg_att_pin_parse("sometimes", &p), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_att_touch_parse("cached", &t), 0);
	assert_int_equal(t, TG_ATT_TOUCH_CACHED);
	assert_int_equal(tg_att_touch_parse("", &t), TG_ERR_INVALID_ARG);
	assert_string_equal(tg_att_pin_name((enum tg_att_pin)9), "unknown");
	assert_string_equal(tg_att_touch_name(TG_ATT_TOUCH_UNKNOWN), "unknown");
}

/* Key algorithm names, and the keys no token attests. */
static void
test_key_algorithms(void **state)
{
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	char buf[32];

	(void)state;
	assert_true(ed != NULL && x != NULL && ed448 != NULL && p384 != NULL);
	assert_int_equal(tg_att_key_algorithm(ed, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "ED25519");
	assert_int_equal(tg_att_key_algorithm(x, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "X25519");
	assert_int_equal(tg_att_key_algorithm(p384, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "secp384r1");
	assert_int_equal(tg_att_key_algorithm(ed448, buf, sizeof(buf)), TG_ERR_UNSUPPORTED);
	assert_string_equal(buf, "");
	assert_int_equal(tg_att_key_algorithm(NULL, buf, sizeof(buf)), TG_ERR_UNSUPPORTED);
	assert_int_equal(tg_att_key_algorithm(ed, buf, 0), TG_ERR_UNSUPPORTED);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(x);
	EVP_PKEY_free(ed448);
	EVP_PKEY_free(p384);
}

/*
 * tg_att_verify refusals on a chain made here: arguments missing, an
 * attested key no token makes (Ed448), an attestation whose issuer is not
 * the F9 given, and an expected key of an unsupported kind named so.
 */
static void
test_verify_refusals(void **state)
{
	EVP_PKEY *rootk = EVP_EC_gen("P-256"), *f9k = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
	X509 *root, *f9, *f9b, *att, *att448;
	struct tg_att_roots *roots = NULL;
	struct tg_att_facts f;
	struct tg_error err;
	char dir[64], path[128];

	(void)state;
	assert_true(rootk != NULL && f9k != NULL && k != NULL && ed448 != NULL);
	root = tg_test_yk_cert("Test Attestation Root", rootk, NULL, NULL, "critical,CA:TRUE", 0);
	f9 = tg_test_yk_cert("Yubico PIV Attestation", f9k, root, rootk,
	                     "critical,CA:TRUE,pathlen:0", 0);
	f9b = tg_test_yk_cert("Other PIV Attestation", f9k, root, rootk,
	                      "critical,CA:TRUE,pathlen:0", 0);
	att = tg_test_yk_cert("YubiKey PIV Attestation 9a", k, f9, f9k, NULL, 1);
	att448 = tg_test_yk_cert("YubiKey PIV Attestation 9a", ed448, f9, f9k, NULL, 1);
	assert_int_equal(tg_test_tmpdir("tg-test-att", dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/root.pem", dir);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_pem_write(path, root, NULL, NULL, &err), 0);
	assert_int_equal(tg_att_roots_load(dir, &roots, &err), 0);

	/* the chain as made verifies */
	tg_error_clear(&err);
	if (tg_att_verify(roots, att, f9, NULL, k, &f, &err) != 0)
		fail_msg("verify: %s", err.msg);
	assert_string_equal(f.slot, "9a");

	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(NULL, att, f9, NULL, NULL, &f, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "all needed"));
	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(roots, att, NULL, NULL, NULL, &f, &err), TG_ERR_INVALID_ARG);
	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(roots, att448, f9, NULL, NULL, &f, &err),
	                 TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "holds no supported public key"));
	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(roots, att, f9b, NULL, NULL, &f, &err), TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "is not the F9 device certificate subject"));
	assert_non_null(strstr(err.msg, "CN=Other PIV Attestation"));
	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(roots, att, f9, NULL, ed448, &f, &err), TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "differs from the key being certified (unsupported)"));

	tg_att_roots_free(roots);
	X509_free(root);
	X509_free(f9);
	X509_free(f9b);
	X509_free(att);
	X509_free(att448);
	EVP_PKEY_free(rootk);
	EVP_PKEY_free(f9k);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ed448);
	tg_test_tmpdir_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ext_decode),       cmocka_unit_test(test_names),
	    cmocka_unit_test(test_roots_dir_errors), cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_tampered),         cmocka_unit_test(test_missing_intermediates),
	    cmocka_unit_test(test_expected_key_ok),  cmocka_unit_test(test_from_csr),
	    cmocka_unit_test(test_from_csr_half),    cmocka_unit_test(test_key_algorithms),
	    cmocka_unit_test(test_verify_refusals),
	};
	const char *td = tg_test_getenv("TG_TESTDATA_DIR");
	struct stat st;

	if (td == NULL) {
		no_vectors = "TG_TESTDATA_DIR is not set: run through ctest, or set it to the "
		             "shared testdata directory";
	} else {
		snprintf(vecdir, sizeof(vecdir), "%s/yubikey-attestation", td);
		if (stat(vecdir, &st) != 0)
			no_vectors =
			    "the real YubiKey vectors (TG_TESTDATA_DIR/yubikey-attestation) "
			    "are absent";
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
