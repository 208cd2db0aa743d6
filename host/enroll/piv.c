/*
 * piv.c — the PIV flow of `tokengate enroll` (enroll-int.h): management
 * key, the slot's state, PIN, GENERATE or the existing key, ATTEST and the
 * F9 certificate, the request signed on the token, the CA or --out-dir,
 * the certificate stored; --install-cert. The token is driven through
 * tg_pivc.h (libykpiv).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ykpiv/ykpiv.h>

#include "enroll-int.h"
#include "tg_ca_io.h"
#include "tg_cmd.h"
#include "tg_csr.h"
#include "tg_hex.h"
#include "tg_mgm.h"
#include "tg_piv.h"
#include "tg_pivc.h"
#include "tg_secret.h"

#define MGM_ENV     TG_ENROLL_MGM_ENV
#define DEFAULT_PIN "123456"
#define CMD_MAX     TG_ENROLL_CMD_MAX

/* The factory default management key of YubiKeys (and the simulator). */
static const uint8_t mgm_default[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                        5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

/* The state of one PIV enrollment (freed by piv_state_free). */
struct piv_state {
	struct tg_pivc *pivc;
	uint8_t mgm[TG_PIVC_MGM_MAX];
	size_t mgm_len;
	char *pin;
	EVP_PKEY *pub;
	X509 *att, *f9, *leaf;
	X509_REQ *csr;
	uint32_t serial;
	uint8_t alg, touch_policy; /* of the key being enrolled */
	int generated;             /* a new key is in the slot */
};

static void
piv_state_free(struct piv_state *s)
{
	tg_pivc_close(s->pivc);
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
	struct tg_pivc *pivc;
	uint8_t slot, alg;
};

static int
piv_sign_cb(void *ctx, const uint8_t *in, size_t n, uint8_t **sig, size_t *siglen,
            struct tg_error *err)
{
	struct piv_signer *ps = ctx;

	return tg_pivc_sign(ps->pivc, ps->slot, ps->alg, in, n, sig, siglen, err);
}

/* The management key from --mgm-key / TOKENGATE_MGM_KEY, or the default
 * when allowed and none is given; refuses the default otherwise. */
static int
mgm_get(const struct tg_enroll_opts *o, struct piv_state *s, struct tg_error *err)
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

/* Connect (and SELECT), token facts, management key authentication. */
static int
piv_open_auth(const struct tg_enroll_opts *o, struct piv_state *s, struct tg_error *err)
{
	char ver[32];
	uint8_t alg = TG_PIV_ALG_3DES;
	uint32_t serial = 0;
	int r, is_default;

	if ((r = mgm_get(o, s, err)) != 0 || (r = tg_pivc_open(o->reader, &s->pivc, err)) != 0)
		goto out;
	if (tg_pivc_version(s->pivc, ver, sizeof(ver)) == 0 &&
	    tg_pivc_serial(s->pivc, &serial) == 0)
		fprintf(stderr, "token in '%s': serial %u, firmware %s\n", tg_pivc_reader(s->pivc),
		        serial, ver);
	s->serial = serial;
	is_default = tg_secret_eq(s->mgm, s->mgm_len, mgm_default, sizeof(mgm_default));
	if ((r = tg_pivc_mgm_alg(s->pivc, &alg, err)) != 0)
		goto out;
	if (is_default && !o->allow_default) {
		r = default_mgm_refuse(tg_pivc_reader(s->pivc), err);
		goto out;
	}
	if (is_default)
		fprintf(stderr,
		        "warning: the token in '%s' uses the factory default management "
		        "key; change it with yubico-piv-tool -a set-mgm-key\n",
		        tg_pivc_reader(s->pivc));
	r = tg_pivc_mgm_auth(s->pivc, alg, s->mgm, s->mgm_len, err);
out:
	tg_wipe(s->mgm, sizeof(s->mgm));
	return r;
}

/* The key: generated now, or the one in the slot (--existing-key). */
static int
piv_key(const struct tg_enroll_opts *o, struct piv_state *s, uint8_t *alg, uint8_t *pin_policy,
        struct tg_error *err)
{
	struct tg_pivc_meta m;
	int r;

	memset(&m, 0, sizeof(m));
	if (!o->existing) {
		*alg = o->alg;
		*pin_policy = o->pin_policy;
		s->alg = o->alg;
		s->touch_policy = o->touch_policy;
		r = tg_pivc_generate(s->pivc, o->slot, o->alg, o->pin_policy, o->touch_policy,
		                     &s->pub, err);
		if (r == 0) {
			s->generated = 1;
			fprintf(stderr, "generated an %s key in slot %02x\n", o->alg_name, o->slot);
		}
		goto out;
	}
	if ((r = tg_pivc_metadata(s->pivc, o->slot, &m, err)) != 0)
		goto out;
	if (m.pub == NULL) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "slot %02x of the token in '%s' holds no key", o->slot,
		                 tg_pivc_reader(s->pivc));
		goto out;
	}
	*alg = m.alg;
	*pin_policy = m.pin_policy;
	s->alg = m.alg;
	s->touch_policy = m.touch_policy;
	s->pub = m.pub;
	m.pub = NULL;
	if (m.origin == YKPIV_METADATA_ORIGIN_IMPORTED)
		fprintf(stderr, "note: GET METADATA says the key in slot %02x was imported\n",
		        o->slot);
	r = 0;
