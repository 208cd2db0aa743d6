/*
 * server.c — the `tokengate gate` process (gate-int.h): the snapshot of the
 * loaded configuration, the worker threads (one event_base each; each
 * listener's one socket is shared by every worker's loop, so whichever
 * worker is idle takes the next connection, without an accept hand-off), the
 * main loop (signals, the CRL watch, the audit log's batch timer, the admin
 * listener) and the audit log shared by every worker.
 */
#include "gate-int.h"
#include "tg_gate_alloc.h"
#include "tg_wakefd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>

#define DRAIN_MS       5000 /* SIGTERM: connections get this long to finish */
#define DRAIN_TICK     100  /* ... checked this often */
#define CRL_WATCH_MS   1000 /* the CRL file is stat()ed this often */
#define LISTEN_BACKLOG 1024

/* A snapshot and its reference count (tg_gate_snapshot_get/_put). */
struct snap_box {
	struct tg_gate_snapshot snap; /* first: put finds the box from it */
	atomic_uint refs;
};

struct worker;

/* One worker's copy (a dup) of one listener's socket. */
struct lsock {
	struct worker *wk;
	size_t idx; /* listener index */
	char name[TG_GATE_NAME_MAX + 1];
	evutil_socket_t fd; /* -1: none (not bound yet, or closed) */
	struct event *ev;   /* EV_READ|EV_PERSIST on fd: accept_cb */
	int unix_made;      /* worker 0: this gate made the unix socket file (removed at the end) */
};

/* What the main thread asks of a worker (worker_post). */
enum {
	MAIL_UNLISTEN = 1, /* close your listening sockets (SIGTERM's drain) */
	MAIL_EXIT = 2      /* leave your loop */
};

/*
 * A worker. Its loop has no lock (EVENT_BASE_FLAG_NOLOCK): only its own
 * thread calls libevent on it. The main thread asks through the mailbox:
 * bits set in mail, then the eventfd written; mail_cb reads them on the
 * worker's loop.
 */
struct worker {
	struct tg_gate_worker w;
	pthread_t th;
	int started;
	struct lsock *ls; /* nlisteners */
	size_t nls;
	int mail_fd;           /* eventfd; -1: none */
	struct event *mail_ev; /* EV_READ|EV_PERSIST on mail_fd: mail_cb */
	atomic_uint mail;      /* MAIL_* bits not yet read */
};

/* What the CRL watch compares. */
struct crl_stamp {
	int ok; /* stat() succeeded */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct tg_gate_server {
	int argc;
	char **argv;
	struct tg_gate_metrics *m;

	pthread_mutex_t snap_mu;
	struct tg_gate_snapshot *snap; /* current; one reference held here */
	unsigned long generation;

	pthread_mutex_t audit_mu;
	struct tg_audit *audit;
	int audit_bad;        /* under audit_mu: the last write failed */
	char audit_why[1024]; /* under audit_mu: why */
	char ready_why[1100]; /* main thread only: the admin's /readyz text */

	atomic_uint nconns;
	unsigned max_conns;
	struct tg_gate_ratelimit *rl; /* failed handshakes per source */
	atomic_int stopping;

	struct event_base *base; /* main loop */
	struct worker *wk;
	size_t nwk;
	struct tg_gate_admin *admin;
	struct crl_stamp crl;
	struct timespec drain_start;
	struct event *drain_ev;
	int exit_code;
};

/* One line "tokengate gate: ..." on stderr (the gate's own log). */
static void __attribute__((format(printf, 1, 0))) say_v(const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "tokengate gate: %s\n", line);
	fflush(stderr);
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say_v(fmt, ap);
	va_end(ap);
}

void
tg_gate_server_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say_v(fmt, ap);
	va_end(ap);
}

