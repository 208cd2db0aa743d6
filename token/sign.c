/*
 * sign.c — private-key operations through GENERAL AUTHENTICATE
 * (SP 800-73-4 Part 2, 3.2.4): RSA raw (the host pads), ECDSA over a hash,
 * ECDH; the PIN and touch policies that guard them; GET CHALLENGE.
 */
#include <string.h>

#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "tg_err.h"
#include "tg_pkey.h"
#include "tg_secret.h"
#include "tok-int.h"

#define EC_FIELD_MAX          48
#define SIG_MAX               512
#define EC_POINT_UNCOMPRESSED 0x04 /* SEC 1 2.3.3 */
#define CHALLENGE_DEF         8

/* Enforces the slot's PIN and touch policies for one operation. */
static uint16_t
policy_check(struct tg_tok *t, struct tok_slot *s)
{
	uint64_t now = 0;
	int fresh = t->v.pin_fresh;
	uint16_t sw = TG_PIV_SW_SECURITY_STATUS;

	/* a PIN-always VERIFY is good for one operation, used or not */
	t->v.pin_fresh = 0;
	switch (s->pin_policy) {
	case TG_PIV_PIN_POLICY_NEVER:
		break;
	case TG_PIV_PIN_POLICY_ALWAYS:
		if (!t->v.pin_ok || !fresh)
			goto out;
		break;
	case TG_PIV_PIN_POLICY_ONCE:
	default:
		if (!t->v.pin_ok)
			goto out;
		break;
	}
	switch (s->touch_policy) {
	case TG_PIV_TOUCH_POLICY_NEVER:
		break;
	case TG_PIV_TOUCH_POLICY_CACHED:
		if (t->host.now_ms != NULL)
			now = t->host.now_ms(t->host.ctx);
		if (t->host.now_ms != NULL && s->touch_valid && now >= s->touch_ms &&
		    now - s->touch_ms < TOK_TOUCH_CACHE_MS)
			break;
		if (t->host.touch != NULL && t->host.touch(t->host.ctx, s->id) != 1)
			goto out;
		s->touch_valid = t->host.now_ms != NULL;
		s->touch_ms = now;
		break;
	case TG_PIV_TOUCH_POLICY_ALWAYS:
	default:
		if (t->host.touch != NULL && t->host.touch(t->host.ctx, s->id) != 1)
			goto out;
		break;
	}
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

/* The field size of an EC slot's curve, 0 for another algorithm. */
static size_t
ec_field_len(uint8_t alg)
{
	const struct tg_piv_alg *a = tok_key_alg_row(alg);

	return a != NULL && a->kind == TG_PIV_KIND_EC ? a->bytes : 0;
}

static int
is_rsa(uint8_t alg)
{
	const struct tg_piv_alg *a = tok_key_alg_row(alg);

	return a != NULL && a->kind == TG_PIV_KIND_RSA;
}

/* RSA private operation on an already padded block of exactly the
 * modulus length (the host did PKCS#1 v1.5 or PSS padding). */
static int
rsa_raw(EVP_PKEY *k, struct tg_buf *in, uint8_t *sig, size_t *siglen)
{
	EVP_PKEY_CTX *c = NULL;
	size_t n = (size_t)EVP_PKEY_get_size(k);
	int r = TG_ERR_FORMAT;

	if (tg_buf_remaining(in) != n || n > *siglen)
		goto out;
	r = TG_ERR_CRYPTO;
	if ((c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) != 1 ||
	    EVP_PKEY_sign(c, sig, siglen, tg_buf_cur(in), n) != 1)
		goto out;
	r = 0;
out:
	EVP_PKEY_CTX_free(c);
	return r;
}

/* ECDSA over a hash, left-padded with zeros or truncated to the field
 * size (FIPS 186-4 6.4: the leftmost bits count). */
static int
ecdsa(EVP_PKEY *k, uint8_t alg, struct tg_buf *in, uint8_t *sig, size_t *siglen)
{
	uint8_t h[EC_FIELD_MAX];
	size_t fl = ec_field_len(alg), n = tg_buf_remaining(in);
	EVP_PKEY_CTX *c = NULL;
	int r = TG_ERR_FORMAT;

	if (n == 0 || fl == 0 || fl > sizeof(h))
		goto out;
	memset(h, 0, sizeof(h));
	if (n >= fl)
		memcpy(h, tg_buf_cur(in), fl);
	else
		memcpy(h + (fl - n), tg_buf_cur(in), n);
	r = TG_ERR_CRYPTO;
	if ((c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_sign(c, sig, siglen, h, fl) != 1)
		goto out;
	r = 0;
out:
	EVP_PKEY_CTX_free(c);
	return r;
}

/* ECDH with the host's uncompressed point: the shared X coordinate. */
static int
ecdh(EVP_PKEY *k, uint8_t alg, struct tg_buf *point, uint8_t *z, size_t *zlen)
{
	const struct tg_piv_alg *a = tok_key_alg_row(alg);
	size_t fl = ec_field_len(alg);
	EVP_PKEY_CTX *dc = NULL;
	EVP_PKEY *peer = NULL;
	int r = TG_ERR_FORMAT;

	if (fl == 0 || tg_buf_remaining(point) != 1 + 2 * fl ||
	    *tg_buf_cur(point) != EC_POINT_UNCOMPRESSED)
		goto out;
	if (tg_pkey_ec_public(a->group, tg_buf_cur(point), 1 + 2 * fl, &peer) != 0)
		goto out;
	if ((dc = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, peer) != 1 ||
	    EVP_PKEY_derive(dc, z, zlen) != 1)
		goto out;
	r = 0;
out:
	EVP_PKEY_free(peer);
	EVP_PKEY_CTX_free(dc);
	return r;
}

struct sign_req {
	struct tg_buf input;
	int has_response, has_challenge, has_exp;
};

static uint16_t
parse_sign_req(struct tg_buf *data, struct sign_req *q)
{
	struct tg_buf tpl, v;
	uint32_t tag;
	uint16_t sw = TG_PIV_SW_WRONG_DATA;

	memset(q, 0, sizeof(*q));
	if (tg_buf_get_tlv_tag(data, TG_PIV_TAG_DYN_AUTH, &tpl) != 0 ||
	    tg_buf_expect_end(data) != 0)
		goto out;
	while (tg_buf_remaining(&tpl) > 0) {
		if (tg_buf_get_tlv(&tpl, &tag, &v) != 0)
			goto out;
		if (tag == TG_PIV_TAG_RESPONSE && !q->has_response && tg_buf_remaining(&v) == 0) {
			q->has_response = 1;
		} else if (tag == TG_PIV_TAG_CHALLENGE && !q->has_challenge && !q->has_exp) {
			q->has_challenge = 1;
			q->input = v;
		} else if (tag == TG_PIV_TAG_EXPONENTIATION && !q->has_challenge && !q->has_exp) {
			q->has_exp = 1;
			q->input = v;
		} else {
			goto out;
		}
	}
	if (!q->has_response || (!q->has_challenge && !q->has_exp) ||
	    tg_buf_remaining(&q->input) == 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_general_auth(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct sign_req q;
	struct tok_slot *s;
	uint8_t sig[SIG_MAX];
	size_t siglen = sizeof(sig), mark;
	int rc;
	uint16_t sw;

	if (a->p2 == TG_PIV_REF_MGM) {
		sw = tok_mgm_auth(t, a, out);
		goto out;
	}
	sw = TG_PIV_SW_INCORRECT_P1P2;
	if ((s = tok_slot_find(t, a->p2)) == NULL || s->id == TG_PIV_SLOT_ATTEST)
		goto out;
	if ((sw = parse_sign_req(&a->data, &q)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_REF_NOT_FOUND;
	if (s->pkey == NULL)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (a->p1 != s->alg || (q.has_exp && is_rsa(s->alg)))
		goto out;
	/* input sizes are checked before the PIN and touch are spent */
	if (is_rsa(s->alg) && tg_buf_remaining(&q.input) != (size_t)EVP_PKEY_get_size(s->pkey))
		goto out;
	if (q.has_exp && tg_buf_remaining(&q.input) != 1 + 2 * ec_field_len(s->alg))
		goto out;
	if ((sw = policy_check(t, s)) != TG_PIV_SW_OK)
		goto out;
	if (is_rsa(s->alg))
		rc = rsa_raw(s->pkey, &q.input, sig, &siglen);
	else if (q.has_exp)
		rc = ecdh(s->pkey, s->alg, &q.input, sig, &siglen);
	else
		rc = ecdsa(s->pkey, s->alg, &q.input, sig, &siglen);
	sw = TG_PIV_SW_WRONG_DATA;
	if (rc != 0)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_RESPONSE, sig, siglen) != 0 ||
	    tg_buf_tlv_end(out, mark) != 0)
		goto out;
	/* every private-key operation is counted, persistently */
	t->ops++;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	tg_wipe(sig, sizeof(sig));
	return sw;
}

uint16_t
tok_get_challenge(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t buf[TOK_SHORT_MAX];
	size_t n = a->le != 0 ? a->le : CHALLENGE_DEF;
	uint16_t sw;

	if ((sw = tok_apdu_bare(a)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (RAND_bytes(buf, (int)n) != 1 || tg_buf_put_bytes(out, buf, n) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}
