/*
 * test_enroll_pivc_sim.c — the PIV client of `tokengate enroll`
 * (host/enroll/piv_client.c) against the simulated token behind a private
 * pcscd (tests/lib/with-pcscd.sh --sim): the refusals the card gives
 * (wrong PIN with the tries left, an empty slot, no management-key
 * authentication, a wrong management key, signing without the PIN), the
 * ones the client gives before sending anything (PIN length, key length,
 * unknown key algorithm), a reader without a card, and the successful
 * generate / attest / sign / store round trip they guard. Registered twice:
 * with the factory 3DES management key, and (test_enroll_pivc_sim_aes) with
 * an AES-192 one, whose GENERAL AUTHENTICATE exchange the client builds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <ykpiv/ykpiv.h>

#include "tg_err.h"
#include "tg_pivc.h"
#include "tg_test.h"

#define SLOT_EMPTY 0x9d
#define SLOT_KEY   0x9c

/* The factory management key of PIV tokens (YubiKey, tokengate-sim). */
static const uint8_t mgm_default[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
                                        5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

static struct tg_pivc *
open_card(void)
{
	struct tg_pivc *p = NULL;
	struct tg_error err;

	tg_error_clear(&err);
	if (tg_pivc_open(tg_test_require_env("TG_READER"), &p, &err) != 0)
		fail_msg("tg_pivc_open: %s", err.msg);
	return p;
}

static void
expect_err(int got, int want, const struct tg_error *err, const char *text)
{
	if (got != want || strstr(err->msg, text) == NULL)
		fail_msg("got %d \"%s\", want %d with \"%s\"", got, err->msg, want, text);
}

/* A reader of the private pcscd that has no card. */
static void
test_open_no_card(void **state)
{
	const char *reader = tg_test_require_env("TG_READER");
	struct tg_pivc *p = NULL;
	struct tg_error err;
	char other[256], want[512];
	size_t n = strlen(reader);
	int r;

	(void)state;
	/* vpcd's readers differ in the last digit: "Virtual PCD 00 00" / "01" */
	snprintf(other, sizeof(other), "%s", reader);
	if (n == 0 || n >= sizeof(other))
		fail_msg("odd reader name '%s'", reader);
	other[n - 1] = other[n - 1] == '0' ? '1' : '0';
	tg_error_clear(&err);
	r = tg_pivc_open(other, &p, &err);
	if (r == TG_ERR_NOT_FOUND && strstr(err.msg, "no reader matches") != NULL) {
		print_message("pcscd has one reader only: %s\n", err.msg);
		skip();
	}
	snprintf(want, sizeof(want),
	         "cannot connect to the card in reader '%s': no token in the reader: insert it "
	         "and try again",
	         other);
	expect_err(r, TG_ERR_CARD_REMOVED, &err, want);
	assert_null(p);
	/* a name no reader has */
	tg_error_clear(&err);
	r = tg_pivc_open("No Such Reader", &p, &err);
	expect_err(r, TG_ERR_NOT_FOUND, &err,
	           "no reader matches 'No Such Reader'; readers present: ");
	assert_null(p);
}

static void
test_pin(void **state)
{
	struct tg_pivc *p = open_card();
	struct tg_error err;
	char want[512];
	int r;

	(void)state;
	assert_non_null(strstr(tg_pivc_reader(p), "Virtual PCD"));
	tg_error_clear(&err);
	expect_err(tg_pivc_verify_pin(p, "123", &err), TG_ERR_INVALID_ARG, &err,
	           "a PIV PIN has 6 to 8 characters, the one given has 3");
	expect_err(tg_pivc_verify_pin(p, "123456789", &err), TG_ERR_INVALID_ARG, &err,
	           "the one given has 9");
	tg_error_clear(&err);
	r = tg_pivc_verify_pin(p, "654321", &err);
	snprintf(want, sizeof(want),
	         "wrong PIN for the token in '%s': 2 tries left before the PIN blocks (63C2)",
	         tg_pivc_reader(p));
	expect_err(r, TG_ERR_PIN_INCORRECT, &err, want);
	/* the right PIN resets the count */
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_verify_pin(p, "123456", &err), 0);
	tg_pivc_close(p);
}

