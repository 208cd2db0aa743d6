/*
 * tg_hex.h — hexadecimal text to bytes and back, for command-line values
 * (management keys) and printed digests. Part of tgcore: the simulator and
 * the host share it.
 */
#ifndef TG_HEX_H
#define TG_HEX_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the NUL-terminated hex text s (digits in either case, no
 * separators, at least one byte) into out (cap bytes) and sets *outlen.
 * TG_ERR_INVALID_ARG for empty or odd-length text, a non-hex character or
 * more than cap bytes; out is then wiped (it may hold a secret).
 */
int tg_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *outlen);

/*
 * Writes n bytes at p as lower-case hex and a NUL into out (cap bytes,
 * at least 2 * n + 1). 0, or TG_ERR_NO_SPACE (out then holds "").
 */
int tg_hex_encode(const uint8_t *p, size_t n, char *out, size_t cap);

/* Digit case of tg_hex_encode_sep. */
#define TG_HEX_LOWER 0u
#define TG_HEX_UPPER 1u

/*
 * Like tg_hex_encode, with the digits' case (TG_HEX_LOWER or TG_HEX_UPPER
 * in flags) and sep between two bytes' digits ('\0' for none): "3BFD13",
 * "3B FD 13", "3b:fd:13". cap at least 3 * n (2 * n + 1 without a
 * separator; 1 for n == 0). 0, or TG_ERR_NO_SPACE (out then holds "").
 */
int tg_hex_encode_sep(const uint8_t *p, size_t n, unsigned flags, char sep, char *out, size_t cap);

#endif /* TG_HEX_H */
