/*
 * config.c — the agent's configuration (tg_agent_config.h): its flags
 * (tgcore's option table), its YAML file (tgyaml) and the checks a start
 * needs. Addresses and URLs are parsed by the gate's tg_gate_url_parse.
 */
#include "tg_agent_config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tg_cli.h"
#include "tg_yaml.h"

#define AC_PROG          "tokengate"
#define AC_WHAT          "agent"
#define AC_FILE_MAX      (1024 * 1024)
#define AC_LISTENERS_MAX 64u

static int
set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (s == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static void
listener_clear(struct tg_agent_listener_cfg *l)
{
	free(l->listen);
	free(l->upstream);
	free(l->key);
	free(l->cert);
	free(l->ca);
	free(l->server_id);
	free(l->server_name);
	free(l->host);
	memset(l, 0, sizeof(*l));
}

void
tg_agent_config_init(struct tg_agent_config *c)
{
	memset(c, 0, sizeof(*c));
}

void
tg_agent_config_clear(struct tg_agent_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisteners; i++)
		listener_clear(&c->listeners[i]);
	free(c->listeners);
	free(c->file);
	free(c->admin);
	tg_agent_config_init(c);
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/* "FILE line N: listener 'x'" or "--FLAG". */
static const char *
lwhere(const struct tg_agent_config *c, const struct tg_agent_listener_cfg *l, const char *flag,
       char *buf, size_t n)
{
	if (c->file != NULL)
		snprintf(buf, n, "%s line %u: listener '%s'", c->file, l->line, l->name);
	else
		snprintf(buf, n, "%s", flag);
	return buf;
}

/* 127.0.0.0/8, ::1, ::ffff:127.x, "localhost". */
static int
loopback(const char *host)
{
	unsigned char a4[4], a6[16];
	static const unsigned char v6_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, a4) == 1)
		return a4[0] == 127;
	if (inet_pton(AF_INET6, host, a6) == 1)
		return memcmp(a6, v6_lo, 16) == 0 ||
		       (memcmp(a6, v4mapped, 12) == 0 && a6[12] == 127);
	return 0;
}

static int
listener_ok(const struct tg_agent_config *c, const struct tg_agent_listener_cfg *l,
            struct tg_error *err)
{
	const int f = c->file != NULL;
	char w[600];
	int r = 0;

	if (l->listen == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: no listen address; add %s",
		                 lwhere(c, l, "the command line", w, sizeof(w)),
		                 f ? "listen: 127.0.0.1:PORT or unix:/PATH"
		                   : "--listen 127.0.0.1:PORT or unix:/PATH");
	else if (l->addr.scheme == TG_GATE_SCHEME_TCP && !loopback(l->addr.host) &&
	         !l->allow_remote)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: %s is not a loopback address: the plaintext side would be "
		                 "reachable from the network, where anyone could use your token; "
		                 "listen on 127.0.0.1 or unix:/PATH, or accept it with %s",
		                 lwhere(c, l, "--listen", w, sizeof(w)), l->listen,
		                 f ? "allow_remote: true" : "--allow-remote");
	else if (l->upstream == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: no upstream; add %s",
		                 lwhere(c, l, "the command line", w, sizeof(w)),
		                 f ? "upstream: https://GATE:PORT"
		                   : "--upstream https://GATE:PORT");
	else if (l->up.scheme != TG_GATE_SCHEME_HTTPS)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: the upstream %s is not https://; the agent speaks mutual TLS "
		                 "to a gate: write https://HOST:PORT",
		                 lwhere(c, l, "--upstream", w, sizeof(w)), l->upstream);
	else if (l->key == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: no key; add %s (the identity key on your token)",
		                 lwhere(c, l, "the command line", w, sizeof(w)),
		                 f ? "key: \"pkcs11:...\"" : "--key pkcs11:URI");
	else if (strncmp(l->key, "pkcs11:", 7) != 0)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: the key must be a pkcs11: URI naming a key on a token (a "
		                 "key file could be copied); e.g. "
		                 "pkcs11:token=alice;object=api?pin-source=file:/run/pin",
		                 lwhere(c, l, "--key", w, sizeof(w)));
	else if (l->ca == NULL)
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: no CA for the gate's certificate; add %s",
		                 lwhere(c, l, "the command line", w, sizeof(w)),
		                 f ? "ca: FILE" : "--ca FILE");
	else if (l->server_id != NULL && strncmp(l->server_id, "spiffe://", 9) != 0)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: server id '%.200s' is not a spiffe:// URI; give the gate's "
		                 "URI SAN (spiffe://TRUST-DOMAIN/svc/NAME) or use %s",
		                 lwhere(c, l, "--server-id", w, sizeof(w)), l->server_id,
		                 f ? "server_name: NAME" : "--server-name NAME");
	else if (l->server_id != NULL && l->server_name != NULL)
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: give the gate's identity once: %s",
		                 lwhere(c, l, "--server-id", w, sizeof(w)),
		                 f ? "server_id or server_name, not both"
		                   : "--server-id or --server-name, not both");
	else if (l->host != NULL && l->mode == TG_AGENT_MODE_TCP)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s: a Host header is for mode http; mode tcp passes bytes "
		                 "unchanged: remove %s",
		                 lwhere(c, l, "--host", w, sizeof(w)), f ? "host:" : "--host");
	return r;
}

