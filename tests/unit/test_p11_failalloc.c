/*
 * test_p11_failalloc.c — libtgp11 under allocation failure
 * (tg_test_failalloc.h): every allocation of URI handling and of token
 * listing (SoftHSM2's fixture token tg-test, with-softhsm.sh) is made to
 * fail in turn. Each must fail with a message, or absorb the failure with
 * the same answer; a malformed URI is never accepted. (Key lookups are not
 * swept: SoftHSM2's own OpenSSL allocations share the counter, and a
 * module failing C_GetAttributeValue for CKA_LABEL is read as no label.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_p11.h"
#include "tg_secret.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

static struct tg_p11 *p;

/* Parse, format (with a pin-source in place of the pin-value), the PIN
 * source, another module, a mask and an object URI. */
static int
op_uri(void *ctx, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	struct tg_pin_src *src = NULL;
	struct tg_p11_token_info ti;
	struct tg_p11_object_info o;
	char *s = NULL, *m = NULL, *wm = NULL, *ou = NULL;
	int r;

	(void)ctx;
	memset(&ti, 0, sizeof(ti));
	memset(&o, 0, sizeof(o));
	snprintf(ti.label, sizeof(ti.label), "alice");
	o.cls = TG_P11_OBJ_CERT;
	snprintf(o.label, sizeof(o.label), "api");
	o.id_len = o.id_full_len = 1;
	if ((r = tg_p11_uri_parse("pkcs11:token=My%20Tok;object=a%3Bb;id=%01%ff;type=private"
	                          "?module-name=x&pin-value=1234",
	                          &u, err)) != 0 ||
	    (r = tg_p11_uri_format(u, "env:TOKENGATE_PIN", &s, err)) != 0 ||
	    (r = tg_p11_uri_pin_src(u, &src, err)) != 0 ||
	    (r = tg_p11_uri_with_module(u, "/opt/m.so", &wm, err)) != 0)
		goto out;
	if ((m = tg_p11_uri_mask("pkcs11:?pin-value=1&pin-value=2")) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "tg_p11_uri_mask: out of memory");
		goto out;
	}
	if ((r = tg_p11_object_uri(&ti, &o, &ou)) != 0) {
		tg_error_set(err, r, "tg_p11_object_uri failed");
		goto out;
	}
	tg_failalloc_hold(1);
	assert_non_null(strstr(s, "pin-source=env%3ATOKENGATE_PIN"));
	assert_null(strstr(s, "1234"));
	assert_non_null(strstr(wm, "module-path=%2Fopt%2Fm.so"));
	assert_null(strstr(wm, "module-name"));
	assert_string_equal(tg_p11_uri_get(u, TG_P11_URI_OBJECT), "a;b");
	assert_string_equal(m, "pkcs11:?pin-value=***&pin-value=***");
	assert_non_null(strstr(ou, "type=cert"));
	tg_failalloc_hold(0);
	r = 0;
out:
	tg_failalloc_hold(1);
	free(ou);
	free(m);
	tg_strfreezero(wm); /* may hold the pin-value */
	free(s);
	tg_pin_src_free(src);
	tg_p11_uri_free(u);
	tg_failalloc_hold(0);
	return r;
}

/* A malformed URI: refused on every path, the PIN never shown. */
static int
op_uri_bad(void *ctx, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	int r;

	(void)ctx;
	r = tg_p11_uri_parse("pkcs11:token=a;bogus=1?pin-value=s3cretpin", &u, err);
	tg_failalloc_hold(1);
	assert_null(u);
	assert_null(strstr(err->msg, "s3cretpin"));
	tg_failalloc_hold(0);
	return r;
}

static int
op_tokens(void *ctx, struct tg_error *err)
{
	struct tg_p11_token_info *v = NULL;
	size_t n = 0;
	int r;

	(void)ctx;
	if ((r = tg_p11_tokens_list(p, "pkcs11:token=tg-test", &v, &n, err)) == 0) {
		tg_failalloc_hold(1);
		assert_int_equal(n, 1);
		assert_string_equal(v[0].label, "tg-test");
		tg_failalloc_hold(0);
	}
	free(v);
	return r;
}

static void
test_uri(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("p11 uri", op_uri, NULL) > 0);
	assert_true(tg_failalloc_sweep("p11 uri, malformed", op_uri_bad, NULL) > 0);
}

static void
test_tokens(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("p11 tokens list", op_tokens, NULL) > 0);
}

static int
setup(void **state)
{
	(void)state;
	tg_test_require_env("SOFTHSM2_CONF");
	unsetenv("TOKENGATE_PIN");
	return tg_p11_new(&p, NULL);
}

static int
teardown(void **state)
{
	(void)state;
	tg_p11_free(p);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uri),
	    cmocka_unit_test(test_tokens),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
