/*
 * test_agent_config.c — the agent's configuration (host/agent/config.c):
 * the flags (every refusal with its code and message), the loopback rule
 * and its opt-in, and the YAML file (defaults inherited by listeners,
 * relative paths, refusals with file and line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_agent_config.h"

#define KEY "pkcs11:token=alice;object=api?pin-source=file:/run/pin"
#define UP  "https://gate.example:8443"

/* Runs `tokengate agent ARGS...` (NULL-terminated); returns the code. */
static int
args_run(struct tg_agent_config *c, struct tg_error *err, int *check, ...)
{
	char *argv[40];
	int argc = 0, help = 0, dummy = 0;
	va_list ap;
	char *a;

	argv[argc++] = (char *)"agent";
	va_start(ap, check);
	while ((a = va_arg(ap, char *)) != NULL && argc < 39)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	tg_error_clear(err);
	return tg_agent_config_from_args(argc, argv, c, check != NULL ? check : &dummy, &help, err);
}

#define RUN(c, err, ...) args_run(c, err, NULL, __VA_ARGS__, (char *)NULL)

static void
expect(int got, int want, const struct tg_error *err, const char *text)
{
	if (got != want || (text != NULL && strstr(err->msg, text) == NULL))
		fail_msg("got %d '%s', want %d with '%s'", got, err->msg, want, text ? text : "");
}

static void
test_flags_ok(void **state)
{
	struct tg_agent_config c;
	struct tg_error err;
	int check = 0;

	(void)state;
	assert_int_equal(args_run(&c, &err, &check, "--listen", "127.0.0.1:8080", "--upstream", UP,
	                          "--key", KEY, "--ca", "/etc/ca.pem", "--check", (char *)NULL),
	                 0);
	assert_int_equal(check, 1);
	assert_int_equal(c.nlisteners, 1);
	assert_string_equal(c.listeners[0].name, "main");
	assert_int_equal(c.listeners[0].mode, TG_AGENT_MODE_HTTP);
	assert_int_equal(c.listeners[0].up.scheme, TG_GATE_SCHEME_HTTPS);
	assert_string_equal(c.listeners[0].up.port, "8443");
	assert_null(c.listeners[0].cert);
	tg_agent_config_clear(&c);
	/* unix socket, tcp mode, server id, admin */
	assert_int_equal(RUN(&c, &err, "--listen", "unix:/run/agent.sock", "--upstream", UP,
	                     "--key", KEY, "--ca", "/etc/ca.pem", "--mode", "tcp", "--server-id",
	                     "spiffe://example.org/svc/gate", "--admin", "127.0.0.1:9091"),
	                 0);
	assert_int_equal(c.listeners[0].addr.scheme, TG_GATE_SCHEME_UNIX);
	assert_string_equal(c.listeners[0].addr.path, "/run/agent.sock");
	assert_int_equal(c.listeners[0].mode, TG_AGENT_MODE_TCP);
	assert_string_equal(c.admin_addr.port, "9091");
	tg_agent_config_clear(&c);
}

/* The plaintext side stays on loopback unless --allow-remote. */
static void
test_loopback(void **state)
{
	static const struct {
		const char *addr;
		int ok;
	} tab[] = {
	    {"127.0.0.1:1", 1},
	    {"127.9.9.9:1", 1},
	    {"[::1]:1", 1},
	    {"localhost:1", 1},
	    {"[::ffff:127.0.0.1]:1", 1},
	    {"0.0.0.0:1", 0},
	    {"10.0.0.1:1", 0},
	    {"[::]:1", 0},
	    {"192.168.1.10:1", 0},
	    {"[::ffff:10.0.0.1]:1", 0},
	    {"128.0.0.1:1", 0},
	    {"example.org:1", 0},
	};
	struct tg_agent_config c;
	struct tg_error err;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		r = RUN(&c, &err, "--listen", tab[i].addr, "--upstream", UP, "--key", KEY, "--ca",
		        "/etc/ca.pem");
		if (tab[i].ok)
			expect(r, 0, &err, NULL);
		else
			expect(r, TG_ERR_CONFIG, &err, "--allow-remote");
		tg_agent_config_clear(&c);
		/* the opt-in lets every one of them through */
		r = RUN(&c, &err, "--listen", tab[i].addr, "--upstream", UP, "--key", KEY, "--ca",
		        "/etc/ca.pem", "--allow-remote");
		expect(r, 0, &err, NULL);
		tg_agent_config_clear(&c);
	}
}

