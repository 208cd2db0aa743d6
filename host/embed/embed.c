/*
 * embed.c — the embedding API (tokengate.h) over tgtlskey (tg_tlskey.h):
 * stable names, plain error buffers and a small set of public codes, so a
 * program embedding tokengate depends on neither tokengate's internal
 * headers nor its error codes.
 */
#include "tokengate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tg_err.h"
#include "tg_tlskey.h"

struct tokengate_key {
	struct tg_tlskey *k;
};

/* The public code of a tg_err code. */
static int
code_of(int r)
{
	int c;

	switch (r) {
	case 0:
		c = TOKENGATE_OK;
		break;
	case TG_ERR_INVALID_ARG:
	case TG_ERR_URI:
	case TG_ERR_USAGE:
		c = TOKENGATE_ERR_INVALID;
		break;
	case TG_ERR_NOT_FOUND:
	case TG_ERR_CERT_MISMATCH:
	case TG_ERR_IO:
	case TG_ERR_CONFIG:
	case TG_ERR_FORMAT:
		c = TOKENGATE_ERR_CERT;
		break;
	case TG_ERR_TOKEN_NOT_FOUND:
	case TG_ERR_TOKEN_AMBIGUOUS:
	case TG_ERR_KEY_NOT_FOUND:
	case TG_ERR_KEY_AMBIGUOUS:
		c = TOKENGATE_ERR_NOT_FOUND;
		break;
	case TG_ERR_KEY_EXPORTABLE:
	case TG_ERR_POLICY:
		c = TOKENGATE_ERR_REFUSED;
		break;
	case TG_ERR_LOGIN:
	case TG_ERR_PIN_INCORRECT:
	case TG_ERR_PIN_LOCKED:
	case TG_ERR_PIN_BLOCKED:
	case TG_ERR_NO_PIN:
	case TG_ERR_PERMISSION:
		c = TOKENGATE_ERR_LOGIN;
		break;
	case TG_ERR_MODULE:
	case TG_ERR_PKCS11:
	case TG_ERR_PCSC:
	case TG_ERR_CARD_REMOVED:
		c = TOKENGATE_ERR_TOKEN;
		break;
	case TG_ERR_TLS:
	case TG_ERR_CRYPTO:
	case TG_ERR_UNSUPPORTED:
		c = TOKENGATE_ERR_TLS;
		break;
	default:
		c = TOKENGATE_ERR_INTERNAL;
		break;
	}
	return c;
}

static int
fail(int r, const struct tg_error *err, char *errbuf, size_t errlen)
{
	if (errbuf != NULL && errlen > 0)
		snprintf(errbuf, errlen, "%s", tg_error_msg(err, r));
	return code_of(r);
}

const char *
tokengate_strerror(int code)
{
	const char *s;

	switch (code) {
	case TOKENGATE_OK:
		s = "success";
		break;
	case TOKENGATE_ERR_INVALID:
		s = "invalid argument";
		break;
	case TOKENGATE_ERR_NOT_FOUND:
		s = "token or key not found";
		break;
	case TOKENGATE_ERR_REFUSED:
		s = "the key fails the trust check";
		break;
	case TOKENGATE_ERR_CERT:
		s = "certificate missing, unreadable or not the key's";
		break;
	case TOKENGATE_ERR_LOGIN:
		s = "login failed";
		break;
	case TOKENGATE_ERR_TOKEN:
		s = "the PKCS#11 module or token failed";
		break;
	case TOKENGATE_ERR_TLS:
		s = "OpenSSL refused the key or certificate";
		break;
	default:
		s = "internal error";
		break;
	}
	return s;
}

