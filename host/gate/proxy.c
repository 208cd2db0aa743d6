/*
 * proxy.c — the gate's http mode (gate-int.h): HTTP/1.1 with keep-alive
 * on an established TLS connection. Each request is read with the strict
 * reader (tg_gate_http.h), its path normalized, decided against the
 * listener's policy, audited before anything is forwarded, and then
 * forwarded with the identity headers the gate sets; the response is
 * streamed back as it arrives (never a whole body in memory). A route with
 * websocket: true may switch protocols: after the 101 both sides are
 * spliced until either closes.
 *
 * Memory per connection is bounded: each side stops being read while the
 * other side's output holds more than PX_HIGH bytes. Nothing here frees the
 * connection from inside a callback chain: handlers mark what is to happen
 * and px_settle, the last call of every event handler, does it.
 */
#include "gate-int.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "tg_gate_http.h"
#include "tg_gate_path.h"
#include "tg_hex.h"

#define PX_HIGH      (256u * 1024u) /* backpressure: stop reading the other side above this */
#define PX_TICK_MS   500u           /* idle connections look at the server's stop this often */
#define PX_LINGER_MS 2000u          /* after the last answer: read and drop for this long */
#define PX_IO_MAX    (64 * 1024)    /* bytes per write call, and per plain upstream read */
#define PX_ID_BATCH  64u            /* request ids per RAND_bytes call */
#define PX_RQ_N      4u             /* a request's values in both its audit records */

enum px_phase {
	PX_IDLE = 0,    /* between requests: no byte of the next head yet */
	PX_HEAD = 1,    /* part of a request head is in: header_ms runs */
	PX_REQUEST = 2, /* a request is being decided, forwarded, answered */
	PX_SPLICE = 3,  /* after a 101: bytes both ways */
	PX_LINGER = 4,  /* the last answer is out: drop what still comes, then close */
};

struct px_conn;

/* The request in progress (one at a time; pipelined ones wait in the input). */
struct px_req {
	struct tg_gate_snapshot *snap;
	const struct tg_gate_lstate *ls;
	const char *route; /* the deciding route's name, or NULL */
	long route_idx;
	const char *decision; /* "allow", "deny", "dry-run" */
	char id[17];
	char method[24];
	enum tg_gate_http_body body; /* the request's body */
	int chunked_up;              /* re-chunk the request body upstream */
	int keep;                    /* the client keeps the connection */
	int http11;
	int upgrade;  /* a WebSocket upgrade the route allows */
	int local;    /* answered by the gate: nothing goes upstream */
	int req_done; /* the request's on_end was seen */
	int connecting;
	const struct tg_gate_url *url;
	const char *url_text;
	struct evbuffer *head; /* the head for the upstream, built at on_head */
	struct tg_gate_upstream_conn *uc;
	struct bufferevent *ub;
	struct tg_gate_http_reader *resp;
	struct event *utmo; /* the upstream's response head: upstream_ms */
	int interim;        /* a 1xx went by: another head follows */
	int resp_head;      /* the response head went to the client */
	int resp_chunked;
	int resp_status;
	int resp_keep;  /* the upstream keeps its connection */
	int resp_close; /* the response body ends when the upstream closes */
	int resp_done;
	int switching; /* 101 seen: splice after the head */
	int up_eof;    /* the upstream closed (or failed: up_err) */
	int up_err;
	int up_slow;  /* no body byte within upstream_ms */
	int metered;  /* the request was counted in the metrics */
	int reused;   /* its upstream connection came from the pool */
	int retried;  /* sent again on a new connection (up_retry) */
	int resp_any; /* a byte of the response came */
	uint64_t bytes_in, bytes_out;
	struct timespec start;
	char *jt[PX_RQ_N]; /* request_id, route, method, path as JSON text (px_rq_text) */
	struct tg_gate_audit_wait await; /* its "request" record, kept until written */
	size_t jl[PX_RQ_N];              /* jt's lengths, or the plain values' */
	unsigned char plain[PX_RQ_N];    /* 1: the value is plain (jl its length) */
	char path[TG_GATE_PATH_MAX];     /* last: rq_new does not zero it */
};

struct px_conn {
	struct tg_gate_conn_info *ci;
	struct tg_gate_server *srv;
	struct bufferevent *bev;
	struct evbuffer *out; /* for the client, sent by px_flush */
	struct tg_gate_http_reader *rd;
	struct event *tmo; /* idle, header_ms, request body idle, splice idle, linger */
	enum px_phase phase;
	struct px_req *rq;
	struct timespec idle_since;
	unsigned idle_ms, header_ms;
	int closing;   /* close once the current answer is out */
	int close_now; /* close at the next px_settle */
	int lingering; /* PX_LINGER: the answer is out, the write side shut */
	int dead;      /* the client side is freed; waiting for the upstream callback */
	int c_eof;     /* splice: the client closed its side */
	int rd_resume; /* the reader paused in on_head: feed it (len 0 is fine) to go on */
	/* what every request of the connection sends upstream, made at its
	 * first request (px_fixed; an idle connection holds none): the
	 * X-Tokengate-Key value, a NUL, the client's IP address, a NUL */
	char *fixed;
	size_t key_len, ip_len;
};

static void px_settle(struct px_conn *c);
static void client_feed(struct px_conn *c);
static void up_feed(struct px_conn *c);
static void splice_move(struct px_conn *c, int all);

/* ---- small helpers ---- */

static double
since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
arm(struct event *ev, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};

	evtimer_add(ev, &tv);
}

/* No more requests: the answer goes out (within idle_ms), then px_settle lingers. */
static void
px_linger(struct px_conn *c)
{
	c->phase = PX_LINGER;
	c->closing = 1;
	evtimer_del(c->tmo);
	arm(c->tmo, c->idle_ms);
}

/* Where answers to the client are put: px_flush sends them (at the end of
 * every event handler, px_settle). */
static struct evbuffer *
cout(const struct px_conn *c)
{
	return c->out;
}

/* Bytes for the client not yet sent: put, and queued on the bufferevent. */
static size_t
cqueued(const struct px_conn *c)
{
	return evbuffer_get_length(c->out) + evbuffer_get_length(bufferevent_get_output(c->bev));
}

/*
 * The first contiguous piece of in, or 0 when in is empty. evbuffer_peek
 * with a length of 1 looks at the first chain only (with -1 it walks every
 * chain: quadratic over a full buffer).
 */
static size_t
first_piece(struct evbuffer *in, struct evbuffer_iovec *v)
{
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return 0;
	if (evbuffer_peek(in, 1, NULL, v, 1) < 1 || v->iov_len == 0) {
		v->iov_len = n < PX_IO_MAX ? n : PX_IO_MAX; /* an empty chain first */
		v->iov_base = evbuffer_pullup(in, (ev_ssize_t)v->iov_len);
	}
	return v->iov_base != NULL ? v->iov_len : 0;
}

/*
 * Sends what was put for the client: with SSL_write at once while nothing
 * waits on the bufferevent before it (not after an EPOLLOUT round trip, two
 * epoll_ctl and an epoll_wait per answer); what does not go at once (the
 * socket is full, or an error the bufferevent then reports) is queued on
 * the bufferevent, which writes it when the socket takes more. A retried
 * SSL_write gets the same bytes and length: the queued buffer's first chain
 * is the one tried here, at most PX_IO_MAX (the bufferevent's
 * max_single_write) long, and the SSL accepts a moved write buffer.
 */
