/*
 * upstream.c — the gate's connections to its upstreams, one pool per
 * worker (gate-int.h): http:// and tcp:// over TCP, unix:/PATH, https://
 * with TLS verified against the snapshot's upstream_ctx and the URL's
 * host; an idle keep-alive pool per URL for http, https and unix (tcp
 * mode's connections are never pooled).
 *
 * Names are resolved with one evdns_base per worker (resolv.conf and
 * /etc/hosts, read when the pool is made and again after each reload of
 * the configuration, SIGHUP); numeric addresses never wait
 * for DNS. Every address a name resolves to is tried in turn until one
 * accepts the connection, within limits.upstream_connect_ms in all; as
 * curl does, an address that does not answer is given up for the next
 * after its share of the time left (the time left divided by the
 * addresses left, itself included), so one silent address cannot use up
 * the whole limit. An address whose TCP connection is up keeps the rest
 * of the limit for its TLS handshake.
 * Everything runs on the worker's loop: no call here blocks.
 */
#include "gate-int.h"
#include "tg_dec.h"
#include "tg_gate_deadline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#define UP_KEY_MAX 400

enum up_state {
	UP_CONNECTING = 1, /* connect (and TLS handshake) under way */
	UP_READY = 2,      /* connected or taken from the pool: cb due */
	UP_FAILED = 3,     /* failed before cb could be told: cb due */
	UP_BUSY = 4,       /* handed to the caller */
	UP_IDLE = 5,       /* in the pool */
};

struct tg_gate_upstream_conn {
	struct tg_gate_upstream_pool *pool;
	struct bufferevent *bev;
	struct event *ev;         /* connect timeout, or the deferred callback */
	struct event *try_ev;     /* the current address's share of the time */
	struct timespec deadline; /* CLOCK_MONOTONIC: the end of connect_ms */
	tg_gate_upstream_cb cb;
	void *arg;
	enum up_state state;
	const char *kind; /* with UP_FAILED */
	int poolable;     /* http, https, unix; never tcp */
	int reused;       /* taken from the pool (not connected for this request) */
	int tls;
	SSL_CTX *tls_ctx; /* https: the upstream_ctx it was made with (a reference) */
	char host[256];   /* https: the name SNI sends and the certificate must match */
	struct evdns_getaddrinfo_request *dns; /* the lookup under way, or NULL */
	struct evutil_addrinfo *ai, *ai_next;  /* the addresses (NULL: unix:); the next to try */
	unsigned tried;                        /* addresses tried so far */
	unsigned pool_max;                     /* limits.upstream_pool when it was made */
	unsigned idle_ms;    /* limits.idle_ms: how long it may wait in the pool */
	unsigned connect_ms; /* limits.upstream_connect_ms */
	char key[UP_KEY_MAX];
	struct tg_gate_upstream_conn *prev, *next; /* the pool's list */
};

struct tg_gate_upstream_pool {
	struct tg_gate_worker *w;
	struct evdns_base *dns;
	unsigned long dns_gen;              /* the snapshot whose load last (re)read dns's files */
	struct tg_gate_upstream_conn *head; /* idle, connecting and due connections */
	unsigned nidle;                     /* how many of them are UP_IDLE (any key) */
	char reason[256];                   /* why the last connection failed */
};

static void
list_add(struct tg_gate_upstream_pool *p, struct tg_gate_upstream_conn *uc)
{
	uc->prev = NULL;
	uc->next = p->head;
	if (p->head != NULL)
		p->head->prev = uc;
	p->head = uc;
}

static void
list_del(struct tg_gate_upstream_pool *p, struct tg_gate_upstream_conn *uc)
{
	if (uc->prev != NULL)
		uc->prev->next = uc->next;
	else if (p->head == uc)
		p->head = uc->next;
	if (uc->next != NULL)
		uc->next->prev = uc->prev;
	uc->prev = uc->next = NULL;
}

/* uc's state becomes st; the pool's count of idle connections follows. */
static void
set_state(struct tg_gate_upstream_conn *uc, enum up_state st)
{
	uc->pool->nidle += (st == UP_IDLE) - (uc->state == UP_IDLE);
	uc->state = st;
}

