/*
 * test_gate_http.c — the gate's HTTP/1.1 framing (host/gate/http.c): every
 * framing attack of the gate's issue refused with its status and reason
 * (Content-Length with Transfer-Encoding, two or bad Content-Lengths,
 * unknown transfer codings, bad chunk sizes, obs-fold, bare CR and LF,
 * invalid header names, over-long lines and heads, HTTP/2.0), each also fed
 * byte by byte; good messages give the same events whether fed at once,
 * byte by byte or in odd pieces; pipelining, pause and resume, abort,
 * bodies streamed piece by piece; responses (HEAD, 1xx, 204, 304, 101,
 * read until close); and the exact bytes of every writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "tg_err.h"
#include "tg_gate_http.h"
#include "tg_test.h"

/* What the callbacks saw, as text; and what they answer. */
struct rec {
	char log[16384];
	size_t n;
	int last; /* 'H', 'B', 'E' */
	int heads, bodies, ends;
	int pause_head, pause_body, pause_end; /* return 1 from that callback */
	int abort_head, abort_body;
};

static void
rec_add(struct rec *c, const char *s, size_t n)
{
	assert_true(c->n + n < sizeof(c->log));
	memcpy(c->log + c->n, s, n);
	c->n += n;
	c->log[c->n] = '\0';
}

static void rec_printf(struct rec *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
rec_printf(struct rec *c, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(buf));
	rec_add(c, buf, (size_t)n);
}

static int
on_head(void *arg, const struct tg_gate_http_head *h)
{
	struct rec *c = arg;
	size_t i;

	if (c->last == 'B')
		rec_add(c, "]\n", 2);
	rec_printf(c, "HEAD %s %s %d.%d st=%d body=%d cl=%llu ka=%d up=%d ex=%d\n", h->method,
	           h->target != NULL ? h->target : "-", h->http_major, h->http_minor, h->status,
	           (int)h->body, (unsigned long long)h->content_length, h->keep_alive, h->upgrade,
	           h->expect_continue);
	for (i = 0; i < h->nheaders; i++)
		rec_printf(c, "  [%s]=[%s]\n", h->headers[i].name, h->headers[i].value);
	c->last = 'H';
	c->heads++;
	if (c->abort_head)
		return -1;
	return c->pause_head;
}

static int
on_body(void *arg, const char *data, size_t len)
{
	struct rec *c = arg;

	assert_true(len > 0);
	if (c->last != 'B')
		rec_add(c, "BODY [", 6);
	rec_add(c, data, len);
	c->last = 'B';
	c->bodies++;
	if (c->abort_body)
		return -1;
	return c->pause_body;
}

static int
on_end(void *arg)
{
	struct rec *c = arg;

	if (c->last == 'B')
		rec_add(c, "]\n", 2);
	rec_add(c, "END\n", 4);
	c->last = 'E';
	c->ends++;
	return c->pause_end;
}

static const struct tg_gate_http_cb cbs = {on_head, on_body, on_end};

static const struct tg_gate_http_limits small_lim = {64, 256, 8};

static struct tg_gate_http_reader *
reader(enum tg_gate_http_kind kind, const struct tg_gate_http_limits *lim, struct rec *c)
{
	struct tg_gate_http_reader *r = NULL;
	struct tg_error err;

	assert_int_equal(tg_gate_http_reader_new(kind, lim, &cbs, c, &r, &err), 0);
	return r;
}

/*
 * Feeds in[0..len) in pieces of step bytes (0: all at once), each piece
 * from an exact-size heap copy, resuming after every pause (len 0 resumes
 * a pause in on_head); with eof, ends with a feed of len 0. The last rc.
 */
static enum tg_gate_http_rc
drive(struct tg_gate_http_reader *r, const char *in, size_t len, size_t step, int eof,
      struct tg_gate_http_error *e)
{
	enum tg_gate_http_rc rc = TG_GATE_HTTP_OK;
	size_t off = 0, n, used;
	unsigned char *piece;
	int spins = 0;

	while (off < len) {
		n = step == 0 || step > len - off ? len - off : step;
		piece = tg_test_memdup(in + off, n);
		used = 12345;
		rc = tg_gate_http_reader_feed(r, (const char *)piece, n, &used, e);
		free(piece);
		assert_true(used <= n);
		if (rc == TG_GATE_HTTP_REFUSED || rc == TG_GATE_HTTP_ABORTED)
			return rc;
		if (rc == TG_GATE_HTTP_OK)
			assert_int_equal(used, n);
		off += used;
		spins = used == 0 ? spins + 1 : 0;
		assert_true(spins < 4);
		if (rc == TG_GATE_HTTP_PAUSED && off == len) {
			rc = tg_gate_http_reader_feed(r, "", 0, &used, e);
			assert_int_equal(used, 0);
		}
	}
	if (eof && rc != TG_GATE_HTTP_REFUSED && rc != TG_GATE_HTTP_ABORTED)
		rc = tg_gate_http_reader_feed(r, "", 0, &used, e);
	return rc;
}

/* Runs in with every step in steps; all give want_log and want_rc. */
static void
same_every_way(enum tg_gate_http_kind kind, const char *in, size_t len, int eof,
               enum tg_gate_http_rc want_rc, const char *want_log)
{
	static const size_t steps[] = {0, 1, 2, 3, 7, 13, 64};
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		memset(&c, 0, sizeof(c));
		r = reader(kind, NULL, &c);
		assert_int_equal(drive(r, in, len, steps[i], eof, &e), want_rc);
		if (c.last == 'B')
			rec_add(&c, "]\n", 2);
		if (strcmp(c.log, want_log) != 0)
			fail_msg("step %zu: got\n%s\nwant\n%s", steps[i], c.log, want_log);
		tg_gate_http_reader_free(r);
	}
}

#define S(x) x, sizeof(x) - 1

