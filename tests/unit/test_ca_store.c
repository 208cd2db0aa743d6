/*
 * test_ca_store.c — the CA directory (host/ca/store.c) through its API, in
 * temporary directories: init and its refusals (a pin-value URI, a taken
 * or unsafe directory, a path that cannot be a directory), open and every
 * check of the CA's own files (missing, unsafe mode, symbolic link, wrong
 * type, garbage, a key of another CA), record, revoke, list and the CRL
 * with their state files broken in each way they refuse, and the small
 * helpers (serials, reasons, statuses, extensions, digests). Each refusal
 * asserts its code and what its message says.
 */
#include <ctype.h>
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
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tg_ca_io.h"
#include "tg_ca_store.h"
#include "tg_test.h"

/* Asserts r == want and that err.msg holds part. */
#define assert_err(r, err, want, part)                                                             \
	do {                                                                                       \
		int r_ = (r);                                                                      \
		if (r_ != (want) || strstr((err).msg, (part)) == NULL)                             \
			fail_msg("got %d '%s', want %d '%s'", r_, (err).msg, (want), (part));      \
	} while (0)

static void
put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char p[4096];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	(void)unlink(p);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
}

/* Text of dir/name (static buffer), "" when absent. */
static const char *
get(const char *dir, const char *name)
{
	static char buf[8192];
	char p[4096];
	size_t n = 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	buf[0] = '\0';
	if ((f = fopen(p, "r")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static mode_t
mode_of(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(lstat(p, &st), 0);
	return st.st_mode & 07777;
}

/* Removes a CA directory made here (two levels). */
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

/* A new CA in a new temporary directory (dir, size n). */
static void
ca_make(const char *name, const char *td, char *dir, size_t n)
{
	struct tg_ca_init_opts o;
	struct tg_error err;

	assert_int_equal(tg_test_tmpdir(name, dir, n), 0);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.trust_domain = td;
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("ca init: %s", err.msg);
}

static struct tg_ca_store *
ca_open(const char *dir, int need_key)
{
	struct tg_ca_store *s = NULL;
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_ca_store_open(dir, need_key, &s, &err) != 0)
		fail_msg("open %s: %s", dir, err.msg);
	return s;
}

/*
 * A leaf with URI SAN uri (NULL: none) issued by ca/cakey, valid from
 * nb to na seconds from now, serial ser (0: random).
 */
static X509 *
leaf_make(X509 *ca, EVP_PKEY *cakey, const char *uri, long nb, long na, long ser)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	char san[300];

	assert_true(k != NULL && x != NULL);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	if (ser != 0)
		assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ser), 1);
	else
		assert_int_equal(tg_ca_serial_random(x, NULL), 0);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	if (uri != NULL) {
		X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
		snprintf(san, sizeof(san), "URI:%s", uri);
		assert_int_equal(tg_ca_ext_add(x, &ctx, NID_subject_alt_name, san, NULL), 0);
	}
	assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

