/*
 * test_p11_trust.c — the trust verdict as a pure function
 * (tg_p11_trust_verdict, pkcs11/trust.c): one row per attribute and value
 * (false, not reported, a CK_BBOOL of 2, true) on an otherwise genuine key,
 * the PKCS#15-emulation rows with and without card evidence, and the
 * reason naming the attribute of each row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tg_p11.h"
#include "tg_test.h"

enum field { F_SENSITIVE, F_EXTRACTABLE, F_NEVER_EXTRACTABLE, F_ALWAYS_SENSITIVE, F_LOCAL, F_NONE };

struct row {
	enum field f;
	int value;                 /* what the attribute reads as */
	int emulated;              /* token model "PKCS#15 emulated" */
	enum tg_p11_origin origin; /* card evidence */
	enum tg_p11_verdict want;
	const char *reason; /* a substring the reason must hold */
};

#define BAD2 2 /* a CK_BBOOL of 2, kept as read */

static const struct row rows[] = {
    /* CKA_SENSITIVE: false alone (not extractable) is exportable */
    {F_SENSITIVE, 0, 0, 0, TG_P11_TRUST_EXPORTABLE, "CKA_SENSITIVE is false"},
    {F_SENSITIVE, TG_P11_ATTR_ABSENT, 0, 0, TG_P11_TRUST_UNKNOWN,
     "the token does not report CKA_SENSITIVE"},
    {F_SENSITIVE, TG_P11_ATTR_INVALID, 0, 0, TG_P11_TRUST_UNKNOWN,
     "CKA_SENSITIVE as neither true nor false"},
    {F_SENSITIVE, BAD2, 0, 0, TG_P11_TRUST_UNKNOWN, "CKA_SENSITIVE as neither true nor false"},
    {F_SENSITIVE, 1, 0, 0, TG_P11_TRUST_OK, "generated on the token"},
    /* CKA_EXTRACTABLE: true is the bad value */
    {F_EXTRACTABLE, 1, 0, 0, TG_P11_TRUST_EXPORTABLE, "CKA_EXTRACTABLE is true"},
    {F_EXTRACTABLE, TG_P11_ATTR_ABSENT, 0, 0, TG_P11_TRUST_UNKNOWN,
     "the token does not report CKA_EXTRACTABLE"},
    {F_EXTRACTABLE, BAD2, 0, 0, TG_P11_TRUST_UNKNOWN, "CKA_EXTRACTABLE as neither true nor false"},
    {F_EXTRACTABLE, 0, 0, 0, TG_P11_TRUST_OK, "generated on the token"},
    /* CKA_NEVER_EXTRACTABLE: false alone is once exportable */
    {F_NEVER_EXTRACTABLE, 0, 0, 0, TG_P11_TRUST_ONCE_EXPORTABLE, "CKA_NEVER_EXTRACTABLE is false"},
    {F_NEVER_EXTRACTABLE, TG_P11_ATTR_ABSENT, 0, 0, TG_P11_TRUST_UNKNOWN,
     "the token does not report CKA_NEVER_EXTRACTABLE"},
    {F_NEVER_EXTRACTABLE, BAD2, 0, 0, TG_P11_TRUST_UNKNOWN,
     "CKA_NEVER_EXTRACTABLE as neither true nor false"},
    {F_NEVER_EXTRACTABLE, 1, 0, 0, TG_P11_TRUST_OK, "generated on the token"},
    /* CKA_ALWAYS_SENSITIVE */
    {F_ALWAYS_SENSITIVE, 0, 0, 0, TG_P11_TRUST_ONCE_EXPORTABLE, "CKA_ALWAYS_SENSITIVE is false"},
    {F_ALWAYS_SENSITIVE, TG_P11_ATTR_ABSENT, 0, 0, TG_P11_TRUST_UNKNOWN,
     "the token does not report CKA_ALWAYS_SENSITIVE"},
    {F_ALWAYS_SENSITIVE, BAD2, 0, 0, TG_P11_TRUST_UNKNOWN,
     "CKA_ALWAYS_SENSITIVE as neither true nor false"},
    {F_ALWAYS_SENSITIVE, 1, 0, 0, TG_P11_TRUST_OK, "generated on the token"},
    /* CKA_LOCAL */
    {F_LOCAL, 0, 0, 0, TG_P11_TRUST_IMPORTED, "CKA_LOCAL is false"},
    {F_LOCAL, TG_P11_ATTR_ABSENT, 0, 0, TG_P11_TRUST_UNKNOWN,
     "the token does not report CKA_LOCAL"},
    {F_LOCAL, BAD2, 0, 0, TG_P11_TRUST_UNKNOWN, "CKA_LOCAL as neither true nor false"},
    {F_LOCAL, 1, 0, 0, TG_P11_TRUST_OK, "generated on the token"},
    /* PKCS#15 emulation: the attributes are no evidence */
    {F_NONE, 0, 1, TG_P11_ORIGIN_NONE, TG_P11_TRUST_UNKNOWN, "PKCS#15 emulated"},
    {F_NONE, 0, 1, TG_P11_ORIGIN_GENERATED, TG_P11_TRUST_OK, "generated on the card (test)"},
    {F_NONE, 0, 1, TG_P11_ORIGIN_IMPORTED, TG_P11_TRUST_IMPORTED,
     "the card says the key was imported"},
    {F_EXTRACTABLE, 1, 1, TG_P11_ORIGIN_GENERATED, TG_P11_TRUST_EXPORTABLE,
     "CKA_EXTRACTABLE is true"},
    {F_SENSITIVE, TG_P11_ATTR_ABSENT, 1, TG_P11_ORIGIN_GENERATED, TG_P11_TRUST_UNKNOWN,
     "does not report CKA_SENSITIVE"},
    /* evidence of an import counts on a native token too */
    {F_NONE, 0, 0, TG_P11_ORIGIN_IMPORTED, TG_P11_TRUST_IMPORTED,
     "the card says the key was imported"},
};

