/* yaml.c — loading, messages and scalars for the YAML readers (tg_yaml.h). */
#include "tg_yaml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_file.h"

int
tg_yaml_load(const char *text, size_t n, size_t max, const char *name, yaml_document_t *doc,
             struct tg_error *err)
{
	yaml_parser_t parser;
	int have_parser = 0, r = TG_ERR_CONFIG;

	if (n > max) {
		tg_error_set(err, r, "%s: larger than %zu bytes; split or trim it", name, max);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory reading %s", name);
		goto out;
	}
	have_parser = 1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
	if (!yaml_parser_load(&parser, doc)) {
		tg_error_set(err, r, "%s line %lu: %s%s%s; fix the YAML syntax", name,
		             (unsigned long)parser.problem_mark.line + 1,
		             parser.problem != NULL ? parser.problem : "bad YAML",
		             parser.context != NULL ? " " : "",
		             parser.context != NULL ? parser.context : "");
		goto out;
	}
	r = 0;
out:
	if (have_parser)
		yaml_parser_delete(&parser);
	return r;
}

int
tg_yaml_err(const struct tg_yaml_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return tg_error_set(c->err, TG_ERR_CONFIG, "%s line %lu: %s", c->name,
	                    n != NULL ? (unsigned long)n->start_mark.line + 1 : 0UL, msg);
}

const char *
tg_yaml_scalar(const yaml_node_t *n)
{
	return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

yaml_node_t *
tg_yaml_node(const struct tg_yaml_ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

unsigned
tg_yaml_line(const yaml_node_t *n)
{
	return n != NULL ? (unsigned)n->start_mark.line + 1 : 0;
}

int
tg_yaml_alloc(const struct tg_yaml_ctx *c)
{
	return tg_error_set(c->err, TG_ERR_ALLOC, "out of memory reading %s", c->name);
}

int
tg_yaml_file_parse(const char *path, const char *what, size_t max, tg_yaml_parse_fn parse,
                   void *arg, struct tg_error *err)
{
	uint8_t *text = NULL;
	size_t n = 0;
	int r;

	if ((r = tg_file_read_checked(path, what, TG_FILE_FOLLOW, max, &text, &n, err)) != 0)
		goto out;
	r = parse((const char *)text, n, path, arg, err);
out:
	free(text);
	return r;
}

int
tg_yaml_keys(const struct tg_yaml_ctx *c, yaml_node_t *m, const char *what, const char *const *keys,
             size_t n, yaml_node_t **vals)
{
	char known[512];
	yaml_node_pair_t *pr;
	const char *k;
	size_t i, used = 0;
	int r = 0;

	known[0] = '\0';
	for (i = 0; i < n && used < sizeof(known); i++)
		used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
		                         i > 0 ? ", " : "", keys[i]);
	if (m == NULL || m->type != YAML_MAPPING_NODE) {
		r = tg_yaml_err(c, m, "%s must be a mapping of keys (known: %s)", what, known);
		goto out;
	}
	for (pr = m->data.mapping.pairs.start; r == 0 && pr < m->data.mapping.pairs.top; pr++) {
		k = tg_yaml_scalar(tg_yaml_node(c, pr->key));
		for (i = 0; k != NULL && i < n && strcmp(k, keys[i]) != 0; i++)
			;
		if (k == NULL || i == n)
			r = tg_yaml_err(c, tg_yaml_node(c, pr->key),
			                "unknown key '%.64s' in %s; remove it or fix its spelling "
			                "(known: %s)",
			                k != NULL ? k : "", what, known);
		else if (vals[i] != NULL)
			r = tg_yaml_err(c, tg_yaml_node(c, pr->key),
			                "key '%s' appears twice in %s (first at line %u); keep one",
			                k, what, tg_yaml_line(vals[i]));
		else
			vals[i] = tg_yaml_node(c, pr->value);
	}
out:
	return r;
}

int
tg_yaml_text(const struct tg_yaml_ctx *c, yaml_node_t *n, const char *what, const char **out)
{
	const char *v = tg_yaml_scalar(n);
	size_t i, len = v != NULL ? strlen(v) : 0;
	int r = 0;

	for (i = 0; i < len && (unsigned char)v[i] >= 0x20 && v[i] != 0x7f; i++)
		;
	if (v == NULL || len == 0 || i < len)
		r = tg_yaml_err(c, n, "'%s' must be one line of text%s", what,
		                v == NULL  ? ", not a list or mapping"
		                : len == 0 ? ", not empty"
		                           : "");
	else
		*out = v;
	return r;
}

int
tg_yaml_parse_uint(const char *s, unsigned long long lo, unsigned long long hi,
                   unsigned long long *v)
{
	unsigned long long x = 0;
	size_t i, n = strlen(s);
	int r = -1;

	if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
		goto out;
	for (i = 0; i < n; i++)
		x = x * 10 + (unsigned long long)(s[i] - '0');
	if (x < lo || x > hi)
		goto out;
	*v = x;
	r = 0;
out:
	return r;
}

int
tg_yaml_uint(const struct tg_yaml_ctx *c, yaml_node_t *n, const char *what, unsigned long long lo,
             unsigned long long hi, unsigned long long *v)
{
	const char *s = tg_yaml_scalar(n);
	int r = 0;

	if (s == NULL || tg_yaml_parse_uint(s, lo, hi, v) != 0)
		r = tg_yaml_err(c, n,
		                "'%s' must be a whole number from %llu to %llu (given: "
		                "'%.64s')",
		                what, lo, hi, s != NULL ? s : "a list or mapping");
	return r;
}

int
tg_yaml_bool(const struct tg_yaml_ctx *c, yaml_node_t *n, const char *what, int *out)
{
	const char *s = tg_yaml_scalar(n);
	int r = 0;

	if (s != NULL && strcmp(s, "true") == 0)
		*out = 1;
	else if (s != NULL && strcmp(s, "false") == 0)
		*out = 0;
	else
		r = tg_yaml_err(c, n, "'%s' must be true or false (given: '%.64s')", what,
		                s != NULL ? s : "a list or mapping");
	return r;
}
