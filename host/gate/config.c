/*
 * config.c — the gate's configuration (tg_gate_config.h): addresses and
 * URLs, the ghostunnel-style flags (tgcore's option table), the YAML file
 * (tgyaml) and the checks a start needs.
 */
#include "tg_gate_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "tg_cli.h"
#include "tg_file.h"
#include "tg_gate_secret.h"
#include "tg_yaml.h"

#define GC_PROG          "tokengate"
#define GC_WHAT          "gate"
#define GC_POLICY_MAX    (1024 * 1024) /* the policy parser's own cap */
#define GC_FILE_MAX      (1024 * 1024)
#define GC_WORKERS_MAX   1024u
#define GC_LISTENERS_MAX 64u
#define GC_FORMS_LISTEN                                                                            \
	"ADDR:PORT such as 127.0.0.1:8443, [V6]:PORT such as [::1]:8443, or unix:/PATH (authz "    \
	"mode)"
#define GC_FORMS_UP                                                                                \
	"a URL such as http://127.0.0.1:8081, https://api.internal:443, unix:/run/api.sock or "    \
	"(tcp mode) tcp://127.0.0.1:5432"

/* ------------------------------------------------------------------ */
/* Addresses and URLs                                                  */
/* ------------------------------------------------------------------ */

static int
copy_n(char *dst, size_t cap, const char *s, size_t n)
{
	int r = -1;

	if (n < cap) {
		memcpy(dst, s, n);
		dst[n] = '\0';
		r = 0;
	}
	return r;
}

/* A host name or IPv4 address: letters, digits, '.', '-', '_'. */
static int
host_ok(const char *h)
{
	size_t n = strlen(h);

	return n >= 1 && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789.-_") == n;
}

/* Port text p (n bytes) into out; NULL, or the problem. */
static const char *
port_why(const char *p, size_t n, char *out, size_t cap)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0)
		return "the port after ':' is missing";
	if (n > 5 || strspn(p, "0123456789") < n)
		return "the port must be a number from 1 to 65535";
	for (i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(p[i] - '0');
	if (v < 1 || v > 65535)
		return "the port must be a number from 1 to 65535";
	snprintf(out, cap, "%lu", v);
	return NULL;
}

/* unix:/PATH (s after "unix:"); NULL or the problem. */
static const char *
unix_why(const char *p, struct tg_gate_url *u)
{
	u->scheme = TG_GATE_SCHEME_UNIX;
	if (p[0] != '/')
		return "a unix socket path must be absolute (unix:/PATH)";
	if (p[1] == '\0')
		return "the unix socket path is empty";
	if (copy_n(u->path, sizeof(u->path), p, strlen(p)) != 0)
		return "the unix socket path is longer than 107 bytes";
	return NULL;
}

/* HOST:PORT or [V6]:PORT at a (n bytes); NULL or the problem. */
static const char *
authority_why(const char *a, size_t n, int port_needed, struct tg_gate_url *u)
{
	const char *rb, *colon = NULL, *p;
	unsigned char v6[16];
	size_t i;

	if (memchr(a, '@', n) != NULL)
		return "user information ('user@') is not allowed; credentials for an upstream go "
		       "in "
		       "the policy's inject_headers";
	if (n > 0 && a[0] == '[') {
		if ((rb = memchr(a, ']', n)) == NULL)
			return "'[' without ']' around the IPv6 address";
		if (copy_n(u->host, sizeof(u->host), a + 1, (size_t)(rb - a - 1)) != 0 ||
		    inet_pton(AF_INET6, u->host, v6) != 1)
			return "the address in brackets is not an IPv6 address";
		p = rb + 1;
		if (p < a + n && *p != ':')
			return "after ']' comes ':' and the port";
		colon = p < a + n ? p : NULL;
	} else {
		for (i = 0; i < n; i++)
			if (a[i] == ':') {
				if (colon != NULL)
					return "an IPv6 address goes in brackets, as in [::1]:8443";
				colon = a + i;
			}
		if (copy_n(u->host, sizeof(u->host), a, colon != NULL ? (size_t)(colon - a) : n) !=
		    0)
			return "the host name is longer than 255 bytes";
		if (u->host[0] == '\0')
			return "the address before ':' is missing (0.0.0.0 for every address, "
			       "127.0.0.1 for loopback only)";
		if (!host_ok(u->host))
			return "the host may hold only letters, digits, '.', '-' and '_'";
	}
	if (colon == NULL && port_needed)
		return "the port is missing";
	if (colon == NULL)
		snprintf(u->port, sizeof(u->port), "%s",
		         u->scheme == TG_GATE_SCHEME_HTTPS ? "443" : "80");
	else
		return port_why(colon + 1, (size_t)(a + n - colon - 1), u->port, sizeof(u->port));
	return NULL;
}

/* Parses s into *u; NULL when good, else the problem (static text). */
static const char *
url_why(const char *s, int listen, struct tg_gate_url *u)
{
	static const struct {
		const char *prefix;
		enum tg_gate_scheme scheme;
	} schemes[] = {{"http://", TG_GATE_SCHEME_HTTP},
	               {"https://", TG_GATE_SCHEME_HTTPS},
	               {"tcp://", TG_GATE_SCHEME_TCP}};
	const char *a = s, *why = NULL;
	size_t i, n;

	memset(u, 0, sizeof(*u));
	if (s == NULL || s[0] == '\0') {
		why = "it is empty";
		goto out;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		why = unix_why(s + 5, u);
		goto out;
	}
	if (listen) {
		u->scheme = TG_GATE_SCHEME_TCP;
		if (strstr(s, "://") != NULL) {
			why = "a listen address has no scheme";
			goto out;
		}
	} else {
		for (i = 0; i < 3 && strncmp(s, schemes[i].prefix, strlen(schemes[i].prefix)); i++)
			;
		if (i == 3) {
			why = "the scheme must be http://, https://, unix: or tcp://";
			goto out;
		}
		u->scheme = schemes[i].scheme;
		a = s + strlen(schemes[i].prefix);
	}
	n = strcspn(a, "/?#");
	if (a[n] != '\0' &&
	    (listen || u->scheme == TG_GATE_SCHEME_TCP || strcmp(a + n, "/") != 0)) {
		why = listen ? "a listen address has no path"
		             : "the gate forwards each request's own path, so an upstream URL has "
		               "no path, query or fragment";
		goto out;
	}
	why = authority_why(a, n, listen || u->scheme == TG_GATE_SCHEME_TCP, u);
out:
	return why;
}

size_t
tg_gate_url_authority(const struct tg_gate_url *url, char *buf, size_t cap)
{
	int n = -1;

	if (cap > 0)
		n = url->scheme == TG_GATE_SCHEME_UNIX ? snprintf(buf, cap, "localhost")
		    : strchr(url->host, ':') != NULL
		        ? snprintf(buf, cap, "[%s]:%s", url->host, url->port)
		        : snprintf(buf, cap, "%s:%s", url->host, url->port);
	if (n < 0 || (size_t)n >= cap) {
		n = 0;
		if (cap > 0)
			buf[0] = '\0';
	}
	return (size_t)n;
}

int
tg_gate_url_parse(const char *s, int listen, struct tg_gate_url *out, struct tg_error *err)
{
	const char *why = url_why(s, listen, out);
	int r = 0;

	if (why != NULL)
		r = tg_error_set(err, TG_ERR_CONFIG, "'%.200s' is not %s: %s; write %s",
		                 s != NULL ? s : "",
		                 listen ? "a listen address" : "an upstream URL", why,
		                 listen ? GC_FORMS_LISTEN : GC_FORMS_UP);
	return r;
}

/* ------------------------------------------------------------------ */
/* The struct                                                          */
/* ------------------------------------------------------------------ */

static unsigned
default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1u : n > (long)GC_WORKERS_MAX ? GC_WORKERS_MAX : (unsigned)n;
}

