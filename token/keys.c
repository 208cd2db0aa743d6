/*
 * keys.c — key slots: GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2,
 * 3.3.2), IMPORT KEY and GET METADATA (Yubico FE and F7).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

#define RSA_PUBLIC_EXPONENT 65537
#define POINT_MAX           (1 + 2 * 48) /* uncompressed P-384, the largest */
#define RSA_MAX_BYTES       384

struct tok_slot *
tok_slot_find(struct tg_tok *t, uint8_t id)
{
	struct tok_slot *s = NULL;
	size_t i;

	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		if (t->slots[i].id == id) {
			s = &t->slots[i];
			break;
		}
	}
	return s;
}

uint8_t
tok_slot_default_pin_policy(uint8_t id)
{
	uint8_t p = TG_PIV_PIN_POLICY_ONCE;

	switch (id) {
	case TG_PIV_SLOT_SIGN:
		p = TG_PIV_PIN_POLICY_ALWAYS;
		break;
	case TG_PIV_SLOT_CARDAUTH:
	case TG_PIV_SLOT_ATTEST:
		p = TG_PIV_PIN_POLICY_NEVER;
		break;
	default:
		break;
	}
	return p;
}

void
tok_slot_clear(struct tok_slot *s)
{
	EVP_PKEY_free(s->pkey);
	s->pkey = NULL;
	s->alg = 0;
	s->origin = TG_PIV_ORIGIN_NONE;
	s->pin_policy = tok_slot_default_pin_policy(s->id);
	s->touch_policy = TG_PIV_TOUCH_POLICY_NEVER;
	s->touch_valid = 0;
	s->touch_ms = 0;
}

const struct tg_piv_alg *
tok_key_alg_row(uint8_t alg)
{
	/* the key algorithms this card implements (a YubiKey 5 before 5.7,
	 * plus RSA 3072) */
	static const uint8_t card_algs[] = {TG_PIV_ALG_RSA1024, TG_PIV_ALG_RSA2048,
	                                    TG_PIV_ALG_RSA3072, TG_PIV_ALG_ECCP256,
	                                    TG_PIV_ALG_ECCP384};
	const struct tg_piv_alg *a = NULL;
	size_t i;

	for (i = 0; a == NULL && i < sizeof(card_algs); i++)
		if (card_algs[i] == alg)
			a = tg_piv_alg_by_id(alg);
	return a;
}

int
tok_key_generate(uint8_t alg, EVP_PKEY **out)
{
	const struct tg_piv_alg *a = tok_key_alg_row(alg);
	EVP_PKEY *k = NULL;
	int r = TG_ERR_UNSUPPORTED;

	if (a == NULL)
		goto out;
	if (a->kind == TG_PIV_KIND_RSA)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)a->bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", a->group);
	r = TG_ERR_CRYPTO;
	if (k == NULL)
		goto out;
	*out = k;
	r = 0;
out:
	return r;
}

uint8_t
tok_key_alg(const EVP_PKEY *pkey)
{
	const struct tg_piv_alg *a = tg_piv_alg_of_pkey(pkey);
	uint8_t alg = 0;

	/* an RSA-PSS key is no PIV key: the card pads nothing itself */
	if (a != NULL && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA_PSS &&
	    tok_key_alg_row(a->id) != NULL)
		alg = a->id;
	return alg;
}

static int
put_bn(struct tg_buf *b, uint32_t tag, const BIGNUM *bn, size_t width)
{
	uint8_t tmp[RSA_MAX_BYTES];
	int r = TG_ERR_INTERNAL;

	if (width > sizeof(tmp) || BN_bn2binpad(bn, tmp, (int)width) < 0)
		goto out;
	r = tg_buf_put_tlv(b, tag, tmp, width);
out:
	return r;
}

