/*
 * test_failalloc_gate.c — the gate and its audit log under allocation
 * failure (tg_test_failalloc.h): the configuration and policy parsers, the
 * client-certificate verifier, the authz decision (certificate header,
 * verification, cache, decision) and the audit log's writer and verifier.
 * Each allocation site is made to fail in turn: the operation fails with a
 * message, or absorbs it with the same answer. A denied request is never
 * allowed, an allowed one is denied with a reason, a log that fails to
 * write is never reported written, and a broken chain is never reported
 * intact.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gate-int.h"
#include "gate_authz_pki.h"
#include "tg_audit.h"
#include "tg_audit_verify.h"
#include "tg_gate_config.h"
#include "tg_gate_policy.h"
#include "tg_gate_verify.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

static const char policy_text[] =
    "upstreams:\n"
    "  datasets: http://127.0.0.1:8081\n"
    "groups:\n"
    "  devs: [\"spiffe://example.org/dev/*\"]\n"
    "routes:\n"
    "  - name: completions\n"
    "    methods: [POST, GET]\n"
    "    paths: [\"/v1/chat/completions\", \"/v1/models/*\"]\n"
    "    upstream: datasets\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\", key: device-attested,\n"
    "             pin: once, touch: never}]\n"
    "  - name: admin\n"
    "    paths: [\"/admin/**\"]\n"
    "    allow: [{group: devs, touch: always}]\n"
    "  - name: rest\n"
    "    paths: [\"/**\"]\n"
    "    upstream: datasets\n"
    "    allow: [{identity: \"spiffe://example.org/dev/alice\"}]\n";

static const char config_text[] =
    "listeners:\n"
    "  - name: api\n"
    "    listen: 0.0.0.0:8443\n"
    "    mode: http\n"
    "    upstream: http://127.0.0.1:8081\n"
    "  - listen: \"[::1]:5433\"\n"
    "    mode: tcp\n"
    "    upstream: tcp://127.0.0.1:5432\n"
    "    policy: policy-tcp.yaml\n"
    "  - name: authz\n"
    "    listen: unix:/run/tokengate/authz.sock\n"
    "    mode: authz\n"
    "tls:\n"
    "  cert: server.pem\n"
    "  key: server.key\n"
    "  client_ca: [ca.pem, ca2.pem]\n"
    "  crl: crl.pem\n"
    "upstream_ca: ca.pem\n"
    "policy: policy.yaml\n"
    "audit: {file: audit.log, fsync: always}\n"
    "admin: 127.0.0.1:9090\n"
    "workers: 3\n"
    "limits: {header_bytes: 32768, header_count: 50, handshake_failures: 7}\n";

static struct {
	char dir[64];
	char ca[128], crl[128], log[128];
	struct tg_gate_verify *v;
	struct tg_gate_policy pol;
	char *alice;   /* GA_ALICE_PEM escaped as nginx does */
	char *foreign; /* GA_OTHERCA_PEM escaped */
} fx;

static int
op_policy(void *ctx, struct tg_error *err)
{
	struct tg_gate_policy p;
	int r;

	(void)ctx;
	r = tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "policy.yaml", &p, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_int_equal(p.nroutes, 3);
		assert_int_equal(p.nupstreams, 1);
		assert_int_equal(p.ngroups, 1);
	} else {
		assert_int_equal(p.nroutes, 0);
	}
	tg_gate_policy_clear(&p);
	return r;
}

static int
op_config(void *ctx, struct tg_error *err)
{
	struct tg_gate_config c;
	int r;

	(void)ctx;
	tg_gate_config_init(&c);
	r = tg_gate_config_parse(config_text, sizeof(config_text) - 1, "/etc/tokengate/gate.yaml",
	                         &c, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_int_equal(c.nlisteners, 3);
		assert_string_equal(c.listeners[1].policy_file, "/etc/tokengate/policy-tcp.yaml");
		assert_int_equal(c.nclient_ca, 2);
	}
	tg_gate_config_clear(&c);
	return r;
}

