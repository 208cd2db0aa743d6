/*
 * test_audit.c — the audit log (host/audit): the writer's chain checked by
 * the verifier, rotation continuing the chain, a torn tail cut off and put
 * on the record, fsync modes, refusal of unsafe files, and a failed write
 * reported (RLIMIT_FSIZE) and recovered from with the chain intact, also
 * by rotating the log while it fails; batch mode's sync thread, syncs
 * racing writes and rotation, a failing sync (fdatasync wrapped) failing
 * writes closed until it works again; lines prepared outside the lock;
 * lines kept and written together with one write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <errno.h>

#include <cmocka.h>

#include "tg_audit.h"
#include "tg_audit_verify.h"
#include "tg_test.h"

static char dir[] = "/tmp/tg_audit_XXXXXX";

/* fdatasync wrapped (-Wl,--wrap=fdatasync) so a test can make it fail */
int __wrap_fdatasync(int fd);
int __real_fdatasync(int fd);

static atomic_int sync_fails; /* 1: fdatasync fails with EIO */
static atomic_int sync_calls;

int
__wrap_fdatasync(int fd)
{
	int r;

	atomic_fetch_add(&sync_calls, 1);
	if (atomic_load(&sync_fails)) {
		errno = EIO;
		r = -1;
	} else {
		r = __real_fdatasync(fd);
	}
	return r;
}

static void
path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

static void
write_n(struct tg_audit *log, int from, int count)
{
	struct tg_error err;
	json_t *rec;
	int i;

	for (i = from; i < from + count; i++) {
		rec = json_pack("{s:i, s:s}", "n", i, "route", "datasets-read");
		assert_non_null(rec);
		assert_int_equal(tg_audit_write(log, rec, &err), 0);
		json_decref(rec);
	}
}

static void
verify_ok(const char *const *paths, size_t n, size_t lines, int genesis)
{
	struct tg_audit_report rep;
	struct tg_error err;

	assert_int_equal(
	    tg_audit_verify_files(paths, n, genesis ? TG_AUDIT_VERIFY_GENESIS : 0, &rep, &err), 0);
	if (rep.flaw != TG_AUDIT_INTACT)
		fail_msg("line %zu: %s", rep.line, rep.detail);
	assert_int_equal(rep.lines, lines);
}

static size_t
file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return (size_t)st.st_size;
}

static void
test_chain(void **state)
{
	char p[256];
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_audit_report rep;
	struct tg_error err;
	char head[TG_AUDIT_HASH_HEX];
	FILE *f;
	char line[512];

	(void)state;
	path_in(p, sizeof(p), "chain.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	assert_string_equal(tg_audit_head(log), TG_AUDIT_GENESIS);
	write_n(log, 1, 5);
	memcpy(head, tg_audit_head(log), sizeof(head));
	tg_audit_close(log);
	verify_ok(paths, 1, 5, 1);
	assert_int_equal(tg_audit_verify_files(paths, 1, 0, &rep, &err), 0);
	assert_string_equal(rep.head, head);
	/* lines: prev and time first, then the record compact, keys sorted */
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_memory_equal(line, "{\"prev\":\"" TG_AUDIT_GENESIS "\",\"time\":\"",
	                    strlen("{\"prev\":\"" TG_AUDIT_GENESIS "\",\"time\":\""));
	assert_int_equal(strlen(line), strlen("{\"prev\":\"" TG_AUDIT_GENESIS
	                                      "\",\"time\":\"2026-12-02T13:18:01.123Z\","
	                                      "\"n\":1,\"route\":\"datasets-read\"}\n"));
	assert_non_null(strstr(line, "Z\",\"n\":1,\"route\":\"datasets-read\"}\n"));
	/* reopened later: continues from the last line */
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_NEVER, &log, &err), 0);
	assert_string_equal(tg_audit_head(log), head);
	write_n(log, 6, 2);
	tg_audit_close(log);
	verify_ok(paths, 1, 7, 1);
}

static void
test_rotation(void **state)
{
	char p[256], old[256];
	const char *paths[2] = {old, p}, *wrong[2] = {p, old};
	struct tg_audit *log = NULL;
	struct tg_audit_report rep;
	struct tg_error err;

	(void)state;
	path_in(p, sizeof(p), "rot.log");
	path_in(old, sizeof(old), "rot.log.1");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_BATCH, &log, &err), 0);
	write_n(log, 1, 3);
	assert_int_equal(rename(p, old), 0);
	assert_int_equal(tg_audit_reopen(log, &err), 0);
	write_n(log, 4, 3);
	/* SIGHUP without rotation: the same file, the chain goes on */
	assert_int_equal(tg_audit_reopen(log, &err), 0);
	write_n(log, 7, 1);
	tg_audit_close(log);
	verify_ok(paths, 2, 7, 1);
	/* the new file alone starts after a line not given */
	assert_int_equal(tg_audit_verify_files(paths + 1, 1, 0, &rep, &err), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_INTACT);
	assert_string_not_equal(rep.first_prev, TG_AUDIT_GENESIS);
	assert_int_equal(tg_audit_verify_files(paths + 1, 1, TG_AUDIT_VERIFY_GENESIS, &rep, &err),
	                 0);
	assert_int_equal(rep.flaw, TG_AUDIT_NOT_GENESIS);
	/* in the wrong order: the old file's first line breaks */
	assert_int_equal(tg_audit_verify_files(wrong, 2, 0, &rep, &err), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_PREV_MISMATCH);
	assert_int_equal(rep.file, 1);
	assert_int_equal(rep.line, 1);
	assert_non_null(strstr(rep.detail, "the last line (4) of"));
}

