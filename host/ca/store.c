/* store.c — the CA directory (tg_ca_store.h). */
#include "tg_ca_store.h"

#include <errno.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tg_p11.h"
#include "tg_ca_io.h"
#include "tg_ca_record.h"
#include "tg_file.h"
#include "tg_log.h"
#include "tg_hex.h"
#include "tg_secret.h"

#define CA_PATH_MAX       4096
#define CA_DEFAULT_DAYS   3650L
#define CA_CRL_DAYS       7L
#define CA_SERIAL_HEX_MAX TG_CA_SERIAL_HEX_MAX
#define CA_REVOKED_MAX    (1024 * 1024)
#define CA_KEY_MAX        (64 * 1024)

struct tg_ca_store {
	char dir[CA_PATH_MAX];
	int dirfd; /* the checked CA directory; its flock guards revoked.txt, crlnumber */
	X509 *cert;
	EVP_PKEY *key;
	struct tg_ca_policy pol;
	struct tg_p11 *p11;
	struct tg_p11_key *p11key;
};

static int
path_join(char *buf, size_t n, const char *dir, const char *name, struct tg_error *err)
{
	if (snprintf(buf, n, "%s/%s", dir, name) >= (int)n)
		return tg_error_set(err, TG_ERR_INVALID_ARG, "path '%s/%s' is too long", dir, name);
	return 0;
}

/* 1 when the directory open at fd holds nothing but "." and "..". */
static int
dir_is_empty(int fd)
{
	DIR *d = NULL;
	struct dirent *e;
	int dfd, empty = 0;

	if ((dfd = dup(fd)) < 0 || (d = fdopendir(dfd)) == NULL)
		goto out;
	dfd = -1; /* closedir closes it */
	empty = 1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	}
out:
	if (dfd >= 0)
		close(dfd);
	if (d != NULL)
		closedir(d);
	return empty;
}

/*
 * ca init's directory: created 0700, or an existing empty one of the user
 * made 0700 (nothing in it yet that its old mode could have exposed); then
 * checked like every CA directory (a link is refused, not followed).
 */
static int
init_dir(const char *dir, struct tg_error *err)
{
	struct stat st;
	int fd = -1, r;

	if (mkdir(dir, S_IRWXU) != 0 && errno != EEXIST) {
		r = tg_error_set(err, TG_ERR_IO, "cannot create directory '%s': %s", dir,
		                 strerror(errno));
		goto out;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
	    (st.st_mode & 07777) != S_IRWXU && dir_is_empty(fd) && fchmod(fd, S_IRWXU) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot make directory '%s' mode 0700: %s", dir,
		                 strerror(errno));
		goto out;
	}
	if (fd >= 0)
		close(fd);
	fd = -1;
	/* what could not be fixed above (link, owner, a non-empty directory's
	 * mode) is reported here with its fix */
	r = tg_file_open_checked(dir, "CA directory", TG_FILE_DIR, &fd, err);
out:
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * Checks one of the CA's files or directories (tg_file.h) without reading
 * it; *found (when not NULL) says whether it exists, and with found given a
 * missing path is no error.
 */
static int
path_check(const char *path, const char *what, unsigned flags, int *found, struct tg_error *err)
{
	int fd = -1, r;

	if (found != NULL)
		flags |= TG_FILE_MISSING_OK;
	r = tg_file_open_checked(path, what, flags, &fd, err);
	if (found != NULL)
		*found = fd >= 0;
	if (fd >= 0)
		close(fd);
	return r;
}

/* The attestation roots directory roots: absolute, or relative to the CA
 * directory dir. 0, or TG_ERR_INVALID_ARG when it does not fit in buf. */
static int
roots_path(const char *dir, const char *roots, char *buf, size_t n)
{
	int w;

	if (roots[0] == '/')
		w = snprintf(buf, n, "%s", roots);
	else
		w = snprintf(buf, n, "%s/%s", dir, roots);
	return w < 0 || (size_t)w >= n ? TG_ERR_INVALID_ARG : 0;
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
	if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3))
		goto fail;
	if ((r = tg_ca_serial_random(x, err)) != 0) {
		r = tg_error_wrap(err, r, "cannot build the CA certificate");
		goto out;
	}
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
		r = tg_error_wrap(err, r, "CA key '%s'", uri);
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

