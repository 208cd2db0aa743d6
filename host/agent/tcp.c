/*
 * tcp.c — the agent's tcp mode and the splice it shares with http mode's
 * WebSocket upgrades (agent-int.h). A client connection gets its own
 * upstream connection (never pooled; resumed when a session is known) and
 * bytes go both ways unchanged. A side is not read while the other has
 * AG_HIGH bytes waiting. A half-close is passed on: when one side ends
 * (the client's FIN, the gate's close_notify or FIN), what it sent is
 * delivered, then the other side's write half is shut (a FIN to the
 * client, a close_notify to the gate) and the other direction goes on
 * until it ends too; then both close. An error on either side closes both.
 * In tcp mode (ag_splice_idle) a splice with no byte moving either way
 * (read, or still being written out) for idle_timeout_ms is closed, with a
 * log line saying so.
 */
#include "agent-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

struct ag_splice {
	struct bufferevent *a, *b; /* client, upstream */
	struct ag_uconn *uc;
	void (*done)(void *arg);
	void *arg;
	int eof_a, eof_b;   /* that side sent its last byte (EOF / close_notify) */
	int shut_a, shut_b; /* the half-close was passed on to that side */
	struct event *idle; /* NULL: no idle limit (WebSocket splices) */
	unsigned idle_ms;
	const char *lname; /* the listener's name, for the log */
	long long last_ms; /* monotonic time of the last byte read, either side */
	size_t pending;    /* bytes waiting to be written, at the last look */
};

static long long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
sp_free(struct ag_splice *sp)
{
	void (*done)(void *) = sp->done;
	void *arg = sp->arg;

	if (sp->idle != NULL)
		event_free(sp->idle);
	bufferevent_free(sp->a);
	bufferevent_setcb(sp->b, NULL, NULL, NULL, NULL);
	ag_uconn_release(sp->uc, 0); /* frees sp->b */
	free(sp);
	done(arg);
}

void
ag_splice_kill(struct ag_splice *sp)
{
	if (sp != NULL)
		sp_free(sp);
}

/* Moves what from has into to's output while to has room. */
static void
move(struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *out = bufferevent_get_output(to);

	evbuffer_add_buffer(out, bufferevent_get_input(from));
	if (evbuffer_get_length(out) > AG_HIGH)
		bufferevent_disable(from, EV_READ);
}

/*
 * Passes a half-close on once what came before it is written: the client
 * (a plain socket) gets a FIN (shutdown SHUT_WR), the gate a TLS
 * close_notify (SSL_shutdown; its reading goes on). When both sides have
 * ended and everything is written, both close. 1 when sp was freed.
 */
static int
sp_settle(struct ag_splice *sp)
{
	if (sp->eof_b && !sp->shut_a && evbuffer_get_length(bufferevent_get_output(sp->a)) == 0) {
		sp->shut_a = 1;
		(void)shutdown(bufferevent_getfd(sp->a), SHUT_WR);
	}
	if (sp->eof_a && !sp->shut_b && evbuffer_get_length(bufferevent_get_output(sp->b)) == 0) {
		SSL *ssl = bufferevent_openssl_get_ssl(sp->b);

		sp->shut_b = 1;
		ERR_clear_error();
		if (ssl != NULL)
			(void)SSL_shutdown(ssl); /* sends close_notify; reading goes on */
		ERR_clear_error();
	}
	if (sp->shut_a && sp->shut_b) {
		sp_free(sp);
		return 1;
	}
	return 0;
}

static void
sp_read_cb(struct bufferevent *bev, void *arg)
{
	struct ag_splice *sp = arg;

	if (sp->idle != NULL)
		sp->last_ms = now_ms();
	move(bev, bev == sp->a ? sp->b : sp->a);
}

static void
sp_write_cb(struct bufferevent *bev, void *arg)
{
	struct ag_splice *sp = arg;
	struct bufferevent *other = bev == sp->a ? sp->b : sp->a;

	if (sp_settle(sp))
		return;
	/* below the low watermark again: the other side may be read */
	if (!(other == sp->a ? sp->eof_a : sp->eof_b)) {
		bufferevent_enable(other, EV_READ);
		move(other, bev);
	}
}

static void
sp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ag_splice *sp = arg;
	struct bufferevent *other = bev == sp->a ? sp->b : sp->a;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	/* deliver what the ending side still had */
	if (sp->idle != NULL && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		sp->last_ms = now_ms();
	move(bev, other);
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		sp_free(sp); /* broken: nothing more can be relayed */
		return;
	}
	/* EOF: this direction ended; the other goes on until it ends too */
	bufferevent_disable(bev, EV_READ);
	if (bev == sp->a)
		sp->eof_a = 1;
	else
		sp->eof_b = 1;
	(void)sp_settle(sp);
}

struct ag_splice *
ag_splice_start(struct bufferevent *a, struct ag_uconn *uc, void (*done)(void *arg), void *arg)
{
	struct ag_splice *sp = calloc(1, sizeof(*sp));

	if (sp == NULL)
		return NULL;
	sp->a = a;
	sp->b = ag_uconn_bev(uc);
	sp->uc = uc;
	sp->done = done;
	sp->arg = arg;
	bufferevent_setcb(sp->a, sp_read_cb, sp_write_cb, sp_event_cb, sp);
	bufferevent_setcb(sp->b, sp_read_cb, sp_write_cb, sp_event_cb, sp);
	bufferevent_setwatermark(sp->a, EV_WRITE, AG_HIGH / 2, 0);
	bufferevent_setwatermark(sp->b, EV_WRITE, AG_HIGH / 2, 0);
	bufferevent_setwatermark(sp->a, EV_READ, 0, 0);
	bufferevent_setwatermark(sp->b, EV_READ, 0, 0);
	bufferevent_set_timeouts(sp->a, NULL, NULL);
	bufferevent_set_timeouts(sp->b, NULL, NULL);
	bufferevent_enable(sp->a, EV_READ | EV_WRITE);
	bufferevent_enable(sp->b, EV_READ | EV_WRITE);
	/* bytes already read on either side go first */
	move(sp->a, sp->b);
	move(sp->b, sp->a);
	return sp;
}

