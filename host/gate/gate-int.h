/*
 * gate-int.h — inside the `tokengate gate` server: what its modules share.
 * Not a public header (not in the area's include directory).
 *
 *   cmd_gate.c   the command: arguments (tg_gate_config.h), --check, start
 *   server.c     the process: worker threads (one event_base each; every
 *                listener's one socket shared by all their loops), signals
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
 *   authz.c      authz mode: nginx auth_request subrequests on plain
 *                HTTP/1.1 (unix socket or loopback), the client certificate
 *                from a header verified by the gate itself, a per-worker
 *                cache of verdicts, the same decision and audit
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

#include "tg_audit.h"
#include "tg_err.h"
#include "tg_gate_config.h"
#include "tg_gate_decide.h"
#include "tg_gate_http.h"
#include "tg_gate_metrics.h"
#include "tg_gate_path.h"
#include "tg_gate_policy.h"
#include "tg_gate_ratelimit.h"
#include "tg_gate_secret.h"
#include "tg_gate_tls.h"
#include "tg_gate_verify.h"

struct tg_gate_server;
struct tg_gate_upstream_pool; /* upstream.c, one per worker */
struct tg_gate_authz_cache;   /* authz.c, one per worker */
struct tg_gate_audit_pre;     /* server.c: a connection's audit fields as JSON text */

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
	struct tg_gate_lstate *ls;     /* cfg.nlisteners */
	struct tg_gate_tls *tls;       /* NULL when every listener is authz */
	SSL_CTX *upstream_ctx;         /* client context for https:// upstreams */
	struct tg_gate_verify *verify; /* authz listeners' verifier; NULL without one */
	unsigned long generation;      /* 1, 2, ... per successful load */
};

struct tg_gate_snapshot *tg_gate_snapshot_get(struct tg_gate_server *s);
void tg_gate_snapshot_put(struct tg_gate_snapshot *snap);

/*
 * A request whose "request" record was kept, not yet written
 * (tg_gate_audit_fields_wait): it must not be forwarded before that
 * record is written. Zeroed: nothing pending (TG_GATE_AUDIT_NONE).
 */
enum tg_gate_audit_wait_state {
	TG_GATE_AUDIT_NONE = 0, /* no record kept for it */
	TG_GATE_AUDIT_PENDING,  /* kept, in its worker's list */
	TG_GATE_AUDIT_WRITTEN,  /* written with the worker's kept records */
	TG_GATE_AUDIT_FAILED,   /* lost with a write that failed */
};
struct tg_gate_audit_wait {
	struct tg_gate_audit_wait *next, **pprev; /* in the worker's list while pending */
	enum tg_gate_audit_wait_state state;
};

struct tg_gate_worker {
	struct tg_gate_server *srv;
	unsigned id;
	struct event_base *base;
	struct tg_gate_upstream_pool *pool;
	struct tg_gate_authz_cache *authz; /* made on first use; freed with the worker */
	struct tg_audit_line audit_line;   /* tg_gate_audit_fields', reused line after line */
	struct tg_audit_line audit_kept;   /* tg_gate_audit_fields_later's lines, not yet written */
	struct event *audit_flush;         /* writes audit_kept once the loop has nothing else */
	struct tg_gate_audit_wait *audit_waits; /* requests whose records audit_kept holds */
};

/* One established client connection, as handed to a mode. */
struct tg_gate_conn_info {
	struct tg_gate_worker *w;
	size_t listener; /* index into the snapshot's listeners */
	char listener_name[TG_GATE_NAME_MAX + 1];
	char peer_addr[64];     /* "192.0.2.1:50123" or "unix" */
	struct tg_gate_src src; /* the peer's source (tg_gate_ratelimit.h) */
	int has_src;            /* 0: a unix-socket peer, never limited */
	struct tg_gate_peer_info peer;
	int resumed;
	struct timespec start;               /* CLOCK_MONOTONIC at accept */
	json_t *audit_fields;                /* tg_gate_audit_conn_ready's, or NULL */
	struct tg_gate_audit_pre *audit_pre; /* the same fields as JSON text, or NULL */
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
 * tg_gate_audit of the record tg_gate_audit_record(ci, event) would make
 * with the n fields f added (tg_audit_prepare_fields: the same line, byte
 * for byte, without building JSON objects; f must not repeat a field of
 * ci's nor "event"). event NULL: f holds the "event" field (e.g. as
 * TG_AUDIT_TEXT). On the thread of ci's worker only (its line buffer
 * is reused). Results and errors as tg_gate_audit's.
 */
int tg_gate_audit_fields(const struct tg_gate_conn_info *ci, const char *event,
                         const struct tg_audit_field *f, size_t n, struct tg_error *err);

/*
 * tg_gate_audit_fields for a record nothing waits on (http mode's
 * "response" records): its line is made now and kept by ci's worker, then
 * written in the same write(2) as the worker's next tg_gate_audit_fields
 * record (so a "request" record is never written before the kept records
 * made before it), or by the worker's flush event as soon as its loop has
 * no other event to run (TG_GATE_AUDIT_KEPT_MAX bytes kept: at once), or
 * when the worker stops. Saves a write(2) per request under load; a
 * record kept when the process is killed (SIGKILL) is lost, never a
 * "request" record. 0 once kept (or written), -1 when the line could not
 * be made or the write failed (the server has logged and counted it).
 */
