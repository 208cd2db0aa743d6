/*
 * tickets.c — the gate's session-ticket keys: the key file's parser
 * (tg_gate_tls_ticket_keys_parse), the process's own key, and the work of
 * OpenSSL's ticket key callback (tls-int.h).
 *
 * A key is 80 bytes: a 16-byte name (sent in the clear in each ticket, so
 * the gate finds the key again), a 32-byte HMAC-SHA-256 key and a 32-byte
 * AES-256 key — the layout of nginx's 80-byte ssl_session_ticket_key files,
 * here in base64, one per line.
 */
#include "tg_gate_tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include "tg_file.h"
#include "tg_secret.h"
#include "tls-int.h"

#define TICKET_NAME_LEN 16
#define TICKET_HMAC_LEN 32
#define TICKET_AES_LEN  32
#define TICKET_KEYS_MAX 8
/* base64 of 80 bytes is 108 characters; a longer line is surely wrong */
#define TICKET_LINE_MAX  256
#define TICKET_FILE_MAX  (64 * 1024)
#define TICKET_KEY_HOWTO "make one with: openssl rand -base64 80 | tr -d '\\n'"

static int
b64_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/' || ch == '=';
}

/* One key line (no blanks around it) into key; 0 or TG_ERR_CONFIG. */
static int
key_decode(const char *s, size_t n, const char *name, size_t line, uint8_t *key,
           struct tg_error *err)
{
	unsigned char out[TICKET_LINE_MAX];
	EVP_ENCODE_CTX *ectx = NULL;
	int outl = 0, fin = 0, r = TG_ERR_CONFIG;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!b64_char((unsigned char)s[i])) {
			tg_error_set(err, r,
			             "%s line %zu: character %zu is not base64; a line holds one "
			             "key, 80 bytes in base64 (%s)",
			             name, line, i + 1, TICKET_KEY_HOWTO);
			goto out;
		}
	}
	if (n > TICKET_LINE_MAX) {
		tg_error_set(err, r,
		             "%s line %zu: %zu characters is too long for a key (80 bytes "
		             "are 108 in base64); %s",
		             name, line, n, TICKET_KEY_HOWTO);
		goto out;
	}
	if ((ectx = EVP_ENCODE_CTX_new()) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory");
		goto out;
	}
	EVP_DecodeInit(ectx);
	if (EVP_DecodeUpdate(ectx, out, &outl, (const unsigned char *)s, (int)n) < 0 ||
	    EVP_DecodeFinal(ectx, out + outl, &fin) != 1) {
		tg_error_set(err, r, "%s line %zu: not valid base64; %s", name, line,
		             TICKET_KEY_HOWTO);
		goto out;
	}
	if ((size_t)(outl + fin) != TG_GATE_TICKET_KEY_LEN) {
		tg_error_set(err, r,
		             "%s line %zu: the key is %d bytes, a key is %d bytes (16 name, 32 "
		             "HMAC, 32 AES); %s",
		             name, line, outl + fin, TG_GATE_TICKET_KEY_LEN, TICKET_KEY_HOWTO);
		goto out;
	}
	memcpy(key, out, TG_GATE_TICKET_KEY_LEN);
	r = 0;
out:
	EVP_ENCODE_CTX_free(ectx);
	OPENSSL_cleanse(out, sizeof(out));
	return r;
}

/* The key of line number `line` has the name of an earlier key: 0 or error. */
static int
name_unique(const uint8_t *keys, size_t nkeys, const size_t *lines, size_t line, const char *name,
            struct tg_error *err)
{
	const uint8_t *k = keys + nkeys * TG_GATE_TICKET_KEY_LEN;
	size_t i;
	int r = 0;

	for (i = 0; i < nkeys && r == 0; i++) {
		if (CRYPTO_memcmp(keys + i * TG_GATE_TICKET_KEY_LEN, k, TICKET_NAME_LEN) == 0)
			r = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "%s line %zu: the key has the name (first 16 bytes) of the "
			    "key on line %zu; every key needs its own name: %s",
			    name, line, lines[i], TICKET_KEY_HOWTO);
	}
	return r;
}

