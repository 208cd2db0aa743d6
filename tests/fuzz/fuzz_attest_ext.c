/*
 * fuzz_attest_ext.c — fuzz target for the attestation extension parser
 * (host/ca/attest.c).
 *
 * The first input byte chooses what the rest is:
 *   3, 7, 8, 9   the value of extension 1.3.6.1.4.1.41482.3.<n>
 *                (tg_att_ext_decode);
 *   'C'          a DER CSR: the attestation and F9 certificates it carries
 *                in extensions (tg_att_from_csr), then the facts of the
 *                attestation;
 *   anything else  a DER certificate: parsed with d2i_X509, then its facts
 *                (slot from the subject, key algorithm, every 41482.3
 *                extension) extracted with tg_att_facts_get.
 * Properties: every failure carries TG_ERR_ATTESTATION and a message; an
 * accepted policy value is one of the known names; an accepted firmware
 * prints as "a.b.c". A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "tg_att.h"
#include "tg_fuzz.h"

static void
facts_check(const struct tg_att_facts *f)
{
	check(strcmp(tg_att_pin_name(f->pin_policy), "unknown") != 0);
	check(strcmp(tg_att_touch_name(f->touch_policy), "unknown") != 0);
	check(!f->has_firmware || strlen(f->firmware_str) >= 5);
}

#define FUZZ_CSR 'C'

static void
fuzz_csr(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	struct tg_att_facts f;
	struct tg_error err;
	X509_REQ *req;
	X509 *att = NULL, *f9 = NULL;
	int r;

	if ((req = d2i_X509_REQ(NULL, &p, (long)size)) == NULL)
		return;
	tg_error_clear(&err);
	r = tg_att_from_csr(req, &att, &f9, &err);
	check(r == 0 || r == TG_ERR_NOT_FOUND || r == TG_ERR_CRYPTO ||
	      (r == TG_ERR_ATTESTATION && err.msg[0] != '\0'));
	check((r == 0) == (att != NULL && f9 != NULL));
	if (r == 0 && tg_att_facts_get(att, &f, &err) == 0)
		facts_check(&f);
	X509_free(att);
	X509_free(f9);
	X509_REQ_free(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_att_facts f;
	struct tg_error err;
	const unsigned char *p;
	X509 *x;
	int r;

	if (size < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	tg_error_clear(&err);
	switch (data[0]) {
	case TG_ATT_EXT_FIRMWARE:
	case TG_ATT_EXT_SERIAL:
	case TG_ATT_EXT_POLICY:
	case TG_ATT_EXT_FORM_FACTOR:
		r = tg_att_ext_decode((enum tg_att_ext)data[0], data + 1, size - 1, &f, &err);
		check(r == 0 || (r == TG_ERR_ATTESTATION && err.msg[0] != '\0'));
		if (r == 0 && data[0] == TG_ATT_EXT_POLICY)
			facts_check(&f);
		break;
	case FUZZ_CSR:
		fuzz_csr(data + 1, size - 1);
		break;
	default:
		p = data + 1;
		x = d2i_X509(NULL, &p, (long)(size - 1));
		if (x == NULL)
			break;
		r = tg_att_facts_get(x, &f, &err);
		check(r == 0 || (r == TG_ERR_ATTESTATION && err.msg[0] != '\0') ||
		      r == TG_ERR_CRYPTO);
		if (r == 0) {
			facts_check(&f);
			check(strlen(f.slot) == 2);
		}
		X509_free(x);
		break;
	}
	return 0;
}
