/*
 * tg_cmd.h — the `tokengate` subcommands, and the CLI helpers of tgcore
 * (tg_cli.h) bound to the program's name.
 *
 * Each subcommand lives in its own file and has the signature of
 * tg_cmd_fn: argv[0] is the subcommand's name. Exit codes, for every
 * subcommand: 0 success, 1 the operation failed (message on stderr, one line
 * that names the thing and the fix), 2 bad command line.
 */
#ifndef TG_CMD_H
#define TG_CMD_H

#include "tg_cli.h"
#include "tg_err.h"

#define TG_EXIT_OK    TG_CLI_EXIT_OK
#define TG_EXIT_FAIL  TG_CLI_EXIT_FAIL
#define TG_EXIT_USAGE TG_CLI_EXIT_USAGE

typedef int (*tg_cmd_fn)(int argc, char **argv);

/* Subcommands (one file each). */
int tg_cmd_token(int argc, char **argv);  /* host/token/ */
int tg_cmd_doctor(int argc, char **argv); /* host/doctor/ */
int tg_cmd_ca(int argc, char **argv);     /* host/ca/ */
int tg_cmd_enroll(int argc, char **argv); /* host/enroll/ */
int tg_cmd_audit(int argc, char **argv);  /* host/audit/ */
int tg_cmd_gate(int argc, char **argv);   /* host/gate/ */
int tg_cmd_agent(int argc, char **argv);  /* host/agent/ */

/* tgcore's CLI helpers (tg_cli.h) with PROG "tokengate": what is the
 * subcommand as typed ("token list"). */
#define TG_CMD_PROG                         "tokengate"
#define tg_cmd_fail(what, code, err)        tg_cli_fail(TG_CMD_PROG, what, code, err)
#define tg_cmd_bad_option(what, argc, argv) tg_cli_bad_option(TG_CMD_PROG, what, argc, argv)
#define tg_cmd_usage_error(what, ...)       tg_cli_usage_error(TG_CMD_PROG, what, __VA_ARGS__)
#define tg_cmd_wants_help                   tg_cli_wants_help
#define tg_cmd_sh_quote                     tg_cli_sh_quote

#endif /* TG_CMD_H */
