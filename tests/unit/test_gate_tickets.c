/*
 * test_gate_tickets.c — the gate's session-ticket keys (host/gate/tickets.c):
 * the key file parser (tg_gate_tls_ticket_keys_parse) on good files and a
 * table of refusals, each with its exact message (file, line, problem,
 * fix), inputs copied to exact-size heap buffers so AddressSanitizer sees
 * an over-read; and the ticket callback's work (tg_gate_tickets_crypt):
 * the first key encrypts, every key decrypts (2 for an older one: renew),
 * an unknown name is a full handshake.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "tg_gate_tls.h"
#include "tls-int.h"
#include "tg_test.h"

/* 80 bytes 0x00..0x4f and 80 bytes 0x50..0x9f, in base64 */
#define K1                                                                                         \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"     \
	"P0BBQkNERUZHSElKS0xNTk8="
#define K2                                                                                         \
	"UFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/"                         \
	"gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8="
#define FIX "make one with: openssl rand -base64 80 | tr -d '\\n'"

/* Parses text (not NUL-terminated, exact-size heap copy). */
static int
parse(const char *text, size_t n, uint8_t **keys, size_t *nkeys, struct tg_error *err)
{
	char *copy = malloc(n ? n : 1);
	int r;

	assert_non_null(copy);
	memcpy(copy, text, n);
	tg_error_clear(err);
	r = tg_gate_tls_ticket_keys_parse(copy, n, "tk", keys, nkeys, err);
	free(copy);
	return r;
}

static void
test_good(void **state)
{
	static const char text[] = "# gate ticket keys\n"
	                           "\n"
	                           "  " K1 "  \r\n"
	                           "\t# the next key\n" K2;
	uint8_t *keys = NULL;
	size_t n = 0, i;
	struct tg_error err;

	(void)state;
	assert_int_equal(parse(text, sizeof(text) - 1, &keys, &n, &err), 0);
	assert_int_equal(n, 2);
	for (i = 0; i < 2 * TG_GATE_TICKET_KEY_LEN; i++)
		assert_int_equal(keys[i], i);
	tg_gate_tls_ticket_keys_free(keys, n);
}

/* count keys with distinct names (the first character changed) into text */
static size_t
many_keys(char *text, size_t cap, int count)
{
	size_t len = 0;
	int i;

	for (i = 0; i < count; i++)
		len += (size_t)snprintf(text + len, cap - len, "%c%s\n", 'A' + i, &K1[1]);
	return len;
}

static void
test_eight(void **state)
{
	char text[9 * 200];
	size_t len = many_keys(text, sizeof(text), 8), n = 0;
	uint8_t *keys = NULL;
	struct tg_error err;

	(void)state;
	assert_int_equal(parse(text, len, &keys, &n, &err), 0);
	assert_int_equal(n, 8);
	tg_gate_tls_ticket_keys_free(keys, n);
	/* one more is too many */
	len = many_keys(text, sizeof(text), 9);
	assert_int_equal(parse(text, len, &keys, &n, &err), TG_ERR_CONFIG);
	assert_string_equal(err.msg,
	                    "tk line 9: more than 8 keys; drop the oldest (the last lines)");
}

struct bad {
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *msg;
};

static const struct bad bad[] = {
    {"", 0, "tk holds no session-ticket key; add one line: " FIX},
    {"# only\n\n   \n", 0, "tk holds no session-ticket key; add one line: " FIX},
    {"# k\n" K1 "\nAAAA\n", 0,
     "tk line 3: the key is 3 bytes, a key is 80 bytes (16 name, 32 HMAC, 32 "
     "AES); " FIX},
    {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"
     "P0BBQkNERUZHSElKS0xNTk9Q\n",
     0, "tk line 1: the key is 81 bytes, a key is 80 bytes (16 name, 32 HMAC, 32 AES); " FIX},
    {"\n\nnot-a-key!\n", 0,
     "tk line 3: character 4 is not base64; a line holds one key, 80 bytes "
     "in base64 (" FIX ")"},
    {K1 " " K2 "\n", 0,
     "tk line 1: character 109 is not base64; a line holds one key, 80 bytes in "
     "base64 (" FIX ")"},
    {K1 "\n" K1 "\n", 0,
     "tk line 2: the key has the name (first 16 bytes) of the key on line 1; "
     "every key needs its own name: " FIX},
    {"AAA=AAA=\n", 0, "tk line 1: not valid base64; " FIX},
    {"A\0B\n", 4, "tk line 1: a NUL byte; " FIX},
};

static void
test_bad(void **state)
{
	uint8_t *keys = (uint8_t *)"x";
	size_t n = 99, i, len;
	struct tg_error err;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = bad[i].len ? bad[i].len : strlen(bad[i].text);
		assert_int_equal(parse(bad[i].text, len, &keys, &n, &err), TG_ERR_CONFIG);
		assert_string_equal(err.msg, bad[i].msg);
		assert_null(keys);
		assert_int_equal(n, 0);
	}
}