/* Re-arms the idle timer for what is left of idle_ms after the last byte. */
static int
idle_arm(struct ag_splice *sp, long long left_ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(left_ms / 1000);
	tv.tv_usec = (suseconds_t)(left_ms % 1000) * 1000;
	return evtimer_add(sp->idle, &tv);
}

/* idle_ms without a byte either way: both sides closed (the gate gets a
 * close_notify first), the reason logged. Else the timer waits for the rest. */
static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_splice *sp = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(sp->a)) +
	                 evbuffer_get_length(bufferevent_get_output(sp->b));
	long long quiet;
	SSL *ssl;

	(void)fd;
	(void)what;
	/* bytes still going out to a slow reader (reading paused): not idle */
	if (pending != sp->pending) {
		sp->pending = pending;
		sp->last_ms = now_ms();
	}
	quiet = now_ms() - sp->last_ms;
	if (quiet < (long long)sp->idle_ms && idle_arm(sp, (long long)sp->idle_ms - quiet) == 0)
		return;
	fprintf(stderr,
	        "tokengate agent: listener %s: tcp connection closed: no byte either way for %u "
	        "ms (idle timeout, --idle-timeout-ms); raise it (idle_timeout_ms) for a "
	        "protocol that stays quiet longer\n",
	        sp->lname, sp->idle_ms);
	if (!sp->shut_b && (ssl = bufferevent_openssl_get_ssl(sp->b)) != NULL) {
		ERR_clear_error();
		(void)SSL_shutdown(ssl);
		ERR_clear_error();
	}
	sp_free(sp);
}

int
ag_splice_idle(struct ag_splice *sp, unsigned idle_ms, const char *lname)
{
	sp->idle_ms = idle_ms;
	sp->lname = lname;
	sp->last_ms = now_ms();
	if ((sp->idle = evtimer_new(bufferevent_get_base(sp->a), idle_cb, sp)) == NULL)
		return -1;
	return idle_arm(sp, idle_ms);
}

/* ---- tcp mode ---- */

struct tc {
	struct ag_client cl; /* first: the listener's list */
	struct bufferevent *bev;
	struct ag_up_req *pend;
	struct ag_splice *sp;
};

static void
tc_free(struct tc *c)
{
	ag_client_del(&c->cl);
	if (c->pend != NULL)
		ag_up_cancel(c->pend);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
}

static void
tc_done(void *arg)
{
	struct tc *c = arg;

	c->sp = NULL;
	c->bev = NULL; /* freed by the splice */
	tc_free(c);
}

static void
tc_kill(struct ag_client *cl)
{
	struct tc *c = (struct tc *)cl;

	if (c->sp != NULL)
		ag_splice_kill(c->sp); /* calls tc_done */
	else
		tc_free(c);
}

/*
 * The client before its upstream is ready. An error, or an EOF before any
 * byte (a probe, a client gone): dropped, without a connection to the gate.
 * An EOF after bytes is a half-close like any other (a client may send its
 * whole request and shut its write side at once): libevent stopped
 * reading, and the splice's reading meets the EOF again and passes it on
 * after the bytes read.
 */
static void
tc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if ((what & BEV_EVENT_ERROR) ||
	    ((what & BEV_EVENT_EOF) && evbuffer_get_length(bufferevent_get_input(bev)) == 0))
		tc_free(arg);
}

static void
tc_ready(struct ag_uconn *uc, const char *why, void *arg)
{
	struct tc *c = arg;
	struct ag_listener *l = c->cl.l;

	c->pend = NULL;
	if (uc == NULL) {
		l->failed++;
		(void)why; /* logged by upstream.c */
		tc_free(c);
		return;
	}
	l->requests++;
	if ((c->sp = ag_splice_start(c->bev, uc, tc_done, c)) == NULL) {
		ag_uconn_release(uc, 0);
		tc_free(c);
	} else if (ag_splice_idle(c->sp, l->cfg->idle_timeout_ms, l->cfg->name) != 0)
		ag_splice_kill(c->sp); /* out of memory: calls tc_done */
}

void
ag_tcp_serve(struct ag_listener *l, evutil_socket_t fd)
{
	struct tc *c = NULL;

	if (ag_listener_absent(l) != NULL) {
		l->refused++;
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->cl.kill = tc_kill;
	ag_client_add(l, &c->cl);
	if ((c->bev = bufferevent_socket_new(
	         l->srv->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		evutil_closesocket(fd);
		tc_free(c);
		return;
	}
	/* not read until the upstream is there; a close is still seen */
	bufferevent_setcb(c->bev, NULL, NULL, tc_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, AG_HIGH);
	bufferevent_enable(c->bev, EV_READ);
	if ((c->pend = ag_up_get(l->up, 0, tc_ready, c)) == NULL)
		tc_free(c);
}
