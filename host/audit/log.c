/* log.c — the audit log's writer: the hash chain, one write(2) per line,
 * fsync modes, torn-tail recovery and rotation (tg_audit.h). */
#include "tg_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tg_file.h"
#include "tg_hex.h"

#define AUDIT_CHUNK 4096

struct tg_audit {
	char *path;
	int fd;
	enum tg_audit_fsync mode;
	char head[TG_AUDIT_HASH_HEX];
	off_t good_end;  /* file size after the last complete line */
	int dirty;       /* a write failed: bytes past good_end may be a torn line */
	size_t unsynced; /* records written since the last fsync */
	struct timespec first_unsynced;
	size_t torn; /* torn bytes cut off at the last open */
};

int
tg_audit_line_hash(const void *line, size_t n, char out[TG_AUDIT_HASH_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int r = TG_ERR_CRYPTO;

	out[0] = '\0';
	if (EVP_Digest(line, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		goto out;
	r = tg_hex_encode(md, mdlen, out, TG_AUDIT_HASH_HEX);
out:
	return r;
}

int
tg_audit_fsync_parse(const char *s, enum tg_audit_fsync *mode, struct tg_error *err)
{
	int r = 0;

	if (strcmp(s, "always") == 0)
		*mode = TG_AUDIT_FSYNC_ALWAYS;
	else if (strcmp(s, "batch") == 0)
		*mode = TG_AUDIT_FSYNC_BATCH;
	else if (strcmp(s, "never") == 0)
		*mode = TG_AUDIT_FSYNC_NEVER;
	else
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "audit fsync mode '%s' is not one of always, batch, never", s);
	return r;
}

/* Offset of the last '\n' before offset before, or -1 when there is none. */
static int
last_newline(int fd, off_t before, off_t *pos)
{
	char buf[AUDIT_CHUNK];
	off_t start;
	ssize_t got, i;
	int r = 0;

	*pos = -1;
	while (before > 0) {
		start = before > AUDIT_CHUNK ? before - AUDIT_CHUNK : 0;
		got = pread(fd, buf, (size_t)(before - start), start);
		if (got != before - start) {
			r = TG_ERR_IO;
			goto out;
		}
		for (i = got - 1; i >= 0; i--) {
			if (buf[i] == '\n') {
				*pos = start + i;
				goto out;
			}
		}
		before = start;
	}
out:
	return r;
}

/* SHA-256 (hex) of the bytes [from, to) of fd. */
static int
range_hash(int fd, off_t from, off_t to, char out[TG_AUDIT_HASH_HEX])
{
	char buf[AUDIT_CHUNK];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t want;
	int r = TG_ERR_CRYPTO;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while (from < to) {
		want = (size_t)(to - from) > sizeof(buf) ? sizeof(buf) : (size_t)(to - from);
		if (pread(fd, buf, want, from) != (ssize_t)want) {
			r = TG_ERR_IO;
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, want) != 1)
			goto out;
		from += (off_t)want;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto out;
	r = tg_hex_encode(md, mdlen, out, TG_AUDIT_HASH_HEX);
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * Finds where the chain of fd (size bytes) continues: *head the hash of the
 * last complete line (unchanged when there is none), *end the offset after
 * it, *torn the bytes after it and *torn_hash their hash.
 */
static int
chain_tail(int fd, off_t size, char head[TG_AUDIT_HASH_HEX], off_t *end, size_t *torn,
           char torn_hash[TG_AUDIT_HASH_HEX])
{
	off_t nl, before;
	int r;

	*end = 0;
	*torn = 0;
	torn_hash[0] = '\0';
	if ((r = last_newline(fd, size, &nl)) != 0)
		goto out;
	*end = nl + 1;
	if (*end < size) {
		*torn = (size_t)(size - *end);
		if ((r = range_hash(fd, *end, size, torn_hash)) != 0)
			goto out;
	}
	if (nl < 0)
		goto out;
	if ((r = last_newline(fd, nl, &before)) != 0)
		goto out;
	r = range_hash(fd, before + 1, nl, head);
out:
	return r;
}

/* Opens and checks path; the chain continues from its last line, or from
 * head as given when the file holds none. */
static int
audit_file_open(const char *path, int *fdout, char head[TG_AUDIT_HASH_HEX], off_t *end,
                size_t *torn, char torn_hash[TG_AUDIT_HASH_HEX], struct tg_error *err)
{
	struct stat st;
	int fd = -1, r;

	if ((r = tg_file_open_checked(path, "audit log", TG_FILE_APPEND | TG_FILE_SECRET, &fd,
	                              err)) != 0)
		goto out;
	if (fstat(fd, &st) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot stat audit log '%s': %s", path,
		                 strerror(errno));
		goto out;
	}
	if ((r = chain_tail(fd, st.st_size, head, end, torn, torn_hash)) != 0) {
		r = tg_error_set(err, r, "cannot read the last line of audit log '%s': %s", path,
		                 r == TG_ERR_IO ? strerror(errno) : "SHA-256 failed");
		goto out;
	}
	/* the torn bytes were never a record (the write that made them failed) */
	if (*torn > 0 && ftruncate(fd, *end) != 0) {
		r = tg_error_set(
		    err, TG_ERR_IO,
		    "audit log '%s' ends with %zu bytes of a torn line and they cannot "
		    "be cut off: %s",
		    path, *torn, strerror(errno));
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

static long long
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

int
tg_audit_sync(struct tg_audit *log, struct tg_error *err)
{
	int r = 0;

	if (log->unsynced == 0)
		goto out;
	if (fsync(log->fd) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot fsync audit log '%s': %s", log->path,
		                 strerror(errno));
		goto out;
	}
	log->unsynced = 0;
out:
	return r;
}

/* "2026-12-02T13:18:01.123Z" */
static json_t *
time_now(void)
{
	struct timespec ts;
	struct tm tm;
	char buf[40];
	json_t *j = NULL;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		goto out;
	if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		goto out;
	j = json_sprintf("%s.%03ldZ", buf, ts.tv_nsec / 1000000);
out:
	return j;
}

/* Cuts off what a failed write left past the last complete line. */
static int
audit_undo_torn(struct tg_audit *log, struct tg_error *err)
{
	struct stat st;
	int r = 0;

	if (!log->dirty)
		goto out;
	if (fstat(log->fd, &st) != 0 ||
	    (st.st_size > log->good_end && ftruncate(log->fd, log->good_end) != 0)) {
		r = tg_error_set(err, TG_ERR_IO,
		                 "audit log '%s': cannot cut off the torn line a failed write "
		                 "left: %s",
		                 log->path, strerror(errno));
		goto out;
	}
	log->dirty = 0;
out:
	return r;
}

int
tg_audit_write(struct tg_audit *log, const json_t *record, struct tg_error *err)
{
	json_t *rec = NULL, *t;
	char *text = NULL, head[TG_AUDIT_HASH_HEX];
	size_t n;
	ssize_t w;
	int r = TG_ERR_ALLOC;

	if (!json_is_object(record)) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG, "an audit record must be a JSON object");
		goto out;
	}
	if ((rec = json_copy((json_t *)record)) == NULL)
		goto out;
	if (json_object_set_new(rec, "prev", json_string(log->head)) != 0)
		goto out;
	if (json_object_get(rec, "time") == NULL &&
	    ((t = time_now()) == NULL || json_object_set_new(rec, "time", t) != 0))
		goto out;
	text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	if (text == NULL)
		goto out;
	n = strlen(text);
	if (n > TG_AUDIT_LINE_MAX) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "audit record of %zu bytes is longer than the %u-byte limit", n,
		                 TG_AUDIT_LINE_MAX);
		goto out;
	}
	if ((r = tg_audit_line_hash(text, n, head)) != 0) {
		tg_error_set(err, r, "cannot hash an audit record: SHA-256 failed");
		goto out;
	}
	text[n] = '\n';
	if ((r = audit_undo_torn(log, err)) != 0)
		goto out;
	w = write(log->fd, text, n + 1);
	if (w != (ssize_t)(n + 1)) {
		log->dirty = 1;
		r = tg_error_set(err, TG_ERR_IO, "cannot write to audit log '%s': %s", log->path,
		                 w < 0 ? strerror(errno) : "short write (disk full?)");
		goto out;
	}
	log->good_end += (off_t)(n + 1);
	memcpy(log->head, head, sizeof(head));
	if (log->unsynced++ == 0)
		clock_gettime(CLOCK_MONOTONIC, &log->first_unsynced);
	r = 0;
	if (log->mode == TG_AUDIT_FSYNC_ALWAYS ||
	    (log->mode == TG_AUDIT_FSYNC_BATCH &&
	     (log->unsynced >= TG_AUDIT_BATCH_RECORDS ||
	      ms_since(&log->first_unsynced) >= TG_AUDIT_BATCH_MS)))
		r = tg_audit_sync(log, err);
