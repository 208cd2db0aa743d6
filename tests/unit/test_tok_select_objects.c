/* test_tok_select_objects.c — SELECT (token/piv.c) and the data objects:
 * GET DATA / PUT DATA (token/objects.c), the Yubico range ykman uses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_tok_util.h"
#include <openssl/x509v3.h>

#include "tg_buf.h"
#include "tok-int.h"

static const struct tt_sw_case select_cases[] = {
    {"RID only", "00A40400 05 A000000308", 0x9000},
    {"AID without version", "00A40400 09 A00000030800001000", 0x9000},
    {"full AID", "00A40400 0B A0000003080000100001 00", 0x9000},
    {"full AID with Le", "00A40400 0B A0000003080000100001 00 00", 0x9000},
    {"4-byte prefix", "00A40400 04 A0000003", 0x6A82},
    {"other RID", "00A40400 05 A000000309", 0x6A82},
    {"OpenPGP", "00A40400 06 D27600012401", 0x6A82},
    {"CAC", "00A40400 07 A0000000790100", 0x6A82},
    {"PIV AID, wrong version byte", "00A40400 0B A0000003080000100002 00", 0x6A82},
    {"too long", "00A40400 0C A000000308000010000100 00", 0x6A82},
    {"no data", "00A40400", 0x6A82},
    {"P1 00 (by file id)", "00A40000 05 A000000308", 0x6A86},
    {"P2 0C (no FCI)", "00A4040C 05 A000000308", 0x9000},
    {"P2 0C, unknown AID", "00A4040C 06 D27600012401", 0x6A82},
    {"P2 04", "00A40404 05 A000000308", 0x6A86},
};

static void
test_select(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[64], want[64];
	size_t n, wn;

	TT_RUN_SW_CASES(f->t, select_cases);
	assert_int_equal(tt_hex(f->t, "00A40400 05 A000000308", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("6111 4F06000010000100 7907 4F05A000000308", want, sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	/* a failed SELECT of another application keeps PIV selected */
	assert_int_equal(tt_hex(f->t, "00A40400 06 D27600012401", NULL, 0, NULL), 0x6A82);
	assert_int_equal(tt_hex(f->t, "00FD0000", NULL, 0, NULL), 0x9000);
}

static const struct tt_sw_case get_data_cases[] = {
    {"P1P2 3FFE", "00CB3FFE 05 5C035FC102", 0x6A86},
    {"P1P2 0000", "00CB0000 05 5C035FC102", 0x6A86},
    {"no data", "00CB3FFF", 0x6A80},
    {"truncated tag list", "00CB3FFF 04 5C035FC1", 0x6A80},
    {"tag list length past end", "00CB3FFF 02 5C05", 0x6A80},
    {"empty tag list", "00CB3FFF 02 5C00", 0x6A80},
    {"4-byte tag", "00CB3FFF 06 5C045FC10201", 0x6A80},
    {"wrong outer tag", "00CB3FFF 05 5D035FC102", 0x6A80},
    {"trailing bytes", "00CB3FFF 06 5C035FC102 00", 0x6A80},
    {"two tags", "00CB3FFF 0A 5C035FC102 5C035FC107", 0x6A80},
    {"indefinite length", "00CB3FFF 05 5C805FC102", 0x6A80},
    {"id below the range", "00CB3FFF 05 5C035EFFFF", 0x6A82},
    {"id above the range", "00CB3FFF 05 5C03600000", 0x6A82},
    {"1-byte id other than 7E", "00CB3FFF 03 5C017F", 0x6A82},
    {"2-byte id other than 7F61", "00CB3FFF 04 5C027F62", 0x6A82},
    {"undefined PIV tag never written", "00CB3FFF 05 5C035FC1FF", 0x6A82},
    {"PIVMAN data never written", "00CB3FFF 05 5C035FFF00", 0x6A82},
    {"Yubico 5FFF10 never written", "00CB3FFF 05 5C035FFF10", 0x6A82},
    {"undefined 5F0001 never written", "00CB3FFF 05 5C035F0001", 0x6A82},
    {"biometric group template never written", "00CB3FFF 04 5C027F61", 0x6A82},
    {"empty cert 9A", "00CB3FFF 05 5C035FC105", 0x6A82},
    {"empty cert 9C", "00CB3FFF 05 5C035FC10A", 0x6A82},
    {"empty cert 9D", "00CB3FFF 05 5C035FC10B", 0x6A82},
    {"empty cert 9E", "00CB3FFF 05 5C035FC101", 0x6A82},
    {"empty retired 1", "00CB3FFF 05 5C035FC10D", 0x6A82},
    {"empty retired 20", "00CB3FFF 05 5C035FC120", 0x6A82},
    {"empty key history", "00CB3FFF 05 5C035FC10C", 0x6A82},
    {"printed info needs PIN", "00CB3FFF 05 5C035FC109", 0x6982},
    {"fingerprints need PIN", "00CB3FFF 05 5C035FC103", 0x6982},
    {"facial image needs PIN", "00CB3FFF 05 5C035FC108", 0x6982},
    {"iris needs PIN", "00CB3FFF 05 5C035FC121", 0x6982},
    {"CHUID", "00CB3FFF 05 5C035FC102", 0x9000},
    {"CCC", "00CB3FFF 05 5C035FC107", 0x9000},
    {"discovery", "00CB3FFF 03 5C017E", 0x9000},
    {"F9 certificate", "00CB3FFF 05 5C035FFF01", 0x9000},
};

