/*
 * tls-int.h — inside the gate's TLS (tg_gate_tls.h): the session-ticket
 * keys (tickets.c), used by tls.c (the server key on a token is
 * tgtlskey's, tg_tlskey.h). Not a public header.
 */
#ifndef TG_GATE_TLS_INT_H
#define TG_GATE_TLS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tg_err.h"

/* ------------------------------------------------------------------ */
/* Session-ticket keys (tickets.c)                                     */
/* ------------------------------------------------------------------ */

/* A set of ticket keys: keys[0] encrypts, every key decrypts. */
struct tg_gate_tickets {
	uint8_t *keys; /* n * TG_GATE_TICKET_KEY_LEN bytes */
	size_t n;
};

/*
 * Reads and parses the ticket key file at path (a secret: owner and mode
 * checked as tg_file_read_checked's TG_FILE_SECRET, a symbolic link
 * followed) into *out (wipe and free with tg_gate_tickets_clear). 0, or
 * TG_ERR_CONFIG / TG_ERR_IO / TG_ERR_PERMISSION naming the file (and the
 * line).
 */
int tg_gate_tickets_load(const char *path, struct tg_gate_tickets *out, struct tg_error *err);

/* Wipes and frees the keys of tk (which stays valid, empty). */
void tg_gate_tickets_clear(struct tg_gate_tickets *tk);

/*
 * The process's own ticket key, made once from the CSPRNG on first use and
 * kept until the process ends, so every configuration the process loads
 * (reloads included) decrypts the tickets of the previous ones. NULL when
 * the CSPRNG failed.
 */
const struct tg_gate_tickets *tg_gate_tickets_process(void);

/*
 * The work of an SSL_CTX_set_tlsext_ticket_key_evp_cb callback with the
 * keys tk (RFC 5077 4's recommended format: a 16-byte key name, AES-256-CBC,
 * HMAC-SHA-256). enc 1: the first key's name into name, a random IV into
 * iv, the cipher and MAC set up; returns 1, or -1 on failure. enc 0: the
 * key named name set up for decryption: 1 for the first key, 2 for another
 * (OpenSSL then issues a new ticket under the first key), 0 when no key has
 * that name (the client gets a full handshake), -1 on failure.
 */
int tg_gate_tickets_crypt(const struct tg_gate_tickets *tk, unsigned char name[16],
                          unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

#endif /* TG_GATE_TLS_INT_H */
