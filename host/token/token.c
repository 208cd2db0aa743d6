/*
 * token.c — `tokengate token`: list, keygen, import-cert, export-cert and
 * sign-test on PKCS#11 tokens, through libtgp11.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "tg_cmd.h"
#include "tg_file.h"
#include "tg_hex.h"
#include "tg_p11.h"
#include "tg_piv.h"
#include "tg_pcsc.h"
#include "tg_pivc.h"

#define SIGN_TEST_MSG "tokengate sign-test"

/* The trust policy, as every command that takes a key applies it. */
#define TRUST_HELP                                                                                 \
	"Keys: a key is refused unless it is shown to be generated on the token and\n"             \
	"never exportable. --allow-exportable accepts an exportable key\n"                         \
	"(CKA_EXTRACTABLE true or CKA_SENSITIVE false); --allow-imported accepts\n"                \
	"an imported key (CKA_LOCAL false, or the card's PIV metadata says so), a\n"               \
	"once-exportable one (CKA_NEVER_EXTRACTABLE or CKA_ALWAYS_SENSITIVE false)\n"              \
	"and one of unknown origin (an attribute not reported, or a PKCS#15-emulated\n"            \
	"token such as OpenSC's PIV without card evidence). For OpenSC PIV tokens\n"               \
	"the evidence is the PIV GET METADATA origin of the card slot whose public\n"              \
	"key is the key's, read over PC/SC from the token's reader.\n"

static const char usage_main[] =
    "usage: tokengate token <subcommand> [options]\n\n"
    "Manage keys and certificates on PKCS#11 tokens (smart cards through\n"
    "OpenSC, HSMs, SoftHSM2). Keys are named by RFC 7512 URIs, e.g.\n"
    "  pkcs11:token=alice;object=api?pin-source=file:/run/pin\n"
    "The default module is p11-kit's proxy (every registered module);\n"
    "add ?module-path=/path/module.so to use one module.\n\n"
    "subcommands:\n"
    "  list         modules, tokens, keys and certificates (--json)\n"
    "  keygen       generate a non-exportable key pair on a token\n"
    "  import-cert  store a certificate next to its key (same CKA_ID)\n"
    "  export-cert  print a key's certificate (PEM); never a private key\n"
    "  sign-test    sign and verify a message with a key; report its trust\n\n"
    "PIN: pin-value= or pin-source=file:PATH|env:NAME in the URI, else\n"
    "TOKENGATE_PIN, else a prompt when stdin is a terminal. A wrong PIN is\n"
    "never retried.\n" TRUST_HELP "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const char usage_list[] =
    "usage: tokengate token list [--uri URI] [--login] [--json]\n\n"
    "Lists the PKCS#11 modules (those registered with p11-kit, or the one the\n"
    "URI names by module-path=/module-name=) and their tokens that match URI\n"
    "(default: all), with their keys (algorithm, id,\n"
    "label, trust attributes) and certificates. Private keys are often\n"
    "hidden until you log in: --login logs in to each listed token (PIN from\n"
    "the URI, TOKENGATE_PIN or a prompt).\n"
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const char usage_keygen[] =
    "usage: tokengate token keygen --key URI --algorithm ALG\n\n"
    "Generates a key pair on the token URI names, labelled by its object=\n"
    "(and id= when given, else a random 16-byte id), with the\n"
    "non-exportable template (CKA_SENSITIVE=true, CKA_EXTRACTABLE=false).\n"
    "ALG: ec-p256 | ec-p384 | rsa-2048 | rsa-3072. Prints the key's URI and\n"
    "its public key (PEM).\n"
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const char usage_import[] =
    "usage: tokengate token import-cert --key URI --cert FILE [--label L]\n"
    "                                   [--replace] [--allow-exportable]\n"
    "                                   [--allow-imported]\n\n"
    "Stores the certificate in FILE (PEM or DER) on the key's token with the\n"
    "key's CKA_ID, after checking that its public key is the key's.\n"
    "--replace overwrites a different certificate with the same id.\n" TRUST_HELP
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const char usage_export[] =
    "usage: tokengate token export-cert --key URI [--out FILE]\n\n"
    "Writes the key's certificate (the one with its CKA_ID whose public key\n"
    "matches the key's proven public key) as PEM to stdout or FILE. Private\n"
    "keys never leave a token. A certificate is public: no trust refusal\n"
    "(--allow-exportable and --allow-imported are accepted and change nothing).\n"
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

