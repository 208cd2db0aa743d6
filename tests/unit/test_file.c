/*
 * test_file.c — token/core/file.c: the one atomic writer (replace, mode
 * despite the umask, links at the target and at the old predictable
 * temporary name not followed, the old file intact on failure, no
 * temporary left) and the owner/mode checks with their exact messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_file.h"
#include "tg_test.h"

struct fx {
	char dir[64];
	char path[128];
	char victim[128]; /* a file a planted link points at */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL || tg_test_tmpdir("tg-file", f->dir, sizeof(f->dir)) != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/target", f->dir);
	snprintf(f->victim, sizeof(f->victim), "%s/victim", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	chmod(f->dir, 0700);
	tg_test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

/* The whole content of path, NUL-terminated, in buf (size n). */
static const char *
slurp(const char *path, char *buf, size_t n)
{
	FILE *fp = fopen(path, "r");
	size_t got = 0;

	buf[0] = '\0';
	if (fp != NULL) {
		got = fread(buf, 1, n - 1, fp);
		fclose(fp);
	}
	buf[got] = '\0';
	return buf;
}

static void
put(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_replaces_atomically(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char buf[64];

	tg_error_clear(&err);
	assert_int_equal(tg_file_write(f->path, "first", 5, 0644, 0, &err), 0);
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "first");
	assert_int_equal(tg_file_write(f->path, "second", 6, 0644, 0, &err), 0);
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "second");
	/* empty content is a valid file too */
	assert_int_equal(tg_file_write(f->path, "", 0, 0644, 0, &err), 0);
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "");
	assert_int_equal(tg_test_dir_count(f->dir), 1);

	/* no-replace: an existing target is refused and left alone */
	assert_int_equal(tg_file_write(f->path, "third", 5, 0644, 0, &err), 0);
	assert_int_equal(tg_file_write(f->path, "fourth", 6, 0644, TG_FILE_NO_REPLACE, &err),
	                 TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "already exists"));
	assert_non_null(strstr(err.msg, f->path));
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "third");
	assert_int_equal(tg_test_dir_count(f->dir), 1);
}

static void
test_mode_despite_umask(void **state)
{
	struct fx *f = *state;
	struct stat st;
	mode_t old;

	old = umask(077);
	assert_int_equal(tg_file_write(f->path, "x", 1, 0644, 0, NULL), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	umask(0);
	assert_int_equal(tg_file_write(f->path, "x", 1, 0600, 0, NULL), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	umask(old);
}

/* A link planted at the target is replaced; the file it points at is not touched. */
static void
test_link_at_target_not_followed(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char buf[64];

	put(f->victim, "victim", 0644);
	assert_int_equal(symlink(f->victim, f->path), 0);
	assert_int_equal(tg_file_write(f->path, "new", 3, 0600, 0, NULL), 0);
	assert_string_equal(slurp(f->victim, buf, sizeof(buf)), "victim");
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "new");
	assert_int_equal(tg_test_dir_count(f->dir), 2);
}

/* The old writer used PATH.tmp.PID: a link planted there must change nothing. */
static void
test_link_at_old_tmp_name_not_followed(void **state)
{
	struct fx *f = *state;
	char tmp[192], buf[64];

	put(f->victim, "victim", 0644);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", f->path, (long)getpid());
	assert_int_equal(symlink(f->victim, tmp), 0);
	assert_int_equal(tg_file_write(f->path, "new", 3, 0600, 0, NULL), 0);
	assert_string_equal(slurp(f->victim, buf, sizeof(buf)), "victim");
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "new");
	/* victim, the planted link, the target: nothing else */
	assert_int_equal(tg_test_dir_count(f->dir), 3);
}

/* A write that fails (file size limit, works for root too) keeps the old file. */
static void
test_failure_keeps_old_file(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	struct rlimit old, lim;
	char big[8192], buf[64];

	assert_int_equal(tg_file_write(f->path, "old", 3, 0644, 0, NULL), 0);
	memset(big, 'A', sizeof(big));
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1024;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_file_write(f->path, big, sizeof(big), 0644, 0, &err), TG_ERR_IO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_non_null(strstr(err.msg, f->path));
	assert_non_null(strstr(err.msg, "write the temporary file"));
	assert_non_null(strstr(err.msg, strerror(EFBIG)));
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "old");
	assert_int_equal(tg_test_dir_count(f->dir), 1);
}

/*
 * The write into the read-only directory must fail with the path and
 * EACCES in the message; 1 when it did. Root is not held back by modes, so
 * as root the write is made by a child that has become nobody (65534).
 */
static int
readonly_write_fails(const char *path)
{
	struct tg_error err;
	pid_t pid;
	int status = 0;

	if (geteuid() == 0) {
		if ((pid = fork()) < 0)
			return 0;
		if (pid == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(2);
			_exit(readonly_write_fails(path) ? 0 : 1);
		}
		return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 0;
	}
	tg_error_clear(&err);
	if (tg_file_write(path, "new", 3, 0644, 0, &err) != TG_ERR_IO)
		return 0;
	print_message("refused as expected: %s\n", err.msg);
	return strstr(err.msg, path) != NULL && strstr(err.msg, strerror(EACCES)) != NULL;
}

