/*
 * token.c — token listing and selection (by label/serial/manufacturer/model
 * through p11-kit's URI matching, never by slot index unless slot-id= is
 * given), login with the PIN sources, object listing.
 */
#include "p11-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tg_secret.h"

void
tg_p11_padded_copy(char *dst, size_t dstsz, const unsigned char *src, size_t srclen)
{
	size_t n = srclen;

	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
tg_p11_tokens_describe(const struct tg_p11_token_info *v, size_t n, char *buf, size_t bufsz)
{
	size_t i, off = 0;
	int w;

	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, bufsz,
		         "none (is the token inserted, pcscd running, "
		         "the module registered with p11-kit?)");
		return;
	}
	for (i = 0; i < n && off < bufsz; i++) {
		w = snprintf(buf + off, bufsz - off, "%s'%s' (%s, serial %s)", i ? ", " : "",
		             v[i].label, v[i].manufacturer, v[i].serial[0] ? v[i].serial : "-");
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

static void
info_fill(struct tg_p11_module *m, CK_SLOT_ID id, const CK_SLOT_INFO *si, const CK_TOKEN_INFO *ti,
          const CK_INFO *mi, struct tg_p11_token_info *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->module, sizeof(o->module), "%s", m->path);
	tg_p11_padded_copy(o->lib_desc, sizeof(o->lib_desc), mi->libraryDescription,
	                   sizeof(mi->libraryDescription));
	o->slot_id = id;
	tg_p11_padded_copy(o->slot_desc, sizeof(o->slot_desc), si->slotDescription,
	                   sizeof(si->slotDescription));
	tg_p11_padded_copy(o->label, sizeof(o->label), ti->label, sizeof(ti->label));
	tg_p11_padded_copy(o->manufacturer, sizeof(o->manufacturer), ti->manufacturerID,
	                   sizeof(ti->manufacturerID));
	tg_p11_padded_copy(o->model, sizeof(o->model), ti->model, sizeof(ti->model));
	tg_p11_padded_copy(o->serial, sizeof(o->serial), ti->serialNumber,
	                   sizeof(ti->serialNumber));
	o->initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
	o->login_required = (ti->flags & CKF_LOGIN_REQUIRED) != 0;
	o->protected_auth_path = (ti->flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
	o->pin_count_low = (ti->flags & CKF_USER_PIN_COUNT_LOW) != 0;
	o->pin_final_try = (ti->flags & CKF_USER_PIN_FINAL_TRY) != 0;
	o->pin_locked = (ti->flags & CKF_USER_PIN_LOCKED) != 0;
	o->flags = ti->flags;
}

static int
uri_matches(const struct tg_p11_uri *u, const CK_INFO *mi, CK_SLOT_ID id, const CK_SLOT_INFO *si,
            const CK_TOKEN_INFO *ti)
{
	if (u == NULL)
		return 1;
	if (u->has_slot_id && u->slot_id != id)
		return 0;
	return p11_kit_uri_match_token_info(u->u, ti) && p11_kit_uri_match_slot_info(u->u, si) &&
	       p11_kit_uri_match_module_info(u->u, mi);
}

/* Lists tokens of module m matching u (NULL: all); with `usable`, only
 * initialized ones (SoftHSM2 always shows a spare uninitialized token, whose
 * blank label and serial would match a URI naming only the module or the
 * model: it is never a selection's match); p->lock held. */
static int
list_tokens(struct tg_p11_module *m, const struct tg_p11_uri *u, int usable,
            struct tg_p11_token_info **out, size_t *n, struct tg_error *err)
{
	CK_SLOT_ID *ids = NULL;
	CK_ULONG cnt = 0, i;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_INFO mi;
	CK_RV rv;
	struct tg_p11_token_info *v = NULL;
	size_t k = 0;
	int r = TG_ERR_PKCS11;

	memset(&mi, 0, sizeof(mi));
	(void)m->f->C_GetInfo(&mi);
	if ((rv = m->f->C_GetSlotList(CK_TRUE, NULL, &cnt)) != CKR_OK) {
		tg_error_set(err, r, "C_GetSlotList failed on module '%s': %s", m->path,
		             tg_p11_ckr_name(rv));
		goto out;
	}
	if (cnt > 0) {
		if ((ids = calloc(cnt, sizeof(*ids))) == NULL ||
		    (v = calloc(cnt, sizeof(*v))) == NULL) {
			r = tg_error_set(err, TG_ERR_ALLOC, "out of memory listing tokens");
			goto out;
		}
		if ((rv = m->f->C_GetSlotList(CK_TRUE, ids, &cnt)) != CKR_OK) {
			tg_error_set(err, r, "C_GetSlotList failed on module '%s': %s", m->path,
			             tg_p11_ckr_name(rv));
			goto out;
		}
	}
	for (i = 0; i < cnt; i++) {
		if (m->f->C_GetSlotInfo(ids[i], &si) != CKR_OK ||
		    m->f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
			continue; /* removed meanwhile */
		if (!uri_matches(u, &mi, ids[i], &si, &ti) ||
		    (usable && !(ti.flags & CKF_TOKEN_INITIALIZED)))
			continue;
		info_fill(m, ids[i], &si, &ti, &mi, &v[k++]);
	}
	*out = v;
	*n = k;
	v = NULL;
	r = 0;
out:
	free(ids);
	free(v);
	return r;
}

int
tg_p11_tokens_list(struct tg_p11 *p, const char *uri, struct tg_p11_token_info **out, size_t *n,
                   struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	struct tg_p11_module *m;
	int r;

	*out = NULL;
	*n = 0;
	if (uri != NULL && (r = tg_p11_uri_parse(uri, &u, err)) != 0)
		return r;
	tg_p11_lock(p);
	if ((r = tg_p11_module_get(p, u, &m, err)) == 0)
		r = list_tokens(m, u, 0, out, n, err);
	tg_p11_unlock(p);
	if (r == 0 && *n == 0) {
		free(*out);
		*out = NULL;
	}
	tg_p11_uri_free(u);
	return r;
}

int
tg_p11_token_session(struct tg_p11_token *t, CK_SESSION_HANDLE *s, struct tg_error *err)
{
	CK_RV rv;

	tg_p11_fork_check(t->p);
	if (t->sess != CK_INVALID_HANDLE && t->sess_pid == getpid()) {
		*s = t->sess;
		return 0;
	}
	t->sess = CK_INVALID_HANDLE;
	rv = t->m->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                            &t->sess);
	if (rv == CKR_TOKEN_WRITE_PROTECTED)
		rv = t->m->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->sess);
	if (rv != CKR_OK) {
		t->sess = CK_INVALID_HANDLE;
		return tg_error_set(
		    err,
		    rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED ? TG_ERR_CARD_REMOVED
		                                                            : TG_ERR_PKCS11,
		    "cannot open a session on token '%s': %s", t->info.label, tg_p11_ckr_name(rv));
	}
	t->sess_pid = getpid();
	*s = t->sess;
	return 0;
}

