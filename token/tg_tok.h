/*
 * tg_tok.h — the PIV token core (libtgtoken): a PIV card application
 * (NIST SP 800-73-4 card edge plus the Yubico-compatible extensions, and
 * the YubiKey management application's device information) as pure
 * logic. A command APDU goes in, a response APDU comes out, over a state
 * object. No sockets, no threads, no files, no global state: the host of the
 * core (tokengate-sim, tests, fuzzers) supplies persistence and touch through
 * callbacks.
 *
 * Security: no response, callback or accessor ever carries private key
 * material. Persistent state handed to the persist callback does contain
 * the keys (it is the token's own non-volatile memory); the host keeps it in
 * a 0600 file and never shows it.
 */
#ifndef TG_TOK_H
#define TG_TOK_H

#include <stddef.h>
#include <stdint.h>

struct tg_tok;

/* Things only the host of the core can do. Any callback may be NULL. */
struct tg_tok_host {
	/*
	 * Saves the persistent state (blob of len bytes, see tg_tok_save).
	 * Called during a command whenever persistent state changed, before the
	 * response is produced — and for VERIFY and the other PIN/PUK checks,
	 * after the retry counter was decremented and before the compare.
	 * Return 0 on success; on failure the command fails with SW 6581 (memory
	 * failure) and the change is kept in memory only. NULL: nothing persists.
	 */
	int (*persist)(void *ctx, const uint8_t *blob, size_t len);
	/*
	 * Asks for a touch for a private-key operation on `slot` whose touch
	 * policy requires one. Return 1 if the user touched within the allowed
	 * time, 0 if not (the operation then fails with SW 6982). May block.
	 * NULL: touch is always given.
	 */
	int (*touch)(void *ctx, uint8_t slot);
	/* Monotonic clock in milliseconds, for the cached touch policy (15 s).
	 * NULL: the core treats every cached touch as expired. */
	uint64_t (*now_ms)(void *ctx);
	void *ctx;
};

/* Parameters of a new token (tg_tok_create). */
struct tg_tok_params {
	uint32_t serial;        /* 0: random */
	const char *pin;        /* NULL: "123456"; 6-8 characters */
	const char *puk;        /* NULL: "12345678"; 6-8 characters */
	const uint8_t *mgm_key; /* NULL: the YubiKey default 3DES key */
	size_t mgm_key_len;     /* 24 (3DES/AES-192), 16 (AES-128), 32 (AES-256) */
	uint8_t
	    mgm_key_alg; /* PIV alg id: 0x03 3DES, 0x08 AES-128, 0x0A AES-192, 0x0C AES-256; 0 = 3DES */
	uint8_t version[3];  /* firmware version reported; {0,0,0}: 5.4.3 */
	uint8_t form_factor; /* Yubico form factor byte; 0: 0x81 (USB-A keychain) */
	/*
	 * Manufacturer CA (DER certificate and DER private key, PKCS#8 or
	 * traditional). The token generates its slot-F9 attestation key inside
	 * and the manufacturer CA signs its certificate. Both required.
	 */
	const uint8_t *mfr_cert_der;
	size_t mfr_cert_len;
	const uint8_t *mfr_key_der;
	size_t mfr_key_len;
};

/*
 * Creates a new token in factory state (default PIN/PUK/management key
 * unless given, empty slots, an F9 attestation key and certificate). *out
 * owned by the caller (tg_tok_free). Returns 0 or TG_ERR_*.
 */
int tg_tok_create(const struct tg_tok_params *p, const struct tg_tok_host *host,
                  struct tg_tok **out);

/*
 * Restores a token from a persistent-state blob written by tg_tok_save or
 * handed to the persist callback. Checks version and checksum:
 * TG_ERR_VERSION, TG_ERR_CHECKSUM, TG_ERR_FORMAT. *out owned by the caller.
 */
int tg_tok_load(const uint8_t *blob, size_t len, const struct tg_tok_host *host,
                struct tg_tok **out);

/* Serialises the persistent state. *blob is heap memory the caller wipes
 * and frees (tg_freezero(*blob, *len)). */
int tg_tok_save(const struct tg_tok *t, uint8_t **blob, size_t *len);

/* Wipes every secret and frees the token. NULL accepted. */
void tg_tok_free(struct tg_tok *t);

/*
 * Processes one command APDU (as received from the reader: CLA INS P1 P2
 * [Lc data] [Le], short or extended APDUs, chaining with CLA bit 0x10;
 * SELECT chooses the PIV or the YubiKey management application) and writes the
 * response APDU, data followed by SW1 SW2, into rsp (capacity rspcap, at
 * least 258). Responses longer than 256 data bytes are returned in parts
 * with SW 61xx and fetched with GET RESPONSE. Never fails for bad input —
 * bad input gets the fitting status word. Returns 0, or TG_ERR_INVALID_ARG
 * when rspcap is too small.
 */
int tg_tok_apdu(struct tg_tok *t, const uint8_t *cmd, size_t cmdlen, uint8_t *rsp, size_t rspcap,
                size_t *rsplen);

/* Card reset (warm or cold) and power-off: volatile state (PIN verified,
 * management key authenticated, selected application, chaining buffers,
 * pending responses) is cleared; persistent state is kept. */
void tg_tok_reset(struct tg_tok *t);
void tg_tok_power_off(struct tg_tok *t);

/* The ATR to answer with (T=1, YubiKey 5 style). Static, never NULL. */
const uint8_t *tg_tok_atr(size_t *len);

/*
 * Faults: deliberate misbehaviour of a broken or malicious token, so that
 * tests can show the host refuses it. Set only by the simulator's
 * `run --fault` and by tests; never persisted, 0 after create and load.
 */
#define TG_TOK_FAULT_ATTEST_OTHER_KEY                                                              \
	0x01u /* ATTEST certifies a freshly made key of
                                               the slot's algorithm, not the slot's key */

/* Sets the faults (TG_TOK_FAULT_* bits, 0 for none) of t. NULL accepted. */
void tg_tok_faults_set(struct tg_tok *t, unsigned faults);

/* ---- read-only view for `tokengate-sim status` and tests ---- */

struct tg_tok_slot_info {
	uint8_t slot;            /* 0x9A, 0x9C, 0x9D, 0x9E, 0x82..0x95, 0xF9 */
	uint8_t algorithm;       /* PIV alg id, 0 when empty */
	uint8_t origin;          /* TG_PIV_ORIGIN_* (tg_piv.h) */
	uint8_t pin_policy;      /* 1 never, 2 once, 3 always */
	uint8_t touch_policy;    /* 1 never, 2 always, 3 cached */
	const uint8_t *cert_der; /* certificate in the slot's object, or NULL */
	size_t cert_len;
};

struct tg_tok_info {
	uint32_t serial;
	uint8_t version[3];
	uint8_t form_factor;
	uint8_t pin_tries_left, pin_tries_max;
	uint8_t puk_tries_left, puk_tries_max;
	int default_pin, default_puk, default_mgm_key; /* 1 if still factory */
	uint8_t mgm_key_alg;
	uint64_t private_key_operations; /* persisted count */
	size_t nslots;
	struct tg_tok_slot_info slots[26]; /* 9A 9C 9D 9E, 82..95 retired, F9 */
};

/* Fills *info; pointers in it borrow from t and live until the next
 * tg_tok_apdu or tg_tok_free. Only slots with a key or certificate listed. */
void tg_tok_info_get(const struct tg_tok *t, struct tg_tok_info *info);

#endif /* TG_TOK_H */