/* Frees uc (on the pool's list or not). */
static void
conn_free(struct tg_gate_upstream_conn *uc)
{
	if (uc == NULL)
		return;
	if (uc->state != UP_BUSY)
		list_del(uc->pool, uc);
	set_state(uc, UP_BUSY); /* out of the pool's idle count */
	if (uc->ev != NULL)
		event_free(uc->ev);
	if (uc->try_ev != NULL)
		event_free(uc->try_ev);
	if (uc->bev != NULL)
		bufferevent_free(uc->bev);
	/* its callback comes later, with EVUTIL_EAI_CANCEL, and leaves uc alone */
	if (uc->dns != NULL)
		evdns_getaddrinfo_cancel(uc->dns);
	if (uc->ai != NULL)
		evutil_freeaddrinfo(uc->ai);
	SSL_CTX_free(uc->tls_ctx);
	free(uc);
}

/* Appends the NUL-terminated s to the key at out (cap bytes), cut at cap - 1. */
static void
key_add(char *out, size_t cap, size_t *at, const char *s)
{
	size_t n = strlen(s);

	if (n > cap - 1 - *at)
		n = cap - 1 - *at;
	memcpy(out + *at, s, n);
	*at += n;
	out[*at] = '\0';
}

/*
 * The pool's key of url: "SCHEME|HOST|PORT|PATH|GENERATION" (at most 395
 * bytes with the url's field sizes: UP_KEY_MAX holds it). Made per
 * request, without printf.
 */
static void
url_key(const struct tg_gate_snapshot *snap, const struct tg_gate_url *url, char *out, size_t cap)
{
	char num[TG_DEC_MAX];
	size_t at = 0;

	out[0] = '\0';
	(void)tg_dec_i64((int64_t)url->scheme, num);
	key_add(out, cap, &at, num);
	key_add(out, cap, &at, "|");
	key_add(out, cap, &at, url->host);
	key_add(out, cap, &at, "|");
	key_add(out, cap, &at, url->port);
	key_add(out, cap, &at, "|");
	key_add(out, cap, &at, url->path);
	key_add(out, cap, &at, "|");
	/* An https connection was verified under one snapshot's CA: a reload
	 * that changes the CA must not hand out connections it would refuse. */
	(void)tg_dec_u64(url->scheme == TG_GATE_SCHEME_HTTPS ? snap->generation : 0u, num);
	key_add(out, cap, &at, num);
}

/* The deferred callback, the connect timeout. */
static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_upstream_conn *uc = arg;
	tg_gate_upstream_cb cb = uc->cb;
	void *cbarg = uc->arg;
	const char *kind = uc->kind;

	(void)fd;
	(void)what;
	if (uc->state == UP_READY) {
		list_del(uc->pool, uc);
		set_state(uc, UP_BUSY);
		cb(uc, NULL, cbarg);
		return;
	}
	if (uc->state == UP_CONNECTING) {
		snprintf(uc->pool->reason, sizeof(uc->pool->reason),
		         uc->dns != NULL
		             ? "no answer from DNS for the upstream's host within %u ms "
		               "(limits.upstream_connect_ms)"
		             : "no connection to the upstream within %u ms "
		               "(limits.upstream_connect_ms)%s",
		         uc->connect_ms,
		         uc->tried > 1 && uc->ai_next == NULL ? " (every address of its name tried)"
		                                              : "");
		kind = "timeout";
	}
	conn_free(uc);
	cb(NULL, kind != NULL ? kind : "refused", cbarg);
}

/* Runs uc's callback from the loop, soon. */
static void
conn_due(struct tg_gate_upstream_conn *uc, enum up_state st, const char *kind)
{
	set_state(uc, st);
	uc->kind = kind;
	evtimer_del(uc->ev);
	if (uc->try_ev != NULL)
		evtimer_del(uc->try_ev);
	/* activated, not a 0 ms timer: it runs in this pass of the loop,
	 * without another epoll_wait first */
	event_active(uc->ev, EV_TIMEOUT, 1);
}

static void
tls_reason(struct tg_gate_upstream_conn *uc, char *out, size_t cap)
{
	SSL *ssl = bufferevent_openssl_get_ssl(uc->bev);
	unsigned long e = bufferevent_get_openssl_error(uc->bev);
	long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	char buf[200] = "";

	if (vr != X509_V_OK)
		snprintf(out, cap,
		         "TLS: the upstream's certificate is not trusted (%s); check "
		         "upstream_ca and the URL's host",
		         X509_verify_cert_error_string(vr));
	else if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(out, cap, "TLS handshake with the upstream failed: %s", buf);
	} else
		out[0] = '\0';
	while (bufferevent_get_openssl_error(uc->bev) != 0)
		;
}

