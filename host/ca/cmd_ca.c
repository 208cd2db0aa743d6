/* cmd_ca.c — `tokengate ca`: the token-backed certificate authority. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "tg_att.h"
#include "tg_ca_io.h"
#include "tg_ca_issue.h"
#include "tg_ca_policy.h"
#include "tg_ca_record.h"
#include "tg_ca_store.h"
#include "tg_cmd.h"
#include "tg_hex.h"
#include "tg_prov.h"

#define CA_MAX_INTERMEDIATE_FILES 16

static const char va_usage[] =
    "usage: tokengate ca verify-attestation --roots DIR --attestation FILE\n"
    "           --intermediate FILE [--intermediate FILE...] [--pubkey FILE]\n"
    "\n"
    "Verifies a Yubico-format PIV attestation: the attestation certificate\n"
    "is signed by the F9 device certificate (the first certificate of the\n"
    "first --intermediate file), which chains through the other\n"
    "intermediates to a root in DIR (every *.pem, *.crt, *.cer, *.der).\n"
    "Prints the facts as one JSON object: slot, key_algorithm, serial,\n"
    "firmware, pin_policy, touch_policy, form_factor, attestation_sha256.\n"
    "Certificates are read as PEM or DER.\n"
    "\n"
    "  --roots DIR          trusted root certificates\n"
    "  --attestation FILE   the slot attestation certificate (INS F9 output)\n"
    "  --intermediate FILE  the F9 device certificate, then intermediates\n"
    "  --pubkey FILE        also require the attested key to equal this key\n"
    "                       (public key, certificate or CSR)\n"
    "Exit codes: 0 verified, 1 not verified (the reason on stderr), 2 usage.\n";

static const char init_usage[] =
    "usage: tokengate ca init --dir DIR --trust-domain TD\n"
    "           [--attestation-roots DIR] [--key pkcs11:URI]\n"
    "\n"
    "Creates a CA in DIR: ca.pem (give it to gates as --client-ca), the key\n"
    "(ca.key, mode 0600, or on an HSM when --key names one: found, or\n"
    "generated as EC P-256 when absent), policy.yaml and issued/.\n"
    "\n"
    "  --dir DIR                the CA directory (created, mode 0700)\n"
    "  --trust-domain TD        SPIFFE trust domain, e.g. example.org\n"
    "  --attestation-roots DIR  trusted token vendor roots (default:\n"
    "                           DIR/attestation-roots/, created empty)\n"
    "  --key pkcs11:URI         keep the CA key on an HSM\n"
    "Exit codes: 0 created, 1 failure, 2 usage.\n";

static const char issue_usage[] =
    "usage: tokengate ca issue --dir DIR --csr FILE --id spiffe://TD/(dev|svc)/NAME\n"
    "           [--attestation FILE --intermediate FILE...] [--hsm-key pkcs11:URI]\n"
    "           [--validity DURATION] --out FILE [--json]\n"
    "\n"
    "Verifies the CSR's signature, the key's provenance (an attestation:\n"
    "level device-attested; or an HSM key on this host: level hsm-operator)\n"
    "and the CA policy, then issues a leaf certificate with the identity as\n"
    "its one URI SAN and the key-provenance extension, and records it in\n"
    "DIR/issued/.\n"
    "\n"
    "  --dir DIR             the CA directory\n"
    "  --csr FILE            PKCS#10 request, PEM or DER, signed by the key\n"
    "  --id URI              the identity: spiffe://TD/dev/NAME or .../svc/NAME\n"
    "  --attestation FILE    the token's slot attestation certificate; without\n"
    "                        it, the attestation and F9 certificate the CSR\n"
    "                        carries (extensions 1.3.6.1.4.1.41482.3.11 and .2)\n"
    "  --intermediate FILE   its F9 device certificate first, then intermediates\n"
    "                        (only intermediates when the CSR carries the F9)\n"
    "  --hsm-key pkcs11:URI  the key on an HSM of this host that policy.yaml's\n"
    "                        hsm_tokens lists (PIN: pin-source= in the URI or\n"
    "                        TOKENGATE_PIN; pin-value= is refused)\n"
    "  --validity DURATION   e.g. 24h, 7d (default and maximum: policy.yaml)\n"
    "  --out FILE            where to write the certificate (PEM)\n"
    "  --json                print the result as one JSON object: the fields\n"
    "                        of 'ca show' (identity, serial, issuer, not_before,\n"
    "                        not_after, sha256_fingerprint, provenance with its\n"
    "                        level) and cert (the --out path) and record (its\n"
    "                        copy in DIR/issued/)\n"
    "Exit codes: 0 issued, 1 refused or failed (the reason on stderr; also when\n"
    "the result cannot be printed), 2 usage.\n";

static const char revoke_usage[] =
    "usage: tokengate ca revoke --dir DIR (--serial HEX | --cert FILE)\n"
    "           [--reason REASON]\n"
    "\n"
    "Revokes a certificate this CA issued (see 'tokengate ca list'); the\n"
    "next 'tokengate ca crl' lists it, with the reason as its CRL reason code\n"
    "(RFC 5280 5.3.1). Revocation is permanent.\n"
    "\n"
    "  --dir DIR        the CA directory\n"
    "  --serial HEX     the certificate's serial as 'ca show' and 'ca list'\n"
    "                   print it (any case; 0x and colons are ignored)\n"
    "  --cert FILE      the certificate itself (PEM or DER); refused when this\n"
    "                   CA did not issue it\n"
    "  --reason REASON  why, in any case: unspecified (the default, which\n"
    "                   the CRL leaves out), keyCompromise,\n"
    "                   affiliationChanged, superseded,\n"
    "                   cessationOfOperation or privilegeWithdrawn\n"
    "Exit codes: 0 revoked, 1 failure, 2 usage.\n";

static const char list_usage[] =
    "usage: tokengate ca list --dir DIR [--status valid|revoked|expired] [--json]\n"
    "\n"
    "Lists the certificates this CA issued, oldest first, with their status:\n"
    "valid, revoked (with the reason and date) or expired. Text: one line per\n"
    "certificate, SERIAL STATUS NOT_AFTER IDENTITY [REASON REVOKED_AT].\n"
    "--json: an array of objects with the fields of 'ca show' plus status,\n"
    "and revoked_at and reason for a revoked certificate.\n"
    "\n"
    "  --dir DIR        the CA directory\n"
    "  --status STATUS  only the certificates with this status\n"
    "  --json           JSON instead of text\n"
    "Exit codes: 0 listed (also when none), 1 failure, 2 usage.\n";

static const char crl_usage[] =
    "usage: tokengate ca crl --dir DIR --out FILE\n"
    "\n"
    "Writes a signed CRL (PEM, valid 7 days) of every revoked certificate.\n"
    "Exit codes: 0 written, 1 failure, 2 usage.\n";

static const char show_usage[] =
    "usage: tokengate ca show --cert FILE\n"
    "\n"
    "Prints a certificate as one JSON object, with the fields DIR/issued/*.json\n"
    "uses: identity (its URI SAN), serial (upper-case hex, as 'ca list' prints\n"
    "it and 'ca revoke --serial' takes it), issuer, not_before, not_after,\n"
    "sha256_fingerprint and provenance, the decoded key-provenance extension\n"
    "(version, level, token_serial, pin_policy, touch_policy, form_factor,\n"
    "attestation_sha256, token_manufacturer, token_model) or null. It does\n"
    "not verify the certificate.\n"
    "Exit codes: 0 shown, 1 failure, 2 usage.\n";

/* Every option of every `ca` command; each command says which it takes. */
enum ca_opt {
	O_DIR,
	O_CSR,
	O_ID,
	O_ATT,
	O_INTER,
	O_HSM_KEY,
	O_VALIDITY,
	O_OUT,
	O_CERT,
	O_SERIAL,
	O_REASON,
	O_ROOTS,
	O_PUBKEY,
	O_TD,
	O_ATT_ROOTS,
	O_KEY,
	O_JSON,
	O_STATUS,
	O_COUNT,
};