static void
test_torn_tail(void **state)
{
	char p[256];
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_audit_report rep;
	struct tg_error err;
	FILE *f;
	size_t before;

	(void)state;
	path_in(p, sizeof(p), "torn.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	write_n(log, 1, 2);
	tg_audit_close(log);
	before = file_size(p);
	f = fopen(p, "a");
	assert_non_null(f);
	fputs("{\"n\":3,\"prev\":\"ab", f);
	fclose(f);
	assert_int_equal(tg_audit_verify_files(paths, 1, 0, &rep, &err), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_TORN);
	assert_int_equal(rep.line, 3);
	assert_non_null(strstr(rep.detail, "torn last line: 17 bytes"));
	/* open cuts the torn bytes off and records that it did */
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	assert_int_equal(tg_audit_torn_bytes(log), 17);
	assert_true(file_size(p) > before);
	write_n(log, 3, 1);
	tg_audit_close(log);
	verify_ok(paths, 1, 4, 1);
	f = fopen(p, "r");
	{
		char line[512];
		int i;
		for (i = 0; i < 3; i++)
			assert_non_null(fgets(line, sizeof(line), f));
		assert_non_null(strstr(line, "\"event\":\"audit-torn-tail\""));
		assert_non_null(strstr(line, "\"torn_bytes\":17"));
	}
	fclose(f);
}

/* Polls until every record written is synced: 1, or 0 after ms. */
static int
synced_within(const struct tg_audit *log, long ms)
{
	long waited = 0;

	while (tg_audit_unsynced(log) > 0 && waited < ms) {
		usleep(1000);
		waited++;
	}
	return tg_audit_unsynced(log) == 0;
}

static void
test_fsync_modes(void **state)
{
	char p[256];
	const char *paths[1] = {p};
	size_t size;
	struct tg_audit *log = NULL;
	struct tg_error err;
	enum tg_audit_fsync m;

	(void)state;
	assert_int_equal(tg_audit_fsync_parse("always", &m, &err), 0);
	assert_int_equal(m, TG_AUDIT_FSYNC_ALWAYS);
	assert_int_equal(tg_audit_fsync_parse("batch", &m, &err), 0);
	assert_int_equal(m, TG_AUDIT_FSYNC_BATCH);
	assert_int_equal(tg_audit_fsync_parse("never", &m, &err), 0);
	assert_int_equal(m, TG_AUDIT_FSYNC_NEVER);
	assert_int_equal(tg_audit_fsync_parse("sometimes", &m, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg,
	                    "audit fsync mode 'sometimes' is not one of always, batch, never");
	path_in(p, sizeof(p), "fsync.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	write_n(log, 1, 3);
	assert_int_equal(tg_audit_unsynced(log), 0);
	tg_audit_close(log);
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_NEVER, &log, &err), 0);
	write_n(log, 4, 100);
	assert_int_equal(tg_audit_unsynced(log), 100);
	assert_int_equal(tg_audit_sync(log, &err), 0);
	assert_int_equal(tg_audit_unsynced(log), 0);
	tg_audit_close(log);
	/* batch: group commit by the log's sync thread, never in the write;
	 * the line is in the file as soon as the write returns */
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_BATCH, &log, &err), 0);
	size = file_size(p);
	write_n(log, 104, 1);
	assert_true(file_size(p) > size);
	/* synced within TG_AUDIT_BATCH_MS without another write (the bound
	 * checked loosely: this machine may be loaded) */
	assert_true(synced_within(log, 20 * TG_AUDIT_BATCH_MS));
	/* TG_AUDIT_BATCH_RECORDS pending wake the sync thread */
	write_n(log, 105, TG_AUDIT_BATCH_RECORDS);
	assert_true(synced_within(log, 20 * TG_AUDIT_BATCH_MS));
	write_n(log, 200, 1);
	tg_audit_close(log);
	verify_ok(paths, 1, 3 + 100 + 1 + TG_AUDIT_BATCH_RECORDS + 1, 1);
}

/* line's bytes as a string (a prepared line is not NUL-terminated). */
static char *
line_str(const struct tg_audit_line *l)
{
	char *s = malloc(l->len + 1);

	assert_non_null(s);
	memcpy(s, l->buf, l->len);
	s[l->len] = '\0';
	return s;
}

/* Fills b with a line longer than the tests' records (the buffer reused
 * after it must hold nothing of it). */
static void
fill_longer(struct tg_audit_line *b)
{
	struct tg_error err;
	char *big = malloc(4000);

	assert_non_null(big);
	memset(big, 'x', 3999);
	big[3999] = '\0';
	assert_int_equal(
	    tg_audit_prepare_fields(
	        &(struct tg_audit_field){.key = "zzz", .kind = TG_AUDIT_STR, .s = big}, 1, b, &err),
	    0);
	free(big);
}

/* tg_audit_prepare_fields(f, n) makes tg_audit_prepare(rec)'s line (a and
 * b the lines to use). */
static void
assert_same_line(const json_t *rec, const struct tg_audit_field *f, size_t n,
                 struct tg_audit_line *a, struct tg_audit_line *b)
{
	struct tg_error err;
	char *sa, *sb;

	assert_int_equal(tg_audit_prepare(rec, a, &err), 0);
	assert_int_equal(tg_audit_prepare_fields(f, n, b, &err), 0);
	sa = line_str(a);
	sb = line_str(b);
	assert_string_equal(sb, sa);
	assert_null(strstr(sb, "xxx"));
	free(sa);
	free(sb);
}

/*
 * The plain-string path of tg_audit_prepare_fields (no jansson for a string
 * with nothing to escape) writes what jansson writes, on both sides of
 * every boundary of "plain": the printable range's ends (space, '~'),
 * DEL, a control byte, '"', '\\', '/', non-ASCII, invalid UTF-8, empty.
 */
static void
test_prepare_fields_plain(void **state)
{
	static const struct {
		const char *s;
		int plain;
	} cases[] = {
	    {"", 1},
	    {"GET", 1},
	    {"/v1/a b~!#$%&'()*+,-.:;<=>?@[]^_`{|}", 1},
	    {"a\x7f", 0},
	    {"a\x1f", 0},
	    {"a\"b", 0},
	    {"a\\b", 0},
	    {"\xc3\xa9", 0},
	    {"\xff", 0},
	    {"0123456789abcdef", 1},
	};
	const char *t = "2026-01-01T00:00:00.000Z";
	struct tg_audit_line a = {0}, b = {0};
	struct tg_audit_field f[2];
	struct tg_error err;
	json_t *rec, *js;
	char *sa, *sb;
	size_t i;

	(void)state;
	assert_false(tg_audit_str_plain(NULL));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tg_audit_str_plain(cases[i].s), cases[i].plain);
		/* jansson: invalid UTF-8 is no string at all (null), as jset_str makes it */
		js = json_string(cases[i].s);
		rec = json_pack("{s:s, s:o}", "time", t, "path", js != NULL ? js : json_null());
		assert_non_null(rec);
		f[0] = (struct tg_audit_field){.key = "time", .kind = TG_AUDIT_STR, .s = t};
		f[1] =
		    (struct tg_audit_field){.key = "path", .kind = TG_AUDIT_STR, .s = cases[i].s};
		assert_int_equal(tg_audit_prepare(rec, &a, &err), 0);
		assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), 0);
		sa = line_str(&a);
		sb = line_str(&b);
		assert_string_equal(sb, sa);
		free(sa);
		free(sb);
		json_decref(rec);
	}
	tg_audit_line_clear(&a);
	tg_audit_line_clear(&b);
}