static int
same_addr(const struct tg_gate_url *a, const struct tg_gate_url *b)
{
	return a->scheme == b->scheme && strcmp(a->host, b->host) == 0 &&
	       strcmp(a->port, b->port) == 0 && strcmp(a->path, b->path) == 0;
}

int
tg_agent_config_check(const struct tg_agent_config *c, struct tg_error *err)
{
	char w[600];
	size_t i, j;
	int r = 0;

	if (c->nlisteners == 0) {
		r = c->file != NULL ? tg_error_set(err, TG_ERR_CONFIG,
		                                   "%s: no listener; add listeners: [{listen: "
		                                   "127.0.0.1:8080}]",
		                                   c->file)
		                    : tg_error_set(err, TG_ERR_CONFIG,
		                                   "no listener; add --listen 127.0.0.1:PORT");
		goto out;
	}
	for (i = 0; i < c->nlisteners && r == 0; i++) {
		r = listener_ok(c, &c->listeners[i], err);
		for (j = 0; j < i && r == 0; j++) {
			if (strcmp(c->listeners[i].name, c->listeners[j].name) == 0)
				r = tg_error_set(
				    err, TG_ERR_CONFIG,
				    "%s: the name is used twice (first at line %u); give "
				    "each listener its own name",
				    lwhere(c, &c->listeners[i], "", w, sizeof(w)),
				    c->listeners[j].line);
			else if (same_addr(&c->listeners[i].addr, &c->listeners[j].addr))
				r = tg_error_set(err, TG_ERR_CONFIG,
				                 "%s: listens on %s like listener '%s'; give each "
				                 "listener its own address",
				                 lwhere(c, &c->listeners[i], "", w, sizeof(w)),
				                 c->listeners[i].listen, c->listeners[j].name);
		}
		if (r == 0 && c->admin != NULL && same_addr(&c->admin_addr, &c->listeners[i].addr))
			r = tg_error_set(err, TG_ERR_CONFIG,
			                 "admin %s: listener '%s' uses this address too; give the "
			                 "admin listener its own port",
			                 c->admin, c->listeners[i].name);
	}
	if (r == 0 && c->admin != NULL && c->admin_addr.scheme != TG_GATE_SCHEME_TCP)
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s%s%u: admin %s: the admin listener serves plain HTTP on "
		                 "ADDR:PORT such as 127.0.0.1:9091",
		                 c->file != NULL ? c->file : "--admin",
		                 c->file != NULL ? " line " : "",
		                 c->file != NULL ? c->admin_line : 0, c->admin);
out:
	return r;
}

/* ------------------------------------------------------------------ */
/* Settings shared by flags and the file                               */
/* ------------------------------------------------------------------ */

/* The per-listener settings, by name in the file and on the command line. */
enum {
	K_LISTEN = 0,
	K_UPSTREAM,
	K_KEY,
	K_CERT,
	K_CA,
	K_SERVER_ID,
	K_SERVER_NAME,
	K_MODE,
	K_HOST,
	K_ALLOW_REMOTE,
	K_CLIENT_TIMEOUT,
	K_RESPONSE_TIMEOUT,
	K_IDLE_TIMEOUT,
	K_N
};

