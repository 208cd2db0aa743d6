/*
 * gate_load.c — a small multi-threaded mTLS load client for the gate
 * benchmark (bench/gate-vs-nginx.sh): the same tool drives the gate and
 * nginx, so the two are measured the same way. Blocking sockets, one
 * thread per stream of work, one shared SSL_CTX (TLS 1.3 only).
 *
 *   gate_load --connect HOST:PORT --cert FILE --key FILE|pkcs11:URI --ca FILE
 *             [--mode handshake|keepalive|idle] [--threads N] [--seconds S]
 *             [--path /x] [--conns N]
 *   gate_load --connect HOST:PORT --plain [--mode ...] [...]
 *
 * Modes:
 *   handshake  each iteration: a new TCP connection, a full TLS 1.3 mTLS
 *              handshake (no resumption: no session cache, no tickets
 *              used), one GET, close. ops = completed iterations.
 *   keepalive  each thread keeps --conns connections (default 1) and sends
 *              GET requests back to back on them, one in flight per
 *              connection, reading each whole response (Content-Length or
 *              chunked). ops = responses. A response with
 *              "Connection: close" makes the thread reconnect (counted in
 *              "reconnects", not an error). The --seconds start once every
 *              thread has opened all its connections, so that all of them
 *              are open at once (opening is not measured).
 *   idle       opens --conns connections in all (spread over the threads),
 *              completes one request on each, holds them, prints
 *              "held N" on stdout, then waits for SIGTERM/SIGINT or
 *              --seconds (0: no limit) and closes them. ops = connections
 *              held; seconds = the time to open them.
 *
 * --plain speaks HTTP/1.1 in clear text (no TLS, no key, no CA): for a
 * local listener such as `tokengate agent`'s or stunnel's client side;
 * "handshake" mode is then a new TCP connection per request.
 *
 * The client key is a PEM file, or a pkcs11: URI through libtgp11
 * (tg_p11_key_find + tg_p11_ssl_ctx_use_key; the PIN from the URI's
 * pin-source= or TOKENGATE_PIN). --cert is then optional: without it the
 * token's certificate is used.
 *
 * Output: one JSON line on stdout,
 *   {"mode":"handshake","ops":N,"seconds":S,"per_sec":R,"errors":E,
 *    "threads":T,"conns":C,"reconnects":K}
 * and, when errors > 0, "first_error" in it and the first error on stderr.
 * Only operations that end before the deadline count.
 *
 * Exit: 0 measured without errors, 1 errors during the run (the first one
 * on stderr), 2 usage or set-up failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tg_p11.h"

#define GL_MAX_THREADS  256
#define GL_MAX_CONNS    100000
#define GL_BUF          16384
#define GL_IO_TIMEOUT_S 10
/* a run stops early after this many errors: the numbers would mean nothing */
#define GL_MAX_ERRORS 1000

enum gl_mode {
	GL_HANDSHAKE = 1,
	GL_KEEPALIVE = 2,
	GL_IDLE = 3,
};

struct gl_opts {
	char host[256];
	char port[8];
	unsigned threads;
	double seconds;
	enum gl_mode mode;
	const char *cert;
	const char *key;
	const char *ca;
	const char *path;
	unsigned conns;
	unsigned io_timeout; /* --io-timeout: seconds one read or write may wait */
	int plain;           /* --plain: clear-text HTTP, no TLS */
};

/* State shared by the threads. */
struct gl_run {
	const struct gl_opts *o;
	SSL_CTX *ctx;
	struct sockaddr_storage addr;
	socklen_t alen;
	char req[1024];
	size_t reqlen;
	_Atomic double deadline; /* CLOCK_MONOTONIC seconds */
	atomic_long errors;
	/* keepalive: threads whose connections are all open; the last one
	 * starts the clock (deadline = then + --seconds) for all of them */
	atomic_uint ready;
	unsigned nthreads; /* threads that run (set before they start) */
	atomic_int abort;  /* a thread could not start: nobody waits */
	pthread_mutex_t mu;
	char first_err[512];
};

