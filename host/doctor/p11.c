/* p11.c — PKCS#11 modules and tokens through libtgp11's listing (p11.h). */
#include "p11.h"

#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

#include "tg_err.h"
#include "tg_p11.h"
#include "tg_secret.h"

struct flag_name {
	unsigned long flag;
	const char *name;
};

static const struct flag_name token_flags[] = {
    {CKF_TOKEN_INITIALIZED, "initialized"},
    {CKF_LOGIN_REQUIRED, "login-required"},
    {CKF_USER_PIN_INITIALIZED, "user-pin-set"},
    {CKF_PROTECTED_AUTHENTICATION_PATH, "pin-pad"},
    {CKF_WRITE_PROTECTED, "write-protected"},
    {CKF_USER_PIN_COUNT_LOW, "pin-count-low"},
    {CKF_USER_PIN_FINAL_TRY, "pin-final-try"},
    {CKF_USER_PIN_LOCKED, "pin-locked"},
    {CKF_USER_PIN_TO_BE_CHANGED, "pin-to-be-changed"},
    {CKF_SO_PIN_COUNT_LOW, "so-pin-count-low"},
    {CKF_SO_PIN_FINAL_TRY, "so-pin-final-try"},
    {CKF_SO_PIN_LOCKED, "so-pin-locked"},
    {CKF_SO_PIN_TO_BE_CHANGED, "so-pin-to-be-changed"},
};

void
tg_doctor_p11_flags_each(unsigned long flags, void (*fn)(const char *name, void *arg), void *arg)
{
	size_t i;

	for (i = 0; i < sizeof(token_flags) / sizeof(token_flags[0]); i++) {
		if (flags & token_flags[i].flag)
			fn(token_flags[i].name, arg);
	}
}

/* 1 if the token looks like a PIV card (OpenSC's PIV driver, ykcs11). */
static int
token_is_piv(const struct tg_doctor_token *t)
{
	return (t->manufacturer != NULL && (strcasestr(t->manufacturer, "piv") != NULL ||
	                                    strcasestr(t->manufacturer, "yubico") != NULL)) ||
	       (t->model != NULL && strcasestr(t->model, "piv") != NULL);
}

/* Adds "token '<label>' <what>: <fix>"; takes ownership of fix (NULL when
 * out of memory). */
static int
token_problem_add(struct tg_doctor_report *r, const char *label, char *fix, const char *what)
{
	int rc = TG_ERR_ALLOC;

	if (fix != NULL)
		rc = tg_doctor_problem_add(r, fix, "token '%s' %s", label, what);
	free(fix);
	return rc;
}

/* The user PIN's retry state: locked, final try, count low. */
static int
user_pin_tries_check(struct tg_doctor_report *r, const char *path, const char *label, int piv,
                     unsigned long flags)
{
	int rc = 0;

	if (flags & CKF_USER_PIN_LOCKED)
		rc = token_problem_add(
		    r, label,
		    piv ? tg_doctor_str_printf(
		              "%s", "unblock it with the PUK (yubico-piv-tool -a unblock-pin)")
		        : tg_doctor_str_printf(
		              "unblock it with the SO PIN (pkcs11-tool --module %s "
		              "--token-label '%s' --login --login-type so --init-pin)",
		              path, label),
		    "user PIN is locked");
	else if (flags & CKF_USER_PIN_FINAL_TRY)
		rc = token_problem_add(
		    r, label,
		    tg_doctor_str_printf("%s", "one more wrong PIN locks it: enter it only if you "
		                               "are sure"),
		    "user PIN has one try left");
	else if (flags & CKF_USER_PIN_COUNT_LOW)
		rc = token_problem_add(r, label,
		                       tg_doctor_str_printf("%s", "check which PIN you use before "
		                                                  "trying again (a correct PIN "
		                                                  "resets the count)"),
		                       "user PIN count is low (wrong PINs were entered)");
	return rc;
}

