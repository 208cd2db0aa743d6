/* attest.c — Yubico PIV attestation verification (tg_att.h). */
#include "tg_att.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "tg_buf.h"
#include "tg_ca_io.h"
#include "tg_hex.h"

/* Yubico's PIV attestation extensions: 1.3.6.1.4.1.41482.3.<n> */
#define ATT_OID_PREFIX      "1.3.6.1.4.1.41482.3."
#define ATT_FIRMWARE_LEN    3
#define ATT_POLICY_LEN      2
#define ATT_FORM_FACTOR_LEN 1
#define ATT_CN_PREFIX       "YubiKey PIV Attestation "
#define ATT_CN_MAX          64

struct tg_att_roots {
	X509_STORE *store;
	STACK_OF(X509) * certs; /* the same roots, for the YubiKey 4 F9 check */
	int count;
	char dir[1024];
};

/* A policy's name from tg_piv.h; "unknown" for 0 (no attestation states
 * "the slot's default") and for values without a name. */
static const char *
policy_name(int v, const char *(*name)(uint8_t))
{
	const char *n = v > 0 && v <= UINT8_MAX ? name((uint8_t)v) : NULL;

	return n != NULL ? n : "unknown";
}

const char *
tg_att_pin_name(enum tg_att_pin p)
{
	return policy_name((int)p, tg_piv_pin_policy_name);
}

const char *
tg_att_touch_name(enum tg_att_touch t)
{
	return policy_name((int)t, tg_piv_touch_policy_name);
}

int
tg_att_pin_parse(const char *s, enum tg_att_pin *out)
{
	uint8_t v = 0;
	int r = tg_piv_pin_policy_parse(s, &v);

	if (r == 0)
		*out = (enum tg_att_pin)v;
	return r;
}

int
tg_att_touch_parse(const char *s, enum tg_att_touch *out)
{
	uint8_t v = 0;
	int r = tg_piv_touch_policy_parse(s, &v);

	if (r == 0)
		*out = (enum tg_att_touch)v;
	return r;
}

/* ---- trusted roots ---- */

static int
root_file_wanted(const char *name)
{
	static const char *const exts[] = {".pem", ".crt", ".cer", ".der"};
	size_t i, n = strlen(name);

	if (name[0] == '.')
		return 0;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (n > 4 && strcmp(name + n - 4, exts[i]) == 0)
			return 1;
	}
	return 0;
}

int
tg_att_roots_load(const char *dir, struct tg_att_roots **out, struct tg_error *err)
{
	struct tg_att_roots *roots = NULL;
	STACK_OF(X509) *certs = NULL;
	DIR *d = NULL;
	struct dirent *de;
	char path[4096];
	X509 *x;
	int r = TG_ERR_INTERNAL;

	if ((roots = calloc(1, sizeof(*roots))) == NULL ||
	    (roots->store = X509_STORE_new()) == NULL ||
	    (roots->certs = sk_X509_new_null()) == NULL || (certs = sk_X509_new_null()) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	snprintf(roots->dir, sizeof(roots->dir), "%s", dir);
	if ((d = opendir(dir)) == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "cannot read attestation roots directory '%s': %s", dir,
		                 strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!root_file_wanted(de->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if ((r = tg_ca_certs_read(path, certs, err)) != 0) {
			r = tg_error_wrap(err, TG_ERR_CONFIG, "attestation roots directory '%s'",
			                  dir);
			goto out;
		}
	}
	while ((x = sk_X509_shift(certs)) != NULL) {
		/* a duplicate root is harmless; X509_STORE_add_cert accepts it */
		if (!X509_STORE_add_cert(roots->store, x) || !sk_X509_push(roots->certs, x)) {
			X509_free(x);
			r = tg_error_set(err, TG_ERR_CRYPTO,
			                 "cannot add a root of '%s' to the trust store", dir);
			goto out;
		}
		roots->count++;
	}
	if (roots->count == 0) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "no trusted root in attestation roots directory "
		                 "'%s': put the token vendor's root certificates "
		                 "there (*.pem, *.crt, *.cer or *.der)",
		                 dir);
		goto out;
	}
	*out = roots;
	roots = NULL;
	r = 0;
out:
	if (d != NULL)
		closedir(d);
	sk_X509_pop_free(certs, X509_free);
	tg_att_roots_free(roots);
	return r;
}

