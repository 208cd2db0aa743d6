/* io.c — reading and writing certificates, CSRs and keys (tg_ca_io.h). */
#include "tg_ca_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "tg_file.h"

int
tg_ca_file_read(const char *path, uint8_t **data, size_t *len, struct tg_error *err)
{
	FILE *f = NULL;
	uint8_t *buf = NULL;
	size_t n = 0, got;
	int r = TG_ERR_IO;

	if ((f = fopen(path, "rb")) == NULL) {
		r = tg_error_set(err, TG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	if ((buf = malloc(TG_CA_IO_MAX + 1)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading '%s'", path);
		goto out;
	}
	while ((got = fread(buf + n, 1, TG_CA_IO_MAX + 1 - n, f)) > 0) {
		n += got;
		if (n > TG_CA_IO_MAX)
			break;
	}
	if (ferror(f)) {
		r = tg_error_set(err, TG_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (n > TG_CA_IO_MAX) {
		r = tg_error_set(err, TG_ERR_IO, "'%s' is larger than %d bytes", path,
		                 TG_CA_IO_MAX);
		goto out;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	buf = NULL;
	r = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return r;
}

int
tg_ca_file_write(const char *path, const void *p, size_t n, unsigned mode, struct tg_error *err)
{
	return tg_file_write(path, p, n, mode, 0, err);
}

int
tg_ca_pem_write(const char *path, X509 *x, X509_REQ *req, X509_CRL *crl, struct tg_error *err)
{
	BIO *bio = NULL;
	char *data = NULL;
	long n;
	int r = TG_ERR_CRYPTO;

	if ((bio = BIO_new(BIO_s_mem())) == NULL || (x != NULL && !PEM_write_bio_X509(bio, x)) ||
	    (req != NULL && !PEM_write_bio_X509_REQ(bio, req)) ||
	    (crl != NULL && !PEM_write_bio_X509_CRL(bio, crl))) {
		tg_error_set(err, r, "cannot encode PEM for %s", path);
		goto out;
	}
	n = BIO_get_mem_data(bio, &data);
	r = tg_ca_file_write(path, data, (size_t)n, 0644, err);
out:
	BIO_free(bio);
	return r;
}

/*
 * Reads the file at path into *data (*len bytes) and, when the text is PEM,
 * opens a memory BIO over it in *bio; *bio stays NULL for DER. The caller
 * frees both.
 */
static int
file_read_pem(const char *path, uint8_t **data, size_t *len, BIO **bio, struct tg_error *err)
{
	int r;

	*bio = NULL;
	if ((r = tg_ca_file_read(path, data, len, err)) != 0)
		goto out;
	if (memmem(*data, *len, "-----BEGIN", 10) != NULL &&
	    (*bio = BIO_new_mem_buf(*data, (int)*len)) == NULL)
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
out:
	return r;
}

int
tg_ca_certs_read(const char *path, STACK_OF(X509) * certs, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x = NULL;
	const unsigned char *p;
	int r, count = 0;

	if ((r = file_read_pem(path, &data, &len, &bio, err)) != 0)
		goto out;
	if (bio != NULL) {
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			if (!sk_X509_push(certs, x)) {
				r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
				goto out;
			}
			x = NULL;
			count++;
		}
	} else {
		p = data;
		x = d2i_X509(NULL, &p, (long)len);
		if (x != NULL && p != data + len) {
			r = tg_error_set(err, TG_ERR_FORMAT,
			                 "'%s': trailing bytes after the DER certificate", path);
			goto out;
		}
		if (x != NULL) {
			if (!sk_X509_push(certs, x)) {
				r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
				goto out;
			}
			x = NULL;
			count++;
		}
	}
	ERR_clear_error();
	if (count == 0) {
		r = tg_error_set(err, TG_ERR_FORMAT, "'%s' holds no X.509 certificate (PEM or DER)",
		                 path);
		goto out;
	}
	r = 0;
out:
	X509_free(x);
	BIO_free(bio);
	free(data);
	return r;
}

int
tg_ca_cert_read(const char *path, X509 **out, struct tg_error *err)
{
	STACK_OF(X509) *certs = NULL;
	int r;

	if ((certs = sk_X509_new_null()) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if ((r = tg_ca_certs_read(path, certs, err)) != 0)
		goto out;
	*out = sk_X509_shift(certs);
	r = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	return r;
}

int
tg_ca_csr_read(const char *path, X509_REQ **out, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509_REQ *req = NULL;
	const unsigned char *p;
	int r;

	if ((r = file_read_pem(path, &data, &len, &bio, err)) != 0)
		goto out;
	if (bio != NULL) {
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	} else {
		p = data;
		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req != NULL && p != data + len) {
			X509_REQ_free(req);
			req = NULL;
		}
	}
	ERR_clear_error();
	if (req == NULL) {
		r = tg_error_set(err, TG_ERR_CSR,
		                 "'%s' is not a PKCS#10 certificate request (PEM or DER)", path);
		goto out;
	}
	*out = req;
	req = NULL;
	r = 0;
out:
	X509_REQ_free(req);
	BIO_free(bio);
	free(data);
	return r;
}

int
tg_ca_pubkey_read(const char *path, EVP_PKEY **out, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	X509_REQ *req = NULL;
	const unsigned char *p;
	int r;

	if ((r = file_read_pem(path, &data, &len, &bio, err)) != 0)
		goto out;
	if (bio != NULL) {
		if (memmem(data, len, "CERTIFICATE REQUEST", 19) != NULL)
			req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		else if (memmem(data, len, "BEGIN CERTIFICATE", 17) != NULL)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		else
			pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	} else {
		p = data;
		pk = d2i_PUBKEY(NULL, &p, (long)len);
		if (pk == NULL) {
			p = data;
			x = d2i_X509(NULL, &p, (long)len);
		}
		if (pk == NULL && x == NULL) {
			p = data;
			req = d2i_X509_REQ(NULL, &p, (long)len);
		}
	}
	if (x != NULL)
		pk = X509_get_pubkey(x);
	else if (req != NULL)
		pk = X509_REQ_get_pubkey(req);
	ERR_clear_error();
	if (pk == NULL) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "'%s' holds no public key (PEM/DER public key, "
		                 "certificate or CSR)",
		                 path);
		goto out;
	}
	*out = pk;
	pk = NULL;
	r = 0;
out:
	EVP_PKEY_free(pk);
	X509_free(x);
	X509_REQ_free(req);
	BIO_free(bio);
	free(data);
	return r;
}

char *
tg_ca_name_str(const X509_NAME *name, char *buf, size_t n)
{
	BIO *bio = NULL;
	int got;

	if (n == 0)
		goto out;
	buf[0] = '\0';
	if (name == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto out;
	got = BIO_read(bio, buf, (int)(n - 1));
	buf[got > 0 ? got : 0] = '\0';
out:
	BIO_free(bio);
	return buf;
}
