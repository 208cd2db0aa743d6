/* p11.c — PKCS#11 modules and tokens through p11-kit (p11.h). */
#include "p11.h"

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

#include "tg_err.h"

#define P11KIT_OPT_MODULE "module"
#define P11KIT_OPT_TRUST  "trust-policy"

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

static int
slot_add(struct tg_doctor_report *r, struct tg_doctor_module *m, CK_FUNCTION_LIST *f, CK_SLOT_ID id)
{
	struct tg_doctor_token *t = NULL;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	int rc;

	if ((rc = tg_doctor_array_add((void **)&m->slots, &m->n, sizeof(*t), (void **)&t)) != 0)
		goto out;
	rc = TG_ERR_ALLOC;
	t->slot_id = id;
	if ((rv = f->C_GetSlotInfo(id, &si)) != CKR_OK) {
		if ((t->error = tg_doctor_str_printf("C_GetSlotInfo: %s", p11_kit_strerror(rv))) ==
		    NULL)
			goto out;
		rc = 0;
		goto out;
	}
	if ((t->slot_desc = tg_doctor_str_clean((const char *)si.slotDescription,
	                                        sizeof(si.slotDescription))) == NULL)
		goto out;
	t->present = (si.flags & CKF_TOKEN_PRESENT) != 0;
	t->removable = (si.flags & CKF_REMOVABLE_DEVICE) != 0;
	t->hw = (si.flags & CKF_HW_SLOT) != 0;
	rc = 0;
	if (!t->present)
		goto out;
	if ((rv = f->C_GetTokenInfo(id, &ti)) != CKR_OK) {
		rc = TG_ERR_ALLOC;
		if ((t->error = tg_doctor_str_printf("C_GetTokenInfo: %s", p11_kit_strerror(rv))) ==
		    NULL)
			goto out;
		rc = tg_doctor_problem_add(r, "remove and reinsert the token, then try again",
		                           "token in slot '%s' of module '%s' cannot be read: %s",
		                           t->slot_desc, m->name, t->error);
		goto out;
	}
	rc = TG_ERR_ALLOC;
	t->flags = ti.flags;
	if ((t->label = tg_doctor_str_clean((const char *)ti.label, sizeof(ti.label))) == NULL ||
	    (t->manufacturer = tg_doctor_str_clean((const char *)ti.manufacturerID,
	                                           sizeof(ti.manufacturerID))) == NULL ||
	    (t->model = tg_doctor_str_clean((const char *)ti.model, sizeof(ti.model))) == NULL ||
	    (t->serial = tg_doctor_str_clean((const char *)ti.serialNumber,
	                                     sizeof(ti.serialNumber))) == NULL)
		goto out;
	rc = token_problems_add(r, m, t);
out:
	return rc;
}

/* Records a module failure and its problem line. */
static int
module_fail(struct tg_doctor_report *r, struct tg_doctor_module *m, const char *call, CK_RV rv)
{
	int rc = TG_ERR_ALLOC;

	if ((m->error = tg_doctor_str_printf("%s: %s (0x%lX)", call, p11_kit_strerror(rv),
	                                     (unsigned long)rv)) == NULL)
		goto out;
	rc = tg_doctor_problem_add(r,
	                           "check its configuration (SoftHSM: SOFTHSM2_CONF and its "
	                           "tokendir; OpenSC: /etc/opensc/opensc.conf) or reinstall its "
	                           "package; to stop using it remove its file from "
	                           "/usr/share/p11-kit/modules",
	                           "PKCS#11 module '%s' (%s) fails: %s", m->name,
	                           m->path ? m->path : "no path", m->error);
out:
	return rc;
}

