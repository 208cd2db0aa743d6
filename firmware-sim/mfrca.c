/* mfrca.c — creation and loading of the simulator's manufacturer CA. */
#include "mfrca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg_file.h"
#include "tg_hex.h"
#include "tg_secret.h"

#define MFRCA_DAYS         (20 * 365)
#define MFRCA_SERIAL_BYTES 16

/* The newest OpenSSL error as text, for messages. */
static const char *
ossl_why(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, n, "no OpenSSL detail");
	else
		ERR_error_string_n(e, buf, n);
	ERR_clear_error();
	return buf;
}

static int
add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = NULL;
	int r = TG_ERR_CRYPTO;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		goto out;
	if (X509_add_ext(cert, ext, -1) != 1)
		goto out;
	r = 0;
out:
	X509_EXTENSION_free(ext);
	return r;
}

/* A self-signed CA certificate for key. */
static int
make_cert(EVP_PKEY *key, X509 **out)
{
	X509 *cert = NULL;
	X509_NAME *name = NULL;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	X509V3_CTX ctx;
	uint8_t sn[MFRCA_SERIAL_BYTES], tag[4];
	char cn[96], taghex[2 * sizeof(tag) + 1];
	int r = TG_ERR_CRYPTO;

	if (RAND_bytes(sn, sizeof(sn)) != 1 || RAND_bytes(tag, sizeof(tag)) != 1)
		goto out;
	sn[0] &= 0x7F; /* positive */
	sn[0] |= 0x40; /* and of full length */
	(void)tg_hex_encode(tag, sizeof(tag), taghex, sizeof(taghex));
	snprintf(cn, sizeof(cn), "tokengate-sim Manufacturer CA %s", taghex);
	if ((cert = X509_new()) == NULL || (name = X509_NAME_new()) == NULL)
		goto out;
	if ((bn = BN_bin2bn(sn, sizeof(sn), NULL)) == NULL ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	if (X509_set_version(cert, X509_VERSION_3) != 1 || X509_set_serialNumber(cert, serial) != 1)
		goto out;
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	                               (const unsigned char *)"tokengate-sim", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1)
		goto out;
	if (X509_set_subject_name(cert, name) != 1 || X509_set_issuer_name(cert, name) != 1)
		goto out;
	/* An hour of slack for clocks that lag. */
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), MFRCA_DAYS, 0, NULL) == NULL)
		goto out;
	if (X509_set_pubkey(cert, key) != 1)
		goto out;
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	if (add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
	    add_ext(cert, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always") != 0)
		goto out;
	if (X509_sign(cert, key, EVP_sha256()) <= 0)
		goto out;
	*out = cert;
	cert = NULL;
	r = 0;
out:
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_NAME_free(name);
	X509_free(cert);
	return r;
}

/*
 * Writes what pem_write puts in a secure-heap memory BIO to path, which
 * must not exist yet (the shared atomic writer, TG_FILE_NO_REPLACE).
 */
static int
write_new(const char *path, unsigned mode, X509 *cert, EVP_PKEY *key, struct tg_error *err)
{
	BIO *b = NULL;
	char *data = NULL, why[256];
	long len;
	int r = TG_ERR_CRYPTO;

	/* a secure-heap BIO, wiped when freed: it holds the private key */
	if ((b = BIO_new(BIO_s_secmem())) == NULL ||
	    (key != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) ||
	    (cert != NULL && PEM_write_bio_X509(b, cert) != 1) ||
	    (len = BIO_get_mem_data(b, &data)) <= 0) {
		r = tg_error_set(err, r, "cannot encode the manufacturer CA for %s: %s", path,
		                 ossl_why(why, sizeof(why)));
		goto out;
	}
	r = tg_file_write(path, data, (size_t)len, mode, TG_FILE_NO_REPLACE, err);
	if (r == TG_ERR_INVALID_ARG) {
		/* this message replaces the writer's */
		r = tg_error_set(err, TG_ERR_IO,
		                 "%s already exists; remove it or pass "
		                 "--manufacturer-cert/--manufacturer-key to use an "
		                 "existing manufacturer CA",
		                 path);
	}
out:
	BIO_free(b);
	return r;
}

int
tg_sim_mfrca_create(const char *cert_path, const char *key_path, struct tg_error *err)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char why[256];
	int key_made = 0, r = TG_ERR_CRYPTO;

	if ((key = EVP_EC_gen("P-256")) == NULL || make_cert(key, &cert) != 0) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "cannot create the manufacturer CA: %s",
		                 ossl_why(why, sizeof(why)));
		goto out;
	}
	if ((r = write_new(key_path, 0600, NULL, key, err)) != 0)
		goto out;
	key_made = 1;
	if ((r = write_new(cert_path, 0644, cert, NULL, err)) != 0)
		goto out;
	r = 0;
