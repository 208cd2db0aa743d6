/*
 * secret.c — the credentials of the policy's inject_headers
 * (tg_gate_secret.h): read from a checked file or the environment, held as
 * the finished header value (prefix + secret), wiped when freed. No message
 * ever holds a value: errors name the route, the header and the source.
 */
#include "tg_gate_secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_file.h"
#include "tg_secret.h"

#define GS_FILE_MAX (64 * 1024) /* an API key, a token: far below this */

struct gs_value {
	char *buf; /* prefix + secret, NUL-terminated */
	size_t len;
};

struct gs_route {
	struct gs_value *v;
	size_t n;
};

struct tg_gate_secrets {
	struct gs_route *routes;
	size_t nroutes;
};

/* NULL when the secret's bytes make a good header value, else the problem. */
static const char *
value_why(const uint8_t *s, size_t n)
{
	const char *why = NULL;
	size_t i;

	if (n == 0)
		why = "is empty; put the credential there";
	for (i = 0; why == NULL && i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			why =
			    "holds a line break (CR or LF) or a NUL byte inside; a header value is "
			    "one line: keep only the credential (one trailing newline is allowed)";
		else if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			why = "holds a control character; keep only the credential";
	}
	return why;
}

/* The raw secret of h into *data (heap, wiped by the caller) and *len. */
static int
read_source(const struct tg_gate_route *r, const struct tg_gate_inject *h, uint8_t **data,
            size_t *len, struct tg_error *err)
{
	const char *env, *why;
	size_t n;
	int rc;

	*data = NULL;
	*len = 0;
	if (h->src == TG_GATE_SECRET_FILE) {
		rc = tg_file_read_checked(h->from, "secret file", TG_FILE_SECRET | TG_FILE_FOLLOW,
		                          GS_FILE_MAX, data, len, err);
		if (rc != 0) {
			rc = tg_error_wrap(err, rc, "route '%s' header %s (from file:%s)", r->name,
			                   h->header, h->from);
			goto out;
		}
		if (*len > 0 && (*data)[*len - 1] == '\n')
			(*data)[--*len] = '\0';
	} else if (h->src == TG_GATE_SECRET_ENV) {
		if ((env = getenv(h->from)) == NULL) {
			rc = tg_error_set(
			    err, TG_ERR_NOT_FOUND,
			    "route '%s' header %s: environment variable %s is not set; "
			    "set it in the gate's environment (or use from: "
			    "\"file:/PATH\")",
			    r->name, h->header, h->from);
			goto out;
		}
		n = strlen(env);
		if ((*data = malloc(n + 1)) == NULL) {
			rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading secrets");
			goto out;
		}
		memcpy(*data, env, n + 1);
		*len = n;
	} else {
		rc = tg_error_set(err, TG_ERR_INTERNAL, "route '%s' header %s: unknown source",
		                  r->name, h->header);
		goto out;
	}
	if ((why = value_why(*data, *len)) != NULL) {
		rc = tg_error_set(
		    err, TG_ERR_CONFIG, "route '%s' header %s: the secret from %s:%s %s", r->name,
		    h->header, h->src == TG_GATE_SECRET_FILE ? "file" : "env", h->from, why);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && *data != NULL) {
		tg_freezero(*data, *len + 1);
		*data = NULL;
		*len = 0;
	}
	return rc;
}

/* prefix + secret of h into *v. */
static int
load_one(const struct tg_gate_route *r, const struct tg_gate_inject *h, struct gs_value *v,
         struct tg_error *err)
{
	const char *prefix = h->prefix != NULL ? h->prefix : "";
	size_t plen = strlen(prefix), slen = 0;
	uint8_t *raw = NULL;
	int rc;

	if ((rc = read_source(r, h, &raw, &slen, err)) != 0)
		goto out;
	if ((v->buf = malloc(plen + slen + 1)) == NULL) {
		rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading secrets");
		goto out;
	}
	memcpy(v->buf, prefix, plen);
	memcpy(v->buf + plen, raw, slen);
	v->buf[plen + slen] = '\0';
	v->len = plen + slen;
out:
	tg_freezero(raw, raw != NULL ? slen + 1 : 0);
	return rc;
}

int
tg_gate_secrets_load(const struct tg_gate_policy *pol, struct tg_gate_secrets **out,
                     struct tg_error *err)
{
	struct tg_gate_secrets *s = NULL;
	struct gs_route *gr;
	size_t i, j;
	int rc = TG_ERR_ALLOC;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->routes = calloc(pol->nroutes + 1, sizeof(*s->routes))) == NULL) {
		rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading secrets");
		goto out;
	}
	s->nroutes = pol->nroutes;
	for (i = 0; i < pol->nroutes; i++) {
		gr = &s->routes[i];
		if ((gr->v = calloc(pol->routes[i].ninject + 1, sizeof(*gr->v))) == NULL) {
			rc = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading secrets");
			goto out;
		}
		for (j = 0; j < pol->routes[i].ninject; j++, gr->n++)
			if ((rc = load_one(&pol->routes[i], &pol->routes[i].inject[j], &gr->v[j],
			                   err)) != 0)
				goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	tg_gate_secrets_free(s);
	return rc;
}

const char *
tg_gate_secret_value(const struct tg_gate_secrets *s, size_t r, size_t i, size_t *len)
{
	const char *v = NULL;

	if (s != NULL && r < s->nroutes && i < s->routes[r].n) {
		v = s->routes[r].v[i].buf;
		if (len != NULL)
			*len = s->routes[r].v[i].len;
	}
	return v;
}

void
tg_gate_secrets_free(struct tg_gate_secrets *s)
{
	size_t i, j;

	if (s == NULL)
		return;
	for (i = 0; s->routes != NULL && i < s->nroutes; i++) {
		for (j = 0; j < s->routes[i].n; j++)
			tg_freezero(s->routes[i].v[j].buf, s->routes[i].v[j].len + 1);
		free(s->routes[i].v);
	}
	free(s->routes);
	free(s);
}
