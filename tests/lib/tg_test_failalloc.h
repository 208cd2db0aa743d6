/*
 * tg_test_failalloc.h — allocation-failure injection for unit tests.
 *
 * A test registered with tg_add_failalloc_test links tg_test_failalloc.c
 * and is linked with --wrap for malloc, calloc, realloc, strdup and
 * strndup, so every such call made by the product code linked into the
 * test (its static libraries) is seen; OpenSSL's and jansson's allocations
 * are seen too once tg_failalloc_init() has run.
 *
 * An allocation's call site is its innermost caller in the product code:
 * the product's own malloc, or the OpenSSL or jansson call that allocated
 * (found with backtrace(3)). tg_failalloc_sweep() records the call sites
 * of one run of an operation, then runs it once per site with that site's
 * first allocation failing (NULL, errno ENOMEM), so every place where the
 * product handles a failed allocation or a failed OpenSSL call is taken
 * once, and asserts what must hold on every path: the operation fails
 * cleanly with an error message, or absorbs the failure and gives the same
 * answer as without one; a refusal is never turned into a success. Leaks
 * on those paths are LeakSanitizer's to report (the ASan suite). The
 * operation runs on the test's thread; other threads are not supported.
 */
#ifndef TG_TEST_FAILALLOC_H
#define TG_TEST_FAILALLOC_H

#include "tg_err.h"

/*
 * Routes OpenSSL's and jansson's allocations through the counter. Call it
 * first in main(), before anything allocates through OpenSSL; fails the
 * test program (exit 1) if OpenSSL has allocated already.
 */
void tg_failalloc_init(void);

/*
 * on != 0: allocations are neither counted nor failed until called with
 * 0 (or until the next arm), so an operation can set up and check its
 * result around the product call without the test's own allocations
 * failing.
 */
void tg_failalloc_hold(int on);

/*
 * An operation under test: does one complete call of the product code
 * (setting up and cleaning up what it needs, so it can run again, inside
 * tg_failalloc_hold), checks a successful result itself (a wrong result is
 * an assertion failure) and returns the product call's 0 or TG_ERR_* code
 * with err filled.
 */
typedef int (*tg_failalloc_op)(void *ctx, struct tg_error *err);

/*
 * Sweeps op: a warm-up run (caches OpenSSL fills once), a recorded run
 * whose result is the reference, then one run per call site with that
 * site's first allocation failing. Asserts on each run: the result is the reference
 * (the failure was absorbed), or a negative code with a non-empty err
 * message; when the reference is a refusal (< 0), every run is a refusal.
 * Prints "fail-alloc: <what>: ..." with the counts. Returns the number
 * of runs in which the injected failure made op fail (> 0 is expected of
 * any op that allocates).
 */
unsigned long tg_failalloc_sweep(const char *what, tg_failalloc_op op, void *ctx);

#endif /* TG_TEST_FAILALLOC_H */
