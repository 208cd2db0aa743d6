/* render.c — text and JSON output of a doctor report (render.h). */
#include "render.h"

#include <PCSC/pcsclite.h>
#include <jansson.h>
#include <p11-kit/pkcs11.h>
#include <string.h>

#include "p11.h"
#include "tg_err.h"
#include "tg_hex.h"

/* Two hex digits and a separator per ATR byte. */
#define ATR_HEX_MAX (TG_DOCTOR_ATR_MAX * 3 + 1)

/* "3B FD 13 ..." (sep ' ') or "3BFD13..." (sep '\0'). */
static void
atr_hex(const uint8_t *atr, size_t n, char sep, char out[ATR_HEX_MAX])
{
	(void)tg_hex_encode_sep(atr, n < TG_DOCTOR_ATR_MAX ? n : TG_DOCTOR_ATR_MAX, TG_HEX_UPPER,
	                        sep, out, ATR_HEX_MAX);
}

/* "yes", "no" or "unknown" for a TG_DOCTOR_DEFAULT_* value. */
static const char *
default_name(int d)
{
	return d == TG_DOCTOR_DEFAULT_YES ? "yes" : d == TG_DOCTOR_DEFAULT_NO ? "no" : "unknown";
}

/* JSON true, false or null for a TG_DOCTOR_DEFAULT_* value. */
static json_t *
default_json(int d)
{
	return d == TG_DOCTOR_DEFAULT_UNKNOWN ? json_null() : json_boolean(d);
}

/* ---- text ---- */

static void
text_usb(const struct tg_doctor_usb *u, FILE *f)
{
	const struct tg_doctor_usb_dev *d;
	const char *v;
	size_t i;

	fprintf(f, "USB\n");
	if (u->status != TG_DOCTOR_USB_OK) {
		fprintf(f, "  %s\n", u->note ? u->note : "not available");
		goto out;
	}
	if (u->n == 0)
		fprintf(f, "  no security tokens or smart card readers among %zu USB device%s\n",
		        u->seen, u->seen == 1 ? "" : "s");
	for (i = 0; i < u->n; i++) {
		d = &u->devs[i];
		v = d->manufacturer ? d->manufacturer : d->vendor_known;
		fprintf(f, "  %03u-%03u %04x:%04x  %s%s%s%s", d->bus, d->address, d->vid, d->pid,
		        v ? v : "unknown vendor", d->product ? " " : "",
		        d->product ? d->product : "",
		        d->ccid ? "  [CCID smart card interface]" : "");
		if (d->open_error)
			fprintf(f, "  (cannot open: %s)", d->open_error);
		fprintf(f, "\n");
	}
	if (u->n > 0 && u->seen > u->n)
		fprintf(f, "  (%zu other USB devices are not tokens or readers)\n", u->seen - u->n);
out:
	return;
}

static void
text_pcsc(const struct tg_doctor_pcsc *p, FILE *f)
{
	const struct tg_doctor_reader *rd;
	char hex[ATR_HEX_MAX];
	size_t i;

	fprintf(f, "\nPC/SC (pcscd socket %s)\n", p->socket ? p->socket : "?");
	if (!p->reachable) {
		fprintf(f, "  pcscd is not reachable: %s\n", p->error ? p->error : "?");
		goto out;
	}
	fprintf(f, "  pcscd is running\n");
	if (p->error)
		fprintf(f, "  cannot list readers: %s\n", p->error);
	else if (p->n == 0)
		fprintf(f, "  no readers\n");
	for (i = 0; i < p->n; i++) {
		rd = &p->readers[i];
		fprintf(f, "  reader '%s': ", rd->name);
		if (!rd->card_present) {
			fprintf(f, "no card%s\n",
			        rd->state & SCARD_STATE_UNAVAILABLE ? " (unavailable)" : "");
			continue;
		}
		atr_hex(rd->atr, rd->atr_len, ' ', hex);
		fprintf(f, "card present%s%s, ATR %s\n",
		        rd->state & SCARD_STATE_MUTE ? " (mute)" : "",
		        rd->state & SCARD_STATE_EXCLUSIVE ? " (in exclusive use)" : "", hex);
		if (rd->hint)
			fprintf(f, "    -> %s\n", rd->hint);
		if (rd->piv)
			fprintf(
			    f,
			    "    PIV: default PIN %s, default PUK %s, default management key %s\n",
			    default_name(rd->pin_default), default_name(rd->puk_default),
			    default_name(rd->mgm_default));
	}
out:
	return;
}

static void
text_flag(const char *name, void *arg)
{
	fprintf((FILE *)arg, " %s", name);
}

static void
text_token(const struct tg_doctor_token *t, FILE *f)
{
	fprintf(f, "    slot %lu '%s': ", t->slot_id, t->slot_desc ? t->slot_desc : "?");
	if (t->error)
		fprintf(f, "%s\n", t->error);
	else if (!t->present)
		fprintf(f, "no token\n");
	else if (!(t->flags & CKF_TOKEN_INITIALIZED))
		fprintf(f, "token not initialized\n");
	else {
		fprintf(
		    f, "token '%s'\n      manufacturer '%s', model '%s', serial '%s'\n      flags:",
		    t->label, t->manufacturer, t->model, t->serial);
		tg_doctor_p11_flags_each(t->flags, text_flag, f);
		fprintf(f, "\n");
	}
}

