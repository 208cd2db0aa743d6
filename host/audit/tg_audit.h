/*
 * tg_audit.h — the gate's tamper-evident audit log: one JSON object per
 * line, each carrying in "prev" the SHA-256 of the line before it, so an
 * edited, deleted, inserted or reordered line breaks the chain that
 * `tokengate audit verify` (tg_audit_verify.h) checks.
 *
 * A line is {"prev":"HEX","time":"..." then the record's own fields as
 * jansson dumps them with JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII
 * (no spaces, keys sorted, only ASCII, so never a raw newline inside a
 * record), then "\n": "prev" and "time" (when the record has none) come
 * first so that the record is dumped before the chain's head is known.
 * "prev" is the lower-case hex SHA-256 of the previous line's bytes
 * without its "\n"; the first line of a new chain has TG_AUDIT_GENESIS.
 *
 * Threads (the locking rules):
 * - tg_audit_write, tg_audit_write_prepared and tg_audit_reopen (and
 *   open/close) are the writer's: the caller serializes them on one log
 *   (the gate: its audit mutex).
 * - tg_audit_prepare needs no log: any thread, before taking that lock
 *   (the JSON dump, the costly part, then runs outside it).
 * - tg_audit_sync, tg_audit_sync_failed and tg_audit_unsynced may run on any thread at any time
 *   between open and close, WITHOUT the caller's lock, concurrently with a
 *   write or a reopen: syncs serialize among themselves and with reopen's
 *   switch of descriptors on a lock of the log's own that a write never
 *   takes (write(2) and fdatasync(2) on one descriptor from two threads are
 *   fine). A sync makes durable every record whose write returned before
 *   the sync began; a failed write's torn bytes are cut off by the writer
 *   only (a sync meanwhile merely syncs them too).
 * - In batch mode the log runs its own sync thread (started by open,
 *   joined by close): tg_audit_write never syncs there, it only wakes that
 *   thread when TG_AUDIT_BATCH_RECORDS records wait.
 * Syncs use fdatasync(2) (the file's size is synced with its data).
 */
#ifndef TG_AUDIT_H
#define TG_AUDIT_H

#include <stddef.h>

#include <jansson.h>

#include "tg_err.h"

/* "prev" of the first line of a chain: 64 zeros. */
#define TG_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
/* A line's hash as text: 64 hex digits and a NUL. */
#define TG_AUDIT_HASH_HEX 65
/* The longest line the writer writes and the verifier reads. */
#define TG_AUDIT_LINE_MAX (1024u * 1024u)
/* Batch mode's group commit, by the log's sync thread: a sync as soon as
 * this many records are unsynced... */
#define TG_AUDIT_BATCH_RECORDS 4096u
/* ...and at the latest every this many ms, so a record is on disk within
 * about TG_AUDIT_BATCH_MS of its write (plus the sync's own time). */
#define TG_AUDIT_BATCH_MS 100

/* When records become durable. In every mode a record's line is in the
 * file (one write(2)) before tg_audit_write returns. */
enum tg_audit_fsync {
	TG_AUDIT_FSYNC_ALWAYS, /* synced by tg_audit_write before it returns */
	TG_AUDIT_FSYNC_BATCH,  /* group commit off the writer: _BATCH_RECORDS or _MS */
	TG_AUDIT_FSYNC_NEVER,  /* left to the kernel (and tg_audit_sync/close) */
};

struct tg_audit;

/*
 * "always", "batch" or "never" into *mode: 0, or TG_ERR_INVALID_ARG with a
 * message naming s and the three values.
 */
int tg_audit_fsync_parse(const char *s, enum tg_audit_fsync *mode, struct tg_error *err);

/*
 * Opens path for appending with tgcore's tg_file_open_checked
 * (TG_FILE_APPEND | TG_FILE_SECRET: created with mode 0600 when missing, a
 * symbolic link refused, TG_ERR_NOT_FOUND when its directory is missing)
 * and so checks the opened file as a secret: a regular file owned by the caller with
 * no access for group or others (0600 or stricter), else TG_ERR_PERMISSION
 * with the chmod/chown that fixes it. In batch mode it also starts the
 * log's sync thread (TG_ERR_INTERNAL when it cannot). The chain continues from the SHA-256
 * of the file's last complete line (TG_AUDIT_GENESIS for an empty file).
 * A torn last line (bytes after the last "\n", left by a crash during a
 * write) was never a record: it is cut off and, so the cut itself is on
 * the record, the first line written is {"event":"audit-torn-tail",
 * "torn_bytes":N,"torn_sha256":HEX} (see tg_audit_torn_bytes). On success
 * *out is the log (free with tg_audit_close). TG_ERR_IO naming path and
 * the OS reason for the rest.
 */