static void
test_init_open(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_ca_store *s;
	struct tg_error err;
	char dir[64], sub[128], path[256];
	X509 *ca;
	BASIC_CONSTRAINTS *bc;

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-test-ca-store", dir, sizeof(dir)), 0);
	/* a directory that does not exist yet is created 0700 */
	snprintf(sub, sizeof(sub), "%s/ca", dir);
	memset(&o, 0, sizeof(o));
	o.dir = sub;
	o.trust_domain = "example.org";
	o.validity_days = 30;
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init: %s", err.msg);
	assert_int_equal(mode_of(dir, "ca"), 0700);
	assert_int_equal(mode_of(sub, "ca.key"), 0600);
	assert_non_null(strstr(get(sub, "ca.key"), "BEGIN PRIVATE KEY"));
	assert_non_null(strstr(get(sub, "policy.yaml"), "example.org"));
	assert_int_equal(tg_test_dir_count(sub), 5); /* ca.pem ca.key policy issued roots */

	/* a second init is refused and changes nothing */
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_INVALID_ARG, "already exists");
	assert_int_equal(tg_test_dir_count(sub), 5);

	s = ca_open(sub, 1);
	ca = tg_ca_store_cert(s);
	assert_non_null(tg_ca_store_key(s));
	assert_int_equal(X509_check_private_key(ca, tg_ca_store_key(s)), 1);
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_check_ca(ca) >= 1);
	assert_true((X509_get_key_usage(ca) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
	            (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	assert_string_equal(tg_ca_store_policy(s)->trust_domain, "example.org");
	assert_int_equal(tg_ca_store_roots_dir(s, path, sizeof(path)), 0);
	assert_int_equal(strncmp(path, sub, strlen(sub)), 0);
	assert_string_equal(path + strlen(sub), "/attestation-roots");
	/* too small a buffer for the roots path is refused */
	assert_int_equal(tg_ca_store_roots_dir(s, path, 8), TG_ERR_INVALID_ARG);
	tg_ca_store_free(s);

	/* without the key: the key is checked but not loaded */
	s = ca_open(sub, 0);
	assert_null(tg_ca_store_key(s));
	tg_ca_store_free(s);
	tg_ca_store_free(NULL);

	rm_ca(sub);
	tg_test_tmpdir_remove(dir);
}

/* An existing empty directory of the user is made 0700; a non-empty one
 * writable by others is refused with its fix; a link is not followed. */
static void
test_init_dir(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_error err;
	char dir[64], sub[128], link[128];

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-test-ca-store", dir, sizeof(dir)), 0);
	snprintf(sub, sizeof(sub), "%s/ca", dir);
	assert_int_equal(mkdir(sub, 0777), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	memset(&o, 0, sizeof(o));
	o.dir = sub;
	o.trust_domain = "example.org";
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init in an empty 0777 directory: %s", err.msg);
	assert_int_equal(mode_of(dir, "ca"), 0700);
	rm_ca(sub);

	/* non-empty and world-writable: refused, its file left alone */
	assert_int_equal(mkdir(sub, 0700), 0);
	put(sub, "notes.txt", "mine\n", 0644);
	assert_int_equal(chmod(sub, 0777), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_PERMISSION, "chmod");
	assert_int_equal(mode_of(dir, "ca"), 0777);
	assert_int_equal(tg_test_dir_count(sub), 1);
	assert_int_equal(chmod(sub, 0700), 0);

	/* a non-empty directory of the right mode is fine */
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init beside a file: %s", err.msg);
	rm_ca(sub);

	/* a symbolic link to a directory is refused */
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(sub, link), 0);
	o.dir = link;
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_PERMISSION, "symbolic link");
	assert_int_equal(tg_test_dir_count(sub), 0);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(rmdir(sub), 0);

	/* a directory under a regular file cannot be created */
	put(dir, "file", "x\n", 0644);
	snprintf(sub, sizeof(sub), "%s/file/ca", dir);
	o.dir = sub;
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_IO, "cannot create directory");
	assert_non_null(strstr(err.msg, "Not a directory"));
	tg_test_tmpdir_remove(dir);
}

static void
test_init_refusals(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_error err;
	char dir[64], sub[128], roots[256], *longp;
	size_t i;

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-test-ca-store", dir, sizeof(dir)), 0);
	snprintf(sub, sizeof(sub), "%s/ca", dir);
	memset(&o, 0, sizeof(o));
	o.dir = sub;
	o.trust_domain = "example.org";

	/* a URI with its PIN would store the PIN: refused before anything */
	o.key_uri = "pkcs11:token=ca;object=ca;pin-value=1234";
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_INVALID_ARG, "pin-value");
	assert_int_equal(access(sub, F_OK), -1);
	o.key_uri = NULL;

	/* a trust domain that is not one */
	o.trust_domain = "Not A Domain";
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_store_init(&o, &err), 0);
	assert_non_null(strstr(err.msg, "Not A Domain"));
	assert_int_equal(access(sub, F_OK), -1);
	o.trust_domain = "example.org";

	/* a roots directory writable by others is refused, as every open would */
	snprintf(roots, sizeof(roots), "%s/roots", dir);
	assert_int_equal(mkdir(roots, 0700), 0);
	assert_int_equal(chmod(roots, 0777), 0);
	o.roots_dir = roots;
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_PERMISSION,
	           "attestation roots directory");
	assert_int_equal(access(sub, F_OK) == 0 ? tg_test_dir_count(sub) : 0, 0);
	/* a regular file where the roots directory should be */
	assert_int_equal(rmdir(roots), 0);
	put(dir, "roots", "x\n", 0644);
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_IO, "is not a directory");
	assert_int_equal(unlink(roots), 0);

	/* a roots path longer than any path */
	longp = malloc(5000);
	assert_non_null(longp);
	for (i = 0; i < 4999; i++)
		longp[i] = (i % 8 == 0) ? '/' : 'r';
	longp[4999] = '\0';
	o.roots_dir = longp;
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_INVALID_ARG, "roots path '/rrrrrrr/");
	/* one that fits a path but not the policy (1024): refused */
	longp[1500] = '\0';
	tg_error_clear(&err);
	assert_err(tg_ca_store_init(&o, &err), err, TG_ERR_INVALID_ARG, "roots path too long");
	snprintf(roots, sizeof(roots), "%s/ca.pem", sub);
	assert_int_equal(access(roots, F_OK), -1);
	free(longp);
	o.roots_dir = NULL;
	rm_ca(sub);

	/* ca.key cannot be written (a directory is there) */
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(roots, sizeof(roots), "%s/ca.key", sub);
	assert_int_equal(mkdir(roots, 0700), 0);
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_store_init(&o, &err), 0);
	assert_non_null(strstr(err.msg, "ca.key"));
	snprintf(roots, sizeof(roots), "%s/ca.pem", sub);
	assert_int_equal(access(roots, F_OK), -1);
	snprintf(roots, sizeof(roots), "%s/ca.key", sub);
	assert_int_equal(rmdir(roots), 0);

	/* a file where the default roots directory goes: init leaves it, the
	 * next open finds it is no directory */
	put(sub, "attestation-roots", "x\n", 0644);
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("init: %s", err.msg);
	{
		struct tg_ca_store *s = NULL;

		tg_error_clear(&err);
		assert_err(tg_ca_store_open(sub, 0, &s, &err), err, TG_ERR_IO,
		           "is not a directory");
		assert_null(s);
	}
	rm_ca(sub);
	tg_test_tmpdir_remove(dir);
}

