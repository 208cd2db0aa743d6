/*
 * test_doctor_pcsc.c — the PC/SC probe of `tokengate doctor`
 * (host/doctor/pcsc.c) against stand-ins for pcscd's socket: none at all,
 * a socket nobody listens on, one that closes every connection at once,
 * one that takes connections and never answers (a hung pcscd).
 *
 * pcsc-lite's client reads $PCSCLITE_CSOCK_NAME once per process, so each
 * case probes in a child process of its own, which writes the return code
 * and the report as text (render.c) to a file the test then checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pcsc.h"
#include "render.h"
#include "report.h"
#include "tg_err.h"
#include "tg_test.h"

#define SOCK_DEAD_SOCKET "/dev/null/tokengate-doctor-pcscd-does-not-answer"

struct env {
	char dir[256];
	char sock[300];
	char out[300];
};

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_int_equal(tg_test_tmpdir("tg-doctor-pcsc", e->dir, sizeof(e->dir)), 0);
	snprintf(e->sock, sizeof(e->sock), "%s/pcscd.comm", e->dir);
	snprintf(e->out, sizeof(e->out), "%s/report.txt", e->dir);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	tg_test_tmpdir_remove(e->dir);
	free(e);
	return 0;
}

/* A Unix socket bound at path; listening when backlog > 0. */
static int
sock_make(const char *path, int backlog)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (backlog > 0)
		assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

/*
 * Probes in a child with PCSCLITE_CSOCK_NAME=sock; returns the file the
 * child wrote ("rc <n>\nenv <value after the probe>\n" and the text
 * report), a heap string.
 */
static char *
probe_child(struct env *e)
{
	struct tg_doctor_report *r = NULL;
	const char *after;
	char *buf;
	FILE *f;
	long len;
	pid_t pid;
	int st, rc;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("PCSCLITE_CSOCK_NAME", e->sock, 1);
		/* only the sbin directories are searched for pcscd */
		setenv("PATH", "", 1);
		if ((f = fopen(e->out, "w")) == NULL)
			_exit(2);
		if ((rc = tg_doctor_report_new(&r)) == 0)
			rc = tg_doctor_pcsc_probe(r);
		after = getenv("PCSCLITE_CSOCK_NAME");
		fprintf(f, "rc %d\nenv %s\n", rc, after != NULL ? after : "(unset)");
		if (r != NULL && tg_doctor_text_render(r, f) != 0)
			_exit(3);
		tg_doctor_report_free(r);
		_exit(fclose(f) == 0 ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_non_null(f = fopen(e->out, "r"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static void
expect(const char *out, const char *text)
{
	if (strstr(out, text) == NULL)
		fail_msg("report lacks \"%s\"; it is:\n%s", text, out);
}

/* No socket at all: pcscd is installed (Debian's /usr/sbin/pcscd) but not
 * running, and the fix is to start its socket. */
static void
test_no_socket(void **state)
{
	struct env *e = *state;
	char want[1024];
	char *out;

	out = probe_child(e);
	expect(out, "rc 0\n");
	expect(out, "  pcscd is not reachable: ");
	if (access("/usr/sbin/pcscd", X_OK) == 0 || access("/sbin/pcscd", X_OK) == 0 ||
	    access("/usr/local/sbin/pcscd", X_OK) == 0) {
		snprintf(want, sizeof(want),
		         "  - pcscd is not running (no socket at %s): start it with 'systemctl "
		         "start pcscd.socket' (or 'pcscd -f')\n",
		         e->sock);
	} else {
		snprintf(want, sizeof(want),
		         "  - pcscd is not installed (no smart card service): install it with "
		         "'apt install pcscd libccid'\n");
	}
	expect(out, want);
	expect(out, "Problems (1):\n");
	free(out);
}

/* A file where the socket should be is no socket either. */
static void
test_not_a_socket(void **state)
{
	struct env *e = *state;
	char want[1024];
	char *out;
	FILE *f;

	assert_non_null(f = fopen(e->sock, "w"));
	fclose(f);
	if (access("/usr/sbin/pcscd", X_OK) != 0) {
		print_message("pcscd is not installed in /usr/sbin\n");
		skip();
	}
	out = probe_child(e);
	expect(out, "rc 0\n");
	snprintf(want, sizeof(want), "pcscd is not running (no socket at %s)", e->sock);
	expect(out, want);
	free(out);
}

/* A socket file nobody listens on (pcscd died and left it). */
static void
test_dead_socket(void **state)
{
	struct env *e = *state;
	char want[1024];
	char *out;
	int fd = sock_make(e->sock, 0);

	out = probe_child(e);
	close(fd);
	expect(out, "rc 0\n");
	snprintf(want, sizeof(want),
	         "  - pcscd is not running: nothing answers on %s: restart it with "
	         "'systemctl restart pcscd' (or 'pcscd -f')\n",
	         e->sock);
	expect(out, want);
	expect(out, "\nPC/SC (pcscd socket ");
	expect(out, "  pcscd is not reachable: Service not available. (0x8010001D)\n");
	/* the socket is left as it was */
	snprintf(want, sizeof(want), "env %s\n", e->sock);
	expect(out, want);
	free(out);
}

/* A socket that takes connections and never answers: the probe gives up
 * after 5 s, says so, and points later PC/SC users of the process at a
 * socket that cannot exist so they fail at once. */
static void
test_hung_socket(void **state)
{
	struct env *e = *state;
	char want[1024];
	char *out;
	int fd = sock_make(e->sock, 16);

	out = probe_child(e);
	close(fd);
	expect(out, "rc 0\n");
	expect(out, "env " SOCK_DEAD_SOCKET "\n");
	snprintf(want, sizeof(want),
	         "  pcscd is not reachable: pcscd takes connections on %s but does not answer "
	         "within 5 s\n",
	         e->sock);
	expect(out, want);
	snprintf(want, sizeof(want),
	         "  - pcscd does not answer on %s: restart it ('systemctl restart pcscd', or "
	         "stop it and run 'pcscd -f'); unplug readers and tokens first if a wedged "
	         "reader driver is the cause\n",
	         e->sock);
	expect(out, want);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_socket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hung_socket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
