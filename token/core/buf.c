/* buf.c — the bounds-checked byte reader/writer (tg_buf.h). */
#include "tg_buf.h"

#include <stdlib.h>
#include <string.h>

#include "tg_err.h"
#include "tg_secret.h"

/* First heap allocation when a growable writer starts empty. */
#define BUF_MIN_ALLOC 64

/* BER-TLV (X.690 8.1.2, 8.1.3; ISO/IEC 7816-4 5.2.2.2). */
#define BER_TAG_MORE        0x1F /* low 5 bits all set: tag continues */
#define BER_TAG_CONT        0x80 /* subsequent tag byte: another follows */
#define BER_TAG_MAX_BYTES   3
#define BER_LEN_LONG        0x80 /* long form flag; alone = indefinite */
#define BER_LEN_SHORT_MAX   0x7F
#define BER_LEN_MAX_BYTES   3    /* forms 81, 82, 83 */
#define BER_LEN_PLACEHOLDER 0x80 /* written by tlv_begin until tlv_end */

/* Simple-TLV (ISO/IEC 7816-4 5.2.2.1). */
#define STLV_TAG_INVALID_LO 0x00
#define STLV_TAG_INVALID_HI 0xFF
#define STLV_LEN_EXT        0xFF /* FF hi lo: 3-byte length */
#define STLV_LEN_SHORT_MAX  0xFE
#define STLV_LEN_MAX        0xFFFF

/* ---- construction ---- */

void
tg_buf_reader(struct tg_buf *b, const uint8_t *p, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->rd = p;
	b->len = p != NULL ? n : 0;
}

void
tg_buf_writer(struct tg_buf *b, uint8_t *p, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->rd = p;
	b->wr = p;
	b->cap = p != NULL ? cap : 0;
	b->max = b->cap;
}

int
tg_buf_alloc(struct tg_buf *b, size_t initial, size_t max)
{
	int r = TG_ERR_INVALID_ARG;

	if (b == NULL)
		goto out;
	memset(b, 0, sizeof(*b));
	if (initial > max)
		goto out;
	if (initial > 0) {
		if ((b->wr = malloc(initial)) == NULL) {
			r = TG_ERR_ALLOC;
			goto out;
		}
	}
	b->rd = b->wr;
	b->cap = initial;
	b->max = max;
	b->flags = TG_BUF_F_HEAP;
	r = 0;
out:
	return r;
}

void
tg_buf_free(struct tg_buf *b)
{
	if (b == NULL)
		return;
	if ((b->flags & TG_BUF_F_HEAP) != 0)
		tg_freezero(b->wr, b->cap);
	memset(b, 0, sizeof(*b));
}

int
tg_buf_steal(struct tg_buf *b, uint8_t **out, size_t *outlen)
{
	int r = TG_ERR_INVALID_ARG;

	if (b == NULL || out == NULL || outlen == NULL || (b->flags & TG_BUF_F_HEAP) == 0)
		goto out;
	/* Wipe the spare capacity: the caller frees only outlen bytes. */
	if (b->wr != NULL && b->cap > b->len)
		tg_wipe(b->wr + b->len, b->cap - b->len);
	*out = b->wr;
	*outlen = b->len;
	memset(b, 0, sizeof(*b));
	r = 0;
out:
	return r;
}

void
tg_buf_reset(struct tg_buf *b)
{
	if (b == NULL)
		return;
	if (b->wr != NULL)
		tg_wipe(b->wr, b->len);
	b->len = 0;
	b->off = 0;
}

/* ---- inspection ---- */

size_t
tg_buf_remaining(const struct tg_buf *b)
{
	return b != NULL ? b->len - b->off : 0;
}

const uint8_t *
tg_buf_cur(const struct tg_buf *b)
{
	if (b == NULL || b->rd == NULL)
		return NULL;
	return b->rd + b->off;
}

size_t
tg_buf_len(const struct tg_buf *b)
{
	return b != NULL ? b->len : 0;
}

