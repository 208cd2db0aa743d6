/* record.c — the JSON shape of an issued certificate (tg_ca_record.h). */
#include "tg_ca_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "tg_att.h"
#include "tg_ca_io.h"
#include "tg_ca_issue.h"
#include "tg_ca_store.h"
#include "tg_hex.h"
#include "tg_prov.h"

#define RECORD_ID_MAX 2100

char *
tg_ca_time_str(const ASN1_TIME *t, char *buf, size_t n)
{
	struct tm tm;

	buf[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) &&
	    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}

static json_t *
time_json(const ASN1_TIME *t)
{
	char buf[32];

	return tg_ca_time_str(t, buf, sizeof(buf))[0] != '\0' ? json_string(buf) : json_null();
}

static json_t *
opt_string(int has, const char *s)
{
	return has ? json_string(s) : json_null();
}

static json_t *
prov_json(const struct tg_prov *p)
{
	char sha[65], ff[8];

	tg_hex_encode(p->att_sha256, sizeof(p->att_sha256), sha, sizeof(sha));
	snprintf(ff, sizeof(ff), "0x%02x", p->form_factor);
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "version", p->version,
	                 "level", tg_prov_level_name(p->level), "token_serial", p->serial,
	                 "pin_policy", tg_att_pin_name(p->pin_policy), "touch_policy",
	                 tg_att_touch_name(p->touch_policy), "form_factor",
	                 opt_string(p->has_form_factor, ff), "attestation_sha256",
	                 opt_string(p->has_att_sha256, sha), "token_manufacturer",
	                 opt_string(p->has_token_model, p->token_manufacturer), "token_model",
	                 opt_string(p->has_token_model, p->token_model));
}

int
tg_ca_cert_json(X509 *x, json_t **out, struct tg_error *err)
{
	char id[RECORD_ID_MAX], hex[TG_CA_SERIAL_HEX_MAX + 1], issuer[512], fp[65];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct tg_prov p;
	json_t *j = NULL, *pj = NULL;
	int r;

	if ((r = tg_ca_id_from_cert(x, id, sizeof(id), err)) != 0)
		goto out;
	r = tg_prov_from_cert(x, &p, err);
	if (r != 0 && r != TG_ERR_NOT_FOUND)
		goto out;
	pj = r == 0 ? prov_json(&p) : json_null();
	if (tg_ca_serial_hex(X509_get0_serialNumber(x), hex, sizeof(hex)) != 0 ||
	    !X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32) {
		r = tg_error_set(err, TG_ERR_CRYPTO,
		                 "cannot read the certificate's serial or digest");
		goto out;
	}
	tg_hex_encode(md, mdlen, fp, sizeof(fp));
	j = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:O}", "identity", id, "serial", hex,
	              "issuer", tg_ca_name_str(X509_get_issuer_name(x), issuer, sizeof(issuer)),
	              "not_before", time_json(X509_get0_notBefore(x)), "not_after",
	              time_json(X509_get0_notAfter(x)), "sha256_fingerprint", fp, "provenance", pj);
	if (pj == NULL || j == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	*out = j;
	j = NULL;
	r = 0;
out:
	json_decref(pj);
	json_decref(j);
	return r;
}

int
tg_ca_json_print(json_t *j)
{
	char *s = NULL;
	int r = TG_ERR_ALLOC;

	if (j == NULL || (s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	r = puts(s) < 0 ? TG_ERR_IO : 0;
out:
	free(s);
	return r;
}