#define BIT(o) (1u << (o))
/* The table tgcore's option parser reads: an option's id is its
 * enum ca_opt + 1 (ids start at 1). */
static const struct tg_cli_opt ca_opts[] = {
    {"dir", TG_CLI_ARG_REQUIRED, O_DIR + 1},
    {"csr", TG_CLI_ARG_REQUIRED, O_CSR + 1},
    {"id", TG_CLI_ARG_REQUIRED, O_ID + 1},
    {"attestation", TG_CLI_ARG_REQUIRED, O_ATT + 1},
    {"intermediate", TG_CLI_ARG_MANY, O_INTER + 1},
    {"hsm-key", TG_CLI_ARG_REQUIRED, O_HSM_KEY + 1},
    {"validity", TG_CLI_ARG_REQUIRED, O_VALIDITY + 1},
    {"out", TG_CLI_ARG_REQUIRED, O_OUT + 1},
    {"cert", TG_CLI_ARG_REQUIRED, O_CERT + 1},
    {"serial", TG_CLI_ARG_REQUIRED, O_SERIAL + 1},
    {"reason", TG_CLI_ARG_REQUIRED, O_REASON + 1},
    {"roots", TG_CLI_ARG_REQUIRED, O_ROOTS + 1},
    {"pubkey", TG_CLI_ARG_REQUIRED, O_PUBKEY + 1},
    {"trust-domain", TG_CLI_ARG_REQUIRED, O_TD + 1},
    {"attestation-roots", TG_CLI_ARG_REQUIRED, O_ATT_ROOTS + 1},
    {"key", TG_CLI_ARG_REQUIRED, O_KEY + 1},
    {"json", TG_CLI_ARG_NONE, O_JSON + 1},
    {"status", TG_CLI_ARG_REQUIRED, O_STATUS + 1},
    {NULL, 0, 0},
};

