/* hsm.c — level hsm-operator: trusted HSMs and key possession (tg_ca_hsm.h). */
#include "tg_ca_hsm.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_secret.h"

#define HSM_LIST_MAX 1024

static const char *
tri_name(int v)
{
	return v == 1                     ? "true"
	       : v == 0                   ? "false"
	       : v == TG_P11_ATTR_INVALID ? "unknown (the token reports a value other than true or "
	                                    "false)"
	                                  : "unknown (the token does not report it)";
}

int
tg_ca_hsm_rules(const struct tg_p11_trust *t, int login_required, const char *label,
                enum tg_att_pin *pin, struct tg_error *err)
{
	int r = TG_ERR_KEY_EXPORTABLE;

	if (t->emulated == 1) {
		tg_error_set(err, r,
		             "HSM key '%s' is on a PKCS#15-emulated token (a smart card through "
		             "OpenSC): its module invents CKA_LOCAL, CKA_NEVER_EXTRACTABLE and "
		             "CKA_ALWAYS_SENSITIVE, so they prove nothing; enroll a PIV card with "
		             "its attestation (tokengate enroll --reader ...) instead of --hsm-key",
		             label);
		goto out;
	}
	if (t->extractable != 0) {
		tg_error_set(err, r,
		             "HSM key '%s' is exportable (CKA_EXTRACTABLE is %s): its private "
		             "key can be read out; generate a non-exportable key on the HSM",
		             label, tri_name(t->extractable));
		goto out;
	}
	if (t->sensitive != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' is not sensitive (CKA_SENSITIVE is %s): its private "
		             "value can be read out; generate a non-exportable key on the HSM",
		             label, tri_name(t->sensitive));
		goto out;
	}
	if (t->always_sensitive != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' was not always sensitive (CKA_ALWAYS_SENSITIVE is "
		             "%s): its value was readable once, a copy may exist; generate a "
		             "new key on the HSM",
		             label, tri_name(t->always_sensitive));
		goto out;
	}
	if (t->never_extractable != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' was exportable once (CKA_NEVER_EXTRACTABLE is %s): "
		             "a copy may exist; generate a new non-exportable key on the HSM",
		             label, tri_name(t->never_extractable));
		goto out;
	}
	if (t->local != 1) {
		tg_error_set(err, r,
		             "HSM key '%s' was not generated on the token (CKA_LOCAL is %s): "
		             "an imported key gets no certificate; generate the key on the HSM",
		             label, tri_name(t->local));
		goto out;
	}
	if (t->always_authenticate == 1)
		*pin = TG_ATT_PIN_ALWAYS;
	else if (t->private_obj == 1 && login_required)
		*pin = TG_ATT_PIN_ONCE;
	else
		*pin = TG_ATT_PIN_NEVER;
	r = 0;
out:
	return r;
}

/* "'a', 'b'" of the modules hsm_tokens lists, or "none". */
static void
modules_str(const struct tg_ca_policy *pol, char *buf, size_t n)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < pol->nhsm_tokens && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s'%s'", i ? ", " : "",
		                         pol->hsm_tokens[i].module);
	if (pol->nhsm_tokens == 0)
		snprintf(buf, n, "none");
}

int
tg_ca_hsm_module_check(const struct tg_ca_policy *pol, const char *path, char *canon, size_t n,
                       struct tg_error *err)
{
	char mine[PATH_MAX], theirs[PATH_MAX], listed[HSM_LIST_MAX];
	size_t i;
	int r = TG_ERR_POLICY;

