/*
 * fuzz_gate_authz.c — fuzz target of the gate's authz mode (authz.c): the
 * input is the subrequest nginx would send, raw bytes through the strict
 * HTTP reader (tg_gate_http.h); each head's X-Tokengate-Client-Cert,
 * X-Original-Method and X-Original-URI are decoded, the certificate
 * verified against a fixed CA (tests/lib/gate_authz_pki.h) through a cache
 * kept across inputs, the URI normalized and decided under a fixed policy.
 *
 * Invariants, each aborting when broken: every outcome has a reason; an
 * allow has exactly one certificate header, a verified certificate that is
 * the CA's one leaf (alice), a route and a normalized path; an unverified
 * outcome carries no identity; asking again gives the same outcome, from
 * the cache whenever the certificate was decoded; a decoded certificate's
 * DER is within TG_GATE_AUTHZ_DER_MAX and its header decodes the same way
 * twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate-int.h"
#include "gate_authz_pki.h"
#include "tg_fuzz.h"

static const char policy_text[] =
    "routes:\n"
    "  - name: completions\n"
    "    methods: [POST]\n"
    "    paths: [\"/v1/chat/completions\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/*\", key: device-attested}]\n"
    "  - name: admin\n"
    "    paths: [\"/admin/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/svc/root\"}]\n"
    "  - name: rest\n"
    "    paths: [\"/**\"]\n"
    "    allow: [{identity: \"spiffe://example.org/dev/alice\"}]\n";

struct fz {
	struct tg_gate_verify *v;
	struct tg_gate_policy pol;
	struct tg_gate_authz_cache *cache;
	struct tg_gate_authz_out a, b;
};

static struct fz *
fz_get(void)
{
	static struct fz *z;
	char path[] = "/tmp/tg-fuzz-authz-XXXXXX";
	struct tg_error err;
	FILE *f;
	int fd;

	if (z != NULL)
		return z;
	check((z = calloc(1, sizeof(*z))) != NULL);
	check((fd = mkstemp(path)) >= 0);
	check((f = fdopen(fd, "w")) != NULL);
	check(fputs(GA_CA_PEM, f) >= 0);
	check(fclose(f) == 0);
	check(tg_gate_verify_new((const char *const[]){path}, 1, NULL, &z->v, &err) == 0);
	unlink(path);
	check(tg_gate_policy_parse(policy_text, sizeof(policy_text) - 1, "fuzz.yaml", &z->pol,
	                           &err) == 0);
	check((z->cache = tg_gate_authz_cache_new()) != NULL);
	return z;
}

static void
check_outcome(const struct tg_gate_authz_in *in, const struct tg_gate_authz_out *o)
{
	check(o->reason[0] != '\0');
	if (o->allow) {
		check(in->ncert == 1 && in->nmethod == 1 && in->nuri == 1);
		check(o->verified);
		check(o->route >= 0);
		check(o->path[0] == '/');
	}
	if (o->verified)
		check(strcmp(o->peer.identity, "spiffe://example.org/dev/alice") == 0);
	else
		check(o->peer.identity[0] == '\0');
	if (in->ncert != 1)
		check(!o->verified && o->cache_hit == -1);
}

static int
on_head(void *arg, const struct tg_gate_http_head *h)
{
	struct fz *z = arg;
	struct tg_gate_authz_in in;
	uint8_t *d1 = NULL, *d2 = NULL;
	size_t n1 = 0, n2 = 0;
	const char *why = NULL;

	tg_gate_authz_in_from_head(h, &in);
	check(tg_gate_authz_evaluate(z->v, z->cache, 1, &z->pol, &in, GA_NOW, &z->a) == 0);
	check_outcome(&in, &z->a);
	check(tg_gate_authz_evaluate(z->v, z->cache, 1, &z->pol, &in, GA_NOW, &z->b) == 0);
	check_outcome(&in, &z->b);
	check(z->a.allow == z->b.allow && z->a.verified == z->b.verified);
	check(strcmp(z->a.reason, z->b.reason) == 0);
	check(z->b.cache_hit == (z->a.cache_hit >= 0 ? 1 : -1));
	if (in.cert != NULL) {
		if (tg_gate_authz_cert_der(in.cert, strlen(in.cert), &d1, &n1, &why) == 0) {
			check(n1 > 0 && n1 <= TG_GATE_AUTHZ_DER_MAX);
			check(tg_gate_authz_cert_der(in.cert, strlen(in.cert), &d2, &n2, &why) ==
			      0);
			check(n1 == n2 && memcmp(d1, d2, n1) == 0);
		} else {
			check(why != NULL && d1 == NULL && n1 == 0);
		}
	}
	free(d1);
	free(d2);
	return 0;
}

static int
on_body(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

static int
on_end(void *arg)
{
	(void)arg;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *z = fz_get();
	struct tg_gate_http_limits lim = {8192, 32768, 100};
	struct tg_gate_http_reader *rd = NULL;
	struct tg_gate_http_error e;
	struct tg_error err;
	size_t used = 0;

	check(tg_gate_http_reader_new(TG_GATE_HTTP_REQUEST, &lim,
	                              &(struct tg_gate_http_cb){on_head, on_body, on_end}, z, &rd,
	                              &err) == 0);
	(void)tg_gate_http_reader_feed(rd, (const char *)data, size, &used, &e);
	tg_gate_http_reader_free(rd);
	return 0;
}
