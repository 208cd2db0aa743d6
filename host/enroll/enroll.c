/*
 * enroll.c — `tokengate enroll`: generate a key on a token and get it a
 * certificate from the token-backed CA (the enrollment flow).
 *
 * This file: the command line, the CA steps shared by both flows (the
 * policy precheck before the token is touched, tg_ca_issue, --out-dir
 * files and the printed commands, --json results) and the HSM flow: find
 * the key or generate it (non-exportable), the CSR signed with it, the
 * local CA (level hsm-operator) or files, the certificate imported next to
 * the key. The PIV flow (libykpiv) is in piv.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <ykpiv/ykpiv.h>

#include "enroll-int.h"
#include "tg_att.h"
#include "tg_ca_hsm.h"
#include "tg_ca_io.h"
#include "tg_ca_issue.h"
#include "tg_ca_policy.h"
#include "tg_ca_store.h"
#include "tg_cmd.h"
#include "tg_csr.h"
#include "tg_hex.h"
#include "tg_p11.h"
#include "tg_piv.h"
#include "tg_prov.h"

#define WHAT         TG_ENROLL_WHAT
#define MGM_ENV      TG_ENROLL_MGM_ENV
#define PATH_MAX_LEN 4096
#define URI_MAX      8192
#define CMD_MAX      TG_ENROLL_CMD_MAX

static const char usage_text[] =
    "usage: tokengate enroll --reader NAME --slot 9a|9c|9d|9e --id spiffe://TD/(dev|svc)/NAME\n"
    "           [--algorithm ec-p256|ec-p384|rsa-2048] [--pin-policy never|once|always]\n"
    "           [--touch-policy never|always|cached] [--validity DURATION]\n"
    "           [--mgm-key HEX] [--allow-default-mgm-key] [--pin-source SRC]\n"
    "           [--existing-key | --force] [--cert-out FILE] [--json]\n"
    "           (--ca-dir DIR | --out-dir DIR)\n"
    "       tokengate enroll --reader NAME --slot SLOT --install-cert FILE [--mgm-key HEX]\n"
    "           [--allow-default-mgm-key] [--json]\n"
    "       tokengate enroll --key pkcs11:URI --id spiffe://... [--algorithm ALG]\n"
    "           [--validity DURATION] [--cert-out FILE] [--json] (--ca-dir DIR | --out-dir DIR)\n"
    "\n"
    "Generates a key on a token and gets it a certificate from the token-backed\n"
    "CA. PIV token (--reader): the key is generated in the slot, the token's\n"
    "attestation and slot-F9 certificate are fetched, a request is signed on\n"
    "the token; the local CA (--ca-dir) then issues a certificate of level\n"
    "device-attested, which is stored on the token next to the key (OpenSC's\n"
    "PKCS#11 module then shows both). With --out-dir the request, attestation\n"
    "and F9 certificate are written for an offline CA instead, and the command\n"
    "to run there is printed; install its certificate with --install-cert.\n"
    "HSM key (--key pkcs11:URI): the key is found, or generated non-exportable\n"
    "when absent; the CA (on this host) checks its attributes (level\n"
    "hsm-operator) and the certificate is imported with the key's CKA_ID.\n"
    "\n"
    "  --reader NAME           PC/SC reader: exact name or a unique part of it\n"
    "  --slot SLOT             9a (authentication), 9c, 9d or 9e\n"
    "  --id URI                the identity, spiffe://TD/dev/NAME or .../svc/NAME\n"
    "  --algorithm ALG         ec-p256 (default), ec-p384 or rsa-2048\n"
    "  --pin-policy P          once (default), always or never (the CA decides\n"
    "                          which it accepts)\n"
    "  --touch-policy T        never (default), always or cached\n"
    "  --validity DURATION     e.g. 24h, 7d (default and maximum: the CA's policy)\n"
    "  --mgm-key HEX           the token's management key (else TOKENGATE_MGM_KEY)\n"
    "  --allow-default-mgm-key accept the factory default management key (without\n"
    "                          a key given, use it)\n"
    "  --pin-source SRC        file:PATH, PATH or env:NAME (else TOKENGATE_PIN,\n"
    "                          else a prompt on the terminal)\n"
    "  --existing-key          do not generate: enroll the key already in the slot\n"
    "                          (it must have been generated on the token)\n"
    "  --force                 generate even when the slot holds a key or a\n"
    "                          certificate (both are replaced; without it an\n"
    "                          occupied slot is refused)\n"
    "  --ca-dir DIR            issue with the CA in DIR (tokengate ca init)\n"
    "  --out-dir DIR           write csr.pem, attestation.pem, f9.pem to DIR\n"
    "  --cert-out FILE         also write the issued certificate (PEM) to FILE\n"
    "  --install-cert FILE     store an issued certificate on the token\n"
    "  --key pkcs11:URI        an HSM key (object= and/or id=; PIN from the URI's\n"
    "                          pin-value/pin-source or TOKENGATE_PIN)\n"
    "  --json                  print the result as one JSON object on stdout:\n"
    "                          identity, slot, reader, key_uri, algorithm, key\n"
    "                          (generated|existing), token_serial; issued: serial,\n"
    "                          level, pin_policy, touch_policy, certificate_path,\n"
    "                          certificate_sha256, stored_on_token; --out-dir: csr,\n"
    "                          attestation, f9 and next (the commands to run)\n"
    "\n"
    "A key that needs a touch (--touch-policy always|cached) makes enroll print\n"
    "\"Touch the token now\" before the token signs. When enroll fails after the\n"
    "new key was generated, it says what the slot holds and prints the\n"
    "--existing-key command that finishes the enrollment with that key.\n"
    "\n"
    "Exit codes: 0 enrolled, 1 failed (the reason on stderr), 2 bad command line.\n";

/* ---- small helpers ---- */

