/*
 * test_gate_path.c — the request path's normal form (host/gate/path.c):
 * a table of accepted paths and their normal form, and a table of refused
 * paths with the reason, including the bypass attempts of the gate's
 * issue (/v1/datasets/../../admin, %2e%2e, %2f, //admin, /admin/); the
 * request-target's forms (tg_gate_path_target): origin- and absolute-form,
 * the authority's checks, the forms refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_err.h"
#include "tg_gate_path.h"
#include "tg_test.h"

struct good {
	const char *in;
	const char *want;
};

static const struct good goods[] = {
    {"/", "/"},
    {"/a/b", "/a/b"},
    {"/a/b?x=1&y=/../", "/a/b"},
    {"//admin", "/admin"},
    {"///a//b///c", "/a/b/c"},
    {"/admin/", "/admin/"},
    {"/a/./b", "/a/b"},
    {"/a/b/..", "/a/"},
    {"/a/b/../c", "/a/c"},
    {"/a/.", "/a/"},
    {"/v1/datasets/x/../y", "/v1/datasets/y"},
    {"/v1/datasets/%2e%2e/admin", "/v1/admin"},
    {"/v1/%2E%2E/admin", "/admin"},
    {"/%2e/a", "/a"},
    {"/%7Euser/%41%62%2D%5f", "/~user/Ab-_"},
    {"/a%20b", "/a%20b"},
    {"/a%3fb%3F", "/a%3Fb%3F"},
    {"/caf%c3%a9", "/caf%C3%A9"},
    {"/a..b/.c/..d", "/a..b/.c/..d"},
    {"/a/..%2e", "/a/..."},
    {"/a/*/b", "/a/*/b"},
    {"/a;b=c,d", "/a;b=c,d"},
};

#define BADCHAR                                                                                    \
	"the path holds a character that must be percent-encoded (such as a space, '\\' or '#')"

struct bad {
	const char *in;
	const char *why;
};

static const struct bad bads[] = {
    {"", "the path does not start with '/'"},
    {"a/b", "the path does not start with '/'"},
    {"*", "the path does not start with '/'"},
    {"http://h/a", "the path does not start with '/'"},
    {"?q", "the path does not start with '/'"},
    {"/..", "the path climbs above the root with '..'"},
    {"/v1/datasets/../../../admin", "the path climbs above the root with '..'"},
    {"/a/../..", "the path climbs above the root with '..'"},
    {"/%2e%2e/admin", "the path climbs above the root with '..'"},
    {"/%2E./admin", "the path climbs above the root with '..'"},
    {"/a%2fb", "the path holds an encoded slash (%2F)"},
    {"/v1/datasets/..%2F..%2Fadmin", "the path holds an encoded slash (%2F)"},
    {"/a%2Fb", "the path holds an encoded slash (%2F)"},
    {"/a%5cb", "the path holds an encoded backslash (%5C)"},
    {"/a%00b", "the path holds an encoded NUL (%00)"},
    {"/a%", "the path has a bad percent escape ('%' needs two hex digits)"},
    {"/a%4", "the path has a bad percent escape ('%' needs two hex digits)"},
    {"/a%4?x", "the path has a bad percent escape ('%' needs two hex digits)"},
    {"/a%g1", "the path has a bad percent escape ('%' needs two hex digits)"},
    {"/a\\..\\admin", BADCHAR},
    {"/a#frag", BADCHAR},
    {"/a b", BADCHAR},
    {"/v1/daPOST ta/", BADCHAR},
    {"/a\"b", BADCHAR},
    {"/a<b>", BADCHAR},
    {"/a[0]", BADCHAR},
    {"/a{b}", BADCHAR},
    {"/a|b", BADCHAR},
    {"/a^b", BADCHAR},
    {"/a`b", BADCHAR},
    {"/a\tb", "the path holds a control byte, NUL or non-ASCII byte (percent-encode it)"},
    {"/a\x7f", "the path holds a control byte, NUL or non-ASCII byte (percent-encode it)"},
    {"/caf\xc3\xa9", "the path holds a control byte, NUL or non-ASCII byte (percent-encode it)"},
};

static void
test_good(void **state)
{
	char out[TG_GATE_PATH_MAX];
	const char *why = "unset";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		if (goods[i].want[0] == '\0')
			continue;
		assert_int_equal(tg_gate_path_normalize(goods[i].in, strlen(goods[i].in), out,
		                                        sizeof(out), &why),
		                 0);
		assert_null(why);
		assert_string_equal(out, goods[i].want);
	}
}

static void
test_bad(void **state)
{
	char out[TG_GATE_PATH_MAX];
	const char *why = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		print_message("%s\n", bads[i].in);
		why = NULL;
		memcpy(out, "junk", 5);
		assert_int_equal(
		    tg_gate_path_normalize(bads[i].in, strlen(bads[i].in), out, sizeof(out), &why),
		    TG_ERR_FORMAT);
		assert_non_null(why);
		assert_string_equal(why, bads[i].why);
		assert_string_equal(out, "");
	}
}

/* A raw NUL inside the length is refused, not taken as the end. */
static void
test_nul(void **state)
{
	char out[64];
	const char *why = NULL;

	(void)state;
	assert_int_equal(tg_gate_path_normalize("/a\0/../admin", 12, out, sizeof(out), &why),
	                 TG_ERR_FORMAT);
	assert_string_equal(why, "the path holds a control byte, NUL or non-ASCII byte "
	                         "(percent-encode it)");
}

