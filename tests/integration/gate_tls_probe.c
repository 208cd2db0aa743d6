/*
 * gate_tls_probe.c — a TLS server on the gate's TLS configuration
 * (tg_gate_tls.h) for test_gate_tls.sh, driven by openssl s_client and
 * curl. It runs a non-blocking handshake loop like the gate's workers:
 * WANT_READ / WANT_WRITE on the socket, WANT_ASYNC on the job's wait fds
 * (SSL_get_all_async_fds), and counts the WANT_ASYNC pauses.
 *
 *   gate_tls_probe --cert FILE|URI --key FILE|URI --ca FILE [--ca FILE]...
 *                  [--crl FILE] [--tickets FILE] [--check]
 *                  [--ready FILE] [--count N] [--abandon N]
 *
 * --check builds the configuration, prints "ok async=0|1" and exits. Else
 * it listens on 127.0.0.1 (an ephemeral port, written to the --ready file
 * once listening) and serves --count connections (default: until
 * SIGTERM). Before each handshake the CRL is reloaded when its file
 * changed (tg_gate_tls_crl_reload; "crl: reloaded" / "crl: MESSAGE");
 * SIGHUP builds a new configuration from the same arguments (the ticket
 * key file read again; "reload: ok" / "reload: MESSAGE"), the old one
 * staying with the connections that hold it. Each connection prints one
 * line on stdout:
 *   accepted identity=URI level=L pin=P touch=T resumed=0|1 version=V async_pauses=N
 *   refused: REASON
 * and an accepted client gets "hello URI resumed=0|1\n" before the close.
 * --abandon N: the first N handshakes are dropped (SSL_free, close) at
 * their first WANT_ASYNC, as a gate drops a connection whose handshake
 * timed out while the token signs ("abandoned: SSL freed while its
 * signature was pending"); the signing thread must finish without
 * touching the freed SSL.
 * Exit 0; 2 when the configuration cannot be built ("load: MESSAGE").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tg_gate_tls.h"

#define MAX_CAS      8
#define HANDSHAKE_MS 20000
#define MAX_FDS      8

static volatile sig_atomic_t got_hup, got_term;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long abandon; /* --abandon: handshakes still to drop at WANT_ASYNC */

/* Waits for what SSL asked (err), until deadline. 0, or -1 on timeout,
 * -2 for a handshake --abandon drops. */
static int
wait_for(SSL *ssl, int fd, int err, long long deadline, int *pauses)
{
	struct pollfd p[MAX_FDS];
	OSSL_ASYNC_FD afds[MAX_FDS];
	size_t n = 0, i;
	long long left = deadline - now_ms();

	if (left <= 0)
		return -1;
	if (err == SSL_ERROR_WANT_ASYNC) {
		(*pauses)++;
		if (abandon > 0) {
			abandon--;
			return -2;
		}
		if (SSL_get_all_async_fds(ssl, NULL, &n) != 1 || n == 0 || n > MAX_FDS ||
		    SSL_get_all_async_fds(ssl, afds, &n) != 1)
			return -1;
		for (i = 0; i < n; i++) {
			p[i].fd = afds[i];
			p[i].events = POLLIN;
		}
	} else {
		p[0].fd = fd;
		p[0].events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		n = 1;
	}
	return poll(p, (nfds_t)n, (int)left) > 0 ? 0 : -1;
}

/* Runs op (handshake, write or shutdown) to completion on a non-blocking fd. */
static int
drive(SSL *ssl, int fd, int (*op)(SSL *, const void *, int), const void *buf, int len, int *pauses)
{
	long long deadline = now_ms() + HANDSHAKE_MS;
	int r, e, w;

	for (;;) {
		r = op(ssl, buf, len);
		if (r > 0)
			return r;
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE &&
		    e != SSL_ERROR_WANT_ASYNC)
			return -1;
		if ((w = wait_for(ssl, fd, e, deadline, pauses)) != 0)
			return w;
	}
}

static int
op_handshake(SSL *ssl, const void *buf, int len)
{
	(void)buf, (void)len;
	return SSL_do_handshake(ssl);
}

static int
op_write(SSL *ssl, const void *buf, int len)
{
	return SSL_write(ssl, buf, len);
}

/*
 * Half-closes fd and reads what the client still sends (its request,
 * its close_notify) until it closes, so close() sends no RST that would
 * cut the client's read of our answer.
 */
static void
linger_close(int fd)
{
	char buf[4096];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	long long deadline = now_ms() + 5000;

	shutdown(fd, SHUT_WR);
	while (now_ms() < deadline && poll(&p, 1, 100) >= 0) {
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
		    read(fd, buf, sizeof(buf)) <= 0 && errno != EAGAIN)
			break;
	}
}

