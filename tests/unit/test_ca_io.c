/*
 * test_ca_io.c — the CA's file readers and writers (host/ca/io.c): PEM and
 * DER certificates, CSRs and public keys taken by what each reader wants,
 * and each refusal (a missing file, a directory, a file over TG_CA_IO_MAX,
 * a PEM certificate that does not decode, DER with bytes after it, the
 * wrong kind of object) with its code and message; tg_ca_name_str with
 * small buffers.
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
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tg_ca_io.h"
#include "tg_test.h"

static char T[64];

#define assert_err(r, err, want, part)                                                             \
	do {                                                                                       \
		int r_ = (r);                                                                      \
		if (r_ != (want) || strstr((err).msg, (part)) == NULL)                             \
			fail_msg("line %d: got %d '%s', want %d '%s'", __LINE__, r_, (err).msg,    \
			         (want), (part));                                                  \
	} while (0)

static const char *
P(const char *name)
{
	static char bufs[8][256];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", T, name);
	return b;
}

static void
bytes_out(const char *name, const void *p, size_t n)
{
	FILE *f = fopen(P(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static X509 *
cert_make(const char *cn, EVP_PKEY *k)
{
	X509 *x = X509_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)cn, -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static void
test_readers(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256"), *pk = NULL;
	X509 *a, *b, *x = NULL;
	X509_REQ *req = X509_REQ_new(), *rq = NULL;
	STACK_OF(X509) *st = sk_X509_new_null();
	struct tg_error err;
	unsigned char *der = NULL, *big;
	uint8_t *data = NULL;
	size_t len = 0;
	int n;
	char pem[8192];
	BIO *bio;

	(void)state;
	assert_true(k != NULL && k2 != NULL && req != NULL && st != NULL);
	assert_int_equal(tg_test_tmpdir("tg-test-ca-io", T, sizeof(T)), 0);
	a = cert_make("first", k);
	b = cert_make("second", k2);
	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);

	/* files that cannot be read */
	tg_error_clear(&err);
	assert_err(tg_ca_cert_read(P("absent.pem"), &x, &err), err, TG_ERR_IO, "cannot open");
	assert_int_equal(mkdir(P("dir"), 0700), 0);
	tg_error_clear(&err);
	assert_err(tg_ca_file_read(P("dir"), &data, &len, &err), err, TG_ERR_IO, "cannot read");
	assert_null(data);
	big = calloc(1, TG_CA_IO_MAX + 1);
	assert_non_null(big);
	bytes_out("big", big, TG_CA_IO_MAX + 1);
	tg_error_clear(&err);
	assert_err(tg_ca_file_read(P("big"), &data, &len, &err), err, TG_ERR_IO,
	           "is larger than 1048576 bytes");
	assert_null(data);
	bytes_out("max", big, TG_CA_IO_MAX);
	assert_int_equal(tg_ca_file_read(P("max"), &data, &len, &err), 0);
	assert_int_equal(len, TG_CA_IO_MAX);
	free(data);
	data = NULL;
	free(big);

	/* two PEM certificates: cert_read takes the first, certs_read both */
	assert_int_equal(tg_ca_pem_write(P("two.pem"), a, NULL, NULL, &err), 0);
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_X509(bio, a), 1);
	assert_int_equal(PEM_write_bio_X509(bio, b), 1);
	n = BIO_read(bio, pem, sizeof(pem));
	assert_true(n > 0);
	BIO_free(bio);
	bytes_out("two.pem", pem, (size_t)n);
	assert_int_equal(tg_ca_cert_read(P("two.pem"), &x, &err), 0);
	assert_int_equal(X509_cmp(x, a), 0);
	X509_free(x);
	x = NULL;
	assert_int_equal(tg_ca_certs_read(P("two.pem"), st, &err), 0);
	assert_int_equal(sk_X509_num(st), 2);
	assert_int_equal(X509_cmp(sk_X509_value(st, 1), b), 0);
	/* a PEM CERTIFICATE block that is no certificate ends the list */
	{
		static const char bad[] = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n"
		                          "-----END CERTIFICATE-----\n";
		char both[sizeof(pem) + sizeof(bad)];

		bytes_out("bad.pem", bad, strlen(bad));
		tg_error_clear(&err);
		assert_err(tg_ca_cert_read(P("bad.pem"), &x, &err), err, TG_ERR_FORMAT,
		           "holds no X.509 certificate");
		assert_null(x);
		/* before two good ones: none of them is taken */
		memcpy(both, bad, strlen(bad));
		memcpy(both + strlen(bad), pem, (size_t)n);
		bytes_out("badfirst.pem", both, strlen(bad) + (size_t)n);
		tg_error_clear(&err);
		assert_err(tg_ca_cert_read(P("badfirst.pem"), &x, &err), err, TG_ERR_FORMAT,
		           "holds no X.509 certificate");
		assert_null(x);
	}

	/* DER: exact is taken; with a byte after it, refused */
	assert_true((n = i2d_X509(a, &der)) > 0);
	bytes_out("a.der", der, (size_t)n);
	assert_int_equal(tg_ca_cert_read(P("a.der"), &x, &err), 0);
	assert_int_equal(X509_cmp(x, a), 0);
	X509_free(x);
	x = NULL;
	der = OPENSSL_realloc(der, (size_t)n + 1);
	assert_non_null(der);
	der[n] = 0;
	bytes_out("a1.der", der, (size_t)n + 1);
	OPENSSL_free(der);
	der = NULL;
	tg_error_clear(&err);
	assert_err(tg_ca_cert_read(P("a1.der"), &x, &err), err, TG_ERR_FORMAT,
	           "DER with nothing after it");
	assert_null(x);

	/* CSRs: PEM and DER; a certificate is none */
	assert_int_equal(tg_ca_pem_write(P("req.pem"), NULL, req, NULL, &err), 0);
	assert_int_equal(tg_ca_csr_read(P("req.pem"), &rq, &err), 0);
	X509_REQ_free(rq);
	rq = NULL;
	assert_true((n = i2d_X509_REQ(req, &der)) > 0);
	bytes_out("req.der", der, (size_t)n);
	OPENSSL_free(der);
	der = NULL;
	assert_int_equal(tg_ca_csr_read(P("req.der"), &rq, &err), 0);
	X509_REQ_free(rq);
	rq = NULL;
	tg_error_clear(&err);
	assert_err(tg_ca_csr_read(P("a.der"), &rq, &err), err, TG_ERR_CSR,
	           "is not a PKCS#10 certificate request");
	assert_null(rq);

	/* public keys: PEM and DER SubjectPublicKeyInfo, from a certificate
	 * or a CSR; junk has none */
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k2), 1);
	n = BIO_read(bio, pem, sizeof(pem));
	BIO_free(bio);
	bytes_out("k2.pub", pem, (size_t)n);
	assert_int_equal(tg_ca_pubkey_read(P("k2.pub"), &pk, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pk, k2), 1);
	EVP_PKEY_free(pk);
	pk = NULL;
	assert_true((n = i2d_PUBKEY(k2, &der)) > 0);
	bytes_out("k2.der", der, (size_t)n);
	OPENSSL_free(der);
	der = NULL;
	assert_int_equal(tg_ca_pubkey_read(P("k2.der"), &pk, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pk, k2), 1);
	EVP_PKEY_free(pk);
	pk = NULL;
	assert_int_equal(tg_ca_pubkey_read(P("a.der"), &pk, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pk, k), 1);
	EVP_PKEY_free(pk);
	pk = NULL;
	assert_int_equal(tg_ca_pubkey_read(P("req.der"), &pk, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pk, k), 1);
	EVP_PKEY_free(pk);
	pk = NULL;
	assert_int_equal(tg_ca_pubkey_read(P("req.pem"), &pk, &err), 0);
	assert_int_equal(EVP_PKEY_eq(pk, k), 1);
	EVP_PKEY_free(pk);
	pk = NULL;
	bytes_out("junk", "\x30\x03\x02\x01\x01", 5);
	tg_error_clear(&err);
	assert_err(tg_ca_pubkey_read(P("junk"), &pk, &err), err, TG_ERR_FORMAT,
	           "holds no public key");
	assert_null(pk);

	/* a PEM write that cannot reach its file */
	tg_error_clear(&err);
	assert_int_not_equal(tg_ca_pem_write(P("absent/x.pem"), a, NULL, NULL, &err), 0);
	assert_non_null(strstr(err.msg, "absent/x.pem"));

	X509_free(a);
	X509_free(b);
	X509_REQ_free(req);
	sk_X509_pop_free(st, X509_free);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	tg_test_tmpdir_remove(P("dir"));
	tg_test_tmpdir_remove(T);
}

static void
test_name_str(void **state)
{
	X509_NAME *nm = X509_NAME_new();
	char buf[64];

	(void)state;
	assert_non_null(nm);
	assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)"alice", -1, -1, 0),
	                 1);
	assert_string_equal(tg_ca_name_str(nm, buf, sizeof(buf)), "CN=alice");
	/* cut to the buffer, always terminated */
	assert_string_equal(tg_ca_name_str(nm, buf, 4), "CN=");
	buf[0] = 'x';
	assert_ptr_equal(tg_ca_name_str(nm, buf, 0), buf);
	assert_int_equal(buf[0], 'x');
	assert_string_equal(tg_ca_name_str(NULL, buf, sizeof(buf)), "");
	X509_NAME_free(nm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_readers),
	    cmocka_unit_test(test_name_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
