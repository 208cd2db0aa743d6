/*
 * upstream.c — the agent's mutual-TLS connections to the gate
 * (agent-int.h). A connection is made on a non-blocking socket; its
 * handshake is driven on the raw socket so that a token signature
 * (SSL_ERROR_WANT_ASYNC: tg_tlskey signs on its threads) only parks this
 * connection while the loop serves the others. The gate's certificate is
 * verified against the CA and its identity (the exact URI SAN, or the DNS
 * name / IP). Token signatures are saved twice over: idle keep-alive
 * connections are pooled, and a new connection resumes the last TLS
 * session (the newest ticket), costing no signature; while no session is
 * known only one full handshake runs at a time and the others wait for
 * its ticket, so a burst of N connections costs one signature. Every
 * address of the gate's name (up to AG_ADDRS_MAX) is tried in turn, each
 * given up for the next after its share of the time left (uc_try_arm).
 * The name is looked up again (resolve.c, off the loop) when a new
 * connection needs it and the last answer is older than UP_DNS_FRESH_MS,
 * or failed on every address: a gate that moved is found without a
 * restart, and an agent started before the network was up starts anyway.
 */
#include "agent-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tg_gate_deadline.h"
#include "tg_gate_tls.h"

#define UP_TICKET_WAIT_MS 500u   /* after a full handshake, waiters wait this long for its ticket */
#define UP_DNS_FRESH_MS   30000u /* an answer for the gate's name is used this long */
/* ag_uconn_write: at most one record written at once */
#define UP_WRITE_AT_ONCE 16384u
/* uc_job_finish: the wait fds of a paused signing job looked at (tlskey: one) */
#define UP_ASYNC_FDS 4u

enum uc_state {
	UC_CONNECTING = 1,
	UC_HANDSHAKE = 2,
	UC_BUSY = 3, /* handed out (or about to be: its request's callback is due) */
	UC_IDLE = 4,
};

struct ag_uconn {
	struct ag_up *up;
	evutil_socket_t fd;
	SSL *ssl;
	struct bufferevent *bev;
	struct event *wr, *timer; /* wr: connected (writable) */
	struct event *try;        /* the current address's share of AG_CONN_MS */
	struct timespec deadline; /* CLOCK_MONOTONIC: the end of AG_CONN_MS */
	struct tg_gate_hs_io io;  /* the handshake's events */
	enum uc_state state;
	struct ag_up_req *req;  /* while connecting: who gets it */
	int full;               /* counted in up->full_inflight */
	int counted;            /* counted in metrics upstream_open */
	int reused;             /* taken from the pool (it served an earlier request) */
	struct ag_addrs *addrs; /* until its TCP connection is up: the gate's addresses */
	unsigned addr;          /* the index of the one tried */
	int resolving;          /* waiting for the lookup of the gate's name */
	char why[256];          /* the identity check's refusal */
	struct ag_uconn *prev, *next;
};

struct ag_up_req {
	struct ag_up *up;
	ag_up_cb cb;
	void *arg;
	int pooled;
	int waiting;
	struct ag_uconn *uc; /* connecting for it, or assigned */
	struct event ev;     /* the deferred callback (made active: no timer, no syscall) */
	char why[600];
	struct ag_up_req *prev, *next;
};

struct ag_up {
	struct ag_server *srv;
	const struct tg_agent_listener_cfg *cfg;
	struct ag_key *key;
	SSL_CTX *ctx;
	struct ag_addrs *addrs;     /* the last answer for the gate's name (NULL: none) */
	struct timespec fresh_till; /* CLOCK_MONOTONIC: addrs is used until then */
	struct ag_resolver *res;    /* NULL: the host is an IP address, never looked up */
	char dns_why[128];          /* why the last lookup gave no address */
	int host_is_ip;
	SSL_SESSION *sess; /* the newest resumable session */
	struct ag_uconn *conns;
	struct ag_up_req *reqs;
	unsigned nidle;
	int full_inflight;
	struct event *kick; /* waiters give up waiting for a ticket */
};

static void uc_step(void *arg);
static void uc_connect_next(struct ag_uconn *uc, int err);
static void up_kick(struct ag_up *u);