static void
test_long_line(void **state)
{
	char text[400];
	uint8_t *keys = NULL;
	size_t n = 0;
	struct tg_error err;

	(void)state;
	memset(text, 'A', sizeof(text));
	assert_int_equal(parse(text, sizeof(text), &keys, &n, &err), TG_ERR_CONFIG);
	assert_string_equal(err.msg,
	                    "tk line 1: 400 characters is too long for a key (80 bytes are "
	                    "108 in base64); " FIX);
}

/* ---- the ticket callback's work ----------------------------------------- */

struct crypt {
	EVP_MAC *mac;
	EVP_CIPHER_CTX *c;
	EVP_MAC_CTX *h;
};

static void
crypt_new(struct crypt *k)
{
	if (k->mac == NULL)
		k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_CIPHER_CTX_free(k->c);
	EVP_MAC_CTX_free(k->h);
	k->c = EVP_CIPHER_CTX_new();
	k->h = EVP_MAC_CTX_new(k->mac);
	assert_non_null(k->c);
	assert_non_null(k->h);
}

static void
crypt_free(struct crypt *k)
{
	EVP_CIPHER_CTX_free(k->c);
	EVP_MAC_CTX_free(k->h);
	EVP_MAC_free(k->mac);
}

static void
keys_of(const char *text, struct tg_gate_tickets *tk)
{
	struct tg_error err;

	assert_int_equal(parse(text, strlen(text), &tk->keys, &tk->n, &err), 0);
}

static void
test_crypt(void **state)
{
	struct tg_gate_tickets one, rotated, other;
	struct crypt k = {0};
	unsigned char name[16], iv[EVP_MAX_IV_LENGTH], ct[64], pt[64], mac1[32], mac2[32];
	static const unsigned char msg[32] = "a session, 32 bytes of it......";
	int ctl = 0, fin = 0, ptl = 0;
	size_t ml1 = 0, ml2 = 0;

	(void)state;
	keys_of(K1 "\n", &one);
	keys_of(K2 "\n" K1 "\n", &rotated);
	keys_of(K2 "\n", &other);
	/* encrypt: the first key's name, a random IV, cipher and MAC ready */
	crypt_new(&k);
	assert_int_equal(tg_gate_tickets_crypt(&one, name, iv, k.c, k.h, 1), 1);
	assert_memory_equal(name, one.keys, 16);
	assert_int_equal(EVP_EncryptUpdate(k.c, ct, &ctl, msg, sizeof(msg)), 1);
	assert_int_equal(EVP_EncryptFinal_ex(k.c, ct + ctl, &fin), 1);
	ctl += fin;
	assert_int_equal(EVP_MAC_update(k.h, ct, (size_t)ctl), 1);
	assert_int_equal(EVP_MAC_final(k.h, mac1, &ml1, sizeof(mac1)), 1);
	/* decrypt with the key second in a rotated set: 2 (renew), same bytes */
	crypt_new(&k);
	assert_int_equal(tg_gate_tickets_crypt(&rotated, name, iv, k.c, k.h, 0), 2);
	assert_int_equal(EVP_MAC_update(k.h, ct, (size_t)ctl), 1);
	assert_int_equal(EVP_MAC_final(k.h, mac2, &ml2, sizeof(mac2)), 1);
	assert_int_equal(ml1, ml2);
	assert_memory_equal(mac1, mac2, ml1);
	assert_int_equal(EVP_DecryptUpdate(k.c, pt, &ptl, ct, ctl), 1);
	assert_int_equal(EVP_DecryptFinal_ex(k.c, pt + ptl, &fin), 1);
	assert_int_equal(ptl + fin, sizeof(msg));
	assert_memory_equal(pt, msg, sizeof(msg));
	/* the first key: 1; a set without it: 0 (full handshake) */
	crypt_new(&k);
	assert_int_equal(tg_gate_tickets_crypt(&one, name, iv, k.c, k.h, 0), 1);
	crypt_new(&k);
	assert_int_equal(tg_gate_tickets_crypt(&other, name, iv, k.c, k.h, 0), 0);
	/* the process's key: made once, the same every time */
	assert_non_null(tg_gate_tickets_process());
	assert_ptr_equal(tg_gate_tickets_process(), tg_gate_tickets_process());
	assert_int_equal(tg_gate_tickets_process()->n, 1);
	crypt_free(&k);
	tg_gate_tickets_clear(&one);
	tg_gate_tickets_clear(&rotated);
	tg_gate_tickets_clear(&other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),  cmocka_unit_test(test_eight),
	    cmocka_unit_test(test_bad),   cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_crypt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
