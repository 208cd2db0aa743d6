/* vpcd.c — the vpcd frame codec and the connection to pcscd's vpcd driver. */
#include "vpcd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "tg_log.h"
#include "tg_secret.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
/* Response APDU: 256 data bytes + SW1 SW2, with room to spare. */
#define RSP_CAP 1024

/* ---- frame codec ---- */

int
tg_sim_vpcd_frame_get(struct tg_buf *in, struct tg_buf *payload)
{
	struct tg_buf probe = *in;
	uint16_t n = 0;
	int r;

	if ((r = tg_buf_get_u16(&probe, &n)) != 0)
		goto out;
	if ((r = tg_buf_get_sub(&probe, n, payload)) != 0)
		goto out;
	*in = probe;
	r = 0;
out:
	return r;
}

int
tg_sim_vpcd_frame_put(struct tg_buf *out, const uint8_t *p, size_t n)
{
	int r = TG_ERR_INVALID_ARG;

	if (n == 0 || n > TG_SIM_VPCD_MAX_PAYLOAD)
		goto out;
	if (tg_buf_avail(out) < TG_SIM_VPCD_HDR_LEN + n) {
		r = TG_ERR_NO_SPACE;
		goto out;
	}
	if ((r = tg_buf_put_u16(out, (uint16_t)n)) != 0)
		goto out;
	r = tg_buf_put_bytes(out, p, n);
out:
	return r;
}

enum tg_sim_vpcd_msg
tg_sim_vpcd_classify(const struct tg_buf *payload)
{
	enum tg_sim_vpcd_msg m = TG_SIM_VPCD_MSG_APDU;
	uint8_t c = 0;

	switch (tg_buf_remaining(payload)) {
	case 0:
		m = TG_SIM_VPCD_MSG_EMPTY;
		break;
	case 1:
		(void)tg_buf_peek_u8(payload, &c);
		switch (c) {
		case TG_SIM_VPCD_CTRL_OFF:
			m = TG_SIM_VPCD_MSG_POWER_OFF;
			break;
		case TG_SIM_VPCD_CTRL_ON:
			m = TG_SIM_VPCD_MSG_POWER_ON;
			break;
		case TG_SIM_VPCD_CTRL_RESET:
			m = TG_SIM_VPCD_MSG_RESET;
			break;
		case TG_SIM_VPCD_CTRL_ATR:
			m = TG_SIM_VPCD_MSG_ATR;
			break;
		default:
			m = TG_SIM_VPCD_MSG_UNKNOWN_CTRL;
			break;
		}
		break;
	default:
		m = TG_SIM_VPCD_MSG_APDU;
		break;
	}
	return m;
}

int
tg_sim_vpcd_addr_parse(const char *s, char *host, size_t hostcap, uint16_t *port,
                       struct tg_error *err)
{
	const char *colon, *hs, *he;
	char *end = NULL;
	unsigned long p;
	size_t hl;
	int r = TG_ERR_USAGE;

	if (s == NULL || (colon = strrchr(s, ':')) == NULL)
		goto bad;
	hs = s;
	he = colon;
	if (*s == '[') {
		/* [IPv6]:PORT */
		if (colon == s || colon[-1] != ']')
			goto bad;
		hs = s + 1;
		he = colon - 1;
	}
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= hostcap)
		goto bad;
	/* Digits only: strtoul alone would take " 1" or "+1". */
	if (colon[1] < '0' || colon[1] > '9')
		goto bad;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || p == 0 || p > 65535)
		goto bad;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	r = 0;
	goto out;
bad:
	tg_error_set(err, TG_ERR_USAGE,
	             "vpcd address '%s' is not HOST:PORT (e.g. 127.0.0.1:35963, the port of the "
	             "vpcd reader in pcscd's reader.conf)",
	             s != NULL ? s : "");
out:
	return r;
}

/* ---- connection ---- */

struct tg_sim_vpcd {
	struct event_base *base;
	struct tg_sim_vpcd_card card;
	char *host;
	uint16_t port;
	struct bufferevent *bev;
	struct event *retry;   /* reconnect timer */
	struct event *release; /* delayed response timer */
	unsigned backoff_ms;
	unsigned failures; /* consecutive failed connects, for logging */
	int inserted;
	int connected;
	int held;             /* a response waits in rsp for the release timer */
	uint8_t rsp[RSP_CAP]; /* the card's response APDU */
	size_t rsplen;        /* bytes in rsp */
	uint8_t frame[TG_SIM_VPCD_HDR_LEN + RSP_CAP]; /* an outgoing frame */
};

static void vpcd_connect(struct tg_sim_vpcd *v);

static void
vpcd_close(struct tg_sim_vpcd *v)
{
	if (v->bev != NULL) {
		bufferevent_free(v->bev);
		v->bev = NULL;
	}
	if (v->release != NULL)
		evtimer_del(v->release);
	v->held = 0;
	v->connected = 0;
	tg_wipe(v->rsp, sizeof(v->rsp));
	tg_wipe(v->frame, sizeof(v->frame));
}

