/* pcsc.c — the PC/SC transport of `tokengate enroll` (tg_pcsc.h). */
#include "tg_pcsc.h"

#include <PCSC/winscard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_secret.h"

#define CLA_ISO          0x00
#define CLA_CHAIN        0x10 /* ISO 7816-4 5.1.1: more commands follow */
#define INS_GET_RESPONSE 0xC0
#define SW_OK            0x9000
#define SW1_MORE_DATA    0x61 /* ISO 7816-4 5.1.3: 61xx, GET RESPONSE */
#define APDU_HDR         5
#define APDU_MAX         (APDU_HDR + TG_PCSC_SHORT_MAX + 1)
#define RAPDU_MAX        (256 + 2)
#define READERS_MAX      (64 * 1024)
#define GET_RESPONSE_MAX 64 /* 64 * 256 bytes > TG_PCSC_RSP_MAX */

struct tg_pcsc {
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	int have_ctx;
	int have_card;
	int in_tx;
	char reader[512];
};

/* Appends "'a', 'b'" (every reader of the list) to msg. */
static void
readers_str(const uint8_t *list, size_t n, char *msg, size_t len)
{
	struct tg_buf b;
	size_t used = 0, k;
	char name[256];
	uint8_t c;

	msg[0] = '\0';
	tg_buf_reader(&b, list, n);
	while (tg_buf_remaining(&b) > 0 && used < len) {
		k = strnlen((const char *)tg_buf_cur(&b), tg_buf_remaining(&b));
		if (k == 0 || k == tg_buf_remaining(&b) || k >= sizeof(name) ||
		    tg_buf_get_bytes(&b, (uint8_t *)name, k) != 0 || tg_buf_get_u8(&b, &c) != 0)
			break;
		name[k] = '\0';
		used += (size_t)snprintf(msg + used, len - used, "%s'%s'", used ? ", " : "", name);
	}
	if (used == 0)
		snprintf(msg, len, "none");
}

int
tg_pcsc_reader_pick(const uint8_t *list, size_t n, const char *want, char *out, size_t outlen,
                    struct tg_error *err)
{
	struct tg_buf b;
	char name[256], found[256], present[2048];
	size_t k;
	int nsub = 0, exact = 0, r = TG_ERR_FORMAT;
	uint8_t nul;

	found[0] = '\0';
	tg_buf_reader(&b, list, n);
	while (tg_buf_remaining(&b) > 0) {
		k = strnlen((const char *)tg_buf_cur(&b), tg_buf_remaining(&b));
		if (k == tg_buf_remaining(&b)) {
			tg_error_set(err, r, "the reader list from pcscd is not NUL-terminated");
			goto out;
		}
		if (k == 0)
			break; /* the empty name ends the list */
		if (k >= sizeof(name)) {
			tg_error_set(err, r, "a reader name from pcscd is too long");
			goto out;
		}
		if (tg_buf_get_bytes(&b, (uint8_t *)name, k) != 0 || tg_buf_get_u8(&b, &nul) != 0)
			goto out;
		name[k] = '\0';
		if (strcmp(name, want) == 0) {
			snprintf(found, sizeof(found), "%s", name);
			exact = 1;
			break;
		}
		if (strstr(name, want) != NULL) {
			if (nsub++ == 0)
				snprintf(found, sizeof(found), "%s", name);
		}
	}
	readers_str(list, n, present, sizeof(present));
	if (!exact && nsub == 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "no reader matches '%s'; readers present: %s; give --reader "
		                 "with one of these names (or a unique part of it)",
		                 want, present);
		goto out;
	}
	if (!exact && nsub > 1) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "%d readers match '%s': %s; give --reader with the full name",
		                 nsub, want, present);
		goto out;
	}
	if (strlen(found) >= outlen) {
		r = tg_error_set(err, TG_ERR_NO_SPACE, "reader name too long");
		goto out;
	}
	snprintf(out, outlen, "%s", found);
	r = 0;
out:
	return r;
}

