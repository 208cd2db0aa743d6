/*
 * test_ca_cmd.c — `tokengate ca` (host/ca/cmd_ca.c) called as the program
 * calls it, tg_cmd_ca(argc, argv), with stdout and stderr captured: every
 * subcommand on a CA in a temporary directory with an attestation chain
 * built here (init, issue in text and JSON, list with its filters, show,
 * revoke by serial and by certificate, crl, verify-attestation), and the
 * usage errors (exit 2) and failures (exit 1) each with its message,
 * including output that cannot be written (/dev/full).
 */
#include <fcntl.h>
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
#include "tg_ca_issue.h"
#include "tg_ca_store.h"
#include "tg_cmd.h"
#include "tg_prov.h"
#include "tg_test.h"
#include "tg_test_x509.h"

static char out_buf[65536], err_buf[8192];
static char T[64]; /* the test's temporary directory */

static void
slurp(FILE *f, char *buf, size_t n)
{
	size_t got;

	rewind(f);
	got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
}

/*
 * Runs tg_cmd_ca on "ca" and the NULL-terminated arguments; stdout into
 * out_buf (or to the file stdout_path when not NULL), stderr into err_buf.
 * Returns the exit code.
 */
static int
run_to(const char *stdout_path, ...)
{
	char *argv[64];
	int argc = 0, rc, so, se, fd;
	FILE *fo = NULL, *fe;
	va_list ap;

	argv[argc++] = (char *)"ca";
	va_start(ap, stdout_path);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	so = dup(STDOUT_FILENO);
	se = dup(STDERR_FILENO);
	assert_true(so >= 0 && se >= 0);
	if (stdout_path != NULL) {
		assert_true((fd = open(stdout_path, O_WRONLY)) >= 0);
	} else {
		assert_non_null(fo = tmpfile());
		fd = dup(fileno(fo));
	}
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	close(fd);
	assert_non_null(fe = tmpfile());
	assert_true(dup2(fileno(fe), STDERR_FILENO) >= 0);
	rc = tg_cmd_ca(argc, argv);
	fflush(stdout);
	clearerr(stdout);
	fflush(stderr);
	assert_true(dup2(so, STDOUT_FILENO) >= 0 && dup2(se, STDERR_FILENO) >= 0);
	close(so);
	close(se);
	out_buf[0] = '\0';
	if (fo != NULL)
		slurp(fo, out_buf, sizeof(out_buf));
	slurp(fe, err_buf, sizeof(err_buf));
	return rc;
}

#define run(...) run_to(NULL, __VA_ARGS__, (char *)NULL)

/* Asserts exit code want and that stderr (or stdout for 0) holds part. */
#define expect(want, part, ...)                                                                    \
	do {                                                                                       \
		int rc_ = run(__VA_ARGS__);                                                        \
		const char *where_ = (want) == 0 ? out_buf : err_buf;                              \
		if (rc_ != (want) || strstr(where_, (part)) == NULL)                               \
			fail_msg("line %d: exit %d, want %d '%s'; stdout '%s' stderr '%s'",        \
			         __LINE__, rc_, (want), (part), out_buf, err_buf);                 \
	} while (0)

/* T/name, in a static ring of buffers. */
static const char *
P(const char *name)
{
	static char bufs[16][256];
	static int i;
	char *b = bufs[i++ % 16];

	snprintf(b, sizeof(bufs[0]), "%s/%s", T, name);
	return b;
}

static void
pem_out(const char *name, X509 *x, X509_REQ *req)
{
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_ca_pem_write(P(name), x, req, NULL, &err) != 0)
		fail_msg("write %s: %s", name, err.msg);
}

static void
text_out(const char *name, const char *text)
{
	FILE *f = fopen(P(name), "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static X509_REQ *
csr_make(EVP_PKEY *k)
{
	X509_REQ *r = X509_REQ_new();

	assert_non_null(r);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(r), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)"alice",
	                                            -1, -1, 0),
	                 1);
	assert_int_equal(X509_REQ_set_pubkey(r, k), 1);
	assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
	return r;
}

/* The serial in "... serial HEX)" of ca issue's text output. */
static void
serial_of(const char *text, char *hex, size_t n)
{
	const char *p = strstr(text, "serial ");
	size_t i = 0;

	assert_non_null(p);
	for (p += 7; *p != ')' && *p != '\0' && i + 1 < n; p++)
		hex[i++] = *p;
	hex[i] = '\0';
	assert_true(i > 0);
}

