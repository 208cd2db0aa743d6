/*
 * test_gatep_http.c — corners of the gate's HTTP/1.1 framing
 * (host/gate/http.c) beyond test_gate_http.c: a method longer than the
 * gate keeps, the chunk-extension grammar's remaining states (accepted:
 * several extensions, a quoted value followed by ';', BWS or CRLF;
 * refused: a bad value start, a bad quoted-pair, junk after a quoted
 * value, a trailer name that is not a token), the status line's code and
 * reason, a response cut short, Connection and Upgrade lists with
 * whitespace around their members, and an extra header whose value is
 * missing but has a length. Each input is fed at once and byte by byte;
 * refusals assert status and reason.
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

/* What the callbacks saw. */
struct rec {
	char body[256];
	size_t nbody;
	int heads, ends, keep_alive, status, upgrade;
};

static int
on_head(void *arg, const struct tg_gate_http_head *h)
{
	struct rec *c = arg;

	c->heads++;
	c->keep_alive = h->keep_alive;
	c->status = h->status;
	c->upgrade = h->upgrade;
	return 0;
}

static int
on_body(void *arg, const char *data, size_t len)
{
	struct rec *c = arg;

	assert_true(c->nbody + len < sizeof(c->body));
	memcpy(c->body + c->nbody, data, len);
	c->nbody += len;
	c->body[c->nbody] = '\0';
	return 0;
}

static int
on_end(void *arg)
{
	struct rec *c = arg;

	c->ends++;
	return 0;
}

static const struct tg_gate_http_cb cbs = {on_head, on_body, on_end};

/*
 * Feeds in (len bytes) to a new reader of kind, at once (step 0) or in
 * pieces of step bytes, each from an exact-size heap copy; with eof, a
 * final feed of 0 bytes. The last rc; *c what the callbacks saw.
 */
static enum tg_gate_http_rc
feed(enum tg_gate_http_kind kind, const char *in, size_t len, size_t step, int eof, struct rec *c,
     struct tg_gate_http_error *e)
{
	struct tg_gate_http_reader *r = NULL;
	enum tg_gate_http_rc rc = TG_GATE_HTTP_OK;
	struct tg_error err;
	size_t off = 0, n, used;
	unsigned char *piece;

	memset(c, 0, sizeof(*c));
	memset(e, 0, sizeof(*e));
	assert_int_equal(tg_gate_http_reader_new(kind, NULL, &cbs, c, &r, &err), 0);
	while (off < len && rc == TG_GATE_HTTP_OK) {
		n = step == 0 || step > len - off ? len - off : step;
		piece = tg_test_memdup(in + off, n);
		used = 0;
		rc = tg_gate_http_reader_feed(r, (const char *)piece, n, &used, e);
		free(piece);
		off += used;
	}
	if (eof && rc == TG_GATE_HTTP_OK)
		rc = tg_gate_http_reader_feed(r, "", 0, &used, e);
	tg_gate_http_reader_free(r);
	return rc;
}

#define B(x)    x, sizeof(x) - 1
#define POSTC   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
#define BAD_EXT "a chunk-size line is malformed"

static const struct {
	const char *in;
	size_t len;
	int status;
	const char *reason;
} bad_requests[] = {
    {B("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\nHost: a\r\n\r\n"), 501,
     "the request method is not implemented"},
    {B("ABCDEFGHIJKLMNOPQRSTUVWX / HTTP/1.1\r\nHost: a\r\n\r\n"), 501,
     "the request method is not implemented"},
    {B(POSTC "3;a=,\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;a=\"\\\x01\"\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;a=\"b\"x\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3;a=\"b\" \r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3 x\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "3; \x01\r\nabc\r\n0\r\n\r\n"), 400, BAD_EXT},
    {B(POSTC "0\r\n(X: 1\r\n\r\n"), 400, "a trailer field name is not a token"},
};

static void
test_requests_refused(void **state)
{
	static const size_t steps[] = {0, 1};
	struct tg_gate_http_error e;
	struct rec c;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++)
		for (j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			if (feed(TG_GATE_HTTP_REQUEST, bad_requests[i].in, bad_requests[i].len,
			         steps[j], 0, &c, &e) != TG_GATE_HTTP_REFUSED ||
			    e.status != bad_requests[i].status ||
			    strcmp(e.reason, bad_requests[i].reason) != 0)
				fail_msg("case %zu step %zu: got %d \"%s\", want %d \"%s\"", i,
				         steps[j], e.status, e.reason, bad_requests[i].status,
				         bad_requests[i].reason);
			assert_int_equal(c.ends, 0);
			/* the method is refused before the head is handed on */
			if (i < 2)
				assert_int_equal(c.heads, 0);
		}
}

static const struct {
	const char *in;
	size_t len;
} good_chunked[] = {
    {B(POSTC "3;a;b\r\nabc\r\n0\r\n\r\n")},         {B(POSTC "3;a=\"b\";c\r\nabc\r\n0\r\n\r\n")},
    {B(POSTC "3;a=\"b\"\r\nabc\r\n0\r\n\r\n")},     {B(POSTC "3;a=\"b\" ;c\r\nabc\r\n0\r\n\r\n")},
    {B(POSTC "3;a=\"\\\"b\"\r\nabc\r\n0\r\n\r\n")}, {B(POSTC "3 ; a = b\r\nabc\r\n0\r\n\r\n")},
};

static void
test_chunk_extensions_taken(void **state)
{
	static const size_t steps[] = {0, 1};
	struct tg_gate_http_error e;
	struct rec c;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(good_chunked) / sizeof(good_chunked[0]); i++)
		for (j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			if (feed(TG_GATE_HTTP_REQUEST, good_chunked[i].in, good_chunked[i].len,
			         steps[j], 0, &c, &e) != TG_GATE_HTTP_OK)
				fail_msg("case %zu step %zu refused: %d \"%s\"", i, steps[j],
				         e.status, e.reason);
			assert_int_equal(c.heads, 1);
			assert_string_equal(c.body, "abc");
			assert_int_equal(c.ends, 1);
		}
}

