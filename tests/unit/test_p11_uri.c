/* test_p11_uri.c — RFC 7512 URI parsing and PIN sources (pkcs11/uri.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_p11.h"
#include "tg_secret.h"
#include "tg_test.h"

/* Parses a heap copy of exactly strlen(s)+1 bytes (ASan sees over-reads). */
static int
parse_copy(const char *s, struct tg_p11_uri **u, struct tg_error *err)
{
	size_t n = strlen(s) + 1;
	char *c = (char *)tg_test_memdup(s, n);
	int r = tg_p11_uri_parse(c, u, err);

	free(c);
	return r;
}

struct good {
	const char *uri;
	const char *token, *manufacturer, *serial, *model, *object, *type;
	const char *id_hex; /* NULL: no id */
	const char *module_path, *module_name, *pin_value, *pin_source;
	long slot_id; /* -1: none */
};

static const struct good goods[] = {
    {"pkcs11:", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1},
    {"pkcs11:token=alice;object=api;type=private", "alice", NULL, NULL, NULL, "api", "private",
     NULL, NULL, NULL, NULL, NULL, -1},
    {"pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=1a2b;model=SoftHSM%20v2",
     "My Token", "SoftHSM project", "1a2b", "SoftHSM v2", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     -1},
    {"pkcs11:id=%01%02%ff;type=cert", NULL, NULL, NULL, NULL, NULL, "cert", "0102ff", NULL, NULL,
     NULL, NULL, -1},
    {"pkcs11:object=k;type=public", NULL, NULL, NULL, NULL, "k", "public", NULL, NULL, NULL, NULL,
     NULL, -1},
    {"pkcs11:slot-id=7;object=k", NULL, NULL, NULL, NULL, "k", NULL, NULL, NULL, NULL, NULL, NULL,
     7},
    {"pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234", "t", NULL, NULL,
     NULL, NULL, NULL, NULL, "/usr/lib/softhsm/libsofthsm2.so", NULL, "1234", NULL, -1},
    {"pkcs11:token=t?module-name=softhsm2&pin-source=file:/run/pin", "t", NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, "softhsm2", NULL, "file:/run/pin", -1},
    {"pkcs11:object=a%3Bb?pin-source=env:MY_PIN", NULL, NULL, NULL, NULL, "a;b", NULL, NULL, NULL,
     NULL, NULL, "env:MY_PIN", -1},
    /* RFC 7512 6.2: unknown query attributes are ignored */
    {"pkcs11:token=t?x-vendor=1", "t", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     -1},
};

static void
check_str(const struct tg_p11_uri *u, enum tg_p11_uri_attr a, const char *want, const char *uri)
{
	const char *got = tg_p11_uri_get(u, a);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s: attribute %d: want none, got '%s'", uri, (int)a, got);
	} else {
		if (got == NULL || strcmp(got, want) != 0)
			fail_msg("%s: attribute %d: want '%s', got '%s'", uri, (int)a, want,
			         got ? got : "(none)");
	}
}

