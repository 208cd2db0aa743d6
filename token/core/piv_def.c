/* piv_def.c — the PIV algorithm, slot and policy tables (tg_piv.h). */
#include "tg_piv.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "tg_err.h"
#include "tg_hex.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */
static const struct tg_piv_alg algs[] = {
    {TG_PIV_ALG_3DES, TG_PIV_KIND_SYM, TG_PIV_CKK_DES3, NID_des_ede3_ecb, NULL, 192, 24,
     NULL, "3DES"},
    {TG_PIV_ALG_AES128, TG_PIV_KIND_SYM, TG_PIV_CKK_AES, NID_aes_128_ecb, NULL, 128, 16,
     NULL, "AES128"},
    {TG_PIV_ALG_AES192, TG_PIV_KIND_SYM, TG_PIV_CKK_AES, NID_aes_192_ecb, NULL, 192, 24,
     NULL, "AES192"},
    {TG_PIV_ALG_AES256, TG_PIV_KIND_SYM, TG_PIV_CKK_AES, NID_aes_256_ecb, NULL, 256, 32,
     NULL, "AES256"},
    {TG_PIV_ALG_RSA1024, TG_PIV_KIND_RSA, TG_PIV_CKK_RSA, NID_undef, NULL, 1024, 128,
     NULL, "RSA1024"},
    {TG_PIV_ALG_RSA2048, TG_PIV_KIND_RSA, TG_PIV_CKK_RSA, NID_undef, NULL, 2048, 256,
     "rsa-2048", "RSA2048"},
    {TG_PIV_ALG_RSA3072, TG_PIV_KIND_RSA, TG_PIV_CKK_RSA, NID_undef, NULL, 3072, 384,
     "rsa-3072", "RSA3072"},
    {TG_PIV_ALG_RSA4096, TG_PIV_KIND_RSA, TG_PIV_CKK_RSA, NID_undef, NULL, 4096, 512,
     NULL, "RSA4096"},
    {TG_PIV_ALG_ECCP256, TG_PIV_KIND_EC, TG_PIV_CKK_EC, NID_X9_62_prime256v1,
     SN_X9_62_prime256v1, 256, 32, "ec-p256", "ECCP256"},
    {TG_PIV_ALG_ECCP384, TG_PIV_KIND_EC, TG_PIV_CKK_EC, NID_secp384r1, SN_secp384r1, 384, 48,
     "ec-p384", "ECCP384"},
    {TG_PIV_ALG_ED25519, TG_PIV_KIND_ED, TG_PIV_CKK_EC_EDWARDS, NID_ED25519, SN_ED25519, 256,
     32, NULL, "ED25519"},
    {TG_PIV_ALG_X25519, TG_PIV_KIND_X, TG_PIV_CKK_EC_MONTGOMERY, NID_X25519, SN_X25519, 256,
     32, NULL, "X25519"},
};
/* clang-format on */

/* SP 800-73-4 Part 1 Table 3 certificate objects; OpenSC's pkcs15-piv.c
 * numbers its keys "01".."24" as text read as hex, so the retired slots'
 * ids run 05..09 then 10..19 then 20..24. */
static const struct tg_piv_slot slots[TG_PIV_NSLOTS] = {
    {TG_PIV_SLOT_AUTH, "9a", "authentication", TG_PIV_OBJ_AUTH, 0x01},
    {TG_PIV_SLOT_SIGN, "9c", "digital signature", TG_PIV_OBJ_SIGN, 0x02},
    {TG_PIV_SLOT_KEYMGM, "9d", "key management", TG_PIV_OBJ_KEYMGM, 0x03},
    {TG_PIV_SLOT_CARDAUTH, "9e", "card authentication", TG_PIV_OBJ_CARDAUTH, 0x04},
    {0x82, "82", "retired key management", 0x5FC10D, 0x05},
    {0x83, "83", "retired key management", 0x5FC10E, 0x06},
    {0x84, "84", "retired key management", 0x5FC10F, 0x07},
    {0x85, "85", "retired key management", 0x5FC110, 0x08},
    {0x86, "86", "retired key management", 0x5FC111, 0x09},
    {0x87, "87", "retired key management", 0x5FC112, 0x10},
    {0x88, "88", "retired key management", 0x5FC113, 0x11},
    {0x89, "89", "retired key management", 0x5FC114, 0x12},
    {0x8A, "8a", "retired key management", 0x5FC115, 0x13},
    {0x8B, "8b", "retired key management", 0x5FC116, 0x14},
    {0x8C, "8c", "retired key management", 0x5FC117, 0x15},
    {0x8D, "8d", "retired key management", 0x5FC118, 0x16},
    {0x8E, "8e", "retired key management", 0x5FC119, 0x17},
    {0x8F, "8f", "retired key management", 0x5FC11A, 0x18},
    {0x90, "90", "retired key management", 0x5FC11B, 0x19},
    {0x91, "91", "retired key management", 0x5FC11C, 0x20},
    {0x92, "92", "retired key management", 0x5FC11D, 0x21},
    {0x93, "93", "retired key management", 0x5FC11E, 0x22},
    {0x94, "94", "retired key management", 0x5FC11F, 0x23},
    {0x95, "95", "retired key management", 0x5FC120, 0x24},
    {TG_PIV_SLOT_ATTEST, "f9", "attestation", TG_PIV_OBJ_ATTEST, 0x00},
};