const uint8_t *
tg_buf_data(const struct tg_buf *b)
{
	return b != NULL ? b->rd : NULL;
}

size_t
tg_buf_avail(const struct tg_buf *b)
{
	if (b == NULL)
		return 0;
	if ((b->flags & TG_BUF_F_HEAP) != 0)
		return b->max - b->len;
	if (b->wr != NULL)
		return b->cap - b->len;
	return 0;
}

int
tg_buf_expect_end(const struct tg_buf *b)
{
	return tg_buf_remaining(b) == 0 ? 0 : TG_ERR_TRAILING;
}

/* ---- reading ---- */

/* Checks that n bytes can be read; the one place reads are bounded. */
static int
need(const struct tg_buf *b, size_t n)
{
	if (b == NULL)
		return TG_ERR_INVALID_ARG;
	if (n > b->len - b->off)
		return TG_ERR_TRUNCATED;
	return 0;
}

int
tg_buf_peek_u8(const struct tg_buf *b, uint8_t *v)
{
	int r;

	if ((r = need(b, 1)) != 0)
		goto out;
	if (v != NULL)
		*v = b->rd[b->off];
out:
	return r;
}

int
tg_buf_get_u8(struct tg_buf *b, uint8_t *v)
{
	int r;

	if ((r = need(b, 1)) != 0)
		goto out;
	if (v != NULL)
		*v = b->rd[b->off];
	b->off += 1;
out:
	return r;
}

int
tg_buf_get_u16(struct tg_buf *b, uint16_t *v)
{
	const uint8_t *p;
	int r;

	if ((r = need(b, 2)) != 0)
		goto out;
	p = b->rd + b->off;
	if (v != NULL)
		*v = (uint16_t)((unsigned)p[0] << 8 | p[1]);
	b->off += 2;
out:
	return r;
}

int
tg_buf_get_u32(struct tg_buf *b, uint32_t *v)
{
	const uint8_t *p;
	int r;

	if ((r = need(b, 4)) != 0)
		goto out;
	p = b->rd + b->off;
	if (v != NULL)
		*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	b->off += 4;
out:
	return r;
}

int
tg_buf_get_bytes(struct tg_buf *b, uint8_t *out, size_t n)
{
	int r = TG_ERR_INVALID_ARG;

	if (out == NULL && n > 0)
		goto out;
	if ((r = need(b, n)) != 0)
		goto out;
	if (n > 0)
		memcpy(out, b->rd + b->off, n);
	b->off += n;
out:
	return r;
}

int
tg_buf_skip(struct tg_buf *b, size_t n)
{
	int r;

	if ((r = need(b, n)) == 0)
		b->off += n;
	return r;
}

int
tg_buf_get_sub(struct tg_buf *b, size_t n, struct tg_buf *sub)
{
	int r = TG_ERR_INVALID_ARG;

	if (sub == NULL)
		goto out;
	if ((r = need(b, n)) != 0)
		goto out;
	tg_buf_reader(sub, n > 0 ? b->rd + b->off : NULL, n);
	b->off += n;
out:
	return r;
}

/* ---- writing ---- */

/*
 * Makes room for n more bytes, growing a heap writer up to its cap. The new
 * storage is allocated and the old one wiped and freed (no realloc, which
 * would leave a copy of the contents behind).
 */
static int
reserve(struct tg_buf *b, size_t n)
{
	uint8_t *p;
	size_t ncap;
	int r = TG_ERR_INVALID_ARG;

	if (b == NULL)
		goto out;
	r = 0;
	if (n == 0 || (b->wr != NULL && n <= b->cap - b->len))
		goto out;
	/* Readers (wr NULL) have no capacity: avail is 0 for them. */
	r = TG_ERR_NO_SPACE;
	if ((b->flags & TG_BUF_F_HEAP) == 0 || n > b->max - b->len)
		goto out;
	ncap = b->cap < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->cap;
	while (ncap < b->len + n && ncap <= b->max / 2)
		ncap *= 2;
	if (ncap < b->len + n || ncap > b->max)
		ncap = b->max;
	if ((p = malloc(ncap)) == NULL) {
		r = TG_ERR_ALLOC;
		goto out;
	}
	if (b->len > 0)
		memcpy(p, b->wr, b->len);
	tg_freezero(b->wr, b->cap);
	b->wr = p;
	b->rd = p;
	b->cap = ncap;
	r = 0;
out:
	return r;
}

