/* log.c — one line per event, as text or JSON lines (tg_log.h). */
#include "tg_log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tg_err.h"
#include "tg_hex.h"

/* Messages up to this size are formatted on the stack; longer ones on the
 * heap. */
#define LOG_MSG_STACK 512

/*
 * The process-wide settings (see tg_log.h): written once by main() through
 * tg_log_init() before threads start, only read afterwards.
 */
static struct {
	enum tg_log_level level;
	int json;
	FILE *out;
} log_cfg = {TG_LOG_INFO, 0, NULL};

static const char *const level_names[] = {
    [TG_LOG_ERROR] = "error",
    [TG_LOG_WARN] = "warn",
    [TG_LOG_INFO] = "info",
    [TG_LOG_DEBUG] = "debug",
};

void
tg_log_init(enum tg_log_level level, int json, FILE *out)
{
	if (level < TG_LOG_ERROR)
		level = TG_LOG_ERROR;
	if (level > TG_LOG_DEBUG)
		level = TG_LOG_DEBUG;
	log_cfg.level = level;
	log_cfg.json = json != 0;
	log_cfg.out = out;
}

int
tg_log_level_parse(const char *s, enum tg_log_level *level)
{
	size_t i;
	int r = TG_ERR_INVALID_ARG;

	if (s == NULL || level == NULL)
		goto out;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level = (enum tg_log_level)i;
			r = 0;
			break;
		}
	}
out:
	return r;
}

int
tg_log_enabled(enum tg_log_level level)
{
	return level >= TG_LOG_ERROR && level <= log_cfg.level;
}

/*
 * Appends s to the growing string *dst (length *dlen, allocated *dcap),
 * escaping what would break a text line: control characters (newline,
 * CR, tab, ESC...), DEL and backslash. When ascii is set, bytes >= 0x80 are
 * escaped too (for JSON, which needs valid UTF-8). Returns 0 or
 * TG_ERR_ALLOC.
 */
static int
escape_append(char **dst, size_t *dlen, size_t *dcap, const char *s, int ascii)
{
	const unsigned char *p;
	char esc[5]; /* at most "\\xhh" and tg_hex_encode's NUL */
	size_t k, ncap;
	char *n;
	int r = 0;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		k = 0;
		switch (*p) {
		case '\n':
			esc[k++] = '\\';
			esc[k++] = 'n';
			break;
		case '\r':
			esc[k++] = '\\';
			esc[k++] = 'r';
			break;
		case '\t':
			esc[k++] = '\\';
			esc[k++] = 't';
			break;
		case '\\':
			esc[k++] = '\\';
			esc[k++] = '\\';
			break;
		default:
			if (*p < 0x20 || *p == 0x7f || (ascii && *p >= 0x80)) {
				esc[k++] = '\\';
				esc[k++] = 'x';
				(void)tg_hex_encode(p, 1, esc + k, sizeof(esc) - k);
				k += 2;
			} else {
				esc[k++] = (char)*p;
			}
			break;
		}
		if (*dlen + k + 1 > *dcap) {
			ncap = *dcap < 64 ? 64 : *dcap * 2;
			if ((n = realloc(*dst, ncap)) == NULL) {
				r = TG_ERR_ALLOC;
				goto out;
			}
			*dst = n;
			*dcap = ncap;
		}
		memcpy(*dst + *dlen, esc, k);
		*dlen += k;
		(*dst)[*dlen] = '\0';
	}
out:
	return r;
}

/* Returns s escaped for one line (heap, caller frees), or NULL. */
static char *
escape(const char *s, int ascii)
{
	char *d = NULL;
	size_t dlen = 0, dcap = 0;

	if ((d = malloc(1)) == NULL)
		return NULL;
	d[0] = '\0';
	dcap = 1;
	if (escape_append(&d, &dlen, &dcap, s, ascii) != 0) {
		free(d);
		d = NULL;
	}
	return d;
}

/* A JSON string for s: s as is when valid UTF-8 without control
 * characters to worry about (jansson escapes those), else s escaped. */
static json_t *
json_text(const char *s)
{
	json_t *j;
	char *e;

	if ((j = json_string(s)) != NULL)
		return j;
	/* Not valid UTF-8: make it ASCII with \x escapes. */
	if ((e = escape(s, 1)) == NULL)
		return NULL;
	j = json_string(e);
	free(e);
	return j;
}

/* Writes one JSON line; returns 0 or an error code. */
static int
write_json(FILE *out, const char *ts, const char *level, const char *event, const char *msg)
{
	json_t *o = NULL;
	char *line = NULL;
	int r = TG_ERR_ALLOC;

	if ((o = json_object()) == NULL)
		goto out;
	if (json_object_set_new(o, "ts", json_text(ts)) != 0 ||
	    json_object_set_new(o, "level", json_text(level)) != 0 ||
	    json_object_set_new(o, "event", json_text(event)) != 0 ||
	    json_object_set_new(o, "msg", json_text(msg)) != 0)
		goto out;
	/* JSON_COMPACT without JSON_INDENT keeps it one line; jansson escapes
	 * control characters inside strings. */
	if ((line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	fprintf(out, "%s\n", line);
	r = 0;
out:
	free(line);
	json_decref(o);
	return r;
}

/* Writes one text line; returns 0 or an error code. */
static int
write_text(FILE *out, const char *ts, const char *level, const char *event, const char *msg)
{
	char *ev = NULL, *m = NULL;
	int r = TG_ERR_ALLOC;

	if ((ev = escape(event, 0)) == NULL || (m = escape(msg, 0)) == NULL)
		goto out;
	/* One fprintf per line: stdio locks the stream for the call, so
	 * lines of concurrent threads never interleave. */
	fprintf(out, "%s %-5s %s %s\n", ts, level, ev, m);
	r = 0;
out:
	free(ev);
	free(m);
	return r;
}

void
tg_log(enum tg_log_level level, const char *event, const char *fmt, ...)
{
	char stackmsg[LOG_MSG_STACK];
	char ts[32];
	char *msg = stackmsg, *heapmsg = NULL;
	FILE *out = log_cfg.out != NULL ? log_cfg.out : stderr;
	struct tm tm;
	time_t now;
	va_list ap;
	int n;

	if (!tg_log_enabled(level))
		goto out;
	va_start(ap, fmt);
	n = vsnprintf(stackmsg, sizeof(stackmsg), fmt, ap);
	va_end(ap);
	if (n < 0) {
		msg = "(unformattable log message)";
	} else if ((size_t)n >= sizeof(stackmsg)) {
		if ((heapmsg = malloc((size_t)n + 1)) != NULL) {
			va_start(ap, fmt);
			vsnprintf(heapmsg, (size_t)n + 1, fmt, ap);
			va_end(ap);
			msg = heapmsg;
		}
		/* Out of memory: log the truncated message rather than none. */
	}
	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(ts, sizeof(ts), "%lld", (long long)now);
	if (event == NULL)
		event = "-";
	if (log_cfg.json)
		(void)write_json(out, ts, level_names[level], event, msg);
	else
		(void)write_text(out, ts, level_names[level], event, msg);
	fflush(out);
out:
	free(heapmsg);
}
