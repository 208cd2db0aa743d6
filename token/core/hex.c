/* hex.c — hexadecimal text to bytes and back (tg_hex.h). */
#include "tg_hex.h"

#include <string.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_secret.h"

/* A hex digit's value, or -1. */
static int
hexval(char c)
{
	int v = -1;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	return v;
}

int
tg_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
	struct tg_buf w;
	size_t n = strlen(s), i;
	int hi, lo, r = TG_ERR_INVALID_ARG;

	if (n == 0 || n % 2 != 0 || n / 2 > cap)
		goto out;
	tg_buf_writer(&w, out, cap);
	for (i = 0; i < n; i += 2) {
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0 || tg_buf_put_u8(&w, (uint8_t)(hi << 4 | lo)) != 0)
			goto out;
	}
	*outlen = tg_buf_len(&w);
	r = 0;
out:
	if (r != 0)
		tg_wipe(out, cap);
	return r;
}

int
tg_hex_encode_sep(const uint8_t *p, size_t n, unsigned flags, char sep, char *out, size_t cap)
{
	const char *digits = (flags & TG_HEX_UPPER) ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i, o = 0, per = sep != '\0' ? 3 : 2;
	int r = TG_ERR_NO_SPACE;

	if (cap == 0)
		goto out;
	out[0] = '\0';
	/* n pairs, n - 1 separators and the NUL: per * n + 1 - (per - 2) */
	if (n > 0 && n > (cap - 1 + (per - 2)) / per)
		goto out;
	if (sep == '\0') {
		/* the common case (hashes, ids): two digits per byte, no test */
		for (i = 0; i < n; i++) {
			out[2 * i] = digits[p[i] >> 4];
			out[2 * i + 1] = digits[p[i] & 0x0f];
		}
		o = 2 * n;
	} else {
		for (i = 0; i < n; i++) {
			if (i > 0)
				out[o++] = sep;
			out[o++] = digits[p[i] >> 4];
			out[o++] = digits[p[i] & 0x0f];
		}
	}
	out[o] = '\0';
	r = 0;
out:
	return r;
}

int
tg_hex_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
	return tg_hex_encode_sep(p, n, TG_HEX_LOWER, '\0', out, cap);
}
