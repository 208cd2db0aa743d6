/*
 * http.c — HTTP/1.1 framing for the gate (tg_gate_http.h).
 *
 * http-parser 2.9.4 as Debian builds it is not strict: it takes obs-fold,
 * bare LF line ends, a space before a header's colon, anything after the
 * CR of a chunk-size line and anything in chunk extensions. So the reader
 * collects each head itself, checks every line of it (RFC 9112 sections
 * 2-6, RFC 9110 section 5), and only then hands the head to http-parser;
 * a chunked body is checked byte by byte by a strict chunk scanner
 * (RFC 9112 section 7.1) just ahead of http-parser, which decodes it. The
 * two must end each message on the same byte, or the message is refused.
 */
#include "tg_gate_http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "tg_att.h"
#include "tg_dec.h"
#include "tg_hex.h"

#define DEFAULT_REQUEST_LINE 8192
#define DEFAULT_HEADER_BYTES 16384
#define DEFAULT_HEADER_COUNT 100
#define HEAD_BUF_MIN         512 /* first allocation of the head buffer */
#define SPANS_MIN            16
#define CHUNK_SIZE_DIGITS    15 /* hex digits of a chunk size: below 2^60 */
#define CL_DIGITS            19 /* decimal digits of a Content-Length */

#define MALFORMED_REQUEST_LINE "the request line is malformed (want: METHOD SP target SP HTTP/1.1)"
#define VERSION_UNSUPPORTED    "only HTTP/1.1 and HTTP/1.0 are supported"
#define CHUNKED_AMBIGUOUS                                                                          \
	"the chunked body is ambiguous (the gate's checks and http-parser disagree)"

/* Header field positions inside the head buffer. */
struct span {
	size_t name_off, name_len;
	size_t val_off, val_len; /* SP/HT trimmed */
};

enum phase {
	PH_HEAD = 0, /* collecting and checking a head */
	PH_PARSE,    /* the checked head is being fed to http-parser */
	PH_BODY,     /* the body is being fed to http-parser */
	PH_DEAD,     /* refused or aborted */
};

/* The strict chunked-body scanner's states (RFC 9112 section 7.1). */
enum cs {
	CS_SIZE_START = 0, /* first hex digit of chunk-size */
	CS_SIZE,           /* more hex digits */
	CS_SIZE_BWS,       /* BWS after the size: ';' must follow */
	CS_EXT_START,      /* after ';': BWS, then the extension's name */
	CS_EXT_NAME,
	CS_EXT_NAME_BWS,  /* BWS after the name: '=' or ';' */
	CS_EXT_VAL_START, /* after '=': BWS, then a token or quoted-string */
	CS_EXT_TOKEN,
	CS_EXT_QUOTED,
	CS_EXT_QESC,  /* after a backslash in the quoted-string */
	CS_EXT_AFTER, /* after a quoted-string: ';' or CR */
	CS_SIZE_LF,   /* the LF of the chunk-size line */
	CS_DATA,
	CS_DATA_CR, /* the CRLF after chunk-data */
	CS_DATA_LF,
	CS_TR_START, /* a trailer line, or the final CRLF */
	CS_TR_NAME,
	CS_TR_VALUE,
	CS_TR_LF,
	CS_END_LF,
	CS_DONE,
	CS_BAD,
};

struct chunk_scan {
	enum cs st;
	uint64_t size;    /* the chunk's size, then what is left of its data */
	unsigned digits;  /* significant hex digits of the size */
	size_t line;      /* bytes of the current chunk-size line */
	size_t trailer;   /* bytes of the trailer section */
	size_t ntrailers; /* trailer fields */
	int status;       /* with CS_BAD */
	const char *why;  /* with CS_BAD */
};

struct tg_gate_http_reader {
	enum tg_gate_http_kind kind;
	struct tg_gate_http_limits lim;
	struct tg_gate_http_cb cb;
	void *arg;
	http_parser hp;
	http_parser_settings hs;
	enum phase phase;
	enum tg_gate_http_rc dead_rc;
	struct tg_gate_http_error err;

	/* The head being collected: hb[0..hb_len), fed to http-parser up to hb_fed. */
	char *hb;
	size_t hb_len, hb_cap, hb_fed;
	size_t line_start; /* offset of the current line */
	int start_seen;    /* the start line has been read */
	struct span *spans;
	size_t nspans, spans_cap;

	/* The start line. */
	char method[24];
	size_t target_off, target_len;
	int major, minor, status;

	/* The framing the head states, found when it is complete. */
	enum tg_gate_http_body body;
	uint64_t content_length;
	int has_cl, chunked, upgrade, expect_continue, keep_alive;
	int expect_head; /* responses: the request was HEAD */

	/* Events of one http_parser_execute run. */
	int msg_done, user_paused, user_aborted;

	/* The chunked body: scanned up to cs_ahead bytes past http-parser. */
	struct chunk_scan cs;
	size_t cs_ahead;
};

/* What run_parser saw. */
enum run {
	RUN_OK = 0, /* every byte taken, no event that stops */
	RUN_PAUSE,  /* a callback paused */
	RUN_END,    /* the message is complete */
	RUN_STOP,   /* refused or aborted: the reader is dead */
};

/* RFC 9110 section 5.6.2: tchar, one bit per byte value (every header
 * name's every byte is looked up). */
static const uint32_t tchar_bits[8] = {
    0x00000000u, /* 0x00-0x1f: none */
    0x03ff6cfau, /* 0x20-0x3f: ! # $ % & ' * + - . 0-9 */
    0xc7fffffeu, /* 0x40-0x5f: A-Z ^ _ */
    0x57ffffffu, /* 0x60-0x7f: ` a-z | ~ */
    0x00000000u, /* 0x80-0x9f: none */
    0x00000000u, /* 0xa0-0xbf: none */
    0x00000000u, /* 0xc0-0xdf: none */
    0x00000000u, /* 0xe0-0xff: none */
};

static int
tchar(unsigned char c)
{
	return (tchar_bits[c >> 5] >> (c & 31u)) & 1u;
}