/* One of the four PIV key slots by name, in either case (not a retired
 * slot, not F9). */
static int
slot_parse(const char *s, uint8_t *slot)
{
	const struct tg_piv_slot *p = tg_piv_slot_by_name(s);
	int r = TG_ERR_INVALID_ARG;

	if (p != NULL && (p->id == TG_PIV_SLOT_AUTH || p->id == TG_PIV_SLOT_SIGN ||
	                  p->id == TG_PIV_SLOT_KEYMGM || p->id == TG_PIV_SLOT_CARDAUTH)) {
		*slot = p->id;
		r = 0;
	}
	return r;
}

/* An algorithm by its command-line name: the EC curves and RSA 2048, which
 * every YubiKey 5 generates (RSA 3072 needs firmware 5.7). */
static int
alg_parse(const char *s, uint8_t *alg)
{
	const struct tg_piv_alg *a = tg_piv_alg_by_cli(s);
	int r = TG_ERR_INVALID_ARG;

	if (a != NULL && (a->kind == TG_PIV_KIND_EC || a->id == TG_PIV_ALG_RSA2048)) {
		*alg = a->id;
		r = 0;
	}
	return r;
}

const char *
tg_enroll_alg_name(uint8_t alg)
{
	const struct tg_piv_alg *a = tg_piv_alg_by_id(alg);

	return a != NULL && a->cli != NULL ? a->cli : "unknown-algorithm";
}

/*
 * Appends " FLAG" (and " VALUE", quoted for sh with tg_cmd_sh_quote, when
 * value is not NULL) to the command in buf (size n). TG_ERR_NO_SPACE or
 * TG_ERR_ALLOC.
 */
int
tg_enroll_cmd_add(char *buf, size_t n, const char *flag, const char *value)
{
	char *q = NULL;
	size_t used = strlen(buf);
	int w, r = TG_ERR_ALLOC;

	if (value != NULL && (q = tg_cmd_sh_quote(value)) == NULL)
		goto out;
	r = TG_ERR_NO_SPACE;
	w = snprintf(buf + used, n - used, " %s%s%s", flag, q != NULL ? " " : "",
	             q != NULL ? q : "");
	if (w < 0 || (size_t)w >= n - used)
		goto out;
	r = 0;
out:
	free(q);
	return r;
}

/* "tokengate enroll --reader R --slot S" into buf. */
int
tg_enroll_cmd_start(const struct tg_enroll_opts *o, char *buf, size_t n)
{
	char slot[8];

	snprintf(slot, sizeof(slot), "%02x", o->slot);
	snprintf(buf, n, "tokengate enroll");
	return tg_enroll_cmd_add(buf, n, "--reader", o->reader) != 0 ||
	               tg_enroll_cmd_add(buf, n, "--slot", slot) != 0
	           ? TG_ERR_NO_SPACE
	           : 0;
}

/* The card's PIN from --pin-source SRC (else TOKENGATE_PIN, else a
 * prompt): the shared PIN sources (tg_pin_src.h), read now. */
int
tg_enroll_pin_read(const struct tg_enroll_opts *o, const char *reader, char **pin,
                   struct tg_error *err)
{
	struct tg_pin_src *src = NULL;
	struct tg_pin p;
	char who[300];
	int r;

