#!/usr/bin/env bash
# test_gate_tcp.sh — `tokengate gate --mode tcp`: the client's identity is
# decided as "CONNECT /" against the policy, then bytes are spliced to the
# upstream both ways, untouched (a client X-Tokengate-Identity passes as
# sent: the gate does not speak HTTP here); an identity the policy does not
# allow gets the connection closed with no byte from the upstream; each
# case with its connect record (and the close record's byte counts).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_upstream_start up
UPLOG=$TG_TMP/up-up.jsonl
cat >tcp.yaml <<YAML
routes:
  - name: tunnel
    paths: ["/"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
      - identity: "spiffe://$TD/svc/indexer"
        key: device-attested
YAML
GATE_POLICY=$TG_TMP/tcp.yaml GATE_UPSTREAM=tcp://127.0.0.1:$UP_PORT gate_start --mode tcp

gate_audit_mark
out=$(gate_py alice req -X POST -d 'spliced body' -H "X-Tokengate-Identity: as-sent" /echo /echo/2)
[[ $(jq -sr 'map(.status) | join(" ")' <<<"$out") == "200 200" ]] || tg_fail "through the tunnel: $out"
body=$(head -n1 <<<"$out" | jq -r .body)
[[ $(jq -r '[.headers[] | select(.[0] | ascii_downcase == "x-tokengate-identity") | .[1]] | join("|")' <<<"$body") == as-sent ]] ||
	tg_fail "tcp mode changed the bytes: $body"
[[ $(jq -r .body_sha256 <<<"$body") == $(printf 'spliced body' | sha256sum | cut -c1-64) ]] || tg_fail "body changed: $body"
# both requests on one upstream connection: the bytes of one client connection
[[ $(jq -sr 'map(.body | fromjson | .conn) | unique | length' <<<"$out") == 1 ]] || tg_fail "one client connection, several upstream ones: $out"
gate_audit_expect event=$GATE_EV_TCP decision=allow route=tunnel method=CONNECT path=/ \
	identity=spiffe://$TD/dev/alice provenance.level=device-attested
gate_audit_expect event=$GATE_EV_CLOSE identity=spiffe://$TD/dev/alice
ci=$(gate__audit_new | jq -c "select(.event == \"$GATE_EV_CLOSE\")" | tail -n1)
(($(jq -r .bytes_in <<<"$ci") > 100 && $(jq -r .bytes_out <<<"$ci") > 100)) || tg_fail "close record byte counts: $ci"
echo "ok: an allowed identity's bytes are spliced both ways, untouched"

n0=$(wc -l <"$UPLOG")
gate_audit_mark
rc=0
out=$(gate_py indexer req /echo) || rc=$?
[[ $rc == 4 || $rc == 3 ]] || tg_fail "hsm-operator on a device-attested tunnel: want the connection closed, got exit $rc: $out"
[[ $out != *'"status"'* ]] || tg_fail "a denied tunnel answered: $out"
gate_audit_expect event=$GATE_EV_TCP decision=deny route=tunnel identity=spiffe://$TD/svc/indexer \
	"reason~route tunnel needs key level device-attested; the key is hsm-operator"
[[ $(wc -l <"$UPLOG") == "$n0" ]] || tg_fail "a denied tunnel reached the upstream"
echo "ok: a denied identity's connection is closed before any byte reaches the upstream"
# the handshake rules hold in tcp mode too
GATE_BAD= gate_leaf stranger "spiffe://$TD/dev/stranger" 2 2 1 "$PKI/other"
gate_audit_mark
rc=0
gate_py stranger req /echo >/dev/null || rc=$?
[[ $rc == 3 ]] || tg_fail "a leaf of another CA in tcp mode: exit $rc"
gate_audit_expect event=$GATE_EV_TLS "reason~was not issued by a configured tokengate CA"
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: tcp mode"
