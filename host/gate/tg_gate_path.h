/*
 * tg_gate_path.h — the gate's normal form of a request-target's path.
 *
 * Pure: bytes in, bytes out, no I/O. Every route is matched against the
 * normalized path only, so two spellings of one resource always meet the
 * same rule.
 *
 * The input is an origin-form request-target ("/a/b?q"; the absolute-form
 * "http://host/a/b?q" through tg_gate_path_target). The path is the
 * part before the first '?'; the query (from '?' on, tg_gate_path_query)
 * is not normalized and not matched. Normalization:
 *   - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded;
 *     every other %XX is kept, its hex digits upper-cased;
 *   - then, segment by segment: "." segments dropped, ".." removes the
 *     segment before it, empty segments (repeated slashes) dropped;
 *   - a trailing slash is kept (also the one "/a/." or "/a/b/.." leaves),
 *     so "/admin/" stays "/admin/"; matching ignores it (tg_gate_policy.h).
 * Refused, with *why naming the reason: an empty path or one not starting
 * with '/'; ".." above the root; an encoded slash (%2F) or backslash (%5C);
 * an encoded NUL (%00); a raw control byte, NUL, DEL or byte above 0x7E,
 * or any raw character RFC 3986 does not allow in a path segment (only
 * unreserved, sub-delims, ':', '@' and '%' are: so no space, '\', '#',
 * '"', '<', '>', '[', ']', '^', '`', '{', '|', '}'); a bad escape ('%' not
 * followed by two hex digits); output longer than cap - 1 at any step
 * (also when a later ".." would shorten it).
 */
#ifndef TG_GATE_PATH_H
#define TG_GATE_PATH_H

#include <stddef.h>

/* A path the gate accepts is at most this long (with the NUL). */
#define TG_GATE_PATH_MAX 4096

/*
 * Normalizes the path of the request-target raw (len bytes, need not be
 * NUL-terminated) into out (cap bytes, NUL-terminated). Returns 0, or
 * TG_ERR_FORMAT with *why (static text, never NULL on failure) saying why
 * the path is refused; out then holds "". why may be NULL.
 */
int tg_gate_path_normalize(const char *raw, size_t len, char *out, size_t cap, const char **why);

/* The offset of the query's '?' in raw (len bytes), or len when none. */
size_t tg_gate_path_query(const char *raw, size_t len);

/* Where a request-target's parts are (tg_gate_path_target). */
struct tg_gate_target {
	size_t path_off; /* the path (or the query, when the path is empty) */
	size_t path_len; /* the path's length, up to the query's '?' or the end */
	size_t auth_off; /* absolute-form: the authority ("host[:port]") */
	size_t auth_len; /* 0: origin-form */
};

/*
 * Normalizes the path of the request-target raw (len bytes) of a request
 * as tg_gate_path_normalize does, accepting both forms a server must
 * (RFC 9112 section 3.2): origin-form ("/a/b?q") and absolute-form
 * ("http://host:port/a/b?q"; scheme http or https, in any case). For
 * absolute-form an empty path is "/", and the authority must be a host
 * (a name, an IPv4 address or a bracketed IPv6 address, percent escapes
 * allowed in a name) with an optional port of at most five digits; t says
 * where it is (the request's Host is then this authority, section 3.2.2).
 * Refused with TG_ERR_FORMAT and *why: userinfo ('@') in the authority, an
 * empty host, another scheme, the asterisk-form ("*": OPTIONS of the whole
 * server names no path a route could match), and whatever
 * tg_gate_path_normalize refuses. On failure out holds "" and *t zeros.
 * why may be NULL.
 */
int tg_gate_path_target(const char *raw, size_t len, char *out, size_t cap,
                        struct tg_gate_target *t, const char **why);

/*
 * Whether a[0..n) is an authority tg_gate_path_target accepts (a host
 * name, an IPv4 address or a bracketed IPv6 address, with an optional
 * port of at most five digits; no userinfo): NULL, or why not (static
 * text). Also the check of a route's `host:` (tg_gate_policy.h).
 */
const char *tg_gate_path_authority_bad(const char *a, size_t n);

#endif /* TG_GATE_PATH_H */
