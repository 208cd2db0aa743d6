/* store.c — the CA directory (tg_ca_store.h). */
#include "tg_ca_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#ifdef TG_CA_HAVE_P11
#include "tg_p11.h"
#endif
#include "tg_ca_io.h"
#include "tg_log.h"
#include "tg_hex.h"
#include "tg_secret.h"

#define CA_PATH_MAX       4096
#define CA_DEFAULT_DAYS   3650L
#define CA_CRL_DAYS       7L
#define CA_SERIAL_HEX_MAX 80
#define CA_REVOKED_MAX    (1024 * 1024)

struct tg_ca_store {
	char dir[CA_PATH_MAX];
	X509 *cert;
	EVP_PKEY *key;
	struct tg_ca_policy pol;
#ifdef TG_CA_HAVE_P11
	struct tg_p11 *p11;
	struct tg_p11_key *p11key;
#endif
};

static int
path_join(char *buf, size_t n, const char *dir, const char *name, struct tg_error *err)
{
	if (snprintf(buf, n, "%s/%s", dir, name) >= (int)n)
		return tg_error_set(err, TG_ERR_INVALID_ARG, "path '%s/%s' is too long", dir, name);
	return 0;
}

static int
mkdir_p(const char *path, mode_t mode, struct tg_error *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return tg_error_set(err, TG_ERR_IO,
		                    "cannot create directory "
		                    "'%s': %s",
		                    path, strerror(errno));
	return 0;
}

const EVP_MD *
tg_ca_sign_md(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	return EVP_sha256();
}

/* The canonical (upper-case) hex of bn into buf; bn NULL is an error.
 * 0 or TG_ERR_INVALID_ARG. */
static int
bn_hex(const BIGNUM *bn, char *buf, size_t n)
{
	char *hex = NULL;
	int r = TG_ERR_INVALID_ARG;

	if (bn == NULL || (hex = BN_bn2hex(bn)) == NULL || strlen(hex) >= n)
		goto out;
	snprintf(buf, n, "%s", hex);
	r = 0;
out:
	OPENSSL_free(hex);
	return r;
}

int
tg_ca_serial_hex(const ASN1_INTEGER *ai, char *buf, size_t n)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	int r = bn_hex(bn, buf, n);

	BN_free(bn);
	return r;
}

int
tg_ca_serial_norm(const char *text, char *buf, size_t n)
{
	char clean[CA_SERIAL_HEX_MAX + 1];
	BIGNUM *bn = NULL;
	size_t i, j = 0;
	int r = TG_ERR_INVALID_ARG;

	if (text == NULL)
		goto out;
	if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
		text += 2;
	for (i = 0; text[i] != '\0'; i++) {
		if (text[i] == ':')
			continue;
		if (strchr("0123456789abcdefABCDEF", text[i]) == NULL || j >= CA_SERIAL_HEX_MAX)
			goto out;
		clean[j++] = text[i];
	}
	clean[j] = '\0';
	if (j == 0 || BN_hex2bn(&bn, clean) != (int)j)
		goto out;
	r = bn_hex(bn, buf, n);
out:
	BN_free(bn);
	return r;
}

int
tg_ca_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value, struct tg_error *err)
{
	X509_EXTENSION *ext;
	int r = 0;

	ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (ext == NULL || !X509_add_ext(x, ext, -1))
		r = tg_error_set(err, TG_ERR_CRYPTO, "cannot add extension %s=%s", OBJ_nid2sn(nid),
		                 value);
	X509_EXTENSION_free(ext);
	return r;
}

int
tg_ca_serial_random(X509 *x, struct tg_error *err)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	int r = TG_ERR_CRYPTO;

	if (RAND_bytes(b, sizeof(b)) != 1)
		goto out;
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, 16 bytes */
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	r = 0;
out:
	if (r != 0)
		tg_error_set(err, r, "cannot make a random serial number");
	BN_free(bn);
	return r;
}

