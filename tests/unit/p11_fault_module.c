/*
 * p11_fault_module.c — a PKCS#11 module for tests that forwards every call
 * to SoftHSM2 ($TG_SOFTHSM2_MODULE, loaded on the first C_GetFunctionList)
 * and fails or alters calls as the comma-separated words of $TG_P11_FAULT
 * say (read on every call, so one process can switch):
 *   init-fail             C_Initialize: CKR_GENERAL_ERROR
 *   slotlist-fail         C_GetSlotList: CKR_DEVICE_ERROR
 *   slotlist2-fail        the same, only when asked for the ids
 *   flag-locked           C_GetTokenInfo: CKF_USER_PIN_LOCKED set
 *   flag-final            C_GetTokenInfo: CKF_USER_PIN_FINAL_TRY set
 *   flag-nologin          C_GetTokenInfo: CKF_LOGIN_REQUIRED cleared
 *   flag-pinpad           C_GetTokenInfo: CKF_PROTECTED_AUTHENTICATION_PATH
 *                         set; C_Login with no PIN logs in with
 *                         $TG_P11_FAULT_PIN (a PIN pad the user typed on)
 *   open-fail             C_OpenSession: CKR_DEVICE_ERROR
 *   open-removed          C_OpenSession: CKR_DEVICE_REMOVED
 *   open-ro               C_OpenSession of a read/write session:
 *                         CKR_TOKEN_WRITE_PROTECTED
 *   login-locked, login-expired, login-removed, login-general,
 *   login-incorrect       C_Login: CKR_PIN_LOCKED, CKR_PIN_EXPIRED,
 *                         CKR_DEVICE_REMOVED, CKR_GENERAL_ERROR,
 *                         CKR_PIN_INCORRECT (not forwarded)
 *   login-locks           C_Login: CKR_PIN_INCORRECT, and the token reports
 *                         CKF_USER_PIN_LOCKED from then on (while set)
 *   keygen-mech, keygen-login, keygen-general
 *                         C_GenerateKeyPair: CKR_MECHANISM_INVALID,
 *                         CKR_USER_NOT_LOGGED_IN, CKR_GENERAL_ERROR
 *   create-fail           C_CreateObject: CKR_TOKEN_WRITE_PROTECTED
 *   destroy-fail          C_DestroyObject: CKR_TOKEN_WRITE_PROTECTED
 *   findinit-fail         C_FindObjectsInit: CKR_DEVICE_ERROR
 *   find-fail             C_FindObjects: CKR_DEVICE_ERROR
 *   signinit-fail         C_SignInit (of a mechanism): CKR_DEVICE_ERROR
 *   sign-fail             C_Sign: CKR_DEVICE_ERROR
 *   sign-odd              C_Sign: a signature one byte short
 *   ecpoint-raw           CKA_EC_POINT: the bare point, without its DER
 *                         OCTET STRING (as some modules give it)
 *   hide-modulus          CKA_MODULUS: CKR_ATTRIBUTE_TYPE_INVALID
 *   value-fail            reading CKA_VALUE's bytes: CKR_DEVICE_ERROR
 *   hide-ecparams         CKA_EC_PARAMS: CKR_ATTRIBUTE_TYPE_INVALID
 *   label-fail, id-fail   CKA_LABEL, CKA_ID alone: CKR_DEVICE_ERROR
 *   id-unavail            CKA_ID alone: CKR_OK with CK_UNAVAILABLE_INFORMATION
 *                         as its length (as some modules answer)
 *   absent                no token in the slot (CKF_TOKEN_PRESENT cleared;
 *                         C_GetTokenInfo, C_OpenSession: CKR_TOKEN_NOT_PRESENT)
 * Anything else (or unset): no change. A word is also on while a file of
 * that name exists in the directory $TG_P11_FAULT_CTL: how a test steers
 * the module while another thread (a presence watcher) calls it, since
 * changing the environment then would race with its getenv. Test code only.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST real;    /* SoftHSM2's list */
static CK_FUNCTION_LIST wrapped; /* ours */
static void *real_dl;
static int locked_now; /* login-locks fired */

/* 1 when word is one of $TG_P11_FAULT's comma-separated words, or names
 * a file in $TG_P11_FAULT_CTL. */