static const char *
mode_name(enum tg_gate_mode m)
{
	switch (m) {
	case TG_GATE_MODE_HTTP:
		return "http";
	case TG_GATE_MODE_TCP:
		return "tcp";
	case TG_GATE_MODE_AUTHZ:
		return "authz";
	default:
		return "unknown";
	}
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */
/* ------------------------------------------------------------------ */

static void
snapshot_free(struct snap_box *b)
{
	struct tg_gate_snapshot *sn;
	size_t i;

	if (b == NULL)
		return;
	sn = &b->snap;
	for (i = 0; sn->ls != NULL && i < sn->cfg.nlisteners; i++) {
		tg_gate_secrets_free(sn->ls[i].secrets);
		tg_gate_policy_clear(&sn->ls[i].policy);
		free(sn->ls[i].upstreams);
	}
	free(sn->ls);
	tg_gate_tls_unref(sn->tls);
	tg_gate_verify_free(sn->verify);
	SSL_CTX_free(sn->upstream_ctx);
	tg_gate_config_clear(&sn->cfg);
	free(b);
}

struct tg_gate_snapshot *
tg_gate_snapshot_get(struct tg_gate_server *s)
{
	struct tg_gate_snapshot *sn;

	pthread_mutex_lock(&s->snap_mu);
	sn = s->snap;
	atomic_fetch_add(&((struct snap_box *)sn)->refs, 1);
	pthread_mutex_unlock(&s->snap_mu);
	return sn;
}

void
tg_gate_snapshot_put(struct tg_gate_snapshot *snap)
{
	struct snap_box *b = (struct snap_box *)snap;

	if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
		snapshot_free(b);
}

/* The listener's policy file read, parsed, its secrets and upstream URLs loaded. */
static int
lstate_load(const struct tg_gate_config *c, size_t i, struct tg_gate_lstate *ls,
            struct tg_error *err)
{
	const struct tg_gate_listener_cfg *l = &c->listeners[i];
	const char *path = l->policy_file != NULL ? l->policy_file : c->policy_file;
	size_t u;
	int r;

	ls->cfg = l;
	if (path == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "listener '%s' has no policy; give --policy FILE (or 'policy:' in "
		                 "the configuration)",
		                 l->name);
		goto out;
	}
	if ((r = tg_gate_config_policy_load(path, &ls->policy, err)) != 0)
		goto out;
	if ((r = tg_gate_secrets_load(&ls->policy, &ls->secrets, err)) != 0)
		goto out;
	if (ls->policy.nupstreams > 0 &&
	    (ls->upstreams = calloc(ls->policy.nupstreams, sizeof(*ls->upstreams))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (u = 0; u < ls->policy.nupstreams; u++)
		if ((r = tg_gate_url_parse(ls->policy.upstreams[u].url, 0, &ls->upstreams[u],
		                           err)) != 0) {
			tg_error_wrap(err, r, "%s: upstream '%s'", path,
			              ls->policy.upstreams[u].name);
			goto out;
		}
	r = 0;
out:
	return r;
}

/* The client context for https:// upstreams: TLS 1.2+, the peer verified. */
static int
upstream_ctx_new(const struct tg_gate_config *c, SSL_CTX **out, struct tg_error *err)
{
	SSL_CTX *ctx = NULL;
	int r = TG_ERR_TLS;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		r = tg_error_set(err, TG_ERR_TLS, "cannot make the upstream TLS context");
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (c->upstream_ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, c->upstream_ca, NULL) != 1) {
			r = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "upstream CA file '%s' holds no usable certificate; give a "
			    "PEM bundle of the CAs that issued the upstreams' certificates",
			    c->upstream_ca);
			goto out;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		r = tg_error_set(err, TG_ERR_TLS,
		                 "cannot load the system CA certificates for "
		                 "https:// upstreams; set upstream_ca");
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	r = 0;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

/* A new snapshot from *cfg (taken, cleared). 0 and *out (one reference). */
static int
snapshot_new(struct tg_gate_config *cfg, unsigned long generation, struct tg_gate_snapshot **out,
             struct tg_error *err)
{
	struct snap_box *b;
	struct tg_gate_snapshot *sn;
	struct tg_gate_tls_cfg tc;
	size_t i;
	int r = TG_ERR_ALLOC, need_tls = 0, need_verify = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		tg_gate_config_clear(cfg);
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	atomic_init(&b->refs, 1);
	sn = &b->snap;
	sn->cfg = *cfg;
	tg_gate_config_init(cfg);
	sn->generation = generation;
	if ((sn->ls = calloc(sn->cfg.nlisteners, sizeof(*sn->ls))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (i = 0; i < sn->cfg.nlisteners; i++) {
		if ((r = lstate_load(&sn->cfg, i, &sn->ls[i], err)) != 0)
			goto out;
		if (sn->cfg.listeners[i].mode != TG_GATE_MODE_AUTHZ)
			need_tls = 1;
		else
			need_verify = 1;
	}
	/* authz: the certificates nginx passes, verified as a handshake would */
	if (need_verify &&
	    (r = tg_gate_verify_new((const char *const *)sn->cfg.client_ca, sn->cfg.nclient_ca,
	                            sn->cfg.crl, &sn->verify, err)) != 0)
		goto out;
	if (need_tls) {
		memset(&tc, 0, sizeof(tc));
		tc.cert = sn->cfg.cert;
		tc.key = sn->cfg.key;
		tc.client_ca = (const char *const *)sn->cfg.client_ca;
		tc.nclient_ca = sn->cfg.nclient_ca;
		tc.crl = sn->cfg.crl;
		tc.tickets = sn->cfg.tickets;
		tc.handshake_ms = sn->cfg.limits.handshake_ms;
		if ((r = tg_gate_tls_new(&tc, &sn->tls, err)) != 0)
			goto out;
	}
	if ((r = upstream_ctx_new(&sn->cfg, &sn->upstream_ctx, err)) != 0)
		goto out;
	*out = sn;
	b = NULL;
	r = 0;
out:
	snapshot_free(b);
	return r;
}

/*
 * A reload may change everything but what the running process is built
 * around: the listeners (names, addresses, modes), the worker count, the
 * admin address and the audit file. 0, or TG_ERR_CONFIG saying what changed.
 */
static int
reload_compatible(const struct tg_gate_config *o, const struct tg_gate_config *n,
                  struct tg_error *err)
{
	const char *ra, *rb;
	size_t i;
	int r = TG_ERR_CONFIG;

	if (o->nlisteners != n->nlisteners) {
		tg_error_set(err, r, "the number of listeners changed from %zu to %zu",
		             o->nlisteners, n->nlisteners);
		goto out;
	}
	for (i = 0; i < o->nlisteners; i++) {
		const struct tg_gate_listener_cfg *a = &o->listeners[i], *b = &n->listeners[i];
		const char *ga = a->group != NULL ? a->group : "(the gate's)";
		const char *gb = b->group != NULL ? b->group : "(the gate's)";
		if (strcmp(a->name, b->name) != 0 || strcmp(a->listen, b->listen) != 0 ||
		    a->mode != b->mode) {
			tg_error_set(err, r,
			             "listener '%s' (%s, mode %s) became '%s' (%s, mode %s)",
			             a->name, a->listen, mode_name(a->mode), b->name, b->listen,
			             mode_name(b->mode));
			goto out;
		}
		if (strcmp(ga, gb) != 0) {
			tg_error_set(err, r,
			             "listener '%s': the socket's group changed from %s to %s",
			             a->name, ga, gb);
			goto out;
		}
	}
	if (o->workers != n->workers) {
		tg_error_set(err, r, "workers changed from %u to %u", o->workers, n->workers);
		goto out;
	}
	ra = o->admin != NULL ? o->admin : "none";
	rb = n->admin != NULL ? n->admin : "none";
	if (strcmp(ra, rb) != 0) {
		tg_error_set(err, r, "the admin address changed from %s to %s", ra, rb);
		goto out;
	}
	if (strcmp(o->audit_file, n->audit_file) != 0 || o->audit_fsync != n->audit_fsync) {
		tg_error_set(err, r, "the audit log changed from %s to %s", o->audit_file,
		             n->audit_file);
		goto out;
	}
	r = 0;
out:
	if (r != 0)
		tg_error_set(err, r, "%s; that needs a restart of the gate", err->msg);
	return r;
}

/* ------------------------------------------------------------------ */
/* Audit                                                               */
/* ------------------------------------------------------------------ */

/* After a write or sync (r): readiness, the log line once per outage, metrics. */
static void
audit_outcome(struct tg_gate_server *s, int r, const struct tg_error *e)
{
	if (r != 0) {
		if (!s->audit_bad) {
			snprintf(s->audit_why, sizeof(s->audit_why), "%s", tg_error_msg(e, r));
			say("audit log cannot be written: %s; refusing requests until it can",
			    s->audit_why);
		}
		s->audit_bad = 1;
		tg_gate_metrics_audit(s->m, 0);
	} else {
		if (s->audit_bad)
			say("audit log written again; serving requests");
		s->audit_bad = 0;
		tg_gate_metrics_audit(s->m, 1);
	}
}

/*
 * The audit log's mutex: adaptive (spins a little before sleeping). The
 * workers hold it only for the chain's hashes and one write(2), a few
 * microseconds; sleeping on it and being woken costs more than that.
 */
static void
audit_mutex_init(pthread_mutex_t *mu)
{
	pthread_mutexattr_t a;

	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP) != 0 ||
	    pthread_mutex_init(mu, &a) != 0)
		pthread_mutex_init(mu, NULL);
	pthread_mutexattr_destroy(&a);
}

int
tg_gate_audit(struct tg_gate_server *s, const json_t *rec, struct tg_error *err)
{
	struct tg_audit_line line = {0};
	struct tg_error e;
	int r;

	tg_error_clear(&e);
	/* the JSON dump outside the lock; under it only the chain and write(2) */
	r = tg_audit_prepare(rec, &line, &e);
	pthread_mutex_lock(&s->audit_mu);
	if (r == 0)
		r = tg_audit_write_prepared(s->audit, &line, &e);
	audit_outcome(s, r, &e);
	pthread_mutex_unlock(&s->audit_mu);
	tg_audit_line_clear(&line);
	if (r != 0 && err != NULL)
		*err = e;
	return r;
}

/* The fields every record of ci has, all but "event". NULL on OOM. */
static json_t *
audit_conn_fields(const struct tg_gate_conn_info *ci)
{
	const struct tg_prov *p = &ci->peer.prov;
	json_t *prov = json_null(), *id = json_null();

	if (ci->peer.identity[0] != '\0') {
		id = json_string(ci->peer.identity);
		prov = json_pack("{s:s, s:s, s:s, s:s}", "level", tg_prov_level_name(p->level),
		                 "pin", tg_att_pin_name(p->pin_policy), "touch",
		                 tg_att_touch_name(p->touch_policy), "serial", p->serial);
	}
	return json_pack("{s:s, s:s, s:o*, s:o*, s:b}", "listener", ci->listener_name, "peer",
	                 ci->peer_addr, "identity", id, "provenance", prov, "resumed", ci->resumed);
}

/* The fields of audit_conn_fields as JSON text, dumped once per connection. */
#define PRE_N 5
static const char *const pre_keys[PRE_N] = {"identity", "listener", "peer", "provenance",
                                            "resumed"};
struct tg_gate_audit_pre {
	struct tg_audit_field f[PRE_N];
	char *text[PRE_N];
};

void
tg_gate_audit_pre_free(struct tg_gate_audit_pre *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < PRE_N; i++)
		free(p->text[i]);
	free(p);
}

static struct tg_gate_audit_pre *
audit_pre_new(const json_t *fields)
{
	struct tg_gate_audit_pre *p = calloc(1, sizeof(*p));
	size_t i;

	for (i = 0; p != NULL && i < PRE_N; i++) {
		p->f[i].key = pre_keys[i];
		p->f[i].kind = TG_AUDIT_TEXT;
		if (tg_audit_dump_value(json_object_get(fields, pre_keys[i]), &p->text[i],
		                        &p->f[i].len) != 0) {
			tg_gate_audit_pre_free(p);
			p = NULL;
			break;
		}
		p->f[i].s = p->text[i];
	}
	return p;
}

void
tg_gate_audit_conn_ready(struct tg_gate_conn_info *ci)
{
	if (ci->audit_fields == NULL)
		ci->audit_fields = audit_conn_fields(ci);
	if (ci->audit_pre == NULL && ci->audit_fields != NULL)
		ci->audit_pre = audit_pre_new(ci->audit_fields);
}

/* Writes w's kept lines, then line (NULL: none), with one write(2). */
static int
audit_write_kept(struct tg_gate_worker *w, struct tg_audit_line *line, struct tg_error *e)
{
	struct tg_gate_server *s = w->srv;
	struct tg_gate_audit_wait *wt;
	int r;

	pthread_mutex_lock(&s->audit_mu);
	r = tg_audit_write_kept(s->audit, &w->audit_kept, line, e);
	audit_outcome(s, r, e);
	pthread_mutex_unlock(&s->audit_mu);
	/* the kept records are written, or lost with the write: either way
	 * the requests waiting on them are settled */
	while ((wt = w->audit_waits) != NULL) {
		w->audit_waits = wt->next;
		wt->next = NULL;
		wt->pprev = NULL;
		wt->state = r == 0 ? TG_GATE_AUDIT_WRITTEN : TG_GATE_AUDIT_FAILED;
	}
	return r;
}

/* The worker's flush event: its loop ran out of other events. */
static void
audit_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_worker *w = arg;
	struct tg_error e;

	(void)fd;
	(void)what;
	tg_error_clear(&e);
	if (w->audit_kept.len > 0)
		(void)audit_write_kept(w, NULL, &e);
}