static void
test_get_data(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[4000], want[64];
	struct tg_buf b, v, x;
	size_t n, wn;
	static const uint8_t zero[16];

	tt_select(f->t);
	TT_RUN_SW_CASES(f->t, get_data_cases);
	/* Discovery: exactly the template */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 03 5C017E", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("7E12 4F0BA0000003080000100001 00 5F2F024010", want, sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	/* CHUID: 53 L value, nothing after; FASC-N D4E739..., non-zero GUID */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC102", out, sizeof(out), &n), 0x9000);
	tg_buf_reader(&b, out, n);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x53, &v), 0);
	assert_int_equal(tg_buf_expect_end(&b), 0);
	assert_int_equal(tg_buf_find_tlv(&v, 0x30, &x), 0);
	assert_int_equal(tg_buf_remaining(&x), 25);
	assert_memory_equal(tg_buf_cur(&x), "\xD4\xE7\x39", 3);
	assert_int_equal(tg_buf_find_tlv(&v, 0x34, &x), 0);
	assert_int_equal(tg_buf_remaining(&x), 16);
	assert_memory_not_equal(tg_buf_cur(&x), zero, 16);
	/* CCC: card identifier F0 */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC107", out, sizeof(out), &n), 0x9000);
	tg_buf_reader(&b, out, n);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x53, &v), 0);
	assert_int_equal(tg_buf_expect_end(&b), 0);
	assert_int_equal(tg_buf_find_tlv(&v, 0xF0, &x), 0);
	assert_int_equal(tg_buf_remaining(&x), 21);
}

static void
test_f9_cert(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[4000];
	struct tg_buf b, v, c;
	const uint8_t *p;
	X509 *x;
	EVP_PKEY *pk;
	size_t n;

	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FFF01", out, sizeof(out), &n), 0x9000);
	tg_buf_reader(&b, out, n);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x53, &v), 0);
	assert_int_equal(tg_buf_expect_end(&b), 0);
	assert_int_equal(tg_buf_get_tlv_tag(&v, 0x70, &c), 0);
	p = tg_buf_cur(&c);
	x = d2i_X509(NULL, &p, (long)tg_buf_remaining(&c));
	assert_non_null(x);
	assert_ptr_equal(p, tg_buf_cur(&c) + tg_buf_remaining(&c));
	/* signed by the manufacturer CA, issued under its name */
	pk = X509_get0_pubkey(f->mfr->cert);
	assert_int_equal(X509_verify(x, pk), 1);
	assert_int_equal(
	    X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(f->mfr->cert)), 0);
	assert_int_equal(X509_check_ca(x), 1);
	X509_free(x);
	assert_int_equal(tg_buf_find_tlv(&v, 0x71, &c), 0);
	assert_int_equal(tg_buf_find_tlv(&v, 0xFE, &c), 0);
}

