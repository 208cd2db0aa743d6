/*
 * mfrca.h — the simulator's manufacturer CA: the root that signs each
 * token's slot-F9 device attestation certificate, as Yubico's root signs a
 * YubiKey's. Verifiers trust it the way they trust a vendor root.
 */
#ifndef TG_SIM_MFRCA_H
#define TG_SIM_MFRCA_H

#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

/*
 * Creates a new manufacturer CA: an EC P-256 key and a self-signed
 * certificate (CA:TRUE critical, keyUsage keyCertSign+cRLSign critical,
 * subject key identifier, 20 years). Writes the key as PEM PKCS#8 to
 * key_path (created with mode 0600, refused if it exists) and the
 * certificate as PEM to cert_path (mode 0644, refused if it exists).
 */
int tg_sim_mfrca_create(const char *cert_path, const char *key_path, struct tg_error *err);

/*
 * Loads a manufacturer CA certificate and key (PEM or DER each) and checks
 * that they belong together. Gives both back as DER: *cert_der (certificate)
 * and *key_der (PKCS#8 private key), heap memory the caller releases with
 * tg_freezero(p, len).
 */
int tg_sim_mfrca_load(const char *cert_path, const char *key_path, uint8_t **cert_der,
                      size_t *cert_len, uint8_t **key_der, size_t *key_len, struct tg_error *err);

#endif /* TG_SIM_MFRCA_H */
