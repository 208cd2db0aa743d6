/*
 * tlskey_standin.c — a stand-in for host/tlskey (tg_tlskey.h) used only
 * while that library is not in the tree: the same key lookup and trust
 * check through libtgp11, signatures made inline (no ASYNC), no presence
 * events, no signature count. Removed once tgtlskey lands.
 */
#include "tg_tlskey.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "tg_p11.h"

struct tg_tlskey {
	struct tg_p11 *p;
	struct tg_p11_key *k;
	X509 *cert;
	char *uri;
};

int
tg_tlskey_open(const struct tg_tlskey_opts *o, struct tg_tlskey **out, struct tg_error *err)
{
	struct tg_tlskey *k = calloc(1, sizeof(*k));
	FILE *f = NULL;
	int r;

	if (k == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	k->uri = tg_p11_uri_mask(o->key_uri);
	if ((r = tg_p11_new(&k->p, err)) != 0 ||
	    (r = tg_p11_key_find(k->p, o->key_uri,
	                         (o->flags & TG_TLSKEY_ALLOW_IMPORTED) ? TG_P11_KEY_ALLOW_IMPORTED
	                                                               : 0,
	                         &k->k, err)) != 0)
		goto out;
	if (o->cert == NULL || o->cert[0] == '\0' || strncmp(o->cert, "pkcs11:", 7) == 0) {
		if ((r = tg_p11_key_cert_get(k->k, &k->cert, err)) != 0)
			goto out;
	} else if ((f = fopen(o->cert, "r")) == NULL ||
	           (k->cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		r = tg_error_set(err, TG_ERR_IO, "--cert %s: no PEM certificate could be read",
		                 o->cert);
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	tg_tlskey_free(k);
	return r;
}

int
tg_tlskey_ssl_ctx_use(struct tg_tlskey *k, SSL_CTX *ctx, struct tg_error *err)
{
	return tg_p11_ssl_ctx_use_key(ctx, k->k, k->cert, err);
}

X509 *
tg_tlskey_cert(const struct tg_tlskey *k)
{
	return k->cert;
}

const char *
tg_tlskey_uri(const struct tg_tlskey *k)
{
	return k->uri != NULL ? k->uri : "pkcs11:";
}

uint64_t
tg_tlskey_sign_count(const struct tg_tlskey *k)
{
	(void)k;
	return 0;
}

int
tg_tlskey_present(const struct tg_tlskey *k)
{
	(void)k;
	return 1;
}

int
tg_tlskey_event_fd(const struct tg_tlskey *k)
{
	(void)k;
	return -1;
}

int
tg_tlskey_event_next(struct tg_tlskey *k, enum tg_tlskey_event *ev, char *msg, size_t cap)
{
	(void)k;
	(void)ev;
	(void)msg;
	(void)cap;
	return 0;
}

void
tg_tlskey_free(struct tg_tlskey *k)
{
	if (k == NULL)
		return;
	X509_free(k->cert);
	tg_p11_key_free(k->k); /* SSL_CTXs hold their own EVP_PKEY reference (tgp11) */
	tg_p11_free(k->p);
	free(k->uri);
	free(k);
}