/* One client connection with its read buffer. */
struct gl_conn {
	int fd;
	SSL *ssl;
	unsigned char buf[GL_BUF];
	size_t off, len;
	int close_after; /* the last response said Connection: close */
};

struct gl_thread {
	struct gl_run *run;
	pthread_t tid;
	unsigned nconns;
	struct gl_conn *conns;
	long ops;
	long reconnects;
};

static double
gl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
gl_stopping(struct gl_run *r)
{
	return gl_now() >= r->deadline || atomic_load(&r->errors) >= GL_MAX_ERRORS;
}

/* Counts an error; the first one's message (with OpenSSL's last reason,
 * if any) is kept. Clears this thread's OpenSSL error queue. */
static void __attribute__((format(printf, 2, 3))) gl_error(struct gl_run *r, const char *fmt, ...)
{
	char msg[384], ossl[128] = "";
	unsigned long e = ERR_peek_last_error();
	va_list ap;

	if (atomic_fetch_add(&r->errors, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		if (e != 0)
			ERR_error_string_n(e, ossl, sizeof(ossl));
		pthread_mutex_lock(&r->mu);
		snprintf(r->first_err, sizeof(r->first_err), "%s%s%s", msg, e != 0 ? ": " : "",
		         ossl);
		pthread_mutex_unlock(&r->mu);
	}
	ERR_clear_error();
}

static void
gl_conn_close(struct gl_conn *c)
{
	if (c->ssl != NULL) {
		/* close_notify sent, not awaited: the server closes its side */
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->off = c->len = 0;
	c->close_after = 0;
	ERR_clear_error();
}

/* TCP connect + full TLS handshake. 0, or -1 with the error counted. */
static int
gl_conn_open(struct gl_run *r, struct gl_conn *c)
{
	struct timeval tv = {(time_t)r->o->io_timeout, 0};
	int one = 1, rc = -1, e;

	c->fd = -1;
	c->ssl = NULL;
	c->off = c->len = 0;
	c->close_after = 0;
	c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		gl_error(r, "socket: %s", strerror(errno));
		goto out;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&r->addr, r->alen) != 0) {
		gl_error(r, "connect to %s:%s: %s", r->o->host, r->o->port, strerror(errno));
		goto out;
	}
	if (r->o->plain) {
		rc = 0;
		goto out;
	}
	if ((c->ssl = SSL_new(r->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		gl_error(r, "SSL_new");
		goto out;
	}
	errno = 0;
	if (SSL_connect(c->ssl) != 1) {
		e = SSL_get_error(c->ssl, -1);
		gl_error(r, "TLS handshake with %s:%s failed (SSL error %d%s%s)", r->o->host,
		         r->o->port, e, e == SSL_ERROR_SYSCALL ? ", " : "",
		         e == SSL_ERROR_SYSCALL ? (errno != 0 ? strerror(errno) : "EOF") : "");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		gl_conn_close(c);
	return rc;
}

/* Reads more bytes into c->buf (compacting first). 0, or -1: error or EOF
 * (*eof set for a clean end of stream). */
static int
gl_fill(struct gl_run *r, struct gl_conn *c, int *eof)
{
	int n, e;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf)) {
		gl_error(r, "response header or chunk line longer than %zu bytes", sizeof(c->buf));
		return -1;
	}
	errno = 0;
	if (r->o->plain) {
		ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);

		if (got == 0) {
			*eof = 1;
			return -1;
		}
		if (got < 0) {
			gl_error(r, "reading the response: %s", strerror(errno));
			return -1;
		}
		c->len += (size_t)got;
		return 0;
	}
	n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
	if (n <= 0) {
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)) {
			*eof = 1;
			ERR_clear_error();
			return -1;
		}
		gl_error(r, "reading the response: SSL error %d%s%s", e,
		         e == SSL_ERROR_SYSCALL ? ", " : "",
		         e == SSL_ERROR_SYSCALL ? strerror(errno) : "");
		return -1;
	}
	c->len += (size_t)n;
	return 0;
}

