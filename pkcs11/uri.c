/*
 * uri.c — RFC 7512 pkcs11: URIs through p11-kit (p11_kit_uri_parse), with
 * error messages that show the URI and the offending part, and the PIN
 * sources (pin-value, pin-source, TOKENGATE_PIN, prompt).
 */
#include "p11-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ui.h>

#include "tg_file.h"
#include "tg_secret.h"

#define URI_SCHEME    "pkcs11:"
#define PIN_MAX       256
#define URI_BAD_VALUE (-100) /* ours: a known attribute with a bad value */

/* Path attribute names RFC 7512 defines (plus p11-kit's slot ones). */
static const char *const path_attrs[] = {
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "id",
    "type",
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
    "object-type",
};

/* Copy of s with the value of every pin-value= (up to the next '&')
 * replaced by "***", wherever it appears. */
static char *
mask_pin(const char *s)
{
	static const char key[] = "pin-value=";
	const char *p = s, *pv;
	size_t n = 0, cap = strlen(s) + 1;
	char *out;

	for (pv = strstr(s, key); pv != NULL; pv = strstr(pv + 1, key))
		cap += 3;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	while ((pv = strstr(p, key)) != NULL) {
		memcpy(out + n, p, (size_t)(pv - p) + strlen(key));
		n += (size_t)(pv - p) + strlen(key);
		memcpy(out + n, "***", 3);
		n += 3;
		p = pv + strlen(key);
		p += strcspn(p, "&");
	}
	memcpy(out + n, p, strlen(p) + 1);
	return out;
}

/* Cuts a shown URI part after any "pin-value=" and appends "***". */
static void
mask_part(char *part, size_t partsz)
{
	char *pv = strstr(part, "pin-value=");
	size_t off;

	if (pv == NULL)
		return;
	off = (size_t)(pv - part) + strlen("pin-value=");
	snprintf(part + off, partsz - off, "***");
}

static int
known_path_attr(const char *seg, size_t n)
{
	size_t i, l;

	for (i = 0; i < sizeof(path_attrs) / sizeof(path_attrs[0]); i++) {
		l = strlen(path_attrs[i]);
		if (n > l && strncmp(seg, path_attrs[i], l) == 0 && seg[l] == '=')
			return 1;
	}
	return 0;
}

/*
 * Finds the part of a URI that p11-kit rejects (or that names an unknown
 * path attribute): parses each segment alone. Fills part (masked when it is
 * the pin-value) and *why.
 */
static void
find_offender(const char *s, const char *masked, int rc, char *part, size_t partsz,
              const char **why)
{
	const char *p, *seg_end, *q;
	char tmp[1024];
	P11KitUri *one;
	int in_query = 0, r;
	size_t n;

	*why = rc != P11_KIT_URI_OK ? p11_kit_uri_message(rc) : "unknown path attribute";
	snprintf(part, partsz, "%s", masked); /* never the pin-value */
	if (strncmp(s, URI_SCHEME, strlen(URI_SCHEME)) != 0) {
		*why = "a PKCS#11 URI starts with 'pkcs11:'";
		return;
	}
	p = s + strlen(URI_SCHEME);
	q = strchr(p, '?');
	while (*p != '\0') {
		if (*p == '?') {
			in_query = 1;
			p++;
			continue;
		}
		seg_end = p + strcspn(p, in_query ? "&" : ";?");
		n = (size_t)(seg_end - p);
		if (n > 0) {
			snprintf(tmp, sizeof(tmp), "%s%s%.*s", URI_SCHEME, in_query ? "?" : "",
			         (int)n, p);
			if ((one = p11_kit_uri_new()) != NULL) {
				r = p11_kit_uri_parse(tmp, P11_KIT_URI_FOR_ANY, one);
				if (r == P11_KIT_URI_OK && !in_query && !known_path_attr(p, n))
					r = P11_KIT_URI_NOT_FOUND;
				else if (r == P11_KIT_URI_OK && !in_query &&
				         p11_kit_uri_any_unrecognized(one))
					r = URI_BAD_VALUE;
				p11_kit_uri_free(one);
				if (r != P11_KIT_URI_OK) {
					snprintf(part, partsz, "%.*s", (int)n, p);
					mask_part(part, partsz);
					if (r == P11_KIT_URI_NOT_FOUND)
						*why = "unknown path attribute (RFC 7512 "
						       "defines token, manufacturer, serial, "
						       "model, object, id, type, library-*, "
						       "slot-*)";
					else
						*why =
						    r == URI_BAD_VALUE
						        ? "unsupported value (type= takes private, "
						          "public, cert, secret-key or data)"
						        : p11_kit_uri_message(r);
					return;
				}
			}
		}
		p = seg_end;
		if (*p == ';' || *p == '&')
			p++;
	}
	(void)q;
}

