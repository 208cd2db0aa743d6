/*
 * test_prov.c — the key-provenance extension (host/ca/provenance.c): round
 * trips of every field, through DER and through a certificate, and
 * malformed DER rejected (exact-size heap copies for ASan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "tg_prov.h"
#include "tg_test.h"

static void
prov_fill(struct tg_prov *p, enum tg_prov_level level, const char *serial, enum tg_att_pin pin,
          enum tg_att_touch touch, int ff, int sha)
{
	int i;

	memset(p, 0, sizeof(*p));
	p->version = TG_PROV_VERSION;
	p->level = level;
	snprintf(p->serial, sizeof(p->serial), "%s", serial);
	p->pin_policy = pin;
	p->touch_policy = touch;
	if (ff >= 0) {
		p->has_form_factor = 1;
		p->form_factor = (uint8_t)ff;
	}
	if (sha) {
		p->has_att_sha256 = 1;
		for (i = 0; i < 32; i++)
			p->att_sha256[i] = (uint8_t)(i * 7 + sha);
	}
}

static void
prov_equal(const struct tg_prov *a, const struct tg_prov *b)
{
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->level, b->level);
	assert_string_equal(a->serial, b->serial);
	assert_int_equal(a->pin_policy, b->pin_policy);
	assert_int_equal(a->touch_policy, b->touch_policy);
	assert_int_equal(a->has_form_factor, b->has_form_factor);
	assert_int_equal(a->form_factor, b->form_factor);
	assert_int_equal(a->has_att_sha256, b->has_att_sha256);
	assert_memory_equal(a->att_sha256, b->att_sha256, 32);
	assert_int_equal(a->has_token_model, b->has_token_model);
	assert_string_equal(a->token_manufacturer, b->token_manufacturer);
	assert_string_equal(a->token_model, b->token_model);
}

static void
test_round_trip(void **state)
{
	static const enum tg_att_pin pins[] = {TG_ATT_PIN_NEVER, TG_ATT_PIN_ONCE, TG_ATT_PIN_ALWAYS,
	                                       TG_ATT_PIN_MATCH_ONCE, TG_ATT_PIN_MATCH_ALWAYS};
	static const enum tg_att_touch touches[] = {TG_ATT_TOUCH_NEVER, TG_ATT_TOUCH_ALWAYS,
	                                            TG_ATT_TOUCH_CACHED};
	static const int ffs[] = {-1, 0, 0x03, 0x83, 0xff};
	static const char *const serials[] = {
	    "25515003", "0", "a1b2c3d4e5f60718", "x",
	    "0123456789012345678901234567890123456789012345678901234567890123"};
	struct tg_prov in, out;
	struct tg_error err;
	uint8_t *der = NULL;
	unsigned char *copy;
	size_t len, pi, ti, fi, si, count = 0;
	int lvl, sha;

	(void)state;
	for (lvl = TG_PROV_HSM_OPERATOR; lvl <= TG_PROV_DEVICE_ATTESTED; lvl++)
		for (pi = 0; pi < sizeof(pins) / sizeof(pins[0]); pi++)
			for (ti = 0; ti < sizeof(touches) / sizeof(touches[0]); ti++)
				for (fi = 0; fi < sizeof(ffs) / sizeof(ffs[0]); fi++)
					for (sha = 0; sha <= 1; sha++) {
						if (lvl == TG_PROV_DEVICE_ATTESTED && !sha)
							continue;
						si = count % (sizeof(serials) / sizeof(serials[0]));
						prov_fill(&in, (enum tg_prov_level)lvl, serials[si],
						          pins[pi], touches[ti], ffs[fi],
						          sha ? (int)count + 1 : 0);
						tg_error_clear(&err);
						assert_int_equal(
						    tg_prov_encode(&in, &der, &len, &err), 0);
						copy = tg_test_memdup(der, len);
						OPENSSL_free(der);
						memset(&out, 0xAA, sizeof(out));
						if (tg_prov_decode(copy, len, &out, &err) != 0)
							fail_msg("decode: %s", err.msg);
						prov_equal(&in, &out);
						free(copy);
						count++;
					}
	assert_true(count > 200);
}

static void
test_cert_round_trip(void **state)
{
	struct tg_prov in, out;
	struct tg_error err;
	X509_EXTENSION *ext = NULL;
	X509 *x = X509_new();

	(void)state;
	assert_non_null(x);
	tg_error_clear(&err);
	assert_int_equal(tg_prov_from_cert(x, &out, &err), TG_ERR_NOT_FOUND);
	prov_fill(&in, TG_PROV_DEVICE_ATTESTED, "30041834", TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_CACHED,
	          0x03, 9);
	assert_int_equal(tg_prov_ext_make(&in, &ext, &err), 0);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	tg_error_clear(&err);
	assert_int_equal(tg_prov_from_cert(x, &out, &err), 0);
	prov_equal(&in, &out);
	/* twice is an error */
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	tg_error_clear(&err);
	assert_int_equal(tg_prov_from_cert(x, &out, &err), TG_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "more than once"));
	X509_EXTENSION_free(ext);
	X509_free(x);
}

