/* init.c — `tokengate-sim init`: creates a new token in a state file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "mfrca.h"
#include "statefile.h"
#include "tg_hex.h"
#include "tg_mgm.h"
#include "tg_piv.h"
#include "tg_secret.h"
#include "tg_tok.h"

#define PIN_MIN     6
#define PIN_MAX     8
#define MGM_KEY_MAX 32

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: tokengate-sim init --state FILE [--serial N] [--pin PIN] [--puk PUK]\n"
	        "                          [--mgm-key HEX [--mgm-key-alg ALG]]\n"
	        "                          [--manufacturer-cert CERT --manufacturer-key KEY]\n"
	        "                          [--force]\n\n"
	        "Creates a new token in factory state and writes it to FILE (mode 0600). The\n"
	        "token generates its slot-F9 attestation key inside and has its certificate\n"
	        "signed by the manufacturer CA.\n\n"
	        "options:\n"
	        "  --state FILE              state file to create (refused if it exists)\n"
	        "  --serial N                serial number, 1-4294967295 (default: random)\n"
	        "  --pin PIN                 PIN, 6-8 characters (default 123456)\n"
	        "  --puk PUK                 PUK, 6-8 characters (default 12345678)\n"
	        "  --mgm-key HEX             management key: 48 hex digits (3DES, default\n"
	        "                            010203040506070801020304050607080102030405060708),\n"
	        "                            32 (AES-128) or 64 (AES-256)\n"
	        "  --mgm-key-alg ALG         3des, aes128, aes192 or aes256 (default: from the\n"
	        "                            key length; 48 hex digits mean 3des)\n"
	        "  --manufacturer-cert CERT  manufacturer CA certificate (PEM or DER)\n"
	        "  --manufacturer-key KEY    its private key (PEM or DER, unencrypted)\n"
	        "                            Without these two, a new EC P-256 manufacturer CA\n"
	        "                            is created next to FILE as FILE.mfr-ca.pem and\n"
	        "                            FILE.mfr-ca.key (0600), or reused if both exist.\n"
	        "  --force                   overwrite an existing state file\n"
	        "  -h, --help                this help\n\n"
	        "Exit codes: 0 created, 1 failed, 2 bad command line.\n");
}

/* A management key algorithm by its display name in any case ("3des",
 * "AES128"...). */
static int
parse_mgm_alg(const char *s, uint8_t *alg)
{
	const struct tg_piv_alg *a = tg_piv_alg_by_display(s);
	int r = TG_ERR_USAGE;

	if (a != NULL && a->kind == TG_PIV_KIND_SYM) {
		*alg = a->id;
		r = 0;
	}
	return r;
}

/* "PREFIX" + suffix in new heap memory. */
static char *
path_with(const char *prefix, const char *suffix)
{
	size_t n = strlen(prefix) + strlen(suffix) + 1;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s%s", prefix, suffix);
	return p;
}

struct init_opts {
	const char *state, *pin, *puk, *mgm_hex, *mgm_alg, *mcert, *mkey;
	uint32_t serial;
	int force;
};

