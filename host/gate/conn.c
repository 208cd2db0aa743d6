/*
 * conn.c — one client connection of the gate (gate-int.h): accepted, the
 * connection limit applied, the TLS handshake driven on the raw
 * non-blocking socket by the worker's loop (readable/writable events, and
 * the async signing job's wait fds when the server key signs off the
 * loop), bounded by limits.handshake_ms; a refused handshake becomes a
 * "tls-reject" audit record; an accepted one becomes a TLS bufferevent
 * handed to the listener's mode.
 */
#include "gate-int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

/* A connection until its handshake is done. */
struct hs {
	struct tg_gate_conn_info *ci;
	enum tg_gate_mode mode;
	unsigned handshake_ms;
	evutil_socket_t fd;
	SSL *ssl;
	struct event *timer;
	struct tg_gate_hs_io io; /* readable, writable, signature ready, retry */
	int expired;             /* timed out while a signature was pending */
	unsigned fail_max;       /* limits.handshake_failures */
	unsigned fail_ms;        /* limits.handshake_failure_ms */
};

static void hs_step(void *arg);

void
tg_gate_conn_done(struct tg_gate_conn_info *ci)
{
	struct tg_gate_server *s;

	if (ci == NULL)
		return;
	s = ci->w->srv;
	tg_gate_metrics_conn_close(tg_gate_server_metrics(s));
	tg_gate_server_conn_leave(s);
	json_decref(ci->audit_fields);
	tg_gate_audit_pre_free(ci->audit_pre);
	free(ci);
}

/* "192.0.2.1:50123", "[2001:db8::1]:50123" or "unix". */
static void
peer_name(const struct sockaddr *sa, int salen, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	snprintf(out, cap, "unix");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET && (size_t)salen >= sizeof(*in4) &&
	    evutil_inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host)) != NULL)
		snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(in4->sin_port));
	else if (sa->sa_family == AF_INET6 && (size_t)salen >= sizeof(*in6) &&
	         evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL)
		snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
}

/* Frees the handshake state; with close, also the SSL, the socket and ci. */
static void
hs_free(struct hs *h, int close)
{
	tg_gate_hs_io_free(&h->io);
	if (h->timer != NULL)
		event_free(h->timer);
	if (close) {
		SSL_free(h->ssl);
		if (h->fd >= 0)
			evutil_closesocket(h->fd);
		tg_gate_conn_done(h->ci);
	}
	free(h);
}

static uint64_t
ms_of(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000u + (uint64_t)t->tv_nsec / 1000000u;
}

/*
 * One more failed handshake of ci's source; when it blocks the source, a
 * "source-blocked" record and a line on the gate's log say so (once per
 * block: the connections refused during it are counted in
 * tokengate_connections_refused_total{reason="handshake-failures"}, not
 * recorded one by one, so a flood cannot fill the log).
 */
static void
hs_count_failure(struct hs *h, const struct timespec *now)
{
	struct tg_gate_conn_info *ci = h->ci;
	struct tg_gate_server *s = ci->w->srv;
	char src[64];
	uint64_t until = 0;
	unsigned failures = 0;
	json_t *rec;

	if (ci->has_src && tg_gate_ratelimit_fail(tg_gate_server_ratelimit(s), &ci->src, ms_of(now),
	                                          h->fail_max, h->fail_ms, &failures, &until)) {
		tg_gate_src_str(&ci->src, src, sizeof(src));
		tg_gate_server_log(
		    "listener '%s': %u failed TLS handshakes from %s within %u ms; "
		    "its connections are refused for %u ms (limits.handshake_failures, "
		    "limits.handshake_failure_ms)",
		    ci->listener_name, failures, src, h->fail_ms, h->fail_ms);
		if ((rec = tg_gate_audit_record(ci, "source-blocked")) != NULL) {
			json_object_set_new(rec, "source", json_string(src));
			json_object_set_new(rec, "failures", json_integer((json_int_t)failures));
			json_object_set_new(rec, "window_ms", json_integer((json_int_t)h->fail_ms));
			json_object_set_new(rec, "blocked_ms",
			                    json_integer((json_int_t)(until - ms_of(now))));
			/* a failed write is logged and counted by tg_gate_audit */
			(void)tg_gate_audit(s, rec, NULL);
			json_decref(rec);
		}
	}
}

