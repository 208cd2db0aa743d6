/* test_tok_noleak.c — runs every command type against one token and checks
 * that no response ever contains private key material of any slot (EC
 * private scalar; RSA d, p, q, dP, dQ, qInv), a management key or a PIN/PUK:
 * not one 8-byte window of them. White-box: reads the keys through
 * tok-int.h to know what to look for. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>

#include "test_tok_util.h"
#include "tg_secret.h"
#include "tok-int.h"

#define WINDOW 8

struct secrets {
	uint8_t *p[512];
	size_t n[512];
	size_t count;
};

static void
secret_add(struct secrets *s, const uint8_t *p, size_t n)
{
	assert_true(s->count < 512);
	s->p[s->count] = malloc(n);
	assert_non_null(s->p[s->count]);
	memcpy(s->p[s->count], p, n);
	s->n[s->count++] = n;
}

static void
secret_add_bn(struct secrets *s, EVP_PKEY *k, const char *name)
{
	BIGNUM *bn = NULL;
	uint8_t buf[512];
	int n;

	if (EVP_PKEY_get_bn_param(k, name, &bn) != 1)
		return;
	n = BN_bn2bin(bn, buf);
	assert_true(n > 0);
	secret_add(s, buf, (size_t)n);
	tg_wipe(buf, sizeof(buf));
	BN_clear_free(bn);
}

/* Private material of every key now in the token. */
static void
snapshot(struct secrets *s, struct tg_tok *t)
{
	static const char *const names[] = {
	    OSSL_PKEY_PARAM_PRIV_KEY,        OSSL_PKEY_PARAM_RSA_D,
	    OSSL_PKEY_PARAM_RSA_FACTOR1,     OSSL_PKEY_PARAM_RSA_FACTOR2,
	    OSSL_PKEY_PARAM_RSA_EXPONENT1,   OSSL_PKEY_PARAM_RSA_EXPONENT2,
	    OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	size_t i, j;

	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		if (t->slots[i].pkey == NULL)
			continue;
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			secret_add_bn(s, t->slots[i].pkey, names[j]);
	}
	secret_add(s, t->mgm_key, t->mgm_len);
	secret_add(s, t->pin, TOK_PIN_LEN);
	secret_add(s, t->puk, TOK_PIN_LEN);
}

/* Number of secret windows found in the log (each reported). */
static size_t
leaks(const struct secrets *s, const struct tt_log *log, int quiet)
{
	size_t i, off, found = 0;

	for (i = 0; i < s->count; i++) {
		if (s->n[i] < WINDOW)
			continue; /* e.g. a short CRT value cannot be told apart */
		for (off = 0; off + WINDOW <= s->n[i]; off++) {
			if (memmem(log->p, log->len, s->p[i] + off, WINDOW) == NULL)
				continue;
			if (!quiet)
				print_error("secret %zu (%zu bytes): window at %zu in a response\n",
				            i, s->n[i], off);
			found++;
		}
	}
	return found;
}

static const uint8_t algs[] = {0x11, 0x14, 0x06, 0x11, 0x07, 0x14};

static void
sign_all(struct tg_tok *t)
{
	uint8_t in[384], sig[600], cmd[4] = {0x00, 0xF7, 0x00, 0x00}, out[3000];
	size_t i, siglen, n;

	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		struct tok_slot *sl = &t->slots[i];
		size_t len;

		if (sl->pkey == NULL || sl->id == TG_PIV_SLOT_ATTEST)
			continue;
		len = sl->alg == 0x11 ? 32 : sl->alg == 0x14 ? 48 : sl->alg == 0x06 ? 128 : 256;
		memset(in, 0x01, sizeof(in));
		in[0] = 0x00;
		assert_int_equal(tt_verify(t, "87654321"), 0x9000);
		assert_int_equal(tt_sign(t, sl->alg, sl->id, in, len, sig, &siglen), 0x9000);
		cmd[3] = sl->id;
		assert_int_equal(tt_apdu(t, cmd, 4, out, sizeof(out), &n), 0x9000);
		cmd[1] = 0xF9;
		cmd[2] = sl->id;
		cmd[3] = 0x00;
		(void)tt_apdu(t, cmd, 4, out, sizeof(out), &n);
		cmd[1] = 0xF7;
		cmd[2] = 0x00;
	}
}

