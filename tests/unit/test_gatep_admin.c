/*
 * test_gatep_admin.c — the admin listener's socket (tg_gate_admin_bind,
 * host/gate/admin.c): a port that is not a number cannot be resolved, an
 * address no interface has and a port another socket listens on are
 * refused with the OS reason and the fix; a free port is bound and listens.
 * No name is looked up in DNS (numeric hosts only).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/util.h>

#include "tg_gate_config.h"
#include "tg_gate_metrics.h"
#include "tg_test.h"

static void
url(struct tg_gate_url *u, const char *host, const char *port)
{
	memset(u, 0, sizeof(*u));
	u->scheme = TG_GATE_SCHEME_TCP;
	snprintf(u->host, sizeof(u->host), "%s", host);
	snprintf(u->port, sizeof(u->port), "%s", port);
}

static void
test_bind_refused(void **state)
{
	struct tg_gate_url u;
	struct tg_error err;
	char msg[512];
	evutil_socket_t fd;

	(void)state;
	/* a service name is not looked up: the port must be a number */
	url(&u, "127.0.0.1", "http");
	tg_error_clear(&err);
	assert_int_equal(tg_gate_admin_bind("127.0.0.1:http", &u, &err), -1);
	assert_int_equal(err.code, TG_ERR_IO);
	assert_int_equal(
	    strncmp(err.msg, "admin listener 127.0.0.1:http: cannot resolve '127.0.0.1': ", 59), 0);
	assert_true(strlen(err.msg) > 59);
	/* TEST-NET-1 (RFC 5737): no interface has it */
	url(&u, "192.0.2.1", "9090");
	tg_error_clear(&err);
	assert_int_equal(tg_gate_admin_bind("192.0.2.1:9090", &u, &err), -1);
	assert_int_equal(err.code, TG_ERR_IO);
	snprintf(msg, sizeof(msg),
	         "admin listener 192.0.2.1:9090: cannot listen: %s (no interface has this address)",
	         strerror(EADDRNOTAVAIL));
	assert_string_equal(err.msg, msg);
	/* a port another socket listens on */
	{
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		char port[8], addr[32];

		url(&u, "127.0.0.1", "0");
		tg_error_clear(&err);
		fd = tg_gate_admin_bind("127.0.0.1:0", &u, &err);
		assert_true(fd >= 0);
		assert_string_equal(err.msg, "");
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
		snprintf(port, sizeof(port), "%u", (unsigned)ntohs(sa.sin_port));
		snprintf(addr, sizeof(addr), "127.0.0.1:%s", port);
		url(&u, "127.0.0.1", port);
		assert_int_equal(tg_gate_admin_bind(addr, &u, &err), -1);
		assert_int_equal(err.code, TG_ERR_IO);
		snprintf(
		    msg, sizeof(msg),
		    "admin listener %s: cannot listen: %s (another process uses the port; pick "
		    "another)",
		    addr, strerror(EADDRINUSE));
		assert_string_equal(err.msg, msg);
		/* the first socket listens: a client connects */
		{
			int c = socket(AF_INET, SOCK_STREAM, 0);

			assert_true(c >= 0);
			assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
			close(c);
		}
		close(fd);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bind_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
