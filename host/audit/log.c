/* log.c — the audit log's writer: the hash chain, one write(2) per line,
 * fsync modes (batch: a sync thread, off the writer), torn-tail recovery
 * and rotation (tg_audit.h). */
#include "tg_audit.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tg_dec.h"
#include "tg_file.h"
#include "tg_hex.h"

#define AUDIT_CHUNK 4096

/*
 * Who touches what (see the locking rules in tg_audit.h): the writer's
 * fields are used by the one caller of write/reopen at a time; fd is also
 * read by syncs, so reopen swaps it under sync_mu; written/synced/
 * sync_failed are atomics shared with the sync thread.
 */
struct tg_audit {
	char *path; /* never changes */
	int fd;     /* swapped by reopen under sync_mu */
	enum tg_audit_fsync mode;
	/* the writer's */
	char head[TG_AUDIT_HASH_HEX];
	off_t good_end;            /* file size after the last complete line */
	int dirty;                 /* a write failed: bytes past good_end may be a torn line */
	size_t torn;               /* torn bytes cut off at the last open */
	EVP_MD_CTX *md;            /* the chain's SHA-256, reused line after line */
	struct tg_audit_line line; /* tg_audit_write's, reused */
	/* shared with syncs */
	atomic_ullong written;  /* records written (all files since open) */
	atomic_ullong synced;   /* of those, known to be on disk */
	atomic_int sync_failed; /* the last sync failed: writes are refused */
	pthread_mutex_t sync_mu;
	char sync_why[256]; /* under sync_mu: why the last sync failed */
	/* batch mode's sync thread */
	pthread_t thread;
	int thread_on;
	atomic_int kicked; /* the writer asked for a sync (BATCH_RECORDS pending) */
	pthread_mutex_t wake_mu;
	pthread_cond_t wake_cv; /* CLOCK_MONOTONIC */
	int wake, stop;         /* under wake_mu */
};

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256; /* fetched once; lives as long as the process */