void
tg_gate_config_init(struct tg_gate_config *c)
{
	memset(c, 0, sizeof(*c));
	c->audit_fsync = TG_AUDIT_FSYNC_BATCH;
	c->workers = default_workers();
	c->limits.header_bytes = 16384;
	c->limits.header_count = 100;
	c->limits.request_line = 8192;
	c->limits.handshake_ms = 10000;
	c->limits.header_ms = 10000;
	c->limits.idle_ms = 60000;
	c->limits.upstream_connect_ms = 5000;
	c->limits.upstream_ms = 30000;
	c->limits.max_conns = 4096;
	c->limits.upstream_pool = 32;
	c->limits.handshake_failures = 20;
	c->limits.handshake_failure_ms = 60000;
}

void
tg_gate_config_clear(struct tg_gate_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; c->listeners != NULL && i < c->nlisteners; i++) {
		free(c->listeners[i].listen);
		free(c->listeners[i].upstream);
		free(c->listeners[i].policy_file);
		free(c->listeners[i].group);
	}
	free(c->listeners);
	for (i = 0; c->client_ca != NULL && i < c->nclient_ca; i++)
		free(c->client_ca[i]);
	free(c->client_ca);
	free(c->file);
	free(c->cert);
	free(c->key);
	free(c->crl);
	free(c->tickets);
	free(c->upstream_ca);
	free(c->policy_file);
	free(c->audit_file);
	free(c->admin);
	tg_gate_config_init(c);
}

/* Replaces *dst with a copy of s: 0 or -1 (out of memory). */
static int
set_str(char **dst, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		return -1;
	free(*dst);
	*dst = d;
	return 0;
}

static int
parse_mode(const char *s, enum tg_gate_mode *m)
{
	int r = 0;

	if (strcmp(s, "http") == 0)
		*m = TG_GATE_MODE_HTTP;
	else if (strcmp(s, "tcp") == 0)
		*m = TG_GATE_MODE_TCP;
	else if (strcmp(s, "authz") == 0)
		*m = TG_GATE_MODE_AUTHZ;
	else
		r = -1;
	return r;
}

static const char *
mode_name(enum tg_gate_mode m)
{
	return m == TG_GATE_MODE_TCP ? "tcp" : m == TG_GATE_MODE_AUTHZ ? "authz" : "http";
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/* Where a setting comes from: "--cert", "FILE line N: tls.cert". */
static const char *
where(const struct tg_gate_config *c, const char *flag, const char *key, unsigned line, char *buf,
      size_t n)
{
	if (c->file == NULL)
		snprintf(buf, n, "%s", flag);
	else if (line != 0)
		snprintf(buf, n, "%s line %u: %s", c->file, line, key);
	else
		snprintf(buf, n, "%s: %s", c->file, key);
	return buf;
}

/* Opens path with tgcore's checks (symbolic links followed) and closes it. */
static int
file_ok(const struct tg_gate_config *c, const char *path, const char *flag, const char *key,
        unsigned line, const char *what, unsigned flags, struct tg_error *err)
{
	char w[512];
	int fd = -1, r;

	r = tg_file_open_checked(path, what, flags | TG_FILE_FOLLOW, &fd, err);
	if (r != 0)
		r = tg_error_set(
		    err, TG_ERR_CONFIG, "%s: %s%s", where(c, flag, key, line, w, sizeof(w)),
		    err != NULL ? err->msg : "", r == TG_ERR_NOT_FOUND ? "; fix the path" : "");
	if (fd >= 0)
		close(fd);
	return r;
}

/* A server credential: a file, or a pkcs11: URI (checked when used). */
static int
cred_ok(const struct tg_gate_config *c, const char *path, const char *flag, const char *key,
        unsigned line, const char *what, unsigned flags, struct tg_error *err)
{
	return strncmp(path, "pkcs11:", 7) == 0
	           ? 0
	           : file_ok(c, path, flag, key, line, what, flags, err);
}

/* The audit log: its directory exists; the file, when there, passes tg_audit's checks. */
static int
audit_ok(const struct tg_gate_config *c, const char *w, struct tg_error *err)
{
	const char *path = c->audit_file, *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st;
	int fd = -1, r;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		r = tg_error_set(
		    err, TG_ERR_CONFIG,
		    "%s: the directory '%s' of audit log '%s' does not exist; create it "
		    "or fix the path",
		    w, dir, path);
		goto out;
	}
	r = tg_file_open_checked(path, "audit log", TG_FILE_SECRET | TG_FILE_MISSING_OK, &fd, err);
	if (r != 0)
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: %s", w, err != NULL ? err->msg : "");
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static int
files_ok(const struct tg_gate_config *c, int need_cert, struct tg_error *err)
{
	char w[512];
	size_t i;
	int r = 0;

	if (need_cert && (c->cert == NULL || c->key == NULL)) {
		r = tg_error_set(
		    err, TG_ERR_CONFIG, "%s: no server %s; %s (a PEM file or a pkcs11: URI)",
		    c->file != NULL ? c->file : "the command line",
		    c->cert == NULL ? "certificate" : "key",
		    c->file != NULL
		        ? (c->cert == NULL ? "add tls: {cert: FILE}" : "add tls: {key: FILE}")
		    : c->cert == NULL ? "add --cert FILE"
		                      : "add --key FILE");
		goto out;
	}
	if (c->cert != NULL && (r = cred_ok(c, c->cert, "--cert", "tls.cert", c->line.cert,
	                                    "server certificate", 0, err)) != 0)
		goto out;
	if (c->key != NULL && (r = cred_ok(c, c->key, "--key", "tls.key", c->line.key, "server key",
	                                   TG_FILE_SECRET, err)) != 0)
		goto out;
	if (c->nclient_ca == 0) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: no client CA; %s with the tokengate CA certificate (PEM) "
		                 "that issues the clients' certificates",
		                 c->file != NULL ? c->file : "the command line",
		                 c->file != NULL ? "add tls: {client_ca: [FILE]}"
		                                 : "add --client-ca FILE");
		goto out;
	}
	for (i = 0; i < c->nclient_ca && r == 0; i++)
		r = file_ok(c, c->client_ca[i], "--client-ca", "tls.client_ca", c->line.client_ca,
		            "client CA", 0, err);
	if (r == 0 && c->crl != NULL)
		r = file_ok(c, c->crl, "--crl", "tls.crl", c->line.crl, "CRL", 0, err);
	if (r == 0 && c->tickets != NULL)
		r = file_ok(c, c->tickets, "--tickets", "tls.tickets", c->line.tickets,
		            "session-ticket key file", TG_FILE_SECRET, err);
	if (r == 0 && c->upstream_ca != NULL)
		r = file_ok(c, c->upstream_ca, "--upstream-ca", "upstream_ca", c->line.upstream_ca,
		            "upstream CA", 0, err);
	if (r == 0 && c->audit_file == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: no audit log; %s (one hash-chained JSON line per decision)",
		                 c->file != NULL ? c->file : "the command line",
		                 c->file != NULL ? "add audit: {file: PATH}" : "add --audit FILE");
	else if (r == 0)
		r = audit_ok(c, where(c, "--audit", "audit.file", c->line.audit, w, sizeof(w)),
		             err);
out:
	return r;
}

/* The limits: names in the file, where they live, their maxima. */
static const struct {
	const char *name;
	size_t off;
	int is_size; /* size_t, else unsigned */
	unsigned long long max;
} limit_tab[] = {
    {"header_bytes", offsetof(struct tg_gate_limits, header_bytes), 1, 1024 * 1024},
    {"header_count", offsetof(struct tg_gate_limits, header_count), 1, 10000},
    {"request_line", offsetof(struct tg_gate_limits, request_line), 1, 1024 * 1024},
    {"handshake_ms", offsetof(struct tg_gate_limits, handshake_ms), 0, 600000},
    {"header_ms", offsetof(struct tg_gate_limits, header_ms), 0, 600000},
    {"idle_ms", offsetof(struct tg_gate_limits, idle_ms), 0, 86400000},
    {"upstream_connect_ms", offsetof(struct tg_gate_limits, upstream_connect_ms), 0, 600000},
    {"upstream_ms", offsetof(struct tg_gate_limits, upstream_ms), 0, 86400000},
    {"max_conns", offsetof(struct tg_gate_limits, max_conns), 0, 1000000},
    {"upstream_pool", offsetof(struct tg_gate_limits, upstream_pool), 0, 65536},
    {"handshake_failures", offsetof(struct tg_gate_limits, handshake_failures), 0, 1000000},
    {"handshake_failure_ms", offsetof(struct tg_gate_limits, handshake_failure_ms), 0, 86400000},
};
#define GC_NLIMITS (sizeof(limit_tab) / sizeof(limit_tab[0]))

