/*
 * test_ca_hsm.c — the HSM rules of level hsm-operator (host/ca/hsm.c) as
 * pure functions: tg_ca_hsm_rules with one table row per attribute (each
 * trust attribute alone false, unknown or true, and the PIN policy
 * derivation from CKA_ALWAYS_AUTHENTICATE, CKA_PRIVATE and the token's
 * login flag); tg_ca_hsm_module_check by canonical path (a symlink is its
 * target, "dir/../x" is x, a path that only starts like a listed one is
 * not); tg_ca_hsm_token_check with fnmatch globs. The whole check on
 * SoftHSM2 is tests/integration/test_ca_hsm.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_ca_hsm.h"
#include "tg_test.h"

enum attr {
	A_NONE,
	A_EXTRACTABLE,
	A_SENSITIVE,
	A_ALWAYS_SENSITIVE,
	A_NEVER_EXTRACTABLE,
	A_LOCAL,
	A_ALWAYS_AUTH,
	A_PRIVATE,
	A_EMULATED,
};

struct rule_case {
	enum attr attr;     /* the one attribute changed from a good key */
	int value;          /* 1, 0, -1 (not reported) or -2 (not 0/1) */
	int login_required; /* the token's CKF_LOGIN_REQUIRED */
	int ok;
	enum tg_att_pin pin; /* when ok */
	const char *msg;     /* part of the refusal */
};

/* A good key: non-exportable, generated on the token, private, no
 * CKA_ALWAYS_AUTHENTICATE; each row changes one attribute. */
static const struct rule_case rule_cases[] = {
    {A_NONE, 0, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_EXTRACTABLE, 1, 1, 0, 0, "HSM key 'k' is exportable (CKA_EXTRACTABLE is true)"},
    {A_EXTRACTABLE, -1, 1, 0, 0, "HSM key 'k' is exportable (CKA_EXTRACTABLE is unknown"},
    {A_EXTRACTABLE, -2, 1, 0, 0,
     "HSM key 'k' is exportable (CKA_EXTRACTABLE is unknown (the token reports a value other"},
    {A_EXTRACTABLE, 0, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_SENSITIVE, 0, 1, 0, 0, "HSM key 'k' is not sensitive (CKA_SENSITIVE is false)"},
    {A_SENSITIVE, -1, 1, 0, 0, "HSM key 'k' is not sensitive (CKA_SENSITIVE is unknown"},
    {A_SENSITIVE, 1, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_ALWAYS_SENSITIVE, 0, 1, 0, 0,
     "HSM key 'k' was not always sensitive (CKA_ALWAYS_SENSITIVE is false)"},
    {A_ALWAYS_SENSITIVE, -1, 1, 0, 0,
     "HSM key 'k' was not always sensitive (CKA_ALWAYS_SENSITIVE is unknown"},
    {A_ALWAYS_SENSITIVE, 1, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_NEVER_EXTRACTABLE, 0, 1, 0, 0,
     "HSM key 'k' was exportable once (CKA_NEVER_EXTRACTABLE is false)"},
    {A_NEVER_EXTRACTABLE, -1, 1, 0, 0,
     "HSM key 'k' was exportable once (CKA_NEVER_EXTRACTABLE is unknown"},
    {A_NEVER_EXTRACTABLE, 1, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_LOCAL, 0, 1, 0, 0, "HSM key 'k' was not generated on the token (CKA_LOCAL is false)"},
    {A_LOCAL, -1, 1, 0, 0, "HSM key 'k' was not generated on the token (CKA_LOCAL is unknown"},
    {A_LOCAL, 1, 1, 1, TG_ATT_PIN_ONCE, NULL},
    /* the PIN policy recorded */
    {A_ALWAYS_AUTH, 1, 1, 1, TG_ATT_PIN_ALWAYS, NULL},
    {A_ALWAYS_AUTH, 1, 0, 1, TG_ATT_PIN_ALWAYS, NULL},
    {A_ALWAYS_AUTH, -1, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_ALWAYS_AUTH, 0, 1, 1, TG_ATT_PIN_ONCE, NULL},
    {A_NONE, 0, 0, 1, TG_ATT_PIN_NEVER, NULL}, /* private, token needs no login */
    {A_PRIVATE, 0, 1, 1, TG_ATT_PIN_NEVER, NULL},
    {A_PRIVATE, -1, 1, 1, TG_ATT_PIN_NEVER, NULL},
    {A_PRIVATE, 1, 0, 1, TG_ATT_PIN_NEVER, NULL},
    {A_PRIVATE, 1, 1, 1, TG_ATT_PIN_ONCE, NULL},
    /* OpenSC's PKCS#15 emulation invents the origin attributes */
    {A_EMULATED, 1, 1, 0, 0, "HSM key 'k' is on a PKCS#15-emulated token"},
    {A_EMULATED, 0, 1, 1, TG_ATT_PIN_ONCE, NULL},
};

