/*
 * tg_dec.h — integers as decimal text without printf, for the text made
 * once per request (audit record numbers, HTTP status lines and
 * Content-Length): the same digits as "%llu" / "%lld". Part of tgcore.
 */
#ifndef TG_DEC_H
#define TG_DEC_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest text, "-9223372036854775808", and its NUL. */
#define TG_DEC_MAX 21

/* Writes v in decimal and a NUL into out (TG_DEC_MAX bytes); returns the
 * text's length (1 to 20). */
size_t tg_dec_u64(uint64_t v, char out[TG_DEC_MAX]);

/* Like tg_dec_u64, with a '-' before a negative v (INT64_MIN included). */
size_t tg_dec_i64(int64_t v, char out[TG_DEC_MAX]);

#endif /* TG_DEC_H */
