/* file.c — checked opens and the atomic writer (tg_file.h). */
#include "tg_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_secret.h"

#define FILE_PATH_MAX 4096

/*
 * path as one shell word for the fix we print: bare when it holds only
 * characters no shell treats specially, else in single quotes with each '
 * written as '\''. Always NUL-terminated; cut short only for paths near
 * FILE_PATH_MAX.
 */
static const char *
shell_word(const char *path, char *buf, size_t n)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789/._-+,:@%=";
	size_t i, used = 0;

	if (path[0] != '\0' && strspn(path, safe) == strlen(path)) {
		snprintf(buf, n, "%s", path);
		goto out;
	}
	buf[used++] = '\'';
	for (i = 0; path[i] != '\0' && used + 5 < n; i++) {
		if (path[i] == '\'') {
			memcpy(buf + used, "'\\''", 4);
			used += 4;
		} else {
			buf[used++] = path[i];
		}
	}
	buf[used++] = '\'';
	buf[used] = '\0';
out:
	return buf;
}

/*
 * "readable and writable by group and others" for the bits of bad (mode).
 * For a secret, as OpenSSH says of private keys, "others" is anyone but the
 * owner: the mode printed next to it says who exactly.
 */
static void
access_words(mode_t bad, int dir, int secret, char *buf, size_t n)
{
	const char *how[3] = {NULL, NULL, NULL};
	const char *who;
	size_t k = 0, used = 0, i;

	if (bad & (S_IRGRP | S_IROTH))
		how[k++] = "readable";
	if (bad & (S_IWGRP | S_IWOTH))
		how[k++] = "writable";
	if (bad & (S_IXGRP | S_IXOTH))
		how[k++] = dir ? "searchable" : "executable";
	if (secret || ((bad & S_IRWXG) == 0 && (bad & S_IRWXO) != 0))
		who = "others";
	else if ((bad & S_IRWXG) && (bad & S_IRWXO))
		who = "group and others";
	else
		who = "group";
	buf[0] = '\0';
	for (i = 0; i < k && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s",
		                         i == 0 ? "" : (i + 1 == k ? " and " : ", "), how[i]);
	if (used < n)
		snprintf(buf + used, n - used, " by %s", who);
}

int
tg_file_check_stat(const struct stat *st, const char *path, const char *what, unsigned flags,
                   struct tg_error *err)
{
	char word[2 * FILE_PATH_MAX], how[96];
	int dir = (flags & TG_FILE_DIR) != 0;
	mode_t bad;
	uid_t me = geteuid();
	int r = 0;

	if (dir && !S_ISDIR(st->st_mode)) {
		r = tg_error_set(err, TG_ERR_IO, "%s '%s' is not a directory", what, path);
		goto out;
	}
	if (!dir && !S_ISREG(st->st_mode)) {
		r = tg_error_set(err, TG_ERR_IO, "%s '%s' is not a regular file", what, path);
		goto out;
	}
	shell_word(path, word, sizeof(word));
	if (st->st_uid != me) {
		r = tg_error_set(err, TG_ERR_PERMISSION,
		                 "%s '%s' is owned by uid %lu, not by uid %lu that runs this "
		                 "command; whoever owns it controls it: run 'chown %lu %s' "
		                 "(or use a copy of your own)",
		                 what, path, (unsigned long)st->st_uid, (unsigned long)me,
		                 (unsigned long)me, word);
		goto out;
	}
	bad = st->st_mode & ((flags & TG_FILE_SECRET) ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH));
	if (bad == 0)
		goto out;
	access_words(bad, dir, (flags & TG_FILE_SECRET) != 0, how, sizeof(how));
	if (flags & TG_FILE_SECRET)
		r = tg_error_set(err, TG_ERR_PERMISSION,
		                 "%s '%s' is %s (mode %04o); run 'chmod %s %s'", what, path, how,
		                 (unsigned)(st->st_mode & 07777), dir ? "700" : "600", word);
	else
		r = tg_error_set(err, TG_ERR_PERMISSION,
		                 "%s '%s' is %s (mode %04o), so they could change what it "
		                 "holds; run 'chmod go-w %s'",
		                 what, path, how, (unsigned)(st->st_mode & 07777), word);
out:
	return r;
}

/* The refusal for an open(2) of path that failed with errno e. */
static int
open_error(int e, const char *path, const char *what, unsigned flags, struct tg_error *err)
{
	if (e == ENOENT)
		return tg_error_set(err, TG_ERR_NOT_FOUND, "%s '%s' does not exist", what, path);
	if (e == ELOOP && !(flags & TG_FILE_FOLLOW))
		return tg_error_set(err, TG_ERR_PERMISSION,
		                    "%s '%s' is a symbolic link, which tokengate does not follow "
		                    "for this file; put the %s itself there",
		                    what, path, (flags & TG_FILE_DIR) ? "directory" : "file");
	if (e == ENOTDIR && (flags & TG_FILE_DIR))
		return tg_error_set(err, TG_ERR_IO, "%s '%s' is not a directory", what, path);
	return tg_error_set(err, TG_ERR_IO, "cannot open %s '%s': %s", what, path, strerror(e));
}

