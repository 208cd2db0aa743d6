/* main.c — `tokengate`: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "tg_cmd.h"
#include "tg_log.h"

/* One line per subcommand; keep sorted by name. */
static const struct tg_cmd commands[] = {
    {"ca", "run the token-backed certificate authority", tg_cmd_ca},
    {"doctor", "show the tokens, readers and modules this machine sees", tg_cmd_doctor},
    {"enroll", "generate a key on a token and get it a certificate", tg_cmd_enroll},
    {"token", "manage keys and certificates on PKCS#11 tokens", tg_cmd_token},
    {NULL, NULL, NULL},
};

static void
usage(FILE *f)
{
	const struct tg_cmd *c;

	fprintf(f, "usage: tokengate <command> [options]\n\n"
	           "Token-backed identities for API clients and servers.\n\n"
	           "commands:\n");
	for (c = commands; c->name != NULL; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\n'tokengate <command> --help' describes each command.\n"
	           "Exit codes: 0 success, 1 failure, 2 bad command line.\n");
}

int
main(int argc, char **argv)
{
	const struct tg_cmd *c;
	int rc = TG_EXIT_USAGE;

	tg_log_init(TG_LOG_WARN, 0, NULL);
	if (argc < 2) {
		usage(stderr);
		goto out;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		rc = TG_EXIT_OK;
		goto out;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("tokengate 0.1.0\n");
		rc = TG_EXIT_OK;
		goto out;
	}
	for (c = commands; c->name != NULL; c++) {
		if (strcmp(c->name, argv[1]) == 0) {
			rc = c->run(argc - 1, argv + 1);
			goto out;
		}
	}
	fprintf(stderr, "tokengate: unknown command '%s' (try 'tokengate --help')\n", argv[1]);
out:
	return rc;
}
