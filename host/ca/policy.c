/* policy.c — the CA's issuance policy in YAML (tg_ca_policy.h). */
#include "tg_ca_policy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tg_yaml.h"

#include "tg_ca_io.h"

#define POL_DEFAULT_VALIDITY (24L * 3600)
#define POL_MAX_VALIDITY     (30L * 24 * 3600)
#define POL_SERIALS_MAX      100000
#define POL_TEXT_MAX         (1024 * 1024)

int
tg_ca_td_check(const char *td, struct tg_error *err)
{
	size_t i, n = td != NULL ? strlen(td) : 0;

	if (n == 0 || n > TG_CA_TD_MAX)
		return tg_error_set(
		    err, TG_ERR_IDENTITY,
		    "trust domain '%.64s%s' has %zu characters; it must have 1 to %d",
		    td != NULL ? td : "", n > 64 ? "..." : "", n, TG_CA_TD_MAX);
	for (i = 0; i < n; i++) {
		if (strchr("abcdefghijklmnopqrstuvwxyz0123456789.-_", td[i]) == NULL)
			return tg_error_set(err, TG_ERR_IDENTITY,
			                    "trust domain '%s' may hold only "
			                    "lower-case letters, digits, '.', "
			                    "'-' and '_'",
			                    td);
	}
	return 0;
}

int
tg_ca_duration_parse(const char *s, long *secs)
{
	char *end = NULL;
	long v, mult = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return TG_ERR_INVALID_ARG;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v <= 0)
		return TG_ERR_INVALID_ARG;
	if (*end != '\0') {
		switch (*end) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			return TG_ERR_INVALID_ARG;
		}
		if (end[1] != '\0')
			return TG_ERR_INVALID_ARG;
	}
	/* 100 years is more than any certificate should live */
	if (v > 100L * 365 * 86400 / mult)
		return TG_ERR_INVALID_ARG;
	*secs = v * mult;
	return 0;
}

int
tg_ca_firmware_parse(const char *s, uint8_t fw[3])
{
	unsigned long v;
	char *end;
	int i;

	for (i = 0; i < 3; i++) {
		if (s == NULL || *s < '0' || *s > '9')
			return TG_ERR_INVALID_ARG;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno != 0 || v > 255)
			return TG_ERR_INVALID_ARG;
		fw[i] = (uint8_t)v;
		if (i < 2 && *end != '.')
			return TG_ERR_INVALID_ARG;
		s = end + 1;
	}
	return *end == '\0' ? 0 : TG_ERR_INVALID_ARG;
}

/* A value policy.yaml can hold and tg_ca_policy_write can write back
 * (inside double quotes): no control characters, '"' or '\\'. */
static int
text_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\')
			return 0;
	}
	return 1;
}

