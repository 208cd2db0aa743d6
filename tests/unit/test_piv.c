/*
 * test_piv.c — tg_piv: every row of the algorithm and slot tables is found
 * again by each of its columns, generated keys map back to their row, the
 * policy names round-trip, and unknown values are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "tg_err.h"
#include "tg_piv.h"

static void
test_alg_round_trip(void **state)
{
	const struct tg_piv_alg *a;
	char lower[16];
	size_t i, j, n = 0;

	(void)state;
	for (i = 0; (a = tg_piv_alg_at(i)) != NULL; i++, n++) {
		assert_ptr_equal(tg_piv_alg_by_id(a->id), a);
		assert_ptr_equal(tg_piv_alg_by_display(a->display), a);
		for (j = 0; a->display[j] != '\0' && j + 1 < sizeof(lower); j++)
			lower[j] = (char)(a->display[j] >= 'A' && a->display[j] <= 'Z'
			                      ? a->display[j] - 'A' + 'a'
			                      : a->display[j]);
		lower[j] = '\0';
		assert_ptr_equal(tg_piv_alg_by_display(lower), a);
		if (a->cli != NULL)
			assert_ptr_equal(tg_piv_alg_by_cli(a->cli), a);
		assert_true(a->bits > 0 && a->bytes * 8 == a->bits);
		switch (a->kind) {
		case TG_PIV_KIND_RSA:
			assert_ptr_equal(tg_piv_alg_by_rsa_bits((int)a->bits), a);
			assert_int_equal(a->p11_key_type, TG_PIV_CKK_RSA);
			assert_null(a->group);
			break;
		case TG_PIV_KIND_EC:
		case TG_PIV_KIND_ED:
		case TG_PIV_KIND_X:
			assert_ptr_equal(tg_piv_alg_by_nid(a->nid), a);
			assert_int_equal(OBJ_sn2nid(a->group), a->nid);
			break;
		case TG_PIV_KIND_SYM:
			assert_null(tg_piv_alg_by_nid(a->nid));
			assert_null(a->cli);
			break;
		default:
			fail_msg("row %02x: unknown kind", a->id);
		}
	}
	assert_int_equal(n, 12);
}

static void
test_alg_columns(void **state)
{
	static const struct {
		uint8_t id;
		const char *cli, *display;
		unsigned long ckk;
		int nid, bits;
	} want[] = {
	    {TG_PIV_ALG_ECCP256, "ec-p256", "ECCP256", TG_PIV_CKK_EC, NID_X9_62_prime256v1, 256},
	    {TG_PIV_ALG_ECCP384, "ec-p384", "ECCP384", TG_PIV_CKK_EC, NID_secp384r1, 384},
	    {TG_PIV_ALG_RSA2048, "rsa-2048", "RSA2048", TG_PIV_CKK_RSA, NID_undef, 2048},
	    {TG_PIV_ALG_RSA3072, "rsa-3072", "RSA3072", TG_PIV_CKK_RSA, NID_undef, 3072},
	    {TG_PIV_ALG_RSA1024, NULL, "RSA1024", TG_PIV_CKK_RSA, NID_undef, 1024},
	    {TG_PIV_ALG_3DES, NULL, "3DES", TG_PIV_CKK_DES3, NID_des_ede3_ecb, 192},
	    {TG_PIV_ALG_AES256, NULL, "AES256", TG_PIV_CKK_AES, NID_aes_256_ecb, 256},
	    {TG_PIV_ALG_ED25519, NULL, "ED25519", TG_PIV_CKK_EC_EDWARDS, NID_ED25519, 256},
	};
	const struct tg_piv_alg *a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_non_null(a = tg_piv_alg_by_id(want[i].id));
		if (want[i].cli == NULL)
			assert_null(a->cli);
		else
			assert_string_equal(a->cli, want[i].cli);
		assert_string_equal(a->display, want[i].display);
		assert_int_equal(a->p11_key_type, want[i].ckk);
		assert_int_equal(a->nid, want[i].nid);
		assert_int_equal(a->bits, want[i].bits);
	}
}

static void
test_alg_unknown(void **state)
{
	static const uint8_t ids[] = {0x00, 0x01, 0x04, 0x09, 0x12, 0x15, 0xE2, TG_PIV_ALG_PIN};
	static const char *const names[] = {"",        "p256",    "ec-P256", "EC-P256", "rsa-1024",
	                                    "rsa2048", "ECCP256", "rsa",     "ec-p521"};
	char buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ids); i++) {
		assert_null(tg_piv_alg_by_id(ids[i]));
		tg_piv_alg_display(ids[i], buf, sizeof(buf));
		assert_int_equal(strncmp(buf, "alg-", 4), 0);
	}
	assert_string_equal(tg_piv_alg_display(0xE2, buf, sizeof(buf)), "alg-e2");
	assert_string_equal(tg_piv_alg_display(TG_PIV_ALG_ECCP256, buf, sizeof(buf)), "ECCP256");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_null(tg_piv_alg_by_cli(names[i]));
	assert_null(tg_piv_alg_by_cli(NULL));
	assert_null(tg_piv_alg_by_display("ECCP521"));
	assert_null(tg_piv_alg_by_display(NULL));
	assert_null(tg_piv_alg_by_nid(NID_undef));
	assert_null(tg_piv_alg_by_nid(NID_secp521r1));
	assert_null(tg_piv_alg_by_nid(NID_aes_128_ecb)); /* a cipher, not a curve */
	assert_null(tg_piv_alg_by_rsa_bits(0));
	assert_null(tg_piv_alg_by_rsa_bits(-2048));
	assert_null(tg_piv_alg_by_rsa_bits(1536));
	assert_null(tg_piv_alg_at(12));
	assert_null(tg_piv_alg_of_pkey(NULL));
}

