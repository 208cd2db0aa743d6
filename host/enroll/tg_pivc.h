/*
 * tg_pivc.h — the host side of the PIV commands `tokengate enroll` sends
 * (NIST SP 800-73-4 Part 2 plus the Yubico extensions; PIV-CARD-NOTES.md).
 *
 * Two halves:
 *   - commands over a struct tg_pcsc (SELECT, management-key mutual
 *     authentication, GENERATE, ATTEST, GET/PUT DATA, VERIFY, GENERAL
 *     AUTHENTICATE sign, GET METADATA, version, serial);
 *   - pure parsers of the card's answers (tg_pivc_parse_*), every one over a
 *     struct tg_buf, strict about lengths and trailing bytes; these are what
 *     the unit tests and the fuzz target exercise.
 * Every status word other than 9000 becomes a TG_ERR_* code with a message
 * naming the reader, the operation and what to do (tg_pivc_sw_error).
 */
#ifndef TG_PIVC_H
#define TG_PIVC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_pcsc.h"

/* Key algorithms (SP 800-78-4 Table 6-2, Yubico). */
#define TG_PIVC_ALG_3DES    0x03
#define TG_PIVC_ALG_RSA2048 0x07
#define TG_PIVC_ALG_AES128  0x08
#define TG_PIVC_ALG_AES192  0x0A
#define TG_PIVC_ALG_AES256  0x0C
#define TG_PIVC_ALG_ECCP256 0x11
#define TG_PIVC_ALG_ECCP384 0x14

/* Slots (key references). */
#define TG_PIVC_SLOT_AUTH     0x9A
#define TG_PIVC_SLOT_SIGN     0x9C
#define TG_PIVC_SLOT_KEYMGM   0x9D
#define TG_PIVC_SLOT_CARDAUTH 0x9E
#define TG_PIVC_REF_MGM       0x9B
#define TG_PIVC_REF_PIN       0x80

/* Yubico policies. */
#define TG_PIVC_PIN_NEVER    0x01
#define TG_PIVC_PIN_ONCE     0x02
#define TG_PIVC_PIN_ALWAYS   0x03
#define TG_PIVC_TOUCH_NEVER  0x01
#define TG_PIVC_TOUCH_ALWAYS 0x02
#define TG_PIVC_TOUCH_CACHED 0x03

/* Key origin (GET METADATA tag 03). */
#define TG_PIVC_ORIGIN_GENERATED 0x01
#define TG_PIVC_ORIGIN_IMPORTED  0x02

#define TG_PIVC_OBJ_ATTEST 0x5FFF01 /* the slot-F9 certificate */
#define TG_PIVC_MGM_MAX    32
#define TG_PIVC_PIN_LEN    8

/* What an operation was, for status-word messages. */
enum tg_pivc_op {
	TG_PIVC_OP_SELECT,
	TG_PIVC_OP_VERSION,
	TG_PIVC_OP_SERIAL,
	TG_PIVC_OP_METADATA,
	TG_PIVC_OP_MGM_AUTH,
	TG_PIVC_OP_GENERATE,
	TG_PIVC_OP_ATTEST,
	TG_PIVC_OP_GET_DATA,
	TG_PIVC_OP_VERIFY,
	TG_PIVC_OP_SIGN,
	TG_PIVC_OP_PUT_DATA,
};

/* GET METADATA of a slot or of the management key. Free pub with
 * EVP_PKEY_free (tg_pivc_meta_clear). */
struct tg_pivc_meta {
	uint8_t alg; /* tag 01; 0 when absent */
	int has_policy;
	uint8_t pin_policy;   /* tag 02, first byte */
	uint8_t touch_policy; /* tag 02, second byte */
	int has_origin;
	uint8_t origin; /* tag 03 */
	int is_default; /* tag 05: 1 default, 0 not, -1 absent */
	EVP_PKEY *pub;  /* tag 04, when present */
};

void tg_pivc_meta_clear(struct tg_pivc_meta *m);

/* ---- pure parsers (no I/O) ---- */

/*
 * Maps a status word of `op` (on `slot`, 0 when none) to 0 (9000) or a
 * TG_ERR_* code with a message naming the reader and what to do:
 * 6982 TG_ERR_AUTH_REQUIRED, 6983 TG_ERR_PIN_BLOCKED, 63Cx
 * TG_ERR_PIN_INCORRECT (x tries left), 6A82/6A88 TG_ERR_NOT_FOUND,
 * 6A80 on ATTEST TG_ERR_ATTESTATION (an imported key), 6D00
 * TG_ERR_UNSUPPORTED, others TG_ERR_STATUS_WORD.
 */
int tg_pivc_sw_error(uint16_t sw, enum tg_pivc_op op, uint8_t slot, const char *reader,
                     struct tg_error *err);

/*
 * A public key from the inner TLVs of a 7F49 template (EC: 86 point;
 * RSA: 81 modulus, 82 exponent), for algorithm alg. Exact lengths: P-256
 * point 65 bytes, P-384 97 bytes (uncompressed, 04 first), RSA-2048
 * modulus 256 bytes with the top bit set, exponent 1..4 bytes. *out owned
 * by the caller. TG_ERR_FORMAT with err naming the field.
 */