static int
ca_cert_make(const struct tg_ca_init_opts *o, EVP_PKEY *key, X509 **out, struct tg_error *err)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	char cn[TG_CA_TD_MAX + 32];
	long days = o->validity_days > 0 ? o->validity_days : CA_DEFAULT_DAYS;
	int r = TG_ERR_CRYPTO;

	snprintf(cn, sizeof(cn), "tokengate CA %s", o->trust_domain);
	if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    (r = tg_ca_serial_random(x, err)) != 0)
		goto fail;
	r = TG_ERR_CRYPTO;
	if ((name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	                                (const unsigned char *)"tokengate", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, key))
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((r = tg_ca_ext_add(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0",
	                       err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_subject_key_identifier, "hash", err)) != 0 ||
	    (r = tg_ca_ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always", err)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if (X509_sign(x, key, tg_ca_sign_md(key)) <= 0)
		goto fail;
	*out = x;
	x = NULL;
	r = 0;
	goto out;
fail:
	r = tg_error_set(err, r, "cannot build the CA certificate: %s",
	                 ERR_reason_error_string(ERR_peek_last_error()) != NULL
	                     ? ERR_reason_error_string(ERR_peek_last_error())
	                     : "OpenSSL error");
out:
	X509_NAME_free(name);
	X509_free(x);
	ERR_clear_error();
	return r;
}

static int
pem_write_key(const char *path, EVP_PKEY *key, struct tg_error *err)
{
	BIO *bio = NULL;
	char *data;
	long n;
	int r = TG_ERR_CRYPTO;

	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		tg_error_set(err, r, "cannot encode the CA key as PEM");
		goto out;
	}
	n = BIO_get_mem_data(bio, &data);
	r = tg_ca_file_write(path, data, (size_t)n, 0600, err);
out:
	BIO_free(bio); /* secure heap BIO: wiped on free */
	return r;
}

#ifdef TG_CA_HAVE_P11
static int
p11_key_get(const char *uri, int create, struct tg_p11 **p11out, struct tg_p11_key **keyout,
            EVP_PKEY **evp, struct tg_error *err)
{
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error tmp;
	int r;

	tg_error_clear(&tmp);
	if ((r = tg_p11_new(&p11, err)) != 0)
		goto out;
	r = tg_p11_key_find(p11, uri, 0, &k, &tmp);
	if (r == TG_ERR_KEY_NOT_FOUND && create) {
		tg_log_info("ca.init", "no key at the URI; generating EC P-256 on the token");
		r = tg_p11_keygen(p11, uri, TG_P11_ALG_EC_P256, 0, &k, err);
	} else if (r != 0) {
		*err = tmp;
	}
	if (r != 0) {
		r = tg_error_set(err, r, "CA key '%s'", uri);
		goto out;
	}
	if ((*evp = tg_p11_key_evp(k)) == NULL) {
		r = tg_error_set(err, TG_ERR_PKCS11,
		                 "CA key '%s' cannot be used "
		                 "for signing through OpenSSL",
		                 uri);
		goto out;
	}
	*p11out = p11;
	*keyout = k;
	p11 = NULL;
	k = NULL;
	r = 0;
out:
	tg_p11_key_free(k);
	tg_p11_free(p11);
	return r;
}
#endif

int
tg_ca_store_init(const struct tg_ca_init_opts *o, struct tg_error *err)
{
	char path[CA_PATH_MAX], rootsbuf[CA_PATH_MAX];
	struct tg_ca_policy pol;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct stat st;
	int r;
#ifdef TG_CA_HAVE_P11
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *p11key = NULL;
#endif

	tg_ca_policy_defaults(&pol);
	if ((r = tg_ca_td_check(o->trust_domain, err)) != 0)
		goto out;
	if (o->key_uri != NULL && strstr(o->key_uri, "pin-value=") != NULL) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "the CA key URI would be stored in ca.key.uri "
		                 "with its pin-value: use pin-source= or "
		                 "TOKENGATE_PIN instead");
		goto out;
	}
	if ((r = mkdir_p(o->dir, 0700, err)) != 0 ||
	    (r = path_join(path, sizeof(path), o->dir, "ca.pem", err)) != 0)
		goto out;
	if (stat(path, &st) == 0) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "'%s' already exists: this directory holds a CA; "
		                 "choose another --dir",
		                 path);
		goto out;
	}
	if (o->key_uri != NULL) {
#ifdef TG_CA_HAVE_P11
		if ((r = p11_key_get(o->key_uri, 1, &p11, &p11key, &key, err)) != 0)
			goto out;
		if ((r = path_join(path, sizeof(path), o->dir, "ca.key.uri", err)) != 0 ||
		    (r = tg_ca_file_write(path, o->key_uri, strlen(o->key_uri), 0600, err)) != 0)
			goto out;
#else
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "this build has no PKCS#11 layer: a CA key on "
		                 "an HSM is not available; omit --key");
		goto out;