/* The parsed command line of one `ca` command. */
struct ca_args {
	const char *what; /* "ca issue", for messages */
	const char *val[O_COUNT];
	char *inter[CA_MAX_INTERMEDIATE_FILES];
	int ninter;
	unsigned given;
};

struct ca_cmd {
	const char *name;
	const char *usage;
	unsigned takes; /* options it accepts */
	unsigned needs; /* options it requires */
	int (*run)(struct ca_args *a);
};

/* "--a, --b and --c are required" for the bits of needs. */
static int
needs_error(const char *what, unsigned needs)
{
	char msg[256];
	size_t used = 0;
	int i, left = __builtin_popcount(needs);

	msg[0] = '\0';
	for (i = 0; i < O_COUNT && used < sizeof(msg); i++) {
		if (!(needs & BIT(i)))
			continue;
		left--;
		used += (size_t)snprintf(msg + used, sizeof(msg) - used, "--%s%s", ca_opts[i].name,
		                         left == 0 ? "" : (left == 1 ? " and " : ", "));
	}
	return tg_cmd_usage_error(what, "%s %s required", msg,
	                          __builtin_popcount(needs) == 1 ? "is" : "are");
}

/*
 * Parses argv for c into a through tgcore's option table (an unknown,
 * repeated or valueless option is refused there; --intermediate may be
 * repeated). Returns TG_EXIT_OK with *done 0 to run the command, or the
 * exit code with *done 1 (--help printed, or a usage error reported: an
 * option c does not take, a missing one, an argument).
 */
static int
ca_args_parse(const struct ca_cmd *c, int argc, char **argv, struct ca_args *a, int *done)
{
	struct tg_cli_getopt g;
	const char *v;
	int ch = TG_CLI_BAD, o, rc = TG_EXIT_USAGE;

	*done = 1;
	if (tg_cli_getopt_init(&g, TG_CMD_PROG, a->what, ca_opts, NULL, 0, argc, argv) != 0) {
		rc = tg_cmd_fail(a->what, TG_ERR_INTERNAL, NULL);
		goto out;
	}
	while ((ch = tg_cli_next(&g, &v)) > 0) {
		o = ch - 1;
		if (!(c->takes & BIT(o))) {
			rc = tg_cmd_usage_error(a->what, "--%s does not apply to %s",
			                        ca_opts[o].name, a->what);
			goto out;
		}
		if (o == O_INTER) {
			if (a->ninter == CA_MAX_INTERMEDIATE_FILES) {
				rc = tg_cmd_usage_error(a->what, "too many --intermediate");
				goto out;
			}
			a->inter[a->ninter++] = (char *)v;
		}
		a->val[o] = v != NULL ? v : "";
		a->given |= BIT(o);
	}
	if (ch == TG_CLI_HELP) {
		fputs(c->usage, stdout);
		rc = TG_EXIT_OK;
		goto out;
	}
	if (ch != TG_CLI_END)
		goto out;
	if ((a->given & c->needs) != c->needs) {
		rc = needs_error(a->what, c->needs);
		goto out;
	}
	rc = TG_EXIT_OK;
	*done = 0;
out:
	return rc;
}

