/* cmd.c — helpers shared by the tokengate subcommands (tg_cmd.h). */
#include "tg_cmd.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
tg_cmd_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
		if (strcmp(argv[i], "--") == 0)
			break;
	}
	return 0;
}

int
tg_cmd_fail(const char *what, int code, const struct tg_error *err)
{
	fprintf(stderr, "tokengate %s: %s\n", what, tg_error_msg(err, code));
	return TG_EXIT_FAIL;
}

int
tg_cmd_usage_error(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tokengate %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'tokengate %s --help')\n", what);
	return TG_EXIT_USAGE;
}

int
tg_cmd_bad_option(const char *what, int argc, char **argv)
{
	const char *arg = "?";

	if (optind > 0 && optind <= argc)
		arg = argv[optind - 1];
	return tg_cmd_usage_error(what, "unknown or incomplete option '%s'", arg);
}

char *
tg_cmd_sh_quote(const char *s)
{
	size_t n = 2, i, o = 0;
	char *q;

	/* POSIX sh 2.2.2: nothing is special inside single quotes, so each
	 * embedded ' becomes '\'' (close, escaped quote, reopen) */
	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\'' ? 4 : 1;
	if ((q = malloc(n + 1)) == NULL)
		return NULL;
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
	return q;
}