static void
px_flush(struct px_conn *c)
{
	struct evbuffer *q = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	size_t n;
	int w;

	while (ssl != NULL && !c->lingering && evbuffer_get_length(q) == 0 &&
	       (n = first_piece(c->out, &v)) > 0) {
		if (n > PX_IO_MAX)
			n = PX_IO_MAX;
		if ((w = SSL_write(ssl, v.iov_base, (int)n)) <= 0) {
			ERR_clear_error();
			break;
		}
		evbuffer_drain(c->out, (size_t)w);
	}
	if (evbuffer_get_length(c->out) > 0)
		evbuffer_add_buffer(q, c->out);
}

/*
 * The client's SSL reads ahead (a whole record, often more, in one read(2)
 * instead of a header read and a body read), so records can wait inside
 * OpenSSL that the bufferevent does not see (it stops once SSL_pending, the
 * decrypted bytes, is 0) and that no readable event will announce: they
 * are read here into the bufferevent's input, up to PX_HIGH, at the end of
 * every event handler. 1 when bytes came.
 */
static int
px_pull(struct px_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	int n, got = 0;

	while (ssl != NULL && SSL_has_pending(ssl) && evbuffer_get_length(in) < PX_HIGH &&
	       evbuffer_reserve_space(in, TG_GATE_TLS_READ_MAX, &v, 1) == 1) {
		if ((n = SSL_read(ssl, v.iov_base, (int)v.iov_len)) <= 0) {
			/* an error or close_notify is the bufferevent's to see: the
			 * next readable event (the FIN, at the latest) reads it */
			ERR_clear_error();
			break;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
		got = 1;
	}
	return got;
}

/* Sets key to s (NULL, or bytes that are not UTF-8: JSON null). */
static void
jset_str(json_t *o, const char *key, const char *s)
{
	json_t *v = s != NULL ? json_string(s) : NULL;

	json_object_set_new(o, key, v != NULL ? v : json_null());
}

static void
jset_int(json_t *o, const char *key, json_int_t n)
{
	json_object_set_new(o, key, json_integer(n));
}

/* Writes rec (stolen) to the audit log: 0, or -1 (the log is unavailable). */
static int
px_audit(struct px_conn *c, json_t *rec)
{
	struct tg_error err;
	int rc = -1;

	tg_error_clear(&err);
	if (rec != NULL && tg_gate_audit(c->srv, rec, &err) == 0)
		rc = 0;
	json_decref(rec);
	return rc;
}

/* A record of the request rq (event, request_id, route, method, path). */
static json_t *
px_record(struct px_conn *c, const struct px_req *rq, const char *event)
{
	json_t *rec;

	/* at the first record, not at the handshake: idle connections hold none */
	tg_gate_audit_conn_ready(c->ci);
	rec = tg_gate_audit_record(c->ci, event);

	if (rec != NULL && rq != NULL) {
		jset_str(rec, "request_id", rq->id);
		jset_str(rec, "route", rq->route);
		jset_str(rec, "method", rq->method);
		jset_str(rec, "path", rq->path);
	}
	return rec;
}

/* Field i of a record: a string, or an integer. */
#define PX_STR(k, v) ((struct tg_audit_field){.key = (k), .kind = TG_AUDIT_STR, .s = (v)})
#define PX_INT(k, v)                                                                               \
	((struct tg_audit_field){.key = (k), .kind = TG_AUDIT_INT, .i = (json_int_t)(v)})

/*
 * The JSON text of the words every request's records repeat (events and
 * decisions), dumped once per process; a word whose dump failed (out of
 * memory) is dumped per record instead.
 */
static const char *const px_words[] = {"request", "response", "allow", "deny", "dry-run"};
#define PX_NWORDS (sizeof(px_words) / sizeof(px_words[0]))
static char *px_word_text[PX_NWORDS];
static size_t px_word_len[PX_NWORDS];
static pthread_once_t px_words_once = PTHREAD_ONCE_INIT;

static void
px_words_make(void)
{
	json_t *v;
	size_t i;

	for (i = 0; i < PX_NWORDS; i++) {
		if ((v = json_string(px_words[i])) != NULL)
			(void)tg_audit_dump_value(v, &px_word_text[i], &px_word_len[i]);
		json_decref(v);
	}
}

/* Field key with the value word (one of px_words, else dumped as a string). */
static struct tg_audit_field
px_word(const char *key, const char *word)
{
	size_t i;

	(void)pthread_once(&px_words_once, px_words_make);
	for (i = 0; word != NULL && i < PX_NWORDS; i++)
		if (px_word_text[i] != NULL && strcmp(word, px_words[i]) == 0)
			return (struct tg_audit_field){.key = key,
			                               .kind = TG_AUDIT_TEXT,
			                               .s = px_word_text[i],
			                               .len = px_word_len[i]};
	return PX_STR(key, word);
}

/* rq's values for both its records, dumped at the first (NULL: not yet). */
static const char *const px_rq_keys[PX_RQ_N] = {"request_id", "route", "method", "path"};

static void
px_rq_text(struct px_req *rq)
{
	const char *v[PX_RQ_N] = {rq->id, rq->route, rq->method, rq->path};
	json_t *j;
	size_t i;

	for (i = 0; i < PX_RQ_N; i++) {
		/* plain text goes in as it is (TG_AUDIT_PLAIN), checked once */
		if (rq->jt[i] != NULL || rq->plain[i])
			continue;
		if (tg_audit_str_plain(v[i])) {
			rq->plain[i] = 1;
			rq->jl[i] = strlen(v[i]);
			continue;
		}
		j = v[i] != NULL ? json_string(v[i]) : json_null();
		if (j != NULL)
			(void)tg_audit_dump_value(j, &rq->jt[i], &rq->jl[i]);
		json_decref(j);
	}
}

/*
 * Writes the record px_record(c, rq, event) would make, with the n fields
 * f added, without building it (tg_gate_audit_fields: the same line):
 * the records of every request that goes through. rq's own values are
 * dumped once for both its records. how: PX_AUDIT_NOW, written before
 * this returns; PX_AUDIT_LATER, kept by the worker and written with its
 * next record (tg_gate_audit_fields_later: the "response" records, which
 * nothing waits on); PX_AUDIT_WAIT, kept as well, and rq forwarded only
 * once tg_gate_audit_wait_done says it is written (up_connected): the
 * requests decided in one pass of the loop share a write(2). 0, or -1
 * (the log is unavailable).
 */
enum px_audit_how { PX_AUDIT_NOW, PX_AUDIT_LATER, PX_AUDIT_WAIT };
static int
px_audit_fields(struct px_conn *c, struct px_req *rq, const char *event, struct tg_audit_field *f,
                size_t n, enum px_audit_how how)
{
	const char *v[PX_RQ_N] = {rq->id, rq->route, rq->method, rq->path};
	struct tg_audit_field all[16];
	size_t i;

	if (n > sizeof(all) / sizeof(all[0]) - PX_RQ_N - 1)
		return -1;
	tg_gate_audit_conn_ready(c->ci);
	px_rq_text(rq);
	for (i = 0; i < PX_RQ_N; i++) {
		if (rq->jt[i] != NULL)
			all[i] = (struct tg_audit_field){.key = px_rq_keys[i],
			                                 .kind = TG_AUDIT_TEXT,
			                                 .s = rq->jt[i],
			                                 .len = rq->jl[i]};
		else if (rq->plain[i])
			all[i] = (struct tg_audit_field){.key = px_rq_keys[i],
			                                 .kind = TG_AUDIT_PLAIN,
			                                 .s = v[i],
			                                 .len = rq->jl[i]};
		else /* out of memory dumping it: jansson's turn in the line */
			all[i] = PX_STR(px_rq_keys[i], v[i]);
	}
	all[PX_RQ_N] = px_word("event", event);
	memcpy(all + PX_RQ_N + 1, f, n * sizeof(*f));
	if (how == PX_AUDIT_LATER)
		return tg_gate_audit_fields_later(c->ci, NULL, all, PX_RQ_N + 1 + n);
	if (how == PX_AUDIT_WAIT)
		return tg_gate_audit_fields_wait(c->ci, NULL, all, PX_RQ_N + 1 + n, &rq->await);
	return tg_gate_audit_fields(c->ci, NULL, all, PX_RQ_N + 1 + n, NULL) == 0 ? 0 : -1;
}

/*
 * Answers the client with status and a JSON body {"error":..., "reason":...}
 * (plus "route" when with_route). keep 0: Connection: close, and the
 * connection closes once the answer is out.
 */
static void
px_answer(struct px_conn *c, int status, const char *error, const char *reason, int with_route,
          const char *route, int keep)
{
	json_t *o = json_object();
	char *body = NULL;

	keep = keep && !c->closing && !tg_gate_server_stopping(c->srv);
	if (o != NULL) {
		jset_str(o, "error", error);
		if (with_route)
			jset_str(o, "route", route);
		jset_str(o, "reason", reason);
		body = json_dumps(o, JSON_COMPACT);
	}
	if (body == NULL || tg_gate_http_answer(status, body, NULL, 0, keep, cout(c)) != 0)
		c->close_now = 1; /* out of memory: nothing sensible left to say */
	if (!keep)
		c->closing = 1;
	free(body);
	json_decref(o);
}

/* rq's "request" record could not be written: 503, and the connection
 * closes (fail closed: nothing of rq goes upstream). */
static void
px_audit_refuse(struct px_conn *c, struct px_req *rq)
{
	px_answer(c, 503, "audit log unavailable",
	          "the gate cannot write its audit log, so it refuses requests until it can", 0,
	          NULL, 0);
	rq->decision = NULL;
	rq->local = 1;
}

/* A refusal before or without a decision (framing, path, slowloris): a
 * "request" record with decision deny, the answer, then close. */
static void
px_refuse(struct px_conn *c, int status, const char *error, const char *reason)
{
	json_t *rec = px_record(c, c->rq, "request");

	if (rec != NULL) {
		jset_str(rec, "decision", "deny");
		jset_int(rec, "status", status);
		jset_str(rec, "reason", reason);
		if (c->rq == NULL || c->rq->path[0] == '\0') /* no path known yet */
			json_object_del(rec, "path");
	}
	px_audit(c, rec);
	if (c->rq == NULL || c->rq->decision == NULL)
		tg_gate_metrics_request(tg_gate_server_metrics(c->srv), c->ci->listener_name, NULL,
		                        "deny", c->rq != NULL ? since(&c->rq->start) : 0.0);
	px_answer(c, status, error, reason, 0, NULL, 0);
	if (c->rq != NULL)
		c->rq->local = 1;
}

/* ---- the request's end ---- */

static void
req_free(struct px_req *rq)
{
	size_t i;

	if (rq == NULL)
		return;
	tg_gate_audit_wait_cancel(&rq->await);
	tg_gate_upstream_release(rq->uc, 0);
	tg_gate_http_reader_free(rq->resp);
	if (rq->utmo != NULL)
		event_free(rq->utmo);
	if (rq->head != NULL)
		evbuffer_free(rq->head);
	if (rq->snap != NULL)
		tg_gate_snapshot_put(rq->snap);
	for (i = 0; i < PX_RQ_N; i++)
		free(rq->jt[i]);
	free(rq);
}

static void
px_meter(struct px_conn *c, struct px_req *rq)
{
	if (rq->metered || rq->decision == NULL)
		return;
	rq->metered = 1;
	tg_gate_metrics_request(tg_gate_server_metrics(c->srv), c->ci->listener_name, rq->route,
	                        rq->decision, since(&rq->start));
}

/* The upstream failed (kind "refused", "broken", "timeout"): metrics, audit. */
static void
px_upstream_error(struct px_conn *c, const char *kind, const char *reason, int status)
{
	struct px_req *rq = c->rq;
	json_t *rec = px_record(c, rq, "upstream-error");

	tg_gate_metrics_upstream_error(tg_gate_server_metrics(c->srv), rq->url_text, kind);
	if (rec != NULL) {
		jset_str(rec, "upstream", rq->url_text);
		jset_str(rec, "kind", kind);
		jset_str(rec, "reason", reason);
		jset_int(rec, "status", status);
		jset_int(rec, "bytes_in", (json_int_t)rq->bytes_in);
		jset_int(rec, "bytes_out", (json_int_t)rq->bytes_out);
		jset_int(rec, "duration_ms", (json_int_t)(since(&rq->start) * 1000.0));
	}
	px_audit(c, rec);
}

/* The "response" record of the forwarded request rq (reason: why it ended early). */
static void
px_response_record(struct px_conn *c, struct px_req *rq, int status, const char *reason)
{
	struct tg_audit_field f[] = {
	    PX_INT("status", status),           PX_INT("bytes_in", rq->bytes_in),
	    PX_INT("bytes_out", rq->bytes_out), PX_INT("duration_ms", since(&rq->start) * 1000.0),
	    PX_STR("reason", reason),
	};

	/* no "reason" when the response ended cleanly */
	px_audit_fields(c, rq, "response", f, reason != NULL ? 5 : 4, PX_AUDIT_LATER);
}

/*
 * The current request is over. An upstream response that ended cleanly is
 * recorded ("response") and its connection pooled when it can be reused.
 */
static void
req_end(struct px_conn *c)
{
	struct px_req *rq = c->rq;

	if (rq == NULL)
		return;
	if (rq->resp_done && !rq->local) {
		px_response_record(c, rq, rq->resp_status, NULL);
		tg_gate_upstream_release(rq->uc, rq->resp_keep && !rq->resp_close && rq->req_done &&
		                                     !rq->up_eof);
		rq->uc = NULL;
	}
	px_meter(c, rq);
	if (!rq->req_done)
		c->closing = 1; /* the rest of its body is still on the wire */
	req_free(rq);
	c->rq = NULL;
	evtimer_del(c->tmo);
	if (!c->closing) {
		c->phase = PX_IDLE;
		clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
		arm(c->tmo, c->idle_ms < PX_TICK_MS ? c->idle_ms : PX_TICK_MS);
	}
}

/* ---- the upstream side ---- */

/* The spliced connection ends: its record, then both sides close. */
static void
splice_end(struct px_conn *c)
{
	struct px_req *rq = c->rq;

	if (rq != NULL) {
		rq->resp_done = 1;
		rq->resp_keep = 0;
		req_end(c);
	}
	c->close_now = 1;
}

static void
up_read(struct bufferevent *bev, void *arg)
{
	struct px_conn *c = arg;

	(void)bev;
	if (c->phase == PX_SPLICE)
		splice_move(c, 0);
	else
		up_feed(c);
	px_settle(c);
}

static void
up_write(struct bufferevent *bev, void *arg)
{
	struct px_conn *c = arg;

	(void)bev;
	if (c->phase == PX_SPLICE) {
		splice_move(c, 0);
		if (c->c_eof && evbuffer_get_length(bufferevent_get_output(c->rq->ub)) == 0)
			splice_end(c);
	} else {
		client_feed(c); /* the request body waited for room upstream */
	}
	px_settle(c);
}

static void
up_event(struct bufferevent *bev, short what, void *arg)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		/* no body byte within upstream_ms after the head */
		rq->up_eof = rq->up_err = rq->up_slow = 1;
	} else {
		rq->up_eof = 1;
		rq->up_err = (what & BEV_EVENT_ERROR) != 0;
	}
	bufferevent_disable(rq->ub, EV_READ | EV_WRITE);
	if (c->phase == PX_SPLICE) {
		/* what the upstream sent last still goes to the client */
		splice_move(c, 1);
		rq->uc = (tg_gate_upstream_release(rq->uc, 0), NULL);
		rq->ub = NULL;
		rq->resp_done = 1;
		rq->resp_keep = 0;
		req_end(c);
		c->closing = 1;
		px_linger(c);
	} else {
		up_feed(c);
	}
	px_settle(c);
}

