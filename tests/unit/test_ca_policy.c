/*
 * test_ca_policy.c — the CA policy (host/ca/policy.c): good documents,
 * unknown keys, bad types and values, each error with its line number;
 * write-then-parse round trip; durations and firmware versions; the
 * policy check (tg_ca_policy_check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_ca_policy.h"
#include "tg_test.h"

#define BASE                                                                                       \
	"trust_domain: example.org\n"                                                              \
	"attestation_roots: roots\n"                                                               \
	"pin_policies: [once, always]\n"                                                           \
	"touch_policies: [never, cached]\n"                                                        \
	"default_validity: 24h\n"                                                                  \
	"max_validity: 30d\n"

static int
parse(const char *text, struct tg_ca_policy *pol, struct tg_error *err)
{
	size_t n = strlen(text);
	char *copy = (char *)tg_test_memdup(text, n);
	int r;

	tg_error_clear(err);
	r = tg_ca_policy_parse(copy, n, "policy.yaml", pol, err);
	free(copy);
	return r;
}

static void
test_good(void **state)
{
	struct tg_ca_policy pol;
	struct tg_error err;

	(void)state;
	assert_int_equal(parse(BASE, &pol, &err), 0);
	assert_string_equal(pol.trust_domain, "example.org");
	assert_string_equal(pol.attestation_roots, "roots");
	assert_int_equal(pol.pin_allowed, (1u << TG_ATT_PIN_ONCE) | (1u << TG_ATT_PIN_ALWAYS));
	assert_int_equal(pol.touch_allowed,
	                 (1u << TG_ATT_TOUCH_NEVER) | (1u << TG_ATT_TOUCH_CACHED));
	assert_int_equal(pol.default_validity, 86400);
	assert_int_equal(pol.max_validity, 30 * 86400);
	assert_int_equal(pol.has_serials, 0);
	assert_int_equal(pol.nhsm_tokens, 0);
	assert_null(pol.hsm_tokens);
	assert_string_equal(pol.crl_url, "");
	assert_int_equal(pol.min_firmware[0], 0);
	tg_ca_policy_clear(&pol);

	assert_int_equal(parse(BASE "min_firmware: 5.4.3\n"
	                            "serials: [25515003, 30041834]\n"
	                            "crl_url: https://ca.example.org/x/ca.crl?a=1\n"
	                            "hsm_tokens:\n"
	                            "  - module: /usr/lib/a.so\n"
	                            "    manufacturer: \"SoftHSM*\"\n"
	                            "    model: SoftHSM v2\n"
	                            "    serial: \"[0-9]*\"\n"
	                            "  - {module: /opt/b.so}\n",
	                       &pol, &err),
	                 0);
	assert_int_equal(pol.min_firmware[0], 5);
	assert_int_equal(pol.min_firmware[1], 4);
	assert_int_equal(pol.min_firmware[2], 3);
	assert_int_equal(pol.has_serials, 1);
	assert_int_equal(pol.nserials, 2);
	assert_int_equal(pol.serials[1], 30041834);
	assert_string_equal(pol.crl_url, "https://ca.example.org/x/ca.crl?a=1");
	assert_int_equal(pol.nhsm_tokens, 2);
	assert_string_equal(pol.hsm_tokens[0].module, "/usr/lib/a.so");
	assert_string_equal(pol.hsm_tokens[0].manufacturer, "SoftHSM*");
	assert_string_equal(pol.hsm_tokens[0].model, "SoftHSM v2");
	assert_string_equal(pol.hsm_tokens[0].serial, "[0-9]*");
	assert_int_equal(pol.hsm_tokens[0].line, 11);
	assert_string_equal(pol.hsm_tokens[1].module, "/opt/b.so");
	assert_string_equal(pol.hsm_tokens[1].manufacturer, "");
	assert_string_equal(pol.hsm_tokens[1].serial, "");
	tg_ca_policy_clear(&pol);

	/* an empty list is no HSM, as when the key is absent */
	assert_int_equal(parse(BASE "hsm_tokens: []\n", &pol, &err), 0);
	assert_int_equal(pol.nhsm_tokens, 0);
	tg_ca_policy_clear(&pol);

	/* block style lists and comments are plain YAML */
	assert_int_equal(parse("# comment\n"
	                       "trust_domain: a.b\n"
	                       "attestation_roots: /etc/roots\n"
	                       "pin_policies:\n  - never\n  - match-once\n"
	                       "touch_policies:\n  - always\n"
	                       "default_validity: 3600\n"
	                       "max_validity: 90m\n",
	                       &pol, &err),
	                 0);
	assert_int_equal(pol.default_validity, 3600);
	assert_int_equal(pol.max_validity, 5400);
	tg_ca_policy_clear(&pol);
}

