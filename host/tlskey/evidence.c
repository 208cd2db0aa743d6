/*
 * evidence.c — a token key found with the card's own evidence of its
 * origin (tg_tlskey.h: tg_tlskey_key_evidence; tlskey-int.h:
 * tg_tlskey_key_find). A PKCS#15-emulated token (OpenSC's PIV driver)
 * shows no CKA_LOCAL / CKA_NEVER_EXTRACTABLE the card vouches for, so
 * libtgp11's verdict is "unknown"; the PIV card says itself, in GET
 * METADATA (tag 03), whether the key of a slot was generated on it. The
 * slot whose public key equals the key's gives the evidence
 * (tg_p11_key_origin_set). `tokengate token` finds its keys the same way.
 */
#include <stdio.h>
#include <string.h>

#include "tg_piv.h"
#include "tg_pivc.h"
#include "tg_tlskey.h"
#include "tlskey-int.h"

/* What GET METADATA says about one PIV slot. */
struct slot_meta {
	uint8_t slot;
	uint8_t origin;
	EVP_PKEY *pub;
};

#define PIV_SLOTS (TG_PIV_NSLOTS - 1) /* every key slot but F9 */

/*
 * GET METADATA of every PIV key slot of the card in `reader` into v.
 * Before any PKCS#11 login of this call: closing the PC/SC connection
 * resets the card. Returns how many were read; 0 and *why when the card
 * has no GET METADATA (or cannot be reached).
 */
static size_t
meta_read(const char *reader, struct slot_meta *v, char *why, size_t whysz)
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
		slot = tg_piv_slot_at(i)->id;
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

int
tg_tlskey_key_evidence(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                       struct tg_tlskey_card *card, struct tg_error *err)
{
	struct slot_meta v[PIV_SLOTS];
	struct tg_p11_token *t = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_p11_trust tr;
	EVP_PKEY *pub = NULL;
	char ev[64];
	size_t n = 0, i;
	int r;

	memset(card, 0, sizeof(*card));
	if ((r = tg_p11_token_open(p, uri, &t, err)) != 0)
		goto out;
	card->emulated = tg_p11_trust_emulated(tg_p11_token_get_info(t)->model);
	snprintf(card->reader, sizeof(card->reader), "%s", tg_p11_token_get_info(t)->slot_desc);
	if (card->emulated)
		n = meta_read(card->reader, v, card->why, sizeof(card->why));
	if ((r = tg_p11_key_find(p, uri, flags | TG_P11_KEY_DEFER_TRUST, &k, err)) != 0)
		goto out;
	pub = tg_p11_key_public(k);
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
	card->no_evidence = card->emulated && tr.origin == TG_P11_ORIGIN_NONE;
	*out = k;
	k = NULL;
out:
	for (i = 0; i < n; i++)
		EVP_PKEY_free(v[i].pub);
	EVP_PKEY_free(pub);
	tg_p11_key_free(k);
	tg_p11_token_free(t);
	return r;
}

int
tg_tlskey_key_find(struct tg_p11 *p, const char *uri, unsigned flags, struct tg_p11_key **out,
                   struct tg_error *err)
{
	struct tg_tlskey_card card;
	struct tg_p11_key *k = NULL;
	int r;

	if ((r = tg_tlskey_key_evidence(p, uri, flags, &k, &card, err)) != 0)
		goto out;
	if ((r = tg_p11_key_trust_check(k, flags, err)) != 0) {
		if (card.no_evidence && err != NULL)
			tg_error_set(err, r, "%s (no PIV metadata for it from reader '%s'%s%s)",
			             tg_error_msg(err, r), card.reader, card.why[0] ? ": " : "",
			             card.why);
		goto out;
	}
	*out = k;
	k = NULL;
out:
	tg_p11_key_free(k);
	return r;
}
