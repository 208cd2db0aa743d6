/*
 * test_doctor_render.c — the two outputs of a `tokengate doctor` report
 * (host/doctor/render.c): the exact text for reports with every kind of
 * finding (USB devices with and without strings, open errors, no bus;
 * pcscd unreachable, listing errors, readers empty, unavailable, mute,
 * exclusive, PIV cards; PKCS#11 modules failing, without tokens, slots in
 * error, uninitialized and initialized tokens with their flags; problems),
 * the JSON of the same reports member by member, and output that cannot be
 * written (TG_ERR_IO).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <PCSC/pcsclite.h>
#include <jansson.h>
#include <p11-kit/pkcs11.h>

#include "render.h"
#include "report.h"
#include "tg_err.h"
#include "tg_test.h"

#define YK_HINT "YubiKey-compatible PIV token"

static char *
sdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

static void *
add(void **arr, size_t *n, size_t size)
{
	void *e = NULL;

	assert_int_equal(tg_doctor_array_add(arr, n, size, &e), 0);
	return e;
}

/* A report with one of every kind of finding. */
static struct tg_doctor_report *
rich_report(void)
{
	static const uint8_t atr_yk[] = {0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE,
	                                 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
	                                 0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40};
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_usb_dev *d;
	struct tg_doctor_reader *rd;
	struct tg_doctor_module *m;
	struct tg_doctor_token *t;

	assert_int_equal(tg_doctor_report_new(&r), 0);
	/* USB: a known vendor with a product, a device with only a
	 * manufacturer that cannot be opened, an unknown CCID reader. */
	r->usb.status = TG_DOCTOR_USB_OK;
	r->usb.seen = 5;
	d = add((void **)&r->usb.devs, &r->usb.n, sizeof(*d));
	*d = (struct tg_doctor_usb_dev){
	    1, 4, 0x1050, 0x0407, "Yubico", NULL, sdup("YubiKey OTP+FIDO+CCID"), 1, NULL};
	d = add((void **)&r->usb.devs, &r->usb.n, sizeof(*d));
	*d = (struct tg_doctor_usb_dev){
	    2, 10, 0x1234, 0x0001, NULL, sdup("ACME"), NULL, 0, sdup("Access denied")};
	d = add((void **)&r->usb.devs, &r->usb.n, sizeof(*d));
	*d = (struct tg_doctor_usb_dev){3, 7, 0x0bad, 0x0002, NULL, NULL, NULL, 1, NULL};
	/* PC/SC: a PIV card with a hint, a reader unavailable, an empty one, a
	 * mute card held exclusively with an ATR longer than kept. */
	r->pcsc.reachable = 1;
	r->pcsc.socket = sdup("/run/pcscd/pcscd.comm");
	r->pcsc.socket_exists = 1;
	rd = add((void **)&r->pcsc.readers, &r->pcsc.n, sizeof(*rd));
	rd->name = sdup("Yubico YubiKey 00 00");
	rd->state = SCARD_STATE_PRESENT;
	rd->card_present = 1;
	memcpy(rd->atr, atr_yk, sizeof(atr_yk));
	rd->atr_len = sizeof(atr_yk);
	rd->hint = YK_HINT;
	rd->piv = 1;
	rd->pin_default = TG_DOCTOR_DEFAULT_YES;
	rd->puk_default = TG_DOCTOR_DEFAULT_NO;
	rd->mgm_default = TG_DOCTOR_DEFAULT_UNKNOWN;
	rd = add((void **)&r->pcsc.readers, &r->pcsc.n, sizeof(*rd));
	rd->name = sdup("Reader B");
	rd->state = SCARD_STATE_EMPTY | SCARD_STATE_UNAVAILABLE;
	rd = add((void **)&r->pcsc.readers, &r->pcsc.n, sizeof(*rd));
	rd->name = sdup("Reader C");
	rd = add((void **)&r->pcsc.readers, &r->pcsc.n, sizeof(*rd));
	rd->name = sdup("Reader D");
	rd->state = SCARD_STATE_PRESENT | SCARD_STATE_MUTE | SCARD_STATE_EXCLUSIVE;
	rd->card_present = 1;
	memset(rd->atr, 0xA5, sizeof(rd->atr));
	rd->atr[0] = 0x3B;
	rd->atr_len = TG_DOCTOR_ATR_MAX + 7; /* more than the report keeps */
	rd->pin_default = rd->puk_default = rd->mgm_default = TG_DOCTOR_DEFAULT_UNKNOWN;
	/* PKCS#11: a module with four kinds of slot, one that fails, one
	 * without tokens. */
	m = add((void **)&r->pkcs11.modules, &r->pkcs11.n, sizeof(*m));
	m->name = sdup("softhsm2");
	m->path = sdup("/usr/lib/softhsm/libsofthsm2.so");
	m->library = sdup("Implementation of PKCS11");
	t = add((void **)&m->slots, &m->n, sizeof(*t));
	t->slot_id = 1;
	t->slot_desc = sdup("SoftHSM slot ID 0x1");
	t->present = 1;
	t->label = sdup("tg");
	t->manufacturer = sdup("SoftHSM project");
	t->model = sdup("SoftHSM v2");
	t->serial = sdup("abc123");
	t->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
	           CKF_USER_PIN_LOCKED | CKF_SO_PIN_TO_BE_CHANGED;
	t = add((void **)&m->slots, &m->n, sizeof(*t));
	t->slot_id = 2;
	t = add((void **)&m->slots, &m->n, sizeof(*t));
	t->slot_id = 3;
	t->slot_desc = sdup("s3");
	t->error = sdup("cannot read the token: CKR_DEVICE_ERROR");
	t = add((void **)&m->slots, &m->n, sizeof(*t));
	t->slot_id = 4;
	t->slot_desc = sdup("s4");
	t->present = 1;
	m = add((void **)&r->pkcs11.modules, &r->pkcs11.n, sizeof(*m));
	m->name = sdup("opensc");
	m->path = sdup("/x/opensc-pkcs11.so");
	m->error = sdup("cannot be loaded");
	m = add((void **)&r->pkcs11.modules, &r->pkcs11.n, sizeof(*m));
	m->name = sdup("empty");
	m->path = sdup("/x/e.so");
	assert_int_equal(tg_doctor_problem_add(r, "fix one", "problem %d", 1), 0);
	assert_int_equal(tg_doctor_problem_add(r, "fix two", "problem %s", "two"), 0);
	return r;
}