static void
test_good(void **state)
{
	struct tg_p11_uri *u;
	struct tg_error err;
	const uint8_t *id;
	size_t idl, i, hl;
	unsigned long slot;
	unsigned char *want;

	(void)state;
	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];

		tg_error_clear(&err);
		u = NULL;
		if (parse_copy(g->uri, &u, &err) != 0)
			fail_msg("'%s' rejected: %s", g->uri, err.msg);
		check_str(u, TG_P11_URI_TOKEN, g->token, g->uri);
		check_str(u, TG_P11_URI_MANUFACTURER, g->manufacturer, g->uri);
		check_str(u, TG_P11_URI_SERIAL, g->serial, g->uri);
		check_str(u, TG_P11_URI_MODEL, g->model, g->uri);
		check_str(u, TG_P11_URI_OBJECT, g->object, g->uri);
		check_str(u, TG_P11_URI_TYPE, g->type, g->uri);
		check_str(u, TG_P11_URI_MODULE_PATH, g->module_path, g->uri);
		check_str(u, TG_P11_URI_MODULE_NAME, g->module_name, g->uri);
		check_str(u, TG_P11_URI_PIN_VALUE, g->pin_value, g->uri);
		check_str(u, TG_P11_URI_PIN_SOURCE, g->pin_source, g->uri);
		if (g->id_hex == NULL) {
			assert_int_equal(tg_p11_uri_id(u, &id, &idl), 0);
		} else {
			want = tg_test_hexdup(g->id_hex, &hl);
			assert_int_equal(tg_p11_uri_id(u, &id, &idl), 1);
			assert_int_equal(idl, hl);
			assert_memory_equal(id, want, hl);
			free(want);
		}
		if (g->slot_id < 0) {
			assert_int_equal(tg_p11_uri_slot_id(u, &slot), 0);
		} else {
			assert_int_equal(tg_p11_uri_slot_id(u, &slot), 1);
			assert_int_equal(slot, (unsigned long)g->slot_id);
		}
		tg_p11_uri_free(u);
	}
}

struct bad {
	const char *uri;
	const char *part; /* the offending part the message must show */
};

static const struct bad bads[] = {
    {"pkcs12:token=a", "pkcs12:token=a"},
    {"token=a", "token=a"},
    {"", ""},
    {"pkcs11:token=a%zz", "token=a%zz"},
    {"pkcs11:token=alice;object=a%4", "object=a%4"},
    {"pkcs11:token=alice;colour=blue", "colour=blue"},
    {"pkcs11:token=alice;type=banana", "type=banana"},
    {"pkcs11:token=alice;slot-id=abc", "slot-id=abc"},
    {"pkcs11:token=alice;library-version=x.y", "library-version=x.y"},
    {"pkcs11:token=a?pin-value=%GG", "pin-value=***"},
};

static void
test_bad(void **state)
{
	struct tg_p11_uri *u;
	struct tg_error err;
	char want[256];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		tg_error_clear(&err);
		u = NULL;
		r = parse_copy(bads[i].uri, &u, &err);
		if (r != TG_ERR_URI)
			fail_msg("'%s' accepted or wrong code %d", bads[i].uri, r);
		assert_null(u);
		/* the message shows the URI and the offending part */
		snprintf(want, sizeof(want), "'%s'", bads[i].part);
		if (strstr(err.msg, want) == NULL)
			fail_msg("'%s': message lacks %s: %s", bads[i].uri, want, err.msg);
		if (strstr(bads[i].uri, "pin-value") == NULL &&
		    strstr(err.msg, bads[i].uri) == NULL)
			fail_msg("'%s': message lacks the URI: %s", bads[i].uri, err.msg);
	}
}

static void
test_pin_value_masked(void **state)
{
	struct tg_p11_uri *u = NULL;
	struct tg_error err;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(parse_copy("pkcs11:token=a;bogus=1?pin-value=s3cret", &u, &err),
	                 TG_ERR_URI);
	assert_null(strstr(err.msg, "s3cret"));
	assert_non_null(strstr(err.msg, "pin-value=***"));

	/* found by fuzz_p11_uri: a bad scheme showed the whole URI, and a
	 * second pin-value or one inside another segment was not masked */
	{
		static const char *const leaky[] = {
		    "pp\211cs11:token=a;bogus=1?pin-value=s3cretpin",
		    "pkcs11:type=cert?;pin-source=env:X?p?pin-value=s3cretpin",
		    "pkcs11:token=a;bogus=1?pin-value=x&pin-value=s3cretpin",
		    "zz?pin-value=other&pin-value=s3cretpin",
		};
		size_t i;

		for (i = 0; i < sizeof(leaky) / sizeof(leaky[0]); i++) {
			tg_error_clear(&err);
			assert_int_equal(parse_copy(leaky[i], &u, &err), TG_ERR_URI);
			if (strstr(err.msg, "s3cretpin") != NULL)
				fail_msg("'%s': message shows the PIN: %s", leaky[i], err.msg);
		}
	}
}

