/*
 * tg_gate_secret.h — the credentials a policy's inject_headers name, read
 * by the gate (never by the policy parser): "file:/PATH" (the file's bytes,
 * one trailing newline removed; the file must be a regular file not
 * readable by group or others) or "env:NAME". Held in memory that is
 * wiped when freed; never logged, never in an error message (errors name
 * the route, header and source, not the value).
 */
#ifndef TG_GATE_SECRET_H
#define TG_GATE_SECRET_H

#include <stddef.h>

#include "tg_err.h"
#include "tg_gate_policy.h"

struct tg_gate_secrets;

/*
 * Reads every secret of every route of pol. 0 and *out, or TG_ERR_IO /
 * TG_ERR_PERMISSION / TG_ERR_NOT_FOUND / TG_ERR_CONFIG (empty value, a
 * newline or CR or NUL inside the value) naming route, header and source.
 */
int tg_gate_secrets_load(const struct tg_gate_policy *pol, struct tg_gate_secrets **out,
                         struct tg_error *err);

/*
 * The header value for route r, inject entry i: the entry's prefix then the
 * secret (borrowed, lives as long as s), its length in *len. NULL when out
 * of range.
 */
const char *tg_gate_secret_value(const struct tg_gate_secrets *s, size_t r, size_t i, size_t *len);

/* Wipes and frees s. NULL is accepted. */
void tg_gate_secrets_free(struct tg_gate_secrets *s);

#endif /* TG_GATE_SECRET_H */
