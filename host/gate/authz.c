/*
 * authz.c — the gate's authz mode (gate-int.h): answers nginx's
 * auth_request subrequests. nginx terminates the client's mTLS and asks,
 * for each request, over plain HTTP/1.1 (keep-alive) on a unix socket or a
 * loopback port; the gate takes nothing on nginx's word: it verifies the
 * client certificate nginx passes (X-Tokengate-Client-Cert) with the same
 * verifier as its own TLS handshakes, normalizes the original URI, decides
 * with the listener's policy, writes the audit record and answers 200 with
 * the identity, provenance and the route's injected headers, or 403 with
 * the reason. Verdicts are cached per worker by the SHA-256 of the
 * certificate header exactly as nginx sent it (made only after those bytes
 * decoded to a certificate, so a hit skips the decoding) and configuration
 * generation (a reload or a new CRL makes a new generation).
 */
#include "gate-int.h"

#include <errno.h>
#include <grp.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define AZ_NO_CERT    "no client certificate: the gate requires a token-backed client certificate"
#define AZ_HIGH       (64u * 1024u) /* answers waiting for nginx: stop reading above this */
#define AZ_TICK_MS    500u          /* idle connections look at the server's stop this often */
#define AZ_LINGER_MS  1000u         /* after the last answer: read and drop for this long */
#define AZ_IO_MAX     (64 * 1024)
#define AZ_READ       (16 * 1024) /* one read(2) per readable event: a subrequest is ~2 KiB */
#define AZ_RND        256         /* request-id bytes drawn at once (RAND_bytes costs a getpid) */
#define AZ_X_STACK    16          /* answer headers without a malloc */
#define AZ_BEGIN      "-----BEGIN CERTIFICATE-----\n"
#define AZ_HDR_MAX    (TG_GATE_AUTHZ_DER_MAX * 6) /* escaped PEM of the largest DER */
#define AZ_X_FIXED    4                           /* request id, route, identity, key (or reason) */
#define AZ_AUDIT_DOWN "the gate cannot write its audit log, so it refuses requests until it can"

/* ------------------------------------------------------------------ */
/* The certificate header                                              */
/* ------------------------------------------------------------------ */

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 3986 unreserved: what nginx's $ssl_client_escaped_cert leaves as is. */
static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* The URL escaping undone into text (cap >= len); NULL or the problem. */
static const char *
unescape(const char *esc, size_t len, char *text, size_t *n)
{
	const char *why = NULL;
	size_t i;
	int h1 = 0, h2 = 0;
	unsigned char c;

	*n = 0;
	for (i = 0; i < len && why == NULL; i++) {
		c = (unsigned char)esc[i];
		if (c == '%' && (len - i < 3 || (h1 = hexval((unsigned char)esc[i + 1])) < 0 ||
		                 (h2 = hexval((unsigned char)esc[i + 2])) < 0)) {
			why = "a '%' not followed by two hex digits";
		} else if (c == '%') {
			c = (unsigned char)(h1 * 16 + h2);
			i += 2;
		} else if (!unreserved(c)) {
			why = "a raw byte other than letters, digits, '-', '.', '_' and '~' (nginx "
			      "escapes every other byte as %XX)";
		}
		if (why == NULL && (c < 0x20 || c > 0x7e) && c != '\n')
			why = "the decoded text holds a control or non-ASCII byte";
		if (why == NULL)
			text[(*n)++] = (char)c;
	}
	return why;
}

/* What follows the END line (rest, n bytes): NULL when only newlines. */
static const char *
after_end(const char *rest, size_t n)
{
	const char *why = NULL;
	size_t i = 0;

	while (i < n && rest[i] == '\n')
		i++;
	if (i < n)
		why = memmem(rest, n, "-----BEGIN", 10) != NULL
		          ? "more than one certificate (nginx passes the client's leaf only)"
		          : "text after the END CERTIFICATE line";
	return why;
}

