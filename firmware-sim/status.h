/*
 * status.h — how `tokengate-sim status` shows a token: serial, firmware,
 * slots (algorithm, origin, policies, certificate subject), PIN/PUK tries
 * left and the private-key operation count, as text or as one JSON object.
 */
#ifndef TG_SIM_STATUS_H
#define TG_SIM_STATUS_H

#include <stdio.h>

#include "tg_tok.h"

/* Writes info to out as text (json 0) or one JSON object and a newline
 * (json 1; field private_key_operations holds the count). Returns 0, or
 * TG_ERR_ALLOC / TG_ERR_IO. */
int tg_sim_status_print(const struct tg_tok_info *info, int json, FILE *out);

#endif /* TG_SIM_STATUS_H */