int
tg_ca_store_init(const struct tg_ca_init_opts *o, struct tg_error *err)
{
	char path[CA_PATH_MAX], rootsbuf[CA_PATH_MAX];
	struct tg_ca_policy pol;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct stat st;
	int r, found = 0;
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *p11key = NULL;

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
	if ((r = init_dir(o->dir, err)) != 0 ||
	    (r = path_join(path, sizeof(path), o->dir, "ca.pem", err)) != 0)
		goto out;
	if (stat(path, &st) == 0) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "'%s' already exists: this directory holds a CA; "
		                 "choose another --dir",
		                 path);
		goto out;
	}
	/* a roots directory given now is checked now, as every open will check it */
	if (o->roots_dir != NULL) {
		if (roots_path(o->dir, o->roots_dir, path, sizeof(path)) != 0) {
			r = tg_error_set(err, TG_ERR_INVALID_ARG, "roots path '%s' is too long",
			                 o->roots_dir);
			goto out;
		}
		if ((r = path_check(path, "attestation roots directory", TG_FILE_DIR, &found,
		                    err)) != 0)
			goto out;
	}
	if (o->key_uri != NULL) {
		if ((r = p11_key_get(o->key_uri, 1, &p11, &p11key, &key, err)) != 0)
			goto out;
		if ((r = path_join(path, sizeof(path), o->dir, "ca.key.uri", err)) != 0 ||
		    (r = tg_ca_file_write(path, o->key_uri, strlen(o->key_uri), 0600, err)) != 0)
			goto out;
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
	tg_p11_key_free(p11key);
	tg_p11_free(p11);
	tg_ca_policy_clear(&pol);
	return r;
}

static int
key_file_read(const char *path, EVP_PKEY **out, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int r;

	if ((r = tg_file_read_checked(path, "CA key", TG_FILE_SECRET, CA_KEY_MAX, &data, &len,
	                              err)) != 0)
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

/* Checks one of the CA's files or directories (tg_file.h) without reading it. */
/*
 * The checks of the CA's own files before any is used: the directory (kept
 * open in s->dirfd), ca.pem, policy.yaml (read and parsed into s->pol) and
 * the attestation roots directory the policy names. A roots directory that
 * does not exist is left to the commands that need it to report.
 */
static int
store_files_check(struct tg_ca_store *s, struct tg_error *err)
{
	char path[CA_PATH_MAX];
	uint8_t *text = NULL;
	size_t len = 0;
	int r, found = 0;

	if ((r = tg_file_open_checked(s->dir, "CA directory", TG_FILE_DIR | TG_FILE_MISSING_OK,
	                              &s->dirfd, err)) != 0 ||
	    (s->dirfd >= 0 && ((r = path_join(path, sizeof(path), s->dir, "ca.pem", err)) != 0 ||
	                       (r = path_check(path, "CA certificate", 0, &found, err)) != 0)))
		goto out;
	if (!found) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "'%s' is not a CA directory (create one with tokengate ca init)",
		                 s->dir);
		goto out;
	}
	if ((r = path_join(path, sizeof(path), s->dir, "policy.yaml", err)) != 0 ||
	    (r = tg_file_read_checked(path, "CA policy", 0, TG_CA_IO_MAX, &text, &len, err)) != 0 ||
	    (r = tg_ca_policy_parse((const char *)text, len, path, &s->pol, err)) != 0)
		goto out;
	if (tg_ca_store_roots_dir(s, path, sizeof(path)) != 0) {
		r = tg_error_set(err, TG_ERR_CONFIG, "attestation roots path '%s' is too long",
		                 s->pol.attestation_roots);
		goto out;
	}
	r = path_check(path, "attestation roots directory", TG_FILE_DIR, &found, err);
