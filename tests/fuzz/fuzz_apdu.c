/*
 * fuzz_apdu.c — fuzz target for the token core's APDU entry point
 * (tg_tok_apdu), with state.
 *
 * The input is a sequence of records, each a 2-byte big-endian length and
 * that many bytes of command APDU, sent in order to one token. Three
 * lengths are harness actions instead of APDUs:
 *   FFFF  authenticate with the management key (the harness answers the
 *         card's witness with the fixture's key, as a host tool would);
 *   FFFE  card reset (tg_tok_reset);
 *   FFFD  toggle persist failure (the host's save fails: SW 6581 paths).
 * Every input starts from the same token state: a fixture built once per
 * process (manufacturer CA, token, keys imported into 9A/9C/9D/9E/82 with
 * assorted PIN and touch policies, a certificate object), saved and
 * loaded once, then copied (tok_dup, white-box) for each input.
 *
 * Checked for every command: tg_tok_apdu returns 0; the response is 2 to
 * 258 bytes; no response holds an 8-byte window of a fixture private key
 * (the default management key and PIN are not checked: they are public,
 * and the fuzzer can echo any bytes back through a data object); when the
 * input changed persistent state, the state it left saves and loads again. A broken property
 * aborts (a crash for libFuzzer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_buf.h"
#include "tg_secret.h"
#include "tg_tok.h"
#include "tok-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

#define REC_MGM_AUTH 0xFFFF
#define REC_RESET    0xFFFE
#define REC_PERSIST  0xFFFD
#define APDU_MAX     3300 /* an extended PUT DATA of the largest object fits */
#define MAX_RECORDS  64
#define WINDOW       8
#define RSP_CAP      258

static const uint8_t mgm_key[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                    5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

/* Secret windows are kept and compared only as hashes: libFuzzer records
 * the operands of comparisons (memcmp, memmem) and would plant the raw
 * secret bytes in inputs, which the card then echoes through a data
 * object — a harness artefact, not a leak. */
#define NWINDOWS 1024

struct fixture {
	struct tg_tok *tok;        /* the state every input starts from */
	uint64_t window[NWINDOWS]; /* sorted mix() of every 8-byte window */
	size_t nwindows;
	uint64_t clock;
	int persist_fail; /* persist answers "memory failure" */
	int persisted;    /* persist was called during this input */
};

/* MurmurHash3's 64-bit finalizer: a bijective mixer. */
static uint64_t
mix(const uint8_t *p)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < WINDOW; i++)
		x = (x << 8) | p[i];
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
secret_add(struct fixture *fx, const uint8_t *p, size_t n)
{
	size_t off;

	for (off = 0; off + WINDOW <= n; off++) {
		check(fx->nwindows < NWINDOWS);
		fx->window[fx->nwindows++] = mix(p + off);
	}
	qsort(fx->window, fx->nwindows, sizeof(fx->window[0]), cmp_u64);
}

static int
cb_persist(void *ctx, const uint8_t *blob, size_t len)
{
	struct fixture *fx = ctx;

	check(blob != NULL && len > 0);
	fx->persisted = 1;
	return fx->persist_fail ? -1 : 0;
}

static int
cb_touch(void *ctx, uint8_t slot)
{
	(void)ctx;
	return slot != TG_PIV_SLOT_RETIRED1; /* slot 82's touch is never given */
}

static uint64_t
cb_now(void *ctx)
{
	struct fixture *fx = ctx;

	return fx->clock;
}

static uint16_t
xfer(struct tg_tok *t, const struct fixture *fx, const uint8_t *cmd, size_t n, uint8_t *rsp,
     size_t *rlen)
{
	uint64_t h;
	size_t off;

	check(tg_tok_apdu(t, cmd, n, rsp, RSP_CAP, rlen) == 0);
	check(*rlen >= 2 && *rlen <= RSP_CAP);
	for (off = 0; off + WINDOW <= *rlen; off++) {
		h = mix(rsp + off);
		check(bsearch(&h, fx->window, fx->nwindows, sizeof(h), cmp_u64) == NULL);
	}
	return (uint16_t)(rsp[*rlen - 2] << 8 | rsp[*rlen - 1]);
}

