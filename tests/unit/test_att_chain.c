/*
 * test_att_chain.c — the roles of an attestation chain (host/ca/attest.c),
 * with hierarchies shaped like Yubico's built here with OpenSSL at test
 * time: a root (CA, pathlen 1), the token's F9 device certificate (CA,
 * pathlen 0, firmware extension), the slot attestation certificate (no
 * extension but the Yubico ones). Every way around a check is one table
 * row asserting the refusal and its message; the genuine shapes (YubiKey 5,
 * YubiKey 4 F9 without basicConstraints, 5.7 through an intermediate) are
 * rows that must verify. Needs no test data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg_att.h"
#include "tg_ca_io.h"
#include "tg_test.h"

#define DAYS (24L * 3600L)

/* Yubico extensions a certificate carries (bits). */
enum {
	YK_FW = 1 << 0,     /* .3 firmware 5.4.3 */
	YK_SERIAL = 1 << 1, /* .7 serial 1234567 */
	YK_POLICY = 1 << 2, /* .8 PIN once, touch never */
	YK_FF = 1 << 3,     /* .9 form factor 0x81 */
	YK_SLOT = YK_FW | YK_SERIAL | YK_POLICY | YK_FF,
};

/* One certificate to make. Zero fields mean: none. */
struct spec {
	const char *cn;
	size_t cn_len;         /* CN length when it holds a NUL; 0: strlen */
	const char *cn2;       /* a second CN */
	const char *bc;        /* basicConstraints, as openssl.cnf writes it */
	const char *ku;        /* keyUsage */
	unsigned yk;           /* YK_* */
	unsigned yk_twice;     /* YK_* present a second time (X509_add_ext) */
	const char *crit;      /* OID of an extra critical extension */
	long from_days;        /* notBefore, days from now */
	long to_days;          /* notAfter, days from now; 0: 3650 */
	int akid;              /* authority key identifier from the issuer */
	const char *issuer_cn; /* an issuer name other than the issuer's subject */
};

/* Shapes of hierarchy; every one gets a fresh root in its own directory. */
enum shape {
	ROOT_F9,      /* root (pathlen 1) -> F9 -> attestation */
	U2F_F9,       /* root (pathlen 0, like Yubico's U2F root) -> F9 -> attestation */
	INTER_F9,     /* root -> intermediate (pathlen 0) -> F9 -> attestation */
	ROOTNAMED_F9, /* root -> intermediate named like the root -> F9 -> attestation */
	SLOT_AS_F9,   /* root -> F9 -> real slot certificate -> forged attestation */
};

struct chain_case {
	const char *name;
	enum shape shape;
	struct spec f9; /* for SLOT_AS_F9: the slot certificate used as F9 */
	struct spec att;
	const char *want; /* part of the refusal; NULL: verifies */
};

#define F9_CN   "Yubico PIV Attestation"
#define F9_BC   "critical,CA:TRUE,pathlen:0"
#define SLOT_CN "YubiKey PIV Attestation 9a"
#define F9_OK                                                                                      \
	{                                                                                          \
		.cn = F9_CN, .bc = F9_BC, .yk = YK_FW                                              \
	}
#define ATT_OK                                                                                     \
	{                                                                                          \
		.cn = SLOT_CN, .yk = YK_SLOT                                                       \
	}
#define YK4_F9                                                                                     \
	{                                                                                          \
		.cn = F9_CN, .yk = YK_FW                                                           \
	}
#define ATT_CN(s)                                                                                  \
	{                                                                                          \
		.cn = "YubiKey PIV Attestation " s, .yk = YK_SLOT                                  \
	}
#define CN_NUL "YubiKey PIV Attestation 9a\0junk"