/* The URI's PIN source is described, not read (tg_pin_src.h has the
 * reads); a bad pin-source is refused with the spec named. */
static void
test_pin_src_of_uri(void **state)
{
	static const struct {
		const char *uri;
		enum tg_pin_kind kind;
		const char *desc;
	} v[] = {
	    {"pkcs11:token=t", TG_PIN_DEFAULT, "TOKENGATE_PIN or a prompt"},
	    {"pkcs11:token=t?pin-value=2222", TG_PIN_VALUE, "pin-value"},
	    {"pkcs11:token=t?pin-value=2222&pin-source=env:X", TG_PIN_VALUE, "pin-value"},
	    {"pkcs11:token=t?pin-source=file:/run/pin", TG_PIN_FILE, "pin-source=file:/run/pin"},
	    {"pkcs11:token=t?pin-source=/run/pin", TG_PIN_FILE, "pin-source=file:/run/pin"},
	    {"pkcs11:token=t?pin-source=env:MY_PIN", TG_PIN_ENV, "pin-source=env:MY_PIN"},
	};
	struct tg_p11_uri *u = NULL;
	struct tg_pin_src *src = NULL;
	struct tg_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		tg_error_clear(&err);
		assert_int_equal(parse_copy(v[i].uri, &u, &err), 0);
		if (tg_p11_uri_pin_src(u, &src, &err) != 0)
			fail_msg("%s: %s", v[i].uri, err.msg);
		assert_int_equal(tg_pin_src_kind(src), v[i].kind);
		assert_string_equal(tg_pin_src_describe(src), v[i].desc);
		tg_pin_src_free(src);
		tg_p11_uri_free(u);
	}
	tg_error_clear(&err);
	assert_int_equal(parse_copy("pkcs11:token=t?pin-source=http:%2F%2Fx", &u, &err), 0);
	assert_int_equal(tg_p11_uri_pin_src(u, &src, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg,
	                    "pin-source 'http://x' is not supported; use file:PATH or env:NAME");
	tg_p11_uri_free(u);
}

/* tg_p11_uri_format: p11-kit's format, never the pin-value; the URI is
 * left as parsed. */
static void
test_format(void **state)
{
	struct tg_p11_uri *u = NULL;
	struct tg_error err;
	char *s = NULL;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(
	    parse_copy("pkcs11:token=My%20Tok;object=a%3Bb;id=%01%ff?pin-value=s3cretpin", &u,
	               &err),
	    0);
	assert_int_equal(tg_p11_uri_format(u, NULL, &s, &err), 0);
	assert_string_equal(s, "pkcs11:token=My%20Tok;id=%01%FF;object=a%3Bb");
	free(s);
	/* a pasteable form: the pin-value replaced by a pin-source */
	assert_int_equal(tg_p11_uri_format(u, "env:TOKENGATE_PIN", &s, &err), 0);
	assert_string_equal(
	    s, "pkcs11:token=My%20Tok;id=%01%FF;object=a%3Bb?pin-source=env%3ATOKENGATE_PIN");
	free(s);
	assert_string_equal(tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE), "s3cretpin");
	tg_p11_uri_free(u);
	/* an explicit pin-source stays */
	assert_int_equal(parse_copy("pkcs11:token=t?pin-source=file:/p", &u, &err), 0);
	assert_int_equal(tg_p11_uri_format(u, "env:TOKENGATE_PIN", &s, &err), 0);
	assert_string_equal(s, "pkcs11:token=t?pin-source=file%3A%2Fp");
	free(s);
	tg_p11_uri_free(u);
}

