/*
 * tg_cli.h — the one set of command-line helpers of the tokengate programs
 * (`tokengate`, `tokengate-sim`): subcommand dispatch, help detection, usage
 * errors, failure messages, the per-subcommand option table and shell
 * quoting of printed commands.
 *
 * Every message goes to stderr as one line "PROG WHAT: message": PROG is
 * the program ("tokengate", "tokengate-sim"), WHAT the subcommand as typed
 * ("token list", "init"; NULL for the program itself); usage errors end
 * with "(try 'PROG WHAT --help')". Exit codes, for every
 * program and subcommand: TG_CLI_EXIT_OK 0 success, TG_CLI_EXIT_FAIL 1 the
 * operation failed, TG_CLI_EXIT_USAGE 2 bad command line.
 *
 * Depends on libc only (getopt_long for the option table).
 */
#ifndef TG_CLI_H
#define TG_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "tg_err.h"

#define TG_CLI_EXIT_OK    0
#define TG_CLI_EXIT_FAIL  1
#define TG_CLI_EXIT_USAGE 2

/* What an option parser returns when the command line is good and the
 * command goes on: not an exit code and not a TG_ERR_* code. */
#define TG_CLI_CONTINUE 1000

/* ------------------------------------------------------------------ */
/* Subcommand dispatch                                                 */
/* ------------------------------------------------------------------ */

/* A subcommand: argv[0] is its name when run is called. */
struct tg_cli_cmd {
	const char *name;
	const char *summary; /* one line for the group's --help */
	int (*run)(int argc, char **argv);
};

/* A program or a command with subcommands ("tokengate token"). */
struct tg_cli_group {
	const char *prog;              /* "tokengate", "tokengate-sim" */
	const char *what;              /* "token" for a command's subcommands; NULL */
	const char *version;           /* printed for --version; NULL: no --version */
	const char *intro;             /* text after the usage line, before the list */
	const char *outro;             /* text after the list, before the exit codes */
	const struct tg_cli_cmd *cmds; /* ends with a NULL name */
};

/*
 * Prints the group's help on f: "usage: PROG [WHAT] <command> [options]", intro,
 * one line per subcommand (name and summary), outro, the pointer to each
 * subcommand's --help and the exit codes.
 */
void tg_cli_group_usage(const struct tg_cli_group *g, FILE *f);

/*
 * Runs the subcommand argv[1] names with (argc - 1, argv + 1) and returns
 * its exit code. No argument: the help on stderr, TG_CLI_EXIT_USAGE;
 * -h, --help or help: the help on stdout, TG_CLI_EXIT_OK; --version (when
 * g->version is set): "PROG VERSION", TG_CLI_EXIT_OK; anything else: a
 * usage error naming it, TG_CLI_EXIT_USAGE.
 */
int tg_cli_dispatch(const struct tg_cli_group *g, int argc, char **argv);

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* 1 if argv[1..argc-1] holds -h or --help before any "--", else 0. */
int tg_cli_wants_help(int argc, char **argv);

/*
 * Prints "PROG WHAT: <message>" on stderr, the message taken from err (or
 * tg_strerror(code) when err holds none; err may be NULL), and returns
 * TG_CLI_EXIT_FAIL. what may be NULL (then "PROG: ...").
 */
int tg_cli_fail(const char *prog, const char *what, int code, const struct tg_error *err);

/* Prints "PROG WHAT: <printf message> (try 'PROG WHAT --help')" on stderr
 * and returns TG_CLI_EXIT_USAGE. what may be NULL. */
