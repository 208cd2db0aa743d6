/*
 * test_gate_admin.c — the gate's admin listener (host/gate/admin.c) on a
 * real socket: tg_gate_admin_start on an event_base run by a thread, asked
 * by libevent's own HTTP client and by curl (its /metrics also checked by
 * promtool when installed): /healthz, /readyz ready and not ready with the
 * reason, /metrics, 404, 405 with Allow, HEAD, and the refusals of a bad
 * or busy address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "tg_gate_metrics.h"
#include "tg_test.h"

struct server {
	struct event_base *base;
	struct tg_gate_metrics *m;
	struct tg_gate_admin *admin;
	pthread_t th;
	char addr[64];
	int port;
	atomic_int ready;
};

static struct server srv;

static int
ready_cb(void *arg, const char **why)
{
	struct server *s = arg;
	int ok = atomic_load(&s->ready);

	if (!ok)
		*why = "the audit log cannot be written (fail closed)";
	return ok;
}

static void *
loop(void *arg)
{
	struct server *s = arg;

	event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* A port free right now on 127.0.0.1. */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int
setup(void **state)
{
	struct tg_error err;
	int tries;

	(void)state;
	assert_int_equal(evthread_use_pthreads(), 0);
	assert_non_null(srv.base = event_base_new());
	assert_int_equal(tg_gate_metrics_new(&srv.m, &err), 0);
	atomic_init(&srv.ready, 1);
	for (tries = 0; tries < 20 && srv.admin == NULL; tries++) {
		srv.port = free_port();
		snprintf(srv.addr, sizeof(srv.addr), "127.0.0.1:%d", srv.port);
		tg_error_clear(&err);
		if (tg_gate_admin_start(srv.base, srv.addr, srv.m, ready_cb, &srv, &srv.admin,
		                        &err) != 0)
			print_message("%s; trying another port\n", err.msg);
	}
	assert_non_null(srv.admin);
	assert_int_equal(pthread_create(&srv.th, NULL, loop, &srv), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	event_base_loopbreak(srv.base);
	pthread_join(srv.th, NULL);
	tg_gate_admin_free(srv.admin);
	tg_gate_metrics_free(srv.m);
	event_base_free(srv.base);
	return 0;
}

/* One answer as libevent's client saw it. */
struct answer {
	int code;
	char body[65536];
	char type[128], allow[64];
	struct event_base *base;
};

static void
on_done(struct evhttp_request *req, void *arg)
{
	struct answer *a = arg;
	struct evbuffer *b;
	const char *h;
	size_t n;

	if (req != NULL) {
		a->code = evhttp_request_get_response_code(req);
		b = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(b);
		if (n >= sizeof(a->body))
			n = sizeof(a->body) - 1;
		evbuffer_remove(b, a->body, n);
		a->body[n] = '\0';
		h = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
		snprintf(a->type, sizeof(a->type), "%s", h != NULL ? h : "");
		h = evhttp_find_header(evhttp_request_get_input_headers(req), "Allow");
		snprintf(a->allow, sizeof(a->allow), "%s", h != NULL ? h : "");
	}
	event_base_loopexit(a->base, NULL);
}

/* Sends METHOD PATH to the admin listener; the answer into *a. */
static void
ask(enum evhttp_cmd_type method, const char *path, struct answer *a)
{
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct timeval tv = {10, 0};

	memset(a, 0, sizeof(*a));
	a->code = -1;
	assert_non_null(a->base = event_base_new());
	conn = evhttp_connection_base_new(a->base, NULL, "127.0.0.1", (unsigned short)srv.port);
	assert_non_null(conn);
	evhttp_connection_set_timeout_tv(conn, &tv);
	req = evhttp_request_new(on_done, a);
	assert_non_null(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	assert_int_equal(evhttp_make_request(conn, req, method, path), 0);
	event_base_dispatch(a->base);
	evhttp_connection_free(conn);
	event_base_free(a->base);
	a->base = NULL;
}

static void
test_healthz(void **state)
{
	struct answer a;

	(void)state;
	ask(EVHTTP_REQ_GET, "/healthz", &a);
	assert_int_equal(a.code, 200);
	assert_string_equal(a.body, "ok\n");
	assert_string_equal(a.type, "text/plain; charset=utf-8");
	ask(EVHTTP_REQ_HEAD, "/healthz", &a);
	assert_int_equal(a.code, 200);
	assert_string_equal(a.body, "");
	/* a query string does not change the path */
	ask(EVHTTP_REQ_GET, "/healthz?verbose=1", &a);
	assert_int_equal(a.code, 200);
}

static void
test_readyz(void **state)
{
	struct answer a;

	(void)state;
	atomic_store(&srv.ready, 1);
	ask(EVHTTP_REQ_GET, "/readyz", &a);
	assert_int_equal(a.code, 200);
	assert_string_equal(a.body, "ready\n");
	atomic_store(&srv.ready, 0);
	ask(EVHTTP_REQ_GET, "/readyz", &a);
	assert_int_equal(a.code, 503);
	assert_string_equal(a.body, "not ready: the audit log cannot be written (fail closed)\n");
	/* liveness does not depend on readiness */
	ask(EVHTTP_REQ_GET, "/healthz", &a);
	assert_int_equal(a.code, 200);
	atomic_store(&srv.ready, 1);
	ask(EVHTTP_REQ_GET, "/readyz", &a);
	assert_int_equal(a.code, 200);
}

static void
test_metrics(void **state)
{
	struct answer a;

	(void)state;
	tg_gate_metrics_conn_open(srv.m, "api");
	tg_gate_metrics_request(srv.m, "api", "datasets-read", "allow", 0.004);
	ask(EVHTTP_REQ_GET, "/metrics", &a);
	assert_int_equal(a.code, 200);
	assert_string_equal(a.type, "text/plain; version=0.0.4; charset=utf-8");
	assert_memory_equal(a.body, "# HELP tokengate_connections_open ",
	                    strlen("# HELP tokengate_connections_open "));
	assert_non_null(strstr(a.body, "\ntokengate_connections_open 1\n"));
	assert_non_null(strstr(a.body, "\ntokengate_requests_total{listener=\"api\",route=\""
	                               "datasets-read\",decision=\"allow\"} 1\n"));
	assert_non_null(strstr(a.body, "\ntokengate_request_duration_seconds_count 1\n"));
	tg_gate_metrics_conn_close(srv.m);
	ask(EVHTTP_REQ_GET, "/metrics", &a);
	assert_non_null(strstr(a.body, "\ntokengate_connections_open 0\n"));
}

static void
test_not_found_and_methods(void **state)
{
	static const char *const paths[] = {"/", "/metrics/", "/healthzz", "/admin", "/../metrics"};
	struct answer a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		ask(EVHTTP_REQ_GET, paths[i], &a);
		if (a.code != 404)
			fail_msg("GET %s: %d, want 404", paths[i], a.code);
		assert_string_equal(a.body,
		                    "not found: the admin listener serves /healthz, /readyz "
		                    "and /metrics\n");
	}
	ask(EVHTTP_REQ_POST, "/metrics", &a);
	assert_int_equal(a.code, 405);
	assert_string_equal(a.allow, "GET, HEAD");
	assert_string_equal(a.body, "method not allowed: use GET or HEAD\n");
	ask(EVHTTP_REQ_DELETE, "/healthz", &a);
	assert_int_equal(a.code, 405);
	ask(EVHTTP_REQ_PUT, "/readyz", &a);
	assert_int_equal(a.code, 405);
	ask(EVHTTP_REQ_OPTIONS, "/readyz", &a);
	assert_int_equal(a.code, 405);
	ask(EVHTTP_REQ_POST, "/nope", &a);
	assert_int_equal(a.code, 404);
}

/* Runs cmd and returns its whole stdout (static buffer) and exit status. */
static const char *
sh(const char *cmd, int *status)
{
	static char out[65536];
	size_t n = 0, got;
	FILE *f = popen(cmd, "r");

	assert_non_null(f);
	while (n + 1 < sizeof(out) && (got = fread(out + n, 1, sizeof(out) - 1 - n, f)) > 0)
		n += got;
	out[n] = '\0';
	*status = pclose(f);
	return out;
}

/* curl, a client nobody here wrote, and promtool on what it fetched. */
static void
test_curl(void **state)
{
	char cmd[512];
	const char *out;
	int st;

	(void)state;
	if (system("command -v curl >/dev/null 2>&1") != 0) {
		print_message("curl not installed: skipped\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "curl -sS -o /dev/null -w '%%{http_code}' http://%s/readyz",
	         srv.addr);
	atomic_store(&srv.ready, 0);
	out = sh(cmd, &st);
	atomic_store(&srv.ready, 1);
	assert_int_equal(st, 0);
	assert_string_equal(out, "503");
	snprintf(cmd, sizeof(cmd), "curl -sS -X POST -i http://%s/metrics", srv.addr);
	out = sh(cmd, &st);
	assert_int_equal(st, 0);
	assert_memory_equal(out, "HTTP/1.1 405 Method Not Allowed\r\n",
	                    strlen("HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(out, "\r\nAllow: GET, HEAD\r\n"));
	snprintf(cmd, sizeof(cmd), "curl -sS -f http://%s/metrics", srv.addr);
	out = sh(cmd, &st);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "\n# TYPE tokengate_request_duration_seconds histogram\n"));
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		print_message("promtool not installed: its check of /metrics skipped\n");
		return;
	}
	snprintf(cmd, sizeof(cmd),
	         "curl -sS -f http://%s/metrics | promtool check metrics 2>&1; echo \"rc=$?\"",
	         srv.addr);
	out = sh(cmd, &st);
	assert_string_equal(out, "rc=0\n");
}

static void
test_bad_addresses(void **state)
{
	struct tg_gate_admin *a2 = NULL;
	struct event_base *base = event_base_new(); /* not the running one */
	struct tg_error err;
	char want[256];

	(void)state;
	assert_non_null(base);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_admin_start(base, srv.addr, srv.m, NULL, NULL, &a2, &err),
	                 TG_ERR_IO);
	assert_null(a2);
	snprintf(want, sizeof(want),
	         "admin listener %s: cannot listen: Address already in use (another process uses "
	         "the port; pick another)",
	         srv.addr);
	assert_string_equal(err.msg, want);
	assert_int_equal(tg_gate_admin_start(base, "9090", srv.m, NULL, NULL, &a2, &err),
	                 TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "'9090' is not a listen address: the port is missing"));
	assert_int_equal(
	    tg_gate_admin_start(base, "unix:/tmp/x.sock", srv.m, NULL, NULL, &a2, &err),
	    TG_ERR_CONFIG);
	assert_string_equal(err.msg, "admin listener unix:/tmp/x.sock: expected ADDR:PORT such as "
	                             "127.0.0.1:9090");
	assert_int_equal(tg_gate_admin_start(base, "192.0.2.1:9090", srv.m, NULL, NULL, &a2, &err),
	                 TG_ERR_IO);
	assert_string_equal(err.msg, "admin listener 192.0.2.1:9090: cannot listen: Cannot assign "
	                             "requested address (no interface has this address)");
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_healthz), cmocka_unit_test(test_readyz),
	    cmocka_unit_test(test_metrics), cmocka_unit_test(test_not_found_and_methods),
	    cmocka_unit_test(test_curl),    cmocka_unit_test(test_bad_addresses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
