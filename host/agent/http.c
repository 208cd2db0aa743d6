/*
 * http.c — the agent's http mode (agent-int.h): HTTP/1.1 requests from a
 * local client, read with the gate's strict reader (tg_gate_http.h), each
 * forwarded over a pooled keep-alive connection to the gate and its
 * response streamed back as it arrives. Nothing is rewritten but the
 * connection (hop-by-hop fields, framing, keep-alive); Host stays what the
 * client sent unless --host. An HTTP/1.0 client gets a chunked or
 * until-close response decoded, ended by closing its connection (it reads
 * no Transfer-Encoding). A WebSocket upgrade is spliced after the 101.
 * While the token is absent every request is answered 503 with a one-line
 * reason. One request at a time per connection (pipelined ones wait in
 * the input). Reader callbacks only set flags; what frees is done by the
 * event handlers after the reader returned (hc_settle).
 *
 * A pooled connection the gate closed as the request left (its idle
 * timeout) is met by sending a retryable request (tg_gate_http_retryable)
 * once more on a new connection; other requests get 502 saying why. A
 * client that sends no complete head within client_timeout_ms is closed
 * (408 when it had started one); a gate that sends no response head
 * within response_timeout_ms of the request gets the client a 504.
 */
#include "agent-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "tg_gate_http.h"
#include "tg_gate_path.h"

static const struct tg_gate_http_limits hc_limits = {8192, 65536, 100};

struct hc {
	struct ag_client cl; /* first: the listener's list */
	struct ag_listener *l;
	struct bufferevent *bev;
	struct tg_gate_http_reader *rd;
	struct evbuffer *head;
	/* the request in progress */
	int in_req, req_done, keep, http11, chunked_up, upgrade, resume;
	int retryable, reused, retried, resp_any, has_body;
	int head_started; /* bytes of a request head came (for the client timeout) */
	char method[24];
	struct ag_up_req *pend;
	struct ag_uconn *uc;
	struct bufferevent *ub;
	struct tg_gate_http_reader *resp;
	int interim, resp_head, resp_chunked, resp_keep, resp_close, resp_done, switching;
	int up_eof, up_err;
	/* the connection */
	int closing; /* close once the output is out */
	int dead;    /* close now */
	struct ag_splice *sp;
	struct event *ctmo; /* client_timeout_ms: waiting for a request head */
	struct event *rtmo; /* response_timeout_ms: waiting for the gate's head */
};

static void client_feed(struct hc *c);
static void up_feed(struct hc *c);

static void
hc_free(struct hc *c)
{
	ag_client_del(&c->cl);
	if (c->ctmo != NULL)
		event_free(c->ctmo);
	if (c->rtmo != NULL)
		event_free(c->rtmo);
	if (c->pend != NULL)
		ag_up_cancel(c->pend);
	if (c->uc != NULL)
		ag_uconn_release(c->uc, 0);
	tg_gate_http_reader_free(c->resp);
	tg_gate_http_reader_free(c->rd);
	if (c->head != NULL)
		evbuffer_free(c->head);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
}

/*
 * What the handlers put in the client's output goes out now, with one
 * write(2) on the socket: the client's bufferevent writes (EV_WRITE) only
 * while a rest is left that the socket did not take, so a response that
 * fits costs no write event to add and delete (two epoll_ctl(2)) and no
 * turn of the loop. client_write_cb turns EV_WRITE off again once all is
 * out.
 */
