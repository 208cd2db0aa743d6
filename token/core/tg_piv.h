/*
 * tg_piv.h — the PIV card edge's numbers (NIST SP 800-73-4, SP 800-78-4,
 * and the Yubico extensions) and the tables every part of tokengate reads
 * them through: status words, instructions, key references and slots,
 * data object tags, TLV tags, PIN and touch policies, and the algorithm
 * table (PIV algorithm id <-> PKCS#11 key type <-> OpenSSL curve or RSA
 * size <-> command-line name <-> display name). Part of tgcore: the token
 * core, the simulator, enrollment, attestation and the PKCS#11 layer share
 * it; none of them keeps a copy.
 *
 * Pure data: no allocation, no I/O. Every lookup returns a pointer into a
 * static table (never freed), or NULL for a value the table does not hold.
 */
#ifndef TG_PIV_H
#define TG_PIV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* ---- status words (ISO/IEC 7816-4, SP 800-73-4 Part 2 Table 6) ---- */
#define TG_PIV_SW_OK                   0x9000
#define TG_PIV_SW_BYTES_REMAINING      0x6100 /* | count, response chaining */
#define TG_PIV_SW_VERIFY_FAIL          0x63C0 /* | tries left */
#define TG_PIV_SW_MEMORY_FAILURE       0x6581
#define TG_PIV_SW_WRONG_LENGTH         0x6700
#define TG_PIV_SW_LAST_CMD_EXPECTED    0x6883
#define TG_PIV_SW_SECURITY_STATUS      0x6982
#define TG_PIV_SW_AUTH_BLOCKED         0x6983
#define TG_PIV_SW_CONDITIONS           0x6985
#define TG_PIV_SW_WRONG_DATA           0x6A80
#define TG_PIV_SW_FUNC_NOT_SUPPORTED   0x6A81
#define TG_PIV_SW_FILE_NOT_FOUND       0x6A82
#define TG_PIV_SW_NOT_ENOUGH_MEMORY    0x6A84
#define TG_PIV_SW_INCORRECT_P1P2       0x6A86
#define TG_PIV_SW_REF_NOT_FOUND        0x6A88
#define TG_PIV_SW_INS_NOT_SUPPORTED    0x6D00
#define TG_PIV_SW_CLA_NOT_SUPPORTED    0x6E00
#define TG_PIV_SW_NO_PRECISE_DIAGNOSIS 0x6F00

/* ---- CLA and INS ---- */
#define TG_PIV_CLA_ISO              0x00
#define TG_PIV_CLA_CHAIN            0x10 /* ISO 7816-4 5.1.1 command chaining bit */
#define TG_PIV_INS_SELECT           0xA4
#define TG_PIV_INS_GET_DATA         0xCB
#define TG_PIV_INS_PUT_DATA         0xDB
#define TG_PIV_INS_VERIFY           0x20
#define TG_PIV_INS_CHANGE_REFERENCE 0x24
#define TG_PIV_INS_RESET_RETRY      0x2C
#define TG_PIV_INS_GENERATE         0x47
#define TG_PIV_INS_GENERAL_AUTH     0x87
#define TG_PIV_INS_GET_CHALLENGE    0x84
#define TG_PIV_INS_GET_RESPONSE     0xC0
/* Yubico extensions */
#define TG_PIV_INS_SET_MGMKEY      0xFF
#define TG_PIV_INS_IMPORT_KEY      0xFE
#define TG_PIV_INS_GET_VERSION     0xFD
#define TG_PIV_INS_RESET           0xFB
#define TG_PIV_INS_SET_PIN_RETRIES 0xFA
#define TG_PIV_INS_ATTEST          0xF9
#define TG_PIV_INS_GET_SERIAL      0xF8
#define TG_PIV_INS_GET_METADATA    0xF7