/* PINs that must be set or changed, and a locked SO PIN (PUK). */
static int
pin_setup_check(struct tg_doctor_report *r, const char *path, const char *label, int piv,
                unsigned long flags)
{
	int rc = 0;

	if (!(flags & CKF_USER_PIN_INITIALIZED))
		rc =
		    token_problem_add(r, label,
		                      tg_doctor_str_printf("set it with the SO PIN (pkcs11-tool "
		                                           "--module %s --token-label '%s' --login "
		                                           "--login-type so --init-pin)",
		                                           path, label),
		                      "has no user PIN set");
	else if (flags & CKF_USER_PIN_TO_BE_CHANGED)
		rc = token_problem_add(
		    r, label,
		    piv ? tg_doctor_str_printf("%s", "change it (yubico-piv-tool -a change-pin)")
		        : tg_doctor_str_printf("change it (pkcs11-tool --module %s --token-label "
		                               "'%s' --login --change-pin)",
		                               path, label),
		    "user PIN must be changed before use");
	if (rc == 0 && (flags & CKF_SO_PIN_LOCKED))
		rc = token_problem_add(
		    r, label,
		    tg_doctor_str_printf("%s", piv ? "only a reset helps once the PIN is blocked "
		                                     "too ('yubico-piv-tool -a reset' erases the "
		                                     "token's keys)"
		                                   : "only re-initializing the token helps "
		                                     "(pkcs11-tool --init-token, which erases its "
		                                     "keys)"),
		    "SO PIN (PUK) is locked");
	return rc;
}

/* The PIN problems a token's flags announce. */
static int
token_problems_add(struct tg_doctor_report *r, const struct tg_doctor_module *m,
                   const struct tg_doctor_token *t)
{
	const char *label = t->label != NULL && *t->label != '\0' ? t->label : "(no label)";
	const char *path = m->path != NULL ? m->path : "MODULE";
	int piv = token_is_piv(t), rc = 0;

	/* An uninitialized token (SoftHSM's spare slot) has no PINs to judge. */
	if (!(t->flags & CKF_TOKEN_INITIALIZED))
		goto out;
	if ((rc = user_pin_tries_check(r, path, label, piv, t->flags)) != 0)
		goto out;
	rc = pin_setup_check(r, path, label, piv, t->flags);
out:
	return rc;
}

/* Records one token of the module from libtgp11's listing. */
static int
token_add(struct tg_doctor_report *r, struct tg_doctor_module *m,
          const struct tg_p11_token_info *ti)
{
	struct tg_doctor_token *t = NULL;
	int rc;

	if ((rc = tg_doctor_array_add((void **)&m->slots, &m->n, sizeof(*t), (void **)&t)) != 0)
		goto out;
	rc = TG_ERR_ALLOC;
	t->slot_id = ti->slot_id;
	t->present = 1;
	t->flags = ti->flags;
	if ((t->slot_desc = tg_doctor_str_clean(ti->slot_desc, sizeof(ti->slot_desc))) == NULL ||
	    (t->label = tg_doctor_str_clean(ti->label, sizeof(ti->label))) == NULL ||
	    (t->manufacturer = tg_doctor_str_clean(ti->manufacturer, sizeof(ti->manufacturer))) ==
	        NULL ||
	    (t->model = tg_doctor_str_clean(ti->model, sizeof(ti->model))) == NULL ||
	    (t->serial = tg_doctor_str_clean(ti->serial, sizeof(ti->serial))) == NULL)
		goto out;
	if (m->library == NULL && ti->lib_desc[0] != '\0' &&
	    (m->library = tg_doctor_str_clean(ti->lib_desc, sizeof(ti->lib_desc))) == NULL)
		goto out;
	rc = token_problems_add(r, m, t);
out:
	return rc;
}