/* Appends every certificate of the --intermediate files to *all (created). */
static int
inter_read_all(char **files, int nfiles, STACK_OF(X509) * *all, struct tg_error *err)
{
	int i, r = 0;

	if ((*all = sk_X509_new_null()) == NULL)
		return tg_error_set(err, TG_ERR_ALLOC, "out of memory");
	for (i = 0; i < nfiles && r == 0; i++)
		r = tg_ca_certs_read(files[i], *all, err);
	return r;
}

/* Reads the files of --intermediate: first cert is F9, the rest intermediates. */
static int
inter_read(char **files, int nfiles, X509 **f9, STACK_OF(X509) * *rest, struct tg_error *err)
{
	int r;

	if ((r = inter_read_all(files, nfiles, rest, err)) != 0)
		return r;
	*f9 = sk_X509_shift(*rest);
	return 0;
}

/* The serial as a JSON number (YubiKey serials are 32-bit); a value beyond
 * JSON's integer range as a decimal string; null when absent. */
static json_t *
serial_json(const struct tg_att_facts *f)
{
	char buf[24];

	if (!f->has_serial)
		return json_null();
	if (f->serial <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)f->serial);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)f->serial);
	return json_string(buf);
}

static int
cmd_verify(struct ca_args *a)
{
	struct tg_att_roots *roots = NULL;
	STACK_OF(X509) *rest = NULL;
	X509 *att = NULL, *f9 = NULL;
	EVP_PKEY *pub = NULL;
	struct tg_att_facts f;
	struct tg_error err;
	json_t *j = NULL;
	char sha[65], ff[8];
	int r;

	tg_error_clear(&err);
	if ((r = tg_ca_cert_read(a->val[O_ATT], &att, &err)) != 0 ||
	    (r = inter_read(a->inter, a->ninter, &f9, &rest, &err)) != 0 ||
	    (a->val[O_PUBKEY] != NULL &&
	     (r = tg_ca_pubkey_read(a->val[O_PUBKEY], &pub, &err)) != 0) ||
	    (r = tg_att_roots_load(a->val[O_ROOTS], &roots, &err)) != 0 ||
	    (r = tg_att_verify(roots, att, f9, rest, pub, &f, &err)) != 0)
		goto out;
	tg_hex_encode(f.sha256, sizeof(f.sha256), sha, sizeof(sha));
	snprintf(ff, sizeof(ff), "0x%02x", f.form_factor);
	j = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:s}", "slot", f.slot, "key_algorithm",
	              f.key_algorithm, "serial", serial_json(&f), "firmware",
	              f.has_firmware ? json_string(f.firmware_str) : json_null(), "pin_policy",
	              tg_att_pin_name(f.pin_policy), "touch_policy",
	              tg_att_touch_name(f.touch_policy), "form_factor",
	              f.has_form_factor ? json_string(ff) : json_null(), "attestation_sha256", sha);
	r = tg_ca_json_print(j);
out:
	json_decref(j);
	tg_att_roots_free(roots);
	EVP_PKEY_free(pub);
	X509_free(att);
	X509_free(f9);
	sk_X509_pop_free(rest, X509_free);
	return r != 0 ? tg_cmd_fail(a->what, r, &err) : TG_EXIT_OK;
}

static int
cmd_init(struct ca_args *a)
{
	struct tg_ca_init_opts o;
	struct tg_error err;
	int r;

	memset(&o, 0, sizeof(o));
	tg_error_clear(&err);
	o.dir = a->val[O_DIR];
	o.trust_domain = a->val[O_TD];
	o.roots_dir = a->val[O_ATT_ROOTS];
	o.key_uri = a->val[O_KEY];
	if (o.key_uri != NULL && strncmp(o.key_uri, "pkcs11:", 7) != 0)
		return tg_cmd_usage_error(a->what, "--key must be a pkcs11: URI");
	if ((r = tg_ca_store_init(&o, &err)) != 0)
		return tg_cmd_fail(a->what, r, &err);
	printf("CA created in %s; give %s/ca.pem to gates as --client-ca\n", o.dir, o.dir);
	return TG_EXIT_OK;
}

