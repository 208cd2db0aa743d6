/*
 * test_gate_metrics.c — the gate's metrics (host/gate/metrics.c): exactly
 * the names of tg_gate_metrics.h, Prometheus text format checked line by
 * line (and by promtool when it is installed), label values escaped, the
 * histogram's buckets, and counts that stay exact under threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <stdio.h>

#include "tg_gate_metrics.h"
#include "tg_test.h"

/* The families, in the order they are rendered, with their types. */
static const struct {
	const char *name, *type;
} families[] = {
    {"tokengate_connections_open", "gauge"},
    {"tokengate_connections_total", "counter"},
    {"tokengate_connections_refused_total", "counter"},
    {"tokengate_handshakes_total", "counter"},
    {"tokengate_resumptions_total", "counter"},
    {"tokengate_requests_total", "counter"},
    {"tokengate_upstream_errors_total", "counter"},
    {"tokengate_audit_failures_total", "counter"},
    {"tokengate_audit_ok", "gauge"},
    {"tokengate_request_duration_seconds", "histogram"},
    {"tokengate_reloads_total", "counter"},
    {"tokengate_authz_cache_total", "counter"},
};
#define NFAM (sizeof(families) / sizeof(families[0]))

static char *
render(struct tg_gate_metrics *m)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	assert_non_null(b);
	assert_int_equal(tg_gate_metrics_render(m, b), 0);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	assert_non_null(s);
	assert_int_equal(evbuffer_remove(b, s, n), (int)n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

/*
 * A strict reading of the text format 0.0.4: every line is "# HELP NAME
 * TEXT", "# TYPE NAME TYPE" or a sample "NAME{LABEL="VALUE",...} VALUE"
 * with label values escaped; each family's HELP and TYPE come once, before
 * its samples, in the order of families[]; a sample belongs to the family
 * last typed (a histogram's: _bucket with le, _sum, _count).
 */
static void
check_format(const char *text)
{
	regex_t help, type, sample;
	const char *line = text, *nl;
	char buf[2048], name[256];
	size_t fam = 0, len, nl_at;
	int typed = 0;
	regmatch_t mt[3];

	assert_int_equal(regcomp(&help, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$", REG_EXTENDED),
	                 0);
	assert_int_equal(regcomp(&type,
	                         "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) "
	                         "(counter|gauge|histogram|summary|untyped)$",
	                         REG_EXTENDED),
	                 0);
	assert_int_equal(regcomp(&sample,
	                         "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
	                         "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
	                         "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\")*\\})?"
	                         " [-+]?([0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|\\+Inf|NaN)$",
	                         REG_EXTENDED),
	                 0);
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	for (; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		nl_at = (size_t)(nl - line);
		assert_true(nl_at < sizeof(buf));
		memcpy(buf, line, nl_at);
		buf[nl_at] = '\0';
		if (regexec(&help, buf, 3, mt, 0) == 0) {
			assert_true(fam < NFAM);
			len = (size_t)(mt[1].rm_eo - mt[1].rm_so);
			snprintf(name, sizeof(name), "%.*s", (int)len, buf + mt[1].rm_so);
			if (strcmp(name, families[fam].name) != 0)
				fail_msg("HELP of '%s', want '%s' next", name, families[fam].name);
			typed = 0;
		} else if (regexec(&type, buf, 3, mt, 0) == 0) {
			snprintf(name, sizeof(name), "%.*s", (int)(mt[1].rm_eo - mt[1].rm_so),
			         buf + mt[1].rm_so);
			assert_string_equal(name, families[fam].name);
			assert_string_equal(buf + mt[2].rm_so, families[fam].type);
			typed = 1;
			fam++;
		} else if (regexec(&sample, buf, 3, mt, 0) == 0) {
			const char *f = families[fam - 1].name;

			if (!typed)
				fail_msg("sample before its TYPE: %s", buf);
			snprintf(name, sizeof(name), "%.*s", (int)(mt[1].rm_eo - mt[1].rm_so),
			         buf + mt[1].rm_so);
			if (strcmp(families[fam - 1].type, "histogram") == 0) {
				len = strlen(f);
				assert_memory_equal(name, f, len);
				assert_true(strcmp(name + len, "_bucket") == 0 ||
				            strcmp(name + len, "_sum") == 0 ||
				            strcmp(name + len, "_count") == 0);
				if (strcmp(name + len, "_bucket") == 0)
					assert_non_null(strstr(buf, "{le=\""));
			} else if (strcmp(name, f) != 0) {
				fail_msg("sample '%s' under the family '%s'", buf, f);
			}
		} else {
			fail_msg("not a line of the text format: '%s'", buf);
		}
	}
	assert_int_equal(fam, NFAM);
	regfree(&help);
	regfree(&type);
	regfree(&sample);
}

/* promtool (Prometheus' own checker), when installed, on the same text. */
static void
promtool_check(const char *text)
{
	char path[] = "/tmp/tg-metrics-XXXXXX", cmd[256];
	FILE *f;
	int fd, st;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		print_message("promtool not installed: the strict check above only\n");
		return;
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	/* check metrics reads stdin; it exits non-zero on a format error
	 * (and on lint problems, which it prints) */
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	st = system(cmd);
	unlink(path);
	assert_int_equal(st, 0);
}

static void
test_empty(void **state)
{
	struct tg_gate_metrics *m;
	struct tg_error err;
	char *t;

	(void)state;
	assert_int_equal(tg_gate_metrics_new(&m, &err), 0);
	t = render(m);
	check_format(t);
	promtool_check(t);
	assert_non_null(strstr(t, "# TYPE tokengate_connections_open gauge\n"
	                          "tokengate_connections_open 0\n"));
	assert_non_null(strstr(t, "tokengate_handshakes_total{result=\"ok\"} 0\n"
	                          "tokengate_handshakes_total{result=\"failed\"} 0\n"));
	assert_non_null(strstr(t, "tokengate_audit_ok 1\n"));
	assert_non_null(strstr(t, "tokengate_request_duration_seconds_bucket{le=\"+Inf\"} 0\n"
	                          "tokengate_request_duration_seconds_sum 0.000000000\n"
	                          "tokengate_request_duration_seconds_count 0\n"));
	assert_non_null(strstr(t, "tokengate_reloads_total{result=\"failed\"} 0\n"));
	free(t);
	tg_gate_metrics_free(m);
	tg_gate_metrics_free(NULL);
}

static void
test_counts(void **state)
{
	struct tg_gate_metrics *m;
	struct tg_error err;
	char *t;

	(void)state;
	assert_int_equal(tg_gate_metrics_new(&m, &err), 0);
	tg_gate_metrics_conn_open(m, "api");
	tg_gate_metrics_conn_open(m, "api");
	tg_gate_metrics_conn_open(m, "db");
	tg_gate_metrics_conn_close(m);
	tg_gate_metrics_conn_refused(m, "limit");
	tg_gate_metrics_handshake(m, 1, 0);
	tg_gate_metrics_handshake(m, 1, 1);
	tg_gate_metrics_handshake(m, 0, 0);
	tg_gate_metrics_request(m, "api", "datasets-read", "allow", 0.0005);
	tg_gate_metrics_request(m, "api", "datasets-read", "allow", 0.003);
	tg_gate_metrics_request(m, "api", "admin", "deny", 0.2);
	tg_gate_metrics_request(m, "api", NULL, "deny", 20);
	tg_gate_metrics_upstream_error(m, "llm", "timeout");
	tg_gate_metrics_audit(m, 0);
	tg_gate_metrics_reload(m, 1);
	tg_gate_metrics_reload(m, 0);
	tg_gate_metrics_reload(m, 0);
	tg_gate_metrics_authz_cache(m, 1);
	tg_gate_metrics_authz_cache(m, 1);
	tg_gate_metrics_authz_cache(m, 0);
	t = render(m);
	check_format(t);
	promtool_check(t);
	assert_non_null(strstr(t, "tokengate_connections_open 2\n"));
	assert_non_null(strstr(t, "tokengate_connections_total{listener=\"api\"} 2\n"
	                          "tokengate_connections_total{listener=\"db\"} 1\n"));
	assert_non_null(strstr(t, "tokengate_connections_refused_total{reason=\"limit\"} 1\n"));
	assert_non_null(strstr(t, "tokengate_handshakes_total{result=\"ok\"} 2\n"
	                          "tokengate_handshakes_total{result=\"failed\"} 1\n"));
	assert_non_null(strstr(t, "tokengate_resumptions_total 1\n"));
	assert_non_null(strstr(t, "tokengate_authz_cache_total{result=\"hit\"} 2\n"
	                          "tokengate_authz_cache_total{result=\"miss\"} 1\n"));
	assert_non_null(strstr(t,
	                       "tokengate_requests_total{listener=\"api\",route=\"datasets-read\","
	                       "decision=\"allow\"} 2\n"
	                       "tokengate_requests_total{listener=\"api\",route=\"admin\","
	                       "decision=\"deny\"} 1\n"
	                       "tokengate_requests_total{listener=\"api\",route=\"\","
	                       "decision=\"deny\"} 1\n"));
	assert_non_null(
	    strstr(t, "tokengate_upstream_errors_total{upstream=\"llm\",kind=\"timeout\"} 1\n"));
	assert_non_null(strstr(t, "tokengate_audit_failures_total 1\n"));
	assert_non_null(strstr(t, "tokengate_audit_ok 0\n"));
	/* cumulative buckets: 0.0005 <= .001; 0.003 <= .005; 0.2 <= .25; 20 only +Inf */
	assert_non_null(strstr(t, "tokengate_request_duration_seconds_bucket{le=\"0.001\"} 1\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.005\"} 2\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.01\"} 2\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.025\"} 2\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.05\"} 2\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.1\"} 2\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.25\"} 3\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"0.5\"} 3\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"1\"} 3\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"2.5\"} 3\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"5\"} 3\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"10\"} 3\n"
	                          "tokengate_request_duration_seconds_bucket{le=\"+Inf\"} 4\n"
	                          "tokengate_request_duration_seconds_sum 20.203500000\n"
	                          "tokengate_request_duration_seconds_count 4\n"));
	assert_non_null(strstr(t, "tokengate_reloads_total{result=\"ok\"} 1\n"
	                          "tokengate_reloads_total{result=\"failed\"} 2\n"));
	tg_gate_metrics_audit(m, 1);
	free(t);
	t = render(m);
	assert_non_null(strstr(t, "tokengate_audit_ok 1\n"));
	assert_non_null(strstr(t, "tokengate_audit_failures_total 1\n"));
	free(t);
	tg_gate_metrics_free(m);
}

static void
test_escaping(void **state)
{
	struct tg_gate_metrics *m;
	struct tg_error err;
	char *t;

	(void)state;
	assert_int_equal(tg_gate_metrics_new(&m, &err), 0);
	tg_gate_metrics_conn_open(m, "a\"b\\c\nd");
	tg_gate_metrics_upstream_error(m, "x\"}\n# TYPE evil counter", "broken");
	t = render(m);
	check_format(t);
	promtool_check(t);
	assert_non_null(strstr(t, "tokengate_connections_total{listener=\"a\\\"b\\\\c\\nd\"} 1\n"));
	assert_non_null(
	    strstr(t, "{upstream=\"x\\\"}\\n# TYPE evil counter\",kind=\"broken\"} 1\n"));
	free(t);
	tg_gate_metrics_free(m);
}

static void
test_bounded(void **state)
{
	struct tg_gate_metrics *m;
	struct tg_error err;
	char reason[300], *t;
	const char *p;
	int i, rows = 0;

	(void)state;
	assert_int_equal(tg_gate_metrics_new(&m, &err), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(reason, sizeof(reason), "r%d", i);
		tg_gate_metrics_conn_refused(m, reason);
	}
	/* values alike in their first 128 bytes share a row, cut to those bytes */
	memset(reason, 'x', 200);
	reason[200] = '\0';
	tg_gate_metrics_upstream_error(m, reason, "refused");
	reason[150] = '\0';
	tg_gate_metrics_upstream_error(m, reason, "refused");
	t = render(m);
	check_format(t);
	for (p = t; (p = strstr(p, "\ntokengate_connections_refused_total{")) != NULL; p++)
		rows++;
	assert_int_equal(rows, 4096);
	reason[128] = '\0';
	snprintf(reason + 128, sizeof(reason) - 128, "\",kind=\"refused\"} 2\n");
	assert_non_null(strstr(t, reason));
	free(t);
	tg_gate_metrics_free(m);
}

#define THREADS 4
#define PER     20000

static void *
hammer(void *arg)
{
	struct tg_gate_metrics *m = arg;
	static const char *const routes[] = {"a", "b", "c"};
	int i;

	for (i = 0; i < PER; i++) {
		tg_gate_metrics_conn_open(m, "api");
		tg_gate_metrics_request(m, "api", routes[i % 3], i % 2 ? "allow" : "deny", 0.002);
		tg_gate_metrics_handshake(m, 1, i % 4 == 0);
		tg_gate_metrics_conn_close(m);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct tg_gate_metrics *m;
	struct tg_error err;
	pthread_t th[THREADS];
	char *t, want[256];
	int i;

	(void)state;
	assert_int_equal(tg_gate_metrics_new(&m, &err), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, m), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	t = render(m);
	check_format(t);
	assert_non_null(strstr(t, "tokengate_connections_open 0\n"));
	snprintf(want, sizeof(want), "tokengate_connections_total{listener=\"api\"} %d\n",
	         THREADS * PER);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof(want), "tokengate_handshakes_total{result=\"ok\"} %d\n",
	         THREADS * PER);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof(want), "tokengate_resumptions_total %d\n", THREADS * PER / 4);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof(want), "tokengate_request_duration_seconds_count %d\n",
	         THREADS * PER);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof(want),
	         "tokengate_request_duration_seconds_bucket{le=\"0.001\"} 0\n"
	         "tokengate_request_duration_seconds_bucket{le=\"0.005\"} %d\n",
	         THREADS * PER);
	assert_non_null(strstr(t, want));
	/* 6 rows (3 routes x 2 decisions); route a, deny: i % 6 == 0 */
	snprintf(want, sizeof(want),
	         "tokengate_requests_total{listener=\"api\",route=\"a\",decision=\"deny\"} %d\n",
	         THREADS * ((PER + 5) / 6));
	assert_non_null(strstr(t, want));
	free(t);
	tg_gate_metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_escaping), cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