int
tg_file_open_checked(const char *path, const char *what, unsigned flags, int *fdout,
                     struct tg_error *err)
{
	struct stat st;
	int oflags = (flags & TG_FILE_APPEND ? O_RDWR | O_APPEND | O_CREAT : O_RDONLY) | O_CLOEXEC |
	             O_NONBLOCK,
	    fd = -1, e, r;

	if (!(flags & TG_FILE_FOLLOW))
		oflags |= O_NOFOLLOW;
	if (flags & TG_FILE_DIR)
		oflags |= O_DIRECTORY;
	if ((fd = open(path, oflags, 0600)) < 0) {
		e = errno;
		/* O_NOFOLLOW|O_DIRECTORY on a link fails with ENOTDIR, not ELOOP */
		if (e == ENOTDIR && !(flags & TG_FILE_FOLLOW) && lstat(path, &st) == 0 &&
		    S_ISLNK(st.st_mode))
			e = ELOOP;
		if (e == ENOENT && (flags & TG_FILE_MISSING_OK)) {
			*fdout = -1;
			r = 0;
		} else {
			r = open_error(e, path, what, flags, err);
		}
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot stat %s '%s': %s", what, path,
		                 strerror(errno));
		goto out;
	}
	if ((r = tg_file_check_stat(&st, path, what, flags, err)) != 0)
		goto out;
	/* a regular file is read in blocking mode; O_NONBLOCK only guarded the open */
	if (!(flags & TG_FILE_DIR) &&
	    fcntl(fd, F_SETFL, flags & TG_FILE_APPEND ? O_APPEND : 0) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot use %s '%s': %s", what, path,
		                 strerror(errno));
		goto out;
	}
	*fdout = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

int
tg_file_read_checked(const char *path, const char *what, unsigned flags, size_t max, uint8_t **data,
                     size_t *len, struct tg_error *err)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	ssize_t got;
	int fd = -1, r;

	*data = NULL;
	*len = 0;
	if ((r = tg_file_open_checked(path, what, flags & ~TG_FILE_DIR, &fd, err)) != 0 || fd < 0)
		goto out;
	if ((buf = malloc(max + 1)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading '%s'", path);
		goto out;
	}
	for (;;) {
		got = read(fd, buf + n, max + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = tg_error_set(err, TG_ERR_IO, "cannot read %s '%s': %s", what, path,
			                 strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > max) {
			r = tg_error_set(err, TG_ERR_IO, "%s '%s' is larger than %zu bytes", what,
			                 path, max);
			goto out;
		}
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
	r = 0;
out:
	tg_freezero(buf, buf != NULL ? max + 1 : 0); /* the file may be a secret */
	if (fd >= 0)
		close(fd);
	return r;
}

/* Writes all n bytes: 0, or TG_ERR_IO with errno saying why. */
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
			if (w == 0)
				errno = EIO;
			r = TG_ERR_IO;
			break;
		}
		done += (size_t)w;
	}
	return r;
}

/* fsync of directory dir, so a rename or link in it is durable. */
static int
sync_dir(const char *dir)
{
	int fd, r = -1, e;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto out;
	r = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
out:
	return r;
}

int
tg_file_write(const char *path, const void *data, size_t len, unsigned mode, unsigned flags,
              struct tg_error *err)
{
	char dir[FILE_PATH_MAX], tmp[FILE_PATH_MAX];
	const char *slash = strrchr(path, '/'), *base, *step = "";
	int fd = -1, have_tmp = 0, e = 0, r = TG_ERR_IO;

	base = slash != NULL ? slash + 1 : path;
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (base[0] == '\0' || (slash != NULL && (size_t)(slash - path) >= sizeof(dir)) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= (int)sizeof(tmp)) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG, "cannot write '%s': not a file path",
		                 path);
		goto out;
	}
	/* mkostemp: O_CREAT|O_EXCL on a random name, so no link is followed */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		e = errno;
		step = "create a temporary file in its directory";
		goto io;
	}
	have_tmp = 1;
	/* the umask must neither widen nor narrow what the caller asked for */
	if (fchmod(fd, (mode_t)mode) != 0) {
		e = errno;
		step = "set the mode of the temporary file";
		goto io;
	}
	if (write_all(fd, data, len) != 0) {
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
	if (flags & TG_FILE_NO_REPLACE) {
		/* link(2) fails with EEXIST instead of replacing */
		if (link(tmp, path) != 0) {
			e = errno;
			if (e == EEXIST) {
				r = tg_error_set(err, TG_ERR_INVALID_ARG, "'%s' already exists",
				                 path);
				goto out;
			}
			step = "link the temporary file to it";
			goto io;
		}
		(void)unlink(tmp);
		have_tmp = 0;
	} else if (rename(tmp, path) != 0) {
		e = errno;
		step = "rename the temporary file over it";
		goto io;
	} else {
		have_tmp = 0;
	}
	if (sync_dir(dir) != 0) {
		e = errno;
		step = "fsync its directory";
		goto io;
	}
	r = 0;
	goto out;
io:
	r = tg_error_set(err, TG_ERR_IO,
	                 "cannot write '%s': cannot %s: %s (check that the directory exists, is "
	                 "writable and has free space)",
	                 path, step, strerror(e));
out:
	if (fd >= 0)
		close(fd);
	if (have_tmp)
		(void)unlink(tmp);
	return r;
}
