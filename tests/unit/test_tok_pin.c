/* test_tok_pin.c — PIN and PUK handling (token/pin.c): VERIFY, CHANGE
 * REFERENCE DATA, RESET RETRY COUNTER, SET PIN RETRIES, RESET, and the
 * decrement-persist-compare order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_tok_util.h"

/* None of these may touch a retry counter. */
static const struct tt_sw_case bad_cases[] = {
    {"VERIFY P1 01", "00200180 08 313233343536FFFF", 0x6A86},
    {"VERIFY P2 81", "00200081 08 3132333435363738", 0x6A88},
    {"VERIFY P2 9B", "0020009B 08 313233343536FFFF", 0x6A88},
    {"VERIFY P2 00", "00200000 08 313233343536FFFF", 0x6A88},
    {"VERIFY 7 bytes", "00200080 07 313233343536FF", 0x6A80},
    {"VERIFY 9 bytes", "00200080 09 313233343536FFFFFF", 0x6A80},
    {"VERIFY logout with data", "0020FF80 01 31", 0x6700},
    {"CHANGE P1 01", "00240180 10 313233343536FFFF 313131313131FFFF", 0x6A86},
    {"CHANGE P2 82", "00240082 10 313233343536FFFF 313131313131FFFF", 0x6A88},
    {"CHANGE 15 bytes", "00240080 0F 313233343536FFFF 313131313131FF", 0x6A80},
    {"CHANGE 17 bytes", "00240080 11 313233343536FFFF 313131313131FFFF FF", 0x6A80},
    {"CHANGE no data", "00240080", 0x6A80},
    {"RESET RETRY P2 81", "002C0081 10 3132333435363738 313131313131FFFF", 0x6A88},
    {"RESET RETRY P1 01", "002C0180 10 3132333435363738 313131313131FFFF", 0x6A86},
    {"RESET RETRY short", "002C0080 08 3132333435363738", 0x6A80},
    {"SET PIN RETRIES unauthenticated", "00FA0505", 0x6982},
    {"RESET not blocked", "00FB0000", 0x6985},
    {"RESET P1", "00FB0100", 0x6A86},
    {"RESET with data", "00FB0000 01 00", 0x6700},
};

static void
test_bad_input(void **state)
{
	struct tt_fx *f = *state;
	int calls = f->h.persist_calls;

	TT_RUN_SW_CASES(f->t, bad_cases);
	assert_int_equal(f->h.persist_calls, calls);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C3);
	assert_int_equal(tt_hex(f->t, "00200080 00", NULL, 0, NULL), 0x63C3);
}

/* A malformed new PIN is refused (6A80) only after the current PIN or PUK
 * was checked, as on a YubiKey: right current value, counter back to full;
 * wrong current value, the retry answer. */
static const struct tt_sw_case bad_new_cases[] = {
    {"CHANGE new PIN 5 long", "00240080 10 313233343536FFFF 3131313131FFFFFF", 0x6A80},
    {"CHANGE new PIN with hole", "00240080 10 313233343536FFFF 313131FF31313131", 0x6A80},
    {"CHANGE new PUK all FF", "00240081 10 3132333435363738 FFFFFFFFFFFFFFFF", 0x6A80},
    {"RESET RETRY bad new PIN", "002C0080 10 3132333435363738 FFFFFFFFFFFFFFFF", 0x6A80},
};

static void
test_bad_new_value(void **state)
{
	struct tt_fx *f = *state;

	TT_RUN_SW_CASES(f->t, bad_new_cases);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C3);
	assert_int_equal(f->h.last_pin_tries, 3);
	assert_int_equal(f->h.last_puk_tries, 3);
	/* PIN and PUK unchanged */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	/* ykman's "piv reset": VERIFY with 8 x FF until blocked, then RESET
	 * RETRY COUNTER with 16 x FF until the PUK is blocked; every answer
	 * is a retry count, never 6A80 */
	assert_int_equal(tt_hex(f->t, "00200080 08 FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_hex(f->t, "00200080 08 FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x63C1);
	assert_int_equal(tt_hex(f->t, "00200080 08 FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x63C0);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x63C2);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x63C1);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x63C0);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF", NULL, 0, NULL), 0x6983);
	assert_int_equal(tt_hex(f->t, "00FB0000", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
}

static void
test_verify(void **state)
{
	struct tt_fx *f = *state;

	/* status query, then a good PIN, then logout */
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C3);
	f->h.npin_seq = 0;
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	/* the decrement reached the host before the compare, then the reset */
	assert_int_equal(f->h.npin_seq, 2);
	assert_int_equal(f->h.pin_seq[0], 2);
	assert_int_equal(f->h.pin_seq[1], 3);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "0020FF80", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C3);
	/* wrong PINs count down, a failure drops the verified state */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	f->h.npin_seq = 0;
	assert_int_equal(tt_verify(f->t, "654321"), 0x63C2);
	assert_int_equal(f->h.npin_seq, 1);
	assert_int_equal(f->h.pin_seq[0], 2);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_verify(f->t, "1234567"), 0x63C1);
	/* a good PIN restores the counter */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(f->h.last_pin_tries, 3);
	/* reset and power-off clear the verified state */
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C3);
}