/* Returns -1 to go on, else the exit code (help printed: 0; usage: 2). */
/* Returns -1 to go on, else the exit code (0 after --help, 2 on bad usage). */
static int
parse_opts(int argc, char **argv, struct init_opts *o)
{
	enum { O_STATE = 256, O_SERIAL, O_PIN, O_PUK, O_MGM, O_MGM_ALG, O_MCERT, O_MKEY, O_FORCE };
	static const struct option longopts[] = {
	    {"state", required_argument, NULL, O_STATE},
	    {"serial", required_argument, NULL, O_SERIAL},
	    {"pin", required_argument, NULL, O_PIN},
	    {"puk", required_argument, NULL, O_PUK},
	    {"mgm-key", required_argument, NULL, O_MGM},
	    {"mgm-key-alg", required_argument, NULL, O_MGM_ALG},
	    {"manufacturer-cert", required_argument, NULL, O_MCERT},
	    {"manufacturer-key", required_argument, NULL, O_MKEY},
	    {"force", no_argument, NULL, O_FORCE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, rc = -1;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_STATE:
			o->state = optarg;
			break;
		case O_SERIAL:
			if (tg_sim_cmd_parse_u32(optarg, 1, UINT32_MAX, &o->serial) != 0) {
				rc = tg_sim_cmd_usage_error(
				    "init", "--serial '%s' is not a number from 1 to 4294967295",
				    optarg);
				goto out;
			}
			break;
		case O_PIN:
			o->pin = optarg;
			break;
		case O_PUK:
			o->puk = optarg;
			break;
		case O_MGM:
			o->mgm_hex = optarg;
			break;
		case O_MGM_ALG:
			o->mgm_alg = optarg;
			break;
		case O_MCERT:
			o->mcert = optarg;
			break;
		case O_MKEY:
			o->mkey = optarg;
			break;
		case O_FORCE:
			o->force = 1;
			break;
		case 'h':
			usage(stdout);
			rc = TG_SIM_EXIT_OK;
			goto out;
		default:
			rc = tg_sim_cmd_usage_error("init", "unknown or incomplete option '%s'",
			                            argv[optind - 1]);
			goto out;
		}
	}
	if ((rc = tg_sim_cmd_args_check("init", argc, argv, o->state)) != 0)
		goto out;
	if (o->pin != NULL && (strlen(o->pin) < PIN_MIN || strlen(o->pin) > PIN_MAX)) {
		rc = tg_sim_cmd_usage_error("init", "--pin must have 6 to 8 characters");
		goto out;
	}
	if (o->puk != NULL && (strlen(o->puk) < PIN_MIN || strlen(o->puk) > PIN_MAX)) {
		rc = tg_sim_cmd_usage_error("init", "--puk must have 6 to 8 characters");
		goto out;
	}
	if ((o->mcert == NULL) != (o->mkey == NULL)) {
		rc = tg_sim_cmd_usage_error(
		    "init", "--manufacturer-cert and --manufacturer-key go together; pass both "
		            "or neither");
		goto out;
	}
	if (o->mgm_alg != NULL && o->mgm_hex == NULL) {
		rc = tg_sim_cmd_usage_error("init", "--mgm-key-alg needs --mgm-key");
		goto out;
	}
	rc = -1; /* go on */
out:
	return rc;
}

/* Management key and algorithm from the options into p (key into buf). */
static int
mgm_key_setup(const struct init_opts *o, uint8_t *buf, size_t cap, struct tg_tok_params *p)
{
	size_t n = 0, want = 0;
	uint8_t alg = 0;
	int rc = 0;

	if (o->mgm_hex == NULL)
		goto out;
	if (tg_hex_decode(o->mgm_hex, buf, cap, &n) != 0) {
		rc = tg_sim_cmd_usage_error("init",
		                            "--mgm-key must be 32, 48 or 64 hexadecimal digits");
		goto out;
	}
	if (o->mgm_alg != NULL) {
		if (parse_mgm_alg(o->mgm_alg, &alg) != 0) {
			rc = tg_sim_cmd_usage_error(
			    "init", "--mgm-key-alg '%s' is not one of 3des, aes128, aes192, aes256",
			    o->mgm_alg);
			goto out;
		}
	} else {
		alg = n == 16 ? TG_PIV_ALG_AES128 : n == 32 ? TG_PIV_ALG_AES256 : TG_PIV_ALG_3DES;
	}
	if (tg_mgm_cipher(alg, &want) == NULL || want != n) {
		rc = tg_sim_cmd_usage_error("init", "--mgm-key has %zu bytes but %s keys have %zu",
		                            n, o->mgm_alg != NULL ? o->mgm_alg : "3des", want);
		goto out;
	}
	p->mgm_key = buf;
	p->mgm_key_len = n;
	p->mgm_key_alg = alg;
out:
	return rc;
}

/*
 * The manufacturer CA: given, or FILE.mfr-ca.{pem,key} (reused if both
 * exist, else created). Prints what it used.
 */
static int
mfrca_setup(const struct init_opts *o, uint8_t **cd, size_t *cl, uint8_t **kd, size_t *kl,
            struct tg_error *err)
{
	char *cert = NULL, *key = NULL;
	int have_cert, have_key, r = TG_ERR_ALLOC;

