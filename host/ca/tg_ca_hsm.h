/*
 * tg_ca_hsm.h — level hsm-operator: which HSMs the CA trusts (policy.yaml's
 * hsm_tokens) and the proof that a CSR's key is a non-exportable key on one
 * of them.
 *
 * tg_ca_hsm_check, called by tg_ca_issue for --hsm-key, runs in this order
 * and stops at the first failure with a message naming it:
 *   1. the URI holds no pin-value= when the caller says so (the command
 *      line: a PIN there is visible in ps);
 *   2. the module: a module-path= (or the path p11-kit registers for a
 *      module-name=) must be a module an hsm_tokens entry lists, compared by
 *      canonical path (realpath(3)), checked BEFORE the module is loaded;
 *      without either, the modules hsm_tokens lists are tried in order
 *      (never p11-kit's proxy, which would load every registered module);
 *   3. the token's manufacturer, model and serial match the globs of an
 *      entry listing that module;
 *   4. the private key's own attributes (tg_ca_hsm_rules);
 *   5. possession on the token: the private key signs a fresh random
 *      challenge and the signature must verify with the CSR's public key.
 *      Public-key and certificate objects on the token (which anyone with
 *      the user PIN can replace) are never trusted for this.
 */
#ifndef TG_CA_HSM_H
#define TG_CA_HSM_H

#include <stddef.h>

#include <openssl/evp.h>

#include "tg_att.h"
#include "tg_ca_policy.h"
#include "tg_err.h"
#include "tg_p11.h"
#include "tg_prov.h"

/* Flags of tg_ca_hsm_check. */
#define TG_CA_HSM_NO_PIN_VALUE 0x1u /* refuse a URI holding pin-value= */

/*
 * The HSM key rules, a pure function of the private key object's
 * attributes (1 true, 0 false, anything else unknown): not on a
 * PKCS#15-emulated token (t->emulated), CKA_EXTRACTABLE
 * must be false, CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE
 * and CKA_LOCAL true (checked in that order; "unknown" is a refusal). The
 * PIN policy recorded: CKA_ALWAYS_AUTHENTICATE true -> always;
 * CKA_PRIVATE true on a token that requires login (CKF_LOGIN_REQUIRED,
 * login_required non-zero) -> once; otherwise never. label names the key in
 * messages. Returns 0 and *pin, or TG_ERR_KEY_EXPORTABLE with err naming
 * the attribute, its value and the fix.
 */
int tg_ca_hsm_rules(const struct tg_p11_trust *t, int login_required, const char *label,
                    enum tg_att_pin *pin, struct tg_error *err);

/*
 * Is the module at path one that an hsm_tokens entry lists? Both are
 * compared by canonical path (realpath(3)): "/usr/lib/../lib/x.so" is the
 * file it names, a symlink is its target. Does not load anything. Returns 0
 * and canon (the canonical path, to load) when listed; TG_ERR_POLICY naming
 * hsm_tokens and the path otherwise.
 */
int tg_ca_hsm_module_check(const struct tg_ca_policy *pol, const char *path, char *canon, size_t n,
                           struct tg_error *err);

/*
 * Does a token found through the module at canonical path canon match an
 * entry of hsm_tokens (same canonical module; manufacturer, model, serial
 * globs matched with fnmatch(3), an absent glob matching anything)? 0, or
 * TG_ERR_POLICY naming hsm_tokens and the token (module, manufacturer,
 * model, serial) with the entry that would list it.
 */
int tg_ca_hsm_token_check(const struct tg_ca_policy *pol, const char *canon,
                          const struct tg_p11_token_info *ti, struct tg_error *err);

/*
 * The checks of step 2 that need no module loaded, for callers that want
 * to fail before they change anything (enroll, before it generates a key):
 * the URI's module-path (or module-name's registered file) is one
 * hsm_tokens lists; without either, hsm_tokens lists at least one HSM.
 * 0, or the refusal tg_ca_hsm_check would give (TG_ERR_POLICY, TG_ERR_URI,
 * TG_ERR_MODULE).
 */
int tg_ca_hsm_precheck(const struct tg_ca_policy *pol, const char *uri, struct tg_error *err);

/*
 * Proves that the HSM key named by uri is the CSR's key and may be
 * certified (the steps at the top of this file); flags as above. On success
 * fills *prov (level hsm-operator, token serial, PIN policy, touch never,
 * token manufacturer and model) and checks the policy's pin_policies. 0, or
 * TG_ERR_USAGE, TG_ERR_POLICY, TG_ERR_KEY_EXPORTABLE, TG_ERR_CSR, the
 * errors of tg_p11_key_find; err names the reason and the fix.
 */
int tg_ca_hsm_check(const struct tg_ca_policy *pol, const char *uri, unsigned flags,
                    EVP_PKEY *csrkey, struct tg_prov *prov, struct tg_error *err);

#endif /* TG_CA_HSM_H */