static void
test_usage(void **state)
{
	(void)state;
	assert_int_equal(run_to(NULL, (char *)NULL), TG_EXIT_USAGE);
	expect(0, "verify-attestation", "--help");
	expect(2, "unknown command 'frobnicate'", "frobnicate");
	expect(0, "usage: tokengate ca issue", "issue", "--help");
	expect(0, "usage: tokengate ca crl", "crl", "--help");
	expect(2, "--csr, --id and --out are required", "issue", "--dir", "x");
	expect(2, "--dir and --out are required", "crl", "--dir", "x");
	expect(2, "--cert is required", "show");
	expect(2, "--dir and --trust-domain are required", "init");
	expect(2, "--serial does not apply to ca crl", "crl", "--dir", "x", "--serial", "1");
	expect(2, "--key must be a pkcs11: URI", "init", "--dir", "x", "--trust-domain",
	       "example.org", "--key", "ca.key");
	expect(2, "--validity '3 fortnights' is not a duration", "issue", "--dir", "x", "--csr",
	       "c", "--id", "i", "--out", "o", "--validity", "3 fortnights");
	expect(2, "--attestation needs --intermediate", "issue", "--dir", "x", "--csr", "c", "--id",
	       "i", "--out", "o", "--attestation", "a");
	expect(2, "--intermediate goes with an attestation", "issue", "--dir", "x", "--csr", "c",
	       "--id", "i", "--out", "o", "--hsm-key", "pkcs11:token=t", "--intermediate", "f9");
	expect(2, "give --serial HEX or --cert FILE", "revoke", "--dir", "x");
	expect(2, "give --serial HEX or --cert FILE", "revoke", "--dir", "x", "--serial", "1",
	       "--cert", "c");
	expect(2, "--reason 'sorry' is not accepted", "revoke", "--dir", "x", "--serial", "1",
	       "--reason", "sorry");
	expect(2, "--status 'pending' is not valid, revoked or expired", "list", "--dir", "x",
	       "--status", "pending");
	expect(2, "too many --intermediate", "verify-attestation", "--roots", "r", "--attestation",
	       "a", "--intermediate", "1", "--intermediate", "2", "--intermediate", "3",
	       "--intermediate", "4", "--intermediate", "5", "--intermediate", "6",
	       "--intermediate", "7", "--intermediate", "8", "--intermediate", "9",
	       "--intermediate", "10", "--intermediate", "11", "--intermediate", "12",
	       "--intermediate", "13", "--intermediate", "14", "--intermediate", "15",
	       "--intermediate", "16", "--intermediate", "17");
	/* an option no command knows, and one given without its value */
	assert_int_equal(run("list", "--dir", "x", "--frob"), TG_EXIT_USAGE);
	assert_non_null(strstr(err_buf, "frob"));
	assert_int_equal(run("list", "--dir"), TG_EXIT_USAGE);
	assert_non_null(strstr(err_buf, "dir"));
	/* a missing CA directory is a failure, not a usage error */
	expect(1, "is not a CA directory", "list", "--dir", "/nonexistent/tg-ca");
	expect(1, "is not a CA directory", "crl", "--dir", "/nonexistent/tg-ca", "--out", "x");
	expect(1, "is not a CA directory", "revoke", "--dir", "/nonexistent/tg-ca", "--serial",
	       "01");
	expect(1, "/nonexistent/c.pem", "show", "--cert", "/nonexistent/c.pem");
}

