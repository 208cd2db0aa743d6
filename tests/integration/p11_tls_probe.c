/*
 * p11_tls_probe.c — a TLS client or server whose key is a token key
 * (libtgp11: tg_p11_key_find + tg_p11_ssl_ctx_use_key), for the shell test
 * that runs it against `openssl s_server` / `openssl s_client`.
 *
 *   p11_tls_probe client URI HOST PORT CAFILE TLSVER
 *   p11_tls_probe server URI PORT CAFILE TLSVER READYFILE
 *
 * TLSVER is 1.2 or 1.3. Prints one line "ok version=... local_sig=..." on
 * success (local_sig: the signature the token made in the handshake), exit
 * 0; a message and exit 1 otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tg_p11.h"

static const char *
sig_name(SSL *ssl)
{
	int nid = NID_undef;

	if (SSL_get_signature_type_nid(ssl, &nid) != 1)
		return "none";
	switch (nid) {
	case EVP_PKEY_RSA_PSS:
		return "RSA-PSS";
	case EVP_PKEY_RSA:
		return "RSA-PKCS1";
	case EVP_PKEY_EC:
		return "ECDSA";
	default:
		return OBJ_nid2sn(nid);
	}
}

/* TG_PROBE_ALLOW_IMPORTED=1: accept keys of unknown origin (a card behind
 * OpenSC, whose evidence this probe does not read). */
static unsigned
key_flags(void)
{
	const char *v = getenv("TG_PROBE_ALLOW_IMPORTED");

	return v != NULL && strcmp(v, "1") == 0 ? TG_P11_KEY_ALLOW_IMPORTED : 0;
}

static int
ctx_setup(SSL_CTX *ctx, const char *ver, const char *cafile)
{
	int v = strcmp(ver, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;

	return SSL_CTX_set_min_proto_version(ctx, v) == 1 &&
	       SSL_CTX_set_max_proto_version(ctx, v) == 1 &&
	       SSL_CTX_load_verify_locations(ctx, cafile, NULL) == 1;
}

int
main(int argc, char **argv)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	struct sockaddr_in sa;
	int fd = -1, lfd = -1, one = 1, server, rc = 1, n;
	char buf[512];
	FILE *f;

	if (argc < 7 || (strcmp(argv[1], "client") != 0 && strcmp(argv[1], "server") != 0)) {
		fprintf(stderr, "usage: see the comment at the top of p11_tls_probe.c\n");
		return 2;
	}
	server = strcmp(argv[1], "server") == 0;
	tg_error_clear(&err);
	if (tg_p11_new(&p, &err) != 0 || tg_p11_key_find(p, argv[2], key_flags(), &k, &err) != 0) {
		fprintf(stderr, "probe: %s\n", err.msg);
		goto out;
	}
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL ||
	    !ctx_setup(ctx, server ? argv[5] : argv[6], server ? argv[4] : argv[5])) {
		fprintf(stderr, "probe: TLS setup failed\n");
		goto out;
	}
	if (tg_p11_ssl_ctx_use_key(ctx, k, NULL, &err) != 0) {
		fprintf(stderr, "probe: %s\n", err.msg);
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (server) {
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)strtoul(argv[3], NULL, 10));
		if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0) {
			perror("probe: listen");
			goto out;
		}
		if ((f = fopen(argv[6], "w")) != NULL)
			fclose(f);
		if ((fd = accept(lfd, NULL, NULL)) < 0) {
			perror("probe: accept");
			goto out;
		}
	} else {
		sa.sin_port = htons((uint16_t)strtoul(argv[4], NULL, 10));
		if (inet_pton(AF_INET, argv[3], &sa.sin_addr) != 1 ||
		    (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			perror("probe: connect");
			goto out;
		}
	}
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    (server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
		fprintf(stderr, "probe: handshake failed: %s\n",
		        ERR_reason_error_string(ERR_peek_last_error()));
		goto out;
	}
	if (server) {
		n = SSL_read(ssl, buf, sizeof(buf) - 1);
		SSL_write(ssl, "hello from the token\n", 21);
	} else {
		SSL_write(ssl, "GET / HTTP/1.0\r\n\r\n", 18);
		n = SSL_read(ssl, buf, sizeof(buf) - 1);
		if (n <= 0 || strncmp(buf, "HTTP/1.0 200", 12) != 0) {
			fprintf(stderr, "probe: no HTTP answer from the server\n");
			goto out;
		}
	}
	(void)n;
	printf("ok version=%s local_sig=%s\n", SSL_get_version(ssl), sig_name(ssl));
	SSL_shutdown(ssl);
	rc = 0;
out:
	ERR_print_errors_fp(stderr);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}