/* The next CRLF-terminated line: *line (not terminated) and *n; consumed. */
static int
gl_line(struct gl_run *r, struct gl_conn *c, const char **line, size_t *n)
{
	unsigned char *p;
	int eof = 0;

	for (;;) {
		p = memmem(c->buf + c->off, c->len - c->off, "\r\n", 2);
		if (p != NULL)
			break;
		if (gl_fill(r, c, &eof) != 0) {
			if (eof)
				gl_error(r, "the server closed the connection in a response");
			return -1;
		}
	}
	*line = (const char *)c->buf + c->off;
	*n = (size_t)(p - (c->buf + c->off));
	c->off += *n + 2;
	return 0;
}

/* Skips n body bytes (n < 0: up to the end of the stream). */
static int
gl_skip(struct gl_run *r, struct gl_conn *c, long long n)
{
	size_t have, take;
	int eof = 0;

	while (n != 0) {
		if (c->off == c->len) {
			if (gl_fill(r, c, &eof) != 0) {
				if (eof && n < 0)
					return 0;
				if (eof)
					gl_error(
					    r,
					    "the server closed the connection in a response body");
				return -1;
			}
		}
		have = c->len - c->off;
		take = (n < 0 || (unsigned long long)n > have) ? have : (size_t)n;
		c->off += take;
		if (n > 0)
			n -= (long long)take;
	}
	return 0;
}

/* A decimal (base 10) or hex (base 16) number of at most 15 digits that
 * makes up all of s[0..n) (hex: up to a ';' extension). -1 when bad. */
static long long
gl_num(const char *s, size_t n, int base)
{
	long long v = 0;
	size_t i;
	int d;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n == 0 || n > 15)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return -1;
		v = v * base + d;
	}
	return v;
}

static int
gl_hdr_is(const char *line, size_t n, const char *name, const char **val, size_t *vn)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return 0;
	*val = line + k + 1;
	*vn = n - k - 1;
	return 1;
}

static int
gl_val_has(const char *v, size_t n, const char *tok)
{
	size_t k = strlen(tok), i;

	for (i = 0; i + k <= n; i++)
		if (strncasecmp(v + i, tok, k) == 0)
			return 1;
	return 0;
}

/* Reads one chunked body (RFC 9112 7.1), trailers included. */
static int
gl_chunked(struct gl_run *r, struct gl_conn *c)
{
	const char *line, *semi;
	size_t n;
	long long sz;

	for (;;) {
		if (gl_line(r, c, &line, &n) != 0)
			return -1;
		semi = memchr(line, ';', n);
		sz = gl_num(line, semi != NULL ? (size_t)(semi - line) : n, 16);
		if (sz < 0) {
			gl_error(r, "bad chunk size line in the response");
			return -1;
		}
		if (sz == 0)
			break;
		if (gl_skip(r, c, sz + 2) != 0)
			return -1;
	}
	do {
		if (gl_line(r, c, &line, &n) != 0)
			return -1;
	} while (n != 0);
	return 0;
}

/* Sends the GET (only; no read). */
static int
gl_send(struct gl_run *r, struct gl_conn *c)
{
	int n;

	if (r->o->plain) {
		ssize_t w = send(c->fd, r->req, r->reqlen, MSG_NOSIGNAL);

		if (w != (ssize_t)r->reqlen) {
			gl_error(r, "sending the request: %s",
			         w < 0 ? strerror(errno) : "short write");
			return -1;
		}
		return 0;
	}
	n = SSL_write(c->ssl, r->req, (int)r->reqlen);
	if (n != (int)r->reqlen) {
		gl_error(r, "sending the request: SSL error %d", SSL_get_error(c->ssl, n));
		return -1;
	}
	return 0;
}