	if (realpath(path, mine) == NULL)
		mine[0] = '\0';
	for (i = 0; mine[0] != '\0' && i < pol->nhsm_tokens; i++) {
		if (realpath(pol->hsm_tokens[i].module, theirs) != NULL &&
		    strcmp(mine, theirs) == 0)
			break;
	}
	if (mine[0] == '\0' || i == pol->nhsm_tokens) {
		modules_str(pol, listed, sizeof(listed));
		tg_error_set(err, r,
		             "PKCS#11 module '%s' is not listed in hsm_tokens of the CA "
		             "policy (policy.yaml; modules listed: %s), so it was not "
		             "loaded; if it is an HSM this CA trusts, add an entry "
		             "'- module: %s' to hsm_tokens",
		             path, listed, mine[0] != '\0' ? mine : path);
		goto out;
	}
	if (strlen(mine) >= n) {
		r = tg_error_set(err, TG_ERR_NO_SPACE, "module path '%s' is too long", mine);
		goto out;
	}
	memcpy(canon, mine, strlen(mine) + 1);
	r = 0;
out:
	return r;
}

/* An absent glob ("") matches anything. */
static int
glob_ok(const char *glob, const char *value)
{
	return glob[0] == '\0' || fnmatch(glob, value, 0) == 0;
}

int
tg_ca_hsm_token_check(const struct tg_ca_policy *pol, const char *canon,
                      const struct tg_p11_token_info *ti, struct tg_error *err)
{
	const struct tg_ca_hsm_token *e;
	char theirs[PATH_MAX];
	size_t i;
	int r = TG_ERR_POLICY;

	for (i = 0; i < pol->nhsm_tokens; i++) {
		e = &pol->hsm_tokens[i];
		if (realpath(e->module, theirs) == NULL || strcmp(theirs, canon) != 0)
			continue;
		if (glob_ok(e->manufacturer, ti->manufacturer) && glob_ok(e->model, ti->model) &&
		    glob_ok(e->serial, ti->serial))
			break;
	}
	if (i == pol->nhsm_tokens) {
		tg_error_set(err, r,
		             "token '%s' (module '%s', manufacturer '%s', model '%s', serial "
		             "'%s') matches no entry of hsm_tokens in the CA policy "
		             "(policy.yaml); if it is an HSM this CA trusts, list it: "
		             "{module: %s, manufacturer: \"%s\", model: \"%s\", serial: \"%s\"}",
		             ti->label, canon, ti->manufacturer, ti->model, ti->serial, canon,
		             ti->manufacturer, ti->model, ti->serial);
		goto out;
	}
	r = 0;
out:
	return r;
}

static int
no_hsm_listed(struct tg_error *err)
{
	return tg_error_set(err, TG_ERR_POLICY,
	                    "the CA policy lists no HSM (hsm_tokens in policy.yaml is "
	                    "empty), so no HSM key is certified (level hsm-operator); list "
	                    "the HSM's PKCS#11 module and token there, e.g. hsm_tokens: "
	                    "[{module: /usr/lib/x/pkcs11.so, manufacturer: \"Vendor\", "
	                    "model: \"Model*\", serial: \"*\"}]");
}

/*
 * Without module-path or module-name: the first module hsm_tokens lists
 * that holds a token matching the URI (no login, no PIN spent). *uri_out
 * (wipe and free) names that module; canon its canonical path.
 */
static int
module_pick(struct tg_p11 *p11, const struct tg_ca_policy *pol, struct tg_p11_uri *u,
            char **uri_out, char *canon, size_t n, struct tg_error *err)
{
	struct tg_p11_token_info *v = NULL;
	char path[PATH_MAX], listed[HSM_LIST_MAX], *uri = NULL;
	size_t i, cnt = 0;
	int r = TG_ERR_POLICY;

	if (pol->nhsm_tokens == 0) {
		no_hsm_listed(err);
		goto out;
	}
	for (i = 0; i < pol->nhsm_tokens; i++) {
		if (realpath(pol->hsm_tokens[i].module, path) == NULL)
			continue;
		tg_strfreezero(uri);
		uri = NULL;
		free(v);
		v = NULL;
		if (tg_p11_uri_with_module(u, path, &uri, err) != 0)
			goto out;
		if (tg_p11_tokens_list(p11, uri, &v, &cnt, NULL) == 0 && cnt > 0)
			break;
	}
	if (i == pol->nhsm_tokens) {
		modules_str(pol, listed, sizeof(listed));
		tg_error_set(err, r,
		             "no token matching the --hsm-key URI in the modules hsm_tokens "
		             "lists (%s); the CA loads no other module (never p11-kit's "
		             "proxy): check the URI's token=, or list the HSM's module in "
		             "hsm_tokens of policy.yaml",
		             listed);
		goto out;
	}
	if (strlen(path) >= n) {
		r = tg_error_set(err, TG_ERR_NO_SPACE, "module path '%s' is too long", path);
		goto out;
	}
	memcpy(canon, path, strlen(path) + 1);
	*uri_out = uri;
	uri = NULL;
	r = 0;
out:
	free(v);
	tg_strfreezero(uri);
	return r;
}

