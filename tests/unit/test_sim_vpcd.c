/*
 * test_sim_vpcd.c — tokengate-sim's vpcd frame codec (firmware-sim/vpcd.c):
 * frame parsing and building, control-byte classification and HOST:PORT
 * parsing, with table-driven malformed inputs. Every parser input is an
 * exact-size heap copy so AddressSanitizer sees any over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg_test.h"
#include "vpcd.h"

struct frame_case {
	const char *name;
	const uint8_t *in;
	size_t inlen;
	int want;            /* return of tg_sim_vpcd_frame_get */
	size_t want_payload; /* payload length on success */
	size_t want_off;     /* read offset afterwards */
};

static const uint8_t f_empty[] = {0};
static const uint8_t f_one[] = {0x00};
static const uint8_t f_hdr_only[] = {0x00, 0x05};
static const uint8_t f_short[] = {0x00, 0x05, 0x00, 0xA4, 0x04, 0x00};
static const uint8_t f_exact[] = {0x00, 0x04, 0x00, 0xA4, 0x04, 0x00};
static const uint8_t f_ctrl[] = {0x00, 0x01, 0x04};
static const uint8_t f_zero[] = {0x00, 0x00};
static const uint8_t f_two[] = {0x00, 0x01, 0x02, 0x00, 0x01, 0x04};
static const uint8_t f_big_len[] = {0xFF, 0xFF, 0x01, 0x02};

static const struct frame_case frame_cases[] = {
    {"empty input", f_empty, 0, TG_ERR_TRUNCATED, 0, 0},
    {"one byte", f_one, sizeof(f_one), TG_ERR_TRUNCATED, 0, 0},
    {"header only", f_hdr_only, sizeof(f_hdr_only), TG_ERR_TRUNCATED, 0, 0},
    {"payload cut short", f_short, sizeof(f_short), TG_ERR_TRUNCATED, 0, 0},
    {"length 0xFFFF, 2 bytes", f_big_len, sizeof(f_big_len), TG_ERR_TRUNCATED, 0, 0},
    {"exact APDU frame", f_exact, sizeof(f_exact), 0, 4, 6},
    {"control frame", f_ctrl, sizeof(f_ctrl), 0, 1, 3},
    {"zero-length frame", f_zero, sizeof(f_zero), 0, 0, 2},
    {"first of two frames", f_two, sizeof(f_two), 0, 1, 3},
};

static void
test_frame_get_table(void **state)
{
	struct tg_buf in, payload;
	uint8_t *copy;
	size_t i;
	int r;

	for (i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
		const struct frame_case *c = &frame_cases[i];

		copy = tg_test_memdup(c->in, c->inlen);
		tg_buf_reader(&in, copy, c->inlen);
		r = tg_sim_vpcd_frame_get(&in, &payload);
		if (r != c->want)
			fail_msg("%s: got %d, want %d", c->name, r, c->want);
		if (r == 0) {
			assert_int_equal(tg_buf_remaining(&payload), c->want_payload);
			assert_int_equal(in.off, c->want_off);
		} else {
			/* Nothing consumed on failure: wait for more bytes. */
			assert_int_equal(in.off, 0);
		}
		free(copy);
	}
}

static void
test_frame_get_two(void **state)
{
	struct tg_buf in, p;
	uint8_t *copy = tg_test_memdup(f_two, sizeof(f_two));
	uint8_t c = 0;

	tg_buf_reader(&in, copy, sizeof(f_two));
	assert_int_equal(tg_sim_vpcd_frame_get(&in, &p), 0);
	assert_int_equal(tg_buf_get_u8(&p, &c), 0);
	assert_int_equal(c, TG_SIM_VPCD_CTRL_RESET);
	assert_int_equal(tg_sim_vpcd_frame_get(&in, &p), 0);
	assert_int_equal(tg_buf_get_u8(&p, &c), 0);
	assert_int_equal(c, TG_SIM_VPCD_CTRL_ATR);
	assert_int_equal(tg_sim_vpcd_frame_get(&in, &p), TG_ERR_TRUNCATED);
	free(copy);
}

static void
test_frame_put(void **state)
{
	static const uint8_t rsp[] = {0x90, 0x00};
	uint8_t out[8], *big;
	struct tg_buf w;

	memset(out, 0xEE, sizeof(out));
	tg_buf_writer(&w, out, sizeof(out));
	assert_int_equal(tg_sim_vpcd_frame_put(&w, rsp, sizeof(rsp)), 0);
	assert_int_equal(tg_buf_len(&w), 4);
	assert_memory_equal(out, ((uint8_t[]){0x00, 0x02, 0x90, 0x00}), 4);
	assert_int_equal(out[4], 0xEE);

	/* Never an empty frame. */
	assert_int_equal(tg_sim_vpcd_frame_put(&w, rsp, 0), TG_ERR_INVALID_ARG);
	/* No room for header + payload: nothing written. */
	assert_int_equal(tg_sim_vpcd_frame_put(&w, (const uint8_t *)"abcd", 4), TG_ERR_NO_SPACE);
	assert_int_equal(tg_buf_len(&w), 4);
	assert_int_equal(out[4], 0xEE);
	/* Over 0xFFFF bytes cannot be framed. */
	big = calloc(1, TG_SIM_VPCD_MAX_PAYLOAD + 1);
	assert_non_null(big);
	assert_int_equal(tg_sim_vpcd_frame_put(&w, big, TG_SIM_VPCD_MAX_PAYLOAD + 1),
	                 TG_ERR_INVALID_ARG);
	free(big);
}

