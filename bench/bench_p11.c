/*
 * bench_p11.c — signatures per second through libtgp11 (EVP_DigestSign on
 * the EVP_PKEY of tg_p11_key_evp: SHA-256 in OpenSSL, then libp11's
 * C_SignInit + C_Sign) against direct C_SignInit + C_Sign calls (SHA-256
 * computed the same way) on the same SoftHSM2 key in the same run, with 1
 * and 2 threads. Prints ratios, never asserts on time.
 *
 *   bench_p11 [SECONDS] [KEY-URI...]
 *
 * Run inside tests/lib/with-softhsm.sh (token tg-test, keys p256, rsa2048);
 * the default URIs name SoftHSM2 by module-path ($TG_SOFTHSM2_MODULE) so
 * both paths go to the same module instance.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#include "tg_p11.h"

#define MSG         "tokengate bench message"
#define MAX_THREADS 2

/* DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1): CKM_RSA_PKCS signs
 * DigestInfo, as libp11 does for PKCS#1 v1.5 */
static const unsigned char sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};

struct job {
	int direct;
	EVP_PKEY *pk;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
	int rsa;
	double secs;
	long count;
	int failed;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
sign_evp(struct job *j)
{
	unsigned char sig[1024];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	int ok = mc != NULL && EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, j->pk) == 1 &&
	         EVP_DigestSign(mc, sig, &sl, (const unsigned char *)MSG, strlen(MSG)) == 1;

	EVP_MD_CTX_free(mc);
	return ok;
}

static int
sign_direct(struct job *j, CK_SESSION_HANDLE s)
{
	unsigned char in[sizeof(sha256_prefix) + SHA256_DIGEST_LENGTH], sig[1024];
	CK_MECHANISM m = {j->rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0};
	CK_ULONG sl = sizeof(sig), inl;
	unsigned char *d = in;

	if (j->rsa) {
		memcpy(in, sha256_prefix, sizeof(sha256_prefix));
		d = in + sizeof(sha256_prefix);
		inl = sizeof(in);
	} else {
		inl = SHA256_DIGEST_LENGTH;
	}
	SHA256((const unsigned char *)MSG, strlen(MSG), d);
	return j->f->C_SignInit(s, &m, j->key) == CKR_OK &&
	       j->f->C_Sign(s, in, inl, sig, &sl) == CKR_OK;
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	double end;

	/* a session per thread, as libp11's pool gives each signer */
	if (j->direct &&
	    j->f->C_OpenSession(j->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		j->failed = 1;
		return NULL;
	}
	end = now() + j->secs;
	while (now() < end) {
		if (!(j->direct ? sign_direct(j, s) : sign_evp(j))) {
			j->failed = 1;
			break;
		}
		j->count++;
	}
	if (j->direct)
		j->f->C_CloseSession(s);
	return NULL;
}

static double
run(struct job *proto, int nthreads)
{
	pthread_t th[MAX_THREADS];
	struct job jobs[MAX_THREADS];
	double t0 = now(), el;
	long total = 0;
	int i;

	for (i = 0; i < nthreads; i++) {
		jobs[i] = *proto;
		jobs[i].count = 0;
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += jobs[i].count;
		if (jobs[i].failed) {
			fprintf(stderr, "bench: a signature failed\n");
			return -1;
		}
	}
	el = now() - t0;
	return (double)total / el;
}

/* The same key through the module's own function list (same dlopen handle
 * as libtgp11's, so the same instance and login). */
static int
direct_setup(const char *module, const char *label, int rsa, struct job *j)
{
	void *dl = dlopen(module, RTLD_NOW | RTLD_NOLOAD);
	CK_C_GetFunctionList gfl;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, i, found = 0;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
	                     {CKA_LABEL, (void *)label, strlen(label)}};

	if (dl == NULL || (gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
	    gfl(&j->f) != CKR_OK || j->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (j->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    strncmp((char *)ti.label, "tg-test ", 8) != 0)
			continue;
		j->slot = slots[i];
		if (j->f->C_OpenSession(j->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
			return -1;
		if (j->f->C_FindObjectsInit(s, t, 2) == CKR_OK &&
		    j->f->C_FindObjects(s, &j->key, 1, &found) == CKR_OK)
			j->f->C_FindObjectsFinal(s);
		j->f->C_CloseSession(s); /* libp11's open sessions keep the login */
		break;
	}
	j->rsa = rsa;
	return found == 1 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *module = getenv("TG_SOFTHSM2_MODULE");
	static const char *labels[] = {"p256", "rsa2048"};
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_error err;
	struct job tg, direct;
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	double r_tg[3], r_d[3];
	char uri[512];
	size_t i;
	int rc = 1, nt;

	if (module == NULL || getenv("SOFTHSM2_CONF") == NULL) {
		printf("SKIP: run inside tests/lib/with-softhsm.sh with TG_SOFTHSM2_MODULE set\n");
		return 77;
	}
	if (tg_p11_new(&p, NULL) != 0)
		return 1;
	printf("bench_p11: %.1f s per measurement, SoftHSM2 %s\n", secs, module);
	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		snprintf(uri, sizeof(uri),
		         "pkcs11:token=tg-test;object=%s?module-path=%s&pin-value=1234", labels[i],
		         module);
		tg_error_clear(&err);
		if (tg_p11_key_find(p, uri, 0, &k, &err) != 0) {
			fprintf(stderr, "bench: %s\n", err.msg);
			goto out;
		}
		memset(&tg, 0, sizeof(tg));
		memset(&direct, 0, sizeof(direct));
		tg.pk = tg_p11_key_evp(k);
		tg.secs = direct.secs = secs;
		direct.direct = 1;
		if (tg.pk == NULL || direct_setup(module, labels[i], i == 1, &direct) != 0) {
			fprintf(stderr, "bench: cannot set up key %s\n", labels[i]);
			goto out;
		}
		for (nt = 1; nt <= MAX_THREADS; nt++) {
			/* interleave so drift in machine load hits both sides */
			r_d[nt] = run(&direct, nt);
			r_tg[nt] = run(&tg, nt);
			if (r_d[nt] < 0 || r_tg[nt] < 0)
				goto out;
			printf("%-8s threads=%d  tgp11 %8.1f sig/s  direct C_Sign %8.1f sig/s  "
			       "ratio tgp11/direct %.3f\n",
			       labels[i], nt, r_tg[nt], r_d[nt], r_tg[nt] / r_d[nt]);
		}
		printf("%-8s 2 threads / 1 thread: tgp11 %.2fx  direct %.2fx\n", labels[i],
		       r_tg[2] / r_tg[1], r_d[2] / r_d[1]);
		EVP_PKEY_free(tg.pk);
		tg_p11_key_free(k);
		k = NULL;
	}
	rc = 0;
out:
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}