/* Initializes one module, records its slots, finalizes it. */
static int
module_probe(struct tg_doctor_report *r, struct tg_doctor_module *m, CK_FUNCTION_LIST *f)
{
	CK_SLOT_ID *ids = NULL;
	CK_ULONG n = 0, i;
	CK_INFO info;
	CK_RV rv;
	int inited = 0, rc = 0;

	if ((rv = f->C_Initialize(NULL)) != CKR_OK) {
		rc = module_fail(r, m, "C_Initialize", rv);
		goto out;
	}
	inited = 1;
	if (f->C_GetInfo(&info) == CKR_OK) {
		m->version_major = info.libraryVersion.major;
		m->version_minor = info.libraryVersion.minor;
		if ((m->library = tg_doctor_str_clean((const char *)info.libraryDescription,
		                                      sizeof(info.libraryDescription))) == NULL ||
		    (m->manufacturer = tg_doctor_str_clean((const char *)info.manufacturerID,
		                                           sizeof(info.manufacturerID))) == NULL) {
			rc = TG_ERR_ALLOC;
			goto out;
		}
	}
	if ((rv = f->C_GetSlotList(CK_FALSE, NULL, &n)) != CKR_OK) {
		rc = module_fail(r, m, "C_GetSlotList", rv);
		goto out;
	}
	if (n == 0)
		goto out;
	if ((ids = calloc(n, sizeof(*ids))) == NULL) {
		rc = TG_ERR_ALLOC;
		goto out;
	}
	/* A slot may appear between the two calls: then list what fits. */
	rv = f->C_GetSlotList(CK_FALSE, ids, &n);
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) {
		rc = module_fail(r, m, "C_GetSlotList", rv);
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++)
		rc = slot_add(r, m, f, ids[i]);
out:
	free(ids);
	if (inited)
		(void)f->C_Finalize(NULL);
	return rc;
}

static int
module_add(struct tg_doctor_report *r, CK_FUNCTION_LIST *f)
{
	struct tg_doctor_module *m = NULL;
	char *trust = NULL;
	int rc;

	if ((rc = tg_doctor_array_add((void **)&r->pkcs11.modules, &r->pkcs11.n, sizeof(*m),
	                              (void **)&m)) != 0)
		goto out;
	rc = TG_ERR_ALLOC;
	m->name = p11_kit_module_get_name(f);
	if (m->name == NULL && (m->name = tg_doctor_str_printf("(unnamed)")) == NULL)
		goto out;
	m->path = p11_kit_module_get_filename(f);
	if (m->path == NULL)
		m->path = p11_kit_config_option(f, P11KIT_OPT_MODULE);
	trust = p11_kit_config_option(f, P11KIT_OPT_TRUST);
	m->trust_store = trust != NULL && strcmp(trust, "yes") == 0;
	rc = 0;
	if (!m->trust_store)
		rc = module_probe(r, m, f);
out:
	free(trust);
	return rc;
}

int
tg_doctor_p11_probe(struct tg_doctor_report *r)
{
	CK_FUNCTION_LIST **mods;
	const char *msg;
	size_t i, tokmods = 0;
	int rc = 0;

	mods = p11_kit_modules_load(NULL, 0);
	if (mods == NULL) {
		msg = p11_kit_message();
		rc = TG_ERR_ALLOC;
		if ((r->pkcs11.error = tg_doctor_str_printf("%s", msg ? msg : "unknown error")) ==
		    NULL)
			goto out;
		rc = tg_doctor_problem_add(
		    r,
		    "check p11-kit's configuration (/etc/pkcs11/pkcs11.conf, "
		    "/etc/pkcs11/modules, /usr/share/p11-kit/modules)",
		    "p11-kit cannot load the PKCS#11 modules: %s", r->pkcs11.error);
		goto out;
	}
	for (i = 0; mods[i] != NULL && rc == 0; i++)
		rc = module_add(r, mods[i]);
	if (rc != 0)
		goto out;
	for (i = 0; i < r->pkcs11.n; i++)
		tokmods += r->pkcs11.modules[i].trust_store ? 0 : 1;
	if (tokmods == 0)
		rc = tg_doctor_problem_add(r,
		                           "install opensc-pkcs11 (smart cards and YubiKeys) or "
		                           "softhsm2 (software tokens)",
		                           "no PKCS#11 modules registered");
out:
	if (mods != NULL)
		p11_kit_modules_release(mods);
	return rc;
}