static void
test_frame_roundtrip_max(void **state)
{
	struct tg_buf w, in, p;
	uint8_t *payload, *out;
	size_t n = TG_SIM_VPCD_MAX_PAYLOAD;

	payload = malloc(n);
	out = malloc(n + 2);
	assert_non_null(payload);
	assert_non_null(out);
	memset(payload, 0x5A, n);
	tg_buf_writer(&w, out, n + 2);
	assert_int_equal(tg_sim_vpcd_frame_put(&w, payload, n), 0);
	tg_buf_reader(&in, out, n + 2);
	assert_int_equal(tg_sim_vpcd_frame_get(&in, &p), 0);
	assert_int_equal(tg_buf_remaining(&p), n);
	assert_memory_equal(tg_buf_cur(&p), payload, n);
	assert_int_equal(tg_buf_expect_end(&in), 0);
	free(payload);
	free(out);
}

static void
test_classify(void **state)
{
	static const struct {
		uint8_t in[4];
		size_t n;
		enum tg_sim_vpcd_msg want;
	} cases[] = {
	    {{0x00}, 1, TG_SIM_VPCD_MSG_POWER_OFF},
	    {{0x01}, 1, TG_SIM_VPCD_MSG_POWER_ON},
	    {{0x02}, 1, TG_SIM_VPCD_MSG_RESET},
	    {{0x04}, 1, TG_SIM_VPCD_MSG_ATR},
	    {{0x03}, 1, TG_SIM_VPCD_MSG_UNKNOWN_CTRL},
	    {{0xFF}, 1, TG_SIM_VPCD_MSG_UNKNOWN_CTRL},
	    {{0}, 0, TG_SIM_VPCD_MSG_EMPTY},
	    {{0x00, 0x04}, 2, TG_SIM_VPCD_MSG_APDU},
	    {{0x00, 0xA4, 0x04, 0x00}, 4, TG_SIM_VPCD_MSG_APDU},
	};
	struct tg_buf b;
	uint8_t *copy;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		copy = tg_test_memdup(cases[i].in, cases[i].n);
		tg_buf_reader(&b, copy, cases[i].n);
		if (tg_sim_vpcd_classify(&b) != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, tg_sim_vpcd_classify(&b),
			         cases[i].want);
		/* Classifying consumes nothing. */
		assert_int_equal(tg_buf_remaining(&b), cases[i].n);
		free(copy);
	}
}

static void
test_addr_parse(void **state)
{
	static const struct {
		const char *in;
		int want;
		const char *host;
		uint16_t port;
	} cases[] = {
	    {"127.0.0.1:35963", 0, "127.0.0.1", 35963},
	    {"localhost:1", 0, "localhost", 1},
	    {"[::1]:65535", 0, "::1", 65535},
	    {"", TG_ERR_USAGE, NULL, 0},
	    {"nocolon", TG_ERR_USAGE, NULL, 0},
	    {":35963", TG_ERR_USAGE, NULL, 0},
	    {"host:", TG_ERR_USAGE, NULL, 0},
	    {"host:0", TG_ERR_USAGE, NULL, 0},
	    {"host:65536", TG_ERR_USAGE, NULL, 0},
	    {"host:12x", TG_ERR_USAGE, NULL, 0},
	    {"host:-1", TG_ERR_USAGE, NULL, 0},
	    {"host: 1", TG_ERR_USAGE, NULL, 0},
	    {"host:+1", TG_ERR_USAGE, NULL, 0},
	    {"[::1:5", TG_ERR_USAGE, NULL, 0},
	    {"[]:5", TG_ERR_USAGE, NULL, 0},
	    {"host:99999999999999999999", TG_ERR_USAGE, NULL, 0},
	};
	struct tg_error err;
	char host[64];
	uint16_t port;
	size_t i;
	int r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tg_error_clear(&err);
		port = 0;
		r = tg_sim_vpcd_addr_parse(cases[i].in, host, sizeof(host), &port, &err);
		if (r != cases[i].want)
			fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].want);
		if (r == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		} else {
			/* The message names the input and the expected form. */
			assert_non_null(strstr(err.msg, "HOST:PORT"));
		}
	}
	/* A host longer than the caller's buffer is refused, not cut. */
	tg_error_clear(&err);
	assert_int_equal(tg_sim_vpcd_addr_parse("abcdefgh:1", host, 4, &port, &err), TG_ERR_USAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_get_table), cmocka_unit_test(test_frame_get_two),
	    cmocka_unit_test(test_frame_put),       cmocka_unit_test(test_frame_roundtrip_max),
	    cmocka_unit_test(test_classify),        cmocka_unit_test(test_addr_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
