/*
 * tg_p11.h — libtgp11, the host-side PKCS#11 layer.
 *
 * Every host program reaches keys through this API, whatever the token:
 * a smart card through OpenSC's module, an HSM, SoftHSM2 in tests. Keys and
 * tokens are always named by RFC 7512 `pkcs11:` URIs (parsed by p11-kit),
 * never by slot index unless the URI carries `slot-id`.
 *
 *   struct tg_p11 *p11;         one per process, shared by its threads
 *   struct tg_p11_key *key;
 *   struct tg_error err;
 *   tg_p11_new(&p11, &err);
 *   tg_p11_key_find(p11, "pkcs11:token=alice;object=api?pin-source=file:/run/pin",
 *                   0, &key, &err);
 *   tg_p11_ssl_ctx_use_key(ssl_ctx, key, NULL, &err); // NULL: the token's
 *                                                    // certificate; TLS
 *                                                    // client or server
 *   ...
 *   SSL_CTX_free(ssl_ctx);      before the key: it holds the key's EVP_PKEY
 *   tg_p11_key_free(key);
 *   tg_p11_free(p11);
 * (each call returns 0 or a TG_ERR_* code with err's message; checks
 * left out here).
 *
 * Modules: p11-kit's proxy module (`p11-kit-proxy.so`) is the default, so
 * every module registered in /usr/share/p11-kit/modules (OpenSC, SoftHSM2)
 * works with no path; the URI query attribute `module-path=` loads a module
 * by path instead, `module-name=` loads a registered module by name. Each
 * module is loaded once per context and shared by every token and key found
 * through it. Use one context per process: freeing a context finalizes its
 * modules (C_Finalize), which would pull them from under a second context. The context detects a fork() (pid change) and re-initializes
 * the modules in the child before its next call; keys found before the fork
 * stay usable in the child (libp11 reopens its sessions). fork() waits
 * (pthread_atfork) until no thread of the process holds a context's lock,
 * i.e. is inside a setup call or a presence watcher's module call, and the
 * child gets the lock fresh: a fork never deadlocks the child on it.
 *
 * Threads: a context, its tokens and keys may be used from several threads
 * at once. Signatures run on a pool of sessions per token (libp11's), so
 * threads do not serialise on one lock. Setup calls (find, login, keygen,
 * import) take a per-context lock.
 *
 * Errors: every function returning int returns 0 or a negative TG_ERR_*
 * code (tg_err.h) and, when err is not NULL, fills it with a message that
 * names the thing and the fix, e.g.
 *   token 'alice' not found; tokens present: 'tg-test' (SoftHSM project,
 *   serial 1a2b...), 'PIV_II' (piv_II); check the URI's token= attribute
 * Free functions accept NULL.
 *
 * Security: no function of this API reads or returns
 * private key material; keys whose CKA_EXTRACTABLE is true or CKA_SENSITIVE
 * false are refused unless the caller passes TG_P11_KEY_ALLOW_EXPORTABLE,
 * keys imported, once exportable or of unknown origin unless it passes
 * TG_P11_KEY_ALLOW_IMPORTED (tg_p11_key_trust_check).
 *
 * PINs: never logged, never in a message (URIs are shown with
 * pin-value=***, tg_p11_uri_mask), and never kept by this library's
 * structures: a token and its keys keep the URI without its pin-value
 * (tg_p11_token_uri) and the description of its PIN source (tg_pin_src.h);
 * the PIN is read at each login into a stack buffer wiped right after
 * C_Login. A pin-value serves the call that parsed the URI only; commands
 * that log in again (presence watching, the gate, the agent) take the PIN
 * from pin-source= or TOKENGATE_PIN. One copy is outside our control:
 * libp11 keeps the PIN of its last PKCS11_login in the slot (to log its
 * sessions in again in a child after fork()) until logout or the context
 * is freed.
 */
#ifndef TG_P11_H
#define TG_P11_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tg_err.h"
#include "tg_pin_src.h"
#include "tg_piv.h"

struct tg_p11;       /* context: loaded modules, fork state, lock */
struct tg_p11_uri;   /* a parsed pkcs11: URI */
struct tg_p11_token; /* a selected token (one slot of one module) */
struct tg_p11_key;   /* a private key on a token */
struct tg_p11_watch; /* a presence watcher on a token */

/* ------------------------------------------------------------------ */
/* Context                                                             */
/* ------------------------------------------------------------------ */

/*
 * Creates a context. Loads no module yet: modules are loaded on first use
 * (the proxy module, or the URI's module-path/module-name). Returns 0 and
 * *out (free with tg_p11_free), or TG_ERR_ALLOC.
 */
int tg_p11_new(struct tg_p11 **out, struct tg_error *err);

/*
 * Frees a context: logs out nothing (other processes may share the login),
 * closes sessions, finalizes and unloads the modules. Every token, key,
 * watcher and EVP_PKEY obtained through the context must be freed first.
 * NULL is accepted.
 */
void tg_p11_free(struct tg_p11 *p);

/* Path of the default module (p11-kit's proxy), as loaded by dlopen. */
const char *tg_p11_default_module(void);