static void
up_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;
	char reason[160];

	(void)fd;
	(void)what;
	snprintf(reason, sizeof(reason),
	         "the upstream sent no response head within %u ms (limits.upstream_ms)",
	         rq->snap->cfg.limits.upstream_ms);
	px_upstream_error(c, "timeout", reason, 504);
	rq->uc = (tg_gate_upstream_release(rq->uc, 0), NULL);
	rq->ub = NULL;
	px_answer(c, 504, "upstream timeout", reason, 0, NULL, rq->keep && rq->req_done);
	rq->local = 1;
	req_end(c);
	client_feed(c);
	px_settle(c);
}

static void up_connected(struct tg_gate_upstream_conn *uc, const char *kind, void *arg);

/* May rq go out again on a new connection? (tg_gate_http_retryable) */
static int
rq_retryable(const struct px_req *rq)
{
	return tg_gate_http_retryable(rq->method, rq->body, rq->upgrade);
}

/*
 * A pooled connection that closed before a byte of the response (kind
 * "broken": most likely the upstream had closed it while idle): a
 * retryable request (rq_retryable) is sent once more, on a new
 * connection, instead of a 502. 1 when the retry is under way.
 */
static int
up_retry(struct px_conn *c, const char *kind)
{
	struct px_req *rq = c->rq;

	if (!rq->reused || rq->retried || rq->resp_any || rq->resp_head || !rq_retryable(rq) ||
	    strcmp(kind, "broken") != 0)
		return 0;
	rq->retried = 1;
	rq->uc = (tg_gate_upstream_release(rq->uc, 0), NULL);
	rq->ub = NULL;
	tg_gate_http_reader_free(rq->resp);
	rq->resp = NULL;
	event_free(rq->utmo);
	rq->utmo = NULL;
	rq->up_eof = rq->up_err = rq->up_slow = 0;
	rq->connecting = 1;
	if (tg_gate_upstream_get_ex(c->ci->w->pool, rq->snap, rq->url, TG_GATE_UP_NEW, up_connected,
	                            c) != 0) {
		rq->connecting = 0;
		return 0;
	}
	return 1;
}

