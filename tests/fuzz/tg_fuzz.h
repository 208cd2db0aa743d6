/*
 * tg_fuzz.h — what the fuzz targets share: the libFuzzer entry point (also
 * called by replay_main.c in normal builds) and check(), an invariant that
 * aborts so both libFuzzer and the replay test report it.
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

#endif /* TG_FUZZ_H */