/* Makes the line of ci's record event + f into the worker's line buffer;
 * *made 0 when it failed before tg_audit_prepare_fields ran. */
static int
audit_fields_line(const struct tg_gate_conn_info *ci, const char *event,
                  const struct tg_audit_field *f, size_t n, struct tg_error *e, int *made)
{
	struct tg_audit_field all[TG_AUDIT_FIELDS_MAX];
	size_t i;
	int r;

	*made = 0;
	if (ci->audit_pre == NULL) {
		r = tg_error_set(e, TG_ERR_ALLOC, "out of memory writing an audit record");
		goto out;
	}
	if (n > TG_AUDIT_FIELDS_MAX - PRE_N - 1) {
		r = tg_error_set(e, TG_ERR_INVALID_ARG, "an audit record has too many fields");
		goto out;
	}
	memcpy(all, ci->audit_pre->f, sizeof(ci->audit_pre->f));
	i = PRE_N;
	if (event != NULL)
		all[i++] =
		    (struct tg_audit_field){.key = "event", .kind = TG_AUDIT_STR, .s = event};
	if (n > 0)
		memcpy(all + i, f, n * sizeof(*f));
	*made = 1;
	r = tg_audit_prepare_fields(all, i + n, &ci->w->audit_line, e);
out:
	return r;
}

