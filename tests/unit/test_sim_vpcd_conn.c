/*
 * test_sim_vpcd_conn.c — tokengate-sim's vpcd connection (the libevent
 * shell of firmware-sim/vpcd.c) against a local TCP listener standing in
 * for pcscd's vpcd driver: control frames reach the card, APDUs get their
 * response frames (also split, batched and delayed), ignored frames change
 * nothing, and a card error, the driver closing, a refused connection, an
 * unresolvable host and removal each drop the connection, power the card
 * off and (but for removal) reconnect.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <event2/event.h>

#include "tg_err.h"
#include "tg_log.h"
#include "tg_test.h"
#include "vpcd.h"

enum card_mode { CARD_OK = 0, CARD_ERROR, CARD_EMPTY, CARD_DELAY };

struct card {
	int resets, offs, apdus;
	uint8_t last[64];
	size_t last_len;
	enum card_mode mode;
	uint32_t delay_ms;
};

static const uint8_t test_atr[] = {0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15};

struct fx {
	struct event_base *base;
	struct card card;
	struct tg_sim_vpcd *v;
	FILE *log; /* what the simulator logged */
	int lfd;   /* the stand-in driver's listening socket */
	int peer;  /* its side of the current connection, -1 when none */
	uint16_t port;
};

static int
card_apdu(void *ctx, const uint8_t *cmd, size_t cmdlen, uint8_t *rsp, size_t rspcap, size_t *rsplen,
          uint32_t *delay_ms)
{
	struct card *c = ctx;

	c->apdus++;
	c->last_len = cmdlen < sizeof(c->last) ? cmdlen : sizeof(c->last);
	memcpy(c->last, cmd, c->last_len);
	if (c->mode == CARD_ERROR)
		return TG_ERR_INTERNAL;
	if (c->mode == CARD_EMPTY) {
		*rsplen = 0;
		return 0;
	}
	assert_true(rspcap >= 3);
	/* the response names the command: INS 90 00 */
	rsp[0] = cmd[1];
	rsp[1] = 0x90;
	rsp[2] = 0x00;
	*rsplen = 3;
	if (c->mode == CARD_DELAY)
		*delay_ms = c->delay_ms;
	return 0;
}

static void
card_reset(void *ctx)
{
	((struct card *)ctx)->resets++;
}

static void
card_off(void *ctx)
{
	((struct card *)ctx)->offs++;
}