static void
test_flow(void **state)
{
	EVP_PKEY *rootk = EVP_EC_gen("P-256"), *f9k = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	EVP_PKEY *k2 = EVP_EC_gen("P-256"), *ok = EVP_EC_gen("P-256");
	X509 *root, *f9, *att, *other;
	X509_REQ *csr, *csr2;
	char hex[80], line[512], ca[128];

	(void)state;
	assert_true(rootk != NULL && f9k != NULL && k != NULL && k2 != NULL && ok != NULL);
	assert_int_equal(tg_test_tmpdir("tg-test-ca-cmd", T, sizeof(T)), 0);
	root = tg_test_yk_cert("Test Attestation Root", rootk, NULL, NULL, "critical,CA:TRUE", 0);
	f9 = tg_test_yk_cert("Yubico PIV Attestation", f9k, root, rootk,
	                     "critical,CA:TRUE,pathlen:0", 0);
	att = tg_test_yk_cert("YubiKey PIV Attestation 9a", k, f9, f9k, NULL, 1);
	other = tg_test_yk_cert("Other Root", ok, NULL, NULL, "critical,CA:TRUE", 0);
	csr = csr_make(k);
	csr2 = csr_make(k2);
	assert_int_equal(mkdir(P("roots"), 0700), 0);
	assert_int_equal(mkdir(P("otherroots"), 0700), 0);
	pem_out("roots/root.pem", root, NULL);
	pem_out("otherroots/root.pem", other, NULL);
	pem_out("f9.pem", f9, NULL);
	pem_out("att.pem", att, NULL);
	pem_out("csr.pem", NULL, csr);
	pem_out("csr2.pem", NULL, csr2);
	text_out("junk.pem", "not PEM\n");
	snprintf(ca, sizeof(ca), "%s", P("ca"));

	/* ---- verify-attestation ---- */
	expect(0, "\"attestation_sha256\"", "verify-attestation", "--roots", P("roots"),
	       "--attestation", P("att.pem"), "--intermediate", P("f9.pem"));
	assert_non_null(strstr(out_buf, "\"slot\": \"9a\""));
	assert_non_null(strstr(out_buf, "\"key_algorithm\": \"secp256r1\""));
	assert_non_null(strstr(out_buf, "\"pin_policy\": \"once\""));
	assert_non_null(strstr(out_buf, "\"firmware\": null"));
	assert_non_null(strstr(out_buf, "\"serial\": null"));
	expect(0, "\"pin_policy\"", "verify-attestation", "--roots", P("roots"), "--attestation",
	       P("att.pem"), "--intermediate", P("f9.pem"), "--pubkey", P("csr.pem"));
	expect(1, "differs", "verify-attestation", "--roots", P("roots"), "--attestation",
	       P("att.pem"), "--intermediate", P("f9.pem"), "--pubkey", P("csr2.pem"));
	expect(1, "does not chain to a trusted root", "verify-attestation", "--roots",
	       P("otherroots"), "--attestation", P("att.pem"), "--intermediate", P("f9.pem"));
	expect(1, "junk.pem", "verify-attestation", "--roots", P("roots"), "--attestation",
	       P("junk.pem"), "--intermediate", P("f9.pem"));
	expect(1, "junk.pem", "verify-attestation", "--roots", P("roots"), "--attestation",
	       P("att.pem"), "--intermediate", P("junk.pem"));
	expect(1, "junk.pem", "verify-attestation", "--roots", P("roots"), "--attestation",
	       P("att.pem"), "--intermediate", P("f9.pem"), "--pubkey", P("junk.pem"));

	/* ---- init ---- */
	expect(0, "CA created in", "init", "--dir", ca, "--trust-domain", "example.org",
	       "--attestation-roots", P("roots"));
	assert_non_null(strstr(out_buf, "ca.pem to gates as --client-ca"));
	expect(1, "already exists", "init", "--dir", ca, "--trust-domain", "example.org");

	/* ---- issue ---- */
	expect(0, "issued ", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	       "spiffe://example.org/dev/alice", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("alice.pem"));
	assert_non_null(strstr(out_buf, "to spiffe://example.org/dev/alice (level "
	                                "device-attested, serial "));
	serial_of(out_buf, hex, sizeof(hex));
	snprintf(line, sizeof(line), "issued/%s.pem", hex);
	assert_int_equal(access(P("alice.pem"), F_OK), 0);
	expect(0, "\"record\"", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	       "spiffe://example.org/dev/alice2", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("alice2.pem"), "--json", "--validity", "1h");
	assert_non_null(strstr(out_buf, "\"identity\": \"spiffe://example.org/dev/alice2\""));
	assert_non_null(strstr(out_buf, "\"cert\": \""));
	assert_non_null(strstr(out_buf, "alice2.pem\""));
	assert_non_null(strstr(out_buf, "\"level\": \"device-attested\""));
	/* refusals: no provenance at all, another identity's trust domain, a
	 * CSR that is not one */
	expect(1, "no proof that the key lives on a token", "issue", "--dir", ca, "--csr",
	       P("csr2.pem"), "--id", "spiffe://example.org/dev/bob", "--out", P("bob.pem"));
	assert_int_equal(access(P("bob.pem"), F_OK), -1);
	expect(1, "trust domain", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	       "spiffe://other.org/dev/alice", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("bob.pem"));
	expect(1, "junk.pem", "issue", "--dir", ca, "--csr", P("junk.pem"), "--id",
	       "spiffe://example.org/dev/alice", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("bob.pem"));
	expect(1, "junk.pem", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	       "spiffe://example.org/dev/alice", "--attestation", P("junk.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("bob.pem"));
	expect(1, "differs", "issue", "--dir", ca, "--csr", P("csr2.pem"), "--id",
	       "spiffe://example.org/dev/bob", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("bob.pem"));
	assert_int_equal(access(P("bob.pem"), F_OK), -1);
	/* issued, but --out cannot be written: the message names the record */
	expect(1, "was issued and recorded as", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	       "spiffe://example.org/dev/alice3", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("nodir/alice3.pem"));
	assert_non_null(strstr(err_buf, "/issued/"));
	/* issued, but stdout is full: the same */
	assert_int_equal(run_to("/dev/full", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	                        "spiffe://example.org/dev/alice4", "--attestation", P("att.pem"),
	                        "--intermediate", P("f9.pem"), "--out", P("alice4.pem"),
	                        (char *)NULL),
	                 TG_EXIT_FAIL);
	assert_non_null(strstr(err_buf, "cannot print the result"));
	assert_non_null(strstr(err_buf, "was issued and recorded as"));
	assert_int_equal(run_to("/dev/full", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	                        "spiffe://example.org/dev/alice5", "--attestation", P("att.pem"),
	                        "--intermediate", P("f9.pem"), "--out", P("alice5.pem"), "--json",
	                        (char *)NULL),
	                 TG_EXIT_FAIL);
	assert_non_null(strstr(err_buf, "cannot print the result"));

	/* ---- show ---- */
	expect(0, "\"identity\": \"spiffe://example.org/dev/alice\"", "show", "--cert",
	       P("alice.pem"));
	snprintf(line, sizeof(line), "\"serial\": \"%s\"", hex);
	assert_non_null(strstr(out_buf, line));
	expect(1, "junk.pem", "show", "--cert", P("junk.pem"));
	{
		/* a certificate whose provenance extension does not decode */
		static const unsigned char bad[] = {0x30, 0x03, 0x02, 0x01, 0x01};
		X509 *x = X509_dup(other);
		ASN1_OBJECT *o = OBJ_txt2obj(TG_PROV_OID, 1);
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		X509_EXTENSION *e;
		X509V3_CTX ctx;

		assert_true(x != NULL && o != NULL && os != NULL &&
		            ASN1_OCTET_STRING_set(os, bad, (int)sizeof(bad)));
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		assert_int_equal(tg_ca_ext_add(x, &ctx, NID_subject_alt_name,
		                               "URI:spiffe://example.org/dev/p", NULL),
		                 0);
		assert_non_null(e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os));
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		assert_true(X509_sign(x, ok, EVP_sha256()) > 0);
		pem_out("badprov.pem", x, NULL);
		expect(1, "provenance: extension value is not a KeyProvenance SEQUENCE", "show",
		       "--cert", P("badprov.pem"));
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(os);
		ASN1_OBJECT_free(o);
		X509_free(x);
	}
	assert_int_equal(run_to("/dev/full", "show", "--cert", P("alice.pem"), (char *)NULL),
	                 TG_EXIT_FAIL);
	assert_non_null(strstr(err_buf, "cannot write the output"));

	/* ---- list ---- */
	expect(0, hex, "list", "--dir", ca);
	assert_non_null(strstr(out_buf, "valid"));
	assert_non_null(strstr(out_buf, "spiffe://example.org/dev/alice\n"));
	expect(0, "\"status\": \"valid\"", "list", "--dir", ca, "--json");
	assert_int_equal(run("list", "--dir", ca, "--status", "revoked"), 0);
	assert_string_equal(out_buf, "");
	assert_int_equal(run("list", "--dir", ca, "--status", "revoked", "--json"), 0);
	assert_string_equal(out_buf, "[]\n");

	/* ---- revoke ---- */
	expect(1, "is not a hexadecimal number", "revoke", "--dir", ca, "--serial", "zz");
	expect(1, "issued no certificate with serial", "revoke", "--dir", ca, "--serial", "0abc");
	snprintf(line, sizeof(line), "revoked %s (unspecified)", hex);
	expect(0, line, "revoke", "--dir", ca, "--serial", hex);
	expect(1, "already revoked", "revoke", "--dir", ca, "--serial", hex);
	expect(1, "was not issued by this CA", "revoke", "--dir", ca, "--cert",
	       P("otherroots/root.pem"));
	expect(1, "junk.pem", "revoke", "--dir", ca, "--cert", P("junk.pem"));
	expect(0, "(keyCompromise)", "revoke", "--dir", ca, "--cert", P("alice2.pem"), "--reason",
	       "KEYCOMPROMISE");

	/* list after revocations: text lines with reason and time, JSON fields */
	expect(0, "keyCompromise", "list", "--dir", ca, "--status", "revoked");
	assert_non_null(strstr(out_buf, "revoked"));
	assert_non_null(strstr(out_buf, hex));
	assert_null(strstr(out_buf, "valid "));
	expect(0, "\"revoked_at\"", "list", "--dir", ca, "--status", "revoked", "--json");
	assert_non_null(strstr(out_buf, "\"reason\": \"unspecified\""));
	assert_non_null(strstr(out_buf, "\"reason\": \"keyCompromise\""));

	/* ---- crl ---- */
	expect(0, "", "crl", "--dir", ca, "--out", P("ca.crl"));
	{
		FILE *f = fopen(P("ca.crl"), "r");
		X509_CRL *crl;

		assert_non_null(f);
		crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
		assert_non_null(crl);
		assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
		X509_CRL_free(crl);
	}
	expect(1, "nodir", "crl", "--dir", ca, "--out", P("nodir/ca.crl"));
	text_out("ca/revoked.txt", "garbage\n");
	expect(1, "revoked.txt line 1", "crl", "--dir", ca, "--out", P("ca2.crl"));
	expect(1, "revoked.txt line 1", "list", "--dir", ca);
	assert_int_equal(access(P("ca2.crl"), F_OK), -1);

	X509_REQ_free(csr);
	X509_REQ_free(csr2);
	X509_free(root);
	X509_free(f9);
	X509_free(att);
	X509_free(other);
	EVP_PKEY_free(rootk);
	EVP_PKEY_free(f9k);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(ok);
	{
		char p[300];

		snprintf(p, sizeof(p), "%s/issued", ca);
		tg_test_tmpdir_remove(p);
		tg_test_tmpdir_remove(ca);
		tg_test_tmpdir_remove(P("roots"));
		tg_test_tmpdir_remove(P("otherroots"));
		tg_test_tmpdir_remove(T);
	}
}

/*
 * Issuance against a policy with a CRL distribution point and a maximum
 * beyond the CA's own lifetime: the leaf carries the CRL URL; a validity
 * past the CA certificate's end is refused; a CSR whose signature does not
 * verify, and requests without their F9 or with both kinds of provenance,
 * are refused by tg_ca_issue with nothing recorded.
 */
static void
test_issue_policy(void **state)
{
	EVP_PKEY *rootk = EVP_EC_gen("P-256"), *f9k = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	EVP_PKEY *k2 = EVP_EC_gen("P-256");
	X509 *root, *f9, *att, *leaf = NULL;
	X509_REQ *csr, *bad;
	struct tg_ca_store *s = NULL;
	struct tg_ca_issue_req req;
	struct tg_error err;
	char ca[128], pol[1024], issued[256];
	FILE *f;
	STACK_OF(DIST_POINT) * dps;

	(void)state;
	assert_true(rootk != NULL && f9k != NULL && k != NULL && k2 != NULL);
	assert_int_equal(tg_test_tmpdir("tg-test-ca-cmd", T, sizeof(T)), 0);
	root = tg_test_yk_cert("Test Attestation Root", rootk, NULL, NULL, "critical,CA:TRUE", 0);
	f9 = tg_test_yk_cert("Yubico PIV Attestation", f9k, root, rootk,
	                     "critical,CA:TRUE,pathlen:0", 0);
	att = tg_test_yk_cert("YubiKey PIV Attestation 9a", k, f9, f9k, NULL, 1);
	csr = csr_make(k);
	/* signed, then given another key: the signature no longer verifies */
	bad = csr_make(k);
	assert_int_equal(X509_REQ_set_pubkey(bad, k2), 1);
	assert_int_equal(mkdir(P("roots"), 0700), 0);
	pem_out("roots/root.pem", root, NULL);
	pem_out("f9.pem", f9, NULL);
	pem_out("att.pem", att, NULL);
	pem_out("csr.pem", NULL, csr);
	pem_out("bad.pem", NULL, bad);
	snprintf(ca, sizeof(ca), "%s", P("ca"));
	expect(0, "CA created in", "init", "--dir", ca, "--trust-domain", "example.org",
	       "--attestation-roots", P("roots"));
	snprintf(pol, sizeof(pol),
	         "trust_domain: example.org\n"
	         "attestation_roots: \"%s\"\n"
	         "pin_policies: [once, always]\n"
	         "touch_policies: [never, always, cached]\n"
	         "default_validity: 24h\n"
	         "max_validity: 5000d\n"
	         "crl_url: \"http://ca.example.org/ca.crl\"\n",
	         P("roots"));
	text_out("ca/policy.yaml", pol);
	snprintf(issued, sizeof(issued), "%s/issued", ca);

	expect(0, "level device-attested", "issue", "--dir", ca, "--csr", P("csr.pem"), "--id",
	       "spiffe://example.org/svc/api", "--attestation", P("att.pem"), "--intermediate",
	       P("f9.pem"), "--out", P("api.pem"));
	f = fopen(P("api.pem"), "r");
	assert_non_null(f);
	leaf = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(leaf);
	dps = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
	assert_non_null(dps);
	assert_int_equal(sk_DIST_POINT_num(dps), 1);
	{
		GENERAL_NAME *g =
		    sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);

		assert_int_equal(g->type, GEN_URI);
		assert_string_equal(
		    (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
		    "http://ca.example.org/ca.crl");
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	X509_free(leaf);
	leaf = NULL;
	assert_int_equal(tg_test_dir_count(issued), 2);

	/* within the policy but past the CA certificate (3650 days) */
	expect(1, "the CA certificate expires on", "issue", "--dir", ca, "--csr", P("csr.pem"),
	       "--id", "spiffe://example.org/svc/api", "--attestation", P("att.pem"),
	       "--intermediate", P("f9.pem"), "--out", P("api2.pem"), "--validity", "4000d");
	expect(1, "does not verify with its public key", "issue", "--dir", ca, "--csr",
	       P("bad.pem"), "--id", "spiffe://example.org/svc/api", "--attestation", P("att.pem"),
	       "--intermediate", P("f9.pem"), "--out", P("api2.pem"));
	expect(1, "no proof that the key lives on a token", "issue", "--dir", ca, "--csr",
	       P("csr.pem"), "--id", "spiffe://example.org/svc/api", "--out", P("api2.pem"));
	/* the roots directory gone, then empty */
	assert_int_equal(rename(P("roots"), P("roots.away")), 0);
	expect(1, "cannot read attestation roots directory", "issue", "--dir", ca, "--csr",
	       P("csr.pem"), "--id", "spiffe://example.org/svc/api", "--attestation", P("att.pem"),
	       "--intermediate", P("f9.pem"), "--out", P("api2.pem"));
	assert_int_equal(mkdir(P("roots"), 0700), 0);
	expect(1, "no trusted root in attestation roots directory", "issue", "--dir", ca, "--csr",
	       P("csr.pem"), "--id", "spiffe://example.org/svc/api", "--attestation", P("att.pem"),
	       "--intermediate", P("f9.pem"), "--out", P("api2.pem"));
	assert_int_equal(rmdir(P("roots")), 0);
	assert_int_equal(rename(P("roots.away"), P("roots")), 0);
	assert_int_equal(access(P("api2.pem"), F_OK), -1);
	assert_int_equal(tg_test_dir_count(issued), 2);

	/* the API's own refusals */
	tg_error_clear(&err);
	assert_int_equal(tg_ca_store_open(ca, 1, &s, &err), 0);
	memset(&req, 0, sizeof(req));
	req.csr = csr;
	req.id = "spiffe://example.org/svc/api";
	req.att = att;
	tg_error_clear(&err);
	assert_int_equal(tg_ca_issue(s, &req, &leaf, NULL, &err), TG_ERR_USAGE);
	assert_non_null(strstr(err.msg, "needs its F9 device certificate"));
	req.hsm_key_uri = "pkcs11:token=hsm;object=k";
	tg_error_clear(&err);
	assert_int_equal(tg_ca_issue(s, &req, &leaf, NULL, &err), TG_ERR_USAGE);
	assert_non_null(strstr(err.msg, "not both"));
	req.hsm_key_uri = NULL;
	req.csr = NULL;
	tg_error_clear(&err);
	assert_int_equal(tg_ca_issue(s, &req, &leaf, NULL, &err), TG_ERR_CSR);
	assert_non_null(strstr(err.msg, "no usable public key"));
	assert_null(leaf);
	assert_int_equal(tg_test_dir_count(issued), 2);
	tg_ca_store_free(s);

	X509_REQ_free(csr);
	X509_REQ_free(bad);
	X509_free(root);
	X509_free(f9);
	X509_free(att);
	EVP_PKEY_free(rootk);
	EVP_PKEY_free(f9k);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	tg_test_tmpdir_remove(issued);
	tg_test_tmpdir_remove(ca);
	tg_test_tmpdir_remove(P("roots"));
	tg_test_tmpdir_remove(T);
}

/* Adds extension oid with value der (n bytes) to exts. */
static void
ext_push(STACK_OF(X509_EXTENSION) * exts, const char *oid, const unsigned char *der, int n)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	assert_true(o != NULL && os != NULL && ASN1_OCTET_STRING_set(os, der, n));
	assert_non_null(e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os));
	assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
}

