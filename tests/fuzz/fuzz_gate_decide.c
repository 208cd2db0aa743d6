/*
 * fuzz_gate_decide.c — fuzz target of the gate's pure core: the input is a
 * request line's start, "METHOD SP request-target" (origin- or
 * absolute-form: tg_gate_path_target), decided for a fixed
 * peer under a fixed policy (host/gate/path.c, policy.c, decide.c).
 *
 * Invariants, each aborting when broken: a normalized path starts with
 * '/', holds no "//", no "." or ".." segment, no control byte, and is
 * already in normal form (normalizing it again gives it back); a refused
 * path comes with a reason; decide is never asked to allow a refused path
 * (the verdict stays a deny); an allow always names a route and an entry,
 * and only a peer meeting that entry's identity can be allowed; a deny
 * always has a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_fuzz.h"
#include "tg_gate_decide.h"
#include "tg_gate_path.h"

static const char policy_text[] =
    "groups:\n"
    "  admins: [\"spiffe://example.org/ops/*\"]\n"
    "routes:\n"
    "  - name: admin\n"
    "    paths: [\"/admin/**\", \"/v1/*/admin\"]\n"
    "    allow: [{group: admins, key: device-attested, pin: always, touch: always}]\n"
    "  - name: datasets-read\n"
    "    methods: [GET, HEAD]\n"
    "    paths: [\"/v1/datasets/**\"]\n"
    "    allow:\n"
    "      - {identity: \"spiffe://example.org/dev/*\", key: device-attested, pin: once}\n"
    "  - name: public\n"
    "    paths: [\"/public/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n"
    "  - name: rest\n"
    "    paths: [\"/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n";

static void
check_normal(const char *p)
{
	char again[TG_GATE_PATH_MAX];
	const char *why = NULL;
	size_t i, n = strlen(p);

	check(p[0] == '/');
	check(strstr(p, "//") == NULL);
	check(strstr(p, "/./") == NULL && strstr(p, "/../") == NULL);
	check(!(n >= 2 && strcmp(p + n - 2, "/.") == 0));
	check(!(n >= 3 && strcmp(p + n - 3, "/..") == 0));
	for (i = 0; i < n; i++)
		check((unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f && p[i] != '\\');
	check(tg_gate_path_normalize(p, n, again, sizeof(again), &why) == 0);
	check(strcmp(again, p) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tg_gate_policy pol;
	static int loaded;
	struct tg_gate_peer peers[3] = {
	    {"spiffe://example.org/dev/bob", TG_PROV_DEVICE_ATTESTED, TG_ATT_PIN_ONCE,
	     TG_ATT_TOUCH_NEVER, "1"},
	    {"spiffe://example.org/ops/carol", TG_PROV_DEVICE_ATTESTED, TG_ATT_PIN_ALWAYS,
	     TG_ATT_TOUCH_ALWAYS, "2"},
	    {"spiffe://example.org/svc/x", TG_PROV_HSM_OPERATOR, TG_ATT_PIN_NEVER,
	     TG_ATT_TOUCH_NEVER, "3"},
	};
	struct tg_gate_verdict v;
	struct tg_gate_target t;
	struct tg_error err;
	char method[33], path[TG_GATE_PATH_MAX];
	const char *why = NULL, *sp;
	size_t mlen, i;
	int rc;

	if (!loaded) {
		check(tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "fuzz.yaml", &pol,
		                           &err) == 0);
		loaded = 1;
	}
	sp = memchr(data, ' ', size);
	mlen = sp != NULL ? (size_t)(sp - (const char *)data) : 0;
	if (sp == NULL || mlen == 0 || mlen >= sizeof(method))
		return 0;
	memcpy(method, data, mlen);
	method[mlen] = '\0';
	/* either form of target, as the gate takes it */
	rc = tg_gate_path_target(sp + 1, size - mlen - 1, path, sizeof(path), &t, &why);
	if (rc != 0) {
		check(why != NULL && why[0] != '\0');
		check(path[0] == '\0');
		/* a refused path never reaches the decision: the gate answers 400.
		 * Deciding the empty output must still deny, also under "/" + "**". */
		for (i = 0; i < 3; i++) {
			check(tg_gate_decide(&pol, &peers[i], method, path, &v) == 0);
			check(!v.allow && v.route == -1);
		}
		return 0;
	}
	check(why == NULL);
	check_normal(path);
	for (i = 0; i < 3; i++) {
		check(tg_gate_decide(&pol, &peers[i], method, path, &v) == 0);
		check(v.reason[0] != '\0');
		if (v.allow) {
			check(v.route >= 0 && (size_t)v.route < pol.nroutes);
			check(v.entry >= 0 && (size_t)v.entry < pol.routes[v.route].nallow);
			/* the admin route only ever allows the ops peer */
			check(strcmp(pol.routes[v.route].name, "admin") != 0 || i == 1);
			/* the svc peer matches no identity anywhere */
			check(i != 2);
		}
		/* nothing under /admin is decided by another route */
		if (strncmp(path, "/admin", 6) == 0 && (path[6] == '\0' || path[6] == '/'))
			check(v.route == 0);
	}
	return 0;
}
