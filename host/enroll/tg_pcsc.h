/*
 * tg_pcsc.h — the PC/SC transport of `tokengate enroll` (pcsc-lite).
 *
 * Opens one reader (chosen by exact name or a unique substring), connects
 * to its card with T=1 and exchanges short APDUs: command chaining (CLA
 * bit 0x10) for commands with more than 255 data bytes, GET RESPONSE for
 * `61 xx` answers. Every response is collected into a struct tg_buf; the
 * status word is handed back separately for the caller to map
 * (tg_pivc_sw_error).
 */
#ifndef TG_PCSC_H
#define TG_PCSC_H

#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"

#define TG_PCSC_SHORT_MAX 255         /* data bytes of one short command */
#define TG_PCSC_RSP_MAX   (16 * 1024) /* whole response after GET RESPONSE */

struct tg_pcsc;

/*
 * Picks a reader from a PC/SC multi-string (names separated by NUL, ended
 * by an empty name; n bytes at list, as SCardListReaders gives it): the one
 * named exactly `want`, else the only one containing `want`. Writes the name
 * into out (size outlen). Errors (message lists the readers present):
 * TG_ERR_NOT_FOUND (none matches, or no reader at all), TG_ERR_INVALID_ARG
 * (several contain `want`), TG_ERR_FORMAT (list not NUL-terminated).
 */
int tg_pcsc_reader_pick(const uint8_t *list, size_t n, const char *want, char *out, size_t outlen,
                        struct tg_error *err);

/*
 * Establishes a PC/SC context, picks the reader (tg_pcsc_reader_pick) and
 * connects to its card (shared, T=1). 0 and *out (free with
 * tg_pcsc_close), or TG_ERR_PCSC / TG_ERR_NOT_FOUND with a message naming
 * the reader, the PC/SC error and the fix (start pcscd, insert the token).
 */
int tg_pcsc_open(const char *reader, struct tg_pcsc **out, struct tg_error *err);

/* Disconnects (resetting the card, which clears PIN and management-key
 * authentication) and releases the context. NULL is accepted. */
void tg_pcsc_close(struct tg_pcsc *p);

/* The full name of the connected reader (borrowed). */
const char *tg_pcsc_reader(const struct tg_pcsc *p);

/*
 * Sends one command (CLA 00, INS, P1, P2, n data bytes; chained when n >
 * 255; Le 00 when want_le) and appends every response data byte to rsp
 * (a growable tg_buf), following 61xx with GET RESPONSE. *sw gets the final
 * status word. Returns 0 whenever the card answered (check *sw), or
 * TG_ERR_PCSC / TG_ERR_CARD_REMOVED / TG_ERR_FORMAT (response shorter than
 * a status word, or over TG_PCSC_RSP_MAX) naming the reader.
 */
int tg_pcsc_transmit(struct tg_pcsc *p, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
                     size_t n, int want_le, struct tg_buf *rsp, uint16_t *sw, struct tg_error *err);

#endif /* TG_PCSC_H */