int
tg_gate_audit_fields_later(const struct tg_gate_conn_info *ci, const char *event,
                           const struct tg_audit_field *f, size_t n)
{
	return tg_gate_audit_fields_wait(ci, event, f, n, NULL);
}

/* wt (not NULL) into w's list of requests waiting on its kept records. */
static void
audit_wait_link(struct tg_gate_worker *w, struct tg_gate_audit_wait *wt)
{
	wt->state = TG_GATE_AUDIT_PENDING;
	wt->next = w->audit_waits;
	wt->pprev = &w->audit_waits;
	if (w->audit_waits != NULL)
		w->audit_waits->pprev = &wt->next;
	w->audit_waits = wt;
}

int
tg_gate_audit_fields_wait(const struct tg_gate_conn_info *ci, const char *event,
                          const struct tg_audit_field *f, size_t n, struct tg_gate_audit_wait *wt)
{
	struct tg_gate_worker *w = ci->w;
	struct tg_error e;
	int r, made;

	tg_error_clear(&e);
	if (wt != NULL) {
		tg_gate_audit_wait_cancel(wt);
		wt->state = TG_GATE_AUDIT_NONE;
	}
	r = audit_fields_line(ci, event, f, n, &e, &made);
	if (r == 0 && w->audit_flush != NULL &&
	    tg_audit_keep(&w->audit_kept, &w->audit_line, &e) == 0) {
		if (wt != NULL)
			audit_wait_link(w, wt);
		if (w->audit_kept.len >= TG_GATE_AUDIT_KEPT_MAX)
			r = audit_write_kept(w, NULL, &e); /* settles wt */
		else
			event_active(w->audit_flush, EV_TIMEOUT, 1);
	} else if (r == 0) {
		/* no flush event, or no memory to keep it: written now */
		r = audit_write_kept(w, &w->audit_line, &e);
	} else if (made) {
		pthread_mutex_lock(&w->srv->audit_mu);
		audit_outcome(w->srv, r, &e);
		pthread_mutex_unlock(&w->srv->audit_mu);
	}
	return r == 0 ? 0 : -1;
}

int
tg_gate_audit_wait_done(struct tg_gate_worker *w, struct tg_gate_audit_wait *wt)
{
	struct tg_error e;

	tg_error_clear(&e);
	if (wt->state == TG_GATE_AUDIT_PENDING)
		(void)audit_write_kept(w, NULL, &e); /* settles wt */
	return wt->state == TG_GATE_AUDIT_NONE || wt->state == TG_GATE_AUDIT_WRITTEN ? 0 : -1;
}

void
tg_gate_audit_wait_cancel(struct tg_gate_audit_wait *wt)
{
	if (wt->state == TG_GATE_AUDIT_PENDING && wt->pprev != NULL) {
		*wt->pprev = wt->next;
		if (wt->next != NULL)
			wt->next->pprev = wt->pprev;
	}
	wt->next = NULL;
	wt->pprev = NULL;
	if (wt->state == TG_GATE_AUDIT_PENDING)
		wt->state = TG_GATE_AUDIT_NONE;
}

int
tg_gate_audit_fields(const struct tg_gate_conn_info *ci, const char *event,
                     const struct tg_audit_field *f, size_t n, struct tg_error *err)
{
	struct tg_gate_server *s = ci->w->srv;
	struct tg_audit_line *line = &ci->w->audit_line;
	struct tg_error e;
	int r, made;

	tg_error_clear(&e);
	/* as tg_gate_audit: the line is made outside the lock; the worker's
	 * kept lines go first, in the same write(2) */
	if ((r = audit_fields_line(ci, event, f, n, &e, &made)) == 0) {
		r = audit_write_kept(ci->w, line, &e);
		goto out;
	}
	if (!made)
		goto out;
	pthread_mutex_lock(&s->audit_mu);
	audit_outcome(s, r, &e);
	pthread_mutex_unlock(&s->audit_mu);
out:
	if (r != 0 && err != NULL)
		*err = e;
	return r;
}

json_t *
tg_gate_audit_record(const struct tg_gate_conn_info *ci, const char *event)
{
	/* a shallow copy: the values are the connection's, shared by reference */
	json_t *rec =
	    ci->audit_fields != NULL ? json_copy(ci->audit_fields) : audit_conn_fields(ci);

	if (rec != NULL && json_object_set_new(rec, "event", json_string(event)) != 0) {
		json_decref(rec);
		rec = NULL;
	}
	return rec;
}

struct tg_gate_metrics *
tg_gate_server_metrics(struct tg_gate_server *s)
{
	return s->m;
}

int
tg_gate_server_stopping(struct tg_gate_server *s)
{
	return atomic_load(&s->stopping);
}

int
tg_gate_server_conn_enter(struct tg_gate_server *s)
{
	if (atomic_fetch_add(&s->nconns, 1) >= s->max_conns) {
		atomic_fetch_sub(&s->nconns, 1);
		return 0;
	}
	return 1;
}

void
tg_gate_server_conn_leave(struct tg_gate_server *s)
{
	atomic_fetch_sub(&s->nconns, 1);
}

struct tg_gate_ratelimit *
tg_gate_server_ratelimit(struct tg_gate_server *s)
{
	return s->rl;
}

/* The admin's /readyz: not while stopping, nor while the audit log fails. */
static int
ready_fn(void *arg, const char **why)
{
	struct tg_gate_server *s = arg;
	int ok = 1;

	if (atomic_load(&s->stopping)) {
		*why = "the gate is stopping";
		return 0;
	}
	pthread_mutex_lock(&s->audit_mu);
	if (s->audit_bad) {
		snprintf(s->ready_why, sizeof(s->ready_why), "audit log cannot be written: %s",
		         s->audit_why);
		*why = s->ready_why;
		ok = 0;
	}
	pthread_mutex_unlock(&s->audit_mu);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Listening sockets and workers                                       */
/* ------------------------------------------------------------------ */

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lsock *l = arg;

	(void)fd;
	(void)what;
	if (l->ev != NULL)
		event_add(l->ev, NULL);
}

