/* policy.c — the gate's per-route policy in YAML (tg_gate_policy.h). */
#include "tg_gate_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "tg_gate_path.h"
#include "tg_yaml.h"

#define GP_TEXT_MAX   (1024 * 1024)
#define GP_VALUE_MAX  2048
#define GP_METHOD_MAX 32

static int
galloc(struct tg_yaml_ctx *c)
{
	return tg_error_set(c->err, TG_ERR_ALLOC, "out of memory reading %s", c->name);
}

static yaml_node_t *
node(struct tg_yaml_ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static char *
dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

/* Printable ASCII without spaces (space_ok: with them), 1..max characters. */
static int
text_ok(const char *s, size_t max, int space_ok)
{
	size_t i, n = s != NULL ? strlen(s) : 0;
	int ok = n >= 1 && n <= max;

	for (i = 0; ok && i < n; i++)
		ok = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f
		         ? 1
		         : space_ok && s[i] == ' ';
	return ok;
}

/* A route, group, upstream name: letters, digits, '.', '-', '_'. */
static int
name_ok(const char *s)
{
	size_t i, n = s != NULL ? strlen(s) : 0;
	int ok = n >= 1 && n <= TG_GATE_NAME_MAX;

	for (i = 0; ok && i < n; i++)
		ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
		            s[i]) != NULL;
	return ok;
}

/* An HTTP token (methods, header names). */
static int
token_ok(const char *s, size_t max)
{
	size_t i, n = s != NULL ? strlen(s) : 0;
	int ok = n >= 1 && n <= max;

	for (i = 0; ok && i < n; i++)
		ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		            "!#$%&'*+-.^_`|~",
		            s[i]) != NULL;
	return ok;
}

/* An identity pattern: spiffe://..., '*' only as the last segment. */
static int
identity_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	const char *star = s != NULL ? strchr(s, '*') : NULL;

	return text_ok(s, GP_VALUE_MAX, 0) && strncmp(s, "spiffe://", 9) == 0 && n > 9 &&
	       (star == NULL || (star == s + n - 1 && star[-1] == '/' && star - s > 9));
}

/*
 * Checks a path pattern; NULL when good, else the problem. want receives
 * the pattern as it should be written when the problem is its spelling.
 */
static const char *
path_pattern_bad(const char *s, char *want, size_t wn)
{
	const char *why = NULL, *seg;
	size_t n = strlen(s), sl;

	want[0] = '\0';
	if (tg_gate_path_normalize(s, n, want, wn, &why) != 0) {
		want[0] = '\0';
	} else if (strchr(s, '?') != NULL) {
		why = "a path pattern has no query ('?')";
	} else if (strcmp(want, s) != 0) {
		why = "it is not in normal form";
	} else if (n > 1 && s[n - 1] == '/') {
		want[n - 1] = '\0';
		why = "a trailing slash is not significant";
	}
	for (seg = s + 1; why == NULL && *seg != '\0'; seg += sl + (seg[sl] == '/')) {
		sl = strcspn(seg, "/");
		if (memchr(seg, '*', sl) == NULL)
			continue;
		want[0] = '\0';
		if (sl == 2 && seg[0] == '*' && seg[1] == '*' && seg[2] != '\0')
			why = "'**' may only be the last segment";
		else if (sl > 2 || (sl == 2 && (seg[0] != '*' || seg[1] != '*')))
			why = "'*' and '**' must be whole segments";
	}
	return why;
}

/* Reads a sequence of scalars into a new array of strings. */
static int
get_strings(struct tg_yaml_ctx *c, yaml_node_t *seq, const char *what, char ***out, size_t *nout)
{
	yaml_node_item_t *it;
	size_t n;
	int rc = 0;

	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE ||
	    seq->data.sequence.items.top == seq->data.sequence.items.start) {
		rc = tg_yaml_err(c, seq, "%s must be a non-empty list like [a, b]", what);
		goto out;
	}
	n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if ((*out = calloc(n, sizeof(**out))) == NULL) {
		rc = galloc(c);
		goto out;
	}
	for (it = seq->data.sequence.items.start; rc == 0 && it < seq->data.sequence.items.top;
	     it++) {
		const char *s = tg_yaml_scalar(node(c, *it));

		if (s == NULL)
			rc = tg_yaml_err(c, node(c, *it),
			                 "%s: each item must be one value, not a list "
			                 "or mapping",
			                 what);
		else if (((*out)[*nout] = dupstr(s)) == NULL)
			rc = galloc(c);
		else
			(*nout)++;
	}
