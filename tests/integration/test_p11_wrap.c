/*
 * test_p11_wrap.c — the trust verdict end to end through a module that
 * lies (p11_wrap_module.c over SoftHSM2's fixture token tg-test): a hidden
 * CKA_LOCAL, a CK_BBOOL of 2 for each trust attribute, and a token model
 * "PKCS#15 emulated" with and without card evidence. The key is the
 * fixture's genuine p256 (generated on the token): through SoftHSM2 itself
 * it is accepted; through the wrapper each lie makes it "unknown", refused
 * by default with the attribute named, accepted with
 * TG_P11_KEY_ALLOW_IMPORTED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "p11-int.h" /* tg_p11_key_rebind */
#include "tg_p11.h"
#include "tg_test.h"

static struct tg_p11 *p;
static char uri[1024];

static int
setup(void **state)
{
	const char *mod = tg_test_require_env("TG_WRAP_MODULE");

	(void)state;
	tg_test_require_env("SOFTHSM2_CONF");
	unsetenv("TOKENGATE_PIN");
	unsetenv("TG_WRAP_MODE");
	snprintf(uri, sizeof(uri), "pkcs11:token=tg-test;object=p256?module-path=%s&pin-value=1234",
	         mod);
	return tg_p11_new(&p, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	tg_p11_free(p);
	unsetenv("TG_WRAP_MODE");
	return 0;
}

struct lie {
	const char *mode;
	const char *reason; /* in the refusal and the accepted key's reason */
};

static void
test_lies(void **state)
{
	static const struct lie v[] = {
	    {"hide-local", "the token does not report CKA_LOCAL, so the key's origin cannot be "
	                   "shown"},
	    {"bool2-local", "the token reports CKA_LOCAL as neither true nor false"},
	    {"bool2-never-extractable",
	     "the token reports CKA_NEVER_EXTRACTABLE as neither true nor false"},
	    {"bool2-always-sensitive",
	     "the token reports CKA_ALWAYS_SENSITIVE as neither true nor false"},
	    {"bool2-sensitive", "the token reports CKA_SENSITIVE as neither true nor false, so the "
	                        "key cannot be shown to be non-exportable"},
	    {"bool2-extractable", "the token reports CKA_EXTRACTABLE as neither true nor false"},
	};
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust tr;
	struct tg_error err;
	size_t i;
	int r;

	(void)state;
	/* no lie: the genuine key is accepted */
	unsetenv("TG_WRAP_MODE");
	tg_error_clear(&err);
	if (tg_p11_key_find(p, uri, 0, &k, &err) != 0)
		fail_msg("through the wrapper without a lie: %s", err.msg);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_OK);
	tg_p11_key_free(k);
	k = NULL;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		setenv("TG_WRAP_MODE", v[i].mode, 1);
		tg_error_clear(&err);
		r = tg_p11_key_find(p, uri, 0, &k, &err);
		if (r != TG_ERR_KEY_EXPORTABLE || strstr(err.msg, v[i].reason) == NULL ||
		    strstr(err.msg, "key 'p256' on token 'tg-test' is refused (unknown): ") ==
		        NULL ||
		    strstr(err.msg, "(--allow-imported, TG_P11_KEY_ALLOW_IMPORTED)") == NULL)
			fail_msg("%s: %d %s", v[i].mode, r, err.msg);
		assert_null(k);
		tg_error_clear(&err);
		if (tg_p11_key_find(p, uri, TG_P11_KEY_ALLOW_IMPORTED, &k, &err) != 0)
			fail_msg("%s with TG_P11_KEY_ALLOW_IMPORTED: %s", v[i].mode, err.msg);
		tg_p11_key_trust(k, &tr);
		assert_int_equal(tr.verdict, TG_P11_TRUST_UNKNOWN);
		assert_non_null(strstr(tr.reason, v[i].reason));
		tg_p11_key_free(k);
		k = NULL;
	}
	setenv("TG_WRAP_MODE", "hide-local", 1);
	assert_int_equal(tg_p11_key_find(p, uri, TG_P11_KEY_ALLOW_IMPORTED, &k, NULL), 0);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.local, TG_P11_ATTR_ABSENT);
	tg_p11_key_free(k);
	setenv("TG_WRAP_MODE", "bool2-never-extractable", 1);
	assert_int_equal(tg_p11_key_find(p, uri, TG_P11_KEY_ALLOW_IMPORTED, &k, NULL), 0);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.never_extractable, TG_P11_ATTR_INVALID);
	tg_p11_key_free(k);
	unsetenv("TG_WRAP_MODE");
}

