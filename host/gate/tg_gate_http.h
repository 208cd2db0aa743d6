/*
 * tg_gate_http.h — HTTP/1.1 message framing for the gate: a streaming
 * reader over http-parser with the strict checks http-parser leaves out,
 * and the writers of the heads the gate sends. Pure: bytes in, events and
 * bytes out; no sockets (evbuffers are only byte buffers here).
 *
 * Reader. tg_gate_http_reader_feed hands bytes to http-parser; for each
 * message it calls on_head once with the parsed head, on_body with the
 * decoded body bytes as they arrive (chunk framing removed: the gate
 * re-frames what it forwards, so a body is streamed, never buffered whole),
 * and on_end when the message is complete. Keep-alive: the next message
 * starts right after on_end. After the on_end of an upgrade (h->upgrade)
 * feed returns TG_GATE_HTTP_PAUSED: the bytes after it belong to the new
 * protocol (feed them only if the upgrade did not happen).
 *
 * Refused before any callback sees the head (error status 400 unless
 * said): a bare CR or a bare LF as a line end anywhere in the head;
 * obs-fold (a header line starting with SP or HT); a header name that is
 * not a token, or a space before the colon; Content-Length together with
 * Transfer-Encoding; two Content-Length fields, or one that is not a
 * decimal number; a Transfer-Encoding other than exactly "chunked"
 * (501 for an unknown coding); a request line longer than request_line
 * (414), a head longer than header_bytes or with more than header_count
 * fields (431); anything http-parser refuses (bad chunk size, bad method,
 * bad version, ...; an unknown method and CONNECT 501); a request with two
 * Host fields or, in HTTP/1.1, none; HTTP/1.0 requests are accepted,
 * HTTP/0.9 and 2.0 are not (505). Refused where met in a chunked body
 * (the body bytes before were passed on): a chunk-size line that is not hex
 * digits, well-formed extensions and CRLF, a size of more than 15
 * significant hex digits, chunk data not followed by CRLF, a trailer section with the
 * faults of a head or over the head limits. A refused message leaves the
 * reader dead: the connection must be closed after the error answer.
 */
#ifndef TG_GATE_HTTP_H
#define TG_GATE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "tg_err.h"
#include "tg_prov.h"

enum tg_gate_http_kind {
	TG_GATE_HTTP_REQUEST = 1,
	TG_GATE_HTTP_RESPONSE = 2,
};

struct tg_gate_http_limits {
	size_t request_line; /* bytes of the request (or status) line */
	size_t header_bytes; /* the whole head */
	size_t header_count; /* header fields */
};

struct tg_gate_http_header {
	char *name;  /* as received (case kept), NUL-terminated */
	char *value; /* leading and trailing SP/HT removed */
};

enum tg_gate_http_body {
	TG_GATE_HTTP_BODY_NONE = 0,   /* no body (also HEAD responses, 1xx, 204, 304) */
	TG_GATE_HTTP_BODY_LENGTH = 1, /* Content-Length bytes */
	TG_GATE_HTTP_BODY_CHUNKED = 2,
	TG_GATE_HTTP_BODY_CLOSE = 3, /* responses only: until the connection closes */
};

/* A parsed head; valid during on_head only (copy what you keep). */
struct tg_gate_http_head {
	char method[24];    /* requests: "GET", ... */
	const char *target; /* requests: the raw request-target */
	int status;         /* responses */
	int http_major, http_minor;
	const struct tg_gate_http_header *headers;
	size_t nheaders;
	enum tg_gate_http_body body;
	uint64_t content_length; /* with TG_GATE_HTTP_BODY_LENGTH */
	int keep_alive;          /* the peer keeps the connection (http_should_keep_alive) */
	int upgrade;             /* requests: Connection: upgrade + Upgrade: websocket;
				    responses: 101 Switching Protocols */
	int expect_continue;     /* requests: Expect: 100-continue */
};

/*
 * Callbacks: return 0 to go on, 1 to pause the reader right after this
 * event (feed returns TG_GATE_HTTP_PAUSED; feed the rest later), -1 to
 * abort (feed returns TG_GATE_HTTP_ABORTED).
 */
struct tg_gate_http_cb {
	int (*on_head)(void *arg, const struct tg_gate_http_head *h);
	int (*on_body)(void *arg, const char *data, size_t len);
	int (*on_end)(void *arg);
};

enum tg_gate_http_rc {
	TG_GATE_HTTP_OK = 0,      /* all bytes consumed, more may come */
	TG_GATE_HTTP_PAUSED = 1,  /* a callback paused; *used bytes consumed */
	TG_GATE_HTTP_ABORTED = 2, /* a callback aborted */
	TG_GATE_HTTP_REFUSED = 3, /* malformed or over a limit: see the error */
};

struct tg_gate_http_error {
	int status;       /* the answer to send: 400, 414, 431, 501, 505 */
	char reason[160]; /* short, for the JSON body and the audit record */
};

struct tg_gate_http_reader;

/* A reader for requests or responses. 0, or TG_ERR_ALLOC. */
int tg_gate_http_reader_new(enum tg_gate_http_kind kind, const struct tg_gate_http_limits *lim,
                            const struct tg_gate_http_cb *cb, void *arg,
                            struct tg_gate_http_reader **out, struct tg_error *err);

/*
 * Responses only: the method of the request this response answers (a
 * response to HEAD has no body whatever its headers say). Call before
 * feeding each response (it holds across 1xx interim responses).
 */
