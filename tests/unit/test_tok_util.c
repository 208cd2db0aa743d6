/* test_tok_util.c — helpers of the token core's unit tests (see .h). */
#include "test_tok_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509v3.h>

#include "tg_buf.h"
#include "tg_secret.h"

struct tt_log *tt_rsp_log;

const uint8_t tt_mgm_default[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                    5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

void
tt_mfr_make(struct tt_mfr *m)
{
	X509_NAME *n;
	uint8_t *p;
	int len;

	memset(m, 0, sizeof(*m));
	m->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(m->key);
	m->cert = X509_new();
	assert_non_null(m->cert);
	assert_int_equal(X509_set_version(m->cert, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(m->cert), 1), 1);
	n = X509_get_subject_name(m->cert);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"Test Manufacturer CA",
	                                            -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(m->cert, n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(m->cert), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(m->cert), 3600L * 24 * 3650));
	assert_int_equal(X509_set_pubkey(m->cert, m->key), 1);
	{
		X509V3_CTX ctx;
		X509_EXTENSION *e;

		X509V3_set_ctx(&ctx, m->cert, m->cert, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		assert_non_null(e);
		assert_int_equal(X509_add_ext(m->cert, e, -1), 1);
		X509_EXTENSION_free(e);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
		assert_non_null(e);
		assert_int_equal(X509_add_ext(m->cert, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(m->cert, m->key, EVP_sha256()) > 0);
	p = NULL;
	len = i2d_X509(m->cert, &p);
	assert_true(len > 0);
	m->cert_der = p;
	m->cert_len = (size_t)len;
	p = NULL;
	len = i2d_PrivateKey(m->key, &p);
	assert_true(len > 0);
	m->key_der = p;
	m->key_len = (size_t)len;
}

void
tt_mfr_free(struct tt_mfr *m)
{
	X509_free(m->cert);
	EVP_PKEY_free(m->key);
	OPENSSL_free(m->cert_der);
	OPENSSL_clear_free(m->key_der, m->key_len);
	memset(m, 0, sizeof(*m));
}

static int
cb_persist(void *ctx, const uint8_t *blob, size_t len)
{
	struct tt_host *h = ctx;
	struct tg_tok *t = NULL;
	struct tg_tok_info info;

	h->persist_calls++;
	if (h->persist_fail)
		return -1;
	/* What a host would find on disk after a crash right now. */
	assert_int_equal(tg_tok_load(blob, len, NULL, &t), 0);
	tg_tok_info_get(t, &info);
	h->last_pin_tries = info.pin_tries_left;
	if (h->npin_seq < (int)(sizeof(h->pin_seq) / sizeof(h->pin_seq[0])))
		h->pin_seq[h->npin_seq++] = info.pin_tries_left;
	h->last_puk_tries = info.puk_tries_left;
	h->last_ops = info.private_key_operations;
	tg_tok_free(t);
	tg_freezero(h->last_blob, h->last_len);
	h->last_blob = malloc(len);
	assert_non_null(h->last_blob);
	memcpy(h->last_blob, blob, len);
	h->last_len = len;
	return 0;
}

static int
cb_touch(void *ctx, uint8_t slot)
{
	struct tt_host *h = ctx;

	(void)slot;
	h->touch_calls++;
	return h->touch_answer;
}

static uint64_t
cb_now(void *ctx)
{
	struct tt_host *h = ctx;

	return h->now;
}

struct tg_tok_host
tt_host_make(struct tt_host *h)
{
	struct tg_tok_host host;

	memset(h, 0, sizeof(*h));
	h->touch_answer = 1;
	h->now = 1000000;
	h->last_pin_tries = -1;
	h->last_puk_tries = -1;
	host.persist = cb_persist;
	host.touch = cb_touch;
	host.now_ms = cb_now;
	host.ctx = h;
	return host;
}

void
tt_host_free(struct tt_host *h)
{
	tg_freezero(h->last_blob, h->last_len);
	h->last_blob = NULL;
	h->last_len = 0;
}

struct tg_tok *
tt_token_new(const struct tt_mfr *m, struct tt_host *h)
{
	struct tg_tok_params p;
	struct tg_tok_host host = tt_host_make(h);
	struct tg_tok *t = NULL;

	memset(&p, 0, sizeof(p));
	p.serial = 1234567;
	p.mfr_cert_der = m->cert_der;
	p.mfr_cert_len = m->cert_len;
	p.mfr_key_der = m->key_der;
	p.mfr_key_len = m->key_len;
	assert_int_equal(tg_tok_create(&p, &host, &t), 0);
	assert_non_null(t);
	return t;
}

int
tt_group_setup(void **state)
{
	struct tt_mfr *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	tt_mfr_make(m);
	*state = m;
	return 0;
}

int
tt_group_teardown(void **state)
{
	struct tt_mfr *m = *state;

	tt_mfr_free(m);
	free(m);
	return 0;
}

int
tt_fx_setup(void **state)
{
	struct tt_fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mfr = *state;
	assert_non_null(f->mfr);
	f->t = tt_token_new(f->mfr, &f->h);
	*state = f;
	return 0;
}

int
tt_fx_setup_selected(void **state)
{
	struct tt_fx *f;

	tt_fx_setup(state);
	f = *state;
	tt_select(f->t);
	return 0;
}

int
tt_fx_setup_admin(void **state)
{
	struct tt_fx *f;

	tt_fx_setup_selected(state);
	f = *state;
	assert_int_equal(tt_mgm_auth(f->t, 0x03, tt_mgm_default, 24), 0x9000);
	return 0;
}

int
tt_fx_teardown(void **state)
{
	struct tt_fx *f = *state;

	tg_tok_free(f->t);
	tt_host_free(&f->h);
	free(f);
	return 0;
}

void
tt_run_sw_cases(struct tg_tok *t, const struct tt_sw_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint16_t sw = tt_hex(t, c[i].hex, NULL, 0, NULL);

		if (sw != c[i].sw)
			fail_msg("%s: SW %04X, want %04X", c[i].name, sw, c[i].sw);
	}
}

uint16_t
tt_apdu1(struct tg_tok *t, const uint8_t *cmd, size_t n, uint8_t *out, size_t outcap,
         size_t *outlen)
{
	uint8_t rsp[300];
	uint8_t *copy = NULL;
	size_t rlen = 0;
	uint16_t sw;

	if (n > 0) {
		copy = malloc(n);
		assert_non_null(copy);
		memcpy(copy, cmd, n);
	}
	assert_int_equal(tg_tok_apdu(t, copy, n, rsp, sizeof(rsp), &rlen), 0);
	free(copy);
	assert_true(rlen >= 2 && rlen <= 258);
	if (tt_rsp_log != NULL) {
		if (tt_rsp_log->len + rlen > tt_rsp_log->cap) {
			tt_rsp_log->cap = 2 * (tt_rsp_log->cap + rlen);
			tt_rsp_log->p = realloc(tt_rsp_log->p, tt_rsp_log->cap);
			assert_non_null(tt_rsp_log->p);
		}
		memcpy(tt_rsp_log->p + tt_rsp_log->len, rsp, rlen);
		tt_rsp_log->len += rlen;
	}
	sw = (uint16_t)((rsp[rlen - 2] << 8) | rsp[rlen - 1]);
	if (outlen != NULL)
		*outlen = 0;
	if (out != NULL && outlen != NULL) {
		assert_true(rlen - 2 <= outcap);
		memcpy(out, rsp, rlen - 2);
		*outlen = rlen - 2;
	}
	return sw;
}

uint16_t
tt_apdu(struct tg_tok *t, const uint8_t *cmd, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
	static const uint8_t getrsp[] = {0x00, 0xC0, 0x00, 0x00, 0x00};
	size_t got = 0, part;
	uint16_t sw;

	sw = tt_apdu1(t, cmd, n, out, outcap, &part);
	got = part;
	while ((sw & 0xFF00) == 0x6100) {
		sw = tt_apdu1(t, getrsp, sizeof(getrsp), out ? out + got : NULL,
		              out ? outcap - got : 0, &part);
		got += part;
	}
	if (outlen != NULL)
		*outlen = got;
	return sw;
}

size_t
tt_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v = 0;

	for (; *hex != '\0'; hex++) {
		if (*hex == ' ')
			continue;
		if (*hex >= '0' && *hex <= '9')
			v = *hex - '0';
		else if (*hex >= 'a' && *hex <= 'f')
			v = *hex - 'a' + 10;
		else if (*hex >= 'A' && *hex <= 'F')
			v = *hex - 'A' + 10;
		else
			fail_msg("bad hex '%c'", *hex);
		if (hi < 0) {
			hi = v;
		} else {
			assert_true(n < cap);
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	assert_true(hi < 0);
	return n;
}

uint16_t
tt_hex(struct tg_tok *t, const char *hex, uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t cmd[600];
	size_t n = tt_unhex(hex, cmd, sizeof(cmd));

	return tt_apdu(t, cmd, n, out, outcap, outlen);
}

uint16_t
tt_send(struct tg_tok *t, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data, size_t n,
        uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t cmd[5 + 255];
	size_t off = 0, part;
	uint16_t sw = 0x9000;

	do {
		part = n - off > 255 ? 255 : n - off;
		cmd[0] = off + part < n ? 0x10 : 0x00;
		cmd[1] = ins;
		cmd[2] = p1;
		cmd[3] = p2;
		cmd[4] = (uint8_t)part;
		if (part > 0)
			memcpy(cmd + 5, data + off, part);
		off += part;
		if (off < n) {
			sw = tt_apdu1(t, cmd, 5 + part, NULL, 0, NULL);
			if (sw != 0x9000)
				break;
		} else {
			sw = tt_apdu(t, cmd, part > 0 ? 5 + part : 4, out, outcap, outlen);
		}
	} while (off < n);
	return sw;
}

void
tt_select(struct tg_tok *t)
{
	assert_int_equal(tt_hex(t, "00A40400 05 A000000308", NULL, 0, NULL), 0x9000);
}

uint16_t
tt_verify(struct tg_tok *t, const char *pin)
{
	uint8_t cmd[13] = {0x00, 0x20, 0x00, 0x80, 0x08};
	size_t n = strlen(pin);

	memset(cmd + 5, 0xFF, 8);
	memcpy(cmd + 5, pin, n > 8 ? 8 : n);
	return tt_apdu(t, cmd, sizeof(cmd), NULL, 0, NULL);
}

static const EVP_CIPHER *
cipher_for(uint8_t alg)
{
	switch (alg) {
	case 0x03:
		return EVP_des_ede3_ecb();
	case 0x08:
		return EVP_aes_128_ecb();
	case 0x0A:
		return EVP_aes_192_ecb();
	default:
		return EVP_aes_256_ecb();
	}
}

void
tt_mgm_block(uint8_t alg, const uint8_t *key, int enc, const uint8_t *in, uint8_t *out, size_t bs)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;

	assert_non_null(c);
	assert_int_equal(EVP_CipherInit_ex(c, cipher_for(alg), NULL, key, NULL, enc), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_CipherUpdate(c, out, &n, in, (int)bs), 1);
	assert_int_equal(n, (int)bs);
	EVP_CIPHER_CTX_free(c);
}

uint16_t
tt_mgm_auth(struct tg_tok *t, uint8_t alg, const uint8_t *key, size_t keylen)
{
	uint8_t cmd[64], rsp[64], w[16], chal[16], expect[16];
	size_t bs = alg == 0x03 ? 8 : 16, n;
	uint16_t sw;

	(void)keylen;
	n = tt_unhex("00870000 04 7C028000", cmd, sizeof(cmd));
	cmd[2] = alg;
	cmd[3] = 0x9B;
	sw = tt_apdu(t, cmd, n, rsp, sizeof(rsp), &n);
	if (sw != 0x9000)
		return sw;
	assert_int_equal(n, 4 + bs);
	assert_int_equal(rsp[0], 0x7C);
	assert_int_equal(rsp[2], 0x80);
	tt_mgm_block(alg, key, 0, rsp + 4, w, bs);
	memset(chal, 0x5A, sizeof(chal));
	cmd[0] = 0x00;
	cmd[1] = 0x87;
	cmd[2] = alg;
	cmd[3] = 0x9B;
	cmd[4] = (uint8_t)(2 + 2 * (2 + bs));
	cmd[5] = 0x7C;
	cmd[6] = (uint8_t)(2 * (2 + bs));
	cmd[7] = 0x80;
	cmd[8] = (uint8_t)bs;
	memcpy(cmd + 9, w, bs);
	cmd[9 + bs] = 0x81;
	cmd[10 + bs] = (uint8_t)bs;
	memcpy(cmd + 11 + bs, chal, bs);
	sw = tt_apdu(t, cmd, 11 + 2 * bs, rsp, sizeof(rsp), &n);
	if (sw != 0x9000)
		return sw;
	assert_int_equal(n, 4 + bs);
	assert_int_equal(rsp[2], 0x82);
	tt_mgm_block(alg, key, 1, chal, expect, bs);
	assert_memory_equal(rsp + 4, expect, bs);
	return sw;
}

EVP_PKEY *
tt_pubkey_parse(const uint8_t *p, size_t n, uint8_t alg)
{
	struct tg_buf b, v, v2;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *c;
	EVP_PKEY *k = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	int is_ec = alg == 0x11 || alg == 0x14;

	assert_non_null(bld);
	tg_buf_reader(&b, p, n);
	if (is_ec) {
		assert_int_equal(tg_buf_get_tlv_tag(&b, 0x86, &v), 0);
		assert_int_equal(
		    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		                                    alg == 0x11 ? "prime256v1" : "secp384r1", 0),
		    1);
		assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
		                                                  tg_buf_cur(&v),
		                                                  tg_buf_remaining(&v)),
		                 1);
	} else {
		assert_int_equal(tg_buf_get_tlv_tag(&b, 0x81, &v), 0);
		assert_int_equal(tg_buf_get_tlv_tag(&b, 0x82, &v2), 0);
		bn = BN_bin2bn(tg_buf_cur(&v), (int)tg_buf_remaining(&v), NULL);
		be = BN_bin2bn(tg_buf_cur(&v2), (int)tg_buf_remaining(&v2), NULL);
		assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn), 1);
		assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be), 1);
	}
	assert_int_equal(tg_buf_expect_end(&b), 0);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	c = EVP_PKEY_CTX_new_from_name(NULL, is_ec ? "EC" : "RSA", NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
	assert_int_equal(EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return k;
}

EVP_PKEY *
tt_generate(struct tg_tok *t, uint8_t slot, uint8_t alg, uint8_t pin, uint8_t touch)
{
	uint8_t data[16], rsp[1024];
	size_t n = 0, rn = 0;
	struct tg_buf b, v;
	uint16_t sw;

	data[n++] = 0xAC;
	data[n++] = 3;
	data[n++] = 0x80;
	data[n++] = 1;
	data[n++] = alg;
	if (pin != 0) {
		data[n++] = 0xAA;
		data[n++] = 1;
		data[n++] = pin;
		data[1] = (uint8_t)(data[1] + 3);
	}
	if (touch != 0) {
		data[n++] = 0xAB;
		data[n++] = 1;
		data[n++] = touch;
		data[1] = (uint8_t)(data[1] + 3);
	}
	sw = tt_send(t, 0x47, 0x00, slot, data, n, rsp, sizeof(rsp), &rn);
	assert_int_equal(sw, 0x9000);
	tg_buf_reader(&b, rsp, rn);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x7F49, &v), 0);
	assert_int_equal(tg_buf_expect_end(&b), 0);
	return tt_pubkey_parse(tg_buf_cur(&v), tg_buf_remaining(&v), alg);
}