/* Every check of open, each on a CA broken in one way. */
static void
test_open_refusals(void **state)
{
	struct tg_ca_store *s = NULL;
	struct tg_error err;
	char dir[64], other[64], p[256], q[256];

	(void)state;
	ca_make("tg-test-ca-store", "example.org", dir, sizeof(dir));
	ca_make("tg-test-ca-store2", "other.org", other, sizeof(other));

	tg_error_clear(&err);
	assert_err(tg_ca_store_open("/nonexistent/tg-ca", 0, &s, &err), err, TG_ERR_CONFIG,
	           "is not a CA directory");
	assert_null(s);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open("/tmp", 0, &s, &err), err, TG_ERR_PERMISSION, "/tmp");

	/* ca.pem: garbage, a symbolic link, writable by others */
	snprintf(p, sizeof(p), "%s/ca.pem", dir);
	snprintf(q, sizeof(q), "%s/ca.pem.good", dir);
	assert_int_equal(rename(p, q), 0);
	put(dir, "ca.pem", "not a certificate\n", 0644);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_CONFIG, "is not a CA directory");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(q, p), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "symbolic link");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rename(q, p), 0);
	assert_int_equal(chmod(p, 0666), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "chmod go-w");
	assert_int_equal(chmod(p, 0644), 0);

	/* policy.yaml: writable by group, missing, not a policy */
	snprintf(p, sizeof(p), "%s/policy.yaml", dir);
	snprintf(q, sizeof(q), "%s/policy.yaml.good", dir);
	assert_int_equal(chmod(p, 0664), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "CA policy");
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(rename(p, q), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_NOT_FOUND, "does not exist");
	put(dir, "policy.yaml", "- just a list\n", 0644);
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_store_open(dir, 0, &s, &err), 0);
	assert_non_null(strstr(err.msg, "policy.yaml"));
	assert_int_equal(rename(q, p), 0);

	/* ca.key: readable by others, not a key, another CA's key, missing */
	snprintf(p, sizeof(p), "%s/ca.key", dir);
	assert_int_equal(chmod(p, 0640), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "chmod 600");
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 1, &s, &err), err, TG_ERR_PERMISSION, "chmod 600");
	assert_int_equal(chmod(p, 0600), 0);
	snprintf(q, sizeof(q), "%s/ca.key.good", dir);
	assert_int_equal(rename(p, q), 0);
	put(dir, "ca.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 1, &s, &err), err, TG_ERR_CONFIG,
	           "is not a PEM private key");
	assert_null(s);
	snprintf(p, sizeof(p), "%s/ca.key", other);
	snprintf(q, sizeof(q), "%s/ca.key", dir);
	put(dir, "ca.key", get(other, "ca.key"), 0600);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 1, &s, &err), err, TG_ERR_CONFIG,
	           "the CA key does not match");
	assert_int_equal(unlink(q), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_NOT_FOUND, "ca.key");
	snprintf(p, sizeof(p), "%s/ca.key.good", dir);
	assert_int_equal(rename(p, q), 0);

	/* ca.key.uri beside it: checked; with need_key 0 the HSM is not asked */
	put(dir, "ca.key.uri", "pkcs11:token=ca;object=ca", 0644);
	s = ca_open(dir, 0);
	assert_null(tg_ca_store_key(s));
	tg_ca_store_free(s);
	s = NULL;
	snprintf(p, sizeof(p), "%s/ca.key.uri", dir);
	assert_int_equal(chmod(p, 0646), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "CA key URI file");
	assert_int_equal(unlink(p), 0);

	/* the roots directory: a link is refused; a missing one is left to the
	 * commands that need it */
	snprintf(p, sizeof(p), "%s/attestation-roots", dir);
	assert_int_equal(rmdir(p), 0);
	s = ca_open(dir, 1);
	tg_ca_store_free(s);
	s = NULL;
	snprintf(q, sizeof(q), "%s/issued", dir);
	assert_int_equal(symlink(q, p), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "symbolic link");
	assert_int_equal(unlink(p), 0);

	/* the directory itself writable by others */
	assert_int_equal(chmod(dir, 0777), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(dir, 0, &s, &err), err, TG_ERR_PERMISSION, "CA directory");
	assert_int_equal(chmod(dir, 0700), 0);
	assert_null(s);

	rm_ca(dir);
	rm_ca(other);
}

