/* path.c — normal form of a request-target's path (tg_gate_path.h). */
#include "tg_gate_path.h"

#include <stdint.h>
#include <string.h>

#include "tg_err.h"
#include "tg_hex.h"

/* Writer of the normalized path: out[0..n), capacity cap. */
struct pw {
	char *out;
	size_t cap;
	size_t n;
	int full;
};

static void
pw_put(struct pw *w, char c)
{
	if (w->n + 1 < w->cap)
		w->out[w->n++] = c;
	else
		w->full = 1;
}

static int
unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * Decodes one segment raw[0..n) (no raw '/') into seg (cap bytes): *sn its
 * length. Returns NULL or the reason it is refused.
 */
static const char *
decode_segment(const char *raw, size_t n, char *seg, size_t cap, size_t *sn)
{
	const char *why = NULL;
	size_t i = 0, o = 0;
	unsigned char c;
	char hex[3] = {0, 0, 0};
	uint8_t v = 0;
	size_t vn;

	while (why == NULL && i < n) {
		c = (unsigned char)raw[i];
		if (c < 0x20 || c > 0x7e) { /* also NUL, which strchr would match */
			why = "the path holds a control byte, NUL or non-ASCII byte "
			      "(percent-encode it)";
		} else if (!unreserved(c) && strchr("!$&'()*+,;=:@%", c) == NULL) {
			why = "the path holds a character that must be percent-encoded (such as "
			      "a space, '\\' or '#')";
		} else if (c != '%') {
			if (o + 1 >= cap)
				why = "the path is too long";
			else
				seg[o++] = (char)c;
			i++;
		} else if (i + 2 >= n || (hex[0] = raw[i + 1], hex[1] = raw[i + 2],
		                          tg_hex_decode(hex, &v, 1, &vn) != 0)) {
			why = "the path has a bad percent escape ('%' needs two hex digits)";
		} else {
			if (v == 0)
				why = "the path holds an encoded NUL (%00)";
			else if (v == '/')
				why = "the path holds an encoded slash (%2F)";
			else if (v == '\\')
				why = "the path holds an encoded backslash (%5C)";
			else if (unreserved(v)) {
				if (o + 1 >= cap)
					why = "the path is too long";
				else
					seg[o++] = (char)v;
			} else if (o + 3 >= cap) {
				why = "the path is too long";
			} else {
				seg[o++] = '%';
				tg_hex_encode_sep(&v, 1, TG_HEX_UPPER, '\0', seg + o, 3);
				o += 2;
			}
			i += 3;
		}
	}
	*sn = o;
	return why;
}

size_t
tg_gate_path_query(const char *raw, size_t len)
{
	size_t i = 0;

	while (i < len && raw[i] != '?')
		i++;
	return i;
}

int
tg_gate_path_normalize(const char *raw, size_t len, char *out, size_t cap, const char **why)
{
	struct pw w = {out, cap, 0, 0};
	const char *bad = NULL;
	size_t plen, i, start, sn, depth = 0;
	int trailing = 0;

	plen = raw != NULL ? tg_gate_path_query(raw, len) : 0;
	if (out == NULL || cap == 0)
		bad = "no room for the normalized path";
	else if (plen == 0 || raw[0] != '/')
		bad = "the path does not start with '/'";
	i = 1;
	while (bad == NULL && i <= plen) {
		char buf[TG_GATE_PATH_MAX];

		start = i;
		while (i < plen && raw[i] != '/')
			i++;
		bad = decode_segment(raw + start, i - start, buf, sizeof(buf), &sn);
		trailing = 0;
		if (bad != NULL) {
			/* refused */
		} else if (sn == 0 || (sn == 1 && buf[0] == '.')) {
			trailing = 1; /* "//", "/./", or a final "/" or "/." */
		} else if (sn == 2 && buf[0] == '.' && buf[1] == '.') {
			if (depth == 0) {
				bad = "the path climbs above the root with '..'";
			} else {
				while (w.n > 0 && w.out[w.n - 1] != '/')
					w.n--;
				if (w.n > 0)
					w.n--; /* the '/' before the removed segment */
				depth--;
				trailing = 1;
			}
		} else {
			pw_put(&w, '/');
			for (size_t k = 0; k < sn; k++)
				pw_put(&w, buf[k]);
			depth++;
		}
		i++; /* past the '/' (or the end) */
	}
	if (bad == NULL && (w.n == 0 || trailing))
		pw_put(&w, '/');
	if (bad == NULL && w.full)
		bad = "the path is too long";
	if (out != NULL && cap > 0)
		out[bad == NULL ? w.n : 0] = '\0';
	if (why != NULL)
		*why = bad;
	return bad == NULL ? 0 : TG_ERR_FORMAT;
}

