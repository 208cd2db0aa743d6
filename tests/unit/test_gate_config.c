/*
 * test_gate_config.c — the gate's configuration (host/gate/config.c):
 * addresses and URLs, the ghostunnel-style flags (every refusal with its
 * exact message and where it is printed), the checks a start needs, and
 * the YAML file with file-and-line errors.
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

/* A private directory with the files a start needs. */
static char dir[256];
static char p_cert[300], p_key[300], p_ca[300], p_ca2[300], p_policy[300], p_audit[300],
    p_nour[300], p_https[300], p_inject[300], p_secret[300], p_cfg[300];

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

#define POLICY_ROUTE                                                                               \
	"  - name: all\n"                                                                          \
	"    paths: [\"/**\"]\n"                                                                   \
	"    allow:\n"                                                                             \
	"      - identity: \"spiffe://example.org/dev/*\"\n"

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tg-gate-config-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(p_cert, sizeof(p_cert), "%s/server.pem", dir);
	snprintf(p_key, sizeof(p_key), "%s/server.key", dir);
	snprintf(p_ca, sizeof(p_ca), "%s/ca.pem", dir);
	snprintf(p_ca2, sizeof(p_ca2), "%s/ca2.pem", dir);
	snprintf(p_policy, sizeof(p_policy), "%s/policy.yaml", dir);
	snprintf(p_nour, sizeof(p_nour), "%s/policy-named.yaml", dir);
	snprintf(p_https, sizeof(p_https), "%s/policy-https.yaml", dir);
	snprintf(p_inject, sizeof(p_inject), "%s/policy-inject.yaml", dir);
	snprintf(p_secret, sizeof(p_secret), "%s/llm-key", dir);
	snprintf(p_audit, sizeof(p_audit), "%s/audit.log", dir);
	snprintf(p_cfg, sizeof(p_cfg), "%s/gate.yaml", dir);
	write_file(p_cert, "cert\n", 0644);
	write_file(p_key, "key\n", 0600);
	write_file(p_ca, "ca\n", 0644);
	write_file(p_ca2, "ca2\n", 0644);
	write_file(p_policy, "routes:\n" POLICY_ROUTE, 0644);
	write_file(p_nour,
	           "upstreams:\n  api: http://127.0.0.1:8081\nroutes:\n" POLICY_ROUTE
	           "    upstream: api\n",
	           0644);
	write_file(p_https,
	           "upstreams:\n  llm: https://llm.internal\nroutes:\n" POLICY_ROUTE
	           "    upstream: llm\n",
	           0644);
	write_file(p_secret, "sk-test\n", 0600);
	{
		char text[1024];

		snprintf(text, sizeof(text),
		         "routes:\n" POLICY_ROUTE "    inject_headers:\n"
		         "      Authorization: {from: \"file:%s\", prefix: \"Bearer \"}\n"
		         "      X-Org: {from: \"env:TG_TEST_GATE_ORG\"}\n",
		         p_secret);
		write_file(p_inject, text, 0644);
	}
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* What one from_args call did: code, err, stdout and stderr. */
struct run {
	int r, check, help;
	struct tg_error err;
	char out[8192], errout[4096];
	struct tg_gate_config c;
};

static void
slurp(int fd, char *buf, size_t n)
{
	ssize_t got;
	size_t used = 0;

	lseek(fd, 0, SEEK_SET);
	while (used + 1 < n && (got = read(fd, buf + used, n - 1 - used)) > 0)
		used += (size_t)got;
	buf[used] = '\0';
}

/* Runs tg_gate_config_from_args on the NULL-terminated arguments after "gate". */
static void
run(struct run *x, ...)
{
	char *argv[64];
	const char *a;
	int argc = 0, o1, o2, f1, f2;
	va_list ap;
	FILE *tmp1 = tmpfile(), *tmp2 = tmpfile();

	argv[argc++] = (char *)"gate";
	va_start(ap, x);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	assert_non_null(tmp1);
	assert_non_null(tmp2);
	fflush(stdout);
	fflush(stderr);
	o1 = dup(1);
	o2 = dup(2);
	f1 = fileno(tmp1);
	f2 = fileno(tmp2);
	dup2(f1, 1);
	dup2(f2, 2);
	tg_error_clear(&x->err);
	x->r = tg_gate_config_from_args(argc, argv, &x->c, &x->check, &x->help, &x->err);
	fflush(stdout);
	fflush(stderr);
	dup2(o1, 1);
	dup2(o2, 2);
	close(o1);
	close(o2);
	slurp(f1, x->out, sizeof(x->out));
	slurp(f2, x->errout, sizeof(x->errout));
	fclose(tmp1);
	fclose(tmp2);
}

#define GOOD "--listen", "127.0.0.1:8443", "--cert", p_cert, "--key", p_key, "--client-ca", p_ca

static void
test_flags_good(void **state)
{
	struct run x;
	const struct tg_gate_listener_cfg *l;

	(void)state;
	run(&x, GOOD, "--client-ca", p_ca2, "--policy", p_policy, "--audit", p_audit, "--upstream",
	    "http://127.0.0.1:8081", "--admin", "127.0.0.1:9090", NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.r, 0);
	assert_int_equal(x.check, 0);
	assert_int_equal(x.help, 0);
	assert_string_equal(x.errout, "");
	assert_null(x.c.file);
	assert_int_equal(x.c.nlisteners, 1);
	l = &x.c.listeners[0];
	assert_string_equal(l->name, "main");
	assert_string_equal(l->listen, "127.0.0.1:8443");
	assert_int_equal(l->addr.scheme, TG_GATE_SCHEME_TCP);
	assert_string_equal(l->addr.host, "127.0.0.1");
	assert_string_equal(l->addr.port, "8443");
	assert_int_equal(l->mode, TG_GATE_MODE_HTTP);
	assert_string_equal(l->upstream, "http://127.0.0.1:8081");
	assert_int_equal(l->up.scheme, TG_GATE_SCHEME_HTTP);
	assert_string_equal(l->up.port, "8081");
	assert_null(l->policy_file);
	assert_int_equal(l->line, 0);
	assert_string_equal(x.c.cert, p_cert);
	assert_string_equal(x.c.key, p_key);
	assert_int_equal(x.c.nclient_ca, 2);
	assert_string_equal(x.c.client_ca[1], p_ca2);
	assert_string_equal(x.c.policy_file, p_policy);
	assert_string_equal(x.c.audit_file, p_audit);
	assert_string_equal(x.c.admin, "127.0.0.1:9090");
	assert_string_equal(x.c.admin_addr.port, "9090");
	assert_null(x.c.crl);
	assert_null(x.c.tickets);
	assert_int_equal(x.c.audit_fsync, TG_AUDIT_FSYNC_BATCH);
	assert_true(x.c.workers >= 1);
	assert_int_equal(x.c.dry_run, 0);
	assert_int_equal(x.c.limits.header_bytes, 16384);
	assert_int_equal(x.c.limits.header_count, 100);
	assert_int_equal(x.c.limits.request_line, 8192);
	assert_int_equal(x.c.limits.handshake_ms, 10000);
	assert_int_equal(x.c.limits.header_ms, 10000);
	assert_int_equal(x.c.limits.idle_ms, 60000);
	assert_int_equal(x.c.limits.upstream_connect_ms, 5000);
	assert_int_equal(x.c.limits.upstream_ms, 30000);
	assert_int_equal(x.c.limits.max_conns, 4096);
	assert_int_equal(x.c.limits.handshake_failures, 20);
	assert_int_equal(x.c.limits.handshake_failure_ms, 60000);
	assert_int_equal(x.c.limits.upstream_pool, 32);
	tg_gate_config_clear(&x.c);
	assert_int_equal(x.c.nlisteners, 0);
	tg_gate_config_clear(&x.c); /* twice is fine */
	tg_gate_config_clear(NULL);
}