static const char *const key_yaml[K_N] = {"listen",
                                          "upstream",
                                          "key",
                                          "cert",
                                          "ca",
                                          "server_id",
                                          "server_name",
                                          "mode",
                                          "host",
                                          "allow_remote",
                                          "client_timeout_ms",
                                          "response_timeout_ms",
                                          "idle_timeout_ms"};

/* A timeout in milliseconds, 1 .. TG_AGENT_TIMEOUT_MAX_MS: 0 or -1. */
static int
ms_parse(const char *v, unsigned *out)
{
	unsigned long long n = 0;

	if (tg_yaml_parse_uint(v, 1, TG_AGENT_TIMEOUT_MAX_MS, &n) != 0)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* path relative to the directory of file (NULL: as it is). */
static char *
rel_path(const char *file, const char *path)
{
	const char *slash = file != NULL ? strrchr(file, '/') : NULL;
	size_t dn, pn;
	char *s;

	if (file == NULL || path[0] == '/' || slash == NULL || strncmp(path, "pkcs11:", 7) == 0)
		return strdup(path);
	dn = (size_t)(slash - file) + 1;
	pn = strlen(path);
	if ((s = malloc(dn + pn + 1)) == NULL)
		return NULL;
	memcpy(s, file, dn);
	memcpy(s + dn, path, pn + 1);
	return s;
}

/*
 * Sets setting k of l from v. why gets the problem (for the caller's
 * message) and the return is TG_ERR_CONFIG, or TG_ERR_ALLOC.
 */
static int
setting_set(struct tg_agent_listener_cfg *l, int k, const char *v, const char *file, char *why,
            size_t cap)
{
	struct tg_error e;
	char **dst = NULL;
	char *s = NULL;
	int r = 0;

	tg_error_clear(&e);
	switch (k) {
	case K_LISTEN:
		if (tg_gate_url_parse(v, 1, &l->addr, &e) != 0) {
			snprintf(why, cap, "%.300s", e.msg);
			r = TG_ERR_CONFIG;
		}
		dst = &l->listen;
		break;
	case K_UPSTREAM:
		if (tg_gate_url_parse(v, 0, &l->up, &e) != 0) {
			snprintf(why, cap, "%.300s", e.msg);
			r = TG_ERR_CONFIG;
		}
		dst = &l->upstream;
		break;
	case K_KEY:
		dst = &l->key;
		break;
	case K_CERT:
		dst = &l->cert;
		break;
	case K_CA:
		dst = &l->ca;
		break;
	case K_SERVER_ID:
		dst = &l->server_id;
		break;
	case K_SERVER_NAME:
		dst = &l->server_name;
		break;
	case K_HOST:
		dst = &l->host;
		if (v[0] == '\0' || strpbrk(v, " \t\r\n/\\@") != NULL) {
			snprintf(why, cap, "host '%.100s' is not a host name (HOST or HOST:PORT)",
			         v);
			r = TG_ERR_CONFIG;
		}
		break;
	case K_MODE:
		if (strcmp(v, "http") == 0)
			l->mode = TG_AGENT_MODE_HTTP;
		else if (strcmp(v, "tcp") == 0)
			l->mode = TG_AGENT_MODE_TCP;
		else {
			snprintf(why, cap, "mode '%.60s' is not http or tcp", v);
			r = TG_ERR_CONFIG;
		}
		break;
	case K_ALLOW_REMOTE:
		if (strcmp(v, "true") == 0)
			l->allow_remote = 1;
		else if (strcmp(v, "false") == 0)
			l->allow_remote = 0;
		else {
			snprintf(why, cap, "allow_remote '%.60s' is not true or false", v);
			r = TG_ERR_CONFIG;
		}
		break;
	case K_CLIENT_TIMEOUT:
	case K_RESPONSE_TIMEOUT:
	case K_IDLE_TIMEOUT:
		if (ms_parse(v, k == K_CLIENT_TIMEOUT     ? &l->client_timeout_ms
		                : k == K_RESPONSE_TIMEOUT ? &l->response_timeout_ms
		                                          : &l->idle_timeout_ms) != 0) {
			snprintf(why, cap,
			         "'%.60s' is not a number of milliseconds from 1 to %u (a day)", v,
			         TG_AGENT_TIMEOUT_MAX_MS);
			r = TG_ERR_CONFIG;
		}
		break;
	default:
		r = TG_ERR_INTERNAL;
		break;
	}
	if (r == 0 && dst != NULL) {
		s = (k == K_CERT || k == K_CA) ? rel_path(file, v) : strdup(v);
		if (s == NULL)
			r = TG_ERR_ALLOC;
		else {
			free(*dst);
			*dst = s;
		}
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* The file                                                            */
/* ------------------------------------------------------------------ */

/* The keys of one mapping node: each at most once, only known ones. */
static int
map_key(const struct tg_yaml_ctx *y, yaml_node_pair_t *p, const char *const *known, size_t nknown,
        unsigned *seen, const char *where, int *idx)
{
	yaml_node_t *kn = yaml_document_get_node(y->doc, p->key);
	const char *k = tg_yaml_scalar(kn);
	char list[400];
	size_t i, used = 0;

	for (i = 0; k != NULL && i < nknown; i++)
		if (strcmp(k, known[i]) == 0) {
			if (*seen & (1u << i))
				return tg_yaml_err(y, kn, "'%s' is given twice in %s; keep one", k,
				                   where);
			*seen |= 1u << i;
			*idx = (int)i;
			return 0;
		}
	list[0] = '\0';
	for (i = 0; i < nknown && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
		                         known[i]);
	return tg_yaml_err(y, kn,
	                   "unknown key '%.80s' in %s; remove it or fix its spelling (known: %s)",
	                   k != NULL ? k : "(not a scalar)", where, list);
}

/* A scalar value or an error naming the key. */
static int
scalar_of(const struct tg_yaml_ctx *y, yaml_node_pair_t *p, const char *key, const char **out)
{
	yaml_node_t *vn = yaml_document_get_node(y->doc, p->value);

	*out = tg_yaml_scalar(vn);
	if (*out == NULL)
		return tg_yaml_err(
		    y, vn, "'%s' must be a single value (a string), not a list or map", key);
	return 0;
}

static int
setting_yaml(const struct tg_yaml_ctx *y, yaml_node_pair_t *p, struct tg_agent_listener_cfg *l,
             int k)
{
	yaml_node_t *vn = yaml_document_get_node(y->doc, p->value);
	char why[400];
	const char *v;
	int r;

	if ((r = scalar_of(y, p, key_yaml[k], &v)) != 0)
		return r;
	why[0] = '\0';
	r = setting_set(l, k, v, y->name, why, sizeof(why));
	if (r == TG_ERR_CONFIG)
		r = tg_yaml_err(y, vn, "%s: %s", key_yaml[k], why);
	else if (r != 0)
		r = tg_error_set(y->err, r, "out of memory reading %s", y->name);
	return r;
}

static int
listener_yaml(const struct tg_yaml_ctx *y, yaml_node_t *n, size_t idx,
              struct tg_agent_listener_cfg *l)
{
	static const char *const known[K_N + 1] = {"listen",
	                                           "upstream",
	                                           "key",
	                                           "cert",
	                                           "ca",
	                                           "server_id",
	                                           "server_name",
	                                           "mode",
	                                           "host",
	                                           "allow_remote",
	                                           "client_timeout_ms",
	                                           "response_timeout_ms",
	                                           "idle_timeout_ms",
	                                           "name"};
	yaml_node_pair_t *p;
	unsigned seen = 0;
	const char *v;
	int k = 0, r = 0;

	snprintf(l->name, sizeof(l->name), "listener%zu", idx);
	l->line = (unsigned)n->start_mark.line + 1;
	if (n->type != YAML_MAPPING_NODE)
		return tg_yaml_err(y, n, "a listener is a map such as {listen: 127.0.0.1:8080}");
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && r == 0; p++) {
		if ((r = map_key(y, p, known, K_N + 1, &seen, "a listener", &k)) != 0)
			break;
		if (k == K_N) {
			if ((r = scalar_of(y, p, "name", &v)) == 0 &&
			    (v[0] == '\0' || strlen(v) > TG_AGENT_NAME_MAX ||
			     strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
			               "789._-") != strlen(v)))
				r = tg_yaml_err(
				    y, yaml_document_get_node(y->doc, p->value),
				    "name '%.80s': use 1 to %d letters, digits, '.', '-' "
				    "or '_'",
				    v, TG_AGENT_NAME_MAX);
			else if (r == 0)
				snprintf(l->name, sizeof(l->name), "%s", v);
		} else
			r = setting_yaml(y, p, l, k);
	}
	return r;
}

/* The timeouts l lacks: d's (NULL: none), else the defaults. */
static void
timeouts_default(struct tg_agent_listener_cfg *l, const struct tg_agent_listener_cfg *d)
{
	if (l->client_timeout_ms == 0)
		l->client_timeout_ms = d != NULL && d->client_timeout_ms != 0
		                           ? d->client_timeout_ms
		                           : TG_AGENT_CLIENT_TIMEOUT_MS;
	if (l->response_timeout_ms == 0)
		l->response_timeout_ms = d != NULL && d->response_timeout_ms != 0
		                             ? d->response_timeout_ms
		                             : TG_AGENT_RESPONSE_TIMEOUT_MS;
	if (l->idle_timeout_ms == 0)
		l->idle_timeout_ms = d != NULL && d->idle_timeout_ms != 0
		                         ? d->idle_timeout_ms
		                         : TG_AGENT_IDLE_TIMEOUT_MS;
}

/* Fills what l lacks from the top-level defaults d. */
static int
inherit(struct tg_agent_listener_cfg *l, const struct tg_agent_listener_cfg *d)
{
	struct {
		char **dst;
		const char *src;
	} s[] = {{&l->upstream, d->upstream},
	         {&l->key, d->key},
	         {&l->cert, d->cert},
	         {&l->ca, d->ca},
	         {&l->server_id, d->server_id},
	         {&l->server_name, d->server_name},
	         {&l->host, d->host}};
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (*s[i].dst == NULL && s[i].src != NULL && set_str(s[i].dst, s[i].src) != 0)
			return -1;
	if (l->upstream == d->upstream || (d->upstream != NULL && l->up.scheme == 0))
		l->up = d->up;
	if (l->mode == 0)
		l->mode = d->mode != 0 ? d->mode : TG_AGENT_MODE_HTTP;
	if (!l->allow_remote)
		l->allow_remote = d->allow_remote;
	timeouts_default(l, d);
	return 0;
}

static int
root_yaml(const struct tg_yaml_ctx *y, yaml_node_t *root, struct tg_agent_config *c,
          struct tg_agent_listener_cfg *d)
{
	static const char *const known[K_N + 1] = {"listeners",
	                                           "upstream",
	                                           "key",
	                                           "cert",
	                                           "ca",
	                                           "server_id",
	                                           "server_name",
	                                           "mode",
	                                           "host",
	                                           "allow_remote",
	                                           "client_timeout_ms",
	                                           "response_timeout_ms",
	                                           "idle_timeout_ms",
	                                           "admin"};
	yaml_node_t *vn, *ln;
	yaml_node_item_t *it;
	yaml_node_pair_t *p, *lp = NULL;
	unsigned seen = 0;
	const char *v;
	size_t n, i;
	int k = 0, r = 0;

	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return tg_yaml_err(
		    y, root, "the file must be a map with listeners: (see tokengate agent --help)");
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top && r == 0; p++) {
		if ((r = map_key(y, p, known, K_N + 1, &seen, "the file", &k)) != 0)
			break;
		if (k == 0)
			lp = p; /* after the defaults, whatever the order */
		else if (k == K_N) {
			if ((r = scalar_of(y, p, "admin", &v)) == 0) {
				vn = yaml_document_get_node(y->doc, p->value);
				c->admin_line = (unsigned)vn->start_mark.line + 1;
				if (set_str(&c->admin, v) != 0)
					r = tg_error_set(y->err, TG_ERR_ALLOC, "out of memory");
				else if (tg_gate_url_parse(v, 1, &c->admin_addr, y->err) != 0)
					r = tg_yaml_err(y, vn, "admin: %s", y->err->msg);
			}
		} else
			r = setting_yaml(y, p, d, k);
	}
	if (r != 0)
		goto out;
	if (lp == NULL) {
		r = tg_yaml_err(y, root,
		                "no listeners:; add listeners: [{listen: 127.0.0.1:8080}]");
		goto out;
	}
	vn = yaml_document_get_node(y->doc, lp->value);
	if (vn->type != YAML_SEQUENCE_NODE ||
	    (n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start)) == 0) {
		r = tg_yaml_err(y, vn,
		                "listeners: must be a non-empty list of maps, such as "
		                "[{listen: 127.0.0.1:8080}]");
		goto out;
	}
	if (n > AC_LISTENERS_MAX) {
		r = tg_yaml_err(y, vn, "%zu listeners: at most %u", n, AC_LISTENERS_MAX);
		goto out;
	}
	if ((c->listeners = calloc(n, sizeof(*c->listeners))) == NULL) {
		r = tg_yaml_alloc(y);
		goto out;
	}
	for (i = 0, it = vn->data.sequence.items.start; i < n && r == 0; i++, it++) {
		ln = yaml_document_get_node(y->doc, *it);
		c->nlisteners = i + 1;
		if ((r = listener_yaml(y, ln, i, &c->listeners[i])) == 0 &&
		    inherit(&c->listeners[i], d) != 0)
			r = tg_yaml_alloc(y);
	}
