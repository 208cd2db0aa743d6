/* decide.c — the gate's pure access decision (tg_gate_decide.h). */
#include "tg_gate_decide.h"

#include <stdio.h>
#include <string.h>

#include "tg_dec.h"

/* Length of the segment starting at s (up to '/' or the end). */
static size_t
seglen(const char *s)
{
	size_t n = 0;

	while (s[n] != '\0' && s[n] != '/')
		n++;
	return n;
}

int
tg_gate_path_match(const char *pattern, const char *path)
{
	const char *p = pattern, *q = path;
	size_t pn, qn;
	int res = -1;

	/* both start with '/'; walk segment by segment */
	while (res < 0) {
		while (*p == '/')
			p++;
		while (*q == '/')
			q++; /* a trailing slash of the path is not significant */
		pn = seglen(p);
		qn = seglen(q);
		if (pn == 2 && p[0] == '*' && p[1] == '*' && p[2] == '\0')
			res = 1; /* zero or more segments */
		else if (pn == 0)
			res = qn == 0;
		else if (qn == 0)
			res = 0;
		else if (pn == 1 && p[0] == '*')
			p += 1, q += qn;
		else if (pn == qn && memcmp(p, q, pn) == 0)
			p += pn, q += qn;
		else
			res = 0;
	}
	return res;
}

int
tg_gate_identity_match(const char *pattern, const char *identity)
{
	size_t pn = strlen(pattern), in = strlen(identity);
	int res;

	if (pn >= 2 && pattern[pn - 1] == '*' && pattern[pn - 2] == '/')
		res = in > pn - 1 && memcmp(pattern, identity, pn - 1) == 0 &&
		      strchr(identity + pn - 1, '/') == NULL;
	else
		res = strcmp(pattern, identity) == 0;
	return res;
}

/* Ranks of the minimums' orders (tg_gate_decide.h); 0 for unknown values. */
static int
pin_rank(enum tg_att_pin p)
{
	static const int rank[] = {
	    [TG_ATT_PIN_NEVER] = 1,      [TG_ATT_PIN_ONCE] = 2,         [TG_ATT_PIN_ALWAYS] = 3,
	    [TG_ATT_PIN_MATCH_ONCE] = 2, [TG_ATT_PIN_MATCH_ALWAYS] = 3,
	};

	return (unsigned)p < sizeof(rank) / sizeof(rank[0]) ? rank[p] : 0;
}

static int
touch_rank(enum tg_att_touch t)
{
	static const int rank[] = {
	    [TG_ATT_TOUCH_NEVER] = 1,
	    [TG_ATT_TOUCH_CACHED] = 2,
	    [TG_ATT_TOUCH_ALWAYS] = 3,
	};

	return (unsigned)t < sizeof(rank) / sizeof(rank[0]) ? rank[t] : 0;
}

static int
level_rank(enum tg_prov_level l)
{
	return l == TG_PROV_HSM_OPERATOR ? 1 : l == TG_PROV_DEVICE_ATTESTED ? 2 : 0;
}

static int
route_matches(const struct tg_gate_route *r, const char *method, const char *path)
{
	size_t i;
	int m = r->nmethods == 0, p = 0;

	for (i = 0; !m && i < r->nmethods; i++)
		m = strcmp(r->methods[i], method) == 0;
	for (i = 0; m && !p && i < r->npaths; i++)
		p = tg_gate_path_match(r->paths[i], path);
	return m && p;
}

static int
entry_identity(const struct tg_gate_policy *pol, const struct tg_gate_allow *a, const char *id)
{
	const struct tg_gate_group *g;
	size_t i;
	int m = 0;

	if (a->identity != NULL) {
		m = tg_gate_identity_match(a->identity, id);
	} else if (a->group >= 0 && (size_t)a->group < pol->ngroups) {
		g = &pol->groups[a->group];
		for (i = 0; !m && i < g->nmembers; i++)
			m = tg_gate_identity_match(g->members[i], id);
	}
	return m;
}

