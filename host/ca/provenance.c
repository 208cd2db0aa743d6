/* provenance.c — the key-provenance extension (tg_prov.h). */
#include "tg_prov.h"

#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#define PROV_SHA256_LEN      32
#define PROV_FORM_FACTOR_MAX 255

/* The ASN.1 of tg_prov.h / docs/provenance.md, as an OpenSSL template. */
typedef struct {
	ASN1_UTF8STRING *manufacturer;
	ASN1_UTF8STRING *model;
} TG_PROV_MODEL_ASN1;

typedef struct {
	ASN1_INTEGER *version;
	ASN1_ENUMERATED *level;
	ASN1_UTF8STRING *serial;
	ASN1_ENUMERATED *pin;
	ASN1_ENUMERATED *touch;
	ASN1_INTEGER *form_factor;       /* [0] IMPLICIT OPTIONAL */
	ASN1_OCTET_STRING *att_sha256;   /* [1] IMPLICIT OPTIONAL */
	TG_PROV_MODEL_ASN1 *token_model; /* [2] IMPLICIT OPTIONAL */
} TG_PROV_ASN1;

/* clang-format off */
ASN1_SEQUENCE(TG_PROV_MODEL_ASN1) = {
	ASN1_SIMPLE(TG_PROV_MODEL_ASN1, manufacturer, ASN1_UTF8STRING),
	ASN1_SIMPLE(TG_PROV_MODEL_ASN1, model, ASN1_UTF8STRING),
} static_ASN1_SEQUENCE_END(TG_PROV_MODEL_ASN1)

ASN1_SEQUENCE(TG_PROV_ASN1) = {
	ASN1_SIMPLE(TG_PROV_ASN1, version, ASN1_INTEGER),
	ASN1_SIMPLE(TG_PROV_ASN1, level, ASN1_ENUMERATED),
	ASN1_SIMPLE(TG_PROV_ASN1, serial, ASN1_UTF8STRING),
	ASN1_SIMPLE(TG_PROV_ASN1, pin, ASN1_ENUMERATED),
	ASN1_SIMPLE(TG_PROV_ASN1, touch, ASN1_ENUMERATED),
	ASN1_IMP_OPT(TG_PROV_ASN1, form_factor, ASN1_INTEGER, 0),
	ASN1_IMP_OPT(TG_PROV_ASN1, att_sha256, ASN1_OCTET_STRING, 1),
	ASN1_IMP_OPT(TG_PROV_ASN1, token_model, TG_PROV_MODEL_ASN1, 2),
} static_ASN1_SEQUENCE_END(TG_PROV_ASN1)

static const char *const level_names[] = {
	[TG_PROV_HSM_OPERATOR] = "hsm-operator",
	[TG_PROV_DEVICE_ATTESTED] = "device-attested",
};
/* clang-format on */

const char *
tg_prov_level_name(enum tg_prov_level l)
{
	if ((int)l <= 0 || (size_t)l >= sizeof(level_names) / sizeof(level_names[0]))
		return "none";
	return level_names[l];
}

int
tg_prov_level_parse(const char *s, enum tg_prov_level *out)
{
	size_t i;

	for (i = 1; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (s != NULL && strcmp(s, level_names[i]) == 0) {
			*out = (enum tg_prov_level)i;
			return 0;
		}
	}
	return TG_ERR_INVALID_ARG;
}

static TG_PROV_ASN1 *
prov_asn1_new(void)
{
	return (TG_PROV_ASN1 *)ASN1_item_new(ASN1_ITEM_rptr(TG_PROV_ASN1));
}

static void
prov_asn1_free(TG_PROV_ASN1 *a)
{
	ASN1_item_free((ASN1_VALUE *)a, ASN1_ITEM_rptr(TG_PROV_ASN1));
}