static void
row_apply(struct tg_p11_trust *tr, const struct row *r)
{
	memset(tr, 0, sizeof(*tr));
	tr->sensitive = 1;
	tr->extractable = 0;
	tr->never_extractable = 1;
	tr->always_sensitive = 1;
	tr->local = 1;
	tr->emulated = r->emulated;
	tr->origin = r->origin;
	if (r->origin != TG_P11_ORIGIN_NONE)
		snprintf(tr->evidence, sizeof(tr->evidence), "test");
	switch (r->f) {
	case F_SENSITIVE:
		tr->sensitive = r->value;
		break;
	case F_EXTRACTABLE:
		tr->extractable = r->value;
		break;
	case F_NEVER_EXTRACTABLE:
		tr->never_extractable = r->value;
		break;
	case F_ALWAYS_SENSITIVE:
		tr->always_sensitive = r->value;
		break;
	case F_LOCAL:
		tr->local = r->value;
		break;
	default:
		break;
	}
}

static void
test_rows(void **state)
{
	struct tg_p11_trust tr;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		row_apply(&tr, &rows[i]);
		tg_p11_trust_verdict(&tr);
		if (tr.verdict != rows[i].want || strstr(tr.reason, rows[i].reason) == NULL)
			fail_msg("row %zu: verdict %s (want %s), reason '%s' (want '%s')", i,
			         tg_p11_verdict_name(tr.verdict), tg_p11_verdict_name(rows[i].want),
			         tr.reason, rows[i].reason);
	}
}

/* Every problem is named, not only the first one. */
static void
test_reasons_combined(void **state)
{
	struct tg_p11_trust tr;

	(void)state;
	memset(&tr, 0, sizeof(tr));
	tr.sensitive = 0;
	tr.extractable = 1;
	tg_p11_trust_verdict(&tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_EXPORTABLE);
	assert_non_null(strstr(tr.reason, "CKA_SENSITIVE is false"));
	assert_non_null(strstr(tr.reason, "CKA_EXTRACTABLE is true"));
	memset(&tr, 0, sizeof(tr));
	tr.sensitive = 1;
	tr.never_extractable = 0;
	tr.always_sensitive = 0;
	tr.local = 1;
	tg_p11_trust_verdict(&tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_ONCE_EXPORTABLE);
	assert_non_null(strstr(tr.reason, "CKA_NEVER_EXTRACTABLE is false"));
	assert_non_null(strstr(tr.reason, "CKA_ALWAYS_SENSITIVE is false"));
	/* an imported key as SoftHSM2 stores it: all three false */
	tr.local = 0;
	tg_p11_trust_verdict(&tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_ONCE_EXPORTABLE);
	assert_non_null(strstr(tr.reason, "CKA_LOCAL is false: it was imported"));
	memset(&tr, 0, sizeof(tr));
	tr.sensitive = 1;
	tr.never_extractable = TG_P11_ATTR_ABSENT;
	tr.always_sensitive = 1;
	tr.local = TG_P11_ATTR_ABSENT;
	tg_p11_trust_verdict(&tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_UNKNOWN);
	assert_non_null(strstr(tr.reason, "CKA_NEVER_EXTRACTABLE"));
	assert_non_null(strstr(tr.reason, "CKA_LOCAL"));
}

static void
test_emulated_models(void **state)
{
	(void)state;
	assert_int_equal(tg_p11_trust_emulated("PKCS#15 emulated"), 1);
	assert_int_equal(tg_p11_trust_emulated("PKCS#15"), 1);
	assert_int_equal(tg_p11_trust_emulated("SoftHSM v2"), 0);
	assert_int_equal(tg_p11_trust_emulated(""), 0);
	assert_int_equal(tg_p11_trust_emulated(NULL), 0);
	assert_string_equal(tg_p11_verdict_name(TG_P11_TRUST_ONCE_EXPORTABLE), "once-exportable");
	assert_string_equal(tg_p11_verdict_name(TG_P11_TRUST_UNKNOWN), "unknown");
	assert_string_equal(tg_p11_verdict_name(TG_P11_TRUST_IMPORTED), "imported");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_reasons_combined),
	    cmocka_unit_test(test_emulated_models),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
