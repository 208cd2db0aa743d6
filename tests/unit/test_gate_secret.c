/*
 * test_gate_secret.c — the inject_headers credentials (host/gate/secret.c):
 * read from a checked file or the environment into "prefix + secret", and
 * every refusal with its message, which never holds the secret itself.
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

#include "tg_gate_policy.h"
#include "tg_gate_secret.h"
#include "tg_test.h"

#define SECRET "sk-TOPSECRET-4711"

static char dir[256];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tg-gate-secret-XXXXXX");
	assert_non_null(mkdtemp(dir));
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

/* dir/name with n bytes of data and mode; the path into path. */
static void
put(const char *name, const void *data, size_t n, mode_t mode, char *path, size_t cap)
{
	int fd;

	snprintf(path, cap, "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* A policy of one route "llm" injecting Authorization from src, and X-Org from env. */
static void
policy(struct tg_gate_policy *p, const char *from, const char *prefix)
{
	char text[1024];
	struct tg_error err;

	snprintf(text, sizeof(text),
	         "routes:\n"
	         "  - name: open\n"
	         "    paths: [\"/health\"]\n"
	         "    allow: [{identity: \"spiffe://example.org/ops/probe\"}]\n"
	         "  - name: llm\n"
	         "    paths: [\"/v1/**\"]\n"
	         "    inject_headers:\n"
	         "      Authorization: {from: \"%s\"%s%s%s}\n"
	         "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n",
	         from, prefix != NULL ? ", prefix: \"" : "", prefix != NULL ? prefix : "",
	         prefix != NULL ? "\"" : "");
	tg_error_clear(&err);
	if (tg_gate_policy_parse(text, strlen(text), "policy.yaml", p, &err) != 0)
		fail_msg("policy: %s", err.msg);
}

/* Loads from `from`; returns the code, err set; *s freed unless kept. */
static int
load(const char *from, const char *prefix, struct tg_gate_secrets **s, struct tg_error *err)
{
	struct tg_gate_policy p;
	int r;

	policy(&p, from, prefix);
	tg_error_clear(err);
	r = tg_gate_secrets_load(&p, s, err);
	tg_gate_policy_clear(&p);
	if (r != 0)
		assert_null(*s);
	return r;
}

static void
test_file(void **state)
{
	struct tg_gate_secrets *s = NULL;
	struct tg_error err;
	char path[300], from[320];
	const char *v;
	size_t len = 0;

	(void)state;
	put("key", SECRET "\n", strlen(SECRET) + 1, 0600, path, sizeof(path));
	snprintf(from, sizeof(from), "file:%s", path);
	assert_int_equal(load(from, "Bearer ", &s, &err), 0);
	v = tg_gate_secret_value(s, 1, 0, &len);
	assert_non_null(v);
	assert_string_equal(v, "Bearer " SECRET); /* one trailing newline removed */
	assert_int_equal(len, strlen("Bearer " SECRET));
	/* out of range: the route without inject_headers, a second entry, a third route */
	assert_null(tg_gate_secret_value(s, 0, 0, &len));
	assert_null(tg_gate_secret_value(s, 1, 1, &len));
	assert_null(tg_gate_secret_value(s, 2, 0, &len));
	assert_null(tg_gate_secret_value(NULL, 0, 0, &len));
	tg_gate_secrets_free(s);
	tg_gate_secrets_free(NULL);
	/* no newline at all, no prefix */
	put("key", SECRET, strlen(SECRET), 0400, path, sizeof(path));
	assert_int_equal(load(from, NULL, &s, &err), 0);
	assert_string_equal(tg_gate_secret_value(s, 1, 0, &len), SECRET);
	assert_int_equal(len, strlen(SECRET));
	tg_gate_secrets_free(s);
}

static void
test_file_symlink(void **state)
{
	struct tg_gate_secrets *s = NULL;
	struct tg_error err;
	char path[300], link[300], from[320];
	size_t len;

	(void)state;
	/* mounted secrets (Kubernetes) are symbolic links: followed, the target checked */
	put("real", SECRET "\n", strlen(SECRET) + 1, 0600, path, sizeof(path));
	snprintf(link, sizeof(link), "%s/link", dir);
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	snprintf(from, sizeof(from), "file:%s", link);
	assert_int_equal(load(from, NULL, &s, &err), 0);
	assert_string_equal(tg_gate_secret_value(s, 1, 0, &len), SECRET);
	tg_gate_secrets_free(s);
}

/* tail with each '@' replaced by path, into out. */
static void
expand(const char *tail, const char *path, char *out, size_t cap)
{
	size_t o = 0;

	for (; *tail != '\0' && o + 1 < cap; tail++) {
		if (*tail == '@')
			o += (size_t)snprintf(out + o, cap - o, "%s", path);
		else
			out[o++] = *tail;
	}
	out[o < cap ? o : cap - 1] = '\0';
}

/* A refusal: code, message prefix, and the secret nowhere in the message. */
static void
refused(const char *name, const void *data, size_t n, mode_t mode, int code, const char *tail)
{
	struct tg_gate_secrets *s = NULL;
	struct tg_error err;
	char path[300], from[320], want[1024];

	put(name, data, n, mode, path, sizeof(path));
	snprintf(from, sizeof(from), "file:%s", path);
	assert_int_equal(load(from, "Bearer ", &s, &err), code);
	assert_int_equal(err.code, code);
	expand(tail, path, want, sizeof(want));
	if (strcmp(err.msg, want) != 0)
		fail_msg("got \"%s\"\nwant \"%s\"", err.msg, want);
	assert_null(strstr(err.msg, "TOPSECRET"));
}

static void
test_file_refused(void **state)
{
	static const char crlf[] = SECRET "\r\n";
	static const char two[] = SECRET "\n\n";
	static const char mid[] = "sk-TOP\nSECRET";
	static const char nul[] = "sk-TOP\0SECRET";
	static const char ctl[] = "sk-TOP\x1bSECRET";

	(void)state;
	refused("crlf", crlf, sizeof(crlf) - 1, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ holds a line break (CR "
	        "or LF) or a NUL byte inside; a header value is one line: keep only the "
	        "credential (one trailing newline is allowed)");
	refused("two", two, sizeof(two) - 1, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ holds a line break (CR "
	        "or LF) or a NUL byte inside; a header value is one line: keep only the "
	        "credential (one trailing newline is allowed)");
	refused("mid", mid, sizeof(mid) - 1, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ holds a line break (CR "
	        "or LF) or a NUL byte inside; a header value is one line: keep only the "
	        "credential (one trailing newline is allowed)");
	refused("nul", nul, sizeof(nul) - 1, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ holds a line break (CR "
	        "or LF) or a NUL byte inside; a header value is one line: keep only the "
	        "credential (one trailing newline is allowed)");
	refused("ctl", ctl, sizeof(ctl) - 1, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ holds a control "
	        "character; keep only the credential");
	refused("empty", "", 0, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ is empty; put the "
	        "credential there");
	refused("newline-only", "\n", 1, 0600, TG_ERR_CONFIG,
	        "route 'llm' header Authorization: the secret from file:@ is empty; put the "
	        "credential there");
	refused("group-readable", SECRET, strlen(SECRET), 0640, TG_ERR_PERMISSION,
	        "route 'llm' header Authorization (from file:@): secret file '@' is readable by "
	        "others (mode 0640); run 'chmod 600 @'");
}

static void
test_file_missing_or_odd(void **state)
{
	struct tg_gate_secrets *s = NULL;
	struct tg_error err;
	char from[320], want[1024];

	(void)state;
	snprintf(from, sizeof(from), "file:%s/none", dir);
	assert_int_equal(load(from, NULL, &s, &err), TG_ERR_NOT_FOUND);
	snprintf(want, sizeof(want),
	         "route 'llm' header Authorization (from file:%s/none): secret file '%s/none' does "
	         "not exist",
	         dir, dir);
	assert_string_equal(err.msg, want);
	/* a directory is not a secret file */
	snprintf(from, sizeof(from), "file:%s", dir);
	assert_int_equal(load(from, NULL, &s, &err), TG_ERR_IO);
	snprintf(want, sizeof(want),
	         "route 'llm' header Authorization (from file:%s): secret file '%s' is not a "
	         "regular file",
	         dir, dir);
	assert_string_equal(err.msg, want);
}

static void
test_env(void **state)
{
	struct tg_gate_secrets *s = NULL;
	struct tg_error err;
	size_t len;

	(void)state;
	setenv("TG_TEST_LLM_KEY", SECRET, 1);
	assert_int_equal(load("env:TG_TEST_LLM_KEY", "Bearer ", &s, &err), 0);
	assert_string_equal(tg_gate_secret_value(s, 1, 0, &len), "Bearer " SECRET);
	assert_int_equal(len, strlen("Bearer " SECRET));
	tg_gate_secrets_free(s);
	setenv("TG_TEST_LLM_KEY", "", 1);
	assert_int_equal(load("env:TG_TEST_LLM_KEY", NULL, &s, &err), TG_ERR_CONFIG);
	assert_string_equal(err.msg, "route 'llm' header Authorization: the secret from "
	                             "env:TG_TEST_LLM_KEY is empty; put the credential there");
	setenv("TG_TEST_LLM_KEY", "sk-TOP\nSECRET", 1);
	assert_int_equal(load("env:TG_TEST_LLM_KEY", NULL, &s, &err), TG_ERR_CONFIG);
	assert_null(strstr(err.msg, "TOPSECRET"));
	assert_null(strstr(err.msg, "SECRET\n"));
	unsetenv("TG_TEST_LLM_KEY");
	assert_int_equal(load("env:TG_TEST_LLM_KEY", NULL, &s, &err), TG_ERR_NOT_FOUND);
	assert_string_equal(err.msg, "route 'llm' header Authorization: environment variable "
	                             "TG_TEST_LLM_KEY is not set; set it in the gate's environment "
	                             "(or use from: \"file:/PATH\")");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file),         cmocka_unit_test(test_file_symlink),
	    cmocka_unit_test(test_file_refused), cmocka_unit_test(test_file_missing_or_odd),
	    cmocka_unit_test(test_env),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
