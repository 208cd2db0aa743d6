/* known.c — USB vendor table and ATR hints for `tokengate doctor`. */
#include "known.h"

#include <ctype.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_err.h"

/* ISO/IEC 7816-3 8.1: initial character, direct or inverse convention. */
#define ATR_TS_DIRECT  0x3B
#define ATR_TS_INVERSE 0x3F
/* ISO/IEC 7816-3 8.2.2/8.2.3: presence bits of TAi, TBi, TCi, TDi in Yi. */
#define ATR_Y_TA   0x1
#define ATR_Y_TB   0x2
#define ATR_Y_TC   0x4
#define ATR_Y_TD   0x8
#define ATR_T_MASK 0x0F
/* ISO/IEC 7816-3 8.2.3: T=15 qualifies global interface bytes only. */
#define ATR_T_GLOBAL 15

struct vendor {
	uint16_t vid;
	const char *name;
};

/* USB-IF vendor ids of makers of security tokens and smart card readers. */
static const struct vendor vendors[] = {
    {0x046a, "Cherry"},
    {0x04e6, "Identiv (SCM Microsystems)"},
    {0x0529, "SafeNet (Aladdin eToken)"},
    {0x072f, "Advanced Card Systems (ACS)"},
    {0x076b, "HID Global (OMNIKEY)"},
    {0x08e6, "Thales (Gemalto)"},
    {0x096e, "Feitian"},
    {0x0a89, "Aktiv (Rutoken)"},
    {0x0c4b, "REINER SCT"},
    {0x0dc3, "Athena Smartcard Solutions"},
    {0x1050, "Yubico"},
    {0x1a44, "VASCO Data Security"},
    {0x20a0, "Nitrokey"},
    {0x24dc, "Aladdin R.D. (JaCarta)"},
};

struct atr_hint {
	uint8_t atr[TG_DOCTOR_ATR_MAX];
	size_t len;
	const char *hint;
};

#define YUBIKEY_PIV_HINT "YubiKey-compatible PIV token"

/* Whole ATRs that name a card. */
static const struct atr_hint atr_hints[] = {
    {{0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0,
      0x21, 0xC0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40},
     23,
     YUBIKEY_PIV_HINT " (YubiKey 5 ATR)"},
    {{0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x59, 0x75, 0x62, 0x69, 0x6B, 0x65,
      0x79, 0x34, 0xD4},
     18,
     YUBIKEY_PIV_HINT " (YubiKey 4 ATR)"},
    {{0x3B, 0x80, 0x80, 0x01, 0x01},
     5,
     "generic ATR without historical bytes: OpenSC may pick a card type "
     "without EC support"},
};

/* Historical bytes of YubiKeys name the product in ASCII. */
static const char yubikey_tag[] = "yubikey";

const char *
tg_doctor_vendor_find(uint16_t vid)
{
	size_t i;
	const char *name = NULL;

	for (i = 0; i < sizeof(vendors) / sizeof(vendors[0]); i++) {
		if (vendors[i].vid == vid) {
			name = vendors[i].name;
			break;
		}
	}
	return name;
}

/* XOR of every byte after TS, TCK included: 0 when the check byte fits. */
static int
atr_tck_check(const uint8_t *atr, size_t n)
{
	struct tg_buf b;
	uint8_t v, x = 0;
	int r;

	tg_buf_reader(&b, atr, n);
	if ((r = tg_buf_skip(&b, 1)) != 0)
		goto out;
	while (tg_buf_remaining(&b) > 0) {
		if ((r = tg_buf_get_u8(&b, &v)) != 0)
			goto out;
		x ^= v;
	}
	r = x == 0 ? 0 : TG_ERR_FORMAT;
out:
	return r;
}

/* Reads the interface bytes announced by y (TAi..TDi); *td gets TDi or
 * 0 when absent. */