/* A CSR of k carrying (Yubico / TameMyCerts format) the attestation under
 * att_oid (NULL: none), f9 under .2 (NULL: none), and when twice the
 * attestation a second time. */
static void
csr_embed(const char *name, EVP_PKEY *k, const char *att_oid, X509 *att, X509 *f9, int twice)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_REQ *r = X509_REQ_new();
	unsigned char *der = NULL;
	int n;

	assert_true(exts != NULL && r != NULL);
	if (att_oid != NULL) {
		assert_true((n = i2d_X509(att, &der)) > 0);
		ext_push(exts, att_oid, der, n);
		if (twice)
			ext_push(exts, att_oid, der, n);
		OPENSSL_free(der);
		der = NULL;
	}
	if (f9 != NULL) {
		assert_true((n = i2d_X509(f9, &der)) > 0);
		ext_push(exts, "1.3.6.1.4.1.41482.3.2", der, n);
		OPENSSL_free(der);
	}
	assert_int_equal(X509_REQ_add_extensions(r, exts), 1);
	assert_int_equal(X509_REQ_set_pubkey(r, k), 1);
	assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
	pem_out(name, NULL, r);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(r);
}

/*
 * `ca issue` with the attestation in the CSR: taken from there (new and old
 * OID), with --intermediate then naming only further intermediates; a CSR
 * with half of it, a duplicate or a non-certificate refused. And
 * verify-attestation printing a token serial beyond JSON's integers as a
 * string.
 */