static void conn_next(struct tg_gate_upstream_conn *uc, int err);

/* Whether bev's socket got as far as a TCP connection. */
static int
tcp_connected(struct bufferevent *bev)
{
	struct sockaddr_storage ss;
	socklen_t n = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(bev);

	return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &n) == 0;
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct tg_gate_upstream_conn *uc = arg;
	struct tg_gate_upstream_pool *p = uc->pool;
	int e = EVUTIL_SOCKET_ERROR(), one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		/* a request's head and its body go out as two writes (tcp mode
		 * relays whatever the client writes): with Nagle on, the second
		 * waited for the upstream's delayed ACK, 40 ms on Linux (TCP:
		 * connected to a resolved address) */
		if (uc->ai != NULL)
			(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
			                 sizeof(one));
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		conn_due(uc, UP_READY, NULL);
		return;
	}
	/* no TCP connection to this address (refused, unreachable; a TLS
	 * bufferevent may call that EOF): the next address, if any */
	if (uc->ai_next != NULL && !tcp_connected(bev)) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_free(bev);
		uc->bev = NULL;
		conn_next(uc, e);
		return;
	}
	if (uc->tls && !SSL_in_before(bufferevent_openssl_get_ssl(bev)) &&
	    (tls_reason(uc, p->reason, sizeof(p->reason)), p->reason[0] != '\0'))
		;
	else if (what & BEV_EVENT_EOF)
		snprintf(p->reason, sizeof(p->reason),
		         "the upstream closed the connection at once");
	else
		snprintf(p->reason, sizeof(p->reason), "cannot connect to the upstream: %s%s",
		         e != 0 ? evutil_socket_error_to_string(e) : "connection failed",
		         uc->tried > 1 ? " (every address of its name tried)" : "");
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	conn_due(uc, UP_FAILED, "refused");
}

/* An idle pooled connection heard something: the upstream closed it (or
 * sent bytes nobody asked for, or it idled too long). Dropped. */
static void
idle_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_free(arg);
}

static void
idle_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_free(arg);
}

int
tg_gate_upstream_pool_new(struct tg_gate_worker *w, struct tg_gate_upstream_pool **out)
{
	struct tg_gate_upstream_pool *p = calloc(1, sizeof(*p));
	int rc = TG_ERR_ALLOC;

	if (p == NULL)
		goto out;
	p->w = w;
	/* made with the workers, under the first load's snapshot (generation 1) */
	p->dns_gen = 1;
	/* resolv.conf and /etc/hosts; without them (a bare container) numeric
	 * addresses still work and names fail with a resolver error. */
	p->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	                                     EVDNS_BASE_NAMESERVERS_NO_DEFAULT);
	if (p->dns == NULL)
		p->dns = evdns_base_new(w->base, 0);
	if (p->dns == NULL)
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	tg_gate_upstream_pool_free(p);
	return rc;
}

void
tg_gate_upstream_pool_free(struct tg_gate_upstream_pool *p)
{
	if (p == NULL)
		return;
	while (p->head != NULL)
		conn_free(p->head);
	if (p->dns != NULL)
		evdns_base_free(p->dns, 0);
	free(p);
}

/*
 * Reads resolv.conf and /etc/hosts again into p's resolver: the first
 * connection after a reload (SIGHUP) does it, as the machine's may have
 * changed since the start. Lookups under way are sent again to the new
 * servers.
 */
static void
pool_dns_reload(struct tg_gate_upstream_pool *p)
{
	evdns_base_clear_nameservers_and_suspend(p->dns);
	evdns_base_clear_host_addresses(p->dns);
	/* without the file: no servers (names fail, numeric addresses work) */
	(void)evdns_base_resolv_conf_parse(
	    p->dns, DNS_OPTIONS_ALL | DNS_OPTION_NAMESERVERS_NO_DEFAULT, "/etc/resolv.conf");
	evdns_base_resume(p->dns);
}

const char *
tg_gate_upstream_reason(const struct tg_gate_upstream_pool *p)
{
	return p->reason;
}

/* A pooled connection to key still open, or NULL. Dead ones are dropped
 * (peek: also those whose close the loop has not seen yet). */