static unsigned long long
limit_get(const struct tg_gate_limits *l, size_t i)
{
	const char *p = (const char *)l + limit_tab[i].off;

	return limit_tab[i].is_size ? *(const size_t *)(const void *)p
	                            : *(const unsigned *)(const void *)p;
}

static void
limit_set(struct tg_gate_limits *l, size_t i, unsigned long long v)
{
	char *p = (char *)l + limit_tab[i].off;

	if (limit_tab[i].is_size)
		*(size_t *)(void *)p = (size_t)v;
	else
		*(unsigned *)(void *)p = (unsigned)v;
}

static int
limits_ok(const struct tg_gate_config *c, struct tg_error *err)
{
	char w[512];
	size_t i;
	int r = 0;

	for (i = 0; i < GC_NLIMITS && r == 0; i++)
		if (limit_get(&c->limits, i) < 1 || limit_get(&c->limits, i) > limit_tab[i].max)
			r = tg_error_set(err, TG_ERR_CONFIG, "%s.%s %llu: must be from 1 to %llu",
			                 where(c, "limits", "limits", c->line.limits, w, sizeof(w)),
			                 limit_tab[i].name, limit_get(&c->limits, i),
			                 limit_tab[i].max);
	if (r == 0 && c->limits.request_line > c->limits.header_bytes)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: request_line (%zu) is larger than header_bytes (%zu), which "
		                 "counts the request line too; raise header_bytes or lower "
		                 "request_line",
		                 where(c, "limits", "limits", c->line.limits, w, sizeof(w)),
		                 c->limits.request_line, c->limits.header_bytes);
	if (r == 0 && (c->workers < 1 || c->workers > GC_WORKERS_MAX))
		r = tg_error_set(err, TG_ERR_CONFIG, "%s %u: must be from 1 to %u",
		                 where(c, "--workers", "workers", c->line.workers, w, sizeof(w)),
		                 c->workers, GC_WORKERS_MAX);
	return r;
}

static int
same_addr(const struct tg_gate_url *a, const struct tg_gate_url *b)
{
	return a->scheme == b->scheme && strcmp(a->host, b->host) == 0 &&
	       strcmp(a->port, b->port) == 0 && strcmp(a->path, b->path) == 0;
}

/* "FILE line N: listener 'x'" or, for flags, "--OPT VALUE". */
static const char *
lwhere(const struct tg_gate_config *c, const struct tg_gate_listener_cfg *l, const char *flag,
       const char *value, char *buf, size_t n)
{
	if (c->file != NULL)
		snprintf(buf, n, "%s line %u: listener '%s'", c->file, l->line, l->name);
	else
		snprintf(buf, n, "%s %.200s", flag, value != NULL ? value : "");
	return buf;
}

/* 1 for a loopback address: 127.0.0.0/8, ::1 or "localhost". */
static int
loopback(const char *host)
{
	static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
	                                              0, 0, 0, 0, 0, 0, 0, 1};
	unsigned char a[16];
	int yes = 0;

	if (strcmp(host, "localhost") == 0)
		yes = 1;
	else if (inet_pton(AF_INET, host, a) == 1)
		yes = a[0] == 127;
	else if (inet_pton(AF_INET6, host, a) == 1)
		yes = memcmp(a, v6_loopback, sizeof(v6_loopback)) == 0;
	return yes;
}

/* One listener's mode against its address and upstream. */
static int
listener_ok(const struct tg_gate_config *c, const struct tg_gate_listener_cfg *l,
            struct tg_error *err)
{
	const char *mode = mode_name(l->mode);
	char w[600];
	int r = 0;

	if (l->addr.scheme == TG_GATE_SCHEME_UNIX && l->mode != TG_GATE_MODE_AUTHZ)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: unix:/PATH listen addresses are for mode authz (nginx "
		                 "auth_request); listen on ADDR:PORT such as 0.0.0.0:8443 or use "
		                 "mode authz",
		                 lwhere(c, l, "--listen", l->listen, w, sizeof(w)));
	else if (l->mode == TG_GATE_MODE_TCP && l->upstream == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: mode tcp needs an upstream to pass the bytes to; %s "
		                 "tcp://HOST:PORT or unix:/PATH",
		                 lwhere(c, l, "--mode", mode, w, sizeof(w)),
		                 c->file != NULL ? "add upstream:" : "add --upstream");
	else if (l->mode == TG_GATE_MODE_TCP && l->up.scheme != TG_GATE_SCHEME_TCP &&
	         l->up.scheme != TG_GATE_SCHEME_UNIX)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: mode tcp passes bytes, not HTTP requests; write the upstream "
		                 "as tcp://HOST:PORT or unix:/PATH",
		                 lwhere(c, l, "--upstream", l->upstream, w, sizeof(w)));
	else if (l->mode == TG_GATE_MODE_HTTP && l->upstream != NULL &&
	         l->up.scheme == TG_GATE_SCHEME_TCP)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: mode http forwards HTTP requests; write the upstream as "
		                 "http://, https:// or unix:/PATH (tcp:// is for mode tcp)",
		                 lwhere(c, l, "--upstream", l->upstream, w, sizeof(w)));
	else if (l->mode == TG_GATE_MODE_AUTHZ && l->upstream != NULL)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: mode authz only answers nginx's auth_request and forwards "
		                 "nothing; remove the upstream",
		                 lwhere(c, l, "--upstream", l->upstream, w, sizeof(w)));
	else if (l->mode == TG_GATE_MODE_AUTHZ && l->addr.scheme == TG_GATE_SCHEME_TCP &&
	         !loopback(l->addr.host))
		r = tg_error_set(
		    err, TG_ERR_CONFIG,
		    "%s: an authz listener answers with the identity and the route's "
		    "injected credentials to whoever asks with a certificate (which is "
		    "public), so it listens on loopback or a unix socket only; run the "
		    "gate beside nginx and listen on 127.0.0.1:PORT, [::1]:PORT or "
		    "unix:/PATH",
		    lwhere(c, l, "--listen", l->listen, w, sizeof(w)));
	else if (l->group != NULL && l->addr.scheme != TG_GATE_SCHEME_UNIX)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: a group is given to a unix socket only (its file's group); "
		                 "listen on unix:/PATH or remove the group",
		                 lwhere(c, l, "--listen-group", l->group, w, sizeof(w)));
	else if (l->group != NULL && getgrnam(l->group) == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: group '%s' does not exist; create it (groupadd %s) or name "
		                 "the group nginx's worker runs as",
		                 lwhere(c, l, "--listen-group", l->group, w, sizeof(w)), l->group,
		                 l->group);
	return r;
}

