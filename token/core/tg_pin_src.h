/*
 * tg_pin_src.h — where a user PIN comes from, and reading it only when a
 * login needs it.
 *
 * A PIN source is described when a URI or a command line is parsed (no
 * secret is read then) and read at each login into a struct tg_pin, a
 * fixed buffer the caller keeps on its stack and wipes with tg_pin_wipe
 * right after the login. In order of precedence a source is:
 *   - a value given in a URI (RFC 7512 pin-value): discouraged (visible
 *     in ps and shell history), kept for compatibility. The value is
 *     copied into the source and serves the reads of the one call that
 *     parsed the URI (e.g. a key lookup's login and the signatures that
 *     prove its key); the owner then spends it (tg_pin_src_spend: wiped),
 *     so nothing holds it for a process's lifetime. A read after that (a
 *     re-login after the token came back, a context-specific login before
 *     a later signature) is refused with TG_ERR_NO_PIN and a message
 *     naming pin-source= and TOKENGATE_PIN, which long-running commands
 *     must use.
 *   - pin-source=file:PATH (also file:///PATH or a bare absolute or
 *     relative PATH): read again at each login; like an SSH private key
 *     the file must be the user's and closed to group and others
 *     (tg_file.h; a symbolic link is followed and the file it leads to
 *     checked); one trailing newline (and CR) is dropped.
 *   - pin-source=env:NAME: the environment variable NAME, read at login.
 *   - otherwise the environment variable TOKENGATE_PIN, and when the
 *     read allows it (TG_PIN_INTERACTIVE) and stdin is a terminal, one
 *     prompt on the terminal without echo (OpenSSL's UI).
 * Only the default (TOKENGATE_PIN, then the prompt) applies when neither
 * a value nor a pin-source is given.
 */
#ifndef TG_PIN_SRC_H
#define TG_PIN_SRC_H

#include <stddef.h>

#include "tg_err.h"

#define TG_PIN_MAX 256 /* bytes of a PIN, from any source */

/* What a source is (tg_pin_src_kind). */
enum tg_pin_kind {
	TG_PIN_DEFAULT = 0, /* TOKENGATE_PIN, then the prompt */
	TG_PIN_VALUE,       /* a value given in the URI (until spent) */
	TG_PIN_FILE,        /* pin-source=file:PATH */
	TG_PIN_ENV,         /* pin-source=env:NAME */
};

struct tg_pin_src; /* a described source: no PIN in it but a TG_PIN_VALUE */

/* A PIN read from a source: keep it on the stack, wipe it after use. */
struct tg_pin {
	char v[TG_PIN_MAX + 1]; /* NUL-terminated */
	size_t len;
	const char *from; /* "pin-value", "pin-source", "TOKENGATE_PIN" or
			     "prompt": where it came from, for messages */
};

#define TG_PIN_INTERACTIVE 0x1u /* the read may prompt on a terminal */

/*
 * Describes a source: the value (pin_value, may be NULL; copied, wiped by
 * tg_pin_src_free or tg_pin_src_spend) or the pin-source spec (pin_source,
 * may be NULL) or, when both are NULL, the default. A value wins over a
 * pin-source (RFC 7512 gives no order; the URI's explicit PIN is the
 * nearer one). Reads nothing. Returns 0 and *out (free with
 * tg_pin_src_free), TG_ERR_ALLOC, or TG_ERR_INVALID_ARG for a spec that is
 * not a source, e.g.
 *   pin-source 'http://x' is not supported; use file:PATH or env:NAME
 *   pin-source 'env:' names no environment variable; use env:NAME
 *   pin-value is longer than 256 bytes
 */
int tg_pin_src_new(const char *pin_value, const char *pin_source, struct tg_pin_src **out,
                   struct tg_error *err);

/* A copy of src's description. A value is never copied: the copy of a
 * TG_PIN_VALUE source reads as spent. Returns 0 and *out, or
 * TG_ERR_ALLOC. */
int tg_pin_src_dup(const struct tg_pin_src *src, struct tg_pin_src **out);

/* Wipes a TG_PIN_VALUE source's value: the source is spent, and later
 * reads are refused. Other sources are left as they are. NULL is
 * accepted. */
void tg_pin_src_spend(struct tg_pin_src *src);

/* Wipes and frees a source. NULL is accepted. */
void tg_pin_src_free(struct tg_pin_src *src);

/* The kind of a source. */
enum tg_pin_kind tg_pin_src_kind(const struct tg_pin_src *src);

/*
 * The source as a user would write it, without any secret: "pin-value"
 * (never the value), "pin-source=file:PATH", "pin-source=env:NAME" or
 * "TOKENGATE_PIN or a prompt". Borrowed, valid until tg_pin_src_free.
 */
const char *tg_pin_src_describe(const struct tg_pin_src *src);

/*
 * 1 when a read of src can give a PIN without a terminal now: a value not
 * spent, a file or env: source, or the default with TOKENGATE_PIN set.
 * Reads no file.
 */
int tg_pin_src_noninteractive(const struct tg_pin_src *src);

/*
 * Reads the PIN into *pin (wiped first; the caller calls tg_pin_wipe when
 * done, on every path). `who` names what wants it in messages and the
 * prompt ("token 'alice'", "the card in 'Reader 0'"). Returns 0, or
 *   TG_ERR_NO_PIN      "token 'alice' needs a PIN and none is available:
 *                       add pin-source=file:PATH (or env:NAME) to the URI,
 *                       set TOKENGATE_PIN, or run on a terminal" (no source;
 *                       also for a spent value, an empty, too long or
 *                       interrupted prompt, and no terminal)
 *   TG_ERR_IO          a file that cannot be read, is longer than
 *                       TG_PIN_MAX bytes, or an env: variable that is not
 *                       set (the message names the file or variable)
 *   TG_ERR_PERMISSION  the PIN file's owner or mode (tg_file_check_stat:
 *                       the message names the file, its mode and the chmod
 *                       or chown that fixes it)
 *   TG_ERR_ALLOC.
 * Reading a TG_PIN_VALUE source does not spend it: its owner does, with
 * tg_pin_src_spend, when the call it serves ends.
 */
int tg_pin_src_read(struct tg_pin_src *src, const char *who, unsigned flags, struct tg_pin *pin,
                    struct tg_error *err);

/* Wipes a PIN buffer. NULL is accepted. */
void tg_pin_wipe(struct tg_pin *pin);

#endif /* TG_PIN_SRC_H */