struct bad_case {
	const char *name;
	const char *text;
	const char *msg; /* part of the error message, incl. the line */
};

static const struct bad_case bad_cases[] = {
    {"unknown key", BASE "colour: blue\n", "line 7: unknown key 'colour'"},
    {"typo key", "trust_domian: x\n", "line 1: unknown key 'trust_domian'"},
    {"repeated key", BASE "trust_domain: other.org\n", "line 7: key 'trust_domain' appears twice"},
    {"missing key",
     "trust_domain: example.org\nattestation_roots: r\n"
     "pin_policies: [once]\ntouch_policies: [never]\ndefault_validity: 1h\n",
     "required key 'max_validity' is missing"},
    {"not a mapping", "- a\n- b\n", "line 1: the policy must be a mapping"},
    {"scalar doc", "hello\n", "must be a mapping"},
    {"empty", "", "empty policy"},
    {"bad yaml", "trust_domain: [a\n", "policy.yaml line"},
    {"td list", "trust_domain: [a]\n", "line 1: 'trust_domain' must be a single value"},
    {"td upper", "trust_domain: Example.org\n", "line 1: trust domain 'Example.org'"},
    {"td slash", "trust_domain: a/b\n", "line 1: trust domain"},
    {"pin scalar", "pin_policies: once\n",
     "line 1: 'pin_policies' must be a list, e.g. [once, always], not 'once'"},
    {"pin unknown", "pin_policies: [once, sometimes]\n",
     "line 1: 'pin_policies': unknown value 'sometimes' (allowed: never, once, always, match-once, "
     "match-always)"},
    {"pin empty", "pin_policies: []\n", "'pin_policies' is empty"},
    {"touch mapping", "touch_policies: {a: b}\n",
     "line 1: 'touch_policies' must be a list, e.g. [never, always, cached], not a mapping"},
    {"touch unknown", "touch_policies:\n  - never\n  - maybe\n",
     "line 3: 'touch_policies': unknown value 'maybe' (allowed: never, always, cached)"},
    {"serial text", "serials: [12a]\n", "line 1: 'serials': '12a' is not a decimal"},
    {"serial negative", "serials: [-5]\n", "is not a decimal"},
    {"serial nested", "serials: [[1]]\n", "is not a decimal"},
    {"serials empty", "serials: []\n", "allows no token"},
    {"serials scalar", "serials: 5\n", "must be a list"},
    {"serial overflow", "serials: [99999999999999999999999]\n", "is not a decimal"},
    {"fw two parts", "min_firmware: 5.4\n", "line 1: 'min_firmware': '5.4'"},
    {"fw big", "min_firmware: 5.4.300\n", "'min_firmware'"},
    {"fw text", "min_firmware: new\n", "'min_firmware'"},
    {"validity unit", BASE "default_validity: 24x\n", "appears twice"},
    {"validity bad unit", "default_validity: 24x\n",
     "line 1: 'default_validity': '24x' is not a duration"},
    {"validity zero", "max_validity: 0h\n", "is not a duration"},
    {"validity negative", "max_validity: -1h\n", "is not a duration"},
    {"validity huge", "max_validity: 99999999d\n", "is not a duration"},
    {"validity list", "max_validity: [1h]\n", "must be a single value"},
    {"default > max",
     "trust_domain: example.org\nattestation_roots: r\npin_policies: [once]\n"
     "touch_policies: [never]\ndefault_validity: 2d\nmax_validity: 1d\n",
     "default_validity is longer than max_validity (2d > 1d); make default_validity at most 1d"},
    {"td too long",
     "trust_domain: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "\n",
     "line 1: trust domain 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' "
     "has 256 characters; it must have 1 to"},
    {"old hsm key", BASE "allow_hsm_operator: true\n",
     "line 7: 'allow_hsm_operator' is no longer supported: list the HSMs whose keys may be "
     "certified in 'hsm_tokens'"},
    {"hsm scalar", "hsm_tokens: /usr/lib/a.so\n", "line 1: 'hsm_tokens' must be a list"},
    {"hsm entry scalar", "hsm_tokens: [/usr/lib/a.so]\n",
     "line 1: 'hsm_tokens': each entry must be a mapping"},
    {"hsm no module", "hsm_tokens:\n  - model: x\n",
     "line 2: 'hsm_tokens': the entry has no 'module'"},
    {"hsm relative module", "hsm_tokens:\n  - module: lib/a.so\n",
     "line 2: 'hsm_tokens': module 'lib/a.so' must be an absolute path"},
    {"hsm unknown key", "hsm_tokens:\n  - module: /a.so\n    label: x\n",
     "line 3: 'hsm_tokens': unknown key 'label'"},
    {"hsm repeated key", "hsm_tokens:\n  - module: /a.so\n    module: /b.so\n",
     "line 3: 'hsm_tokens': key 'module' appears twice"},
    {"hsm list value", "hsm_tokens:\n  - module: /a.so\n    serial: [1]\n",
     "line 3: 'hsm_tokens': 'serial' must be one non-empty value"},
    {"hsm value with quote", "hsm_tokens:\n  - module: /a.so\n    model: 'a\"b'\n",
     "line 3: 'hsm_tokens': 'model' must be one non-empty value of at most 127 characters, "
     "without control characters, '\"' or '\\' (given: 'a\"b')"},
    {"hsm empty glob", "hsm_tokens:\n  - {module: /a.so, model: \"\"}\n",
     "'model' must be one non-empty value"},
    {"hsm control char", "hsm_tokens:\n  - {module: /a.so, model: \"a\\tb\"}\n",
     "'model' must be one non-empty value"},
    {"hsm quote", "hsm_tokens:\n  - {module: /a.so, model: 'a\"b'}\n",
     "'model' must be one non-empty value"},
    {"hsm twice", BASE "hsm_tokens: []\nhsm_tokens: []\n",
     "line 8: key 'hsm_tokens' appears twice"},
    {"crl ftp", "crl_url: ftp://ca.example.org/ca.crl\n",
     "line 1: crl_url 'ftp://ca.example.org/ca.crl' is not an http:// or https:// URL"},
    {"crl no host", "crl_url: http:///ca.crl\n", "line 1: crl_url 'http:///ca.crl' has no host"},
    {"crl space", "crl_url: \"http://a/b c\"\n", "line 1: crl_url holds a control character"},
    {"crl newline", "crl_url: \"http://a/b\\nc\"\n", "crl_url holds a control character"},
    {"crl list", "crl_url: [http://a/]\n", "line 1: 'crl_url' must be a single value"},
    {"roots empty", "attestation_roots: \"\"\n",
     "line 1: 'attestation_roots': '' is not a directory path of 1 to 1023 characters"},
    {"key not scalar", "[a]: b\n", "keys must be plain names"},
};

