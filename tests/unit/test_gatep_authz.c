/*
 * test_gatep_authz.c — what test_gate_authz.c leaves of the gate's authz
 * mode (authz.c, gate-int.h): the unix socket an authz listener opens
 * (a fresh path, a stale socket replaced, a live one, a file, a missing
 * directory, a group that does not exist), the refusals of a subrequest's
 * headers and of NULL arguments, and the escape decoder's hex digits and
 * the newlines it allows after the END line.
 */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "gate-int.h"
#include "gate_authz_pki.h"
#include "tg_test.h"

static char dir[128];
static char p_ca[256];
static struct tg_gate_verify *verifier;
static struct tg_gate_policy pol;

static const char policy_text[] = "routes:\n"
                                  "  - name: all\n"
                                  "    paths: [\"/**\"]\n"
                                  "    allow: [{identity: \"spiffe://example.org/dev/*\"}]\n";

static int
setup(void **state)
{
	struct tg_error err;
	FILE *f;

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-gatep-authz", dir, sizeof(dir)), 0);
	snprintf(p_ca, sizeof(p_ca), "%s/ca.pem", dir);
	assert_non_null(f = fopen(p_ca, "w"));
	fputs(GA_CA_PEM, f);
	fclose(f);
	tg_error_clear(&err);
	if (tg_gate_verify_new((const char *const[]){p_ca}, 1, NULL, &verifier, &err) != 0)
		fail_msg("verifier: %s", err.msg);
	if (tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "p.yaml", &pol, &err) != 0)
		fail_msg("policy: %s", err.msg);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tg_gate_verify_free(verifier);
	tg_gate_policy_clear(&pol);
	tg_test_tmpdir_remove(dir);
	return 0;
}

/* ---- the unix socket ---- */

/* An authz listener "az" on unix:path, with group g (NULL: none). */
static void
lcfg(struct tg_gate_listener_cfg *l, const char *path, const char *g)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "az");
	l->mode = TG_GATE_MODE_AUTHZ;
	l->addr.scheme = TG_GATE_SCHEME_UNIX;
	assert_true(strlen(path) < sizeof(l->addr.path));
	memcpy(l->addr.path, path, strlen(path) + 1);
	l->group = (char *)g;
}

/* A unix socket bound at path, listening or not; its fd. */
static int
bound(const char *path, int listening)
{
	struct sockaddr_un sa;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(s >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listening)
		assert_int_equal(listen(s, 1), 0);
	return s;
}

/* The socket listens: a client connects. */
static void
assert_listens(const char *path)
{
	struct sockaddr_un sa;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(s >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
}

static void
test_listen_unix_fresh(void **state)
{
	struct tg_gate_listener_cfg l;
	struct tg_error err;
	struct stat st;
	char path[200];
	struct group *g = getgrgid(getgid());
	evutil_socket_t fd = -7;

	(void)state;
	assert_non_null(g);
	snprintf(path, sizeof(path), "%s/fresh.sock", dir);
	lcfg(&l, path, g->gr_name);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), 0);
	assert_string_equal(err.msg, "");
	assert_true(fd >= 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, g->gr_gid);
	assert_listens(path);
	/* the same path again: something answers there now */
	{
		evutil_socket_t fd2 = -7;
		char msg[512];

		lcfg(&l, path, NULL);
		assert_int_equal(tg_gate_authz_listen_unix(&l, &fd2, &err), TG_ERR_IO);
		assert_int_equal(fd2, -1);
		snprintf(msg, sizeof(msg),
		         "listener 'az': something already answers on %s; stop it or choose "
		         "another path",
		         path);
		assert_string_equal(err.msg, msg);
	}
	close(fd);
	assert_int_equal(unlink(path), 0);
}

static void
test_listen_unix_stale(void **state)
{
	struct tg_gate_listener_cfg l;
	struct tg_error err;
	struct stat st;
	char path[200];
	evutil_socket_t fd = -7;
	int old;

	(void)state;
	/* a socket file from a gate that died (bound, nobody listens): replaced */
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	old = bound(path, 0);
	close(old);
	assert_int_equal(chmod(path, 0777), 0);
	lcfg(&l, path, NULL);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), 0);
	assert_string_equal(err.msg, "");
	assert_true(fd >= 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_listens(path);
	close(fd);
	assert_int_equal(unlink(path), 0);
}

