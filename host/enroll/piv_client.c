/* piv_client.c — the host side of the PIV commands of enroll (tg_pivc.h). */
#include "tg_pivc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "tg_mgm.h"
#include "tg_pkey.h"
#include "tg_secret.h"

/* ---- protocol values ---- */
#define INS_SELECT       0xA4
#define INS_GET_DATA     0xCB
#define INS_PUT_DATA     0xDB
#define INS_VERIFY       0x20
#define INS_GENERATE     0x47
#define INS_GENERAL_AUTH 0x87
#define INS_GET_VERSION  0xFD
#define INS_GET_SERIAL   0xF8
#define INS_ATTEST       0xF9
#define INS_GET_METADATA 0xF7

#define SW_OK                   0x9000
#define SW_VERIFY_FAIL          0x63C0 /* | tries left */
#define SW_VERIFY_MASK          0xFFF0
#define SW_TRIES_MASK           0x000F
#define SW_MEMORY_FAILURE       0x6581
#define SW_WRONG_LENGTH         0x6700
#define SW_SECURITY_STATUS      0x6982
#define SW_AUTH_BLOCKED         0x6983
#define SW_CONDITIONS           0x6985
#define SW_WRONG_DATA           0x6A80
#define SW_FUNC_NOT_SUPPORTED   0x6A81
#define SW_FILE_NOT_FOUND       0x6A82
#define SW_NOT_ENOUGH_MEMORY    0x6A84
#define SW_INCORRECT_P1P2       0x6A86
#define SW_REF_NOT_FOUND        0x6A88
#define SW_INS_NOT_SUPPORTED    0x6D00
#define SW_CLA_NOT_SUPPORTED    0x6E00
#define SW_NO_PRECISE_DIAGNOSIS 0x6F00

#define P1_SELECT_AID         0x04
#define P1P2_GET_DATA         0x3FFF
#define OBJ_CERT_9A           0x5FC105 /* SP 800-73-4 Part 1 Table 3 */
#define OBJ_CERT_9C           0x5FC10A
#define OBJ_CERT_9D           0x5FC10B
#define OBJ_CERT_9E           0x5FC101
#define TAG_DYN_AUTH          0x7C
#define TAG_WITNESS           0x80
#define TAG_CHALLENGE         0x81
#define TAG_RESPONSE          0x82
#define TAG_TAGLIST           0x5C
#define TAG_DATA              0x53
#define TAG_CERT              0x70
#define TAG_CERTINFO          0x71
#define TAG_ERRDET            0xFE
#define TAG_PUBKEY            0x7F49
#define TAG_RSA_N             0x81
#define TAG_RSA_E             0x82
#define TAG_EC_POINT          0x86
#define TAG_GEN_CONTROL       0xAC
#define TAG_GEN_ALG           0x80
#define TAG_PIN_POLICY        0xAA
#define TAG_TOUCH_POLICY      0xAB
#define META_ALG              0x01
#define META_POLICY           0x02
#define META_ORIGIN           0x03
#define META_PUBKEY           0x04
#define META_DEFAULT          0x05
#define META_RETRIES          0x06
#define CERTINFO_UNCOMPRESSED 0x00
#define PIN_PAD               0xFF
#define PIN_MIN               6
#define EC_UNCOMPRESSED       0x04
#define P256_POINT_LEN        65
#define P384_POINT_LEN        97
#define RSA2048_LEN           256
#define RSA_E_MAX             4
#define CHALLENGE_MAX         16
#define RSP_INITIAL           512

static const uint8_t piv_aid[] = {0xA0, 0x00, 0x00, 0x03, 0x08};

void
tg_pivc_meta_clear(struct tg_pivc_meta *m)
{
	if (m == NULL)
		return;
	EVP_PKEY_free(m->pub);
	memset(m, 0, sizeof(*m));
	m->is_default = -1;
}

uint32_t
tg_pivc_slot_object(uint8_t slot)
{
	uint32_t tag = 0;

	switch (slot) {
	case TG_PIVC_SLOT_AUTH:
		tag = OBJ_CERT_9A;
		break;
	case TG_PIVC_SLOT_SIGN:
		tag = OBJ_CERT_9C;
		break;
	case TG_PIVC_SLOT_KEYMGM:
		tag = OBJ_CERT_9D;
		break;
	case TG_PIVC_SLOT_CARDAUTH:
		tag = OBJ_CERT_9E;
		break;
	default:
		break;
	}
	return tag;
}