static const char rich_text[] =
    "USB\n"
    "  001-004 1050:0407  Yubico YubiKey OTP+FIDO+CCID  [CCID smart card interface]\n"
    "  002-010 1234:0001  ACME  (cannot open: Access denied)\n"
    "  003-007 0bad:0002  unknown vendor  [CCID smart card interface]\n"
    "  (2 other USB devices are not tokens or readers)\n"
    "\n"
    "PC/SC (pcscd socket /run/pcscd/pcscd.comm)\n"
    "  pcscd is running\n"
    "  reader 'Yubico YubiKey 00 00': card present, ATR 3B FD 13 00 00 81 31 FE 15 80 73 "
    "C0 21 C0 57 59 75 62 69 4B 65 79 40\n"
    "    -> " YK_HINT "\n"
    "    PIV: default PIN yes, default PUK no, default management key unknown\n"
    "  reader 'Reader B': no card (unavailable)\n"
    "  reader 'Reader C': no card\n"
    "  reader 'Reader D': card present (mute) (in exclusive use), ATR 3B A5 A5 A5 A5 A5 A5 "
    "A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5 A5\n"
    "\n"
    "PKCS#11 (modules registered with p11-kit)\n"
    "  module 'softhsm2' (/usr/lib/softhsm/libsofthsm2.so): Implementation of PKCS11\n"
    "    slot 1 'SoftHSM slot ID 0x1': token 'tg'\n"
    "      manufacturer 'SoftHSM project', model 'SoftHSM v2', serial 'abc123'\n"
    "      flags: initialized login-required user-pin-set pin-locked so-pin-to-be-changed\n"
    "    slot 2 '?': no token\n"
    "    slot 3 's3': cannot read the token: CKR_DEVICE_ERROR\n"
    "    slot 4 's4': token not initialized\n"
    "  module 'opensc' (/x/opensc-pkcs11.so)\n"
    "    fails: cannot be loaded\n"
    "  module 'empty' (/x/e.so)\n"
    "    no tokens\n"
    "\n"
    "Problems (2):\n"
    "  - problem 1: fix one\n"
    "  - problem two: fix two\n";

