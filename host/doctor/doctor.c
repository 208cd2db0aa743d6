/*
 * doctor.c — `tokengate doctor`: what this machine sees of tokens, readers
 * and PKCS#11 modules, and one line per problem with its fix.
 *
 * The probes (usb.c, pcsc.c, piv.c, p11.c) fill one report (report.h); this file
 * adds the checks that need more than one probe and renders the report as
 * text or JSON (render.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <PCSC/pcsclite.h>
#include <p11-kit/pkcs11.h>

#include "p11.h"
#include "pcsc.h"
#include "piv.h"
#include "render.h"
#include "report.h"
#include "tg_cmd.h"
#include "usb.h"

#define CMD_NAME "doctor"
/* Safety net: every probe is bounded on its own, but a PKCS#11 module or a
 * pcscd that stops answering mid-call must not hang the user's terminal. */
#define DOCTOR_DEADLINE_S 60
/* --strict: the checks ran and found at least one problem. */
#define DOCTOR_EXIT_PROBLEMS 3
/* The readers vpcd provides have this prefix; they have no USB device. */
#define VIRTUAL_READER_TAG "Virtual"

static const char usage_text[] =
    "usage: tokengate doctor [--json] [--strict] [--help]\n"
    "\n"
    "Shows what this machine sees of security tokens, and for each problem\n"
    "found one line with its fix:\n"
    "  USB      tokens and smart card readers seen through libusb (CCID\n"
    "           interfaces, known token vendors, product names)\n"
    "  PC/SC    whether pcscd answers (socket $PCSCLITE_CSOCK_NAME, default\n"
    "           " TG_DOCTOR_PCSC_SOCKET "), its readers, cards and ATRs\n"
    "  PIV      whether a PIV card still has its default PIN, PUK or\n"
    "           management key (PIV GET METADATA: no PIN is tried, no retry\n"
    "           counter changes)\n"
    "  PKCS#11  modules registered with p11-kit, their slots and tokens\n"
    "           (label, manufacturer, model, serial, PIN state)\n"
    "It needs no token, never waits for a missing pcscd and gives up on one\n"
    "that does not answer within 5 s.\n"
    "\n"
    "options:\n"
    "  --json      print one JSON object with the members usb, pcsc, pkcs11\n"
    "              and problems (an array of {\"what\", \"fix\"})\n"
    "  --strict    exit 3 when any problem is found (for scripts and CI)\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit codes: 0 the checks ran (without --strict, problems found are\n"
    "reported in the output, not in the exit code), 1 doctor could not run\n"
    "(out of memory, output not writable, or a module or pcscd hung for\n"
    "60 s), 2 bad command line, 3 with --strict: the checks ran and found\n"
    "at least one problem.\n";

static void
deadline_hit(int sig)
{
	static const char msg[] =
	    "tokengate doctor: gave up after 60 s: pcscd or a PKCS#11 module does not "
	    "answer; restart pcscd ('systemctl restart pcscd') and unplug and replug the "
	    "token\n";
	ssize_t w;

	(void)sig;
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(TG_EXIT_FAIL);
}

/* 1 if some module shows a token in a slot named after reader `name`
 * (OpenSC names its slots after the PC/SC readers, cut at 64 bytes). */
static int
reader_has_p11_token(const struct tg_doctor_report *r, const char *name)
{
	const struct tg_doctor_module *m;
	const struct tg_doctor_token *t;
	size_t i, j, dl;
	int found = 0;

	for (i = 0; i < r->pkcs11.n && !found; i++) {
		m = &r->pkcs11.modules[i];
		for (j = 0; j < m->n && !found; j++) {
			t = &m->slots[j];
			if (!t->present || t->slot_desc == NULL || (dl = strlen(t->slot_desc)) == 0)
				continue;
			found = strncmp(t->slot_desc, name, dl) == 0;
		}
	}
	return found;
}

/* 1 if anything that can hold a key was found. */
static int
anything_found(const struct tg_doctor_report *r)
{
	size_t i, j;
	int found = r->usb.n > 0;

	for (i = 0; i < r->pcsc.n && !found; i++)
		found = r->pcsc.readers[i].card_present;
	for (i = 0; i < r->pkcs11.n && !found; i++) {
		for (j = 0; j < r->pkcs11.modules[i].n && !found; j++)
			found = r->pkcs11.modules[i].slots[j].present &&
			        (r->pkcs11.modules[i].slots[j].flags & CKF_TOKEN_INITIALIZED);
	}
	return found;
}