static const struct tt_sw_case put_data_cases[] = {
    {"P1P2 wrong", "00DB3FFE 08 5C035FC105 53017F", 0x6A86},
    {"no 53", "00DB3FFF 05 5C035FC105", 0x6A80},
    {"53 truncated", "00DB3FFF 08 5C035FC105 5305AA", 0x6A80},
    {"trailing after 53", "00DB3FFF 09 5C035FC105 5301AA 00", 0x6A80},
    {"53 before 5C", "00DB3FFF 08 5301AA 5C035FC105", 0x6A80},
    {"id below the range", "00DB3FFF 08 5C035EFFFF 5301AA", 0x6A80},
    {"id above the range", "00DB3FFF 08 5C03600000 5301AA", 0x6A80},
    {"1-byte id", "00DB3FFF 06 5C017F 5301AA", 0x6A80},
    {"empty tag list", "00DB3FFF 05 5C00 5301AA", 0x6A80},
    {"4-byte id", "00DB3FFF 09 5C045FC10201 5301AA", 0x6A80},
    {"discovery is read-only", "00DB3FFF 06 5C017E 5301AA", 0x6A80},
    {"empty data", "00DB3FFF", 0x6A80},
};

static void
test_put_data(void **state)
{
	struct tt_fx *f = *state;
	uint8_t data[3100], out[3200];
	size_t n, m;
	int calls;

	tt_select(f->t);
	/* without the management key */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC105 5301AA", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	TT_RUN_SW_CASES(f->t, put_data_cases);
	/* a certificate object round trip; persisted before the answer */
	calls = f->h.persist_calls;
	assert_int_equal(
	    tt_hex(f->t, "00DB3FFF 11 5C035FC105 530A 7003AABBCC 710100 FE00", NULL, 0, NULL),
	    0x9000);
	assert_int_equal(f->h.persist_calls, calls + 1);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC105", out, sizeof(out), &n), 0x9000);
	m = tt_unhex("530A 7003AABBCC 710100 FE00", data, sizeof(data));
	assert_int_equal(n, 12);
	assert_int_equal(m, 12);
	assert_memory_equal(out, data, m);
	/* delete with an empty 53 */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 07 5C035FC105 5300", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC105", NULL, 0, NULL), 0x6A82);
	/* the largest object fits, one byte more does not */
	m = 0;
	data[m++] = 0x5C;
	data[m++] = 3;
	data[m++] = 0x5F;
	data[m++] = 0xC1;
	data[m++] = 0x0D;
	data[m++] = 0x53;
	data[m++] = 0x82;
	data[m++] = 3052 >> 8;
	data[m++] = 3052 & 0xFF;
	memset(data + m, 0x42, 3053);
	assert_int_equal(tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m + 3052, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC10D", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 3056);
	data[7] = 3053 >> 8;
	data[8] = 3053 & 0xFF;
	assert_int_equal(tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m + 3053, NULL, 0, NULL), 0x6A84);
	/* PIN-protected objects: printed information */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 0A 5C035FC109 5303 010100", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	/* persist failing: 6581 */
	f->h.persist_fail = 1;
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6581);
	f->h.persist_fail = 0;
	/* management key state is volatile */
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC105 5301AA", NULL, 0, NULL), 0x6982);
	/* and the PIN does not stand in for it */
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035FC105 5301AA", NULL, 0, NULL), 0x6982);
}

/* ykman's objects: PIVMAN data (5FFF00) readable by anyone once written,
 * the PIN-protected management key in PRINTED (5FC109), ids nobody
 * defined (5F0001); a PIN-protected object is refused before its presence
 * is told. */
