/*
 * tg_wakefd.h — an eventfd as a wake-up from one thread to another's event
 * loop: a thread signals it, the loop that watches it for reading drains
 * it. The gate's worker mailboxes, the agent's name lookups and the
 * token-key layer's events and signing jobs use it. Part of tgcore.
 */
#ifndef TG_WAKEFD_H
#define TG_WAKEFD_H

/* A new non-blocking, close-on-exec eventfd with its counter at 0: the fd,
 * or -1 with errno set (EMFILE, ENFILE, ENOMEM). */
int tg_wakefd_new(void);

/* Adds 1 to fd's counter (again on EINTR): fd is readable from now until it
 * is drained. A counter already at its maximum is readable already. */
void tg_wakefd_signal(int fd);

/* Sets fd's counter back to 0 (again on EINTR): 1 when it was above 0, 0
 * when there was nothing to read. */
int tg_wakefd_drain(int fd);

#endif /* TG_WAKEFD_H */
