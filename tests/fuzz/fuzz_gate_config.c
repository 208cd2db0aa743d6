/*
 * fuzz_gate_config.c — fuzz target for the gate's configuration file
 * reader (tg_gate_config_parse, host/gate/config.c, libyaml through tgyaml).
 *
 * For every input: a refusal is TG_ERR_CONFIG (or out of memory) with a
 * message that names the file, and leaves a cleared configuration; an
 * accepted one has 1 to 64 listeners, each with a name, an address that
 * parses again to the same result and an upstream that does too, every
 * limit and the worker count within their bounds, and every file path
 * absolute (relative ones start at the file's directory) or a pkcs11: URI.
 * Released by tg_gate_config_clear (the sanitizers see any leak). The
 * checks that open files (tg_gate_config_check) are not run on fuzz input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_fuzz.h"
#include "tg_fuzz_config.h"
#include "tg_gate_config.h"

#define NAME "/etc/tokengate/gate.yaml"

static int
path_ok(const char *p)
{
	return p == NULL || p[0] == '/' || strncmp(p, "pkcs11:", 7) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_gate_config c;
	struct tg_error err;
	size_t i;

	tg_error_clear(&err);
	if (tg_gate_config_parse((const char *)data, size, NAME, &c, &err) != 0) {
		tg_fuzz_config_refused(&err, NAME);
		check(c.nlisteners == 0 && c.listeners == NULL && c.file == NULL);
		tg_gate_config_clear(&c);
		return 0;
	}
	check(c.file != NULL && strcmp(c.file, NAME) == 0);
	check(c.nlisteners >= 1 && c.nlisteners <= 64);
	for (i = 0; i < c.nlisteners; i++) {
		const struct tg_gate_listener_cfg *l = &c.listeners[i];

		check(l->name[0] != '\0' && l->listen != NULL && l->line > 0);
		check(l->mode == TG_GATE_MODE_HTTP || l->mode == TG_GATE_MODE_TCP ||
		      l->mode == TG_GATE_MODE_AUTHZ);
		tg_fuzz_url_again(l->listen, 1, &l->addr);
		if (l->upstream != NULL)
			tg_fuzz_url_again(l->upstream, 0, &l->up);
		check(path_ok(l->policy_file));
	}
	check(path_ok(c.cert) && path_ok(c.key) && path_ok(c.crl) && path_ok(c.tickets) &&
	      path_ok(c.upstream_ca) && path_ok(c.policy_file) && path_ok(c.audit_file));
	for (i = 0; i < c.nclient_ca; i++)
		check(path_ok(c.client_ca[i]));
	if (c.admin != NULL)
		tg_fuzz_url_again(c.admin, 1, &c.admin_addr);
	check(c.workers >= 1 && c.workers <= 1024);
	check(c.limits.header_bytes >= 1 && c.limits.header_bytes <= 1024 * 1024);
	check(c.limits.header_count >= 1 && c.limits.request_line >= 1);
	check(c.limits.handshake_ms >= 1 && c.limits.header_ms >= 1 && c.limits.idle_ms >= 1);
	check(c.limits.upstream_connect_ms >= 1 && c.limits.upstream_ms >= 1);
	check(c.limits.max_conns >= 1 && c.limits.upstream_pool >= 1);
	check(c.dry_run == 0 || c.dry_run == 1);
	tg_gate_config_clear(&c);
	check(c.nlisteners == 0 && c.file == NULL);
	return 0;
}
