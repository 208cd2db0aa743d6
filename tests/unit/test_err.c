/* test_err.c — tg_err: codes, messages, struct tg_error set and wrap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_err.h"

/* Every code of tg_err.h: each must have its own message. */
static const int all_codes[] = {
    TG_OK,
    TG_ERR_INTERNAL,
    TG_ERR_ALLOC,
    TG_ERR_INVALID_ARG,
    TG_ERR_TRUNCATED,
    TG_ERR_NO_SPACE,
    TG_ERR_FORMAT,
    TG_ERR_TRAILING,
    TG_ERR_NOT_FOUND,
    TG_ERR_IO,
    TG_ERR_CRYPTO,
    TG_ERR_UNSUPPORTED,
    TG_ERR_USAGE,
    TG_ERR_TIMEOUT,
    TG_ERR_CHECKSUM,
    TG_ERR_VERSION,
    TG_ERR_PERMISSION,
    TG_ERR_PIN_INCORRECT,
    TG_ERR_PIN_BLOCKED,
    TG_ERR_AUTH_REQUIRED,
    TG_ERR_TOUCH_REQUIRED,
    TG_ERR_PERSIST,
    TG_ERR_CARD_REMOVED,
    TG_ERR_STATUS_WORD,
    TG_ERR_URI,
    TG_ERR_MODULE,
    TG_ERR_TOKEN_NOT_FOUND,
    TG_ERR_TOKEN_AMBIGUOUS,
    TG_ERR_KEY_NOT_FOUND,
    TG_ERR_KEY_AMBIGUOUS,
    TG_ERR_KEY_EXPORTABLE,
    TG_ERR_CERT_MISMATCH,
    TG_ERR_LOGIN,
    TG_ERR_PIN_LOCKED,
    TG_ERR_PKCS11,
    TG_ERR_PCSC,
    TG_ERR_NO_PIN,
    TG_ERR_ATTESTATION,
    TG_ERR_POLICY,
    TG_ERR_CONFIG,
    TG_ERR_CSR,
    TG_ERR_IDENTITY,
    TG_ERR_REVOKED,
    TG_ERR_TLS,
};

#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void
test_strerror_known(void **state)
{
	const char *unknown = tg_strerror(-12345);
	size_t i, j;

	for (i = 0; i < NCODES; i++) {
		const char *m = tg_strerror(all_codes[i]);

		assert_non_null(m);
		assert_true(strlen(m) > 0);
		if (strcmp(m, unknown) == 0)
			fail_msg("code %d has no message", all_codes[i]);
		for (j = 0; j < i; j++)
			if (strcmp(m, tg_strerror(all_codes[j])) == 0)
				fail_msg("codes %d and %d share \"%s\"", all_codes[i], all_codes[j],
				         m);
	}
}

static const int unknown_codes[] = {1, 42, -17, -19, -100, -1000, INT32_MIN, INT32_MAX};

static void
test_strerror_unknown(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(unknown_codes) / sizeof(unknown_codes[0]); i++)
		assert_string_equal(tg_strerror(unknown_codes[i]), "unknown error");
}

static void
test_error_set_replaces(void **state)
{
	struct tg_error e;

	tg_error_clear(&e);
	assert_int_equal(e.code, 0);
	assert_string_equal(tg_error_msg(&e, TG_ERR_IO), "input/output error");

	assert_int_equal(tg_error_set(&e, TG_ERR_IO, "cannot open '%s'", "/x/state"), TG_ERR_IO);
	assert_int_equal(e.code, TG_ERR_IO);
	assert_string_equal(tg_error_msg(&e, TG_ERR_IO), "cannot open '/x/state'");

	/* set always replaces: the earlier message does not leak into the new one */
	assert_int_equal(tg_error_set(&e, TG_ERR_PERSIST, "saving token %d", 3), TG_ERR_PERSIST);
	assert_int_equal(e.code, TG_ERR_PERSIST);
	assert_string_equal(e.msg, "saving token 3");

	/* err->msg may be an argument */
	tg_error_set(&e, TG_ERR_IO, "again: %s", e.msg);
	assert_string_equal(e.msg, "again: saving token 3");

	tg_error_clear(&e);
	assert_string_equal(e.msg, "");
	tg_error_clear(NULL);
}

