/*
 * p11-int.h — internals of libtgp11 shared by its modules. Not installed,
 * not included outside pkcs11/.
 */
#ifndef TG_P11_INT_H
#define TG_P11_INT_H

#include <pthread.h>
#include <sys/types.h>

#include <libp11.h>
#include <openssl/ui.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "tg_p11.h"

/* tg_piv.h keeps PKCS#11 key types as numbers (tgcore has no PKCS#11
 * header): they must be the CKK_* values. */
_Static_assert(TG_PIV_CKK_RSA == CKK_RSA && TG_PIV_CKK_EC == CKK_EC &&
                   TG_PIV_CKK_DES3 == CKK_DES3 && TG_PIV_CKK_AES == CKK_AES &&
                   TG_PIV_CKK_EC_EDWARDS == CKK_EC_EDWARDS,
               "tg_piv.h key types are PKCS#11's");

#define TG_P11_PROXY_MODULE  "p11-kit-proxy.so"
#define TG_P11_ID_SHOWN      64 /* id bytes shown in hex in messages */
#define TG_P11_HEX_BUF       (2 * TG_P11_ID_SHOWN + 32)
#define TG_P11_LABEL_MAX     128
#define TG_P11_RANDOM_ID_LEN 16

/* One loaded module: our own function list (attribute reads, key
 * generation, slot events) and libp11's context over the same dlopen handle
 * (keys as EVP_PKEY). Both share one C_Initialize. */
/* Where a key with CKA_ALWAYS_AUTHENTICATE gets its PIN for the
 * context-specific login libp11 does before each signature: the PIN source
 * of the URI it was found with (read again each time, never kept; a copy
 * of a pin-value source holds no value). */
struct tg_p11_auth {
	struct tg_p11_auth *next;
	CK_SLOT_ID slot;
	struct tg_pin_src *pin;
};

/* A libp11 slot array replaced by tg_p11_module_refresh: kept (its slot
 * objects may serve EVP_PKEYs and releasing them closes sessions) until
 * the module is unloaded. */
struct tg_p11_retired {
	struct tg_p11_retired *next;
	PKCS11_SLOT *slots;
	unsigned n;
};

#define TG_P11_RETIRED_MAX 16 /* refreshes per module */

struct tg_p11_module {
	struct tg_p11_module *next;
	struct tg_p11 *p;
	UI_METHOD *ui; /* libp11's PIN prompt: answers from tg_p11_auth */
	struct tg_p11_auth *auth;
	char path[256];
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	PKCS11_CTX *lp;
	PKCS11_SLOT *lslots;
	unsigned nlslots;
	struct tg_p11_retired *retired; /* earlier lslots (tg_p11_module_refresh) */
	unsigned nretired;
	int slot_events; /* 1: C_WaitForSlotEvent worked without blocking */
};

struct tg_p11 {
	struct tg_p11 *next;  /* all contexts of the process (fork handlers) */
	pthread_mutex_t lock; /* module list, setup calls, watcher polls */
	pid_t pid;            /* process that initialized the modules */
	struct tg_p11_module *mods;
};

struct tg_p11_uri {
	P11KitUri *u;
	char *str;                         /* as given, pin-value masked */
	char *attr[TG_P11_URI_ATTR_COUNT]; /* decoded strings */
	uint8_t *id;
	size_t id_len;
	int has_id;
	int has_slot_id;
	unsigned long slot_id;
};

struct tg_p11_token {
	struct tg_p11 *p;
	struct tg_p11_module *m;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE sess; /* our own session, used under p->lock */
	pid_t sess_pid;
	PKCS11_SLOT *lslot; /* libp11's slot (borrowed from m->lslots) */
	struct tg_p11_token_info info;
	int logged_in;
	char *uri;              /* the URI it was opened with, without any pin-value
				   (tg_p11_uri_format): found again after a reinsertion */
	struct tg_pin_src *pin; /* that URI's PIN source: read at each login */
};

struct tg_p11_key {
	struct tg_p11_token *t;
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE type;
	char *label; /* whole CKA_LABEL, NUL-terminated ("" when none) */
	uint8_t *id; /* whole CKA_ID (heap, never NULL: an empty id matches
		       only empty ids in C_FindObjects templates) */
	size_t id_len;
	enum tg_p11_alg alg;
	int bits;
	struct tg_p11_trust trust;
	EVP_PKEY *pub;      /* public key: the private object's own attributes, or a
			  candidate proven by a signature through h */
	EVP_PKEY *evp;      /* libp11 key, checked to be h (tg_p11_key_evp_get) */
	char pub_why[1024]; /* when pub is NULL: why it could not be established */
	unsigned flags;
};

