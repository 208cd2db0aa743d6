/*
 * objects.c — data objects: GET DATA and PUT DATA (SP 800-73-4 Part 2,
 * 3.1.2 and 3.3.2) over the ids a YubiKey 5 takes (the PIV ones and the
 * Yubico range ykman uses), the Discovery object, and the factory CHUID
 * and CCC. Objects live in a fixed table of TOK_NOBJS entries, each held
 * on the heap and wiped when replaced or deleted.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

#define GET_DATA_P1       0x3F
#define GET_DATA_P2       0xFF
#define OBJ_TAG_MAX_BYTES 3

/*
 * Which objects a card holds: a YubiKey 5 accepts any tag from 5F0000 to
 * 5FFFFF (the PIV objects 5FC1xx, Yubico's 5FFFxx — ykman's PIVMAN data
 * 5FFF00, the F9 certificate 5FFF01 — and tags nobody defined), the
 * biometric group template 7F61 and Discovery 7E (read only, fixed here).
 */
#define OBJ_TAG_RANGE_LO 0x5F0000u
#define OBJ_TAG_RANGE_HI 0x5FFFFFu
#define OBJ_TAG_BITGT    0x7F61u

/* Objects read only after PIN verification (SP 800-73-4 Part 1, Table 3).
 * ykman keeps the PIN-protected management key in PRINTED, so this binds
 * that key to the PIN too. As on a YubiKey, the PIN is checked before the
 * object's presence: without it, nobody learns whether one was written. */
static const uint32_t obj_pin_read[] = {TG_PIV_OBJ_FINGERPRINTS, TG_PIV_OBJ_FACIAL,
                                        TG_PIV_OBJ_PRINTED, TG_PIV_OBJ_IRIS};

/* SP 800-73-4 Part 1, 3.3.2: Discovery object, PIV AID and PIN usage
 * policy 40 10 (PIV PIN only, PIV PIN primary). */
static const uint8_t discovery[] = {0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
                                    0x00, 0x10, 0x00, 0x01, 0x00, 0x5F, 0x2F, 0x02, 0x40, 0x10};

/* The FASC-N of agency 9999, system 9999, credential 999999 (the usual
 * value for cards without a federal issuer), 5-bit BCD with parity. OpenSC
 * shows the GUID as serial when the FASC-N starts D4 E7 39. */
static const uint8_t fascn[25] = {0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE,
                                  0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10,
                                  0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB};
#define CHUID_TAG_FASCN  0x30
#define CHUID_TAG_GUID   0x34
#define CHUID_TAG_EXPIRY 0x35
#define CHUID_TAG_SIG    0x3E
#define CHUID_GUID_LEN   16
static const uint8_t chuid_expiry[] = {'2', '0', '4', '5', '1', '2', '3', '1'};

/* CCC (SP 800-73-4 Part 1, 3.1.1): card identifier = GSC-RID A000000116,
 * manufacturer FF, card type 02 (JavaCard-like), 14 random bytes. */
#define CCC_TAG_CARD_ID 0xF0
#define CCC_ID_RANDOM   14
static const uint8_t ccc_id_prefix[] = {0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02};
static const uint8_t ccc_tail[] = {0xF1, 0x01, 0x21, 0xF2, 0x01, 0x21, 0xF3, 0x00, 0xF4, 0x01,
                                   0x00, 0xF5, 0x01, 0x10, 0xF6, 0x00, 0xF7, 0x00, 0xFA, 0x00,
                                   0xFB, 0x00, 0xFC, 0x00, 0xFD, 0x00, 0xFE, 0x00};

int
tok_obj_allowed(uint32_t tag)
{
	return (tag >= OBJ_TAG_RANGE_LO && tag <= OBJ_TAG_RANGE_HI) || tag == OBJ_TAG_BITGT;
}

static int
obj_pin_protected(uint32_t tag)
{
	size_t i;
	int hit = 0;

	for (i = 0; i < sizeof(obj_pin_read) / sizeof(obj_pin_read[0]); i++)
		hit |= obj_pin_read[i] == tag;
	return hit;
}

/* Index of the object with tag in t->objs: 0 and *idx, or TG_ERR_NOT_FOUND. */
static int
obj_index(const struct tg_tok *t, uint32_t tag, size_t *idx)
{
	size_t i;
	int r = TG_ERR_NOT_FOUND;

	for (i = 0; i < TOK_NOBJS; i++) {
		if (t->objs[i].data != NULL && t->objs[i].tag == tag) {
			*idx = i;
			r = 0;
			break;
		}
	}
	return r;
}

