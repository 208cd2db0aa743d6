/*
 * server.c — the `tokengate agent` process (agent-int.h): one event loop;
 * the token keys (tg_tlskey: signatures off the loop, presence watched);
 * the listeners (loopback TCP or unix sockets created mode 0600); the
 * token's presence events (removed: every connection it authenticated
 * closed and new ones refused; inserted: serving again); SIGTERM/SIGINT;
 * the admin listener with /healthz and /metrics.
 */
#include "agent-int.h"
#include "tg_gate_alloc.h"
#include "tg_gate_metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/x509.h>

#define AG_LOG "tokengate agent: "

/* ---- clients ---- */

void
ag_client_add(struct ag_listener *l, struct ag_client *c)
{
	c->l = l;
	c->prev = NULL;
	c->next = l->clients;
	if (l->clients != NULL)
		l->clients->prev = c;
	l->clients = c;
	l->srv->m.clients_open++;
}

void
ag_client_del(struct ag_client *c)
{
	struct ag_listener *l = c->l;

	if (l == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->l = NULL;
	l->srv->m.clients_open--;
}

const char *
ag_listener_absent(const struct ag_listener *l)
{
	const struct ag_key *k = ag_up_key(l->up);

	return k->present ? NULL : k->absent_why;
}

static void
kill_clients(struct ag_listener *l)
{
	while (l->clients != NULL)
		l->clients->kill(l->clients);
}

/* ---- keys and presence ---- */

static void
key_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ag_key *k = arg;
	struct ag_server *s = k->srv;
	enum tg_tlskey_event ev;
	char msg[400];
	size_t i;

	(void)fd;
	(void)what;
	while (tg_tlskey_event_next(k->k, &ev, msg, sizeof(msg)) == 1) {
		switch (ev) {
		case TG_TLSKEY_EV_REMOVED:
		case TG_TLSKEY_EV_FAILED:
			k->present = 0;
			snprintf(k->absent_why, sizeof(k->absent_why),
			         "the token is not available (%s); insert it to go on", msg);
			fprintf(stderr, AG_LOG "%s; closing its connections\n", k->absent_why);
			for (i = 0; i < s->nls; i++)
				if (ag_up_key(s->ls[i].up) == k) {
					kill_clients(&s->ls[i]);
					ag_up_flush(s->ls[i].up, k->absent_why);
				}
			break;
		case TG_TLSKEY_EV_INSERTED:
			k->present = 1;
			k->absent_why[0] = '\0';
			fprintf(stderr, AG_LOG "the token is back (%s); serving again\n", msg);
			break;
		default:
			break;
		}
	}
}

static int
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
key_free(struct ag_key *k)
{
	if (k == NULL)
		return;
	if (k->ev != NULL)
		event_free(k->ev);
	tg_tlskey_free(k->k);
	free(k);
}

/* The key of listener cfg: one already open for the same key and cert, or a new one. */
static int
key_get(struct ag_server *s, const struct tg_agent_listener_cfg *cfg, unsigned flags,
        struct ag_key **out, struct tg_error *err)
{
	struct tg_tlskey_opts o;
	struct ag_key *k = NULL, **grown;
	size_t i;
	int fd, r;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i]->uri, cfg->key) == 0 && str_eq(s->keys[i]->cert, cfg->cert)) {
			*out = s->keys[i];
			return 0;
		}
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (grown = realloc(s->keys, (s->nkeys + 1) * sizeof(*grown))) == NULL) {
		free(k);
		return tg_error_set(err, TG_ERR_ALLOC, "out of memory");
	}
	s->keys = grown;
	k->srv = s;
	k->uri = cfg->key;
	k->cert = cfg->cert;
	memset(&o, 0, sizeof(o));
	o.key_uri = cfg->key;
	o.cert = cfg->cert;
	o.flags = flags; /* an identity key: never TG_TLSKEY_ALLOW_IMPORTED */
	o.role = "client";
	if ((r = tg_tlskey_open(&o, &k->k, err)) != 0)
		goto out;
	k->present = tg_tlskey_present(k->k);
	if (!k->present)
		snprintf(k->absent_why, sizeof(k->absent_why),
		         "the token is not available (key %s); insert it to go on",
		         tg_tlskey_uri(k->k));
	if ((fd = tg_tlskey_event_fd(k->k)) >= 0 &&
	    ((k->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, key_event_cb, k)) == NULL ||
	     event_add(k->ev, NULL) != 0)) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory watching the token");
		goto out;
	}
	s->keys[s->nkeys++] = k;
	*out = k;
	k = NULL;
	r = 0;
out:
	key_free(k);
	return r;
}