out:
	return rc;
}

static int
get_upstreams(struct tg_yaml_ctx *c, yaml_node_t *m, struct tg_gate_policy *p)
{
	yaml_node_pair_t *pr;
	const char *k, *v;
	size_t i;
	int rc = 0;

	if (m->type != YAML_MAPPING_NODE) {
		rc = tg_yaml_err(c, m,
		                 "'upstreams' must be a mapping of names to URLs, like "
		                 "{datasets: http://127.0.0.1:8081}");
		goto out;
	}
	p->upstreams = calloc((size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start) + 1,
	                      sizeof(*p->upstreams));
	if (p->upstreams == NULL) {
		rc = galloc(c);
		goto out;
	}
	for (pr = m->data.mapping.pairs.start; rc == 0 && pr < m->data.mapping.pairs.top; pr++) {
		k = tg_yaml_scalar(node(c, pr->key));
		v = tg_yaml_scalar(node(c, pr->value));
		for (i = 0; k != NULL && i < p->nupstreams && strcmp(p->upstreams[i].name, k); i++)
			;
		if (!name_ok(k))
			rc = tg_yaml_err(
			    c, node(c, pr->key),
			    "upstream name '%.64s' must be 1 to %d letters, digits, '.', '-' "
			    "or '_'",
			    k != NULL ? k : "", TG_GATE_NAME_MAX);
		else if (i < p->nupstreams)
			rc = tg_yaml_err(c, node(c, pr->key),
			                 "upstream '%s' is defined twice; keep one definition", k);
		else if (!text_ok(v, GP_VALUE_MAX, 0) ||
		         (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0 &&
		          strncmp(v, "unix:/", 6) != 0))
			rc = tg_yaml_err(
			    c, node(c, pr->value),
			    "upstream '%s' must be a URL starting with http://, https:// or "
			    "unix:/ (given: '%.64s')",
			    k, v != NULL ? v : "a list or mapping");
		else if ((p->upstreams[p->nupstreams].url = dupstr(v)) == NULL)
			rc = galloc(c);
		else
			snprintf(p->upstreams[p->nupstreams++].name, TG_GATE_NAME_MAX + 1, "%s", k);
	}
out:
	return rc;
}

static int
get_groups(struct tg_yaml_ctx *c, yaml_node_t *m, struct tg_gate_policy *p)
{
	yaml_node_pair_t *pr;
	struct tg_gate_group *g;
	const char *k;
	size_t i;
	int rc = 0;

	if (m->type != YAML_MAPPING_NODE) {
		rc = tg_yaml_err(c, m,
		                 "'groups' must be a mapping of names to lists of identity "
		                 "patterns, like {ml-team: [\"spiffe://example.org/dev/*\"]}");
		goto out;
	}
	p->groups = calloc((size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start) + 1,
	                   sizeof(*p->groups));
	if (p->groups == NULL) {
		rc = galloc(c);
		goto out;
	}
	for (pr = m->data.mapping.pairs.start; rc == 0 && pr < m->data.mapping.pairs.top; pr++) {
		k = tg_yaml_scalar(node(c, pr->key));
		for (i = 0; k != NULL && i < p->ngroups && strcmp(p->groups[i].name, k); i++)
			;
		if (!name_ok(k)) {
			rc = tg_yaml_err(
			    c, node(c, pr->key),
			    "group name '%.64s' must be 1 to %d letters, digits, '.', '-' or "
			    "'_'",
			    k != NULL ? k : "", TG_GATE_NAME_MAX);
			continue;
		}
		if (i < p->ngroups) {
			rc = tg_yaml_err(
			    c, node(c, pr->key),
			    "group '%s' is defined twice; merge its members into one list", k);
			continue;
		}
		g = &p->groups[p->ngroups++];
		snprintf(g->name, sizeof(g->name), "%s", k);
		rc = get_strings(c, node(c, pr->value), "a group's members", &g->members,
		                 &g->nmembers);
		for (i = 0; rc == 0 && i < g->nmembers; i++) {
			if (!identity_ok(g->members[i]))
				rc = tg_yaml_err(
				    c, node(c, pr->value),
				    "group '%s': '%.128s' is not an identity pattern; write "
				    "spiffe://DOMAIN/PATH, with '*' only as a last segment "
				    "\"/*\"",
				    k, g->members[i]);
		}
	}
out:
	return rc;
}

