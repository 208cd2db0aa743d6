/*
 * tlskey_probe.c — a tg_tlskey driven line by line, for
 * test_tlskey_sim.sh:
 *
 *   tlskey_probe KEY-URI [CERT] [--async] [--watch] [--allow-imported]
 *
 * Opens the key (prints "open ok present=P" or "open failed: MESSAGE" and
 * exits 1), then reads commands on stdin, one per line, answering one
 * line each:
 *   hs    a full TLS 1.3 handshake of a client with the key against an
 *         in-memory server that requires a client certificate (and so
 *         checks the CertificateVerify signature):
 *         "hs ok count=N pauses=P" or "hs failed count=N pauses=P"
 *   ev    the next presence event, waiting on the event fd up to 30 s:
 *         "ev removed|inserted|failed: MESSAGE" or "ev none"
 *   quit  exits 0
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tg_test_tls.h"
#include "tg_tlskey.h"

static int
accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok, (void)x;
	return 1; /* the chain is not under test; the signature is */
}

static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	if (c == NULL || k == NULL || x == NULL)
		goto fail;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"probe", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_set_pubkey(x, k) != 1 || X509_sign(x, k, EVP_sha256()) <= 0 ||
	    SSL_CTX_use_certificate(c, x) != 1 || SSL_CTX_use_PrivateKey(c, k) != 1)
		goto fail;
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
	SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
	goto out;
fail:
	SSL_CTX_free(c);
	c = NULL;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

/* 1 when both sides finished; *pauses: the client's WANT_ASYNC returns. */
static int
handshake(SSL_CTX *cctx, SSL_CTX *sctx, int *pauses)
{
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	int ok = 0;

	*pauses = 0;
	if (c == NULL || s == NULL)
		goto out;
	ok = tg_test_tls_handshake(c, s, 30000, pauses, NULL) &&
	     SSL_get0_peer_certificate(s) != NULL;
out:
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	return ok;
}

static const char *
ev_name(enum tg_tlskey_event ev)
{
	return ev == TG_TLSKEY_EV_REMOVED    ? "removed"
	       : ev == TG_TLSKEY_EV_INSERTED ? "inserted"
	                                     : "failed";
}

int
main(int argc, char **argv)
{
	struct tg_tlskey_opts o;
	struct tg_tlskey *k = NULL;
	struct tg_error err;
	SSL_CTX *cctx = NULL, *sctx = NULL;
	enum tg_tlskey_event ev;
	struct pollfd pfd;
	char line[64], msg[600];
	int i, pauses, rc = 1;

	memset(&o, 0, sizeof(o));
	tg_error_clear(&err);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--async") == 0)
			o.flags |= TG_TLSKEY_ASYNC;
		else if (strcmp(argv[i], "--watch") == 0)
			o.flags |= TG_TLSKEY_WATCH;
		else if (strcmp(argv[i], "--allow-imported") == 0)
			o.flags |= TG_TLSKEY_ALLOW_IMPORTED;
		else if (o.key_uri == NULL)
			o.key_uri = argv[i];
		else
			o.cert = argv[i];
	}
	if (o.key_uri == NULL) {
		fprintf(stderr, "usage: tlskey_probe KEY-URI [CERT] [--async] [--watch] "
		                "[--allow-imported]\n");
		return 2;
	}
	o.role = "client";
	if (tg_tlskey_open(&o, &k, &err) != 0) {
		printf("open failed: %s\n", err.msg);
		goto out;
	}
	if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL || (sctx = server_ctx()) == NULL ||
	    tg_tlskey_ssl_ctx_use(k, cctx, &err) != 0) {
		printf("open failed: %s\n", err.msg[0] ? err.msg : "OpenSSL");
		goto out;
	}
	printf("open ok present=%d\n", tg_tlskey_present(k));
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "hs") == 0) {
			i = handshake(cctx, sctx, &pauses);
			printf("hs %s count=%llu pauses=%d\n", i ? "ok" : "failed",
			       (unsigned long long)tg_tlskey_sign_count(k), pauses);
		} else if (strcmp(line, "ev") == 0) {
			pfd.fd = tg_tlskey_event_fd(k);
			pfd.events = POLLIN;
			if (pfd.fd >= 0 && poll(&pfd, 1, 30000) == 1 &&
			    tg_tlskey_event_next(k, &ev, msg, sizeof(msg)))
				printf("ev %s: %s\n", ev_name(ev), msg);
			else
				printf("ev none\n");
		} else if (strcmp(line, "quit") == 0) {
			break;
		}
	}
	rc = 0;
out:
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	tg_tlskey_free(k);
	return rc;
}