static const char *
op_name(enum tg_pivc_op op)
{
	const char *name = "a PIV command";

	switch (op) {
	case TG_PIVC_OP_SELECT:
		name = "SELECT of the PIV application";
		break;
	case TG_PIVC_OP_VERSION:
		name = "GET VERSION";
		break;
	case TG_PIVC_OP_SERIAL:
		name = "GET SERIAL";
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

	if (sw == SW_OK)
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
	case SW_SECURITY_STATUS:
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
	case SW_AUTH_BLOCKED:
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
	case SW_WRONG_DATA:
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
	case SW_FILE_NOT_FOUND:
		if (op == TG_PIVC_OP_SELECT) {
			r = tg_error_set(err, TG_ERR_NOT_FOUND,
			                 "the card in '%s' has no PIV application (6A82); use a "
			                 "PIV token (YubiKey 4/5 or compatible)",
			                 rd);
			goto out;
		}
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "%s on the token in '%s': object not found (6A82)", what, rd);
		goto out;
	case SW_REF_NOT_FOUND:
		r = tg_error_set(err, TG_ERR_NOT_FOUND,
		                 "%s on the token in '%s': slot %02x holds no key (6A88); "
		                 "generate one (tokengate enroll without --existing-key)",
		                 what, rd, slot);
		goto out;
	case SW_INS_NOT_SUPPORTED:
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
	case SW_CONDITIONS:
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

/* ---- parsers ---- */

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
	case TG_PIVC_ALG_ECCP256:
	case TG_PIVC_ALG_ECCP384:
		want = alg == TG_PIVC_ALG_ECCP256 ? P256_POINT_LEN : P384_POINT_LEN;
		group = alg == TG_PIVC_ALG_ECCP256 ? "P-256" : "P-384";
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
	case TG_PIVC_ALG_RSA2048:
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
tg_pivc_parse_generate(const uint8_t *p, size_t n, uint8_t alg, EVP_PKEY **out,
                       struct tg_error *err)
{
	struct tg_buf b, v;
	int r = TG_ERR_FORMAT;

	tg_buf_reader(&b, p, n);
	if (tg_buf_get_tlv_tag(&b, TAG_PUBKEY, &v) != 0 || tg_buf_expect_end(&b) != 0) {
		tg_error_set(err, r, "GENERATE response: want exactly one 7F49 template");
		goto out;
	}
	r = tg_pivc_parse_pubkey_inner(tg_buf_cur(&v), tg_buf_remaining(&v), alg, out, err);
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
tg_pivc_parse_object(const uint8_t *p, size_t n, struct tg_buf *value, struct tg_error *err)
{
	struct tg_buf b;
	int r = TG_ERR_FORMAT;

	tg_buf_reader(&b, p, n);
	if (tg_buf_get_tlv_tag(&b, TAG_DATA, value) != 0 || tg_buf_expect_end(&b) != 0) {
		tg_error_set(err, r, "GET DATA response: want exactly 53 L value");
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

int
tg_pivc_parse_cert_object(const uint8_t *p, size_t n, X509 **out, struct tg_error *err)
{
	struct tg_buf obj, cert, info;
	uint8_t ci = CERTINFO_UNCOMPRESSED;
	uint32_t tag;
	int r;

	if ((r = tg_pivc_parse_object(p, n, &obj, err)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (tg_buf_get_tlv_tag(&obj, TAG_CERT, &cert) != 0) {
		tg_error_set(err, r, "certificate object: no certificate (tag 70) first");
		goto out;
	}
	while (tg_buf_remaining(&obj) > 0) {
		if (tg_buf_get_tlv(&obj, &tag, &info) != 0) {
			tg_error_set(err, r,
			             "certificate object: malformed TLV after the "
			             "certificate");
			goto out;
		}
		if (tag == TAG_CERTINFO) {
			if (tg_buf_get_u8(&info, &ci) != 0 || tg_buf_expect_end(&info) != 0) {
				tg_error_set(err, r,
				             "certificate object: CertInfo (71) is not "
				             "1 byte");
				goto out;
			}
		} else if (tag != TAG_ERRDET) {
			/* FE, the error detection code, is ignored (SP 800-73-4 Table 10) */
			tg_error_set(err, r, "certificate object: unexpected tag %X",
			             (unsigned)tag);
			goto out;
		}
	}
	if (ci != CERTINFO_UNCOMPRESSED) {
		r = tg_error_set(err, TG_ERR_UNSUPPORTED,
		                 "certificate object: compressed certificates (CertInfo %02X) are "
		                 "not supported",
		                 ci);
		goto out;
	}
	r = tg_pivc_parse_cert_der(tg_buf_cur(&cert), tg_buf_remaining(&cert), out, err);
out:
	return r;
}

/* Sets bit `bit` of *seen, failing when it was set already. */
static int
once(unsigned *seen, unsigned bit)
{
	if (*seen & (1u << bit))
		return TG_ERR_FORMAT;
	*seen |= 1u << bit;
	return 0;
}

int
tg_pivc_parse_metadata(const uint8_t *p, size_t n, struct tg_pivc_meta *m, struct tg_error *err)
{
	struct tg_buf b, v, pub;
	uint32_t tag;
	unsigned seen = 0;
	uint8_t def = 0;
	int have_pub = 0, r = TG_ERR_FORMAT;

	memset(m, 0, sizeof(*m));
	m->is_default = -1;
	tg_buf_reader(&b, p, n);
	tg_buf_reader(&pub, NULL, 0);
	while (tg_buf_remaining(&b) > 0) {
		if (tg_buf_get_tlv(&b, &tag, &v) != 0) {
			tg_error_set(err, r, "GET METADATA response: malformed TLV");
			goto out;
		}
		if (tag <= META_RETRIES && tag >= META_ALG && once(&seen, tag) != 0) {
			tg_error_set(err, r, "GET METADATA response: tag %02X twice",
			             (unsigned)tag);
			goto out;
		}
		switch (tag) {
		case META_ALG:
			if (tg_buf_get_u8(&v, &m->alg) != 0 || tg_buf_expect_end(&v) != 0)
				goto bad;
			break;
		case META_POLICY:
			if (tg_buf_get_u8(&v, &m->pin_policy) != 0 ||
			    tg_buf_get_u8(&v, &m->touch_policy) != 0 || tg_buf_expect_end(&v) != 0)
				goto bad;
			m->has_policy = 1;
			break;
		case META_ORIGIN:
			if (tg_buf_get_u8(&v, &m->origin) != 0 || tg_buf_expect_end(&v) != 0)
				goto bad;
			m->has_origin = 1;
			break;
		case META_PUBKEY:
			pub = v;
			have_pub = 1;
			break;
		case META_DEFAULT:
			if (tg_buf_get_u8(&v, &def) != 0 || tg_buf_expect_end(&v) != 0 || def > 1)
				goto bad;
			m->is_default = def;
			break;
		default:
			break; /* retries (06) and future tags */
		}
		continue;
	bad:
		tg_error_set(err, r, "GET METADATA response: bad value of tag %02X", (unsigned)tag);
		goto out;
	}
	if (have_pub) {
		if (m->alg == 0) {
			tg_error_set(err, r, "GET METADATA response: public key without algorithm");
			goto out;
		}
		if ((r = tg_pivc_parse_pubkey_inner(tg_buf_cur(&pub), tg_buf_remaining(&pub),
		                                    m->alg, &m->pub, err)) != 0)
			goto out;
	}
	r = 0;
out:
	if (r != 0)
		tg_pivc_meta_clear(m);
	return r;
}

/* ---- commands ---- */

/*
 * Sends one command; on 9000 returns 0 with the data in rsp (a growable
 * buffer the caller frees), else the mapped status word error.
 */
static int
cmd(struct tg_pcsc *p, enum tg_pivc_op op, uint8_t slot, uint8_t ins, uint8_t p1, uint8_t p2,
    const uint8_t *data, size_t n, int le, struct tg_buf *rsp, struct tg_error *err)
{
	uint16_t sw = 0;
	int r;

	if ((r = tg_buf_alloc(rsp, RSP_INITIAL, TG_PCSC_RSP_MAX)) != 0)
		goto out;
	if ((r = tg_pcsc_transmit(p, ins, p1, p2, data, n, le, rsp, &sw, err)) != 0)
		goto out;
	r = tg_pivc_sw_error(sw, op, slot, tg_pcsc_reader(p), err);
out:
	return r;
}

int
tg_pivc_select(struct tg_pcsc *p, struct tg_error *err)
{
	struct tg_buf rsp;
	int r;

	memset(&rsp, 0, sizeof(rsp));
	r = cmd(p, TG_PIVC_OP_SELECT, 0, INS_SELECT, P1_SELECT_AID, 0, piv_aid, sizeof(piv_aid), 0,
	        &rsp, err);
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_version(struct tg_pcsc *p, uint8_t v[3], struct tg_error *err)
{
	struct tg_buf rsp;
	int r;

	memset(&rsp, 0, sizeof(rsp));
	if ((r = cmd(p, TG_PIVC_OP_VERSION, 0, INS_GET_VERSION, 0, 0, NULL, 0, 1, &rsp, err)) != 0)
		goto out;
	if (tg_buf_get_bytes(&rsp, v, 3) != 0 || tg_buf_expect_end(&rsp) != 0)
		r = tg_error_set(err, TG_ERR_FORMAT, "GET VERSION: want 3 bytes");
out:
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_serial(struct tg_pcsc *p, uint32_t *serial, struct tg_error *err)
{
	struct tg_buf rsp;
	int r;

	memset(&rsp, 0, sizeof(rsp));
	if ((r = cmd(p, TG_PIVC_OP_SERIAL, 0, INS_GET_SERIAL, 0, 0, NULL, 0, 1, &rsp, err)) != 0)
		goto out;
	if (tg_buf_get_u32(&rsp, serial) != 0 || tg_buf_expect_end(&rsp) != 0)
		r = tg_error_set(err, TG_ERR_FORMAT, "GET SERIAL: want 4 bytes");
out:
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_metadata(struct tg_pcsc *p, uint8_t ref, struct tg_pivc_meta *m, struct tg_error *err)
{
	struct tg_buf rsp;
	int r;

	memset(&rsp, 0, sizeof(rsp));
	tg_pivc_meta_clear(m);
	if ((r = cmd(p, TG_PIVC_OP_METADATA, ref, INS_GET_METADATA, 0, ref, NULL, 0, 1, &rsp,
	             err)) != 0)
		goto out;
	r = tg_pivc_parse_metadata(tg_buf_data(&rsp), tg_buf_len(&rsp), m, err);
out:
	tg_buf_free(&rsp);
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

int
tg_pivc_mgm_auth(struct tg_pcsc *p, uint8_t alg, const uint8_t *key, size_t keylen,
                 struct tg_error *err)
{
	static const uint8_t step1[] = {TAG_DYN_AUTH, 0x02, TAG_WITNESS, 0x00};
	const EVP_CIPHER *c;
	struct tg_buf rsp, v, w;
	uint8_t witness[CHALLENGE_MAX], chal[CHALLENGE_MAX], expect[CHALLENGE_MAX];
	uint8_t req[64];
	size_t need = 0, mark = 0;
	int bs, r = TG_ERR_INVALID_ARG;

	memset(&rsp, 0, sizeof(rsp));
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
		             alg == TG_PIVC_ALG_3DES ? "3DES" : "AES", need, keylen, 2 * need);
		goto out;
	}
	bs = EVP_CIPHER_get_block_size(c);
	/* step 1: ask for a witness, encrypted with the card's key */
	if ((r = cmd(p, TG_PIVC_OP_MGM_AUTH, TG_PIVC_REF_MGM, INS_GENERAL_AUTH, alg,
	             TG_PIVC_REF_MGM, step1, sizeof(step1), 1, &rsp, err)) != 0)
		goto out;
	if ((r = tg_pivc_parse_dynauth(tg_buf_data(&rsp), tg_buf_len(&rsp), TAG_WITNESS, &v,
	                               err)) != 0)
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
	tg_buf_free(&rsp);
	if ((r = cmd(p, TG_PIVC_OP_MGM_AUTH, TG_PIVC_REF_MGM, INS_GENERAL_AUTH, alg,
	             TG_PIVC_REF_MGM, tg_buf_data(&w), tg_buf_len(&w), 1, &rsp, err)) != 0)
		goto out;
	if ((r = tg_pivc_parse_dynauth(tg_buf_data(&rsp), tg_buf_len(&rsp), TAG_RESPONSE, &v,
	                               err)) != 0)
		goto out;
	if (!tg_secret_eq(tg_buf_cur(&v), tg_buf_remaining(&v), expect, (size_t)bs)) {
		r = tg_error_set(err, TG_ERR_AUTH_REQUIRED,
		                 "the token in '%s' did not prove it knows the management key: "
		                 "its answer to our challenge is wrong; it may not be a genuine "
		                 "token",
		                 tg_pcsc_reader(p));
		goto out;
	}
	r = 0;
out:
	tg_wipe(witness, sizeof(witness));
	tg_wipe(expect, sizeof(expect));
	tg_wipe(req, sizeof(req));
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_generate(struct tg_pcsc *p, uint8_t slot, uint8_t alg, uint8_t pin_policy,
                 uint8_t touch_policy, EVP_PKEY **pub, struct tg_error *err)
{
	struct tg_buf rsp, w;
	uint8_t req[32];
	size_t mark = 0;
	int r = TG_ERR_INTERNAL;

	memset(&rsp, 0, sizeof(rsp));
	tg_buf_writer(&w, req, sizeof(req));
	if (tg_buf_tlv_begin(&w, TAG_GEN_CONTROL, &mark) != 0 ||
	    tg_buf_put_tlv(&w, TAG_GEN_ALG, &alg, 1) != 0 ||
	    (pin_policy != 0 && tg_buf_put_tlv(&w, TAG_PIN_POLICY, &pin_policy, 1) != 0) ||
	    (touch_policy != 0 && tg_buf_put_tlv(&w, TAG_TOUCH_POLICY, &touch_policy, 1) != 0) ||
	    tg_buf_tlv_end(&w, mark) != 0)
		goto out;
	if ((r = cmd(p, TG_PIVC_OP_GENERATE, slot, INS_GENERATE, 0, slot, tg_buf_data(&w),
	             tg_buf_len(&w), 1, &rsp, err)) != 0)
		goto out;
	r = tg_pivc_parse_generate(tg_buf_data(&rsp), tg_buf_len(&rsp), alg, pub, err);
out:
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_attest(struct tg_pcsc *p, uint8_t slot, X509 **out, struct tg_error *err)
{
	struct tg_buf rsp;
	int r;

	memset(&rsp, 0, sizeof(rsp));
	if ((r = cmd(p, TG_PIVC_OP_ATTEST, slot, INS_ATTEST, slot, 0, NULL, 0, 1, &rsp, err)) != 0)
		goto out;
	r = tg_pivc_parse_cert_der(tg_buf_data(&rsp), tg_buf_len(&rsp), out, err);
out:
	tg_buf_free(&rsp);
	return r;
}

/* The 5C tag list of GET/PUT DATA for a 3-byte object tag. */
static int
taglist_put(struct tg_buf *w, uint32_t tag)
{
	uint8_t t[3];

	t[0] = (uint8_t)(tag >> 16);
	t[1] = (uint8_t)(tag >> 8);
	t[2] = (uint8_t)tag;
	return tg_buf_put_tlv(w, TAG_TAGLIST, t, sizeof(t));
}

int
tg_pivc_cert_get(struct tg_pcsc *p, uint32_t tag, X509 **out, struct tg_error *err)
{
	struct tg_buf rsp, w;
	uint8_t req[8];
	int r = TG_ERR_INTERNAL;

	memset(&rsp, 0, sizeof(rsp));
	tg_buf_writer(&w, req, sizeof(req));
	if (taglist_put(&w, tag) != 0)
		goto out;
	if ((r = cmd(p, TG_PIVC_OP_GET_DATA, 0, INS_GET_DATA, P1P2_GET_DATA >> 8,
	             P1P2_GET_DATA & 0xFF, tg_buf_data(&w), tg_buf_len(&w), 1, &rsp, err)) != 0)
		goto out;
	r = tg_pivc_parse_cert_object(tg_buf_data(&rsp), tg_buf_len(&rsp), out, err);
out:
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_verify_pin(struct tg_pcsc *p, const char *pin, struct tg_error *err)
{
	struct tg_buf rsp;
	uint8_t block[TG_PIVC_PIN_LEN];
	size_t n = strlen(pin);
	int r = TG_ERR_INVALID_ARG;

	memset(&rsp, 0, sizeof(rsp));
	if (n < PIN_MIN || n > TG_PIVC_PIN_LEN) {
		tg_error_set(err, r, "a PIV PIN has 6 to 8 characters, the one given has %zu", n);
		goto out;
	}
	memset(block, PIN_PAD, sizeof(block));
	memcpy(block, pin, n);
	r = cmd(p, TG_PIVC_OP_VERIFY, TG_PIVC_REF_PIN, INS_VERIFY, 0, TG_PIVC_REF_PIN, block,
	        sizeof(block), 0, &rsp, err);
out:
	tg_wipe(block, sizeof(block));
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_sign(struct tg_pcsc *p, uint8_t slot, uint8_t alg, const uint8_t *in, size_t n,
             uint8_t **sig, size_t *siglen, struct tg_error *err)
{
	struct tg_buf rsp, w, v;
	uint8_t *copy = NULL;
	size_t mark = 0;
	int r = TG_ERR_ALLOC;

	memset(&rsp, 0, sizeof(rsp));
	memset(&w, 0, sizeof(w));
	if (tg_buf_alloc(&w, n + 16, n + 16) != 0)
		goto out;
	r = TG_ERR_INTERNAL;
	if (tg_buf_tlv_begin(&w, TAG_DYN_AUTH, &mark) != 0 ||
	    tg_buf_put_tlv(&w, TAG_RESPONSE, NULL, 0) != 0 ||
	    tg_buf_put_tlv(&w, TAG_CHALLENGE, in, n) != 0 || tg_buf_tlv_end(&w, mark) != 0)
		goto out;
	if ((r = cmd(p, TG_PIVC_OP_SIGN, slot, INS_GENERAL_AUTH, alg, slot, tg_buf_data(&w),
	             tg_buf_len(&w), 1, &rsp, err)) != 0)
		goto out;
	if ((r = tg_pivc_parse_dynauth(tg_buf_data(&rsp), tg_buf_len(&rsp), TAG_RESPONSE, &v,
	                               err)) != 0)
		goto out;
	r = TG_ERR_FORMAT;
	if (tg_buf_remaining(&v) == 0) {
		tg_error_set(err, r, "the token returned an empty signature");
		goto out;
	}
	r = TG_ERR_ALLOC;
	if ((copy = malloc(tg_buf_remaining(&v))) == NULL)
		goto out;
	*siglen = tg_buf_remaining(&v);
	(void)tg_buf_get_bytes(&v, copy, *siglen);
	*sig = copy;
	copy = NULL;
	r = 0;
out:
	free(copy);
	tg_buf_free(&w);
	tg_buf_free(&rsp);
	return r;
}

int
tg_pivc_cert_put(struct tg_pcsc *p, uint8_t slot, X509 *cert, struct tg_error *err)
{
	static const uint8_t uncompressed = CERTINFO_UNCOMPRESSED;
	struct tg_buf rsp, w;
	unsigned char *der = NULL;
	uint32_t tag = tg_pivc_slot_object(slot);
	size_t mark = 0, mark2 = 0;
	int n, r = TG_ERR_INVALID_ARG;

	memset(&rsp, 0, sizeof(rsp));
	memset(&w, 0, sizeof(w));
	if (tag == 0) {
		tg_error_set(err, r, "slot %02x has no certificate object", slot);
		goto out;
	}
	r = TG_ERR_CRYPTO;
	if ((n = i2d_X509(cert, &der)) <= 0) {
		tg_error_set(err, r, "cannot encode the certificate");
		goto out;
	}
	r = TG_ERR_ALLOC;
	if (tg_buf_alloc(&w, (size_t)n + 32, (size_t)n + 32) != 0)
		goto out;
	r = TG_ERR_INTERNAL;
	if (taglist_put(&w, tag) != 0 || tg_buf_tlv_begin(&w, TAG_DATA, &mark) != 0 ||
	    tg_buf_tlv_begin(&w, TAG_CERT, &mark2) != 0 ||
	    tg_buf_put_bytes(&w, der, (size_t)n) != 0 || tg_buf_tlv_end(&w, mark2) != 0 ||
	    tg_buf_put_tlv(&w, TAG_CERTINFO, &uncompressed, 1) != 0 ||
	    tg_buf_put_tlv(&w, TAG_ERRDET, NULL, 0) != 0 || tg_buf_tlv_end(&w, mark) != 0)
		goto out;
	r = cmd(p, TG_PIVC_OP_PUT_DATA, slot, INS_PUT_DATA, P1P2_GET_DATA >> 8,
	        P1P2_GET_DATA & 0xFF, tg_buf_data(&w), tg_buf_len(&w), 0, &rsp, err);
out:
	OPENSSL_free(der);
	tg_buf_free(&w);
	tg_buf_free(&rsp);
	return r;
}
