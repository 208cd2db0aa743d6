/* status.c — `tokengate-sim status`: shows a token from its state file. */
#include "status.h"

#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "cmd.h"
#include "tg_hex.h"
#include "tg_piv.h"

#define SUBJECT_MAX 512

/* A value's name in a table of names; "unknown" for a value not in it. */
struct code_name {
	uint8_t code;
	const char *name;
};

static const char *
name_of(const struct code_name *t, size_t n, uint8_t code)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].code == code)
			return t[i].name;
	}
	return "unknown";
}

/* A policy's name ("default" for 0), "unknown" for a value without one. */
static const char *
known(const char *name)
{
	return name != NULL ? name : "unknown";
}

static const struct code_name origins[] = {
    {TG_PIV_ORIGIN_NONE, "none"},
    {TG_PIV_ORIGIN_GENERATED, "generated"},
    {TG_PIV_ORIGIN_IMPORTED, "imported"},
};

#define NAME_OF(table, code) name_of(table, sizeof(table) / sizeof(table[0]), code)

/* The certificate's subject in RFC 2253 form into buf; "" when there is no
 * certificate, "(unparsable certificate)" when DER does not parse. */
static const char *
cert_subject(const uint8_t *der, size_t len, char *buf, size_t n)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	BIO *b = NULL;
	int got;

	buf[0] = '\0';
	if (der == NULL || len == 0)
		goto out;
	if (len > (size_t)INT32_MAX || (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		snprintf(buf, n, "(unparsable certificate)");
		goto out;
	}
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
	                       XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto out;
	got = BIO_read(b, buf, (int)n - 1);
	buf[got > 0 ? got : 0] = '\0';
out:
	BIO_free(b);
	X509_free(x);
	return buf;
}

/* The slot's name ("9a"); two hex digits for one the table lacks. */
static const char *
slot_name(uint8_t id, char buf[3])
{
	const struct tg_piv_slot *s = tg_piv_slot_by_id(id);

	if (s == NULL)
		(void)tg_hex_encode(&id, 1, buf, 3);
	return s != NULL ? s->name : buf;
}

static int
print_text(const struct tg_tok_info *info, FILE *out)
{
	const struct tg_tok_slot_info *s;
	char alg[16], subj[SUBJECT_MAX], sl[3];
	size_t i;

	fprintf(out, "serial:                  %u\n", info->serial);
	fprintf(out, "firmware:                %u.%u.%u\n", info->version[0], info->version[1],
	        info->version[2]);
	fprintf(out, "form factor:             0x%02x\n", info->form_factor);
	fprintf(out, "PIN tries left:          %u of %u%s\n", info->pin_tries_left,
	        info->pin_tries_max, info->default_pin ? " (default PIN)" : "");
	fprintf(out, "PUK tries left:          %u of %u%s\n", info->puk_tries_left,
	        info->puk_tries_max, info->default_puk ? " (default PUK)" : "");
	fprintf(out, "management key:          %s%s\n",
	        tg_piv_alg_display(info->mgm_key_alg, alg, sizeof(alg)),
	        info->default_mgm_key ? " (default key)" : "");
	fprintf(out, "private-key operations:  %llu\n",
	        (unsigned long long)info->private_key_operations);
	fprintf(out, "slots:%s\n", info->nslots == 0 ? " none" : "");
	for (i = 0; i < info->nslots && i < sizeof(info->slots) / sizeof(info->slots[0]); i++) {
		s = &info->slots[i];
		fprintf(out, "  %s  %-8s %-9s pin=%-6s touch=%-6s", slot_name(s->slot, sl),
		        s->algorithm != 0 ? tg_piv_alg_display(s->algorithm, alg, sizeof(alg))
		                          : "-",
		        NAME_OF(origins, s->origin), known(tg_piv_pin_policy_name(s->pin_policy)),
		        known(tg_piv_touch_policy_name(s->touch_policy)));
		if (s->cert_der != NULL)
			fprintf(out, " cert: %s",
			        cert_subject(s->cert_der, s->cert_len, subj, sizeof(subj)));
		else
			fprintf(out, " no certificate");
		fprintf(out, "\n");
	}
	return ferror(out) ? TG_ERR_IO : 0;
}

