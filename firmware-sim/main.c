/*
 * main.c — `tokengate-sim`: the simulated PIV hardware token. Dispatches to
 * one subcommand per file (init.c, run.c, status.c) through tgcore's CLI
 * helpers (tg_cli.h) and holds the helpers they share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "tg_cli.h"
#include "statefile.h"
#include "tg_log.h"
#include "tg_secret.h"
#include "tg_tok.h"

static const struct tg_cli_cmd commands[] = {
    {"init", "create a new token in a state file", tg_sim_cmd_init},
    {"run", "plug the token into pcscd's vpcd reader and serve it", tg_sim_cmd_run},
    {"status", "show a token's keys, policies and counters", tg_sim_cmd_status},
    {NULL, NULL, NULL},
};

static const struct tg_cli_group program = {
    .prog = "tokengate-sim",
    .version = "0.1.0",
    .intro = "A simulated PIV hardware token (YubiKey-compatible) that pcscd sees as a\n"
             "card in its vpcd reader, so OpenSC, yubico-piv-tool and tokengate drive it\n"
             "like a real token. Its keys are generated inside it and never leave it.\n\n",
    .cmds = commands,
};

int
tg_sim_cmd_opts(const char *what, const struct tg_cli_opt *table, void (*usage)(FILE *), int argc,
                char **argv, int (*set)(void *o, int id, const char *value), void *o,
                const char *const *state)
{
	struct tg_cli_getopt g;
	const char *value;
	int c, rc = TG_SIM_EXIT_USAGE;

	if (tg_cli_getopt_init(&g, TG_SIM_PROG, what, table, NULL, 0, argc, argv) != 0) {
		rc = tg_sim_cmd_fail(what, TG_ERR_INTERNAL, NULL);
		goto out;
	}
	while ((c = tg_cli_next(&g, &value)) > 0) {
		if ((rc = set(o, c, value)) != 0)
			goto out;
	}
	if (c == TG_CLI_HELP) {
		usage(stdout);
		rc = TG_SIM_EXIT_OK;
	} else if (c != TG_CLI_END) {
		rc = TG_SIM_EXIT_USAGE;
	} else if (*state == NULL) {
		rc = tg_sim_cmd_usage_error(what, "--state FILE is required");
	} else {
		rc = TG_CLI_CONTINUE;
	}
out:
	return rc;
}

int
tg_sim_cmd_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end = NULL;
	unsigned long long v;
	int r = TG_ERR_USAGE;

	if (s == NULL || *s < '0' || *s > '9')
		goto out;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		goto out;
	*out = (uint32_t)v;
	r = 0;
out:
	return r;
}

int
tg_sim_cmd_load_token(const char *path, const struct tg_tok_host *host, struct tg_tok **tok,
                      struct tg_error *err)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	int r;

	if ((r = tg_sim_state_read(path, &blob, &len, err)) != 0)
		goto out;
	r = tg_tok_load(blob, len, host, tok);
	switch (r) {
	case 0:
		break;
	case TG_ERR_VERSION:
		tg_error_set(err, r,
		             "state file %s was written by another version of tokengate-sim; "
		             "use that version or create a new token with 'tokengate-sim init'",
		             path);
		break;
	case TG_ERR_CHECKSUM:
		tg_error_set(err, r,
		             "state file %s is damaged (checksum mismatch); restore it from a "
		             "backup or create a new token with 'tokengate-sim init --force'",
		             path);
		break;
	case TG_ERR_FORMAT:
	case TG_ERR_TRUNCATED:
	case TG_ERR_TRAILING:
		tg_error_set(err, r,
		             "%s is not a tokengate-sim state file (%s); pass the file written "
		             "by 'tokengate-sim init'",
		             path, tg_strerror(r));
		break;
	default:
		tg_error_set(err, r, "cannot load the token from %s: %s", path, tg_strerror(r));
		break;
	}
out:
	tg_freezero(blob, len);
	return r;
}

int
main(int argc, char **argv)
{
	tg_log_init(TG_LOG_WARN, 0, NULL);
	return tg_cli_dispatch(&program, argc, argv);
}