_Static_assert(TG_PIV_SLOT_RETIRED20 - TG_PIV_SLOT_RETIRED1 + 1 == 20, "20 retired slots");
_Static_assert(TG_PIV_OBJ_RETIRED20 - TG_PIV_OBJ_RETIRED1 + 1 == 20, "20 retired objects");

/* Policy names by value; index 0 is the slot's default. */
static const char *const pin_names[] = {
    [TG_PIV_PIN_POLICY_DEFAULT] = "default",
    [TG_PIV_PIN_POLICY_NEVER] = "never",
    [TG_PIV_PIN_POLICY_ONCE] = "once",
    [TG_PIV_PIN_POLICY_ALWAYS] = "always",
    [TG_PIV_PIN_POLICY_MATCH_ONCE] = "match-once",
    [TG_PIV_PIN_POLICY_MATCH_ALWAYS] = "match-always",
};

static const char *const touch_names[] = {
    [TG_PIV_TOUCH_POLICY_DEFAULT] = "default",
    [TG_PIV_TOUCH_POLICY_NEVER] = "never",
    [TG_PIV_TOUCH_POLICY_ALWAYS] = "always",
    [TG_PIV_TOUCH_POLICY_CACHED] = "cached",
};

const struct tg_piv_alg *
tg_piv_alg_at(size_t i)
{
	return i < NELEM(algs) ? &algs[i] : NULL;
}

/* The columns a row is looked up by. */
enum column { BY_ID, BY_CLI, BY_DISPLAY, BY_NID, BY_RSA_BITS, BY_NAME, BY_CERT_TAG, BY_P11_ID };

/* 1 when alg row a has value n (numbers) or str (names) in column c. */
static int
alg_match(const struct tg_piv_alg *a, enum column c, long n, const char *str)
{
	int m = 0;

	switch (c) {
	case BY_ID:
		m = a->id == n;
		break;
	case BY_CLI:
		m = a->cli != NULL && strcmp(a->cli, str) == 0;
		break;
	case BY_DISPLAY:
		m = strcasecmp(a->display, str) == 0;
		break;
	case BY_NID: /* curves only: a cipher's NID names no key */
		m = a->group != NULL && n != NID_undef && a->nid == n;
		break;
	case BY_RSA_BITS:
		m = a->kind == TG_PIV_KIND_RSA && a->bits == n;
		break;
	default:
		break;
	}
	return m;
}

static const struct tg_piv_alg *
alg_find(enum column c, long n, const char *str)
{
	const struct tg_piv_alg *a = NULL;
	size_t i;

	for (i = 0; a == NULL && i < NELEM(algs); i++)
		if (alg_match(&algs[i], c, n, str))
			a = &algs[i];
	return a;
}

const struct tg_piv_alg *
tg_piv_alg_by_id(uint8_t id)
{
	return alg_find(BY_ID, id, NULL);
}

const struct tg_piv_alg *
tg_piv_alg_by_cli(const char *s)
{
	return s != NULL ? alg_find(BY_CLI, 0, s) : NULL;
}

const struct tg_piv_alg *
tg_piv_alg_by_display(const char *s)
{
	return s != NULL ? alg_find(BY_DISPLAY, 0, s) : NULL;
}

const struct tg_piv_alg *
tg_piv_alg_by_nid(int nid)
{
	return alg_find(BY_NID, nid, NULL);
}

const struct tg_piv_alg *
tg_piv_alg_by_rsa_bits(int bits)
{
	return alg_find(BY_RSA_BITS, bits, NULL);
}