static void
test_alg_of_pkey(void **state)
{
	static const struct {
		const char *type;
		const char *group; /* EC: the curve; RSA: NULL */
		size_t bits;
		uint8_t want; /* 0: no row */
	} keys[] = {
	    {"EC", "P-256", 0, TG_PIV_ALG_ECCP256},
	    {"EC", "P-384", 0, TG_PIV_ALG_ECCP384},
	    {"EC", "P-521", 0, 0},
	    {"EC", "secp256k1", 0, 0},
	    {"RSA", NULL, 1024, TG_PIV_ALG_RSA1024},
	    {"RSA", NULL, 2048, TG_PIV_ALG_RSA2048},
	    {"RSA", NULL, 1536, 0},
	    {"ED25519", NULL, 0, TG_PIV_ALG_ED25519},
	    {"X25519", NULL, 0, TG_PIV_ALG_X25519},
	    {"ED448", NULL, 0, 0},
	};
	const struct tg_piv_alg *a;
	EVP_PKEY *k;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].group != NULL)
			k = EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type, keys[i].group);
		else if (keys[i].bits != 0)
			k = EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type, keys[i].bits);
		else
			k = EVP_PKEY_Q_keygen(NULL, NULL, keys[i].type);
		assert_non_null(k);
		a = tg_piv_alg_of_pkey(k);
		if (keys[i].want == 0)
			assert_null(a);
		else
			assert_int_equal(a->id, keys[i].want);
		EVP_PKEY_free(k);
	}
}

static void
test_slot_round_trip(void **state)
{
	const struct tg_piv_slot *s;
	char upper[3];
	size_t i, n = 0;

	(void)state;
	for (i = 0; (s = tg_piv_slot_at(i)) != NULL; i++, n++) {
		assert_ptr_equal(tg_piv_slot_by_id(s->id), s);
		assert_ptr_equal(tg_piv_slot_by_name(s->name), s);
		upper[0] = (char)(s->name[0] >= 'a' ? s->name[0] - 'a' + 'A' : s->name[0]);
		upper[1] = (char)(s->name[1] >= 'a' ? s->name[1] - 'a' + 'A' : s->name[1]);
		upper[2] = '\0';
		assert_ptr_equal(tg_piv_slot_by_name(upper), s);
		assert_ptr_equal(tg_piv_slot_by_cert_tag(s->cert_tag), s);
		if (s->p11_id != 0)
			assert_ptr_equal(tg_piv_slot_by_p11_id(s->p11_id), s);
		assert_non_null(s->purpose);
		assert_int_equal(tg_piv_slot_is_user(s->id), s->id != TG_PIV_SLOT_ATTEST);
	}
	assert_int_equal(n, TG_PIV_NSLOTS);
	assert_null(tg_piv_slot_at(TG_PIV_NSLOTS));
}

