/*
 * test_gatep_config.c — the gate configuration's refusals that the flags
 * and file tests do not reach (host/gate/config.c): tg_gate_config_check on
 * a configuration built by hand (no listener, limits and workers out of
 * range, no client CA or audit log, an audit log that fails its checks, a
 * tcp listener without upstream, a listener's own policy that does not
 * load, a policy upstream that is not a URL), the YAML reader's refusals of
 * values of the wrong shape, and the URL parser's length limits. Each case
 * asserts the code and the whole message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_gate_config.h"
#include "tg_test.h"

static char dir[256];
static char p_cert[300], p_key[300], p_ca[300], p_policy[300], p_audit[300], p_badup[300],
    p_cfg[300];

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-gatep-config", dir, sizeof(dir)), 0);
	snprintf(p_cert, sizeof(p_cert), "%s/server.pem", dir);
	snprintf(p_key, sizeof(p_key), "%s/server.key", dir);
	snprintf(p_ca, sizeof(p_ca), "%s/ca.pem", dir);
	snprintf(p_policy, sizeof(p_policy), "%s/policy.yaml", dir);
	snprintf(p_badup, sizeof(p_badup), "%s/policy-badup.yaml", dir);
	snprintf(p_audit, sizeof(p_audit), "%s/audit.log", dir);
	snprintf(p_cfg, sizeof(p_cfg), "%s/gate.yaml", dir);
	write_file(p_cert, "cert\n", 0644);
	write_file(p_key, "key\n", 0600);
	write_file(p_ca, "ca\n", 0644);
	write_file(p_policy,
	           "routes:\n  - name: all\n    paths: [\"/**\"]\n    allow:\n"
	           "      - identity: \"spiffe://example.org/dev/*\"\n",
	           0644);
	write_file(p_badup,
	           "upstreams:\n  api: http://127.0.0.1:99999\nroutes:\n  - name: all\n"
	           "    paths: [\"/**\"]\n    upstream: api\n    allow:\n"
	           "      - identity: \"spiffe://example.org/dev/*\"\n",
	           0644);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_test_tmpdir_remove(dir);
	return 0;
}

static char *
xdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/*
 * A configuration that passes tg_gate_config_check, as the flags would
 * make it: one http listener "main" on 127.0.0.1:8443 with an upstream.
 */
static void
good(struct tg_gate_config *c)
{
	struct tg_gate_listener_cfg *l;

	tg_gate_config_init(c);
	c->listeners = calloc(1, sizeof(*c->listeners));
	c->client_ca = calloc(2, sizeof(*c->client_ca));
	assert_non_null(c->listeners);
	assert_non_null(c->client_ca);
	c->nlisteners = 1;
	l = &c->listeners[0];
	snprintf(l->name, sizeof(l->name), "main");
	l->listen = xdup("127.0.0.1:8443");
	assert_int_equal(tg_gate_url_parse(l->listen, 1, &l->addr, NULL), 0);
	l->mode = TG_GATE_MODE_HTTP;
	l->upstream = xdup("http://127.0.0.1:8081");
	assert_int_equal(tg_gate_url_parse(l->upstream, 0, &l->up, NULL), 0);
	c->cert = xdup(p_cert);
	c->key = xdup(p_key);
	c->client_ca[0] = xdup(p_ca);
	c->nclient_ca = 1;
	c->policy_file = xdup(p_policy);
	c->audit_file = xdup(p_audit);
}

/* Takes the one listener away (its strings freed: clear frees nlisteners of them). */
static void
drop_listener(struct tg_gate_config *c)
{
	free(c->listeners[0].listen);
	free(c->listeners[0].upstream);
	c->listeners[0].listen = c->listeners[0].upstream = NULL;
	c->nlisteners = 0;
}

/* tg_gate_config_check refuses c with exactly msg (TG_ERR_CONFIG); clears c. */
static void
check_refused(struct tg_gate_config *c, const char *msg)
{
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	r = tg_gate_config_check(c, &err);
	if (r != TG_ERR_CONFIG || strcmp(err.msg, msg) != 0)
		fail_msg("got %d \"%s\"\nwant \"%s\"", r, err.msg, msg);
	tg_gate_config_clear(c);
	assert_null(c->listeners);
	assert_int_equal(c->nlisteners, 0);
}

static void
test_check_good(void **state)
{
	struct tg_gate_config c;
	struct tg_error err;

	(void)state;
	good(&c);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_config_check(&c, &err), 0);
	assert_string_equal(err.msg, "");
	/* an audit log that exists and passes its checks is accepted too */
	write_file(p_audit, "", 0600);
	assert_int_equal(tg_gate_config_check(&c, &err), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(unlink(p_audit), 0);
	tg_gate_config_clear(&c);
	tg_gate_config_clear(NULL);
}