/* The upstream broke: before the response head 502, after it the client's
 * connection closes (the response cannot be finished). */
static void
up_broken(struct px_conn *c, const char *kind, const char *reason)
{
	struct px_req *rq = c->rq;

	evtimer_del(rq->utmo);
	if (up_retry(c, kind))
		return;
	px_upstream_error(c, kind, reason, rq->resp_head ? rq->resp_status : 502);
	rq->uc = (tg_gate_upstream_release(rq->uc, 0), NULL);
	rq->ub = NULL;
	if (!rq->resp_head) {
		px_answer(c, 502, "bad gateway", reason, 0, NULL, rq->keep && rq->req_done);
		rq->local = 1;
		req_end(c);
	} else {
		c->close_now = 1;
	}
}

static int
rs_head(void *arg, const struct tg_gate_http_head *h)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;
	int keep, ignored, rc = 0;
	struct timeval tv;

	evtimer_del(rq->utmo);
	if (h->status >= 100 && h->status < 200 && h->status != 101) {
		/* 100 Continue and friends: relayed to HTTP/1.1 clients */
		rq->interim = 1;
		if (rq->http11 && tg_gate_http_response_head(h, 1, &ignored, cout(c)) != 0)
			rc = -1;
		goto out;
	}
	if (h->status == 101 && !rq->upgrade) {
		rc = -1; /* never asked for: up_feed calls it broken */
		goto out;
	}
	keep = rq->keep && rq->req_done && h->status != 101 && !c->closing &&
	       !tg_gate_server_stopping(c->srv);
	/* RFC 9112 6.1, 7: an HTTP/1.0 client reads no chunks: a body of
	 * unknown length reaches it decoded and ends with the connection */
	if (!rq->http11 &&
	    (h->body == TG_GATE_HTTP_BODY_CHUNKED || h->body == TG_GATE_HTTP_BODY_CLOSE))
		keep = 0;
	if (tg_gate_http_response_head_to(h, rq->http11, keep, &rq->resp_chunked, cout(c)) != 0) {
		rc = -1;
		goto out;
	}
	rq->resp_head = 1;
	rq->resp_status = h->status;
	rq->resp_keep = h->keep_alive;
	rq->resp_close = h->body == TG_GATE_HTTP_BODY_CLOSE;
	if (!keep)
		c->closing = 1;
	if (h->status == 101) {
		rq->switching = 1; /* rs_end pauses: what follows is the new protocol */
		goto out;
	}
	/* between body bytes the upstream may be silent for upstream_ms */
	tv.tv_sec = rq->snap->cfg.limits.upstream_ms / 1000u;
	tv.tv_usec = (suseconds_t)(rq->snap->cfg.limits.upstream_ms % 1000u) * 1000;
	bufferevent_set_timeouts(rq->ub, &tv, NULL);
out:
	return rc;
}

static int
rs_body(void *arg, const char *data, size_t len)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;
	int rc;

	rq->bytes_out += len;
	rc = rq->resp_chunked ? tg_gate_http_chunk(data, len, cout(c))
	                      : evbuffer_add(cout(c), data, len);
	if (rc != 0)
		return -1;
	/* each piece goes out as it came (SSE); above PX_HIGH the upstream waits */
	return cqueued(c) > PX_HIGH ? 1 : 0;
}

static int
rs_end(void *arg)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;

	if (rq->interim) {
		rq->interim = 0;
		tg_gate_http_reader_expect(rq->resp, rq->method);
		arm(rq->utmo, rq->snap->cfg.limits.upstream_ms);
		return 0;
	}
	if (rq->switching)
		return 1;
	if (rq->resp_chunked && tg_gate_http_chunk(NULL, 0, cout(c)) != 0)
		return -1;
	rq->resp_done = 1;
	return 1;
}

static void
splice_start(struct px_conn *c)
{
	struct px_req *rq = c->rq;

	c->phase = PX_SPLICE;
	rq->req_done = 1;
	evtimer_del(rq->utmo);
	bufferevent_set_timeouts(rq->ub, NULL, NULL);
	arm(c->tmo, c->idle_ms);
	splice_move(c, 0);
}