static void
hc_flush(struct hc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int n;

	if (c->dead || evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;
	/* a socket bufferevent keeps the start of its output frozen: only its
	 * own write drains it; so does this one */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		c->dead = 1; /* the client went away */
	else if (evbuffer_get_length(out) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
}

/* What the handlers decided: close now, or once the output is out. */
static void
hc_settle(struct hc *c)
{
	hc_flush(c);
	if (c->dead || (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
		hc_free(c);
}

static struct evbuffer *
cout(struct hc *c)
{
	return bufferevent_get_output(c->bev);
}

/* An answer of the agent's own: status and a one-line reason; then close. */
static void
hc_answer(struct hc *c, int status, const char *reason)
{
	const char *text = status == 503   ? "Service Unavailable"
	                   : status == 502 ? "Bad Gateway"
	                   : status == 504 ? "Gateway Timeout"
	                   : status == 408 ? "Request Timeout"
	                   : status == 400 ? "Bad Request"
	                   : status == 414 ? "URI Too Long"
	                   : status == 431 ? "Request Header Fields Too Large"
	                   : status == 501 ? "Not Implemented"
	                   : status == 505 ? "HTTP Version Not Supported"
	                                   : "Error";
	char line[640];
	size_t n;

	/* one line: no CR or LF from the reason */
	n = (size_t)snprintf(line, sizeof(line), "%s", reason);
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	evbuffer_add_printf(cout(c),
	                    "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
	                    status, text, n + 1, line);
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (c->ctmo != NULL)
		evtimer_del(c->ctmo);
	if (c->rtmo != NULL)
		evtimer_del(c->rtmo);
}

/* (Re)starts timer ev for ms. */
static void
tmo_arm(struct event *ev, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};

	evtimer_add(ev, &tv);
}

/* ---- the response ---- */

static int
rs_head(void *arg, const struct tg_gate_http_head *h)
{
	struct hc *c = arg;
	int keep, ignored;

	if (h->status >= 100 && h->status < 200 && h->status != 101) {
		c->interim = 1;
		if (c->http11 && tg_gate_http_response_head(h, 1, &ignored, cout(c)) != 0)
			return -1;
		return 0;
	}
	if (h->status == 101 && !c->upgrade)
		return -1;
	evtimer_del(c->rtmo);
	keep = c->keep && c->req_done && h->status != 101 && !c->l->srv->stopping;
	/* RFC 9112 6.1, 7: an HTTP/1.0 client reads no chunks: a body of
	 * unknown length reaches it decoded and ends with the connection */
	if (!c->http11 &&
	    (h->body == TG_GATE_HTTP_BODY_CHUNKED || h->body == TG_GATE_HTTP_BODY_CLOSE))
		keep = 0;
	if (tg_gate_http_response_head_to(h, c->http11, keep, &c->resp_chunked, cout(c)) != 0)
		return -1;
	c->resp_head = 1;
	c->resp_keep = h->keep_alive;
	c->resp_close = h->body == TG_GATE_HTTP_BODY_CLOSE;
	if (!keep)
		c->keep = 0;
	if (h->status == 101)
		c->switching = 1;
	return 0;
}

static int
rs_body(void *arg, const char *data, size_t len)
{
	struct hc *c = arg;
	int rc = c->resp_chunked ? tg_gate_http_chunk(data, len, cout(c))
	                         : evbuffer_add(cout(c), data, len);

	if (rc != 0)
		return -1;
	/* each piece goes out as it came (SSE); above AG_HIGH the gate waits */
	return evbuffer_get_length(cout(c)) > AG_HIGH ? 1 : 0;
}

static int
rs_end(void *arg)
{
	struct hc *c = arg;

	if (c->interim) {
		c->interim = 0;
		tg_gate_http_reader_expect(c->resp, c->method);
		return 0;
	}
	if (c->switching)
		return 1;
	if (c->resp_chunked && tg_gate_http_chunk(NULL, 0, cout(c)) != 0)
		return -1;
	c->resp_done = 1;
	return 1;
}

static void
splice_done(void *arg)
{
	struct hc *c = arg;

	c->sp = NULL;
	c->bev = NULL; /* freed by the splice */
	c->uc = NULL;
	hc_free(c);
}

static void up_ready(struct ag_uconn *uc, const char *why, void *arg);

/*
 * A pooled connection that closed before a byte of the response (the gate
 * most likely closed it as idle as the request left): a retryable request
 * goes once more on a new connection. 1 when it does.
 */
static int
up_retry(struct hc *c)
{
	if (!c->reused || c->retried || c->resp_any || c->resp_head || !c->retryable ||
	    !c->req_done)
		return 0;
	c->retried = 1;
	ag_uconn_release(c->uc, 0);
	c->uc = NULL;
	c->ub = NULL;
	tg_gate_http_reader_free(c->resp);
	c->resp = NULL;
	evtimer_del(c->rtmo);
	if ((c->pend = ag_up_get(c->l->up, 0, up_ready, c)) == NULL)
		c->dead = 1;
	return 1;
}

/* The gate's connection broke: 502 before the response head, else close. */
static void
up_broken(struct hc *c, const char *why)
{
	char line[400];

	if (up_retry(c))
		return;
	c->l->failed++;
	if (c->uc != NULL) {
		ag_uconn_release(c->uc, 0);
		c->uc = NULL;
		c->ub = NULL;
	}
	if (!c->resp_head && c->reused && !c->resp_any && !c->retryable) {
		/* the request may have reached the gate: not sent twice */
		snprintf(line, sizeof(line),
		         "%s (a kept-alive connection the gate may have closed as idle just as "
		         "the request left); a %.24s%s is not sent again by the agent, as it "
		         "might be applied twice: send it again",
		         why, c->method,
		         c->upgrade    ? " upgrade"
		         : c->has_body ? " request with a body"
		                       : " request");
		why = line;
	}
	if (!c->resp_head)
		hc_answer(c, 502, why);
	else
		c->dead = 1;
}

/* The response is complete: the connection back to the pool, the next request. */
static void
resp_end(struct hc *c)
{
	int reusable = c->resp_keep && c->req_done && !c->up_eof && !c->resp_close;

	ag_uconn_release(c->uc, reusable);
	c->uc = NULL;
	c->ub = NULL;
	c->in_req = 0; /* c->resp ended its message: it reads the next response */
	if (!c->keep || !c->req_done) {
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
	} else {
		c->head_started = 0;
		tmo_arm(c->ctmo, c->l->cfg->client_timeout_ms);
	}
}

static void
up_feed(struct hc *c)
{
	struct tg_gate_http_error e;
	struct evbuffer_iovec v;
	enum tg_gate_http_rc rc;
	struct evbuffer *in;
	size_t used;

	while (c->ub != NULL && !c->resp_done && !c->switching && !c->dead) {
		if (evbuffer_get_length(cout(c)) > AG_HIGH) {
			/* the client is behind: the gate is not read meanwhile */
			bufferevent_disable(c->ub, EV_READ);
			return; /* client_write_cb comes back */
		}
		if (!c->up_eof && !(bufferevent_get_enabled(c->ub) & EV_READ))
			bufferevent_enable(c->ub, EV_READ);
		in = bufferevent_get_input(c->ub);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
			if (!c->up_eof)
				return;
			if (c->resp_head && c->resp_close && !c->up_err) {
				tg_gate_http_reader_feed(c->resp, NULL, 0, &used, &e);
				if (c->resp_done)
					break;
			}
			up_broken(c, c->resp_head ? "the gate closed the connection in the middle "
			                            "of the response"
			                          : "the gate closed the connection before its "
			                            "response");
			return;
		}
		used = 0;
		c->resp_any = 1;
		rc = tg_gate_http_reader_feed(c->resp, v.iov_base, v.iov_len, &used, &e);
		evbuffer_drain(in, used);
		if (rc == TG_GATE_HTTP_REFUSED || rc == TG_GATE_HTTP_ABORTED) {
			up_broken(c, rc == TG_GATE_HTTP_REFUSED
			                 ? e.reason
			                 : "the gate's response could not be relayed");
			return;
		}
	}
	if (c->switching && c->ub != NULL && !c->dead) {
		struct ag_uconn *uc = c->uc;
		struct bufferevent *bev = c->bev;

		c->uc = NULL;
		c->ub = NULL;
		if ((c->sp = ag_splice_start(bev, uc, splice_done, c)) == NULL) {
			c->uc = uc;
			c->dead = 1;
		}
	} else if (c->resp_done && c->uc != NULL) {
		resp_end(c);
		client_feed(c);
	}
}

static void
up_read_cb(struct bufferevent *bev, void *arg)
{
	struct hc *c = arg;

	(void)bev;
	up_feed(c);
	if (c->sp == NULL)
		hc_settle(c);
}

static void
up_write_cb(struct bufferevent *bev, void *arg)
{
	struct hc *c = arg;

	(void)bev;
	client_feed(c); /* the request body may go on */
	hc_settle(c);
}

static void
up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct hc *c = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	c->up_eof = 1;
	c->up_err = (what & BEV_EVENT_ERROR) != 0;
	bufferevent_disable(c->ub, EV_READ | EV_WRITE);
	up_feed(c);
	if (c->sp == NULL)
		hc_settle(c);
}

static void
up_ready(struct ag_uconn *uc, const char *why, void *arg)
{
	struct hc *c = arg;
	struct tg_error err;
	short want;

	c->pend = NULL;
	if (uc == NULL) {
		const char *absent = ag_listener_absent(c->l);

		if (absent != NULL)
			c->l->refused++;
		else
			c->l->failed++;
		hc_answer(c, absent != NULL ? 503 : 502, absent != NULL ? absent : why);
		hc_settle(c);
		return;
	}
	c->uc = uc;
	c->ub = ag_uconn_bev(uc);
	c->up_eof = c->up_err = 0;
	c->reused = ag_uconn_reused(uc);
	c->resp_any = 0;
	tg_error_clear(&err);
	if (c->resp == NULL &&
	    tg_gate_http_reader_new(TG_GATE_HTTP_RESPONSE, &hc_limits,
	                            &(struct tg_gate_http_cb){rs_head, rs_body, rs_end}, c,
	                            &c->resp, &err) != 0) {
		c->dead = 1;
		hc_settle(c);
		return;
	}
	tg_gate_http_reader_expect(c->resp, c->method);
	if (!c->retried)
		c->l->requests++;
	bufferevent_setcb(c->ub, up_read_cb, up_write_cb, up_event_cb, c);
	/*
	 * No read high watermark on the gate's side: the backpressure is
	 * EV_READ turned off (up_feed). libevent's TLS bufferevent (2.1) stops
	 * at a high watermark in the middle of a record, its rest decrypted in
	 * OpenSSL (SSL_pending), and when the input drains it only waits for
	 * the socket again: when the rest was the gate's last bytes, nothing
	 * ever comes, and the response stays short until the client gives up.
	 * Turned off between reads instead, it has read all OpenSSL held.
	 */
	bufferevent_setwatermark(c->ub, EV_READ, 0, 0);
	bufferevent_setwatermark(c->ub, EV_WRITE, AG_HIGH / 2, 0);
	bufferevent_set_timeouts(c->ub, NULL, NULL);
	/* a retryable request keeps its head: it may go once more */
	if (ag_uconn_write(c->uc, evbuffer_pullup(c->head, -1), evbuffer_get_length(c->head)) !=
	    0) {
		c->dead = 1;
		hc_settle(c);
		return;
	}
	if (!c->retryable)
		evbuffer_drain(c->head, evbuffer_get_length(c->head));
	if (c->req_done)
		tmo_arm(c->rtmo, c->l->cfg->response_timeout_ms);
	/* only what is off: enabling EV_WRITE again adds the write event (an
	 * epoll_ctl(2) now and one more when the output is empty) */
	if ((want = (short)((EV_READ | EV_WRITE) & ~bufferevent_get_enabled(c->ub))) != 0)
		bufferevent_enable(c->ub, want);
	client_feed(c); /* the rest of the head's events, the body */
	up_feed(c);     /* a pooled connection may hold nothing yet; harmless */
	if (c->sp == NULL)
		hc_settle(c);
}

/* ---- the request ---- */

/*
 * A client that uses the agent as its HTTP proxy sends absolute-form
 * ("GET http://api.example/v1/x"): the gate, the next hop, gets
 * origin-form (RFC 9112 section 3.2.2), the URL's authority as Host unless
 * --host says otherwise. *target (and *auth, *auth_len) for a target in
 * absolute-form; any other target goes as it is, for the gate to judge.
 * *buf: what the caller frees. 0, or -1 when out of memory.
 */
static int
rq_origin_form(const char *raw, const char **target, const char **auth, size_t *auth_len,
               char **buf)
{
	struct tg_gate_target t;
	char path[TG_GATE_PATH_MAX];
	size_t len = strlen(raw);
	int rc = 0;

	*target = raw;
	*auth = NULL;
	*auth_len = 0;
	*buf = NULL;
	if (raw[0] != '/' && tg_gate_path_target(raw, len, path, sizeof(path), &t, NULL) == 0 &&
	    t.auth_len > 0) {
		/* the path as sent (the gate normalizes it), "/" when empty */
		if ((*buf = malloc(len - t.path_off + 2)) == NULL) {
			rc = -1;
		} else {
			snprintf(*buf, len - t.path_off + 2, "%s%s", t.path_len == 0 ? "/" : "",
			         raw + t.path_off);
			*target = *buf;
			*auth = raw + t.auth_off;
			*auth_len = t.auth_len;
		}
	}
	return rc;
}

static int
rq_head(void *arg, const struct tg_gate_http_head *h)
{
	struct hc *c = arg;
	const struct tg_agent_listener_cfg *cfg = c->l->cfg;
	struct tg_gate_http_extra x[1];
	char hostport[300], *tbuf = NULL;
	const char *absent = ag_listener_absent(c->l), *target, *auth;
	size_t i, nx = 0, auth_len;
	int has_host = 0, rc = -1;

	if (absent != NULL) {
		c->l->refused++;
		hc_answer(c, 503, absent);
		goto out;
	}
	evtimer_del(c->ctmo);
	snprintf(c->method, sizeof(c->method), "%s", h->method);
	/* a Content-Length: 0 body is all in the head: it may go again too */
	c->retryable = tg_gate_http_retryable(
	    h->method,
	    h->body == TG_GATE_HTTP_BODY_LENGTH && h->content_length == 0 ? TG_GATE_HTTP_BODY_NONE
	                                                                  : h->body,
	    h->upgrade);
	c->retried = c->reused = c->resp_any = 0;
	c->has_body = h->body == TG_GATE_HTTP_BODY_CHUNKED ||
	              (h->body == TG_GATE_HTTP_BODY_LENGTH && h->content_length > 0);
	c->keep = h->keep_alive;
	c->http11 = h->http_major == 1 && h->http_minor >= 1;
	c->chunked_up = h->body == TG_GATE_HTTP_BODY_CHUNKED;
	c->upgrade = h->upgrade;
	c->req_done = c->interim = c->resp_head = c->resp_chunked = c->resp_keep = 0;
	c->resp_close = c->resp_done = c->switching = 0;
	for (i = 0; i < h->nheaders; i++)
		if (strcasecmp(h->headers[i].name, "Host") == 0)
			has_host = 1;
	if (rq_origin_form(h->target, &target, &auth, &auth_len, &tbuf) != 0) {
		c->l->failed++;
		hc_answer(c, 500, "out of memory");
		goto out;
	}
	if (cfg->host != NULL) {
		x[0] = (struct tg_gate_http_extra){"Host", cfg->host, strlen(cfg->host)};
		nx = 1;
	} else if (auth != NULL) {
		x[0] = (struct tg_gate_http_extra){"Host", auth, auth_len};
		nx = 1;
	} else if (!has_host) {
		/* an HTTP/1.0 client may send none; HTTP/1.1 towards the gate needs one */
		x[0] = (struct tg_gate_http_extra){
		    "Host", hostport, tg_gate_url_authority(&cfg->up, hostport, sizeof(hostport))};
		nx = 1;
	}
	evbuffer_drain(c->head, evbuffer_get_length(c->head));
	if (tg_gate_http_request_head(h, target, x, nx, c->head) != 0) {
		c->l->failed++;
		hc_answer(c, 400,
		          "the request cannot be forwarded (its target holds a byte a "
		          "request line cannot carry)");
		goto out;
	}
	c->in_req = 1;
	c->resume = 1; /* the rest of the head stays in the reader */
	if ((c->pend = ag_up_get(c->l->up, 1, up_ready, c)) == NULL) {
		c->dead = 1;
		goto out;
	}
	rc = 1;
out:
	free(tbuf);
	return rc;
}

static int
rq_body(void *arg, const char *data, size_t len)
{
	struct hc *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->ub);
	int rc = c->chunked_up ? tg_gate_http_chunk(data, len, out) : evbuffer_add(out, data, len);

	if (rc != 0)
		return -1;
	return evbuffer_get_length(out) > AG_HIGH ? 1 : 0;
}