static int
op_verify_new(void *ctx, struct tg_error *err)
{
	const char *cas[] = {fx.ca};
	struct tg_gate_verify *v = NULL;
	int r;

	(void)ctx;
	r = tg_gate_verify_new(cas, 1, fx.crl, &v, err);
	tg_failalloc_hold(1);
	assert_int_equal(v != NULL, r == 0);
	tg_gate_verify_free(v);
	return r;
}

/* One authz subrequest for cert (escaped) GET uri, with a new cache:
 * 0 allowed, TG_ERR_POLICY with the reason denied. */
static int
authz(const char *cert, const char *uri, struct tg_error *err)
{
	struct tg_gate_authz_cache *cache;
	struct tg_gate_authz_in in;
	struct tg_gate_authz_out out;
	int r;

	memset(&in, 0, sizeof(in));
	in.cert = cert;
	in.method = "GET";
	in.uri = uri;
	in.ncert = in.nmethod = in.nuri = 1;
	cache = tg_gate_authz_cache_new();
	if (cache == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "no cache");
	} else {
		memset(&out, 0, sizeof(out));
		r = tg_gate_authz_evaluate(fx.v, cache, 1, &fx.pol, &in, GA_NOW, &out);
		tg_failalloc_hold(1);
		assert_int_equal(r, 0);
		assert_true(out.reason[0] != '\0');
		if (out.allow) {
			assert_true(out.verified);
			assert_string_equal(out.peer.identity, "spiffe://example.org/dev/alice");
		} else {
			r = tg_error_set(err, TG_ERR_POLICY, "%s", out.reason);
		}
	}
	tg_failalloc_hold(1);
	tg_gate_authz_cache_free(cache);
	return r;
}

static int
op_authz_allow(void *ctx, struct tg_error *err)
{
	(void)ctx;
	return authz(fx.alice, "/v1/models/%61bc?x=1", err);
}

static int
op_authz_foreign(void *ctx, struct tg_error *err)
{
	(void)ctx;
	return authz(fx.foreign, "/v1/models/abc", err);
}

/* alice (touch never) on a route that wants a touch: denied by the decision */
static int
op_authz_denied(void *ctx, struct tg_error *err)
{
	(void)ctx;
	return authz(fx.alice, "/admin/x/../users", err);
}

/* Writes three records to a new log; on success the chain verifies. */
static int
op_audit_write(void *ctx, struct tg_error *err)
{
	const char *paths[] = {fx.log};
	struct tg_audit_report rep;
	struct tg_audit *log = NULL;
	struct tg_error e2;
	json_t *rec;
	int r, i;

	(void)ctx;
	tg_failalloc_hold(1);
	(void)unlink(fx.log);
	rec = json_pack("{s:s, s:s, s:i}", "event", "allow", "identity",
	                "spiffe://example.org/dev/alice", "status", 200);
	assert_non_null(rec);
	tg_failalloc_hold(0);
	r = tg_audit_open(fx.log, TG_AUDIT_FSYNC_NEVER, &log, err);
	for (i = 0; i < 3 && r == 0; i++)
		r = tg_audit_write(log, rec, err);
	if (r == 0)
		r = tg_audit_sync(log, err);
	tg_failalloc_hold(1);
	tg_audit_close(log);
	if (r == 0) {
		tg_error_clear(&e2);
		assert_int_equal(
		    tg_audit_verify_files(paths, 1, TG_AUDIT_VERIFY_GENESIS, &rep, &e2), 0);
		assert_int_equal(rep.flaw, TG_AUDIT_INTACT);
		assert_int_equal(rep.lines, 3);
	}
	json_decref(rec);
	return r;
}

/* Verifies a chain of 3 lines whose 2nd was edited: never intact. */
static int
op_audit_verify(void *ctx, struct tg_error *err)
{
	const char *data = ctx;
	struct tg_audit_report rep;
	int r;

	memset(&rep, 0, sizeof(rep));
	r = tg_audit_verify_mem((const uint8_t *)data, strlen(data), "audit.log",
	                        TG_AUDIT_VERIFY_GENESIS, &rep, err);
	tg_failalloc_hold(1);
	if (r == 0 && rep.flaw != TG_AUDIT_INTACT)
		r = tg_error_set(err, TG_ERR_CHECKSUM, "line %zu: %s", rep.line, rep.detail);
	return r;
}

