/*
 * tg_gate_metrics.h — the gate's counters and its admin listener.
 *
 * Metrics are updated from every worker thread (atomics, and a mutex for
 * the per-route table) and rendered in Prometheus text format, every name
 * prefixed tokengate_:
 *   tokengate_connections_open                 gauge
 *   tokengate_connections_total{listener}      counter
 *   tokengate_connections_refused_total{reason}  counter (limit, ...)
 *   tokengate_handshakes_total{result="ok|failed"}
 *   tokengate_resumptions_total
 *   tokengate_requests_total{listener,route,decision="allow|deny|dry-run"}
 *   tokengate_upstream_errors_total{upstream,kind="refused|broken|timeout"}
 *   tokengate_audit_failures_total, tokengate_audit_ok (gauge 1/0)
 *   tokengate_request_duration_seconds histogram (buckets .001 .. 10)
 *   tokengate_reloads_total{result="ok|failed"}
 *   tokengate_authz_cache_total{result="hit|miss"}  authz mode's certificate cache
 *
 * Memory stays bounded whatever the labels: a label value is cut to 128
 * bytes, and a labelled counter keeps at most 4096 label sets (increments
 * for further sets are not shown).
 *
 * The admin listener (plain HTTP on libevent's evhttp, loopback unless the
 * configuration says otherwise) answers GET /healthz (200 "ok" while the
 * process runs), /readyz (200 when the ready callback says so, else 503
 * with its reason: e.g. the audit log cannot be written), /metrics; 404
 * elsewhere, 405 for other methods.
 */
#ifndef TG_GATE_METRICS_H
#define TG_GATE_METRICS_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tg_err.h"

struct tg_gate_metrics;

int tg_gate_metrics_new(struct tg_gate_metrics **out, struct tg_error *err);
void tg_gate_metrics_free(struct tg_gate_metrics *m);

void tg_gate_metrics_conn_open(struct tg_gate_metrics *m, const char *listener);
void tg_gate_metrics_conn_close(struct tg_gate_metrics *m);
void tg_gate_metrics_conn_refused(struct tg_gate_metrics *m, const char *reason);
void tg_gate_metrics_handshake(struct tg_gate_metrics *m, int ok, int resumed);
/* decision: "allow", "deny" or "dry-run"; route NULL: none matched. */
void tg_gate_metrics_request(struct tg_gate_metrics *m, const char *listener, const char *route,
                             const char *decision, double seconds);
/* kind: "refused", "broken" or "timeout". */
void tg_gate_metrics_upstream_error(struct tg_gate_metrics *m, const char *upstream,
                                    const char *kind);
void tg_gate_metrics_audit(struct tg_gate_metrics *m, int ok);
void tg_gate_metrics_reload(struct tg_gate_metrics *m, int ok);
/* authz mode: a client certificate found in the cache (hit 1) or verified (0). */
void tg_gate_metrics_authz_cache(struct tg_gate_metrics *m, int hit);

/* Appends the Prometheus text of every metric to out. 0 or TG_ERR_ALLOC. */
int tg_gate_metrics_render(struct tg_gate_metrics *m, struct evbuffer *out);

/* 1 when ready; else 0 and why (static or caller-owned text) in *why. */
typedef int (*tg_gate_ready_fn)(void *arg, const char **why);

struct tg_gate_admin;
struct tg_gate_url;

/*
 * A non-blocking, close-on-exec listening socket bound to u's host and port
 * (u parsed from addr, a tcp address): its fd, or -1 with err naming addr,
 * the OS reason and the fix (port in use, no such interface, privileges).
 * The admin listeners of the gate and the agent both bind through it.
 */
evutil_socket_t tg_gate_admin_bind(const char *addr, const struct tg_gate_url *u,
                                   struct tg_error *err);

/*
 * Binds addr ("127.0.0.1:9090", "[::1]:9090") on base and serves the three
 * paths above. 0 and *out, or TG_ERR_IO naming the address and the OS
 * reason (e.g. in use).
 */
int tg_gate_admin_start(struct event_base *base, const char *addr, struct tg_gate_metrics *m,
                        tg_gate_ready_fn ready, void *arg, struct tg_gate_admin **out,
                        struct tg_error *err);
void tg_gate_admin_free(struct tg_gate_admin *a);

#endif /* TG_GATE_METRICS_H */
