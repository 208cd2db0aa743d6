/* test_tok_state.c — persistent state (token/state.c): round trip, and
 * every corruption rejected (byte flips, truncations, bad version,
 * well-checksummed but invalid contents: every body truncation, key and
 * object table entries, sizes), and a state without F9 material loading
 * but attesting nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/sha.h>

#include "test_tok_util.h"
#include "tg_test.h"
#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

/* Copies blob into an exact-size heap buffer and loads it. */
static int
load_copy(const uint8_t *blob, size_t n, struct tg_tok **t)
{
	uint8_t *c = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(c);
	if (n > 0)
		memcpy(c, blob, n);
	r = tg_tok_load(n > 0 ? c : NULL, n, NULL, t);
	free(c);
	return r;
}

static void
rechecksum(uint8_t *blob, size_t n)
{
	SHA256(blob, n - 32, blob + n - 32);
}

static void
test_round_trip(void **state)
{
	struct tt_host h, h2;
	struct tg_tok *t = tt_token_new(*state, &h), *t2 = NULL;
	struct tg_tok_host host2 = tt_host_make(&h2);
	struct tg_tok_info i1, i2;
	uint8_t *b1 = NULL, *b2 = NULL, hash[32], sig[200];
	size_t n1 = 0, n2 = 0, siglen, k;
	EVP_PKEY *pa, *pr;
	EVP_PKEY_CTX *c;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	pa = tt_generate(t, 0x9A, 0x11, 2, 3);
	pr = tt_generate(t, 0x82, 0x06, 0, 0);
	EVP_PKEY_free(tt_generate(t, 0x9C, 0x14, 0, 0));
	assert_int_equal(tt_hex(t, "00DB3FFF 0A 5C035FC105 5303 700100", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_verify(t, "123456"), 0x9000);
	memset(hash, 3, sizeof(hash));
	assert_int_equal(tt_sign(t, 0x11, 0x9A, hash, 32, sig, &siglen), 0x9000);
	assert_int_equal(tt_verify(t, "999999"), 0x63C2);
	assert_int_equal(
	    tt_hex(t, "00FFFFFF 13 089B10 0102030405060708090A0B0C0D0E0F10", NULL, 0, NULL),
	    0x9000);
	assert_int_equal(tg_tok_save(t, &b1, &n1), 0);
	/* the last persisted blob is the state */
	assert_int_equal(h.last_len, n1);
	assert_memory_equal(h.last_blob, b1, n1);
	assert_int_equal(load_copy(b1, n1, &t2), 0);
	assert_int_equal(tg_tok_save(t2, &b2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	tg_tok_info_get(t, &i1);
	tg_tok_info_get(t2, &i2);
	assert_int_equal(i1.serial, i2.serial);
	assert_int_equal(i1.nslots, i2.nslots);
	assert_int_equal(i2.pin_tries_left, 2);
	assert_int_equal(i2.private_key_operations, 1);
	assert_int_equal(i2.mgm_key_alg, 0x08);
	for (k = 0; k < i1.nslots; k++) {
		assert_int_equal(i1.slots[k].slot, i2.slots[k].slot);
		assert_int_equal(i1.slots[k].algorithm, i2.slots[k].algorithm);
		assert_int_equal(i1.slots[k].pin_policy, i2.slots[k].pin_policy);
		assert_int_equal(i1.slots[k].touch_policy, i2.slots[k].touch_policy);
		assert_int_equal(i1.slots[k].cert_len, i2.slots[k].cert_len);
	}
	tg_tok_free(t2);
	/* volatile state is not in the blob; the keys are */
	assert_int_equal(tg_tok_load(b1, n1, &host2, &t2), 0);
	tt_select(t2);
	assert_int_equal(tt_hex(t2, "00200080", NULL, 0, NULL), 0x63C2);
	assert_int_equal(tt_hex(t2, "00DB3FFF 08 5C035FC10C 5301AA", NULL, 0, NULL), 0x6982);
	assert_int_equal(tt_verify(t2, "123456"), 0x9000);
	assert_int_equal(tt_sign(t2, 0x11, 0x9A, hash, 32, sig, &siglen), 0x9000);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, pa, NULL);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_int_equal(EVP_PKEY_verify(c, sig, siglen, hash, 32), 1);
	EVP_PKEY_CTX_free(c);
	assert_int_equal(h2.last_ops, 2);
	tg_tok_free(t2);
	tg_freezero(b1, n1);
	tg_freezero(b2, n2);
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pr);
	tg_tok_free(t);
	tt_host_free(&h);
	tt_host_free(&h2);
}

static void
test_corruption(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h), *t2 = NULL;
	uint8_t *b = NULL;
	size_t n = 0, i;
	int r;

	assert_int_equal(tg_tok_save(t, &b, &n), 0);
	assert_true(n > 100);
	/* every byte flipped, two ways */
	for (i = 0; i < n; i++) {
		b[i] ^= 0x01;
		r = load_copy(b, n, &t2);
		if (r == 0)
			fail_msg("flip 01 at %zu accepted", i);
		b[i] ^= 0x01 ^ 0xFF;
		r = load_copy(b, n, &t2);
		if (r == 0)
			fail_msg("flip FF at %zu accepted", i);
		b[i] ^= 0xFF;
	}
	/* every truncation */
	for (i = 0; i < n; i++)
		if (load_copy(b, i, &t2) == 0)
			fail_msg("truncation to %zu accepted", i);
	assert_null(t2);
	assert_int_equal(load_copy(b, n, &t2), 0);
	tg_tok_free(t2);
	tg_freezero(b, n);
	tg_tok_free(t);
	tt_host_free(&h);
}