/* The file the URI's module-path names, or the one p11-kit registers
 * for its module-name, into path; "" when the URI names no module. Loads
 * nothing but p11-kit's registry (for module-name). */
static int
module_named(const struct tg_p11_uri *u, char *path, size_t n, struct tg_error *err)
{
	struct tg_p11_module_info *mods = NULL;
	const char *mp = tg_p11_uri_get(u, TG_P11_URI_MODULE_PATH);
	const char *mn = tg_p11_uri_get(u, TG_P11_URI_MODULE_NAME);
	size_t nmods = 0, i;
	int r = 0;

	path[0] = '\0';
	if (mp == NULL && mn != NULL) {
		if ((r = tg_p11_modules_list(&mods, &nmods, err)) != 0)
			goto out;
		for (i = 0; i < nmods && strcmp(mods[i].name, mn) != 0; i++)
			;
		if (i == nmods) {
			r = tg_error_set(err, TG_ERR_MODULE,
			                 "no PKCS#11 module named '%s' is registered with "
			                 "p11-kit; use module-path= with a module hsm_tokens "
			                 "lists",
			                 mn);
			goto out;
		}
		mp = mods[i].path;
	}
	if (mp != NULL && (size_t)snprintf(path, n, "%s", mp) >= n)
		r = tg_error_set(err, TG_ERR_NO_SPACE, "module path '%s' is too long", mp);
out:
	free(mods);
	return r;
}

/* The module the URI names, checked before it is loaded; *uri_out names
 * it by its canonical path. */
static int
module_select(struct tg_p11 *p11, const struct tg_ca_policy *pol, struct tg_p11_uri *u,
              char **uri_out, char *canon, size_t n, struct tg_error *err)
{
	char path[PATH_MAX];
	int r;

	if ((r = module_named(u, path, sizeof(path), err)) != 0)
		goto out;
	if (path[0] == '\0') {
		r = module_pick(p11, pol, u, uri_out, canon, n, err);
		goto out;
	}
	if ((r = tg_ca_hsm_module_check(pol, path, canon, n, err)) != 0 ||
	    (r = tg_p11_uri_with_module(u, canon, uri_out, err)) != 0)
		goto out;
	r = 0;
out:
	return r;
}

int
tg_ca_hsm_precheck(const struct tg_ca_policy *pol, const char *uri, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	char path[PATH_MAX], canon[PATH_MAX];
	int r;

	if ((r = tg_p11_uri_parse(uri, &u, err)) != 0 ||
	    (r = module_named(u, path, sizeof(path), err)) != 0)
		goto out;
	if (path[0] != '\0')
		r = tg_ca_hsm_module_check(pol, path, canon, sizeof(canon), err);
	else if (pol->nhsm_tokens == 0)
		r = no_hsm_listed(err);
out:
	tg_p11_uri_free(u);
	return r;
}

/* Replaces what is not printable ASCII, for the provenance extension. */
static void
printable_copy(char *dst, size_t n, const char *src)
{
	size_t i;

	snprintf(dst, n, "%s", src);
	for (i = 0; dst[i] != '\0'; i++) {
		if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] >= 0x7f)
			dst[i] = '?';
	}
}