int
tg_p11_token_refresh_info(struct tg_p11_token *t)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_INFO mi;

	memset(&mi, 0, sizeof(mi));
	(void)t->m->f->C_GetInfo(&mi);
	if (t->m->f->C_GetSlotInfo(t->slot, &si) != CKR_OK ||
	    t->m->f->C_GetTokenInfo(t->slot, &ti) != CKR_OK)
		return TG_ERR_CARD_REMOVED;
	info_fill(t->m, t->slot, &si, &ti, &mi, &t->info);
	return 0;
}

int
tg_p11_token_open(struct tg_p11 *p, const char *uri, struct tg_p11_token **out,
                  struct tg_error *err)
{
	struct tg_p11_uri *u = NULL;
	struct tg_p11_module *m;
	struct tg_p11_token_info *v = NULL, *all = NULL;
	struct tg_p11_token *t = NULL;
	char desc[768];
	size_t n = 0, nall = 0;
	CK_SESSION_HANDLE s;
	int r;

	if ((r = tg_p11_uri_parse(uri, &u, err)) != 0)
		return r;
	tg_p11_lock(p);
	if ((r = tg_p11_module_get(p, u, &m, err)) != 0)
		goto out;
	if ((r = list_tokens(m, u, 1, &v, &n, err)) != 0)
		goto out;
	if (n == 0) {
		(void)list_tokens(m, NULL, 1, &all, &nall, NULL);
		tg_p11_tokens_describe(all, nall, desc, sizeof(desc));
		if (tg_p11_uri_get(u, TG_P11_URI_TOKEN) != NULL)
			r = tg_error_set(err, TG_ERR_TOKEN_NOT_FOUND,
			                 "token '%s' not found; tokens present: %s",
			                 tg_p11_uri_get(u, TG_P11_URI_TOKEN), desc);
		else
			r = tg_error_set(err, TG_ERR_TOKEN_NOT_FOUND,
			                 "no token matches '%s'; tokens present: %s", u->str, desc);
		goto out;
	}
	if (n > 1) {
		tg_p11_tokens_describe(v, n, desc, sizeof(desc));
		r = tg_error_set(err, TG_ERR_TOKEN_AMBIGUOUS,
		                 "%zu tokens match '%s': %s; add token= or serial= to "
		                 "the URI",
		                 n, u->str, desc);
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory opening a token");
		goto out;
	}
	/* kept: the URI without its pin-value, and where the PIN comes from */
	if ((r = tg_p11_uri_format(u, NULL, &t->uri, err)) != 0 ||
	    (r = tg_p11_uri_pin_src(u, &t->pin, err)) != 0)
		goto out;
	t->p = p;
	t->m = m;
	t->slot = v[0].slot_id;
	t->info = v[0];
	t->sess = CK_INVALID_HANDLE;
	if ((r = tg_p11_token_session(t, &s, err)) != 0)
		goto out;
	*out = t;
	t = NULL;
	r = 0;
out:
	tg_p11_unlock(p);
	tg_p11_token_free(t);
	free(v);
	free(all);
	tg_p11_uri_free(u);
	return r;
}