/* Renders r as text (json 0) or JSON into a heap string. */
static char *
render(const struct tg_doctor_report *r, int json, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*rc = json ? tg_doctor_json_render(r, f) : tg_doctor_text_render(r, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

static void
test_text_rich(void **state)
{
	struct tg_doctor_report *r = rich_report();
	char *out;
	int rc;

	(void)state;
	out = render(r, 0, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, rich_text);
	free(out);
	tg_doctor_report_free(r);
}

/* Nothing found anywhere: an empty USB bus, an unreachable pcscd without a
 * socket name, no modules, no problems. */
static void
test_text_empty(void **state)
{
	struct tg_doctor_report *r = NULL;
	char *out;
	int rc;

	(void)state;
	assert_int_equal(tg_doctor_report_new(&r), 0);
	out = render(r, 0, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "USB\n"
	                         "  no security tokens or smart card readers among 0 USB devices\n"
	                         "\n"
	                         "PC/SC (pcscd socket ?)\n"
	                         "  pcscd is not reachable: ?\n"
	                         "\n"
	                         "PKCS#11 (modules registered with p11-kit)\n"
	                         "  no modules registered\n"
	                         "\n"
	                         "No problems found.\n");
	free(out);
	tg_doctor_report_free(r);
}

/* The other states of each section, one report per state. */
static void
test_text_states(void **state)
{
	struct tg_doctor_report *r = NULL;
	struct tg_doctor_usb_dev *d;
	char *out;
	int rc;

	(void)state;
	/* No bus (with its note), pcscd unreachable with the reason, the
	 * module registry unreadable. */
	assert_int_equal(tg_doctor_report_new(&r), 0);
	r->usb.status = TG_DOCTOR_USB_NO_BUS;
	r->usb.note = sdup("no devices visible (no /dev/bus/usb or empty)");
	r->pcsc.socket = sdup("/tmp/x/pcscd.comm");
	r->pcsc.error = sdup("Service not available. (0x8010001D)");
	r->pkcs11.error = sdup("p11-kit: no config");
	out = render(r, 0, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "USB\n"
	                         "  no devices visible (no /dev/bus/usb or empty)\n"
	                         "\n"
	                         "PC/SC (pcscd socket /tmp/x/pcscd.comm)\n"
	                         "  pcscd is not reachable: Service not available. (0x8010001D)\n"
	                         "\n"
	                         "PKCS#11 (modules registered with p11-kit)\n"
	                         "  cannot load the registry: p11-kit: no config\n"
	                         "\n"
	                         "No problems found.\n");
	free(out);
	tg_doctor_report_free(r);

	/* libusb failed without a note; pcscd reachable but the listing
	 * failed; one USB device seen that is not a token. */
	assert_int_equal(tg_doctor_report_new(&r), 0);
	r->usb.status = TG_DOCTOR_USB_ERROR;
	r->pcsc.reachable = 1;
	r->pcsc.socket = sdup("/s");
	r->pcsc.error = sdup("Internal error. (0x80100001)");
	out = render(r, 0, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "USB\n  not available\n\nPC/SC (pcscd socket /s)\n"
	                            "  pcscd is running\n"
	                            "  cannot list readers: Internal error. (0x80100001)\n\n"));
	free(out);
	r->usb.status = TG_DOCTOR_USB_OK;
	r->usb.seen = 1;
	free(r->pcsc.error);
	r->pcsc.error = NULL;
	out = render(r, 0, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "USB\n"
	                            "  no security tokens or smart card readers among 1 USB "
	                            "device\n\nPC/SC (pcscd socket /s)\n"
	                            "  pcscd is running\n  no readers\n\n"));
	free(out);
	/* One token, every device seen: no "other devices" line; a device with
	 * neither vendor name nor strings. */
	d = add((void **)&r->usb.devs, &r->usb.n, sizeof(*d));
	d->bus = 255;
	d->address = 127;
	d->vid = 0xffff;
	d->pid = 0xabcd;
	out = render(r, 0, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "USB\n  255-127 ffff:abcd  unknown vendor\n\nPC/SC"));
	free(out);
	tg_doctor_report_free(r);
}

