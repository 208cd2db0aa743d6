/*
 * test_ca_issue.c — identity rules (tg_ca_id_check, tg_ca_id_from_cert)
 * and serial number text (tg_ca_serial_norm), table-driven, and the
 * validity bound of tg_ca_issue on a CA made in a temporary directory with
 * an attestation chain built here. Issuance as a whole is exercised by
 * tests/integration/test_ca.sh with openssl as judge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include "tg_ca_io.h"
#include "tg_ca_issue.h"
#include "tg_ca_store.h"
#include "tg_test.h"
#include "tg_test_x509.h"

struct id_case {
	const char *id;
	const char *td;
	const char *name; /* expected NAME, or NULL when refused */
	const char *msg;  /* part of the refusal */
};

static const struct id_case id_cases[] = {
    {"spiffe://example.org/dev/alice", "example.org", "alice", NULL},
    {"spiffe://example.org/svc/model-registry_2.v1", "example.org", "model-registry_2.v1", NULL},
    {"spiffe://example.org/dev/alice", NULL, "alice", NULL},
    {"spiffe://other.org/dev/alice", "example.org", NULL,
     "is not in the trust domain 'example.org'"},
    {"spiffe://example.org.evil/dev/alice", "example.org", NULL, "not in the trust domain"},
    {"spiffe://example/dev/alice", "example.org", NULL, "not in the trust domain"},
    {"spiffe://Example.org/dev/alice", "example.org", NULL, "trust domain 'Example.org'"},
    {"https://example.org/dev/alice", "example.org", NULL, "is not a spiffe:// URI"},
    {"SPIFFE://example.org/dev/alice", "example.org", NULL, "is not a spiffe:// URI"},
    {"spiffe://example.org", "example.org", NULL, "has no path"},
    {"spiffe:///dev/alice", "example.org", NULL, "no valid trust domain"},
    {"spiffe://example.org/admin/alice", "example.org", NULL, "must start with /dev/"},
    {"spiffe://example.org/dev/", "example.org", NULL, "NAME must be 1 to 64"},
    {"spiffe://example.org/dev/.", "example.org", NULL, "NAME must be 1 to 64"},
    {"spiffe://example.org/dev/..", "example.org", NULL, "NAME must be 1 to 64"},
    {"spiffe://example.org/dev/a/b", "example.org", NULL, "NAME may hold only"},
    {"spiffe://example.org/dev/a%2Fb", "example.org", NULL, "NAME may hold only"},
    {"spiffe://example.org/dev/al ice", "example.org", NULL, "NAME may hold only"},
    {"spiffe://example.org/dev/alice?x=1", "example.org", NULL, "NAME may hold only"},
    {"spiffe://user@example.org/dev/alice", "example.org", NULL, "trust domain"},
    {"spiffe://example.org:443/dev/alice", "example.org", NULL, "trust domain"},
    {"spiffe://example.org/dev/"
     "a12345678901234567890123456789012345678901234567890123456789012345",
     "example.org", NULL, "NAME must be 1 to 64"},
    {"", "example.org", NULL, "is not a spiffe:// URI"},
};

static void
test_id_check(void **state)
{
	char name[TG_CA_NAME_MAX + 1];
	struct tg_error err;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(id_cases) / sizeof(id_cases[0]); i++) {
		const struct id_case *c = &id_cases[i];

		tg_error_clear(&err);
		name[0] = '\0';
		r = tg_ca_id_check(c->id, c->td, name, sizeof(name), &err);
		if (c->name != NULL) {
			if (r != 0 || strcmp(name, c->name) != 0)
				fail_msg("'%s': r=%d name='%s' msg='%s'", c->id, r, name, err.msg);
		} else if (r != TG_ERR_IDENTITY || strstr(err.msg, c->msg) == NULL) {
			fail_msg("'%s': r=%d msg='%s' (want '%s')", c->id, r, err.msg, c->msg);
		}
	}
}

/* A certificate with the given URI SANs (and a DNS one as noise); lens
 * (NULL: strlen) gives their lengths, for values holding a NUL. */