static int
des3(int enc, const uint8_t in[8], uint8_t out[8])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = c != NULL && EVP_CipherInit_ex(c, EVP_des_ede3_ecb(), NULL, mgm_key, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_set_padding(c, 0) == 1 && EVP_CipherUpdate(c, out, &n, in, 8) == 1 &&
	     n == 8;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

/* Mutual authentication with the 3DES key, as yubico-piv-tool does it.
 * The card may refuse (key changed, nothing selected): that is fine. */
static void
mgm_auth(struct tg_tok *t, const struct fixture *fx)
{
	uint8_t step1[] = {0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00};
	uint8_t step2[5 + 22] = {0x00, 0x87, 0x03, 0x9B, 0x16, 0x7C, 0x14, 0x80, 0x08};
	uint8_t rsp[RSP_CAP];
	struct tg_buf b, tpl, w;
	size_t n;

	if (xfer(t, fx, step1, sizeof(step1), rsp, &n) != 0x9000)
		return;
	tg_buf_reader(&b, rsp, n - 2);
	if (tg_buf_get_tlv_tag(&b, 0x7C, &tpl) != 0 || tg_buf_get_tlv_tag(&tpl, 0x80, &w) != 0 ||
	    tg_buf_remaining(&w) != 8)
		return;
	check(des3(0, tg_buf_cur(&w), step2 + 9) == 0);
	step2[17] = 0x81;
	step2[18] = 0x08;
	memset(step2 + 19, 0x11, 8);
	(void)xfer(t, fx, step2, sizeof(step2), rsp, &n);
}

/* Sends hex-free fixed commands while building the fixture. */
static void
must(struct tg_tok *t, const struct fixture *fx, const uint8_t *cmd, size_t n)
{
	uint8_t rsp[RSP_CAP];
	size_t rl;

	check(xfer(t, fx, cmd, n, rsp, &rl) == 0x9000);
}

/* IMPORT KEY of an EC key (scalar known to the harness). */
static void
import_ec(struct tg_tok *t, struct fixture *fx, uint8_t alg, uint8_t slot, uint8_t pin,
          uint8_t touch)
{
	const struct tg_piv_alg *a = tg_piv_alg_by_id(alg);
	size_t w = a->bytes;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", a->group);
	BIGNUM *d = NULL;
	uint8_t cmd[5 + 2 + 48 + 6];
	size_t n = 0;

	check(k != NULL && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1);
	cmd[n++] = 0x00;
	cmd[n++] = 0xFE;
	cmd[n++] = alg;
	cmd[n++] = slot;
	cmd[n++] = (uint8_t)(2 + w + 6);
	cmd[n++] = 0x06;
	cmd[n++] = (uint8_t)w;
	check(BN_bn2binpad(d, cmd + n, (int)w) == (int)w);
	secret_add(fx, cmd + n, w);
	n += w;
	cmd[n++] = 0xAA;
	cmd[n++] = 1;
	cmd[n++] = pin;
	cmd[n++] = 0xAB;
	cmd[n++] = 1;
	cmd[n++] = touch;
	must(t, fx, cmd, n);
	tg_wipe(cmd, sizeof(cmd));
	BN_clear_free(d);
	EVP_PKEY_free(k);
}

/* IMPORT KEY of an RSA-1024 key, sent chained. */
static void
import_rsa(struct tg_tok *t, struct fixture *fx, uint8_t slot)
{
	static const char *const names[5] = {
	    OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
	    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	uint8_t data[5 * 66], cmd[5 + 255];
	BIGNUM *bn = NULL;
	size_t n = 0, j, off, part;

	check(k != NULL);
	for (j = 0; j < 5; j++) {
		check(EVP_PKEY_get_bn_param(k, names[j], &bn) == 1);
		data[n++] = (uint8_t)(j + 1);
		data[n++] = 64;
		check(BN_bn2binpad(bn, data + n, 64) == 64);
		if (j < 2)
			secret_add(fx, data + n, 64);
		n += 64;
		BN_clear_free(bn);
		bn = NULL;
	}
	check(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_D, &bn) == 1);
	{
		uint8_t d[128];

		check(BN_bn2binpad(bn, d, sizeof(d)) == (int)sizeof(d));
		secret_add(fx, d, sizeof(d));
		tg_wipe(d, sizeof(d));
	}
	BN_clear_free(bn);
	for (off = 0; off < n; off += part) {
		part = n - off > 255 ? 255 : n - off;
		cmd[0] = off + part < n ? 0x10 : 0x00;
		cmd[1] = 0xFE;
		cmd[2] = 0x06;
		cmd[3] = slot;
		cmd[4] = (uint8_t)part;
		memcpy(cmd + 5, data + off, part);
		must(t, fx, cmd, 5 + part);
	}
	tg_wipe(data, sizeof(data));
	tg_wipe(cmd, sizeof(cmd));
	EVP_PKEY_free(k);
}

/* A self-signed manufacturer CA, for tg_tok_create. */
static void
make_mfr(uint8_t **cert, size_t *clen, uint8_t **key, size_t *klen)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	int n;

	check(k != NULL && x != NULL);
	check(X509_set_version(x, X509_VERSION_3) == 1);
	check(ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1);
	nm = X509_get_subject_name(x);
	check(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	                                 (const unsigned char *)"Fuzz Manufacturer CA", -1, -1,
	                                 0) == 1);
	check(X509_set_issuer_name(x, nm) == 1);
	check(X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL);
	check(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) != NULL);
	check(X509_set_pubkey(x, k) == 1);
	check(X509_sign(x, k, EVP_sha256()) > 0);
	*cert = NULL;
	*key = NULL;
	check((n = i2d_X509(x, cert)) > 0);
	*clen = (size_t)n;
	check((n = i2d_PrivateKey(k, key)) > 0);
	*klen = (size_t)n;
	X509_free(x);
	EVP_PKEY_free(k);
}