/* One {module, manufacturer, model, serial} mapping of hsm_tokens. */
static int
get_hsm_token(struct tg_yaml_ctx *c, yaml_node_t *m, struct tg_ca_hsm_token *t)
{
	static const char *const names[] = {"module", "manufacturer", "model", "serial"};
	char *dst[4];
	size_t sz[4], i;
	unsigned seen = 0;
	yaml_node_pair_t *pr;
	yaml_node_t *k, *v;
	const char *ks, *vs;

	dst[0] = t->module, sz[0] = sizeof(t->module);
	dst[1] = t->manufacturer, sz[1] = sizeof(t->manufacturer);
	dst[2] = t->model, sz[2] = sizeof(t->model);
	dst[3] = t->serial, sz[3] = sizeof(t->serial);
	if (m == NULL || m->type != YAML_MAPPING_NODE)
		return tg_yaml_err(c, m,
		                   "'hsm_tokens': each entry must be a mapping like {module: "
		                   "/usr/lib/x/pkcs11.so, manufacturer: GLOB, model: GLOB, "
		                   "serial: GLOB}");
	t->line = (unsigned)m->start_mark.line + 1;
	for (pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
		k = yaml_document_get_node(c->doc, pr->key);
		v = yaml_document_get_node(c->doc, pr->value);
		if ((ks = tg_yaml_scalar(k)) == NULL)
			return tg_yaml_err(c, k, "'hsm_tokens': keys must be plain names");
		for (i = 0; i < 4 && strcmp(ks, names[i]) != 0; i++)
			;
		if (i == 4)
			return tg_yaml_err(c, k,
			                   "'hsm_tokens': unknown key '%s' (known: module, "
			                   "manufacturer, model, serial)",
			                   ks);
		if (seen & (1u << i))
			return tg_yaml_err(c, k, "'hsm_tokens': key '%s' appears twice", ks);
		seen |= 1u << i;
		if ((vs = tg_yaml_scalar(v)) == NULL || *vs == '\0' || strlen(vs) >= sz[i] ||
		    !text_ok(vs))
			return tg_yaml_err(
			    c, v,
			    "'hsm_tokens': '%s' must be one non-empty value of at most "
			    "%zu characters, without control characters, '\"' or '\\' "
			    "(given: %s%.64s%s)",
			    ks, sz[i] - 1, vs != NULL ? "'" : "",
			    vs != NULL ? vs : "a list or mapping", vs != NULL ? "'" : "");
		if (i == 0 && vs[0] != '/')
			return tg_yaml_err(
			    c, v,
			    "'hsm_tokens': module '%s' must be an absolute path (the "
			    "file the CA may load, e.g. /usr/lib/softhsm/libsofthsm2.so)",
			    vs);
		snprintf(dst[i], sz[i], "%s", vs);
	}
	if (!(seen & 1u))
		return tg_yaml_err(c, m,
		                   "'hsm_tokens': the entry has no 'module' (the path of the "
		                   "HSM's PKCS#11 module)");
	return 0;
}

static int
get_hsm_tokens(struct tg_yaml_ctx *c, yaml_node_t *v, struct tg_ca_policy *pol)
{
	yaml_node_item_t *it;
	size_t count;
	int r;

	if (v->type != YAML_SEQUENCE_NODE)
		return tg_yaml_err(c, v,
		                   "'hsm_tokens' must be a list of {module: PATH, manufacturer: "
		                   "GLOB, model: GLOB, serial: GLOB}");
	count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (count > TG_CA_HSM_TOKENS_MAX)
		return tg_yaml_err(c, v, "'hsm_tokens' lists %zu entries; at most %d are allowed",
		                   count, TG_CA_HSM_TOKENS_MAX);
	if (count == 0)
		return 0;
	if ((pol->hsm_tokens = calloc(count, sizeof(*pol->hsm_tokens))) == NULL)
		return tg_error_set(c->err, TG_ERR_ALLOC, "out of memory");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		r = get_hsm_token(c, yaml_document_get_node(c->doc, *it),
		                  &pol->hsm_tokens[pol->nhsm_tokens]);
		if (r != 0)
			return r;
		pol->nhsm_tokens++;
	}
	return 0;
}

int
tg_ca_crl_url_check(const char *url, struct tg_error *err)
{
	const char *host;
	size_t n = url != NULL ? strlen(url) : 0;
	int r = TG_ERR_INVALID_ARG;

	if (n == 0 || n >= TG_CA_URL_MAX) {
		tg_error_set(err, r, "crl_url must be 1 to %d characters", TG_CA_URL_MAX - 1);
		goto out;
	}
	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else {
		tg_error_set(err, r,
		             "crl_url '%.64s' is not an http:// or https:// URL "
		             "(e.g. http://ca.example.org/ca.crl)",
		             url);
		goto out;
	}
	if (*host == '\0' || *host == '/' || *host == '?' || *host == '#' || *host == '@') {
		tg_error_set(err, r, "crl_url '%.64s' has no host", url);
		goto out;
	}
	for (; *url != '\0'; url++) {
		if ((unsigned char)*url <= 0x20 || *url == 0x7f || *url == '"' || *url == '\\' ||
		    (unsigned char)*url >= 0x80) {
			tg_error_set(err, r,
			             "crl_url holds a control character, space, quote, "
			             "backslash or non-ASCII byte; percent-encode it");
			goto out;
		}
	}
	r = 0;
out:
	return r;
}