static void
test_rules(void **state)
{
	const struct rule_case *c;
	struct tg_p11_trust t;
	struct tg_error err;
	enum tg_att_pin pin;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		c = &rule_cases[i];
		memset(&t, 0, sizeof(t));
		t.extractable = 0;
		t.sensitive = t.always_sensitive = t.never_extractable = t.local = 1;
		t.always_authenticate = 0;
		t.private_obj = 1;
		switch (c->attr) {
		case A_EXTRACTABLE:
			t.extractable = c->value;
			break;
		case A_SENSITIVE:
			t.sensitive = c->value;
			break;
		case A_ALWAYS_SENSITIVE:
			t.always_sensitive = c->value;
			break;
		case A_NEVER_EXTRACTABLE:
			t.never_extractable = c->value;
			break;
		case A_LOCAL:
			t.local = c->value;
			break;
		case A_ALWAYS_AUTH:
			t.always_authenticate = c->value;
			break;
		case A_PRIVATE:
			t.private_obj = c->value;
			break;
		case A_EMULATED:
			t.emulated = c->value;
			break;
		default:
			break;
		}
		tg_error_clear(&err);
		pin = (enum tg_att_pin)0;
		r = tg_ca_hsm_rules(&t, c->login_required, "k", &pin, &err);
		if (c->ok && (r != 0 || pin != c->pin))
			fail_msg("row %zu: r=%d pin=%s (want %s) msg='%s'", i, r,
			         tg_att_pin_name(pin), tg_att_pin_name(c->pin), err.msg);
		if (!c->ok && (r != TG_ERR_KEY_EXPORTABLE || strstr(err.msg, c->msg) == NULL))
			fail_msg("row %zu: r=%d msg='%s' (want '%s')", i, r, err.msg, c->msg);
	}
}

struct paths {
	char dir[64];
	char lib[128];   /* a file standing for a listed module */
	char other[128]; /* a file no entry lists */
	char link[128];  /* a symlink to lib */
};

