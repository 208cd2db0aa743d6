/*
 * fuzz_gate_http.c — fuzz target of the gate's request path before any
 * upstream: the input (request line, headers, maybe a body and more
 * requests) goes through the HTTP reader (host/gate/http.c), each request's
 * target through path normalization and the decision under a fixed policy
 * (path.c, decide.c), and its head through the writer of the upstream
 * request.
 *
 * Invariants, each aborting when broken:
 *   - feeding the input at once, byte by byte, or in pieces of another
 *     size gives the same events (heads, decoded body bytes, ends) and the
 *     same outcome (status and reason of a refusal);
 *   - a head the reader passes on has a token method, a target of visible
 *     ASCII without '#', token header names and values without CR, LF,
 *     NUL or surrounding SP/HT; a refusal has a status and a reason;
 *   - a refused path is never allowed; an allowed request names a route
 *     and an entry of it, the admin route never allows the dev peer, and
 *     only the api route's methods are allowed there;
 *   - inputs starting with "HT" are read as responses (to GET or HEAD), and
 *     the client response head the writer makes from each is read back with
 *     the same status, framing (read-until-close chunked to a keep-alive
 *     client) and upgrade, no hop-by-hop field and one Connection;
 *   - the upstream head the writer makes from any accepted head is read
 *     back without refusal with the same method, target, framing and
 *     upgrade; it holds exactly one X-Tokengate-Identity, one
 *     X-Tokengate-Key and one Authorization, the gate's values, one Host
 *     (an absolute-form target's authority, when it is one), no other
 *     X-Tokengate-* field, no hop-by-hop field, no Proxy-Authorization,
 *     Forwarded, X-Forwarded-* or X-Real-IP; an absolute-form target's
 *     authority holds no '/', '?', '#', '@', '\', space or control byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "tg_fuzz.h"
#include "tg_gate_decide.h"
#include "tg_gate_http.h"
#include "tg_gate_path.h"

static const char policy_text[] =
    "routes:\n"
    "  - name: admin\n"
    "    paths: [\"/admin/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/ops/*\", touch: always}]\n"
    "  - name: api\n"
    "    methods: [GET, POST]\n"
    "    paths: [\"/v1/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\", key: device-attested}]\n";

static const char id_value[] = "spiffe://example.org/dev/bob";
static const char key_value[] = "level=device-attested; pin=once; touch=never; serial=7";
static const char auth_value[] = "Bearer gate-secret";

/* The limits every run uses: small, so that the fuzzer reaches them. */
static const struct tg_gate_http_limits lim = {256, 1024, 16};

struct run {
	enum tg_gate_http_kind kind; /* responses: inputs starting with "HT" */
	const char *method;          /* responses: the request's method */
	uint64_t hash;               /* FNV-1a over the events */
	int heads, ends;
	int deep; /* check path, decision and writer in on_head */
	const struct tg_gate_policy *pol;
};

static void
mix(struct run *c, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		c->hash ^= b[i];
		c->hash *= 1099511628211ULL;
	}
}

static void
mix_str(struct run *c, const char *s)
{
	mix(c, s, strlen(s) + 1);
}

static int
is_token(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL))
			return 0;
	}
	return i > 0;
}

