/*
 * test_failalloc_ca.c — the CA under allocation failure: every allocation
 * of CA creation, opening, issuance (accepted and refused), revocation,
 * the CRL, the listing and the policy file is made to fail in turn
 * (tg_test_failalloc.h). Each must fail with a message naming what
 * failed, or absorb the failure with the same answer; a refused request is
 * never issued, and a failed issuance or revocation leaves the CA's files
 * as they were.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_ca_io.h"
#include "tg_ca_issue.h"
#include "tg_ca_policy.h"
#include "tg_ca_record.h"
#include "tg_ca_store.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"
#include "tg_test_x509.h"

/* What every operation works on, made once per test program. */
struct fx {
	char base[64];   /* temporary directory */
	char cadir[128]; /* a CA in base/ca */
	EVP_PKEY *rootk, *f9k, *k, *otherk;
	X509 *root, *f9, *att, *foreign_att;
	X509_REQ *csr;
	struct tg_ca_store *s; /* cadir, with its key */
	X509 *leaf;            /* issued before the sweeps */
	char leaf_serial[TG_CA_SERIAL_HEX_MAX + 1];
};

static struct fx fx;

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -r path (nothing when it does not exist). */
static void
rm_tree(const char *path)
{
	(void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Files in cadir/issued whose name ends in ext. */
static int
issued_count(const char *ext)
{
	char path[256];
	struct dirent *e;
	DIR *d;
	int n = 0;
	size_t l, el = strlen(ext);

	snprintf(path, sizeof(path), "%s/issued", fx.cadir);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		l = strlen(e->d_name);
		if (l > el && strcmp(e->d_name + l - el, ext) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* The whole of path into a NUL-terminated buffer (NULL: no such file). */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (f != NULL) {
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		n = ftell(f);
		assert_true(n >= 0);
		rewind(f);
		p = calloc(1, (size_t)n + 1);
		assert_non_null(p);
		assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
		fclose(f);
	}
	return p;
}

/* Creates a CA in a new directory, checks it on success, removes it. */
static int
op_init(void *ctx, struct tg_error *err)
{
	struct tg_ca_init_opts o;
	char dir[160], pem[200];
	int r;

	(void)ctx;
	tg_failalloc_hold(1);
	snprintf(dir, sizeof(dir), "%s/init", fx.base);
	rm_tree(dir);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.trust_domain = "example.org";
	tg_failalloc_hold(0);
	r = tg_ca_store_init(&o, err);
	tg_failalloc_hold(1);
	snprintf(pem, sizeof(pem), "%s/ca.pem", dir);
	/* ca.pem is written last: it exists exactly when init succeeded */
	assert_int_equal(access(pem, F_OK) == 0, r == 0);
	rm_tree(dir);
	return r;
}

static int
op_open(void *ctx, struct tg_error *err)
{
	struct tg_ca_store *s = NULL;
	int r;

	(void)ctx;
	r = tg_ca_store_open(fx.cadir, 1, &s, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_non_null(tg_ca_store_key(s));
		assert_int_equal(X509_check_private_key(tg_ca_store_cert(s), tg_ca_store_key(s)),
		                 1);
		assert_string_equal(tg_ca_store_policy(s)->trust_domain, "example.org");
	} else {
		assert_null(s);
	}
	tg_ca_store_free(s);
	return r;
}

/* Issues for csr with attestation att: on success the leaf verifies with
 * the CA key and is recorded (.pem and .json); on failure nothing. */
static int
issue(X509 *att, struct tg_error *err)
{
	struct tg_ca_issue_req req;
	X509 *leaf = NULL;
	int pem0, json0, r;

	tg_failalloc_hold(1);
	pem0 = issued_count(".pem");
	json0 = issued_count(".json");
	memset(&req, 0, sizeof(req));
	req.csr = fx.csr;
	req.id = "spiffe://example.org/dev/alice";
	req.att = att;
	req.f9 = fx.f9;
	tg_failalloc_hold(0);
	r = tg_ca_issue(fx.s, &req, &leaf, NULL, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_int_equal(X509_verify(leaf, tg_ca_store_key(fx.s)), 1);
		assert_int_equal(issued_count(".pem"), pem0 + 1);
		assert_int_equal(issued_count(".json"), json0 + 1);
	} else {
		assert_null(leaf);
		assert_int_equal(issued_count(".pem"), pem0);
		assert_int_equal(issued_count(".json"), json0);
	}
	X509_free(leaf);
	return r;
}

static int
op_issue(void *ctx, struct tg_error *err)
{
	(void)ctx;
	return issue(fx.att, err);
}

/* An attestation signed by a key that is not the F9's: refused. */
static int
op_issue_refused(void *ctx, struct tg_error *err)
{
	(void)ctx;
	return issue(fx.foreign_att, err);
}

/* Revokes the leaf; revoked.txt is put back afterwards, so it can again. */
static int
op_revoke(void *ctx, struct tg_error *err)
{
	char path[200], *before, *after;
	int r;

	(void)ctx;
	tg_failalloc_hold(1);
	snprintf(path, sizeof(path), "%s/revoked.txt", fx.cadir);
	before = slurp(path);
	tg_failalloc_hold(0);
	r = tg_ca_store_revoke(fx.s, fx.leaf_serial, TG_CA_REASON_KEY_COMPROMISE, err);
	tg_failalloc_hold(1);
	after = slurp(path);
	if (r == 0) {
		assert_non_null(after);
		assert_non_null(strstr(after, fx.leaf_serial));
		assert_non_null(strstr(after, "keyCompromise"));
	} else if (before == NULL) {
		assert_null(after);
	} else {
		assert_string_equal(before, after);
	}
	if (before != NULL)
		assert_int_equal(tg_test_file_put(path, before), 0);
	else
		(void)unlink(path);
	free(before);
	free(after);
	return r;
}

static int
op_crl(void *ctx, struct tg_error *err)
{
	X509_CRL *crl = NULL;
	int r;

	(void)ctx;
	r = tg_ca_store_crl(fx.s, &crl, err);
	tg_failalloc_hold(1);
	if (r == 0)
		assert_int_equal(X509_CRL_verify(crl, tg_ca_store_key(fx.s)), 1);
	else
		assert_null(crl);
	X509_CRL_free(crl);
	return r;
}

static int
op_list(void *ctx, struct tg_error *err)
{
	struct tg_ca_issued *list = NULL;
	size_t n = 0, i, found = 0;
	int r;

	(void)ctx;
	r = tg_ca_store_list(fx.s, time(NULL), &list, &n, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		for (i = 0; i < n; i++)
			found += strcmp(list[i].serial, fx.leaf_serial) == 0;
		assert_int_equal(found, 1);
	}
	tg_ca_issued_free(list, n);
	return r;
}

static int
op_cert_json(void *ctx, struct tg_error *err)
{
	json_t *j = NULL;
	int r;

	(void)ctx;
	r = tg_ca_cert_json(fx.leaf, &j, err);
	tg_failalloc_hold(1);
	if (r == 0)
		assert_true(json_object_size(j) > 0);
	else
		assert_null(j);
	json_decref(j);
	return r;
}

/* Reads the CA's policy.yaml and writes it back to another file. */
static int
op_policy(void *ctx, struct tg_error *err)
{
	struct tg_ca_policy pol;
	char path[200], copy[200];
	int r;

	(void)ctx;
	tg_failalloc_hold(1);
	memset(&pol, 0, sizeof(pol));
	snprintf(path, sizeof(path), "%s/policy.yaml", fx.cadir);
	snprintf(copy, sizeof(copy), "%s/policy-copy.yaml", fx.base);
	(void)unlink(copy);
	tg_failalloc_hold(0);
	r = tg_ca_policy_load(path, &pol, err);
	if (r == 0)
		r = tg_ca_policy_write(&pol, copy, err);
	tg_failalloc_hold(1);
	assert_int_equal(access(copy, F_OK) == 0, r == 0);
	if (r == 0)
		assert_string_equal(pol.trust_domain, "example.org");
	tg_ca_policy_clear(&pol);
	return r;
}

static int
setup(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_ca_issue_req req;
	struct tg_error err;
	char path[256];

	(void)state;
	memset(&fx, 0, sizeof(fx));
	assert_int_equal(tg_test_tmpdir("tg-test-failalloc-ca", fx.base, sizeof(fx.base)), 0);
	snprintf(fx.cadir, sizeof(fx.cadir), "%s/ca", fx.base);
	fx.rootk = EVP_EC_gen("P-256");
	fx.f9k = EVP_EC_gen("P-256");
	fx.k = EVP_EC_gen("P-256");
	fx.otherk = EVP_EC_gen("P-256");
	fx.csr = X509_REQ_new();
	assert_true(fx.rootk != NULL && fx.f9k != NULL && fx.k != NULL && fx.otherk != NULL &&
	            fx.csr != NULL);
	fx.root =
	    tg_test_yk_cert("Test Attestation Root", fx.rootk, NULL, NULL, "critical,CA:TRUE", 0);
	fx.f9 = tg_test_yk_cert("Yubico PIV Attestation", fx.f9k, fx.root, fx.rootk,
	                        "critical,CA:TRUE,pathlen:0", 0);
	fx.att = tg_test_yk_cert("YubiKey PIV Attestation 9a", fx.k, fx.f9, fx.f9k, NULL, 1);
	fx.foreign_att =
	    tg_test_yk_cert("YubiKey PIV Attestation 9a", fx.k, fx.f9, fx.otherk, NULL, 1);
	assert_int_equal(X509_REQ_set_pubkey(fx.csr, fx.k), 1);
	assert_true(X509_REQ_sign(fx.csr, fx.k, EVP_sha256()) > 0);
	memset(&o, 0, sizeof(o));
	o.dir = fx.cadir;
	o.trust_domain = "example.org";
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("ca init: %s", err.msg);
	snprintf(path, sizeof(path), "%s/attestation-roots/root.pem", fx.cadir);
	if (tg_ca_pem_write(path, fx.root, NULL, NULL, &err) != 0 ||
	    tg_ca_store_open(fx.cadir, 1, &fx.s, &err) != 0)
		fail_msg("ca: %s", err.msg);
	memset(&req, 0, sizeof(req));
	req.csr = fx.csr;
	req.id = "spiffe://example.org/dev/alice";
	req.att = fx.att;
	req.f9 = fx.f9;
	if (tg_ca_issue(fx.s, &req, &fx.leaf, NULL, &err) != 0)
		fail_msg("issue: %s", err.msg);
	assert_int_equal(tg_ca_serial_hex(X509_get0_serialNumber(fx.leaf), fx.leaf_serial,
	                                  sizeof(fx.leaf_serial)),
	                 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_ca_store_free(fx.s);
	rm_tree(fx.base);
	X509_free(fx.leaf);
	X509_free(fx.foreign_att);
	X509_free(fx.att);
	X509_free(fx.f9);
	X509_free(fx.root);
	X509_REQ_free(fx.csr);
	EVP_PKEY_free(fx.otherk);
	EVP_PKEY_free(fx.k);
	EVP_PKEY_free(fx.f9k);
	EVP_PKEY_free(fx.rootk);
	return 0;
}

/*
 * Not a sweep: an attestation whose notBefore is not a time is refused
 * with the reason, not as "not valid yet" (X509_cmp_current_time's 0 is
 * "could not compare").
 */
static void
test_issue_bad_time(void **state)
{
	X509 *att = tg_test_yk_cert("YubiKey PIV Attestation 9a", fx.k, fx.f9, fx.f9k, NULL, 1);
	struct tg_error err;

	(void)state;
	assert_int_equal(ASN1_STRING_set(X509_getm_notBefore(att), "not a time", 10), 1);
	assert_true(X509_sign(att, fx.f9k, EVP_sha256()) > 0);
	tg_error_clear(&err);
	assert_int_equal(issue(att, &err), TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "cannot compare the attestation certificate's validity"));
	X509_free(att);
}

static void
test_init(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca init", op_init, NULL) > 0);
}

static void
test_open(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca open", op_open, NULL) > 0);
}

static void
test_issue(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca issue", op_issue, NULL) > 0);
}

static void
test_issue_refused(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca issue, foreign attestation", op_issue_refused, NULL) >
	            0);
}

static void
test_revoke(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca revoke", op_revoke, NULL) > 0);
}

static void
test_crl(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca crl", op_crl, NULL) > 0);
}

static void
test_list(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca list", op_list, NULL) > 0);
}

static void
test_cert_json(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca show record", op_cert_json, NULL) > 0);
}

static void
test_policy(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("ca policy load and write", op_policy, NULL) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    /* the listing first: it reads every certificate the issue sweeps add */
	    cmocka_unit_test(test_list),          cmocka_unit_test(test_init),
	    cmocka_unit_test(test_open),          cmocka_unit_test(test_issue),
	    cmocka_unit_test(test_issue_refused), cmocka_unit_test(test_revoke),
	    cmocka_unit_test(test_crl),           cmocka_unit_test(test_cert_json),
	    cmocka_unit_test(test_policy),        cmocka_unit_test(test_issue_bad_time),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
