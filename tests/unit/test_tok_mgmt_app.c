/* test_tok_mgmt_app.c — the YubiKey management application of the token
 * core (token/mgmt_app.c): SELECT by its AID, READ CONFIG as yubikit's
 * management.py parses it, configuration writes refused, and how it
 * shares the card with the PIV application. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_tok_util.h"

#define SELECT_MGMT "00A40400 08 A000000527471117"

static void
test_select(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[64];
	size_t n;

	/* yubikit: Version.from_string on the answer */
	assert_int_equal(tt_hex(f->t, SELECT_MGMT, out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "5.4.3", 5);
	/* with Le, and without an answer (P2 0C) */
	assert_int_equal(tt_hex(f->t, SELECT_MGMT " 00", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	assert_int_equal(tt_hex(f->t, "00A4040C 08 A000000527471117", out, sizeof(out), &n),
	                 0x9000);
	assert_int_equal(n, 0);
	/* only the whole AID: a prefix or a longer one is another application */
	assert_int_equal(tt_hex(f->t, "00A40400 07 A0000005274711", NULL, 0, NULL), 0x6A82);
	assert_int_equal(tt_hex(f->t, "00A40400 09 A00000052747111700", NULL, 0, NULL), 0x6A82);
	/* the OTP application (ykman's fallback) is absent */
	assert_int_equal(tt_hex(f->t, "00A40400 07 A0000005272001", NULL, 0, NULL), 0x6A82);
}

static void
test_read_config(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[64], want[64];
	size_t n, wn;

	assert_int_equal(tt_hex(f->t, SELECT_MGMT, NULL, 0, NULL), 0x9000);
	/* as yubikit sends it: short, P3 = 00 */
	assert_int_equal(tt_hex(f->t, "001D0000 00", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("1C"
	              "01020010"     /* USB supported: PIV */
	              "02040012D687" /* serial 1234567 */
	              "03020010"     /* USB enabled: PIV */
	              "040181"       /* form factor */
	              "0503050403"   /* firmware 5.4.3 */
	              "080100"       /* device flags */
	              "0A0100",      /* configuration not locked */
	              want, sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	/* extended (case 2E), and no Le at all */
	assert_int_equal(tt_hex(f->t, "001D0000 000000", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, wn);
	assert_int_equal(tt_hex(f->t, "001D0000", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, wn);
}

static const struct tt_sw_case mgmt_cases[] = {
    {"READ CONFIG P1", "001D0100 00", 0x6A86},
    {"READ CONFIG P2", "001D0001 00", 0x6A86},
    {"READ CONFIG with data", "001D0000 01 00", 0x6700},
    {"WRITE CONFIG, USB enabled PIV only", "001C0000 05 04 03020010", 0x6985},
    {"WRITE CONFIG, lock code", "001C0000 13 12 0A10 00112233445566778899AABBCCDDEEFF", 0x6985},
    {"WRITE CONFIG, reboot only", "001C0000 03 02 0C00", 0x6985},
    {"WRITE CONFIG, empty configuration", "001C0000 01 00", 0x6985},
    {"WRITE CONFIG, no data", "001C0000", 0x6700},
    {"WRITE CONFIG, length byte too large", "001C0000 03 05 0C00", 0x6700},
    {"WRITE CONFIG, length byte too small", "001C0000 03 01 0C00", 0x6700},
    {"WRITE CONFIG, TLV cut short", "001C0000 04 03 030200", 0x6A80},
    {"WRITE CONFIG, 2-byte tag", "001C0000 05 04 1F200100", 0x6A80},
    {"WRITE CONFIG, P1", "001C0100 05 04 03020010", 0x6A86},
    {"SET MODE", "00161100 04 01000000", 0x6985},
    {"PIV GET VERSION", "00FD0000", 0x6D00},
    {"PIV GET DATA", "00CB3FFF 05 5C035FC102", 0x6D00},
    {"PIV VERIFY", "00200080 08 313233343536FFFF", 0x6D00},
    {"unknown INS", "00010000", 0x6D00},
};

static void
test_refusals(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[64], want[64];
	size_t n, wn;
	int calls = f->h.persist_calls;

	assert_int_equal(tt_hex(f->t, SELECT_MGMT, NULL, 0, NULL), 0x9000);
	TT_RUN_SW_CASES(f->t, mgmt_cases);
	/* nothing written, nothing changed, and the PIN not spent */
	assert_int_equal(f->h.persist_calls, calls);
	assert_int_equal(tt_hex(f->t, "001D0000 00", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("1C 01020010 02040012D687 03020010 040181 0503050403 080100 0A0100", want,
	              sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00200080", NULL, 0, NULL), 0x63C3);
}

/* One application at a time, as on a YubiKey: selecting one leaves the
 * other; a failed SELECT keeps the current one; a reset selects none. */
static void
test_switching(void **state)
{
	struct tt_fx *f = *state;

	tt_select(f->t);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, SELECT_MGMT, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x6D00);
	assert_int_equal(tt_hex(f->t, "00A40400 06 D27600012401", NULL, 0, NULL), 0x6A82);
	assert_int_equal(tt_hex(f->t, "001D0000 00", NULL, 0, NULL), 0x9000);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "001D0000 00", NULL, 0, NULL), 0x6D00);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x9000);
	tg_tok_reset(f->t);
	assert_int_equal(tt_hex(f->t, "001D0000 00", NULL, 0, NULL), 0x6D00);
}

/* The version and form factor are the token's own (its parameters). */
static void
test_params(void **state)
{
	const struct tt_mfr *m = *state;
	struct tt_host h;
	struct tg_tok_params p;
	struct tg_tok_host host;
	struct tg_tok *t = NULL;
	uint8_t out[64], want[64];
	size_t n, wn;

	memset(&h, 0, sizeof(h));
	host = tt_host_make(&h);
	memset(&p, 0, sizeof(p));
	p.serial = 0x7FFFFFFF;
	p.version[0] = 12;
	p.version[1] = 0;
	p.version[2] = 255;
	p.form_factor = 0x03;
	p.mfr_cert_der = m->cert_der;
	p.mfr_cert_len = m->cert_len;
	p.mfr_key_der = m->key_der;
	p.mfr_key_len = m->key_len;
	assert_int_equal(tg_tok_create(&p, &host, &t), 0);
	assert_int_equal(tt_hex(t, SELECT_MGMT, out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "12.0.255", 8);
	assert_int_equal(tt_hex(t, "001D0000 00", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("1C 01020010 02047FFFFFFF 03020010 040103 05030C00FF 080100 0A0100", want,
	              sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	tg_tok_free(t);
	tt_host_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_select, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_read_config, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_switching, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
