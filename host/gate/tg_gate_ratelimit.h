/*
 * tg_gate_ratelimit.h — failed TLS handshakes counted per source address,
 * and the sources that failed too often refused for a while.
 *
 * A source is an IPv4 address, or the /64 prefix of an IPv6 address (one
 * host usually owns a whole /64; an IPv4 address mapped into IPv6 counts
 * as that IPv4 address). Unix-socket peers have no source and are never
 * limited.
 *
 * The rule: a source whose failed handshakes reach `max` within a window of
 * `window_ms` (the window starts at its first failure) is blocked for
 * `window_ms` from that failure: tg_gate_ratelimit_blocked says 1 for it,
 * and the gate closes its new connections at accept, before any handshake.
 * Once the block is over the source starts again from zero.
 *
 * Memory is fixed at creation (a table of sources); a source that finds no
 * room (every place it may take holds a blocked source) is not counted.
 * The table's hash is keyed with random bytes drawn at creation, so a
 * client cannot choose addresses that collide. Every call is thread-safe
 * (one mutex); tg_gate_ratelimit_blocked takes it only while some source
 * may be blocked. Times are milliseconds on one monotonic clock, given by
 * the caller.
 */
#ifndef TG_GATE_RATELIMIT_H
#define TG_GATE_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

#include "tg_err.h"

/* A source: 16 bytes (IPv4 as ::ffff:a.b.c.d, IPv6 with its last 8 zero). */
struct tg_gate_src {
	unsigned char a[16];
};

struct tg_gate_ratelimit;

/*
 * A table of room for `slots` sources (rounded up to a power of two, at
 * least 64). 0, or TG_ERR_ALLOC / TG_ERR_CRYPTO (no random bytes) with
 * *out NULL.
 */
int tg_gate_ratelimit_new(size_t slots, struct tg_gate_ratelimit **out, struct tg_error *err);
void tg_gate_ratelimit_free(struct tg_gate_ratelimit *rl);

/*
 * The source of a peer address: 1 with *out set for AF_INET and AF_INET6,
 * 0 for anything else (unix, NULL, a short salen).
 */
int tg_gate_src_of(const struct sockaddr *sa, int salen, struct tg_gate_src *out);

/* The source as text: "192.0.2.1" or "2001:db8:1:2::/64", into buf (cap
 * bytes, 64 is enough). Returns buf. */
const char *tg_gate_src_str(const struct tg_gate_src *src, char *buf, size_t cap);

/* 1 while src is blocked at now_ms, else 0. */
int tg_gate_ratelimit_blocked(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src,
                              uint64_t now_ms);

/*
 * Counts one failed handshake of src at now_ms, under the rule above with
 * max (>= 1) and window_ms (>= 1). Returns 1 when this failure blocked
 * the source (once per block), with *failures the failures counted in its
 * window and *until_ms when the block ends; else 0.
 */
int tg_gate_ratelimit_fail(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src,
                           uint64_t now_ms, unsigned max, unsigned window_ms, unsigned *failures,
                           uint64_t *until_ms);

#endif /* TG_GATE_RATELIMIT_H */