/* Copies a space-padded, possibly unset (first byte 0) field. */
static char *
field_dup(const unsigned char *f, size_t n)
{
	char buf[128];

	if (n == 0 || f[0] == 0)
		return NULL;
	tg_p11_padded_copy(buf, sizeof(buf), f, n);
	return strdup(buf);
}

static int
set_attr(struct tg_p11_uri *u, enum tg_p11_uri_attr a, char *v)
{
	u->attr[a] = v;
	return 0;
}

static const char *
class_name(CK_OBJECT_CLASS c)
{
	switch (c) {
	case CKO_PRIVATE_KEY:
		return "private";
	case CKO_PUBLIC_KEY:
		return "public";
	case CKO_CERTIFICATE:
		return "cert";
	case CKO_SECRET_KEY:
		return "secret-key";
	case CKO_DATA:
		return "data";
	default:
		return "other";
	}
}

static int
extract(struct tg_p11_uri *u)
{
	CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u->u);
	CK_INFO *mi = p11_kit_uri_get_module_info(u->u);
	CK_SLOT_INFO *si = p11_kit_uri_get_slot_info(u->u);
	CK_ATTRIBUTE *a;
	CK_OBJECT_CLASS cls;
	CK_SLOT_ID sid;
	const char *s;

	set_attr(u, TG_P11_URI_TOKEN, field_dup(ti->label, sizeof(ti->label)));
	set_attr(u, TG_P11_URI_MANUFACTURER,
	         field_dup(ti->manufacturerID, sizeof(ti->manufacturerID)));
	set_attr(u, TG_P11_URI_SERIAL, field_dup(ti->serialNumber, sizeof(ti->serialNumber)));
	set_attr(u, TG_P11_URI_MODEL, field_dup(ti->model, sizeof(ti->model)));
	set_attr(u, TG_P11_URI_LIB_MANUFACTURER,
	         field_dup(mi->manufacturerID, sizeof(mi->manufacturerID)));
	set_attr(u, TG_P11_URI_LIB_DESCRIPTION,
	         field_dup(mi->libraryDescription, sizeof(mi->libraryDescription)));
	set_attr(u, TG_P11_URI_SLOT_DESCRIPTION,
	         field_dup(si->slotDescription, sizeof(si->slotDescription)));
	if ((a = p11_kit_uri_get_attribute(u->u, CKA_LABEL)) != NULL &&
	    a->ulValueLen != (CK_ULONG)-1) {
		/* CKA_LABEL bytes are not NUL-terminated */
		if ((u->attr[TG_P11_URI_OBJECT] = malloc(a->ulValueLen + 1)) == NULL)
			return TG_ERR_ALLOC;
		memcpy(u->attr[TG_P11_URI_OBJECT], a->pValue, a->ulValueLen);
		u->attr[TG_P11_URI_OBJECT][a->ulValueLen] = '\0';
	}
	if ((a = p11_kit_uri_get_attribute(u->u, CKA_ID)) != NULL &&
	    a->ulValueLen != (CK_ULONG)-1) {
		u->id_len = a->ulValueLen;
		if ((u->id = malloc(u->id_len ? u->id_len : 1)) == NULL)
			return TG_ERR_ALLOC;
		memcpy(u->id, a->pValue, u->id_len);
		u->has_id = 1;
	}
	if ((a = p11_kit_uri_get_attribute(u->u, CKA_CLASS)) != NULL &&
	    a->ulValueLen == sizeof(cls)) {
		memcpy(&cls, a->pValue, sizeof(cls));
		u->attr[TG_P11_URI_TYPE] = strdup(class_name(cls));
	}
	sid = p11_kit_uri_get_slot_id(u->u);
	if (sid != (CK_SLOT_ID)-1) {
		u->has_slot_id = 1;
		u->slot_id = sid;
	}
	if ((s = p11_kit_uri_get_module_path(u->u)) != NULL)
		u->attr[TG_P11_URI_MODULE_PATH] = strdup(s);
	if ((s = p11_kit_uri_get_module_name(u->u)) != NULL)
		u->attr[TG_P11_URI_MODULE_NAME] = strdup(s);
	if ((s = p11_kit_uri_get_pin_value(u->u)) != NULL)
		u->attr[TG_P11_URI_PIN_VALUE] = strdup(s);
	if ((s = p11_kit_uri_get_pin_source(u->u)) != NULL)
		u->attr[TG_P11_URI_PIN_SOURCE] = strdup(s);
	return 0;
}

