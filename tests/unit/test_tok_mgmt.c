/* test_tok_mgmt.c — management key authentication and SET MANAGEMENT KEY
 * (token/mgmt.c), 3DES and AES-128/192/256, checked with OpenSSL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_tok_util.h"

static const struct tt_sw_case auth_cases[] = {
    {"alg mismatch (AES-128 for a 3DES key)", "0087089B 04 7C028000", 0x6A86},
    {"no template", "0087039B", 0x6A80},
    {"template truncated", "0087039B 04 7C058000", 0x6A80},
    {"wrong template tag", "0087039B 04 7D028000", 0x6A80},
    {"trailing after template", "0087039B 05 7C028000 00", 0x6A80},
    {"unknown inner tag", "0087039B 04 7C028300", 0x6A80},
    {"duplicate witness", "0087039B 06 7C0480008000", 0x6A80},
    {"empty template", "0087039B 02 7C00", 0x6A80},
    {"witness and response", "0087039B 06 7C0480008200", 0x6A80},
    {"step 2 without step 1", "0087039B 16 7C14 80080102030405060708 81080102030405060708", 0x6982},
    {"response without challenge", "0087039B 0C 7C0A 82080102030405060708", 0x6982},
    {"step 1 (witness request)", "0087039B 04 7C028000", 0x9000},
    {"step 2 with a 6-byte witness", "0087039B 14 7C12 8006010203040506 81080102030405060708",
     0x6A80},
};

static void
test_auth_bad(void **state)
{
	struct tt_fx *f = *state;

	TT_RUN_SW_CASES(f->t, auth_cases);
	/* PUT DATA still refused */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
}

static void
test_auth_3des(void **state)
{
	struct tt_fx *f = *state;
	static const uint8_t wrong[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3,   4, 5,
	                                  6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 0x0A}; /* not just parity */
	uint8_t rsp[64], cmd[64];
	size_t n, m;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, wrong, 24), 0x6982);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x9000);
	/* a witness answers once */
	assert_int_equal(tt_hex(f->t, "0087039B 04 7C028000", rsp, sizeof(rsp), &n), 0x9000);
	m = tt_unhex("0087039B 16 7C14 8008 0000000000000000 8108 0102030405060708", cmd,
	             sizeof(cmd));
	tt_mgm_block(0x03, tt_mgm_default, 0, rsp + 4, cmd + 9, 8);
	assert_int_equal(tt_apdu(f->t, cmd, m, rsp, sizeof(rsp), &n), 0x9000);
	assert_int_equal(tt_apdu(f->t, cmd, m, rsp, sizeof(rsp), &n), 0x6982);
	/* and a failed attempt drops the authenticated state */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
	/* OpenSC's external authentication: challenge, then its encryption */
	assert_int_equal(tt_hex(f->t, "0087039B 04 7C028100", rsp, sizeof(rsp), &n), 0x9000);
	assert_int_equal(n, 12);
	assert_int_equal(rsp[2], 0x81);
	m = tt_unhex("0087039B 0C 7C0A 8208 0000000000000000", cmd, sizeof(cmd));
	tt_mgm_block(0x03, wrong, 1, rsp + 4, cmd + 9, 8);
	assert_int_equal(tt_apdu(f->t, cmd, m, NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_hex(f->t, "0087039B 04 7C028100", rsp, sizeof(rsp), &n), 0x9000);
	tt_mgm_block(0x03, tt_mgm_default, 1, rsp + 4, cmd + 9, 8);
	assert_int_equal(tt_apdu(f->t, cmd, m, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x9000);
	/* OpenSC's GET CHALLENGE (P1 00): random bytes, authentication kept */
	assert_int_equal(tt_hex(f->t, "0087009B 04 7C028100 00", rsp, sizeof(rsp), &n), 0x9000);
	assert_int_equal(n, 12);
	assert_memory_equal(rsp, "\x7C\x0A\x81\x08", 4);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "0087009B 04 7C028000", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "0087009B 06 7C0481020102", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "0087009B 02 7C00", NULL, 0, NULL), 0x6A86);
	/* reset forgets it */
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
}

/* External and mutual authentication compare every byte: a cryptogram
 * wrong in its last byte fails as one wrong in its first. */
