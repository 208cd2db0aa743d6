/*
 * uri.c — RFC 7512 pkcs11: URIs through p11-kit (p11_kit_uri_parse), with
 * error messages that show the URI and the offending part (never its
 * pin-value), formatting through p11_kit_uri_format, and the URI's PIN
 * source (tg_pin_src.h).
 */
#include "p11-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_pin_src.h"
#include "tg_secret.h"

#define URI_SCHEME    "pkcs11:"
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

char *
tg_p11_uri_mask(const char *s)
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

/* Masks the pin-values of a shown URI part in place (tg_p11_uri_mask). */
static void
mask_part(char *part, size_t partsz)
{
	char *m = tg_p11_uri_mask(part);

	if (m == NULL)
		snprintf(part, partsz, "(a part of the URI)");
	else
		snprintf(part, partsz, "%s", m);
	free(m);
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
	/* an attribute lost to a failed strdup would change what the URI
	 * names (another module, another PIN source): out of memory instead */
	if ((a = p11_kit_uri_get_attribute(u->u, CKA_CLASS)) != NULL &&
	    a->ulValueLen == sizeof(cls)) {
		memcpy(&cls, a->pValue, sizeof(cls));
		if ((u->attr[TG_P11_URI_TYPE] = strdup(class_name(cls))) == NULL)
			return TG_ERR_ALLOC;
	}
	sid = p11_kit_uri_get_slot_id(u->u);
	if (sid != (CK_SLOT_ID)-1) {
		u->has_slot_id = 1;
		u->slot_id = sid;
	}
	if (((s = p11_kit_uri_get_module_path(u->u)) != NULL &&
	     (u->attr[TG_P11_URI_MODULE_PATH] = strdup(s)) == NULL) ||
	    ((s = p11_kit_uri_get_module_name(u->u)) != NULL &&
	     (u->attr[TG_P11_URI_MODULE_NAME] = strdup(s)) == NULL) ||
	    ((s = p11_kit_uri_get_pin_value(u->u)) != NULL &&
	     (u->attr[TG_P11_URI_PIN_VALUE] = strdup(s)) == NULL) ||
	    ((s = p11_kit_uri_get_pin_source(u->u)) != NULL &&
	     (u->attr[TG_P11_URI_PIN_SOURCE] = strdup(s)) == NULL))
		return TG_ERR_ALLOC;
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
	if ((u = calloc(1, sizeof(*u))) == NULL || (u->str = tg_p11_uri_mask(s)) == NULL ||
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

int
tg_p11_uri_pin_src(const struct tg_p11_uri *u, struct tg_pin_src **out, struct tg_error *err)
{
	return tg_pin_src_new(tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE),
	                      tg_p11_uri_get(u, TG_P11_URI_PIN_SOURCE), out, err);
}

int
tg_p11_uri_format(const struct tg_p11_uri *u, const char *pin_source, char **out,
                  struct tg_error *err)
{
	const char *pv = tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE);
	const char *ps = tg_p11_uri_get(u, TG_P11_URI_PIN_SOURCE);
	char *s = NULL;
	int r = TG_ERR_URI, rc;

	*out = NULL;
	/* the pin-value is left out of the formatted string; p11-kit's copy
	 * is put back afterwards (u stays as parsed) */
	p11_kit_uri_set_pin_value(u->u, NULL);
	if (pv != NULL && ps == NULL && pin_source != NULL)
		p11_kit_uri_set_pin_source(u->u, pin_source);
	rc = p11_kit_uri_format(u->u, P11_KIT_URI_FOR_ANY, &s);
	p11_kit_uri_set_pin_value(u->u, pv);
	p11_kit_uri_set_pin_source(u->u, ps);
	if (rc != P11_KIT_URI_OK || s == NULL) {
		tg_error_set(err, r, "cannot format the PKCS#11 URI '%s': %s", u->str,
		             p11_kit_uri_message(rc));
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	free(s);
	return r;
}

/* A CK_TOKEN_INFO text field: blank-padded; left all zero (p11-kit then
 * leaves it out of the URI) when the value is empty. */
static void
padded_set(CK_UTF8CHAR *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	if (l > 0) {
		memset(dst, ' ', n);
		memcpy(dst, src, l < n ? l : n);
	}
}

static CK_OBJECT_CLASS
obj_class(enum tg_p11_obj_class c)
{
	CK_OBJECT_CLASS cls = CKO_DATA;

	if (c == TG_P11_OBJ_PRIVATE_KEY)
		cls = CKO_PRIVATE_KEY;
	else if (c == TG_P11_OBJ_PUBLIC_KEY)
		cls = CKO_PUBLIC_KEY;
	else if (c == TG_P11_OBJ_CERT)
		cls = CKO_CERTIFICATE;
	return cls;
}

/* The URI of token ti, or (cls != 0) of the object with that class, label
 * and id (id_len 0: left out) on it. */
static int
object_uri(const struct tg_p11_token_info *ti, CK_OBJECT_CLASS cls, const char *label,
           const uint8_t *id, size_t id_len, char **out)
{
	P11KitUri *u = NULL;
	CK_TOKEN_INFO *tk;
	CK_ATTRIBUTE a;
	int what = P11_KIT_URI_FOR_TOKEN, r = TG_ERR_ALLOC;

	*out = NULL;
	if ((u = p11_kit_uri_new()) == NULL)
		goto out;
	tk = p11_kit_uri_get_token_info(u);
	padded_set(tk->label, sizeof(tk->label), ti->label);
	padded_set(tk->manufacturerID, sizeof(tk->manufacturerID), ti->manufacturer);
	padded_set(tk->model, sizeof(tk->model), ti->model);
	padded_set(tk->serialNumber, sizeof(tk->serialNumber), ti->serial);
	r = TG_ERR_URI;
	if (cls != 0) {
		what = P11_KIT_URI_FOR_OBJECT_ON_TOKEN;
		a = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
		if (p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
			goto out;
		a = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
		if (label[0] != '\0' && p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
			goto out;
		a = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
		if (id_len > 0 && p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
			goto out;
	}
	if (p11_kit_uri_format(u, what, out) != P11_KIT_URI_OK || *out == NULL) {
		free(*out);
		*out = NULL;
		goto out;
	}
	r = 0;
out:
	if (u != NULL)
		p11_kit_uri_free(u);
	return r;
}

int
tg_p11_object_uri(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *o,
                  char **out)
{
	int r;

	if (o == NULL)
		r = object_uri(ti, 0, "", NULL, 0, out);
	else /* an id the listing kept only part of is left out */
		r = object_uri(ti, obj_class(o->cls), o->label, o->id,
		               o->id_full_len == o->id_len ? o->id_len : 0, out);
	return r;
}

int
tg_p11_key_uri(const struct tg_p11_key *k, char **out)
{
	return object_uri(&k->t->info, CKO_PRIVATE_KEY, k->label, k->id, k->id_len, out);
}