out:
	return r;
}

int
tg_agent_config_parse(const char *text, size_t n, const char *name, struct tg_agent_config *c,
                      struct tg_error *err)
{
	struct tg_agent_listener_cfg d;
	yaml_document_t doc;
	struct tg_yaml_ctx y;
	struct tg_error scratch;
	int have_doc = 0, r;

	if (err == NULL)
		err = &scratch;
	memset(&d, 0, sizeof(d));
	tg_agent_config_init(c);
	if ((c->file = strdup(name)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = tg_yaml_load(text, n, AC_FILE_MAX, name, &doc, err)) != 0)
		goto out;
	have_doc = 1;
	y.doc = &doc;
	y.name = name;
	y.err = err;
	if ((r = root_yaml(&y, yaml_document_get_root_node(&doc), c, &d)) != 0)
		goto out;
	r = tg_agent_config_check(c, err);
out:
	if (have_doc)
		yaml_document_delete(&doc);
	listener_clear(&d);
	if (r != 0)
		tg_agent_config_clear(c);
	return r;
}

static int
config_parse(const char *text, size_t n, const char *name, void *c, struct tg_error *err)
{
	return tg_agent_config_parse(text, n, name, c, err);
}

int
tg_agent_config_load(const char *path, struct tg_agent_config *c, struct tg_error *err)
{
	tg_agent_config_init(c);
	return tg_yaml_file_parse(path, "agent configuration", AC_FILE_MAX, config_parse, c, err);
}