static const char usage_sign[] =
    "usage: tokengate token sign-test --key URI [--pss] [--allow-exportable]\n"
    "                                 [--allow-imported]\n\n"
    "Signs a test message with the key on the token (SHA-256; ECDSA, RSA\n"
    "PKCS#1 v1.5, or RSA-PSS with --pss), verifies the signature with the\n"
    "key's proven public key and reports the key's trust check.\n" TRUST_HELP
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

enum {
	OPT_KEY = 1,
	OPT_ALG,
	OPT_CERT,
	OPT_LABEL,
	OPT_REPLACE,
	OPT_ALLOW,
	OPT_ALLOW_IMPORTED,
	OPT_OUT,
	OPT_PSS,
	OPT_URI,
	OPT_JSON,
	OPT_LOGIN,
	OPT_HELP
};

static const struct option long_opts[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"algorithm", required_argument, NULL, OPT_ALG},
    {"cert", required_argument, NULL, OPT_CERT},
    {"label", required_argument, NULL, OPT_LABEL},
    {"replace", no_argument, NULL, OPT_REPLACE},
    {"allow-exportable", no_argument, NULL, OPT_ALLOW},
    {"allow-imported", no_argument, NULL, OPT_ALLOW_IMPORTED},
    {"out", required_argument, NULL, OPT_OUT},
    {"pss", no_argument, NULL, OPT_PSS},
    {"uri", required_argument, NULL, OPT_URI},
    {"json", no_argument, NULL, OPT_JSON},
    {"login", no_argument, NULL, OPT_LOGIN},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct opts {
	const char *key, *alg, *cert, *label, *out, *uri;
	int replace, allow, allow_imported, pss, json, login, help;
};

