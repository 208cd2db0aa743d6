/*
 * test_gate_upstream.c — the gate's upstream connections (host/gate/
 * upstream.c) against in-process loopback servers on one event loop: the
 * callback comes from the loop, never from inside tg_gate_upstream_get;
 * keep-alive connections are pooled per URL up to limits.upstream_pool and
 * dropped when the upstream closes them; tcp:// is never pooled; TCP
 * sockets have Nagle off (TCP_NODELAY); a name's addresses are tried in
 * turn, and a DNS server that never answers times out with its own reason
 * (a hosts file and resolv.conf of the test's own, in a private mount
 * namespace: skipped where the process may not make one); refused,
 * missing unix sockets and connect timeouts fail with their reason; https
 * verifies the upstream's certificate and host against upstream_ctx.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "gate-int.h"
#include "tg_test.h"

struct srv {
	struct evconnlistener *l;
	SSL_CTX *tls; /* NULL: plain */
	int accepts, closes;
	int silent; /* accept and never speak (plain only) */
	struct bufferevent *peers[8];
	int npeers;
};

struct got {
	int calls;
	struct tg_gate_upstream_conn *uc;
	const char *kind;
	char reason[256];
};

struct env {
	struct event_base *base;
	struct tg_gate_worker w;
	struct tg_gate_upstream_pool *pool;
	struct tg_gate_snapshot snap;
	struct srv srv;
	char port[8];
};

