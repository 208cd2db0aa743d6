/*
 * test_gate_authz.c — the pure parts of the gate's authz mode (authz.c,
 * gate-int.h): decoding the X-Tokengate-Client-Cert header (nginx's
 * $ssl_client_escaped_cert) strictly, the cache of verdicts (header key,
 * generation, expiry, bounded sets), the whole evaluation of a
 * subrequest with a real verifier (tests/lib/gate_authz_pki.h), and the
 * verifier's refusals of what only certificates made here at test time
 * can show (a CA certificate as client, a CRL without nextUpdate).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "gate-int.h"
#include "gate_authz_pki.h"
#include "tg_test.h"

static char dir[] = "/tmp/tg-gate-authz-XXXXXX";
static char p_ca[256];
static struct tg_gate_verify *verifier;
static struct tg_gate_policy pol;

static const char policy_text[] =
    "routes:\n"
    "  - name: completions\n"
    "    methods: [POST]\n"
    "    paths: [\"/v1/chat/completions\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\", key: device-attested}]\n"
    "  - name: admin\n"
    "    paths: [\"/admin/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/svc/root\"}]\n"
    "  - name: touchy\n"
    "    paths: [\"/touch/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\", touch: always}]\n";

/* tg_gate_authz_cert_der on an exact-size heap copy of s (ASan sees over-reads). */
static int
decode(const char *s, uint8_t **der, size_t *len, const char **why)
{
	size_t n = strlen(s);
	char *copy = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, s, n);
	r = tg_gate_authz_cert_der(copy, n, der, len, why);
	free(copy);
	return r;
}

/* The DER of PEM text pem, for comparisons. */
static void
der_of(const char *pem, uint8_t **der, size_t *len)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	unsigned char *p = NULL;
	int n;

	assert_non_null(x);
	n = i2d_X509(x, &p);
	assert_true(n > 0);
	*der = p;
	*len = (size_t)n;
	X509_free(x);
	BIO_free(b);
}

static int
setup(void **state)
{
	struct tg_error err;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p_ca, sizeof(p_ca), "%s/ca.pem", dir);
	assert_non_null(f = fopen(p_ca, "w"));
	fputs(GA_CA_PEM, f);
	fclose(f);
	tg_error_clear(&err);
	if (tg_gate_verify_new((const char *const[]){p_ca}, 1, NULL, &verifier, &err) != 0)
		fail_msg("verifier: %s", err.msg);
	if (tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "p.yaml", &pol, &err) != 0)
		fail_msg("policy: %s", err.msg);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_gate_verify_free(verifier);
	tg_gate_policy_clear(&pol);
	unlink(p_ca);
	rmdir(dir);
	return 0;
}

/* ---- the certificate header ---- */

