/*
 * enroll.c — `tokengate enroll`: generate a key on a token and get it a
 * certificate from the token-backed CA (DESIGN.md, flow 1).
 *
 * PIV token (over PC/SC): SELECT, management key authentication, GENERATE
 * in the slot with the policies, ATTEST, the F9 certificate, VERIFY PIN,
 * the CSR signed on the token and checked here, then the local CA
 * (tg_ca_issue, level device-attested) or files for an offline CA, and the
 * certificate back onto the token (PUT DATA).
 * HSM key (PKCS#11): find the key or generate it (non-exportable), the CSR
 * signed with it, the local CA (level hsm-operator) or files, the
 * certificate imported next to the key.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

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
#include "tg_pcsc.h"
#include "tg_piv.h"
#include "tg_pivc.h"
#include "tg_prov.h"
#include "tg_secret.h"

#define WHAT         "enroll"
#define MGM_ENV      "TOKENGATE_MGM_KEY"
#define DEFAULT_PIN  "123456"
#define PATH_MAX_LEN 4096
#define URI_MAX      8192

/* The factory default management key of YubiKeys (and the simulator). */
static const uint8_t mgm_default[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                        5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

static const char usage_text[] =
    "usage: tokengate enroll --reader NAME --slot 9a|9c|9d|9e --id spiffe://TD/(dev|svc)/NAME\n"
    "           [--algorithm ec-p256|ec-p384|rsa-2048] [--pin-policy never|once|always]\n"
    "           [--touch-policy never|always|cached] [--validity DURATION]\n"
    "           [--mgm-key HEX] [--allow-default-mgm-key] [--pin-source SRC]\n"
    "           [--existing-key] [--cert-out FILE] (--ca-dir DIR | --out-dir DIR)\n"
    "       tokengate enroll --reader NAME --slot SLOT --install-cert FILE [--mgm-key HEX]\n"
    "       tokengate enroll --key pkcs11:URI --id spiffe://... [--algorithm ALG]\n"
    "           [--validity DURATION] [--cert-out FILE] (--ca-dir DIR | --out-dir DIR)\n"
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
    "  --ca-dir DIR            issue with the CA in DIR (tokengate ca init)\n"
    "  --out-dir DIR           write csr.pem, attestation.pem, f9.pem to DIR\n"
    "  --cert-out FILE         also write the issued certificate (PEM) to FILE\n"
    "  --install-cert FILE     store an issued certificate on the token\n"
    "  --key pkcs11:URI        an HSM key (object= and/or id=; PIN from the URI's\n"
    "                          pin-value/pin-source or TOKENGATE_PIN)\n"
    "\n"
    "Exit codes: 0 enrolled, 1 failed (the reason on stderr), 2 bad command line.\n";

struct opts {
	const char *reader, *id, *ca_dir, *out_dir, *cert_out, *install, *key_uri;
	char *mgm_hex; /* argv text, wiped once decoded */
	const char *pin_source, *alg_name;
	uint8_t slot, alg, pin_policy, touch_policy;
	long validity;
	int allow_default, existing;
};

/* The state of one PIV enrollment (freed by piv_state_free). */
struct piv_state {
	struct tg_pcsc *pcsc;
	uint8_t mgm[TG_PIVC_MGM_MAX];
	size_t mgm_len;
	char *pin;
	EVP_PKEY *pub;
	X509 *att, *f9, *leaf;
	X509_REQ *csr;
};

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

/* Builds a pkcs11: URI holding only ?pin-source=SRC, percent-encoded, so
 * the PKCS#11 layer's PIN reader (files, env:, prompt) serves PIV too. */
static int
pin_uri(const char *src, char *buf, size_t n)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t used;
	unsigned char c;

	used = (size_t)snprintf(buf, n, "pkcs11:%s", src != NULL ? "?pin-source=" : "");
	for (; src != NULL && *src != '\0'; src++) {
		c = (unsigned char)*src;
		if (used + 4 > n)
			return TG_ERR_NO_SPACE;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == ':') {
			buf[used++] = (char)c;
		} else {
			buf[used++] = '%';
			buf[used++] = hexd[c >> 4];
			buf[used++] = hexd[c & 0x0F];
		}
	}
	buf[used] = '\0';
	return 0;
}