int
tg_gate_authz_cert_der(const char *esc, size_t len, uint8_t **der, size_t *der_len,
                       const char **why)
{
	char *text = NULL, *name = NULL, *hdr = NULL, *rest = NULL;
	unsigned char *data = NULL;
	const char *w = NULL;
	long dlen = 0, nrest;
	size_t n = 0;
	BIO *b = NULL;
	int r = TG_ERR_FORMAT;

	*der = NULL;
	*der_len = 0;
	if (len == 0) {
		w = "the header is empty";
		goto out;
	}
	if (len > AZ_HDR_MAX) {
		w = "the header is longer than the largest certificate the gate takes";
		goto out;
	}
	if ((text = malloc(len)) == NULL) {
		r = TG_ERR_ALLOC;
		w = "out of memory";
		goto out;
	}
	if ((w = unescape(esc, len, text, &n)) != NULL)
		goto out;
	if (n < sizeof(AZ_BEGIN) - 1 || memcmp(text, AZ_BEGIN, sizeof(AZ_BEGIN) - 1) != 0) {
		w = "it does not start with -----BEGIN CERTIFICATE-----";
		goto out;
	}
	if ((b = BIO_new_mem_buf(text, (int)n)) == NULL) {
		r = TG_ERR_ALLOC;
		w = "out of memory";
		goto out;
	}
	if (PEM_read_bio(b, &name, &hdr, &data, &dlen) != 1) {
		w = "the PEM block is broken (its base64 or its END line)";
		goto out;
	}
	if (strcmp(name, "CERTIFICATE") != 0 || hdr == NULL || hdr[0] != '\0') {
		w = "the PEM block is not a plain CERTIFICATE block";
		goto out;
	}
	if (dlen <= 0 || dlen > TG_GATE_AUTHZ_DER_MAX) {
		w = "the certificate is empty or larger than the gate takes";
		goto out;
	}
	nrest = BIO_get_mem_data(b, &rest);
	if (nrest > 0 && (w = after_end(rest, (size_t)nrest)) != NULL)
		goto out;
	if ((*der = malloc((size_t)dlen)) == NULL) {
		r = TG_ERR_ALLOC;
		w = "out of memory";
		goto out;
	}
	memcpy(*der, data, (size_t)dlen);
	*der_len = (size_t)dlen;
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(data);
	BIO_free(b);
	free(text);
	if (r != 0 && why != NULL)
		*why = w;
	return r;
}

/* ------------------------------------------------------------------ */
/* The cache of verdicts                                               */
/* ------------------------------------------------------------------ */

struct tg_gate_authz_cache {
	struct tg_gate_authz_entry e[TG_GATE_AUTHZ_SETS * TG_GATE_AUTHZ_WAYS];
	uint64_t tick;
};

struct tg_gate_authz_cache *
tg_gate_authz_cache_new(void)
{
	return calloc(1, sizeof(struct tg_gate_authz_cache));
}

void
tg_gate_authz_cache_free(struct tg_gate_authz_cache *c)
{
	if (c != NULL)
		OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static struct tg_gate_authz_entry *
set_of(struct tg_gate_authz_cache *c, const uint8_t sha256[32])
{
	return &c->e[(sha256[0] % TG_GATE_AUTHZ_SETS) * TG_GATE_AUTHZ_WAYS];
}

const struct tg_gate_authz_entry *
tg_gate_authz_cache_get(struct tg_gate_authz_cache *c, const uint8_t sha256[32],
                        unsigned long generation, time_t now)
{
	struct tg_gate_authz_entry *s, *hit = NULL;
	size_t i;

	s = c != NULL ? set_of(c, sha256) : NULL;
	for (i = 0; s != NULL && i < TG_GATE_AUTHZ_WAYS && hit == NULL; i++) {
		if (s[i].used == 0 || memcmp(s[i].sha256, sha256, 32) != 0)
			continue;
		if (s[i].generation != generation || now >= s[i].until) {
			memset(&s[i], 0, sizeof(s[i])); /* stale: verified again */
			break;
		}
		hit = &s[i];
		hit->used = ++c->tick;
	}
	return hit;
}

void
tg_gate_authz_cache_put(struct tg_gate_authz_cache *c, const struct tg_gate_authz_entry *e)
{
	struct tg_gate_authz_entry *s, *slot = NULL;
	size_t i;

	if (c == NULL || e == NULL)
		goto out;
	s = set_of(c, e->sha256);
	for (i = 0; i < TG_GATE_AUTHZ_WAYS && slot == NULL; i++)
		if (s[i].used != 0 && memcmp(s[i].sha256, e->sha256, 32) == 0)
			slot = &s[i];
	for (i = 0; i < TG_GATE_AUTHZ_WAYS && slot == NULL; i++)
		if (s[i].used == 0)
			slot = &s[i];
	if (slot == NULL) {
		/* the set is full: out goes its least recently used entry */
		slot = &s[0];
		for (i = 1; i < TG_GATE_AUTHZ_WAYS; i++)
			if (s[i].used < slot->used)
				slot = &s[i];
	}
	*slot = *e;
	slot->used = ++c->tick;
out:
	return;
}

/* ------------------------------------------------------------------ */
/* The decision                                                        */
/* ------------------------------------------------------------------ */

void
tg_gate_authz_in_from_head(const struct tg_gate_http_head *h, struct tg_gate_authz_in *in)
{
	size_t i;

	memset(in, 0, sizeof(*in));
	for (i = 0; h != NULL && i < h->nheaders; i++) {
		const struct tg_gate_http_header *x = &h->headers[i];
		if (strcasecmp(x->name, TG_GATE_AUTHZ_CERT_HDR) == 0) {
			in->cert = x->value;
			in->ncert++;
		} else if (strcasecmp(x->name, TG_GATE_AUTHZ_METHOD_HDR) == 0) {
			in->method = x->value;
			in->nmethod++;
		} else if (strcasecmp(x->name, TG_GATE_AUTHZ_URI_HDR) == 0) {
			in->uri = x->value;
			in->nuri++;
		}
	}
}

/* RFC 9110 5.6.2 token, 1 to 23 bytes (the gate's method buffer). */
static int
method_ok(const char *m)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t n = m != NULL ? strlen(m) : 0;

	return n >= 1 && n <= 23 && strspn(m, tchar) == n;
}