/*
 * The attestation for `ca issue`: --attestation FILE with the F9 first in
 * --intermediate; else the attestation and F9 the CSR carries in its
 * extensions (Yubico / TameMyCerts format), every --intermediate then
 * being a further intermediate. Nothing (and 0) when neither is given.
 */
static int
provenance_read(struct tg_ca_issue_req *req, const char *att_file, char **inter, int ninter,
                struct tg_error *err)
{
	int r;

	if (req->hsm_key_uri != NULL)
		return 0;
	if (att_file != NULL) {
		if ((r = tg_ca_cert_read(att_file, &req->att, err)) != 0)
			return r;
		return inter_read(inter, ninter, &req->f9, &req->intermediates, err);
	}
	r = tg_att_from_csr(req->csr, &req->att, &req->f9, err);
	if (r == TG_ERR_NOT_FOUND)
		return 0;
	if (r != 0)
		return r;
	return inter_read_all(inter, ninter, &req->intermediates, err);
}

/* What `ca issue` prints once the certificate is written: text or JSON. */
static int
issue_report(struct ca_args *a, X509 *leaf, const char *record, const struct tg_prov *prov,
             struct tg_error *err)
{
	char hex[TG_CA_SERIAL_HEX_MAX + 1];
	json_t *j = NULL;
	int r;

	if (a->given & BIT(O_JSON)) {
		if ((r = tg_ca_cert_json(leaf, &j, err)) != 0)
			goto out;
		if (json_object_set_new(j, "cert", json_string(a->val[O_OUT])) != 0 ||
		    json_object_set_new(j, "record", json_string(record)) != 0) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
		if ((r = tg_ca_json_print(j)) != 0 || fflush(stdout) != 0)
			r = tg_error_set(err, TG_ERR_IO, "cannot print the result: %s",
			                 strerror(errno));
		goto out;
	}
	if (tg_ca_serial_hex(X509_get0_serialNumber(leaf), hex, sizeof(hex)) != 0)
		snprintf(hex, sizeof(hex), "?");
	if (printf("issued %s to %s (level %s, serial %s)\n", a->val[O_OUT], a->val[O_ID],
	           tg_prov_level_name(prov->level), hex) < 0 ||
	    fflush(stdout) != 0)
		r = tg_error_set(err, TG_ERR_IO, "cannot print the result: %s", strerror(errno));
	else
		r = 0;
out:
	json_decref(j);
	return r;
}

