/*
 * agent-int.h — inside `tokengate agent`: what its modules share. Not a
 * public header.
 *
 *   cmd_agent.c  the command: arguments (tg_agent_config.h), --check, start
 *   server.c     the process: one event loop, the listeners (loopback TCP or
 *                unix sockets 0600), the token keys (tg_tlskey.h) and their
 *                presence events, signals, the admin listener and metrics
 *   upstream.c   mutual-TLS connections to the gate: non-blocking connect,
 *                the handshake on the raw socket (WANT_READ/WRITE/ASYNC: the
 *                token signs off the loop), the gate's identity check, TLS
 *                1.3 resumption from the last ticket, an idle keep-alive
 *                pool; one full handshake at a time per upstream while no
 *                session is known, so a burst costs one signature
 *   http.c       http mode: requests read with the gate's strict reader
 *                (tg_gate_http.h) and forwarded over pooled connections,
 *                bodies streamed both ways, WebSocket spliced after 101
 *   tcp.c        tcp mode, and the splice both modes use
 *   resolve.c    the gate's host name looked up off the loop (getaddrinfo
 *                on a thread per lookup)
 *
 * Everything runs on the one loop; only the token's signatures run on
 * tg_tlskey's threads, and the gate's name lookups on resolve.c's.
 */
#ifndef TG_AGENT_INT_H
#define TG_AGENT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "tg_agent_config.h"
#include "tg_err.h"
#include "tg_tlskey.h"

#define AG_HIGH    (256u * 1024u) /* backpressure: a side is not read above this */
#define AG_IO_MAX  (64 * 1024)
#define AG_POOL    32u    /* idle upstream connections kept per upstream */
#define AG_IDLE_MS 55000u /* an idle pooled connection is closed after this */
#define AG_CONN_MS 10000u /* connect + handshake */

struct ag_server;
struct ag_up;
struct ag_uconn;

/* A token key shared by the listeners that name the same key and cert. */
struct ag_key {
	struct ag_server *srv;
	struct tg_tlskey *k;
	char *uri; /* as configured (may hold pin-value: never logged) */
	char *cert;
	struct event *ev; /* presence events */
	int present;
	char absent_why[512]; /* the one-line reason while absent */
};

/* A client connection, for closing them all when the token leaves. */
struct ag_client {
	struct ag_client *prev, *next;
	struct ag_listener *l;
	void (*kill)(struct ag_client *c); /* close now (from the loop) */
};

struct ag_listener {
	struct ag_server *srv;
	const struct tg_agent_listener_cfg *cfg;
	struct evconnlistener *lev;
	struct ag_up *up;
	struct ag_client *clients;
	uint64_t requests, refused, failed;
};

struct ag_metrics {
	uint64_t handshakes_ok, handshakes_failed, resumptions, upstream_open, clients_open;
};

struct ag_server {
	struct event_base *base;
	struct tg_agent_config *cfg;
	struct ag_listener *ls;
	size_t nls;
	struct ag_key **keys;
	size_t nkeys;
	struct ag_metrics m;
	struct event *sigterm, *sigint;
	struct evhttp *admin;
	int stopping;
};

/* ---- resolve.c ---- */

#define AG_ADDRS_MAX 8u /* addresses of the gate's name kept */

/* The addresses a lookup gave, in the resolver's order; shared by the
 * connections trying them (refs), on the loop only. */
struct ag_addrs {
	int refs;
	unsigned n; /* 1 to AG_ADDRS_MAX */
	struct sockaddr_storage sa[AG_ADDRS_MAX];
	socklen_t salen[AG_ADDRS_MAX];
};
void ag_addrs_unref(struct ag_addrs *a); /* NULL is accepted */

/*
 * host:port looked up now, blocking (getaddrinfo, AI_ADDRCONFIG): the
 * addresses (refs 1), or NULL with *rc the EAI_ code (EAI_NODATA: none
 * usable). For the start, before the loop runs.
 */
struct ag_addrs *ag_resolve_now(const char *host, const char *port, int *rc);

/*
 * The gate's host name looked up off the loop: each ag_resolver_start runs
 * ag_resolve_now on a thread of its own (detached), and cb(arg) runs from
 * the loop when it is done; ag_resolver_take then gives its outcome.
 */
struct ag_resolver;
typedef void (*ag_resolved_cb)(void *arg);
int ag_resolver_new(struct event_base *base, const char *host, const char *port, ag_resolved_cb cb,
                    void *arg, struct ag_resolver **out, struct tg_error *err);
