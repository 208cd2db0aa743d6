/* test_log.c — tg_log: levels, text lines, JSON lines, one line per event. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tg_err.h"
#include "tg_log.h"

#define MAX_LINES 16

struct capture {
	FILE *f;
	char *lines[MAX_LINES];
	size_t n;
};

static int
setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->f = tmpfile()) == NULL) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static void
lines_free(struct capture *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->lines[i]);
	c->n = 0;
}

static int
teardown(void **state)
{
	struct capture *c = *state;

	lines_free(c);
	fclose(c->f);
	free(c);
	tg_log_init(TG_LOG_INFO, 0, NULL);
	return 0;
}

/* Reads everything logged so far into c->lines (without the '\n') and
 * empties the file. Fails the test on a line without '\n'. */
static void
capture_read(struct capture *c)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t r;

	lines_free(c);
	fflush(c->f);
	rewind(c->f);
	while ((r = getline(&line, &cap, c->f)) > 0) {
		assert_true(c->n < MAX_LINES);
		assert_int_equal(line[r - 1], '\n');
		line[r - 1] = '\0';
		assert_null(strchr(line, '\r'));
		c->lines[c->n++] = strdup(line);
	}
	free(line);
	rewind(c->f);
	assert_int_equal(ftruncate(fileno(c->f), 0), 0);
}

static void
assert_matches(const char *s, const char *re)
{
	regex_t rx;

	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&rx, s, 0, NULL, 0) != 0) {
		regfree(&rx);
		fail_msg("\"%s\" does not match /%s/", s, re);
	}
	regfree(&rx);
}

#define TS_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "

static void
test_text_lines(void **state)
{
	struct capture *c = *state;

	tg_log_init(TG_LOG_DEBUG, 0, c->f);
	tg_log_warn("sim.vpcd", "connect failed port=%d", 35963);
	tg_log_error("core.test", "two\nlines\r\tand a \\ and \x1b[31m");
	tg_log_debug("core.test", "%s", "");
	capture_read(c);
	assert_int_equal(c->n, 3);
	assert_matches(c->lines[0], TS_RE "warn  sim\\.vpcd connect failed port=35963$");
	assert_matches(c->lines[1], TS_RE "error core\\.test ");
	assert_non_null(strstr(c->lines[1], " two\\nlines\\r\\tand a \\\\ and \\x1b[31m"));
	assert_matches(c->lines[2], TS_RE "debug core\\.test $");
}

struct level_case {
	enum tg_log_level set;
	enum tg_log_level msg;
	int written;
};

static const struct level_case level_cases[] = {
    {TG_LOG_ERROR, TG_LOG_ERROR, 1}, {TG_LOG_ERROR, TG_LOG_WARN, 0},
    {TG_LOG_WARN, TG_LOG_WARN, 1},   {TG_LOG_WARN, TG_LOG_INFO, 0},
    {TG_LOG_INFO, TG_LOG_INFO, 1},   {TG_LOG_INFO, TG_LOG_DEBUG, 0},
    {TG_LOG_DEBUG, TG_LOG_DEBUG, 1}, {TG_LOG_DEBUG, TG_LOG_ERROR, 1},
};

static void
test_levels(void **state)
{
	struct capture *c = *state;
	size_t i;

	for (i = 0; i < sizeof(level_cases) / sizeof(level_cases[0]); i++) {
		const struct level_case *lc = &level_cases[i];

		tg_log_init(lc->set, i % 2, c->f);
		assert_int_equal(tg_log_enabled(lc->msg), lc->written);
		tg_log(lc->msg, "core.level", "case %zu", i);
		capture_read(c);
		assert_int_equal(c->n, (size_t)lc->written);
	}
}

struct parse_case {
	const char *s;
	int rc;
	enum tg_log_level level;
};

static const struct parse_case parse_cases[] = {
    {"error", 0, TG_LOG_ERROR},         {"warn", 0, TG_LOG_WARN},
    {"info", 0, TG_LOG_INFO},           {"debug", 0, TG_LOG_DEBUG},
    {"", TG_ERR_INVALID_ARG, 0},        {"Info", TG_ERR_INVALID_ARG, 0},
    {"warning", TG_ERR_INVALID_ARG, 0}, {"debug ", TG_ERR_INVALID_ARG, 0},
    {NULL, TG_ERR_INVALID_ARG, 0},
};

static void
test_level_parse(void **state)
{
	enum tg_log_level l;
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		l = (enum tg_log_level)99;
		assert_int_equal(tg_log_level_parse(parse_cases[i].s, &l), parse_cases[i].rc);
		if (parse_cases[i].rc == 0)
			assert_int_equal(l, parse_cases[i].level);
		else
			assert_int_equal(l, 99);
	}
}

/* Parses a JSON line and checks its fields; returns the parsed msg copy. */
static char *
json_check(const char *line, const char *level, const char *event)
{
	json_error_t jerr;
	json_t *o;
	const char *ts;
	char *msg;

	o = json_loads(line, 0, &jerr);
	if (o == NULL)
		fail_msg("not JSON: %s (%s)", line, jerr.text);
	assert_true(json_is_object(o));
	assert_int_equal(json_object_size(o), 4);
	ts = json_string_value(json_object_get(o, "ts"));
	assert_non_null(ts);
	assert_matches(ts, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$");
	assert_string_equal(json_string_value(json_object_get(o, "level")), level);
	assert_string_equal(json_string_value(json_object_get(o, "event")), event);
	assert_non_null(json_string_value(json_object_get(o, "msg")));
	msg = strdup(json_string_value(json_object_get(o, "msg")));
	json_decref(o);
	return msg;
}

static void
test_json_lines(void **state)
{
	struct capture *c = *state;
	char *m;

	tg_log_init(TG_LOG_INFO, 1, c->f);
	tg_log_info("sim.vpcd", "connect failed port=%d", 35963);
	tg_log_warn("core.test", "two\nlines \"quoted\" caf\xc3\xa9");
	tg_log_error("core.test", "bad utf-8 \xff\xfe end");
	tg_log_debug("core.test", "not written");
	capture_read(c);
	assert_int_equal(c->n, 3);

	m = json_check(c->lines[0], "info", "sim.vpcd");
	assert_string_equal(m, "connect failed port=35963");
	free(m);
	/* valid UTF-8 comes back unchanged, newline included */
	m = json_check(c->lines[1], "warn", "core.test");
	assert_string_equal(m, "two\nlines \"quoted\" caf\xc3\xa9");
	free(m);
	/* invalid UTF-8 is escaped, never dropped */
	m = json_check(c->lines[2], "error", "core.test");
	assert_string_equal(m, "bad utf-8 \\xff\\xfe end");
	free(m);
}

/* Messages longer than the stack buffer are written whole. */
static void
test_long_message(void **state)
{
	struct capture *c = *state;
	char *big, *m;
	size_t n = 5000;

	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	big[n / 2] = '\n';
	tg_log_init(TG_LOG_INFO, 0, c->f);
	tg_log_info("core.long", "%s", big);
	tg_log_init(TG_LOG_INFO, 1, c->f);
	tg_log_info("core.long", "%s", big);
	capture_read(c);
	assert_int_equal(c->n, 2);
	assert_int_equal(strlen(c->lines[0]),
	                 strlen("2026-11-25T18:55:12Z info  core.long ") + n + 1);
	m = json_check(c->lines[1], "info", "core.long");
	assert_string_equal(m, big);
	free(m);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_text_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
	    cmocka_unit_test(test_level_parse),
	    cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