static int
pcsc_fail(LONG rv, const char *call, const char *reader, struct tg_error *err)
{
	int code = TG_ERR_PCSC;
	const char *fix = "check that pcscd runs (systemctl status pcscd) and try again";

	switch (rv) {
	case SCARD_E_NO_SERVICE:
		fix = "pcscd is not running: start it (systemctl start pcscd.socket)";
		break;
	case SCARD_E_NO_READERS_AVAILABLE:
		fix = "no smart card reader is connected: plug in the token";
		break;
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_REMOVED_CARD:
		code = TG_ERR_CARD_REMOVED;
		fix = "no token in the reader: insert it and try again";
		break;
	case SCARD_E_SHARING_VIOLATION:
		fix = "another program holds the token exclusively: close it (e.g. "
		      "gpg-agent/scdaemon) "
		      "and try again";
		break;
	case SCARD_W_RESET_CARD:
		fix = "the token was reset by another program during enrollment: try again";
		break;
	case SCARD_E_PROTO_MISMATCH:
		fix = "the card does not speak T=1: it is not a PIV token that enroll supports";
		break;
	default:
		break;
	}
	return tg_error_set(err, code, "%s for reader '%s' failed: %s (0x%08lX); %s", call,
	                    reader ? reader : "?", pcsc_stringify_error(rv), (unsigned long)rv,
	                    fix);
}

int
tg_pcsc_open(const char *reader, struct tg_pcsc **out, struct tg_error *err)
{
	struct tg_pcsc *p = NULL;
	LPSTR list = NULL;
	DWORD len = SCARD_AUTOALLOCATE, proto = 0;
	LONG rv;
	int r = TG_ERR_ALLOC;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto out;
	if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx)) !=
	    SCARD_S_SUCCESS) {
		r = pcsc_fail(rv, "SCardEstablishContext", reader, err);
		goto out;
	}
	p->have_ctx = 1;
	rv = SCardListReaders(p->ctx, NULL, (LPSTR)&list, &len);
	if (rv == SCARD_E_NO_READERS_AVAILABLE) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "no reader matches '%s'; readers present: none; plug in the "
		                 "token (pcscd sees no reader)",
		                 reader);
		goto out;
	}
	if (rv != SCARD_S_SUCCESS) {
		r = pcsc_fail(rv, "SCardListReaders", reader, err);
		goto out;
	}
	if (len > READERS_MAX) {
		r = tg_error_set(err, TG_ERR_FORMAT, "pcscd returned a reader list too long");
		goto out;
	}
	r = tg_pcsc_reader_pick((const uint8_t *)list, len, reader, p->reader, sizeof(p->reader),
	                        err);
	(void)SCardFreeMemory(p->ctx, list);
	list = NULL;
	if (r != 0)
		goto out;
	rv = SCardConnect(p->ctx, p->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &p->card,
	                  &proto);
	if (rv != SCARD_S_SUCCESS) {
		r = pcsc_fail(rv, "SCardConnect (T=1)", p->reader, err);
		goto out;
	}
	p->have_card = 1;
	/* one transaction for the whole enrollment: no other program's
	 * commands land between ours (e.g. between VERIFY and the signature) */
	if ((rv = SCardBeginTransaction(p->card)) != SCARD_S_SUCCESS) {
		r = pcsc_fail(rv, "SCardBeginTransaction", p->reader, err);
		goto out;
	}
	p->in_tx = 1;
	*out = p;
	p = NULL;
	r = 0;
out:
	if (list != NULL)
		(void)SCardFreeMemory(p->ctx, list);
	tg_pcsc_close(p);
	return r;
}

void
tg_pcsc_close(struct tg_pcsc *p)
{
	if (p == NULL)
		return;
	if (p->in_tx)
		(void)SCardEndTransaction(p->card, SCARD_LEAVE_CARD);
	/* the reset clears the PIN and management key authentication */
	if (p->have_card)
		(void)SCardDisconnect(p->card, SCARD_RESET_CARD);
	if (p->have_ctx)
		(void)SCardReleaseContext(p->ctx);
	free(p);
}

const char *
tg_pcsc_reader(const struct tg_pcsc *p)
{
	return p->reader;
}

/*
 * One exchange of a raw APDU (n bytes at apdu): the response data is
 * appended to rsp, *sw gets SW1SW2.
 */
