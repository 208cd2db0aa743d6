/*
 * test_p11_watch_softhsm.c — libtgp11's presence watcher on SoftHSM2 (run
 * under tests/lib/with-softhsm.sh: token tg-test, PIN 1234, key p256): it
 * starts bound to the key's token and stays quiet while the token stays;
 * and fork() while the watcher polls (every millisecond, under the
 * context's lock) never leaves the child deadlocked on that lock: each
 * child lists tokens and signs, and must exit within a timeout.
 * Through p11_watch_wrap (SoftHSM2 behind a module that can hide the token,
 * blank its serial or report CKA_EXTRACTABLE true): removal and insertion
 * with the proof; a token with an empty serial is never taken; a token
 * whose key is refused now, or allowed but with a worse trust verdict
 * than before, is REPLACED and the key signs nothing.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_p11.h"
#include "tg_test.h"

#define KEY_URI       "pkcs11:token=tg-test;object=p256?pin-source=env:TG_WATCH_PIN"
#define MSG           "watch fork"
#define FORKS         150
#define CHILD_TIMEOUT 20 /* seconds; a deadlocked child never exits */

struct fx {
	struct tg_p11 *p;
	struct tg_p11_key *k;
	struct tg_p11_watch *w;
};

/* The fixture: a context, the key at uri and a watcher polling every
 * interval_ms. */
static int
fx_open(void **state, const char *uri, unsigned flags, unsigned interval_ms)
{
	static struct fx fx;
	struct tg_error err;

	tg_error_clear(&err);
	memset(&fx, 0, sizeof(fx));
	if (tg_p11_new(&fx.p, &err) != 0 || tg_p11_key_find(fx.p, uri, flags, &fx.k, &err) != 0 ||
	    tg_p11_watch_start(fx.k, interval_ms, NULL, NULL, &fx.w, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	*state = &fx;
	return 0;
}

static int
setup(void **state)
{
	tg_test_require_env("SOFTHSM2_CONF");
	unsetenv("TOKENGATE_PIN");
	/* a watcher logs in again: its PIN comes from a source read each time */
	setenv("TG_WATCH_PIN", tg_test_require_env("TG_SOFTHSM_PIN"), 1);
	return fx_open(state, KEY_URI, 0, 1);
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	tg_p11_watch_stop(fx->w);
	tg_p11_key_free(fx->k);
	tg_p11_free(fx->p);
	return 0;
}

static void
test_quiet_while_present(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_watch_event ev;
	struct timespec ts = {0, 300 * 1000000L};

	assert_int_equal(tg_p11_watch_present(fx->w), 1);
	nanosleep(&ts, NULL);
	assert_int_equal(tg_p11_watch_next(fx->w, &ev), 0);
	assert_int_equal(tg_p11_watch_present(fx->w), 1);
}

/* The child: a tg_p11 call that takes the context's lock, and a signature
 * with the key found by the parent. */
static void
child(struct fx *fx)
{
	struct tg_p11_token_info *v = NULL;
	uint8_t *sig = NULL;
	size_t n = 0, sl = 0;
	int rc = 1;

	alarm(CHILD_TIMEOUT);
	if (tg_p11_tokens_list(fx->p, "pkcs11:token=tg-test", &v, &n, NULL) == 0 && n == 1 &&
	    tg_p11_key_sign_test(fx->k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, NULL) == 0)
		rc = 0;
	free(v);
	free(sig);
	_exit(rc);
}

static void
test_fork_while_polling(void **state)
{
	struct fx *fx = *state;
	pid_t pid;
	int i, st;

	for (i = 0; i < FORKS; i++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child(fx);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFSIGNALED(st))
			fail_msg("fork %d: the child did not finish within %d s (signal %d): "
			         "deadlocked on the context's lock?",
			         i, CHILD_TIMEOUT, WTERMSIG(st));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("fork %d: the child could not list tokens and sign", i);
	}
	/* the parent and its watcher go on */
	assert_int_equal(tg_p11_watch_present(fx->w), 1);
}

/* ---- through the wrapper module ---- */

#define WRAP_URI                                                                                   \
	"pkcs11:token=tg-test;object=p256?module-path=" TG_P11_WATCH_WRAP_PATH                     \
	"&pin-source=env:TG_WATCH_PIN"

static char ctl_dir[512];

/* Turns a wrapper switch (a file in $TG_WATCH_WRAP_CTL) on or off. */
static void
ctl(const char *name, int on)
{
	assert_int_equal(tg_test_switch(ctl_dir, name, on), 0);
}

/* Waits up to 10 s for the next event; fails when none comes. */
static void
next_event(struct tg_p11_watch *w, enum tg_p11_event want, const char *msg_part)
{
	struct tg_p11_watch_event ev;
	struct timespec ts = {0, 10 * 1000000L};
	int i;

	for (i = 0; i < 1000 && !tg_p11_watch_next(w, &ev); i++)
		nanosleep(&ts, NULL);
	if (i == 1000)
		fail_msg("no event %d within 10 s", (int)want);
	print_message("event %d: %s\n", (int)ev.ev, ev.msg);
	assert_int_equal(ev.ev, want);
	if (msg_part != NULL && strstr(ev.msg, msg_part) == NULL)
		fail_msg("event message '%s' lacks '%s'", ev.msg, msg_part);
}

/* No event for 600 ms (more than 50 polls). */
static void
no_event(struct tg_p11_watch *w)
{
	struct tg_p11_watch_event ev;
	struct timespec ts = {0, 600 * 1000000L};

	nanosleep(&ts, NULL);
	if (tg_p11_watch_next(w, &ev))
		fail_msg("unexpected event %d: %s", (int)ev.ev, ev.msg);
}

static int
signs(struct tg_p11_key *k)
{
	uint8_t *sig = NULL;
	size_t sl = 0;
	int r = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, NULL);

	free(sig);
	return r == 0;
}