/* The headers are there, once each; 0 or -1 with out->reason set. */
static int
headers_ok(const struct tg_gate_authz_in *in, struct tg_gate_authz_out *out)
{
	const size_t cap = sizeof(out->reason);
	int rc = -1;

	if (in->ncert > 1)
		snprintf(out->reason, cap,
		         "the subrequest has %u " TG_GATE_AUTHZ_CERT_HDR " headers; exactly one is "
		         "expected (set it in nginx with proxy_set_header, which replaces a "
		         "client's copy)",
		         in->ncert);
	else if (in->ncert == 0 || in->cert == NULL || in->cert[0] == '\0')
		snprintf(out->reason, cap, "%s", AZ_NO_CERT);
	else if (in->nmethod != 1 || !method_ok(in->method))
		snprintf(out->reason, cap,
		         "the subrequest needs exactly one " TG_GATE_AUTHZ_METHOD_HDR " header "
		         "holding the request's method (proxy_set_header " TG_GATE_AUTHZ_METHOD_HDR
		         " $request_method)");
	else if (in->nuri != 1 || in->uri == NULL || in->uri[0] == '\0')
		snprintf(
		    out->reason, cap,
		    "the subrequest needs exactly one " TG_GATE_AUTHZ_URI_HDR " header holding "
		    "the request's URI (proxy_set_header " TG_GATE_AUTHZ_URI_HDR " $request_uri)");
	else
		rc = 0;
	return rc;
}

/* A verdict for the certificate der (the cache's, or the verifier's now) into *e. */
static void
verdict(const struct tg_gate_verify *v, const uint8_t *der, size_t dlen, time_t now,
        struct tg_gate_authz_entry *e)
{
	const unsigned char *p = der;
	struct tg_error err;
	X509 *x = NULL;
	time_t crl;

	tg_error_clear(&err);
	if ((x = d2i_X509(NULL, &p, (long)dlen)) == NULL || p != der + dlen) {
		e->rc = TG_ERR_FORMAT;
		snprintf(e->reason, sizeof(e->reason),
		         "the certificate in " TG_GATE_AUTHZ_CERT_HDR " is not well-formed DER "
		         "(or has bytes after it)");
	} else if ((e->rc = tg_gate_verify_peer(v, x, NULL, now, &e->peer, &err)) != 0) {
		snprintf(e->reason, sizeof(e->reason), "%s", tg_error_msg(&err, e->rc));
	}
	if (e->rc != 0) {
		memset(&e->peer, 0, sizeof(e->peer));
		e->until = now + TG_GATE_AUTHZ_NEG_TTL;
	} else {
		e->until = e->peer.not_after;
		crl = tg_gate_verify_crl_until(v);
		if (crl != 0 && crl < e->until)
			e->until = crl;
	}
	X509_free(x);
	ERR_clear_error();
}