/* clang-format off */
static const struct chain_case cases[] = {
    /* genuine shapes */
    {"YubiKey 5", ROOT_F9, F9_OK, ATT_OK, NULL},
    {"YubiKey 5.7 (F9 CN without slot, via an intermediate)", INTER_F9,
     {.cn = "YubiKey PIV Attestation", .bc = F9_BC, .yk = YK_FW}, ATT_OK, NULL},
    {"YubiKey 4 F9 without basicConstraints, issued by the root", ROOT_F9, YK4_F9, ATT_OK, NULL},
    {"YubiKey 4 F9 under a pathlen:0 root", U2F_F9, YK4_F9, ATT_OK, NULL},
    {"old firmware: policy extension only", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_FW | YK_POLICY}, NULL},
    {"retired slot 82", ROOT_F9, F9_OK, ATT_CN("82"), NULL},
    {"retired slot 95", ROOT_F9, F9_OK, ATT_CN("95"), NULL},
    {"retired slot 8a", ROOT_F9, F9_OK, ATT_CN("8a"), NULL},
    {"retired slot 8f", ROOT_F9, F9_OK, ATT_CN("8f"), NULL},
    {"slot 9e", ROOT_F9, F9_OK, ATT_CN("9e"), NULL},
    {"a known critical extension", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .ku = "critical,digitalSignature"}, NULL},

    /* attack 1: an attestation forged with a slot key, the slot
     * certificate given as F9 and the real F9 as intermediate */
    {"forged: slot certificate as F9", SLOT_AS_F9, ATT_OK, ATT_OK,
     "is a slot attestation certificate (its subject CN has the slot form"},
    {"forged: slot certificate with serial only as F9", SLOT_AS_F9,
     {.cn = "Not A Slot", .yk = YK_SERIAL}, ATT_OK,
     "(it carries the device serial extension 1.3.6.1.4.1.41482.3.7)"},
    {"forged: slot certificate with policy only as F9", SLOT_AS_F9,
     {.cn = "Not A Slot", .yk = YK_POLICY}, ATT_OK,
     "(it carries the PIN/touch policy extension 1.3.6.1.4.1.41482.3.8)"},
    {"forged: slot-form CN second as F9", SLOT_AS_F9,
     {.cn = "Not A Slot", .cn2 = "YubiKey PIV Attestation 9c"}, ATT_OK,
     "its subject CN has the slot form"},
    {"forged: no slot markers, not a CA, under the F9", SLOT_AS_F9, {.cn = "Not A Slot"},
     ATT_OK, "is not a CA (no basicConstraints) and is not issued directly by a trusted root"},

    /* attack 2: an F9 that may not issue certificates */
    {"F9 CA:FALSE, digitalSignature", ROOT_F9,
     {.cn = F9_CN, .bc = "critical,CA:FALSE", .ku = "critical,digitalSignature", .yk = YK_FW},
     ATT_OK, "is not a CA (basicConstraints CA:FALSE)"},
    {"F9 CA:FALSE under an intermediate", INTER_F9,
     {.cn = F9_CN, .bc = "CA:FALSE", .yk = YK_FW}, ATT_OK,
     "is not a CA (basicConstraints CA:FALSE)"},
    {"F9 CA:TRUE without keyCertSign", ROOT_F9,
     {.cn = F9_CN, .bc = F9_BC, .ku = "critical,digitalSignature", .yk = YK_FW}, ATT_OK,
     "is not a CA (its keyUsage lacks keyCertSign)"},

    /* the YubiKey 4 tolerance holds only directly under a trusted root */
    {"YubiKey 4 style F9 under an intermediate", INTER_F9, YK4_F9, ATT_OK,
     "is not a CA (no basicConstraints) and is not issued directly by a trusted root"},
    {"YubiKey 4 style F9 under an intermediate named like the root", ROOTNAMED_F9,
     {.cn = F9_CN, .yk = YK_FW, .akid = 1}, ATT_OK,
     "is not issued directly by a trusted root"},

    /* the attestation certificate itself */
    {"expired", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .from_days = -20, .to_days = -10}, "has expired"},
    {"not yet valid", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .from_days = 10, .to_days = 20}, "is not valid yet"},
    {"no policy extension", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_FW | YK_SERIAL | YK_FF},
     "lacks extension 1.3.6.1.4.1.41482.3.8 (PIN and touch policy)"},
    /* signed by the F9's key but naming another issuer: both orders of
     * X509_NAME_cmp, so that no sign of it passes */
    {"issuer name longer than the F9 subject", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .issuer_cn = F9_CN " 2"},
     "is not the F9 device certificate subject"},
    {"issuer name shorter than the F9 subject", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .issuer_cn = "Yubico"},
     "is not the F9 device certificate subject"},
    {"policy extension twice", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .yk_twice = YK_POLICY},
     "has extension 1.3.6.1.4.1.41482.3.8 more than once"},
    {"serial extension twice", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .yk_twice = YK_SERIAL},
     "has extension 1.3.6.1.4.1.41482.3.7 more than once"},
    {"CN with a wrong prefix", ROOT_F9, F9_OK,
     {.cn = "Yubikey PIV Attestation 9a", .yk = YK_SLOT},
     "subject CN 'Yubikey PIV Attestation 9a' is not exactly 'YubiKey PIV Attestation XX'"},
    {"CN with a trailing byte", ROOT_F9, F9_OK,
     {.cn = "YubiKey PIV Attestation 9a ", .yk = YK_SLOT}, "is not exactly"},
    {"CN with an embedded NUL", ROOT_F9, F9_OK,
     {.cn = CN_NUL, .cn_len = sizeof(CN_NUL) - 1, .yk = YK_SLOT},
     "subject CN 'YubiKey PIV Attestation 9a\\x00junk' is not exactly"},
    {"CN naming slot f9", ROOT_F9, F9_OK, ATT_CN("f9"), "names no PIV key slot"},
    {"CN naming slot 00", ROOT_F9, F9_OK, ATT_CN("00"), "names no PIV key slot"},
    {"CN naming slot 9b", ROOT_F9, F9_OK, ATT_CN("9b"), "names no PIV key slot"},
    {"CN naming slot 81", ROOT_F9, F9_OK, ATT_CN("81"), "names no PIV key slot"},
    {"CN naming slot 96", ROOT_F9, F9_OK, ATT_CN("96"), "names no PIV key slot"},
    {"CN naming slot 8g", ROOT_F9, F9_OK, ATT_CN("8g"), "names no PIV key slot"},
    {"CN naming slot 8A", ROOT_F9, F9_OK, ATT_CN("8A"), "names no PIV key slot"},
    {"CN naming slot 9A", ROOT_F9, F9_OK, ATT_CN("9A"), "names no PIV key slot"},
    {"two CNs", ROOT_F9, F9_OK, {.cn = SLOT_CN, .cn2 = SLOT_CN, .yk = YK_SLOT},
     "has more than one subject common name"},
    {"no CN", ROOT_F9, F9_OK, {.yk = YK_SLOT}, "has no subject common name"},
    {"unknown critical extension", ROOT_F9, F9_OK,
     {.cn = SLOT_CN, .yk = YK_SLOT, .crit = "1.3.6.1.4.1.99999.1"},
     "has critical extension 1.3.6.1.4.1.99999.1, which this verifier does not know"},
    {"F9 with an unknown critical extension", ROOT_F9,
     {.cn = F9_CN, .bc = F9_BC, .yk = YK_FW, .crit = "1.3.6.1.4.1.99999.1"}, ATT_OK,
     "unhandled critical extension"},
};
/* clang-format on */

