/*
 * fuzz_vpcd.c — fuzz target for tokengate-sim's vpcd frame codec
 * (firmware-sim/vpcd.c), the parser of the bytes pcscd's vpcd driver sends.
 *
 * For every input it:
 *   - takes frames off the input until one is incomplete, checking that a
 *     failed take consumes nothing, every payload lies inside the input and
 *     the offsets add up;
 *   - classifies each payload and checks the class against its length;
 *   - re-frames each non-empty payload with tg_sim_vpcd_frame_put and checks
 *     that it parses back to the same bytes;
 *   - parses the input as a HOST:PORT string (NUL-terminated copy) and
 *     checks a success names a non-empty host and a port from 1 to 65535.
 * A broken property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "vpcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ADDR_MAX 300

static void
check_payload(const uint8_t *data, size_t size, const struct tg_buf *p)
{
	enum tg_sim_vpcd_msg m = tg_sim_vpcd_classify(p);
	size_t n = tg_buf_remaining(p);
	uint8_t *out;
	struct tg_buf w, back, q;

	if (n > 0 && (tg_buf_cur(p) < data || tg_buf_cur(p) + n > data + size))
		abort();
	if ((n == 0) != (m == TG_SIM_VPCD_MSG_EMPTY) || (n >= 2) != (m == TG_SIM_VPCD_MSG_APDU))
		abort();
	if (n == 0)
		return;
	if ((out = malloc(n + TG_SIM_VPCD_HDR_LEN)) == NULL)
		abort();
	tg_buf_writer(&w, out, n + TG_SIM_VPCD_HDR_LEN);
	if (tg_sim_vpcd_frame_put(&w, tg_buf_cur(p), n) != 0)
		abort();
	tg_buf_reader(&back, out, tg_buf_len(&w));
	if (tg_sim_vpcd_frame_get(&back, &q) != 0 || tg_buf_remaining(&q) != n ||
	    memcmp(tg_buf_cur(&q), tg_buf_cur(p), n) != 0 || tg_buf_expect_end(&back) != 0)
		abort();
	free(out);
}

static void
check_addr(const uint8_t *data, size_t size)
{
	char s[ADDR_MAX + 1], host[64];
	struct tg_error err;
	uint16_t port = 0;
	size_t n = size < ADDR_MAX ? size : ADDR_MAX;

	memcpy(s, data, n);
	s[n] = '\0';
	tg_error_clear(&err);
	if (tg_sim_vpcd_addr_parse(s, host, sizeof(host), &port, &err) == 0) {
		if (host[0] == '\0' || port == 0 || strlen(host) >= sizeof(host))
			abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_buf in, p;
	size_t before;

	tg_buf_reader(&in, data, size);
	for (;;) {
		before = in.off;
		if (tg_sim_vpcd_frame_get(&in, &p) != 0) {
			if (in.off != before)
				abort();
			break;
		}
		if (in.off != before + TG_SIM_VPCD_HDR_LEN + tg_buf_remaining(&p))
			abort();
		check_payload(data, size, &p);
	}
	check_addr(data, size);
	return 0;
}