static struct tg_gate_upstream_conn *
pool_take(struct tg_gate_upstream_pool *p, const char *key, int peek)
{
	struct tg_gate_upstream_conn *uc, *next;
	char c;

	for (uc = p->head; uc != NULL; uc = next) {
		next = uc->next;
		if (uc->state != UP_IDLE || strcmp(uc->key, key) != 0)
			continue;
		/* A plain socket can say at once whether the upstream closed it
		 * (a FIN not yet seen by the loop); TLS bytes are records. */
		if (peek && !uc->tls &&
		    (recv(bufferevent_getfd(uc->bev), &c, 1, MSG_PEEK | MSG_DONTWAIT) != -1 ||
		     (errno != EAGAIN && errno != EWOULDBLOCK))) {
			conn_free(uc);
			continue;
		}
		uc->reused = 1;
		/* reading stays enabled (no epoll_ctl per request): until the
		 * taker sets its callbacks, in this pass of the loop, no read
		 * event is looked at */
		bufferevent_setcb(uc->bev, NULL, NULL, NULL, NULL);
		bufferevent_set_timeouts(uc->bev, NULL, NULL);
		return uc;
	}
	return NULL;
}

static int
is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The TLS side of an https:// connection: SNI, and the host checked. */
static SSL *
tls_new(SSL_CTX *ctx, const char *host)
{
	SSL *ssl = ctx != NULL ? SSL_new(ctx) : NULL;
	int ok = ssl != NULL;

	if (ok) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (is_ip(host))
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
		else
			ok = SSL_set_tlsext_host_name(ssl, host) == 1 &&
			     SSL_set1_host(ssl, host) == 1;
	}
	if (!ok) {
		SSL_free(ssl);
		ssl = NULL;
	}
	return ssl;
}

/* A new, unconnected bufferevent for uc (TLS for https). 0, or -1. */
static int
bev_new(struct tg_gate_upstream_conn *uc)
{
	struct event_base *base = uc->pool->w->base;
	SSL *ssl;
	int r = -1;

	if (uc->tls) {
		if ((ssl = tls_new(uc->tls_ctx, uc->host)) == NULL)
			goto out;
		uc->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
		                                         BEV_OPT_CLOSE_ON_FREE);
		if (uc->bev == NULL) {
			SSL_free(ssl);
			goto out;
		}
		/* Upstreams that end a body by closing often skip close_notify. */
		bufferevent_openssl_set_allow_dirty_shutdown(uc->bev, 1);
	} else if ((uc->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		goto out;
	}
	bufferevent_setcb(uc->bev, NULL, NULL, conn_event, uc);
	r = 0;
out:
	return r;
}

/* Fails uc with the pool's reason set (its callback from the loop). */
static void
conn_fail(struct tg_gate_upstream_conn *uc)
{
	if (uc->bev != NULL)
		bufferevent_setcb(uc->bev, NULL, NULL, NULL, NULL);
	conn_due(uc, UP_FAILED, "refused");
}

/* The current address's share is up: the next address, unless this one
 * answered (its TLS handshake keeps the rest of connect_ms). */
static void
try_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tg_gate_upstream_conn *uc = arg;

	(void)fd;
	(void)what;
	if (uc->state == UP_CONNECTING && uc->bev != NULL && !tcp_connected(uc->bev)) {
		bufferevent_setcb(uc->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(uc->bev);
		uc->bev = NULL;
		conn_next(uc, ETIMEDOUT);
	}
}

/*
 * Arms uc's try_ev with the share of the time left that the address just
 * tried gets: the time left divided by the addresses left, itself
 * included. The last address gets no timer of its own (connect_ms ends it).
 */
static void
try_arm(struct tg_gate_upstream_conn *uc)
{
	struct evutil_addrinfo *a;
	struct timeval tv;
	unsigned n = 1;

	for (a = uc->ai_next; a != NULL; a = a->ai_next)
		n++;
	/* made for names with more than one address only (the timer of a
	 * connection that had no memory for it is the whole limit) */
	if (n > 1 && uc->try_ev == NULL)
		uc->try_ev = evtimer_new(uc->pool->w->base, try_timer, uc);
	if (n > 1 && uc->try_ev != NULL) {
		tg_gate_deadline_share(&uc->deadline, n, &tv);
		evtimer_add(uc->try_ev, &tv);
	} else if (uc->try_ev != NULL) {
		/* the last address: the share of one that failed early must not
		 * end it */
		evtimer_del(uc->try_ev);
	}
}

/*
 * Connects to the next of uc's addresses that takes a connect(2); err:
 * why the one before failed (0: none failed yet). Every address failed:
 * uc failed.
 */
