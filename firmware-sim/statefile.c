/* statefile.c — atomic, durable state file I/O for tokengate-sim. */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_log.h"
#include "tg_secret.h"

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	size_t done = 0;
	ssize_t w;
	int r = 0;

	while (done < n) {
		w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = TG_ERR_IO;
			break;
		}
		done += (size_t)w;
	}
	return r;
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int
sync_dir(const char *path)
{
	char *copy = NULL;
	int fd = -1, r = TG_ERR_IO;

	if ((copy = strdup(path)) == NULL) {
		r = TG_ERR_ALLOC;
		goto out;
	}
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto out;
	if (fsync(fd) != 0)
		goto out;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

int
tg_sim_state_write(const char *path, const uint8_t *blob, size_t len, int replace,
                   struct tg_error *err)
{
	char *tmp = NULL;
	size_t n;
	int fd = -1, r = TG_ERR_ALLOC, e = 0;
	const char *step = "";

	n = strlen(path) + sizeof(".tmp.XXXXXX");
	if ((tmp = malloc(n)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory writing state file %s", path);
		goto out;
	}
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	/* mkstemp creates the file with mode 0600. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		e = errno;
		free(tmp);
		tmp = NULL;
		step = "create a temporary file next to it";
		goto io;
	}
	if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
		e = errno;
		step = "set mode 0600 on the temporary file";
		goto io;
	}
	if (write_all(fd, blob, len) != 0) {
		e = errno;
		step = "write the temporary file";
		goto io;
	}
	if (fsync(fd) != 0) {
		e = errno;
		step = "fsync the temporary file";
		goto io;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno;
		step = "close the temporary file";
		goto io;
	}
	fd = -1;
	if (replace) {
		if (rename(tmp, path) != 0) {
			e = errno;
			step = "rename the temporary file over it";
			goto io;
		}
	} else {
		/* link(2) fails with EEXIST instead of replacing. */
		if (link(tmp, path) != 0) {
			e = errno;
			if (e == EEXIST) {
				r = tg_error_set(err, TG_ERR_INVALID_ARG,
				                 "state file %s already exists; choose another "
				                 "path or pass --force to overwrite it",
				                 path);
				goto out;
			}
			step = "link the temporary file to it";
			goto io;
		}
		(void)unlink(tmp);
	}
	free(tmp);
	tmp = NULL;
	if (sync_dir(path) != 0) {
		e = errno;
		step = "fsync its directory";
		goto io;
	}
	r = 0;
	goto out;
io:
	r = tg_error_set(err, TG_ERR_IO,
	                 "cannot %s for state file %s: %s (check that the directory exists, "
	                 "is writable and has free space)",
	                 step, path, strerror(e));
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		(void)unlink(tmp);
		free(tmp);
	}
	return r;
}

int
tg_sim_state_read(const char *path, uint8_t **blob, size_t *len, struct tg_error *err)
{
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
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		tg_log_warn("sim.state",
		            "state file %s holds private keys but has mode %03o; "
		            "run 'chmod 600 %s'",
		            path, (unsigned)(st.st_mode & 0777), path);
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
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR)) < 0) {
		tg_error_set(err, TG_ERR_IO, "cannot create lock file %s: %s", lock,
		             strerror(errno));
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
