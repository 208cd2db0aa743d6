#!/usr/bin/env bash
# test_gate_proxy.sh — the gate's http mode (host/gate/proxy.c) and its
# upstream connections (upstream.c) end to end: `tokengate gate` with one
# worker in front of a raw python upstream (gate_proxy_peer.py), driven by a
# python TLS client with a client certificate from a CA made by `tokengate
# ca init`. The client key is a software key signed with the CA's key and
# the provenance extension of a SoftHSM2 leaf the CA issued: the gate
# trusts what its CA signed, so the proxy's mechanics can be driven by a
# plain python client. Checks: identity and key headers replaced; the path
# normalized and the query kept; one pooled upstream connection for many
# requests; a chunked request body re-chunked; Expect: 100-continue;
# a response ended by close re-chunked with keep-alive kept; pipelined
# allow/deny/allow answered in order (one TLS record, and three arriving
# together); a denied upload closed after its
# 403; 64 MiB to a slow reader with bounded memory; slowloris 408; 504
# for a slow upstream and a closed client connection for a stalled body; a
# GET whose pooled upstream connection was closed retried once on a new one
# (a POST, with or without a body, gets 502); SSE
# event by event; WebSocket splice and its refusal; 502 for a dead upstream
# (with its upstream-error record); a stop closing an idle keep-alive
# connection at once; and the audit records of these
# requests ("request" before "response", bytes, statuses; each record of
# the pipelined ones with its own request's fields only).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

TG=$TG_BIN_DIR/tokengate
PEER=$TG_SOURCE_DIR/tests/integration/gate_proxy_peer.py
[[ -x $TG ]] || tg_skip "$TG is not built"
"$TG" gate --help >/dev/null 2>&1 || tg_skip "this tokengate has no gate command yet"
tg_require_cmd pkcs11-tool openssl python3 jq
# the real interpreter: a version-manager shim can cost seconds per start
PY=$(python3 -c 'import sys; print(sys.executable)')
cd "$TG_TMP"
TD=example.org
ID="spiffe://$TD/svc/api"

# ---- a CA, and a client certificate it signed ------------------------------
tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust ca
KEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private?module-path=$TG_SOFTHSM2_MODULE"
"$TG" enroll --key "$KEY" --id "$ID" --out-dir req >/dev/null
"$TG" ca issue --dir ca --csr req/csr.pem --id "$ID" --hsm-key "$KEY" --out hsm.pem >/dev/null
prov=$(openssl asn1parse -in hsm.pem | grep -A1 ':2.25.55409018484616740550661563879703842270.1' |
	sed -n 's/.*\[HEX DUMP\]://p')
[[ -n $prov ]] || tg_fail "no provenance extension in the issued leaf"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.key 2>/dev/null
openssl req -new -key client.key -subj /CN=api -out client.csr
printf '%s\n' "[e]" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=clientAuth" \
	"keyUsage=critical,digitalSignature" "subjectAltName=URI:$ID" \
	"2.25.55409018484616740550661563879703842270.1=DER:$prov" >client.cnf
openssl x509 -req -in client.csr -CA ca/ca.pem -CAkey ca/ca.key -days 1 -set_serial 0x5eed \
	-extfile client.cnf -extensions e -out client.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
	-out srv.pem -days 1 -subj /CN=gate -addext subjectAltName=IP:127.0.0.1 2>/dev/null
chmod 600 srv.key

# ---- the upstream ----------------------------------------------------------
setpriv --pdeathsig TERM "$PY" "$PEER" upstream up.port &
UP_PID=$!
tg_on_exit tg__kill_wait "$UP_PID" 10
tg_wait_until 30 test -s up.port || tg_fail "the upstream did not start"
UPORT=$(cat up.port)

# ---- the gate --------------------------------------------------------------
PORT=$(tg_free_port_pair)
cat >policy.yaml <<EOF
upstreams:
  dead: http://127.0.0.1:1
