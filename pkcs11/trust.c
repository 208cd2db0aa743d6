/*
 * trust.c — the non-exportability check of a private key (no private key
 * byte ever leaves a token): reads CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE,
 * CKA_ALWAYS_SENSITIVE, CKA_LOCAL, CKA_ALWAYS_AUTHENTICATE and CKA_PRIVATE
 * through the module's own function list (libp11 exposes none of them),
 * notes whether the token is PKCS#15 emulated (OpenSC: its origin
 * attributes are invented, not evidence) and draws the verdict with
 * tg_p11_trust_verdict, a pure function of those fields and of the card
 * evidence the host may add (tg_p11_key_origin_set).
 */
#include "p11-int.h"

#include <stdio.h>
#include <string.h>

/* TG_P11_ATTR_TRUE/FALSE for a CK_BBOOL of 0 or 1, TG_P11_ATTR_ABSENT when
 * the token does not report it, TG_P11_ATTR_INVALID for another value
 * (never read as false). */
static int
read_bool(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};
	int r = TG_P11_ATTR_ABSENT;

	if (t->m->f->C_GetAttributeValue(s, h, &a, 1) != CKR_OK || a.ulValueLen != sizeof(v))
		goto out;
	if (v == CK_TRUE)
		r = 1;
	else if (v == CK_FALSE)
		r = 0;
	else
		r = TG_P11_ATTR_INVALID;
out:
	return r;
}

/* Appends "; "-separated clause to tr->reason (cut if need be). */
static void
reason_add(struct tg_p11_trust *tr, const char *clause)
{
	size_t used = strlen(tr->reason);

	snprintf(tr->reason + used, sizeof(tr->reason) - used, "%s%s", used > 0 ? "; " : "",
	         clause);
}

/* Ends tr->reason with ", so ..." (cut if need be). */
static void
reason_so(struct tg_p11_trust *tr, const char *so)
{
	size_t used = strlen(tr->reason);

	snprintf(tr->reason + used, sizeof(tr->reason) - used, ", so %s", so);
}

/* Adds "CKA_X is not reported by the token" / "... has the value V, neither
 * true nor false" for each of the attributes that is not 0 or 1; returns
 * how many were. */
static int
unknown_add(struct tg_p11_trust *tr, int v, const char *name)
{
	char c[128];

	if (v == 0 || v == 1)
		return 0;
	if (v == TG_P11_ATTR_ABSENT)
		snprintf(c, sizeof(c), "the token does not report %s", name);
	else
		snprintf(c, sizeof(c), "the token reports %s as neither true nor false", name);
	reason_add(tr, c);
	return 1;
}

void
tg_p11_trust_verdict(struct tg_p11_trust *tr)
{
	int unknown = 0;

	tr->reason[0] = '\0';
	/* 1. exportable now: the strongest reason to refuse, whatever else */
	if (tr->extractable == 1)
		reason_add(tr, "CKA_EXTRACTABLE is true: the private key can be exported "
		               "(wrapped) out of the token");
	if (tr->sensitive == 0)
		reason_add(tr, "CKA_SENSITIVE is false: the private key value can be "
		               "read out of the token");
	if (tr->reason[0] != '\0') {
		tr->verdict = TG_P11_TRUST_EXPORTABLE;
		goto out;
	}
	/* 2. not shown to be non-exportable now */
	unknown += unknown_add(tr, tr->extractable, "CKA_EXTRACTABLE");
	unknown += unknown_add(tr, tr->sensitive, "CKA_SENSITIVE");
	if (unknown > 0) {
		tr->verdict = TG_P11_TRUST_UNKNOWN;
		reason_so(tr, "the key cannot be shown to be non-exportable");
		goto out;
	}
	/* 3. card evidence of the origin decides over module attributes */
	if (tr->origin == TG_P11_ORIGIN_IMPORTED) {
		tr->verdict = TG_P11_TRUST_IMPORTED;
		snprintf(tr->reason, sizeof(tr->reason),
		         "the card says the key was imported, not generated on it (%s): a "
		         "copy may exist elsewhere",
		         tr->evidence[0] ? tr->evidence : "card evidence");
		goto out;
	}
	if (tr->emulated) {
		if (tr->origin == TG_P11_ORIGIN_GENERATED) {
			tr->verdict = TG_P11_TRUST_OK;
			snprintf(tr->reason, sizeof(tr->reason),
			         "generated on the card (%s), sensitive and not extractable",
			         tr->evidence[0] ? tr->evidence : "card evidence");
		} else {
			tr->verdict = TG_P11_TRUST_UNKNOWN;
			reason_add(tr, "the token is PKCS#15 emulated: its module invents "
			               "CKA_LOCAL, CKA_NEVER_EXTRACTABLE and "
			               "CKA_ALWAYS_SENSITIVE, and no card evidence of the "
			               "key's origin (PIV metadata or attestation) was given");
		}
		goto out;
	}
	/* 4. the key's history, as the module records it */
	if (tr->never_extractable == 0 || tr->always_sensitive == 0) {
		tr->verdict = TG_P11_TRUST_ONCE_EXPORTABLE;
		if (tr->never_extractable == 0)
			reason_add(tr, "CKA_NEVER_EXTRACTABLE is false: the key was "
			               "extractable once");
		if (tr->always_sensitive == 0)
			reason_add(tr, "CKA_ALWAYS_SENSITIVE is false: the key was "
			               "readable once");
		if (tr->local == 0)
			reason_add(tr, "CKA_LOCAL is false: it was imported");
		reason_add(tr, "non-exportable now, but a copy may exist elsewhere");
		goto out;
	}
	unknown += unknown_add(tr, tr->never_extractable, "CKA_NEVER_EXTRACTABLE");
	unknown += unknown_add(tr, tr->always_sensitive, "CKA_ALWAYS_SENSITIVE");
	unknown += unknown_add(tr, tr->local, "CKA_LOCAL");
	if (unknown > 0) {
		tr->verdict = TG_P11_TRUST_UNKNOWN;
		reason_so(tr, "the key's origin cannot be shown");
		goto out;
	}
	if (tr->local == 0) {
		tr->verdict = TG_P11_TRUST_IMPORTED;
		reason_add(tr, "CKA_LOCAL is false: the key was imported, not generated on "
		               "the token; a copy may exist elsewhere");
		goto out;
	}
	tr->verdict = TG_P11_TRUST_OK;
	reason_add(tr, "generated on the token, sensitive and never extractable");
out:
	return;
}

