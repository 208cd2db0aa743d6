/*
 * evidence.c — a token key found with the card's own evidence of its
 * origin (PIV GET METADATA over PC/SC for OpenSC's PIV tokens) and the PIV
 * slot's purpose in errors (tok-int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_piv.h"
#include "tg_pivc.h"
#include "tok-int.h"

/* What GET METADATA says about one PIV slot. */
struct piv_slot_meta {
	uint8_t slot;
	uint8_t origin;
	EVP_PKEY *pub;
};

#define PIV_SLOTS      (TG_PIV_NSLOTS - 1) /* every key slot but F9 */
#define OPENSC_PIV_MFR "piv_II"            /* OpenSC's PIV driver as token manufacturer */

/*
 * Reads GET METADATA of every PIV key slot of the card in `reader` into v
 * (slots without a key, or without origin, are left out). Done before any
 * PKCS#11 login: closing our PC/SC connection resets the card. Returns how
 * many were read; a card that is not a PIV card with GET METADATA gives 0
 * and *why.
 */
static size_t
piv_meta_read(const char *reader, struct piv_slot_meta *v, char *why, size_t whysz)
{
	struct tg_pivc *pc = NULL;
	struct tg_pivc_meta m;
	struct tg_error e;
	size_t n = 0, i;
	uint8_t slot;
	int r;

	memset(&m, 0, sizeof(m));
	tg_error_clear(&e);
	if ((r = tg_pivc_open(reader, &pc, &e)) != 0) {
		snprintf(why, whysz, "%s", tg_error_msg(&e, r));
		goto out;
	}
	for (i = 0; i < PIV_SLOTS; i++) {
		slot = tg_piv_slot_at(i)->id; /* 9A 9C 9D 9E 82..95, then F9 (not read) */
		tg_error_clear(&e);
		if ((r = tg_pivc_metadata(pc, slot, &m, &e)) == TG_ERR_UNSUPPORTED) {
			snprintf(why, whysz, "%s", tg_error_msg(&e, r));
			break;
		}
		if (r == 0 && m.origin != 0 && m.pub != NULL) {
			v[n].slot = slot;
			v[n].origin = m.origin;
			v[n++].pub = m.pub;
			m.pub = NULL;
		}
		tg_pivc_meta_clear(&m);
	}
out:
	tg_pivc_meta_clear(&m);
	tg_pivc_close(pc);
	return n;
}

unsigned
tg_tokcmd_piv_slot(struct tg_p11_key *k)
{
	const struct tg_p11_token_info *ti = tg_p11_token_get_info(tg_p11_key_token(k));
	const uint8_t *id;
	size_t len = 0;
	unsigned slot = 0;

	id = tg_p11_key_id(k, &len);
	if (tg_p11_trust_emulated(ti->model) && strcmp(ti->manufacturer, OPENSC_PIV_MFR) == 0 &&
	    len == 1 && tg_piv_slot_by_p11_id(id[0]) != NULL)
		slot = tg_piv_slot_by_p11_id(id[0])->id;
	return slot;
}

int
tg_tokcmd_piv_purpose(struct tg_p11_key *k, int r, struct tg_error *err)
{
	if (r == 0 || err == NULL || tg_tokcmd_piv_slot(k) != TG_PIV_SLOT_KEYMGM)
		goto out;
	/* the token's own message (err->msg may be an argument of set) */
	tg_error_set(err, r,
	             "key '%s' is in PIV slot 9D, the key-management slot: it is for decryption "
	             "and key agreement, not for signing (the card's certificate for it allows "
	             "no digitalSignature), so the token refuses to sign with it; use a key in "
	             "slot 9A (authentication) or 9C (digital signature). The token said: %s",
	             tg_p11_key_label(k), tg_error_msg(err, r));
out:
	return r;
}

int
tg_tokcmd_key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                   struct tg_error *err)
{
	struct piv_slot_meta v[PIV_SLOTS];
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust tr;
	EVP_PKEY *pub = NULL;
	char why[256], ev[64], reader[65], *pem = NULL;
	size_t n = 0, i;
	int emulated = 0, r;

	why[0] = '\0';
	if ((r = tg_p11_token_open(p, uri, &t, err)) != 0)
		goto out;
	emulated = tg_p11_trust_emulated(tg_p11_token_get_info(t)->model);
	snprintf(reader, sizeof(reader), "%s", tg_p11_token_get_info(t)->slot_desc);
	if (emulated)
		n = piv_meta_read(reader, v, why, sizeof(why));
	if ((r = tg_p11_key_find(p, uri, flags | TG_P11_KEY_DEFER_TRUST, &k, err)) != 0)
		goto out;
	pub = tg_p11_key_public(k);
	if (pub == NULL && tg_tokcmd_piv_slot(k) == TG_PIV_SLOT_KEYMGM) {
		/* its public key is proven by a signature, which 9D refuses:
		 * the cause is the reason no public key was proven */
		if ((r = tg_p11_key_public_pem(k, &pem, err)) == 0)
			r = TG_ERR_CERT_MISMATCH; /* not reached: pub is NULL */
		r = tg_tokcmd_piv_purpose(k, r, err);
		goto out;
	}
	for (i = 0; i < n && pub != NULL; i++) {
		if (EVP_PKEY_eq(v[i].pub, pub) != 1)
			continue;
		snprintf(ev, sizeof(ev), "PIV metadata of slot %02X", v[i].slot);
		if (v[i].origin == TG_PIV_ORIGIN_GENERATED)
			(void)tg_p11_key_origin_set(k, TG_P11_ORIGIN_GENERATED, ev);
		else if (v[i].origin == TG_PIV_ORIGIN_IMPORTED)
			(void)tg_p11_key_origin_set(k, TG_P11_ORIGIN_IMPORTED, ev);
		break;
	}
	tg_p11_key_trust(k, &tr);
	if (emulated && tr.origin == TG_P11_ORIGIN_NONE)
		fprintf(stderr, "note: no PIV metadata for this key from reader '%s'%s%s\n", reader,
		        why[0] ? ": " : "", why);
	if (!(flags & TG_P11_KEY_DEFER_TRUST) && (r = tg_p11_key_trust_check(k, flags, err)) != 0)
		goto out;
	*out = k;
	k = NULL;
	r = 0;
out:
	free(pem);
	for (i = 0; i < n; i++)
		EVP_PKEY_free(v[i].pub);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_token_free(t);
	return r;
}

int
tg_tokcmd_key_open(const struct tg_tokcmd_opts *o, struct tg_p11 **p, struct tg_p11_key **k,
                   struct tg_error *err)
{
	unsigned flags = TG_P11_KEY_INTERACTIVE | (o->allow ? TG_P11_KEY_ALLOW_EXPORTABLE : 0) |
	                 (o->allow_imported ? TG_P11_KEY_ALLOW_IMPORTED : 0);
	int r;

	if ((r = tg_p11_new(p, err)) == 0)
		r = tg_tokcmd_key_find(*p, o->key, flags, k, err);
	return r;
}
