/*
 * tg_file.h — files that matter (CA key, policy, roots, PIN files, token
 * state): their owner and mode checked the way OpenSSH checks its own files
 * before it uses them, and one atomic writer for every file tokengate
 * writes.
 *
 * The checks look at the path itself only, never at its parents (a CA may
 * live under /tmp), and at the object actually opened (fstat on the open
 * descriptor), so a file swapped between check and use is still the file
 * checked.
 */
#ifndef TG_FILE_H
#define TG_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tg_err.h"

/* Flags of the checks and of tg_file_write. */
#define TG_FILE_SECRET     0x1u  /* no access at all by group or others (keys, PINs) */
#define TG_FILE_DIR        0x2u  /* must be a directory (else: a regular file) */
#define TG_FILE_FOLLOW     0x4u  /* follow a symbolic link at the path (else refused) */
#define TG_FILE_NO_REPLACE 0x8u  /* tg_file_write: refuse an existing target */
#define TG_FILE_MISSING_OK 0x10u /* open/read: a missing path is no error (fd -1, data NULL) */
#define TG_FILE_APPEND     0x20u /* open: read-write, O_APPEND, created 0600 when missing */

/*
 * Checks what st describes (the object at path, what names it in messages,
 * e.g. "CA key"): a directory (TG_FILE_DIR) or a regular file, owned by
 * geteuid(), not writable by group or others and, with TG_FILE_SECRET, not
 * accessible by them at all. 0, or TG_ERR_PERMISSION with a message naming
 * path, its mode or owner and the exact command that fixes it ("chmod go-w
 * PATH", "chmod 600 PATH", "chown UID PATH"); TG_ERR_IO when it is neither
 * a directory nor a regular file as asked.
 */
int tg_file_check_stat(const struct stat *st, const char *path, const char *what, unsigned flags,
                       struct tg_error *err);

/*
 * Opens path read-only — or, with TG_FILE_APPEND, read-write for appending
 * (O_RDWR | O_APPEND, created with mode 0600 when missing: a log) —
 * (O_CLOEXEC, O_NOFOLLOW unless TG_FILE_FOLLOW,
 * O_DIRECTORY with TG_FILE_DIR, O_NONBLOCK so a FIFO cannot hang the open)
 * and checks the opened object with tg_file_check_stat. On success *fd is
 * the open descriptor (the caller closes it). TG_ERR_NOT_FOUND when path
 * does not exist (with TG_FILE_MISSING_OK: 0 and *fd -1), TG_ERR_PERMISSION for a symbolic link (without
 * TG_FILE_FOLLOW) or a failed check, TG_ERR_IO for other open errors; each
 * message names path.
 */
int tg_file_open_checked(const char *path, const char *what, unsigned flags, int *fd,
                         struct tg_error *err);

/*
 * tg_file_open_checked, then reads the whole file (at most max bytes) into a
 * new heap buffer *data of *len bytes plus a NUL that *len does not count.
 * The caller frees it (tg_freezero for secrets); with TG_FILE_MISSING_OK a
 * missing file gives 0, *data NULL and *len 0. Errors as
 * tg_file_open_checked, and TG_ERR_IO naming path when it cannot be read or
 * is larger than max.
 */
int tg_file_read_checked(const char *path, const char *what, unsigned flags, size_t max,
                         uint8_t **data, size_t *len, struct tg_error *err);

/*
 * Writes len bytes to path atomically and durably: a new temporary file
 * (mkostemp, O_CLOEXEC, in path's directory, so never a predictable name
 * and never an existing file or link), all bytes written, fchmod to mode
 * (the umask neither widens nor narrows it), fsync, then rename(2) over
 * path — a symbolic link at path is replaced, never followed — or, with
 * TG_FILE_NO_REPLACE, link(2) so an existing path is refused
 * (TG_ERR_INVALID_ARG, "'PATH' already exists"); then fsync of the
 * directory. On any failure the temporary file is removed and the old file
 * is left as it was. 0, or TG_ERR_IO naming path, the step and the OS
 * reason.
 */
int tg_file_write(const char *path, const void *data, size_t len, unsigned mode, unsigned flags,
                  struct tg_error *err);

#endif /* TG_FILE_H */
