/*
 * mgmt.c — the card management key (key reference 9B): authentication
 * through GENERAL AUTHENTICATE (SP 800-73-4 Part 2, Appendix A.1/A.2:
 * mutual authentication with witness and challenge, and external
 * authentication with a challenge), and SET MANAGEMENT KEY (Yubico FF).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tg_err.h"
#include "tg_mgm.h"
#include "tg_secret.h"
#include "tok-int.h"

#define SETMGM_P1       0xFF
#define SETMGM_P2       0xFF
#define SETMGM_P2_TOUCH 0xFE
#define MGM_P1_RANDOM   0x00 /* GET CHALLENGE through GENERAL AUTHENTICATE */

/* The YubiKey factory management key (3DES), which host tools assume. */
const uint8_t tok_mgm_default[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                     5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

size_t
tok_mgm_key_len(uint8_t alg)
{
	size_t n = 0;

	(void)tg_mgm_cipher(alg, &n);
	return n;
}

static size_t
mgm_block_len(uint8_t alg)
{
	return alg == TG_PIV_ALG_3DES ? 8 : 16;
}

/*
 * The 4 weak and 12 semi-weak DES keys (FIPS 74 section 3.6; NIST SP
 * 800-67 Rev. 2 section 3.3.2), with odd parity. Compared with the low
 * (parity) bit of every byte ignored, as DES itself ignores it.
 */
static const uint8_t des_weak[16][8] = {
    {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01}, /* weak */
    {0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE, 0xFE},
    {0x1F, 0x1F, 0x1F, 0x1F, 0x0E, 0x0E, 0x0E, 0x0E},
    {0xE0, 0xE0, 0xE0, 0xE0, 0xF1, 0xF1, 0xF1, 0xF1},
    {0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE}, /* semi-weak pairs */
    {0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01, 0xFE, 0x01},
    {0x1F, 0xE0, 0x1F, 0xE0, 0x0E, 0xF1, 0x0E, 0xF1},
    {0xE0, 0x1F, 0xE0, 0x1F, 0xF1, 0x0E, 0xF1, 0x0E},
    {0x01, 0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1},
    {0xE0, 0x01, 0xE0, 0x01, 0xF1, 0x01, 0xF1, 0x01},
    {0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E, 0xFE},
    {0xFE, 0x1F, 0xFE, 0x1F, 0xFE, 0x0E, 0xFE, 0x0E},
    {0x01, 0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E},
    {0x1F, 0x01, 0x1F, 0x01, 0x0E, 0x01, 0x0E, 0x01},
    {0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1, 0xFE},
    {0xFE, 0xE0, 0xFE, 0xE0, 0xFE, 0xF1, 0xFE, 0xF1},
};

/*
 * 1 when any of the three DES keys of a 3DES key is weak or semi-weak,
 * parity bits ignored; constant time (the key is a secret). Yubico's
 * yubico-piv-tool (ykpiv_set_mgmkey, yk_des_is_weak_key) refuses exactly
 * these; it does not refuse degenerate keys (K1 == K2 or K2 == K3, which
 * collapse to single DES) and neither do we: the PIV default key
 * 0102..08 three times is such a key, and tools set it back.
 */
int
tok_mgm_3des_weak(const uint8_t key[24])
{
	size_t blk, w, i;
	unsigned hit = 0, diff;

	for (blk = 0; blk < 3; blk++)
		for (w = 0; w < sizeof(des_weak) / sizeof(des_weak[0]); w++) {
			diff = 0;
			for (i = 0; i < 8; i++)
				diff |= (unsigned)((key[blk * 8 + i] ^ des_weak[w][i]) & 0xFE);
			hit |= ((diff - 1) >> 8) & 1u; /* 1 when diff == 0 */
		}
	return (int)hit;
}

/* One block through the management key: enc 1 encrypts, 0 decrypts. */
static int
mgm_block(const struct tg_tok *t, int enc, const uint8_t *in, uint8_t *outb, size_t bs)
{
	EVP_CIPHER_CTX *c = NULL;
	size_t klen = 0;
	const EVP_CIPHER *ciph = tg_mgm_cipher(t->mgm_alg, &klen);
	int n = 0, r = TG_ERR_CRYPTO;

	if (ciph == NULL || (c = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	if (EVP_CipherInit_ex(c, ciph, NULL, t->mgm_key, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    EVP_CipherUpdate(c, outb, &n, in, (int)bs) != 1 || (size_t)n != bs)
		goto out;
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return r;
}

struct dyn_auth {
	struct tg_buf witness, challenge, response;
	int has_witness, has_challenge, has_response;
};

/* Splits a 7C dynamic authentication template into its 80/81/82 parts. */
static uint16_t
parse_dyn_auth(struct tg_buf *data, struct dyn_auth *d)
{
	struct tg_buf tpl, v;
	uint32_t tag;
	uint16_t sw = TG_PIV_SW_WRONG_DATA;

	memset(d, 0, sizeof(*d));
	if (tg_buf_get_tlv_tag(data, TG_PIV_TAG_DYN_AUTH, &tpl) != 0 ||
	    tg_buf_expect_end(data) != 0)
		goto out;
	while (tg_buf_remaining(&tpl) > 0) {
		if (tg_buf_get_tlv(&tpl, &tag, &v) != 0)
			goto out;
		if (tag == TG_PIV_TAG_WITNESS && !d->has_witness) {
			d->witness = v;
			d->has_witness = 1;
		} else if (tag == TG_PIV_TAG_CHALLENGE && !d->has_challenge) {
			d->challenge = v;
			d->has_challenge = 1;
		} else if (tag == TG_PIV_TAG_RESPONSE && !d->has_response) {
			d->response = v;
			d->has_response = 1;
		} else {
			goto out;
		}
	}
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

static uint16_t
mgm_touch(struct tg_tok *t)
{
	uint16_t sw = TG_PIV_SW_OK;

	if (t->mgm_touch && t->host.touch != NULL &&
	    t->host.touch(t->host.ctx, TG_PIV_REF_MGM) != 1)
		sw = TG_PIV_SW_SECURITY_STATUS;
	return sw;
}

/* Step 1 of mutual authentication: send the witness encrypted. */
static uint16_t
send_witness(struct tg_tok *t, size_t bs, struct tg_buf *out)
{
	uint8_t enc[16];
	size_t mark;
	uint16_t sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;

	if (RAND_bytes(t->v.mgm_nonce, (int)bs) != 1 ||
	    mgm_block(t, 1, t->v.mgm_nonce, enc, bs) != 0)
		goto out;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_WITNESS, enc, bs) != 0 || tg_buf_tlv_end(out, mark) != 0)
		goto out;
	t->v.mgm_nonce_len = bs;
	t->v.mgm_state = TOK_MGM_WITNESS;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

/* Step 2 of mutual authentication: check the decrypted witness, answer
 * the host's challenge encrypted. */
static uint16_t
check_witness(struct tg_tok *t, struct dyn_auth *d, size_t bs, struct tg_buf *out)
{
	uint8_t w[16], chal[16], enc[16];
	size_t mark;
	int ok;
	uint16_t sw = TG_PIV_SW_WRONG_DATA;

	memset(w, 0, sizeof(w));
	if (tg_buf_remaining(&d->witness) != bs || tg_buf_remaining(&d->challenge) != bs ||
	    tg_buf_get_bytes(&d->witness, w, bs) != 0 ||
	    tg_buf_get_bytes(&d->challenge, chal, bs) != 0)
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	ok = t->v.mgm_state == TOK_MGM_WITNESS && t->v.mgm_nonce_len == bs &&
	     tg_secret_eq(w, bs, t->v.mgm_nonce, bs);
	if (!ok)
		goto out;
	if ((sw = mgm_touch(t)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (mgm_block(t, 1, chal, enc, bs) != 0)
		goto out;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_RESPONSE, enc, bs) != 0 ||
	    tg_buf_tlv_end(out, mark) != 0)
		goto out;
	t->v.mgm_ok = 1;
	sw = TG_PIV_SW_OK;
out:
	tg_wipe(w, sizeof(w));
	return sw;
}

/* Random bytes in a challenge template, for GET CHALLENGE (no state). */
static uint16_t
send_random(size_t bs, struct tg_buf *out)
{
	uint8_t rnd[16];
	size_t mark;
	uint16_t sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;

	if (RAND_bytes(rnd, (int)bs) != 1)
		goto out;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_CHALLENGE, rnd, bs) != 0 ||
	    tg_buf_tlv_end(out, mark) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

/* External authentication, step 1: a plain challenge. */
static uint16_t
send_challenge(struct tg_tok *t, size_t bs, struct tg_buf *out)
{
	size_t mark;
	uint16_t sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;

	if (RAND_bytes(t->v.mgm_nonce, (int)bs) != 1)
		goto out;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_CHALLENGE, t->v.mgm_nonce, bs) != 0 ||
	    tg_buf_tlv_end(out, mark) != 0)
		goto out;
	t->v.mgm_nonce_len = bs;
	t->v.mgm_state = TOK_MGM_CHALLENGE;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

/* External authentication, step 2: the host's encryption of it. */
static uint16_t
check_response(struct tg_tok *t, struct dyn_auth *d, size_t bs)
{
	uint8_t resp[16], expect[16];
	int ok;
	uint16_t sw = TG_PIV_SW_WRONG_DATA;

	memset(expect, 0, sizeof(expect));
	if (tg_buf_remaining(&d->response) != bs || tg_buf_get_bytes(&d->response, resp, bs) != 0)
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (t->v.mgm_state != TOK_MGM_CHALLENGE || t->v.mgm_nonce_len != bs)
		goto out;
	if (mgm_block(t, 1, t->v.mgm_nonce, expect, bs) != 0)
		goto out;
	ok = tg_secret_eq(resp, bs, expect, bs);
	if (!ok)
		goto out;
	if ((sw = mgm_touch(t)) != TG_PIV_SW_OK)
		goto out;
	t->v.mgm_ok = 1;
	sw = TG_PIV_SW_OK;
out:
	tg_wipe(expect, sizeof(expect));
	return sw;
}

uint16_t
tok_mgm_auth(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct dyn_auth d;
	enum tok_mgm_state prev = t->v.mgm_state;
	size_t bs = mgm_block_len(t->mgm_alg);
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != t->mgm_alg && a->p1 != MGM_P1_RANDOM)
		goto out;
	if ((sw = parse_dyn_auth(&a->data, &d)) != TG_PIV_SW_OK)
		goto out;
	if (a->p1 == MGM_P1_RANDOM) {
		/* OpenSC's piv_get_challenge (C_GenerateRandom): 7C 02 81 00
		 * with algorithm 00 asks for random bytes only; no state. */
		sw = TG_PIV_SW_INCORRECT_P1P2;
		if (!d.has_challenge || tg_buf_remaining(&d.challenge) != 0 || d.has_witness ||
		    d.has_response)
			goto out;
		sw = send_random(bs, out);
		goto out;
	}
	/* whatever happens now, a nonce in flight is used up */
	t->v.mgm_state = TOK_MGM_IDLE;
	t->v.mgm_ok = 0;
	sw = TG_PIV_SW_WRONG_DATA;
	if (d.has_witness && tg_buf_remaining(&d.witness) == 0 && !d.has_challenge &&
	    !d.has_response) {
		sw = send_witness(t, bs, out);
	} else if (d.has_witness && d.has_challenge && !d.has_response) {
		t->v.mgm_state = prev;
		sw = check_witness(t, &d, bs, out);
		t->v.mgm_state = TOK_MGM_IDLE;
	} else if (d.has_challenge && tg_buf_remaining(&d.challenge) == 0 && !d.has_witness &&
	           !d.has_response) {
		sw = send_challenge(t, bs, out);
	} else if (d.has_response && !d.has_witness && !d.has_challenge) {
		t->v.mgm_state = prev;
		sw = check_response(t, &d, bs);
		t->v.mgm_state = TOK_MGM_IDLE;
	}
	if (t->v.mgm_state == TOK_MGM_IDLE) {
		tg_wipe(t->v.mgm_nonce, sizeof(t->v.mgm_nonce));
		t->v.mgm_nonce_len = 0;
	}
out:
	return sw;
}

uint16_t
tok_set_mgm_key(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t alg = 0, ref = 0, len = 0;
	uint8_t key[TOK_MGM_MAX];
	size_t klen;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	memset(key, 0, sizeof(key));
	if (a->p1 != SETMGM_P1 || (a->p2 != SETMGM_P2 && a->p2 != SETMGM_P2_TOUCH))
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (!t->v.mgm_ok)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (tg_buf_get_u8(&a->data, &alg) != 0 || tg_buf_get_u8(&a->data, &ref) != 0 ||
	    tg_buf_get_u8(&a->data, &len) != 0)
		goto out;
	klen = tok_mgm_key_len(alg);
	if (ref != TG_PIV_REF_MGM || klen == 0 || len != klen ||
	    tg_buf_remaining(&a->data) != klen || tg_buf_get_bytes(&a->data, key, klen) != 0)
		goto out;
	if (alg == TG_PIV_ALG_3DES && tok_mgm_3des_weak(key))
		goto out; /* a weak DES key: wrong data, nothing kept */
	tg_wipe(t->mgm_key, sizeof(t->mgm_key));
	memcpy(t->mgm_key, key, klen);
	t->mgm_len = klen;
	t->mgm_alg = alg;
	t->mgm_touch = a->p2 == SETMGM_P2_TOUCH;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	tg_wipe(key, sizeof(key));
	return sw;
}
