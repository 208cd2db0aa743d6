/*
 * test_enroll_reader.c — reader selection of host/enroll/piv_client.c over PC/SC
 * multi-strings (exact name, unique substring, ambiguous, missing, empty
 * list, list without its terminating NUL), each list copied to an
 * exact-size heap buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_pivc.h"
#include "tg_test.h"

/* "A\0B\0\0" style lists: the bytes and their count. */
#define L2 "Virtual PCD 00 00\0Virtual PCD 00 01\0"
#define L3 "Yubico YubiKey OTP+FIDO+CCID 00 00\0Virtual PCD 00 00\0Virtual PCD 00 01\0"

static void
test_pick(void **state)
{
	static const struct {
		const char *list;
		size_t n;
		const char *want;
		int rc;
		const char *got; /* the reader, or a part of the message */
	} t[] = {
	    {L2, sizeof(L2), "Virtual PCD 00 00", 0, "Virtual PCD 00 00"},
	    {L2, sizeof(L2), "PCD 00 01", 0, "Virtual PCD 00 01"},
	    {L3, sizeof(L3), "Yubi", 0, "Yubico YubiKey OTP+FIDO+CCID 00 00"},
	    {L2, sizeof(L2), "Virtual", TG_ERR_INVALID_ARG, "2 readers match 'Virtual'"},
	    {L3, sizeof(L3), "00 00", TG_ERR_INVALID_ARG, "give --reader with the full name"},
	    {L2, sizeof(L2), "Nope", TG_ERR_NOT_FOUND,
	     "readers present: 'Virtual PCD 00 00', 'Virtual PCD 00 01'"},
	    {"\0", 1, "Nope", TG_ERR_NOT_FOUND, "readers present: none"},
	    {"", 0, "Nope", TG_ERR_NOT_FOUND, "readers present: none"},
	    /* no terminating NUL: the last name runs to the end */
	    {"Virtual PCD 00 00", 17, "Virtual", TG_ERR_FORMAT, "not NUL-terminated"},
	    /* an exact name wins over substrings of others */
	    {"Reader 1\0Reader 10\0", sizeof("Reader 1\0Reader 10\0"), "Reader 1", 0, "Reader 1"},
	};
	struct tg_error err;
	char out[256];
	uint8_t *p;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = tg_test_memdup(t[i].list, t[i].n);
		tg_error_clear(&err);
		out[0] = '\0';
		rc = tg_pivc_reader_pick(p, t[i].n, t[i].want, out, sizeof(out), &err);
		print_message("pick '%s': %d %s%s\n", t[i].want, rc, out, err.msg);
		assert_int_equal(rc, t[i].rc);
		if (rc == 0)
			assert_string_equal(out, t[i].got);
		else
			assert_non_null(strstr(err.msg, t[i].got));
		free(p);
	}
}

static void
test_pick_small_out(void **state)
{
	struct tg_error err;
	char out[4];

	(void)state;
	assert_int_equal(tg_pivc_reader_pick((const uint8_t *)L2, sizeof(L2), "PCD 00 00", out,
	                                     sizeof(out), &err),
	                 TG_ERR_NO_SPACE);
}

/* A reader name longer than the client keeps: refused when the search
 * reaches it, left out of the list of readers present otherwise. */
static void
test_pick_long_name(void **state)
{
	struct tg_error err;
	char out[256];
	uint8_t list[320];
	size_t n;

	(void)state;
	memset(list, 'A', sizeof(list));
	list[300] = '\0';
	list[301] = '\0';
	n = 302;
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_reader_pick(list, n, "Nope", out, sizeof(out), &err),
	                 TG_ERR_FORMAT);
	assert_string_equal(err.msg, "a reader name from pcscd is too long");
	/* "Reader 1" found first: the long name after it ends the list shown */
	memcpy(list, "Reader 1\0", 9);
	memset(list + 9, 'B', 300);
	list[309] = '\0';
	list[310] = '\0';
	n = 311;
	out[0] = '\0';
	assert_int_equal(tg_pivc_reader_pick(list, n, "Reader 1", out, sizeof(out), &err), 0);
	assert_string_equal(out, "Reader 1");
}

/* No pcscd: tg_pivc_open fails naming the reader asked for and the fix,
 * and hands out nothing. */
static void
test_open_no_pcscd(void **state)
{
	struct tg_pivc *p = NULL;
	struct tg_error err;

	(void)state;
	/* pcsc-lite reads the socket name once per process: before any use */
	setenv("PCSCLITE_CSOCK_NAME", "/nonexistent/tokengate-test/pcscd.comm", 1);
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_open("Virtual PCD", &p, &err), TG_ERR_PCSC);
	assert_null(p);
	assert_non_null(strstr(err.msg, "no reader matches 'Virtual PCD': pcscd is not running "
	                                "or sees no reader (libykpiv: "));
	assert_non_null(strstr(err.msg, "start it (systemctl start pcscd.socket) and plug in "
	                                "the token"));
	tg_pivc_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pick),
	    cmocka_unit_test(test_pick_small_out),
	    cmocka_unit_test(test_pick_long_name),
	    cmocka_unit_test(test_open_no_pcscd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
