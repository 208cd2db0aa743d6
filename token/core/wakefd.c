/* wakefd.c — tg_wakefd.h: eventfd wake-ups between threads. */
#include "tg_wakefd.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int
tg_wakefd_new(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void
tg_wakefd_signal(int fd)
{
	uint64_t one = 1;
	ssize_t w;

	/* EAGAIN: the counter is at its maximum, so fd is readable anyway */
	do {
		w = write(fd, &one, sizeof(one));
	} while (w < 0 && errno == EINTR);
}

int
tg_wakefd_drain(int fd)
{
	uint64_t v;
	ssize_t r;

	do {
		r = read(fd, &v, sizeof(v));
	} while (r < 0 && errno == EINTR);
	return r == (ssize_t)sizeof(v);
}
