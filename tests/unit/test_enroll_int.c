/*
 * test_enroll_int.c — the helpers `tokengate enroll` shares inside
 * host/enroll/ (enroll-int.h), white-box: algorithm names, the printed
 * commands (and commands too long for their buffer), the PIN read, the
 * --out-dir files and commands for PIV and HSM keys (text and --json, the
 * pin-value of a key URI never printed), --cert-out, the --json result of
 * an issued certificate, and their refusals: an --out-dir or --cert-out
 * that cannot be written, a key URI or a command too long to print, a JSON
 * result that could not be built.
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
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "enroll-int.h"
#include "tg_err.h"
#include "tg_test.h"

#define ID "spiffe://example.org/dev/alice"

struct env {
	char dir[256];
	char out[512]; /* captured stdout */
	EVP_PKEY *key;
	X509_REQ *csr;
	X509 *cert;
};

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	X509_NAME *n;

	assert_non_null(e);
	assert_int_equal(tg_test_tmpdir("tg-enroll-int", e->dir, sizeof(e->dir)), 0);
	snprintf(e->out, sizeof(e->out), "%s/stdout", e->dir);
	assert_non_null(e->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	assert_non_null(e->csr = X509_REQ_new());
	assert_int_equal(X509_REQ_set_pubkey(e->csr, e->key), 1);
	assert_true(X509_REQ_sign(e->csr, e->key, EVP_sha256()) > 0);
	assert_non_null(e->cert = X509_new());
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(e->cert), 0x1234), 1);
	n = X509_get_subject_name(e->cert);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"att", -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(e->cert, n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(e->cert), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(e->cert), 3600));
	assert_int_equal(X509_set_pubkey(e->cert, e->key), 1);
	assert_true(X509_sign(e->cert, e->key, EVP_sha256()) > 0);
	*state = e;
	return 0;
}

static void
rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int
teardown(void **state)
{
	struct env *e = *state;

	rm_rf(e->dir);
	X509_free(e->cert);
	X509_REQ_free(e->csr);
	EVP_PKEY_free(e->key);
	free(e);
	return 0;
}