/* Feeds the upstream's bytes to the response reader while the client has room. */
static void
up_feed(struct px_conn *c)
{
	struct px_req *rq = c->rq;
	struct tg_gate_http_error e;
	struct evbuffer_iovec v;
	struct evbuffer *in;
	enum tg_gate_http_rc rc;
	size_t used;

	while (rq != NULL && rq->ub != NULL && !rq->resp_done && !rq->switching && !c->close_now) {
		if (cqueued(c) > PX_HIGH)
			return; /* client_write comes back here */
		in = bufferevent_get_input(rq->ub);
		if (first_piece(in, &v) == 0) {
			if (!rq->up_eof)
				return;
			if (rq->resp_head && rq->resp_close && !rq->up_err) {
				tg_gate_http_reader_feed(rq->resp, NULL, 0, &used, &e);
				if (rq->resp_done)
					break;
			}
			if (rq->up_slow)
				up_broken(c, "timeout",
				          "the upstream sent nothing for limits.upstream_ms in the "
				          "middle of the response");
			else
				up_broken(c, "broken",
				          rq->resp_head
				              ? "the upstream closed the connection in the "
				                "middle of the response"
				              : "the upstream closed the connection before "
				                "its response head");
			return;
		}
		used = 0;
		rq->resp_any = 1;
		rc = tg_gate_http_reader_feed(rq->resp, v.iov_base, v.iov_len, &used, &e);
		evbuffer_drain(in, used);
		if (rc == TG_GATE_HTTP_REFUSED || rc == TG_GATE_HTTP_ABORTED) {
			up_broken(c, "broken",
			          rc == TG_GATE_HTTP_REFUSED
			              ? e.reason
			              : "the upstream's response could not be "
			                "relayed (or it switched protocols "
			                "unasked)");
			return;
		}
	}
	if (rq != NULL && rq->switching && c->phase != PX_SPLICE && !c->close_now)
		splice_start(c);
	else if (rq != NULL && rq->resp_done) {
		req_end(c);
		client_feed(c);
	}
}

static void
up_connected(struct tg_gate_upstream_conn *uc, const char *kind, void *arg)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;
	struct tg_error err;
	const char *why;
	short ev;

	rq->connecting = 0;
	if (c->dead) {
		tg_gate_upstream_release(uc, 0);
		req_free(rq);
		free(c);
		return;
	}
	if (uc == NULL) {
		why = tg_gate_upstream_reason(c->ci->w->pool);
		px_upstream_error(c, kind, why[0] != '\0' ? why : kind, 502);
		px_answer(c, 502, "bad gateway",
		          why[0] != '\0' ? why : "the upstream is unreachable", 0, NULL,
		          rq->keep && rq->body == TG_GATE_HTTP_BODY_NONE);
		rq->local = 1;
		client_feed(c); /* the request's end, or the next one */
		px_settle(c);
		return;
	}
	/* its "request" record is written first (fail closed) */
	if (tg_gate_audit_wait_done(c->ci->w, &rq->await) != 0) {
		tg_gate_upstream_release(uc, 1);
		px_audit_refuse(c, rq);
		client_feed(c);
		px_settle(c);
		return;
	}
	rq->uc = uc;
	rq->ub = tg_gate_upstream_bev(uc);
	rq->reused = tg_gate_upstream_reused(uc);
	tg_error_clear(&err);
	if (tg_gate_http_reader_new(
	        TG_GATE_HTTP_RESPONSE,
	        &(struct tg_gate_http_limits){rq->snap->cfg.limits.request_line,
	                                      rq->snap->cfg.limits.header_bytes,
	                                      rq->snap->cfg.limits.header_count},
	        &(struct tg_gate_http_cb){rs_head, rs_body, rs_end}, c, &rq->resp, &err) != 0 ||
	    (rq->utmo = evtimer_new(c->ci->w->base, up_timeout, c)) == NULL) {
		c->close_now = 1;
		px_settle(c);
		return;
	}
	tg_gate_http_reader_expect(rq->resp, rq->method);
	bufferevent_setcb(rq->ub, up_read, up_write, up_event, c);
	bufferevent_setwatermark(rq->ub, EV_READ, 0, PX_HIGH);
	bufferevent_setwatermark(rq->ub, EV_WRITE, PX_HIGH / 2, 0);
	/* libevent reads 4 KiB at a time unless told otherwise: bodies cost
	 * a callback and a copy per piece (an https upstream: a record) */
	bufferevent_set_max_single_read(
	    rq->ub, bufferevent_openssl_get_ssl(rq->ub) != NULL ? TG_GATE_TLS_READ_MAX : PX_IO_MAX);
	bufferevent_set_max_single_write(rq->ub, PX_IO_MAX);
	bufferevent_set_timeouts(rq->ub, NULL, NULL);
	/* a pooled connection has both enabled already: enabling again would
	 * cost an epoll_ctl each */
	if ((ev = (short)((EV_READ | EV_WRITE) & ~bufferevent_get_enabled(rq->ub))) != 0)
		bufferevent_enable(rq->ub, ev);
	if (tg_gate_upstream_send(uc, rq->head) != 0) {
		c->close_now = 1;
		px_settle(c);
		return;
	}
	arm(rq->utmo, rq->snap->cfg.limits.upstream_ms);
	arm(c->tmo, c->idle_ms); /* the request body may not stall longer */
	client_feed(c);          /* the request body */
	px_settle(c);
}

/* ---- the client side: requests ---- */

static void
rq_peer(const struct tg_gate_conn_info *ci, struct tg_gate_peer *p)
{
	p->identity = ci->peer.identity;
	p->level = ci->peer.prov.level;
	p->pin = ci->peer.prov.pin_policy;
	p->touch = ci->peer.prov.touch_policy;
	p->serial = ci->peer.prov.serial;
}

/* Whether the client's head h has a Host field. */
static int
rq_has_host(const struct tg_gate_http_head *h)
{
	size_t i;
	int found = 0;

	for (i = 0; !found && i < h->nheaders; i++)
		found = strcasecmp(h->headers[i].name, "host") == 0;
	return found;
}

/*
 * The client's IP address alone from peer ("192.0.2.1:50123",
 * "[2001:db8::1]:50123", or "unix": "unknown") into buf: its length.
 */
static size_t
rq_peer_ip(const char *peer, char *buf, size_t cap)
{
	const char *end = strrchr(peer, ':');
	size_t n;

	if (peer[0] == '[' && end != NULL && end > peer && end[-1] == ']')
		peer++, end--; /* "[v6]:port" */
	if (end == NULL || end <= peer)
		peer = "unknown", end = peer + strlen(peer);
	n = (size_t)(end - peer) < cap ? (size_t)(end - peer) : cap - 1;
	memcpy(buf, peer, n);
	buf[n] = '\0';
	return n;
}

/* Makes c->fixed at c's first request: 0, or -1 when out of memory. */
static int
px_fixed(struct px_conn *c)
{
	char key[512], ip[64];
	int rc = 0;

	if (c->fixed == NULL) {
		c->key_len = tg_gate_http_key_header(&c->ci->peer.prov, key, sizeof(key));
		c->ip_len = rq_peer_ip(c->ci->peer_addr, ip, sizeof(ip));
		if ((c->fixed = malloc(c->key_len + c->ip_len + 2)) == NULL) {
			rc = -1;
		} else {
			memcpy(c->fixed, key, c->key_len);
			c->fixed[c->key_len] = '\0';
			memcpy(c->fixed + c->key_len + 1, ip, c->ip_len);
			c->fixed[c->key_len + 1 + c->ip_len] = '\0';
		}
	}
	return rc;
}

