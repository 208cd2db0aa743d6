/*
 * mgmt_app.c — the YubiKey management application (AID A000000527471117)
 * as Yubico's yubikit (ykman) reads it over CCID: SELECT answers the
 * firmware version as text, READ CONFIG (INS 1D) the device information
 * (one length byte, then TLVs: supported and enabled USB capabilities,
 * serial, form factor, firmware version, device flags, configuration
 * lock). The simulator has one application, PIV, so it reports PIV alone
 * as supported and enabled over USB and no NFC; configuration writes
 * (WRITE CONFIG 1C, SET MODE 16) are refused and change nothing.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "tg_err.h"
#include "tok-int.h"

static const uint8_t mgmt_aid[] = {0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17};

#define MGMT_INS_READ_CONFIG  0x1D
#define MGMT_INS_WRITE_CONFIG 0x1C
#define MGMT_INS_SET_MODE     0x16

/* yubikit management.py: device information tags */
#define MGMT_TAG_USB_SUPPORTED 0x01
#define MGMT_TAG_SERIAL        0x02
#define MGMT_TAG_USB_ENABLED   0x03
#define MGMT_TAG_FORM_FACTOR   0x04
#define MGMT_TAG_VERSION       0x05
#define MGMT_TAG_DEVICE_FLAGS  0x08
#define MGMT_TAG_CONFIG_LOCK   0x0A

#define MGMT_CAP_PIV    0x0010 /* yubikit CAPABILITY.PIV */
#define MGMT_INFO_MAX   64     /* the TLVs READ CONFIG answers */
#define MGMT_CONFIG_MAX 0xFF   /* a configuration's TLVs: one length byte */
#define DEC_BASE        10

/* Appends v in decimal ("0" to "255"). */
static int
put_dec(struct tg_buf *b, uint8_t v)
{
	uint8_t d[3];
	size_t n = 0;
	int r = 0;

	do {
		d[n++] = (uint8_t)('0' + v % DEC_BASE);
		v = (uint8_t)(v / DEC_BASE);
	} while (v > 0);
	while (r == 0 && n > 0)
		r = tg_buf_put_u8(b, d[--n]);
	return r;
}

int
tok_mgmt_app_select(struct tg_tok *t, const struct tg_buf *aid, struct tg_buf *out, uint16_t *sw)
{
	struct tg_buf rd = *aid;
	uint8_t sel[sizeof(mgmt_aid)];
	size_t i;
	int hit = 0;

	if (tg_buf_remaining(&rd) != sizeof(sel) || tg_buf_get_bytes(&rd, sel, sizeof(sel)) != 0 ||
	    CRYPTO_memcmp(sel, mgmt_aid, sizeof(sel)) != 0)
		goto out;
	hit = 1;
	t->v.app = TOK_APP_MGMT;
	*sw = TG_PIV_SW_OK;
	/* "5.4.3": yubikit takes the first x.y.z of the answer; a major
	 * version of 3 would make it treat the card as a NEO */
	for (i = 0; out != NULL && i < sizeof(t->version); i++) {
		if ((i > 0 && tg_buf_put_u8(out, '.') != 0) || put_dec(out, t->version[i]) != 0) {
			*sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
			break;
		}
	}
out:
	return hit;
}

/* The device information TLVs (without the length byte) into info. */
static int
device_info(const struct tg_tok *t, struct tg_buf *info)
{
	const uint8_t caps[2] = {0, MGMT_CAP_PIV};
	const uint8_t zero = 0;
	uint8_t serial[4];
	int r;

	serial[0] = (uint8_t)(t->serial >> 24);
	serial[1] = (uint8_t)(t->serial >> 16);
	serial[2] = (uint8_t)(t->serial >> 8);
	serial[3] = (uint8_t)t->serial;
	if ((r = tg_buf_put_tlv(info, MGMT_TAG_USB_SUPPORTED, caps, sizeof(caps))) != 0 ||
	    (r = tg_buf_put_tlv(info, MGMT_TAG_SERIAL, serial, sizeof(serial))) != 0 ||
	    (r = tg_buf_put_tlv(info, MGMT_TAG_USB_ENABLED, caps, sizeof(caps))) != 0 ||
	    (r = tg_buf_put_tlv(info, MGMT_TAG_FORM_FACTOR, &t->form_factor, 1)) != 0 ||
	    (r = tg_buf_put_tlv(info, MGMT_TAG_VERSION, t->version, sizeof(t->version))) != 0 ||
	    (r = tg_buf_put_tlv(info, MGMT_TAG_DEVICE_FLAGS, &zero, 1)) != 0 ||
	    (r = tg_buf_put_tlv(info, MGMT_TAG_CONFIG_LOCK, &zero, 1)) != 0)
		goto out;
out:
	return r;
}

static uint16_t
read_config(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint8_t mem[MGMT_INFO_MAX];
	struct tg_buf info;
	uint16_t sw;

	if ((sw = tok_apdu_bare(a)) != TG_PIV_SW_OK)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	tg_buf_writer(&info, mem, sizeof(mem));
	if (device_info(t, &info) != 0 || tg_buf_put_u8(out, (uint8_t)tg_buf_len(&info)) != 0 ||
	    tg_buf_put_buf(out, &info) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

/*
 * WRITE CONFIG (yubikit DeviceConfig.get_bytes): one length byte, then
 * TLVs. A well-formed configuration is refused with 6985 (conditions of
 * use not satisfied) — the simulator's applications cannot be changed —
 * a malformed one with 6700 (length byte) or 6A80 (TLVs).
 */
static uint16_t
write_config(struct tok_apdu *a)
{
	struct tg_buf v;
	uint32_t tag;
	uint8_t n = 0;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != 0 || a->p2 != 0)
		goto out;
	sw = TG_PIV_SW_WRONG_LENGTH;
	if (tg_buf_get_u8(&a->data, &n) != 0 || tg_buf_remaining(&a->data) != n)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	while (tg_buf_remaining(&a->data) > 0)
		if (tg_buf_get_tlv(&a->data, &tag, &v) != 0 || tag > MGMT_CONFIG_MAX)
			goto out;
	sw = TG_PIV_SW_CONDITIONS;
out:
	return sw;
}

uint16_t
tok_mgmt_app_dispatch(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	uint16_t sw = TG_PIV_SW_INS_NOT_SUPPORTED;

	switch (a->ins) {
	case MGMT_INS_READ_CONFIG:
		sw = read_config(t, a, out);
		break;
	case MGMT_INS_WRITE_CONFIG:
		sw = write_config(a);
		break;
	case MGMT_INS_SET_MODE:
		/* the USB mode of a YubiKey 4; a 5 takes WRITE CONFIG */
		sw = TG_PIV_SW_CONDITIONS;
		break;
	default:
		sw = TG_PIV_SW_INS_NOT_SUPPORTED;
		break;
	}
	return sw;
}