static int
rq_end(void *arg)
{
	struct hc *c = arg;

	if (c->chunked_up && tg_gate_http_chunk(NULL, 0, bufferevent_get_output(c->ub)) != 0)
		return -1;
	c->req_done = 1;
	if (!c->resp_head)
		tmo_arm(c->rtmo, c->l->cfg->response_timeout_ms);
	return 1; /* the next request waits for this response */
}

static void
client_feed(struct hc *c)
{
	struct tg_gate_http_error e;
	struct evbuffer_iovec v;
	enum tg_gate_http_rc rc;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t used;

	while (!c->dead && !c->closing && c->sp == NULL) {
		if (c->in_req && (c->ub == NULL || c->req_done))
			return; /* waiting for the gate, or for the response */
		if (c->ub != NULL && evbuffer_get_length(bufferevent_get_output(c->ub)) > AG_HIGH)
			return; /* up_write_cb comes back */
		if (c->resume) {
			c->resume = 0;
			v.iov_base = (void *)"";
			v.iov_len = 0;
		} else if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
			return;
		}
		used = 0;
		if (!c->in_req && v.iov_len > 0)
			c->head_started = 1;
		rc = tg_gate_http_reader_feed(c->rd, v.iov_base, v.iov_len, &used, &e);
		evbuffer_drain(in, used);
		if (rc == TG_GATE_HTTP_REFUSED) {
			c->l->failed++;
			hc_answer(c, e.status, e.reason);
		} else if (rc == TG_GATE_HTTP_ABORTED && !c->closing) {
			c->dead = 1;
		}
	}
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct hc *c = arg;

	(void)bev;
	client_feed(c);
	if (c->sp == NULL)
		hc_settle(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct hc *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE); /* hc_flush writes the next */
	if (c->ub != NULL)
		up_feed(c); /* the response may go on */
	if (c->sp == NULL)
		hc_settle(c);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct hc *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		c->dead = 1; /* the client went away: its upstream connection is not reused */
	hc_settle(c);
}