struct tok_obj *
tok_obj_find(struct tg_tok *t, uint32_t tag)
{
	struct tok_obj *o = NULL;
	size_t i = 0;

	if (obj_index(t, tag, &i) == 0)
		o = &t->objs[i];
	return o;
}

const uint8_t *
tok_obj_slot_cert(const struct tg_tok *t, uint8_t slot, size_t *n)
{
	const uint8_t *p = NULL;
	size_t i = 0;

	*n = 0;
	if (obj_index(t, tok_obj_cert_tag(slot), &i) == 0)
		p = tok_obj_cert_der(&t->objs[i], n);
	return p;
}

/* Bytes held by every object but the one at index skip (TOK_NOBJS: none). */
static size_t
obj_total(const struct tg_tok *t, size_t skip)
{
	size_t i, sum = 0;

	for (i = 0; i < TOK_NOBJS; i++)
		if (i != skip && t->objs[i].data != NULL)
			sum += t->objs[i].len;
	return sum;
}

static void
obj_drop(struct tok_obj *o)
{
	tg_freezero(o->data, o->len);
	o->data = NULL;
	o->len = 0;
	o->tag = 0;
}

int
tok_obj_set(struct tg_tok *t, uint32_t tag, const uint8_t *p, size_t n)
{
	struct tok_obj *o = NULL;
	uint8_t *copy = NULL;
	size_t i = TOK_NOBJS;
	int r = TG_ERR_NOT_FOUND;

	if (!tok_obj_allowed(tag))
		goto out;
	r = 0;
	if (obj_index(t, tag, &i) == 0)
		o = &t->objs[i];
	if (n == 0) {
		if (o != NULL)
			obj_drop(o);
		goto out;
	}
	r = TG_ERR_NO_SPACE;
	if (n > TOK_OBJ_MAX || n > TOK_OBJ_TOTAL - obj_total(t, i))
		goto out;
	for (i = 0; o == NULL && i < TOK_NOBJS; i++)
		if (t->objs[i].data == NULL)
			o = &t->objs[i];
	if (o == NULL)
		goto out; /* every entry in use */
	r = TG_ERR_ALLOC;
	if ((copy = malloc(n)) == NULL)
		goto out;
	memcpy(copy, p, n);
	tg_freezero(o->data, o->len);
	o->tag = tag;
	o->data = copy;
	o->len = n;
	r = 0;
out:
	return r;
}

void
tok_obj_clear_except(struct tg_tok *t, uint32_t keep)
{
	size_t i;

	for (i = 0; i < TOK_NOBJS; i++)
		if (t->objs[i].data == NULL || t->objs[i].tag != keep)
			obj_drop(&t->objs[i]);
}

void
tok_obj_clear_all(struct tg_tok *t)
{
	size_t i;

	for (i = 0; i < TOK_NOBJS; i++)
		obj_drop(&t->objs[i]);
}

uint32_t
tok_obj_cert_tag(uint8_t slot)
{
	const struct tg_piv_slot *s = tg_piv_slot_by_id(slot);

	return s != NULL ? s->cert_tag : 0;
}

int
tok_obj_put_cert(struct tg_buf *b, const uint8_t *der, size_t n)
{
	static const uint8_t uncompressed = 0x00;
	int r;

	if ((r = tg_buf_put_tlv(b, TG_PIV_TAG_CERT, der, n)) != 0 ||
	    (r = tg_buf_put_tlv(b, TG_PIV_TAG_CERTINFO, &uncompressed, 1)) != 0 ||
	    (r = tg_buf_put_tlv(b, TG_PIV_TAG_ERRDET, NULL, 0)) != 0)
		goto out;
out:
	return r;
}

const uint8_t *
tok_obj_cert_der(const struct tok_obj *o, size_t *n)
{
	struct tg_buf b, v;
	const uint8_t *p = NULL;

	*n = 0;
	if (o == NULL || o->data == NULL)
		goto out;
	tg_buf_reader(&b, o->data, o->len);
	if (tg_buf_find_tlv(&b, TG_PIV_TAG_CERT, &v) != 0 || tg_buf_remaining(&v) == 0)
		goto out;
	p = tg_buf_cur(&v);
	*n = tg_buf_remaining(&v);
out:
	return p;
}

