/* pcsc.c — pcscd, readers and cards through pcsc-lite (pcsc.h). */
#include "pcsc.h"

#include <PCSC/winscard.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tg_buf.h"
#include "tg_err.h"

/* SCardListReaders may race with a reader being plugged in. */
#define PCSC_LIST_ATTEMPTS 3
#define PCSCD_NAME         "pcscd"
/* How long a pcscd that takes connections may take to answer. */
#define PCSC_ANSWER_WAIT_MS 5000
#define PCSC_POLL_MS        20
/* A path that cannot exist (/dev/null is no directory): set as the client
 * socket once pcscd is known not to answer, so later PC/SC users in this
 * process (OpenSC under PKCS#11) fail at once instead of hanging. */
#define PCSC_DEAD_SOCKET "/dev/null/tokengate-doctor-pcscd-does-not-answer"

/* 1 if an executable `name` is on PATH or in the sbin directories where
 * Debian installs daemons (often not on a user's PATH). */
static int
prog_exists(const char *name)
{
	static const char *const sbin[] = {"/usr/sbin", "/usr/local/sbin", "/sbin"};
	const char *path = getenv("PATH");
	char dir[512], file[768];
	size_t i, k;
	int found = 0;

	for (i = 0; !found && i < sizeof(sbin) / sizeof(sbin[0]); i++) {
		snprintf(file, sizeof(file), "%s/%s", sbin[i], name);
		found = access(file, X_OK) == 0;
	}
	while (!found && path != NULL && *path != '\0') {
		k = strcspn(path, ":");
		if (k > 0 && k < sizeof(dir)) {
			memcpy(dir, path, k);
			dir[k] = '\0';
			snprintf(file, sizeof(file), "%s/%s", dir, name);
			found = access(file, X_OK) == 0;
		}
		path += k;
		if (*path == ':')
			path++;
	}
	return found;
}

static int
pcsc_unreachable(struct tg_doctor_report *r, LONG rv)
{
	struct tg_doctor_pcsc *p = &r->pcsc;
	int rc = TG_ERR_ALLOC;

	p->reachable = 0;
	if ((p->error = tg_doctor_str_printf("%s (0x%08lX)", pcsc_stringify_error(rv),
	                                     (unsigned long)rv)) == NULL)
		goto out;
	if (rv != SCARD_E_NO_SERVICE)
		rc = tg_doctor_problem_add(
		    r, "restart it with 'systemctl restart pcscd' (or 'pcscd -f')",
		    "PC/SC does not work: %s", p->error);
	else if (!prog_exists(PCSCD_NAME))
		rc = tg_doctor_problem_add(r, "install it with 'apt install pcscd libccid'",
		                           "pcscd is not installed (no smart card service)");
	else if (!p->socket_exists)
		rc = tg_doctor_problem_add(
		    r, "start it with 'systemctl start pcscd.socket' (or 'pcscd -f')",
		    "pcscd is not running (no socket at %s)", p->socket);
	else
		rc = tg_doctor_problem_add(
		    r, "restart it with 'systemctl restart pcscd' (or 'pcscd -f')",
		    "pcscd is not running: nothing answers on %s", p->socket);
out:
	return rc;
}

/*
 * 1 if pcscd answers SCardEstablishContext within PCSC_ANSWER_WAIT_MS (or
 * the check cannot run), 0 if not. pcsc-lite's client waits for an answer
 * without a timeout, so the call runs in a child process that is killed
 * when it takes too long; this process has not called pcsc-lite yet.
 */
static int
pcsc_answers(void)
{
	struct timespec ts = {0, PCSC_POLL_MS * 1000000L};
	SCARDCONTEXT ctx;
	pid_t pid, w;
	int status, waited = 0, answered = 1;

	if ((pid = fork()) < 0)
		goto out;
	if (pid == 0) {
		if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) == SCARD_S_SUCCESS)
			SCardReleaseContext(ctx);
		_exit(0);
	}
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (waited >= PCSC_ANSWER_WAIT_MS) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				continue;
			answered = 0;
			break;
		}
		nanosleep(&ts, NULL);
		waited += PCSC_POLL_MS;
	}
out:
	return answered;
}

