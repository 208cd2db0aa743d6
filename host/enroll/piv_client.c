/* piv_client.c — the PIV commands of enroll on libykpiv (tg_pivc.h). */
#include "tg_pivc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <ykpiv/ykpiv.h>

#include "tg_mgm.h"
#include "tg_piv.h"
#include "tg_pkey.h"
#include "tg_secret.h"

/* ---- protocol values libykpiv 2.2.0 does not name ---- */
#define SW_VERIFY_FAIL        0x63C0 /* | tries left */
#define SW_VERIFY_MASK        0xFFF0
#define SW_TRIES_MASK         0x000F
#define SW_MEMORY_FAILURE     0x6581
#define SW_WRONG_LENGTH       0x6700
#define SW_FUNC_NOT_SUPPORTED 0x6A81
#define SW_NOT_ENOUGH_MEMORY  0x6A84
#define SW_INCORRECT_P1P2     0x6A86
#define SW_CLA_NOT_SUPPORTED  0x6E00
#define TAG_DYN_AUTH          0x7C
#define TAG_WITNESS           0x80
#define TAG_CHALLENGE         0x81
#define TAG_RESPONSE          0x82
#define TAG_RSA_N             0x81
#define TAG_RSA_E             0x82
#define TAG_EC_POINT          0x86
#define PIN_MIN               6
#define EC_UNCOMPRESSED       0x04
#define P256_POINT_LEN        65
#define P384_POINT_LEN        97
#define RSA2048_LEN           256
#define RSA_E_MAX             4
#define CHALLENGE_MAX         16
#define READERS_MAX           (16 * 1024)
#define META_MAX              1024
#define ATTEST_MAX            3072 /* YKPIV_OBJ_MAX_SIZE */
#define SIG_MAX               512
#define VERSION_MAX           32
#define RSP_MAX               64

struct tg_pivc {
	ykpiv_state *yk;
	char reader[512];
};

void
tg_pivc_meta_clear(struct tg_pivc_meta *m)
{
	if (m == NULL)
		return;
	EVP_PKEY_free(m->pub);
	memset(m, 0, sizeof(*m));
}

const char *
tg_pivc_reader(const struct tg_pivc *p)
{
	return p->reader;
}

static const char *
op_name(enum tg_pivc_op op)
{
	const char *name = "a PIV command";

	switch (op) {
	case TG_PIVC_OP_CONNECT:
		name = "SELECT of the PIV application";
		break;
	case TG_PIVC_OP_METADATA:
		name = "GET METADATA";
		break;
	case TG_PIVC_OP_MGM_AUTH:
		name = "management key authentication";
		break;
	case TG_PIVC_OP_GENERATE:
		name = "key generation";
		break;
	case TG_PIVC_OP_ATTEST:
		name = "attestation";
		break;
	case TG_PIVC_OP_GET_DATA:
		name = "GET DATA";
		break;
	case TG_PIVC_OP_VERIFY:
		name = "PIN verification";
		break;
	case TG_PIVC_OP_SIGN:
		name = "signing";
		break;
	case TG_PIVC_OP_PUT_DATA:
		name = "storing the certificate (PUT DATA)";
		break;
	default:
		break;
	}
	return name;
}

int
tg_pivc_sw_error(uint16_t sw, enum tg_pivc_op op, uint8_t slot, const char *reader,
                 struct tg_error *err)
{
	const char *rd = reader != NULL ? reader : "?";
	const char *what = op_name(op);
	unsigned tries;
	int r = 0;

