/*
 * evidence.c — a token key found with the card's own evidence of its
 * origin (PIV GET METADATA over PC/SC for OpenSC's PIV tokens, through
 * tgtlskey's tg_tlskey_key_evidence) and the PIV slot's purpose in errors
 * (tok-int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_piv.h"
#include "tg_tlskey.h"
#include "tok-int.h"

#define OPENSC_PIV_MFR "piv_II" /* OpenSC's PIV driver as token manufacturer */

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
	struct tg_tlskey_card card;
	struct tg_p11_key *k = NULL;
	EVP_PKEY *pub = NULL;
	char *pem = NULL;
	int r;

	if ((r = tg_tlskey_key_evidence(p, uri, flags, &k, &card, err)) != 0)
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
	if (card.no_evidence)
		fprintf(stderr, "note: no PIV metadata for this key from reader '%s'%s%s\n",
		        card.reader, card.why[0] ? ": " : "", card.why);
	if (!(flags & TG_P11_KEY_DEFER_TRUST) && (r = tg_p11_key_trust_check(k, flags, err)) != 0)
		goto out;
	*out = k;
	k = NULL;
	r = 0;
out:
	free(pem);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
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