static void
sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 of line as hex, with ctx (NULL: a new one). 0, or TG_ERR_CRYPTO. */
static int
line_hash(EVP_MD_CTX *ctx, const void *line, size_t n, char out[TG_AUDIT_HASH_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *own = NULL;
	int r = TG_ERR_CRYPTO;

	out[0] = '\0';
	if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256 == NULL)
		goto out;
	if (ctx == NULL && (ctx = own = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestInit_ex(ctx, sha256, NULL) != 1 || EVP_DigestUpdate(ctx, line, n) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	r = tg_hex_encode(md, mdlen, out, TG_AUDIT_HASH_HEX);
out:
	EVP_MD_CTX_free(own);
	return r;
}

int
tg_audit_line_hash(const void *line, size_t n, char out[TG_AUDIT_HASH_HEX])
{
	return line_hash(NULL, line, n, out);
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

	if (ctx == NULL || pthread_once(&sha256_once, sha256_fetch) != 0 || sha256 == NULL ||
	    EVP_DigestInit_ex(ctx, sha256, NULL) != 1)
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

/* The sync: every record counted in written before it started is on disk
 * when it succeeds. Serialized by sync_mu, never under the writer's lock. */
int
tg_audit_sync(struct tg_audit *log, struct tg_error *err)
{
	unsigned long long target;
	int r = 0;

	pthread_mutex_lock(&log->sync_mu);
	target = atomic_load(&log->written);
	if (target == atomic_load(&log->synced) && !atomic_load(&log->sync_failed))
		goto out;
	if (fdatasync(log->fd) != 0) {
		snprintf(log->sync_why, sizeof(log->sync_why), "%s", strerror(errno));
		atomic_store(&log->sync_failed, 1);
		r = tg_error_set(err, TG_ERR_IO, "cannot fsync audit log '%s': %s", log->path,
		                 log->sync_why);
		goto out;
	}
	atomic_store(&log->synced, target);
	atomic_store(&log->sync_failed, 0);
out:
	pthread_mutex_unlock(&log->sync_mu);
	return r;
}

/* Batch mode's sync thread: a sync every TG_AUDIT_BATCH_MS, or at once
 * when the writer kicks it (TG_AUDIT_BATCH_RECORDS pending); a failed
 * sync is retried at the next tick. */
static void *
sync_main(void *arg)
{
	struct tg_audit *log = arg;
	struct timespec at;

	pthread_mutex_lock(&log->wake_mu);
	while (!log->stop) {
		if (!log->wake) {
			clock_gettime(CLOCK_MONOTONIC, &at);
			at.tv_nsec += (long)TG_AUDIT_BATCH_MS * 1000000L;
			at.tv_sec += at.tv_nsec / 1000000000L;
			at.tv_nsec %= 1000000000L;
			(void)pthread_cond_timedwait(&log->wake_cv, &log->wake_mu, &at);
		}
		log->wake = 0;
		if (log->stop)
			break;
		pthread_mutex_unlock(&log->wake_mu);
		atomic_store(&log->kicked, 0);
		(void)tg_audit_sync(log, NULL);
		pthread_mutex_lock(&log->wake_mu);
	}
	pthread_mutex_unlock(&log->wake_mu);
	return NULL;
}

/* Wakes the sync thread once TG_AUDIT_BATCH_RECORDS records wait. */
static void
sync_kick(struct tg_audit *log)
{
	if (atomic_load(&log->written) - atomic_load(&log->synced) >= TG_AUDIT_BATCH_RECORDS &&
	    !atomic_load_explicit(&log->kicked, memory_order_relaxed) &&
	    !atomic_exchange(&log->kicked, 1)) {
		pthread_mutex_lock(&log->wake_mu);
		log->wake = 1;
		pthread_cond_signal(&log->wake_cv);
		pthread_mutex_unlock(&log->wake_mu);
	}
}

static int
sync_thread_start(struct tg_audit *log, struct tg_error *err)
{
	pthread_condattr_t ca;
	int r = 0;

	pthread_condattr_init(&ca);
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&log->wake_cv, &ca) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot set up the audit log's sync thread");
		goto out;
	}
	if (pthread_create(&log->thread, NULL, sync_main, log) != 0) {
		pthread_cond_destroy(&log->wake_cv);
		r = tg_error_set(err, TG_ERR_INTERNAL,
		                 "cannot start the audit log's sync thread (out of threads?)");
		goto out;
	}
	log->thread_on = 1;
out:
	pthread_condattr_destroy(&ca);
	return r;
}

static void
sync_thread_stop(struct tg_audit *log)
{
	if (log->thread_on) {
		pthread_mutex_lock(&log->wake_mu);
		log->stop = 1;
		pthread_cond_signal(&log->wake_cv);
		pthread_mutex_unlock(&log->wake_mu);
		pthread_join(log->thread, NULL);
		pthread_cond_destroy(&log->wake_cv);
		log->thread_on = 0;
	}
}

/* The start of every line: "prev" first, at a fixed offset, so that the
 * line can be dumped before the chain's head is known (outside the
 * writer's lock) and the head copied in last. */
#define LINE_PREV    "{\"prev\":\""
#define LINE_PREV_AT (sizeof(LINE_PREV) - 1)

/* Room for n more bytes (and the '\n' the writer adds) in line; -1 past
 * TG_AUDIT_LINE_MAX (line->too_long set) or out of memory. */
static int
line_room(struct tg_audit_line *line, size_t n)
{
	size_t cap = line->cap;
	char *p;
	int r = -1;

	if (n > TG_AUDIT_LINE_MAX - line->len) {
		line->too_long = 1;
		goto out;
	}
	if (cap - line->len <= n) {
		while (cap - line->len <= n)
			cap = cap == 0 ? 1024 : cap * 2;
		if ((p = realloc(line->buf, cap)) == NULL)
			goto out;
		line->buf = p;
		line->cap = cap;
	}
	r = 0;
out:
	return r;
}

/* Appends n bytes, with room made (line_room) first. */
static void
line_copy(struct tg_audit_line *line, const void *buf, size_t n)
{
	memcpy(line->buf + line->len, buf, n);
	line->len += n;
}

/* Appends n bytes to line; -1 past TG_AUDIT_LINE_MAX or out of memory.
 * Also json_dump_callback's sink. */
static int
line_put(const char *buf, size_t n, void *arg)
{
	struct tg_audit_line *line = arg;
	int r = line_room(line, n);

	if (r == 0)
		line_copy(line, buf, n);
	return r;
}

static _Thread_local time_t time_sec;
static _Thread_local char time_text[64];
static _Thread_local size_t time_len; /* 0: time_text not made yet */

/* ,"time":"2026-12-02T13:18:01.123Z" (now, UTC) into buf (64 bytes), its
 * length into *n. 0, or -1 when the clock cannot be read as a date. */
static int
time_piece(char buf[64], size_t *n)
{
	struct timespec ts;
	struct tm tm;
	size_t k;
	int r = -1;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* the text up to the second, made once a second per thread */
	if (ts.tv_sec != time_sec || time_len == 0) {
		time_len = 0;
		if (gmtime_r(&ts.tv_sec, &tm) == NULL)
			goto out;
		k = strftime(time_text, sizeof(time_text), "\",\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
		if (k == 0 || k + 6 > 64)
			goto out;
		time_len = k;
		time_sec = ts.tv_sec;
	}
	k = time_len;
	memcpy(buf, time_text, k);
	buf[k++] = '.';
	buf[k++] = (char)('0' + ts.tv_nsec / 100000000);
	buf[k++] = (char)('0' + ts.tv_nsec / 10000000 % 10);
	buf[k++] = (char)('0' + ts.tv_nsec / 1000000 % 10);
	buf[k++] = 'Z';
	*n = k;
	r = 0;
out:
	return r;
}

/* Appends ,"time":"2026-12-02T13:18:01.123Z" (now, UTC). */
static int
line_put_time(struct tg_audit_line *line)
{
	char buf[64];
	size_t n;

	return time_piece(buf, &n) == 0 ? line_put(buf, n, line) : -1;
}

int
tg_audit_prepare(const json_t *record, struct tg_audit_line *line, struct tg_error *err)
{
	size_t at;
	int r = TG_ERR_ALLOC;

	line->len = 0;
	line->too_long = 0;
	if (!json_is_object(record)) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG, "an audit record must be a JSON object");
		goto out;
	}
	if (json_object_get(record, "prev") != NULL) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "an audit record must not have a \"prev\" field: the log sets it");
		goto out;
	}
	/* {"prev":"<64 zeros>" then ,"time":"..." when the record has none */
	if (line_put(LINE_PREV TG_AUDIT_GENESIS, LINE_PREV_AT + TG_AUDIT_HASH_HEX - 1, line) != 0 ||
	    (json_object_get(record, "time") == NULL && line_put_time(line) != 0) ||
	    line_put("\"", 1, line) != 0)
		goto toolong;
	/* then the record's fields: its dump's "{" becomes "," ("{}": "}") */
	at = line->len;
	if (json_dump_callback(record, line_put, line,
	                       JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) != 0)
		goto toolong;
	if (line->len - at == 2) {
		line->buf[at] = '}';
		line->len = at + 1;
	} else {
		line->buf[at] = ',';
	}
	r = 0;
	goto out;