/* Output that does not fit: refused, also when only the decoding grows. */
static void
test_overlong(void **state)
{
	char out[8];
	const char *why = NULL;

	(void)state;
	assert_int_equal(tg_gate_path_normalize("/abcdef", 7, out, sizeof(out), &why), 0);
	assert_string_equal(out, "/abcdef");
	assert_int_equal(tg_gate_path_normalize("/abcdefg", 8, out, sizeof(out), &why),
	                 TG_ERR_FORMAT);
	assert_string_equal(why, "the path is too long");
	assert_int_equal(tg_gate_path_normalize("/abcdef/", 8, out, sizeof(out), &why),
	                 TG_ERR_FORMAT);
	assert_string_equal(why, "the path is too long");
	/* too long before ".." shortens it: still refused */
	assert_int_equal(tg_gate_path_normalize("/abcdefghij/../x", 16, out, sizeof(out), &why),
	                 TG_ERR_FORMAT);
	assert_string_equal(why, "the path is too long");
	/* a segment longer than TG_GATE_PATH_MAX */
	{
		static char big[TG_GATE_PATH_MAX + 2];
		char o2[TG_GATE_PATH_MAX];

		memset(big, 'a', sizeof(big));
		big[0] = '/';
		assert_int_equal(tg_gate_path_normalize(big, sizeof(big), o2, sizeof(o2), &why),
		                 TG_ERR_FORMAT);
		assert_string_equal(why, "the path is too long");
	}
}

static void
test_query(void **state)
{
	(void)state;
	assert_int_equal(tg_gate_path_query("/a?b", 4), 2);
	assert_int_equal(tg_gate_path_query("/a", 2), 2);
	assert_int_equal(tg_gate_path_query("/a?b?c", 6), 2);
}

/* A request-target of either form, its normal path and its authority. */
struct tcase {
	const char *in;
	const char *want; /* the normal path, or NULL: refused */
	const char *auth; /* the authority ("": origin-form), or the reason */
};

