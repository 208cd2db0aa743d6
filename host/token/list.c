/*
 * list.c — `tokengate token list`: the modules, their tokens and the keys
 * and certificates on them, each with a pkcs11: URI, filtered by --uri
 * (tok-int.h). A PIN is tried only with --login, and only on the one token
 * the URI selects; which tokens match is decided before any login.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_hex.h"
#include "tg_secret.h"
#include "tok-int.h"

#define WHAT      "token list"
#define SHOWN_MAX 512 /* the URI's path part, as named in messages */
#define NAMES_MAX 512 /* a list of names in a message */

static const char usage[] =
    "usage: tokengate token list [--uri URI] [--login] [--json]\n\n"
    "Lists the PKCS#11 modules (those registered with p11-kit, or the one the\n"
    "URI names by module-path= or module-name=), their tokens that match URI\n"
    "(default: all) and the keys (algorithm, id, label, trust attributes) and\n"
    "certificates on them that match its object=, id= and type=, each with a\n"
    "pkcs11: URI that names it. A URI whose token or object attributes match\n"
    "nothing is a failure (exit 1), as is a module that cannot be listed.\n"
    "Private keys are often hidden until you log in: --login logs in to the\n"
    "one token the URI selects (add token= or serial= until it selects one);\n"
    "no PIN is ever tried on another token. --json prints the listing as JSON.\n"
    "\n" TG_TOKCMD_PIN_HELP "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const struct tg_cli_opt opts[] = {
    {"uri", TG_CLI_ARG_REQUIRED, TOK_OPT_URI},
    {"login", TG_CLI_ARG_NONE, TOK_OPT_LOGIN},
    {"json", TG_CLI_ARG_NONE, TOK_OPT_JSON},
    {NULL, 0, 0},
};

/* The tokens of one module that match the URI. */
struct mod_tokens {
	struct tg_p11_module_info mi;
	struct tg_p11_token_info *tv;
	size_t nt;
	int r; /* tg_p11_tokens_list's result */
	struct tg_error err;
};

/* The whole listing's state. */
struct listing {
	const struct tg_tokcmd_opts *o;
	struct tg_p11 *p;
	struct tg_p11_uri *u; /* the user's URI, or "pkcs11:" */
	char shown[SHOWN_MAX];
	struct mod_tokens *mods;
	size_t nmods;
	size_t matched;    /* initialized tokens that match, all modules */
	size_t objects;    /* objects shown */
	int object_filter; /* the URI names objects (object=, id=, type=) */
	int failed;        /* a module or token could not be listed */
	json_t *jmods;     /* --json: the modules array */
};

/* The URI as shown in messages: its path part only (a pin-value lives in
 * the query and is never shown). */
static void
uri_shown(const char *uri, char *buf, size_t n)
{
	snprintf(buf, n, "%.*s", (int)strcspn(uri, "?"), uri);
}

/* The registered modules' names, ", "-separated, into buf. */
static const char *
names(const struct tg_p11_module_info *mv, size_t nm, char *buf, size_t n)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < nm && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s'%s'", i ? ", " : "", mv[i].name);
	if (nm == 0)
		snprintf(buf, n, "none");
	return buf;
}

/*
 * The modules to list: the URI's module-path, its module-name (looked up
 * among the registered ones), TOKENGATE_PKCS11_MODULE, or every module
 * registered with p11-kit. *out is an array of *n (free with free()).
 */
static int
modules_select(const struct tg_p11_uri *u, struct tg_p11_module_info **out, size_t *n,
               struct tg_error *err)
{
	struct tg_p11_module_info *mv = NULL;
	const char *mp = tg_p11_uri_get(u, TG_P11_URI_MODULE_PATH);
	const char *mn = tg_p11_uri_get(u, TG_P11_URI_MODULE_NAME);
	char nb[NAMES_MAX];
	size_t nm = 0, i;
	int r = TG_ERR_ALLOC;