static void
test_bad(void **state)
{
	struct tg_ca_policy pol;
	struct tg_error err;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		r = parse(bad_cases[i].text, &pol, &err);
		if (r != TG_ERR_CONFIG || strstr(err.msg, bad_cases[i].msg) == NULL)
			fail_msg("%s: r=%d msg='%s' (want '%s')", bad_cases[i].name, r, err.msg,
			         bad_cases[i].msg);
		assert_null(pol.serials);
	}
}

static void
test_write_round_trip(void **state)
{
	struct tg_ca_policy pol, back;
	struct tg_error err;
	char path[] = "/tmp/tg-test-policy-XXXXXX";
	uint64_t serials[] = {1, 25515003, 18446744073709551615ULL};
	struct tg_ca_hsm_token tokens[2] = {
	    {"/usr/lib/softhsm/libsofthsm2.so", "SoftHSM*", "SoftHSM v2", "[0-9a-f]*", 0},
	    {"/opt/hsm/lib p11.so", "", "", "", 0},
	};
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	tg_ca_policy_defaults(&pol);
	snprintf(pol.trust_domain, sizeof(pol.trust_domain), "corp.example");
	snprintf(pol.attestation_roots, sizeof(pol.attestation_roots), "/a b/roots:x");
	pol.min_firmware[0] = 5;
	pol.min_firmware[1] = 7;
	pol.min_firmware[2] = 1;
	pol.has_serials = 1;
	pol.serials = serials;
	pol.nserials = 3;
	pol.max_validity = 7 * 86400 + 60;
	snprintf(pol.crl_url, sizeof(pol.crl_url), "http://ca.example.org/crl/ca.crl");
	pol.hsm_tokens = tokens;
	pol.nhsm_tokens = 2;
	tg_error_clear(&err);
	assert_int_equal(tg_ca_policy_write(&pol, path, &err), 0);
	assert_int_equal(tg_ca_policy_load(path, &back, &err), 0);
	assert_string_equal(back.trust_domain, pol.trust_domain);
	assert_string_equal(back.attestation_roots, pol.attestation_roots);
	assert_memory_equal(back.min_firmware, pol.min_firmware, 3);
	assert_int_equal(back.pin_allowed, pol.pin_allowed);
	assert_int_equal(back.touch_allowed, pol.touch_allowed);
	assert_int_equal(back.nserials, 3);
	assert_memory_equal(back.serials, serials, sizeof(serials));
	assert_int_equal(back.default_validity, pol.default_validity);
	assert_int_equal(back.max_validity, pol.max_validity);
	assert_string_equal(back.crl_url, pol.crl_url);
	assert_int_equal(back.nhsm_tokens, 2);
	assert_string_equal(back.hsm_tokens[0].module, tokens[0].module);
	assert_string_equal(back.hsm_tokens[0].manufacturer, tokens[0].manufacturer);
	assert_string_equal(back.hsm_tokens[0].model, tokens[0].model);
	assert_string_equal(back.hsm_tokens[0].serial, tokens[0].serial);
	assert_string_equal(back.hsm_tokens[1].module, tokens[1].module);
	assert_string_equal(back.hsm_tokens[1].model, "");
	tg_ca_policy_clear(&back);
	/* no hsm_tokens, no crl_url: both absent after the round trip */
	pol.nhsm_tokens = 0;
	pol.hsm_tokens = NULL;
	pol.crl_url[0] = '\0';
	assert_int_equal(tg_ca_policy_write(&pol, path, &err), 0);
	assert_int_equal(tg_ca_policy_load(path, &back, &err), 0);
	assert_int_equal(back.nhsm_tokens, 0);
	assert_string_equal(back.crl_url, "");
	tg_ca_policy_clear(&back);
	/* values the file cannot hold */
	pol.hsm_tokens = tokens;
	pol.nhsm_tokens = 2;
	snprintf(tokens[1].model, sizeof(tokens[1].model), "a\"b");
	assert_int_equal(tg_ca_policy_write(&pol, path, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "hsm_tokens entry 2"));
	tokens[1].model[0] = '\0';
	snprintf(pol.crl_url, sizeof(pol.crl_url), "file:///etc/passwd");
	assert_int_equal(tg_ca_policy_write(&pol, path, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "not an http:// or https:// URL"));
	pol.crl_url[0] = '\0';
	/* a path the file cannot hold */
	snprintf(pol.attestation_roots, sizeof(pol.attestation_roots), "a\"b");
	assert_int_equal(tg_ca_policy_write(&pol, path, &err), TG_ERR_INVALID_ARG);
	unlink(path);
}