/*
 * Builds the head the upstream gets: identity, provenance, injected
 * secrets; the client's address as X-Forwarded-For and X-Real-IP and
 * https as X-Forwarded-Proto (a client's own copies, and its Forwarded and
 * other X-Forwarded-* fields, are dropped by the writer: the gate is the
 * edge, and an upstream that trusts its proxy's would believe them); as
 * its Host, the route's host:, else an absolute-form
 * target's authority (t, RFC 9112 section 3.2.2), else the client's, else
 * (none sent) the upstream's.
 */
static int
rq_build_head(struct px_conn *c, struct px_req *rq, const struct tg_gate_http_head *h,
              const struct tg_gate_target *t)
{
	const struct tg_gate_route *r =
	    rq->route_idx >= 0 ? &rq->ls->policy.routes[rq->route_idx] : NULL;
	struct tg_gate_http_extra *x = NULL, x_stack[16];
	size_t n = 0, i, qoff, tlen = strlen(h->target), plen = strlen(rq->path), vlen, nx;
	char host[sizeof(rq->url->host) + 16], *pq = NULL, pq_stack[1024];
	const char *v;
	int rc = -1;

	/* the common sizes on the stack, bigger ones on the heap */
	nx = 7 + (r != NULL ? r->ninject : 0);
	x = nx <= sizeof(x_stack) / sizeof(x_stack[0]) ? x_stack : calloc(nx, sizeof(*x));
	qoff = t->path_off + t->path_len; /* the query's '?', or the end */
	pq = plen + (tlen - qoff) < sizeof(pq_stack) ? pq_stack : malloc(plen + (tlen - qoff) + 1);
	if (x == NULL || pq == NULL || px_fixed(c) != 0 || (rq->head = evbuffer_new()) == NULL)
		goto out;
	memcpy(pq, rq->path, plen);
	memcpy(pq + plen, h->target + qoff, tlen - qoff);
	pq[plen + tlen - qoff] = '\0';
	x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Identity", c->ci->peer.identity,
	                                     strlen(c->ci->peer.identity)};
	x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Key", c->fixed, c->key_len};
	x[n++] = (struct tg_gate_http_extra){"X-Tokengate-Request-Id", rq->id, strlen(rq->id)};
	x[n++] =
	    (struct tg_gate_http_extra){"X-Forwarded-For", c->fixed + c->key_len + 1, c->ip_len};
	x[n++] = (struct tg_gate_http_extra){"X-Real-IP", c->fixed + c->key_len + 1, c->ip_len};
	x[n++] = (struct tg_gate_http_extra){"X-Forwarded-Proto", "https", 5};
	if (r != NULL && r->host != NULL)
		x[n++] = (struct tg_gate_http_extra){"Host", r->host, strlen(r->host)};
	else if (t->auth_len > 0)
		x[n++] = (struct tg_gate_http_extra){"Host", h->target + t->auth_off, t->auth_len};
	else if (!rq_has_host(h) && (vlen = tg_gate_url_authority(rq->url, host, sizeof(host))) > 0)
		x[n++] = (struct tg_gate_http_extra){"Host", host, vlen};
	for (i = 0; r != NULL && i < r->ninject; i++) {
		if ((v = tg_gate_secret_value(rq->ls->secrets, (size_t)rq->route_idx, i, &vlen)) ==
		    NULL)
			goto out;
		x[n++] = (struct tg_gate_http_extra){r->inject[i].header, v, vlen};
	}
	rc = tg_gate_http_request_head(h, pq, x, n, rq->head);
out:
	if (pq != pq_stack)
		free(pq);
	if (x != x_stack)
		free(x);
	return rc;
}

/* The decision on rq; 0, or -1 when the request was answered and stops here. */
static int
rq_decide(struct px_conn *c, struct px_req *rq, const struct tg_gate_http_head *h)
{
	struct tg_gate_verdict v;
	struct tg_gate_peer peer;
	char reason[600];
	const char *why; /* v.reason, or reason */
	int denied, dry = rq->snap->cfg.dry_run, rc = 0;
	struct tg_audit_field f[3];

	rq_peer(c->ci, &peer);
	tg_gate_decide(&rq->ls->policy, &peer, rq->method, rq->path, &v);
	rq->route_idx = v.route;
	rq->route = v.route >= 0 ? rq->ls->policy.routes[v.route].name : NULL;
	why = v.reason;
	denied = !v.allow;
	if (v.allow && h->upgrade && !rq->ls->policy.routes[v.route].websocket) {
		denied = 1;
		snprintf(reason, sizeof(reason),
		         "route %s does not allow WebSocket upgrades (set websocket: true on the "
		         "route to allow them)",
		         rq->route);
		why = reason;
	}
	rq->upgrade = h->upgrade && !denied;
	rq->decision = !denied ? "allow" : dry ? "dry-run" : "deny";
	f[0] = px_word("decision", rq->decision);
	f[1] = PX_STR("reason", why);
	f[2] = PX_INT("status", 403);
	/* written before anything is forwarded (a request to forward: in
	 * up_connected, with the others of this pass); no log, no request
	 * (fail closed) */
	if (px_audit_fields(c, rq, "request", f, denied && !dry ? 3 : 2,
	                    denied && !dry ? PX_AUDIT_NOW : PX_AUDIT_WAIT) != 0) {
		px_audit_refuse(c, rq);
		rc = -1;
		goto out;
	}
	if (denied && dry)
		rq->upgrade = h->upgrade && rq->route != NULL;
	if (denied && !dry) {
		px_meter(c, rq);
		px_answer(c, 403, "forbidden", why, 1, rq->route,
		          rq->keep && h->body == TG_GATE_HTTP_BODY_NONE);
		rq->local = 1;
		rc = -1;
	}
out:
	return rc;
}

/* Where the request goes: the route's upstream or the listener's. */
static int
rq_upstream(struct px_req *rq)
{
	long u = rq->route_idx >= 0 ? rq->ls->policy.routes[rq->route_idx].upstream : -1;

	if (u >= 0) {
		rq->url = &rq->ls->upstreams[u];
		rq->url_text = rq->ls->policy.upstreams[u].url;
	} else if (rq->ls->cfg->upstream != NULL) {
		rq->url = &rq->ls->cfg->up;
		rq->url_text = rq->ls->cfg->upstream;
	}
	return rq->url != NULL ? 0 : -1;
}

/*
 * 8 random bytes for a request id, from RAND_bytes drawn for
 * PX_ID_BATCH ids at a time per worker thread (one RAND_bytes, and its
 * getpid(2), per request was measurable). Zeros when the generator fails.
 */
static void
req_id_random(unsigned char out[8])
{
	static _Thread_local unsigned char pool[8 * PX_ID_BATCH];
	static _Thread_local size_t left;

	if (left == 0) {
		if (RAND_bytes(pool, sizeof(pool)) != 1) {
			memset(out, 0, 8);
			return;
		}
		left = PX_ID_BATCH;
	}
	left--;
	memcpy(out, pool + 8 * left, 8);
	OPENSSL_cleanse(pool + 8 * left, 8);
}

/* A zeroed request but for its path buffer (4 KiB cleared per request was
 * measurable): "" until the path is normalized into it. */
static struct px_req *
rq_new(void)
{
	struct px_req *rq = malloc(sizeof(*rq));

	if (rq != NULL) {
		memset(rq, 0, offsetof(struct px_req, path));
		rq->path[0] = '\0';
	}
	return rq;
}