/* The minimums of an allow entry: key, pin, touch. */
static int
get_minimum(struct tg_yaml_ctx *c, yaml_node_t *vn, const char *k, struct tg_gate_allow *a)
{
	const char *v = tg_yaml_scalar(vn);
	int rc = 0;

	if (strcmp(k, "key") == 0) {
		if (v == NULL || tg_prov_level_parse(v, &a->key) != 0 ||
		    a->key == TG_PROV_LEVEL_NONE)
			rc = tg_yaml_err(c, vn,
			                 "'key' must be hsm-operator or device-attested "
			                 "(given: '%.64s')",
			                 v != NULL ? v : "a list or mapping");
	} else if (strcmp(k, "pin") == 0) {
		if (v == NULL || tg_att_pin_parse(v, &a->pin) != 0 ||
		    (a->pin != TG_ATT_PIN_NEVER && a->pin != TG_ATT_PIN_ONCE &&
		     a->pin != TG_ATT_PIN_ALWAYS))
			rc = tg_yaml_err(c, vn,
			                 "'pin' must be never, once or always (given: '%.64s')",
			                 v != NULL ? v : "a list or mapping");
	} else {
		if (v == NULL || tg_att_touch_parse(v, &a->touch) != 0)
			rc = tg_yaml_err(c, vn,
			                 "'touch' must be never, cached or always (given: '%.64s')",
			                 v != NULL ? v : "a list or mapping");
	}
	return rc;
}

static int
get_allow(struct tg_yaml_ctx *c, yaml_node_t *m, const struct tg_gate_policy *p, const char *route,
          struct tg_gate_allow *a)
{
	yaml_node_pair_t *pr;
	yaml_node_t *kn, *vn;
	const char *k, *v;
	unsigned seen = 0;
	size_t i;
	int rc = 0;

	a->group = -1;
	a->key = TG_PROV_HSM_OPERATOR;
	a->pin = TG_ATT_PIN_NEVER;
	a->touch = TG_ATT_TOUCH_NEVER;
	a->line = m != NULL ? (unsigned)m->start_mark.line + 1 : 0;
	if (m == NULL || m->type != YAML_MAPPING_NODE) {
		rc = tg_yaml_err(c, m,
		                 "route '%s': each allow entry must be a mapping like "
		                 "{identity: \"spiffe://example.org/dev/*\", key: device-attested}",
		                 route);
		goto out;
	}
	for (pr = m->data.mapping.pairs.start; rc == 0 && pr < m->data.mapping.pairs.top; pr++) {
		static const char *const keys[] = {"identity", "group", "key", "pin", "touch"};

		kn = node(c, pr->key);
		vn = node(c, pr->value);
		k = tg_yaml_scalar(kn);
		v = tg_yaml_scalar(vn);
		for (i = 0; k != NULL && i < 5 && strcmp(k, keys[i]) != 0; i++)
			;
		if (k == NULL || i == 5)
			rc =
			    tg_yaml_err(c, kn,
			                "route '%s': unknown key '%.64s' in an allow entry (known: "
			                "identity, group, key, pin, touch)",
			                route, k != NULL ? k : "");
		else if (seen & (1u << i))
			rc = tg_yaml_err(c, kn,
			                 "route '%s': key '%s' appears twice in an allow entry; "
			                 "keep one",
			                 route, k);
		else if (i == 0 && !identity_ok(v))
			rc = tg_yaml_err(
			    c, vn,
			    "route '%s': '%.128s' is not an identity pattern; write "
			    "spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\"",
			    route, v != NULL ? v : "a list or mapping");
		else if (i == 0 && (a->identity = dupstr(v)) == NULL)
			rc = galloc(c);
		else if (i == 1) {
			for (a->group = 0; v != NULL && (size_t)a->group < p->ngroups &&
			                   strcmp(p->groups[a->group].name, v) != 0;
			     a->group++)
				;
			if (v == NULL || (size_t)a->group == p->ngroups)
				rc = tg_yaml_err(
				    c, vn,
				    "route '%s': group '%.64s' does not exist; define it "
				    "under 'groups:' or fix the name",
				    route, v != NULL ? v : "");
		} else if (i >= 2)
			rc = get_minimum(c, vn, k, a);
		seen |= 1u << (i < 5 ? i : 0);
	}
	if (rc == 0 && (seen & 3u) == 0)
		rc = tg_yaml_err(c, m,
		                 "route '%s': the allow entry names no 'identity' or 'group'; add "
		                 "one",
		                 route);
	else if (rc == 0 && (seen & 3u) == 3u)
		rc = tg_yaml_err(c, m,
		                 "route '%s': the allow entry names both 'identity' and 'group'; "
		                 "keep one (one entry each)",
		                 route);
out:
	return rc;
}

