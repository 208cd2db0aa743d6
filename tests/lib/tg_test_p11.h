/*
 * tg_test_p11.h — a session on the SoftHSM2 fixture's token through the
 * module's own function list (dlopen + C_GetFunctionList), for cmocka
 * tests that must see or make what libtgp11 deliberately does not
 * (raw attributes, keys with an exportable template). Header only;
 * include it after <cmocka.h> and "tg_test.h". Needs the with-softhsm.sh
 * environment: TG_SOFTHSM2_MODULE, TG_SOFTHSM_TOKEN, TG_SOFTHSM_PIN.
 */
#ifndef TG_TEST_P11_H
#define TG_TEST_P11_H

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

struct tg_test_p11 {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	int initialized; /* our C_Initialize did it: C_Finalize on close */
	int session;     /* s is open */
};

/* CK_TOKEN_INFO labels are 32 bytes padded with spaces. */
static inline int
tg_test_p11_label_eq(const CK_UTF8CHAR *padded, const char *want)
{
	size_t n = strlen(want), i;
	int r = 0;

	if (n > 32 || memcmp(padded, want, n) != 0)
		goto out;
	for (i = n; i < 32; i++)
		if (padded[i] != ' ')
			goto out;
	r = 1;
out:
	return r;
}

/*
 * Loads SoftHSM2, opens a session (read/write when rw) on the fixture's
 * token and logs the user in; fails the test when any step fails. The
 * module may already be initialized and logged in by libtgp11 in the same
 * process (dlopen shares the instance): then w->initialized is 0 and
 * tg_test_p11_close leaves the module initialized.
 */
static inline void
tg_test_p11_open(struct tg_test_p11 *w, int rw)
{
	const char *token = tg_test_require_env("TG_SOFTHSM_TOKEN");
	const char *pin = tg_test_require_env("TG_SOFTHSM_PIN");
	const char *mod = tg_test_require_env("TG_SOFTHSM2_MODULE");
	CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
	CK_C_GetFunctionList gfl;
	CK_SLOT_ID slots[16];
	CK_ULONG i, n = 16;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	memset(w, 0, sizeof(*w));
	if ((w->dl = dlopen(mod, RTLD_NOW | RTLD_LOCAL)) == NULL)
		fail_msg("dlopen %s: %s", mod, dlerror());
	*(void **)&gfl = dlsym(w->dl, "C_GetFunctionList");
	assert_non_null(gfl);
	assert_int_equal(gfl(&w->f), CKR_OK);
	rv = w->f->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		fail_msg("C_Initialize: 0x%lx", (unsigned long)rv);
	w->initialized = rv == CKR_OK;
	assert_int_equal(w->f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (i = 0; i < n && !w->session; i++) {
		assert_int_equal(w->f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
		if (!tg_test_p11_label_eq(ti.label, token))
			continue;
		assert_int_equal(w->f->C_OpenSession(slots[i], flags, NULL, NULL, &w->s), CKR_OK);
		w->session = 1;
	}
	if (!w->session)
		fail_msg("token '%s' not found through %s", token, mod);
	/* login state is per application: libtgp11 may have logged in already */
	rv = w->f->C_Login(w->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		fail_msg("C_Login on '%s': 0x%lx", token, (unsigned long)rv);
}

/* Closes the session, finalizes the module if tg_test_p11_open initialized
 * it, unloads it, and clears *w. Safe on a cleared or half-opened *w. */
static inline void
tg_test_p11_close(struct tg_test_p11 *w)
{
	if (w->session)
		(void)w->f->C_CloseSession(w->s);
	if (w->initialized)
		(void)w->f->C_Finalize(NULL);
	if (w->dl != NULL)
		dlclose(w->dl);
	memset(w, 0, sizeof(*w));
}

#endif /* TG_TEST_P11_H */