out:
	free(text);
	return r;
}

/*
 * The CA key: ca.key.uri (a pkcs11: URI) when present, else ca.key. Both
 * are checked whether or not need_key asks for the key to be loaded.
 */
static int
store_key_open(struct tg_ca_store *s, int need_key, struct tg_error *err)
{
	char path[CA_PATH_MAX];
	uint8_t *uri = NULL;
	size_t urilen = 0;
	int r;

	if ((r = path_join(path, sizeof(path), s->dir, "ca.key.uri", err)) != 0 ||
	    (r = tg_file_read_checked(path, "CA key URI file", TG_FILE_MISSING_OK, TG_CA_IO_MAX,
	                              &uri, &urilen, err)) != 0)
		goto out;
	if (uri != NULL) {
		if (!need_key)
			goto out;
		r = p11_key_get((const char *)uri, 0, &s->p11, &s->p11key, &s->key, err);
		goto out;
	}
	if ((r = path_join(path, sizeof(path), s->dir, "ca.key", err)) != 0)
		goto out;
	if (need_key)
		r = key_file_read(path, &s->key, err);
	else
		r = path_check(path, "CA key", TG_FILE_SECRET, NULL, err);
out:
	free(uri);
	return r;
}

int
tg_ca_store_open(const char *dir, int need_key, struct tg_ca_store **out, struct tg_error *err)
{
	struct tg_ca_store *s = NULL;
	char path[CA_PATH_MAX];
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	s->dirfd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if ((r = store_files_check(s, err)) != 0 ||
	    (r = path_join(path, sizeof(path), dir, "ca.pem", err)) != 0)
		goto out;
	if ((r = tg_ca_cert_read(path, &s->cert, err)) != 0) {
		r = tg_error_wrap(err, TG_ERR_CONFIG,
		                  "'%s' is not a CA directory "
		                  "(create one with tokengate ca init)",
		                  dir);
		goto out;
	}
	if ((r = store_key_open(s, need_key, err)) != 0)
		goto out;
	if (need_key && X509_check_private_key(s->cert, s->key) != 1) {
		ERR_clear_error();
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "the CA key does not match "
		                 "'%s/ca.pem'",
		                 dir);
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	tg_ca_store_free(s);
	return r;
}

