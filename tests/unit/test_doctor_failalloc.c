/*
 * test_doctor_failalloc.c — `tokengate doctor`'s report (report.c) and
 * renderers (render.c) when an allocation fails, each allocation in turn:
 * every failure is TG_ERR_ALLOC (or, inside jansson's writer, TG_ERR_IO),
 * nothing is written by a JSON render that failed to build its object,
 * and the report is left as it was (LeakSanitizer checks the frees).
 * The renderers and report functions return a code without a tg_error:
 * the operations below name the code in err for tg_failalloc_sweep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <PCSC/pcsclite.h>
#include <p11-kit/pkcs11.h>

#include <fcntl.h>
#include <unistd.h>

#include "render.h"
#include "tg_cmd.h"
#include "report.h"
#include "tg_err.h"
#include "tg_test.h"
#include "tg_test_failalloc.h"

static char *
sdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

static void *
add(void **arr, size_t *n, size_t size)
{
	void *e = NULL;

	assert_int_equal(tg_doctor_array_add(arr, n, size, &e), 0);
	return e;
}

/* One USB device, one PIV card, one module with a token: every JSON
 * member kind is built. */
static struct tg_doctor_report *
report_make(void)
{
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_usb_dev *d;
	struct tg_doctor_reader *rd;
	struct tg_doctor_module *m;
	struct tg_doctor_token *t;

	assert_int_equal(tg_doctor_report_new(&r), 0);
	r->usb.seen = 2;
	d = add((void **)&r->usb.devs, &r->usb.n, sizeof(*d));
	d->vid = 0x1050;
	d->vendor_known = "Yubico";
	d->product = sdup("YubiKey");
	d->ccid = 1;
	r->pcsc.reachable = 1;
	r->pcsc.socket = sdup("/run/pcscd/pcscd.comm");
	rd = add((void **)&r->pcsc.readers, &r->pcsc.n, sizeof(*rd));
	rd->name = sdup("Yubico YubiKey 00 00");
	rd->card_present = 1;
	rd->state = SCARD_STATE_PRESENT;
	rd->atr[0] = 0x3B;
	rd->atr_len = 1;
	rd->piv = 1;
	m = add((void **)&r->pkcs11.modules, &r->pkcs11.n, sizeof(*m));
	m->name = sdup("softhsm2");
	m->path = sdup("/x.so");
	t = add((void **)&m->slots, &m->n, sizeof(*t));
	t->present = 1;
	t->label = sdup("tg");
	t->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED;
	assert_int_equal(tg_doctor_problem_add(r, "fix", "problem %d", 1), 0);
	return r;
}

static char *
json_of(const struct tg_doctor_report *r, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	tg_failalloc_hold(1);
	f = open_memstream(&buf, &len);
	tg_failalloc_hold(0);
	assert_non_null(f);
	*rc = tg_doctor_json_render(r, f);
	tg_failalloc_hold(1);
	assert_int_equal(fclose(f), 0);
	tg_failalloc_hold(0);
	return buf;
}

struct json_ctx {
	struct tg_doctor_report *r;
	char *ref; /* the output without a failure */
};

/* One JSON render: the reference output, or TG_ERR_ALLOC with nothing
 * written, or TG_ERR_IO (jansson's writer failed mid-way); the report is
 * never changed. */
static int
op_json(void *arg, struct tg_error *err)
{
	struct json_ctx *c = arg;
	char *out;
	int rc;

	out = json_of(c->r, &rc);
	tg_failalloc_hold(1);
	if (rc == 0)
		assert_string_equal(out, c->ref);
	else if (rc == TG_ERR_ALLOC)
		assert_string_equal(out, "");
	else
		assert_int_equal(rc, TG_ERR_IO);
	assert_int_equal(c->r->n_problems, 1);
	assert_string_equal(c->r->problems[0].what, "problem 1");
	free(out);
	if (rc != 0)
		tg_error_set(err, rc, "doctor JSON render: %s", tg_strerror(rc));
	tg_failalloc_hold(0);
	return rc;
}

static void
test_json_render(void **state)
{
	struct json_ctx c;
	int rc;

	(void)state;
	c.r = report_make();
	c.ref = json_of(c.r, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(c.ref, "\"label\": \"tg\""));
	assert_true(tg_failalloc_sweep("doctor JSON render", op_json, &c) > 5);
	free(c.ref);
	tg_doctor_report_free(c.r);
}