static void
test_get(void **state)
{
	(void)state;
	same_every_way(TG_GATE_HTTP_REQUEST,
	               S("GET /a/b?x=1 HTTP/1.1\r\nHost: api\r\nX-Empty:\r\n"
	                 "Accept:  text/plain \t\r\n\r\n"),
	               0, TG_GATE_HTTP_OK,
	               "HEAD GET /a/b?x=1 1.1 st=0 body=0 cl=0 ka=1 up=0 ex=0\n"
	               "  [Host]=[api]\n  [X-Empty]=[]\n  [Accept]=[text/plain]\nEND\n");
}

static void
test_bodies(void **state)
{
	(void)state;
	/* Content-Length, then chunked with an extension and a trailer, then
	 * HTTP/1.0 with Connection: close; pipelined in one input */
	same_every_way(TG_GATE_HTTP_REQUEST,
	               S("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	                 "Expect: 100-continue\r\n\r\nhello"
	                 "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
	                 "3;name=\"v\\\"x\" ; n2 = tok\r\nabc\r\n00A\r\n0123456789\r\n"
	                 "0\r\nX-Sum: 1\r\n\r\n"
	                 "\r\nGET / HTTP/1.0\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n"),
	               0, TG_GATE_HTTP_OK,
	               "HEAD POST /up 1.1 st=0 body=1 cl=5 ka=1 up=0 ex=1\n"
	               "  [Host]=[a]\n  [Content-Length]=[5]\n  [Expect]=[100-continue]\n"
	               "BODY [hello]\nEND\n"
	               "HEAD PUT /c 1.1 st=0 body=2 cl=0 ka=1 up=0 ex=0\n"
	               "  [Host]=[a]\n  [Transfer-Encoding]=[Chunked]\n"
	               "BODY [abc0123456789]\nEND\n"
	               "HEAD GET / 1.0 st=0 body=0 cl=0 ka=0 up=0 ex=0\n"
	               "  [Connection]=[close]\n  [Expect]=[100-continue]\nEND\n");
}

struct bad {
	const char *in;
	size_t len;
	int status;
	const char *reason;
};

#define B(x)         x, sizeof(x) - 1
#define GETH         "GET / HTTP/1.1\r\nHost: a\r\n"
#define POSTC        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
#define MALFORMED_RL "the request line is malformed (want: METHOD SP target SP HTTP/1.1)"
#define NOT_HEX      "a chunk size is not a hex number"
#define BAD_EXT      "a chunk-size line is malformed"