static void
test_block(void **state)
{
	struct tt_fx *f = *state;
	int calls;

	assert_int_equal(tt_verify(f->t, "000000"), 0x63C2);
	assert_int_equal(tt_verify(f->t, "000000"), 0x63C1);
	assert_int_equal(tt_verify(f->t, "000000"), 0x63C0);
	assert_int_equal(f->h.last_pin_tries, 0);
	calls = f->h.persist_calls;
	assert_int_equal(tt_verify(f->t, "123456"), 0x6983);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x6983);
	assert_int_equal(f->h.persist_calls, calls);
	/* change PIN is refused too */
	assert_int_equal(
	    tt_hex(f->t, "00240080 10 313233343536FFFF 313131313131FFFF", NULL, 0, NULL), 0x6983);
	/* unblock with the PUK */
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 3132333435363730 313131313131FFFF", NULL, 0, NULL), 0x63C2);
	assert_int_equal(f->h.last_puk_tries, 2);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 3132333435363738 313131313131FFFF", NULL, 0, NULL), 0x9000);
	assert_int_equal(f->h.last_puk_tries, 3);
	assert_int_equal(f->h.last_pin_tries, 3);
	assert_int_equal(tt_verify(f->t, "123456"), 0x63C2);
	assert_int_equal(tt_verify(f->t, "111111"), 0x9000);
}

static void
test_persist_fail(void **state)
{
	struct tt_fx *f = *state;

	/* the decrement cannot be saved: 6581 and no compare, for a good PIN
	 * and for a bad one alike */
	f->h.persist_fail = 1;
	assert_int_equal(tt_verify(f->t, "123456"), 0x6581);
	assert_int_equal(tt_verify(f->t, "999999"), 0x6581);
	f->h.persist_fail = 0;
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C1);
	f->h.persist_fail = 1;
	assert_int_equal(
	    tt_hex(f->t, "00240080 10 313233343536FFFF 313131313131FFFF", NULL, 0, NULL), 0x6581);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 3132333435363738 313131313131FFFF", NULL, 0, NULL), 0x6581);
	f->h.persist_fail = 0;
	/* each failed save still cost a try in memory: PIN 0, PUK 2 */
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x6983);
	{
		uint8_t out[32];
		size_t n;

		assert_int_equal(tt_hex(f->t, "00F70081", out, sizeof(out), &n), 0x9000);
		assert_int_equal(out[n - 1], 2);
	}
}