/* record, revoke, list, CRL and cert_check on one CA. */
static void
test_record_revoke_list_crl(void **state)
{
	struct tg_ca_store *s, *o;
	struct tg_ca_issued *list = NULL;
	struct tg_error err;
	struct stat st;
	char dir[64], other[64], path[4200], hex[3][TG_CA_SERIAL_HEX_MAX + 1], name[200];
	X509 *leaf[3], *noid, *foreign, *forged;
	X509_CRL *crl = NULL;
	STACK_OF(X509_REVOKED) * revs;
	ASN1_INTEGER *num;
	ASN1_ENUMERATED *why;
	size_t n = 0, i;
	int crit = 0;

	(void)state;
	ca_make("tg-test-ca-store", "example.org", dir, sizeof(dir));
	ca_make("tg-test-ca-store2", "other.org", other, sizeof(other));
	s = ca_open(dir, 1);
	o = ca_open(other, 1);

	/* three leaves: oldest first is leaf[1], then [0], then the expired [2] */
	leaf[0] = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(s), "spiffe://example.org/dev/a",
	                    -100, 3600, 0);
	leaf[1] = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(s), "spiffe://example.org/dev/b",
	                    -200, 3600, 0);
	leaf[2] = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(s), "spiffe://example.org/dev/c",
	                    -50, -10, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(
		    tg_ca_serial_hex(X509_get0_serialNumber(leaf[i]), hex[i], sizeof(hex[i])), 0);
		tg_error_clear(&err);
		if (tg_ca_store_record(s, leaf[i], i == 0 ? path : NULL, sizeof(path), &err) != 0)
			fail_msg("record: %s", err.msg);
		snprintf(name, sizeof(name), "issued/%s.json", hex[i]);
		assert_non_null(strstr(get(dir, name), hex[i]));
	}
	snprintf(name, sizeof(name), "%s/issued/%s.pem", dir, hex[0]);
	assert_string_equal(path, name);
	/* recording a serial twice is refused */
	tg_error_clear(&err);
	assert_err(tg_ca_store_record(s, leaf[0], NULL, 0, &err), err, TG_ERR_INTERNAL,
	           "already issued");
	/* a leaf without an identity is not recorded */
	noid = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(s), NULL, -10, 3600, 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_record(s, noid, NULL, 0, &err), err, TG_ERR_IDENTITY, "URI SAN");
	snprintf(path, sizeof(path), "%s/issued", dir);
	assert_int_equal(tg_test_dir_count(path), 6);

	/* cert_check: ours, another CA's, a forgery naming us */
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_cert_check(s, leaf[0], &err), 0);
	foreign = leaf_make(tg_ca_store_cert(o), tg_ca_store_key(o), "spiffe://example.org/dev/x",
	                    -10, 3600, 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_cert_check(s, foreign, &err), err, TG_ERR_NOT_FOUND,
	           "was not issued by this CA");
	forged = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(o), "spiffe://example.org/dev/x",
	                   -10, 3600, 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_cert_check(s, forged, &err), err, TG_ERR_NOT_FOUND,
	           "signature does not verify");

	/* revoke: bad text, unknown serial, then the second leaf (lower case,
	 * 0x prefix), then again */
	tg_error_clear(&err);
	assert_err(tg_ca_store_revoke(s, "xyz", TG_CA_REASON_UNSPECIFIED, &err), err,
	           TG_ERR_INVALID_ARG, "is not a hexadecimal number");
	tg_error_clear(&err);
	assert_err(tg_ca_store_revoke(s, "0BADBEEF", TG_CA_REASON_UNSPECIFIED, &err), err,
	           TG_ERR_NOT_FOUND, "issued no certificate with serial 0BADBEEF");
	assert_int_equal(access(get(dir, "revoked.txt"), F_OK), -1);
	snprintf(name, sizeof(name), "0x%s", hex[1]);
	for (i = 0; name[i] != '\0'; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	tg_error_clear(&err);
	if (tg_ca_store_revoke(s, name, TG_CA_REASON_KEY_COMPROMISE, &err) != 0)
		fail_msg("revoke: %s", err.msg);
	assert_non_null(strstr(get(dir, "revoked.txt"), hex[1]));
	assert_non_null(strstr(get(dir, "revoked.txt"), " keyCompromise\n"));
	tg_error_clear(&err);
	assert_err(tg_ca_store_revoke(s, hex[1], TG_CA_REASON_SUPERSEDED, &err), err,
	           TG_ERR_INVALID_ARG, "is already revoked");
	/* a list whose last line lacks its newline gets one before the next */
	snprintf(path, sizeof(path), "%s 1700000000", hex[1]);
	put(dir, "revoked.txt", path, 0644);
	tg_error_clear(&err);
	if (tg_ca_store_revoke(s, hex[2], TG_CA_REASON_UNSPECIFIED, &err) != 0)
		fail_msg("revoke: %s", err.msg);
	snprintf(path, sizeof(path), "%s 1700000000\n%s ", hex[1], hex[2]);
	assert_int_equal(strncmp(get(dir, "revoked.txt"), path, strlen(path)), 0);
	assert_null(strstr(get(dir, "revoked.txt") + strlen(path), " "));

	/* list: order by notBefore, statuses, revoked wins over expired */
	tg_error_clear(&err);
	if (tg_ca_store_list(s, time(NULL), &list, &n, &err) != 0)
		fail_msg("list: %s", err.msg);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].serial, hex[1]);
	assert_int_equal(list[0].status, TG_CA_STATUS_REVOKED);
	assert_int_equal(list[0].revoked_at, 1700000000LL);
	assert_int_equal(list[0].reason, TG_CA_REASON_UNSPECIFIED);
	assert_string_equal(list[1].serial, hex[0]);
	assert_int_equal(list[1].status, TG_CA_STATUS_VALID);
	assert_string_equal(list[2].serial, hex[2]);
	assert_int_equal(list[2].status, TG_CA_STATUS_REVOKED);
	tg_ca_issued_free(list, n);
	/* seen from two hours on, the valid one has expired */
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_list(s, time(NULL) + 7200, &list, &n, &err), 0);
	assert_int_equal(list[1].status, TG_CA_STATUS_EXPIRED);
	tg_ca_issued_free(list, n);

	/* CRL: numbered 1 then 2, both revoked serials, signed by the CA */
	for (i = 1; i <= 2; i++) {
		tg_error_clear(&err);
		if (tg_ca_store_crl(s, &crl, &err) != 0)
			fail_msg("crl: %s", err.msg);
		assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(tg_ca_store_cert(s))), 1);
		num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
		assert_non_null(num);
		assert_int_equal(ASN1_INTEGER_get(num), (long)i);
		ASN1_INTEGER_free(num);
		revs = X509_CRL_get_REVOKED(crl);
		assert_int_equal(sk_X509_REVOKED_num(revs), 2);
		/* unspecified: no reasonCode (RFC 5280 5.3.1) */
		why = X509_REVOKED_get_ext_d2i(sk_X509_REVOKED_value(revs, 0), NID_crl_reason,
		                               &crit, NULL);
		assert_null(why);
		X509_CRL_free(crl);
		crl = NULL;
	}
	assert_string_equal(get(dir, "crlnumber"), "2\n");

	/* a reason other than unspecified is in the CRL */
	put(dir, "revoked.txt", "", 0644);
	snprintf(path, sizeof(path), "%s 1700000000 privilegeWithdrawn\n", hex[0]);
	put(dir, "revoked.txt", path, 0644);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_crl(s, &crl, &err), 0);
	revs = X509_CRL_get_REVOKED(crl);
	assert_int_equal(sk_X509_REVOKED_num(revs), 1);
	why = X509_REVOKED_get_ext_d2i(sk_X509_REVOKED_value(revs, 0), NID_crl_reason, &crit, NULL);
	assert_non_null(why);
	assert_int_equal(ASN1_ENUMERATED_get(why), TG_CA_REASON_PRIVILEGE_WITHDRAWN);
	ASN1_ENUMERATED_free(why);
	X509_CRL_free(crl);
	crl = NULL;

	/* crlnumber that is no number, or at its limit: refused, not reused */
	{
		static const char *const bad[] = {"x\n",
		                                  "-1\n",
		                                  "12abc\n",
		                                  "5\n6\n",
		                                  "9223372036854775807\n",
		                                  "99999999999999999999\n",
		                                  "\n"};
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			put(dir, "crlnumber", bad[i], 0644);
			tg_error_clear(&err);
			crl = NULL;
			if (tg_ca_store_crl(s, &crl, &err) != TG_ERR_CONFIG ||
			    strstr(err.msg, "is not a number") == NULL)
				fail_msg("crlnumber '%s': %s", bad[i], err.msg);
			assert_null(crl);
			assert_string_equal(get(dir, "crlnumber"), bad[i]);
		}
	}
	put(dir, "crlnumber", "41", 0644);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_crl(s, &crl, &err), 0);
	X509_CRL_free(crl);
	crl = NULL;
	assert_string_equal(get(dir, "crlnumber"), "42\n");
	/* crlnumber group-writable: refused */
	put(dir, "crlnumber", "42\n", 0664);
	tg_error_clear(&err);
	assert_err(tg_ca_store_crl(s, &crl, &err), err, TG_ERR_PERMISSION, "CRL number file");
	put(dir, "crlnumber", "42\n", 0644);

	/* a broken revoked.txt stops revoke, list and crl alike */
	put(dir, "revoked.txt", "nonsense\n", 0644);
	tg_error_clear(&err);
	assert_err(tg_ca_store_revoke(s, hex[1], TG_CA_REASON_UNSPECIFIED, &err), err,
	           TG_ERR_FORMAT, "line 1");
	tg_error_clear(&err);
	assert_err(tg_ca_store_list(s, time(NULL), &list, &n, &err), err, TG_ERR_FORMAT,
	           "revoked.txt line 1");
	tg_error_clear(&err);
	assert_err(tg_ca_store_crl(s, &crl, &err), err, TG_ERR_FORMAT, "revoked.txt line 1");
	assert_string_equal(get(dir, "revoked.txt"), "nonsense\n");
	assert_string_equal(get(dir, "crlnumber"), "42\n");
	put(dir, "revoked.txt", "", 0666);
	tg_error_clear(&err);
	assert_err(tg_ca_store_list(s, time(NULL), &list, &n, &err), err, TG_ERR_PERMISSION,
	           "revocation list");
	put(dir, "revoked.txt", "", 0644);

	/* revoked.txt cannot be written: a directory is there */
	snprintf(path, sizeof(path), "%s/revoked.txt", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_store_revoke(s, hex[0], TG_CA_REASON_UNSPECIFIED, &err), 0);
	assert_non_null(strstr(err.msg, "revoked.txt"));
	assert_int_equal(rmdir(path), 0);

	/* list: a file in issued/ that is no certificate, then no issued/ */
	put(dir, "issued/junk.pem", "junk\n", 0644);
	put(dir, "issued/notes", "not a .pem, skipped\n", 0644);
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_store_list(s, time(NULL), &list, &n, &err), 0);
	assert_non_null(strstr(err.msg, "junk.pem"));
	snprintf(path, sizeof(path), "%s/issued", dir);
	tg_test_tmpdir_remove(path);
	assert_int_not_equal(stat(path, &st), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_list(s, time(NULL), &list, &n, &err), err, TG_ERR_IO,
	           "cannot read directory");
	/* and record cannot write there */
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_store_record(s, leaf[0], NULL, 0, &err), 0);
	assert_non_null(strstr(err.msg, "issued"));

	for (i = 0; i < 3; i++)
		X509_free(leaf[i]);
	X509_free(noid);
	X509_free(foreign);
	X509_free(forged);
	tg_ca_store_free(s);
	tg_ca_store_free(o);
	rm_ca(dir);
	rm_ca(other);
}

