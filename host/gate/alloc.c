/*
 * alloc.c — the allocator's settings for the gate's and the agent's event
 * loops (tg_gate_alloc.h).
 */
#include "tg_gate_alloc.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

int
tg_gate_alloc_tune(const char **why)
{
	const char *t = getenv("GLIBC_TUNABLES");
	int r = 0;

	*why = NULL;
#ifdef __GLIBC__
	if (t != NULL && (strstr(t, "glibc.malloc.trim_threshold") != NULL ||
	                  strstr(t, "glibc.malloc.mmap_threshold") != NULL)) {
		*why = "GLIBC_TUNABLES sets the allocator's thresholds";
	} else if (mallopt(M_MMAP_THRESHOLD, (int)TG_GATE_ALLOC_MMAP) != 1 ||
	           mallopt(M_TRIM_THRESHOLD, (int)TG_GATE_ALLOC_TRIM) != 1) {
		*why = "mallopt refused the thresholds (another allocator in place: a sanitizer's, "
		       "or one preloaded)";
	} else {
		r = 1;
	}
#else
	(void)t;
	*why = "not glibc: its allocator's own settings";
#endif
	return r;
}
