/*
 * known.h — what `tokengate doctor` knows about tokens without asking them:
 * USB vendor ids of token and reader makers, and ATRs (answers to reset,
 * ISO/IEC 7816-3) that identify a kind of card.
 *
 * Pure lookups over caller data; no I/O.
 */
#ifndef TG_DOCTOR_KNOWN_H
#define TG_DOCTOR_KNOWN_H

#include <stddef.h>
#include <stdint.h>

/* ISO/IEC 7816-3 8.2: an ATR is at most 33 bytes (TS plus 32). */
#define TG_DOCTOR_ATR_MAX 33
/* ISO/IEC 7816-3 8.2.2: T0's low nibble counts the historical bytes. */
#define TG_DOCTOR_ATR_HIST_MAX 15

/*
 * The name of a maker of security tokens or smart card readers by USB
 * vendor id ("Yubico" for 0x1050), or NULL when the id is not in the table.
 * The string is static.
 */
const char *tg_doctor_vendor_find(uint16_t vid);

/* An ATR split into the parts doctor looks at. */
struct tg_doctor_atr {
	unsigned protocols; /* bit n set: T=n offered (T=0 when no TD1) */
	int has_tck;        /* a check byte was present (and was correct) */
	uint8_t hist[TG_DOCTOR_ATR_HIST_MAX];
	size_t hist_len;
};

/*
 * Parses the n bytes of an ATR at atr into *out (ISO/IEC 7816-3 8.2).
 * Returns 0, TG_ERR_INVALID_ARG (NULL pointers), TG_ERR_TRUNCATED (cut
 * short), TG_ERR_FORMAT (TS is neither 3B nor 3F, or the TCK check byte
 * does not match) or TG_ERR_TRAILING (bytes after the ATR). *out is
 * written only on success.
 */
int tg_doctor_atr_parse(const uint8_t *atr, size_t n, struct tg_doctor_atr *out);

/*
 * A one-line hint about the card behind an ATR, e.g. "YubiKey-compatible
 * PIV token", "malformed ATR ...", or NULL when nothing is known. The
 * string is static.
 */
const char *tg_doctor_atr_hint_find(const uint8_t *atr, size_t n);

#endif /* TG_DOCTOR_KNOWN_H */