void
tg_p11_token_free(struct tg_p11_token *t)
{
	if (t == NULL)
		return;
	if (t->sess != CK_INVALID_HANDLE && t->sess_pid == getpid()) {
		tg_p11_lock(t->p);
		t->m->f->C_CloseSession(t->sess);
		tg_p11_unlock(t->p);
	}
	free(t->uri);
	tg_pin_src_free(t->pin);
	free(t);
}

const struct tg_p11_token_info *
tg_p11_token_get_info(const struct tg_p11_token *t)
{
	return &t->info;
}

const char *
tg_p11_token_uri(const struct tg_p11_token *t)
{
	return t->uri;
}

/* The CKR code libp11 recorded for its last failure (its error library). */
static CK_RV
libp11_last_ckr(void)
{
	unsigned long e;
	CK_RV rv = CKR_GENERAL_ERROR;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) == ERR_get_CKR_code())
			rv = ERR_GET_REASON(e);
	}
	return rv;
}

static int
login_error(struct tg_p11_token *t, CK_RV rv, const char *src, struct tg_error *err)
{
	const char *state;

	(void)tg_p11_token_refresh_info(t);
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		if (t->info.pin_locked)
			return tg_error_set(err, TG_ERR_PIN_LOCKED,
			                    "wrong PIN for token '%s' (from %s); the "
			                    "user PIN is now locked: unblock it with the "
			                    "SO PIN or PUK (pkcs11-tool --unlock-pin --login "
			                    "--login-type so; PIV cards: yubico-piv-tool -a "
			                    "unblock-pin)",
			                    t->info.label, src);
		state = t->info.pin_final_try   ? "final try left: the next wrong PIN locks it"
		        : t->info.pin_count_low ? "few tries left"
		                                : "the token does not report tries left";
		return tg_error_set(err, TG_ERR_PIN_INCORRECT,
		                    "wrong PIN for token '%s' (from %s; %s); not "
		                    "retried: fix the PIN source",
		                    t->info.label, src, state);
	case CKR_PIN_LOCKED:
		return tg_error_set(err, TG_ERR_PIN_LOCKED,
		                    "the user PIN of token '%s' is locked; unblock it "
		                    "with the SO PIN or PUK (pkcs11-tool --unlock-pin "
		                    "--login --login-type so; PIV cards: yubico-piv-tool "
		                    "-a unblock-pin)",
		                    t->info.label);
	case CKR_PIN_EXPIRED:
		return tg_error_set(err, TG_ERR_LOGIN,
		                    "the user PIN of token '%s' has expired; change it "
		                    "(pkcs11-tool --change-pin)",
		                    t->info.label);
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
		return tg_error_set(err, TG_ERR_CARD_REMOVED,
		                    "token '%s' was removed during login; insert it "
		                    "and try again",
		                    t->info.label);
	default:
		return tg_error_set(err, TG_ERR_LOGIN, "login to token '%s' failed: %s",
		                    t->info.label, tg_p11_ckr_name(rv));
	}
}

