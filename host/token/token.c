/*
 * token.c — `tokengate token`: dispatches to list, keygen, import-cert,
 * export-cert, sign-test and csr (one file each, tok-int.h).
 */
#include <stdio.h>
#include <string.h>

#include "tok-int.h"

#define PIN_ADVICE                                                                                 \
	"a PIN is never taken on the command line (ps and shell history would show "               \
	"it): put pin-source=file:PATH or pin-source=env:NAME in the URI's query, set "            \
	"TOKENGATE_PIN, or answer the prompt on a terminal"

static const struct tg_cli_hint hints[] = {
    {"pin", PIN_ADVICE},
    {"pin-value", PIN_ADVICE},
    {"pin-source", "give it in the URI's query, e.g. 'pkcs11:token=T;object=K?pin-source="
                   "file:/run/pin', or set TOKENGATE_PIN"},
    {NULL, NULL},
};

/* Where each option's value goes. */
static void
opt_set(struct tg_tokcmd_opts *o, int id, const char *arg)
{
	switch (id) {
	case TOK_OPT_KEY:
		o->key = arg;
		break;
	case TOK_OPT_ALG:
		o->alg = arg;
		break;
	case TOK_OPT_CERT:
		o->cert = arg;
		break;
	case TOK_OPT_LABEL:
		o->label = arg;
		break;
	case TOK_OPT_OUT:
		o->out = arg;
		break;
	case TOK_OPT_URI:
		o->uri = arg;
		break;
	case TOK_OPT_ID:
		o->id = arg;
		break;
	case TOK_OPT_REPLACE:
		o->replace = 1;
		break;
	case TOK_OPT_ALLOW:
		o->allow = 1;
		break;
	case TOK_OPT_ALLOW_IMPORTED:
		o->allow_imported = 1;
		break;
	case TOK_OPT_PSS:
		o->pss = 1;
		break;
	case TOK_OPT_JSON:
		o->json = 1;
		break;
	case TOK_OPT_LOGIN:
		o->login = 1;
		break;
	default:
		break;
	}
}

int
tg_tokcmd_parse(const char *what, const struct tg_cli_opt *table, const char *usage, int argc,
                char **argv, struct tg_tokcmd_opts *o, int *rc)
{
	struct tg_cli_getopt g;
	const char *arg;
	int c = TG_CLI_BAD, go = 0;

	memset(o, 0, sizeof(*o));
	*rc = TG_EXIT_USAGE;
	if (tg_cli_getopt_init(&g, TG_CMD_PROG, what, table, hints, 0, argc, argv) != 0) {
		*rc = tg_cmd_fail(what, TG_ERR_INTERNAL, NULL);
		goto out;
	}
	while ((c = tg_cli_next(&g, &arg)) > 0)
		opt_set(o, c, arg);
	if (c == TG_CLI_HELP) {
		fputs(usage, stdout);
		*rc = TG_EXIT_OK;
	}
	go = c == TG_CLI_END;
out:
	return go;
}

static const struct tg_cli_cmd subs[] = {
    {"list", "modules, tokens, keys and certificates, with their URIs (--json)", tg_tokcmd_list},
    {"keygen", "generate a non-exportable key pair on a token", tg_tokcmd_keygen},
    {"import-cert", "store a certificate next to its key (same CKA_ID)", tg_tokcmd_import_cert},
    {"export-cert", "print a key's certificate (PEM); never a private key", tg_tokcmd_export_cert},
    {"sign-test", "sign and verify a message with a key; report its trust", tg_tokcmd_sign_test},
    {"csr", "a certificate request (PKCS#10) signed on the token", tg_tokcmd_csr},
    {NULL, NULL, NULL},
};

static const struct tg_cli_group group = {
    .prog = TG_CMD_PROG,
    .what = "token",
    .intro = "Manage keys and certificates on PKCS#11 tokens (smart cards through\n"
             "OpenSC, HSMs, SoftHSM2). Keys are named by RFC 7512 URIs, e.g.\n"
             "  pkcs11:token=alice;object=api?pin-source=file:/run/pin\n"
             "The default module is p11-kit's proxy (every registered module);\n"
             "add ?module-path=/path/module.so to use one module.\n\n",
    .outro = TG_TOKCMD_PIN_HELP TG_TOKCMD_TRUST_HELP "\n",
    .cmds = subs,
};

int
tg_cmd_token(int argc, char **argv)
{
	return tg_cli_dispatch(&group, argc, argv);
}