static const struct tcase tcases[] = {
    {"/a/../b?q", "/b", ""},
    {"http://api/v1/x", "/v1/x", "api"},
    {"HTTPS://Api.Example:8443/a/./b?x=/../", "/a/b", "Api.Example:8443"},
    {"hTtP://api", "/", "api"},
    {"http://api?q=1", "/", "api"},
    {"http://api/", "/", "api"},
    {"http://api:/x", "/x", "api:"},
    {"http://127.0.0.1:80/x", "/x", "127.0.0.1:80"},
    {"http://[::1]:443/x", "/x", "[::1]:443"},
    {"http://[fe80::1.2.3.4]/x", "/x", "[fe80::1.2.3.4]"},
    {"http://a-b_c~d.e!$&'()*+,;=/x", "/x", "a-b_c~d.e!$&'()*+,;="},
    {"http://caf%C3%A9/x", "/x", "caf%C3%A9"},
    /* the path's own rules apply after the authority */
    {"http://api/v1/datasets/../../admin", "/admin", "api"},
    {"http://api/v1/%2e%2e/%2e%2e/admin", NULL, "the path climbs above the root with '..'"},
    {"http://api/a%2fb", NULL, "the path holds an encoded slash (%2F)"},
    {"http://api//admin", "/admin", "api"},
    /* the authority */
    {"http://user@api/x", NULL, "userinfo"},
    {"http://user:pw@api/x", NULL, "userinfo"},
    {"http://@/x", NULL, "userinfo"},
    {"http:///x", NULL, "no host"},
    {"http://:80/x", NULL, "no host"},
    {"http://", NULL, "no host"},
    {"http://api:8o/x", NULL, "malformed port"},
    {"http://api:123456/x", NULL, "malformed port"},
    {"http://api:80:80/x", NULL, "malformed port"},
    {"http://[::1/x", NULL, "malformed [IPv6]"},
    {"http://[]/x", NULL, "malformed [IPv6]"},
    {"http://[v1.x]/x", NULL, "malformed [IPv6]"},
    {"http://[::1]x/x", NULL, "malformed port"},
    {"http://a<b/x", NULL, "cannot have"},
    {"http://a b/x", NULL, "cannot have"},
    {"http://a\\b/x", NULL, "cannot have"},
    {"http://a%zz/x", NULL, "bad percent escape"},
    {"http://a%4/x", NULL, "bad percent escape"},
    /* other forms */
    {"ftp://api/x", NULL, "http or https URI"},
    {"httpx://api/x", NULL, "http or https URI"},
    {"://api/x", NULL, "http or https URI"},
    {"*", NULL, "asterisk-form"},
    {"api/x", NULL, "the path does not start with '/'"},
    {"http:/x", NULL, "the path does not start with '/'"},
    {"http:api", NULL, "the path does not start with '/'"},
    {"", NULL, "the path does not start with '/'"},
};

static void
test_target(void **state)
{
	struct tg_gate_target t;
	char out[TG_GATE_PATH_MAX];
	const char *why;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(tcases) / sizeof(tcases[0]); i++) {
		const struct tcase *c = &tcases[i];

		print_message("%s\n", c->in);
		why = "unset";
		memcpy(out, "junk", 5);
		rc = tg_gate_path_target(c->in, strlen(c->in), out, sizeof(out), &t, &why);
		if (c->want != NULL) {
			assert_int_equal(rc, 0);
			assert_null(why);
			assert_string_equal(out, c->want);
			assert_int_equal(t.auth_len, strlen(c->auth));
			assert_memory_equal(c->in + t.auth_off, c->auth, t.auth_len);
			/* the path runs to the query, which tg_gate_path_query finds */
			assert_int_equal(t.path_off + t.path_len,
			                 tg_gate_path_query(c->in, strlen(c->in)));
		} else {
			assert_int_equal(rc, TG_ERR_FORMAT);
			assert_non_null(why);
			assert_non_null(strstr(why, c->auth));
			assert_string_equal(out, "");
			assert_int_equal(t.auth_len, 0);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),  cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_nul),   cmocka_unit_test(test_overlong),
	    cmocka_unit_test(test_query), cmocka_unit_test(test_target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