static void
test_flags_refused(void **state)
{
	struct tg_agent_config c;
	struct tg_error err;

	(void)state;
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1"), TG_ERR_USAGE, &err,
	       "missing --upstream, --key, --ca");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", "http://gate:80", "--key",
	           KEY, "--ca", "/c"),
	       TG_ERR_CONFIG, &err, "is not https://");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key",
	           "/home/a/key.pem", "--ca", "/c"),
	       TG_ERR_CONFIG, &err, "must be a pkcs11: URI");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--server-id", "https://gate"),
	       TG_ERR_CONFIG, &err, "is not a spiffe:// URI");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--server-id", "spiffe://e/svc/g", "--server-name", "gate"),
	       TG_ERR_CONFIG, &err, "not both");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--mode", "tcp", "--host", "api"),
	       TG_ERR_CONFIG, &err, "mode tcp passes bytes");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--mode", "udp"),
	       TG_ERR_USAGE, &err, "is not http or tcp");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--host", "a b"),
	       TG_ERR_USAGE, &err, "is not a host name");
	expect(RUN(&c, &err, "--listen", "unix:rel.sock", "--upstream", UP, "--key", KEY, "--ca",
	           "/c"),
	       TG_ERR_USAGE, &err, "--listen");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:99999", "--upstream", UP, "--key", KEY, "--ca",
	           "/c"),
	       TG_ERR_USAGE, &err, "--listen");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--admin", "unix:/a"),
	       TG_ERR_CONFIG, &err, "plain HTTP on ADDR:PORT");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY, "--ca",
	           "/c", "--admin", "127.0.0.1:1"),
	       TG_ERR_CONFIG, &err, "its own port");
	expect(RUN(&c, &err, "--config", "/x.yaml", "--listen", "127.0.0.1:1"), TG_ERR_USAGE, &err,
	       "--config and --listen do not mix");
	expect(RUN(&c, &err, "--pin", "1234"), TG_ERR_USAGE, &err, "bad command line");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"), TG_ERR_USAGE,
	       &err, "bad command line");
	expect(RUN(&c, &err, "stray"), TG_ERR_USAGE, &err, "bad command line");
}

static int
parse(const char *text, struct tg_agent_config *c, struct tg_error *err)
{
	tg_error_clear(err);
	return tg_agent_config_parse(text, strlen(text), "/etc/tokengate/agent.yaml", c, err);
}

#define TOP                                                                                        \
	"upstream: " UP "\n"                                                                       \
	"key: \"" KEY "\"\n"                                                                       \
	"ca: gate-ca.pem\n"

static void
test_yaml_ok(void **state)
{
	struct tg_agent_config c;
	struct tg_error err;

	(void)state;
	expect(parse(TOP "admin: 127.0.0.1:9091\n"
	                 "listeners:\n"
	                 "  - listen: 127.0.0.1:8080\n"
	                 "  - name: raw\n"
	                 "    listen: unix:/run/a.sock\n"
	                 "    mode: tcp\n"
	                 "    key: \"pkcs11:token=bob;object=b\"\n"
	                 "    cert: /etc/b.pem\n"
	                 "    server_name: gate.internal\n",
	             &c, &err),
	       0, &err, NULL);
	assert_int_equal(c.nlisteners, 2);
	assert_string_equal(c.listeners[0].name, "listener0");
	assert_string_equal(c.listeners[0].key, KEY);
	assert_string_equal(c.listeners[0].ca, "/etc/tokengate/gate-ca.pem");
	assert_int_equal(c.listeners[0].up.scheme, TG_GATE_SCHEME_HTTPS);
	assert_int_equal(c.listeners[0].mode, TG_AGENT_MODE_HTTP);
	assert_int_equal(c.listeners[0].line, 6);
	assert_string_equal(c.listeners[1].name, "raw");
	assert_int_equal(c.listeners[1].mode, TG_AGENT_MODE_TCP);
	assert_string_equal(c.listeners[1].key, "pkcs11:token=bob;object=b");
	assert_string_equal(c.listeners[1].cert, "/etc/b.pem");
	assert_string_equal(c.listeners[1].server_name, "gate.internal");
	assert_string_equal(c.listeners[1].ca, "/etc/tokengate/gate-ca.pem");
	assert_string_equal(c.admin, "127.0.0.1:9091");
	tg_agent_config_clear(&c);
}

