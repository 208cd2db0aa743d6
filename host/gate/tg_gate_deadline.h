/*
 * tg_gate_deadline.h — deadlines on CLOCK_MONOTONIC, and a connect limit
 * shared among the addresses of a name tried in turn (the gate's
 * upstreams, the agent's gate). Pure time arithmetic: no events, no I/O.
 */
#ifndef TG_GATE_DEADLINE_H
#define TG_GATE_DEADLINE_H

#include <sys/time.h>
#include <time.h>

/* *d = now + ms. */
void tg_gate_deadline_set(struct timespec *d, unsigned ms);

/* 1 once *d has come (a zeroed *d has always come), else 0. */
int tg_gate_deadline_passed(const struct timespec *d);

/*
 * The share of the time left until *d that the first of n addresses
 * still to try gets before the next is tried (as curl does): the time
 * left divided by n, at least 1 µs (also when *d has passed), into *tv.
 * n 0 counts as 1.
 */
void tg_gate_deadline_share(const struct timespec *d, unsigned n, struct timeval *tv);

#endif /* TG_GATE_DEADLINE_H */
