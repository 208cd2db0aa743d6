/*
 * test_p11_trust.c — the trust verdict as a pure function
 * (tg_p11_trust_verdict, pkcs11/trust.c): one row per attribute and value
 * (false, not reported, a CK_BBOOL of 2, true) on an otherwise genuine key,
 * the PKCS#15-emulation rows with and without card evidence, and the
 * reason naming the attribute of each row; and the refusal of
 * tg_p11_key_trust_check (white-box: a key struct from p11-int.h, no token)
 * with and without TG_P11_KEY_NO_OPTIN: without it the message offers the
 * opt-in flags, with it only the real fix, and it never relaxes a refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "p11-int.h" /* struct tg_p11_key: tg_p11_key_trust_check without a token */
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

/* A found key as tg_p11_key_find leaves it, on a token labelled "alice",
 * with row r's attributes (no module: tg_p11_key_trust_check reads only
 * the label, the token's label and the trust). */
struct fake_key {
	struct tg_p11_token t;
	struct tg_p11_key k;
	char label[8];
};

static void
fake_key(struct fake_key *fk, const struct row *r)
{
	memset(fk, 0, sizeof(*fk));
	snprintf(fk->t.info.label, sizeof(fk->t.info.label), "alice");
	snprintf(fk->label, sizeof(fk->label), "api");
	fk->k.t = &fk->t;
	fk->k.label = fk->label;
	row_apply(&fk->k.trust, r);
	tg_p11_trust_verdict(&fk->k.trust);
}

/* The opt-ins a refusal may offer; none may appear with NO_OPTIN. */
static const char *const optins[] = {"--allow-exportable", "--allow-imported", "TG_P11_KEY_ALLOW",
                                     "explicitly"};

static void
refused_as(const struct fake_key *fk, unsigned flags, const char *verdict, const char *const *want,
           int offers_optin)
{
	struct tg_error err;
	char head[128];
	size_t i;

	memset(&err, 0, sizeof(err));
	if (tg_p11_key_trust_check(&fk->k, flags, &err) != TG_ERR_KEY_EXPORTABLE)
		fail_msg("flags 0x%x, verdict %s: not refused ('%s')", flags, verdict, err.msg);
	snprintf(head, sizeof(head), "key 'api' on token 'alice' is refused (%s): ", verdict);
	if (strncmp(err.msg, head, strlen(head)) != 0)
		fail_msg("flags 0x%x: '%s' does not start with '%s'", flags, err.msg, head);
	/* the reason (the attribute) is kept in both forms */
	if (strstr(err.msg, fk->k.trust.reason) == NULL)
		fail_msg("flags 0x%x: '%s' lacks the reason '%s'", flags, err.msg,
		         fk->k.trust.reason);
	for (i = 0; want[i] != NULL; i++)
		if (strstr(err.msg, want[i]) == NULL)
			fail_msg("flags 0x%x: '%s' lacks '%s'", flags, err.msg, want[i]);
	if (offers_optin)
		return;
	for (i = 0; i < sizeof(optins) / sizeof(optins[0]); i++)
		if (strstr(err.msg, optins[i]) != NULL)
			fail_msg("flags 0x%x (NO_OPTIN): '%s' offers an opt-in ('%s')", flags,
			         err.msg, optins[i]);
}

static void
passes(const struct fake_key *fk, unsigned flags)
{
	struct tg_error err;

	memset(&err, 0, sizeof(err));
	if (tg_p11_key_trust_check(&fk->k, flags, &err) != 0)
		fail_msg("flags 0x%x: refused: %s", flags, err.msg);
}

static void
test_refusal_optin(void **state)
{
	static const struct row exportable = {F_EXTRACTABLE, 1, 0, 0, TG_P11_TRUST_EXPORTABLE, ""};
	static const struct row once = {F_NEVER_EXTRACTABLE,          0, 0, 0,
	                                TG_P11_TRUST_ONCE_EXPORTABLE, ""};
	static const struct row imported = {F_LOCAL, 0, 0, 0, TG_P11_TRUST_IMPORTED, ""};
	static const struct row unknown = {F_LOCAL, TG_P11_ATTR_ABSENT,   0,
	                                   0,       TG_P11_TRUST_UNKNOWN, ""};
	static const struct row emulated = {F_NONE, 0, 1, TG_P11_ORIGIN_NONE, TG_P11_TRUST_UNKNOWN,
	                                    ""};
	static const struct row genuine = {F_NONE, 0, 0, 0, TG_P11_TRUST_OK, ""};
	static const char *const w_exp[] = {"--allow-exportable", "TG_P11_KEY_ALLOW_EXPORTABLE",
	                                    "tokengate token keygen", NULL};
	static const char *const w_imp[] = {"--allow-imported", "TG_P11_KEY_ALLOW_IMPORTED",
	                                    "tokengate token keygen", NULL};
	static const char *const w_unk[] = {"use a token that reports these attributes",
	                                    "--allow-imported", NULL};
	static const char *const w_emu[] = {"give card evidence", "--allow-imported", NULL};
	static const char *const w_fix[] = {"use a key generated non-exportable on the token",
	                                    "tokengate enroll", NULL};
	static const char *const w_unk_fix[] = {"use a token that reports these attributes",
	                                        "tokengate enroll", NULL};
	static const char *const w_emu_fix[] = {"give card evidence", "tokengate enroll", NULL};
	const unsigned no = TG_P11_KEY_NO_OPTIN;
	struct fake_key fk;

	(void)state;
	fake_key(&fk, &exportable);
	refused_as(&fk, 0, "exportable", w_exp, 1);
	refused_as(&fk, no, "exportable", w_fix, 0);
	/* NO_OPTIN is about the message only: the other opt-in does not help */
	refused_as(&fk, no | TG_P11_KEY_ALLOW_IMPORTED, "exportable", w_fix, 0);
	refused_as(&fk, TG_P11_KEY_ALLOW_IMPORTED, "exportable", w_exp, 1);
	passes(&fk, TG_P11_KEY_ALLOW_EXPORTABLE);
	passes(&fk, no | TG_P11_KEY_ALLOW_EXPORTABLE);

	fake_key(&fk, &once);
	refused_as(&fk, 0, "once-exportable", w_imp, 1);
	refused_as(&fk, no, "once-exportable", w_fix, 0);
	refused_as(&fk, no | TG_P11_KEY_ALLOW_EXPORTABLE, "once-exportable", w_fix, 0);
	passes(&fk, no | TG_P11_KEY_ALLOW_IMPORTED);

	fake_key(&fk, &imported);
	refused_as(&fk, 0, "imported", w_imp, 1);
	refused_as(&fk, no, "imported", w_fix, 0);
	passes(&fk, TG_P11_KEY_ALLOW_IMPORTED);

	fake_key(&fk, &unknown);
	refused_as(&fk, 0, "unknown", w_unk, 1);
	refused_as(&fk, no, "unknown", w_unk_fix, 0);
	passes(&fk, no | TG_P11_KEY_ALLOW_IMPORTED);

	fake_key(&fk, &emulated);
	refused_as(&fk, 0, "unknown", w_emu, 1);
	refused_as(&fk, no, "unknown", w_emu_fix, 0);

	/* a genuine key passes with or without the flag */
	fake_key(&fk, &genuine);
	passes(&fk, 0);
	passes(&fk, no);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_reasons_combined),
	    cmocka_unit_test(test_emulated_models),
	    cmocka_unit_test(test_refusal_optin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