/*
 * Why header name n (a token) cannot be injected, or NULL: the fields
 * that frame the request or the connection (a second Content-Length or
 * Transfer-Encoding would let the upstream read the body differently),
 * Host (a route's host: sets it), and those the gate sets itself
 * (tg_gate_http_request_head drops a client's copies of them).
 */
static const char *
inject_name_bad(const char *n)
{
	static const char *const framing[] = {"content-length",   "transfer-encoding",
	                                      "connection",       "keep-alive",
	                                      "proxy-connection", "te",
	                                      "trailer",          "upgrade"};
	const char *why = NULL;
	size_t i;

	for (i = 0; why == NULL && i < sizeof(framing) / sizeof(framing[0]); i++)
		if (strcasecmp(n, framing[i]) == 0)
			why =
			    "it frames the request or the connection, which is the gate's to write";
	if (why == NULL && strcasecmp(n, "host") == 0)
		why = "set the route's host: instead";
	if (why == NULL &&
	    (strncasecmp(n, "x-tokengate-", 12) == 0 || strncasecmp(n, "x-forwarded-", 12) == 0 ||
	     strcasecmp(n, "x-real-ip") == 0 || strcasecmp(n, "forwarded") == 0 ||
	     strcasecmp(n, "proxy-authorization") == 0))
		why =
		    "the gate sets or drops it itself (identity, provenance, the client's address)";
	return why;
}

static int
get_inject(struct tg_yaml_ctx *c, yaml_node_t *hk, yaml_node_t *m, const char *route,
           struct tg_gate_inject *h)
{
	yaml_node_pair_t *pr;
	const char *hn = tg_yaml_scalar(hk), *k, *v, *why;
	int rc = 0, from = 0;

	if (!token_ok(hn, TG_GATE_NAME_MAX)) {
		rc = tg_yaml_err(c, hk,
		                 "route '%s': '%.64s' is not a header name (1 to %d token "
		                 "characters)",
		                 route, hn != NULL ? hn : "", TG_GATE_NAME_MAX);
		goto out;
	}
	if ((why = inject_name_bad(hn)) != NULL) {
		rc = tg_yaml_err(c, hk, "route '%s': header %s cannot be injected: %s", route, hn,
		                 why);
		goto out;
	}
	snprintf(h->header, sizeof(h->header), "%s", hn);
	if (m == NULL || m->type != YAML_MAPPING_NODE) {
		rc = tg_yaml_err(c, m,
		                 "route '%s': inject_headers %s must be a mapping like {from: "
		                 "\"file:/etc/tokengate/key\", prefix: \"Bearer \"}",
		                 route, hn);
		goto out;
	}
	for (pr = m->data.mapping.pairs.start; rc == 0 && pr < m->data.mapping.pairs.top; pr++) {
		k = tg_yaml_scalar(node(c, pr->key));
		v = tg_yaml_scalar(node(c, pr->value));
		if (k != NULL && strcmp(k, "from") == 0 && !from) {
			from = 1;
			if (v != NULL && strncmp(v, "file:/", 6) == 0 &&
			    text_ok(v + 5, GP_VALUE_MAX, 0))
				h->src = TG_GATE_SECRET_FILE;
			else if (v != NULL && strncmp(v, "env:", 4) == 0 &&
			         token_ok(v + 4, TG_GATE_NAME_MAX) &&
			         strspn(v + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy"
			                       "z0123456789_") == strlen(v + 4))
				h->src = TG_GATE_SECRET_ENV;
			else
				rc = tg_yaml_err(
				    c, node(c, pr->value),
				    "route '%s': header %s: 'from' must be \"file:/ABSOLUTE/PATH\" "
				    "or \"env:NAME\"",
				    route, hn);
			if (rc == 0 &&
			    (h->from = dupstr(v + (h->src == TG_GATE_SECRET_FILE ? 5 : 4))) == NULL)
				rc = galloc(c);
		} else if (k != NULL && strcmp(k, "prefix") == 0 && h->prefix == NULL) {
			if (v == NULL || (*v != '\0' && !text_ok(v, GP_VALUE_MAX, 1)))
				rc = tg_yaml_err(
				    c, node(c, pr->value),
				    "route '%s': header %s: 'prefix' must be printable text like "
				    "\"Bearer \"",
				    route, hn);
			else if ((h->prefix = dupstr(v)) == NULL)
				rc = galloc(c);
		} else {
			rc = tg_yaml_err(
			    c, node(c, pr->key),
			    "route '%s': header %s: unknown or repeated key '%.64s' (known, "
			    "once each: from, prefix)",
			    route, hn, k != NULL ? k : "");
		}
	}
	if (rc == 0 && !from)
		rc = tg_yaml_err(c, m,
		                 "route '%s': header %s has no 'from'; add from: \"file:/PATH\" or "
		                 "from: \"env:NAME\"",
		                 route, hn);
	if (rc == 0 && h->prefix == NULL && (h->prefix = dupstr("")) == NULL)
		rc = galloc(c);
out:
	return rc;
}

