/*
 * test_gatep_failalloc.c — the gate's parsers and checks under allocation
 * failure (tg_test_failalloc.h): every allocation of parsing a full
 * configuration file, the command line, a full policy, an HTTP head, the
 * authz certificate header, a subrequest's evaluation and the verifier's
 * CA and CRL files, and of making the metrics, is made to fail in turn.
 * Each run either succeeds as without a failure or fails with the code
 * and message of the failure (out of memory, or what the product reports
 * for the step that failed); no run turns a failure into a success, and
 * each sweep sees at least one "out of memory" from the gate's own code.
 * Leaks on these paths are LeakSanitizer's to report (the ASan build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "gate-int.h"
#include "gate_authz_pki.h"
#include "tg_gate_config.h"
#include "tg_gate_http.h"
#include "tg_gate_metrics.h"
#include "tg_gate_policy.h"
#include "tg_gate_verify.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

static char dir[128], p_ca[256], p_crl[256], p_policy[256], p_cert[256], p_key[256], p_audit[256];

static void
put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static const char policy_text[] =
    "upstreams:\n  api: http://127.0.0.1:8081\n  llm: https://llm.internal:443\n"
    "groups:\n  team: [\"spiffe://example.org/dev/*\", \"spiffe://example.org/svc/x\"]\n"
    "routes:\n"
    "  - name: all\n"
    "    methods: [GET, POST]\n"
    "    paths: [\"/v1/**\", \"/\"]\n"
    "    upstream: api\n"
    "    host: \"api.internal:8443\"\n"
    "    inject_headers:\n"
    "      Authorization: {from: \"env:TG_GATEP_NOPE\", prefix: \"Bearer \"}\n"
    "      X-Org: {from: \"file:/nonexistent/org\"}\n"
    "    allow:\n"
    "      - {group: team, key: device-attested, pin: once, touch: never}\n"
    "      - {identity: \"spiffe://example.org/dev/alice\"}\n"
    "  - name: llm\n"
    "    paths: [\"/llm/*\"]\n"
    "    upstream: llm\n"
    "    websocket: true\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n";

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-gatep-failalloc", dir, sizeof(dir)), 0);
	snprintf(p_ca, sizeof(p_ca), "%s/ca.pem", dir);
	snprintf(p_crl, sizeof(p_crl), "%s/ca.crl", dir);
	snprintf(p_policy, sizeof(p_policy), "%s/policy.yaml", dir);
	snprintf(p_cert, sizeof(p_cert), "%s/server.pem", dir);
	snprintf(p_key, sizeof(p_key), "%s/server.key", dir);
	snprintf(p_audit, sizeof(p_audit), "%s/audit.log", dir);
	put(p_ca, GA_CA_PEM, 0644);
	put(p_crl, GA_CRL_PEM, 0644);
	put(p_policy,
	    "routes:\n  - name: all\n    paths: [\"/**\"]\n"
	    "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n",
	    0644);
	put(p_cert, "cert\n", 0644);
	put(p_key, "key\n", 0600);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_test_tmpdir_remove(dir);
	return 0;
}

/* One operation: 0, or a negative code with err set. */
typedef int (*op_fn)(struct tg_error *err);

struct op_ctx {
	op_fn fn;
	unsigned long oom; /* failed runs whose message says "out of memory" */
};

/*
 * Runs one operation for tg_failalloc_sweep: a TG_ERR_ALLOC must say "out
 * of memory"; the runs that say so are counted.
 */
static int
run_op(void *ctx, struct tg_error *err)
{
	struct op_ctx *c = ctx;
	int r = c->fn(err);

	if (r == TG_ERR_ALLOC && strstr(err->msg, "out of memory") == NULL)
		fail_msg("TG_ERR_ALLOC without \"out of memory\": %s", err->msg);
	if (r != 0 && strstr(err->msg, "out of memory") != NULL)
		c->oom++;
	return r;
}

/*
 * Sweeps op (tg_failalloc_sweep: each allocation site failing in turn,
 * every run a clean failure or the reference answer) and asserts that
 * some runs failed, at least one of them with "out of memory".
 */
static void
sweep(const char *what, op_fn fn)
{
	struct op_ctx c = {fn, 0};

	assert_true(tg_failalloc_sweep(what, run_op, &c) > 0);
	if (c.oom == 0)
		fail_msg("%s: no run failed with \"out of memory\"", what);
}

/* ---- the operations ---- */