static int
pin_read(const struct opts *o, const char *reader, char **pin, struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	char uri[URI_MAX];
	int r;

	if ((r = pin_uri(o->pin_source, uri, sizeof(uri))) != 0) {
		tg_error_set(err, r, "--pin-source is too long");
		goto out;
	}
	if ((r = tg_p11_uri_parse(uri, &u, err)) != 0)
		goto out;
	r = tg_p11_pin_get(u, reader, 1, pin, NULL, err);
	if (r == TG_ERR_NO_PIN) {
		tg_error_clear(err);
		r = tg_error_set(
		    err, r,
		    "the token in '%s' needs its PIN and none is available: give "
		    "--pin-source file:PATH (or env:NAME), set TOKENGATE_PIN, or run on "
		    "a terminal",
		    reader);
	}
out:
	tg_p11_uri_free(u);
	return r;
}

static void
piv_state_free(struct piv_state *s)
{
	tg_pcsc_close(s->pcsc);
	tg_wipe(s->mgm, sizeof(s->mgm));
	tg_strfreezero(s->pin);
	EVP_PKEY_free(s->pub);
	X509_free(s->att);
	X509_free(s->f9);
	X509_free(s->leaf);
	X509_REQ_free(s->csr);
	memset(s, 0, sizeof(*s));
}

/* ---- PIV ---- */

struct piv_signer {
	struct tg_pcsc *pcsc;
	uint8_t slot, alg;
};

static int
piv_sign_cb(void *ctx, const uint8_t *in, size_t n, uint8_t **sig, size_t *siglen,
            struct tg_error *err)
{
	struct piv_signer *ps = ctx;

	return tg_pivc_sign(ps->pcsc, ps->slot, ps->alg, in, n, sig, siglen, err);
}

/* The management key from --mgm-key / TOKENGATE_MGM_KEY, or the default
 * when allowed and none is given; refuses the default otherwise. */
static int
mgm_get(const struct opts *o, struct piv_state *s, struct tg_error *err)
{
	const char *hex = o->mgm_hex, *src = "--mgm-key";
	int r = TG_ERR_INVALID_ARG;

	if (hex == NULL) {
		hex = getenv(MGM_ENV);
		src = MGM_ENV;
	}
	if (hex == NULL || *hex == '\0') {
		if (!o->allow_default) {
			tg_error_set(err, r,
			             "no management key: give --mgm-key HEX or set %s (the "
			             "factory default key is refused unless "
			             "--allow-default-mgm-key)",
			             MGM_ENV);
			goto out;
		}
		memcpy(s->mgm, mgm_default, sizeof(mgm_default));
		s->mgm_len = sizeof(mgm_default);
	} else if (tg_hex_decode(hex, s->mgm, sizeof(s->mgm), &s->mgm_len) != 0) {
		tg_error_set(err, r,
		             "%s is not a management key: want 32, 48 or 64 hex digits (AES-128, "
		             "3DES/AES-192, AES-256)",
		             src);
		goto out;
	}
	r = 0;
out:
	/* the key given on the command line leaves argv (and ps) once read */
	if (o->mgm_hex != NULL)
		tg_wipe(o->mgm_hex, strlen(o->mgm_hex));
	return r;
}

static int
default_mgm_refuse(const char *reader, struct tg_error *err)
{
	char *q = tg_cmd_sh_quote(reader);
	int r;

	r = tg_error_set(err, TG_ERR_POLICY,
	                 "the token in '%s' still has the factory default management key "
	                 "(010203...0708), which anyone can use to replace its keys; change "
	                 "it first: yubico-piv-tool -r %s -a set-mgm-key -n NEW_48_HEX_DIGITS "
	                 "(then give --mgm-key or %s), or pass --allow-default-mgm-key",
	                 reader, q != NULL ? q : "READER", MGM_ENV);
	free(q);
	return r;
}