static void
serve(struct tg_gate_tls *t, int fd)
{
	SSL *ssl = tg_gate_tls_ssl_new(t);
	struct tg_gate_peer_info peer;
	char msg[TG_GATE_ID_MAX + 64];
	int pauses = 0, resumed = 0, n;

	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		printf("refused: out of memory\n");
		goto out;
	}
	ERR_clear_error();
	if ((n = drive(ssl, fd, op_handshake, NULL, 0, &pauses)) < 0) {
		if (n == -2)
			printf("abandoned: SSL freed while its signature was pending\n");
		else {
			/* as a caller whose library consumed OpenSSL's error queue */
			ERR_clear_error();
			printf("refused: %s\n", tg_gate_tls_reject_reason(ssl));
		}
		goto out;
	}
	if (tg_gate_tls_peer(ssl, &peer, &resumed) != 0) {
		printf("refused: handshake done but no verified client (a bug)\n");
		goto out;
	}
	printf("accepted identity=%s level=%s pin=%s touch=%s resumed=%d version=%s "
	       "async_pauses=%d\n",
	       peer.identity, tg_prov_level_name(peer.prov.level),
	       tg_att_pin_name(peer.prov.pin_policy), tg_att_touch_name(peer.prov.touch_policy),
	       resumed, SSL_get_version(ssl), pauses);
	n = snprintf(msg, sizeof(msg), "hello %s resumed=%d\n", peer.identity, resumed);
	if (drive(ssl, fd, op_write, msg, n, &pauses) > 0) {
		SSL_shutdown(ssl); /* close_notify, best effort */
		linger_close(fd);
	}
out:
	fflush(stdout);
	SSL_free(ssl);
	close(fd);
}

struct opts {
	struct tg_gate_tls_cfg cfg;
	const char *cas[MAX_CAS];
	const char *ready;
	long count;
	int check;
};

static int
parse(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->count = -1;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
			o->cfg.cert = argv[++i];
		else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			o->cfg.key = argv[++i];
		else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc &&
		         o->cfg.nclient_ca < MAX_CAS)
			o->cas[o->cfg.nclient_ca++] = argv[++i];
		else if (strcmp(argv[i], "--crl") == 0 && i + 1 < argc)
			o->cfg.crl = argv[++i];
		else if (strcmp(argv[i], "--tickets") == 0 && i + 1 < argc)
			o->cfg.tickets = argv[++i];
		else if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
			o->ready = argv[++i];
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			o->count = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--abandon") == 0 && i + 1 < argc)
			abandon = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--check") == 0)
			o->check = 1;
		else
			return -1;
	}
	o->cfg.client_ca = o->cas;
	return o->cfg.cert == NULL || o->cfg.key == NULL || o->cfg.nclient_ca == 0 ? -1 : 0;
}

static int
listen_local(const char *ready)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char tmp[4096];
	FILE *f;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	if (ready != NULL) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
		if ((f = fopen(tmp, "w")) == NULL)
			return -1;
		fprintf(f, "%u\n", ntohs(a.sin_port));
		if (fclose(f) != 0 || rename(tmp, ready) != 0)
			return -1;
	}
	return fd;
}

static void
reload(const struct opts *o, struct tg_gate_tls **t)
{
	struct tg_gate_tls *nt = NULL;
	struct tg_error err = {0};

	if (tg_gate_tls_new(&o->cfg, &nt, &err) != 0) {
		printf("reload: %s\n", err.msg);
	} else {
		tg_gate_tls_unref(*t);
		*t = nt;
		printf("reload: ok\n");
	}
	fflush(stdout);
}

static void
crl_check(struct tg_gate_tls *t)
{
	struct tg_error err = {0};
	int reloaded = 0;

	if (tg_gate_tls_crl_reload(t, 0, &reloaded, &err) != 0)
		printf("crl: %s\n", err.msg);
	else if (reloaded)
		printf("crl: reloaded\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct tg_gate_tls *t = NULL;
	struct tg_error err = {0};
	struct sigaction sa;
	struct pollfd p;
	int lfd = -1, fd, rc = 2;
	long served = 0;

	if (parse(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: gate_tls_probe --cert FILE|URI --key FILE|URI --ca FILE... "
		                "[--crl FILE] [--tickets FILE] [--check] [--ready FILE] "
		                "[--count N] [--abandon N]\n");
		goto out;
	}
	if (tg_gate_tls_new(&o.cfg, &t, &err) != 0) {
		fprintf(stderr, "load: %s\n", err.msg);
		goto out;
	}
	if (o.check) {
		printf("ok async=%d\n", tg_gate_tls_async(t));
		rc = 0;
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = listen_local(o.ready)) < 0) {
		fprintf(stderr, "cannot listen on 127.0.0.1: %s\n", strerror(errno));
		goto out;
	}
	while (!got_term && (o.count < 0 || served < o.count)) {
		if (got_hup) {
			got_hup = 0;
			reload(&o, &t);
		}
		p.fd = lfd;
		p.events = POLLIN;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
			continue;
		crl_check(t);
		serve(t, fd);
		served++;
	}
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	tg_gate_tls_unref(t);
	return rc;
}