/* RFC 9110 section 5.5: field-vchar, SP and HTAB (obs-text included). */
static int
field_char(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/* A hex digit's value, or -1 (tg_hex_decode of "0" and the digit). */
static int
hex_value(unsigned char c)
{
	char pair[3] = {'0', (char)c, '\0'};
	uint8_t v = 0;
	size_t n = 0;

	return tg_hex_decode(pair, &v, 1, &n) == 0 ? v : -1;
}

/* 1 when the n bytes at s equal the lower-case word w, ignoring case. */
static int
word_eq(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* 1 when the comma-separated list s (n bytes) holds the token w. */
static int
list_has(const char *s, size_t n, const char *w)
{
	size_t i = 0, a, b;
	int found = 0;

	while (!found && i <= n) {
		a = i;
		while (i < n && s[i] != ',')
			i++;
		b = i;
		while (a < b && (s[a] == ' ' || s[a] == '\t'))
			a++;
		while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
			b--;
		found = word_eq(s + a, b - a, w);
		i++;
	}
	return found;
}

static void
set_error(struct tg_gate_http_reader *r, enum tg_gate_http_rc rc, int status, const char *why)
{
	if (r->phase != PH_DEAD) { /* the first reason stands */
		r->phase = PH_DEAD;
		r->dead_rc = rc;
		r->err.status = status;
		snprintf(r->err.reason, sizeof(r->err.reason), "%s", why);
	}
}

static void
refuse(struct tg_gate_http_reader *r, int status, const char *why)
{
	set_error(r, TG_GATE_HTTP_REFUSED, status, why);
}

/* RFC 9112 section 3.2: visible ASCII, and no fragment. */
static int
target_ok(const char *t, size_t n)
{
	size_t i = 0;

	while (i < n && (unsigned char)t[i] > 0x20 && (unsigned char)t[i] < 0x7f && t[i] != '#')
		i++;
	return i == n;
}

/*
 * The version at v (n bytes): 0 for HTTP/1.0 and HTTP/1.1, 505 for another
 * well-formed version ("HTTP/2", "HTTP/2.0"), 400 when malformed.
 */
static int
version_check(struct tg_gate_http_reader *r, const char *v, size_t n)
{
	size_t i = 5, d1 = 0, d2 = 1;
	int st = 400;

	if (n >= 6 && memcmp(v, "HTTP/", 5) == 0) {
		for (; i < n && v[i] >= '0' && v[i] <= '9' && d1 < 4; i++)
			d1++;
		if (i < n && v[i] == '.')
			for (i++, d2 = 0; i < n && v[i] >= '0' && v[i] <= '9' && d2 < 4; i++)
				d2++;
		if (d1 > 0 && d2 > 0 && i == n)
			st = 505;
	}
	if (st == 505 && n == 8 && v[5] == '1' && v[6] == '.' && (v[7] == '0' || v[7] == '1')) {
		st = 0;
		r->major = 1;
		r->minor = v[7] - '0';
	}
	return st;
}

/* RFC 9112 section 3: method SP request-target SP HTTP-version. */
static int
request_line(struct tg_gate_http_reader *r, const char *l, size_t n)
{
	const char *why = NULL;
	size_t i = 0, t, j;
	int st = 400;

	while (i < n && tchar((unsigned char)l[i]))
		i++;
	t = i + 1;
	for (j = t; j < n && l[j] != ' '; j++)
		;
	if (i == 0 || i == n || l[i] != ' ' || j == t) {
		why = MALFORMED_REQUEST_LINE;
	} else if (i >= sizeof(r->method)) {
		st = 501;
		why = "the request method is not implemented";
	} else if (j == n) {
		st = 505;
		why = "HTTP/0.9 is not supported: send HTTP/1.1";
	} else if (!target_ok(l + t, j - t)) {
		why = "the request-target holds a control byte, non-ASCII byte or '#' "
		      "(percent-encode it)";
	} else if ((st = version_check(r, l + j + 1, n - j - 1)) != 0) {
		why = st == 505 ? VERSION_UNSUPPORTED : MALFORMED_REQUEST_LINE;
	} else if (i == 7 && memcmp(l, "CONNECT", 7) == 0) {
		st = 501;
		why = "CONNECT (a tunnel) is not supported: send the request itself (an http:// "
		      "URL through a proxy, or the path to this address)";
	} else {
		memcpy(r->method, l, i);
		r->method[i] = '\0';
		r->target_off = (size_t)(l - r->hb) + t;
		r->target_len = j - t;
	}
	if (why != NULL)
		refuse(r, st, why);
	return why != NULL ? -1 : 0;
}

/* RFC 9112 section 4: HTTP-version SP 3DIGIT SP [ reason-phrase ]. */
static int
status_line(struct tg_gate_http_reader *r, const char *l, size_t n)
{
	const char *why = NULL;
	size_t v = 0, i;
	int st;

	while (v < n && l[v] != ' ')
		v++;
	if ((st = version_check(r, l, v)) != 0) {
		why = st == 505 ? VERSION_UNSUPPORTED
		                : "the status line is malformed (want: HTTP/1.1 SP code SP reason)";
	} else if (n < v + 4 || l[v + 1] < '1' || l[v + 1] > '5' || l[v + 2] < '0' ||
	           l[v + 2] > '9' || l[v + 3] < '0' || l[v + 3] > '9' ||
	           (n > v + 4 && l[v + 4] != ' ')) {
		st = 400;
		why = "the status line has no valid status code (100 to 599)";
	} else {
		r->status = (l[v + 1] - '0') * 100 + (l[v + 2] - '0') * 10 + (l[v + 3] - '0');
		for (i = v + 4; why == NULL && i < n; i++)
			if (!field_char((unsigned char)l[i]))
				why = "the status line's reason holds a control byte";
		st = 400;
	}
	if (why != NULL)
		refuse(r, st, why);
	return why != NULL ? -1 : 0;
}

/* Room for one more span: 0, or -1 when out of memory. */
static int
spans_room(struct tg_gate_http_reader *r)
{
	size_t cap = r->spans_cap == 0 ? SPANS_MIN : r->spans_cap * 2;
	struct span *ns = NULL;
	int rc = 0;

	if (r->nspans == r->spans_cap) {
		if ((ns = realloc(r->spans, cap * sizeof(*ns))) == NULL) {
			rc = -1;
		} else {
			r->spans = ns;
			r->spans_cap = cap;
		}
	}
	return rc;
}

/* One header line (RFC 9112 section 5): field-name ":" OWS field-value OWS. */
static int
header_line(struct tg_gate_http_reader *r, size_t off, size_t n)
{
	const char *l = r->hb + off, *why = NULL;
	struct span *sp;
	size_t i = 0, a, b;
	int st = 400;

	while (i < n && tchar((unsigned char)l[i]))
		i++;
	for (a = i + 1; a < n && field_char((unsigned char)l[a]); a++)
		;
	if (l[0] == ' ' || l[0] == '\t')
		why = "the head holds a folded header line (obs-fold): send each field on one line";
	else if (i < n && (l[i] == ' ' || l[i] == '\t') && memchr(l + i, ':', n - i) != NULL)
		why = "a header field has whitespace before its ':'";
	else if (i == 0 || i == n || l[i] != ':')
		why = "a header field name is not a token (RFC 9110 section 5.1)";
	else if (i > 17 && strncasecmp(l, "transfer-encoding", 17) == 0)
		/* http-parser 2.9.4 takes any such name for Transfer-Encoding */
		why = "a header field name starts with Transfer-Encoding (ambiguous framing)";
	else if (a < n)
		why = "a header field value holds a control byte";
	else if (r->nspans >= r->lim.header_count)
		st = 431, why = "the head has too many header fields";
	else if (spans_room(r) != 0)
		st = 500, why = "out of memory";
	if (why == NULL) {
		a = i + 1;
		b = n;
		while (a < b && (l[a] == ' ' || l[a] == '\t'))
			a++;
		while (b > a && (l[b - 1] == ' ' || l[b - 1] == '\t'))
			b--;
		sp = &r->spans[r->nspans++];
		sp->name_off = off;
		sp->name_len = i;
		sp->val_off = off + a;
		sp->val_len = b - a;
	} else {
		refuse(r, st, why);
	}
	return why != NULL ? -1 : 0;
}

/* A complete line hb[off..off+n) (CRLF excluded): 1 at the head's end. */
static int
head_line(struct tg_gate_http_reader *r, size_t off, size_t n)
{
	int rc = 0;

	if (r->start_seen && n == 0) {
		rc = 1;
	} else if (r->start_seen) {
		rc = header_line(r, off, n);
	} else if (n > 0) { /* RFC 9112 section 2.2: empty lines before the start line */
		r->start_seen = 1;
		rc = r->kind == TG_GATE_HTTP_REQUEST ? request_line(r, r->hb + off, n)
		                                     : status_line(r, r->hb + off, n);
	}
	return rc;
}

static int
head_grow(struct tg_gate_http_reader *r)
{
	size_t cap = r->hb_cap == 0 ? HEAD_BUF_MIN : r->hb_cap * 2;
	char *nb;

	if (cap > r->lim.header_bytes)
		cap = r->lim.header_bytes;
	if ((nb = realloc(r->hb, cap)) == NULL) {
		refuse(r, 500, "out of memory");
	} else {
		r->hb = nb;
		r->hb_cap = cap;
	}
	return nb != NULL ? 0 : -1;
}

/*
 * Takes bytes of data from *pos into the head buffer, one by one, up to and
 * including the next LF: 1 at the head's end (*pos just past it), 0 when
 * the line or all of data was taken, -1 when refused.
 */
static int
head_bytes(struct tg_gate_http_reader *r, const char *data, size_t len, size_t *pos)
{
	const char *why = NULL;
	unsigned char c = 0;
	size_t cur;
	int rc = 0, st = 400;

	while (rc == 0 && c != '\n' && *pos < len) {
		c = (unsigned char)data[*pos];
		if (r->hb_len >= r->lim.header_bytes) {
			st = 431;
			why = "the head is larger than the gate's header_bytes limit";
		} else if (r->hb_len == r->hb_cap && head_grow(r) != 0) {
			rc = -1; /* refused by head_grow */
		} else {
			r->hb[r->hb_len++] = (char)c;
			(*pos)++;
			cur = r->hb_len - r->line_start;
			if (r->hb_len >= 2 && r->hb[r->hb_len - 2] == '\r' && c != '\n') {
				why = "the head has a bare CR: lines must end with CRLF";
			} else if (c == '\n' && (cur < 2 || r->hb[r->hb_len - 2] != '\r')) {
				why = "the head has a bare LF: lines must end with CRLF";
			} else if (c == '\n') {
				rc = head_line(r, r->line_start, cur - 2);
				r->line_start = r->hb_len;
			} else if (!r->start_seen && cur - (c == '\r') > r->lim.request_line) {
				st = 414;
				why =
				    r->kind == TG_GATE_HTTP_REQUEST
				        ? "the request line is longer than the gate's request_line "
				          "limit"
				        : "the status line is longer than the gate's request_line "
				          "limit";
			}
		}
		if (why != NULL) {
			refuse(r, st, why);
			rc = -1;
		}
	}
	return rc;
}

/*
 * The common case of head_bytes at once: a whole line in data from *pos
 * (after whole lines before it), ending in CRLF, with no other CR, within
 * the limits: copied with one memcpy and checked as head_bytes would. 2
 * when it is not that case (head_bytes then takes it byte by byte, with
 * the same results as always), else head_bytes' result.
 */
static int
head_line_fast(struct tg_gate_http_reader *r, const char *data, size_t len, size_t *pos)
{
	const char *s = data + *pos, *nl;
	size_t n, seg;
	int rc = 2;

	if ((r->hb_len > 0 && r->hb[r->hb_len - 1] == '\r') ||
	    (nl = memchr(s, '\n', len - *pos)) == NULL)
		goto out;
	seg = (size_t)(nl - s) + 1;
	/* n: the line's bytes without CRLF, with what an earlier feed brought */
	n = r->hb_len - r->line_start + seg - 2;
	if (seg < 2 || s[seg - 2] != '\r' || memchr(s, '\r', seg - 2) != NULL ||
	    r->hb_len + seg > r->lim.header_bytes || (!r->start_seen && n > r->lim.request_line))
		goto out;
	while (r->hb_cap - r->hb_len < seg)
		if (head_grow(r) != 0) {
			rc = -1; /* refused by head_grow */
			goto out;
		}
	memcpy(r->hb + r->hb_len, s, seg);
	r->hb_len += seg;
	*pos += seg;
	rc = head_line(r, r->line_start, n);
	r->line_start = r->hb_len;
out:
	return rc;
}

/*
 * Takes bytes of data from *pos into the head buffer until the head ends:
 * 1 then (*pos just past it), 0 when all of data was taken, -1 when refused.
 */
static int
head_collect(struct tg_gate_http_reader *r, const char *data, size_t len, size_t *pos)
{
	int rc = 0;

	while (rc == 0 && *pos < len)
		if ((rc = head_line_fast(r, data, len, pos)) == 2)
			rc = head_bytes(r, data, len, pos);
	return rc;
}

/* Content-Length's value: 1*DIGIT (RFC 9110 section 8.6), no list. */
static int
parse_cl(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;
	int ok = n > 0 && n <= CL_DIGITS;

	for (i = 0; ok && i < n; i++) {
		ok = v[i] >= '0' && v[i] <= '9';
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (ok)
		*out = x;
	return ok ? 0 : -1;
}

/* The framing facts of the complete head, and the refusals they call for. */
static int
head_framing(struct tg_gate_http_reader *r)
{
	size_t i, ncl = 0, nte = 0, nhost = 0;
	int bad_cl = 0, te_chunked = 0, conn_upgrade = 0, up_ws = 0, st = 400;
	const struct span *s;
	const char *name, *val, *why = NULL;

	r->expect_continue = 0;
	for (i = 0; i < r->nspans; i++) {
		s = &r->spans[i];
		name = r->hb + s->name_off;
		val = r->hb + s->val_off;
		if (word_eq(name, s->name_len, "content-length")) {
			ncl++;
			bad_cl |= parse_cl(val, s->val_len, &r->content_length) != 0;
		} else if (word_eq(name, s->name_len, "transfer-encoding")) {
			nte++;
			te_chunked = word_eq(val, s->val_len, "chunked");
		} else if (word_eq(name, s->name_len, "host")) {
			nhost++;
		} else if (word_eq(name, s->name_len, "connection")) {
			conn_upgrade |= list_has(val, s->val_len, "upgrade");
		} else if (word_eq(name, s->name_len, "upgrade")) {
			up_ws |= list_has(val, s->val_len, "websocket");
		} else if (word_eq(name, s->name_len, "expect")) {
			r->expect_continue = word_eq(val, s->val_len, "100-continue");
		}
	}
	if (ncl > 0 && nte > 0)
		why = "the head has both Content-Length and Transfer-Encoding";
	else if (ncl > 1)
		why = "the head has more than one Content-Length";
	else if (bad_cl)
		why = "Content-Length is not a decimal number";
	else if (nte > 1)
		why = "the head has more than one Transfer-Encoding";
	else if (nte == 1 && !te_chunked)
		st = 501, why = "the only transfer coding the gate accepts is chunked";
	else if (nte == 1 && r->minor == 0)
		why = "an HTTP/1.0 message cannot use Transfer-Encoding";
	else if (r->kind == TG_GATE_HTTP_REQUEST && nhost > 1)
		why = "the request has more than one Host";
	else if (r->kind == TG_GATE_HTTP_REQUEST && nhost == 0 && r->minor == 1)
		why = "the HTTP/1.1 request has no Host";
	if (why != NULL) {
		refuse(r, st, why);
	} else {
		r->has_cl = ncl == 1;
		r->chunked = nte == 1;
		if (r->kind == TG_GATE_HTTP_REQUEST)
			r->upgrade = conn_upgrade && up_ws;
		else
			r->upgrade = r->status == 101;
	}
	return why != NULL ? -1 : 0;
}

/* Copies hb[off..off+n) into the arena at *at as a C string. */
static char *
arena_put(char **at, const char *hb, size_t off, size_t n)
{
	char *s = *at;

	memcpy(s, hb + off, n);
	s[n] = '\0';
	*at += n + 1;
	return s;
}

/* Whether the head h of a response has no body (RFC 9110 section 6.4.1). */
static int
response_no_body(const struct tg_gate_http_reader *r)
{
	return r->expect_head || r->status / 100 == 1 || r->status == 204 || r->status == 304;
}

/* The parser's view of the head must be the reader's. */
static int
parser_agrees(const struct tg_gate_http_reader *r, const http_parser *p)
{
	/* uses_transfer_encoding: 2.9.4 sets it for any field name that starts
	 * with "transfer-encoding" and then refuses the request after its head */
	int ok = p->http_major == r->major && p->http_minor == r->minor &&
	         !!(p->flags & F_CHUNKED) == r->chunked &&
	         (int)p->uses_transfer_encoding == r->chunked &&
	         !!(p->flags & F_CONTENTLENGTH) == r->has_cl;

	if (r->kind == TG_GATE_HTTP_REQUEST)
		ok = ok && strcmp(http_method_str((enum http_method)p->method), r->method) == 0;
	else
		ok = ok && (int)p->status_code == r->status;
	return ok;
}

/* Fills the framing of the head and what http-parser must do with the body. */
static void
framing(struct tg_gate_http_reader *r, int *skip)
{
	int ka;

	*skip = 0;
	if (r->kind == TG_GATE_HTTP_RESPONSE && response_no_body(r)) {
		r->body = TG_GATE_HTTP_BODY_NONE;
		*skip = r->status == 101 ? 2 : 1;
	} else if (r->chunked) {
		r->body = TG_GATE_HTTP_BODY_CHUNKED;
	} else if (r->has_cl) {
		r->body = TG_GATE_HTTP_BODY_LENGTH;
	} else {
		r->body = r->kind == TG_GATE_HTTP_RESPONSE ? TG_GATE_HTTP_BODY_CLOSE
		                                           : TG_GATE_HTTP_BODY_NONE;
	}
	/* http_should_keep_alive, with the body decided above */
	if (r->minor == 1)
		ka = !(r->hp.flags & F_CONNECTION_CLOSE);
	else
		ka = !!(r->hp.flags & F_CONNECTION_KEEP_ALIVE);
	r->keep_alive = ka && r->body != TG_GATE_HTTP_BODY_CLOSE;
	if (r->kind == TG_GATE_HTTP_RESPONSE && r->status / 100 != 1)
		r->expect_head = 0; /* a final response answers the request */
}

static int
on_headers_complete(http_parser *p)
{
	struct tg_gate_http_reader *r = p->data;
	struct tg_gate_http_header *hdr = NULL, hdr_stack[16];
	struct tg_gate_http_head h;
	char *arena = NULL, *at, arena_stack[1024];
	size_t i, alen = r->hb_len + 2 * r->nspans + 1;
	int skip = 0, u = 0, rc = -1;

	if (!parser_agrees(r, p)) {
		refuse(r, 400,
		       "the head is ambiguous (the gate's checks and http-parser disagree)");
		goto out;
	}
	framing(r, &skip);
	memset(&h, 0, sizeof(h));
	/* a common head fits on the stack; a bigger one goes to the heap */
	arena = alen <= sizeof(arena_stack) ? arena_stack : malloc(alen);
	hdr = r->nspans <= sizeof(hdr_stack) / sizeof(hdr_stack[0])
	          ? hdr_stack
	          : calloc(r->nspans, sizeof(*hdr));
	if (arena == NULL || hdr == NULL) {
		refuse(r, 500, "out of memory");
		goto out;
	}
	at = arena;
	for (i = 0; i < r->nspans; i++) {
		hdr[i].name = arena_put(&at, r->hb, r->spans[i].name_off, r->spans[i].name_len);
		hdr[i].value = arena_put(&at, r->hb, r->spans[i].val_off, r->spans[i].val_len);
	}
	if (r->kind == TG_GATE_HTTP_REQUEST) {
		memcpy(h.method, r->method, sizeof(h.method));
		h.target = arena_put(&at, r->hb, r->target_off, r->target_len);
	}
	h.status = r->status;
	h.http_major = r->major;
	h.http_minor = r->minor;
	h.headers = hdr;
	h.nheaders = r->nspans;
	h.body = r->body;
	h.content_length = r->body == TG_GATE_HTTP_BODY_LENGTH ? r->content_length : 0;
	h.keep_alive = r->keep_alive;
	h.upgrade = r->upgrade;
	/* RFC 9110 section 10.1.1: an HTTP/1.0 request's 100-continue is ignored */
	h.expect_continue = r->kind == TG_GATE_HTTP_REQUEST && r->expect_continue && r->minor == 1;
	if (r->cb.on_head != NULL)
		u = r->cb.on_head(r->arg, &h);
	if (u < 0) {
		r->user_aborted = 1;
		goto out;
	}
	if (u > 0) {
		r->user_paused = 1;
		http_parser_pause(p, 1);
	}
	rc = skip;
out:
	if (hdr != hdr_stack)
		free(hdr);
	if (arena != arena_stack)
		free(arena);
	return rc;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct tg_gate_http_reader *r = p->data;
	int u = 0;

	if (r->cb.on_body != NULL)
		u = r->cb.on_body(r->arg, at, len);
	if (u < 0) {
		r->user_aborted = 1;
	} else if (u > 0) {
		r->user_paused = 1;
		http_parser_pause(p, 1);
	}
	return u < 0 ? -1 : 0;
}

/* Every message ends with a pause, so that the reader checks the next head. */
static int
on_message_complete(http_parser *p)
{
	struct tg_gate_http_reader *r = p->data;

	r->msg_done = 1;
	http_parser_pause(p, 1);
	return 0;
}

static void
parser_refuse(struct tg_gate_http_reader *r, enum http_errno e)
{
	char why[sizeof(r->err.reason)];
	int status = 400;

	if (e == HPE_HEADER_OVERFLOW)
		status = 431;
	else if (e == HPE_INVALID_METHOD)
		status = 501;
	else if (e == HPE_INVALID_VERSION)
		status = 505;
	if (e == HPE_INVALID_EOF_STATE)
		snprintf(why, sizeof(why), "the connection closed in the middle of the %s",
		         r->kind == TG_GATE_HTTP_REQUEST ? "request" : "response");
	else if (e == HPE_INVALID_CHUNK_SIZE)
		snprintf(why, sizeof(why), "a chunk size is malformed or too large");
	else
		snprintf(why, sizeof(why), "the %s is malformed: %s",
		         r->kind == TG_GATE_HTTP_REQUEST ? "request" : "response",
		         http_errno_description(e));
	refuse(r, status, why);
}

/* One http_parser_execute over buf[0..n); *used bytes taken. */
static enum run
run_parser(struct tg_gate_http_reader *r, const char *buf, size_t n, size_t *used)
{
	enum http_errno e;
	enum run k = RUN_OK;

	if (HTTP_PARSER_ERRNO(&r->hp) == HPE_PAUSED)
		http_parser_pause(&r->hp, 0);
	r->msg_done = r->user_paused = r->user_aborted = 0;
	*used = http_parser_execute(&r->hp, &r->hs, buf, n);
	e = HTTP_PARSER_ERRNO(&r->hp);
	if (r->user_aborted) {
		set_error(r, TG_GATE_HTTP_ABORTED, 0, "a callback aborted");
		k = RUN_STOP;
	} else if (r->phase == PH_DEAD) {
		k = RUN_STOP; /* refused from a callback */
	} else if (e == HPE_PAUSED) {
		k = r->msg_done ? RUN_END : RUN_PAUSE;
	} else if (e != HPE_OK) {
		parser_refuse(r, e);
		k = RUN_STOP;
	}
	return k;
}

static void
cs_bad(struct chunk_scan *c, int status, const char *why)
{
	if (c->st != CS_BAD) { /* the first reason stands */
		c->st = CS_BAD;
		c->status = status;
		c->why = why;
	}
}

#define CS_MALFORMED "a chunk-size line is malformed"

/* The chunk-size line after the size: BWS, extensions, CRLF. */
static void
cs_ext(struct chunk_scan *c, unsigned char ch)
{
	int ws = ch == ' ' || ch == '\t';

	switch (c->st) {
	case CS_SIZE_BWS:
	case CS_EXT_NAME_BWS:
		if (ch == ';')
			c->st = CS_EXT_START;
		else if (ch == '=' && c->st == CS_EXT_NAME_BWS)
			c->st = CS_EXT_VAL_START;
		else if (!ws)
			cs_bad(c, 400, CS_MALFORMED);
		break;
	case CS_EXT_START:
		if (tchar(ch))
			c->st = CS_EXT_NAME;
		else if (!ws)
			cs_bad(c, 400, CS_MALFORMED);
		break;
	case CS_EXT_NAME:
	case CS_EXT_TOKEN:
		if (ch == '\r')
			c->st = CS_SIZE_LF;
		else if (ch == ';')
			c->st = CS_EXT_START;
		else if (ws)
			c->st = c->st == CS_EXT_NAME ? CS_EXT_NAME_BWS : CS_SIZE_BWS;
		else if (ch == '=' && c->st == CS_EXT_NAME)
			c->st = CS_EXT_VAL_START;
		else if (!tchar(ch))
			cs_bad(c, 400, CS_MALFORMED);
		break;
	case CS_EXT_VAL_START:
		if (tchar(ch))
			c->st = CS_EXT_TOKEN;
		else if (ch == '"')
			c->st = CS_EXT_QUOTED;
		else if (!ws)
			cs_bad(c, 400, CS_MALFORMED);
		break;
	case CS_EXT_QUOTED: /* RFC 9110 section 5.6.4: qdtext and quoted-pair */
		if (ch == '"')
			c->st = CS_EXT_AFTER;
		else if (ch == '\\')
			c->st = CS_EXT_QESC;
		else if (!field_char(ch))
			cs_bad(c, 400, CS_MALFORMED);
		break;
	case CS_EXT_QESC:
		if (field_char(ch))
			c->st = CS_EXT_QUOTED;
		else
			cs_bad(c, 400, CS_MALFORMED);
		break;
	case CS_EXT_AFTER:
		if (ch == ';')
			c->st = CS_EXT_START;
		else if (ch == '\r')
			c->st = CS_SIZE_LF;
		else if (ws)
			c->st = CS_SIZE_BWS;
		else
			cs_bad(c, 400, CS_MALFORMED);
		break;
	default:
		cs_bad(c, 400, CS_MALFORMED);
		break;
	}
}

/* The chunk-size: hex digits, then BWS, ';' or CRLF. */
static void
cs_size(struct chunk_scan *c, unsigned char ch)
{
	int v = hex_value(ch);

	if (v >= 0 && (c->size != 0 || v != 0) && ++c->digits > CHUNK_SIZE_DIGITS) {
		cs_bad(c, 400, "a chunk size is too large");
	} else if (v >= 0) {
		c->size = c->size * 16 + (uint64_t)v;
		c->st = CS_SIZE;
	} else if (c->st == CS_SIZE_START) {
		cs_bad(c, 400, "a chunk size is not a hex number");
	} else if (ch == '\r') {
		c->st = CS_SIZE_LF;
	} else if (ch == ';') {
		c->st = CS_EXT_START;
	} else if (ch == ' ' || ch == '\t') {
		c->st = CS_SIZE_BWS;
	} else if (ch == '\n') {
		cs_bad(c, 400, "a chunk-size line ends with a bare LF: lines must end with CRLF");
	} else {
		cs_bad(c, 400, "a chunk size is not a hex number");
	}
}

/* The trailer section: field lines, then the final CRLF. */
static void
cs_trailer(struct chunk_scan *c, const struct tg_gate_http_limits *lim, unsigned char ch)
{
	if (++c->trailer > lim->header_bytes)
		cs_bad(c, 431, "the trailer section is larger than the gate's header_bytes limit");
	switch (c->st) {
	case CS_TR_START:
		if (ch == '\r') {
			c->st = CS_END_LF;
		} else if (ch == ' ' || ch == '\t') {
			cs_bad(c, 400, "the trailer section holds a folded line (obs-fold)");
		} else if (!tchar(ch)) {
			cs_bad(c, 400, "a trailer field name is not a token");
		} else if (++c->ntrailers > lim->header_count) {
			cs_bad(c, 431, "the trailer section has too many fields");
		} else {
			c->st = CS_TR_NAME;
		}
		break;
	case CS_TR_NAME:
		if (ch == ':')
			c->st = CS_TR_VALUE;
		else if (!tchar(ch))
			cs_bad(c, 400, "a trailer field name is not a token");
		break;
	case CS_TR_VALUE:
		if (ch == '\r')
			c->st = CS_TR_LF;
		else if (!field_char(ch))
			cs_bad(c, 400, "a trailer field value holds a control byte or bare LF");
		break;
	case CS_TR_LF:
	case CS_END_LF:
		if (ch != '\n')
			cs_bad(c, 400,
			       "the trailer section has a bare CR: lines must end with CRLF");
		else
			c->st = c->st == CS_TR_LF ? CS_TR_START : CS_DONE;
		break;
	default:
		cs_bad(c, 400, "the trailer section is malformed");
		break;
	}
}

/* One byte of chunk framing (not of chunk-data). */
static void
cs_byte(struct chunk_scan *c, const struct tg_gate_http_limits *lim, unsigned char ch)
{
	if (c->st <= CS_SIZE_LF && ++c->line > lim->request_line)
		cs_bad(c, 400, "a chunk-size line is longer than the gate's request_line limit");
	switch (c->st) {
	case CS_SIZE_START:
	case CS_SIZE:
		cs_size(c, ch);
		break;
	case CS_SIZE_LF:
		if (ch != '\n') {
			cs_bad(c, 400, "a chunk-size line has a bare CR: lines must end with CRLF");
		} else {
			c->line = 0;
			c->st = c->size == 0 ? CS_TR_START : CS_DATA;
		}
		break;
	case CS_DATA_CR:
		if (ch != '\r')
			cs_bad(c, 400, "chunk data is longer than its chunk size");
		else
			c->st = CS_DATA_LF;
		break;
	case CS_DATA_LF:
		if (ch != '\n') {
			cs_bad(c, 400,
			       "chunk data is followed by a bare CR: lines must end with CRLF");
		} else {
			c->st = CS_SIZE_START;
			c->size = 0;
			c->digits = 0;
		}
		break;
	case CS_TR_START:
	case CS_TR_NAME:
	case CS_TR_VALUE:
	case CS_TR_LF:
	case CS_END_LF:
		cs_trailer(c, lim, ch);
		break;
	default:
		cs_ext(c, ch);
		break;
	}
}

/* Scans d[0..n) of a chunked body; returns the bytes accepted. */
static size_t
cs_scan(struct chunk_scan *c, const struct tg_gate_http_limits *lim, const char *d, size_t n)
{
	size_t i = 0, take;

	while (i < n && c->st != CS_DONE && c->st != CS_BAD) {
		if (c->st == CS_DATA) {
			take = c->size < n - i ? (size_t)c->size : n - i;
			c->size -= take;
			i += take;
			if (c->size == 0)
				c->st = CS_DATA_CR;
			continue;
		}
		cs_byte(c, lim, (unsigned char)d[i]);
		if (c->st != CS_BAD)
			i++;
	}
	return i;
}

/*
 * Back to reading a head. The head buffers are freed: an idle keep-alive
 * connection holds no more than the reader itself.
 */
static void
head_reset(struct tg_gate_http_reader *r)
{
	free(r->hb);
	free(r->spans);
	r->hb = NULL;
	r->spans = NULL;
	r->hb_cap = r->spans_cap = 0;
	r->hb_len = r->hb_fed = r->line_start = 0;
	r->start_seen = 0;
	r->nspans = 0;
	r->phase = PH_HEAD;
}

/* The message ended: on_end, then the next message (or a pause). */
static enum tg_gate_http_rc
message_end(struct tg_gate_http_reader *r)
{
	enum tg_gate_http_rc rc = TG_GATE_HTTP_OK;
	int upgraded = r->upgrade, u = 0;

	head_reset(r);
	if (r->cb.on_end != NULL)
		u = r->cb.on_end(r->arg);
	if (u < 0) {
		set_error(r, TG_GATE_HTTP_ABORTED, 0, "a callback aborted");
		rc = TG_GATE_HTTP_ABORTED;
	} else if (u > 0 || upgraded) {
		/* after an upgrade the bytes that follow belong to another protocol */
		rc = TG_GATE_HTTP_PAUSED;
	}
	return rc;
}

/* The head is complete and checked: http-parser reads it next. */
static int
head_done(struct tg_gate_http_reader *r)
{
	int rc = head_framing(r);

	if (rc == 0) {
		http_parser_init(&r->hp,
		                 r->kind == TG_GATE_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE);
		r->hp.data = r;
		r->hb_fed = 0;
		r->phase = PH_PARSE;
	}
	return rc;
}

/* What a run means for feed: the rc to return, or -1 to go on. */
static int
after_run(struct tg_gate_http_reader *r, enum run k)
{
	int rc = -1;

	if (k == RUN_PAUSE) {
		rc = TG_GATE_HTTP_PAUSED;
	} else if (k == RUN_END) {
		rc = (int)message_end(r);
		if (rc == TG_GATE_HTTP_OK)
			rc = -1;
	} else if (k == RUN_STOP) {
		rc = (int)r->dead_rc;
	}
	return rc;
}

/* PH_PARSE: feeds the rest of the head; the rc to return, or -1 to go on. */
static int
step_parse(struct tg_gate_http_reader *r)
{
	size_t n = 0;
	enum run k = run_parser(r, r->hb + r->hb_fed, r->hb_len - r->hb_fed, &n);

	r->hb_fed += n;
	if (k == RUN_OK) { /* the head is in, a body follows */
		r->phase = PH_BODY;
		memset(&r->cs, 0, sizeof(r->cs));
		r->cs_ahead = 0;
	}
	return after_run(r, k);
}

/* PH_BODY over data[*pos..len); the rc to return, or -1 to go on. */
static int
step_body(struct tg_gate_http_reader *r, const char *data, size_t len, size_t *pos)
{
	size_t avail = len - *pos, lim = avail, n = 0;
	enum run k = RUN_STOP;

	if (r->chunked) {
		if (r->cs_ahead < avail)
			r->cs_ahead += cs_scan(&r->cs, &r->lim, data + *pos + r->cs_ahead,
			                       avail - r->cs_ahead);
		lim = r->cs_ahead < avail ? r->cs_ahead : avail;
	}
	if (lim == 0 && r->cs.st == CS_BAD) {
		refuse(r, r->cs.status, r->cs.why);
	} else if (lim == 0) { /* the scanner saw the end, http-parser did not */
		refuse(r, 400, CHUNKED_AMBIGUOUS);
	} else {
		k = run_parser(r, data + *pos, lim, &n);
		*pos += n;
		if (r->chunked)
			r->cs_ahead -= n < r->cs_ahead ? n : r->cs_ahead;
		/* http-parser must end a chunked message where the scanner did */
		if (k == RUN_END && r->chunked && (r->cs.st != CS_DONE || r->cs_ahead != 0)) {
			refuse(r, 400, CHUNKED_AMBIGUOUS);
			k = RUN_STOP;
		}
	}
	return after_run(r, k);
}

/* A response's EOF (feed with len 0 and nothing pending). */
static int
step_eof(struct tg_gate_http_reader *r)
{
	size_t n = 0;
	enum run k;
	int rc = TG_GATE_HTTP_OK;

	if (r->phase == PH_HEAD && r->hb_len > 0) {
		refuse(r, 400, "the connection closed in the middle of the response head");
		rc = (int)r->dead_rc;
	} else if (r->phase != PH_HEAD) {
		k = run_parser(r, "", 0, &n);
		if (k == RUN_OK || k == RUN_PAUSE) {
			refuse(r, 400, "the connection closed in the middle of the response");
			k = RUN_STOP;
		}
		rc = after_run(r, k);
		if (rc < 0)
			rc = TG_GATE_HTTP_OK;
	}
	return rc;
}

enum tg_gate_http_rc
tg_gate_http_reader_feed(struct tg_gate_http_reader *r, const char *data, size_t len, size_t *used,
                         struct tg_gate_http_error *e)
{
	size_t pos = 0;
	int rc = -1, pending = 0;

	while (rc < 0) {
		if (r->phase == PH_DEAD) {
			rc = r->dead_rc;
		} else if (r->phase == PH_PARSE) {
			pending = 1;
			rc = step_parse(r);
		} else if (pos == len) {
			rc = TG_GATE_HTTP_OK;
			if (len == 0 && !pending && r->kind == TG_GATE_HTTP_RESPONSE)
				rc = step_eof(r);
		} else if (r->phase == PH_HEAD) {
			int k = head_collect(r, data, len, &pos);

			if (k < 0 || (k == 1 && head_done(r) != 0))
				rc = r->dead_rc;
		} else {
			rc = step_body(r, data, len, &pos);
		}
	}
	if (used != NULL)
		*used = pos;
	if (rc == TG_GATE_HTTP_REFUSED && e != NULL)
		*e = r->err;
	return (enum tg_gate_http_rc)rc;
}

int
tg_gate_http_reader_new(enum tg_gate_http_kind kind, const struct tg_gate_http_limits *lim,
                        const struct tg_gate_http_cb *cb, void *arg,
                        struct tg_gate_http_reader **out, struct tg_error *err)
{
	struct tg_gate_http_reader *r = calloc(1, sizeof(*r));
	int rc = 0;

	*out = NULL;
	if (r == NULL) {
		rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory for an HTTP reader");
	} else {
		r->kind = kind;
		if (lim != NULL)
			r->lim = *lim;
		if (r->lim.request_line == 0)
			r->lim.request_line = DEFAULT_REQUEST_LINE;
		if (r->lim.header_bytes == 0)
			r->lim.header_bytes = DEFAULT_HEADER_BYTES;
		if (r->lim.header_count == 0)
			r->lim.header_count = DEFAULT_HEADER_COUNT;
		if (cb != NULL)
			r->cb = *cb;
		r->arg = arg;
		r->hs.on_headers_complete = on_headers_complete;
		r->hs.on_body = on_body;
		r->hs.on_message_complete = on_message_complete;
		r->phase = PH_HEAD;
		*out = r;
	}
	return rc;
}

void
tg_gate_http_reader_expect(struct tg_gate_http_reader *r, const char *method)
{
	r->expect_head = method != NULL && strcmp(method, "HEAD") == 0;
}

void
tg_gate_http_reader_free(struct tg_gate_http_reader *r)
{
	if (r != NULL) {
		free(r->hb);
		free(r->spans);
		free(r);
	}
}

/* ---- writers ---- */

static const struct {
	int status;
	const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

static const char *
reason_of(int status)
{
	const char *reason = "";
	size_t i;

	for (i = 0; reason[0] == '\0' && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			reason = reasons[i].reason;
	return reason;
}

/* Hop-by-hop fields (RFC 9110 section 7.6.1), Proxy-Authorization (meant
 * for the proxy it was sent to, section 11.7.2: the agent, when a client
 * uses it as its HTTP proxy; never for an upstream) and the framing the
 * gate writes. */
static int
hop_by_hop(const char *name)
{
	static const struct {
		const char *name;
		size_t len;
	} hop[] = {
	    {"connection", 10}, {"keep-alive", 10},     {"proxy-connection", 16},
	    {"te", 2},          {"trailer", 7},         {"transfer-encoding", 17},
	    {"upgrade", 7},     {"content-length", 14}, {"proxy-authorization", 19},
	};
	size_t i, n = strlen(name);
	int found = 0;

	/* only names of the same length are compared */
	for (i = 0; !found && i < sizeof(hop) / sizeof(hop[0]); i++)
		found = hop[i].len == n && strcasecmp(name, hop[i].name) == 0;
	return found;
}

/* 1 when name is "Connection", in any case. */
static int
is_connection(const char *name)
{
	return (name[0] | 0x20) == 'c' && strcasecmp(name, "connection") == 0;
}

/* The index of h's first Connection field; h->nheaders when it has none. */
static size_t
first_connection(const struct tg_gate_http_head *h)
{
	size_t i = 0;

	while (i < h->nheaders && !is_connection(h->headers[i].name))
		i++;
	return i;
}

/* 1 when a Connection field of h names the field name (conn:
 * first_connection(h), where the search starts). */
static int
named_by_connection(const struct tg_gate_http_head *h, size_t conn, const char *name)
{
	size_t i;
	int found = 0;

	/* Host is end to end, and HTTP/1.1 needs it (RFC 9112 section 3.2) */
	if (conn < h->nheaders && strcasecmp(name, "host") != 0)
		for (i = conn; !found && i < h->nheaders; i++)
			found = is_connection(h->headers[i].name) &&
			        list_has(h->headers[i].value, strlen(h->headers[i].value), name);
	return found;
}

static int
token_ok(const char *s)
{
	size_t i = 0;

	/* tchar('\0') is 0: the loop stops at the end */
	if (s != NULL)
		while (tchar((unsigned char)s[i]))
			i++;
	return s != NULL && i > 0 && s[i] == '\0';
}

/* 1 when v[0..n) holds no CR, LF or NUL: 8 bytes at a time, a word with no
 * byte below 0x0e (where all three are) passing with one test. */
static int
value_ok(const char *v, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t w;
	size_t i = 0, j;
	int ok = 1;

	while (ok && i < n) {
		w = 0;
		if (n - i >= 8) {
			memcpy(&w, v + i, 8);
			/* some byte below 0x0e (the test is exact for a bound up to 0x80) */
			if (((w - ones * 0x0e) & ~w & highs) == 0) {
				i += 8;
				continue;
			}
		}
		for (j = i + 8 < n ? i + 8 : n; ok && i < j; i++)
			ok = v[i] != '\r' && v[i] != '\n' && v[i] != '\0';
	}
	return ok;
}

/* The extras' names are tokens and their values hold no CR, LF or NUL. */
static int
extras_ok(const struct tg_gate_http_extra *extra, size_t nextra)
{
	size_t i;
	int ok = nextra == 0 || extra != NULL;

	for (i = 0; ok && i < nextra; i++)
		ok = token_ok(extra[i].name) &&
		     (extra[i].value != NULL ? value_ok(extra[i].value, extra[i].value_len)
		                             : extra[i].value_len == 0);
	return ok;
}

static int
in_extras(const char *name, const struct tg_gate_http_extra *extra, size_t nextra)
{
	size_t i;
	int found = 0;

	/* the first letters first: most client fields differ there */
	for (i = 0; !found && i < nextra; i++)
		found = (name[0] | 0x20) == (extra[i].name[0] | 0x20) &&
		        strcasecmp(name, extra[i].name) == 0;
	return found;
}

/*
 * A head being written: in a buffer on the stack, moved to the heap when
 * it outgrows it, added to the output with one evbuffer_add (commit):
 * nothing of a head that could not be written reaches the output.
 */
struct hw {
	char *p;
	size_t len, cap;
	int oom;
	char stack[2048];
};

static void
hw_init(struct hw *w)
{
	w->p = w->stack;
	w->len = 0;
	w->cap = sizeof(w->stack);
	w->oom = 0;
}

/* Room for n more bytes: 1, or 0 when out of memory (then and ever after). */
static int
hw_room(struct hw *w, size_t n)
{
	size_t cap = w->cap;
	char *np;

	if (!w->oom && w->cap - w->len < n) {
		while (cap - w->len < n && cap <= SIZE_MAX / 2)
			cap *= 2;
		np = cap - w->len < n ? NULL : w->p == w->stack ? malloc(cap) : realloc(w->p, cap);
		if (np == NULL) {
			w->oom = 1;
		} else {
			if (w->p == w->stack)
				memcpy(np, w->stack, w->len);
			w->p = np;
			w->cap = cap;
		}
	}
	return !w->oom;
}

/* Appends n bytes of s, with room made (hw_room) first. */
static void
hw_copy(struct hw *w, const char *s, size_t n)
{
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

/* Appends n bytes of s: 1, or 0 when out of memory (then and ever after). */
static int
hw_put(struct hw *w, const char *s, size_t n)
{
	int ok = hw_room(w, n);

	if (ok)
		hw_copy(w, s, n);
	return ok;
}

/* "NAME: VALUE\r\n", room made once for the whole line. */
static int
add_field(struct hw *b, const char *name, const char *value, size_t n)
{
	size_t nl = strlen(name);
	int ok = n <= SIZE_MAX - nl - 4 && hw_room(b, nl + n + 4);

	if (ok) {
		hw_copy(b, name, nl);
		hw_copy(b, ": ", 2);
		hw_copy(b, value, n);
		hw_copy(b, "\r\n", 2);
	}
	return ok ? 0 : -1;
}

static int
add_extras(struct hw *b, const struct tg_gate_http_extra *extra, size_t nextra)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < nextra; i++)
		rc = add_field(b, extra[i].name, extra[i].value != NULL ? extra[i].value : "",
		               extra[i].value_len);
	return rc;
}

/* Appends the NUL-terminated s. */
static int
add_str(struct hw *b, const char *s)
{
	return hw_put(b, s, strlen(s));
}

/* "Content-Length: N\r\n". */
static int
add_length(struct hw *b, uint64_t n)
{
	char t[TG_DEC_MAX];
	size_t w = tg_dec_u64(n, t);

	return hw_put(b, "Content-Length: ", 16) && hw_put(b, t, w) && hw_put(b, "\r\n", 2);
}

/* "HTTP/1.1 STATUS REASON\r\n". */
static int
add_status(struct hw *b, int status)
{
	char t[TG_DEC_MAX];
	size_t w = tg_dec_i64(status, t);

	return hw_put(b, "HTTP/1.1 ", 9) && hw_put(b, t, w) && hw_put(b, " ", 1) &&
	       add_str(b, reason_of(status)) && hw_put(b, "\r\n", 2);
}

/* Adds the head to out when ok; frees w's memory. 0 or TG_ERR_ALLOC. */
static int
commit(struct hw *w, int ok, struct evbuffer *out)
{
	int r = TG_ERR_ALLOC;

	if (ok && !w->oom && evbuffer_add(out, w->p, w->len) == 0)
		r = 0;
	if (w->p != w->stack)
		free(w->p);
	w->p = w->stack;
	return r;
}

/* Visible ASCII only: what the gate puts in a request line. */
static int
vchars_ok(const char *s)
{
	size_t i = 0;

	while (s != NULL && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
		i++;
	return s != NULL && i > 0 && s[i] == '\0';
}

/*
 * A field only a proxy may set: the gate's own (X-Tokengate-*), and those
 * that tell an upstream who the client is or how it came (Forwarded,
 * X-Forwarded-*, X-Real-IP), which an upstream believes when its proxy
 * sends them: a client's own copies never go on.
 */
static int
proxy_only(const char *name)
{
	return (name[0] | 0x20) == 'x' ? strncasecmp(name, "x-tokengate-", 12) == 0 ||
	                                     strncasecmp(name, "x-forwarded-", 12) == 0 ||
	                                     strcasecmp(name, "x-real-ip") == 0
	                               : strcasecmp(name, "forwarded") == 0;
}

/* The client's fields the upstream request keeps. */
static int
request_fields(const struct tg_gate_http_head *h, const struct tg_gate_http_extra *extra,
               size_t nextra, struct hw *b)
{
	const char *name;
	size_t i, conn = first_connection(h);
	int rc = 0;

	for (i = 0; rc == 0 && i < h->nheaders; i++) {
		name = h->headers[i].name;
		if (!hop_by_hop(name) && !named_by_connection(h, conn, name) && !proxy_only(name) &&
		    !in_extras(name, extra, nextra))
			rc = add_field(b, name, h->headers[i].value, strlen(h->headers[i].value));
	}
	return rc;
}

int
tg_gate_http_request_head(const struct tg_gate_http_head *h, const char *path_and_query,
                          const struct tg_gate_http_extra *extra, size_t nextra,
                          struct evbuffer *out)
{
	struct hw w, *b = &w;
	int ok, rc = TG_ERR_INVALID_ARG;

	if (h != NULL && out != NULL && token_ok(h->method) && vchars_ok(path_and_query) &&
	    extras_ok(extra, nextra)) {
		hw_init(b);
		ok = add_str(b, h->method) && add_str(b, " ") && add_str(b, path_and_query) &&
		     add_str(b, " HTTP/1.1\r\n");
		ok = ok && request_fields(h, extra, nextra, b) == 0;
		ok = ok && add_extras(b, extra, nextra) == 0;
		if (ok && h->body == TG_GATE_HTTP_BODY_LENGTH)
			ok = add_length(b, h->content_length);
		else if (ok && h->body == TG_GATE_HTTP_BODY_CHUNKED)
			ok = add_str(b, "Transfer-Encoding: chunked\r\n");
		ok = ok &&
		     add_str(b, h->upgrade ? "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
		                           : "Connection: keep-alive\r\n\r\n");
		rc = commit(b, ok, out);
	}
	return rc;
}

/* A response field the gate passes on to the client. */
static int
response_keeps(const struct tg_gate_http_head *h, size_t conn, const char *name)
{
	int keep;

	if (h->status == 101 && strcasecmp(name, "upgrade") == 0)
		keep = 1;
	else if (strcasecmp(name, "content-length") == 0)
		/* no body, but the length of the one a GET would get (HEAD, 304) */
		keep =
		    h->body == TG_GATE_HTTP_BODY_NONE && h->status / 100 != 1 && h->status != 204;
	else
		keep = !hop_by_hop(name) && !named_by_connection(h, conn, name);
	return keep;
}

/* The upstream's fields the client response keeps. */
static int
response_fields(const struct tg_gate_http_head *h, struct hw *b)
{
	size_t i, conn = first_connection(h);
	int rc = 0;

	for (i = 0; rc == 0 && i < h->nheaders; i++)
		if (response_keeps(h, conn, h->headers[i].name))
			rc = add_field(b, h->headers[i].name, h->headers[i].value,
			               strlen(h->headers[i].value));
	return rc;
}

int
tg_gate_http_response_head_to(const struct tg_gate_http_head *h, int client_http11, int keep_alive,
                              int *chunked_out, struct evbuffer *out)
{
	struct hw w, *b = &w;
	const char *conn;
	int ok, chunked = 0, rc = TG_ERR_INVALID_ARG;

	/* RFC 9112 6.1, 7: no transfer coding to an HTTP/1.0 client; a body
	 * of unknown length reaches it decoded, ended by closing */
	if (!client_http11 && (h == NULL || h->body == TG_GATE_HTTP_BODY_CHUNKED ||
	                       h->body == TG_GATE_HTTP_BODY_CLOSE))
		keep_alive = 0;
	conn = keep_alive ? "keep-alive" : "close";
	if (h != NULL && out != NULL && h->status >= 100 && h->status <= 999) {
		chunked = client_http11 && (h->body == TG_GATE_HTTP_BODY_CHUNKED ||
		                            (h->body == TG_GATE_HTTP_BODY_CLOSE && keep_alive));
		if (h->status == 101)
			conn = "Upgrade";
		hw_init(b);
		ok = add_status(b, h->status);
		ok = ok && response_fields(h, b) == 0;
		if (ok && h->body == TG_GATE_HTTP_BODY_LENGTH)
			ok = add_length(b, h->content_length);
		if (ok && chunked)
			ok = add_str(b, "Transfer-Encoding: chunked\r\n");
		/* an interim response (100, 103) says nothing about the connection */
		if (ok && (h->status == 101 || h->status / 100 != 1))
			ok = add_str(b, "Connection: ") && add_str(b, conn) && add_str(b, "\r\n");
		ok = ok && hw_put(b, "\r\n", 2);
		rc = commit(b, ok, out);
	}
	if (chunked_out != NULL)
		*chunked_out = chunked;
	return rc;
}

int
tg_gate_http_response_head(const struct tg_gate_http_head *h, int keep_alive, int *chunked_out,
                           struct evbuffer *out)
{
	return tg_gate_http_response_head_to(h, 1, keep_alive, chunked_out, out);
}

int
tg_gate_http_answer(int status, const char *json_body, const struct tg_gate_http_extra *extra,
                    size_t nextra, int keep_alive, struct evbuffer *out)
{
	struct hw w, *b = &w;
	size_t n = json_body != NULL ? strlen(json_body) : 0;
	int ok, rc = TG_ERR_INVALID_ARG;

	if (out != NULL && status >= 100 && status <= 999 && extras_ok(extra, nextra)) {
		hw_init(b);
		ok = add_status(b, status) && add_str(b, "Content-Type: application/json\r\n") &&
		     add_length(b, n);
		ok = ok && add_extras(b, extra, nextra) == 0;
		ok = ok && add_str(b, keep_alive ? "Connection: keep-alive\r\n\r\n"
		                                 : "Connection: close\r\n\r\n");
		ok = ok && (n == 0 || hw_put(b, json_body, n));
		rc = commit(b, ok, out);
	}
	return rc;
}

int
tg_gate_http_retryable(const char *method, enum tg_gate_http_body body, int upgrade)
{
	static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
	size_t i;
	int r = 0;

	if (method != NULL && body == TG_GATE_HTTP_BODY_NONE && !upgrade)
		for (i = 0; i < sizeof(idem) / sizeof(idem[0]) && !r; i++)
			r = strcmp(method, idem[i]) == 0;
	return r;
}

int
tg_gate_http_chunk(const char *data, size_t len, struct evbuffer *out)
{
	int ok, rc = TG_ERR_INVALID_ARG;

	if (out != NULL && (data != NULL || len == 0)) {
		if (len == 0)
			ok = evbuffer_add(out, "0\r\n\r\n", 5) == 0;
		else
			ok = evbuffer_add_printf(out, "%zx\r\n", len) >= 0 &&
			     evbuffer_add(out, data, len) == 0 && evbuffer_add(out, "\r\n", 2) == 0;
		rc = ok ? 0 : TG_ERR_ALLOC;
	}
	return rc;
}

size_t
tg_gate_http_key_header(const struct tg_prov *p, char *out, size_t cap)
{
	size_t i = 0, len = 0;
	int n;

	while (p != NULL && p->serial[i] != '\0' && (unsigned char)p->serial[i] > 0x20 &&
	       (unsigned char)p->serial[i] < 0x7f && strchr(";,\"", p->serial[i]) == NULL)
		i++;
	if (p != NULL && out != NULL && cap > 0 && p->serial[i] == '\0') {
		n = snprintf(out, cap, "level=%s; pin=%s; touch=%s; serial=%s",
		             tg_prov_level_name(p->level), tg_att_pin_name(p->pin_policy),
		             tg_att_touch_name(p->touch_policy), p->serial);
		if (n > 0 && (size_t)n < cap)
			len = (size_t)n;
	}
	if (len == 0 && out != NULL && cap > 0)
		out[0] = '\0';
	return len;
}
