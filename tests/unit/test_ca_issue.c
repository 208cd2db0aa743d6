/*
 * test_ca_issue.c — identity rules (tg_ca_id_check, tg_ca_id_from_cert)
 * and serial number text (tg_ca_serial_norm), table-driven. Issuance as a
 * whole is exercised by tests/integration/test_ca.sh with openssl as judge.
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

#include "tg_ca_issue.h"
#include "tg_ca_store.h"
#include "tg_test.h"

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
    {"spiffe://Example.org/dev/alice", "example.org", NULL, "trust domain 'Example.org'"},
    {"https://example.org/dev/alice", "example.org", NULL, "is not a spiffe:// URI"},
    {"SPIFFE://example.org/dev/alice", "example.org", NULL, "is not a spiffe:// URI"},
    {"spiffe://example.org", "example.org", NULL, "has no path"},
    {"spiffe:///dev/alice", "example.org", NULL, "no valid trust domain"},
    {"spiffe://example.org/admin/alice", "example.org", NULL, "must start with /dev/"},
    {"spiffe://example.org/dev/", "example.org", NULL, "NAME must be 1 to 64"},
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

/* A certificate with the given URI SANs (and a DNS one as noise). */
static X509 *
cert_with_uris(const char *const *uris, int n)
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
		assert_true(g != NULL && s != NULL && ASN1_STRING_set(s, uris[i], -1));
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_id_check),
	    cmocka_unit_test(test_id_from_cert),
	    cmocka_unit_test(test_serial_norm),
	    cmocka_unit_test(test_serial_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
