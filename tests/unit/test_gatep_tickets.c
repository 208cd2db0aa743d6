/*
 * test_gatep_tickets.c — the session-ticket key file read from disk
 * (tg_gate_tickets_load, tls-int.h): a good file gives its keys, which
 * tg_gate_tickets_clear wipes; a missing file, one others may read and one
 * whose text is not a key are refused with messages naming the file, and
 * leave nothing behind. The ticket callback's work with no keys fails
 * (-1) in both directions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "tg_gate_tls.h"
#include "tls-int.h"
#include "tg_test.h"

/* 80 bytes 0x00..0x4f in base64 */
#define K1                                                                                         \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"     \
	"P0BBQkNERUZHSElKS0xNTk8="

static char dir[128];

static int
setup(void **state)
{
	(void)state;
	return tg_test_tmpdir("tg-gatep-tickets", dir, sizeof(dir));
}

static int
teardown(void **state)
{
	(void)state;
	tg_test_tmpdir_remove(dir);
	return 0;
}

static void
put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_load_good(void **state)
{
	struct tg_gate_tickets tk = {(uint8_t *)"x", 9};
	struct tg_error err;
	char path[256];
	size_t i;

	(void)state;
	snprintf(path, sizeof(path), "%s/tickets", dir);
	put(path, "# one key\n" K1 "\n", 0600);
	tg_error_clear(&err);
	assert_int_equal(tg_gate_tickets_load(path, &tk, &err), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(tk.n, 1);
	assert_non_null(tk.keys);
	for (i = 0; i < TG_GATE_TICKET_KEY_LEN; i++)
		assert_int_equal(tk.keys[i], i);
	tg_gate_tickets_clear(&tk);
	assert_null(tk.keys);
	assert_int_equal(tk.n, 0);
	tg_gate_tickets_clear(&tk);
	assert_int_equal(remove(path), 0);
}

/* tg_gate_tickets_load refuses path with code rc and a message holding want. */
static void
load_refused(const char *path, int rc, const char *want)
{
	struct tg_gate_tickets tk = {(uint8_t *)"x", 9};
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	r = tg_gate_tickets_load(path, &tk, &err);
	if (r != rc || strstr(err.msg, want) == NULL)
		fail_msg("%s: got %d \"%s\", want %d \"%s\"", path, r, err.msg, rc, want);
	assert_null(tk.keys);
	assert_int_equal(tk.n, 0);
}

static void
test_load_refused(void **state)
{
	char path[256], want[600];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", dir);
	snprintf(want, sizeof(want), "session-ticket key file '%s' does not exist", path);
	load_refused(path, TG_ERR_NOT_FOUND, want);
	/* a secret others may read */
	snprintf(path, sizeof(path), "%s/open", dir);
	put(path, K1 "\n", 0644);
	snprintf(want, sizeof(want),
	         "session-ticket key file '%s' is readable by others (mode 0644); run 'chmod 600 "
	         "%s'",
	         path, path);
	load_refused(path, TG_ERR_PERMISSION, want);
	assert_int_equal(remove(path), 0);
	/* text that is no key: the file and the line */
	snprintf(path, sizeof(path), "%s/bad", dir);
	put(path, "# keys\nnot-a-key\n", 0600);
	snprintf(want, sizeof(want), "%s line 2: ", path);
	load_refused(path, TG_ERR_CONFIG, want);
	assert_int_equal(remove(path), 0);
	/* a directory where the file should be */
	snprintf(path, sizeof(path), "%s/adir", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	{
		struct tg_gate_tickets tk = {NULL, 0};
		struct tg_error err;

		tg_error_clear(&err);
		assert_true(tg_gate_tickets_load(path, &tk, &err) < 0);
		assert_non_null(strstr(err.msg, path));
		assert_null(tk.keys);
		assert_int_equal(tk.n, 0);
	}
	assert_int_equal(rmdir(path), 0);
}

static void
test_crypt_no_keys(void **state)
{
	struct tg_gate_tickets none = {NULL, 0};
	unsigned char name[16] = {0}, iv[16] = {0};
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *h;

	(void)state;
	assert_true(c != NULL && mac != NULL);
	h = EVP_MAC_CTX_new(mac);
	assert_non_null(h);
	assert_int_equal(tg_gate_tickets_crypt(NULL, name, iv, c, h, 1), -1);
	assert_int_equal(tg_gate_tickets_crypt(&none, name, iv, c, h, 1), -1);
	assert_int_equal(tg_gate_tickets_crypt(&none, name, iv, c, h, 0), -1);
	/* nothing was written into the name or the IV */
	assert_memory_equal(name, (unsigned char[16]){0}, 16);
	assert_memory_equal(iv, (unsigned char[16]){0}, 16);
	EVP_MAC_CTX_free(h);
	EVP_MAC_free(mac);
	EVP_CIPHER_CTX_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_good),
	    cmocka_unit_test(test_load_refused),
	    cmocka_unit_test(test_crypt_no_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