/* Printable token serial: 1..64 bytes, no control characters. */
static int
serial_ok(const unsigned char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > TG_PROV_SERIAL_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

/* Token manufacturer or model: 0..64 bytes of printable ASCII. */
static int
model_ok(const unsigned char *s, size_t n)
{
	size_t i;

	if (n > TG_PROV_MODEL_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return 0;
	}
	return 1;
}

/* The rules of tg_prov.h; code TG_ERR_INVALID_ARG or TG_ERR_FORMAT. */
static int
prov_check(const struct tg_prov *p, int code, struct tg_error *err)
{
	if (p->version != TG_PROV_VERSION)
		return tg_error_set(err, code, "provenance: version %d is not %d", p->version,
		                    TG_PROV_VERSION);
	if (p->level != TG_PROV_HSM_OPERATOR && p->level != TG_PROV_DEVICE_ATTESTED)
		return tg_error_set(err, code, "provenance: unknown level %d", (int)p->level);
	if (!serial_ok((const unsigned char *)p->serial, strlen(p->serial)))
		return tg_error_set(err, code,
		                    "provenance: token serial must be "
		                    "1 to %d printable characters",
		                    TG_PROV_SERIAL_MAX);
	if (strcmp(tg_att_pin_name(p->pin_policy), "unknown") == 0)
		return tg_error_set(err, code, "provenance: unknown PIN policy %d",
		                    (int)p->pin_policy);
	if (strcmp(tg_att_touch_name(p->touch_policy), "unknown") == 0)
		return tg_error_set(err, code, "provenance: unknown touch policy %d",
		                    (int)p->touch_policy);
	if (p->level == TG_PROV_DEVICE_ATTESTED && !p->has_att_sha256)
		return tg_error_set(err, code,
		                    "provenance: level device-attested "
		                    "needs the attestation's SHA-256");
	if (p->has_token_model &&
	    (!model_ok((const unsigned char *)p->token_manufacturer,
	               strnlen(p->token_manufacturer, sizeof(p->token_manufacturer))) ||
	     !model_ok((const unsigned char *)p->token_model,
	               strnlen(p->token_model, sizeof(p->token_model)))))
		return tg_error_set(err, code,
		                    "provenance: token manufacturer and model must be "
		                    "0 to %d printable ASCII characters",
		                    TG_PROV_MODEL_MAX);
	return 0;
}

static int
set_enum(ASN1_ENUMERATED **e, long v)
{
	if (*e == NULL && (*e = ASN1_ENUMERATED_new()) == NULL)
		return 0;
	return ASN1_ENUMERATED_set(*e, v);
}

int
tg_prov_encode(const struct tg_prov *p, uint8_t **der, size_t *len, struct tg_error *err)
{
	TG_PROV_ASN1 *a = NULL;
	unsigned char *out = NULL;
	int n, r;

	if ((r = prov_check(p, TG_ERR_INVALID_ARG, err)) != 0)
		goto out;
	r = TG_ERR_ALLOC;
	if ((a = prov_asn1_new()) == NULL || !ASN1_INTEGER_set(a->version, p->version) ||
	    !set_enum(&a->level, p->level) ||
	    !ASN1_STRING_set(a->serial, p->serial, (int)strlen(p->serial)) ||
	    !set_enum(&a->pin, p->pin_policy) || !set_enum(&a->touch, p->touch_policy))
		goto fail;
	if (p->has_form_factor && ((a->form_factor = ASN1_INTEGER_new()) == NULL ||
	                           !ASN1_INTEGER_set(a->form_factor, p->form_factor)))
		goto fail;
	if (p->has_att_sha256 &&
	    ((a->att_sha256 = ASN1_OCTET_STRING_new()) == NULL ||
	     !ASN1_OCTET_STRING_set(a->att_sha256, p->att_sha256, PROV_SHA256_LEN)))
		goto fail;
	if (p->has_token_model &&
	    ((a->token_model = (TG_PROV_MODEL_ASN1 *)ASN1_item_new(
	          ASN1_ITEM_rptr(TG_PROV_MODEL_ASN1))) == NULL ||
	     !ASN1_STRING_set(a->token_model->manufacturer, p->token_manufacturer,
	                      (int)strlen(p->token_manufacturer)) ||
	     !ASN1_STRING_set(a->token_model->model, p->token_model, (int)strlen(p->token_model))))
		goto fail;
	if ((n = ASN1_item_i2d((ASN1_VALUE *)a, &out, ASN1_ITEM_rptr(TG_PROV_ASN1))) <= 0)
		goto fail;
	*der = out;
	*len = (size_t)n;
	out = NULL;
	r = 0;
	goto out;
fail:
	r = tg_error_set(err, TG_ERR_CRYPTO,
	                 "provenance: cannot encode the "
	                 "extension");
out:
	OPENSSL_free(out);
	prov_asn1_free(a);
	ERR_clear_error();
	return r;
}

/* An INTEGER or ENUMERATED in [lo, hi] into *v; 0 when out of range. */
static int
get_small(const ASN1_STRING *s, long lo, long hi, long *v)
{
	int64_t x = 0;
	int ok;

	if (ASN1_STRING_type(s) == V_ASN1_ENUMERATED ||
	    ASN1_STRING_type(s) == V_ASN1_NEG_ENUMERATED)
		ok = ASN1_ENUMERATED_get_int64(&x, s);
	else
		ok = ASN1_INTEGER_get_int64(&x, s);
	if (!ok || x < lo || x > hi)
		return 0;
	*v = (long)x;
	return 1;
}

int
tg_prov_decode(const uint8_t *der, size_t n, struct tg_prov *out, struct tg_error *err)
{
	TG_PROV_ASN1 *a = NULL;
	const unsigned char *p = der;
	unsigned char *re = NULL;
	struct tg_prov v;
	long x;
	int relen, r = TG_ERR_FORMAT;

	memset(&v, 0, sizeof(v));
	if (der == NULL || n == 0 || n > 4096) {
		tg_error_set(err, r, "provenance: empty or oversized extension");
		goto out;
	}
	a = (TG_PROV_ASN1 *)ASN1_item_d2i(NULL, &p, (long)n, ASN1_ITEM_rptr(TG_PROV_ASN1));
	if (a == NULL) {
		tg_error_set(err, r,
		             "provenance: extension value is not a "
		             "KeyProvenance SEQUENCE");
		goto out;
	}
	if ((size_t)(p - der) != n) {
		tg_error_set(err, r,
		             "provenance: trailing bytes after the "
		             "KeyProvenance SEQUENCE");
		goto out;
	}
	/* only DER: the re-encoding must give back the very same bytes */
	relen = ASN1_item_i2d((ASN1_VALUE *)a, &re, ASN1_ITEM_rptr(TG_PROV_ASN1));
	if (relen <= 0 || (size_t)relen != n || memcmp(re, der, n) != 0) {
		tg_error_set(err, r, "provenance: extension value is not DER");
		goto out;
	}
	if (!get_small(a->version, 0, 1000, &x)) {
		tg_error_set(err, r, "provenance: version out of range");
		goto out;
	}
	v.version = (int)x;
	if (!get_small(a->level, 0, 100, &x)) {
		tg_error_set(err, r, "provenance: level out of range");
		goto out;
	}
	v.level = (enum tg_prov_level)x;
	if (ASN1_STRING_length(a->serial) <= 0 ||
	    ASN1_STRING_length(a->serial) > TG_PROV_SERIAL_MAX ||
	    !serial_ok(ASN1_STRING_get0_data(a->serial), (size_t)ASN1_STRING_length(a->serial))) {
		tg_error_set(err, r,
		             "provenance: token serial must be 1 to %d "
		             "printable characters",
		             TG_PROV_SERIAL_MAX);
		goto out;
	}
	memcpy(v.serial, ASN1_STRING_get0_data(a->serial), (size_t)ASN1_STRING_length(a->serial));
	if (!get_small(a->pin, 0, 100, &x)) {
		tg_error_set(err, r, "provenance: PIN policy out of range");
		goto out;
	}
	v.pin_policy = (enum tg_att_pin)x;
	if (!get_small(a->touch, 0, 100, &x)) {
		tg_error_set(err, r, "provenance: touch policy out of range");
		goto out;
	}
	v.touch_policy = (enum tg_att_touch)x;
	if (a->form_factor != NULL) {
		if (!get_small(a->form_factor, 0, PROV_FORM_FACTOR_MAX, &x)) {
			tg_error_set(err, r,
			             "provenance: form factor out of "
			             "range 0..255");
			goto out;
		}
		v.has_form_factor = 1;
		v.form_factor = (uint8_t)x;
	}
	if (a->att_sha256 != NULL) {
		if (ASN1_STRING_length(a->att_sha256) != PROV_SHA256_LEN) {
			tg_error_set(err, r,
			             "provenance: attestation SHA-256 is "
			             "not %d bytes",
			             PROV_SHA256_LEN);
			goto out;
		}
		v.has_att_sha256 = 1;
		memcpy(v.att_sha256, ASN1_STRING_get0_data(a->att_sha256), PROV_SHA256_LEN);
	}
	if (a->token_model != NULL) {
		if (!model_ok(ASN1_STRING_get0_data(a->token_model->manufacturer),
		              (size_t)ASN1_STRING_length(a->token_model->manufacturer)) ||
		    !model_ok(ASN1_STRING_get0_data(a->token_model->model),
		              (size_t)ASN1_STRING_length(a->token_model->model))) {
			tg_error_set(err, r,
			             "provenance: token manufacturer and model must be 0 "
			             "to %d printable ASCII characters",
			             TG_PROV_MODEL_MAX);
			goto out;
		}
		v.has_token_model = 1;
		memcpy(v.token_manufacturer, ASN1_STRING_get0_data(a->token_model->manufacturer),
		       (size_t)ASN1_STRING_length(a->token_model->manufacturer));
		memcpy(v.token_model, ASN1_STRING_get0_data(a->token_model->model),
		       (size_t)ASN1_STRING_length(a->token_model->model));
	}
	if ((r = prov_check(&v, TG_ERR_FORMAT, err)) != 0)
		goto out;
	*out = v;
	r = 0;
out:
	OPENSSL_free(re);
	prov_asn1_free(a);
	ERR_clear_error();
	return r;
}

int
tg_prov_ext_make(const struct tg_prov *p, X509_EXTENSION **out, struct tg_error *err)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *ext = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int r;

	if ((r = tg_prov_encode(p, &der, &len, err)) != 0)
		goto out;
	if ((obj = OBJ_txt2obj(TG_PROV_OID, 1)) == NULL || (os = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(os, der, (int)len) ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL) {
		r = tg_error_set(err, TG_ERR_CRYPTO,
		                 "provenance: cannot build the "
		                 "certificate extension");
		goto out;
	}
	*out = ext;
	r = 0;
out:
	ASN1_OBJECT_free(obj);
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
	ERR_clear_error();
	return r;
}

int
tg_prov_from_cert(X509 *cert, struct tg_prov *p, struct tg_error *err)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *os;
	int idx, r = TG_ERR_CRYPTO;

	if ((obj = OBJ_txt2obj(TG_PROV_OID, 1)) == NULL) {
		tg_error_set(err, r, "provenance: cannot make the OID");
		goto out;
	}
	idx = X509_get_ext_by_OBJ(cert, obj, -1);
	if (idx < 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "certificate has no key-provenance extension "
		                 "(" TG_PROV_OID ")");
		goto out;
	}
	if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "certificate has the "
		                 "key-provenance extension "
		                 "more than once");
		goto out;
	}
	os = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
	r = tg_prov_decode(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), p, err);
out:
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
	return r;
}