	if (sw == SW_SUCCESS)
		goto out;
	if ((sw & SW_VERIFY_MASK) == SW_VERIFY_FAIL) {
		tries = sw & SW_TRIES_MASK;
		if (tries == 0) {
			r = tg_error_set(err, TG_ERR_PIN_BLOCKED,
			                 "wrong PIN for the token in '%s': no tries left, the PIN "
			                 "is now blocked (%04X); unblock it with the PUK: "
			                 "yubico-piv-tool -r '%s' -a unblock-pin",
			                 rd, sw, rd);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_PIN_INCORRECT,
		                 "wrong PIN for the token in '%s': %u %s left before the PIN "
		                 "blocks (%04X); check --pin-source / TOKENGATE_PIN",
		                 rd, tries, tries == 1 ? "try" : "tries", sw);
		goto out;
	}
	switch (sw) {
	case SW_ERR_SECURITY_STATUS:
		if (op == TG_PIVC_OP_MGM_AUTH) {
			r = tg_error_set(err, TG_ERR_AUTH_REQUIRED,
			                 "management key authentication with the token in "
			                 "'%s' failed (6982): the key given (--mgm-key or "
			                 "TOKENGATE_MGM_KEY) is not this token's management key",
			                 rd);
			goto out;
		}
		if (op == TG_PIVC_OP_SIGN) {
			r = tg_error_set(err, TG_ERR_AUTH_REQUIRED,
			                 "the token in '%s' refused to sign with slot %02x "
			                 "(6982): the PIN was not verified or the token was not "
			                 "touched in time",
			                 rd, slot);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_AUTH_REQUIRED,
		                 "the token in '%s' refused %s (6982 security status not "
		                 "satisfied): management key or PIN authentication is needed",
		                 rd, what);
		goto out;
	case SW_ERR_AUTH_BLOCKED:
		if (op == TG_PIVC_OP_MGM_AUTH) {
			r = tg_error_set(err, TG_ERR_PIN_BLOCKED,
			                 "the management key of the token in '%s' is blocked "
			                 "(6983)",
			                 rd);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_PIN_BLOCKED,
		                 "the PIN of the token in '%s' is blocked (6983); unblock it "
		                 "with the PUK: yubico-piv-tool -r '%s' -a unblock-pin",
		                 rd, rd);
		goto out;
	case SW_ERR_INCORRECT_PARAM:
		if (op == TG_PIVC_OP_ATTEST) {
			r = tg_error_set(err, TG_ERR_ATTESTATION,
			                 "the key in slot %02x of the token in '%s' cannot be "
			                 "attested (6A80): it was imported, not generated on the "
			                 "token, so nothing proves it never existed outside; "
			                 "enroll a key generated on the token (tokengate enroll "
			                 "without --existing-key)",
			                 slot, rd);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_STATUS_WORD,
		                 "the token in '%s' rejected the data of %s (6A80 incorrect "
		                 "data)",
		                 rd, what);
		goto out;
	case SW_ERR_FILE_NOT_FOUND:
		if (op == TG_PIVC_OP_CONNECT) {
			r = tg_error_set(err, TG_ERR_NOT_FOUND,
			                 "the card in '%s' has no PIV application (6A82); use a "
			                 "PIV token (YubiKey 4/5 or compatible)",
			                 rd);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "%s on the token in '%s': object not found (6A82)", what, rd);
		goto out;
	case SW_ERR_REFERENCE_NOT_FOUND:
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "%s on the token in '%s': slot %02x holds no key (6A88); "
		                 "generate one (tokengate enroll without --existing-key)",
		                 what, rd, slot);
		goto out;
	case SW_ERR_NOT_SUPPORTED:
	case SW_FUNC_NOT_SUPPORTED:
	case SW_CLA_NOT_SUPPORTED:
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "the token in '%s' does not support %s (%04X); enroll needs "
		                 "a PIV token with the Yubico extensions (YubiKey 4.3+ or "
		                 "compatible)",
		                 rd, what, sw);
		goto out;
	case SW_INCORRECT_P1P2:
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "the token in '%s' does not support the algorithm, slot or "
		                 "policy asked for in %s (6A86); try another --algorithm or "
		                 "policy",
		                 rd, what);
		goto out;
	case SW_ERR_CONDITIONS_OF_USE:
		r = tg_error_set(err, TG_ERR_TOUCH_REQUIRED,
		                 "the token in '%s' refused %s (6985 conditions of use not "
		                 "satisfied): touch the token when it blinks and try again",
		                 rd, what);
		goto out;
	case SW_NOT_ENOUGH_MEMORY:
	case SW_MEMORY_FAILURE:
		r = tg_error_set(err, TG_ERR_STATUS_WORD,
		                 "the token in '%s' has no room for %s (%04X); delete unused "
		                 "certificates or data objects",
		                 rd, what, sw);
		goto out;
	case SW_WRONG_LENGTH:
		r = tg_error_set(err, TG_ERR_STATUS_WORD,
		                 "the token in '%s' rejected the length of %s (6700)", rd, what);
		goto out;
	default:
		r = tg_error_set(err, TG_ERR_STATUS_WORD, "the token in '%s' answered %04X to %s",
		                 rd, sw, what);
		goto out;
	}
out:
	return r;
}

/* Appends "'a', 'b'" (every reader of the list) to msg. */
static void
readers_str(const uint8_t *list, size_t n, char *msg, size_t len)
{
	struct tg_buf b;
	size_t used = 0, k;
	char name[256];
	uint8_t c;

	msg[0] = '\0';
	tg_buf_reader(&b, list, n);
	while (tg_buf_remaining(&b) > 0 && used < len) {
		k = strnlen((const char *)tg_buf_cur(&b), tg_buf_remaining(&b));
		if (k == 0 || k == tg_buf_remaining(&b) || k >= sizeof(name) ||
		    tg_buf_get_bytes(&b, (uint8_t *)name, k) != 0 || tg_buf_get_u8(&b, &c) != 0)
			break;
		name[k] = '\0';
		used += (size_t)snprintf(msg + used, len - used, "%s'%s'", used ? ", " : "", name);
	}
	if (used == 0)
		snprintf(msg, len, "none");
}