static void
test_flags_overrides(void **state)
{
	struct run x;

	(void)state;
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--upstream", "unix:/run/api.sock",
	    "--dry-run", "--workers", "3", "--audit-fsync", "always", "--check", "--crl", p_ca,
	    "--tickets", p_key, "--mode", "http", NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.r, 0);
	assert_int_equal(x.check, 1);
	assert_int_equal(x.c.dry_run, 1);
	assert_int_equal(x.c.workers, 3);
	assert_int_equal(x.c.audit_fsync, TG_AUDIT_FSYNC_ALWAYS);
	assert_string_equal(x.c.crl, p_ca);
	assert_string_equal(x.c.tickets, p_key);
	assert_int_equal(x.c.listeners[0].up.scheme, TG_GATE_SCHEME_UNIX);
	assert_string_equal(x.c.listeners[0].up.path, "/run/api.sock");
	tg_gate_config_clear(&x.c);
}

static void
test_flags_modes(void **state)
{
	struct run x;

	(void)state;
	/* tcp: the upstream is tcp:// */
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--mode", "tcp", "--upstream",
	    "tcp://127.0.0.1:5432", NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.c.listeners[0].mode, TG_GATE_MODE_TCP);
	assert_int_equal(x.c.listeners[0].up.scheme, TG_GATE_SCHEME_TCP);
	tg_gate_config_clear(&x.c);
	/* authz on a unix socket: no server certificate, no upstream */
	run(&x, "--listen", "unix:/run/tokengate/authz.sock", "--mode", "authz", "--client-ca",
	    p_ca, "--policy", p_policy, "--audit", p_audit, NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.c.listeners[0].mode, TG_GATE_MODE_AUTHZ);
	assert_int_equal(x.c.listeners[0].addr.scheme, TG_GATE_SCHEME_UNIX);
	assert_null(x.c.cert);
	assert_null(x.c.listeners[0].group);
	tg_gate_config_clear(&x.c);
	/* authz on loopback (v4, v6, localhost); a unix socket with its group */
	run(&x, "--listen", "127.0.0.2:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_int_equal(x.r, 0);
	tg_gate_config_clear(&x.c);
	run(&x, "--listen", "[::1]:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_int_equal(x.r, 0);
	tg_gate_config_clear(&x.c);
	run(&x, "--listen", "localhost:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_int_equal(x.r, 0);
	tg_gate_config_clear(&x.c);
	run(&x, "--listen", "unix:/run/tokengate/authz.sock", "--mode", "authz", "--listen-group",
	    "root", "--client-ca", p_ca, "--policy", p_policy, "--audit", p_audit, NULL);
	assert_string_equal(x.err.msg, "");
	assert_string_equal(x.c.listeners[0].group, "root");
	tg_gate_config_clear(&x.c);
	/* the routes name their upstreams: no --upstream needed */
	run(&x, GOOD, "--policy", p_nour, "--audit", p_audit, NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.r, 0);
	tg_gate_config_clear(&x.c);
}

static void
test_help(void **state)
{
	static const char *const flags[] = {"--config FILE",
	                                    "--listen ADDR:PORT",
	                                    "--mode MODE",
	                                    "--cert FILE",
	                                    "--key FILE",
	                                    "--client-ca FILE",
	                                    "--crl FILE",
	                                    "--tickets FILE",
	                                    "--upstream URL",
	                                    "--upstream-ca FILE",
	                                    "--policy FILE",
	                                    "--audit FILE",
	                                    "--audit-fsync MODE",
	                                    "--admin ADDR:PORT",
	                                    "--workers N",
	                                    "--dry-run",
	                                    "--check",
	                                    "-h, --help"};
	struct run x;
	size_t i;

	(void)state;
	run(&x, "--listen", "nonsense", "--help", NULL);
	assert_int_equal(x.r, 0);
	assert_int_equal(x.help, 1);
	assert_string_equal(x.errout, "");
	assert_non_null(strstr(x.out, "usage: tokengate gate --config FILE"));
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strstr(x.out, flags[i]) == NULL)
			fail_msg("--help does not list %s:\n%s", flags[i], x.out);
	/* each default is given */
	assert_non_null(strstr(x.out, "(default: http)"));
	assert_non_null(strstr(x.out, "(default: batch)"));
	assert_non_null(strstr(x.out, "online CPUs, here"));
	assert_non_null(strstr(x.out, "(default: off)"));
	assert_non_null(strstr(x.out, "header_bytes 16384"));
	assert_non_null(strstr(x.out, "upstream_pool 32"));
	assert_non_null(strstr(x.out, "Exit codes: 0"));
	run(&x, "-h", NULL);
	assert_int_equal(x.r, 0);
	assert_int_equal(x.help, 1);
}

/* A usage refusal: TG_ERR_USAGE, err's message, and the same on stderr. */
static void
assert_usage(const struct run *x, const char *msg)
{
	char line[4096];

	assert_int_equal(x->r, TG_ERR_USAGE);
	assert_string_equal(x->err.msg, msg);
	snprintf(line, sizeof(line), "tokengate gate: %s (try 'tokengate gate --help')\n", msg);
	assert_string_equal(x->errout, line);
	assert_int_equal(x->c.nlisteners, 0);
}

static void
test_flags_refused(void **state)
{
	struct run x;

	(void)state;
	run(&x, NULL);
	assert_usage(&x, "missing --listen, --cert, --key, --client-ca, --policy, --audit; a gate "
	                 "needs --listen ADDR:PORT --cert FILE|pkcs11:URI --key FILE|pkcs11:URI "
	                 "--client-ca FILE --policy FILE --audit FILE (and --upstream URL), or "
	                 "--config FILE");
	run(&x, "--listen", "127.0.0.1:8443", "--cert", p_cert, "--mode", "tcp", NULL);
	assert_usage(&x, "missing --key, --client-ca, --policy, --audit, --upstream; a gate "
	                 "needs --listen ADDR:PORT --cert FILE|pkcs11:URI --key FILE|pkcs11:URI "
	                 "--client-ca FILE --policy FILE --audit FILE (and --upstream URL), or "
	                 "--config FILE");
	run(&x, "--listen", "8443", "--cert", p_cert, "--key", p_key, "--client-ca", p_ca,
	    "--policy", p_policy, "--audit", p_audit, NULL);
	assert_usage(&x, "--listen 8443: the port is missing; expected ADDR:PORT such as "
	                 "127.0.0.1:8443, [V6]:PORT such as [::1]:8443, or unix:/PATH (authz "
	                 "mode)");
	/* a bad value is named before the flags that are missing */
	run(&x, "--listen", "8443", NULL);
	assert_usage(&x, "--listen 8443: the port is missing; expected ADDR:PORT such as "
	                 "127.0.0.1:8443, [V6]:PORT such as [::1]:8443, or unix:/PATH (authz "
	                 "mode)");
	run(&x, "--workers", "0", NULL);
	assert_usage(&x, "--workers 0: expected a number of worker threads from 1 to 1024 "
	                 "(default: the number of online CPUs)");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--mode", "grpc", NULL);
	assert_usage(&x, "--mode grpc: expected http, tcp or authz");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--workers", "0", NULL);
	assert_usage(&x, "--workers 0: expected a number of worker threads from 1 to 1024 "
	                 "(default: the number of online CPUs)");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--workers", "2x", NULL);
	assert_usage(&x, "--workers 2x: expected a number of worker threads from 1 to 1024 "
	                 "(default: the number of online CPUs)");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--audit-fsync", "sometimes", NULL);
	assert_usage(&x, "--audit-fsync sometimes: expected always (fsync each record), batch "
	                 "(group commit, the default) or never");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--admin", "9090", NULL);
	assert_usage(&x, "--admin 9090: the port is missing; expected ADDR:PORT such as "
	                 "127.0.0.1:9090");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--admin", "unix:/run/a.sock",
	    NULL);
	assert_usage(&x, "--admin unix:/run/a.sock: the admin listener is TCP; expected "
	                 "ADDR:PORT such as 127.0.0.1:9090");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--upstream", "ftp://x", NULL);
	assert_usage(&x, "--upstream ftp://x: the scheme must be http://, https://, unix: or "
	                 "tcp://; expected a URL such as http://127.0.0.1:8081, "
	                 "https://api.internal:443, unix:/run/api.sock or (tcp mode) "
	                 "tcp://127.0.0.1:5432");
	run(&x, "--config", p_cfg, "--listen", "127.0.0.1:1", "--policy", p_policy, "--dry-run",
	    NULL);
	assert_usage(&x, "--config and --listen, --policy do not mix: with --config FILE every "
	                 "setting comes from the file (only --check, --dry-run, --workers and "
	                 "--audit-fsync may be added); move them into FILE or drop --config");
}