	*out = NULL;
	*n = 0;
	if (mp != NULL || (mn == NULL && getenv("TOKENGATE_PKCS11_MODULE") != NULL)) {
		if ((mv = calloc(1, sizeof(*mv))) == NULL)
			goto out;
		snprintf(mv->path, sizeof(mv->path), "%s",
		         mp != NULL ? mp : tg_p11_default_module());
		nm = 1;
	} else if ((r = tg_p11_modules_list(&mv, &nm, err)) != 0) {
		goto out;
	} else if (mn != NULL) {
		for (i = 0; i < nm && strcmp(mv[i].name, mn) != 0; i++)
			;
		if (i == nm) {
			r = tg_error_set(err, TG_ERR_MODULE,
			                 "no PKCS#11 module named '%s' is registered with p11-kit "
			                 "(registered: %s); use one of those names, or "
			                 "module-path=/path/module.so",
			                 mn, names(mv, nm, nb, sizeof(nb)));
			goto out;
		}
		mv[0] = mv[i];
		nm = 1;
	}
	*out = mv;
	*n = nm;
	mv = NULL;
	r = 0;
out:
	free(mv);
	return r;
}

/* Lists the matching tokens of every selected module into l->mods. */
static int
tokens_collect(struct listing *l, struct tg_error *err)
{
	struct tg_p11_module_info *mv = NULL;
	struct mod_tokens *m;
	char *muri = NULL;
	size_t nm = 0, i, j;
	int r;

	if ((r = modules_select(l->u, &mv, &nm, err)) != 0)
		goto out;
	r = TG_ERR_ALLOC;
	if (nm > 0 && (l->mods = calloc(nm, sizeof(*l->mods))) == NULL)
		goto out;
	for (i = 0; i < nm; i++) {
		m = &l->mods[l->nmods++];
		m->mi = mv[i];
		tg_error_clear(&m->err);
		/* the user's URI (PIN included, for tg_p11_tokens_list only) with
		 * this module's path */
		if ((m->r = tg_p11_uri_with_module(l->u, m->mi.path, &muri, &m->err)) == 0)
			m->r = tg_p11_tokens_list(l->p, muri, &m->tv, &m->nt, &m->err);
		tg_strfreezero(muri);
		muri = NULL;
		l->failed |= m->r != 0;
		for (j = 0; j < m->nt; j++)
			l->matched += m->tv[j].initialized != 0;
	}
	r = 0;
out:
	free(mv);
	return r;
}

/* "'a' (module m), 'b' (module n)": the matching tokens, into buf. */
static const char *
matches(const struct listing *l, char *buf, size_t n)
{
	size_t i, j, o = 0;

	buf[0] = '\0';
	for (i = 0; i < l->nmods; i++)
		for (j = 0; j < l->mods[i].nt && o < n; j++)
			if (l->mods[i].tv[j].initialized)
				o += (size_t)snprintf(buf + o, n - o, "%s'%s' (serial %s, %s)",
				                      o ? ", " : "", l->mods[i].tv[j].label,
				                      l->mods[i].tv[j].serial,
				                      l->mods[i].mi.name[0] ? l->mods[i].mi.name
				                                            : l->mods[i].mi.path);
	return buf;
}

/* 1 when the object matches the URI's object=, id= and type=. */
static int
object_matches(const struct tg_p11_uri *u, const struct tg_p11_object_info *ob)
{
	static const struct {
		const char *name;
		enum tg_p11_obj_class cls;
	} types[] = {
	    {"private", TG_P11_OBJ_PRIVATE_KEY},
	    {"public", TG_P11_OBJ_PUBLIC_KEY},
	    {"cert", TG_P11_OBJ_CERT},
	};
	const char *label = tg_p11_uri_get(u, TG_P11_URI_OBJECT);
	const char *type = tg_p11_uri_get(u, TG_P11_URI_TYPE);
	const uint8_t *id;
	size_t len = 0, i;
	int ok = 1;

	if (label != NULL && strcmp(label, ob->label) != 0)
		ok = 0;
	if (tg_p11_uri_id(u, &id, &len) &&
	    (len != ob->id_full_len || memcmp(id, ob->id, ob->id_len) != 0))
		ok = 0;
	if (type != NULL) {
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp(type, types[i].name) == 0)
				break;
		/* secret-key, data: never listed */
		if (i == sizeof(types) / sizeof(types[0]) || types[i].cls != ob->cls)
			ok = 0;
	}
	return ok;
}

static const char *
class_name(enum tg_p11_obj_class c)
{
	const char *s = "other";

	switch (c) {
	case TG_P11_OBJ_PRIVATE_KEY:
		s = "private-key";
		break;
	case TG_P11_OBJ_PUBLIC_KEY:
		s = "public-key";
		break;
	case TG_P11_OBJ_CERT:
		s = "certificate";
		break;
	default:
		break;
	}
	return s;
}

