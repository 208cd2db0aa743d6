/*
 * csr.c — `tokengate token csr`: a certificate request (PKCS#10) for a
 * token key, signed on the token through libtgp11's EVP_PKEY, built by
 * enroll's request code (tg_csr.h) so both carry the same subject and
 * subjectAltName (tok-int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "tg_csr.h"
#include "tg_file.h"
#include "tok-int.h"

#define WHAT "token csr"

static const char usage[] =
    "usage: tokengate token csr --key URI --id IDENTITY [--out FILE]\n"
    "                           [--allow-exportable] [--allow-imported]\n\n"
    "Writes a certificate request (PKCS#10, PEM) for the key URI names, signed\n"
    "on the token, to stdout or FILE. As with 'tokengate enroll', the identity\n"
    "(e.g. spiffe://TD/dev/NAME or spiffe://TD/svc/NAME) is the request's one\n"
    "URI subjectAltName and its subject CN (the last path segment when it is\n"
    "longer than 64 characters). The signature is checked with the key's proven\n"
    "public key before anything is written; 'openssl req -verify' checks it\n"
    "again. Digest: SHA-384 for P-384 keys, else SHA-256.\n" TG_TOKCMD_PIN_HELP TG_TOKCMD_TRUST_HELP
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const struct tg_cli_opt opts[] = {
    {"key", TG_CLI_ARG_REQUIRED, TOK_OPT_KEY},
    {"id", TG_CLI_ARG_REQUIRED, TOK_OPT_ID},
    {"out", TG_CLI_ARG_REQUIRED, TOK_OPT_OUT},
    {"allow-exportable", TG_CLI_ARG_NONE, TOK_OPT_ALLOW},
    {"allow-imported", TG_CLI_ARG_NONE, TOK_OPT_ALLOW_IMPORTED},
    {NULL, 0, 0},
};

/* The request as PEM: to stdout, or atomically to path. */
static int
csr_write(X509_REQ *req, const char *path, struct tg_error *err)
{
	BIO *bio = NULL;
	char *pem = NULL;
	long n = 0;
	int r = TG_ERR_CRYPTO;

	if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509_REQ(bio, req) != 1 ||
	    (n = BIO_get_mem_data(bio, &pem)) <= 0) {
		tg_error_set(err, r, "cannot encode the request as PEM");
		goto out;
	}
	if (path != NULL)
		r = tg_file_write(path, pem, (size_t)n, 0644, 0, err);
	else if (fwrite(pem, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0)
		r = tg_error_set(err, TG_ERR_IO, "cannot write the request to stdout");
	else
		r = 0;
out:
	BIO_free(bio);
	return r;
}

static int
csr_run(const struct tg_tokcmd_opts *o)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	EVP_PKEY *pub = NULL, *evp = NULL;
	X509_REQ *req = NULL;
	char *pem = NULL;
	int r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	if ((r = tg_tokcmd_key_open(o, &p, &k, &err)) != 0)
		goto fail;
	if ((pub = tg_p11_key_public(k)) == NULL) {
		/* the reason no public key is established */
		if ((r = tg_p11_key_public_pem(k, &pem, &err)) == 0)
			r = TG_ERR_CERT_MISMATCH; /* not reached: no public key */
		goto fail;
	}
	if ((r = tg_p11_key_evp_get(k, &evp, &err)) != 0 ||
	    (r = tg_csr_new(o->id, pub, &req, &err)) != 0 ||
	    (r = tg_csr_sign_evp(req, evp, pub, &err)) != 0) {
		r = tg_tokcmd_piv_purpose(k, r, &err);
		goto fail;
	}
	if ((r = csr_write(req, o->out, &err)) != 0)
		goto fail;
	if (o->out != NULL)
		fprintf(stderr, "wrote the request for '%s' (key '%s' on token '%s') to %s\n",
		        o->id, tg_p11_key_label(k),
		        tg_p11_token_get_info(tg_p11_key_token(k))->label, o->out);
	rc = TG_EXIT_OK;
	goto out;
fail:
	rc = tg_cmd_fail(WHAT, r, &err);
out:
	free(pem);
	X509_REQ_free(req);
	EVP_PKEY_free(evp);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

int
tg_tokcmd_csr(int argc, char **argv)
{
	struct tg_tokcmd_opts o;
	int rc;

	if (!tg_tokcmd_parse(WHAT, opts, usage, argc, argv, &o, &rc))
		goto out;
	if (o.key == NULL || o.id == NULL || o.id[0] == '\0')
		rc = tg_cmd_usage_error(WHAT, "--key URI and --id IDENTITY are required");
	else
		rc = csr_run(&o);
out:
	return rc;
}
