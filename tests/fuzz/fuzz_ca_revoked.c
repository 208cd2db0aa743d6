/*
 * fuzz_ca_revoked.c — fuzz target for the revoked.txt parser
 * (tg_ca_revoked_parse, host/ca/store.c), which `ca revoke` and `ca crl`
 * read back from the CA directory.
 *
 * For every input: a refusal is TG_ERR_FORMAT (or out of memory) with a
 * message naming the line, and nothing returned; an accepted list has
 * canonical serials (upper-case hex, as tg_ca_serial_norm writes them),
 * distinct, times within range, line numbers increasing, and printing it
 * back with tg_ca_revoked_format ("SERIAL TIME [REASON]\n" lines, as `ca
 * revoke` writes them) parses to the same list, reasons included. A broken property
 * aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_ca_store.h"
#include "tg_fuzz.h"

static void
check_entry(const struct tg_ca_revoked *e, const struct tg_ca_revoked *prev)
{
	char norm[TG_CA_SERIAL_HEX_MAX + 1];
	size_t n = strlen(e->serial);
	enum tg_ca_reason reason;

	check(n >= 1 && n <= TG_CA_SERIAL_HEX_MAX);
	check(strspn(e->serial, "0123456789ABCDEF") == n);
	check(tg_ca_serial_norm(e->serial, norm, sizeof(norm)) == 0);
	check(strcmp(norm, e->serial) == 0);
	check(e->when >= 0 && e->when <= TG_CA_REVOKED_WHEN_MAX);
	check(tg_ca_reason_parse(tg_ca_reason_name(e->reason), strlen(tg_ca_reason_name(e->reason)),
	                         &reason) == 0 &&
	      reason == e->reason);
	check(e->line >= 1);
	check(prev == NULL || e->line > prev->line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_ca_revoked *l = NULL, *l2 = NULL;
	struct tg_error err;
	size_t n = 0, n2 = 0, i, used = 0, cap, w;
	char *text = NULL;

	tg_error_clear(&err);
	if (tg_ca_revoked_parse((const char *)data, size, "revoked.txt", &l, &n, &err) != 0) {
		check(err.code == TG_ERR_FORMAT || err.code == TG_ERR_ALLOC);
		check(err.code != TG_ERR_FORMAT || strstr(err.msg, "revoked.txt line ") == err.msg);
		check(l == NULL && n == 0);
		return 0;
	}
	check(n == 0 || l != NULL);
	for (i = 0; i < n; i++) {
		check_entry(&l[i], i > 0 ? &l[i - 1] : NULL);
		check(i == 0 || strcmp(l[i].serial, l[i - 1].serial) != 0);
	}
	/* printed back the way `ca revoke` writes it, it parses to the same list */
	cap = n * (TG_CA_SERIAL_HEX_MAX + 64) + 1;
	text = malloc(cap);
	check(text != NULL);
	for (i = 0; i < n; i++) {
		w = tg_ca_revoked_format(&l[i], text + used, cap - used);
		check(w > 0);
		used += w;
	}
	check(tg_ca_revoked_parse(text, used, "again", &l2, &n2, &err) == 0);
	check(n2 == n);
	for (i = 0; i < n; i++) {
		check(strcmp(l2[i].serial, l[i].serial) == 0 && l2[i].when == l[i].when &&
		      l2[i].reason == l[i].reason);
		check(l2[i].line == i + 1);
	}
	free(text);
	free(l2);
	free(l);
	return 0;
}