static void
test_yaml_refused(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} tab[] = {
	    {TOP "listeners:\n  - listen: 0.0.0.0:8080\n",
	     "agent.yaml line 5: listener 'listener0': 0.0.0.0:8080 is not a loopback address"},
	    {TOP "listeners:\n  - listen: 0.0.0.0:8080\n", "allow_remote: true"},
	    {TOP "listeners:\n  - listen: 127.0.0.1:1\n    colour: red\n",
	     "line 6: unknown key 'colour' in a listener"},
	    {TOP "listenrs: []\n", "line 4: unknown key 'listenrs' in the file"},
	    {TOP "ca: again.pem\nlisteners:\n  - listen: 127.0.0.1:1\n",
	     "line 4: 'ca' is given twice in the file"},
	    {TOP "listeners:\n  - listen: [127.0.0.1:1\n",
	     "agent.yaml line 6: did not find expected"},
	    {TOP "listeners: []\n", "line 4: listeners: must be a non-empty list"},
	    {TOP "admin: 127.0.0.1:9\n", "no listeners:"},
	    {TOP "admin: 1\n", "line 4: admin: '1' is not a listen address"},
	    {TOP "listeners:\n  - listen: 127.0.0.1:1\n  - listen: 127.0.0.1:1\n",
	     "listens on 127.0.0.1:1 like listener 'listener0'"},
	    {TOP "listeners:\n  - {name: a, listen: 127.0.0.1:1}\n  - {name: a, listen: "
	         "127.0.0.1:2}\n",
	     "the name is used twice"},
	    {TOP "listeners:\n  - {name: 'a b', listen: 127.0.0.1:1}\n", "line 5: name 'a b'"},
	    {TOP "listeners:\n  - {listen: 127.0.0.1:1, mode: udp}\n", "line 5: mode: mode 'udp'"},
	    {TOP "listeners:\n  - {listen: 127.0.0.1:1, allow_remote: yes}\n",
	     "allow_remote 'yes' is not true or false"},
	    {TOP "listeners:\n  - {listen: [a, b]}\n", "'listen' must be a single value"},
	    {TOP "listeners:\n  - 127.0.0.1:1\n", "a listener is a map"},
	    {"listeners:\n  - listen: 127.0.0.1:1\n", "no upstream; add upstream:"},
	    {"upstream: " UP "\nlisteners:\n  - listen: 127.0.0.1:1\n", "no key; add key:"},
	    {"upstream: " UP "\nkey: /k.pem\nca: c\nlisteners:\n  - listen: 127.0.0.1:1\n",
	     "must be a pkcs11: URI"},
	    {TOP "admin: unix:/a\nlisteners:\n  - listen: 127.0.0.1:1\n", "line 4: admin"},
	    {"- a\n- b\n", "must be a map"},
	    {"", "must be a map"},
	};
	struct tg_agent_config c;
	struct tg_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		expect(parse(tab[i].text, &c, &err), TG_ERR_CONFIG, &err, tab[i].want);
		assert_int_equal(c.nlisteners, 0); /* cleared on failure */
	}
	/* allow_remote: true lets it through, from the top level too */
	expect(parse(TOP "allow_remote: true\nlisteners:\n  - listen: 0.0.0.0:8080\n", &c, &err), 0,
	       &err, NULL);
	tg_agent_config_clear(&c);
}

/* client_timeout_ms, response_timeout_ms, idle_timeout_ms: defaults,
 * flags, the file's top level inherited, a listener's own; refusals. */
