/*
 * test_gate_ratelimit.c — failed handshakes per source (host/gate/
 * ratelimit.c): a source is blocked at its max-th failure within the
 * window, exactly once per block, for the window's length, then starts
 * from zero; failures spread wider than the window never block; sources
 * are IPv4 addresses and IPv6 /64s (mapped IPv4 is IPv4); a full table
 * keeps its blocked sources; threads counting at once lose no failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>

#include <cmocka.h>

#include "tg_gate_ratelimit.h"
#include "tg_test.h"

static struct tg_gate_src
v4(const char *text)
{
	struct sockaddr_in sa;
	struct tg_gate_src src;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &sa.sin_addr), 1);
	assert_int_equal(tg_gate_src_of((struct sockaddr *)&sa, (int)sizeof(sa), &src), 1);
	return src;
}

static struct tg_gate_src
v6(const char *text)
{
	struct sockaddr_in6 sa;
	struct tg_gate_src src;

	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
	assert_int_equal(tg_gate_src_of((struct sockaddr *)&sa, (int)sizeof(sa), &src), 1);
	return src;
}

static struct tg_gate_ratelimit *
table(size_t slots)
{
	struct tg_gate_ratelimit *rl = NULL;
	struct tg_error err = {0};

	assert_int_equal(tg_gate_ratelimit_new(slots, &rl, &err), 0);
	assert_non_null(rl);
	return rl;
}

/* failures of src at time t, n times; the number of them that blocked it */
static int
fail_n(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src, uint64_t t, int n, unsigned max,
       unsigned window)
{
	unsigned failures = 0;
	uint64_t until = 0;
	int blocked = 0, i;

	for (i = 0; i < n; i++)
		blocked += tg_gate_ratelimit_fail(rl, src, t, max, window, &failures, &until);
	return blocked;
}

static void
test_blocks_at_max(void **state)
{
	struct tg_gate_ratelimit *rl = table(64);
	struct tg_gate_src a = v4("192.0.2.7"), b = v4("192.0.2.8");
	unsigned failures = 0;
	uint64_t until = 0;

	(void)state;
	assert_false(tg_gate_ratelimit_blocked(rl, &a, 1000));
	/* 4 failures of max 5: not blocked */
	assert_int_equal(fail_n(rl, &a, 1000, 4, 5, 60000), 0);
	assert_false(tg_gate_ratelimit_blocked(rl, &a, 1001));
	/* the 5th blocks, once, for the window from that failure */
	assert_int_equal(tg_gate_ratelimit_fail(rl, &a, 2000, 5, 60000, &failures, &until), 1);
	assert_int_equal(failures, 5);
	assert_int_equal(until, 62000);
	assert_true(tg_gate_ratelimit_blocked(rl, &a, 2000));
	assert_true(tg_gate_ratelimit_blocked(rl, &a, 61999));
	/* failures during the block (handshakes already under way) do not
	 * block it again or lengthen it */
	assert_int_equal(fail_n(rl, &a, 3000, 10, 5, 60000), 0);
	assert_false(tg_gate_ratelimit_blocked(rl, &a, 62000));
	/* another address is not touched */
	assert_false(tg_gate_ratelimit_blocked(rl, &b, 2000));
	/* after the block: from zero again */
	assert_int_equal(fail_n(rl, &a, 62000, 4, 5, 60000), 0);
	assert_false(tg_gate_ratelimit_blocked(rl, &a, 62001));
	assert_int_equal(fail_n(rl, &a, 62001, 1, 5, 60000), 1);
	assert_true(tg_gate_ratelimit_blocked(rl, &a, 62001));
	tg_gate_ratelimit_free(rl);
}

static void
test_window(void **state)
{
	struct tg_gate_ratelimit *rl = table(64);
	struct tg_gate_src a = v4("198.51.100.1");
	uint64_t t;
	int blocked = 0;

	(void)state;
	/* 3 failures per window of 1000 ms, max 4: never blocked however long */
	for (t = 0; t < 20000; t += 334)
		blocked += fail_n(rl, &a, t, 1, 4, 1000);
	assert_int_equal(blocked, 0);
	/* max 1: the first failure blocks */
	assert_int_equal(fail_n(rl, &a, 30000, 1, 1, 1000), 1);
	assert_true(tg_gate_ratelimit_blocked(rl, &a, 30999));
	assert_false(tg_gate_ratelimit_blocked(rl, &a, 31000));
	/* a clock read a moment earlier by another thread is inside the window */
	assert_int_equal(fail_n(rl, &a, 40000, 2, 3, 1000), 0);
	assert_int_equal(fail_n(rl, &a, 39999, 1, 3, 1000), 1);
	tg_gate_ratelimit_free(rl);
}