int
tokengate_key_open(const char *key_uri, const char *cert, unsigned flags, tokengate_key **key,
                   char *errbuf, size_t errlen)
{
	struct tg_tlskey_opts o;
	struct tokengate_key *tk = NULL;
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	memset(&o, 0, sizeof(o));
	if (key == NULL || (flags & ~(TOKENGATE_ASYNC | TOKENGATE_WATCH | TOKENGATE_ALLOW_IMPORTED |
	                              TOKENGATE_SERVER)) != 0) {
		r = tg_error_set(&err, TG_ERR_INVALID_ARG,
		                 "tokengate_key_open: %s; pass &key and TOKENGATE_* flags only",
		                 key == NULL ? "key is NULL" : "unknown flags");
		goto out;
	}
	*key = NULL;
	if ((tk = calloc(1, sizeof(*tk))) == NULL) {
		r = tg_error_set(&err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	o.key_uri = key_uri;
	o.cert = cert;
	o.flags = ((flags & TOKENGATE_ASYNC) ? TG_TLSKEY_ASYNC : 0) |
	          ((flags & TOKENGATE_WATCH) ? TG_TLSKEY_WATCH : 0) |
	          ((flags & TOKENGATE_ALLOW_IMPORTED) ? TG_TLSKEY_ALLOW_IMPORTED : 0);
	if ((r = tg_tlskey_open(&o, &tk->k, &err)) != 0)
		goto out;
	*key = tk;
	tk = NULL;
out:
	free(tk);
	return r == 0 ? TOKENGATE_OK : fail(r, &err, errbuf, errlen);
}

int
tokengate_key_use(tokengate_key *key, SSL_CTX *ctx, char *errbuf, size_t errlen)
{
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	if (key == NULL || ctx == NULL)
		r = tg_error_set(
		    &err, TG_ERR_INVALID_ARG,
		    "tokengate_key_use: %s is NULL; pass the key of tokengate_key_open "
		    "and the SSL_CTX to configure",
		    key == NULL ? "key" : "ctx");
	else
		r = tg_tlskey_ssl_ctx_use(key->k, ctx, &err);
	return r == 0 ? TOKENGATE_OK : fail(r, &err, errbuf, errlen);
}

uint64_t
tokengate_key_sign_count(const tokengate_key *key)
{
	return key != NULL ? tg_tlskey_sign_count(key->k) : 0;
}

int
tokengate_key_present(const tokengate_key *key)
{
	return key != NULL ? tg_tlskey_present(key->k) : 0;
}

void
tokengate_key_free(tokengate_key *key)
{
	if (key != NULL) {
		tg_tlskey_free(key->k);
		free(key);
	}
}

int
tokengate_ssl_ctx_configure(SSL_CTX *ctx, const char *key_uri, const char *cert, unsigned flags,
                            char *errbuf, size_t errlen)
{
	tokengate_key *key = NULL;
	int r;

	if ((r = tokengate_key_open(key_uri, cert, flags, &key, errbuf, errlen)) == TOKENGATE_OK)
		r = tokengate_key_use(key, ctx, errbuf, errlen);
	tokengate_key_free(key);
	return r;
}

int
tokengate_ssl_ctx_new(const char *key_uri, const char *cert, unsigned flags, SSL_CTX **ctx,
                      char *errbuf, size_t errlen)
{
	SSL_CTX *c = NULL;
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	if (ctx == NULL) {
		r = fail(tg_error_set(&err, TG_ERR_INVALID_ARG,
		                      "tokengate_ssl_ctx_new: ctx is NULL; pass &ctx"),
		         &err, errbuf, errlen);
		goto out;
	}
	*ctx = NULL;
	c = SSL_CTX_new((flags & TOKENGATE_SERVER) ? TLS_server_method() : TLS_client_method());
	if (c == NULL || SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
		ERR_clear_error();
		r = fail(tg_error_set(&err, TG_ERR_ALLOC, "out of memory (SSL_CTX_new)"), &err,
		         errbuf, errlen);
		goto out;
	}
	if ((r = tokengate_ssl_ctx_configure(c, key_uri, cert, flags, errbuf, errlen)) != 0)
		goto out;
	*ctx = c;
	c = NULL;
out:
	SSL_CTX_free(c);
	return r;
}