/* SELECT, token facts, management key authentication. */
static int
piv_open_auth(const struct opts *o, struct piv_state *s, struct tg_error *err)
{
	struct tg_pivc_meta m;
	uint8_t alg = TG_PIV_ALG_3DES, ver[3];
	uint32_t serial = 0;
	int r, is_default;

	memset(&m, 0, sizeof(m));
	if ((r = mgm_get(o, s, err)) != 0 || (r = tg_pcsc_open(o->reader, &s->pcsc, err)) != 0 ||
	    (r = tg_pivc_select(s->pcsc, err)) != 0)
		goto out;
	if (tg_pivc_version(s->pcsc, ver, NULL) == 0 && tg_pivc_serial(s->pcsc, &serial, NULL) == 0)
		fprintf(stderr, "token in '%s': serial %u, firmware %u.%u.%u\n",
		        tg_pcsc_reader(s->pcsc), serial, ver[0], ver[1], ver[2]);
	is_default = tg_secret_eq(s->mgm, s->mgm_len, mgm_default, sizeof(mgm_default));
	r = tg_pivc_metadata(s->pcsc, TG_PIV_REF_MGM, &m, err);
	if (r == 0) {
		if (m.alg != 0)
			alg = m.alg;
		if (m.is_default == 1)
			is_default = 1;
	} else if (r == TG_ERR_UNSUPPORTED || r == TG_ERR_NOT_FOUND || r == TG_ERR_STATUS_WORD) {
		tg_error_clear(err); /* before firmware 5.3: 3DES */
	} else {
		goto out;
	}
	if (is_default && !o->allow_default) {
		r = default_mgm_refuse(tg_pcsc_reader(s->pcsc), err);
		goto out;
	}
	if (is_default)
		fprintf(stderr,
		        "warning: the token in '%s' uses the factory default management "
		        "key; change it with yubico-piv-tool -a set-mgm-key\n",
		        tg_pcsc_reader(s->pcsc));
	r = tg_pivc_mgm_auth(s->pcsc, alg, s->mgm, s->mgm_len, err);
out:
	tg_wipe(s->mgm, sizeof(s->mgm));
	tg_pivc_meta_clear(&m);
	return r;
}

/* The key: generated now, or the one in the slot (--existing-key). */
static int
piv_key(const struct opts *o, struct piv_state *s, uint8_t *alg, uint8_t *pin_policy,
        struct tg_error *err)
{
	struct tg_pivc_meta m;
	int r;

	memset(&m, 0, sizeof(m));
	if (!o->existing) {
		*alg = o->alg;
		*pin_policy = o->pin_policy;
		r = tg_pivc_generate(s->pcsc, o->slot, o->alg, o->pin_policy, o->touch_policy,
		                     &s->pub, err);
		if (r == 0)
			fprintf(stderr, "generated a %s key in slot %02x\n", o->alg_name, o->slot);
		goto out;
	}
	if ((r = tg_pivc_metadata(s->pcsc, o->slot, &m, err)) != 0)
		goto out;
	if (m.pub == NULL) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "slot %02x of the token in '%s' holds no key", o->slot,
		                 tg_pcsc_reader(s->pcsc));
		goto out;
	}
	*alg = m.alg;
	*pin_policy = m.has_policy ? m.pin_policy : TG_PIV_PIN_POLICY_ONCE;
	s->pub = m.pub;
	m.pub = NULL;
	if (m.has_origin && m.origin == TG_PIV_ORIGIN_IMPORTED)
		fprintf(stderr, "note: GET METADATA says the key in slot %02x was imported\n",
		        o->slot);
	r = 0;
out:
	tg_pivc_meta_clear(&m);
	return r;
}

/* ATTEST, F9 certificate, attested key == our key. */
static int
piv_attest(const struct opts *o, struct piv_state *s, struct tg_error *err)
{
	int r;

	if ((r = tg_pivc_attest(s->pcsc, o->slot, &s->att, err)) != 0 ||
	    (r = tg_pivc_cert_get(s->pcsc, TG_PIV_OBJ_ATTEST, &s->f9, err)) != 0)
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(s->att), s->pub) != 1) {
		r = tg_error_set(
		    err, TG_ERR_ATTESTATION,
		    "the token in '%s' attested a key other than the one in slot %02x; "
		    "do not trust this token",
		    tg_pcsc_reader(s->pcsc), o->slot);
		goto out;
	}
	r = 0;
out:
	return r;
}

/*
 * VERIFY PIN (read once, kept wiped-on-free in s->pin for a slot whose PIN
 * policy is always). Runs before GENERATE too, so a wrong PIN costs no key.
 */