static int
has(const char *word)
{
	const char *m = getenv("TG_P11_FAULT"), *dir = getenv("TG_P11_FAULT_CTL"), *p;
	char path[PATH_MAX];
	size_t n = strlen(word);

	for (p = m; p != NULL && (p = strstr(p, word)) != NULL; p += n)
		if ((p == m || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return 1;
	if (dir == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, word);
	return access(path, F_OK) == 0;
}

static CK_RV
f_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO_PTR si)
{
	CK_RV rv = real.C_GetSlotInfo(id, si);

	if (rv == CKR_OK && has("absent"))
		si->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	return rv;
}

static CK_RV
f_Initialize(CK_VOID_PTR args)
{
	if (has("init-fail"))
		return CKR_GENERAL_ERROR;
	return real.C_Initialize(args);
}

static CK_RV
f_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR ids, CK_ULONG_PTR n)
{
	if (has("slotlist-fail") || (ids != NULL && has("slotlist2-fail")))
		return CKR_DEVICE_ERROR;
	return real.C_GetSlotList(present, ids, n);
}

static CK_RV
f_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO_PTR ti)
{
	CK_RV rv;

	if (has("absent"))
		return CKR_TOKEN_NOT_PRESENT;
	rv = real.C_GetTokenInfo(id, ti);
	if (rv != CKR_OK)
		return rv;
	if (has("flag-locked") || (has("login-locks") && locked_now))
		ti->flags |= CKF_USER_PIN_LOCKED;
	if (has("flag-final"))
		ti->flags |= CKF_USER_PIN_FINAL_TRY;
	if (has("flag-nologin"))
		ti->flags &= ~(CK_FLAGS)CKF_LOGIN_REQUIRED;
	if (has("flag-pinpad"))
		ti->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
	return rv;
}

static CK_RV
f_OpenSession(CK_SLOT_ID id, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
              CK_SESSION_HANDLE_PTR s)
{
	if (has("absent"))
		return CKR_TOKEN_NOT_PRESENT;
	if (has("open-fail"))
		return CKR_DEVICE_ERROR;
	if (has("open-removed"))
		return CKR_DEVICE_REMOVED;
	if (has("open-ro") && (flags & CKF_RW_SESSION))
		return CKR_TOKEN_WRITE_PROTECTED;
	return real.C_OpenSession(id, flags, app, notify, s);
}

static CK_RV
f_Login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	const char *pad = getenv("TG_P11_FAULT_PIN");

	if (has("login-locked"))
		return CKR_PIN_LOCKED;
	if (has("login-expired"))
		return CKR_PIN_EXPIRED;
	if (has("login-removed"))
		return CKR_DEVICE_REMOVED;
	if (has("login-general"))
		return CKR_GENERAL_ERROR;
	if (has("login-incorrect"))
		return CKR_PIN_INCORRECT;
	if (has("login-locks")) {
		locked_now = 1;
		return CKR_PIN_INCORRECT;
	}
	if (pin == NULL && has("flag-pinpad") && pad != NULL)
		return real.C_Login(s, u, (CK_UTF8CHAR_PTR)pad, (CK_ULONG)strlen(pad));
	return real.C_Login(s, u, pin, len);
}

static CK_RV
f_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
                  CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR hpub,
                  CK_OBJECT_HANDLE_PTR hpriv)
{
	if (has("keygen-mech"))
		return CKR_MECHANISM_INVALID;
	if (has("keygen-login"))
		return CKR_USER_NOT_LOGGED_IN;
	if (has("keygen-general"))
		return CKR_GENERAL_ERROR;
	return real.C_GenerateKeyPair(s, m, pub, npub, priv, npriv, hpub, hpriv);
}

static CK_RV
f_CreateObject(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR h)
{
	if (has("create-fail"))
		return CKR_TOKEN_WRITE_PROTECTED;
	return real.C_CreateObject(s, t, n, h);
}

static CK_RV
f_DestroyObject(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	if (has("destroy-fail"))
		return CKR_TOKEN_WRITE_PROTECTED;
	return real.C_DestroyObject(s, h);
}

static CK_RV
f_FindObjectsInit(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	if (has("findinit-fail"))
		return CKR_DEVICE_ERROR;
	return real.C_FindObjectsInit(s, t, n);
}

static CK_RV
f_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR h, CK_ULONG max, CK_ULONG_PTR n)
{
	if (has("find-fail"))
		return CKR_DEVICE_ERROR;
	return real.C_FindObjects(s, h, max, n);
}