/* Reads one whole response; it must be 200. Sets c->close_after. */
static int
gl_response(struct gl_run *r, struct gl_conn *c)
{
	const char *line, *v;
	size_t n, vn;
	long long clen = -1;
	int chunked = 0, status;

	if (gl_line(r, c, &line, &n) != 0)
		return -1;
	if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
	    (status = (int)gl_num(line + 9, 3, 10)) < 0) {
		gl_error(r, "not an HTTP/1.x status line: '%.*s'", (int)(n > 80 ? 80 : n), line);
		return -1;
	}
	if (status != 200) {
		gl_error(r, "%s %s answered '%.*s' (want 200)", "GET", r->o->path,
		         (int)(n > 120 ? 120 : n), line);
		return -1;
	}
	c->close_after = line[7] == '0';
	for (;;) {
		if (gl_line(r, c, &line, &n) != 0)
			return -1;
		if (n == 0)
			break;
		if (gl_hdr_is(line, n, "content-length", &v, &vn)) {
			if ((clen = gl_num(v, vn, 10)) < 0) {
				gl_error(r, "bad Content-Length in the response");
				return -1;
			}
		} else if (gl_hdr_is(line, n, "transfer-encoding", &v, &vn)) {
			chunked = gl_val_has(v, vn, "chunked");
		} else if (gl_hdr_is(line, n, "connection", &v, &vn)) {
			if (gl_val_has(v, vn, "close"))
				c->close_after = 1;
		}
	}
	if (chunked)
		return gl_chunked(r, c);
	if (clen >= 0)
		return gl_skip(r, c, clen);
	if (!c->close_after) {
		gl_error(r, "keep-alive response without Content-Length or chunked body");
		return -1;
	}
	return gl_skip(r, c, -1);
}

/* Handshake mode: connect, handshake, GET, close; again. */
static void
gl_run_handshake(struct gl_thread *t)
{
	struct gl_run *r = t->run;
	struct gl_conn *c = &t->conns[0];

	while (!gl_stopping(r)) {
		if (gl_conn_open(r, c) == 0 && gl_send(r, c) == 0 && gl_response(r, c) == 0 &&
		    gl_now() < r->deadline)
			t->ops++;
		gl_conn_close(c);
	}
}

/*
 * Keep-alive mode, before the first request: opens every connection of t,
 * then waits until every thread has (the last one sets the deadline to
 * now + --seconds), so that all --threads x --conns connections are open at
 * once before the measured time starts. A connection that cannot be opened
 * is an error (counted) and is tried again in the loop.
 */
static void
gl_open_all(struct gl_thread *t)
{
	struct gl_run *r = t->run;
	struct timespec nap = {0, 1000000};
	unsigned i;

	for (i = 0; i < t->nconns && atomic_load(&r->errors) < GL_MAX_ERRORS; i++)
		(void)gl_conn_open(r, &t->conns[i]);
	if (atomic_fetch_add(&r->ready, 1) + 1 == r->nthreads)
		atomic_store(&r->deadline, gl_now() + r->o->seconds);
	while (atomic_load(&r->ready) < r->nthreads && !atomic_load(&r->abort) &&
	       atomic_load(&r->errors) < GL_MAX_ERRORS)
		nanosleep(&nap, NULL);
}

/* Keep-alive mode: one request in flight per connection, back to back. */
static void
gl_run_keepalive(struct gl_thread *t)
{
	struct gl_run *r = t->run;
	unsigned i;
	int *sent = calloc(t->nconns, sizeof(*sent));

	if (sent == NULL) {
		gl_error(r, "out of memory");
		return;
	}
	for (i = 0; i < t->nconns; i++)
		t->conns[i].fd = -1;
	gl_open_all(t);
	while (!gl_stopping(r)) {
		for (i = 0; i < t->nconns; i++) {
			struct gl_conn *c = &t->conns[i];

			sent[i] = 0;
			if (c->fd < 0 && gl_conn_open(r, c) != 0)
				continue;
			sent[i] = gl_send(r, c) == 0;
			if (!sent[i])
				gl_conn_close(c);
		}
		for (i = 0; i < t->nconns; i++) {
			struct gl_conn *c = &t->conns[i];

			if (!sent[i])
				continue;
			if (gl_response(r, c) != 0) {
				gl_conn_close(c);
				continue;
			}
			if (gl_now() < r->deadline)
				t->ops++;
			if (c->close_after) {
				gl_conn_close(c);
				t->reconnects++;
			}
		}
	}
	for (i = 0; i < t->nconns; i++)
		gl_conn_close(&t->conns[i]);
	free(sent);
}

