/* sign.c — `tokengate token sign-test`: a signature made on the token and
 * verified with the key's proven public key, and the key's trust
 * (tok-int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok-int.h"

#define WHAT          "token sign-test"
#define SIGN_TEST_MSG "tokengate sign-test"

static const char usage[] =
    "usage: tokengate token sign-test --key URI [--pss] [--allow-exportable]\n"
    "                                 [--allow-imported] [--json]\n\n"
    "Signs a test message with the key on the token (SHA-256; ECDSA for EC\n"
    "keys, RSA PKCS#1 v1.5 for RSA keys, or RSA-PSS with --pss, which only RSA\n"
    "keys take), verifies the signature with the key's proven public key and\n"
    "reports the key's trust check; --json prints the report as one JSON\n"
    "object (key, token, algorithm, uri, trust, signature).\n" TG_TOKCMD_PIN_HELP
        TG_TOKCMD_TRUST_HELP "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const struct tg_cli_opt opts[] = {
    {"key", TG_CLI_ARG_REQUIRED, TOK_OPT_KEY},
    {"pss", TG_CLI_ARG_NONE, TOK_OPT_PSS},
    {"allow-exportable", TG_CLI_ARG_NONE, TOK_OPT_ALLOW},
    {"allow-imported", TG_CLI_ARG_NONE, TOK_OPT_ALLOW_IMPORTED},
    {"json", TG_CLI_ARG_NONE, TOK_OPT_JSON},
    {NULL, 0, 0},
};

/* The signature scheme sign-test uses for the key. */
static const char *
scheme(enum tg_p11_alg alg, int pss)
{
	int rsa =
	    alg == TG_P11_ALG_RSA_2048 || alg == TG_P11_ALG_RSA_3072 || alg == TG_P11_ALG_RSA_OTHER;

	return !rsa ? "ECDSA" : pss ? "RSA-PSS" : "RSA PKCS#1 v1.5";
}

static int
is_ec(enum tg_p11_alg alg)
{
	return alg == TG_P11_ALG_EC_P256 || alg == TG_P11_ALG_EC_P384 || alg == TG_P11_ALG_EC_OTHER;
}

static int
report(struct tg_p11_key *k, const struct tg_tokcmd_opts *o, size_t siglen)
{
	struct tg_p11_trust tr;
	const char *tok = tg_p11_token_get_info(tg_p11_key_token(k))->label;
	const char *alg = tg_p11_alg_name(tg_p11_key_alg(k));
	const char *sch = scheme(tg_p11_key_alg(k), o->pss);
	char *uri = NULL;
	json_t *j = NULL, *js;
	int r;

	tg_p11_key_trust(k, &tr);
	if ((r = tg_p11_key_uri(k, &uri)) != 0)
		goto out;
	if (o->json) {
		j = json_object();
		js = json_object();
		json_object_set_new(j, "key", json_string(tg_p11_key_label(k)));
		json_object_set_new(j, "token", json_string(tok));
		json_object_set_new(j, "algorithm", json_string(alg));
		json_object_set_new(j, "uri", json_string(uri));
		json_object_set_new(j, "trust", tg_tokcmd_trust_json(&tr));
		json_object_set_new(js, "scheme", json_string(sch));
		json_object_set_new(js, "digest", json_string("SHA-256"));
		json_object_set_new(js, "bytes", json_integer((json_int_t)siglen));
		json_object_set_new(js, "verified", json_true());
		json_object_set_new(j, "signature", js);
		r = tg_tokcmd_json_print(j);
		goto out;
	}
	printf("key: '%s' %s on token '%s'\nuri: %s\n", tg_p11_key_label(k), alg, tok, uri);
	printf("trust: %s: %s\n  sensitive=%s extractable=%s never_extractable=%s "
	       "always_sensitive=%s local=%s\n",
	       tg_p11_verdict_name(tr.verdict), tr.reason, tg_tokcmd_tri(tr.sensitive),
	       tg_tokcmd_tri(tr.extractable), tg_tokcmd_tri(tr.never_extractable),
	       tg_tokcmd_tri(tr.always_sensitive), tg_tokcmd_tri(tr.local));
	printf("signature: %zu bytes (%s, SHA-256), verified with the public key: ok\n", siglen,
	       sch);
out:
	json_decref(j);
	free(uri);
	return r;
}

static int
sign_run(const struct tg_tokcmd_opts *o)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	uint8_t *sig = NULL;
	size_t sl = 0;
	int r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	if ((r = tg_tokcmd_key_open(o, &p, &k, &err)) != 0)
		goto fail;
	if (o->pss && is_ec(tg_p11_key_alg(k))) {
		rc = tg_cmd_usage_error(WHAT,
		                        "--pss is RSA-PSS, for RSA keys; key '%s' is %s and signs "
		                        "with ECDSA: drop --pss",
		                        tg_p11_key_label(k), tg_p11_alg_name(tg_p11_key_alg(k)));
		goto out;
	}
	r = tg_p11_key_sign_test(k, o->pss, (const uint8_t *)SIGN_TEST_MSG, strlen(SIGN_TEST_MSG),
	                         &sig, &sl, &err);
	if ((r = tg_tokcmd_piv_purpose(k, r, &err)) != 0 || (r = report(k, o, sl)) != 0)
		goto fail;
	rc = TG_EXIT_OK;
	goto out;
fail:
	rc = tg_cmd_fail(WHAT, r, &err);
out:
	free(sig);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

int
tg_tokcmd_sign_test(int argc, char **argv)
{
	struct tg_tokcmd_opts o;
	int rc;

	if (!tg_tokcmd_parse(WHAT, opts, usage, argc, argv, &o, &rc))
		goto out;
	if (o.key == NULL)
		rc = tg_cmd_usage_error(WHAT, "--key URI is required");
	else
		rc = sign_run(&o);
out:
	return rc;
}
