/*
 * tok-int.h — internals of the PIV token core (libtgtoken), shared by its
 * modules: apdu.c (APDU framing, chaining), piv.c (dispatcher, SELECT),
 * mgmt_app.c (the YubiKey management application), objects.c (GET/PUT
 * DATA), pin.c (PIN/PUK), mgmt.c (management key),
 * keys.c (GENERATE, IMPORT, METADATA), sign.c (private-key operations),
 * attest.c (slot F9, ATTEST), state.c (persistent state), tok.c (lifecycle).
 *
 * Not a public API: only the token's modules and its white-box tests include
 * this header.
 */
#ifndef TOK_INT_H
#define TOK_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tg_buf.h"
#include "tg_piv.h"
#include "tg_tok.h"

#define TOK_TOUCH_CACHE_MS 15000 /* the cached touch policy's window */

/* ---- sizes ---- */
#define TOK_NOBJS         64          /* data objects held at once */
#define TOK_OBJ_MAX       3052        /* YubiKey 5 data object capacity */
#define TOK_OBJ_TOTAL     (64 * 1024) /* bytes all data objects hold */
#define TOK_CHAIN_MAX     3200        /* command chaining buffer */
#define TOK_RSP_MAX       4096        /* one response before chunking */
#define TOK_PIN_LEN       8
#define TOK_PIN_MIN       6
#define TOK_MGM_MAX       32
#define TOK_SHORT_MAX     256
#define TOK_EXT_MAX       65536 /* Le 0000 of an extended APDU */
#define TOK_DEFAULT_TRIES 3

struct tok_slot {
	uint8_t id;           /* PIV key reference */
	uint8_t alg;          /* TG_PIV_ALG_*, 0 when empty */
	uint8_t origin;       /* TG_PIV_ORIGIN_* */
	uint8_t pin_policy;   /* TG_PIV_PIN_POLICY_* (never 0 once set) */
	uint8_t touch_policy; /* TG_PIV_TOUCH_POLICY_* */
	EVP_PKEY *pkey;       /* the key pair, NULL when empty */
	uint64_t touch_ms;    /* not persisted: last touch (cached policy); kept across reset */
	int touch_valid;      /* volatile: touch_ms holds a touch */
};

struct tok_obj {
	uint32_t tag;
	uint8_t *data; /* content of the 53 template, heap, NULL = absent */
	size_t len;
};

enum tok_mgm_state {
	TOK_MGM_IDLE = 0,
	TOK_MGM_WITNESS,   /* witness sent, mutual auth step 2 expected */
	TOK_MGM_CHALLENGE, /* challenge sent, external auth response expected */
};

/* The application a SELECT made current. */
enum tok_app {
	TOK_APP_NONE = 0,
	TOK_APP_PIV,  /* PIV, A000000308 */
	TOK_APP_MGMT, /* the YubiKey management application, A000000527471117 */
};

/* Volatile state: cleared on reset and power-off. */
struct tok_vol {
	enum tok_app app; /* the selected application */
	int pin_ok;       /* PIN verified (security status) */
	int pin_fresh;    /* VERIFY just succeeded: one PIN-always op allowed */
	int mgm_ok;       /* management key authenticated */
	enum tok_mgm_state mgm_state;
	uint8_t mgm_nonce[16]; /* witness or challenge in flight */
	size_t mgm_nonce_len;
	/* command chaining */
	int chaining;
	uint8_t chain_ins, chain_p1, chain_p2;
	uint8_t chain[TOK_CHAIN_MAX];
	size_t chain_len;
	/* response chaining */
	uint8_t rsp[TOK_RSP_MAX];
	size_t rsp_len, rsp_off;
};

struct tg_tok {
	struct tg_tok_host host;
	unsigned faults; /* TG_TOK_FAULT_*, set by the host; never persisted */
	/* persistent */
	uint32_t serial;
	uint8_t version[3];
	uint8_t form_factor;
	uint8_t pin[TOK_PIN_LEN], pin_tries, pin_max;
	uint8_t puk[TOK_PIN_LEN], puk_tries, puk_max;
	uint8_t mgm_alg;
	uint8_t mgm_key[TOK_MGM_MAX];
	size_t mgm_len;
	uint8_t mgm_touch; /* 1: mgmt auth needs a touch */
	uint64_t ops;      /* private-key operations performed */
	struct tok_slot slots[TG_PIV_NSLOTS];
	struct tok_obj objs[TOK_NOBJS];
	/* volatile */
	struct tok_vol v;
};

/* A parsed command APDU. data reads the command data (the chaining buffer
 * for a chained command). */
struct tok_apdu {
	uint8_t cla, ins, p1, p2;
	struct tg_buf data;
	size_t le; /* 0 when absent; else 1..256 (an extended Le over 256 is
	              served 256 bytes at a time, through 61xx) */
};

/* ---- apdu.c ---- */
/* Splits a short or extended command APDU; TG_PIV_SW_OK or the status
 * word to answer. */
uint16_t tok_apdu_parse(const uint8_t *cmd, size_t len, struct tok_apdu *a);
/* For a command that takes neither parameters nor data: TG_PIV_SW_OK when
 * P1 = P2 = 00 and no data came, else 6A86 (P1 P2) or 6700 (data). */
uint16_t tok_apdu_bare(const struct tok_apdu *a);