static void
test_decode_good(void **state)
{
	uint8_t *der = NULL, *want = NULL;
	size_t len = 0, wlen = 0;
	const char *why = NULL;
	char *e = ga_escape(GA_ALICE_PEM, 0), *lower, *p;

	(void)state;
	der_of(GA_ALICE_PEM, &want, &wlen);
	assert_int_equal(decode(e, &der, &len, &why), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(der, want, wlen);
	free(der);
	/* lower-case hex digits are the same bytes */
	lower = strdup(e);
	for (p = lower; *p != '\0'; p++)
		if (*p == '%') {
			p[1] = (char)(p[1] >= 'A' && p[1] <= 'F' ? p[1] + 32 : p[1]);
			p[2] = (char)(p[2] >= 'A' && p[2] <= 'F' ? p[2] + 32 : p[2]);
		}
	assert_int_equal(decode(lower, &der, &len, &why), 0);
	assert_memory_equal(der, want, wlen);
	free(der);
	free(lower);
	/* without the last newline, and with trailing newlines */
	e[strlen(e) - 3] = '\0';
	assert_int_equal(decode(e, &der, &len, &why), 0);
	free(der);
	free(e);
	OPENSSL_free(want);
}

static void
test_decode_refused(void **state)
{
	static const struct {
		const char *pem; /* escaped as nginx does, unless raw */
		int raw;
		const char *why;
	} bad[] = {
	    {"", 1, "the header is empty"},
	    {"garbage", 1, "it does not start with -----BEGIN CERTIFICATE-----"},
	    {"-----BEGIN CERTIFICATE-----\n", 1,
	     "a raw byte other than letters, digits, '-', '.', '_' and '~'"},
	    {"%2", 1, "a '%' not followed by two hex digits"},
	    {"%", 1, "a '%' not followed by two hex digits"},
	    {"%G0", 1, "a '%' not followed by two hex digits"},
	    {"%00", 1, "the decoded text holds a control or non-ASCII byte"},
	    {"%0D%0A", 1, "the decoded text holds a control or non-ASCII byte"},
	    {"%C3%A9", 1, "the decoded text holds a control or non-ASCII byte"},
	    {"-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n", 0,
	     "the decoded text holds a control or non-ASCII byte"},
	    {" -----BEGIN CERTIFICATE-----\n", 0,
	     "it does not start with -----BEGIN CERTIFICATE-----"},
	    {"-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n", 0,
	     "it does not start with -----BEGIN CERTIFICATE-----"},
	    {"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", 0,
	     "the PEM block is broken"},
	    {"-----BEGIN CERTIFICATE-----\nMIIB\n", 0, "the PEM block is broken"},
	    {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n", 0,
	     "the PEM block is broken"},
	    {"-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
	     "AES-128-CBC,00000000000000000000000000000000\n\nMIIB\n-----END "
	     "CERTIFICATE-----\n",
	     0, "the PEM block"},
	    {"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 0,
	     "the PEM block is broken"},
	    {GA_ALICE_PEM GA_OTHERCA_PEM, 0, "more than one certificate"},
	    {GA_ALICE_PEM "trailing\n", 0, "text after the END CERTIFICATE line"},
	    {GA_ALICE_PEM " \n", 0, "text after the END CERTIFICATE line"},
	};
	uint8_t *der;
	size_t len, i;
	const char *why;
	char *e;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = bad[i].raw ? strdup(bad[i].pem) : ga_escape(bad[i].pem, 0);
		der = (uint8_t *)"x";
		len = 7;
		why = NULL;
		if (decode(e, &der, &len, &why) != TG_ERR_FORMAT)
			fail_msg("case %zu accepted: %s", i, bad[i].pem);
		assert_null(der);
		assert_int_equal(len, 0);
		if (why == NULL || strstr(why, bad[i].why) == NULL)
			fail_msg("case %zu: why '%s', want '%s'", i, why ? why : "(null)",
			         bad[i].why);
		free(e);
	}
}

static void
test_decode_oversized(void **state)
{
	uint8_t *der = NULL;
	size_t len = 0, n, i;
	const char *why = NULL;
	char *big, *pem, *p;

	(void)state;
	/* an escaped value longer than any certificate the gate takes */
	n = TG_GATE_AUTHZ_DER_MAX * 6 + 1;
	big = malloc(n + 1);
	memset(big, 'A', n);
	big[n] = '\0';
	assert_int_equal(decode(big, &der, &len, &why), TG_ERR_FORMAT);
	assert_non_null(strstr(why, "longer than the largest certificate"));
	free(big);
	/* a well-formed PEM block whose DER is over TG_GATE_AUTHZ_DER_MAX */
	n = (TG_GATE_AUTHZ_DER_MAX + 300) / 3 * 4;
	pem = malloc(n + n / 64 + 128);
	assert_non_null(pem);
	p = pem + snprintf(pem, 64, "-----BEGIN CERTIFICATE-----\n");
	for (i = 0; i < n; i++) {
		*p++ = 'A';
		if (i % 64 == 63)
			*p++ = '\n';
	}
	snprintf(p, 64, "\n-----END CERTIFICATE-----\n");
	big = ga_escape(pem, 0);
	assert_int_equal(decode(big, &der, &len, &why), TG_ERR_FORMAT);
	assert_non_null(strstr(why, "larger than the gate takes"));
	free(big);
	free(pem);
}

