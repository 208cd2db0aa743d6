/*
 * tg_ca_io.h — reading certificates, CSRs and keys from files, PEM or DER.
 *
 * Every reader takes the whole file (at most TG_CA_IO_MAX bytes), decides
 * PEM ("-----BEGIN" present) or DER, and reports failures naming the file
 * and what was expected.
 */
#ifndef TG_CA_IO_H
#define TG_CA_IO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_err.h"

#define TG_CA_IO_MAX (1024 * 1024)

/*
 * Reads the file at path into a new heap buffer (*data, caller frees with
 * free(); a NUL byte is appended but not counted in *len). TG_ERR_IO when
 * the file cannot be read or exceeds TG_CA_IO_MAX.
 */
int tg_ca_file_read(const char *path, uint8_t **data, size_t *len, struct tg_error *err);

/*
 * Writes n bytes to path with the given mode (e.g. 0600, 0644) through the
 * project's one atomic writer, tg_file_write (tg_file.h). 0 or TG_ERR_IO.
 */
int tg_ca_file_write(const char *path, const void *p, size_t n, unsigned mode,
                     struct tg_error *err);

/*
 * Writes the PEM of each of x, req and crl that is not NULL, in that
 * order, to path (mode 0644, through tg_ca_file_write). 0, TG_ERR_CRYPTO
 * (cannot encode) or TG_ERR_IO.
 */
int tg_ca_pem_write(const char *path, X509 *x, X509_REQ *req, X509_CRL *crl, struct tg_error *err);

/* The first certificate of a PEM or DER file; *out owned by the caller. */
int tg_ca_cert_read(const char *path, X509 **out, struct tg_error *err);

/*
 * Appends every certificate of a PEM file (or the one of a DER file) to
 * certs. TG_ERR_FORMAT when the file holds none.
 */
int tg_ca_certs_read(const char *path, STACK_OF(X509) * certs, struct tg_error *err);

/* A PKCS#10 CSR, PEM or DER; *out owned by the caller. */
int tg_ca_csr_read(const char *path, X509_REQ **out, struct tg_error *err);

/*
 * A public key from a PEM/DER SubjectPublicKeyInfo, a certificate or a CSR
 * (whichever the file holds); *out owned by the caller.
 */
int tg_ca_pubkey_read(const char *path, EVP_PKEY **out, struct tg_error *err);

/*
 * One line "Name=Value, ..." of an X509_NAME (RFC 2253 style) into buf of
 * size n; always NUL-terminated. Returns buf.
 */
char *tg_ca_name_str(const X509_NAME *name, char *buf, size_t n);

#endif /* TG_CA_IO_H */
