/*
 * test_sim_touch.c — tokengate-sim's touch modes (firmware-sim/touch.c):
 * --touch parsing and names, auto and deny, and signal mode: a SIGHUP sent
 * while the token waits is a touch, one sent before it (stale) is not, and
 * no SIGHUP within the timeout is none. Each answer is logged with the slot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_log.h"
#include "touch.h"

static FILE *logf_;

static int
setup(void **state)
{
	(void)state;
	if ((logf_ = tmpfile()) == NULL)
		return -1;
	tg_log_init(TG_LOG_INFO, 0, logf_);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_log_init(TG_LOG_INFO, 0, NULL);
	fclose(logf_);
	return 0;
}

/* 1 when the log holds s. */
static int
log_has(const char *s)
{
	char buf[8192];
	size_t n;

	fflush(logf_);
	rewind(logf_);
	n = fread(buf, 1, sizeof(buf) - 1, logf_);
	buf[n] = '\0';
	(void)fseek(logf_, 0, SEEK_END);
	return strstr(buf, s) != NULL;
}

static void
test_parse_and_names(void **state)
{
	enum tg_sim_touch_mode m = TG_SIM_TOUCH_DENY;
	struct tg_error err;

	(void)state;
	assert_int_equal(tg_sim_touch_mode_parse("auto", &m, &err), 0);
	assert_int_equal(m, TG_SIM_TOUCH_AUTO);
	assert_int_equal(tg_sim_touch_mode_parse("signal", &m, &err), 0);
	assert_int_equal(m, TG_SIM_TOUCH_SIGNAL);
	assert_int_equal(tg_sim_touch_mode_parse("deny", &m, &err), 0);
	assert_int_equal(m, TG_SIM_TOUCH_DENY);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_touch_mode_parse("always", &m, &err), TG_ERR_USAGE);
	assert_string_equal(err.msg,
	                    "--touch 'always' is not a touch mode; use auto, deny or signal");
	assert_int_equal(m, TG_SIM_TOUCH_DENY);
	assert_int_equal(tg_sim_touch_mode_parse("", &m, &err), TG_ERR_USAGE);
	assert_string_equal(tg_sim_touch_mode_name(TG_SIM_TOUCH_AUTO), "auto");
	assert_string_equal(tg_sim_touch_mode_name(TG_SIM_TOUCH_DENY), "deny");
	assert_string_equal(tg_sim_touch_mode_name(TG_SIM_TOUCH_SIGNAL), "signal");
	assert_string_equal(tg_sim_touch_mode_name((enum tg_sim_touch_mode)42), "?");
}

static void
test_auto_deny(void **state)
{
	struct tg_sim_touch t;

	(void)state;
	assert_int_equal(tg_sim_touch_init(&t, TG_SIM_TOUCH_AUTO, 0), 0);
	assert_int_equal(t.timeout_ms, TG_SIM_TOUCH_TIMEOUT_MS);
	assert_int_equal(tg_sim_touch_ask(&t, 0x9A), 1);
	assert_int_equal(tg_sim_touch_ask(&t, 0x9C), 1);
	assert_int_equal(t.touches, 2);
	assert_true(log_has("slot 9a touch given (mode auto)"));
	assert_int_equal(tg_sim_touch_init(&t, TG_SIM_TOUCH_DENY, 500), 0);
	assert_int_equal(t.timeout_ms, 500);
	assert_int_equal(tg_sim_touch_ask(&t, 0x9D), 0);
	assert_int_equal(t.touches, 0);
	assert_true(log_has("slot 9d touch not given (mode deny)"));
	/* an unknown mode never touches */
	t.mode = (enum tg_sim_touch_mode)42;
	assert_int_equal(tg_sim_touch_ask(&t, 0x9E), 0);
	assert_true(log_has("slot 9e touch not given (mode ?)"));
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_signal(void **state)
{
	struct tg_sim_touch t;
	sigset_t cur;
	int64_t t0;
	pid_t child, me = getpid();
	int st;

	(void)state;
	assert_int_equal(tg_sim_touch_init(&t, TG_SIM_TOUCH_SIGNAL, 200), 0);
	/* init blocks SIGHUP, so a touch never kills the process */
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
	assert_int_equal(sigismember(&cur, SIGHUP), 1);
	/* a SIGHUP sent before the token asks is stale: dropped, then timeout */
	assert_int_equal(kill(me, SIGHUP), 0);
	t0 = now_ms();
	assert_int_equal(tg_sim_touch_ask(&t, 0x9A), 0);
	assert_true(now_ms() - t0 >= 190);
	assert_int_equal(t.touches, 0);
	assert_true(log_has("slot 9a needs a touch: send SIGHUP to pid"));
	assert_true(log_has("slot 9a touch not given (mode signal)"));
	/* a SIGHUP while it waits is a touch */
	t.timeout_ms = 10000;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		usleep(500 * 1000);
		kill(me, SIGHUP);
		_exit(0);
	}
	t0 = now_ms();
	assert_int_equal(tg_sim_touch_ask(&t, 0x9C), 1);
	assert_true(now_ms() - t0 < 9000);
	assert_int_equal(t.touches, 1);
	assert_true(log_has("slot 9c touch given (mode signal)"));
	assert_int_equal(waitpid(child, &st, 0), child);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_parse_and_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auto_deny, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
