/* cli.c — command-line helpers shared by the tokengate programs (tg_cli.h). */
#include "tg_cli.h"

#include <stdlib.h>
#include <string.h>

/* Exit codes are 0..255 and TG_ERR_* codes negative: "go on" is neither. */
_Static_assert(TG_CLI_CONTINUE > 255, "TG_CLI_CONTINUE must differ from every exit code");

#define VAL_HELP       (TG_CLI_OPTS_MAX + 1) /* getopt val of --help; table vals are 1..nopts */
#define NAME_MAX_SHOWN 64                    /* an option's name as echoed in a message */
#define PROG_MAX       128                   /* "PROG WHAT" */

static int
is_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* "PROG WHAT" (or "PROG") into buf. */
static const char *
full_name(const char *prog, const char *what, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s", prog, what != NULL ? " " : "", what != NULL ? what : "");
	return buf;
}

void
tg_cli_group_usage(const struct tg_cli_group *g, FILE *f)
{
	const struct tg_cli_cmd *c;
	char name[PROG_MAX];
	int width = 12;

	full_name(g->prog, g->what, name, sizeof(name));
	fprintf(f, "usage: %s <command> [options]\n\n", name);
	if (g->intro != NULL)
		fputs(g->intro, f);
	fprintf(f, "commands:\n");
	for (c = g->cmds; c->name != NULL; c++) /* the summaries in one column */
		if ((int)strlen(c->name) >= width)
			width = (int)strlen(c->name) + 1;
	for (c = g->cmds; c->name != NULL; c++)
		fprintf(f, "  %-*s %s\n", width, c->name, c->summary);
	fprintf(f, "\n");
	if (g->outro != NULL)
		fputs(g->outro, f);
	fprintf(f,
	        "'%s <command> --help' describes each command.\n"
	        "Exit codes: 0 success, 1 failure, 2 bad command line.\n",
	        name);
}

int
tg_cli_dispatch(const struct tg_cli_group *g, int argc, char **argv)
{
	const struct tg_cli_cmd *c;
	int rc = TG_CLI_EXIT_USAGE;

	if (argc < 2) {
		tg_cli_group_usage(g, stderr);
		goto out;
	}
	if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		tg_cli_group_usage(g, stdout);
		rc = TG_CLI_EXIT_OK;
		goto out;
	}
	if (g->version != NULL && strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", g->prog, g->version);
		rc = TG_CLI_EXIT_OK;
		goto out;
	}
	for (c = g->cmds; c->name != NULL; c++) {
		if (strcmp(c->name, argv[1]) == 0) {
			rc = c->run(argc - 1, argv + 1);
			goto out;
		}
	}
	rc = tg_cli_usage_error(g->prog, g->what, "unknown command '%s'", argv[1]);
out:
	return rc;
}

int
tg_cli_wants_help(int argc, char **argv)
{
	int i, r = 0;

	for (i = 1; i < argc && r == 0; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		r = is_help(argv[i]);
	}
	return r;
}

int
tg_cli_fail(const char *prog, const char *what, int code, const struct tg_error *err)
{
	char name[PROG_MAX];

	fprintf(stderr, "%s: %s\n", full_name(prog, what, name, sizeof(name)),
	        tg_error_msg(err, code));
	return TG_CLI_EXIT_FAIL;
}

int
tg_cli_usage_error(const char *prog, const char *what, const char *fmt, ...)
{
	char name[PROG_MAX];
	va_list ap;

	full_name(prog, what, name, sizeof(name));
	fprintf(stderr, "%s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try '%s --help')\n", name);
	return TG_CLI_EXIT_USAGE;
}

int
tg_cli_usage_err(const char *prog, const char *what, struct tg_error *err, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_cli_usage_error(prog, what, "%s", msg);
	return tg_error_set(err, TG_ERR_USAGE, "%s", msg);
}

int
tg_cli_bad_option(const char *prog, const char *what, int argc, char **argv)
{
	const char *arg = "?";

	if (optind > 0 && optind <= argc)
		arg = argv[optind - 1];
	return tg_cli_usage_error(prog, what, "unknown or incomplete option '%s'", arg);
}

char *
tg_cli_sh_quote(const char *s)
{
	size_t n = 2, i, o = 0;
	char *q;

	/* POSIX sh 2.2.2: nothing is special inside single quotes, so each
	 * embedded ' becomes '\'' (close, escaped quote, reopen) */
	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\'' ? 4 : 1;
	if ((q = malloc(n + 1)) == NULL)
		goto out;
	q[o++] = '\'';
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\'') {
			memcpy(q + o, "'\\''", 4);
			o += 4;
		} else {
			q[o++] = s[i];
		}
	}
	q[o++] = '\'';
	q[o] = '\0';