toolong:
	if (line->too_long)
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "audit record is longer than the %u-byte limit",
		                 TG_AUDIT_LINE_MAX);
	else
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory writing an audit record");
out:
	return r;
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)

/* What a byte may be in a record, looked up per byte (every key and
 * string of every record is scanned): */
#define CH_KEY   1u /* in a key: [a-z0-9_] */
#define CH_PLAIN 2u /* in a string written as it is: printable ASCII but '"' and '\\' */

static unsigned char ch_class[256];
static pthread_once_t ch_once = PTHREAD_ONCE_INIT;

static void
ch_make(void)
{
	unsigned c;

	for (c = 0x20; c <= 0x7e; c++)
		ch_class[c] = c != '"' && c != '\\' ? CH_PLAIN : 0u;
	for (c = 'a'; c <= 'z'; c++)
		ch_class[c] |= CH_KEY;
	for (c = '0'; c <= '9'; c++)
		ch_class[c] |= CH_KEY;
	ch_class['_'] |= CH_KEY;
}

/* A key tg_audit_prepare_fields writes as it is: [a-z0-9_]+, not "prev";
 * its length into *len (ch_make has run). */
static int
field_key_ok(const char *k, size_t *len)
{
	const unsigned char *p = (const unsigned char *)k;
	size_t i = 0;

	if (p != NULL)
		while (ch_class[p[i]] & CH_KEY)
			i++;
	*len = i;
	return p != NULL && i > 0 && p[i] == '\0' && !(i == 4 && memcmp(k, "prev", 4) == 0);
}