static EVP_PKEY *
key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* Adds extension nid = value (openssl.cnf syntax), issuer as context. */
static void
ext_conf(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* Adds extension oid with raw value v (n bytes). */
static void
ext_raw(X509 *x, const char *oid, int critical, const void *v, int n)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	assert_non_null(o);
	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, v, n), 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, o, critical, os);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
}

/* The Yubico extensions of mask yk, values as a YubiKey 5.4.3 writes them. */
static void
ext_yubico(X509 *x, unsigned yk)
{
	static const unsigned char fw[] = {5, 4, 3}, serial[] = {0x02, 0x03, 0x12, 0xD6, 0x87},
	                           policy[] = {2, 1}, ff[] = {0x81};

	if (yk & YK_FW)
		ext_raw(x, "1.3.6.1.4.1.41482.3.3", 0, fw, sizeof(fw));
	if (yk & YK_SERIAL)
		ext_raw(x, "1.3.6.1.4.1.41482.3.7", 0, serial, sizeof(serial));
	if (yk & YK_POLICY)
		ext_raw(x, "1.3.6.1.4.1.41482.3.8", 0, policy, sizeof(policy));
	if (yk & YK_FF)
		ext_raw(x, "1.3.6.1.4.1.41482.3.9", 0, ff, sizeof(ff));
}

/*
 * A certificate for key `key` made as s says, issued by issuer/ikey (NULL:
 * self-signed with key).
 */
