/*
 * gate_verify_probe.c — runs one client certificate through the gate's
 * verifier (tg_gate_verify_peer) for test_gate_verify.sh.
 *
 *   gate_verify_probe --ca FILE [--ca FILE]... [--crl FILE] [--reload FILE]
 *                     [--chain FILE] [--now EPOCH] [--store-ctx] LEAF.pem
 *
 * --reload replaces the CRL after loading and prints the outcome on stderr
 * ("reload: ok" or "reload: MESSAGE"), then verifies with whichever CRL is
 * in use. --store-ctx goes through tg_gate_verify_store_ctx, as a TLS
 * verify callback would (an X509_STORE_CTX holding the leaf and chain and
 * an empty store). Prints "ok identity=... level=... pin=... touch=... serial=...
 * not_after=... sha256=..." and exits 0, or prints the refusal and exits 1;
 * 2 on a usage or file error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "tg_gate_verify.h"
#include "tg_hex.h"

#define MAX_CAS 8

static X509 *
read_cert(const char *path)
{
	X509 *c = NULL;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		c = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	return c;
}

int
main(int argc, char **argv)
{
	int rc = 2;
	const char *cas[MAX_CAS];
	size_t nca = 0;
	const char *crl = NULL, *reload = NULL, *chainf = NULL, *leaff = NULL;
	time_t now = time(NULL);
	struct tg_gate_verify *v = NULL;
	struct tg_gate_peer_info info;
	struct tg_error err = {0};
	X509 *leaf = NULL, *c = NULL;
	STACK_OF(X509) *chain = NULL;
	char hex[65];
	int i, via_ctx = 0;
	X509_STORE *empty = NULL;
	X509_STORE_CTX *sctx = NULL;
	int vrc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc && nca < MAX_CAS)
			cas[nca++] = argv[++i];
		else if (strcmp(argv[i], "--crl") == 0 && i + 1 < argc)
			crl = argv[++i];
		else if (strcmp(argv[i], "--reload") == 0 && i + 1 < argc)
			reload = argv[++i];
		else if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc)
			chainf = argv[++i];
		else if (strcmp(argv[i], "--store-ctx") == 0)
			via_ctx = 1;
		else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc)
			now = (time_t)strtoll(argv[++i], NULL, 10);
		else
			leaff = argv[i];
	}
	if (leaff == NULL || (leaf = read_cert(leaff)) == NULL) {
		fprintf(
		    stderr,
		    "usage: gate_verify_probe --ca FILE... [--crl FILE] [--reload FILE] "
		    "[--chain FILE] [--now EPOCH] [--store-ctx] LEAF.pem (a readable PEM leaf)\n");
		goto out;
	}
	if (chainf != NULL) {
		chain = sk_X509_new_null();
		c = read_cert(chainf);
		if (chain == NULL || c == NULL || !sk_X509_push(chain, c)) {
			X509_free(c);
			fprintf(stderr, "cannot read --chain %s\n", chainf);
			goto out;
		}
	}
	if (tg_gate_verify_new(cas, nca, crl, &v, &err) != 0) {
		fprintf(stderr, "load: %s\n", err.msg);
		goto out;
	}
	if (reload != NULL) {
		tg_error_clear(&err);
		if (tg_gate_verify_reload_crl(v, reload, &err) == 0)
			fprintf(stderr, "reload: ok\n");
		else
			fprintf(stderr, "reload: %s\n", err.msg);
	}
	tg_error_clear(&err);
	if (via_ctx) {
		empty = X509_STORE_new();
		sctx = X509_STORE_CTX_new();
		if (empty == NULL || sctx == NULL ||
		    !X509_STORE_CTX_init(sctx, empty, leaf, chain)) {
			fprintf(stderr, "cannot set up an X509_STORE_CTX\n");
			goto out;
		}
		vrc = tg_gate_verify_store_ctx(v, sctx, now, &info, &err);
	} else {
		vrc = tg_gate_verify_peer(v, leaf, chain, now, &info, &err);
	}
	if (vrc != 0) {
		fprintf(stderr, "refused: %s\n", tg_error_msg(&err, err.code));
		rc = 1;
		goto out;
	}
	tg_hex_encode(info.sha256, sizeof(info.sha256), hex, sizeof(hex));
	printf("ok identity=%s level=%s pin=%s touch=%s serial=%s not_after=%" PRId64
	       " sha256=%s\n",
	       info.identity, tg_prov_level_name(info.prov.level),
	       tg_att_pin_name(info.prov.pin_policy), tg_att_touch_name(info.prov.touch_policy),
	       info.prov.serial, (int64_t)info.not_after, hex);
	rc = 0;
out:
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(empty);
	tg_gate_verify_free(v);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	return rc;
}
