/*
 * tg_test_tls.h — a TLS handshake in memory for the tests (header only):
 * a client and a server SSL joined by a BIO pair, driven in turns, with the
 * client's key possibly asynchronous (SSL_MODE_ASYNC, a tg_tlskey).
 */
#ifndef TG_TEST_TLS_H
#define TG_TEST_TLS_H

#include <poll.h>
#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

/*
 * Drives the handshake of the new client c and server s over a BIO pair
 * (the SSLs own it), in turns, up to 2000 rounds. Each SSL_ERROR_WANT_ASYNC
 * of the client counts in *pauses and is waited for on the job's wait fd
 * (up to wait_ms). r (may be NULL): the last SSL_do_handshake results of
 * the client and the server. Returns 1 when both sides finished, else 0;
 * the SSLs' errors are left on the queue for the caller.
 */
static inline int
tg_test_tls_handshake(SSL *c, SSL *s, int wait_ms, int *pauses, int r[2])
{
	BIO *bc = NULL, *bs = NULL;
	OSSL_ASYNC_FD fds[4];
	size_t nfd;
	struct pollfd pfd;
	int cr = 0, sr = 0, e, i;

	*pauses = 0;
	if (BIO_new_bio_pair(&bc, 0, &bs, 0) != 1)
		goto out;
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (i = 0; i < 2000 && (cr != 1 || sr != 1); i++) {
		if (cr != 1 && (cr = SSL_do_handshake(c)) != 1) {
			e = SSL_get_error(c, cr);
			if (e == SSL_ERROR_WANT_ASYNC) {
				(*pauses)++;
				nfd = 0;
				if (SSL_get_all_async_fds(c, NULL, &nfd) == 1 && nfd == 1 &&
				    SSL_get_all_async_fds(c, fds, &nfd) == 1) {
					pfd.fd = fds[0];
					pfd.events = POLLIN;
					(void)poll(&pfd, 1, wait_ms);
				}
			} else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				break;
			}
		}
		if (sr != 1 && (sr = SSL_do_handshake(s)) != 1) {
			e = SSL_get_error(s, sr);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				break;
		}
	}
out:
	if (r != NULL) {
		r[0] = cr;
		r[1] = sr;
	}
	return cr == 1 && sr == 1;
}

#endif