int
tg_p11_uri_parse(const char *s, struct tg_p11_uri **out, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	char part[512];
	const char *why;
	int rc, r = TG_ERR_ALLOC;

	if (s == NULL || out == NULL)
		return tg_error_set(err, TG_ERR_INVALID_ARG, "no PKCS#11 URI given");
	if ((u = calloc(1, sizeof(*u))) == NULL || (u->str = mask_pin(s)) == NULL ||
	    (u->u = p11_kit_uri_new()) == NULL) {
		tg_error_set(err, r, "out of memory parsing a PKCS#11 URI");
		goto out;
	}
	rc = p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, u->u);
	if (rc != P11_KIT_URI_OK || p11_kit_uri_any_unrecognized(u->u)) {
		find_offender(s, u->str, rc, part, sizeof(part), &why);
		r = tg_error_set(err, TG_ERR_URI,
		                 "malformed PKCS#11 URI '%s': %s in '%s' (RFC 7512, "
		                 "e.g. pkcs11:token=NAME;object=LABEL)",
		                 u->str, why, part);
		goto out;
	}
	if ((r = extract(u)) != 0) {
		tg_error_set(err, r, "out of memory parsing a PKCS#11 URI");
		goto out;
	}
	*out = u;
	u = NULL;
	r = 0;
out:
	tg_p11_uri_free(u);
	return r;
}

