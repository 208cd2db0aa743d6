/*
 * test_gatep_path.c — the edges of the request path's normal form
 * (tg_gate_path_normalize) and of the decision's arguments
 * (tg_gate_decide): an output buffer exactly big enough and one byte too
 * small, for plain bytes, a decoded unreserved escape and a kept escape;
 * no output buffer; each NULL argument of the decision (a deny with the
 * internal reason) and a path that was not normalized.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_err.h"
#include "tg_gate_decide.h"
#include "tg_gate_path.h"
#include "tg_test.h"

/* Normalizes raw into a buffer of exactly cap bytes (ASan sees overruns). */
static int
norm(const char *raw, size_t cap, char *res, size_t rescap, const char **why)
{
	char *out = cap > 0 ? malloc(cap) : NULL;
	int r;

	if (cap > 0)
		assert_non_null(out);
	*why = NULL;
	r = tg_gate_path_normalize(raw, strlen(raw), out, cap, why);
	if (cap > 0)
		snprintf(res, rescap, "%s", out);
	else
		res[0] = '\0';
	free(out);
	return r;
}

static void
test_normalize_room(void **state)
{
	static const struct {
		const char *raw, *norm;
	} cases[] = {
	    {"/abc", "/abc"},         /* plain bytes */
	    {"/a%41", "/aA"},         /* an unreserved escape decoded */
	    {"/a%3b", "/a%3B"},       /* a reserved escape kept, upper case */
	    {"/a/./b%7E?q", "/a/b~"}, /* the query is not part of it */
	};
	char res[64];
	const char *why;
	size_t i, need;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		need = strlen(cases[i].norm) + 1;
		assert_int_equal(norm(cases[i].raw, need, res, sizeof(res), &why), 0);
		assert_string_equal(res, cases[i].norm);
		assert_null(why);
		if (norm(cases[i].raw, need - 1, res, sizeof(res), &why) != TG_ERR_FORMAT)
			fail_msg("case %zu: fits in %zu bytes", i, need - 1);
		assert_string_equal(why, "the path is too long");
		assert_string_equal(res, "");
	}
	/* no buffer at all */
	assert_int_equal(norm("/a", 0, res, sizeof(res), &why), TG_ERR_FORMAT);
	assert_string_equal(why, "no room for the normalized path");
	why = NULL;
	assert_int_equal(tg_gate_path_normalize("/a", 2, NULL, 16, &why), TG_ERR_FORMAT);
	assert_string_equal(why, "no room for the normalized path");
	/* why may be NULL */
	assert_int_equal(tg_gate_path_normalize("a", 1, res, sizeof(res), NULL), TG_ERR_FORMAT);
	assert_string_equal(res, "");
}

#define INTERNAL "internal: decision without a policy, peer, method or path"

static void
test_decide_arguments(void **state)
{
	struct tg_gate_policy pol;
	struct tg_gate_peer peer = {"spiffe://e.org/dev/a", TG_PROV_DEVICE_ATTESTED,
	                            TG_ATT_PIN_ONCE, TG_ATT_TOUCH_NEVER, "1"};
	struct tg_gate_peer anon = {NULL, TG_PROV_DEVICE_ATTESTED, TG_ATT_PIN_ONCE,
	                            TG_ATT_TOUCH_NEVER, "1"};
	struct tg_gate_verdict v;
	struct tg_error err;
	static const char text[] = "routes:\n  - name: all\n    paths: [\"/**\"]\n"
	                           "    allow: [{identity: \"spiffe://e.org/dev/*\"}]\n";

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(tg_gate_policy_parse(text, sizeof(text) - 1, "p.yaml", &pol, &err), 0);
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/x", &v), 0);
	assert_int_equal(v.allow, 1);
	assert_int_equal(v.route, 0);
	/* every NULL: a deny with the internal reason */
	memset(&v, 0x5a, sizeof(v));
	assert_int_equal(tg_gate_decide(NULL, &peer, "GET", "/x", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v.allow, 0);
	assert_int_equal(v.route, -1);
	assert_int_equal(v.entry, -1);
	assert_string_equal(v.reason, INTERNAL);
	memset(&v, 0x5a, sizeof(v));
	assert_int_equal(tg_gate_decide(&pol, NULL, "GET", "/x", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v.allow, 0);
	assert_string_equal(v.reason, INTERNAL);
	memset(&v, 0x5a, sizeof(v));
	assert_int_equal(tg_gate_decide(&pol, &anon, "GET", "/x", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v.allow, 0);
	assert_string_equal(v.reason, INTERNAL);
	memset(&v, 0x5a, sizeof(v));
	assert_int_equal(tg_gate_decide(&pol, &peer, NULL, "/x", &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v.allow, 0);
	assert_string_equal(v.reason, INTERNAL);
	memset(&v, 0x5a, sizeof(v));
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", NULL, &v), TG_ERR_INVALID_ARG);
	assert_int_equal(v.allow, 0);
	assert_string_equal(v.reason, INTERNAL);
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "/x", NULL), TG_ERR_INVALID_ARG);
	/* a path that did not come out of the normalization */
	assert_int_equal(tg_gate_decide(&pol, &peer, "GET", "", &v), 0);
	assert_int_equal(v.allow, 0);
	assert_int_equal(v.route, -1);
	assert_string_equal(v.reason,
	                    "the path was refused or not normalized; no route can match it");
	tg_gate_policy_clear(&pol);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normalize_room),
	    cmocka_unit_test(test_decide_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