routes:
  - name: admin
    paths: ["/admin/**"]
    allow:
      - {identity: "$ID", key: device-attested}
  - name: ws
    paths: ["/ws"]
    websocket: true
    allow: [{identity: "$ID"}]
  - name: dead
    paths: ["/dead"]
    upstream: dead
    allow: [{identity: "$ID"}]
  - name: echo
    paths: ["/echo/**", "/close", "/big", "/sse", "/slow", "/stall", "/abort", "/dropnext"]
    allow: [{identity: "$ID"}]
EOF
# one worker (so one upstream pool), short limits for slowloris and 504
HEADER_S=1
UPSTREAM_S=1.5
cat >gate.yaml <<EOF
listeners:
  - name: api
    listen: 127.0.0.1:$PORT
    upstream: http://127.0.0.1:$UPORT
tls: {cert: srv.pem, key: srv.key, client_ca: [ca/ca.pem]}
policy: policy.yaml
audit: {file: audit.log, fsync: never}
workers: 1
limits: {header_ms: 1000, upstream_ms: 1500}
EOF
# (a sanitizer build: freed memory is not held back, so the memory check holds)
ASAN_OPTIONS=${ASAN_OPTIONS:-}:quarantine_size_mb=1:thread_local_quarantine_size_kb=64 \
	setpriv --pdeathsig TERM "$TG" gate --config gate.yaml 2>gate.log &
GPID=$!
tg_on_exit tg__kill_wait "$GPID" 10
TG__LOGS+=("$TG_TMP/gate.log")
tg_wait_until 30 grep -q "tokengate gate: ready" gate.log || tg_fail "the gate did not start: $(cat gate.log)"

client() {
	"$PY" "$PEER" client --port "$PORT" --cert client.pem --key client.key --ca srv.pem \
		--identity "$ID" --gate-pid "$GPID" --header-s "$HEADER_S" \
		--upstream-s "$UPSTREAM_S" "$@"
}
client ${TG_GATE_PROXY_SCENARIOS:-headers pool chunked expect close pipeline deny_body big slowloris timeouts abort retry sse ws} | tee out.txt

# ---- 502: the route's upstream refuses -------------------------------------
code=$(curl -sS -o body.json -w '%{http_code}' --cacert srv.pem --cert client.pem --key client.key \
	"https://127.0.0.1:$PORT/dead") || tg_fail "curl /dead failed"
[[ $code == 502 ]] || tg_fail "GET /dead: status $code, want 502: $(cat body.json)"
[[ $(jq -r .reason body.json) == "cannot connect to the upstream: Connection refused" ]] ||
	tg_fail "502 body: $(cat body.json)"
echo "ok: 502 with the reason when the route's upstream refuses"

# ---- a stop closes idle keep-alive connections at once -----------------------
client idle_stop >idle.txt &
CPID=$!
tg_wait_until 20 grep -q '^idle' idle.txt || tg_fail "the idle client did not start: $(cat idle.txt)"
t0=$(tg__now_ms)
kill -TERM "$GPID"
wait "$GPID" || tg_fail "the gate did not exit 0 on SIGTERM: $(cat gate.log)"
t1=$(tg__now_ms)
wait "$CPID" || tg_fail "the idle client: $(cat idle.txt)"
grep '^ok' idle.txt
((t1 - t0 < 3000)) || tg_fail "the gate took $((t1 - t0)) ms to stop with an idle keep-alive connection open"
echo "ok: the gate stopped in $((t1 - t0)) ms with an idle keep-alive connection open"

# ---- the audit records -------------------------------------------------------
"$TG" audit verify audit.log >/dev/null || tg_fail "the audit chain is broken"
# audit_has FILTER: some record of audit.log matches the jq FILTER
audit_has() { [[ -n $(jq -c "select($1)" audit.log) ]]; }
rid=$(sed -n 's/^id headers //p' out.txt)
jq -c --arg id "$rid" 'select(.request_id == $id)' audit.log >recs.json
[[ -s recs.json ]] || tg_fail "no audit record of request $rid"
[[ $(jq -r '.event' recs.json | paste -sd, -) == "request,response" ]] ||
	tg_fail "records of $rid: $(cat recs.json)"
