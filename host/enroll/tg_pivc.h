/*
 * tg_pivc.h — the host side of the PIV commands `tokengate enroll` (and
 * `tokengate token`'s card evidence) sends, on Yubico's libykpiv.
 *
 * libykpiv does the PC/SC transport, the APDUs, command chaining and
 * GET RESPONSE: ykpiv_list_readers, ykpiv_connect (which selects the PIV
 * application), ykpiv_verify_select, ykpiv_authenticate (3DES management
 * keys), ykpiv_get_metadata + ykpiv_util_parse_metadata,
 * ykpiv_util_generate_key, ykpiv_attest, ykpiv_sign_data,
 * ykpiv_util_read_cert / ykpiv_util_write_cert, ykpiv_get_version,
 * ykpiv_get_serial. What stays here:
 *   - choosing the reader (exact name or a unique part of it; libykpiv
 *     takes the first that matches), tg_pivc_reader_pick;
 *   - AES management keys: libykpiv 2.2.0 authenticates 3DES keys only
 *     (ykpiv_authenticate, and its ykpiv_auth_getchallenge is 3DES too), so
 *     the GENERAL AUTHENTICATE exchange for AES is built here and sent with
 *     ykpiv_transfer_data (tg_pivc_parse_dynauth reads the answers);
 *   - the algorithm of the management key from its GET METADATA
 *     (ykpiv_util_parse_metadata requires origin and public key, which
 *     key 9B has not), tg_pivc_parse_mgm_alg;
 *   - public keys from the inner TLVs of GET METADATA tag 04
 *     (tg_pivc_parse_pubkey_inner) and from GENERATE's parts;
 *   - the mapping of ykpiv_rc values and status words to messages that
 *     name the reader, the operation and what to do.
 * Slots, algorithms and policies are libykpiv's YKPIV_* values.
 */
#ifndef TG_PIVC_H
#define TG_PIVC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_buf.h"
#include "tg_err.h"

#define TG_PIVC_MGM_MAX 32
#define TG_PIVC_PIN_LEN 8

/* What an operation was, for messages. */
enum tg_pivc_op {
	TG_PIVC_OP_CONNECT,
	TG_PIVC_OP_METADATA,
	TG_PIVC_OP_MGM_AUTH,
	TG_PIVC_OP_GENERATE,
	TG_PIVC_OP_ATTEST,
	TG_PIVC_OP_GET_DATA,
	TG_PIVC_OP_VERIFY,
	TG_PIVC_OP_SIGN,
	TG_PIVC_OP_PUT_DATA,
};

struct tg_pivc;

/* GET METADATA of a key slot. Free pub with tg_pivc_meta_clear. */
struct tg_pivc_meta {
	uint8_t alg;          /* YKPIV_ALGO_* */
	uint8_t pin_policy;   /* YKPIV_PINPOLICY_* */
	uint8_t touch_policy; /* YKPIV_TOUCHPOLICY_* */
	uint8_t origin;       /* YKPIV_METADATA_ORIGIN_* */
	EVP_PKEY *pub;
};

void tg_pivc_meta_clear(struct tg_pivc_meta *m);

/* ---- pure parsers (no I/O) ---- */

/*
 * Picks a reader from a PC/SC multi-string (names separated by NUL, ended
 * by an empty name; n bytes at list, as ykpiv_list_readers gives it): the
 * one named exactly `want`, else the only one containing `want`. Writes the
 * name into out (size outlen). Errors (message lists the readers present):
 * TG_ERR_NOT_FOUND (none matches, or no reader at all), TG_ERR_INVALID_ARG
 * (several contain `want`), TG_ERR_FORMAT (list not NUL-terminated).
 */
int tg_pivc_reader_pick(const uint8_t *list, size_t n, const char *want, char *out, size_t outlen,
                        struct tg_error *err);

/*
 * Maps a status word of `op` (on `slot`, 0 when none) to 0 (9000) or a
 * TG_ERR_* code with a message naming the reader and what to do:
 * 6982 TG_ERR_AUTH_REQUIRED, 6983 TG_ERR_PIN_BLOCKED, 63Cx
 * TG_ERR_PIN_INCORRECT (x tries left; x = 0 TG_ERR_PIN_BLOCKED),
 * 6A82/6A88 TG_ERR_NOT_FOUND, 6A80 on ATTEST TG_ERR_ATTESTATION (an
 * imported key), 6D00 TG_ERR_UNSUPPORTED, 6985 TG_ERR_TOUCH_REQUIRED,
 * others TG_ERR_STATUS_WORD.
 */
int tg_pivc_sw_error(uint16_t sw, enum tg_pivc_op op, uint8_t slot, const char *reader,
                     struct tg_error *err);

/*
 * A public key from the inner TLVs of a 7F49 template or GET METADATA tag
 * 04 (EC: 86 point; RSA: 81 modulus, 82 exponent), for algorithm alg.
 * Exact lengths: P-256 point 65 bytes, P-384 97 bytes (uncompressed, 04
 * first), RSA-2048 modulus 256 bytes with the top bit set, exponent 1..4
 * bytes. *out owned by the caller. TG_ERR_FORMAT with err naming the field.
 */
int tg_pivc_parse_pubkey_inner(const uint8_t *p, size_t n, uint8_t alg, EVP_PKEY **out,
                               struct tg_error *err);

