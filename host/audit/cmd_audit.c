/* cmd_audit.c — `tokengate audit`: checks the gate's audit log. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "tg_audit_verify.h"
#include "tg_cmd.h"

static const char verify_usage[] =
    "usage: tokengate audit verify [--genesis] [--json] FILE...\n"
    "\n"
    "Checks the hash chain of the gate's audit log across FILEs, oldest\n"
    "first (a rotated set: e.g. audit.log.2 audit.log.1 audit.log): every\n"
    "line a JSON object whose \"prev\" is the SHA-256 of the line before it.\n"
    "The first broken line is named on stderr as FILE:LINE: what is wrong\n"
    "(not JSON, missing prev, prev mismatch, a torn last line).\n"
    "On success prints the lines checked and the head (the SHA-256 of the\n"
    "last line): compare it with a copy kept elsewhere, since lines cut off\n"
    "at the end of the newest file leave no break behind.\n"
    "\n"
    "  --genesis  the first line must start the chain (prev = 64 zeros):\n"
    "             no earlier line or file is missing\n"
    "  --json     print the result as one JSON object: intact, files, lines,\n"
    "             first_prev, genesis, head, and broken (null, or file,\n"
    "             line, flaw, detail)\n"
    "Exit codes: 0 intact, 1 broken or unreadable (the reason on stderr),\n"
    "2 usage.\n";

enum { O_JSON = 1, O_GENESIS };

static const struct tg_cli_opt verify_opts[] = {
    {"json", TG_CLI_ARG_NONE, O_JSON},
    {"genesis", TG_CLI_ARG_NONE, O_GENESIS},
    {NULL, 0, 0},
};

/* The --json result on stdout. 0, or TG_ERR_ALLOC / TG_ERR_IO. */
static int
print_json(const struct tg_audit_report *rep, char **paths)
{
	json_t *o, *b = json_null();
	int r = TG_ERR_ALLOC;

	if (rep->flaw != TG_AUDIT_INTACT)
		b = json_pack("{s:s, s:I, s:s, s:s}", "file", paths[rep->file], "line",
		              (json_int_t)rep->line, "flaw", tg_audit_flaw_name(rep->flaw),
		              "detail", rep->detail);
	o = json_pack("{s:b, s:I, s:I, s:s, s:b, s:s, s:o}", "intact", rep->flaw == TG_AUDIT_INTACT,
	              "files", (json_int_t)rep->files, "lines", (json_int_t)rep->lines,
	              "first_prev", rep->first_prev, "genesis",
	              strcmp(rep->first_prev, TG_AUDIT_GENESIS) == 0, "head", rep->head, "broken",
	              b);
	if (o != NULL)
		r = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 &&
		            fputc('\n', stdout) != EOF
		        ? 0
		        : TG_ERR_IO;
	json_decref(o);
	return r;
}

static int
run_verify(int argc, char **argv)
{
	struct tg_cli_getopt g;
	struct tg_audit_report rep;
	struct tg_error err;
	const char *v;
	unsigned flags = 0;
	int ch = TG_CLI_BAD, json = 0, rc = TG_EXIT_USAGE, r;

	tg_error_clear(&err);
	if (tg_cli_getopt_init(&g, TG_CMD_PROG, "audit verify", verify_opts, NULL, 1, argc, argv) !=
	    0) {
		rc = tg_cmd_fail("audit verify", TG_ERR_INTERNAL, NULL);
		goto out;
	}
	while ((ch = tg_cli_next(&g, &v)) > 0) {
		if (ch == O_JSON)
			json = 1;
		else
			flags |= TG_AUDIT_VERIFY_GENESIS;
	}
	if (ch == TG_CLI_HELP) {
		fputs(verify_usage, stdout);
		rc = TG_EXIT_OK;
		goto out;
	}
	if (ch != TG_CLI_END)
		goto out;
	if (g.next >= argc) {
		rc = tg_cmd_usage_error("audit verify", "name at least one audit log FILE");
		goto out;
	}
	r = tg_audit_verify_files((const char *const *)(argv + g.next), (size_t)(argc - g.next),
	                          flags, &rep, &err);
	if (r != 0) {
		rc = tg_cmd_fail("audit verify", r, &err);
		goto out;
	}
	if (json && print_json(&rep, argv + g.next) != 0) {
		rc = tg_cmd_fail("audit verify", TG_ERR_IO, NULL);
		goto out;
	}
	if (rep.flaw != TG_AUDIT_INTACT) {
		fprintf(stderr, "tokengate audit verify: %s:%zu: %s\n",
		        argv[g.next + (int)rep.file], rep.line, rep.detail);
		rc = TG_EXIT_FAIL;
		goto out;
	}
	if (!json)
		printf("intact: %zu lines in %zu files; the chain starts %s; head %s\n", rep.lines,
		       rep.files,
		       rep.lines == 0 ? "nowhere (no lines)"
		       : strcmp(rep.first_prev, TG_AUDIT_GENESIS) == 0
		           ? "at the genesis"
		           : "after a line not given (rotated away?)",
		       rep.lines == 0 ? "none" : rep.head);
	rc = TG_EXIT_OK;
out:
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == TG_EXIT_OK) {
		fprintf(stderr, "tokengate audit verify: cannot write the output: %s\n",
		        strerror(errno));
		rc = TG_EXIT_FAIL;
	}
	return rc;
}

static const struct tg_cli_cmd audit_subs[] = {
    {"verify", "check the audit log's hash chain and name the first broken line", run_verify},
    {NULL, NULL, NULL},
};

static const struct tg_cli_group audit_group = {
    .prog = TG_CMD_PROG,
    .what = "audit",
    .intro = "The gate's audit log: one JSON line per decision, each holding the\n"
             "SHA-256 of the line before it.\n\n",
    .cmds = audit_subs,
};

int
tg_cmd_audit(int argc, char **argv)
{
	return tg_cli_dispatch(&audit_group, argc, argv);
}