/* tg_cli's own usage errors: printed by it, TG_ERR_USAGE here. */
static void
test_flags_cli_errors(void **state)
{
	struct run x;

	(void)state;
	run(&x, "--target", "http://x", NULL);
	assert_int_equal(x.r, TG_ERR_USAGE);
	assert_string_equal(x.errout, "tokengate gate: unknown option '--target': the gate's name "
	                              "for it is --upstream URL (try 'tokengate gate --help')\n");
	run(&x, "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2", NULL);
	assert_int_equal(x.r, TG_ERR_USAGE);
	assert_string_equal(x.errout, "tokengate gate: option '--listen' is given twice (try "
	                              "'tokengate gate --help')\n");
	run(&x, "--listen", NULL);
	assert_int_equal(x.r, TG_ERR_USAGE);
	assert_string_equal(x.errout, "tokengate gate: option '--listen' needs a value (try "
	                              "'tokengate gate --help')\n");
	run(&x, "extra", NULL);
	assert_int_equal(x.r, TG_ERR_USAGE);
	assert_string_equal(x.errout, "tokengate gate: unexpected argument 'extra' (try "
	                              "'tokengate gate --help')\n");
}

/* A refusal of the checks: TG_ERR_CONFIG, nothing printed (the caller prints). */
static void
assert_config(const struct run *x, const char *msg)
{
	assert_int_equal(x->r, TG_ERR_CONFIG);
	assert_string_equal(x->err.msg, msg);
	assert_string_equal(x->errout, "");
	assert_int_equal(x->c.nlisteners, 0);
}