/* A read-only directory: the old file stays, the message names path and reason. */
static void
test_readonly_dir(void **state)
{
	struct fx *f = *state;
	char buf[64];

	assert_int_equal(tg_file_write(f->path, "old", 3, 0644, 0, NULL), 0);
	assert_int_equal(chmod(f->dir, 0555), 0);
	assert_true(readonly_write_fails(f->path));
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_string_equal(slurp(f->path, buf, sizeof(buf)), "old");
	assert_int_equal(tg_test_dir_count(f->dir), 1);
}

static void
test_missing_dir(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char bad[192];

	snprintf(bad, sizeof(bad), "%s/no/such/file", f->dir);
	tg_error_clear(&err);
	assert_int_equal(tg_file_write(bad, "x", 1, 0644, 0, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, bad));
	assert_non_null(strstr(err.msg, strerror(ENOENT)));
	tg_error_clear(&err);
	assert_int_equal(tg_file_write("", "x", 1, 0644, 0, &err), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_test_dir_count(f->dir), 0);
}

/* Opens path with tg_file_open_checked; returns its result, err filled. */
static int
check(const char *path, unsigned flags, struct tg_error *err)
{
	int fd = -1, r;

	tg_error_clear(err);
	r = tg_file_open_checked(path, "thing", flags, &fd, err);
	if (fd >= 0)
		close(fd);
	assert_true(r == 0 ? fd >= 0 : fd < 0);
	return r;
}

/* err's message must hold the printf-style text. */
#define expect_msg(err, ...)                                                                       \
	do {                                                                                       \
		char want_[512];                                                                   \
		snprintf(want_, sizeof(want_), __VA_ARGS__);                                       \
		if (strstr((err)->msg, want_) == NULL)                                             \
			fail_msg("want \"%s\" in \"%s\"", want_, (err)->msg);                      \
	} while (0)

