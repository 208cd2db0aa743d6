/* statefile.c — atomic, durable state file I/O for tokengate-sim. */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_file.h"
#include "tg_log.h"
#include "tg_secret.h"

int
tg_sim_state_write(const char *path, const uint8_t *blob, size_t len, int replace,
                   struct tg_error *err)
{
	struct tg_error tmp;
	int r;

	/* the state holds private keys: 0600, through the one atomic writer */
	tg_error_clear(&tmp);
	r = tg_file_write(path, blob, len, S_IRUSR | S_IWUSR, replace ? 0 : TG_FILE_NO_REPLACE,
	                  &tmp);
	if (r == TG_ERR_INVALID_ARG && !replace)
		r = tg_error_set(err, r,
		                 "state file %s already exists; choose another path or pass "
		                 "--force to overwrite it",
		                 path);
	else if (r != 0)
		r = tg_error_set(err, r, "%s", tmp.msg);
	return r;
}

int
tg_sim_state_read(const char *path, uint8_t **blob, size_t *len, struct tg_error *err)
{
	struct tg_error perm;
	struct stat st;
	uint8_t *buf = NULL;
	size_t n = 0, done = 0;
	ssize_t got;
	int fd = -1, r = TG_ERR_IO;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			r = tg_error_set(err, TG_ERR_NOT_FOUND,
			                 "state file %s does not exist; create a token with "
			                 "'tokengate-sim init --state %s'",
			                 path, path);
		else
			r = tg_error_set(err, TG_ERR_IO, "cannot open state file %s: %s", path,
			                 strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = tg_error_set(err, TG_ERR_IO, "state file %s is not a regular file", path);
		goto out;
	}
	if (st.st_size <= 0 || (uintmax_t)st.st_size > TG_SIM_STATE_MAX) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "state file %s has size %jd, not that of a tokengate-sim state "
		                 "file; recreate it with 'tokengate-sim init'",
		                 path, (intmax_t)st.st_size);
		goto out;
	}
	/* the same owner/mode rule as the CA key and PIN files; a warning here,
	 * since a simulator is a test device */
	tg_error_clear(&perm);
	if (tg_file_check_stat(&st, path, "state file", TG_FILE_SECRET, &perm) != 0)
		tg_log_warn("sim.state", "%s (it holds private keys)", perm.msg);
	n = (size_t)st.st_size;
	if ((buf = malloc(n)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading %s", path);
		goto out;
	}
	while (done < n) {
		got = read(fd, buf + done, n - done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = tg_error_set(err, TG_ERR_IO, "cannot read state file %s: %s", path,
			                 got == 0 ? "file shrank while reading" : strerror(errno));
			goto out;
		}
		done += (size_t)got;
	}
	*blob = buf;
	*len = n;
	buf = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	tg_freezero(buf, n);
	return r;
}

int
tg_sim_state_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/*
 * Why the lock file beside `path` could not be created (open failed with
 * `e`): a missing or non-directory parent is named as such with the fix,
 * anything else gives the OS reason for the lock file.
 */
static void
lock_open_error(const char *path, const char *lock, int e, struct tg_error *err)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	struct stat st;

	if ((e != ENOENT && e != ENOTDIR) || slash == NULL || slash == path) {
		tg_error_set(err, TG_ERR_IO, "cannot create lock file %s: %s", lock, strerror(e));
		goto out;
	}
	if ((dir = strndup(path, (size_t)(slash - path))) == NULL) {
		tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		tg_error_set(err, TG_ERR_IO, "cannot create lock file %s: %s", lock, strerror(e));
	else if (e == ENOTDIR || (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)))
		tg_error_set(err, TG_ERR_IO,
		             "the state file's directory %s is not a directory: pass --state "
		             "with a path in an existing directory",
		             dir);
	else
		tg_error_set(err, TG_ERR_IO,
		             "the state file's directory %s does not exist: create it with "
		             "'mkdir -p %s' or pass --state with a path in an existing "
		             "directory",
		             dir, dir);
out:
	free(dir);
}

int
tg_sim_state_lock(const char *path, struct tg_error *err)
{
	size_t n = strlen(path) + sizeof(".lock");
	char *lock = malloc(n);
	int fd = -1;

	if (lock == NULL) {
		tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	snprintf(lock, n, "%s.lock", path);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0) {
		lock_open_error(path, lock, errno, err);
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		tg_error_set(err, TG_ERR_IO,
		             "a 'tokengate-sim run' is using %s (lock %s is held); stop it first",
		             path, lock);
		close(fd);
		fd = -1;
	}
out:
	free(lock);
	return fd;
}