/* The JSON of the rich report, member by member, and its layout. */
static void
test_json_rich(void **state)
{
	struct tg_doctor_report *r = rich_report();
	json_t *got, *want;
	json_error_t jerr;
	char *out;
	int rc;

	(void)state;
	out = render(r, 1, &rc);
	assert_int_equal(rc, 0);
	assert_true(strlen(out) > 2);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_memory_equal(out, "{\n  \"usb\": {\n    \"status\": \"ok\",\n", 32);
	got = json_loads(out, 0, &jerr);
	if (got == NULL)
		fail_msg("doctor JSON does not parse: %s (line %d)", jerr.text, jerr.line);
	want = json_object();
	assert_non_null(want);
	assert_int_equal(
	    json_object_set_new(
	        want, "usb",
	        json_pack("{s:s, s:n, s:i, s:[{s:i, s:i, s:s, s:s, s:s, s:n, s:s, s:b, s:n},"
	                  "{s:i, s:i, s:s, s:s, s:n, s:s, s:n, s:b, s:s},"
	                  "{s:i, s:i, s:s, s:s, s:n, s:n, s:n, s:b, s:n}]}",
	                  "status", "ok", "note", "devices_seen", 5, "devices", "bus", 1, "address",
	                  4, "vendor_id", "1050", "product_id", "0407", "vendor", "Yubico",
	                  "manufacturer", "product", "YubiKey OTP+FIDO+CCID", "ccid", 1,
	                  "open_error", "bus", 2, "address", 10, "vendor_id", "1234", "product_id",
	                  "0001", "vendor", "manufacturer", "ACME", "product", "ccid", 0,
	                  "open_error", "Access denied", "bus", 3, "address", 7, "vendor_id",
	                  "0bad", "product_id", "0002", "vendor", "manufacturer", "product", "ccid",
	                  1, "open_error")),
	    0);
	assert_int_equal(
	    json_object_set_new(
	        want, "pcsc",
	        json_pack("{s:b, s:s, s:n, s:["
	                  "{s:s, s:b, s:b, s:b, s:b, s:s, s:s, s:{s:b, s:b, s:n}},"
	                  "{s:s, s:b, s:b, s:b, s:b, s:n, s:n, s:n},"
	                  "{s:s, s:b, s:b, s:b, s:b, s:n, s:n, s:n},"
	                  "{s:s, s:b, s:b, s:b, s:b, s:s, s:n, s:n}]}",
	                  "reachable", 1, "socket", "/run/pcscd/pcscd.comm", "error", "readers",
	                  "name", "Yubico YubiKey 00 00", "card_present", 1, "mute", 0, "exclusive",
	                  0, "unavailable", 0, "atr",
	                  "3BFD1300008131FE158073C021C057597562694B657940", "hint", YK_HINT, "piv",
	                  "pin_default", 1, "puk_default", 0, "management_key_default", "name",
	                  "Reader B", "card_present", 0, "mute", 0, "exclusive", 0, "unavailable",
	                  1, "atr", "hint", "piv", "name", "Reader C", "card_present", 0, "mute", 0,
	                  "exclusive", 0, "unavailable", 0, "atr", "hint", "piv", "name",
	                  "Reader D", "card_present", 1, "mute", 1, "exclusive", 1, "unavailable",
	                  0, "atr",
	                  "3BA5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5",
	                  "hint", "piv")),
	    0);
	assert_int_equal(
	    json_object_set_new(
	        want, "pkcs11",
	        json_pack(
	            "{s:n, s:["
	            "{s:s, s:s, s:s, s:n, s:["
	            "{s:i, s:s, s:b, s:n, s:{s:s, s:s, s:s, s:s, s:b, s:[s,s,s,s,s]}},"
	            "{s:i, s:n, s:b, s:n, s:n},"
	            "{s:i, s:s, s:b, s:s, s:n},"
	            "{s:i, s:s, s:b, s:n, s:n}]},"
	            "{s:s, s:s, s:n, s:s, s:[]},"
	            "{s:s, s:s, s:n, s:n, s:[]}]}",
	            "error", "modules", "name", "softhsm2", "path",
	            "/usr/lib/softhsm/libsofthsm2.so", "library", "Implementation of PKCS11",
	            "error", "slots", "slot_id", 1, "description", "SoftHSM slot ID 0x1",
	            "token_present", 1, "error", "token", "label", "tg", "manufacturer",
	            "SoftHSM project", "model", "SoftHSM v2", "serial", "abc123", "initialized", 1,
	            "flags", "initialized", "login-required", "user-pin-set", "pin-locked",
	            "so-pin-to-be-changed", "slot_id", 2, "description", "token_present", 0,
	            "error", "token", "slot_id", 3, "description", "s3", "token_present", 0,
	            "error", "cannot read the token: CKR_DEVICE_ERROR", "token", "slot_id", 4,
	            "description", "s4", "token_present", 1, "error", "token", "name", "opensc",
	            "path", "/x/opensc-pkcs11.so", "library", "error", "cannot be loaded", "slots",
	            "name", "empty", "path", "/x/e.so", "library", "error", "slots")),
	    0);
	assert_int_equal(
	    json_object_set_new(want, "problems",
	                        json_pack("[{s:s, s:s}, {s:s, s:s}]", "what", "problem 1", "fix",
	                                  "fix one", "what", "problem two", "fix", "fix two")),
	    0);
	assert_int_equal(json_object_size(want), 4);
	if (!json_equal(got, want)) {
		char *w = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS);
		char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);

		print_error("want:\n%s\ngot:\n%s\n", w, g);
		free(w);
		free(g);
		fail_msg("doctor JSON differs from the report");
	}
	json_decref(got);
	json_decref(want);
	free(out);
	tg_doctor_report_free(r);
}