static int
get_names(struct tg_yaml_ctx *c, yaml_node_t *v, const char *key, int pin, unsigned *mask)
{
	yaml_node_item_t *it;
	yaml_node_t *n;
	enum tg_att_pin p;
	enum tg_att_touch t;
	const char *s;
	int val;

	if (v->type != YAML_SEQUENCE_NODE)
		return tg_yaml_err(c, v, "'%s' must be a list, e.g. [%s], not %s%s%s", key,
		                   pin ? "once, always" : "never, always, cached",
		                   tg_yaml_scalar(v) ? "'" : "",
		                   tg_yaml_scalar(v) ? tg_yaml_scalar(v) : "a mapping",
		                   tg_yaml_scalar(v) ? "'" : "");
	*mask = 0;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		n = yaml_document_get_node(c->doc, *it);
		s = tg_yaml_scalar(n);
		if (pin && s != NULL && tg_att_pin_parse(s, &p) == 0)
			val = (int)p;
		else if (!pin && s != NULL && tg_att_touch_parse(s, &t) == 0)
			val = (int)t;
		else
			return tg_yaml_err(c, n, "'%s': unknown value %s%s%s (allowed: %s)", key,
			                   s != NULL ? "'" : "",
			                   s != NULL ? s : "(a list or mapping)",
			                   s != NULL ? "'" : "",
			                   pin ? "never, once, always, match-once, "
			                         "match-always"
			                       : "never, always, cached");
		*mask |= 1u << val;
	}
	if (*mask == 0)
		return tg_yaml_err(c, v, "'%s' is empty: no token could be certified", key);
	return 0;
}

static int
get_serials(struct tg_yaml_ctx *c, yaml_node_t *v, struct tg_ca_policy *pol)
{
	yaml_node_item_t *it;
	yaml_node_t *n;
	const char *s;
	char *end;
	size_t count;
	unsigned long long x;

	if (v->type != YAML_SEQUENCE_NODE)
		return tg_yaml_err(c, v,
		                   "'serials' must be a list of token serial "
		                   "numbers");
	count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (count == 0)
		return tg_yaml_err(c, v,
		                   "'serials' is empty, which allows no token: "
		                   "remove the key to allow any serial");
	if (count > POL_SERIALS_MAX)
		return tg_yaml_err(c, v, "'serials' lists %zu entries; at most %d are allowed",
		                   count, POL_SERIALS_MAX);
	if ((pol->serials = calloc(count, sizeof(*pol->serials))) == NULL)
		return tg_error_set(c->err, TG_ERR_ALLOC, "out of memory");
	pol->has_serials = 1;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		n = yaml_document_get_node(c->doc, *it);
		s = tg_yaml_scalar(n);
		if (s == NULL || *s < '0' || *s > '9')
			return tg_yaml_err(c, n,
			                   "'serials': '%s' is not a decimal "
			                   "serial number",
			                   s != NULL ? s : "(list)");
		errno = 0;
		x = strtoull(s, &end, 10);
		if (errno != 0 || *end != '\0')
			return tg_yaml_err(c, n,
			                   "'serials': '%s' is not a decimal "
			                   "serial number",
			                   s);
		pol->serials[pol->nserials++] = (uint64_t)x;
	}
	return 0;
}

/* Fields and the bit that says they were seen. */
enum {
	K_TD = 1 << 0,
	K_ROOTS = 1 << 1,
	K_FW = 1 << 2,
	K_PIN = 1 << 3,
	K_TOUCH = 1 << 4,
	K_SERIALS = 1 << 5,
	K_DEFVAL = 1 << 6,
	K_MAXVAL = 1 << 7,
	K_HSM = 1 << 8,
	K_CRL = 1 << 9,
	K_OLD_HSM = 1 << 10,
};

static const struct {
	const char *name;
	unsigned bit;
	int required;
} keys[] = {
    {"trust_domain", K_TD, 1},
    {"attestation_roots", K_ROOTS, 1},
    {"min_firmware", K_FW, 0},
    {"pin_policies", K_PIN, 1},
    {"touch_policies", K_TOUCH, 1},
    {"serials", K_SERIALS, 0},
    {"default_validity", K_DEFVAL, 1},
    {"max_validity", K_MAXVAL, 1},
    {"hsm_tokens", K_HSM, 0},
    {"crl_url", K_CRL, 0},
    {"allow_hsm_operator", K_OLD_HSM, 0},
};