static int
piv_pin(const struct opts *o, struct piv_state *s, struct tg_error *err)
{
	char *q = NULL;
	int r;

	if (s->pin == NULL) {
		if ((r = pin_read(o, tg_pcsc_reader(s->pcsc), &s->pin, err)) != 0)
			goto out;
		if (strcmp(s->pin, DEFAULT_PIN) == 0 &&
		    (q = tg_cmd_sh_quote(tg_pcsc_reader(s->pcsc))) != NULL)
			fprintf(stderr,
			        "warning: the token's PIN is the factory default %s; "
			        "change it: yubico-piv-tool -r %s -a change-pin\n",
			        DEFAULT_PIN, q);
		free(q);
	}
	r = tg_pivc_verify_pin(s->pcsc, s->pin, err);
out:
	return r;
}

/* The request, signed on the token (PIN verified again for policy always). */
static int
piv_csr(const struct opts *o, struct piv_state *s, uint8_t alg, uint8_t pin_policy,
        struct tg_error *err)
{
	struct piv_signer ps = {s->pcsc, o->slot, alg};
	int r;

	if ((pin_policy == TG_PIV_PIN_POLICY_ALWAYS ||
	     (pin_policy != TG_PIV_PIN_POLICY_NEVER && s->pin == NULL)) &&
	    (r = piv_pin(o, s, err)) != 0)
		goto out;
	if ((r = tg_csr_new(o->id, s->pub, &s->csr, err)) != 0 ||
	    (r = tg_csr_sign_external(s->csr, s->pub, piv_sign_cb, &ps, err)) != 0)
		goto out;
out:
	return r;
}