int
tok_pubkey_put(struct tg_buf *b, const EVP_PKEY *pkey)
{
	BIGNUM *n = NULL, *e = NULL;
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	int r = TG_ERR_CRYPTO;

	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
		    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
			goto out;
		if ((r = put_bn(b, TG_PIV_TAG_RSA_N, n, (size_t)BN_num_bytes(n))) != 0 ||
		    (r = put_bn(b, TG_PIV_TAG_RSA_E, e, (size_t)BN_num_bytes(e))) != 0)
			goto out;
	} else {
		if ((ptlen = EVP_PKEY_get1_encoded_public_key((EVP_PKEY *)pkey, &pt)) == 0)
			goto out;
		if ((r = tg_buf_put_tlv(b, TG_PIV_TAG_EC_POINT, pt, ptlen)) != 0)
			goto out;
	}
	r = 0;
out:
	OPENSSL_free(pt);
	BN_free(n);
	BN_free(e);
	return r;
}

static int
policy_ok(uint8_t pin, uint8_t touch)
{
	return pin <= TG_PIV_PIN_POLICY_ALWAYS && touch <= TG_PIV_TOUCH_POLICY_CACHED;
}

static void
slot_install(struct tok_slot *s, EVP_PKEY *k, uint8_t alg, uint8_t origin, uint8_t pin,
             uint8_t touch)
{
	tok_slot_clear(s);
	s->pkey = k;
	s->alg = alg;
	s->origin = origin;
	s->pin_policy = pin != TG_PIV_PIN_POLICY_DEFAULT ? pin : tok_slot_default_pin_policy(s->id);
	s->touch_policy = touch != TG_PIV_TOUCH_POLICY_DEFAULT ? touch : TG_PIV_TOUCH_POLICY_NEVER;
}

/* Reads a one-byte policy TLV value. */
static int
get_byte(struct tg_buf *v, uint8_t *out)
{
	int r = TG_ERR_FORMAT;

	if (tg_buf_remaining(v) != 1 || tg_buf_get_u8(v, out) != 0)
		goto out;
	r = 0;
out:
	return r;
}

/* The PIN (AA) and touch (AB) policies a GENERATE or IMPORT command sets. */
struct policies {
	uint8_t pin, touch;
	int have_pin, have_touch;
};

/* Takes one TLV of a GENERATE or IMPORT command into p: 0 for a first PIN
 * or touch policy with a one-byte value, TG_ERR_FORMAT for any other tag,
 * a repeated policy or a bad value. */
static int
policy_take(struct policies *p, uint32_t tag, struct tg_buf *v)
{
	int r = TG_ERR_FORMAT;

	if (tag == TG_PIV_TAG_PIN_POLICY && !p->have_pin) {
		p->have_pin = 1;
		r = get_byte(v, &p->pin);
	} else if (tag == TG_PIV_TAG_TOUCH_POLICY && !p->have_touch) {
		p->have_touch = 1;
		r = get_byte(v, &p->touch);
	}
	return r;
}

uint16_t
tok_generate(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct tg_buf ctl, v;
	struct tok_slot *s;
	EVP_PKEY *k = NULL;
	uint32_t tag;
	struct policies pol;
	uint8_t alg = 0;
	int have_alg = 0;
	size_t mark;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	memset(&pol, 0, sizeof(pol));
	if (a->p1 != 0 || !tg_piv_slot_is_user(a->p2) || (s = tok_slot_find(t, a->p2)) == NULL)
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (!t->v.mgm_ok)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	if (tg_buf_get_tlv_tag(&a->data, TG_PIV_TAG_GEN_CONTROL, &ctl) != 0 ||
	    tg_buf_expect_end(&a->data) != 0)
		goto out;
	while (tg_buf_remaining(&ctl) > 0) {
		if (tg_buf_get_tlv(&ctl, &tag, &v) != 0)
			goto out;
		if (tag == TG_PIV_TAG_GEN_ALG && !have_alg) {
			have_alg = 1;
			if (get_byte(&v, &alg) != 0)
				goto out;
		} else if (policy_take(&pol, tag, &v) != 0) {
			goto out;
		}
	}
	if (!have_alg || !policy_ok(pol.pin, pol.touch))
		goto out;
	if (tok_key_generate(alg, &k) != 0)
		goto out; /* unsupported algorithm: 6A80 */
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	if (tg_buf_tlv_begin(out, TG_PIV_TAG_PUBKEY, &mark) != 0 || tok_pubkey_put(out, k) != 0 ||
	    tg_buf_tlv_end(out, mark) != 0)
		goto out;
	slot_install(s, k, alg, TG_PIV_ORIGIN_GENERATED, pol.pin, pol.touch);
	k = NULL;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	EVP_PKEY_free(k);
	return sw;
}

