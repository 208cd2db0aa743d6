/*
 * p11_watch_wrap.c — a PKCS#11 module for tests that forwards every call
 * to the module named by $TG_WATCH_WRAP_REAL (SoftHSM2) and, while a file
 * exists in the directory $TG_WATCH_WRAP_CTL, changes what the token looks like:
 *   absent        no token in any slot (CKF_TOKEN_PRESENT cleared;
 *                 C_GetTokenInfo and C_OpenSession: CKR_TOKEN_NOT_PRESENT)
 *   blank-serial  C_GetTokenInfo reports an empty (all-space) serial
 *   extractable   C_GetAttributeValue reports CKA_EXTRACTABLE true
 *   drop-login    while absent, every session of the slot is closed, so the
 *                 login is gone as after a real removal (PKCS#11: closing
 *                 the last session logs the user out)
 * So a SoftHSM2 token can be "removed" and "inserted" under libtgp11's
 * presence watcher, or come back with other details.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST real_copy, wrap;
static CK_FUNCTION_LIST_PTR real;

static int
ctl(const char *name)
{
	const char *dir = getenv("TG_WATCH_WRAP_CTL");
	char path[PATH_MAX];

	if (dir == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static CK_RV
w_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO_PTR info)
{
	CK_RV rv = real->C_GetSlotInfo(id, info);

	if (rv == CKR_OK && ctl("absent")) {
		info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
		if (ctl("drop-login"))
			(void)real->C_CloseAllSessions(id);
	}
	return rv;
}

static CK_RV
w_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv;

	if (ctl("absent"))
		return CKR_TOKEN_NOT_PRESENT;
	rv = real->C_GetTokenInfo(id, info);
	if (rv == CKR_OK && ctl("blank-serial"))
		memset(info->serialNumber, ' ', sizeof(info->serialNumber));
	return rv;
}

static CK_RV
w_OpenSession(CK_SLOT_ID id, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
              CK_SESSION_HANDLE_PTR s)
{
	if (ctl("absent"))
		return CKR_TOKEN_NOT_PRESENT;
	return real->C_OpenSession(id, flags, app, notify, s);
}

static CK_RV
w_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	CK_RV rv = real->C_GetAttributeValue(s, h, t, n);
	CK_ULONG i;

	if ((rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID) && ctl("extractable"))
		for (i = 0; i < n; i++)
			if (t[i].type == CKA_EXTRACTABLE && t[i].pValue != NULL &&
			    t[i].ulValueLen == sizeof(CK_BBOOL))
				*(CK_BBOOL *)t[i].pValue = CK_TRUE;
	return rv;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	const char *path = getenv("TG_WATCH_WRAP_REAL");
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR r = NULL;
	void *dl;

	if (real == NULL) {
		if (path == NULL || (dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL ||
		    (gfl = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(dl, "C_GetFunctionList")) ==
		        NULL ||
		    gfl(&r) != CKR_OK)
			return CKR_GENERAL_ERROR;
		real_copy = *r;
		real = &real_copy;
		wrap = real_copy;
		wrap.C_GetSlotInfo = w_GetSlotInfo;
		wrap.C_GetTokenInfo = w_GetTokenInfo;
		wrap.C_OpenSession = w_OpenSession;
		wrap.C_GetAttributeValue = w_GetAttributeValue;
	}
	*out = &wrap;
	return CKR_OK;
}