static int
op_config_file(struct tg_error *err)
{
	char text[2048], name[300];
	struct tg_gate_config c;
	int r;

	tg_failalloc_hold(1);
	snprintf(name, sizeof(name), "%s/gate.yaml", dir);
	snprintf(text, sizeof(text),
	         "listeners:\n"
	         "  - {name: api, listen: 127.0.0.1:8443, upstream: http://127.0.0.1:8081, "
	         "policy: policy.yaml}\n"
	         "  - {name: az, listen: unix:/run/tg-az.sock, mode: authz, group: root}\n"
	         "tls: {cert: server.pem, key: server.key, client_ca: [ca.pem, %s], crl: ca.crl, "
	         "tickets: tk}\n"
	         "upstream_ca: ca.pem\npolicy: %s\n"
	         "audit: {file: audit.log, fsync: always}\nadmin: 127.0.0.1:9090\n"
	         "workers: 2\ndry_run: true\nlimits: {header_bytes: 9000, idle_ms: 5}\n",
	         p_ca, p_policy);
	tg_failalloc_hold(0);
	r = tg_gate_config_parse(text, strlen(text), name, &c, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_int_equal(c.nlisteners, 2);
		assert_string_equal(c.listeners[1].group, "root");
		assert_int_equal(c.nclient_ca, 2);
		assert_int_equal(c.limits.header_bytes, 9000);
	} else {
		assert_null(c.listeners);
		assert_null(c.file);
	}
	tg_gate_config_clear(&c);
	tg_failalloc_hold(0);
	return r;
}

static int
op_config_args(struct tg_error *err)
{
	struct tg_gate_config c;
	int check = 0, help = 0, r, fd, o2;
	char *argv[] = {"gate",
	                "--listen",
	                "127.0.0.1:8443",
	                "--cert",
	                p_cert,
	                "--key",
	                p_key,
	                "--client-ca",
	                p_ca,
	                "--client-ca",
	                p_ca,
	                "--policy",
	                p_policy,
	                "--audit",
	                p_audit,
	                "--upstream",
	                "http://127.0.0.1:8081",
	                "--crl",
	                p_crl,
	                "--admin",
	                "127.0.0.1:9090",
	                "--workers",
	                "3",
	                "--dry-run",
	                NULL};
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

	/* a usage error would be printed: keep stderr quiet */
	tg_failalloc_hold(1);
	fflush(stderr);
	o2 = dup(2);
	fd = open("/dev/null", O_WRONLY);
	assert_true(o2 >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	tg_failalloc_hold(0);
	r = tg_gate_config_from_args(argc, argv, &c, &check, &help, err);
	tg_failalloc_hold(1);
	fflush(stderr);
	dup2(o2, 2);
	close(o2);
	if (r == 0) {
		assert_int_equal(c.nclient_ca, 2);
		assert_int_equal(c.workers, 3);
		assert_int_equal(c.dry_run, 1);
	} else {
		assert_int_equal(c.nlisteners, 0);
	}
	tg_gate_config_clear(&c);
	tg_failalloc_hold(0);
	return r;
}

static int
op_policy(struct tg_error *err)
{
	struct tg_gate_policy p;
	int r;

	r = tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "p.yaml", &p, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_int_equal(p.nroutes, 2);
		assert_int_equal(p.routes[0].ninject, 2);
		assert_int_equal(p.ngroups, 1);
	} else {
		assert_int_equal(p.nroutes, 0);
		assert_null(p.routes);
	}
	tg_gate_policy_clear(&p);
	tg_failalloc_hold(0);
	return r;
}

static int
on_head(void *arg, const struct tg_gate_http_head *h)
{
	(void)h;
	++*(int *)arg;
	return 0;
}

static int
op_http(struct tg_error *err)
{
	static const struct tg_gate_http_cb cb = {on_head, NULL, NULL};
	struct tg_gate_http_reader *rd = NULL;
	struct tg_gate_http_error e;
	char head[6000];
	size_t used = 0, n = 0;
	int heads = 0, r, i;

	tg_failalloc_hold(1);
	n += (size_t)snprintf(head + n, sizeof(head) - n, "GET /a HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < 60; i++)
		n += (size_t)snprintf(head + n, sizeof(head) - n, "X-Header-%02d: %060d\r\n", i, i);
	n += (size_t)snprintf(head + n, sizeof(head) - n, "\r\n");
	tg_failalloc_hold(0);
	r = tg_gate_http_reader_new(TG_GATE_HTTP_REQUEST, NULL, &cb, &heads, &rd, err);
	if (r != 0)
		return r;
	memset(&e, 0, sizeof(e));
	if (tg_gate_http_reader_feed(rd, head, n, &used, &e) != TG_GATE_HTTP_OK) {
		tg_failalloc_hold(1);
		assert_int_equal(e.status, 500);
		assert_string_equal(e.reason, "out of memory");
		assert_int_equal(heads, 0);
		r = tg_error_set(err, TG_ERR_ALLOC, "%s", e.reason);
	} else {
		tg_failalloc_hold(1);
		assert_int_equal(heads, 1);
	}
	tg_gate_http_reader_free(rd);
	tg_failalloc_hold(0);
	return r;
}

static int
op_cert_der(struct tg_error *err)
{
	static const char hex[] = "0123456789ABCDEF";
	char *e;
	uint8_t *der = NULL;
	size_t len = 0, i, o = 0, n = strlen(GA_ALICE_PEM);
	const char *why = NULL;
	int r;

	tg_failalloc_hold(1);
	e = malloc(3 * n + 1);
	assert_non_null(e);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)GA_ALICE_PEM[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			e[o++] = (char)c;
		} else {
			e[o++] = '%';
			e[o++] = hex[c >> 4];
			e[o++] = hex[c & 15];
		}
	}
	tg_failalloc_hold(0);
	r = tg_gate_authz_cert_der(e, o, &der, &len, &why);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_true(len > 300);
		free(der);
	} else {
		assert_null(der);
		assert_int_equal(len, 0);
		assert_non_null(why);
		/* the gate's own mallocs say so; OpenSSL's inside the PEM reader
		 * make the block unreadable, which is a refusal too */
		if (r == TG_ERR_ALLOC)
			assert_string_equal(why, "out of memory");
		else
			assert_int_equal(r, TG_ERR_FORMAT);
		tg_error_set(err, r, "%s", why);
	}
	free(e);
	tg_failalloc_hold(0);
	return r;
}

