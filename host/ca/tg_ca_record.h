/*
 * tg_ca_record.h — one JSON shape for a certificate this CA issued.
 *
 * `ca show`, `ca issue --json`, `ca list --json` and DIR/issued/HEX.json
 * all describe a certificate with these fields (docs/provenance.md):
 *
 *   identity            the one URI SAN (spiffe://TD/dev|svc/NAME)
 *   serial              the certificate serial, upper-case hex without
 *                       separators (what `ca revoke --serial` takes, in any
 *                       case)
 *   issuer              the issuer name, RFC 2253
 *   not_before          validity start, RFC 3339 UTC (2026-01-31T12:00:00Z)
 *   not_after           validity end, same form
 *   sha256_fingerprint  SHA-256 of the DER certificate, lower-case hex
 *                       (openssl x509 -fingerprint -sha256, without colons)
 *   provenance          the key-provenance extension, or null: version,
 *                       level, token_serial (text, as the token reports
 *                       it), pin_policy, touch_policy, form_factor,
 *                       attestation_sha256, token_manufacturer, token_model
 */
#ifndef TG_CA_RECORD_H
#define TG_CA_RECORD_H

#include <jansson.h>
#include <openssl/x509.h>

#include "tg_err.h"

/*
 * The JSON object above for x, into *out (a new reference, owned by the
 * caller). TG_ERR_IDENTITY when x has not exactly one URI SAN,
 * TG_ERR_FORMAT for a malformed provenance extension, TG_ERR_ALLOC.
 */
int tg_ca_cert_json(X509 *x, json_t **out, struct tg_error *err);

/* An ASN1_TIME as RFC 3339 UTC text into buf (size n, at least 21);
 * "" when it cannot be converted. Returns buf. */
char *tg_ca_time_str(const ASN1_TIME *t, char *buf, size_t n);

/*
 * Prints j on stdout (two-space indent, keys in insertion order, one
 * trailing newline). 0, or TG_ERR_ALLOC / TG_ERR_IO when it cannot.
 */
int tg_ca_json_print(json_t *j);

#endif /* TG_CA_RECORD_H */
