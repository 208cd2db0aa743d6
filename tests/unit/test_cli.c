/*
 * test_cli.c — tgcore's CLI helpers (token/core/cli.c):
 *  - tg_cli_sh_quote, the one quoting of user values in the commands the
 *    programs print: each value, quoted, goes through a real
 *    `sh -c "printf '%s' VALUE"` and must come back byte for byte (spaces,
 *    quotes, $(...), backticks, newlines, globs), with no command
 *    substitution run;
 *  - the option table (tg_cli_getopt_init / tg_cli_next): only the options
 *    a subcommand declares are taken, each refusal names the subcommand,
 *    the option and --help (table-driven), hints, values never echoed;
 *  - dispatch, help detection and the failure line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_cli.h"
#include "tg_test.h"

static const char *const values[] = {
    "",
    "plain",
    "with space",
    "it's",
    "''",
    "'",
    "a'b'c",
    "$(touch /tmp/tg-quote-pwned)",
    "`touch /tmp/tg-quote-pwned`",
    "$HOME ${PATH} $1 $$",
    "a\nb\n",
    "\n",
    "tab\there",
    "back\\slash\\",
    "\"double\" quotes",
    "* ? [a-z] ~ ~root",
    "-n",
    "; rm -rf / ; # & | > < !",
    "caf\xc3\xa9 \xe2\x9c\x93",
    "pkcs11:token=a b;object=it's?module-path=/x/$(id).so&pin-source=file:/p",
};

/* What sh makes of `printf '%s' QUOTED`: a heap string. */
static char *
through_sh(const char *quoted)
{
	char *cmd, *out;
	size_t cap = 4096, n = 0, k;
	FILE *f;

	cmd = malloc(strlen(quoted) + 32);
	out = malloc(cap);
	assert_non_null(cmd);
	assert_non_null(out);
	snprintf(cmd, strlen(quoted) + 32, "printf '%%s' %s", quoted);
	assert_non_null(f = popen(cmd, "r"));
	while ((k = fread(out + n, 1, cap - n - 1, f)) > 0)
		n += k;
	assert_int_equal(pclose(f), 0);
	out[n] = '\0';
	free(cmd);
	return out;
}

static void
test_round_trip(void **state)
{
	char *q, *back;
	size_t i;

	(void)state;
	unlink("/tmp/tg-quote-pwned");
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		assert_non_null(q = tg_cli_sh_quote(values[i]));
		assert_true(q[0] == '\'' && q[strlen(q) - 1] == '\'');
		back = through_sh(q);
		if (strcmp(back, values[i]) != 0)
			fail_msg("value %zu: quoted as [%s], sh gave [%s]", i, q, back);
		free(back);
		free(q);
	}
	assert_int_not_equal(access("/tmp/tg-quote-pwned", F_OK), 0);
}

static void
test_known(void **state)
{
	char *q;

	(void)state;
	assert_non_null(q = tg_cli_sh_quote("it's"));
	assert_string_equal(q, "'it'\\''s'");
	free(q);
	assert_non_null(q = tg_cli_sh_quote(""));
	assert_string_equal(q, "''");
	free(q);
}

/* ---- capturing stderr ---- */

static int saved_fd = -1;
static FILE *cap;

static void
capture_start(void)
{
	fflush(stderr);
	assert_non_null(cap = tmpfile());
	assert_true((saved_fd = dup(STDERR_FILENO)) >= 0);
	assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
}

/* What was written to stderr since capture_start (static buffer). */
static const char *
capture_end(void)
{
	static char buf[2048];
	size_t n;

	fflush(stderr);
	assert_true(dup2(saved_fd, STDERR_FILENO) >= 0);
	close(saved_fd);
	rewind(cap);
	n = fread(buf, 1, sizeof(buf) - 1, cap);
	buf[n] = '\0';
	fclose(cap);
	return buf;
}

/* ---- the option table ---- */

enum { O_KEY = 1, O_JSON, O_OUT, O_ADD };