void
tg_ca_store_free(struct tg_ca_store *s)
{
	if (s == NULL)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	EVP_PKEY_free(s->key);
	tg_p11_key_free(s->p11key);
	tg_p11_free(s->p11);
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

int
tg_ca_store_roots_dir(const struct tg_ca_store *s, char *buf, size_t n)
{
	return roots_path(s->dir, s->pol.attestation_roots, buf, n);
}

int
tg_ca_store_record(struct tg_ca_store *s, X509 *leaf, char *pem_path, size_t pem_n,
                   struct tg_error *err)
{
	char hex[CA_SERIAL_HEX_MAX + 1], name[CA_SERIAL_HEX_MAX + 16];
	char path[CA_PATH_MAX];
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
	if ((r = tg_ca_cert_json(leaf, &j, err)) != 0)
		goto out;
	if ((text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot build the issue record");
		goto out;
	}
	if ((r = tg_ca_pem_write(path, leaf, NULL, NULL, err)) != 0)
		goto out;
	if (pem_path != NULL)
		snprintf(pem_path, pem_n, "%s", path);
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

static const struct {
	enum tg_ca_reason code;
	const char *name;
} reasons[] = {
    {TG_CA_REASON_UNSPECIFIED, "unspecified"},
    {TG_CA_REASON_KEY_COMPROMISE, "keyCompromise"},
    {TG_CA_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {TG_CA_REASON_SUPERSEDED, "superseded"},
    {TG_CA_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {TG_CA_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
};

int
tg_ca_reason_parse(const char *name, size_t n, enum tg_ca_reason *out)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strlen(reasons[i].name) == n && strncasecmp(name, reasons[i].name, n) == 0) {
			*out = reasons[i].code;
			return 0;
		}
	}
	return TG_ERR_INVALID_ARG;
}

const char *
tg_ca_reason_name(enum tg_ca_reason r)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (reasons[i].code == r)
			return reasons[i].name;
	}
	return "unspecified";
}

/* Sorts entries by serial, so a serial listed twice sits next to itself. */
static int
revoked_cmp(const void *a, const void *b)
{
	const struct tg_ca_revoked *x = a, *y = b;
	int c = strcmp(x->serial, y->serial);

	if (c == 0)
		c = x->line < y->line ? -1 : (x->line > y->line ? 1 : 0);
	return c;
}

/*
 * One revoked.txt line (p, n bytes, no newline) into e; NULL on success,
 * else what is wrong with it.
 */
static const char *
revoked_line(const char *p, size_t n, struct tg_ca_revoked *e)
{
	char hex[CA_SERIAL_HEX_MAX + 1];
	size_t i = 0, h;
	long long when = 0;
	const char *bad = NULL;

	while (i < n && i < CA_SERIAL_HEX_MAX && isxdigit((unsigned char)p[i]))
		i++;
	h = i;
	if (h == 0 || (i < n && isxdigit((unsigned char)p[i]))) {
		bad = h == 0 ? "no serial number (hex digits) at the start"
		             : "serial number longer than 80 hex digits";
		goto out;
	}
	if (i >= n || p[i] != ' ' || i + 1 >= n) {
		bad = "the serial number must be followed by one space and the time";
		goto out;
	}
	for (i++; i < n && p[i] != ' '; i++) {
		if (!isdigit((unsigned char)p[i])) {
			bad = "the revocation time must be decimal Unix seconds";
			goto out;
		}
		if (when > TG_CA_REVOKED_WHEN_MAX) /* stop before it could overflow */
			break;
		when = when * 10 + (p[i] - '0');
	}
	if (when > TG_CA_REVOKED_WHEN_MAX) {
		bad = "the revocation time is after the year 9999";
		goto out;
	}
	if (i < n && p[i - 1] == ' ') {
		bad = "the revocation time must be decimal Unix seconds";
		goto out;
	}
	e->reason = TG_CA_REASON_UNSPECIFIED; /* lines written before reasons were recorded */
	if (i < n && tg_ca_reason_parse(p + i + 1, n - i - 1, &e->reason) != 0) {
		bad = "the reason after the time must be one of " TG_CA_REASON_NAMES;
		goto out;
	}
	memcpy(hex, p, h);
	hex[h] = '\0';
	if (tg_ca_serial_norm(hex, e->serial, sizeof(e->serial)) != 0) {
		bad = "the serial number is not a hexadecimal number";
		goto out;
	}
	e->when = when;
out:
	return bad;
}

int
tg_ca_revoked_parse(const char *text, size_t n, const char *name, struct tg_ca_revoked **list,
                    size_t *count, struct tg_error *err)
{
	struct tg_ca_revoked *v = NULL, *sorted = NULL, *nv;
	size_t nv_cap = 0, cnt = 0, off = 0, len, i;
	const char *nl, *bad;
	unsigned long line = 0;
	int r = TG_ERR_FORMAT;

	while (off < n) {
		line++;
		nl = memchr(text + off, '\n', n - off);
		len = nl != NULL ? (size_t)(nl - (text + off)) : n - off;
		if (cnt == nv_cap) {
			nv_cap = nv_cap == 0 ? 16 : nv_cap * 2;
			if ((nv = realloc(v, nv_cap * sizeof(*v))) == NULL) {
				r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading %s",
				                 name);
				goto out;
			}
			v = nv;
		}
		if ((bad = revoked_line(text + off, len, &v[cnt])) != NULL) {
			r = tg_error_set(
			    err, TG_ERR_FORMAT,
			    "%s line %lu: %s; each line must be 'SERIALHEX UNIXTIME [REASON]'",
			    name, line, bad);
			goto out;
		}
		v[cnt++].line = line;
		off += len + (nl != NULL ? 1 : 0);
	}
	if (cnt > 0) {
		if ((sorted = malloc(cnt * sizeof(*v))) == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading %s", name);
			goto out;
		}
		memcpy(sorted, v, cnt * sizeof(*v));
		qsort(sorted, cnt, sizeof(*sorted), revoked_cmp);
		for (i = 1; i < cnt; i++) {
			if (strcmp(sorted[i - 1].serial, sorted[i].serial) == 0) {
				r = tg_error_set(err, TG_ERR_FORMAT,
				                 "%s line %lu: serial %s is already listed on "
				                 "line %lu; remove one of them",
				                 name, sorted[i].line, sorted[i].serial,
				                 sorted[i - 1].line);
				goto out;
			}
		}
	}
	*list = v;
	*count = cnt;
	v = NULL;
	r = 0;
out:
	free(sorted);
	free(v);
	return r;
}