#endif
	} else {
		if ((key = EVP_EC_gen("P-256")) == NULL) {
			r = tg_error_set(err, TG_ERR_CRYPTO, "cannot generate the CA key");
			goto out;
		}
		if ((r = path_join(path, sizeof(path), o->dir, "ca.key", err)) != 0 ||
		    (r = pem_write_key(path, key, err)) != 0)
			goto out;
	}
	if ((r = ca_cert_make(o, key, &cert, err)) != 0)
		goto out;
	if ((r = path_join(path, sizeof(path), o->dir, "issued", err)) != 0 ||
	    (r = mkdir_p(path, 0700, err)) != 0)
		goto out;
	if (o->roots_dir != NULL) {
		snprintf(rootsbuf, sizeof(rootsbuf), "%s", o->roots_dir);
	} else {
		snprintf(rootsbuf, sizeof(rootsbuf), "attestation-roots");
		if ((r = path_join(path, sizeof(path), o->dir, rootsbuf, err)) != 0 ||
		    (r = mkdir_p(path, 0755, err)) != 0)
			goto out;
	}
	if (strlen(rootsbuf) >= sizeof(pol.attestation_roots)) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG, "roots path too long");
		goto out;
	}
	/* length checked above; memcpy keeps -Wformat-truncation quiet at -O0 */
	memcpy(pol.attestation_roots, rootsbuf, strlen(rootsbuf) + 1);
	snprintf(pol.trust_domain, sizeof(pol.trust_domain), "%s", o->trust_domain);
	if ((r = path_join(path, sizeof(path), o->dir, "policy.yaml", err)) != 0 ||
	    (r = tg_ca_policy_write(&pol, path, err)) != 0)
		goto out;
	/* ca.pem last: its presence means the CA is complete */
	if ((r = path_join(path, sizeof(path), o->dir, "ca.pem", err)) != 0 ||
	    (r = tg_ca_pem_write(path, cert, NULL, NULL, err)) != 0)
		goto out;
	r = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
#ifdef TG_CA_HAVE_P11
	tg_p11_key_free(p11key);
	tg_p11_free(p11);
#endif
	tg_ca_policy_clear(&pol);
	return r;
}

static int
key_file_read(const char *path, EVP_PKEY **out, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "CA key '%s' is readable by "
		                 "others (mode %03o): chmod 600 it",
		                 path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if ((r = tg_ca_file_read(path, &data, &len, err)) != 0)
		goto out;
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (*out = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		r = tg_error_set(err, TG_ERR_CONFIG, "'%s' is not a PEM private key", path);
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	tg_freezero(data, len);
	return r;
}

int
tg_ca_store_open(const char *dir, int need_key, struct tg_ca_store **out, struct tg_error *err)
{
	struct tg_ca_store *s = NULL;
	char path[CA_PATH_MAX];
	uint8_t *uri = NULL;
	size_t urilen = 0;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if ((r = path_join(path, sizeof(path), dir, "ca.pem", err)) != 0)
		goto out;
	if ((r = tg_ca_cert_read(path, &s->cert, err)) != 0) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "'%s' is not a CA directory "
		                 "(create one with tokengate ca init)",
		                 dir);
		goto out;
	}
	if ((r = path_join(path, sizeof(path), dir, "policy.yaml", err)) != 0 ||
	    (r = tg_ca_policy_load(path, &s->pol, err)) != 0)
		goto out;
	if (!need_key)
		goto done;
	if ((r = path_join(path, sizeof(path), dir, "ca.key.uri", err)) != 0)
		goto out;
	if (access(path, F_OK) == 0) {
		if ((r = tg_ca_file_read(path, &uri, &urilen, err)) != 0)
			goto out;
#ifdef TG_CA_HAVE_P11
		if ((r = p11_key_get((const char *)uri, 0, &s->p11, &s->p11key, &s->key, err)) != 0)
			goto out;
#else
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "the CA key is on an HSM (%s) but this build has "
		                 "no PKCS#11 layer",
		                 path);
		goto out;
#endif
	} else {
		if ((r = path_join(path, sizeof(path), dir, "ca.key", err)) != 0 ||
		    (r = key_file_read(path, &s->key, err)) != 0)
			goto out;
	}
	if (X509_check_private_key(s->cert, s->key) != 1) {
		ERR_clear_error();
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "the CA key does not match "
		                 "'%s/ca.pem'",
		                 dir);
		goto out;
	}
done:
	*out = s;
	s = NULL;
	r = 0;
out:
	free(uri);
	tg_ca_store_free(s);
	return r;
}

void
tg_ca_store_free(struct tg_ca_store *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
#ifdef TG_CA_HAVE_P11
	tg_p11_key_free(s->p11key);
	tg_p11_free(s->p11);
#endif
	X509_free(s->cert);
	tg_ca_policy_clear(&s->pol);
	free(s);
}

X509 *
tg_ca_store_cert(struct tg_ca_store *s)
{
	return s->cert;
}

EVP_PKEY *
tg_ca_store_key(struct tg_ca_store *s)
{
	return s->key;
}

