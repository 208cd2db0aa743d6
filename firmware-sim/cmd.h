/*
 * cmd.h — the subcommands of tokengate-sim (one file each) and what they
 * share. argv[0] is the subcommand's name. Exit codes: 0 success, 1 the
 * operation failed (one line on stderr naming the problem and the fix),
 * 2 bad command line.
 */
#ifndef TG_SIM_CMD_H
#define TG_SIM_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "tg_cli.h"
#include "tg_err.h"

#define TG_SIM_EXIT_OK    TG_CLI_EXIT_OK
#define TG_SIM_EXIT_FAIL  TG_CLI_EXIT_FAIL
#define TG_SIM_EXIT_USAGE TG_CLI_EXIT_USAGE

int tg_sim_cmd_init(int argc, char **argv);   /* init.c */
int tg_sim_cmd_run(int argc, char **argv);    /* run.c */
int tg_sim_cmd_status(int argc, char **argv); /* status.c */

/* tgcore's CLI helpers (tg_cli.h) with PROG "tokengate-sim": what is the
 * subcommand ("init"). tg_sim_cmd_fail prints "tokengate-sim <what>:
 * <message of err or code>" and returns TG_SIM_EXIT_FAIL;
 * tg_sim_cmd_usage_error prints "tokengate-sim <what>: <message> (try
 * 'tokengate-sim <what> --help')" and returns TG_SIM_EXIT_USAGE. */
#define TG_SIM_PROG                       "tokengate-sim"
#define tg_sim_cmd_fail(what, code, err)  tg_cli_fail(TG_SIM_PROG, what, code, err)
#define tg_sim_cmd_usage_error(what, ...) tg_cli_usage_error(TG_SIM_PROG, what, __VA_ARGS__)

/*
 * Reads the options of subcommand what from argv through tgcore's option
 * table (tg_cli_next: an option not in table, a missing value, a repeated
 * option or an operand is a usage error), calling set(o, id, value) for
 * each; set returns 0, or an exit code after printing its usage error.
 * Then --state must have been given (*state not NULL after the options).
 * Returns TG_CLI_CONTINUE when the command goes on, else its exit code:
 * TG_SIM_EXIT_OK after printing usage on stdout for --help,
 * TG_SIM_EXIT_USAGE after a usage error.
 */
int tg_sim_cmd_opts(const char *what, const struct tg_cli_opt *table, void (*usage)(FILE *),
                    int argc, char **argv, int (*set)(void *o, int id, const char *value), void *o,
                    const char *const *state);

/* Parses a decimal unsigned number in [min, max]; 0 or TG_ERR_USAGE. */
int tg_sim_cmd_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/*
 * Loads the token from the state file at path (read-only host: no persist,
 * no touch) into *tok, with errors naming the file and the fix. Used by
 * status; run passes its own host callbacks.
 */
struct tg_tok;
struct tg_tok_host;
int tg_sim_cmd_load_token(const char *path, const struct tg_tok_host *host, struct tg_tok **tok,
                          struct tg_error *err);

#endif /* TG_SIM_CMD_H */
