/*
 * fuzz_gate_policy.c — fuzz target for the gate's policy parser
 * (tg_gate_policy_parse, host/gate/policy.c, libyaml).
 *
 * For every input: a refusal is TG_ERR_CONFIG (or out of memory) with a
 * message and leaves an empty policy; an accepted policy has at least one
 * route, each with a name, paths and allow entries whose group and
 * upstream indexes are in range, every path pattern is in normal form, a
 * route's host: is an authority the Host field can carry, and no injected
 * header is a framing field, Host, or one the gate sets itself.
 * Released by tg_gate_policy_clear (the sanitizers see any leak).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tg_fuzz.h"
#include "tg_gate_path.h"
#include "tg_gate_policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_gate_policy p;
	struct tg_error err;
	char norm[TG_GATE_PATH_MAX];
	size_t i, j;

	tg_error_clear(&err);
	if (tg_gate_policy_parse((const char *)data, size, "policy.yaml", &p, &err) != 0) {
		check(err.code == TG_ERR_CONFIG || err.code == TG_ERR_ALLOC);
		check(err.msg[0] != '\0');
		check(p.nroutes == 0 && p.routes == NULL);
		tg_gate_policy_clear(&p);
		return 0;
	}
	check(p.nroutes > 0);
	for (i = 0; i < p.nroutes; i++) {
		const struct tg_gate_route *r = &p.routes[i];

		check(r->name[0] != '\0' && r->npaths > 0 && r->nallow > 0);
		check(r->upstream >= -1 && r->upstream < (long)p.nupstreams);
		/* a host: is a valid authority (it goes into the Host field) */
		check(r->host == NULL ||
		      tg_gate_path_authority_bad(r->host, strlen(r->host)) == NULL);
		for (j = 0; j < r->npaths; j++) {
			check(tg_gate_path_normalize(r->paths[j], strlen(r->paths[j]), norm,
			                             sizeof(norm), NULL) == 0);
			check(strcmp(norm, r->paths[j]) == 0);
		}
		/* no injected header frames the request or is one the gate sets */
		for (j = 0; j < r->ninject; j++) {
			const char *h = r->inject[j].header;

			check(strcasecmp(h, "content-length") != 0 &&
			      strcasecmp(h, "transfer-encoding") != 0 &&
			      strcasecmp(h, "host") != 0 &&
			      strncasecmp(h, "x-tokengate-", 12) != 0 &&
			      strncasecmp(h, "x-forwarded-", 12) != 0);
		}
		for (j = 0; j < r->nallow; j++) {
			const struct tg_gate_allow *a = &r->allow[j];

			check((a->identity != NULL) != (a->group >= 0));
			check(a->group < (long)p.ngroups);
		}
	}
	tg_gate_policy_clear(&p);
	return 0;
}