/*
 * The private key signs a fresh random challenge on the token, through the
 * very object whose attributes were checked (tg_p11_key_prove), and the
 * signature must verify with the CSR's public key. Only that private key
 * object can make it.
 */
static int
challenge(struct tg_p11_key *k, EVP_PKEY *csrkey, struct tg_error *err)
{
	const char *label = tg_p11_key_label(k);
	int r;

	r = tg_p11_key_prove(k, csrkey, err);
	if (r == TG_ERR_CERT_MISMATCH) {
		/* the CA's own words replace libtgp11's */
		r = tg_error_set(err, TG_ERR_CSR,
		                 "HSM key '%s' signed the CA's random challenge on the "
		                 "token, but the signature does not verify with the CSR's "
		                 "public key: the CSR is not for this HSM key (public-key "
		                 "and certificate objects on the token are not evidence)",
		                 label);
	} else if (r != 0) {
		r = tg_error_wrap(
		    err, r, "HSM key '%s' could not sign the CA's challenge on the token", label);
	}
	return r;
}

int
tg_ca_hsm_check(const struct tg_ca_policy *pol, const char *uri, unsigned flags, EVP_PKEY *csrkey,
                struct tg_prov *prov, struct tg_error *err)
{
	const struct tg_p11_token_info *ti;
	struct tg_p11_uri *u = NULL;
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust t;
	struct tg_att_facts f;
	enum tg_att_pin pin = TG_ATT_PIN_NEVER;
	char canon[PATH_MAX], *kuri = NULL;
	int r;

	if ((r = tg_p11_uri_parse(uri, &u, err)) != 0)
		goto out;
	if ((flags & TG_CA_HSM_NO_PIN_VALUE) && tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE) != NULL) {
		r = tg_error_set(err, TG_ERR_USAGE,
		                 "--hsm-key: the URI holds pin-value=, and a PIN on the "
		                 "command line is visible to every user in ps; use "
		                 "pin-source=file:PATH in the URI or set TOKENGATE_PIN");
		goto out;
	}
	if ((r = tg_p11_new(&p11, err)) != 0 ||
	    (r = module_select(p11, pol, u, &kuri, canon, sizeof(canon), err)) != 0)
		goto out;
	/* the CA checks the trust attributes itself, so it can say which failed */
	if ((r = tg_p11_key_find(p11, kuri, TG_P11_KEY_ALLOW_EXPORTABLE | TG_P11_KEY_ALLOW_IMPORTED,
	                         &k, err)) != 0)
		goto out;
	ti = tg_p11_token_get_info(tg_p11_key_token(k));
	tg_p11_key_trust(k, &t);
	if ((r = tg_ca_hsm_token_check(pol, canon, ti, err)) != 0 ||
	    (r = tg_ca_hsm_rules(&t, ti->login_required, tg_p11_key_label(k), &pin, err)) != 0 ||
	    (r = challenge(k, csrkey, err)) != 0)
		goto out;
	memset(prov, 0, sizeof(*prov));
	prov->version = TG_PROV_VERSION;
	prov->level = TG_PROV_HSM_OPERATOR;
	snprintf(prov->serial, sizeof(prov->serial), "%s",
	         ti->serial[0] != '\0' ? ti->serial : "unknown");
	prov->pin_policy = pin;
	prov->touch_policy = TG_ATT_TOUCH_NEVER;
	prov->has_token_model = 1;
	printable_copy(prov->token_manufacturer, sizeof(prov->token_manufacturer),
	               ti->manufacturer);
	printable_copy(prov->token_model, sizeof(prov->token_model), ti->model);
	memset(&f, 0, sizeof(f));
	f.pin_policy = prov->pin_policy;
	f.touch_policy = prov->touch_policy;
	r = tg_ca_policy_check(pol, &f, TG_CA_CHECK_PIN | TG_CA_CHECK_TOUCH, err);
out:
	tg_strfreezero(kuri);
	tg_p11_key_free(k);
	tg_p11_free(p11);
	tg_p11_uri_free(u);
	return r;
}
