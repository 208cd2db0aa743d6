/*
 * test_doctor_report.c — the report of `tokengate doctor`
 * (host/doctor/report.c): cleaning of device strings, problems, arrays.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"
#include "tg_test.h"

struct clean_case {
	const char *in; /* bytes, not necessarily NUL-terminated */
	size_t n;
	const char *out;
};

static const struct clean_case clean_cases[] = {
    {"SoftHSM project                 ", 32, "SoftHSM project"}, /* PKCS#11 padding */
    {"tg-test", 7, "tg-test"},
    {"abc\0def", 7, "abc"},           /* stops at NUL */
    {"a\x1b[31mred", 9, "a?[31mred"}, /* no terminal escapes */
    {"caf\xc3\xa9 ", 6, "caf??"},     /* non-ASCII replaced */
    {"    ", 4, ""},
    {"", 0, ""},
    {"line\nbreak", 10, "line?break"},
};

static void
test_str_clean(void **state)
{
	unsigned char *p;
	char *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(clean_cases) / sizeof(clean_cases[0]); i++) {
		p = tg_test_memdup(clean_cases[i].in, clean_cases[i].n);
		s = tg_doctor_str_clean((const char *)p, clean_cases[i].n);
		assert_non_null(s);
		assert_string_equal(s, clean_cases[i].out);
		free(s);
		free(p);
	}
}

static void
test_problems(void **state)
{
	struct tg_doctor_report *r = NULL;
	size_t i;

	(void)state;
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(r->n_problems, 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(tg_doctor_problem_add(r, "insert the token",
		                                       "reader '%s %zu' has no card", "Virtual PCD",
		                                       i),
		                 0);
	assert_int_equal(r->n_problems, 20);
	assert_string_equal(r->problems[0].what, "reader 'Virtual PCD 0' has no card");
	assert_string_equal(r->problems[19].what, "reader 'Virtual PCD 19' has no card");
	assert_string_equal(r->problems[19].fix, "insert the token");
	tg_doctor_report_free(r);
	tg_doctor_report_free(NULL);
}

static void
test_array_add(void **state)
{
	struct tg_doctor_reader *arr = NULL, *e = NULL;
	size_t n = 0, i;

	(void)state;
	for (i = 0; i < 5; i++) {
		assert_int_equal(tg_doctor_array_add((void **)&arr, &n, sizeof(*arr), (void **)&e),
		                 0);
		assert_ptr_equal(e, &arr[i]);
		assert_null(e->name); /* zeroed */
		assert_int_equal(e->atr_len, 0);
	}
	assert_int_equal(n, 5);
	/* An element size that would overflow is refused, nothing changes. */
	assert_int_not_equal(tg_doctor_array_add((void **)&arr, &n, (size_t)-1, (void **)&e), 0);
	assert_int_equal(n, 5);
	free(arr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_str_clean),
	    cmocka_unit_test(test_problems),
	    cmocka_unit_test(test_array_add),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