/*
 * Takes (lock != 0) or releases the exclusive lock on the CA directory that
 * guards revoked.txt and crlnumber; waits for another tokengate holding it.
 */
static int
store_lock(struct tg_ca_store *s, int lock, struct tg_error *err)
{
	int r = 0;

	while (flock(s->dirfd, lock ? LOCK_EX : LOCK_UN) != 0) {
		if (errno == EINTR)
			continue;
		r = tg_error_set(err, TG_ERR_IO, "cannot %s the CA directory '%s': %s",
		                 lock ? "lock" : "unlock", s->dir, strerror(errno));
		break;
	}
	return r;
}

/*
 * Reads one of the CA's state files (revoked.txt, crlnumber) in the CA
 * directory, checked like the others; a missing file is empty.
 */
static int
state_read(struct tg_ca_store *s, const char *name, const char *what, char *path, uint8_t **data,
           size_t *len, struct tg_error *err)
{
	int r;

	*data = NULL;
	*len = 0;
	if ((r = path_join(path, CA_PATH_MAX, s->dir, name, err)) != 0)
		goto out;
	r = tg_file_read_checked(path, what, TG_FILE_MISSING_OK, CA_REVOKED_MAX, data, len, err);
out:
	return r;
}

/* The revoked list; the caller holds the lock. */
static int
revoked_load(struct tg_ca_store *s, struct tg_ca_revoked **list, size_t *count, uint8_t **text,
             size_t *len, struct tg_error *err)
{
	char path[CA_PATH_MAX];
	int r;

	*list = NULL;
	*count = 0;
	if ((r = state_read(s, "revoked.txt", "revocation list", path, text, len, err)) != 0 ||
	    (r = tg_ca_revoked_parse((const char *)*text, *len, path, list, count, err)) != 0)
		goto out;
out:
	return r;
}

size_t
tg_ca_revoked_format(const struct tg_ca_revoked *e, char *buf, size_t n)
{
	int w;

	if (e->reason == TG_CA_REASON_UNSPECIFIED)
		w = snprintf(buf, n, "%s %lld\n", e->serial, e->when);
	else
		w = snprintf(buf, n, "%s %lld %s\n", e->serial, e->when,
		             tg_ca_reason_name(e->reason));
	return w < 0 || (size_t)w >= n ? 0 : (size_t)w;
}

int
tg_ca_store_revoke(struct tg_ca_store *s, const char *serial_hex, enum tg_ca_reason reason,
                   struct tg_error *err)
{
	char name[CA_SERIAL_HEX_MAX + 16];
	char path[CA_PATH_MAX], line[CA_SERIAL_HEX_MAX + 64];
	struct tg_ca_revoked *list = NULL, e;
	uint8_t *text = NULL;
	char *next = NULL;
	size_t count = 0, len = 0, i, ll;
	int r, locked = 0;

