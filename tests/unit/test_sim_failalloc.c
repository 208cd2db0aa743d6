/*
 * test_sim_failalloc.c — tokengate-sim's modules under allocation failure
 * (tg_test_failalloc.h): creating and loading the manufacturer CA, writing,
 * reading and locking the state file, and making the vpcd connection
 * object. Each allocation is made to fail in turn (OpenSSL's included):
 * the call must fail with a message, or absorb the failure with the same
 * result; a failed create leaves no file behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/event.h>

#include "mfrca.h"
#include "statefile.h"
#include "tg_secret.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"
#include "vpcd.h"

struct fx {
	char dir[64];
	char cert[128], key[128]; /* a CA made before the sweeps */
	char state[128];
};

static struct fx fx;

static int
op_mfrca_create(void *ctx, struct tg_error *err)
{
	char cert[160], key[160];
	int r;

	(void)ctx;
	snprintf(cert, sizeof(cert), "%s/new.crt", fx.dir);
	snprintf(key, sizeof(key), "%s/new.key", fx.dir);
	r = tg_sim_mfrca_create(cert, key, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_int_equal(access(cert, F_OK), 0);
		assert_int_equal(access(key, F_OK), 0);
	} else {
		/* nothing left behind by a failed create */
		assert_int_not_equal(access(key, F_OK), 0);
	}
	(void)unlink(cert);
	(void)unlink(key);
	assert_int_equal(tg_test_dir_count(fx.dir), 3); /* mfr.crt, mfr.key, sub */
	tg_failalloc_hold(0);
	return r;
}

static int
op_mfrca_load(void *ctx, struct tg_error *err)
{
	uint8_t *cd = NULL, *kd = NULL;
	size_t cl = 0, kl = 0;
	int r;

	(void)ctx;
	r = tg_sim_mfrca_load(fx.cert, fx.key, &cd, &cl, &kd, &kl, err);
	tg_failalloc_hold(1);
	if (r == 0) {
		assert_true(cl > 0);
		assert_true(kl > 0);
	}
	tg_freezero(cd, cl);
	tg_freezero(kd, kl);
	tg_failalloc_hold(0);
	return r;
}

static int
op_state_write_read(void *ctx, struct tg_error *err)
{
	static const uint8_t blob[] = "TGTK state bytes";
	uint8_t *got = NULL;
	size_t n = 0;
	int r, fd;

	(void)ctx;
	if ((r = tg_sim_state_write(fx.state, blob, sizeof(blob), 1, err)) != 0)
		return r;
	if ((r = tg_sim_state_read(fx.state, &got, &n, err)) != 0)
		return r;
	tg_failalloc_hold(1);
	assert_int_equal(n, sizeof(blob));
	assert_memory_equal(got, blob, n);
	tg_freezero(got, n);
	tg_failalloc_hold(0);
	if ((fd = tg_sim_state_lock(fx.state, err)) < 0)
		return err->code;
	close(fd);
	return 0;
}

static int
card_apdu(void *ctx, const uint8_t *cmd, size_t cmdlen, uint8_t *rsp, size_t rspcap, size_t *rsplen,
          uint32_t *delay_ms)
{
	(void)ctx;
	(void)cmd;
	(void)cmdlen;
	(void)rspcap;
	(void)delay_ms;
	rsp[0] = 0x90;
	rsp[1] = 0x00;
	*rsplen = 2;
	return 0;
}

static const uint8_t *
card_atr(void *ctx, size_t *len)
{
	(void)ctx;
	*len = 1;
	return (const uint8_t *)"\x3B";
}

static int
op_vpcd_new(void *ctx, struct tg_error *err)
{
	struct event_base *base = ctx;
	struct tg_sim_vpcd_card c = {card_apdu, NULL, NULL, card_atr, NULL};
	struct tg_sim_vpcd *v = NULL;
	int r;

	r = tg_sim_vpcd_new(base, "127.0.0.1", 35963, &c, &v, err);
	if (r != 0)
		assert_null(v);
	tg_sim_vpcd_free(v);
	return r;
}

static void
test_mfrca(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("manufacturer CA create", op_mfrca_create, NULL) > 0);
	assert_true(tg_failalloc_sweep("manufacturer CA load", op_mfrca_load, NULL) > 0);
}

static void
test_state(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("state write, read, lock", op_state_write_read, NULL) > 0);
}

static void
test_vpcd(void **state)
{
	struct event_base *base;

	(void)state;
	tg_failalloc_hold(1);
	base = event_base_new();
	tg_failalloc_hold(0);
	assert_non_null(base);
	assert_true(tg_failalloc_sweep("vpcd connection object", op_vpcd_new, base) > 0);
	event_base_free(base);
}

static int
setup(void **state)
{
	struct tg_error err;

	(void)state;
	if (tg_test_tmpdir("tg-sim-failalloc", fx.dir, sizeof(fx.dir)) != 0)
		return -1;
	snprintf(fx.cert, sizeof(fx.cert), "%s/mfr.crt", fx.dir);
	snprintf(fx.key, sizeof(fx.key), "%s/mfr.key", fx.dir);
	snprintf(fx.state, sizeof(fx.state), "%s/sub", fx.dir);
	if (mkdir(fx.state, 0700) != 0)
		return -1;
	snprintf(fx.state, sizeof(fx.state), "%s/sub/card.state", fx.dir);
	tg_error_clear(&err);
	return tg_sim_mfrca_create(fx.cert, fx.key, &err);
}

static int
teardown(void **state)
{
	char sub[128];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/sub", fx.dir);
	tg_test_tmpdir_remove(sub);
	tg_test_tmpdir_remove(fx.dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mfrca),
	    cmocka_unit_test(test_state),
	    cmocka_unit_test(test_vpcd),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