/* ---- lists ---- */

#define LIST_ADD(head, x)                                                                          \
	do {                                                                                       \
		(x)->prev = NULL;                                                                  \
		(x)->next = (head);                                                                \
		if ((head) != NULL)                                                                \
			(head)->prev = (x);                                                        \
		(head) = (x);                                                                      \
	} while (0)
#define LIST_DEL(head, x)                                                                          \
	do {                                                                                       \
		if ((x)->prev != NULL)                                                             \
			(x)->prev->next = (x)->next;                                               \
		else if ((head) == (x))                                                            \
			(head) = (x)->next;                                                        \
		if ((x)->next != NULL)                                                             \
			(x)->next->prev = (x)->prev;                                               \
		(x)->prev = (x)->next = NULL;                                                      \
	} while (0)

/* ---- connections ---- */

/* 1 while uc's handshake is paused on a token signature (an ASYNC job). */
static int
uc_paused(const struct ag_uconn *uc)
{
	return uc->bev == NULL && uc->ssl != NULL && SSL_waiting_for_async(uc->ssl);
}

/*
 * Lets uc's paused signing job end, blocking: OpenSSL has no way to free
 * a paused ASYNC job, and SSL_free would leave it behind with what the
 * handshake holds on its stack (the key's references, the token's
 * request), to be used after the key and the token's module are gone.
 * Waits for the job's wait fds (the signing thread's answer) and resumes
 * it until it ends. Only the closes that cannot wait for the loop come
 * here (the agent's end, out of memory): a request that leaves lets the
 * handshake go on instead (ag_up_cancel, ag_up_flush).
 */
static void
uc_job_finish(struct ag_uconn *uc)
{
	OSSL_ASYNC_FD fds[UP_ASYNC_FDS];
	struct pollfd pfd[UP_ASYNC_FDS];
	size_t n, i;

	while (uc_paused(uc)) {
		n = 0;
		if (SSL_get_all_async_fds(uc->ssl, NULL, &n) == 1 && n > 0 && n <= UP_ASYNC_FDS &&
		    SSL_get_all_async_fds(uc->ssl, fds, &n) == 1) {
			for (i = 0; i < n; i++)
				pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
			(void)poll(pfd, (nfds_t)n, 100);
		} else {
			(void)poll(NULL, 0, 1);
		}
		ERR_clear_error();
		(void)SSL_do_handshake(uc->ssl); /* resumed early, the job pauses again */
	}
	ERR_clear_error();
}

static void
uc_close(struct ag_uconn *uc)
{
	struct ag_up *u = uc->up;

	tg_gate_hs_io_free(&uc->io); /* first: the job's wait fds close as it ends */
	if (uc_paused(uc))
		uc_job_finish(uc);
	if (uc->wr != NULL)
		event_free(uc->wr);
	if (uc->timer != NULL)
		event_free(uc->timer);
	if (uc->try != NULL)
		event_free(uc->try);
	ag_addrs_unref(uc->addrs);
	if (uc->bev != NULL) {
		bufferevent_free(uc->bev); /* frees the SSL and closes the socket */
	} else {
		SSL_free(uc->ssl);
		if (uc->fd >= 0)
			evutil_closesocket(uc->fd);
	}
	if (uc->state == UC_IDLE)
		u->nidle--;
	if (uc->counted)
		u->srv->m.upstream_open--;
	if (uc->full) {
		u->full_inflight--;
		uc->full = 0;
	}
	LIST_DEL(u->conns, uc);
	free(uc);
	up_kick(u);
}

static void
req_fire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_up_req *r = arg;
	struct ag_up *u = r->up;
	struct ag_uconn *uc = r->uc;

	(void)fd;
	(void)what;
	LIST_DEL(u->reqs, r);
	r->cb(uc, uc != NULL ? NULL : r->why, r->arg);
	free(r);
}

/* The request's callback is due (from the loop, in this pass of it). */
static void
req_fire(struct ag_up_req *r, struct ag_uconn *uc, const char *why)
{
	r->uc = uc;
	r->waiting = 0;
	if (uc == NULL)
		snprintf(r->why, sizeof(r->why), "%s",
		         why != NULL ? why : "no connection to the gate");
	else
		uc->req = NULL;
	event_active(&r->ev, EV_TIMEOUT, 1);
}