/* Values the encoder refuses. */
static void
test_encode_refuses(void **state)
{
	struct tg_prov p;
	struct tg_error err;
	uint8_t *der = NULL;
	size_t len;

	(void)state;
	prov_fill(&p, TG_PROV_DEVICE_ATTESTED, "1", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, -1, 0);
	tg_error_clear(&err);
	assert_int_equal(tg_prov_encode(&p, &der, &len, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "SHA-256"));
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, -1, 0);
	tg_error_clear(&err);
	assert_int_equal(tg_prov_encode(&p, &der, &len, &err), TG_ERR_INVALID_ARG);
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "a\nb", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, -1, 0);
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), TG_ERR_INVALID_ARG);
	prov_fill(&p, (enum tg_prov_level)3, "1", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, -1, 0);
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), TG_ERR_INVALID_ARG);
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "1", TG_ATT_PIN_UNKNOWN, TG_ATT_TOUCH_NEVER, -1, 0);
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), TG_ERR_INVALID_ARG);
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "1", TG_ATT_PIN_ONCE, (enum tg_att_touch)4, -1, 0);
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), TG_ERR_INVALID_ARG);
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "1", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, -1, 0);
	p.version = 2;
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), TG_ERR_INVALID_ARG);
}

/* p encodes to exactly the bytes of hex. */
static void
der_expect(const struct tg_prov *p, const char *hex)
{
	uint8_t *der = NULL;
	unsigned char *want;
	size_t len, wlen;

	assert_int_equal(tg_prov_encode(p, &der, &len, NULL), 0);
	want = tg_test_hexdup(hex, &wlen);
	assert_int_equal(len, wlen);
	assert_memory_equal(der, want, len);
	OPENSSL_free(der);
	free(want);
}

/* A known encoding, byte for byte: the module in docs/provenance.md. */
static void
test_known_der(void **state)
{
	struct tg_prov p;

	(void)state;
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "ab", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, 5, 0);
	der_expect(&p, "30 13 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 80 01 05");
}

/* tokenModel [2]: round trip, its exact DER, and the values refused. */
static void
test_token_model(void **state)
{
	struct tg_prov p, back;
	struct tg_error err;
	uint8_t *der = NULL;
	unsigned char *copy;
	size_t len;

	(void)state;
	prov_fill(&p, TG_PROV_HSM_OPERATOR, "ab", TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, -1, 0);
	p.has_token_model = 1;
	snprintf(p.token_manufacturer, sizeof(p.token_manufacturer), "S");
	snprintf(p.token_model, sizeof(p.token_model), "M");
	der_expect(&p,
	           "30 18 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 A2 06 0C 01 53 0C 01 4D");
	/* the longest values, and empty ones, round trip */
	memset(p.token_manufacturer, 'x', TG_PROV_MODEL_MAX);
	p.token_manufacturer[TG_PROV_MODEL_MAX] = '\0';
	p.token_model[0] = '\0';
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), 0);
	copy = tg_test_memdup(der, len);
	OPENSSL_free(der);
	tg_error_clear(&err);
	assert_int_equal(tg_prov_decode(copy, len, &back, &err), 0);
	free(copy);
	prov_equal(&p, &back);
	/* the encoder refuses what the decoder would */
	snprintf(p.token_model, sizeof(p.token_model), "a\tb");
	assert_int_equal(tg_prov_encode(&p, &der, &len, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "token manufacturer and model"));
	snprintf(p.token_model, sizeof(p.token_model), "caf\xc3\xa9");
	assert_int_equal(tg_prov_encode(&p, &der, &len, NULL), TG_ERR_INVALID_ARG);
}

