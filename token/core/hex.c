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
tg_hex_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;
	int r = TG_ERR_NO_SPACE;

	if (cap == 0)
		goto out;
	out[0] = '\0';
	if (n > (cap - 1) / 2)
		goto out;
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
	r = 0;
out:
	return r;
}
