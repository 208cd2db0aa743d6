/*
 * tcp.c — the agent's tcp mode and the splice it shares with http mode's
 * WebSocket upgrades (agent-int.h). A client connection gets its own
 * upstream connection (never pooled; resumed when a session is known) and
 * bytes go both ways unchanged. A side is not read while the other has
 * AG_HIGH bytes waiting; when one side ends, what is pending is delivered
 * to the other and both close.
 */
#include "agent-int.h"

#include <stdlib.h>

#include <event2/buffer.h>

struct ag_splice {
	struct bufferevent *a, *b; /* client, upstream */
	struct ag_uconn *uc;
	void (*done)(void *arg);
	void *arg;
	int ended; /* a side ended: flush, then close */
};

static void
sp_free(struct ag_splice *sp)
{
	void (*done)(void *) = sp->done;
	void *arg = sp->arg;

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

static int
flushed(struct ag_splice *sp)
{
	return evbuffer_get_length(bufferevent_get_output(sp->a)) == 0 &&
	       evbuffer_get_length(bufferevent_get_output(sp->b)) == 0;
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

static void
sp_read_cb(struct bufferevent *bev, void *arg)
{
	struct ag_splice *sp = arg;

	move(bev, bev == sp->a ? sp->b : sp->a);
}

static void
sp_write_cb(struct bufferevent *bev, void *arg)
{
	struct ag_splice *sp = arg;
	struct bufferevent *other = bev == sp->a ? sp->b : sp->a;

	if (sp->ended) {
		if (flushed(sp))
			sp_free(sp);
		return;
	}
	/* below the low watermark again: the other side may be read */
	bufferevent_enable(other, EV_READ);
	move(other, bev);
}

static void
sp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ag_splice *sp = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	/* deliver what the ending side still had, then close both */
	move(bev, bev == sp->a ? sp->b : sp->a);
	sp->ended = 1;
	bufferevent_disable(sp->a, EV_READ);
	bufferevent_disable(sp->b, EV_READ);
	if ((what & BEV_EVENT_ERROR) || flushed(sp))
		sp_free(sp);
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

static void
tc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		tc_free(arg); /* gone before its upstream was ready */
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
	}
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