/* A module registered with p11-kit. */
struct tg_p11_module_info {
	char name[64];  /* registry name, e.g. "softhsm2", "opensc-pkcs11" */
	char path[256]; /* its file */
};

/*
 * The modules registered with p11-kit that its proxy loads (those with
 * "disable-in: p11-kit-proxy" are left out), without initializing them.
 * Returns 0 and *out (array of *n, free with free(); NULL when none), or
 * TG_ERR_MODULE when the registry cannot be read.
 */
int tg_p11_modules_list(struct tg_p11_module_info **out, size_t *n, struct tg_error *err);

/* ------------------------------------------------------------------ */
/* URIs (RFC 7512, parsed by p11-kit's p11_kit_uri_parse)              */
/* ------------------------------------------------------------------ */

/* String attributes of a URI (path and query parts). */
enum tg_p11_uri_attr {
	TG_P11_URI_TOKEN,            /* token=  (token label) */
	TG_P11_URI_MANUFACTURER,     /* manufacturer= (token manufacturer) */
	TG_P11_URI_SERIAL,           /* serial= */
	TG_P11_URI_MODEL,            /* model= */
	TG_P11_URI_OBJECT,           /* object= (CKA_LABEL) */
	TG_P11_URI_TYPE,             /* type= private|public|cert|secret-key|data */
	TG_P11_URI_LIB_MANUFACTURER, /* library-manufacturer= */
	TG_P11_URI_LIB_DESCRIPTION,  /* library-description= */
	TG_P11_URI_SLOT_DESCRIPTION, /* slot-description= */
	TG_P11_URI_MODULE_PATH,      /* ?module-path= */
	TG_P11_URI_MODULE_NAME,      /* ?module-name= */
	TG_P11_URI_PIN_VALUE,        /* ?pin-value= (a secret) */
	TG_P11_URI_PIN_SOURCE,       /* ?pin-source= file:PATH | PATH | env:NAME */
	TG_P11_URI_ATTR_COUNT,
};

/*
 * Parses s as a pkcs11: URI. Returns 0 and *out (free with
 * tg_p11_uri_free), or TG_ERR_URI with a message that shows the URI and
 * the offending part, e.g.
 *   malformed PKCS#11 URI 'pkcs11:token=a%zz': bad percent-encoding in
 *   'token=a%zz'
 * Unknown path attributes are an error (p11-kit's rule); unknown query
 * attributes are ignored (RFC 7512 6.2). A pin-value is wiped when the
 * URI is freed. The URI never appears in messages with its pin-value: it is
 * shown with pin-value=*** instead.
 */
int tg_p11_uri_parse(const char *s, struct tg_p11_uri **out, struct tg_error *err);

/*
 * Sets the URI's module-path to path and drops its module-name, then
 * formats it (p11-kit's p11_kit_uri_format; the pin-value and pin-source
 * are kept). Returns 0 and *out (heap string; it may hold a PIN: wipe and
 * free with tg_strfreezero), or TG_ERR_URI / TG_ERR_ALLOC.
 */
int tg_p11_uri_with_module(struct tg_p11_uri *u, const char *path, char **out,
                           struct tg_error *err);

/* Frees (and wipes) a parsed URI. NULL is accepted. */
void tg_p11_uri_free(struct tg_p11_uri *u);

/*
 * The value of attribute a (decoded, NUL-terminated), or NULL when the URI
 * does not carry it. Borrowed: valid until tg_p11_uri_free.
 */
const char *tg_p11_uri_get(const struct tg_p11_uri *u, enum tg_p11_uri_attr a);

/* The id= attribute (CKA_ID bytes): 1 and *id, *len when present (borrowed),
 * else 0. */
int tg_p11_uri_id(const struct tg_p11_uri *u, const uint8_t **id, size_t *len);

/* The slot-id= attribute: 1 and *slot when present, else 0. */
int tg_p11_uri_slot_id(const struct tg_p11_uri *u, unsigned long *slot);

/*
 * A copy of s (any string, a URI or not) with the value of every
 * "pin-value=" (up to the next '&') replaced by "***": the one redaction
 * for messages and logs. Returns a heap string (free with free()) or NULL
 * when out of memory.
 */
char *tg_p11_uri_mask(const char *s);

/*
 * Formats u with p11-kit's p11_kit_uri_format, always WITHOUT its
 * pin-value: the form structures keep and programs print. When u had a
 * pin-value and no pin-source and pin_source is not NULL, pin-source=
 * pin_source is put in its place (e.g. "env:TOKENGATE_PIN" for a command
 * printed to be pasted). u is left as parsed. Returns 0 and *out (heap
 * string, free with free()), or TG_ERR_URI.
 */
int tg_p11_uri_format(const struct tg_p11_uri *u, const char *pin_source, char **out,
                      struct tg_error *err);

/*
 * Describes the URI's PIN source (tg_pin_src.h): its pin-value (copied, one
 * read), else its pin-source (file:PATH, PATH or env:NAME), else the
 * default (TOKENGATE_PIN, then a prompt). Reads no secret. Returns 0 and
 * *out (free with tg_pin_src_free), or TG_ERR_INVALID_ARG for a pin-source
 * that is not a source, TG_ERR_ALLOC.
 */