static int
one_key(struct tg_yaml_ctx *c, unsigned bit, const char *key, yaml_node_t *v,
        struct tg_ca_policy *pol)
{
	const char *s = tg_yaml_scalar(v);
	struct tg_error tmp;

	if (bit == K_PIN)
		return get_names(c, v, key, 1, &pol->pin_allowed);
	if (bit == K_TOUCH)
		return get_names(c, v, key, 0, &pol->touch_allowed);
	if (bit == K_SERIALS)
		return get_serials(c, v, pol);
	if (bit == K_HSM)
		return get_hsm_tokens(c, v, pol);
	if (bit == K_OLD_HSM)
		return tg_yaml_err(c, v,
		                   "'allow_hsm_operator' is no longer supported: list the HSMs "
		                   "whose keys may be certified in 'hsm_tokens' (e.g. hsm_tokens: "
		                   "[{module: /usr/lib/x/pkcs11.so, model: \"X*\"}]); without "
		                   "hsm_tokens no HSM key is certified");
	if (s == NULL)
		return tg_yaml_err(c, v,
		                   "'%s' must be a single value, not a list or "
		                   "mapping",
		                   key);
	switch (bit) {
	case K_TD:
		tg_error_clear(&tmp);
		if (tg_ca_td_check(s, &tmp) != 0)
			return tg_yaml_err(c, v, "%s", tmp.msg);
		snprintf(pol->trust_domain, sizeof(pol->trust_domain), "%s", s);
		return 0;
	case K_ROOTS:
		if (*s == '\0' || strlen(s) >= sizeof(pol->attestation_roots))
			return tg_yaml_err(c, v,
			                   "'%s': '%.64s%s' is not a directory path of 1 to %zu "
			                   "characters",
			                   key, s, strlen(s) > 64 ? "..." : "",
			                   sizeof(pol->attestation_roots) - 1);
		snprintf(pol->attestation_roots, sizeof(pol->attestation_roots), "%s", s);
		return 0;
	case K_CRL:
		tg_error_clear(&tmp);
		if (tg_ca_crl_url_check(s, &tmp) != 0)
			return tg_yaml_err(c, v, "%s", tmp.msg);
		snprintf(pol->crl_url, sizeof(pol->crl_url), "%s", s);
		return 0;
	case K_FW:
		if (tg_ca_firmware_parse(s, pol->min_firmware) != 0)
			return tg_yaml_err(c, v, "'%s': '%s' is not a version like 5.2.0", key, s);
		return 0;
	case K_DEFVAL:
	case K_MAXVAL:
		if (tg_ca_duration_parse(s, bit == K_DEFVAL ? &pol->default_validity
		                                            : &pol->max_validity) != 0)
			return tg_yaml_err(c, v,
			                   "'%s': '%s' is not a duration like 24h, "
			                   "30m, 7d (1s up to 100 years)",
			                   key, s);
		return 0;
	default:
		return tg_yaml_err(c, v, "internal: unhandled key '%s'", key);
	}
}

static int
parse_doc(struct tg_yaml_ctx *c, struct tg_ca_policy *pol)
{
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	yaml_node_pair_t *pr;
	yaml_node_t *k, *v;
	unsigned seen = 0;
	const char *ks;
	char dv[32], mv[32];
	size_t i;
	int r;

	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return tg_yaml_err(c, root,
		                   "the policy must be a mapping of keys "
		                   "(trust_domain, attestation_roots, ...)");
	for (pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		k = yaml_document_get_node(c->doc, pr->key);
		v = yaml_document_get_node(c->doc, pr->value);
		if ((ks = tg_yaml_scalar(k)) == NULL)
			return tg_yaml_err(c, k, "keys must be plain names");
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (strcmp(ks, keys[i].name) == 0)
				break;
		}
		if (i == sizeof(keys) / sizeof(keys[0]))
			return tg_yaml_err(c, k,
			                   "unknown key '%s' (known: trust_domain, "
			                   "attestation_roots, min_firmware, "
			                   "pin_policies, touch_policies, serials, "
			                   "default_validity, max_validity, "
			                   "hsm_tokens, crl_url)",
			                   ks);
		if (seen & keys[i].bit)
			return tg_yaml_err(c, k, "key '%s' appears twice", ks);
		seen |= keys[i].bit;
		if ((r = one_key(c, keys[i].bit, ks, v, pol)) != 0)
			return r;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].required && !(seen & keys[i].bit))
			return tg_yaml_err(c, root, "required key '%s' is missing", keys[i].name);
	}
	if (pol->default_validity > pol->max_validity) {
		tg_ca_duration_str(pol->default_validity, dv, sizeof(dv));
		tg_ca_duration_str(pol->max_validity, mv, sizeof(mv));
		return tg_yaml_err(c, root,
		                   "default_validity is longer than max_validity (%s > %s); "
		                   "make default_validity at most %s",
		                   dv, mv, mv);
	}
	return 0;
}

