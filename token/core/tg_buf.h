/*
 * tg_buf.h — the one bounds-checked byte reader/writer for outside bytes.
 *
 * Every parser of bytes that come from outside the process (APDUs, TLVs,
 * vpcd frames, state files, attestation fields) reads them through a
 * struct tg_buf; no other code does pointer arithmetic on outside bytes.
 * Modelled on OpenSSH's sshbuf and s2n-tls's stuffer.
 *
 * A tg_buf is either
 *   - a reader over caller memory (tg_buf_reader): get_* consume from the
 *     read offset and fail with TG_ERR_TRUNCATED instead of reading past the
 *     end; the buffer never writes to the memory;
 *   - a writer over caller memory (tg_buf_writer): put_* append and fail
 *     with TG_ERR_NO_SPACE at capacity, writing nothing;
 *   - a growable heap writer (tg_buf_alloc) that grows up to a hard cap;
 *     release it with tg_buf_free, which wipes it.
 * Any writer can also be read from: get_* consume what was written.
 *
 * On failure no getter moves the read offset and no output is written
 * (all-or-nothing), so a caller can report the error and stop.
 *
 * Integers are big-endian. BER-TLV follows ISO/IEC 7816-4 / X.690 as PIV
 * uses it: tags of 1 to 3 bytes (first byte low bits 1F = more bytes follow),
 * definite lengths in short form or long form 81/82/83. Simple-TLV is
 * ISO/IEC 7816-4 simple-TLV: 1-byte tag (not 00 or FF), length in 1 byte or
 * FF followed by 2 bytes.
 *
 * The struct is public so buffers can live on the stack; treat the fields as
 * private and use the functions.
 */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>
#include <stdint.h>

#define TG_BUF_F_HEAP 0x1 /* storage owned by the buffer (tg_buf_alloc) */

struct tg_buf {
	const uint8_t *rd; /* the bytes (reader view of wr for writers) */
	uint8_t *wr;       /* writable storage, NULL for readers */
	size_t len;        /* bytes valid: [0, len) */
	size_t off;        /* read offset: off <= len */
	size_t cap;        /* allocated/caller capacity for writers */
	size_t max;        /* hard cap for growable writers */
	unsigned flags;
};

/* ---- construction ---- */

/* A reader over n bytes at p (p may be NULL when n is 0). Nothing to free. */
void tg_buf_reader(struct tg_buf *b, const uint8_t *p, size_t n);

/* A writer that appends into cap bytes at p. Nothing to free. */
void tg_buf_writer(struct tg_buf *b, uint8_t *p, size_t cap);

/*
 * A heap writer with initial capacity `initial` that grows up to `max`
 * bytes. Returns 0 or TG_ERR_ALLOC / TG_ERR_INVALID_ARG (initial > max).
 * Release with tg_buf_free.
 */
int tg_buf_alloc(struct tg_buf *b, size_t initial, size_t max);

/* Wipes and frees a heap writer's storage; resets any buffer to empty.
 * Accepts NULL and non-heap buffers (which are only reset). */
void tg_buf_free(struct tg_buf *b);

/*
 * Hands a heap writer's storage to the caller: *out gets the bytes (caller
 * frees with free() or tg_freezero), *outlen their count; the buffer is
 * left empty. Returns TG_ERR_INVALID_ARG for non-heap buffers.
 */
int tg_buf_steal(struct tg_buf *b, uint8_t **out, size_t *outlen);

/* Empties a writer (len = off = 0); wipes the previous contents. */
void tg_buf_reset(struct tg_buf *b);

/* ---- inspection ---- */

/* Bytes left to read: len - off. */
size_t tg_buf_remaining(const struct tg_buf *b);

/* Pointer to the next unread byte (valid for tg_buf_remaining bytes; may be
 * NULL when nothing remains). Do not index past tg_buf_remaining. */
const uint8_t *tg_buf_cur(const struct tg_buf *b);

/* Bytes written so far (len) and a pointer to the first of them. */
size_t tg_buf_len(const struct tg_buf *b);
const uint8_t *tg_buf_data(const struct tg_buf *b);

/* Free capacity of a writer (how many bytes a put can still add). For a
 * growable writer, what it can grow to. 0 for readers. */
size_t tg_buf_avail(const struct tg_buf *b);