static X509 *
cert_with_uri_lens(const char *const *uris, const int *lens, int n)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *g;
	ASN1_IA5STRING *s;
	X509 *x = X509_new();
	int i;

	assert_non_null(gens);
	assert_non_null(x);
	for (i = 0; i < n; i++) {
		g = GENERAL_NAME_new();
		s = ASN1_IA5STRING_new();
		assert_true(g != NULL && s != NULL &&
		            ASN1_STRING_set(s, uris[i], lens != NULL ? lens[i] : -1));
		GENERAL_NAME_set0_value(g, GEN_URI, s);
		assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	}
	g = GENERAL_NAME_new();
	s = ASN1_IA5STRING_new();
	assert_true(g != NULL && s != NULL && ASN1_STRING_set(s, "host.example.org", -1));
	GENERAL_NAME_set0_value(g, GEN_DNS, s);
	assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0), 1);
	GENERAL_NAMES_free(gens);
	return x;
}

static X509 *
cert_with_uris(const char *const *uris, int n)
{
	return cert_with_uri_lens(uris, NULL, n);
}

static void
test_id_from_cert(void **state)
{
	static const char *const one[] = {"spiffe://example.org/dev/alice"};
	static const char *const two[] = {"spiffe://example.org/dev/alice",
	                                  "spiffe://example.org/dev/mallory"};
	struct tg_error err;
	char buf[256];
	X509 *x;

	(void)state;
	x = cert_with_uris(one, 1);
	assert_int_equal(tg_ca_id_from_cert(x, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, one[0]);
	/* too small a buffer is refused, not truncated */
	assert_int_equal(tg_ca_id_from_cert(x, buf, 10, NULL), TG_ERR_IDENTITY);
	X509_free(x);
	x = cert_with_uris(two, 2);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_id_from_cert(x, buf, sizeof(buf), &err), TG_ERR_IDENTITY);
	assert_non_null(strstr(err.msg, "2 URI SANs"));
	X509_free(x);
	x = cert_with_uris(NULL, 0);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_id_from_cert(x, buf, sizeof(buf), &err), TG_ERR_IDENTITY);
	assert_non_null(strstr(err.msg, "0 URI SANs"));
	X509_free(x);
}

/* A URI SAN holding a NUL, wherever it is, names no identity: the text
 * before it would pass for one. */
static void
test_id_from_cert_nul(void **state)
{
	static const char inner[] = "spiffe://example.org/dev/alice\0.evil",
	                  last[] = "spiffe://example.org/dev/alice\0";
	const char *uri[1];
	struct tg_error err;
	char buf[256];
	int len[1];
	X509 *x;

	(void)state;
	uri[0] = inner;
	len[0] = (int)sizeof(inner) - 1;
	x = cert_with_uri_lens(uri, len, 1);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_id_from_cert(x, buf, sizeof(buf), &err), TG_ERR_IDENTITY);
	X509_free(x);
	uri[0] = last;
	len[0] = (int)sizeof(last) - 1;
	x = cert_with_uri_lens(uri, len, 1);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_id_from_cert(x, buf, sizeof(buf), &err), TG_ERR_IDENTITY);
	X509_free(x);
}

struct serial_case {
	const char *in;
	const char *out; /* NULL: refused */
};

static const struct serial_case serial_cases[] = {
    {"5C90601BD1E7EF0AC21279F6E2BCFD5B", "5C90601BD1E7EF0AC21279F6E2BCFD5B"},
    {"5c90601bd1e7ef0ac21279f6e2bcfd5b", "5C90601BD1E7EF0AC21279F6E2BCFD5B"},
    {"0x5c:90:60:1b", "5C90601B"},
    {"00ff", "FF"},
    {"", NULL},
    {"0x", NULL},
    {"12g4", NULL},
    {"-12", NULL},
    {"12 34", NULL},
    {"1234567890123456789012345678901234567890123456789012345678901234567890123456789012", NULL},
};

static void
test_serial_norm(void **state)
{
	char buf[100];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(serial_cases) / sizeof(serial_cases[0]); i++) {
		r = tg_ca_serial_norm(serial_cases[i].in, buf, sizeof(buf));
		if (serial_cases[i].out == NULL) {
			if (r == 0)
				fail_msg("'%s' accepted as '%s'", serial_cases[i].in, buf);
		} else if (r != 0 || strcmp(buf, serial_cases[i].out) != 0) {
			fail_msg("'%s': r=%d got '%s'", serial_cases[i].in, r, buf);
		}
	}
}