/* The first 8 bytes of key k (klen long, no NUL in it), big-endian, zero
 * after its end: two keys order as their prefixes do when these differ. */
static uint64_t
key_prefix(const char *k, size_t klen)
{
	unsigned char b[8] = {0};
	uint64_t v;

	memcpy(b, k, klen < 8 ? klen : 8);
	memcpy(&v, b, 8);
	return be64toh(v);
}

/*
 * strcmp of keys a and b (prefixes pa, pb; la the length of a): the
 * prefixes decide when they differ. Equal ones with a shorter than 8 bytes
 * are the same key (b's zero bytes past its end are a's, and a key holds
 * no NUL); else both are 8 bytes or longer and the rest decides.
 */
static int
key_cmp(const char *a, uint64_t pa, size_t la, const char *b, uint64_t pb)
{
	int c;

	if (pa != pb)
		c = pa < pb ? -1 : 1;
	else
		c = la < 8 ? 0 : strcmp(a + 8, b + 8);
	return c;
}

/* tg_audit_str_plain with its length into *len (when plain). */
static int
str_plain_len(const char *s, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	(void)pthread_once(&ch_once, ch_make);
	if (p != NULL)
		while (ch_class[p[i]] & CH_PLAIN)
			i++;
	*len = i;
	return p != NULL && p[i] == '\0';
}

int
tg_audit_str_plain(const char *s)
{
	size_t n;

	return str_plain_len(s, &n);
}

/* Appends field f's value as JSON text. */
static int
field_put(const struct tg_audit_field *f, struct tg_audit_line *line)
{
	char num[TG_DEC_MAX];
	json_t *v;
	size_t n;
	int r = -1;

	switch (f->kind) {
	case TG_AUDIT_JSON:
		r = json_dump_callback(f->json, line_put, line, DUMP_FLAGS);
		break;
	case TG_AUDIT_STR:
		if (str_plain_len(f->s, &n)) {
			/* nothing to escape: jansson would write exactly this */
			if ((r = line_room(line, n + 2)) == 0) {
				line_copy(line, "\"", 1);
				line_copy(line, f->s, n);
				line_copy(line, "\"", 1);
			}
			break;
		}
		/* jansson's check and escaping, as for a record's string member */
		v = f->s != NULL ? json_string(f->s) : NULL;
		r = v != NULL ? json_dump_callback(v, line_put, line, DUMP_FLAGS)
		              : line_put("null", 4, line);
		json_decref(v);
		break;
	case TG_AUDIT_INT:
		/* what jansson writes for an integer ("%lld") */
		n = tg_dec_i64((int64_t)f->i, num);
		r = line_put(num, n, line);
		break;
	case TG_AUDIT_TEXT:
		r = line_put(f->s, f->len, line);
		break;
	case TG_AUDIT_PLAIN:
		if ((r = line_room(line, f->len + 2)) == 0) {
			line_copy(line, "\"", 1);
			line_copy(line, f->s, f->len);
			line_copy(line, "\"", 1);
		}
		break;
	}
	return r;
}