/* The id of a listed object in hex: an id longer than the listing keeps
 * (64 bytes) shows its first 64 bytes and "...(N bytes)". */
static void
id_hex(const struct tg_p11_object_info *ob, char *buf, size_t bufsz)
{
	size_t o;

	if (tg_hex_encode(ob->id, ob->id_len, buf, bufsz) != 0)
		buf[0] = '\0';
	o = strlen(buf);
	if (ob->id_full_len > ob->id_len)
		snprintf(buf + o, bufsz - o, "...(%zu bytes)", ob->id_full_len);
}

static json_t *
object_json(const struct tg_p11_object_info *o, const char *uri)
{
	char idhex[2 * sizeof(o->id) + 32];
	json_t *j = json_object();

	id_hex(o, idhex, sizeof(idhex));
	json_object_set_new(j, "class", json_string(class_name(o->cls)));
	json_object_set_new(j, "label", json_string(o->label));
	json_object_set_new(j, "id", json_string(idhex));
	json_object_set_new(j, "uri", uri != NULL ? json_string(uri) : json_null());
	json_object_set_new(j, "algorithm", json_string(tg_p11_alg_name(o->alg)));
	json_object_set_new(j, "bits", json_integer(o->bits));
	if (o->cls == TG_P11_OBJ_PRIVATE_KEY)
		json_object_set_new(j, "trust", tg_tokcmd_trust_json(&o->trust));
	if (o->cls == TG_P11_OBJ_CERT) {
		json_object_set_new(j, "subject", json_string(o->subject));
		json_object_set_new(j, "not_after", json_string(o->not_after));
	}
	return j;
}

static void
object_print(const struct tg_p11_object_info *o, const char *uri)
{
	char idhex[2 * sizeof(o->id) + 32];
	const struct tg_p11_trust *t = &o->trust;

	id_hex(o, idhex, sizeof(idhex));
	printf("    %-11s id=%s label='%s' %s", class_name(o->cls), idhex[0] ? idhex : "-",
	       o->label, tg_p11_alg_name(o->alg));
	if (o->cls == TG_P11_OBJ_PRIVATE_KEY)
		printf(" trust=%s (sensitive=%s extractable=%s never_extractable=%s "
		       "always_sensitive=%s local=%s)",
		       tg_p11_verdict_name(t->verdict), tg_tokcmd_tri(t->sensitive),
		       tg_tokcmd_tri(t->extractable), tg_tokcmd_tri(t->never_extractable),
		       tg_tokcmd_tri(t->always_sensitive), tg_tokcmd_tri(t->local));
	if (o->cls == TG_P11_OBJ_CERT)
		printf(" subject=%s not_after=%s", o->subject, o->not_after);
	printf("\n      uri: %s\n", uri != NULL ? uri : "-");
}

/* The objects of one token that match the URI; adds to jobjs or prints. */
static void
objects_show(struct listing *l, const struct tg_p11_token_info *ti,
             const struct tg_p11_object_info *ov, size_t no, json_t *jobjs)
{
	char *uri;
	size_t i;

	for (i = 0; i < no; i++) {
		if (!object_matches(l->u, &ov[i]))
			continue;
		l->objects++;
		uri = tg_tokcmd_uri(ti, &ov[i]);
		if (jobjs != NULL)
			json_array_append_new(jobjs, object_json(&ov[i], uri));
		else
			object_print(&ov[i], uri);
		free(uri);
	}
}

/* A URI naming exactly the listed token ti: its module and slot (the slot
 * id comes from the listing made in this process). Heap, or NULL. */
static char *
token_open_uri(const struct tg_p11_token_info *ti, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	char base[64], *s = NULL;

	snprintf(base, sizeof(base), "pkcs11:slot-id=%lu", ti->slot_id);
	if (tg_p11_uri_parse(base, &u, err) == 0)
		(void)tg_p11_uri_with_module(u, ti->module, &s, err);
	tg_p11_uri_free(u);
	return s;
}

