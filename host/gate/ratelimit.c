/*
 * ratelimit.c — failed handshakes per source (tg_gate_ratelimit.h): an
 * open-addressing table of sources, each probed in at most RL_PROBES
 * places, under one mutex. An atomic "nothing blocked before" time lets
 * the accept path skip the mutex while no source is blocked.
 */
#include "tg_gate_ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define RL_PROBES    8
#define RL_MIN_SLOTS 64

struct rl_entry {
	struct tg_gate_src src;
	int used;
	unsigned failures;  /* in the window that began at win_start */
	uint64_t win_start; /* ms */
	uint64_t until;     /* blocked before this time (ms); 0: never blocked */
};

struct tg_gate_ratelimit {
	pthread_mutex_t mu;
	struct rl_entry *e;
	size_t mask;                 /* slots - 1 */
	uint64_t k0, k1;             /* the hash's key */
	_Atomic uint64_t free_after; /* no source is blocked at or after this time */
};

int
tg_gate_ratelimit_new(size_t slots, struct tg_gate_ratelimit **out, struct tg_error *err)
{
	struct tg_gate_ratelimit *rl = NULL;
	unsigned char key[16];
	size_t n = RL_MIN_SLOTS;
	int r = 0;

	*out = NULL;
	while (n < slots && n < ((size_t)1 << 30))
		n <<= 1;
	if ((rl = calloc(1, sizeof(*rl))) == NULL || (rl->e = calloc(n, sizeof(*rl->e))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "no memory for a table of %zu sources", n);
		goto out;
	}
	if (RAND_bytes(key, (int)sizeof(key)) != 1) {
		r = tg_error_set(err, TG_ERR_CRYPTO, "no random bytes for the source table's key");
		goto out;
	}
	memcpy(&rl->k0, key, 8);
	memcpy(&rl->k1, key + 8, 8);
	rl->mask = n - 1;
	atomic_init(&rl->free_after, 0);
	pthread_mutex_init(&rl->mu, NULL);
	*out = rl;
	rl = NULL;
out:
	if (rl != NULL)
		free(rl->e);
	free(rl);
	return r;
}

void
tg_gate_ratelimit_free(struct tg_gate_ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->e);
	free(rl);
}

int
tg_gate_src_of(const struct sockaddr *sa, int salen, struct tg_gate_src *out)
{
	static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
	int ok = 0;

	memset(out, 0, sizeof(*out));
	if (sa != NULL && sa->sa_family == AF_INET && (size_t)salen >= sizeof(*in4)) {
		memcpy(out->a, v4_mapped, sizeof(v4_mapped));
		memcpy(out->a + 12, &in4->sin_addr, 4);
		ok = 1;
	} else if (sa != NULL && sa->sa_family == AF_INET6 && (size_t)salen >= sizeof(*in6)) {
		memcpy(out->a, &in6->sin6_addr, 16);
		/* a mapped IPv4 address is that address; any other keeps its /64 */
		if (memcmp(out->a, v4_mapped, sizeof(v4_mapped)) != 0)
			memset(out->a + 8, 0, 8);
		ok = 1;
	}
	return ok;
}

const char *
tg_gate_src_str(const struct tg_gate_src *src, char *buf, size_t cap)
{
	static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char t[INET6_ADDRSTRLEN];

	if (memcmp(src->a, v4_mapped, sizeof(v4_mapped)) == 0 &&
	    inet_ntop(AF_INET, src->a + 12, t, sizeof(t)) != NULL)
		snprintf(buf, cap, "%s", t);
	else if (inet_ntop(AF_INET6, src->a, t, sizeof(t)) != NULL)
		snprintf(buf, cap, "%s/64", t);
	else
		snprintf(buf, cap, "?");
	return buf;
}

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t
rl_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* A keyed hash of the 16 bytes (not a MAC: with a secret key and a bounded
 * probe, colliding costs an attacker only places in the table). */
static size_t
rl_hash(const struct tg_gate_ratelimit *rl, const struct tg_gate_src *src)
{
	uint64_t a, b;

	memcpy(&a, src->a, 8);
	memcpy(&b, src->a + 8, 8);
	return (size_t)rl_mix(rl_mix(a ^ rl->k0) ^ b ^ rl->k1);
}

/* Under mu: src's entry, or NULL when it has none. */
static struct rl_entry *
rl_find(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src)
{
	struct rl_entry *found = NULL, *e;
	size_t h = rl_hash(rl, src), i;

	for (i = 0; i < RL_PROBES && found == NULL; i++) {
		e = &rl->e[(h + i) & rl->mask];
		if (e->used && memcmp(e->src.a, src->a, sizeof(src->a)) == 0)
			found = e;
	}
	return found;
}

/*
 * Under mu: a place for src, which has none: a free one, else the one of a
 * source neither blocked nor counting at now (its window over), else the
 * unblocked one whose window began first. NULL when every place holds a
 * blocked source.
 */
static struct rl_entry *
rl_place(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src, uint64_t now,
         unsigned window_ms)
{
	struct rl_entry *best = NULL, *e;
	size_t h = rl_hash(rl, src), i;
	int best_rank = 0, rank;

	for (i = 0; i < RL_PROBES && best_rank < 3; i++) {
		e = &rl->e[(h + i) & rl->mask];
		if (!e->used)
			rank = 3;
		else if (e->until > now)
			rank = 0;
		else if (now >= e->win_start && now - e->win_start >= window_ms)
			rank = 2;
		else
			rank = 1;
		if (rank > best_rank ||
		    (rank == 1 && best_rank == 1 && e->win_start < best->win_start)) {
			best = e;
			best_rank = rank;
		}
	}
	if (best != NULL) {
		memset(best, 0, sizeof(*best));
		best->src = *src;
		best->used = 1;
		best->win_start = now;
	}
	return best;
}

int
tg_gate_ratelimit_blocked(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src,
                          uint64_t now_ms)
{
	struct rl_entry *e;
	int blocked = 0;

	if (now_ms < atomic_load_explicit(&rl->free_after, memory_order_acquire)) {
		pthread_mutex_lock(&rl->mu);
		e = rl_find(rl, src);
		blocked = e != NULL && e->until > now_ms;
		pthread_mutex_unlock(&rl->mu);
	}
	return blocked;
}

int
tg_gate_ratelimit_fail(struct tg_gate_ratelimit *rl, const struct tg_gate_src *src, uint64_t now_ms,
                       unsigned max, unsigned window_ms, unsigned *failures, uint64_t *until_ms)
{
	struct rl_entry *e;
	int blocked_now = 0;

	pthread_mutex_lock(&rl->mu);
	if ((e = rl_find(rl, src)) == NULL)
		e = rl_place(rl, src, now_ms, window_ms);
	if (e != NULL) {
		/* (another thread may have read the clock a moment later) */
		if (now_ms >= e->win_start && now_ms - e->win_start >= window_ms) {
			e->win_start = now_ms;
			e->failures = 0;
		}
		if (e->failures < UINT32_MAX)
			e->failures++;
		if (e->failures >= max && e->until <= now_ms) {
			e->until = now_ms + window_ms;
			*failures = e->failures;
			*until_ms = e->until;
			if (atomic_load_explicit(&rl->free_after, memory_order_relaxed) < e->until)
				atomic_store_explicit(&rl->free_after, e->until,
				                      memory_order_release);
			blocked_now = 1;
		}
	}
	pthread_mutex_unlock(&rl->mu);
	return blocked_now;
}
