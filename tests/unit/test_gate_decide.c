/*
 * test_gate_decide.c — the gate's decision (host/gate/decide.c): the
 * issue's example policy plus an admin route, decided for a table of
 * (peer, method, raw request-target) with the expected verdict and reason;
 * every ordering of the key, PIN and touch minimums; the path and identity
 * pattern matchers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_gate_decide.h"
#include "tg_gate_path.h"
#include "gate_example.h"
#include "tg_test.h"

static const char policy_text[] = TG_GATE_EX_UPSTREAMS
    "groups:\n"
    "  admins: [\"spiffe://example.org/dev/alice\", \"spiffe://example.org/ops/*\"]\n"
    "routes:\n"
    "  - name: admin\n"
    "    paths: [\"/admin/**\"]\n"
    "    allow:\n"
    "      - group: admins\n"
    "        key: device-attested\n"
    "        pin: always\n"
    "        touch: always\n" TG_GATE_EX_DATASETS_READ "  - name: completions\n"
    "    methods: [POST]\n"
    "    paths: [\"/v1/chat/completions\"]\n"
    "    upstream: llm\n"
    "    inject_headers:\n"
    "      Authorization: {from: \"file:/etc/tokengate/llm-api-key\", prefix: \"Bearer \"}\n"
    "    allow:\n"
    "      - identity: \"spiffe://example.org/dev/*\"\n"
    "        key: device-attested\n"
    "  - name: public\n"
    "    paths: [\"/**\"]\n"
    "    allow:\n"
    "      - identity: \"spiffe://example.org/dev/*\"\n";

#define DEV   "spiffe://example.org/dev/bob"
#define ALICE "spiffe://example.org/dev/alice"
#define IDX   "spiffe://example.org/svc/indexer"
#define OTHER "spiffe://example.org/svc/other"

#define DA TG_PROV_DEVICE_ATTESTED
#define HO TG_PROV_HSM_OPERATOR

struct dcase {
	const char *id;
	enum tg_prov_level level;
	enum tg_att_pin pin;
	enum tg_att_touch touch;
	const char *method;
	const char *target;
	int allow;
	const char *route; /* NULL: none */
	const char *reason;
};

static const struct dcase cases[] = {
    /* datasets-read: the example's two entries */
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/v1/datasets/x?y=1", 1, "datasets-read",
     "route datasets-read allows " DEV " (line 19)"},
    {IDX, HO, TG_ATT_PIN_NEVER, TG_ATT_TOUCH_NEVER, "HEAD", "/v1/datasets", 1, "datasets-read",
     "route datasets-read allows " IDX " (line 23)"},
    {DEV, HO, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/v1/datasets/x", 0, "datasets-read",
     "route datasets-read needs key level device-attested; the key is hsm-operator"},
    {DEV, DA, TG_ATT_PIN_NEVER, TG_ATT_TOUCH_NEVER, "GET", "/v1/datasets/x", 0, "datasets-read",
     "route datasets-read needs PIN policy once; the key has never"},
    {OTHER, DA, TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_ALWAYS, "GET", "/v1/datasets/x", 0, "datasets-read",
     "route datasets-read has no allow entry for " OTHER},
    /* a method the route does not list falls through to the next route */
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "DELETE", "/v1/datasets/x", 1, "public",
     "route public allows " DEV " (line 37)"},
    {OTHER, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "DELETE", "/v1/datasets/x", 0, "public",
     "route public has no allow entry for " OTHER},
    /* completions */
    {DEV, DA, TG_ATT_PIN_NEVER, TG_ATT_TOUCH_NEVER, "POST", "/v1/chat/completions", 1,
     "completions", "route completions allows " DEV " (line 32)"},
    {DEV, HO, TG_ATT_PIN_NEVER, TG_ATT_TOUCH_NEVER, "POST", "/v1/chat/completions", 0,
     "completions", "route completions needs key level device-attested; the key is hsm-operator"},
    /* admin through a group; the message */
    {ALICE, DA, TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_ALWAYS, "GET", "/admin", 1, "admin",
     "route admin allows " ALICE " (line 10)"},
    {ALICE, DA, TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_NEVER, "GET", "/admin/users", 0, "admin",
     "route admin needs touch policy always; the key has never"},
    {"spiffe://example.org/ops/carol", DA, TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_CACHED, "POST",
     "/admin/x", 0, "admin", "route admin needs touch policy always; the key has cached"},
    /* the bypass attempts: each lands on admin, never on public */
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/admin/", 0, "admin",
     "route admin has no allow entry for " DEV},
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "//admin", 0, "admin",
     "route admin has no allow entry for " DEV},
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/v1/datasets/../../admin", 0, "admin",
     "route admin has no allow entry for " DEV},
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/v1/x/%2e%2e/%2E%2E/admin/x", 0, "admin",
     "route admin has no allow entry for " DEV},
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/%61dmin", 0, "admin",
     "route admin has no allow entry for " DEV},
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/./admin/.", 0, "admin",
     "route admin has no allow entry for " DEV},
    /* "/administrator" is not under the admin route */
    {DEV, DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/administrator", 1, "public",
     "route public allows " DEV " (line 37)"},
    /* a deeper identity does not match the one-segment pattern */
    {"spiffe://example.org/dev/bob/x", DA, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/", 0,
     "public", "route public has no allow entry for spiffe://example.org/dev/bob/x"},
    /* no level, unknown policies meet no minimum */
    {DEV, TG_PROV_LEVEL_NONE, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "GET", "/", 0, "public",
     "route public needs key level hsm-operator; the key is none"},
    {DEV, HO, TG_ATT_PIN_UNKNOWN, TG_ATT_TOUCH_NEVER, "GET", "/", 0, "public",
     "route public needs PIN policy never; the key has unknown"},
    {DEV, HO, TG_ATT_PIN_NEVER, TG_ATT_TOUCH_UNKNOWN, "GET", "/", 0, "public",
     "route public needs touch policy never; the key has unknown"},
};

