/*
 * module.c — the libtgp11 context: module loading (p11-kit proxy by
 * default), one load per module and context, fork detection, CKR names.
 */
#include "p11-int.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

#include "tg_secret.h"

#ifndef TG_P11_PROXY_PATH
#define TG_P11_PROXY_PATH TG_P11_PROXY_MODULE
#endif

const char *
tg_p11_default_module(void)
{
	const char *env = getenv("TOKENGATE_PKCS11_MODULE");

	if (env != NULL && env[0] != '\0')
		return env;
	return TG_P11_PROXY_PATH;
}

/*
 * fork() while another thread (a presence watcher, a setup call) holds a
 * context's lock would leave the child a lock nobody can release. The
 * atfork handlers take every context's lock before the fork (waiting for
 * the holder to finish its module call, so the child never starts inside
 * one) and the child gets fresh locks; the parent releases them.
 */
static pthread_mutex_t ctx_mu = PTHREAD_MUTEX_INITIALIZER; /* ctx_list */
static struct tg_p11 *ctx_list;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
atfork_prepare(void)
{
	struct tg_p11 *p;

	pthread_mutex_lock(&ctx_mu);
	for (p = ctx_list; p != NULL; p = p->next)
		pthread_mutex_lock(&p->lock);
}

static void
atfork_parent(void)
{
	struct tg_p11 *p;

	for (p = ctx_list; p != NULL; p = p->next)
		pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&ctx_mu);
}

static void
atfork_child(void)
{
	struct tg_p11 *p;

	/* the child's only thread took these locks in atfork_prepare (as
	 * its parent thread): start them afresh */
	for (p = ctx_list; p != NULL; p = p->next)
		(void)pthread_mutex_init(&p->lock, NULL);
	(void)pthread_mutex_init(&ctx_mu, NULL);
}

static void
atfork_register(void)
{
	(void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int
tg_p11_new(struct tg_p11 **out, struct tg_error *err)
{
	struct tg_p11 *p = NULL;
	int r = TG_ERR_ALLOC;

	if (out == NULL)
		return tg_error_set(err, TG_ERR_INVALID_ARG, "tg_p11_new: out is NULL");
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		tg_error_set(err, r, "out of memory creating the PKCS#11 context");
		goto out;
	}
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		tg_error_set(err, TG_ERR_INTERNAL, "cannot create a mutex");
		free(p);
		p = NULL;
		r = TG_ERR_INTERNAL;
		goto out;
	}
	p->pid = getpid();
	(void)pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&ctx_mu);
	p->next = ctx_list;
	ctx_list = p;
	pthread_mutex_unlock(&ctx_mu);
	*out = p;
	p = NULL;
	r = 0;
out:
	free(p);
	return r;
}

/*
 * libp11 asks its UI method for the PIN of a CKA_ALWAYS_AUTHENTICATE key
 * before each signature (PKCS#11 v2.40 4.9: CKU_CONTEXT_SPECIFIC). We
 * answer non-interactively from the PIN source of the URI the key was found
 * with, and only when one token of the module has such keys: with several
 * we cannot tell which token asks, and a wrong guess would cost a PIN try.
 */
static int
ui_read(UI *ui, UI_STRING *uis)
{
	struct tg_p11_module *m = UI_get0_user_data(ui);
	struct tg_pin_src *src = NULL;
	struct tg_pin pin;
	int ok = 0;

	memset(&pin, 0, sizeof(pin));
	if (m == NULL ||
	    (UI_get_string_type(uis) != UIT_PROMPT && UI_get_string_type(uis) != UIT_VERIFY))
		return 1;
	tg_p11_lock(m->p);
	if (m->auth != NULL && m->auth->next == NULL)
		(void)tg_pin_src_dup(m->auth->pin, &src);
	tg_p11_unlock(m->p);
	if (src == NULL || tg_pin_src_read(src, NULL, 0, &pin, NULL) != 0)
		goto out;
	ok = UI_set_result(ui, uis, pin.v) == 0;
out:
	tg_pin_wipe(&pin);
	tg_pin_src_free(src);
	return ok;
}