	memset(&e, 0, sizeof(e));
	if (tg_ca_serial_norm(serial_hex, e.serial, sizeof(e.serial)) != 0) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "serial '%s' is not a hexadecimal number (give it as 'ca show' "
		                 "and 'ca list' print it)",
		                 serial_hex);
		goto out;
	}
	snprintf(name, sizeof(name), "issued/%s.pem", e.serial);
	if ((r = path_join(path, sizeof(path), s->dir, name, err)) != 0)
		goto out;
	if (access(path, F_OK) != 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "this CA issued no certificate with serial %s (see 'tokengate ca "
		                 "list --dir %s')",
		                 e.serial, s->dir);
		goto out;
	}
	/* read, check and rewrite under the lock, so no concurrent revocation is lost */
	if ((r = store_lock(s, 1, err)) != 0)
		goto out;
	locked = 1;
	if ((r = revoked_load(s, &list, &count, &text, &len, err)) != 0)
		goto out;
	for (i = 0; i < count; i++) {
		if (strcmp(list[i].serial, e.serial) == 0) {
			r = tg_error_set(err, TG_ERR_INVALID_ARG,
			                 "certificate %s is already revoked", e.serial);
			goto out;
		}
	}
	e.when = (long long)time(NULL);
	e.reason = reason;
	ll = tg_ca_revoked_format(&e, line, sizeof(line));
	if ((next = malloc(len + 1 + ll)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (len > 0)
		memcpy(next, text, len);
	if (len > 0 && text[len - 1] != '\n')
		next[len++] = '\n';
	memcpy(next + len, line, ll);
	if ((r = path_join(path, sizeof(path), s->dir, "revoked.txt", err)) != 0 ||
	    (r = tg_file_write(path, next, len + ll, 0644, 0, err)) != 0)
		goto out;
	r = 0;
out:
	if (locked)
		(void)store_lock(s, 0, NULL);
	free(next);
	free(text);
	free(list);
	return r;
}

int
tg_ca_store_cert_check(struct tg_ca_store *s, X509 *x, struct tg_error *err)
{
	char theirs[512], ours[512];
	EVP_PKEY *pub = X509_get0_pubkey(s->cert);
	int r = TG_ERR_NOT_FOUND;

	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(s->cert)) != 0) {
		tg_error_set(err, r,
		             "the certificate was not issued by this CA: its issuer is '%s', this "
		             "CA is '%s'; revoke it with the CA that issued it",
		             tg_ca_name_str(X509_get_issuer_name(x), theirs, sizeof(theirs)),
		             tg_ca_name_str(X509_get_subject_name(s->cert), ours, sizeof(ours)));
		goto out;
	}
	if (pub == NULL || X509_verify(x, pub) != 1) {
		tg_error_set(err, r,
		             "the certificate names this CA ('%s') as its issuer but its "
		             "signature does not verify with this CA's key: it was not issued "
		             "here",
		             tg_ca_name_str(X509_get_issuer_name(x), theirs, sizeof(theirs)));
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	return r;
}

const char *
tg_ca_status_name(enum tg_ca_status st)
{
	switch (st) {
	case TG_CA_STATUS_REVOKED:
		return "revoked";
	case TG_CA_STATUS_EXPIRED:
		return "expired";
	case TG_CA_STATUS_VALID:
	default:
		return "valid";
	}
}

