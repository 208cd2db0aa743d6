/*
 * sim_sign.c — ECDSA P-256 signatures per second through one PKCS#11
 * module: C_Login once, then COUNT times C_SignInit(CKM_ECDSA) + C_Sign over
 * a SHA-256 digest, in one session. bench/sim-sign.sh runs it against
 * OpenSC (-> pcscd -> tokengate-sim) and SoftHSM2 side by side. Prints one
 * line "signatures=N seconds=S per_second=R"; never judges the figure.
 *
 *   sim_sign MODULE TOKEN-LABEL PIN KEY-ID-HEX COUNT
 *
 * TOKEN-LABEL "-" takes the first slot with a token.
 *
 * Exit codes: 0 ok, 1 a PKCS#11 call failed (named on stderr), 2 usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#define MAX_SLOTS 16
#define MAX_ID    64
#define SIG_MAX   512

struct bench {
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
fail(const char *what, CK_RV rv)
{
	fprintf(stderr, "sim_sign: %s failed: CKR 0x%lx\n", what, (unsigned long)rv);
	return 1;
}

static int
parse_id(const char *hex, CK_BYTE *id, CK_ULONG *len)
{
	size_t n = strlen(hex), i;
	unsigned v;

	if (n == 0 || n % 2 != 0 || n / 2 > MAX_ID)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		id[i] = (CK_BYTE)v;
	}
	*len = (CK_ULONG)(n / 2);
	return 0;
}

/* Finds the slot whose token label is `label` (blank-padded); "-" takes
 * the first slot with a token. */
static int
find_slot(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[MAX_SLOTS];
	CK_ULONG n = MAX_SLOTS, i;
	CK_TOKEN_INFO ti;
	size_t ll = strlen(label), k;
	int match;

	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		match = strcmp(label, "-") == 0 ||
		        (ll <= sizeof(ti.label) && memcmp(ti.label, label, ll) == 0);
		for (k = ll; match && strcmp(label, "-") != 0 && k < sizeof(ti.label); k++)
			if (ti.label[k] != ' ')
				match = 0;
		if (match) {
			*out = slots[i];
			return 0;
		}
	}
	return -1;
}

static int
find_key(struct bench *b, const CK_BYTE *id, CK_ULONG idlen)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_ID, (void *)id, idlen},
	};
	CK_ULONG got = 0;
	CK_RV rv;

	if ((rv = b->f->C_FindObjectsInit(b->s, tmpl, 2)) != CKR_OK)
		return fail("C_FindObjectsInit", rv);
	rv = b->f->C_FindObjects(b->s, &b->key, 1, &got);
	b->f->C_FindObjectsFinal(b->s);
	if (rv != CKR_OK)
		return fail("C_FindObjects", rv);
	if (got != 1) {
		fprintf(stderr, "sim_sign: no private key with that ID on the token\n");
		return 1;
	}
	return 0;
}

static int
sign_loop(struct bench *b, long count)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE digest[SHA256_DIGEST_LENGTH], sig[SIG_MAX];
	CK_ULONG siglen;
	CK_RV rv;
	double t0, t;
	long i;

	SHA256((const unsigned char *)"tokengate bench", 15, digest);
	t0 = now();
	for (i = 0; i < count; i++) {
		digest[0] = (CK_BYTE)i;
		siglen = sizeof(sig);
		if ((rv = b->f->C_SignInit(b->s, &mech, b->key)) != CKR_OK)
			return fail("C_SignInit", rv);
		if ((rv = b->f->C_Sign(b->s, digest, sizeof(digest), sig, &siglen)) != CKR_OK)
			return fail("C_Sign", rv);
	}
	t = now() - t0;
	printf("signatures=%ld seconds=%.3f per_second=%.1f\n", count, t, (double)count / t);
	return 0;
}

int
main(int argc, char **argv)
{
	CK_C_GetFunctionList getfl;
	struct bench b;
	CK_SLOT_ID slot = 0;
	CK_BYTE id[MAX_ID];
	CK_ULONG idlen = 0;
	CK_RV rv;
	void *dl = NULL;
	char *end = NULL;
	long count;
	int rc = 2, inited = 0;

	memset(&b, 0, sizeof(b));
	if (argc != 6) {
		fprintf(stderr, "usage: sim_sign MODULE TOKEN-LABEL PIN KEY-ID-HEX COUNT\n");
		goto out;
	}
	errno = 0;
	count = strtol(argv[5], &end, 10);
	if (errno != 0 || *end != '\0' || count < 1 || parse_id(argv[4], id, &idlen) != 0) {
		fprintf(stderr, "sim_sign: COUNT must be a positive number, KEY-ID hex\n");
		goto out;
	}
	rc = 1;
	if ((dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "sim_sign: cannot load %s: %s\n", argv[1], dlerror());
		goto out;
	}
	*(void **)&getfl = dlsym(dl, "C_GetFunctionList");
	if (getfl == NULL || getfl(&b.f) != CKR_OK) {
		fprintf(stderr, "sim_sign: %s is not a PKCS#11 module\n", argv[1]);
		goto out;
	}
	if ((rv = b.f->C_Initialize(NULL)) != CKR_OK) {
		fail("C_Initialize", rv);
		goto out;
	}
	inited = 1;
	if (find_slot(b.f, argv[2], &slot) != 0) {
		fprintf(stderr, "sim_sign: no token labelled '%s' in %s\n", argv[2], argv[1]);
		goto out;
	}
	if ((rv = b.f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &b.s)) != CKR_OK) {
		fail("C_OpenSession", rv);
		goto out;
	}
	rv = b.f->C_Login(b.s, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], (CK_ULONG)strlen(argv[3]));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fail("C_Login", rv);
		goto out;
	}
	if (find_key(&b, id, idlen) != 0)
		goto out;
	rc = sign_loop(&b, count);
out:
	if (b.s != 0)
		b.f->C_CloseSession(b.s);
	if (inited)
		b.f->C_Finalize(NULL);
	if (dl != NULL)
		dlclose(dl);
	return rc;
}