/*
 * The shared socket is readable: one accept per wake-up (as nginx without
 * multi_accept), so that during a burst the workers take turns instead of
 * the first one awake draining the queue. Another worker may have taken the
 * connection first (EAGAIN: nothing to do). accept() failing for want of
 * descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses this copy
 * for 100 ms instead of spinning on it.
 */
static void
accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lsock *l = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct timeval tv = {0, 100000};
	evutil_socket_t c;
	int e;

	(void)what;
	c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c >= 0) {
		tg_gate_conn_accept(&l->wk->w, l->idx, c, (struct sockaddr *)&ss, (int)sl);
	} else {
		e = errno;
		if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
			say("listener '%s': accept failed: %s; pausing it for 100 ms", l->name,
			    strerror(e));
			event_del(l->ev);
			event_base_once(l->wk->w.base, -1, EV_TIMEOUT, accept_resume_cb, l, &tv);
		}
		/* EAGAIN (another worker took it), ECONNABORTED, EINTR: next wake-up */
	}
}

/* Closes fd on the next pass of the loop, after the epoll change list has
 * applied the deletion of its event: closed first, the deletion would miss
 * the registration that the other workers' dups keep alive. */
static void
close_later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	close((int)(intptr_t)arg);
}

/* Stops l's copy of its listener: event deleted, socket closed (now when
 * the loop is not running, else on its next pass). */
static void
lsock_close(struct lsock *l, int loop_running)
{
	struct timeval soon = {0, 1000}; /* a timer: runs after the next epoll_wait */

	if (l->ev != NULL)
		event_free(l->ev);
	l->ev = NULL;
	if (l->fd >= 0 &&
	    (!loop_running || event_base_once(l->wk->w.base, -1, EV_TIMEOUT, close_later_cb,
	                                      (void *)(intptr_t)l->fd, &soon) != 0))
		close(l->fd);
	l->fd = -1;
}

/* "ADDR:PORT" of a bound socket (for the log line), from getsockname. */
static void
sock_name(evutil_socket_t fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8];

	snprintf(out, cap, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	if (ss.ss_family == AF_INET6)
		snprintf(out, cap, "[%s]:%s", host, port);
	else
		snprintf(out, cap, "%s:%s", host, port);
}

/*
 * Puts the listening socket fd of listener i on every worker's loop: worker
 * k > 0 gets a dup of it. One socket shared by every worker (not one
 * SO_REUSEPORT socket each): a worker busy with handshakes leaves new
 * connections to the worker that is idle in epoll_wait, instead of the
 * kernel queueing them on the busy worker's own socket by address hash.
 * Takes fd in every case (closed on failure).
 */
static int
share_listener(struct tg_gate_server *s, size_t i, evutil_socket_t fd, struct tg_error *err)
{
	const struct tg_gate_listener_cfg *l = &s->snap->cfg.listeners[i];
	size_t k;
	int r = 0;

	if (evutil_make_socket_nonblocking(fd) != 0)
		r = tg_error_set(err, TG_ERR_IO, "listener '%s': %s: cannot make it non-blocking",
		                 l->name, l->listen);
	for (k = 0; k < s->nwk && r == 0; k++) {
		struct lsock *ls = &s->wk[k].ls[i];
		ls->wk = &s->wk[k];
		ls->idx = i;
		snprintf(ls->name, sizeof(ls->name), "%s", l->name);
		ls->fd = k + 1 < s->nwk ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : fd;
		if (ls->fd == fd)
			fd = -1;
		if (ls->fd < 0 ||
		    (ls->ev = event_new(s->wk[k].w.base, ls->fd, EV_READ | EV_PERSIST, accept_cb,
		                        ls)) == NULL ||
		    event_add(ls->ev, NULL) != 0)
			r = tg_error_set(err, TG_ERR_IO, "listener '%s': cannot listen on %s: %s",
			                 l->name, l->listen, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

/* authz on unix:/PATH: one socket (authz.c), shared by every worker. */
static int
bind_unix(struct tg_gate_server *s, size_t i, struct tg_error *err)
{
	const struct tg_gate_listener_cfg *l = &s->snap->cfg.listeners[i];
	evutil_socket_t fd = -1;
	int r;

	if ((r = tg_gate_authz_listen_unix(l, &fd, err)) != 0)
		goto out;
	s->wk[0].ls[i].unix_made = 1;
	r = share_listener(s, i, fd, err);
out:
	return r;
}

/*
 * Binds listener i (one socket, SO_REUSEADDR but not SO_REUSEPORT: a second
 * gate on the same port fails here instead of sharing it silently) and
 * shares it with every worker.
 */
static int
bind_listener(struct tg_gate_server *s, size_t i, struct tg_error *err)
{
	const struct tg_gate_listener_cfg *l = &s->snap->cfg.listeners[i];
	struct addrinfo hints, *ai = NULL;
	evutil_socket_t fd = -1;
	int r = TG_ERR_IO, g, one = 1;

	if (l->addr.scheme == TG_GATE_SCHEME_UNIX) {
		r = bind_unix(s, i, err);
		goto out;
	}
	if (l->addr.scheme != TG_GATE_SCHEME_TCP) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "listener '%s': %s is not a TCP address; listen on ADDR:PORT",
		                 l->name, l->listen);
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((g = getaddrinfo(l->addr.host[0] != '\0' ? l->addr.host : NULL, l->addr.port, &hints,
	                     &ai)) != 0 ||
	    ai == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "listener '%s': cannot resolve %s: %s; give an address of this "
		                 "machine",
		                 l->name, l->listen, gai_strerror(g));
		goto out;
	}
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "listener '%s': cannot listen on %s: %s; stop what holds that "
		                 "address or choose another",
		                 l->name, l->listen, strerror(errno));
		goto out;
	}
	r = share_listener(s, i, fd, err);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	return r;
}