/* module.c */
void tg_p11_lock(struct tg_p11 *p);
void tg_p11_unlock(struct tg_p11 *p);
/* Loads (once) the module the URI names, p->lock held. */
int tg_p11_module_get(struct tg_p11 *p, const struct tg_p11_uri *u, struct tg_p11_module **out,
                      struct tg_error *err);
/* Re-initializes modules after fork(); p->lock held. */
void tg_p11_fork_check(struct tg_p11 *p);
/* libp11's slot for a slot id (re-enumerating once when absent). */
PKCS11_SLOT *tg_p11_module_lslot(struct tg_p11_module *m, CK_SLOT_ID id);
/* Re-enumerates libp11's slots after key generation: a fresh array, the
 * old one kept alive (struct tg_p11_retired), never libp11 0.4.12's
 * crashing PKCS11_update_slots. The slot array moves: never keep
 * PKCS11_SLOT pointers across it. 0, or TG_ERR_PKCS11 (enumeration failed,
 * out of memory, or TG_P11_RETIRED_MAX refreshes done: lslots unchanged). */
int tg_p11_module_refresh(struct tg_p11_module *m);
/* Rebuilds libp11's slots from scratch after a token came back (its old
 * slot and key objects stay alive, refcounted, while EVP_PKEYs hold them). */
int tg_p11_module_rebuild(struct tg_p11_module *m);
/* Registers the PIN source of a CKA_ALWAYS_AUTHENTICATE key (a copy of
 * pin, tg_pin_src_dup); p->lock held. */
int tg_p11_module_auth_add(struct tg_p11_module *m, CK_SLOT_ID slot, const struct tg_pin_src *pin);
/* "CKR_PIN_INCORRECT" etc. */
const char *tg_p11_ckr_name(CK_RV rv);

/* token.c */
/* tg_p11_token_login with the PIN read from src, which is left as it is
 * (a pin-value is not spent: the caller spends it when its call ends). */
int tg_p11_token_login_src(struct tg_p11_token *t, struct tg_pin_src *src, unsigned flags,
                           struct tg_error *err);
/* Our session on the token (reopened after fork); p->lock held. */
int tg_p11_token_session(struct tg_p11_token *t, CK_SESSION_HANDLE *s, struct tg_error *err);
int tg_p11_token_refresh_info(struct tg_p11_token *t);
/* Copies a space-padded PKCS#11 string into a NUL-terminated one. */
void tg_p11_padded_copy(char *dst, size_t dstsz, const unsigned char *src, size_t srclen);
/* "'label' (manufacturer, serial S)" list of tokens into buf. */
void tg_p11_tokens_describe(const struct tg_p11_token_info *v, size_t n, char *buf, size_t bufsz);

/* key.c / trust.c */
int tg_p11_key_load(struct tg_p11_token *t, CK_OBJECT_HANDLE h, unsigned flags,
                    struct tg_p11_key **out, struct tg_error *err);
/*
 * Binds k to object h again (after its token was removed and inserted:
 * handles may change) only when h is the same key: its public key,
 * established as tg_p11_key_find does (own attributes or a candidate proven
 * by a signature through h), equals k's, and its trust attributes (read
 * again; earlier card evidence carried over, since it was about this public
 * key) pass k's flags. p->lock held. 0 (k->h and k->trust updated), or
 * TG_ERR_CERT_MISMATCH "the key now on token 't' under the id of key 'k'
 * is not the key that was checked ..." / TG_ERR_KEY_EXPORTABLE (the trust
 * refusal) / the errors of the lookup. k is unchanged on error.
 */
int tg_p11_key_rebind(struct tg_p11_key *k, CK_OBJECT_HANDLE h, struct tg_error *err);
void tg_p11_trust_read(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                       struct tg_p11_trust *tr);
/* Reads an attribute into a new heap buffer; 0 or CKR. */
CK_RV tg_p11_attr_get(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, uint8_t **out, size_t *len);
/* Builds the public key of a key/cert object from its attributes. */
int tg_p11_pub_from_object(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                           CK_KEY_TYPE type, EVP_PKEY **out);
/* Finds objects of a class with optional label/id: handles in *out. */
int tg_p11_objects_find(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                        const char *label, const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE **out,
                        size_t *n, struct tg_error *err);
enum tg_p11_alg tg_p11_alg_of(const EVP_PKEY *pk, int *bits);
/* hex of id into buf ("-" when empty); an id longer than fits is shown as
 * its first bytes followed by "...(N bytes)", never cut silently. */
void tg_p11_hex(const uint8_t *id, size_t len, char *buf, size_t bufsz);

#endif /* TG_P11_INT_H */