out:
	if (r == TG_ERR_ALLOC)
		tg_error_set(err, r, "out of memory writing an audit record");
	free(text);
	json_decref(rec);
	return r;
}

/* Writes the record of a torn tail cut off at open. */
static int
audit_note_torn(struct tg_audit *log, const char *torn_hash, struct tg_error *err)
{
	json_t *rec = json_pack("{s:s, s:I, s:s}", "event", "audit-torn-tail", "torn_bytes",
	                        (json_int_t)log->torn, "torn_sha256", torn_hash);
	int r;

	if (rec == NULL)
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
	else
		r = tg_audit_write(log, rec, err);
	json_decref(rec);
	return r;
}

int
tg_audit_open(const char *path, enum tg_audit_fsync mode, struct tg_audit **out,
              struct tg_error *err)
{
	struct tg_audit *log = NULL;
	char torn_hash[TG_AUDIT_HASH_HEX];
	int r = TG_ERR_ALLOC;

	*out = NULL;
	if ((log = calloc(1, sizeof(*log))) == NULL || (log->path = strdup(path)) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	log->fd = -1;
	log->mode = mode;
	memcpy(log->head, TG_AUDIT_GENESIS, sizeof(log->head));
	if ((r = audit_file_open(path, &log->fd, log->head, &log->good_end, &log->torn, torn_hash,
	                         err)) != 0)
		goto out;
	if (log->torn > 0 && (r = audit_note_torn(log, torn_hash, err)) != 0)
		goto out;
	*out = log;
	log = NULL;
	r = 0;
out:
	tg_audit_close(log);
	return r;
}

int
tg_audit_reopen(struct tg_audit *log, struct tg_error *err)
{
	char head[TG_AUDIT_HASH_HEX], torn_hash[TG_AUDIT_HASH_HEX];
	off_t end = 0;
	size_t torn = 0;
	int fd = -1, r;

	if ((r = tg_audit_sync(log, err)) != 0)
		goto out;
	/* the old file is never written again: a failed write's torn bytes
	 * must go now, or the rotated chain ends in a torn line */
	if ((r = audit_undo_torn(log, err)) != 0)
		goto out;
	memcpy(head, log->head, sizeof(head));
	if ((r = audit_file_open(log->path, &fd, head, &end, &torn, torn_hash, err)) != 0)
		goto out;
	close(log->fd);
	log->fd = fd;
	memcpy(log->head, head, sizeof(head));
	log->good_end = end;
	log->dirty = 0;
	log->torn = torn;
	if (torn > 0)
		r = audit_note_torn(log, torn_hash, err);
out:
	return r;
}

const char *
tg_audit_head(const struct tg_audit *log)
{
	return log->head;
}

size_t
tg_audit_torn_bytes(const struct tg_audit *log)
{
	return log->torn;
}

size_t
tg_audit_unsynced(const struct tg_audit *log)
{
	return log->unsynced;
}

void
tg_audit_close(struct tg_audit *log)
{
	if (log != NULL && log->fd >= 0) {
		if (log->unsynced > 0)
			(void)fsync(log->fd);
		close(log->fd);
	}
	if (log != NULL)
		free(log->path);
	free(log);
}
