/*
 * tok.c — the token's lifecycle: create, free, reset, power-off, the ATR
 * and the read-only view for status displays.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "tg_err.h"
#include "tg_secret.h"
#include "tok-int.h"

/* YubiKey 5 style ATR: T=1 (TD1 = 81), historical bytes end "YubiKey" */
static const uint8_t tok_atr[] = {0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE,
                                  0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
                                  0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40};

#define DEFAULT_VERSION_MAJOR 5
#define DEFAULT_VERSION_MINOR 4
#define DEFAULT_VERSION_PATCH 3
#define DEFAULT_FORM_FACTOR   0x81
#define SERIAL_RANDOM_MASK    0x7FFFFFFFu

static const char default_pin[] = "123456";
static const char default_puk[] = "12345678";

const uint8_t *
tg_tok_atr(size_t *len)
{
	if (len != NULL)
		*len = sizeof(tok_atr);
	return tok_atr;
}

void
tok_vol_clear(struct tg_tok *t)
{
	/* The cached-touch timestamps (per slot) stay: they are timed by the
	 * host's clock, and a YubiKey keeps a cached touch across PC/SC
	 * sessions (card resets) for its 15 s. */
	tg_wipe(&t->v, sizeof(t->v));
	memset(&t->v, 0, sizeof(t->v));
}

struct tg_tok *
tok_alloc(const struct tg_tok_host *host)
{
	struct tg_tok *t;
	size_t i;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto out;
	if (host != NULL)
		t->host = *host;
	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		/* 9A 9C 9D 9E, then the retired slots 82..95, then F9 */
		t->slots[i].id = tg_piv_slot_at(i)->id;
		tok_slot_clear(&t->slots[i]);
	}
	t->version[0] = DEFAULT_VERSION_MAJOR;
	t->version[1] = DEFAULT_VERSION_MINOR;
	t->version[2] = DEFAULT_VERSION_PATCH;
	t->form_factor = DEFAULT_FORM_FACTOR;
	(void)tok_pin_pad(default_pin, t->pin);
	(void)tok_pin_pad(default_puk, t->puk);
	t->pin_max = t->pin_tries = TOK_DEFAULT_TRIES;
	t->puk_max = t->puk_tries = TOK_DEFAULT_TRIES;
	memcpy(t->mgm_key, tok_mgm_default, sizeof(tok_mgm_default));
	t->mgm_len = sizeof(tok_mgm_default);
	t->mgm_alg = TG_PIV_ALG_3DES;
out:
	return t;
}

struct tg_tok *
tok_dup(const struct tg_tok *src, const struct tg_tok_host *host)
{
	struct tg_tok *t = NULL, *ret = NULL;
	const struct tok_slot *ss;
	struct tok_slot *ds;
	size_t i;

	if ((t = tok_alloc(host)) == NULL)
		goto out;
	t->serial = src->serial;
	memcpy(t->version, src->version, sizeof(t->version));
	t->form_factor = src->form_factor;
	memcpy(t->pin, src->pin, sizeof(t->pin));
	memcpy(t->puk, src->puk, sizeof(t->puk));
	t->pin_tries = src->pin_tries;
	t->pin_max = src->pin_max;
	t->puk_tries = src->puk_tries;
	t->puk_max = src->puk_max;
	t->mgm_alg = src->mgm_alg;
	memcpy(t->mgm_key, src->mgm_key, sizeof(t->mgm_key));
	t->mgm_len = src->mgm_len;
	t->mgm_touch = src->mgm_touch;
	t->ops = src->ops;
	for (i = 0; i < TG_PIV_NSLOTS; i++) {
		ss = &src->slots[i];
		ds = &t->slots[i];
		/* installed keys are never modified, only replaced: share them */
		if (ss->pkey != NULL && EVP_PKEY_up_ref(ss->pkey) != 1)
			goto out;
		ds->pkey = ss->pkey;
		ds->alg = ss->alg;
		ds->origin = ss->origin;
		ds->pin_policy = ss->pin_policy;
		ds->touch_policy = ss->touch_policy;
	}
	for (i = 0; i < TOK_NOBJS; i++)
		if (src->objs[i].data != NULL &&
		    tok_obj_set(t, src->objs[i].tag, src->objs[i].data, src->objs[i].len) != 0)
			goto out;
	ret = t;
	t = NULL;
out:
	tg_tok_free(t);
	return ret;
}