static int
rq_head(void *arg, const struct tg_gate_http_head *h)
{
	struct px_conn *c = arg;
	struct px_req *rq = rq_new();
	struct tg_gate_target tgt;
	const char *why = NULL;
	unsigned char rnd[8];
	size_t n;
	int rc = -1;

	evtimer_del(c->tmo);
	c->phase = PX_REQUEST;
	if (rq == NULL) {
		c->close_now = 1;
		goto out;
	}
	c->rq = rq;
	clock_gettime(CLOCK_MONOTONIC, &rq->start);
	rq->snap = tg_gate_snapshot_get(c->srv);
	rq->ls = &rq->snap->ls[c->ci->listener];
	rq->route_idx = -1;
	req_id_random(rnd);
	(void)tg_hex_encode(rnd, sizeof(rnd), rq->id, sizeof(rq->id));
	n = strlen(h->method); /* cut to rq->method, as snprintf would */
	n = n < sizeof(rq->method) ? n : sizeof(rq->method) - 1;
	memcpy(rq->method, h->method, n);
	rq->method[n] = '\0';
	rq->body = h->body;
	rq->chunked_up = h->body == TG_GATE_HTTP_BODY_CHUNKED;
	rq->http11 = h->http_major == 1 && h->http_minor >= 1;
	rq->keep = h->keep_alive;
	if (tg_gate_path_target(h->target, strlen(h->target), rq->path, sizeof(rq->path), &tgt,
	                        &why) != 0) {
		px_refuse(c, 400, "bad request", why);
		goto out;
	}
	if (rq_decide(c, rq, h) != 0) {
		rc = rq->keep && h->body == TG_GATE_HTTP_BODY_NONE && !c->closing ? 0 : -1;
		goto out;
	}
	if (rq_upstream(rq) != 0) {
		px_answer(c, 502, "bad gateway",
		          "neither the route nor the listener names an upstream; add upstream: to "
		          "the route or --upstream",
		          0, NULL, 0);
		rq->local = 1;
		goto out;
	}
	if (rq_build_head(c, rq, h, &tgt) != 0) {
		px_answer(c, 500, "internal error", "the gate could not write the upstream request",
		          0, NULL, 0);
		rq->local = 1;
		goto out;
	}
	rq->connecting = 1;
	/* a request up_retry may send again when its pooled connection turns
	 * out closed: no probe of that connection first */
	if (tg_gate_upstream_get_ex(c->ci->w->pool, rq->snap, rq->url,
	                            rq_retryable(rq) ? TG_GATE_UP_RETRYABLE : 0, up_connected,
	                            c) != 0) {
		rq->connecting = 0;
		px_upstream_error(c, "refused", "out of memory", 502);
		px_answer(c, 502, "bad gateway", "the gate could not open an upstream connection",
		          0, NULL, 0);
		rq->local = 1;
		goto out;
	}
	rc = 1; /* the body waits for the upstream connection */
out:
	c->rd_resume = rc == 1;
	return rc;
}

static int
rq_body(void *arg, const char *data, size_t len)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;
	struct evbuffer *up;
	int rc;

	if (rq == NULL || rq->local || rq->ub == NULL)
		return 0; /* answered already: the body is dropped */
	rq->bytes_in += len;
	up = bufferevent_get_output(rq->ub);
	rc = rq->chunked_up ? tg_gate_http_chunk(data, len, up) : evbuffer_add(up, data, len);
	if (rc != 0)
		return -1;
	if (!rq->resp_head)
		arm(rq->utmo, rq->snap->cfg.limits.upstream_ms);
	arm(c->tmo, c->idle_ms);
	return evbuffer_get_length(up) > PX_HIGH ? 1 : 0;
}

static int
rq_end(void *arg)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;

	if (rq == NULL)
		return 1;
	rq->req_done = 1;
	evtimer_del(c->tmo);
	if (!rq->local && rq->ub != NULL && rq->chunked_up &&
	    tg_gate_http_chunk(NULL, 0, bufferevent_get_output(rq->ub)) != 0)
		return -1;
	return 1; /* the next request waits for this one's response */
}

/* May the request reader be fed now? */
static int
can_feed(const struct px_conn *c)
{
	const struct px_req *rq = c->rq;

	if (c->close_now || c->dead || c->phase == PX_SPLICE || c->phase == PX_LINGER ||
	    cqueued(c) > PX_HIGH)
		return 0;
	if (rq == NULL)
		return !c->closing;
	if (rq->req_done || rq->connecting)
		return 0;
	if (rq->local)
		return 1;
	return rq->ub != NULL && evbuffer_get_length(bufferevent_get_output(rq->ub)) <= PX_HIGH;
}

/* Feeds the client's bytes to the request reader while that may go on. */
static void
client_feed(struct px_conn *c)
{
	struct tg_gate_http_error e;
	struct evbuffer_iovec v;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	enum tg_gate_http_rc rc;
	size_t used;

	for (;;) {
		if (c->rq != NULL && c->rq->local && (c->rq->req_done || c->closing)) {
			req_end(c);
			continue;
		}
		if (!can_feed(c))
			break;
		if (first_piece(in, &v) == 0) {
			if (!c->rd_resume)
				break;
			v.iov_base = (void *)"";
			v.iov_len = 0;
		}
		c->rd_resume = 0;
		if (c->phase == PX_IDLE) {
			c->phase = PX_HEAD;
			evtimer_del(c->tmo);
			arm(c->tmo, c->header_ms);
		}
		used = 0;
		rc = tg_gate_http_reader_feed(c->rd, v.iov_base, v.iov_len, &used, &e);
		evbuffer_drain(in, used);
		if (rc == TG_GATE_HTTP_REFUSED) {
			if (c->rq != NULL && c->rq->resp_head) {
				/* a bad body after the response began: only closing is left */
				px_response_record(c, c->rq, c->rq->resp_status, e.reason);
				c->close_now = 1;
			} else {
				px_refuse(c, e.status, "bad request", e.reason);
			}
			continue;
		}
		if (rc == TG_GATE_HTTP_ABORTED && (c->rq == NULL || !c->rq->local))
			c->close_now = 1;
	}
	if (c->rq == NULL && c->closing && c->phase != PX_LINGER)
		px_linger(c); /* px_settle shuts the write side once the answer is out */
}

/* ---- splice (WebSocket after 101) ---- */

/* Moves bytes both ways while the receiving side has room (all: regardless). */
static void
splice_move(struct px_conn *c, int all)
{
	struct px_req *rq = c->rq;
	struct evbuffer *cin = bufferevent_get_input(c->bev);
	struct evbuffer *uin, *uout;
	int moved = 0;

	if (rq == NULL || rq->ub == NULL) {
		evbuffer_drain(cin, evbuffer_get_length(cin)); /* nowhere to go */
		return;
	}
	uin = bufferevent_get_input(rq->ub);
	uout = bufferevent_get_output(rq->ub);
	if (evbuffer_get_length(cin) > 0 && (all || evbuffer_get_length(uout) <= PX_HIGH)) {
		rq->bytes_in += evbuffer_get_length(cin);
		evbuffer_add_buffer(uout, cin);
		moved = 1;
	}
	if (evbuffer_get_length(uin) > 0 && (all || cqueued(c) <= PX_HIGH)) {
		rq->bytes_out += evbuffer_get_length(uin);
		evbuffer_add_buffer(cout(c), uin);
		moved = 1;
	}
	if (moved)
		arm(c->tmo, c->idle_ms);
}

/* ---- client events ---- */

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct px_conn *c = arg;

	if (c->phase == PX_SPLICE)
		splice_move(c, 0);
	else if (c->phase == PX_LINGER)
		evbuffer_drain(bufferevent_get_input(bev),
		               evbuffer_get_length(bufferevent_get_input(bev)));
	else
		client_feed(c);
	px_settle(c);
}

