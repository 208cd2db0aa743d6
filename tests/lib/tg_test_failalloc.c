/*
 * tg_test_failalloc.c — allocation-failure injection (tg_test_failalloc.h).
 * Linked only into tests registered with tg_add_failalloc_test, which
 * wraps malloc, calloc, realloc, strdup and strndup at link time.
 */
#include <errno.h>
#include <execinfo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "tg_test_failalloc.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Bounds of the test program's own code, where the product code linked
 * into it lives (OpenSSL, jansson and libc are shared libraries). */
extern char __executable_start;
extern char etext;

/* Distinct product call sites a run can see. */
#define FA_SITES_MAX 4096
/* Frames searched for the product caller of an allocation. */
#define FA_DEPTH 64

/* The allocation path's own functions live in one section, so their frames
 * are told apart from the product's. */
#define FA_HARNESS __attribute__((section("tg_failalloc_text"), noinline))
extern char __start_tg_failalloc_text;
extern char __stop_tg_failalloc_text;

static int
fa_is_harness(const void *p)
{
	return (const char *)p >= &__start_tg_failalloc_text &&
	       (const char *)p < &__stop_tg_failalloc_text;
}

/* Single-threaded use: the operations under test run on the test thread. */
static int fa_recording;                /* a counted run: collect sites */
static uint64_t fa_sites[FA_SITES_MAX]; /* in the order first seen */
static size_t fa_nsites;
static uint64_t fa_target; /* the site whose first allocation fails */
static unsigned long fa_count;
static int fa_fired;
static int fa_held;
static int fa_inside; /* in backtrace(): its own allocations pass */

/*
 * The call site of this allocation: a hash of the product's frames on the
 * stack (the test program's own code, without the harness), innermost
 * first, so the same malloc reached from two product callers is two sites.
 * The innermost is the product's own malloc, or the OpenSSL or jansson
 * call that allocated. 0 when no product frame is on the stack.
 */
FA_HARNESS
static uint64_t
fa_site(void)
{
	void *frames[FA_DEPTH];
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	int n, i, seen = 0;

	fa_inside = 1;
	n = backtrace(frames, FA_DEPTH);
	fa_inside = 0;
	for (i = 1; i < n; i++) {
		if ((char *)frames[i] >= &__executable_start && (char *)frames[i] < &etext &&
		    !fa_is_harness(frames[i])) {
			h = (h ^ (uint64_t)(uintptr_t)frames[i]) * 1099511628211ULL;
			seen = 1;
		}
	}
	return seen ? h | 1 : 0;
}

/* 1 when this allocation is the one to fail. */
FA_HARNESS
static int
fa_hit(void)
{
	uint64_t site;
	size_t i;
	int hit = 0;

	if (!fa_held && !fa_inside && (fa_recording || fa_target != 0)) {
		fa_count++;
		site = fa_site();
		if (fa_recording && site != 0) {
			for (i = 0; i < fa_nsites && fa_sites[i] != site; i++)
				;
			if (i == fa_nsites && fa_nsites < FA_SITES_MAX)
				fa_sites[fa_nsites++] = site;
		} else if (!fa_fired && site != 0 && site == fa_target) {
			fa_fired = 1;
			errno = ENOMEM;
			hit = 1;
		}
	}
	return hit;
}

FA_HARNESS
void *
__wrap_malloc(size_t n)
{
	return fa_hit() ? NULL : __real_malloc(n);
}

FA_HARNESS
void *
__wrap_calloc(size_t m, size_t n)
{
	return fa_hit() ? NULL : __real_calloc(m, n);
}

FA_HARNESS
void *
__wrap_realloc(void *p, size_t n)
{
	return fa_hit() ? NULL : __real_realloc(p, n);
}

FA_HARNESS
char *
__wrap_strdup(const char *s)
{
	return fa_hit() ? NULL : __real_strdup(s);
}

FA_HARNESS
char *
__wrap_strndup(const char *s, size_t n)
{
	return fa_hit() ? NULL : __real_strndup(s, n);
}

FA_HARNESS
static void *
fa_ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return __wrap_malloc(n);
}

FA_HARNESS
static void *
fa_ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return __wrap_realloc(p, n);
}

static void
fa_ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

FA_HARNESS
static void *
fa_json_malloc(size_t n)
{
	return __wrap_malloc(n);
}

void
tg_failalloc_init(void)
{
	if (CRYPTO_set_mem_functions(fa_ossl_malloc, fa_ossl_realloc, fa_ossl_free) != 1) {
		fprintf(stderr, "tg_failalloc_init: OpenSSL has allocated already; call it "
		                "first in main()\n");
		exit(1);
	}
	json_set_alloc_funcs(fa_json_malloc, free);
}

void
tg_failalloc_hold(int on)
{
	fa_held = on != 0;
}

/* One run of op: recording its sites, or failing the first allocation of
 * site target (0: none). */
FA_HARNESS
static int
fa_run(tg_failalloc_op op, void *ctx, int recording, uint64_t target, struct tg_error *err)
{
	int rc;

	tg_error_clear(err);
	ERR_clear_error();
	fa_count = 0;
	fa_fired = 0;
	fa_held = 0;
	fa_recording = recording;
	fa_target = target;
	rc = op(ctx, err);
	fa_recording = 0;
	fa_target = 0;
	fa_held = 0;
	ERR_clear_error();
	return rc;
}

FA_HARNESS
unsigned long
tg_failalloc_sweep(const char *what, tg_failalloc_op op, void *ctx)
{
	static uint64_t sites[FA_SITES_MAX];
	struct tg_error err;
	unsigned long total, failed = 0, absorbed = 0, missed = 0;
	size_t i, nsites;
	int ref, rc;

	(void)fa_run(op, ctx, 0, 0, &err); /* warm-up */
	fa_nsites = 0;
	ref = fa_run(op, ctx, 1, 0, &err);
	total = fa_count;
	nsites = fa_nsites;
	memcpy(sites, fa_sites, nsites * sizeof(sites[0]));
	if (ref < 0 && err.msg[0] == '\0')
		fail_msg("fail-alloc: %s: the reference run failed (%d) with no message", what,
		         ref);
	for (i = 0; i < nsites; i++) {
		rc = fa_run(op, ctx, 0, sites[i], &err);
		if (!fa_fired) {
			missed++; /* this run took another path */
			continue;
		}
		if (rc == ref) {
			absorbed++;
			continue;
		}
		if (rc >= 0)
			fail_msg(
			    "fail-alloc: %s: an allocation failing at call site %zu turned result "
			    "%d into %d",
			    what, i, ref, rc);
		if (err.msg[0] == '\0')
			fail_msg("fail-alloc: %s: an allocation failing at call site %zu gave %d "
			         "with no "
			         "message",
			         what, i, rc);
		if (getenv("TG_FAILALLOC_VERBOSE") != NULL)
			printf("fail-alloc: %s: site %zu: %d %s\n", what, i, rc, err.msg);
		failed++;
	}
	printf("fail-alloc: %s: %lu allocations from %zu call sites in a run (result %d); failing "
	       "each site's first: %lu failed with a message, %lu absorbed, %lu not reached\n",
	       what, total, nsites, ref, failed, absorbed, missed);
	return failed;
}