static int
cmd_issue(struct ca_args *a)
{
	char record[4200], hex[TG_CA_SERIAL_HEX_MAX + 1];
	struct tg_ca_issue_req req;
	struct tg_ca_store *s = NULL;
	struct tg_prov prov;
	struct tg_error err;
	X509 *leaf = NULL;
	int rc = TG_EXIT_FAIL, r;

	memset(&req, 0, sizeof(req));
	tg_error_clear(&err);
	req.id = a->val[O_ID];
	if ((req.hsm_key_uri = a->val[O_HSM_KEY]) != NULL)
		req.flags |= TG_CA_ISSUE_NO_PIN_VALUE;
	if (a->val[O_VALIDITY] != NULL &&
	    tg_ca_duration_parse(a->val[O_VALIDITY], &req.validity) != 0)
		return tg_cmd_usage_error(a->what,
		                          "--validity '%s' is not a duration like 24h or 7d",
		                          a->val[O_VALIDITY]);
	if (a->val[O_ATT] != NULL && a->ninter == 0)
		return tg_cmd_usage_error(a->what, "--attestation needs --intermediate "
		                                   "(the F9 device certificate)");
	if (req.hsm_key_uri != NULL && a->ninter > 0)
		return tg_cmd_usage_error(a->what, "--intermediate goes with an attestation, "
		                                   "not --hsm-key");
	if (a->val[O_ATT] != NULL && req.hsm_key_uri != NULL)
		return tg_cmd_usage_error(a->what, "give --attestation or --hsm-key, not both");
	if ((r = tg_ca_store_open(a->val[O_DIR], 1, &s, &err)) != 0 ||
	    (r = tg_ca_csr_read(a->val[O_CSR], &req.csr, &err)) != 0 ||
	    (r = provenance_read(&req, a->val[O_ATT], a->inter, a->ninter, &err)) != 0 ||
	    (r = tg_ca_issue(s, &req, &leaf, &prov, &err)) != 0) {
		rc = tg_cmd_fail(a->what, r, &err);
		goto out;
	}
	/* issued and recorded from here on: a failure names the recorded copy */
	if (tg_ca_serial_hex(X509_get0_serialNumber(leaf), hex, sizeof(hex)) != 0)
		snprintf(hex, sizeof(hex), "?");
	snprintf(record, sizeof(record), "%s/issued/%s.pem", a->val[O_DIR], hex);
	if ((r = tg_ca_pem_write(a->val[O_OUT], leaf, NULL, NULL, &err)) != 0 ||
	    (r = issue_report(a, leaf, record, &prov, &err)) != 0) {
		tg_error_wrap(
		    &err, r,
		    "certificate %s was issued and recorded as %s, but the command did not "
		    "finish (copy it from there, or revoke it)",
		    hex, record);
		rc = tg_cmd_fail(a->what, r, &err);
		goto out;
	}
	rc = TG_EXIT_OK;
out:
	X509_free(leaf);
	X509_REQ_free(req.csr);
	X509_free(req.att);
	X509_free(req.f9);
	sk_X509_pop_free(req.intermediates, X509_free);
	tg_ca_store_free(s);
	return rc;
}

/* The serial --serial names, or that of the certificate --cert names, which
 * this CA must have issued. */
static int
revoke_serial(struct tg_ca_store *s, struct ca_args *a, char *hex, size_t n, struct tg_error *err)
{
	X509 *x = NULL;
	int r;

	if (a->val[O_SERIAL] != NULL) {
		/* canonical when it is a serial at all; else tg_ca_store_revoke says why */
		if (tg_ca_serial_norm(a->val[O_SERIAL], hex, n) != 0)
			snprintf(hex, n, "%s", a->val[O_SERIAL]);
		return 0;
	}
	if ((r = tg_ca_cert_read(a->val[O_CERT], &x, err)) != 0)
		goto out;
	if ((r = tg_ca_store_cert_check(s, x, err)) != 0) {
		tg_error_wrap(err, r, "'%s'", a->val[O_CERT]);
		goto out;
	}
	if (tg_ca_serial_hex(X509_get0_serialNumber(x), hex, n) != 0)
		r = tg_error_set(err, TG_ERR_FORMAT, "'%s': unreadable serial", a->val[O_CERT]);
out:
	X509_free(x);
	return r;
}

static int
cmd_revoke(struct ca_args *a)
{
	char hex[TG_CA_SERIAL_HEX_MAX + 8];
	enum tg_ca_reason reason = TG_CA_REASON_UNSPECIFIED;
	struct tg_ca_store *s = NULL;
	struct tg_error err;
	int r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	if (((a->given & BIT(O_SERIAL)) != 0) == ((a->given & BIT(O_CERT)) != 0))
		return tg_cmd_usage_error(a->what,
		                          "give --serial HEX or --cert FILE (one of them)");
	if (a->val[O_REASON] != NULL &&
	    tg_ca_reason_parse(a->val[O_REASON], strlen(a->val[O_REASON]), &reason) != 0)
		return tg_cmd_usage_error(a->what, "--reason '%s' is not accepted; use one of %s",
		                          a->val[O_REASON], TG_CA_REASON_NAMES);
	if ((r = tg_ca_store_open(a->val[O_DIR], 0, &s, &err)) != 0 ||
	    (r = revoke_serial(s, a, hex, sizeof(hex), &err)) != 0 ||
	    (r = tg_ca_store_revoke(s, hex, reason, &err)) != 0) {
		rc = tg_cmd_fail(a->what, r, &err);
		goto out;
	}
	printf("revoked %s (%s); run 'tokengate ca crl' and distribute the CRL\n", hex,
	       tg_ca_reason_name(reason));
	rc = TG_EXIT_OK;
out:
	tg_ca_store_free(s);
	return rc;
}