/* Many revocations: revoked.txt grows past its first allocation, and every
 * one of them is in the CRL. */
static void
test_many_revoked(void **state)
{
	struct tg_ca_store *s;
	struct tg_ca_issued *list = NULL;
	struct tg_error err;
	char dir[64], hex[TG_CA_SERIAL_HEX_MAX + 1];
	X509 *x;
	X509_CRL *crl = NULL;
	size_t n = 0;
	long i;

	(void)state;
	ca_make("tg-test-ca-store", "example.org", dir, sizeof(dir));
	s = ca_open(dir, 1);
	for (i = 1; i <= 20; i++) {
		x = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(s), "spiffe://example.org/dev/m",
		              -10, 3600, 0x1000 + i);
		tg_error_clear(&err);
		assert_int_equal(tg_ca_store_record(s, x, NULL, 0, &err), 0);
		assert_int_equal(tg_ca_serial_hex(X509_get0_serialNumber(x), hex, sizeof(hex)), 0);
		if (i > 3)
			assert_int_equal(tg_ca_store_revoke(s, hex, TG_CA_REASON_SUPERSEDED, &err),
			                 0);
		X509_free(x);
	}
	assert_int_equal(tg_ca_store_list(s, time(NULL), &list, &n, &err), 0);
	assert_int_equal(n, 20);
	/* same notBefore second: ordered by serial */
	for (i = 1; i < 20; i++)
		assert_true(strcmp(list[i - 1].serial, list[i].serial) < 0 ||
		            ASN1_TIME_compare(X509_get0_notBefore(list[i - 1].cert),
		                              X509_get0_notBefore(list[i].cert)) < 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(list[i].status,
		                 ASN1_INTEGER_get(X509_get0_serialNumber(list[i].cert)) > 0x1003
		                     ? TG_CA_STATUS_REVOKED
		                     : TG_CA_STATUS_VALID);
	tg_ca_issued_free(list, n);
	assert_int_equal(tg_ca_store_crl(s, &crl, &err), 0);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 17);
	X509_CRL_free(crl);
	tg_ca_store_free(s);
	rm_ca(dir);
}

