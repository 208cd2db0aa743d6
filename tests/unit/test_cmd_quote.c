/*
 * test_cmd_quote.c — tg_cmd_sh_quote (host/cmd.c), the one quoting of user
 * values in the commands tokengate prints: each value, quoted, goes through
 * a real `sh -c "printf '%s' VALUE"` and must come back byte for byte
 * (spaces, quotes, $(...), backticks, newlines, globs), with no command
 * substitution run.
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

#include "tg_cmd.h"
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
		assert_non_null(q = tg_cmd_sh_quote(values[i]));
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
	assert_non_null(q = tg_cmd_sh_quote("it's"));
	assert_string_equal(q, "'it'\\''s'");
	free(q);
	assert_non_null(q = tg_cmd_sh_quote(""));
	assert_string_equal(q, "''");
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_known),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