static void
conn_next(struct tg_gate_upstream_conn *uc, int err)
{
	struct tg_gate_upstream_pool *p = uc->pool;
	struct evutil_addrinfo *a;

	while ((a = uc->ai_next) != NULL) {
		uc->ai_next = a->ai_next;
		uc->tried++;
		if (uc->bev == NULL && bev_new(uc) != 0) {
			err = ENOMEM;
			break;
		}
		if (bufferevent_socket_connect(uc->bev, a->ai_addr, (int)a->ai_addrlen) == 0) {
			try_arm(uc);
			goto out; /* conn_event tells */
		}
		err = EVUTIL_SOCKET_ERROR();
		bufferevent_free(uc->bev);
		uc->bev = NULL;
	}
	snprintf(p->reason, sizeof(p->reason), "cannot connect to the upstream: %s%s",
	         err != 0 ? evutil_socket_error_to_string(err) : "no address for its name",
	         uc->tried > 1 ? " (every address of its name tried)" : "");
	conn_fail(uc);
out:
	return;
}

/* evdns_getaddrinfo's callback: uc's addresses, or why there are none. */
static void
conn_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct tg_gate_upstream_conn *uc = arg;

	if (result == EVUTIL_EAI_CANCEL) {
		/* uc is gone (conn_free cancelled the lookup) */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
	} else if (result != 0) {
		uc->dns = NULL;
		snprintf(uc->pool->reason, sizeof(uc->pool->reason),
		         "cannot resolve the upstream's host: %s", evutil_gai_strerror(result));
		conn_fail(uc);
	} else {
		uc->dns = NULL;
		uc->ai = uc->ai_next = ai;
		conn_next(uc, 0);
	}
}

/* Starts connecting uc (its first bufferevent made) to url. 0, or -1
 * with the pool's reason set. */
