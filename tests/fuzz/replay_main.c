/*
 * replay_main.c — main() for fuzz targets built without libFuzzer.
 *
 * Runs LLVMFuzzerTestOneInput once on every file named on the command line
 * or found (not recursively) in a directory named there, each in a heap
 * buffer of exactly its size so AddressSanitizer sees any over-read. Options
 * starting with '-' are ignored, so a libFuzzer command line works too.
 * Exit 0 when at least one input ran; 1 when a path is missing or
 * unreadable or no input was found (an empty corpus is a broken test, not a
 * pass); 2 on bad usage. A crashing input aborts the program.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into an exact-size heap buffer. Returns 0 or -1. */
static int
file_read(const char *path, uint8_t **out, size_t *outlen)
{
	FILE *f = NULL;
	uint8_t *buf = NULL, *exact = NULL, *n;
	size_t len = 0, cap = 0, r;
	int rc = -1;

	if ((f = fopen(path, "rb")) == NULL)
		goto out;
	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			if ((n = realloc(buf, cap)) == NULL)
				goto out;
			buf = n;
		}
		r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f))
		goto out;
	/* malloc(0) may return NULL; a 0-byte input still gets a unique
	 * pointer, and ASan flags any read of it. */
	if ((exact = malloc(len > 0 ? len : 1)) == NULL)
		goto out;
	if (len > 0)
		memcpy(exact, buf, len);
	*out = exact;
	*outlen = len;
	rc = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

/* Runs one file; returns 0 or -1 (message printed). */
static int
run_file(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;

	if (file_read(path, &data, &len) != 0) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

/* Runs every regular file of dir in name order; adds to *count. */
static int
run_dir(const char *dir, size_t *count)
{
	struct dirent **ents = NULL;
	struct stat st;
	char path[4096];
	int i, n, rc = 0;

	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0) {
		fprintf(stderr, "replay: cannot list %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name) >=
		    (int)sizeof(path)) {
			fprintf(stderr, "replay: path too long in %s\n", dir);
			rc = -1;
			break;
		}
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) != 0) {
			rc = -1;
			break;
		}
		(*count)++;
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

int
main(int argc, char **argv)
{
	struct stat st;
	size_t count = 0;
	int i, paths = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: %s CORPUS_DIR|FILE...\n"
			       "Replays each input through the fuzz target once "
			       "(a libFuzzer-free regression run).\n"
			       "Exit: 0 ok, 1 missing/empty corpus or unreadable input, 2 usage.\n",
			       argv[0]);
			return 0;
		}
		if (argv[i][0] == '-')
			continue; /* a libFuzzer option */
		paths++;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr,
			        "replay: %s: %s (give the corpus directory, e.g. "
			        "tests/fuzz/corpus/<target>)\n",
			        argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) != 0)
				return 1;
		} else {
			if (run_file(argv[i]) != 0)
				return 1;
			count++;
		}
	}
	if (paths == 0) {
		fprintf(stderr, "usage: %s CORPUS_DIR|FILE... (see --help)\n", argv[0]);
		return 2;
	}
	if (count == 0) {
		fprintf(stderr,
		        "replay: no inputs found; add seed files to the corpus directory\n");
		return 1;
	}
	printf("replayed %zu inputs\n", count);
	return 0;
}
