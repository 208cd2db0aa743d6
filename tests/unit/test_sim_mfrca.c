/*
 * test_sim_mfrca.c — tokengate-sim's manufacturer CA (firmware-sim/mfrca.c):
 * create writes a matching CA key (0600) and certificate (0644) and never
 * overwrites; load takes PEM and DER and refuses missing, malformed and
 * mismatched files with a message naming the file and the fix.
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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mfrca.h"
#include "tg_secret.h"
#include "tg_test.h"

struct fx {
	char dir[64];
	char cert[128], key[128], other[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (tg_test_tmpdir("tg-mfrca", f->dir, sizeof(f->dir)) != 0) {
		free(f);
		return -1;
	}
	snprintf(f->cert, sizeof(f->cert), "%s/mfr.crt", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/mfr.key", f->dir);
	snprintf(f->other, sizeof(f->other), "%s/other", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tg_test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
write_bytes(const char *path, const void *p, size_t n, mode_t mode)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Loads the pair and checks the DER it gives back belongs together. */
static int
load_pair(const char *cert, const char *key, struct tg_error *err)
{
	uint8_t *cd = NULL, *kd = NULL;
	size_t cl = 0, kl = 0;
	const uint8_t *p;
	X509 *x;
	EVP_PKEY *k;
	int r;

	tg_error_clear(err);
	r = tg_sim_mfrca_load(cert, key, &cd, &cl, &kd, &kl, err);
	if (r != 0) {
		assert_null(cd);
		assert_null(kd);
		return r;
	}
	p = cd;
	x = d2i_X509(NULL, &p, (long)cl);
	assert_non_null(x);
	assert_ptr_equal(p, cd + cl);
	p = kd;
	k = d2i_AutoPrivateKey(NULL, &p, (long)kl);
	assert_non_null(k);
	assert_int_equal(X509_check_private_key(x, k), 1);
	EVP_PKEY_free(k);
	X509_free(x);
	tg_freezero(cd, cl);
	tg_freezero(kd, kl);
	return 0;
}

static void
test_create_and_load(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	struct stat st;
	X509 *x;
	FILE *fp;

	tg_error_clear(&err);
	assert_int_equal(tg_sim_mfrca_create(f->cert, f->key, &err), 0);
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* a CA certificate (the profile verifiers need) */
	fp = fopen(f->cert, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	assert_int_equal(X509_check_ca(x), 1);
	assert_true((X509_get_key_usage(x) & KU_KEY_CERT_SIGN) != 0);
	X509_free(x);
	assert_int_equal(load_pair(f->cert, f->key, &err), 0);
	assert_int_equal(tg_test_dir_count(f->dir), 2);
}

static void
test_create_refuses_existing(void **state)
{
	struct fx *f = *state;
	struct tg_error err;

	/* the key exists: refused, the existing file untouched */
	write_bytes(f->key, "keep", 4, 0600);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_mfrca_create(f->cert, f->key, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, f->key));
	assert_non_null(strstr(err.msg, "already exists"));
	assert_non_null(strstr(err.msg, "--manufacturer-key"));
	assert_int_equal(tg_test_dir_count(f->dir), 1);
	assert_int_equal(unlink(f->key), 0);

	/* the certificate exists: refused, and the key just written removed */
	write_bytes(f->cert, "keep", 4, 0644);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_mfrca_create(f->cert, f->key, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, f->cert));
	assert_non_null(strstr(err.msg, "already exists"));
	assert_int_not_equal(access(f->key, F_OK), 0);
	assert_int_equal(tg_test_dir_count(f->dir), 1);

	/* a directory that does not exist: the writer's error */
	snprintf(f->other, sizeof(f->other), "%s/no/such/mfr.key", f->dir);
	tg_error_clear(&err);
	assert_int_not_equal(tg_sim_mfrca_create(f->cert, f->other, &err), 0);
	assert_non_null(strstr(err.msg, f->other));
	assert_int_equal(tg_test_dir_count(f->dir), 1);
}

static void
test_load_pem_der(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char dcert[160], dkey[160];
	uint8_t *der = NULL;
	int n;
	X509 *x;
	EVP_PKEY *k;
	FILE *fp;

	assert_int_equal(tg_sim_mfrca_create(f->cert, f->key, &err), 0);
	fp = fopen(f->cert, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	fp = fopen(f->key, "r");
	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	assert_non_null(k);
	snprintf(dcert, sizeof(dcert), "%s/mfr.der", f->dir);
	snprintf(dkey, sizeof(dkey), "%s/mfrkey.der", f->dir);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	write_bytes(dcert, der, (size_t)n, 0644);
	OPENSSL_free(der);
	der = NULL;
	n = i2d_PrivateKey(k, &der);
	assert_true(n > 0);
	write_bytes(dkey, der, (size_t)n, 0600);
	OPENSSL_clear_free(der, (size_t)n);
	/* DER certificate and DER (traditional) key are read as well */
	assert_int_equal(load_pair(dcert, dkey, &err), 0);
	assert_int_equal(load_pair(dcert, f->key, &err), 0);
	/* a key readable by others still loads (with a warning) */
	assert_int_equal(chmod(dkey, 0644), 0);
	assert_int_equal(load_pair(f->cert, dkey, &err), 0);
	EVP_PKEY_free(k);
	X509_free(x);
}

static void
test_load_errors(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char other_crt[160], other_key[160];

	/* missing certificate */
	assert_int_equal(load_pair(f->cert, f->key, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open manufacturer certificate"));
	assert_non_null(strstr(err.msg, f->cert));
	assert_non_null(strstr(err.msg, "No such file"));

	assert_int_equal(tg_sim_mfrca_create(f->cert, f->key, &err), 0);
	/* missing key */
	assert_int_equal(load_pair(f->cert, f->other, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open manufacturer key"));
	assert_non_null(strstr(err.msg, f->other));

	/* not a certificate: neither PEM nor DER */
	write_bytes(f->other, "not a certificate\n", 18, 0600);
	assert_int_equal(load_pair(f->other, f->key, &err), TG_ERR_FORMAT);
	assert_non_null(strstr(err.msg, f->other));
	assert_non_null(strstr(err.msg, "is not a certificate in PEM or DER"));
	assert_non_null(strstr(err.msg, "--manufacturer-cert"));

	/* not a key (the certificate passed as the key) */
	assert_int_equal(load_pair(f->cert, f->cert, &err), TG_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "is not an unencrypted private key"));
	assert_non_null(strstr(err.msg, "--manufacturer-key"));
	assert_int_equal(load_pair(f->cert, f->other, &err), TG_ERR_FORMAT);
	assert_non_null(strstr(err.msg, f->other));

	/* a key of another CA */
	snprintf(other_crt, sizeof(other_crt), "%s/o.crt", f->dir);
	snprintf(other_key, sizeof(other_key), "%s/o.key", f->dir);
	assert_int_equal(tg_sim_mfrca_create(other_crt, other_key, &err), 0);
	assert_int_equal(load_pair(f->cert, other_key, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "does not belong to certificate"));
	assert_non_null(strstr(err.msg, other_key));
	assert_non_null(strstr(err.msg, f->cert));
}

/* A certificate that is not a CA still loads (the simulator warns). */
static void
test_load_non_ca(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *fp;

	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)"leaf", -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	fp = fopen(f->cert, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	fp = fopen(f->key, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(chmod(f->key, 0600), 0);
	assert_int_equal(load_pair(f->cert, f->key, &err), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_and_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_refuses_existing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_pem_der, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_non_ca, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