static void
test_timeouts(void **state)
{
	static const char *const bad[] = {
	    "0", "-1", "1.5", "5s", " 5", "86400001", "99999999999999999999", ""};
	struct tg_agent_config c;
	struct tg_error err;
	size_t i;

	(void)state;
	assert_int_equal(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY,
	                     "--ca", "/c.pem"),
	                 0);
	assert_int_equal(c.listeners[0].client_timeout_ms, TG_AGENT_CLIENT_TIMEOUT_MS);
	assert_int_equal(c.listeners[0].response_timeout_ms, TG_AGENT_RESPONSE_TIMEOUT_MS);
	assert_int_equal(c.listeners[0].idle_timeout_ms, TG_AGENT_IDLE_TIMEOUT_MS);
	tg_agent_config_clear(&c);
	assert_int_equal(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY,
	                     "--ca", "/c.pem", "--client-timeout-ms", "1", "--response-timeout-ms",
	                     "86400000", "--mode", "tcp", "--idle-timeout-ms", "250"),
	                 0);
	assert_int_equal(c.listeners[0].client_timeout_ms, 1);
	assert_int_equal(c.listeners[0].response_timeout_ms, 86400000u);
	assert_int_equal(c.listeners[0].idle_timeout_ms, 250);
	tg_agent_config_clear(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY,
		           "--ca", "/c.pem", "--client-timeout-ms", bad[i]),
		       TG_ERR_USAGE, &err, "--client-timeout-ms: '");
		expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY,
		           "--ca", "/c.pem", "--response-timeout-ms", bad[i]),
		       TG_ERR_USAGE, &err, "is not a number of milliseconds from 1 to 86400000");
		expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", UP, "--key", KEY,
		           "--ca", "/c.pem", "--idle-timeout-ms", bad[i]),
		       TG_ERR_USAGE, &err, "--idle-timeout-ms: '");
	}
	expect(parse(TOP "client_timeout_ms: 2500\n"
	                 "idle_timeout_ms: 1500\n"
	                 "listeners:\n"
	                 "  - listen: 127.0.0.1:1\n"
	                 "  - listen: 127.0.0.1:2\n"
	                 "    client_timeout_ms: 100\n"
	                 "    response_timeout_ms: 7000\n"
	                 "    idle_timeout_ms: 86400000\n",
	             &c, &err),
	       0, &err, NULL);
	assert_int_equal(c.listeners[0].client_timeout_ms, 2500);
	assert_int_equal(c.listeners[0].response_timeout_ms, TG_AGENT_RESPONSE_TIMEOUT_MS);
	assert_int_equal(c.listeners[1].client_timeout_ms, 100);
	assert_int_equal(c.listeners[1].response_timeout_ms, 7000);
	assert_int_equal(c.listeners[0].idle_timeout_ms, 1500);
	assert_int_equal(c.listeners[1].idle_timeout_ms, 86400000u);
	tg_agent_config_clear(&c);
	expect(parse(TOP "listeners:\n  - {listen: 127.0.0.1:1, idle_timeout_ms: 86400001}\n", &c,
	             &err),
	       TG_ERR_CONFIG, &err,
	       "line 5: idle_timeout_ms: '86400001' is not a number of milliseconds");
	expect(
	    parse(TOP "listeners:\n  - {listen: 127.0.0.1:1, response_timeout_ms: 0}\n", &c, &err),
	    TG_ERR_CONFIG, &err,
	    "line 5: response_timeout_ms: '0' is not a number of milliseconds");
	expect(
	    parse(TOP "response_timeout_ms: [1]\nlisteners:\n  - listen: 127.0.0.1:1\n", &c, &err),
	    TG_ERR_CONFIG, &err, "line 4: 'response_timeout_ms' must be a single value");
	expect(parse(TOP "client_timeout_ms: 1\nclient_timeout_ms: 2\nlisteners:\n  - listen: "
	                 "127.0.0.1:1\n",
	             &c, &err),
	       TG_ERR_CONFIG, &err, "'client_timeout_ms' is given twice");
}

/* What the other cases do not reach: a listener without listen or ca, no
 * listener at all (flags and file), a bad upstream URL, explicit http
 * and allow_remote: false, too many listeners, no error struct. */
