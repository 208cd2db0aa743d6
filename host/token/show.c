/* show.c — trust attributes and pkcs11: URIs as `tokengate token` shows
 * them, in text and JSON (tok-int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "tok-int.h"

const char *
tg_tokcmd_tri(int v)
{
	return v == TG_P11_ATTR_INVALID ? "invalid" : v < 0 ? "unknown" : v ? "true" : "false";
}

static json_t *
jtri(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

json_t *
tg_tokcmd_trust_json(const struct tg_p11_trust *tr)
{
	json_t *t = json_object();

	json_object_set_new(t, "sensitive", jtri(tr->sensitive));
	json_object_set_new(t, "extractable", jtri(tr->extractable));
	json_object_set_new(t, "never_extractable", jtri(tr->never_extractable));
	json_object_set_new(t, "always_sensitive", jtri(tr->always_sensitive));
	json_object_set_new(t, "local", jtri(tr->local));
	json_object_set_new(t, "always_authenticate", jtri(tr->always_authenticate));
	json_object_set_new(t, "emulated", json_boolean(tr->emulated));
	json_object_set_new(t, "verdict", json_string(tg_p11_verdict_name(tr->verdict)));
	json_object_set_new(t, "reason", json_string(tr->reason));
	return t;
}

/* A CK_TOKEN_INFO text field: blank-padded, left all zero (unset in the
 * URI) when the value is empty. */
static void
padded(unsigned char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	if (l == 0)
		return;
	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

char *
tg_tokcmd_uri(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *o)
{
	P11KitUri *u = NULL;
	CK_TOKEN_INFO *tk;
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE a;
	char *s = NULL;
	int what = P11_KIT_URI_FOR_TOKEN;

	if ((u = p11_kit_uri_new()) == NULL)
		goto out;
	tk = p11_kit_uri_get_token_info(u);
	padded(tk->label, sizeof(tk->label), ti->label);
	padded(tk->manufacturerID, sizeof(tk->manufacturerID), ti->manufacturer);
	padded(tk->model, sizeof(tk->model), ti->model);
	padded(tk->serialNumber, sizeof(tk->serialNumber), ti->serial);
	if (o != NULL) {
		what = P11_KIT_URI_FOR_OBJECT_ON_TOKEN;
		switch (o->cls) {
		case TG_P11_OBJ_PRIVATE_KEY:
			cls = CKO_PRIVATE_KEY;
			break;
		case TG_P11_OBJ_PUBLIC_KEY:
			cls = CKO_PUBLIC_KEY;
			break;
		case TG_P11_OBJ_CERT:
			cls = CKO_CERTIFICATE;
			break;
		default:
			cls = CKO_DATA;
			break;
		}
		a = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
		if (p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
			goto out;
		a = (CK_ATTRIBUTE){CKA_LABEL, (void *)o->label, strlen(o->label)};
		if (o->label[0] != '\0' && p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
			goto out;
		a = (CK_ATTRIBUTE){CKA_ID, (void *)o->id, o->id_len};
		if (o->id_len > 0 && o->id_full_len == o->id_len &&
		    p11_kit_uri_set_attribute(u, &a) != P11_KIT_URI_OK)
			goto out;
	}
	if (p11_kit_uri_format(u, what, &s) != P11_KIT_URI_OK) {
		free(s);
		s = NULL;
	}
out:
	p11_kit_uri_free(u);
	return s;
}

int
tg_tokcmd_json_print(json_t *json)
{
	int r = TG_ERR_IO;

	if (json != NULL && json_dumpf(json, stdout, JSON_INDENT(2)) == 0 && printf("\n") == 1)
		r = 0;
	return r;
}