void
tg_att_roots_free(struct tg_att_roots *roots)
{
	if (roots == NULL)
		return;
	X509_STORE_free(roots->store);
	sk_X509_pop_free(roots->certs, X509_free);
	free(roots);
}

/* ---- facts ---- */

int
tg_att_key_algorithm(EVP_PKEY *pkey, char *buf, size_t n)
{
	char group[64];
	size_t glen = 0;
	int r = TG_ERR_UNSUPPORTED;

	if (pkey == NULL || n == 0)
		goto out;
	buf[0] = '\0';
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		snprintf(buf, n, "RSA-%d", EVP_PKEY_get_bits(pkey));
		r = 0;
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                    sizeof(group), &glen))
			goto out;
		/* OpenSSL names P-256 "prime256v1"; the SEC 2 name is the usual one */
		if (strcmp(group, "prime256v1") == 0)
			snprintf(buf, n, "secp256r1");
		else
			snprintf(buf, n, "%s", group);
		r = 0;
	} else if (EVP_PKEY_is_a(pkey, "ED25519")) {
		snprintf(buf, n, "ED25519");
		r = 0;
	} else if (EVP_PKEY_is_a(pkey, "X25519")) {
		snprintf(buf, n, "X25519");
		r = 0;
	}
out:
	ERR_clear_error();
	return r;
}

static int
decode_firmware(struct tg_buf *b, struct tg_att_facts *f, struct tg_error *err)
{
	int r;

	if ((r = tg_buf_get_bytes(b, f->firmware, ATT_FIRMWARE_LEN)) != 0 ||
	    (r = tg_buf_expect_end(b)) != 0)
		return tg_error_set(err, TG_ERR_ATTESTATION,
		                    "firmware extension (" ATT_OID_PREFIX "3) is "
		                    "not exactly %d bytes",
		                    ATT_FIRMWARE_LEN);
	snprintf(f->firmware_str, sizeof(f->firmware_str), "%u.%u.%u", f->firmware[0],
	         f->firmware[1], f->firmware[2]);
	f->has_firmware = 1;
	return 0;
}

static int
decode_serial(struct tg_buf *b, struct tg_att_facts *f, struct tg_error *err)
{
	const unsigned char *p = tg_buf_cur(b), *start = p;
	long n = (long)tg_buf_remaining(b);
	ASN1_INTEGER *ai = NULL;
	uint64_t v = 0;
	int r = TG_ERR_ATTESTATION;

	if (p == NULL || n <= 0 || (ai = d2i_ASN1_INTEGER(NULL, &p, n)) == NULL) {
		tg_error_set(err, r,
		             "serial extension (" ATT_OID_PREFIX "7) "
		             "is not a DER INTEGER");
		goto out;
	}
	if (p - start != n) {
		tg_error_set(err, r,
		             "serial extension (" ATT_OID_PREFIX "7) "
		             "has trailing bytes after the INTEGER");
		goto out;
	}
	if (ASN1_STRING_type(ai) != V_ASN1_INTEGER || !ASN1_INTEGER_get_uint64(&v, ai)) {
		tg_error_set(err, r,
		             "serial extension (" ATT_OID_PREFIX "7) "
		             "is negative or too large");
		goto out;
	}
	f->serial = v;
	f->has_serial = 1;
	r = 0;
out:
	ERR_clear_error();
	ASN1_INTEGER_free(ai);
	return r;
}

