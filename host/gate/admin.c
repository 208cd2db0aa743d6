/*
 * admin.c — the gate's admin listener (tg_gate_metrics.h): plain HTTP on
 * libevent's evhttp, GET or HEAD of /healthz, /readyz and /metrics.
 */
#include "tg_gate_metrics.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "tg_gate_config.h"

#define GA_HEADERS_MAX 8192 /* the admin's requests are short GETs */
#define GA_TIMEOUT_S   10
#define GA_BACKLOG     64

struct tg_gate_admin {
	struct evhttp *http;
	struct tg_gate_metrics *m;
	tg_gate_ready_fn ready;
	void *arg;
};

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *type,
      struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || evbuffer_add_printf(b, "%s\n", text) < 0) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
	} else {
		reply(req, code, reason, "text/plain; charset=utf-8", b);
	}
	if (b != NULL)
		evbuffer_free(b);
}

static void
serve_metrics(struct tg_gate_admin *a, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || tg_gate_metrics_render(a->m, b) != 0)
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
	else
		reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
serve_ready(struct tg_gate_admin *a, struct evhttp_request *req)
{
	const char *why = NULL;
	char text[512];

	if (a->ready == NULL || a->ready(a->arg, &why)) {
		reply_text(req, HTTP_OK, "OK", "ready");
	} else {
		snprintf(text, sizeof(text), "not ready: %s",
		         why != NULL ? why : "the gate is not ready");
		reply_text(req, 503, "Service Unavailable", text);
	}
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct tg_gate_admin *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int which = -1;

	if (path != NULL && strcmp(path, "/healthz") == 0)
		which = 0;
	else if (path != NULL && strcmp(path, "/readyz") == 0)
		which = 1;
	else if (path != NULL && strcmp(path, "/metrics") == 0)
		which = 2;
	if (which < 0) {
		reply_text(req, HTTP_NOTFOUND, "Not Found",
		           "not found: the admin listener serves /healthz, /readyz and /metrics");
	} else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed", "method not allowed: use GET or HEAD");
	} else if (which == 0) {
		reply_text(req, HTTP_OK, "OK", "ok");
	} else if (which == 1) {
		serve_ready(a, req);
	} else {
		serve_metrics(a, req);
	}
}

evutil_socket_t
tg_gate_admin_bind(const char *addr, const struct tg_gate_url *u, struct tg_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	evutil_socket_t fd = -1;
	int e = 0, one = 1, g;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((g = getaddrinfo(u->host, u->port, &hints, &res)) != 0) {
		tg_error_set(err, TG_ERR_IO, "admin listener %s: cannot resolve '%s': %s", addr,
		             u->host, gai_strerror(g));
		goto out;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, GA_BACKLOG) != 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		tg_error_set(err, TG_ERR_IO, "admin listener %s: cannot listen: %s%s", addr,
		             strerror(e),
		             e == EADDRINUSE      ? " (another process uses the port; pick another)"
		             : e == EADDRNOTAVAIL ? " (no interface has this address)"
		             : e == EACCES        ? " (ports below 1024 need privileges)"
		                                  : "");
out:
	if (res != NULL)
		freeaddrinfo(res);
	return fd;
}

int
tg_gate_admin_start(struct event_base *base, const char *addr, struct tg_gate_metrics *m,
                    tg_gate_ready_fn ready, void *arg, struct tg_gate_admin **out,
                    struct tg_error *err)
{
	struct tg_gate_admin *a = NULL;
	struct tg_gate_url u;
	evutil_socket_t fd = -1;
	int r;

	*out = NULL;
	if ((r = tg_gate_url_parse(addr, 1, &u, err)) != 0)
		goto out;
	if (u.scheme != TG_GATE_SCHEME_TCP) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "admin listener %s: expected ADDR:PORT such as 127.0.0.1:9090",
		                 addr);
		goto out;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->http = evhttp_new(base)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory starting the admin listener");
		goto out;
	}
	a->m = m;
	a->ready = ready;
	a->arg = arg;
	evhttp_set_max_headers_size(a->http, GA_HEADERS_MAX);
	evhttp_set_max_body_size(a->http, 0);
	evhttp_set_timeout(a->http, GA_TIMEOUT_S);
	/* every method reaches on_request, which answers 405 itself with Allow */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                        EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(a->http, on_request, a);
	if ((fd = tg_gate_admin_bind(addr, &u, err)) < 0) {
		r = TG_ERR_IO;
		goto out;
	}
	if (evhttp_accept_socket(a->http, fd) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "admin listener %s: cannot accept on it", addr);
		goto out;
	}
	fd = -1; /* the evhttp's now: closed by evhttp_free */
	*out = a;
	a = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	tg_gate_admin_free(a);
	return r;
}

void
tg_gate_admin_free(struct tg_gate_admin *a)
{
	if (a == NULL)
		return;
	if (a->http != NULL)
		evhttp_free(a->http);
	free(a);
}