static int
listeners_ok(const struct tg_gate_config *c, int *need_cert, int *https, struct tg_error *err)
{
	const struct tg_gate_listener_cfg *a, *b;
	char w[600];
	size_t i, j;
	int r = 0;

	if (c->nlisteners == 0) {
		r = c->file != NULL
		        ? tg_error_set(err, TG_ERR_CONFIG,
		                       "%s: no listener; add listeners: [{listen: "
		                       "0.0.0.0:8443, upstream: http://127.0.0.1:8081}]",
		                       c->file)
		        : tg_error_set(err, TG_ERR_CONFIG, "no listener; add --listen ADDR:PORT");
		goto out;
	}
	for (i = 0; i < c->nlisteners && r == 0; i++) {
		a = &c->listeners[i];
		for (j = 0; j < i && r == 0; j++) {
			b = &c->listeners[j];
			if (strcmp(a->name, b->name) == 0)
				r = tg_error_set(
				    err, TG_ERR_CONFIG,
				    "%s: the name is used twice (first at line %u); give "
				    "each listener its own name",
				    lwhere(c, a, "--listen", a->listen, w, sizeof(w)), b->line);
			else if (same_addr(&a->addr, &b->addr))
				r = tg_error_set(
				    err, TG_ERR_CONFIG,
				    "%s: listens on %s like listener '%s' (line %u); give "
				    "each listener its own address",
				    lwhere(c, a, "--listen", a->listen, w, sizeof(w)), a->listen,
				    b->name, b->line);
		}
		if (r == 0)
			r = listener_ok(c, a, err);
		if (a->mode != TG_GATE_MODE_AUTHZ)
			*need_cert = 1;
		if (a->upstream != NULL && a->up.scheme == TG_GATE_SCHEME_HTTPS)
			*https = 1;
	}
	if (r == 0 && c->admin != NULL && c->admin_addr.scheme != TG_GATE_SCHEME_TCP)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s %s: the admin listener serves plain HTTP on ADDR:PORT such as "
		                 "127.0.0.1:9090",
		                 where(c, "--admin", "admin", c->line.admin, w, sizeof(w)),
		                 c->admin);
	for (i = 0; r == 0 && c->admin != NULL && i < c->nlisteners; i++)
		if (same_addr(&c->admin_addr, &c->listeners[i].addr))
			r = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "%s %s: listener '%s' uses this address too; give the admin "
			    "listener its own port",
			    where(c, "--admin", "admin", c->line.admin, w, sizeof(w)), c->admin,
			    c->listeners[i].name);
out:
	return r;
}

static int
policy_parse(const char *text, size_t n, const char *name, void *p, struct tg_error *err)
{
	return tg_gate_policy_parse(text, n, name, p, err);
}

int
tg_gate_config_policy_load(const char *path, struct tg_gate_policy *p, struct tg_error *err)
{
	memset(p, 0, sizeof(*p));
	return tg_yaml_file_parse(path, "gate policy", GC_POLICY_MAX, policy_parse, p, err);
}

/* The listener's policy parses, its routes have upstreams, its secrets load. */
static int
policy_ok(const struct tg_gate_config *c, const struct tg_gate_listener_cfg *l, int *https,
          struct tg_error *err)
{
	const char *path = l->policy_file != NULL ? l->policy_file : c->policy_file;
	struct tg_gate_policy pol;
	struct tg_gate_secrets *sec = NULL;
	struct tg_gate_url u;
	char w[600];
	size_t i;
	int r;

	memset(&pol, 0, sizeof(pol));
	if (path == NULL) {
		r = c->file != NULL
		        ? tg_error_set(err, TG_ERR_CONFIG,
		                       "%s line %u: listener '%s' has no policy; add policy: FILE "
		                       "to it, or a top-level policy: FILE",
		                       c->file, l->line, l->name)
		        : tg_error_set(err, TG_ERR_CONFIG,
		                       "no policy; add --policy FILE (who may call which routes)");
		goto out;
	}
	if ((r = tg_gate_config_policy_load(path, &pol, err)) != 0) {
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: %s",
		                 l->policy_file != NULL
		                     ? lwhere(c, l, "--policy", path, w, sizeof(w))
		                     : where(c, "--policy", "policy", c->line.policy, w, sizeof(w)),
		                 err != NULL ? err->msg : "");
		goto out;
	}
	for (i = 0; i < pol.nupstreams && r == 0; i++) {
		if ((r = tg_gate_url_parse(pol.upstreams[i].url, 0, &u, err)) != 0)
			r = tg_error_set(err, TG_ERR_CONFIG, "%s: upstream '%s': %s", path,
			                 pol.upstreams[i].name, err != NULL ? err->msg : "");
		else if (u.scheme == TG_GATE_SCHEME_HTTPS)
			*https = 1;
	}
	for (i = 0; i < pol.nroutes && r == 0 && l->mode == TG_GATE_MODE_HTTP; i++)
		if (pol.routes[i].upstream < 0 && l->upstream == NULL)
			r = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "%s line %u: route '%s' names no upstream and listener '%s' "
			    "has none; add upstream: NAME to the route, or %s",
			    path, pol.routes[i].line, pol.routes[i].name, l->name,
			    c->file != NULL ? "upstream: URL to the listener" : "--upstream URL");
	if (r == 0 && (r = tg_gate_secrets_load(&pol, &sec, err)) != 0)
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: %s", path, err != NULL ? err->msg : "");
out:
	tg_gate_secrets_free(sec);
	tg_gate_policy_clear(&pol);
	return r;
}

int
tg_gate_config_check(const struct tg_gate_config *c, struct tg_error *err)
{
	int need_cert = 0, https = 0, r;
	size_t i;

	if ((r = listeners_ok(c, &need_cert, &https, err)) != 0 || (r = limits_ok(c, err)) != 0 ||
	    (r = files_ok(c, need_cert, err)) != 0)
		goto out;
	for (i = 0; i < c->nlisteners && r == 0; i++)
		r = policy_ok(c, &c->listeners[i], &https, err);
	if (r == 0 && https && c->upstream_ca == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: an https:// upstream is verified against the CA certificates "
		                 "of %s; add it",
		                 c->file != NULL ? c->file : "the command line",
		                 c->file != NULL ? "upstream_ca: FILE" : "--upstream-ca FILE");
out:
	return r;
}

/* ------------------------------------------------------------------ */
/* Flags                                                               */
/* ------------------------------------------------------------------ */

enum {
	O_CONFIG = 1,
	O_LISTEN,
	O_MODE,
	O_CERT,
	O_KEY,
	O_CLIENT_CA,
	O_CRL,
	O_TICKETS,
	O_UPSTREAM,
	O_UPSTREAM_CA,
	O_POLICY,
	O_AUDIT,
	O_AUDIT_FSYNC,
	O_ADMIN,
	O_WORKERS,
	O_DRY_RUN,
	O_CHECK,
	O_LISTEN_GROUP,
	O_END
};

static const struct tg_cli_opt gate_opts[] = {
    {"config", TG_CLI_ARG_REQUIRED, O_CONFIG},
    {"listen", TG_CLI_ARG_REQUIRED, O_LISTEN},
    {"mode", TG_CLI_ARG_REQUIRED, O_MODE},
    {"cert", TG_CLI_ARG_REQUIRED, O_CERT},
    {"key", TG_CLI_ARG_REQUIRED, O_KEY},
    {"client-ca", TG_CLI_ARG_MANY, O_CLIENT_CA},
    {"crl", TG_CLI_ARG_REQUIRED, O_CRL},
    {"tickets", TG_CLI_ARG_REQUIRED, O_TICKETS},
    {"upstream", TG_CLI_ARG_REQUIRED, O_UPSTREAM},
    {"upstream-ca", TG_CLI_ARG_REQUIRED, O_UPSTREAM_CA},
    {"policy", TG_CLI_ARG_REQUIRED, O_POLICY},
    {"audit", TG_CLI_ARG_REQUIRED, O_AUDIT},
    {"audit-fsync", TG_CLI_ARG_REQUIRED, O_AUDIT_FSYNC},
    {"admin", TG_CLI_ARG_REQUIRED, O_ADMIN},
    {"workers", TG_CLI_ARG_REQUIRED, O_WORKERS},
    {"dry-run", TG_CLI_ARG_NONE, O_DRY_RUN},
    {"check", TG_CLI_ARG_NONE, O_CHECK},
    {"listen-group", TG_CLI_ARG_REQUIRED, O_LISTEN_GROUP},
    {NULL, 0, 0},
};

