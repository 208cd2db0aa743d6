/*
 * test_agent_resolve.c — the agent's lookups of the gate's name off the
 * loop (host/agent/resolve.c): a name answered on the loop, a name that
 * does not resolve, one lookup at a time, and a resolver freed while its
 * lookup runs (the thread finishes on its own: ASan and LSan watch).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netdb.h>
#include <netinet/in.h>

#include "agent-int.h"
#include "tg_test.h"

struct seen {
	int calls;
	struct event_base *base;
};

static void
on_done(void *arg)
{
	struct seen *s = arg;

	s->calls++;
	event_base_loopbreak(s->base);
}

/* Runs the loop until a lookup is done (at most 10 s). */
static void
wait_done(struct seen *s)
{
	struct timeval tv = {10, 0};

	event_base_loopexit(s->base, &tv);
	event_base_dispatch(s->base);
}

static void
test_lookups(void **state)
{
	struct seen s = {0, event_base_new()};
	struct ag_resolver *r = NULL;
	struct ag_addrs *a;
	struct tg_error err;
	const struct sockaddr_in *sin;
	int rc = -1;

	(void)state;
	assert_non_null(s.base);
	assert_int_equal(ag_resolver_new(s.base, "127.0.0.1", "8443", on_done, &s, &r, &err), 0);
	assert_false(ag_resolver_busy(r));
	assert_int_equal(ag_resolver_start(r), 0);
	assert_true(ag_resolver_busy(r));
	/* one at a time: a second start while it runs starts nothing */
	assert_int_equal(ag_resolver_start(r), 0);
	assert_int_equal(s.calls, 0); /* never from inside the call */
	wait_done(&s);
	assert_int_equal(s.calls, 1);
	assert_false(ag_resolver_busy(r));
	a = ag_resolver_take(r, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(a);
	assert_int_equal(a->n, 1);
	sin = (const struct sockaddr_in *)&a->sa[0];
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8443);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	ag_addrs_unref(a);
	/* taken once: nothing left */
	assert_null(ag_resolver_take(r, &rc));
	ag_resolver_free(r);
	event_base_free(s.base);
}

static void
test_no_address(void **state)
{
	struct seen s = {0, event_base_new()};
	struct ag_resolver *r = NULL;
	struct tg_error err;
	int rc = 0;

	(void)state;
	/* a numeric host of a family the port cannot be: no address, at once */
	assert_int_equal(
	    ag_resolver_new(s.base, "127.0.0.1", "no-such-service-tg", on_done, &s, &r, &err), 0);
	assert_int_equal(ag_resolver_start(r), 0);
	wait_done(&s);
	assert_int_equal(s.calls, 1);
	assert_null(ag_resolver_take(r, &rc));
	assert_int_not_equal(rc, 0);
	assert_non_null(gai_strerror(rc));
	ag_resolver_free(r);
	event_base_free(s.base);
}

static void
test_free_while_running(void **state)
{
	struct seen s = {0, event_base_new()};
	struct ag_resolver *r = NULL;
	struct tg_error err;
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		assert_int_equal(ag_resolver_new(s.base, "localhost", "443", on_done, &s, &r, &err),
		                 0);
		assert_int_equal(ag_resolver_start(r), 0);
		ag_resolver_free(r); /* its thread still runs, or has just ended */
	}
	/* the threads end on their own; give them time before the leak check */
	usleep(300 * 1000);
	assert_int_equal(s.calls, 0);
	event_base_free(s.base);
}

static void
test_now(void **state)
{
	struct ag_addrs *a;
	int rc = -1;

	(void)state;
	a = ag_resolve_now("::1", "1", &rc);
	/* AI_ADDRCONFIG: without an IPv6 address here, ::1 may give none */
	if (a != NULL) {
		assert_int_equal(rc, 0);
		assert_int_equal(a->sa[0].ss_family, AF_INET6);
		ag_addrs_unref(a);
	} else {
		assert_int_not_equal(rc, 0);
	}
	assert_null(ag_resolve_now("127.0.0.1", "no-such-service-tg", &rc));
	assert_int_not_equal(rc, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_no_address),
	    cmocka_unit_test(test_free_while_running),
	    cmocka_unit_test(test_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