static void *
worker_main(void *arg)
{
	struct worker *wk = arg;

	event_base_loop(wk->w.base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* On the worker's own loop: what the main thread asked (worker_post). */
static void
mail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *wk = arg;
	unsigned bits;
	size_t i;

	(void)what;
	(void)tg_wakefd_drain(fd);
	bits = atomic_exchange(&wk->mail, 0u);
	if (bits & MAIL_UNLISTEN)
		for (i = 0; i < wk->nls; i++)
			lsock_close(&wk->ls[i], 1);
	if (bits & MAIL_EXIT)
		event_base_loopbreak(wk->w.base);
}

/* From the main thread: asks worker wk for bit (MAIL_*), on its loop. */
static void
worker_post(struct worker *wk, unsigned bit)
{
	atomic_fetch_or(&wk->mail, bit);
	tg_wakefd_signal(wk->mail_fd);
}

/*
 * A worker's loop, with epoll's change list: an event deleted and added
 * again in one pass of the loop (a handshake's read event re-armed, the
 * handshake's events handed to the connection's bufferevent) costs no
 * epoll_ctl. libevent's caveat: a socket made by dup() must not be closed
 * before the change list has applied its event's deletion (the other
 * copies keep the registration alive) -- the workers' copies of a
 * listening socket are such dups, and lsock_close closes them a pass later.
 * No lock: the loop is its worker's alone (see struct worker).
 */
static struct event_base *
worker_base_new(void)
{
	struct event_config *c = event_config_new();
	struct event_base *b = NULL;

	if (c != NULL && event_config_set_flag(c, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0 &&
	    event_config_set_flag(c, EVENT_BASE_FLAG_NOLOCK) == 0)
		b = event_base_new_with_config(c);
	if (c != NULL)
		event_config_free(c);
	return b;
}

static int
workers_new(struct tg_gate_server *s, struct tg_error *err)
{
	size_t n = s->snap->cfg.workers > 0 ? s->snap->cfg.workers : 1, k, i;
	const char *why = "out of memory";
	int r = TG_ERR_ALLOC;

	if ((s->wk = calloc(n, sizeof(*s->wk))) == NULL)
		goto out;
	s->nwk = n;
	for (k = 0; k < n; k++)
		s->wk[k].mail_fd = -1; /* workers_free closes what was made */
	for (k = 0; k < n; k++) {
		struct worker *wk = &s->wk[k];
		wk->w.srv = s;
		wk->w.id = (unsigned)k;
		wk->nls = s->snap->cfg.nlisteners;
		if ((wk->ls = calloc(wk->nls, sizeof(*wk->ls))) == NULL ||
		    (wk->w.base = worker_base_new()) == NULL)
			goto out;
		for (i = 0; i < wk->nls; i++)
			wk->ls[i].fd = -1;
		/* three priorities, every event at the middle one but the kept
		 * audit records' flush, which runs when nothing else is ready */
		if (event_base_priority_init(wk->w.base, 3) != 0 ||
		    (wk->w.audit_flush = event_new(wk->w.base, -1, 0, audit_flush_cb, &wk->w)) ==
		        NULL ||
		    event_priority_set(wk->w.audit_flush, 2) != 0)
			goto out;
		atomic_init(&wk->mail, 0u);
		if ((wk->mail_fd = tg_wakefd_new()) < 0) {
			r = TG_ERR_IO;
			why = strerror(errno); /* EMFILE, ENFILE */
			goto out;
		}
		if ((wk->mail_ev = event_new(wk->w.base, wk->mail_fd, EV_READ | EV_PERSIST, mail_cb,
		                             wk)) == NULL ||
		    event_add(wk->mail_ev, NULL) != 0)
			goto out;
		if (tg_gate_upstream_pool_new(&wk->w, &wk->w.pool) != 0)
			goto out;
	}
	r = 0;
out:
	if (r != 0)
		tg_error_set(err, r, "cannot set up the worker threads: %s", why);
	return r;
}

static int
workers_start(struct tg_gate_server *s, struct tg_error *err)
{
	sigset_t all, old;
	size_t k;
	int r = 0, e;

	/* Signals go to the main thread's loop only. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (k = 0; k < s->nwk; k++) {
		if ((e = pthread_create(&s->wk[k].th, NULL, worker_main, &s->wk[k])) != 0) {
			r = tg_error_set(err, TG_ERR_IO, "cannot start worker thread %zu: %s", k,
			                 strerror(e));
			break;
		}
		s->wk[k].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static void
workers_free(struct tg_gate_server *s)
{
	size_t k, i;

	for (k = 0; k < s->nwk; k++)
		if (s->wk[k].started)
			worker_post(&s->wk[k], MAIL_EXIT);
	for (k = 0; k < s->nwk; k++) {
		struct worker *wk = &s->wk[k];
		if (wk->started)
			pthread_join(wk->th, NULL);
		for (i = 0; wk->ls != NULL && i < wk->nls; i++)
			lsock_close(&wk->ls[i], 0);
		free(wk->ls);
		tg_gate_upstream_pool_free(wk->w.pool);
		tg_gate_authz_cache_free(wk->w.authz);
		/* the worker's loop is over: its kept records are written here */
		if (wk->w.audit_kept.len > 0) {
			struct tg_error e;

			tg_error_clear(&e);
			(void)audit_write_kept(&wk->w, NULL, &e);
		}
		tg_audit_line_clear(&wk->w.audit_kept);
		if (wk->w.audit_flush != NULL)
			event_free(wk->w.audit_flush);
		if (wk->mail_ev != NULL)
			event_free(wk->mail_ev);
		if (wk->mail_fd >= 0)
			close(wk->mail_fd);
		tg_audit_line_clear(&wk->w.audit_line);
		if (wk->w.base != NULL)
			event_base_free(wk->w.base);
	}
	free(s->wk);
	s->wk = NULL;
	s->nwk = 0;
}

/* ------------------------------------------------------------------ */
/* Main loop: reload, CRL watch, audit timer, stop                     */
/* ------------------------------------------------------------------ */

static void
crl_stamp_take(const char *path, struct crl_stamp *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (path == NULL || stat(path, &sb) != 0)
		return;
	st->ok = 1;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
}

static int
crl_stamp_same(const struct crl_stamp *a, const struct crl_stamp *b)
{
	return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Reads the configuration again (the same arguments, the file again) and
 * publishes a new snapshot; on any failure the old one stays and the log
 * says why. rotate: also reopen the audit log (SIGHUP).
 */
static void
reload(struct tg_gate_server *s, const char *why, int rotate)
{
	struct tg_gate_config c;
	struct tg_gate_snapshot *nsn = NULL, *old;
	struct tg_error err;
	int check = 0, help = 0, r;

	tg_error_clear(&err);
	tg_gate_config_init(&c);
	crl_stamp_take(s->snap->cfg.crl, &s->crl);
	if ((r = tg_gate_config_from_args(s->argc, s->argv, &c, &check, &help, &err)) != 0)
		goto out;
	if ((r = reload_compatible(&s->snap->cfg, &c, &err)) != 0)
		goto out;
	if ((r = snapshot_new(&c, s->generation + 1, &nsn, &err)) != 0)
		goto out;
	pthread_mutex_lock(&s->snap_mu);
	old = s->snap;
	s->snap = nsn;
	s->generation++;
	pthread_mutex_unlock(&s->snap_mu);
	tg_gate_snapshot_put(old);
	crl_stamp_take(s->snap->cfg.crl, &s->crl);
	say("reload (%s): configuration %lu in use", why, s->generation);
out:
	tg_gate_config_clear(&c);
	tg_gate_metrics_reload(s->m, r == 0);
	if (r != 0)
		say("reload (%s) refused, the previous configuration stays in use: %s", why,
		    tg_error_msg(&err, r));
	if (rotate) {
		tg_error_clear(&err);
		pthread_mutex_lock(&s->audit_mu);
		r = tg_audit_reopen(s->audit, &err);
		pthread_mutex_unlock(&s->audit_mu);
		if (r != 0)
			say("audit log not reopened, still writing the old file: %s",
			    tg_error_msg(&err, r));
	}
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_server *s = arg;
	struct timespec now;
	long ms;
	unsigned n = atomic_load(&s->nconns);

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - s->drain_start.tv_sec) * 1000 +
	     (now.tv_nsec - s->drain_start.tv_nsec) / 1000000;
	if (n == 0 || ms >= DRAIN_MS) {
		if (n > 0)
			say("stopping with %u connection(s) still open after %d ms", n, DRAIN_MS);
		event_base_loopbreak(s->base);
	}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct tg_gate_server *s = arg;
	struct timeval tick = {0, DRAIN_TICK * 1000};
	size_t k;

	(void)what;
	if (sig == SIGHUP) {
		reload(s, "SIGHUP", 1);
		return;
	}
	if (atomic_exchange(&s->stopping, 1))
		return;
	say("%s: no new connections; letting open ones finish (at most %d ms)",
	    sig == SIGTERM ? "SIGTERM" : "SIGINT", DRAIN_MS);
	for (k = 0; k < s->nwk; k++)
		worker_post(&s->wk[k], MAIL_UNLISTEN);
	clock_gettime(CLOCK_MONOTONIC, &s->drain_start);
	if ((s->drain_ev = event_new(s->base, -1, EV_PERSIST, drain_cb, s)) == NULL ||
	    event_add(s->drain_ev, &tick) != 0)
		event_base_loopbreak(s->base);
}

static void
crl_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_server *s = arg;
	struct crl_stamp now;

	(void)fd;
	(void)what;
	if (s->snap->cfg.crl == NULL || atomic_load(&s->stopping))
		return;
	crl_stamp_take(s->snap->cfg.crl, &now);
	if (!crl_stamp_same(&now, &s->crl))
		reload(s, "the CRL file changed", 0);
}

