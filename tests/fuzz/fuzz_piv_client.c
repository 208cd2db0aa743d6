/*
 * fuzz_piv_client.c — fuzz target for what host/enroll/piv_client.c still
 * parses itself next to libykpiv (whose GENERATE, ATTEST, GET DATA and GET
 * METADATA parsers are Yubico's): the card's bytes that reach our code.
 *
 * The first input byte chooses the parser, the second the algorithm (for
 * public keys) or tag (dynamic authentication); the rest is the answer:
 *   0  public key inner TLVs (GET METADATA tag 04, after
 *      ykpiv_util_parse_metadata)
 *   1  GET METADATA of the management key (its algorithm)
 *   2  GET METADATA of a slot through ykpiv_util_parse_metadata, then its
 *      public key as tg_pivc_metadata reads it
 *   3  ATTEST response (one DER certificate)
 *   4  GENERAL AUTHENTICATE response (7C { tag }, the AES exchange)
 *   5  GENERATE's EC point as ykpiv_util_generate_key returns it
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
#include <ykpiv/ykpiv.h>

#include "tg_pivc.h"
#include "tg_fuzz.h"

static const uint8_t algs[] = {YKPIV_ALGO_ECCP256, YKPIV_ALGO_ECCP384, YKPIV_ALGO_RSA2048, 0x00};

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
	ykpiv_metadata md;
	struct tg_buf v;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	char out[256];
	const uint8_t *p;
	uint8_t which, sel, alg = 0, *copy;
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
		r = tg_pivc_parse_pubkey_inner(p, n, algs[sel % sizeof(algs)], &pk, &err);
		result(r, &err);
		check((r == 0) == (pk != NULL));
		break;
	case 1:
		r = tg_pivc_parse_mgm_alg(p, n, &alg, &err);
		result(r, &err);
		break;
	case 2:
		if (ykpiv_util_parse_metadata(copy, n, &md) != YKPIV_OK)
			break;
		check(md.pubkey_len <= sizeof(md.pubkey));
		r = tg_pivc_parse_pubkey_inner(md.pubkey, md.pubkey_len, md.algorithm, &pk, &err);
		result(r, &err);
		check((r == 0) == (pk != NULL));
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
		r = tg_pivc_pubkey_from_parts(algs[sel % 2], p, n, NULL, 0, NULL, 0, &pk, &err);
		result(r, &err);
		check((r == 0) == (pk != NULL));
		break;
	default:
		r = tg_pivc_reader_pick(p, n, "PCD", out, sizeof(out), &err);
		result(r, &err);
		check(r != 0 || (strnlen(out, sizeof(out)) < sizeof(out) && strstr(out, "PCD")));
		break;
	}
	EVP_PKEY_free(pk);
	X509_free(x);
	free(copy);
	return 0;
}
