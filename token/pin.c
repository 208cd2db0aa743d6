/*
 * pin.c — PIN and PUK: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER
 * (SP 800-73-4 Part 2, 3.2.1-3.2.3), SET PIN RETRIES and RESET (Yubico).
 *
 * Every check decrements the retry counter and persists it before the
 * compare (docs/architecture.md, rule 2), so cutting the power after a wrong guess
 * cannot give the guess back.
 */
#include <string.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

#define PIN_PAD          0xFF
#define VERIFY_P1_VERIFY 0x00
#define VERIFY_P1_LOGOUT 0xFF /* SP 800-73-4 Part 2, 3.2.1: reset status */
#define PIN_CHANGE_LEN   (2 * TOK_PIN_LEN)

static const char default_pin[] = "123456";
static const char default_puk[] = "12345678";

int
tok_pin_pad(const char *pin, uint8_t out[TOK_PIN_LEN])
{
	size_t n = strnlen(pin, TOK_PIN_LEN + 1);
	int r = TG_ERR_INVALID_ARG;

	if (n < TOK_PIN_MIN || n > TOK_PIN_LEN)
		goto out;
	memset(out, PIN_PAD, TOK_PIN_LEN);
	memcpy(out, pin, n);
	r = 0;
out:
	return r;
}

/* A new PIN/PUK value: 6 to 8 bytes other than FF, then FF padding. */
static int
pin_format_ok(const uint8_t v[TOK_PIN_LEN])
{
	size_t n = 0, i;
	int ok = 1;

	while (n < TOK_PIN_LEN && v[n] != PIN_PAD)
		n++;
	for (i = n; i < TOK_PIN_LEN; i++)
		if (v[i] != PIN_PAD)
			ok = 0;
	if (n < TOK_PIN_MIN)
		ok = 0;
	return ok;
}

static uint16_t
sw_tries(uint8_t left)
{
	return (uint16_t)(TG_PIV_SW_VERIFY_FAIL | (left > 0xF ? 0xF : left));
}

/*
 * Checks `given` against the PIN (ref 80) or PUK (81): decrement, persist,
 * compare, then restore the counter on a match. TG_PIV_SW_OK on a match, 6983
 * when blocked, 63Cx when wrong, 6581 when the decrement could not be
 * persisted (no compare then).
 */
static uint16_t
check_ref(struct tg_tok *t, uint8_t ref, const uint8_t given[TOK_PIN_LEN])
{
	uint8_t *tries = ref == TG_PIV_REF_PIN ? &t->pin_tries : &t->puk_tries;
	uint8_t max = ref == TG_PIV_REF_PIN ? t->pin_max : t->puk_max;
	const uint8_t *secret = ref == TG_PIV_REF_PIN ? t->pin : t->puk;
	uint16_t sw = TG_PIV_SW_AUTH_BLOCKED;

	if (*tries == 0)
		goto out;
	(*tries)--;
	sw = TG_PIV_SW_MEMORY_FAILURE;
	if (tok_persist(t) != 0)
		goto out;
	if (!tg_secret_eq(given, TOK_PIN_LEN, secret, TOK_PIN_LEN)) {
		sw = sw_tries(*tries);
		goto out;
	}
	*tries = max;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	return sw;
}

uint16_t
tok_verify(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t given[TOK_PIN_LEN];
	size_t n = tg_buf_remaining(&a->data);
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != VERIFY_P1_VERIFY && a->p1 != VERIFY_P1_LOGOUT)
		goto out;
	sw = TG_PIV_SW_REF_NOT_FOUND;
	if (a->p2 != TG_PIV_REF_PIN)
		goto out;
	if (a->p1 == VERIFY_P1_LOGOUT) {
		sw = TG_PIV_SW_WRONG_LENGTH;
		if (n != 0)
			goto out;
		t->v.pin_ok = t->v.pin_fresh = 0;
		sw = TG_PIV_SW_OK;
		goto out;
	}
	if (n == 0) {
		/* SP 800-73-4 Part 2, 3.2.1: status query with Lc absent */
		if (t->pin_tries == 0)
			sw = TG_PIV_SW_AUTH_BLOCKED;
		else if (t->v.pin_ok)
			sw = TG_PIV_SW_OK;
		else
			sw = sw_tries(t->pin_tries);
		goto out;
	}
	sw = TG_PIV_SW_WRONG_DATA;
	if (n != TOK_PIN_LEN || tg_buf_get_bytes(&a->data, given, TOK_PIN_LEN) != 0)
		goto out;
	/* ISO 7816-4: a failed verification resets the security status */
	t->v.pin_ok = t->v.pin_fresh = 0;
	sw = check_ref(t, TG_PIV_REF_PIN, given);
	if (sw == TG_PIV_SW_OK)
		t->v.pin_ok = t->v.pin_fresh = 1;
out:
	tg_wipe(given, sizeof(given));
	return sw;
}