/* Records a module failure and its problem line. */
static int
module_fail(struct tg_doctor_report *r, struct tg_doctor_module *m, const char *msg)
{
	int rc = TG_ERR_ALLOC;

	if ((m->error = tg_doctor_str_printf("%s", msg)) == NULL)
		goto out;
	rc =
	    tg_doctor_problem_add(r,
	                          "check its configuration (SoftHSM: SOFTHSM2_CONF and its "
	                          "tokendir; OpenSC: /etc/opensc/opensc.conf) or reinstall its "
	                          "package; to stop using it remove its file from "
	                          "/usr/share/p11-kit/modules",
	                          "PKCS#11 module '%s' (%s) fails: %s", m->name, m->path, m->error);
out:
	return rc;
}

/*
 * Lists the tokens of one registered module through libtgp11 (the module
 * loaded on its own, by path, so one broken module is reported by name
 * instead of hiding the others).
 */
static int
module_add(struct tg_doctor_report *r, struct tg_p11 *p, const struct tg_p11_module_info *mi)
{
	struct tg_doctor_module *m = NULL;
	struct tg_p11_token_info *v = NULL;
	struct tg_p11_uri *u = NULL;
	struct tg_error err;
	char *uri = NULL;
	size_t n = 0, i;
	int rc, code;

	tg_error_clear(&err);
	if ((rc = tg_doctor_array_add((void **)&r->pkcs11.modules, &r->pkcs11.n, sizeof(*m),
	                              (void **)&m)) != 0)
		goto out;
	rc = TG_ERR_ALLOC;
	if ((m->name = tg_doctor_str_printf("%s", mi->name[0] ? mi->name : "(unnamed)")) == NULL ||
	    (m->path = tg_doctor_str_printf("%s", mi->path)) == NULL)
		goto out;
	if ((code = tg_p11_uri_parse("pkcs11:", &u, &err)) != 0 ||
	    (code = tg_p11_uri_with_module(u, mi->path, &uri, &err)) != 0 ||
	    (code = tg_p11_tokens_list(p, uri, &v, &n, &err)) != 0) {
		rc = code == TG_ERR_ALLOC ? code : module_fail(r, m, tg_error_msg(&err, code));
		goto out;
	}
	rc = 0;
	for (i = 0; i < n && rc == 0; i++)
		rc = token_add(r, m, &v[i]);
out:
	free(v);
	tg_strfreezero(uri);
	tg_p11_uri_free(u);
	return rc;
}

int
tg_doctor_p11_probe(struct tg_doctor_report *r)
{
	struct tg_p11_module_info *mods = NULL;
	struct tg_p11 *p = NULL;
	struct tg_error err;
	size_t i, n = 0;
	int rc = TG_ERR_ALLOC, code;

	tg_error_clear(&err);
	if ((code = tg_p11_modules_list(&mods, &n, &err)) != 0) {
		if (code == TG_ERR_ALLOC || (r->pkcs11.error = tg_doctor_str_printf(
		                                 "%s", tg_error_msg(&err, code))) == NULL)
			goto out;
		rc = tg_doctor_problem_add(
		    r,
		    "check p11-kit's configuration (/etc/pkcs11/pkcs11.conf, "
		    "/etc/pkcs11/modules, /usr/share/p11-kit/modules)",
		    "p11-kit cannot load the PKCS#11 modules: %s", r->pkcs11.error);
		goto out;
	}
	if (n == 0) {
		rc = tg_doctor_problem_add(r,
		                           "install opensc-pkcs11 (smart cards and YubiKeys) or "
		                           "softhsm2 (software tokens)",
		                           "no PKCS#11 modules registered");
		goto out;
	}
	if ((code = tg_p11_new(&p, &err)) != 0)
		goto out;
	rc = 0;
	for (i = 0; i < n && rc == 0; i++)
		rc = module_add(r, p, &mods[i]);
out:
	tg_p11_free(p);
	free(mods);
	return rc;
}