/*
 * A record whose every value's text is known ahead (TEXT, PLAIN, INT, a
 * STR with nothing to escape) is made with one room check: the same line
 * as tg_audit_prepare's, with and without a time field, in a buffer that
 * held a longer line; a line of exactly TG_AUDIT_LINE_MAX bytes is made
 * and one byte more refused, as tg_audit_prepare does.
 */
static void
test_prepare_fields_known(void **state)
{
	const char *t = "2026-01-01T00:00:00.000Z", *prov = "{\"level\":\"hsm-operator\"}";
	struct tg_audit_line a = {0}, b = {0};
	struct tg_audit_field f[6];
	struct tg_error err;
	json_t *rec;
	char *sb, *big;
	size_t base;

	(void)state;
	rec = json_pack("{s:s, s:{s:s}, s:s, s:I, s:s, s:I}", "time", t, "provenance", "level",
	                "hsm-operator", "method", "GET", "bytes", (json_int_t)0, "route", "r_1",
	                "status", (json_int_t)-200);
	assert_non_null(rec);
	f[0] = (struct tg_audit_field){.key = "status", .kind = TG_AUDIT_INT, .i = -200};
	f[1] = (struct tg_audit_field){.key = "provenance", .kind = TG_AUDIT_TEXT, .s = prov};
	f[1].len = strlen(prov);
	f[2] =
	    (struct tg_audit_field){.key = "method", .kind = TG_AUDIT_PLAIN, .s = "GET", .len = 3};
	f[3] = (struct tg_audit_field){.key = "bytes", .kind = TG_AUDIT_INT, .i = 0};
	f[4] = (struct tg_audit_field){.key = "route", .kind = TG_AUDIT_STR, .s = "r_1"};
	f[5] = (struct tg_audit_field){.key = "time", .kind = TG_AUDIT_STR, .s = t};
	/* b first holds a longer line: nothing of it may remain */
	fill_longer(&b);
	assert_same_line(rec, f, 6, &a, &b);
	/* no time field: one is added after "prev" */
	assert_int_equal(tg_audit_prepare_fields(f, 5, &b, &err), 0);
	sb = line_str(&b);
	assert_memory_equal(sb, "{\"prev\":\"" TG_AUDIT_GENESIS "\",\"time\":\"", 83);
	assert_non_null(strstr(sb, "Z\",\"bytes\":0,\"method\":\"GET\",\"provenance\":{"));
	assert_non_null(strstr(sb, ",\"route\":\"r_1\",\"status\":-200}"));
	free(sb);
	/* keys sorted as jansson sorts them, also keys alike in their first 8
	 * bytes; a key given twice is refused, also one longer than 8 bytes */
	{
		static const char *const keys[] = {"abcdefghi", "b",         "abcdefgh", "abcdefg",
		                                   "abcdefgha", "abcdefgh_", "abcdefga", "a"};
		struct tg_audit_field g[8];
		size_t i;

		json_decref(rec);
		rec = json_pack("{s:s}", "time", t);
		assert_non_null(rec);
		g[0] = f[5];
		for (i = 0; i < 7; i++) {
			g[i + 1] = (struct tg_audit_field){
			    .key = keys[i], .kind = TG_AUDIT_INT, .i = (json_int_t)i};
			assert_int_equal(
			    json_object_set_new(rec, keys[i], json_integer((json_int_t)i)), 0);
		}
		assert_same_line(rec, g, 8, &a, &b);
		g[7].key = "abcdefghi";
		assert_int_equal(tg_audit_prepare_fields(g, 8, &b, &err), TG_ERR_INVALID_ARG);
		assert_string_equal(err.msg, "audit record field 'abcdefghi' is given twice");
		g[7].key = "abcdefgh";
		assert_int_equal(tg_audit_prepare_fields(g, 8, &b, &err), TG_ERR_INVALID_ARG);
		g[7].key = keys[7];
		assert_int_equal(tg_audit_prepare_fields(g, 8, &b, &err), 0);
	}
	/* PLAIN needs its string; an empty one is "" */
	f[2].s = NULL;
	assert_int_equal(tg_audit_prepare_fields(f, 6, &b, &err), TG_ERR_INVALID_ARG);
	f[2].s = "";
	f[2].len = 0;
	assert_int_equal(tg_audit_prepare_fields(f, 6, &b, &err), 0);
	sb = line_str(&b);
	assert_non_null(strstr(sb, ",\"method\":\"\","));
	free(sb);
	/* the limit: {"prev":"<64>","time":"<24>","path":"<s>"} is 112 + strlen(s) */
	base = strlen("{\"prev\":\"\",\"time\":\"\",\"path\":\"\"}") + 64 + 24;
	big = malloc(TG_AUDIT_LINE_MAX);
	assert_non_null(big);
	memset(big, 'p', TG_AUDIT_LINE_MAX - base);
	big[TG_AUDIT_LINE_MAX - base] = '\0';
	f[0] = (struct tg_audit_field){.key = "path", .kind = TG_AUDIT_STR, .s = big};
	f[1] = f[5];
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), 0);
	assert_int_equal(b.len, TG_AUDIT_LINE_MAX);
	f[0] = (struct tg_audit_field){
	    .key = "path", .kind = TG_AUDIT_PLAIN, .s = big, .len = TG_AUDIT_LINE_MAX - base};
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), 0);
	assert_int_equal(b.len, TG_AUDIT_LINE_MAX);
	json_decref(rec);
	rec = json_pack("{s:s, s:s}", "time", t, "path", big);
	assert_non_null(rec);
	assert_int_equal(tg_audit_prepare(rec, &a, &err), 0);
	assert_int_equal(a.len, TG_AUDIT_LINE_MAX);
	json_decref(rec);
	memset(big, 'p', TG_AUDIT_LINE_MAX - base + 1);
	big[TG_AUDIT_LINE_MAX - base + 1] = '\0';
	f[0] = (struct tg_audit_field){.key = "path", .kind = TG_AUDIT_STR, .s = big};
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "audit record is longer than the 1048576-byte limit");
	f[0].kind = TG_AUDIT_PLAIN;
	f[0].len = TG_AUDIT_LINE_MAX - base + 1;
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	rec = json_pack("{s:s, s:s}", "time", t, "path", big);
	assert_non_null(rec);
	assert_int_equal(tg_audit_prepare(rec, &a, &err), TG_ERR_INVALID_ARG);
	json_decref(rec);
	free(big);
	tg_audit_line_clear(&a);
	tg_audit_line_clear(&b);
}