int
tg_gate_authz_evaluate(const struct tg_gate_verify *v, struct tg_gate_authz_cache *cache,
                       unsigned long generation, const struct tg_gate_policy *pol,
                       const struct tg_gate_authz_in *in, time_t now, struct tg_gate_authz_out *out)
{
	const struct tg_gate_authz_entry *hit, *e = NULL;
	struct tg_gate_authz_entry *fresh = NULL;
	struct tg_gate_verdict vd;
	struct tg_gate_peer peer;
	uint8_t *der = NULL, key[SHA256_DIGEST_LENGTH];
	size_t dlen = 0, hlen;
	const char *why = NULL;
	int r = TG_ERR_INVALID_ARG;

	if (out == NULL)
		goto out;
	memset(out, 0, offsetof(struct tg_gate_authz_out, path));
	out->path[0] = out->reason[0] = '\0';
	out->route = -1;
	out->cache_hit = -1;
	if (v == NULL || pol == NULL || in == NULL) {
		snprintf(out->reason, sizeof(out->reason), "the gate has no verifier or policy");
		goto out;
	}
	r = 0;
	if (headers_ok(in, out) != 0)
		goto out;
	snprintf(out->method, sizeof(out->method), "%s", in->method);
	/* the key is the header exactly as received: a hit costs one hash, no
	 * unescaping, base64 or DER; an entry is only made below, after these
	 * very bytes decoded to a certificate */
	hlen = strlen(in->cert);
	SHA256((const unsigned char *)in->cert, hlen, key);
	if ((hit = tg_gate_authz_cache_get(cache, key, generation, now)) != NULL) {
		out->cache_hit = 1;
		e = hit;
	} else {
		if (tg_gate_authz_cert_der(in->cert, hlen, &der, &dlen, &why) != 0) {
			snprintf(out->reason, sizeof(out->reason),
			         "the " TG_GATE_AUTHZ_CERT_HDR " header is not one URL-escaped PEM "
			         "certificate (nginx's $ssl_client_escaped_cert): %s",
			         why);
			goto out;
		}
		if ((fresh = calloc(1, sizeof(*fresh))) == NULL) {
			snprintf(out->reason, sizeof(out->reason), "out of memory");
			goto out;
		}
		out->cache_hit = 0;
		memcpy(fresh->sha256, key, sizeof(key));
		fresh->generation = generation;
		verdict(v, der, dlen, now, fresh);
		tg_gate_authz_cache_put(cache, fresh);
		e = fresh;
	}
	if (e->rc != 0) {
		snprintf(out->reason, sizeof(out->reason), "%s", e->reason);
		goto out;
	}
	out->verified = 1;
	out->peer = e->peer;
	if (tg_gate_path_normalize(in->uri, strlen(in->uri), out->path, sizeof(out->path), &why) !=
	    0) {
		snprintf(out->reason, sizeof(out->reason), "%s", why);
		goto out;
	}
	peer.identity = out->peer.identity;
	peer.level = out->peer.prov.level;
	peer.pin = out->peer.prov.pin_policy;
	peer.touch = out->peer.prov.touch_policy;
	peer.serial = out->peer.prov.serial;
	tg_gate_decide(pol, &peer, out->method, out->path, &vd);
	out->allow = vd.allow;
	out->route = vd.route;
	snprintf(out->reason, sizeof(out->reason), "%s", vd.reason);
out:
	free(fresh);
	free(der);
	return r;
}

/* ------------------------------------------------------------------ */
/* The unix socket                                                     */
/* ------------------------------------------------------------------ */

/* A socket file at path that nobody answers on is left from a gate that
 * died: 1 (remove it), 0 (something listens), -1 (not a socket). */
static int
stale_socket(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd = -1, r = 0;

	if (lstat(path, &st) != 0)
		r = errno == ENOENT ? 1 : -1;
	else if (!S_ISSOCK(st.st_mode))
		r = -1;
	else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
	         connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 &&
	         errno == ECONNREFUSED)
		r = 1;
	if (fd >= 0)
		close(fd);
	return r;
}

int
tg_gate_authz_listen_unix(const struct tg_gate_listener_cfg *l, evutil_socket_t *fd,
                          struct tg_error *err)
{
	struct sockaddr_un sa;
	struct group *g = NULL;
	const char *path = l->addr.path;
	mode_t old;
	int s = -1, r = TG_ERR_IO, st;

	*fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "listener '%s': the socket path %s is too long", l->name, path);
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if (l->group != NULL && (g = getgrnam(l->group)) == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "listener '%s': group '%s' does not exist; create it or name the "
		                 "group nginx's worker runs as",
		                 l->name, l->group);
		goto out;
	}
	if ((st = stale_socket(path, &sa)) <= 0) {
		r = tg_error_set(err, TG_ERR_IO,
		                 st < 0 ? "listener '%s': %s exists and is not a socket; remove it "
		                          "or choose another path"
		                        : "listener '%s': something already answers on %s; stop it "
		                          "or choose another path",
		                 l->name, path);
		goto out;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "listener '%s': cannot remove the old socket %s: %s", l->name,
		                 path, strerror(errno));
		goto out;
	}
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		r = tg_error_set(err, TG_ERR_IO, "listener '%s': socket: %s", l->name,
		                 strerror(errno));
		goto out;
	}
	/* no moment with a wider mode: the workers do not run yet */
	old = umask(0177);
	st = bind(s, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (st != 0) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "listener '%s': cannot bind %s: %s; check that its directory "
		                 "exists and the gate may write there",
		                 l->name, path, strerror(errno));
		goto out;
	}
	if ((g != NULL && chown(path, (uid_t)-1, g->gr_gid) != 0) || chmod(path, 0660) != 0) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "listener '%s': cannot give %s to group '%s' with mode 0660: %s; "
		                 "run the gate as a member of that group",
		                 l->name, path, l->group != NULL ? l->group : "(own)",
		                 strerror(errno));
		unlink(path);
		goto out;
	}
	if (listen(s, 1024) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "listener '%s': listen on %s: %s", l->name, path,
		                 strerror(errno));
		unlink(path);
		goto out;
	}
	*fd = s;
	s = -1;
	r = 0;