/* The handshake failed: one "tls-reject" record, counted (also against its
 * source once the client began it, unless count is 0: the gate's own
 * failure), closed. */
static void
hs_fail_counted(struct hs *h, const char *reason, int count)
{
	struct tg_gate_server *s = h->ci->w->srv;
	struct timespec now;
	json_t *rec;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((rec = tg_gate_audit_record(h->ci, "tls-reject")) != NULL) {
		json_object_set_new(rec, "reason", json_string(reason));
		json_object_set_new(
		    rec, "duration_ms",
		    json_integer((json_int_t)((now.tv_sec - h->ci->start.tv_sec) * 1000 +
		                              (now.tv_nsec - h->ci->start.tv_nsec) / 1000000)));
		/* nothing is let through either way: a failed write is already
		 * logged and counted by tg_gate_audit */
		(void)tg_gate_audit(s, rec, NULL);
		json_decref(rec);
	}
	tg_gate_metrics_handshake(tg_gate_server_metrics(s), 0, 0);
	/* Only a handshake the client began counts against its source: a
	 * connection closed, or left silent, before its ClientHello (a port
	 * check, a load balancer's probe) guesses no credential. */
	if (count && SSL_get_state(h->ssl) != TLS_ST_BEFORE)
		hs_count_failure(h, &now);
	ERR_clear_error();
	hs_free(h, 1);
}

static void
hs_fail(struct hs *h, const char *reason)
{
	hs_fail_counted(h, reason, 1);
}

/* A failure of the gate's own (out of memory): not the client's doing. */
static void
hs_fail_own(struct hs *h, const char *reason)
{
	hs_fail_counted(h, reason, 0);
}

/* The handshake is done: the verified peer, then the listener's mode. */
static void
hs_done(struct hs *h)
{
	struct tg_gate_conn_info *ci = h->ci;
	struct bufferevent *bev;
	evutil_socket_t fd = h->fd;
	SSL *ssl = h->ssl;

	if (tg_gate_tls_peer(ssl, &ci->peer, &ci->resumed) != 0) {
		hs_fail(h, "the handshake ended without a verified client certificate");
		return;
	}
	tg_gate_metrics_handshake(tg_gate_server_metrics(ci->w->srv), 1, ci->resumed);
	/* No private-key operation follows the handshake (no renegotiation),
	 * so reads and writes need no async jobs. */
	SSL_clear_mode(ssl, SSL_MODE_ASYNC);
	bev = bufferevent_openssl_socket_new(ci->w->base, fd, ssl, BUFFEREVENT_SSL_OPEN,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		hs_fail_own(h, "out of memory after the handshake");
		return;
	}
	/* the bufferevent owns the SSL and the socket now */
	h->ssl = NULL;
	h->fd = -1;
	h->ci = NULL;
	/* a client that closes without close_notify is EOF, not an error */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if (h->mode == TG_GATE_MODE_TCP)
		tg_gate_tcp_serve(bev, ci);
	else
		tg_gate_http_serve(bev, ci);
	hs_free(h, 0);
}

static void
hs_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hs *h = arg;
	char why[96];

	(void)fd;
	(void)what;
	/* A paused signing job cannot be abandoned: it finishes first. */
	if (h->io.aw.n > 0) {
		h->expired = 1;
		return;
	}
	snprintf(why, sizeof(why), "the TLS handshake did not finish within %u ms",
	         h->handshake_ms);
	hs_fail(h, why);
}

static void
hs_step(void *arg)
{
	struct hs *h = arg;
	char why[96];
	int rc, e;

	ERR_clear_error();
	rc = SSL_do_handshake(h->ssl);
	e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(h->ssl, rc);
	if (h->expired && e != SSL_ERROR_WANT_ASYNC) {
		snprintf(why, sizeof(why), "the TLS handshake did not finish within %u ms",
		         h->handshake_ms);
		hs_fail(h, why);
		return;
	}
	if (e == SSL_ERROR_NONE)
		hs_done(h);
	else if ((rc = tg_gate_hs_io_wait(&h->io, e)) > 0)
		hs_fail(h, tg_gate_tls_reject_reason(h->ssl));
	else if (rc < 0)
		hs_fail_own(h, "out of memory during the TLS handshake");
}