/* ghostunnel's and nginx's names for what the gate calls otherwise. */
static const struct tg_cli_hint gate_hints[] = {
    {"target", "the gate's name for it is --upstream URL"},
    {"cacert", "the CA that issues client certificates is --client-ca FILE"},
    {"ca", "the CA that issues client certificates is --client-ca FILE"},
    {"allow-uri", "who may call what is written in the --policy FILE (routes with allow "
                  "entries)"},
    {"allow-all", "the gate allows nobody by default; write allow entries in the --policy "
                  "FILE"},
    {"keystore", "give the server certificate and key as --cert FILE --key FILE (or "
                 "pkcs11: URIs)"},
    {"threads", "the gate's name for it is --workers N"},
    {"port", "the port goes in --listen ADDR:PORT"},
    {NULL, NULL},
};

static void
usage(FILE *f)
{
	struct tg_gate_config d;

	tg_gate_config_init(&d);
	fprintf(f,
	        "usage: tokengate gate --config FILE [--check] [--dry-run] [--workers N]\n"
	        "                      [--audit-fsync MODE]\n"
	        "       tokengate gate --listen ADDR:PORT --cert FILE|pkcs11:URI\n"
	        "                      --key FILE|pkcs11:URI --client-ca FILE --policy FILE\n"
	        "                      --audit FILE [--upstream URL] [options]\n"
	        "       tokengate gate --mode authz --listen unix:/PATH|127.0.0.1:PORT\n"
	        "                      --client-ca FILE --policy FILE --audit FILE\n"
	        "                      [--listen-group GROUP] [options]\n"
	        "\n"
	        "The gate in front of an API: accepts only clients whose certificate is\n"
	        "token-backed, decides every request against the policy's routes, writes\n"
	        "one hash-chained audit record per decision before forwarding, and\n"
	        "passes allowed requests to the upstream. In mode authz it answers nginx's\n"
	        "auth_request instead: 200 with the identity or 403 with the reason.\n"
	        "\n"
	        "  --config FILE          every setting in one YAML file (several listeners,\n"
	        "                         limits); only --check, --dry-run, --workers and\n"
	        "                         --audit-fsync may be added to it\n"
	        "  --listen ADDR:PORT     where clients connect: 127.0.0.1:8443, [::1]:8443,\n"
	        "                         0.0.0.0:8443; mode authz: 127.0.0.1:PORT, [::1]:PORT\n"
	        "                         or unix:/PATH (loopback or a unix socket only)\n"
	        "  --mode MODE            http: decide each request; tcp: decide the\n"
	        "                         connection, then pass bytes both ways; authz: answer\n"
	        "                         nginx auth_request subrequests (no --cert, --key or\n"
	        "                         --upstream then) (default: http)\n"
	        "  --listen-group GROUP   mode authz on unix:/PATH: the socket's group (mode\n"
	        "                         0660), e.g. nginx's worker group (default: the\n"
	        "                         gate's own group)\n"
	        "  --cert FILE|pkcs11:URI the server certificate (PEM)\n"
	        "  --key FILE|pkcs11:URI  the server key: a PEM file only its owner can read,\n"
	        "                         or a key on a token or HSM\n"
	        "  --client-ca FILE       a tokengate CA certificate (PEM) that issues the\n"
	        "                         clients' certificates; repeat for several\n"
	        "  --crl FILE             the CAs' revocation list (PEM), reloaded on change\n"
	        "                         and SIGHUP (default: none)\n"
	        "  --tickets FILE         session-ticket key file that several gates share\n"
	        "                         (default: none)\n"
	        "  --upstream URL         where allowed requests go: http://HOST:PORT,\n"
	        "                         https://HOST:PORT, unix:/PATH; tcp mode:\n"
	        "                         tcp://HOST:PORT or unix:/PATH (default: none; then\n"
	        "                         every route of the policy names its upstream)\n"
	        "  --upstream-ca FILE     CA certificates (PEM) https:// upstreams are verified\n"
	        "                         against (default: none; needed for https://)\n"
	        "  --policy FILE          who may call which routes (YAML)\n"
	        "  --audit FILE           the audit log, created with mode 0600\n"
	        "  --audit-fsync MODE     always, batch (group commit) or never\n"
	        "                         (default: batch)\n"
	        "  --admin ADDR:PORT      plain-HTTP /healthz, /readyz and /metrics; keep it on\n"
	        "                         loopback, e.g. 127.0.0.1:9090 (default: none)\n"
	        "  --workers N            worker threads, 1 to %u (default: the number of\n"
	        "                         online CPUs, here %u)\n"
	        "  --dry-run              log what would be denied and allow it (default: off)\n"
	        "  --check                validate the configuration, the policy and its\n"
	        "                         secrets, then exit\n"
	        "  -h, --help             this help\n"
	        "\n"
	        "The --config file's keys: listeners (a list of {name, listen, mode,\n"
	        "upstream, policy, group}), tls {cert, key, client_ca, crl, tickets},\n"
	        "upstream_ca, policy, audit {file, fsync}, admin, workers, dry_run,\n"
	        "limits; relative paths start at the file's directory.\n"
	        "Limits (in a --config file, under limits:; defaults): header_bytes %zu,\n"
	        "header_count %zu, request_line %zu, handshake_ms %u, header_ms %u,\n"
	        "idle_ms %u, upstream_connect_ms %u, upstream_ms %u, max_conns %u,\n"
	        "upstream_pool %u, handshake_failures %u, handshake_failure_ms %u: a client\n"
	        "address (an IPv6 /64) whose handshakes fail handshake_failures times within\n"
	        "handshake_failure_ms is refused at connect for handshake_failure_ms.\n"
	        "\n"
	        "SIGHUP reloads certificates, CRL, policy and secrets (a bad new file keeps\n"
	        "the old configuration); SIGTERM and SIGINT stop after the requests in\n"
	        "flight.\n"
	        "Exit codes: 0 success (--check: the configuration is valid), 1 failure\n"
	        "(the reason on stderr), 2 usage.\n",
	        GC_WORKERS_MAX, d.workers, d.limits.header_bytes, d.limits.header_count,
	        d.limits.request_line, d.limits.handshake_ms, d.limits.header_ms, d.limits.idle_ms,
	        d.limits.upstream_connect_ms, d.limits.upstream_ms, d.limits.max_conns,
	        d.limits.upstream_pool, d.limits.handshake_failures, d.limits.handshake_failure_ms);
}

/* Prints "tokengate gate: MSG (try ...)" and returns TG_ERR_USAGE with MSG in err. */
/* A usage error printed and handed back in err (TG_ERR_USAGE). */
#define usage_error(err, ...) tg_cli_usage_err(GC_PROG, GC_WHAT, err, __VA_ARGS__)

/* The command line as read: each option's value, the --client-ca list. */
struct gc_args {
	const char *v[O_END];
	const char **cas;
	size_t ncas;
	int given[O_END];
};

static int
read_args(int argc, char **argv, struct gc_args *a, int *help, struct tg_error *err)
{
	struct tg_cli_getopt g;
	const char *v;
	int ch, r;

	if (tg_cli_getopt_init(&g, GC_PROG, GC_WHAT, gate_opts, gate_hints, 0, argc, argv) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "the gate's option table is broken");
		goto out;
	}
	if ((a->cas = calloc((size_t)argc + 1, sizeof(*a->cas))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading the command line");
		goto out;
	}
	while ((ch = tg_cli_next(&g, &v)) > 0) {
		a->given[ch] = 1;
		a->v[ch] = v;
		if (ch == O_CLIENT_CA)
			a->cas[a->ncas++] = v;
	}
	if (ch == TG_CLI_HELP) {
		*help = 1;
		r = 0;
	} else if (ch == TG_CLI_END) {
		r = 0;
	} else {
		/* tg_cli_next printed the usage error */
		r = tg_error_set(err, TG_ERR_USAGE,
		                 "bad command line (the reason is printed above)");
	}
out:
	return r;
}