/* report_new, problem_add, array_add, str_printf and str_clean: each
 * failure is TG_ERR_ALLOC and leaves what existed unchanged. */
static int
op_report(void *arg, struct tg_error *err)
{
	struct tg_doctor_report *r = NULL;
	void *arr = NULL, *e = NULL;
	size_t n = 0;
	char *s = NULL;
	int rc;

	(void)arg;
	if ((rc = tg_doctor_report_new(&r)) != 0) {
		assert_null(r);
		goto out;
	}
	if ((rc = tg_doctor_problem_add(r, "insert the token", "reader '%s' has no card", "R")) !=
	    0) {
		assert_int_equal(r->n_problems, 0);
		assert_null(r->problems);
		goto out;
	}
	assert_string_equal(r->problems[0].what, "reader 'R' has no card");
	if ((rc = tg_doctor_array_add(&arr, &n, 8, &e)) != 0) {
		assert_null(arr);
		assert_int_equal(n, 0);
		goto out;
	}
	rc = TG_ERR_ALLOC;
	if ((s = tg_doctor_str_printf("%s-%d", "a", 1)) == NULL)
		goto out;
	assert_string_equal(s, "a-1");
	free(s);
	if ((s = tg_doctor_str_clean("ab\x01 ", 4)) == NULL)
		goto out;
	assert_string_equal(s, "ab?");
	rc = 0;
out:
	free(s);
	free(arr);
	tg_doctor_report_free(r);
	if (rc != 0)
		tg_error_set(err, rc, "doctor report: %s", tg_strerror(rc));
	return rc;
}

static void
test_report(void **state)
{
	(void)state;
	assert_true(tg_failalloc_sweep("doctor report", op_report, NULL) >= 5);
}

/*
 * The whole command, `tokengate doctor --json`, with no pcscd and the
 * throw-away SoftHSM2 of with-softhsm.sh: each allocation failing either
 * is absorbed (exit 0) or makes it exit 1 with one line on stderr. Its
 * stdout goes to /dev/null, its stderr to a file read back as err.
 */
static int
op_cmd(void *arg, struct tg_error *err)
{
	char *argv[] = {"doctor", "--json", NULL}, msg[512];
	const char *path = arg;
	int so, se, fd, rc;
	ssize_t n;

	tg_failalloc_hold(1);
	fflush(stdout);
	fflush(stderr);
	so = dup(STDOUT_FILENO);
	se = dup(STDERR_FILENO);
	assert_true(so >= 0 && se >= 0);
	assert_true((fd = open("/dev/null", O_WRONLY)) >= 0);
	assert_true(dup2(fd, STDOUT_FILENO) >= 0);
	close(fd);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
	tg_failalloc_hold(0);
	rc = tg_cmd_doctor(2, argv);
	tg_failalloc_hold(1);
	fflush(stdout);
	fflush(stderr);
	assert_true(dup2(so, STDOUT_FILENO) >= 0 && dup2(se, STDERR_FILENO) >= 0);
	close(so);
	close(se);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	n = read(fd, msg, sizeof(msg) - 1);
	close(fd);
	msg[n > 0 ? n : 0] = '\0';
	if (rc == 0) {
		assert_string_equal(msg, "");
	} else {
		assert_int_equal(rc, 1);
		/* "tokengate doctor: ..." on one line */
		assert_non_null(strstr(msg, "tokengate doctor: "));
		assert_non_null(strchr(msg, '\n'));
		assert_string_equal(strchr(msg, '\n') + 1, "");
		msg[strcspn(msg, "\n")] = '\0';
		tg_error_set(err, TG_ERR_ALLOC, "%s", msg);
	}
	tg_failalloc_hold(0);
	return rc == 0 ? 0 : TG_ERR_ALLOC;
}

static void
test_cmd(void **state)
{
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/doctor-stderr.txt", tg_test_require_env("TG_TMP"));
	setenv("PCSCLITE_CSOCK_NAME", "/nonexistent/tokengate-test/pcscd.comm", 1);
	assert_true(tg_failalloc_sweep("tokengate doctor --json", op_cmd, path) > 10);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_render),
	    cmocka_unit_test(test_report),
	    cmocka_unit_test(test_cmd),
	};

	tg_failalloc_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