static void uc_fail(struct ag_uconn *uc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
uc_fail(struct ag_uconn *uc, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (uc->state == UC_HANDSHAKE)
		uc->up->srv->m.handshakes_failed++;
	if (uc->req != NULL)
		req_fire(uc->req, NULL, why);
	uc->req = NULL;
	fprintf(stderr, "tokengate agent: listener %s: %s\n", uc->up->cfg->name, why);
	ERR_clear_error();
	uc_close(uc);
}

static void
uc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_uconn *uc = arg;

	(void)fd;
	(void)what;
	if (uc_paused(uc)) {
		/* a paused signing job cannot be abandoned: look again later */
		struct timeval tv = {1, 0};
		evtimer_add(uc->timer, &tv);
		return;
	}
	if (uc->resolving)
		uc_fail(uc,
		        "no answer from DNS for the gate's host '%s' within %u ms; check the name "
		        "and the network",
		        uc->up->cfg->up.host, AG_CONN_MS);
	else
		uc_fail(uc, "the connection to the gate %s did not finish within %u ms%s",
		        uc->up->cfg->upstream, AG_CONN_MS,
		        uc->addrs != NULL && uc->addrs->n > 1 && uc->state == UC_CONNECTING
		            ? " (every address of its name tried)"
		            : "");
}

/* An idle pooled connection: anything from the gate but a ticket ends it. */
static void
idle_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	uc_close(arg);
}

static void
idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	uc_close(arg);
}

static void
idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	uc_close(arg);
}

static void
uc_done(struct ag_uconn *uc)
{
	struct ag_up *u = uc->up;
	struct bufferevent *bev;

	u->srv->m.handshakes_ok++;
	if (SSL_session_reused(uc->ssl))
		u->srv->m.resumptions++;
	/* no private-key operation follows (no renegotiation) */
	SSL_clear_mode(uc->ssl, SSL_MODE_ASYNC);
	tg_gate_hs_io_free(&uc->io);
	evtimer_del(uc->timer);
	bev = bufferevent_openssl_socket_new(u->srv->base, uc->fd, uc->ssl, BUFFEREVENT_SSL_OPEN,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		uc_fail(uc, "out of memory after the TLS handshake with the gate");
		return;
	}
	uc->bev = bev;
	uc->fd = -1;
	uc->counted = 1;
	u->srv->m.upstream_open++;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_set_max_single_read(bev, TG_GATE_TLS_READ_MAX);
	bufferevent_set_max_single_write(bev, AG_IO_MAX);
	if (uc->full) {
		u->full_inflight--;
		uc->full = 0;
		if (u->sess == NULL) {
			/* its ticket comes with the first read; waiters wait a moment */
			struct timeval tv = {0, (suseconds_t)UP_TICKET_WAIT_MS * 1000};
			evtimer_add(u->kick, &tv);
		}
	}
	uc->state = UC_BUSY;
	if (uc->req != NULL) {
		req_fire(uc->req, uc, NULL);
	} else {
		ag_uconn_release(uc, 1);
		return;
	}
	up_kick(u);
}

static const char *
hs_reason(struct ag_uconn *uc, char *buf, size_t cap)
{
	long v = SSL_get_verify_result(uc->ssl);
	unsigned long e = ERR_peek_last_error();
	const char *data = NULL;
	int flags = 0;
	/* the first error of the handshake: the token's signer says why there
	 * (tlskey/asynckey.c), under OpenSSL's "EVP lib" */
	unsigned long first = ERR_peek_error_data(&data, &flags);

	if (uc->why[0] != '\0')
		return uc->why;
	if (ERR_GET_LIB(first) == ERR_LIB_USER && (flags & ERR_TXT_STRING) && data != NULL)
		snprintf(buf, cap, "%s", data);
	else if (v != X509_V_OK)
		snprintf(buf, cap, "the gate's certificate was refused: %s (check --ca and %s)",
		         X509_verify_cert_error_string(v),
		         uc->up->cfg->server_id != NULL ? "--server-id" : "--server-name");
	else if (e != 0)
		snprintf(buf, cap, "%s",
		         ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e)
		                                            : "TLS failure");
	else
		snprintf(buf, cap, "the gate closed the connection during the handshake");
	return buf;
}