static void
test_table(void **state)
{
	struct tg_gate_policy pol;
	struct tg_gate_verdict v;
	struct tg_gate_peer peer;
	struct tg_error err;
	char path[TG_GATE_PATH_MAX];
	const char *why = NULL;
	size_t i;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(
	    tg_gate_policy_parse(policy_text, strlen(policy_text), "p.yaml", &pol, &err), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dcase *c = &cases[i];

		print_message("case %zu: %s %s\n", i, c->method, c->target);
		assert_int_equal(
		    tg_gate_path_normalize(c->target, strlen(c->target), path, sizeof(path), &why),
		    0);
		memset(&peer, 0, sizeof(peer));
		peer.identity = c->id;
		peer.level = c->level;
		peer.pin = c->pin;
		peer.touch = c->touch;
		peer.serial = "12345678";
		assert_int_equal(tg_gate_decide(&pol, &peer, c->method, path, &v), 0);
		assert_string_equal(v.reason, c->reason);
		assert_int_equal(v.allow, c->allow);
		if (c->route == NULL)
			assert_int_equal(v.route, -1);
		else
			assert_string_equal(pol.routes[v.route].name, c->route);
	}
	tg_gate_policy_clear(&pol);
}

/* No route: a deny that names the request. */
static void
test_no_route(void **state)
{
	static const char text[] = "routes:\n  - name: r\n    paths: [\"/a/*\"]\n"
	                           "    allow: [{identity: \"spiffe://e.org/x\"}]\n";
	struct tg_gate_policy pol;
	struct tg_gate_verdict v;
	struct tg_gate_peer peer = {"spiffe://e.org/x", DA, TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_ALWAYS,
	                            "1"};
	struct tg_error err;

	(void)state;
	assert_int_equal(tg_gate_policy_parse(text, strlen(text), "p.yaml", &pol, &err), 0);
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/a/", &v), 0);
	assert_int_equal(v.allow, 0);
	assert_int_equal(v.route, -1);
	assert_int_equal(v.entry, -1);
	assert_string_equal(v.reason, "no route matches GET /a/");
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/a/b", &v), 0);
	assert_int_equal(v.allow, 1);
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/a/b/c", &v), 0);
	assert_int_equal(v.allow, 0);
	assert_int_equal(tg_gate_decide(NULL, &peer, "GET", "/a/b", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v.allow, 0);
	tg_gate_policy_clear(&pol);
}

/*
 * Every minimum against every peer value: allowed exactly when the peer's
 * rank is at least the minimum's, in the orders
 * hsm-operator < device-attested, never < once|match-once < always|match-always,
 * never < cached < always.
 */
static void
test_orderings(void **state)
{
	static const char *const lv[] = {"hsm-operator", "device-attested"};
	static const char *const pn[] = {"never", "once", "always"};
	static const char *const tn[] = {"never", "cached", "always"};
	static const enum tg_prov_level plv[] = {TG_PROV_LEVEL_NONE, HO, DA};
	static const int plv_rank[] = {0, 1, 2};
	static const enum tg_att_pin ppn[] = {TG_ATT_PIN_UNKNOWN, TG_ATT_PIN_NEVER,
	                                      TG_ATT_PIN_ONCE,    TG_ATT_PIN_MATCH_ONCE,
	                                      TG_ATT_PIN_ALWAYS,  TG_ATT_PIN_MATCH_ALWAYS};
	static const int ppn_rank[] = {0, 1, 2, 2, 3, 3};
	static const enum tg_att_touch ptn[] = {TG_ATT_TOUCH_UNKNOWN, TG_ATT_TOUCH_NEVER,
	                                        TG_ATT_TOUCH_CACHED, TG_ATT_TOUCH_ALWAYS};
	static const int ptn_rank[] = {0, 1, 2, 3};
	char text[512];
	struct tg_gate_policy pol;
	struct tg_gate_verdict v;
	struct tg_gate_peer peer = {"spiffe://e.org/x", DA, TG_ATT_PIN_ALWAYS, TG_ATT_TOUCH_ALWAYS,
	                            "1"};
	struct tg_error err;
	size_t a, b;

	(void)state;
	for (a = 0; a < 2; a++) {
		snprintf(text, sizeof(text),
		         "routes:\n  - name: r\n    paths: [\"/**\"]\n"
		         "    allow: [{identity: \"spiffe://e.org/x\", key: %s}]\n",
		         lv[a]);
		assert_int_equal(tg_gate_policy_parse(text, strlen(text), "p", &pol, &err), 0);
		for (b = 0; b < 3; b++) {
			peer.level = plv[b];
			assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/", &v), 0);
			assert_int_equal(v.allow, plv_rank[b] >= (int)a + 1);
		}
		peer.level = DA;
		tg_gate_policy_clear(&pol);
	}
	for (a = 0; a < 3; a++) {
		snprintf(text, sizeof(text),
		         "routes:\n  - name: r\n    paths: [\"/**\"]\n"
		         "    allow: [{identity: \"spiffe://e.org/x\", pin: %s}]\n",
		         pn[a]);
		assert_int_equal(tg_gate_policy_parse(text, strlen(text), "p", &pol, &err), 0);
		for (b = 0; b < 6; b++) {
			peer.pin = ppn[b];
			assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/", &v), 0);
			assert_int_equal(v.allow, ppn_rank[b] >= (int)a + 1);
		}
		peer.pin = TG_ATT_PIN_ALWAYS;
		tg_gate_policy_clear(&pol);
	}
	for (a = 0; a < 3; a++) {
		snprintf(text, sizeof(text),
		         "routes:\n  - name: r\n    paths: [\"/**\"]\n"
		         "    allow: [{identity: \"spiffe://e.org/x\", touch: %s}]\n",
		         tn[a]);
		assert_int_equal(tg_gate_policy_parse(text, strlen(text), "p", &pol, &err), 0);
		for (b = 0; b < 4; b++) {
			peer.touch = ptn[b];
			assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/", &v), 0);
			assert_int_equal(v.allow, ptn_rank[b] >= (int)a + 1);
		}
		peer.touch = TG_ATT_TOUCH_ALWAYS;
		tg_gate_policy_clear(&pol);
	}
}

/* The closest entry is the first whose identity matched; a later entry still allows. */
static void
test_closest(void **state)
{
	static const char text[] =
	    "routes:\n  - name: r\n    paths: [\"/**\"]\n    allow:\n"
	    "      - {identity: \"spiffe://e.org/x\", key: device-attested}\n"
	    "      - {identity: \"spiffe://e.org/*\", pin: always}\n"
	    "      - {identity: \"spiffe://e.org/x\", touch: cached}\n";
	struct tg_gate_policy pol;
	struct tg_gate_verdict v;
	struct tg_gate_peer peer = {"spiffe://e.org/x", HO, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER,
	                            "1"};
	struct tg_error err;

	(void)state;
	assert_int_equal(tg_gate_policy_parse(text, strlen(text), "p", &pol, &err), 0);
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/", &v), 0);
	assert_int_equal(v.allow, 0);
	assert_int_equal(v.entry, 0);
	assert_string_equal(v.reason, "route r needs key level device-attested; the key is "
	                              "hsm-operator");
	peer.touch = TG_ATT_TOUCH_CACHED;
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/", &v), 0);
	assert_int_equal(v.allow, 1);
	assert_int_equal(v.entry, 2);
	/* the empty output of a refused path: denied before any route, also
	 * before a route on every path */
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "", &v), 0);
	assert_int_equal(v.allow, 0);
	assert_int_equal(v.route, -1);
	assert_string_equal(v.reason,
	                    "the path was refused or not normalized; no route can match it");
	/* so is any path that does not start with '/' (not a normal form) */
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "x", &v), 0);
	assert_int_equal(v.allow, 0);
	assert_int_equal(v.route, -1);
	assert_string_equal(v.reason,
	                    "the path was refused or not normalized; no route can match it");
	tg_gate_policy_clear(&pol);
}

