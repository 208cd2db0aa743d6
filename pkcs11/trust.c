/*
 * trust.c — the non-exportability check of a private key (DESIGN.md rule
 * 1): reads CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE,
 * CKA_ALWAYS_SENSITIVE, CKA_LOCAL, CKA_ALWAYS_AUTHENTICATE and CKA_PRIVATE through the
 * module's own function list (libp11 exposes none of them) and draws the
 * verdict.
 */
#include "p11-int.h"

#include <stdio.h>
#include <string.h>

/* 1/0 for a readable CK_BBOOL, -1 when the token does not say. */
static int
read_bool(struct tg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};

	if (t->m->f->C_GetAttributeValue(s, h, &a, 1) != CKR_OK || a.ulValueLen != sizeof(v))
		return -1;
	return v == CK_TRUE ? 1 : 0;
}

/* Appends "; "-separated clause to tr->reason (truncated if need be). */
static void
reason_add(struct tg_p11_trust *tr, const char *clause)
{
	size_t used = strlen(tr->reason);

	snprintf(tr->reason + used, sizeof(tr->reason) - used, "%s%s", used > 0 ? "; " : "",
	         clause);
}

/* The verdict, and a reason naming every exportability problem found. */
static void
verdict(struct tg_p11_trust *tr)
{
	tr->reason[0] = '\0';
	if (tr->extractable == 1)
		reason_add(tr, "CKA_EXTRACTABLE is true: the private key can be exported "
		               "(wrapped) out of the token");
	if (tr->sensitive == 0)
		reason_add(tr, "CKA_SENSITIVE is false: the private key value can be "
		               "read out of the token");
	if (tr->reason[0] != '\0') {
		tr->verdict = TG_P11_TRUST_EXPORTABLE;
	} else if (tr->extractable < 0 || tr->sensitive < 0) {
		tr->verdict = TG_P11_TRUST_EXPORTABLE;
		reason_add(tr, "the token does not report CKA_SENSITIVE/CKA_EXTRACTABLE, "
		               "so the key cannot be shown to be non-exportable");
	} else if (tr->never_extractable != 1 || tr->always_sensitive != 1) {
		tr->verdict = TG_P11_TRUST_IMPORTED;
		reason_add(tr, "non-exportable now, but it was exportable or readable "
		               "before (CKA_NEVER_EXTRACTABLE or CKA_ALWAYS_SENSITIVE "
		               "not true): a copy may exist elsewhere");
	} else if (tr->local != 1) {
		tr->verdict = TG_P11_TRUST_IMPORTED;
		reason_add(tr, "non-exportable, but not generated on the token "
		               "(CKA_LOCAL not true): it was imported, a copy may exist "
		               "elsewhere");
	} else {
		tr->verdict = TG_P11_TRUST_OK;
		reason_add(tr, "generated on the token, sensitive and never extractable");
	}
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
	verdict(tr);
}

int
tg_p11_key_trust(const struct tg_p11_key *k, struct tg_p11_trust *out)
{
	*out = k->trust;
	return 0;
}