/* tg_ca_issue with the local CA; *leaf and *prov on success. */
static int
ca_issue(const struct opts *o, X509_REQ *csr, X509 *att, X509 *f9, X509 **leaf,
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
		tg_error_set(err, r, "the CA in %s refused the request", o->ca_dir);
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
ca_precheck(const struct opts *o, struct tg_error *err)
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
		tg_error_set(err, r,
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

static void
issued_print(const struct opts *o, X509 *leaf, const struct tg_prov *prov)
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
 * so the printed command still finds a PIN without showing it).
 */
static int
uri_redact(const char *uri, char *buf, size_t n)
{
	const char *pv = strstr(uri, "pin-value=");
	size_t head, tail;
	int r = TG_ERR_NO_SPACE;

	if (pv == NULL) {
		if (strlen(uri) >= n)
			goto out;
		snprintf(buf, n, "%s", uri);
		r = 0;
		goto out;
	}
	head = (size_t)(pv - uri);
	tail = strcspn(pv, "&");
	if (snprintf(buf, n, "%.*spin-source=env:TOKENGATE_PIN%s", (int)head, uri, pv + tail) >=
	    (int)n)
		goto out;
	r = 0;
out:
	return r;
}

/* Indexes of the values the printed commands carry, each quoted for sh. */
enum { Q_CSR, Q_ID, Q_ATT, Q_F9, Q_CERT, Q_URI, Q_READER, Q_COUNT };

/* --out-dir: csr.pem (+ attestation.pem, f9.pem) and the command, every
 * user value quoted for sh (tg_cmd_sh_quote), so pasting it runs exactly
 * what it shows. */
static int
out_dir_write(const struct opts *o, X509_REQ *csr, X509 *att, X509 *f9, struct tg_error *err)
{
	char csr_p[PATH_MAX_LEN], att_p[PATH_MAX_LEN], f9_p[PATH_MAX_LEN], cert_p[PATH_MAX_LEN];
	char uri[URI_MAX], *q[Q_COUNT] = {NULL};
	const char *v[Q_COUNT];
	int i, r;

	if (mkdir(o->out_dir, 0755) != 0 && access(o->out_dir, W_OK) != 0) {
		r = tg_error_set(err, TG_ERR_IO, "cannot create or write to --out-dir %s",
		                 o->out_dir);
		goto out;
	}
	snprintf(csr_p, sizeof(csr_p), "%s/csr.pem", o->out_dir);
	snprintf(att_p, sizeof(att_p), "%s/attestation.pem", o->out_dir);
	snprintf(f9_p, sizeof(f9_p), "%s/f9.pem", o->out_dir);
	snprintf(cert_p, sizeof(cert_p), "%s/cert.pem", o->out_dir);
	uri[0] = '\0';
	if (att == NULL && (r = uri_redact(o->key_uri, uri, sizeof(uri))) != 0) {
		tg_error_set(err, r, "the key URI is too long to print");
		goto out;
	}
	v[Q_CSR] = csr_p, v[Q_ID] = o->id, v[Q_ATT] = att_p, v[Q_F9] = f9_p;
	v[Q_CERT] = cert_p, v[Q_URI] = uri, v[Q_READER] = o->reader != NULL ? o->reader : "";
	for (i = 0; i < Q_COUNT; i++) {
		if ((q[i] = tg_cmd_sh_quote(v[i])) == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
			goto out;
		}
	}
	if ((r = tg_ca_pem_write(csr_p, NULL, csr, NULL, err)) != 0 ||
	    (att != NULL && (r = tg_ca_pem_write(att_p, att, NULL, NULL, err)) != 0) ||
	    (f9 != NULL && (r = tg_ca_pem_write(f9_p, f9, NULL, NULL, err)) != 0))
		goto out;
	printf("wrote %s to %s; on the CA host run:\n",
	       att ? "csr.pem, attestation.pem, f9.pem" : "csr.pem", o->out_dir);
	if (att != NULL) {
		printf("  tokengate ca issue --dir CA_DIR --csr %s --id %s --attestation %s "
		       "--intermediate %s --out %s\n",
		       q[Q_CSR], q[Q_ID], q[Q_ATT], q[Q_F9], q[Q_CERT]);
		printf("then store the certificate on the token:\n"
		       "  tokengate enroll --reader %s --slot %02x --install-cert %s\n",
		       q[Q_READER], o->slot, q[Q_CERT]);
	} else {
		/* the CA loads the URI's module only when its policy.yaml lists
		 * it in hsm_tokens (tg_ca_hsm.h), whatever this command says */
		printf("  tokengate ca issue --dir CA_DIR --csr %s --id %s --hsm-key %s "
		       "--out %s\n",
		       q[Q_CSR], q[Q_ID], q[Q_URI], q[Q_CERT]);
	}
	r = 0;
out:
	for (i = 0; i < Q_COUNT; i++)
		free(q[i]);
	return r;
}

static int
cert_out_write(const struct opts *o, X509 *leaf, struct tg_error *err)
{
	if (o->cert_out == NULL)
		return 0;
	return tg_ca_pem_write(o->cert_out, leaf, NULL, NULL, err);
}

static int
piv_enroll(const struct opts *o, struct tg_error *err)
{
	struct piv_state s;
	struct tg_prov prov;
	uint8_t alg = 0, pin_policy = 0;
	int r;

	memset(&s, 0, sizeof(s));
	if ((r = piv_open_auth(o, &s, err)) != 0 ||
	    ((o->existing || o->pin_policy != TG_PIV_PIN_POLICY_NEVER) &&
	     (r = piv_pin(o, &s, err)) != 0) ||
	    (r = piv_key(o, &s, &alg, &pin_policy, err)) != 0 ||
	    (r = piv_attest(o, &s, err)) != 0 || (r = piv_csr(o, &s, alg, pin_policy, err)) != 0)
		goto out;
	if (o->out_dir != NULL) {
		r = out_dir_write(o, s.csr, s.att, s.f9, err);
		goto out;
	}
	if ((r = ca_issue(o, s.csr, s.att, s.f9, &s.leaf, &prov, err)) != 0)
		goto out;
	issued_print(o, s.leaf, &prov);
	if ((r = cert_out_write(o, s.leaf, err)) != 0 ||
	    (r = tg_pivc_cert_put(s.pcsc, o->slot, s.leaf, err)) != 0)
		goto out;
	printf("stored the certificate in slot %02x of the token in '%s'\n", o->slot,
	       tg_pcsc_reader(s.pcsc));
out:
	piv_state_free(&s);
	return r;
}

/* --install-cert: the certificate must be for the key in the slot. */
static int
piv_install(const struct opts *o, struct tg_error *err)
{
	struct piv_state s;
	struct tg_pivc_meta m;
	X509 *cert = NULL;
	int r;

	memset(&s, 0, sizeof(s));
	memset(&m, 0, sizeof(m));
	if ((r = tg_ca_cert_read(o->install, &cert, err)) != 0 ||
	    (r = piv_open_auth(o, &s, err)) != 0)
		goto out;
	r = tg_pivc_metadata(s.pcsc, o->slot, &m, err);
	if (r == 0 && m.pub != NULL) {
		s.pub = m.pub;
		m.pub = NULL;
	} else if ((r = tg_pivc_attest(s.pcsc, o->slot, &s.att, err)) == 0) {
		s.pub = EVP_PKEY_dup(X509_get0_pubkey(s.att));
	} else {
		goto out;
	}
	if (s.pub == NULL || EVP_PKEY_eq(X509_get0_pubkey(cert), s.pub) != 1) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "%s is not a certificate for the key in slot %02x of the token in "
		                 "'%s'",
		                 o->install, o->slot, tg_pcsc_reader(s.pcsc));
		goto out;
	}
	if ((r = tg_pivc_cert_put(s.pcsc, o->slot, cert, err)) != 0)
		goto out;
	printf("stored %s in slot %02x of the token in '%s'\n", o->install, o->slot,
	       tg_pcsc_reader(s.pcsc));