static void
test_change(void **state)
{
	struct tt_fx *f = *state;
	struct tg_tok_info info;

	tg_tok_info_get(f->t, &info);
	assert_int_equal(info.default_pin, 1);
	assert_int_equal(info.default_puk, 1);
	assert_int_equal(
	    tt_hex(f->t, "00240080 10 313233343530FFFF 3837363534333231", NULL, 0, NULL), 0x63C2);
	assert_int_equal(
	    tt_hex(f->t, "00240080 10 313233343536FFFF 3837363534333231", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(f->t, "123456"), 0x63C2);
	assert_int_equal(tt_verify(f->t, "87654321"), 0x9000);
	/* a failed CHANGE REFERENCE ends the verified state like a failed
	 * VERIFY; a failed PUK change leaves the PIN state alone */
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x9000);
	assert_int_equal(
	    tt_hex(f->t, "00240081 10 3132333435363730 313131313131FFFF", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x9000);
	assert_int_equal(
	    tt_hex(f->t, "00240080 10 313233343530FFFF 3837363534333231", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_verify(f->t, "87654321"), 0x9000);
	assert_int_equal(
	    tt_hex(f->t, "00240081 10 3132333435363738 313131313131FFFF", NULL, 0, NULL), 0x9000);
	assert_int_equal(
	    tt_hex(f->t, "00240081 10 313131313131FFFF 3132333435363738", NULL, 0, NULL), 0x9000);
	/* PUK */
	assert_int_equal(
	    tt_hex(f->t, "00240081 10 3132333435363730 313131313131FFFF", NULL, 0, NULL), 0x63C2);
	assert_int_equal(f->h.last_puk_tries, 2);
	assert_int_equal(
	    tt_hex(f->t, "00240081 10 3132333435363738 313131313131FFFF", NULL, 0, NULL), 0x9000);
	assert_int_equal(f->h.last_puk_tries, 3);
	tg_tok_info_get(f->t, &info);
	assert_int_equal(info.default_pin, 0);
	assert_int_equal(info.default_puk, 0);
	assert_int_equal(
	    tt_hex(f->t, "002C0080 10 313131313131FFFF 313233343536FFFF", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
}

static void
test_set_pin_retries(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[64], want[64];
	size_t n, wn;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	assert_int_equal(tt_hex(f->t, "00FA0506", NULL, 0, NULL), 0x6982); /* needs the PIN */
	assert_int_equal(
	    tt_hex(f->t, "00240080 10 313233343536FFFF 313131313131FFFF", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(f->t, "111111"), 0x9000);
	assert_int_equal(tt_hex(f->t, "00FA0006", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00FA0500", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00FA0506 01 00", NULL, 0, NULL), 0x6700);
	assert_int_equal(tt_hex(f->t, "00FA0506", NULL, 0, NULL), 0x9000);
	assert_int_equal(f->h.last_pin_tries, 5);
	assert_int_equal(f->h.last_puk_tries, 6);
	/* PIN and PUK back to their defaults, PIN no longer verified */
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C5);
	assert_int_equal(tt_verify(f->t, "111111"), 0x63C4);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, "00F70080", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("0101FF 050101 06020505", want, sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	assert_int_equal(tt_hex(f->t, "00F70081", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("0101FF 050101 06020606", want, sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
}

static void
test_reset(void **state)
{
	struct tt_fx *f = *state;
	uint8_t chuid1[200], chuid2[200], f9a[1000], f9b[1000];
	size_t n1, n2, f1, f2;
	EVP_PKEY *pk;
	int i;

	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC102", chuid1, sizeof(chuid1), &n1),
	                 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FFF01", f9a, sizeof(f9a), &f1), 0x9000);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	pk = tt_generate(f->t, 0x9A, 0x11, 0, 0);
	EVP_PKEY_free(pk);
	/* change the management key and the PIN */
	assert_int_equal(tt_hex(f->t,
	                        "00FFFFFF 1B 039B18 0F0E0D0C0B0A09080706050403020100"
	                        "0102030405060708",
	                        NULL, 0, NULL),
	                 0x9000);
	assert_int_equal(tt_hex(f->t, "00FB0000", NULL, 0, NULL), 0x6985);
	for (i = 0; i < 3; i++)
		(void)tt_verify(f->t, "000000");
	assert_int_equal(tt_hex(f->t, "00FB0000", NULL, 0, NULL), 0x6985); /* PUK not blocked */
	for (i = 0; i < 3; i++)
		(void)tt_hex(f->t, "002C0080 10 3030303030303030 313131313131FFFF", NULL, 0, NULL);
	assert_int_equal(tt_hex(f->t, "00FB0000", NULL, 0, NULL), 0x9000);
	assert_int_equal(f->h.last_pin_tries, 3);
	/* factory state: default PIN, PUK and management key, empty slots,
	 * new CHUID, same attestation certificate */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	assert_int_equal(tt_hex(f->t, "00F7009A", NULL, 0, NULL), 0x6A88);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC102", chuid2, sizeof(chuid2), &n2),
	                 0x9000);
	assert_int_equal(n1, n2);
	assert_memory_not_equal(chuid1, chuid2, n1);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FFF01", f9b, sizeof(f9b), &f2), 0x9000);
	assert_int_equal(f1, f2);
	assert_memory_equal(f9a, f9b, f1);
	assert_int_equal(tt_hex(f->t, "00F700F9", NULL, 0, NULL), 0x9000);
}

static void
test_create_params(void **state)
{
	const struct tt_mfr *mfr = *state;
	struct tt_host h;
	struct tg_tok_host host = tt_host_make(&h);
	struct tg_tok_params p;
	struct tg_tok *t = NULL;
	struct tg_tok_info info;
	static const uint8_t aeskey[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

	memset(&p, 0, sizeof(p));
	p.mfr_cert_der = mfr->cert_der;
	p.mfr_cert_len = mfr->cert_len;
	p.mfr_key_der = mfr->key_der;
	p.mfr_key_len = mfr->key_len;
	p.pin = "12345"; /* too short */
	assert_true(tg_tok_create(&p, &host, &t) < 0);
	p.pin = "123456789"; /* too long */
	assert_true(tg_tok_create(&p, &host, &t) < 0);
	p.pin = "2468024";
	p.puk = "13579135";
	p.mgm_key = aeskey;
	p.mgm_key_len = 24; /* does not fit AES-128 */
	p.mgm_key_alg = 0x08;
	assert_true(tg_tok_create(&p, &host, &t) < 0);
	p.mgm_key_len = 16;
	p.mfr_key_len = 10; /* broken manufacturer key */
	assert_true(tg_tok_create(&p, &host, &t) < 0);
	p.mfr_key_len = mfr->key_len;
	p.version[0] = 5;
	p.version[1] = 7;
	p.version[2] = 1;
	assert_int_equal(tg_tok_create(&p, &host, &t), 0);
	tg_tok_info_get(t, &info);
	assert_int_equal(info.default_pin, 0);
	assert_int_equal(info.default_puk, 0);
	assert_int_equal(info.default_mgm_key, 0);
	assert_int_equal(info.mgm_key_alg, 0x08);
	assert_true(info.serial != 0);
	assert_int_equal(info.version[1], 7);
	assert_int_equal(info.form_factor, 0x81);
	tt_select(t);
	assert_int_equal(tt_verify(t, "2468024"), 0x9000);
	assert_int_equal(tt_mgm_auth(t, 0x08, aeskey, 16), 0x9000);
	tg_tok_free(t);
	tt_host_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bad_new_value, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_verify, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_block, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_persist_fail, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_change, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_set_pin_retries, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_reset, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test(test_create_params),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