int tg_cli_usage_error(const char *prog, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The same usage error on stderr, and its message (without the hint) in
 * err (may be NULL) with TG_ERR_USAGE, which it returns: for parsers that
 * print a usage error and also hand it back (the gate's and the agent's
 * flags).
 */
int tg_cli_usage_err(const char *prog, const char *what, struct tg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * For getopt_long's '?' or ':' (run with opterr = 0) in a parser that does
 * not use the option table: a usage error naming argv[optind - 1]
 * ("unknown or incomplete option '--x'"); returns TG_CLI_EXIT_USAGE.
 */
int tg_cli_bad_option(const char *prog, const char *what, int argc, char **argv);

/*
 * s quoted for a POSIX shell, so a printed command line hands s to the
 * program unchanged whatever it holds (spaces, $(...), backticks, quotes,
 * newlines): the whole value in single quotes, each ' inside written as
 * '\'' (e.g. it's -> 'it'\''s'). Returns a heap string (free with free())
 * or NULL when out of memory.
 */
char *tg_cli_sh_quote(const char *s);

/* ------------------------------------------------------------------ */
/* Option table: each subcommand declares the options it takes          */
/* ------------------------------------------------------------------ */

#define TG_CLI_ARG_NONE     0 /* a flag: --json */
#define TG_CLI_ARG_REQUIRED 1 /* takes a value: --key URI or --key=URI */
#define TG_CLI_ARG_MANY     2 /* takes a value and may be given again */

/* One long option a subcommand takes. */
struct tg_cli_opt {
	const char *name; /* without "--"; NULL ends a table */
	int has_arg;      /* TG_CLI_ARG_NONE, _REQUIRED or _MANY */
	int id;           /* > 0, what tg_cli_next returns for it */
};

/* Advice for an option users try that the program does not have, e.g.
 * {"pin", "a PIN is never given on the command line: ..."}. */
struct tg_cli_hint {
	const char *name; /* without "--"; NULL ends a table */
	const char *advice;
};

#define TG_CLI_OPTS_MAX 30

/* What tg_cli_next returns besides an option's id. */
/* (distinct from every TG_ERR_* code) */
#define TG_CLI_END  0       /* all options read; operands start at g->next */
#define TG_CLI_HELP (-1000) /* -h or --help: print the help, exit 0 */
#define TG_CLI_BAD  (-1001) /* a usage error was printed: exit TG_CLI_EXIT_USAGE */

/* A parser over one subcommand's argv (fields read-only for callers). */
struct tg_cli_getopt {
	const char *prog; /* "tokengate" */
	const char *what; /* "token list": with prog, named in every message */
	const struct tg_cli_opt *opts;
	const struct tg_cli_hint *hints;
	int operands; /* operands allowed after the options */
	int argc;
	char **argv;
	int next;                              /* at TG_CLI_END: index of the first operand */
	uint32_t seen;                         /* options given so far, by table index */
	int nopts;                             /* entries of opts */
	int fresh;                             /* getopt not started yet */
	struct option lo[TG_CLI_OPTS_MAX + 2]; /* getopt_long's table */
};

/*
 * Prepares a parser for argv (argv[0] is the subcommand's name); messages
 * name "PROG WHAT". opts is
 * the subcommand's table (at most TG_CLI_OPTS_MAX entries; -h and --help
 * are added), hints may be NULL; operands non-zero allows operands after
 * the options. Returns 0, or TG_ERR_INVALID_ARG for a table that is too
 * long or has an id <= 0 (a bug in the caller).
 */
int tg_cli_getopt_init(struct tg_cli_getopt *g, const char *prog, const char *what,
                       const struct tg_cli_opt *opts, const struct tg_cli_hint *hints, int operands,
                       int argc, char **argv);

/*
 * The next option (getopt_long over the table; glibc's state is reset on
 * the first call): its id, with *arg its value (NULL for a flag);
 * TG_CLI_HELP; TG_CLI_END when the options are done (and, unless operands
 * are allowed, no operand is left); or TG_CLI_BAD after printing one of
 * these usage errors (with "(try 'PROG --help')"):
 *   unknown option '--x'               an option not in the table
 *   unknown option '--pin': ADVICE     one with a hint
 *   option '--key' needs a value
 *   option '--json' takes no value     (--json=1)
 *   option '--key' is given twice
 *   unexpected argument 'x'            an operand where none is allowed
 */
int tg_cli_next(struct tg_cli_getopt *g, const char **arg);

#endif /* TG_CLI_H */