/*
 * The length of f's JSON text when it is known without dumping (TEXT,
 * PLAIN, INT written into num, a STR with nothing to escape) into *n; 0
 * when it is not (JSON, a STR to escape) or is longer than any line.
 */
static int
field_len(const struct tg_audit_field *f, char num[TG_DEC_MAX], size_t *n)
{
	int known = 1;

	*n = 0;
	switch (f->kind) {
	case TG_AUDIT_TEXT:
	case TG_AUDIT_PLAIN:
		*n = f->len + (f->kind == TG_AUDIT_PLAIN ? 2 : 0);
		known = f->len <= TG_AUDIT_LINE_MAX;
		break;
	case TG_AUDIT_INT:
		*n = tg_dec_i64((int64_t)f->i, num);
		break;
	case TG_AUDIT_STR:
		known = str_plain_len(f->s, n) && *n <= TG_AUDIT_LINE_MAX;
		*n += 2;
		break;
	default:
		known = 0;
		break;
	}
	return known;
}

/*
 * The common line of tg_audit_prepare_fields: every value's length known
 * (field_len), room made once for the whole line, the pieces copied
 * without a check each. f's keys are checked and ord sorts them; klen,
 * vlen and num from field_len. 0, or -1 as line_room.
 */
static int
line_fast(const struct tg_audit_field *f, size_t n, const size_t *ord, const size_t *klen,
          const size_t *vlen, char (*num)[TG_DEC_MAX], int time_given, struct tg_audit_line *line)
{
	char tbuf[64];
	size_t i, t, tn = 0, need = LINE_PREV_AT + TG_AUDIT_HASH_HEX - 1 + 2;
	int r = -1;

	if (!time_given && time_piece(tbuf, &tn) != 0)
		goto out;
	need += tn;
	for (i = 0; i < n; i++)
		need += klen[i] + 4 + vlen[i]; /* ,"key": and the value */
	if (line_room(line, need) != 0)
		goto out;
	line_copy(line, LINE_PREV TG_AUDIT_GENESIS, LINE_PREV_AT + TG_AUDIT_HASH_HEX - 1);
	line_copy(line, tbuf, tn);
	line_copy(line, "\"", 1);
	for (i = 0; i < n; i++) {
		t = ord[i];
		line_copy(line, ",\"", 2);
		line_copy(line, f[t].key, klen[t]);
		line_copy(line, "\":", 2);
		if (f[t].kind == TG_AUDIT_INT) {
			line_copy(line, num[t], vlen[t]);
		} else if (f[t].kind == TG_AUDIT_TEXT) {
			line_copy(line, f[t].s, vlen[t]);
		} else {
			line_copy(line, "\"", 1);
			line_copy(line, f[t].s, vlen[t] - 2);
			line_copy(line, "\"", 1);
		}
	}
	line_copy(line, "}", 1);
	r = 0;
out:
	return r;
}

int
tg_audit_prepare_fields(const struct tg_audit_field *f, size_t n, struct tg_audit_line *line,
                        struct tg_error *err)
{
	size_t ord[TG_AUDIT_FIELDS_MAX], klen[TG_AUDIT_FIELDS_MAX], vlen[TG_AUDIT_FIELDS_MAX], i, j,
	    t;
	uint64_t pre[TG_AUDIT_FIELDS_MAX];
	char num[TG_AUDIT_FIELDS_MAX][TG_DEC_MAX];
	int time_given = 0, known = 1, c, r = TG_ERR_INVALID_ARG;