jq -se --arg id "$ID" '.[0] | .decision == "allow" and .route == "echo" and .method == "GET"
	and .path == "/echo/a/c" and .identity == $id' recs.json >/dev/null ||
	tg_fail "the request record: $(head -1 recs.json)"
jq -se '.[1] | .status == 200 and .bytes_in == 0 and .bytes_out > 100 and .duration_ms >= 0' \
	recs.json >/dev/null || tg_fail "the response record: $(tail -1 recs.json)"
echo "ok: 'request' (allow, route, normalized path) then 'response' (status, bytes) records"
audit_has '.event == "request" and .decision == "deny" and .path == "/admin/upload"
	and .status == 403 and .route == "admin"' || tg_fail "no deny record for the upload"
audit_has '.event == "request" and .decision == "deny" and .status == 408' ||
	tg_fail "no 408 record for the slowloris"
audit_has '.event == "upstream-error" and .route == "dead" and .kind == "refused"
	and .status == 502 and .upstream == "http://127.0.0.1:1"' ||
	tg_fail "no upstream-error record for /dead: $(grep dead audit.log)"
audit_has '.event == "upstream-error" and .kind == "timeout" and .status == 504
	and .path == "/slow"' || tg_fail "no upstream-error record for the 504"
audit_has '.event == "upstream-error" and .kind == "timeout" and .path == "/stall"
	and .bytes_out == 5' || tg_fail "no upstream-error record for the stalled body"
audit_has '.event == "response" and .status == 101 and .path == "/ws" and .bytes_in > 100000' ||
	tg_fail "no response record of the WebSocket: $(grep '"/ws"' audit.log)"
echo "ok: deny 403, slowloris 408, upstream-error 502 and 504, stalled body and WebSocket 101 records"
# the pipelined allow/deny/allow on one connection: each record carries its
# own request's values and fields only (the gate reuses buffers per
# connection and per worker: nothing of the record before may remain)
grep -q "three pipelined requests" out.txt || tg_fail "the pipeline scenario did not run"
for p in /echo/p1 /admin/x /echo/p3; do
	jq -c --arg p "$p" 'select(.path == $p)' audit.log >p.json
	ids=$(jq -r .request_id p.json | sort -u)
	[[ $(wc -l <<<"$ids") == 1 && -n $ids ]] || tg_fail "records of $p: $(cat p.json)"
	[[ $(jq -c --arg id "$ids" 'select(.request_id == $id)' audit.log | wc -l) == $(wc -l <p.json) ]] ||
		tg_fail "a record of request $ids names another path: $(grep "$ids" audit.log)"
done
jq -se '.[0] | .event == "request" and .decision == "deny" and .route == "admin" and
	.method == "GET" and .status == 403 and
	(keys == ["decision","event","identity","listener","method","path","peer","prev",
	  "provenance","reason","request_id","resumed","route","status","time"])' \
	<(jq -c 'select(.path == "/admin/x")' audit.log) >/dev/null ||
	tg_fail "the deny record of /admin/x: $(grep '"/admin/x"' audit.log)"
jq -se '.[0].event == "request" and .[0].decision == "allow" and .[0].route == "echo" and
	(.[0] | keys == ["decision","event","identity","listener","method","path","peer","prev",
	  "provenance","reason","request_id","resumed","route","time"]) and
	.[1].event == "response" and .[1].status == 200 and .[1].route == "echo" and
	(.[1] | keys == ["bytes_in","bytes_out","duration_ms","event","identity","listener",
	  "method","path","peer","prev","provenance","request_id","resumed","route","status",
	  "time"])' <(jq -c 'select(.path == "/echo/p3")' audit.log) >/dev/null ||
	tg_fail "the records of /echo/p3: $(grep '"/echo/p3"' audit.log)"
echo "ok: allow, deny, allow on one connection: each record with its own request's fields only"