/* The allow reason is snprintf's "route %s allows %.256s (line %u)", also
 * with the longest route name and an identity cut at 256 bytes. */
static void
test_allow_reason_cut(void **state)
{
	struct tg_gate_verdict v;
	static const size_t route_len[] = {1, TG_GATE_NAME_MAX};
	static const size_t id_len[] = {20, 256, 257, 400};
	char text[1024], name[TG_GATE_NAME_MAX + 1], id[512], want[sizeof(v.reason)];
	struct tg_gate_policy pol;
	struct tg_gate_peer peer = {id, HO, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "1"};
	struct tg_error err;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(route_len) / sizeof(route_len[0]); i++) {
		memset(name, 'r', route_len[i]);
		name[route_len[i]] = '\0';
		/* the allow entry on line 7, after blank lines */
		snprintf(text, sizeof(text),
		         "routes:\n  - name: %s\n    paths: [\"/**\"]\n\n\n    allow:\n"
		         "      - {identity: \"spiffe://e.org/*\", key: hsm-operator}\n",
		         name);
		assert_int_equal(tg_gate_policy_parse(text, strlen(text), "p", &pol, &err), 0);
		for (j = 0; j < sizeof(id_len) / sizeof(id_len[0]); j++) {
			memcpy(id, "spiffe://e.org/", 15);
			memset(id + 15, 'i', id_len[j] - 15);
			id[id_len[j]] = '\0';
			assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/x", &v), 0);
			assert_int_equal(v.allow, 1);
			snprintf(want, sizeof(want), "route %s allows %.256s (line %u)", name, id,
			         7u);
			assert_string_equal(v.reason, want);
		}
		tg_gate_policy_clear(&pol);
	}
}