static void
test_auth_whole_block(void **state)
{
	struct tt_fx *f = *state;
	static const size_t flip[] = {0, 7};
	uint8_t rsp[64], cmd[64];
	size_t n, m, i;

	for (i = 0; i < sizeof(flip) / sizeof(flip[0]); i++) {
		/* external: the encrypted challenge */
		assert_int_equal(tt_hex(f->t, "0087039B 04 7C028100", rsp, sizeof(rsp), &n),
		                 0x9000);
		m = tt_unhex("0087039B 0C 7C0A 8208 0000000000000000", cmd, sizeof(cmd));
		tt_mgm_block(0x03, tt_mgm_default, 1, rsp + 4, cmd + 9, 8);
		cmd[9 + flip[i]] ^= 0x10;
		assert_int_equal(tt_apdu(f->t, cmd, m, NULL, 0, NULL), 0x6982);
		assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL),
		                 0x6982);
		/* mutual: the decrypted witness */
		assert_int_equal(tt_hex(f->t, "0087039B 04 7C028000", rsp, sizeof(rsp), &n),
		                 0x9000);
		m = tt_unhex("0087039B 16 7C14 8008 0000000000000000 8108 0102030405060708", cmd,
		             sizeof(cmd));
		tt_mgm_block(0x03, tt_mgm_default, 0, rsp + 4, cmd + 9, 8);
		cmd[9 + flip[i]] ^= 0x10;
		assert_int_equal(tt_apdu(f->t, cmd, m, rsp, sizeof(rsp), &n), 0x6982);
		assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL),
		                 0x6982);
	}
	/* the exact cryptogram still works */
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x9000);
}

static const struct tt_sw_case setkey_cases[] = {
    {"P1 00", "00FF00FF 1B 039B18 010203040506070801020304050607080102030405060708", 0x6A86},
    {"P2 00", "00FFFF00 1B 039B18 010203040506070801020304050607080102030405060708", 0x6A86},
    {"alg 04", "00FFFFFF 1B 049B18 010203040506070801020304050607080102030405060708", 0x6A80},
    {"ref 9A", "00FFFFFF 1B 039A18 010203040506070801020304050607080102030405060708", 0x6A80},
    {"length 16 for 3DES", "00FFFFFF 13 039B10 01020304050607080102030405060708", 0x6A80},
    {"length byte past data", "00FFFFFF 1A 039B18 0102030405060708010203040506070801020304050607",
     0x6A80},
    {"extra byte", "00FFFFFF 1C 039B18 010203040506070801020304050607080102030405060708 00",
     0x6A80},
    {"AES-256 with 24 bytes", "00FFFFFF 1B 0C9B18 010203040506070801020304050607080102030405060708",
     0x6A80},
    {"no data", "00FFFFFF", 0x6A80},
};

static void
set_key(struct tt_fx *f, uint8_t p2, uint8_t alg, const uint8_t *key, size_t n)
{
	uint8_t cmd[64] = {0x00, 0xFF, 0xFF, 0x00};

	cmd[3] = p2;
	cmd[4] = (uint8_t)(3 + n);
	cmd[5] = alg;
	cmd[6] = 0x9B;
	cmd[7] = (uint8_t)n;
	memcpy(cmd + 8, key, n);
	assert_int_equal(tt_apdu(f->t, cmd, 8 + n, NULL, 0, NULL), 0x9000);
}

static void
test_set_key(void **state)
{
	struct tt_fx *f = *state;
	static const uint8_t k32[32] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	                                0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F,
	                                0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
	                                0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F};
	static const struct {
		uint8_t alg;
		size_t len;
	} algs[] = {{0x08, 16}, {0x0A, 24}, {0x0C, 32}, {0x03, 24}};
	uint8_t out[32];
	struct tg_tok *t2 = NULL;
	struct tt_host h2;
	struct tg_tok_host host2 = tt_host_make(&h2);
	size_t i, n;

	assert_int_equal(tt_hex(f->t,
	                        "00FFFFFF 1B 039B18 010203040506070801020304050607080102"
	                        "030405060708",
	                        NULL, 0, NULL),
	                 0x6982);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	TT_RUN_SW_CASES(f->t, setkey_cases);
	assert_int_equal(tt_hex(f->t, "00F7009B", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 10);
	assert_int_equal(out[2], 0x03); /* 3DES */
	assert_int_equal(out[9], 1);    /* default */
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		set_key(f, 0xFF, algs[i].alg, k32, algs[i].len);
		/* the old algorithm's P1 no longer fits (except the same alg) */
		assert_int_equal(tt_mgm_auth(f->t, algs[i].alg, tt_mgm_default, 24), 0x6982);
		assert_int_equal(tt_mgm_auth(f->t, algs[i].alg, k32, algs[i].len), 0x9000);
		assert_int_equal(tt_hex(f->t, "00F7009B", out, sizeof(out), &n), 0x9000);
		assert_int_equal(out[2], algs[i].alg);
		assert_int_equal(out[9], 0);
	}
	/* the new key survives a reload of the persisted state */
	assert_int_equal(tg_tok_load(f->h.last_blob, f->h.last_len, &host2, &t2), 0);
	tt_select(t2);
	assert_int_equal(tt_mgm_auth(t2, 0x03, k32, 24), 0x9000);
	tg_tok_free(t2);
	tt_host_free(&h2);
	/* touch-protected key: P2 FE */
	set_key(f, 0xFE, 0x0C, k32, 32);
	assert_int_equal(tt_hex(f->t, "00F7009B", out, sizeof(out), &n), 0x9000);
	assert_int_equal(out[6], 0x02); /* touch always */
	f->h.touch_calls = 0;
	assert_int_equal(tt_mgm_auth(f->t, 0x0C, k32, 32), 0x9000);
	assert_int_equal(f->h.touch_calls, 1);
	f->h.touch_answer = 0;
	assert_int_equal(tt_mgm_auth(f->t, 0x0C, k32, 32), 0x6982);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
}

