#!/usr/bin/env bash
# test_gate_resume.sh — `tokengate gate` and TLS session resumption, each
# case asserting the outcome and the audit record: a resumed session is
# authorized like the full handshake (allowed where the leaf is, 403 where
# it is not, with the same identity and provenance, counted in
# tokengate_resumptions_total); a leaf revoked after its session began
# (new CRL, SIGHUP) is refused when it resumes, while others go on.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_leaf victim "spiffe://$TD/dev/victim" 2 2 1
gate_crl "$TG_TMP/gate.crl"
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
gate_start --crl "$TG_TMP/gate.crl"

allow()
{
	local path=$1 leaf=$2 route=$3 out
	gate_audit_mark
	out=$(gate_py "$leaf" req "$path") || tg_fail "$leaf $path: $out"
	[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "$leaf $path: $out"
	gate_audit_expect event=$GATE_EV_REQ decision=allow route="$route" path="$path" \
		identity="$(openssl x509 -in "$PKI/$leaf.pem" -noout -ext subjectAltName | sed -n 's/.*URI://p')"
	echo "ok: $leaf $path -> 200"
}
# ---- resumption ----------------------------------------------------------------------
# a resumed session is authorized like the full handshake: allowed where
# the leaf is, denied where it is not, with the same identity and provenance
gate_audit_mark
gate_py alice resume /v1/models/llama >res.out || tg_fail "resume: $(cat res.out)"
[[ $(jq -sr 'map(.status) | join(" ")' res.out) == "200 200" ]] || tg_fail "resume: $(cat res.out)"
[[ $(jq -sr 'map(.resumed) | join(" ")' res.out) == "false true" ]] ||
	tg_fail "the second connection did not resume the session: $(cat res.out)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=models resumed=true \
	identity=spiffe://$TD/dev/alice provenance.level=device-attested provenance.pin=once
gate_audit_mark
gate_py alice resume /v1/pin/x >res.out || tg_fail "resume: $(cat res.out)"
[[ $(jq -sr 'map("\(.status) \(.resumed)") | join(",")' res.out) == "403 false,403 true" ]] ||
	tg_fail "resumed session on a route it may not use: $(cat res.out)"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=pin-always resumed=true "reason~needs PIN policy always"
[[ $(gate_metric tokengate_resumptions_total) -ge 2 ]] ||
	tg_fail "tokengate_resumptions_total is $(gate_metric tokengate_resumptions_total), want >= 2"
echo "ok: resumed sessions keep their identity and provenance and are authorized per request"

# revoked after the session began: the resumption is refused
rm -f go
GATE_CLIENT_DIRECT=1 gate_py victim resume /v1/datasets/a --wait-file "$TG_TMP/go" >vic.out 2>&1 &
vic=$!
tg_wait_until 60 grep -q first-done vic.out || tg_fail "victim's first connection: $(cat vic.out)"
[[ $(head -n1 vic.out | jq -r .status) == 200 ]] || tg_fail "victim before revocation: $(cat vic.out)"
gate_revoke victim "$TG_TMP/gate.crl.new"
mv "$TG_TMP/gate.crl.new" "$TG_TMP/gate.crl"
[[ $(gate_reload) == ok ]] || tg_fail "reload with the new CRL failed: $(tail -5 "$GATE_LOG")"
gate_audit_mark
touch go
rc=0
wait "$vic" || rc=$?
[[ $rc == 3 ]] || tg_fail "revoked leaf resuming its session: want a failed handshake (exit 3), got $rc: $(cat vic.out)"
! grep -q '"status"' <(tail -n +3 vic.out) || tg_fail "revoked leaf got an HTTP answer on resumption: $(cat vic.out)"
gate_audit_expect event=$GATE_EV_TLS "reason~is revoked by the configured CRL"
gate_audit_none event=$GATE_EV_REQ identity=spiffe://$TD/dev/victim
# ... and the others still work after the reload
allow /v1/models/llama alice models
echo "ok: a leaf revoked after its session began is refused on resumption"

gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: resumption"
