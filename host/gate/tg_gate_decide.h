/*
 * tg_gate_decide.h — the gate's decision: (verified identity, provenance,
 * method, normalized path) -> allow or deny, and the rule that decided.
 *
 * Pure: no I/O, no allocation. The gate's modes, the tests and the fuzz
 * target all call this one function.
 *
 * A path that does not start with '/' (refused by tg_gate_path_normalize,
 * which then leaves "") is denied without trying any route. Routes are
 * tried in order; the first whose methods (exact,
 * case-sensitive) and paths (tg_gate_path_match) match decides. No match
 * is a deny. Within the deciding route, the request is allowed when an
 * allow entry matches the identity (its pattern, or a pattern of its group)
 * and the key meets every minimum of that entry:
 *   key level:  hsm-operator < device-attested
 *   PIN policy: never < once < always (match-once ranks as once,
 *               match-always as always)
 *   touch:      never < cached < always
 * A peer value the gate does not know (level none, policy unknown) meets no
 * minimum. A deny names the route and why: when an entry matched the
 * identity but the key fell short, the first such entry's first unmet
 * minimum ("route admin needs touch policy always; the key has never");
 * otherwise that no entry allows the identity.
 */
#ifndef TG_GATE_DECIDE_H
#define TG_GATE_DECIDE_H

#include "tg_att.h"
#include "tg_gate_policy.h"
#include "tg_prov.h"

/* The verified peer: its certificate's SPIFFE URI and key provenance. */
struct tg_gate_peer {
	const char *identity; /* the URI SAN */
	enum tg_prov_level level;
	enum tg_att_pin pin;
	enum tg_att_touch touch;
	const char *serial; /* token serial (for records; not decided on) */
};

struct tg_gate_verdict {
	int allow;  /* 1: allowed */
	long route; /* index of the deciding route, or -1: no route matched */
	long entry; /* allow entry that allowed, or the closest one; -1: none */
	char reason[512];
};

/* 1 when the normalized path matches the path pattern (tg_gate_policy.h). */
int tg_gate_path_match(const char *pattern, const char *path);

/* 1 when the identity URI matches the identity pattern (tg_gate_policy.h). */
int tg_gate_identity_match(const char *pattern, const char *identity);

/*
 * Decides the request (method, normalized path from tg_gate_path_normalize)
 * of peer under pol into *v. Returns 0; TG_ERR_INVALID_ARG (and a deny in
 * *v when v is not NULL) when an argument is NULL.
 */
int tg_gate_decide(const struct tg_gate_policy *pol, const struct tg_gate_peer *peer,
                   const char *method, const char *normalized_path, struct tg_gate_verdict *v);

#endif /* TG_GATE_DECIDE_H */
