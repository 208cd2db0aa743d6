/*
 * gate-int.h — inside the `tokengate gate` server: what its modules share.
 * Not a public header (not in the area's include directory).
 *
 *   cmd_gate.c   the command: arguments (tg_gate_config.h), --check, start
 *   server.c     the process: worker threads (one event_base each, a
 *                SO_REUSEPORT listener per worker and listener), signals
 *                (SIGHUP reload, SIGTERM/SIGINT drain and stop), the
 *                current snapshot, the audit log (one writer, a mutex,
 *                batch fsync timer, fail closed), the admin listener
 *   conn.c       a client connection: accept, limits, the TLS handshake on
 *                the raw socket (WANT_READ/WRITE/ASYNC, handshake timeout),
 *                the TLS rejection record, then the mode: tcp.c, or
 *                tg_gate_http_serve (proxy.c) on a bufferevent_openssl made
 *                with BUFFEREVENT_SSL_OPEN
 *   tcp.c        tcp mode: decision "CONNECT /", then bytes both ways
 *   proxy.c      http mode: requests read with tg_gate_http.h, normalized,
 *                decided, audited, forwarded; responses streamed back
 *   upstream.c   upstream connections per worker: http, https (verified
 *                against upstream_ca), unix; an idle keep-alive pool
 */
#ifndef TG_GATE_INT_H
#define TG_GATE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "tg_err.h"
#include "tg_gate_config.h"
#include "tg_gate_decide.h"
#include "tg_gate_metrics.h"
#include "tg_gate_policy.h"
#include "tg_gate_secret.h"
#include "tg_gate_tls.h"
#include "tg_gate_verify.h"

struct tg_gate_server;
struct tg_gate_upstream_pool; /* upstream.c, one per worker */

/* One listener's loaded state within a snapshot. */
struct tg_gate_lstate {
	const struct tg_gate_listener_cfg *cfg; /* points into the snapshot's config */
	struct tg_gate_policy policy;
	struct tg_gate_secrets *secrets;
	struct tg_gate_url *upstreams; /* policy.upstreams parsed, same indexes */
};

/*
 * Everything a configuration load produced, immutable once published.
 * Reference counted: a request takes the current one (tg_gate_snapshot_get)
 * and puts it back when it is done; SIGHUP publishes a new one.
 */
struct tg_gate_snapshot {
	struct tg_gate_config cfg;
	struct tg_gate_lstate *ls; /* cfg.nlisteners */
	struct tg_gate_tls *tls;   /* NULL when every listener is authz */
	SSL_CTX *upstream_ctx;     /* client context for https:// upstreams */
	unsigned long generation;  /* 1, 2, ... per successful load */
};

struct tg_gate_snapshot *tg_gate_snapshot_get(struct tg_gate_server *s);
void tg_gate_snapshot_put(struct tg_gate_snapshot *snap);

struct tg_gate_worker {
	struct tg_gate_server *srv;
	unsigned id;
	struct event_base *base;
	struct tg_gate_upstream_pool *pool;
};

/* One established client connection, as handed to a mode. */
struct tg_gate_conn_info {
	struct tg_gate_worker *w;
	size_t listener; /* index into the snapshot's listeners */
	char listener_name[TG_GATE_NAME_MAX + 1];
	char peer_addr[64]; /* "192.0.2.1:50123" or "unix" */
	struct tg_gate_peer_info peer;
	int resumed;
	struct timespec start; /* CLOCK_MONOTONIC at accept */
	json_t *audit_fields;  /* tg_gate_audit_conn_ready's, or NULL */
};

/*
 * Audit: writes rec (not stolen) as one line; thread-safe. 0 once written
 * (per the fsync mode); on failure the caller refuses what it was about to
 * do (fail closed) — the server has already logged the reason, counted
 * it, and marked itself not ready until a write succeeds again.
 */
int tg_gate_audit(struct tg_gate_server *s, const json_t *rec, struct tg_error *err);

/*
 * A new audit record with the fields every record of ci has: event,
 * listener, peer, identity, provenance {level, pin, touch, serial},
 * resumed. The caller adds the rest (route, method, path, status, bytes,
 * duration_ms, reason) and json_decref's it. NULL on OOM.
 */
json_t *tg_gate_audit_record(const struct tg_gate_conn_info *ci, const char *event);

/*
 * Once ci's peer is known (after the handshake; http mode: at its first
 * record, so idle connections hold none): builds those fields once
 * for every later tg_gate_audit_record of ci (each then a shallow copy;
 * on OOM each builds them again). tg_gate_conn_done frees them.
 */
void tg_gate_audit_conn_ready(struct tg_gate_conn_info *ci);

struct tg_gate_metrics *tg_gate_server_metrics(struct tg_gate_server *s);

/* 1 while the server drains for a stop (modes then close idle keep-alive). */
int tg_gate_server_stopping(struct tg_gate_server *s);