/* Connection and Upgrade: lists whose members have whitespace around them. */
static void
test_upgrade_lists(void **state)
{
	struct tg_gate_http_error e;
	struct rec c;

	(void)state;
	assert_int_equal(feed(TG_GATE_HTTP_REQUEST,
	                      B("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive , upgrade "
	                        "\t\r\nUpgrade: h2c ,\twebsocket \r\n\r\n"),
	                      0, 0, &c, &e),
	                 TG_GATE_HTTP_PAUSED);
	assert_int_equal(c.heads, 1);
	assert_int_equal(c.upgrade, 1);
	/* a member that only starts with the word is not it */
	assert_int_equal(feed(TG_GATE_HTTP_REQUEST,
	                      B("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgraded ,\t "
	                        "keep-alive\r\nUpgrade: websocket\r\n\r\n"),
	                      0, 0, &c, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(c.heads, 1);
	assert_int_equal(c.upgrade, 0);
	assert_int_equal(c.ends, 1);
}

static const struct {
	const char *in;
	size_t len;
	int status;
	const char *reason;
} bad_responses[] = {
    {B("HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line's reason holds a control byte"},
    {B("HTTP/1.1 20\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line has no valid status code (100 to 599)"},
    {B("HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line has no valid status code (100 to 599)"},
    {B("HTTP/1.1 2x0 X\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line has no valid status code (100 to 599)"},
    {B("HTTP/1.1 20x X\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line has no valid status code (100 to 599)"},
    {B("HTTP/1.1 200X\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line has no valid status code (100 to 599)"},
    {B("HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n"), 400,
     "the status line has no valid status code (100 to 599)"},
    {B("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), 400,
     "the connection closed in the middle of the response"},
    {B("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), 400,
     "the connection closed in the middle of the response"},
};

static void
test_responses_refused(void **state)
{
	static const size_t steps[] = {0, 1};
	struct tg_gate_http_error e;
	struct rec c;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(bad_responses) / sizeof(bad_responses[0]); i++)
		for (j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			if (feed(TG_GATE_HTTP_RESPONSE, bad_responses[i].in, bad_responses[i].len,
			         steps[j], 1, &c, &e) != TG_GATE_HTTP_REFUSED ||
			    e.status != bad_responses[i].status ||
			    strcmp(e.reason, bad_responses[i].reason) != 0)
				fail_msg("case %zu step %zu: got %d \"%s\", want %d \"%s\"", i,
				         steps[j], e.status, e.reason, bad_responses[i].status,
				         bad_responses[i].reason);
			assert_int_equal(c.ends, 0);
		}
	/* a reason of printable text and tabs is taken */
	assert_int_equal(feed(TG_GATE_HTTP_RESPONSE,
	                      B("HTTP/1.1 599 Odd\treason ~\r\nContent-Length: 0\r\n\r\n"), 0, 1,
	                      &c, &e),
	                 TG_GATE_HTTP_OK);
	assert_int_equal(c.status, 599);
	assert_int_equal(c.ends, 1);
}

/* An extra header with no value but a length is refused; with none, it is empty. */
static void
test_answer_extra_null(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct tg_gate_http_extra x = {"X-A", NULL, 1};
	char text[512];
	size_t n;

	(void)state;
	assert_non_null(b);
	assert_int_equal(tg_gate_http_answer(403, "", &x, 1, 0, b), TG_ERR_INVALID_ARG);
	assert_int_equal(evbuffer_get_length(b), 0);
	x.value_len = 0;
	assert_int_equal(tg_gate_http_answer(403, "", &x, 1, 0, b), 0);
	n = evbuffer_get_length(b);
	assert_true(n > 0 && n < sizeof(text));
	assert_int_equal(evbuffer_remove(b, text, n), (int)n);
	text[n] = '\0';
	assert_non_null(strstr(text, "\r\nX-A: \r\n"));
	assert_int_equal(strncmp(text, "HTTP/1.1 403 ", 13), 0);
	/* extras given as NULL with a count */
	assert_int_equal(tg_gate_http_answer(403, "", NULL, 1, 0, b), TG_ERR_INVALID_ARG);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_requests_refused),  cmocka_unit_test(test_chunk_extensions_taken),
	    cmocka_unit_test(test_upgrade_lists),     cmocka_unit_test(test_responses_refused),
	    cmocka_unit_test(test_answer_extra_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