static void
uc_step(void *arg)
{
	struct ag_uconn *uc = arg;
	char buf[256];
	int rc, e;

	ERR_clear_error();
	rc = SSL_do_handshake(uc->ssl);
	e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(uc->ssl, rc);
	if (e == SSL_ERROR_NONE)
		uc_done(uc);
	else if ((rc = tg_gate_hs_io_wait(&uc->io, e)) > 0)
		uc_fail(uc, "TLS handshake with the gate %s failed: %s", uc->up->cfg->upstream,
		        hs_reason(uc, buf, sizeof(buf)));
	else if (rc < 0)
		uc_fail(uc, "out of memory during the TLS handshake with the gate");
}

static void uc_connected_cb(evutil_socket_t fd, short what, void *arg);

/*
 * Arms uc's try timer with the share of AG_CONN_MS left that the address
 * uc->addr gets: the time left divided by the addresses left, itself
 * included (as curl does), so one gate address that never answers cannot
 * use up the whole limit. The last address gets no timer of its own.
 */
static void
uc_try_arm(struct ag_uconn *uc)
{
	unsigned n = uc->addrs->n - uc->addr;
	struct timeval tv;

	if (n > 1) {
		tg_gate_deadline_share(&uc->deadline, n, &tv);
		evtimer_add(uc->try, &tv);
	} else {
		/* the last address: the share of one that failed early must not end it */
		evtimer_del(uc->try);
	}
}

/* The address's share is up and its connect(2) has not completed: the next. */
static void
uc_try_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_uconn *uc = arg;

	(void)fd;
	(void)what;
	if (uc->state == UC_CONNECTING && uc->wr != NULL)
		uc_connect_next(uc, ETIMEDOUT);
}

/*
 * Starts uc's connect(2) to the gate's address uc->addr; one that fails at
 * once goes on to the next (uc_connect_next).
 */
static void
uc_connect(struct ag_uconn *uc)
{
	struct ag_up *u = uc->up;
	const struct ag_addrs *a = uc->addrs;
	int one = 1, e = 0;

	uc->fd = socket(a->sa[uc->addr].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (uc->fd < 0) {
		e = errno;
	} else {
		(void)setsockopt(uc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((uc->wr = event_new(u->srv->base, uc->fd, EV_WRITE, uc_connected_cb, uc)) ==
		    NULL)
			e = ENOMEM;
		else if (connect(uc->fd, (const struct sockaddr *)&a->sa[uc->addr],
		                 a->salen[uc->addr]) != 0 &&
		         errno != EINPROGRESS)
			e = errno;
		else {
			event_add(uc->wr, NULL);
			uc_try_arm(uc);
		}
	}
	if (e != 0)
		uc_connect_next(uc, e);
}

/*
 * The gate's address uc->addr failed with errno err: the next one, or uc
 * failed when none is left (the connect timer still runs for them all).
 */
static void
uc_connect_next(struct ag_uconn *uc, int err)
{
	struct ag_up *u = uc->up;

	if (uc->wr != NULL) {
		event_free(uc->wr);
		uc->wr = NULL;
	}
	if (uc->fd >= 0) {
		evutil_closesocket(uc->fd);
		uc->fd = -1;
	}
	if (err != ENOMEM && ++uc->addr < uc->addrs->n) {
		uc_connect(uc);
	} else {
		/* the name may have moved: the next connection asks again */
		if (uc->addrs == u->addrs)
			memset(&u->fresh_till, 0, sizeof(u->fresh_till));
		uc_fail(uc, "cannot connect to the gate %s: %s%s; is it running?", u->cfg->upstream,
		        strerror(err),
		        uc->addrs->n > 1 ? " (every address of its name tried)" : "");
	}
}

static void
uc_connected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_uconn *uc = arg;
	struct ag_up *u = uc->up;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr != 0) {
		uc_connect_next(uc, soerr);
		return;
	}
	event_free(uc->wr);
	uc->wr = NULL;
	evtimer_del(uc->try);
	ag_addrs_unref(uc->addrs); /* connected: the other addresses are not needed */
	uc->addrs = NULL;
	if ((uc->ssl = SSL_new(u->ctx)) == NULL || SSL_set_fd(uc->ssl, (int)uc->fd) != 1)
		goto oom;
	SSL_set_connect_state(uc->ssl);
	SSL_set_app_data(uc->ssl, uc);
	if (!u->host_is_ip && SSL_set_tlsext_host_name(uc->ssl, u->cfg->up.host) != 1)
		goto oom;
	if (u->cfg->server_id == NULL) {
		const char *name =
		    u->cfg->server_name != NULL ? u->cfg->server_name : u->cfg->up.host;
		unsigned char ip[16];
		int isip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;

		if ((isip && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(uc->ssl), name) != 1) ||
		    (!isip && SSL_set1_host(uc->ssl, name) != 1))
			goto oom;
	}
	if (u->sess != NULL) {
		/* a copy per connection: a TLS 1.3 handshake writes into its
		 * session (the resumption secret), so one object shared by
		 * concurrent handshakes would be corrupted */
		SSL_SESSION *copy = SSL_SESSION_dup(u->sess);
		int ok = copy != NULL && SSL_set_session(uc->ssl, copy) == 1;

		SSL_SESSION_free(copy);
		if (!ok)
			goto oom;
	}
	uc->state = UC_HANDSHAKE;
	if (tg_gate_hs_io_init(&uc->io, uc->ssl, uc->fd, u->srv->base, uc_step, uc) != 0)
		goto oom;
	uc_step(uc);
	return;