static int
decode_policy(struct tg_buf *b, struct tg_att_facts *f, struct tg_error *err)
{
	uint8_t pin = 0, touch = 0;

	if (tg_buf_get_u8(b, &pin) != 0 || tg_buf_get_u8(b, &touch) != 0 ||
	    tg_buf_expect_end(b) != 0)
		return tg_error_set(err, TG_ERR_ATTESTATION,
		                    "policy extension (" ATT_OID_PREFIX "8) is "
		                    "not exactly %d bytes",
		                    ATT_POLICY_LEN);
	switch (pin) {
	case TG_ATT_PIN_NEVER:
	case TG_ATT_PIN_ONCE:
	case TG_ATT_PIN_ALWAYS:
	case TG_ATT_PIN_MATCH_ONCE:
	case TG_ATT_PIN_MATCH_ALWAYS:
		f->pin_policy = (enum tg_att_pin)pin;
		break;
	default:
		return tg_error_set(err, TG_ERR_ATTESTATION,
		                    "policy extension (" ATT_OID_PREFIX "8): "
		                    "unknown PIN policy value 0x%02x",
		                    pin);
	}
	switch (touch) {
	case TG_ATT_TOUCH_NEVER:
	case TG_ATT_TOUCH_ALWAYS:
	case TG_ATT_TOUCH_CACHED:
		f->touch_policy = (enum tg_att_touch)touch;
		break;
	default:
		return tg_error_set(err, TG_ERR_ATTESTATION,
		                    "policy extension (" ATT_OID_PREFIX "8): "
		                    "unknown touch policy value 0x%02x",
		                    touch);
	}
	return 0;
}

static int
decode_form_factor(struct tg_buf *b, struct tg_att_facts *f, struct tg_error *err)
{
	if (tg_buf_get_u8(b, &f->form_factor) != 0 || tg_buf_expect_end(b) != 0)
		return tg_error_set(err, TG_ERR_ATTESTATION,
		                    "form factor extension (" ATT_OID_PREFIX "9) "
		                    "is not exactly %d byte",
		                    ATT_FORM_FACTOR_LEN);
	f->has_form_factor = 1;
	return 0;
}

int
tg_att_ext_decode(enum tg_att_ext which, const uint8_t *p, size_t n, struct tg_att_facts *facts,
                  struct tg_error *err)
{
	struct tg_buf b;

	tg_buf_reader(&b, p, n);
	switch (which) {
	case TG_ATT_EXT_FIRMWARE:
		return decode_firmware(&b, facts, err);
	case TG_ATT_EXT_SERIAL:
		return decode_serial(&b, facts, err);
	case TG_ATT_EXT_POLICY:
		return decode_policy(&b, facts, err);
	case TG_ATT_EXT_FORM_FACTOR:
		return decode_form_factor(&b, facts, err);
	default:
		return tg_error_set(err, TG_ERR_INVALID_ARG,
		                    "no decoder for attestation extension %d", (int)which);
	}
}

/*
 * The value of a subject name entry as UTF-8 (any string type converted),
 * with its encoded length: an embedded NUL stays part of the value. 0 and
 * *out (OPENSSL_free) and *len, or TG_ERR_FORMAT.
 */
static int
name_entry_utf8(const X509_NAME_ENTRY *e, unsigned char **out, int *len)
{
	*len = ASN1_STRING_to_UTF8(out, X509_NAME_ENTRY_get_data(e));
	return *len < 0 ? TG_ERR_FORMAT : 0;
}

