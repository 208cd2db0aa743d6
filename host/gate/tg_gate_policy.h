/*
 * tg_gate_policy.h — the gate's per-route access policy (YAML, libyaml).
 *
 *   upstreams: {NAME: URL, ...}              optional
 *   groups:    {NAME: [IDENTITY-PATTERN, ...], ...}   optional
 *   routes:                                  required, tried in order
 *     - name: NAME                           unique
 *       methods: [GET, HEAD]                 optional; omitted: any method
 *       paths: ["/v1/datasets"]              required, at least one
 *       upstream: NAME                       optional; a key of upstreams
 *       host: NAME[:PORT]                    optional; the Host the upstream
 *                                            gets for this route, whatever
 *                                            the client sent (an upstream
 *                                            that picks a service by Host);
 *                                            omitted: the client's Host
 *       inject_headers:                      optional
 *         HEADER: {from: "file:/PATH" | "env:NAME", prefix: "TEXT"}
 *       allow:                               required, at least one entry
 *         - identity: PATTERN | group: NAME  exactly one of the two
 *           key: hsm-operator|device-attested  minimum; default hsm-operator
 *           pin: never|once|always           minimum; default never
 *           touch: never|cached|always       minimum; default never
 *       websocket: true|false                optional; default false: a
 *                                            request with Upgrade: websocket
 *                                            is denied (403 naming the route)
 *                                            unless its route says true
 *
 * Path patterns are normalized paths (tg_gate_path.h: written as the gate
 * normalizes them, e.g. "/a/b", never "/a//b" or "/a/%7e") whose segments
 * are literal, "*" (exactly one non-empty segment) or, as the last segment
 * only, "**" (zero or more segments). A request path's trailing slash is not
 * significant: "/admin/" matches exactly what "/admin" matches, and
 * the pattern "/admin" followed by "/" and "**" matches "/admin", "/admin/"
 * and everything below.
 *
 * Identity patterns: a pattern ending in '/' and '*' matches that prefix plus
 * exactly one non-empty segment without '/'; any other pattern matches only
 * itself (case-sensitive); '*' anywhere else is refused.
 *
 * inject_headers are parsed and validated only: the secrets are read by the
 * gate, never here.
 */
#ifndef TG_GATE_POLICY_H
#define TG_GATE_POLICY_H

#include <stddef.h>

#include "tg_att.h"
#include "tg_err.h"
#include "tg_prov.h"

#define TG_GATE_NAME_MAX 64 /* route, group, upstream and header names */

struct tg_gate_upstream {
	char name[TG_GATE_NAME_MAX + 1];
	char *url;
};

struct tg_gate_group {
	char name[TG_GATE_NAME_MAX + 1];
	char **members; /* identity patterns */
	size_t nmembers;
};

enum tg_gate_secret_src { TG_GATE_SECRET_FILE = 1, TG_GATE_SECRET_ENV = 2 };

struct tg_gate_inject {
	char header[TG_GATE_NAME_MAX + 1];
	enum tg_gate_secret_src src;
	char *from;   /* the path (file:) or variable name (env:), prefix removed */
	char *prefix; /* "" when none */
};

struct tg_gate_allow {
	char *identity; /* pattern, or NULL when group >= 0 */
	long group;     /* index into groups, or -1 */
	enum tg_prov_level key;
	enum tg_att_pin pin;
	enum tg_att_touch touch;
	unsigned line;
};

struct tg_gate_route {
	char name[TG_GATE_NAME_MAX + 1];
	unsigned line;
	char **methods; /* nmethods == 0: any method */
	size_t nmethods;
	char **paths;
	size_t npaths;
	long upstream; /* index into upstreams, or -1: the default upstream */
	char *host;    /* the Host sent upstream, or NULL: the client's */
	struct tg_gate_inject *inject;
	size_t ninject;
	struct tg_gate_allow *allow;
	size_t nallow;
	int websocket; /* 1: Upgrade: websocket is passed through */
};

struct tg_gate_policy {
	struct tg_gate_upstream *upstreams;
	size_t nupstreams;
	struct tg_gate_group *groups;
	size_t ngroups;
	struct tg_gate_route *routes;
	size_t nroutes;
};

/*
 * Parses the policy text (n bytes; name is the file name for messages) into
 * *p. 0, or TG_ERR_CONFIG with err saying "NAME line N: problem; fix"
 * (TG_ERR_ALLOC when out of memory). *p is always initialized and must be
 * released with tg_gate_policy_clear, also after a failure.
 */
int tg_gate_policy_parse(const char *text, size_t n, const char *name, struct tg_gate_policy *p,
                         struct tg_error *err);

/* Frees everything *p holds and zeroes it. NULL is accepted. */
void tg_gate_policy_clear(struct tg_gate_policy *p);

#endif /* TG_GATE_POLICY_H */
