/* deadline.c — deadlines and a connect limit's shares (tg_gate_deadline.h). */
#include "tg_gate_deadline.h"

void
tg_gate_deadline_set(struct timespec *d, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += (time_t)(ms / 1000);
	d->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

/* Microseconds from now until *d (negative once it has passed). */
static long long
left_us(const struct timespec *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(d->tv_sec - now.tv_sec) * 1000000LL + (d->tv_nsec - now.tv_nsec) / 1000;
}

int
tg_gate_deadline_passed(const struct timespec *d)
{
	return left_us(d) <= 0;
}

void
tg_gate_deadline_share(const struct timespec *d, unsigned n, struct timeval *tv)
{
	long long share = left_us(d) / (n > 0 ? n : 1);

	if (share < 1)
		share = 1;
	tv->tv_sec = (time_t)(share / 1000000);
	tv->tv_usec = (suseconds_t)(share % 1000000);
}