static void
read_all_objects(struct tg_tok *t)
{
	uint8_t cmd[10] = {0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x00};
	uint8_t out[4000];
	size_t n;
	unsigned tag;

	assert_int_equal(tt_verify(t, "87654321"), 0x9000);
	for (tag = 0x01; tag <= 0x23; tag++) {
		cmd[9] = (uint8_t)tag;
		(void)tt_apdu(t, cmd, sizeof(cmd), out, sizeof(out), &n);
	}
	(void)tt_hex(t, "00CB3FFF 05 5C035FFF01", out, sizeof(out), &n);
	(void)tt_hex(t, "00CB3FFF 05 5C035FFF00", out, sizeof(out), &n);
	(void)tt_hex(t, "00CB3FFF 03 5C017E", out, sizeof(out), &n);
	(void)tt_hex(t, "00F70080", out, sizeof(out), &n);
	(void)tt_hex(t, "00F70081", out, sizeof(out), &n);
	(void)tt_hex(t, "00F7009B", out, sizeof(out), &n);
	(void)tt_hex(t, "00F700F9", out, sizeof(out), &n);
	/* a long object fetched in small GET RESPONSE parts */
	(void)tt_apdu1(t, cmd, sizeof(cmd), out, sizeof(out), &n);
	(void)tt_hex(t, "00C00000 07", out, sizeof(out), &n);
}

static void
import_all(struct tg_tok *t, struct secrets *s)
{
	uint8_t data[1200];
	size_t i;

	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		uint8_t id = t->slots[i].id;
		EVP_PKEY *k;
		BIGNUM *bn = NULL;
		size_t m = 0;

		if (id == TG_PIV_SLOT_ATTEST)
			continue;
		if (i % 3 == 0) {
			static const char *const names[5] = {
			    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
			    OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
			    OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
			size_t j;

			k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
			for (j = 0; j < 5; j++) {
				assert_int_equal(EVP_PKEY_get_bn_param(k, names[j], &bn), 1);
				data[m++] = (uint8_t)(j + 1);
				data[m++] = 64;
				assert_int_equal(BN_bn2binpad(bn, data + m, 64), 64);
				m += 64;
				BN_clear_free(bn);
				bn = NULL;
			}
			assert_int_equal(tt_send(t, 0xFE, 0x06, id, data, m, NULL, 0, NULL),
			                 0x9000);
		} else {
			k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
			assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn),
			                 1);
			data[m++] = 0x06;
			data[m++] = 48;
			assert_int_equal(BN_bn2binpad(bn, data + m, 48), 48);
			m += 48;
			BN_clear_free(bn);
			assert_int_equal(tt_send(t, 0xFE, 0x14, id, data, m, NULL, 0, NULL),
			                 0x9000);
		}
		EVP_PKEY_free(k);
		tg_wipe(data, sizeof(data));
	}
	snapshot(s, t);
}

/* Random APDUs over every INS the card knows, authenticated. */
static void
random_apdus(struct tg_tok *t)
{
	static const uint8_t ins[] = {0xA4, 0xCB, 0xDB, 0x20, 0x24, 0x2C, 0x47, 0x87, 0x84,
	                              0xC0, 0xFF, 0xFE, 0xFD, 0xFB, 0xFA, 0xF9, 0xF8, 0xF7};
	uint8_t cmd[261];
	size_t i, n;
	uint8_t r[4];

	for (i = 0; i < 3000; i++) {
		assert_int_equal(RAND_bytes(r, sizeof(r)), 1);
		assert_int_equal(RAND_bytes(cmd, sizeof(cmd)), 1);
		cmd[0] = r[0] & 0x10;
		cmd[1] = ins[r[1] % sizeof(ins)];
		if (cmd[1] == 0xFB || cmd[1] == 0xFA || cmd[1] == 0xFF || cmd[1] == 0x24 ||
		    cmd[1] == 0x2C || cmd[1] == 0x20 || cmd[1] == 0xDB || cmd[1] == 0xFE ||
		    cmd[1] == 0x47)
			continue; /* keep the credentials and keys this test knows */
		if (r[2] & 1)
			cmd[2] = 0x00;
		if (r[2] & 2)
			cmd[3] = (uint8_t)(0x82 + r[3] % 20);
		n = 4 + (r[3] % 3 == 0 ? 0 : 1 + (size_t)(r[2] % 64));
		if (n > 4)
			cmd[4] = (uint8_t)(n - 5);
		(void)tt_apdu1(t, cmd, n, NULL, 0, NULL);
	}
	tg_tok_reset(t);
	tt_select(t);
}

