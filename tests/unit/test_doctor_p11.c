/*
 * test_doctor_p11.c — the PKCS#11 probe of `tokengate doctor`
 * (host/doctor/p11.c) on the modules p11-kit registers, with a throw-away
 * SoftHSM2 (tests/lib/with-softhsm.sh: token "tg-test", user PIN set):
 * the module and its token as listed, SoftHSM2 failing to start (its
 * configuration missing) reported by module name with the fix, and a
 * token initialized without a user PIN reported with the command that
 * sets one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <p11-kit/pkcs11.h>

#include "p11.h"
#include "report.h"
#include "tg_err.h"
#include "tg_test.h"

/* The report's SoftHSM2 module, or NULL. */
static const struct tg_doctor_module *
softhsm_find(const struct tg_doctor_report *r)
{
	size_t i;

	for (i = 0; i < r->pkcs11.n; i++)
		if (strstr(r->pkcs11.modules[i].path, "softhsm") != NULL)
			return &r->pkcs11.modules[i];
	return NULL;
}

static const struct tg_doctor_token *
token_find(const struct tg_doctor_module *m, const char *label)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->slots[i].label != NULL && strcmp(m->slots[i].label, label) == 0)
			return &m->slots[i];
	return NULL;
}

/* Index of the problem whose text has `part`, or -1. */
static long
problem_find(const struct tg_doctor_report *r, const char *part)
{
	size_t i;

	for (i = 0; i < r->n_problems; i++)
		if (strstr(r->problems[i].what, part) != NULL)
			return (long)i;
	return -1;
}

static struct tg_doctor_report *
probe(void)
{
	struct tg_doctor_report *r = NULL;

	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_p11_probe(r), 0);
	if (softhsm_find(r) == NULL) {
		tg_doctor_report_free(r);
		tg_test_skip("p11-kit does not register SoftHSM2 here "
		             "(/usr/share/p11-kit/modules/softhsm2.module)");
	}
	return r;
}

/* SoftHSM2's token as the probe lists it; a healthy token is no problem. */
static void
test_token_listed(void **state)
{
	struct tg_doctor_report *r;
	const struct tg_doctor_module *m;
	const struct tg_doctor_token *t;
	const char *label = tg_test_require_env("TG_SOFTHSM_TOKEN");

	(void)state;
	r = probe();
	m = softhsm_find(r);
	assert_null(m->error);
	assert_non_null(m->library);
	assert_non_null(t = token_find(m, label));
	assert_true(t->present);
	assert_null(t->error);
	assert_string_equal(t->manufacturer, "SoftHSM project");
	assert_string_equal(t->model, "SoftHSM v2");
	assert_true(t->flags & CKF_TOKEN_INITIALIZED);
	assert_true(t->flags & CKF_USER_PIN_INITIALIZED);
	assert_int_equal(problem_find(r, label), -1);
	assert_int_equal(problem_find(r, "softhsm2"), -1);
	tg_doctor_report_free(r);
}

/* SoftHSM2 cannot start (SOFTHSM2_CONF names no file): the module is
 * reported by name and path with what it said and the fix. Probed in a
 * child so the broken configuration stays there. */
static void
test_module_fails(void **state)
{
	struct tg_doctor_report *r = NULL;
	const struct tg_doctor_module *m;
	char path[4096], want[4400], *tmp;
	const char *dir = tg_test_require_env("TG_TMP");
	FILE *f;
	pid_t pid;
	int st;
	long k;

	(void)state;
	assert_non_null(tmp = malloc(strlen(dir) + 32));
	snprintf(tmp, strlen(dir) + 32, "%s/p11-fail.txt", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("SOFTHSM2_CONF", "/nonexistent/tokengate-test/softhsm2.conf", 1);
		if ((f = fopen(tmp, "w")) == NULL || tg_doctor_report_new(&r) != 0 ||
		    tg_doctor_p11_probe(r) != 0)
			_exit(2);
		if ((m = softhsm_find(r)) == NULL) {
			fprintf(f, "no softhsm\n");
			_exit(fclose(f) == 0 ? 0 : 3);
		}
		fprintf(f, "error=%s\npath=%s\nslots=%zu\n", m->error ? m->error : "(none)",
		        m->path, m->n);
		for (k = 0; k < (long)r->n_problems; k++)
			fprintf(f, "problem=%s: %s\n", r->problems[k].what, r->problems[k].fix);
		tg_doctor_report_free(r);
		_exit(fclose(f) == 0 ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(f = fopen(tmp, "r"));
	memset(want, 0, sizeof(want));
	assert_true(fread(want, 1, sizeof(want) - 1, f) > 0);
	fclose(f);
	unlink(tmp);
	free(tmp);
	if (strcmp(want, "no softhsm\n") == 0)
		tg_test_skip("p11-kit does not register SoftHSM2 here");
	print_message("%s", want);
	assert_null(strstr(want, "error=(none)"));
	assert_non_null(strstr(want, "slots=0\n"));
	assert_non_null(strstr(want, "failed to initialize: CKR_GENERAL_ERROR"));
	if (sscanf(strstr(want, "path=") + 5, "%4095[^\n]", path) != 1)
		fail_msg("no path in the child's report");
	/* the problem line names the module, its file and the fix */
	{
		char line[4400];

		snprintf(line, sizeof(line),
		         "problem=PKCS#11 module 'softhsm2' (%s) fails: ", path);
		assert_non_null(strstr(want, line));
	}
	assert_non_null(strstr(want, ": check its configuration (SoftHSM: SOFTHSM2_CONF and its "
	                             "tokendir; OpenSC: /etc/opensc/opensc.conf) or reinstall its "
	                             "package; to stop using it remove its file from "
	                             "/usr/share/p11-kit/modules\n"));
}

/* A token initialized without a user PIN (pkcs11-tool --init-token
 * alone): the problem names the token and gives the command that sets the
 * PIN with the SO PIN. */
static void
test_token_without_user_pin(void **state)
{
	struct tg_doctor_report *r;
	const struct tg_doctor_module *m;
	const struct tg_doctor_token *t;
	const char *mod = tg_test_require_env("TG_SOFTHSM2_MODULE");
	char cmd[8192], want[8192];
	long k;

	(void)state;
	if (access("/usr/bin/pkcs11-tool", X_OK) != 0)
		tg_test_skip("pkcs11-tool (OpenSC) is not installed");
	snprintf(cmd, sizeof(cmd),
	         "pkcs11-tool --module '%s' --init-token --slot-index 1 --label tg-nopin --so-pin "
	         "87654321 "
	         ">/dev/null 2>&1",
	         mod);
	assert_int_equal(system(cmd), 0);
	r = probe();
	m = softhsm_find(r);
	assert_non_null(t = token_find(m, "tg-nopin"));
	assert_true(t->flags & CKF_TOKEN_INITIALIZED);
	assert_false(t->flags & CKF_USER_PIN_INITIALIZED);
	k = problem_find(r, "token 'tg-nopin' has no user PIN set");
	assert_true(k >= 0);
	snprintf(want, sizeof(want),
	         "set it with the SO PIN (pkcs11-tool --module %s --token-label 'tg-nopin' "
	         "--login --login-type so --init-pin)",
	         m->path);
	assert_string_equal(r->problems[k].fix, want);
	/* the healthy token still has none */
	assert_int_equal(problem_find(r, tg_test_require_env("TG_SOFTHSM_TOKEN")), -1);
	tg_doctor_report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_module_fails),
	    cmocka_unit_test(test_token_listed),
	    cmocka_unit_test(test_token_without_user_pin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