out:
	if (s >= 0)
		close(s);
	return r;
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */
/* ------------------------------------------------------------------ */

enum az_phase {
	AZ_IDLE = 0,   /* between subrequests */
	AZ_HEAD = 1,   /* part of a head is in: header_ms runs */
	AZ_BODY = 2,   /* answered; the rest of the message is read and dropped */
	AZ_LINGER = 3, /* the last answer is out: drop what still comes, then close */
};

struct az_conn {
	struct tg_gate_conn_info *ci;
	struct tg_gate_server *srv;
	evutil_socket_t fd;
	struct event *rev, *wev; /* readable (persistent) / writable (only while output waits) */
	struct evbuffer *rbuf;   /* bytes read but not yet fed (the reader paused on AZ_HIGH) */
	struct evbuffer *wbuf;   /* answers not yet written */
	struct tg_gate_http_reader *rd;
	struct event *tmo;
	enum az_phase phase;
	unsigned idle_ms, header_ms;
	struct timespec idle_since;
	int reading;   /* rev is added */
	int closing;   /* close once the answers are out */
	int close_now; /* close at the next az_settle */
	int lingering;
	unsigned char rnd[AZ_RND]; /* random bytes for request ids, drawn AZ_RND at a time */
	size_t nrnd;               /* of which unused */
	struct tg_gate_peer_info fields_peer; /* the peer ci->audit_fields were made for */
	struct tg_gate_authz_out out;         /* the subrequest being answered */
};

static void az_settle(struct az_conn *c);

static double
az_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
az_arm(struct az_conn *c, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};

	evtimer_del(c->tmo);
	evtimer_add(c->tmo, &tv);
}

static void
az_idle(struct az_conn *c)
{
	c->phase = AZ_IDLE;
	clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
	az_arm(c, c->idle_ms < AZ_TICK_MS ? c->idle_ms : AZ_TICK_MS);
}

/* text for a header value: control bytes and non-ASCII become '?', cut to cap - 1. */
static void
header_safe(const char *s, char *dst, size_t cap)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
		dst[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e ? '?' : s[i];
	dst[i] = '\0';
}

static void
jset_str(json_t *o, const char *key, const char *s)
{
	json_t *v = s != NULL ? json_string(s) : NULL;

	json_object_set_new(o, key, v != NULL ? v : json_null());
}

/* The "request" record of the subrequest; 0, or -1 when it could not be written. */
static int
az_audit(struct az_conn *c, const char *id, const char *route, const char *decision, int status)
{
	const struct tg_gate_authz_out *o = &c->out;
	struct tg_error err;
	json_t *rec;
	int rc = -1;

	memset(&c->ci->peer, 0, sizeof(c->ci->peer));
	if (o->verified)
		c->ci->peer = o->peer;
	/* the connection's fields (listener, peer, identity, provenance) are
	 * made again only when the subrequest's client differs from the last */
	if (c->ci->audit_fields == NULL ||
	    memcmp(&c->fields_peer, &c->ci->peer, sizeof(c->ci->peer)) != 0) {
		json_decref(c->ci->audit_fields);
		c->ci->audit_fields = NULL;
		tg_gate_audit_conn_ready(c->ci);
		c->fields_peer = c->ci->peer;
	}
	if ((rec = tg_gate_audit_record(c->ci, "request")) == NULL)
		goto out;
	jset_str(rec, "front", "authz");
	jset_str(rec, "request_id", id);
	jset_str(rec, "route", route);
	jset_str(rec, "method", o->method[0] != '\0' ? o->method : NULL);
	if (o->path[0] != '\0')
		jset_str(rec, "path", o->path);
	jset_str(rec, "decision", decision);
	jset_str(rec, "reason", o->reason);
	if (status != 200)
		json_object_set_new(rec, "status", json_integer(status));
	tg_error_clear(&err);
	if (tg_gate_audit(c->srv, rec, &err) == 0)
		rc = 0;
out:
	json_decref(rec);
	return rc;
}