/* The wrapper module over SoftHSM2, its switches in $TG_TMP/wrap-ctl. */
static void
wrap_env(void)
{
	const char *tmp = getenv("TG_TMP");

	setenv("TG_WATCH_PIN", tg_test_require_env("TG_SOFTHSM_PIN"), 1);
	tg_test_require_env("TG_SOFTHSM2_MODULE");
	snprintf(ctl_dir, sizeof(ctl_dir), "%s/wrap-ctl", tmp != NULL ? tmp : "/tmp");
	(void)mkdir(ctl_dir, 0700);
	setenv("TG_WATCH_WRAP_CTL", ctl_dir, 1);
	setenv("TG_WATCH_WRAP_REAL", getenv("TG_SOFTHSM2_MODULE"), 1);
}

static int
setup_wrap(void **state)
{
	wrap_env();
	return fx_open(state, WRAP_URI, 0, 10);
}

/* The same, the key found with TG_P11_KEY_ALLOW_EXPORTABLE. */
static int
setup_wrap_allow(void **state)
{
	wrap_env();
	return fx_open(state, WRAP_URI, TG_P11_KEY_ALLOW_EXPORTABLE, 10);
}

/* Out and back in: bound again after the proof, signs. */
static void
test_wrap_remove_insert(void **state)
{
	struct fx *fx = *state;

	assert_true(signs(fx->k));
	ctl("absent", 1);
	next_event(fx->w, TG_P11_EV_REMOVED, "removed");
	assert_false(signs(fx->k)); /* unbound while away */
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_INSERTED,
	           "proven by a signature over a fresh challenge; logged in again");
	assert_int_equal(tg_p11_watch_present(fx->w), 1);
	assert_true(signs(fx->k));
}

/* An empty serial never matches, not even the empty serial the watched
 * token had: such a token cannot be told from another one. */
static void
test_wrap_blank_serial(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_key *k2 = NULL;
	struct tg_p11_watch *w2 = NULL;

	ctl("blank-serial", 1);
	assert_int_equal(tg_p11_key_find(fx->p, WRAP_URI, 0, &k2, NULL), 0);
	assert_string_equal(tg_p11_token_get_info(tg_p11_key_token(k2))->serial, "");
	assert_int_equal(tg_p11_watch_start(k2, 10, NULL, NULL, &w2, NULL), 0);
	assert_int_equal(tg_p11_watch_present(w2), 1);
	ctl("absent", 1);
	next_event(fx->w, TG_P11_EV_REMOVED, NULL);
	next_event(w2, TG_P11_EV_REMOVED, NULL);
	ctl("absent", 0);
	no_event(w2);
	no_event(fx->w);
	assert_int_equal(tg_p11_watch_present(w2), 0);
	assert_false(signs(k2));
	assert_false(signs(fx->k));
	tg_p11_watch_stop(w2);
	tg_p11_key_free(k2);
	ctl("absent", 1);
	no_event(fx->w); /* out (no event: it was not ours) */
	ctl("blank-serial", 0);
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_INSERTED, NULL);
	assert_true(signs(fx->k));
}

