/* show.c — trust attributes and pkcs11: URIs as `tokengate token` shows
 * them, in text and JSON (tok-int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

char *
tg_tokcmd_uri(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *o)
{
	char *s = NULL;

	(void)tg_p11_object_uri(ti, o, &s);
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
