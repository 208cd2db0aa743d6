/* verify.c — the audit chain's verifier (tg_audit_verify.h). */
#include "tg_audit_verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The chain as read so far: the hash the next line's prev must equal. */
struct chain {
	unsigned flags;
	int started;           /* a line was read */
	const char *prev_name; /* the file of the last good line */
	size_t prev_line;      /* its number there */
	char *buf;             /* the line being read, TG_AUDIT_LINE_MAX + 1 */
};

const char *
tg_audit_flaw_name(enum tg_audit_flaw flaw)
{
	const char *s = "unknown";

	switch (flaw) {
	case TG_AUDIT_INTACT:
		s = "intact";
		break;
	case TG_AUDIT_NOT_JSON:
		s = "not-json";
		break;
	case TG_AUDIT_NO_PREV:
		s = "missing-prev";
		break;
	case TG_AUDIT_BAD_PREV:
		s = "bad-prev";
		break;
	case TG_AUDIT_PREV_MISMATCH:
		s = "prev-mismatch";
		break;
	case TG_AUDIT_NOT_GENESIS:
		s = "not-genesis";
		break;
	case TG_AUDIT_TORN:
		s = "torn";
		break;
	case TG_AUDIT_TOO_LONG:
		s = "too-long";
		break;
	default:
		break;
	}
	return s;
}

static int
is_hash_hex(const char *s)
{
	return strlen(s) == TG_AUDIT_HASH_HEX - 1 &&
	       strspn(s, "0123456789abcdef") == TG_AUDIT_HASH_HEX - 1;
}

/* Records the first break of report. */
static void flaw(struct tg_audit_report *rep, enum tg_audit_flaw f, size_t file, size_t line,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
flaw(struct tg_audit_report *rep, enum tg_audit_flaw f, size_t file, size_t line, const char *fmt,
     ...)
{
	va_list ap;

	rep->flaw = f;
	rep->file = file;
	rep->line = line;
	va_start(ap, fmt);
	vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
	va_end(ap);
}

/* Checks one complete line (n bytes, no "\n") against the chain. */
static void
check_line(struct chain *c, const char *line, size_t n, const char *name, size_t file,
           size_t lineno, struct tg_audit_report *rep)
{
	json_error_t jerr;
	json_t *j = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr), *p;
	const char *prev;
	char hash[TG_AUDIT_HASH_HEX];

	if (!json_is_object(j)) {
		flaw(rep, TG_AUDIT_NOT_JSON, file, lineno, "not a JSON object (%s)",
		     j == NULL ? jerr.text : "another JSON value");
		goto out;
	}
	if ((p = json_object_get(j, "prev")) == NULL) {
		flaw(rep, TG_AUDIT_NO_PREV, file, lineno,
		     "no \"prev\" field (a line added by hand?)");
		goto out;
	}
	prev = json_string_value(p);
	if (prev == NULL || !is_hash_hex(prev)) {
		flaw(rep, TG_AUDIT_BAD_PREV, file, lineno,
		     "\"prev\" is not a SHA-256 in lower-case hex");
		goto out;
	}
	if (!c->started) {
		if ((c->flags & TG_AUDIT_VERIFY_GENESIS) && strcmp(prev, TG_AUDIT_GENESIS) != 0) {
			flaw(rep, TG_AUDIT_NOT_GENESIS, file, lineno,
			     "the first line does not start the chain (prev is not %.8s..., the "
			     "genesis): earlier lines or files are missing",
			     TG_AUDIT_GENESIS);
			goto out;
		}
		memcpy(rep->first_prev, prev, TG_AUDIT_HASH_HEX);
	} else if (strcmp(prev, rep->head) != 0) {
		if (c->prev_name == name)
			flaw(
			    rep, TG_AUDIT_PREV_MISMATCH, file, lineno,
			    "prev does not match the SHA-256 of line %zu (a line changed, deleted, "
			    "inserted or moved)",
			    c->prev_line);
		else
			flaw(rep, TG_AUDIT_PREV_MISMATCH, file, lineno,
			     "prev does not match the SHA-256 of the last line (%zu) of %s (files "
			     "out of order, or lines changed, deleted or inserted)",
			     c->prev_line, c->prev_name);
		goto out;
	}
	if (tg_audit_line_hash(line, n, hash) != 0) {
		flaw(rep, TG_AUDIT_NOT_JSON, file, lineno, "SHA-256 failed");
		goto out;
	}
	memcpy(rep->head, hash, sizeof(hash));
	c->started = 1;
	c->prev_name = name;
	c->prev_line = lineno;
	rep->lines++;
out:
	json_decref(j);
}

/* Reads f line by line until its end or the first break. */
static void
check_stream(struct chain *c, FILE *f, const char *name, size_t file, struct tg_audit_report *rep)
{
	size_t n = 0, lineno = 1;
	int ch;

	while (rep->flaw == TG_AUDIT_INTACT && (ch = getc(f)) != EOF) {
		if (ch == '\n') {
			check_line(c, c->buf, n, name, file, lineno, rep);
			n = 0;
			lineno++;
		} else if (n == TG_AUDIT_LINE_MAX) {
			flaw(rep, TG_AUDIT_TOO_LONG, file, lineno, "line longer than %u bytes",
			     TG_AUDIT_LINE_MAX);
		} else {
			c->buf[n++] = (char)ch;
		}
	}
	if (rep->flaw == TG_AUDIT_INTACT && n > 0)
		flaw(rep, TG_AUDIT_TORN, file, lineno,
		     "torn last line: %zu bytes without a final newline (the file was cut short, "
		     "or a write was interrupted)",
		     n);
}

static void
report_init(struct tg_audit_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->flaw = TG_AUDIT_INTACT;
}

int
tg_audit_verify_files(const char *const *paths, size_t n, unsigned flags,
                      struct tg_audit_report *rep, struct tg_error *err)
{
	struct chain c = {flags, 0, NULL, 0, NULL};
	FILE *f = NULL;
	size_t i;
	int r = 0;

	report_init(rep);
	if ((c.buf = malloc(TG_AUDIT_LINE_MAX + 1)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (i = 0; i < n && rep->flaw == TG_AUDIT_INTACT; i++) {
		if ((f = fopen(paths[i], "rbe")) == NULL) {
			r = tg_error_set(err, errno == ENOENT ? TG_ERR_NOT_FOUND : TG_ERR_IO,
			                 "cannot open audit log '%s': %s", paths[i],
			                 strerror(errno));
			goto out;
		}
		check_stream(&c, f, paths[i], i, rep);
		if (ferror(f)) {
			r = tg_error_set(err, TG_ERR_IO, "cannot read audit log '%s': %s", paths[i],
			                 strerror(errno));
			goto out;
		}
		fclose(f);
		f = NULL;
		rep->files++;
	}
out:
	if (f != NULL)
		fclose(f);
	free(c.buf);
	return r;
}

int
tg_audit_verify_mem(const uint8_t *data, size_t len, const char *name, unsigned flags,
                    struct tg_audit_report *rep, struct tg_error *err)
{
	struct chain c = {flags, 0, NULL, 0, NULL};
	FILE *f = NULL;
	int r = 0;

	report_init(rep);
	rep->files = 1;
	if (len == 0)
		goto out;
	/* no line is longer than the input */
	if ((c.buf = malloc((len < TG_AUDIT_LINE_MAX ? len : TG_AUDIT_LINE_MAX) + 1)) == NULL ||
	    (f = fmemopen((void *)data, len, "rb")) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	check_stream(&c, f, name, 0, rep);
out:
	if (f != NULL)
		fclose(f);
	free(c.buf);
	return r;
}