/* pcscd takes connections but does not answer. */
static int
pcsc_hung(struct tg_doctor_report *r)
{
	struct tg_doctor_pcsc *p = &r->pcsc;
	int rc = TG_ERR_ALLOC;

	p->reachable = 0;
	if ((p->error = tg_doctor_str_printf("pcscd takes connections on %s but does not answer "
	                                     "within %d s",
	                                     p->socket, PCSC_ANSWER_WAIT_MS / 1000)) == NULL)
		goto out;
	if (setenv(TG_DOCTOR_PCSC_SOCKET_ENV, PCSC_DEAD_SOCKET, 1) != 0)
		goto out;
	rc = tg_doctor_problem_add(r,
	                           "restart it ('systemctl restart pcscd', or stop it and run "
	                           "'pcscd -f'); unplug readers and tokens first if a wedged "
	                           "reader driver is the cause",
	                           "pcscd does not answer on %s", p->socket);
out:
	return rc;
}

/* Reads the multi-string of reader names (each NUL-terminated, an empty
 * one at the end) into r->pcsc.readers. */
static int
pcsc_names_parse(struct tg_doctor_pcsc *p, const char *ms, size_t len)
{
	struct tg_doctor_reader *rd;
	struct tg_buf b;
	const uint8_t *start;
	size_t n;
	uint8_t c;
	int rc = 0;

	tg_buf_reader(&b, (const uint8_t *)ms, len);
	while (rc == 0 && tg_buf_remaining(&b) > 0) {
		start = tg_buf_cur(&b);
		for (n = 0; tg_buf_get_u8(&b, &c) == 0 && c != '\0'; n++)
			continue;
		if (n == 0)
			break;
		if ((rc = tg_doctor_array_add((void **)&p->readers, &p->n, sizeof(*rd),
		                              (void **)&rd)) != 0)
			break;
		if ((rd->name = tg_doctor_str_clean((const char *)start, n)) == NULL)
			rc = TG_ERR_ALLOC;
	}
	return rc;
}

/* Lists the readers; none is not an error. */
static int
pcsc_readers_list(SCARDCONTEXT ctx, struct tg_doctor_pcsc *p, LONG *prv)
{
	char *ms = NULL;
	DWORD len = 0;
	LONG rv = SCARD_S_SUCCESS;
	int attempt, rc = 0;

	for (attempt = 0; attempt < PCSC_LIST_ATTEMPTS; attempt++) {
		free(ms);
		ms = NULL;
		len = 0;
		if ((rv = SCardListReaders(ctx, NULL, NULL, &len)) != SCARD_S_SUCCESS)
			break;
		if ((ms = calloc(1, len + 1)) == NULL) {
			rc = TG_ERR_ALLOC;
			goto out;
		}
		rv = SCardListReaders(ctx, NULL, ms, &len);
		if (rv != SCARD_E_INSUFFICIENT_BUFFER)
			break;
	}
	if (rv == SCARD_E_NO_READERS_AVAILABLE) {
		rv = SCARD_S_SUCCESS;
		goto out;
	}
	if (rv != SCARD_S_SUCCESS)
		goto out;
	rc = pcsc_names_parse(p, ms, len);
out:
	*prv = rv;
	free(ms);
	return rc;
}

/* Reads every reader's state with timeout 0 (returns at once). */
static LONG
pcsc_states_get(SCARDCONTEXT ctx, struct tg_doctor_pcsc *p)
{
	SCARD_READERSTATE *st = NULL;
	struct tg_doctor_reader *rd;
	LONG rv = SCARD_E_NO_MEMORY;
	size_t i;

	if (p->n == 0) {
		rv = SCARD_S_SUCCESS;
		goto out;
	}
	if ((st = calloc(p->n, sizeof(*st))) == NULL)
		goto out;
	for (i = 0; i < p->n; i++) {
		st[i].szReader = p->readers[i].name;
		st[i].dwCurrentState = SCARD_STATE_UNAWARE;
	}
	rv = SCardGetStatusChange(ctx, 0, st, (DWORD)p->n);
	if (rv == SCARD_E_TIMEOUT)
		rv = SCARD_S_SUCCESS;
	if (rv != SCARD_S_SUCCESS)
		goto out;
	for (i = 0; i < p->n; i++) {
		rd = &p->readers[i];
		rd->state = st[i].dwEventState;
		rd->card_present = (st[i].dwEventState & SCARD_STATE_PRESENT) != 0;
		if (rd->card_present && st[i].cbAtr > 0 && st[i].cbAtr <= sizeof(rd->atr) &&
		    st[i].cbAtr <= sizeof(st[i].rgbAtr)) {
			memcpy(rd->atr, st[i].rgbAtr, st[i].cbAtr);
			rd->atr_len = st[i].cbAtr;
			rd->hint = tg_doctor_atr_hint_find(rd->atr, rd->atr_len);
		}
	}
out:
	free(st);
	return rv;
}