static int
atr_iface_get(struct tg_buf *b, uint8_t y, int *has_td, uint8_t *td)
{
	uint8_t v;
	int r = 0;

	*has_td = 0;
	if ((y & ATR_Y_TA) && (r = tg_buf_get_u8(b, &v)) != 0)
		goto out;
	if ((y & ATR_Y_TB) && (r = tg_buf_get_u8(b, &v)) != 0)
		goto out;
	if ((y & ATR_Y_TC) && (r = tg_buf_get_u8(b, &v)) != 0)
		goto out;
	if (y & ATR_Y_TD) {
		if ((r = tg_buf_get_u8(b, td)) != 0)
			goto out;
		*has_td = 1;
	}
out:
	return r;
}

int
tg_doctor_atr_parse(const uint8_t *atr, size_t n, struct tg_doctor_atr *out)
{
	struct tg_doctor_atr a;
	struct tg_buf b;
	uint8_t ts, t0, td = 0, y, t, tck;
	int has_td, r;

	memset(&a, 0, sizeof(a));
	if (atr == NULL || out == NULL) {
		r = TG_ERR_INVALID_ARG;
		goto out;
	}
	tg_buf_reader(&b, atr, n);
	if ((r = tg_buf_get_u8(&b, &ts)) != 0)
		goto out;
	if (ts != ATR_TS_DIRECT && ts != ATR_TS_INVERSE) {
		r = TG_ERR_FORMAT;
		goto out;
	}
	if ((r = tg_buf_get_u8(&b, &t0)) != 0)
		goto out;
	a.hist_len = t0 & 0x0F;
	y = (uint8_t)(t0 >> 4);
	/* The ATR's 33-byte bound ends this loop: each round consumes TDi. */
	for (;;) {
		if ((r = atr_iface_get(&b, y, &has_td, &td)) != 0)
			goto out;
		if (!has_td)
			break;
		t = td & ATR_T_MASK;
		if (t != ATR_T_GLOBAL)
			a.protocols |= 1u << t;
		/* 8.2.5: TCK is present unless T=0 is the only protocol. */
		if (t != 0)
			a.has_tck = 1;
		y = (uint8_t)(td >> 4);
	}
	if (a.protocols == 0)
		a.protocols = 1u; /* no TD1: T=0 */
	if ((r = tg_buf_get_bytes(&b, a.hist, a.hist_len)) != 0)
		goto out;
	if (a.has_tck) {
		if ((r = tg_buf_get_u8(&b, &tck)) != 0)
			goto out;
		if ((r = atr_tck_check(atr, n - tg_buf_remaining(&b))) != 0)
			goto out;
	}
	if ((r = tg_buf_expect_end(&b)) != 0)
		goto out;
	*out = a;
	r = 0;
out:
	return r;
}

/* 1 if the historical bytes carry "yubikey" in any case. */
static int
hist_has_yubikey(const struct tg_doctor_atr *a)
{
	size_t i, j, tl = sizeof(yubikey_tag) - 1;
	int found = 0;

	for (i = 0; !found && i + tl <= a->hist_len; i++) {
		for (j = 0; j < tl && tolower(a->hist[i + j]) == yubikey_tag[j]; j++)
			continue;
		found = j == tl;
	}
	return found;
}

const char *
tg_doctor_atr_hint_find(const uint8_t *atr, size_t n)
{
	struct tg_doctor_atr a;
	const char *hint = NULL;
	size_t i;

	if (atr == NULL || n == 0)
		goto out;
	if (tg_doctor_atr_parse(atr, n, &a) != 0) {
		hint = "malformed ATR: the card or the reader driver is faulty";
		goto out;
	}
	for (i = 0; i < sizeof(atr_hints) / sizeof(atr_hints[0]); i++) {
		if (atr_hints[i].len == n && memcmp(atr_hints[i].atr, atr, n) == 0) {
			hint = atr_hints[i].hint;
			goto out;
		}
	}
	if (hist_has_yubikey(&a))
		hint = YUBIKEY_PIV_HINT;
	else if (!(a.protocols & 2u))
		hint = "card offers T=0 only (yubico-piv-tool needs T=1)";
out:
	return hint;
}