out:
	tg_pivc_meta_clear(&m);
	X509_free(cert);
	piv_state_free(&s);
	return r;
}

/* ---- HSM (PKCS#11) ---- */

/* Finds the key (generating it when absent) and builds the signed CSR. */
static int
hsm_csr(const struct opts *o, X509_REQ **csr, struct tg_error *err)
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
		tg_error_set(err, r,
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
hsm_import(const struct opts *o, X509 *leaf, struct tg_error *err)
{
	struct tg_p11 *p11 = NULL;
	struct tg_p11_key *k = NULL;
	unsigned flags = isatty(STDIN_FILENO) ? TG_P11_KEY_INTERACTIVE : 0;
	int r;

	if ((r = tg_p11_new(&p11, err)) != 0 ||
	    (r = tg_p11_key_find(p11, o->key_uri, flags, &k, err)) != 0 ||
	    (r = tg_p11_key_cert_import(k, leaf, NULL, 1, err)) != 0)
		goto out;
	printf("stored the certificate on token '%s' with the key's id\n",
	       tg_p11_token_get_info(tg_p11_key_token(k))->label);
out:
	tg_p11_key_free(k);
	tg_p11_free(p11);
	return r;
}

static int
hsm_enroll(const struct opts *o, struct tg_error *err)
{
	X509_REQ *csr = NULL;
	X509 *leaf = NULL;
	struct tg_prov prov;
	int r;

	/* One PKCS#11 context at a time: freeing one finalizes the module for
	 * every other in the process, and the CA opens its own. */
	if ((r = hsm_csr(o, &csr, err)) != 0)
		goto out;
	if (o->out_dir != NULL) {
		r = out_dir_write(o, csr, NULL, NULL, err);
		goto out;
	}
	if ((r = ca_issue(o, csr, NULL, NULL, &leaf, &prov, err)) != 0)
		goto out;
	issued_print(o, leaf, &prov);
	if ((r = cert_out_write(o, leaf, err)) != 0 || (r = hsm_import(o, leaf, err)) != 0)
		goto out;
out:
	X509_free(leaf);
	X509_REQ_free(csr);
	return r;
}

/* ---- command line ---- */

static int
opts_parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"reader", required_argument, NULL, 'r'},
	    {"slot", required_argument, NULL, 's'},
	    {"id", required_argument, NULL, 'I'},
	    {"algorithm", required_argument, NULL, 'a'},
	    {"pin-policy", required_argument, NULL, 'P'},
	    {"touch-policy", required_argument, NULL, 'T'},
	    {"validity", required_argument, NULL, 'v'},
	    {"mgm-key", required_argument, NULL, 'm'},
	    {"allow-default-mgm-key", no_argument, NULL, 'D'},
	    {"pin-source", required_argument, NULL, 'p'},
	    {"existing-key", no_argument, NULL, 'E'},
	    {"ca-dir", required_argument, NULL, 'c'},
	    {"out-dir", required_argument, NULL, 'o'},
	    {"cert-out", required_argument, NULL, 'C'},
	    {"install-cert", required_argument, NULL, 'i'},
	    {"key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum tg_att_pin pp;
	enum tg_att_touch tp;
	int c;

	memset(o, 0, sizeof(*o));
	o->alg = TG_PIV_ALG_ECCP256;
	o->alg_name = "ec-p256";
	o->pin_policy = TG_PIV_PIN_POLICY_ONCE;
	o->touch_policy = TG_PIV_TOUCH_POLICY_NEVER;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->reader = optarg;
			break;
		case 's':
			if (slot_parse(optarg, &o->slot) != 0)
				return tg_cmd_usage_error(
				    WHAT, "--slot '%s': want 9a, 9c, 9d or 9e", optarg);
			break;
		case 'I':
			o->id = optarg;
			break;
		case 'a':
			if (alg_parse(optarg, &o->alg) != 0)
				return tg_cmd_usage_error(WHAT,
				                          "--algorithm '%s': want ec-p256, "
				                          "ec-p384 or rsa-2048",
				                          optarg);
			o->alg_name = optarg;
			break;
		case 'P':
			if (tg_att_pin_parse(optarg, &pp) != 0 || pp > TG_ATT_PIN_ALWAYS)
				return tg_cmd_usage_error(WHAT,
				                          "--pin-policy '%s': want once, "
				                          "always or never",
				                          optarg);
			o->pin_policy = (uint8_t)pp;
			break;
		case 'T':
			if (tg_att_touch_parse(optarg, &tp) != 0)
				return tg_cmd_usage_error(WHAT,
				                          "--touch-policy '%s': want never, "
				                          "always or cached",
				                          optarg);
			o->touch_policy = (uint8_t)tp;
			break;
		case 'v':
			if (tg_ca_duration_parse(optarg, &o->validity) != 0)
				return tg_cmd_usage_error(WHAT,
				                          "--validity '%s' is not a duration "
				                          "like 24h or 7d",
				                          optarg);
			break;
		case 'm':
			o->mgm_hex = optarg;
			break;
		case 'D':
			o->allow_default = 1;
			break;
		case 'p':
			o->pin_source = optarg;
			break;
		case 'E':
			o->existing = 1;
			break;
		case 'c':
			o->ca_dir = optarg;
			break;
		case 'o':
			o->out_dir = optarg;
			break;
		case 'C':
			o->cert_out = optarg;
			break;
		case 'i':
			o->install = optarg;
			break;
		case 'k':
			o->key_uri = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return TG_EXIT_OK;
		default:
			return tg_cmd_bad_option(WHAT, argc, argv);
		}
	}
	if (optind != argc)
		return tg_cmd_usage_error(WHAT, "unexpected argument '%s'", argv[optind]);
	if ((o->reader != NULL) == (o->key_uri != NULL))
		return tg_cmd_usage_error(WHAT,
		                          "give --reader (a PIV token) or --key (an HSM key)");
	if (o->reader != NULL && o->slot == 0)
		return tg_cmd_usage_error(WHAT, "--reader needs --slot");
	if (o->install != NULL) {
		if (o->key_uri != NULL || o->ca_dir != NULL || o->out_dir != NULL)
			return tg_cmd_usage_error(WHAT, "--install-cert goes with --reader and "
			                                "--slot only");
		return -1;
	}
	if (o->id == NULL)
		return tg_cmd_usage_error(WHAT, "--id is required");
	if ((o->ca_dir != NULL) == (o->out_dir != NULL))
		return tg_cmd_usage_error(WHAT, "give --ca-dir DIR (local CA) or --out-dir DIR "
		                                "(offline CA)");
	if (o->out_dir != NULL && o->cert_out != NULL)
		return tg_cmd_usage_error(WHAT, "--cert-out goes with --ca-dir");
	if (o->key_uri != NULL && o->existing)
		return tg_cmd_usage_error(WHAT, "--existing-key is for PIV slots; an HSM key "
		                                "is used when it exists");
	return -1;
}

int
tg_cmd_enroll(int argc, char **argv)
{
	struct opts o;
	struct tg_error err;
	char name[TG_CA_NAME_MAX + 1];
	int rc, r;

	tg_error_clear(&err);
	if ((rc = opts_parse(argc, argv, &o)) != -1)
		return rc;
	if (o.id != NULL && (r = tg_ca_id_check(o.id, NULL, name, sizeof(name), &err)) != 0) {
		fprintf(stderr, "tokengate %s: %s\n", WHAT, tg_error_msg(&err, r));
		return TG_EXIT_USAGE;
	}
	if (o.ca_dir != NULL && (r = ca_precheck(&o, &err)) != 0)
		return tg_cmd_fail(WHAT, r, &err);
	if (o.install != NULL)
		r = piv_install(&o, &err);
	else if (o.reader != NULL)
		r = piv_enroll(&o, &err);
	else
		r = hsm_enroll(&o, &err);
	if (r != 0)
		return tg_cmd_fail(WHAT, r, &err);
	return TG_EXIT_OK;
}
