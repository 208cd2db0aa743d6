/*
 * test_enroll_cli.c — the command line of `tokengate enroll`
 * (host/enroll/enroll.c, tg_cmd_enroll): every option value and every
 * combination of options it refuses, each with exit status 2 and its
 * one-line message on stderr, before any token or CA is touched; --help.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_cmd.h"
#include "tg_test.h"

#define MAX_ARGS 16

struct cli_case {
	const char *args; /* space-separated, after "enroll" */
	int rc;
	const char *err; /* part of stderr */
};

static const struct cli_case cases[] = {
    {"--reader R --slot 82 --id spiffe://e.org/a --ca-dir /x", 2,
     "--slot '82': want 9a, 9c, 9d or 9e"},
    {"--reader R --slot f9 --id spiffe://e.org/a --ca-dir /x", 2,
     "--slot 'f9': want 9a, 9c, 9d or 9e"},
    {"--reader R --slot 9a --algorithm rsa-1024 --id spiffe://e.org/a --ca-dir /x", 2,
     "--algorithm 'rsa-1024': want ec-p256, ec-p384 or rsa-2048"},
    {"--reader R --slot 9a --algorithm rsa-3072 --id spiffe://e.org/a --ca-dir /x", 2,
     "--algorithm 'rsa-3072': want ec-p256, ec-p384 or rsa-2048"},
    {"--reader R --slot 9a --pin-policy sometimes --id spiffe://e.org/a --ca-dir /x", 2,
     "--pin-policy 'sometimes': want once, always or never"},
    {"--reader R --slot 9a --touch-policy maybe --id spiffe://e.org/a --ca-dir /x", 2,
     "--touch-policy 'maybe': want never, always or cached"},
    {"--reader R --slot 9a --validity soon --id spiffe://e.org/a --ca-dir /x", 2,
     "--validity 'soon' is not a duration like 24h or 7d"},
    {"--slot 9a --id spiffe://e.org/a --ca-dir /x", 2,
     "give --reader (a PIV token) or --key (an HSM key)"},
    {"--reader R --key pkcs11:token=t --slot 9a --id spiffe://e.org/a --ca-dir /x", 2,
     "give --reader (a PIV token) or --key (an HSM key)"},
    {"--reader R --id spiffe://e.org/a --ca-dir /x", 2, "--reader needs --slot"},
    {"--reader R --slot 9a --install-cert c.pem --ca-dir /x", 2,
     "--install-cert goes with --reader and --slot only"},
    {"--reader R --slot 9a --install-cert c.pem --out-dir /x", 2,
     "--install-cert goes with --reader and --slot only"},
    {"--reader R --slot 9a --ca-dir /x", 2, "--id is required"},
    {"--reader R --slot 9a --id spiffe://e.org/a", 2,
     "give --ca-dir DIR (local CA) or --out-dir DIR (offline CA)"},
    {"--reader R --slot 9a --id spiffe://e.org/a --ca-dir /x --out-dir /y", 2,
     "give --ca-dir DIR (local CA) or --out-dir DIR (offline CA)"},
    {"--reader R --slot 9a --id spiffe://e.org/a --out-dir /y --cert-out c.pem", 2,
     "--cert-out goes with --ca-dir"},
    {"--key pkcs11:token=t --existing-key --id spiffe://e.org/a --out-dir /y", 2,
     "--existing-key is for PIV slots; an HSM key is used when it exists"},
    {"--reader R --slot 9a --existing-key --force --id spiffe://e.org/a --out-dir /y", 2,
     "--force replaces the slot's key with a new one; --existing-key keeps it"},
    {"--reader R --slot 9a --pin 123456 --id spiffe://e.org/a --out-dir /y", 2,
     "a PIN is never taken on the command line"},
    {"--reader R --slot 9a --id not-a-uri --out-dir /y", 2, "tokengate enroll: "},
    {"--bogus", 2, "unknown option '--bogus'"},
};

/* Runs tg_cmd_enroll on "enroll ARGS"; stderr into *err_out (heap). */
static int
run(const char *args, char **err_out)
{
	char *copy = strdup(args), *argv[MAX_ARGS + 2], *tok, *save = NULL;
	char path[] = "/tmp/tg-enroll-cli.XXXXXX";
	int argc = 0, saved, fd, rc;
	FILE *f;
	long n;

	assert_non_null(copy);
	argv[argc++] = "enroll";
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		assert_true(argc < MAX_ARGS);
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	assert_true((fd = mkstemp(path)) >= 0);
	fflush(stderr);
	assert_true((saved = dup(STDERR_FILENO)) >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	rc = tg_cmd_enroll(argc, argv);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	assert_non_null(f = fdopen(fd, "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	assert_non_null(*err_out = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(*err_out, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	unlink(path);
	free(copy);
	return rc;
}

static void
test_refusals(void **state)
{
	const char *nl;
	char *err;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = run(cases[i].args, &err);
		if (rc != cases[i].rc || strstr(err, cases[i].err) == NULL)
			fail_msg("enroll %s: exit %d, stderr \"%s\"; want %d and \"%s\"",
			         cases[i].args, rc, err, cases[i].rc, cases[i].err);
		/* one line */
		nl = strchr(err, '\n');
		assert_non_null(nl);
		assert_string_equal(nl + 1, "");
		free(err);
	}
}

static void
test_help(void **state)
{
	char *err;

	(void)state;
	assert_int_equal(run("--help", &err), 0);
	assert_string_equal(err, "");
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