static void
text_pkcs11(const struct tg_doctor_pkcs11 *p, FILE *f)
{
	const struct tg_doctor_module *m;
	size_t i, j;

	fprintf(f, "\nPKCS#11 (modules registered with p11-kit)\n");
	if (p->error) {
		fprintf(f, "  cannot load the registry: %s\n", p->error);
		goto out;
	}
	if (p->n == 0)
		fprintf(f, "  no modules registered\n");
	for (i = 0; i < p->n; i++) {
		m = &p->modules[i];
		fprintf(f, "  module '%s' (%s)", m->name, m->path);
		if (m->library)
			fprintf(f, ": %s", m->library);
		fprintf(f, "\n");
		if (m->error)
			fprintf(f, "    fails: %s\n", m->error);
		else if (m->n == 0)
			fprintf(f, "    no tokens\n");
		for (j = 0; j < m->n; j++)
			text_token(&m->slots[j], f);
	}
out:
	return;
}

int
tg_doctor_text_render(const struct tg_doctor_report *r, FILE *f)
{
	size_t i;

	text_usb(&r->usb, f);
	text_pcsc(&r->pcsc, f);
	text_pkcs11(&r->pkcs11, f);
	if (r->n_problems == 0)
		fprintf(f, "\nNo problems found.\n");
	else
		fprintf(f, "\nProblems (%zu):\n", r->n_problems);
	for (i = 0; i < r->n_problems; i++)
		fprintf(f, "  - %s: %s\n", r->problems[i].what, r->problems[i].fix);
	return fflush(f) == 0 && !ferror(f) ? 0 : TG_ERR_IO;
}

/* ---- JSON ---- */

/* Sets o[k] = v, stealing v; a NULL v or a failure sets *bad. */
static void
jset(json_t *o, const char *k, json_t *v, int *bad)
{
	if (v == NULL || json_object_set_new(o, k, v) != 0)
		*bad = 1;
}

static void
jappend(json_t *a, json_t *v, int *bad)
{
	if (v == NULL || json_array_append_new(a, v) != 0)
		*bad = 1;
}