int
tg_p11_module_auth_add(struct tg_p11_module *m, CK_SLOT_ID slot, const struct tg_pin_src *pin)
{
	struct tg_p11_auth *a;
	struct tg_pin_src *dup = NULL;
	int r = TG_ERR_ALLOC;

	if (tg_pin_src_dup(pin, &dup) != 0)
		goto out;
	for (a = m->auth; a != NULL; a = a->next) {
		if (a->slot == slot) {
			tg_pin_src_free(a->pin);
			a->pin = dup;
			dup = NULL;
			r = 0;
			goto out;
		}
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto out;
	a->pin = dup;
	dup = NULL;
	a->slot = slot;
	a->next = m->auth;
	m->auth = a;
	r = 0;
out:
	tg_pin_src_free(dup);
	return r;
}

static void
module_free(struct tg_p11_module *m)
{
	struct tg_p11_auth *a, *an;
	struct tg_p11_retired *rt, *rtn;

	if (m == NULL)
		return;
	for (a = m->auth; a != NULL; a = an) {
		an = a->next;
		tg_pin_src_free(a->pin);
		free(a);
	}
	if (m->lp != NULL) {
		if (m->lslots != NULL)
			PKCS11_release_all_slots(m->lp, m->lslots, m->nlslots);
		for (rt = m->retired; rt != NULL; rt = rtn) {
			rtn = rt->next;
			if (rt->slots != NULL)
				PKCS11_release_all_slots(m->lp, rt->slots, rt->n);
			free(rt);
		}
		PKCS11_CTX_unload(m->lp); /* libp11's C_Finalize */
		PKCS11_CTX_free(m->lp);
	}
	/* ours: CKR_CRYPTOKI_NOT_INITIALIZED after libp11's for a plain
	 * module; p11-kit's proxy counts initializations and needs both */
	if (m->f != NULL)
		(void)m->f->C_Finalize(NULL);
	if (m->dl != NULL)
		dlclose(m->dl);
	if (m->ui != NULL)
		UI_destroy_method(m->ui);
	free(m);
}

void
tg_p11_free(struct tg_p11 *p)
{
	struct tg_p11_module *m, *next;
	struct tg_p11 **pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&ctx_mu);
	for (pp = &ctx_list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&ctx_mu);
	for (m = p->mods; m != NULL; m = next) {
		next = m->next;
		module_free(m);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void
tg_p11_lock(struct tg_p11 *p)
{
	pthread_mutex_lock(&p->lock);
}

void
tg_p11_unlock(struct tg_p11 *p)
{
	pthread_mutex_unlock(&p->lock);
}

void
tg_p11_fork_check(struct tg_p11 *p)
{
	struct tg_p11_module *m;
	CK_C_INITIALIZE_ARGS args;

	if (p->pid == getpid())
		return;
	/* PKCS#11 v2.40 6.7.7: a child must call C_Initialize before using
	 * the module; sessions and logins of the parent are not inherited.
	 * libp11 does the same for its own sessions on its next call. */
	for (m = p->mods; m != NULL; m = m->next) {
		memset(&args, 0, sizeof(args));
		args.flags = CKF_OS_LOCKING_OK;
		(void)m->f->C_Initialize(&args);
	}
	p->pid = getpid();
}

/* The path of a module registered with p11-kit under `name`. */
static int
module_path_by_name(const char *name, char *path, size_t pathsz, struct tg_error *err)
{
	CK_FUNCTION_LIST **mods = NULL;
	CK_FUNCTION_LIST *mod;
	char *fn = NULL;
	int r = TG_ERR_MODULE;

	mods = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
	if (mods == NULL) {
		tg_error_set(err, r, "cannot read the p11-kit module registry: %s",
		             p11_kit_message() ? p11_kit_message() : "unknown error");
		goto out;
	}
	mod = p11_kit_module_for_name(mods, name);
	if (mod == NULL || (fn = p11_kit_module_get_filename(mod)) == NULL) {
		tg_error_set(err, r,
		             "no PKCS#11 module named '%s' is registered with p11-kit; "
		             "list them with 'p11-kit list-modules' or use module-path=",
		             name);
		goto out;
	}
	if ((size_t)snprintf(path, pathsz, "%s", fn) >= pathsz) {
		tg_error_set(err, r, "module path of '%s' is too long", name);
		goto out;
	}
	r = 0;
out:
	free(fn);
	if (mods != NULL)
		p11_kit_modules_release(mods);
	return r;
}

int
tg_p11_modules_list(struct tg_p11_module_info **out, size_t *n, struct tg_error *err)
{
	CK_FUNCTION_LIST **mods = NULL;
	struct tg_p11_module_info *v = NULL;
	char *name, *fn, *dis;
	size_t cnt = 0, k = 0, i;
	int r = TG_ERR_MODULE;

	*out = NULL;
	*n = 0;
	mods = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
	if (mods == NULL) {
		tg_error_set(err, r, "cannot read the p11-kit module registry: %s",
		             p11_kit_message() ? p11_kit_message() : "unknown error");
		goto out;
	}
	while (mods[cnt] != NULL)
		cnt++;
	if (cnt > 0 && (v = calloc(cnt, sizeof(*v))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (i = 0; i < cnt; i++) {
		dis = p11_kit_config_option(mods[i], "disable-in");
		name = p11_kit_module_get_name(mods[i]);
		fn = p11_kit_module_get_filename(mods[i]);
		if (fn != NULL && (dis == NULL || strstr(dis, "p11-kit-proxy") == NULL)) {
			snprintf(v[k].name, sizeof(v[k].name), "%s", name ? name : "");
			snprintf(v[k].path, sizeof(v[k].path), "%s", fn);
			k++;
		}
		free(dis);
		free(name);
		free(fn);
	}
	*out = k ? v : NULL;
	*n = k;
	if (k)
		v = NULL;
	r = 0;
out:
	free(v);
	if (mods != NULL)
		p11_kit_modules_release(mods);
	return r;
}

static int
module_load(const char *path, struct tg_p11_module **out, struct tg_error *err)
{
	struct tg_p11_module *m = NULL;
	CK_C_GetFunctionList gfl;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	int r = TG_ERR_MODULE;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory loading %s", path);
		goto out;
	}
	snprintf(m->path, sizeof(m->path), "%s", path);
	if ((m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		tg_error_set(err, r,
		             "cannot load PKCS#11 module '%s': %s; install it or fix "
		             "module-path=",
		             path, dlerror());
		goto out;
	}
	gfl = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
	if (gfl == NULL || gfl(&m->f) != CKR_OK || m->f == NULL) {
		tg_error_set(err, r, "'%s' is not a PKCS#11 module (no C_GetFunctionList)", path);
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		tg_error_set(err, r, "PKCS#11 module '%s' failed to initialize: %s", path,
		             tg_p11_ckr_name(rv));
		m->f = NULL;
		goto out;
	}
	/* libp11 dlopens the same file (same handle) and tolerates
	 * CKR_CRYPTOKI_ALREADY_INITIALIZED, so both share one instance and
	 * one login state. */
	if ((m->lp = PKCS11_CTX_new()) == NULL || PKCS11_CTX_load(m->lp, path) != 0) {
		tg_error_set(err, r, "libp11 could not load PKCS#11 module '%s'", path);
		/* a context whose load failed has no module to unload:
		 * PKCS11_CTX_unload (in module_free) would crash on it */
		if (m->lp != NULL)
			PKCS11_CTX_free(m->lp);
		m->lp = NULL;
		goto out;
	}
	if ((m->ui = UI_create_method("tokengate PIN source")) == NULL ||
	    UI_method_set_reader(m->ui, ui_read) != 0 ||
	    PKCS11_set_ui_method(m->lp, m->ui, m) != 0) {
		tg_error_set(err, r, "cannot set up PIN handling for module '%s'", path);
		goto out;
	}
	if (PKCS11_enumerate_slots(m->lp, &m->lslots, &m->nlslots) != 0) {
		m->lslots = NULL;
		m->nlslots = 0;
	}
	*out = m;
	m = NULL;
	r = 0;
out:
	if (m != NULL && m->lp != NULL && m->f == NULL) {
		PKCS11_CTX_free(m->lp);
		m->lp = NULL;
	}
	module_free(m);
	return r;
}

int
tg_p11_module_get(struct tg_p11 *p, const struct tg_p11_uri *u, struct tg_p11_module **out,
                  struct tg_error *err)
{
	char path[256];
	const char *mp = NULL, *mn = NULL;
	struct tg_p11_module *m;
	int r;

	tg_p11_fork_check(p);
	if (u != NULL) {
		mp = tg_p11_uri_get(u, TG_P11_URI_MODULE_PATH);
		mn = tg_p11_uri_get(u, TG_P11_URI_MODULE_NAME);
	}
	if (mp != NULL) {
		snprintf(path, sizeof(path), "%s", mp);
	} else if (mn != NULL) {
		if ((r = module_path_by_name(mn, path, sizeof(path), err)) != 0)
			goto out;
	} else {
		snprintf(path, sizeof(path), "%s", tg_p11_default_module());
	}
	for (m = p->mods; m != NULL; m = m->next) {
		if (strcmp(m->path, path) == 0) {
			*out = m;
			r = 0;
			goto out;
		}
	}
	if ((r = module_load(path, &m, err)) != 0)
		goto out;
	m->p = p;
	m->next = p->mods;
	p->mods = m;
	*out = m;
	r = 0;
out:
	return r;
}

int
tg_p11_module_refresh(struct tg_p11_module *m)
{
	struct tg_p11_retired *old = NULL;
	PKCS11_SLOT *slots = NULL;
	unsigned n = 0;
	int r = TG_ERR_PKCS11;

	/* Not PKCS11_update_slots: libp11 0.4.12 reads the old slot array as
	 * an array of pointers (a crash with two slots or more) and frees the
	 * slot objects it reuses (OpenSC/libp11 PR #504). Nor a release of the
	 * old slots: the last reference to a libp11 slot object calls
	 * C_CloseAllSessions on its slot id, closing our sessions too (and the
	 * login with them). A fresh enumeration replaces the array (with new
	 * session pools: on SoftHSM2, libp11's key enumeration over its old
	 * pooled session was seen failing with CKR_OPERATION_ACTIVE); the old
	 * one is kept until the module is unloaded, at most TG_P11_RETIRED_MAX. */
	if (m->nretired >= TG_P11_RETIRED_MAX || (old = calloc(1, sizeof(*old))) == NULL)
		goto out;
	if (PKCS11_enumerate_slots(m->lp, &slots, &n) != 0)
		goto out;
	old->slots = m->lslots;
	old->n = m->nlslots;
	old->next = m->retired;
	m->retired = old;
	m->nretired++;
	old = NULL;
	m->lslots = slots;
	m->nlslots = n;
	r = 0;
out:
	free(old);
	return r;
}

int
tg_p11_module_rebuild(struct tg_p11_module *m)
{
	if (m->lslots != NULL)
		PKCS11_release_all_slots(m->lp, m->lslots, m->nlslots);
	m->lslots = NULL;
	m->nlslots = 0;
	if (PKCS11_enumerate_slots(m->lp, &m->lslots, &m->nlslots) != 0) {
		m->lslots = NULL;
		m->nlslots = 0;
		return TG_ERR_PKCS11;
	}
	return 0;
}

PKCS11_SLOT *
tg_p11_module_lslot(struct tg_p11_module *m, CK_SLOT_ID id)
{
	PKCS11_SLOT *s = NULL;
	unsigned i;
	int pass;

	for (pass = 0; pass < 2 && s == NULL; pass++) {
		if (pass == 1 && tg_p11_module_refresh(m) != 0)
			break;
		for (i = 0; i < m->nlslots; i++) {
			if (PKCS11_get_slotid_from_slot(&m->lslots[i]) == id) {
				s = &m->lslots[i];
				break;
			}
		}
	}
	return s;
}

const char *
tg_p11_ckr_name(CK_RV rv)
{
	static const struct {
		CK_RV rv;
		const char *name;
	} names[] = {
	    {CKR_OK, "CKR_OK"},
	    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
	    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
	    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
	    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
	    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
	    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
	    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
	    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
	    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
	    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
	    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
	    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
	    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
	    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
	    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
	    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
	    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
	    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
	    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
	    {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
	    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
	    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
	    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
	    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
	    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
	    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
	    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
	    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
	    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
	    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
	    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
	    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
	    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
	    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
	    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
	    {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"},
	    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
	    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
	    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
	    {CKR_NO_EVENT, "CKR_NO_EVENT"},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].rv == rv)
			return names[i].name;
	}
	return "CKR_(unknown)";
}

int
tg_p11_alg_parse(const char *s, enum tg_p11_alg *alg)
{
	/* only the algorithms with a command-line name (the generatable ones) */
	const struct tg_piv_alg *a = tg_piv_alg_by_cli(s);
	int r = TG_ERR_INVALID_ARG;

	if (a != NULL) {
		*alg = (enum tg_p11_alg)a->id;
		r = 0;
	}
	return r;
}

const char *
tg_p11_alg_name(enum tg_p11_alg alg)
{
	const struct tg_piv_alg *a = NULL;
	const char *name = "unknown";

	if (alg == TG_P11_ALG_RSA_OTHER)
		name = "rsa";
	else if (alg == TG_P11_ALG_EC_OTHER)
		name = "ec";
	else if (alg > 0 && alg <= 0xFF && (a = tg_piv_alg_by_id((uint8_t)alg)) != NULL &&
	         a->cli != NULL)
		name = a->cli;
	return name;
}