static void
paths_make(struct paths *p)
{
	FILE *f;

	snprintf(p->dir, sizeof(p->dir), "/tmp/tg-test-hsm-XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	assert_true(snprintf(p->lib, sizeof(p->lib), "%s/hsm.so", p->dir) < 128);
	assert_true(snprintf(p->other, sizeof(p->other), "%s/evil.so", p->dir) < 128);
	assert_true(snprintf(p->link, sizeof(p->link), "%s/link.so", p->dir) < 128);
	assert_non_null(f = fopen(p->lib, "w"));
	fclose(f);
	assert_non_null(f = fopen(p->other, "w"));
	fclose(f);
	assert_int_equal(symlink(p->lib, p->link), 0);
}

static void
paths_remove(const struct paths *p)
{
	unlink(p->link);
	unlink(p->lib);
	unlink(p->other);
	rmdir(p->dir);
}

static void
test_module_check(void **state)
{
	struct tg_ca_hsm_token e;
	struct tg_ca_policy pol;
	struct tg_error err;
	struct paths p;
	char canon[4096], path[512];

	(void)state;
	paths_make(&p);
	memset(&pol, 0, sizeof(pol));
	memset(&e, 0, sizeof(e));
	/* nothing listed: refused, naming hsm_tokens and the path */
	assert_int_equal(tg_ca_hsm_module_check(&pol, p.lib, canon, sizeof(canon), &err),
	                 TG_ERR_POLICY);
	assert_non_null(strstr(err.msg, "is not listed in hsm_tokens"));
	assert_non_null(strstr(err.msg, "modules listed: none"));
	assert_non_null(strstr(err.msg, p.lib));
	/* listed through the symlink: the file itself and the link pass */
	snprintf(e.module, sizeof(e.module), "%s", p.link);
	pol.hsm_tokens = &e;
	pol.nhsm_tokens = 1;
	assert_int_equal(tg_ca_hsm_module_check(&pol, p.lib, canon, sizeof(canon), &err), 0);
	assert_string_equal(canon, p.lib);
	assert_int_equal(tg_ca_hsm_module_check(&pol, p.link, canon, sizeof(canon), &err), 0);
	assert_string_equal(canon, p.lib);
	/* "dir/../dir/hsm.so" is hsm.so */
	assert_true(snprintf(path, sizeof(path), "%s/../%s/hsm.so", p.dir, p.dir + 5) <
	            (int)sizeof(path));
	assert_int_equal(tg_ca_hsm_module_check(&pol, path, canon, sizeof(canon), &err), 0);
	assert_string_equal(canon, p.lib);
	/* another file, also behind a path that starts like the listed one */
	assert_int_equal(tg_ca_hsm_module_check(&pol, p.other, canon, sizeof(canon), &err),
	                 TG_ERR_POLICY);
	assert_non_null(strstr(err.msg, "is not listed in hsm_tokens"));
	assert_true(snprintf(path, sizeof(path), "%s/../../..%s", p.lib, p.other) <
	            (int)sizeof(path));
	assert_int_equal(tg_ca_hsm_module_check(&pol, path, canon, sizeof(canon), &err),
	                 TG_ERR_POLICY);
	/* a file that does not exist is not listed either */
	assert_true(snprintf(path, sizeof(path), "%s/nope.so", p.dir) < (int)sizeof(path));
	assert_int_equal(tg_ca_hsm_module_check(&pol, path, canon, sizeof(canon), &err),
	                 TG_ERR_POLICY);
	paths_remove(&p);
}

struct token_case {
	const char *manufacturer, *model, *serial; /* globs of the entry */
	int ok;
};

static const struct token_case token_cases[] = {
    {"", "", "", 1},
    {"SoftHSM project", "SoftHSM v2", "0123abcd", 1},
    {"SoftHSM*", "SoftHSM v[0-9]", "0123*", 1},
    {"Thales*", "", "", 0},
    {"", "SoftHSM v3", "", 0},
    {"", "", "9*", 0},
    {"", "", "0123abc", 0},
};

static void
test_token_check(void **state)
{
	struct tg_p11_token_info ti;
	struct tg_ca_hsm_token e;
	struct tg_ca_policy pol;
	struct tg_error err;
	struct paths p;
	char canon[4096];
	size_t i;
	int r;

	(void)state;
	paths_make(&p);
	assert_non_null(realpath(p.lib, canon));
	memset(&ti, 0, sizeof(ti));
	snprintf(ti.label, sizeof(ti.label), "tg-test");
	snprintf(ti.manufacturer, sizeof(ti.manufacturer), "SoftHSM project");
	snprintf(ti.model, sizeof(ti.model), "SoftHSM v2");
	snprintf(ti.serial, sizeof(ti.serial), "0123abcd");
	memset(&pol, 0, sizeof(pol));
	pol.hsm_tokens = &e;
	pol.nhsm_tokens = 1;
	for (i = 0; i < sizeof(token_cases) / sizeof(token_cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		snprintf(e.module, sizeof(e.module), "%s", p.link);
		snprintf(e.manufacturer, sizeof(e.manufacturer), "%s", token_cases[i].manufacturer);
		snprintf(e.model, sizeof(e.model), "%s", token_cases[i].model);
		snprintf(e.serial, sizeof(e.serial), "%s", token_cases[i].serial);
		tg_error_clear(&err);
		r = tg_ca_hsm_token_check(&pol, canon, &ti, &err);
		if (token_cases[i].ok ? r != 0 : r != TG_ERR_POLICY)
			fail_msg("row %zu: r=%d msg='%s'", i, r, err.msg);
		if (!token_cases[i].ok && strstr(err.msg, "token 'tg-test' (module '") == NULL)
			fail_msg("row %zu: msg='%s'", i, err.msg);
	}
	/* the entry lists another module: the token does not match */
	memset(&e, 0, sizeof(e));
	snprintf(e.module, sizeof(e.module), "%s", p.other);
	assert_int_equal(tg_ca_hsm_token_check(&pol, canon, &ti, &err), TG_ERR_POLICY);
	assert_non_null(strstr(err.msg, "manufacturer 'SoftHSM project', model 'SoftHSM v2', "
	                                "serial '0123abcd') matches no entry of hsm_tokens"));
	paths_remove(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_module_check),
	    cmocka_unit_test(test_token_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