const struct tg_piv_alg *
tg_piv_alg_of_pkey(const EVP_PKEY *pkey)
{
	const struct tg_piv_alg *a = NULL;
	char group[64];
	int nid;

	if (pkey == NULL)
		goto out;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		a = tg_piv_alg_by_rsa_bits(EVP_PKEY_get_bits(pkey));
		break;
	case EVP_PKEY_EC:
		/* OpenSSL reports the group by its short name ("prime256v1"),
		 * a provider may give the NIST name ("P-256") */
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                   sizeof(group), NULL) == 1) {
			nid = OBJ_sn2nid(group);
			if (nid == NID_undef)
				nid = EC_curve_nist2nid(group);
			a = tg_piv_alg_by_nid(nid);
		}
		if (a != NULL && a->kind != TG_PIV_KIND_EC)
			a = NULL;
		break;
	case EVP_PKEY_ED25519:
		a = tg_piv_alg_by_id(TG_PIV_ALG_ED25519);
		break;
	case EVP_PKEY_X25519:
		a = tg_piv_alg_by_id(TG_PIV_ALG_X25519);
		break;
	default:
		break;
	}
out:
	return a;
}

const char *
tg_piv_alg_display(uint8_t id, char *buf, size_t n)
{
	const struct tg_piv_alg *a = tg_piv_alg_by_id(id);
	char hex[3];

	if (a != NULL) {
		snprintf(buf, n, "%s", a->display);
	} else {
		(void)tg_hex_encode(&id, 1, hex, sizeof(hex));
		snprintf(buf, n, "alg-%s", hex);
	}
	return buf;
}

const struct tg_piv_slot *
tg_piv_slot_at(size_t i)
{
	return i < NELEM(slots) ? &slots[i] : NULL;
}

/* 1 when slot row s has value n (numbers) or str (names) in column c. */
static int
slot_match(const struct tg_piv_slot *s, enum column c, long n, const char *str)
{
	int m = 0;

	switch (c) {
	case BY_ID:
		m = s->id == n;
		break;
	case BY_NAME:
		m = strcasecmp(s->name, str) == 0;
		break;
	case BY_CERT_TAG:
		m = s->cert_tag == (unsigned long)n;
		break;
	case BY_P11_ID: /* 0: F9, which OpenSC does not show */
		m = n != 0 && s->p11_id == n;
		break;
	default:
		break;
	}
	return m;
}

static const struct tg_piv_slot *
slot_find(enum column c, long n, const char *str)
{
	const struct tg_piv_slot *s = NULL;
	size_t i;

	for (i = 0; s == NULL && i < NELEM(slots); i++)
		if (slot_match(&slots[i], c, n, str))
			s = &slots[i];
	return s;
}

const struct tg_piv_slot *
tg_piv_slot_by_id(uint8_t id)
{
	return slot_find(BY_ID, id, NULL);
}

const struct tg_piv_slot *
tg_piv_slot_by_name(const char *name)
{
	return name != NULL ? slot_find(BY_NAME, 0, name) : NULL;
}

const struct tg_piv_slot *
tg_piv_slot_by_cert_tag(uint32_t tag)
{
	return slot_find(BY_CERT_TAG, (long)tag, NULL);
}

const struct tg_piv_slot *
tg_piv_slot_by_p11_id(uint8_t p11_id)
{
	return slot_find(BY_P11_ID, p11_id, NULL);
}

int
tg_piv_slot_is_user(uint8_t id)
{
	return id != TG_PIV_SLOT_ATTEST && tg_piv_slot_by_id(id) != NULL;
}

/* names[v], or NULL for a value past the table. */
static const char *
name_of(const char *const *names, size_t n, uint8_t v)
{
	return v < n ? names[v] : NULL;
}

/* The value (not 0, "default") whose name is s. */
static int
parse_name(const char *const *names, size_t n, const char *s, uint8_t *v)
{
	size_t i;
	int r = TG_ERR_INVALID_ARG;

	for (i = 1; s != NULL && r != 0 && i < n; i++) {
		if (strcmp(names[i], s) == 0) {
			*v = (uint8_t)i;
			r = 0;
		}
	}
	return r;
}

const char *
tg_piv_pin_policy_name(uint8_t p)
{
	return name_of(pin_names, NELEM(pin_names), p);
}

const char *
tg_piv_touch_policy_name(uint8_t p)
{
	return name_of(touch_names, NELEM(touch_names), p);
}

int
tg_piv_pin_policy_parse(const char *s, uint8_t *p)
{
	return parse_name(pin_names, NELEM(pin_names), s, p);
}

int
tg_piv_touch_policy_parse(const char *s, uint8_t *p)
{
	return parse_name(touch_names, NELEM(touch_names), s, p);
}
