/*
 * tg_gate_alloc.h — the C library allocator's settings for the long-running
 * event loops of `tokengate gate` and `tokengate agent`.
 *
 * glibc gives the free top of a heap back to the kernel (madvise, or sbrk
 * down) once it passes a threshold that starts at 128 KiB, and maps memory
 * again at the next allocation past the top. A proxy allocates and frees
 * TLS record buffers (SSL_MODE_RELEASE_BUFFERS) and libevent buffer chains
 * on every request, so with a few dozen busy connections each worker's
 * heap shrank and grew many times a second: page faults, page-table
 * updates and TLB flushes on every CPU, a third of the gate's CPU per
 * request at 64 keep-alive connections (docs/benchmarks.md). The largest
 * of those blocks, a 128 KiB chunk per client read, is gone (proxy.c reads
 * 16 KiB at a time); these thresholds keep the rest (TLS buffers, bodies)
 * from doing the same.
 *
 * tg_gate_alloc_tune keeps up to TG_GATE_ALLOC_TRIM bytes free at the top
 * of each heap (so at most that much per thread's arena stays mapped while
 * unused) and serves blocks below TG_GATE_ALLOC_MMAP from the heaps.
 */
#ifndef TG_GATE_ALLOC_H
#define TG_GATE_ALLOC_H

#include <stddef.h>

#define TG_GATE_ALLOC_TRIM (8u * 1024u * 1024u) /* M_TRIM_THRESHOLD */
#define TG_GATE_ALLOC_MMAP (1024u * 1024u)      /* M_MMAP_THRESHOLD */

/*
 * Sets the two thresholds above, before the process starts its threads.
 * Leaves the allocator alone when GLIBC_TUNABLES names either setting
 * (glibc.malloc.trim_threshold, glibc.malloc.mmap_threshold: the
 * operator's choice wins) or the C library is not glibc.
 * 1 when set; 0 when left alone, with why (static text) in *why.
 */
int tg_gate_alloc_tune(const char **why);

#endif /* TG_GATE_ALLOC_H */
