/* main.c — `tokengate`: dispatches to one subcommand per file. */
#include "tg_cmd.h"
#include "tg_log.h"

/* One line per subcommand; keep sorted by name. */
static const struct tg_cli_cmd commands[] = {
    {"agent", "bridge a local client to a gate with mutual TLS signed on your token", tg_cmd_agent},
    {"audit", "check the gate's audit log (its hash chain)", tg_cmd_audit},
    {"ca", "run the token-backed certificate authority", tg_cmd_ca},
    {"doctor", "show the tokens, readers and modules this machine sees", tg_cmd_doctor},
    {"enroll", "generate a key on a token and get it a certificate", tg_cmd_enroll},
    {"gate", "verify token-backed clients and decide each request in front of an API", tg_cmd_gate},
    {"token", "manage keys and certificates on PKCS#11 tokens", tg_cmd_token},
    {NULL, NULL, NULL},
};

static const struct tg_cli_group program = {
    .prog = "tokengate",
    .version = "0.1.0",
    .intro = "Token-backed identities for API clients and servers.\n\n",
    .cmds = commands,
};

int
main(int argc, char **argv)
{
	tg_log_init(TG_LOG_WARN, 0, NULL);
	return tg_cli_dispatch(&program, argc, argv);
}
