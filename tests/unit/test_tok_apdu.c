/* test_tok_apdu.c — APDU framing, CLA/INS errors, command chaining and
 * response chaining of the token core (token/apdu.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_tok_util.h"
#include "tg_err.h"

/* Malformed framing and bad classes, answered before any handler runs. */
static const struct tt_sw_case framing[] = {
    {"empty", "", 0x6700},
    {"1 byte", "00", 0x6700},
    {"2 bytes", "00A4", 0x6700},
    {"3 bytes", "00A404", 0x6700},
    {"Lc longer than data", "00A40400 05 A0000003", 0x6700},
    {"Lc shorter than data", "00A40400 02 A0000003", 0x6700},
    {"two trailing bytes", "00A40400 05 A000000308 0000", 0x6700},
    {"extended, 1 length byte", "00A40400 0000", 0x6700},
    {"extended Lc 0000 with data", "00A40400 000000 A000000308", 0x6700},
    {"extended Lc longer than data", "00A40400 000006 A000000308", 0x6700},
    {"extended Lc shorter than data", "00A40400 000004 A000000308", 0x6700},
    {"extended, 1 byte of Le", "00A40400 000005 A000000308 00", 0x6700},
    {"extended, 3 bytes after data", "00A40400 000005 A000000308 000000", 0x6700},
    {"CLA 80", "80A40400 05 A000000308", 0x6E00},
    {"CLA 0C (secure messaging)", "0CA40400 05 A000000308", 0x6E00},
    {"CLA FF", "FFA40400 05 A000000308", 0x6E00},
    {"CLA 01 (channel)", "01A40400 05 A000000308", 0x6E00},
};

static void
test_framing(void **state)
{
	struct tt_fx *f = *state;

	TT_RUN_SW_CASES(f->t, framing);
}

static void
test_unselected(void **state)
{
	struct tt_fx *f = *state;

	/* nothing runs before SELECT, like a YubiKey's PIV applet */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 03 5C017E", NULL, 0, NULL), 0x6D00);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x6D00);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00120000", NULL, 0, NULL), 0x6D00);
	assert_int_equal(tt_hex(f->t, "00B00000 00", NULL, 0, NULL), 0x6D00);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x9000);
	/* reset: the application must be selected again */
	tg_tok_reset(f->t);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x6D00);
	tt_select(f->t);
	tg_tok_power_off(f->t);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x6D00);
}