static void
test_helpers(void **state)
{
	long s;
	uint8_t fw[3];

	(void)state;
	assert_int_equal(tg_ca_duration_parse("90s", &s), 0);
	assert_int_equal(s, 90);
	assert_int_equal(tg_ca_duration_parse("2d", &s), 0);
	assert_int_equal(s, 172800);
	assert_int_equal(tg_ca_duration_parse("1hh", &s), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_duration_parse("h", &s), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_duration_parse(" 1h", &s), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_firmware_parse("5.7.4", fw), 0);
	assert_int_equal(fw[2], 4);
	assert_int_equal(tg_ca_firmware_parse("5.7.4.1", fw), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_firmware_parse("5..4", fw), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_ca_td_check("example.org", NULL), 0);
	assert_int_equal(tg_ca_td_check("", NULL), TG_ERR_IDENTITY);
}

/* Durations in messages: the largest unit that divides them, as the
 * policy and --validity spell them. */
static void
test_duration_str(void **state)
{
	static const struct {
		long secs;
		const char *want;
	} cases[] = {
	    {2592000, "30d"}, {90000, "25h"}, {5400, "90m"}, {45, "45s"}, {86401, "86401s"}};
	char buf[32];
	long back;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tg_ca_duration_str(cases[i].secs, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(tg_ca_duration_parse(buf, &back), 0);
		assert_int_equal(back, cases[i].secs);
	}
}