static void
test_noleak(void **state)
{
	struct tt_host h;
	struct tg_tok *t = tt_token_new(*state, &h);
	struct tt_log log = {NULL, 0, 0};
	struct secrets s;
	uint8_t newkey[32];
	uint8_t cmd[64];
	size_t i, n;

	memset(&s, 0, sizeof(s));
	snapshot(&s, t); /* F9 key, default credentials */
	tt_rsp_log = &log;
	tt_select(t);
	(void)tt_hex(t, "00FD0000", NULL, 0, NULL);
	(void)tt_hex(t, "00F80000", NULL, 0, NULL);
	(void)tt_hex(t, "00200080", NULL, 0, NULL);
	(void)tt_verify(t, "000000");
	assert_int_equal(tt_verify(t, "123456"), 0x9000);
	assert_int_equal(tt_hex(t, "00240080 10 313233343536FFFF 3837363534333231", NULL, 0, NULL),
	                 0x9000);
	assert_int_equal(tt_hex(t, "00240081 10 3132333435363738 3231323132313231", NULL, 0, NULL),
	                 0x9000);
	assert_int_equal(tt_hex(t, "002C0080 10 3231323132313231 3837363534333231", NULL, 0, NULL),
	                 0x9000);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	(void)tt_hex(t, "0087039B 04 7C028100", NULL, 0, NULL);
	(void)tt_hex(t, "0087009B 04 7C028100", NULL, 0, NULL);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	assert_int_equal(RAND_bytes(newkey, sizeof(newkey)), 1);
	n = tt_unhex("00FFFFFF 23 0C9B20", cmd, sizeof(cmd));
	memcpy(cmd + n, newkey, 32);
	assert_int_equal(tt_apdu(t, cmd, n + 32, NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_mgm_auth(t, 0x0C, newkey, 32), 0x9000);
	snapshot(&s, t);
	/* generate on every slot, then sign, attest, read metadata */
	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		uint8_t id = t->slots[i].id;

		if (id == TG_PIV_SLOT_ATTEST)
			continue;
		EVP_PKEY_free(tt_generate(t, id, algs[i % sizeof(algs)], 0, 0));
	}
	snapshot(&s, t);
	(void)tt_hex(t, "00DB3FFF 0A 5C035FC109 5303 010100", NULL, 0, NULL);
	sign_all(t);
	read_all_objects(t);
	/* ECDH on an EC slot */
	{
		EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		uint8_t *pt = NULL, data[80], out[80];
		size_t ptlen = EVP_PKEY_get1_encoded_public_key(peer, &pt), m = 0;

		data[m++] = 0x7C;
		data[m++] = 4 + 65;
		data[m++] = 0x82;
		data[m++] = 0x00;
		data[m++] = 0x85;
		data[m++] = 65;
		memcpy(data + m, pt, ptlen);
		m += ptlen;
		assert_int_equal(tt_verify(t, "87654321"), 0x9000);
		assert_int_equal(tt_send(t, 0x87, 0x11, 0x9A, data, m, out, sizeof(out), &n),
		                 0x9000);
		OPENSSL_free(pt);
		EVP_PKEY_free(peer);
	}
	(void)tt_hex(t, "00840000 20", NULL, 0, NULL);
	/* import on every slot, then the same again */
	import_all(t, &s);
	sign_all(t);
	read_all_objects(t);
	random_apdus(t);
	/* reset after blocking, then generate again */
	for (i = 0; i < 3; i++) {
		(void)tt_verify(t, "000000");
		(void)tt_hex(t, "002C0080 10 3030303030303030 313131313131FFFF", NULL, 0, NULL);
	}
	assert_int_equal(tt_hex(t, "00FB0000", NULL, 0, NULL), 0x9000);
	assert_int_equal(tt_mgm_auth(t, 0x03, tt_mgm_default, 24), 0x9000);
	EVP_PKEY_free(tt_generate(t, 0x9A, 0x07, 0, 0));
	snapshot(&s, t);
	(void)tt_hex(t, "00F7009A", NULL, 0, NULL);
	(void)tt_hex(t, "00F99A00", NULL, 0, NULL);
	tt_rsp_log = NULL;

	assert_true(log.len > 10000);
	assert_true(s.count > 100);
	assert_int_equal(leaks(&s, &log, 0), 0);
	/* the check itself can fail: plant a window of a key in a copy */
	{
		struct tt_log fake = {NULL, 0, 0};
		size_t k;

		for (k = 0; k < s.count && s.n[k] < 32; k++)
			;
		assert_true(k < s.count);
		fake.p = malloc(log.len);
		fake.len = fake.cap = log.len;
		memcpy(fake.p, log.p, log.len);
		memcpy(fake.p + 5000, s.p[k] + 3, WINDOW);
		assert_true(leaks(&s, &fake, 1) >= 1);
		free(fake.p);
	}
	for (i = 0; i < s.count; i++)
		tg_freezero(s.p[i], s.n[i]);
	free(log.p);
	tg_tok_free(t);
	tt_host_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_noleak),
	};

	return cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown);
}