/* s (n bytes, maybe holding NULs) for a message: non-printable bytes as \xNN. */
static const char *
printable(const unsigned char *s, int n, char *buf, size_t bufn)
{
	size_t o = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n && o + 5 < bufn; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '\\') {
			buf[o++] = (char)s[i];
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			(void)tg_hex_encode(&s[i], 1, buf + o, bufn - o);
			o += 2;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* The PIV key slots an attestation may name: 9a 9c 9d 9e and the retired
 * 82..95 (8a..8f too), by their tg_piv.h name in lower case as tokens write
 * it; not f9, whose key attests and is never attested. */
static int
slot_valid(const char *name)
{
	const struct tg_piv_slot *s = tg_piv_slot_by_name(name);

	return s != NULL && s->id != TG_PIV_SLOT_ATTEST && strcmp(s->name, name) == 0;
}

/*
 * Slot from the subject: exactly one CN, exactly "YubiKey PIV Attestation
 * XX" over its whole encoded length, XX a PIV key slot in lower case as
 * tokens write it.
 */
static int
slot_get(X509 *att, struct tg_att_facts *f, struct tg_error *err)
{
	const size_t plen = strlen(ATT_CN_PREFIX);
	X509_NAME *subj = X509_get_subject_name(att);
	unsigned char *cn = NULL;
	char shown[4 * ATT_CN_MAX + 8], slot[3];
	int idx, len = 0, r = TG_ERR_ATTESTATION;

	idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx < 0) {
		tg_error_set(err, r,
		             "attestation certificate has no subject common name: want "
		             "'" ATT_CN_PREFIX "XX' (XX the slot)");
		goto out;
	}
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0) {
		tg_error_set(err, r,
		             "attestation certificate has more than one subject common name: "
		             "a token writes exactly one, '" ATT_CN_PREFIX "XX'");
		goto out;
	}
	if (name_entry_utf8(X509_NAME_get_entry(subj, idx), &cn, &len) != 0) {
		tg_error_set(err, r, "attestation certificate subject CN is not a valid string");
		goto out;
	}
	if ((size_t)len != plen + 2 || memcmp(cn, ATT_CN_PREFIX, plen) != 0 ||
	    memchr(cn, '\0', (size_t)len) != NULL) {
		tg_error_set(
		    err, r,
		    "attestation certificate subject CN '%s' is not exactly "
		    "'" ATT_CN_PREFIX "XX' (XX the slot)",
		    printable(cn, len < ATT_CN_MAX ? len : ATT_CN_MAX, shown, sizeof(shown)));
		goto out;
	}
	memcpy(slot, cn + plen, 2);
	slot[2] = '\0';
	if (!slot_valid(slot)) {
		tg_error_set(err, r,
		             "attestation certificate subject CN '%s' names no PIV key slot: "
		             "want 9a, 9c, 9d, 9e or 82 to 95",
		             printable(cn, len, shown, sizeof(shown)));
		goto out;
	}
	memcpy(f->slot, slot, sizeof(slot));
	r = 0;
out:
	OPENSSL_free(cn);
	ERR_clear_error();
	return r;
}

/* 1 if obj is one of the 41482.3 extensions tg_att_facts_get decodes. */
static int
yubico_ext_known(const ASN1_OBJECT *obj)
{
	static const enum tg_att_ext known[] = {TG_ATT_EXT_FIRMWARE, TG_ATT_EXT_SERIAL,
	                                        TG_ATT_EXT_POLICY, TG_ATT_EXT_FORM_FACTOR};
	char oid[64], want[64];
	size_t i;
	int found = 0;

	if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		goto out;
	for (i = 0; i < sizeof(known) / sizeof(known[0]) && !found; i++) {
		snprintf(want, sizeof(want), ATT_OID_PREFIX "%d", (int)known[i]);
		found = strcmp(oid, want) == 0;
	}
out:
	return found;
}

/*
 * RFC 5280 4.2: a certificate with a critical extension the verifier does
 * not recognise must be refused. Recognised: the 41482.3 extensions decoded
 * here and the standard ones OpenSSL processes (X509_supported_extension).
 */
