/*
 * curl-client.c — GET a URL over mutual TLS with a private key that stays
 * on its token, using libcurl and the tokengate embedding API
 * (tokengate.h). The key is opened once (one login); libcurl calls
 * CURLOPT_SSL_CTX_FUNCTION for each SSL_CTX it makes, and the callback
 * installs the key and its certificate there.
 *
 *   curl-client --key 'pkcs11:token=alice;object=api?pin-source=env:PIN' \
 *               [--cert FILE|pkcs11:URI] --cacert CA.pem [--requests N] URL
 *
 * Prints each response body on stdout, then on stderr one line
 * "curl-client: N request(s), HTTP CODE, token signatures: S". Exit
 * status: 0 when every response was 2xx, 1 when a request failed or was
 * answered otherwise, 2 on a usage error, 3 when the key cannot be used
 * (the message says why, e.g. an exportable key is refused).
 *
 * libcurl's SSL_CTX callback works with its OpenSSL backend only (Debian:
 * libcurl4-openssl-dev); the program checks and says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "tokengate.h"

#define USAGE                                                                                      \
	"usage: curl-client --key PKCS11-URI [--cert FILE|PKCS11-URI] --cacert FILE\n"             \
	"                   [--requests N] URL\n"                                                  \
	"  --key       the private key on its token (PIN from pin-source= or TOKENGATE_PIN)\n"     \
	"  --cert      its certificate (default: the token's certificate for the key)\n"           \
	"  --cacert    CA certificate(s) that verify the server\n"                                 \
	"  --requests  GET the URL N times on one handle (keep-alive; default 1)\n"                \
	"exit: 0 all 2xx, 1 request failed or not 2xx, 2 usage, 3 key unusable\n"

struct opts {
	const char *key, *cert, *cacert, *url;
	long requests;
};

/* CURLOPT_SSL_CTX_FUNCTION: the token key into libcurl's SSL_CTX. */
static CURLcode
ssl_ctx_cb(CURL *curl, void *sslctx, void *arg)
{
	char err[1024];
	CURLcode rc = CURLE_OK;

	(void)curl;
	if (tokengate_key_use(arg, sslctx, err, sizeof(err)) != TOKENGATE_OK) {
		fprintf(stderr, "curl-client: %s\n", err);
		rc = CURLE_SSL_CERTPROBLEM;
	}
	return rc;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	char *end;
	int i, r = 0;

	memset(o, 0, sizeof(*o));
	o->requests = 1;
	for (i = 1; i < argc && r == 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(USAGE, stdout);
			exit(0);
		} else if (i + 1 < argc && strcmp(argv[i], "--key") == 0) {
			o->key = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--cert") == 0) {
			o->cert = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--cacert") == 0) {
			o->cacert = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--requests") == 0) {
			o->requests = strtol(argv[++i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0' || o->requests < 1 ||
			    o->requests > 1000000)
				r = -1;
		} else if (argv[i][0] != '-' && o->url == NULL) {
			o->url = argv[i];
		} else {
			r = -1;
		}
	}
	if (o->key == NULL || o->cacert == NULL || o->url == NULL)
		r = -1;
	return r;
}

int
main(int argc, char **argv)
{
	const curl_version_info_data *vi;
	tokengate_key *key = NULL;
	CURL *h = NULL;
	struct opts o;
	char err[1024];
	long code = 0, i, ok = 0;
	CURLcode cr;
	int rc = 1;

	if (parse(argc, argv, &o) != 0) {
		fputs(USAGE, stderr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "curl-client: libcurl cannot start\n");
		return 1;
	}
	vi = curl_version_info(CURLVERSION_NOW);
	if (vi->ssl_version == NULL || strncmp(vi->ssl_version, "OpenSSL", 7) != 0) {
		fprintf(stderr,
		        "curl-client: libcurl uses %s, not OpenSSL: its SSL_CTX callback needs the "
		        "OpenSSL backend (Debian: libcurl4-openssl-dev)\n",
		        vi->ssl_version != NULL ? vi->ssl_version : "no TLS library");
		goto out;
	}
	/* inline signing: libcurl's loop does not handle SSL_ERROR_WANT_ASYNC */
	if (tokengate_key_open(o.key, o.cert, 0, &key, err, sizeof(err)) != TOKENGATE_OK) {
		fprintf(stderr, "curl-client: %s\n", err);
		rc = 3;
		goto out;
	}
	if ((h = curl_easy_init()) == NULL) {
		fprintf(stderr, "curl-client: libcurl cannot make a handle\n");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, o.url);
	curl_easy_setopt(h, CURLOPT_CAINFO, o.cacert);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, key);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	for (i = 0; i < o.requests; i++) {
		if ((cr = curl_easy_perform(h)) != CURLE_OK) {
			fprintf(stderr, "curl-client: %s: %s\n", o.url, curl_easy_strerror(cr));
			break;
		}
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (code < 200 || code > 299)
			break;
		ok++;
	}
	fflush(stdout);
	fprintf(stderr, "curl-client: %ld request(s), HTTP %ld, token signatures: %llu\n", ok, code,
	        (unsigned long long)tokengate_key_sign_count(key));
	rc = ok == o.requests ? 0 : 1;
out:
	curl_easy_cleanup(h);
	tokengate_key_free(key);
	curl_global_cleanup();
	return rc;
}