/* A directory path of exactly len bytes under base (made, each level),
 * into out (size >= len + 1). */
static void
deep_dir(const char *base, size_t len, char *out)
{
	size_t n = strlen(base), c;

	memcpy(out, base, n + 1);
	while (n < len) {
		c = len - n - 1 > 200 ? 200 : len - n - 1;
		if (len - n - 1 - c > 0 && len - n - 1 - c < 2)
			c -= 2; /* leave room for one more "/d" */
		out[n++] = '/';
		memset(out + n, 'd', c);
		n += c;
		out[n] = '\0';
		assert_int_equal(mkdir(out, 0700), 0);
	}
	assert_int_equal(strlen(out), len);
}

/* Removes what deep_dir made, deepest first, down to base. */
static void
deep_rm(const char *base, char *path)
{
	char *slash;

	while (strlen(path) > strlen(base)) {
		assert_int_equal(rmdir(path), 0);
		slash = strrchr(path, '/');
		*slash = '\0';
	}
}

/*
 * A CA directory whose path leaves no room for the names under it (4078
 * bytes; paths end at 4096): init stops at the first name that does not
 * fit; open stops at the default roots directory; with absolute roots,
 * open works but revoke, record and list stop at the issued/ names. Each
 * is TG_ERR_INVALID_ARG or TG_ERR_CONFIG naming the path.
 */