static int
critical_check(X509 *att, struct tg_error *err)
{
	X509_EXTENSION *ext;
	char oid[64];
	int i, r = 0;

	for (i = 0; i < X509_get_ext_count(att); i++) {
		ext = X509_get_ext(att, i);
		if (!X509_EXTENSION_get_critical(ext) || X509_supported_extension(ext) ||
		    yubico_ext_known(X509_EXTENSION_get_object(ext)))
			continue;
		if (OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1) <= 0)
			snprintf(oid, sizeof(oid), "?");
		r = tg_error_set(err, TG_ERR_ATTESTATION,
		                 "attestation certificate has critical extension %s, which this "
		                 "verifier does not know: a critical extension it cannot process "
		                 "makes the certificate unusable (RFC 5280 4.2)",
		                 oid);
		break;
	}
	ERR_clear_error();
	return r;
}

int
tg_att_facts_get(X509 *att, struct tg_att_facts *facts, struct tg_error *err)
{
	static const struct {
		enum tg_att_ext which;
		int required;
	} exts[] = {
	    {TG_ATT_EXT_FIRMWARE, 0},
	    {TG_ATT_EXT_SERIAL, 0},
	    {TG_ATT_EXT_POLICY, 1},
	    {TG_ATT_EXT_FORM_FACTOR, 0},
	};
	struct tg_att_facts f;
	ASN1_OBJECT *obj = NULL;
	X509_EXTENSION *ext;
	ASN1_OCTET_STRING *val;
	EVP_PKEY *pk;
	unsigned char *der = NULL;
	char oid[64];
	size_t i;
	int idx, derlen, r = TG_ERR_ATTESTATION;

	memset(&f, 0, sizeof(f));
	if ((r = slot_get(att, &f, err)) != 0 || (r = critical_check(att, err)) != 0)
		goto out;
	if ((pk = X509_get0_pubkey(att)) == NULL ||
	    tg_att_key_algorithm(pk, f.key_algorithm, sizeof(f.key_algorithm)) != 0) {
		r = tg_error_set(err, TG_ERR_ATTESTATION,
		                 "attestation certificate holds no supported "
		                 "public key");
		goto out;
	}
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		snprintf(oid, sizeof(oid), ATT_OID_PREFIX "%d", (int)exts[i].which);
		ASN1_OBJECT_free(obj);
		if ((obj = OBJ_txt2obj(oid, 1)) == NULL) {
			r = tg_error_set(err, TG_ERR_CRYPTO, "cannot make OID %s", oid);
			goto out;
		}
		idx = X509_get_ext_by_OBJ(att, obj, -1);
		if (idx < 0) {
			if (exts[i].required) {
				r = tg_error_set(err, TG_ERR_ATTESTATION,
				                 "attestation certificate lacks "
				                 "extension %s (PIN and touch policy)",
				                 oid);
				goto out;
			}
			continue;
		}
		if (X509_get_ext_by_OBJ(att, obj, idx) >= 0) {
			r = tg_error_set(err, TG_ERR_ATTESTATION,
			                 "attestation certificate has extension "
			                 "%s more than once",
			                 oid);
			goto out;
		}
		ext = X509_get_ext(att, idx);
		val = X509_EXTENSION_get_data(ext);
		if ((r = tg_att_ext_decode(exts[i].which, ASN1_STRING_get0_data(val),
		                           (size_t)ASN1_STRING_length(val), &f, err)) != 0)
			goto out;
	}
	if ((derlen = i2d_X509(att, &der)) <= 0 ||
	    EVP_Digest(der, (size_t)derlen, f.sha256, NULL, EVP_sha256(), NULL) != 1) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "cannot hash the attestation certificate");
		goto out;
	}
	*facts = f;
	r = 0;
out:
	OPENSSL_free(der);
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
	return r;
}

/* ---- verification ---- */

