/*
 * resolve.c — the gate's host name looked up off the agent's loop
 * (agent-int.h): getaddrinfo(3) on a thread of its own per lookup, so the
 * lookup sees nsswitch, /etc/hosts and resolv.conf as they are at that
 * moment (a laptop that joins a VPN, a gate whose address moved), and the
 * answer reaches the loop through an eventfd. A lookup's thread and the
 * loop share one block, freed by whichever lets go of it last: freeing
 * the resolver while a lookup runs leaves the thread to finish on its own.
 */
#include "agent-int.h"
#include "tg_wakefd.h"

#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a lookup's thread and the loop share. */
struct rs_shared {
	pthread_mutex_t mu;
	int refs; /* the resolver's, and a running lookup's */
	int efd;  /* written once per finished lookup */
	char host[256], port[8];
	/* the last finished lookup's outcome, until the loop takes it */
	int rc;                 /* getaddrinfo's: 0, or an EAI_ code */
	struct ag_addrs *addrs; /* NULL: none (or taken) */
};

struct ag_resolver {
	struct rs_shared *sh;
	struct event *ev; /* sh->efd readable */
	ag_resolved_cb cb;
	void *arg;
	int busy; /* a lookup runs */
};

/* Lets go of sh: the last one out frees it. */
static void
sh_unref(struct rs_shared *sh)
{
	int last;

	pthread_mutex_lock(&sh->mu);
	last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->mu);
	if (last) {
		ag_addrs_unref(sh->addrs);
		if (sh->efd >= 0)
			close(sh->efd);
		pthread_mutex_destroy(&sh->mu);
		free(sh);
	}
}

void
ag_addrs_unref(struct ag_addrs *a)
{
	if (a != NULL && --a->refs == 0)
		free(a);
}

/* The addresses of res (at most AG_ADDRS_MAX), or NULL (none, or no memory). */
static struct ag_addrs *
addrs_of(const struct addrinfo *res)
{
	struct ag_addrs *a = calloc(1, sizeof(*a));

	for (; a != NULL && res != NULL && a->n < AG_ADDRS_MAX; res = res->ai_next) {
		if (res->ai_addrlen > sizeof(a->sa[0]))
			continue;
		memcpy(&a->sa[a->n], res->ai_addr, res->ai_addrlen);
		a->salen[a->n++] = res->ai_addrlen;
	}
	if (a != NULL && a->n == 0) {
		free(a);
		a = NULL;
	}
	if (a != NULL)
		a->refs = 1;
	return a;
}

struct ag_addrs *
ag_resolve_now(const char *host, const char *port, int *rc)
{
	struct addrinfo hints, *res = NULL;
	struct ag_addrs *a = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	*rc = getaddrinfo(host, port, &hints, &res);
	if (*rc == 0 && (a = addrs_of(res)) == NULL)
		*rc = EAI_NODATA;
	if (res != NULL)
		freeaddrinfo(res);
	return a;
}

/* A lookup's thread: getaddrinfo, the outcome into sh, the loop woken. */
static void *
rs_thread(void *arg)
{
	struct rs_shared *sh = arg;
	struct ag_addrs *a;
	int rc;

	a = ag_resolve_now(sh->host, sh->port, &rc);
	pthread_mutex_lock(&sh->mu);
	ag_addrs_unref(sh->addrs);
	sh->addrs = a;
	sh->rc = rc;
	pthread_mutex_unlock(&sh->mu);
	tg_wakefd_signal(sh->efd);
	sh_unref(sh);
	return NULL;
}

/* The loop: a lookup finished. */
static void
rs_ready(evutil_socket_t fd, short what, void *arg)
{
	struct ag_resolver *r = arg;
	(void)what;
	if (tg_wakefd_drain(fd) && r->busy) {
		r->busy = 0;
		r->cb(r->arg);
	}
}

int
ag_resolver_new(struct event_base *base, const char *host, const char *port, ag_resolved_cb cb,
                void *arg, struct ag_resolver **out, struct tg_error *err)
{
	struct ag_resolver *r = calloc(1, sizeof(*r));
	struct rs_shared *sh = calloc(1, sizeof(*sh));
	int rc = TG_ERR_ALLOC;

	*out = NULL;
	if (r == NULL || sh == NULL) {
		tg_error_set(err, rc, "out of memory");
		free(sh);
		goto out;
	}
	sh->efd = -1;
	if (pthread_mutex_init(&sh->mu, NULL) != 0) {
		tg_error_set(err, rc, "out of memory");
		free(sh);
		goto out;
	}
	r->sh = sh;
	sh->refs = 1;
	snprintf(sh->host, sizeof(sh->host), "%s", host);
	snprintf(sh->port, sizeof(sh->port), "%s", port);
	r->cb = cb;
	r->arg = arg;
	if ((sh->efd = tg_wakefd_new()) < 0 ||
	    (r->ev = event_new(base, sh->efd, EV_READ | EV_PERSIST, rs_ready, r)) == NULL ||
	    event_add(r->ev, NULL) != 0) {
		rc = tg_error_set(err, TG_ERR_INTERNAL,
		                  "cannot set up the lookup of the gate's host name (out of file "
		                  "descriptors?)");
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	ag_resolver_free(r);
	return rc;
}

int
ag_resolver_start(struct ag_resolver *r)
{
	pthread_attr_t at;
	pthread_t t;
	int rc = 0;

	if (r->busy)
		goto out;
	pthread_mutex_lock(&r->sh->mu);
	r->sh->refs++;
	pthread_mutex_unlock(&r->sh->mu);
	rc = -1;
	if (pthread_attr_init(&at) == 0) {
		if (pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
		    pthread_create(&t, &at, rs_thread, r->sh) == 0)
			rc = 0;
		pthread_attr_destroy(&at);
	}
	if (rc != 0)
		sh_unref(r->sh); /* the thread's reference, never taken up */
	else
		r->busy = 1;
out:
	return rc;
}

int
ag_resolver_busy(const struct ag_resolver *r)
{
	return r->busy;
}

struct ag_addrs *
ag_resolver_take(struct ag_resolver *r, int *rc)
{
	struct ag_addrs *a;

	pthread_mutex_lock(&r->sh->mu);
	a = r->sh->addrs;
	r->sh->addrs = NULL; /* the loop's from now on: never touched by a thread again */
	*rc = r->sh->rc;
	pthread_mutex_unlock(&r->sh->mu);
	return a;
}

void
ag_resolver_free(struct ag_resolver *r)
{
	if (r == NULL)
		return;
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->sh != NULL)
		sh_unref(r->sh);
	free(r);
}