/* Starts a lookup unless one runs (ag_resolver_busy). 0, or -1: no thread. */
int ag_resolver_start(struct ag_resolver *r);
int ag_resolver_busy(const struct ag_resolver *r);
/* The finished lookup's addresses (the caller's reference; NULL: none,
 * *rc says why). Once per lookup, after its cb. */
struct ag_addrs *ag_resolver_take(struct ag_resolver *r, int *rc);
/* Frees r (NULL accepted); a lookup still running ends on its own thread
 * and its outcome is dropped. */
void ag_resolver_free(struct ag_resolver *r);

/* ---- upstream.c ---- */

/* Made for listener l (its CA, key, identity); 0 or the error. */
int ag_up_new(struct ag_server *s, const struct tg_agent_listener_cfg *cfg, struct ag_key *key,
              struct ag_up **out, struct tg_error *err);
void ag_up_free(struct ag_up *u);
/* NULL when the gate's host name resolved at the start (or is an IP
 * address), else why not (the agent runs anyway; --check fails). */
const char *ag_up_unresolved(const struct ag_up *u);

/*
 * The callback of ag_up_get: uc the connection (a TLS bufferevent from
 * ag_uconn_bev), or NULL and why (one line) when it failed.
 */
typedef void (*ag_up_cb)(struct ag_uconn *uc, const char *why, void *arg);

/*
 * A connection to the gate: an idle pooled one when pooled and one is
 * alive, else a new one (resumed when a session is known). cb runs from
 * the loop, never inside this call. Returns a handle for ag_up_cancel, or
 * NULL when out of memory.
 */
struct ag_up_req *ag_up_get(struct ag_up *u, int pooled, ag_up_cb cb, void *arg);
/* Drops a request whose callback has not run (its connection is closed). */
void ag_up_cancel(struct ag_up_req *r);

struct bufferevent *ag_uconn_bev(struct ag_uconn *uc);
/* 1 when uc came from the pool: the gate may have closed it as idle just
 * as a request went out (http.c sends a retryable request again). */
int ag_uconn_reused(const struct ag_uconn *uc);
/*
 * Sends len bytes on uc, as bufferevent_write on its bufferevent would:
 * when nothing is waiting in its output, with one SSL_write at once (no
 * write event added and deleted, two epoll_ctl(2) fewer); what the socket
 * does not take yet goes to the output, for the bufferevent to finish.
 * 0, or -1 when out of memory.
 */
int ag_uconn_write(struct ag_uconn *uc, const void *data, size_t len);
/* Back to the pool (reusable) or closed. */
void ag_uconn_release(struct ag_uconn *uc, int reusable);

/* The key u signs with. */
struct ag_key *ag_up_key(const struct ag_up *u);

/* The token left: every connection of u closed, requests failed, session dropped. */
void ag_up_flush(struct ag_up *u, const char *why);

/* ---- server.c ---- */

/* --check: loads keys, certificates and CAs (no socket), prints a summary. */
int tg_agent_check(struct tg_agent_config *cfg, FILE *out, struct tg_error *err);
/* Runs until SIGTERM/SIGINT; the error that stopped the start. */
int tg_agent_run(struct tg_agent_config *cfg, struct tg_error *err);

void ag_client_add(struct ag_listener *l, struct ag_client *c);
void ag_client_del(struct ag_client *c);
/* NULL while the listener's key is present, else the one-line reason. */
const char *ag_listener_absent(const struct ag_listener *l);

/* ---- http.c, tcp.c: take fd ---- */
void ag_http_serve(struct ag_listener *l, evutil_socket_t fd);
void ag_tcp_serve(struct ag_listener *l, evutil_socket_t fd);

/*
 * Splice: bytes both ways between a and b until either side ends (EOF is
 * passed on after what is pending, then both close). Takes both
 * bufferevents (freed at the end), the upstream connection uc (closed at
 * the end) and c (done called at the end, from the loop).
 */
struct ag_splice;
struct ag_splice *ag_splice_start(struct bufferevent *a, struct ag_uconn *uc,
                                  void (*done)(void *arg), void *arg);
/* Ends it now (both sides closed, done called). */
void ag_splice_kill(struct ag_splice *sp);
/*
 * tcp mode: closes sp (as ag_splice_kill, after a close_notify to the gate
 * and a log line naming the listener lname, kept by the caller) once no
 * byte was read on either side for idle_ms. 0, or -1 (out of memory: the
 * caller kills sp).
 */
int ag_splice_idle(struct ag_splice *sp, unsigned idle_ms, const char *lname);

#endif /* TG_AGENT_INT_H */