static void
vpcd_schedule_retry(struct tg_sim_vpcd *v)
{
	struct timeval tv;

	if (v->inserted) {
		tv.tv_sec = v->backoff_ms / 1000;
		tv.tv_usec = (v->backoff_ms % 1000) * 1000;
		evtimer_add(v->retry, &tv);
		v->backoff_ms *= 2;
		if (v->backoff_ms > BACKOFF_MAX_MS)
			v->backoff_ms = BACKOFF_MAX_MS;
	}
}

static void
vpcd_lost(struct tg_sim_vpcd *v, const char *why)
{
	if (v->connected)
		tg_log_warn("sim.vpcd.lost", "connection to vpcd %s:%u lost (%s); reconnecting",
		            v->host, v->port, why);
	else if (v->failures++ == 0)
		tg_log_warn("sim.vpcd.connect",
		            "cannot connect to vpcd %s:%u (%s); is pcscd running with the vpcd "
		            "reader on that port? retrying",
		            v->host, v->port, why);
	else
		tg_log_debug("sim.vpcd.connect", "retry failed: %s", why);
	vpcd_close(v);
	/* A new connection is a fresh reader session: the card starts cold. */
	if (v->card.power_off != NULL)
		v->card.power_off(v->card.ctx);
	vpcd_schedule_retry(v);
}

/* Queues the n bytes at p as one frame (never an empty one). */
static int
vpcd_send(struct tg_sim_vpcd *v, const uint8_t *p, size_t n)
{
	struct tg_buf w;
	int r;

	tg_buf_writer(&w, v->frame, sizeof(v->frame));
	if ((r = tg_sim_vpcd_frame_put(&w, p, n)) != 0)
		goto out;
	if (bufferevent_write(v->bev, tg_buf_data(&w), tg_buf_len(&w)) != 0)
		r = TG_ERR_IO;
out:
	tg_wipe(v->frame, tg_buf_len(&w));
	return r;
}

static void vpcd_process(struct tg_sim_vpcd *v);

static void
vpcd_release_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tg_sim_vpcd *v = arg;

	if (!v->held || v->bev == NULL)
		goto out;
	v->held = 0;
	if (vpcd_send(v, v->rsp, v->rsplen) != 0) {
		vpcd_lost(v, "write failed");
		goto out;
	}
	tg_wipe(v->rsp, v->rsplen);
	bufferevent_enable(v->bev, EV_READ);
	vpcd_process(v);
out:
	return;
}

/* Handles one payload; returns 0, or an error after which the caller drops
 * the connection. */
static int
vpcd_handle(struct tg_sim_vpcd *v, const struct tg_buf *payload)
{
	const uint8_t *atr;
	size_t atrlen = 0;
	uint32_t delay_ms = 0;
	struct timeval tv;
	int r = 0;

	switch (tg_sim_vpcd_classify(payload)) {
	case TG_SIM_VPCD_MSG_POWER_OFF:
		tg_log_debug("sim.vpcd.ctrl", "power off");
		if (v->card.power_off != NULL)
			v->card.power_off(v->card.ctx);
		break;
	case TG_SIM_VPCD_MSG_POWER_ON:
	case TG_SIM_VPCD_MSG_RESET:
		tg_log_debug("sim.vpcd.ctrl", "power on / reset");
		if (v->card.reset != NULL)
			v->card.reset(v->card.ctx);
		break;
	case TG_SIM_VPCD_MSG_ATR:
		atr = v->card.atr(v->card.ctx, &atrlen);
		r = vpcd_send(v, atr, atrlen);
		break;
	case TG_SIM_VPCD_MSG_UNKNOWN_CTRL:
		tg_log_warn("sim.vpcd.ctrl", "ignoring unknown control byte from vpcd");
		break;
	case TG_SIM_VPCD_MSG_EMPTY:
		tg_log_warn("sim.vpcd.frame", "ignoring empty frame from vpcd");
		break;
	case TG_SIM_VPCD_MSG_APDU:
		v->rsplen = 0;
		r = v->card.apdu(v->card.ctx, tg_buf_cur(payload), tg_buf_remaining(payload),
		                 v->rsp, RSP_CAP, &v->rsplen, &delay_ms);
		if (r != 0)
			break;
		if (v->rsplen == 0 || v->rsplen > RSP_CAP) {
			r = TG_ERR_INTERNAL;
			break;
		}
		if (delay_ms == 0) {
			r = vpcd_send(v, v->rsp, v->rsplen);
			tg_wipe(v->rsp, v->rsplen);
			break;
		}
		/* Hold the response: pcscd sends nothing else meanwhile. */
		v->held = 1;
		bufferevent_disable(v->bev, EV_READ);
		tv.tv_sec = delay_ms / 1000;
		tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
		evtimer_add(v->release, &tv);
		break;
	default:
		r = TG_ERR_INTERNAL;
		break;
	}
	return r;
}