int tg_audit_open(const char *path, enum tg_audit_fsync mode, struct tg_audit **out,
                  struct tg_error *err);

/* A record's line made by tg_audit_prepare, the caller's (any thread).
 * Start it zeroed ({0}); reuse it for many records; free its buffer
 * with tg_audit_line_clear. */
struct tg_audit_line {
	char *buf; /* the line; "prev" still to be filled in */
	size_t len, cap;
	int too_long; /* internal */
};

/*
 * Makes the line of record (not changed; the caller keeps it) into line,
 * all but the chain's "prev": "time" (UTC, "2026-12-02T13:18:01.123Z",
 * now) added when record has none. Needs no log and no lock. 0, or
 * TG_ERR_INVALID_ARG for a record that is not an object, has a "prev"
 * field of its own or whose line would exceed TG_AUDIT_LINE_MAX, or
 * TG_ERR_ALLOC.
 */
int tg_audit_prepare(const json_t *record, struct tg_audit_line *line, struct tg_error *err);

/* What a tg_audit_field's value is. */
enum tg_audit_kind {
	TG_AUDIT_JSON = 0,  /* json: any JSON value */
	TG_AUDIT_STR = 1,   /* s: a C string (NULL, or bytes that are not UTF-8: null) */
	TG_AUDIT_INT = 2,   /* i */
	TG_AUDIT_TEXT = 3,  /* s, len: JSON text made by tg_audit_dump_value */
	TG_AUDIT_PLAIN = 4, /* s, len: a string tg_audit_str_plain accepted, len its
	                       strlen: written between quotes as it is (checked once
	                       by a caller that writes it in several records) */
};

/* One member of a record given field by field (tg_audit_prepare_fields). */
struct tg_audit_field {
	const char *key; /* lower-case ASCII letters, digits and '_'; not "prev" */
	enum tg_audit_kind kind;
	const json_t *json;
	const char *s;
	size_t len;
	json_int_t i;
};

/* The most fields tg_audit_prepare_fields takes. */
#define TG_AUDIT_FIELDS_MAX 32

/*
 * tg_audit_prepare of the record {f[0].key: f[0]'s value, ...} without
 * building it as a JSON object: the same line, byte for byte (the fields
 * may come in any order: they are sorted here), for a fraction of the
 * cost. Strings and JSON values are dumped by jansson as tg_audit_prepare
 * dumps them; TG_AUDIT_TEXT is copied as it is, so it must come from
 * tg_audit_dump_value (a part that repeats, dumped once), and
 * TG_AUDIT_PLAIN between quotes. 0, or
 * TG_ERR_INVALID_ARG for n 0 or above TG_AUDIT_FIELDS_MAX, a key that is
 * not as above, two fields with one key, a JSON field without a value, a
 * line above TG_AUDIT_LINE_MAX; TG_ERR_ALLOC.
 */
int tg_audit_prepare_fields(const struct tg_audit_field *f, size_t n, struct tg_audit_line *line,
                            struct tg_error *err);

/*
 * The JSON text of v as tg_audit_prepare dumps a record's member values
 * (compact, keys sorted, ASCII only) into *text (malloc'd, NUL-terminated,
 * *len bytes; the caller frees it), for a TG_AUDIT_TEXT field. 0, or
 * TG_ERR_INVALID_ARG (v NULL) or TG_ERR_ALLOC.
 */
int tg_audit_dump_value(const json_t *v, char **text, size_t *len);

/*
 * 1 when jansson would write s (NUL-terminated) as a JSON string with no
 * escape at all -- every byte printable ASCII (0x20-0x7e) but '"' and
 * '\\' -- so its JSON text is s between quotes; 0 otherwise (NULL too).
 * tg_audit_prepare_fields writes such TG_AUDIT_STR values without jansson
 * (the same bytes); a caller may skip tg_audit_dump_value for them.
 */
int tg_audit_str_plain(const char *s);

/* Frees line's buffer (zeroed again). */
void tg_audit_line_clear(struct tg_audit_line *line);

/*
 * Writes a line tg_audit_prepare made (line keeps it; it may be reused
 * afterwards) with "prev" set to the chain's last hash: as tg_audit_write
 * from there on, with its results and errors.
 */
int tg_audit_write_prepared(struct tg_audit *log, struct tg_audit_line *line, struct tg_error *err);