/*
 * Answers the subrequest whose outcome is c->out (ls: the listener's
 * state; NULL when the head was refused before a decision): the audit
 * record first, then 200 with the identity, provenance, route and the
 * route's injected headers, or 403 with the reason.
 */
static void
az_answer(struct az_conn *c, const struct tg_gate_lstate *ls, int dry, int keep,
          struct timespec *t0)
{
	const struct tg_gate_authz_out *o = &c->out;
	const struct tg_gate_route *rt =
	    ls != NULL && o->route >= 0 ? &ls->policy.routes[o->route] : NULL;
	const char *route = rt != NULL ? rt->name : NULL;
	const char *decision = o->allow                                     ? "allow"
	                       : (dry && o->verified && o->path[0] != '\0') ? "dry-run"
	                                                                    : "deny";
	int pass = strcmp(decision, "deny") != 0;
	struct tg_gate_http_extra xs[AZ_X_STACK], *x = xs;
	size_t nx = AZ_X_FIXED + (pass && rt != NULL ? rt->ninject : 0);
	char id[17], key[512], reason[sizeof(o->reason)];
	unsigned char rnd[8];
	size_t i, n = 0, vlen;
	const char *v;

	if (c->nrnd < sizeof(rnd)) {
		if (RAND_bytes(c->rnd, sizeof(c->rnd)) != 1)
			memset(c->rnd, 0, sizeof(c->rnd));
		c->nrnd = sizeof(c->rnd);
	}
	memcpy(rnd, c->rnd + sizeof(c->rnd) - c->nrnd, sizeof(rnd));
	OPENSSL_cleanse(c->rnd + sizeof(c->rnd) - c->nrnd, sizeof(rnd));
	c->nrnd -= sizeof(rnd);
	for (i = 0; i < sizeof(rnd); i++) {
		id[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
		id[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
	}
	id[2 * sizeof(rnd)] = '\0';
	keep = keep && !c->closing && !tg_gate_server_stopping(c->srv);
	if (az_audit(c, id, route, decision, pass ? 200 : 403) != 0) {
		/* no record, no allow (fail closed) */
		struct tg_gate_http_extra down = {"X-Tokengate-Reason", AZ_AUDIT_DOWN,
		                                  sizeof(AZ_AUDIT_DOWN) - 1};
		if (tg_gate_http_answer(403, "", &down, 1, 0, c->wbuf) != 0)
			c->close_now = 1;
		c->closing = 1;
		goto out;
	}
	tg_gate_metrics_request(tg_gate_server_metrics(c->srv), c->ci->listener_name, route,
	                        decision, az_since(t0));
	if (nx > AZ_X_STACK && (x = calloc(nx, sizeof(*x))) == NULL) {
		c->close_now = 1;
		goto out;
	}
	x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Request-Id", id, strlen(id)};
	if (route != NULL)
		x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Route", route, strlen(route)};
	if (pass) {
		vlen = tg_gate_http_key_header(&o->peer.prov, key, sizeof(key));
		x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Identity", o->peer.identity,
		                                     strlen(o->peer.identity)};
		x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Key", key, vlen};
		for (i = 0; rt != NULL && i < rt->ninject; i++) {
			if ((v = tg_gate_secret_value(ls->secrets, (size_t)o->route, i, &vlen)) ==
			    NULL) {
				c->close_now = 1;
				goto out;
			}
			x[n++] = (struct tg_gate_http_extra){rt->inject[i].header, v, vlen};
		}
	} else {
		header_safe(o->reason, reason, sizeof(reason));
		x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Reason", reason, strlen(reason)};
	}
	if (tg_gate_http_answer(pass ? 200 : 403, "", x, n, keep, c->wbuf) != 0)
		c->close_now = 1; /* out of memory, or a secret that cannot stand in a header */
	if (!keep)
		c->closing = 1;
out:
	if (x != xs)
		free(x);
}

static int
az_head(void *arg, const struct tg_gate_http_head *h)
{
	struct az_conn *c = arg;
	struct tg_gate_snapshot *sn = tg_gate_snapshot_get(c->srv);
	const struct tg_gate_lstate *ls = &sn->ls[c->ci->listener];
	struct tg_gate_authz_in in;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (c->ci->w->authz == NULL)
		c->ci->w->authz = tg_gate_authz_cache_new(); /* NULL: verified every time */
	tg_gate_authz_in_from_head(h, &in);
	tg_gate_authz_evaluate(sn->verify, c->ci->w->authz, sn->generation, &ls->policy, &in,
	                       time(NULL), &c->out);
	if (c->out.cache_hit >= 0)
		tg_gate_metrics_authz_cache(tg_gate_server_metrics(c->srv), c->out.cache_hit);
	az_answer(c, ls, sn->cfg.dry_run, h->keep_alive, &t0);
	tg_gate_snapshot_put(sn);
	c->phase = AZ_BODY;
	return c->close_now ? -1 : 0;
}

static int
az_body(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0; /* an auth subrequest has no body: whatever comes is dropped */
}

static int
az_end(void *arg)
{
	struct az_conn *c = arg;

	if (c->closing)
		return 1;
	az_idle(c);
	return 0;
}

/* A head the reader refused (or that timed out): a deny without a decision, then close. */
static void
az_refuse(struct az_conn *c, const char *reason)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&c->out, 0, offsetof(struct tg_gate_authz_out, path));
	c->out.path[0] = '\0';
	c->out.route = -1;
	snprintf(c->out.reason, sizeof(c->out.reason), "%s", reason);
	az_answer(c, NULL, 0, 0, &t0);
	c->closing = 1;
}

