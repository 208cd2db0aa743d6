/* cert.c — `tokengate token import-cert` and `export-cert`: a key's
 * certificate stored on its token and read back (tok-int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "tg_file.h"
#include "tok-int.h"

#define WHAT_IMPORT "token import-cert"
#define WHAT_EXPORT "token export-cert"

static const char usage_import[] =
    "usage: tokengate token import-cert --key URI --cert FILE [--label L]\n"
    "                                   [--replace] [--allow-exportable]\n"
    "                                   [--allow-imported] [--json]\n\n"
    "Stores the certificate in FILE (PEM or DER) on the key's token with the\n"
    "key's CKA_ID, after checking that its public key is the key's.\n"
    "--replace overwrites a different certificate with the same id; --json\n"
    "prints the result as one JSON object (token, key, uri).\n" TG_TOKCMD_PIN_HELP
        TG_TOKCMD_TRUST_HELP "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const char usage_export[] =
    "usage: tokengate token export-cert --key URI [--out FILE]\n\n"
    "Writes the key's certificate (the one with its CKA_ID whose public key\n"
    "matches the key's proven public key) as PEM to stdout or FILE. Private\n"
    "keys never leave a token. A certificate is public: no trust check, and\n"
    "no login unless the token needs one to prove the key's public key.\n" TG_TOKCMD_PIN_HELP
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const struct tg_cli_opt opts_import[] = {
    {"key", TG_CLI_ARG_REQUIRED, TOK_OPT_KEY},
    {"cert", TG_CLI_ARG_REQUIRED, TOK_OPT_CERT},
    {"label", TG_CLI_ARG_REQUIRED, TOK_OPT_LABEL},
    {"replace", TG_CLI_ARG_NONE, TOK_OPT_REPLACE},
    {"allow-exportable", TG_CLI_ARG_NONE, TOK_OPT_ALLOW},
    {"allow-imported", TG_CLI_ARG_NONE, TOK_OPT_ALLOW_IMPORTED},
    {"json", TG_CLI_ARG_NONE, TOK_OPT_JSON},
    {NULL, 0, 0},
};

static const struct tg_cli_opt opts_export[] = {
    {"key", TG_CLI_ARG_REQUIRED, TOK_OPT_KEY},
    {"out", TG_CLI_ARG_REQUIRED, TOK_OPT_OUT},
    {NULL, 0, 0},
};

static X509 *
cert_read(const char *path, struct tg_error *err)
{
	FILE *f = fopen(path, "rb");
	X509 *x = NULL;

	if (f == NULL) {
		tg_error_set(err, TG_ERR_IO, "cannot open certificate file '%s': %s", path,
		             strerror(errno));
		goto out;
	}
	if ((x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		rewind(f);
		x = d2i_X509_fp(f, NULL);
	}
	if (x == NULL)
		tg_error_set(err, TG_ERR_FORMAT,
		             "'%s' holds no X.509 certificate (PEM or DER expected)", path);
out:
	if (f != NULL)
		fclose(f);
	return x;
}

static int
import_run(const struct tg_tokcmd_opts *o)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	X509 *x = NULL;
	char *uri = NULL;
	json_t *j = NULL;
	const char *tok;
	int r = TG_ERR_IO, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	if ((x = cert_read(o->cert, &err)) == NULL ||
	    (r = tg_tokcmd_key_open(o, &p, &k, &err)) != 0 ||
	    (r = tg_p11_key_cert_import(k, x, o->label, o->replace, &err)) != 0 ||
	    (r = tg_p11_key_uri(k, &uri)) != 0) {
		rc = tg_cmd_fail(WHAT_IMPORT, x == NULL ? err.code : r, &err);
		goto out;
	}
	tok = tg_p11_token_get_info(tg_p11_key_token(k))->label;
	if (o->json) {
		j = json_object();
		json_object_set_new(j, "token", json_string(tok));
		json_object_set_new(j, "key", json_string(tg_p11_key_label(k)));
		json_object_set_new(j, "uri", json_string(uri));
		if (tg_tokcmd_json_print(j) != 0) {
			rc = tg_cmd_fail(WHAT_IMPORT, TG_ERR_IO, NULL);
			goto out;
		}
	} else {
		printf("certificate stored on token '%s' next to key '%s'\nuri: %s\n", tok,
		       tg_p11_key_label(k), uri);
	}
	rc = TG_EXIT_OK;
out:
	json_decref(j);
	free(uri);
	X509_free(x);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

int
tg_tokcmd_import_cert(int argc, char **argv)
{
	struct tg_tokcmd_opts o;
	int rc;

	if (!tg_tokcmd_parse(WHAT_IMPORT, opts_import, usage_import, argc, argv, &o, &rc))
		goto out;
	if (o.key == NULL || o.cert == NULL)
		rc = tg_cmd_usage_error(WHAT_IMPORT, "--key URI and --cert FILE are required");
	else
		rc = import_run(&o);
out:
	return rc;
}

/* The key of uri for reading its certificate: without login first; found
 * again logged in when its public key needs the login to be proven (a
 * signature through its handle). */
static int
export_key_find(struct tg_p11 *p, const char *uri, struct tg_p11_key **k, struct tg_error *err)
{
	EVP_PKEY *pub = NULL;
	int r;

	r = tg_p11_key_find(p, uri, TG_P11_KEY_NO_LOGIN | TG_P11_KEY_DEFER_TRUST, k, err);
	if (r == TG_ERR_KEY_NOT_FOUND || (r == 0 && (pub = tg_p11_key_public(*k)) == NULL)) {
		tg_p11_key_free(*k);
		*k = NULL;
		tg_error_clear(err);
		r = tg_p11_key_find(p, uri, TG_P11_KEY_INTERACTIVE | TG_P11_KEY_DEFER_TRUST, k,
		                    err);
	}
	EVP_PKEY_free(pub);
	return r;
}

static int
export_run(const struct tg_tokcmd_opts *o)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	X509 *x = NULL;
	BIO *bio = NULL;
	char *pem = NULL;
	long n = 0;
	int r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	if ((r = tg_p11_new(&p, &err)) != 0 || (r = export_key_find(p, o->key, &k, &err)) != 0 ||
	    (r = tg_p11_key_cert_get(k, &x, &err)) != 0)
		goto fail;
	if (o->out == NULL) {
		r = PEM_write_X509(stdout, x) == 1 ? 0 : TG_ERR_IO;
	} else {
		/* through the one atomic writer: a failure leaves no half-written file */
		r = TG_ERR_CRYPTO;
		if ((bio = BIO_new(BIO_s_mem())) != NULL && PEM_write_bio_X509(bio, x) == 1 &&
		    (n = BIO_get_mem_data(bio, &pem)) > 0)
			r = tg_file_write(o->out, pem, (size_t)n, 0644, 0, &err);
	}
	if (r != 0)
		goto fail;
	rc = TG_EXIT_OK;
	goto out;
fail:
	rc = tg_cmd_fail(WHAT_EXPORT, r, &err);
out:
	BIO_free(bio);
	X509_free(x);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

int
tg_tokcmd_export_cert(int argc, char **argv)
{
	struct tg_tokcmd_opts o;
	int rc;

	if (!tg_tokcmd_parse(WHAT_EXPORT, opts_export, usage_export, argc, argv, &o, &rc))
		goto out;
	if (o.key == NULL)
		rc = tg_cmd_usage_error(WHAT_EXPORT, "--key URI is required");
	else
		rc = export_run(&o);
out:
	return rc;
}