static size_t
len_size(size_t n)
{
	return n < 0x80 ? 1 : n < 0x100 ? 2 : 3;
}

static size_t
put_len(uint8_t *p, size_t n)
{
	size_t k = len_size(n);

	if (k == 1) {
		p[0] = (uint8_t)n;
	} else if (k == 2) {
		p[0] = 0x81;
		p[1] = (uint8_t)n;
	} else {
		p[0] = 0x82;
		p[1] = (uint8_t)(n >> 8);
		p[2] = (uint8_t)n;
	}
	return k;
}

uint16_t
tt_sign(struct tg_tok *t, uint8_t alg, uint8_t slot, const uint8_t *in, size_t n, uint8_t *sig,
        size_t *siglen)
{
	uint8_t data[600], rsp[600];
	struct tg_buf b, v, w;
	size_t m = 0, rn = 0;
	uint16_t sw;

	assert_true(n < 500);
	data[m++] = 0x7C;
	m += put_len(data + m, 2 + 1 + len_size(n) + n);
	data[m++] = 0x82;
	data[m++] = 0x00;
	data[m++] = 0x81;
	m += put_len(data + m, n);
	memcpy(data + m, in, n);
	m += n;
	sw = tt_send(t, 0x87, alg, slot, data, m, rsp, sizeof(rsp), &rn);
	if (sw != 0x9000)
		return sw;
	tg_buf_reader(&b, rsp, rn);
	assert_int_equal(tg_buf_get_tlv_tag(&b, 0x7C, &v), 0);
	assert_int_equal(tg_buf_get_tlv_tag(&v, 0x82, &w), 0);
	assert_int_equal(tg_buf_expect_end(&v), 0);
	memcpy(sig, tg_buf_cur(&w), tg_buf_remaining(&w));
	*siglen = tg_buf_remaining(&w);
	return sw;
}