static void
test_check_files(void **state)
{
	char missing[300], msg[1024], bad_audit[300];
	struct run x;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/nope.pem", dir);
	run(&x, "--listen", "127.0.0.1:8443", "--cert", missing, "--key", p_key, "--client-ca",
	    p_ca, "--policy", p_policy, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	snprintf(msg, sizeof(msg), "--cert: server certificate '%s' does not exist; fix the path",
	         missing);
	assert_config(&x, msg);
	/* the key is a secret: group-readable is refused with the fix */
	assert_int_equal(chmod(p_key, 0640), 0);
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	assert_int_equal(chmod(p_key, 0600), 0);
	snprintf(msg, sizeof(msg),
	         "--key: server key '%s' is readable by others (mode 0640); run 'chmod 600 %s'",
	         p_key, p_key);
	assert_config(&x, msg);
	/* a pkcs11: URI is not a file */
	run(&x, "--listen", "127.0.0.1:8443", "--cert", "pkcs11:token=gate;object=tls", "--key",
	    "pkcs11:token=gate;object=tls", "--client-ca", p_ca, "--policy", p_policy, "--audit",
	    p_audit, "--upstream", "http://127.0.0.1:1", NULL);
	assert_string_equal(x.err.msg, "");
	tg_gate_config_clear(&x.c);
	run(&x, GOOD, "--client-ca", missing, "--policy", p_policy, "--audit", p_audit,
	    "--upstream", "http://127.0.0.1:1", NULL);
	snprintf(msg, sizeof(msg), "--client-ca: client CA '%s' does not exist; fix the path",
	         missing);
	assert_config(&x, msg);
	run(&x, GOOD, "--policy", missing, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	snprintf(msg, sizeof(msg), "--policy: gate policy '%s' does not exist", missing);
	assert_config(&x, msg);
	snprintf(bad_audit, sizeof(bad_audit), "%s/no-such-dir/audit.log", dir);
	run(&x, GOOD, "--policy", p_policy, "--audit", bad_audit, "--upstream",
	    "http://127.0.0.1:1", NULL);
	snprintf(msg, sizeof(msg),
	         "--audit: the directory '%s/no-such-dir' of audit log '%s' does not exist; "
	         "create it or fix the path",
	         dir, bad_audit);
	assert_config(&x, msg);
}

static void
test_check_policy(void **state)
{
	char msg[1024], bad[300];
	struct run x;

	(void)state;
	/* a route without an upstream and no --upstream */
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, NULL);
	snprintf(msg, sizeof(msg),
	         "%s line 2: route 'all' names no upstream and listener 'main' has none; add "
	         "upstream: NAME to the route, or --upstream URL",
	         p_policy);
	assert_config(&x, msg);
	/* a policy with a syntax error: file and line */
	snprintf(bad, sizeof(bad), "%s/bad-policy.yaml", dir);
	write_file(bad, "routes:\n  - name: [\n", 0644);
	run(&x, GOOD, "--policy", bad, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	assert_int_equal(x.r, TG_ERR_CONFIG);
	snprintf(msg, sizeof(msg), "--policy: %s line 3: ", bad);
	assert_memory_equal(x.err.msg, msg, strlen(msg));
	/* https:// upstreams need the CA they are verified against */
	run(&x, GOOD, "--policy", p_https, "--audit", p_audit, NULL);
	assert_config(&x, "the command line: an https:// upstream is verified against the CA "
	                  "certificates of --upstream-ca FILE; add it");
	run(&x, GOOD, "--policy", p_https, "--audit", p_audit, "--upstream-ca", p_ca, NULL);
	assert_string_equal(x.err.msg, "");
	tg_gate_config_clear(&x.c);
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--upstream",
	    "https://api.internal", NULL);
	assert_config(&x, "the command line: an https:// upstream is verified against the CA "
	                  "certificates of --upstream-ca FILE; add it");
}

static void
test_check_secrets(void **state)
{
	struct run x;

	(void)state;
	unsetenv("TG_TEST_GATE_ORG");
	run(&x, GOOD, "--policy", p_inject, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	assert_int_equal(x.r, TG_ERR_CONFIG);
	assert_non_null(strstr(x.err.msg, "route 'all' header X-Org: environment variable "
	                                  "TG_TEST_GATE_ORG is not set"));
	setenv("TG_TEST_GATE_ORG", "org-123", 1);
	run(&x, GOOD, "--policy", p_inject, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.r, 0);
	tg_gate_config_clear(&x.c);
	unsetenv("TG_TEST_GATE_ORG");
}

static void
test_check_modes(void **state)
{
	struct run x;

	(void)state;
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--mode", "tcp", "--upstream",
	    "http://127.0.0.1:1", NULL);
	assert_config(&x, "--upstream http://127.0.0.1:1: mode tcp passes bytes, not HTTP "
	                  "requests; write the upstream as tcp://HOST:PORT or unix:/PATH");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--upstream", "tcp://127.0.0.1:1",
	    NULL);
	assert_config(&x, "--upstream tcp://127.0.0.1:1: mode http forwards HTTP requests; write "
	                  "the upstream as http://, https:// or unix:/PATH (tcp:// is for mode "
	                  "tcp)");
	run(&x, "--listen", "unix:/run/x.sock", "--cert", p_cert, "--key", p_key, "--client-ca",
	    p_ca, "--policy", p_policy, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    NULL);
	assert_config(&x, "--listen unix:/run/x.sock: unix:/PATH listen addresses are for mode "
	                  "authz (nginx auth_request); listen on ADDR:PORT such as 0.0.0.0:8443 "
	                  "or use mode authz");
	run(&x, "--listen", "unix:/run/x.sock", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, "--upstream", "http://127.0.0.1:1", NULL);
	assert_config(&x, "--upstream http://127.0.0.1:1: mode authz only answers nginx's "
	                  "auth_request and forwards nothing; remove the upstream");
	/* authz: loopback or a unix socket only; a group only on a unix socket, and one that exists */
	run(&x, "--listen", "0.0.0.0:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_config(&x, "--listen 0.0.0.0:9000: an authz listener answers with the identity and "
	                  "the route's injected credentials to whoever asks with a certificate "
	                  "(which is public), so it listens on loopback or a unix socket only; run "
	                  "the gate beside nginx and listen on 127.0.0.1:PORT, [::1]:PORT or "
	                  "unix:/PATH");
	run(&x, "--listen", "[::2]:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_int_equal(x.r, TG_ERR_CONFIG);
	run(&x, "--listen", "128.0.0.1:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_int_equal(x.r, TG_ERR_CONFIG);
	run(&x, "--listen", "gate.example:9000", "--mode", "authz", "--client-ca", p_ca, "--policy",
	    p_policy, "--audit", p_audit, NULL);
	assert_int_equal(x.r, TG_ERR_CONFIG);
	run(&x, "--listen", "unix:/run/x.sock", "--mode", "authz", "--listen-group",
	    "no-such-group-tg", "--client-ca", p_ca, "--policy", p_policy, "--audit", p_audit,
	    NULL);
	assert_config(&x, "--listen-group no-such-group-tg: group 'no-such-group-tg' does not "
	                  "exist; create it (groupadd no-such-group-tg) or name the group nginx's "
	                  "worker runs as");
	run(&x, "--listen", "127.0.0.1:9000", "--mode", "authz", "--listen-group", "root",
	    "--client-ca", p_ca, "--policy", p_policy, "--audit", p_audit, NULL);
	assert_config(&x, "--listen-group root: a group is given to a unix socket only (its "
	                  "file's group); listen on unix:/PATH or remove the group");
	run(&x, GOOD, "--policy", p_policy, "--audit", p_audit, "--upstream", "http://127.0.0.1:1",
	    "--admin", "127.0.0.1:8443", NULL);
	assert_config(&x, "--admin 127.0.0.1:8443: listener 'main' uses this address too; give "
	                  "the admin listener its own port");
}

/* A URL's authority as a Host value: brackets for IPv6, localhost for unix. */
static void
test_url_authority(void **state)
{
	static const struct {
		const char *url, *want;
	} cases[] = {
	    {"http://api.internal:8080", "api.internal:8080"},
	    {"https://127.0.0.1", "127.0.0.1:443"},
	    {"https://[::1]:8443", "[::1]:8443"},
	    {"unix:/run/api.sock", "localhost"},
	};
	struct tg_gate_url u;
	struct tg_error err;
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tg_gate_url_parse(cases[i].url, 0, &u, &err), 0);
		assert_int_equal(tg_gate_url_authority(&u, buf, sizeof(buf)),
		                 strlen(cases[i].want));
		assert_string_equal(buf, cases[i].want);
	}
	/* too small: nothing, not a cut value */
	assert_int_equal(tg_gate_url_authority(&u, buf, 5), 0);
	assert_string_equal(buf, "");
}

