/*
 * state.c — the token's persistent state as one blob: tg_tok_save,
 * tg_tok_load and the persist hook every handler calls after a change.
 *
 * Layout (big-endian, written and read through tg_buf):
 *   "TGTK" | u16 version | body | SHA-256 of everything before it
 *   body: u32 serial, 3 version, u8 form factor,
 *         8 PIN, u8 tries, u8 max, 8 PUK, u8 tries, u8 max,
 *         u8 mgm alg, u8 mgm len, mgm key, u8 mgm touch,
 *         u32 ops high, u32 ops low,
 *         u8 nkeys, nkeys x {u8 slot, u8 alg, u8 origin, u8 pin policy,
 *                            u8 touch policy, u16 len, private key DER},
 *         u8 nobjs, nobjs x {u32 tag, u16 len, bytes}
 * The SHA-256 detects corruption, not tampering: the file is the token's
 * own memory and is protected by its mode (0600), like a card's EEPROM.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

static const uint8_t state_magic[4] = {'T', 'G', 'T', 'K'};
#define STATE_VERSION 1
#define STATE_MAX     (256 * 1024)
#define STATE_HDR     (sizeof(state_magic) + 2)
#define KEY_DER_MAX   4096

static int
put_key(struct tg_buf *b, const struct tok_slot *s)
{
	uint8_t *der = NULL;
	int n = 0, r = TG_ERR_CRYPTO;

	if ((n = i2d_PrivateKey(s->pkey, &der)) <= 0 || n > KEY_DER_MAX)
		goto out;
	if ((r = tg_buf_put_u8(b, s->id)) != 0 || (r = tg_buf_put_u8(b, s->alg)) != 0 ||
	    (r = tg_buf_put_u8(b, s->origin)) != 0 || (r = tg_buf_put_u8(b, s->pin_policy)) != 0 ||
	    (r = tg_buf_put_u8(b, s->touch_policy)) != 0 ||
	    (r = tg_buf_put_u16(b, (uint16_t)n)) != 0 ||
	    (r = tg_buf_put_bytes(b, der, (size_t)n)) != 0)
		goto out;
out:
	if (der != NULL)
		OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
	return r;
}

static int
put_body(const struct tg_tok *t, struct tg_buf *b)
{
	uint8_t nkeys = 0, nobjs = 0;
	size_t i;
	int r;

	for (i = 0; i < TG_PIV_NSLOTS; i++)
		nkeys = (uint8_t)(nkeys + (t->slots[i].pkey != NULL));
	for (i = 0; i < TOK_NOBJS; i++)
		nobjs = (uint8_t)(nobjs + (t->objs[i].data != NULL));
	if ((r = tg_buf_put_u32(b, t->serial)) != 0 ||
	    (r = tg_buf_put_bytes(b, t->version, sizeof(t->version))) != 0 ||
	    (r = tg_buf_put_u8(b, t->form_factor)) != 0 ||
	    (r = tg_buf_put_bytes(b, t->pin, TOK_PIN_LEN)) != 0 ||
	    (r = tg_buf_put_u8(b, t->pin_tries)) != 0 || (r = tg_buf_put_u8(b, t->pin_max)) != 0 ||
	    (r = tg_buf_put_bytes(b, t->puk, TOK_PIN_LEN)) != 0 ||
	    (r = tg_buf_put_u8(b, t->puk_tries)) != 0 || (r = tg_buf_put_u8(b, t->puk_max)) != 0 ||
	    (r = tg_buf_put_u8(b, t->mgm_alg)) != 0 ||
	    (r = tg_buf_put_u8(b, (uint8_t)t->mgm_len)) != 0 ||
	    (r = tg_buf_put_bytes(b, t->mgm_key, t->mgm_len)) != 0 ||
	    (r = tg_buf_put_u8(b, t->mgm_touch)) != 0 ||
	    (r = tg_buf_put_u32(b, (uint32_t)(t->ops >> 32))) != 0 ||
	    (r = tg_buf_put_u32(b, (uint32_t)t->ops)) != 0 || (r = tg_buf_put_u8(b, nkeys)) != 0)
		goto out;
	for (i = 0; i < TG_PIV_NSLOTS; i++)
		if (t->slots[i].pkey != NULL && (r = put_key(b, &t->slots[i])) != 0)
			goto out;
	if ((r = tg_buf_put_u8(b, nobjs)) != 0)
		goto out;
	for (i = 0; i < TOK_NOBJS; i++) {
		if (t->objs[i].data == NULL)
			continue;
		if ((r = tg_buf_put_u32(b, t->objs[i].tag)) != 0 ||
		    (r = tg_buf_put_u16(b, (uint16_t)t->objs[i].len)) != 0 ||
		    (r = tg_buf_put_bytes(b, t->objs[i].data, t->objs[i].len)) != 0)
			goto out;
	}
out:
	return r;
}

int
tg_tok_save(const struct tg_tok *t, uint8_t **blob, size_t *len)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	struct tg_buf b;
	int r = TG_ERR_INVALID_ARG;

	memset(&b, 0, sizeof(b));
	if (t == NULL || blob == NULL || len == NULL)
		goto out;
	if ((r = tg_buf_alloc(&b, 4096, STATE_MAX)) != 0)
		goto out;
	if ((r = tg_buf_put_bytes(&b, state_magic, sizeof(state_magic))) != 0 ||
	    (r = tg_buf_put_u16(&b, STATE_VERSION)) != 0 || (r = put_body(t, &b)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if (SHA256(tg_buf_data(&b), tg_buf_len(&b), md) == NULL)
		goto out;
	if ((r = tg_buf_put_bytes(&b, md, sizeof(md))) != 0 ||
	    (r = tg_buf_steal(&b, blob, len)) != 0)
		goto out;
out:
	tg_buf_free(&b);
	return r;
}

int
tok_persist(struct tg_tok *t)
{
	uint8_t *blob = NULL;
	size_t len = 0;
	int r = 0;

	if (t->host.persist == NULL)
		goto out;
	r = TG_ERR_PERSIST;
	if (tg_tok_save(t, &blob, &len) != 0)
		goto out;
	if (t->host.persist(t->host.ctx, blob, len) != 0)
		goto out;
	r = 0;
out:
	tg_freezero(blob, len);
	return r;
}

static int
valid_policy(uint8_t pin, uint8_t touch)
{
	return pin >= TG_PIV_PIN_POLICY_NEVER && pin <= TG_PIV_PIN_POLICY_ALWAYS &&
	       touch >= TG_PIV_TOUCH_POLICY_NEVER && touch <= TG_PIV_TOUCH_POLICY_CACHED;
}

static int
get_key(struct tg_tok *t, struct tg_buf *b)
{
	uint8_t id, alg, origin, pin, touch;
	uint16_t n;
	struct tg_buf der;
	struct tok_slot *s;
	const uint8_t *p;
	EVP_PKEY *k = NULL;
	int type, r;

	if ((r = tg_buf_get_u8(b, &id)) != 0 || (r = tg_buf_get_u8(b, &alg)) != 0 ||
	    (r = tg_buf_get_u8(b, &origin)) != 0 || (r = tg_buf_get_u8(b, &pin)) != 0 ||
	    (r = tg_buf_get_u8(b, &touch)) != 0 || (r = tg_buf_get_u16(b, &n)) != 0 ||
	    (r = tg_buf_get_sub(b, n, &der)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if ((s = tok_slot_find(t, id)) == NULL || s->pkey != NULL || n == 0 ||
	    (origin != TG_PIV_ORIGIN_GENERATED && origin != TG_PIV_ORIGIN_IMPORTED) ||
	    !valid_policy(pin, touch))
		goto out;
	/* the typed decoder: OpenSSL 3's d2i_AutoPrivateKey tries every
	 * format and costs several times as much per key */
	type = alg == TG_PIV_ALG_ECCP256 || alg == TG_PIV_ALG_ECCP384 ? EVP_PKEY_EC : EVP_PKEY_RSA;
	p = tg_buf_cur(&der);
	if ((k = d2i_PrivateKey(type, NULL, &p, (long)n)) == NULL || p != tg_buf_cur(&der) + n ||
	    tok_key_alg(k) != alg)
		goto out;
	s->pkey = k;
	k = NULL;
	s->alg = alg;
	s->origin = origin;
	s->pin_policy = pin;
	s->touch_policy = touch;
	r = 0;