/* p->lock held. src: the PIN source to read (the token's or the caller's). */
static int
token_login_locked(struct tg_p11_token *t, struct tg_pin_src *src, unsigned flags,
                   struct tg_error *err)
{
	CK_SESSION_HANDLE s;
	CK_SESSION_INFO sinfo;
	const char *from = "pin-pad";
	char who[64];
	PKCS11_SLOT *ls;
	struct tg_pin pin;
	int r, res = 0;
	CK_RV rv;

	memset(&pin, 0, sizeof(pin));
	if ((r = tg_p11_token_session(t, &s, err)) != 0)
		goto out;
	ls = tg_p11_module_lslot(t->m, t->slot);
	(void)tg_p11_token_refresh_info(t);
	if (!t->info.login_required) {
		t->logged_in = 1;
		r = 0;
		goto out;
	}
	if (t->info.pin_locked) {
		r = login_error(t, CKR_PIN_LOCKED, "", err);
		goto out;
	}
	if (t->m->f->C_GetSessionInfo(s, &sinfo) == CKR_OK &&
	    (sinfo.state == CKS_RO_USER_FUNCTIONS || sinfo.state == CKS_RW_USER_FUNCTIONS) &&
	    (ls == NULL || (PKCS11_is_logged_in(ls, 0, &res) == 0 && res))) {
		t->logged_in = 1;
		r = 0;
		goto out;
	}
	if (!t->info.protected_auth_path) {
		snprintf(who, sizeof(who), "token '%s'", t->info.label);
		if ((r = tg_pin_src_read(
		         src, who, (flags & TG_P11_LOGIN_INTERACTIVE) ? TG_PIN_INTERACTIVE : 0,
		         &pin, err)) != 0)
			goto out;
		from = pin.from;
	}
	if (ls != NULL) {
		/* one attempt through libp11 (its sessions share the login);
		 * libp11 keeps its own copy of the PIN in the slot to log in
		 * again in a child after fork() (see tg_p11.h) */
		ERR_clear_error();
		if (PKCS11_login(ls, 0, t->info.protected_auth_path ? NULL : pin.v) != 0)
			rv = libp11_last_ckr();
		else
			rv = CKR_OK;
	} else {
		rv = t->m->f->C_Login(s, CKU_USER,
		                      t->info.protected_auth_path ? NULL : (CK_UTF8CHAR_PTR)pin.v,
		                      t->info.protected_auth_path ? 0 : (CK_ULONG)pin.len);
	}
	tg_pin_wipe(&pin); /* right after the login, whatever its outcome */
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = login_error(t, rv, from, err);
		goto out;
	}
	t->logged_in = 1;
	r = 0;
out:
	tg_pin_wipe(&pin);
	return r;
}

int
tg_p11_token_login(struct tg_p11_token *t, const struct tg_p11_uri *u, unsigned flags,
                   struct tg_error *err)
{
	struct tg_pin_src *own = NULL;
	int r;

	if (u != NULL && (r = tg_p11_uri_pin_src(u, &own, err)) != 0)
		return r;
	r = tg_p11_token_login_src(t, own != NULL ? own : t->pin, flags, err);
	tg_pin_src_spend(t->pin); /* a pin-value serves this login only */
	tg_pin_src_free(own);
	return r;
}

int
tg_p11_token_login_src(struct tg_p11_token *t, struct tg_pin_src *src, unsigned flags,
                       struct tg_error *err)
{
	int r;

	tg_p11_lock(t->p);
	r = token_login_locked(t, src, flags, err);
	tg_p11_unlock(t->p);
	return r;
}