static struct tg_gate_verify *verifier;
static struct tg_gate_policy pol;

static int
op_evaluate(struct tg_error *err)
{
	static const char hex[] = "0123456789ABCDEF";
	struct tg_gate_authz_out *o;
	struct tg_gate_authz_in in;
	char *e;
	size_t i, k = 0, n = strlen(GA_ALICE_PEM);
	int r = 0;

	tg_failalloc_hold(1);
	o = malloc(sizeof(*o));
	e = malloc(3 * n + 1);
	assert_true(o != NULL && e != NULL);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)GA_ALICE_PEM[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			e[k++] = (char)c;
		} else {
			e[k++] = '%';
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		}
	}
	e[k] = '\0';
	memset(&in, 0, sizeof(in));
	in.cert = e;
	in.method = "GET";
	in.uri = "/v1/x";
	in.ncert = in.nmethod = in.nuri = 1;
	tg_failalloc_hold(0);
	assert_int_equal(tg_gate_authz_evaluate(verifier, NULL, 1, &pol, &in, GA_NOW, o), 0);
	tg_failalloc_hold(1);
	if (!o->allow) {
		/* a deny because something could not be allocated, never an allow */
		assert_false(o->verified && o->route >= 0 && o->reason[0] == '\0');
		assert_true(o->reason[0] != '\0');
		r = tg_error_set(
		    err, strstr(o->reason, "out of memory") != NULL ? TG_ERR_ALLOC : TG_ERR_POLICY,
		    "%s", o->reason);
	} else {
		assert_true(o->verified);
		assert_string_equal(o->peer.identity, "spiffe://example.org/dev/alice");
	}
	free(e);
	free(o);
	tg_failalloc_hold(0);
	return r;
}

static int
op_verify_new(struct tg_error *err)
{
	struct tg_gate_verify *v = NULL;
	int r;

	r = tg_gate_verify_new((const char *const[]){p_ca, p_ca}, 2, p_crl, &v, err);
	tg_failalloc_hold(1);
	if (r == 0)
		assert_non_null(v);
	else
		assert_null(v);
	tg_gate_verify_free(v);
	tg_failalloc_hold(0);
	return r;
}

static int
op_metrics(struct tg_error *err)
{
	struct tg_gate_metrics *m = NULL;
	struct evbuffer *b;
	int r;

	r = tg_gate_metrics_new(&m, err);
	if (r != 0)
		return r;
	tg_gate_metrics_request(m, "main", "all", "allow", 0.01);
	tg_gate_metrics_request(m, "main", NULL, "deny", -1.0);
	tg_failalloc_hold(1);
	b = evbuffer_new();
	assert_non_null(b);
	tg_failalloc_hold(0);
	if (tg_gate_metrics_render(m, b) != 0)
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory rendering the metrics");
	tg_failalloc_hold(1);
	evbuffer_free(b);
	tg_gate_metrics_free(m);
	tg_failalloc_hold(0);
	return r;
}

/* ---- the tests ---- */

static void
test_config_file(void **state)
{
	(void)state;
	sweep("config file", op_config_file);
}

static void
test_config_args(void **state)
{
	(void)state;
	sweep("config flags", op_config_args);
}

static void
test_policy(void **state)
{
	(void)state;
	sweep("policy", op_policy);
}

static void
test_http(void **state)
{
	(void)state;
	sweep("http head", op_http);
}

static void
test_cert_der(void **state)
{
	(void)state;
	sweep("authz cert header", op_cert_der);
}

static void
test_evaluate(void **state)
{
	struct tg_error err;

	(void)state;
	tg_error_clear(&err);
	if (tg_gate_verify_new((const char *const[]){p_ca}, 1, NULL, &verifier, &err) != 0)
		fail_msg("verifier: %s", err.msg);
	if (tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "p.yaml", &pol, &err) != 0)
		fail_msg("policy: %s", err.msg);
	sweep("authz evaluate", op_evaluate);
	tg_gate_policy_clear(&pol);
	tg_gate_verify_free(verifier);
}

static void
test_verify_new(void **state)
{
	(void)state;
	sweep("verifier", op_verify_new);
}

static void
test_metrics(void **state)
{
	(void)state;
	sweep("metrics", op_metrics);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_file), cmocka_unit_test(test_config_args),
	    cmocka_unit_test(test_policy),      cmocka_unit_test(test_http),
	    cmocka_unit_test(test_cert_der),    cmocka_unit_test(test_evaluate),
	    cmocka_unit_test(test_verify_new),  cmocka_unit_test(test_metrics),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