static struct fixture *
fixture_get(void)
{
	static struct fixture *fx;
	static const uint8_t select[] = {0x00, 0xA4, 0x04, 0x00, 0x05,
	                                 0xA0, 0x00, 0x00, 0x03, 0x08};
	static const uint8_t cert9a[] = {0x00, 0xDB, 0x3F, 0xFF, 0x11, 0x5C, 0x03, 0x5F,
	                                 0xC1, 0x05, 0x53, 0x0A, 0x70, 0x03, 0x30, 0x01,
	                                 0x00, 0x71, 0x01, 0x00, 0xFE, 0x00};
	struct tg_tok_params p;
	struct tg_tok_host host;
	struct tg_tok *t = NULL;
	uint8_t *mc = NULL, *mk = NULL, *blob = NULL;
	size_t mcl = 0, mkl = 0, blen = 0;

	if (fx != NULL)
		return fx;
	fx = calloc(1, sizeof(*fx));
	check(fx != NULL);
	memset(&p, 0, sizeof(p));
	make_mfr(&mc, &mcl, &mk, &mkl);
	p.serial = 424242;
	p.mfr_cert_der = mc;
	p.mfr_cert_len = mcl;
	p.mfr_key_der = mk;
	p.mfr_key_len = mkl;
	memset(&host, 0, sizeof(host));
	host.persist = cb_persist;
	host.touch = cb_touch;
	host.now_ms = cb_now;
	host.ctx = fx;
	check(tg_tok_create(&p, &host, &t) == 0);
	must(t, fx, select, sizeof(select));
	mgm_auth(t, fx);
	import_ec(t, fx, TG_PIV_ALG_ECCP256, TG_PIV_SLOT_AUTH, TG_PIV_PIN_POLICY_ONCE,
	          TG_PIV_TOUCH_POLICY_NEVER);
	import_ec(t, fx, TG_PIV_ALG_ECCP384, TG_PIV_SLOT_SIGN, TG_PIV_PIN_POLICY_ALWAYS,
	          TG_PIV_TOUCH_POLICY_NEVER);
	import_ec(t, fx, TG_PIV_ALG_ECCP256, TG_PIV_SLOT_CARDAUTH, TG_PIV_PIN_POLICY_NEVER,
	          TG_PIV_TOUCH_POLICY_CACHED);
	/* touch always, never given (cb_touch) */
	import_ec(t, fx, TG_PIV_ALG_ECCP256, TG_PIV_SLOT_RETIRED1, TG_PIV_PIN_POLICY_NEVER,
	          TG_PIV_TOUCH_POLICY_ALWAYS);
	import_rsa(t, fx, TG_PIV_SLOT_KEYMGM);
	must(t, fx, cert9a, sizeof(cert9a));
	/* the fixture goes through a save and a load once */
	check(tg_tok_save(t, &blob, &blen) == 0);
	tg_tok_free(t);
	check(tg_tok_load(blob, blen, &host, &fx->tok) == 0);
	tg_freezero(blob, blen);
	OPENSSL_free(mc);
	OPENSSL_clear_free(mk, mkl);
	return fx;
}