/* Random serials: positive, 16 bytes, different each time. */
static void
test_serial_random(void **state)
{
	char a[80], b[80];
	X509 *x = X509_new(), *y = X509_new();

	(void)state;
	assert_int_equal(tg_ca_serial_random(x, NULL), 0);
	assert_int_equal(tg_ca_serial_random(y, NULL), 0);
	assert_int_equal(tg_ca_serial_hex(X509_get0_serialNumber(x), a, sizeof(a)), 0);
	assert_int_equal(tg_ca_serial_hex(X509_get0_serialNumber(y), b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 32);
	assert_true(a[0] >= '4' && a[0] <= '7');
	assert_string_not_equal(a, b);
	X509_free(x);
	X509_free(y);
}

/*
 * tg_ca_issue with an attested key asks for at most max_validity: exactly
 * the maximum is issued, one second more is refused (TG_ERR_POLICY) and
 * nothing is issued.
 */
static void
test_issue_validity(void **state)
{
	EVP_PKEY *rootk = EVP_EC_gen("P-256"), *f9k = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	X509 *root, *f9, *att, *leaf = NULL;
	X509_REQ *csr = X509_REQ_new();
	struct tg_ca_init_opts o;
	struct tg_ca_issue_req req;
	struct tg_ca_store *s = NULL;
	struct tg_error err;
	char dir[64], path[256];
	long max;
	int day = 0, sec = 0;

	(void)state;
	assert_true(rootk != NULL && f9k != NULL && k != NULL && csr != NULL);
	root = tg_test_yk_cert("Test Attestation Root", rootk, NULL, NULL, "critical,CA:TRUE", 0);
	f9 = tg_test_yk_cert("Yubico PIV Attestation", f9k, root, rootk,
	                     "critical,CA:TRUE,pathlen:0", 0);
	att = tg_test_yk_cert("YubiKey PIV Attestation 9a", k, f9, f9k, NULL, 1);
	assert_int_equal(X509_REQ_set_pubkey(csr, k), 1);
	assert_true(X509_REQ_sign(csr, k, EVP_sha256()) > 0);
	assert_int_equal(tg_test_tmpdir("tg-test-ca-issue", dir, sizeof(dir)), 0);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.trust_domain = "example.org";
	tg_error_clear(&err);
	if (tg_ca_store_init(&o, &err) != 0)
		fail_msg("ca init: %s", err.msg);
	snprintf(path, sizeof(path), "%s/attestation-roots/root.pem", dir);
	if (tg_ca_pem_write(path, root, NULL, NULL, &err) != 0 ||
	    tg_ca_store_open(dir, 1, &s, &err) != 0)
		fail_msg("ca: %s", err.msg);
	max = tg_ca_store_policy(s)->max_validity;
	memset(&req, 0, sizeof(req));
	req.csr = csr;
	req.id = "spiffe://example.org/dev/alice";
	req.att = att;
	req.f9 = f9;
	req.validity = max + 1;
	tg_error_clear(&err);
	assert_int_equal(tg_ca_issue(s, &req, &leaf, NULL, &err), TG_ERR_POLICY);
	assert_non_null(strstr(err.msg, "exceeds the policy maximum"));
	assert_null(leaf);
	snprintf(path, sizeof(path), "%s/issued", dir);
	assert_int_equal(tg_test_dir_count(path), 0);
	req.validity = max;
	tg_error_clear(&err);
	if (tg_ca_issue(s, &req, &leaf, NULL, &err) != 0)
		fail_msg("issue at max_validity: %s", err.msg);
	assert_int_equal(
	    ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf)), 1);
	/* notBefore and notAfter are set apart: a clock tick may fall between */
	assert_true((long)day * 24 * 3600 + sec >= max && (long)day * 24 * 3600 + sec <= max + 1);
	X509_free(leaf);
	tg_ca_store_free(s);
	tg_test_tmpdir_remove(path); /* issued/ */
	snprintf(path, sizeof(path), "%s/attestation-roots", dir);
	tg_test_tmpdir_remove(path);
	tg_test_tmpdir_remove(dir);
	X509_REQ_free(csr);
	X509_free(att);
	X509_free(f9);
	X509_free(root);
	EVP_PKEY_free(k);
	EVP_PKEY_free(f9k);
	EVP_PKEY_free(rootk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_id_check),         cmocka_unit_test(test_id_from_cert),
	    cmocka_unit_test(test_id_from_cert_nul), cmocka_unit_test(test_issue_validity),
	    cmocka_unit_test(test_serial_norm),      cmocka_unit_test(test_serial_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