static int
print_json(const struct tg_tok_info *info, FILE *out)
{
	const struct tg_tok_slot_info *s;
	json_t *root = NULL, *slots = NULL, *o = NULL;
	char alg[16], subj[SUBJECT_MAX], fw[16], sl[3];
	size_t i;
	int r = TG_ERR_ALLOC;

	snprintf(fw, sizeof(fw), "%u.%u.%u", info->version[0], info->version[1], info->version[2]);
	root = json_pack("{s:I, s:s, s:i, s:{s:i, s:i, s:b}, s:{s:i, s:i, s:b}, s:{s:s, s:b}, "
	                 "s:I}",
	                 "serial", (json_int_t)info->serial, "firmware", fw, "form_factor",
	                 info->form_factor, "pin", "tries_left", info->pin_tries_left, "tries_max",
	                 info->pin_tries_max, "default", info->default_pin, "puk", "tries_left",
	                 info->puk_tries_left, "tries_max", info->puk_tries_max, "default",
	                 info->default_puk, "management_key", "algorithm",
	                 tg_piv_alg_display(info->mgm_key_alg, alg, sizeof(alg)), "default",
	                 info->default_mgm_key, "private_key_operations",
	                 (json_int_t)info->private_key_operations);
	if (root == NULL || (slots = json_array()) == NULL)
		goto out;
	for (i = 0; i < info->nslots && i < sizeof(info->slots) / sizeof(info->slots[0]); i++) {
		s = &info->slots[i];
		o = json_pack(
		    "{s:s, s:s?, s:s, s:s, s:s, s:s?}", "slot", slot_name(s->slot, sl), "algorithm",
		    s->algorithm != 0 ? tg_piv_alg_display(s->algorithm, alg, sizeof(alg)) : NULL,
		    "origin", NAME_OF(origins, s->origin), "pin_policy",
		    known(tg_piv_pin_policy_name(s->pin_policy)), "touch_policy",
		    known(tg_piv_touch_policy_name(s->touch_policy)), "certificate_subject",
		    s->cert_der != NULL ? cert_subject(s->cert_der, s->cert_len, subj, sizeof(subj))
		                        : NULL);
		if (o == NULL || json_array_append_new(slots, o) != 0)
			goto out;
	}
	if (json_object_set_new(root, "slots", slots) != 0) {
		slots = NULL;
		goto out;
	}
	slots = NULL;
	if (json_dumpf(root, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF) {
		r = TG_ERR_IO;
		goto out;
	}
	r = 0;
out:
	json_decref(slots);
	json_decref(root);
	return r;
}

int
tg_sim_status_print(const struct tg_tok_info *info, int json, FILE *out)
{
	return json ? print_json(info, out) : print_text(info, out);
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: tokengate-sim status --state FILE [--json]\n\n"
	        "Shows the token in FILE: serial, firmware version, slots (algorithm,\n"
	        "origin, PIN and touch policy, certificate subject), PIN and PUK tries\n"
	        "left, and how many private-key operations it performed. Reads the file\n"
	        "only; works while 'tokengate-sim run' serves the same file.\n\n"
	        "options:\n"
	        "  --state FILE  state file written by 'tokengate-sim init'\n"
	        "  --json        one JSON object (field private_key_operations: the count)\n"
	        "  -h, --help    this help\n\n"
	        "Exit codes: 0 ok, 1 failed (e.g. unreadable state file), 2 bad command line.\n");
}

enum { O_STATE = 1, O_JSON };

static const struct tg_cli_opt status_table[] = {
    {"state", TG_CLI_ARG_REQUIRED, O_STATE},
    {"json", TG_CLI_ARG_NONE, O_JSON},
    {NULL, 0, 0},
};

struct status_opts {
	const char *state;
	int json;
};

/* One option into the status_opts at v (tg_sim_cmd_opts' set). */
static int
status_opt_set(void *v, int id, const char *value)
{
	struct status_opts *o = v;

	if (id == O_STATE)
		o->state = value;
	else if (id == O_JSON)
		o->json = 1;
	return 0;
}

int
tg_sim_cmd_status(int argc, char **argv)
{
	struct tg_tok *tok = NULL;
	struct tg_tok_info info;
	struct tg_error err;
	struct status_opts o = {NULL, 0};
	int r, rc;

	tg_error_clear(&err);
	if ((rc = tg_sim_cmd_opts("status", status_table, usage, argc, argv, status_opt_set, &o,
	                          &o.state)) != TG_CLI_CONTINUE)
		goto out;
	if ((r = tg_sim_cmd_load_token(o.state, NULL, &tok, &err)) != 0) {
		rc = tg_sim_cmd_fail("status", r, &err);
		goto out;
	}
	tg_tok_info_get(tok, &info);
	if ((r = tg_sim_status_print(&info, o.json, stdout)) != 0 || fflush(stdout) != 0) {
		rc = tg_sim_cmd_fail("status", r != 0 ? r : TG_ERR_IO, NULL);
		goto out;
	}
	rc = TG_SIM_EXIT_OK;
out:
	tg_tok_free(tok);
	return rc;
}