/* --config FILE with flags that belong in the file. */
static int
mixed_error(const struct gc_args *a, struct tg_error *err)
{
	char list[512];
	size_t used = 0;
	int i, r = 0;

	list[0] = '\0';
	for (i = 1; i < O_END; i++)
		if (a->given[i] && i != O_CONFIG && i != O_DRY_RUN && i != O_WORKERS &&
		    i != O_AUDIT_FSYNC && i != O_CHECK && used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s--%s",
			                         used > 0 ? ", " : "", gate_opts[i - 1].name);
	if (used > 0)
		r = usage_error(err,
		                "--config and %s do not mix: with --config FILE every setting "
		                "comes from the file (only --check, --dry-run, --workers and "
		                "--audit-fsync may be added); move %s into FILE or drop --config",
		                list, strchr(list, ',') != NULL ? "them" : "it");
	return r;
}

/* What a start from flags alone needs and the command line lacks. */
static int
missing_error(const struct gc_args *a, enum tg_gate_mode mode, struct tg_error *err)
{
	static const int need[] = {O_LISTEN, O_CERT,  O_KEY,     O_CLIENT_CA,
	                           O_POLICY, O_AUDIT, O_UPSTREAM};
	char list[256];
	size_t i, used = 0, k = 0;
	int r = 0;

	list[0] = '\0';
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (a->given[need[i]] ||
		    ((need[i] == O_CERT || need[i] == O_KEY) && mode == TG_GATE_MODE_AUTHZ) ||
		    (need[i] == O_UPSTREAM && mode != TG_GATE_MODE_TCP))
			continue;
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s--%s",
		                         k++ > 0 ? ", " : "", gate_opts[need[i] - 1].name);
	}
	if (k > 0)
		r = usage_error(
		    err,
		    "missing %s; a gate needs --listen ADDR:PORT --cert FILE|pkcs11:URI "
		    "--key FILE|pkcs11:URI --client-ca FILE --policy FILE --audit FILE "
		    "(and --upstream URL), or --config FILE",
		    list);
	return r;
}

/* One flag's value into *dst (a copy). */
static int
take(char **dst, const char *v, struct tg_error *err)
{
	return v == NULL || set_str(dst, v) == 0
	           ? 0
	           : tg_error_set(err, TG_ERR_ALLOC, "out of memory reading the command line");
}

/* The one listener "main" and the rest of the flags into *c. */
static int
from_flags(const struct gc_args *a, struct tg_gate_config *c, struct tg_error *err)
{
	struct tg_gate_listener_cfg *l;
	const char *why;
	size_t i;
	int r;

	if ((c->listeners = calloc(1, sizeof(*c->listeners))) == NULL ||
	    (c->client_ca = calloc(a->ncas + 1, sizeof(*c->client_ca))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading the command line");
		goto out;
	}
	c->nlisteners = 1;
	l = &c->listeners[0];
	snprintf(l->name, sizeof(l->name), "main");
	l->mode = TG_GATE_MODE_HTTP;
	if (a->v[O_MODE] != NULL && parse_mode(a->v[O_MODE], &l->mode) != 0) {
		r = usage_error(err, "--mode %.64s: expected http, tcp or authz", a->v[O_MODE]);
		goto out;
	}
	if (a->v[O_LISTEN] != NULL && (why = url_why(a->v[O_LISTEN], 1, &l->addr)) != NULL) {
		r = usage_error(err, "--listen %.200s: %s; expected %s", a->v[O_LISTEN], why,
		                GC_FORMS_LISTEN);
		goto out;
	}
	if (a->v[O_UPSTREAM] != NULL && (why = url_why(a->v[O_UPSTREAM], 0, &l->up)) != NULL) {
		r = usage_error(err, "--upstream %.200s: %s; expected %s", a->v[O_UPSTREAM], why,
		                GC_FORMS_UP);
		goto out;
	}
	if (a->v[O_ADMIN] != NULL && ((why = url_why(a->v[O_ADMIN], 1, &c->admin_addr)) != NULL ||
	                              c->admin_addr.scheme != TG_GATE_SCHEME_TCP)) {
		r = usage_error(err,
		                "--admin %.200s: %s; expected ADDR:PORT such as 127.0.0.1:9090",
		                a->v[O_ADMIN], why != NULL ? why : "the admin listener is TCP");
		goto out;
	}
	if ((r = take(&l->listen, a->v[O_LISTEN], err)) != 0 ||
	    (r = take(&l->upstream, a->v[O_UPSTREAM], err)) != 0 ||
	    (r = take(&l->group, a->v[O_LISTEN_GROUP], err)) != 0 ||
	    (r = take(&c->cert, a->v[O_CERT], err)) != 0 ||
	    (r = take(&c->key, a->v[O_KEY], err)) != 0 ||
	    (r = take(&c->crl, a->v[O_CRL], err)) != 0 ||
	    (r = take(&c->tickets, a->v[O_TICKETS], err)) != 0 ||
	    (r = take(&c->upstream_ca, a->v[O_UPSTREAM_CA], err)) != 0 ||
	    (r = take(&c->policy_file, a->v[O_POLICY], err)) != 0 ||
	    (r = take(&c->audit_file, a->v[O_AUDIT], err)) != 0 ||
	    (r = take(&c->admin, a->v[O_ADMIN], err)) != 0)
		goto out;
	for (i = 0; i < a->ncas; i++, c->nclient_ca++)
		if ((r = take(&c->client_ca[i], a->cas[i], err)) != 0)
			goto out;
	r = 0;
out:
	return r;
}

/* --dry-run, --workers, --audit-fsync: on flags alone or over a file. */
static int
overrides(const struct gc_args *a, struct tg_gate_config *c, struct tg_error *err)
{
	unsigned long long n;
	struct tg_error e;
	int r = 0;

	if (a->given[O_DRY_RUN])
		c->dry_run = 1;
	if (a->v[O_WORKERS] != NULL) {
		if (tg_yaml_parse_uint(a->v[O_WORKERS], 1, GC_WORKERS_MAX, &n) != 0) {
			r = usage_error(
			    err,
			    "--workers %.64s: expected a number of worker threads from 1 "
			    "to %u (default: the number of online CPUs)",
			    a->v[O_WORKERS], GC_WORKERS_MAX);
			goto out;
		}
		c->workers = (unsigned)n;
		c->line.workers = 0;
	}
	if (a->v[O_AUDIT_FSYNC] != NULL &&
	    tg_audit_fsync_parse(a->v[O_AUDIT_FSYNC], &c->audit_fsync, &e) != 0) {
		r = usage_error(err,
		                "--audit-fsync %.64s: expected always (fsync each record), batch "
		                "(group commit, the default) or never",
		                a->v[O_AUDIT_FSYNC]);
		goto out;
	}
out:
	return r;
}

int
tg_gate_config_from_args(int argc, char **argv, struct tg_gate_config *c, int *check, int *help,
                         struct tg_error *err)
{
	struct gc_args a;
	enum tg_gate_mode mode = TG_GATE_MODE_HTTP;
	int r;

	memset(&a, 0, sizeof(a));
	tg_gate_config_init(c);
	*check = 0;
	*help = 0;
	if ((r = read_args(argc, argv, &a, help, err)) != 0)
		goto out;
	if (*help) {
		usage(stdout);
		goto out;
	}
	*check = a.given[O_CHECK];
	if (a.v[O_MODE] != NULL && parse_mode(a.v[O_MODE], &mode) != 0) {
		r = usage_error(err, "--mode %.64s: expected http, tcp or authz", a.v[O_MODE]);
		goto out;
	}
	if (a.given[O_CONFIG]) {
		if ((r = mixed_error(&a, err)) != 0 ||
		    (r = tg_gate_config_load(a.v[O_CONFIG], c, err)) != 0 ||
		    (r = overrides(&a, c, err)) != 0)
			goto out;
	} else if ((r = from_flags(&a, c, err)) != 0 || (r = overrides(&a, c, err)) != 0 ||
	           (r = missing_error(&a, mode, err)) != 0) {
		/* the values given are checked before what is missing: they were typed */
		goto out;
	}
	r = tg_gate_config_check(c, err);
out:
	free(a.cas);
	if (r != 0)
		tg_gate_config_clear(c);
	return r;
}

/* ------------------------------------------------------------------ */
/* The YAML file                                                       */
/* ------------------------------------------------------------------ */

/* The reader's state: tgyaml's context, the file's directory, the config. */
struct gc_reader {
	struct tg_yaml_ctx y;
	char dir[4096]; /* where relative paths start, with a trailing '/' */
	struct tg_gate_config *c;
};

static yaml_node_t *
ynode(struct gc_reader *rd, int id)
{
	return yaml_document_get_node(rd->y.doc, id);
}

static int
galloc(struct gc_reader *rd)
{
	return tg_error_set(rd->y.err, TG_ERR_ALLOC, "out of memory reading %s", rd->y.name);
}

/* A file path: relative ones start at the configuration file's directory. */
static int
get_path(struct gc_reader *rd, yaml_node_t *n, const char *what, char **dst, unsigned *line)
{
	const char *v = NULL;
	size_t dl, vl;
	char *p;
	int r;

	if ((r = tg_yaml_text(&rd->y, n, what, &v)) != 0)
		goto out;
	if (line != NULL)
		*line = tg_yaml_line(n);
	dl = v[0] == '/' || strncmp(v, "pkcs11:", 7) == 0 ? 0 : strlen(rd->dir);
	vl = strlen(v);
	if ((p = malloc(dl + vl + 1)) == NULL) {
		r = galloc(rd);
		goto out;
	}
	memcpy(p, rd->dir, dl);
	memcpy(p + dl, v, vl + 1);
	free(*dst);
	*dst = p;
out:
	return r;
}

/* The address or URL in n, parsed into *u and copied into *dst. */
static int
get_url(struct gc_reader *rd, yaml_node_t *n, const char *what, int listen, char **dst,
        struct tg_gate_url *u)
{
	const char *v = NULL, *why;
	int r;

	if ((r = tg_yaml_text(&rd->y, n, what, &v)) != 0)
		goto out;
	if ((why = url_why(v, listen, u)) != NULL) {
		r = tg_yaml_err(&rd->y, n, "%s '%.200s': %s; write %s", what, v, why,
		                listen ? GC_FORMS_LISTEN : GC_FORMS_UP);
		goto out;
	}
	if (set_str(dst, v) != 0)
		r = galloc(rd);
out:
	return r;
}

static int
name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n >= 1 && n <= TG_GATE_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

static int
get_listener(struct gc_reader *rd, yaml_node_t *m, size_t idx, struct tg_gate_listener_cfg *l)
{
	static const char *const keys[] = {"name", "listen", "mode", "upstream", "policy", "group"};
	yaml_node_t *v[6] = {NULL};
	const char *s;
	int r;

	l->line = tg_yaml_line(m);
	l->mode = TG_GATE_MODE_HTTP;
	snprintf(l->name, sizeof(l->name), "listener%zu", idx);
	if ((r = tg_yaml_keys(&rd->y, m, "a listener", keys, 6, v)) != 0)
		goto out;
	if (v[0] != NULL) {
		s = tg_yaml_scalar(v[0]);
		if (!name_ok(s)) {
			r = tg_yaml_err(
			    &rd->y, v[0],
			    "a listener's 'name' must be 1 to %d letters, digits, '.', '-' "
			    "or '_' (given: '%.64s')",
			    TG_GATE_NAME_MAX, s != NULL ? s : "a list or mapping");
			goto out;
		}
		snprintf(l->name, sizeof(l->name), "%s", s);
	}
	if (v[1] == NULL) {
		r = tg_yaml_err(&rd->y, m,
		                "listener '%s' has no 'listen'; add listen: ADDR:PORT such as "
		                "0.0.0.0:8443",
		                l->name);
		goto out;
	}
	if ((r = get_url(rd, v[1], "listen", 1, &l->listen, &l->addr)) != 0)
		goto out;
	if (v[2] != NULL && ((s = tg_yaml_scalar(v[2])) == NULL || parse_mode(s, &l->mode) != 0)) {
		r = tg_yaml_err(&rd->y, v[2], "'mode' must be http, tcp or authz (given: '%.64s')",
		                s != NULL ? s : "a list or mapping");
		goto out;
	}
	if (v[3] != NULL && (r = get_url(rd, v[3], "upstream", 0, &l->upstream, &l->up)) != 0)
		goto out;
	if (v[4] != NULL && (r = get_path(rd, v[4], "policy", &l->policy_file, NULL)) != 0)
		goto out;
	if (v[5] != NULL) {
		if ((s = tg_yaml_scalar(v[5])) == NULL || s[0] == '\0')
			r = tg_yaml_err(&rd->y, v[5],
			                "'group' must be the name of a group, like www-data");
		else if (set_str(&l->group, s) != 0)
			r = galloc(rd);
	}
out:
	return r;
}

static int
get_listeners(struct gc_reader *rd, yaml_node_t *seq)
{
	struct tg_gate_config *c = rd->c;
	yaml_node_item_t *it;
	size_t n;
	int r = 0;

	if (seq->type != YAML_SEQUENCE_NODE ||
	    (n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start)) == 0) {
		r = tg_yaml_err(&rd->y, seq,
		                "'listeners' must be a non-empty list like [{listen: 0.0.0.0:8443, "
		                "upstream: http://127.0.0.1:8081}]");
		goto out;
	}
	if (n > GC_LISTENERS_MAX) {
		r = tg_yaml_err(&rd->y, seq, "%zu listeners: at most %u; run several gates", n,
		                GC_LISTENERS_MAX);
		goto out;
	}
	if ((c->listeners = calloc(n, sizeof(*c->listeners))) == NULL) {
		r = galloc(rd);
		goto out;
	}
	for (it = seq->data.sequence.items.start; r == 0 && it < seq->data.sequence.items.top;
	     it++) {
		r = get_listener(rd, ynode(rd, *it), c->nlisteners, &c->listeners[c->nlisteners]);
		c->nlisteners++; /* counted also on failure: clear frees what it holds */
	}
out:
	return r;
}