oom:
	uc_fail(uc, "out of memory connecting to the gate");
}

/* Connects uc to the gate's addresses a (from the first). */
static void
uc_connect_to(struct ag_uconn *uc, struct ag_addrs *a)
{
	uc->resolving = 0;
	ag_addrs_unref(uc->addrs);
	uc->addrs = a;
	a->refs++;
	uc->addr = 0;
	uc_connect(uc);
}

/*
 * Starts uc on the gate's addresses: the last answer while it is fresh
 * (or the host is an IP address), else after a lookup (up_resolved).
 */
static void
uc_begin(struct ag_uconn *uc)
{
	struct ag_up *u = uc->up;

	if (u->addrs != NULL && (u->res == NULL || !tg_gate_deadline_passed(&u->fresh_till))) {
		uc_connect_to(uc, u->addrs);
	} else if (ag_resolver_start(u->res) == 0) {
		uc->resolving = 1; /* up_resolved goes on */
	} else if (u->addrs != NULL) {
		uc_connect_to(uc, u->addrs); /* no thread for a lookup: the last answer */
	} else {
		uc_fail(uc, "cannot look up the gate's host '%s' (no thread for it)",
		        u->cfg->up.host);
	}
}

/* A lookup of the gate's name finished: its answer, then the connections
 * that waited for it. A failed lookup keeps the last answer, if any. */
static void
up_resolved(void *arg)
{
	struct ag_up *u = arg;
	struct ag_uconn *uc, *next;
	struct ag_addrs *a;
	int rc;

	if ((a = ag_resolver_take(u->res, &rc)) != NULL) {
		ag_addrs_unref(u->addrs);
		u->addrs = a;
		tg_gate_deadline_set(&u->fresh_till, UP_DNS_FRESH_MS);
	} else {
		snprintf(u->dns_why, sizeof(u->dns_why), "%s", gai_strerror(rc));
		if (u->addrs != NULL) {
			/* used for another while: one lookup (and line) per UP_DNS_FRESH_MS */
			tg_gate_deadline_set(&u->fresh_till, UP_DNS_FRESH_MS);
			fprintf(stderr,
			        "tokengate agent: listener %s: cannot look up the gate's host '%s' "
			        "again (%s); using the addresses it had for %u s more\n",
			        u->cfg->name, u->cfg->up.host, u->dns_why, UP_DNS_FRESH_MS / 1000);
		}
	}
	for (uc = u->conns; uc != NULL; uc = next) {
		next = uc->next;
		if (!uc->resolving)
			continue;
		if (u->addrs != NULL)
			uc_connect_to(uc, u->addrs);
		else
			uc_fail(uc,
			        "cannot resolve the gate's host '%s': %s; check the name and the "
			        "network",
			        u->cfg->up.host, u->dns_why);
	}
}