out:
	return q;
}

int
tg_cli_getopt_init(struct tg_cli_getopt *g, const char *prog, const char *what,
                   const struct tg_cli_opt *opts, const struct tg_cli_hint *hints, int operands,
                   int argc, char **argv)
{
	int i, r = TG_ERR_INVALID_ARG;

	memset(g, 0, sizeof(*g));
	g->prog = prog;
	g->what = what;
	g->opts = opts;
	g->hints = hints;
	g->operands = operands;
	g->argc = argc;
	g->argv = argv;
	g->fresh = 1;
	for (i = 0; opts != NULL && opts[i].name != NULL; i++) {
		if (i >= TG_CLI_OPTS_MAX || opts[i].id <= 0)
			goto out;
		g->lo[i].name = opts[i].name;
		g->lo[i].has_arg =
		    opts[i].has_arg == TG_CLI_ARG_NONE ? no_argument : required_argument;
		g->lo[i].flag = NULL;
		g->lo[i].val = i + 1;
	}
	g->nopts = i;
	g->lo[i].name = "help";
	g->lo[i].has_arg = no_argument;
	g->lo[i].val = VAL_HELP;
	/* g->lo[i + 1] stays zero: the end of getopt_long's table */
	r = 0;
out:
	return r;
}

/*
 * The option argv[optind - 1] as typed, without any "=value" (a value may be
 * a secret, e.g. --pin=1234), into buf.
 */
static const char *
shown_option(const struct tg_cli_getopt *g, char *buf, size_t n)
{
	const char *a = "?";
	size_t l;

	if (optind > 0 && optind <= g->argc)
		a = g->argv[optind - 1];
	l = strcspn(a, "=");
	if (l > NAME_MAX_SHOWN)
		l = NAME_MAX_SHOWN;
	snprintf(buf, n, "%.*s", (int)l, a);
	return buf;
}

/* The advice for an unknown option named "--NAME" (buf as shown_option), or
 * NULL. */
static const char *
hint_find(const struct tg_cli_getopt *g, const char *shown)
{
	const struct tg_cli_hint *h;
	const char *advice = NULL;

	for (h = g->hints; strncmp(shown, "--", 2) == 0 && h != NULL && h->name != NULL; h++) {
		if (strcmp(h->name, shown + 2) == 0) {
			advice = h->advice;
			break;
		}
	}
	return advice;
}

int
tg_cli_next(struct tg_cli_getopt *g, const char **arg)
{
	char shown[NAME_MAX_SHOWN + 1];
	const char *advice;
	int c, idx, r = TG_CLI_BAD;

	*arg = NULL;
	if (g->fresh) {
		optind = 0; /* glibc: full re-initialisation */
		opterr = 0;
		g->fresh = 0;
	}
	/* ":" first: a missing value is ':' rather than '?' */
	c = getopt_long(g->argc, g->argv, ":h", g->lo, NULL);
	if (c == -1) {
		g->next = optind;
		if (!g->operands && optind < g->argc)
			tg_cli_usage_error(g->prog, g->what, "unexpected argument '%s'",
			                   g->argv[optind]);
		else
			r = TG_CLI_END;
		goto out;
	}
	if (c == 'h' || c == VAL_HELP) {
		r = TG_CLI_HELP;
		goto out;
	}
	if (c == ':') {
		tg_cli_usage_error(g->prog, g->what, "option '%s' needs a value",
		                   shown_option(g, shown, sizeof(shown)));
		goto out;
	}
	if (c == '?' && optopt > 0 && optopt <= g->nopts) {
		tg_cli_usage_error(g->prog, g->what, "option '%s' takes no value",
		                   shown_option(g, shown, sizeof(shown)));
		goto out;
	}
	if (c == '?' || c <= 0 || c > g->nopts) {
		shown_option(g, shown, sizeof(shown));
		if ((advice = hint_find(g, shown)) != NULL)
			tg_cli_usage_error(g->prog, g->what, "unknown option '%s': %s", shown,
			                   advice);
		else
			tg_cli_usage_error(g->prog, g->what, "unknown option '%s'", shown);
		goto out;
	}
	idx = c - 1;
	if ((g->seen & (UINT32_C(1) << idx)) && g->opts[idx].has_arg != TG_CLI_ARG_MANY) {
		tg_cli_usage_error(g->prog, g->what, "option '--%s' is given twice",
		                   g->opts[idx].name);
		goto out;
	}
	g->seen |= UINT32_C(1) << idx;
	*arg = optarg;
	r = g->opts[idx].id;
out:
	return r;
}