static void
test_listen_unix_refused(void **state)
{
	struct tg_gate_listener_cfg l;
	struct tg_error err;
	struct stat st;
	char path[200], msg[600];
	evutil_socket_t fd = -7;
	FILE *f;
	int live;

	(void)state;
	/* a regular file at the path: left alone */
	snprintf(path, sizeof(path), "%s/file.sock", dir);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	lcfg(&l, path, NULL);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), TG_ERR_IO);
	assert_int_equal(fd, -1);
	snprintf(msg, sizeof(msg),
	         "listener 'az': %s exists and is not a socket; remove it or choose another path",
	         path);
	assert_string_equal(err.msg, msg);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* a path under that regular file cannot even be looked at */
	{
		char under[256];

		snprintf(under, sizeof(under), "%s/x.sock", path);
		lcfg(&l, under, NULL);
		fd = -7;
		assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), TG_ERR_IO);
		assert_int_equal(fd, -1);
		snprintf(
		    msg, sizeof(msg),
		    "listener 'az': %s exists and is not a socket; remove it or choose another "
		    "path",
		    under);
		assert_string_equal(err.msg, msg);
	}
	assert_int_equal(unlink(path), 0);
	/* a socket something listens on: left alone */
	snprintf(path, sizeof(path), "%s/live.sock", dir);
	live = bound(path, 1);
	lcfg(&l, path, NULL);
	fd = -7;
	assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), TG_ERR_IO);
	assert_int_equal(fd, -1);
	snprintf(msg, sizeof(msg),
	         "listener 'az': something already answers on %s; stop it or choose another path",
	         path);
	assert_string_equal(err.msg, msg);
	assert_listens(path);
	close(live);
	assert_int_equal(unlink(path), 0);
	/* a directory that does not exist: bind fails, nothing is made */
	snprintf(path, sizeof(path), "%s/no-such-dir/az.sock", dir);
	lcfg(&l, path, NULL);
	fd = -7;
	assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), TG_ERR_IO);
	assert_int_equal(fd, -1);
	snprintf(msg, sizeof(msg),
	         "listener 'az': cannot bind %s: %s; check that its directory exists and the "
	         "gate may write there",
	         path, strerror(ENOENT));
	assert_string_equal(err.msg, msg);
	/* a group that does not exist: refused before anything is made */
	snprintf(path, sizeof(path), "%s/group.sock", dir);
	lcfg(&l, path, "tg-no-such-group-x");
	fd = -7;
	assert_int_equal(tg_gate_authz_listen_unix(&l, &fd, &err), TG_ERR_CONFIG);
	assert_int_equal(fd, -1);
	assert_string_equal(err.msg, "listener 'az': group 'tg-no-such-group-x' does not exist; "
	                             "create it or name the group nginx's worker runs as");
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* only the CA file is left in the directory */
	assert_int_equal(tg_test_dir_count(dir), 1);
}

/* ---- the subrequest's headers and arguments ---- */

static void
in_of(struct tg_gate_authz_in *in, const char *cert, const char *method, const char *uri)
{
	memset(in, 0, sizeof(*in));
	in->cert = cert;
	in->ncert = cert != NULL;
	in->method = method;
	in->nmethod = method != NULL;
	in->uri = uri;
	in->nuri = uri != NULL;
}

#define NEED_METHOD                                                                                \
	"the subrequest needs exactly one X-Original-Method header holding the request's "         \
	"method (proxy_set_header X-Original-Method $request_method)"
#define NEED_URI                                                                                   \
	"the subrequest needs exactly one X-Original-URI header holding the request's URI "        \
	"(proxy_set_header X-Original-URI $request_uri)"

