/*
 * p11_wrap_module.c — a PKCS#11 module for tests that forwards every call
 * to SoftHSM2 ($TG_SOFTHSM2_MODULE, loaded on the first C_GetFunctionList)
 * and lies the way some modules do, as $TG_WRAP_MODE says (read on every
 * call, so one process can switch):
 *   hide-local        CKA_LOCAL is not reported (CKR_ATTRIBUTE_TYPE_INVALID,
 *                     length CK_UNAVAILABLE_INFORMATION)
 *   bool2-ATTR        the CK_BBOOL ATTR (sensitive, extractable,
 *                     never-extractable, always-sensitive, local) reads as 2
 *   emulated          C_GetTokenInfo's model is "PKCS#15 emulated", as
 *                     OpenSC's PIV driver reports it
 * anything else (or unset): no change. Test code only.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST real_copy; /* SoftHSM2's list */
static CK_FUNCTION_LIST wrapped;   /* ours: the same with two calls replaced */
static void *real_dl;

static const char *
mode(void)
{
	const char *m = getenv("TG_WRAP_MODE");

	return m != NULL ? m : "";
}

/* The attribute that `bool2-...` names, or (CK_ATTRIBUTE_TYPE)-1. */
static CK_ATTRIBUTE_TYPE
bool2_type(void)
{
	static const struct {
		const char *name;
		CK_ATTRIBUTE_TYPE type;
	} v[] = {
	    {"bool2-sensitive", CKA_SENSITIVE},
	    {"bool2-extractable", CKA_EXTRACTABLE},
	    {"bool2-never-extractable", CKA_NEVER_EXTRACTABLE},
	    {"bool2-always-sensitive", CKA_ALWAYS_SENSITIVE},
	    {"bool2-local", CKA_LOCAL},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcmp(mode(), v[i].name) == 0)
			return v[i].type;
	return (CK_ATTRIBUTE_TYPE)-1;
}

static CK_RV
wrap_get_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	CK_RV rv = real_copy.C_GetAttributeValue(s, h, t, n);
	CK_ATTRIBUTE_TYPE b2 = bool2_type();
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if (t[i].type == CKA_LOCAL && strcmp(mode(), "hide-local") == 0) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (t[i].type == b2 && t[i].pValue != NULL &&
		           t[i].ulValueLen == sizeof(CK_BBOOL) &&
		           (rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID)) {
			*(CK_BBOOL *)t[i].pValue = 2;
		}
	}
	return rv;
}

static CK_RV
wrap_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	static const char model[] = "PKCS#15 emulated";
	CK_RV rv = real_copy.C_GetTokenInfo(slot, info);

	if (rv == CKR_OK && strcmp(mode(), "emulated") == 0) {
		memset(info->model, ' ', sizeof(info->model));
		memcpy(info->model, model, sizeof(model) - 1);
	}
	return rv;
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
		real_copy = *f;
		wrapped = *f;
		wrapped.C_GetFunctionList = C_GetFunctionList;
		wrapped.C_GetAttributeValue = wrap_get_attribute_value;
		wrapped.C_GetTokenInfo = wrap_get_token_info;
	}
	*out = &wrapped;
	rv = CKR_OK;
out:
	return rv;
}