/* tg_ca_policy_check: each rule, only when selected, with its message. */
static void
test_check(void **state)
{
	static const struct {
		unsigned checks;
		enum tg_att_pin pin;
		enum tg_att_touch touch;
		int has_firmware;
		uint8_t fw[3];
		int has_serial;
		uint64_t serial;
		int want;
		const char *msg;
	} cases[] = {
	    {TG_CA_CHECK_ALL, TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, 1, {5, 7, 0}, 1, 42, 0, NULL},
	    {TG_CA_CHECK_ALL,
	     TG_ATT_PIN_NEVER,
	     TG_ATT_TOUCH_NEVER,
	     1,
	     {5, 7, 0},
	     1,
	     42,
	     TG_ERR_POLICY,
	     "PIN policy 'never' is not allowed by the CA policy (pin_policies in policy.yaml: "
	     "[once, always])"},
	    {TG_CA_CHECK_TOUCH, TG_ATT_PIN_NEVER, TG_ATT_TOUCH_NEVER, 0, {0, 0, 0}, 0, 0, 0, NULL},
	    {TG_CA_CHECK_TOUCH,
	     TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_ALWAYS,
	     1,
	     {5, 7, 0},
	     1,
	     42,
	     TG_ERR_POLICY,
	     "touch policy 'always' is not allowed by the CA policy (touch_policies in "
	     "policy.yaml: [never, cached])"},
	    {TG_CA_CHECK_ALL,
	     TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_NEVER,
	     1,
	     {5, 4, 3},
	     1,
	     42,
	     TG_ERR_POLICY,
	     "token firmware 5.4.3 is below the CA policy's minimum 5.7.0"},
	    {TG_CA_CHECK_ALL,
	     TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_NEVER,
	     0,
	     {0, 0, 0},
	     1,
	     42,
	     TG_ERR_POLICY,
	     "states no firmware version"},
	    {TG_CA_CHECK_ALL,
	     TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_NEVER,
	     1,
	     {5, 7, 0},
	     1,
	     43,
	     TG_ERR_POLICY,
	     "token serial 43 is not in the CA policy's serial allow-list"},
	    {TG_CA_CHECK_ALL,
	     TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_NEVER,
	     1,
	     {5, 7, 0},
	     0,
	     0,
	     TG_ERR_POLICY,
	     "states no token serial"},
	    {TG_CA_CHECK_PIN | TG_CA_CHECK_TOUCH,
	     TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_NEVER,
	     0,
	     {0, 0, 0},
	     0,
	     0,
	     0,
	     NULL},
	};
	struct tg_ca_policy pol;
	struct tg_att_facts f;
	struct tg_error err;
	size_t i;

	(void)state;
	assert_int_equal(parse(BASE "min_firmware: 5.7.0\nserials: [42]\n", &pol, &err), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&f, 0, sizeof(f));
		f.pin_policy = cases[i].pin;
		f.touch_policy = cases[i].touch;
		f.has_firmware = cases[i].has_firmware;
		memcpy(f.firmware, cases[i].fw, sizeof(f.firmware));
		snprintf(f.firmware_str, sizeof(f.firmware_str), "%u.%u.%u", cases[i].fw[0],
		         cases[i].fw[1], cases[i].fw[2]);
		f.has_serial = cases[i].has_serial;
		f.serial = cases[i].serial;
		tg_error_clear(&err);
		assert_int_equal(tg_ca_policy_check(&pol, &f, cases[i].checks, &err),
		                 cases[i].want);
		if (cases[i].msg != NULL && strstr(err.msg, cases[i].msg) == NULL)
			fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].msg);
	}
	tg_ca_policy_clear(&pol);
}