/* ---- algorithm identifiers (SP 800-78-4 Table 6-2, Yubico) ---- */
#define TG_PIV_ALG_3DES    0x03
#define TG_PIV_ALG_RSA3072 0x05 /* Yubico 5.7 */
#define TG_PIV_ALG_RSA1024 0x06
#define TG_PIV_ALG_RSA2048 0x07
#define TG_PIV_ALG_AES128  0x08
#define TG_PIV_ALG_AES192  0x0A
#define TG_PIV_ALG_AES256  0x0C
#define TG_PIV_ALG_ECCP256 0x11
#define TG_PIV_ALG_ECCP384 0x14
#define TG_PIV_ALG_RSA4096 0x16 /* Yubico 5.7 */
#define TG_PIV_ALG_ED25519 0xE0 /* Yubico 5.7 */
#define TG_PIV_ALG_X25519  0xE1 /* Yubico 5.7 */
#define TG_PIV_ALG_PIN     0xFF /* Yubico metadata for PIN/PUK */

/* ---- key references ---- */
#define TG_PIV_REF_PIN        0x80
#define TG_PIV_REF_PUK        0x81
#define TG_PIV_REF_MGM        0x9B
#define TG_PIV_SLOT_AUTH      0x9A
#define TG_PIV_SLOT_SIGN      0x9C
#define TG_PIV_SLOT_KEYMGM    0x9D
#define TG_PIV_SLOT_CARDAUTH  0x9E
#define TG_PIV_SLOT_RETIRED1  0x82
#define TG_PIV_SLOT_RETIRED20 0x95
#define TG_PIV_SLOT_ATTEST    0xF9 /* Yubico: the device attestation key */

/* ---- PIN and touch policies (Yubico: GENERATE tags AA/AB, GET METADATA
 * tag 02, attestation extension 1.3.6.1.4.1.41482.3.8) ---- */
#define TG_PIV_PIN_POLICY_DEFAULT      0x00
#define TG_PIV_PIN_POLICY_NEVER        0x01
#define TG_PIV_PIN_POLICY_ONCE         0x02
#define TG_PIV_PIN_POLICY_ALWAYS       0x03
#define TG_PIV_PIN_POLICY_MATCH_ONCE   0x04 /* YubiKey Bio */
#define TG_PIV_PIN_POLICY_MATCH_ALWAYS 0x05 /* YubiKey Bio */
#define TG_PIV_TOUCH_POLICY_DEFAULT    0x00
#define TG_PIV_TOUCH_POLICY_NEVER      0x01
#define TG_PIV_TOUCH_POLICY_ALWAYS     0x02
#define TG_PIV_TOUCH_POLICY_CACHED     0x03

/* ---- key origin (Yubico GET METADATA tag 03) ---- */
#define TG_PIV_ORIGIN_NONE      0x00 /* not a metadata value: no key */
#define TG_PIV_ORIGIN_GENERATED 0x01
#define TG_PIV_ORIGIN_IMPORTED  0x02

/* ---- TLV tags ---- */
#define TG_PIV_TAG_DYN_AUTH       0x7C /* dynamic authentication template */
#define TG_PIV_TAG_WITNESS        0x80
#define TG_PIV_TAG_CHALLENGE      0x81
#define TG_PIV_TAG_RESPONSE       0x82
#define TG_PIV_TAG_EXPONENTIATION 0x85
#define TG_PIV_TAG_TAGLIST        0x5C
#define TG_PIV_TAG_DATA           0x53
#define TG_PIV_TAG_CERT           0x70
#define TG_PIV_TAG_CERTINFO       0x71
#define TG_PIV_TAG_ERRDET         0xFE
#define TG_PIV_TAG_PUBKEY         0x7F49
#define TG_PIV_TAG_RSA_N          0x81
#define TG_PIV_TAG_RSA_E          0x82
#define TG_PIV_TAG_EC_POINT       0x86
#define TG_PIV_TAG_GEN_CONTROL    0xAC
#define TG_PIV_TAG_GEN_ALG        0x80
#define TG_PIV_TAG_PIN_POLICY     0xAA
#define TG_PIV_TAG_TOUCH_POLICY   0xAB
#define TG_PIV_TAG_APT            0x61 /* application property template */
#define TG_PIV_TAG_AID            0x4F
#define TG_PIV_TAG_AUTHORITY      0x79
#define TG_PIV_TAG_PIN_USAGE      0x5F2F