int
tg_ca_policy_parse(const char *text, size_t n, const char *name, struct tg_ca_policy *pol,
                   struct tg_error *err)
{
	yaml_document_t doc;
	struct tg_yaml_ctx c = {&doc, name, err};
	int have_doc = 0, r;

	memset(pol, 0, sizeof(*pol));
	if ((r = tg_yaml_load(text, n, POL_TEXT_MAX, name, &doc, err)) != 0)
		goto out;
	have_doc = 1;
	if (yaml_document_get_root_node(&doc) == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG, "%s: empty policy", name);
		goto out;
	}
	r = parse_doc(&c, pol);
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (r != 0)
		tg_ca_policy_clear(pol);
	return r;
}

int
tg_ca_policy_load(const char *path, struct tg_ca_policy *pol, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	memset(pol, 0, sizeof(*pol));
	if ((r = tg_ca_file_read(path, &data, &len, err)) != 0)
		goto out;
	r = tg_ca_policy_parse((const char *)data, len, path, pol, err);
out:
	free(data);
	return r;
}

void
tg_ca_policy_clear(struct tg_ca_policy *pol)
{
	if (pol == NULL)
		return;
	free(pol->serials);
	free(pol->hsm_tokens);
	memset(pol, 0, sizeof(*pol));
}

void
tg_ca_policy_defaults(struct tg_ca_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->pin_allowed = (1u << TG_ATT_PIN_ONCE) | (1u << TG_ATT_PIN_ALWAYS);
	pol->touch_allowed =
	    (1u << TG_ATT_TOUCH_NEVER) | (1u << TG_ATT_TOUCH_ALWAYS) | (1u << TG_ATT_TOUCH_CACHED);
	pol->default_validity = POL_DEFAULT_VALIDITY;
	pol->max_validity = POL_MAX_VALIDITY;
}

/* Appends "[a, b]" of the names whose bits are set. */
static void
names_str(unsigned mask, int pin, char *buf, size_t n)
{
	size_t used = 0;
	int i, first = 1;

	used += (size_t)snprintf(buf, n, "[");
	for (i = 1; i < 8 && used < n; i++) {
		if (!(mask & (1u << i)))
			continue;
		used += (size_t)snprintf(buf + used, n - used, "%s%s", first ? "" : ", ",
		                         pin ? tg_att_pin_name((enum tg_att_pin)i)
		                             : tg_att_touch_name((enum tg_att_touch)i));
		first = 0;
	}
	if (used < n)
		snprintf(buf + used, n - used, "]");
}

void
tg_ca_duration_str(long s, char *buf, size_t n)
{
	if (s % 86400 == 0)
		snprintf(buf, n, "%ldd", s / 86400);
	else if (s % 3600 == 0)
		snprintf(buf, n, "%ldh", s / 3600);
	else if (s % 60 == 0)
		snprintf(buf, n, "%ldm", s / 60);
	else
		snprintf(buf, n, "%lds", s);
}

