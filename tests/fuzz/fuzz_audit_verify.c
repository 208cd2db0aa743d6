/*
 * fuzz_audit_verify.c — fuzz target for the audit chain's verifier
 * (tg_audit_verify_mem, host/audit/verify.c) over arbitrary bytes.
 *
 * For every input: the verifier returns 0 (or out of memory); an intact
 * result means every line ended in "\n", the lines counted equal the
 * newlines, and the head is the SHA-256 of the last line; a broken one
 * names a line that exists and says what is wrong. A broken property
 * aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_audit.h"
#include "tg_audit_verify.h"
#include "tg_fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_audit_report rep;
	struct tg_error err;
	char hash[TG_AUDIT_HASH_HEX];
	size_t i, newlines = 0, start = 0;

	tg_error_clear(&err);
	if (tg_audit_verify_mem(data, size, "fuzz.log", 0, &rep, &err) != 0) {
		check(err.code == TG_ERR_ALLOC);
		return 0;
	}
	for (i = 0; i < size; i++) {
		if (data[i] == '\n') {
			newlines++;
			if (i + 1 < size)
				start = i + 1;
		}
	}
	if (rep.flaw == TG_AUDIT_INTACT) {
		check(size == 0 || data[size - 1] == '\n');
		check(rep.lines == newlines);
		if (size > 0) {
			/* start: the first byte of the last line */
			if (newlines == 1)
				start = 0;
			else
				for (start = size - 1; start > 0 && data[start - 1] != '\n';
				     start--)
					;
			check(tg_audit_line_hash(data + start, size - 1 - start, hash) == 0);
			check(strcmp(hash, rep.head) == 0);
		}
	} else {
		check(rep.line >= 1 && rep.line <= newlines + 1);
		check(rep.lines == rep.line - 1);
		check(rep.detail[0] != '\0');
		check(strcmp(tg_audit_flaw_name(rep.flaw), "unknown") != 0);
	}
	return 0;
}