/* The checks that look at more than one probe's findings. */
static int
cross_checks(struct tg_doctor_report *r)
{
	const struct tg_doctor_reader *rd;
	size_t i, ccid = 0, physical = 0;
	int rc = 0;

	for (i = 0; i < r->usb.n; i++)
		ccid += r->usb.devs[i].ccid ? 1 : 0;
	for (i = 0; i < r->pcsc.n; i++)
		physical += strstr(r->pcsc.readers[i].name, VIRTUAL_READER_TAG) == NULL ? 1 : 0;
	if (ccid > 0 && r->pcsc.reachable && r->pcsc.error == NULL && physical == 0)
		rc = tg_doctor_problem_add(
		    r,
		    "install pcscd's CCID driver ('apt install pcscd libccid') "
		    "and restart pcscd ('systemctl restart pcscd')",
		    "USB CCID device found but no PC/SC reader");
	for (i = 0; i < r->pcsc.n && rc == 0; i++) {
		rd = &r->pcsc.readers[i];
		if (!rd->card_present || (rd->state & SCARD_STATE_MUTE) ||
		    reader_has_p11_token(r, rd->name))
			continue;
		rc = tg_doctor_problem_add(
		    r,
		    "install OpenSC's module ('apt install opensc-pkcs11', "
		    "p11-kit registers it); if it is installed, OpenSC does not "
		    "know this card (check 'opensc-tool -n')",
		    "the card in reader '%s' is not seen by any PKCS#11 module", rd->name);
	}
	if (rc == 0 && r->n_problems == 0 && !anything_found(r))
		rc = tg_doctor_problem_add(
		    r,
		    "plug in the token (or insert the card); for a software "
		    "token create one with 'softhsm2-util --init-token --free "
		    "--label NAME'",
		    "no token found: no USB token, no card in a reader, no "
		    "PKCS#11 token");
	return rc;
}

enum { O_JSON = 1, O_STRICT };

int
tg_cmd_doctor(int argc, char **argv)
{
	static const struct tg_cli_opt table[] = {
	    {"json", TG_CLI_ARG_NONE, O_JSON},
	    {"strict", TG_CLI_ARG_NONE, O_STRICT},
	    {NULL, 0, 0},
	};
	struct tg_doctor_report *r = NULL;
	struct tg_cli_getopt g;
	struct tg_error err;
	const char *v;
	int c = TG_CLI_BAD, json = 0, strict = 0, code, rc = TG_EXIT_USAGE;

	tg_error_clear(&err);
	if (tg_cli_getopt_init(&g, TG_CMD_PROG, CMD_NAME, table, NULL, 0, argc, argv) != 0) {
		rc = tg_cmd_fail(CMD_NAME, TG_ERR_INTERNAL, NULL);
		goto out;
	}
	while ((c = tg_cli_next(&g, &v)) > 0) {
		json |= c == O_JSON;
		strict |= c == O_STRICT;
	}
	if (c == TG_CLI_HELP) {
		fputs(usage_text, stdout);
		rc = TG_EXIT_OK;
	}
	if (c != TG_CLI_END)
		goto out;
	rc = TG_EXIT_FAIL;
	signal(SIGALRM, deadline_hit);
	alarm(DOCTOR_DEADLINE_S);
	if ((code = tg_doctor_report_new(&r)) != 0 || (code = tg_doctor_usb_probe(r)) != 0 ||
	    (code = tg_doctor_pcsc_probe(r)) != 0 || (code = tg_doctor_piv_probe(r)) != 0 ||
	    (code = tg_doctor_p11_probe(r)) != 0 || (code = cross_checks(r)) != 0) {
		rc = tg_cmd_fail(CMD_NAME, code, NULL);
		goto out;
	}
	alarm(0);
	errno = 0;
	code = json ? tg_doctor_json_render(r, stdout) : tg_doctor_text_render(r, stdout);
	if (code == TG_ERR_IO) {
		tg_error_set(&err, code,
		             "cannot write the report to standard output (%s): check the "
		             "file or pipe it goes to",
		             errno != 0 ? strerror(errno) : "write error");
		rc = tg_cmd_fail(CMD_NAME, code, &err);
		goto out;
	}
	if (code != 0) {
		rc = tg_cmd_fail(CMD_NAME, code, NULL);
		goto out;
	}
	rc = strict && r->n_problems > 0 ? DOCTOR_EXIT_PROBLEMS : TG_EXIT_OK;
out:
	alarm(0);
	tg_doctor_report_free(r);
	return rc;
}
