/*
 * test_tok_util.h — shared helpers of the token core's unit tests: a
 * manufacturer CA made with OpenSSL, a token with recording host callbacks,
 * and an APDU helper that copies each command into an exact-size heap
 * buffer (so ASan sees over-reads) and follows 61xx with GET RESPONSE.
 */
#ifndef TEST_TOK_UTIL_H
#define TEST_TOK_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tg_tok.h"

/* What the host callbacks saw and how they answer. */
struct tt_host {
	int persist_calls;
	int persist_fail;   /* 1: persist returns an error */
	int last_pin_tries; /* PIN tries in the last persisted blob */
	int last_puk_tries;
	int pin_seq[32]; /* PIN tries in each persisted blob, in order */
	int npin_seq;
	uint64_t last_ops;
	uint8_t *last_blob;
	size_t last_len;
	int touch_calls;
	int touch_answer; /* what touch returns */
	uint64_t now;     /* what now_ms returns */
};

struct tt_mfr {
	X509 *cert;
	EVP_PKEY *key;
	uint8_t *cert_der, *key_der;
	size_t cert_len, key_len;
};

/* A fresh manufacturer CA (EC P-256, self-signed). */
void tt_mfr_make(struct tt_mfr *m);
void tt_mfr_free(struct tt_mfr *m);

/* tg_tok_host wired to h. */
struct tg_tok_host tt_host_make(struct tt_host *h);
void tt_host_free(struct tt_host *h);

/* A factory token (serial 1234567) with default credentials. */
struct tg_tok *tt_token_new(const struct tt_mfr *m, struct tt_host *h);

/* cmocka group setup and teardown: a manufacturer CA (tt_mfr_make) as the
 * group state, which cmocka gives every test (and its setup) as *state.
 * Use: cmocka_run_group_tests(tests, tt_group_setup, tt_group_teardown). */
int tt_group_setup(void **state);
int tt_group_teardown(void **state);

/* A test's token: the group's manufacturer CA, the host callbacks' record,
 * a factory token made with them. */
struct tt_fx {
	const struct tt_mfr *mfr;
	struct tt_host h;
	struct tg_tok *t;
};

/* cmocka test setups (with tt_group_setup): turn *state (the group's
 * struct tt_mfr) into a fresh struct tt_fx with a factory token.
 * tt_fx_setup_selected also SELECTs the PIV application; tt_fx_setup_admin
 * further authenticates with the default management key. */
int tt_fx_setup(void **state);
int tt_fx_setup_selected(void **state);
int tt_fx_setup_admin(void **state);
/* cmocka test teardown: frees the struct tt_fx in *state. */
int tt_fx_teardown(void **state);

/* A negative (or positive) case: a command as hex and the SW it must get. */
struct tt_sw_case {
	const char *name;
	const char *hex;
	uint16_t sw;
};

/* Sends every case's command (tt_hex) and fails naming the first case whose
 * SW differs. */
void tt_run_sw_cases(struct tg_tok *t, const struct tt_sw_case *c, size_t n);
/* tt_run_sw_cases over a whole array. */
#define TT_RUN_SW_CASES(t, cases) tt_run_sw_cases((t), (cases), sizeof(cases) / sizeof((cases)[0]))

/* Sends one APDU (exact-size heap copy); returns SW, data into out (cap
 * outcap, may be NULL), *outlen its length. No GET RESPONSE following. */
uint16_t tt_apdu1(struct tg_tok *t, const uint8_t *cmd, size_t n, uint8_t *out, size_t outcap,
                  size_t *outlen);
/* Like tt_apdu1 but follows 61xx with GET RESPONSE and returns the final SW. */
uint16_t tt_apdu(struct tg_tok *t, const uint8_t *cmd, size_t n, uint8_t *out, size_t outcap,
                 size_t *outlen);
/* Same with the command as hex ("00A40400 05 A000000308", spaces allowed). */
uint16_t tt_hex(struct tg_tok *t, const char *hex, uint8_t *out, size_t outcap, size_t *outlen);
/* Hex to bytes; returns the count. */
size_t tt_unhex(const char *hex, uint8_t *out, size_t cap);
/* Sends a command with data, chained in parts of `part` bytes when longer. */
uint16_t tt_send(struct tg_tok *t, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
                 size_t n, uint8_t *out, size_t outcap, size_t *outlen);

/* SELECT, VERIFY (default PIN), management key auth (default 3DES key). */
void tt_select(struct tg_tok *t);
uint16_t tt_verify(struct tg_tok *t, const char *pin);
uint16_t tt_mgm_auth(struct tg_tok *t, uint8_t alg, const uint8_t *key, size_t keylen);
/* One block of bs bytes through management key algorithm alg (OpenSSL ECB,
 * no padding) with key: enc 1 encrypts, 0 decrypts. */
void tt_mgm_block(uint8_t alg, const uint8_t *key, int enc, const uint8_t *in, uint8_t *out,
                  size_t bs);
/* GENERATE into slot with policies (0 = default); returns the public key. */
EVP_PKEY *tt_generate(struct tg_tok *t, uint8_t slot, uint8_t alg, uint8_t pin, uint8_t touch);
/* Public key from a 7F49 template body (81/82 or 86), for an alg. */
EVP_PKEY *tt_pubkey_parse(const uint8_t *p, size_t n, uint8_t alg);
/* GENERAL AUTHENTICATE sign over input; signature into sig. */
uint16_t tt_sign(struct tg_tok *t, uint8_t alg, uint8_t slot, const uint8_t *in, size_t n,
                 uint8_t *sig, size_t *siglen);

extern const uint8_t tt_mgm_default[24];

/* When set, every raw response (data and SW) tt_apdu1 receives is appended
 * here (test_tok_noleak). */
struct tt_log {
	uint8_t *p;
	size_t len, cap;
};
extern struct tt_log *tt_rsp_log;

#endif
