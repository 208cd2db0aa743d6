/*
 * tg_att.h — verification of Yubico-format PIV key attestations.
 *
 * A PIV token (a YubiKey, or tokengate-sim) proves that a key was generated
 * on it with an attestation certificate (INS F9): the slot's public key,
 * signed by the token's slot-F9 device key, whose certificate chains through
 * zero or more intermediates to a vendor root. Extensions under
 * 1.3.6.1.4.1.41482.3 of the attestation certificate carry the facts:
 *   .3  firmware version, 3 raw bytes (5 4 3 -> "5.4.3")
 *   .7  device serial, a DER INTEGER (absent on old firmware)
 *   .8  PIN policy then touch policy, 2 raw bytes
 *   .9  form factor, 1 raw byte (absent on old firmware)
 *
 * Verification (tg_att_verify), each step refusing with its reason:
 *   - the attestation certificate has exactly one subject CN, exactly
 *     "YubiKey PIV Attestation XX" over its encoded length (an embedded NUL
 *     fails), XX a PIV key slot: 9a, 9c, 9d, 9e or 82..95 (lower case);
 *   - it has no critical extension other than the 41482.3 ones decoded here
 *     and those OpenSSL processes (X509_supported_extension), and no 41482.3
 *     extension twice;
 *   - its issuer name equals the F9 certificate's subject, its signature
 *     verifies with the F9 public key, and it is within its validity period
 *     (checked here directly: the slot certificate is never the end of an
 *     X509_verify_cert chain, since the Yubico U2F root, pathlen 0, issues
 *     YubiKey 4 F9 certificates directly);
 *   - the F9 certificate, as the target, chains through the given
 *     intermediates to a root of the trust directory with OpenSSL's full
 *     X509_verify_cert (signatures, validity, CA flags and path lengths of
 *     every certificate above F9, unknown critical extensions);
 *   - the F9 certificate is a device certificate, not a slot one: no subject
 *     CN beginning "YubiKey PIV Attestation " and no serial (.7) or policy
 *     (.8) extension;
 *   - the F9 certificate is a CA (X509_check_ca), or, the one tolerance, a
 *     YubiKey 4 F9 certificate: no basicConstraints extension at all and
 *     issued directly (issuer name and signature) by a trusted root;
 *   - optionally, the attested public key equals a given key.
 * Every failure fills a struct tg_error naming what failed.
 */
#ifndef TG_ATT_H
#define TG_ATT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_err.h"
#include "tg_piv.h"

/* PIN policy values, as the token encodes them (tg_piv.h); 0 is not a
 * value an attestation states. */
enum tg_att_pin {
	TG_ATT_PIN_UNKNOWN = 0,
	TG_ATT_PIN_NEVER = TG_PIV_PIN_POLICY_NEVER,
	TG_ATT_PIN_ONCE = TG_PIV_PIN_POLICY_ONCE,
	TG_ATT_PIN_ALWAYS = TG_PIV_PIN_POLICY_ALWAYS,
	TG_ATT_PIN_MATCH_ONCE = TG_PIV_PIN_POLICY_MATCH_ONCE,     /* YubiKey Bio */
	TG_ATT_PIN_MATCH_ALWAYS = TG_PIV_PIN_POLICY_MATCH_ALWAYS, /* YubiKey Bio */
};

/* Touch policy values, as the token encodes them (tg_piv.h). */
enum tg_att_touch {
	TG_ATT_TOUCH_UNKNOWN = 0,
	TG_ATT_TOUCH_NEVER = TG_PIV_TOUCH_POLICY_NEVER,
	TG_ATT_TOUCH_ALWAYS = TG_PIV_TOUCH_POLICY_ALWAYS,
	TG_ATT_TOUCH_CACHED = TG_PIV_TOUCH_POLICY_CACHED,
};

/* The facts an attestation states. A plain value; nothing to free. */
struct tg_att_facts {
	char slot[3];           /* "9a", "9c", "9d", "9e", "82".."95" (tg_piv.h names) */
	char key_algorithm[24]; /* "secp256r1", "secp384r1", "RSA-2048", ... */
	int has_firmware;
	uint8_t firmware[3];   /* major, minor, patch */
	char firmware_str[12]; /* "5.4.3"; "" when absent */
	int has_serial;
	uint64_t serial; /* from the attestation cert, never the F9 */
	enum tg_att_pin pin_policy;
	enum tg_att_touch touch_policy;
	int has_form_factor;
	uint8_t form_factor; /* raw byte: low 7 bits type, 0x80 FIPS */
	uint8_t sha256[32];  /* SHA-256 of the attestation cert's DER */
};

