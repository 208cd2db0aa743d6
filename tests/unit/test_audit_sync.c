/*
 * test_audit_sync.c — the audit log (host/audit) when a sync fails: the
 * writer fails closed (writes refused with the sync's error, nothing
 * written) until a sync succeeds again, in batch mode (the log's sync
 * thread fails and retries) and in mode always (the write's own sync;
 * the next write tries it again).
 * fdatasync is wrapped (-Wl,--wrap=fdatasync) so a test can make it fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_audit.h"
#include "tg_audit_verify.h"
#include "tg_test.h"

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

static char dir[] = "/tmp/tg_audit_sync_XXXXXX";

static size_t
file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return (size_t)st.st_size;
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

static void
verify_lines(const char *p, size_t lines)
{
	const char *paths[1] = {p};
	struct tg_audit_report rep;
	struct tg_error err;

	assert_int_equal(tg_audit_verify_files(paths, 1, TG_AUDIT_VERIFY_GENESIS, &rep, &err), 0);
	if (rep.flaw != TG_AUDIT_INTACT)
		fail_msg("line %zu: %s", rep.line, rep.detail);
	assert_int_equal(rep.lines, lines);
}

static void
test_batch_sync_failure(void **state)
{
	char p[256], want[400];
	struct tg_audit *log = NULL;
	struct tg_error err;
	size_t size, ok = 1;
	int r;

	(void)state;
	snprintf(p, sizeof(p), "%s/batch.log", dir);
	snprintf(want, sizeof(want), "cannot fsync audit log '%s': %s", p, strerror(EIO));
	assert_int_equal(tg_audit_open(p, TG_AUDIT_FSYNC_BATCH, &log, &err), 0);
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
	/* an explicit sync reports the same failure */
	assert_int_equal(tg_audit_sync(log, &err), TG_ERR_IO);
	assert_string_equal(err.msg, want);
	/* the disk is back: the sync thread's retry succeeds, writes resume */
	atomic_store(&sync_fails, 0);
	assert_int_equal(write_until_ok(log, 4, 5000, &err), 0);
	tg_audit_close(log);
	verify_lines(p, ok + 1);
}

static void
test_always_sync_failure(void **state)
{
	char p[256], want[400];
	struct tg_audit *log = NULL;
	struct tg_error err;
	size_t size;
	int calls;

	(void)state;
	snprintf(p, sizeof(p), "%s/always.log", dir);
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
	verify_lines(p, 3);
}

static int
setup(void **state)
{
	(void)state;
	umask(077);
	atomic_init(&sync_fails, 0);
	atomic_init(&sync_calls, 0);
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
	    cmocka_unit_test(test_batch_sync_failure),
	    cmocka_unit_test(test_always_sync_failure),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
