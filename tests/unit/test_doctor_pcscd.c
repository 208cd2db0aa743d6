/*
 * test_doctor_pcscd.c — the PC/SC and PIV probes of `tokengate doctor`
 * (host/doctor/pcsc.c, piv.c) on a private pcscd with the simulated token
 * (tests/lib/with-pcscd.sh --sim): a card another program holds
 * exclusively (reported with the fix, the PIV probe leaves it alone), a
 * card taken exclusively between the two probes (PIV state unknown, no
 * PIV problem), the free card with its factory PIN, PUK and management
 * key, and a report without pcscd (the PIV probe does nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <PCSC/winscard.h>

#include "pcsc.h"
#include "piv.h"
#include "render.h"
#include "report.h"
#include "tg_err.h"
#include "tg_test.h"

struct hold {
	SCARDCONTEXT ctx;
	SCARDHANDLE h;
};

/* Another program takes the card in reader exclusively. */
static void
hold_begin(struct hold *x, const char *reader)
{
	DWORD proto = 0;

	assert_int_equal(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &x->ctx),
	                 SCARD_S_SUCCESS);
	assert_int_equal(SCardConnect(x->ctx, reader, SCARD_SHARE_EXCLUSIVE,
	                              SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &x->h, &proto),
	                 SCARD_S_SUCCESS);
}

static void
hold_end(struct hold *x)
{
	assert_int_equal(SCardDisconnect(x->h, SCARD_LEAVE_CARD), SCARD_S_SUCCESS);
	SCardReleaseContext(x->ctx);
}

static struct tg_doctor_reader *
reader_find(struct tg_doctor_report *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->pcsc.n; i++)
		if (strcmp(r->pcsc.readers[i].name, name) == 0)
			return &r->pcsc.readers[i];
	fail_msg("reader '%s' not in the report", name);
	return NULL;
}

static long
problem_find(const struct tg_doctor_report *r, const char *what)
{
	size_t i;

	for (i = 0; i < r->n_problems; i++)
		if (strcmp(r->problems[i].what, what) == 0)
			return (long)i;
	return -1;
}

static void
test_exclusive(void **state)
{
	const char *reader = tg_test_require_env("TG_READER");
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_reader *rd;
	struct hold x;
	char what[512];
	long k;

	(void)state;
	hold_begin(&x, reader);
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_pcsc_probe(r), 0);
	assert_true(r->pcsc.reachable);
	assert_null(r->pcsc.error);
	rd = reader_find(r, reader);
	assert_true(rd->card_present);
	assert_true(rd->state & SCARD_STATE_EXCLUSIVE);
	assert_true(rd->atr_len > 0);
	snprintf(what, sizeof(what), "reader '%s' is held exclusively by another program", reader);
	assert_true((k = problem_find(r, what)) >= 0);
	assert_string_equal(
	    r->problems[k].fix,
	    "stop that program (often GnuPG's scdaemon: 'gpgconf --kill scdaemon')");
	/* the PIV probe does not touch a card in exclusive use */
	assert_int_equal(tg_doctor_piv_probe(r), 0);
	assert_false(rd->piv);
	assert_int_equal(rd->pin_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	assert_int_equal(rd->puk_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	assert_int_equal(rd->mgm_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	hold_end(&x);
	tg_doctor_report_free(r);
}

/* The card is taken exclusively after the PC/SC probe saw it free: the
 * PIV probe cannot connect, says nothing about PINs and keeps going. */
static void
test_taken_between_probes(void **state)
{
	const char *reader = tg_test_require_env("TG_READER");
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_reader *rd;
	struct hold x;
	size_t before;

	(void)state;
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_pcsc_probe(r), 0);
	rd = reader_find(r, reader);
	assert_true(rd->card_present);
	assert_false(rd->state & SCARD_STATE_EXCLUSIVE);
	before = r->n_problems;
	hold_begin(&x, reader);
	assert_int_equal(tg_doctor_piv_probe(r), 0);
	hold_end(&x);
	assert_false(rd->piv);
	assert_int_equal(rd->pin_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	assert_int_equal(r->n_problems, before);
	tg_doctor_report_free(r);
}

/* The free simulated card still has its factory PIN, PUK and management
 * key: three problems, each with the yubico-piv-tool command. */
static void
test_free_card_defaults(void **state)
{
	const char *reader = tg_test_require_env("TG_READER");
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_reader *rd;
	char what[512], fix[1024];
	long k;

	(void)state;
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_pcsc_probe(r), 0);
	assert_int_equal(tg_doctor_piv_probe(r), 0);
	rd = reader_find(r, reader);
	assert_true(rd->piv);
	assert_int_equal(rd->pin_default, TG_DOCTOR_DEFAULT_YES);
	assert_int_equal(rd->puk_default, TG_DOCTOR_DEFAULT_YES);
	assert_int_equal(rd->mgm_default, TG_DOCTOR_DEFAULT_YES);
	snprintf(what, sizeof(what),
	         "the PIV token in reader '%s' still has the default PIN (123456)", reader);
	assert_true((k = problem_find(r, what)) >= 0);
	snprintf(fix, sizeof(fix),
	         "change it: yubico-piv-tool -r '%s' -a change-pin (it asks for the current and "
	         "the new PIN)",
	         reader);
	assert_string_equal(r->problems[k].fix, fix);
	snprintf(what, sizeof(what),
	         "the PIV token in reader '%s' still has the default management key "
	         "(010203...0708)",
	         reader);
	assert_true((k = problem_find(r, what)) >= 0);
	tg_doctor_report_free(r);
}

/* Without pcscd the PIV probe only marks every reader "unknown". */
static void
test_piv_without_pcscd(void **state)
{
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_reader *rd = NULL;

	(void)state;
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(
	    tg_doctor_array_add((void **)&r->pcsc.readers, &r->pcsc.n, sizeof(*rd), (void **)&rd),
	    0);
	assert_non_null(rd->name = strdup("Reader X"));
	rd->card_present = 1;
	rd->pin_default = TG_DOCTOR_DEFAULT_YES;
	r->pcsc.reachable = 0;
	assert_int_equal(tg_doctor_piv_probe(r), 0);
	assert_int_equal(rd->pin_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	assert_int_equal(rd->puk_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	assert_false(rd->piv);
	assert_int_equal(r->n_problems, 0);
	/* reachable but the listing failed: the same */
	r->pcsc.reachable = 1;
	assert_non_null(r->pcsc.error = strdup("listing failed"));
	rd->pin_default = TG_DOCTOR_DEFAULT_YES;
	assert_int_equal(tg_doctor_piv_probe(r), 0);
	assert_int_equal(rd->pin_default, TG_DOCTOR_DEFAULT_UNKNOWN);
	assert_int_equal(r->n_problems, 0);
	tg_doctor_report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exclusive),
	    cmocka_unit_test(test_taken_between_probes),
	    cmocka_unit_test(test_free_card_defaults),
	    cmocka_unit_test(test_piv_without_pcscd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