int
tg_buf_put_bytes(struct tg_buf *b, const uint8_t *p, size_t n)
{
	int r = TG_ERR_INVALID_ARG;

	if (p == NULL && n > 0)
		goto out;
	if ((r = reserve(b, n)) != 0)
		goto out;
	if (n > 0)
		memmove(b->wr + b->len, p, n);
	b->len += n;
out:
	return r;
}

int
tg_buf_put_u8(struct tg_buf *b, uint8_t v)
{
	return tg_buf_put_bytes(b, &v, 1);
}

int
tg_buf_put_u16(struct tg_buf *b, uint16_t v)
{
	uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return tg_buf_put_bytes(b, p, sizeof(p));
}

int
tg_buf_put_u32(struct tg_buf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return tg_buf_put_bytes(b, p, sizeof(p));
}

int
tg_buf_put_buf(struct tg_buf *b, const struct tg_buf *src)
{
	size_t n, soff;
	int r = TG_ERR_INVALID_ARG;

	if (src == NULL)
		goto out;
	n = tg_buf_remaining(src);
	soff = src->off;
	/* src may be b itself: reserve first, then read src's (new) storage. */
	if ((r = reserve(b, n)) != 0)
		goto out;
	if (n > 0)
		memmove(b->wr + b->len, src->rd + soff, n);
	b->len += n;
out:
	return r;
}

/* ---- BER-TLV ---- */

/* Encodes tag into out (BER_TAG_MAX_BYTES); returns the byte count, or 0
 * when tag is not a well-formed 1-3 byte BER tag. */
static size_t
tag_encode(uint32_t tag, uint8_t out[BER_TAG_MAX_BYTES])
{
	size_t n = 0;

	if (tag <= 0xFF) {
		out[0] = (uint8_t)tag;
		if ((out[0] & BER_TAG_MORE) != BER_TAG_MORE)
			n = 1;
	} else if (tag <= 0xFFFF) {
		out[0] = (uint8_t)(tag >> 8);
		out[1] = (uint8_t)tag;
		if ((out[0] & BER_TAG_MORE) == BER_TAG_MORE && (out[1] & BER_TAG_CONT) == 0)
			n = 2;
	} else if (tag <= 0xFFFFFF) {
		out[0] = (uint8_t)(tag >> 16);
		out[1] = (uint8_t)(tag >> 8);
		out[2] = (uint8_t)tag;
		if ((out[0] & BER_TAG_MORE) == BER_TAG_MORE && (out[1] & BER_TAG_CONT) != 0 &&
		    (out[2] & BER_TAG_CONT) == 0)
			n = 3;
	}
	return n;
}

/* Bytes of the minimal BER length encoding of n (n <= TG_TLV_MAX_LEN). */
static size_t
len_size(size_t n)
{
	if (n <= BER_LEN_SHORT_MAX)
		return 1;
	if (n <= 0xFF)
		return 2;
	if (n <= 0xFFFF)
		return 3;
	return 4;
}

/* Writes the minimal length encoding of n into out (len_size(n) bytes). */
static void
len_encode(size_t n, uint8_t *out)
{
	size_t k = len_size(n), i;

	if (k == 1) {
		out[0] = (uint8_t)n;
		return;
	}
	out[0] = (uint8_t)(BER_LEN_LONG | (k - 1));
	for (i = 1; i < k; i++)
		out[i] = (uint8_t)(n >> (8 * (k - 1 - i)));
}