/*
 * A public key from GENERATE's parts as ykpiv_util_generate_key returns
 * them: the EC point (alg P-256/P-384) or the RSA modulus and exponent,
 * with the lengths of tg_pivc_parse_pubkey_inner.
 */
int tg_pivc_pubkey_from_parts(uint8_t alg, const uint8_t *point, size_t point_len,
                              const uint8_t *mod, size_t mod_len, const uint8_t *exp,
                              size_t exp_len, EVP_PKEY **out, struct tg_error *err);

/*
 * A dynamic authentication template: exactly `7C L { tag L value }` with
 * nothing else; *value borrows from p. TG_ERR_FORMAT otherwise.
 */
int tg_pivc_parse_dynauth(const uint8_t *p, size_t n, uint32_t tag, struct tg_buf *value,
                          struct tg_error *err);

/*
 * The algorithm (tag 01, one byte) of a GET METADATA response of the
 * management key; other tags are skipped, tag 01 at most once.
 * TG_ERR_FORMAT when absent or malformed.
 */
int tg_pivc_parse_mgm_alg(const uint8_t *p, size_t n, uint8_t *alg, struct tg_error *err);

/* One DER certificate filling exactly n bytes. *out owned by the caller. */
int tg_pivc_parse_cert_der(const uint8_t *p, size_t n, X509 **out, struct tg_error *err);

/* ---- commands (libykpiv) ---- */

/*
 * Lists the readers (ykpiv_list_readers), picks one (tg_pivc_reader_pick)
 * and connects to its card, selecting the PIV application (ykpiv_connect).
 * 0 and *out (free with tg_pivc_close), or TG_ERR_PCSC / TG_ERR_NOT_FOUND /
 * TG_ERR_CARD_REMOVED with a message naming the reader and the fix.
 */
int tg_pivc_open(const char *reader, struct tg_pivc **out, struct tg_error *err);

/* Disconnects (ykpiv_done resets the card, which clears PIN and
 * management-key authentication). NULL is accepted. */
void tg_pivc_close(struct tg_pivc *p);

/* The full name of the connected reader (borrowed). */
const char *tg_pivc_reader(const struct tg_pivc *p);

/* Firmware version ("5.7.1") into buf, and the serial number. */
int tg_pivc_version(struct tg_pivc *p, char *buf, size_t n);
int tg_pivc_serial(struct tg_pivc *p, uint32_t *serial);

/*
 * GET METADATA of the key in `slot` (ykpiv_get_metadata,
 * ykpiv_util_parse_metadata). TG_ERR_UNSUPPORTED when the token does not
 * know the instruction (firmware before 5.3), TG_ERR_NOT_FOUND when the
 * slot holds no key.
 */
int tg_pivc_metadata(struct tg_pivc *p, uint8_t slot, struct tg_pivc_meta *m, struct tg_error *err);

/*
 * The algorithm of the management key (GET METADATA of 9B); *alg is
 * TG_PIV_ALG_3DES when the token cannot tell (before firmware 5.3).
 */
int tg_pivc_mgm_alg(struct tg_pivc *p, uint8_t *alg, struct tg_error *err);

/*
 * Authentication with the management key (algorithm alg, TG_MGM_ALG_*):
 * 3DES with ykpiv_authenticate, AES with the mutual GENERAL AUTHENTICATE
 * sent through ykpiv_transfer_data. The key is only read; the caller
 * wipes it.
 */
int tg_pivc_mgm_auth(struct tg_pivc *p, uint8_t alg, const uint8_t *key, size_t keylen,
                     struct tg_error *err);

/*
 * GENERATE in slot with alg and the policies (0: the token's default),
 * ykpiv_util_generate_key. *pub gets the new public key (caller frees).
 */
int tg_pivc_generate(struct tg_pivc *p, uint8_t slot, uint8_t alg, uint8_t pin_policy,
                     uint8_t touch_policy, EVP_PKEY **pub, struct tg_error *err);

/* ATTEST the key in slot (ykpiv_attest). *out owned by the caller. */
int tg_pivc_attest(struct tg_pivc *p, uint8_t slot, X509 **out, struct tg_error *err);

/*
 * The certificate stored for slot (9A/9C/9D/9E, or F9 for the attestation
 * key), ykpiv_util_read_cert. 0 and *out NULL when the slot has none (or
 * holds an object libykpiv cannot read as a certificate).
 */
int tg_pivc_cert_get(struct tg_pivc *p, uint8_t slot, X509 **out, struct tg_error *err);

/* VERIFY the PIN (6-8 characters), ykpiv_verify_select. */
int tg_pivc_verify_pin(struct tg_pivc *p, const char *pin, struct tg_error *err);

/*
 * Signs with the key in slot (ykpiv_sign_data): `in` is the hash (EC) or
 * the PKCS#1 v1.5 block of the modulus' length (RSA). *sig gets the
 * signature (EC: DER ECDSA-Sig-Value; RSA: the block), caller frees.
 */
int tg_pivc_sign(struct tg_pivc *p, uint8_t slot, uint8_t alg, const uint8_t *in, size_t n,
                 uint8_t **sig, size_t *siglen, struct tg_error *err);

/* Stores cert as the slot's certificate (ykpiv_util_write_cert). */
int tg_pivc_cert_put(struct tg_pivc *p, uint8_t slot, X509 *cert, struct tg_error *err);

#endif /* TG_PIVC_H */
