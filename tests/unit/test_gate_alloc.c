/*
 * test_gate_alloc.c — the allocator's settings for the gate's and the
 * agent's loops (host/gate/alloc.c): GLIBC_TUNABLES wins when it names a
 * threshold; otherwise blocks below 1 MiB come from the heap (not a
 * mmap each) and freed memory at the top of the heap stays there (not
 * handed back to the kernel at once) — checked with mallinfo2 before and
 * after, so that a tune that did nothing fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tg_gate_alloc.h"

#define NBLK 64
#define BLK  (64 * 1024)

/* The sanitizers replace malloc: mallopt and mallinfo2 mean nothing there. */
#if defined(__SANITIZE_ADDRESS__)
#define TG_OWN_MALLOC 1
#else
#define TG_OWN_MALLOC 0
#endif

static void
test_tunables_win(void **state)
{
	const char *why = "unset";

	(void)state;
	setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072", 1);
	assert_int_equal(tg_gate_alloc_tune(&why), 0);
	assert_non_null(why);
	assert_non_null(strstr(why, "GLIBC_TUNABLES"));
	setenv("GLIBC_TUNABLES", "glibc.malloc.check=0:glibc.malloc.mmap_threshold=65536", 1);
	assert_int_equal(tg_gate_alloc_tune(&why), 0);
	assert_non_null(strstr(why, "GLIBC_TUNABLES"));
	unsetenv("GLIBC_TUNABLES");
}

/* Frees at the top of the heap: how many bytes stay releasable there. */
static size_t
kept_after_free(void)
{
	void *p[NBLK];
	size_t i;

	for (i = 0; i < NBLK; i++) {
		p[i] = malloc(BLK);
		assert_non_null(p[i]);
		memset(p[i], 0x5a, BLK);
	}
	for (i = NBLK; i > 0; i--)
		free(p[i - 1]);
	return mallinfo2().keepcost;
}

/* 1 when a block of n bytes was mapped on its own. */
static int
mapped_alone(size_t n)
{
	size_t before = mallinfo2().hblks, during;
	void *p = malloc(n);

	assert_non_null(p);
	memset(p, 0x5a, n);
	during = mallinfo2().hblks;
	free(p);
	return during > before;
}

static void
test_thresholds_take_effect(void **state)
{
	const char *why = "unset";
	pid_t pid;
	int st;

	(void)state;
	unsetenv("GLIBC_TUNABLES");
	if (!TG_OWN_MALLOC) {
		/* glibc's defaults first, in a child (freeing a mapped block
		 * raises glibc's thresholds for the rest of the process): the
		 * checks below can fail */
		if ((pid = fork()) == 0)
			_exit(mapped_alone(512 * 1024) && kept_after_free() < (size_t)NBLK * BLK / 2
			          ? 0
			          : 1);
		assert_true(pid > 0);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	} else {
		assert_int_equal(tg_gate_alloc_tune(&why), 0);
		assert_non_null(why);
		printf("SKIP: under a sanitizer's allocator (%s)\n", why);
		skip();
	}
	assert_int_equal(tg_gate_alloc_tune(&why), 1);
	assert_null(why);
	assert_false(mapped_alone(512 * 1024));
	assert_true(mapped_alone(2 * TG_GATE_ALLOC_MMAP));
	assert_true(kept_after_free() >= (size_t)NBLK * BLK / 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tunables_win),
	    cmocka_unit_test(test_thresholds_take_effect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