/* Writes why the key falls short of a's minimums into buf; 0 when it meets them. */
static int
entry_short(const struct tg_gate_route *r, const struct tg_gate_allow *a,
            const struct tg_gate_peer *peer, char *buf, size_t n)
{
	int shortfall = 1;

	if (level_rank(peer->level) < level_rank(a->key))
		snprintf(buf, n, "route %s needs key level %s; the key is %s", r->name,
		         tg_prov_level_name(a->key), tg_prov_level_name(peer->level));
	else if (pin_rank(peer->pin) < pin_rank(a->pin))
		snprintf(buf, n, "route %s needs PIN policy %s; the key has %s", r->name,
		         tg_att_pin_name(a->pin), tg_att_pin_name(peer->pin));
	else if (touch_rank(peer->touch) < touch_rank(a->touch))
		snprintf(buf, n, "route %s needs touch policy %s; the key has %s", r->name,
		         tg_att_touch_name(a->touch), tg_att_touch_name(peer->touch));
	else
		shortfall = 0;
	return shortfall;
}

/* Appends n bytes of s to buf (cap bytes, *len used, NUL kept), cutting
 * off what does not fit, as snprintf does. */
static void
reason_put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

/*
 * "route NAME allows IDENTITY (line N)", the identity cut at 256 bytes:
 * the text of snprintf("route %s allows %.256s (line %u)"), made once per
 * allowed request, without printf.
 */
static void
reason_allows(char *buf, size_t cap, const char *route, const char *identity, unsigned line)
{
	char num[TG_DEC_MAX];
	size_t len = 0, nn = tg_dec_u64(line, num);

	buf[0] = '\0';
	reason_put(buf, cap, &len, "route ", 6);
	reason_put(buf, cap, &len, route, strlen(route));
	reason_put(buf, cap, &len, " allows ", 8);
	reason_put(buf, cap, &len, identity, strnlen(identity, 256));
	reason_put(buf, cap, &len, " (line ", 7);
	reason_put(buf, cap, &len, num, nn);
	reason_put(buf, cap, &len, ")", 1);
}

int
tg_gate_decide(const struct tg_gate_policy *pol, const struct tg_gate_peer *peer,
               const char *method, const char *normalized_path, struct tg_gate_verdict *v)
{
	const struct tg_gate_route *r = NULL;
	char why[sizeof(v->reason)];
	size_t i;
	int rc = 0, closest = 0;

	if (v == NULL || pol == NULL || peer == NULL || peer->identity == NULL || method == NULL ||
	    normalized_path == NULL) {
		rc = TG_ERR_INVALID_ARG;
		goto out;
	}
	v->allow = 0;
	v->route = -1;
	v->entry = -1;
	if (normalized_path[0] != '/') {
		snprintf(v->reason, sizeof(v->reason),
		         "the path was refused or not normalized; no route can match it");
		goto out;
	}
	for (i = 0; r == NULL && i < pol->nroutes; i++) {
		if (route_matches(&pol->routes[i], method, normalized_path)) {
			r = &pol->routes[i];
			v->route = (long)i;
		}
	}
	if (r == NULL) {
		snprintf(v->reason, sizeof(v->reason), "no route matches %.32s %.256s", method,
		         normalized_path);
		goto out;
	}
	for (i = 0; !v->allow && i < r->nallow; i++) {
		if (!entry_identity(pol, &r->allow[i], peer->identity))
			continue;
		if (!entry_short(r, &r->allow[i], peer, why, sizeof(why))) {
			v->allow = 1;
			v->entry = (long)i;
			reason_allows(v->reason, sizeof(v->reason), r->name, peer->identity,
			              r->allow[i].line);
		} else if (!closest) {
			closest = 1;
			v->entry = (long)i;
			snprintf(v->reason, sizeof(v->reason), "%s", why);
		}
	}
	if (!v->allow && !closest)
		snprintf(v->reason, sizeof(v->reason), "route %s has no allow entry for %.256s",
		         r->name, peer->identity);
out:
	if (rc != 0 && v != NULL) {
		v->allow = 0;
		v->route = -1;
		v->entry = -1;
		snprintf(v->reason, sizeof(v->reason), "internal: decision without %s",
		         "a policy, peer, method or path");
	}
	return rc;
}
