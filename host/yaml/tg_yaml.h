/*
 * tg_yaml.h — what every YAML configuration reader of tokengate shares
 * (the CA's policy.yaml, the gate's policy): loading a document from text
 * with a size cap, messages that name the file and line, scalar access.
 * Built on libyaml; the readers walk the document themselves.
 */
#ifndef TG_YAML_H
#define TG_YAML_H

#include <stdarg.h>
#include <stddef.h>

#include <yaml.h>

#include "tg_err.h"

/*
 * Parses text (n bytes; refused when larger than max) into *doc, the first
 * YAML document of text. Returns 0 (the caller deletes *doc with
 * yaml_document_delete; its root may be NULL for empty text), or
 * TG_ERR_CONFIG ("NAME: larger than MAX bytes; split or trim it", "NAME line
 * N: PROBLEM CONTEXT; fix the YAML syntax") or TG_ERR_ALLOC, with *doc not
 * to be deleted.
 */
int tg_yaml_load(const char *text, size_t n, size_t max, const char *name, yaml_document_t *doc,
                 struct tg_error *err);

/* A reader's state: the loaded document, the file name for messages and
 * where errors go. */
struct tg_yaml_ctx {
	yaml_document_t *doc;
	const char *name;
	struct tg_error *err;
};

/* Sets c->err to "NAME line N: <message>" (N of node n, 0 when n is NULL)
 * and returns TG_ERR_CONFIG. */
int tg_yaml_err(const struct tg_yaml_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The text of scalar node n, or NULL when n is NULL or not a scalar. */
const char *tg_yaml_scalar(const yaml_node_t *n);

#endif /* TG_YAML_H */