/* ---- piv.c ---- */
/* Runs one complete (unchained) command; response data into out. */
uint16_t tok_piv_dispatch(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_select(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);

/* ---- mgmt_app.c ---- */
/* SELECT by AID (the unread bytes of aid, not consumed): when they name
 * the management application, selects it, writes the SELECT answer (the
 * firmware version as text) to out (NULL: no answer asked), sets *sw and
 * returns 1; otherwise returns 0 and changes nothing. */
int tok_mgmt_app_select(struct tg_tok *t, const struct tg_buf *aid, struct tg_buf *out,
                        uint16_t *sw);
/* Runs one command while the management application is selected. */
uint16_t tok_mgmt_app_dispatch(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);

/* ---- objects.c ---- */
uint16_t tok_get_data(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_put_data(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
/* 1 when the card accepts tag as a data object id (5F0000-5FFFFF, 7F61),
 * else 0. */
int tok_obj_allowed(uint32_t tag);
/* The object with tag, NULL when none was written. */
struct tok_obj *tok_obj_find(struct tg_tok *t, uint32_t tag);
/* Replaces an object's content (copy); n == 0 deletes it. 0,
 * TG_ERR_NOT_FOUND (tag not allowed), TG_ERR_NO_SPACE (over TOK_OBJ_MAX,
 * the TOK_OBJ_TOTAL bytes or the TOK_NOBJS objects), TG_ERR_ALLOC. */
int tok_obj_set(struct tg_tok *t, uint32_t tag, const uint8_t *p, size_t n);
/* Frees (wiping) every object but the one with tag keep. */
void tok_obj_clear_except(struct tg_tok *t, uint32_t keep);
/* Certificate object tag of a key slot, 0 for none. */
uint32_t tok_obj_cert_tag(uint8_t slot);
/* Installs the factory objects (CHUID with random GUID, CCC). */
int tok_obj_factory(struct tg_tok *t);
/* Frees every object. */
void tok_obj_clear_all(struct tg_tok *t);
/* Writes a certificate object body: 70 cert, 71 01 00, FE 00. */
int tok_obj_put_cert(struct tg_buf *b, const uint8_t *der, size_t n);
/* Borrowed DER certificate in a key slot's certificate object, or NULL. */
const uint8_t *tok_obj_slot_cert(const struct tg_tok *t, uint8_t slot, size_t *n);
/* Borrowed DER certificate from a certificate object body (NULL if none). */
const uint8_t *tok_obj_cert_der(const struct tok_obj *o, size_t *n);

/* ---- pin.c ---- */
uint16_t tok_verify(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_change_reference(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_reset_retry(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_set_pin_retries(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_factory_reset(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
/* Pads a 6-8 character PIN to 8 bytes with FF: 0 or TG_ERR_INVALID_ARG. */
int tok_pin_pad(const char *pin, uint8_t out[TOK_PIN_LEN]);

/* ---- mgmt.c ---- */
uint16_t tok_mgm_auth(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_set_mgm_key(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
/* Key length of a management-key algorithm, 0 if unsupported. */
size_t tok_mgm_key_len(uint8_t alg);
/* 1 when one of the three DES keys of a 3DES key is one of the 4 weak or 12
 * semi-weak DES keys (parity bits ignored), else 0. SET MANAGEMENT KEY
 * refuses such a key with 6A80. Degenerate keys (K1 == K2) are accepted,
 * as a YubiKey's tools accept them: the PIV default key is one. */
int tok_mgm_3des_weak(const uint8_t key[24]);
extern const uint8_t tok_mgm_default[24];

/* ---- keys.c ---- */
uint16_t tok_generate(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_import(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_metadata(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
/* Slot by key reference, NULL for unknown references. */
struct tok_slot *tok_slot_find(struct tg_tok *t, uint8_t id);
/* The algorithm table's row of alg when this card implements it (RSA
 * 1024, 2048, 3072, EC P-256, P-384), else NULL. */
const struct tg_piv_alg *tok_key_alg_row(uint8_t alg);
/* Generates a key pair for a PIV algorithm. 0 or TG_ERR_*. */
int tok_key_generate(uint8_t alg, EVP_PKEY **out);
/* PIV algorithm of a key (RSA size / curve), 0 if not a PIV algorithm. */
uint8_t tok_key_alg(const EVP_PKEY *pkey);
/* Appends the public key TLVs (81 n, 82 e or 86 point), no 7F49 wrapper. */
int tok_pubkey_put(struct tg_buf *b, const EVP_PKEY *pkey);
/* Empties a slot (frees the key). */
void tok_slot_clear(struct tok_slot *s);
/* Default PIN policy of a slot (9C: always; 9E: never; others: once). */
uint8_t tok_slot_default_pin_policy(uint8_t id);

/* ---- sign.c ---- */
uint16_t tok_general_auth(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_get_challenge(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);

/* ---- attest.c ---- */
uint16_t tok_attest(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
/* Generates the F9 key and its certificate signed by the manufacturer CA. */
int tok_attest_provision(struct tg_tok *t, const struct tg_tok_params *p);

/* ---- state.c ---- */
/* Saves the state through host->persist: 0, or TG_ERR_PERSIST (answer 6581). */
int tok_persist(struct tg_tok *t);

/* ---- tok.c ---- */
/* Clears the volatile state (wiping nonces and buffers). */
void tok_vol_clear(struct tg_tok *t);
/* A copy of src's persistent state (keys shared by reference), with fresh
 * volatile state and the given host; NULL on allocation failure. For the
 * fuzz target, which starts every input from one fixture. */
struct tg_tok *tok_dup(const struct tg_tok *src, const struct tg_tok_host *host);
/* Allocates an empty token (no keys, no objects, defaults). */
struct tg_tok *tok_alloc(const struct tg_tok_host *host);

#endif /* TOK_INT_H */