out:
	tg_pivc_meta_clear(&m);
	return r;
}

/*
 * Before GENERATE replaces what the slot holds: a key (GET METADATA) or a
 * certificate there is refused unless --force (or --existing-key, which
 * enrolls that key).
 */
static int
piv_slot_check(const struct tg_enroll_opts *o, struct piv_state *s, struct tg_error *err)
{
	struct tg_pivc_meta m;
	X509 *cert = NULL;
	char key[128], subj[256];
	int r = 0, has_key;

	memset(&m, 0, sizeof(m));
	if (o->existing || o->force)
		goto out;
	has_key = tg_pivc_metadata(s->pivc, o->slot, &m, NULL) == 0;
	if ((r = tg_pivc_cert_get(s->pivc, o->slot, &cert, err)) != 0 || (!has_key && cert == NULL))
		goto out;
	snprintf(key, sizeof(key), "an %s key %s", tg_enroll_alg_name(m.alg),
	         m.origin == YKPIV_METADATA_ORIGIN_IMPORTED ? "imported into the token"
	                                                    : "generated on the token");
	if (!has_key)
		snprintf(key, sizeof(key), "a key");
	if (cert != NULL)
		tg_ca_name_str(X509_get_subject_name(cert), subj, sizeof(subj));
	r = tg_error_set(err, TG_ERR_POLICY,
	                 "slot %02x of the token in '%s' is not empty: it holds %s%s%s%s, which "
	                 "a new key would replace; pass --force to replace %s, or "
	                 "--existing-key to enroll the key already there",
	                 o->slot, tg_pivc_reader(s->pivc), key,
	                 cert != NULL ? " and a certificate for '" : "", cert != NULL ? subj : "",
	                 cert != NULL ? "'" : "", cert != NULL ? "both" : "it");
out:
	X509_free(cert);
	tg_pivc_meta_clear(&m);
	return r;
}