struct bad_case {
	const char *name;
	const char *hex;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"empty", "", "empty"},
    {"not a sequence", "04 03 02 01 01", "not a KeyProvenance"},
    {"truncated", "30 13 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 80 01",
     "not a KeyProvenance"},
    {"trailing", "30 10 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 00", "trailing"},
    {"missing touch", "30 0D 02 01 01 0A 01 01 0C 02 61 62 0A 01 02", "not a KeyProvenance"},
    {"version 2", "30 10 02 01 02 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01", "version 2"},
    {"version 0", "30 10 02 01 00 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01", "version 0"},
    {"level 0", "30 10 02 01 01 0A 01 00 0C 02 61 62 0A 01 02 0A 01 01", "unknown level"},
    {"level 3", "30 10 02 01 01 0A 01 03 0C 02 61 62 0A 01 02 0A 01 01", "unknown level"},
    {"level negative", "30 10 02 01 01 0A 01 FF 0C 02 61 62 0A 01 02 0A 01 01",
     "level out of range"},
    {"level as INTEGER", "30 10 02 01 01 02 01 01 0C 02 61 62 0A 01 02 0A 01 01",
     "not a KeyProvenance"},
    {"pin 0", "30 10 02 01 01 0A 01 01 0C 02 61 62 0A 01 00 0A 01 01", "unknown PIN"},
    {"version negative", "30 10 02 01 FF 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01",
     "version out of range"},
    {"pin negative", "30 10 02 01 01 0A 01 01 0C 02 61 62 0A 01 FF 0A 01 01",
     "PIN policy out of range"},
    {"touch negative", "30 10 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 FF",
     "touch policy out of range"},
    {"touch 9", "30 10 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 09", "unknown touch"},
    {"empty serial", "30 0E 02 01 01 0A 01 01 0C 00 0A 01 02 0A 01 01", "token serial"},
    {"control in serial", "30 10 02 01 01 0A 01 01 0C 02 61 0A 0A 01 02 0A 01 01", "token serial"},
    {"unit separator in serial", "30 10 02 01 01 0A 01 01 0C 02 61 1F 0A 01 02 0A 01 01",
     "token serial"},
    {"serial as PrintableString", "30 10 02 01 01 0A 01 01 13 02 61 62 0A 01 02 0A 01 01",
     "not a KeyProvenance"},
    {"form factor 256", "30 14 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 80 02 01 00",
     "form factor"},
    {"sha256 short", "30 14 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 81 02 01 02",
     "not 32 bytes"},
    {"sha256 long",
     "30 33 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 81 21 "
     "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D "
     "1E 1F 20",
     "not 32 bytes"},
    {"device-attested without sha", "30 10 02 01 01 0A 01 02 0C 02 61 62 0A 01 02 0A 01 01",
     "SHA-256"},
    {"non-minimal version (BER)", "30 11 02 02 00 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01",
     "not"},
    {"long-form length (BER)", "30 81 10 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01",
     "not DER"},
    {"indefinite length (BER)", "30 80 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 00 00",
     "not DER"},
    {"fields swapped", "30 10 02 01 01 0C 02 61 62 0A 01 01 0A 01 02 0A 01 01",
     "not a KeyProvenance"},
    {"model control char",
     "30 18 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 A2 06 0C 01 53 0C 01 0A",
     "token manufacturer and model"},
    {"model DEL", "30 18 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 A2 06 0C 01 53 0C 01 7F",
     "token manufacturer and model"},
    {"model 65 bytes",
     "30 58 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 A2 46 0C 01 53 0C 41 41 "
     "41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 "
     "41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 "
     "41 41 41 41 41 41 41 41 41 41 41 41",
     "token manufacturer and model"},
    {"model primitive tag",
     "30 18 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 82 06 0C 01 53 0C 01 4D",
     "not a KeyProvenance"},
    {"model without model", "30 15 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 A2 03 0C 01 53",
     "not a KeyProvenance"},
    {"model before sha",
     "30 1B 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 A2 06 0C 01 53 0C 01 4D 81 01 00",
     "not"},
    {"tags out of order", "30 17 02 01 01 0A 01 01 0C 02 61 62 0A 01 02 0A 01 01 81 01 00 80 01 05",
     "not"},
};

static void
test_malformed(void **state)
{
	struct tg_prov p;
	struct tg_error err;
	unsigned char *in;
	size_t i, n;
	int r;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		in = tg_test_hexdup(bad_cases[i].hex, &n);
		tg_error_clear(&err);
		r = tg_prov_decode(in, n, &p, &err);
		free(in);
		if (r != TG_ERR_FORMAT || strstr(err.msg, bad_cases[i].msg) == NULL)
			fail_msg("%s: r=%d msg='%s' (want '%s')", bad_cases[i].name, r, err.msg,
			         bad_cases[i].msg);
	}
}

static void
test_level_names(void **state)
{
	enum tg_prov_level l;

	(void)state;
	assert_int_equal(tg_prov_level_parse("device-attested", &l), 0);
	assert_int_equal(l, TG_PROV_DEVICE_ATTESTED);
	assert_int_equal(tg_prov_level_parse("hsm-operator", &l), 0);
	assert_int_equal(l, TG_PROV_HSM_OPERATOR);
	assert_int_equal(tg_prov_level_parse("software", &l), TG_ERR_INVALID_ARG);
	assert_string_equal(tg_prov_level_name(TG_PROV_LEVEL_NONE), "none");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_cert_round_trip),
	    cmocka_unit_test(test_encode_refuses), cmocka_unit_test(test_known_der),
	    cmocka_unit_test(test_malformed),      cmocka_unit_test(test_level_names),
	    cmocka_unit_test(test_token_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