int
tg_pivc_reader_pick(const uint8_t *list, size_t n, const char *want, char *out, size_t outlen,
                    struct tg_error *err)
{
	struct tg_buf b;
	char name[256], found[256], present[2048];
	size_t k;
	int nsub = 0, exact = 0, r = TG_ERR_FORMAT;
	uint8_t nul;

	found[0] = '\0';
	tg_buf_reader(&b, list, n);
	while (tg_buf_remaining(&b) > 0) {
		k = strnlen((const char *)tg_buf_cur(&b), tg_buf_remaining(&b));
		if (k == tg_buf_remaining(&b)) {
			tg_error_set(err, r, "the reader list from pcscd is not NUL-terminated");
			goto out;
		}
		if (k == 0)
			break; /* the empty name ends the list */
		if (k >= sizeof(name)) {
			tg_error_set(err, r, "a reader name from pcscd is too long");
			goto out;
		}
		if (tg_buf_get_bytes(&b, (uint8_t *)name, k) != 0 || tg_buf_get_u8(&b, &nul) != 0)
			goto out;
		name[k] = '\0';
		if (strcmp(name, want) == 0) {
			snprintf(found, sizeof(found), "%s", name);
			exact = 1;
			break;
		}
		if (strstr(name, want) != NULL) {
			if (nsub++ == 0)
				snprintf(found, sizeof(found), "%s", name);
		}
	}
	readers_str(list, n, present, sizeof(present));
	if (!exact && nsub == 0) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "no reader matches '%s'; readers present: %s; give --reader "
		                 "with one of these names (or a unique part of it)",
		                 want, present);
		goto out;
	}
	if (!exact && nsub > 1) {
		r = tg_error_set(err, TG_ERR_INVALID_ARG,
		                 "%d readers match '%s': %s; give --reader with the full name",
		                 nsub, want, present);
		goto out;
	}
	if (strlen(found) >= outlen) {
		r = tg_error_set(err, TG_ERR_NO_SPACE, "reader name too long");
		goto out;
	}
	snprintf(out, outlen, "%s", found);
	r = 0;
out:
	return r;
}

int
tg_pivc_parse_pubkey_inner(const uint8_t *p, size_t n, uint8_t alg, EVP_PKEY **out,
                           struct tg_error *err)
{
	struct tg_buf b, v1, v2;
	uint8_t first = 0;
	size_t want;
	const char *group;
	int r = TG_ERR_FORMAT;

	tg_buf_reader(&b, p, n);
	switch (alg) {
	case YKPIV_ALGO_ECCP256:
	case YKPIV_ALGO_ECCP384:
		want = alg == YKPIV_ALGO_ECCP256 ? P256_POINT_LEN : P384_POINT_LEN;
		group = alg == YKPIV_ALGO_ECCP256 ? "P-256" : "P-384";
		if (tg_buf_get_tlv_tag(&b, TAG_EC_POINT, &v1) != 0 || tg_buf_expect_end(&b) != 0) {
			tg_error_set(err, r, "public key: want exactly one EC point (tag 86)");
			goto out;
		}
		if (tg_buf_remaining(&v1) != want || tg_buf_peek_u8(&v1, &first) != 0 ||
		    first != EC_UNCOMPRESSED) {
			tg_error_set(err, r,
			             "public key: EC point of %zu bytes, want %zu (uncompressed)",
			             tg_buf_remaining(&v1), want);
			goto out;
		}
		if ((r = tg_pkey_ec_public(group, tg_buf_cur(&v1), want, out)) != 0) {
			tg_error_set(err, TG_ERR_FORMAT, "public key: the EC point is not on %s",
			             group);
			r = TG_ERR_FORMAT;
			goto out;
		}
		break;
	case YKPIV_ALGO_RSA2048:
		if (tg_buf_get_tlv_tag(&b, TAG_RSA_N, &v1) != 0 ||
		    tg_buf_get_tlv_tag(&b, TAG_RSA_E, &v2) != 0 || tg_buf_expect_end(&b) != 0) {
			tg_error_set(err, r, "public key: want modulus (81) then exponent (82)");
			goto out;
		}
		if (tg_buf_remaining(&v1) != RSA2048_LEN || tg_buf_peek_u8(&v1, &first) != 0 ||
		    (first & 0x80) == 0) {
			tg_error_set(err, r, "public key: RSA modulus is not 2048 bits");
			goto out;
		}
		if (tg_buf_remaining(&v2) == 0 || tg_buf_remaining(&v2) > RSA_E_MAX) {
			tg_error_set(err, r, "public key: RSA exponent of %zu bytes",
			             tg_buf_remaining(&v2));
			goto out;
		}
		if ((r = tg_pkey_rsa_public(tg_buf_cur(&v1), RSA2048_LEN, tg_buf_cur(&v2),
		                            tg_buf_remaining(&v2), out)) != 0) {
			tg_error_set(err, r, "public key: OpenSSL refused the RSA key");
			goto out;
		}
		break;
	default:
		r = tg_error_set(err, TG_ERR_UNSUPPORTED, "public key of algorithm %02X", alg);
		goto out;
	}
	r = 0;
out:
	return r;
}