static void
test_long_paths(void **state)
{
	struct tg_ca_init_opts o;
	struct tg_ca_store *s = NULL;
	struct tg_ca_issued *list = NULL;
	struct tg_error err;
	char base[64], sdir[128], roots[256], want[128], hex[TG_CA_SERIAL_HEX_MAX + 1];
	char *deep = malloc(4200), *ca = malloc(4300);
	X509 *leaf;
	size_t n = 0;

	(void)state;
	assert_true(deep != NULL && ca != NULL);
	assert_int_equal(tg_test_tmpdir("tg-test-ca-store", base, sizeof(base)), 0);
	deep_dir(base, 4070, deep);
	snprintf(ca, 4300, "%s/ca-long", deep);
	assert_int_equal(strlen(ca), 4078);
	snprintf(want, sizeof(want), "path '%s/", base);

	memset(&o, 0, sizeof(o));
	o.dir = ca;
	o.trust_domain = "example.org";
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_init(&o, &err), TG_ERR_INVALID_ARG);
	assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
	/* (moved where its paths fit, to be removed) */
	snprintf(sdir, sizeof(sdir), "%s/short", base);
	assert_int_equal(rename(ca, sdir), 0);
	rm_ca(sdir);

	/* a CA made where paths are short, moved there: the default roots
	 * directory no longer fits */
	snprintf(sdir, sizeof(sdir), "%s/short", base);
	o.dir = sdir;
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_init(&o, &err), 0);
	/* (removed here: its path will not fit there; a missing one is fine) */
	snprintf(roots, sizeof(roots), "%s/attestation-roots", sdir);
	assert_int_equal(rmdir(roots), 0);
	assert_int_equal(rename(sdir, ca), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_store_open(ca, 1, &s, &err), err, TG_ERR_CONFIG,
	           "attestation roots path 'attestation-roots' is too long");
	assert_null(s);
	assert_int_equal(rename(ca, sdir), 0);
	rm_ca(sdir);

	/* absolute roots: open works, the issued/ names do not fit */
	snprintf(roots, sizeof(roots), "%s/roots", base);
	assert_int_equal(mkdir(roots, 0700), 0);
	o.roots_dir = roots;
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_init(&o, &err), 0);
	s = ca_open(sdir, 1);
	leaf = leaf_make(tg_ca_store_cert(s), tg_ca_store_key(s), "spiffe://example.org/dev/l", -10,
	                 3600, 0);
	assert_int_equal(tg_ca_serial_hex(X509_get0_serialNumber(leaf), hex, sizeof(hex)), 0);
	assert_int_equal(tg_ca_store_record(s, leaf, NULL, 0, &err), 0);
	tg_ca_store_free(s);
	assert_int_equal(rename(sdir, ca), 0);
	s = ca_open(ca, 1);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_revoke(s, hex, TG_CA_REASON_UNSPECIFIED, &err),
	                 TG_ERR_INVALID_ARG);
	assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_record(s, leaf, NULL, 0, &err), TG_ERR_INVALID_ARG);
	assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_list(s, time(NULL), &list, &n, &err), TG_ERR_INVALID_ARG);
	assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
	assert_null(list);
	tg_ca_store_free(s);
	X509_free(leaf);

	/* back where its paths fit, to be removed */
	assert_int_equal(rename(ca, sdir), 0);
	rm_ca(sdir);
	assert_int_equal(rmdir(roots), 0);
	deep_rm(base, deep);
	tg_test_tmpdir_remove(base);
	free(deep);
	free(ca);
}