static X509 *
cert_make(const struct spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new(), *in, *other = NULL;

	assert_non_null(x);
	assert_non_null(n);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	if (s->cn != NULL)
		assert_int_equal(X509_NAME_add_entry_by_NID(
		                     n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)s->cn,
		                     s->cn_len != 0 ? (int)s->cn_len : -1, -1, 0),
		                 1);
	if (s->cn2 != NULL)
		assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
		                                            (const unsigned char *)s->cn2, -1, -1,
		                                            0),
		                 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	in = issuer != NULL ? X509_get_subject_name(issuer) : n;
	if (s->issuer_cn != NULL) {
		other = X509_NAME_new();
		assert_non_null(other);
		assert_int_equal(X509_NAME_add_entry_by_NID(other, NID_commonName, MBSTRING_UTF8,
		                                            (const unsigned char *)s->issuer_cn, -1,
		                                            -1, 0),
		                 1);
		in = other;
	}
	assert_int_equal(X509_set_issuer_name(x, in), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), s->from_days * DAYS - 60));
	assert_non_null(
	    X509_gmtime_adj(X509_getm_notAfter(x), (s->to_days != 0 ? s->to_days : 3650) * DAYS));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (s->bc != NULL || s->akid) /* CAs, and what names its issuer by key */
		ext_conf(x, x, NID_subject_key_identifier, "hash");
	if (s->akid)
		ext_conf(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (s->bc != NULL)
		ext_conf(x, issuer, NID_basic_constraints, s->bc);
	if (s->ku != NULL)
		ext_conf(x, issuer, NID_key_usage, s->ku);
	ext_yubico(x, s->yk);
	ext_yubico(x, s->yk_twice);
	if (s->crit != NULL)
		ext_raw(x, s->crit, 1, "\x05\x00", 2);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	X509_NAME_free(other);
	return x;
}

/* A hierarchy of one case, and what tg_att_verify gets. */
struct chain {
	char dir[64], rootpem[128];
	EVP_PKEY *keys[5];
	X509 *root, *inter, *f9, *slot, *att;
	STACK_OF(X509) * given; /* intermediates after the F9 */
	X509 *given_f9;
	struct tg_att_roots *roots;
};

static void
chain_build(const struct chain_case *c, struct chain *ch)
{
	static const struct spec root = {.cn = "Test Attestation Root",
	                                 .bc = "critical,CA:TRUE,pathlen:1",
	                                 .ku = "critical,keyCertSign,cRLSign"},
	                         u2f = {.cn = "Test U2F Root",
	                                .bc = "critical,CA:TRUE,pathlen:0",
	                                .ku = "critical,keyCertSign,cRLSign"},
	                         inter = {.cn = "Test PIV Attestation B 1",
	                                  .bc = "critical,CA:TRUE,pathlen:0",
	                                  .ku = "critical,keyCertSign,cRLSign"},
	                         rootnamed = {.cn = "Test Attestation Root",
	                                      .bc = "critical,CA:TRUE,pathlen:0",
	                                      .ku = "critical,keyCertSign,cRLSign",
	                                      .akid = 1},
	                         f9_ok = F9_OK;
	struct tg_error err;
	X509 *f9_issuer;
	EVP_PKEY *f9_ikey;
	size_t i;

	memset(ch, 0, sizeof(*ch));
	for (i = 0; i < sizeof(ch->keys) / sizeof(ch->keys[0]); i++)
		ch->keys[i] = key_new();
	ch->given = sk_X509_new_null();
	assert_non_null(ch->given);
	ch->root = cert_make(c->shape == U2F_F9 ? &u2f : &root, ch->keys[0], NULL, NULL);
	f9_issuer = ch->root;
	f9_ikey = ch->keys[0];
	if (c->shape == INTER_F9 || c->shape == ROOTNAMED_F9) {
		ch->inter = cert_make(c->shape == INTER_F9 ? &inter : &rootnamed, ch->keys[1],
		                      ch->root, ch->keys[0]);
		f9_issuer = ch->inter;
		f9_ikey = ch->keys[1];
	}
	if (c->shape == SLOT_AS_F9) {
		/* a genuine F9 and slot certificate; the forged attestation is
		 * signed with the slot key, as anyone holding the token can */
		ch->f9 = cert_make(&f9_ok, ch->keys[2], ch->root, ch->keys[0]);
		ch->slot = cert_make(&c->f9, ch->keys[3], ch->f9, ch->keys[2]);
		ch->att = cert_make(&c->att, ch->keys[4], ch->slot, ch->keys[3]);
		ch->given_f9 = ch->slot;
		assert_true(sk_X509_push(ch->given, X509_dup(ch->f9)) > 0);
	} else {
		ch->f9 = cert_make(&c->f9, ch->keys[2], f9_issuer, f9_ikey);
		ch->att = cert_make(&c->att, ch->keys[4], ch->f9, ch->keys[2]);
		ch->given_f9 = ch->f9;
		if (ch->inter != NULL)
			assert_true(sk_X509_push(ch->given, X509_dup(ch->inter)) > 0);
	}
	snprintf(ch->dir, sizeof(ch->dir), "/tmp/tg-test-att-chain-XXXXXX");
	assert_non_null(mkdtemp(ch->dir));
	snprintf(ch->rootpem, sizeof(ch->rootpem), "%s/root.pem", ch->dir);
	tg_error_clear(&err);
	if (tg_ca_pem_write(ch->rootpem, ch->root, NULL, NULL, &err) != 0 ||
	    tg_att_roots_load(ch->dir, &ch->roots, &err) != 0)
		fail_msg("roots: %s", err.msg);
}