uint16_t
tok_change_reference(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t buf[PIN_CHANGE_LEN];
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	memset(buf, 0, sizeof(buf));
	if (a->p1 != 0)
		goto out;
	sw = TG_PIV_SW_REF_NOT_FOUND;
	if (a->p2 != TG_PIV_REF_PIN && a->p2 != TG_PIV_REF_PUK)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (tg_buf_remaining(&a->data) != PIN_CHANGE_LEN ||
	    tg_buf_get_bytes(&a->data, buf, PIN_CHANGE_LEN) != 0)
		goto out;
	/* The current value first, then the new one's format, as on a
	 * YubiKey: ykman's reset blocks PIN and PUK with all-FF values and
	 * counts on 63Cx answers. */
	if ((sw = check_ref(t, a->p2, buf)) != TG_PIV_SW_OK) {
		/* like a failed VERIFY (ISO 7816-4): a wrong current PIN ends
		 * the verified state, so a guess cannot ride on an earlier
		 * VERIFY */
		if (a->p2 == TG_PIV_REF_PIN)
			t->v.pin_ok = t->v.pin_fresh = 0;
		goto out;
	}
	sw = TG_PIV_SW_WRONG_DATA;
	if (!pin_format_ok(buf + TOK_PIN_LEN))
		goto out;
	memcpy(a->p2 == TG_PIV_REF_PIN ? t->pin : t->puk, buf + TOK_PIN_LEN, TOK_PIN_LEN);
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	tg_wipe(buf, sizeof(buf));
	return sw;
}

uint16_t
tok_reset_retry(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t buf[PIN_CHANGE_LEN];
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	memset(buf, 0, sizeof(buf));
	if (a->p1 != 0)
		goto out;
	sw = TG_PIV_SW_REF_NOT_FOUND;
	if (a->p2 != TG_PIV_REF_PIN)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (tg_buf_remaining(&a->data) != PIN_CHANGE_LEN ||
	    tg_buf_get_bytes(&a->data, buf, PIN_CHANGE_LEN) != 0)
		goto out;
	/* the PUK first (see tok_change_reference) */
	if ((sw = check_ref(t, TG_PIV_REF_PUK, buf)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (!pin_format_ok(buf + TOK_PIN_LEN))
		goto out;
	memcpy(t->pin, buf + TOK_PIN_LEN, TOK_PIN_LEN);
	t->pin_tries = t->pin_max;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	tg_wipe(buf, sizeof(buf));
	return sw;
}

uint16_t
tok_set_pin_retries(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint16_t sw = TG_PIV_SW_WRONG_LENGTH;

	if (tg_buf_remaining(&a->data) != 0)
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (!t->v.mgm_ok || !t->v.pin_ok)
		goto out;
	sw = TG_PIV_SW_INCORRECT_P1P2;
	if (a->p1 == 0 || a->p2 == 0)
		goto out;
	/* Yubico: PIN and PUK go back to their defaults */
	(void)tok_pin_pad(default_pin, t->pin);
	(void)tok_pin_pad(default_puk, t->puk);
	t->pin_max = t->pin_tries = a->p1;
	t->puk_max = t->puk_tries = a->p2;
	t->v.pin_ok = t->v.pin_fresh = 0;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	return sw;
}

uint16_t
tok_factory_reset(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	size_t i;
	uint16_t sw;

	if ((sw = tok_apdu_bare(a)) != TG_PIV_SW_OK)
		goto out;
	/* Yubico: only a card whose PIN and PUK are both blocked resets */
	sw = TG_PIV_SW_CONDITIONS;
	if (t->pin_tries != 0 || t->puk_tries != 0)
		goto out;
	for (i = 0; i < TG_PIV_NSLOTS; i++)
		if (t->slots[i].id != TG_PIV_SLOT_ATTEST)
			tok_slot_clear(&t->slots[i]);
	/* the attestation certificate is the device's, it survives; every
	 * other object (ykman's PIVMAN data too) goes */
	tok_obj_clear_except(t, TG_PIV_OBJ_ATTEST);
	sw = TG_PIV_SW_MEMORY_FAILURE;
	if (tok_obj_factory(t) != 0)
		goto out;
	(void)tok_pin_pad(default_pin, t->pin);
	(void)tok_pin_pad(default_puk, t->puk);
	t->pin_max = t->pin_tries = TOK_DEFAULT_TRIES;
	t->puk_max = t->puk_tries = TOK_DEFAULT_TRIES;
	tg_wipe(t->mgm_key, sizeof(t->mgm_key));
	memcpy(t->mgm_key, tok_mgm_default, sizeof(tok_mgm_default));
	t->mgm_len = sizeof(tok_mgm_default);
	t->mgm_alg = TG_PIV_ALG_3DES;
	t->mgm_touch = 0;
	tok_vol_clear(t);
	t->v.app = TOK_APP_PIV;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	return sw;
}