static void
test_check_listeners(void **state)
{
	struct tg_gate_config c;
	char msg[1024];

	(void)state;
	good(&c);
	drop_listener(&c);
	check_refused(&c, "no listener; add --listen ADDR:PORT");
	good(&c);
	drop_listener(&c);
	c.file = xdup(p_cfg);
	snprintf(msg, sizeof(msg),
	         "%s: no listener; add listeners: [{listen: 0.0.0.0:8443, upstream: "
	         "http://127.0.0.1:8081}]",
	         p_cfg);
	check_refused(&c, msg);
	/* tcp mode without an upstream: named by flag, or by file and line */
	good(&c);
	c.listeners[0].mode = TG_GATE_MODE_TCP;
	free(c.listeners[0].upstream);
	c.listeners[0].upstream = NULL;
	check_refused(&c, "--mode tcp: mode tcp needs an upstream to pass the bytes to; add "
	                  "--upstream tcp://HOST:PORT or unix:/PATH");
	good(&c);
	c.file = xdup(p_cfg);
	c.listeners[0].line = 3;
	c.listeners[0].mode = TG_GATE_MODE_TCP;
	free(c.listeners[0].upstream);
	c.listeners[0].upstream = NULL;
	snprintf(msg, sizeof(msg),
	         "%s line 3: listener 'main': mode tcp needs an upstream to pass the bytes to; "
	         "add upstream: tcp://HOST:PORT or unix:/PATH",
	         p_cfg);
	check_refused(&c, msg);
	/* authz on an IPv6 address other than ::1 is not loopback */
	good(&c);
	c.listeners[0].mode = TG_GATE_MODE_AUTHZ;
	free(c.listeners[0].upstream);
	c.listeners[0].upstream = NULL;
	free(c.listeners[0].listen);
	c.listeners[0].listen = xdup("[2001:db8::1]:8080");
	assert_int_equal(tg_gate_url_parse(c.listeners[0].listen, 1, &c.listeners[0].addr, NULL),
	                 0);
	check_refused(&c, "--listen [2001:db8::1]:8080: an authz listener answers with the "
	                  "identity and the route's injected credentials to whoever asks with a "
	                  "certificate (which is public), so it listens on loopback or a unix "
	                  "socket only; run the gate beside nginx and listen on 127.0.0.1:PORT, "
	                  "[::1]:PORT or unix:/PATH");
}

static void
test_check_limits(void **state)
{
	struct tg_gate_config c;
	char msg[1024];

	(void)state;
	good(&c);
	c.limits.header_bytes = 0;
	check_refused(&c, "limits.header_bytes 0: must be from 1 to 1048576");
	good(&c);
	c.limits.upstream_pool = 65537;
	check_refused(&c, "limits.upstream_pool 65537: must be from 1 to 65536");
	/* from a file: the file and the line of 'limits', or the file alone */
	good(&c);
	c.file = xdup(p_cfg);
	c.line.limits = 7;
	c.limits.idle_ms = 86400001;
	snprintf(msg, sizeof(msg), "%s line 7: limits.idle_ms 86400001: must be from 1 to 86400000",
	         p_cfg);
	check_refused(&c, msg);
	good(&c);
	c.file = xdup(p_cfg);
	c.limits.max_conns = 0;
	snprintf(msg, sizeof(msg), "%s: limits.max_conns 0: must be from 1 to 1000000", p_cfg);
	check_refused(&c, msg);
	good(&c);
	c.workers = 0;
	check_refused(&c, "--workers 0: must be from 1 to 1024");
	good(&c);
	c.file = xdup(p_cfg);
	c.line.workers = 4;
	c.workers = 1025;
	snprintf(msg, sizeof(msg), "%s line 4: workers 1025: must be from 1 to 1024", p_cfg);
	check_refused(&c, msg);
}

