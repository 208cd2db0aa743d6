/*
 * fuzz_provenance.c — fuzz target for the key-provenance extension decoder
 * (tg_prov_decode, host/ca/provenance.c).
 *
 * For every input: decode; when it is accepted, the decoded value must
 * satisfy the rules of tg_prov.h and re-encode to the input byte for byte
 * (the decoder accepts only DER). A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tg_prov.h"
#include "tg_fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_prov p;
	struct tg_error err;
	uint8_t *der = NULL;
	size_t len = 0;

	tg_error_clear(&err);
	if (tg_prov_decode(data, size, &p, &err) != 0) {
		check(err.code == TG_ERR_FORMAT && err.msg[0] != '\0');
		return 0;
	}
	check(p.version == TG_PROV_VERSION);
	check(p.level == TG_PROV_HSM_OPERATOR || p.level == TG_PROV_DEVICE_ATTESTED);
	check(strlen(p.serial) >= 1 && strlen(p.serial) <= TG_PROV_SERIAL_MAX);
	check(p.level != TG_PROV_DEVICE_ATTESTED || p.has_att_sha256);
	check(tg_prov_encode(&p, &der, &len, NULL) == 0);
	check(len == size && memcmp(der, data, size) == 0);
	OPENSSL_free(der);
	return 0;
}