int
tg_pivc_parse_dynauth(const uint8_t *p, size_t n, uint32_t tag, struct tg_buf *value,
                      struct tg_error *err)
{
	struct tg_buf b, t;
	int r = TG_ERR_FORMAT;

	tg_buf_reader(&b, p, n);
	if (tg_buf_get_tlv_tag(&b, TAG_DYN_AUTH, &t) != 0 || tg_buf_expect_end(&b) != 0 ||
	    tg_buf_get_tlv_tag(&t, tag, value) != 0 || tg_buf_expect_end(&t) != 0) {
		tg_error_set(err, r, "GENERAL AUTHENTICATE response: want exactly 7C { %02X }",
		             (unsigned)tag);
		goto out;
	}
	r = 0;
out:
	return r;
}

int
tg_pivc_parse_cert_der(const uint8_t *p, size_t n, X509 **out, struct tg_error *err)
{
	const unsigned char *q = p;
	X509 *x = NULL;
	int r = TG_ERR_FORMAT;

	if (n == 0 || n > LONG_MAX || (x = d2i_X509(NULL, &q, (long)n)) == NULL) {
		tg_error_set(err, r, "certificate from the token is not DER X.509");
		goto out;
	}
	if ((size_t)(q - p) != n) {
		tg_error_set(err, TG_ERR_TRAILING,
		             "certificate from the token has %zu bytes "
		             "after it",
		             n - (size_t)(q - p));
		r = TG_ERR_TRAILING;
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	X509_free(x);
	return r;
}

/* One ECB block operation (enc 1 encrypt, 0 decrypt) of bs bytes. */
static int
ecb(const EVP_CIPHER *c, const uint8_t *key, int enc, const uint8_t *in, uint8_t *out, int bs)
{
	EVP_CIPHER_CTX *x = NULL;
	int len = 0, r = TG_ERR_CRYPTO;

	if ((x = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_CipherInit_ex(x, c, NULL, key, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_set_padding(x, 0) != 1 || EVP_CipherUpdate(x, out, &len, in, bs) != 1 ||
	    len != bs)
		goto out;
	r = 0;
out:
	EVP_CIPHER_CTX_free(x);
	return r;
}

/*
 * Maps a libykpiv result of op to 0 or a TG_ERR_* code with a message.
 * libykpiv 2.2.0 keeps most status words to itself; where one of its codes
 * stands for exactly one status word (ykpiv_sign_data, ykpiv_attest and
 * ykpiv_util_generate_key return YKPIV_AUTHENTICATION_ERROR for 6982 only;
 * ykpiv_get_metadata YKPIV_KEY_ERROR for 6A88, YKPIV_NOT_SUPPORTED for
 * 6D00; ykpiv_attest YKPIV_ARGUMENT_ERROR for 6A80), that word's message
 * is given.
 */
static int
rc_error(const struct tg_pivc *p, ykpiv_rc rc, enum tg_pivc_op op, uint8_t slot,
         struct tg_error *err)
{
	int r = 0;

	switch (rc) {
	case YKPIV_OK:
		break;
	case YKPIV_AUTHENTICATION_ERROR:
		r = tg_pivc_sw_error(SW_ERR_SECURITY_STATUS, op, slot, p->reader, err);
		break;
	case YKPIV_PIN_LOCKED:
		r = tg_pivc_sw_error(SW_ERR_AUTH_BLOCKED, op, slot, p->reader, err);
		break;
	case YKPIV_NOT_SUPPORTED:
		r = tg_pivc_sw_error(SW_ERR_NOT_SUPPORTED, op, slot, p->reader, err);
		break;
	case YKPIV_KEY_ERROR:
		r = tg_pivc_sw_error(SW_ERR_REFERENCE_NOT_FOUND, op, slot, p->reader, err);
		break;
	case YKPIV_PCSC_ERROR:
		r = tg_error_set(err, TG_ERR_CARD_REMOVED,
		                 "the connection to the token in '%s' failed during %s (PC/SC "
		                 "error): the token was removed or another program reset it; "
		                 "insert it and try again",
		                 p->reader, op_name(op));
		break;
	case YKPIV_ALGORITHM_ERROR:
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "%s on the token in '%s': the algorithm is not supported "
		                 "(libykpiv: %s); try another --algorithm",
		                 op_name(op), p->reader, ykpiv_strerror(rc));
		break;
	case YKPIV_MEMORY_ERROR:
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory during %s", op_name(op));
		break;
	default:
		r = tg_error_set(err, TG_ERR_STATUS_WORD,
		                 "the token in '%s' refused %s (libykpiv: %s)", p->reader,
		                 op_name(op), ykpiv_strerror(rc));
		break;
	}
	return r;
}

/* ---- connection ---- */

int
tg_pivc_open(const char *reader, struct tg_pivc **out, struct tg_error *err)
{
	struct tg_pivc *p = NULL;
	char *list = NULL;
	size_t len = READERS_MAX;
	ykpiv_rc rc;
	int r = TG_ERR_ALLOC;

	if ((p = calloc(1, sizeof(*p))) == NULL || (list = calloc(1, READERS_MAX)) == NULL)
		goto out;
	if (ykpiv_init(&p->yk, 0) != YKPIV_OK)
		goto out;
	/* ykpiv_list_readers gives no PC/SC code: either pcscd is not
	 * reachable or it sees no reader (SCARD_E_NO_READERS_AVAILABLE) */
	if ((rc = ykpiv_list_readers(p->yk, list, &len)) != YKPIV_OK) {
		r = tg_error_set(err, TG_ERR_PCSC,
		                 "no reader matches '%s': pcscd is not running or sees no "
		                 "reader (libykpiv: %s); start it (systemctl start "
		                 "pcscd.socket) and plug in the token",
		                 reader, ykpiv_strerror(rc));
		goto out;
	}
	if ((r = tg_pivc_reader_pick((const uint8_t *)list, len, reader, p->reader,
	                             sizeof(p->reader), err)) != 0)
		goto out;
	/* ykpiv_connect takes the first reader whose name contains the one
	 * given, and selects the PIV application on it */
	rc = ykpiv_connect(p->yk, p->reader);
	if (rc == YKPIV_PCSC_ERROR) {
		r = tg_error_set(err, TG_ERR_CARD_REMOVED,
		                 "cannot connect to the card in reader '%s': no token in the "
		                 "reader: insert it and try again (or another program holds it "
		                 "exclusively, e.g. gpg-agent/scdaemon: close it)",
		                 p->reader);
		goto out;
	}
	if (rc != YKPIV_OK) {
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "the card in '%s' has no PIV application (libykpiv: %s); use a "
		                 "PIV token (YubiKey 4/5 or compatible)",
		                 p->reader, ykpiv_strerror(rc));
		goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
out:
	free(list);
	tg_pivc_close(p);
	return r;
}

void
tg_pivc_close(struct tg_pivc *p)
{
	if (p == NULL)
		return;
	if (p->yk != NULL)
		(void)ykpiv_done(p->yk);
	free(p);
}

int
tg_pivc_version(struct tg_pivc *p, char *buf, size_t n)
{
	return ykpiv_get_version(p->yk, buf, n) == YKPIV_OK ? 0 : TG_ERR_UNSUPPORTED;
}

int
tg_pivc_serial(struct tg_pivc *p, uint32_t *serial)
{
	return ykpiv_get_serial(p->yk, serial) == YKPIV_OK ? 0 : TG_ERR_UNSUPPORTED;
}

/* ---- metadata ---- */

int
tg_pivc_parse_mgm_alg(const uint8_t *p, size_t n, uint8_t *alg, struct tg_error *err)
{
	struct tg_buf b, v;
	uint32_t tag;
	int seen = 0, r = TG_ERR_FORMAT;

	tg_buf_reader(&b, p, n);
	while (tg_buf_remaining(&b) > 0) {
		if (tg_buf_get_tlv(&b, &tag, &v) != 0) {
			tg_error_set(err, r, "GET METADATA response: malformed TLV");
			goto out;
		}
		if (tag != YKPIV_METADATA_ALGORITHM_TAG)
			continue;
		if (seen++ || tg_buf_get_u8(&v, alg) != 0 || tg_buf_expect_end(&v) != 0) {
			tg_error_set(err, r, "GET METADATA response: bad algorithm (tag 01)");
			goto out;
		}
	}
	if (!seen) {
		tg_error_set(err, r, "GET METADATA response: no algorithm (tag 01)");
		goto out;
	}
	r = 0;
out:
	return r;
}

/* The raw GET METADATA response of key reference ref into buf. */
static int
metadata_raw(struct tg_pivc *p, uint8_t ref, uint8_t *buf, size_t *len, struct tg_error *err)
{
	return rc_error(p, ykpiv_get_metadata(p->yk, ref, buf, len), TG_PIVC_OP_METADATA, ref, err);
}

int
tg_pivc_metadata(struct tg_pivc *p, uint8_t slot, struct tg_pivc_meta *m, struct tg_error *err)
{
	uint8_t raw[META_MAX];
	size_t len = sizeof(raw);
	ykpiv_metadata md;
	int r;

	tg_pivc_meta_clear(m);
	if ((r = metadata_raw(p, slot, raw, &len, err)) != 0)
		goto out;
	if (ykpiv_util_parse_metadata(raw, len, &md) != YKPIV_OK) {
		r = tg_error_set(err, TG_ERR_FORMAT,
		                 "GET METADATA of slot %02x of the token in '%s': libykpiv cannot "
		                 "parse the answer",
		                 slot, p->reader);
		goto out;
	}
	m->alg = md.algorithm;
	m->pin_policy = md.pin_policy;
	m->touch_policy = md.touch_policy;
	m->origin = md.origin;
	r = tg_pivc_parse_pubkey_inner(md.pubkey, md.pubkey_len, md.algorithm, &m->pub, err);
out:
	if (r != 0)
		tg_pivc_meta_clear(m);
	return r;
}

int
tg_pivc_mgm_alg(struct tg_pivc *p, uint8_t *alg, struct tg_error *err)
{
	uint8_t raw[META_MAX];
	size_t len = sizeof(raw);
	int r;

	*alg = TG_PIV_ALG_3DES;
	r = metadata_raw(p, YKPIV_KEY_CARDMGM, raw, &len, err);
	if (r == TG_ERR_UNSUPPORTED || r == TG_ERR_NOT_FOUND || r == TG_ERR_STATUS_WORD) {
		tg_error_clear(err); /* before firmware 5.3: 3DES */
		r = 0;
		goto out;
	}
	if (r == 0)
		r = tg_pivc_parse_mgm_alg(raw, len, alg, err);
out:
	return r;
}

/* ---- key and certificates ---- */

int
tg_pivc_pubkey_from_parts(uint8_t alg, const uint8_t *point, size_t point_len, const uint8_t *mod,
                          size_t mod_len, const uint8_t *exp, size_t exp_len, EVP_PKEY **out,
                          struct tg_error *err)
{
	struct tg_buf w;
	uint8_t inner[RSA2048_LEN + RSA_E_MAX + 16];
	int r = TG_ERR_FORMAT;

	/* the parts back into the 7F49 inner TLVs: one checked parser */
	tg_buf_writer(&w, inner, sizeof(inner));
	if (YKPIV_IS_EC(alg)) {
		if (point == NULL || tg_buf_put_tlv(&w, TAG_EC_POINT, point, point_len) != 0)
			goto bad;
	} else if (alg == YKPIV_ALGO_RSA2048) {
		if (mod == NULL || exp == NULL ||
		    tg_buf_put_tlv(&w, TAG_RSA_N, mod, mod_len) != 0 ||
		    tg_buf_put_tlv(&w, TAG_RSA_E, exp, exp_len) != 0)
			goto bad;
	}
	r = tg_pivc_parse_pubkey_inner(tg_buf_data(&w), tg_buf_len(&w), alg, out, err);
	goto out;
bad:
	tg_error_set(err, r, "GENERATE: the token returned a public key of the wrong size");
out:
	return r;
}

int
tg_pivc_generate(struct tg_pivc *p, uint8_t slot, uint8_t alg, uint8_t pin_policy,
                 uint8_t touch_policy, EVP_PKEY **pub, struct tg_error *err)
{
	uint8_t *mod = NULL, *exp = NULL, *point = NULL;
	size_t mod_len = 0, exp_len = 0, point_len = 0;
	ykpiv_rc rc;
	int r;

	rc = ykpiv_util_generate_key(p->yk, slot, alg, pin_policy, touch_policy, &mod, &mod_len,
	                             &exp, &exp_len, &point, &point_len);
	if (rc == YKPIV_GENERIC_ERROR) {
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "the token in '%s' refused key generation in slot %02x "
		                 "(libykpiv: %s): it may not support the algorithm or a policy "
		                 "asked for; try another --algorithm or policy",
		                 p->reader, slot, ykpiv_strerror(rc));
		goto out;
	}
	if ((r = rc_error(p, rc, TG_PIVC_OP_GENERATE, slot, err)) != 0)
		goto out;
	r = tg_pivc_pubkey_from_parts(alg, point, point_len, mod, mod_len, exp, exp_len, pub, err);
out:
	ykpiv_util_free(p->yk, mod);
	ykpiv_util_free(p->yk, exp);
	ykpiv_util_free(p->yk, point);
	return r;
}

int
tg_pivc_attest(struct tg_pivc *p, uint8_t slot, X509 **out, struct tg_error *err)
{
	struct tg_pivc_meta m;
	uint8_t der[ATTEST_MAX];
	size_t len = sizeof(der);
	ykpiv_rc rc;
	int r;

	memset(&m, 0, sizeof(m));
	rc = ykpiv_attest(p->yk, slot, der, &len);
	/* ykpiv_attest: 6A80 (an imported key) YKPIV_ARGUMENT_ERROR */
	if (rc == YKPIV_ARGUMENT_ERROR) {
		r = tg_pivc_sw_error(SW_ERR_INCORRECT_PARAM, TG_PIVC_OP_ATTEST, slot, p->reader,
		                     err);
		goto out;
	}
	if (rc == YKPIV_GENERIC_ERROR) {
		/* another status word, or not a certificate: the slot's
		 * metadata may still say the key was imported */
		if (tg_pivc_metadata(p, slot, &m, NULL) == 0 &&
		    m.origin == YKPIV_METADATA_ORIGIN_IMPORTED) {
			r = tg_pivc_sw_error(SW_ERR_INCORRECT_PARAM, TG_PIVC_OP_ATTEST, slot,
			                     p->reader, err);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_ATTESTATION,
		                 "the token in '%s' cannot attest the key in slot %02x (libykpiv: "
		                 "%s)",
		                 p->reader, slot, ykpiv_strerror(rc));
		goto out;
	}
	if ((r = rc_error(p, rc, TG_PIVC_OP_ATTEST, slot, err)) != 0)
		goto out;
	r = tg_pivc_parse_cert_der(der, len, out, err);
out:
	tg_pivc_meta_clear(&m);
	return r;
}

int
tg_pivc_cert_get(struct tg_pivc *p, uint8_t slot, X509 **out, struct tg_error *err)
{
	uint8_t *der = NULL;
	size_t len = 0;
	ykpiv_rc rc;
	int r;

	*out = NULL;
	rc = ykpiv_util_read_cert(p->yk, slot, &der, &len);
	/* libykpiv 2.2.0: no object (6A82) is YKPIV_GENERIC_ERROR, or
	 * YKPIV_INVALID_OBJECT as it finds no certificate (tag 70) either */
	if (rc == YKPIV_GENERIC_ERROR || rc == YKPIV_INVALID_OBJECT ||
	    (rc == YKPIV_OK && len == 0)) {
		r = 0;
		goto out;
	}
	if ((r = rc_error(p, rc, TG_PIVC_OP_GET_DATA, slot, err)) != 0)
		goto out;
	r = tg_pivc_parse_cert_der(der, len, out, err);
out:
	ykpiv_util_free(p->yk, der);
	return r;
}

int
tg_pivc_verify_pin(struct tg_pivc *p, const char *pin, struct tg_error *err)
{
	size_t n = strlen(pin);
	int tries = -1, r = TG_ERR_INVALID_ARG;
	ykpiv_rc rc;

	if (n < PIN_MIN || n > TG_PIVC_PIN_LEN) {
		tg_error_set(err, r, "a PIV PIN has 6 to 8 characters, the one given has %zu", n);
		goto out;
	}
	rc = ykpiv_verify_select(p->yk, pin, n, &tries, false);
	if (rc == YKPIV_WRONG_PIN && tries >= 0 && tries <= (int)SW_TRIES_MASK) {
		r = tg_pivc_sw_error((uint16_t)(SW_VERIFY_FAIL | (unsigned)tries),
		                     TG_PIVC_OP_VERIFY, 0, p->reader, err);
		goto out;
	}
	r = rc_error(p, rc, TG_PIVC_OP_VERIFY, 0, err);
out:
	return r;
}

int
tg_pivc_sign(struct tg_pivc *p, uint8_t slot, uint8_t alg, const uint8_t *in, size_t n,
             uint8_t **sig, size_t *siglen, struct tg_error *err)
{
	uint8_t out[SIG_MAX], *copy = NULL;
	size_t len = sizeof(out);
	int r;

	if ((r = rc_error(p, ykpiv_sign_data(p->yk, in, n, out, &len, alg, slot), TG_PIVC_OP_SIGN,
	                  slot, err)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (len == 0) {
		tg_error_set(err, r, "the token returned an empty signature");
		goto out;
	}
	r = TG_ERR_ALLOC;
	if ((copy = malloc(len)) == NULL)
		goto out;
	memcpy(copy, out, len);
	*sig = copy;
	*siglen = len;
	r = 0;
out:
	return r;
}

int
tg_pivc_cert_put(struct tg_pivc *p, uint8_t slot, X509 *cert, struct tg_error *err)
{
	unsigned char *der = NULL;
	int n, r = TG_ERR_CRYPTO;

	if ((n = i2d_X509(cert, &der)) <= 0) {
		tg_error_set(err, r, "cannot encode the certificate");
		goto out;
	}
	r = rc_error(
	    p, ykpiv_util_write_cert(p->yk, slot, der, (size_t)n, YKPIV_CERTINFO_UNCOMPRESSED),
	    TG_PIVC_OP_PUT_DATA, slot, err);
out:
	OPENSSL_free(der);
	return r;
}

/*
 * One GENERAL AUTHENTICATE of the management key (algorithm alg) sent
 * with ykpiv_transfer_data; its status word mapped by tg_pivc_sw_error.
 */
static int
gen_auth(struct tg_pivc *p, uint8_t alg, const uint8_t *in, size_t n, uint8_t *out, size_t *outlen,
         struct tg_error *err)
{
	const unsigned char templ[4] = {0, YKPIV_INS_AUTHENTICATE, alg, YKPIV_KEY_CARDMGM};
	unsigned long len = (unsigned long)*outlen;
	int sw = 0, r;

	if ((r = rc_error(p, ykpiv_transfer_data(p->yk, templ, in, (long)n, out, &len, &sw),
	                  TG_PIVC_OP_MGM_AUTH, YKPIV_KEY_CARDMGM, err)) != 0)
		goto out;
	if ((r = tg_pivc_sw_error((uint16_t)sw, TG_PIVC_OP_MGM_AUTH, YKPIV_KEY_CARDMGM, p->reader,
	                          err)) != 0)
		goto out;
	*outlen = (size_t)len;
out:
	return r;
}

int
tg_pivc_mgm_auth(struct tg_pivc *p, uint8_t alg, const uint8_t *key, size_t keylen,
                 struct tg_error *err)
{
	static const uint8_t step1[] = {TAG_DYN_AUTH, 0x02, TAG_WITNESS, 0x00};
	const EVP_CIPHER *c;
	struct tg_buf v, w;
	uint8_t rsp[RSP_MAX];
	size_t rsplen = sizeof(rsp);
	uint8_t witness[CHALLENGE_MAX], chal[CHALLENGE_MAX], expect[CHALLENGE_MAX];
	uint8_t req[64];
	size_t need = 0, mark = 0;
	int bs, r = TG_ERR_INVALID_ARG;

	if ((c = tg_mgm_cipher(alg, &need)) == NULL) {
		tg_error_set(err, TG_ERR_UNSUPPORTED,
		             "management key algorithm %02X is not "
		             "supported (3DES, AES-128/192/256 are)",
		             alg);
		r = TG_ERR_UNSUPPORTED;
		goto out;
	}
	if (keylen != need) {
		tg_error_set(err, r,
		             "the token's management key is %s (%zu bytes) but the key given has "
		             "%zu bytes; give --mgm-key with %zu hex digits",
		             alg == TG_PIV_ALG_3DES ? "3DES" : "AES", need, keylen, 2 * need);
		goto out;
	}
	if (alg == TG_PIV_ALG_3DES) {
		r = rc_error(p, ykpiv_authenticate(p->yk, key), TG_PIVC_OP_MGM_AUTH,
		             YKPIV_KEY_CARDMGM, err);
		goto out;
	}
	/* AES: libykpiv 2.2.0 knows 3DES only; the same exchange here */
	bs = EVP_CIPHER_get_block_size(c);
	/* step 1: ask for a witness, encrypted with the card's key */
	if ((r = gen_auth(p, alg, step1, sizeof(step1), rsp, &rsplen, err)) != 0)
		goto out;
	if ((r = tg_pivc_parse_dynauth(rsp, rsplen, TAG_WITNESS, &v, err)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (tg_buf_remaining(&v) != (size_t)bs) {
		tg_error_set(err, r, "management key witness of %zu bytes, want %d",
		             tg_buf_remaining(&v), bs);
		goto out;
	}
	if ((r = ecb(c, key, 0, tg_buf_cur(&v), witness, bs)) != 0 || RAND_bytes(chal, bs) != 1 ||
	    (r = ecb(c, key, 1, chal, expect, bs)) != 0) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "management key cipher failed");
		goto out;
	}
	/* step 2: the decrypted witness and our challenge */
	tg_buf_writer(&w, req, sizeof(req));
	r = TG_ERR_INTERNAL;
	if (tg_buf_tlv_begin(&w, TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(&w, TAG_WITNESS, witness, (size_t)bs) != 0 ||
	    tg_buf_put_tlv(&w, TAG_CHALLENGE, chal, (size_t)bs) != 0 ||
	    tg_buf_tlv_end(&w, mark) != 0)
		goto out;
	rsplen = sizeof(rsp);
	if ((r = gen_auth(p, alg, tg_buf_data(&w), tg_buf_len(&w), rsp, &rsplen, err)) != 0)
		goto out;
	if ((r = tg_pivc_parse_dynauth(rsp, rsplen, TAG_RESPONSE, &v, err)) != 0)
		goto out;
	if (!tg_secret_eq(tg_buf_cur(&v), tg_buf_remaining(&v), expect, (size_t)bs)) {
		r = tg_error_set(err, TG_ERR_AUTH_REQUIRED,
		                 "the token in '%s' did not prove it knows the management key: "
		                 "its answer to our challenge is wrong; it may not be a genuine "
		                 "token",
		                 p->reader);
		goto out;
	}
	r = 0;
out:
	tg_wipe(witness, sizeof(witness));
	tg_wipe(expect, sizeof(expect));
	tg_wipe(req, sizeof(req));
	tg_wipe(rsp, sizeof(rsp));
	return r;
}