/* Idle mode: open this thread's share, one request on each; leave open. */
static void
gl_run_idle(struct gl_thread *t)
{
	struct gl_run *r = t->run;
	unsigned i;

	for (i = 0; i < t->nconns; i++) {
		struct gl_conn *c = &t->conns[i];

		if (atomic_load(&r->errors) > 0)
			break;
		if (gl_conn_open(r, c) != 0)
			break;
		if (gl_send(r, c) != 0 || gl_response(r, c) != 0) {
			gl_conn_close(c);
			break;
		}
		if (c->close_after) {
			gl_error(r, "the server closed an idle connection after its first request "
			            "(Connection: close)");
			gl_conn_close(c);
			break;
		}
		t->ops++;
	}
}

static void *
gl_thread_main(void *arg)
{
	struct gl_thread *t = arg;

	switch (t->run->o->mode) {
	case GL_HANDSHAKE:
		gl_run_handshake(t);
		break;
	case GL_KEEPALIVE:
		gl_run_keepalive(t);
		break;
	case GL_IDLE:
		gl_run_idle(t);
		break;
	default:
		break;
	}
	ERR_clear_error();
	return NULL;
}

static void
gl_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: gate_load --connect HOST:PORT --cert FILE --key FILE|pkcs11:URI --ca FILE\n"
	    "                 [--mode handshake|keepalive|idle] [--threads N] [--seconds S]\n"
	    "                 [--path /x] [--conns N] [--io-timeout S]\n"
	    "       gate_load --connect HOST:PORT --plain [--mode ...] [...]\n"
	    "  --plain    clear-text HTTP/1.1, no TLS (a local listener: the agent's, stunnel's)\n"
	    "  handshake  new TCP connection + full TLS 1.3 mTLS handshake + one GET + close\n"
	    "  keepalive  --conns connections per thread (default 1), GETs back to back\n"
	    "  idle       --conns connections in all, one GET each, held until SIGTERM or\n"
	    "             --seconds (0: until SIGTERM); prints 'held N' once they are open\n"
	    "  --io-timeout  seconds a connect, read or write may wait before it is an\n"
	    "             error (default %d)\n"
	    "Defaults: --mode handshake --threads 4 --seconds 5 --path / --conns 1.\n"
	    "The PIN of a pkcs11: key comes from its pin-source= or TOKENGATE_PIN.\n"
	    "Prints one JSON line {\"mode\",\"ops\",\"seconds\",\"per_sec\",\"errors\",...};\n"
	    "exit 0 measured, 1 errors during the run (the first on stderr), 2 usage/set-up.\n",
	    GL_IO_TIMEOUT_S);
}

