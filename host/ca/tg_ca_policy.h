/*
 * tg_ca_policy.h — the CA's issuance policy, DIR/policy.yaml.
 *
 *   trust_domain: example.org            # required; SPIFFE trust domain
 *   attestation_roots: attestation-roots # required; dir, relative to DIR
 *   min_firmware: 5.2.0                  # optional; default 0.0.0
 *   pin_policies: [once, always]         # required; allowed PIN policies
 *   touch_policies: [never, always, cached] # required
 *   serials: [12345678, 23456789]        # optional; absent = any serial
 *   default_validity: 24h                # required; s, m, h or d
 *   max_validity: 720h                   # required; >= default_validity
 *   hsm_tokens:                          # optional; absent or [] = no HSM
 *     - module: /usr/lib/softhsm/libsofthsm2.so   # required; absolute path
 *       manufacturer: "SoftHSM*"         # optional fnmatch globs on the
 *       model: "SoftHSM v2"              # token's C_GetTokenInfo fields;
 *       serial: "*"                      # absent = any
 *   crl_url: http://ca.example.org/ca.crl # optional; http(s) URL put in
 *                                        # every leaf's CRL distribution point
 *
 * hsm_tokens names the HSMs whose keys may get level hsm-operator: a key is
 * certified only when the module it is on is one an entry lists (compared
 * by canonical path, realpath(3)) and the token's manufacturer, model and
 * serial match that entry's globs. A module no entry lists is never loaded.
 * The old key allow_hsm_operator is refused with a message that says to use
 * hsm_tokens.
 *
 * Parsing is strict: unknown or repeated keys, wrong types and bad values
 * are errors that give the line number.
 */
#ifndef TG_CA_POLICY_H
#define TG_CA_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "tg_att.h"
#include "tg_err.h"

#define TG_CA_TD_MAX         255
#define TG_CA_HSM_TOKENS_MAX 64
#define TG_CA_URL_MAX        1024

/* One entry of hsm_tokens. Globs are "" when absent (any value). */
struct tg_ca_hsm_token {
	char module[256]; /* absolute path, as written in policy.yaml */
	char manufacturer[128];
	char model[128];
	char serial[128];
	unsigned line; /* line in policy.yaml, for messages */
};

struct tg_ca_policy {
	char trust_domain[TG_CA_TD_MAX + 1];
	char attestation_roots[1024]; /* absolute or relative to the CA dir */
	uint8_t min_firmware[3];
	unsigned pin_allowed;   /* bit (1 << enum tg_att_pin) */
	unsigned touch_allowed; /* bit (1 << enum tg_att_touch) */
	int has_serials;
	uint64_t *serials; /* has_serials: nserials entries */
	size_t nserials;
	long default_validity;              /* seconds */
	long max_validity;                  /* seconds */
	struct tg_ca_hsm_token *hsm_tokens; /* nhsm_tokens entries; NULL when none */
	size_t nhsm_tokens;
	char crl_url[TG_CA_URL_MAX]; /* "" = no CRL distribution point */
};

/*
 * Parses n bytes of YAML text (name is used in messages, e.g. the path).
 * On success *pol is filled (free with tg_ca_policy_clear). Errors:
 * TG_ERR_CONFIG with "NAME line L: ..." naming the key and the fix.
 */
int tg_ca_policy_parse(const char *text, size_t n, const char *name, struct tg_ca_policy *pol,
                       struct tg_error *err);

/* Reads and parses the file at path. */
int tg_ca_policy_load(const char *path, struct tg_ca_policy *pol, struct tg_error *err);

/*
 * Writes pol as YAML to path (mode 0644), hsm_tokens and crl_url included.
 * TG_ERR_INVALID_ARG for values that cannot be written (control characters
 * in a path or glob, a crl_url that tg_ca_crl_url_check refuses).
 */
int tg_ca_policy_write(const struct tg_ca_policy *pol, const char *path, struct tg_error *err);

/* Frees what tg_ca_policy_parse allocated and zeroes pol; NULL accepted. */
void tg_ca_policy_clear(struct tg_ca_policy *pol);

/* Sets pol to the defaults `ca init` writes for trust domain td. */
void tg_ca_policy_defaults(struct tg_ca_policy *pol);

/*
 * Checks trust domain syntax (SPIFFE: lower-case letters, digits, '.',
 * '-', '_'; 1..255 characters). 0 or TG_ERR_IDENTITY.
 */
int tg_ca_td_check(const char *td, struct tg_error *err);

/*
 * Parses a duration "90s", "30m", "24h", "7d" (or plain seconds) into
 * *secs. 0 or TG_ERR_INVALID_ARG.
 */
int tg_ca_duration_parse(const char *s, long *secs);

/* secs in the largest unit that divides it exactly ("30d", "36h", "90m",
 * "45s"), as tg_ca_duration_parse reads it, into buf (size n). */
void tg_ca_duration_str(long secs, char *buf, size_t n);

/*
 * Checks a crl_url: an http:// or https:// URL with a host, at most
 * TG_CA_URL_MAX - 1 bytes, no control characters, spaces, quotes or
 * backslashes. 0, or TG_ERR_INVALID_ARG with err saying what is wrong.
 */
int tg_ca_crl_url_check(const char *url, struct tg_error *err);

/* Parses "5.4.3" into 3 bytes. 0 or TG_ERR_INVALID_ARG. */
int tg_ca_firmware_parse(const char *s, uint8_t fw[3]);

/* Which rules tg_ca_policy_check applies (bits of its checks argument). */
#define TG_CA_CHECK_PIN      0x1u /* pin_policies */
#define TG_CA_CHECK_TOUCH    0x2u /* touch_policies */
#define TG_CA_CHECK_FIRMWARE 0x4u /* min_firmware */
#define TG_CA_CHECK_SERIAL   0x8u /* serials */
#define TG_CA_CHECK_ALL                                                                            \
	(TG_CA_CHECK_PIN | TG_CA_CHECK_TOUCH | TG_CA_CHECK_FIRMWARE | TG_CA_CHECK_SERIAL)

/*
 * Checks a key's facts against the rules of pol selected by checks: PIN
 * and touch policy allowed, firmware at least min_firmware, serial in the
 * allow-list (f->has_firmware / f->has_serial 0 is a refusal when the
 * policy has the rule). The one place these rules are decided: tg_ca_issue
 * applies them all to a verified attestation; `enroll` asks about the PIN
 * and touch policies before it generates a key. 0, or TG_ERR_POLICY with err
 * naming the rule (its policy.yaml key) and the fix (err may be NULL).
 */
int tg_ca_policy_check(const struct tg_ca_policy *pol, const struct tg_att_facts *f,
                       unsigned checks, struct tg_error *err);

#endif /* TG_CA_POLICY_H */