out:
	if (r != 0 && key_made)
		(void)unlink(key_path);
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

/* Reads a PEM or DER certificate. */
static int
load_cert(const char *path, X509 **out, struct tg_error *err)
{
	BIO *b = NULL;
	X509 *c = NULL;
	char why[256];
	int r = TG_ERR_IO;

	if ((b = BIO_new_file(path, "rb")) == NULL) {
		r = tg_error_set(err, TG_ERR_IO, "cannot open manufacturer certificate %s: %s",
		                 path, strerror(errno));
		goto out;
	}
	c = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (c == NULL) {
		ERR_clear_error();
		(void)BIO_reset(b);
		c = d2i_X509_bio(b, NULL);
	}
	if (c == NULL) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "%s is not a certificate in PEM or DER (%s); pass the "
		                 "manufacturer CA certificate to --manufacturer-cert",
		                 path, ossl_why(why, sizeof(why)));
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	X509_free(c);
	BIO_free(b);
	return r;
}

/* Reads a PEM or DER private key (unencrypted). */
static int
load_key(const char *path, EVP_PKEY **out, struct tg_error *err)
{
	BIO *b = NULL;
	EVP_PKEY *k = NULL;
	struct stat st;
	char why[256];
	int r = TG_ERR_IO;

	if ((b = BIO_new_file(path, "rb")) == NULL) {
		r = tg_error_set(err, TG_ERR_IO, "cannot open manufacturer key %s: %s", path,
		                 strerror(errno));
		goto out;
	}
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		fprintf(stderr,
		        "tokengate-sim: warning: manufacturer key %s is readable by others; run "
		        "'chmod 600 %s'\n",
		        path, path);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (k == NULL) {
		ERR_clear_error();
		(void)BIO_reset(b);
		k = d2i_PrivateKey_bio(b, NULL);
	}
	if (k == NULL) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "%s is not an unencrypted private key in PEM or DER (%s); pass "
		                 "the manufacturer CA key to --manufacturer-key",
		                 path, ossl_why(why, sizeof(why)));
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	EVP_PKEY_free(k);
	BIO_free(b);
	return r;
}

int
tg_sim_mfrca_load(const char *cert_path, const char *key_path, uint8_t **cert_der, size_t *cert_len,
                  uint8_t **key_der, size_t *key_len, struct tg_error *err)
{
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *cd = NULL, *kd = NULL;
	int cl = 0, kl = 0, r;
	char why[256];

	if ((r = load_cert(cert_path, &cert, err)) != 0)
		goto out;
	if ((r = load_key(key_path, &key, err)) != 0)
		goto out;
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "manufacturer key %s does not belong to certificate %s; pass "
		                 "the matching pair",
		                 key_path, cert_path);
		goto out;
	}
	if (X509_check_ca(cert) == 0)
		fprintf(stderr,
		        "tokengate-sim: warning: %s is not marked as a CA certificate; "
		        "verifiers may refuse attestation chains through it\n",
		        cert_path);
	if ((cl = i2d_X509(cert, &cd)) <= 0 || (p8 = EVP_PKEY2PKCS8(key)) == NULL ||
	    (kl = i2d_PKCS8_PRIV_KEY_INFO(p8, &kd)) <= 0) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "cannot encode the manufacturer CA: %s",
		                 ossl_why(why, sizeof(why)));
		goto out;
	}
	/* Copies in malloc memory, so callers release them with tg_freezero. */
	if ((*cert_der = malloc((size_t)cl)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory loading %s", cert_path);
		goto out;
	}
	if ((*key_der = malloc((size_t)kl)) == NULL) {
		free(*cert_der);
		*cert_der = NULL;
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory loading %s", key_path);
		goto out;
	}
	memcpy(*cert_der, cd, (size_t)cl);
	memcpy(*key_der, kd, (size_t)kl);
	*cert_len = (size_t)cl;
	*key_len = (size_t)kl;
	r = 0;
out:
	OPENSSL_free(cd);
	if (kd != NULL)
		OPENSSL_clear_free(kd, (size_t)kl);
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}