/* Builds an RSA key from its CRT parts (e = 65537), checking that they
 * belong together. */
static int
rsa_from_crt(uint8_t alg, const struct tg_buf parts[5], EVP_PKEY **out)
{
	static const char *const names[5] = {
	    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	BIGNUM *bn[5] = {NULL, NULL, NULL, NULL, NULL};
	BIGNUM *n = NULL, *e = NULL, *d = NULL, *p1 = NULL, *q1 = NULL, *phi = NULL, *chk = NULL;
	BN_CTX *bctx = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *k = NULL;
	int bits = (int)tok_key_alg_row(alg)->bits;
	int i, r = TG_ERR_FORMAT;

	for (i = 0; i < 5; i++) {
		if (tg_buf_remaining(&parts[i]) == 0 || tg_buf_remaining(&parts[i]) > RSA_MAX_BYTES)
			goto out;
		if ((bn[i] = BN_secure_new()) == NULL ||
		    BN_bin2bn(tg_buf_cur(&parts[i]), (int)tg_buf_remaining(&parts[i]), bn[i]) ==
		        NULL)
			goto out;
	}
	if ((bctx = BN_CTX_secure_new()) == NULL || (n = BN_new()) == NULL ||
	    (e = BN_new()) == NULL || (d = BN_secure_new()) == NULL ||
	    (p1 = BN_secure_new()) == NULL || (q1 = BN_secure_new()) == NULL ||
	    (phi = BN_secure_new()) == NULL || (chk = BN_secure_new()) == NULL)
		goto out;
	if (BN_is_zero(bn[0]) || BN_is_zero(bn[1]) || BN_is_one(bn[0]) || BN_is_one(bn[1]))
		goto out;
	if (BN_mul(n, bn[0], bn[1], bctx) != 1 || BN_num_bits(n) != bits ||
	    BN_set_word(e, RSA_PUBLIC_EXPONENT) != 1 || BN_sub(p1, bn[0], BN_value_one()) != 1 ||
	    BN_sub(q1, bn[1], BN_value_one()) != 1 || BN_mul(phi, p1, q1, bctx) != 1 ||
	    BN_mod_inverse(d, e, phi, bctx) == NULL)
		goto out;
	/* the given CRT exponents and coefficient must match p and q */
	if (BN_mod(chk, d, p1, bctx) != 1 || BN_cmp(chk, bn[2]) != 0 ||
	    BN_mod(chk, d, q1, bctx) != 1 || BN_cmp(chk, bn[3]) != 0 ||
	    BN_mod_inverse(chk, bn[1], bn[0], bctx) == NULL || BN_cmp(chk, bn[4]) != 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) != 1)
		goto out;
	for (i = 0; i < 5; i++)
		if (OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i]) != 1)
			goto out;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &k, EVP_PKEY_KEYPAIR, params) != 1)
		goto out;
	*out = k;
	r = 0;
out:
	for (i = 0; i < 5; i++)
		BN_clear_free(bn[i]);
	BN_free(n);
	BN_free(e);
	BN_clear_free(d);
	BN_clear_free(p1);
	BN_clear_free(q1);
	BN_clear_free(phi);
	BN_clear_free(chk);
	BN_CTX_free(bctx);
	OSSL_PARAM_free(params); /* OSSL_PARAM_BLD_to_param: secure copy, cleared */
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pctx);
	return r;
}

