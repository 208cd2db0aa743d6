/*
 * piv.c — the card's command dispatcher and SELECT (SP 800-73-4 Part 2,
 * 3.1.1: the PIV application, or the YubiKey management application of
 * mgmt_app.c), GET VERSION and GET SERIAL (Yubico).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "tg_err.h"
#include "tok-int.h"

/* SP 800-73-4 Part 1, 2.2: the PIV AID with its version (PIX 0000 1000 0100) */
static const uint8_t piv_aid[] = {0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00};
#define PIV_RID_LEN      5
#define SELECT_P1_BY_AID 0x04
#define SELECT_P2_FIRST  0x00
#define SELECT_P2_NO_FCI 0x0C /* ISO 7816-4: no response data */

uint16_t
tok_select(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t aid[sizeof(piv_aid)];
	size_t n = tg_buf_remaining(&a->data);
	size_t mark1, mark2;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != SELECT_P1_BY_AID || (a->p2 != SELECT_P2_FIRST && a->p2 != SELECT_P2_NO_FCI))
		goto out;
	if (tok_mgmt_app_select(t, &a->data, a->p2 == SELECT_P2_NO_FCI ? NULL : out, &sw))
		goto out;
	/* The full PIV AID, the AID without version, or the RID alone
	 * (yubico-piv-tool sends the 5-byte prefix). Anything else is
	 * another application, which this card does not have. */
	sw = TG_PIV_SW_FILE_NOT_FOUND;
	if (n < PIV_RID_LEN || n > sizeof(aid))
		goto out;
	if (tg_buf_get_bytes(&a->data, aid, n) != 0 || CRYPTO_memcmp(aid, piv_aid, n) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
	t->v.app = TOK_APP_PIV;
	if (a->p2 == SELECT_P2_NO_FCI)
		goto out;
	/* SP 800-73-4 Part 2, 3.1.1: application property template */
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_APT, &mark1) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_AID, piv_aid + PIV_RID_LEN,
	                   sizeof(piv_aid) - PIV_RID_LEN) != 0 ||
	    tg_buf_tlv_begin(out, TG_PIV_TAG_AUTHORITY, &mark2) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_TAG_AID, piv_aid, PIV_RID_LEN) != 0 ||
	    tg_buf_tlv_end(out, mark2) != 0 || tg_buf_tlv_end(out, mark1) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

static uint16_t
get_version(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint16_t sw;

	if ((sw = tok_apdu_bare(a)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tg_buf_put_bytes(out, t->version, sizeof(t->version)) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

static uint16_t
get_serial(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint16_t sw;

	if ((sw = tok_apdu_bare(a)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tg_buf_put_u32(out, t->serial) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_piv_dispatch(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint16_t sw = TG_PIV_SW_INS_NOT_SUPPORTED;

	if (a->ins == TG_PIV_INS_SELECT) {
		sw = tok_select(t, a, out);
		goto out;
	}
	if (t->v.app == TOK_APP_MGMT) {
		sw = tok_mgmt_app_dispatch(t, a, out);
		goto out;
	}
	/* Like a YubiKey's PIV applet: until it is selected, the card has
	 * no application to run anything else. */
	if (t->v.app != TOK_APP_PIV)
		goto out;
	switch (a->ins) {
	case TG_PIV_INS_GET_DATA:
		sw = tok_get_data(t, a, out);
		break;
	case TG_PIV_INS_PUT_DATA:
		sw = tok_put_data(t, a, out);
		break;
	case TG_PIV_INS_VERIFY:
		sw = tok_verify(t, a, out);
		break;
	case TG_PIV_INS_CHANGE_REFERENCE:
		sw = tok_change_reference(t, a, out);
		break;
	case TG_PIV_INS_RESET_RETRY:
		sw = tok_reset_retry(t, a, out);
		break;
	case TG_PIV_INS_GENERATE:
		sw = tok_generate(t, a, out);
		break;
	case TG_PIV_INS_GENERAL_AUTH:
		sw = tok_general_auth(t, a, out);
		break;
	case TG_PIV_INS_GET_CHALLENGE:
		sw = tok_get_challenge(t, a, out);
		break;
	case TG_PIV_INS_SET_MGMKEY:
		sw = tok_set_mgm_key(t, a, out);
		break;
	case TG_PIV_INS_IMPORT_KEY:
		sw = tok_import(t, a, out);
		break;
	case TG_PIV_INS_GET_VERSION:
		sw = get_version(t, a, out);
		break;
	case TG_PIV_INS_RESET:
		sw = tok_factory_reset(t, a, out);
		break;
	case TG_PIV_INS_SET_PIN_RETRIES:
		sw = tok_set_pin_retries(t, a, out);
		break;
	case TG_PIV_INS_ATTEST:
		sw = tok_attest(t, a, out);
		break;
	case TG_PIV_INS_GET_SERIAL:
		sw = get_serial(t, a, out);
		break;
	case TG_PIV_INS_GET_METADATA:
		sw = tok_metadata(t, a, out);
		break;
	default:
		sw = TG_PIV_SW_INS_NOT_SUPPORTED;
		break;
	}
out:
	return sw;
}