/* A new connection for r. */
static void
uc_start(struct ag_up *u, struct ag_up_req *r)
{
	struct ag_uconn *uc = calloc(1, sizeof(*uc));
	struct timeval tv = {AG_CONN_MS / 1000, (AG_CONN_MS % 1000) * 1000};

	if (uc == NULL) {
		req_fire(r, NULL, "out of memory connecting to the gate");
		return;
	}
	uc->up = u;
	uc->fd = -1;
	uc->state = UC_CONNECTING;
	uc->req = r;
	r->uc = uc;
	LIST_ADD(u->conns, uc);
	if (u->sess == NULL) {
		/* a full handshake (a token signature): the others wait for its ticket */
		uc->full = 1;
		u->full_inflight++;
	}
	tg_gate_deadline_set(&uc->deadline, AG_CONN_MS);
	if ((uc->timer = evtimer_new(u->srv->base, uc_timeout_cb, uc)) == NULL ||
	    (uc->try = evtimer_new(u->srv->base, uc_try_cb, uc)) == NULL ||
	    evtimer_add(uc->timer, &tv) != 0) {
		uc_fail(uc, "out of memory connecting to the gate");
		return;
	}
	uc_begin(uc);
}

/* No session yet, and a full handshake runs or its ticket is awaited. */
static int
must_wait(const struct ag_up *u)
{
	return u->sess == NULL && (u->full_inflight > 0 || evtimer_pending(u->kick, NULL));
}

/* Starts connections for waiting requests while a session is known, or
 * one full handshake when none runs. */
static void
up_kick(struct ag_up *u)
{
	struct ag_up_req *r, *next;

	for (r = u->reqs; r != NULL; r = next) {
		next = r->next;
		if (!r->waiting)
			continue;
		if (must_wait(u))
			break;
		r->waiting = 0;
		uc_start(u, r);
	}
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_up *u = arg;
	struct ag_up_req *r;

	(void)fd;
	(void)what;
	/* no ticket came: the waiters go on with full handshakes */
	for (r = u->reqs; r != NULL; r = r->next)
		if (r->waiting) {
			r->waiting = 0;
			uc_start(u, r);
		}
}

struct ag_up_req *
ag_up_get(struct ag_up *u, int pooled, ag_up_cb cb, void *arg)
{
	struct ag_up_req *r = malloc(sizeof(*r));
	const char *absent = u->key->present ? NULL : u->key->absent_why;
	struct ag_uconn *uc;

	if (r == NULL || evtimer_assign(&r->ev, u->srv->base, req_fire_cb, r) != 0) {
		free(r);
		return NULL;
	}
	r->waiting = 0;
	r->uc = NULL;
	r->why[0] = '\0';
	r->up = u;
	r->cb = cb;
	r->arg = arg;
	r->pooled = pooled;
	LIST_ADD(u->reqs, r);
	if (absent != NULL) {
		req_fire(r, NULL, absent);
		return r;
	}
	for (uc = u->conns; pooled && uc != NULL; uc = uc->next)
		if (uc->state == UC_IDLE) {
			uc->state = UC_BUSY;
			uc->reused = 1;
			u->nidle--;
			evtimer_del(uc->timer);
			bufferevent_setcb(uc->bev, NULL, NULL, NULL, NULL);
			req_fire(r, uc, NULL);
			return r;
		}
	if (must_wait(u))
		r->waiting = 1;
	else
		uc_start(u, r);
	return r;
}