int tg_p11_uri_pin_src(const struct tg_p11_uri *u, struct tg_pin_src **out, struct tg_error *err);

/* ------------------------------------------------------------------ */
/* Algorithms                                                          */
/* ------------------------------------------------------------------ */

/* The algorithms tokengate generates and names (those of tg_piv.h's table
 * with a command-line name; each value is its PIV algorithm id), and the
 * keys it only finds. */
enum tg_p11_alg {
	TG_P11_ALG_UNKNOWN = 0,
	TG_P11_ALG_EC_P256 = TG_PIV_ALG_ECCP256,
	TG_P11_ALG_EC_P384 = TG_PIV_ALG_ECCP384,
	TG_P11_ALG_RSA_2048 = TG_PIV_ALG_RSA2048,
	TG_P11_ALG_RSA_3072 = TG_PIV_ALG_RSA3072,
	TG_P11_ALG_RSA_OTHER = 0x100, /* RSA of another size (found, not generated) */
	TG_P11_ALG_EC_OTHER = 0x101,  /* EC on another curve (found, not generated) */
};

/* "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" (the command-line names
 * of tg_piv.h's table) -> 0 and *alg, else TG_ERR_INVALID_ARG. */
int tg_p11_alg_parse(const char *s, enum tg_p11_alg *alg);

/* The name of an algorithm ("ec-p256", ..., "rsa", "ec", "unknown"). */
const char *tg_p11_alg_name(enum tg_p11_alg alg);

/* ------------------------------------------------------------------ */
/* Tokens                                                              */
/* ------------------------------------------------------------------ */

/* What a token says about itself (C_GetTokenInfo, trimmed strings). */
struct tg_p11_token_info {
	char module[256];      /* module path this token was found through */
	char lib_desc[33];     /* module's library description */
	unsigned long slot_id; /* the module's slot id (informative only) */
	char slot_desc[65];
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	int initialized;         /* CKF_TOKEN_INITIALIZED */
	int login_required;      /* CKF_LOGIN_REQUIRED */
	int protected_auth_path; /* CKF_PROTECTED_AUTHENTICATION_PATH */
	int pin_count_low;       /* CKF_USER_PIN_COUNT_LOW */
	int pin_final_try;       /* CKF_USER_PIN_FINAL_TRY */
	int pin_locked;          /* CKF_USER_PIN_LOCKED */
	unsigned long flags;     /* every CKF_* bit of CK_TOKEN_INFO.flags */
};

/*
 * Lists the tokens present in the module the URI names (default: the proxy
 * module, i.e. every registered module) that match the URI's token and
 * library attributes (uri may be NULL or "pkcs11:" for all). Returns 0 and
 * *out, an array of *n entries (caller frees with free(); *out is NULL when
 * *n is 0), or TG_ERR_URI / TG_ERR_MODULE / TG_ERR_PKCS11.
 */
int tg_p11_tokens_list(struct tg_p11 *p, const char *uri, struct tg_p11_token_info **out, size_t *n,
                       struct tg_error *err);

/*
 * Selects exactly one token matching the URI's token attributes (token,
 * manufacturer, serial, model; slot-id if given; library attributes).
 * Uninitialized tokens (CKF_TOKEN_INITIALIZED clear, e.g. the spare slot
 * SoftHSM2 always shows) never match: they neither make a selection
 * ambiguous nor are chosen. Keeps the URI without its pin-value and the
 * description of its PIN source (tg_p11_uri_pin_src; a bad pin-source is
 * TG_ERR_INVALID_ARG here). No login. Returns 0 and *out (free with tg_p11_token_free), or
 *   TG_ERR_TOKEN_NOT_FOUND  "token 'alice' not found; tokens present: ..."
 *   TG_ERR_TOKEN_AMBIGUOUS  "2 tokens match 'pkcs11:manufacturer=...':
 *                            ...; add token= or serial= to the URI"
 *   TG_ERR_URI, TG_ERR_MODULE.
 */
int tg_p11_token_open(struct tg_p11 *p, const char *uri, struct tg_p11_token **out,
                      struct tg_error *err);

/* Frees a token handle (keys found on it must be freed first). */
void tg_p11_token_free(struct tg_p11_token *t);

/* The token's description (borrowed; refreshed by tg_p11_token_login). */
const struct tg_p11_token_info *tg_p11_token_get_info(const struct tg_p11_token *t);

/*
 * The URI the token was opened with, as the token keeps it: formatted by
 * tg_p11_uri_format, so without any pin-value (borrowed, lives as long as
 * the token). Neither the token nor its keys keep a PIN: only this URI and
 * the description of its PIN source.
 */
const char *tg_p11_token_uri(const struct tg_p11_token *t);

#define TG_P11_LOGIN_INTERACTIVE 0x1 /* may prompt on the terminal */