static void
test_url_parse(void **state)
{
	static const struct {
		const char *s;
		int listen;
		enum tg_gate_scheme scheme;
		const char *host, *port, *path;
	} good[] = {
	    {"127.0.0.1:8443", 1, TG_GATE_SCHEME_TCP, "127.0.0.1", "8443", ""},
	    {"0.0.0.0:1", 1, TG_GATE_SCHEME_TCP, "0.0.0.0", "1", ""},
	    {"[::1]:8443", 1, TG_GATE_SCHEME_TCP, "::1", "8443", ""},
	    {"[::]:65535", 1, TG_GATE_SCHEME_TCP, "::", "65535", ""},
	    {"localhost:80", 1, TG_GATE_SCHEME_TCP, "localhost", "80", ""},
	    {"unix:/run/tokengate/authz.sock", 1, TG_GATE_SCHEME_UNIX, "", "",
	     "/run/tokengate/authz.sock"},
	    {"http://127.0.0.1:8081", 0, TG_GATE_SCHEME_HTTP, "127.0.0.1", "8081", ""},
	    {"http://api.internal", 0, TG_GATE_SCHEME_HTTP, "api.internal", "80", ""},
	    {"http://api.internal/", 0, TG_GATE_SCHEME_HTTP, "api.internal", "80", ""},
	    {"https://llm.internal", 0, TG_GATE_SCHEME_HTTPS, "llm.internal", "443", ""},
	    {"https://[2001:db8::1]:8443", 0, TG_GATE_SCHEME_HTTPS, "2001:db8::1", "8443", ""},
	    {"tcp://db.internal:5432", 0, TG_GATE_SCHEME_TCP, "db.internal", "5432", ""},
	    {"unix:/run/api.sock", 0, TG_GATE_SCHEME_UNIX, "", "", "/run/api.sock"},
	};
	static const struct {
		const char *s;
		int listen;
		const char *why;
	} bad[] = {
	    {"", 1, "it is empty"},
	    {"8443", 1, "the port is missing"},
	    {":8443", 1, "the address before ':' is missing"},
	    {"127.0.0.1:0", 1, "the port must be a number from 1 to 65535"},
	    {"127.0.0.1:65536", 1, "the port must be a number from 1 to 65535"},
	    {"127.0.0.1:-1", 1, "the port must be a number from 1 to 65535"},
	    {"127.0.0.1:", 1, "the port after ':' is missing"},
	    {"::1:8443", 1, "an IPv6 address goes in brackets, as in [::1]:8443"},
	    {"[::1:8443", 1, "'[' without ']' around the IPv6 address"},
	    {"[nope]:1", 1, "the address in brackets is not an IPv6 address"},
	    {"[::1]8443", 1, "after ']' comes ':' and the port"},
	    {"http://127.0.0.1:1", 1, "a listen address has no scheme"},
	    {"127.0.0.1:1/x", 1, "a listen address has no path"},
	    {"ho st:1", 1, "the host may hold only letters, digits, '.', '-' and '_'"},
	    {"unix:run/x", 1, "a unix socket path must be absolute (unix:/PATH)"},
	    {"unix:/", 0, "the unix socket path is empty"},
	    {"unix:/"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaa",
	     0, "the unix socket path is longer than 107 bytes"},
	    {"http://x:1/v1", 0, "the gate forwards each request's own path"},
	    {"http://x:1?q", 0, "the gate forwards each request's own path"},
	    {"http://user:pw@x:1", 0, "user information ('user@') is not allowed"},
	    {"tcp://x", 0, "the port is missing"},
	    {"x:1", 0, "the scheme must be http://, https://, unix: or tcp://"},
	};
	struct tg_gate_url u;
	struct tg_error err;
	char want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		tg_error_clear(&err);
		if (tg_gate_url_parse(good[i].s, good[i].listen, &u, &err) != 0)
			fail_msg("'%s' refused: %s", good[i].s, err.msg);
		assert_int_equal(u.scheme, good[i].scheme);
		assert_string_equal(u.host, good[i].host);
		assert_string_equal(u.port, good[i].port);
		assert_string_equal(u.path, good[i].path);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tg_error_clear(&err);
		if (tg_gate_url_parse(bad[i].s, bad[i].listen, &u, &err) != TG_ERR_CONFIG)
			fail_msg("'%s' accepted", bad[i].s);
		snprintf(want, sizeof(want), "'%.200s' is not %s: %s", bad[i].s,
		         bad[i].listen ? "a listen address" : "an upstream URL", bad[i].why);
		if (strncmp(err.msg, want, strlen(want)) != 0)
			fail_msg("'%s': got \"%s\", want \"%s...\"", bad[i].s, err.msg, want);
		assert_non_null(strstr(err.msg, "; write "));
	}
}

/* dir/gate.yaml with text; its path into p_cfg. */
static void
cfg(const char *text)
{
	write_file(p_cfg, text, 0644);
}