/* ------------------------------------------------------------------ */
/* Flags                                                               */
/* ------------------------------------------------------------------ */

enum {
	O_LISTEN = 1,
	O_UPSTREAM,
	O_KEY,
	O_CERT,
	O_CA,
	O_SERVER_ID,
	O_SERVER_NAME,
	O_MODE,
	O_HOST,
	O_ALLOW_REMOTE,
	O_CLIENT_TIMEOUT,
	O_RESPONSE_TIMEOUT,
	O_IDLE_TIMEOUT,
	O_ADMIN,
	O_CONFIG,
	O_CHECK,
	O_END
};

/* Same order as the K_* settings (O_x == K_x + 1). */
static const struct tg_cli_opt agent_opts[] = {
    {"listen", TG_CLI_ARG_REQUIRED, O_LISTEN},
    {"upstream", TG_CLI_ARG_REQUIRED, O_UPSTREAM},
    {"key", TG_CLI_ARG_REQUIRED, O_KEY},
    {"cert", TG_CLI_ARG_REQUIRED, O_CERT},
    {"ca", TG_CLI_ARG_REQUIRED, O_CA},
    {"server-id", TG_CLI_ARG_REQUIRED, O_SERVER_ID},
    {"server-name", TG_CLI_ARG_REQUIRED, O_SERVER_NAME},
    {"mode", TG_CLI_ARG_REQUIRED, O_MODE},
    {"host", TG_CLI_ARG_REQUIRED, O_HOST},
    {"allow-remote", TG_CLI_ARG_NONE, O_ALLOW_REMOTE},
    {"client-timeout-ms", TG_CLI_ARG_REQUIRED, O_CLIENT_TIMEOUT},
    {"response-timeout-ms", TG_CLI_ARG_REQUIRED, O_RESPONSE_TIMEOUT},
    {"idle-timeout-ms", TG_CLI_ARG_REQUIRED, O_IDLE_TIMEOUT},
    {"admin", TG_CLI_ARG_REQUIRED, O_ADMIN},
    {"config", TG_CLI_ARG_REQUIRED, O_CONFIG},
    {"check", TG_CLI_ARG_NONE, O_CHECK},
    {NULL, 0, 0},
};

