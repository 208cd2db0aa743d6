/*
 * tg_test.h — small helpers for tokengate's cmocka tests (header only).
 *
 * tests/lib is on the include path of every test registered with
 * tg_add_unit_test. Include it after the system headers cmocka needs.
 */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit status CTest reports as "skipped" (SKIP_RETURN_CODE). */
#define TG_TEST_EXIT_SKIP 77

/*
 * Prints "SKIP: <reason>" on stdout and ends the test program with status
 * 77, which CTest shows as skipped. For a test that cannot run here (a
 * missing tool, module or fixture), never for a failure.
 */
static inline void tg_test_skip(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static inline void
tg_test_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(TG_TEST_EXIT_SKIP);
}

/*
 * Returns the value of environment variable name, or NULL when it is unset
 * or empty. The string belongs to the environment.
 */
static inline const char *
tg_test_getenv(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		return NULL;
	return v;
}

/*
 * Returns the value of environment variable name; when it is unset or
 * empty, skips the test (status 77) with a reason naming the variable:
 * such variables come from CTest (TG_*) or a fixture wrapper
 * (tests/lib/with-softhsm.sh, tests/lib/with-pcscd.sh).
 */
static inline const char *
tg_test_require_env(const char *name)
{
	const char *v = tg_test_getenv(name);

	if (v == NULL)
		tg_test_skip("%s is not set: run this test through ctest (its "
		             "fixture wrapper sets it)",
		             name);
	return v;
}

/*
 * Returns a heap copy of exactly n bytes of p (free() it), so that
 * AddressSanitizer reports any read past the end. For n == 0 the result
 * may be NULL or a pointer to zero usable bytes. Aborts when out of memory.
 */
static inline unsigned char *
tg_test_memdup(const void *p, size_t n)
{
	unsigned char *q = malloc(n);

	if (q == NULL && n != 0) {
		fprintf(stderr, "tg_test_memdup: out of memory (%zu bytes)\n", n);
		abort();
	}
	if (n != 0)
		memcpy(q, p, n);
	return q;
}

/* Value of one hex digit, or -1. */
static inline int
tg_test_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Parses hex (pairs of hex digits; spaces, tabs and ':' between bytes are
 * ignored, e.g. "00 A4 04 00") into a heap buffer of exactly the decoded
 * size, stored in *len (free() the result; see tg_test_memdup for
 * len == 0). A malformed string is a bug in the test: it is reported with
 * its offset and the program aborts.
 */
static inline unsigned char *
tg_test_hexdup(const char *hex, size_t *len)
{
	size_t i, n = 0, cap = strlen(hex) / 2;
	unsigned char *tmp, *out;
	int hi, lo;

	tmp = malloc(cap + 1);
	if (tmp == NULL)
		abort();
	for (i = 0; hex[i] != '\0';) {
		if (hex[i] == ' ' || hex[i] == '\t' || hex[i] == ':') {
			i++;
			continue;
		}
		hi = tg_test_hexval(hex[i]);
		lo = hex[i + 1] != '\0' ? tg_test_hexval(hex[i + 1]) : -1;
		if (hi < 0 || lo < 0) {
			fprintf(stderr,
			        "tg_test_hexdup: bad hex at offset %zu of "
			        "\"%s\"\n",
			        i, hex);
			abort();
		}
		tmp[n++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	out = tg_test_memdup(tmp, n);
	free(tmp);
	*len = n;
	return out;
}

/*
 * A new private directory "/tmp/NAME.XXXXXX" (mkdtemp) written into dir
 * (size n). 0, or -1 when it cannot be made.
 */
static inline int
tg_test_tmpdir(const char *name, char *dir, size_t n)
{
	if (snprintf(dir, n, "/tmp/%s.XXXXXX", name) >= (int)n)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

/*
 * Turns a switch file dir/name on (creates it, empty) or off (removes it):
 * how a test steers a wrapper module (p11_watch_wrap's $TG_WATCH_WRAP_CTL).
 * 0, or -1 when the file cannot be made.
 */
static inline int
tg_test_switch(const char *dir, const char *name, int on)
{
	char path[4096];
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -1;
	if (!on) {
		(void)unlink(path);
		return 0;
	}
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fclose(f);
	return 0;
}

/* Entries of dir other than "." and ".." (-1 when it cannot be read). */
static inline int
tg_test_dir_count(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Writes text to path (created 0644 or truncated); 0, or -1 with errno. */
static inline int
tg_test_file_put(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	size_t n = strlen(text);
	int r = -1;

	if (f != NULL) {
		r = fwrite(text, 1, n, f) == n ? 0 : -1;
		if (fclose(f) != 0)
			r = -1;
	}
	return r;
}

/*
 * Removes dir and what it holds, one level deep (files, links, empty
 * subdirectories): what a unit test leaves in its tg_test_tmpdir.
 */
static inline void
tg_test_tmpdir_remove(const char *dir)
{
	struct dirent *e;
	char p[4096];
	DIR *d = opendir(dir);

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (unlink(p) != 0)
			rmdir(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

#endif /* TG_TEST_H */
