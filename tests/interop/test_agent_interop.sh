#!/usr/bin/env bash
# test_agent_interop.sh — clients nobody here wrote, in front of
# `tokengate gate`, with the service key on SoftHSM2 (enrolled by
# `tokengate enroll`, certified by `tokengate ca issue`):
#   - stunnel (client mode) with its pkcs11 engine (libengine-pkcs11-openssl)
#     and that key, straight to the gate: curl in clear text to stunnel's
#     local port is allowed where the policy allows the identity and denied
#     (403 and the gate's reason) where it does not;
#   - a Python client using only the standard library (urllib.request and
#     http.client) through `tokengate agent` with the same key: GET, POST
#     JSON, a denied route (urllib's HTTPError carrying the gate's 403 and
#     reason), a streamed response read piece by piece.
# Each outcome is asserted with the gate's audit record.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
gate_require
tg_require_cmd stunnel4
gate_require_engine
cd "$TG_TMP"
gate_hsm_setup

# ---- stunnel, client mode, pkcs11 engine ------------------------------------------------------
gate_stunnel_start "$GATE_PORT" || tg_fail "stunnel in front of the gate did not start"
SP=$STUNNEL_PORT
gate_audit_mark
code=$(curl -sS --max-time 30 -o st.json -w '%{http_code}' "http://127.0.0.1:$SP/v1/datasets/d") ||
	tg_fail "curl through stunnel: $(tail -n 30 stunnel.log)"
[[ $code == 200 ]] || tg_fail "stunnel → gate /v1/datasets/d: HTTP $code: $(cat st.json)"
[[ $(jq -r '.headers[] | select(.[0] | ascii_downcase == "x-tokengate-identity") | .[1]' st.json) == "$API" ]] ||
	tg_fail "identity upstream through stunnel: $(cat st.json)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=datasets-read identity=$API provenance.level=hsm-operator
echo "ok: stunnel (pkcs11 engine, SoftHSM2 key) → gate: allowed as $API"
gate_audit_mark
code=$(curl -sS --max-time 30 -o st403.json -w '%{http_code}' "http://127.0.0.1:$SP/admin/x")
[[ $code == 403 ]] || tg_fail "stunnel → gate /admin/x: HTTP $code, want 403: $(cat st403.json)"
[[ $(jq -r .route st403.json) == admin ]] || tg_fail "403 body: $(cat st403.json)"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=admin status=403 identity=$API
echo "ok: stunnel → gate: /admin denied (403: $(jq -r .reason st403.json))"
gate__kill "$STUNNEL_PID"

# ---- Python's standard library through the agent ---------------------------------------------
agent_require
agent_hsm_key
agent_start --key "$AGENT_HSM_KEY" --cert "$PKI/hsm-api.pem"
gate_audit_mark
env -u http_proxy -u HTTP_PROXY -u all_proxy -u ALL_PROXY "$GATE_PYTHON" - "$(agent_url '')" "$API" <<'EOF' >py.out 2>&1 ||
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

base, api = sys.argv[1], sys.argv[2]
op = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# GET: allowed
with op.open(base + "/v1/datasets/d1", timeout=30) as r:
    assert r.status == 200, r.status
    echo = json.load(r)
ids = [v for k, v in echo["headers"] if k.lower() == "x-tokengate-identity"]
assert ids == [api], echo["headers"]
print("urllib GET /v1/datasets/d1: 200 as", ids[0])

# POST JSON: allowed, body intact
body = json.dumps({"q": "hello", "n": list(range(1000))}).encode()
req = urllib.request.Request(base + "/echo", data=body, method="POST",
                             headers={"Content-Type": "application/json"})
with op.open(req, timeout=30) as r:
    echo = json.load(r)
import hashlib
assert echo["method"] == "POST" and echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo
print("urllib POST /echo: 200, %d bytes intact" % len(body))

# denied: the gate's 403 with its reason
try:
    op.open(base + "/admin/users", timeout=30)
    raise SystemExit("urllib: /admin/users was allowed")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
    j = json.load(e)
    assert j["route"] == "admin" and j["reason"], j
    print("urllib GET /admin/users: 403:", j["reason"])

# http.client: a streamed response, read as it arrives
u = urllib.parse.urlsplit(base)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
c.request("GET", "/sse?n=4&ms=200")
r = c.getresponse()
assert r.status == 200, r.status
pieces = []
while True:
    b = r.read1(4096)
    if not b:
        break
    pieces.append(b)
assert b"".join(pieces).count(b"data:") == 4, pieces
assert len(pieces) >= 3, "the events came in one piece: %r" % pieces
# the same connection again (keep-alive)
c.request("GET", "/echo")
r = c.getresponse()
assert r.status == 200
r.read()
c.close()
print("http.client: 4 server-sent events in %d pieces, then a second request on the connection" % len(pieces))
EOF
	tg_fail "the Python client through the agent: $(cat py.out)"
cat py.out
gate_audit_expect event=$GATE_EV_REQ decision=allow route=datasets-read path=/v1/datasets/d1 identity=$API
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo method=POST identity=$API
gate_audit_expect event=$GATE_EV_REQ decision=deny route=admin status=403 identity=$API
gate_audit_expect event=$GATE_EV_REQ decision=allow route=stream identity=$API
echo "ok: Python's urllib and http.client through the agent, allowed and denied as the policy says"
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC on SIGTERM"
echo PASS