/* Handles every complete frame in the input buffer. */
static void
vpcd_process(struct tg_sim_vpcd *v)
{
	struct evbuffer *in;
	struct tg_buf rd, payload;
	uint8_t hdr[TG_SIM_VPCD_HDR_LEN];
	size_t have, need;
	uint16_t n = 0;
	const uint8_t *p;

	while (v->bev != NULL && !v->held) {
		in = bufferevent_get_input(v->bev);
		have = evbuffer_get_length(in);
		if (have < sizeof(hdr))
			break;
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
			break;
		tg_buf_reader(&rd, hdr, sizeof(hdr));
		if (tg_buf_get_u16(&rd, &n) != 0)
			break;
		need = sizeof(hdr) + n;
		if (have < need)
			break;
		if ((p = evbuffer_pullup(in, (ev_ssize_t)need)) == NULL) {
			vpcd_lost(v, "out of memory");
			break;
		}
		tg_buf_reader(&rd, p, need);
		if (tg_sim_vpcd_frame_get(&rd, &payload) != 0) {
			vpcd_lost(v, "bad frame");
			break;
		}
		if (vpcd_handle(v, &payload) != 0) {
			evbuffer_drain(in, need);
			vpcd_lost(v, "card error");
			break;
		}
		evbuffer_drain(in, need);
	}
}

/*
 * The vpcd driver writes a frame's length and its payload with two send()
 * calls on a socket with Nagle on: the payload waits for our ACK of the
 * length, which delayed ACK holds back ~40 ms, per APDU. Quick ACK mode
 * ends that; Linux drops it again after a while, so it is renewed on every
 * read.
 */
static void
vpcd_quickack(struct bufferevent *bev)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void
vpcd_read_cb(struct bufferevent *bev, void *arg)
{
	vpcd_quickack(bev);
	vpcd_process(arg);
}

static void
vpcd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tg_sim_vpcd *v = arg;
	char why[128];
	int e = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		v->connected = 1;
		v->failures = 0;
		v->backoff_ms = BACKOFF_FIRST_MS;
		vpcd_quickack(bev);
		tg_log_info("sim.vpcd.connect", "connected to vpcd %s:%u: card inserted", v->host,
		            v->port);
	} else {
		if (what & BEV_EVENT_EOF)
			snprintf(why, sizeof(why), "closed by pcscd");
		else
			snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(e));
		vpcd_lost(v, why);
	}
}

static void
vpcd_connect(struct tg_sim_vpcd *v)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	evutil_socket_t fd = -1;
	int one = 1, gai;

	if (!v->inserted || v->bev != NULL)
		goto out;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", v->port);
	if ((gai = getaddrinfo(v->host, portstr, &hints, &res)) != 0) {
		vpcd_lost(v, gai_strerror(gai));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		/* One small frame per APDU: do not let Nagle hold it back. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (evutil_make_socket_nonblocking(fd) != 0) {
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	if (fd < 0) {
		vpcd_lost(v, "socket() failed");
		goto out;
	}
	v->bev = bufferevent_socket_new(v->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (v->bev == NULL) {
		close(fd);
		vpcd_lost(v, "out of memory");
		goto out;
	}
	bufferevent_setcb(v->bev, vpcd_read_cb, NULL, vpcd_event_cb, v);
	if (bufferevent_socket_connect(v->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
		vpcd_lost(v, strerror(errno));
		goto out;
	}
	bufferevent_enable(v->bev, EV_READ | EV_WRITE);
out:
	if (res != NULL)
		freeaddrinfo(res);
}

static void
vpcd_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	vpcd_connect(arg);
}

int
tg_sim_vpcd_new(struct event_base *base, const char *host, uint16_t port,
                const struct tg_sim_vpcd_card *card, struct tg_sim_vpcd **out, struct tg_error *err)
{
	struct tg_sim_vpcd *v = NULL;
	int r = TG_ERR_ALLOC;

	if (card == NULL || card->apdu == NULL || card->atr == NULL) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG, "vpcd: no card given");
		goto out;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL || (v->host = strdup(host)) == NULL)
		goto fail;
	v->base = base;
	v->port = port;
	v->card = *card;
	v->backoff_ms = BACKOFF_FIRST_MS;
	v->retry = evtimer_new(base, vpcd_retry_cb, v);
	v->release = evtimer_new(base, vpcd_release_cb, v);
	if (v->retry == NULL || v->release == NULL)
		goto fail;
	*out = v;
	v = NULL;
	r = 0;
	goto out;
fail:
	tg_error_set(err, TG_ERR_ALLOC, "vpcd: out of memory");
out:
	tg_sim_vpcd_free(v);
	return r;
}

void
tg_sim_vpcd_insert(struct tg_sim_vpcd *v)
{
	if (!v->inserted) {
		v->inserted = 1;
		v->failures = 0;
		v->backoff_ms = BACKOFF_FIRST_MS;
		vpcd_connect(v);
	}
}

void
tg_sim_vpcd_remove(struct tg_sim_vpcd *v)
{
	v->inserted = 0;
	evtimer_del(v->retry);
	vpcd_close(v);
	if (v->card.power_off != NULL)
		v->card.power_off(v->card.ctx);
}

void
tg_sim_vpcd_free(struct tg_sim_vpcd *v)
{
	if (v == NULL)
		return;
	vpcd_close(v);
	if (v->retry != NULL)
		event_free(v->retry);
	if (v->release != NULL)
		event_free(v->release);
	free(v->host);
	free(v);
}