	memset(&p, 0, sizeof(p));
	snprintf(who, sizeof(who), "the token in '%s'", reader);
	if ((r = tg_pin_src_new(NULL, o->pin_source, &src, err)) != 0)
		goto out;
	r = tg_pin_src_read(src, who, TG_PIN_INTERACTIVE, &p, err);
	if (r == TG_ERR_NO_PIN && tg_pin_src_kind(src) == TG_PIN_DEFAULT) {
		r = tg_error_set(
		    err, r,
		    "the token in '%s' needs its PIN and none is available: give "
		    "--pin-source file:PATH (or env:NAME), set TOKENGATE_PIN, or run on "
		    "a terminal",
		    reader);
	}
	if (r == 0 && (*pin = strdup(p.v)) == NULL)
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
out:
	tg_pin_wipe(&p);
	tg_pin_src_free(src);
	return r;
}

/* tg_ca_issue with the local CA; *leaf and *prov on success. */
int
tg_enroll_ca_issue(const struct tg_enroll_opts *o, X509_REQ *csr, X509 *att, X509 *f9, X509 **leaf,
                   struct tg_prov *prov, struct tg_error *err)
{
	struct tg_ca_issue_req req;
	struct tg_ca_store *st = NULL;
	int r;

	memset(&req, 0, sizeof(req));
	req.csr = csr;
	req.id = o->id;
	req.att = att;
	req.f9 = f9;
	req.hsm_key_uri = att == NULL ? o->key_uri : NULL;
	req.validity = o->validity;
	if ((r = tg_ca_store_open(o->ca_dir, 1, &st, err)) != 0)
		goto out;
	if ((r = tg_ca_issue(st, &req, leaf, prov, err)) != 0) {
		tg_error_wrap(err, r, "the CA in %s refused the request", o->ca_dir);
		goto out;
	}
out:
	tg_ca_store_free(st);
	return r;
}

/*
 * Before the token is touched: the CA opens (key included), the identity is
 * in its trust domain, an HSM key's module is one the CA lists in hsm_tokens
 * and, for a key generated now, the PIN and touch
 * policies asked for are ones the CA allows, so a mistake does not cost the
 * slot's key. tg_ca_issue checks all of it again (and everything else).
 */
static int
ca_precheck(const struct tg_enroll_opts *o, struct tg_error *err)
{
	const struct tg_ca_policy *pol;
	struct tg_ca_store *st = NULL;
	struct tg_att_facts f;
	char name[TG_CA_NAME_MAX + 1];
	int r;

	if ((r = tg_ca_store_open(o->ca_dir, 1, &st, err)) != 0)
		goto out;
	pol = tg_ca_store_policy(st);
	if ((r = tg_ca_id_check(o->id, pol->trust_domain, name, sizeof(name), err)) != 0)
		goto out;
	/* an HSM the CA does not list: refused before a key is generated */
	if (o->key_uri != NULL && (r = tg_ca_hsm_precheck(pol, o->key_uri, err)) != 0) {
		tg_error_wrap(err, r,
		              "the CA in %s refuses this HSM key (nothing was changed on the "
		              "token)",
		              o->ca_dir);
		goto out;
	}
	if (o->reader == NULL || o->existing || o->install != NULL)
		goto out;
	memset(&f, 0, sizeof(f));
	f.pin_policy = (enum tg_att_pin)o->pin_policy;
	f.touch_policy = (enum tg_att_touch)o->touch_policy;
	/* the CA decides (err NULL: the message is worded for a key not
	 * generated yet) */
	if (tg_ca_policy_check(pol, &f, TG_CA_CHECK_PIN, NULL) != 0) {
		r = tg_error_set(
		    err, TG_ERR_POLICY,
		    "the CA in %s does not allow PIN policy '%s' (pin_policies in its "
		    "policy.yaml); choose another --pin-policy; nothing was changed on "
		    "the token",
		    o->ca_dir, tg_att_pin_name(f.pin_policy));
		goto out;
	}
	if (tg_ca_policy_check(pol, &f, TG_CA_CHECK_TOUCH, NULL) != 0) {
		r = tg_error_set(err, TG_ERR_POLICY,
		                 "the CA in %s does not allow touch policy '%s' (touch_policies in "
		                 "its policy.yaml); choose another --touch-policy; nothing was "
		                 "changed on the token",
		                 o->ca_dir, tg_att_touch_name(f.touch_policy));
		goto out;
	}
out:
	tg_ca_store_free(st);
	return r;
}

void
tg_enroll_issued_print(const struct tg_enroll_opts *o, X509 *leaf, const struct tg_prov *prov)
{
	char hex[80];

	if (tg_ca_serial_hex(X509_get0_serialNumber(leaf), hex, sizeof(hex)) != 0)
		snprintf(hex, sizeof(hex), "?");
	printf("issued a certificate to %s (level %s, serial %s, token serial %s, PIN policy "
	       "%s, touch policy %s)\n",
	       o->id, tg_prov_level_name(prov->level), hex, prov->serial,
	       tg_att_pin_name(prov->pin_policy), tg_att_touch_name(prov->touch_policy));
}