int
tg_gate_tls_ticket_keys_parse(const char *text, size_t n, const char *name, uint8_t **keys,
                              size_t *nkeys, struct tg_error *err)
{
	uint8_t *k = NULL;
	size_t lines[TICKET_KEYS_MAX];
	size_t pos = 0, line = 0, nk = 0, b, e, end;
	int r = TG_ERR_ALLOC;

	*keys = NULL;
	*nkeys = 0;
	if ((k = calloc(TICKET_KEYS_MAX, TG_GATE_TICKET_KEY_LEN)) == NULL) {
		tg_error_set(err, r, "out of memory");
		goto out;
	}
	while (pos < n) {
		line++;
		for (end = pos; end < n && text[end] != '\n'; end++)
			;
		b = pos;
		e = end;
		pos = end < n ? end + 1 : end;
		while (b < e && (text[b] == ' ' || text[b] == '\t'))
			b++;
		while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r'))
			e--;
		if (b == e || text[b] == '#')
			continue;
		if (memchr(text + b, '\0', e - b) != NULL) {
			r = tg_error_set(err, TG_ERR_CONFIG, "%s line %zu: a NUL byte; %s", name,
			                 line, TICKET_KEY_HOWTO);
			goto out;
		}
		if (nk == TICKET_KEYS_MAX) {
			r = tg_error_set(
			    err, TG_ERR_CONFIG,
			    "%s line %zu: more than %d keys; drop the oldest (the last "
			    "lines)",
			    name, line, TICKET_KEYS_MAX);
			goto out;
		}
		if ((r = key_decode(text + b, e - b, name, line, k + nk * TG_GATE_TICKET_KEY_LEN,
		                    err)) != 0 ||
		    (r = name_unique(k, nk, lines, line, name, err)) != 0)
			goto out;
		lines[nk++] = line;
	}
	if (nk == 0) {
		r = tg_error_set(err, TG_ERR_CONFIG,
		                 "%s holds no session-ticket key; add one line: %s", name,
		                 TICKET_KEY_HOWTO);
		goto out;
	}
	*keys = k;
	*nkeys = nk;
	k = NULL;
	r = 0;
out:
	tg_freezero(k, TICKET_KEYS_MAX * TG_GATE_TICKET_KEY_LEN);
	return r;
}

void
tg_gate_tls_ticket_keys_free(uint8_t *keys, size_t nkeys)
{
	/* the parser allocates room for TICKET_KEYS_MAX; wipe what it holds */
	tg_freezero(keys, nkeys * TG_GATE_TICKET_KEY_LEN);
}

int
tg_gate_tickets_load(const char *path, struct tg_gate_tickets *out, struct tg_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	out->keys = NULL;
	out->n = 0;
	if ((r = tg_file_read_checked(path, "session-ticket key file",
	                              TG_FILE_SECRET | TG_FILE_FOLLOW, TICKET_FILE_MAX, &data, &len,
	                              err)) != 0)
		goto out;
	r = tg_gate_tls_ticket_keys_parse((const char *)data, len, path, &out->keys, &out->n, err);
out:
	tg_freezero(data, len);
	return r;
}

void
tg_gate_tickets_clear(struct tg_gate_tickets *tk)
{
	tg_gate_tls_ticket_keys_free(tk->keys, tk->n);
	tk->keys = NULL;
	tk->n = 0;
}

/*
 * The process's key: global because it must outlive every configuration
 * (a reload keeps resumption); written once, under pthread_once, then
 * only read.
 */
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
static uint8_t proc_key[TG_GATE_TICKET_KEY_LEN];
static struct tg_gate_tickets proc_tickets;

static void
proc_init(void)
{
	if (RAND_priv_bytes(proc_key, sizeof(proc_key)) == 1) {
		proc_tickets.keys = proc_key;
		proc_tickets.n = 1;
	}
}

const struct tg_gate_tickets *
tg_gate_tickets_process(void)
{
	pthread_once(&proc_once, proc_init);
	return proc_tickets.n == 1 ? &proc_tickets : NULL;
}

static int
mac_init(EVP_MAC_CTX *hctx, const uint8_t *key)
{
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	return EVP_MAC_init(hctx, key + TICKET_NAME_LEN, TICKET_HMAC_LEN, params) == 1;
}

int
tg_gate_tickets_crypt(const struct tg_gate_tickets *tk, unsigned char name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const EVP_CIPHER *aes = EVP_aes_256_cbc();
	const uint8_t *k = NULL;
	size_t i;
	int r = -1;

	if (tk == NULL || tk->n == 0)
		goto out;
	if (enc) {
		k = tk->keys;
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1)
			goto out;
		memcpy(name, k, TICKET_NAME_LEN);
		if (EVP_EncryptInit_ex(cctx, aes, NULL, k + TICKET_NAME_LEN + TICKET_HMAC_LEN,
		                       iv) != 1 ||
		    !mac_init(hctx, k))
			goto out;
		r = 1;
		goto out;
	}
	/* every name compared, in constant time: no early exit on a match */
	for (i = 0; i < tk->n; i++) {
		if (CRYPTO_memcmp(name, tk->keys + i * TG_GATE_TICKET_KEY_LEN, TICKET_NAME_LEN) ==
		        0 &&
		    k == NULL) {
			k = tk->keys + i * TG_GATE_TICKET_KEY_LEN;
			r = i == 0 ? 1 : 2; /* 2: renew the ticket under the first key */
		}
	}
	if (k == NULL) {
		r = 0; /* not one of ours (any more): full handshake */
		goto out;
	}
	if (EVP_DecryptInit_ex(cctx, aes, NULL, k + TICKET_NAME_LEN + TICKET_HMAC_LEN, iv) != 1 ||
	    !mac_init(hctx, k))
		r = -1;
out:
	return r;
}