/* Builds an EC key from its private scalar; the public point is computed. */
static int
ec_from_scalar(uint8_t alg, const struct tg_buf *scalar, EVP_PKEY **out)
{
	const struct tg_piv_alg *a = tok_key_alg_row(alg);
	int nid = a->nid;
	const char *gname = a->group;
	size_t width = a->bytes;
	EC_GROUP *g = NULL;
	EC_POINT *pub = NULL;
	BIGNUM *priv = NULL;
	uint8_t pt[POINT_MAX];
	size_t ptlen;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *k = NULL;
	int r = TG_ERR_FORMAT;

	if (tg_buf_remaining(scalar) != width)
		goto out;
	r = TG_ERR_CRYPTO;
	if ((g = EC_GROUP_new_by_curve_name(nid)) == NULL || (pub = EC_POINT_new(g)) == NULL ||
	    (priv = BN_secure_new()) == NULL ||
	    BN_bin2bn(tg_buf_cur(scalar), (int)width, priv) == NULL)
		goto out;
	r = TG_ERR_FORMAT;
	if (BN_is_zero(priv) || BN_cmp(priv, EC_GROUP_get0_order(g)) >= 0)
		goto out;
	r = TG_ERR_CRYPTO;
	if (EC_POINT_mul(g, pub, priv, NULL, NULL, NULL) != 1 ||
	    (ptlen = EC_POINT_point2oct(g, pub, POINT_CONVERSION_UNCOMPRESSED, pt, sizeof(pt),
	                                NULL)) == 0)
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, gname, 0) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &k, EVP_PKEY_KEYPAIR, params) != 1)
		goto out;
	*out = k;
	r = 0;
out:
	BN_clear_free(priv);
	EC_POINT_free(pub);
	EC_GROUP_free(g);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pctx);
	return r;
}

uint16_t
tok_import(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct tg_buf parts[6], v;
	int have[6] = {0, 0, 0, 0, 0, 0};
	struct tok_slot *s;
	const struct tg_piv_alg *row;
	EVP_PKEY *k = NULL;
	uint32_t tag;
	struct policies pol;
	int is_rsa, i;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	memset(parts, 0, sizeof(parts));
	memset(&pol, 0, sizeof(pol));
	if ((row = tok_key_alg_row(a->p1)) == NULL)
		goto out;
	is_rsa = row->kind == TG_PIV_KIND_RSA;
	if (!tg_piv_slot_is_user(a->p2) || (s = tok_slot_find(t, a->p2)) == NULL)
		goto out;
	sw = TG_PIV_SW_SECURITY_STATUS;
	if (!t->v.mgm_ok)
		goto out;
	sw = TG_PIV_SW_WRONG_DATA;
	while (tg_buf_remaining(&a->data) > 0) {
		if (tg_buf_get_tlv(&a->data, &tag, &v) != 0)
			goto out;
		if (tag >= TG_PIV_YK_TAG_RSA_P && tag <= TG_PIV_YK_TAG_EC_PRIV && !have[tag - 1]) {
			parts[tag - 1] = v;
			have[tag - 1] = 1;
		} else if (policy_take(&pol, tag, &v) != 0) {
			goto out;
		}
	}
	if (!policy_ok(pol.pin, pol.touch))
		goto out;
	if (is_rsa) {
		for (i = 0; i < 5; i++)
			if (!have[i])
				goto out;
		if (have[TG_PIV_YK_TAG_EC_PRIV - 1] || rsa_from_crt(a->p1, parts, &k) != 0)
			goto out;
	} else {
		for (i = 0; i < 5; i++)
			if (have[i])
				goto out;
		if (!have[TG_PIV_YK_TAG_EC_PRIV - 1] ||
		    ec_from_scalar(a->p1, &parts[TG_PIV_YK_TAG_EC_PRIV - 1], &k) != 0)
			goto out;
	}
	slot_install(s, k, a->p1, TG_PIV_ORIGIN_IMPORTED, pol.pin, pol.touch);
	k = NULL;
	sw = tok_persist(t) == 0 ? TG_PIV_SW_OK : TG_PIV_SW_MEMORY_FAILURE;
out:
	EVP_PKEY_free(k);
	return sw;
}

