/*
 * fuzz_tlv.c — fuzz target for tg_buf's TLV readers (BER-TLV and
 * simple-TLV) and writers.
 *
 * For every input it:
 *   - walks the BER-TLV sequence, recursing into constructed values (tag
 *     bit 6 set) whose content is itself a well-formed sequence, and checks
 *     that every getter is all-or-nothing, every value lies inside the
 *     input, and tg_buf_find_tlv finds each TLV where the walk found it;
 *   - re-encodes what it parsed (tg_buf_tlv_begin/end for constructed
 *     values, tg_buf_put_tlv otherwise) and checks the round trip: the
 *     re-encoding parses, is no longer than the input, and re-encodes to
 *     itself byte for byte (the encoder's lengths are minimal);
 *   - does the same for a simple-TLV sequence.
 * A broken property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_fuzz.h"

#define MAX_DEPTH  16
#define BER_CONSTR 0x20 /* X.690 8.1.2.5: constructed encoding */
#define OUT_MAX    (1u << 24)
#define ABSENT_TAG 0xFFFFFFFF /* no 1-3 byte tag has this value */

/* The input's bounds, to check that values point inside it. */
struct span {
	const uint8_t *p;
	size_t n;
};

static void
check_inside(const struct span *in, const struct tg_buf *v)
{
	const uint8_t *c = tg_buf_cur(v);
	size_t n = tg_buf_remaining(v);

	if (n == 0)
		return;
	check(c != NULL);
	check((uintptr_t)c >= (uintptr_t)in->p);
	check((uintptr_t)c - (uintptr_t)in->p <= in->n);
	check(n <= in->n - ((uintptr_t)c - (uintptr_t)in->p));
}

static int
constructed(uint32_t tag)
{
	uint32_t first = tag > 0xFFFF ? tag >> 16 : tag > 0xFF ? tag >> 8 : tag;

	return (first & BER_CONSTR) != 0;
}

/* 0 when all of b is a sequence of well-formed TLVs, else the error. */
static int
seq_check(const struct tg_buf *b)
{
	struct tg_buf r = *b, v;
	uint32_t tag;
	int rc = 0;

	while (rc == 0 && tg_buf_remaining(&r) > 0)
		rc = tg_buf_get_tlv(&r, &tag, &v);
	return rc;
}

/*
 * Walks the TLV sequence in `in` up to its first malformed TLV and
 * re-encodes it into out. Returns 0 when the whole sequence was well
 * formed, else the error that stopped the walk.
 */
static int
walk(const struct span *sp, struct tg_buf *in, struct tg_buf *out, int depth)
{
	struct tg_buf at, v, f;
	uint32_t tag;
	size_t before, mark;
	int rc = 0;

	while (tg_buf_remaining(in) > 0) {
		at = *in;
		before = tg_buf_remaining(in);
		if ((rc = tg_buf_get_tlv(in, &tag, &v)) != 0) {
			check(rc == TG_ERR_TRUNCATED || rc == TG_ERR_FORMAT);
			check(tg_buf_remaining(in) == before); /* all-or-nothing */
			/* find_tlv reports the same malformation */
			check(tg_buf_find_tlv(&at, ABSENT_TAG, &f) == rc);
			break;
		}
		check(tg_buf_remaining(in) < before);
		check_inside(sp, &v);
		/* from this TLV on, the first match is this TLV */
		check(tg_buf_find_tlv(&at, tag, &f) == 0);
		check(tg_buf_remaining(&f) == tg_buf_remaining(&v));
		check(tg_buf_remaining(&f) == 0 || tg_buf_cur(&f) == tg_buf_cur(&v));
		check(tg_buf_get_tlv_tag(&at, tag ^ 1, &f) == TG_ERR_FORMAT);
		check(tg_buf_remaining(&at) == before);
		check(tg_buf_get_tlv_tag(&at, tag, &f) == 0);
		check(tg_buf_remaining(&at) == tg_buf_remaining(in));

		if (constructed(tag) && depth < MAX_DEPTH && seq_check(&v) == 0) {
			check(tg_buf_tlv_begin(out, tag, &mark) == 0);
			check(walk(sp, &v, out, depth + 1) == 0);
			check(tg_buf_tlv_end(out, mark) == 0);
		} else {
			check(tg_buf_put_tlv(out, tag, tg_buf_cur(&v), tg_buf_remaining(&v)) == 0);
		}
	}
	return rc;
}