static int
att_signed_by_f9(X509 *att, X509 *f9, struct tg_error *err)
{
	char an[256], fn[256];
	EVP_PKEY *f9key;
	int r = TG_ERR_ATTESTATION, nb, na;

	if (X509_NAME_cmp(X509_get_issuer_name(att), X509_get_subject_name(f9)) != 0) {
		tg_error_set(err, r,
		             "attestation certificate issuer '%s' is not "
		             "the F9 device certificate subject '%s': "
		             "give the F9 certificate of the token that "
		             "made the attestation",
		             tg_ca_name_str(X509_get_issuer_name(att), an, sizeof(an)),
		             tg_ca_name_str(X509_get_subject_name(f9), fn, sizeof(fn)));
		goto out;
	}
	if ((f9key = X509_get0_pubkey(f9)) == NULL) {
		tg_error_set(err, r,
		             "F9 device certificate holds no usable "
		             "public key");
		goto out;
	}
	if (X509_verify(att, f9key) != 1) {
		tg_error_set(err, r,
		             "attestation certificate signature does not "
		             "verify with the F9 device certificate's key "
		             "(attestation tampered with, or made by "
		             "another token)");
		goto out;
	}
	/* X509_cmp_current_time: -1 before now, 1 after, 0 when it could not compare */
	nb = X509_cmp_current_time(X509_get0_notBefore(att));
	na = X509_cmp_current_time(X509_get0_notAfter(att));
	if (nb == 0 || na == 0) {
		tg_error_set(err, r,
		             "cannot compare the attestation certificate's validity with the "
		             "clock (a malformed time, or out of memory)");
		goto out;
	}
	if (nb > 0) {
		tg_error_set(err, r,
		             "attestation certificate is not valid yet "
		             "(notBefore in the future)");
		goto out;
	}
	if (na < 0) {
		tg_error_set(err, r, "attestation certificate has expired");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	return r;
}

#define F9_FIX                                                                                     \
	"give the token's own F9 device certificate (yubico-piv-tool -a read-certificate -s f9) "  \
	"as the first intermediate"

/* 1 if x is issued by a root of roots: issuer name and signature. */
static int
issued_by_root(const struct tg_att_roots *roots, X509 *x)
{
	X509 *root;
	int i, found = 0;

	for (i = 0; i < sk_X509_num(roots->certs) && !found; i++) {
		root = sk_X509_value(roots->certs, i);
		found = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(root)) == 0 &&
		        X509_get0_pubkey(root) != NULL &&
		        X509_verify(x, X509_get0_pubkey(root)) == 1;
	}
	ERR_clear_error();
	return found;
}

/*
 * What makes f9 look like a slot attestation certificate rather than a
 * device F9 certificate (a subject CN of the slot form, a serial or policy
 * extension), or NULL. Real F9 certificates are named "Yubico PIV
 * Attestation" or (firmware 5.7) "YubiKey PIV Attestation", with no slot.
 */
