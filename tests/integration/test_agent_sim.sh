#!/usr/bin/env bash
# test_agent_sim.sh — `tokengate agent` with a device-attested key on the
# simulated token (tokengate-sim behind a private pcscd, enrolled with
# `tokengate enroll`, used through OpenSC's PKCS#11 module), in front of a
# real gate, asserted with the gate's audit records:
#   - allowed on a `key: device-attested` route, the token's provenance
#     (level, PIN and touch policy, serial) in the audit record and sent
#     upstream; denied on a route needing PIN policy always (403 + reason);
#   - the token's own count of private-key operations (`tokengate-sim
#     status`, private_key_operations) over 1,000 keep-alive requests and
#     over 1,000 short client connections: at most 2 per 1,000, and the
#     agent's tokengate_agent_token_operations_total counts the same.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"
gate_require
agent_require
agent_sim_require
cd "$TG_TMP"
SERIAL=27182818
agent_sim_setup --serial "$SERIAL"
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
gate_start
agent_start --key "$AGENT_SIM_KEY" --cert "$PKI/erin.pem"
agent_metric_is tokengate_agent_token_present 1 || tg_fail "token_present: '$(agent_metric tokengate_agent_token_present)', want 1"

gate_audit_mark
code=$(curl -sS --max-time 60 -o body.json -w '%{http_code}' "$(agent_url /v1/models/llama)") || tg_fail "curl through the agent"
[[ $code == 200 ]] || tg_fail "device-attested key on route models: HTTP $code: $(cat body.json)"
want="level=device-attested; pin=once; touch=never; serial=$SERIAL"
got=$(jq -r '.headers[] | select(.[0] | ascii_downcase == "x-tokengate-key") | .[1]' body.json)
[[ $got == "$want" ]] || tg_fail "X-Tokengate-Key upstream: '$got', want '$want'"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=models identity=$ERIN \
	provenance.level=device-attested provenance.pin=once provenance.touch=never provenance.serial=$SERIAL
t=$(agent_metric tokengate_agent_token_operations_total)
[[ -n $t ]] && ((${t%.*} >= 1)) ||
	tg_fail "tokengate_agent_token_operations_total is '$t' after a full handshake signed on the token (want >= 1)"
echo "ok: agent with the simulator's key → gate: device-attested, provenance upstream"
gate_audit_mark
code=$(curl -sS --max-time 60 -o deny.json -w '%{http_code}' "$(agent_url /v1/pin/x)")
[[ $code == 403 ]] || tg_fail "/v1/pin/x: HTTP $code, want 403: $(cat deny.json)"
[[ $(jq -r .reason deny.json) == "route pin-always needs PIN policy always; the key has once" ]] ||
	tg_fail "403 reason: $(cat deny.json)"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=pin-always status=403 identity=$ERIN
echo "ok: denied with the gate's reason (PIN policy always)"

# ---- token operations, counted by the token ------------------------------------------------------
gate_audit_mark
s0=$(sim_ops) m0=$(agent_metric tokengate_agent_token_operations_total)
agent_client requests --path /echo --n 1000 --expect 200 >ka.json || tg_fail "1,000 keep-alive requests: $(cat ka.json)"
s1=$(sim_ops) m1=$(agent_metric tokengate_agent_token_operations_total)
agent_client requests --path /echo --n 1000 --new-conn --expect 200 >short.json ||
	tg_fail "1,000 short connections: $(cat short.json)"
s2=$(sim_ops) m2=$(agent_metric tokengate_agent_token_operations_total)
ka=$((s1 - s0)) sh=$((s2 - s1))
tg_log "the token's private-key operations: $ka over 1,000 keep-alive requests," \
	"$sh over 1,000 short client connections (agent's count: $((m1 - m0)), $((m2 - m1)));" \
	"keep-alive p50 $(jq -r .ms.p50 ka.json) ms p99 $(jq -r .ms.p99 ka.json) ms," \
	"short p50 $(jq -r .ms.p50 short.json) ms; handshakes $(agent_metric tokengate_agent_handshakes_total)," \
	"resumptions $(agent_metric tokengate_agent_resumptions_total)"
((ka <= 2)) || tg_fail "$ka token operations over 1,000 keep-alive requests (want <= 2)"
((sh <= 2)) || tg_fail "$sh token operations over 1,000 short client connections (want <= 2)"
(((m2 - m0) == (s2 - s0))) ||
	tg_fail "the agent counted $((m2 - m0)) token operations, the token $((s2 - s0))"
n=$(gate_audit_count event=$GATE_EV_REQ decision=allow identity=$ERIN route=echo)
((n == 2000)) || tg_fail "$n allow records at the gate for the 2,000 requests"
echo "ok: token operations per 1,000 requests: keep-alive $ka, short connections $sh (goal <= 2)"
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC on SIGTERM"
gate_stop
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo PASS
