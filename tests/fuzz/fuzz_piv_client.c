/*
 * fuzz_piv_client.c — fuzz target for the parsers of the card's answers in
 * host/enroll/piv_client.c (and the reader-list parser of pcsc.c).
 *
 * The first input byte chooses the parser, the second the algorithm (for
 * public keys) or tag (dynamic authentication); the rest is the answer:
 *   0  GENERATE response (7F49 template)
 *   1  GET METADATA response
 *   2  GET DATA certificate object (53 { 70 71 FE })
 *   3  ATTEST response (one DER certificate)
 *   4  GENERAL AUTHENTICATE response (7C { tag })
 *   5  GET DATA response (53 L value)
 *   6  PC/SC reader multi-string, picking "PCD"
 * Properties: a parser either succeeds with a usable result or fails with
 * a negative code and a message; an accepted dynamic authentication value
 * lies within the input; a picked reader is a NUL-terminated name
 * containing "PCD". A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_pcsc.h"
#include "tg_pivc.h"
#include "tg_fuzz.h"

static const uint8_t algs[] = {TG_PIVC_ALG_ECCP256, TG_PIVC_ALG_ECCP384, TG_PIVC_ALG_RSA2048, 0x00};

static void
result(int r, const struct tg_error *err)
{
	check(r <= 0);
	check(r == 0 || err->msg[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_error err;
	struct tg_pivc_meta m;
	struct tg_buf v;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	char out[256];
	const uint8_t *p;
	uint8_t which, sel, *copy;
	size_t n;
	int r;

	if (size < 2)
		return 0;
	which = data[0];
	sel = data[1];
	n = size - 2;
	/* exact-size copy so an over-read is caught */
	copy = malloc(n ? n : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 2, n);
	p = copy;
	tg_error_clear(&err);
	switch (which % 7) {
	case 0:
		r = tg_pivc_parse_generate(p, n, algs[sel % sizeof(algs)], &pk, &err);
		result(r, &err);
		check((r == 0) == (pk != NULL));
		break;
	case 1:
		r = tg_pivc_parse_metadata(p, n, &m, &err);
		result(r, &err);
		check(r == 0 || m.pub == NULL);
		check(m.is_default >= -1 && m.is_default <= 1);
		tg_pivc_meta_clear(&m);
		break;
	case 2:
		r = tg_pivc_parse_cert_object(p, n, &x, &err);
		result(r, &err);
		check((r == 0) == (x != NULL));
		break;
	case 3:
		r = tg_pivc_parse_cert_der(p, n, &x, &err);
		result(r, &err);
		check((r == 0) == (x != NULL));
		break;
	case 4:
		r = tg_pivc_parse_dynauth(p, n, sel, &v, &err);
		result(r, &err);
		check(r != 0 || tg_buf_remaining(&v) <= n);
		break;
	case 5:
		r = tg_pivc_parse_object(p, n, &v, &err);
		result(r, &err);
		check(r != 0 || tg_buf_remaining(&v) + 2 <= n);
		break;
	default:
		r = tg_pcsc_reader_pick(p, n, "PCD", out, sizeof(out), &err);
		result(r, &err);
		check(r != 0 || (strnlen(out, sizeof(out)) < sizeof(out) && strstr(out, "PCD")));
		break;
	}
	EVP_PKEY_free(pk);
	X509_free(x);
	free(copy);
	return 0;
}