/* client_timeout_ms passed without a complete request head. */
static void
client_tmo_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hc *c = arg;
	char why[200];

	(void)fd;
	(void)what;
	if (c->in_req || c->closing || c->dead || c->sp != NULL)
		return;
	if (c->head_started) {
		c->l->failed++;
		snprintf(why, sizeof(why),
		         "the request head did not arrive whole within %u ms (client timeout, "
		         "client_timeout_ms); send the whole head at once",
		         c->l->cfg->client_timeout_ms);
		hc_answer(c, 408, why);
	} else {
		c->dead = 1; /* an idle connection: closed without a word */
	}
	hc_settle(c);
}

/* response_timeout_ms passed since the request without the gate's response head. */
static void
resp_tmo_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hc *c = arg;
	char why[300];

	(void)fd;
	(void)what;
	if (c->resp_head || c->uc == NULL || c->sp != NULL)
		return;
	c->l->failed++;
	fprintf(stderr,
	        "tokengate agent: listener %s: %s %s: no response from the gate within %u ms\n",
	        c->l->cfg->name, c->method, c->l->cfg->upstream, c->l->cfg->response_timeout_ms);
	ag_uconn_release(c->uc, 0); /* its response may still come: not reused */
	c->uc = NULL;
	c->ub = NULL;
	snprintf(why, sizeof(why),
	         "the gate sent no response within %u ms of the request (response timeout); "
	         "try again later, or raise --response-timeout-ms (response_timeout_ms)",
	         c->l->cfg->response_timeout_ms);
	hc_answer(c, 504, why);
	hc_settle(c);
}