static int
conn_start(struct tg_gate_upstream_conn *uc, const struct tg_gate_url *url)
{
	struct tg_gate_upstream_pool *p = uc->pool;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct sockaddr_un sun;
	int rc = 0;

	if (url->scheme == TG_GATE_SCHEME_UNIX) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", url->path);
		rc = bufferevent_socket_connect(uc->bev, (struct sockaddr *)&sun, sizeof(sun));
		if (rc != 0)
			snprintf(p->reason, sizeof(p->reason), "cannot connect to the upstream: %s",
			         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* a numeric host or one in /etc/hosts: conn_resolved runs before
	 * this returns (NULL), and its outcome still reaches the caller from
	 * the loop */
	if ((req = evdns_getaddrinfo(p->dns, url->host, url->port, &hints, conn_resolved, uc)) !=
	    NULL)
		uc->dns = req;
out:
	return rc;
}

int
tg_gate_upstream_get(struct tg_gate_upstream_pool *p, const struct tg_gate_snapshot *snap,
                     const struct tg_gate_url *url, tg_gate_upstream_cb cb, void *arg)
{
	return tg_gate_upstream_get_ex(p, snap, url, 0, cb, arg);
}

int
tg_gate_upstream_get_ex(struct tg_gate_upstream_pool *p, const struct tg_gate_snapshot *snap,
                        const struct tg_gate_url *url, unsigned flags, tg_gate_upstream_cb cb,
                        void *arg)
{
	struct tg_gate_upstream_conn *uc = NULL;
	struct timeval tv;
	char key[UP_KEY_MAX];
	int rc = TG_ERR_ALLOC;
	unsigned ms = snap->cfg.limits.upstream_connect_ms;

	url_key(snap, url, key, sizeof(key));
	p->reason[0] = '\0';
	if (p->dns_gen != snap->generation && url->scheme != TG_GATE_SCHEME_UNIX) {
		pool_dns_reload(p);
		p->dns_gen = snap->generation;
	}
	if (url->scheme != TG_GATE_SCHEME_TCP && (flags & TG_GATE_UP_NEW) == 0 &&
	    (uc = pool_take(p, key, (flags & TG_GATE_UP_RETRYABLE) == 0)) != NULL) {
		uc->cb = cb;
		uc->arg = arg;
		conn_due(uc, UP_READY, NULL);
		uc = NULL;
		rc = 0;
		goto out;
	}
	if ((uc = calloc(1, sizeof(*uc))) == NULL)
		goto out;
	uc->pool = p;
	uc->cb = cb;
	uc->arg = arg;
	uc->state = UP_CONNECTING;
	uc->poolable = url->scheme != TG_GATE_SCHEME_TCP;
	uc->tls = url->scheme == TG_GATE_SCHEME_HTTPS;
	uc->pool_max = snap->cfg.limits.upstream_pool;
	uc->idle_ms = snap->cfg.limits.idle_ms;
	uc->connect_ms = ms;
	memcpy(uc->key, key, sizeof(key));
	list_add(p, uc);
	if ((uc->ev = evtimer_new(p->w->base, conn_timer, uc)) == NULL)
		goto out;
	if (uc->tls) {
		if (snap->upstream_ctx == NULL) {
			rc = TG_ERR_TLS;
			snprintf(p->reason, sizeof(p->reason),
			         "no TLS client context for https:// upstreams; set upstream_ca");
			goto out;
		}
		SSL_CTX_up_ref(snap->upstream_ctx);
		uc->tls_ctx = snap->upstream_ctx;
		snprintf(uc->host, sizeof(uc->host), "%s", url->host);
	}
	if (bev_new(uc) != 0) {
		if (uc->tls) {
			rc = TG_ERR_TLS;
			snprintf(p->reason, sizeof(p->reason),
			         "cannot set up TLS for the upstream host");
		}
		goto out;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (long)(ms % 1000) * 1000;
	tg_gate_deadline_set(&uc->deadline, ms);
	evtimer_add(uc->ev, &tv);
	/* the callback still runs from the loop, never from here */
	if (conn_start(uc, url) != 0)
		conn_fail(uc);
	uc = NULL;
	rc = 0;
out:
	if (uc != NULL)
		conn_free(uc);
	return rc;
}

struct bufferevent *
tg_gate_upstream_bev(struct tg_gate_upstream_conn *uc)
{
	return uc->bev;
}

int
tg_gate_upstream_send(struct tg_gate_upstream_conn *uc, struct evbuffer *data)
{
	size_t n = evbuffer_get_length(data);
	const unsigned char *b = evbuffer_pullup(data, -1);
	evutil_socket_t fd = bufferevent_getfd(uc->bev);
	ssize_t w = 0;

	if (n == 0)
		return 0;
	if (b == NULL)
		return -1;
	/* nothing queued before it on a plain socket: write it now, not after
	 * an EPOLLOUT round trip; a failed or short write leaves the rest to
	 * the bufferevent, which reports any error */
	if (!uc->tls && fd >= 0 && evbuffer_get_length(bufferevent_get_output(uc->bev)) == 0 &&
	    (w = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0)
		w = 0;
	return (size_t)w < n ? bufferevent_write(uc->bev, b + w, n - (size_t)w) : 0;
}

int
tg_gate_upstream_reused(const struct tg_gate_upstream_conn *uc)
{
	return uc->reused;
}

static unsigned
pool_count(const struct tg_gate_upstream_pool *p, const char *key)
{
	const struct tg_gate_upstream_conn *uc;
	unsigned n = 0;

	for (uc = p->head; uc != NULL; uc = uc->next)
		n += uc->state == UP_IDLE && strcmp(uc->key, key) == 0;
	return n;
}

void
tg_gate_upstream_release(struct tg_gate_upstream_conn *uc, int reusable)
{
	struct tg_gate_upstream_pool *p;
	struct timeval tv;

	if (uc == NULL)
		return;
	p = uc->pool;
	/* Reusable only with nothing unread and nothing unsent: a response
	 * byte left over would be read as the next request's answer. */
	if (!reusable || !uc->poolable ||
	    evbuffer_get_length(bufferevent_get_input(uc->bev)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(uc->bev)) != 0 ||
	    /* no key has more idle connections than all of them together */
	    (p->nidle >= uc->pool_max && pool_count(p, uc->key) >= uc->pool_max)) {
		conn_free(uc);
		return;
	}
	set_state(uc, UP_IDLE);
	uc->cb = NULL;
	uc->arg = NULL;
	evtimer_del(uc->ev);
	list_add(p, uc);
	tv.tv_sec = uc->idle_ms / 1000;
	tv.tv_usec = (long)(uc->idle_ms % 1000) * 1000;
	bufferevent_setwatermark(uc->bev, EV_READ | EV_WRITE, 0, 0);
	bufferevent_setcb(uc->bev, idle_read, NULL, idle_event, uc);
	bufferevent_set_timeouts(uc->bev, &tv, NULL);
	/* only what is not enabled yet: enabling costs an epoll_ctl each time */
	if ((bufferevent_get_enabled(uc->bev) & EV_READ) == 0)
		bufferevent_enable(uc->bev, EV_READ);
}
