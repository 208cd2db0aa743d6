/*
 * test_fixture_env.c — a cmocka test run through the fixture wrappers, as
 * other C tests will be: it checks from C what with-softhsm.sh
 * (TG_FIXTURE_SOFTHSM) or with-pcscd.sh (TG_FIXTURE_PCSC) hands to the
 * test, through the real SoftHSM2 module and the real pcsc-lite client
 * library, and exercises the helpers of tg_test.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_test.h"

/* ---- tg_test.h ------------------------------------------------------- */

static const struct {
	const char *hex;
	size_t len;
	const char *bytes;
} hex_cases[] = {
    {"", 0, ""},
    {"00", 1, "\x00"},
    {"00 A4 04 00", 4, "\x00\xa4\x04\x00"},
    {"de:AD:be:ef", 4, "\xde\xad\xbe\xef"},
    {"\t7f49 ", 2, "\x7f\x49"},
};

static void
test_hexdup(void **state)
{
	size_t i, n;
	unsigned char *p;

	(void)state;
	for (i = 0; i < sizeof(hex_cases) / sizeof(hex_cases[0]); i++) {
		n = 99;
		p = tg_test_hexdup(hex_cases[i].hex, &n);
		assert_int_equal(n, hex_cases[i].len);
		if (n != 0)
			assert_memory_equal(p, hex_cases[i].bytes, n);
		free(p);
	}
}

static void
test_memdup(void **state)
{
	static const unsigned char src[] = {1, 2, 3, 4, 5};
	unsigned char *p;

	(void)state;
	p = tg_test_memdup(src, sizeof(src));
	assert_non_null(p);
	assert_ptr_not_equal(p, src);
	assert_memory_equal(p, src, sizeof(src));
	free(p);
}

static void
test_getenv(void **state)
{
	(void)state;
	assert_int_equal(setenv("TG_TEST_EMPTY_VAR", "", 1), 0);
	assert_null(tg_test_getenv("TG_TEST_EMPTY_VAR"));
	assert_int_equal(unsetenv("TG_TEST_EMPTY_VAR"), 0);
	assert_null(tg_test_getenv("TG_TEST_EMPTY_VAR"));
	assert_int_equal(setenv("TG_TEST_EMPTY_VAR", "x", 1), 0);
	assert_string_equal(tg_test_getenv("TG_TEST_EMPTY_VAR"), "x");
	assert_int_equal(unsetenv("TG_TEST_EMPTY_VAR"), 0);
}

/* Every fixture keeps its files in the test's own temporary directory. */
static void
assert_under_tmp(const char *path)
{
	const char *tmp = tg_test_require_env("TG_TMP");
	size_t n = strlen(tmp);

	assert_true(strncmp(path, tmp, n) == 0 && path[n] == '/');
}

#if defined(TG_FIXTURE_SOFTHSM)
/* ---- with-softhsm.sh: the default layout through SoftHSM2 itself ------ */

#include "tg_test_p11.h"

static int
p11_setup(void **state)
{
	struct tg_test_p11 *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	tg_test_p11_open(p, 0);
	assert_true(p->initialized); /* nobody else in this process uses it */
	*state = p;
	return 0;
}

static int
p11_teardown(void **state)
{
	struct tg_test_p11 *p = *state;

	p->f->C_Logout(p->s);
	tg_test_p11_close(p);
	free(p);
	return 0;
}

/* CKA_EXTRACTABLE and CKA_SENSITIVE of the private key labelled label. */
static void
key_flags(struct tg_test_p11 *p, const char *label, CK_BBOOL *extractable, CK_BBOOL *sensitive)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE find[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_ATTRIBUTE get[] = {
	    {CKA_EXTRACTABLE, extractable, sizeof(*extractable)},
	    {CKA_SENSITIVE, sensitive, sizeof(*sensitive)},
	};
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;

	assert_int_equal(p->f->C_FindObjectsInit(p->s, find, 2), CKR_OK);
	assert_int_equal(p->f->C_FindObjects(p->s, h, 2, &n), CKR_OK);
	assert_int_equal(p->f->C_FindObjectsFinal(p->s), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(p->f->C_GetAttributeValue(p->s, h[0], get, 2), CKR_OK);
}

static void
test_softhsm_layout(void **state)
{
	static const char *const locked[] = {"p256", "p384", "rsa2048"};
	struct tg_test_p11 *p = *state;
	CK_BBOOL ex, se;
	size_t i;

	assert_under_tmp(tg_test_require_env("SOFTHSM2_CONF"));
	for (i = 0; i < sizeof(locked) / sizeof(locked[0]); i++) {
		key_flags(p, locked[i], &ex, &se);
		assert_int_equal(ex, CK_FALSE);
		assert_int_equal(se, CK_TRUE);
	}
	key_flags(p, "exportable", &ex, &se);
	assert_int_equal(ex, CK_TRUE);
}

static const struct CMUnitTest fixture_tests[] = {
    cmocka_unit_test_setup_teardown(test_softhsm_layout, p11_setup, p11_teardown),
};

#elif defined(TG_FIXTURE_PCSC)
/* ---- with-pcscd.sh: the private pcscd through libpcsclite ------------- */

#include <PCSC/winscard.h>

static void
test_pcsc_reader(void **state)
{
	SCARDCONTEXT ctx = 0;
	DWORD len = 0;
	char *readers, *r;
	const char *want = tg_test_require_env("TG_READER");
	int found = 0;

	(void)state;
	assert_under_tmp(tg_test_require_env("PCSCLITE_CSOCK_NAME"));
	assert_int_equal(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx),
	                 SCARD_S_SUCCESS);
	assert_int_equal(SCardListReaders(ctx, NULL, NULL, &len), SCARD_S_SUCCESS);
	readers = malloc(len);
	assert_non_null(readers);
	assert_int_equal(SCardListReaders(ctx, NULL, readers, &len), SCARD_S_SUCCESS);
	/* A multi-string: NUL-separated names ending with an empty one. */
	for (r = readers; *r != '\0'; r += strlen(r) + 1)
		if (strcmp(r, want) == 0)
			found = 1;
	free(readers);
	assert_int_equal(SCardReleaseContext(ctx), SCARD_S_SUCCESS);
	assert_true(found);
}

static const struct CMUnitTest fixture_tests[] = {
    cmocka_unit_test(test_pcsc_reader),
};

#else
#error "define TG_FIXTURE_SOFTHSM or TG_FIXTURE_PCSC"
#endif

static const struct CMUnitTest helper_tests[] = {
    cmocka_unit_test(test_hexdup),
    cmocka_unit_test(test_memdup),
    cmocka_unit_test(test_getenv),
};

int
main(void)
{
	int r = cmocka_run_group_tests(helper_tests, NULL, NULL);

	r |= cmocka_run_group_tests(fixture_tests, NULL, NULL);
	return r;
}