/* ---- listeners ---- */

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct ag_listener *l = arg;
	int one = 1;

	(void)lev;
	(void)salen;
	if (l->srv->stopping) {
		evutil_closesocket(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	/* small requests and answers go out at once (no Nagle delay) */
	if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->cfg->mode == TG_AGENT_MODE_TCP)
		ag_tcp_serve(l, fd);
	else
		ag_http_serve(l, fd);
}

static int
listen_unix(struct ag_listener *l, struct tg_error *err)
{
	const char *path = l->cfg->addr.path;
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd = -1, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		r = tg_error_set(err, TG_ERR_IO, "listener %s: socket: %s", l->cfg->name,
		                 strerror(errno));
		goto out;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			r = tg_error_set(err, TG_ERR_IO,
			                 "listener %s: %s exists and is not a socket; remove it or "
			                 "choose another path",
			                 l->cfg->name, path);
			goto out;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN) {
			r = tg_error_set(err, TG_ERR_IO,
			                 "listener %s: something already listens on %s (another "
			                 "agent?); stop it or choose another path",
			                 l->cfg->name, path);
			goto out;
		}
		close(fd);
		unlink(path); /* a stale socket of an agent that is gone */
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
			r = tg_error_set(err, TG_ERR_IO, "listener %s: socket: %s", l->cfg->name,
			                 strerror(errno));
			goto out;
		}
	}
	old = umask(0177); /* created 0600: only this user may use the token through it */
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r != 0 || chmod(path, 0600) != 0 || listen(fd, 128) != 0) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "listener %s: cannot listen on unix:%s: %s; check "
		                 "the directory",
		                 l->cfg->name, path, strerror(errno));
		goto out;
	}
	if ((l->lev = evconnlistener_new(l->srv->base, accept_cb, l,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd)) ==
	    NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static int
listen_tcp(struct ag_listener *l, struct tg_error *err)
{
	struct addrinfo hints, *res = NULL;
	int rc, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(l->cfg->addr.host, l->cfg->addr.port, &hints, &res)) != 0) {
		r = tg_error_set(err, TG_ERR_CONFIG, "listener %s: %s: %s", l->cfg->name,
		                 l->cfg->listen, gai_strerror(rc));
		goto out;
	}
	l->lev = evconnlistener_new_bind(l->srv->base, accept_cb, l,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                     LEV_OPT_CLOSE_ON_EXEC,
	                                 128, res->ai_addr, (int)res->ai_addrlen);
	if (l->lev == NULL) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "listener %s: cannot listen on %s: %s; is another program on "
		                 "that port?",
		                 l->cfg->name, l->cfg->listen, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return r;
}

