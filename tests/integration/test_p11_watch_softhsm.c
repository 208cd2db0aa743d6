/*
 * test_p11_watch_softhsm.c — libtgp11's presence watcher on SoftHSM2 (run
 * under tests/lib/with-softhsm.sh: token tg-test, PIN 1234, key p256): it
 * starts bound to the key's token and stays quiet while the token stays;
 * and fork() while the watcher polls (every millisecond, under the
 * context's lock) never leaves the child deadlocked on that lock: each
 * child lists tokens and signs, and must exit within a timeout.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg_p11.h"
#include "tg_test.h"

#define KEY_URI       "pkcs11:token=tg-test;object=p256?pin-value=1234"
#define MSG           "watch fork"
#define FORKS         150
#define CHILD_TIMEOUT 20 /* seconds; a deadlocked child never exits */

struct fx {
	struct tg_p11 *p;
	struct tg_p11_key *k;
	struct tg_p11_watch *w;
};

static int
setup(void **state)
{
	static struct fx fx;
	struct tg_error err;

	tg_test_require_env("SOFTHSM2_CONF");
	unsetenv("TOKENGATE_PIN");
	tg_error_clear(&err);
	memset(&fx, 0, sizeof(fx));
	if (tg_p11_new(&fx.p, &err) != 0 || tg_p11_key_find(fx.p, KEY_URI, 0, &fx.k, &err) != 0 ||
	    tg_p11_watch_start(fx.k, 1, NULL, NULL, &fx.w, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	*state = &fx;
	return 0;
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quiet_while_present),
	    cmocka_unit_test(test_fork_while_polling),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