/*
 * Logs the user in. The PIN is read (tg_pin_src_read) only now, into a
 * stack buffer wiped right after C_Login, from the PIN source of u, or,
 * when u is NULL, from the source of the URI the token was opened with
 * (described at tg_p11_token_open; a pin-value there serves this login
 * only and is wiped after it: a later one, e.g. after the token was
 * reinserted, is refused with TG_ERR_NO_PIN naming pin-source= and
 * TOKENGATE_PIN, which long-running commands use). A token already
 * logged in (by this
 * process) is left as it is; a token with a protected authentication path
 * (PIN pad) logs in with a NULL PIN. A wrong PIN is tried exactly once,
 * never retried, and reported with the token's state:
 *   TG_ERR_PIN_INCORRECT "wrong PIN for token 'alice' (few tries left |
 *                         final try left); ..."
 *   TG_ERR_PIN_LOCKED    "the user PIN of token 'alice' is locked; unblock
 *                         it with the SO PIN (e.g. pkcs11-tool --init-pin)"
 *   TG_ERR_NO_PIN, TG_ERR_LOGIN (other CKR_*), TG_ERR_IO /
 *   TG_ERR_PERMISSION (pin-source file or variable, tg_pin_src_read).
 */
int tg_p11_token_login(struct tg_p11_token *t, const struct tg_p11_uri *u, unsigned flags,
                       struct tg_error *err);

/* What kind of object a listing entry is. */
enum tg_p11_obj_class {
	TG_P11_OBJ_PRIVATE_KEY,
	TG_P11_OBJ_PUBLIC_KEY,
	TG_P11_OBJ_CERT,
	TG_P11_OBJ_OTHER,
};

/*
 * Trust attributes of a private key and the verdict drawn from them
 * (tg_p11_trust_verdict). Each verdict but OK is refused by tg_p11_key_find
 * unless the caller opts in: EXPORTABLE with TG_P11_KEY_ALLOW_EXPORTABLE;
 * IMPORTED, ONCE_EXPORTABLE and UNKNOWN with TG_P11_KEY_ALLOW_IMPORTED.
 */
enum tg_p11_verdict {
	TG_P11_TRUST_OK,              /* sensitive, never extractable, generated on
					 the token (CKA_LOCAL, or card evidence on
					 an emulated token) */
	TG_P11_TRUST_IMPORTED,        /* non-exportable, but not generated on the
					 token (CKA_LOCAL false, or the card says
					 imported): a copy may exist elsewhere */
	TG_P11_TRUST_EXPORTABLE,      /* CKA_EXTRACTABLE true or CKA_SENSITIVE
					 false */
	TG_P11_TRUST_ONCE_EXPORTABLE, /* non-exportable now, but
					 CKA_NEVER_EXTRACTABLE or
					 CKA_ALWAYS_SENSITIVE false */
	TG_P11_TRUST_UNKNOWN,         /* an attribute not reported or neither
					 true nor false, or a PKCS#15-emulated
					 token without card evidence */
};

/* Values of the attribute fields of struct tg_p11_trust besides 1/0. */
#define TG_P11_ATTR_ABSENT  (-1) /* the token did not report it */
#define TG_P11_ATTR_INVALID (-2) /* a CK_BBOOL other than 0 or 1 */

/* Where the key came from, as evidence from the card itself says. */
enum tg_p11_origin {
	TG_P11_ORIGIN_NONE = 0,  /* no evidence given */
	TG_P11_ORIGIN_GENERATED, /* generated on the card */
	TG_P11_ORIGIN_IMPORTED,  /* imported into the card */
};

struct tg_p11_trust {
	/* 1 true, 0 false, TG_P11_ATTR_ABSENT, TG_P11_ATTR_INVALID */
	int sensitive;             /* CKA_SENSITIVE */
	int extractable;           /* CKA_EXTRACTABLE */
	int never_extractable;     /* CKA_NEVER_EXTRACTABLE */
	int always_sensitive;      /* CKA_ALWAYS_SENSITIVE */
	int local;                 /* CKA_LOCAL */
	int always_authenticate;   /* CKA_ALWAYS_AUTHENTICATE */
	int private_obj;           /* CKA_PRIVATE: only visible after login */
	int emulated;              /* 1: token model "PKCS#15..." (OpenSC): its
				    CKA_LOCAL, CKA_NEVER_EXTRACTABLE and
				    CKA_ALWAYS_SENSITIVE are not evidence */
	enum tg_p11_origin origin; /* card evidence (tg_p11_key_origin_set) */
	char evidence[64];         /* what the evidence was, e.g. "PIV metadata" */
	enum tg_p11_verdict verdict;
	char reason[512]; /* why, naming the attribute(s), for users and logs */
};

/*
 * The verdict as a pure function of tr's attribute fields, emulated flag
 * and origin evidence; sets tr->verdict and tr->reason. In order:
 * EXPORTABLE when CKA_EXTRACTABLE is true or CKA_SENSITIVE false; UNKNOWN
 * when either is not 0/1; IMPORTED when the evidence says imported; on an
 * emulated token OK with evidence "generated", else UNKNOWN; otherwise
 * ONCE_EXPORTABLE when CKA_NEVER_EXTRACTABLE or CKA_ALWAYS_SENSITIVE is
 * false, UNKNOWN when one of them or CKA_LOCAL is not 0/1, IMPORTED when
 * CKA_LOCAL is false, else OK.
 */
