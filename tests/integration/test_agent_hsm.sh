#!/usr/bin/env bash
# test_agent_hsm.sh — `tokengate agent` → `tokengate gate` → upstream with
# the service key on SoftHSM2 (enrolled with `tokengate enroll`, certified
# by `tokengate ca issue`: hsm-operator), each outcome asserted with the
# gate's audit record:
#   - an exportable SoftHSM2 key is refused at start, with the reason;
#   - allowed (200, the gate saw the HSM identity, Host as the client sent
#     it) and denied (the gate's 403 and reason passed through unchanged);
#   - bodies streamed both ways (3 MB POST intact, SSE chunks one by one);
#   - token operations (the agent's tokengate_agent_token_operations_total)
#     over 1,000 keep-alive requests and over 1,000 short client
#     connections: at most 2 each;
#   - without --cert: the certificate object with the key's CKA_ID on the
#     token, on a unix socket listener of mode 0600;
#   - SIGTERM: exit 0, and the gate's audit log verifies.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
gate_require
agent_require
cd "$TG_TMP"
gate_hsm_setup
agent_hsm_key
Q=$AGENT_HSM_QUERY KEY=$AGENT_HSM_KEY

# ---- an exportable key is refused at start, with the reason -------------------------------------
agent_start_fails "refused (exportable)" \
	--key "pkcs11:token=$TG_SOFTHSM_TOKEN;object=exportable;type=private?$Q" --cert "$PKI/hsm-api.pem"
grep -qF "CKA_EXTRACTABLE" "$TG_TMP/agent-refused.log" ||
	tg_fail "the refusal does not name CKA_EXTRACTABLE: $(cat "$TG_TMP/agent-refused.log")"
echo "ok: an exportable SoftHSM2 key is refused at start"

# ---- allowed and denied -------------------------------------------------------------------------
agent_start --key "$KEY" --cert "$PKI/hsm-api.pem"
agent_metric_is tokengate_agent_token_present 1 || tg_fail "token_present: '$(agent_metric tokengate_agent_token_present)', want 1"
gate_audit_mark
code=$(curl -sS --max-time 30 -o echo.json -w '%{http_code}' "$(agent_url /echo)") || tg_fail "curl through the agent"
[[ $code == 200 ]] || tg_fail "GET /echo through the agent: HTTP $code: $(cat echo.json)"
hdr() { jq -r --arg n "$1" '.headers[] | select(.[0] | ascii_downcase == $n) | .[1]' "$2"; }
[[ $(hdr x-tokengate-identity echo.json) == "$API" ]] || tg_fail "identity upstream: $(cat echo.json)"
[[ $(hdr host echo.json) == "127.0.0.1:$AGENT_PORT" ]] ||
	tg_fail "Host upstream '$(hdr host echo.json)', want what curl sent (127.0.0.1:$AGENT_PORT)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$API provenance.level=hsm-operator
echo "ok: agent → gate → upstream as $API (hsm-operator), Host unchanged"
# the first connection to the gate was a full handshake: signed on the token, and counted
t=$(agent_metric tokengate_agent_token_operations_total)
[[ -n $t ]] && ((${t%.*} >= 1)) ||
	tg_fail "tokengate_agent_token_operations_total is '$t' after a full handshake signed on the token (want >= 1)"
gate_audit_mark
code=$(curl -sS --max-time 30 -o deny.json -w '%{http_code}' "$(agent_url /v1/models/m)")
[[ $code == 403 ]] || tg_fail "GET /v1/models/m through the agent: HTTP $code, want 403: $(cat deny.json)"
jq -r .reason deny.json | grep -qF "needs key level device-attested; the key is hsm-operator" ||
	tg_fail "the gate's 403 reason did not come through: $(cat deny.json)"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=models status=403 identity=$API
echo "ok: the gate's 403 and its reason come back through the agent"

# ---- bodies streamed both ways ------------------------------------------------------------------
head -c 3000000 /dev/urandom >body.bin
curl -sS --max-time 60 -X POST --data-binary @body.bin -H 'Content-Type: application/octet-stream' \
	-o post.json "$(agent_url /echo)" || tg_fail "POST through the agent"
