/*
 * statefile.h — the simulator's state file: the token core's persistent
 * state blob (tg_tok_save), kept in one file of mode 0600.
 *
 * Writes are atomic and durable, through the project's one writer
 * (tg_file_write, tg_file.h): the blob goes to a new mkostemp temporary file
 * in the same directory, which is fsync'd and renamed over the state file,
 * then the directory is fsync'd. A crash (kill -9, power loss) leaves either
 * the old or the new state, never a mix.
 */
#ifndef TG_SIM_STATEFILE_H
#define TG_SIM_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

/* A state file larger than this is refused when loading. */
#define TG_SIM_STATE_MAX (4u * 1024 * 1024)

/*
 * Writes len bytes at blob to `path` atomically (see above), mode 0600.
 * With replace == 0 the write fails with TG_ERR_INVALID_ARG if `path`
 * already exists (checked atomically with link(2)). Errors name the file
 * and the fix in err.
 */
int tg_sim_state_write(const char *path, const uint8_t *blob, size_t len, int replace,
                       struct tg_error *err);

/*
 * Reads the whole state file: *blob is heap memory the caller wipes and
 * frees (tg_freezero(*blob, *len)). Refuses non-regular files, empty files
 * and files over TG_SIM_STATE_MAX. Warns (log) when the file is not the
 * user's or is accessible by group or others (tg_file_check_stat's message,
 * with the chmod or chown that fixes it).
 */
int tg_sim_state_read(const char *path, uint8_t **blob, size_t *len, struct tg_error *err);

/*
 * Takes an exclusive, non-blocking lock (flock) on PATH.lock (created 0600
 * if missing), so two simulators never serve, and init never replaces, a
 * state file another process is using. Returns the lock's file descriptor
 * (close it to release; exit releases it too) or -1 with err naming the
 * holder's file and the fix, or the state file's directory when that does
 * not exist or is not a directory.
 */
int tg_sim_state_lock(const char *path, struct tg_error *err);

/* 1 if something exists at path (lstat succeeds), else 0. */
int tg_sim_state_exists(const char *path);

#endif /* TG_SIM_STATEFILE_H */
