/*
 * pin_src.c — PIN sources (tg_pin_src.h): a value, a file, an environment
 * variable, TOKENGATE_PIN, a prompt; described at parse time, read at
 * login into a stack buffer the caller wipes.
 */
#include "tg_pin_src.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ui.h>

#include "tg_file.h"
#include "tg_secret.h"

#define PIN_ENV "TOKENGATE_PIN"

struct tg_pin_src {
	enum tg_pin_kind kind;
	char *arg;        /* file path or variable name (not secret) */
	char *desc;       /* tg_pin_src_describe */
	char *value;      /* TG_PIN_VALUE until read: a secret */
	size_t value_len; /* bytes of value */
	int spent;        /* TG_PIN_VALUE: read once, wiped */
};

/* "pin-source=" prefix arg, on the heap. */
static char *
desc_new(const char *prefix, const char *arg)
{
	size_t n = strlen("pin-source=") + strlen(prefix) + strlen(arg) + 1;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "pin-source=%s%s", prefix, arg);
	return s;
}

/* Parses a pin-source spec into s->kind and s->arg. */
static int
spec_parse(struct tg_pin_src *s, const char *spec, struct tg_error *err)
{
	const char *arg = spec;
	int r = TG_ERR_INVALID_ARG;

	if (strncmp(spec, "env:", 4) == 0) {
		s->kind = TG_PIN_ENV;
		arg = spec + 4;
		if (arg[0] == '\0') {
			tg_error_set(err, r,
			             "pin-source '%s' names no environment variable; use env:NAME",
			             spec);
			goto out;
		}
	} else {
		s->kind = TG_PIN_FILE;
		if (strncmp(spec, "file://", 7) == 0 && spec[7] == '/')
			arg = spec + 7;
		else if (strncmp(spec, "file:", 5) == 0)
			arg = spec + 5;
		else if (strchr(spec, ':') != NULL && spec[0] != '/' && spec[0] != '.') {
			tg_error_set(err, r,
			             "pin-source '%s' is not supported; use file:PATH or env:NAME",
			             spec);
			goto out;
		}
		if (arg[0] == '\0') {
			tg_error_set(err, r, "pin-source '%s' names no file; use file:PATH", spec);
			goto out;
		}
	}
	if ((s->arg = strdup(arg)) == NULL ||
	    (s->desc = desc_new(s->kind == TG_PIN_ENV ? "env:" : "file:", arg)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	r = 0;
out:
	return r;
}

int
tg_pin_src_new(const char *pin_value, const char *pin_source, struct tg_pin_src **out,
               struct tg_error *err)
{
	struct tg_pin_src *s = NULL;
	int r = TG_ERR_ALLOC;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	if (pin_value != NULL) {
		s->kind = TG_PIN_VALUE;
		s->value_len = strlen(pin_value);
		if (s->value_len > TG_PIN_MAX) {
			r = tg_error_set(err, TG_ERR_INVALID_ARG,
			                 "pin-value is longer than %d bytes", TG_PIN_MAX);
			goto out;
		}
		if ((s->value = strdup(pin_value)) == NULL ||
		    (s->desc = strdup("pin-value")) == NULL) {
			tg_error_set(err, r, "out of memory");
			goto out;
		}
	} else if (pin_source != NULL) {
		if ((r = spec_parse(s, pin_source, err)) != 0)
			goto out;
	} else if ((s->desc = strdup(PIN_ENV " or a prompt")) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	tg_pin_src_free(s);
	return r;
}

int
tg_pin_src_dup(const struct tg_pin_src *src, struct tg_pin_src **out)
{
	struct tg_pin_src *s = NULL;
	int r = TG_ERR_ALLOC;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	s->kind = src->kind;
	s->spent = src->kind == TG_PIN_VALUE; /* the value is never copied */
	if ((src->arg != NULL && (s->arg = strdup(src->arg)) == NULL) ||
	    (src->desc != NULL && (s->desc = strdup(src->desc)) == NULL))
		goto out;
	*out = s;
	s = NULL;
	r = 0;
out:
	tg_pin_src_free(s);
	return r;
}

void
tg_pin_src_free(struct tg_pin_src *src)
{
	if (src == NULL)
		return;
	tg_strfreezero(src->value);
	free(src->arg);
	free(src->desc);
	free(src);
}

void
tg_pin_src_spend(struct tg_pin_src *src)
{
	if (src == NULL || src->kind != TG_PIN_VALUE)
		return;
	tg_strfreezero(src->value);
	src->value = NULL;
	src->spent = 1;
}

enum tg_pin_kind
tg_pin_src_kind(const struct tg_pin_src *src)
{
	return src->kind;
}

const char *
tg_pin_src_describe(const struct tg_pin_src *src)
{
	return src->desc;
}

int
tg_pin_src_noninteractive(const struct tg_pin_src *src)
{
	switch (src->kind) {
	case TG_PIN_VALUE:
		return !src->spent;
	case TG_PIN_FILE:
	case TG_PIN_ENV:
		return 1;
	case TG_PIN_DEFAULT:
	default:
		return getenv(PIN_ENV) != NULL;
	}
}

void
tg_pin_wipe(struct tg_pin *pin)
{
	if (pin != NULL)
		tg_wipe(pin, sizeof(*pin));
}

/* Copies a PIN of n bytes from v into pin, refusing one too long; `var`
 * names the environment variable it came from (NULL: the URI). */
static int
pin_set(struct tg_pin *pin, const char *v, size_t n, const char *from, const char *var,
        struct tg_error *err)
{
	if (n > TG_PIN_MAX && var != NULL)
		return tg_error_set(err, TG_ERR_IO,
		                    "environment variable '%s' is longer than %d bytes; it must "
		                    "hold the PIN only",
		                    var, TG_PIN_MAX);
	if (n > TG_PIN_MAX)
		return tg_error_set(err, TG_ERR_IO, "pin-value is longer than %d bytes",
		                    TG_PIN_MAX);
	memcpy(pin->v, v, n);
	pin->v[n] = '\0';
	pin->len = n;
	pin->from = from;
	return 0;
}

/*
 * Reads a PIN file straight into pin->v (no heap copy): at most
 * TG_PIN_MAX bytes, one trailing newline (and CR) dropped. The opened file
 * is checked with tg_file_check_stat (through tg_file_open_checked).
 */
static int
read_file(const char *path, struct tg_pin *pin, struct tg_error *err)
{
	struct tg_error tmp;
	size_t n = 0;
	ssize_t got;
	int fd = -1, r;

	tg_error_clear(&tmp);
	r = tg_file_open_checked(path, "PIN file", TG_FILE_SECRET | TG_FILE_FOLLOW, &fd, &tmp);
	if (r == TG_ERR_PERMISSION) {
		tg_error_set(err, r, "%s", tmp.msg);
		goto out;
	}
	if (r != 0) {
		r = tg_error_set(err, TG_ERR_IO, "%s; fix pin-source=", tmp.msg);
		goto out;
	}
	for (;;) {
		/* one byte more than a PIN may have, to see a longer file */
		got = read(fd, pin->v + n, sizeof(pin->v) - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = tg_error_set(err, TG_ERR_IO, "cannot read PIN file '%s': %s", path,
			                 strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == sizeof(pin->v))
			break;
	}
	if (n > 0 && pin->v[n - 1] == '\n')
		n--;
	if (n > 0 && pin->v[n - 1] == '\r')
		n--;
	if (n > TG_PIN_MAX) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "PIN file '%s' is longer than %d bytes; it must hold the PIN only",
		                 path, TG_PIN_MAX);
		goto out;
	}
	pin->v[n] = '\0';
	pin->len = n;
	pin->from = "pin-source";
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * Asks for the PIN on the terminal through OpenSSL's UI (the console
 * method: /dev/tty, echo off, the terminal restored on SIGINT/SIGTERM,
 * the answer cleansed when the UI is freed). One prompt, never repeated:
 * an empty answer, one longer than TG_PIN_MAX, Ctrl-C and an unreadable
 * terminal each fail with TG_ERR_NO_PIN and a message saying which.
 */
static int
read_prompt(const char *who, struct tg_pin *pin, struct tg_error *err)
{
	char prompt[160];
	UI *ui = NULL;
	int r = TG_ERR_NO_PIN, rc, too_long = 0;
	unsigned long e;

	snprintf(prompt, sizeof(prompt), "PIN for %s: ", who);
	if ((ui = UI_new()) == NULL ||
	    UI_add_input_string(ui, prompt, 0, pin->v, 0, TG_PIN_MAX) < 0) {
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot set up the PIN prompt");
		goto out;
	}
	rc = UI_process(ui);
	while ((e = ERR_get_error()) != 0) /* the UI's reason is not the last one */
		too_long |=
		    ERR_GET_LIB(e) == ERR_LIB_UI && ERR_GET_REASON(e) == UI_R_RESULT_TOO_LARGE;
	if (rc == -2) {
		tg_error_set(err, r, "PIN entry for %s was interrupted", who);
		goto out;
	}
	if (rc != 0 && too_long) {
		tg_error_set(err, r, "the PIN entered for %s is longer than %d characters", who,
		             TG_PIN_MAX);
		goto out;
	}
	if (rc != 0) {
		tg_error_set(err, r,
		             "cannot read a PIN for %s from the terminal; use "
		             "pin-source=file:PATH (or env:NAME) or " PIN_ENV,
		             who);
		goto out;
	}
	if (pin->v[0] == '\0') {
		tg_error_set(err, r, "no PIN entered for %s", who);
		goto out;
	}
	pin->len = strlen(pin->v);
	pin->from = "prompt";
	r = 0;
out:
	UI_free(ui);
	return r;
}

static int
read_default(const char *who, unsigned flags, struct tg_pin *pin, struct tg_error *err)
{
	const char *v;
	int r;

	if ((v = getenv(PIN_ENV)) != NULL)
		r = pin_set(pin, v, strlen(v), PIN_ENV, PIN_ENV, err);
	else if ((flags & TG_PIN_INTERACTIVE) && isatty(STDIN_FILENO))
		r = read_prompt(who, pin, err);
	else
		r = tg_error_set(err, TG_ERR_NO_PIN,
		                 "%s needs a PIN and none is available: add "
		                 "pin-source=file:PATH (or env:NAME) to the URI, set " PIN_ENV
		                 ", or run on a terminal",
		                 who);
	return r;
}

int
tg_pin_src_read(struct tg_pin_src *src, const char *who, unsigned flags, struct tg_pin *pin,
                struct tg_error *err)
{
	const char *v;
	int r;

	tg_pin_wipe(pin);
	if (who == NULL)
		who = "the token";
	switch (src->kind) {
	case TG_PIN_VALUE:
		if (src->spent) {
			r = tg_error_set(err, TG_ERR_NO_PIN,
			                 "%s needs the PIN again, and a pin-value given in the URI "
			                 "serves only the lookup it came with; give the PIN with "
			                 "pin-source=file:PATH (or env:NAME) or " PIN_ENV,
			                 who);
			break;
		}
		r = pin_set(pin, src->value, src->value_len, "pin-value", NULL, err);
		break;
	case TG_PIN_FILE:
		r = read_file(src->arg, pin, err);
		break;
	case TG_PIN_ENV:
		if ((v = getenv(src->arg)) == NULL)
			r = tg_error_set(
			    err, TG_ERR_IO,
			    "pin-source 'env:%s': environment variable '%s' is not set", src->arg,
			    src->arg);
		else
			r = pin_set(pin, v, strlen(v), "pin-source", src->arg, err);
		break;
	case TG_PIN_DEFAULT:
	default:
		r = read_default(who, flags, pin, err);
		break;
	}
	if (r != 0)
		tg_pin_wipe(pin);
	return r;
}