int
tg_ca_status_parse(const char *name, enum tg_ca_status *out)
{
	static const enum tg_ca_status all[] = {TG_CA_STATUS_VALID, TG_CA_STATUS_REVOKED,
	                                        TG_CA_STATUS_EXPIRED};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(name, tg_ca_status_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return TG_ERR_INVALID_ARG;
}

void
tg_ca_issued_free(struct tg_ca_issued *list, size_t count)
{
	size_t i;

	for (i = 0; list != NULL && i < count; i++)
		X509_free(list[i].cert);
	free(list);
}

/* Oldest first (notBefore), then by serial. */
static int
issued_cmp(const void *a, const void *b)
{
	const struct tg_ca_issued *x = a, *y = b;
	int c = ASN1_TIME_compare(X509_get0_notBefore(x->cert), X509_get0_notBefore(y->cert));

	return c != 0 ? c : strcmp(x->serial, y->serial);
}

/* The status of e at now, from the revoked list. */
static void
issued_status(struct tg_ca_issued *e, const struct tg_ca_revoked *rev, size_t nrev, time_t now)
{
	size_t i;

	e->status = TG_CA_STATUS_VALID;
	for (i = 0; i < nrev; i++) {
		if (strcmp(rev[i].serial, e->serial) == 0) {
			e->status = TG_CA_STATUS_REVOKED;
			e->revoked_at = rev[i].when;
			e->reason = rev[i].reason;
			return;
		}
	}
	if (X509_cmp_time(X509_get0_notAfter(e->cert), &now) < 0)
		e->status = TG_CA_STATUS_EXPIRED;
}

/* Appends the certificate at issued/NAME to *v (growing it). */
static int
issued_add(struct tg_ca_store *s, const char *name, struct tg_ca_issued **v, size_t *count,
           size_t *cap, struct tg_error *err)
{
	char rel[300], path[CA_PATH_MAX];
	struct tg_ca_issued *nv, *e;
	int r;

	if (*count == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		if ((nv = realloc(*v, *cap * sizeof(**v))) == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
		*v = nv;
	}
	e = &(*v)[*count];
	memset(e, 0, sizeof(*e));
	snprintf(rel, sizeof(rel), "issued/%s", name);
	if ((r = path_join(path, sizeof(path), s->dir, rel, err)) != 0 ||
	    (r = tg_ca_cert_read(path, &e->cert, err)) != 0)
		goto out;
	if (tg_ca_serial_hex(X509_get0_serialNumber(e->cert), e->serial, sizeof(e->serial)) != 0) {
		X509_free(e->cert);
		r = tg_error_set(err, TG_ERR_FORMAT, "'%s': unreadable serial number", path);
		goto out;
	}
	(*count)++;
	r = 0;
out:
	return r;
}

int
tg_ca_store_list(struct tg_ca_store *s, time_t now, struct tg_ca_issued **list, size_t *count,
                 struct tg_error *err)
{
	char path[CA_PATH_MAX];
	struct tg_ca_issued *v = NULL;
	struct tg_ca_revoked *rev = NULL;
	struct dirent *d;
	uint8_t *text = NULL;
	size_t n = 0, cap = 0, nrev = 0, len = 0, i, nl;
	DIR *dir = NULL;
	int r, locked = 0;

	if ((r = path_join(path, sizeof(path), s->dir, "issued", err)) != 0)
		goto out;
	if ((dir = opendir(path)) == NULL) {
		r = tg_error_set(err, TG_ERR_IO, "cannot read directory '%s': %s", path,
		                 strerror(errno));
		goto out;
	}
	while ((d = readdir(dir)) != NULL) {
		nl = strlen(d->d_name);
		if (nl < 5 || strcmp(d->d_name + nl - 4, ".pem") != 0)
			continue;
		if ((r = issued_add(s, d->d_name, &v, &n, &cap, err)) != 0)
			goto out;
	}
	if ((r = store_lock(s, 1, err)) != 0)
		goto out;
	locked = 1;
	if ((r = revoked_load(s, &rev, &nrev, &text, &len, err)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		issued_status(&v[i], rev, nrev, now);
	if (n > 1)
		qsort(v, n, sizeof(*v), issued_cmp);
	*list = v;
	*count = n;
	v = NULL;
	n = 0;
	r = 0;
out:
	if (locked)
		(void)store_lock(s, 0, NULL);
	if (dir != NULL)
		closedir(dir);
	tg_ca_issued_free(v, n);
	free(rev);
	free(text);
	return r;
}

static int
crl_add(X509_CRL *crl, const struct tg_ca_revoked *e)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *ai = NULL;
	ASN1_TIME *t = NULL;
	ASN1_ENUMERATED *reason = NULL;
	BIGNUM *bn = NULL;
	int r = TG_ERR_CRYPTO;

	/* RFC 5280 5.3.1: for unspecified the reasonCode extension SHOULD be absent */
	if (e->reason != TG_CA_REASON_UNSPECIFIED &&
	    ((reason = ASN1_ENUMERATED_new()) == NULL ||
	     !ASN1_ENUMERATED_set(reason, (long)e->reason)))
		goto out;
	if ((rev = X509_REVOKED_new()) == NULL || BN_hex2bn(&bn, e->serial) == 0 ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, ai) ||
	    (t = ASN1_TIME_set(NULL, (time_t)e->when)) == NULL ||
	    !X509_REVOKED_set_revocationDate(rev, t) ||
	    (reason != NULL && !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0)) ||
	    !X509_CRL_add0_revoked(crl, rev))
		goto out;
	rev = NULL;
	r = 0;
out:
	X509_REVOKED_free(rev);
	ASN1_ENUMERATED_free(reason);
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
	BN_free(bn);
	return r;
}

/* The next CRL number: one more than crlnumber holds. The caller holds the lock. */
static int
crl_number_next(struct tg_ca_store *s, long *num, struct tg_error *err)
{
	char path[CA_PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	char *end;
	long n = 0;
	int r;

	if ((r = state_read(s, "crlnumber", "CRL number file", path, &data, &len, err)) != 0)
		goto out;
	if (data != NULL) {
		errno = 0;
		n = strtol((const char *)data, &end, 10);
		if (errno != 0 || n < 0 || n == LONG_MAX || end == (char *)data ||
		    (*end != '\0' && *end != '\n') || (size_t)(end - (char *)data) + 1 < len) {
			r = tg_error_set(err, TG_ERR_CONFIG, "'%s' is not a number", path);
			goto out;
		}
	}
	*num = n + 1;
	r = 0;
out:
	free(data);
	return r;
}

/* Records n as the last CRL number used. The caller holds the lock. */
static int
crl_number_save(struct tg_ca_store *s, long n, struct tg_error *err)
{
	char path[CA_PATH_MAX], buf[32];
	int r;

	snprintf(buf, sizeof(buf), "%ld\n", n);
	if ((r = path_join(path, sizeof(path), s->dir, "crlnumber", err)) != 0)
		goto out;
	r = tg_file_write(path, buf, strlen(buf), 0644, 0, err);
out:
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
	struct tg_ca_revoked *list = NULL;
	uint8_t *text = NULL;
	size_t count = 0, len = 0, i;
	long n = 0;
	int r, locked = 0;

	/* number and list taken together under the lock: each CRL gets its own
	 * number, and a later number never lists fewer revocations; the number
	 * is recorded only once the CRL is signed, so a failure uses none */
	if ((r = store_lock(s, 1, err)) != 0)
		goto out;
	locked = 1;
	if ((r = crl_number_next(s, &n, err)) != 0 ||
	    (r = revoked_load(s, &list, &count, &text, &len, err)) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if ((crl = X509_CRL_new()) == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->cert)) ||
	    (now = X509_gmtime_adj(NULL, 0)) == NULL ||
	    (next = X509_time_adj_ex(NULL, (int)CA_CRL_DAYS, 0, NULL)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, now) || !X509_CRL_set1_nextUpdate(crl, next))
		goto fail;
	for (i = 0; i < count; i++)
		if (crl_add(crl, &list[i]) != 0)
			goto fail;
	X509V3_set_ctx(&ctx, s->cert, NULL, NULL, crl, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ==
	        NULL ||
	    !X509_CRL_add_ext(crl, ext, -1) || (num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set(num, n) || !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    !X509_CRL_sort(crl) || X509_CRL_sign(crl, s->key, tg_ca_sign_md(s->key)) <= 0)
		goto fail;
	if ((r = crl_number_save(s, n, err)) != 0)
		goto out;
	*out = crl;
	crl = NULL;
	r = 0;
	goto out;
fail:
	r = tg_error_set(err, r, "cannot build or sign the CRL");
out:
	if (locked)
		(void)store_lock(s, 0, NULL);
	free(list);
	free(text);
	ERR_clear_error();
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return r;
}