/* Reads a tag and a length from r (a copy the caller discards on error). */
static int
tlv_header(struct tg_buf *r, uint32_t *tag, size_t *len)
{
	uint8_t c, nlen;
	size_t i, n;
	uint32_t t;
	int rc;

	if ((rc = tg_buf_get_u8(r, &c)) != 0)
		goto out;
	t = c;
	if ((c & BER_TAG_MORE) == BER_TAG_MORE) {
		i = 1;
		do {
			if (i == BER_TAG_MAX_BYTES) {
				rc = TG_ERR_FORMAT;
				goto out;
			}
			if ((rc = tg_buf_get_u8(r, &c)) != 0)
				goto out;
			t = t << 8 | c;
			i++;
		} while ((c & BER_TAG_CONT) != 0);
	}
	if ((rc = tg_buf_get_u8(r, &c)) != 0)
		goto out;
	if ((c & BER_LEN_LONG) == 0) {
		n = c;
	} else {
		/* 80 is the indefinite form, which PIV never uses (X.690 8.1.3.6). */
		nlen = c & (uint8_t)~BER_LEN_LONG;
		if (nlen == 0 || nlen > BER_LEN_MAX_BYTES) {
			rc = TG_ERR_FORMAT;
			goto out;
		}
		for (n = 0, i = 0; i < nlen; i++) {
			if ((rc = tg_buf_get_u8(r, &c)) != 0)
				goto out;
			n = n << 8 | c;
		}
	}
	*tag = t;
	*len = n;
	rc = 0;
out:
	return rc;
}

int
tg_buf_get_tlv(struct tg_buf *b, uint32_t *tag, struct tg_buf *value)
{
	struct tg_buf r;
	uint32_t t = 0;
	size_t n = 0;
	int rc = TG_ERR_INVALID_ARG;

	if (b == NULL || value == NULL)
		goto out;
	r = *b;
	if ((rc = tlv_header(&r, &t, &n)) != 0)
		goto out;
	if ((rc = tg_buf_get_sub(&r, n, value)) != 0)
		goto out;
	if (tag != NULL)
		*tag = t;
	b->off = r.off;
out:
	return rc;
}

int
tg_buf_get_tlv_tag(struct tg_buf *b, uint32_t tag, struct tg_buf *value)
{
	struct tg_buf r, v;
	uint32_t t;
	int rc = TG_ERR_INVALID_ARG;

	if (b == NULL || value == NULL)
		goto out;
	r = *b;
	if ((rc = tg_buf_get_tlv(&r, &t, &v)) != 0)
		goto out;
	if (t != tag) {
		rc = TG_ERR_FORMAT;
		goto out;
	}
	*value = v;
	b->off = r.off;
out:
	return rc;
}

int
tg_buf_find_tlv(const struct tg_buf *b, uint32_t tag, struct tg_buf *value)
{
	struct tg_buf r, v;
	uint32_t t;
	int rc = TG_ERR_INVALID_ARG;

	if (b == NULL || value == NULL)
		goto out;
	r = *b;
	rc = TG_ERR_NOT_FOUND;
	while (tg_buf_remaining(&r) > 0) {
		if ((rc = tg_buf_get_tlv(&r, &t, &v)) != 0)
			goto out;
		if (t == tag) {
			*value = v;
			goto out;
		}
		rc = TG_ERR_NOT_FOUND;
	}
out:
	return rc;
}

size_t
tg_buf_tlv_size(uint32_t tag, size_t n)
{
	uint8_t tb[BER_TAG_MAX_BYTES];
	size_t k;

	if ((k = tag_encode(tag, tb)) == 0 || n > TG_TLV_MAX_LEN)
		return 0;
	return k + len_size(n) + n;
}