/* An unsigned option value in [min, max]. */
static int
gl_uint(const char *name, const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "gate_load: %s '%s' is not a number from %u to %u\n", name, s, min,
		        max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int
gl_parse(int argc, char **argv, struct gl_opts *o, int *help)
{
	const char *connect_to = NULL, *colon;
	char *end;
	int i;
	size_t hl;

	memset(o, 0, sizeof(*o));
	o->threads = 4;
	o->seconds = 5;
	o->mode = GL_HANDSHAKE;
	o->path = "/";
	o->conns = 1;
	o->io_timeout = GL_IO_TIMEOUT_S;
	*help = 0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*help = 1;
			return 0;
		}
		if (strcmp(a, "--plain") == 0) {
			o->plain = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr,
			        "gate_load: unknown option or missing value: '%s' (see --help)\n",
			        a);
			return -1;
		}
		i++;
		if (strcmp(a, "--connect") == 0) {
			connect_to = v;
		} else if (strcmp(a, "--threads") == 0) {
			if (gl_uint(a, v, 1, GL_MAX_THREADS, &o->threads) != 0)
				return -1;
		} else if (strcmp(a, "--conns") == 0) {
			if (gl_uint(a, v, 1, GL_MAX_CONNS, &o->conns) != 0)
				return -1;
		} else if (strcmp(a, "--io-timeout") == 0) {
			if (gl_uint(a, v, 1, 3600, &o->io_timeout) != 0)
				return -1;
		} else if (strcmp(a, "--seconds") == 0) {
			errno = 0;
			o->seconds = strtod(v, &end);
			if (errno != 0 || end == v || *end != '\0' || !(o->seconds >= 0) ||
			    o->seconds > 86400) {
				fprintf(
				    stderr,
				    "gate_load: --seconds '%s' is not a number from 0 to 86400\n",
				    v);
				return -1;
			}
		} else if (strcmp(a, "--mode") == 0) {
			if (strcmp(v, "handshake") == 0)
				o->mode = GL_HANDSHAKE;
			else if (strcmp(v, "keepalive") == 0)
				o->mode = GL_KEEPALIVE;
			else if (strcmp(v, "idle") == 0)
				o->mode = GL_IDLE;
			else {
				fprintf(
				    stderr,
				    "gate_load: --mode '%s': use handshake, keepalive or idle\n",
				    v);
				return -1;
			}
		} else if (strcmp(a, "--cert") == 0) {
			o->cert = v;
		} else if (strcmp(a, "--key") == 0) {
			o->key = v;
		} else if (strcmp(a, "--ca") == 0) {
			o->ca = v;
		} else if (strcmp(a, "--path") == 0) {
			if (v[0] != '/' || strpbrk(v, " \r\n") != NULL || strlen(v) > 512) {
				fprintf(stderr,
				        "gate_load: --path '%s' must start with '/' and have no "
				        "spaces or line breaks\n",
				        v);
				return -1;
			}
			o->path = v;
		} else {
			fprintf(stderr, "gate_load: unknown option '%s' (see --help)\n", a);
			return -1;
		}
	}
	if (o->plain && (o->key != NULL || o->ca != NULL || o->cert != NULL)) {
		fprintf(stderr, "gate_load: --plain speaks no TLS: drop --key, --ca and --cert\n");
		return -1;
	}
	if (connect_to == NULL ||
	    (!o->plain && (o->key == NULL || o->ca == NULL ||
	                   (o->cert == NULL && strncmp(o->key, "pkcs11:", 7) != 0)))) {
		fprintf(stderr, "gate_load: --connect, --key, --ca (and --cert with a PEM key) are "
		                "required, or --connect and --plain (see --help)\n");
		return -1;
	}
	if (o->mode != GL_IDLE && o->seconds <= 0) {
		fprintf(stderr, "gate_load: --seconds must be above 0 in this mode\n");
		return -1;
	}
	colon = strrchr(connect_to, ':');
	hl = colon != NULL ? (size_t)(colon - connect_to) : 0;
	if (colon == NULL || hl == 0 || hl >= sizeof(o->host) || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(o->port)) {
		fprintf(stderr, "gate_load: --connect '%s': use HOST:PORT or [V6]:PORT\n",
		        connect_to);
		return -1;
	}
	if (connect_to[0] == '[' && hl >= 2 && connect_to[hl - 1] == ']')
		memcpy(o->host, connect_to + 1, hl - 2);
	else
		memcpy(o->host, connect_to, hl);
	snprintf(o->port, sizeof(o->port), "%s", colon + 1);
	return 0;
}

/* The client SSL_CTX: TLS 1.3 only, no resumption, server verified by --ca
 * (and its name or address), client certificate and key. */