/* Back with the key now exportable: refused, REPLACED, logged out, the
 * key signs nothing until the token is back as it was. */
static void
test_wrap_refused_now(void **state)
{
	struct fx *fx = *state;

	ctl("absent", 1);
	next_event(fx->w, TG_P11_EV_REMOVED, NULL);
	ctl("extractable", 1);
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_REPLACED, "is refused");
	assert_int_equal(tg_p11_watch_present(fx->w), 0);
	assert_false(signs(fx->k));
	ctl("absent", 1);
	no_event(fx->w);
	ctl("extractable", 0);
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_INSERTED, NULL);
	assert_true(signs(fx->k));
}

/* A key allowed to be exportable (TG_P11_KEY_ALLOW_EXPORTABLE) that was
 * "ok" and comes back exportable has a worse verdict: REPLACED too. */
static void
test_wrap_worse_verdict(void **state)
{
	struct fx *fx = *state;
	struct tg_p11_trust tr;

	assert_int_equal(tg_p11_key_trust(fx->k, &tr), 0);
	assert_int_equal(tr.verdict, TG_P11_TRUST_OK);
	ctl("absent", 1);
	next_event(fx->w, TG_P11_EV_REMOVED, NULL);
	ctl("extractable", 1);
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_REPLACED, "is worse than before the removal");
	assert_false(signs(fx->k));
	ctl("absent", 1);
	no_event(fx->w);
	ctl("extractable", 0);
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_INSERTED, NULL);
	assert_true(signs(fx->k));
}

/* ---- a PIN file source, read again at the re-login ---- */

static char pin_path[600];

static void
pin_file(const char *pin)
{
	FILE *f;

	assert_non_null(f = fopen(pin_path, "w"));
	fprintf(f, "%s\n", pin);
	fclose(f);
	assert_int_equal(chmod(pin_path, 0600), 0);
}

static int
setup_wrap_file(void **state)
{
	static char uri[1024];
	const char *tmp = getenv("TG_TMP");

	wrap_env();
	snprintf(pin_path, sizeof(pin_path), "%s/watch.pin", tmp != NULL ? tmp : "/tmp");
	pin_file(tg_test_require_env("TG_SOFTHSM_PIN"));
	snprintf(uri, sizeof(uri),
	         "pkcs11:token=tg-test;object=p256?module-path=" TG_P11_WATCH_WRAP_PATH
	         "&pin-source=file:%s",
	         pin_path);
	return fx_open(state, uri, 0, 10);
}

/*
 * The token comes back with its login gone (drop-login): the watcher logs
 * in again with the PIN file as it is NOW. A wrong PIN there is tried once
 * (RELOGIN_FAILED, the key unbound); fixed, the next insertion logs in and
 * the key signs.
 */
static void
test_wrap_relogin_rereads_file(void **state)
{
	struct fx *fx = *state;

	assert_true(signs(fx->k));
	ctl("drop-login", 1);
	ctl("absent", 1);
	next_event(fx->w, TG_P11_EV_REMOVED, NULL);
	pin_file("0000");
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_RELOGIN_FAILED,
	           "wrong PIN for token 'tg-test' (from pin-source");
	assert_false(signs(fx->k));
	ctl("absent", 1);
	next_event(fx->w, TG_P11_EV_REMOVED, NULL);
	pin_file(tg_test_require_env("TG_SOFTHSM_PIN"));
	ctl("absent", 0);
	next_event(fx->w, TG_P11_EV_INSERTED, "logged in again");
	ctl("drop-login", 0);
	assert_true(signs(fx->k));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quiet_while_present),
	    cmocka_unit_test(test_fork_while_polling),
	};
	const struct CMUnitTest wrapped[] = {
	    cmocka_unit_test(test_wrap_remove_insert),
	    cmocka_unit_test(test_wrap_blank_serial),
	    cmocka_unit_test(test_wrap_refused_now),
	};
	const struct CMUnitTest allowed[] = {
	    cmocka_unit_test(test_wrap_worse_verdict),
	};
	const struct CMUnitTest file_pin[] = {
	    cmocka_unit_test(test_wrap_relogin_rereads_file),
	};
	int r = cmocka_run_group_tests(tests, setup, teardown);

	r |= cmocka_run_group_tests(wrapped, setup_wrap, teardown);
	r |= cmocka_run_group_tests(allowed, setup_wrap_allow, teardown);
	return r | cmocka_run_group_tests(file_pin, setup_wrap_file, teardown);
}