const struct tg_ca_policy *
tg_ca_store_policy(struct tg_ca_store *s)
{
	return &s->pol;
}

const char *
tg_ca_store_dir(const struct tg_ca_store *s)
{
	return s->dir;
}

int
tg_ca_store_roots_dir(const struct tg_ca_store *s, char *buf, size_t n)
{
	const char *r = s->pol.attestation_roots;
	int w;

	if (r[0] == '/')
		w = snprintf(buf, n, "%s", r);
	else
		w = snprintf(buf, n, "%s/%s", s->dir, r);
	return w < 0 || (size_t)w >= n ? TG_ERR_INVALID_ARG : 0;
}

static char *
time_iso(const ASN1_TIME *t, char *buf, size_t n)
{
	struct tm tm;

	buf[0] = '\0';
	if (ASN1_TIME_to_tm(t, &tm))
		strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int
tg_ca_store_record(struct tg_ca_store *s, X509 *leaf, const char *id, const struct tg_prov *prov,
                   struct tg_error *err)
{
	char hex[CA_SERIAL_HEX_MAX + 1], name[CA_SERIAL_HEX_MAX + 16];
	char path[CA_PATH_MAX], na[32], sha[65];
	json_t *j = NULL;
	char *text = NULL;
	int r;

	if (tg_ca_serial_hex(X509_get0_serialNumber(leaf), hex, sizeof(hex)) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "bad serial number");
		goto out;
	}
	snprintf(name, sizeof(name), "issued/%s.pem", hex);
	if ((r = path_join(path, sizeof(path), s->dir, name, err)) != 0)
		goto out;
	if (access(path, F_OK) == 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "serial %s already issued", hex);
		goto out;
	}
	if ((r = tg_ca_pem_write(path, leaf, NULL, NULL, err)) != 0)
		goto out;
	tg_hex_encode(prov->att_sha256, sizeof(prov->att_sha256), sha, sizeof(sha));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "serial", hex, "id", id, "level",
	              tg_prov_level_name(prov->level), "token_serial", prov->serial, "pin_policy",
	              tg_att_pin_name(prov->pin_policy), "touch_policy",
	              tg_att_touch_name(prov->touch_policy), "not_after",
	              time_iso(X509_get0_notAfter(leaf), na, sizeof(na)));
	if (j == NULL ||
	    (prov->has_att_sha256 &&
	     json_object_set_new(j, "attestation_sha256", json_string(sha)) != 0) ||
	    (prov->has_token_model &&
	     (json_object_set_new(j, "token_manufacturer", json_string(prov->token_manufacturer)) !=
	          0 ||
	      json_object_set_new(j, "token_model", json_string(prov->token_model)) != 0)) ||
	    (text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot build the issue record");
		goto out;
	}
	snprintf(name, sizeof(name), "issued/%s.json", hex);
	if ((r = path_join(path, sizeof(path), s->dir, name, err)) != 0 ||
	    (r = tg_ca_file_write(path, text, strlen(text), 0644, err)) != 0)
		goto out;
	r = 0;
out:
	free(text);
	json_decref(j);
	return r;
}