static const struct bad bads[] = {
    /* the framing attacks */
    {B(GETH "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
     "the head has both Content-Length and Transfer-Encoding"},
    {B(GETH "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400,
     "the head has both Content-Length and Transfer-Encoding"},
    {B(GETH "Content-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400,
     "the head has more than one Content-Length"},
    {B(GETH "Content-Length: 3\r\ncontent-length: 3\r\n\r\n"), 400,
     "the head has more than one Content-Length"},
    {B(GETH "Content-Length: 3, 3\r\n\r\n"), 400, "Content-Length is not a decimal number"},
    {B(GETH "Content-Length: +3\r\n\r\n"), 400, "Content-Length is not a decimal number"},
    {B(GETH "Content-Length: -1\r\n\r\n"), 400, "Content-Length is not a decimal number"},
    {B(GETH "Content-Length: 0x10\r\n\r\n"), 400, "Content-Length is not a decimal number"},
    {B(GETH "Content-Length: 1 2\r\n\r\n"), 400, "Content-Length is not a decimal number"},
    {B(GETH "Content-Length:\r\n\r\n"), 400, "Content-Length is not a decimal number"},
    {B(GETH "Content-Length: 99999999999999999999\r\n\r\n"), 400,
     "Content-Length is not a decimal number"},
    {B(GETH "Transfer-Encoding: gzip\r\n\r\n"), 501,
     "the only transfer coding the gate accepts is chunked"},
    {B(GETH "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501,
     "the only transfer coding the gate accepts is chunked"},
    {B(GETH "Transfer-Encoding: chunked, chunked\r\n\r\n"), 501,
     "the only transfer coding the gate accepts is chunked"},
    {B(GETH "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
     "the head has more than one Transfer-Encoding"},
    {B("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
     "an HTTP/1.0 message cannot use Transfer-Encoding"},
    {B(POSTC "zz\r\n"), 400, NOT_HEX},
    {B(POSTC "\r\n"), 400, NOT_HEX},
    {B(POSTC "-1\r\n"), 400, NOT_HEX},
    {B(POSTC "3x\r\nabc\r\n0\r\n\r\n"), 400, NOT_HEX},
    {B(POSTC "3\rXabcXY0\r\n\r\n"), 400,
     "a chunk-size line has a bare CR: lines must end with CRLF"},
    {B(POSTC "3\nabc\r\n0\r\n\r\n"), 400,
     "a chunk-size line ends with a bare LF: lines must end with CRLF"},
    {B(POSTC "1000000000000000\r\n"), 400, "a chunk size is too large"},
    {B(POSTC "ffffffffffffffffff\r\n"), 400, "a chunk size is too large"},
    {B(POSTC "3\r\nabcd\r\n0\r\n\r\n"), 400, "chunk data is longer than its chunk size"},
    {B(POSTC "3\r\nabc\rX0\r\n\r\n"), 400,
     "chunk data is followed by a bare CR: lines must end with CRLF"},
    {B(POSTC "3;\x01\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;a\nb\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;a=\"b\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;=b\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3 \r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;a=b \r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "0\r\nX: 1\r\n  folded\r\n\r\n"), 400,
     "the trailer section holds a folded line (obs-fold)"},
    {B(POSTC "0\r\nX : 1\r\n\r\n"), 400, "a trailer field name is not a token"},
    {B(POSTC "0\r\nX: 1\n\r\n"), 400, "a trailer field value holds a control byte or bare LF"},
    {B(POSTC "0\r\n\rX"), 400, "the trailer section has a bare CR: lines must end with CRLF"},
    {B(GETH "X-A: a\r\n b\r\n\r\n"), 400,
     "the head holds a folded header line (obs-fold): send each field on one line"},
    {B(GETH "X-A: a\r\n\tb\r\n\r\n"), 400,
     "the head holds a folded header line (obs-fold): send each field on one line"},
    {B("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400,
     "the head holds a folded header line (obs-fold): send each field on one line"},
    {B("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400, "the head has a bare CR: lines must end with CRLF"},
    {B(GETH "X-A: a\rb\r\n\r\n"), 400, "the head has a bare CR: lines must end with CRLF"},
    {B("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400, "the head has a bare LF: lines must end with CRLF"},
    {B(GETH "X-A: a\n\r\n"), 400, "the head has a bare LF: lines must end with CRLF"},
    {B(GETH "\n"), 400, "the head has a bare LF: lines must end with CRLF"},
    {B("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
     "the head has a bare LF: lines must end with CRLF"},
    {B(GETH "Ho(st: a\r\n\r\n"), 400, "a header field name is not a token (RFC 9110 section 5.1)"},
    {B(GETH ": a\r\n\r\n"), 400, "a header field name is not a token (RFC 9110 section 5.1)"},
    {B(GETH "X\xc3\xa4: a\r\n\r\n"), 400,
     "a header field name is not a token (RFC 9110 section 5.1)"},
    {B(GETH "NoColon\r\n\r\n"), 400, "a header field name is not a token (RFC 9110 section 5.1)"},
    {B(GETH "Host : a\r\n\r\n"), 400, "a header field has whitespace before its ':'"},
    {B(GETH "Content-Length\t: 5\r\n\r\n"), 400, "a header field has whitespace before its ':'"},
    {B(GETH "X-A: a\x01"
            "b\r\n\r\n"),
     400, "a header field value holds a control byte"},
    {B(GETH "X-A: a\x7f\r\n\r\n"), 400, "a header field value holds a control byte"},
    {B(GETH "X-A: a\0b\r\n\r\n"), 400, "a header field value holds a control byte"},
    {B("GET /"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n"),
     414, "the request line is longer than the gate's request_line limit"},
    {B(GETH "X-1: 1\r\nX-2: 2\r\nX-3: 3\r\nX-4: 4\r\nX-5: 5\r\nX-6: 6\r\nX-7: 7\r\n"
            "X-8: 8\r\n\r\n"),
     431, "the head has too many header fields"},
    {B(GETH "X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            "X-B: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            "X-C: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            "X-D: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
     431, "the head is larger than the gate's header_bytes limit"},
    {B("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "only HTTP/1.1 and HTTP/1.0 are supported"},
    {B("GET / HTTP/2\r\nHost: a\r\n\r\n"), 505, "only HTTP/1.1 and HTTP/1.0 are supported"},
    {B("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505, "only HTTP/1.1 and HTTP/1.0 are supported"},
    {B("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505, "only HTTP/1.1 and HTTP/1.0 are supported"},
    {B("GET /\r\n\r\n"), 505, "HTTP/0.9 is not supported: send HTTP/1.1"},
    {B("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400, MALFORMED_RL},
    {B("GET / http/1.1\r\nHost: a\r\n\r\n"), 400, MALFORMED_RL},
    {B("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, MALFORMED_RL},
    {B("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400, MALFORMED_RL},
    {B(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, MALFORMED_RL},
    {B("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
     "the request-target holds a control byte, non-ASCII byte or '#' (percent-encode it)"},
    {B("GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
     "the request-target holds a control byte, non-ASCII byte or '#' (percent-encode it)"},
    {B("FOO / HTTP/1.1\r\nHost: a\r\n\r\n"), 501, "the request is malformed: invalid HTTP method"},
    {B("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 501, "the request is malformed: invalid HTTP method"},
    {B("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 501,
     "CONNECT (a tunnel) is not supported: send the request itself (an http:// URL through a "
     "proxy, or the path to this address)"},
    {B("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "the request has more than one Host"},
    /* http-parser 2.9.4 takes any name starting with Transfer-Encoding for it */
    {B(GETH "Transfer-Encoding-X: 1\r\n\r\n"), 400,
     "a header field name starts with Transfer-Encoding (ambiguous framing)"},
    {B(GETH "transfer-encodingX: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
     "a header field name starts with Transfer-Encoding (ambiguous framing)"},
    {B("GET / HTTP/1.1\r\n\r\n"), 400, "the HTTP/1.1 request has no Host"},
};

static void
test_refused(void **state)
{
	static const size_t steps[] = {0, 1, 5};
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t i, j, used;

	(void)state;
	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		for (j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			memset(&c, 0, sizeof(c));
			memset(&e, 0, sizeof(e));
			r = reader(TG_GATE_HTTP_REQUEST, &small_lim, &c);
			if (drive(r, bads[i].in, bads[i].len, steps[j], 0, &e) !=
			        TG_GATE_HTTP_REFUSED ||
			    e.status != bads[i].status || strcmp(e.reason, bads[i].reason) != 0)
				fail_msg("case %zu step %zu: got %d \"%s\", want %d \"%s\"", i,
				         steps[j], e.status, e.reason, bads[i].status,
				         bads[i].reason);
			/* refused before the head reaches a callback, unless the
			 * refusal is in the body */
			if (strstr(bads[i].in, "chunked\r\n\r\n") == NULL)
				assert_int_equal(c.heads, 0);
			assert_int_equal(c.ends, 0);
			/* a refused reader stays dead */
			memset(&e, 0, sizeof(e));
			assert_int_equal(
			    tg_gate_http_reader_feed(r, "GET / HTTP/1.1\r\n", 16, &used, &e),
			    TG_GATE_HTTP_REFUSED);
			assert_int_equal(e.status, bads[i].status);
			assert_int_equal(used, 0);
			tg_gate_http_reader_free(r);
		}
	}
}

/* The limits count exactly: a request line and head of the limit pass. */
static void
test_limits_exact(void **state)
{
	struct tg_gate_http_limits lim = {20, 0, 2};
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	const char ok[] = "GET /0123456 HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";  /* line: 21 */
	const char ok20[] = "GET /012345 HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"; /* line: 20 */

	(void)state;
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, &lim, &c);
	assert_int_equal(drive(r, S(ok20), 1, 0, &e), TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 1);
	tg_gate_http_reader_free(r);
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, &lim, &c);
	assert_int_equal(drive(r, S(ok), 1, 0, &e), TG_GATE_HTTP_REFUSED);
	assert_int_equal(e.status, 414);
	tg_gate_http_reader_free(r);

	lim.request_line = 100;
	lim.header_bytes = sizeof(ok20) - 1;
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, &lim, &c);
	assert_int_equal(drive(r, S(ok20), 0, 0, &e), TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 1);
	tg_gate_http_reader_free(r);
	lim.header_bytes--;
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, &lim, &c);
	assert_int_equal(drive(r, S(ok20), 0, 0, &e), TG_GATE_HTTP_REFUSED);
	assert_int_equal(e.status, 431);
	assert_string_equal(e.reason, "the head is larger than the gate's header_bytes limit");
	tg_gate_http_reader_free(r);
}

#define PIPE                                                                                       \
	"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"                                                       \
	"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"                               \
	"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n"

/* Three pipelined requests in one feed, the reader paused after each. */
static void
test_pipelining(void **state)
{
	static const size_t ends[] = {28, 28 + 50, sizeof(PIPE) - 1};
	static const char in[] = PIPE;
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t off = 0, used, i;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.pause_end = 1;
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	for (i = 0; i < 3; i++) {
		assert_int_equal(
		    tg_gate_http_reader_feed(r, in + off, sizeof(in) - 1 - off, &used, &e),
		    TG_GATE_HTTP_PAUSED);
		off += used;
		assert_int_equal(off, ends[i]);
		assert_int_equal(c.ends, (int)i + 1);
	}
	assert_string_equal(c.log,
	                    "HEAD GET /1 1.1 st=0 body=0 cl=0 ka=1 up=0 ex=0\n"
	                    "  [Host]=[a]\nEND\n"
	                    "HEAD POST /2 1.1 st=0 body=1 cl=2 ka=1 up=0 ex=0\n"
	                    "  [Host]=[a]\n  [Content-Length]=[2]\nBODY [hi]\nEND\n"
	                    "HEAD POST /3 1.1 st=0 body=2 cl=0 ka=1 up=0 ex=0\n"
	                    "  [Host]=[a]\n  [Transfer-Encoding]=[chunked]\nBODY [yo]\nEND\n");
	tg_gate_http_reader_free(r);
}

/* A pause in on_head: the head is taken; len 0 resumes (not EOF). */
static void
test_pause_head(void **state)
{
	static const char in[] =
	    "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.pause_head = 1;
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, in, sizeof(in) - 1, &used, &e),
	                 TG_GATE_HTTP_PAUSED);
	assert_int_equal(used, 28);
	assert_int_equal(c.heads, 1);
	assert_int_equal(c.ends, 0);
	/* resuming with no bytes ends the first request, nothing more */
	assert_int_equal(tg_gate_http_reader_feed(r, "", 0, &used, &e), TG_GATE_HTTP_OK);
	assert_int_equal(used, 0);
	assert_int_equal(c.ends, 1);
	c.pause_head = 0;
	assert_int_equal(tg_gate_http_reader_feed(r, in + 28, sizeof(in) - 1 - 28, &used, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(used, sizeof(in) - 1 - 28);
	assert_int_equal(c.ends, 2);
	tg_gate_http_reader_free(r);
}

/* A pause in on_body stops the body; the rest comes with the next feed. */
static void
test_pause_body(void **state)
{
	static const char in[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabcdef";
	static const size_t head = sizeof(in) - 1 - 6;
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used, off;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.pause_body = 1;
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, in, head + 3, &used, &e), TG_GATE_HTTP_PAUSED);
	assert_int_equal(used, head + 3);
	off = used;
	assert_int_equal(c.bodies, 1);
	c.pause_body = 0;
	assert_int_equal(tg_gate_http_reader_feed(r, in + off, sizeof(in) - 1 - off, &used, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(used, 3);
	assert_int_equal(c.ends, 1);
	assert_non_null(strstr(c.log, "BODY [abcdef]\nEND\n"));
	tg_gate_http_reader_free(r);

	/* paused on the last piece: its last byte is fed again, not delivered again */
	memset(&c, 0, sizeof(c));
	c.pause_body = 1;
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, in, sizeof(in) - 1, &used, &e),
	                 TG_GATE_HTTP_PAUSED);
	off = used;
	assert_int_equal(c.ends, 0);
	c.pause_body = 0;
	assert_int_equal(tg_gate_http_reader_feed(r, in + off, sizeof(in) - 1 - off, &used, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(off + used, sizeof(in) - 1);
	assert_int_equal(c.ends, 1);
	assert_non_null(strstr(c.log, "BODY [abcdef]\nEND\n"));
	tg_gate_http_reader_free(r);
}

static void
test_abort(void **state)
{
	static const char in[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab";
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.abort_head = 1;
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, in, sizeof(in) - 1, &used, &e),
	                 TG_GATE_HTTP_ABORTED);
	assert_int_equal(c.bodies, 0);
	assert_int_equal(tg_gate_http_reader_feed(r, "ab", 2, &used, &e), TG_GATE_HTTP_ABORTED);
	tg_gate_http_reader_free(r);

	memset(&c, 0, sizeof(c));
	c.abort_body = 1;
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, in, sizeof(in) - 1, &used, &e),
	                 TG_GATE_HTTP_ABORTED);
	assert_int_equal(c.ends, 0);
	tg_gate_http_reader_free(r);
}

/* Each chunk reaches on_body as it arrives, before the body ends. */
static void
test_streaming(void **state)
{
	static const char head[] =
	    "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char *const pieces[] = {"5\r\nev 1\n\r\n", "5\r\nev", " 2\n\r\n", "0\r\n\r\n"};
	static const int bodies[] = {1, 2, 3, 3};
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used, i;

	(void)state;
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, head, sizeof(head) - 1, &used, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(c.heads, 1);
	for (i = 0; i < 4; i++) {
		assert_int_equal(
		    tg_gate_http_reader_feed(r, pieces[i], strlen(pieces[i]), &used, &e),
		    TG_GATE_HTTP_OK);
		assert_int_equal(c.bodies, bodies[i]);
		assert_int_equal(c.ends, i == 3 ? 1 : 0);
	}
	assert_non_null(strstr(c.log, "BODY [ev 1\nev 2\n]\nEND\n"));
	tg_gate_http_reader_free(r);
}

/* A WebSocket upgrade: the reader pauses after it; what follows is not HTTP. */
static void
test_upgrade_request(void **state)
{
	static const char in[] =
	    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
	    "Upgrade: websocket\r\n\r\n\x81\x05hello";
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used;

	(void)state;
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(tg_gate_http_reader_feed(r, in, sizeof(in) - 1, &used, &e),
	                 TG_GATE_HTTP_PAUSED);
	assert_int_equal(used, sizeof(in) - 1 - 7);
	assert_non_null(strstr(c.log, "up=1"));
	assert_int_equal(c.ends, 1);
	tg_gate_http_reader_free(r);

	/* Upgrade to anything else is no upgrade */
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_REQUEST, NULL, &c);
	assert_int_equal(drive(r,
	                       S("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n"
	                         "Upgrade: h2c\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	                       0, 0, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 2);
	assert_null(strstr(c.log, "up=1"));
	tg_gate_http_reader_free(r);
}

/* A response paused in on_head: len 0 resumes it (not EOF); then EOF ends it. */
static void
test_response_pause_eof(void **state)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.pause_head = 1;
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	tg_gate_http_reader_expect(r, "GET");
	assert_int_equal(tg_gate_http_reader_feed(r, head, sizeof(head) - 1, &used, &e),
	                 TG_GATE_HTTP_PAUSED);
	assert_int_equal(used, sizeof(head) - 1);
	assert_int_equal(tg_gate_http_reader_feed(r, NULL, 0, &used, &e), TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 0);
	assert_int_equal(tg_gate_http_reader_feed(r, "abc", 3, &used, &e), TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 0);
	assert_int_equal(tg_gate_http_reader_feed(r, NULL, 0, &used, &e), TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 1);
	assert_non_null(strstr(c.log, "body=3 cl=0 ka=0"));
	assert_non_null(strstr(c.log, "BODY [abc]\nEND\n"));
	/* after the end, EOF is nothing more */
	assert_int_equal(tg_gate_http_reader_feed(r, NULL, 0, &used, &e), TG_GATE_HTTP_OK);
	assert_int_equal(c.ends, 1);
	tg_gate_http_reader_free(r);
}

static void
test_responses(void **state)
{
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t used;
	static const char close_resp[] =
	    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
	    "data: 1\n\ndata: 2\n\n";

	(void)state;
	/* a response to HEAD has no body whatever its Content-Length says */
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	tg_gate_http_reader_expect(r, "HEAD");
	assert_int_equal(drive(r, S("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), 0, 0, &e),
	                 TG_GATE_HTTP_OK);
	tg_gate_http_reader_expect(r, "GET");
	assert_int_equal(drive(r, S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0, 0, &e),
	                 TG_GATE_HTTP_OK);
	assert_string_equal(c.log, "HEAD  - 1.1 st=200 body=0 cl=0 ka=1 up=0 ex=0\n"
	                           "  [Content-Length]=[10]\nEND\n"
	                           "HEAD  - 1.1 st=200 body=1 cl=2 ka=1 up=0 ex=0\n"
	                           "  [Content-Length]=[2]\nBODY [ok]\nEND\n");
	tg_gate_http_reader_free(r);

	/* 100, 204 and 304 have none either; a 1xx is followed by the response */
	same_every_way(TG_GATE_HTTP_RESPONSE,
	               S("HTTP/1.1 100 Continue\r\n\r\n"
	                 "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"
	                 "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n"
	                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                 "3\r\nabc\r\n0\r\n\r\n"),
	               0, TG_GATE_HTTP_OK,
	               "HEAD  - 1.1 st=100 body=0 cl=0 ka=1 up=0 ex=0\nEND\n"
	               "HEAD  - 1.1 st=204 body=0 cl=0 ka=1 up=0 ex=0\n"
	               "  [Content-Length]=[3]\nEND\n"
	               "HEAD  - 1.1 st=304 body=0 cl=0 ka=1 up=0 ex=0\n"
	               "  [Content-Length]=[3]\nEND\n"
	               "HEAD  - 1.1 st=200 body=2 cl=0 ka=1 up=0 ex=0\n"
	               "  [Transfer-Encoding]=[chunked]\nBODY [abc]\nEND\n");

	/* read until close: the body streams, EOF (len 0) ends it */
	same_every_way(TG_GATE_HTTP_RESPONSE, S(close_resp), 1, TG_GATE_HTTP_OK,
	               "HEAD  - 1.1 st=200 body=3 cl=0 ka=0 up=0 ex=0\n"
	               "  [Content-Type]=[text/event-stream]\n"
	               "BODY [data: 1\n\ndata: 2\n\n]\nEND\n");

	/* 101: the reader pauses after it, the rest belongs to the new protocol */
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	assert_int_equal(
	    tg_gate_http_reader_feed(r,
	                             S("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                               "Connection: Upgrade\r\n\r\n\x81\x00"),
	                             &used, &e),
	    TG_GATE_HTTP_PAUSED);
	assert_int_equal(used, 77);
	assert_non_null(strstr(c.log, "st=101 body=0 cl=0 ka=1 up=1"));
	tg_gate_http_reader_free(r);

	/* EOF in the middle of a Content-Length body, or of a head */
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	assert_int_equal(drive(r, S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), 0, 1, &e),
	                 TG_GATE_HTTP_REFUSED);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.reason, "the connection closed in the middle of the response");
	tg_gate_http_reader_free(r);
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	assert_int_equal(drive(r, S("HTTP/1.1 200 OK\r\n"), 0, 1, &e), TG_GATE_HTTP_REFUSED);
	assert_string_equal(e.reason, "the connection closed in the middle of the response head");
	tg_gate_http_reader_free(r);

	/* a bad status line */
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	assert_int_equal(drive(r, S("HTTP/1.1 99 x\r\n\r\n"), 0, 0, &e), TG_GATE_HTTP_REFUSED);
	assert_string_equal(e.reason, "the status line has no valid status code (100 to 599)");
	tg_gate_http_reader_free(r);
	memset(&c, 0, sizeof(c));
	r = reader(TG_GATE_HTTP_RESPONSE, NULL, &c);
	assert_int_equal(drive(r, S("HTTP/2.0 200 OK\r\n\r\n"), 0, 0, &e), TG_GATE_HTTP_REFUSED);
	assert_int_equal(e.status, 505);
	tg_gate_http_reader_free(r);
}

/* ---- writers ---- */

static char *
drain(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	assert_non_null(s);
	assert_int_equal(evbuffer_remove(b, s, n), (int)n);
	s[n] = '\0';
	return s;
}

/* Reads in (one request) and keeps a deep copy of its head. */
struct held {
	struct tg_gate_http_head h;
	struct tg_gate_http_header hdr[32];
	char names[32][64], values[32][128], target[256];
};

static int
hold_head(void *arg, const struct tg_gate_http_head *h)
{
	struct held *k = arg;
	size_t i;

	k->h = *h;
	assert_true(h->nheaders <= 32);
	for (i = 0; i < h->nheaders; i++) {
		snprintf(k->names[i], sizeof(k->names[i]), "%s", h->headers[i].name);
		snprintf(k->values[i], sizeof(k->values[i]), "%s", h->headers[i].value);
		k->hdr[i].name = k->names[i];
		k->hdr[i].value = k->values[i];
	}
	k->h.headers = k->hdr;
	if (h->target != NULL) {
		snprintf(k->target, sizeof(k->target), "%s", h->target);
		k->h.target = k->target;
	}
	return 0;
}

static void
hold(enum tg_gate_http_kind kind, const char *in, struct held *k)
{
	struct tg_gate_http_cb cb = {hold_head, NULL, NULL};
	struct tg_gate_http_reader *r = NULL;
	struct tg_gate_http_error e;
	struct tg_error err;
	size_t used;

	memset(k, 0, sizeof(*k));
	assert_int_equal(tg_gate_http_reader_new(kind, NULL, &cb, k, &r, &err), 0);
	assert_int_not_equal(tg_gate_http_reader_feed(r, in, strlen(in), &used, &e),
	                     TG_GATE_HTTP_REFUSED);
	tg_gate_http_reader_free(r);
}

static void
test_request_head(void **state)
{
	static const char secret[] = "Bearer sk-123";
	static const char id[] = "spiffe://example.org/dev/bob";
	static const char key[] = "level=device-attested; pin=once; touch=never; serial=1";
	struct tg_gate_http_extra x[] = {
	    {"X-Tokengate-Identity", id, sizeof(id) - 1},
	    {"X-Tokengate-Key", key, sizeof(key) - 1},
	    {"Authorization", secret, sizeof(secret) - 1},
	};
	struct evbuffer *b = evbuffer_new();
	struct held k;
	char *s;

	(void)state;
	hold(TG_GATE_HTTP_REQUEST,
	     "POST /v1/./chat//completions?stream=1 HTTP/1.1\r\nHost: llm\r\n"
	     "x-tokengate-identity: spiffe://example.org/ops/root\r\n"
	     "X-TOKENGATE-KEY: level=device-attested\r\nX-Tokengate-Other: 1\r\n"
	     "authorization: Bearer stolen\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
	     "Keep-Alive: timeout=5\r\nProxy-Connection: x\r\nTE: trailers\r\nTrailer: X-Sum\r\n"
	     "Upgrade: h2c\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\n"
	     "Proxy-Authorization: Basic bWU6cHc=\r\nX-Forwarded-For: 6.6.6.6\r\n"
	     "x-forwarded-host: evil.example\r\nFORWARDED: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n"
	     "X-Forwarded: no\r\nX-Realm: kept\r\nForwarded-For: kept\r\n\r\n",
	     &k);
	assert_int_equal(k.h.body, TG_GATE_HTTP_BODY_CHUNKED);
	assert_int_equal(tg_gate_http_request_head(&k.h, "/v1/chat/completions?stream=1", x, 3, b),
	                 0);
	s = drain(b);
	/* hop-by-hop, proxy credentials and what only a proxy may say are gone;
	 * names that merely look alike stay */
	assert_string_equal(s, "POST /v1/chat/completions?stream=1 HTTP/1.1\r\n"
	                       "Host: llm\r\nAccept: */*\r\nX-Forwarded: no\r\n"
	                       "X-Realm: kept\r\nForwarded-For: kept\r\n"
	                       "X-Tokengate-Identity: spiffe://example.org/dev/bob\r\n"
	                       "X-Tokengate-Key: level=device-attested; pin=once; touch=never; "
	                       "serial=1\r\n"
	                       "Authorization: Bearer sk-123\r\n"
	                       "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
	free(s);

	/* a WebSocket upgrade keeps Upgrade; Content-Length as received */
	hold(TG_GATE_HTTP_REQUEST,
	     "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
	     "Sec-WebSocket-Key: k\r\nContent-Length: 0\r\n\r\n",
	     &k);
	assert_int_equal(tg_gate_http_request_head(&k.h, "/ws", NULL, 0, b), 0);
	s = drain(b);
	assert_string_equal(s, "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n"
	                       "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	                       "\r\n");
	free(s);

	/* Connection may name any field but Host, which HTTP/1.1 needs upstream */
	hold(TG_GATE_HTTP_REQUEST,
	     "GET /h HTTP/1.1\r\nHost: a\r\nConnection: Host, Accept\r\nAccept: x\r\n\r\n", &k);
	assert_int_equal(tg_gate_http_request_head(&k.h, "/h", NULL, 0, b), 0);
	s = drain(b);
	assert_string_equal(s, "GET /h HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
	free(s);

	/* a head longer than the writer's first buffer: the same bytes, whole */
	{
		static char big[5000], want[6000];

		memset(big, 'v', sizeof(big) - 1);
		x[2].value = big;
		x[2].value_len = sizeof(big) - 1;
		assert_int_equal(tg_gate_http_request_head(&k.h, "/h", x, 3, b), 0);
		s = drain(b);
		snprintf(
		    want, sizeof(want),
		    "GET /h HTTP/1.1\r\nHost: a\r\nX-Tokengate-Identity: %s\r\n"
		    "X-Tokengate-Key: %s\r\nAuthorization: %s\r\nConnection: keep-alive\r\n\r\n",
		    id, key, big);
		assert_string_equal(s, want);
		free(s);
	}

	/* a field named by a second Connection field, the field before both */
	hold(TG_GATE_HTTP_REQUEST,
	     "GET /h HTTP/1.1\r\nX-Early: 1\r\nHost: a\r\nconnection: x-other\r\nAccept: x\r\n"
	     "CONNECTION: X-EARLY\r\nX-Other: 2\r\n\r\n",
	     &k);
	assert_int_equal(tg_gate_http_request_head(&k.h, "/h", NULL, 0, b), 0);
	s = drain(b);
	assert_string_equal(s, "GET /h HTTP/1.1\r\nHost: a\r\nAccept: x\r\n"
	                       "Connection: keep-alive\r\n\r\n");
	free(s);

	/* header values that would split the head are refused, nothing written */
	x[2].value = "Bearer a\r\nX-Evil: 1";
	x[2].value_len = strlen(x[2].value);
	assert_int_equal(tg_gate_http_request_head(&k.h, "/ws", x, 3, b), TG_ERR_INVALID_ARG);
	x[2].value = "a\nb";
	x[2].value_len = 3;
	assert_int_equal(tg_gate_http_request_head(&k.h, "/ws", x, 3, b), TG_ERR_INVALID_ARG);
	x[2].value = "a\0b";
	assert_int_equal(tg_gate_http_request_head(&k.h, "/ws", x, 3, b), TG_ERR_INVALID_ARG);
	/* CR, LF or NUL anywhere in a value of any length (the check takes 8
	 * bytes at a time) is refused; other bytes below 0x0e, and 0x80 and
	 * above, are not */
	{
		static const unsigned char bad[] = {'\r', '\n', '\0'},
		                           fine[] = {'\t', 0x0b, 0x0c, 0x0e,
		                                     0x7f, 0x80, 0x8d, 0xff};
		char v[40];
		size_t len, pos, q;

		for (len = 1; len <= sizeof(v); len++)
			for (pos = 0; pos < len; pos++) {
				memset(v, 'v', sizeof(v));
				x[2].value = v;
				x[2].value_len = len;
				for (q = 0; q < sizeof(bad); q++) {
					v[pos] = (char)bad[q];
					assert_int_equal(
					    tg_gate_http_request_head(&k.h, "/ws", x, 3, b),
					    TG_ERR_INVALID_ARG);
				}
				for (q = 0; q < sizeof(fine); q++) {
					v[pos] = (char)fine[q];
					assert_int_equal(
					    tg_gate_http_request_head(&k.h, "/ws", x, 3, b), 0);
					evbuffer_drain(b, evbuffer_get_length(b));
				}
			}
	}
	x[2].value = "ok";
	x[2].value_len = 2;
	x[2].name = "Bad Name";
	assert_int_equal(tg_gate_http_request_head(&k.h, "/ws", x, 3, b), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_gate_http_request_head(&k.h, "/a b", NULL, 0, b), TG_ERR_INVALID_ARG);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

static void
test_response_head(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct held k;
	int chunked = -1;
	char *s;

	(void)state;
	hold(TG_GATE_HTTP_RESPONSE,
	     "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
	     "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n",
	     &k);
	assert_int_equal(tg_gate_http_response_head(&k.h, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                       "Content-Length: 3\r\nConnection: keep-alive\r\n\r\n");
	assert_int_equal(chunked, 0);
	free(s);

	/* read until close: chunked to a keep-alive client, as is to a closing one */
	hold(TG_GATE_HTTP_RESPONSE, "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
	     &k);
	assert_int_equal(k.h.body, TG_GATE_HTTP_BODY_CLOSE);
	assert_int_equal(tg_gate_http_response_head(&k.h, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	                       "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
	assert_int_equal(chunked, 1);
	free(s);
	assert_int_equal(tg_gate_http_response_head(&k.h, 0, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	                       "Connection: close\r\n\r\n");
	assert_int_equal(chunked, 0);
	free(s);

	/* 101 keeps Upgrade and says Connection: Upgrade */
	hold(TG_GATE_HTTP_RESPONSE,
	     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	     "Sec-WebSocket-Accept: x\r\n\r\n",
	     &k);
	assert_int_equal(tg_gate_http_response_head(&k.h, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                       "Sec-WebSocket-Accept: x\r\nConnection: Upgrade\r\n\r\n");
	free(s);

	/* 304 keeps the length of the body it does not send; 204 does not */
	hold(TG_GATE_HTTP_RESPONSE, "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", &k);
	assert_int_equal(tg_gate_http_response_head(&k.h, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n"
	                       "Connection: keep-alive\r\n\r\n");
	free(s);

	/* chunked stays chunked */
	hold(TG_GATE_HTTP_RESPONSE, "HTTP/1.1 404 Nope\r\nTransfer-Encoding: chunked\r\n\r\n", &k);
	assert_int_equal(tg_gate_http_response_head(&k.h, 0, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n"
	                       "Connection: close\r\n\r\n");
	assert_int_equal(chunked, 1);
	free(s);

	/* to an HTTP/1.0 client (RFC 9112 6.1, 7): no Transfer-Encoding, the
	 * decoded body ended by the close, whatever keep_alive says */
	assert_int_equal(tg_gate_http_response_head_to(&k.h, 0, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
	assert_int_equal(chunked, 0);
	free(s);
	hold(TG_GATE_HTTP_RESPONSE, "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
	     &k);
	assert_int_equal(tg_gate_http_response_head_to(&k.h, 0, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	                       "Connection: close\r\n\r\n");
	assert_int_equal(chunked, 0);
	free(s);
	/* a known length stays, and so may the connection */
	hold(TG_GATE_HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", &k);
	assert_int_equal(tg_gate_http_response_head_to(&k.h, 0, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	                       "Connection: keep-alive\r\n\r\n");
	assert_int_equal(chunked, 0);
	free(s);
	/* an HTTP/1.1 client through the same call: as before */
	hold(TG_GATE_HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &k);
	assert_int_equal(tg_gate_http_response_head_to(&k.h, 1, 1, &chunked, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	                       "Connection: keep-alive\r\n\r\n");
	assert_int_equal(chunked, 1);
	free(s);
	assert_int_equal(tg_gate_http_response_head_to(NULL, 0, 1, &chunked, b),
	                 TG_ERR_INVALID_ARG);
	evbuffer_free(b);
}

static void
test_answer_chunk(void **state)
{
	struct tg_gate_http_extra x[] = {{"WWW-Authenticate", "none", 4}};
	struct evbuffer *b = evbuffer_new();
	char *s;

	(void)state;
	assert_int_equal(tg_gate_http_answer(403, "{\"error\":\"denied\"}", x, 1, 1, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
	                       "Content-Length: 18\r\nWWW-Authenticate: none\r\n"
	                       "Connection: keep-alive\r\n\r\n{\"error\":\"denied\"}");
	free(s);
	assert_int_equal(tg_gate_http_answer(400, "{}", NULL, 0, 0, b), 0);
	s = drain(b);
	assert_string_equal(s, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
	                       "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
	free(s);
	x[0].value = "a\r\n";
	x[0].value_len = 3;
	assert_int_equal(tg_gate_http_answer(403, "{}", x, 1, 1, b), TG_ERR_INVALID_ARG);
	assert_int_equal(evbuffer_get_length(b), 0);

	assert_int_equal(tg_gate_http_chunk("hello, world!!!!!", 17, b), 0);
	assert_int_equal(tg_gate_http_chunk(NULL, 0, b), 0);
	s = drain(b);
	assert_string_equal(s, "11\r\nhello, world!!!!!\r\n0\r\n\r\n");
	free(s);
	evbuffer_free(b);
}

static void
test_key_header(void **state)
{
	struct tg_prov p;
	char out[128];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.level = TG_PROV_DEVICE_ATTESTED;
	p.pin_policy = TG_ATT_PIN_ONCE;
	p.touch_policy = TG_ATT_TOUCH_NEVER;
	snprintf(p.serial, sizeof(p.serial), "12345678");
	assert_int_equal(tg_gate_http_key_header(&p, out, sizeof(out)), 61);
	assert_string_equal(out, "level=device-attested; pin=once; touch=never; serial=12345678");
	p.level = TG_PROV_HSM_OPERATOR;
	p.pin_policy = TG_ATT_PIN_MATCH_ALWAYS;
	p.touch_policy = TG_ATT_TOUCH_CACHED;
	assert_int_not_equal(tg_gate_http_key_header(&p, out, sizeof(out)), 0);
	assert_string_equal(out, "level=hsm-operator; pin=match-always; touch=cached; "
	                         "serial=12345678");
	/* too small: 0 */
	assert_int_equal(tg_gate_http_key_header(&p, out, 20), 0);
	/* a serial that would break the field: 0 */
	snprintf(p.serial, sizeof(p.serial), "1; level=x");
	assert_int_equal(tg_gate_http_key_header(&p, out, sizeof(out)), 0);
}

/* HTTP/1.0 keep-alive, Connection: close in 1.1, and the default limits. */
static void
test_keep_alive(void **state)
{
	(void)state;
	same_every_way(TG_GATE_HTTP_REQUEST,
	               S("GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
	                 "GET /b HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n"),
	               0, TG_GATE_HTTP_OK,
	               "HEAD GET /a 1.0 st=0 body=0 cl=0 ka=1 up=0 ex=0\n"
	               "  [Connection]=[Keep-Alive]\nEND\n"
	               "HEAD GET /b 1.1 st=0 body=0 cl=0 ka=0 up=0 ex=0\n"
	               "  [Host]=[a]\n  [Connection]=[foo, close]\nEND\n");
}

/* The trailer section and chunk-size lines have limits too. */
static void
test_chunk_limits(void **state)
{
	static const struct bad cases[] = {
	    {B(POSTC "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n"
	             "I: 9\r\n\r\n"),
	     431, "the trailer section has too many fields"},
	    {B(POSTC
	       "0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
	     431, "the trailer section is larger than the gate's header_bytes limit"},
	    {B(POSTC
	       "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
	     400, "a chunk-size line is longer than the gate's request_line limit"},
	    {B(POSTC "000000000000000000000000000000000000000001\r\na\r\n0\r\n\r\n"), 0, ""},
	};
	struct tg_gate_http_error e;
	struct tg_gate_http_reader *r;
	struct rec c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		memset(&e, 0, sizeof(e));
		r = reader(TG_GATE_HTTP_REQUEST, &small_lim, &c);
		assert_int_equal(drive(r, cases[i].in, cases[i].len, 1, 0, &e),
		                 cases[i].status == 0 ? TG_GATE_HTTP_OK : TG_GATE_HTTP_REFUSED);
		assert_int_equal(e.status, cases[i].status);
		assert_string_equal(e.reason, cases[i].reason);
		/* leading zeros are no size: the last case's body is one byte */
		if (cases[i].status == 0)
			assert_non_null(strstr(c.log, "BODY [a]\nEND\n"));
		tg_gate_http_reader_free(r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),          cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_refused),      cmocka_unit_test(test_limits_exact),
	    cmocka_unit_test(test_pipelining),   cmocka_unit_test(test_pause_head),
	    cmocka_unit_test(test_pause_body),   cmocka_unit_test(test_abort),
	    cmocka_unit_test(test_streaming),    cmocka_unit_test(test_upgrade_request),
	    cmocka_unit_test(test_responses),    cmocka_unit_test(test_response_pause_eof),
	    cmocka_unit_test(test_request_head), cmocka_unit_test(test_response_head),
	    cmocka_unit_test(test_answer_chunk), cmocka_unit_test(test_key_header),
	    cmocka_unit_test(test_keep_alive),   cmocka_unit_test(test_chunk_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
