/*
 * test_pin_src.c — PIN sources (token/core/pin_src.c): each kind read at
 * login into a buffer, the one read of a pin-value, and the refusals with
 * their exact messages (a PIN file others can read, an unset variable, no
 * source and no terminal, unsupported specs).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_pin_src.h"
#include "tg_test.h"

static char dir[] = "/tmp/tg_pin_src_XXXXXX";

/* Writes a file of mode `mode` under dir; its path in path. */
static void
file_put(const char *name, const char *text, mode_t mode, char *path, size_t n)
{
	FILE *f;

	snprintf(path, n, "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int
setup(void **state)
{
	(void)state;
	unsetenv("TOKENGATE_PIN");
	/* stdin is no terminal here, whatever runs the test */
	if (freopen("/dev/null", "r", stdin) == NULL)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Reads src, expecting PIN want from `from`. */
static void
read_ok(struct tg_pin_src *src, const char *want, const char *from)
{
	struct tg_pin pin;
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_pin_src_read(src, "token 't'", 0, &pin, &err) != 0)
		fail_msg("read: %s", err.msg);
	assert_string_equal(pin.v, want);
	assert_int_equal(pin.len, strlen(want));
	assert_string_equal(pin.from, from);
	tg_pin_wipe(&pin);
	assert_int_equal(pin.len, 0);
	assert_int_equal(pin.v[0], 0);
}

/* Reads src, expecting code and exactly the message want. */
static void
read_refused(struct tg_pin_src *src, int code, const char *want)
{
	struct tg_pin pin;
	struct tg_error err;

	tg_error_clear(&err);
	assert_int_equal(tg_pin_src_read(src, "token 't'", TG_PIN_INTERACTIVE, &pin, &err), code);
	assert_string_equal(err.msg, want);
	assert_int_equal(pin.len, 0);
}

static struct tg_pin_src *
src_ok(const char *value, const char *spec)
{
	struct tg_pin_src *s = NULL;
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_pin_src_new(value, spec, &s, &err) != 0)
		fail_msg("tg_pin_src_new(%s): %s", spec ? spec : "(value)", err.msg);
	return s;
}

static void
test_file(void **state)
{
	char path[600], spec[700];
	struct tg_pin_src *s;

	(void)state;
	file_put("pin", "4321\n", 0600, path, sizeof(path));
	snprintf(spec, sizeof(spec), "file:%s", path);
	s = src_ok(NULL, spec);
	assert_int_equal(tg_pin_src_kind(s), TG_PIN_FILE);
	snprintf(spec, sizeof(spec), "pin-source=file:%s", path);
	assert_string_equal(tg_pin_src_describe(s), spec);
	assert_true(tg_pin_src_noninteractive(s));
	read_ok(s, "4321", "pin-source");
	/* read again at each login: a changed file gives the new PIN */
	file_put("pin", "5555\r\n", 0600, path, sizeof(path));
	read_ok(s, "5555", "pin-source");
	tg_pin_src_free(s);

	/* file:///PATH and a bare path */
	snprintf(spec, sizeof(spec), "file://%s", path);
	s = src_ok(NULL, spec);
	read_ok(s, "5555", "pin-source");
	tg_pin_src_free(s);
	s = src_ok(NULL, path);
	read_ok(s, "5555", "pin-source");
	tg_pin_src_free(s);
}

static void
test_file_refused(void **state)
{
	char path[600], want[1400];
	struct tg_pin_src *s;
	char big[TG_PIN_MAX + 3];

	(void)state;
	/* readable by others: refused like an SSH private key */
	file_put("open", "1234\n", 0644, path, sizeof(path));
	s = src_ok(NULL, path);
	snprintf(want, sizeof(want),
	         "PIN file '%s' is readable by others (mode 0644); run 'chmod 600 %s'", path, path);
	read_refused(s, TG_ERR_PERMISSION, want);
	tg_pin_src_free(s);

	/* missing */
	snprintf(path, sizeof(path), "%s/nope", dir);
	s = src_ok(NULL, path);
	snprintf(want, sizeof(want), "PIN file '%s' does not exist; fix pin-source=", path);
	read_refused(s, TG_ERR_IO, want);
	tg_pin_src_free(s);

	/* longer than a PIN */
	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	file_put("big", big, 0600, path, sizeof(path));
	s = src_ok(NULL, path);
	snprintf(want, sizeof(want),
	         "PIN file '%s' is longer than 256 bytes; it must hold the PIN only", path);
	read_refused(s, TG_ERR_IO, want);
	tg_pin_src_free(s);
}

static void
test_env(void **state)
{
	struct tg_pin_src *s;

	(void)state;
	s = src_ok(NULL, "env:TG_TEST_PIN_VAR");
	assert_int_equal(tg_pin_src_kind(s), TG_PIN_ENV);
	assert_string_equal(tg_pin_src_describe(s), "pin-source=env:TG_TEST_PIN_VAR");
	setenv("TG_TEST_PIN_VAR", "9999", 1);
	read_ok(s, "9999", "pin-source");
	{
		char big[TG_PIN_MAX + 2];

		memset(big, '8', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		setenv("TG_TEST_PIN_VAR", big, 1);
		read_refused(s, TG_ERR_IO,
		             "environment variable 'TG_TEST_PIN_VAR' is longer than 256 bytes; it "
		             "must hold the PIN only");
	}
	unsetenv("TG_TEST_PIN_VAR");
	read_refused(s, TG_ERR_IO,
	             "pin-source 'env:TG_TEST_PIN_VAR': environment variable 'TG_TEST_PIN_VAR' "
	             "is not set");
	tg_pin_src_free(s);
}

/* The URI's pin-value serves reads until its owner spends it; a copy
 * never holds it. */
static void
test_value_once(void **state)
{
	struct tg_pin_src *s, *d = NULL;

	(void)state;
	s = src_ok("2222", "env:IGNORED");
	assert_int_equal(tg_pin_src_kind(s), TG_PIN_VALUE);
	assert_string_equal(tg_pin_src_describe(s), "pin-value");
	assert_int_equal(tg_pin_src_dup(s, &d), 0);
	assert_false(tg_pin_src_noninteractive(d));
	assert_true(tg_pin_src_noninteractive(s));
	read_ok(s, "2222", "pin-value");
	read_ok(s, "2222", "pin-value"); /* e.g. the login, then a proof */
	tg_pin_src_spend(s);
	assert_false(tg_pin_src_noninteractive(s));
	read_refused(s, TG_ERR_NO_PIN,
	             "token 't' needs the PIN again, and a pin-value given in the URI serves only "
	             "the lookup it came with; give the PIN with pin-source=file:PATH (or "
	             "env:NAME) or TOKENGATE_PIN");
	read_refused(d, TG_ERR_NO_PIN,
	             "token 't' needs the PIN again, and a pin-value given in the URI serves only "
	             "the lookup it came with; give the PIN with pin-source=file:PATH (or "
	             "env:NAME) or TOKENGATE_PIN");
	tg_pin_src_free(s);
	tg_pin_src_free(d);
	/* other sources are not spent */
	s = src_ok(NULL, "env:TG_TEST_PIN_VAR");
	tg_pin_src_spend(s);
	assert_true(tg_pin_src_noninteractive(s));
	tg_pin_src_free(s);
}

static void
test_default(void **state)
{
	struct tg_pin_src *s;

	(void)state;
	s = src_ok(NULL, NULL);
	assert_int_equal(tg_pin_src_kind(s), TG_PIN_DEFAULT);
	assert_false(tg_pin_src_noninteractive(s));
	setenv("TOKENGATE_PIN", "1111", 1);
	assert_true(tg_pin_src_noninteractive(s));
	read_ok(s, "1111", "TOKENGATE_PIN");
	unsetenv("TOKENGATE_PIN");
	/* no source, and stdin (/dev/null) is no terminal: no prompt */
	read_refused(s, TG_ERR_NO_PIN,
	             "token 't' needs a PIN and none is available: add pin-source=file:PATH (or "
	             "env:NAME) to the URI, set TOKENGATE_PIN, or run on a terminal");
	tg_pin_src_free(s);
}

static void
test_bad_specs(void **state)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
	    {"http://x", "pin-source 'http://x' is not supported; use file:PATH or env:NAME"},
	    {"env:", "pin-source 'env:' names no environment variable; use env:NAME"},
	    {"file:", "pin-source 'file:' names no file; use file:PATH"},
	};
	struct tg_pin_src *s = NULL;
	struct tg_error err;
	char big[TG_PIN_MAX + 2];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tg_error_clear(&err);
		assert_int_equal(tg_pin_src_new(NULL, bad[i].spec, &s, &err), TG_ERR_INVALID_ARG);
		assert_null(s);
		assert_string_equal(err.msg, bad[i].msg);
	}
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tg_error_clear(&err);
	assert_int_equal(tg_pin_src_new(big, NULL, &s, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "pin-value is longer than 256 bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file),    cmocka_unit_test(test_file_refused),
	    cmocka_unit_test(test_env),     cmocka_unit_test(test_value_once),
	    cmocka_unit_test(test_default), cmocka_unit_test(test_bad_specs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