void tg_gate_http_reader_expect(struct tg_gate_http_reader *r, const char *method);

/*
 * Feeds len bytes; *used is how many were consumed (all of them with
 * TG_GATE_HTTP_OK). For a response read until close, call with len 0 at
 * EOF to end it. e is filled with TG_GATE_HTTP_REFUSED. After a pause in
 * on_head the rest of that head is still inside the reader: call feed again
 * (len 0 will do: it then resumes, it is not EOF) for the events that
 * follow. For requests len 0 never means EOF.
 */
enum tg_gate_http_rc tg_gate_http_reader_feed(struct tg_gate_http_reader *r, const char *data,
                                              size_t len, size_t *used,
                                              struct tg_gate_http_error *e);

/* Frees r; NULL is accepted. */
void tg_gate_http_reader_free(struct tg_gate_http_reader *r);

/* A header the gate adds (identity, provenance, injected secret). */
struct tg_gate_http_extra {
	const char *name;
	const char *value; /* may hold a secret: never logged */
	size_t value_len;
};

/*
 * Writes the request head the gate sends upstream: "METHOD PATH HTTP/1.1"
 * with path_and_query the normalized path plus the raw query; every client
 * header except hop-by-hop ones (Connection and the fields it names,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade
 * unless h->upgrade), Proxy-Authorization (a client's credentials for the
 * proxy it talks to), any X-Tokengate-*, X-Forwarded-*, Forwarded or
 * X-Real-IP field (only a proxy may say these), and any field named in
 * extra (client copies of identity and injected headers are dropped,
 * case-insensitively); then extra; then framing (Content-Length as
 * received, or Transfer-Encoding: chunked) and "Connection: keep-alive"
 * (or "Connection: Upgrade" + "Upgrade: websocket"). 0, TG_ERR_ALLOC, or
 * TG_ERR_INVALID_ARG (nothing written) when an extra's name is not a token
 * or its value holds CR, LF or NUL, or path_and_query holds a space or a
 * control byte.
 */
int tg_gate_http_request_head(const struct tg_gate_http_head *h, const char *path_and_query,
                              const struct tg_gate_http_extra *extra, size_t nextra,
                              struct evbuffer *out);

/*
 * Writes the response head the gate sends the client for upstream head h:
 * the status line, every header except hop-by-hop ones, framing (as
 * received; a response read until close is sent chunked to a keep-alive
 * HTTP/1.1 client) and Connection: keep-alive or close per keep_alive
 * (101 responses keep Upgrade/Connection). *chunked_out tells the caller
 * whether to chunk-encode the body it forwards. For an HTTP/1.1 client
 * only: an HTTP/1.0 client cannot read chunks, use
 * tg_gate_http_response_head_to for it. The status line is "HTTP/1.1 <status> <standard reason>".
 * 0 or TG_ERR_ALLOC.
 */
int tg_gate_http_response_head(const struct tg_gate_http_head *h, int keep_alive, int *chunked_out,
                               struct evbuffer *out);

/*
 * tg_gate_http_response_head for a client of either version: with
 * client_http11 0 (an HTTP/1.0 client) no Transfer-Encoding is ever sent
 * (RFC 9112 6.1, 7): a chunked response, or one read until close, goes out
 * without Transfer-Encoding or Content-Length and with Connection: close
 * (keep_alive is taken as 0), *chunked_out 0: the caller forwards the
 * decoded body as is and closes the connection after it. A response with
 * a Content-Length keeps it (and keep_alive as given). 0, TG_ERR_ALLOC or
 * TG_ERR_INVALID_ARG (h NULL, or a status outside 100-999).
 */
int tg_gate_http_response_head_to(const struct tg_gate_http_head *h, int client_http11,
                                  int keep_alive, int *chunked_out, struct evbuffer *out);

/*
 * A complete response the gate makes itself: status, a JSON body (already
 * encoded), extra headers (may be NULL), Content-Length, Connection per
 * keep_alive. 0, TG_ERR_ALLOC, or TG_ERR_INVALID_ARG as for
 * tg_gate_http_request_head's extra.
 */
int tg_gate_http_answer(int status, const char *json_body, const struct tg_gate_http_extra *extra,
                        size_t nextra, int keep_alive, struct evbuffer *out);

/*
 * 1 when a request may be sent once more, on a new connection, after the
 * kept-alive connection it went out on closed before a byte of the
 * response (the peer most likely closed it while idle, as the request
 * left): an idempotent method (RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE,
 * PUT, DELETE), no body (body TG_GATE_HTTP_BODY_NONE: a streamed body is
 * gone), not an upgrade. Else 0: the caller answers 502.
 */
int tg_gate_http_retryable(const char *method, enum tg_gate_http_body body, int upgrade);

/* One chunk of chunked transfer coding (len 0: the last chunk "0\r\n\r\n"). */
int tg_gate_http_chunk(const char *data, size_t len, struct evbuffer *out);

/*
 * The X-Tokengate-Key value for a provenance:
 * "level=device-attested; pin=once; touch=never; serial=12345678".
 * Returns the length written (< cap) or 0 when cap is too small or the
 * serial holds a byte that cannot stand there (space, control, ';', ',', '"').
 */
size_t tg_gate_http_key_header(const struct tg_prov *p, char *out, size_t cap);

#endif /* TG_GATE_HTTP_H */