int tg_gate_audit_fields_later(const struct tg_gate_conn_info *ci, const char *event,
                               const struct tg_audit_field *f, size_t n);

/*
 * tg_gate_audit_fields_later for a record something waits on (http mode's
 * "request" record of a request to forward): kept as a "response" record
 * is, with wt (zeroed, or settled) linked into the worker's list as
 * TG_GATE_AUDIT_PENDING; every write of the worker's kept records settles
 * the list (TG_GATE_AUDIT_WRITTEN, or _FAILED when that write failed).
 * The request is forwarded only after tg_gate_audit_wait_done: the
 * requests a worker decides in one pass of its loop share one write(2).
 * wt stays where it is until settled or cancelled. 0, or -1 as
 * tg_gate_audit_fields_later (wt then not pending). wt NULL: nothing
 * waits (tg_gate_audit_fields_later).
 */
int tg_gate_audit_fields_wait(const struct tg_gate_conn_info *ci, const char *event,
                              const struct tg_audit_field *f, size_t n,
                              struct tg_gate_audit_wait *wt);

/*
 * Before forwarding the request of wt: writes the worker's kept records
 * now if wt's is among them. 0 when wt's record is written (or none was
 * kept: TG_GATE_AUDIT_NONE), -1 when it is lost (the write failed; the
 * server has logged and counted it): the request must be refused.
 */
int tg_gate_audit_wait_done(struct tg_gate_worker *w, struct tg_gate_audit_wait *wt);

/* wt's request ends before its record was written: out of the list (the
 * record stays kept and is written with the others). */
void tg_gate_audit_wait_cancel(struct tg_gate_audit_wait *wt);
#define TG_GATE_AUDIT_KEPT_MAX (32u * 1024u)

/*
 * Once ci's peer is known (after the handshake; http mode: at its first
 * record, so idle connections hold none): builds those fields once
 * for every later tg_gate_audit_record of ci (each then a shallow copy;
 * on OOM each builds them again), and their JSON text (audit_pre) for
 * tg_gate_audit_fields. tg_gate_conn_done frees them.
 */
void tg_gate_audit_conn_ready(struct tg_gate_conn_info *ci);

/* Frees a connection's audit_pre (tg_gate_conn_done); NULL is accepted. */
void tg_gate_audit_pre_free(struct tg_gate_audit_pre *p);

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

/* server.c, for conn.c: the failed handshakes per source (one per gate,
 * shared by the workers; lives as long as the server). */
struct tg_gate_ratelimit *tg_gate_server_ratelimit(struct tg_gate_server *s);

/* server.c: one line "tokengate gate: ..." on the gate's log (stderr),
 * from any thread. */
void tg_gate_server_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* The pool's connections write with libevent (writev(2) without
 * MSG_NOSIGNAL): the process must ignore SIGPIPE, as the gate does. */
int tg_gate_upstream_pool_new(struct tg_gate_worker *w, struct tg_gate_upstream_pool **out);
void tg_gate_upstream_pool_free(struct tg_gate_upstream_pool *p);

/*
 * An idle pooled connection to url when one is alive, else a new one
 * (every address of the host's name tried in turn, within
 * limits.upstream_connect_ms in all; TCP_NODELAY; https verified against
 * the snapshot's upstream_ctx and the URL's host). cb runs from the loop,
 * never from inside this call.
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

/* ------------------------------------------------------------------ */
/* authz mode (authz.c): nginx auth_request subrequests               */
/* ------------------------------------------------------------------ */

/*
 * The request headers nginx sets for the subrequest:
 *   X-Tokengate-Client-Cert  $ssl_client_escaped_cert (the leaf only)
 *   X-Original-Method        $request_method
 *   X-Original-URI           $request_uri (path and query, raw)
 * Every answer is 200 (allowed) or 403 (denied, X-Tokengate-Reason); see
 * docs/gate.md "authz mode".
 */
#define TG_GATE_AUTHZ_CERT_HDR   "X-Tokengate-Client-Cert"
#define TG_GATE_AUTHZ_METHOD_HDR "X-Original-Method"
#define TG_GATE_AUTHZ_URI_HDR    "X-Original-URI"
#define TG_GATE_AUTHZ_DER_MAX    8192 /* a leaf's DER; a bigger one is refused */
#define TG_GATE_AUTHZ_NEG_TTL    30   /* seconds a refusal stays cached */
#define TG_GATE_AUTHZ_SETS       256  /* cache: sets (by the fingerprint's first byte) */
#define TG_GATE_AUTHZ_WAYS       4    /* ... of this many entries, least recently used out */