/*
 * The URI without its pin-value (replaced by pin-source=env:TOKENGATE_PIN,
 * so the printed command still finds a PIN without showing it), formatted
 * by the PKCS#11 layer (tg_p11_uri_format); a URI without a pin-value as
 * given.
 */
static int
uri_redact(const char *uri, char *buf, size_t n)
{
	struct tg_p11_uri *u = NULL;
	char *s = NULL;
	int r;

	if ((r = tg_p11_uri_parse(uri, &u, NULL)) != 0)
		goto out;
	/* without a pin-value the URI is printed as the user spelled it */
	if (tg_p11_uri_get(u, TG_P11_URI_PIN_VALUE) != NULL &&
	    (r = tg_p11_uri_format(u, "env:TOKENGATE_PIN", &s, NULL)) != 0)
		goto out;
	r = TG_ERR_NO_SPACE;
	if (strlen(s != NULL ? s : uri) >= n)
		goto out;
	snprintf(buf, n, "%s", s != NULL ? s : uri);
	r = 0;
out:
	free(s);
	tg_p11_uri_free(u);
	return r;
}

/* Sets key to a string or null (value NULL) in j; 0 or -1. */
static int
json_set_str(json_t *j, const char *key, const char *value)
{
	return json_object_set_new(j, key, value != NULL ? json_string(value) : json_null());
}