/* Applies the caller's PIN/PUK/management key/version choices. */
static int
apply_params(struct tg_tok *t, const struct tg_tok_params *p)
{
	uint8_t alg = p->mgm_key_alg != 0 ? p->mgm_key_alg : TG_PIV_ALG_3DES;
	uint32_t rnd = 0;
	int r = TG_ERR_INVALID_ARG;

	if (p->pin != NULL && tok_pin_pad(p->pin, t->pin) != 0)
		goto out;
	if (p->puk != NULL && tok_pin_pad(p->puk, t->puk) != 0)
		goto out;
	if (p->mgm_key != NULL) {
		if (tok_mgm_key_len(alg) == 0 || p->mgm_key_len != tok_mgm_key_len(alg))
			goto out;
		memcpy(t->mgm_key, p->mgm_key, p->mgm_key_len);
		t->mgm_len = p->mgm_key_len;
		t->mgm_alg = alg;
	} else if (alg != TG_PIV_ALG_3DES) {
		goto out; /* the default key is 3DES */
	}
	if (p->version[0] != 0 || p->version[1] != 0 || p->version[2] != 0)
		memcpy(t->version, p->version, sizeof(t->version));
	if (p->form_factor != 0)
		t->form_factor = p->form_factor;
	t->serial = p->serial;
	r = TG_ERR_CRYPTO;
	while (t->serial == 0) {
		if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
			goto out;
		t->serial = rnd & SERIAL_RANDOM_MASK;
	}
	r = 0;
out:
	return r;
}

int
tg_tok_create(const struct tg_tok_params *p, const struct tg_tok_host *host, struct tg_tok **out)
{
	struct tg_tok *t = NULL;
	int r = TG_ERR_INVALID_ARG;

	if (p == NULL || out == NULL)
		goto out;
	r = TG_ERR_ALLOC;
	if ((t = tok_alloc(host)) == NULL)
		goto out;
	if ((r = apply_params(t, p)) != 0 || (r = tok_obj_factory(t)) != 0 ||
	    (r = tok_attest_provision(t, p)) != 0)
		goto out;
	*out = t;
	t = NULL;
	r = 0;
out:
	tg_tok_free(t);
	return r;
}

void
tg_tok_free(struct tg_tok *t)
{
	size_t i;

	if (t != NULL) {
		for (i = 0; i < TG_PIV_NSLOTS; i++)
			tok_slot_clear(&t->slots[i]);
		tok_obj_clear_all(t);
		tg_freezero(t, sizeof(*t));
	}
}

void
tg_tok_reset(struct tg_tok *t)
{
	if (t != NULL)
		tok_vol_clear(t);
}

void
tg_tok_power_off(struct tg_tok *t)
{
	if (t != NULL)
		tok_vol_clear(t);
}

void
tg_tok_faults_set(struct tg_tok *t, unsigned faults)
{
	if (t != NULL)
		t->faults = faults;
}

void
tg_tok_info_get(const struct tg_tok *t, struct tg_tok_info *info)
{
	struct tg_tok_slot_info *si;
	const struct tok_slot *s;
	uint8_t def[TOK_PIN_LEN];
	size_t i;

	memset(info, 0, sizeof(*info));
	if (t == NULL)
		goto out;
	info->serial = t->serial;
	memcpy(info->version, t->version, sizeof(info->version));
	info->form_factor = t->form_factor;
	info->pin_tries_left = t->pin_tries;
	info->pin_tries_max = t->pin_max;
	info->puk_tries_left = t->puk_tries;
	info->puk_tries_max = t->puk_max;
	(void)tok_pin_pad(default_pin, def);
	info->default_pin = tg_secret_eq(def, sizeof(def), t->pin, TOK_PIN_LEN);
	(void)tok_pin_pad(default_puk, def);
	info->default_puk = tg_secret_eq(def, sizeof(def), t->puk, TOK_PIN_LEN);
	info->default_mgm_key =
	    t->mgm_alg == TG_PIV_ALG_3DES &&
	    tg_secret_eq(t->mgm_key, t->mgm_len, tok_mgm_default, sizeof(tok_mgm_default));
	info->mgm_key_alg = t->mgm_alg;
	info->private_key_operations = t->ops;
	for (i = 0;
	     i < TG_PIV_NSLOTS && info->nslots < sizeof(info->slots) / sizeof(info->slots[0]);
	     i++) {
		s = &t->slots[i];
		si = &info->slots[info->nslots];
		si->cert_der = tok_obj_slot_cert(t, s->id, &si->cert_len);
		if (s->pkey == NULL && si->cert_der == NULL)
			continue;
		si->slot = s->id;
		si->algorithm = s->alg;
		si->origin = s->origin;
		si->pin_policy = s->pin_policy;
		si->touch_policy = s->touch_policy;
		info->nslots++;
	}
out:
	return;
}