/* A refusal of the headers: 0, denied, nothing verified or looked up. */
static void
assert_headers_refused(const struct tg_gate_authz_in *in, const char *reason)
{
	struct tg_gate_authz_out *o = malloc(sizeof(*o));

	assert_non_null(o);
	memset(o, 0x5a, sizeof(*o));
	assert_int_equal(tg_gate_authz_evaluate(verifier, NULL, 1, &pol, in, GA_NOW, o), 0);
	assert_string_equal(o->reason, reason);
	assert_false(o->allow);
	assert_false(o->verified);
	assert_int_equal(o->cache_hit, -1);
	assert_int_equal(o->route, -1);
	assert_string_equal(o->method, "");
	assert_string_equal(o->path, "");
	assert_string_equal(o->peer.identity, "");
	free(o);
}

static void
test_evaluate_headers(void **state)
{
	struct tg_gate_authz_in in;
	char *alice = ga_escape(GA_ALICE_PEM, 0);

	(void)state;
	in_of(&in, alice, NULL, "/x");
	assert_headers_refused(&in, NEED_METHOD);
	in_of(&in, alice, "GET", "/x");
	in.nmethod = 2;
	assert_headers_refused(&in, NEED_METHOD);
	in_of(&in, alice, "", "/x");
	assert_headers_refused(&in, NEED_METHOD);
	in_of(&in, alice, "GET POST", "/x");
	assert_headers_refused(&in, NEED_METHOD);
	in_of(&in, alice, "ABCDEFGHIJKLMNOPQRSTUVWX", "/x"); /* 24 bytes: one too many */
	assert_headers_refused(&in, NEED_METHOD);
	in_of(&in, alice, "GET", NULL);
	assert_headers_refused(&in, NEED_URI);
	in_of(&in, alice, "GET", "");
	assert_headers_refused(&in, NEED_URI);
	in_of(&in, alice, "GET", "/x");
	in.nuri = 2;
	assert_headers_refused(&in, NEED_URI);
	/* a count of one with no value, and an empty value: no certificate */
	in_of(&in, NULL, "GET", "/x");
	in.ncert = 1;
	assert_headers_refused(&in, "no client certificate: the gate requires a token-backed "
	                            "client certificate");
	in_of(&in, "", "GET", "/x");
	assert_headers_refused(&in, "no client certificate: the gate requires a token-backed "
	                            "client certificate");
	/* the longest method that fits is taken */
	{
		struct tg_gate_authz_out *o = malloc(sizeof(*o));

		assert_non_null(o);
		in_of(&in, alice, "ABCDEFGHIJKLMNOPQRSTUVW", "/x");
		assert_int_equal(tg_gate_authz_evaluate(verifier, NULL, 1, &pol, &in, GA_NOW, o),
		                 0);
		assert_string_equal(o->method, "ABCDEFGHIJKLMNOPQRSTUVW");
		assert_true(o->verified);
		assert_true(o->allow);
		assert_int_equal(o->cache_hit, 0); /* no cache: verified, counted as a miss */
		free(o);
	}
	free(alice);
}

static void
test_evaluate_null(void **state)
{
	struct tg_gate_authz_in in;
	struct tg_gate_authz_out *o = malloc(sizeof(*o));

	(void)state;
	assert_non_null(o);
	in_of(&in, "x", "GET", "/");
	assert_int_equal(tg_gate_authz_evaluate(verifier, NULL, 1, &pol, &in, GA_NOW, NULL),
	                 TG_ERR_INVALID_ARG);
	memset(o, 0x5a, sizeof(*o));
	assert_int_equal(tg_gate_authz_evaluate(NULL, NULL, 1, &pol, &in, GA_NOW, o),
	                 TG_ERR_INVALID_ARG);
	assert_string_equal(o->reason, "the gate has no verifier or policy");
	assert_false(o->allow || o->verified);
	assert_int_equal(o->route, -1);
	assert_int_equal(o->cache_hit, -1);
	memset(o, 0x5a, sizeof(*o));
	assert_int_equal(tg_gate_authz_evaluate(verifier, NULL, 1, NULL, &in, GA_NOW, o),
	                 TG_ERR_INVALID_ARG);
	assert_string_equal(o->reason, "the gate has no verifier or policy");
	memset(o, 0x5a, sizeof(*o));
	assert_int_equal(tg_gate_authz_evaluate(verifier, NULL, 1, &pol, NULL, GA_NOW, o),
	                 TG_ERR_INVALID_ARG);
	assert_string_equal(o->reason, "the gate has no verifier or policy");
	assert_string_equal(o->path, "");
	free(o);
	/* the cache's NULLs: nothing found, nothing stored */
	{
		uint8_t key[32] = {1};
		struct tg_gate_authz_cache *c = tg_gate_authz_cache_new();

		assert_non_null(c);
		assert_null(tg_gate_authz_cache_get(NULL, key, 1, GA_NOW));
		tg_gate_authz_cache_put(NULL, NULL);
		tg_gate_authz_cache_put(c, NULL);
		assert_null(tg_gate_authz_cache_get(c, key, 1, GA_NOW));
		tg_gate_authz_cache_free(c);
		tg_gate_authz_cache_free(NULL);
	}
}