out:
	EVP_PKEY_free(k);
	return r;
}

static int
get_obj(struct tg_tok *t, struct tg_buf *b)
{
	uint32_t tag;
	uint16_t n;
	struct tg_buf v;
	int r;

	if ((r = tg_buf_get_u32(b, &tag)) != 0 || (r = tg_buf_get_u16(b, &n)) != 0 ||
	    (r = tg_buf_get_sub(b, n, &v)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (!tok_obj_allowed(tag) || tok_obj_find(t, tag) != NULL || n == 0 || n > TOK_OBJ_MAX)
		goto out;
	r = tok_obj_set(t, tag, tg_buf_cur(&v), n);
out:
	return r;
}

static int
get_body(struct tg_tok *t, struct tg_buf *b)
{
	uint8_t mlen, nkeys, nobjs, i;
	uint32_t hi, lo;
	int r;

	if ((r = tg_buf_get_u32(b, &t->serial)) != 0 ||
	    (r = tg_buf_get_bytes(b, t->version, sizeof(t->version))) != 0 ||
	    (r = tg_buf_get_u8(b, &t->form_factor)) != 0 ||
	    (r = tg_buf_get_bytes(b, t->pin, TOK_PIN_LEN)) != 0 ||
	    (r = tg_buf_get_u8(b, &t->pin_tries)) != 0 ||
	    (r = tg_buf_get_u8(b, &t->pin_max)) != 0 ||
	    (r = tg_buf_get_bytes(b, t->puk, TOK_PIN_LEN)) != 0 ||
	    (r = tg_buf_get_u8(b, &t->puk_tries)) != 0 ||
	    (r = tg_buf_get_u8(b, &t->puk_max)) != 0 || (r = tg_buf_get_u8(b, &t->mgm_alg)) != 0 ||
	    (r = tg_buf_get_u8(b, &mlen)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (t->pin_max == 0 || t->puk_max == 0 || t->pin_tries > t->pin_max ||
	    t->puk_tries > t->puk_max || tok_mgm_key_len(t->mgm_alg) != mlen)
		goto out;
	t->mgm_len = mlen;
	if ((r = tg_buf_get_bytes(b, t->mgm_key, mlen)) != 0 ||
	    (r = tg_buf_get_u8(b, &t->mgm_touch)) != 0 || (r = tg_buf_get_u32(b, &hi)) != 0 ||
	    (r = tg_buf_get_u32(b, &lo)) != 0 || (r = tg_buf_get_u8(b, &nkeys)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (t->mgm_touch > 1)
		goto out;
	t->ops = ((uint64_t)hi << 32) | lo;
	for (i = 0; i < nkeys; i++)
		if ((r = get_key(t, b)) != 0)
			goto out;
	if ((r = tg_buf_get_u8(b, &nobjs)) != 0)
		goto out;
	for (i = 0; i < nobjs; i++)
		if ((r = get_obj(t, b)) != 0)
			goto out;
	r = tg_buf_expect_end(b);
out:
	return r;
}

int
tg_tok_load(const uint8_t *blob, size_t len, const struct tg_tok_host *host, struct tg_tok **out)
{
	uint8_t magic[sizeof(state_magic)], md[SHA256_DIGEST_LENGTH];
	uint16_t version = 0;
	struct tg_buf b, body, sum;
	struct tg_tok *t = NULL;
	int r = TG_ERR_INVALID_ARG;

	if ((blob == NULL && len > 0) || out == NULL)
		goto out;
	r = TG_ERR_FORMAT;
	if (len < STATE_HDR + SHA256_DIGEST_LENGTH || len > STATE_MAX)
		goto out;
	tg_buf_reader(&b, blob, len);
	if (tg_buf_get_bytes(&b, magic, sizeof(magic)) != 0 ||
	    CRYPTO_memcmp(magic, state_magic, sizeof(magic)) != 0 ||
	    tg_buf_get_u16(&b, &version) != 0)
		goto out;
	r = TG_ERR_VERSION;
	if (version != STATE_VERSION)
		goto out;
	/* checksum over everything before the last 32 bytes */
	r = TG_ERR_CHECKSUM;
	if (tg_buf_get_sub(&b, len - STATE_HDR - SHA256_DIGEST_LENGTH, &body) != 0 ||
	    tg_buf_get_sub(&b, SHA256_DIGEST_LENGTH, &sum) != 0 ||
	    SHA256(blob, len - SHA256_DIGEST_LENGTH, md) == NULL ||
	    CRYPTO_memcmp(md, tg_buf_cur(&sum), sizeof(md)) != 0)
		goto out;
	r = TG_ERR_ALLOC;
	if ((t = tok_alloc(host)) == NULL)
		goto out;
	if ((r = get_body(t, &body)) != 0) {
		r = r == TG_ERR_ALLOC ? r : TG_ERR_FORMAT;
		goto out;
	}
	*out = t;
	t = NULL;
	r = 0;
out:
	tg_tok_free(t);
	return r;
}