/* ---- data object tags (SP 800-73-4 Part 1 Table 3, Yubico) ---- */
#define TG_PIV_OBJ_DISCOVERY    0x7E
#define TG_PIV_OBJ_CARDAUTH     0x5FC101
#define TG_PIV_OBJ_CHUID        0x5FC102
#define TG_PIV_OBJ_FINGERPRINTS 0x5FC103
#define TG_PIV_OBJ_AUTH         0x5FC105
#define TG_PIV_OBJ_SECURITY     0x5FC106
#define TG_PIV_OBJ_CCC          0x5FC107
#define TG_PIV_OBJ_FACIAL       0x5FC108
#define TG_PIV_OBJ_PRINTED      0x5FC109
#define TG_PIV_OBJ_SIGN         0x5FC10A
#define TG_PIV_OBJ_KEYMGM       0x5FC10B
#define TG_PIV_OBJ_KEY_HISTORY  0x5FC10C
#define TG_PIV_OBJ_RETIRED1     0x5FC10D
#define TG_PIV_OBJ_RETIRED20    0x5FC120
#define TG_PIV_OBJ_IRIS         0x5FC121
#define TG_PIV_OBJ_ADMIN        0x5FFF00 /* Yubico admin data (ykman) */
#define TG_PIV_OBJ_ATTEST       0x5FFF01 /* Yubico: the slot-F9 certificate */

/* ---- Yubico IMPORT KEY tags ---- */
#define TG_PIV_YK_TAG_RSA_P    0x01
#define TG_PIV_YK_TAG_RSA_Q    0x02
#define TG_PIV_YK_TAG_RSA_DP   0x03
#define TG_PIV_YK_TAG_RSA_DQ   0x04
#define TG_PIV_YK_TAG_RSA_QINV 0x05
#define TG_PIV_YK_TAG_EC_PRIV  0x06

/* ---- Yubico GET METADATA tags (firmware 5.3+) ---- */
#define TG_PIV_YK_META_ALG     0x01
#define TG_PIV_YK_META_POLICY  0x02
#define TG_PIV_YK_META_ORIGIN  0x03
#define TG_PIV_YK_META_PUBKEY  0x04
#define TG_PIV_YK_META_DEFAULT 0x05
#define TG_PIV_YK_META_RETRIES 0x06

/*
 * PKCS#11 key types (PKCS#11 v2.40 / 3.0 CKK_*), as numbers so that tgcore
 * needs no PKCS#11 header; pkcs11/ asserts at compile time that they equal
 * its CKK_* constants.
 */
#define TG_PIV_CKK_RSA           0x00000000UL /* CKK_RSA */
#define TG_PIV_CKK_EC            0x00000003UL /* CKK_EC */
#define TG_PIV_CKK_DES3          0x00000015UL /* CKK_DES3 */
#define TG_PIV_CKK_AES           0x0000001FUL /* CKK_AES */
#define TG_PIV_CKK_EC_EDWARDS    0x00000040UL /* CKK_EC_EDWARDS (3.0) */
#define TG_PIV_CKK_EC_MONTGOMERY 0x00000041UL /* CKK_EC_MONTGOMERY (3.0) */

/* What kind of key an algorithm id names. */
enum tg_piv_kind {
	TG_PIV_KIND_RSA = 1,
	TG_PIV_KIND_EC,  /* ECDSA/ECDH on a named curve */
	TG_PIV_KIND_ED,  /* EdDSA (Ed25519) */
	TG_PIV_KIND_X,   /* X25519 key agreement */
	TG_PIV_KIND_SYM, /* a management key's block cipher */
};

/* One row of the algorithm table. */
struct tg_piv_alg {
	uint8_t id; /* TG_PIV_ALG_* */
	enum tg_piv_kind kind;
	unsigned long p11_key_type; /* TG_PIV_CKK_* (CKK_* value) */
	int nid;                    /* OpenSSL NID: the curve (EC, Ed, X) or
	                               the cipher (SYM); NID_undef for RSA */
	const char *group;          /* OpenSSL group/key name ("prime256v1",
	                               "ED25519"...); NULL for RSA and SYM */
	unsigned bits;              /* RSA modulus, curve or key size in bits */
	size_t bytes;               /* RSA modulus, EC field or key size, bytes */
	const char *cli;            /* the name tokengate's command lines take
	                               ("ec-p256", "rsa-2048"...); NULL for an
	                               algorithm no command generates */
	const char *display;        /* the name Yubico's tools show ("ECCP256",
	                               "RSA2048", "3DES"...) */
};