static const struct tg_cli_hint agent_hints[] = {
    {"pin", "a PIN is never given on the command line: put pin-source=file:PATH in the --key "
            "URI, or set TOKENGATE_PIN"},
    {"target", "the agent's name for it is --upstream https://GATE:PORT"},
    {"cacert", "the agent's name for it is --ca FILE"},
    {"connect", "the agent's name for it is --upstream https://GATE:PORT"},
    {"verify-uri", "the agent's name for it is --server-id spiffe://..."},
    {"port", "the port goes in --listen 127.0.0.1:PORT"},
    {NULL, NULL},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: tokengate agent --listen 127.0.0.1:PORT|unix:/PATH --upstream "
	           "https://HOST:PORT\n"
	           "                       --key pkcs11:URI --ca FILE [options]\n"
	           "       tokengate agent --config FILE [--check]\n"
	           "\n"
	           "The agent beside a client: any tool (curl, an SDK, a notebook) talks plain\n"
	           "HTTP or TCP to it on loopback or a unix socket; it talks mutual TLS to the\n"
	           "gate, signing on your token. Upstream connections are kept and reused, and\n"
	           "new ones resume TLS sessions, so a burst of requests costs a handful of\n"
	           "token signatures. When the token is removed new connections are refused\n"
	           "and the ones it authenticated are closed; when it is back, it serves again.\n"
	           "\n"
	           "  --listen ADDR          where clients connect: 127.0.0.1:PORT, [::1]:PORT or\n"
	           "                         unix:/PATH (created mode 0600)\n"
	           "  --upstream URL         the gate: https://HOST:PORT\n"
	           "  --key pkcs11:URI       the identity key on the token (generated there: an\n"
	           "                         exportable or imported key is refused); the PIN\n"
	           "                         comes from pin-source= in the URI or TOKENGATE_PIN\n"
	           "  --cert pkcs11:URI|FILE the certificate (default: the one on the token with\n"
	           "                         the key's id)\n"
	           "  --ca FILE              CA certificates (PEM) the gate's certificate is\n"
	           "                         verified against\n"
	           "  --server-id URI        the gate's identity: its URI SAN, exactly\n"
	           "                         (spiffe://TRUST-DOMAIN/svc/NAME)\n"
	           "  --server-name NAME     else the DNS name or IP its certificate must name\n"
	           "                         (default: the upstream's host)\n"
	           "  --mode MODE            http: forward HTTP/1.1 requests over pooled\n"
	           "                         connections; tcp: one upstream connection per\n"
	           "                         client, bytes both ways (default: http)\n"
	           "  --host NAME            http mode: the Host header sent upstream (default:\n"
	           "                         what the client sent)\n"
	           "  --allow-remote         allow a listen address that is not loopback (anyone\n"
	           "                         who reaches it uses your identity)\n"
	           "  --client-timeout-ms MS http mode: a client connection that sends no\n"
	           "                         complete request head within MS is closed (408\n"
	           "                         when it had started one; default 60000)\n"
	           "  --response-timeout-ms MS\n"
	           "                         http mode: no response head from the gate within\n"
	           "                         MS of the request: 504 (default 120000)\n"
	           "  --idle-timeout-ms MS   tcp mode: a connection with no byte either way for\n"
	           "                         MS is closed (default 300000)\n"
	           "  --admin ADDR:PORT      plain-HTTP /healthz and /metrics (default: none)\n"
	           "  --config FILE          the settings in one YAML file, several listeners:\n"
	           "                         listeners (a list of {name, listen, and any key\n"
	           "                         below}), and upstream, key, cert, ca, server_id,\n"
	           "                         server_name, mode, host, allow_remote,\n"
	           "                         client_timeout_ms, response_timeout_ms,\n"
	           "                         idle_timeout_ms (defaults for every listener),\n"
	           "                         admin; only --check may be added\n"
	           "  --check                open the key (its trust check), the certificate and\n"
	           "                         the CA, print a summary and exit; listens on nothing\n"
	           "  -h, --help             this help\n"
	           "\n"
	           "SIGTERM and SIGINT stop the agent.\n"
	           "Exit codes: 0 success (--check: the configuration is valid), 1 failure\n"
	           "(the reason on stderr), 2 usage.\n");
}

