/*
 * piv.h — the PIV probe of `tokengate doctor`: does a card still use its
 * factory PIN, PUK or management key. Asked with Yubico's GET METADATA
 * (INS F7, firmware 5.3+; our simulator answers it too), whose "default
 * value" item (tag 05) says so without a PIN being tried: no retry counter
 * changes and nothing is verified.
 */
#ifndef TG_DOCTOR_PIV_H
#define TG_DOCTOR_PIV_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* Key references of GET METADATA (SP 800-73-4 Part 1, 5.3; Yubico). */
#define TG_DOCTOR_PIV_REF_PIN 0x80
#define TG_DOCTOR_PIV_REF_PUK 0x81
#define TG_DOCTOR_PIV_REF_MGM 0x9B

/*
 * Reads the "default value" item (tag 05, one byte) of a GET METADATA
 * response body (the n bytes at p, status word removed): 0 and *isdef
 * (TG_DOCTOR_DEFAULT_YES or _NO); TG_ERR_NOT_FOUND when the well-formed
 * response has no such item; TG_ERR_FORMAT / TG_ERR_TRUNCATED for a
 * malformed response or an item that is not one byte of 00 or 01. *isdef
 * is written only on success.
 */
int tg_doctor_piv_default_parse(const uint8_t *p, size_t n, int *isdef);

/*
 * For each reader of r->pcsc with a card that answers (not mute,
 * unavailable or held exclusively): connects in shared mode, selects the
 * PIV application, asks GET METADATA for the PIN, PUK and management key,
 * and disconnects leaving the card as it was (no reset: other programs'
 * logins stay). Fills the reader's piv and *_default fields and adds a
 * problem with its fix for each factory value still in use. Cards that
 * are not PIV cards or have no GET METADATA are left out silently. Does
 * nothing when pcscd was not reachable. Returns 0, or TG_ERR_ALLOC.
 */
int tg_doctor_piv_probe(struct tg_doctor_report *r);

#endif /* TG_DOCTOR_PIV_H */
