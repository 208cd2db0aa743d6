/*
 * test_gate_policy.c — the gate's policy parser (host/gate/policy.c): the
 * issue's example policy read back field by field, defaults, and a table
 * of refusals, each with its exact message (file, line, problem and fix).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_gate_policy.h"
#include "gate_example.h"
#include "tg_test.h"

static const char example[] = TG_GATE_EX_UPSTREAMS
    "groups:\n"
    "  ml-team: [\"spiffe://example.org/dev/*\", \"spiffe://example.org/svc/trainer\"]\n"
    "routes:\n" TG_GATE_EX_DATASETS_READ "  - name: completions\n"
    "    methods: [POST]\n"
    "    paths: [\"/v1/chat/completions\"]\n"
    "    upstream: llm\n"
    "    inject_headers:\n"
    "      Authorization: {from: \"file:/etc/tokengate/llm-api-key\", prefix: \"Bearer \"}\n"
    "      X-Org: {from: \"env:LLM_ORG\"}\n"
    "    allow:\n"
    "      - group: ml-team\n"
    "        key: device-attested\n"
    "        touch: cached\n"
    "  - name: health\n"
    "    paths: [\"/\", \"/v1/*/health\"]\n"
    "    websocket: false\n"
    "    allow:\n"
    "      - {identity: \"spiffe://example.org/ops/probe\", pin: always, touch: always}\n"
    "  - name: stream\n"
    "    paths: [\"/v1/ws\"]\n"
    "    websocket: true\n"
    "    host: \"stream.internal:8443\"\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n";

static int
parse(const char *text, struct tg_gate_policy *p, struct tg_error *err)
{
	tg_error_clear(err);
	return tg_gate_policy_parse(text, strlen(text), "policy.yaml", p, err);
}

static void
test_example(void **state)
{
	struct tg_gate_policy p;
	struct tg_error err;
	const struct tg_gate_route *r;

	(void)state;
	assert_int_equal(parse(example, &p, &err), 0);
	assert_int_equal(p.nupstreams, 2);
	assert_string_equal(p.upstreams[1].name, "llm");
	assert_string_equal(p.upstreams[1].url, "https://llm.internal:443");
	assert_int_equal(p.ngroups, 1);
	assert_int_equal(p.groups[0].nmembers, 2);
	assert_int_equal(p.nroutes, 4);
	r = &p.routes[0];
	assert_string_equal(r->name, "datasets-read");
	assert_int_equal(r->line, 7);
	assert_int_equal(r->nmethods, 2);
	assert_string_equal(r->methods[1], "HEAD");
	assert_string_equal(r->paths[0], "/v1/datasets/**");
	assert_int_equal(r->upstream, 0);
	assert_int_equal(r->nallow, 2);
	assert_string_equal(r->allow[0].identity, "spiffe://example.org/dev/*");
	assert_int_equal(r->allow[0].key, TG_PROV_DEVICE_ATTESTED);
	assert_int_equal(r->allow[0].pin, TG_ATT_PIN_ONCE);
	assert_int_equal(r->allow[0].touch, TG_ATT_TOUCH_NEVER);
	assert_int_equal(r->allow[0].line, 12);
	/* omitted minimums: the lowest */
	assert_int_equal(r->allow[1].key, TG_PROV_HSM_OPERATOR);
	assert_int_equal(r->allow[1].pin, TG_ATT_PIN_NEVER);
	assert_int_equal(r->allow[1].touch, TG_ATT_TOUCH_NEVER);
	r = &p.routes[1];
	assert_int_equal(r->upstream, 1);
	assert_int_equal(r->ninject, 2);
	assert_string_equal(r->inject[0].header, "Authorization");
	assert_int_equal(r->inject[0].src, TG_GATE_SECRET_FILE);
	assert_string_equal(r->inject[0].from, "/etc/tokengate/llm-api-key");
	assert_string_equal(r->inject[0].prefix, "Bearer ");
	assert_int_equal(r->inject[1].src, TG_GATE_SECRET_ENV);
	assert_string_equal(r->inject[1].from, "LLM_ORG");
	assert_string_equal(r->inject[1].prefix, "");
	assert_null(r->allow[0].identity);
	assert_int_equal(r->allow[0].group, 0);
	assert_int_equal(r->allow[0].touch, TG_ATT_TOUCH_CACHED);
	r = &p.routes[2];
	assert_int_equal(r->nmethods, 0);
	assert_int_equal(r->upstream, -1);
	assert_int_equal(r->npaths, 2);
	assert_int_equal(r->allow[0].pin, TG_ATT_PIN_ALWAYS);
	assert_int_equal(r->allow[0].touch, TG_ATT_TOUCH_ALWAYS);
	assert_int_equal(r->websocket, 0);
	/* websocket: omitted or false is off; true turns it on */
	assert_int_equal(p.routes[0].websocket, 0);
	assert_int_equal(p.routes[3].websocket, 1);
	/* host: omitted is the client's (NULL) */
	assert_null(p.routes[0].host);
	assert_string_equal(p.routes[3].host, "stream.internal:8443");
	tg_gate_policy_clear(&p);
	tg_gate_policy_clear(&p); /* twice is harmless */
}