/* The empty report's JSON, byte for byte (member order and layout). */
static void
test_json_empty(void **state)
{
	struct tg_doctor_report *r = NULL;
	char *out;
	int rc;

	(void)state;
	assert_int_equal(tg_doctor_report_new(&r), 0);
	r->usb.status = TG_DOCTOR_USB_NO_BUS;
	r->usb.note = sdup("no bus");
	out = render(r, 1, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "{\n"
	                         "  \"usb\": {\n"
	                         "    \"status\": \"no-devices\",\n"
	                         "    \"note\": \"no bus\",\n"
	                         "    \"devices_seen\": 0,\n"
	                         "    \"devices\": []\n"
	                         "  },\n"
	                         "  \"pcsc\": {\n"
	                         "    \"reachable\": false,\n"
	                         "    \"socket\": null,\n"
	                         "    \"error\": null,\n"
	                         "    \"readers\": []\n"
	                         "  },\n"
	                         "  \"pkcs11\": {\n"
	                         "    \"error\": null,\n"
	                         "    \"modules\": []\n"
	                         "  },\n"
	                         "  \"problems\": []\n"
	                         "}\n");
	free(out);
	r->usb.status = TG_DOCTOR_USB_ERROR;
	out = render(r, 1, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "\"status\": \"error\",\n"));
	free(out);
	tg_doctor_report_free(r);
}

/* Output that cannot be written: TG_ERR_IO from both renderers. */
static void
test_write_error(void **state)
{
	struct tg_doctor_report *r = rich_report();
	FILE *f;

	(void)state;
	if ((f = fopen("/dev/full", "w")) == NULL)
		tg_test_skip("/dev/full cannot be opened");
	assert_int_equal(tg_doctor_text_render(r, f), TG_ERR_IO);
	fclose(f);
	assert_non_null(f = fopen("/dev/full", "w"));
	assert_int_equal(tg_doctor_json_render(r, f), TG_ERR_IO);
	fclose(f);
	/* a stream opened for reading only */
	assert_non_null(f = fopen("/dev/null", "r"));
	assert_int_equal(tg_doctor_text_render(r, f), TG_ERR_IO);
	fclose(f);
	tg_doctor_report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_rich),   cmocka_unit_test(test_text_empty),
	    cmocka_unit_test(test_text_states), cmocka_unit_test(test_json_rich),
	    cmocka_unit_test(test_json_empty),  cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
