/* piv.c — factory PIN, PUK and management key through PIV GET METADATA (piv.h). */
#include "piv.h"

#include <PCSC/winscard.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_err.h"

/* Yubico GET METADATA: the "default value" item. */
#define PIV_META_TAG_DEFAULT 0x05
/* ISO/IEC 7816-4 status words doctor looks at. */
#define SW_OK            0x9000
#define SW1_MORE_DATA    0x61
#define PIV_INS_SELECT   0xA4
#define PIV_INS_GET_RESP 0xC0
#define PIV_INS_GET_META 0xF7
#define PIV_RSP_MAX      258
#define PIV_GET_RESP_MAX 4

/* SP 800-73-4 Part 2, 3.1.1: SELECT by the PIV application's AID (the
 * truncated form every PIV card accepts, as yubico-piv-tool sends it). */
static const uint8_t piv_select[] = {0x00, PIV_INS_SELECT, 0x04, 0x00, 0x05,
                                     0xA0, 0x00,           0x00, 0x03, 0x08};

int
tg_doctor_piv_default_parse(const uint8_t *p, size_t n, int *isdef)
{
	struct tg_buf b, v;
	uint8_t d;
	int r;

	tg_buf_reader(&b, p, n);
	if ((r = tg_buf_find_tlv(&b, PIV_META_TAG_DEFAULT, &v)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (tg_buf_remaining(&v) != 1 || tg_buf_get_u8(&v, &d) != 0 || d > 1)
		goto out;
	*isdef = d ? TG_DOCTOR_DEFAULT_YES : TG_DOCTOR_DEFAULT_NO;
	r = 0;
out:
	return r;
}

/*
 * Sends one APDU and collects its whole response (following 61xx with GET
 * RESPONSE); returns the final status word, 0 when the transmission
 * failed. *n is the response body's length (without the status word).
 */
static unsigned
piv_transmit(SCARDHANDLE h, const SCARD_IO_REQUEST *pci, const uint8_t *apdu, size_t alen,
             uint8_t *out, size_t *n)
{
	uint8_t rsp[PIV_RSP_MAX], getresp[] = {0x00, PIV_INS_GET_RESP, 0x00, 0x00, 0x00};
	const uint8_t *cmd = apdu;
	size_t clen = alen;
	DWORD rlen;
	unsigned sw = 0, i;

	*n = 0;
	for (i = 0; i < PIV_GET_RESP_MAX; i++) {
		rlen = sizeof(rsp);
		if (SCardTransmit(h, pci, cmd, (DWORD)clen, NULL, rsp, &rlen) != SCARD_S_SUCCESS ||
		    rlen < 2 || rlen - 2 > PIV_RSP_MAX - 2 - *n) {
			sw = 0;
			break;
		}
		memcpy(out + *n, rsp, rlen - 2);
		*n += rlen - 2;
		sw = (unsigned)rsp[rlen - 2] << 8 | rsp[rlen - 1];
		if (rsp[rlen - 2] != SW1_MORE_DATA)
			break;
		getresp[4] = rsp[rlen - 1];
		cmd = getresp;
		clen = sizeof(getresp);
	}
	return sw;
}

/* GET METADATA of key reference `ref`: its default flag, or UNKNOWN. */
static int
piv_default_get(SCARDHANDLE h, const SCARD_IO_REQUEST *pci, uint8_t ref)
{
	const uint8_t apdu[] = {0x00, PIV_INS_GET_META, 0x00, ref, 0x00};
	uint8_t rsp[PIV_RSP_MAX];
	size_t n;
	int isdef = TG_DOCTOR_DEFAULT_UNKNOWN;

	if (piv_transmit(h, pci, apdu, sizeof(apdu), rsp, &n) != SW_OK ||
	    tg_doctor_piv_default_parse(rsp, n, &isdef) != 0)
		isdef = TG_DOCTOR_DEFAULT_UNKNOWN;
	return isdef;
}

/* Connects to the card in rd, reads the three default flags. */
static void
piv_reader_probe(SCARDCONTEXT ctx, struct tg_doctor_reader *rd)
{
	uint8_t rsp[PIV_RSP_MAX];
	const SCARD_IO_REQUEST *pci;
	SCARDHANDLE h;
	DWORD proto = 0;
	size_t n;

	if (SCardConnect(ctx, rd->name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
	                 &h, &proto) != SCARD_S_SUCCESS)
		goto out;
	pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
	if (piv_transmit(h, pci, piv_select, sizeof(piv_select), rsp, &n) == SW_OK) {
		rd->piv = 1;
		rd->pin_default = piv_default_get(h, pci, TG_DOCTOR_PIV_REF_PIN);
		rd->puk_default = piv_default_get(h, pci, TG_DOCTOR_PIV_REF_PUK);
		rd->mgm_default = piv_default_get(h, pci, TG_DOCTOR_PIV_REF_MGM);
	}
	/* Leave the card as it is: a reset would log out other programs. */
	(void)SCardDisconnect(h, SCARD_LEAVE_CARD);
out:
	return;
}

/* Adds "the PIV token in reader 'R' still has the default WHAT: FIX,
 * yubico-piv-tool -r 'R' -a ACTION (TAIL)". */
static int
piv_problem_add(struct tg_doctor_report *r, const char *reader, const char *what, const char *fix,
                const char *action, const char *tail)
{
	char *f;
	int rc = TG_ERR_ALLOC;

	if ((f = tg_doctor_str_printf("%s: yubico-piv-tool -r '%s' -a %s (%s)", fix, reader, action,
	                              tail)) == NULL)
		goto out;
	rc = tg_doctor_problem_add(r, f, "the PIV token in reader '%s' still has the default %s",
	                           reader, what);
out:
	free(f);
	return rc;
}

static int
piv_problems_add(struct tg_doctor_report *r, const struct tg_doctor_reader *rd)
{
	int rc = 0;

	if (rd->pin_default == TG_DOCTOR_DEFAULT_YES)
		rc = piv_problem_add(r, rd->name, "PIN (123456)", "change it", "change-pin",
		                     "it asks for the current and the new PIN");
	if (rc == 0 && rd->puk_default == TG_DOCTOR_DEFAULT_YES)
		rc = piv_problem_add(r, rd->name, "PUK (12345678)", "change it", "change-puk",
		                     "it asks for the current and the new PUK");
	if (rc == 0 && rd->mgm_default == TG_DOCTOR_DEFAULT_YES)
		rc = piv_problem_add(r, rd->name, "management key (010203...0708)",
		                     "set a new one and keep it safe (enrollment needs it)",
		                     "set-mgm-key", "it asks for the new key");
	return rc;
}

int
tg_doctor_piv_probe(struct tg_doctor_report *r)
{
	struct tg_doctor_reader *rd;
	SCARDCONTEXT ctx = 0;
	size_t i;
	int rc = 0;

	for (i = 0; i < r->pcsc.n; i++) {
		rd = &r->pcsc.readers[i];
		rd->pin_default = rd->puk_default = rd->mgm_default = TG_DOCTOR_DEFAULT_UNKNOWN;
	}
	if (!r->pcsc.reachable || r->pcsc.error != NULL ||
	    SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS)
		goto out;
	for (i = 0; i < r->pcsc.n && rc == 0; i++) {
		rd = &r->pcsc.readers[i];
		if (!rd->card_present || (rd->state & (SCARD_STATE_MUTE | SCARD_STATE_UNAVAILABLE |
		                                       SCARD_STATE_EXCLUSIVE)))
			continue;
		piv_reader_probe(ctx, rd);
		rc = piv_problems_add(r, rd);
	}
	SCardReleaseContext(ctx);
out:
	return rc;
}