/* The limits: hsm_tokens and serials entries, the CRL URL's length, an
 * hsm_tokens entry with a key that is not a name, a policy file that is
 * not there. */
static void
test_limits(void **state)
{
	struct tg_ca_policy pol;
	struct tg_error err;
	char *text, *url;
	size_t i, n, cap = 2000000;
	int r;

	(void)state;
	text = malloc(cap);
	assert_non_null(text);
	n = (size_t)snprintf(text, cap, BASE "hsm_tokens:\n");
	for (i = 0; i < TG_CA_HSM_TOKENS_MAX + 1; i++)
		n += (size_t)snprintf(text + n, cap - n, "  - module: /usr/lib/m%zu.so\n", i);
	r = parse(text, &pol, &err);
	assert_int_equal(r, TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "'hsm_tokens' lists 65 entries; at most 64 are allowed"));
	assert_null(pol.hsm_tokens);

	n = (size_t)snprintf(text, cap, BASE "serials: [");
	for (i = 0; i < 100001; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s%zu", i ? "," : "", i + 1);
	snprintf(text + n, cap - n, "]\n");
	r = parse(text, &pol, &err);
	assert_int_equal(r, TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "'serials' lists 100001 entries; at most 100000"));
	assert_null(pol.serials);

	r = parse(BASE "hsm_tokens:\n  - {[a]: b}\n", &pol, &err);
	assert_int_equal(r, TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "line 8"));
	assert_non_null(strstr(err.msg, "'hsm_tokens': keys must be plain names"));

	url = malloc(TG_CA_URL_MAX + 1);
	assert_non_null(url);
	memcpy(url, "http://a/", 9);
	memset(url + 9, 'x', TG_CA_URL_MAX - 9);
	url[TG_CA_URL_MAX] = '\0';
	tg_error_clear(&err);
	assert_int_equal(tg_ca_crl_url_check(url, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "crl_url must be 1 to 1023 characters"));
	url[TG_CA_URL_MAX - 1] = '\0';
	assert_int_equal(tg_ca_crl_url_check(url, NULL), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_ca_crl_url_check(NULL, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "crl_url must be 1 to"));

	tg_error_clear(&err);
	assert_int_equal(tg_ca_policy_load("/nonexistent/policy.yaml", &pol, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open '/nonexistent/policy.yaml'"));
	tg_ca_policy_clear(NULL);
	free(url);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_str), cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),          cmocka_unit_test(test_write_round_trip),
	    cmocka_unit_test(test_helpers),      cmocka_unit_test(test_check),
	    cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
