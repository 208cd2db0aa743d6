/*
 * enroll-int.h — what the parts of `tokengate enroll` share inside
 * host/enroll/: the parsed command line, the result reported (text or
 * --json), the printed commands (quoted for sh) and the CA steps. enroll.c
 * holds the command line, the CA and the HSM flow; piv.c the PIV flow.
 */
#ifndef TG_ENROLL_INT_H
#define TG_ENROLL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "tg_err.h"
#include "tg_prov.h"

#define TG_ENROLL_WHAT     "enroll"
#define TG_ENROLL_MGM_ENV  "TOKENGATE_MGM_KEY"
#define TG_ENROLL_CMD_MAX  4096
#define TG_ENROLL_NOTE_MAX 8192

/* The command line, as parsed (argv strings borrowed). */
struct tg_enroll_opts {
	const char *reader, *id, *ca_dir, *out_dir, *cert_out, *install, *key_uri;
	char *mgm_hex; /* argv text, wiped once decoded */
	const char *pin_source, *alg_name, *validity_text;
	uint8_t slot, alg, pin_policy, touch_policy;
	long validity;
	int allow_default, existing, force, json;
};

/* What a failed PIV enrollment left behind, said after the error. */
struct tg_enroll_note {
	char text[TG_ENROLL_NOTE_MAX];
};

/* What enroll did, for the text and --json results. */
struct tg_enroll_result {
	const char *algorithm; /* --algorithm name */
	const char *key;       /* "generated" or "existing" */
	uint32_t token_serial; /* PIV: the token's serial, 0 unknown */
	X509 *leaf;            /* issued (--ca-dir) */
	const struct tg_prov *prov;
	int stored; /* the certificate is on the token */
};

/* The --algorithm name of a YKPIV_ALGO_* value ("unknown-algorithm"). */
const char *tg_enroll_alg_name(uint8_t alg);

/*
 * Appends " FLAG" (and " VALUE" quoted for sh with tg_cmd_sh_quote, when
 * value is not NULL) to the command in buf (size n). 0, TG_ERR_NO_SPACE or
 * TG_ERR_ALLOC.
 */
int tg_enroll_cmd_add(char *buf, size_t n, const char *flag, const char *value);

/* "tokengate enroll --reader R --slot S" of o into buf (size n). */
int tg_enroll_cmd_start(const struct tg_enroll_opts *o, char *buf, size_t n);

/*
 * The PIN for the token in reader from --pin-source, TOKENGATE_PIN or a
 * prompt; *pin owned by the caller (tg_strfreezero). TG_ERR_NO_PIN names
 * the ways to give one.
 */
int tg_enroll_pin_read(const struct tg_enroll_opts *o, const char *reader, char **pin,
                       struct tg_error *err);

/* tg_ca_issue with the CA of --ca-dir; *leaf (caller frees) and *prov. */
int tg_enroll_ca_issue(const struct tg_enroll_opts *o, X509_REQ *csr, X509 *att, X509 *f9,
                       X509 **leaf, struct tg_prov *prov, struct tg_error *err);

/* The text line about an issued certificate (stdout). */
void tg_enroll_issued_print(const struct tg_enroll_opts *o, X509 *leaf, const struct tg_prov *prov);

/*
 * --out-dir: writes csr.pem (and, PIV, attestation.pem and f9.pem) and
 * prints the commands to run next (or, --json, the result with them).
 */
int tg_enroll_out_dir_write(const struct tg_enroll_opts *o, X509_REQ *csr, X509 *att, X509 *f9,
                            const struct tg_enroll_result *res, struct tg_error *err);

/* --cert-out: the issued certificate as PEM (nothing without it). */
int tg_enroll_cert_out_write(const struct tg_enroll_opts *o, X509 *leaf, struct tg_error *err);

/* --json of an issued certificate, on stdout. */
int tg_enroll_result_json(const struct tg_enroll_opts *o, const struct tg_enroll_result *res,
                          struct tg_error *err);

/* Prints j on stdout (indented, then a newline) and frees it; NULL is
 * an allocation failure. */
int tg_enroll_json_put(json_t *j, struct tg_error *err);

/*
 * The PIV flow (piv.c): enroll the slot of o (generating a key unless
 * --existing-key). On a failure after GENERATE, note says what the slot
 * holds and the command that resumes.
 */
int tg_enroll_piv(const struct tg_enroll_opts *o, struct tg_enroll_note *note,
                  struct tg_error *err);

/* --install-cert: stores the certificate when it is for the slot's key. */
int tg_enroll_piv_install(const struct tg_enroll_opts *o, struct tg_error *err);

#endif /* TG_ENROLL_INT_H */
