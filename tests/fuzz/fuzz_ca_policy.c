/*
 * fuzz_ca_policy.c — fuzz target for the CA policy loader
 * (tg_ca_policy_parse, host/ca/policy.c), which reads DIR/policy.yaml
 * through libyaml on every CA command.
 *
 * For every input: a refusal is TG_ERR_CONFIG (or out of memory) with a
 * message; an accepted policy has a valid trust domain, a roots path, a
 * default validity within the maximum and a consistent serial list, and is
 * released by tg_ca_policy_clear (the sanitizers see any leak). A broken
 * property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_ca_policy.h"
#include "tg_fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_ca_policy pol;
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_ca_policy_parse((const char *)data, size, "policy.yaml", &pol, &err) != 0) {
		check(err.code == TG_ERR_CONFIG || err.code == TG_ERR_ALLOC);
		check(err.msg[0] != '\0');
		tg_ca_policy_clear(&pol);
		return 0;
	}
	check(tg_ca_td_check(pol.trust_domain, NULL) == 0);
	check(pol.attestation_roots[0] != '\0');
	check(pol.default_validity <= pol.max_validity);
	check(!pol.has_serials || pol.nserials == 0 || pol.serials != NULL);
	check(pol.has_serials || pol.nserials == 0);
	tg_ca_policy_clear(&pol);
	return 0;
}
