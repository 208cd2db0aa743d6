/*
 * fuzz_gate_tickets.c — fuzz target for the gate's session-ticket key file
 * parser (tg_gate_tls_ticket_keys_parse, host/gate/tickets.c).
 *
 * For every input: a refusal is TG_ERR_CONFIG (or out of memory) with a
 * message naming the file ("fz line N: ..." or "fz holds no ...") and
 * hands out no keys; an accepted file gives 1 to 8 keys with distinct
 * names, each taken from the input: the base64 of its first 78 bytes
 * (104 characters, the part every encoding of the key shares) is in it.
 */
/* memmem: _GNU_SOURCE comes from the build (CMake) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tg_fuzz.h"
#include "tg_gate_tls.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_error err;
	uint8_t *keys = NULL;
	unsigned char b64[4 * (TG_GATE_TICKET_KEY_LEN / 3 + 1) + 1];
	size_t n = 0, i, j;

	tg_error_clear(&err);
	if (tg_gate_tls_ticket_keys_parse((const char *)data, size, "fz", &keys, &n, &err) != 0) {
		check(err.code == TG_ERR_CONFIG || err.code == TG_ERR_ALLOC);
		check(err.code == TG_ERR_ALLOC || strncmp(err.msg, "fz line ", 8) == 0 ||
		      strncmp(err.msg, "fz holds no ", 12) == 0);
		check(keys == NULL && n == 0);
		return 0;
	}
	check(n >= 1 && n <= 8 && keys != NULL);
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			check(memcmp(keys + i * TG_GATE_TICKET_KEY_LEN,
			             keys + j * TG_GATE_TICKET_KEY_LEN, 16) != 0);
		check(EVP_EncodeBlock(b64, keys + i * TG_GATE_TICKET_KEY_LEN,
		                      TG_GATE_TICKET_KEY_LEN) == 108);
		check(memmem(data, size, b64, 104) != NULL);
	}
	tg_gate_tls_ticket_keys_free(keys, n);
	return 0;
}
