/*
 * tg_audit_verify.h — checks the audit log's hash chain (format in
 * tg_audit.h) across one or more files, in the order given, and names the
 * first line that breaks it. Reads any bytes without crashing: a line is
 * checked as it is read (at most TG_AUDIT_LINE_MAX bytes held).
 */
#ifndef TG_AUDIT_VERIFY_H
#define TG_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "tg_audit.h"
#include "tg_err.h"

/* What is wrong with the first broken line. */
enum tg_audit_flaw {
	TG_AUDIT_INTACT = 0,    /* nothing: the chain holds */
	TG_AUDIT_NOT_JSON,      /* not one JSON object (also: an empty line, duplicate keys) */
	TG_AUDIT_NO_PREV,       /* no "prev" member */
	TG_AUDIT_BAD_PREV,      /* "prev" is not 64 lower-case hex digits */
	TG_AUDIT_PREV_MISMATCH, /* "prev" is not the SHA-256 of the line before */
	TG_AUDIT_NOT_GENESIS,   /* TG_AUDIT_VERIFY_GENESIS: the first prev is not genesis */
	TG_AUDIT_TORN,          /* the file's last line has no "\n" (cut short) */
	TG_AUDIT_TOO_LONG,      /* a line longer than TG_AUDIT_LINE_MAX */
};

/* Flags of the verifier. */
#define TG_AUDIT_VERIFY_GENESIS 0x1u /* the first line must start the chain (prev = genesis) */

struct tg_audit_report {
	size_t files;                       /* files read */
	size_t lines;                       /* lines that chained (all files) */
	char first_prev[TG_AUDIT_HASH_HEX]; /* prev of the first line; "" when none */
	char head[TG_AUDIT_HASH_HEX];       /* SHA-256 of the last good line; "" when none */
	enum tg_audit_flaw flaw;            /* TG_AUDIT_INTACT, or the first break: */
	size_t file;                        /* its file (index into the paths) */
	size_t line;                        /* its line number in that file, from 1 */
	char detail[512];                   /* what is wrong, one sentence */
};

/* A short name of a flaw for machine output: "prev-mismatch", "torn", ... */
const char *tg_audit_flaw_name(enum tg_audit_flaw flaw);

/*
 * Verifies paths[0..n-1] as one chain in that order: each line of each file
 * a JSON object whose "prev" is the SHA-256 of the line before it (the
 * last line of the previous file for a file's first line). The first line
 * of paths[0] may have any well-formed prev (a rotated set may begin after
 * files deleted by retention) unless flags has TG_AUDIT_VERIFY_GENESIS;
 * report->first_prev says where it starts. Stops at the first broken line.
 * Returns 0 when every file was read (report->flaw says whether the chain
 * holds), or TG_ERR_NOT_FOUND / TG_ERR_IO naming a file that cannot be
 * opened or read (report then covers the files before it).
 */
int tg_audit_verify_files(const char *const *paths, size_t n, unsigned flags,
                          struct tg_audit_report *report, struct tg_error *err);

/*
 * The same check over len bytes at data, as the single file named name (for
 * the fuzz target and tests). Returns 0, or TG_ERR_ALLOC.
 */
int tg_audit_verify_mem(const uint8_t *data, size_t len, const char *name, unsigned flags,
                        struct tg_audit_report *report, struct tg_error *err);

#endif /* TG_AUDIT_VERIFY_H */