/*
 * tg_audit_prepare_fields makes exactly tg_audit_prepare's line of the
 * same record (escapes, non-ASCII, invalid UTF-8, NULL, integers, nested
 * objects with unsorted keys, text from tg_audit_dump_value, fields in any
 * order), also in a line buffer reused from a longer record; and refuses
 * what would make a line tg_audit_prepare could not.
 */
static void
test_prepare_fields(void **state)
{
	const char *t = "2026-01-01T00:00:00.000Z";
	const char *nasty = "a\"b\\c\n\x01 \xc3\xa9 \xf0\x9f\x94\x91 </script>";
	struct tg_audit_line a = {0}, b = {0};
	struct tg_audit_field f[8];
	struct tg_error err;
	json_t *rec, *nested;
	char *text, *sa, *sb;
	size_t tlen;

	(void)state;
	nested = json_pack("{s:s, s:i, s:[i, s], s:b}", "zeta", "z", "alpha", 1, "mid", 2,
	                   "\xc3\xa9", "flag", 0);
	assert_non_null(nested);
	assert_int_equal(tg_audit_dump_value(nested, &text, &tlen), 0);
	assert_string_equal(text,
	                    "{\"alpha\":1,\"flag\":false,\"mid\":[2,\"\\u00E9\"],\"zeta\":\"z\"}");
	assert_int_equal(tlen, strlen(text));
	rec = json_pack("{s:s, s:s, s:n, s:I, s:I, s:O, s:O, s:s}", "time", t, "path", nasty,
	                "route", "neg", (json_int_t)-42, "big", (json_int_t)9007199254740993LL,
	                "prov", nested, "json", nested, "event", "request");
	assert_non_null(rec);
	/* route: invalid UTF-8 becomes null, as jset_str makes it */
	f[0] = (struct tg_audit_field){.key = "path", .kind = TG_AUDIT_STR, .s = nasty};
	f[1] = (struct tg_audit_field){.key = "neg", .kind = TG_AUDIT_INT, .i = -42};
	f[2] = (struct tg_audit_field){.key = "route", .kind = TG_AUDIT_STR, .s = "\xff\xfe"};
	f[3] =
	    (struct tg_audit_field){.key = "prov", .kind = TG_AUDIT_TEXT, .s = text, .len = tlen};
	f[4] = (struct tg_audit_field){.key = "time", .kind = TG_AUDIT_STR, .s = t};
	f[5] = (struct tg_audit_field){.key = "big", .kind = TG_AUDIT_INT, .i = 9007199254740993LL};
	f[6] = (struct tg_audit_field){.key = "json", .kind = TG_AUDIT_JSON, .json = nested};
	f[7] = (struct tg_audit_field){.key = "event", .kind = TG_AUDIT_STR, .s = "request"};
	/* b first holds a longer record: nothing of it may remain */
	fill_longer(&b);
	assert_same_line(rec, f, 8, &a, &b);
	/* without a time field both add one, in the same place */
	assert_int_equal(tg_audit_prepare_fields(f, 4, &b, &err), 0);
	sb = line_str(&b);
	assert_memory_equal(sb, "{\"prev\":\"" TG_AUDIT_GENESIS "\",\"time\":\"", 83);
	assert_non_null(strstr(sb, "Z\",\"neg\":-42,\"path\":"));
	free(sb);
	/* refusals: nothing to write, bad keys, "prev", a key twice, no value */
	assert_int_equal(tg_audit_prepare_fields(f, 0, &b, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "an audit record needs 1 to 32 fields, not 0");
	f[1].key = "Neg";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg,
	                    "audit record field 1 ('Neg'): the key must be lower-case letters, "
	                    "digits and '_' (not \"prev\") and the value present");
	f[1].key = "a\"b";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	f[1].key = "prev";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	/* a bad byte after good ones, past the end of "prev", none at all */
	f[1].key = "ne-g";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	f[1].key = "neg\x80";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	f[1].key = "";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	f[1].key = NULL;
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg,
	                    "audit record field 1 ('(null)'): the key must be lower-case letters, "
	                    "digits and '_' (not \"prev\") and the value present");
	/* keys that only start like "prev" are keys like any other */
	f[1].key = "pre";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), 0);
	f[1].key = "prev_2";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), 0);
	sb = line_str(&b);
	assert_non_null(strstr(sb, ",\"prev_2\":"));
	free(sb);
	f[1].key = "path";
	assert_int_equal(tg_audit_prepare_fields(f, 2, &b, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "audit record field 'path' is given twice");
	f[1].key = "neg";
	f[6].json = NULL;
	assert_int_equal(tg_audit_prepare_fields(f, 8, &b, &err), TG_ERR_INVALID_ARG);
	f[3].s = NULL;
	assert_int_equal(tg_audit_prepare_fields(f, 4, &b, &err), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_audit_dump_value(NULL, &sa, &tlen), TG_ERR_INVALID_ARG);
	json_decref(rec);
	json_decref(nested);
	free(text);
	tg_audit_line_clear(&a);
	tg_audit_line_clear(&b);
}

/* What tg_audit_prepare refuses and how it frames a line. */
/* The n-th record of test_kept, with its own time: the same line each time. */
static json_t *
kept_rec(int n)
{
	return json_pack("{s:s, s:i, s:s}", "time", "2026-12-03T03:00:00.000Z", "n", n, "event",
	                 n % 2 ? "request" : "response");
}

