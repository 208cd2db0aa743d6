/* err.c — error codes and user-facing error messages (tg_err.h). */
#include "tg_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct code_msg {
	int code;
	const char *msg;
};

static const struct code_msg messages[] = {
    {TG_OK, "success"},
    {TG_ERR_INTERNAL, "internal error"},
    {TG_ERR_ALLOC, "out of memory"},
    {TG_ERR_INVALID_ARG, "invalid argument"},
    {TG_ERR_TRUNCATED, "input truncated"},
    {TG_ERR_NO_SPACE, "output buffer full"},
    {TG_ERR_FORMAT, "malformed data"},
    {TG_ERR_TRAILING, "unexpected trailing data"},
    {TG_ERR_NOT_FOUND, "not found"},
    {TG_ERR_IO, "input/output error"},
    {TG_ERR_CRYPTO, "cryptographic operation failed"},
    {TG_ERR_UNSUPPORTED, "not supported"},
    {TG_ERR_USAGE, "invalid command line"},
    {TG_ERR_TIMEOUT, "timed out"},
    {TG_ERR_CHECKSUM, "checksum mismatch"},
    {TG_ERR_VERSION, "unknown format version"},
    {TG_ERR_PERMISSION, "unsafe file owner or permissions"},
    {TG_ERR_PIN_INCORRECT, "incorrect PIN"},
    {TG_ERR_PIN_BLOCKED, "PIN blocked"},
    {TG_ERR_AUTH_REQUIRED, "authentication required"},
    {TG_ERR_TOUCH_REQUIRED, "touch required"},
    {TG_ERR_PERSIST, "state could not be saved"},
    {TG_ERR_CARD_REMOVED, "card removed"},
    {TG_ERR_STATUS_WORD, "card returned an error status"},
    {TG_ERR_URI, "malformed PKCS#11 URI"},
    {TG_ERR_MODULE, "PKCS#11 module could not be loaded"},
    {TG_ERR_TOKEN_NOT_FOUND, "token not found"},
    {TG_ERR_TOKEN_AMBIGUOUS, "more than one token matches"},
    {TG_ERR_KEY_NOT_FOUND, "key not found"},
    {TG_ERR_KEY_AMBIGUOUS, "more than one key matches"},
    {TG_ERR_KEY_EXPORTABLE, "key is exportable or not sensitive"},
    {TG_ERR_CERT_MISMATCH, "certificate does not match key"},
    {TG_ERR_LOGIN, "login failed"},
    {TG_ERR_PIN_LOCKED, "PIN locked"},
    {TG_ERR_PKCS11, "PKCS#11 operation failed"},
    {TG_ERR_PCSC, "PC/SC operation failed"},
    {TG_ERR_NO_PIN, "no PIN available"},
    {TG_ERR_ATTESTATION, "attestation verification failed"},
    {TG_ERR_POLICY, "refused by policy"},
    {TG_ERR_CONFIG, "invalid configuration"},
    {TG_ERR_CSR, "invalid certificate request"},
    {TG_ERR_IDENTITY, "identity not acceptable"},
    {TG_ERR_REVOKED, "certificate revoked"},
    {TG_ERR_TLS, "TLS failure"},
};

const char *
tg_strerror(int code)
{
	const char *m = "unknown error";
	size_t i;

	for (i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		if (messages[i].code == code) {
			m = messages[i].msg;
			break;
		}
	}
	return m;
}

/*
 * The one writer of err: the message formatted first (so err->msg may be an
 * argument), then, when wrapping, the held cause after it (see tg_err.h).
 */
static int __attribute__((format(printf, 4, 0)))
error_put(struct tg_error *err, int code, int wrap, const char *fmt, va_list ap)
{
	char ctx[sizeof(err->msg)];
	char cause[sizeof(err->msg)];

	if (err == NULL)
		goto out;
	if (vsnprintf(ctx, sizeof(ctx), fmt, ap) < 0)
		ctx[0] = '\0';
	cause[0] = '\0';
	if (wrap && err->msg[0] != '\0')
		snprintf(cause, sizeof(cause), "%s", err->msg);
	else if (wrap && err->code != 0)
		snprintf(cause, sizeof(cause), "%s", tg_strerror(err->code));
	/* Truncation is intended: context first, the cause cut short. */
	if (cause[0] == '\0' || snprintf(err->msg, sizeof(err->msg), "%s: %s", ctx, cause) < 0)
		snprintf(err->msg, sizeof(err->msg), "%s", ctx);
	err->code = code;
out:
	return code;
}

int
tg_error_set(struct tg_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_put(err, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int
tg_error_wrap(struct tg_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = error_put(err, code, 1, fmt, ap);
	va_end(ap);
	return r;
}

void
tg_error_clear(struct tg_error *err)
{
	if (err != NULL) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

const char *
tg_error_msg(const struct tg_error *err, int code)
{
	if (err != NULL && err->msg[0] != '\0')
		return err->msg;
	return tg_strerror(code);
}