static void
test_check_files(void **state)
{
	struct tg_gate_config c;
	char msg[1024];

	(void)state;
	good(&c);
	free(c.cert);
	c.cert = NULL;
	check_refused(&c, "the command line: no server certificate; add --cert FILE (a PEM file or "
	                  "a pkcs11: URI)");
	good(&c);
	free(c.key);
	c.key = NULL;
	check_refused(
	    &c, "the command line: no server key; add --key FILE (a PEM file or a pkcs11: URI)");
	good(&c);
	free(c.client_ca[0]);
	c.client_ca[0] = NULL;
	c.nclient_ca = 0;
	check_refused(&c, "the command line: no client CA; add --client-ca FILE with the tokengate "
	                  "CA certificate (PEM) that issues the clients' certificates");
	good(&c);
	c.file = xdup(p_cfg);
	free(c.client_ca[0]);
	c.client_ca[0] = NULL;
	c.nclient_ca = 0;
	snprintf(msg, sizeof(msg),
	         "%s: no client CA; add tls: {client_ca: [FILE]} with the tokengate CA "
	         "certificate (PEM) that issues the clients' certificates",
	         p_cfg);
	check_refused(&c, msg);
	good(&c);
	free(c.audit_file);
	c.audit_file = NULL;
	check_refused(&c, "the command line: no audit log; add --audit FILE (one hash-chained JSON "
	                  "line per decision)");
	good(&c);
	c.file = xdup(p_cfg);
	free(c.audit_file);
	c.audit_file = NULL;
	snprintf(msg, sizeof(msg),
	         "%s: no audit log; add audit: {file: PATH} (one hash-chained JSON line per "
	         "decision)",
	         p_cfg);
	check_refused(&c, msg);
	/* an audit log that others may read is refused with the fix; the file stays */
	write_file(p_audit, "", 0644);
	good(&c);
	snprintf(msg, sizeof(msg),
	         "--audit: audit log '%s' is readable by others (mode 0644); run 'chmod 600 %s'",
	         p_audit, p_audit);
	check_refused(&c, msg);
	assert_int_equal(access(p_audit, F_OK), 0);
	assert_int_equal(unlink(p_audit), 0);
	/* an audit log in the working directory: its directory is "." */
	good(&c);
	free(c.audit_file);
	c.audit_file = xdup("tg-gatep-no-such-audit.log");
	{
		struct tg_error err;

		tg_error_clear(&err);
		assert_int_equal(tg_gate_config_check(&c, &err), 0);
		assert_string_equal(err.msg, "");
		assert_int_equal(access("tg-gatep-no-such-audit.log", F_OK), -1);
	}
	tg_gate_config_clear(&c);
}

static void
test_check_policy(void **state)
{
	struct tg_gate_config c;
	char missing[300], msg[1024];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/nope.yaml", dir);
	/* a listener's own policy that does not load: named by the flag, or file and line */
	good(&c);
	c.listeners[0].policy_file = xdup(missing);
	snprintf(msg, sizeof(msg), "--policy %s: gate policy '%s' does not exist", missing,
	         missing);
	check_refused(&c, msg);
	good(&c);
	c.file = xdup(p_cfg);
	c.listeners[0].line = 2;
	c.listeners[0].policy_file = xdup(missing);
	snprintf(msg, sizeof(msg), "%s line 2: listener 'main': gate policy '%s' does not exist",
	         p_cfg, missing);
	check_refused(&c, msg);
	/* an upstream of the policy that is not an upstream URL */
	good(&c);
	free(c.policy_file);
	c.policy_file = xdup(p_badup);
	snprintf(msg, sizeof(msg),
	         "%s: upstream 'api': 'http://127.0.0.1:99999' is not an upstream URL: the port "
	         "must be a number from 1 to 65535; write a URL such as "
	         "http://127.0.0.1:8081, https://api.internal:443, unix:/run/api.sock or (tcp "
	         "mode) tcp://127.0.0.1:5432",
	         p_badup);
	check_refused(&c, msg);
}

/* tg_gate_config_parse refuses text with "NAME line N: msg" (or "NAME: msg" for line 0). */
static void
parse_refused(const char *name, const char *text, unsigned line, const char *msg)
{
	struct tg_gate_config c;
	struct tg_error err;
	char want[2048];
	int r;

	if (line > 0)
		snprintf(want, sizeof(want), "%s line %u: %s", name, line, msg);
	else
		snprintf(want, sizeof(want), "%s", msg);
	tg_error_clear(&err);
	r = tg_gate_config_parse(text, strlen(text), name, &c, &err);
	if (r != TG_ERR_CONFIG || strcmp(err.msg, want) != 0)
		fail_msg("%s\ngot %d \"%s\"\nwant \"%s\"", text, r, err.msg, want);
	assert_null(c.file);
	assert_null(c.listeners);
	assert_int_equal(c.nlisteners, 0);
}

#define L1 "listeners: [{listen: 127.0.0.1:8443}]\n"