/* There is room for the client again: what waited for it goes on. */
static void
client_room(struct px_conn *c)
{
	if (c->phase == PX_SPLICE)
		splice_move(c, 0);
	else if (c->rq != NULL && c->rq->ub != NULL && !c->rq->resp_done)
		up_feed(c); /* the response waited for room at the client */
}

static void
client_write(struct bufferevent *bev, void *arg)
{
	struct px_conn *c = arg;

	(void)bev;
	client_room(c);
	px_settle(c);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	struct px_conn *c = arg;
	struct px_req *rq = c->rq;

	(void)bev;
	if (c->phase == PX_SPLICE && rq != NULL && rq->ub != NULL) {
		/* the client is done: what it sent still goes up, then both close */
		splice_move(c, 1);
		c->c_eof = 1;
		bufferevent_disable(c->bev, EV_READ);
		if ((what & BEV_EVENT_EOF) == 0 ||
		    evbuffer_get_length(bufferevent_get_output(rq->ub)) == 0)
			splice_end(c);
	} else {
		if (rq != NULL && rq->decision != NULL && !rq->local && !rq->resp_done &&
		    !rq->connecting)
			px_response_record(c, rq, rq->resp_head ? rq->resp_status : 499,
			                   "the client closed the connection before the response "
			                   "ended");
		c->close_now = 1;
	}
	px_settle(c);
}

static void
client_timer(evutil_socket_t fd, short what, void *arg)
{
	struct px_conn *c = arg;
	char reason[160];

	(void)fd;
	(void)what;
	switch (c->phase) {
	case PX_IDLE:
		if (tg_gate_server_stopping(c->srv) || since(&c->idle_since) * 1000.0 >= c->idle_ms)
			c->close_now = 1;
		else
			arm(c->tmo, PX_TICK_MS);
		break;
	case PX_HEAD:
		snprintf(reason, sizeof(reason),
		         "the request head did not arrive within %u ms (limits.header_ms)",
		         c->header_ms);
		px_refuse(c, 408, "request timeout", reason);
		px_linger(c);
		break;
	case PX_REQUEST:
		/* the request body stalled */
		if (c->rq != NULL && !c->rq->resp_head && !c->rq->connecting) {
			snprintf(reason, sizeof(reason),
			         "the request body stalled for %u ms (limits.idle_ms)", c->idle_ms);
			px_refuse(c, 408, "request timeout", reason);
			req_end(c);
			px_linger(c);
		} else {
			c->close_now = 1;
		}
		break;
	case PX_SPLICE:
		splice_end(c);
		break;
	case PX_LINGER:
	default:
		c->close_now = 1;
		break;
	}
	px_settle(c);
}

/* ---- the connection's end ---- */

static void
px_free(struct px_conn *c)
{
	struct px_req *rq = c->rq;

	if (c->tmo != NULL)
		event_free(c->tmo);
	c->tmo = NULL;
	tg_gate_http_reader_free(c->rd);
	c->rd = NULL;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->out != NULL)
		evbuffer_free(c->out);
	c->out = NULL;
	free(c->fixed);
	c->fixed = NULL;
	if (rq != NULL)
		px_meter(c, rq);
	tg_gate_conn_done(c->ci);
	c->ci = NULL;
	if (rq != NULL && rq->connecting) {
		c->dead = 1; /* up_connected frees rq and c */
		return;
	}
	req_free(rq);
	free(c);
}

/*
 * The last call of every event handler: feeds what may be fed, frees a
 * connection marked close_now, and once a closing connection's answer is
 * out, shuts its write side and lingers.
 */
static void
px_settle(struct px_conn *c)
{
	int fd, full;

	for (;;) {
		if (!c->close_now && c->phase != PX_SPLICE && c->phase != PX_LINGER)
			client_feed(c);
		if (!c->close_now && px_pull(c)) {
			/* as client_read would (it ends in px_settle: not from here) */
			if (c->phase == PX_SPLICE)
				splice_move(c, 0);
			else if (c->phase == PX_LINGER)
				evbuffer_drain(bufferevent_get_input(c->bev),
				               evbuffer_get_length(bufferevent_get_input(c->bev)));
			continue;
		}
		if (c->close_now) {
			px_free(c);
			return;
		}
		/* above PX_HIGH what fills it paused for room: when all of it
		 * went at once, no bufferevent write callback will say so */
		full = evbuffer_get_length(c->out) > PX_HIGH;
		px_flush(c);
		if (!full || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			break;
		client_room(c);
	}
	if (c->phase == PX_LINGER && !c->lingering && c->rq == NULL && cqueued(c) == 0) {
		/* Closing now with unread bytes from the client would reset the
		 * connection and could destroy the answer on its way: stop
		 * writing, read and drop for a while, then close. */
		c->lingering = 1;
		fd = (int)bufferevent_getfd(c->bev);
		if (fd >= 0)
			shutdown(fd, SHUT_WR);
		bufferevent_disable(c->bev, EV_WRITE);
		evtimer_del(c->tmo);
		arm(c->tmo, PX_LINGER_MS);
	}
}

void
tg_gate_http_serve(struct bufferevent *bev, struct tg_gate_conn_info *ci)
{
	struct px_conn *c = calloc(1, sizeof(*c));
	struct tg_gate_snapshot *snap = tg_gate_snapshot_get(ci->w->srv);
	struct tg_gate_http_limits lim = {snap->cfg.limits.request_line,
	                                  snap->cfg.limits.header_bytes,
	                                  snap->cfg.limits.header_count};
	struct tg_error err;

	tg_error_clear(&err);
	if (c == NULL)
		goto fail;
	c->ci = ci;
	c->srv = ci->w->srv;
	c->bev = bev;
	c->idle_ms = snap->cfg.limits.idle_ms;
	c->header_ms = snap->cfg.limits.header_ms;
	if ((c->out = evbuffer_new()) == NULL ||
	    (c->tmo = evtimer_new(ci->w->base, client_timer, c)) == NULL ||
	    tg_gate_http_reader_new(TG_GATE_HTTP_REQUEST, &lim,
	                            &(struct tg_gate_http_cb){rq_head, rq_body, rq_end}, c, &c->rd,
	                            &err) != 0)
		goto fail;
	tg_gate_snapshot_put(snap);
	snap = NULL;
	bufferevent_setcb(bev, client_read, client_write, client_event, c);
	bufferevent_setwatermark(bev, EV_READ, 0, PX_HIGH);
	bufferevent_setwatermark(bev, EV_WRITE, PX_HIGH / 2, 0);
	bufferevent_set_max_single_read(bev, TG_GATE_TLS_READ_MAX);
	/* one read(2) per record or more, not two (px_pull) */
	SSL_set_read_ahead(bufferevent_openssl_get_ssl(bev), 1);
	bufferevent_set_max_single_write(bev, PX_IO_MAX);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	c->phase = PX_IDLE;
	clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
	arm(c->tmo, c->idle_ms < PX_TICK_MS ? c->idle_ms : PX_TICK_MS);
	client_feed(c); /* bytes that came with the handshake */
	px_settle(c);
	return;
fail:
	if (snap != NULL)
		tg_gate_snapshot_put(snap);
	if (c != NULL) {
		if (c->tmo != NULL)
			event_free(c->tmo);
		if (c->out != NULL)
			evbuffer_free(c->out);
		free(c);
	}
	bufferevent_free(bev);
	tg_gate_conn_done(ci);
}