/*
 * Keeps a copy of line (made by tg_audit_prepare; line may then be reused)
 * at the end of kept, a tg_audit_line used as a buffer of whole lines each
 * ended by "\n" (start it zeroed, free it with tg_audit_line_clear), to be
 * written later by tg_audit_write_kept. Needs no log and no lock. 0, or
 * TG_ERR_INVALID_ARG (not such a line) or TG_ERR_ALLOC.
 */
int tg_audit_keep(struct tg_audit_line *kept, const struct tg_audit_line *line,
                  struct tg_error *err);

/*
 * tg_audit_write_prepared of every line kept in kept, in the order they
 * were kept, and then of line (NULL: none), chained one after the other,
 * with ONE write(2) (writev) for all of them: the same bytes in the file
 * as writing them one by one. kept is emptied whatever happens (its
 * records are written, or lost with the write that failed, as line's
 * record is). Results, errors and locking as tg_audit_write_prepared's.
 */
int tg_audit_write_kept(struct tg_audit *log, struct tg_audit_line *kept,
                        struct tg_audit_line *line, struct tg_error *err);

/*
 * Appends record (not changed; the caller keeps it) as one line with one
 * write(2) on the O_APPEND descriptor: tg_audit_prepare's line with "prev"
 * set to the chain's last hash. Then, in mode always, a sync (batch: the sync
 * thread is woken when TG_AUDIT_BATCH_RECORDS wait; never syncs here).
 * 0 once the line is written (and synced in mode always);
 * tg_audit_prepare's errors; TG_ERR_IO naming the file and the OS
 * reason when the write or the sync fails — the caller must then refuse
 * what it was about to do (fail closed). While the last sync (by any
 * thread) has failed, a write first syncs again (modes always and never)
 * and in batch mode is refused outright until the sync thread's retry
 * (every TG_AUDIT_BATCH_MS) or a tg_audit_sync succeeds; a refused write
 * writes nothing and returns that sync's error. After a failed or short write
 * the bytes of the failed line are cut off again before the next write,
 * so a later success continues an intact chain.
 */
int tg_audit_write(struct tg_audit *log, const json_t *record, struct tg_error *err);

/*
 * Syncs the records not yet synced (fdatasync), or after a failed sync
 * tries again: 0, or TG_ERR_IO naming the file and the OS reason (the
 * writes are then refused until a sync succeeds). Any thread, without the
 * writer's lock (see Threads above).
 */
int tg_audit_sync(struct tg_audit *log, struct tg_error *err);

/*
 * For rotation (SIGHUP): syncs and closes the current file (a sync on
 * another thread meanwhile is fine: the switch waits for it) and opens the
 * log's path again, checked as tg_audit_open does. When the file now at
 * the path is empty (the old one was moved away) its first line continues
 * the chain: prev = the last hash of the old file. When it holds lines
 * (nothing was rotated) the chain continues from its last complete line.
 * On failure the log keeps writing to the old file and the error names
 * the path.
 */
int tg_audit_reopen(struct tg_audit *log, struct tg_error *err);

/* The SHA-256 (hex) of the last line written or found: the chain's head. */
const char *tg_audit_head(const struct tg_audit *log);

/* Bytes of a torn last line cut off by the last open or reopen (0: none). */
size_t tg_audit_torn_bytes(const struct tg_audit *log);

/*
 * Whether the last sync (by any thread: batch mode's sync thread, a
 * tg_audit_sync, a write in mode always) failed: 0 when it did not (or no
 * sync ran yet), else TG_ERR_IO naming the file and the OS reason, as the
 * failed sync said it. Does not sync: a cheap look for a watchdog (the
 * gate's timer) while batch mode's sync thread does the syncing. Any
 * thread, without the writer's lock.
 */
int tg_audit_sync_failed(struct tg_audit *log, struct tg_error *err);

/* Records written but not yet synced. Any thread. */
size_t tg_audit_unsynced(const struct tg_audit *log);

/* Stops batch mode's sync thread, syncs (errors ignored: call
 * tg_audit_sync first to see them), closes and frees log. No sync may run
 * on another thread meanwhile. NULL is accepted. */
void tg_audit_close(struct tg_audit *log);

/*
 * The chain's hash of a line: lower-case hex SHA-256 of its n bytes
 * (without the "\n") into out. 0, or TG_ERR_CRYPTO.
 */
int tg_audit_line_hash(const void *line, size_t n, char out[TG_AUDIT_HASH_HEX]);

#endif /* TG_AUDIT_H */