/* A JSON string, or null for a NULL s. */
static json_t *
jstr(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
json_usb(const struct tg_doctor_usb *u, int *bad)
{
	static const char *const status[] = {"ok", "no-devices", "error"};
	const struct tg_doctor_usb_dev *d;
	json_t *o = json_object(), *a = json_array(), *e;
	char id[8];
	size_t i;

	if (o == NULL || a == NULL) {
		*bad = 1;
		json_decref(a);
		goto out;
	}
	jset(o, "status", json_string(status[u->status]), bad);
	jset(o, "note", jstr(u->note), bad);
	jset(o, "devices_seen", json_integer((json_int_t)u->seen), bad);
	for (i = 0; i < u->n; i++) {
		d = &u->devs[i];
		if ((e = json_object()) == NULL) {
			*bad = 1;
			break;
		}
		jset(e, "bus", json_integer(d->bus), bad);
		jset(e, "address", json_integer(d->address), bad);
		snprintf(id, sizeof(id), "%04x", d->vid);
		jset(e, "vendor_id", json_string(id), bad);
		snprintf(id, sizeof(id), "%04x", d->pid);
		jset(e, "product_id", json_string(id), bad);
		jset(e, "vendor", jstr(d->vendor_known), bad);
		jset(e, "manufacturer", jstr(d->manufacturer), bad);
		jset(e, "product", jstr(d->product), bad);
		jset(e, "ccid", json_boolean(d->ccid), bad);
		jset(e, "open_error", jstr(d->open_error), bad);
		jappend(a, e, bad);
	}
	jset(o, "devices", a, bad);
out:
	return o;
}

/* {"pin_default", "puk_default", "management_key_default"} (true, false
 * or null when the card did not say), or null for a card that is not PIV. */
static json_t *
json_piv(const struct tg_doctor_reader *rd, int *bad)
{
	json_t *o = NULL;

	if (!rd->piv) {
		o = json_null();
		goto out;
	}
	if ((o = json_object()) == NULL) {
		*bad = 1;
		goto out;
	}
	jset(o, "pin_default", default_json(rd->pin_default), bad);
	jset(o, "puk_default", default_json(rd->puk_default), bad);
	jset(o, "management_key_default", default_json(rd->mgm_default), bad);
out:
	return o;
}

static json_t *
json_pcsc(const struct tg_doctor_pcsc *p, int *bad)
{
	const struct tg_doctor_reader *rd;
	json_t *o = json_object(), *a = json_array(), *e;
	char hex[ATR_HEX_MAX];
	size_t i;

	if (o == NULL || a == NULL) {
		*bad = 1;
		json_decref(a);
		goto out;
	}
	jset(o, "reachable", json_boolean(p->reachable), bad);
	jset(o, "socket", jstr(p->socket), bad);
	jset(o, "error", jstr(p->error), bad);
	for (i = 0; i < p->n; i++) {
		rd = &p->readers[i];
		if ((e = json_object()) == NULL) {
			*bad = 1;
			break;
		}
		jset(e, "name", jstr(rd->name), bad);
		jset(e, "card_present", json_boolean(rd->card_present), bad);
		jset(e, "mute", json_boolean(rd->state & SCARD_STATE_MUTE), bad);
		jset(e, "exclusive", json_boolean(rd->state & SCARD_STATE_EXCLUSIVE), bad);
		jset(e, "unavailable", json_boolean(rd->state & SCARD_STATE_UNAVAILABLE), bad);
		atr_hex(rd->atr, rd->atr_len, '\0', hex);
		jset(e, "atr", rd->atr_len > 0 ? json_string(hex) : json_null(), bad);
		jset(e, "hint", jstr(rd->hint), bad);
		jset(e, "piv", json_piv(rd, bad), bad);
		jappend(a, e, bad);
	}
	jset(o, "readers", a, bad);
out:
	return o;
}

struct jflags {
	json_t *a;
	int *bad;
};

static void
json_flag(const char *name, void *arg)
{
	struct jflags *jf = arg;

	jappend(jf->a, json_string(name), jf->bad);
}

static json_t *
json_token(const struct tg_doctor_token *t, int *bad)
{
	json_t *e = json_object(), *tok;
	struct jflags jf;

	if (e == NULL) {
		*bad = 1;
		goto out;
	}
	jset(e, "slot_id", json_integer((json_int_t)t->slot_id), bad);
	jset(e, "description", jstr(t->slot_desc), bad);
	jset(e, "token_present", json_boolean(t->present), bad);
	jset(e, "error", jstr(t->error), bad);
	if (!t->present || t->label == NULL) {
		jset(e, "token", json_null(), bad);
		goto out;
	}
	if ((tok = json_object()) == NULL || (jf.a = json_array()) == NULL) {
		*bad = 1;
		json_decref(tok);
		goto out;
	}
	jf.bad = bad;
	jset(tok, "label", jstr(t->label), bad);
	jset(tok, "manufacturer", jstr(t->manufacturer), bad);
	jset(tok, "model", jstr(t->model), bad);
	jset(tok, "serial", jstr(t->serial), bad);
	jset(tok, "initialized", json_boolean(t->flags & CKF_TOKEN_INITIALIZED), bad);
	tg_doctor_p11_flags_each(t->flags, json_flag, &jf);
	jset(tok, "flags", jf.a, bad);
	jset(e, "token", tok, bad);
out:
	return e;
}

static json_t *
json_pkcs11(const struct tg_doctor_pkcs11 *p, int *bad)
{
	const struct tg_doctor_module *m;
	json_t *o = json_object(), *a = json_array(), *e, *slots;
	size_t i, j;

	if (o == NULL || a == NULL) {
		*bad = 1;
		json_decref(a);
		goto out;
	}
	jset(o, "error", jstr(p->error), bad);
	for (i = 0; i < p->n; i++) {
		m = &p->modules[i];
		if ((e = json_object()) == NULL || (slots = json_array()) == NULL) {
			*bad = 1;
			json_decref(e);
			break;
		}
		jset(e, "name", jstr(m->name), bad);
		jset(e, "path", jstr(m->path), bad);
		jset(e, "library", jstr(m->library), bad);
		jset(e, "error", jstr(m->error), bad);
		for (j = 0; j < m->n; j++)
			jappend(slots, json_token(&m->slots[j], bad), bad);
		jset(e, "slots", slots, bad);
		jappend(a, e, bad);
	}
	jset(o, "modules", a, bad);
out:
	return o;
}

int
tg_doctor_json_render(const struct tg_doctor_report *r, FILE *f)
{
	json_t *root = json_object(), *probs = json_array(), *e;
	size_t i;
	int bad = 0, rc = TG_ERR_ALLOC;

	if (root == NULL || probs == NULL)
		goto out;
	jset(root, "usb", json_usb(&r->usb, &bad), &bad);
	jset(root, "pcsc", json_pcsc(&r->pcsc, &bad), &bad);
	jset(root, "pkcs11", json_pkcs11(&r->pkcs11, &bad), &bad);
	for (i = 0; i < r->n_problems; i++) {
		if ((e = json_object()) == NULL) {
			bad = 1;
			break;
		}
		jset(e, "what", jstr(r->problems[i].what), &bad);
		jset(e, "fix", jstr(r->problems[i].fix), &bad);
		jappend(probs, e, &bad);
	}
	jset(root, "problems", probs, &bad);
	probs = NULL;
	if (bad)
		goto out;
	rc = TG_ERR_IO;
	if (json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
	    fputc('\n', f) == EOF || fflush(f) != 0)
		goto out;
	rc = 0;
out:
	json_decref(probs);
	json_decref(root);
	return rc;
}
