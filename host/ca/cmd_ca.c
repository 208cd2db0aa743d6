/* cmd_ca.c — `tokengate ca`: the token-backed certificate authority. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "tg_att.h"
#include "tg_ca_io.h"
#include "tg_ca_issue.h"
#include "tg_ca_policy.h"
#include "tg_ca_store.h"
#include "tg_cmd.h"
#include "tg_hex.h"
#include "tg_prov.h"

#define CA_MAX_INTERMEDIATE_FILES 16

static const char ca_usage[] =
    "usage: tokengate ca <command> [options]\n"
    "\n"
    "The token-backed certificate authority: it certifies only keys whose\n"
    "provenance it verified (a token attestation, or an HSM key's trust\n"
    "attributes) and records it in the key-provenance extension.\n"
    "\n"
    "commands:\n"
    "  verify-attestation  verify a PIV attestation and print its facts (JSON)\n"
    "  init                create a CA directory\n"
    "  issue               check a CSR and its key's provenance, issue a leaf\n"
    "  revoke              revoke an issued certificate\n"
    "  crl                 write the CA's certificate revocation list\n"
    "  show                print a certificate's identity and provenance (JSON)\n"
    "\n"
    "'tokengate ca <command> --help' describes each command.\n"
    "Exit codes: 0 success, 1 failure, 2 bad command line.\n";

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
    "           [--validity DURATION] --out FILE\n"
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
    "Exit codes: 0 issued, 1 refused (the reason on stderr), 2 usage.\n";

static const char revoke_usage[] =
    "usage: tokengate ca revoke --dir DIR --serial HEX\n"
    "\n"
    "Revokes a certificate this CA issued (see DIR/issued/); the next\n"
    "'tokengate ca crl' lists it.\n"
    "Exit codes: 0 revoked, 1 failure, 2 usage.\n";

static const char crl_usage[] =
    "usage: tokengate ca crl --dir DIR --out FILE\n"
    "\n"
    "Writes a signed CRL (PEM, valid 7 days) of every revoked certificate.\n"
    "Exit codes: 0 written, 1 failure, 2 usage.\n";

static const char show_usage[] =
    "usage: tokengate ca show --cert FILE\n"
    "\n"
    "Prints a certificate's identity (its URI SAN), serial, validity and\n"
    "decoded key-provenance extension (level, token serial, PIN and touch\n"
    "policies, form factor, attestation SHA-256, token manufacturer and\n"
    "model) as one JSON object. It does not verify\n"
    "the certificate.\n"
    "Exit codes: 0 shown, 1 failure, 2 usage.\n";

static int
help(const char *text)
{
	fputs(text, stdout);
	return TG_EXIT_OK;
}

static int
json_print(json_t *j)
{
	char *s;

	if (j == NULL || (s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		return TG_ERR_ALLOC;
	puts(s);
	free(s);
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

static int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"roots", required_argument, NULL, 'r'},
	    {"attestation", required_argument, NULL, 'a'},
	    {"intermediate", required_argument, NULL, 'i'},
	    {"pubkey", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = "ca verify-attestation";
	char *roots_dir = NULL, *att_file = NULL, *pub_file = NULL;
	char *inter[CA_MAX_INTERMEDIATE_FILES];
	struct tg_att_roots *roots = NULL;
	STACK_OF(X509) *rest = NULL;
	X509 *att = NULL, *f9 = NULL;
	EVP_PKEY *pub = NULL;
	struct tg_att_facts f;
	struct tg_error err;
	json_t *j = NULL;
	char sha[65], ff[8];
	int c, ninter = 0, rc = TG_EXIT_FAIL, r;

	tg_error_clear(&err);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			roots_dir = optarg;
			break;
		case 'a':
			att_file = optarg;
			break;
		case 'i':
			if (ninter == CA_MAX_INTERMEDIATE_FILES)
				return tg_cmd_usage_error(what, "too many --intermediate");
			inter[ninter++] = optarg;
			break;
		case 'p':
			pub_file = optarg;
			break;
		case 'h':
			return help(va_usage);
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	if (roots_dir == NULL || att_file == NULL || ninter == 0)
		return tg_cmd_usage_error(what, "--roots, --attestation and "
		                                "--intermediate are required");
	if ((r = tg_ca_cert_read(att_file, &att, &err)) != 0 ||
	    (r = inter_read(inter, ninter, &f9, &rest, &err)) != 0 ||
	    (pub_file != NULL && (r = tg_ca_pubkey_read(pub_file, &pub, &err)) != 0) ||
	    (r = tg_att_roots_load(roots_dir, &roots, &err)) != 0 ||
	    (r = tg_att_verify(roots, att, f9, rest, pub, &f, &err)) != 0) {
		rc = tg_cmd_fail(what, r, &err);
		goto out;
	}
	tg_hex_encode(f.sha256, sizeof(f.sha256), sha, sizeof(sha));
	snprintf(ff, sizeof(ff), "0x%02x", f.form_factor);
	j = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:s}", "slot", f.slot, "key_algorithm",
	              f.key_algorithm, "serial", serial_json(&f), "firmware",
	              f.has_firmware ? json_string(f.firmware_str) : json_null(), "pin_policy",
	              tg_att_pin_name(f.pin_policy), "touch_policy",
	              tg_att_touch_name(f.touch_policy), "form_factor",
	              f.has_form_factor ? json_string(ff) : json_null(), "attestation_sha256", sha);
	if (json_print(j) != 0) {
		rc = tg_cmd_fail(what, TG_ERR_ALLOC, NULL);
		goto out;
	}
	rc = TG_EXIT_OK;
out:
	json_decref(j);
	tg_att_roots_free(roots);
	EVP_PKEY_free(pub);
	X509_free(att);
	X509_free(f9);
	sk_X509_pop_free(rest, X509_free);
	return rc;
}

static int
cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"trust-domain", required_argument, NULL, 't'},
	    {"attestation-roots", required_argument, NULL, 'r'},
	    {"key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = "ca init";
	struct tg_ca_init_opts o;
	struct tg_error err;
	int c, r;

	memset(&o, 0, sizeof(o));
	tg_error_clear(&err);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.dir = optarg;
			break;
		case 't':
			o.trust_domain = optarg;
			break;
		case 'r':
			o.roots_dir = optarg;
			break;
		case 'k':
			o.key_uri = optarg;
			break;
		case 'h':
			return help(init_usage);
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	if (o.dir == NULL || o.trust_domain == NULL)
		return tg_cmd_usage_error(what, "--dir and --trust-domain are required");
	if (o.key_uri != NULL && strncmp(o.key_uri, "pkcs11:", 7) != 0)
		return tg_cmd_usage_error(what, "--key must be a pkcs11: URI");
	if ((r = tg_ca_store_init(&o, &err)) != 0)
		return tg_cmd_fail(what, r, &err);
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

static int
cmd_issue(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"csr", required_argument, NULL, 'c'},
	    {"id", required_argument, NULL, 'I'},
	    {"attestation", required_argument, NULL, 'a'},
	    {"intermediate", required_argument, NULL, 'i'},
	    {"hsm-key", required_argument, NULL, 'k'},
	    {"validity", required_argument, NULL, 'v'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = "ca issue";
	char *dir = NULL, *csr_file = NULL, *att_file = NULL, *out_file = NULL;
	char *inter[CA_MAX_INTERMEDIATE_FILES], hex[80];
	struct tg_ca_issue_req req;
	struct tg_ca_store *s = NULL;
	struct tg_prov prov;
	struct tg_error err;
	X509 *leaf = NULL;
	int c, ninter = 0, rc = TG_EXIT_FAIL, r;

	memset(&req, 0, sizeof(req));
	tg_error_clear(&err);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'c':
			csr_file = optarg;
			break;
		case 'I':
			req.id = optarg;
			break;
		case 'a':
			att_file = optarg;
			break;
		case 'i':
			if (ninter == CA_MAX_INTERMEDIATE_FILES)
				return tg_cmd_usage_error(what, "too many --intermediate");
			inter[ninter++] = optarg;
			break;
		case 'k':
			req.hsm_key_uri = optarg;
			req.flags |= TG_CA_ISSUE_NO_PIN_VALUE;
			break;
		case 'v':
			if (tg_ca_duration_parse(optarg, &req.validity) != 0)
				return tg_cmd_usage_error(what,
				                          "--validity '%s' is not a "
				                          "duration like 24h or 7d",
				                          optarg);
			break;
		case 'o':
			out_file = optarg;
			break;
		case 'h':
			return help(issue_usage);
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	if (dir == NULL || csr_file == NULL || req.id == NULL || out_file == NULL)
		return tg_cmd_usage_error(what, "--dir, --csr, --id and --out are required");
	if (att_file != NULL && ninter == 0)
		return tg_cmd_usage_error(what, "--attestation needs --intermediate "
		                                "(the F9 device certificate)");
	if (req.hsm_key_uri != NULL && ninter > 0)
		return tg_cmd_usage_error(what, "--intermediate goes with an attestation, "
		                                "not --hsm-key");
	if (att_file != NULL && req.hsm_key_uri != NULL)
		return tg_cmd_usage_error(what, "give --attestation or --hsm-key, not both");
	if ((r = tg_ca_store_open(dir, 1, &s, &err)) != 0 ||
	    (r = tg_ca_csr_read(csr_file, &req.csr, &err)) != 0 ||
	    (r = provenance_read(&req, att_file, inter, ninter, &err)) != 0 ||
	    (r = tg_ca_issue(s, &req, &leaf, &prov, &err)) != 0 ||
	    (r = tg_ca_pem_write(out_file, leaf, NULL, NULL, &err)) != 0) {
		rc = tg_cmd_fail(what, r, &err);
		goto out;
	}
	if (tg_ca_serial_hex(X509_get0_serialNumber(leaf), hex, sizeof(hex)) != 0)
		snprintf(hex, sizeof(hex), "?");
	printf("issued %s to %s (level %s, serial %s)\n", out_file, req.id,
	       tg_prov_level_name(prov.level), hex);
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

static int
cmd_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"serial", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = "ca revoke";
	char *dir = NULL, *serial = NULL;
	struct tg_ca_store *s = NULL;
	struct tg_error err;
	int c, r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			serial = optarg;
			break;
		case 'h':
			return help(revoke_usage);
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	if (dir == NULL || serial == NULL)
		return tg_cmd_usage_error(what, "--dir and --serial are required");
	if ((r = tg_ca_store_open(dir, 0, &s, &err)) != 0 ||
	    (r = tg_ca_store_revoke(s, serial, &err)) != 0) {
		rc = tg_cmd_fail(what, r, &err);
		goto out;
	}
	printf("revoked %s; run 'tokengate ca crl' and distribute the CRL\n", serial);
	rc = TG_EXIT_OK;
out:
	tg_ca_store_free(s);
	return rc;
}

static int
cmd_crl(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = "ca crl";
	char *dir = NULL, *out_file = NULL;
	struct tg_ca_store *s = NULL;
	X509_CRL *crl = NULL;
	struct tg_error err;
	int c, r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'o':
			out_file = optarg;
			break;
		case 'h':
			return help(crl_usage);
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	if (dir == NULL || out_file == NULL)
		return tg_cmd_usage_error(what, "--dir and --out are required");
	if ((r = tg_ca_store_open(dir, 1, &s, &err)) != 0 ||
	    (r = tg_ca_store_crl(s, &crl, &err)) != 0 ||
	    (r = tg_ca_pem_write(out_file, NULL, NULL, crl, &err)) != 0) {
		rc = tg_cmd_fail(what, r, &err);
		goto out;
	}
	rc = TG_EXIT_OK;
out:
	X509_CRL_free(crl);
	tg_ca_store_free(s);
	return rc;
}

static json_t *
time_json(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!ASN1_TIME_to_tm(t, &tm))
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static int
cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *what = "ca show";
	char *cert_file = NULL, id[2100], hex[80], sha[65], ff[8], issuer[512];
	struct tg_prov p;
	struct tg_error err;
	json_t *j = NULL, *pj = NULL;
	X509 *x = NULL;
	int c, r, rc = TG_EXIT_FAIL;

	tg_error_clear(&err);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cert_file = optarg;
			break;
		case 'h':
			return help(show_usage);
		default:
			return tg_cmd_bad_option(what, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(what, "unexpected argument '%s'", argv[optind]);
	if (cert_file == NULL)
		return tg_cmd_usage_error(what, "--cert is required");
	if ((r = tg_ca_cert_read(cert_file, &x, &err)) != 0 ||
	    (r = tg_ca_id_from_cert(x, id, sizeof(id), &err)) != 0) {
		rc = tg_cmd_fail(what, r, &err);
		goto out;
	}
	r = tg_prov_from_cert(x, &p, &err);
	if (r != 0 && r != TG_ERR_NOT_FOUND) {
		rc = tg_cmd_fail(what, r, &err);
		goto out;
	}
	if (r == 0) {
		tg_hex_encode(p.att_sha256, sizeof(p.att_sha256), sha, sizeof(sha));
		snprintf(ff, sizeof(ff), "0x%02x", p.form_factor);
		pj = json_pack(
		    "{s:i, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "version", p.version, "level",
		    tg_prov_level_name(p.level), "token_serial", p.serial, "pin_policy",
		    tg_att_pin_name(p.pin_policy), "touch_policy",
		    tg_att_touch_name(p.touch_policy), "form_factor",
		    p.has_form_factor ? json_string(ff) : json_null(), "attestation_sha256",
		    p.has_att_sha256 ? json_string(sha) : json_null(), "token_manufacturer",
		    p.has_token_model ? json_string(p.token_manufacturer) : json_null(),
		    "token_model", p.has_token_model ? json_string(p.token_model) : json_null());
	} else {
		pj = json_null();
	}
	if (tg_ca_serial_hex(X509_get0_serialNumber(x), hex, sizeof(hex)) != 0)
		snprintf(hex, sizeof(hex), "?");
	j = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "identity", id, "serial", hex, "issuer",
	              tg_ca_name_str(X509_get_issuer_name(x), issuer, sizeof(issuer)), "not_before",
	              time_json(X509_get0_notBefore(x)), "not_after",
	              time_json(X509_get0_notAfter(x)), "provenance", pj);
	pj = NULL;
	if (json_print(j) != 0) {
		rc = tg_cmd_fail(what, TG_ERR_ALLOC, NULL);
		goto out;
	}
	rc = TG_EXIT_OK;
out:
	json_decref(pj);
	json_decref(j);
	X509_free(x);
	return rc;
}

int
tg_cmd_ca(int argc, char **argv)
{
	static const struct {
		const char *name;
		tg_cmd_fn run;
	} subs[] = {
	    {"verify-attestation", cmd_verify},
	    {"init", cmd_init},
	    {"issue", cmd_issue},
	    {"revoke", cmd_revoke},
	    {"crl", cmd_crl},
	    {"show", cmd_show},
	};
	size_t i;

	if (argc < 2)
		return tg_cmd_usage_error("ca", "a command is needed");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return help(ca_usage);
	opterr = 0; /* tg_cmd_bad_option reports unknown options */
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	}
	return tg_cmd_usage_error("ca", "unknown command '%s'", argv[1]);
}