static void
hc_kill(struct ag_client *cl)
{
	struct hc *c = (struct hc *)cl;

	if (c->sp != NULL)
		ag_splice_kill(c->sp); /* calls splice_done */
	else
		hc_free(c);
}

void
ag_http_serve(struct ag_listener *l, evutil_socket_t fd)
{
	struct hc *c = calloc(1, sizeof(*c));
	struct tg_error err;

	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->l = l;
	c->cl.kill = hc_kill;
	ag_client_add(l, &c->cl);
	tg_error_clear(&err);
	if ((c->bev = bufferevent_socket_new(
	         l->srv->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) == NULL ||
	    (c->head = evbuffer_new()) == NULL ||
	    (c->ctmo = evtimer_new(l->srv->base, client_tmo_cb, c)) == NULL ||
	    (c->rtmo = evtimer_new(l->srv->base, resp_tmo_cb, c)) == NULL ||
	    tg_gate_http_reader_new(TG_GATE_HTTP_REQUEST, &hc_limits,
	                            &(struct tg_gate_http_cb){rq_head, rq_body, rq_end}, c, &c->rd,
	                            &err) != 0) {
		if (c->bev == NULL)
			evutil_closesocket(fd);
		hc_free(c);
		return;
	}
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, AG_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, AG_HIGH / 2, 0);
	bufferevent_set_max_single_read(c->bev, AG_IO_MAX);
	bufferevent_enable(c->bev, EV_READ); /* EV_WRITE: see hc_flush */
	tmo_arm(c->ctmo, l->cfg->client_timeout_ms);
}