static json_t *
token_json(const struct tg_p11_token_info *ti, const char *uri)
{
	json_t *jt = json_object();

	json_object_set_new(jt, "label", json_string(ti->label));
	json_object_set_new(jt, "manufacturer", json_string(ti->manufacturer));
	json_object_set_new(jt, "model", json_string(ti->model));
	json_object_set_new(jt, "serial", json_string(ti->serial));
	json_object_set_new(jt, "uri", uri != NULL ? json_string(uri) : json_null());
	json_object_set_new(jt, "library", json_string(ti->lib_desc));
	json_object_set_new(jt, "slot", json_string(ti->slot_desc));
	json_object_set_new(jt, "initialized", json_boolean(ti->initialized));
	json_object_set_new(jt, "login_required", json_boolean(ti->login_required));
	json_object_set_new(jt, "pin_count_low", json_boolean(ti->pin_count_low));
	json_object_set_new(jt, "pin_final_try", json_boolean(ti->pin_final_try));
	json_object_set_new(jt, "pin_locked", json_boolean(ti->pin_locked));
	return jt;
}

static void
token_print(const struct tg_p11_token_info *ti, const char *uri, int login)
{
	printf("  token '%s' manufacturer='%s' model='%s' serial=%s%s%s\n    uri: %s\n", ti->label,
	       ti->manufacturer, ti->model, ti->serial,
	       ti->pin_locked      ? " PIN-LOCKED"
	       : ti->pin_final_try ? " PIN-FINAL-TRY"
	       : ti->pin_count_low ? " PIN-COUNT-LOW"
	                           : "",
	       ti->login_required && !login ? " (private keys may be hidden: --login with a "
	                                      "--uri naming this token shows them)"
	                                    : "",
	       uri != NULL ? uri : "-");
}

/* One token: its description, then (opened, logged in with --login) its
 * objects; adds to jtoks or prints. */
static void
token_show(struct listing *l, const struct tg_p11_token_info *ti, json_t *jtoks)
{
	struct tg_p11_token *t = NULL;
	struct tg_p11_object_info *ov = NULL;
	struct tg_error err;
	char *turi = tg_tokcmd_uri(ti, NULL), *ouri = NULL;
	json_t *jt = NULL, *jobjs = NULL;
	size_t no = 0;
	int r = TG_ERR_NOT_FOUND;

	tg_error_clear(&err);
	if (jtoks != NULL) {
		jt = token_json(ti, turi);
		jobjs = json_array();
		json_object_set_new(jt, "objects", jobjs);
		json_array_append_new(jtoks, jt);
	} else {
		token_print(ti, turi, l->o->login);
	}
	if (!ti->initialized) {
		tg_error_set(&err, r,
		             "token not initialized (an empty slot of the module); initialize "
		             "it or ignore it");
		goto report;
	}
	if ((ouri = token_open_uri(ti, &err)) == NULL) {
		r = err.code != 0 ? err.code : TG_ERR_ALLOC;
		goto report;
	}
	/* only the one token the URI selects gets here with --login */
	if ((r = tg_p11_token_open(l->p, ouri, &t, &err)) != 0 ||
	    (l->o->login &&
	     (r = tg_p11_token_login(t, l->u, TG_P11_LOGIN_INTERACTIVE, &err)) != 0) ||
	    (r = tg_p11_token_objects_list(t, &ov, &no, &err)) != 0)
		goto report;
	objects_show(l, ti, ov, no, jobjs);
	goto out;
report:
	if (ti->initialized)
		l->failed = 1;
	if (jt != NULL)
		json_object_set_new(jt, "error", json_string(tg_error_msg(&err, r)));
	else
		printf("    error: %s\n", tg_error_msg(&err, r));
out:
	tg_strfreezero(ouri);
	free(turi);
	free(ov);
	tg_p11_token_free(t);
}

static void
module_show(struct listing *l, const struct mod_tokens *m)
{
	json_t *jm = NULL, *jtoks = NULL;
	size_t j;

	if (l->jmods != NULL) {
		jm = json_object();
		jtoks = json_array();
		json_object_set_new(jm, "name", json_string(m->mi.name));
		json_object_set_new(jm, "path", json_string(m->mi.path));
		json_object_set_new(jm, "tokens", jtoks);
		if (m->r != 0)
			json_object_set_new(jm, "error", json_string(tg_error_msg(&m->err, m->r)));
		json_array_append_new(l->jmods, jm);
	} else {
		printf("module %s (%s)\n", m->mi.name[0] ? m->mi.name : "-", m->mi.path);
		if (m->r != 0)
			printf("  error: %s\n", tg_error_msg(&m->err, m->r));
		else if (m->nt == 0)
			printf("  no tokens\n");
	}
	for (j = 0; j < m->nt; j++)
		token_show(l, &m->tv[j], jtoks);
}