/* "  - module: \"...\"" and its globs, appended at text + *used. */
static void
hsm_tokens_str(const struct tg_ca_policy *pol, char *text, size_t cap, size_t *used)
{
	const struct tg_ca_hsm_token *t;
	size_t i;

	if (pol->nhsm_tokens == 0) {
		*used += (size_t)snprintf(
		    text + *used, cap - *used,
		    "# No HSM key is certified (level hsm-operator) until hsm_tokens lists\n"
		    "# its HSM; the CA loads no PKCS#11 module that is not listed here:\n"
		    "# hsm_tokens:\n"
		    "#   - module: /usr/lib/vendor/libvendor-pkcs11.so  # absolute path\n"
		    "#     manufacturer: \"Vendor*\"  # fnmatch globs on the token's own\n"
		    "#     model: \"Model*\"          # C_GetTokenInfo fields; absent = any\n"
		    "#     serial: \"*\"\n"
		    "# (SoftHSM2 is a software token: list it only for tests.)\n");
		return;
	}
	*used += (size_t)snprintf(text + *used, cap - *used, "hsm_tokens:\n");
	for (i = 0; i < pol->nhsm_tokens && *used < cap; i++) {
		t = &pol->hsm_tokens[i];
		*used +=
		    (size_t)snprintf(text + *used, cap - *used, "  - module: \"%s\"\n", t->module);
		if (t->manufacturer[0] != '\0' && *used < cap)
			*used += (size_t)snprintf(text + *used, cap - *used,
			                          "    manufacturer: \"%s\"\n", t->manufacturer);
		if (t->model[0] != '\0' && *used < cap)
			*used += (size_t)snprintf(text + *used, cap - *used, "    model: \"%s\"\n",
			                          t->model);
		if (t->serial[0] != '\0' && *used < cap)
			*used += (size_t)snprintf(text + *used, cap - *used, "    serial: \"%s\"\n",
			                          t->serial);
	}
}

/* Every string of pol that the file holds in double quotes can be written. */
static int
write_check(const struct tg_ca_policy *pol, struct tg_error *err)
{
	const struct tg_ca_hsm_token *t;
	size_t i;
	int r = TG_ERR_INVALID_ARG;

	if (!text_ok(pol->attestation_roots)) {
		tg_error_set(err, r,
		             "attestation roots path '%s' holds a character the policy "
		             "file cannot hold",
		             pol->attestation_roots);
		goto out;
	}
	for (i = 0; i < pol->nhsm_tokens; i++) {
		t = &pol->hsm_tokens[i];
		if (t->module[0] != '/' || !text_ok(t->module) || !text_ok(t->manufacturer) ||
		    !text_ok(t->model) || !text_ok(t->serial)) {
			tg_error_set(err, r,
			             "hsm_tokens entry %zu: the module must be an absolute "
			             "path and no value may hold a control character, '\"' "
			             "or '\\'",
			             i + 1);
			goto out;
		}
	}
	if (pol->crl_url[0] != '\0' && tg_ca_crl_url_check(pol->crl_url, err) != 0)
		goto out;
	r = 0;
out:
	return r;
}

int
tg_ca_policy_write(const struct tg_ca_policy *pol, const char *path, struct tg_error *err)
{
	char *text = NULL, pins[128], touches[128], dv[32], mv[32];
	size_t cap = 4096 + pol->nserials * 24 + pol->nhsm_tokens * 700 + TG_CA_URL_MAX, used, i;
	int r;

	if ((r = write_check(pol, err)) != 0)
		goto out;
	if ((text = malloc(cap)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	names_str(pol->pin_allowed, 1, pins, sizeof(pins));
	names_str(pol->touch_allowed, 0, touches, sizeof(touches));
	tg_ca_duration_str(pol->default_validity, dv, sizeof(dv));
	tg_ca_duration_str(pol->max_validity, mv, sizeof(mv));
	used = (size_t)snprintf(text, cap,
	                        "# tokengate CA issuance policy (see docs/provenance.md).\n"
	                        "# Unknown keys are errors. 'serials' (optional) restricts the\n"
	                        "# tokens certified to the listed serial numbers.\n"
	                        "trust_domain: %s\n"
	                        "attestation_roots: \"%s\"\n"
	                        "min_firmware: %u.%u.%u\n"
	                        "pin_policies: %s\n"
	                        "touch_policies: %s\n"
	                        "default_validity: %s\n"
	                        "max_validity: %s\n",
	                        pol->trust_domain, pol->attestation_roots, pol->min_firmware[0],
	                        pol->min_firmware[1], pol->min_firmware[2], pins, touches, dv, mv);
	if (pol->has_serials && used < cap) {
		used += (size_t)snprintf(text + used, cap - used, "serials: [");
		for (i = 0; i < pol->nserials && used < cap; i++)
			used += (size_t)snprintf(text + used, cap - used, "%s%llu", i ? ", " : "",
			                         (unsigned long long)pol->serials[i]);
		if (used < cap)
			used += (size_t)snprintf(text + used, cap - used, "]\n");
	}
	if (pol->crl_url[0] != '\0' && used < cap)
		used +=
		    (size_t)snprintf(text + used, cap - used, "crl_url: \"%s\"\n", pol->crl_url);
	else if (used < cap)
		used += (size_t)snprintf(text + used, cap - used,
		                         "# crl_url: \"http://ca.example.org/ca.crl\"  # optional: "
		                         "a CRL distribution point in every leaf\n");
	if (used < cap)
		hsm_tokens_str(pol, text, cap, &used);
	if (used >= cap) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "policy text too long");
		goto out;
	}
	r = tg_ca_file_write(path, text, used, 0644, err);
out:
	free(text);
	return r;
}