/* A set of trusted roots loaded from a directory. Opaque. */
struct tg_att_roots;

/*
 * Loads every certificate of every *.pem, *.crt, *.cer and *.der file in
 * dir (PEM files may hold several) as trust anchors; other files are
 * ignored. Fails (TG_ERR_CONFIG, message naming the directory or file) if
 * dir cannot be read, a file cannot be parsed, or no certificate is found.
 * On success *out is owned by the caller (tg_att_roots_free).
 */
int tg_att_roots_load(const char *dir, struct tg_att_roots **out, struct tg_error *err);

/* Frees roots; NULL is accepted. */
void tg_att_roots_free(struct tg_att_roots *roots);

/*
 * Verifies attestation certificate `att` as described at the top of this
 * file: att <- f9 <- intermediates (may be NULL or empty) <- a root of
 * `roots`. If expect_key is not NULL, the attested public key must equal it
 * (EVP_PKEY_eq). On success fills *facts (if not NULL) and returns 0; else
 * TG_ERR_ATTESTATION (or TG_ERR_ALLOC/TG_ERR_CRYPTO) with err naming the
 * check that failed. Nothing is retained; the caller keeps ownership of
 * every argument.
 */
int tg_att_verify(const struct tg_att_roots *roots, X509 *att, X509 *f9,
                  STACK_OF(X509) * intermediates, EVP_PKEY *expect_key, struct tg_att_facts *facts,
                  struct tg_error *err);

/*
 * Extracts the facts of an attestation certificate without verifying any
 * signature: slot (the single subject CN, exactly "YubiKey PIV Attestation
 * XX", XX a PIV key slot), key algorithm and the 41482.3 extensions. Every
 * present extension must be well formed and appear once; the PIN/touch
 * policy extension is required; a critical extension neither decoded here
 * nor processed by OpenSSL is refused. 0 or TG_ERR_ATTESTATION with err
 * naming the bad field.
 */
int tg_att_facts_get(X509 *att, struct tg_att_facts *facts, struct tg_error *err);

/* Which 41482.3 extension tg_att_ext_decode parses. */
enum tg_att_ext {
	TG_ATT_EXT_FIRMWARE = 3,
	TG_ATT_EXT_SERIAL = 7,
	TG_ATT_EXT_POLICY = 8,
	TG_ATT_EXT_FORM_FACTOR = 9,
};

/*
 * Parses the value (the extnValue contents) of one 41482.3 extension into
 * the matching fields of *facts. 0, or TG_ERR_ATTESTATION with err naming
 * the extension and what is wrong (length, trailing bytes, bad value).
 */
int tg_att_ext_decode(enum tg_att_ext which, const uint8_t *p, size_t n, struct tg_att_facts *facts,
                      struct tg_error *err);

/*
 * Takes the attestation and F9 certificates a CSR carries in its requested
 * extensions (the format of Yubico's tools and TameMyCerts): attestation
 * in 1.3.6.1.4.1.41482.3.11 (or the older .3.1), F9 in .3.2, each the DER
 * of a certificate. 0 and *att, *f9 (caller frees both); TG_ERR_NOT_FOUND
 * when the CSR carries neither; TG_ERR_ATTESTATION (err names the
 * extension) when only one is present, one appears twice, or a value is
 * not exactly one DER certificate. Nothing is verified here.
 */
int tg_att_from_csr(X509_REQ *req, X509 **att, X509 **f9, struct tg_error *err);

/* "never", "once", "always", "match-once", "match-always"; "unknown". */
const char *tg_att_pin_name(enum tg_att_pin p);
/* "never", "always", "cached"; "unknown". */
const char *tg_att_touch_name(enum tg_att_touch t);
/* Parses a name of tg_att_pin_name; 0 or TG_ERR_INVALID_ARG. */
int tg_att_pin_parse(const char *s, enum tg_att_pin *out);
/* Parses a name of tg_att_touch_name; 0 or TG_ERR_INVALID_ARG. */
int tg_att_touch_parse(const char *s, enum tg_att_touch *out);

/*
 * Writes the key algorithm of pkey ("secp256r1", "secp384r1", "RSA-2048",
 * "ED25519", ...) into buf (size n). Returns 0 or TG_ERR_UNSUPPORTED.
 */
int tg_att_key_algorithm(EVP_PKEY *pkey, char *buf, size_t n);

#endif /* TG_ATT_H */