static void
test_sources(void **state)
{
	struct tg_gate_ratelimit *rl = table(64);
	struct tg_gate_src a = v6("2001:db8:1:2::1"), same64 = v6("2001:db8:1:2:ffff::9"),
	                   other64 = v6("2001:db8:1:3::1"), mapped = v6("::ffff:192.0.2.1"),
	                   plain = v4("192.0.2.1"), mapped_next = v6("::ffff:192.0.2.2");
	struct sockaddr_in short_sa;
	struct sockaddr un = {.sa_family = AF_UNIX};
	struct tg_gate_src none;
	char buf[64];

	(void)state;
	assert_memory_equal(a.a, same64.a, sizeof(a.a));
	assert_memory_not_equal(a.a, other64.a, sizeof(a.a));
	/* an IPv4 address mapped into IPv6 is that address, all of it */
	assert_memory_equal(mapped.a, plain.a, sizeof(plain.a));
	assert_memory_not_equal(mapped.a, mapped_next.a, sizeof(plain.a));
	assert_string_equal(tg_gate_src_str(&a, buf, sizeof(buf)), "2001:db8:1:2::/64");
	assert_string_equal(tg_gate_src_str(&mapped, buf, sizeof(buf)), "192.0.2.1");
	/* unix peers, NULL and a short address have no source */
	assert_int_equal(tg_gate_src_of(&un, (int)sizeof(un), &none), 0);
	assert_int_equal(tg_gate_src_of(NULL, 0, &none), 0);
	memset(&short_sa, 0, sizeof(short_sa));
	short_sa.sin_family = AF_INET;
	assert_int_equal(tg_gate_src_of((struct sockaddr *)&short_sa, 4, &none), 0);
	/* failures from two addresses of one /64 add up */
	assert_int_equal(fail_n(rl, &a, 5, 2, 4, 1000), 0);
	assert_int_equal(fail_n(rl, &same64, 5, 2, 4, 1000), 1);
	assert_true(tg_gate_ratelimit_blocked(rl, &a, 6));
	assert_false(tg_gate_ratelimit_blocked(rl, &other64, 6));
	tg_gate_ratelimit_free(rl);
}

/* A table with room for 64: the sources blocked in it stay blocked
 * whatever thousands of others fail. */
static void
test_full_table(void **state)
{
	struct tg_gate_ratelimit *rl = table(1);
	struct tg_gate_src s[64], x;
	char addr[32];
	int i, kept = 0, blocked_new = 0;

	(void)state;
	for (i = 0; i < 64; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d", i + 1);
		s[i] = v4(addr);
		(void)fail_n(rl, &s[i], 100, 1, 1, 10000);
	}
	for (i = 0; i < 64; i++)
		kept += tg_gate_ratelimit_blocked(rl, &s[i], 101);
	/* a probe of 8 places may find no room: most, not all, are tracked */
	assert_true(kept > 32);
	for (i = 0; i < 4000; i++) {
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 250, i % 250 + 1);
		x = v4(addr);
		blocked_new += fail_n(rl, &x, 200, 1, 2, 10000);
	}
	assert_int_equal(blocked_new, 0);
	for (i = 0; i < 64; i++)
		kept -= tg_gate_ratelimit_blocked(rl, &s[i], 201);
	assert_int_equal(kept, 0); /* every blocked source is still blocked */
	tg_gate_ratelimit_free(rl);
}

struct worker_arg {
	struct tg_gate_ratelimit *rl;
	struct tg_gate_src src;
	int blocked;
};

static void *
worker(void *p)
{
	struct worker_arg *a = p;

	a->blocked = fail_n(a->rl, &a->src, 50, 1000, 4000, 60000);
	return NULL;
}

/* 4 threads x 1000 failures of one source, max 4000: exactly one blocks. */
static void
test_threads(void **state)
{
	struct worker_arg a[4];
	pthread_t t[4];
	struct tg_gate_ratelimit *rl = table(64);
	int i, blocked = 0;

	(void)state;
	for (i = 0; i < 4; i++) {
		a[i].rl = rl;
		a[i].src = v4("203.0.113.5");
		assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		blocked += a[i].blocked;
	}
	assert_int_equal(blocked, 1);
	assert_true(tg_gate_ratelimit_blocked(rl, &a[0].src, 51));
	tg_gate_ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blocks_at_max), cmocka_unit_test(test_window),
	    cmocka_unit_test(test_sources),       cmocka_unit_test(test_full_table),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