int
tg_p11_uri_with_module(struct tg_p11_uri *u, const char *path, char **out, struct tg_error *err)
{
	char *s = NULL;
	int r = TG_ERR_URI;

	*out = NULL;
	p11_kit_uri_set_module_name(u->u, NULL);
	p11_kit_uri_set_module_path(u->u, path);
	if (p11_kit_uri_format(u->u, P11_KIT_URI_FOR_ANY, &s) != P11_KIT_URI_OK || s == NULL) {
		tg_error_set(err, r, "cannot format the PKCS#11 URI '%s' with module-path '%s'",
		             u->str, path);
		goto out;
	}
	tg_strfreezero(u->attr[TG_P11_URI_MODULE_NAME]);
	u->attr[TG_P11_URI_MODULE_NAME] = NULL;
	tg_strfreezero(u->attr[TG_P11_URI_MODULE_PATH]);
	if ((u->attr[TG_P11_URI_MODULE_PATH] = strdup(path)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	if (s != NULL)
		tg_strfreezero(s);
	return r;
}

void
tg_p11_uri_free(struct tg_p11_uri *u)
{
	int i;

	if (u == NULL)
		return;
	if (u->u != NULL)
		p11_kit_uri_free(u->u); /* p11-kit frees its pin copy */
	for (i = 0; i < TG_P11_URI_ATTR_COUNT; i++)
		tg_strfreezero(u->attr[i]);
	free(u->id);
	free(u->str);
	free(u);
}

const char *
tg_p11_uri_get(const struct tg_p11_uri *u, enum tg_p11_uri_attr a)
{
	if (u == NULL || a < 0 || a >= TG_P11_URI_ATTR_COUNT)
		return NULL;
	return u->attr[a];
}

int
tg_p11_uri_id(const struct tg_p11_uri *u, const uint8_t **id, size_t *len)
{
	if (u == NULL || !u->has_id)
		return 0;
	*id = u->id;
	*len = u->id_len;
	return 1;
}

int
tg_p11_uri_slot_id(const struct tg_p11_uri *u, unsigned long *slot)
{
	if (u == NULL || !u->has_slot_id)
		return 0;
	*slot = u->slot_id;
	return 1;
}

/*
 * Reads a PIN file: at most PIN_MAX bytes, one trailing newline dropped.
 * Like an SSH private key, the file must be the user's and closed to group
 * and others (tg_file.h); a symbolic link is followed (secret stores hand
 * out links) and the file it leads to is what is checked.
 */
static int
pin_from_file(const char *path, char **pin, struct tg_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0, n;
	struct tg_error tmp;
	int r;

	tg_error_clear(&tmp);
	r = tg_file_read_checked(path, "PIN file", TG_FILE_SECRET | TG_FILE_FOLLOW, PIN_MAX, &buf,
	                         &len, &tmp);
	if (r == TG_ERR_PERMISSION) {
		tg_error_set(err, r, "%s", tmp.msg);
		goto out;
	}
	if (r != 0) {
		r = TG_ERR_IO;
		tg_error_set(err, r, "%s; fix pin-source=", tmp.msg);
		goto out;
	}
	n = len;
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if ((*pin = strdup((const char *)buf)) == NULL) {
		r = TG_ERR_ALLOC;
		goto out;
	}
	r = 0;
out:
	tg_freezero(buf, len);
	return r;
}

static int
pin_from_source(const char *src, char **pin, struct tg_error *err)
{
	const char *v;

	if (strncmp(src, "env:", 4) == 0) {
		if (src[4] == '\0' || (v = getenv(src + 4)) == NULL)
			return tg_error_set(err, TG_ERR_IO,
			                    "pin-source '%s': environment variable '%s' "
			                    "is not set",
			                    src, src + 4);
		if ((*pin = strdup(v)) == NULL)
			return TG_ERR_ALLOC;
		return 0;
	}
	if (strncmp(src, "file://", 7) == 0 && src[7] == '/')
		return pin_from_file(src + 7, pin, err);
	if (strncmp(src, "file:", 5) == 0)
		return pin_from_file(src + 5, pin, err);
	if (strchr(src, ':') != NULL && src[0] != '/' && src[0] != '.')
		return tg_error_set(err, TG_ERR_IO,
		                    "pin-source '%s' is not supported; use "
		                    "file:/path or env:NAME",
		                    src);
	return pin_from_file(src, pin, err);
}

/*
 * Asks for the PIN on the terminal through OpenSSL's UI (the console
 * method: /dev/tty, echo off, the terminal restored on SIGINT/SIGTERM,
 * the answer cleansed when the UI is freed). One prompt, never repeated:
 * an empty answer, one longer than PIN_MAX, Ctrl-C and an unreadable
 * terminal each fail with TG_ERR_NO_PIN and a message saying which.
 */
static int
pin_prompt(const char *label, char **pin, struct tg_error *err)
{
	char buf[PIN_MAX + 1], prompt[160];
	const char *name = label ? label : "?";
	UI *ui = NULL;
	int r = TG_ERR_NO_PIN, rc, too_long = 0;
	unsigned long e;

	snprintf(prompt, sizeof(prompt), "PIN for token '%s': ", name);
	if ((ui = UI_new()) == NULL || UI_add_input_string(ui, prompt, 0, buf, 0, PIN_MAX) < 0) {
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot set up the PIN prompt");
		goto out;
	}
	rc = UI_process(ui);
	while ((e = ERR_get_error()) != 0) /* the UI's reason is not the last one */
		too_long |=
		    ERR_GET_LIB(e) == ERR_LIB_UI && ERR_GET_REASON(e) == UI_R_RESULT_TOO_LARGE;
	if (rc == -2) {
		tg_error_set(err, r, "PIN entry for token '%s' was interrupted", name);
		goto out;
	}
	if (rc != 0 && too_long) {
		tg_error_set(err, r, "the PIN entered for token '%s' is longer than %d characters",
		             name, PIN_MAX);
		goto out;
	}
	if (rc != 0) {
		tg_error_set(err, r,
		             "cannot read a PIN for token '%s' from the terminal; use "
		             "pin-source=file:/path (or env:NAME) or TOKENGATE_PIN",
		             name);
		goto out;
	}
	if (buf[0] == '\0') {
		tg_error_set(err, r, "no PIN entered for token '%s'", name);
		goto out;
	}
	r = (*pin = strdup(buf)) ? 0 : TG_ERR_ALLOC;
out:
	UI_free(ui);
	tg_wipe(buf, sizeof(buf));
	return r;
}

int
tg_p11_pin_noninteractive(const struct tg_p11_uri *u)
{
	return tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE) != NULL ||
	       tg_p11_uri_get(u, TG_P11_URI_PIN_SOURCE) != NULL || getenv("TOKENGATE_PIN") != NULL;
}

int
tg_p11_pin_get(const struct tg_p11_uri *u, const char *token_label, int interactive, char **pin,
               const char **source_out, struct tg_error *err)
{
	const char *v, *src = NULL;
	int r;

	*pin = NULL;
	if ((v = tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE)) != NULL) {
		src = "uri";
		r = (*pin = strdup(v)) ? 0 : TG_ERR_ALLOC;
	} else if ((v = tg_p11_uri_get(u, TG_P11_URI_PIN_SOURCE)) != NULL) {
		src = "pin-source";
		r = pin_from_source(v, pin, err);
	} else if ((v = getenv("TOKENGATE_PIN")) != NULL) {
		src = "env";
		r = (*pin = strdup(v)) ? 0 : TG_ERR_ALLOC;
	} else if (interactive && isatty(STDIN_FILENO)) {
		src = "prompt";
		r = pin_prompt(token_label, pin, err);
	} else {
		r = tg_error_set(err, TG_ERR_NO_PIN,
		                 "token '%s' needs a PIN and none is available: add "
		                 "pin-source=file:/path (or env:NAME) to the URI, set "
		                 "TOKENGATE_PIN, or run on a terminal",
		                 token_label ? token_label : "?");
	}
	if (r == 0 && source_out != NULL)
		*source_out = src;
	return r;
}
