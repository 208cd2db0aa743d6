/*
 * tg_ca_issue.h — checking a certificate request and issuing the leaf.
 *
 * tg_ca_issue runs, in this order, and stops at the first failure with a
 * message naming it:
 *   1. the CSR's signature verifies with the CSR's own key (possession);
 *   2. the identity is spiffe://TD/(dev|svc)/NAME in the CA's trust domain;
 *   3. the key's provenance: an attestation (level device-attested: chain to
 *      the policy's roots, attested key = CSR key) or an HSM key on this
 *      host (level hsm-operator, tg_ca_hsm.h: an HSM hsm_tokens lists,
 *      CKA_LOCAL, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_SENSITIVE
 *      true, CKA_EXTRACTABLE false, and the private key signs a fresh
 *      challenge that verifies with the CSR's key);
 *   4. the policy: minimum firmware, PIN and touch policies, serial
 *      allow-list, validity within the maximum;
 * then builds and signs the leaf (one URI SAN, cA=false critical,
 * digitalSignature critical, clientAuth, SKI/AKI, key-provenance
 * extension, random serial, and a CRL distribution point when policy.yaml
 * sets crl_url) and records it in the CA directory.
 */
#ifndef TG_CA_ISSUE_H
#define TG_CA_ISSUE_H

#include <openssl/x509.h>

#include "tg_ca_store.h"
#include "tg_err.h"
#include "tg_prov.h"

#define TG_CA_NAME_MAX 64

struct tg_ca_issue_req {
	X509_REQ *csr;
	const char *id;                 /* spiffe://TD/(dev|svc)/NAME */
	X509 *att;                      /* attestation (device-attested) */
	X509 *f9;                       /* its F9 device certificate */
	STACK_OF(X509) * intermediates; /* may be NULL */
	const char *hsm_key_uri;        /* pkcs11: URI (hsm-operator) */
	long validity;                  /* seconds; 0: the policy's default */
	unsigned flags;                 /* TG_CA_ISSUE_* */
};

/* hsm_key_uri came from a command line: refuse a pin-value= in it (a PIN
 * there is visible in ps; use pin-source= or TOKENGATE_PIN). */
#define TG_CA_ISSUE_NO_PIN_VALUE 0x1u

/*
 * Checks req against the CA s and issues the leaf: 0 and *out (caller
 * frees) and *prov (what was recorded), or TG_ERR_CSR, TG_ERR_IDENTITY,
 * TG_ERR_ATTESTATION, TG_ERR_KEY_EXPORTABLE, TG_ERR_POLICY, ... with err
 * naming what failed and the fix.
 */
int tg_ca_issue(struct tg_ca_store *s, const struct tg_ca_issue_req *req, X509 **out,
                struct tg_prov *prov, struct tg_error *err);

/*
 * Checks an identity: "spiffe://" TD "/" ("dev" | "svc") "/" NAME, NAME
 * 1..64 of [A-Za-z0-9._-] and not "." or "..". td (may be NULL) must equal
 * the trust domain. On success writes NAME into name (size >= 65).
 * TG_ERR_IDENTITY otherwise.
 */
int tg_ca_id_check(const char *id, const char *td, char *name, size_t n, struct tg_error *err);

/*
 * The identity of a certificate: its one URI SAN. 0 and buf, or
 * TG_ERR_IDENTITY when it has none or several.
 */
int tg_ca_id_from_cert(X509 *cert, char *buf, size_t n, struct tg_error *err);

#endif /* TG_CA_ISSUE_H */
