/*
 * test_tok_core_args.c — the shared layer's refusals that test_buf and
 * test_file leave out: every tg_buf call given NULL (an error, or a
 * harmless no-op, never a crash), a writer over no storage, a TLV left open
 * too long to close; tg_file's directory/regular-file mix-ups, open
 * failures with the OS reason, the words of a mode refusal, and a write
 * whose rename fails (nothing left behind).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_file.h"
#include "tg_test.h"

static void
test_buf_null_args(void **state)
{
	struct tg_buf b, v;
	uint8_t x = 0xAA, out[4];
	uint32_t tag = 0;
	size_t mark = 0, len = 0;
	uint8_t *p = NULL;

	(void)state;
	assert_int_equal(tg_buf_alloc(NULL, 1, 2), TG_ERR_INVALID_ARG);
	tg_buf_free(NULL);
	tg_buf_reset(NULL);
	assert_int_equal(tg_buf_remaining(NULL), 0);
	assert_null(tg_buf_cur(NULL));
	assert_int_equal(tg_buf_len(NULL), 0);
	assert_null(tg_buf_data(NULL));
	assert_int_equal(tg_buf_avail(NULL), 0);
	assert_int_equal(tg_buf_expect_end(NULL), 0);
	assert_int_equal(tg_buf_get_u8(NULL, &x), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_peek_u8(NULL, &x), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_skip(NULL, 1), TG_ERR_INVALID_ARG);
	assert_int_equal(x, 0xAA);
	assert_int_equal(tg_buf_put_u8(NULL, 1), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_put_bytes(NULL, NULL, 0), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_tlv(NULL, &tag, &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_tlv_tag(NULL, 0x53, &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_find_tlv(NULL, 0x53, &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_stlv(NULL, &x, &v), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_tlv_end(NULL, 0), TG_ERR_INVALID_ARG);

	/* a reader with NULL value/sub/out */
	tg_buf_reader(&b, (const uint8_t *)"\x53\x01\x07", 3);
	assert_int_equal(tg_buf_get_tlv(&b, &tag, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x53, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_find_tlv(&b, 0x53, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_stlv(&b, &x, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_sub(&b, 1, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_get_bytes(&b, NULL, 1), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_put_buf(&b, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_remaining(&b), 3); /* nothing consumed */
	/* NULL tag pointers are allowed: the value is still found */
	assert_int_equal(tg_buf_get_tlv(&b, NULL, &v), 0);
	assert_int_equal(tg_buf_remaining(&v), 1);
	assert_int_equal(*tg_buf_cur(&v), 0x07);
	tg_buf_reader(&b, (const uint8_t *)"\x01\x01\x09", 3);
	assert_int_equal(tg_buf_get_stlv(&b, NULL, &v), 0);
	assert_int_equal(*tg_buf_cur(&v), 0x09);
	/* a reader is not stolen; a NULL output refused */
	assert_int_equal(tg_buf_steal(&b, &p, &len), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_steal(NULL, &p, &len), TG_ERR_INVALID_ARG);
	assert_null(p);
	/* a reader over nothing */
	tg_buf_reader(&b, NULL, 0);
	assert_null(tg_buf_cur(&b));
	assert_int_equal(tg_buf_get_bytes(&b, out, 0), 0);
	assert_int_equal(tg_buf_get_u8(&b, &x), TG_ERR_TRUNCATED);
	/* a mark that points at no open TLV */
	tg_buf_writer(&b, out, sizeof(out));
	assert_int_equal(tg_buf_tlv_begin(&b, 0x53, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_put_u8(&b, 0x01), 0);
	assert_int_equal(tg_buf_tlv_end(&b, 0), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_tlv_end(&b, 5), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_len(&b), 1);
	(void)mark;
}

/* A writer without storage has no room at all; a heap writer's steal
 * hands over exactly what was written. */
static void
test_buf_writer_edges(void **state)
{
	struct tg_buf b;
	uint8_t *p = NULL;
	size_t n = 0;

	(void)state;
	tg_buf_writer(&b, NULL, 64);
	assert_int_equal(tg_buf_avail(&b), 0);
	assert_int_equal(tg_buf_put_u8(&b, 1), TG_ERR_NO_SPACE);
	assert_int_equal(tg_buf_put_bytes(&b, NULL, 0), 0);
	assert_int_equal(tg_buf_len(&b), 0);
	/* heap: initial 0, grown on demand, stolen whole */
	assert_int_equal(tg_buf_alloc(&b, 0, 16), 0);
	assert_int_equal(tg_buf_avail(&b), 16);
	assert_int_equal(tg_buf_put_u32(&b, 0x01020304), 0);
	assert_int_equal(tg_buf_steal(&b, &p, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "\x01\x02\x03\x04", 4);
	assert_int_equal(tg_buf_len(&b), 0);
	free(p);
	/* an empty heap writer steals as NULL, 0 */
	p = (uint8_t *)&n;
	assert_int_equal(tg_buf_alloc(&b, 0, 16), 0);
	assert_int_equal(tg_buf_steal(&b, &p, &n), 0);
	assert_null(p);
	assert_int_equal(n, 0);
	/* the first put of an empty heap writer with max 0 */
	assert_int_equal(tg_buf_alloc(&b, 0, 0), 0);
	assert_int_equal(tg_buf_put_u8(&b, 1), TG_ERR_NO_SPACE);
	tg_buf_free(&b);
}

/* A TLV whose content outgrew the largest BER length cannot be closed;
 * put_tlv and tlv_size refuse such a length up front. */
static void
test_buf_tlv_too_long(void **state)
{
	struct tg_buf b;
	size_t mark = 0, big = (size_t)TG_TLV_MAX_LEN + 1;
	uint8_t *chunk;

	(void)state;
	assert_int_equal(tg_buf_tlv_size(0x53, big), 0);
	assert_int_equal(tg_buf_alloc(&b, 0, big + 16), 0);
	assert_int_equal(tg_buf_put_tlv(&b, 0x53, (const uint8_t *)"", big), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_buf_len(&b), 0);
	assert_int_equal(tg_buf_tlv_begin(&b, 0x53, &mark), 0);
	chunk = calloc(1, big);
	assert_non_null(chunk);
	assert_int_equal(tg_buf_put_bytes(&b, chunk, big), 0);
	free(chunk);
	assert_int_equal(tg_buf_tlv_end(&b, mark), TG_ERR_INVALID_ARG);
	/* still open: the placeholder every reader refuses */
	assert_int_equal(tg_buf_data(&b)[mark], 0x80);
	tg_buf_free(&b);
}

struct fx {
	char dir[64];
	char file[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	FILE *fp;

	if (f == NULL || tg_test_tmpdir("tg-core-args", f->dir, sizeof(f->dir)) != 0)
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/plain", f->dir);
	if ((fp = fopen(f->file, "w")) == NULL)
		return -1;
	fputs("x\n", fp);
	fclose(fp);
	if (chmod(f->file, 0600) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char sub[192];

	snprintf(sub, sizeof(sub), "%s/target", f->dir);
	(void)rmdir(sub);
	tg_test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
test_file_kind_mixups(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	struct stat st;
	char p[192];
	int fd = -1;

	/* a regular file where a directory must be */
	assert_int_equal(stat(f->file, &st), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_file_check_stat(&st, f->file, "policy directory", TG_FILE_DIR, &err),
	                 TG_ERR_IO);
	assert_non_null(strstr(err.msg, "policy directory '"));
	assert_non_null(strstr(err.msg, "' is not a directory"));
	/* a path through a regular file: as a directory, "not a directory" */
	snprintf(p, sizeof(p), "%s/sub", f->file);
	tg_error_clear(&err);
	assert_int_equal(tg_file_open_checked(p, "state directory", TG_FILE_DIR, &fd, &err),
	                 TG_ERR_IO);
	assert_non_null(strstr(err.msg, "state directory '"));
	assert_non_null(strstr(err.msg, "is not a directory"));
	/* as a file: the OS reason */
	tg_error_clear(&err);
	assert_int_equal(tg_file_open_checked(p, "PIN file", 0, &fd, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open PIN file '"));
	assert_non_null(strstr(err.msg, "Not a directory"));
	/* a directory opened for appending */
	tg_error_clear(&err);
	assert_int_equal(tg_file_open_checked(f->dir, "audit log", TG_FILE_APPEND, &fd, &err),
	                 TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open audit log '"));
	assert_non_null(strstr(err.msg, "Is a directory"));
	assert_int_equal(fd, -1);
}

static void
test_file_open_name_too_long(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char p[512];
	int fd = -1;

	memset(p, 'a', sizeof(p) - 1);
	p[sizeof(p) - 1] = '\0';
	memcpy(p, f->dir, strlen(f->dir));
	p[strlen(f->dir)] = '/';
	tg_error_clear(&err);
	assert_int_equal(tg_file_open_checked(p, "CA key", TG_FILE_SECRET, &fd, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open CA key '"));
	assert_non_null(strstr(err.msg, "File name too long"));
	assert_int_equal(fd, -1);
}

/* A write over a directory: rename fails; the message names the step and
 * the temporary file is gone. */
static void
test_file_write_over_directory(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char target[192];

	snprintf(target, sizeof(target), "%s/target", f->dir);
	assert_int_equal(mkdir(target, 0700), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_file_write(target, "abc", 3, 0600, 0, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, target));
	assert_non_null(strstr(err.msg, "cannot rename the temporary file over it"));
	assert_non_null(strstr(err.msg, "Is a directory"));
	/* plain + target only: no temporary file left */
	assert_int_equal(tg_test_dir_count(f->dir), 2);
}

/* A path without a directory part is written in the current directory. */
static void
test_file_write_relative(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char cwd[4096], back[192];
	uint8_t *data = NULL;
	size_t len = 0;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_file_write("rel.out", "hello", 5, 0600, TG_FILE_NO_REPLACE, &err), 0);
	assert_int_equal(tg_file_write("rel.out", "again", 5, 0600, TG_FILE_NO_REPLACE, &err),
	                 TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "'rel.out' already exists"));
	assert_int_equal(chdir(cwd), 0);
	snprintf(back, sizeof(back), "%s/rel.out", f->dir);
	assert_int_equal(
	    tg_file_read_checked(back, "output", TG_FILE_SECRET, 64, &data, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	free(data);
	/* an empty base name is no file path */
	tg_error_clear(&err);
	snprintf(back, sizeof(back), "%s/", f->dir);
	assert_int_equal(tg_file_write(back, "x", 1, 0600, 0, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "not a file path"));
}

struct mode_case {
	mode_t type, mode;
	unsigned flags;
	const char *path;
	const char *want; /* the whole message */
};

static const struct mode_case mode_cases[] = {
    {S_IFREG, 0711, TG_FILE_SECRET, "/k",
     "key '/k' is executable by others (mode 0711); run 'chmod 600 /k'"},
    {S_IFREG, 0674, 0, "/p",
     "key '/p' is writable by group (mode 0674), so they could change what it holds; run "
     "'chmod go-w /p'"},
    {S_IFREG, 0666, 0, "/p",
     "key '/p' is writable by group and others (mode 0666), so they could change what it "
     "holds; run 'chmod go-w /p'"},
    {S_IFDIR, 0777, TG_FILE_SECRET | TG_FILE_DIR, "/d",
     "key '/d' is readable, writable and searchable by others (mode 0777); run 'chmod 700 /d'"},
    {S_IFDIR, 0703, TG_FILE_DIR, "/d",
     "key '/d' is writable by others (mode 0703), so they could change what it holds; run "
     "'chmod go-w /d'"},
    {S_IFREG, 0640, TG_FILE_SECRET, "/a b'c",
     "key '/a b'c' is readable by others (mode 0640); run 'chmod 600 '/a b'\\''c''"},
    {S_IFREG, 0604, TG_FILE_SECRET, "",
     "key '' is readable by others (mode 0604); run 'chmod 600 '''"},
};

/* The words of a mode refusal: which access, by whom, and the fix with
 * the path quoted for a shell when it needs it. */
static void
test_file_mode_words(void **state)
{
	struct tg_error err;
	struct stat st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++) {
		memset(&st, 0, sizeof(st));
		st.st_mode = mode_cases[i].type | mode_cases[i].mode;
		st.st_uid = geteuid();
		tg_error_clear(&err);
		if (tg_file_check_stat(&st, mode_cases[i].path, "key", mode_cases[i].flags, &err) !=
		        TG_ERR_PERMISSION ||
		    strcmp(err.msg, mode_cases[i].want) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, err.msg, mode_cases[i].want);
	}
	/* modes without the bad bits pass */
	st.st_mode = S_IFREG | 0600;
	assert_int_equal(tg_file_check_stat(&st, "/k", "key", TG_FILE_SECRET, &err), 0);
	st.st_mode = S_IFDIR | 0755;
	assert_int_equal(tg_file_check_stat(&st, "/d", "dir", TG_FILE_DIR, &err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_null_args),
	    cmocka_unit_test(test_buf_writer_edges),
	    cmocka_unit_test(test_buf_tlv_too_long),
	    cmocka_unit_test(test_file_mode_words),
	    cmocka_unit_test_setup_teardown(test_file_kind_mixups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_open_name_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_write_over_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_write_relative, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