static int
gl_ctx(const struct gl_opts *o, struct tg_p11 **p11, struct tg_p11_key **key, SSL_CTX **out)
{
	SSL_CTX *ctx = NULL;
	X509 *cert = NULL;
	FILE *f = NULL;
	X509_VERIFY_PARAM *vp;
	struct tg_error err = {0};
	int rc = -1, ip;
	unsigned char tmp[16];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		fprintf(stderr, "gate_load: cannot make a TLS 1.3 client context\n");
		goto out;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		fprintf(stderr, "gate_load: --ca '%s': cannot load CA certificates (PEM)\n", o->ca);
		goto out;
	}
	vp = SSL_CTX_get0_param(ctx);
	ip = inet_pton(AF_INET, o->host, tmp) == 1 || inet_pton(AF_INET6, o->host, tmp) == 1;
	if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, o->host)
	        : X509_VERIFY_PARAM_set1_host(vp, o->host, 0)) != 1) {
		fprintf(stderr, "gate_load: cannot set the server name to verify\n");
		goto out;
	}
	if (o->cert != NULL) {
		if ((f = fopen(o->cert, "r")) == NULL ||
		    (cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
			fprintf(stderr, "gate_load: --cert '%s': cannot read a PEM certificate\n",
			        o->cert);
			goto out;
		}
	}
	if (strncmp(o->key, "pkcs11:", 7) == 0) {
		if (tg_p11_new(p11, &err) != 0 ||
		    tg_p11_key_find(*p11, o->key, 0, key, &err) != 0 ||
		    tg_p11_ssl_ctx_use_key(ctx, *key, cert, &err) != 0) {
			fprintf(stderr, "gate_load: --key: %s\n", tg_error_msg(&err, err.code));
			goto out;
		}
	} else if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
	           SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	           SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr,
		        "gate_load: --cert '%s' / --key '%s': cannot load them, or they do "
		        "not match\n",
		        o->cert, o->key);
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	if (rc != 0)
		ERR_print_errors_fp(stderr);
	if (f != NULL)
		fclose(f);
	X509_free(cert);
	SSL_CTX_free(ctx);
	return rc;
}

static int
gl_resolve(const struct gl_opts *o, struct gl_run *r)
{
	struct addrinfo hints, *res = NULL;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(o->host, o->port, &hints, &res)) != 0) {
		fprintf(stderr, "gate_load: --connect %s:%s: %s\n", o->host, o->port,
		        gai_strerror(e));
		return -1;
	}
	memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
	r->alen = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Idle mode, after the threads opened their connections: hold them until
 * SIGTERM/SIGINT or the deadline. */
static void
gl_hold(const struct gl_opts *o, const sigset_t *sigs, long held)
{
	struct timespec ts;

	printf("held %ld\n", held);
	fflush(stdout);
	if (o->seconds > 0) {
		ts.tv_sec = (time_t)o->seconds;
		ts.tv_nsec = (long)((o->seconds - (double)ts.tv_sec) * 1e9);
		while (sigtimedwait(sigs, NULL, &ts) < 0 && errno == EINTR)
			;
	} else {
		int sig;

		(void)sigwait(sigs, &sig);
	}
}