static const uint8_t *
card_atr(void *ctx, size_t *len)
{
	(void)ctx;
	*len = sizeof(test_atr);
	return test_atr;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the event loop for about ms milliseconds. */
static void
pump(struct fx *f, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/* Runs the loop until *counter reaches want (at most 2 s); 1 when it did. */
static int
wait_count(struct fx *f, const int *counter, int want)
{
	int64_t end = now_ms() + 2000;

	while (*counter < want && now_ms() < end)
		pump(f, 5);
	return *counter >= want;
}

/* A listening socket on 127.0.0.1 (port 0: any); -1 when it cannot. */
static int
listen_on(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(*port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Accepts the simulator's connection within ms, running its loop
 * meanwhile; 1 when one came. */
static int
accept_within(struct fx *f, int ms)
{
	struct pollfd p = {f->lfd, POLLIN, 0};
	int64_t end = now_ms() + ms;

	do {
		pump(f, 10);
		if (poll(&p, 1, 0) == 1) {
			f->peer = accept(f->lfd, NULL, NULL);
			assert_true(f->peer >= 0);
			pump(f, 10); /* the simulator sees its connect complete */
			return 1;
		}
	} while (now_ms() < end);
	return 0;
}

static void
peer_send(struct fx *f, const char *hex)
{
	size_t n;
	uint8_t *b = tg_test_hexdup(hex, &n);

	assert_int_equal(send(f->peer, b, n, MSG_NOSIGNAL), (ssize_t)n);
	free(b);
}

/*
 * Reads up to cap bytes the simulator sends within ms (stops early once
 * want bytes came); *eof set when the simulator closed the connection.
 */
static size_t
peer_read(struct fx *f, uint8_t *buf, size_t cap, size_t want, int ms, int *eof)
{
	struct pollfd p = {f->peer, POLLIN, 0};
	int64_t end = now_ms() + ms;
	size_t got = 0;
	ssize_t r;

	*eof = 0;
	do {
		pump(f, 5);
		while (got < cap && poll(&p, 1, 0) == 1) {
			r = recv(f->peer, buf + got, cap - got, MSG_DONTWAIT);
			if (r <= 0) {
				*eof = 1;
				return got;
			}
			got += (size_t)r;
		}
	} while (got < want && now_ms() < end);
	return got;
}

/* The simulator sends exactly these bytes (hex) next. */
static void
expect_frame(struct fx *f, const char *hex)
{
	uint8_t buf[128];
	size_t n, got;
	uint8_t *want = tg_test_hexdup(hex, &n);
	int eof;

	got = peer_read(f, buf, n, n, 2000, &eof);
	assert_int_equal(eof, 0);
	assert_int_equal(got, n);
	assert_memory_equal(buf, want, n);
	free(want);
}

/* The simulator sends nothing for ms and keeps the connection. */
static void
expect_silence(struct fx *f, int ms)
{
	uint8_t buf[16];
	int eof;

	assert_int_equal(peer_read(f, buf, sizeof(buf), 1, ms, &eof), 0);
	assert_int_equal(eof, 0);
}

/* The simulator closes the connection within 2 s. */
static void
expect_closed(struct fx *f)
{
	uint8_t buf[64];
	int eof;

	(void)peer_read(f, buf, sizeof(buf), sizeof(buf), 2000, &eof);
	assert_int_equal(eof, 1);
	close(f->peer);
	f->peer = -1;
}

/* 1 when the log holds s (since the start of the test). */
static int
log_has(struct fx *f, const char *s)
{
	char buf[16384];
	size_t n;

	fflush(f->log);
	rewind(f->log);
	n = fread(buf, 1, sizeof(buf) - 1, f->log);
	buf[n] = '\0';
	(void)fseek(f->log, 0, SEEK_END);
	return strstr(buf, s) != NULL;
}

static struct tg_sim_vpcd_card
card_of(struct fx *f)
{
	struct tg_sim_vpcd_card c = {card_apdu, card_reset, card_off, card_atr, &f->card};

	return c;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct tg_sim_vpcd_card c;
	struct tg_error err;

	if (f == NULL)
		return -1;
	f->peer = -1;
	if ((f->log = tmpfile()) == NULL)
		return -1;
	tg_log_init(TG_LOG_DEBUG, 0, f->log);
	f->base = event_base_new();
	f->lfd = listen_on(&f->port);
	if (f->base == NULL || f->lfd < 0)
		return -1;
	c = card_of(f);
	tg_error_clear(&err);
	if (tg_sim_vpcd_new(f->base, "127.0.0.1", f->port, &c, &f->v, &err) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tg_sim_vpcd_free(f->v);
	if (f->peer >= 0)
		close(f->peer);
	if (f->lfd >= 0)
		close(f->lfd);
	event_base_free(f->base);
	tg_log_init(TG_LOG_INFO, 0, NULL);
	fclose(f->log);
	free(f);
	return 0;
}

static void
test_ctrl_and_apdu(void **state)
{
	struct fx *f = *state;

	tg_sim_vpcd_insert(f->v);
	assert_true(accept_within(f, 2000));
	/* ATR request: the card's ATR in one frame */
	peer_send(f, "0001 04");
	expect_frame(f, "0009 3BF8130000 8131FE15");
	/* power on, reset, power off: to the card, no answer */
	peer_send(f, "0001 01");
	peer_send(f, "0001 02");
	expect_silence(f, 50);
	assert_int_equal(f->card.resets, 2);
	peer_send(f, "0001 00");
	expect_silence(f, 50);
	assert_int_equal(f->card.offs, 1);
	/* an unknown control byte and an empty frame: ignored */
	peer_send(f, "0001 07 0000");
	expect_silence(f, 50);
	assert_true(log_has(f, "connected to vpcd 127.0.0.1:"));
	assert_true(log_has(f, "ignoring unknown control byte from vpcd"));
	assert_true(log_has(f, "ignoring empty frame from vpcd"));
	assert_int_equal(f->card.resets, 2);
	assert_int_equal(f->card.offs, 1);
	assert_int_equal(f->card.apdus, 0);
	/* an APDU and its response */
	peer_send(f, "0004 00A40400");
	expect_frame(f, "0003 A49000");
	assert_int_equal(f->card.last_len, 4);
	assert_memory_equal(f->card.last, "\x00\xA4\x04\x00", 4);
	/* two frames in one write: both answered, in order */
	peer_send(f, "0004 00CA0000 0004 00CB3FFF");
	expect_frame(f, "0003 CA9000 0003 CB9000");
	/* a frame split across writes: answered once whole */
	peer_send(f, "00");
	expect_silence(f, 30);
	peer_send(f, "05 00FD");
	expect_silence(f, 30);
	peer_send(f, "000000");
	expect_frame(f, "0003 FD9000");
	assert_int_equal(f->card.apdus, 4);
	/* inserting again keeps the one connection */
	tg_sim_vpcd_insert(f->v);
	{
		int peer = f->peer;

		assert_false(accept_within(f, 200));
		f->peer = peer;
	}
	peer_send(f, "0001 04");
	expect_frame(f, "0009 3BF8130000 8131FE15");
}

static void
test_delayed_response(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	tg_sim_vpcd_insert(f->v);
	assert_true(accept_within(f, 2000));
	f->card.mode = CARD_DELAY;
	f->card.delay_ms = 150;
	t0 = now_ms();
	/* the second command waits behind the held response */
	peer_send(f, "0004 00B10000 0004 00B20000");
	expect_silence(f, 80);
	assert_int_equal(f->card.apdus, 1);
	expect_frame(f, "0003 B19000");
	assert_true(now_ms() - t0 >= 150);
	expect_frame(f, "0003 B29000");
	assert_true(now_ms() - t0 >= 300);
	assert_int_equal(f->card.apdus, 2);

	/* removed while a response is held: dropped, card off, no reconnect */
	f->card.delay_ms = 200;
	peer_send(f, "0004 00B30000");
	assert_true(wait_count(f, &f->card.apdus, 3));
	tg_sim_vpcd_remove(f->v);
	assert_int_equal(f->card.offs, 1);
	expect_closed(f);
	assert_false(accept_within(f, 400));
	assert_int_equal(f->card.offs, 1);
	/* inserted again: connects and answers */
	f->card.mode = CARD_OK;
	tg_sim_vpcd_insert(f->v);
	assert_true(accept_within(f, 2000));
	peer_send(f, "0004 00B40000");
	expect_frame(f, "0003 B49000");
}

static void
test_card_error_reconnects(void **state)
{
	struct fx *f = *state;

	tg_sim_vpcd_insert(f->v);
	assert_true(accept_within(f, 2000));
	/* the card fails the command: connection dropped, card powered off */
	f->card.mode = CARD_ERROR;
	peer_send(f, "0004 00870000");
	expect_closed(f);
	assert_int_equal(f->card.apdus, 1);
	assert_int_equal(f->card.offs, 1);
	assert_true(log_has(f, "lost (card error); reconnecting"));
	/* reconnects after the backoff */
	assert_true(accept_within(f, 2000));
	/* a card answering nothing is an error too */
	f->card.mode = CARD_EMPTY;
	peer_send(f, "0004 00880000");
	expect_closed(f);
	assert_int_equal(f->card.offs, 2);
	assert_true(accept_within(f, 2000));
	/* the driver closes: card off, reconnect */
	f->card.mode = CARD_OK;
	close(f->peer);
	f->peer = -1;
	assert_true(wait_count(f, &f->card.offs, 3));
	assert_int_equal(f->card.offs, 3);
	assert_true(log_has(f, "lost (closed by pcscd); reconnecting"));
	assert_true(accept_within(f, 2000));
	peer_send(f, "0004 00890000");
	expect_frame(f, "0003 899000");
}

/* No driver listening yet: the connection is refused (card off each time)
 * and retried with backoff until the driver appears. */
static void
test_refused_then_up(void **state)
{
	struct fx *f = *state;
	struct tg_sim_vpcd *v = NULL;
	struct tg_sim_vpcd_card c = card_of(f);
	struct tg_error err;
	uint16_t port = 0;
	int lfd = listen_on(&port);

	assert_true(lfd >= 0);
	close(lfd); /* a port nobody listens on (for now) */
	tg_error_clear(&err);
	assert_int_equal(tg_sim_vpcd_new(f->base, "127.0.0.1", port, &c, &v, &err), 0);
	tg_sim_vpcd_insert(v);
	pump(f, 400);
	assert_true(f->card.offs >= 2);
	/* the first failure is a warning naming the fix, the retries debug */
	assert_true(log_has(f, "(Connection refused); is pcscd running with the vpcd reader"));
	assert_true(log_has(f, "retry failed: Connection refused"));
	lfd = listen_on(&port);
	if (lfd < 0) {
		tg_sim_vpcd_free(v);
		skip();
	}
	close(f->lfd);
	f->lfd = lfd;
	assert_true(accept_within(f, 4000));
	peer_send(f, "0001 04");
	expect_frame(f, "0009 3BF8130000 8131FE15");
	tg_sim_vpcd_free(v);
}

/* A host name that does not resolve: the resolver's reason is logged and
 * the card is powered off; it keeps retrying without a connection. */
static void
test_unresolvable_host(void **state)
{
	struct fx *f = *state;
	struct tg_sim_vpcd *v = NULL;
	struct tg_sim_vpcd_card c = card_of(f);
	struct tg_error err;

	tg_error_clear(&err);
	assert_int_equal(tg_sim_vpcd_new(f->base, "", 35963, &c, &v, &err), 0);
	tg_sim_vpcd_insert(v);
	pump(f, 150);
	assert_true(f->card.offs >= 1);
	assert_int_equal(f->card.apdus, 0);
	assert_true(log_has(f, "cannot connect to vpcd :35963 (Name or service not known)"));
	tg_sim_vpcd_remove(v);
	tg_sim_vpcd_free(v);
}

static void
test_new_refusals(void **state)
{
	struct fx *f = *state;
	struct tg_sim_vpcd *v = NULL;
	struct tg_sim_vpcd_card c = card_of(f);
	struct tg_error err;

	tg_error_clear(&err);
	assert_int_equal(tg_sim_vpcd_new(f->base, "127.0.0.1", 1, NULL, &v, &err),
	                 TG_ERR_INVALID_ARG);
	assert_string_equal(err.msg, "vpcd: no card given");
	assert_null(v);
	c.apdu = NULL;
	tg_error_clear(&err);
	assert_int_equal(tg_sim_vpcd_new(f->base, "127.0.0.1", 1, &c, &v, &err),
	                 TG_ERR_INVALID_ARG);
	assert_null(v);
	c = card_of(f);
	c.atr = NULL;
	assert_int_equal(tg_sim_vpcd_new(f->base, "127.0.0.1", 1, &c, &v, &err),
	                 TG_ERR_INVALID_ARG);
	assert_null(v);
	tg_sim_vpcd_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ctrl_and_apdu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delayed_response, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_card_error_reconnects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_then_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unresolvable_host, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_new_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
