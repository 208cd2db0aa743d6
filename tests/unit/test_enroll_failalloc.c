/*
 * test_enroll_failalloc.c — what `tokengate enroll` writes and prints
 * (host/enroll/enroll.c: --out-dir files and commands, text and --json;
 * the --json result of an issued certificate) with each allocation
 * failing in turn, OpenSSL's and jansson's included: a clean error with a
 * message, or the same result as without the failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "enroll-int.h"
#include "tg_err.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

#define ID "spiffe://example.org/dev/alice"

struct ctx {
	char dir[256], od[300];
	struct tg_enroll_opts o;
	struct tg_enroll_result res;
	struct tg_prov prov;
	X509_REQ *csr;
	X509 *cert;
	int piv;  /* attestation and F9 given (a PIV key), else an HSM key */
	int what; /* 0: --out-dir, 1: the --json result */
};

/* One call with stdout sent to /dev/null. */
static int
op(void *arg, struct tg_error *err)
{
	struct ctx *c = arg;
	char p[400];
	struct stat st;
	int so, fd, r;

	tg_failalloc_hold(1);
	fflush(stdout);
	assert_true((so = dup(STDOUT_FILENO)) >= 0);
	assert_true((fd = open("/dev/null", O_WRONLY)) >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	close(fd);
	tg_failalloc_hold(0);
	if (c->what == 0)
		r = tg_enroll_out_dir_write(&c->o, c->csr, c->piv ? c->cert : NULL,
		                            c->piv ? c->cert : NULL, &c->res, err);
	else
		r = tg_enroll_result_json(&c->o, &c->res, err);
	tg_failalloc_hold(1);
	fflush(stdout);
	assert_true(dup2(so, STDOUT_FILENO) >= 0);
	close(so);
	if (r == 0 && c->what == 0) {
		snprintf(p, sizeof(p), "%s/csr.pem", c->od);
		assert_int_equal(stat(p, &st), 0);
		assert_true(st.st_size > 0);
		snprintf(p, sizeof(p), "%s/f9.pem", c->od);
		assert_int_equal(stat(p, &st) == 0, c->piv);
	}
	tg_failalloc_hold(0);
	return r;
}

static void
test_sweeps(void **state)
{
	struct ctx c;
	EVP_PKEY *k;
	X509_NAME *n;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(tg_test_tmpdir("tg-enroll-fa", c.dir, sizeof(c.dir)), 0);
	snprintf(c.od, sizeof(c.od), "%s/out", c.dir);
	assert_non_null(k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	assert_non_null(c.csr = X509_REQ_new());
	assert_int_equal(X509_REQ_set_pubkey(c.csr, k), 1);
	assert_true(X509_REQ_sign(c.csr, k, EVP_sha256()) > 0);
	assert_non_null(c.cert = X509_new());
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(c.cert), 99), 1);
	n = X509_get_subject_name(c.cert);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"x", -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(c.cert, n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(c.cert), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(c.cert), 3600));
	assert_int_equal(X509_set_pubkey(c.cert, k), 1);
	assert_true(X509_sign(c.cert, k, EVP_sha256()) > 0);
	c.o.id = ID;
	c.o.out_dir = c.od;
	c.res.algorithm = "ec-p256";
	c.res.key = "generated";
	c.res.token_serial = 77;
	c.res.leaf = c.cert;
	c.res.prov = &c.prov;

	/* PIV, text then --json */
	c.piv = 1;
	c.o.reader = "Virtual PCD 00 00";
	c.o.slot = 0x9a;
	c.o.allow_default = 1;
	assert_true(tg_failalloc_sweep("enroll --out-dir PIV", op, &c) > 0);
	c.o.json = 1;
	assert_true(tg_failalloc_sweep("enroll --out-dir PIV --json", op, &c) > 0);
	/* HSM key whose URI has a pin-value (redacted), --json */
	c.piv = 0;
	snprintf(c.od, sizeof(c.od), "%s/out-hsm", c.dir);
	c.o.reader = NULL;
	c.o.key_uri = "pkcs11:token=tg;object=svc;pin-value=1234";
	assert_true(tg_failalloc_sweep("enroll --out-dir HSM --json", op, &c) > 0);
	/* the --json result of an issued certificate */
	c.what = 1;
	c.o.cert_out = "/tmp/cert.pem";
	assert_true(tg_failalloc_sweep("enroll --json result", op, &c) > 0);

	X509_free(c.cert);
	X509_REQ_free(c.csr);
	EVP_PKEY_free(k);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c.dir);
		assert_int_equal(system(cmd), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sweeps),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