void tg_p11_trust_verdict(struct tg_p11_trust *tr);

/* 1 when a token model (C_GetTokenInfo) is PKCS#15 ("PKCS#15 emulated"
 * for OpenSC's PIV and other emulations): attributes are not evidence. */
int tg_p11_trust_emulated(const char *model);

/* "ok", "imported", "once-exportable", "unknown", "exportable". */
const char *tg_p11_verdict_name(enum tg_p11_verdict v);

/* One object of a token listing. */
struct tg_p11_object_info {
	enum tg_p11_obj_class cls;
	char label[128];
	uint8_t id[64];            /* the first id_len bytes of CKA_ID */
	size_t id_len;             /* bytes in id: min(id_full_len, 64) */
	size_t id_full_len;        /* the whole CKA_ID's length; when larger than
			       id_len, listings show the first 64 bytes in hex
			       followed by "...(N bytes)" */
	enum tg_p11_alg alg;       /* keys and certificates */
	int bits;                  /* key size in bits, 0 unknown */
	struct tg_p11_trust trust; /* private keys only */
	char subject[256];         /* certificates: one-line subject */
	char not_after[32];        /* certificates: ISO 8601 */
};

/*
 * Lists the keys and certificates on the token (private keys are listed only
 * when logged in or when the token shows them without login). Returns 0 and
 * *out (array of *n, free with free()), or TG_ERR_PKCS11.
 */
int tg_p11_token_objects_list(struct tg_p11_token *t, struct tg_p11_object_info **out, size_t *n,
                              struct tg_error *err);

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

#define TG_P11_KEY_ALLOW_EXPORTABLE                                                                \
	0x1                        /* do not refuse a key whose verdict is
					  EXPORTABLE (still computed and
					  reported) */
#define TG_P11_KEY_INTERACTIVE 0x2 /* login may prompt on the terminal */
#define TG_P11_KEY_NO_LOGIN                                                                        \
	0x4 /* do not log in (public operations;
					  listing) */
#define TG_P11_KEY_ALLOW_IMPORTED                                                                  \
	0x8 /* do not refuse a key whose verdict
					  is IMPORTED, ONCE_EXPORTABLE or
					  UNKNOWN */
#define TG_P11_KEY_DEFER_TRUST                                                                     \
	0x10 /* find without the trust refusal:
					   the caller adds evidence
					   (tg_p11_key_origin_set) and then
					   calls tg_p11_key_trust_check */
#define TG_P11_KEY_NO_OPTIN                                                                        \
	0x20 /* the caller offers no opt-in (no
					   --allow-exportable or
					   --allow-imported): a refusal names
					   only the real fix, a key generated
					   on the token */

/*
 * Finds one private key: selects the token (tg_p11_token_open), logs in
 * (tg_p11_token_login, unless TG_P11_KEY_NO_LOGIN), finds the private key
 * by the URI's object= and/or id= (one of them is required) and binds the
 * result to that one object handle:
 *  - its public key is the private object's own CKA_EC_POINT (with
 *    CKA_EC_PARAMS) or CKA_MODULUS + CKA_PUBLIC_EXPONENT when the module
 *    shows them there; otherwise public-key objects and certificates with
 *    its CKA_ID are only candidates, and the one taken is the one that
 *    verifies a signature made through the handle over a fresh random
 *    challenge (a planted public-key object never verifies). When none is
 *    proven (or no login allows the signature) the key is still found,
 *    without a public key: tg_p11_key_public returns NULL, and
 *    tg_p11_key_public_pem, tg_p11_key_sign_test, tg_p11_key_cert_get and
 *    tg_p11_ssl_ctx_use_key refuse with TG_ERR_CERT_MISMATCH "the public
 *    key of key 'k' on token 't' cannot be established: ..." until
 *    tg_p11_key_prove (or importing its own certificate) proves one.
 *  - its CKA_ID and CKA_LABEL are kept whole, whatever their length.
 * It then reads the trust attributes (tg_p11_trust_read) and, unless
 * TG_P11_KEY_DEFER_TRUST, applies tg_p11_key_trust_check(k, flags).
 * A key with CKA_ALWAYS_AUTHENTICATE
 * gets the context-specific login before each signature with the PIN read
 * again from the URI's source (pin-source, TOKENGATE_PIN; never kept in
 * memory), as long as one token of the module has such keys. A pin-value
 * serves this call only (its login and the signatures that prove the key)
 * and is wiped before it returns: the key keeps no PIN, and a later
 * signature of such a key is refused by tg_p11_key_evp_get with
 * TG_ERR_NO_PIN naming pin-source= and TOKENGATE_PIN.
 * Returns 0 and *out (free with
 * tg_p11_key_free), or
 *   TG_ERR_KEY_NOT_FOUND   "no private key 'api' on token 'alice'; keys
 *                           present: 'web' (id 01), ..."
 *   TG_ERR_KEY_AMBIGUOUS   "2 private keys match ...; add id= to the URI"
 *   TG_ERR_KEY_EXPORTABLE  the trust refusal (tg_p11_key_trust_check)
 * and every error of tg_p11_token_open / tg_p11_token_login.
 */
