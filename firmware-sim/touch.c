/* touch.c — the simulated touch sensor (auto, deny, SIGHUP). */
#include "touch.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg_log.h"

int
tg_sim_touch_mode_parse(const char *s, enum tg_sim_touch_mode *mode, struct tg_error *err)
{
	int r = 0;

	if (strcmp(s, "auto") == 0)
		*mode = TG_SIM_TOUCH_AUTO;
	else if (strcmp(s, "deny") == 0)
		*mode = TG_SIM_TOUCH_DENY;
	else if (strcmp(s, "signal") == 0)
		*mode = TG_SIM_TOUCH_SIGNAL;
	else
		r = tg_error_set(err, TG_ERR_USAGE,
		                 "--touch '%s' is not a touch mode; use auto, deny or signal", s);
	return r;
}

const char *
tg_sim_touch_mode_name(enum tg_sim_touch_mode mode)
{
	const char *n;

	switch (mode) {
	case TG_SIM_TOUCH_AUTO:
		n = "auto";
		break;
	case TG_SIM_TOUCH_DENY:
		n = "deny";
		break;
	case TG_SIM_TOUCH_SIGNAL:
		n = "signal";
		break;
	default:
		n = "?";
		break;
	}
	return n;
}

int
tg_sim_touch_init(struct tg_sim_touch *t, enum tg_sim_touch_mode mode, uint32_t timeout_ms)
{
	sigset_t set;
	int r = 0;

	memset(t, 0, sizeof(*t));
	t->mode = mode;
	t->timeout_ms = timeout_ms != 0 ? timeout_ms : TG_SIM_TOUCH_TIMEOUT_MS;
	if (mode == TG_SIM_TOUCH_SIGNAL) {
		sigemptyset(&set);
		sigaddset(&set, SIGHUP);
		if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
			r = TG_ERR_INTERNAL;
	}
	return r;
}

/*
 * Waits up to timeout_ms for a blocked SIGHUP; 1 if one came. Any other
 * signal (SIGTERM, SIGUSR1...) interrupts the wait (EINTR) and ends it
 * untouched: its handler runs once the APDU is answered, so it is not held
 * back for the rest of the timeout.
 */
static int
wait_sighup(uint32_t timeout_ms)
{
	struct timespec ts;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	ts.tv_sec = (time_t)(timeout_ms / 1000);
	ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	return sigtimedwait(&set, NULL, &ts) == SIGHUP;
}

int
tg_sim_touch_ask(void *ctx, uint8_t slot)
{
	struct tg_sim_touch *t = ctx;
	struct timespec zero = {0, 0};
	sigset_t set;
	int touched = 0;

	switch (t->mode) {
	case TG_SIM_TOUCH_AUTO:
		touched = 1;
		break;
	case TG_SIM_TOUCH_DENY:
		touched = 0;
		break;
	case TG_SIM_TOUCH_SIGNAL:
		/* A touch counts only while the token waits: drop stale ones. */
		sigemptyset(&set);
		sigaddset(&set, SIGHUP);
		while (sigtimedwait(&set, NULL, &zero) == SIGHUP)
			;
		tg_log_info("sim.touch.wait",
		            "slot %02x needs a touch: send SIGHUP to pid %ld within %u ms", slot,
		            (long)getpid(), t->timeout_ms);
		touched = wait_sighup(t->timeout_ms);
		break;
	default:
		touched = 0;
		break;
	}
	if (touched)
		t->touches++;
	tg_log_info("sim.touch", "slot %02x touch %s (mode %s)", slot,
	            touched ? "given" : "not given", tg_sim_touch_mode_name(t->mode));
	return touched;
}