/* The 4 weak and 12 semi-weak DES keys (FIPS 74 3.6, SP 800-67 3.3.2). */
static const uint8_t weak_des[16][8] = {
    {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01},
    {0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE},
    {0x1F, 0x1F, 0x1F, 0x1F, 0x0E, 0x0E, 0x0E, 0x0E},
    {0xE0, 0xE0, 0xE0, 0xE0, 0xF1, 0xF1, 0xF1, 0xF1},
    {0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE},
    {0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01},
    {0x1F, 0xE0, 0x1F, 0xE0, 0x0E, 0xF1, 0x0E, 0xF1},
    {0xE0, 0x1F, 0xE0, 0x1F, 0xF1, 0x0E, 0xF1, 0x0E},
    {0x01, 0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1},
    {0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1, 0x01},
    {0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E, 0xFE},
    {0xFE, 0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E},
    {0x01, 0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E},
    {0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E, 0x01},
    {0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1, 0xFE},
    {0xFE, 0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1},
};

/* SET MANAGEMENT KEY with a 3DES key: its status word. */
static uint16_t
set_3des(struct tt_fx *f, const uint8_t key[24])
{
	uint8_t cmd[32] = {0x00, 0xFF, 0xFF, 0xFF, 27, 0x03, 0x9B, 24};

	memcpy(cmd + 8, key, 24);
	return tt_apdu(f->t, cmd, sizeof(cmd), NULL, 0, NULL);
}

/* A refused key: 6A80, nothing persisted, the old (default) key still the
 * one that authenticates. */
static void
assert_refused(struct tt_fx *f, const uint8_t key[24], const char *what)
{
	int calls = f->h.persist_calls;

	print_message("weak: %s\n", what);
	assert_int_equal(set_3des(f, key), 0x6A80);
	assert_int_equal(f->h.persist_calls, calls);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, key, 24), 0x6982);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
}

static void
test_set_key_weak(void **state)
{
	struct tt_fx *f = *state;
	static const uint8_t good[24] = {0x10, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
	                                 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01,
	                                 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23};
	uint8_t key[24];
	char what[64];
	size_t w, pos, i;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	/* each weak or semi-weak key in each of the three positions */
	for (w = 0; w < 16; w++)
		for (pos = 0; pos < 3; pos++) {
			memcpy(key, good, 24);
			memcpy(key + pos * 8, weak_des[w], 8);
			snprintf(what, sizeof(what), "table row %zu as K%zu", w, pos + 1);
			assert_refused(f, key, what);
		}
	/* parity variants: the low bit of each byte does not count */
	memcpy(key, good, 24);
	memset(key + 8, 0x00, 8); /* 0101..01 with its parity bits cleared */
	assert_refused(f, key, "00 x8 as K2");
	memcpy(key, good, 24);
	memset(key + 16, 0xFF, 8); /* FEFE..FE with its parity bits set */
	assert_refused(f, key, "FF x8 as K3");
	memcpy(key, good, 24);
	for (i = 0; i < 8; i++) /* semi-weak 1FE01FE00EF10EF1, parity flipped */
		key[i] = weak_des[6][i] ^ 0x01;
	assert_refused(f, key, "semi-weak, parity flipped, as K1");
	/* one bit beyond parity makes it a normal key */
	memcpy(key, good, 24);
	memcpy(key, weak_des[0], 8);
	key[7] = 0x03;
	assert_int_equal(set_3des(f, key), 0x9000);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, key, 24), 0x9000);
	/* a good key is accepted and kept */
	assert_int_equal(set_3des(f, good), 0x9000);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, good, 24), 0x9000);
	/* the PIV default key (K1 == K2 == K3) is accepted as a YubiKey
	 * accepts it: tools set it back */
	assert_int_equal(set_3des(f, tt_mgm_default), 0x9000);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	/* AES keys are not DES keys: the same bytes are accepted */
	memcpy(key, weak_des[0], 8);
	memcpy(key + 8, weak_des[1], 8);
	set_key(f, 0xFF, 0x08, key, 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_auth_bad, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_auth_3des, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_auth_whole_block, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_set_key, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_set_key_weak, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