/* Whether the next subrequest may be fed: not closing, and room for its answer. */
static int
az_may_feed(const struct az_conn *c)
{
	return !c->closing && !c->close_now && evbuffer_get_length(c->wbuf) <= AZ_HIGH;
}

/* Feeds len bytes at data to the reader; how many it took (fewer when it must wait). */
static size_t
az_feed_mem(struct az_conn *c, const char *data, size_t len)
{
	struct tg_gate_http_error e;
	enum tg_gate_http_rc rc;
	size_t off = 0, used;

	while (off < len && az_may_feed(c)) {
		if (c->phase == AZ_IDLE) {
			c->phase = AZ_HEAD;
			az_arm(c, c->header_ms);
		}
		used = 0;
		rc = tg_gate_http_reader_feed(c->rd, data + off, len - off, &used, &e);
		off += used;
		if (rc == TG_GATE_HTTP_REFUSED)
			az_refuse(c, e.reason);
		else if (rc == TG_GATE_HTTP_ABORTED)
			c->close_now = 1;
		else if (rc == TG_GATE_HTTP_PAUSED && !c->closing)
			c->close_now = 1; /* only on_end pauses, and only when closing */
		else if (used == 0)
			break;
	}
	return off;
}

/* Feeds what waits in c->rbuf (subrequests that came while the answers waited). */
static void
az_feed(struct az_conn *c)
{
	struct evbuffer_iovec v;
	size_t used;

	while (evbuffer_get_length(c->rbuf) > 0 && az_may_feed(c)) {
		if (evbuffer_peek(c->rbuf, 1, NULL, &v, 1) < 1 || v.iov_len == 0) {
			v.iov_len = evbuffer_get_length(c->rbuf) < AZ_IO_MAX
			                ? evbuffer_get_length(c->rbuf)
			                : AZ_IO_MAX;
			if ((v.iov_base = evbuffer_pullup(c->rbuf, (ev_ssize_t)v.iov_len)) ==
			    NULL) {
				c->close_now = 1;
				break;
			}
		}
		used = az_feed_mem(c, v.iov_base, v.iov_len);
		evbuffer_drain(c->rbuf, used);
		if (used == 0)
			break;
	}
	if (c->closing)
		evbuffer_drain(c->rbuf, evbuffer_get_length(c->rbuf));
}

static void
az_free(struct az_conn *c)
{
	if (c->tmo != NULL)
		event_free(c->tmo);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	tg_gate_http_reader_free(c->rd);
	if (c->rbuf != NULL)
		evbuffer_free(c->rbuf);
	if (c->wbuf != NULL)
		evbuffer_free(c->wbuf);
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	tg_gate_conn_done(c->ci);
	OPENSSL_cleanse(c->rnd, sizeof(c->rnd));
	free(c);
}

/*
 * Writes the answers now, from the handler that made them (no wait for a
 * writable event: one write(2) per answer); only what the socket does not
 * take waits for c->wev. Reading pauses while more than AZ_HIGH waits.
 */
static void
az_flush(struct az_conn *c)
{
	int n;

	if (!c->close_now && !c->lingering && evbuffer_get_length(c->wbuf) > 0) {
		n = evbuffer_write(c->wbuf, c->fd);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			c->close_now = 1; /* the peer is gone: nothing is half-answered here */
		else if (evbuffer_get_length(c->wbuf) > 0 && event_add(c->wev, NULL) != 0)
			c->close_now = 1;
	}
	if (c->close_now)
		return;
	if (c->reading && evbuffer_get_length(c->wbuf) > AZ_HIGH) {
		event_del(c->rev);
		c->reading = 0;
	} else if (!c->reading && evbuffer_get_length(c->wbuf) <= AZ_HIGH) {
		if (event_add(c->rev, NULL) != 0)
			c->close_now = 1;
		else
			c->reading = 1;
	}
}