void
tg_gate_conn_accept(struct tg_gate_worker *w, size_t listener, evutil_socket_t fd,
                    const struct sockaddr *sa, int salen)
{
	struct tg_gate_server *s = w->srv;
	struct tg_gate_metrics *m = tg_gate_server_metrics(s);
	struct tg_gate_snapshot *sn = NULL;
	struct tg_gate_conn_info *ci = NULL;
	struct hs *h = NULL;
	struct timespec now;
	struct timeval tv;
	struct tg_gate_src src = {{0}};
	int one = 1, has_src;

	sn = tg_gate_snapshot_get(s);
	/* authz listeners (nginx on loopback or a unix socket) have no
	 * handshake: neither counted nor limited */
	has_src = sn->cfg.listeners[listener].mode != TG_GATE_MODE_AUTHZ &&
	          tg_gate_src_of(sa, salen, &src);
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* a source that failed too many handshakes: closed before any work */
	if (has_src && tg_gate_ratelimit_blocked(tg_gate_server_ratelimit(s), &src, ms_of(&now))) {
		tg_gate_metrics_conn_refused(m, "handshake-failures");
		evutil_closesocket(fd);
		goto out;
	}
	if (!tg_gate_server_conn_enter(s)) {
		tg_gate_metrics_conn_refused(m, "limit");
		evutil_closesocket(fd);
		goto out;
	}
	if ((ci = calloc(1, sizeof(*ci))) == NULL) {
		tg_gate_metrics_conn_refused(m, "memory");
		tg_gate_server_conn_leave(s);
		evutil_closesocket(fd);
		goto out;
	}
	ci->w = w;
	ci->listener = listener;
	snprintf(ci->listener_name, sizeof(ci->listener_name), "%s",
	         sn->cfg.listeners[listener].name);
	peer_name(sa, salen, ci->peer_addr, sizeof(ci->peer_addr));
	ci->src = src;
	ci->has_src = has_src;
	ci->start = now;
	tg_gate_metrics_conn_open(m, ci->listener_name);
	if (sn->cfg.listeners[listener].mode == TG_GATE_MODE_AUTHZ) {
		tg_gate_authz_serve(fd, ci); /* plain HTTP from nginx: no handshake */
		goto out;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		evutil_closesocket(fd);
		tg_gate_conn_done(ci);
		goto out;
	}
	h->ci = ci;
	h->fd = fd;
	h->mode = sn->cfg.listeners[listener].mode;
	h->handshake_ms = sn->cfg.limits.handshake_ms;
	h->fail_max = sn->cfg.limits.handshake_failures;
	h->fail_ms = sn->cfg.limits.handshake_failure_ms;
	if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	tv.tv_sec = (time_t)(h->handshake_ms / 1000);
	tv.tv_usec = (suseconds_t)(h->handshake_ms % 1000) * 1000;
	if ((h->ssl = tg_gate_tls_ssl_new(sn->tls)) == NULL || SSL_set_fd(h->ssl, (int)fd) != 1 ||
	    tg_gate_hs_io_init(&h->io, h->ssl, fd, w->base, hs_step, h) != 0 ||
	    (h->timer = evtimer_new(w->base, hs_timeout_cb, h)) == NULL ||
	    evtimer_add(h->timer, &tv) != 0 || event_add(h->io.rd, NULL) != 0) {
		hs_fail_own(h, "out of memory before the TLS handshake");
		goto out;
	}
	/*
	 * http: the handshake reads ahead too (a flight of records in one
	 * read(2), not a header read and a body read per record); bytes read
	 * past the client's Finished stay in the SSL, where the http mode
	 * pulls them (proxy.c px_pull). tcp reads no further than each record.
	 */
	if (h->mode == TG_GATE_MODE_HTTP)
		SSL_set_read_ahead(h->ssl, 1);
out:
	tg_gate_snapshot_put(sn);
}