static void
test_invalid_contents(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h), *t2 = NULL;
	uint8_t *b = NULL, *c;
	size_t n = 0;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x11, 0, 0));
	assert_int_equal(tg_tok_save(t, &b, &n), 0);
	c = malloc(n + 1);
	assert_non_null(c);

	/* magic, version, checksum */
	memcpy(c, b, n);
	c[0] = 'X';
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[5] = 2;
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_VERSION);
	memcpy(c, b, n);
	c[n - 1] ^= 0x80;
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_CHECKSUM);
	/* layout: 6 header, serial 4, version 3, form 1, PIN 8 @14,
	 * tries @22, max @23, PUK 8 @24, tries @32, max @33, mgm alg @34 */
	memcpy(c, b, n);
	c[22] = 4; /* tries above max */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[23] = 0; /* max 0 */
	c[22] = 0;
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[34] = 0x08; /* AES-128 with a 24-byte key */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	/* mgm len @35, key @36..59, touch @60, ops @61..68, nkeys @69,
	 * first key: slot @70, alg @71, origin @72, pin @73, touch @74 */
	memcpy(c, b, n);
	c[60] = 2; /* touch flag */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[70] = 0x99; /* unknown slot */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[71] = 0x14; /* P-384 id for a P-256 key */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[72] = 0; /* origin none */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[73] = 4; /* PIN policy */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	memcpy(c, b, n);
	c[69] = 9; /* more keys than there are */
	rechecksum(c, n);
	assert_int_equal(load_copy(c, n, &t2), TG_ERR_FORMAT);
	/* a byte of garbage before the checksum */
	memcpy(c, b, n - 32);
	c[n - 32] = 0;
	rechecksum(c, n + 1);
	assert_int_equal(load_copy(c, n + 1, &t2), TG_ERR_FORMAT);
	assert_null(t2);
	/* arguments */
	assert_int_equal(tg_tok_load(NULL, 10, NULL, &t2), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_load(b, n, NULL, NULL), TG_ERR_INVALID_ARG);
	assert_int_equal(tg_tok_save(NULL, &c, &n), TG_ERR_INVALID_ARG);
	free(c);
	tg_freezero(b, n);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* tok_dup (the fuzz target's fixture copy) keeps the persistent state and
 * drops the volatile one. */
static void
test_dup(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h), *d;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t n1 = 0, n2 = 0;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x11, 0, 0));
	assert_int_equal(tt_verify(t, "123456"), 0x9000);
	d = tok_dup(t, NULL);
	assert_non_null(d);
	assert_int_equal(tg_tok_save(t, &b1, &n1), 0);
	assert_int_equal(tg_tok_save(d, &b2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	/* the copy starts unselected and unauthenticated */
	assert_int_equal(tt_hex(d, "00FD0000", NULL, 0, NULL), 0x6D00);
	tt_select(d);
	assert_int_equal(tt_hex(d, "00200080", NULL, 0, NULL), 0x63C3);
	/* the original lives on after the copy is freed (shared keys) */
	tg_tok_free(d);
	{
		uint8_t hsh[32], sig[100];
		size_t sl;

		memset(hsh, 1, sizeof(hsh));
		assert_int_equal(tt_sign(t, 0x11, 0x9A, hsh, 32, sig, &sl), 0x9000);
	}
	tg_freezero(b1, n1);
	tg_freezero(b2, n2);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* A failed save is TG_ERR_PERSIST (it was -1, which is TG_ERR_INTERNAL). */
static void
test_persist_code(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h);

	assert_int_equal(tok_persist(t), 0);
	h.persist_fail = 1;
	assert_int_equal(tok_persist(t), TG_ERR_PERSIST);
	h.persist_fail = 0;
	tg_tok_free(t);
	tt_host_free(&h);
}

/*
 * A state blob taken apart for editing: its 6-byte header, its body as a
 * growable byte array, and the offsets of the key and object tables.
 */
struct ed {
	uint8_t hdr[6];
	uint8_t *body;
	size_t len;
	size_t nkeys_off; /* offset of u8 nkeys in body */
	size_t key0_off;  /* first key entry */
	size_t nobjs_off; /* offset of u8 nobjs */
	size_t obj0_off;  /* first object entry */
};

static size_t
be16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

/* Splits a saved blob (layout in token/state.c); body offset 63 is nkeys
 * with a 24-byte management key. */
static void
ed_open(struct ed *e, const uint8_t *blob, size_t n)
{
	size_t off, i;

	memcpy(e->hdr, blob, 6);
	e->len = n - 6 - 32;
	e->body = tg_test_memdup(blob + 6, e->len);
	e->nkeys_off = 63;
	e->key0_off = 64;
	off = e->key0_off;
	for (i = 0; i < e->body[e->nkeys_off]; i++)
		off += 7 + be16(e->body + off + 5);
	e->nobjs_off = off;
	e->obj0_off = off + 1;
	assert_true(e->obj0_off < e->len);
}

/* Replaces del bytes at off with the add bytes at p. */
static void
ed_splice(struct ed *e, size_t off, size_t del, const uint8_t *p, size_t add)
{
	uint8_t *nb = malloc(e->len - del + add + 1);

	assert_non_null(nb);
	memcpy(nb, e->body, off);
	if (add > 0)
		memcpy(nb + off, p, add);
	memcpy(nb + off + add, e->body + off + del, e->len - off - del);
	free(e->body);
	e->body = nb;
	e->len = e->len - del + add;
}

/* Loads header + body + a fresh checksum. */
static int
ed_load(const struct ed *e, size_t bodylen, struct tg_tok **t)
{
	size_t n = 6 + bodylen + 32;
	uint8_t *c = malloc(n);
	int r;

	assert_non_null(c);
	memcpy(c, e->hdr, 6);
	memcpy(c + 6, e->body, bodylen);
	rechecksum(c, n);
	r = load_copy(c, n, t);
	free(c);
	return r;
}

/* A body edited one way must be refused as TG_ERR_FORMAT, loading nothing. */
static void
ed_refused(const struct ed *e, const char *what)
{
	struct tg_tok *t2 = NULL;
	int r = ed_load(e, e->len, &t2);

	if (r != TG_ERR_FORMAT)
		fail_msg("%s: load returned %d, not TG_ERR_FORMAT", what, r);
	assert_null(t2);
}

static void
ed_close(struct ed *e)
{
	tg_freezero(e->body, e->len);
}

/* A token with a generated 9A key (besides F9) and its saved state. */
static struct tg_tok *
state_token(void **state, struct tt_host *h, struct ed *e)
{
	struct tg_tok *t = tt_token_new(*state, h);
	uint8_t *b = NULL;
	size_t n = 0;

	tt_select(t);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x11, 0, 0));
	assert_int_equal(tg_tok_save(t, &b, &n), 0);
	ed_open(e, b, n);
	assert_int_equal(e->body[e->nkeys_off], 2);
	/* the original body loads */
	{
		struct tg_tok *t2 = NULL;

		assert_int_equal(ed_load(e, e->len, &t2), 0);
		tg_tok_free(t2);
	}
	tg_freezero(b, n);
	return t;
}

