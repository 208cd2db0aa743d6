/*
 * tg_yaml.h — what every YAML configuration reader of tokengate shares
 * (the CA's policy.yaml, the gate's configuration and policy, the agent's
 * configuration): loading a document from a file or text with a size cap,
 * messages that name the file and line, and readers of scalars (text,
 * whole numbers, booleans) and of mappings with known keys whose errors
 * say what was expected. Built on libyaml; the readers walk the document
 * themselves.
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

/* Node id of c's document (NULL when there is none). */
yaml_node_t *tg_yaml_node(const struct tg_yaml_ctx *c, int id);

/* The line of node n (from 1), 0 when n is NULL. */
unsigned tg_yaml_line(const yaml_node_t *n);

/* Sets c->err to "out of memory reading NAME", returns TG_ERR_ALLOC. */
int tg_yaml_alloc(const struct tg_yaml_ctx *c);

/* Parses n bytes of text read from the file name into arg. */
typedef int (*tg_yaml_parse_fn)(const char *text, size_t n, const char *name, void *arg,
                                struct tg_error *err);

/*
 * Reads the file path (tg_file_read_checked with TG_FILE_FOLLOW: owner and
 * mode checked, at most max bytes; what names it in messages, "gate
 * configuration") and hands its text to parse(text, n, path, arg, err).
 * Returns what parse returns, or the errors of tg_file_read_checked.
 */
int tg_yaml_file_parse(const char *path, const char *what, size_t max, tg_yaml_parse_fn parse,
                       void *arg, struct tg_error *err);

/*
 * Walks mapping m: each key must be one of keys[0..n-1] and given once;
 * the value node of keys[i] lands in vals[i] (vals holds n NULLs on entry;
 * keys left out stay NULL). what names the mapping in messages. 0, or
 * TG_ERR_CONFIG: "WHAT must be a mapping of keys (known: K1, K2)",
 * "unknown key 'X' in WHAT; remove it or fix its spelling (known: ...)",
 * "key 'X' appears twice in WHAT (first at line N); keep one".
 */
int tg_yaml_keys(const struct tg_yaml_ctx *c, yaml_node_t *m, const char *what,
                 const char *const *keys, size_t n, yaml_node_t **vals);

/*
 * *out = the text of n, one line of printable text (not empty, no control
 * characters); else TG_ERR_CONFIG "'WHAT' must be one line of text" with
 * ", not a list or mapping" or ", not empty".
 */
int tg_yaml_text(const struct tg_yaml_ctx *c, yaml_node_t *n, const char *what, const char **out);

/*
 * Decimal s (digits only: no sign, no spaces, at most 19 of them) into *v
 * when lo <= value <= hi: 0, else -1 and *v untouched. For flags too.
 */
int tg_yaml_parse_uint(const char *s, unsigned long long lo, unsigned long long hi,
                       unsigned long long *v);

/* *v = the whole number of n in [lo, hi] (tg_yaml_parse_uint); else
 * TG_ERR_CONFIG "'WHAT' must be a whole number from LO to HI (given: 'S')". */
int tg_yaml_uint(const struct tg_yaml_ctx *c, yaml_node_t *n, const char *what,
                 unsigned long long lo, unsigned long long hi, unsigned long long *v);

/* *out = 1 for true, 0 for false; else TG_ERR_CONFIG "'WHAT' must be true
 * or false (given: 'S')". */
int tg_yaml_bool(const struct tg_yaml_ctx *c, yaml_node_t *n, const char *what, int *out);

#endif /* TG_YAML_H */