static int
setup(void **state)
{
	struct tg_error err;
	const char *cas[1];

	(void)state;
	memset(&fx, 0, sizeof(fx));
	assert_int_equal(tg_test_tmpdir("tg-test-failalloc-gate", fx.dir, sizeof(fx.dir)), 0);
	snprintf(fx.ca, sizeof(fx.ca), "%s/ca.pem", fx.dir);
	snprintf(fx.crl, sizeof(fx.crl), "%s/crl.pem", fx.dir);
	snprintf(fx.log, sizeof(fx.log), "%s/audit.log", fx.dir);
	assert_int_equal(tg_test_file_put(fx.ca, GA_CA_PEM), 0);
	assert_int_equal(tg_test_file_put(fx.crl, GA_CRL_PEM), 0);
	cas[0] = fx.ca;
	tg_error_clear(&err);
	if (tg_gate_verify_new(cas, 1, NULL, &fx.v, &err) != 0 ||
	    tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "policy.yaml", &fx.pol,
	                         &err) != 0)
		fail_msg("setup: %s", err.msg);
	fx.alice = ga_escape(GA_ALICE_PEM, 0);
	fx.foreign = ga_escape(GA_OTHERCA_PEM, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_gate_verify_free(fx.v);
	tg_gate_policy_clear(&fx.pol);
	free(fx.alice);
	free(fx.foreign);
	tg_test_tmpdir_remove(fx.dir);
	return 0;
}

static void
test_policy(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("gate policy", op_policy, NULL) > 0);
}

static void
test_config(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("gate configuration", op_config, NULL) > 0);
}

static void
test_verify_new(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("gate verifier with a CRL", op_verify_new, NULL) > 0);
}

static void
test_authz_allow(void **state)
{
	struct tg_error err;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(op_authz_allow(NULL, &err), 0);
	assert_true(tg_failalloc_sweep("authz, allowed", op_authz_allow, NULL) > 0);
}

static void
test_authz_foreign(void **state)
{
	struct tg_error err;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(op_authz_foreign(NULL, &err), TG_ERR_POLICY);
	(void)tg_failalloc_sweep("authz, another CA's certificate", op_authz_foreign, NULL);
}

static void
test_authz_denied(void **state)
{
	struct tg_error err;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(op_authz_denied(NULL, &err), TG_ERR_POLICY);
	(void)tg_failalloc_sweep("authz, denied by the policy", op_authz_denied, NULL);
}

static void
test_audit_write(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("audit log write", op_audit_write, NULL) > 0);
}

static void
test_audit_verify(void **state)
{
	const char *paths[] = {fx.log};
	struct tg_audit_report rep;
	struct tg_error err;
	char *text;
	FILE *f;
	long n;
	char *p;

	(void)state;
	/* a good log of three lines, its second line's status edited */
	tg_error_clear(&err);
	assert_int_equal(op_audit_write(NULL, &err), 0);
	assert_int_equal(tg_audit_verify_files(paths, 1, 0, &rep, &err), 0);
	f = fopen(fx.log, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p = strchr(text, '\n');
	assert_non_null(p);
	p = strstr(p, "200");
	assert_non_null(p);
	p[0] = '3';
	assert_int_equal(op_audit_verify(text, &err), TG_ERR_CHECKSUM);
	assert_true(tg_failalloc_sweep("audit verify, an edited line", op_audit_verify, text) > 0);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy),        cmocka_unit_test(test_config),
	    cmocka_unit_test(test_verify_new),    cmocka_unit_test(test_authz_allow),
	    cmocka_unit_test(test_authz_foreign), cmocka_unit_test(test_authz_denied),
	    cmocka_unit_test(test_audit_write),   cmocka_unit_test(test_audit_verify),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