/* ---- the cache ---- */

static void
entry(struct tg_gate_authz_entry *e, uint8_t first, uint8_t tag, unsigned long gen, time_t until)
{
	memset(e, 0, sizeof(*e));
	e->sha256[0] = first;
	e->sha256[31] = tag;
	e->generation = gen;
	e->until = until;
	snprintf(e->peer.identity, sizeof(e->peer.identity), "spiffe://example.org/dev/u%u", tag);
}

static void
test_cache_generation_and_expiry(void **state)
{
	struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();
	struct tg_gate_authz_entry e;
	const struct tg_gate_authz_entry *g;
	uint8_t other[32] = {0};

	(void)state;
	assert_non_null(c);
	entry(&e, 7, 1, 3, 1000);
	assert_null(tg_gate_authz_cache_get(c, e.sha256, 3, 10));
	tg_gate_authz_cache_put(c, &e);
	g = tg_gate_authz_cache_get(c, e.sha256, 3, 10);
	assert_non_null(g);
	assert_string_equal(g->peer.identity, "spiffe://example.org/dev/u1");
	/* another fingerprint in the same set is not it */
	other[0] = 7;
	assert_null(tg_gate_authz_cache_get(c, other, 3, 10));
	/* at its until (notAfter, CRL nextUpdate or TTL) it is not used */
	assert_null(tg_gate_authz_cache_get(c, e.sha256, 3, 1000));
	/* ... and it was dropped: even an earlier time misses now */
	assert_null(tg_gate_authz_cache_get(c, e.sha256, 3, 10));
	/* a new generation (reload, new CRL) invalidates it */
	tg_gate_authz_cache_put(c, &e);
	assert_non_null(tg_gate_authz_cache_get(c, e.sha256, 3, 10));
	assert_null(tg_gate_authz_cache_get(c, e.sha256, 4, 10));
	assert_null(tg_gate_authz_cache_get(c, e.sha256, 3, 10));
	/* NULL cache: nothing cached */
	assert_null(tg_gate_authz_cache_get(NULL, e.sha256, 3, 10));
	tg_gate_authz_cache_put(NULL, &e);
	tg_gate_authz_cache_free(c);
	tg_gate_authz_cache_free(NULL);
}

static void
test_cache_bounded_lru(void **state)
{
	struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();
	struct tg_gate_authz_entry e[TG_GATE_AUTHZ_WAYS + 2];
	unsigned i, n = 0;

	(void)state;
	for (i = 0; i < TG_GATE_AUTHZ_WAYS + 2; i++)
		entry(&e[i], 42, (uint8_t)(i + 1), 1, 1000);
	/* fill one set, use the first entry again, then add one more */
	for (i = 0; i < TG_GATE_AUTHZ_WAYS; i++)
		tg_gate_authz_cache_put(c, &e[i]);
	assert_non_null(tg_gate_authz_cache_get(c, e[0].sha256, 1, 1));
	tg_gate_authz_cache_put(c, &e[TG_GATE_AUTHZ_WAYS]);
	/* the least recently used (e[1]) went, e[0] stayed */
	assert_non_null(tg_gate_authz_cache_get(c, e[0].sha256, 1, 1));
	assert_null(tg_gate_authz_cache_get(c, e[1].sha256, 1, 1));
	assert_non_null(tg_gate_authz_cache_get(c, e[TG_GATE_AUTHZ_WAYS].sha256, 1, 1));
	for (i = 0; i < TG_GATE_AUTHZ_WAYS + 1; i++)
		n += tg_gate_authz_cache_get(c, e[i].sha256, 1, 1) != NULL;
	assert_int_equal(n, TG_GATE_AUTHZ_WAYS);
	/* storing the same fingerprint again replaces it, it takes no second slot */
	e[0].rc = TG_ERR_REVOKED;
	tg_gate_authz_cache_put(c, &e[0]);
	assert_int_equal(tg_gate_authz_cache_get(c, e[0].sha256, 1, 1)->rc, TG_ERR_REVOKED);
	n = 0;
	for (i = 0; i < TG_GATE_AUTHZ_WAYS + 1; i++)
		n += tg_gate_authz_cache_get(c, e[i].sha256, 1, 1) != NULL;
	assert_int_equal(n, TG_GATE_AUTHZ_WAYS);
	/* other sets are untouched */
	entry(&e[TG_GATE_AUTHZ_WAYS + 1], 43, 99, 1, 1000);
	tg_gate_authz_cache_put(c, &e[TG_GATE_AUTHZ_WAYS + 1]);
	assert_non_null(tg_gate_authz_cache_get(c, e[TG_GATE_AUTHZ_WAYS + 1].sha256, 1, 1));
	assert_non_null(tg_gate_authz_cache_get(c, e[0].sha256, 1, 1));
	tg_gate_authz_cache_free(c);
}