/* One `ca list` entry: JSON object, or a text line printed. */
static int
list_one(const struct tg_ca_issued *e, json_t *arr, struct tg_error *err)
{
	char na[32], id[2100], at[32];
	ASN1_TIME *t = NULL;
	json_t *j = NULL;
	int r;

	if (e->status == TG_CA_STATUS_REVOKED &&
	    (t = ASN1_TIME_set(NULL, (time_t)e->revoked_at)) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (t != NULL)
		tg_ca_time_str(t, at, sizeof(at));
	if (arr != NULL) {
		if ((r = tg_ca_cert_json(e->cert, &j, err)) != 0)
			goto out;
		if (json_object_set_new(j, "status", json_string(tg_ca_status_name(e->status))) !=
		        0 ||
		    (t != NULL &&
		     (json_object_set_new(j, "reason", json_string(tg_ca_reason_name(e->reason))) !=
		          0 ||
		      json_object_set_new(j, "revoked_at", json_string(at)) != 0)) ||
		    json_array_append(arr, j) != 0) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
		r = 0;
		goto out;
	}
	if (tg_ca_id_from_cert(e->cert, id, sizeof(id), NULL) != 0)
		snprintf(id, sizeof(id), "-");
	tg_ca_time_str(X509_get0_notAfter(e->cert), na, sizeof(na));
	if (t != NULL)
		r = printf("%s  %-7s  %s  %s  %s %s\n", e->serial, tg_ca_status_name(e->status), na,
		           id, tg_ca_reason_name(e->reason), at);
	else
		r = printf("%s  %-7s  %s  %s\n", e->serial, tg_ca_status_name(e->status), na, id);
	r = r < 0 ? TG_ERR_IO : 0;
out:
	ASN1_TIME_free(t);
	json_decref(j);
	return r;
}

static int
cmd_list(struct ca_args *a)
{
	struct tg_ca_issued *list = NULL;
	struct tg_ca_store *s = NULL;
	enum tg_ca_status want = TG_CA_STATUS_VALID;
	struct tg_error err;
	json_t *arr = NULL;
	size_t n = 0, i;
	int r = 0;

	tg_error_clear(&err);
	if (a->val[O_STATUS] != NULL && tg_ca_status_parse(a->val[O_STATUS], &want) != 0)
		return tg_cmd_usage_error(a->what, "--status '%s' is not valid, revoked or expired",
		                          a->val[O_STATUS]);
	if ((r = tg_ca_store_open(a->val[O_DIR], 0, &s, &err)) != 0 ||
	    (r = tg_ca_store_list(s, time(NULL), &list, &n, &err)) != 0)
		goto out;
	if ((a->given & BIT(O_JSON)) && (arr = json_array()) == NULL) {
		r = tg_error_set(&err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (i = 0; i < n && r == 0; i++) {
		if (a->val[O_STATUS] == NULL || list[i].status == want)
			r = list_one(&list[i], arr, &err);
	}
	if (r == 0 && arr != NULL)
		r = tg_ca_json_print(arr);
out:
	json_decref(arr);
	tg_ca_issued_free(list, n);
	tg_ca_store_free(s);
	return r != 0 ? tg_cmd_fail(a->what, r, &err) : TG_EXIT_OK;
}

static int
cmd_crl(struct ca_args *a)
{
	struct tg_ca_store *s = NULL;
	X509_CRL *crl = NULL;
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	if ((r = tg_ca_store_open(a->val[O_DIR], 1, &s, &err)) == 0 &&
	    (r = tg_ca_store_crl(s, &crl, &err)) == 0)
		r = tg_ca_pem_write(a->val[O_OUT], NULL, NULL, crl, &err);
	X509_CRL_free(crl);
	tg_ca_store_free(s);
	return r != 0 ? tg_cmd_fail(a->what, r, &err) : TG_EXIT_OK;
}

static int
cmd_show(struct ca_args *a)
{
	struct tg_error err;
	json_t *j = NULL;
	X509 *x = NULL;
	int r;

	tg_error_clear(&err);
	if ((r = tg_ca_cert_read(a->val[O_CERT], &x, &err)) == 0 &&
	    (r = tg_ca_cert_json(x, &j, &err)) == 0)
		r = tg_ca_json_print(j);
	json_decref(j);
	X509_free(x);
	return r != 0 ? tg_cmd_fail(a->what, r, &err) : TG_EXIT_OK;
}

static const struct ca_cmd ca_cmds[] = {
    {"verify-attestation", va_usage, BIT(O_ROOTS) | BIT(O_ATT) | BIT(O_INTER) | BIT(O_PUBKEY),
     BIT(O_ROOTS) | BIT(O_ATT) | BIT(O_INTER), cmd_verify},
    {"init", init_usage, BIT(O_DIR) | BIT(O_TD) | BIT(O_ATT_ROOTS) | BIT(O_KEY),
     BIT(O_DIR) | BIT(O_TD), cmd_init},
    {"issue", issue_usage,
     BIT(O_DIR) | BIT(O_CSR) | BIT(O_ID) | BIT(O_ATT) | BIT(O_INTER) | BIT(O_HSM_KEY) |
         BIT(O_VALIDITY) | BIT(O_OUT) | BIT(O_JSON),
     BIT(O_DIR) | BIT(O_CSR) | BIT(O_ID) | BIT(O_OUT), cmd_issue},
    {"list", list_usage, BIT(O_DIR) | BIT(O_STATUS) | BIT(O_JSON), BIT(O_DIR), cmd_list},
    {"revoke", revoke_usage, BIT(O_DIR) | BIT(O_SERIAL) | BIT(O_CERT) | BIT(O_REASON), BIT(O_DIR),
     cmd_revoke},
    {"crl", crl_usage, BIT(O_DIR) | BIT(O_OUT), BIT(O_DIR) | BIT(O_OUT), cmd_crl},
    {"show", show_usage, BIT(O_CERT), BIT(O_CERT), cmd_show},
};

/* Runs ca_cmds[idx] on its argv (argv[0] its name). */
static int
ca_run(size_t idx, int argc, char **argv)
{
	const struct ca_cmd *c = &ca_cmds[idx];
	struct ca_args a;
	char what[64];
	int rc, done;

	memset(&a, 0, sizeof(a));
	snprintf(what, sizeof(what), "ca %s", c->name);
	a.what = what;
	rc = ca_args_parse(c, argc, argv, &a, &done);
	if (!done)
		rc = c->run(&a);
	/* output that did not reach stdout (a full disk, a closed pipe) is a failure */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == TG_EXIT_OK) {
		fprintf(stderr, "tokengate %s: cannot write the output: %s\n", what,
		        strerror(errno));
		rc = TG_EXIT_FAIL;
	}
	return rc;
}

/* tgcore's dispatch calls a subcommand with its argv only. */
#define CA_RUN(name, idx)                                                                          \
	static int name(int argc, char **argv)                                                     \
	{                                                                                          \
		return ca_run(idx, argc, argv);                                                    \
	}
CA_RUN(run_verify, 0)
CA_RUN(run_init, 1)
CA_RUN(run_issue, 2)
CA_RUN(run_list, 3)
CA_RUN(run_revoke, 4)
CA_RUN(run_crl, 5)
CA_RUN(run_show, 6)

static const struct tg_cli_cmd ca_subs[] = {
    {"verify-attestation", "verify a PIV attestation and print its facts (JSON)", run_verify},
    {"init", "create a CA directory", run_init},
    {"issue", "check a CSR and its key's provenance, issue a leaf", run_issue},
    {"list", "the issued certificates and their status", run_list},
    {"revoke", "revoke an issued certificate", run_revoke},
    {"crl", "write the CA's certificate revocation list", run_crl},
    {"show", "print a certificate's identity and provenance (JSON)", run_show},
    {NULL, NULL, NULL},
};

static const struct tg_cli_group ca_group = {
    .prog = TG_CMD_PROG,
    .what = "ca",
    .intro = "The token-backed certificate authority: it certifies only keys whose\n"
             "provenance it verified (a token attestation, or an HSM key's trust\n"
             "attributes) and records it in the key-provenance extension.\n\n",
    .cmds = ca_subs,
};

int
tg_cmd_ca(int argc, char **argv)
{
	return tg_cli_dispatch(&ca_group, argc, argv);
}