static void
test_check_modes(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char sub[160];

	put(f->path, "x", 0644);
	assert_int_equal(check(f->path, 0, &err), 0);
	assert_int_equal(chmod(f->path, 0664), 0);
	assert_int_equal(check(f->path, 0, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is writable by group (mode 0664)", f->path);
	expect_msg(&err, "run 'chmod go-w %s'", f->path);
	assert_int_equal(chmod(f->path, 0646), 0);
	assert_int_equal(check(f->path, 0, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is writable by others (mode 0646)", f->path);
	assert_int_equal(chmod(f->path, 0666), 0);
	assert_int_equal(check(f->path, 0, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is writable by group and others (mode 0666)", f->path);

	/* a secret: any access by group or others */
	assert_int_equal(chmod(f->path, 0600), 0);
	assert_int_equal(check(f->path, TG_FILE_SECRET, &err), 0);
	assert_int_equal(chmod(f->path, 0640), 0);
	assert_int_equal(check(f->path, TG_FILE_SECRET, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is readable by others (mode 0640); run 'chmod 600 %s'",
	           f->path, f->path);
	assert_int_equal(chmod(f->path, 0604), 0);
	assert_int_equal(check(f->path, TG_FILE_SECRET, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "readable by others (mode 0604)");
	assert_int_equal(chmod(f->path, 0610), 0);
	assert_int_equal(check(f->path, TG_FILE_SECRET, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "executable by others (mode 0610)");
	assert_int_equal(chmod(f->path, 0666), 0);
	assert_int_equal(check(f->path, TG_FILE_SECRET, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "readable and writable by others (mode 0666)");

	/* directories */
	snprintf(sub, sizeof(sub), "%s/d", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(check(sub, TG_FILE_DIR, &err), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	assert_int_equal(check(sub, TG_FILE_DIR, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is writable by group and others (mode 0777)", sub);
	expect_msg(&err, "run 'chmod go-w %s'", sub);
	assert_int_equal(chmod(sub, 01777), 0); /* sticky does not make it safe */
	assert_int_equal(check(sub, TG_FILE_DIR, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "(mode 1777)");

	/* wrong kind */
	assert_int_equal(check(sub, 0, &err), TG_ERR_IO);
	expect_msg(&err, "thing '%s' is not a regular file", sub);
	assert_int_equal(check(f->path, TG_FILE_DIR, &err), TG_ERR_IO);
	expect_msg(&err, "thing '%s' is not a directory", f->path);
	rmdir(sub);
	unlink(f->path);
	assert_int_equal(check(f->path, 0, &err), TG_ERR_NOT_FOUND);
	expect_msg(&err, "thing '%s' does not exist", f->path);
}

static void
test_check_links(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char dlink[160];

	put(f->victim, "x", 0600);
	assert_int_equal(symlink(f->victim, f->path), 0);
	assert_int_equal(check(f->path, 0, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is a symbolic link, which tokengate does not follow", f->path);
	/* followed when asked, and the target is what is checked */
	assert_int_equal(check(f->path, TG_FILE_FOLLOW | TG_FILE_SECRET, &err), 0);
	assert_int_equal(chmod(f->victim, 0644), 0);
	assert_int_equal(check(f->path, TG_FILE_FOLLOW | TG_FILE_SECRET, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is readable by others (mode 0644)", f->path);
	/* a link to a directory */
	snprintf(dlink, sizeof(dlink), "%s/dlink", f->dir);
	assert_int_equal(symlink(f->dir, dlink), 0);
	assert_int_equal(check(dlink, TG_FILE_DIR, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "thing '%s' is a symbolic link", dlink);
}

static void
test_check_owner(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char want[256];

	if (geteuid() != 0) {
		print_message("not root: cannot give a file to another owner\n");
		skip();
	}
	put(f->path, "x", 0600);
	assert_int_equal(chown(f->path, 65534, 65534), 0);
	assert_int_equal(check(f->path, TG_FILE_SECRET, &err), TG_ERR_PERMISSION);
	snprintf(want, sizeof(want),
	         "thing '%s' is owned by uid 65534, not by uid 0 that runs this command", f->path);
	expect_msg(&err, "%s", want);
	expect_msg(&err, "run 'chown 0 %s'", f->path);
	assert_int_equal(chown(f->dir, 65534, 65534), 0);
	assert_int_equal(check(f->dir, TG_FILE_DIR, &err), TG_ERR_PERMISSION);
	expect_msg(&err, "is owned by uid 65534");
	assert_int_equal(chown(f->dir, 0, 0), 0);
}

/* The printed fix is one shell word, whatever the path holds. */
static void
test_fix_quotes_path(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char odd[192], want[320];

	snprintf(odd, sizeof(odd), "%s/a b'c$(x)", f->dir);
	put(odd, "x", 0666);
	assert_int_equal(check(odd, 0, &err), TG_ERR_PERMISSION);
	snprintf(want, sizeof(want), "run 'chmod go-w '%s/a b'\\''c$(x)''", f->dir);
	expect_msg(&err, "%s", want);
}

static void
test_read_checked(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	uint8_t *data = NULL;
	size_t len = 0;

	put(f->path, "12345678", 0600);
	tg_error_clear(&err);
	assert_int_equal(
	    tg_file_read_checked(f->path, "thing", TG_FILE_SECRET, 8, &data, &len, &err), 0);
	assert_int_equal(len, 8);
	assert_string_equal((const char *)data, "12345678");
	free(data);
	data = NULL;
	assert_int_equal(
	    tg_file_read_checked(f->path, "thing", TG_FILE_SECRET, 7, &data, &len, &err),
	    TG_ERR_IO);
	assert_null(data);
	expect_msg(&err, "thing '%s' is larger than 7 bytes", f->path);
	assert_int_equal(chmod(f->path, 0640), 0);
	tg_error_clear(&err);
	assert_int_equal(
	    tg_file_read_checked(f->path, "thing", TG_FILE_SECRET, 8, &data, &len, &err),
	    TG_ERR_PERMISSION);
	assert_null(data);
	/* a missing file: an error, or nothing at all when that is allowed */
	unlink(f->path);
	tg_error_clear(&err);
	assert_int_equal(tg_file_read_checked(f->path, "thing", 0, 8, &data, &len, &err),
	                 TG_ERR_NOT_FOUND);
	assert_int_equal(
	    tg_file_read_checked(f->path, "thing", TG_FILE_MISSING_OK, 8, &data, &len, &err), 0);
	assert_null(data);
	assert_int_equal(len, 0);
	/* a FIFO is refused without hanging the open */
	assert_int_equal(mkfifo(f->path, 0600), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_file_read_checked(f->path, "thing", 0, 8, &data, &len, &err),
	                 TG_ERR_IO);
	expect_msg(&err, "thing '%s' is not a regular file", f->path);
}

/* TG_FILE_APPEND: created 0600 when missing, checked, writes go at the end */
static void
test_open_append(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	struct stat st;
	char buf[16];
	int fd = -1;

	assert_int_equal(
	    tg_file_open_checked(f->path, "log", TG_FILE_APPEND | TG_FILE_SECRET, &fd, &err), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(write(fd, "ab", 2), 2);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(write(fd, "cd", 2), 2);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "abcd", 4);
	close(fd);
	fd = -1;
	assert_int_equal(chmod(f->path, 0644), 0);
	assert_int_equal(
	    tg_file_open_checked(f->path, "log", TG_FILE_APPEND | TG_FILE_SECRET, &fd, &err),
	    TG_ERR_PERMISSION);
	assert_true(fd < 0);
	assert_non_null(strstr(err.msg, "run 'chmod 600"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_replaces_atomically, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_despite_umask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_at_target_not_followed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_at_old_tmp_name_not_followed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failure_keeps_old_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readonly_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_links, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fix_quotes_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_append, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