int tg_pivc_parse_pubkey_inner(const uint8_t *p, size_t n, uint8_t alg, EVP_PKEY **out,
                               struct tg_error *err);

/* GENERATE's response: exactly one 7F49 template (nothing after it). */
int tg_pivc_parse_generate(const uint8_t *p, size_t n, uint8_t alg, EVP_PKEY **out,
                           struct tg_error *err);

/*
 * A dynamic authentication template: exactly `7C L { tag L value }` with
 * nothing else; *value borrows from p. TG_ERR_FORMAT otherwise.
 */
int tg_pivc_parse_dynauth(const uint8_t *p, size_t n, uint32_t tag, struct tg_buf *value,
                          struct tg_error *err);

/* A GET DATA response: exactly `53 L value`; *value borrows from p. */
int tg_pivc_parse_object(const uint8_t *p, size_t n, struct tg_buf *value, struct tg_error *err);

/*
 * A certificate data object: `53 L { 70 L DER, [71 01 info], [FE L] }`,
 * the certificate uncompressed (71 00) and its DER exact. *out owned by
 * the caller. TG_ERR_FORMAT / TG_ERR_UNSUPPORTED (compressed).
 */
int tg_pivc_parse_cert_object(const uint8_t *p, size_t n, X509 **out, struct tg_error *err);

/* One DER certificate filling exactly n bytes (ATTEST's response). */
int tg_pivc_parse_cert_der(const uint8_t *p, size_t n, X509 **out, struct tg_error *err);

/*
 * GET METADATA response TLVs (01 alg, 02 policy, 03 origin, 04 public key,
 * 05 default, 06 retries; unknown tags skipped, each known tag at most
 * once, exact lengths). The public key is parsed with the alg of tag 01.
 */
int tg_pivc_parse_metadata(const uint8_t *p, size_t n, struct tg_pivc_meta *m,
                           struct tg_error *err);

/* The data object tag of a slot's certificate (9A 5FC105, 9C 5FC10A,
 * 9D 5FC10B, 9E 5FC101); 0 for other slots. */
uint32_t tg_pivc_slot_object(uint8_t slot);

/* ---- commands (over PC/SC) ---- */

/* SELECT the PIV application (AID A0 00 00 03 08). */
int tg_pivc_select(struct tg_pcsc *p, struct tg_error *err);

/* Yubico GET VERSION (3 bytes) and GET SERIAL (4 bytes big-endian). */
int tg_pivc_version(struct tg_pcsc *p, uint8_t v[3], struct tg_error *err);
int tg_pivc_serial(struct tg_pcsc *p, uint32_t *serial, struct tg_error *err);

/*
 * GET METADATA of key reference `ref` (a slot or 9B). TG_ERR_UNSUPPORTED
 * when the token does not know the instruction (firmware before 5.3).
 */
int tg_pivc_metadata(struct tg_pcsc *p, uint8_t ref, struct tg_pivc_meta *m, struct tg_error *err);

/*
 * Mutual authentication with the management key (GENERAL AUTHENTICATE,
 * key reference 9B, algorithm alg: 3DES/AES-128/192/256): decrypts the
 * card's witness, sends it with a random challenge and checks the card's
 * answer. The key is only read; the caller wipes it.
 */
int tg_pivc_mgm_auth(struct tg_pcsc *p, uint8_t alg, const uint8_t *key, size_t keylen,
                     struct tg_error *err);

/*
 * GENERATE ASYMMETRIC KEY PAIR in slot with alg and the policies (0: the
 * token's default). *pub gets the new public key (caller frees).
 */
int tg_pivc_generate(struct tg_pcsc *p, uint8_t slot, uint8_t alg, uint8_t pin_policy,
                     uint8_t touch_policy, EVP_PKEY **pub, struct tg_error *err);

/* ATTEST (INS F9) the key in slot. *out owned by the caller. */
int tg_pivc_attest(struct tg_pcsc *p, uint8_t slot, X509 **out, struct tg_error *err);

/* GET DATA of a certificate object (e.g. TG_PIVC_OBJ_ATTEST). */
int tg_pivc_cert_get(struct tg_pcsc *p, uint32_t tag, X509 **out, struct tg_error *err);

/* VERIFY the PIN (6-8 characters, padded with FF). */
int tg_pivc_verify_pin(struct tg_pcsc *p, const char *pin, struct tg_error *err);

/*
 * GENERAL AUTHENTICATE sign with the key in slot: `in` is the hash (EC)
 * or the padded block (RSA). *sig gets the signature (EC: DER
 * ECDSA-Sig-Value; RSA: the modulus-length block), caller frees.
 */
int tg_pivc_sign(struct tg_pcsc *p, uint8_t slot, uint8_t alg, const uint8_t *in, size_t n,
                 uint8_t **sig, size_t *siglen, struct tg_error *err);

/* PUT DATA the slot's certificate object `53 { 70 cert 71 00 FE 00 }`. */
int tg_pivc_cert_put(struct tg_pcsc *p, uint8_t slot, X509 *cert, struct tg_error *err);

#endif /* TG_PIVC_H */