/* A usage error printed and handed back in err (TG_ERR_USAGE). */
#define usage_error(err, ...) tg_cli_usage_err(AC_PROG, AC_WHAT, err, __VA_ARGS__)

static int
from_flags(const char *const *v, const int *given, struct tg_agent_config *c, struct tg_error *err)
{
	struct tg_agent_listener_cfg *l;
	char why[400];
	int k, r = 0;

	if ((c->listeners = calloc(1, sizeof(*c->listeners))) == NULL)
		return tg_error_set(err, TG_ERR_ALLOC, "out of memory reading the command line");
	c->nlisteners = 1;
	l = &c->listeners[0];
	snprintf(l->name, sizeof(l->name), "main");
	l->mode = TG_AGENT_MODE_HTTP;
	for (k = 0; k < K_N && r == 0; k++) {
		if (!given[k + 1])
			continue;
		why[0] = '\0';
		r = setting_set(l, k, k == K_ALLOW_REMOTE ? "true" : v[k + 1], NULL, why,
		                sizeof(why));
		if (r == TG_ERR_CONFIG)
			r = usage_error(err, "--%s: %s", agent_opts[k].name, why);
		else if (r != 0)
			r = tg_error_set(err, TG_ERR_ALLOC,
			                 "out of memory reading the command line");
	}
	timeouts_default(l, NULL);
	if (r == 0 && given[O_ADMIN]) {
		if (set_str(&c->admin, v[O_ADMIN]) != 0)
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		else if (tg_gate_url_parse(v[O_ADMIN], 1, &c->admin_addr, err) != 0)
			r = usage_error(err, "--admin: %s", err->msg);
	}
	return r;
}