/* One route's value under `key` (one of the known keys). */
static int
get_route_key(struct tg_yaml_ctx *c, const char *k, yaml_node_t *vn, const struct tg_gate_policy *p,
              struct tg_gate_route *r)
{
	const char *v = tg_yaml_scalar(vn), *why;
	char want[TG_GATE_PATH_MAX];
	yaml_node_pair_t *pr;
	yaml_node_item_t *it;
	size_t i, n;
	int rc = 0;

	if (strcmp(k, "methods") == 0) {
		rc = get_strings(c, vn, "'methods'", &r->methods, &r->nmethods);
		for (i = 0; rc == 0 && i < r->nmethods; i++)
			if (!token_ok(r->methods[i], GP_METHOD_MAX))
				rc = tg_yaml_err(
				    c, vn,
				    "route '%s': '%.64s' is not an HTTP method (write it "
				    "like GET or POST; omit 'methods' for any method)",
				    r->name, r->methods[i]);
	} else if (strcmp(k, "paths") == 0) {
		rc = get_strings(c, vn, "'paths'", &r->paths, &r->npaths);
		for (i = 0; rc == 0 && i < r->npaths; i++)
			if ((why = path_pattern_bad(r->paths[i], want, sizeof(want))) != NULL)
				rc = tg_yaml_err(c, vn, "route '%s': path '%.128s': %s%s%.128s%s",
				                 r->name, r->paths[i], why,
				                 want[0] != '\0' ? "; write '" : "", want,
				                 want[0] != '\0' ? "'" : "");
	} else if (strcmp(k, "upstream") == 0) {
		for (i = 0; v != NULL && i < p->nupstreams && strcmp(p->upstreams[i].name, v); i++)
			;
		if (v == NULL || i == p->nupstreams)
			rc = tg_yaml_err(c, vn,
			                 "route '%s': upstream '%.64s' does not exist; define it "
			                 "under 'upstreams:' or fix the name",
			                 r->name, v != NULL ? v : "");
		else
			r->upstream = (long)i;
	} else if (strcmp(k, "host") == 0) {
		if (v == NULL || (why = tg_gate_path_authority_bad(v, strlen(v))) != NULL)
			rc = tg_yaml_err(
			    c, vn,
			    "route '%s': host '%.128s' is not a host name with an optional "
			    "port (%s); write it like api.internal or api.internal:8080",
			    r->name, v != NULL ? v : "a list or mapping",
			    v != NULL ? why : "not a scalar");
		else if ((r->host = dupstr(v)) == NULL)
			rc = galloc(c);
	} else if (strcmp(k, "websocket") == 0) {
		if (v != NULL && strcmp(v, "true") == 0)
			r->websocket = 1;
		else if (v == NULL || strcmp(v, "false") != 0)
			rc = tg_yaml_err(c, vn,
			                 "route '%s': 'websocket' must be true or false (given: "
			                 "'%.64s')",
			                 r->name, v != NULL ? v : "a list or mapping");
	} else if (strcmp(k, "inject_headers") == 0) {
		if (vn->type != YAML_MAPPING_NODE ||
		    (n = (size_t)(vn->data.mapping.pairs.top - vn->data.mapping.pairs.start)) == 0)
			rc = tg_yaml_err(c, vn,
			                 "route '%s': 'inject_headers' must be a mapping of header "
			                 "names to {from: ..., prefix: ...}",
			                 r->name);
		else if ((r->inject = calloc(n, sizeof(*r->inject))) == NULL)
			rc = galloc(c);
		for (pr = vn->data.mapping.pairs.start; rc == 0 && pr < vn->data.mapping.pairs.top;
		     pr++)
			rc = get_inject(c, node(c, pr->key), node(c, pr->value), r->name,
			                &r->inject[r->ninject++]);
	} else {
		if (vn->type != YAML_SEQUENCE_NODE ||
		    (n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start)) ==
		        0)
			rc = tg_yaml_err(c, vn,
			                 "route '%s': 'allow' must be a non-empty list of entries",
			                 r->name);
		else if ((r->allow = calloc(n, sizeof(*r->allow))) == NULL)
			rc = galloc(c);
		for (it = vn->data.sequence.items.start;
		     rc == 0 && it < vn->data.sequence.items.top; it++)
			rc = get_allow(c, node(c, *it), p, r->name, &r->allow[r->nallow++]);
	}
	return rc;
}

