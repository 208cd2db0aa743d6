/*
 * test_ca_revoked.c — the revoked.txt parser (tg_ca_revoked_parse,
 * host/ca/store.c): good lists with their canonical serials and times, and
 * one table row per way a line can be wrong, each refused with its line
 * number and reason. Inputs are exact-size heap copies, so AddressSanitizer
 * sees any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_ca_store.h"
#include "tg_test.h"

static int
parse(const char *text, size_t n, struct tg_ca_revoked **list, size_t *count, struct tg_error *err)
{
	char *copy = (char *)tg_test_memdup(text, n);
	int r;

	tg_error_clear(err);
	*list = NULL;
	*count = 0;
	r = tg_ca_revoked_parse(copy, n, "revoked.txt", list, count, err);
	free(copy);
	return r;
}

static void
test_good(void **state)
{
	static const char text[] = "0A 1700000000\n"
	                           "deadbeef 0\n"
	                           "0001 253402300799\n"
	                           "4000000000000000000000000000000A 1700000001";
	struct tg_ca_revoked *l = NULL;
	struct tg_error err;
	size_t n = 0;

	(void)state;
	assert_int_equal(parse(text, strlen(text), &l, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_string_equal(l[0].serial, "0A");
	assert_int_equal(l[0].when, 1700000000LL);
	assert_int_equal(l[0].line, 1);
	assert_string_equal(l[1].serial, "DEADBEEF");
	assert_int_equal(l[1].when, 0);
	assert_string_equal(l[2].serial, "01");
	assert_int_equal(l[2].when, TG_CA_REVOKED_WHEN_MAX);
	assert_string_equal(l[3].serial, "4000000000000000000000000000000A");
	assert_int_equal(l[3].line, 4);
	/* a line without a reason (written before reasons were recorded) reads
	 * as unspecified */
	assert_int_equal(l[0].reason, TG_CA_REASON_UNSPECIFIED);
	free(l);

	/* reasons, any case, beside old lines */
	static const char reasons[] = "0A 1 keyCompromise\n"
	                              "0B 2\n"
	                              "0C 3 SUPERSEDED\n"
	                              "0D 4 privilegewithdrawn\n"
	                              "0E 5 unspecified";
	assert_int_equal(parse(reasons, strlen(reasons), &l, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(l[0].reason, TG_CA_REASON_KEY_COMPROMISE);
	assert_int_equal(l[1].reason, TG_CA_REASON_UNSPECIFIED);
	assert_int_equal(l[2].reason, TG_CA_REASON_SUPERSEDED);
	assert_int_equal(l[3].reason, TG_CA_REASON_PRIVILEGE_WITHDRAWN);
	assert_int_equal(l[4].reason, TG_CA_REASON_UNSPECIFIED);
	assert_int_equal(l[4].when, 5);

	/* written back: the reason by its RFC 5280 name, none for unspecified */
	char line[TG_CA_SERIAL_HEX_MAX + 64];
	assert_int_equal(tg_ca_revoked_format(&l[0], line, sizeof(line)),
	                 strlen("0A 1 keyCompromise\n"));
	assert_string_equal(line, "0A 1 keyCompromise\n");
	assert_int_equal(tg_ca_revoked_format(&l[4], line, sizeof(line)), strlen("0E 5\n"));
	assert_string_equal(line, "0E 5\n");
	assert_int_equal(tg_ca_revoked_format(&l[0], line, 5), 0); /* does not fit */
	free(l);

	/* empty text: an empty list */
	assert_int_equal(parse("", 0, &l, &n, &err), 0);
	assert_int_equal(n, 0);
	free(l);
}

static const struct bad {
	const char *name, *text;
	size_t len; /* 0: strlen(text) */
	const char *want;
} bad[] = {
    {"empty line", "0A 1\n\n0B 2\n", 0, "revoked.txt line 2: no serial number"},
    {"blank last line", "0A 1\n\n", 0, "revoked.txt line 2: no serial number"},
    {"no time", "0A\n", 0, "line 1: the serial number must be followed by one space"},
    {"empty time", "0A \n", 0, "line 1: the serial number must be followed by one space"},
    {"two spaces", "0A  1\n", 0, "line 1: the revocation time must be decimal"},
    {"tab", "0A\t1\n", 0, "line 1: the serial number must be followed by one space"},
    {"negative time", "0A -1\n", 0, "line 1: the revocation time must be decimal"},
    {"trailing field", "0A 1 x\n", 0, "line 1: the reason after the time must be one of"},
    {"reason not accepted", "0A 1 certificateHold\n", 0,
     "line 1: the reason after the time must be one of unspecified, keyCompromise"},
    {"reason by number", "0A 1 1\n", 0, "line 1: the reason after the time must be one of"},
    {"empty reason", "0A 1 \n", 0, "line 1: the reason after the time must be one of"},
    {"reason, then more", "0A 1 superseded x\n", 0,
     "line 1: the reason after the time must be one of"},
    {"two spaces before reason", "0A 1  superseded\n", 0,
     "line 1: the reason after the time must be one of"},
    {"reason, CRLF", "0A 1 superseded\r\n", 0, "line 1: the reason after the time must be one of"},
    {"huge time, then junk", "0A 99999999999999999999x\n", 0,
     "line 1: the revocation time is after"},
    {"CRLF", "0A 1\r\n", 0, "line 1: the revocation time must be decimal"},
    {"time after 9999", "0A 253402300800\n", 0, "line 1: the revocation time is after"},
    {"huge time", "0A 99999999999999999999999\n", 0, "line 1: the revocation time is after"},
    {"0x prefix", "0x0A 1\n", 0, "line 1: the serial number must be followed"},
    {"colons", "0A:0B 1\n", 0, "line 1: the serial number must be followed"},
    {"leading space", " 0A 1\n", 0, "line 1: no serial number"},
    {"not hex", "0G 1\n", 0, "line 1: the serial number must be followed"},
    {"NUL in line", "0A 1\0", 5, "line 1: the revocation time must be decimal"},
    {"serial of 81 digits",
     "123456789012345678901234567890123456789012345678901234567890123456789012345678901 1\n", 0,
     "line 1: serial number longer than 80 hex digits"},
    {"duplicate", "0A 1\n0B 2\n000a 3\n", 0,
     "revoked.txt line 3: serial 0A is already listed on line 1"},
};

static void
test_bad(void **state)
{
	struct tg_ca_revoked *l = NULL;
	struct tg_error err;
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].text);

		if (parse(bad[i].text, len, &l, &n, &err) != TG_ERR_FORMAT)
			fail_msg("%s: accepted", bad[i].name);
		if (strstr(err.msg, bad[i].want) == NULL)
			fail_msg("%s: want \"%s\" in \"%s\"", bad[i].name, bad[i].want, err.msg);
		if (strstr(err.msg, "'SERIALHEX UNIXTIME [REASON]'") == NULL &&
		    strstr(err.msg, "already listed") == NULL)
			fail_msg("%s: the format is not named in \"%s\"", bad[i].name, err.msg);
		assert_null(l);
		assert_int_equal(n, 0);
	}
}

/* Every accepted name parses to its RFC 5280 code and back; refused
 * names (hold, CA compromise, ...) do not parse. */
static void
test_reasons(void **state)
{
	static const struct {
		const char *name;
		int code;
	} ok[] = {{"unspecified", 0},  {"keyCompromise", 1},        {"affiliationChanged", 3},
	          {"superseded", 4},   {"cessationOfOperation", 5}, {"privilegeWithdrawn", 9},
	          {"KEYCOMPROMISE", 1}};
	static const char *const refused[] = {"certificateHold",
	                                      "removeFromCRL",
	                                      "cACompromise",
	                                      "aACompromise",
	                                      "keyCompromis",
	                                      "",
	                                      "1"};
	enum tg_ca_reason r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(tg_ca_reason_parse(ok[i].name, strlen(ok[i].name), &r), 0);
		assert_int_equal((int)r, ok[i].code);
		if (i < 6)
			assert_string_equal(tg_ca_reason_name(r), ok[i].name);
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_int_equal(tg_ca_reason_parse(refused[i], strlen(refused[i]), &r),
		                 TG_ERR_INVALID_ARG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
