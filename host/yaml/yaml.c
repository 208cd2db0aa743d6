/* yaml.c — loading, messages and scalars for the YAML readers (tg_yaml.h). */
#include "tg_yaml.h"

#include <stdio.h>

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