/* Parses argv (argv[0] = the subcommand's name); 0 or TG_EXIT_USAGE. */
static int
parse(const char *what, int argc, char **argv, struct opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0; /* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_ALG:
			o->alg = optarg;
			break;
		case OPT_CERT:
			o->cert = optarg;
			break;
		case OPT_LABEL:
			o->label = optarg;
			break;
		case OPT_REPLACE:
			o->replace = 1;
			break;
		case OPT_ALLOW:
			o->allow = 1;
			break;
		case OPT_ALLOW_IMPORTED:
			o->allow_imported = 1;
			break;
		case OPT_OUT:
			o->out = optarg;
			break;
		case OPT_PSS:
			o->pss = 1;
			break;
		case OPT_URI:
			o->uri = optarg;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_LOGIN:
			o->login = 1;
			break;
		case 'h':
		case OPT_HELP:
			o->help = 1;
			break;
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind < argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* The id of a listed object in hex: an id longer than the listing keeps
 * (64 bytes) shows its first 64 bytes and "...(N bytes)". */
static void
hex(const struct tg_p11_object_info *ob, char *buf, size_t bufsz)
{
	size_t o;

	(void)tg_hex_encode(ob->id, ob->id_len, buf, bufsz); /* bufsz holds all 64 */
	o = strlen(buf);
	if (ob->id_full_len > ob->id_len)
		snprintf(buf + o, bufsz - o, "...(%zu bytes)", ob->id_full_len);
}

static const char *
tri(int v)
{
	return v == TG_P11_ATTR_INVALID ? "invalid" : v < 0 ? "unknown" : v ? "true" : "false";
}

static const char *
class_name(enum tg_p11_obj_class c)
{
	switch (c) {
	case TG_P11_OBJ_PRIVATE_KEY:
		return "private-key";
	case TG_P11_OBJ_PUBLIC_KEY:
		return "public-key";
	case TG_P11_OBJ_CERT:
		return "certificate";
	default:
		return "other";
	}
}

static json_t *
jtri(int v)
{
	return v < 0 ? json_null() : json_boolean(v);
}

static json_t *
object_json(const struct tg_p11_object_info *o)
{
	char idhex[2 * sizeof(o->id) + 32];
	json_t *j = json_object();

	hex(o, idhex, sizeof(idhex));
	json_object_set_new(j, "class", json_string(class_name(o->cls)));
	json_object_set_new(j, "label", json_string(o->label));
	json_object_set_new(j, "id", json_string(idhex));
	json_object_set_new(j, "algorithm", json_string(tg_p11_alg_name(o->alg)));
	json_object_set_new(j, "bits", json_integer(o->bits));
	if (o->cls == TG_P11_OBJ_PRIVATE_KEY) {
		json_t *t = json_object();
		json_object_set_new(t, "sensitive", jtri(o->trust.sensitive));
		json_object_set_new(t, "extractable", jtri(o->trust.extractable));
		json_object_set_new(t, "never_extractable", jtri(o->trust.never_extractable));
		json_object_set_new(t, "always_sensitive", jtri(o->trust.always_sensitive));
		json_object_set_new(t, "local", jtri(o->trust.local));
		json_object_set_new(t, "always_authenticate", jtri(o->trust.always_authenticate));
		json_object_set_new(t, "emulated", json_boolean(o->trust.emulated));
		json_object_set_new(t, "verdict",
		                    json_string(tg_p11_verdict_name(o->trust.verdict)));
		json_object_set_new(t, "reason", json_string(o->trust.reason));
		json_object_set_new(j, "trust", t);
	}
	if (o->cls == TG_P11_OBJ_CERT) {
		json_object_set_new(j, "subject", json_string(o->subject));
		json_object_set_new(j, "not_after", json_string(o->not_after));
	}
	return j;
}

static void
object_print(const struct tg_p11_object_info *o)
{
	char idhex[2 * sizeof(o->id) + 32];

	hex(o, idhex, sizeof(idhex));
	printf("    %-11s id=%s label='%s' %s", class_name(o->cls), idhex[0] ? idhex : "-",
	       o->label, tg_p11_alg_name(o->alg));
	if (o->cls == TG_P11_OBJ_PRIVATE_KEY)
		printf(" trust=%s (sensitive=%s extractable=%s never_extractable=%s "
		       "always_sensitive=%s local=%s)",
		       tg_p11_verdict_name(o->trust.verdict), tri(o->trust.sensitive),
		       tri(o->trust.extractable), tri(o->trust.never_extractable),
		       tri(o->trust.always_sensitive), tri(o->trust.local));
	if (o->cls == TG_P11_OBJ_CERT)
		printf(" subject=%s not_after=%s", o->subject, o->not_after);
	printf("\n");
}

/* URI naming exactly the token ti: its module and slot. */
static void
token_uri(const struct tg_p11_token_info *ti, const char *base_query, char *buf, size_t bufsz)
{
	/* the slot id comes from the listing made in this process */
	snprintf(buf, bufsz, "pkcs11:slot-id=%lu?%s%smodule-path=%s", ti->slot_id,
	         base_query ? base_query : "", base_query ? "&" : "", ti->module);
}

static json_t *
token_json(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *ov, size_t no,
           int r, const struct tg_error *err)
{
	json_t *jt = json_object(), *objs = json_array();
	size_t j;

	json_object_set_new(jt, "label", json_string(ti->label));
	json_object_set_new(jt, "manufacturer", json_string(ti->manufacturer));
	json_object_set_new(jt, "model", json_string(ti->model));
	json_object_set_new(jt, "serial", json_string(ti->serial));
	json_object_set_new(jt, "library", json_string(ti->lib_desc));
	json_object_set_new(jt, "slot", json_string(ti->slot_desc));
	json_object_set_new(jt, "login_required", json_boolean(ti->login_required));
	json_object_set_new(jt, "pin_count_low", json_boolean(ti->pin_count_low));
	json_object_set_new(jt, "pin_final_try", json_boolean(ti->pin_final_try));
	json_object_set_new(jt, "pin_locked", json_boolean(ti->pin_locked));
	for (j = 0; j < no; j++)
		json_array_append_new(objs, object_json(&ov[j]));
	json_object_set_new(jt, "objects", objs);
	if (r != 0)
		json_object_set_new(jt, "error", json_string(tg_error_msg(err, r)));
	return jt;
}

static void
token_print(const struct tg_p11_token_info *ti, const struct tg_p11_object_info *ov, size_t no,
            int login, int r, const struct tg_error *err)
{
	size_t j;

	printf("  token '%s' manufacturer='%s' model='%s' serial=%s%s%s\n", ti->label,
	       ti->manufacturer, ti->model, ti->serial,
	       ti->pin_locked      ? " PIN-LOCKED"
	       : ti->pin_final_try ? " PIN-FINAL-TRY"
	       : ti->pin_count_low ? " PIN-COUNT-LOW"
	                           : "",
	       ti->login_required && !login ? " (private keys may be hidden: use --login)" : "");
	for (j = 0; j < no; j++)
		object_print(&ov[j]);
	if (r != 0)
		printf("    error: %s\n", tg_error_msg(err, r));
}

/* The tokens (and their objects) of one module; adds to jmods or prints. */
static void
list_module(struct tg_p11 *p, const struct opts *o, const struct tg_p11_uri *u,
            const struct tg_p11_module_info *mi, json_t *jmods)
{
	struct tg_p11_token_info *tv = NULL;
	struct tg_p11_object_info *ov = NULL;
	struct tg_p11_token *t = NULL;
	struct tg_error err;
	const char *base = o->uri ? o->uri : "pkcs11:";
	const char *q = strchr(base, '?');
	char muri[1024], turi[1024];
	size_t nt = 0, no, i;
	json_t *jm = NULL, *toks = NULL;
	int r;

	snprintf(muri, sizeof(muri), "%s%smodule-path=%s", base, q ? "&" : "?", mi->path);
	tg_error_clear(&err);
	r = tg_p11_tokens_list(p, muri, &tv, &nt, &err);
	if (jmods != NULL) {
		jm = json_object();
		toks = json_array();
		json_object_set_new(jm, "name", json_string(mi->name));
		json_object_set_new(jm, "path", json_string(mi->path));
		json_object_set_new(jm, "tokens", toks);
		if (r != 0)
			json_object_set_new(jm, "error", json_string(tg_error_msg(&err, r)));
		json_array_append_new(jmods, jm);
	} else {
		printf("module %s (%s)\n", mi->name[0] ? mi->name : "-", mi->path);
		if (r != 0)
			printf("  error: %s\n", tg_error_msg(&err, r));
		else if (nt == 0)
			printf("  no tokens\n");
	}
	for (i = 0; i < nt; i++) {
		token_uri(&tv[i], q ? q + 1 : NULL, turi, sizeof(turi));
		tg_error_clear(&err);
		no = 0;
		if (!tv[i].initialized)
			r = tg_error_set(&err, TG_ERR_NOT_FOUND,
			                 "token not initialised (an empty slot of the "
			                 "module); initialise it or ignore it");
		else if ((r = tg_p11_token_open(p, turi, &t, &err)) == 0 && o->login)
			r = tg_p11_token_login(t, u, TG_P11_LOGIN_INTERACTIVE, &err);
		if (r == 0)
			r = tg_p11_token_objects_list(t, &ov, &no, &err);
		if (toks != NULL)
			json_array_append_new(toks, token_json(&tv[i], ov, no, r, &err));
		else
			token_print(&tv[i], ov, no, o->login, r, &err);
		tg_p11_token_free(t);
		t = NULL;
		free(ov);
		ov = NULL;
	}
	free(tv);
}

static int
cmd_list(int argc, char **argv)
{
	struct opts o;
	struct tg_p11 *p = NULL;
	struct tg_p11_uri *u = NULL;
	struct tg_p11_module_info *mv = NULL, one;
	struct tg_error err;
	size_t nm = 0, i;
	json_t *root = NULL, *jmods = NULL;
	const char *mp;
	int r, rc;

	if ((rc = parse("token list", argc, argv, &o)) != 0)
		return rc;
	if (o.help) {
		fputs(usage_list, stdout);
		return TG_EXIT_OK;
	}
	tg_error_clear(&err);
	rc = TG_EXIT_FAIL;
	if ((r = tg_p11_new(&p, &err)) != 0 ||
	    (o.uri && (r = tg_p11_uri_parse(o.uri, &u, &err)) != 0)) {
		rc = tg_cmd_fail("token list", r, &err);
		goto out;
	}
	memset(&one, 0, sizeof(one));
	if ((mp = tg_p11_uri_get(u, TG_P11_URI_MODULE_PATH)) != NULL) {
		snprintf(one.path, sizeof(one.path), "%s", mp);
	} else if (tg_p11_uri_get(u, TG_P11_URI_MODULE_NAME) != NULL ||
	           getenv("TOKENGATE_PKCS11_MODULE") != NULL) {
		/* resolved by the library on load */
		snprintf(one.name, sizeof(one.name), "%s",
		         tg_p11_uri_get(u, TG_P11_URI_MODULE_NAME)
		             ? tg_p11_uri_get(u, TG_P11_URI_MODULE_NAME)
		             : "");
		snprintf(one.path, sizeof(one.path), "%s", tg_p11_default_module());
	} else if ((r = tg_p11_modules_list(&mv, &nm, &err)) != 0) {
		rc = tg_cmd_fail("token list", r, &err);
		goto out;
	}
	if (one.path[0] != '\0') {
		mv = &one;
		nm = 1;
	}
	if (o.json) {
		root = json_object();
		jmods = json_array();
		json_object_set_new(root, "modules", jmods);
	}
	for (i = 0; i < nm; i++)
		list_module(p, &o, u, &mv[i], jmods);
	if (nm == 0 && !o.json)
		printf("no PKCS#11 modules registered with p11-kit (see p11-kit list-modules)\n");
	if (o.json) {
		if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0)
			goto out;
		printf("\n");
	}
	rc = TG_EXIT_OK;
out:
	if (mv != &one)
		free(mv);
	json_decref(root);
	tg_p11_uri_free(u);
	tg_p11_free(p);
	return rc;
}

