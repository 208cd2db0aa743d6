/* keygen.c — `tokengate token keygen`: a non-exportable key pair generated
 * on the token (tok-int.h). */
#include <stdio.h>
#include <stdlib.h>

#include "tok-int.h"

#define WHAT "token keygen"

static const char usage[] =
    "usage: tokengate token keygen --key URI --algorithm ALG [--json]\n\n"
    "Generates a key pair on the token URI names, labelled by its object=\n"
    "(and id= when given, else a random 16-byte id), with the\n"
    "non-exportable template (CKA_SENSITIVE=true, CKA_EXTRACTABLE=false).\n"
    "ALG: ec-p256 | ec-p384 | rsa-2048 | rsa-3072. Prints the key's URI,\n"
    "its trust verdict and its public key (PEM); --json prints them as one\n"
    "JSON object (token, algorithm, uri, trust, public_key).\n" TG_TOKCMD_PIN_HELP
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const struct tg_cli_opt opts[] = {
    {"key", TG_CLI_ARG_REQUIRED, TOK_OPT_KEY},
    {"algorithm", TG_CLI_ARG_REQUIRED, TOK_OPT_ALG},
    {"json", TG_CLI_ARG_NONE, TOK_OPT_JSON},
    {NULL, 0, 0},
};

static int
show(struct tg_p11_key *k, int json, struct tg_error *err)
{
	struct tg_p11_trust tr;
	char *uri = NULL, *pem = NULL;
	json_t *j = NULL;
	const char *label = tg_p11_token_get_info(tg_p11_key_token(k))->label;
	int r;

	tg_p11_key_trust(k, &tr);
	if ((r = tg_p11_key_uri(k, &uri)) != 0 || (r = tg_p11_key_public_pem(k, &pem, err)) != 0)
		goto out;
	if (json) {
		j = json_object();
		json_object_set_new(j, "token", json_string(label));
		json_object_set_new(j, "algorithm",
		                    json_string(tg_p11_alg_name(tg_p11_key_alg(k))));
		json_object_set_new(j, "uri", json_string(uri));
		json_object_set_new(j, "trust", tg_tokcmd_trust_json(&tr));
		json_object_set_new(j, "public_key", json_string(pem));
		r = tg_tokcmd_json_print(j);
	} else {
		printf("generated %s key on token '%s'\nuri: %s\ntrust: %s (%s)\n%s",
		       tg_p11_alg_name(tg_p11_key_alg(k)), label, uri,
		       tg_p11_verdict_name(tr.verdict), tr.reason, pem);
	}
out:
	json_decref(j);
	free(uri);
	free(pem);
	return r;
}

int
tg_tokcmd_keygen(int argc, char **argv)
{
	struct tg_tokcmd_opts o;
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	enum tg_p11_alg alg;
	int r, rc;

	if (!tg_tokcmd_parse(WHAT, opts, usage, argc, argv, &o, &rc))
		goto out;
	if (o.key == NULL) {
		rc = tg_cmd_usage_error(WHAT, "--key URI is required");
		goto out;
	}
	if (o.alg == NULL || tg_p11_alg_parse(o.alg, &alg) != 0) {
		rc = tg_cmd_usage_error(WHAT, "--algorithm must be ec-p256, ec-p384, rsa-2048 "
		                              "or rsa-3072");
		goto out;
	}
	tg_error_clear(&err);
	if ((r = tg_p11_new(&p, &err)) != 0 ||
	    (r = tg_p11_keygen(p, o.key, alg, TG_P11_KEY_INTERACTIVE, &k, &err)) != 0 ||
	    (r = show(k, o.json, &err)) != 0) {
		rc = tg_cmd_fail(WHAT, r, &err);
		goto out;
	}
	rc = TG_EXIT_OK;
out:
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}
