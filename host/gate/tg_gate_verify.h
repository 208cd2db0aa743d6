/*
 * tg_gate_verify.h — the gate's client-certificate verifier: certificates
 * in, verdict out, no sockets.
 *
 * A verifier holds the tokengate CA certificates the gate trusts and,
 * optionally, their CRL. tg_gate_verify_peer accepts a client certificate
 * only when every check below holds, in this order (the first that fails
 * is the reason):
 *   1. the chain (leaf + the untrusted certificates the client sent) ends
 *      at a configured CA — never at a system root; the leaf is valid at
 *      `now` (not expired, not yet valid); with a CRL, the leaf is not
 *      revoked and the CRL itself has not passed its nextUpdate;
 *   2. basicConstraints present with CA:FALSE;
 *   3. extendedKeyUsage present and includes clientAuth;
 *   4. exactly one URI SAN, a spiffe://TD/(dev|svc)/NAME identity
 *      (tg_ca_id_check, any trust domain);
 *   5. the key-provenance extension (tg_prov.h) present and well formed.
 *      It is trusted only because step 1 tied the leaf to a configured CA:
 *      the same extension in a certificate from any other issuer fails at 1.
 *
 * CRL decisions: the CRL file (PEM, one or more CRLs, or DER, one CRL) must
 * be signed by a configured CA and must not be past its nextUpdate when
 * loaded. With a CRL configured, every leaf's issuer needs a CRL in the
 * file (a leaf from a CA the file has no CRL for is refused), and a CRL
 * that expires while loaded refuses every leaf until a fresh one is loaded
 * ("refuse", not "warn": an old CRL cannot vouch that a certificate is not
 * revoked). Only the leaf is checked against the CRL (tokengate CAs issue
 * leaves directly).
 *
 * Threads: tg_gate_verify_peer may run on many threads at once;
 * tg_gate_verify_reload_crl must not run while another thread verifies
 * (the gate reloads between requests on each worker's loop, or swaps a
 * whole new verifier in).
 *
 * From a TLS handshake (the gate, the nginx authorization endpoint):
 *
 *   static int cb(X509_STORE_CTX *sctx, void *arg)
 *   {
 *       struct tg_gate_peer_info info;
 *       struct tg_error err = {0};
 *       if (tg_gate_verify_store_ctx(arg, sctx, time(NULL), &info, &err) != 0) {
 *           X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
 *           ... audit err.msg as the TLS rejection reason ...
 *           return 0;   // fails the handshake
 *       }
 *       ... store info with the SSL session (ex_data) ...
 *       return 1;
 *   }
 *   SSL_CTX_set_cert_verify_callback(ssl_ctx, cb, verifier);
 *   SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
 *
 * On resumption the stored leaf is passed to tg_gate_verify_peer again
 * (with the current CRL and time), so a certificate revoked or expired
 * after the session began is refused.
 */
#ifndef TG_GATE_VERIFY_H
#define TG_GATE_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "tg_err.h"
#include "tg_prov.h"

#define TG_GATE_ID_MAX 512

struct tg_gate_verify;

/* What a verified client certificate says. A plain value. */
struct tg_gate_peer_info {
	char identity[TG_GATE_ID_MAX + 1]; /* the one URI SAN, spiffe://... */
	struct tg_prov prov;               /* level, pin, touch, token serial, ... */
	time_t not_after;                  /* the leaf's notAfter: no session outlives it */
	uint8_t sha256[32];                /* SHA-256 of the leaf's DER */
};

/*
 * Makes a verifier trusting the CA certificates in ca_files[0..nca-1]
 * (PEM, one or more certificates each; nca >= 1) and, if crl_file is not
 * NULL, checking revocation against it (see above). *out is freed with
 * tg_gate_verify_free. TG_ERR_CONFIG (or TG_ERR_IO) with err naming the
 * file, the problem and the fix.
 */
int tg_gate_verify_new(const char *const *ca_files, size_t nca, const char *crl_file,
                       struct tg_gate_verify **out, struct tg_error *err);

/* Frees v; NULL is accepted. */
void tg_gate_verify_free(struct tg_gate_verify *v);

/*
 * Replaces the CRL with the one in crl_file, checked as at load time
 * (against the current time). On any failure the verifier keeps the CRL it
 * had and err says why the new file was refused (TG_ERR_CONFIG / TG_ERR_IO).
 */
int tg_gate_verify_reload_crl(struct tg_gate_verify *v, const char *crl_file, struct tg_error *err);

/*
 * The earliest nextUpdate of the CRLs v holds (seconds since the epoch):
 * from then on tg_gate_verify_peer refuses every leaf until a fresh CRL is
 * loaded, so a verdict kept from before (the authz mode's cache) must not
 * be used past it. 0 when v checks no CRL.
 */
time_t tg_gate_verify_crl_until(const struct tg_gate_verify *v);

/*
 * Verifies the client certificate leaf, with chain (may be NULL) the other
 * certificates the client sent, at time now. 0 and *out filled, or:
 *   TG_ERR_POLICY    not issued by a configured CA, expired, not yet valid,
 *                    stale CRL or no CRL for its issuer, CA:TRUE, no
 *                    clientAuth, no provenance extension
 *   TG_ERR_REVOKED   revoked by the configured CRL
 *   TG_ERR_IDENTITY  not exactly one URI SAN, or not a tokengate SPIFFE id
 *   TG_ERR_FORMAT    a malformed provenance extension
 * err->msg names the certificate (subject) and the reason. *out is zeroed
 * on failure.
 */
int tg_gate_verify_peer(const struct tg_gate_verify *v, X509 *leaf, STACK_OF(X509) * chain,
                        time_t now, struct tg_gate_peer_info *out, struct tg_error *err);

/*
 * tg_gate_verify_peer on the certificates of an X509_STORE_CTX handed to an
 * SSL_CTX_set_cert_verify_callback callback (its certificate and untrusted
 * chain); the store and parameters of sctx are not used.
 */
int tg_gate_verify_store_ctx(const struct tg_gate_verify *v, X509_STORE_CTX *sctx, time_t now,
                             struct tg_gate_peer_info *out, struct tg_error *err);

#endif /* TG_GATE_VERIFY_H */