/* The example of tg_gate_config.h, with relative paths into dir. */
#define FULL                                                                                       \
	"listeners:\n"                                                                             \
	"  - name: api\n"                                                                          \
	"    listen: 0.0.0.0:8443\n"                                                               \
	"    mode: http\n"                                                                         \
	"    upstream: http://127.0.0.1:8081\n"                                                    \
	"  - listen: \"[::1]:5433\"\n"                                                             \
	"    mode: tcp\n"                                                                          \
	"    upstream: tcp://127.0.0.1:5432\n"                                                     \
	"    policy: policy-named.yaml\n"                                                          \
	"  - name: authz\n"                                                                        \
	"    listen: unix:/run/tokengate/authz.sock\n"                                             \
	"    mode: authz\n"                                                                        \
	"tls:\n"                                                                                   \
	"  cert: server.pem\n"                                                                     \
	"  key: server.key\n"                                                                      \
	"  client_ca: [ca.pem, ca2.pem]\n"                                                         \
	"  crl: ca.pem\n"                                                                          \
	"  tickets: server.key\n"                                                                  \
	"upstream_ca: ca.pem\n"                                                                    \
	"policy: policy.yaml\n"                                                                    \
	"audit: {file: audit.log, fsync: always}\n"                                                \
	"admin: 127.0.0.1:9090\n"                                                                  \
	"workers: 3\n"                                                                             \
	"dry_run: true\n"                                                                          \
	"limits: {header_bytes: 32768, header_count: 50, request_line: 4096,\n"                    \
	"         handshake_ms: 5000, header_ms: 7000, idle_ms: 30000,\n"                          \
	"         upstream_connect_ms: 2000, upstream_ms: 60000, max_conns: 100,\n"                \
	"         upstream_pool: 4, handshake_failures: 7, handshake_failure_ms: 1500}\n"

static void
test_file_full(void **state)
{
	struct run x;
	char want[400];
	const struct tg_gate_listener_cfg *l;

	(void)state;
	cfg(FULL);
	run(&x, "--config", p_cfg, NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.r, 0);
	assert_string_equal(x.c.file, p_cfg);
	assert_int_equal(x.c.nlisteners, 3);
	l = &x.c.listeners[0];
	assert_string_equal(l->name, "api");
	assert_int_equal(l->line, 2);
	assert_string_equal(l->addr.host, "0.0.0.0");
	assert_int_equal(l->mode, TG_GATE_MODE_HTTP);
	assert_string_equal(l->upstream, "http://127.0.0.1:8081");
	assert_null(l->policy_file);
	l = &x.c.listeners[1];
	assert_string_equal(l->name, "listener1"); /* the default name */
	assert_int_equal(l->line, 6);
	assert_string_equal(l->addr.host, "::1");
	assert_int_equal(l->mode, TG_GATE_MODE_TCP);
	assert_int_equal(l->up.scheme, TG_GATE_SCHEME_TCP);
	assert_string_equal(l->policy_file, p_nour); /* relative to the file's directory */
	l = &x.c.listeners[2];
	assert_int_equal(l->mode, TG_GATE_MODE_AUTHZ);
	assert_string_equal(l->addr.path, "/run/tokengate/authz.sock");
	assert_null(l->group);
	assert_string_equal(x.c.cert, p_cert);
	assert_int_equal(x.c.line.cert, 14);
	assert_string_equal(x.c.key, p_key);
	assert_int_equal(x.c.nclient_ca, 2);
	assert_string_equal(x.c.client_ca[0], p_ca);
	assert_string_equal(x.c.client_ca[1], p_ca2);
	assert_string_equal(x.c.crl, p_ca);
	assert_string_equal(x.c.tickets, p_key);
	assert_string_equal(x.c.upstream_ca, p_ca);
	assert_string_equal(x.c.policy_file, p_policy);
	snprintf(want, sizeof(want), "%s/audit.log", dir);
	assert_string_equal(x.c.audit_file, want);
	assert_int_equal(x.c.line.audit, 21);
	assert_int_equal(x.c.audit_fsync, TG_AUDIT_FSYNC_ALWAYS);
	assert_string_equal(x.c.admin, "127.0.0.1:9090");
	assert_int_equal(x.c.workers, 3);
	assert_int_equal(x.c.dry_run, 1);
	assert_int_equal(x.c.limits.header_bytes, 32768);
	assert_int_equal(x.c.limits.header_count, 50);
	assert_int_equal(x.c.limits.request_line, 4096);
	assert_int_equal(x.c.limits.handshake_ms, 5000);
	assert_int_equal(x.c.limits.header_ms, 7000);
	assert_int_equal(x.c.limits.idle_ms, 30000);
	assert_int_equal(x.c.limits.upstream_connect_ms, 2000);
	assert_int_equal(x.c.limits.upstream_ms, 60000);
	assert_int_equal(x.c.limits.max_conns, 100);
	assert_int_equal(x.c.limits.upstream_pool, 4);
	assert_int_equal(x.c.limits.handshake_failures, 7);
	assert_int_equal(x.c.limits.handshake_failure_ms, 1500);
	tg_gate_config_clear(&x.c);
	/* --dry-run, --workers, --audit-fsync and --check may be added */
	run(&x, "--config", p_cfg, "--workers", "7", "--audit-fsync", "never", "--check", NULL);
	assert_string_equal(x.err.msg, "");
	assert_int_equal(x.check, 1);
	assert_int_equal(x.c.workers, 7);
	assert_int_equal(x.c.audit_fsync, TG_AUDIT_FSYNC_NEVER);
	tg_gate_config_clear(&x.c);
}

static void
test_file_minimal(void **state)
{
	struct run x;
	struct tg_error err;
	struct tg_gate_config c;
	char text[2048];

	(void)state;
	/* absolute paths; the defaults for everything else */
	snprintf(text, sizeof(text),
	         "listeners:\n"
	         "  - {listen: 127.0.0.1:8443, upstream: \"http://127.0.0.1:8081\"}\n"
	         "tls: {cert: %s, key: %s, client_ca: %s}\n"
	         "policy: %s\n"
	         "audit: {file: %s}\n",
	         p_cert, p_key, p_ca, p_policy, p_audit);
	cfg(text);
	run(&x, "--config", p_cfg, NULL);
	assert_string_equal(x.err.msg, "");
	assert_string_equal(x.c.listeners[0].name, "listener0");
	assert_int_equal(x.c.nclient_ca, 1); /* one file without brackets */
	assert_int_equal(x.c.audit_fsync, TG_AUDIT_FSYNC_BATCH);
	assert_int_equal(x.c.dry_run, 0);
	assert_int_equal(x.c.limits.max_conns, 4096);
	tg_gate_config_clear(&x.c);
	/* tg_gate_config_load alone does not run the checks */
	cfg("listeners: [{listen: 127.0.0.1:1}]\n");
	tg_error_clear(&err);
	assert_int_equal(tg_gate_config_load(p_cfg, &c, &err), 0);
	assert_int_equal(c.nlisteners, 1);
	tg_gate_config_clear(&c);
}