static void
chain_free(struct chain *ch)
{
	size_t i;

	tg_att_roots_free(ch->roots);
	unlink(ch->rootpem);
	rmdir(ch->dir);
	X509_free(ch->root);
	X509_free(ch->inter);
	X509_free(ch->f9);
	X509_free(ch->slot);
	X509_free(ch->att);
	sk_X509_pop_free(ch->given, X509_free);
	for (i = 0; i < sizeof(ch->keys) / sizeof(ch->keys[0]); i++)
		EVP_PKEY_free(ch->keys[i]);
}

static void
test_chain_cases(void **state)
{
	struct tg_att_facts f;
	struct tg_error err;
	struct chain ch;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct chain_case *c = &cases[i];

		chain_build(c, &ch);
		tg_error_clear(&err);
		memset(&f, 0, sizeof(f));
		r = tg_att_verify(ch.roots, ch.att, ch.given_f9, ch.given, ch.keys[4], &f, &err);
		if (c->want == NULL && r != 0)
			fail_msg("%s: refused: %s", c->name, err.msg);
		if (c->want != NULL &&
		    (r != TG_ERR_ATTESTATION || strstr(err.msg, c->want) == NULL))
			fail_msg("%s: r=%d '%s', want '%s'", c->name, r, err.msg, c->want);
		printf("%-60s %s\n", c->name, r == 0 ? "verified" : err.msg);
		chain_free(&ch);
	}
}

/*
 * Attack 1 in full: the slot certificate the forgery hangs from is itself
 * genuine (it verifies as an attestation), the forged attestation claims
 * what the attacker wants, and only the F9 role check stands between them.
 */
static void
test_forged_with_genuine_slot(void **state)
{
	static const struct chain_case c = {"forged", SLOT_AS_F9, ATT_OK, ATT_OK, NULL};
	STACK_OF(X509) *none = sk_X509_new_null();
	struct tg_att_facts f;
	struct tg_error err;
	struct chain ch;

	(void)state;
	assert_non_null(none);
	chain_build(&c, &ch);
	tg_error_clear(&err);
	if (tg_att_verify(ch.roots, ch.slot, ch.f9, none, ch.keys[3], &f, &err) != 0)
		fail_msg("the genuine slot certificate: %s", err.msg);
	assert_string_equal(f.slot, "9a");
	/* the forged attestation carries well-formed facts of its own */
	assert_int_equal(tg_att_facts_get(ch.att, &f, &err), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(ch.roots, ch.att, ch.slot, ch.given, NULL, &f, &err),
	                 TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "the certificate given as F9 device certificate "
	                                "('CN=YubiKey PIV Attestation 9a') is a slot "
	                                "attestation certificate"));
	/* also when the attacker adds the root or the F9 twice */
	assert_true(sk_X509_push(ch.given, X509_dup(ch.root)) > 0);
	assert_true(sk_X509_push(ch.given, X509_dup(ch.f9)) > 0);
	tg_error_clear(&err);
	assert_int_equal(tg_att_verify(ch.roots, ch.att, ch.slot, ch.given, NULL, &f, &err),
	                 TG_ERR_ATTESTATION);
	assert_non_null(strstr(err.msg, "is a slot attestation certificate"));
	sk_X509_free(none);
	chain_free(&ch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chain_cases),
	    cmocka_unit_test(test_forged_with_genuine_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