int
tg_agent_config_from_args(int argc, char **argv, struct tg_agent_config *c, int *check, int *help,
                          struct tg_error *err)
{
	const char *v[O_END], *arg;
	int given[O_END];
	struct tg_cli_getopt g;
	char list[400];
	size_t used = 0;
	int ch, i, r;

	memset(v, 0, sizeof(v));
	memset(given, 0, sizeof(given));
	tg_agent_config_init(c);
	*check = 0;
	*help = 0;
	if (tg_cli_getopt_init(&g, AC_PROG, AC_WHAT, agent_opts, agent_hints, 0, argc, argv) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "the agent's option table is broken");
		goto out;
	}
	while ((ch = tg_cli_next(&g, &arg)) > 0) {
		given[ch] = 1;
		v[ch] = arg;
	}
	if (ch == TG_CLI_HELP) {
		usage(stdout);
		*help = 1;
		r = 0;
		goto out;
	}
	if (ch != TG_CLI_END) {
		r = tg_error_set(err, TG_ERR_USAGE,
		                 "bad command line (the reason is printed above)");
		goto out;
	}
	*check = given[O_CHECK];
	if (given[O_CONFIG]) {
		list[0] = '\0';
		for (i = 1; i < O_CONFIG; i++)
			if (given[i])
				used +=
				    (size_t)snprintf(list + used, sizeof(list) - used, "%s--%s",
				                     used > 0 ? ", " : "", agent_opts[i - 1].name);
		if (used > 0) {
			r = usage_error(err,
			                "--config and %s do not mix: with --config FILE every "
			                "setting comes from the file (only --check may be added); "
			                "move %s into FILE or drop --config",
			                list, strchr(list, ',') != NULL ? "them" : "it");
			goto out;
		}
		r = tg_agent_config_load(v[O_CONFIG], c, err);
		goto out;
	}
	if (!given[O_LISTEN] || !given[O_UPSTREAM] || !given[O_KEY] || !given[O_CA]) {
		list[0] = '\0';
		for (i = O_LISTEN; i <= O_CA; i++)
			if (!given[i] && i != O_CERT)
				used +=
				    (size_t)snprintf(list + used, sizeof(list) - used, "%s--%s",
				                     used > 0 ? ", " : "", agent_opts[i - 1].name);
		r = usage_error(err,
		                "missing %s; an agent needs --listen 127.0.0.1:PORT --upstream "
		                "https://GATE:PORT --key pkcs11:URI --ca FILE, or --config FILE",
		                list);
		goto out;
	}
	if ((r = from_flags(v, given, c, err)) != 0)
		goto out;
	r = tg_agent_config_check(c, err);
out:
	if (r != 0)
		tg_agent_config_clear(c);
	return r;
}
