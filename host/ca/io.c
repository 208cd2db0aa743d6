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

/* What a file may hold, as PEM block types or DER encodings. */
enum io_kind {
	IO_CERT = 1 << 0,
	IO_CSR = 1 << 1,
	IO_PUBKEY = 1 << 2,
};

/* What a file gave: every certificate (certs, when not NULL) or the first
 * object of a wanted kind. */
struct io_found {
	unsigned want;          /* io_kind bits */
	STACK_OF(X509) * certs; /* IO_CERT into a stack: every certificate */
	int count;              /* objects taken */
	int stop;               /* a PEM certificate that did not decode ends the list */
	X509 *x;
	X509_REQ *req;
	EVP_PKEY *pk;
};

/* The kind a PEM block type names; 0 for others. */
static unsigned
pem_kind(const char *name)
{
	if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0)
		return IO_CERT;
	if (strcmp(name, PEM_STRING_X509_REQ) == 0 || strcmp(name, PEM_STRING_X509_REQ_OLD) == 0)
		return IO_CSR;
	if (strcmp(name, PEM_STRING_PUBLIC) == 0)
		return IO_PUBKEY;
	return 0;
}

/* Decodes DER of the given kind into f when it is exactly n bytes; 1 when
 * taken, 0 when it is not that kind. */
static int
der_take(unsigned kind, const unsigned char *der, long n, struct io_found *f)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *pk = NULL;
	int ok = 0;

	if (kind == IO_CERT)
		ok = (x = d2i_X509(NULL, &p, n)) != NULL;
	else if (kind == IO_CSR)
		ok = (req = d2i_X509_REQ(NULL, &p, n)) != NULL;
	else if (kind == IO_PUBKEY)
		ok = (pk = d2i_PUBKEY(NULL, &p, n)) != NULL;
	if (!ok || p != der + n) {
		X509_free(x);
		X509_REQ_free(req);
		EVP_PKEY_free(pk);
		return 0;
	}
	if (x != NULL && f->certs != NULL) {
		if (!sk_X509_push(f->certs, x)) {
			X509_free(x);
			return 0;
		}
	} else {
		f->x = x;
	}
	f->req = req;
	f->pk = pk;
	f->count++;
	return 1;
}

/* One object (a PEM block of type name, or the whole DER file when name is
 * NULL) into f when it is wanted. */
static void
object_take(const char *name, const unsigned char *der, long n, struct io_found *f)
{
	static const unsigned kinds[] = {IO_PUBKEY, IO_CERT, IO_CSR}; /* DER: the old order */
	unsigned k;
	size_t i;

	if (f->stop || (f->certs == NULL && f->count > 0))
		return;
	if (name != NULL) {
		k = pem_kind(name) & f->want;
		if (k != 0 && !der_take(k, der, n, f) && k == IO_CERT)
			f->stop = 1;
		return;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if ((kinds[i] & f->want) && der_take(kinds[i], der, n, f))
			return;
	}
}

/*
 * Reads the file at path and takes from it what f wants: from PEM every
 * block in turn (other block types skipped), from DER the whole file as
 * one object. 0 even when nothing was taken (f->count says); TG_ERR_IO or
 * TG_ERR_ALLOC when the file cannot be read.
 */
static int
file_objects(const char *path, struct io_found *f, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long n = 0;
	int r;

	if ((r = tg_ca_file_read(path, &data, &len, err)) != 0)
		goto out;
	if (memmem(data, len, "-----BEGIN", 10) == NULL) {
		object_take(NULL, data, (long)len, f);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	while (PEM_read_bio(bio, &name, &header, &der, &n) == 1) {
		object_take(name, der, n, f);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
out:
	ERR_clear_error();
	BIO_free(bio);
	free(data);
	return r;
}

static void
found_clear(struct io_found *f)
{
	X509_free(f->x);
	X509_REQ_free(f->req);
	EVP_PKEY_free(f->pk);
}

int
tg_ca_certs_read(const char *path, STACK_OF(X509) * certs, struct tg_error *err)
{
	struct io_found f = {.want = IO_CERT, .certs = certs};
	int r;

	if ((r = file_objects(path, &f, err)) != 0)
		goto out;
	if (f.count == 0) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "'%s' holds no X.509 certificate (PEM, or DER with nothing after "
		                 "it)",
		                 path);
		goto out;
	}
	r = 0;
out:
	found_clear(&f);
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
	struct io_found f = {.want = IO_CSR};
	int r;

	if ((r = file_objects(path, &f, err)) != 0)
		goto out;
	if (f.req == NULL) {
		r = tg_error_set(err, TG_ERR_CSR,
		                 "'%s' is not a PKCS#10 certificate request (PEM or DER)", path);
		goto out;
	}
	*out = f.req;
	f.req = NULL;
	r = 0;
out:
	found_clear(&f);
	return r;
}

int
tg_ca_pubkey_read(const char *path, EVP_PKEY **out, struct tg_error *err)
{
	struct io_found f = {.want = IO_CERT | IO_CSR | IO_PUBKEY};
	int r;

	if ((r = file_objects(path, &f, err)) != 0)
		goto out;
	if (f.pk == NULL && f.x != NULL)
		f.pk = X509_get_pubkey(f.x);
	else if (f.pk == NULL && f.req != NULL)
		f.pk = X509_REQ_get_pubkey(f.req);
	if (f.pk == NULL) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "'%s' holds no public key (PEM/DER public key, "
		                 "certificate or CSR)",
		                 path);
		goto out;
	}
	*out = f.pk;
	f.pk = NULL;
	r = 0;
out:
	found_clear(&f);
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