	line->len = 0;
	line->too_long = 0;
	if (n == 0 || n > TG_AUDIT_FIELDS_MAX) {
		tg_error_set(err, r, "an audit record needs 1 to %u fields, not %zu",
		             TG_AUDIT_FIELDS_MAX, n);
		goto out;
	}
	(void)pthread_once(&ch_once, ch_make);
	/* sorted by key, as JSON_SORT_KEYS sorts a record's members */
	for (i = 0; i < n; i++) {
		if (!field_key_ok(f[i].key, &klen[i]) ||
		    (f[i].kind == TG_AUDIT_JSON && f[i].json == NULL) ||
		    (f[i].kind == TG_AUDIT_TEXT && (f[i].s == NULL || f[i].len == 0)) ||
		    (f[i].kind == TG_AUDIT_PLAIN && f[i].s == NULL)) {
			tg_error_set(err, r,
			             "audit record field %zu ('%s'): the key must be lower-case "
			             "letters, digits and '_' (not \"prev\") and the value present",
			             i, f[i].key != NULL ? f[i].key : "(null)");
			goto out;
		}
		time_given |= klen[i] == 4 && memcmp(f[i].key, "time", 4) == 0;
		pre[i] = key_prefix(f[i].key, klen[i]);
		for (j = i; j > 0 && (c = key_cmp(f[ord[j - 1]].key, pre[ord[j - 1]],
		                                  klen[ord[j - 1]], f[i].key, pre[i])) >= 0;
		     j--) {
			if (c == 0) {
				tg_error_set(err, r, "audit record field '%s' is given twice",
				             f[i].key);
				goto out;
			}
		}
		for (t = i; t > j; t--)
			ord[t] = ord[t - 1];
		ord[j] = i;
		known = known && field_len(&f[i], num[i], &vlen[i]);
	}
	r = TG_ERR_ALLOC;
	if (known) {
		if (line_fast(f, n, ord, klen, vlen, num, time_given, line) != 0)
			goto toolong;
		r = 0;
		goto out;
	}
	if (line_put(LINE_PREV TG_AUDIT_GENESIS, LINE_PREV_AT + TG_AUDIT_HASH_HEX - 1, line) != 0 ||
	    (!time_given && line_put_time(line) != 0) || line_put("\"", 1, line) != 0)
		goto toolong;
	for (i = 0; i < n; i++) {
		t = ord[i];
		if (line_room(line, klen[t] + 4) != 0)
			goto toolong;
		line_copy(line, ",\"", 2);
		line_copy(line, f[t].key, klen[t]);
		line_copy(line, "\":", 2);
		if (field_put(&f[t], line) != 0)
			goto toolong;
	}
	if (line_put("}", 1, line) != 0)
		goto toolong;
	r = 0;
	goto out;
toolong:
	if (line->too_long)
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "audit record is longer than the %u-byte limit",
		                 TG_AUDIT_LINE_MAX);
	else
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory writing an audit record");
out:
	return r;
}

int
tg_audit_dump_value(const json_t *v, char **text, size_t *len)
{
	int r = TG_ERR_INVALID_ARG;

	*text = NULL;
	*len = 0;
	if (v == NULL)
		goto out;
	r = TG_ERR_ALLOC;
	if ((*text = json_dumps(v, DUMP_FLAGS)) == NULL)
		goto out;
	*len = strlen(*text);
	r = 0;
out:
	return r;
}

