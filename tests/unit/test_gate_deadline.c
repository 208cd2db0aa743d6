/*
 * test_gate_deadline.c — deadlines and a connect limit's shares
 * (host/gate/deadline.c): the share is the time left over the addresses
 * left, never zero, and a zeroed or past deadline has passed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tg_gate_deadline.h"
#include "tg_test.h"

static long long
us(const struct timeval *tv)
{
	return (long long)tv->tv_sec * 1000000LL + tv->tv_usec;
}

static void
test_share(void **state)
{
	struct timespec d;
	struct timeval tv;

	(void)state;
	tg_gate_deadline_set(&d, 10000);
	assert_false(tg_gate_deadline_passed(&d));
	/* 10 s over 4: 2.5 s, less what the calls themselves took */
	tg_gate_deadline_share(&d, 4, &tv);
	assert_true(us(&tv) <= 2500000 && us(&tv) > 2000000);
	assert_true(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	tg_gate_deadline_share(&d, 1, &tv);
	assert_true(us(&tv) <= 10000000 && us(&tv) > 9000000);
	tg_gate_deadline_share(&d, 0, &tv); /* as 1 */
	assert_true(us(&tv) <= 10000000 && us(&tv) > 9000000);
}

static void
test_passed(void **state)
{
	struct timespec d;
	struct timeval tv;

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_true(tg_gate_deadline_passed(&d));
	tg_gate_deadline_share(&d, 3, &tv);
	assert_int_equal(us(&tv), 1); /* never a zero (or negative) timer */
	tg_gate_deadline_set(&d, 0);
	assert_true(tg_gate_deadline_passed(&d));
	/* carries into the seconds */
	tg_gate_deadline_set(&d, 1999);
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
	assert_false(tg_gate_deadline_passed(&d));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_passed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