static void
audit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_server *s = arg;
	struct tg_error e;
	int r;

	(void)fd;
	(void)what;
	tg_error_clear(&e);
	/* the log's own sync thread does batch mode's group commit (and its
	 * retries); this only reports a failed sync while no request comes */
	r = tg_audit_sync_failed(s->audit, &e);
	if (r != 0) {
		pthread_mutex_lock(&s->audit_mu);
		audit_outcome(s, r, &e);
		pthread_mutex_unlock(&s->audit_mu);
	}
}

/* A persistent timer (or signal) event on the main loop; NULL on failure. */
static struct event *
main_event(struct tg_gate_server *s, evutil_socket_t fd, short what, event_callback_fn cb,
           unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	struct event *ev = event_new(s->base, fd, what, cb, s);

	if (ev != NULL && event_add(ev, ms > 0 ? &tv : NULL) != 0) {
		event_free(ev);
		ev = NULL;
	}
	return ev;
}

/* ------------------------------------------------------------------ */
/* The two ways in                                                     */
/* ------------------------------------------------------------------ */

static void
summary(const struct tg_gate_snapshot *sn, FILE *out)
{
	const struct tg_gate_config *c = &sn->cfg;
	size_t i;

	fprintf(out, "configuration OK: %zu listener%s (", c->nlisteners,
	        c->nlisteners == 1 ? "" : "s");
	for (i = 0; i < c->nlisteners; i++) {
		const struct tg_gate_listener_cfg *l = &c->listeners[i];
		fprintf(out, "%s%s on %s, mode %s, upstream %s, %zu route%s", i > 0 ? "; " : "",
		        l->name, l->listen, mode_name(l->mode),
		        l->upstream != NULL ? l->upstream : "none", sn->ls[i].policy.nroutes,
		        sn->ls[i].policy.nroutes == 1 ? "" : "s");
	}
	fprintf(out, "); server certificate %s, key %s", c->cert != NULL ? c->cert : "none",
	        c->key != NULL ? c->key : "none");
	fprintf(out, "; %zu client CA file%s", c->nclient_ca, c->nclient_ca == 1 ? "" : "s");
	fprintf(out, "; CRL %s; session tickets %s", c->crl != NULL ? c->crl : "none",
	        c->tickets != NULL ? c->tickets : "per-process keys");
	fprintf(out, "; audit log %s (fsync %s); admin %s; %u worker%s%s.\n", c->audit_file,
	        c->audit_fsync == TG_AUDIT_FSYNC_ALWAYS  ? "always"
	        : c->audit_fsync == TG_AUDIT_FSYNC_NEVER ? "never"
	                                                 : "batch",
	        c->admin != NULL ? c->admin : "none", c->workers, c->workers == 1 ? "" : "s",
	        c->dry_run ? "; DRY RUN: denials are logged, not enforced" : "");
}