/* The row of algorithm id, or NULL (TG_PIV_ALG_PIN and unknown ids). */
const struct tg_piv_alg *tg_piv_alg_by_id(uint8_t id);

/* The row whose command-line name is s (exact, lower case), or NULL. */
const struct tg_piv_alg *tg_piv_alg_by_cli(const char *s);

/* The row whose display name is s (any case: "eccp256" too), or NULL. */
const struct tg_piv_alg *tg_piv_alg_by_display(const char *s);

/* The EC, Ed or X row of curve nid (NID_X9_62_prime256v1...), or NULL. */
const struct tg_piv_alg *tg_piv_alg_by_nid(int nid);

/* The RSA row of modulus size bits (1024, 2048, 3072, 4096), or NULL. */
const struct tg_piv_alg *tg_piv_alg_by_rsa_bits(int bits);

/*
 * The row of a key: RSA by modulus size (RSA-PSS keys too), EC by its
 * named curve, Ed25519 and X25519 by type. NULL for NULL, a key of another
 * size, curve or type, or a symmetric id.
 */
const struct tg_piv_alg *tg_piv_alg_of_pkey(const EVP_PKEY *pkey);

/* Row i of the table (for listing and tests), NULL for i >= the count. */
const struct tg_piv_alg *tg_piv_alg_at(size_t i);

/* Display name of id, or "alg-XX" (XX its hex value) for an id the table
 * does not hold, written into buf (n bytes); returns buf. */
const char *tg_piv_alg_display(uint8_t id, char *buf, size_t n);

/* One row of the key slot table. */
struct tg_piv_slot {
	uint8_t id;          /* key reference: TG_PIV_SLOT_* or 0x82..0x95 */
	const char *name;    /* "9a", "82", "f9": two lower-case hex digits, as
	                      tokens and their tools write slots */
	const char *purpose; /* "authentication", "digital signature", "key
	                        management", "card authentication", "retired key
	                        management", "attestation" */
	uint32_t cert_tag;   /* the data object holding the slot's certificate */
	uint8_t p11_id;      /* the CKA_ID byte OpenSC's PIV driver gives the key
	                      and certificate (01 for 9a ... 24 for 95); 0 for
	                      F9, which OpenSC does not show */
};

/* Number of key slots in the table (25: 9a 9c 9d 9e, 82..95, f9). */
#define TG_PIV_NSLOTS 25

/* The row of key reference id, or NULL (PIN, PUK, 9b and unknown ids). */
const struct tg_piv_slot *tg_piv_slot_by_id(uint8_t id);

/* The row named s: two hex digits in either case ("9a", "9A", "8f"), or
 * NULL. */
const struct tg_piv_slot *tg_piv_slot_by_name(const char *s);

/* The row whose certificate lives in data object tag, or NULL. */
const struct tg_piv_slot *tg_piv_slot_by_cert_tag(uint32_t tag);

/* The row whose OpenSC CKA_ID is the single byte p11_id, or NULL (0 too). */
const struct tg_piv_slot *tg_piv_slot_by_p11_id(uint8_t p11_id);

/* Row i (0..TG_PIV_NSLOTS-1, 9a 9c 9d 9e first, f9 last), or NULL. */
const struct tg_piv_slot *tg_piv_slot_at(size_t i);

/* 1 for a slot whose key a host may generate or import (every slot but
 * F9), 0 otherwise. */
int tg_piv_slot_is_user(uint8_t id);

/*
 * Policy names: "never", "once", "always", "match-once", "match-always"
 * (PIN); "never", "always", "cached" (touch); "default" for 0. NULL for any
 * other value.
 */
const char *tg_piv_pin_policy_name(uint8_t p);
const char *tg_piv_touch_policy_name(uint8_t p);

/* Parses a policy name (not "default"): 0 and *p, or TG_ERR_INVALID_ARG. */
int tg_piv_pin_policy_parse(const char *s, uint8_t *p);
int tg_piv_touch_policy_parse(const char *s, uint8_t *p);

#endif /* TG_PIV_H */