static void
test_more_refusals(void **state)
{
	struct tg_agent_config c;
	struct tg_error err;
	char *big;
	size_t i, n, cap = 64 * 1024;

	(void)state;
	expect(parse(TOP "listeners:\n  - {name: nolisten}\n", &c, &err), TG_ERR_CONFIG, &err,
	       "agent.yaml line 5: listener 'nolisten': no listen address; add listen: "
	       "127.0.0.1:PORT or unix:/PATH");
	expect(parse("upstream: " UP "\nkey: \"" KEY "\"\nlisteners:\n  - listen: 127.0.0.1:1\n",
	             &c, &err),
	       TG_ERR_CONFIG, &err, "no CA for the gate's certificate; add ca: FILE");
	expect(RUN(&c, &err, "--listen", "127.0.0.1:1", "--upstream", "https://", "--key", KEY,
	           "--ca", "/c"),
	       TG_ERR_USAGE, &err, "--upstream: ");
	expect(
	    parse(TOP "listeners:\n  - {listen: 127.0.0.1:1, upstream: 'gate:1:2:3'}\n", &c, &err),
	    TG_ERR_CONFIG, &err, "line 5: upstream: ");
	/* no listener: the check names the flag, or the file */
	tg_agent_config_init(&c);
	tg_error_clear(&err);
	expect(tg_agent_config_check(&c, &err), TG_ERR_CONFIG, &err,
	       "no listener; add --listen 127.0.0.1:PORT");
	c.file = (char *)"/etc/a.yaml";
	tg_error_clear(&err);
	expect(tg_agent_config_check(&c, &err), TG_ERR_CONFIG, &err,
	       "/etc/a.yaml: no listener; add listeners: [{listen: 127.0.0.1:8080}]");
	/* mode: http and allow_remote: false said explicitly */
	expect(parse(TOP "mode: tcp\nallow_remote: true\nlisteners:\n"
	                 "  - {listen: 127.0.0.1:1, mode: http, allow_remote: false}\n",
	             &c, &err),
	       0, &err, NULL);
	assert_int_equal(c.listeners[0].mode, TG_AGENT_MODE_HTTP);
	/* allow_remote: false in the listener; the top level's true is inherited */
	assert_int_equal(c.listeners[0].allow_remote, 1);
	tg_agent_config_clear(&c);
	/* 65 listeners: at most 64 */
	big = malloc(cap);
	assert_non_null(big);
	n = (size_t)snprintf(big, cap, "%slisteners:\n", TOP);
	for (i = 0; i < 65; i++)
		n += (size_t)snprintf(big + n, cap - n, "  - listen: 127.0.0.1:%zu\n", i + 1);
	expect(parse(big, &c, &err), TG_ERR_CONFIG, &err, "65 listeners: at most 64");
	free(big);
	/* no error struct: the code alone */
	assert_int_equal(tg_agent_config_parse("- a\n", 4, "x.yaml", &c, NULL), TG_ERR_CONFIG);
	assert_int_equal(c.nlisteners, 0);
	tg_agent_config_clear(NULL); /* accepted */
}

/* --config FILE from the command line, --help, a file that is not there. */
static void
test_config_file(void **state)
{
	struct tg_agent_config c;
	struct tg_error err;
	char dir[] = "/tmp/tg-agent-config.XXXXXX", path[80];
	char *argv[] = {(char *)"agent", (char *)"--help", NULL};
	int check = 0, help = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.yaml", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(TOP "listeners:\n  - listen: 127.0.0.1:1\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(args_run(&c, &err, &check, "--config", path, "--check", (char *)NULL), 0);
	assert_int_equal(check, 1);
	assert_int_equal(c.nlisteners, 1);
	assert_string_equal(c.file, path);
	/* relative to the file's directory */
	assert_non_null(strstr(c.listeners[0].ca, dir));
	assert_non_null(strstr(c.listeners[0].ca, "/gate-ca.pem"));
	tg_agent_config_clear(&c);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	expect(RUN(&c, &err, "--config", path), TG_ERR_NOT_FOUND, &err,
	       "agent.yaml' does not exist");
	assert_int_equal(c.nlisteners, 0);
	/* --help: 0 and *help, nothing else */
	tg_error_clear(&err);
	assert_int_equal(tg_agent_config_from_args(2, argv, &c, &check, &help, &err), 0);
	assert_int_equal(help, 1);
	assert_int_equal(check, 0);
	assert_int_equal(c.nlisteners, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags_ok),      cmocka_unit_test(test_loopback),
	    cmocka_unit_test(test_flags_refused), cmocka_unit_test(test_yaml_ok),
	    cmocka_unit_test(test_yaml_refused),  cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_more_refusals), cmocka_unit_test(test_config_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