static void
test_helpers(void **state)
{
	struct tg_ca_revoked e;
	enum tg_ca_status st;
	enum tg_ca_reason rs;
	struct tg_error err;
	char buf[8], big[128];
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), *ec = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	ASN1_INTEGER *ai = ASN1_INTEGER_new();

	(void)state;
	assert_true(ed != NULL && ec != NULL && x != NULL && ai != NULL);
	assert_null(tg_ca_sign_md(ed));
	assert_ptr_equal(tg_ca_sign_md(ec), EVP_sha256());

	assert_string_equal(tg_ca_status_name(TG_CA_STATUS_VALID), "valid");
	assert_string_equal(tg_ca_status_name(TG_CA_STATUS_REVOKED), "revoked");
	assert_string_equal(tg_ca_status_name(TG_CA_STATUS_EXPIRED), "expired");
	assert_string_equal(tg_ca_status_name((enum tg_ca_status)42), "valid");
	assert_int_equal(tg_ca_status_parse("expired", &st), 0);
	assert_int_equal(st, TG_CA_STATUS_EXPIRED);
	assert_int_equal(tg_ca_status_parse("revoked", &st), 0);
	assert_int_equal(st, TG_CA_STATUS_REVOKED);
	assert_int_equal(tg_ca_status_parse("Valid", &st), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_status_parse("", &st), TG_ERR_INVALID_ARG);

	assert_int_equal(tg_ca_reason_parse("AFFILIATIONCHANGED", 18, &rs), 0);
	assert_int_equal(rs, TG_CA_REASON_AFFILIATION_CHANGED);
	assert_int_equal(tg_ca_reason_parse("cessationOfOperation", 20, &rs), 0);
	assert_int_equal(rs, TG_CA_REASON_CESSATION_OF_OPERATION);
	assert_int_equal(tg_ca_reason_parse("keyCompromis", 12, &rs), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_reason_parse("certificateHold", 15, &rs), TG_ERR_INVALID_ARG);
	assert_string_equal(tg_ca_reason_name((enum tg_ca_reason)6), "unspecified");
	assert_string_equal(tg_ca_reason_name(TG_CA_REASON_SUPERSEDED), "superseded");

	/* a line that does not fit is 0, not a truncated line */
	memset(&e, 0, sizeof(e));
	snprintf(e.serial, sizeof(e.serial), "0A");
	e.when = 1700000000LL;
	assert_int_equal(tg_ca_revoked_format(&e, buf, sizeof(buf)), 0);
	e.reason = TG_CA_REASON_KEY_COMPROMISE;
	assert_int_equal(tg_ca_revoked_format(&e, big, 20), 0);
	assert_int_equal(tg_ca_revoked_format(&e, big, sizeof(big)),
	                 strlen("0A 1700000000 keyCompromise\n"));
	assert_string_equal(big, "0A 1700000000 keyCompromise\n");

	/* serials: a buffer too small, a negative integer */
	assert_int_equal(ASN1_INTEGER_set(ai, 0x123456), 1);
	assert_int_equal(tg_ca_serial_hex(ai, buf, 4), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_serial_hex(ai, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "123456");
	assert_int_equal(tg_ca_serial_norm("123456789", buf, sizeof(buf)), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_serial_norm(NULL, buf, sizeof(buf)), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_serial_norm("0X1:2", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "12");

	/* an extension value OpenSSL does not take */
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	tg_error_clear(&err);
	assert_err(tg_ca_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:MAYBE", &err), err,
	           TG_ERR_CRYPTO, "cannot add extension basicConstraints=critical,CA:MAYBE");
	assert_int_equal(X509_get_ext_count(x), 0);
	assert_int_equal(tg_ca_ext_add(x, &ctx, NID_basic_constraints, "CA:FALSE", &err), 0);
	assert_int_equal(X509_get_ext_count(x), 1);

	ASN1_INTEGER_free(ai);
	X509_free(x);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ec);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_open),
	    cmocka_unit_test(test_init_dir),
	    cmocka_unit_test(test_init_refusals),
	    cmocka_unit_test(test_open_refusals),
	    cmocka_unit_test(test_record_revoke_list_crl),
	    cmocka_unit_test(test_many_revoked),
	    cmocka_unit_test(test_long_paths),
	    cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