static const struct tg_cli_opt opts[] = {
    {"key", TG_CLI_ARG_REQUIRED, O_KEY},
    {"json", TG_CLI_ARG_NONE, O_JSON},
    {"out", TG_CLI_ARG_REQUIRED, O_OUT},
    {"add", TG_CLI_ARG_MANY, O_ADD},
    {NULL, 0, 0},
};

static const struct tg_cli_hint hints[] = {
    {"pin", "use pin-source= in the URI or TOKENGATE_PIN"},
    {NULL, NULL},
};

/* Runs the parser over a NULL-terminated argument list (argv[0] "list")
 * until END, HELP or BAD; returns that and the options seen in order. */
static int
run_parser(int operands, const char *const *args, int *ids, const char **vals, size_t *n, int *next)
{
	char *argv[16];
	struct tg_cli_getopt g;
	const char *arg;
	int argc = 0, c;

	argv[argc++] = (char *)"list";
	while (*args != NULL)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	*n = 0;
	assert_int_equal(
	    tg_cli_getopt_init(&g, "prog", "token list", opts, hints, operands, argc, argv), 0);
	while ((c = tg_cli_next(&g, &arg)) > 0) {
		ids[*n] = c;
		vals[(*n)++] = arg;
	}
	*next = g.next;
	return c;
}

static void
test_getopt_accepts(void **state)
{
	const char *const a[] = {"--key", "pkcs11:x", "--json", "--out=f", NULL};
	const char *vals[8];
	int ids[8], next;
	size_t n;

	(void)state;
	assert_int_equal(run_parser(0, a, ids, vals, &n, &next), TG_CLI_END);
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], O_KEY);
	assert_string_equal(vals[0], "pkcs11:x");
	assert_int_equal(ids[1], O_JSON);
	assert_null(vals[1]);
	assert_int_equal(ids[2], O_OUT);
	assert_string_equal(vals[2], "f");
	assert_int_equal(next, 5);
}

/* TG_CLI_ARG_MANY: given again, each value comes back in order. */
static void
test_getopt_many(void **state)
{
	const char *const a[] = {"--add", "a", "--add=b", "--add", "c", NULL};
	const char *const bad[] = {"--add", NULL};
	const char *vals[8];
	int ids[8], next;
	size_t n;

	(void)state;
	assert_int_equal(run_parser(0, a, ids, vals, &n, &next), TG_CLI_END);
	assert_int_equal(n, 3);
	assert_int_equal(ids[2], O_ADD);
	assert_string_equal(vals[0], "a");
	assert_string_equal(vals[1], "b");
	assert_string_equal(vals[2], "c");
	capture_start();
	assert_int_equal(run_parser(0, bad, ids, vals, &n, &next), TG_CLI_BAD);
	assert_string_equal(capture_end(),
	                    "prog token list: option '--add' needs a value (try 'prog token list "
	                    "--help')\n");
}

static void
test_getopt_operands(void **state)
{
	const char *const a[] = {"--json", "file1", NULL};
	const char *vals[8];
	int ids[8], next;
	size_t n;

	(void)state;
	assert_int_equal(run_parser(1, a, ids, vals, &n, &next), TG_CLI_END);
	assert_int_equal(n, 1);
	assert_int_equal(next, 2);
}

static void
test_getopt_help(void **state)
{
	const char *const a1[] = {"--json", "--help", NULL};
	const char *const a2[] = {"-h", NULL};
	const char *vals[8];
	int ids[8], next;
	size_t n;

	(void)state;
	assert_int_equal(run_parser(0, a1, ids, vals, &n, &next), TG_CLI_HELP);
	assert_int_equal(run_parser(0, a2, ids, vals, &n, &next), TG_CLI_HELP);
}