static void
test_empty_slot(void **state)
{
	struct tg_pivc *p = open_card();
	struct tg_pivc_meta m;
	struct tg_error err;
	X509 *x = (X509 *)&m; /* must be overwritten */
	char want[512];
	int r;

	(void)state;
	memset(&m, 0, sizeof(m));
	tg_error_clear(&err);
	r = tg_pivc_metadata(p, SLOT_EMPTY, &m, &err);
	snprintf(want, sizeof(want),
	         "GET METADATA on the token in '%s': slot 9d holds no key (6A88)",
	         tg_pivc_reader(p));
	expect_err(r, TG_ERR_NOT_FOUND, &err, want);
	assert_null(m.pub);
	/* no certificate there: 0 and NULL */
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_cert_get(p, SLOT_EMPTY, &x, &err), 0);
	assert_null(x);
	/* nothing to attest */
	tg_error_clear(&err);
	r = tg_pivc_attest(p, SLOT_EMPTY, &x, &err);
	assert_true(r < 0);
	assert_null(x);
	snprintf(want, sizeof(want),
	         "attestation on the token in '%s': slot 9d holds no key (6A88)",
	         tg_pivc_reader(p));
	expect_err(r, TG_ERR_NOT_FOUND, &err, want);
	tg_pivc_close(p);
}

/* The management key: the client's own refusals, then the card's. */
static void
test_mgm(void **state)
{
	struct tg_pivc *p = open_card();
	struct tg_error err;
	EVP_PKEY *pub = NULL;
	uint8_t alg = 0, wrong[24];
	char want[512];
	int r;

	(void)state;
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_mgm_alg(p, &alg, &err), 0);
	/* 3DES unless the simulator was made with an AES-192 key
	 * (test_enroll_pivc_sim_aes), whose exchange the client builds itself */
	{
		const char *init = getenv("TG_SIM_INIT_ARGS");

		assert_int_equal(alg, init != NULL && strstr(init, "aes192") != NULL ? 0x0A : 0x03);
	}
	expect_err(tg_pivc_mgm_auth(p, 0x42, mgm_default, sizeof(mgm_default), &err),
	           TG_ERR_UNSUPPORTED, &err, "management key algorithm 42 is not supported");
	expect_err(tg_pivc_mgm_auth(p, alg, mgm_default, 5, &err), TG_ERR_INVALID_ARG, &err,
	           "but the key given has 5 bytes; give --mgm-key with 48 hex digits");
	/* GENERATE before authenticating */
	tg_error_clear(&err);
	r = tg_pivc_generate(p, SLOT_KEY, YKPIV_ALGO_ECCP256, 0, 0, &pub, &err);
	snprintf(want, sizeof(want),
	         "the token in '%s' refused key generation (6982 security status not satisfied)",
	         tg_pivc_reader(p));
	expect_err(r, TG_ERR_AUTH_REQUIRED, &err, want);
	assert_null(pub);
	/* a wrong key of the right length */
	memcpy(wrong, mgm_default, sizeof(wrong));
	wrong[0] ^= 0xff;
	tg_error_clear(&err);
	r = tg_pivc_mgm_auth(p, alg, wrong, sizeof(wrong), &err);
	snprintf(want, sizeof(want),
	         "management key authentication with the token in '%s' failed (6982): the key "
	         "given (--mgm-key or TOKENGATE_MGM_KEY) is not this token's management key",
	         tg_pivc_reader(p));
	expect_err(r, TG_ERR_AUTH_REQUIRED, &err, want);
	tg_pivc_close(p);
}

/* GENERATE, GET METADATA, ATTEST, sign (refused without the PIN, then
 * verified), store and read back the certificate. */