static void
test_csr_embedded(void **state)
{
	EVP_PKEY *rootk = EVP_EC_gen("P-256"), *f9k = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	static const unsigned char big[] = {0x02, 0x09, 0x00, 0xff, 0xff, 0xff,
	                                    0xff, 0xff, 0xff, 0xff, 0xff};
	X509 *root, *f9, *att;
	X509_EXTENSION *e;
	ASN1_OBJECT *o;
	ASN1_OCTET_STRING *os;
	char ca[128], issued[256];

	(void)state;
	assert_true(rootk != NULL && f9k != NULL && k != NULL);
	assert_int_equal(tg_test_tmpdir("tg-test-ca-cmd", T, sizeof(T)), 0);
	root = tg_test_yk_cert("Test Attestation Root", rootk, NULL, NULL, "critical,CA:TRUE", 0);
	f9 = tg_test_yk_cert("Yubico PIV Attestation", f9k, root, rootk,
	                     "critical,CA:TRUE,pathlen:0", 0);
	att = tg_test_yk_cert("YubiKey PIV Attestation 9a", k, f9, f9k, NULL, 1);
	assert_int_equal(mkdir(P("roots"), 0700), 0);
	pem_out("roots/root.pem", root, NULL);
	pem_out("root.pem", root, NULL);
	text_out("junk.pem", "junk\n");
	snprintf(ca, sizeof(ca), "%s", P("ca"));
	snprintf(issued, sizeof(issued), "%s/issued", ca);
	expect(0, "CA created in", "init", "--dir", ca, "--trust-domain", "example.org",
	       "--attestation-roots", P("roots"));

	csr_embed("both.csr", k, "1.3.6.1.4.1.41482.3.11", att, f9, 0);
	expect(0, "level device-attested", "issue", "--dir", ca, "--csr", P("both.csr"), "--id",
	       "spiffe://example.org/dev/emb", "--out", P("emb.pem"));
	csr_embed("old.csr", k, "1.3.6.1.4.1.41482.3.1", att, f9, 0);
	expect(0, "level device-attested", "issue", "--dir", ca, "--csr", P("old.csr"), "--id",
	       "spiffe://example.org/dev/emb2", "--out", P("emb2.pem"), "--intermediate",
	       P("root.pem"));
	assert_int_equal(tg_test_dir_count(issued), 4);
	expect(1, "junk.pem", "issue", "--dir", ca, "--csr", P("old.csr"), "--id",
	       "spiffe://example.org/dev/emb3", "--out", P("emb3.pem"), "--intermediate",
	       P("junk.pem"));
	csr_embed("half.csr", k, "1.3.6.1.4.1.41482.3.11", att, NULL, 0);
	expect(1, "the CSR carries an attestation but not its F9 certificate", "issue", "--dir", ca,
	       "--csr", P("half.csr"), "--id", "spiffe://example.org/dev/emb3", "--out",
	       P("emb3.pem"));
	csr_embed("f9only.csr", k, NULL, NULL, f9, 0);
	expect(1, "the CSR carries an F9 certificate but not an attestation", "issue", "--dir", ca,
	       "--csr", P("f9only.csr"), "--id", "spiffe://example.org/dev/emb3", "--out",
	       P("emb3.pem"));
	csr_embed("twice.csr", k, "1.3.6.1.4.1.41482.3.11", att, f9, 1);
	expect(1, "more than once", "issue", "--dir", ca, "--csr", P("twice.csr"), "--id",
	       "spiffe://example.org/dev/emb3", "--out", P("emb3.pem"));
	{
		/* .11 holding bytes that are not a certificate */
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_REQ *r = X509_REQ_new();

		ext_push(exts, "1.3.6.1.4.1.41482.3.11", big, (int)sizeof(big));
		assert_int_equal(X509_REQ_add_extensions(r, exts), 1);
		assert_int_equal(X509_REQ_set_pubkey(r, k), 1);
		assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
		pem_out("notcert.csr", NULL, r);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		X509_REQ_free(r);
	}
	expect(1, "is not a DER certificate", "issue", "--dir", ca, "--csr", P("notcert.csr"),
	       "--id", "spiffe://example.org/dev/emb3", "--out", P("emb3.pem"));
	assert_int_equal(access(P("emb3.pem"), F_OK), -1);
	assert_int_equal(tg_test_dir_count(issued), 4);

	/* a token serial of 2^64 - 1 is printed as a decimal string */
	o = OBJ_txt2obj("1.3.6.1.4.1.41482.3.7", 1);
	os = ASN1_OCTET_STRING_new();
	assert_true(o != NULL && os != NULL && ASN1_OCTET_STRING_set(os, big, (int)sizeof(big)));
	assert_non_null(e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os));
	assert_int_equal(X509_add_ext(att, e, -1), 1);
	assert_true(X509_sign(att, f9k, EVP_sha256()) > 0);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
	pem_out("att.pem", att, NULL);
	pem_out("f9.pem", f9, NULL);
	expect(0, "\"serial\": \"18446744073709551615\"", "verify-attestation", "--roots",
	       P("roots"), "--attestation", P("att.pem"), "--intermediate", P("f9.pem"));

	X509_free(root);
	X509_free(f9);
	X509_free(att);
	EVP_PKEY_free(rootk);
	EVP_PKEY_free(f9k);
	EVP_PKEY_free(k);
	tg_test_tmpdir_remove(issued);
	tg_test_tmpdir_remove(ca);
	tg_test_tmpdir_remove(P("roots"));
	tg_test_tmpdir_remove(T);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_flow),
	    cmocka_unit_test(test_issue_policy),
	    cmocka_unit_test(test_csr_embedded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
