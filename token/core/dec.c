/* dec.c — tg_dec.h: integers as decimal text. */
#include "tg_dec.h"

/* v's digits and a NUL at out (at most 21 bytes): their count. */
static size_t
digits(uint64_t v, char *out)
{
	char rev[TG_DEC_MAX];
	size_t n = 0, i;

	do {
		rev[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v != 0);
	for (i = 0; i < n; i++)
		out[i] = rev[n - 1 - i];
	out[n] = '\0';
	return n;
}

size_t
tg_dec_u64(uint64_t v, char out[TG_DEC_MAX])
{
	return digits(v, out);
}

size_t
tg_dec_i64(int64_t v, char out[TG_DEC_MAX])
{
	size_t n;

	if (v < 0) {
		/* the magnitude in unsigned arithmetic: -INT64_MIN does not fit */
		out[0] = '-';
		n = 1 + digits(0u - (uint64_t)v, out + 1); /* 19 digits at most */
	} else {
		n = digits((uint64_t)v, out);
	}
	return n;
}
