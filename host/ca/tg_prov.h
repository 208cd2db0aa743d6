/*
 * tg_prov.h — the key-provenance certificate extension.
 *
 * tokengate's CA records in each leaf certificate how it knows the key lives
 * on a token: a non-critical extension, OID
 * 2.25.55409018484616740550661563879703842270.1, whose value is the DER of
 * (docs/provenance.md has the full ASN.1 module):
 *
 *   KeyProvenance ::= SEQUENCE {
 *     version            INTEGER (1),
 *     level              ENUMERATED { hsm-operator(1), device-attested(2) },
 *     tokenSerial        UTF8String (SIZE (1..64)),
 *     pinPolicy          ENUMERATED { never(1), once(2), always(3),
 *                                     match-once(4), match-always(5) },
 *     touchPolicy        ENUMERATED { never(1), always(2), cached(3) },
 *     formFactor         [0] IMPLICIT INTEGER (0..255) OPTIONAL,
 *     attestationSha256  [1] IMPLICIT OCTET STRING (SIZE (32)) OPTIONAL,
 *     tokenModel         [2] IMPLICIT SEQUENCE {
 *       manufacturer       UTF8String (SIZE (0..64)),
 *       model              UTF8String (SIZE (0..64)) } OPTIONAL }
 *
 * attestationSha256 is required for device-attested and optional for
 * hsm-operator. tokenModel is the token's own C_GetTokenInfo manufacturer
 * and model (printable ASCII), recorded for hsm-operator. Encoded and decoded with OpenSSL's ASN.1 templates; the
 * decoder accepts only DER (re-encoding must give the same bytes).
 */
#ifndef TG_PROV_H
#define TG_PROV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "tg_att.h"
#include "tg_err.h"

#define TG_PROV_OID        "2.25.55409018484616740550661563879703842270.1"
#define TG_PROV_VERSION    1
#define TG_PROV_SERIAL_MAX 64
#define TG_PROV_MODEL_MAX  64

enum tg_prov_level {
	TG_PROV_LEVEL_NONE = 0,
	TG_PROV_HSM_OPERATOR = 1,
	TG_PROV_DEVICE_ATTESTED = 2,
};

/* The decoded extension. A plain value; nothing to free. */
struct tg_prov {
	int version; /* TG_PROV_VERSION */
	enum tg_prov_level level;
	char serial[TG_PROV_SERIAL_MAX + 1]; /* token serial, printable */
	enum tg_att_pin pin_policy;
	enum tg_att_touch touch_policy;
	int has_form_factor;
	uint8_t form_factor;
	int has_att_sha256;
	uint8_t att_sha256[32];
	int has_token_model;                            /* tokenModel present */
	char token_manufacturer[TG_PROV_MODEL_MAX + 1]; /* printable ASCII */
	char token_model[TG_PROV_MODEL_MAX + 1];        /* printable ASCII */
};

/*
 * Encodes p as the extension's DER value. *der is allocated (caller frees
 * with OPENSSL_free), *len its size. TG_ERR_INVALID_ARG (err says which
 * field) when p breaks the rules above.
 */
int tg_prov_encode(const struct tg_prov *p, uint8_t **der, size_t *len, struct tg_error *err);

/*
 * Decodes the DER value of the extension (n bytes at der) into *p, checking
 * every rule above. 0, or TG_ERR_FORMAT with err naming the problem.
 */
int tg_prov_decode(const uint8_t *der, size_t n, struct tg_prov *p, struct tg_error *err);

/*
 * Makes the non-critical X509_EXTENSION for p; *out owned by the caller
 * (X509_EXTENSION_free).
 */
int tg_prov_ext_make(const struct tg_prov *p, X509_EXTENSION **out, struct tg_error *err);

/*
 * Reads the provenance extension of cert into *p. TG_ERR_NOT_FOUND when the
 * certificate has none; TG_ERR_FORMAT when it has more than one or a bad
 * value. The caller decides whether to trust the issuer (only CAs configured
 * as token-backed issuers).
 */
int tg_prov_from_cert(X509 *cert, struct tg_prov *p, struct tg_error *err);

/* "hsm-operator", "device-attested"; "none" otherwise. */
const char *tg_prov_level_name(enum tg_prov_level l);
/* Parses a tg_prov_level_name name; 0 or TG_ERR_INVALID_ARG. */
int tg_prov_level_parse(const char *s, enum tg_prov_level *out);

#endif /* TG_PROV_H */