/* Reads revoked.txt; calls fn for each "HEX TIME" line. */
static int
revoked_each(struct tg_ca_store *s, int (*fn)(void *arg, const char *hex, long long when),
             void *arg, struct tg_error *err)
{
	char path[CA_PATH_MAX], hex[CA_SERIAL_HEX_MAX + 1], norm[CA_SERIAL_HEX_MAX + 1];
	uint8_t *data = NULL;
	size_t len = 0;
	char *line, *save = NULL;
	long long when;
	unsigned long lineno = 0;
	int r;

	if ((r = path_join(path, sizeof(path), s->dir, "revoked.txt", err)) != 0)
		goto out;
	if (access(path, F_OK) != 0) {
		r = 0;
		goto out;
	}
	if ((r = tg_ca_file_read(path, &data, &len, err)) != 0)
		goto out;
	for (line = strtok_r((char *)data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (sscanf(line, "%80s %lld", hex, &when) != 2 ||
		    tg_ca_serial_norm(hex, norm, sizeof(norm)) != 0) {
			r = tg_error_set(err, TG_ERR_CONFIG,
			                 "%s line %lu: expected "
			                 "'SERIALHEX UNIXTIME'",
			                 path, lineno);
			goto out;
		}
		if ((r = fn(arg, norm, when)) != 0)
			goto out;
	}
	r = 0;
out:
	free(data);
	return r;
}

static int
match_serial(void *arg, const char *hex, long long when)
{
	(void)when;
	return strcmp((const char *)arg, hex) == 0 ? TG_ERR_INVALID_ARG : 0;
}

int
tg_ca_store_revoke(struct tg_ca_store *s, const char *serial_hex, struct tg_error *err)
{
	char hex[CA_SERIAL_HEX_MAX + 1], name[CA_SERIAL_HEX_MAX + 16];
	char path[CA_PATH_MAX], line[CA_SERIAL_HEX_MAX + 32];
	FILE *f = NULL;
	int r;

	if (tg_ca_serial_norm(serial_hex, hex, sizeof(hex)) != 0) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "serial '%s' is not a "
		                 "hexadecimal number",
		                 serial_hex);
		goto out;
	}
	snprintf(name, sizeof(name), "issued/%s.pem", hex);
	if ((r = path_join(path, sizeof(path), s->dir, name, err)) != 0)
		goto out;
	if (access(path, F_OK) != 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "this CA issued no "
		                 "certificate with serial %s "
		                 "(see %s/issued/)",
		                 hex, s->dir);
		goto out;
	}
	r = revoked_each(s, match_serial, hex, err);
	if (r == TG_ERR_INVALID_ARG) {
		r = tg_error_set(err, r, "certificate %s is already revoked", hex);
		goto out;
	}
	if (r != 0)
		goto out;
	if ((r = path_join(path, sizeof(path), s->dir, "revoked.txt", err)) != 0)
		goto out;
	snprintf(line, sizeof(line), "%s %lld\n", hex, (long long)time(NULL));
	if ((f = fopen(path, "a")) == NULL || fputs(line, f) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot append to '%s': %s", path,
		                 strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	return r;
}

static int
crl_add(void *arg, const char *hex, long long when)
{
	X509_CRL *crl = arg;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *ai = NULL;
	ASN1_TIME *t = NULL;
	BIGNUM *bn = NULL;
	int r = TG_ERR_CRYPTO;

	if ((rev = X509_REVOKED_new()) == NULL || BN_hex2bn(&bn, hex) == 0 ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, ai) ||
	    (t = ASN1_TIME_set(NULL, (time_t)when)) == NULL ||
	    !X509_REVOKED_set_revocationDate(rev, t) || !X509_CRL_add0_revoked(crl, rev))
		goto out;
	rev = NULL;
	r = 0;
out:
	X509_REVOKED_free(rev);
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
	BN_free(bn);
	return r;
}

static int
crl_number_next(struct tg_ca_store *s, long *num, struct tg_error *err)
{
	char path[CA_PATH_MAX], buf[32];
	uint8_t *data = NULL;
	size_t len = 0;
	char *end;
	long n = 0;
	int r;

	if ((r = path_join(path, sizeof(path), s->dir, "crlnumber", err)) != 0)
		goto out;
	if (access(path, F_OK) == 0) {
		if ((r = tg_ca_file_read(path, &data, &len, err)) != 0)
			goto out;
		errno = 0;
		n = strtol((const char *)data, &end, 10);
		if (errno != 0 || n < 0 || (*end != '\0' && *end != '\n')) {
			r = tg_error_set(err, TG_ERR_CONFIG, "'%s' is not a number", path);
			goto out;
		}
	}
	n++;
	snprintf(buf, sizeof(buf), "%ld\n", n);
	if ((r = tg_ca_file_write(path, buf, strlen(buf), 0644, err)) != 0)
		goto out;
	*num = n;
	r = 0;
out:
	free(data);
	return r;
}

int
tg_ca_store_crl(struct tg_ca_store *s, X509_CRL **out, struct tg_error *err)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *now = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *ext = NULL;
	long n = 0;
	int r;

	if ((r = crl_number_next(s, &n, err)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if ((crl = X509_CRL_new()) == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->cert)) ||
	    (now = X509_gmtime_adj(NULL, 0)) == NULL ||
	    (next = X509_time_adj_ex(NULL, (int)CA_CRL_DAYS, 0, NULL)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, now) || !X509_CRL_set1_nextUpdate(crl, next))
		goto fail;
	if ((r = revoked_each(s, crl_add, crl, err)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	X509V3_set_ctx(&ctx, s->cert, NULL, NULL, crl, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ==
	        NULL ||
	    !X509_CRL_add_ext(crl, ext, -1) || (num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set(num, n) || !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    !X509_CRL_sort(crl) || X509_CRL_sign(crl, s->key, tg_ca_sign_md(s->key)) <= 0)
		goto fail;
	*out = crl;
	crl = NULL;
	r = 0;
	goto out;
fail:
	r = tg_error_set(err, r, "cannot build or sign the CRL");
out:
	ERR_clear_error();
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return r;
}
