/*
 * tg_err.h — tokengate's error codes, one header for every part.
 *
 * Functions return 0 on success or a negative TG_ERR_* code. Codes are
 * grouped by part; add a new code at the end of its group, never renumber.
 * tg_strerror() gives the generic message; where a caller needs a message
 * naming the object and the fix, functions take a struct tg_error * and fill
 * it with tg_error_set() (a new error) or tg_error_wrap() (context added to
 * the error a failed callee left in it).
 */
#ifndef TG_ERR_H
#define TG_ERR_H

#include <stddef.h>

enum tg_err_code {
	TG_OK = 0,

	/* core: -1 .. -19 */
	TG_ERR_INTERNAL = -1,     /* a bug: an invariant did not hold */
	TG_ERR_ALLOC = -2,        /* out of memory */
	TG_ERR_INVALID_ARG = -3,  /* caller passed a bad argument */
	TG_ERR_TRUNCATED = -4,    /* read past the end of the input */
	TG_ERR_NO_SPACE = -5,     /* writer capacity reached */
	TG_ERR_FORMAT = -6,       /* malformed encoding (TLV, DER, frame) */
	TG_ERR_TRAILING = -7,     /* unexpected bytes after a structure */
	TG_ERR_NOT_FOUND = -8,    /* the object asked for does not exist */
	TG_ERR_IO = -9,           /* a file or socket operation failed */
	TG_ERR_CRYPTO = -10,      /* an OpenSSL operation failed */
	TG_ERR_UNSUPPORTED = -11, /* valid but not supported */
	TG_ERR_USAGE = -12,       /* bad command line */
	TG_ERR_TIMEOUT = -13,     /* an operation timed out */
	TG_ERR_CHECKSUM = -14,    /* stored data failed its integrity check */
	TG_ERR_VERSION = -15,     /* stored data has an unknown version */
	TG_ERR_PERMISSION = -16,  /* a file's owner or mode is unsafe */

	/* token / simulator: -20 .. -39 */
	TG_ERR_PIN_INCORRECT = -20,  /* wrong PIN or PUK */
	TG_ERR_PIN_BLOCKED = -21,    /* retry counter at zero */
	TG_ERR_AUTH_REQUIRED = -22,  /* PIN or management key needed */
	TG_ERR_TOUCH_REQUIRED = -23, /* no touch was given in time */
	TG_ERR_PERSIST = -24,        /* state could not be saved */
	TG_ERR_CARD_REMOVED = -25,   /* the card went away */
	TG_ERR_STATUS_WORD = -26,    /* the card answered with an error SW */

	/* PKCS#11 layer: -40 .. -69 */
	TG_ERR_URI = -40,             /* malformed pkcs11: URI */
	TG_ERR_MODULE = -41,          /* a PKCS#11 module failed to load */
	TG_ERR_TOKEN_NOT_FOUND = -42, /* no token matches */
	TG_ERR_TOKEN_AMBIGUOUS = -43, /* more than one token matches */
	TG_ERR_KEY_NOT_FOUND = -44,   /* no key matches */
	TG_ERR_KEY_AMBIGUOUS = -45,   /* more than one key matches */
	TG_ERR_KEY_EXPORTABLE = -46,  /* key fails the trust check */
	TG_ERR_CERT_MISMATCH = -47,   /* certificate and key differ */
	TG_ERR_LOGIN = -48,           /* login failed */
	TG_ERR_PIN_LOCKED = -49,      /* the token's user PIN is locked */
	TG_ERR_PKCS11 = -50,          /* other CKR_* failure */
	TG_ERR_PCSC = -51,            /* a PC/SC call failed */
	TG_ERR_NO_PIN = -52,          /* no PIN source and no terminal */

	/* host (CA, enroll, gate, agent): -70 .. -99 */
	TG_ERR_ATTESTATION = -70, /* attestation failed verification */
	TG_ERR_POLICY = -71,      /* refused by policy */
	TG_ERR_CONFIG = -72,      /* bad configuration */
	TG_ERR_CSR = -73,         /* CSR invalid */
	TG_ERR_IDENTITY = -74,    /* identity / SAN not acceptable */
	TG_ERR_REVOKED = -75,     /* certificate revoked */
	TG_ERR_TLS = -76,         /* TLS failure */
};

/* Generic message for a code; never NULL, also for unknown codes. */
const char *tg_strerror(int code);

/* An error with a message for the user: the object and the fix. */
struct tg_error {
	int code;
	char msg[1024];
};

/*
 * Sets err (if not NULL) to code and the printf-style message, replacing
 * whatever err held, and returns code, so callers write
 * `return tg_error_set(err, TG_ERR_X, ...)`. The message is formatted before
 * err is written, so err->msg may be one of the arguments. A message longer
 * than err->msg is cut short.
 */
int tg_error_set(struct tg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Adds context to the error err already holds (the failed callee's cause) and
 * returns code; NULL err is accepted. err->code becomes code and err->msg
 * "CONTEXT: CAUSE", CONTEXT the printf-style message. CAUSE is err->msg; when
 * err holds no message, it is tg_strerror(err->code) if err->code is not 0,
 * and when err holds neither, err->msg is CONTEXT alone. Context comes first,
 * so when the chain is longer than err->msg the cause is cut short, never the
 * context.
 */
int tg_error_wrap(struct tg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err (code 0, empty message). NULL is accepted. */
void tg_error_clear(struct tg_error *err);

/* The message of err, or tg_strerror(code) when err holds none. */
const char *tg_error_msg(const struct tg_error *err, int code);

#endif /* TG_ERR_H */
