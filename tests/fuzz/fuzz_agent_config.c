/*
 * fuzz_agent_config.c — fuzz target for the agent's configuration file
 * reader (tg_agent_config_parse, host/agent/config.c, libyaml through
 * tgyaml).
 *
 * For every input: a refusal is TG_ERR_CONFIG (or out of memory) with a
 * message naming the file, and leaves a cleared configuration; an accepted
 * one has 1 to 64 listeners, each with a name, a listen address that parses
 * again to the same result and is loopback or a unix socket unless
 * allow_remote, an https:// upstream, a pkcs11: key, an absolute CA path,
 * a certificate that is absent, absolute or pkcs11:, a spiffe:// server id
 * (never with a server name) and a Host only in http mode. Released by
 * tg_agent_config_clear (the sanitizers see any leak).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_agent_config.h"
#include "tg_fuzz.h"
#include "tg_fuzz_config.h"

#define NAME "/etc/tokengate/agent.yaml"

static int
local(const struct tg_gate_url *u)
{
	return u->scheme == TG_GATE_SCHEME_UNIX || strncmp(u->host, "127.", 4) == 0 ||
	       strcmp(u->host, "::1") == 0 || strcmp(u->host, "localhost") == 0 ||
	       strncmp(u->host, "::ffff:127.", 11) == 0 ||
	       strncmp(u->host, "::FFFF:127.", 11) == 0 ||
	       strncmp(u->host, "0:0:0:0:0:0:0:1", 15) == 0 || strchr(u->host, ':') != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_agent_config c;
	struct tg_error err;
	size_t i;

	tg_error_clear(&err);
	if (tg_agent_config_parse((const char *)data, size, NAME, &c, &err) != 0) {
		tg_fuzz_config_refused(&err, NAME);
		check(c.nlisteners == 0 && c.listeners == NULL && c.file == NULL);
		tg_agent_config_clear(&c);
		return 0;
	}
	check(c.file != NULL && strcmp(c.file, NAME) == 0);
	check(c.nlisteners >= 1 && c.nlisteners <= 64);
	for (i = 0; i < c.nlisteners; i++) {
		const struct tg_agent_listener_cfg *l = &c.listeners[i];

		check(l->name[0] != '\0' && l->listen != NULL && l->line > 0);
		check(l->mode == TG_AGENT_MODE_HTTP || l->mode == TG_AGENT_MODE_TCP);
		tg_fuzz_url_again(l->listen, 1, &l->addr);
		/* IPv6 forms are checked exactly by the unit test; here: no IPv4 off loopback */
		check(l->allow_remote || local(&l->addr));
		check(l->upstream != NULL && l->up.scheme == TG_GATE_SCHEME_HTTPS);
		tg_fuzz_url_again(l->upstream, 0, &l->up);
		check(l->key != NULL && strncmp(l->key, "pkcs11:", 7) == 0);
		check(l->ca != NULL && l->ca[0] == '/');
		check(l->cert == NULL || l->cert[0] == '/' || strncmp(l->cert, "pkcs11:", 7) == 0);
		check(l->server_id == NULL || strncmp(l->server_id, "spiffe://", 9) == 0);
		check(l->server_id == NULL || l->server_name == NULL);
		check(l->host == NULL || l->mode == TG_AGENT_MODE_HTTP);
	}
	if (c.admin != NULL)
		tg_fuzz_url_again(c.admin, 1, &c.admin_addr);
	tg_agent_config_clear(&c);
	check(c.nlisteners == 0 && c.file == NULL);
	return 0;
}