/* Every truncation of a well-checksummed body is a format error: each
 * field of the header, the key table and the object table is checked for
 * running out. */
static void
test_body_truncations(void **state)
{
	struct tt_host h;
	struct ed e;
	struct tg_tok *t = state_token(state, &h, &e), *t2 = NULL;
	size_t l;
	int r;

	for (l = 0; l < e.len; l++) {
		r = ed_load(&e, l, &t2);
		if (r != TG_ERR_FORMAT)
			fail_msg("body cut to %zu of %zu bytes: %d, not TG_ERR_FORMAT", l, e.len,
			         r);
	}
	assert_null(t2);
	ed_close(&e);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* Header fields: PUK counters. */
static void
test_body_puk(void **state)
{
	struct tt_host h;
	struct ed e;
	struct tg_tok *t = state_token(state, &h, &e);

	/* body: serial 4, version 3, form 1, PIN 8, tries @16, max @17,
	 * PUK 8, tries @26, max @27 */
	e.body[26] = 4;
	ed_refused(&e, "PUK tries above max");
	e.body[26] = 0;
	e.body[27] = 0;
	ed_refused(&e, "PUK max 0");
	e.body[26] = 3;
	e.body[27] = 3;
	ed_close(&e);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* Key entries: duplicate slot, empty or padded DER, bad policies; an
 * imported origin is valid. */
static void
test_body_keys(void **state)
{
	struct tt_host h;
	struct ed e;
	struct tg_tok *t = state_token(state, &h, &e), *t2 = NULL;
	struct tg_tok_info info;
	size_t k0 = e.key0_off, klen = 7 + be16(e.body + k0 + 5), i;
	uint8_t *entry = tg_test_memdup(e.body + k0, klen), zero = 0;
	int found = 0;

	/* policies: PIN 0, touch 0, touch 4 */
	e.body[k0 + 3] = 0;
	ed_refused(&e, "PIN policy 0");
	e.body[k0 + 3] = entry[3];
	e.body[k0 + 4] = 0;
	ed_refused(&e, "touch policy 0");
	e.body[k0 + 4] = 4;
	ed_refused(&e, "touch policy 4");
	e.body[k0 + 4] = entry[4];
	/* imported origin: loads, and shows as imported */
	e.body[k0 + 2] = TG_PIV_ORIGIN_IMPORTED;
	assert_int_equal(ed_load(&e, e.len, &t2), 0);
	tg_tok_info_get(t2, &info);
	for (i = 0; i < info.nslots; i++)
		if (info.slots[i].slot == entry[0]) {
			found = 1;
			assert_int_equal(info.slots[i].origin, TG_PIV_ORIGIN_IMPORTED);
		}
	assert_true(found);
	tg_tok_free(t2);
	t2 = NULL;
	e.body[k0 + 2] = entry[2];

	/* the same slot twice */
	ed_splice(&e, k0, 0, entry, klen);
	e.body[e.nkeys_off]++;
	ed_refused(&e, "duplicate key slot");
	e.body[e.nkeys_off]--;
	ed_splice(&e, k0, klen, NULL, 0);

	/* DER with a byte after it (length counts it) */
	ed_splice(&e, k0 + klen, 0, &zero, 1);
	e.body[k0 + 5] = (uint8_t)((klen - 7 + 1) >> 8);
	e.body[k0 + 6] = (uint8_t)(klen - 7 + 1);
	ed_refused(&e, "trailing byte after the key DER");
	ed_splice(&e, k0 + klen, 1, NULL, 0);
	e.body[k0 + 5] = entry[5];
	e.body[k0 + 6] = entry[6];

	/* no DER at all */
	ed_splice(&e, k0 + 7, klen - 7, NULL, 0);
	e.body[k0 + 5] = 0;
	e.body[k0 + 6] = 0;
	ed_refused(&e, "empty key DER");

	free(entry);
	ed_close(&e);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* Appends an object entry {tag, n bytes of fill} to the object table. */
static void
ed_add_obj(struct ed *e, uint32_t tag, size_t n, uint8_t fill)
{
	uint8_t *o = malloc(6 + n);

	assert_non_null(o);
	o[0] = (uint8_t)(tag >> 24);
	o[1] = (uint8_t)(tag >> 16);
	o[2] = (uint8_t)(tag >> 8);
	o[3] = (uint8_t)tag;
	o[4] = (uint8_t)(n >> 8);
	o[5] = (uint8_t)n;
	memset(o + 6, fill, n);
	ed_splice(e, e->obj0_off, 0, o, 6 + n);
	e->body[e->nobjs_off]++;
	free(o);
}

/* Object entries: tag outside the data object range, a tag twice, empty,
 * over the object size, over the count and over the total capacity; the
 * largest object loads. */
static void
test_body_objects(void **state)
{
	struct tt_host h;
	struct ed e, e0;
	struct tg_tok *t = state_token(state, &h, &e), *t2 = NULL;
	size_t o0 = e.obj0_off, olen = 6 + be16(e.body + o0 + 4), base = e.body[e.nobjs_off], i;
	uint8_t *entry = tg_test_memdup(e.body + o0, olen);
	struct tok_obj *o;

	assert_true(base >= 3); /* CHUID, CCC, F9 certificate */
	/* tag not a data object */
	e.body[o0] = 0x00;
	e.body[o0 + 1] = 0x11;
	ed_refused(&e, "object tag 0011xxxx");
	memcpy(e.body + o0, entry, 4);
	/* the same tag twice */
	ed_splice(&e, o0, 0, entry, olen);
	e.body[e.nobjs_off]++;
	ed_refused(&e, "duplicate object");
	e.body[e.nobjs_off]--;
	ed_splice(&e, o0, olen, NULL, 0);
	memcpy(&e0, &e, sizeof(e));
	e0.body = tg_test_memdup(e.body, e.len);

	/* empty object */
	ed_add_obj(&e, 0x5FC105, 0, 0);
	ed_refused(&e, "empty object");
	ed_close(&e);
	/* 3053 bytes: one over; 3052: loads whole */
	memcpy(&e, &e0, sizeof(e));
	e.body = tg_test_memdup(e0.body, e0.len);
	ed_add_obj(&e, 0x5FC105, TOK_OBJ_MAX + 1, 0xAB);
	ed_refused(&e, "object of 3053 bytes");
	ed_close(&e);
	memcpy(&e, &e0, sizeof(e));
	e.body = tg_test_memdup(e0.body, e0.len);
	ed_add_obj(&e, 0x5FC105, TOK_OBJ_MAX, 0xAB);
	assert_int_equal(ed_load(&e, e.len, &t2), 0);
	o = tok_obj_find(t2, 0x5FC105);
	assert_non_null(o);
	assert_int_equal(o->len, TOK_OBJ_MAX);
	assert_int_equal(o->data[TOK_OBJ_MAX - 1], 0xAB);
	tg_tok_free(t2);
	t2 = NULL;
	ed_close(&e);
	/* more objects than the card holds (64) */
	memcpy(&e, &e0, sizeof(e));
	e.body = tg_test_memdup(e0.body, e0.len);
	for (i = base; i < TOK_NOBJS; i++)
		ed_add_obj(&e, 0x5F1000 + (uint32_t)i, 1, 0x01);
	assert_int_equal(ed_load(&e, e.len, &t2), 0); /* exactly 64 */
	tg_tok_free(t2);
	t2 = NULL;
	ed_add_obj(&e, 0x5F2000, 1, 0x01);
	ed_refused(&e, "65 objects");
	ed_close(&e);
	/* more bytes than all objects hold (64 KiB) */
	memcpy(&e, &e0, sizeof(e));
	e.body = tg_test_memdup(e0.body, e0.len);
	for (i = 0; i < TOK_OBJ_TOTAL / TOK_OBJ_MAX + 1; i++)
		ed_add_obj(&e, 0x5F3000 + (uint32_t)i, TOK_OBJ_MAX, 0x02);
	ed_refused(&e, "objects over 64 KiB in all");
	ed_close(&e);

	ed_close(&e0);
	free(entry);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* Whole-blob sizes: the smallest blob with a valid header and checksum
 * and no body, and one byte over the largest. */
static void
test_blob_sizes(void **state)
{
	struct tt_host h;
	struct ed e;
	struct tg_tok *t = state_token(state, &h, &e), *t2 = NULL;
	uint8_t *big;

	assert_int_equal(ed_load(&e, 0, &t2), TG_ERR_FORMAT);
	big = calloc(1, 256 * 1024 + 1);
	assert_non_null(big);
	memcpy(big, e.hdr, 6);
	rechecksum(big, 256 * 1024 + 1);
	assert_int_equal(tg_tok_load(big, 256 * 1024 + 1, NULL, &t2), TG_ERR_FORMAT);
	assert_int_equal(tg_tok_load(NULL, 0, NULL, &t2), TG_ERR_FORMAT);
	assert_null(t2);
	free(big);
	ed_close(&e);
	tg_tok_free(t);
	tt_host_free(&h);
}

/* A state without the F9 key (or with an F9 certificate that is not DER)
 * loads, and ATTEST then answers 6A88: nothing to attest with. */
static void
test_attest_without_f9(void **state)
{
	struct tt_host h;
	struct ed e;
	struct tg_tok *t = state_token(state, &h, &e), *t2 = NULL;
	size_t off = e.key0_off, len = 0, i;

	for (i = 0; i < e.body[e.nkeys_off]; i++, off += len) {
		len = 7 + be16(e.body + off + 5);
		if (e.body[off] == 0xF9)
			break;
	}
	assert_int_equal(e.body[off], 0xF9);
	ed_splice(&e, off, len, NULL, 0);
	e.body[e.nkeys_off]--;
	assert_int_equal(ed_load(&e, e.len, &t2), 0);
	tt_select(t2);
	assert_int_equal(tt_hex(t2, "00F99A00", NULL, 0, NULL), 0x6A88);
	tg_tok_free(t2);

	/* the F9 certificate object holds 70 with bytes that are no certificate */
	assert_int_equal(tt_hex(t, "00DB3FFF 0D 5C035FFF01 5306 7004 30020101", NULL, 0, NULL),
	                 0x9000);
	assert_int_equal(tt_hex(t, "00F99A00", NULL, 0, NULL), 0x6A88);
	/* ... or an empty 70 */
	assert_int_equal(tt_hex(t, "00DB3FFF 09 5C035FFF01 5302 7000", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_hex(t, "00F99A00", NULL, 0, NULL), 0x6A88);
	ed_close(&e);
	tg_tok_free(t);
	tt_host_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_corruption),
	    cmocka_unit_test(test_invalid_contents),  cmocka_unit_test(test_dup),
	    cmocka_unit_test(test_persist_code),      cmocka_unit_test(test_body_truncations),
	    cmocka_unit_test(test_body_puk),          cmocka_unit_test(test_body_keys),
	    cmocka_unit_test(test_body_objects),      cmocka_unit_test(test_blob_sizes),
	    cmocka_unit_test(test_attest_without_f9),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