static int
pcsc_reader_problems_add(struct tg_doctor_report *r)
{
	const struct tg_doctor_pcsc *p = &r->pcsc;
	const struct tg_doctor_reader *rd;
	size_t i, cards = 0;
	int rc = 0;

	for (i = 0; i < p->n; i++)
		cards += p->readers[i].card_present ? 1 : 0;
	for (i = 0; i < p->n && rc == 0; i++) {
		rd = &p->readers[i];
		if (rd->state & SCARD_STATE_UNAVAILABLE)
			rc = tg_doctor_problem_add(
			    r, "replug the reader; if it stays so, restart pcscd",
			    "reader '%s' is unavailable", rd->name);
		else if (rd->state & SCARD_STATE_MUTE)
			rc = tg_doctor_problem_add(
			    r,
			    "remove and reinsert the token; if it stays mute "
			    "this reader or driver does not support it",
			    "the card in reader '%s' does not answer (mute)", rd->name);
		else if (rd->state & SCARD_STATE_EXCLUSIVE)
			rc = tg_doctor_problem_add(
			    r,
			    "stop that program (often GnuPG's scdaemon: "
			    "'gpgconf --kill scdaemon')",
			    "reader '%s' is held exclusively by another program", rd->name);
		else if (!rd->card_present && cards == 0)
			rc = tg_doctor_problem_add(r, "insert the token", "reader '%s' has no card",
			                           rd->name);
	}
	return rc;
}

int
tg_doctor_pcsc_probe(struct tg_doctor_report *r)
{
	struct tg_doctor_pcsc *p = &r->pcsc;
	SCARDCONTEXT ctx = 0;
	const char *env = getenv(TG_DOCTOR_PCSC_SOCKET_ENV);
	struct stat st;
	int have_ctx = 0, rc = TG_ERR_ALLOC;
	LONG rv;

	if ((p->socket = tg_doctor_str_printf(
	         "%s", env != NULL && *env != '\0' ? env : TG_DOCTOR_PCSC_SOCKET)) == NULL)
		goto out;
	p->socket_exists = stat(p->socket, &st) == 0 && S_ISSOCK(st.st_mode);
	if (p->socket_exists && !pcsc_answers()) {
		rc = pcsc_hung(r);
		goto out;
	}
	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (rv != SCARD_S_SUCCESS) {
		rc = pcsc_unreachable(r, rv);
		goto out;
	}
	have_ctx = 1;
	p->reachable = 1;
	if ((rc = pcsc_readers_list(ctx, p, &rv)) != 0)
		goto out;
	if (rv == SCARD_S_SUCCESS)
		rv = pcsc_states_get(ctx, p);
	if (rv == SCARD_E_NO_MEMORY) {
		rc = TG_ERR_ALLOC;
		goto out;
	}
	if (rv != SCARD_S_SUCCESS) {
		rc = TG_ERR_ALLOC;
		if ((p->error = tg_doctor_str_printf("%s (0x%08lX)", pcsc_stringify_error(rv),
		                                     (unsigned long)rv)) == NULL)
			goto out;
		rc = tg_doctor_problem_add(
		    r, "restart it with 'systemctl restart pcscd' (or 'pcscd -f')",
		    "pcscd answers but cannot list its readers: %s", p->error);
		goto out;
	}
	rc = pcsc_reader_problems_add(r);
out:
	if (have_ctx)
		SCardReleaseContext(ctx);
	return rc;
}