static void
test_slot_columns(void **state)
{
	static const struct {
		uint8_t id;
		const char *name, *purpose;
		uint32_t tag;
		uint8_t p11_id;
	} want[] = {
	    {0x9A, "9a", "authentication", 0x5FC105, 0x01},
	    {0x9C, "9c", "digital signature", 0x5FC10A, 0x02},
	    {0x9D, "9d", "key management", 0x5FC10B, 0x03},
	    {0x9E, "9e", "card authentication", 0x5FC101, 0x04},
	    {0x82, "82", "retired key management", 0x5FC10D, 0x05},
	    {0x86, "86", "retired key management", 0x5FC111, 0x09},
	    {0x87, "87", "retired key management", 0x5FC112, 0x10},
	    {0x8A, "8a", "retired key management", 0x5FC115, 0x13},
	    {0x95, "95", "retired key management", 0x5FC120, 0x24},
	    {0xF9, "f9", "attestation", 0x5FFF01, 0x00},
	};
	const struct tg_piv_slot *s;
	size_t i;

	(void)state;
	assert_int_equal(tg_piv_slot_at(0)->id, TG_PIV_SLOT_AUTH);
	assert_int_equal(tg_piv_slot_at(4)->id, TG_PIV_SLOT_RETIRED1);
	assert_int_equal(tg_piv_slot_at(TG_PIV_NSLOTS - 1)->id, TG_PIV_SLOT_ATTEST);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_non_null(s = tg_piv_slot_by_id(want[i].id));
		assert_string_equal(s->name, want[i].name);
		assert_string_equal(s->purpose, want[i].purpose);
		assert_int_equal(s->cert_tag, want[i].tag);
		assert_int_equal(s->p11_id, want[i].p11_id);
	}
}

static void
test_slot_unknown(void **state)
{
	static const uint8_t ids[] = {0x00, 0x80, 0x81, 0x9B, 0x9F, 0x81, 0x96, 0xF8, 0xFA};
	static const char *const names[] = {"",   "9",  "9a ", " 9a", "0x9a", "9b",
	                                    "80", "96", "9g",  "9a0", "F9F9"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ids); i++) {
		assert_null(tg_piv_slot_by_id(ids[i]));
		assert_false(tg_piv_slot_is_user(ids[i]));
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_null(tg_piv_slot_by_name(names[i]));
	assert_null(tg_piv_slot_by_name(NULL));
	assert_null(tg_piv_slot_by_cert_tag(0));
	assert_null(tg_piv_slot_by_cert_tag(TG_PIV_OBJ_CHUID));
	assert_null(tg_piv_slot_by_cert_tag(0x5FC121));
	assert_null(tg_piv_slot_by_p11_id(0));
	assert_null(tg_piv_slot_by_p11_id(0x0A)); /* OpenSC's ids skip 0a..0f */
	assert_null(tg_piv_slot_by_p11_id(0x25));
}

static void
test_policies(void **state)
{
	static const char *const pin[] = {"default", "never",      "once",
	                                  "always",  "match-once", "match-always"};
	static const char *const touch[] = {"default", "never", "always", "cached"};
	uint8_t v = 0x55;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(pin) / sizeof(pin[0]); i++) {
		assert_string_equal(tg_piv_pin_policy_name((uint8_t)i), pin[i]);
		if (i == 0)
			continue;
		assert_int_equal(tg_piv_pin_policy_parse(pin[i], &v), 0);
		assert_int_equal(v, i);
	}
	for (i = 0; i < sizeof(touch) / sizeof(touch[0]); i++) {
		assert_string_equal(tg_piv_touch_policy_name((uint8_t)i), touch[i]);
		if (i == 0)
			continue;
		assert_int_equal(tg_piv_touch_policy_parse(touch[i], &v), 0);
		assert_int_equal(v, i);
	}
	assert_null(tg_piv_pin_policy_name(6));
	assert_null(tg_piv_pin_policy_name(0xFF));
	assert_null(tg_piv_touch_policy_name(4));
	v = 0x55;
	assert_int_equal(tg_piv_pin_policy_parse("default", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_piv_pin_policy_parse("cached", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_piv_pin_policy_parse("Once", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_piv_pin_policy_parse(NULL, &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_piv_touch_policy_parse("default", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_piv_touch_policy_parse("once", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_piv_touch_policy_parse("", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v, 0x55);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alg_round_trip),  cmocka_unit_test(test_alg_columns),
	    cmocka_unit_test(test_alg_unknown),     cmocka_unit_test(test_alg_of_pkey),
	    cmocka_unit_test(test_slot_round_trip), cmocka_unit_test(test_slot_columns),
	    cmocka_unit_test(test_slot_unknown),    cmocka_unit_test(test_policies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
