/*
 * vpcd.h — the vpcd transport: tokengate-sim's side of the socket protocol
 * of vsmartcard's pcscd driver (libifdvpcd). The driver listens; the card
 * (this program) connects to it.
 *
 * Every message, in both directions, is a frame: a 2-byte big-endian length
 * and that many payload bytes. A 1-byte payload from the driver is a
 * control byte (00 power off, 01 power on, 02 reset, 04 get ATR; only 04 is
 * answered); any longer payload is a command APDU answered by one response
 * APDU. The card never sends an empty frame: pcscd reads one as "card
 * removed".
 *
 * Two layers: the frame codec (pure functions over struct tg_buf, unit
 * tested) and the connection (libevent bufferevent) that reconnects with
 * backoff when pcscd goes away or restarts.
 */
#ifndef TG_SIM_VPCD_H
#define TG_SIM_VPCD_H

#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"

struct event_base;

#define TG_SIM_VPCD_DEFAULT     "127.0.0.1:35963"
#define TG_SIM_VPCD_HDR_LEN     2
#define TG_SIM_VPCD_MAX_PAYLOAD 0xFFFF

/* Control bytes the driver sends as 1-byte payloads. */
#define TG_SIM_VPCD_CTRL_OFF   0x00
#define TG_SIM_VPCD_CTRL_ON    0x01
#define TG_SIM_VPCD_CTRL_RESET 0x02
#define TG_SIM_VPCD_CTRL_ATR   0x04

/* What a received payload asks for. */
enum tg_sim_vpcd_msg {
	TG_SIM_VPCD_MSG_POWER_OFF,
	TG_SIM_VPCD_MSG_POWER_ON,
	TG_SIM_VPCD_MSG_RESET,
	TG_SIM_VPCD_MSG_ATR,
	TG_SIM_VPCD_MSG_UNKNOWN_CTRL, /* a 1-byte payload of another value */
	TG_SIM_VPCD_MSG_APDU,         /* 2 bytes or more: a command APDU */
	TG_SIM_VPCD_MSG_EMPTY,        /* a 0-length frame (protocol error) */
};

/* ---- frame codec ---- */

/*
 * Takes one complete frame from `in`: on success *payload is a reader over
 * its payload (borrowed from in's memory) and in's read offset is past the
 * frame. TG_ERR_TRUNCATED when `in` does not yet hold a whole frame (nothing
 * consumed: wait for more bytes).
 */
int tg_sim_vpcd_frame_get(struct tg_buf *in, struct tg_buf *payload);

/*
 * Appends one frame carrying the n bytes at p to `out`. TG_ERR_INVALID_ARG
 * for n == 0 (never send an empty frame) or n > 0xFFFF; TG_ERR_NO_SPACE
 * when out cannot take 2 + n bytes (nothing written).
 */
int tg_sim_vpcd_frame_put(struct tg_buf *out, const uint8_t *p, size_t n);

/* Classifies a received payload (the whole of `payload`, not consumed). */
enum tg_sim_vpcd_msg tg_sim_vpcd_classify(const struct tg_buf *payload);

/*
 * Parses "HOST:PORT" (HOST an IPv4 address, a bracketed IPv6 address or a
 * name; PORT 1-65535) into host (capacity hostcap) and *port.
 * TG_ERR_USAGE with a message naming the expected form.
 */
int tg_sim_vpcd_addr_parse(const char *s, char *host, size_t hostcap, uint16_t *port,
                           struct tg_error *err);

/* ---- connection ---- */

/* The card behind the transport (implemented by the simulator's run loop). */
struct tg_sim_vpcd_card {
	/*
	 * Answers one command APDU: writes the response (data + SW) into rsp
	 * (capacity rspcap) and sets *rsplen (never 0). *delay_ms (preset to 0)
	 * holds the response back that long (simulated processing time).
	 * Returns 0, or a TG_ERR_* after which the connection is closed.
	 */
	int (*apdu)(void *ctx, const uint8_t *cmd, size_t cmdlen, uint8_t *rsp, size_t rspcap,
	            size_t *rsplen, uint32_t *delay_ms);
	void (*reset)(void *ctx);
	void (*power_off)(void *ctx);
	const uint8_t *(*atr)(void *ctx, size_t *len);
	void *ctx;
};

struct tg_sim_vpcd;

/*
 * Creates the connection object for the driver at host:port, run from
 * `base`. Does not connect yet (tg_sim_vpcd_insert). *out owned by the
 * caller (tg_sim_vpcd_free). The card struct is copied.
 */
int tg_sim_vpcd_new(struct event_base *base, const char *host, uint16_t port,
                    const struct tg_sim_vpcd_card *card, struct tg_sim_vpcd **out,
                    struct tg_error *err);

/*
 * Inserts the card: connects to the driver now and keeps reconnecting with
 * backoff (100 ms doubling to 2 s) whenever the connection fails or the
 * driver closes it (pcscd stopped or restarted). No-op when inserted.
 */
void tg_sim_vpcd_insert(struct tg_sim_vpcd *v);

/*
 * Removes the card: closes the connection (pcscd then reports no card),
 * powers the card off and stays disconnected until tg_sim_vpcd_insert.
 * A response held back by a delay is dropped.
 */
void tg_sim_vpcd_remove(struct tg_sim_vpcd *v);

/* Closes everything and frees v. NULL accepted. */
void tg_sim_vpcd_free(struct tg_sim_vpcd *v);

#endif /* TG_SIM_VPCD_H */