/* Whether s[0..n) equals the lower-case word w in any case. */
static int
word_ieq(const char *s, size_t n, const char *w)
{
	size_t i = 0;

	while (i < n && w[i] != '\0' && (s[i] | 0x20) == w[i])
		i++;
	return i == n && w[i] == '\0';
}

static int
hexdig(int c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The authority of an absolute-form target or a route's host: RFC 3986
 * section 3.2, without userinfo. */
const char *
tg_gate_path_authority_bad(const char *a, size_t n)
{
	const char *why = NULL;
	size_t i = 0, port;

	if (memchr(a, '@', n) != NULL) {
		why = "the authority holds userinfo ('user@'): send the host alone";
	} else if (n > 0 && a[0] == '[') {
		/* IP-literal: an IPv6 address (IPvFuture is refused) */
		for (i = 1; i < n && (hexdig((unsigned char)a[i]) || a[i] == ':' || a[i] == '.');
		     i++)
			;
		if (i == 1 || i == n || a[i] != ']')
			why = "the authority has a malformed [IPv6] address";
		i++;
	} else {
		/* reg-name or IPv4address: unreserved, sub-delims, %XX */
		while (why == NULL && i < n && a[i] != ':') {
			if (a[i] == '%' && (i + 2 >= n || !hexdig((unsigned char)a[i + 1]) ||
			                    !hexdig((unsigned char)a[i + 2])))
				why = "the authority has a bad percent escape";
			else if (a[i] != '%' && !unreserved((unsigned char)a[i]) &&
			         strchr("!$&'()*+,;=", a[i]) == NULL)
				why = "the authority holds a character a host name cannot have";
			i += a[i] == '%' ? 3 : 1;
		}
		if (why == NULL && i == 0)
			why = "the authority has no host";
	}
	if (why == NULL && i < n) {
		/* ":" port, at most five digits */
		for (port = i + 1; port < n && a[port] >= '0' && a[port] <= '9'; port++)
			;
		if (a[i] != ':' || port != n || n - i - 1 > 5)
			why = "the authority has a malformed port";
	}
	return why;
}

int
tg_gate_path_target(const char *raw, size_t len, char *out, size_t cap, struct tg_gate_target *t,
                    const char **why)
{
	const char *bad = NULL;
	size_t s = 0, a, e;
	int rc = TG_ERR_FORMAT;

	memset(t, 0, sizeof(*t));
	while (raw != NULL && s < len && raw[s] != ':' && raw[s] != '/' && raw[s] != '?')
		s++;
	if (raw == NULL || len == 0 || raw[0] == '/') {
		/* origin-form (or nothing: tg_gate_path_normalize says why) */
		rc = tg_gate_path_normalize(raw, len, out, cap, &bad);
		t->path_len = rc == 0 ? tg_gate_path_query(raw, len) : 0;
	} else if (len == 1 && raw[0] == '*') {
		bad = "the asterisk-form request-target (OPTIONS *) names no path a route "
		      "could match: ask about a path (OPTIONS /path)";
	} else if (s + 3 > len || memcmp(raw + s, "://", 3) != 0) {
		bad = "the path does not start with '/'";
	} else if (!word_ieq(raw, s, "http") && !word_ieq(raw, s, "https")) {
		bad = "an absolute-form request-target must be an http or https URI";
	} else {
		/* the authority runs to the path, the query or the end */
		a = s + 3;
		for (e = a; e < len && raw[e] != '/' && raw[e] != '?'; e++)
			;
		if ((bad = tg_gate_path_authority_bad(raw + a, e - a)) == NULL) {
			t->path_off = e;
			t->path_len = tg_gate_path_query(raw + e, len - e);
			t->auth_off = a;
			t->auth_len = e - a;
			/* an empty path is "/" (RFC 9112 section 3.2.1) */
			rc = t->path_len == 0
			         ? tg_gate_path_normalize("/", 1, out, cap, &bad)
			         : tg_gate_path_normalize(raw + e, len - e, out, cap, &bad);
		}
	}
	if (rc != 0) {
		memset(t, 0, sizeof(*t));
		if (out != NULL && cap > 0)
			out[0] = '\0';
		rc = TG_ERR_FORMAT;
	}
	if (why != NULL)
		*why = bad;
	return rc;
}