static void
check_head(const struct run *c, const struct tg_gate_http_head *h)
{
	size_t i, n;
	const char *v;

	for (i = 0; i < h->nheaders; i++) {
		check(is_token(h->headers[i].name));
		v = h->headers[i].value;
		n = strlen(v);
		check(strpbrk(v, "\r\n") == NULL);
		check(n == 0 ||
		      (v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t'));
	}
	check(h->http_major == 1 && (h->http_minor == 0 || h->http_minor == 1));
	if (c->kind == TG_GATE_HTTP_RESPONSE) {
		check(h->status >= 100 && h->status <= 599 && h->target == NULL);
		check(h->upgrade == (h->status == 101));
		return;
	}
	check(is_token(h->method));
	check(h->target != NULL && h->target[0] != '\0');
	for (i = 0; h->target[i] != '\0'; i++)
		check((unsigned char)h->target[i] > 0x20 && (unsigned char)h->target[i] < 0x7f &&
		      h->target[i] != '#');
}

/* The decision for the normalized target; the path and query for upstream. */
static int
check_decide(const struct run *c, const struct tg_gate_http_head *h, char *pq, size_t cap,
             struct tg_gate_target *t)
{
	static const struct tg_gate_peer bob = {id_value, TG_PROV_DEVICE_ATTESTED, TG_ATT_PIN_ONCE,
	                                        TG_ATT_TOUCH_NEVER, "7"};
	struct tg_gate_verdict v;
	const char *why = NULL;
	size_t tlen = strlen(h->target), q = tg_gate_path_query(h->target, tlen), n;
	int rc = tg_gate_path_target(h->target, tlen, pq, cap, t, &why);

	check(tg_gate_decide(c->pol, &bob, h->method, pq, &v) == 0);
	check(v.reason[0] != '\0');
	if (rc != 0) {
		check(why != NULL && pq[0] == '\0' && !v.allow && v.route == -1);
		return -1;
	}
	check(pq[0] == '/' && strstr(pq, "//") == NULL);
	/* origin-form, or an authority that can be a Host value */
	check(t->auth_len == 0 || h->target[0] != '/');
	for (n = 0; n < t->auth_len; n++)
		check(h->target[t->auth_off + n] > 0x20 && h->target[t->auth_off + n] < 0x7f &&
		      strchr("/?#@\\", h->target[t->auth_off + n]) == NULL);
	if (v.allow) {
		check(v.route == 1 && v.entry == 0);
		check(strcmp(h->method, "GET") == 0 || strcmp(h->method, "POST") == 0);
		check(strncmp(pq, "/v1/", 4) == 0 || strcmp(pq, "/v1") == 0);
	}
	if (strncmp(pq, "/admin", 6) == 0 && (pq[6] == '\0' || pq[6] == '/'))
		check(!v.allow && v.route == 0);
	n = strlen(pq);
	check(n + (tlen - q) < cap);
	memcpy(pq + n, h->target + q, tlen - q);
	pq[n + tlen - q] = '\0';
	return 0;
}

/* What the read-back of the upstream head must show. */
struct back {
	const struct tg_gate_http_head *orig;
	const char *pq;
	int heads;
	const char *host; /* the Host the head must have (NULL: not checked) */
};

static size_t
count(const struct tg_gate_http_head *h, const char *name, const char *want)
{
	size_t i, n = 0;

	for (i = 0; i < h->nheaders; i++) {
		if (strcasecmp(h->headers[i].name, name) != 0)
			continue;
		n++;
		if (want != NULL)
			check(strcmp(h->headers[i].value, want) == 0);
	}
	return n;
}

static int
back_head(void *arg, const struct tg_gate_http_head *h)
{
	static const char *const hop[] = {"keep-alive", "proxy-connection",    "te",
	                                  "trailer",    "proxy-authorization", "forwarded",
	                                  "x-real-ip"};
	struct back *b = arg;
	const struct tg_gate_http_head *o = b->orig;
	size_t i, tg = 0;

	b->heads++;
	check(strcmp(h->method, o->method) == 0 && strcmp(h->target, b->pq) == 0);
	check(h->http_major == 1 && h->http_minor == 1);
	check(h->body == o->body && h->content_length == o->content_length);
	check(h->upgrade == o->upgrade && h->keep_alive);
	check(count(h, "X-Tokengate-Identity", id_value) == 1);
	check(count(h, "X-Tokengate-Key", key_value) == 1);
	check(count(h, "Authorization", auth_value) == 1);
	check(count(h, "Host", b->host) == 1);
	for (i = 0; i < h->nheaders; i++) {
		tg += strncasecmp(h->headers[i].name, "x-tokengate-", 12) == 0;
		check(strncasecmp(h->headers[i].name, "x-forwarded-", 12) != 0);
	}
	check(tg == 2);
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		check(count(h, hop[i], NULL) == 0);
	check(count(h, "Connection", h->upgrade ? "Upgrade" : "keep-alive") == 1);
	check(count(h, "Upgrade", NULL) == (size_t)h->upgrade);
	check(count(h, "Transfer-Encoding", NULL) == (h->body == TG_GATE_HTTP_BODY_CHUNKED));
	return 0;
}

/*
 * Reads the head the writer put in out back through a fresh reader of kind
 * (responses: to method) with on_head; frees out. The head must be taken
 * whole, without refusal, and reach on_head once (*heads).
 */
static void
read_back(enum tg_gate_http_kind kind, const char *method, struct evbuffer *out,
          int (*on_head)(void *, const struct tg_gate_http_head *), void *arg, const int *heads)
{
	static const struct tg_gate_http_limits big = {8192, 65536, 256};
	struct tg_gate_http_cb cb = {on_head, NULL, NULL};
	struct tg_gate_http_reader *r = NULL;
	struct tg_gate_http_error e;
	struct tg_error err;
	size_t n = evbuffer_get_length(out), used;
	unsigned char *bytes = evbuffer_pullup(out, -1);

	check(bytes != NULL);
	check(tg_gate_http_reader_new(kind, &big, &cb, arg, &r, &err) == 0);
	if (method != NULL)
		tg_gate_http_reader_expect(r, method);
	check(tg_gate_http_reader_feed(r, (const char *)bytes, n, &used, &e) !=
	      TG_GATE_HTTP_REFUSED);
	check(used == n && *heads == 1);
	tg_gate_http_reader_free(r);
	evbuffer_free(out);
}

static void
check_writer(const struct tg_gate_http_head *h, const char *pq, const struct tg_gate_target *t)
{
	struct tg_gate_http_extra x[4] = {
	    {"X-Tokengate-Identity", id_value, sizeof(id_value) - 1},
	    {"X-Tokengate-Key", key_value, sizeof(key_value) - 1},
	    {"Authorization", auth_value, sizeof(auth_value) - 1},
	    {"Host", "upstream", 8},
	};
	struct back b = {h, pq, 0, NULL};
	struct evbuffer *out = evbuffer_new();
	char host[TG_GATE_PATH_MAX];

	check(out != NULL);
	/* as the gate: an absolute-form target's authority is the Host; an
	 * HTTP/1.0 request may come without Host, the HTTP/1.1 upstream gets one */
	if (t->auth_len > 0) {
		check(t->auth_len < sizeof(host));
		memcpy(host, h->target + t->auth_off, t->auth_len);
		host[t->auth_len] = '\0';
		x[3].value = b.host = host;
		x[3].value_len = t->auth_len;
	}
	check(tg_gate_http_request_head(
	          h, pq, x, t->auth_len > 0 || count(h, "Host", NULL) == 0 ? 4 : 3, out) == 0);
	read_back(TG_GATE_HTTP_REQUEST, NULL, out, back_head, &b, &b.heads);
}

/* What the read-back of the client response head must show. */
struct rback {
	const struct tg_gate_http_head *orig;
	int keep_alive, heads;
};

static int
rback_head(void *arg, const struct tg_gate_http_head *h)
{
	static const char *const hop[] = {"keep-alive", "proxy-connection", "te", "trailer"};
	struct rback *b = arg;
	const struct tg_gate_http_head *o = b->orig;
	enum tg_gate_http_body want = o->body;
	int interim = o->status / 100 == 1 && o->status != 101;
	size_t i;

	b->heads++;
	if (want == TG_GATE_HTTP_BODY_CLOSE && b->keep_alive)
		want = TG_GATE_HTTP_BODY_CHUNKED;
	check(h->status == o->status && h->http_minor == 1);
	check(h->body == want && h->content_length == o->content_length);
	check(h->upgrade == o->upgrade);
	/* after a 1xx (also 101) the connection goes on whatever keep_alive says */
	check(o->status / 100 == 1 ||
	      h->keep_alive == (b->keep_alive && want != TG_GATE_HTTP_BODY_CLOSE));
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		check(count(h, hop[i], NULL) == 0);
	check(count(h, "Transfer-Encoding", NULL) == (want == TG_GATE_HTTP_BODY_CHUNKED));
	check(count(h, "Connection", NULL) == (size_t)!interim);
	check(count(h, "Upgrade", NULL) == (o->status == 101 ? count(o, "Upgrade", NULL) : 0));
	return 0;
}

static void
check_response_writer(const struct run *c, const struct tg_gate_http_head *h, int keep_alive)
{
	struct rback b = {h, keep_alive, 0};
	struct evbuffer *out = evbuffer_new();
	int chunked = -1;

	check(out != NULL);
	check(tg_gate_http_response_head(h, keep_alive, &chunked, out) == 0);
	check(chunked == (h->body == TG_GATE_HTTP_BODY_CHUNKED ||
	                  (h->body == TG_GATE_HTTP_BODY_CLOSE && keep_alive)));
	read_back(TG_GATE_HTTP_RESPONSE, h->body == TG_GATE_HTTP_BODY_NONE ? c->method : "GET", out,
	          rback_head, &b, &b.heads);
}

static int
on_head(void *arg, const struct tg_gate_http_head *h)
{
	struct run *c = arg;
	struct tg_gate_target t;
	char pq[TG_GATE_PATH_MAX + 1024];
	size_t i;

	check_head(c, h);
	mix_str(c, "H");
	mix_str(c, h->method);
	mix_str(c, h->target != NULL ? h->target : "");
	mix(c, &h->status, sizeof(h->status));
	mix(c, &h->http_minor, sizeof(h->http_minor));
	mix(c, &h->body, sizeof(h->body));
	mix(c, &h->content_length, sizeof(h->content_length));
	mix(c, &h->keep_alive, sizeof(h->keep_alive));
	mix(c, &h->upgrade, sizeof(h->upgrade));
	mix(c, &h->expect_continue, sizeof(h->expect_continue));
	for (i = 0; i < h->nheaders; i++) {
		mix_str(c, h->headers[i].name);
		mix_str(c, h->headers[i].value);
	}
	c->heads++;
	if (c->deep && c->kind == TG_GATE_HTTP_RESPONSE) {
		check_response_writer(c, h, 1);
		check_response_writer(c, h, 0);
	} else if (c->deep && check_decide(c, h, pq, sizeof(pq), &t) == 0) {
		check_writer(h, pq, &t);
	}
	return 0;
}

static int
on_body(void *arg, const char *data, size_t len)
{
	struct run *c = arg;

	check(len > 0 && c->heads == c->ends + 1);
	mix(c, data, len);
	return 0;
}

static int
on_end(void *arg)
{
	struct run *c = arg;

	mix_str(c, "E");
	c->ends++;
	check(c->heads == c->ends);
	return 0;
}

/* Feeds data in pieces of step bytes (0: at once), going on after pauses. */
static enum tg_gate_http_rc
run(struct run *c, const uint8_t *data, size_t size, size_t step, struct tg_gate_http_error *e)
{
	struct tg_gate_http_cb cb = {on_head, on_body, on_end};
	struct tg_gate_http_reader *r = NULL;
	enum tg_gate_http_rc rc = TG_GATE_HTTP_OK;
	struct tg_error err;
	size_t off = 0, n, used;
	int spins = 0;

	memset(e, 0, sizeof(*e));
	check(tg_gate_http_reader_new(c->kind, &lim, &cb, c, &r, &err) == 0);
	if (c->kind == TG_GATE_HTTP_RESPONSE)
		tg_gate_http_reader_expect(r, c->method);
	while (off < size && rc != TG_GATE_HTTP_REFUSED) {
		n = step == 0 || step > size - off ? size - off : step;
		rc = tg_gate_http_reader_feed(r, (const char *)data + off, n, &used, e);
		check(used <= n);
		check(rc != TG_GATE_HTTP_ABORTED);
		check(rc != TG_GATE_HTTP_OK || used == n);
		/* a pause (after an upgrade) always takes the message's last byte */
		spins = used == 0 ? spins + 1 : 0;
		check(spins < 2);
		off += used;
	}
	/* a response read until close ends at EOF */
	if (c->kind == TG_GATE_HTTP_RESPONSE && rc != TG_GATE_HTTP_REFUSED)
		rc = tg_gate_http_reader_feed(r, "", 0, &used, e);
	tg_gate_http_reader_free(r);
	if (rc == TG_GATE_HTTP_REFUSED) {
		check(e->reason[0] != '\0');
		check(e->status == 400 || e->status == 414 || e->status == 431 ||
		      e->status == 501 || e->status == 505);
	}
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tg_gate_policy pol;
	static int loaded;
	struct tg_gate_http_error e0, e1;
	struct run c0, c1;
	enum tg_gate_http_rc rc0, rc1;
	struct tg_error err;
	size_t steps[2], i;

	if (!loaded) {
		check(tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "fuzz.yaml", &pol,
		                           &err) == 0);
		loaded = 1;
	}
	memset(&c0, 0, sizeof(c0));
	c0.deep = 1;
	c0.pol = &pol;
	c0.kind = TG_GATE_HTTP_REQUEST;
	if (size >= 2 && data[0] == 'H' && data[1] == 'T') {
		c0.kind = TG_GATE_HTTP_RESPONSE;
		c0.method = size % 3 == 0 ? "HEAD" : "GET";
	}
	rc0 = run(&c0, data, size, 0, &e0);
	steps[0] = 1;
	steps[1] = size > 0 ? (size_t)data[0] % 17 + 2 : 2;
	for (i = 0; i < 2; i++) {
		memset(&c1, 0, sizeof(c1));
		c1.pol = &pol;
		c1.kind = c0.kind;
		c1.method = c0.method;
		rc1 = run(&c1, data, size, steps[i], &e1);
		check(rc1 == rc0 && c1.hash == c0.hash);
		check(c1.heads == c0.heads && c1.ends == c0.ends);
		check(e1.status == e0.status && strcmp(e1.reason, e0.reason) == 0);
	}
	return 0;
}