/* Sends stdout to e->out until capture_end; returns the saved fd. */
static int
capture_begin(struct env *e)
{
	int saved, fd;

	fflush(stdout);
	assert_true((saved = dup(STDOUT_FILENO)) >= 0);
	assert_true((fd = open(e->out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	close(fd);
	return saved;
}

/* Restores stdout; returns what was written (heap string). */
static char *
capture_end(struct env *e, int saved)
{
	char *buf;
	FILE *f;
	long n;

	fflush(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	assert_non_null(f = fopen(e->out, "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	assert_non_null(buf = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static int
exists(const char *dir, const char *name)
{
	char p[600];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static void
test_alg_name(void **state)
{
	(void)state;
	assert_string_equal(tg_enroll_alg_name(0x11), "ec-p256");
	assert_string_equal(tg_enroll_alg_name(0x14), "ec-p384");
	assert_string_equal(tg_enroll_alg_name(0x07), "rsa-2048");
	assert_string_equal(tg_enroll_alg_name(0x00), "unknown-algorithm");
	assert_string_equal(tg_enroll_alg_name(0xFE), "unknown-algorithm");
}

static void
test_cmd(void **state)
{
	struct tg_enroll_opts o;
	char buf[64], small[24];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.reader = "Yubico YubiKey";
	o.slot = 0x9a;
	assert_int_equal(tg_enroll_cmd_start(&o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "tokengate enroll --reader 'Yubico YubiKey' --slot '9a'");
	assert_int_equal(tg_enroll_cmd_add(buf, sizeof(buf), "--force", NULL), 0);
	assert_string_equal(buf, "tokengate enroll --reader 'Yubico YubiKey' --slot '9a' --force");
	/* no room for the next flag */
	assert_int_equal(tg_enroll_cmd_add(buf, sizeof(buf), "--existing-key", NULL),
	                 TG_ERR_NO_SPACE);
	/* no room for the reader */
	assert_int_equal(tg_enroll_cmd_start(&o, small, sizeof(small)), TG_ERR_NO_SPACE);
}

static void
test_pin_read(void **state)
{
	struct tg_enroll_opts o;
	struct tg_error err;
	char *pin = NULL;

	(void)state;
	memset(&o, 0, sizeof(o));
	setenv("TG_TEST_ENROLL_PIN", "123456", 1);
	o.pin_source = "env:TG_TEST_ENROLL_PIN";
	tg_error_clear(&err);
	assert_int_equal(tg_enroll_pin_read(&o, "R", &pin, &err), 0);
	assert_string_equal(pin, "123456");
	free(pin);
	pin = NULL;
	/* a source that does not parse */
	o.pin_source = "carrier-pigeon:x";
	assert_int_not_equal(tg_enroll_pin_read(&o, "R", &pin, &err), 0);
	assert_null(pin);
	assert_true(err.msg[0] != '\0');
	/* the variable named is not set */
	unsetenv("TG_TEST_ENROLL_PIN");
	o.pin_source = "env:TG_TEST_ENROLL_PIN";
	tg_error_clear(&err);
	assert_int_not_equal(tg_enroll_pin_read(&o, "R", &pin, &err), 0);
	assert_null(pin);
	assert_non_null(strstr(err.msg, "TG_TEST_ENROLL_PIN"));
}

/* --out-dir for a PIV key: the three files and the two commands, as text
 * and as --json. */
static void
test_out_dir_piv(void **state)
{
	struct env *e = *state;
	struct tg_enroll_result res;
	struct tg_enroll_opts o;
	struct tg_error err;
	char od[300], *out;
	json_t *j, *next;
	int saved, r;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	snprintf(od, sizeof(od), "%s/out", e->dir);
	o.out_dir = od;
	o.id = ID;
	o.reader = "Virtual PCD 00 00";
	o.slot = 0x9a;
	o.allow_default = 1;
	res.algorithm = "p256";
	res.key = "generated";
	res.token_serial = 1234;
	tg_error_clear(&err);
	saved = capture_begin(e);
	r = tg_enroll_out_dir_write(&o, e->csr, e->cert, e->cert, &res, &err);
	out = capture_end(e, saved);
	assert_int_equal(r, 0);
	assert_true(exists(od, "csr.pem") && exists(od, "attestation.pem") && exists(od, "f9.pem"));
	assert_non_null(strstr(out, "wrote csr.pem, attestation.pem, f9.pem to "));
	assert_non_null(strstr(out, "tokengate ca issue --dir CA_DIR --csr "));
	assert_non_null(strstr(out, "--id '" ID "' --attestation "));
	assert_non_null(strstr(out, "then store the certificate on the token:\n  tokengate "
	                            "enroll --reader 'Virtual PCD 00 00' --slot '9a' "
	                            "--install-cert "));
	assert_non_null(strstr(out, "/cert.pem' --allow-default-mgm-key\n"));
	free(out);

	/* the same as --json (the directory exists already) */
	o.json = 1;
	saved = capture_begin(e);
	r = tg_enroll_out_dir_write(&o, e->csr, e->cert, NULL, &res, &err);
	out = capture_end(e, saved);
	assert_int_equal(r, 0);
	assert_non_null(j = json_loads(out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "identity")), ID);
	assert_string_equal(json_string_value(json_object_get(j, "slot")), "9a");
	assert_string_equal(json_string_value(json_object_get(j, "token_serial")), "1234");
	assert_true(json_is_null(json_object_get(j, "key_uri")));
	assert_true(json_is_null(json_object_get(j, "f9")));
	assert_non_null(
	    strstr(json_string_value(json_object_get(j, "attestation")), "/out/attestation.pem"));
	next = json_object_get(j, "next");
	assert_int_equal(json_array_size(next), 2);
	assert_non_null(strstr(json_string_value(json_array_get(next, 1)), "--install-cert"));
	json_decref(j);
	free(out);
}

/* --out-dir for an HSM key: the URI's pin-value is not printed, a
 * pin-source names where the PIN comes from instead. */
static void
test_out_dir_hsm(void **state)
{
	struct env *e = *state;
	struct tg_enroll_result res;
	struct tg_enroll_opts o;
	struct tg_error err;
	char od[300], *out;
	int saved, r;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	snprintf(od, sizeof(od), "%s/hsm", e->dir);
	o.out_dir = od;
	o.id = ID;
	o.key_uri = "pkcs11:token=tg;object=svc;pin-value=secret-pin-9876";
	tg_error_clear(&err);
	saved = capture_begin(e);
	r = tg_enroll_out_dir_write(&o, e->csr, NULL, NULL, &res, &err);
	out = capture_end(e, saved);
	assert_int_equal(r, 0);
	assert_true(exists(od, "csr.pem"));
	assert_false(exists(od, "attestation.pem"));
	assert_non_null(strstr(out, "wrote csr.pem to "));
	assert_non_null(strstr(out, "--hsm-key "));
	assert_non_null(strstr(out, "pin-source=env%3ATOKENGATE_PIN'"));
	assert_null(strstr(out, "secret-pin-9876"));
	assert_null(strstr(out, "install-cert"));
	free(out);
	/* a URI without pin-value is printed as given */
	o.key_uri = "pkcs11:token=tg;object=svc";
	saved = capture_begin(e);
	r = tg_enroll_out_dir_write(&o, e->csr, NULL, NULL, &res, &err);
	out = capture_end(e, saved);
	assert_int_equal(r, 0);
	assert_non_null(strstr(out, "--hsm-key 'pkcs11:token=tg;object=svc'"));
	free(out);
}

static void
test_out_dir_refused(void **state)
{
	struct env *e = *state;
	struct tg_enroll_result res;
	struct tg_enroll_opts o;
	struct tg_error err;
	char file[300], od[400], *uri, *reader;
	FILE *f;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	o.id = ID;
	/* the --out-dir's parent is a regular file */
	snprintf(file, sizeof(file), "%s/file", e->dir);
	assert_non_null(f = fopen(file, "w"));
	fclose(f);
	snprintf(od, sizeof(od), "%s/out", file);
	o.out_dir = od;
	o.reader = "R";
	tg_error_clear(&err);
	assert_int_equal(tg_enroll_out_dir_write(&o, e->csr, e->cert, e->cert, &res, &err),
	                 TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot create or write to --out-dir "));
	assert_non_null(strstr(err.msg, "Not a directory"));

	/* a key URI too long to print: nothing written */
	snprintf(od, sizeof(od), "%s/long-uri", e->dir);
	o.out_dir = od;
	o.reader = NULL;
	assert_non_null(uri = malloc(9000));
	memcpy(uri, "pkcs11:object=", 14);
	memset(uri + 14, 'k', 9000 - 15);
	uri[8999] = '\0';
	o.key_uri = uri;
	tg_error_clear(&err);
	assert_int_equal(tg_enroll_out_dir_write(&o, e->csr, NULL, NULL, &res, &err),
	                 TG_ERR_NO_SPACE);
	assert_string_equal(err.msg, "the key URI is too long to print");
	assert_false(exists(od, "csr.pem"));
	free(uri);

	/* a reader name that makes the --install-cert command too long */
	snprintf(od, sizeof(od), "%s/long-reader", e->dir);
	o.out_dir = od;
	assert_non_null(reader = malloc(TG_ENROLL_CMD_MAX));
	memset(reader, 'r', TG_ENROLL_CMD_MAX - 1);
	reader[TG_ENROLL_CMD_MAX - 1] = '\0';
	o.reader = reader;
	tg_error_clear(&err);
	assert_int_equal(tg_enroll_out_dir_write(&o, e->csr, e->cert, e->cert, &res, &err),
	                 TG_ERR_NO_SPACE);
	assert_string_equal(err.msg, "the --install-cert command is too long to print");
	assert_false(exists(od, "csr.pem"));
	free(reader);
}

/* --cert-out: nothing without it, the PEM with it, an error where it
 * cannot be written. */
static void
test_cert_out(void **state)
{
	struct env *e = *state;
	struct tg_enroll_opts o;
	struct tg_error err;
	char p[400];
	X509 *back;
	FILE *f;

	memset(&o, 0, sizeof(o));
	tg_error_clear(&err);
	assert_int_equal(tg_enroll_cert_out_write(&o, e->cert, &err), 0);
	snprintf(p, sizeof(p), "%s/leaf.pem", e->dir);
	o.cert_out = p;
	assert_int_equal(tg_enroll_cert_out_write(&o, e->cert, &err), 0);
	assert_non_null(f = fopen(p, "r"));
	assert_non_null(back = PEM_read_X509(f, NULL, NULL, NULL));
	fclose(f);
	assert_int_equal(X509_cmp(back, e->cert), 0);
	X509_free(back);
	snprintf(p, sizeof(p), "%s/leaf.pem/cert.pem", e->dir);
	assert_true(tg_enroll_cert_out_write(&o, e->cert, &err) < 0);
	assert_true(err.msg[0] != '\0');
}

/* --json of an issued certificate, and a result that could not be built. */
static void
test_result_json(void **state)
{
	struct env *e = *state;
	struct tg_enroll_result res;
	struct tg_enroll_opts o;
	struct tg_prov prov;
	struct tg_error err;
	unsigned char md[32];
	unsigned mdlen = 0;
	char fp[65], *out;
	json_t *j;
	int saved, r, i;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	memset(&prov, 0, sizeof(prov));
	o.id = ID;
	o.key_uri = "pkcs11:token=tg;object=svc";
	o.cert_out = "/tmp/x.pem";
	prov.level = TG_PROV_HSM_OPERATOR;
	res.algorithm = "p256";
	res.key = "existing";
	res.leaf = e->cert;
	res.prov = &prov;
	tg_error_clear(&err);
	saved = capture_begin(e);
	r = tg_enroll_result_json(&o, &res, &err);
	out = capture_end(e, saved);
	assert_int_equal(r, 0);
	assert_non_null(j = json_loads(out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "level")), "hsm-operator");
	assert_string_equal(json_string_value(json_object_get(j, "key_uri")), o.key_uri);
	assert_true(json_is_null(json_object_get(j, "slot")));
	assert_true(json_is_null(json_object_get(j, "token_serial")));
	assert_string_equal(json_string_value(json_object_get(j, "serial")), "1234");
	assert_string_equal(json_string_value(json_object_get(j, "key")), "existing");
	assert_string_equal(json_string_value(json_object_get(j, "certificate_path")),
	                    "/tmp/x.pem");
	assert_true(json_is_false(json_object_get(j, "stored_on_token")));
	assert_int_equal(X509_digest(e->cert, EVP_sha256(), md, &mdlen), 1);
	for (i = 0; i < 32; i++)
		snprintf(fp + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(json_string_value(json_object_get(j, "certificate_sha256")), fp);
	json_decref(j);
	free(out);

	tg_error_clear(&err);
	assert_int_equal(tg_enroll_json_put(NULL, &err), TG_ERR_ALLOC);
	assert_string_equal(err.msg, "cannot write the --json result");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alg_name),
	    cmocka_unit_test(test_cmd),
	    cmocka_unit_test(test_pin_read),
	    cmocka_unit_test_setup_teardown(test_out_dir_piv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_dir_hsm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_dir_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cert_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_result_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