/* BER-TLV: walk, re-encode, and check the round trip. */
static void
fuzz_ber(const uint8_t *data, size_t size)
{
	struct tg_buf in, out1, out2, r;
	struct span sp = {data, size}, sp1;
	int rc;

	tg_buf_reader(&in, data, size);
	rc = seq_check(&in);
	check(tg_buf_alloc(&out1, 0, OUT_MAX) == 0);
	check(tg_buf_alloc(&out2, 0, OUT_MAX) == 0);
	check(walk(&sp, &in, &out1, 0) == rc);
	/* a tag that is nowhere: not found in a well-formed sequence, else
	 * the malformation is reported */
	tg_buf_reader(&in, data, size);
	check(tg_buf_find_tlv(&in, ABSENT_TAG, &r) == (rc == 0 ? TG_ERR_NOT_FOUND : rc));
	check(tg_buf_len(&out1) <= size);

	/* the re-encoding is well formed and a fixed point */
	tg_buf_reader(&r, tg_buf_data(&out1), tg_buf_len(&out1));
	sp1.p = tg_buf_data(&out1);
	sp1.n = tg_buf_len(&out1);
	check(walk(&sp1, &r, &out2, 0) == 0);
	check(tg_buf_len(&out2) == tg_buf_len(&out1));
	check(tg_buf_len(&out1) == 0 ||
	      memcmp(tg_buf_data(&out1), tg_buf_data(&out2), tg_buf_len(&out1)) == 0);
	tg_buf_free(&out1);
	tg_buf_free(&out2);
}

/* Simple-TLV: walk, re-encode, and check the round trip. */
static void
fuzz_stlv(const uint8_t *data, size_t size)
{
	struct tg_buf in, out, r, v, v2;
	struct span sp = {data, size};
	size_t before;
	uint8_t tag, tag2;
	int rc;

	tg_buf_reader(&in, data, size);
	check(tg_buf_alloc(&out, 0, OUT_MAX) == 0);
	while (tg_buf_remaining(&in) > 0) {
		before = tg_buf_remaining(&in);
		if ((rc = tg_buf_get_stlv(&in, &tag, &v)) != 0) {
			check(rc == TG_ERR_TRUNCATED || rc == TG_ERR_FORMAT);
			check(tg_buf_remaining(&in) == before);
			break;
		}
		check(tag != 0x00 && tag != 0xFF);
		check_inside(&sp, &v);
		check(tg_buf_put_stlv(&out, tag, tg_buf_cur(&v), tg_buf_remaining(&v)) == 0);
	}
	check(tg_buf_len(&out) <= size);
	/* every re-encoded TLV parses back to the same tag and value */
	tg_buf_reader(&in, data, size);
	tg_buf_reader(&r, tg_buf_data(&out), tg_buf_len(&out));
	while (tg_buf_remaining(&r) > 0) {
		check(tg_buf_get_stlv(&r, &tag2, &v2) == 0);
		check(tg_buf_get_stlv(&in, &tag, &v) == 0);
		check(tag == tag2);
		check(tg_buf_remaining(&v) == tg_buf_remaining(&v2));
		check(tg_buf_remaining(&v) == 0 ||
		      memcmp(tg_buf_cur(&v), tg_buf_cur(&v2), tg_buf_remaining(&v)) == 0);
	}
	tg_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_ber(data, size);
	fuzz_stlv(data, size);
	return 0;
}