static int
exchange(struct tg_pcsc *p, const uint8_t *apdu, size_t n, struct tg_buf *rsp, uint16_t *sw,
         struct tg_error *err)
{
	uint8_t raw[RAPDU_MAX];
	DWORD rlen = sizeof(raw);
	struct tg_buf b, data;
	LONG rv;
	int r;

	rv = SCardTransmit(p->card, SCARD_PCI_T1, apdu, (DWORD)n, NULL, raw, &rlen);
	if (rv != SCARD_S_SUCCESS) {
		r = pcsc_fail(rv, "SCardTransmit", p->reader, err);
		goto out;
	}
	r = TG_ERR_FORMAT;
	if (rlen < 2 || rlen > sizeof(raw)) {
		tg_error_set(err, r, "the token in '%s' answered %lu bytes, not an APDU response",
		             p->reader, (unsigned long)rlen);
		goto out;
	}
	tg_buf_reader(&b, raw, rlen);
	if (tg_buf_get_sub(&b, rlen - 2, &data) != 0 || tg_buf_get_u16(&b, sw) != 0)
		goto out;
	if (tg_buf_len(rsp) + tg_buf_remaining(&data) > TG_PCSC_RSP_MAX ||
	    (r = tg_buf_put_buf(rsp, &data)) != 0) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "the token in '%s' answered more than %d bytes", p->reader,
		                 TG_PCSC_RSP_MAX);
		goto out;
	}
	r = 0;
out:
	tg_wipe(raw, sizeof(raw));
	return r;
}

int
tg_pcsc_transmit(struct tg_pcsc *p, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
                 size_t n, int want_le, struct tg_buf *rsp, uint16_t *sw, struct tg_error *err)
{
	uint8_t apdu[APDU_MAX];
	struct tg_buf in, w;
	size_t chunk;
	uint8_t le;
	int r = TG_ERR_INTERNAL, i, last;

	tg_buf_reader(&in, data, n);
	do {
		chunk = tg_buf_remaining(&in);
		if (chunk > TG_PCSC_SHORT_MAX)
			chunk = TG_PCSC_SHORT_MAX;
		last = chunk == tg_buf_remaining(&in);
		tg_buf_writer(&w, apdu, sizeof(apdu));
		if (tg_buf_put_u8(&w, last ? CLA_ISO : CLA_CHAIN) != 0 ||
		    tg_buf_put_u8(&w, ins) != 0 || tg_buf_put_u8(&w, p1) != 0 ||
		    tg_buf_put_u8(&w, p2) != 0 ||
		    (chunk > 0 && tg_buf_put_u8(&w, (uint8_t)chunk) != 0) ||
		    (chunk > 0 && tg_buf_put_bytes(&w, tg_buf_cur(&in), chunk) != 0) ||
		    tg_buf_skip(&in, chunk) != 0 || (last && want_le && tg_buf_put_u8(&w, 0) != 0))
			goto out;
		tg_buf_reset(rsp);
		if ((r = exchange(p, tg_buf_data(&w), tg_buf_len(&w), rsp, sw, err)) != 0)
			goto out;
		if (!last && *sw != SW_OK)
			goto done; /* the card refused a chained part */
	} while (!last);
	/* ISO 7816-4 5.1.3: 61xx, xx more bytes (00: 256 or more) */
	for (i = 0; (*sw >> 8) == SW1_MORE_DATA; i++) {
		if (i == GET_RESPONSE_MAX) {
			r = tg_error_set(err, TG_ERR_FORMAT,
			                 "the token in '%s' keeps answering 61xx (more data)",
			                 p->reader);
			goto out;
		}
		le = (uint8_t)(*sw & 0xFF);
		tg_buf_writer(&w, apdu, sizeof(apdu));
		if (tg_buf_put_u8(&w, CLA_ISO) != 0 || tg_buf_put_u8(&w, INS_GET_RESPONSE) != 0 ||
		    tg_buf_put_u16(&w, 0) != 0 || tg_buf_put_u8(&w, le) != 0)
			goto out;
		if ((r = exchange(p, tg_buf_data(&w), tg_buf_len(&w), rsp, sw, err)) != 0)
			goto out;
	}
done:
	r = 0;
out:
	tg_wipe(apdu, sizeof(apdu));
	return r;
}