int tg_p11_key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                    struct tg_error *err);

/* Frees a key handle and its token handle. NULL is accepted. EVP_PKEYs
 * obtained from the key must be freed first. */
void tg_p11_key_free(struct tg_p11_key *k);

/* The key's token (borrowed, lives as long as the key). */
struct tg_p11_token *tg_p11_key_token(struct tg_p11_key *k);

/* The key's label (CKA_LABEL, "" when none) and id (CKA_ID); borrowed. */
const char *tg_p11_key_label(const struct tg_p11_key *k);
const uint8_t *tg_p11_key_id(const struct tg_p11_key *k, size_t *len);

/* The key's algorithm. */
enum tg_p11_alg tg_p11_key_alg(const struct tg_p11_key *k);

/*
 * The key's URI (no PIN), as tg_p11_object_uri formats one: the token's
 * label, manufacturer, model and serial, the key's id and label,
 * type=private. Returns 0 and *out (heap string, free with free()),
 * TG_ERR_ALLOC or TG_ERR_URI.
 */
int tg_p11_key_uri(const struct tg_p11_key *k, char **out);

/*
 * The pkcs11: URI of token ti (o NULL) or of object o on it, formatted with
 * p11-kit's p11_kit_uri_format: the token's label, manufacturer, model and
 * serial, and the object's type, label and id (left out when the listing
 * kept only part of a long id). Returns 0 and *out (heap string, free with
 * free()), TG_ERR_ALLOC or TG_ERR_URI.
 */
int tg_p11_object_uri(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *o,
                      char **out);

/*
 * The trust attributes read when the key was found (C_GetAttributeValue of
 * CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE,
 * CKA_ALWAYS_SENSITIVE, CKA_LOCAL, CKA_ALWAYS_AUTHENTICATE, CKA_PRIVATE) and the verdict
 * with its reason. Returns 0 (always, for a found key).
 */
int tg_p11_key_trust(const struct tg_p11_key *k, struct tg_p11_trust *out);

/*
 * Applies the default trust policy to the key's verdict: refuses
 * (TG_ERR_KEY_EXPORTABLE) EXPORTABLE unless TG_P11_KEY_ALLOW_EXPORTABLE, and
 * IMPORTED, ONCE_EXPORTABLE, UNKNOWN unless TG_P11_KEY_ALLOW_IMPORTED, with
 * a message naming the verdict, the attribute(s) and the opt-in (with
 * TG_P11_KEY_NO_OPTIN only the real fix, a key generated on the token), e.g.
 *   key 'api' on token 'alice' is refused (once-exportable):
 *   CKA_NEVER_EXTRACTABLE is false: the key was extractable once; ...;
 *   generate the key on the token (tokengate token keygen) or accept it
 *   explicitly (--allow-imported, TG_P11_KEY_ALLOW_IMPORTED)
 * Returns 0 when the key passes.
 */
int tg_p11_key_trust_check(const struct tg_p11_key *k, unsigned flags, struct tg_error *err);

/*
 * Card evidence of the key's origin, supplied by the host (libtgp11 has no
 * PC/SC of its own): e.g. the origin of PIV GET METADATA (tag 03) of the
 * card slot whose public key equals tg_p11_key_public(k) — the caller must
 * make that match. `evidence` names it in the reason ("PIV metadata").
 * Recomputes the verdict (tg_p11_trust_verdict). Returns 0, or
 * TG_ERR_INVALID_ARG for an origin other than GENERATED/IMPORTED.
 */
int tg_p11_key_origin_set(struct tg_p11_key *k, enum tg_p11_origin origin, const char *evidence);

/*
 * Proves that cand is the key's public key: signs a fresh random challenge
 * through the key's own object handle and verifies it with cand. When the
 * key had no established public key (tg_p11_key_public NULL), cand becomes
 * it; otherwise cand must equal it. Needs a login. The CA uses it with a
 * CSR's key, import-cert with the certificate's key. Returns 0, or
 * TG_ERR_CERT_MISMATCH "key 'k' on token 't' signed a random challenge,
 * but the signature does not verify with the public key given: ..." /
 * TG_ERR_PKCS11 (the token could not sign) / TG_ERR_CRYPTO.
 */
int tg_p11_key_prove(struct tg_p11_key *k, EVP_PKEY *cand, struct tg_error *err);