static void
test_mask(void **state)
{
	static const char *const v[][2] = {
	    {"pkcs11:token=t?pin-value=1234", "pkcs11:token=t?pin-value=***"},
	    {"pkcs11:?pin-value=1&module-name=x&pin-value=2",
	     "pkcs11:?pin-value=***&module-name=x&pin-value=***"},
	    {"no pin here", "no pin here"},
	};
	size_t i;
	char *m;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_non_null(m = tg_p11_uri_mask(v[i][0]));
		assert_string_equal(m, v[i][1]);
		free(m);
	}
}

static void
test_alg_names(void **state)
{
	static const char *names[] = {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072"};
	static const char *bad[] = {"", "ec", "rsa", "ec-p521", "RSA-2048", "rsa-1024"};
	enum tg_p11_alg a;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		assert_int_equal(tg_p11_alg_parse(names[i], &a), 0);
		assert_string_equal(tg_p11_alg_name(a), names[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tg_p11_alg_parse(bad[i], &a), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_p11_alg_parse(NULL, &a), TG_ERR_INVALID_ARG);
}

/* NULL and out-of-range arguments, and the URIs of listed objects. */
static void
test_edges(void **state)
{
	struct tg_p11_uri *u = NULL;
	struct tg_p11_token_info ti;
	struct tg_p11_object_info o;
	struct tg_error err;
	const uint8_t *id;
	unsigned long slot;
	size_t idl;
	char *s = NULL;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(tg_p11_uri_parse(NULL, &u, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "no PKCS#11 URI given");
	assert_int_equal(tg_p11_uri_parse("pkcs11:", NULL, NULL), TG_ERR_INVALID_ARG);
	assert_null(tg_p11_uri_get(NULL, TG_P11_URI_TOKEN));
	assert_int_equal(tg_p11_uri_id(NULL, &id, &idl), 0);
	assert_int_equal(tg_p11_uri_slot_id(NULL, &slot), 0);
	tg_p11_uri_free(NULL);
	assert_int_equal(parse_copy("pkcs11:token=t", &u, &err), 0);
	assert_null(tg_p11_uri_get(u, TG_P11_URI_ATTR_COUNT));
	assert_null(tg_p11_uri_get(u, (enum tg_p11_uri_attr) - 1));
	assert_int_equal(tg_p11_uri_id(u, &id, &idl), 0);
	assert_int_equal(tg_p11_uri_slot_id(u, &slot), 0);
	tg_p11_uri_free(u);
	/* token and object URIs; empty fields are left out */
	memset(&ti, 0, sizeof(ti));
	snprintf(ti.label, sizeof(ti.label), "alice");
	snprintf(ti.serial, sizeof(ti.serial), "42");
	assert_int_equal(tg_p11_object_uri(&ti, NULL, &s), 0);
	assert_non_null(strstr(s, "token=alice"));
	assert_non_null(strstr(s, "serial=42"));
	assert_null(strstr(s, "model="));
	assert_null(strstr(s, "type="));
	free(s);
	memset(&o, 0, sizeof(o));
	o.cls = TG_P11_OBJ_PRIVATE_KEY;
	snprintf(o.label, sizeof(o.label), "api");
	o.id[0] = 0x0a;
	o.id_len = o.id_full_len = 1;
	assert_int_equal(tg_p11_object_uri(&ti, &o, &s), 0);
	assert_non_null(strstr(s, "type=private"));
	assert_non_null(strstr(s, "object=api"));
	assert_non_null(strstr(s, "id=%0A"));
	free(s);
	/* a public key without a label; an id the listing kept only part of
	 * is left out rather than shown wrong */
	o.cls = TG_P11_OBJ_PUBLIC_KEY;
	o.label[0] = '\0';
	o.id_full_len = 100;
	assert_int_equal(tg_p11_object_uri(&ti, &o, &s), 0);
	assert_non_null(strstr(s, "type=public"));
	assert_null(strstr(s, "object="));
	assert_null(strstr(s, "id="));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_pin_value_masked),
	    cmocka_unit_test(test_pin_src_of_uri),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_mask),
	    cmocka_unit_test(test_alg_names),
	    cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