static int
fw_cmp(const uint8_t a[3], const uint8_t b[3])
{
	int i;

	for (i = 0; i < 3; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	return 0;
}

int
tg_ca_policy_check(const struct tg_ca_policy *pol, const struct tg_att_facts *f, unsigned checks,
                   struct tg_error *err)
{
	static const uint8_t fw_none[3] = {0, 0, 0};
	char allowed[128];
	size_t i;
	int r = TG_ERR_POLICY;

	if ((checks & TG_CA_CHECK_FIRMWARE) && fw_cmp(pol->min_firmware, fw_none) != 0) {
		if (!f->has_firmware) {
			tg_error_set(err, r,
			             "the attestation states no firmware "
			             "version but the CA policy requires at "
			             "least %u.%u.%u (min_firmware)",
			             pol->min_firmware[0], pol->min_firmware[1],
			             pol->min_firmware[2]);
			goto out;
		}
		if (fw_cmp(f->firmware, pol->min_firmware) < 0) {
			tg_error_set(err, r,
			             "token firmware %s is below the CA "
			             "policy's minimum %u.%u.%u (min_firmware); "
			             "use a token with newer firmware",
			             f->firmware_str, pol->min_firmware[0], pol->min_firmware[1],
			             pol->min_firmware[2]);
			goto out;
		}
	}
	if ((checks & TG_CA_CHECK_PIN) && !(pol->pin_allowed & (1u << f->pin_policy))) {
		names_str(pol->pin_allowed, 1, allowed, sizeof(allowed));
		tg_error_set(err, r,
		             "the key's PIN policy '%s' is not allowed by "
		             "the CA policy (pin_policies in policy.yaml: %s); "
		             "generate the key again with an allowed PIN "
		             "policy (e.g. --pin-policy once)",
		             tg_att_pin_name(f->pin_policy), allowed);
		goto out;
	}
	if ((checks & TG_CA_CHECK_TOUCH) && !(pol->touch_allowed & (1u << f->touch_policy))) {
		names_str(pol->touch_allowed, 0, allowed, sizeof(allowed));
		tg_error_set(err, r,
		             "the key's touch policy '%s' is not allowed "
		             "by the CA policy (touch_policies in "
		             "policy.yaml: %s); generate the key again with an "
		             "allowed touch policy",
		             tg_att_touch_name(f->touch_policy), allowed);
		goto out;
	}
	if ((checks & TG_CA_CHECK_SERIAL) && pol->has_serials) {
		if (!f->has_serial) {
			tg_error_set(err, r,
			             "the attestation states no token serial "
			             "but the CA policy has a serial allow-list");
			goto out;
		}
		for (i = 0; i < pol->nserials; i++) {
			if (pol->serials[i] == f->serial)
				break;
		}
		if (i == pol->nserials) {
			tg_error_set(err, r,
			             "token serial %llu is not in the CA "
			             "policy's serial allow-list (serials in "
			             "policy.yaml)",
			             (unsigned long long)f->serial);
			goto out;
		}
	}
	r = 0;
out:
	return r;
}
