/*
 * tg_cmd.h — the `tokengate` subcommands and the helpers they share.
 *
 * Each subcommand lives in its own file and has the signature of
 * tg_cmd_fn: argv[0] is the subcommand's name. Exit codes, for every
 * subcommand: 0 success, 1 the operation failed (message on stderr, one line
 * that names the thing and the fix), 2 bad command line.
 */
#ifndef TG_CMD_H
#define TG_CMD_H

#include "tg_err.h"

#define TG_EXIT_OK    0
#define TG_EXIT_FAIL  1
#define TG_EXIT_USAGE 2

typedef int (*tg_cmd_fn)(int argc, char **argv);

struct tg_cmd {
	const char *name;
	const char *summary; /* one line for `tokengate --help` */
	tg_cmd_fn run;
};

/* Subcommands (one file each). */
int tg_cmd_token(int argc, char **argv);  /* host/token/ */
int tg_cmd_doctor(int argc, char **argv); /* host/doctor/ */
int tg_cmd_ca(int argc, char **argv);     /* host/ca/ */
int tg_cmd_enroll(int argc, char **argv); /* host/enroll/ */

/* 1 if argv[1..argc-1] contains -h or --help. */
int tg_cmd_wants_help(int argc, char **argv);

/*
 * Prints "tokengate <what>: <message>" on stderr, the message taken from err
 * (or tg_strerror(code) when err holds none), and returns TG_EXIT_FAIL.
 */
int tg_cmd_fail(const char *what, int code, const struct tg_error *err);

/*
 * For getopt_long's '?' (run with opterr = 0): prints "tokengate <what>:
 * unknown or incomplete option 'ARG' (try ...)" naming argv[optind - 1], and
 * returns TG_EXIT_USAGE.
 */
int tg_cmd_bad_option(const char *what, int argc, char **argv);

/* Prints "tokengate <what>: <printf message> (try --help)" on stderr and
 * returns TG_EXIT_USAGE. */
int tg_cmd_usage_error(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * s quoted for a POSIX shell, so a printed command line hands s to the
 * program unchanged whatever it holds (spaces, $(...), backticks, quotes,
 * newlines): the whole value in single quotes, each ' inside written as
 * '\'' (e.g. it's -> 'it'\''s'). Returns a heap string (free with free())
 * or NULL when out of memory.
 */
char *tg_cmd_sh_quote(const char *s);

#endif /* TG_CMD_H */