[[ $(jq -r .body_sha256 post.json) == $(sha256sum body.bin | cut -c1-64) ]] ||
	tg_fail "a 3 MB POST body changed on its way: $(cat post.json)"
agent_client stream --path '/sse?n=5&ms=300' >sse.json
python3 - sse.json <<'EOF' || tg_fail "SSE through the agent: $(cat sse.json)"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["status"] == 200 and s["complete"], s
t = [c[0] for c in s["chunks"]]
# five events 300 ms apart: they must not arrive all at once at the end
assert len(t) >= 4 and t[-1] - t[0] >= 900, "chunks arrived together (buffered): %s" % t
EOF
echo "ok: a 3 MB request body intact, SSE events arrive one by one"

# ---- token operations: 1,000 keep-alive requests, 1,000 short connections ------------------------
ops()
{
	agent_metric tokengate_agent_token_operations_total
}
gate_audit_mark
o0=$(ops)
[[ -n $o0 ]] || tg_fail "no tokengate_agent_token_operations_total on /metrics"
agent_client requests --path /echo --n 1000 --expect 200 >ka.json || tg_fail "1,000 keep-alive requests: $(cat ka.json)"
o1=$(ops)
agent_client requests --path /echo --n 1000 --new-conn --expect 200 >short.json ||
	tg_fail "1,000 short connections: $(cat short.json)"
o2=$(ops)
ka=$((o1 - o0)) sh=$((o2 - o1))
tg_log "token operations: $ka over 1,000 keep-alive requests, $sh over 1,000 short connections" \
	"(keep-alive p50 $(jq -r .ms.p50 ka.json) ms, short p50 $(jq -r .ms.p50 short.json) ms;" \
	"handshakes $(agent_metric tokengate_agent_handshakes_total), resumptions $(agent_metric tokengate_agent_resumptions_total))"
((ka <= 2)) || tg_fail "$ka token operations over 1,000 keep-alive requests (want <= 2)"
((sh <= 2)) || tg_fail "$sh token operations over 1,000 short client connections (want <= 2)"
n=$(gate_audit_count event=$GATE_EV_REQ decision=allow identity=$API route=echo)
((n == 2000)) || tg_fail "$n allow records at the gate for the 2,000 requests"
echo "ok: 2,000 requests cost $((ka + sh)) token operation(s); 2,000 allow records at the gate"
req=$(agent_metric tokengate_agent_requests_total)
[[ -n $req ]] && ((${req%.*} >= 2000)) || tg_fail "tokengate_agent_requests_total '$req' after 2,000+ requests"
for m in tokengate_agent_upstream_connections tokengate_agent_handshakes_total tokengate_agent_resumptions_total; do
	[[ -n $(agent_metric $m) ]] || tg_fail "/metrics has no $m: $(curl -sS "http://$AGENT_ADMIN/metrics")"
done
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC on SIGTERM"
echo "ok: SIGTERM: exit 0"

# ---- without --cert: the token's certificate object; a unix socket of mode 0600 --------------------
openssl x509 -in "$PKI/hsm-api.pem" -outform DER -out hsm-api.der
pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label "$TG_SOFTHSM_TOKEN" --login --pin "$TG_SOFTHSM_PIN" \
	--write-object hsm-api.der --type cert --id 01 --label p256 >p11w.out 2>&1 ||
	tg_fail "storing the certificate on the token: $(cat p11w.out)"
AGENT_UNIX=$TG_TMP/agent.sock
AGENT_LISTEN=unix:$AGENT_UNIX agent_start --key "$KEY"
mode=$(stat -c %a "$AGENT_UNIX")
[[ $mode == 600 ]] || tg_fail "unix socket $AGENT_UNIX has mode $mode, want 600"
gate_audit_mark
agent_client get --path /echo >unix.json
[[ $(jq -r .status unix.json) == 200 ]] || tg_fail "GET /echo over the unix socket: $(cat unix.json)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$API
echo "ok: without --cert the token's certificate is used; unix socket mode 0600"
agent_stop
unset AGENT_UNIX
gate_stop
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo PASS
