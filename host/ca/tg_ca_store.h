/*
 * tg_ca_store.h — the CA directory.
 *
 *   DIR/ca.pem              the CA certificate (what gates trust)
 *   DIR/ca.key              the CA private key, PEM PKCS#8, mode 0600, or
 *   DIR/ca.key.uri          a pkcs11: URI naming the key on an HSM
 *   DIR/policy.yaml         the issuance policy (tg_ca_policy.h)
 *   DIR/attestation-roots/  default trusted roots for attestations
 *   DIR/issued/HEX.pem      every certificate issued, by serial (hex)
 *   DIR/issued/HEX.json     tg_ca_cert_json of it (tg_ca_record.h)
 *   DIR/revoked.txt         "HEX UNIXTIME [REASON]" per revoked certificate
 *   DIR/crlnumber           the last CRL number used
 *
 * Checked like OpenSSH checks its own files, on every open: DIR, ca.pem,
 * policy.yaml, ca.key.uri and the attestation roots directory (wherever the
 * policy points) must be owned by the user who runs the command and not
 * writable by group or others; ca.key must be accessible by its owner only
 * (0600). Symbolic links at these paths are refused, not followed. Only the
 * paths themselves are checked, not their parents. revoked.txt and
 * crlnumber, checked the same way when read, are changed under an
 * exclusive flock(2) on DIR, so concurrent revocations and CRLs neither
 * lose a serial nor reuse a CRL number. Every file is written with
 * tg_file_write (tg_file.h).
 */
#ifndef TG_CA_STORE_H
#define TG_CA_STORE_H

#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg_ca_policy.h"
#include "tg_err.h"
#include "tg_prov.h"

struct tg_ca_store;

/* Longest serial (hex digits) this CA reads or writes. */
#define TG_CA_SERIAL_HEX_MAX 80

/* Latest revocation time revoked.txt may hold (9999-12-31T23:59:59Z). */
#define TG_CA_REVOKED_WHEN_MAX 253402300799LL

/* Options of tg_ca_store_init. */
struct tg_ca_init_opts {
	const char *dir; /* created 0700 if missing; an existing empty
				      one is made 0700; must hold no CA */
	const char *trust_domain;
	const char *roots_dir; /* NULL: DIR/attestation-roots/ */
	const char *key_uri;   /* NULL: a new P-256 key in DIR/ca.key;
				      else a pkcs11: URI (found, or generated
				      when absent) */
	long validity_days;    /* CA certificate lifetime; 0: 3650 */
};

/*
 * Creates a new CA in opts->dir: key, self-signed certificate
 * (basicConstraints cA=true pathlen 0, keyUsage keyCertSign|cRLSign,
 * SKI/AKI), default policy, issued/ and the roots directory. Refuses
 * (TG_ERR_INVALID_ARG) when DIR/ca.pem already exists, and
 * (TG_ERR_PERMISSION, naming the fix) a non-empty existing DIR that is
 * writable by group or others, or any DIR not owned by the user.
 */
int tg_ca_store_init(const struct tg_ca_init_opts *opts, struct tg_error *err);

/*
 * Opens the CA in dir: certificate and policy, and the private key when
 * need_key is non-zero (a pkcs11: key logs in through the PKCS#11 layer).
 * Owner and mode of the CA's files are checked first (see above):
 * TG_ERR_PERMISSION names the path and the chmod or chown that fixes it.
 * *out owned by the caller (tg_ca_store_free).
 */
int tg_ca_store_open(const char *dir, int need_key, struct tg_ca_store **out, struct tg_error *err);

void tg_ca_store_free(struct tg_ca_store *s);

/* Borrowed pointers, valid while s lives. */
X509 *tg_ca_store_cert(struct tg_ca_store *s);
EVP_PKEY *tg_ca_store_key(struct tg_ca_store *s);
const struct tg_ca_policy *tg_ca_store_policy(struct tg_ca_store *s);

/*
 * The attestation roots directory: the policy's, relative paths taken from
 * the CA directory. Writes into buf (size n).
 */
int tg_ca_store_roots_dir(const struct tg_ca_store *s, char *buf, size_t n);

/*
 * Records an issued certificate: issued/HEX.pem and issued/HEX.json (the
 * fields of `ca show`, tg_ca_cert_json). When path is not NULL, the path
 * of issued/HEX.pem is written into it (size n). TG_ERR_IO on failure.
 */
int tg_ca_store_record(struct tg_ca_store *s, X509 *leaf, char *path, size_t n,
                       struct tg_error *err);

/*
 * Why a certificate was revoked: the RFC 5280 5.3.1 CRLReason codes this
 * CA records. certificateHold and removeFromCRL are refused (a revocation
 * here is permanent), cACompromise and aACompromise do not apply to the
 * leaves it issues.
 */
enum tg_ca_reason {
	TG_CA_REASON_UNSPECIFIED = 0,
	TG_CA_REASON_KEY_COMPROMISE = 1,
	TG_CA_REASON_AFFILIATION_CHANGED = 3,
	TG_CA_REASON_SUPERSEDED = 4,
	TG_CA_REASON_CESSATION_OF_OPERATION = 5,
	TG_CA_REASON_PRIVILEGE_WITHDRAWN = 9,
};

/* The accepted reason names, for messages and --help. */
#define TG_CA_REASON_NAMES                                                                         \
	"unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, "       \
	"privilegeWithdrawn"

