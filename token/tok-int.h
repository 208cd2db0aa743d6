/*
 * tok-int.h — internals of the PIV token core (libtgtoken), shared by its
 * modules: apdu.c (APDU framing, chaining), piv.c (dispatcher, SELECT),
 * objects.c (GET/PUT DATA), pin.c (PIN/PUK), mgmt.c (management key),
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
#include "tg_tok.h"

/* ---- status words (ISO/IEC 7816-4, SP 800-73-4 Part 2 Table 6) ---- */
#define SW_OK                   0x9000
#define SW_BYTES_REMAINING      0x6100 /* | count, response chaining */
#define SW_VERIFY_FAIL          0x63C0 /* | tries left */
#define SW_MEMORY_FAILURE       0x6581
#define SW_WRONG_LENGTH         0x6700
#define SW_LAST_CMD_EXPECTED    0x6883
#define SW_SECURITY_STATUS      0x6982
#define SW_AUTH_BLOCKED         0x6983
#define SW_CONDITIONS           0x6985
#define SW_WRONG_DATA           0x6A80
#define SW_FUNC_NOT_SUPPORTED   0x6A81
#define SW_FILE_NOT_FOUND       0x6A82
#define SW_NOT_ENOUGH_MEMORY    0x6A84
#define SW_INCORRECT_P1P2       0x6A86
#define SW_REF_NOT_FOUND        0x6A88
#define SW_INS_NOT_SUPPORTED    0x6D00
#define SW_CLA_NOT_SUPPORTED    0x6E00
#define SW_NO_PRECISE_DIAGNOSIS 0x6F00

/* ---- CLA and INS ---- */
#define CLA_ISO              0x00
#define CLA_CHAIN            0x10 /* ISO 7816-4 5.1.1 command chaining bit */
#define INS_SELECT           0xA4
#define INS_GET_DATA         0xCB
#define INS_PUT_DATA         0xDB
#define INS_VERIFY           0x20
#define INS_CHANGE_REFERENCE 0x24
#define INS_RESET_RETRY      0x2C
#define INS_GENERATE         0x47
#define INS_GENERAL_AUTH     0x87
#define INS_GET_CHALLENGE    0x84
#define INS_GET_RESPONSE     0xC0
/* Yubico extensions */
#define INS_SET_MGMKEY      0xFF
#define INS_IMPORT_KEY      0xFE
#define INS_GET_VERSION     0xFD
#define INS_RESET           0xFB
#define INS_SET_PIN_RETRIES 0xFA
#define INS_ATTEST          0xF9
#define INS_GET_SERIAL      0xF8
#define INS_GET_METADATA    0xF7

/* ---- PIV algorithm identifiers (SP 800-78-4 Table 6-2, Yubico) ---- */
#define PIV_ALG_3DES    0x03
#define PIV_ALG_RSA3072 0x05
#define PIV_ALG_RSA1024 0x06
#define PIV_ALG_RSA2048 0x07
#define PIV_ALG_AES128  0x08
#define PIV_ALG_AES192  0x0A
#define PIV_ALG_AES256  0x0C
#define PIV_ALG_ECCP256 0x11
#define PIV_ALG_ECCP384 0x14
#define PIV_ALG_PIN     0xFF /* Yubico metadata for PIN/PUK */

/* ---- key references ---- */
#define PIV_REF_PIN        0x80
#define PIV_REF_PUK        0x81
#define PIV_REF_MGM        0x9B
#define PIV_SLOT_AUTH      0x9A
#define PIV_SLOT_SIGN      0x9C
#define PIV_SLOT_KEYMGM    0x9D
#define PIV_SLOT_CARDAUTH  0x9E
#define PIV_SLOT_RETIRED1  0x82
#define PIV_SLOT_RETIRED20 0x95
#define PIV_SLOT_ATTEST    0xF9

/* ---- policies (Yubico) ---- */
#define PIV_PIN_POLICY_DEFAULT   0x00
#define PIV_PIN_POLICY_NEVER     0x01
#define PIV_PIN_POLICY_ONCE      0x02
#define PIV_PIN_POLICY_ALWAYS    0x03
#define PIV_TOUCH_POLICY_DEFAULT 0x00
#define PIV_TOUCH_POLICY_NEVER   0x01
#define PIV_TOUCH_POLICY_ALWAYS  0x02
#define PIV_TOUCH_POLICY_CACHED  0x03
#define TOK_TOUCH_CACHE_MS       15000

/* ---- TLV tags ---- */
#define PIV_TAG_DYN_AUTH       0x7C /* dynamic authentication template */
#define PIV_TAG_WITNESS        0x80
#define PIV_TAG_CHALLENGE      0x81
#define PIV_TAG_RESPONSE       0x82
#define PIV_TAG_EXPONENTIATION 0x85
#define PIV_TAG_TAGLIST        0x5C
#define PIV_TAG_DATA           0x53
#define PIV_TAG_CERT           0x70
#define PIV_TAG_CERTINFO       0x71
#define PIV_TAG_ERRDET         0xFE
#define PIV_TAG_PUBKEY         0x7F49
#define PIV_TAG_RSA_N          0x81
#define PIV_TAG_RSA_E          0x82
#define PIV_TAG_EC_POINT       0x86
#define PIV_TAG_GEN_CONTROL    0xAC
#define PIV_TAG_GEN_ALG        0x80
#define PIV_TAG_PIN_POLICY     0xAA
#define PIV_TAG_TOUCH_POLICY   0xAB
#define PIV_TAG_APT            0x61 /* application property template */
#define PIV_TAG_AID            0x4F
#define PIV_TAG_AUTHORITY      0x79
#define PIV_TAG_PIN_USAGE      0x5F2F