static void
test_file_shapes(void **state)
{
	const char *n = "/etc/tg/gate.yaml";

	(void)state;
	parse_refused(n, "listeners:\n  - listen: [a]\n", 2,
	              "'listen' must be one line of text, not a list or mapping");
	parse_refused(n, "listeners:\n  - {listen: 127.0.0.1:1, upstream: {a: b}}\n", 2,
	              "'upstream' must be one line of text, not a list or mapping");
	parse_refused(n, "listeners:\n  - {listen: 127.0.0.1:1, policy: [p.yaml]}\n", 2,
	              "'policy' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "tls: {cert: c.pem, key: [k]}\n", 2,
	              "'key' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "tls: {cert: c.pem, crl: {a: b}}\n", 2,
	              "'crl' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "tls: {client_ca: [a.pem, [b.pem]]}\n", 2,
	              "'client_ca' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "tls: 5\n", 2,
	              "'tls' must be a mapping of keys (known: cert, key, client_ca, crl, "
	              "tickets)");
	parse_refused(n, L1 "audit: {file: [a.log]}\n", 2,
	              "'file' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "audit: {file: a.log, sync: never}\n", 2,
	              "unknown key 'sync' in 'audit'; remove it or fix its spelling (known: file, "
	              "fsync)");
	parse_refused(n, L1 "upstream_ca: [a.pem]\n", 2,
	              "'upstream_ca' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "admin: [127.0.0.1:9090]\n", 2,
	              "'admin' must be one line of text, not a list or mapping");
	parse_refused(n, L1 "limits: [1]\n", 2,
	              "'limits' must be a mapping of keys (known: header_bytes, header_count, "
	              "request_line, handshake_ms, header_ms, idle_ms, upstream_connect_ms, "
	              "upstream_ms, max_conns, upstream_pool, handshake_failures, "
	              "handshake_failure_ms)");
}

static void
test_file_sizes(void **state)
{
	char text[8192], name[4200];
	size_t used = 0;
	unsigned i;

	(void)state;
	/* 65 listeners: at most 64 */
	used += (size_t)snprintf(text + used, sizeof(text) - used, "listeners:\n");
	for (i = 0; i < 65; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
		                         "  - {listen: 127.0.0.1:%u}\n", 1000 + i);
	parse_refused("gate.yaml", text, 2, "65 listeners: at most 64; run several gates");
	/* a host name of 256 bytes */
	memset(name, 'h', 256);
	name[256] = '\0';
	snprintf(text, sizeof(text), "listeners:\n  - listen: %s:8443\n", name);
	used = strlen(text);
	{
		char msg[1024];

		snprintf(msg, sizeof(msg),
		         "listen '%.200s': the host name is longer than 255 bytes; write ADDR:PORT "
		         "such as 127.0.0.1:8443, [V6]:PORT such as [::1]:8443, or unix:/PATH "
		         "(authz mode)",
		         name);
		parse_refused("gate.yaml", text, 2, msg);
	}
	/* the file's directory does not fit the reader's buffer */
	memset(name, 'd', sizeof(name) - 1);
	name[0] = '/';
	snprintf(name + 4100, sizeof(name) - 4100, "/gate.yaml");
	{
		char msg[1024];

		snprintf(msg, sizeof(msg), "%.200s...: the path is too long", name);
		parse_refused(name, L1, 0, msg);
	}
}

static void
test_url_limits(void **state)
{
	struct tg_gate_url u;
	struct tg_error err;
	char s[400], h[300];

	(void)state;
	memset(h, 'a', 255);
	h[255] = '\0';
	snprintf(s, sizeof(s), "http://%s:80", h);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_url_parse(s, 0, &u, &err), 0);
	assert_string_equal(u.host, h);
	assert_string_equal(u.port, "80");
	snprintf(s, sizeof(s), "http://%sa:80", h);
	assert_int_equal(tg_gate_url_parse(s, 0, &u, &err), TG_ERR_CONFIG);
	assert_non_null(strstr(err.msg, ": the host name is longer than 255 bytes; write a URL"));
	assert_int_equal(strncmp(err.msg, "'http://aaaa", 12), 0);
	/* the host alone, defaults for the port */
	assert_int_equal(tg_gate_url_parse("https://api.internal", 0, &u, &err), 0);
	assert_int_equal(u.scheme, TG_GATE_SCHEME_HTTPS);
	assert_string_equal(u.port, "443");
	assert_int_equal(tg_gate_url_parse("http://api.internal/", 0, &u, &err), 0);
	assert_string_equal(u.port, "80");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_good),   cmocka_unit_test(test_check_listeners),
	    cmocka_unit_test(test_check_limits), cmocka_unit_test(test_check_files),
	    cmocka_unit_test(test_check_policy), cmocka_unit_test(test_file_shapes),
	    cmocka_unit_test(test_file_sizes),   cmocka_unit_test(test_url_limits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