static void
test_round_trip(void **state)
{
	struct tg_pivc *p = open_card();
	struct tg_pivc_meta m;
	struct tg_error err;
	EVP_PKEY *pub = NULL;
	X509 *att = NULL, *back = NULL;
	uint8_t alg = 0, dgst[32], *sig = NULL;
	size_t siglen = 0;
	char want[512];
	int r;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(dgst, 0x5a, sizeof(dgst));
	tg_error_clear(&err);
	assert_int_equal(tg_pivc_mgm_alg(p, &alg, &err), 0);
	assert_int_equal(tg_pivc_mgm_auth(p, alg, mgm_default, sizeof(mgm_default), &err), 0);
	if (tg_pivc_generate(p, SLOT_KEY, YKPIV_ALGO_ECCP256, YKPIV_PINPOLICY_ONCE,
	                     YKPIV_TOUCHPOLICY_NEVER, &pub, &err) != 0)
		fail_msg("generate: %s", err.msg);
	assert_true(EVP_PKEY_is_a(pub, "EC"));
	assert_int_equal(tg_pivc_metadata(p, SLOT_KEY, &m, &err), 0);
	assert_int_equal(m.alg, YKPIV_ALGO_ECCP256);
	assert_int_equal(m.origin, YKPIV_METADATA_ORIGIN_GENERATED);
	assert_int_equal(EVP_PKEY_eq(m.pub, pub), 1);
	if (tg_pivc_attest(p, SLOT_KEY, &att, &err) != 0)
		fail_msg("attest: %s", err.msg);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(att), pub), 1);
	/* signing needs the PIN */
	tg_error_clear(&err);
	r = tg_pivc_sign(p, SLOT_KEY, YKPIV_ALGO_ECCP256, dgst, sizeof(dgst), &sig, &siglen, &err);
	snprintf(want, sizeof(want),
	         "the token in '%s' refused to sign with slot 9c (6982): the PIN was not "
	         "verified",
	         tg_pivc_reader(p));
	expect_err(r, TG_ERR_AUTH_REQUIRED, &err, want);
	assert_null(sig);
	assert_int_equal(tg_pivc_verify_pin(p, "123456", &err), 0);
	if (tg_pivc_sign(p, SLOT_KEY, YKPIV_ALGO_ECCP256, dgst, sizeof(dgst), &sig, &siglen,
	                 &err) != 0)
		fail_msg("sign: %s", err.msg);
	{
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);

		assert_non_null(c);
		assert_int_equal(EVP_PKEY_verify_init(c), 1);
		assert_int_equal(EVP_PKEY_verify(c, sig, siglen, dgst, sizeof(dgst)), 1);
		EVP_PKEY_CTX_free(c);
	}
	/* the attestation certificate stored as the slot's certificate */
	assert_int_equal(tg_pivc_cert_put(p, SLOT_KEY, att, &err), 0);
	assert_int_equal(tg_pivc_cert_get(p, SLOT_KEY, &back, &err), 0);
	assert_non_null(back);
	assert_int_equal(X509_cmp(back, att), 0);
	free(sig);
	X509_free(back);
	X509_free(att);
	EVP_PKEY_free(pub);
	tg_pivc_meta_clear(&m);
	tg_pivc_close(p);
}

/* The token goes away between two commands (the simulator stops): the
 * next command fails naming the operation, with TG_ERR_CARD_REMOVED (or
 * TG_ERR_STATUS_WORD when libykpiv reports the removal as its generic
 * error). Runs last: the token is gone afterwards. */
static void
test_card_removed(void **state)
{
	struct tg_pivc *p = open_card();
	struct tg_pivc_meta m;
	struct tg_error err;
	struct timespec ts = {0, 100 * 1000000L};
	char want[512];
	int i, r = 0;

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(kill((pid_t)atol(tg_test_require_env("TG_SIM_PID")), SIGTERM), 0);
	for (i = 0; i < 50; i++) {
		tg_error_clear(&err);
		if ((r = tg_pivc_metadata(p, SLOT_KEY, &m, &err)) != 0)
			break;
		tg_pivc_meta_clear(&m);
		nanosleep(&ts, NULL);
	}
	/* libykpiv sees the removal as a PC/SC error, or (when the card
	 * goes while a command is under way) as its generic error */
	if (r == TG_ERR_STATUS_WORD) {
		snprintf(want, sizeof(want),
		         "the token in '%s' refused GET METADATA (libykpiv: ", tg_pivc_reader(p));
		expect_err(r, TG_ERR_STATUS_WORD, &err, want);
	} else {
		snprintf(want, sizeof(want),
		         "the connection to the token in '%s' failed during GET METADATA (PC/SC "
		         "error): the token was removed or another program reset it; insert it "
		         "and try again",
		         tg_pivc_reader(p));
		expect_err(r, TG_ERR_CARD_REMOVED, &err, want);
	}
	assert_null(m.pub);
	tg_pivc_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_no_card), cmocka_unit_test(test_pin),
	    cmocka_unit_test(test_empty_slot),   cmocka_unit_test(test_mgm),
	    cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_card_removed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