static void
gl_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned)(unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

int
main(int argc, char **argv)
{
	struct gl_opts o;
	struct gl_run r;
	struct gl_thread *th = NULL;
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *key = NULL;
	struct rlimit rl;
	sigset_t sigs;
	unsigned i, j, started = 0, per, extra;
	long ops = 0, reconnects = 0, errors;
	double t0, secs;
	int rc = 2, help, mu_ok = 0, n;

	memset(&r, 0, sizeof(r));
	if (gl_parse(argc, argv, &o, &help) != 0)
		goto out;
	if (help) {
		gl_usage(stdout);
		rc = 0;
		goto out;
	}
	r.o = &o;
	atomic_init(&r.errors, 0);
	if (pthread_mutex_init(&r.mu, NULL) != 0)
		goto out;
	mu_ok = 1;
	n = snprintf(r.req, sizeof(r.req),
	             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gate_load\r\n\r\n", o.path,
	             o.host);
	if (n < 0 || (size_t)n >= sizeof(r.req))
		goto out;
	r.reqlen = (size_t)n;
	/* idle mode holds many sockets: take the hard limit */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	/* SIGTERM/SIGINT are taken by gl_hold's sigwait, never by a thread */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (gl_resolve(&o, &r) != 0 || (!o.plain && gl_ctx(&o, &p11, &key, &r.ctx) != 0))
		goto out;
	if ((th = calloc(o.threads, sizeof(*th))) == NULL)
		goto out;
	per = o.mode == GL_IDLE ? o.conns / o.threads : o.mode == GL_KEEPALIVE ? o.conns : 1;
	extra = o.mode == GL_IDLE ? o.conns % o.threads : 0;
	for (i = 0; i < o.threads; i++) {
		th[i].run = &r;
		th[i].nconns = per + (i < extra ? 1 : 0);
		if (th[i].nconns > 0 &&
		    (th[i].conns = calloc(th[i].nconns, sizeof(struct gl_conn))) == NULL)
			goto out;
		for (j = 0; j < th[i].nconns; j++)
			th[i].conns[j].fd = -1;
	}
	t0 = gl_now();
	/* keepalive: the clock starts once every connection is open (gl_open_all) */
	atomic_init(&r.deadline, o.mode == GL_IDLE        ? t0 + 1e9
	                         : o.mode == GL_KEEPALIVE ? t0 + 1e9
	                                                  : t0 + o.seconds);
	for (i = 0; i < o.threads; i++)
		r.nthreads += th[i].nconns > 0;
	for (i = 0; i < o.threads; i++) {
		if (th[i].nconns == 0)
			continue;
		if (pthread_create(&th[i].tid, NULL, gl_thread_main, &th[i]) != 0) {
			gl_error(&r, "cannot start thread %u", i);
			atomic_store(&r.abort, 1);
			atomic_store(&r.deadline, gl_now());
			break;
		}
		started = i + 1;
	}
	for (i = 0; i < started; i++) {
		if (th[i].nconns == 0)
			continue;
		pthread_join(th[i].tid, NULL);
		ops += th[i].ops;
		reconnects += th[i].reconnects;
	}
	secs = o.mode == GL_IDLE ? gl_now() - t0 : o.seconds;
	errors = atomic_load(&r.errors);
	if (o.mode == GL_IDLE && errors == 0)
		gl_hold(&o, &sigs, ops);
	printf("{\"mode\":\"%s\",\"ops\":%ld,\"seconds\":%.3f,\"per_sec\":%.1f,\"errors\":%ld,"
	       "\"threads\":%u,\"conns\":%u,\"reconnects\":%ld",
	       o.mode == GL_HANDSHAKE   ? "handshake"
	       : o.mode == GL_KEEPALIVE ? "keepalive"
	                                : "idle",
	       ops, secs, secs > 0 ? (double)ops / secs : 0.0, errors, o.threads, o.conns,
	       reconnects);
	if (errors > 0) {
		printf(",\"first_error\":");
		gl_json_str(r.first_err);
		fprintf(stderr, "gate_load: %ld error(s); the first: %s\n", errors, r.first_err);
	}
	printf("}\n");
	fflush(stdout);
	rc = errors > 0 ? 1 : 0;
out:
	if (th != NULL) {
		for (i = 0; i < o.threads; i++) {
			for (j = 0; j < th[i].nconns && th[i].conns != NULL; j++)
				gl_conn_close(&th[i].conns[j]);
			free(th[i].conns);
		}
		free(th);
	}
	SSL_CTX_free(r.ctx);
	tg_p11_key_free(key);
	tg_p11_free(p11);
	if (mu_ok)
		pthread_mutex_destroy(&r.mu);
	return rc;
}
