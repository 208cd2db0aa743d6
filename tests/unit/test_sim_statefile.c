/*
 * test_sim_statefile.c — tokengate-sim's state file I/O
 * (firmware-sim/statefile.c): atomic replace, refusal to overwrite, mode
 * 0600, no temporary files left, and the errors for missing, empty,
 * non-regular, symlinked, oversized and unwritable paths, the warning for
 * a file others can read, and the state lock with the reasons it cannot
 * be made (missing or non-directory parent, the OS reason).
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

#include "statefile.h"
#include "tg_log.h"
#include "tg_secret.h"
#include "tg_test.h"

struct fx {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (tg_test_tmpdir("tg-statefile", f->dir, sizeof(f->dir)) != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/card.state", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tg_test_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void
test_roundtrip_and_replace(void **state)
{
	struct fx *f = *state;
	static const uint8_t a[] = "first state", b[] = "second, longer state";
	struct tg_error err;
	struct stat st;
	uint8_t *got = NULL;
	size_t n = 0;

	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_write(f->path, a, sizeof(a), 0, &err), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), 0);
	assert_int_equal(n, sizeof(a));
	assert_memory_equal(got, a, n);
	tg_freezero(got, n);

	/* replace == 0 refuses an existing file and leaves it alone. */
	assert_int_equal(tg_sim_state_write(f->path, b, sizeof(b), 0, &err), TG_ERR_INVALID_ARG);
	assert_non_null(strstr(err.msg, "--force"));
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), 0);
	assert_memory_equal(got, a, sizeof(a));
	tg_freezero(got, n);

	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_write(f->path, b, sizeof(b), 1, &err), 0);
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), 0);
	assert_int_equal(n, sizeof(b));
	assert_memory_equal(got, b, n);
	tg_freezero(got, n);
	/* Only the state file: no temporary left behind. */
	assert_int_equal(tg_test_dir_count(f->dir), 1);
	assert_int_equal(tg_sim_state_exists(f->path), 1);
}

static void
test_read_errors(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	uint8_t *got = NULL;
	size_t n = 0;
	FILE *fp;

	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), TG_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, f->path));
	assert_non_null(strstr(err.msg, "tokengate-sim init"));
	assert_int_equal(tg_sim_state_exists(f->path), 0);

	fp = fopen(f->path, "w");
	assert_non_null(fp);
	fclose(fp);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), TG_ERR_FORMAT);
	assert_non_null(strstr(err.msg, f->path));

	tg_error_clear(&err);
	assert_int_not_equal(tg_sim_state_read(f->dir, &got, &n, &err), 0);
	assert_null(got);
}

static void
test_write_errors(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char bad[192];

	snprintf(bad, sizeof(bad), "%s/no/such/dir/card.state", f->dir);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_write(bad, (const uint8_t *)"x", 1, 1, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, bad));
	assert_int_equal(tg_test_dir_count(f->dir), 0);
}

static void
test_lock(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	int a, b;

	tg_error_clear(&err);
	a = tg_sim_state_lock(f->path, &err);
	assert_true(a >= 0);
	/* A second holder (another open file description) is refused. */
	b = tg_sim_state_lock(f->path, &err);
	assert_int_equal(b, -1);
	assert_non_null(strstr(err.msg, "stop it first"));
	close(a);
	tg_error_clear(&err);
	b = tg_sim_state_lock(f->path, &err);
	assert_true(b >= 0);
	close(b);
}

/* The open, type and size refusals name the file (and the fix); a file
 * readable by others still loads (the simulator only warns). */
static void
test_read_refusals(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	uint8_t *got = NULL;
	size_t n = 0;
	char link[160], line[1024];
	FILE *fp, *log;

	/* a symlink is not followed */
	snprintf(link, sizeof(link), "%s/link.state", f->dir);
	assert_int_equal(tg_sim_state_write(f->path, (const uint8_t *)"abc", 3, 0, &err), 0);
	assert_int_equal(symlink(f->path, link), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_read(link, &got, &n, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open state file"));
	assert_non_null(strstr(err.msg, link));
	assert_null(got);
	assert_int_equal(tg_sim_state_exists(link), 1);

	/* a directory */
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_read(f->dir, &got, &n, &err), TG_ERR_IO);
	assert_non_null(strstr(err.msg, "is not a regular file"));
	assert_non_null(strstr(err.msg, f->dir));

	/* larger than any state file (sparse) */
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), (off_t)TG_SIM_STATE_MAX + 1), 0);
	fclose(fp);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), TG_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "has size 4194305"));
	assert_non_null(strstr(err.msg, "tokengate-sim init"));
	assert_null(got);

	/* mode 0644: read, with a warning naming the file */
	assert_int_equal(tg_sim_state_write(f->path, (const uint8_t *)"xyz", 3, 1, &err), 0);
	assert_int_equal(chmod(f->path, 0644), 0);
	log = tmpfile();
	assert_non_null(log);
	tg_log_init(TG_LOG_INFO, 0, log);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_read(f->path, &got, &n, &err), 0);
	tg_log_init(TG_LOG_INFO, 0, NULL);
	assert_int_equal(n, 3);
	assert_memory_equal(got, "xyz", 3);
	tg_freezero(got, n);
	rewind(log);
	line[fread(line, 1, sizeof(line) - 1, log)] = '\0';
	fclose(log);
	assert_non_null(strstr(line, "sim.state"));
	assert_non_null(strstr(line, f->path));
	assert_non_null(strstr(line, "(it holds private keys)"));
}

/* Why a lock file cannot be made: the missing or non-directory parent is
 * named with the fix; anything else gives the OS reason. */
static void
test_lock_errors(void **state)
{
	struct fx *f = *state;
	struct tg_error err;
	char p[192], lock[200];
	FILE *fp;

	/* the directory does not exist */
	snprintf(p, sizeof(p), "%s/missing/card.state", f->dir);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_lock(p, &err), -1);
	assert_int_equal(err.code, TG_ERR_IO);
	assert_non_null(strstr(err.msg, "does not exist: create it with 'mkdir -p"));
	assert_non_null(strstr(err.msg, "/missing"));

	/* the "directory" is a regular file */
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(p, sizeof(p), "%s/card.state", f->path);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_lock(p, &err), -1);
	assert_int_equal(err.code, TG_ERR_IO);
	assert_non_null(strstr(err.msg, "is not a directory: pass --state"));
	assert_non_null(strstr(err.msg, f->path));

	/* the lock file's name is taken by a directory: the OS reason */
	snprintf(p, sizeof(p), "%s/d.state", f->dir);
	snprintf(lock, sizeof(lock), "%s.lock", p);
	assert_int_equal(mkdir(lock, 0700), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_lock(p, &err), -1);
	assert_int_equal(err.code, TG_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot create lock file"));
	assert_non_null(strstr(err.msg, lock));
	assert_non_null(strstr(err.msg, "Is a directory"));

	/* an existing parent with a dangling lock symlink: not followed */
	snprintf(p, sizeof(p), "%s/s.state", f->dir);
	snprintf(lock, sizeof(lock), "%s.lock", p);
	assert_int_equal(symlink("/nonexistent-tg-target", lock), 0);
	tg_error_clear(&err);
	assert_int_equal(tg_sim_state_lock(p, &err), -1);
	assert_non_null(strstr(err.msg, "cannot create lock file"));
	assert_non_null(strstr(err.msg, lock));
	assert_int_equal(access("/nonexistent-tg-target", F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roundtrip_and_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
