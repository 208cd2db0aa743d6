/*
 * tcp.c — the gate's tcp mode (gate-int.h): the connection is decided once,
 * as the request "CONNECT /" against the listener's policy, audited (event
 * "connect" with its decision allow, deny or dry-run), then
 * spliced to the listener's upstream (tcp:// or unix:) both ways until both
 * sides are done, with backpressure (a side stops being read while the
 * other side has SPLICE_HIGH bytes waiting), an idle timeout and
 * half-close: a client that shuts its sending side makes the gate shut the
 * upstream's, and the upstream's answer still reaches the client.
 */
#include "gate-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#define SPLICE_HIGH (256u * 1024u) /* bytes waiting for one side before the other pauses */

struct splice {
	struct tg_gate_conn_info *ci;
	struct tg_gate_snapshot *sn; /* held from the decision until connected */
	struct bufferevent *cli;     /* the client (TLS) */
	struct tg_gate_upstream_conn *uc;
	struct bufferevent *up; /* the upstream (plain) */
	struct event *idle;
	unsigned idle_ms;
	struct timeval last; /* the loop's time of the last byte moved */
	uint64_t in, out;    /* client -> upstream, upstream -> client */
	int cli_eof, up_eof, up_shut;
	const char *route; /* in sn, or a copy below once sn is put back */
	char route_buf[TG_GATE_NAME_MAX + 1];
	char upstream[300]; /* the listener's upstream, as written */
};

static long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000);
}

/* An audit record of this connection: event, route, method, path, upstream. */
static json_t *
record(const struct splice *sp, const char *event, const char *reason)
{
	json_t *rec = tg_gate_audit_record(sp->ci, event);

	if (rec == NULL)
		return NULL;
	json_object_set_new(rec, "route", sp->route != NULL ? json_string(sp->route) : json_null());
	json_object_set_new(rec, "method", json_string("CONNECT"));
	json_object_set_new(rec, "path", json_string("/"));
	json_object_set_new(rec, "upstream", json_string(sp->upstream));
	json_object_set_new(rec, "duration_ms", json_integer((json_int_t)ms_since(&sp->ci->start)));
	if (reason != NULL)
		json_object_set_new(rec, "reason", json_string(reason));
	return rec;
}

/* Writes rec and frees it. 0 once written (fail closed otherwise). */
static int
audit(const struct splice *sp, json_t *rec)
{
	int r = TG_ERR_ALLOC;

	if (rec != NULL)
		r = tg_gate_audit(sp->ci->w->srv, rec, NULL);
	json_decref(rec);
	return r;
}

/*
 * The end: the "close" record when bytes flowed, everything freed. clean:
 * an orderly end, so the client gets a close_notify (its output is empty:
 * nothing is overtaken) and can tell the end from a cut connection.
 */
static void
splice_end(struct splice *sp, const char *reason, int clean)
{
	SSL *ssl;
	json_t *rec;

	if (sp->up != NULL && (rec = record(sp, "close", reason)) != NULL) {
		json_object_set_new(rec, "bytes_in", json_integer((json_int_t)sp->in));
		json_object_set_new(rec, "bytes_out", json_integer((json_int_t)sp->out));
		(void)audit(sp, rec);
	}
	if (sp->idle != NULL)
		event_free(sp->idle);
	if (sp->uc != NULL)
		tg_gate_upstream_release(sp->uc, 0);
	if (sp->cli != NULL) {
		ssl = bufferevent_openssl_get_ssl(sp->cli);
		if (clean && ssl != NULL &&
		    evbuffer_get_length(bufferevent_get_output(sp->cli)) == 0) {
			(void)SSL_shutdown(ssl);
			ERR_clear_error();
		}
		bufferevent_free(sp->cli);
	}
	tg_gate_snapshot_put(sp->sn);
	tg_gate_conn_done(sp->ci);
	free(sp);
}

/* Moves what from has read to to's output; pauses from when to is full. */
static void
pump(struct splice *sp, struct bufferevent *from, struct bufferevent *to, uint64_t *count)
{
	struct evbuffer *in = bufferevent_get_input(from), *out = bufferevent_get_output(to);
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return;
	*count += n;
	evbuffer_add_buffer(out, in);
	event_base_gettimeofday_cached(sp->ci->w->base, &sp->last);
	if (evbuffer_get_length(out) >= SPLICE_HIGH) {
		bufferevent_disable(from, EV_READ);
		/* to's write callback resumes from once half of it is sent */
		bufferevent_setwatermark(to, EV_WRITE, SPLICE_HIGH / 2, 0);
	}
}