int
tg_buf_put_tlv(struct tg_buf *b, uint32_t tag, const uint8_t *v, size_t n)
{
	uint8_t hdr[BER_TAG_MAX_BYTES + 1 + BER_LEN_MAX_BYTES];
	size_t k;
	int r = TG_ERR_INVALID_ARG;

	if ((v == NULL && n > 0) || n > TG_TLV_MAX_LEN)
		goto out;
	if ((k = tag_encode(tag, hdr)) == 0)
		goto out;
	len_encode(n, hdr + k);
	k += len_size(n);
	/* Reserve header and value together so a failure writes nothing. */
	if ((r = reserve(b, k + n)) != 0)
		goto out;
	memcpy(b->wr + b->len, hdr, k);
	if (n > 0)
		memmove(b->wr + b->len + k, v, n);
	b->len += k + n;
out:
	return r;
}

int
tg_buf_tlv_begin(struct tg_buf *b, uint32_t tag, size_t *mark)
{
	uint8_t hdr[BER_TAG_MAX_BYTES + 1];
	size_t k;
	int r = TG_ERR_INVALID_ARG;

	if (mark == NULL || (k = tag_encode(tag, hdr)) == 0)
		goto out;
	/* An unclosed TLV keeps this indefinite-length byte, which every
	 * reader rejects, so a missing tlv_end cannot go unnoticed. */
	hdr[k++] = BER_LEN_PLACEHOLDER;
	if ((r = tg_buf_put_bytes(b, hdr, k)) != 0)
		goto out;
	*mark = b->len - 1;
out:
	return r;
}

int
tg_buf_tlv_end(struct tg_buf *b, size_t mark)
{
	size_t n, k;
	int r = TG_ERR_INVALID_ARG;

	if (b == NULL || b->wr == NULL || mark >= b->len || b->wr[mark] != BER_LEN_PLACEHOLDER)
		goto out;
	n = b->len - mark - 1;
	if (n > TG_TLV_MAX_LEN)
		goto out;
	k = len_size(n);
	if ((r = reserve(b, k - 1)) != 0)
		goto out;
	if (k > 1)
		memmove(b->wr + mark + k, b->wr + mark + 1, n);
	len_encode(n, b->wr + mark);
	b->len += k - 1;
out:
	return r;
}

/* ---- simple-TLV ---- */

int
tg_buf_get_stlv(struct tg_buf *b, uint8_t *tag, struct tg_buf *value)
{
	struct tg_buf r;
	uint8_t t, c;
	uint16_t n16;
	size_t n;
	int rc = TG_ERR_INVALID_ARG;

	if (b == NULL || value == NULL)
		goto out;
	r = *b;
	if ((rc = tg_buf_get_u8(&r, &t)) != 0)
		goto out;
	if (t == STLV_TAG_INVALID_LO || t == STLV_TAG_INVALID_HI) {
		rc = TG_ERR_FORMAT;
		goto out;
	}
	if ((rc = tg_buf_get_u8(&r, &c)) != 0)
		goto out;
	n = c;
	if (c == STLV_LEN_EXT) {
		if ((rc = tg_buf_get_u16(&r, &n16)) != 0)
			goto out;
		n = n16;
	}
	if ((rc = tg_buf_get_sub(&r, n, value)) != 0)
		goto out;
	if (tag != NULL)
		*tag = t;
	b->off = r.off;
out:
	return rc;
}

int
tg_buf_put_stlv(struct tg_buf *b, uint8_t tag, const uint8_t *v, size_t n)
{
	uint8_t hdr[4];
	size_t k = 0;
	int r = TG_ERR_INVALID_ARG;

	if ((v == NULL && n > 0) || n > STLV_LEN_MAX || tag == STLV_TAG_INVALID_LO ||
	    tag == STLV_TAG_INVALID_HI)
		goto out;
	hdr[k++] = tag;
	if (n <= STLV_LEN_SHORT_MAX) {
		hdr[k++] = (uint8_t)n;
	} else {
		hdr[k++] = STLV_LEN_EXT;
		hdr[k++] = (uint8_t)(n >> 8);
		hdr[k++] = (uint8_t)n;
	}
	if ((r = reserve(b, k + n)) != 0)
		goto out;
	memcpy(b->wr + b->len, hdr, k);
	if (n > 0)
		memmove(b->wr + b->len + k, v, n);
	b->len += k + n;
out:
	return r;
}