int
tg_p11_trust_emulated(const char *model)
{
	return model != NULL && strncmp(model, "PKCS#15", 7) == 0;
}

void
tg_p11_trust_read(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                  struct tg_p11_trust *tr)
{
	memset(tr, 0, sizeof(*tr));
	tr->sensitive = read_bool(t, s, h, CKA_SENSITIVE);
	tr->extractable = read_bool(t, s, h, CKA_EXTRACTABLE);
	tr->never_extractable = read_bool(t, s, h, CKA_NEVER_EXTRACTABLE);
	tr->always_sensitive = read_bool(t, s, h, CKA_ALWAYS_SENSITIVE);
	tr->local = read_bool(t, s, h, CKA_LOCAL);
	tr->always_authenticate = read_bool(t, s, h, CKA_ALWAYS_AUTHENTICATE);
	tr->private_obj = read_bool(t, s, h, CKA_PRIVATE);
	tr->emulated = tg_p11_trust_emulated(t->info.model);
	tg_p11_trust_verdict(tr);
}

int
tg_p11_key_trust(const struct tg_p11_key *k, struct tg_p11_trust *out)
{
	*out = k->trust;
	return 0;
}

int
tg_p11_key_origin_set(struct tg_p11_key *k, enum tg_p11_origin origin, const char *evidence)
{
	int r = TG_ERR_INVALID_ARG;

	if (origin != TG_P11_ORIGIN_GENERATED && origin != TG_P11_ORIGIN_IMPORTED)
		goto out;
	k->trust.origin = origin;
	snprintf(k->trust.evidence, sizeof(k->trust.evidence), "%s",
	         evidence ? evidence : "card evidence");
	tg_p11_trust_verdict(&k->trust);
	r = 0;
out:
	return r;
}

const char *
tg_p11_verdict_name(enum tg_p11_verdict v)
{
	switch (v) {
	case TG_P11_TRUST_OK:
		return "ok";
	case TG_P11_TRUST_IMPORTED:
		return "imported";
	case TG_P11_TRUST_ONCE_EXPORTABLE:
		return "once-exportable";
	case TG_P11_TRUST_UNKNOWN:
		return "unknown";
	case TG_P11_TRUST_EXPORTABLE:
		return "exportable";
	default:
		return "unknown";
	}
}

/* The fix when the caller offers no opt-in (TG_P11_KEY_NO_OPTIN). */
#define KEYGEN_FIX                                                                                 \
	"use a key generated non-exportable on the token: tokengate enroll with an object "        \
	"name that does not exist yet generates one (or tokengate token keygen)"

int
tg_p11_key_trust_check(const struct tg_p11_key *k, unsigned flags, struct tg_error *err)
{
	const struct tg_p11_trust *tr = &k->trust;
	const char *fix = NULL;
	const int optin = !(flags & TG_P11_KEY_NO_OPTIN);
	int r = 0;

	switch (tr->verdict) {
	case TG_P11_TRUST_EXPORTABLE:
		if (!(flags & TG_P11_KEY_ALLOW_EXPORTABLE))
			fix = optin ? "generate the key on the token (tokengate token keygen) or "
			              "allow exportable keys explicitly (--allow-exportable, "
			              "TG_P11_KEY_ALLOW_EXPORTABLE)"
			            : KEYGEN_FIX;
		break;
	case TG_P11_TRUST_IMPORTED:
	case TG_P11_TRUST_ONCE_EXPORTABLE:
		if (!(flags & TG_P11_KEY_ALLOW_IMPORTED))
			fix = optin ? "generate the key on the token (tokengate token keygen) or "
			              "accept it explicitly (--allow-imported, "
			              "TG_P11_KEY_ALLOW_IMPORTED)"
			            : KEYGEN_FIX;
		break;
	case TG_P11_TRUST_UNKNOWN:
		if (!(flags & TG_P11_KEY_ALLOW_IMPORTED))
			fix = !optin ? (tr->emulated ? "give card evidence (tokengate token "
			                               "commands read the PIV metadata of the "
			                               "card in the token's reader) or " KEYGEN_FIX
			                             : "use a token that reports these "
			                               "attributes, or " KEYGEN_FIX)
			      : tr->emulated
			          ? "give card evidence (tokengate token commands read the PIV "
			            "metadata of the card in the token's reader) or accept it "
			            "explicitly (--allow-imported, TG_P11_KEY_ALLOW_IMPORTED)"
			          : "use a token that reports these attributes, or accept "
			            "the key explicitly (--allow-imported, "
			            "TG_P11_KEY_ALLOW_IMPORTED)";
		break;
	default:
		break;
	}
	if (fix != NULL)
		r = tg_error_set(
		    err, TG_ERR_KEY_EXPORTABLE, "key '%s' on token '%s' is refused (%s): %s; %s",
		    k->label, k->t->info.label, tg_p11_verdict_name(tr->verdict), tr->reason, fix);
	return r;
}