static CK_RV
f_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE h)
{
	if (m != NULL && has("signinit-fail"))
		return CKR_DEVICE_ERROR;
	return real.C_SignInit(s, m, h);
}

static CK_RV
f_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG_PTR sl)
{
	CK_RV rv;

	if (has("sign-fail")) {
		/* a failed C_Sign ends the operation (PKCS#11 v2.40 5.11) */
		CK_BYTE tmp[1024];
		CK_ULONG tl = sizeof(tmp);

		(void)real.C_Sign(s, data, dl, tmp, &tl);
		return CKR_DEVICE_ERROR;
	}
	rv = real.C_Sign(s, data, dl, sig, sl);
	if (rv == CKR_OK && sig != NULL && *sl > 0 && has("sign-odd"))
		(*sl)--;
	return rv;
}

/* CKA_EC_POINT without its DER OCTET STRING header (short form only), for
 * a one-attribute template. */
static CK_RV
ecpoint_raw(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR a)
{
	CK_BYTE buf[256];
	CK_ATTRIBUTE q = {CKA_EC_POINT, buf, sizeof(buf)};
	CK_RV rv = real.C_GetAttributeValue(s, h, &q, 1);

	if (rv != CKR_OK || q.ulValueLen < 2 || buf[0] != 0x04 || buf[1] != q.ulValueLen - 2)
		return real.C_GetAttributeValue(s, h, a, 1);
	if (a->pValue != NULL) {
		if (a->ulValueLen < q.ulValueLen - 2) {
			a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			return CKR_BUFFER_TOO_SMALL;
		}
		memcpy(a->pValue, buf + 2, q.ulValueLen - 2);
	}
	a->ulValueLen = q.ulValueLen - 2;
	return CKR_OK;
}

static CK_RV
f_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((t[i].type == CKA_MODULUS && has("hide-modulus")) ||
		    (t[i].type == CKA_EC_PARAMS && has("hide-ecparams")) ||
		    (t[i].type == CKA_VALUE && t[i].pValue != NULL && has("value-fail"))) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			return t[i].type == CKA_VALUE ? CKR_DEVICE_ERROR
			                              : CKR_ATTRIBUTE_TYPE_INVALID;
		}
	}
	if (n == 1 && ((t[0].type == CKA_LABEL && has("label-fail")) ||
	               (t[0].type == CKA_ID && has("id-fail")))) {
		t[0].ulValueLen = CK_UNAVAILABLE_INFORMATION;
		return CKR_DEVICE_ERROR;
	}
	if (n == 1 && t[0].type == CKA_ID && has("id-unavail")) {
		t[0].ulValueLen = CK_UNAVAILABLE_INFORMATION;
		return CKR_OK;
	}
	if (n == 1 && t[0].type == CKA_EC_POINT && has("ecpoint-raw"))
		return ecpoint_raw(s, h, &t[0]);
	return real.C_GetAttributeValue(s, h, t, n);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	const char *path = getenv("TG_SOFTHSM2_MODULE");
	CK_C_GetFunctionList gfl;
	CK_FUNCTION_LIST_PTR f = NULL;
	CK_RV rv = CKR_GENERAL_ERROR;

	if (real_dl == NULL) {
		if (path == NULL || (real_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
			goto out;
		*(void **)&gfl = dlsym(real_dl, "C_GetFunctionList");
		if (gfl == NULL || gfl(&f) != CKR_OK)
			goto out;
		real = *f;
		wrapped = *f;
		wrapped.C_GetFunctionList = C_GetFunctionList;
		wrapped.C_Initialize = f_Initialize;
		wrapped.C_GetSlotList = f_GetSlotList;
		wrapped.C_GetSlotInfo = f_GetSlotInfo;
		wrapped.C_GetTokenInfo = f_GetTokenInfo;
		wrapped.C_OpenSession = f_OpenSession;
		wrapped.C_Login = f_Login;
		wrapped.C_GenerateKeyPair = f_GenerateKeyPair;
		wrapped.C_CreateObject = f_CreateObject;
		wrapped.C_DestroyObject = f_DestroyObject;
		wrapped.C_FindObjectsInit = f_FindObjectsInit;
		wrapped.C_FindObjects = f_FindObjects;
		wrapped.C_SignInit = f_SignInit;
		wrapped.C_Sign = f_Sign;
		wrapped.C_GetAttributeValue = f_GetAttributeValue;
	}
	*out = &wrapped;
	rv = CKR_OK;
out:
	return rv;
}