#define ALLOW "    allow: [{identity: \"spiffe://e.org/a\"}]\n"
#define R1    "routes:\n  - name: r1\n    paths: [\"/a\"]\n"

struct bad {
	const char *yaml;
	const char *msg;
};

static const struct bad bads[] = {
    {"", "policy.yaml: the policy is empty; add a 'routes' list"},
    {"routes: [\n", "policy.yaml line 2: did not find expected node content while parsing "
                    "a flow node; fix the YAML syntax"},
    {"- a\n", "policy.yaml line 1: the policy must be a mapping with 'routes' (and "
              "optionally 'upstreams' and 'groups')"},
    {"route:\n", "policy.yaml line 1: unknown key 'route' (known: upstreams, groups, routes)"},
    {"groups: {}\n", "policy.yaml line 1: the policy needs a non-empty 'routes' list; "
                     "without routes every request is denied"},
    {R1 ALLOW "routes: []\n", "policy.yaml line 5: key 'routes' appears twice; keep one"},
    {R1 ALLOW "    colour: red\n",
     "policy.yaml line 5: unknown route key 'colour' (known: name, methods, paths, "
     "upstream, inject_headers, allow, websocket, host)"},
    {R1 ALLOW "    inject_headers: {Content-Length: {from: \"env:X\"}}\n",
     "policy.yaml line 5: route 'r1': header Content-Length cannot be injected: it frames the "
     "request or the connection, which is the gate's to write"},
    {R1 ALLOW "    inject_headers: {transfer-encoding: {from: \"env:X\"}}\n",
     "policy.yaml line 5: route 'r1': header transfer-encoding cannot be injected: it frames "
     "the request or the connection, which is the gate's to write"},
    {R1 ALLOW "    inject_headers: {HOST: {from: \"env:X\"}}\n",
     "policy.yaml line 5: route 'r1': header HOST cannot be injected: set the route's host: "
     "instead"},
    {R1 ALLOW "    inject_headers: {X-Tokengate-Identity: {from: \"env:X\"}}\n",
     "policy.yaml line 5: route 'r1': header X-Tokengate-Identity cannot be injected: the gate "
     "sets or drops it itself (identity, provenance, the client's address)"},
    {R1 ALLOW "    inject_headers: {X-Real-IP: {from: \"env:X\"}}\n",
     "policy.yaml line 5: route 'r1': header X-Real-IP cannot be injected: the gate sets or "
     "drops it itself (identity, provenance, the client's address)"},
    {R1 ALLOW "    host: \"u@api\"\n",
     "policy.yaml line 5: route 'r1': host 'u@api' is not a host name with an optional port "
     "(the authority holds userinfo ('user@'): send the host alone); write "
     "it like api.internal or api.internal:8080"},
    {R1 ALLOW "    host: \"api/v1\"\n",
     "policy.yaml line 5: route 'r1': host 'api/v1' is not a host name with an optional port "
     "(the authority holds a character a host name cannot have); write it "
     "like api.internal or api.internal:8080"},
    {R1 ALLOW "    host: \"api:http\"\n",
     "policy.yaml line 5: route 'r1': host 'api:http' is not a host name with an optional "
     "port (the authority has a malformed port); write it like api.internal "
     "or api.internal:8080"},
    {R1 ALLOW "    host: \"\"\n",
     "policy.yaml line 5: route 'r1': host '' is not a host name with an optional port (the "
     "authority has no host); write it like api.internal or api.internal:8080"},
    {R1 ALLOW "    host: [a]\n",
     "policy.yaml line 5: route 'r1': host 'a list or mapping' is not a host name with an "
     "optional port (not a scalar); write it like api.internal or api.internal:8080"},
    {R1 ALLOW "    websocket: yes\n",
     "policy.yaml line 5: route 'r1': 'websocket' must be true or false (given: 'yes')"},
    {R1 ALLOW "    websocket: [true]\n",
     "policy.yaml line 5: route 'r1': 'websocket' must be true or false (given: 'a list "
     "or mapping')"},
    {R1 ALLOW "    websocket: true\n    websocket: false\n",
     "policy.yaml line 6: route key 'websocket' appears twice; keep one"},
    {R1 ALLOW "  - name: r1\n    paths: [\"/b\"]\n" ALLOW,
     "policy.yaml line 5: route name 'r1' is used twice (first at line 2); give each "
     "route its own name"},
    {"routes:\n  - paths: [\"/a\"]\n" ALLOW,
     "policy.yaml line 2: a route needs a 'name' of 1 to 64 letters, digits, '.', '-' "
     "or '_'"},
    {"routes:\n  - name: \"a b\"\n", "policy.yaml line 2: a route needs a 'name' of 1 to "
                                     "64 letters, digits, '.', '-' or '_' (given: 'a b')"},
    {"routes:\n  - name: r1\n" ALLOW,
     "policy.yaml line 2: route 'r1' has no 'paths'; add paths: [\"/PATH/**\"]"},
    {R1, "policy.yaml line 2: route 'r1' has no 'allow' list; add who may call it"},
    {R1 "    allow: []\n",
     "policy.yaml line 4: route 'r1': 'allow' must be a non-empty list of entries"},
    {R1 "    allow: [{group: team}]\n",
     "policy.yaml line 4: route 'r1': group 'team' does not exist; define it under "
     "'groups:' or fix the name"},
    {R1 "    upstream: api\n" ALLOW,
     "policy.yaml line 4: route 'r1': upstream 'api' does not exist; define it under "
     "'upstreams:' or fix the name"},
    {"upstreams: {api: ftp://x}\n" R1 ALLOW,
     "policy.yaml line 1: upstream 'api' must be a URL starting with http://, https:// "
     "or unix:/ (given: 'ftp://x')"},
    {"upstreams: {api: http://x, api: http://y}\n" R1 ALLOW,
     "policy.yaml line 1: upstream 'api' is defined twice; keep one definition"},
    {"groups: {t: [\"spiffe://e.org/*/x\"]}\n" R1 ALLOW,
     "policy.yaml line 1: group 't': 'spiffe://e.org/*/x' is not an identity pattern; "
     "write spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", colour: red}]\n",
     "policy.yaml line 4: route 'r1': unknown key 'colour' in an allow entry (known: "
     "identity, group, key, pin, touch)"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a*\"}]\n",
     "policy.yaml line 4: route 'r1': 'spiffe://e.org/a*' is not an identity pattern; "
     "write spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {R1 "    allow: [{identity: \"https://e.org/a\"}]\n",
     "policy.yaml line 4: route 'r1': 'https://e.org/a' is not an identity pattern; "
     "write spiffe://DOMAIN/PATH, with '*' only as a last segment \"/*\""},
    {"groups: {t: [\"spiffe://e.org/a\"]}\n" R1
     "    allow: [{identity: \"spiffe://e.org/a\", group: t}]\n",
     "policy.yaml line 5: route 'r1': the allow entry names both 'identity' and 'group'; "
     "keep one (one entry each)"},
    {R1 "    allow: [{key: hsm-operator}]\n",
     "policy.yaml line 4: route 'r1': the allow entry names no 'identity' or 'group'; "
     "add one"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", key: none}]\n",
     "policy.yaml line 4: 'key' must be hsm-operator or device-attested (given: 'none')"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", pin: match-once}]\n",
     "policy.yaml line 4: 'pin' must be never, once or always (given: 'match-once')"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", touch: sometimes}]\n",
     "policy.yaml line 4: 'touch' must be never, cached or always (given: 'sometimes')"},
    {R1 "    allow: [{identity: \"spiffe://e.org/a\", pin: once, pin: always}]\n",
     "policy.yaml line 4: route 'r1': key 'pin' appears twice in an allow entry; keep one"},
    {"routes:\n  - name: r1\n    paths: [\"/a//b\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a//b': it is not in normal form; write "
     "'/a/b'"},
    {"routes:\n  - name: r1\n    paths: [\"/a/%7e\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a/%7e': it is not in normal form; write "
     "'/a/~'"},
    {"routes:\n  - name: r1\n    paths: [\"/admin/\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/admin/': a trailing slash is not "
     "significant; write '/admin'"},
    {"routes:\n  - name: r1\n    paths: [\"admin\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path 'admin': the path does not start with '/'"},
    {"routes:\n  - name: r1\n    paths: [\"/**/x\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/**/x': '**' may only be the last segment"},
    {"routes:\n  - name: r1\n    paths: [\"/a*\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a*': '*' and '**' must be whole segments"},
    {"routes:\n  - name: r1\n    paths: [\"/a?b\"]\n" ALLOW,
     "policy.yaml line 3: route 'r1': path '/a?b': a path pattern has no query ('?'); "
     "write '/a'"},
    {"routes:\n  - name: r1\n    paths: []\n" ALLOW,
     "policy.yaml line 3: 'paths' must be a non-empty list like [a, b]"},
    {R1 "    methods: [\"GE T\"]\n" ALLOW,
     "policy.yaml line 4: route 'r1': 'GE T' is not an HTTP method (write it like GET or "
     "POST; omit 'methods' for any method)"},
    {R1 "    inject_headers: {\"Bad Header\": {from: \"env:X\"}}\n" ALLOW,
     "policy.yaml line 4: route 'r1': 'Bad Header' is not a header name (1 to 64 token "
     "characters)"},
    {R1 "    inject_headers: {A: {from: \"file:relative\"}}\n" ALLOW,
     "policy.yaml line 4: route 'r1': header A: 'from' must be \"file:/ABSOLUTE/PATH\" or "
     "\"env:NAME\""},
    {R1 "    inject_headers: {A: {from: \"env:A-B\"}}\n" ALLOW,
     "policy.yaml line 4: route 'r1': header A: 'from' must be \"file:/ABSOLUTE/PATH\" or "
     "\"env:NAME\""},
    {R1 "    inject_headers: {A: {prefix: \"x\"}}\n" ALLOW,
     "policy.yaml line 4: route 'r1': header A has no 'from'; add from: \"file:/PATH\" or "
     "from: \"env:NAME\""},
    {R1 "    inject_headers: {A: {from: \"env:A\", secret: x}}\n" ALLOW,
     "policy.yaml line 4: route 'r1': header A: unknown or repeated key 'secret' (known, "
     "once each: from, prefix)"},
};

static void
test_refused(void **state)
{
	struct tg_gate_policy p;
	struct tg_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		print_message("case %zu\n", i);
		assert_int_equal(parse(bads[i].yaml, &p, &err), TG_ERR_CONFIG);
		assert_int_equal(err.code, TG_ERR_CONFIG);
		assert_string_equal(err.msg, bads[i].msg);
		assert_int_equal(p.nroutes, 0);
		assert_null(p.routes);
		tg_gate_policy_clear(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