static uint16_t
meta_pin(struct tg_tok *t, uint8_t ref, struct tg_buf *out)
{
	static const char default_pin[] = "123456";
	static const char default_puk[] = "12345678";
	uint8_t def[TOK_PIN_LEN];
	uint8_t alg = TG_PIV_ALG_PIN, isdef, retries[2];
	uint16_t sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;

	(void)tok_pin_pad(ref == TG_PIV_REF_PIN ? default_pin : default_puk, def);
	isdef = (uint8_t)tg_secret_eq(def, sizeof(def), ref == TG_PIV_REF_PIN ? t->pin : t->puk,
	                              TOK_PIN_LEN);
	retries[0] = ref == TG_PIV_REF_PIN ? t->pin_max : t->puk_max;
	retries[1] = ref == TG_PIV_REF_PIN ? t->pin_tries : t->puk_tries;
	if (tg_buf_put_tlv(out, TG_PIV_YK_META_ALG, &alg, 1) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_YK_META_DEFAULT, &isdef, 1) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_YK_META_RETRIES, retries, sizeof(retries)) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

static uint16_t
meta_mgm(struct tg_tok *t, struct tg_buf *out)
{
	uint8_t isdef, policy[2];
	uint16_t sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;

	isdef = (uint8_t)(t->mgm_alg == TG_PIV_ALG_3DES &&
	                  tg_secret_eq(t->mgm_key, t->mgm_len, tok_mgm_default,
	                               sizeof(tok_mgm_default)));
	policy[0] = 0;
	policy[1] = t->mgm_touch ? TG_PIV_TOUCH_POLICY_ALWAYS : TG_PIV_TOUCH_POLICY_NEVER;
	if (tg_buf_put_tlv(out, TG_PIV_YK_META_ALG, &t->mgm_alg, 1) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_YK_META_POLICY, policy, sizeof(policy)) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_YK_META_DEFAULT, &isdef, 1) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}

uint16_t
tok_metadata(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out)
{
	struct tok_slot *s;
	uint8_t policy[2];
	size_t mark;
	uint16_t sw = TG_PIV_SW_INCORRECT_P1P2;

	if (a->p1 != 0)
		goto out;
	sw = TG_PIV_SW_WRONG_LENGTH;
	if (tg_buf_remaining(&a->data) != 0)
		goto out;
	if (a->p2 == TG_PIV_REF_PIN || a->p2 == TG_PIV_REF_PUK) {
		sw = meta_pin(t, a->p2, out);
		goto out;
	}
	if (a->p2 == TG_PIV_REF_MGM) {
		sw = meta_mgm(t, out);
		goto out;
	}
	sw = TG_PIV_SW_REF_NOT_FOUND;
	if ((s = tok_slot_find(t, a->p2)) == NULL || s->pkey == NULL)
		goto out;
	sw = TG_PIV_SW_NO_PRECISE_DIAGNOSIS;
	policy[0] = s->pin_policy;
	policy[1] = s->touch_policy;
	if (tg_buf_put_tlv(out, TG_PIV_YK_META_ALG, &s->alg, 1) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_YK_META_POLICY, policy, sizeof(policy)) != 0 ||
	    tg_buf_put_tlv(out, TG_PIV_YK_META_ORIGIN, &s->origin, 1) != 0 ||
	    tg_buf_tlv_begin(out, TG_PIV_YK_META_PUBKEY, &mark) != 0 ||
	    tok_pubkey_put(out, s->pkey) != 0 || tg_buf_tlv_end(out, mark) != 0)
		goto out;
	sw = TG_PIV_SW_OK;
out:
	return sw;
}