static int
get_client_ca(struct gc_reader *rd, yaml_node_t *n)
{
	struct tg_gate_config *c = rd->c;
	yaml_node_item_t *it;
	size_t k = 1;
	int r = 0;

	c->line.client_ca = tg_yaml_line(n);
	if (n->type == YAML_SEQUENCE_NODE)
		k = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (k == 0) {
		r = tg_yaml_err(&rd->y, n,
		                "'client_ca' must name at least one CA certificate file, like "
		                "[/etc/tokengate/ca.pem]");
		goto out;
	}
	if ((c->client_ca = calloc(k, sizeof(*c->client_ca))) == NULL) {
		r = galloc(rd);
		goto out;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		if ((r = get_path(rd, n, "client_ca", &c->client_ca[0], NULL)) == 0)
			c->nclient_ca = 1;
		goto out;
	}
	for (it = n->data.sequence.items.start; r == 0 && it < n->data.sequence.items.top; it++)
		if ((r = get_path(rd, ynode(rd, *it), "client_ca", &c->client_ca[c->nclient_ca],
		                  NULL)) == 0)
			c->nclient_ca++;
out:
	return r;
}

static int
get_tls(struct gc_reader *rd, yaml_node_t *m)
{
	static const char *const keys[] = {"cert", "key", "client_ca", "crl", "tickets"};
	struct tg_gate_config *c = rd->c;
	yaml_node_t *v[5] = {NULL};
	int r;

	if ((r = tg_yaml_keys(&rd->y, m, "'tls'", keys, 5, v)) != 0)
		goto out;
	if (v[0] != NULL && (r = get_path(rd, v[0], "cert", &c->cert, &c->line.cert)) != 0)
		goto out;
	if (v[1] != NULL && (r = get_path(rd, v[1], "key", &c->key, &c->line.key)) != 0)
		goto out;
	if (v[2] != NULL && (r = get_client_ca(rd, v[2])) != 0)
		goto out;
	if (v[3] != NULL && (r = get_path(rd, v[3], "crl", &c->crl, &c->line.crl)) != 0)
		goto out;
	if (v[4] != NULL)
		r = get_path(rd, v[4], "tickets", &c->tickets, &c->line.tickets);
out:
	return r;
}