struct mcase {
	const char *pattern;
	const char *path;
	int match;
};

static void
test_path_match(void **state)
{
	static const struct mcase m[] = {
	    {"/", "/", 1},           {"/", "/a", 0},         {"/**", "/", 1},
	    {"/**", "/a/b/c", 1},    {"/a/**", "/a", 1},     {"/a/**", "/a/", 1},
	    {"/a/**", "/a/b/c", 1},  {"/a/**", "/ab", 0},    {"/a/**", "/", 0},
	    {"/a", "/a", 1},         {"/a", "/a/", 1},       {"/a", "/a/b", 0},
	    {"/a/*", "/a/b", 1},     {"/a/*", "/a/b/", 1},   {"/a/*", "/a", 0},
	    {"/a/*", "/a/", 0},      {"/a/*", "/a/b/c", 0},  {"/a/*/c", "/a/b/c", 1},
	    {"/a/*/c", "/a/b/d", 0}, {"/a/*/**", "/a/b", 1}, {"/a/*/**", "/a", 0},
	    {"/A", "/a", 0},
	};
	/* '**' widens only as the last segment (the policy refuses it
	 * elsewhere); before that it is no wildcard */
	static const struct mcase inner[] = {
	    {"/a/**/c", "/a/b/c", 0}, {"/a/**/c", "/a/b/d", 0}, {"/**/admin", "/x", 0}};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		print_message("%s %s\n", m[i].pattern, m[i].path);
		assert_int_equal(tg_gate_path_match(m[i].pattern, m[i].path), m[i].match);
	}
	for (i = 0; i < sizeof(inner) / sizeof(inner[0]); i++)
		assert_int_equal(tg_gate_path_match(inner[i].pattern, inner[i].path),
		                 inner[i].match);
}

static void
test_identity_match(void **state)
{
	static const struct mcase m[] = {
	    {"spiffe://e.org/dev/*", "spiffe://e.org/dev/a", 1},
	    {"spiffe://e.org/dev/*", "spiffe://e.org/dev/", 0},
	    {"spiffe://e.org/dev/*", "spiffe://e.org/dev", 0},
	    {"spiffe://e.org/dev/*", "spiffe://e.org/dev/a/b", 0},
	    {"spiffe://e.org/dev/*", "spiffe://e.org/devx/a", 0},
	    {"spiffe://e.org/dev/a", "spiffe://e.org/dev/a", 1},
	    {"spiffe://e.org/dev/a", "spiffe://e.org/dev/ab", 0},
	    {"spiffe://e.org/dev/a", "spiffe://e.org/dev/A", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		assert_int_equal(tg_gate_identity_match(m[i].pattern, m[i].path), m[i].match);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_no_route),
	    cmocka_unit_test(test_orderings),
	    cmocka_unit_test(test_closest),
	    cmocka_unit_test(test_allow_reason_cut),
	    cmocka_unit_test(test_path_match),
	    cmocka_unit_test(test_identity_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
