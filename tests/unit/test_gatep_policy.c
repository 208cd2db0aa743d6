/*
 * test_gatep_policy.c — refusals of the gate's policy parser
 * (host/gate/policy.c) that test_gate_policy.c does not show: sections of
 * the wrong shape (upstreams, groups, routes, allow entries, injected
 * headers), bad and repeated names, values that are lists where text is
 * expected, headers the gate owns or that carry identity, unknown keys at
 * the top, and identity patterns at the edges. Each case asserts
 * TG_ERR_CONFIG with the whole message (file and line) and that nothing is
 * left in the policy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_gate_policy.h"
#include "tg_test.h"

#define R1    "routes:\n  - name: r1\n    paths: [\"/a\"]\n"
#define ALLOW "    allow: [{identity: \"spiffe://e.org/a\"}]\n"
#define INJ   R1 ALLOW "    inject_headers:\n"

static const struct {
	const char *yaml;
	const char *msg;
} bads[] = {
    {"upstreams: [http://x]\n" R1 ALLOW, "policy.yaml line 1: 'upstreams' must be a mapping of "
                                         "names to URLs, like {datasets: http://127.0.0.1:8081}"},
    {"upstreams: {\"a b\": http://x}\n" R1 ALLOW,
     "policy.yaml line 1: upstream name 'a b' must be 1 to 64 letters, digits, '.', '-' or '_'"},
    {"upstreams: {api: [http://x]}\n" R1 ALLOW,
     "policy.yaml line 1: upstream 'api' must be a URL starting with http://, https:// or unix:/ "
     "(given: 'a list or mapping')"},
    {"upstreams: {api: \"http://x y\"}\n" R1 ALLOW,
     "policy.yaml line 1: upstream 'api' must be a URL starting with http://, https:// or unix:/ "
     "(given: 'http://x y')"},
    {"groups: [t]\n" R1 ALLOW,
     "policy.yaml line 1: 'groups' must be a mapping of names to lists of identity patterns, like "
     "{ml-team: [\"spiffe://example.org/dev/*\"]}"},
    {"groups: {\"a b\": [\"spiffe://e.org/a\"]}\n" R1 ALLOW,
     "policy.yaml line 1: group name 'a b' must be 1 to 64 letters, digits, '.', '-' or '_'"},
    {"groups: {t: [\"spiffe://e.org/a\"], t: [\"spiffe://e.org/b\"]}\n" R1 ALLOW,
     "policy.yaml line 1: group 't' is defined twice; merge its members into one list"},
    {"groups: {t: [[\"spiffe://e.org/a\"]]}\n" R1 ALLOW,
     "policy.yaml line 1: a group's members: each item must be one value, not a list or mapping"},
    {"groups: {t: \"spiffe://e.org/a\"}\n" R1 ALLOW,
     "policy.yaml line 1: a group's members must be a non-empty list like [a, b]"},
    {R1 "    allow: [\"spiffe://e.org/a\"]\n",
     "policy.yaml line 4: route 'r1': each allow entry must be a mapping like {identity: "
     "\"spiffe://example.org/dev/*\", key: device-attested}"},
    {R1 "    allow: \"spiffe://e.org/a\"\n",
     "policy.yaml line 4: route 'r1': 'allow' must be a non-empty list of entries"},
    {R1 "    allow: [{identity: [\"spiffe://e.org/a\"]}]\n",
     "policy.yaml line 4: route 'r1': 'a list or mapping' is not an identity pattern; write "
     "spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", key: [hsm-operator]}]\n",
     "policy.yaml line 4: 'key' must be hsm-operator or device-attested (given: 'a list or "
     "mapping')"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", pin: [once]}]\n",
     "policy.yaml line 4: 'pin' must be never, once or always (given: 'a list or mapping')"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", touch: [never]}]\n",
     "policy.yaml line 4: 'touch' must be never, cached or always (given: 'a list or mapping')"},
    {"groups: {t: [\"spiffe://e.org/a\"]}\n" R1 "    allow: [{group: [t]}]\n",
     "policy.yaml line 5: route 'r1': group '' does not exist; define it under 'groups:' or fix "
     "the name"},
    {R1 "    allow:\n      - ? [identity]\n        : \"spiffe://e.org/a\"\n",
     "policy.yaml line 5: route 'r1': unknown key '' in an allow entry (known: identity, group, "
     "key, pin, touch)"},
    {R1 "    allow: [{identity: \"spiffe://\"}]\n",
     "policy.yaml line 4: route 'r1': 'spiffe://' is not an identity pattern; write "
     "spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {R1 "    allow: [{identity: \"spiffe://*\"}]\n",
     "policy.yaml line 4: route 'r1': 'spiffe://*' is not an identity pattern; write "
     "spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {R1 "    allow: [{identity: \"spiffe://e.org/a b\"}]\n",
     "policy.yaml line 4: route 'r1': 'spiffe://e.org/a b' is not an identity pattern; write "
     "spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {INJ "      A: \"env:X\"\n",
     "policy.yaml line 6: route 'r1': inject_headers A must be a mapping like {from: "
     "\"file:/etc/tokengate/key\", prefix: \"Bearer \"}"},
    {INJ "      A: {from: \"env:X\", prefix: \"a\\tb\"}\n",
     "policy.yaml line 6: route 'r1': header A: 'prefix' must be printable text like \"Bearer \""},
    {INJ "      A: {from: \"env:X\", prefix: [a]}\n",
     "policy.yaml line 6: route 'r1': header A: 'prefix' must be printable text like \"Bearer \""},
    {INJ "      A: {from: [\"env:X\"]}\n", "policy.yaml line 6: route 'r1': header A: 'from' must "
                                           "be \"file:/ABSOLUTE/PATH\" or \"env:NAME\""},
    {INJ "      A: {from: \"env:X\", from: \"env:Y\"}\n",
     "policy.yaml line 6: route 'r1': header A: unknown or repeated key 'from' (known, once each: "
     "from, prefix)"},
    {INJ "      A: {from: \"env:X\", prefix: \"a\", prefix: \"b\"}\n",
     "policy.yaml line 6: route 'r1': header A: unknown or repeated key 'prefix' (known, once "
     "each: from, prefix)"},
    {INJ "      X-Tokengate-Identity: {from: \"env:X\"}\n",
     "policy.yaml line 6: route 'r1': header X-Tokengate-Identity cannot be injected: the gate "
     "sets or drops it itself (identity, provenance, the client's address)"},
    {INJ "      X-Forwarded-For: {from: \"env:X\"}\n",
     "policy.yaml line 6: route 'r1': header X-Forwarded-For cannot be injected: the gate sets or "
     "drops it itself (identity, provenance, the client's address)"},
    {INJ "      X-Real-IP: {from: \"env:X\"}\n",
     "policy.yaml line 6: route 'r1': header X-Real-IP cannot be injected: the gate sets or drops "
     "it itself (identity, provenance, the client's address)"},
    {INJ "      Forwarded: {from: \"env:X\"}\n",
     "policy.yaml line 6: route 'r1': header Forwarded cannot be injected: the gate sets or drops "
     "it itself (identity, provenance, the client's address)"},
    {INJ "      Proxy-Authorization: {from: \"env:X\"}\n",
     "policy.yaml line 6: route 'r1': header Proxy-Authorization cannot be injected: the gate sets "
     "or drops it itself (identity, provenance, the client's address)"},
    {R1 ALLOW "    inject_headers: {}\n",
     "policy.yaml line 5: route 'r1': 'inject_headers' must be a mapping of header names to {from: "
     "..., prefix: ...}"},
    {R1 ALLOW "    inject_headers: [A]\n",
     "policy.yaml line 5: route 'r1': 'inject_headers' must be a mapping of header names to {from: "
     "..., prefix: ...}"},
    {R1 ALLOW "    upstream: [api]\n", "policy.yaml line 5: route 'r1': upstream '' does not "
                                       "exist; define it under 'upstreams:' or fix the name"},
    {R1 ALLOW "    colour: red\n",
     "policy.yaml line 5: unknown route key 'colour' (known: name, methods, paths, upstream, "
     "inject_headers, allow, websocket, host)"},
    {"routes: [r1]\n",
     "policy.yaml line 1: each route must be a mapping with name, paths and allow"},
    {"routes: []\n", "policy.yaml line 1: the policy needs a non-empty 'routes' list; without "
                     "routes every request is denied"},
    {"routes: r1\n", "policy.yaml line 1: the policy needs a non-empty 'routes' list; without "
                     "routes every request is denied"},
    {"upstreams: {api: http://x}\n", "policy.yaml line 1: the policy needs a non-empty 'routes' "
                                     "list; without routes every request is denied"},
    {R1 ALLOW "route: x\n",
     "policy.yaml line 5: unknown key 'route' (known: upstreams, groups, routes)"},
    {"routes:\n  - name: "
     "a12345678901234567890123456789012345678901234567890123456789012345\n" ALLOW,
     "policy.yaml line 2: a route needs a 'name' of 1 to 64 letters, digits, '.', '-' or '_' "
     "(given: 'a123456789012345678901234567890123456789012345678901234567890123')"},
    {"routes:\n  - name: r1\n    paths: [\"/a/**/b/**\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a/**/b/**': '**' may only be the last segment"},
    {"routes:\n  - name: r1\n    paths: [\"/a/*b\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a/*b': '*' and '**' must be whole segments"},
    {"routes:\n  - name: r1\n    paths: [\"/a/b*\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a/b*': '*' and '**' must be whole segments"},
    {"routes:\n  - name: r1\n    paths: [\"/a/***\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a/***': '*' and '**' must be whole segments"},
};

static void
test_refused(void **state)
{
	struct tg_gate_policy p;
	struct tg_error err;
	size_t i;
	int bad = 0, r;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		tg_error_clear(&err);
		r = tg_gate_policy_parse(bads[i].yaml, strlen(bads[i].yaml), "policy.yaml", &p,
		                         &err);
		if (r != TG_ERR_CONFIG || err.code != TG_ERR_CONFIG ||
		    strcmp(err.msg, bads[i].msg) != 0) {
			print_error("case %zu: got %d \"%s\"\n", i, r, err.msg);
			bad++;
		}
		assert_int_equal(p.nroutes, 0);
		assert_null(p.routes);
		assert_int_equal(p.nupstreams, 0);
		assert_int_equal(p.ngroups, 0);
		tg_gate_policy_clear(&p);
	}
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