static char *
slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "r");
	char *b;

	assert_non_null(f);
	*n = file_size(p);
	b = malloc(*n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

/*
 * Lines kept (tg_audit_keep) and written with the next line in one write
 * (tg_audit_write_kept): the same bytes as written one by one; what is not
 * a prepared line is refused; a failed write loses the kept lines with
 * its own and the chain goes on intact.
 */
static void
test_kept(void **state)
{
	char p[256], q[256], *a, *b;
	const char *paths[1] = {p};
	struct tg_audit *log = NULL, *one = NULL;
	struct tg_audit_line l = {0}, kept = {0};
	struct tg_error err;
	struct rlimit old, lim;
	size_t na, nb, size;
	json_t *rec;
	int i;

	(void)state;
	path_in(p, sizeof(p), "kept.log");
	path_in(q, sizeof(q), "kept-one.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_NEVER, &log, &err), 0);
	assert_int_equal(tg_audit_open(q, TG_AUDIT_FSYNC_NEVER, &one, &err), 0);
	/* nothing kept, no line: nothing written */
	assert_int_equal(tg_audit_write_kept(log, &kept, NULL, &err), 0);
	assert_int_equal(file_size(p), 0);
	/* 1, 2, 3 kept, written with 4; 5 kept, written alone; 6 as before */
	for (i = 1; i <= 6; i++) {
		rec = kept_rec(i);
		assert_int_equal(tg_audit_write(one, rec, &err), 0);
		assert_int_equal(tg_audit_prepare(rec, &l, &err), 0);
		json_decref(rec);
		if (i == 4 || i == 6) {
			assert_int_equal(tg_audit_write_kept(log, i == 4 ? &kept : NULL, &l, &err),
			                 0);
			assert_int_equal(kept.len, 0);
		} else {
			assert_int_equal(tg_audit_keep(&kept, &l, &err), 0);
		}
		if (i < 4)
			assert_int_equal(file_size(p), 0);
		if (i == 5)
			assert_int_equal(tg_audit_write_kept(log, &kept, NULL, &err), 0);
	}
	assert_string_equal(tg_audit_head(log), tg_audit_head(one));
	a = slurp(p, &na);
	b = slurp(q, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	free(a);
	free(b);
	tg_audit_close(one);
	/* a line from elsewhere is not kept; a kept buffer that is not made of
	 * prepared lines is refused, nothing written, the buffer emptied */
	tg_audit_line_clear(&l);
	assert_int_equal(tg_audit_keep(&kept, &l, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "not an audit line made by tg_audit_prepare");
	size = file_size(p);
	rec = kept_rec(7);
	assert_int_equal(tg_audit_prepare(rec, &l, &err), 0);
	assert_int_equal(tg_audit_keep(&kept, &l, &err), 0);
	kept.buf[1] = 'x'; /* {"xrev":... */
	assert_int_equal(tg_audit_write_kept(log, &kept, &l, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "not an audit line kept by tg_audit_keep");
	assert_int_equal(kept.len, 0);
	assert_int_equal(file_size(p), size);
	/* a failed write: the kept lines are lost with it, the chain goes on */
	assert_int_equal(tg_audit_keep(&kept, &l, &err), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = size + 40;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(tg_audit_write_kept(log, &kept, &l, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot write to audit log"));
	assert_int_equal(kept.len, 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(tg_audit_keep(&kept, &l, &err), 0);
	assert_int_equal(tg_audit_write_kept(log, &kept, &l, &err), 0);
	json_decref(rec);
	tg_audit_line_clear(&l);
	tg_audit_line_clear(&kept);
	tg_audit_close(log);
	verify_ok(paths, 1, 8, 1);
}

static void
test_prepare(void **state)
{
	char p[256], line[512], *big;
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_audit_line l = {0};
	struct tg_error err;
	size_t size;
	json_t *rec;
	FILE *f;

	(void)state;
	path_in(p, sizeof(p), "prepare.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_NEVER, &log, &err), 0);
	/* an empty record: prev and time only */
	rec = json_object();
	assert_int_equal(tg_audit_write(log, rec, &err), 0);
	json_decref(rec);
	/* a record's own time is kept, not doubled */
	rec = json_pack("{s:s, s:i}", "time", "2026-01-01T00:00:00.000Z", "n", 2);
	assert_int_equal(tg_audit_write(log, rec, &err), 0);
	json_decref(rec);
	size = file_size(p);
	/* a record may not bring its own prev: nothing written */
	rec = json_pack("{s:s}", "prev", TG_AUDIT_GENESIS);
	assert_int_equal(tg_audit_write(log, rec, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg,
	                    "an audit record must not have a \"prev\" field: the log sets it");
	json_decref(rec);
	/* nor be longer than the limit */
	big = malloc(TG_AUDIT_LINE_MAX);
	assert_non_null(big);
	memset(big, 'a', TG_AUDIT_LINE_MAX - 1);
	big[TG_AUDIT_LINE_MAX - 1] = '\0';
	rec = json_pack("{s:s}", "big", big);
	assert_int_equal(tg_audit_prepare(rec, &l, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "audit record is longer than the 1048576-byte limit");
	assert_int_equal(tg_audit_write(log, rec, &err), TG_ERR_INVALID_ARG);
	json_decref(rec);
	free(big);
	assert_int_equal(file_size(p), size);
	/* a line from elsewhere is refused */
	tg_audit_line_clear(&l);
	assert_int_equal(tg_audit_write_prepared(log, &l, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "not an audit line made by tg_audit_prepare");
	/* one prepared line written twice: two records, each with its prev */
	rec = json_pack("{s:i}", "n", 3);
	assert_int_equal(tg_audit_prepare(rec, &l, &err), 0);
	json_decref(rec);
	assert_int_equal(tg_audit_write_prepared(log, &l, &err), 0);
	assert_int_equal(tg_audit_write_prepared(log, &l, &err), 0);
	tg_audit_line_clear(&l);
	tg_audit_close(log);
	verify_ok(paths, 1, 4, 1);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(strlen(line), strlen("{\"prev\":\"" TG_AUDIT_GENESIS
	                                      "\",\"time\":\"2026-12-02T13:18:01.123Z\"}\n"));
	assert_string_equal(line + strlen(line) - 4, "Z\"}\n");
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\",\"n\":2,\"time\":\"2026-01-01T00:00:00.000Z\"}\n"));
	assert_null(strstr(strstr(line, "\"time\"") + 1, "\"time\""));
	fclose(f);
}

struct preparer {
	struct tg_audit *log;
	pthread_mutex_t *mu;
	int from, failures;
};

/* The gate's way: the line made outside the lock, written under it. */
static void *
preparer_main(void *arg)
{
	struct preparer *pr = arg;
	struct tg_audit_line l = {0};
	struct tg_error err;
	json_t *rec;
	int i;

	for (i = pr->from; i < pr->from + 500; i++) {
		rec = json_pack("{s:i, s:s}", "n", i, "route", "datasets-read");
		if (rec == NULL || tg_audit_prepare(rec, &l, &err) != 0)
			pr->failures++;
		json_decref(rec);
		pthread_mutex_lock(pr->mu);
		if (tg_audit_write_prepared(pr->log, &l, &err) != 0)
			pr->failures++;
		pthread_mutex_unlock(pr->mu);
	}
	tg_audit_line_clear(&l);
	return NULL;
}

static void
test_prepared_threads(void **state)
{
	char p[256];
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_error err;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct preparer pr[2];
	pthread_t t[2];
	int i;

	(void)state;
	path_in(p, sizeof(p), "prepared.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_BATCH, &log, &err), 0);
	for (i = 0; i < 2; i++) {
		pr[i].log = log;
		pr[i].mu = &mu;
		pr[i].from = i * 1000;
		pr[i].failures = 0;
		assert_int_equal(pthread_create(&t[i], NULL, preparer_main, &pr[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(pr[i].failures, 0);
	}
	tg_audit_close(log);
	verify_ok(paths, 1, 1000, 1);
}

static int
write_one(struct tg_audit *log, int n, struct tg_error *err)
{
	json_t *rec = json_pack("{s:i}", "n", n);
	int r;

	assert_non_null(rec);
	r = tg_audit_write(log, rec, err);
	json_decref(rec);
	return r;
}

/* Polls (1 ms steps) until tg_audit_write succeeds or ms pass: its result. */
static int
write_until_ok(struct tg_audit *log, int n, long ms, struct tg_error *err)
{
	int r;

	while ((r = write_one(log, n, err)) != 0 && ms-- > 0)
		usleep(1000);
	return r;
}

/* A failing sync: the writer fails closed, then resumes. */
static void
test_batch_sync_failure(void **state)
{
	char p[256], want[400];
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_error err;
	size_t size, ok = 1;
	int r;

	(void)state;
	path_in(p, sizeof(p), "sync-batch.log");
	snprintf(want, sizeof(want), "cannot fsync audit log '%s': %s", p, strerror(EIO));
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_BATCH, &log, &err), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_audit_sync_failed(log, &err), 0);
	assert_string_equal(err.msg, "");
	atomic_store(&sync_fails, 1);
	assert_int_equal(write_one(log, 1, &err), 0);
	/* the sync thread's sync fails: the next writes are refused */
	while ((r = write_one(log, 2, &err)) == 0 && ok < 5000) {
		ok++;
		usleep(1000);
	}
	assert_int_equal(r, TG_ERR_IO);
	assert_string_equal(err.msg, want);
	/* refused writes write nothing */
	size = file_size(p);
	assert_int_equal(write_one(log, 3, &err), TG_ERR_IO);
	assert_int_equal(file_size(p), size);
	/* the look without a sync says so too, and an explicit sync reports
	 * the same failure */
	tg_error_clear(&err);
	assert_int_equal(tg_audit_sync_failed(log, &err), TG_ERR_IO);
	assert_string_equal(err.msg, want);
	assert_int_equal(tg_audit_sync(log, &err), TG_ERR_IO);
	assert_string_equal(err.msg, want);
	/* the disk is back: the sync thread's retry succeeds, writes resume */
	atomic_store(&sync_fails, 0);
	assert_int_equal(write_until_ok(log, 4, 5000, &err), 0);
	assert_int_equal(tg_audit_sync_failed(log, &err), 0);
	tg_audit_close(log);
	verify_ok(paths, 1, ok + 1, 1);
}

static void
test_always_sync_failure(void **state)
{
	char p[256], want[400];
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_error err;
	size_t size;
	int calls;

	(void)state;
	path_in(p, sizeof(p), "sync-always.log");
	snprintf(want, sizeof(want), "cannot fsync audit log '%s': %s", p, strerror(EIO));
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	calls = atomic_load(&sync_calls);
	assert_int_equal(write_one(log, 1, &err), 0);
	assert_int_equal(atomic_load(&sync_calls), calls + 1);
	atomic_store(&sync_fails, 1);
	/* the record is written but not synced: the write fails (fail closed) */
	assert_int_equal(write_one(log, 2, &err), TG_ERR_IO);
	assert_string_equal(err.msg, want);
	/* still failing: refused, nothing written */
	size = file_size(p);
	assert_int_equal(write_one(log, 3, &err), TG_ERR_IO);
	assert_string_equal(err.msg, want);
	assert_int_equal(file_size(p), size);
	atomic_store(&sync_fails, 0);
	/* mode always has no sync thread: the next write tries the sync again */
	assert_int_equal(write_one(log, 4, &err), 0);
	tg_audit_close(log);
	verify_ok(paths, 1, 3, 1);
}

/*
 * A thread syncing the log in a loop while the test writes. Each finished
 * sync is counted under mu and announced on cv, so that the writer can wait
 * for one (syncer_wait) instead of hoping the thread got to run.
 */
struct syncer {
	struct tg_audit *log;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, syncs, failures; /* under mu */
};

static void *
syncer_main(void *arg)
{
	struct syncer *sy = arg;
	struct tg_error err;
	int r, stop = 0;

	while (!stop) {
		r = tg_audit_sync(sy->log, &err);
		pthread_mutex_lock(&sy->mu);
		if (r != 0)
			sy->failures++;
		sy->syncs++;
		pthread_cond_broadcast(&sy->cv);
		stop = sy->stop;
		pthread_mutex_unlock(&sy->mu);
	}
	return NULL;
}

/* Waits until the syncer finished a sync that began after this call. */
static void
syncer_wait(struct syncer *sy)
{
	int seen;

	pthread_mutex_lock(&sy->mu);
	seen = sy->syncs;
	/* the sync counted as seen+1 may have begun before this call */
	while (sy->syncs < seen + 2)
		pthread_cond_wait(&sy->cv, &sy->mu);
	pthread_mutex_unlock(&sy->mu);
}

/*
 * Batch mode with syncs racing the writer (the gate's timer on the main
 * loop syncs while workers write, without the writer's lock): every line
 * is written whole, the chain stays intact, also across a rotation, and
 * everything is synced at the end.
 */
static void
test_sync_races_writes(void **state)
{
	char p[256], old[256];
	const char *paths[2] = {old, p};
	struct tg_audit *log = NULL;
	struct tg_error err;
	struct syncer sy;
	pthread_t t;
	int i;

	(void)state;
	path_in(p, sizeof(p), "race.log");
	path_in(old, sizeof(old), "race.log.1");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_BATCH, &log, &err), 0);
	memset(&sy, 0, sizeof(sy));
	sy.log = log;
	assert_int_equal(pthread_mutex_init(&sy.mu, NULL), 0);
	assert_int_equal(pthread_cond_init(&sy.cv, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, syncer_main, &sy), 0);
	for (i = 0; i < 10; i++) {
		write_n(log, i * 100, 100);
		/* a sync after every hundred lines, whatever the scheduler did:
		 * syncs meet writes in every round, not only when the thread
		 * happened to run (under load it may not have, before) */
		syncer_wait(&sy);
		if (i == 4) {
			assert_int_equal(rename(p, old), 0);
			assert_int_equal(tg_audit_reopen(log, &err), 0);
		}
	}
	pthread_mutex_lock(&sy.mu);
	sy.stop = 1;
	pthread_mutex_unlock(&sy.mu);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(sy.failures, 0);
	assert_true(sy.syncs >= 20);
	pthread_cond_destroy(&sy.cv);
	pthread_mutex_destroy(&sy.mu);
	assert_int_equal(tg_audit_sync(log, &err), 0);
	assert_int_equal(tg_audit_unsynced(log), 0);
	tg_audit_close(log);
	verify_ok(paths, 2, 1000, 1);
}

static void
test_unsafe_files(void **state)
{
	char p[256], l[256], msg[600];
	struct tg_audit *log = NULL;
	struct tg_error err;
	FILE *f;

	(void)state;
	path_in(p, sizeof(p), "unsafe.log");
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), TG_ERR_PERMISSION);
	assert_null(log);
	snprintf(msg, sizeof(msg), "run 'chmod 600 %s'", p);
	assert_non_null(strstr(err.msg, msg));
	assert_non_null(strstr(err.msg, "(mode 0666)"));
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), TG_ERR_PERMISSION);
	assert_non_null(strstr(err.msg, "(mode 0640)"));
	assert_int_equal(chmod(p, 0400), 0);
	/* stricter than 0600 passes the check but cannot be opened for writing
	 * (unless root) */
	if (geteuid() != 0) {
		assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), TG_ERR_IO);
		assert_non_null(strstr(err.msg, "cannot open audit log"));
	}
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	tg_audit_close(log);
	log = NULL;
	path_in(l, sizeof(l), "link.log");
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(tg_audit_open(l, TG_AUDIT_FSYNC_ALWAYS, &log, &err), TG_ERR_PERMISSION);
	assert_non_null(strstr(err.msg, "is a symbolic link, which tokengate does not follow"));
	path_in(p, sizeof(p), "no/such/dir.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), TG_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "does not exist"));
}

static void
test_write_failure(void **state)
{
	char p[256];
	const char *paths[1] = {p};
	struct tg_audit *log = NULL;
	struct tg_error err;
	struct rlimit old, lim;
	json_t *rec;
	size_t size;

	(void)state;
	path_in(p, sizeof(p), "full.log");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	write_n(log, 1, 2);
	size = file_size(p);
	/* the file may grow by 40 bytes only: the next line is cut short */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = size + 40;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rec = json_pack("{s:i}", "n", 3);
	assert_int_equal(tg_audit_write(log, rec, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot write to audit log"));
	assert_int_equal(file_size(p), size + 40);
	/* still full: still an error */
	assert_int_equal(tg_audit_write(log, rec, &err), TG_ERR_IO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	/* room again: the torn bytes are cut off and the chain goes on */
	assert_int_equal(tg_audit_write(log, rec, &err), 0);
	json_decref(rec);
	tg_audit_close(log);
	verify_ok(paths, 1, 3, 1);
	/* not an object */
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	rec = json_string("x");
	assert_int_equal(tg_audit_write(log, rec, &err), TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "an audit record must be a JSON object");
	json_decref(rec);
	tg_audit_close(log);
}

/*
 * A write fails (the file may not grow), then the log is rotated while
 * still failing: the old file must not keep the failed line's torn bytes,
 * or the rotated chain no longer verifies.
 */
static void
test_rotation_after_failure(void **state)
{
	char p[256], old_p[256];
	const char *paths[2] = {old_p, p};
	struct tg_audit *log = NULL;
	struct tg_error err;
	struct rlimit old, lim;
	json_t *rec;
	size_t size;

	(void)state;
	path_in(p, sizeof(p), "rot-full.log");
	path_in(old_p, sizeof(old_p), "rot-full.log.1");
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_ALWAYS, &log, &err), 0);
	write_n(log, 1, 2);
	size = file_size(p);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = size + 40;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rec = json_pack("{s:i}", "n", 3);
	assert_int_equal(tg_audit_write(log, rec, &err), TG_ERR_IO);
	assert_int_equal(file_size(p), size + 40);
	/* rotated while the limit still holds: the new file has room */
	assert_int_equal(rename(p, old_p), 0);
	assert_int_equal(tg_audit_reopen(log, &err), 0);
	assert_int_equal(file_size(old_p), size);
	assert_int_equal(tg_audit_write(log, rec, &err), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	json_decref(rec);
	tg_audit_close(log);
	verify_ok(paths, 2, 3, 1);
}

/* the verifier's refusals, one per flaw, each with its line */
static void
test_verify_flaws(void **state)
{
	static const struct {
		const char *text;
		enum tg_audit_flaw flaw;
		size_t line;
		const char *detail;
	} rows[] = {
	    {"", TG_AUDIT_INTACT, 0, ""},
	    {"\n", TG_AUDIT_NOT_JSON, 1, "not a JSON object"},
	    {"[1]\n", TG_AUDIT_NOT_JSON, 1, "another JSON value"},
	    {"{\"a\":1}\n", TG_AUDIT_NO_PREV, 1, "no \"prev\" field"},
	    {"{\"prev\":1}\n", TG_AUDIT_BAD_PREV, 1, "not a SHA-256"},
	    {"{\"prev\":\"" TG_AUDIT_GENESIS "\",\"prev\":\"" TG_AUDIT_GENESIS "\"}\n",
	     TG_AUDIT_NOT_JSON, 1, "duplicate"},
	    {"{\"prev\":\"" TG_AUDIT_GENESIS "\"}\n{\"prev\":\"" TG_AUDIT_GENESIS "\"}\n",
	     TG_AUDIT_PREV_MISMATCH, 2, "prev does not match the SHA-256 of line 1"},
	    {"{\"prev\":\"" TG_AUDIT_GENESIS "\"}", TG_AUDIT_TORN, 1, "torn last line"},
	    {"{\"prev\":\"" TG_AUDIT_GENESIS "\"}\n\0x\n", TG_AUDIT_NOT_JSON, 2, "not a JSON"},
	};
	struct tg_audit_report rep;
	struct tg_error err;
	size_t i, n;
	uint8_t *copy;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		n = strlen(rows[i].text);
		if (i == 8)
			n += 3;
		copy = tg_test_memdup(rows[i].text, n);
		assert_int_equal(tg_audit_verify_mem(copy, n, "x.log", 0, &rep, &err), 0);
		free(copy);
		if (rep.flaw != rows[i].flaw || rep.line != rows[i].line ||
		    strstr(rep.detail, rows[i].detail) == NULL)
			fail_msg("row %zu: flaw %d line %zu: %s", i, rep.flaw, rep.line,
			         rep.detail);
	}
	/* a line longer than the limit is refused, not held in memory */
	n = TG_AUDIT_LINE_MAX + 2;
	copy = malloc(n);
	assert_non_null(copy);
	memset(copy, 'a', n);
	assert_int_equal(tg_audit_verify_mem(copy, n, "x.log", 0, &rep, &err), 0);
	free(copy);
	assert_int_equal(rep.flaw, TG_AUDIT_TOO_LONG);
	assert_int_equal(rep.line, 1);
	assert_string_equal(rep.detail, "line longer than 1048576 bytes");
}

/* text (n bytes) through tg_audit_verify_mem with flags: the report. */
static struct tg_audit_report
verify_text(const char *text, size_t n, unsigned flags)
{
	struct tg_audit_report rep;
	struct tg_error err;
	uint8_t *copy = tg_test_memdup(text, n);

	assert_int_equal(tg_audit_verify_mem(copy, n, "x.log", flags, &rep, &err), 0);
	free(copy);
	return rep;
}

/*
 * The verifier compares whole hashes: a prev that differs from the hash of
 * the line before, or from the genesis, only in its last hex digit breaks
 * the chain; "prev" is lower-case hex only; a single torn byte is a torn
 * line.
 */
static void
test_verify_exact(void **state)
{
	static const char first[] = "{\"prev\":\"" TG_AUDIT_GENESIS "\"}";
	char text[512], hash[TG_AUDIT_HASH_HEX], near[TG_AUDIT_HASH_HEX];
	struct tg_audit_report rep;
	size_t i;

	(void)state;
	/* the chain: line 2's prev is line 1's hash, but for its last digit */
	assert_int_equal(tg_audit_line_hash(first, strlen(first), hash), 0);
	snprintf(text, sizeof(text), "%s\n{\"prev\":\"%s\"}\n", first, hash);
	rep = verify_text(text, strlen(text), TG_AUDIT_VERIFY_GENESIS);
	assert_int_equal(rep.flaw, TG_AUDIT_INTACT);
	assert_int_equal(rep.lines, 2);
	memcpy(near, hash, sizeof(near));
	near[TG_AUDIT_HASH_HEX - 2] = near[TG_AUDIT_HASH_HEX - 2] == '0' ? '1' : '0';
	snprintf(text, sizeof(text), "%s\n{\"prev\":\"%s\"}\n", first, near);
	rep = verify_text(text, strlen(text), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_PREV_MISMATCH);
	assert_int_equal(rep.line, 2);
	/* the genesis: all 64 digits */
	memcpy(near, TG_AUDIT_GENESIS, sizeof(near));
	near[TG_AUDIT_HASH_HEX - 2] = '1';
	snprintf(text, sizeof(text), "{\"prev\":\"%s\"}\n", near);
	rep = verify_text(text, strlen(text), TG_AUDIT_VERIFY_GENESIS);
	assert_int_equal(rep.flaw, TG_AUDIT_NOT_GENESIS);
	assert_int_equal(rep.line, 1);
	/* without the genesis check any first prev goes, but only in lower case */
	rep = verify_text(text, strlen(text), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_INTACT);
	for (i = 0; i < TG_AUDIT_HASH_HEX - 1; i++)
		near[i] = "0123456789ABCDEF"[i % 16];
	snprintf(text, sizeof(text), "{\"prev\":\"%s\"}\n", near);
	rep = verify_text(text, strlen(text), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_BAD_PREV);
	assert_int_equal(rep.line, 1);
	/* one byte after the last newline is a torn line */
	snprintf(text, sizeof(text), "%s\n{", first);
	rep = verify_text(text, strlen(text), 0);
	assert_int_equal(rep.flaw, TG_AUDIT_TORN);
	assert_int_equal(rep.line, 2);
	assert_non_null(strstr(rep.detail, "torn last line: 1 bytes"));
}

static int
setup(void **state)
{
	(void)state;
	umask(077);
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chain),
	    cmocka_unit_test(test_rotation),
	    cmocka_unit_test(test_torn_tail),
	    cmocka_unit_test(test_fsync_modes),
	    cmocka_unit_test(test_sync_races_writes),
	    cmocka_unit_test(test_prepare),
	    cmocka_unit_test(test_kept),
	    cmocka_unit_test(test_prepare_fields),
	    cmocka_unit_test(test_prepare_fields_plain),
	    cmocka_unit_test(test_prepare_fields_known),
	    cmocka_unit_test(test_prepared_threads),
	    cmocka_unit_test(test_batch_sync_failure),
	    cmocka_unit_test(test_always_sync_failure),
	    cmocka_unit_test(test_unsafe_files),
	    cmocka_unit_test(test_write_failure),
	    cmocka_unit_test(test_rotation_after_failure),
	    cmocka_unit_test(test_verify_flaws),
	    cmocka_unit_test(test_verify_exact),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