/*
 * The private key as an OpenSSL key whose signatures happen on the token
 * (libp11's RSA_METHOD / EC_KEY_METHOD calling C_Sign). RSA-PSS: OpenSSL
 * 3 treats the libp11 key as a legacy "foreign" key, pads PSS in software
 * and has libp11 do a raw RSA operation (CKM_RSA_X_509) on the token, so the
 * module must offer CKM_RSA_X_509 (SoftHSM2 and OpenSC do). Usable by SSL_CTX_use_PrivateKey for TLS 1.2 and
 * 1.3, client and server: ECDSA, RSA PKCS#1 v1.5, RSA-PSS; and by
 * EVP_DigestSign for CSRs. Returns a new reference (caller frees with
 * EVP_PKEY_free) or NULL on failure, and NULL while a presence watcher has
 * the key unbound (from a token's insertion until it is proven the same
 * key, and after TG_P11_EV_REPLACED). The EVP_PKEY refers to the key: free
 * it before the key. Thread-safe: several threads may sign with it at once.
 *
 * The same object, not a second lookup: libp11 hides object handles, so
 * before the EVP_PKEY is first handed out (and after the watcher rebuilt
 * it) tg_p11_key_evp_get checks that exactly one private key object has
 * the key's whole CKA_ID and CKA_LABEL, both through our C_FindObjects
 * (that one being the key's handle) and in libp11's enumeration, and that
 * libp11's key signs a fresh random challenge that verifies with the
 * key's proven public key (a key without an established public key gets
 * the uniqueness check only: checking its signatures is then the caller's,
 * as the CA does against the CSR's key; TLS, sign-test and CSRs all need
 * the public key and refuse first). tg_p11_key_evp is tg_p11_key_evp_get
 * without the message.
 */
EVP_PKEY *tg_p11_key_evp(struct tg_p11_key *k);

/*
 * As tg_p11_key_evp, with the reason of a refusal: 0 and *out (new
 * reference), or TG_ERR_KEY_AMBIGUOUS ("2 private key objects on token 't'
 * have the id and label of key 'k'; ...") / TG_ERR_CERT_MISMATCH ("libp11's
 * key for 'k' ... does not verify with the key's public key") /
 * TG_ERR_CRYPTO / TG_ERR_KEY_NOT_FOUND.
 */
int tg_p11_key_evp_get(struct tg_p11_key *k, EVP_PKEY **out, struct tg_error *err);

/*
 * The public key (built from the token's public attributes; no login
 * needed). Returns a new reference (caller frees) or NULL.
 */
EVP_PKEY *tg_p11_key_public(struct tg_p11_key *k);

/* The public key as SubjectPublicKeyInfo PEM. 0 and *pem (NUL-terminated,
 * free with free()), or TG_ERR_CRYPTO / TG_ERR_ALLOC. */
int tg_p11_key_public_pem(struct tg_p11_key *k, char **pem, struct tg_error *err);

/*
 * Signs `len` bytes of data with the key on the token (digest SHA-256 for
 * ECDSA and RSA PKCS#1 v1.5; for RSA with pss non-zero, RSA-PSS with
 * SHA-256, MGF1-SHA-256, salt = digest length) and verifies the signature
 * with the public key. Returns 0 and *sig, *siglen (free with free()), or
 * TG_ERR_CRYPTO with OpenSSL's reason, TG_ERR_PKCS11.
 */
int tg_p11_key_sign_test(struct tg_p11_key *k, int pss, const uint8_t *data, size_t len,
                         uint8_t **sig, size_t *siglen, struct tg_error *err);

/* ------------------------------------------------------------------ */
/* Key generation                                                      */
/* ------------------------------------------------------------------ */

/*
 * Generates a key pair on the token named by the URI (object= gives the
 * label, id= the CKA_ID; without id= a random 16-byte id is chosen), with
 * the non-exportable template: private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE=true, CKA_EXTRACTABLE=false, CKA_SIGN=true; public key
 * CKA_TOKEN, CKA_VERIFY. Logs in first (flags as for tg_p11_key_find).
 * Refuses (TG_ERR_INVALID_ARG) when a private key with the same label or id
 * exists. Returns 0 and *out (the new key, already trust-checked; free with
 * tg_p11_key_free; out may be NULL), or TG_ERR_PKCS11 naming the CKR_* code
 * (e.g. the module does not support the mechanism), plus the errors of
 * tg_p11_token_open/login.
 */
int tg_p11_keygen(struct tg_p11 *p, const char *uri, enum tg_p11_alg alg, unsigned flags,
                  struct tg_p11_key **out, struct tg_error *err);

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

/*
 * The key's certificate: the certificate object with the key's CKA_ID (the
 * first one whose public key matches when there are several). Returns 0 and
 * *out (new reference, caller X509_free), TG_ERR_NOT_FOUND ("no
 * certificate with id 01 on token 'alice'; install one with tokengate token
 * import-cert"), or TG_ERR_CERT_MISMATCH when certificates with that id
 * exist but none matches the key's public key.
 */
int tg_p11_key_cert_get(struct tg_p11_key *k, X509 **out, struct tg_error *err);

/*
 * Stores cert on the key's token as a certificate object with the key's
 * CKA_ID and the given label (NULL: the key's label). Checks first that the
 * certificate's public key is the key's (TG_ERR_CERT_MISMATCH otherwise,
 * nothing stored). A certificate already stored with the same id and the
 * same DER is left as it is (0); one with the same id and different DER is
 * replaced only when `replace` is non-zero, else TG_ERR_INVALID_ARG.
 */
int tg_p11_key_cert_import(struct tg_p11_key *k, X509 *cert, const char *label, int replace,
                           struct tg_error *err);