/* ATTEST, F9 certificate, attested key == our key. */
static int
piv_attest(const struct tg_enroll_opts *o, struct piv_state *s, struct tg_error *err)
{
	int r;

	if ((r = tg_pivc_attest(s->pivc, o->slot, &s->att, err)) != 0 ||
	    (r = tg_pivc_cert_get(s->pivc, YKPIV_KEY_ATTESTATION, &s->f9, err)) != 0)
		goto out;
	if (s->f9 == NULL) {
		r = tg_error_set(err, TG_ERR_ATTESTATION,
		                 "the token in '%s' has no attestation (F9) certificate, so its "
		                 "attestation cannot be checked; use a token with one",
		                 tg_pivc_reader(s->pivc));
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(s->att), s->pub) != 1) {
		r = tg_error_set(
		    err, TG_ERR_ATTESTATION,
		    "the token in '%s' attested a key other than the one in slot %02x; "
		    "do not trust this token",
		    tg_pivc_reader(s->pivc), o->slot);
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
piv_pin(const struct tg_enroll_opts *o, struct piv_state *s, struct tg_error *err)
{
	char *q = NULL;
	int r;

	if (s->pin == NULL) {
		if ((r = tg_enroll_pin_read(o, tg_pivc_reader(s->pivc), &s->pin, err)) != 0)
			goto out;
		if (strcmp(s->pin, DEFAULT_PIN) == 0 &&
		    (q = tg_cmd_sh_quote(tg_pivc_reader(s->pivc))) != NULL)
			fprintf(stderr,
			        "warning: the token's PIN is the factory default %s; "
			        "change it: yubico-piv-tool -r %s -a change-pin\n",
			        DEFAULT_PIN, q);
		free(q);
	}
	r = tg_pivc_verify_pin(s->pivc, s->pin, err);
out:
	return r;
}

/* The request, signed on the token (PIN verified again for policy always). */
static int
piv_csr(const struct tg_enroll_opts *o, struct piv_state *s, uint8_t alg, uint8_t pin_policy,
        struct tg_error *err)
{
	struct piv_signer ps = {s->pivc, o->slot, alg};
	int r;

	if ((pin_policy == YKPIV_PINPOLICY_ALWAYS ||
	     (pin_policy != YKPIV_PINPOLICY_NEVER && s->pin == NULL)) &&
	    (r = piv_pin(o, s, err)) != 0)
		goto out;
	if ((r = tg_csr_new(o->id, s->pub, &s->csr, err)) != 0)
		goto out;
	/* as ykman ("Touch your YubiKey..."): the signature waits for it */
	if (s->touch_policy == YKPIV_TOUCHPOLICY_ALWAYS ||
	    s->touch_policy == YKPIV_TOUCHPOLICY_CACHED)
		fprintf(stderr,
		        "Touch the token now: the key in slot %02x of the token in '%s' signs "
		        "the request only when touched (touch policy %s)\n",
		        o->slot, tg_pivc_reader(s->pivc),
		        s->touch_policy == YKPIV_TOUCHPOLICY_ALWAYS ? "always" : "cached");
	r = tg_csr_sign_external(s->csr, s->pub, piv_sign_cb, &ps, err);
out:
	return r;
}

/*
 * After a failure that followed GENERATE: what the slot holds now and the
 * command that resumes with that key (--existing-key), quoted for sh.
 */
static void
piv_note_set(const struct tg_enroll_opts *o, const struct piv_state *s, struct tg_enroll_note *note)
{
	char cmd[CMD_MAX], slot[8];

	note->text[0] = '\0';
	if (!s->generated)
		return;
	snprintf(slot, sizeof(slot), "%02x", o->slot);
	if (tg_enroll_cmd_start(o, cmd, sizeof(cmd)) != 0 ||
	    tg_enroll_cmd_add(cmd, sizeof(cmd), "--id", o->id) != 0 ||
	    tg_enroll_cmd_add(cmd, sizeof(cmd), "--existing-key", NULL) != 0 ||
	    (o->ca_dir != NULL &&
	     tg_enroll_cmd_add(cmd, sizeof(cmd), "--ca-dir", o->ca_dir) != 0) ||
	    (o->out_dir != NULL &&
	     tg_enroll_cmd_add(cmd, sizeof(cmd), "--out-dir", o->out_dir) != 0) ||
	    (o->validity_text != NULL &&
	     tg_enroll_cmd_add(cmd, sizeof(cmd), "--validity", o->validity_text) != 0) ||
	    (o->cert_out != NULL &&
	     tg_enroll_cmd_add(cmd, sizeof(cmd), "--cert-out", o->cert_out) != 0) ||
	    (o->pin_source != NULL &&
	     tg_enroll_cmd_add(cmd, sizeof(cmd), "--pin-source", o->pin_source) != 0) ||
	    (o->allow_default &&
	     tg_enroll_cmd_add(cmd, sizeof(cmd), "--allow-default-mgm-key", NULL) != 0) ||
	    (o->json && tg_enroll_cmd_add(cmd, sizeof(cmd), "--json", NULL) != 0))
		snprintf(cmd, sizeof(cmd), "tokengate enroll ... --existing-key");
	snprintf(
	    note->text, sizeof(note->text),
	    "slot %s of the token in '%s' now holds a new %s key generated on the token and "
	    "no certificate (what the slot held before is gone); once the cause is fixed, "
	    "finish the enrollment with this key%s:\n  %s\n",
	    slot, s->pivc != NULL ? tg_pivc_reader(s->pivc) : o->reader, tg_enroll_alg_name(s->alg),
	    o->allow_default ? "" : " (management key again in --mgm-key or TOKENGATE_MGM_KEY)",
	    cmd);
}

int
tg_enroll_piv(const struct tg_enroll_opts *o, struct tg_enroll_note *note, struct tg_error *err)
{
	struct piv_state s;
	struct tg_prov prov;
	struct tg_enroll_result res;
	uint8_t alg = 0, pin_policy = 0;
	int r;

	memset(&s, 0, sizeof(s));
	memset(&res, 0, sizeof(res));
	if ((r = piv_open_auth(o, &s, err)) != 0 || (r = piv_slot_check(o, &s, err)) != 0 ||
	    ((o->existing || o->pin_policy != YKPIV_PINPOLICY_NEVER) &&
	     (r = piv_pin(o, &s, err)) != 0) ||
	    (r = piv_key(o, &s, &alg, &pin_policy, err)) != 0 ||
	    (r = piv_attest(o, &s, err)) != 0 || (r = piv_csr(o, &s, alg, pin_policy, err)) != 0)
		goto out;
	res.algorithm = tg_enroll_alg_name(alg);
	res.key = o->existing ? "existing" : "generated";
	res.token_serial = s.serial;
	if (o->out_dir != NULL) {
		r = tg_enroll_out_dir_write(o, s.csr, s.att, s.f9, &res, err);
		goto out;
	}
	if ((r = tg_enroll_ca_issue(o, s.csr, s.att, s.f9, &s.leaf, &prov, err)) != 0)
		goto out;
	if (!o->json)
		tg_enroll_issued_print(o, s.leaf, &prov);
	if ((r = tg_enroll_cert_out_write(o, s.leaf, err)) != 0 ||
	    (r = tg_pivc_cert_put(s.pivc, o->slot, s.leaf, err)) != 0)
		goto out;
	res.leaf = s.leaf;
	res.prov = &prov;
	res.stored = 1;
	if (o->json)
		r = tg_enroll_result_json(o, &res, err);
	else
		printf("stored the certificate in slot %02x of the token in '%s'\n", o->slot,
		       tg_pivc_reader(s.pivc));
out:
	if (r != 0)
		piv_note_set(o, &s, note);
	piv_state_free(&s);
	return r;
}

/* The one message for --install-cert on a slot without a key. */
static int
install_empty(const struct tg_enroll_opts *o, const char *reader, struct tg_error *err)
{
	char cmd[CMD_MAX];

	if (tg_enroll_cmd_start(o, cmd, sizeof(cmd)) != 0)
		snprintf(cmd, sizeof(cmd), "tokengate enroll");
	return tg_error_set(err, TG_ERR_NOT_FOUND,
	                    "slot %02x of the token in '%s' holds no key, so there is nothing to "
	                    "install %s for; enroll the slot first: %s --id ID --ca-dir DIR (or "
	                    "--out-dir DIR)",
	                    o->slot, reader, o->install, cmd);
}

/* --install-cert: the certificate must be for the key in the slot. */
int
tg_enroll_piv_install(const struct tg_enroll_opts *o, struct tg_error *err)
{
	struct piv_state s;
	struct tg_pivc_meta m;
	X509 *cert = NULL;
	char slot[8];
	int r;

	memset(&s, 0, sizeof(s));
	memset(&m, 0, sizeof(m));
	snprintf(slot, sizeof(slot), "%02x", o->slot);
	if ((r = tg_ca_cert_read(o->install, &cert, err)) != 0 ||
	    (r = piv_open_auth(o, &s, err)) != 0)
		goto out;
	/* the key from GET METADATA, else (before firmware 5.3) from ATTEST */
	r = tg_pivc_metadata(s.pivc, o->slot, &m, err);
	if (r == 0) {
		s.pub = m.pub;
		m.pub = NULL;
	} else if (r == TG_ERR_UNSUPPORTED) {
		tg_error_clear(err);
		if ((r = tg_pivc_attest(s.pivc, o->slot, &s.att, err)) == 0)
			s.pub = EVP_PKEY_dup(X509_get0_pubkey(s.att));
	}
	if (r == TG_ERR_NOT_FOUND) {
		r = install_empty(o, tg_pivc_reader(s.pivc), err);
		goto out;
	}
	if (r != 0)
		goto out;
	if (s.pub == NULL || EVP_PKEY_eq(X509_get0_pubkey(cert), s.pub) != 1) {
		r = tg_error_set(err, TG_ERR_CERT_MISMATCH,
		                 "%s is not a certificate for the key in slot %02x of the token in "
		                 "'%s'",
		                 o->install, o->slot, tg_pivc_reader(s.pivc));
		goto out;
	}
	if ((r = tg_pivc_cert_put(s.pivc, o->slot, cert, err)) != 0)
		goto out;
	if (!o->json)
		printf("stored %s in slot %02x of the token in '%s'\n", o->install, o->slot,
		       tg_pivc_reader(s.pivc));
	else if ((r = tg_enroll_json_put(json_pack("{s:s, s:s, s:s, s:b}", "slot", slot, "reader",
	                                           tg_pivc_reader(s.pivc), "certificate_path",
	                                           o->install, "stored_on_token", 1),
	                                 err)) != 0)
		goto out;
out:
	tg_pivc_meta_clear(&m);
	X509_free(cert);
	piv_state_free(&s);
	return r;
}