/* data object tags (SP 800-73-4 Part 1 Table 3, Yubico) */
#define PIV_OBJ_DISCOVERY    0x7E
#define PIV_OBJ_CARDAUTH     0x5FC101
#define PIV_OBJ_CHUID        0x5FC102
#define PIV_OBJ_FINGERPRINTS 0x5FC103
#define PIV_OBJ_AUTH         0x5FC105
#define PIV_OBJ_SECURITY     0x5FC106
#define PIV_OBJ_CCC          0x5FC107
#define PIV_OBJ_FACIAL       0x5FC108
#define PIV_OBJ_PRINTED      0x5FC109
#define PIV_OBJ_SIGN         0x5FC10A
#define PIV_OBJ_KEYMGM       0x5FC10B
#define PIV_OBJ_KEY_HISTORY  0x5FC10C
#define PIV_OBJ_RETIRED1     0x5FC10D
#define PIV_OBJ_RETIRED20    0x5FC120
#define PIV_OBJ_IRIS         0x5FC121
#define PIV_OBJ_ADMIN        0x5FFF00 /* Yubico admin data (ykman) */
#define PIV_OBJ_ATTEST       0x5FFF01

/* Yubico import tags */
#define YK_TAG_RSA_P    0x01
#define YK_TAG_RSA_Q    0x02
#define YK_TAG_RSA_DP   0x03
#define YK_TAG_RSA_DQ   0x04
#define YK_TAG_RSA_QINV 0x05
#define YK_TAG_EC_PRIV  0x06

/* Yubico metadata tags (GET METADATA, firmware 5.3+) */
#define YK_META_ALG     0x01
#define YK_META_POLICY  0x02
#define YK_META_ORIGIN  0x03
#define YK_META_PUBKEY  0x04
#define YK_META_DEFAULT 0x05
#define YK_META_RETRIES 0x06

/* ---- sizes ---- */
#define TOK_NSLOTS        25 /* 9A 9C 9D 9E, 82..95, F9 */
#define TOK_NOBJS         40
#define TOK_OBJ_MAX       3052 /* YubiKey 5 data object capacity */
#define TOK_CHAIN_MAX     3200 /* command chaining buffer */
#define TOK_RSP_MAX       4096 /* one response before chunking */
#define TOK_PIN_LEN       8
#define TOK_PIN_MIN       6
#define TOK_MGM_MAX       32
#define TOK_SHORT_MAX     256
#define TOK_DEFAULT_TRIES 3

struct tok_slot {
	uint8_t id;           /* PIV key reference */
	uint8_t alg;          /* PIV_ALG_*, 0 when empty */
	uint8_t origin;       /* TG_TOK_ORIGIN_* */
	uint8_t pin_policy;   /* PIV_PIN_POLICY_* (never 0 once set) */
	uint8_t touch_policy; /* PIV_TOUCH_POLICY_* */
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

/* Volatile state: cleared on reset and power-off. */
struct tok_vol {
	int selected;  /* PIV application selected */
	int pin_ok;    /* PIN verified (security status) */
	int pin_fresh; /* VERIFY just succeeded: one PIN-always op allowed */
	int mgm_ok;    /* management key authenticated */
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
	struct tok_slot slots[TOK_NSLOTS];
	struct tok_obj objs[TOK_NOBJS];
	/* volatile */
	struct tok_vol v;
};

/* A parsed command APDU. data reads the command data (the chaining buffer
 * for a chained command). */
struct tok_apdu {
	uint8_t cla, ins, p1, p2;
	struct tg_buf data;
	size_t le; /* 0 when absent; 1..256 otherwise */
};

/* ---- apdu.c ---- */
/* Splits a short command APDU; SW_OK or the status word to answer. */
uint16_t tok_apdu_parse(const uint8_t *cmd, size_t len, struct tok_apdu *a);

/* ---- piv.c ---- */
/* Runs one complete (unchained) command; response data into out. */
uint16_t tok_piv_dispatch(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_select(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);

/* ---- objects.c ---- */
uint16_t tok_get_data(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
uint16_t tok_put_data(struct tg_tok *t, struct tok_apdu *a, struct tg_buf *out);
/* Object storage by tag: NULL when the tag is not a known object. */
struct tok_obj *tok_obj_find(struct tg_tok *t, uint32_t tag);
/* Replaces an object's content (copy); n == 0 deletes it. 0 or TG_ERR_*. */
int tok_obj_set(struct tg_tok *t, uint32_t tag, const uint8_t *p, size_t n);
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
/* Saves the state through host->persist: 0, or -1 (answer 6581). */
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