static const char *
f9_slot_like(X509 *f9)
{
	static const char *const slot_exts[] = {ATT_OID_PREFIX "7", ATT_OID_PREFIX "8"};
	static const char *const why[] = {
	    "it carries the device serial extension " ATT_OID_PREFIX "7",
	    "it carries the PIN/touch policy extension " ATT_OID_PREFIX "8"};
	const size_t plen = strlen(ATT_CN_PREFIX);
	X509_NAME *subj = X509_get_subject_name(f9);
	ASN1_OBJECT *obj;
	unsigned char *cn = NULL;
	const char *res = NULL;
	size_t i;
	int idx = -1, len;

	while (res == NULL && (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0) {
		if (name_entry_utf8(X509_NAME_get_entry(subj, idx), &cn, &len) != 0 ||
		    ((size_t)len >= plen && memcmp(cn, ATT_CN_PREFIX, plen) == 0))
			res = "its subject CN has the slot form '" ATT_CN_PREFIX "XX'";
		OPENSSL_free(cn);
		cn = NULL;
	}
	for (i = 0; res == NULL && i < sizeof(slot_exts) / sizeof(slot_exts[0]); i++) {
		if ((obj = OBJ_txt2obj(slot_exts[i], 1)) == NULL ||
		    X509_get_ext_by_OBJ(f9, obj, -1) >= 0)
			res = why[i];
		ASN1_OBJECT_free(obj);
	}
	ERR_clear_error();
	return res;
}

/*
 * The F9 certificate's role: a CA that is not a slot attestation
 * certificate. Tolerated: a YubiKey 4 F9 certificate without any
 * basicConstraints, issued directly by a trusted root.
 */
static int
f9_role_check(const struct tg_att_roots *roots, X509 *f9, struct tg_error *err)
{
	char fn[256];
	const char *why;
	int r = TG_ERR_ATTESTATION;

	tg_ca_name_str(X509_get_subject_name(f9), fn, sizeof(fn));
	if ((why = f9_slot_like(f9)) != NULL) {
		tg_error_set(err, r,
		             "the certificate given as F9 device certificate ('%s') is a slot "
		             "attestation certificate (%s), not a token's F9 device certificate: "
		             "a slot key cannot vouch for another attestation; " F9_FIX,
		             fn, why);
		goto out;
	}
	if (X509_check_ca(f9) != 0) {
		r = 0;
		goto out;
	}
	if (X509_get_ext_by_NID(f9, NID_basic_constraints, -1) >= 0) {
		tg_error_set(err, r,
		             "the F9 device certificate '%s' is not a CA (%s): it cannot vouch "
		             "for an attestation; " F9_FIX,
		             fn,
		             (X509_get_extension_flags(f9) & EXFLAG_CA) != 0
		                 ? "its keyUsage lacks keyCertSign"
		                 : "basicConstraints CA:FALSE");
		goto out;
	}
	if (!issued_by_root(roots, f9)) {
		tg_error_set(
		    err, r,
		    "the F9 device certificate '%s' is not a CA (no basicConstraints) "
		    "and is not issued directly by a trusted root in '%s', as a "
		    "YubiKey 4 F9 certificate is: it cannot vouch for an attestation; " F9_FIX,
		    fn, roots->dir);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	return r;
}

static int
f9_chain_verify(const struct tg_att_roots *roots, X509 *f9, STACK_OF(X509) * intermediates,
                struct tg_error *err)
{
	X509_STORE_CTX *ctx = NULL;
	X509 *bad;
	char fn[256], bn[256];
	int ok, code, depth, r = TG_ERR_ATTESTATION;

	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, roots->store, f9, intermediates)) {
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot set up chain verification");
		goto out;
	}
	ok = X509_verify_cert(ctx);
	if (ok != 1) {
		code = X509_STORE_CTX_get_error(ctx);
		depth = X509_STORE_CTX_get_error_depth(ctx);
		bad = X509_STORE_CTX_get_current_cert(ctx);
		tg_error_set(
		    err, r,
		    "F9 device certificate '%s' does not chain "
		    "to a trusted root in '%s': %s (at depth %d, "
		    "certificate '%s')",
		    tg_ca_name_str(X509_get_subject_name(f9), fn, sizeof(fn)), roots->dir,
		    X509_verify_cert_error_string(code), depth,
		    bad != NULL ? tg_ca_name_str(X509_get_subject_name(bad), bn, sizeof(bn)) : "?");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return r;
}

int
tg_att_verify(const struct tg_att_roots *roots, X509 *att, X509 *f9, STACK_OF(X509) * intermediates,
              EVP_PKEY *expect_key, struct tg_att_facts *facts, struct tg_error *err)
{
	struct tg_att_facts f;
	char want[24];
	int r = TG_ERR_INVALID_ARG;

	if (roots == NULL || att == NULL || f9 == NULL) {
		tg_error_set(err, r,
		             "attestation, F9 certificate and roots are "
		             "all needed");
		goto out;
	}
	if ((r = tg_att_facts_get(att, &f, err)) != 0)
		goto out;
	if ((r = att_signed_by_f9(att, f9, err)) != 0 ||
	    (r = f9_chain_verify(roots, f9, intermediates, err)) != 0 ||
	    (r = f9_role_check(roots, f9, err)) != 0)
		goto out;
	if (expect_key != NULL && EVP_PKEY_eq(X509_get0_pubkey(att), expect_key) != 1) {
		if (tg_att_key_algorithm(expect_key, want, sizeof(want)) != 0)
			snprintf(want, sizeof(want), "unsupported");
		r = tg_error_set(err, TG_ERR_ATTESTATION,
		                 "attested public key (%s, slot %s) differs from "
		                 "the key being certified (%s): the CSR was not "
		                 "made with the attested key",
		                 f.key_algorithm, f.slot, want);
		goto out;
	}
	if (facts != NULL)
		*facts = f;
	r = 0;
out:
	ERR_clear_error();
	return r;
}

/* ---- attestation carried in a CSR ---- */

#define CSR_OID_ATT     ATT_OID_PREFIX "11"
#define CSR_OID_ATT_OLD ATT_OID_PREFIX "1"
#define CSR_OID_F9      ATT_OID_PREFIX "2"

/* The certificate in extension oid of exts: 0 and *out, TG_ERR_NOT_FOUND. */
static int
csr_ext_cert(STACK_OF(X509_EXTENSION) * exts, const char *oid, X509 **out, struct tg_error *err)
{
	ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *val;
	const unsigned char *p, *start;
	X509 *x = NULL;
	long n;
	int idx, r = TG_ERR_CRYPTO;

	if ((obj = OBJ_txt2obj(oid, 1)) == NULL) {
		tg_error_set(err, r, "cannot make OID %s", oid);
		goto out;
	}
	idx = X509v3_get_ext_by_OBJ(exts, obj, -1);
	if (idx < 0) {
		r = TG_ERR_NOT_FOUND;
		goto out;
	}
	r = TG_ERR_ATTESTATION;
	if (X509v3_get_ext_by_OBJ(exts, obj, idx) >= 0) {
		tg_error_set(err, r, "the CSR carries extension %s more than once", oid);
		goto out;
	}
	val = X509_EXTENSION_get_data(X509v3_get_ext(exts, idx));
	start = p = ASN1_STRING_get0_data(val);
	n = ASN1_STRING_length(val);
	if (n <= 0 || (x = d2i_X509(NULL, &p, n)) == NULL || p - start != n) {
		tg_error_set(err, r, "the CSR's extension %s is not a DER certificate", oid);
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	X509_free(x);
	ASN1_OBJECT_free(obj);
	ERR_clear_error();
	return r;
}

int
tg_att_from_csr(X509_REQ *req, X509 **att, X509 **f9, struct tg_error *err)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509 *a = NULL, *f = NULL;
	int ra, rf, r = TG_ERR_NOT_FOUND;

	if ((exts = X509_REQ_get_extensions(req)) == NULL)
		goto out;
	ra = csr_ext_cert(exts, CSR_OID_ATT, &a, err);
	if (ra == TG_ERR_NOT_FOUND)
		ra = csr_ext_cert(exts, CSR_OID_ATT_OLD, &a, err);
	if (ra != 0 && ra != TG_ERR_NOT_FOUND) {
		r = ra;
		goto out;
	}
	rf = csr_ext_cert(exts, CSR_OID_F9, &f, err);
	if (rf != 0 && rf != TG_ERR_NOT_FOUND) {
		r = rf;
		goto out;
	}
	if (ra == TG_ERR_NOT_FOUND && rf == TG_ERR_NOT_FOUND)
		goto out;
	if (ra != 0 || rf != 0) {
		r = tg_error_set(err, TG_ERR_ATTESTATION, "the CSR carries %s but not %s",
		                 ra == 0 ? "an attestation" : "an F9 certificate",
		                 ra == 0 ? "its F9 certificate (" CSR_OID_F9 ")"
		                         : "an attestation (" CSR_OID_ATT ")");
		goto out;
	}
	*att = a;
	*f9 = f;
	a = f = NULL;
	r = 0;
out:
	X509_free(a);
	X509_free(f);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return r;
}