/* A mode is done with ci: counts the connection closed and frees ci. */
void tg_gate_conn_done(struct tg_gate_conn_info *ci);

/*
 * server.c, for cmd_gate.c. --check: builds a whole snapshot from *cfg
 * (taken: *cfg is cleared) as a start would — policies, secrets, server
 * certificate and key, CRL, ticket keys, the upstream TLS context — and
 * prints a one-paragraph summary on out. 0, or the first error in err.
 */
int tg_gate_server_check(struct tg_gate_config *cfg, FILE *out, struct tg_error *err);

/*
 * Runs the gate from *cfg (taken) until SIGTERM or SIGINT, then stops
 * accepting, lets open connections finish for a few seconds and returns 0.
 * argc/argv are the command's arguments: SIGHUP parses them again
 * (tg_gate_config_from_args) to reload. Returns the error that stopped
 * the start (nothing listens then).
 */
int tg_gate_server_run(struct tg_gate_config *cfg, int argc, char **argv, struct tg_error *err);

/*
 * server.c, for conn.c: counts a new client connection; 0 when the gate
 * already holds limits.max_conns of them (the caller refuses it), else 1
 * and the caller calls tg_gate_server_conn_leave once it is closed.
 */
int tg_gate_server_conn_enter(struct tg_gate_server *s);
void tg_gate_server_conn_leave(struct tg_gate_server *s);

/*
 * conn.c, for server.c: a socket accepted on worker w for the snapshot's
 * listener index listener (sa: the peer's address). Takes fd: limits,
 * handshake, then the listener's mode; never blocks.
 */
void tg_gate_conn_accept(struct tg_gate_worker *w, size_t listener, evutil_socket_t fd,
                         const struct sockaddr *sa, int salen);

/* proxy.c: serve HTTP/1.1 on bev (an established TLS bufferevent with
 * BEV_OPT_CLOSE_ON_FREE); frees bev and calls tg_gate_conn_done at the end. */
void tg_gate_http_serve(struct bufferevent *bev, struct tg_gate_conn_info *ci);

/* tcp.c: decide and splice; same ownership as tg_gate_http_serve. */
void tg_gate_tcp_serve(struct bufferevent *bev, struct tg_gate_conn_info *ci);

/* upstream.c */
struct tg_gate_upstream_conn; /* one connection to an upstream */

/* Connected (or failed) callback: uc NULL with kind "refused"/"timeout". */
typedef void (*tg_gate_upstream_cb)(struct tg_gate_upstream_conn *uc, const char *kind, void *arg);

int tg_gate_upstream_pool_new(struct tg_gate_worker *w, struct tg_gate_upstream_pool **out);
void tg_gate_upstream_pool_free(struct tg_gate_upstream_pool *p);

/*
 * An idle pooled connection to url when one is alive, else a new one
 * (connect timeout limits.upstream_connect_ms; https verified against the
 * snapshot's upstream_ctx and the URL's host). cb runs from the loop, never
 * from inside this call.
 */
int tg_gate_upstream_get(struct tg_gate_upstream_pool *p, const struct tg_gate_snapshot *snap,
                         const struct tg_gate_url *url, tg_gate_upstream_cb cb, void *arg);
/*
 * tg_gate_upstream_get with flags: TG_GATE_UP_NEW never takes a pooled
 * connection (a retry); TG_GATE_UP_RETRYABLE: the caller retries a
 * request on a new connection when a pooled one turns out closed, so the
 * pooled one is not probed first (a recv(MSG_PEEK) per request saved).
 */
#define TG_GATE_UP_NEW       1u
#define TG_GATE_UP_RETRYABLE 2u
int tg_gate_upstream_get_ex(struct tg_gate_upstream_pool *p, const struct tg_gate_snapshot *snap,
                            const struct tg_gate_url *url, unsigned flags, tg_gate_upstream_cb cb,
                            void *arg);
/* 1 when uc came from the pool (it was used for an earlier request). */
int tg_gate_upstream_reused(const struct tg_gate_upstream_conn *uc);
struct bufferevent *tg_gate_upstream_bev(struct tg_gate_upstream_conn *uc);
/*
 * Sends data (not changed: a retry may send it again) on uc: written at
 * once on a plain socket whose output is empty, what is left queued on the
 * bufferevent (written when it has EV_WRITE enabled). 0, or -1 out of
 * memory.
 */
int tg_gate_upstream_send(struct tg_gate_upstream_conn *uc, struct evbuffer *data);
/* Back to the pool (reusable: the response ended and keep-alive holds) or closed. */
void tg_gate_upstream_release(struct tg_gate_upstream_conn *uc, int reusable);
/*
 * Why the last connection of p failed ("cannot connect to the upstream:
 * Connection refused", a TLS verification failure, ...): valid inside a
 * failure callback, for the audit record and the log. Never a secret.
 */
const char *tg_gate_upstream_reason(const struct tg_gate_upstream_pool *p);

#endif /* TG_GATE_INT_H */
