/*
 * tok-int.h — what the files of `tokengate token` share (internal to
 * host/token/): the option ids and the PIN hint of the option tables, the
 * trust help text, the key lookup with the card's evidence (evidence.c),
 * and the text/JSON rendering of trust attributes and pkcs11: URIs
 * (show.c). One subcommand per file: list.c, keygen.c, sign.c, cert.c,
 * csr.c; token.c dispatches.
 */
#ifndef TG_TOK_CLI_INT_H
#define TG_TOK_CLI_INT_H

#include <jansson.h>

#include "tg_cli.h"
#include "tg_cmd.h"
#include "tg_p11.h"

/* Option ids of the subcommands' tables (tg_cli_opt). */
enum {
	TOK_OPT_KEY = 1,
	TOK_OPT_ALG,
	TOK_OPT_CERT,
	TOK_OPT_LABEL,
	TOK_OPT_REPLACE,
	TOK_OPT_ALLOW,
	TOK_OPT_ALLOW_IMPORTED,
	TOK_OPT_OUT,
	TOK_OPT_PSS,
	TOK_OPT_URI,
	TOK_OPT_JSON,
	TOK_OPT_LOGIN,
	TOK_OPT_ID,
};

/* Every option of the subcommands; each table lets its own through. */
struct tg_tokcmd_opts {
	const char *key, *alg, *cert, *label, *out, *uri, *id;
	int replace, allow, allow_imported, pss, json, login;
};

/*
 * Parses argv (argv[0] the subcommand's name) against the subcommand's
 * option table into *o (zeroed first); refusals name "tokengate WHAT" and
 * --help, with advice for --pin and its kin. Returns 1 to go on, or 0 with
 * *rc the exit code: TG_EXIT_OK after printing usage on stdout (-h,
 * --help), TG_EXIT_USAGE after a usage error.
 */
int tg_tokcmd_parse(const char *what, const struct tg_cli_opt *table, const char *usage, int argc,
                    char **argv, struct tg_tokcmd_opts *o, int *rc);

/* The trust policy, as every command that takes a key applies it. */
#define TG_TOKCMD_TRUST_HELP                                                                       \
	"Keys: a key is refused unless it is shown to be generated on the token and\n"             \
	"never exportable. --allow-exportable accepts an exportable key\n"                         \
	"(CKA_EXTRACTABLE true or CKA_SENSITIVE false); --allow-imported accepts\n"                \
	"an imported key (CKA_LOCAL false, or the card's PIV metadata says so), a\n"               \
	"once-exportable one (CKA_NEVER_EXTRACTABLE or CKA_ALWAYS_SENSITIVE false)\n"              \
	"and one of unknown origin (an attribute not reported, or a PKCS#15-emulated\n"            \
	"token such as OpenSC's PIV without card evidence). For OpenSC PIV tokens\n"               \
	"the evidence is the PIV GET METADATA origin of the card slot whose public\n"              \
	"key is the key's, read over PC/SC from the token's reader.\n"

/* The PIN sources, for every usage text. */
#define TG_TOKCMD_PIN_HELP                                                                         \
	"PIN: pin-value= or pin-source=file:PATH|env:NAME in the URI, else\n"                      \
	"TOKENGATE_PIN, else a prompt when stdin is a terminal. A wrong PIN is\n"                  \
	"never retried.\n"

/*
 * Finds the key of uri like tg_p11_key_find(flags), and on an OpenSC PIV
 * token (PKCS#15 emulated) adds the card's own evidence of the key's origin
 * first: the PIV metadata of the slot whose public key equals the key's
 * proven public key, read over PC/SC from the token's reader. Then applies
 * the trust policy of flags. A key in PIV slot 9D whose public key cannot
 * be proven by a signature is refused with the slot's purpose
 * (tg_tokcmd_piv_purpose). 0 and *out (free with tg_p11_key_free), or the
 * errors of tg_p11_key_find / tg_p11_key_trust_check.
 */
int tg_tokcmd_key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                       struct tg_error *err);

/*
 * The PIV slot of a key on an OpenSC PIV token (PKCS#15 emulated, from
 * its CKA_ID: 01 9A, 02 9C, 03 9D, 04 9E, 05..18 82..95), or 0 when the key
 * is not on such a token.
 */
unsigned tg_tokcmd_piv_slot(struct tg_p11_key *k);

/*
 * When the key is in PIV slot 9D (key management), replaces the error r in
 * err by one that names the slot's purpose and the slots that sign, with
 * the cause after it; returns r either way.
 */
int tg_tokcmd_piv_purpose(struct tg_p11_key *k, int r, struct tg_error *err);

/*
 * A context (*p, free with tg_p11_free after the key) and the key of
 * o->key found for use: tg_tokcmd_key_find with a login that may prompt and
 * the trust opt-ins of o (--allow-exportable, --allow-imported). 0, or the
 * errors of tg_p11_new / tg_tokcmd_key_find.
 */
int tg_tokcmd_key_open(const struct tg_tokcmd_opts *o, struct tg_p11 **p, struct tg_p11_key **k,
                       struct tg_error *err);

/* "true", "false", "unknown" or "invalid" for a trust attribute. */
const char *tg_tokcmd_tri(int v);

/* The trust attributes and verdict as a JSON object (new reference). */
json_t *tg_tokcmd_trust_json(const struct tg_p11_trust *tr);

/*
 * A pkcs11: URI (p11_kit_uri_format) naming the token ti, by its label,
 * manufacturer, model and serial; or one naming an object on it by class,
 * label and id (o not NULL). Heap string (free with free()), or NULL when
 * out of memory. An id longer than the listing keeps (o->id_full_len >
 * o->id_len) is left out of the URI.
 */
char *tg_tokcmd_uri(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *o);

/* Prints json (with a newline) on stdout; 0 or TG_ERR_IO. */
int tg_tokcmd_json_print(json_t *json);

/* The subcommands (one file each); argv[0] is the subcommand's name. */
int tg_tokcmd_list(int argc, char **argv);        /* list.c */
int tg_tokcmd_keygen(int argc, char **argv);      /* keygen.c */
int tg_tokcmd_sign_test(int argc, char **argv);   /* sign.c */
int tg_tokcmd_import_cert(int argc, char **argv); /* cert.c */
int tg_tokcmd_export_cert(int argc, char **argv); /* cert.c */
int tg_tokcmd_csr(int argc, char **argv);         /* csr.c */

#endif /* TG_TOK_CLI_INT_H */