int
tg_gate_server_check(struct tg_gate_config *cfg, FILE *out, struct tg_error *err)
{
	struct tg_gate_snapshot *sn = NULL;
	int r;

	if ((r = snapshot_new(cfg, 1, &sn, err)) != 0)
		goto out;
	summary(sn, out);
	fflush(out);
out:
	tg_gate_snapshot_put(sn);
	return r;
}

static void
server_free(struct tg_gate_server *s)
{
	struct tg_error e;
	size_t i;

	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	if (s->admin != NULL)
		tg_gate_admin_free(s->admin);
	for (i = 0; s->nwk > 0 && s->snap != NULL && i < s->wk[0].nls; i++)
		if (s->wk[0].ls[i].unix_made)
			unlink(s->snap->cfg.listeners[i].addr.path);
	workers_free(s);
	if (s->audit != NULL) {
		tg_error_clear(&e);
		if (tg_audit_sync(s->audit, &e) != 0)
			say("audit log: final sync failed: %s", e.msg);
		tg_audit_close(s->audit);
	}
	tg_gate_snapshot_put(s->snap);
	if (s->base != NULL)
		event_base_free(s->base);
	tg_gate_metrics_free(s->m);
	tg_gate_ratelimit_free(s->rl);
	pthread_mutex_destroy(&s->snap_mu);
	pthread_mutex_destroy(&s->audit_mu);
}

/* Everything up to "ready": snapshot, audit log, workers and their sockets. */
static int
server_start(struct tg_gate_server *s, struct tg_gate_config *cfg, struct tg_error *err)
{
	char bound[160];
	const struct tg_gate_listener_cfg *l;
	size_t i;
	int r;

	if ((r = tg_gate_metrics_new(&s->m, err)) != 0)
		goto out;
	/* room for as many sources as connections (each slot ~48 bytes) */
	if ((r = tg_gate_ratelimit_new(cfg->limits.max_conns, &s->rl, err)) != 0)
		goto out;
	crl_stamp_take(cfg->crl, &s->crl);
	if ((r = snapshot_new(cfg, 1, &s->snap, err)) != 0)
		goto out;
	s->generation = 1;
	s->max_conns = s->snap->cfg.limits.max_conns;
	if ((s->base = event_base_new()) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot make the main event loop");
		goto out;
	}
	if ((r = workers_new(s, err)) != 0)
		goto out;
	for (i = 0; i < s->snap->cfg.nlisteners; i++)
		if ((r = bind_listener(s, i, err)) != 0)
			goto out;
	/* after the sockets: a gate refused for a taken port never touches the log */
	if ((r = tg_audit_open(s->snap->cfg.audit_file, s->snap->cfg.audit_fsync, &s->audit,
	                       err)) != 0)
		goto out;
	if (s->snap->cfg.admin != NULL) {
		if ((r = tg_gate_admin_start(s->base, s->snap->cfg.admin, s->m, ready_fn, s,
		                             &s->admin, err)) != 0)
			goto out;
	}
	for (i = 0; i < s->snap->cfg.nlisteners; i++) {
		l = &s->snap->cfg.listeners[i];
		if (l->addr.scheme == TG_GATE_SCHEME_UNIX)
			snprintf(bound, sizeof(bound), "%s", l->listen);
		else
			sock_name(s->wk[0].ls[i].fd, bound, sizeof(bound));
		say("listener %s on %s (mode %s, upstream %s)", l->name, bound, mode_name(l->mode),
		    l->upstream != NULL             ? l->upstream
		    : l->mode == TG_GATE_MODE_AUTHZ ? "none (nginx auth_request)"
		                                    : "per route");
	}
	if (s->snap->cfg.admin != NULL)
		say("admin on %s", s->snap->cfg.admin);
	r = 0;
out:
	return r;
}

int
tg_gate_server_run(struct tg_gate_config *cfg, int argc, char **argv, struct tg_error *err)
{
	struct tg_gate_server s;
	struct event *evs[5] = {NULL};
	const char *why;
	size_t i, n = 4;
	int r;

	memset(&s, 0, sizeof(s));
	s.argc = argc;
	s.argv = argv;
	pthread_mutex_init(&s.snap_mu, NULL);
	audit_mutex_init(&s.audit_mu);
	atomic_init(&s.nconns, 0);
	atomic_init(&s.stopping, 0);
	if (evthread_use_pthreads() != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "libevent has no pthreads support");
		goto out;
	}
	if (tg_gate_alloc_tune(&why) == 0)
		say("allocator left as it is: %s", why);
	signal(SIGPIPE, SIG_IGN);
	/* an audit log over the file size limit fails its writes (EFBIG),
	 * so the gate fails closed and says why instead of being killed */
	signal(SIGXFSZ, SIG_IGN);
	if ((r = server_start(&s, cfg, err)) != 0)
		goto out;
	evs[0] = main_event(&s, SIGHUP, EV_SIGNAL | EV_PERSIST, signal_cb, 0);
	evs[1] = main_event(&s, SIGTERM, EV_SIGNAL | EV_PERSIST, signal_cb, 0);
	evs[2] = main_event(&s, SIGINT, EV_SIGNAL | EV_PERSIST, signal_cb, 0);
	evs[3] = main_event(&s, -1, EV_PERSIST, crl_watch_cb, CRL_WATCH_MS);
	if (s.snap->cfg.audit_fsync == TG_AUDIT_FSYNC_BATCH)
		evs[n++] = main_event(&s, -1, EV_PERSIST, audit_timer_cb, TG_AUDIT_BATCH_MS);
	for (i = 0; i < n; i++)
		if (evs[i] == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC, "cannot set up the main event loop");
			goto out;
		}
	if ((r = workers_start(&s, err)) != 0)
		goto out;
	say("ready");
	event_base_dispatch(s.base);
	say("stopped");
	r = 0;
out:
	for (i = 0; i < 5; i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	server_free(&s);
	return r;
}