/* The fields every --json result has (identity, slot, reader, key). */
static json_t *
json_base(const struct tg_enroll_opts *o, const struct tg_enroll_result *res)
{
	char slot[8], serial[16];
	json_t *j = json_object();

	snprintf(slot, sizeof(slot), "%02x", o->slot);
	snprintf(serial, sizeof(serial), "%u", res->token_serial);
	if (j == NULL || json_set_str(j, "identity", o->id) != 0 ||
	    json_set_str(j, "slot", o->reader != NULL ? slot : NULL) != 0 ||
	    json_set_str(j, "reader", o->reader) != 0 ||
	    json_set_str(j, "key_uri", o->reader == NULL ? o->key_uri : NULL) != 0 ||
	    json_set_str(j, "algorithm", res->algorithm) != 0 ||
	    json_set_str(j, "key", res->key) != 0 ||
	    json_set_str(j, "token_serial", res->token_serial != 0 ? serial : NULL) != 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Prints j on stdout (indented, a newline after); frees it. */
int
tg_enroll_json_put(json_t *j, struct tg_error *err)
{
	int r = 0;

	if (j == NULL || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
	    fputc('\n', stdout) == EOF)
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot write the --json result");
	json_decref(j);
	return r;
}

/* --json of an issued certificate (--ca-dir). */
int
tg_enroll_result_json(const struct tg_enroll_opts *o, const struct tg_enroll_result *res,
                      struct tg_error *err)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[80], fp[2 * EVP_MAX_MD_SIZE + 1];
	json_t *j = json_base(o, res);

	if (tg_ca_serial_hex(X509_get0_serialNumber(res->leaf), hex, sizeof(hex)) != 0 ||
	    X509_digest(res->leaf, EVP_sha256(), md, &mdlen) != 1 ||
	    tg_hex_encode(md, mdlen, fp, sizeof(fp)) != 0 || j == NULL ||
	    json_set_str(j, "serial", hex) != 0 ||
	    json_set_str(j, "level", tg_prov_level_name(res->prov->level)) != 0 ||
	    json_set_str(j, "pin_policy", tg_att_pin_name(res->prov->pin_policy)) != 0 ||
	    json_set_str(j, "touch_policy", tg_att_touch_name(res->prov->touch_policy)) != 0 ||
	    json_set_str(j, "certificate_path", o->cert_out) != 0 ||
	    json_set_str(j, "certificate_sha256", fp) != 0 ||
	    json_object_set_new(j, "stored_on_token", json_boolean(res->stored)) != 0) {
		json_decref(j);
		j = NULL;
	}
	return tg_enroll_json_put(j, err);
}

/* Indexes of the values the printed commands carry, each quoted for sh. */
enum { Q_CSR, Q_ID, Q_ATT, Q_F9, Q_CERT, Q_URI, Q_COUNT };

/* The `tokengate enroll --install-cert` command for the CA's answer. */
static int
install_cmd(const struct tg_enroll_opts *o, const char *cert, char *buf, size_t n)
{
	if (tg_enroll_cmd_start(o, buf, n) != 0 ||
	    tg_enroll_cmd_add(buf, n, "--install-cert", cert) != 0 ||
	    (o->allow_default && tg_enroll_cmd_add(buf, n, "--allow-default-mgm-key", NULL) != 0))
		return TG_ERR_NO_SPACE;
	return 0;
}

/* --out-dir: csr.pem (+ attestation.pem, f9.pem) and the commands to run
 * next, every user value quoted for sh (tg_cmd_sh_quote), so pasting them
 * runs exactly what they show (flags that matter, such as
 * --allow-default-mgm-key, kept). */
int
tg_enroll_out_dir_write(const struct tg_enroll_opts *o, X509_REQ *csr, X509 *att, X509 *f9,
                        const struct tg_enroll_result *res, struct tg_error *err)
{
	char csr_p[PATH_MAX_LEN], att_p[PATH_MAX_LEN], f9_p[PATH_MAX_LEN], cert_p[PATH_MAX_LEN];
	char uri[URI_MAX], issue[CMD_MAX], install[CMD_MAX], *q[Q_COUNT] = {NULL};
	const char *v[Q_COUNT];
	json_t *j = NULL;
	int i, r;

	if (mkdir(o->out_dir, 0755) != 0 && access(o->out_dir, W_OK) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot create or write to --out-dir %s: %s",
		                 o->out_dir, strerror(errno));
		goto out;
	}
	snprintf(csr_p, sizeof(csr_p), "%s/csr.pem", o->out_dir);
	snprintf(att_p, sizeof(att_p), "%s/attestation.pem", o->out_dir);
	snprintf(f9_p, sizeof(f9_p), "%s/f9.pem", o->out_dir);
	snprintf(cert_p, sizeof(cert_p), "%s/cert.pem", o->out_dir);
	uri[0] = '\0';
	install[0] = '\0';
	if (att == NULL && (r = uri_redact(o->key_uri, uri, sizeof(uri))) != 0) {
		tg_error_set(err, r, "the key URI is too long to print");
		goto out;
	}
	v[Q_CSR] = csr_p, v[Q_ID] = o->id, v[Q_ATT] = att_p, v[Q_F9] = f9_p;
	v[Q_CERT] = cert_p, v[Q_URI] = uri;
	for (i = 0; i < Q_COUNT; i++) {
		if ((q[i] = tg_cmd_sh_quote(v[i])) == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
	}
	/* the CA loads the URI's module only when its policy.yaml lists it in
	 * hsm_tokens (tg_ca_hsm.h), whatever this command says */
	if (att != NULL)
		snprintf(issue, sizeof(issue),
		         "tokengate ca issue --dir CA_DIR --csr %s --id %s --attestation %s "
		         "--intermediate %s --out %s",
		         q[Q_CSR], q[Q_ID], q[Q_ATT], q[Q_F9], q[Q_CERT]);
	else
		snprintf(issue, sizeof(issue),
		         "tokengate ca issue --dir CA_DIR --csr %s --id %s --hsm-key %s --out %s",
		         q[Q_CSR], q[Q_ID], q[Q_URI], q[Q_CERT]);
	if (att != NULL && (r = install_cmd(o, cert_p, install, sizeof(install))) != 0) {
		tg_error_set(err, r, "the --install-cert command is too long to print");
		goto out;
	}
	if ((r = tg_ca_pem_write(csr_p, NULL, csr, NULL, err)) != 0 ||
	    (att != NULL && (r = tg_ca_pem_write(att_p, att, NULL, NULL, err)) != 0) ||
	    (f9 != NULL && (r = tg_ca_pem_write(f9_p, f9, NULL, NULL, err)) != 0))
		goto out;
	if (o->json) {
		if ((j = json_base(o, res)) == NULL || json_set_str(j, "csr", csr_p) != 0 ||
		    json_set_str(j, "attestation", att != NULL ? att_p : NULL) != 0 ||
		    json_set_str(j, "f9", f9 != NULL ? f9_p : NULL) != 0 ||
		    json_object_set_new(j, "next", json_pack("[s]", issue)) != 0 ||
		    (att != NULL && json_array_append_new(json_object_get(j, "next"),
		                                          json_string(install)) != 0)) {
			json_decref(j);
			j = NULL;
		}
		r = tg_enroll_json_put(j, err);
		goto out;
	}
	printf("wrote %s to %s; on the CA host run:\n  %s\n",
	       att ? "csr.pem, attestation.pem, f9.pem" : "csr.pem", o->out_dir, issue);
	if (att != NULL)
		printf("then store the certificate on the token:\n  %s\n", install);
	r = 0;
out:
	for (i = 0; i < Q_COUNT; i++)
		free(q[i]);
	return r;
}

int
tg_enroll_cert_out_write(const struct tg_enroll_opts *o, X509 *leaf, struct tg_error *err)
{
	if (o->cert_out == NULL)
		return 0;
	return tg_ca_pem_write(o->cert_out, leaf, NULL, NULL, err);
}

/* ---- HSM (PKCS#11) ---- */

/* Finds the key (generating it when absent) and builds the signed CSR. */
static int
hsm_csr(const struct tg_enroll_opts *o, X509_REQ **csr, struct tg_error *err)
{
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	EVP_PKEY *pub = NULL, *evp = NULL;
	unsigned flags = isatty(STDIN_FILENO) ? TG_P11_KEY_INTERACTIVE : 0;
	int r;

	if ((r = tg_p11_new(&p11, err)) != 0)
		goto out;
	r = tg_p11_key_find(p11, o->key_uri, flags, &k, err);
	if (r == TG_ERR_KEY_NOT_FOUND) {
		tg_error_clear(err);
		if ((r = tg_p11_keygen(p11, o->key_uri,
		                       /* tg_p11_alg values are PIV ids */ (enum tg_p11_alg)o->alg,
		                       flags, &k, err)) != 0)
			goto out;
		fprintf(stderr, "generated a non-exportable %s key on the token\n",
		        tg_p11_alg_name(tg_p11_key_alg(k)));
	} else if (r == TG_ERR_KEY_EXPORTABLE) {
		/* the CA certifies no such key, so enroll offers no opt-in */
		tg_error_wrap(err, r,
		              "the CA certifies only keys generated non-exportable on the token "
		              "(enroll takes no --allow-imported or --allow-exportable); name an "
		              "object that does not exist yet and enroll generates one");
		goto out;
	} else if (r != 0) {
		goto out;
	}
	r = TG_ERR_CRYPTO;
	if ((pub = tg_p11_key_public(k)) == NULL || (evp = tg_p11_key_evp(k)) == NULL) {
		tg_error_set(err, r, "cannot use the key '%s' through OpenSSL",
		             tg_p11_key_label(k));
		goto out;
	}
	if ((r = tg_csr_new(o->id, pub, csr, err)) != 0 ||
	    (r = tg_csr_sign_evp(*csr, evp, pub, err)) != 0)
		goto out;
out:
	EVP_PKEY_free(evp);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_free(p11);
	return r;
}

static int
hsm_import(const struct tg_enroll_opts *o, X509 *leaf, struct tg_error *err)
{
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	unsigned flags = isatty(STDIN_FILENO) ? TG_P11_KEY_INTERACTIVE : 0;
	int r;

	if ((r = tg_p11_new(&p11, err)) != 0 ||
	    (r = tg_p11_key_find(p11, o->key_uri, flags, &k, err)) != 0 ||
	    (r = tg_p11_key_cert_import(k, leaf, NULL, 1, err)) != 0)
		goto out;
	if (!o->json)
		printf("stored the certificate on token '%s' with the key's id\n",
		       tg_p11_token_get_info(tg_p11_key_token(k))->label);
out:
	tg_p11_key_free(k);
	tg_p11_free(p11);
	return r;
}

static int
hsm_enroll(const struct tg_enroll_opts *o, struct tg_error *err)
{
	X509_REQ *csr = NULL;
	X509 *leaf = NULL;
	struct tg_prov prov;
	struct tg_enroll_result res;
	int r;

	memset(&res, 0, sizeof(res));
	/* One PKCS#11 context at a time: freeing one finalizes the module for
	 * every other in the process, and the CA opens its own. */
	if ((r = hsm_csr(o, &csr, err)) != 0)
		goto out;
	if (o->out_dir != NULL) {
		r = tg_enroll_out_dir_write(o, csr, NULL, NULL, &res, err);
		goto out;
	}
	if ((r = tg_enroll_ca_issue(o, csr, NULL, NULL, &leaf, &prov, err)) != 0)
		goto out;
	if (!o->json)
		tg_enroll_issued_print(o, leaf, &prov);
	if ((r = tg_enroll_cert_out_write(o, leaf, err)) != 0 ||
	    (r = hsm_import(o, leaf, err)) != 0)
		goto out;
	res.leaf = leaf;
	res.prov = &prov;
	res.stored = 1;
	if (o->json)
		r = tg_enroll_result_json(o, &res, err);
out:
	X509_free(leaf);
	X509_REQ_free(csr);
	return r;
}

/* ---- command line ---- */

enum {
	O_READER = 1,
	O_SLOT,
	O_ID,
	O_ALG,
	O_PIN_POLICY,
	O_TOUCH_POLICY,
	O_VALIDITY,
	O_MGM,
	O_ALLOW_DEFAULT,
	O_PIN_SOURCE,
	O_EXISTING,
	O_CA_DIR,
	O_OUT_DIR,
	O_CERT_OUT,
	O_INSTALL,
	O_KEY,
	O_FORCE,
	O_JSON,
};

static const struct tg_cli_opt enroll_table[] = {
    {"reader", TG_CLI_ARG_REQUIRED, O_READER},
    {"slot", TG_CLI_ARG_REQUIRED, O_SLOT},
    {"id", TG_CLI_ARG_REQUIRED, O_ID},
    {"algorithm", TG_CLI_ARG_REQUIRED, O_ALG},
    {"pin-policy", TG_CLI_ARG_REQUIRED, O_PIN_POLICY},
    {"touch-policy", TG_CLI_ARG_REQUIRED, O_TOUCH_POLICY},
    {"validity", TG_CLI_ARG_REQUIRED, O_VALIDITY},
    {"mgm-key", TG_CLI_ARG_REQUIRED, O_MGM},
    {"allow-default-mgm-key", TG_CLI_ARG_NONE, O_ALLOW_DEFAULT},
    {"pin-source", TG_CLI_ARG_REQUIRED, O_PIN_SOURCE},
    {"existing-key", TG_CLI_ARG_NONE, O_EXISTING},
    {"ca-dir", TG_CLI_ARG_REQUIRED, O_CA_DIR},
    {"out-dir", TG_CLI_ARG_REQUIRED, O_OUT_DIR},
    {"cert-out", TG_CLI_ARG_REQUIRED, O_CERT_OUT},
    {"install-cert", TG_CLI_ARG_REQUIRED, O_INSTALL},
    {"key", TG_CLI_ARG_REQUIRED, O_KEY},
    {"force", TG_CLI_ARG_NONE, O_FORCE},
    {"json", TG_CLI_ARG_NONE, O_JSON},
    {NULL, 0, 0},
};

static const struct tg_cli_hint enroll_hints[] = {
    {"pin", "a PIN is never taken on the command line (ps and shell history would show it): "
            "give --pin-source file:PATH or env:NAME, set TOKENGATE_PIN, or answer the prompt "
            "on a terminal"},
    {NULL, NULL},
};

/* One option with its value into o; 0, or the usage error's exit code. */
static int
opt_set(struct tg_enroll_opts *o, int id, const char *v)
{
	enum tg_att_pin pp;
	enum tg_att_touch tp;
	int rc = 0;

	switch (id) {
	case O_READER:
		o->reader = v;
		break;
	case O_SLOT:
		if (slot_parse(v, &o->slot) != 0)
			rc = tg_cmd_usage_error(WHAT, "--slot '%s': want 9a, 9c, 9d or 9e", v);
		break;
	case O_ID:
		o->id = v;
		break;
	case O_ALG:
		if (alg_parse(v, &o->alg) != 0)
			rc = tg_cmd_usage_error(
			    WHAT, "--algorithm '%s': want ec-p256, ec-p384 or rsa-2048", v);
		o->alg_name = v;
		break;
	case O_PIN_POLICY:
		if (tg_att_pin_parse(v, &pp) != 0 || pp > TG_ATT_PIN_ALWAYS)
			rc = tg_cmd_usage_error(WHAT,
			                        "--pin-policy '%s': want once, always or never", v);
		o->pin_policy = (uint8_t)pp;
		break;
	case O_TOUCH_POLICY:
		if (tg_att_touch_parse(v, &tp) != 0)
			rc = tg_cmd_usage_error(
			    WHAT, "--touch-policy '%s': want never, always or cached", v);
		o->touch_policy = (uint8_t)tp;
		break;
	case O_VALIDITY:
		if (tg_ca_duration_parse(v, &o->validity) != 0)
			rc = tg_cmd_usage_error(
			    WHAT, "--validity '%s' is not a duration like 24h or 7d", v);
		o->validity_text = v;
		break;
	case O_MGM:
		o->mgm_hex = (char *)v; /* wiped once read (mgm_get) */
		break;
	case O_ALLOW_DEFAULT:
		o->allow_default = 1;
		break;
	case O_PIN_SOURCE:
		o->pin_source = v;
		break;
	case O_EXISTING:
		o->existing = 1;
		break;
	case O_CA_DIR:
		o->ca_dir = v;
		break;
	case O_OUT_DIR:
		o->out_dir = v;
		break;
	case O_CERT_OUT:
		o->cert_out = v;
		break;
	case O_INSTALL:
		o->install = v;
		break;
	case O_KEY:
		o->key_uri = v;
		break;
	case O_FORCE:
		o->force = 1;
		break;
	case O_JSON:
		o->json = 1;
		break;
	default:
		break;
	}
	return rc;
}

/* The options that go together, once all are read: TG_CLI_CONTINUE, or
 * the usage error's exit code. */
static int
opts_check(const struct tg_enroll_opts *o)
{
	int rc = TG_CLI_CONTINUE;

	if ((o->reader != NULL) == (o->key_uri != NULL))
		rc = tg_cmd_usage_error(WHAT, "give --reader (a PIV token) or --key (an HSM key)");
	else if (o->reader != NULL && o->slot == 0)
		rc = tg_cmd_usage_error(WHAT, "--reader needs --slot");
	else if (o->install != NULL &&
	         (o->key_uri != NULL || o->ca_dir != NULL || o->out_dir != NULL))
		rc = tg_cmd_usage_error(WHAT, "--install-cert goes with --reader and --slot only");
	else if (o->install != NULL)
		rc = TG_CLI_CONTINUE;
	else if (o->id == NULL)
		rc = tg_cmd_usage_error(WHAT, "--id is required");
	else if ((o->ca_dir != NULL) == (o->out_dir != NULL))
		rc = tg_cmd_usage_error(
		    WHAT, "give --ca-dir DIR (local CA) or --out-dir DIR (offline CA)");
	else if (o->out_dir != NULL && o->cert_out != NULL)
		rc = tg_cmd_usage_error(WHAT, "--cert-out goes with --ca-dir");
	else if (o->key_uri != NULL && o->existing)
		rc = tg_cmd_usage_error(WHAT, "--existing-key is for PIV slots; an HSM key is used "
		                              "when it exists");
	else if (o->existing && o->force)
		rc = tg_cmd_usage_error(WHAT, "--force replaces the slot's key with a new one; "
		                              "--existing-key keeps it: give one of them");
	return rc;
}

/* Parses argv into o: TG_CLI_CONTINUE to enroll, else the exit code
 * (0 after --help, 2 after a usage error). */
static int
opts_parse(int argc, char **argv, struct tg_enroll_opts *o)
{
	struct tg_cli_getopt g;
	const char *v;
	int c = TG_CLI_BAD, rc = TG_EXIT_USAGE;

	memset(o, 0, sizeof(*o));
	o->alg = TG_PIV_ALG_ECCP256;
	o->alg_name = "ec-p256";
	o->pin_policy = TG_PIV_PIN_POLICY_ONCE;
	o->touch_policy = TG_PIV_TOUCH_POLICY_NEVER;
	if (tg_cli_getopt_init(&g, TG_CMD_PROG, WHAT, enroll_table, enroll_hints, 0, argc, argv) !=
	    0) {
		rc = tg_cmd_fail(WHAT, TG_ERR_INTERNAL, NULL);
		goto out;
	}
	while ((c = tg_cli_next(&g, &v)) > 0) {
		if ((rc = opt_set(o, c, v)) != 0)
			goto out;
	}
	if (c == TG_CLI_HELP) {
		fputs(usage_text, stdout);
		rc = TG_EXIT_OK;
	} else if (c == TG_CLI_END) {
		rc = opts_check(o);
	} else {
		rc = TG_EXIT_USAGE;
	}
out:
	return rc;
}

int
tg_cmd_enroll(int argc, char **argv)
{
	struct tg_enroll_opts o;
	struct tg_error err;
	struct tg_enroll_note note;
	char name[TG_CA_NAME_MAX + 1];
	int rc, r;

	tg_error_clear(&err);
	note.text[0] = '\0';
	if ((rc = opts_parse(argc, argv, &o)) != TG_CLI_CONTINUE)
		return rc;
	if (o.id != NULL && (r = tg_ca_id_check(o.id, NULL, name, sizeof(name), &err)) != 0) {
		fprintf(stderr, "tokengate %s: %s\n", WHAT, tg_error_msg(&err, r));
		return TG_EXIT_USAGE;
	}
	if (o.ca_dir != NULL && (r = ca_precheck(&o, &err)) != 0)
		return tg_cmd_fail(WHAT, r, &err);
	if (o.install != NULL)
		r = tg_enroll_piv_install(&o, &err);
	else if (o.reader != NULL)
		r = tg_enroll_piv(&o, &note, &err);
	else
		r = hsm_enroll(&o, &err);
	if (r != 0) {
		rc = tg_cmd_fail(WHAT, r, &err);
		if (note.text[0] != '\0')
			fprintf(stderr, "tokengate %s: %s", WHAT, note.text);
		return rc;
	}
	return TG_EXIT_OK;
}