/*
 * Installs the token key, and its certificate from the token when `cert`
 * is NULL, into an SSL_CTX (SSL_CTX_use_certificate, SSL_CTX_use_PrivateKey,
 * SSL_CTX_check_private_key). The SSL_CTX holds its own reference to the
 * EVP_PKEY, which refers to the key: free the SSL_CTX (and its SSLs) before
 * the key. Works for client and server contexts, TLS 1.2 and 1.3. Returns
 * 0, or TG_ERR_NOT_FOUND / TG_ERR_CERT_MISMATCH / TG_ERR_TLS.
 */
int tg_p11_ssl_ctx_use_key(SSL_CTX *ctx, struct tg_p11_key *k, X509 *cert, struct tg_error *err);

/* ------------------------------------------------------------------ */
/* Presence                                                            */
/* ------------------------------------------------------------------ */

enum tg_p11_event {
	TG_P11_EV_REMOVED,        /* the token left its slot; the key is
				      unbound (tg_p11_key_evp NULL) until
				      INSERTED */
	TG_P11_EV_INSERTED,       /* the token is back (and logged in again,
				      when relogin succeeded) */
	TG_P11_EV_RELOGIN_FAILED, /* back, but relogin failed (message says
				      why; no PIN retried) */
	TG_P11_EV_REPLACED,       /* a token with the same serial and label
				      came in, but it is not the token the key
				      was checked on: another public key, a
				      key refused now or with a worse trust
				      verdict, or a failed proof of
				      possession. The key stays unbound (its
				      signatures fail) until the original
				      token is back; the message says
				      whether the PIN was sent to it (only
				      when it could not be told apart
				      before login; it was logged out
				      again) */
};

/* One event; msg is a one-line description. */
struct tg_p11_watch_event {
	enum tg_p11_event ev;
	char token_label[33];
	char msg[512];
};

/*
 * Called from the watcher's thread for each event. Must not call
 * tg_p11_watch_stop on its own watcher.
 */
typedef void (*tg_p11_watch_fn)(void *arg, const struct tg_p11_watch_event *ev);

/*
 * Watches the key's token: a thread polls the slot every interval_ms (at
 * most 250; 0 means 250) and reports removal and insertion. Blocking
 * C_WaitForSlotEvent is not used: only C_Finalize could interrupt it, which
 * would end every other user of the shared module (see watch.c). With
 * OpenSC a change shows within about a second (its slot-state cache). Each
 * poll is one C_GetSlotInfo; the token's info (C_GetTokenInfo) is read
 * only when the slot goes from empty to full, and a token whose serial or
 * label differs from the key's token, or whose serial is empty, is left
 * alone (no event). A token with the key's serial and label is bound
 * again only when it is the same key, checked in this order:
 *   1. without login: the key as the token shows it (found as with
 *      TG_P11_KEY_NO_LOGIN, same policy flags as the key) must not be
 *      refused now nor have a worse trust verdict than when the watcher
 *      started (card evidence set with tg_p11_key_origin_set is kept when
 *      the token shows the same public key), and the public key the token
 *      shows for it (the private
 *      key object's own CKA_EC_POINT / CKA_MODULUS where the module
 *      exposes them, else its public key object or certificate: a
 *      candidate only) must be the one the watcher had;
 *   2. login once, with the PIN read again from the key's source when it
 *      is non-interactive (pin-source=, TOKENGATE_PIN; a pin-value was
 *      spent by the lookup, so the re-login fails with RELOGIN_FAILED
 *      naming those sources; a wrong PIN is never retried);
 *   3. the key found again and checked as in 1;
 *   4. proof: it signs a fresh random challenge on the token, and the
 *      signature must verify with the public key the watcher had.
 * Any failure of 1, 3 or 4 is TG_P11_EV_REPLACED (after a login, the
 * token is logged out again); a failure of 2 is TG_P11_EV_RELOGIN_FAILED.
 * EVP_PKEYs obtained before the removal stop working, so callers take a
 * new one (tg_p11_key_evp) after INSERTED.
 * Events go to cb (may be NULL) and to a queue readable through
 * tg_p11_watch_fd / tg_p11_watch_next. A watcher does not survive fork():
 * the child has no watcher thread and must not use or stop it (the
 * context's lock is made safe for the child, see the context notes).
 * Returns 0 and *out (stop with tg_p11_watch_stop), TG_ERR_NOT_FOUND when
 * the key's public key is unknown (nothing to compare a token with), or
 * TG_ERR_ALLOC / TG_ERR_INTERNAL.
 */
int tg_p11_watch_start(struct tg_p11_key *k, unsigned interval_ms, tg_p11_watch_fn cb, void *arg,
                       struct tg_p11_watch **out, struct tg_error *err);

/* A file descriptor that is readable while events are queued (for poll or
 * an event loop). Owned by the watcher. */
int tg_p11_watch_fd(const struct tg_p11_watch *w);

/* Takes the oldest queued event: 1 and *ev, or 0 when none is queued. */
int tg_p11_watch_next(struct tg_p11_watch *w, struct tg_p11_watch_event *ev);

/* 1 when the watcher last saw the token present. */
int tg_p11_watch_present(const struct tg_p11_watch *w);

/* Stops the thread and frees the watcher. NULL is accepted. Stop a
 * watcher before freeing its key. */
void tg_p11_watch_stop(struct tg_p11_watch *w);

#endif /* TG_P11_H */