/* Each refusal: TG_CLI_BAD and exactly this line on stderr. */
static const struct {
	const char *args[4];
	const char *msg;
} refusals[] = {
    {{"--uri", "x", NULL},
     "prog token list: unknown option '--uri' (try 'prog token list --help')\n"},
    {{"--pin=123456", NULL},
     "prog token list: unknown option '--pin': use pin-source= in the URI or TOKENGATE_PIN "
     "(try 'prog token list --help')\n"},
    {{"--pin", "123456", NULL},
     "prog token list: unknown option '--pin': use pin-source= in the URI or TOKENGATE_PIN "
     "(try 'prog token list --help')\n"},
    {{"--key", NULL},
     "prog token list: option '--key' needs a value (try 'prog token list --help')\n"},
    {{"--json=yes", NULL},
     "prog token list: option '--json' takes no value (try 'prog token list --help')\n"},
    {{"--json", "--json", NULL},
     "prog token list: option '--json' is given twice (try 'prog token list --help')\n"},
    {{"--key", "a", "--key=b", NULL},
     "prog token list: option '--key' is given twice (try 'prog token list --help')\n"},
    {{"stray", NULL},
     "prog token list: unexpected argument 'stray' (try 'prog token list --help')\n"},
    {{"-x", NULL}, "prog token list: unknown option '-x' (try 'prog token list --help')\n"},
};

static void
test_getopt_refusals(void **state)
{
	const char *vals[8], *got;
	int ids[8], next, c;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		capture_start();
		c = run_parser(0, refusals[i].args, ids, vals, &n, &next);
		got = capture_end();
		if (c != TG_CLI_BAD || strcmp(got, refusals[i].msg) != 0)
			fail_msg("refusal %zu: got %d [%s], want [%s]", i, c, got, refusals[i].msg);
		/* a value is never echoed (it may be a PIN) */
		assert_null(strstr(got, "123456"));
	}
}

static void
test_getopt_bad_table(void **state)
{
	static const struct tg_cli_opt zero_id[] = {{"x", TG_CLI_ARG_NONE, 0}, {NULL, 0, 0}};
	struct tg_cli_opt big[TG_CLI_OPTS_MAX + 2];
	struct tg_cli_getopt g;
	char *argv[] = {(char *)"x", NULL};
	int i;

	(void)state;
	assert_int_equal(tg_cli_getopt_init(&g, "p", NULL, zero_id, NULL, 0, 1, argv),
	                 TG_ERR_INVALID_ARG);
	for (i = 0; i < TG_CLI_OPTS_MAX + 1; i++)
		big[i] = (struct tg_cli_opt){"o", TG_CLI_ARG_NONE, i + 1};
	big[i] = (struct tg_cli_opt){NULL, 0, 0};
	assert_int_equal(tg_cli_getopt_init(&g, "p", NULL, big, NULL, 0, 1, argv),
	                 TG_ERR_INVALID_ARG);
}

/* ---- dispatch, help, failure line ---- */

static int last_argc;
static const char *last_argv0;

static int
cmd_one(int argc, char **argv)
{
	last_argc = argc;
	last_argv0 = argv[0];
	return 7;
}

static const struct tg_cli_cmd cmds[] = {
    {"one", "the first command", cmd_one},
    {NULL, NULL, NULL},
};

static const struct tg_cli_group group = {
    .prog = "prog", .what = "grp", .intro = "intro text\n\n", .cmds = cmds};

static void
test_dispatch(void **state)
{
	char *a_run[] = {(char *)"grp", (char *)"one", (char *)"--x", NULL};
	char *a_bad[] = {(char *)"grp", (char *)"two", NULL};
	char *a_none[] = {(char *)"grp", NULL};
	const char *got;

	(void)state;
	assert_int_equal(tg_cli_dispatch(&group, 3, a_run), 7);
	assert_int_equal(last_argc, 2);
	assert_string_equal(last_argv0, "one");
	capture_start();
	assert_int_equal(tg_cli_dispatch(&group, 2, a_bad), TG_CLI_EXIT_USAGE);
	got = capture_end();
	assert_string_equal(got, "prog grp: unknown command 'two' (try 'prog grp --help')\n");
	capture_start();
	assert_int_equal(tg_cli_dispatch(&group, 1, a_none), TG_CLI_EXIT_USAGE);
	got = capture_end();
	assert_non_null(strstr(got, "usage: prog grp <command> [options]\n\nintro text\n"));
	assert_non_null(strstr(got, "  one          the first command\n"));
	assert_non_null(strstr(got, "Exit codes: 0 success, 1 failure, 2 bad command line.\n"));
}