/* A PKCS#15-emulated token: its attributes (all true here) are no
 * evidence; the host's card evidence decides. */
static void
test_emulated(void **state)
{
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust tr;
	struct tg_error err;
	int r;

	(void)state;
	setenv("TG_WRAP_MODE", "emulated", 1);
	tg_error_clear(&err);
	r = tg_p11_key_find(p, uri, 0, &k, &err);
	if (r != TG_ERR_KEY_EXPORTABLE ||
	    strstr(err.msg, "is refused (unknown): the token is PKCS#15 emulated: its module "
	                    "invents CKA_LOCAL, CKA_NEVER_EXTRACTABLE and CKA_ALWAYS_SENSITIVE, "
	                    "and no card evidence of the key's origin (PIV metadata or "
	                    "attestation) was given; give card evidence") == NULL)
		fail_msg("emulated: %d %s", r, err.msg);
	assert_null(k);
	/* the host adds the card's evidence, then applies the policy */
	tg_error_clear(&err);
	if (tg_p11_key_find(p, uri, TG_P11_KEY_DEFER_TRUST, &k, &err) != 0)
		fail_msg("emulated, deferred: %s", err.msg);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.emulated, 1);
	assert_int_equal(tr.verdict, TG_P11_TRUST_UNKNOWN);
	assert_int_equal(tg_p11_key_origin_set(k, TG_P11_ORIGIN_NONE, "x"), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_p11_key_origin_set(k, TG_P11_ORIGIN_GENERATED, "test metadata"), 0);
	assert_int_equal(tg_p11_key_trust_check(k, 0, NULL), 0);
	tg_p11_key_trust(k, &tr);
	assert_int_equal(tr.verdict, TG_P11_TRUST_OK);
	assert_non_null(strstr(tr.reason, "generated on the card (test metadata)"));
	assert_int_equal(tg_p11_key_origin_set(k, TG_P11_ORIGIN_IMPORTED, "test metadata"), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_p11_key_trust_check(k, 0, &err), TG_ERR_KEY_EXPORTABLE);
	if (strstr(err.msg, "is refused (imported): the card says the key was imported, not "
	                    "generated on it (test metadata)") == NULL)
		fail_msg("emulated, imported evidence: %s", err.msg);
	assert_int_equal(tg_p11_key_trust_check(k, TG_P11_KEY_ALLOW_IMPORTED, NULL), 0);
	tg_p11_key_free(k);
	unsetenv("TG_WRAP_MODE");
}

/* The watcher's rebind re-runs the trust check: a token that stops
 * reporting CKA_LOCAL after a reinsertion is refused. */
static void
test_rebind_rechecks_trust(void **state)
{
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	int r_lie, r_ok;

	(void)state;
	unsetenv("TG_WRAP_MODE");
	assert_int_equal(tg_p11_key_find(p, uri, 0, &k, NULL), 0);
	setenv("TG_WRAP_MODE", "hide-local", 1);
	tg_error_clear(&err);
	tg_p11_lock(p);
	r_lie = tg_p11_key_rebind(k, k->h, &err);
	unsetenv("TG_WRAP_MODE");
	r_ok = tg_p11_key_rebind(k, k->h, NULL);
	tg_p11_unlock(p);
	tg_p11_key_free(k);
	assert_int_equal(r_lie, TG_ERR_KEY_EXPORTABLE);
	assert_non_null(
	    strstr(err.msg, "is refused (unknown): the token does not report CKA_LOCAL"));
	assert_int_equal(r_ok, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lies),
	    cmocka_unit_test(test_emulated),
	    cmocka_unit_test(test_rebind_rechecks_trust),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