int
tok_obj_factory(struct tg_tok *t)
{
	uint8_t guid[CHUID_GUID_LEN], rnd[CCC_ID_RANDOM];
	uint8_t id[sizeof(ccc_id_prefix) + CCC_ID_RANDOM];
	struct tg_buf b;
	int r = TG_ERR_CRYPTO;

	memset(&b, 0, sizeof(b));
	if (RAND_bytes(guid, sizeof(guid)) != 1 || RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	if ((r = tg_buf_alloc(&b, 128, TOK_OBJ_MAX)) != 0)
		goto out;
	if ((r = tg_buf_put_tlv(&b, CHUID_TAG_FASCN, fascn, sizeof(fascn))) != 0 ||
	    (r = tg_buf_put_tlv(&b, CHUID_TAG_GUID, guid, sizeof(guid))) != 0 ||
	    (r = tg_buf_put_tlv(&b, CHUID_TAG_EXPIRY, chuid_expiry, sizeof(chuid_expiry))) != 0 ||
	    (r = tg_buf_put_tlv(&b, CHUID_TAG_SIG, NULL, 0)) != 0 ||
	    (r = tg_buf_put_tlv(&b, TG_PIV_TAG_ERRDET, NULL, 0)) != 0)
		goto out;
	if ((r = tok_obj_set(t, TG_PIV_OBJ_CHUID, tg_buf_data(&b), tg_buf_len(&b))) != 0)
		goto out;
	tg_buf_reset(&b);
	memcpy(id, ccc_id_prefix, sizeof(ccc_id_prefix));
	memcpy(id + sizeof(ccc_id_prefix), rnd, sizeof(rnd));
	if ((r = tg_buf_put_tlv(&b, CCC_TAG_CARD_ID, id, sizeof(id))) != 0 ||
	    (r = tg_buf_put_bytes(&b, ccc_tail, sizeof(ccc_tail))) != 0)
		goto out;
	r = tok_obj_set(t, TG_PIV_OBJ_CCC, tg_buf_data(&b), tg_buf_len(&b));
out:
	tg_buf_free(&b);
	return r;
}

/* Reads the 5C tag list of GET/PUT DATA: one tag of 1-3 bytes. */
static uint16_t
read_tag_list(struct tg_buf *data, uint32_t *tag)
{
	struct tg_buf v;
	uint8_t c;
	size_t n;
	uint16_t sw = TG_PIV_SW_WRONG_DATA;

	*tag = 0;
	if (tg_buf_get_tlv_tag(data, TG_PIV_TAG_TAGLIST, &v) != 0)
		goto out;
	n = tg_buf_remaining(&v);
	if (n == 0 || n > OBJ_TAG_MAX_BYTES)
		goto out;
	while (tg_buf_get_u8(&v, &c) == 0)
		*tag = (*tag << 8) | c;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_get_data(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct tok_obj *o;
	uint32_t tag;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != GET_DATA_P1 || a->p2 != GET_DATA_P2)
		goto out;
	if ((sw = read_tag_list(&a->data, &tag)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (tg_buf_expect_end(&a->data) != 0)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tag == TG_PIV_OBJ_DISCOVERY) {
		if (tg_buf_put_bytes(out, discovery, sizeof(discovery)) == 0)
			sw = TG_PIV_SW_OK;
		goto out;
	}
	/* an id outside the card's set is an object it does not have */
	sw = TG_PIV_SW_FILE_NOT_FOUND;
	if (!tok_obj_allowed(tag))
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (obj_pin_protected(tag) && !t->v.pin_ok)
		goto out;
	/* allowed but never written (ykman's PIVMAN data on a new card) */
	sw = TG_PIV_SW_FILE_NOT_FOUND;
	if ((o = tok_obj_find(t, tag)) == NULL)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tg_buf_put_tlv(out, TG_PIV_TAG_DATA, o->data, o->len) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_put_data(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct tg_buf v;
	uint32_t tag;
	int r;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != GET_DATA_P1 || a->p2 != GET_DATA_P2)
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (!t->v.mgm_ok)
		goto out;
	if ((sw = read_tag_list(&a->data, &tag)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (tg_buf_get_tlv_tag(&a->data, TG_PIV_TAG_DATA, &v) != 0 ||
	    tg_buf_expect_end(&a->data) != 0)
		goto out;
	/* Discovery and ids outside the card's set cannot be written */
	if (!tok_obj_allowed(tag))
		goto out;
	sw = TG_PIV_SW_NOT_ENOUGH_MEMORY;
	if ((r = tok_obj_set(t, tag, tg_buf_cur(&v), tg_buf_remaining(&v))) == TG_ERR_NO_SPACE)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (r != 0)
		goto out;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	return sw;
}
