/*
 * render.h — `tokengate doctor`'s two outputs of one report: text for
 * people and one JSON object (jansson) for programs.
 */
#ifndef TG_DOCTOR_RENDER_H
#define TG_DOCTOR_RENDER_H

#include <stdio.h>

#include "report.h"

/*
 * Writes the report as text to f: USB, PC/SC, PKCS#11 sections, then one
 * line per problem ("<what>: <fix>"). Returns 0 or TG_ERR_IO.
 */
int tg_doctor_text_render(const struct tg_doctor_report *r, FILE *f);

/*
 * Writes the report to f as one JSON object with the members "usb",
 * "pcsc", "pkcs11" and "problems" (an array of {"what", "fix"}), then a
 * newline. Returns 0, TG_ERR_ALLOC or TG_ERR_IO.
 */
int tg_doctor_json_render(const struct tg_doctor_report *r, FILE *f);

#endif /* TG_DOCTOR_RENDER_H */