static int
cmd_keygen(int argc, char **argv)
{
	struct opts o;
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	enum tg_p11_alg alg;
	char *uri = NULL, *pem = NULL;
	struct tg_p11_trust tr;
	int r, rc;

	if ((rc = parse("token keygen", argc, argv, &o)) != 0)
		return rc;
	if (o.help) {
		fputs(usage_keygen, stdout);
		return TG_EXIT_OK;
	}
	if (o.key == NULL)
		return tg_cmd_usage_error("token keygen", "--key URI is required");
	if (o.alg == NULL || tg_p11_alg_parse(o.alg, &alg) != 0)
		return tg_cmd_usage_error("token keygen",
		                          "--algorithm must be ec-p256, ec-p384, rsa-2048 "
		                          "or rsa-3072");
	tg_error_clear(&err);
	rc = TG_EXIT_FAIL;
	if ((r = tg_p11_new(&p, &err)) != 0 ||
	    (r = tg_p11_keygen(p, o.key, alg, TG_P11_KEY_INTERACTIVE, &k, &err)) != 0) {
		rc = tg_cmd_fail("token keygen", r, &err);
		goto out;
	}
	tg_p11_key_trust(k, &tr);
	if (tg_p11_key_uri(k, &uri) != 0 || tg_p11_key_public_pem(k, &pem, &err) != 0) {
		rc = tg_cmd_fail("token keygen", TG_ERR_ALLOC, &err);
		goto out;
	}
	printf("generated %s key on token '%s'\nuri: %s\ntrust: %s (%s)\n%s",
	       tg_p11_alg_name(tg_p11_key_alg(k)),
	       tg_p11_token_get_info(tg_p11_key_token(k))->label, uri,
	       tg_p11_verdict_name(tr.verdict), tr.reason, pem);
	rc = TG_EXIT_OK;
out:
	free(uri);
	free(pem);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

static X509 *
cert_read(const char *path, struct tg_error *err)
{
	FILE *f = fopen(path, "rb");
	X509 *x = NULL;

	if (f == NULL) {
		tg_error_set(err, TG_ERR_IO, "cannot open certificate file '%s'", path);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	if (x == NULL) {
		rewind(f);
		x = d2i_X509_fp(f, NULL);
	}
	fclose(f);
	if (x == NULL)
		tg_error_set(err, TG_ERR_FORMAT,
		             "'%s' holds no X.509 certificate (PEM or DER expected)", path);
	return x;
}

/* What GET METADATA says about one PIV slot. */
struct piv_slot_meta {
	uint8_t slot;
	uint8_t origin;
	EVP_PKEY *pub;
};

#define PIV_SLOTS (TG_PIV_NSLOTS - 1) /* every key slot but F9 */

/*
 * Reads GET METADATA of every PIV key slot (9A, 9C, 9D, 9E, 82-95) of the
 * card in `reader` into v (slots without a key, or without origin, are left
 * out). Done before any PKCS#11 login: closing our PC/SC connection resets
 * the card. Returns how many were read; a card that is not a PIV card with
 * GET METADATA gives 0 and *why.
 */
static size_t
piv_meta_read(const char *reader, struct piv_slot_meta *v, char *why, size_t whysz)
{
	struct tg_pcsc *pc = NULL;
	struct tg_pivc_meta m;
	struct tg_error e;
	size_t n = 0, i;
	uint8_t slot;
	int r;

	memset(&m, 0, sizeof(m));
	tg_error_clear(&e);
	if ((r = tg_pcsc_open(reader, &pc, &e)) != 0 || (r = tg_pivc_select(pc, &e)) != 0) {
		snprintf(why, whysz, "%s", tg_error_msg(&e, r));
		goto out;
	}
	for (i = 0; i < PIV_SLOTS; i++) {
		slot = tg_piv_slot_at(i)->id; /* 9A 9C 9D 9E 82..95, then F9 (not read) */
		tg_error_clear(&e);
		if ((r = tg_pivc_metadata(pc, slot, &m, &e)) == TG_ERR_UNSUPPORTED) {
			snprintf(why, whysz, "%s", tg_error_msg(&e, r));
			break;
		}
		if (r == 0 && m.has_origin && m.pub != NULL) {
			v[n].slot = slot;
			v[n].origin = m.origin;
			v[n++].pub = m.pub;
			m.pub = NULL;
		}
		tg_pivc_meta_clear(&m);
	}
out:
	tg_pivc_meta_clear(&m);
	tg_pcsc_close(pc);
	return n;
}

/*
 * Finds the key like tg_p11_key_find(flags), and on a PKCS#15-emulated
 * token (OpenSC's PIV) adds the card's own evidence of the key's origin
 * first: the PIV metadata of the slot whose public key equals the key's
 * proven public key, from the card in the token's reader (its slot
 * description). Then applies the trust policy of flags.
 */
static int
key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
         struct tg_error *err)
{
	struct piv_slot_meta v[PIV_SLOTS];
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust tr;
	EVP_PKEY *pub = NULL;
	char why[256], ev[64], reader[65];
	size_t n = 0, i;
	int emulated = 0, r;

	why[0] = '\0';
	if ((r = tg_p11_token_open(p, uri, &t, err)) != 0)
		goto out;
	emulated = tg_p11_trust_emulated(tg_p11_token_get_info(t)->model);
	snprintf(reader, sizeof(reader), "%s", tg_p11_token_get_info(t)->slot_desc);
	if (emulated)
		n = piv_meta_read(reader, v, why, sizeof(why));
	if ((r = tg_p11_key_find(p, uri, flags | TG_P11_KEY_DEFER_TRUST, &k, err)) != 0)
		goto out;
	pub = tg_p11_key_public(k);
	for (i = 0; i < n && pub != NULL; i++) {
		if (EVP_PKEY_eq(v[i].pub, pub) != 1)
			continue;
		snprintf(ev, sizeof(ev), "PIV metadata of slot %02X", v[i].slot);
		if (v[i].origin == TG_PIV_ORIGIN_GENERATED)
			(void)tg_p11_key_origin_set(k, TG_P11_ORIGIN_GENERATED, ev);
		else if (v[i].origin == TG_PIV_ORIGIN_IMPORTED)
			(void)tg_p11_key_origin_set(k, TG_P11_ORIGIN_IMPORTED, ev);
		break;
	}
	tg_p11_key_trust(k, &tr);
	if (emulated && tr.origin == TG_P11_ORIGIN_NONE)
		fprintf(stderr, "note: no PIV metadata for this key from reader '%s'%s%s\n", reader,
		        why[0] ? ": " : "", why);
	if (!(flags & TG_P11_KEY_DEFER_TRUST) && (r = tg_p11_key_trust_check(k, flags, err)) != 0)
		goto out;
	*out = k;
	k = NULL;
	r = 0;
out:
	for (i = 0; i < n; i++)
		EVP_PKEY_free(v[i].pub);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_token_free(t);
	return r;
}

/* The trust opt-ins of the command line as tg_p11_key_find flags. */
static unsigned
trust_flags(const struct opts *o)
{
	return (o->allow ? TG_P11_KEY_ALLOW_EXPORTABLE : 0) |
	       (o->allow_imported ? TG_P11_KEY_ALLOW_IMPORTED : 0);
}

static int
cmd_import(int argc, char **argv)
{
	struct opts o;
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	X509 *x = NULL;
	int r, rc;

	if ((rc = parse("token import-cert", argc, argv, &o)) != 0)
		return rc;
	if (o.help) {
		fputs(usage_import, stdout);
		return TG_EXIT_OK;
	}
	if (o.key == NULL || o.cert == NULL)
		return tg_cmd_usage_error("token import-cert",
		                          "--key URI and --cert FILE are required");
	tg_error_clear(&err);
	rc = TG_EXIT_FAIL;
	if ((x = cert_read(o.cert, &err)) == NULL) {
		rc = tg_cmd_fail("token import-cert", err.code, &err);
		goto out;
	}
	if ((r = tg_p11_new(&p, &err)) != 0 ||
	    (r = key_find(p, o.key, TG_P11_KEY_INTERACTIVE | trust_flags(&o), &k, &err)) != 0 ||
	    (r = tg_p11_key_cert_import(k, x, o.label, o.replace, &err)) != 0) {
		rc = tg_cmd_fail("token import-cert", r, &err);
		goto out;
	}
	printf("certificate stored on token '%s' next to key '%s'\n",
	       tg_p11_token_get_info(tg_p11_key_token(k))->label, tg_p11_key_label(k));
	rc = TG_EXIT_OK;
out:
	X509_free(x);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

static int
cmd_export(int argc, char **argv)
{
	struct opts o;
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	EVP_PKEY *pub = NULL;
	struct tg_error err;
	X509 *x = NULL;
	BIO *bio = NULL;
	char *pem = NULL;
	long n = 0;
	int r, rc;

	if ((rc = parse("token export-cert", argc, argv, &o)) != 0)
		return rc;
	if (o.help) {
		fputs(usage_export, stdout);
		return TG_EXIT_OK;
	}
	if (o.key == NULL)
		return tg_cmd_usage_error("token export-cert", "--key URI is required");
	tg_error_clear(&err);
	rc = TG_EXIT_FAIL;
	/* the certificate is public: no trust refusal, and no login unless the
	 * token hides its private keys until then */
	if ((r = tg_p11_new(&p, &err)) == 0) {
		r = tg_p11_key_find(p, o.key, TG_P11_KEY_NO_LOGIN | TG_P11_KEY_DEFER_TRUST, &k,
		                    &err);
		/* a key whose public key needs the login to be proven (a
		 * signature through its handle) is found again logged in */
		if (r == TG_ERR_KEY_NOT_FOUND || (r == 0 && (pub = tg_p11_key_public(k)) == NULL)) {
			tg_p11_key_free(k);
			k = NULL;
			tg_error_clear(&err);
			r = tg_p11_key_find(
			    p, o.key, TG_P11_KEY_INTERACTIVE | TG_P11_KEY_DEFER_TRUST, &k, &err);
		}
		EVP_PKEY_free(pub);
	}
	if (r != 0 || (r = tg_p11_key_cert_get(k, &x, &err)) != 0) {
		rc = tg_cmd_fail("token export-cert", r, &err);
		goto out;
	}
	if (o.out == NULL) {
		if (PEM_write_X509(stdout, x) != 1) {
			rc = tg_cmd_fail("token export-cert", TG_ERR_IO, NULL);
			goto out;
		}
	} else {
		/* through the one atomic writer: a failure leaves no half-written file */
		if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, x) ||
		    (n = BIO_get_mem_data(bio, &pem)) <= 0) {
			rc = tg_cmd_fail("token export-cert", TG_ERR_CRYPTO, NULL);
			goto out;
		}
		if ((r = tg_file_write(o.out, pem, (size_t)n, 0644, 0, &err)) != 0) {
			rc = tg_cmd_fail("token export-cert", r, &err);
			goto out;
		}
	}
	rc = TG_EXIT_OK;
out:
	BIO_free(bio);
	X509_free(x);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

static int
cmd_sign(int argc, char **argv)
{
	struct opts o;
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	struct tg_p11_trust tr;
	uint8_t *sig = NULL;
	size_t sl = 0;
	int r, rc;

	if ((rc = parse("token sign-test", argc, argv, &o)) != 0)
		return rc;
	if (o.help) {
		fputs(usage_sign, stdout);
		return TG_EXIT_OK;
	}
	if (o.key == NULL)
		return tg_cmd_usage_error("token sign-test", "--key URI is required");
	tg_error_clear(&err);
	rc = TG_EXIT_FAIL;
	if ((r = tg_p11_new(&p, &err)) != 0 ||
	    (r = key_find(p, o.key, TG_P11_KEY_INTERACTIVE | trust_flags(&o), &k, &err)) != 0) {
		rc = tg_cmd_fail("token sign-test", r, &err);
		goto out;
	}
	tg_p11_key_trust(k, &tr);
	printf("key: '%s' %s on token '%s'\n", tg_p11_key_label(k),
	       tg_p11_alg_name(tg_p11_key_alg(k)),
	       tg_p11_token_get_info(tg_p11_key_token(k))->label);
	printf("trust: %s: %s\n  sensitive=%s extractable=%s never_extractable=%s "
	       "always_sensitive=%s local=%s\n",
	       tg_p11_verdict_name(tr.verdict), tr.reason, tri(tr.sensitive), tri(tr.extractable),
	       tri(tr.never_extractable), tri(tr.always_sensitive), tri(tr.local));
	if ((r = tg_p11_key_sign_test(k, o.pss, (const uint8_t *)SIGN_TEST_MSG,
	                              strlen(SIGN_TEST_MSG), &sig, &sl, &err)) != 0) {
		rc = tg_cmd_fail("token sign-test", r, &err);
		goto out;
	}
	printf("signature: %zu bytes (%s, SHA-256), verified with the public key: ok\n", sl,
	       o.pss ? "RSA-PSS" : "default padding");
	rc = TG_EXIT_OK;
out:
	free(sig);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}

int
tg_cmd_token(int argc, char **argv)
{
	static const struct tg_cmd subs[] = {
	    {"list", "", cmd_list},          {"keygen", "", cmd_keygen},
	    {"import-cert", "", cmd_import}, {"export-cert", "", cmd_export},
	    {"sign-test", "", cmd_sign},
	};
	size_t i;

	if (argc < 2) {
		fputs(usage_main, stderr);
		return TG_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, stdout);
		return TG_EXIT_OK;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	}
	return tg_cmd_usage_error("token", "unknown subcommand '%s'", argv[1]);
}