void
tg_audit_line_clear(struct tg_audit_line *line)
{
	free(line->buf);
	line->buf = NULL;
	line->len = line->cap = 0;
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

/* Refuses a write while the last sync failed (fail closed until a sync
 * works again: the sync thread or tg_audit_sync retries it). */
static int
sync_refusal(struct tg_audit *log, struct tg_error *err)
{
	int r;

	pthread_mutex_lock(&log->sync_mu);
	r = tg_error_set(err, TG_ERR_IO, "cannot fsync audit log '%s': %s", log->path,
	                 log->sync_why);
	pthread_mutex_unlock(&log->sync_mu);
	return r;
}

/* Whether line[0..n) starts as tg_audit_prepare makes a line (its "prev" to fill in). */
static int
line_shaped(const char *line, size_t n)
{
	return n >= LINE_PREV_AT + TG_AUDIT_HASH_HEX && memcmp(line, LINE_PREV, LINE_PREV_AT) == 0;
}

int
tg_audit_keep(struct tg_audit_line *kept, const struct tg_audit_line *line, struct tg_error *err)
{
	size_t n = line->len, cap;
	char *nb;
	int r = 0;

	if (!line_shaped(line->buf, n) || n >= line->cap) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "not an audit line made by tg_audit_prepare");
		goto out;
	}
	if (kept->cap - kept->len < n + 1) {
		cap = kept->cap == 0 ? AUDIT_CHUNK : kept->cap;
		while (cap - kept->len < n + 1)
			cap *= 2;
		if ((nb = realloc(kept->buf, cap)) == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC,
			                 "out of memory keeping an audit record");
			goto out;
		}
		kept->buf = nb;
		kept->cap = cap;
	}
	memcpy(kept->buf + kept->len, line->buf, n);
	kept->buf[kept->len + n] = '\n';
	kept->len += n + 1;
out:
	return r;
}

/*
 * Chains the n bytes of line at p (no "\n"): "prev" set to head, then
 * head = its hash. 0, or TG_ERR_CRYPTO.
 */
static int
chain_line(struct tg_audit *log, char *p, size_t n, char head[TG_AUDIT_HASH_HEX],
           struct tg_error *err)
{
	int r;

	memcpy(p + LINE_PREV_AT, head, TG_AUDIT_HASH_HEX - 1);
	if ((r = line_hash(log->md, p, n, head)) != 0)
		tg_error_set(err, r, "cannot hash an audit record: SHA-256 failed");
	return r;
}

int
tg_audit_write_kept(struct tg_audit *log, struct tg_audit_line *kept, struct tg_audit_line *line,
                    struct tg_error *err)
{
	char head[TG_AUDIT_HASH_HEX], *p, *end, *nl;
	size_t n = line != NULL ? line->len : 0, total, nrec = 0;
	struct iovec iov[2];
	int r = 0, niov = 0;
	ssize_t w;

	/* batch: refused until the sync thread's retry works (an inline retry
	 * would hide the failure: Linux reports a failed writeback once);
	 * the other modes reported it to the caller already and retry here */
	if (atomic_load(&log->sync_failed) &&
	    (log->mode == TG_AUDIT_FSYNC_BATCH ? (r = sync_refusal(log, err))
	                                       : (r = tg_audit_sync(log, err))) != 0)
		goto out;
	if (line != NULL && (!line_shaped(line->buf, n) || n >= line->cap)) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "not an audit line made by tg_audit_prepare");
		goto out;
	}
	memcpy(head, log->head, sizeof(head));
	/* the kept lines first, in the order they were kept, then line */
	p = kept != NULL ? kept->buf : NULL;
	end = p != NULL ? p + kept->len : NULL;
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    !line_shaped(p, (size_t)(nl - p))) {
			r = tg_error_set(err, TG_ERR_INVALID_ARG,
			                 "not an audit line kept by tg_audit_keep");
			goto out;
		}
		if ((r = chain_line(log, p, (size_t)(nl - p), head, err)) != 0)
			goto out;
		nrec++;
		p = nl + 1;
	}
	if (nrec > 0)
		iov[niov++] = (struct iovec){.iov_base = kept->buf, .iov_len = kept->len};
	if (line != NULL) {
		if ((r = chain_line(log, line->buf, n, head, err)) != 0)
			goto out;
		line->buf[n] = '\n';
		iov[niov++] = (struct iovec){.iov_base = line->buf, .iov_len = n + 1};
		nrec++;
	}
	if (nrec == 0)
		goto out;
	if ((r = audit_undo_torn(log, err)) != 0)
		goto out;
	total = iov[0].iov_len + (niov > 1 ? iov[1].iov_len : 0);
	w = writev(log->fd, iov, niov);
	if (w != (ssize_t)total) {
		log->dirty = 1;
		r = tg_error_set(err, TG_ERR_IO, "cannot write to audit log '%s': %s", log->path,
		                 w < 0 ? strerror(errno) : "short write (disk full?)");
		goto out;
	}
	log->good_end += (off_t)total;
	memcpy(log->head, head, sizeof(head));
	atomic_fetch_add(&log->written, nrec);
	if (log->mode == TG_AUDIT_FSYNC_ALWAYS)
		r = tg_audit_sync(log, err);
	else if (log->mode == TG_AUDIT_FSYNC_BATCH)
		sync_kick(log);