/* Both directions done (or the upstream's answer delivered): the end. */
static int
maybe_done(struct splice *sp)
{
	if (sp->up_eof && evbuffer_get_length(bufferevent_get_output(sp->cli)) == 0) {
		splice_end(sp, sp->cli_eof ? "both sides closed" : "the upstream closed", 1);
		return 1;
	}
	return 0;
}

/* The client sent EOF and everything it sent reached the upstream: shut
 * the upstream's receiving side so it sees the end too. */
static void
maybe_shut_upstream(struct splice *sp)
{
	if (sp->cli_eof && !sp->up_shut &&
	    evbuffer_get_length(bufferevent_get_output(sp->up)) == 0) {
		sp->up_shut = 1;
		(void)shutdown(bufferevent_getfd(sp->up), SHUT_WR);
	}
}

static void
cli_read(struct bufferevent *bev, void *arg)
{
	struct splice *sp = arg;

	pump(sp, bev, sp->up, &sp->in);
}

static void
up_read(struct bufferevent *bev, void *arg)
{
	struct splice *sp = arg;

	pump(sp, bev, sp->cli, &sp->out);
}

/* The client's output drained (below the low watermark). */
static void
cli_write(struct bufferevent *bev, void *arg)
{
	struct splice *sp = arg;

	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (maybe_done(sp))
		return;
	if (!sp->up_eof)
		bufferevent_enable(sp->up, EV_READ);
}

/* The upstream's output drained. */
static void
up_write(struct bufferevent *bev, void *arg)
{
	struct splice *sp = arg;

	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (!sp->cli_eof)
		bufferevent_enable(sp->cli, EV_READ);
	maybe_shut_upstream(sp);
}

static void
cli_event(struct bufferevent *bev, short what, void *arg)
{
	struct splice *sp = arg;

	pump(sp, bev, sp->up, &sp->in);
	if (what & BEV_EVENT_ERROR) {
		splice_end(sp, "the client connection failed", 0);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		sp->cli_eof = 1;
		bufferevent_disable(bev, EV_READ);
		maybe_shut_upstream(sp);
		if (sp->up_eof)
			(void)maybe_done(sp);
	}
}

static void
up_event(struct bufferevent *bev, short what, void *arg)
{
	struct splice *sp = arg;

	pump(sp, bev, sp->cli, &sp->out);
	if (what & BEV_EVENT_ERROR) {
		tg_gate_metrics_upstream_error(tg_gate_server_metrics(sp->ci->w->srv), sp->upstream,
		                               "broken");
		splice_end(sp, "the upstream connection broke", 0);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		sp->up_eof = 1;
		bufferevent_disable(bev, EV_READ);
		(void)maybe_done(sp);
	}
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct splice *sp = arg;
	struct timeval now, d, left;

	(void)fd;
	(void)what;
	event_base_gettimeofday_cached(sp->ci->w->base, &now);
	evutil_timersub(&now, &sp->last, &d);
	if (d.tv_sec * 1000 + d.tv_usec / 1000 >= (long)sp->idle_ms) {
		splice_end(sp, "idle timeout", 1);
		return;
	}
	left.tv_sec = (time_t)(sp->idle_ms / 1000);
	left.tv_usec = (suseconds_t)(sp->idle_ms % 1000) * 1000;
	evutil_timersub(&left, &d, &left);
	evtimer_add(sp->idle, &left);
}