/* ---- the whole evaluation ---- */

static void
in_of(struct tg_gate_authz_in *in, const char *cert, const char *method, const char *uri)
{
	memset(in, 0, sizeof(*in));
	in->cert = cert;
	in->ncert = cert != NULL;
	in->method = method;
	in->nmethod = method != NULL;
	in->uri = uri;
	in->nuri = uri != NULL;
}

static void
test_evaluate(void **state)
{
	struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();
	struct tg_gate_authz_out *o = malloc(sizeof(*o));
	struct tg_gate_authz_in in;
	char *alice = ga_escape(GA_ALICE_PEM, 0), *other = ga_escape(GA_OTHERCA_PEM, 0);

	(void)state;
	/* allowed: verified (a miss), then from the cache */
	in_of(&in, alice, "POST", "/v1/chat/./completions?x=1");
	assert_int_equal(tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o), 0);
	assert_true(o->allow && o->verified);
	assert_int_equal(o->cache_hit, 0);
	assert_int_equal(o->route, 0);
	assert_string_equal(o->path, "/v1/chat/completions");
	assert_string_equal(o->method, "POST");
	assert_string_equal(o->peer.identity, "spiffe://example.org/dev/alice");
	assert_int_equal(o->peer.prov.level, TG_PROV_DEVICE_ATTESTED);
	assert_int_equal(tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o), 0);
	assert_true(o->allow);
	assert_int_equal(o->cache_hit, 1);
	/* a new generation verifies again */
	assert_int_equal(tg_gate_authz_evaluate(verifier, c, 2, &pol, &in, GA_NOW, o), 0);
	assert_int_equal(o->cache_hit, 0);
	/* past notAfter the cached verdict is not used: the verifier says expired */
	assert_int_equal(tg_gate_authz_evaluate(verifier, c, 2, &pol, &in, GA_NOT_AFTER + 1, o), 0);
	assert_int_equal(o->cache_hit, 0);
	assert_false(o->allow || o->verified);
	assert_non_null(strstr(o->reason, "has expired"));
	assert_string_equal(o->peer.identity, "");
	/* policy denials: route and reason */
	in_of(&in, alice, "GET", "/admin/x");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow);
	assert_true(o->verified);
	assert_int_equal(o->route, 1);
	assert_string_equal(o->reason,
	                    "route admin has no allow entry for spiffe://example.org/dev/alice");
	in_of(&in, alice, "GET", "/touch/x");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_string_equal(o->reason, "route touchy needs touch policy always; the key has never");
	in_of(&in, alice, "GET", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow);
	assert_int_equal(o->route, -1);
	/* a URI the gate refuses: the normalization's reason, no path */
	in_of(&in, alice, "GET", "/a%2fb");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow);
	assert_true(o->verified);
	assert_string_equal(o->path, "");
	assert_non_null(strstr(o->reason, "%2F"));
	/* another CA: refused, also from the cache */
	in_of(&in, other, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow || o->verified);
	assert_non_null(strstr(o->reason, "was not issued by a configured tokengate CA"));
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_int_equal(o->cache_hit, 1);
	assert_false(o->allow || o->verified);
	assert_non_null(strstr(o->reason, "was not issued by a configured tokengate CA"));
	/* ... until its refusal's TTL ends */
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW + TG_GATE_AUTHZ_NEG_TTL, o);
	assert_int_equal(o->cache_hit, 0);
	/* headers: missing, doubled, bad */
	in_of(&in, NULL, "GET", "/x");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_string_equal(o->reason, "no client certificate: the gate requires a token-backed "
	                               "client certificate");
	assert_int_equal(o->cache_hit, -1);
	in_of(&in, "", "GET", "/x");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_non_null(strstr(o->reason, "no client certificate"));
	in_of(&in, alice, "POST", "/v1/chat/completions");
	in.ncert = 2;
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow || o->verified);
	assert_non_null(strstr(o->reason, "2 X-Tokengate-Client-Cert headers"));
	in_of(&in, alice, NULL, "/x");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_non_null(strstr(o->reason, "X-Original-Method"));
	in_of(&in, alice, "GE T", "/x");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_non_null(strstr(o->reason, "X-Original-Method"));
	in_of(&in, alice, "POST", "/x");
	in.nmethod = 2;
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_non_null(strstr(o->reason, "X-Original-Method"));
	in_of(&in, alice, "POST", NULL);
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_non_null(strstr(o->reason, "X-Original-URI"));
	in_of(&in, alice, "POST", "/v1/chat/completions");
	in.nuri = 2;
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow);
	assert_non_null(strstr(o->reason, "X-Original-URI"));
	in_of(&in, "garbage", "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, o);
	assert_false(o->allow);
	assert_non_null(strstr(o->reason, "is not one URL-escaped PEM certificate"));
	/* no cache: verified every time */
	in_of(&in, alice, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, NULL, 3, &pol, &in, GA_NOW, o);
	assert_true(o->allow);
	assert_int_equal(o->cache_hit, 0);
	/* NULL arguments: a deny */
	assert_int_equal(tg_gate_authz_evaluate(NULL, c, 3, &pol, &in, GA_NOW, o),
	                 TG_ERR_INVALID_ARG);
	assert_false(o->allow);
	assert_int_equal(tg_gate_authz_evaluate(verifier, c, 3, &pol, &in, GA_NOW, NULL),
	                 TG_ERR_INVALID_ARG);
	free(alice);
	free(other);
	free(o);
	tg_gate_authz_cache_free(c);
}

