#!/usr/bin/env bash
# test_gate_certs.sh — `tokengate gate`, the certificate matrix of issue 11
# through a running gate, each case asserting the client's outcome and the
# audit record:
#   allowed: an hsm-operator leaf of a SoftHSM2 key (`tokengate enroll` +
#   `tokengate ca issue`, curl with the pkcs11 engine) with its identity
#   and provenance sent upstream; device-attested and hsm-operator leaves
#   of the CA on their routes;
#   403 with the rule and why: hsm-operator on a `key: device-attested`
#   route, PIN policy and touch policy below the route's minimum;
#   failed handshake (never an HTTP answer), TLS rejection recorded with
#   the verifier's reason: no certificate, self-signed, another CA,
#   expired, not yet valid, revoked, no provenance extension, provenance
#   copied under a CA the gate does not trust, wrong EKU, a CA certificate
#   as leaf, two URI SANs;
# Resumption and a leaf revoked after its session began: test_gate_resume.sh.
# The device-attested leaf of the simulator: test_gate_sim.sh.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/gate_cases.sh"
gate_require
cd "$TG_TMP"
tg_softhsm_default
GATE_HSM=1 GATE_BAD=1 gate_pki
cp "$PKI/crl.pem" "$TG_TMP/gate.crl"
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
GATE_CASES_UPLOG=$TG_TMP/up-up.jsonl
gate_start --crl "$TG_TMP/gate.crl"

# ---- allowed, identity and provenance sent upstream ------------------------
tokserial=$(openssl asn1parse -in "$PKI/hsm-api.pem" | grep -A1 ":$GATE_PROV_OID" |
	sed -n 's/^ *\([0-9]*\):.*OCTET STRING.*/\1/p')
tokserial=$(openssl asn1parse -in "$PKI/hsm-api.pem" -strparse "$tokserial" | awk -F: '/UTF8STRING/ {print $NF; exit}')
[[ -n $tokserial ]] || tg_fail "no token serial in hsm-api.pem"
gate_audit_mark
code=$(gate_curl -sS -o body.json -w '%{http_code}' /v1/datasets/train) || tg_fail "curl through the gate failed"
[[ $code == 200 ]] || tg_fail "hsm-operator leaf on datasets-read: HTTP $code: $(cat body.json)"
want_key="level=hsm-operator; pin=once; touch=never; serial=$tokserial"
got=$(jq -r '[.headers[] | select(.[0] | ascii_downcase == "x-tokengate-identity")] | map(.[1]) | join(",")' body.json)
[[ $got == "spiffe://$TD/svc/api" ]] || tg_fail "X-Tokengate-Identity upstream: '$got'"
got=$(jq -r '[.headers[] | select(.[0] | ascii_downcase == "x-tokengate-key")] | map(.[1]) | join(",")' body.json)
[[ $got == "$want_key" ]] || tg_fail "X-Tokengate-Key upstream: '$got', want '$want_key'"
[[ $(jq -r .path body.json) == /v1/datasets/train ]] || tg_fail "upstream path: $(jq -r .path body.json)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=datasets-read method=GET path=/v1/datasets/train \
	identity=spiffe://$TD/svc/api provenance.level=hsm-operator provenance.pin=once \
	provenance.touch=never provenance.serial="$tokserial"
echo "ok: an hsm-operator leaf (SoftHSM2, curl + pkcs11 engine) is allowed; identity and provenance reach the upstream"

# ---- 403: key level, PIN policy, touch policy ----------------------------------
# deny PATH LEAF ROUTE REASON: 403, a JSON body naming the route and why, and
# the deny record; never forwarded.
deny()
{
	local path=$1 leaf=$2 route=$3 reason=$4 out st
	gate_audit_mark
	if [[ $leaf == hsm-api ]]; then
		st=$(gate_curl -sS -o body.json -w '%{http_code}' "$path") || tg_fail "curl $path"
	else
		out=$(gate_py "$leaf" req "$path") || tg_fail "$leaf $path: $out"
		st=$(jq -r .status <<<"$out")
		jq -r .body <<<"$out" >body.json
	fi
	[[ $st == 403 ]] || tg_fail "$leaf $path: HTTP $st, want 403: $(cat body.json)"
	jq -e . body.json >/dev/null || tg_fail "$leaf $path: the 403 body is not JSON: $(cat body.json)"
	grep -qF "$route" body.json || tg_fail "$leaf $path: the 403 body does not name route $route: $(cat body.json)"
	grep -qF "$reason" body.json || tg_fail "$leaf $path: the 403 body does not say '$reason': $(cat body.json)"
	gate_audit_expect event=$GATE_EV_REQ decision=deny route="$route" status=403 path="$path" "reason~$reason"
	! grep -qF "\"path\": \"$path\"" "$TG_TMP/up-up.jsonl" || tg_fail "$leaf $path: denied but forwarded upstream"
	echo "ok: $leaf $path -> 403 ($reason)"
}
deny /v1/models/llama hsm-api models "route models needs key level device-attested; the key is hsm-operator"
# the software leaves on the same routes (and device-attested ones, allowed
# when their policies are strong enough): the table below

# ---- the shared outcome table (gate_cases.tsv): allowed, denied, refused ----------
# Each row asserts the answer, the reason (the 403 body's route and reason;
# for a refused handshake: no HTTP answer at all, a TLS rejection record
# with the verifier's reason and no request record), the audit record and
# what reached the upstream. The same rows through nginx + the
# authorization endpoint: test_gate_nginx.sh.
gate_cases_load
gate_cases_select '^(allow|deny|refused)-'
gate_cases_run gate
[[ $(gate_metric 'tokengate_handshakes_total{result="failed"}') -ge 11 ]] ||
	tg_fail "tokengate_handshakes_total{result=\"failed\"} is $(gate_metric 'tokengate_handshakes_total{result="failed"}'), want >= 11"

gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: the certificate matrix"