static void
test_yubico_objects(void **state)
{
	struct tt_fx *f = *state;
	uint8_t out[64], want[64];
	size_t n, wn;

	/* PRINTED without the PIN: 6982 whether written or not */
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 0D 5C035FFF00 5306 8004 81010200", NULL, 0, NULL),
	                 0x9000);
	assert_int_equal(
	    tt_hex(
	        f->t,
	        "00DB3FFF 20 5C035FC109 5319 8817 8915 0102030405060708090A0B0C0D0E0F101112131415",
	        NULL, 0, NULL),
	    0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 0A 5C035F0001 5303 AABBCC", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 09 5C027F61 5303 010203", NULL, 0, NULL), 0x9000);
	tg_tok_reset(f->t);
	tt_select(f->t);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FFF00", out, sizeof(out), &n), 0x9000);
	wn = tt_unhex("5306 8004 81010200", want, sizeof(want));
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035F0001", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 04 5C027F61", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_verify(f->t, "123456"), 0x9000);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 27);
	assert_int_equal(out[0], 0x53);
	assert_int_equal(out[2], 0x88);
	/* a wrong PIN ends the verified state: PRINTED is closed again */
	assert_int_equal(tt_verify(f->t, "654321"), 0x63C2);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035FC109", NULL, 0, NULL), 0x6982);
}

/* The objects live in the persistent state and survive a reload. */
static void
test_objects_persist(void **state)
{
	struct tt_fx *f = *state;
	struct tg_tok *t2 = NULL;
	struct tg_tok_host h = tt_host_make(&f->h);
	uint8_t out[64];
	size_t n;

	assert_int_equal(tt_hex(f->t, "00DB3FFF 0A 5C035FFF00 5303 800100", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 0A 5C035F1234 5303 112233", NULL, 0, NULL), 0x9000);
	assert_int_equal(tg_tok_load(f->h.last_blob, f->h.last_len, &h, &t2), 0);
	tt_select(t2);
	assert_int_equal(tt_hex(t2, "00CB3FFF 05 5C035FFF00", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	assert_int_equal(tt_hex(t2, "00CB3FFF 05 5C035F1234", out, sizeof(out), &n), 0x9000);
	assert_int_equal(n, 5);
	assert_int_equal(out[4], 0x33);
	tg_tok_free(t2);
}

/* Capacity: TOK_NOBJS objects and TOK_OBJ_TOTAL bytes at most (6A84,
 * nothing stored); replacing or deleting an object frees its room. */
static void
test_objects_capacity(void **state)
{
	struct tt_fx *f = *state;
	uint8_t data[3100];
	size_t m, i, held = 2; /* the factory CHUID and CCC */
	uint16_t sw = 0x9000;

	/* the F9 certificate is the third */
	held++;
	for (i = 0; i < TOK_NOBJS - held; i++) {
		m = tt_unhex("5C035F0000 5301AA", data, sizeof(data));
		data[4] = (uint8_t)i;
		assert_int_equal(tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m, NULL, 0, NULL), 0x9000);
	}
	m = tt_unhex("5C035F0100 5301AA", data, sizeof(data));
	assert_int_equal(tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m, NULL, 0, NULL), 0x6A84);
	assert_int_equal(tt_hex(f->t, "00CB3FFF 05 5C035F0100", NULL, 0, NULL), 0x6A82);
	/* replacing one in place still works; deleting one makes room */
	assert_int_equal(tt_hex(f->t, "00DB3FFF 08 5C035F0000 5301BB", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(f->t, "00DB3FFF 07 5C035F0000 5300", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m, NULL, 0, NULL), 0x9000);
	/* bytes: fill with large objects until the total is reached */
	for (i = 1; i < TOK_NOBJS - held && sw == 0x9000; i++) {
		m = tt_unhex("5C035F0000 53820BEC", data, sizeof(data));
		data[4] = (uint8_t)i;
		memset(data + m, 0x42, 3052);
		sw = tt_send(f->t, 0xDB, 0x3F, 0xFF, data, m + 3052, NULL, 0, NULL);
	}
	assert_int_equal(sw, 0x6A84);
	assert_true(i * 3052 > TOK_OBJ_TOTAL - 3052);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_select, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_get_data, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_f9_cert, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_put_data, tt_fx_setup, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_yubico_objects, tt_fx_setup_admin, tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_objects_persist, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	    cmocka_unit_test_setup_teardown(test_objects_capacity, tt_fx_setup_admin,
	                                    tt_fx_teardown),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