static int
get_route(struct tg_yaml_ctx *c, yaml_node_t *m, struct tg_gate_policy *p, struct tg_gate_route *r)
{
	static const char *const keys[] = {"name",           "methods", "paths",     "upstream",
	                                   "inject_headers", "allow",   "websocket", "host"};
	yaml_node_pair_t *pr;
	yaml_node_t *kn, *vals[8] = {NULL};
	const char *k, *v;
	size_t i;
	int rc = 0;

	r->upstream = -1;
	r->line = m != NULL ? (unsigned)m->start_mark.line + 1 : 0;
	if (m == NULL || m->type != YAML_MAPPING_NODE) {
		rc = tg_yaml_err(c, m, "each route must be a mapping with name, paths and allow");
		goto out;
	}
	for (pr = m->data.mapping.pairs.start; rc == 0 && pr < m->data.mapping.pairs.top; pr++) {
		kn = node(c, pr->key);
		k = tg_yaml_scalar(kn);
		for (i = 0; k != NULL && i < 8 && strcmp(k, keys[i]) != 0; i++)
			;
		if (k == NULL || i == 8)
			rc = tg_yaml_err(c, kn,
			                 "unknown route key '%.64s' (known: name, methods, paths, "
			                 "upstream, inject_headers, allow, websocket, host)",
			                 k != NULL ? k : "");
		else if (vals[i] != NULL)
			rc = tg_yaml_err(c, kn, "route key '%s' appears twice; keep one", k);
		else
			vals[i] = node(c, pr->value);
	}
	v = rc == 0 ? tg_yaml_scalar(vals[0]) : NULL;
	if (rc == 0 && !name_ok(v))
		rc = tg_yaml_err(
		    c, vals[0] != NULL ? vals[0] : m,
		    "a route needs a 'name' of 1 to %d letters, digits, '.', '-' or '_'%s%.64s%s",
		    TG_GATE_NAME_MAX, v != NULL ? " (given: '" : "", v != NULL ? v : "",
		    v != NULL ? "')" : "");
	for (i = 0; rc == 0 && i < p->nroutes; i++)
		if (strcmp(p->routes[i].name, v) == 0)
			rc = tg_yaml_err(c, vals[0],
			                 "route name '%s' is used twice (first at line %u); "
			                 "give each route its own name",
			                 v, p->routes[i].line);
	if (rc == 0)
		snprintf(r->name, sizeof(r->name), "%s", v);
	if (rc == 0 && vals[2] == NULL)
		rc = tg_yaml_err(c, m, "route '%s' has no 'paths'; add paths: [\"/PATH/**\"]",
		                 r->name);
	if (rc == 0 && vals[5] == NULL)
		rc = tg_yaml_err(c, m, "route '%s' has no 'allow' list; add who may call it",
		                 r->name);
	for (i = 1; rc == 0 && i < 8; i++)
		if (vals[i] != NULL)
			rc = get_route_key(c, keys[i], vals[i], p, r);
out:
	return rc;
}

