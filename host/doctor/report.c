/* report.c — the findings of `tokengate doctor` (report.h). */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_err.h"

/* Printable ASCII: what is safe to put on a terminal. */
#define ASCII_FIRST_PRINTABLE 0x20
#define ASCII_LAST_PRINTABLE  0x7E

int
tg_doctor_report_new(struct tg_doctor_report **out)
{
	struct tg_doctor_report *r;
	int rc = TG_ERR_ALLOC;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto out;
	*out = r;
	rc = 0;
out:
	return rc;
}

static void
usb_free(struct tg_doctor_usb *u)
{
	size_t i;

	for (i = 0; i < u->n; i++) {
		free(u->devs[i].manufacturer);
		free(u->devs[i].product);
		free(u->devs[i].open_error);
	}
	free(u->devs);
	free(u->note);
}

static void
pcsc_free(struct tg_doctor_pcsc *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->readers[i].name);
	free(p->readers);
	free(p->socket);
	free(p->error);
}

static void
module_free(struct tg_doctor_module *m)
{
	size_t i;
	struct tg_doctor_token *t;

	for (i = 0; i < m->n; i++) {
		t = &m->slots[i];
		free(t->slot_desc);
		free(t->label);
		free(t->manufacturer);
		free(t->model);
		free(t->serial);
		free(t->error);
	}
	free(m->slots);
	free(m->name);
	free(m->path);
	free(m->library);
	free(m->error);
}

void
tg_doctor_report_free(struct tg_doctor_report *r)
{
	size_t i;

	if (r == NULL)
		goto out;
	usb_free(&r->usb);
	pcsc_free(&r->pcsc);
	for (i = 0; i < r->pkcs11.n; i++)
		module_free(&r->pkcs11.modules[i]);
	free(r->pkcs11.modules);
	free(r->pkcs11.error);
	for (i = 0; i < r->n_problems; i++) {
		free(r->problems[i].what);
		free(r->problems[i].fix);
	}
	free(r->problems);
	free(r);
out:
	return;
}

int
tg_doctor_array_add(void **arr, size_t *n, size_t size, void **elem)
{
	unsigned char *p;
	int rc = TG_ERR_ALLOC;

	if (size == 0 || *n >= ((size_t)-1) / size - 1)
		goto out;
	if ((p = realloc(*arr, (*n + 1) * size)) == NULL)
		goto out;
	memset(p + *n * size, 0, size);
	*elem = p + *n * size;
	*arr = p;
	(*n)++;
	rc = 0;
out:
	return rc;
}

static char *str_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *
str_vprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s = NULL;
	int len;

	va_copy(ap2, ap);
	len = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (len < 0)
		goto out;
	if ((s = malloc((size_t)len + 1)) == NULL)
		goto out;
	vsnprintf(s, (size_t)len + 1, fmt, ap);
out:
	return s;
}

char *
tg_doctor_str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = str_vprintf(fmt, ap);
	va_end(ap);
	return s;
}

int
tg_doctor_problem_add(struct tg_doctor_report *r, const char *fix, const char *fmt, ...)
{
	struct tg_doctor_problem *p = NULL;
	char *what = NULL, *fixc = NULL;
	va_list ap;
	int rc = TG_ERR_ALLOC;

	va_start(ap, fmt);
	what = str_vprintf(fmt, ap);
	va_end(ap);
	if (what == NULL || (fixc = strdup(fix)) == NULL)
		goto out;
	if ((rc = tg_doctor_array_add((void **)&r->problems, &r->n_problems, sizeof(*p),
	                              (void **)&p)) != 0)
		goto out;
	p->what = what;
	p->fix = fixc;
	what = fixc = NULL;
	rc = 0;
out:
	free(what);
	free(fixc);
	return rc;
}

char *
tg_doctor_str_clean(const char *s, size_t n)
{
	struct tg_buf in, out;
	char *res = NULL;
	size_t len;
	uint8_t c;

	if ((res = malloc(n + 1)) == NULL)
		goto out;
	tg_buf_reader(&in, (const uint8_t *)s, s == NULL ? 0 : n);
	tg_buf_writer(&out, (uint8_t *)res, n);
	while (tg_buf_get_u8(&in, &c) == 0 && c != '\0') {
		if (c < ASCII_FIRST_PRINTABLE || c > ASCII_LAST_PRINTABLE)
			c = '?';
		(void)tg_buf_put_u8(&out, c);
	}
	len = tg_buf_len(&out);
	while (len > 0 && res[len - 1] == ' ')
		len--;
	res[len] = '\0';
out:
	return res;
}