/* 0 when every byte was consumed, else TG_ERR_TRAILING. */
int tg_buf_expect_end(const struct tg_buf *b);

/* ---- reading ---- */

int tg_buf_get_u8(struct tg_buf *b, uint8_t *v);
int tg_buf_get_u16(struct tg_buf *b, uint16_t *v);
int tg_buf_get_u32(struct tg_buf *b, uint32_t *v);
int tg_buf_peek_u8(const struct tg_buf *b, uint8_t *v); /* does not consume */
/* Copies n bytes into out (out may be NULL when n is 0). */
int tg_buf_get_bytes(struct tg_buf *b, uint8_t *out, size_t n);
int tg_buf_skip(struct tg_buf *b, size_t n);
/*
 * Consumes n bytes and makes *sub a reader over them (no copy; sub borrows
 * b's memory and must not outlive it). TG_ERR_TRUNCATED when fewer remain.
 */
int tg_buf_get_sub(struct tg_buf *b, size_t n, struct tg_buf *sub);

/* ---- writing (TG_ERR_NO_SPACE at capacity; nothing written then) ---- */

int tg_buf_put_u8(struct tg_buf *b, uint8_t v);
int tg_buf_put_u16(struct tg_buf *b, uint16_t v);
int tg_buf_put_u32(struct tg_buf *b, uint32_t v);
int tg_buf_put_bytes(struct tg_buf *b, const uint8_t *p, size_t n);
/* Appends all unread bytes of src (does not consume src). */
int tg_buf_put_buf(struct tg_buf *b, const struct tg_buf *src);

/* ---- BER-TLV ---- */

#define TG_TLV_MAX_LEN 0xFFFFFF /* largest length (form 83) */

/*
 * Reads one BER-TLV: *tag gets the tag bytes as a big-endian number
 * (e.g. 0x5FC105, 0x7F49, 0x53), *value a reader over the value (borrowed
 * from b). Errors: TG_ERR_TRUNCATED (tag/length/value cut short),
 * TG_ERR_FORMAT (tag over 3 bytes, indefinite length 80, length form 84+,
 * non-minimal long form is accepted as ISO 7816 allows). On error b does not
 * move.
 */
int tg_buf_get_tlv(struct tg_buf *b, uint32_t *tag, struct tg_buf *value);

/*
 * Reads one BER-TLV and requires its tag to be `tag`: TG_ERR_FORMAT if
 * another tag comes first.
 */
int tg_buf_get_tlv_tag(struct tg_buf *b, uint32_t tag, struct tg_buf *value);

/*
 * Looks for `tag` among the TLVs from b's read offset to its end, without
 * consuming b. 0 and *value set when found (first match), TG_ERR_NOT_FOUND
 * when the sequence is well formed but lacks it, another error when the
 * sequence is malformed (every TLV is checked up to the match).
 */
int tg_buf_find_tlv(const struct tg_buf *b, uint32_t tag, struct tg_buf *value);

/* Appends tag (1-3 bytes, given as the number tg_buf_get_tlv returns), the
 * minimal length encoding and n value bytes. */
int tg_buf_put_tlv(struct tg_buf *b, uint32_t tag, const uint8_t *v, size_t n);

/* Bytes tg_buf_put_tlv writes for a tag and length (header + value). */
size_t tg_buf_tlv_size(uint32_t tag, size_t n);

/*
 * Nested construction: tg_buf_tlv_begin writes the tag and reserves a
 * length; the value is then written with any put; tg_buf_tlv_end(b, mark)
 * fills in the minimal length (moving the value if needed). `mark` is an
 * opaque position from begin. Nesting works; ends must close in LIFO order.
 */
int tg_buf_tlv_begin(struct tg_buf *b, uint32_t tag, size_t *mark);
int tg_buf_tlv_end(struct tg_buf *b, size_t mark);

/* ---- simple-TLV (ISO/IEC 7816-4 5.2.2.1) ---- */

/* Reads a simple-TLV: tag 01..FE, length 00..FE or FF hi lo. */
int tg_buf_get_stlv(struct tg_buf *b, uint8_t *tag, struct tg_buf *value);
int tg_buf_put_stlv(struct tg_buf *b, uint8_t tag, const uint8_t *v, size_t n);

#endif /* TG_BUF_H */