void
ag_up_cancel(struct ag_up_req *r)
{
	struct ag_up *u;
	struct ag_uconn *uc;

	if (r == NULL)
		return;
	u = r->up;
	uc = r->uc;
	LIST_DEL(u->reqs, r);
	event_del(&r->ev);
	free(r);
	if (uc == NULL)
		return;
	uc->req = NULL;
	if (uc->state == UC_BUSY)
		ag_uconn_release(uc, 1); /* made for it, never used */
	else if (!uc_paused(uc))
		uc_close(uc);
	/* else its signing job cannot be abandoned (uc_job_finish): the
	 * handshake goes on without a request; done, uc_done pools it (the
	 * signature is spent, and waiters want its ticket), failed, uc_fail
	 * closes it; the connect timer still runs */
}

struct ag_key *
ag_up_key(const struct ag_up *u)
{
	return u->key;
}

struct bufferevent *
ag_uconn_bev(struct ag_uconn *uc)
{
	return uc->bev;
}

int
ag_uconn_reused(const struct ag_uconn *uc)
{
	return uc->reused;
}

int
ag_uconn_write(struct ag_uconn *uc, const void *data, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(uc->bev);
	int n = 0, r = 0;

	if (len == 0)
		goto out;
	if (evbuffer_get_length(out) == 0 && len <= UP_WRITE_AT_ONCE) {
		ERR_clear_error();
		n = SSL_write(uc->ssl, data, (int)len);
		ERR_clear_error();
		if (n > 0)
			goto out; /* without SSL_MODE_ENABLE_PARTIAL_WRITE: all of it */
		                  /* not taken (the socket is full, or the connection broke): the
		 * bufferevent writes the same bytes again, which is how OpenSSL
		 * wants a write retried (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is
		 * set by libevent), or meets the error and reports it */
	}
	r = bufferevent_write(uc->bev, data, len) == 0 ? 0 : -1;
out:
	return r;
}

void
ag_uconn_release(struct ag_uconn *uc, int reusable)
{
	struct ag_up *u = uc->up;
	struct timeval tv = {AG_IDLE_MS / 1000, (AG_IDLE_MS % 1000) * 1000};

	if (!reusable || !u->key->present || u->srv->stopping || u->nidle >= AG_POOL ||
	    evbuffer_get_length(bufferevent_get_input(uc->bev)) > 0) {
		uc_close(uc);
		return;
	}
	uc->state = UC_IDLE;
	u->nidle++;
	bufferevent_setcb(uc->bev, idle_read_cb, NULL, idle_event_cb, uc);
	bufferevent_setwatermark(uc->bev, EV_READ, 0, 0);
	bufferevent_set_timeouts(uc->bev, NULL, NULL);
	bufferevent_enable(uc->bev, EV_READ);
	evtimer_assign(uc->timer, u->srv->base, idle_timeout_cb, uc);
	evtimer_add(uc->timer, &tv);
}

void
ag_up_flush(struct ag_up *u, const char *why)
{
	struct ag_uconn *uc, *next;
	struct ag_up_req *r;

	SSL_SESSION_free(u->sess);
	u->sess = NULL;
	evtimer_del(u->kick);
	for (r = u->reqs; r != NULL; r = r->next)
		if (r->waiting)
			req_fire(r, NULL, why);
	for (uc = u->conns; uc != NULL; uc = next) {
		next = uc->next;
		if (uc->state == UC_IDLE)
			uc_close(uc);
		else if (uc->state == UC_CONNECTING || uc->state == UC_HANDSHAKE) {
			if (uc->req != NULL)
				req_fire(uc->req, NULL, why);
			uc->req = NULL;
			/* a paused signing job ends first (the token's answer, or its
			 * failure): then uc_done closes it (the key is absent) or uc_fail */
			if (!uc_paused(uc))
				uc_close(uc);
		}
	}
}

/* ---- the context ---- */

/* Keeps the newest resumable session (TLS 1.3: each ticket). */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct ag_up *u = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	if (u == NULL || !u->key->present || !SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(u->sess);
	u->sess = sess;
	evtimer_del(u->kick);
	up_kick(u);
	return 1; /* the reference is ours */
}

