/*
 * tg_fuzz_config.h — the checks the fuzz targets of the configuration file
 * readers (fuzz_gate_config.c, fuzz_agent_config.c) share. Include after
 * tg_fuzz.h.
 */
#ifndef TG_FUZZ_CONFIG_H
#define TG_FUZZ_CONFIG_H

#include <string.h>

#include "tg_err.h"
#include "tg_gate_config.h"

/*
 * A refusal of the file named name: TG_ERR_CONFIG with a message starting
 * with the file's name, or out of memory.
 */
static inline void
tg_fuzz_config_refused(const struct tg_error *err, const char *name)
{
	check(err->code == TG_ERR_CONFIG || err->code == TG_ERR_ALLOC);
	check(strncmp(err->msg, name, strlen(name)) == 0 || err->code == TG_ERR_ALLOC);
}

/*
 * The address s, which the reader parsed into u, parses again to the same
 * result; a unix socket has an absolute path and no host, anything else a
 * host and a port.
 */
static inline void
tg_fuzz_url_again(const char *s, int listen, const struct tg_gate_url *u)
{
	struct tg_gate_url v;
	struct tg_error err;

	check(tg_gate_url_parse(s, listen, &v, &err) == 0);
	check(v.scheme == u->scheme && strcmp(v.host, u->host) == 0 &&
	      strcmp(v.port, u->port) == 0 && strcmp(v.path, u->path) == 0);
	check(u->scheme == TG_GATE_SCHEME_UNIX ? u->path[0] == '/' && u->host[0] == '\0'
	                                       : u->host[0] != '\0' && u->port[0] != '\0');
}

#endif /* TG_FUZZ_CONFIG_H */