/*
 * Decodes an X-Tokengate-Client-Cert value (len bytes at esc): nginx's
 * URL escaping of one PEM certificate. Strict: raw bytes may only be
 * ALPHA DIGIT - . _ ~ (nginx escapes every other byte) and %XX escapes;
 * the text must be printable ASCII and newlines, start with
 * "-----BEGIN CERTIFICATE-----", hold exactly one CERTIFICATE block with
 * no PEM headers and nothing after it but newlines; its DER at most
 * TG_GATE_AUTHZ_DER_MAX bytes. 0 and *der (malloc'd, *der_len bytes; the
 * caller frees it), or TG_ERR_FORMAT and *why (static text). The DER is not
 * parsed here (tg_gate_authz_evaluate parses it on a cache miss).
 */
int tg_gate_authz_cert_der(const char *esc, size_t len, uint8_t **der, size_t *der_len,
                           const char **why);

/* One cached verdict of a client certificate. A plain value. */
struct tg_gate_authz_entry {
	uint8_t sha256[32];            /* the key: SHA-256 of the header value as received */
	unsigned long generation;      /* the snapshot it was verified under */
	time_t until;                  /* not used from then on (notAfter, CRL nextUpdate, TTL) */
	int rc;                        /* 0 verified, else the verifier's TG_ERR_* */
	char reason[512];              /* the verifier's refusal */
	struct tg_gate_peer_info peer; /* with rc 0 */
	uint64_t used;                 /* LRU tick; 0: the slot is empty */
};

/*
 * A bounded cache of verdicts (TG_GATE_AUTHZ_SETS x TG_GATE_AUTHZ_WAYS
 * entries), used by one thread. NULL on OOM.
 */
struct tg_gate_authz_cache *tg_gate_authz_cache_new(void);
void tg_gate_authz_cache_free(struct tg_gate_authz_cache *c);

/*
 * The verdict for fingerprint sha256 made under generation, when one is
 * cached and still usable at now (now < until); NULL otherwise (an entry
 * of another generation or past its until is dropped). Marks it used.
 */
const struct tg_gate_authz_entry *tg_gate_authz_cache_get(struct tg_gate_authz_cache *c,
                                                          const uint8_t sha256[32],
                                                          unsigned long generation, time_t now);

/* Stores *e (copied; e->used is set here), evicting its set's least recently used. */
void tg_gate_authz_cache_put(struct tg_gate_authz_cache *c, const struct tg_gate_authz_entry *e);

/* What a subrequest's head carries for the decision (points into the head). */
struct tg_gate_authz_in {
	const char *cert; /* the last X-Tokengate-Client-Cert value, or NULL */
	const char *method;
	const char *uri;
	unsigned ncert, nmethod, nuri; /* how many times each header came */
};

/* Picks the three headers (names case-insensitive) out of h. */
void tg_gate_authz_in_from_head(const struct tg_gate_http_head *h, struct tg_gate_authz_in *in);

/* The outcome of one subrequest. */
struct tg_gate_authz_out {
	int allow;     /* the policy allowed it (dry-run aside) */
	int verified;  /* peer holds a verified certificate */
	int cache_hit; /* -1 no lookup, 0 verified now, 1 from the cache */
	long route;    /* the deciding route, or -1 */
	struct tg_gate_peer_info peer;
	char method[24];             /* "" when missing or refused */
	char path[TG_GATE_PATH_MAX]; /* normalized; "" when not reached or refused */
	char reason[600];            /* why (allow: the decision's text) */
};

/*
 * Decides one subrequest: the headers present once each; the certificate
 * header looked up in cache under generation (may be NULL: always
 * verified) by the SHA-256 of its bytes exactly as received, else decoded
 * (tg_gate_authz_cert_der: a header that does not decode is a deny and is
 * not cached), verified with v at now (an X509 parsed exactly from the
 * DER, then tg_gate_verify_peer, no chain) and cached under that key;
 * the URI normalized (tg_gate_path_normalize); tg_gate_decide under pol.
 * The first failure is the deny and its reason, with the texts of the
 * gate's http mode (verifier, normalization, decision). Returns 0 (out
 * filled either way), or TG_ERR_INVALID_ARG for a NULL argument.
 */
int tg_gate_authz_evaluate(const struct tg_gate_verify *v, struct tg_gate_authz_cache *cache,
                           unsigned long generation, const struct tg_gate_policy *pol,
                           const struct tg_gate_authz_in *in, time_t now,
                           struct tg_gate_authz_out *out);

/*
 * For server.c: a listening unix socket at l->addr.path, mode 0660, group
 * l->group when set. A socket file nobody answers on is replaced; another
 * file, or a socket something listens on, is refused. 0 and *fd, or
 * TG_ERR_IO / TG_ERR_CONFIG naming the path and the fix.
 */
int tg_gate_authz_listen_unix(const struct tg_gate_listener_cfg *l, evutil_socket_t *fd,
                              struct tg_error *err);

/* conn.c: serves the subrequests of the accepted plain connection fd
 * (taken); calls tg_gate_conn_done at the end. */
void tg_gate_authz_serve(evutil_socket_t fd, struct tg_gate_conn_info *ci);

#endif /* TG_GATE_INT_H */