/* --server-id: the leaf's URI SAN must be exactly the configured one. */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ag_uconn *uc = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	STACK_OF(GENERAL_NAME) *sans = NULL;
	const GENERAL_NAME *gn;
	const char *want;
	int i, found = 0;

	if (!ok || uc == NULL || X509_STORE_CTX_get_error_depth(xs) != 0 ||
	    (want = uc->up->cfg->server_id) == NULL)
		return ok;
	sans =
	    X509_get_ext_d2i(X509_STORE_CTX_get_current_cert(xs), NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type == GEN_URI &&
		    (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier) == strlen(want) &&
		    memcmp(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), want,
		           strlen(want)) == 0)
			found = 1;
	}
	GENERAL_NAMES_free(sans);
	if (!found) {
		snprintf(uc->why, sizeof(uc->why),
		         "the gate's certificate does not have the URI SAN %.120s; check "
		         "--server-id",
		         want);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_HOSTNAME_MISMATCH);
	}
	return found;
}

/*
 * The gate's addresses at the start (blocking: the loop is not running
 * yet). A name that does not resolve now does not stop the agent: it is
 * looked up again when a connection needs it, and requests get 502 with
 * the reason until it resolves. An IP address is parsed once, for good.
 */
static int
up_resolve_first(struct ag_up *u, struct tg_error *err)
{
	int rc, r = 0;

	u->addrs = ag_resolve_now(u->cfg->up.host, u->cfg->up.port, &rc);
	if (u->addrs != NULL) {
		tg_gate_deadline_set(&u->fresh_till, UP_DNS_FRESH_MS);
	} else if (u->host_is_ip) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "upstream %s: the address %s cannot be used: %s", u->cfg->upstream,
		                 u->cfg->up.host, gai_strerror(rc));
	} else {
		/* said by the caller (ag_up_unresolved): a run starts anyway, --check fails */
		snprintf(u->dns_why, sizeof(u->dns_why), "%s", gai_strerror(rc));
	}
	if (r == 0 && !u->host_is_ip)
		r = ag_resolver_new(u->srv->base, u->cfg->up.host, u->cfg->up.port, up_resolved, u,
		                    &u->res, err);
	return r;
}

int
ag_up_new(struct ag_server *s, const struct tg_agent_listener_cfg *cfg, struct ag_key *key,
          struct ag_up **out, struct tg_error *err)
{
	struct ag_up *u = calloc(1, sizeof(*u));
	unsigned char ip[16];
	int r;

	if (u == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	u->srv = s;
	u->cfg = cfg;
	u->key = key;
	u->host_is_ip =
	    inet_pton(AF_INET, cfg->up.host, ip) == 1 || inet_pton(AF_INET6, cfg->up.host, ip) == 1;
	if ((r = up_resolve_first(u, err)) != 0)
		goto out;
	if ((u->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(u->ctx, TLS1_2_VERSION) != 1) {
		r = tg_error_set(err, TG_ERR_TLS, "cannot make a TLS context: %s",
		                 ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	if (SSL_CTX_load_verify_locations(u->ctx, cfg->ca, NULL) != 1) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "--ca %s: no CA certificate could be read from it (%s); give the "
		                 "PEM file of the CA that issued the gate's certificate",
		                 cfg->ca, ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	SSL_CTX_set_verify(u->ctx, SSL_VERIFY_PEER, verify_cb);
	SSL_CTX_set_app_data(u->ctx, u);
	SSL_CTX_set_session_cache_mode(u->ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(u->ctx, new_session_cb);
	if ((r = tg_tlskey_ssl_ctx_use(key->k, u->ctx, err)) != 0)
		goto out;
	if ((u->kick = evtimer_new(s->base, kick_cb, u)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	*out = u;
	u = NULL;
	r = 0;
out:
	ERR_clear_error();
	ag_up_free(u);
	return r;
}

const char *
ag_up_unresolved(const struct ag_up *u)
{
	return u->addrs != NULL ? NULL : u->dns_why;
}

void
ag_up_free(struct ag_up *u)
{
	if (u == NULL)
		return;
	while (u->reqs != NULL)
		ag_up_cancel(u->reqs);
	while (u->conns != NULL)
		uc_close(u->conns);
	if (u->kick != NULL)
		event_free(u->kick);
	ag_resolver_free(u->res);
	ag_addrs_unref(u->addrs);
	SSL_SESSION_free(u->sess);
	SSL_CTX_free(u->ctx);
	free(u);
}
