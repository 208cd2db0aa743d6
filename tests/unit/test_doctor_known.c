/*
 * test_doctor_known.c — `tokengate doctor`'s lookups (host/doctor/known.c):
 * the USB vendor table, ATR parsing and ATR hints.
 *
 * Every ATR is copied into a heap buffer of exactly its size, so
 * AddressSanitizer (TG_SANITIZE=ON) reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "known.h"
#include "tg_err.h"
#include "tg_test.h"

/* A YubiKey 5 answers to reset with this (T=1, 13 historical bytes
 * ending in "YubiKey@", check byte 40). */
#define ATR_YK5 "3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40"
#define YK_HINT "YubiKey-compatible PIV token"

struct vendor_case {
	uint16_t vid;
	const char *name_part; /* NULL: not in the table */
};

static const struct vendor_case vendor_cases[] = {
    {0x1050, "Yubico"},  {0x20a0, "Nitrokey"}, {0x096e, "Feitian"}, {0x08e6, "Gemalto"},
    {0x04e6, "Identiv"}, {0x076b, "OMNIKEY"},  {0x072f, "ACS"},     {0x046a, "Cherry"},
    {0x0000, NULL},      {0x8086, NULL},       {0x1d6b, NULL},      {0xffff, NULL},
    {0x1051, NULL},      {0x104f, NULL},
};

static void
test_vendor_table(void **state)
{
	const char *name;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vendor_cases) / sizeof(vendor_cases[0]); i++) {
		name = tg_doctor_vendor_find(vendor_cases[i].vid);
		if (vendor_cases[i].name_part == NULL) {
			assert_null(name);
			continue;
		}
		assert_non_null(name);
		assert_non_null(strstr(name, vendor_cases[i].name_part));
	}
}

/* Parses hex into an exact-size heap copy and runs the parser on it. */
static int
parse_hex(const char *hex, struct tg_doctor_atr *a)
{
	unsigned char *p;
	size_t n;
	int r;

	p = tg_test_hexdup(hex, &n);
	r = tg_doctor_atr_parse(p, n, a);
	free(p);
	return r;
}

static const char *
hint_hex(const char *hex)
{
	unsigned char *p;
	const char *h;
	size_t n;

	p = tg_test_hexdup(hex, &n);
	h = tg_doctor_atr_hint_find(p, n);
	free(p);
	return h;
}

static void
test_atr_yubikey5(void **state)
{
	struct tg_doctor_atr a;
	const char *h;

	(void)state;
	memset(&a, 0xAA, sizeof(a));
	assert_int_equal(parse_hex(ATR_YK5, &a), 0);
	assert_int_equal(a.protocols, 1u << 1); /* T=1 only (TD1, TD2 say T=1) */
	assert_int_equal(a.has_tck, 1);
	assert_int_equal(a.hist_len, 13);
	assert_memory_equal(a.hist + 6, "YubiKey", 7);
	h = hint_hex(ATR_YK5);
	assert_non_null(h);
	assert_non_null(strstr(h, YK_HINT));
}

/* An ATR not in the table whose historical bytes say "Yubikey": the
 * YubiKey 4 layout with another product suffix and its own check byte. */
static void
test_atr_yubikey_hist(void **state)
{
	unsigned char atr[] = {0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15,
	                       'Y',  'u',  'b',  'i',  'k',  'e',  'y',  '9',  0x00};
	unsigned char *p;
	const char *h;
	size_t i;

	(void)state;
	for (i = 1; i + 1 < sizeof(atr); i++)
		atr[sizeof(atr) - 1] ^= atr[i];
	p = tg_test_memdup(atr, sizeof(atr));
	h = tg_doctor_atr_hint_find(p, sizeof(atr));
	assert_string_equal(h, YK_HINT);
	free(p);
}

static void
test_atr_t0_only(void **state)
{
	struct tg_doctor_atr a;
	const char *h;

	(void)state;
	/* T0 = 02: no interface bytes, two historical bytes, T=0, no TCK. */
	assert_int_equal(parse_hex("3B 02 14 50", &a), 0);
	assert_int_equal(a.protocols, 1u);
	assert_int_equal(a.has_tck, 0);
	assert_int_equal(a.hist_len, 2);
	h = hint_hex("3B 02 14 50");
	assert_non_null(h);
	assert_non_null(strstr(h, "T=0 only"));
	/* T=1 via TD1 but nothing known about the card: no hint. */
	assert_null(hint_hex("3B 81 01 01 81"));
}

struct atr_bad {
	const char *hex;
	int err;
};

/* Malformed ATRs and the error each must give. */
static const struct atr_bad atr_bad[] = {
    {"", TG_ERR_TRUNCATED},
    {"3B", TG_ERR_TRUNCATED},
    {"3C 00", TG_ERR_FORMAT}, /* TS neither 3B nor 3F */
    {"00", TG_ERR_FORMAT},
    {"3B 05 01 02", TG_ERR_TRUNCATED}, /* 5 historical, 2 there */
    {"3B 10", TG_ERR_TRUNCATED},       /* TA1 announced, missing */
    {"3B 80", TG_ERR_TRUNCATED},       /* TD1 announced, missing */
    {"3B 80 81", TG_ERR_TRUNCATED},    /* TD1 T=1 announces TD2 */
    {"3B 80 01", TG_ERR_TRUNCATED},    /* T=1: TCK missing */
    {"3B 80 01 00", TG_ERR_FORMAT},    /* TCK should be 81 */
    {"3B 00 00", TG_ERR_TRAILING},     /* byte after the ATR */
    {"3B 81 01 01 81 FF", TG_ERR_TRAILING},
    {"3B 81 01 01", TG_ERR_TRUNCATED}, /* T=1: TCK missing */
    {"3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 41",
     TG_ERR_FORMAT}, /* YubiKey 5 with a bad TCK */
    {"3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79",
     TG_ERR_TRUNCATED}, /* YubiKey 5 without its TCK */
    {ATR_YK5 " 00", TG_ERR_TRAILING},
};

static void
test_atr_malformed(void **state)
{
	struct tg_doctor_atr a, before;
	const char *h;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(atr_bad) / sizeof(atr_bad[0]); i++) {
		memset(&a, 0x5A, sizeof(a));
		before = a;
		print_message("case %zu: %s\n", i, atr_bad[i].hex);
		assert_int_equal(parse_hex(atr_bad[i].hex, &a), atr_bad[i].err);
		assert_memory_equal(&a, &before, sizeof(a)); /* untouched on error */
		h = hint_hex(atr_bad[i].hex);
		if (atr_bad[i].hex[0] == '\0') {
			assert_null(h); /* no ATR: nothing to say */
			continue;
		}
		assert_non_null(h);
		assert_non_null(strstr(h, "malformed"));
	}
}

static void
test_atr_args(void **state)
{
	struct tg_doctor_atr a;
	const uint8_t one = 0x3B;

	(void)state;
	assert_int_equal(tg_doctor_atr_parse(NULL, 0, &a), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_doctor_atr_parse(&one, 1, NULL), TG_ERR_INVALID_ARG);
	assert_null(tg_doctor_atr_hint_find(NULL, 5));
	assert_null(tg_doctor_atr_hint_find(&one, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vendor_table),     cmocka_unit_test(test_atr_yubikey5),
	    cmocka_unit_test(test_atr_yubikey_hist), cmocka_unit_test(test_atr_t0_only),
	    cmocka_unit_test(test_atr_malformed),    cmocka_unit_test(test_atr_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