/* The upstream connection is there (or not): splice, or the error record. */
static void
connected(struct tg_gate_upstream_conn *uc, const char *kind, void *arg)
{
	struct splice *sp = arg;
	struct timeval tv;
	json_t *rec;

	tg_gate_snapshot_put(sp->sn);
	sp->sn = NULL;
	if (uc == NULL) {
		tg_gate_metrics_upstream_error(tg_gate_server_metrics(sp->ci->w->srv), sp->upstream,
		                               kind);
		if ((rec = record(sp, "upstream-error",
		                  tg_gate_upstream_reason(sp->ci->w->pool))) != NULL)
			json_object_set_new(rec, "kind", json_string(kind));
		(void)audit(sp, rec);
		splice_end(sp, NULL, 1);
		return;
	}
	sp->uc = uc;
	sp->up = tg_gate_upstream_bev(uc);
	tv.tv_sec = (time_t)(sp->idle_ms / 1000);
	tv.tv_usec = (suseconds_t)(sp->idle_ms % 1000) * 1000;
	if ((sp->idle = evtimer_new(sp->ci->w->base, idle_cb, sp)) == NULL ||
	    evtimer_add(sp->idle, &tv) != 0) {
		splice_end(sp, "out of memory", 0);
		return;
	}
	event_base_gettimeofday_cached(sp->ci->w->base, &sp->last);
	bufferevent_set_timeouts(sp->up, NULL, NULL);
	bufferevent_setwatermark(sp->cli, EV_READ, 0, SPLICE_HIGH);
	bufferevent_setwatermark(sp->up, EV_READ, 0, SPLICE_HIGH);
	bufferevent_setwatermark(sp->up, EV_WRITE, 0, 0);
	bufferevent_setcb(sp->cli, cli_read, cli_write, cli_event, sp);
	bufferevent_setcb(sp->up, up_read, up_write, up_event, sp);
	bufferevent_enable(sp->cli, EV_READ | EV_WRITE);
	bufferevent_enable(sp->up, EV_READ | EV_WRITE);
	/* bytes the client sent with its handshake */
	pump(sp, sp->cli, sp->up, &sp->in);
}

/* The decision "CONNECT /" and its record. 0: go on and connect. */
static int
decide(struct splice *sp)
{
	const struct tg_gate_lstate *ls = &sp->sn->ls[sp->ci->listener];
	const struct tg_prov *p = &sp->ci->peer.prov;
	struct tg_gate_peer peer;
	struct tg_gate_verdict v;
	const char *decision;
	json_t *rec;
	int r;

	memset(&peer, 0, sizeof(peer));
	peer.identity = sp->ci->peer.identity;
	peer.level = p->level;
	peer.pin = p->pin_policy;
	peer.touch = p->touch_policy;
	peer.serial = p->serial;
	(void)tg_gate_decide(&ls->policy, &peer, "CONNECT", "/", &v);
	if (v.route >= 0 && (size_t)v.route < ls->policy.nroutes)
		sp->route = ls->policy.routes[v.route].name;
	decision = v.allow ? "allow" : sp->sn->cfg.dry_run ? "dry-run" : "deny";
	if ((rec = record(sp, "connect", v.reason)) != NULL)
		json_object_set_new(rec, "decision", json_string(decision));
	r = audit(sp, rec);
	tg_gate_metrics_request(tg_gate_server_metrics(sp->ci->w->srv), sp->ci->listener_name,
	                        sp->route, decision, (double)ms_since(&sp->ci->start) / 1000.0);
	if (r != 0 || strcmp(decision, "deny") == 0)
		return -1;
	return 0;
}

void
tg_gate_tcp_serve(struct bufferevent *bev, struct tg_gate_conn_info *ci)
{
	struct splice *sp;
	const struct tg_gate_listener_cfg *l;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		bufferevent_free(bev);
		tg_gate_conn_done(ci);
		return;
	}
	sp->ci = ci;
	sp->cli = bev;
	sp->sn = tg_gate_snapshot_get(ci->w->srv);
	l = &sp->sn->cfg.listeners[ci->listener];
	sp->idle_ms = sp->sn->cfg.limits.idle_ms;
	snprintf(sp->upstream, sizeof(sp->upstream), "%s", l->upstream != NULL ? l->upstream : "");
	/* nothing is read from the client until the upstream is connected */
	bufferevent_disable(bev, EV_READ);
	if (decide(sp) != 0) {
		splice_end(sp, NULL, 1);
		return;
	}
	if (sp->route != NULL) {
		snprintf(sp->route_buf, sizeof(sp->route_buf), "%s", sp->route);
		sp->route = sp->route_buf;
	}
	if (tg_gate_upstream_get(ci->w->pool, sp->sn, &l->up, connected, sp) != 0) {
		(void)audit(sp, record(sp, "upstream-error", "out of memory"));
		splice_end(sp, NULL, 0);
	}
}