/* A DER that is not one certificate (trailing bytes) is refused, and so cached. */
static void
test_evaluate_bad_der(void **state)
{
	struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();
	struct tg_gate_authz_out *o = malloc(sizeof(*o));
	struct tg_gate_authz_in in;
	uint8_t *der, *d2;
	size_t len;
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL, *mem = NULL, *e;
	long n;

	(void)state;
	der_of(GA_ALICE_PEM, &der, &len);
	d2 = malloc(len + 2);
	memcpy(d2, der, len);
	d2[len] = 0x05;
	d2[len + 1] = 0x00; /* an ASN.1 NULL after the certificate */
	assert_true(PEM_write_bio(b, "CERTIFICATE", "", d2, (long)len + 2) > 0);
	n = BIO_get_mem_data(b, &mem);
	pem = malloc((size_t)n + 1);
	assert_non_null(pem);
	memcpy(pem, mem, (size_t)n);
	pem[n] = '\0';
	e = ga_escape(pem, 0);
	in_of(&in, e, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_false(o->allow || o->verified);
	assert_non_null(strstr(o->reason, "not well-formed DER"));
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_int_equal(o->cache_hit, 1);
	assert_false(o->allow || o->verified);
	free(e);
	free(pem);
	free(d2);
	OPENSSL_free(der);
	BIO_free(b);
	free(o);
	tg_gate_authz_cache_free(c);
}

/*
 * The cache is keyed by the header's bytes as received (their SHA-256), an
 * entry made only after those bytes decoded: a header that differs in one
 * byte never takes another's verdict. The same certificate escaped another
 * way is decoded and verified on its own; a byte changed inside the base64
 * is another certificate (refused); a changed escape that no longer
 * decodes is refused by the decoder every time (never cached).
 */
static void
test_evaluate_header_key(void **state)
{
	struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();
	struct tg_gate_authz_out *o = malloc(sizeof(*o));
	struct tg_gate_authz_in in;
	char *alice = ga_escape(GA_ALICE_PEM, 0), *lower = strdup(alice), *flip = strdup(alice),
	     *cr = strdup(alice), *p;
	size_t i, n = strlen(alice);

	(void)state;
	assert_non_null(lower);
	assert_non_null(flip);
	assert_non_null(cr);
	/* the same bytes of text, the escapes' hex digits in lower case */
	for (i = 0; i + 2 < n; i++)
		if (lower[i] == '%') {
			lower[i + 1] = (char)tolower((unsigned char)lower[i + 1]);
			lower[i + 2] = (char)tolower((unsigned char)lower[i + 2]);
		}
	assert_string_not_equal(lower, alice);
	/* one base64 letter in the middle of the body changed */
	for (i = n / 2;
	     i < n && !((flip[i] >= 'A' && flip[i] < 'Z') || (flip[i] >= 'a' && flip[i] < 'z'));
	     i++)
		;
	assert_true(i < n);
	flip[i]++;
	/* the first newline's escape (%0A) made a carriage return (%0D) */
	assert_non_null(p = strstr(cr, "%0A"));
	p[2] = 'D';

	in_of(&in, alice, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_true(o->allow && o->verified);
	assert_int_equal(o->cache_hit, 0);
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_true(o->allow);
	assert_int_equal(o->cache_hit, 1);
	/* escaped otherwise: not alice's entry, verified on its own (allowed) */
	in_of(&in, lower, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_int_equal(o->cache_hit, 0);
	assert_true(o->allow && o->verified);
	assert_string_equal(o->peer.identity, "spiffe://example.org/dev/alice");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_int_equal(o->cache_hit, 1);
	/* one byte of the base64 changed: another certificate, refused, twice */
	in_of(&in, flip, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_int_equal(o->cache_hit, 0);
	assert_false(o->allow || o->verified);
	assert_string_equal(o->peer.identity, "");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_int_equal(o->cache_hit, 1);
	assert_false(o->allow || o->verified);
	/* one escape changed so the text no longer decodes: refused by the
	 * decoder each time, never a cache entry */
	in_of(&in, cr, "POST", "/v1/chat/completions");
	for (i = 0; i < 2; i++) {
		tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
		assert_int_equal(o->cache_hit, -1);
		assert_false(o->allow || o->verified);
		assert_non_null(strstr(o->reason, "is not one URL-escaped PEM certificate"));
	}
	/* alice's own entry is untouched by all of that */
	in_of(&in, alice, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(verifier, c, 1, &pol, &in, GA_NOW, o);
	assert_true(o->allow);
	assert_int_equal(o->cache_hit, 1);
	free(alice);
	free(lower);
	free(flip);
	free(cr);
	free(o);
	tg_gate_authz_cache_free(c);
}

/* With a CRL a verdict is kept only until its nextUpdate: then the verifier refuses. */
static void
test_evaluate_crl_until(void **state)
{
	struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();
	struct tg_gate_authz_out *o = malloc(sizeof(*o));
	struct tg_gate_authz_in in;
	struct tg_gate_verify *v = NULL;
	struct tg_error err;
	char p_crl[300], *alice = ga_escape(GA_ALICE_PEM, 0);
	FILE *f;

	(void)state;
	snprintf(p_crl, sizeof(p_crl), "%s/ca.crl", dir);
	assert_non_null(f = fopen(p_crl, "w"));
	fputs(GA_CRL_PEM, f);
	fclose(f);
	tg_error_clear(&err);
	if (tg_gate_verify_new((const char *const[]){p_ca}, 1, p_crl, &v, &err) != 0)
		fail_msg("verifier with CRL: %s", err.msg);
	assert_int_equal(tg_gate_verify_crl_until(v), GA_CRL_NEXT);
	assert_int_equal(tg_gate_verify_crl_until(verifier), 0); /* no CRL */
	assert_int_equal(tg_gate_verify_crl_until(NULL), 0);
	in_of(&in, alice, "POST", "/v1/chat/completions");
	tg_gate_authz_evaluate(v, c, 1, &pol, &in, GA_NOW, o);
	assert_true(o->allow);
	tg_gate_authz_evaluate(v, c, 1, &pol, &in, GA_CRL_NEXT - 1, o);
	assert_true(o->allow);
	assert_int_equal(o->cache_hit, 1);
	/* at nextUpdate the cached allow is not used; the stale CRL refuses */
	tg_gate_authz_evaluate(v, c, 1, &pol, &in, GA_CRL_NEXT, o);
	assert_int_equal(o->cache_hit, 0);
	assert_false(o->allow || o->verified);
	assert_non_null(strstr(o->reason, "the configured CRL is out of date"));
	tg_gate_verify_free(v);
	unlink(p_crl);
	free(alice);
	free(o);
	tg_gate_authz_cache_free(c);
}

/* The three headers are picked out of a head case-insensitively and counted. */
static void
test_in_from_head(void **state)
{
	struct tg_gate_http_header hs[] = {
	    {"Host", "authz"},
	    {"x-tokengate-client-cert", "A"},
	    {"X-ORIGINAL-METHOD", "GET"},
	    {"X-Original-URI", "/a"},
	    {"X-Tokengate-Client-Cert", "B"},
	    {"X-Tokengate-Identity", "spiffe://example.org/dev/mallory"},
	};
	struct tg_gate_http_head h;
	struct tg_gate_authz_in in;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.headers = hs;
	h.nheaders = sizeof(hs) / sizeof(hs[0]);
	tg_gate_authz_in_from_head(&h, &in);
	assert_int_equal(in.ncert, 2);
	assert_int_equal(in.nmethod, 1);
	assert_int_equal(in.nuri, 1);
	assert_string_equal(in.method, "GET");
	assert_string_equal(in.uri, "/a");
	tg_gate_authz_in_from_head(NULL, &in);
	assert_int_equal(in.ncert + in.nmethod + in.nuri, 0);
}

/* ---- the verifier, with certificates made here ---- */

/* Adds extension nid = value (openssl.cnf syntax) to x, issued by issuer. */
static void
ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key named cn, valid for a day, issued by issuer/ikey
 * (NULL: self-signed), with basicConstraints bc and extendedKeyUsage eku
 * (NULL: none). */
static X509 *
cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const char *bc,
         const char *eku)
{
	static long serial = 1;
	X509 *x = X509_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                            -1, 0),
	                 1);
	assert_int_equal(
	    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (bc != NULL)
		ext_add(x, issuer != NULL ? issuer : x, NID_basic_constraints, bc);
	if (eku != NULL)
		ext_add(x, issuer != NULL ? issuer : x, NID_ext_key_usage, eku);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

/* Writes x (or crl) as PEM to path. */
static void
pem_put(const char *path, X509 *x, X509_CRL *crl)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(x != NULL ? PEM_write_X509(f, x) : PEM_write_X509_CRL(f, crl), 1);
	assert_int_equal(fclose(f), 0);
}

/*
 * A client certificate that is itself a CA is refused at step 2, even when
 * it chains to the configured CA and its extendedKeyUsage has clientAuth.
 */
static void
test_verify_ca_as_client(void **state)
{
	EVP_PKEY *cak = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	X509 *ca, *leaf;
	struct tg_gate_verify *v = NULL;
	struct tg_gate_peer_info info;
	struct tg_error err;
	char p_ca2[300];

	(void)state;
	assert_true(cak != NULL && k != NULL);
	ca = cert_new("verify-test-ca", cak, NULL, NULL, "critical,CA:TRUE", NULL);
	leaf = cert_new("verify-test-sub-ca", k, ca, cak, "critical,CA:TRUE", "clientAuth");
	snprintf(p_ca2, sizeof(p_ca2), "%s/ca2.pem", dir);
	pem_put(p_ca2, ca, NULL);
	tg_error_clear(&err);
	if (tg_gate_verify_new((const char *const[]){p_ca2}, 1, NULL, &v, &err) != 0)
		fail_msg("verifier: %s", err.msg);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_verify_peer(v, leaf, NULL, time(NULL), &info, &err),
	                 TG_ERR_POLICY);
	assert_non_null(strstr(err.msg, "is a CA certificate (basicConstraints CA:TRUE)"));
	tg_gate_verify_free(v);
	unlink(p_ca2);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(k);
	EVP_PKEY_free(cak);
}

/*
 * A CRL must say until when it holds: one without nextUpdate is refused
 * when loaded (it could never be found out of date), as is one whose
 * nextUpdate has passed; one with a future nextUpdate is taken.
 */
static void
test_verify_crl_next_update(void **state)
{
	static const long next[] = {0, -3600, 3600}; /* 0: no nextUpdate */
	EVP_PKEY *cak = EVP_EC_gen("P-256");
	X509 *ca;
	X509_CRL *crl;
	ASN1_TIME *t;
	struct tg_gate_verify *v;
	struct tg_error err;
	char p_ca2[300], p_crl[300];
	size_t i;
	int r;

	(void)state;
	assert_non_null(cak);
	ca = cert_new("verify-test-ca", cak, NULL, NULL, "critical,CA:TRUE", NULL);
	snprintf(p_ca2, sizeof(p_ca2), "%s/ca2.pem", dir);
	snprintf(p_crl, sizeof(p_crl), "%s/ca2.crl", dir);
	pem_put(p_ca2, ca, NULL);
	for (i = 0; i < sizeof(next) / sizeof(next[0]); i++) {
		crl = X509_CRL_new();
		assert_non_null(crl);
		assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
		assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
		t = X509_gmtime_adj(NULL, -60);
		assert_non_null(t);
		assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
		ASN1_TIME_free(t);
		if (next[i] != 0) {
			t = X509_gmtime_adj(NULL, next[i]);
			assert_non_null(t);
			assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
			ASN1_TIME_free(t);
		}
		assert_true(X509_CRL_sign(crl, cak, EVP_sha256()) > 0);
		pem_put(p_crl, NULL, crl);
		v = NULL;
		tg_error_clear(&err);
		r = tg_gate_verify_new((const char *const[]){p_ca2}, 1, p_crl, &v, &err);
		if (next[i] > 0) {
			if (r != 0)
				fail_msg("CRL with nextUpdate in an hour: %s", err.msg);
		} else {
			assert_int_equal(r, TG_ERR_CONFIG);
			assert_non_null(strstr(err.msg, "is out of date"));
			assert_null(v);
		}
		tg_gate_verify_free(v);
		X509_CRL_free(crl);
	}
	unlink(p_crl);
	unlink(p_ca2);
	X509_free(ca);
	EVP_PKEY_free(cak);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_good),
	    cmocka_unit_test(test_decode_refused),
	    cmocka_unit_test(test_decode_oversized),
	    cmocka_unit_test(test_cache_generation_and_expiry),
	    cmocka_unit_test(test_cache_bounded_lru),
	    cmocka_unit_test(test_evaluate),
	    cmocka_unit_test(test_evaluate_bad_der),
	    cmocka_unit_test(test_evaluate_header_key),
	    cmocka_unit_test(test_evaluate_crl_until),
	    cmocka_unit_test(test_in_from_head),
	    cmocka_unit_test(test_verify_ca_as_client),
	    cmocka_unit_test(test_verify_crl_next_update),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