/* Keeps RSA key generation (tens of ms) out of the loop: it parses nothing
 * that the EC path does not, and it would cut executions per second. */
static int
slow_command(const uint8_t *cmd, size_t n)
{
	size_t i;

	if (n < 5 || cmd[1] != 0x47)
		return 0;
	for (i = 5; i + 2 < n; i++)
		if (cmd[i] == 0x80 && cmd[i + 1] == 0x01 && cmd[i + 2] >= 0x05 &&
		    cmd[i + 2] <= 0x07)
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fixture *fx = fixture_get();
	struct tg_tok_host host;
	struct tg_tok *t = NULL;
	struct tg_buf in, rec;
	uint8_t rsp[RSP_CAP], *cmd, *blob = NULL;
	uint16_t len;
	size_t n, blen = 0, records = 0;

	memset(&host, 0, sizeof(host));
	host.persist = cb_persist;
	host.touch = cb_touch;
	host.now_ms = cb_now;
	host.ctx = fx;
	fx->clock = 1000000;
	fx->persist_fail = 0;
	fx->persisted = 0;
	check((t = tok_dup(fx->tok, &host)) != NULL);
	tg_buf_reader(&in, data, size);
	while (records++ < MAX_RECORDS && tg_buf_get_u16(&in, &len) == 0) {
		fx->clock += 4000;
		if (len == REC_MGM_AUTH) {
			mgm_auth(t, fx);
			continue;
		}
		if (len == REC_RESET) {
			tg_tok_reset(t);
			continue;
		}
		if (len == REC_PERSIST) {
			fx->persist_fail = !fx->persist_fail;
			continue;
		}
		if (len > APDU_MAX)
			break;
		if (tg_buf_get_sub(&in, len, &rec) != 0)
			break;
		if (slow_command(tg_buf_cur(&rec), len))
			continue;
		/* an exact-size copy, so ASan sees any over-read */
		check((cmd = malloc(len > 0 ? len : 1)) != NULL);
		if (len > 0)
			memcpy(cmd, tg_buf_cur(&rec), len);
		(void)xfer(t, fx, cmd, len, rsp, &n);
		free(cmd);
	}
	/* whatever state the commands left must save and load again */
	if (fx->persisted) {
		check(tg_tok_save(t, &blob, &blen) == 0);
		tg_tok_free(t);
		t = NULL;
		check(tg_tok_load(blob, blen, NULL, &t) == 0);
		tg_freezero(blob, blen);
	}
	tg_tok_free(t);
	return 0;
}