/* ---- the escape decoder ---- */

static int
decode(const char *s, uint8_t **der, size_t *len, const char **why)
{
	size_t n = strlen(s);
	char *copy = malloc(n > 0 ? n : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, s, n);
	r = tg_gate_authz_cert_der(copy, n, der, len, why);
	free(copy);
	return r;
}

static void
test_decode_hex_digits(void **state)
{
	static const struct {
		const char *esc;
		const char *why;
	} bad[] = {
	    {"%!0", "a '%' not followed by two hex digits"},
	    {"%:0", "a '%' not followed by two hex digits"},
	    {"%g0", "a '%' not followed by two hex digits"},
	    {"%0g", "a '%' not followed by two hex digits"},
	    {"%0:", "a '%' not followed by two hex digits"},
	    {"A!", "a raw byte other than letters, digits, '-', '.', '_' and '~'"},
	    {"A/", "a raw byte other than letters, digits, '-', '.', '_' and '~'"},
	    {"A{", "a raw byte other than letters, digits, '-', '.', '_' and '~'"},
	    {"A%7f", "the decoded text holds a control or non-ASCII byte"},
	    {"az09-._~", "it does not start with -----BEGIN CERTIFICATE-----"},
	    {"%2d%2D%41%61", "it does not start with -----BEGIN CERTIFICATE-----"},
	};
	uint8_t *der, *want = NULL;
	size_t len, wlen, i;
	const char *why;
	char *e, *pem;
	BIO *b;
	X509 *x;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		der = (uint8_t *)"x";
		len = 7;
		why = NULL;
		if (decode(bad[i].esc, &der, &len, &why) != TG_ERR_FORMAT)
			fail_msg("case %zu accepted: %s", i, bad[i].esc);
		assert_null(der);
		assert_int_equal(len, 0);
		if (why == NULL || strstr(why, bad[i].why) == NULL)
			fail_msg("case %zu: why '%s', want '%s'", i, why ? why : "(null)",
			         bad[i].why);
	}
	/* lower-case escapes and newlines after the END line decode to the DER */
	b = BIO_new_mem_buf(GA_ALICE_PEM, -1);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(x);
	wlen = (size_t)i2d_X509(x, &want);
	pem = malloc(strlen(GA_ALICE_PEM) + 4);
	assert_non_null(pem);
	snprintf(pem, strlen(GA_ALICE_PEM) + 4, "%s\n\n\n", GA_ALICE_PEM);
	e = ga_escape(pem, 1);
	der = NULL;
	assert_int_equal(decode(e, &der, &len, &why), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(der, want, wlen);
	free(der);
	free(e);
	/* ... but not newlines and then text */
	snprintf(pem, strlen(GA_ALICE_PEM) + 4, "%s\n\nx", GA_ALICE_PEM);
	e = ga_escape(pem, 1);
	der = (uint8_t *)"x";
	why = NULL;
	assert_int_equal(decode(e, &der, &len, &why), TG_ERR_FORMAT);
	assert_null(der);
	assert_string_equal(why, "text after the END CERTIFICATE line");
	free(e);
	free(pem);
	OPENSSL_free(want);
	X509_free(x);
	BIO_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen_unix_fresh),   cmocka_unit_test(test_listen_unix_stale),
	    cmocka_unit_test(test_listen_unix_refused), cmocka_unit_test(test_evaluate_headers),
	    cmocka_unit_test(test_evaluate_null),       cmocka_unit_test(test_decode_hex_digits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
