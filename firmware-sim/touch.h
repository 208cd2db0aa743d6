/*
 * touch.h — the simulated touch sensor, answering the token core's touch
 * callback (struct tg_tok_host.touch).
 *
 * Modes: auto (always touched), deny (never touched: operations needing a
 * touch fail with 6982), signal (a SIGHUP to the process within the timeout,
 * 15 s by default, is the touch). In signal mode SIGHUP is blocked for the
 * whole process (tg_sim_touch_init) and taken with sigtimedwait(2) while the
 * token waits, so the wait blocks inside the APDU exactly as a real token
 * blinks and waits; a SIGHUP sent while no operation waits is discarded,
 * and any other signal (SIGTERM, SIGUSR1...) ends the wait untouched.
 */
#ifndef TG_SIM_TOUCH_H
#define TG_SIM_TOUCH_H

#include <stdint.h>

#include "tg_err.h"

#define TG_SIM_TOUCH_TIMEOUT_MS 15000

enum tg_sim_touch_mode {
	TG_SIM_TOUCH_AUTO,
	TG_SIM_TOUCH_DENY,
	TG_SIM_TOUCH_SIGNAL,
};

struct tg_sim_touch {
	enum tg_sim_touch_mode mode;
	uint32_t timeout_ms;
	uint64_t touches; /* touches given, for the log */
};

/* Parses "auto|deny|signal". TG_ERR_USAGE with a message otherwise. */
int tg_sim_touch_mode_parse(const char *s, enum tg_sim_touch_mode *mode, struct tg_error *err);

/* The mode's name ("auto", "deny", "signal"). */
const char *tg_sim_touch_mode_name(enum tg_sim_touch_mode mode);

/*
 * Sets up t for `mode` and the timeout (0: TG_SIM_TOUCH_TIMEOUT_MS). In
 * signal mode blocks SIGHUP in the calling thread's signal mask; call it
 * from main() before any other thread starts. Returns 0 or TG_ERR_INTERNAL.
 */
int tg_sim_touch_init(struct tg_sim_touch *t, enum tg_sim_touch_mode mode, uint32_t timeout_ms);

/*
 * The tg_tok_host touch callback (ctx is a struct tg_sim_touch *): returns
 * 1 if touched, 0 if not. In signal mode it logs that it waits for SIGHUP
 * (event "sim.touch.wait", with the pid) and blocks up to the timeout.
 */
int tg_sim_touch_ask(void *ctx, uint8_t slot);

#endif /* TG_SIM_TOUCH_H */