static void
test_error_wrap(void **state)
{
	struct tg_error e;

	/* context first, the held cause last; the code is the new one */
	tg_error_clear(&e);
	tg_error_set(&e, TG_ERR_IO, "cannot open '%s'", "/x/state");
	assert_int_equal(tg_error_wrap(&e, TG_ERR_PERSIST, "saving token %d", 3), TG_ERR_PERSIST);
	assert_int_equal(e.code, TG_ERR_PERSIST);
	assert_string_equal(e.msg, "saving token 3: cannot open '/x/state'");
	tg_error_wrap(&e, TG_ERR_CONFIG, "token dir");
	assert_int_equal(e.code, TG_ERR_CONFIG);
	assert_string_equal(e.msg, "token dir: saving token 3: cannot open '/x/state'");

	/* a code without a message: its generic message is the cause */
	tg_error_clear(&e);
	e.code = TG_ERR_ALLOC;
	tg_error_wrap(&e, TG_ERR_CONFIG, "loading the policy");
	assert_int_equal(e.code, TG_ERR_CONFIG);
	assert_string_equal(e.msg, "loading the policy: out of memory");

	/* nothing held: the context alone */
	tg_error_clear(&e);
	tg_error_wrap(&e, TG_ERR_CONFIG, "loading %s", "the policy");
	assert_int_equal(e.code, TG_ERR_CONFIG);
	assert_string_equal(e.msg, "loading the policy");
}

static void
test_error_set_null(void **state)
{
	assert_int_equal(tg_error_set(NULL, TG_ERR_FORMAT, "ignored %s", "x"), TG_ERR_FORMAT);
	assert_int_equal(tg_error_wrap(NULL, TG_ERR_USAGE, "ignored %s", "x"), TG_ERR_USAGE);
	assert_string_equal(tg_error_msg(NULL, TG_ERR_FORMAT), "malformed data");
}

/* Long messages are cut to the buffer, never overflow it. */
static void
test_error_long(void **state)
{
	struct tg_error e;
	char big[3000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tg_error_clear(&e);
	tg_error_set(&e, TG_ERR_CONFIG, "%s", big);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	tg_error_set(&e, TG_ERR_CONFIG, "context");
	assert_string_equal(e.msg, "context");
}

/* A long chain keeps the outermost context whole and cuts the cause short. */
static void
test_error_wrap_long_chain(void **state)
{
	struct tg_error e;
	char big[3000];
	int i;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tg_error_clear(&e);
	tg_error_set(&e, TG_ERR_IO, "%s", big);
	tg_error_wrap(&e, TG_ERR_CONFIG, "context");
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_memory_equal(e.msg, "context: aaa", 12);

	tg_error_clear(&e);
	tg_error_set(&e, TG_ERR_IO, "root cause");
	for (i = 0; i < 200; i++)
		tg_error_wrap(&e, TG_ERR_CONFIG, "level %03d", i);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_memory_equal(e.msg, "level 199: level 198: ", 22);
	assert_null(strstr(e.msg, "root cause"));

	/* a context longer than the buffer is cut, the cause dropped */
	tg_error_set(&e, TG_ERR_IO, "cause");
	tg_error_wrap(&e, TG_ERR_CONFIG, "%s", big);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_null(strchr(e.msg, ':'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strerror_known),        cmocka_unit_test(test_strerror_unknown),
	    cmocka_unit_test(test_error_set_replaces),    cmocka_unit_test(test_error_wrap),
	    cmocka_unit_test(test_error_set_null),        cmocka_unit_test(test_error_long),
	    cmocka_unit_test(test_error_wrap_long_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