static int
parse_doc(struct tg_yaml_ctx *c, yaml_node_t *root, struct tg_gate_policy *p)
{
	static const char *const keys[] = {"upstreams", "groups", "routes"};
	yaml_node_pair_t *pr;
	yaml_node_item_t *it;
	yaml_node_t *kn, *vals[3] = {NULL};
	const char *k;
	size_t i, n;
	int rc = 0;

	if (root->type != YAML_MAPPING_NODE) {
		rc = tg_yaml_err(c, root,
		                 "the policy must be a mapping with 'routes' (and optionally "
		                 "'upstreams' and 'groups')");
		goto out;
	}
	for (pr = root->data.mapping.pairs.start; rc == 0 && pr < root->data.mapping.pairs.top;
	     pr++) {
		kn = node(c, pr->key);
		k = tg_yaml_scalar(kn);
		for (i = 0; k != NULL && i < 3 && strcmp(k, keys[i]) != 0; i++)
			;
		if (k == NULL || i == 3)
			rc = tg_yaml_err(c, kn,
			                 "unknown key '%.64s' (known: upstreams, groups, routes)",
			                 k != NULL ? k : "");
		else if (vals[i] != NULL)
			rc = tg_yaml_err(c, kn, "key '%s' appears twice; keep one", k);
		else
			vals[i] = node(c, pr->value);
	}
	if (rc == 0 && vals[0] != NULL)
		rc = get_upstreams(c, vals[0], p);
	if (rc == 0 && vals[1] != NULL)
		rc = get_groups(c, vals[1], p);
	if (rc == 0 && (vals[2] == NULL || vals[2]->type != YAML_SEQUENCE_NODE ||
	                vals[2]->data.sequence.items.top == vals[2]->data.sequence.items.start))
		rc = tg_yaml_err(c, vals[2] != NULL ? vals[2] : root,
		                 "the policy needs a non-empty 'routes' list; without routes every "
		                 "request is denied");
	if (rc == 0) {
		n = (size_t)(vals[2]->data.sequence.items.top - vals[2]->data.sequence.items.start);
		if ((p->routes = calloc(n, sizeof(*p->routes))) == NULL)
			rc = galloc(c);
	}
	for (it = rc == 0 ? vals[2]->data.sequence.items.start : NULL;
	     rc == 0 && it < vals[2]->data.sequence.items.top; it++)
		rc = get_route(c, node(c, *it), p, &p->routes[p->nroutes++]);
out:
	return rc;
}

int
tg_gate_policy_parse(const char *text, size_t n, const char *name, struct tg_gate_policy *p,
                     struct tg_error *err)
{
	yaml_document_t doc;
	yaml_node_t *root;
	struct tg_yaml_ctx c = {&doc, name, err};
	int have_doc = 0, rc;

	memset(p, 0, sizeof(*p));
	if ((rc = tg_yaml_load(text, n, GP_TEXT_MAX, name, &doc, err)) != 0)
		goto out;
	have_doc = 1;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		rc = tg_error_set(err, TG_ERR_CONFIG,
		                  "%s: the policy is empty; add a 'routes' list", name);
		goto out;
	}
	rc = parse_doc(&c, root, p);
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (rc != 0)
		tg_gate_policy_clear(p);
	return rc;
}

static void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

void
tg_gate_policy_clear(struct tg_gate_policy *p)
{
	size_t i, j;
	struct tg_gate_route *r;

	for (i = 0; p != NULL && i < p->nupstreams; i++)
		free(p->upstreams[i].url);
	for (i = 0; p != NULL && i < p->ngroups; i++)
		free_strings(p->groups[i].members, p->groups[i].nmembers);
	for (i = 0; p != NULL && i < p->nroutes; i++) {
		r = &p->routes[i];
		free_strings(r->methods, r->nmethods);
		free_strings(r->paths, r->npaths);
		free(r->host);
		for (j = 0; j < r->ninject; j++) {
			free(r->inject[j].from);
			free(r->inject[j].prefix);
		}
		free(r->inject);
		for (j = 0; j < r->nallow; j++)
			free(r->allow[j].identity);
		free(r->allow);
	}
	if (p != NULL) {
		free(p->upstreams);
		free(p->groups);
		free(p->routes);
		memset(p, 0, sizeof(*p));
	}
}