/* "127.0.0.1:PORT" as bound (port 0 picks one). */
static void
bound_name(struct ag_listener *l, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	snprintf(out, cap, "%s", l->cfg->listen);
	if (l->cfg->addr.scheme == TG_GATE_SCHEME_UNIX ||
	    getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* ---- admin ---- */

static void
metrics_render(struct ag_server *s, struct evbuffer *b)
{
	uint64_t ops = 0;
	int present = 1;
	size_t i;

	for (i = 0; i < s->nkeys; i++) {
		ops += tg_tlskey_sign_count(s->keys[i]->k);
		present = present && s->keys[i]->present;
	}
	evbuffer_add_printf(b, "# HELP tokengate_agent_requests_total Requests (http) or "
	                       "connections (tcp) by listener and result.\n"
	                       "# TYPE tokengate_agent_requests_total counter\n");
	for (i = 0; i < s->nls; i++)
		evbuffer_add_printf(
		    b,
		    "tokengate_agent_requests_total{listener=\"%s\",result=\"forwarded\"} %llu\n"
		    "tokengate_agent_requests_total{listener=\"%s\",result=\"refused\"} %llu\n"
		    "tokengate_agent_requests_total{listener=\"%s\",result=\"failed\"} %llu\n",
		    s->ls[i].cfg->name, (unsigned long long)s->ls[i].requests, s->ls[i].cfg->name,
		    (unsigned long long)s->ls[i].refused, s->ls[i].cfg->name,
		    (unsigned long long)s->ls[i].failed);
	evbuffer_add_printf(
	    b,
	    "# HELP tokengate_agent_upstream_connections Open TLS connections to the gate.\n"
	    "# TYPE tokengate_agent_upstream_connections gauge\n"
	    "tokengate_agent_upstream_connections %llu\n"
	    "# HELP tokengate_agent_handshakes_total TLS handshakes with the gate.\n"
	    "# TYPE tokengate_agent_handshakes_total counter\n"
	    "tokengate_agent_handshakes_total{result=\"ok\"} %llu\n"
	    "tokengate_agent_handshakes_total{result=\"failed\"} %llu\n"
	    "# HELP tokengate_agent_resumptions_total Handshakes that resumed a session (no "
	    "token signature).\n"
	    "# TYPE tokengate_agent_resumptions_total counter\n"
	    "tokengate_agent_resumptions_total %llu\n"
	    "# HELP tokengate_agent_token_operations_total Signatures made on the token.\n"
	    "# TYPE tokengate_agent_token_operations_total counter\n"
	    "tokengate_agent_token_operations_total %llu\n"
	    "# HELP tokengate_agent_token_present 1 while every configured token is present.\n"
	    "# TYPE tokengate_agent_token_present gauge\n"
	    "tokengate_agent_token_present %d\n",
	    (unsigned long long)s->m.upstream_open, (unsigned long long)s->m.handshakes_ok,
	    (unsigned long long)s->m.handshakes_failed, (unsigned long long)s->m.resumptions,
	    (unsigned long long)ops, present);
}

static void
admin_cb(struct evhttp_request *req, void *arg)
{
	struct ag_server *s = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *b = evbuffer_new();
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int code = 200;

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		code = 405;
		evbuffer_add_printf(b, "only GET and HEAD\n");
	} else if (path != NULL && strcmp(path, "/healthz") == 0) {
		evbuffer_add_printf(b, "ok\n");
	} else if (path != NULL && strcmp(path, "/metrics") == 0) {
		metrics_render(s, b);
	} else {
		code = 404;
		evbuffer_add_printf(b, "not found: /healthz or /metrics\n");
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  code == 200 && path != NULL && strcmp(path, "/metrics") == 0
	                      ? "text/plain; version=0.0.4"
	                      : "text/plain; charset=utf-8");
	evhttp_send_reply(req, code,
	                  code == 200   ? "OK"
	                  : code == 404 ? "Not Found"
	                                : "Method Not Allowed",
	                  b);
	evbuffer_free(b);
}

static int
admin_start(struct ag_server *s, struct tg_error *err)
{
	evutil_socket_t fd = -1;
	int r = 0;

	if ((s->admin = evhttp_new(s->base)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	evhttp_set_allowed_methods(s->admin, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_max_headers_size(s->admin, 8192);
	evhttp_set_timeout(s->admin, 10);
	evhttp_set_gencb(s->admin, admin_cb, s);
	if ((fd = tg_gate_admin_bind(s->cfg->admin, &s->cfg->admin_addr, err)) < 0) {
		r = TG_ERR_IO;
		goto out;
	}
	if (evhttp_accept_socket(s->admin, fd) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "admin listener %s: cannot accept on it",
		                 s->cfg->admin);
		goto out;
	}
	fd = -1; /* the evhttp's now: closed by evhttp_free */
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- the process ---- */

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct ag_server *s = arg;
	size_t i;

	(void)what;
	fprintf(stderr, AG_LOG "%s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	s->stopping = 1;
	for (i = 0; i < s->nls; i++) {
		if (s->ls[i].lev != NULL)
			evconnlistener_disable(s->ls[i].lev);
		kill_clients(&s->ls[i]);
	}
	event_base_loopexit(s->base, NULL);
}

static void
server_free(struct ag_server *s)
{
	size_t i;

	for (i = 0; i < s->nls; i++) {
		kill_clients(&s->ls[i]);
		if (s->ls[i].lev != NULL) {
			evconnlistener_free(s->ls[i].lev);
			if (s->ls[i].cfg->addr.scheme == TG_GATE_SCHEME_UNIX)
				unlink(s->ls[i].cfg->addr.path);
		}
		ag_up_free(s->ls[i].up);
	}
	free(s->ls);
	for (i = 0; i < s->nkeys; i++)
		if (s->keys[i]->ev != NULL) {
			event_free(s->keys[i]->ev);
			s->keys[i]->ev = NULL;
		}
	if (s->admin != NULL)
		evhttp_free(s->admin);
	if (s->sigterm != NULL)
		event_free(s->sigterm);
	if (s->sigint != NULL)
		event_free(s->sigint);
	/* the base finishes the deferred frees of TLS bufferevents (their SSLs
	 * and SSL_CTXs hold the token keys): before the keys go */
	if (s->base != NULL)
		event_base_free(s->base);
	for (i = 0; i < s->nkeys; i++)
		key_free(s->keys[i]);
	free(s->keys);
}

/* Keys, upstream contexts (everything but sockets). */
static int
server_load(struct ag_server *s, struct tg_agent_config *cfg, unsigned flags, struct tg_error *err)
{
	struct ag_key *k = NULL;
	size_t i;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	if ((s->base = event_base_new()) == NULL ||
	    (s->ls = calloc(cfg->nlisteners, sizeof(*s->ls))) == NULL)
		return tg_error_set(err, TG_ERR_ALLOC, "out of memory");
	s->nls = cfg->nlisteners;
	for (i = 0; i < s->nls && r == 0; i++) {
		s->ls[i].srv = s;
		s->ls[i].cfg = &cfg->listeners[i];
		if ((r = key_get(s, &cfg->listeners[i], flags, &k, err)) == 0)
			r = ag_up_new(s, &cfg->listeners[i], k, &s->ls[i].up, err);
	}
	return r;
}

int
tg_agent_check(struct tg_agent_config *cfg, FILE *out, struct tg_error *err)
{
	struct ag_server s;
	char subj[256], mode[64];
	const char *why;
	size_t i;
	int r;

	if ((r = server_load(&s, cfg, 0, err)) != 0)
		goto out;
	for (i = 0; i < s.nls; i++) {
		if ((why = ag_up_unresolved(s.ls[i].up)) != NULL) {
			r = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "listener %s: the gate's host '%s' does not resolve (%s); check "
			    "the name and the network",
			    s.ls[i].cfg->name, s.ls[i].cfg->up.host, why);
			goto out;
		}
	}
	for (i = 0; i < s.nls; i++) {
		X509_NAME_oneline(X509_get_subject_name(tg_tlskey_cert(ag_up_key(s.ls[i].up)->k)),
		                  subj, sizeof(subj));
		if (s.ls[i].cfg->mode == TG_AGENT_MODE_TCP)
			snprintf(mode, sizeof(mode), "tcp, idle timeout %u ms",
			         s.ls[i].cfg->idle_timeout_ms);
		else
			snprintf(mode, sizeof(mode), "http");
		fprintf(out,
		        "listener %s: %s (mode %s) -> %s, key %s, certificate %s, gate verified "
		        "against %s as %s\n",
		        s.ls[i].cfg->name, s.ls[i].cfg->listen, mode, s.ls[i].cfg->upstream,
		        tg_tlskey_uri(ag_up_key(s.ls[i].up)->k), subj, s.ls[i].cfg->ca,
		        s.ls[i].cfg->server_id != NULL     ? s.ls[i].cfg->server_id
		        : s.ls[i].cfg->server_name != NULL ? s.ls[i].cfg->server_name
		                                           : s.ls[i].cfg->up.host);
	}
	fprintf(out, "configuration OK%s%s\n", cfg->admin != NULL ? "; admin on " : "",
	        cfg->admin != NULL ? cfg->admin : "");
out:
	server_free(&s);
	return r;
}

int
tg_agent_run(struct tg_agent_config *cfg, struct tg_error *err)
{
	struct ag_server s;
	char bound[300];
	const char *why;
	size_t i;
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (tg_gate_alloc_tune(&why) == 0)
		fprintf(stderr, AG_LOG "allocator left as it is: %s\n", why);
	if ((r = server_load(&s, cfg, TG_TLSKEY_ASYNC | TG_TLSKEY_WATCH, err)) != 0)
		goto out;
	for (i = 0; i < s.nls; i++)
		if ((why = ag_up_unresolved(s.ls[i].up)) != NULL)
			fprintf(stderr,
			        AG_LOG
			        "listener %s: the gate's host '%s' does not resolve now (%s); "
			        "starting anyway: requests get 502 until it does (check the name "
			        "and the network)\n",
			        s.ls[i].cfg->name, s.ls[i].cfg->up.host, why);
	for (i = 0; i < s.nls && r == 0; i++)
		r = s.ls[i].cfg->addr.scheme == TG_GATE_SCHEME_UNIX ? listen_unix(&s.ls[i], err)
		                                                    : listen_tcp(&s.ls[i], err);
	if (r == 0 && cfg->admin != NULL)
		r = admin_start(&s, err);
	if (r != 0)
		goto out;
	if ((s.sigterm = evsignal_new(s.base, SIGTERM, stop_cb, &s)) == NULL ||
	    (s.sigint = evsignal_new(s.base, SIGINT, stop_cb, &s)) == NULL ||
	    event_add(s.sigterm, NULL) != 0 || event_add(s.sigint, NULL) != 0) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (i = 0; i < s.nls; i++) {
		bound_name(&s.ls[i], bound, sizeof(bound));
		fprintf(stderr, AG_LOG "listener %s on %s (mode %s, upstream %s, key %s%s)\n",
		        s.ls[i].cfg->name, bound,
		        s.ls[i].cfg->mode == TG_AGENT_MODE_TCP ? "tcp" : "http",
		        s.ls[i].cfg->upstream, tg_tlskey_uri(ag_up_key(s.ls[i].up)->k),
		        ag_up_key(s.ls[i].up)->present ? "" : ", token absent");
	}
	if (cfg->admin != NULL)
		fprintf(stderr, AG_LOG "admin on %s\n", cfg->admin);
	fprintf(stderr, AG_LOG "ready\n");
	event_base_dispatch(s.base);
	fprintf(stderr, AG_LOG "stopped\n");
out:
	server_free(&s);
	return r;
}