/* A name longer than the usual column moves every summary right, two
 * spaces past the longest name. */
static void
test_group_usage_long_name(void **state)
{
	static const struct tg_cli_cmd long_cmds[] = {
	    {"one", "the first command", cmd_one},
	    {"verify-attestation", "a long name", cmd_one},
	    {NULL, NULL, NULL},
	};
	static const struct tg_cli_group g = {.prog = "prog", .what = "grp", .cmds = long_cmds};
	char *a_none[] = {(char *)"grp", NULL};
	const char *got;

	(void)state;
	capture_start();
	assert_int_equal(tg_cli_dispatch(&g, 1, a_none), TG_CLI_EXIT_USAGE);
	got = capture_end();
	if (strstr(got, "\n  one                 the first command\n") == NULL ||
	    strstr(got, "\n  verify-attestation  a long name\n") == NULL)
		fail_msg("summaries not in one column: [%s]", got);
}

static void
test_wants_help_and_fail(void **state)
{
	char *a1[] = {(char *)"x", (char *)"--key", (char *)"-h", NULL};
	char *a2[] = {(char *)"x", (char *)"--", (char *)"--help", NULL};
	struct tg_error err;
	const char *got;

	(void)state;
	assert_int_equal(tg_cli_wants_help(3, a1), 1);
	assert_int_equal(tg_cli_wants_help(3, a2), 0);
	tg_error_clear(&err);
	tg_error_set(&err, TG_ERR_IO, "cannot read '%s'", "f");
	capture_start();
	assert_int_equal(tg_cli_fail("prog", "sub", TG_ERR_IO, &err), TG_CLI_EXIT_FAIL);
	got = capture_end();
	assert_string_equal(got, "prog sub: cannot read 'f'\n");
	capture_start();
	assert_int_equal(tg_cli_fail("prog", NULL, TG_ERR_IO, NULL), TG_CLI_EXIT_FAIL);
	got = capture_end();
	assert_int_equal(strncmp(got, "prog: ", 6), 0);
}

/* A usage error both printed (with the hint) and handed back (without). */
static void
test_usage_err(void **state)
{
	struct tg_error err;
	const char *got;

	(void)state;
	tg_error_clear(&err);
	capture_start();
	assert_int_equal(tg_cli_usage_err("prog", "sub", &err, "--%s: bad", "x"), TG_ERR_USAGE);
	got = capture_end();
	assert_string_equal(got, "prog sub: --x: bad (try 'prog sub --help')\n");
	assert_int_equal(err.code, TG_ERR_USAGE);
	assert_string_equal(err.msg, "--x: bad");
	capture_start();
	assert_int_equal(tg_cli_usage_err("prog", NULL, NULL, "no %s", "y"), TG_ERR_USAGE);
	got = capture_end();
	assert_string_equal(got, "prog: no y (try 'prog --help')\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_known),
	    cmocka_unit_test(test_getopt_accepts),
	    cmocka_unit_test(test_getopt_many),

	    cmocka_unit_test(test_getopt_operands),
	    cmocka_unit_test(test_getopt_help),
	    cmocka_unit_test(test_getopt_refusals),
	    cmocka_unit_test(test_getopt_bad_table),
	    cmocka_unit_test(test_dispatch),
	    cmocka_unit_test(test_group_usage_long_name),
	    cmocka_unit_test(test_wants_help_and_fail),
	    cmocka_unit_test(test_usage_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