/* A refusal of the file: TG_ERR_CONFIG with "gate.yaml line N: ..." */
static void
file_refused(const char *text, unsigned line, const char *msg)
{
	struct run x;
	char want[2048];

	cfg(text);
	run(&x, "--config", p_cfg, NULL);
	if (line > 0)
		snprintf(want, sizeof(want), "%s line %u: %s", p_cfg, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", p_cfg, msg);
	if (x.r != TG_ERR_CONFIG || strcmp(x.err.msg, want) != 0)
		fail_msg("%s\ngot %d \"%s\"\nwant \"%s\"", text, x.r, x.err.msg, want);
	assert_string_equal(x.errout, "");
	assert_int_equal(x.c.nlisteners, 0);
}

#define L1 "listeners: [{listen: 127.0.0.1:8443}]\n"

static void
test_file_refused(void **state)
{
	(void)state;
	file_refused("", 0,
	             "the configuration is empty; add at least listeners: [{listen: "
	             "0.0.0.0:8443, upstream: http://127.0.0.1:8081}]");
	file_refused("workers: 2\n", 1,
	             "no 'listeners'; add listeners: [{listen: 0.0.0.0:8443, upstream: "
	             "http://127.0.0.1:8081}]");
	file_refused(L1 "listen: 127.0.0.1:1\n", 2,
	             "unknown key 'listen' in the gate configuration; remove it or fix its "
	             "spelling (known: listeners, tls, upstream_ca, policy, audit, admin, workers, "
	             "dry_run, limits)");
	file_refused(L1 "workers: 2\nworkers: 3\n", 3,
	             "key 'workers' appears twice in the gate configuration (first at line 2); "
	             "keep one");
	file_refused(L1 "tls:\n  cert: a\n  certificate: b\n", 4,
	             "unknown key 'certificate' in 'tls'; remove it or fix its spelling (known: "
	             "cert, key, client_ca, crl, tickets)");
	file_refused("listeners:\n  - listen: 127.0.0.1:1\n    upstreams: http://x\n", 3,
	             "unknown key 'upstreams' in a listener; remove it or fix its spelling (known: "
	             "name, listen, mode, upstream, policy, group)");
	file_refused("listeners:\n  - listen: unix:/x.sock\n    mode: authz\n    group: [a]\n", 4,
	             "'group' must be the name of a group, like www-data");
	file_refused("listeners:\n  - listen: unix:/x.sock\n    mode: authz\n    group: nope-tg\n",
	             2,
	             "listener 'listener0': group 'nope-tg' does not exist; create it (groupadd "
	             "nope-tg) or name the group nginx's worker runs as");
	file_refused(
	    "listeners:\n  - listen: 192.0.2.1:80\n    mode: authz\n", 2,
	    "listener 'listener0': an authz listener answers with the identity and the "
	    "route's injected credentials to whoever asks with a certificate (which is "
	    "public), so it listens on loopback or a unix socket only; run the gate beside "
	    "nginx and listen on 127.0.0.1:PORT, [::1]:PORT or unix:/PATH");
	file_refused("listeners:\n  - name: api\n", 2,
	             "listener 'api' has no 'listen'; add listen: ADDR:PORT such as 0.0.0.0:8443");
	file_refused("listeners:\n  - listen: 8443\n", 2,
	             "listen '8443': the port is missing; write ADDR:PORT such as 127.0.0.1:8443, "
	             "[V6]:PORT such as [::1]:8443, or unix:/PATH (authz mode)");
	file_refused("listeners:\n  - listen: 127.0.0.1:1\n    upstream: http://x/v1\n", 3,
	             "upstream 'http://x/v1': the gate forwards each request's own path, so an "
	             "upstream URL has no path, query or fragment; write a URL such as "
	             "http://127.0.0.1:8081, https://api.internal:443, unix:/run/api.sock or "
	             "(tcp mode) tcp://127.0.0.1:5432");
	file_refused("listeners:\n  - listen: 127.0.0.1:1\n    mode: grpc\n", 3,
	             "'mode' must be http, tcp or authz (given: 'grpc')");
	file_refused("listeners:\n  - {name: 'a b', listen: 127.0.0.1:1}\n", 2,
	             "a listener's 'name' must be 1 to 64 letters, digits, '.', '-' or '_' "
	             "(given: 'a b')");
	file_refused("listeners: []\n", 1,
	             "'listeners' must be a non-empty list like [{listen: 0.0.0.0:8443, upstream: "
	             "http://127.0.0.1:8081}]");
	file_refused("listeners: 127.0.0.1:1\n", 1,
	             "'listeners' must be a non-empty list like [{listen: 0.0.0.0:8443, upstream: "
	             "http://127.0.0.1:8081}]");
	file_refused(L1 "limits: {header_bytes: 0}\n", 2,
	             "'limits.header_bytes' must be a whole number from 1 to 1048576 (given: '0')");
	file_refused(L1 "limits: {idle_ms: -5}\n", 2,
	             "'limits.idle_ms' must be a whole number from 1 to 86400000 (given: '-5')");
	file_refused(L1 "limits: {max_conns: 99999999999}\n", 2,
	             "'limits.max_conns' must be a whole number from 1 to 1000000 (given: "
	             "'99999999999')");
	file_refused(L1 "limits: {handshake_failures: 0}\n", 2,
	             "'limits.handshake_failures' must be a whole number from 1 to 1000000 (given: "
	             "'0')");
	file_refused(L1 "limits: {max_connections: 5}\n", 2,
	             "unknown key 'max_connections' in 'limits'; remove it or fix its spelling "
	             "(known: header_bytes, header_count, request_line, handshake_ms, header_ms, "
	             "idle_ms, upstream_connect_ms, upstream_ms, max_conns, upstream_pool, "
	             "handshake_failures, handshake_failure_ms)");
	file_refused(L1 "workers: 0\n", 2,
	             "'workers' must be a whole number from 1 to 1024 (given: '0')");
	file_refused(L1 "workers: many\n", 2,
	             "'workers' must be a whole number from 1 to 1024 (given: 'many')");
	file_refused(L1 "dry_run: yes\n", 2, "'dry_run' must be true or false (given: 'yes')");
	file_refused(L1 "audit: /var/log/a.log\n", 2,
	             "'audit' must be a mapping like {file: /var/log/tokengate/audit.log, fsync: "
	             "batch}");
	file_refused(L1 "audit: {fsync: always}\n", 2,
	             "'audit' has no 'file'; add file: /var/log/tokengate/audit.log");
	file_refused(L1 "audit: {file: a.log, fsync: sometimes}\n", 2,
	             "'fsync' must be always (fsync each record), batch (group commit, the "
	             "default) or never (given: 'sometimes')");
	file_refused(L1 "tls: {client_ca: []}\n", 2,
	             "'client_ca' must name at least one CA certificate file, like "
	             "[/etc/tokengate/ca.pem]");
	file_refused(L1 "tls: {cert: [a, b]}\n", 2,
	             "'cert' must be one line of text, not a list or mapping");
	file_refused(L1 "policy: \"\"\n", 2, "'policy' must be one line of text, not empty");
	file_refused(L1 "admin: unix:/run/admin.sock\n", 2,
	             "admin unix:/run/admin.sock: the admin listener serves plain HTTP on "
	             "ADDR:PORT such as 127.0.0.1:9090");
	file_refused("listeners:\n  - listen: [::1]:8443\n", 2,
	             "did not find expected node content while parsing a flow node; fix the YAML "
	             "syntax (an IPv6 address in brackets must be quoted in YAML: listen: "
	             "\"[::1]:8443\")");
	file_refused("listeners: [\n", 2,
	             "did not find expected node content while parsing a flow node; fix the YAML "
	             "syntax");
}

/* The checks name the file and the line of the setting. */
static void
test_file_checks(void **state)
{
	char text[2048], want[1024];
	struct run x;

	(void)state;
	snprintf(text, sizeof(text),
	         "listeners:\n"
	         "  - {name: a, listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}\n"
	         "  - {name: b, listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}\n"
	         "tls: {cert: %s, key: %s, client_ca: %s}\n"
	         "policy: %s\naudit: {file: %s}\n",
	         p_cert, p_key, p_ca, p_policy, p_audit);
	file_refused(text, 3,
	             "listener 'b': listens on 127.0.0.1:8443 like listener 'a' (line 2); give "
	             "each listener its own address");
	snprintf(text, sizeof(text),
	         "listeners:\n"
	         "  - {name: a, listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}\n"
	         "  - {name: a, listen: 127.0.0.1:8444, upstream: http://127.0.0.1:1}\n"
	         "tls: {cert: %s, key: %s, client_ca: %s}\n"
	         "policy: %s\naudit: {file: %s}\n",
	         p_cert, p_key, p_ca, p_policy, p_audit);
	file_refused(text, 3,
	             "listener 'a': the name is used twice (first at line 2); give each listener "
	             "its own name");
	snprintf(text, sizeof(text),
	         "listeners: [{listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}]\n"
	         "tls:\n"
	         "  cert: nope.pem\n"
	         "  key: %s\n"
	         "  client_ca: %s\n"
	         "policy: %s\naudit: {file: %s}\n",
	         p_key, p_ca, p_policy, p_audit);
	snprintf(want, sizeof(want),
	         "tls.cert: server certificate '%s/nope.pem' does not exist; fix the path", dir);
	file_refused(text, 3, want);
	snprintf(text, sizeof(text),
	         "listeners: [{listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}]\n"
	         "tls: {key: %s, client_ca: %s}\n"
	         "policy: %s\naudit: {file: %s}\n",
	         p_key, p_ca, p_policy, p_audit);
	file_refused(text, 0,
	             "no server certificate; add tls: {cert: FILE} (a PEM file or a pkcs11: URI)");
	snprintf(text, sizeof(text),
	         "listeners: [{listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}]\n"
	         "tls: {cert: %s, key: %s, client_ca: %s}\n"
	         "audit: {file: %s}\n",
	         p_cert, p_key, p_ca, p_audit);
	file_refused(text, 1,
	             "listener 'listener0' has no policy; add policy: FILE to it, or a top-level "
	             "policy: FILE");
	snprintf(text, sizeof(text),
	         "listeners: [{listen: 127.0.0.1:8443}]\n"
	         "tls: {cert: %s, key: %s, client_ca: %s}\n"
	         "policy: %s\naudit: {file: %s}\n",
	         p_cert, p_key, p_ca, p_policy, p_audit);
	cfg(text);
	run(&x, "--config", p_cfg, NULL);
	snprintf(want, sizeof(want),
	         "%s line 2: route 'all' names no upstream and listener 'listener0' has none; add "
	         "upstream: NAME to the route, or upstream: URL to the listener",
	         p_policy);
	assert_string_equal(x.err.msg, want);
	snprintf(text, sizeof(text),
	         "listeners: [{listen: 127.0.0.1:8443, upstream: http://127.0.0.1:1}]\n"
	         "tls: {cert: %s, key: %s, client_ca: %s}\n"
	         "policy: %s\naudit: {file: %s}\n"
	         "limits: {request_line: 20000}\n",
	         p_cert, p_key, p_ca, p_policy, p_audit);
	file_refused(text, 5,
	             "limits: request_line (20000) is larger than header_bytes (16384), which "
	             "counts the request line too; raise header_bytes or lower request_line");
}

static void
test_file_itself(void **state)
{
	char missing[300], want[1024];
	struct run x;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/none.yaml", dir);
	run(&x, "--config", missing, NULL);
	assert_int_equal(x.r, TG_ERR_NOT_FOUND);
	snprintf(want, sizeof(want), "gate configuration '%s' does not exist", missing);
	assert_string_equal(x.err.msg, want);
	/* others could change what it holds */
	write_file(p_cfg, L1, 0666);
	run(&x, "--config", p_cfg, NULL);
	assert_int_equal(x.r, TG_ERR_PERMISSION);
	snprintf(want, sizeof(want),
	         "gate configuration '%s' is writable by group and others (mode 0666), so they "
	         "could change what it holds; run 'chmod go-w %s'",
	         p_cfg, p_cfg);
	assert_string_equal(x.err.msg, want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_parse),     cmocka_unit_test(test_url_authority),
	    cmocka_unit_test(test_flags_good),    cmocka_unit_test(test_flags_overrides),
	    cmocka_unit_test(test_flags_modes),   cmocka_unit_test(test_help),
	    cmocka_unit_test(test_flags_refused), cmocka_unit_test(test_flags_cli_errors),
	    cmocka_unit_test(test_check_files),   cmocka_unit_test(test_check_policy),
	    cmocka_unit_test(test_check_secrets), cmocka_unit_test(test_check_modes),
	    cmocka_unit_test(test_file_full),     cmocka_unit_test(test_file_minimal),
	    cmocka_unit_test(test_file_refused),  cmocka_unit_test(test_file_checks),
	    cmocka_unit_test(test_file_itself),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