static int
get_audit(struct gc_reader *rd, yaml_node_t *m)
{
	static const char *const keys[] = {"file", "fsync"};
	struct tg_gate_config *c = rd->c;
	yaml_node_t *v[2] = {NULL};
	struct tg_error e;
	const char *s;
	int r;

	if (m->type != YAML_MAPPING_NODE) {
		r = tg_yaml_err(&rd->y, m,
		                "'audit' must be a mapping like {file: "
		                "/var/log/tokengate/audit.log, fsync: batch}");
		goto out;
	}
	if ((r = tg_yaml_keys(&rd->y, m, "'audit'", keys, 2, v)) != 0)
		goto out;
	if (v[0] == NULL) {
		r = tg_yaml_err(&rd->y, m,
		                "'audit' has no 'file'; add file: /var/log/tokengate/audit.log");
		goto out;
	}
	if ((r = get_path(rd, v[0], "file", &c->audit_file, &c->line.audit)) != 0)
		goto out;
	if (v[1] != NULL && ((s = tg_yaml_scalar(v[1])) == NULL ||
	                     tg_audit_fsync_parse(s, &c->audit_fsync, &e) != 0))
		r = tg_yaml_err(&rd->y, v[1],
		                "'fsync' must be always (fsync each record), batch (group commit, "
		                "the default) or never (given: '%.64s')",
		                s != NULL ? s : "a list or mapping");
out:
	return r;
}

static int
get_limits(struct gc_reader *rd, yaml_node_t *m)
{
	const char *keys[GC_NLIMITS];
	yaml_node_t *v[GC_NLIMITS] = {NULL};
	unsigned long long x;
	char what[64];
	size_t i;
	int r;

	for (i = 0; i < GC_NLIMITS; i++)
		keys[i] = limit_tab[i].name;
	rd->c->line.limits = tg_yaml_line(m);
	if ((r = tg_yaml_keys(&rd->y, m, "'limits'", keys, GC_NLIMITS, v)) != 0)
		goto out;
	for (i = 0; i < GC_NLIMITS && r == 0; i++) {
		if (v[i] == NULL)
			continue;
		snprintf(what, sizeof(what), "limits.%s", limit_tab[i].name);
		if ((r = tg_yaml_uint(&rd->y, v[i], what, 1, limit_tab[i].max, &x)) == 0)
			limit_set(&rd->c->limits, i, x);
	}
out:
	return r;
}

enum {
	K_LISTENERS,
	K_TLS,
	K_UPSTREAM_CA,
	K_POLICY,
	K_AUDIT,
	K_ADMIN,
	K_WORKERS,
	K_DRY_RUN,
	K_LIMITS,
	K_N
};

static int
read_doc(struct gc_reader *rd, yaml_node_t *root)
{
	static const char *const keys[K_N] = {"listeners", "tls",     "upstream_ca",
	                                      "policy",    "audit",   "admin",
	                                      "workers",   "dry_run", "limits"};
	struct tg_gate_config *c = rd->c;
	yaml_node_t *v[K_N] = {NULL};
	unsigned long long x;
	int r;

	if ((r = tg_yaml_keys(&rd->y, root, "the gate configuration", keys, K_N, v)) != 0)
		goto out;
	if (v[K_LISTENERS] == NULL) {
		r = tg_yaml_err(&rd->y, root,
		                "no 'listeners'; add listeners: [{listen: 0.0.0.0:8443, upstream: "
		                "http://127.0.0.1:8081}]");
		goto out;
	}
	if ((r = get_listeners(rd, v[K_LISTENERS])) != 0)
		goto out;
	if (v[K_TLS] != NULL && (r = get_tls(rd, v[K_TLS])) != 0)
		goto out;
	if (v[K_UPSTREAM_CA] != NULL && (r = get_path(rd, v[K_UPSTREAM_CA], "upstream_ca",
	                                              &c->upstream_ca, &c->line.upstream_ca)) != 0)
		goto out;
	if (v[K_POLICY] != NULL &&
	    (r = get_path(rd, v[K_POLICY], "policy", &c->policy_file, &c->line.policy)) != 0)
		goto out;
	if (v[K_AUDIT] != NULL && (r = get_audit(rd, v[K_AUDIT])) != 0)
		goto out;
	if (v[K_ADMIN] != NULL) {
		c->line.admin = tg_yaml_line(v[K_ADMIN]);
		if ((r = get_url(rd, v[K_ADMIN], "admin", 1, &c->admin, &c->admin_addr)) != 0)
			goto out;
	}
	if (v[K_WORKERS] != NULL) {
		if ((r = tg_yaml_uint(&rd->y, v[K_WORKERS], "workers", 1, GC_WORKERS_MAX, &x)) != 0)
			goto out;
		c->workers = (unsigned)x;
		c->line.workers = tg_yaml_line(v[K_WORKERS]);
	}
	if (v[K_DRY_RUN] != NULL &&
	    (r = tg_yaml_bool(&rd->y, v[K_DRY_RUN], "dry_run", &c->dry_run)) != 0)
		goto out;
	if (v[K_LIMITS] != NULL)
		r = get_limits(rd, v[K_LIMITS]);
out:
	return r;
}

/* 1 when text holds an unquoted "[V6]:PORT", which YAML reads as a broken list. */
static int
bare_v6(const char *text, size_t n)
{
	size_t i, j;
	int colon, found = 0;

	for (i = 0; !found && i + 1 < n; i++) {
		if (text[i] != '[' || (i > 0 && (text[i - 1] == '"' || text[i - 1] == '\'')))
			continue;
		for (j = i + 1, colon = 0; j < n && text[j] != '\0' &&
		                           strchr("0123456789abcdefABCDEF:.", text[j]) != NULL;
		     j++)
			colon |= text[j] == ':';
		found = colon && j + 1 < n && text[j] == ']' && text[j + 1] == ':';
	}
	return found;
}

int
tg_gate_config_parse(const char *text, size_t n, const char *name, struct tg_gate_config *c,
                     struct tg_error *err)
{
	struct gc_reader rd;
	yaml_document_t doc;
	yaml_node_t *root;
	const char *slash = strrchr(name, '/');
	int have_doc = 0, r;

	tg_gate_config_init(c);
	memset(&rd, 0, sizeof(rd));
	rd.c = c;
	rd.y.doc = &doc;
	rd.y.name = name;
	rd.y.err = err;
	if (slash != NULL && (size_t)(slash - name) + 2 > sizeof(rd.dir)) {
		r = tg_error_set(err, TG_ERR_CONFIG, "%.200s...: the path is too long", name);
		goto out;
	}
	if (slash != NULL)
		snprintf(rd.dir, sizeof(rd.dir), "%.*s/", (int)(slash - name), name);
	if ((c->file = strdup(name)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading %s", name);
		goto out;
	}
	if ((r = tg_yaml_load(text, n, GC_FILE_MAX, name, &doc, err)) != 0) {
		if (r == TG_ERR_CONFIG && bare_v6(text, n))
			r = tg_error_set(err, r,
			                 "%s (an IPv6 address in brackets must be quoted in YAML: "
			                 "listen: \"[::1]:8443\")",
			                 err != NULL ? err->msg : "");
		goto out;
	}
	have_doc = 1;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		r = tg_error_set(
		    err, TG_ERR_CONFIG,
		    "%s: the configuration is empty; add at least listeners: [{listen: "
		    "0.0.0.0:8443, upstream: http://127.0.0.1:8081}]",
		    name);
		goto out;
	}
	r = read_doc(&rd, root);
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (r != 0)
		tg_gate_config_clear(c);
	return r;
}

static int
config_parse(const char *text, size_t n, const char *name, void *c, struct tg_error *err)
{
	return tg_gate_config_parse(text, n, name, c, err);
}

int
tg_gate_config_load(const char *path, struct tg_gate_config *c, struct tg_error *err)
{
	tg_gate_config_init(c);
	return tg_yaml_file_parse(path, "gate configuration", GC_FILE_MAX, config_parse, c, err);
}