static void
test_cases(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[300];
	size_t n;

	/* case 3 without Le (yubico-piv-tool), case 4 with Le (OpenSC) */
	assert_int_equal(tt_hex(f->t, "00A40400 05 A000000308", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 19);
	assert_int_equal(tt_hex(f->t, "00A40400 09 A00000030800001000 00", out, sizeof(out), &n),
	                 0x9000);
	assert_int_equal(n, 19);
	/* case 1 and case 2 */
	assert_int_equal(tt_hex(f->t, "00FD0000", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 3);
	assert_int_equal(tt_hex(f->t, "00FD0000 00", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 3);
	assert_int_equal(out[0], 5);
	assert_int_equal(out[1], 4);
	assert_int_equal(out[2], 3);
	assert_int_equal(tt_hex(f->t, "00F80000 00", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 4);
	assert_int_equal((out[0] << 24) | (out[1] << 16) | (out[2] << 8) | out[3], 1234567);
	/* Yubico commands with stray data or P1/P2 */
	assert_int_equal(tt_hex(f->t, "00FD0000 01 00", NULL, 0, NULL), 0x6700);
	assert_int_equal(tt_hex(f->t, "00FD0100", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00F80001", NULL, 0, NULL), 0x6A86);
	assert_int_equal(tt_hex(f->t, "00F80000 01 00", NULL, 0, NULL), 0x6700);
}

/* Extended APDUs (ISO/IEC 7816-3 12.1.3), as yubikit sends every PIV
 * command to a YubiKey 4 or later: cases 2E, 3E and 4E. */
static void
test_extended(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[300];
	size_t n;

	/* case 3E: SELECT */
	assert_int_equal(tt_hex(f->t, "00A40400 000005 A000000308", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 19);
	/* case 4E with Le 0000 (65536) */
	assert_int_equal(tt_hex(f->t, "00A40400 000005 A000000308 0000", out, sizeof(out), &n),
	                 0x9000);
	assert_int_equal(n, 19);
	/* case 2E: GET VERSION, and a VERIFY status query (no data) */
	assert_int_equal(tt_hex(f->t, "00FD0000 000000", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 3);
	assert_int_equal(tt_hex(f->t, "00200080 000000", NULL, 0, NULL), 0x63C3);
	/* case 3E GET DATA without Le: ykman's first PIV command */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 000005 5C035FFF00", NULL, 0, NULL), 0x6A82);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 000005 5C035FC102", out, sizeof(out), &n), 0x9000);
	assert_true(n > 0 && out[0] == 0x53);
	/* a small extended Le limits the part returned, the rest follows */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 000005 5C035FC102 0004", out, sizeof(out), &n),
	                 0x9000);
	assert_true(n > 4);
}

/* An extended command longer than a short one: one PUT DATA of a whole
 * certificate object, no chaining, then read back in 256-byte parts. */
static void
test_extended_long(void **state)
{
	struct tt_fx *f = *state;
	uint8_t cmd[2100], out[2100];
	size_t n, m = 0, i;

	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	cmd[m++] = 0x00;
	cmd[m++] = 0xDB;
	cmd[m++] = 0x3F;
	cmd[m++] = 0xFF;
	cmd[m++] = 0x00;
	cmd[m++] = (2000 + 9) >> 8;
	cmd[m++] = (2000 + 9) & 0xFF;
	m += tt_unhex("5C035FC105 538207D0", cmd + m, sizeof(cmd) - m);
	for (i = 0; i < 2000; i++)
		cmd[m++] = (uint8_t)i;
	assert_int_equal(tt_apdu(f->t, cmd, m, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 000005 5C035FC105", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 2004);
	assert_memory_equal(out + 4, cmd + m - 2000, 2000);
}

static void
test_args(void **state)
{
	struct tt_fx *f = *state;
	uint8_t cmd[] = {0x00, 0xFD, 0x00, 0x00}, rsp[300];
	size_t n;

	assert_int_equal(tg_tok_apdu(f->t, cmd, sizeof(cmd), rsp, 257, &n), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(NULL, cmd, sizeof(cmd), rsp, sizeof(rsp), &n),
	                 TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(f->t, NULL, 4, rsp, sizeof(rsp), &n), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(f->t, cmd, sizeof(cmd), NULL, sizeof(rsp), &n),
	                 TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_apdu(f->t, cmd, sizeof(cmd), rsp, sizeof(rsp), NULL),
	                 TG_ERR_INVALID_ARG);
}

static void
put_big_object(struct tt_fx *f, uint8_t *obj, size_t n)
{
	uint8_t data[2000];
	size_t i, m = 0;

	assert_true(n + 10 < sizeof(data));
	for (i = 0; i < n; i++)
		obj[i] = (uint8_t)(i * 7 + 3);
	data[m++] = 0x5C;
	data[m++] = 3;
	data[m++] = 0x5F;
	data[m++] = 0xC1;
	data[m++] = 0x0C; /* key history */
	data[m++] = 0x53;
	data[m++] = 0x82;
	data[m++] = (uint8_t)(n >> 8);
	data[m++] = (uint8_t)n;
	memcpy(data + m, obj, n);
	m += n;
	assert_int_equal(tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m, NULL, 0, NULL), 0x9000);
}

static void
test_response_chaining(void **state)
{
	struct tt_fx *f = *state;
	uint8_t obj[1000], out[1100], part[300];
	size_t n, got;
	uint16_t sw;

	tt_select(f->t);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	put_big_object(f, obj, sizeof(obj));
	/* first part: 256 bytes and 6100 (256 or more waiting) */
	sw = tt_apdu1(f->t, (const uint8_t *)"\x00\xCB\x3F\xFF\x05\x5C\x03\x5F\xC1\x0C", 10, out,
	              sizeof(out), &got);
	assert_int_equal(sw, 0x6100);
	assert_int_equal(got, 256);
	/* GET RESPONSE with Le 10: 10 bytes */
	sw = tt_apdu1(f->t, (const uint8_t *)"\x00\xC0\x00\x00\x0A", 5, out + got,
	              sizeof(out) - got, &n);
	assert_int_equal(sw, 0x6100);
	assert_int_equal(n, 10);
	got += n;
	/* wrong P1 of GET RESPONSE */
	sw = tt_apdu1(f->t, (const uint8_t *)"\x00\xC0\x01\x00\x00", 5, NULL, 0, NULL);
	assert_int_equal(sw, 0x6A86);
	/* the rest with Le 00 */
	for (;;) {
		sw = tt_apdu1(f->t, (const uint8_t *)"\x00\xC0\x00\x00\x00", 5, out + got,
		              sizeof(out) - got, &n);
		got += n;
		if (sw == 0x9000)
			break;
		assert_int_equal(sw & 0xFF00, 0x6100);
		if ((sw & 0xFF) != 0)
			assert_int_equal(sw & 0xFF, 1004 - got);
	}
	assert_int_equal(got, 4 + sizeof(obj));
	assert_int_equal(out[0], 0x53);
	assert_int_equal(out[1], 0x82);
	assert_memory_equal(out + 4, obj, sizeof(obj));
	/* nothing pending now */
	assert_int_equal(tt_apdu1(f->t, (const uint8_t *)"\x00\xC0\x00\x00\x00", 5, NULL, 0, NULL),
	                 0x6985);
	/* a short Le on GET DATA (OpenSC probing the length) */
	sw = tt_apdu1(f->t, (const uint8_t *)"\x00\xCB\x3F\xFF\x05\x5C\x03\x5F\xC1\x0C\x08", 11,
	              part, sizeof(part), &n);
	assert_int_equal(n, 8);
	assert_int_equal(sw, 0x6100);
	assert_int_equal(part[0], 0x53);
	/* another command drops the pending response */
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_apdu1(f->t, (const uint8_t *)"\x00\xC0\x00\x00\x00", 5, NULL, 0, NULL),
	                 0x6985);
	/* and so does a reset */
	sw = tt_apdu1(f->t, (const uint8_t *)"\x00\xCB\x3F\xFF\x05\x5C\x03\x5F\xC1\x0C", 10, out,
	              sizeof(out), &got);
	assert_int_equal(sw, 0x6100);
	tg_tok_reset(f->t);
	assert_int_equal(tt_apdu1(f->t, (const uint8_t *)"\x00\xC0\x00\x00\x00", 5, NULL, 0, NULL),
	                 0x6985);
	/* through the helper that follows 61xx */
	tt_select(f->t);
	sw = tt_hex(f->t, "00CB3FFF 05 5C035FC10C", out, sizeof(out), &got);
	assert_int_equal(sw, 0x9000);
	assert_int_equal(got, 1004);
}

static void
test_command_chaining(void **state)
{
	struct tt_fx *f = *state;
	uint8_t cmd[260];
	size_t i;

	tt_select(f->t);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	/* a chain continued by another INS is refused */
	assert_int_equal(tt_hex(f->t, "10DB3FFF 03 5C035F", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x6883);
	/* ... and by other P1/P2 */
	assert_int_equal(tt_hex(f->t, "10DB3FFF 03 5C035F", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFE 02 C10C", NULL, 0, NULL), 0x6883);
	/* the chain was dropped: a fresh command works */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 07 5C035FC10C 5300", NULL, 0, NULL), 0x9000);
	/* a split PUT DATA */
	assert_int_equal(tt_hex(f->t, "10DB3FFF 03 5C035F", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "10DB3FFF 02 C10C", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 04 5302AABB", NULL, 0, NULL), 0x9000);
	{
		uint8_t out[16];
		size_t n;

		assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC10C", out, sizeof(out), &n),
		                 0x9000);
		assert_int_equal(n, 4);
		assert_int_equal(out[2], 0xAA);
		assert_int_equal(out[3], 0xBB);
	}
	/* overflowing the chaining buffer: 6700 and the chain is gone */
	cmd[0] = 0x10;
	cmd[1] = 0xDB;
	cmd[2] = 0x3F;
	cmd[3] = 0xFF;
	cmd[4] = 0xFF;
	memset(cmd + 5, 0x11, 255);
	for (i = 0; i < 20; i++) {
		uint16_t sw = tt_apdu1(f->t, cmd, 260, NULL, 0, NULL);

		if (sw == 0x6700)
			break;
		assert_int_equal(sw, 0x9000);
	}
	assert_true(i < 20);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x9000);
	/* a reset drops a chain in progress */
	assert_int_equal(tt_hex(f->t, "10DB3FFF 03 5C035F", NULL, 0, NULL), 0x9000);
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x9000);
}

static void
test_atr(void **state)
{
	size_t n = 0, i;
	const uint8_t *atr = tg_tok_atr(&n);
	uint8_t x = 0;

	(void)state;
	assert_non_null(atr);
	assert_true(n >= 4 && n <= 33);
	assert_int_equal(atr[0], 0x3B);
	/* T0 has TD1 (bit 8 of Y1), TD1 names T=1; TCK is consistent */
	assert_true(atr[1] & 0x80);
	for (i = 1; i < n; i++)
		x ^= atr[i];
	assert_int_equal(x, 0);
	assert_int_equal(atr[5] & 0x0F, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_framing, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_unselected, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_extended, tt_fx_setup_selected, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_extended_long, tt_fx_setup_selected,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_cases, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_args, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_response_chaining, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_command_chaining, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test(test_atr),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