static void
peer_event(struct bufferevent *bev, short what, void *arg)
{
	struct srv *s = arg;
	int i;

	(void)what;
	s->closes++;
	for (i = 0; i < s->npeers; i++)
		if (s->peers[i] == bev)
			s->peers[i] = NULL;
	bufferevent_free(bev);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct srv *s = arg;
	struct bufferevent *bev;

	(void)sa;
	(void)len;
	s->accepts++;
	if (s->tls != NULL)
		bev = bufferevent_openssl_socket_new(evconnlistener_get_base(l), fd,
		                                     SSL_new(s->tls), BUFFEREVENT_SSL_ACCEPTING,
		                                     BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	bufferevent_setcb(bev, NULL, NULL, peer_event, s);
	bufferevent_enable(bev, EV_READ);
	if (s->npeers < 8)
		s->peers[s->npeers++] = bev;
}

/* A got with the pool behind it (got_cb reads the reason there). */
struct got_p {
	struct got g;
	struct tg_gate_upstream_pool *pool;
};

static void
got_cb(struct tg_gate_upstream_conn *uc, const char *kind, void *arg)
{
	struct got_p *g = arg;

	g->g.calls++;
	g->g.uc = uc;
	g->g.kind = kind;
	snprintf(g->g.reason, sizeof(g->g.reason), "%s", tg_gate_upstream_reason(g->pool));
}

static void
run_until(struct env *e, int *flag, int want, int ms)
{
	struct timeval tv = {0, 10000};
	int i;

	for (i = 0; i < ms / 10 && *flag < want; i++) {
		event_base_loopexit(e->base, &tv);
		event_base_dispatch(e->base);
	}
}

static void
url_of(struct env *e, enum tg_gate_scheme sch, const char *host, struct tg_gate_url *u)
{
	memset(u, 0, sizeof(*u));
	u->scheme = sch;
	snprintf(u->host, sizeof(u->host), "%s", host);
	snprintf(u->port, sizeof(u->port), "%s", e->port);
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	assert_non_null(e);
	e->base = event_base_new();
	e->w.base = e->base;
	assert_int_equal(tg_gate_upstream_pool_new(&e->w, &e->pool), 0);
	e->w.pool = e->pool;
	e->snap.cfg.limits.upstream_connect_ms = 2000;
	e->snap.cfg.limits.upstream_pool = 4;
	e->snap.cfg.limits.idle_ms = 60000;
	e->snap.generation = 1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	e->srv.l = evconnlistener_new_bind(e->base, on_accept, &e->srv,
	                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	                                   (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(e->srv.l);
	getsockname(evconnlistener_get_fd(e->srv.l), (struct sockaddr *)&sin, &sl);
	snprintf(e->port, sizeof(e->port), "%u", (unsigned)ntohs(sin.sin_port));
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;
	int i;

	tg_gate_upstream_pool_free(e->pool);
	for (i = 0; i < e->srv.npeers; i++)
		if (e->srv.peers[i] != NULL)
			bufferevent_free(e->srv.peers[i]);
	if (e->srv.l != NULL)
		evconnlistener_free(e->srv.l);
	SSL_CTX_free(e->srv.tls);
	SSL_CTX_free(e->snap.upstream_ctx);
	event_base_free(e->base);
	free(e);
	return 0;
}

static void
get(struct env *e, const struct tg_gate_url *u, struct got_p *g)
{
	memset(g, 0, sizeof(*g));
	g->pool = e->pool;
	assert_int_equal(tg_gate_upstream_get(e->pool, &e->snap, u, got_cb, g), 0);
	assert_int_equal(g->g.calls, 0); /* never from inside the call */
	run_until(e, &g->g.calls, 1, 3000);
	assert_int_equal(g->g.calls, 1);
}

/* TCP_NODELAY on uc's socket (a request's head and body are two writes:
 * with Nagle the body waited for the upstream's delayed ACK, 40 ms). */
static int
nodelay(struct tg_gate_upstream_conn *uc)
{
	int v = -1;
	socklen_t n = sizeof(v);

	assert_int_equal(getsockopt(bufferevent_getfd(tg_gate_upstream_bev(uc)), IPPROTO_TCP,
	                            TCP_NODELAY, &v, &n),
	                 0);
	return v;
}

/*
 * Names for test_next_address, first address first: 127.0.0.2 and .3
 * refuse (the servers listen on 127.0.0.1 alone); .4 and .5 never answer
 * in test_silent_address.
 */
static const char hosts_extra[] = "127.0.0.2 tg-second.test\n"
                                  "127.0.0.1 tg-second.test\n"
                                  "127.0.0.2 tg-none.test\n"
                                  "127.0.0.3 tg-none.test\n"
                                  "127.0.0.4 tg-silent.test\n"
                                  "127.0.0.1 tg-silent.test\n"
                                  "127.0.0.4 tg-all-silent.test\n"
                                  "127.0.0.5 tg-all-silent.test\n"
                                  "127.0.0.2 tg-refused-silent.test\n"
                                  "127.0.0.4 tg-refused-silent.test\n";
static const char *etc_why; /* NULL: /etc/hosts has hosts_extra, resolv.conf dns_sink */
static int dns_sink = -1;   /* a UDP socket that never answers: resolv.conf's server */

/*
 * Writes a temporary file (the lines of copy, if given, then text) and
 * bind-mounts it over target. 0, or -1.
 */
static int
etc_file(const char *target, const char *copy, const char *text)
{
	char path[] = "/tmp/tg-etc-XXXXXX", buf[4096];
	FILE *in = NULL, *out = NULL;
	size_t n;
	int fd, r = -1;

	if ((fd = mkstemp(path)) < 0 || (out = fdopen(fd, "w")) == NULL)
		goto out;
	if (copy != NULL && (in = fopen(copy, "r")) != NULL)
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
	fprintf(out, "\n%s", text);
	r = fclose(out) == 0 && mount(path, target, NULL, MS_BIND, NULL) == 0 ? 0 : -1;
	out = NULL;
	unlink(path);
out:
	if (in != NULL)
		fclose(in);
	if (out != NULL)
		fclose(out);
	return r;
}

/*
 * This process's own /etc/hosts (the system's lines + hosts_extra) and
 * /etc/resolv.conf (one server: dns_sink), bind mounted in a private mount
 * namespace: nothing outside sees them. NULL, or why they could not be
 * made (e.g. not root).
 */
static const char *
etc_private(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char conf[64];
	const char *why = NULL;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		why = "no private mount namespace (needs root or CAP_SYS_ADMIN)";
	else if ((dns_sink = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
	         bind(dns_sink, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	         getsockname(dns_sink, (struct sockaddr *)&sin, &sl) != 0)
		why = "no UDP socket for a DNS server that never answers";
	else if (snprintf(conf, sizeof(conf), "nameserver 127.0.0.1:%u\n",
	                  (unsigned)ntohs(sin.sin_port)) <= 0 ||
	         etc_file("/etc/hosts", "/etc/hosts", hosts_extra) != 0 ||
	         etc_file("/etc/resolv.conf", NULL, conf) != 0)
		why = "cannot bind-mount files over /etc/hosts and /etc/resolv.conf";
	return why;
}

/* Skips the test (saying why) without etc_private's files. */
static void
etc_required(void)
{
	if (etc_why != NULL) {
		fprintf(stderr, "skipped: %s\n", etc_why);
		skip();
	}
}

static void
test_http_pooled(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a, b;

	url_of(e, TG_GATE_SCHEME_HTTP, "127.0.0.1", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_null(a.g.kind);
	assert_non_null(tg_gate_upstream_bev(a.g.uc));
	assert_int_equal(nodelay(a.g.uc), 1);
	tg_gate_upstream_release(a.g.uc, 1);
	get(e, &u, &b); /* the same connection again */
	assert_non_null(b.g.uc);
	assert_int_equal(e->srv.accepts, 1);
	tg_gate_upstream_release(b.g.uc, 0); /* not reusable: closed */
	run_until(e, &e->srv.closes, 1, 2000);
	assert_int_equal(e->srv.closes, 1);
	get(e, &u, &a);
	assert_int_equal(e->srv.accepts, 2);
	tg_gate_upstream_release(a.g.uc, 1);
}

static void
test_unread_bytes_not_pooled(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;

	url_of(e, TG_GATE_SCHEME_HTTP, "localhost", &u); /* a name: evdns with /etc/hosts */
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	evbuffer_add(bufferevent_get_input(tg_gate_upstream_bev(a.g.uc)), "x", 1);
	tg_gate_upstream_release(a.g.uc, 1);
	run_until(e, &e->srv.closes, 1, 2000);
	assert_int_equal(e->srv.closes, 1);
}

static void
test_dropped_when_upstream_closes(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;
	int zero = 0;

	url_of(e, TG_GATE_SCHEME_HTTP, "127.0.0.1", &u);
	get(e, &u, &a);
	tg_gate_upstream_release(a.g.uc, 1);
	run_until(e, &e->srv.npeers, 1, 2000);
	bufferevent_free(e->srv.peers[0]);
	e->srv.peers[0] = NULL;
	run_until(e, &zero, 1, 200); /* the pool sees the FIN */
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_int_equal(e->srv.accepts, 2);
	tg_gate_upstream_release(a.g.uc, 0);
}

static void
test_pool_max_and_tcp(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a, b;

	e->snap.cfg.limits.upstream_pool = 1;
	url_of(e, TG_GATE_SCHEME_HTTP, "127.0.0.1", &u);
	get(e, &u, &a);
	get(e, &u, &b);
	assert_int_equal(e->srv.accepts, 2);
	tg_gate_upstream_release(a.g.uc, 1);
	tg_gate_upstream_release(b.g.uc, 1); /* over the limit: closed */
	run_until(e, &e->srv.closes, 1, 2000);
	assert_int_equal(e->srv.closes, 1);
	/* the pooled one taken and given back twice: pooled again each time
	 * (the pool's count of idle connections went down when it was taken) */
	get(e, &u, &a);
	assert_int_equal(e->srv.accepts, 2);
	tg_gate_upstream_release(a.g.uc, 1);
	get(e, &u, &a);
	assert_int_equal(e->srv.accepts, 2);
	tg_gate_upstream_release(a.g.uc, 1);
	run_until(e, &e->srv.closes, 2, 200);
	assert_int_equal(e->srv.closes, 1);
	/* tcp mode: never pooled */
	url_of(e, TG_GATE_SCHEME_TCP, "127.0.0.1", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_int_equal(nodelay(a.g.uc), 1);
	tg_gate_upstream_release(a.g.uc, 1);
	run_until(e, &e->srv.closes, 2, 2000);
	assert_int_equal(e->srv.closes, 2);
}

static void
test_refused(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;

	evconnlistener_free(e->srv.l); /* nobody listens on the port now */
	e->srv.l = NULL;
	url_of(e, TG_GATE_SCHEME_HTTP, "127.0.0.1", &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.kind, "refused");
	assert_string_equal(a.g.reason, "cannot connect to the upstream: Connection refused");
	memset(&u, 0, sizeof(u));
	u.scheme = TG_GATE_SCHEME_UNIX;
	snprintf(u.path, sizeof(u.path), "/nonexistent/tokengate-upstream.sock");
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.kind, "refused");
	assert_string_equal(a.g.reason,
	                    "cannot connect to the upstream: No such file or directory");
}

/* A self-signed EC certificate for san ("DNS:localhost,IP:127.0.0.1"), and its key. */
static void
make_cert(const char *san, X509 **crt, EVP_PKEY **key)
{
	X509_NAME *n;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	*key = EVP_EC_gen("P-256");
	*crt = X509_new();
	assert_non_null(*key);
	X509_set_version(*crt, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(*crt), 1);
	X509_gmtime_adj(X509_getm_notBefore(*crt), -60);
	X509_gmtime_adj(X509_getm_notAfter(*crt), 3600);
	X509_set_pubkey(*crt, *key);
	n = X509_get_subject_name(*crt);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"upstream", -1, -1,
	                           0);
	X509_set_issuer_name(*crt, n);
	X509V3_set_ctx(&ctx, *crt, *crt, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
	X509_add_ext(*crt, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(*crt, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(*crt, *key, EVP_sha256()) > 0);
}

static void
tls_setup(struct env *e, int trust, const char *san)
{
	X509 *crt;
	EVP_PKEY *key;

	SSL_CTX_free(e->srv.tls);
	SSL_CTX_free(e->snap.upstream_ctx);
	e->snap.generation++; /* a reload: a new upstream CA */
	make_cert(san, &crt, &key);
	e->srv.tls = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate(e->srv.tls, crt), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(e->srv.tls, key), 1);
	e->snap.upstream_ctx = SSL_CTX_new(TLS_client_method());
	if (trust)
		X509_STORE_add_cert(SSL_CTX_get_cert_store(e->snap.upstream_ctx), crt);
	X509_free(crt);
	EVP_PKEY_free(key);
}

static void
test_https(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;

	tls_setup(e, 1, "DNS:localhost,IP:127.0.0.1");
	url_of(e, TG_GATE_SCHEME_HTTPS, "localhost", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_null(a.g.kind);
	assert_int_equal(nodelay(a.g.uc), 1);
	tg_gate_upstream_release(a.g.uc, 1);
	url_of(e, TG_GATE_SCHEME_HTTPS, "127.0.0.1", &u); /* an IP SAN */
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	tg_gate_upstream_release(a.g.uc, 0);
	/* a certificate for other names */
	tls_setup(e, 1, "DNS:other.example,IP:192.0.2.1");
	url_of(e, TG_GATE_SCHEME_HTTPS, "localhost", &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.kind, "refused");
	assert_string_equal(a.g.reason, "TLS: the upstream's certificate is not trusted (hostname "
	                                "mismatch); check upstream_ca and the URL's host");
	url_of(e, TG_GATE_SCHEME_HTTPS, "127.0.0.1", &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.reason,
	                    "TLS: the upstream's certificate is not trusted (IP address "
	                    "mismatch); check upstream_ca and the URL's host");
}

static void
test_next_address(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;

	etc_required();
	/* the first address refuses: the second is the server */
	url_of(e, TG_GATE_SCHEME_HTTP, "tg-second.test", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_null(a.g.kind);
	assert_int_equal(e->srv.accepts, 1);
	assert_int_equal(nodelay(a.g.uc), 1);
	tg_gate_upstream_release(a.g.uc, 0);
	/* every address refuses */
	url_of(e, TG_GATE_SCHEME_HTTP, "tg-none.test", &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.kind, "refused");
	assert_non_null(strstr(a.g.reason, "(every address of its name tried)"));
	assert_int_equal(e->srv.accepts, 1);
	/* https: a new TLS session for the second address, checked against
	 * the name */
	tls_setup(e, 1, "DNS:tg-second.test");
	url_of(e, TG_GATE_SCHEME_HTTPS, "tg-second.test", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_null(a.g.kind);
	assert_int_equal(e->srv.accepts, 2);
	tg_gate_upstream_release(a.g.uc, 0);
}

/*
 * A listening socket on addr:port that never answers a connection: its
 * backlog (0) is filled by one connection of ours, so further SYNs are
 * dropped. *fill is that connection. The listener, or -1.
 */
static int
silent_listener(const char *addr, const char *port, int *fill)
{
	struct sockaddr_in sin;
	char *end = NULL;
	long pn = strtol(port, &end, 10);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)(pn > 0 && pn <= 65535 ? pn : 0));
	*fill = -1;
	if (fd < 0 || end == port || *end != '\0' || pn <= 0 || pn > 65535 ||
	    inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 0) != 0 ||
	    (*fill = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(*fill, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	return fd;
}

static void
test_silent_address(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;
	int l4, f4, l5, f5, i;

	etc_required();
	l4 = silent_listener("127.0.0.4", e->port, &f4);
	l5 = silent_listener("127.0.0.5", e->port, &f5);
	assert_true(l4 >= 0 && l5 >= 0);
	/* the first address never answers: after its half of the limit the
	 * second is tried, and is the server (the whole limit on the first
	 * would have timed out) */
	e->snap.cfg.limits.upstream_connect_ms = 600;
	url_of(e, TG_GATE_SCHEME_HTTP, "tg-silent.test", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_null(a.g.kind);
	assert_int_equal(e->srv.accepts, 1);
	tg_gate_upstream_release(a.g.uc, 0);
	/* neither answers: the limit, naming every address tried; and the
	 * same when the first refuses at once: the last address keeps the
	 * rest of the limit (the first's share does not end it) */
	for (i = 0; i < 2; i++) {
		url_of(e, TG_GATE_SCHEME_HTTP,
		       i == 0 ? "tg-all-silent.test" : "tg-refused-silent.test", &u);
		get(e, &u, &a);
		assert_null(a.g.uc);
		assert_string_equal(a.g.kind, "timeout");
		assert_string_equal(a.g.reason, "no connection to the upstream within 600 ms "
		                                "(limits.upstream_connect_ms) (every address of "
		                                "its name tried)");
	}
	close(f4);
	close(l4);
	close(f5);
	close(l5);
}

static void
test_dns_reload(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a, pend;
	FILE *f;

	etc_required();
	/* a name the hosts file lacks (and DNS never answers): no connection */
	e->snap.cfg.limits.upstream_connect_ms = 300;
	url_of(e, TG_GATE_SCHEME_HTTP, "tg-later.test", &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	/* the hosts file gains it; a reload (a new snapshot generation) makes
	 * the next connection read the files again, while a lookup of another
	 * name is still waiting for DNS (it is sent again, and still gets no
	 * answer: its limit ends it; ASan watches the resolver's switch) */
	assert_non_null(f = fopen("/etc/hosts", "a"));
	fputs("127.0.0.1 tg-later.test\n", f);
	assert_int_equal(fclose(f), 0);
	url_of(e, TG_GATE_SCHEME_HTTP, "tg-pending.test", &u);
	memset(&pend, 0, sizeof(pend));
	pend.pool = e->pool;
	assert_int_equal(tg_gate_upstream_get(e->pool, &e->snap, &u, got_cb, &pend), 0);
	e->snap.generation++;
	url_of(e, TG_GATE_SCHEME_HTTP, "tg-later.test", &u);
	get(e, &u, &a);
	assert_non_null(a.g.uc);
	assert_null(a.g.kind);
	assert_int_equal(e->srv.accepts, 1);
	tg_gate_upstream_release(a.g.uc, 0);
	run_until(e, &pend.g.calls, 1, 3000);
	assert_int_equal(pend.g.calls, 1);
	assert_null(pend.g.uc);
	assert_string_equal(pend.g.kind, "timeout");
}

static void
test_https_untrusted(void **state)
{
	struct env *e = *state;
	struct tg_gate_url u;
	struct got_p a;

	tls_setup(e, 0, "DNS:localhost");
	url_of(e, TG_GATE_SCHEME_HTTPS, "localhost", &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.kind, "refused");
	assert_string_equal(a.g.reason,
	                    "TLS: the upstream's certificate is not trusted (self-signed "
	                    "certificate); check upstream_ca and the URL's host");
}

/* A connection to host over sch gives up after 200 ms with reason. */
static void
want_timeout(struct env *e, enum tg_gate_scheme sch, const char *host, const char *reason)
{
	struct tg_gate_url u;
	struct got_p a;

	e->snap.cfg.limits.upstream_connect_ms = 200;
	url_of(e, sch, host, &u);
	get(e, &u, &a);
	assert_null(a.g.uc);
	assert_string_equal(a.g.kind, "timeout");
	assert_string_equal(a.g.reason, reason);
}

static void
test_connect_timeout(void **state)
{
	struct env *e = *state;

	/* TCP connects, but a plain server never answers the TLS handshake */
	e->snap.upstream_ctx = SSL_CTX_new(TLS_client_method());
	want_timeout(e, TG_GATE_SCHEME_HTTPS, "127.0.0.1",
	             "no connection to the upstream within 200 ms (limits.upstream_connect_ms)");
}

static void
test_dns_timeout(void **state)
{
	struct env *e = *state;

	etc_required();
	/* a name the hosts file lacks: asked of a server that never answers
	 * (the lookup is cancelled when the connection gives up, and the pool
	 * freed with it pending: ASan watches both) */
	want_timeout(e, TG_GATE_SCHEME_HTTP, "tg-nowhere.test",
	             "no answer from DNS for the upstream's host within 200 ms "
	             "(limits.upstream_connect_ms)");
	assert_int_equal(e->srv.accepts, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_http_pooled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unread_bytes_not_pooled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dropped_when_upstream_closes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pool_max_and_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_https, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_https_untrusted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silent_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_next_address, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_timeout, setup, teardown),
	};

	/* as the gate's process does (server.c): the pool's bufferevents write
	 * with writev(2), which raises SIGPIPE on a connection the upstream
	 * closed (test_dropped_when_upstream_closes, a loaded machine) */
	signal(SIGPIPE, SIG_IGN);
	etc_why = etc_private();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