/* A reason name (RFC 5280 spelling, any case) into *out; 0 or
 * TG_ERR_INVALID_ARG. */
int tg_ca_reason_parse(const char *name, size_t n, enum tg_ca_reason *out);

/* The RFC 5280 name of a reason (e.g. "keyCompromise"); never NULL. */
const char *tg_ca_reason_name(enum tg_ca_reason r);

/*
 * Revokes the issued certificate with the given serial (hex, any case,
 * optional 0x and colons) for reason. TG_ERR_NOT_FOUND when this CA issued
 * no such certificate; revoking twice is an error (TG_ERR_INVALID_ARG).
 */
int tg_ca_store_revoke(struct tg_ca_store *s, const char *serial_hex, enum tg_ca_reason reason,
                       struct tg_error *err);

/*
 * 0 when x was issued by this CA: its issuer is the CA's subject and its
 * signature verifies with the CA's public key; else TG_ERR_NOT_FOUND
 * naming both issuers (a foreign certificate), or naming the signature.
 */
int tg_ca_store_cert_check(struct tg_ca_store *s, X509 *x, struct tg_error *err);

/* One line of revoked.txt. */
struct tg_ca_revoked {
	char serial[TG_CA_SERIAL_HEX_MAX + 1]; /* canonical (tg_ca_serial_norm) */
	long long when;                        /* revocation time, Unix seconds */
	enum tg_ca_reason reason;              /* unspecified when the line has none */
	unsigned long line;                    /* 1-based line in the text */
};

/*
 * Parses n bytes of revoked.txt text (name is used in messages). Strict:
 * every line is exactly "HEX UNIXTIME" or "HEX UNIXTIME REASON" — 1 to
 * TG_CA_SERIAL_HEX_MAX hex digits, one space, decimal digits of a time at
 * most TG_CA_REVOKED_WHEN_MAX, optionally one space and a reason name
 * (tg_ca_reason_parse; lines written before reasons were recorded have
 * none and read as unspecified) — ending in a newline (the last one may
 * lack it); empty lines, other bytes and a serial listed twice are
 * refused. On success *list (count entries, in text order; NULL when count
 * is 0) is owned by the caller (free()). Errors: TG_ERR_FORMAT with "NAME
 * line L: ..." saying what the line must be; TG_ERR_ALLOC. No I/O.
 */
int tg_ca_revoked_parse(const char *text, size_t n, const char *name, struct tg_ca_revoked **list,
                        size_t *count, struct tg_error *err);

/*
 * The revoked.txt line of e, newline included, into buf (size n): what
 * tg_ca_revoked_parse reads back. Returns its length, or 0 when it does
 * not fit.
 */
size_t tg_ca_revoked_format(const struct tg_ca_revoked *e, char *buf, size_t n);

/* What `ca list` reports of one issued certificate. */
enum tg_ca_status {
	TG_CA_STATUS_VALID,
	TG_CA_STATUS_REVOKED,
	TG_CA_STATUS_EXPIRED,
};

/* "valid", "revoked" or "expired". */
const char *tg_ca_status_name(enum tg_ca_status st);

/* 0 and *out for "valid", "revoked" or "expired"; else TG_ERR_INVALID_ARG. */
int tg_ca_status_parse(const char *name, enum tg_ca_status *out);

struct tg_ca_issued {
	X509 *cert;                            /* owned by the list */
	char serial[TG_CA_SERIAL_HEX_MAX + 1]; /* canonical */
	enum tg_ca_status status;              /* revoked wins over expired */
	long long revoked_at;                  /* when status is revoked */
	enum tg_ca_reason reason;              /* when status is revoked */
};

/*
 * Every certificate in DIR/issued/, with its status at time now (revoked
 * per revoked.txt, else expired when notAfter is before now, else valid),
 * ordered by notBefore then serial. *list (count entries) is owned by the
 * caller (tg_ca_issued_free). TG_ERR_IO naming a file that cannot be read.
 */
int tg_ca_store_list(struct tg_ca_store *s, time_t now, struct tg_ca_issued **list, size_t *count,
                     struct tg_error *err);

void tg_ca_issued_free(struct tg_ca_issued *list, size_t count);

/*
 * Builds and signs a CRL (v2, CRL number, AKI, nextUpdate in 7 days) of
 * every revoked serial. *out owned by the caller.
 */
int tg_ca_store_crl(struct tg_ca_store *s, X509_CRL **out, struct tg_error *err);

/*
 * Canonical serial text (upper-case hex, as the issued/ file names use) of
 * an ASN1_INTEGER or of user text. 0 or TG_ERR_INVALID_ARG.
 */
int tg_ca_serial_hex(const ASN1_INTEGER *ai, char *buf, size_t n);
int tg_ca_serial_norm(const char *text, char *buf, size_t n);

/* Sets a random positive 16-byte serial number on x (RFC 5280 4.1.2.2). */
int tg_ca_serial_random(X509 *x, struct tg_error *err);

/*
 * Adds the extension nid with its OpenSSL config value (e.g.
 * "critical,CA:FALSE") to x, built in ctx; serves the CA certificate and the
 * leaves. 0 or TG_ERR_CRYPTO naming the extension.
 */
int tg_ca_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct tg_error *err);

/* Signs cert or CRL data with the CA key with the digest that fits the
 * key (SHA-256; none for Ed25519). */
const EVP_MD *tg_ca_sign_md(EVP_PKEY *key);

#endif /* TG_CA_STORE_H */