	if (o->mcert != NULL) {
		r = tg_sim_mfrca_load(o->mcert, o->mkey, cd, cl, kd, kl, err);
		goto out;
	}
	if ((cert = path_with(o->state, ".mfr-ca.pem")) == NULL ||
	    (key = path_with(o->state, ".mfr-ca.key")) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	have_cert = tg_sim_state_exists(cert);
	have_key = tg_sim_state_exists(key);
	if (have_cert != have_key) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "found %s but not %s; remove the lone file or pass "
		                 "--manufacturer-cert/--manufacturer-key",
		                 have_cert ? cert : key, have_cert ? key : cert);
		goto out;
	}
	if (!have_cert) {
		if ((r = tg_sim_mfrca_create(cert, key, err)) != 0)
			goto out;
		printf("created manufacturer CA: certificate %s, key %s (mode 0600)\n"
		       "  trust the certificate to verify this token's attestations; pass both\n"
		       "  to --manufacturer-cert/--manufacturer-key to make more tokens under it\n",
		       cert, key);
	} else {
		printf("using existing manufacturer CA: certificate %s, key %s\n", cert, key);
	}
	r = tg_sim_mfrca_load(cert, key, cd, cl, kd, kl, err);
out:
	free(cert);
	free(key);
	return r;
}

int
tg_sim_cmd_init(int argc, char **argv)
{
	struct init_opts o;
	struct tg_tok_params p;
	struct tg_tok_info info;
	struct tg_tok *tok = NULL;
	struct tg_error err;
	uint8_t mgm[MGM_KEY_MAX];
	uint8_t *cd = NULL, *kd = NULL, *blob = NULL;
	size_t cl = 0, kl = 0, bl = 0;
	int lockfd = -1, r, rc;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	tg_error_clear(&err);
	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		goto out;
	if ((rc = mgm_key_setup(&o, mgm, sizeof(mgm), &p)) != 0)
		goto out;
	rc = TG_SIM_EXIT_FAIL;
	/* Never replace a state file a running simulator serves. */
	if ((lockfd = tg_sim_state_lock(o.state, &err)) < 0) {
		rc = tg_sim_cmd_fail("init", TG_ERR_IO, &err);
		goto out;
	}
	/* Refuse early, before a manufacturer CA is made for nothing. */
	if (!o.force && tg_sim_state_exists(o.state)) {
		fprintf(stderr,
		        "tokengate-sim init: state file %s already exists; choose another path "
		        "or pass --force to overwrite it\n",
		        o.state);
		goto out;
	}
	if ((r = mfrca_setup(&o, &cd, &cl, &kd, &kl, &err)) != 0) {
		rc = tg_sim_cmd_fail("init", r, &err);
		goto out;
	}
	p.serial = o.serial;
	p.pin = o.pin;
	p.puk = o.puk;
	p.mfr_cert_der = cd;
	p.mfr_cert_len = cl;
	p.mfr_key_der = kd;
	p.mfr_key_len = kl;
	if ((r = tg_tok_create(&p, NULL, &tok)) != 0) {
		tg_error_set(&err, r, "cannot create the token: %s", tg_strerror(r));
		rc = tg_sim_cmd_fail("init", r, &err);
		goto out;
	}
	if ((r = tg_tok_save(tok, &blob, &bl)) != 0) {
		tg_error_set(&err, r, "cannot serialise the new token: %s", tg_strerror(r));
		rc = tg_sim_cmd_fail("init", r, &err);
		goto out;
	}
	if ((r = tg_sim_state_write(o.state, blob, bl, o.force, &err)) != 0) {
		rc = tg_sim_cmd_fail("init", r, &err);
		goto out;
	}
	tg_tok_info_get(tok, &info);
	printf("created token serial %u (firmware %u.%u.%u) in %s\n"
	       "  PIN %s, PUK %s, management key %s\n"
	       "  next: tokengate-sim run --state %s\n",
	       info.serial, info.version[0], info.version[1], info.version[2], o.state,
	       o.pin != NULL ? "as given" : "123456 (default)",
	       o.puk != NULL ? "as given" : "12345678 (default)",
	       o.mgm_hex != NULL ? "as given" : "default", o.state);
	rc = TG_SIM_EXIT_OK;
out:
	tg_wipe(mgm, sizeof(mgm));
	tg_freezero(blob, bl);
	tg_freezero(cd, cl);
	tg_freezero(kd, kl);
	tg_tok_free(tok);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}
