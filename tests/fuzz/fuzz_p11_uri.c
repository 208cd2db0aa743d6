/*
 * fuzz_p11_uri.c — fuzz target for tg_p11_uri_parse (pkcs11/uri.c), the
 * parser of user-given RFC 7512 URIs (docs/architecture.md, rule 5).
 *
 * For every input (as a NUL-terminated string) it checks: the parser
 * returns 0 or TG_ERR_URI; on error nothing is returned and the message is
 * non-empty and never holds a pin-value the input carried; on success every
 * attribute getter returns a string, the id getter a consistent length, the
 * formatted URI (tg_p11_uri_format) parses again without a pin-value, and
 * the URI's PIN source (tg_pin_src.h) is described without its secret: a
 * pin-value source reads back the pin-value, and never once spent. The
 * input is also parsed as a pin-source spec on its own (described, never
 * read: the fuzzer stays off the file system). A broken property aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_p11.h"
#include "tg_pin_src.h"
#include "tg_secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * 1 when the message depends on the pin-value: the input is parsed again
 * with an alphanumeric pin-value (which cannot change the URI's validity)
 * replaced by as many 'Q's, and the two messages must be equal.
 */
static int
pin_leaked(const char *s, const char *msg)
{
	const char *v = strstr(s, "pin-value=");
	struct tg_p11_uri *u = NULL;
	struct tg_error err2;
	char *copy;
	size_t n, i, off;
	int leaked;

	if (v == NULL)
		return 0;
	v += strlen("pin-value=");
	n = strcspn(v, "&");
	for (i = 0; i < n; i++) {
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9')))
			return 0;
	}
	if (n == 0 || (copy = strdup(s)) == NULL)
		return 0;
	off = (size_t)(v - s);
	memset(copy + off, 'Q', n);
	tg_error_clear(&err2);
	(void)tg_p11_uri_parse(copy, &u, &err2);
	tg_p11_uri_free(u);
	leaked = strcmp(msg, err2.msg) != 0;
	free(copy);
	return leaked;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_p11_uri *u = NULL;
	struct tg_error err;
	const uint8_t *id;
	unsigned long slot;
	struct tg_pin_src *src = NULL;
	struct tg_p11_uri *again = NULL;
	struct tg_pin pin;
	char *s, *fmt = NULL;
	const char *pv;
	size_t idl, i;
	int r, a;

	if (size > 4096 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&pin, 0, sizeof(pin));
	/* the input as a pin-source spec: described or refused, no I/O */
	tg_error_clear(&err);
	r = tg_pin_src_new(NULL, s, &src, &err);
	if ((r == 0) != (src != NULL) || (r != 0 && r != TG_ERR_INVALID_ARG && r != TG_ERR_ALLOC))
		abort();
	if (src != NULL && strlen(tg_pin_src_describe(src)) == 0)
		abort();
	tg_pin_src_free(src);
	src = NULL;
	tg_error_clear(&err);
	r = tg_p11_uri_parse(s, &u, &err);
	if (r != 0) {
		if (r != TG_ERR_URI && r != TG_ERR_ALLOC)
			abort();
		if (u != NULL || err.msg[0] == '\0')
			abort();
		if (pin_leaked(s, err.msg))
			abort();
		goto out;
	}
	for (a = 0; a < TG_P11_URI_ATTR_COUNT; a++) {
		const char *v = tg_p11_uri_get(u, (enum tg_p11_uri_attr)a);

		if (v != NULL)
			(void)strlen(v);
	}
	if (tg_p11_uri_id(u, &id, &idl)) {
		for (i = 0; i < idl; i++)
			(void)id[i];
	}
	(void)tg_p11_uri_slot_id(u, &slot);
	/* formatted: never the pin-value */
	if (tg_p11_uri_format(u, NULL, &fmt, NULL) == 0) {
		if (tg_p11_uri_parse(fmt, &again, NULL) != 0 ||
		    tg_p11_uri_get(again, TG_P11_URI_PIN_VALUE) != NULL)
			abort();
	}
	/* the PIN source: only a pin-value one is read (no file system) */
	pv = tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE);
	if (tg_p11_uri_pin_src(u, &src, NULL) == 0 && tg_pin_src_kind(src) == TG_PIN_VALUE) {
		if (pv == NULL || strcmp(tg_pin_src_describe(src), "pin-value") != 0)
			abort();
		if (tg_pin_src_read(src, "fuzz", 0, &pin, NULL) == 0 && strcmp(pin.v, pv) != 0)
			abort();
		tg_pin_wipe(&pin);
		tg_pin_src_spend(src);
		if (tg_pin_src_read(src, "fuzz", 0, &pin, NULL) != TG_ERR_NO_PIN)
			abort();
	}
out:
	tg_pin_wipe(&pin);
	tg_pin_src_free(src);
	tg_p11_uri_free(again);
	free(fmt);
	tg_p11_uri_free(u);
	free(s);
	return 0;
}