out:
	/* written, or lost with the write that failed (as line is) */
	if (kept != NULL)
		kept->len = 0;
	return r;
}

int
tg_audit_write_prepared(struct tg_audit *log, struct tg_audit_line *line, struct tg_error *err)
{
	return tg_audit_write_kept(log, NULL, line, err);
}

int
tg_audit_write(struct tg_audit *log, const json_t *record, struct tg_error *err)
{
	int r;

	if ((r = tg_audit_prepare(record, &log->line, err)) == 0)
		r = tg_audit_write_prepared(log, &log->line, err);
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
	if ((log = calloc(1, sizeof(*log))) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	pthread_mutex_init(&log->sync_mu, NULL);
	pthread_mutex_init(&log->wake_mu, NULL);
	atomic_init(&log->written, 0);
	atomic_init(&log->synced, 0);
	atomic_init(&log->sync_failed, 0);
	atomic_init(&log->kicked, 0);
	log->fd = -1;
	log->mode = mode;
	memcpy(log->head, TG_AUDIT_GENESIS, sizeof(log->head));
	if ((log->path = strdup(path)) == NULL || (log->md = EVP_MD_CTX_new()) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	if ((r = audit_file_open(path, &log->fd, log->head, &log->good_end, &log->torn, torn_hash,
	                         err)) != 0)
		goto out;
	if (log->torn > 0 && (r = audit_note_torn(log, torn_hash, err)) != 0)
		goto out;
	if (mode == TG_AUDIT_FSYNC_BATCH && (r = sync_thread_start(log, err)) != 0)
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
	int fd = -1, old, r;

	if ((r = tg_audit_sync(log, err)) != 0)
		goto out;
	/* the old file is never written again: a failed write's torn bytes
	 * must go now, or the rotated chain ends in a torn line */
	if ((r = audit_undo_torn(log, err)) != 0)
		goto out;
	memcpy(head, log->head, sizeof(head));
	if ((r = audit_file_open(log->path, &fd, head, &end, &torn, torn_hash, err)) != 0)
		goto out;
	/* everything written to the old file is synced (above, and no write
	 * runs concurrently); a sync running now holds sync_mu */
	pthread_mutex_lock(&log->sync_mu);
	old = log->fd;
	log->fd = fd;
	pthread_mutex_unlock(&log->sync_mu);
	close(old);
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

int
tg_audit_sync_failed(struct tg_audit *log, struct tg_error *err)
{
	return atomic_load(&log->sync_failed) ? sync_refusal(log, err) : 0;
}

size_t
tg_audit_unsynced(const struct tg_audit *log)
{
	struct tg_audit *l = (struct tg_audit *)log; /* atomics: loads only */

	return (size_t)(atomic_load(&l->written) - atomic_load(&l->synced));
}

void
tg_audit_close(struct tg_audit *log)
{
	if (log != NULL) {
		sync_thread_stop(log);
		if (log->fd >= 0) {
			if (atomic_load(&log->written) != atomic_load(&log->synced))
				(void)fdatasync(log->fd);
			close(log->fd);
		}
		EVP_MD_CTX_free(log->md);
		tg_audit_line_clear(&log->line);
		free(log->path);
		pthread_mutex_destroy(&log->sync_mu);
		pthread_mutex_destroy(&log->wake_mu);
	}
	free(log);
}
