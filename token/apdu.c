/*
 * apdu.c — command APDU framing (ISO/IEC 7816-3 12.1, short and extended APDUs),
 * command chaining (CLA bit 10) and response chaining (61xx + GET RESPONSE).
 */
#include <string.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

#define APDU_HDR_LEN 4

/* An expected length as the card serves it: at most TOK_SHORT_MAX bytes
 * per response, the rest through 61xx and GET RESPONSE. */
static size_t
le_clamp(size_t le)
{
	return le > TOK_SHORT_MAX ? TOK_SHORT_MAX : le;
}

/* ISO/IEC 7816-3 12.1.3: the body after P3 = 00 of an extended APDU
 * (case 2E: Le in 2 bytes; 3E: Lc in 2 bytes, data; 4E: Lc, data, Le). */
static uint16_t
parse_extended(struct tg_buf *b, struct tok_apdu *a)
{
	uint16_t n = 0, le = 0, sw = TG_PIV_SW_WRONG_LENGTH;

	if (tg_buf_get_u16(b, &n) != 0)
		goto out;
	if (tg_buf_remaining(b) == 0) {
		a->le = le_clamp(n == 0 ? TOK_EXT_MAX : n); /* case 2E */
		sw = TG_PIV_SW_OK;
		goto out;
	}
	if (n == 0 || tg_buf_get_sub(b, n, &a->data) != 0)
		goto out;
	if (tg_buf_remaining(b) == 2) {
		(void)tg_buf_get_u16(b, &le);
		a->le = le_clamp(le == 0 ? TOK_EXT_MAX : le); /* case 4E */
	}
	if (tg_buf_expect_end(b) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_apdu_parse(const uint8_t *cmd, size_t len, struct tok_apdu *a)
{
	struct tg_buf b;
	uint8_t p3 = 0, le = 0;
	uint16_t sw = TG_PIV_SW_WRONG_LENGTH;

	memset(a, 0, sizeof(*a));
	tg_buf_reader(&b, cmd, len);
	if (tg_buf_get_u8(&b, &a->cla) != 0 || tg_buf_get_u8(&b, &a->ins) != 0 ||
	    tg_buf_get_u8(&b, &a->p1) != 0 || tg_buf_get_u8(&b, &a->p2) != 0)
		goto out;
	tg_buf_reader(&a->data, NULL, 0);
	if (tg_buf_remaining(&b) == 0) {
		sw = TG_PIV_SW_OK; /* case 1 */
		goto out;
	}
	(void)tg_buf_get_u8(&b, &p3);
	if (tg_buf_remaining(&b) == 0) {
		/* Case 2 (P3 = Le). yubico-piv-tool also sends a lone P3 = 00
		 * for "no data" (VERIFY status query): no data either way. */
		a->le = p3 == 0 ? TOK_SHORT_MAX : p3;
		sw = TG_PIV_SW_OK;
		goto out;
	}
	/* P3 = 00 followed by more bytes is an extended APDU: yubikit
	 * (ykman) sends every PIV command that way to a YubiKey 4 or later,
	 * which accepts them. */
	if (p3 == 0) {
		sw = parse_extended(&b, a);
		goto out;
	}
	if (tg_buf_get_sub(&b, p3, &a->data) != 0)
		goto out;
	if (tg_buf_remaining(&b) == 1) {
		(void)tg_buf_get_u8(&b, &le);
		a->le = le == 0 ? TOK_SHORT_MAX : le; /* case 4 */
	}
	if (tg_buf_expect_end(&b) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_apdu_bare(const struct tok_apdu *a)
{
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != 0 || a->p2 != 0)
		goto out;
	sw = TG_PIV_SW_WRONG_LENGTH;
	if (tg_buf_remaining(&a->data) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

static void
put_sw(uint8_t *rsp, size_t *n, uint16_t sw)
{
	rsp[(*n)++] = (uint8_t)(sw >> 8);
	rsp[(*n)++] = (uint8_t)(sw & 0xFF);
}

/* Copies the next part of the pending response into rsp and sets the SW:
 * 9000 when it was the last part, 61xx (bytes still waiting) otherwise. */
static void
emit_pending(struct tg_tok *t, size_t le, uint8_t *rsp, size_t *n)
{
	struct tok_vol *v = &t->v;
	size_t left = v->rsp_len - v->rsp_off;
	size_t chunk = left;
	uint16_t sw = TG_PIV_SW_OK;

	if (chunk > TOK_SHORT_MAX)
		chunk = TOK_SHORT_MAX;
	if (le != 0 && chunk > le)
		chunk = le;
	if (chunk > 0)
		memcpy(rsp, v->rsp + v->rsp_off, chunk);
	*n = chunk;
	v->rsp_off += chunk;
	left -= chunk;
	if (left > 0)
		sw = (uint16_t)(TG_PIV_SW_BYTES_REMAINING | (left > 0xFF ? 0 : left));
	else
		v->rsp_len = v->rsp_off = 0;
	put_sw(rsp, n, sw);
}

static void
chain_abort(struct tok_vol *v)
{
	tg_wipe(v->chain, v->chain_len);
	v->chain_len = 0;
	v->chaining = 0;
}

/*
 * Handles a command with the chaining bit or the last part of a chain.
 * Returns TG_PIV_SW_OK with *done = 0 when the command is complete (a->data then
 * reads the whole chained data), or a status word to answer with *done = 1.
 */
static uint16_t
chain_step(struct tok_vol *v, struct tok_apdu *a, int *done)
{
	size_t n = tg_buf_remaining(&a->data);
	uint16_t sw = TG_PIV_SW_OK;

	*done = 1;
	if (v->chaining &&
	    (a->ins != v->chain_ins || a->p1 != v->chain_p1 || a->p2 != v->chain_p2)) {
		/* ISO 7816-4 5.1.1.1: a chain is continued by the same command */
		chain_abort(v);
		sw = TG_PIV_SW_LAST_CMD_EXPECTED;
		goto out;
	}
	if (n > TOK_CHAIN_MAX - v->chain_len) {
		chain_abort(v);
		sw = TG_PIV_SW_WRONG_LENGTH;
		goto out;
	}
	if (tg_buf_get_bytes(&a->data, v->chain + v->chain_len, n) != 0) {
		chain_abort(v);
		sw = TG_PIV_SW_WRONG_LENGTH;
		goto out;
	}
	v->chain_len += n;
	if (a->cla & TG_PIV_CLA_CHAIN) {
		v->chaining = 1;
		v->chain_ins = a->ins;
		v->chain_p1 = a->p1;
		v->chain_p2 = a->p2;
		goto out;
	}
	/* last part: the command runs over the whole buffer */
	tg_buf_reader(&a->data, v->chain, v->chain_len);
	v->chaining = 0;
	*done = 0;
out:
	return sw;
}

int
tg_tok_apdu(struct tg_tok *t, const uint8_t *cmd, size_t cmdlen, uint8_t *rsp, size_t rspcap,
            size_t *rsplen)
{
	struct tok_apdu a;
	struct tg_buf out;
	struct tok_vol *v;
	uint16_t sw;
	size_t n = 0;
	int done = 1;
	int r = TG_ERR_INVALID_ARG;

	if (t == NULL || rsp == NULL || rsplen == NULL || rspcap < TOK_SHORT_MAX + 2 ||
	    (cmd == NULL && cmdlen > 0))
		goto out;
	v = &t->v;
	r = 0;
	if ((sw = tok_apdu_parse(cmd, cmdlen, &a)) != TG_PIV_SW_OK)
		goto fail;
	if ((a.cla & ~TG_PIV_CLA_CHAIN) != TG_PIV_CLA_ISO) {
		sw = TG_PIV_SW_CLA_NOT_SUPPORTED;
		goto fail;
	}
	if (a.ins == TG_PIV_INS_GET_RESPONSE && v->rsp_len > 0 && !v->chaining) {
		if (a.cla != TG_PIV_CLA_ISO || a.p1 != 0 || a.p2 != 0) {
			/* a bad GET RESPONSE leaves the pending data in place */
			put_sw(rsp, &n, TG_PIV_SW_INCORRECT_P1P2);
			goto done;
		}
		emit_pending(t, a.le, rsp, &n);
		goto done;
	}
	/* any other command drops a response not fetched */
	v->rsp_len = v->rsp_off = 0;
	if (a.ins == TG_PIV_INS_GET_RESPONSE) {
		sw = TG_PIV_SW_CONDITIONS;
		goto fail;
	}
	if ((a.cla & TG_PIV_CLA_CHAIN) || v->chaining) {
		if ((sw = chain_step(v, &a, &done)) != TG_PIV_SW_OK || done)
			goto fail; /* TG_PIV_SW_OK here: part accepted, no data */
	}
	tg_buf_writer(&out, v->rsp, sizeof(v->rsp));
	sw = tok_piv_dispatch(t, &a, &out);
	chain_abort(v);
	if (sw != TG_PIV_SW_OK) {
		tg_wipe(v->rsp, sizeof(v->rsp));
		goto fail;
	}
	v->rsp_len = tg_buf_len(&out);
	v->rsp_off = 0;
	emit_pending(t, a.le, rsp, &n);
	goto done;
fail:
	v->rsp_len = v->rsp_off = 0;
	n = 0;
	put_sw(rsp, &n, sw);
done:
	*rsplen = n;
out:
	return r;
}