/* The last call of every event handler: closes, or lingers once the answers are out. */
static void
az_settle(struct az_conn *c)
{
	if (!c->close_now && c->closing && !c->lingering && evbuffer_get_length(c->wbuf) == 0) {
		/* closing with unread bytes would reset the connection and could
		 * destroy the answer on its way: stop writing, drop what comes */
		c->lingering = 1;
		c->phase = AZ_LINGER;
		shutdown(c->fd, SHUT_WR);
		event_del(c->wev);
		if (!c->reading && event_add(c->rev, NULL) != 0)
			c->close_now = 1;
		c->reading = 1;
		az_arm(c, AZ_LINGER_MS);
	}
	if (c->close_now)
		az_free(c);
}

static void
az_read(evutil_socket_t fd, short what, void *arg)
{
	struct az_conn *c = arg;
	char buf[AZ_READ];
	ssize_t n;
	size_t used = 0;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		goto out;
	if (n <= 0) {
		c->close_now = 1; /* EOF or error: nothing is half-answered here */
		goto out;
	}
	if (c->closing)
		goto out; /* lingering, or refused: dropped */
	if (evbuffer_get_length(c->rbuf) == 0)
		used = az_feed_mem(c, buf, (size_t)n);
	if (used < (size_t)n && !c->closing && !c->close_now) {
		if (evbuffer_add(c->rbuf, buf + used, (size_t)n - used) != 0)
			c->close_now = 1;
		else
			az_feed(c);
	}
	az_flush(c);
out:
	az_settle(c);
}

static void
az_write(evutil_socket_t fd, short what, void *arg)
{
	struct az_conn *c = arg;

	(void)fd;
	(void)what;
	az_flush(c);
	az_feed(c); /* pipelined subrequests waited for room */
	az_flush(c);
	az_settle(c);
}

static void
az_timer(evutil_socket_t fd, short what, void *arg)
{
	struct az_conn *c = arg;
	char reason[160];

	(void)fd;
	(void)what;
	switch (c->phase) {
	case AZ_IDLE:
		if (tg_gate_server_stopping(c->srv) ||
		    az_since(&c->idle_since) * 1000.0 >= c->idle_ms)
			c->close_now = 1;
		else
			az_arm(c, AZ_TICK_MS);
		break;
	case AZ_HEAD:
		snprintf(reason, sizeof(reason),
		         "the request head did not arrive within %u ms (limits.header_ms)",
		         c->header_ms);
		az_refuse(c, reason);
		break;
	case AZ_BODY:
	case AZ_LINGER:
	default:
		c->close_now = 1;
		break;
	}
	az_flush(c);
	az_settle(c);
}

void
tg_gate_authz_serve(evutil_socket_t fd, struct tg_gate_conn_info *ci)
{
	struct az_conn *c = calloc(1, sizeof(*c));
	struct tg_gate_snapshot *sn = tg_gate_snapshot_get(ci->w->srv);
	struct tg_gate_http_limits lim = {sn->cfg.limits.request_line, sn->cfg.limits.header_bytes,
	                                  sn->cfg.limits.header_count};
	struct tg_error err;
	int one = 1, ok = 0;

	tg_error_clear(&err);
	if (c == NULL) {
		evutil_closesocket(fd);
		tg_gate_conn_done(ci);
		goto out;
	}
	c->ci = ci;
	c->srv = ci->w->srv;
	c->fd = fd;
	c->idle_ms = sn->cfg.limits.idle_ms;
	c->header_ms = sn->cfg.limits.header_ms;
	if (sn->cfg.listeners[ci->listener].addr.scheme == TG_GATE_SCHEME_TCP)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (evutil_make_socket_nonblocking(fd) != 0 || (c->rbuf = evbuffer_new()) == NULL ||
	    (c->wbuf = evbuffer_new()) == NULL ||
	    (c->rev = event_new(ci->w->base, fd, EV_READ | EV_PERSIST, az_read, c)) == NULL ||
	    (c->wev = event_new(ci->w->base, fd, EV_WRITE, az_write, c)) == NULL ||
	    (c->tmo = evtimer_new(ci->w->base, az_timer, c)) == NULL ||
	    tg_gate_http_reader_new(TG_GATE_HTTP_REQUEST, &lim,
	                            &(struct tg_gate_http_cb){az_head, az_body, az_end}, c, &c->rd,
	                            &err) != 0 ||
	    event_add(c->rev, NULL) != 0)
		goto out;
	c->reading = 1;
	az_idle(c);
	ok = 1;
out:
	tg_gate_snapshot_put(sn);
	if (!ok && c != NULL)
		az_free(c); /* closes the socket, calls tg_gate_conn_done */
}