/*
 * Before anything is opened or logged in to: a URI that matches no token is
 * a failure; --login needs a URI that selects exactly one. 0 to go on,
 * else the exit code (message printed).
 */
static int
selection_check(struct listing *l)
{
	char buf[NAMES_MAX];
	int rc = 0;

	/* a URI with path attributes selects tokens; one without (say only
	 * ?module-name=) lists whatever its modules hold */
	if (strcmp(l->shown, "pkcs11:") != 0 && l->matched == 0 && !l->failed) {
		fprintf(stderr,
		        "tokengate %s: no token matches '%s'; run 'tokengate token list' to see "
		        "the tokens present and their URIs\n",
		        WHAT, l->shown);
		rc = TG_EXIT_FAIL;
	} else if (l->o->login && l->o->uri == NULL) {
		rc = tg_cmd_usage_error(WHAT,
		                        "--login needs --uri naming the one token to log in to "
		                        "(e.g. --uri 'pkcs11:token=LABEL'): a PIN is only tried on "
		                        "the token you select");
	} else if (l->o->login && l->matched > 1) {
		rc = tg_cmd_usage_error(WHAT,
		                        "--login needs a --uri that selects exactly one token, and "
		                        "'%s' matches %zu: %s; add token= or serial= to it (no PIN "
		                        "was tried)",
		                        l->shown, l->matched, matches(l, buf, sizeof(buf)));
	}
	return rc;
}

static int
list_run(const struct tg_tokcmd_opts *o)
{
	struct listing l;
	struct tg_error err;
	json_t *root = NULL;
	size_t i;
	const uint8_t *id;
	size_t idlen;
	int r, rc = TG_EXIT_FAIL;

	memset(&l, 0, sizeof(l));
	l.o = o;
	tg_error_clear(&err);
	uri_shown(o->uri != NULL ? o->uri : "pkcs11:", l.shown, sizeof(l.shown));
	if ((r = tg_p11_new(&l.p, &err)) != 0 ||
	    (r = tg_p11_uri_parse(o->uri != NULL ? o->uri : "pkcs11:", &l.u, &err)) != 0 ||
	    (r = tokens_collect(&l, &err)) != 0) {
		rc = tg_cmd_fail(WHAT, r, &err);
		goto out;
	}
	l.object_filter = tg_p11_uri_get(l.u, TG_P11_URI_OBJECT) != NULL ||
	                  tg_p11_uri_get(l.u, TG_P11_URI_TYPE) != NULL ||
	                  tg_p11_uri_id(l.u, &id, &idlen);
	if ((rc = selection_check(&l)) != 0)
		goto out;
	if (o->json) {
		root = json_object();
		l.jmods = json_array();
		json_object_set_new(root, "modules", l.jmods);
	}
	for (i = 0; i < l.nmods; i++)
		module_show(&l, &l.mods[i]);
	if (l.nmods == 0 && !o->json)
		printf("no PKCS#11 modules registered with p11-kit (see p11-kit list-modules)\n");
	if (o->json && tg_tokcmd_json_print(root) != 0) {
		rc = tg_cmd_fail(WHAT, TG_ERR_IO, NULL);
		goto out;
	}
	rc = TG_EXIT_OK;
	if (l.failed) {
		fprintf(stderr,
		        "tokengate %s: a module or token could not be listed (its error "
		        "is shown above)\n",
		        WHAT);
		rc = TG_EXIT_FAIL;
	} else if (l.object_filter && l.objects == 0) {
		fprintf(stderr, "tokengate %s: no object on the matching token(s) matches '%s'%s\n",
		        WHAT, l.shown,
		        o->login ? "" : " (private keys may be hidden until --login)");
		rc = TG_EXIT_FAIL;
	}
out:
	json_decref(root);
	for (i = 0; i < l.nmods; i++)
		free(l.mods[i].tv);
	free(l.mods);
	tg_p11_uri_free(l.u);
	tg_p11_free(l.p);
	return rc;
}

int
tg_tokcmd_list(int argc, char **argv)
{
	struct tg_tokcmd_opts o;
	int rc;

	if (tg_tokcmd_parse(WHAT, opts, usage, argc, argv, &o, &rc))
		rc = list_run(&o);
	return rc;
}
