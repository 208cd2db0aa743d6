#!/usr/bin/env bash
# test_gate_stream.sh — `tokengate gate --config FILE` (several listeners,
# each with its own upstream) streaming and upstream failures, each
# asserting the answer and the audit record:
#   server-sent events reach the client event by event (arrival times
#   keep the upstream's gaps); chunked and large responses; a WebSocket
#   echo on a `websocket: true` route, the upgrade refused on a route
#   without it; keep-alive upstream connections reused;
#   upstream refusing (502), breaking (502) and too slow (504, with
#   limits.upstream_ms);
#   https:// upstreams verified against upstream_ca (and 502 for one the
#   CA does not vouch for) and unix:/PATH upstreams.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
UP=$UP_PORT
gate_upstream_start tls --listen 127.0.0.1:0 --https "$PKI/server.pem" "$PKI/server.key"
UPS=$UP_PORT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key -out rogue.pem \
	-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -days 1 2>/dev/null
gate_upstream_start rogue --listen 127.0.0.1:0 --https rogue.pem rogue.key
ROGUE=$UP_PORT
gate_upstream_start unix --unix "$TG_TMP/up.sock"
DEAD=$(tg_free_port_pair)

gate_ports
P=$GATE_PORT
# listener ports: P (plain), then four more free ones
ports=()
for i in 1 2 3 4 5; do
	ports+=("$(tg_free_port_pair)")
done
cat >gate.yaml <<EOF
listeners:
  - name: plain
    listen: 127.0.0.1:$P
    upstream: http://127.0.0.1:$UP
  - name: tls-up
    listen: 127.0.0.1:${ports[0]}
    upstream: https://localhost:$UPS
  - name: unix-up
    listen: 127.0.0.1:${ports[1]}
    upstream: unix:$TG_TMP/up.sock
  - name: down
    listen: 127.0.0.1:${ports[2]}
    upstream: http://127.0.0.1:$DEAD
  - name: rogue-up
    listen: 127.0.0.1:${ports[3]}
    upstream: https://localhost:$ROGUE
tls:
  cert: $PKI/server.pem
  key: $PKI/server.key
  client_ca: [$PKI/ca/ca.pem]
upstream_ca: $PKI/srvca.pem
policy: $TG_TMP/policy.yaml
audit: {file: $TG_TMP/audit.log, fsync: batch}
admin: $GATE_ADMIN
workers: 2
limits: {upstream_ms: 1500, upstream_connect_ms: 2000}
EOF
GATE_CONFIG=$TG_TMP/gate.yaml gate_start
on() { local port=$1 leaf=$2; shift 2; GATE_PORT=$port gate_py "$leaf" "$@"; }

# ---- SSE event by event -------------------------------------------------------
gate_audit_mark
on "$P" alice sse '/sse?n=4&ms=500' >sse.out || tg_fail "sse: $(cat sse.out)"
[[ $(jq -s 'map(select(.data)) | length' sse.out) == 4 ]] || tg_fail "want 4 events: $(cat sse.out)"
# event i arrives about i*500 ms after the first: no buffering of the body
t=($(jq -r 'select(.data) | .t_ms' sse.out))
for i in 1 2 3; do
	gap=$((t[i] - t[i - 1]))
	((gap >= 300)) || tg_fail "event $i arrived ${gap} ms after event $((i - 1)) (upstream sent them 500 ms apart): buffered? $(cat sse.out)"
done
((t[3] - t[0] >= 1200)) || tg_fail "events 0..3 arrived within $((t[3] - t[0])) ms: buffered: $(cat sse.out)"
[[ $(tail -n1 sse.out | jq -r '.headers[] | select(.[0] | ascii_downcase == "content-type") | .[1]') == text/event-stream ]] ||
	tg_fail "content type lost: $(tail -n1 sse.out)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=stream path=/sse listener=plain
echo "ok: SSE events arrive one by one (${t[*]} ms)"

# ---- chunked and large responses --------------------------------------------------------
out=$(on "$P" alice req '/chunked?n=5')
[[ $(jq -r .status <<<"$out") == 200 && $(jq -r .body <<<"$out") == $'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4' ]] ||
	tg_fail "chunked: $out"
# an HTTP/1.0 client reads no chunks (RFC 9112 6.1, 7): the same body, decoded
# by the gate and ended by the close (--raw: curl shows the bytes as they came)
rc=0
curl -sS --http1.0 --raw --max-time 20 --cacert "$PKI/srvca.pem" --cert "$PKI/alice.pem" \
	--key "$PKI/leaf.key" -D h10.txt -o b10.txt "https://localhost:$P/chunked?n=5" 2>c10.err || rc=$?
((rc == 0)) || tg_fail "HTTP/1.0 /chunked: curl exit $rc: $(cat c10.err)"
head -n1 h10.txt | grep -q ' 200 ' || tg_fail "HTTP/1.0 /chunked: $(cat h10.txt)"
! grep -qi '^transfer-encoding:' h10.txt || tg_fail "Transfer-Encoding sent to an HTTP/1.0 client: $(cat h10.txt)"
grep -qi '^connection: close' h10.txt || tg_fail "HTTP/1.0 /chunked without Connection: close: $(cat h10.txt)"
printf 'chunk %d\n' 0 1 2 3 4 >want10.txt
cmp -s b10.txt want10.txt || tg_fail "HTTP/1.0 /chunked body is not the upstream's content: $(od -c b10.txt | head -5)"
# big_ok PORT WHAT QUERY...: GET /big?QUERY through the gate's PORT answers
# 200 with as many bytes as QUERY's bytes= asks for
big_ok()
{
	local port=$1 what=$2 q n out
	shift 2
	for q in "$@"; do
		out=$(on "$port" alice --timeout 60 req "/big?$q" | jq -c '{status, n: (.body | length)}')
		n=${q#bytes=}
		n=${n%%&*}
		[[ $out == "{\"status\":200,\"n\":$n}" ]] || tg_fail "$what ($q): $out"
	done
}
big_ok "$P" big 'bytes=6000000' 'bytes=3000000&chunked=1'
echo "ok: chunked and large responses (an HTTP/1.0 client gets the body decoded, ended by the close)"

# ---- upstream keep-alive pool -------------------------------------------------------------
out=$(on "$P" alice req /echo /echo /echo | jq -r '.body | fromjson | .conn' | sort -u | wc -l)
[[ $out == 1 ]] || tg_fail "three requests on one client connection used $out upstream connections"
echo "ok: the upstream connection is kept alive and reused"

# ---- WebSocket ------------------------------------------------------------------------------
gate_audit_mark
on "$P" alice ws /ws hello "second message" >ws.out || tg_fail "ws: $(cat ws.out)"
[[ $(head -n1 ws.out | jq -r '"\(.status) \(.accept_ok)"') == "101 true" ]] || tg_fail "ws handshake: $(cat ws.out)"
[[ $(jq -sr 'map(select(.echo) | .echo) | join("|")' ws.out) == "hello|second message" ]] || tg_fail "ws echo: $(cat ws.out)"
grep -q '"close": true' ws.out || tg_fail "ws close: $(cat ws.out)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=ws path=/ws
# a route without websocket: true: 403 naming the route, nothing upstream
gate_audit_mark
out=$(on "$P" alice ws /ws-plain hi) || true
[[ $(head -n1 <<<"$out" | jq -r .status) == 403 ]] || tg_fail "upgrade on a route without websocket: true: want 403, got $out"
! grep -q '"/ws-plain"' up-up.jsonl || tg_fail "the refused upgrade reached the upstream"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=ws-plain path=/ws-plain status=403 \
	"reason~route ws-plain does not allow WebSocket upgrades"
echo "ok: WebSocket echo on a websocket route, 403 elsewhere"

# ---- upstream failures --------------------------------------------------------------------
gate_audit_mark
out=$(on "${ports[2]}" alice req /echo)
[[ $(jq -r .status <<<"$out") == 502 ]] || tg_fail "upstream down: want 502, got $out"
gate_audit_expect event=$GATE_EV_UPERR status=502 listener=down route=echo
[[ -n $(gate_metric 'tokengate_upstream_errors_total{') ]] || tg_fail "no tokengate_upstream_errors_total sample"
curl -sS "http://$GATE_ADMIN/metrics" | grep -q '^tokengate_upstream_errors_total{.*kind="refused"' ||
	tg_fail "no upstream error of kind refused in /metrics"
echo "ok: upstream refusing -> 502"
gate_audit_mark
out=$(on "$P" alice req /abort)
[[ $(jq -r .status <<<"$out") == 502 ]] || tg_fail "upstream breaking: want 502, got $out"
gate_audit_expect event=$GATE_EV_UPERR status=502 route=stream
echo "ok: upstream closing without an answer -> 502"
gate_audit_mark
s0=$EPOCHREALTIME
out=$(on "$P" alice req '/slow?ms=5000')
el=$(awk -v a="$s0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
[[ $(jq -r .status <<<"$out") == 504 ]] || tg_fail "slow upstream: want 504, got $out"
((el < 4500)) || tg_fail "504 after $el ms; upstream_ms is 1500"
gate_audit_expect event=$GATE_EV_UPERR status=504 route=stream
curl -sS "http://$GATE_ADMIN/metrics" | grep -q '^tokengate_upstream_errors_total{.*kind="timeout"' ||
	tg_fail "no upstream error of kind timeout in /metrics"
# the gate still serves after the failures, on the same listener
out=$(on "$P" alice req '/slow?ms=100')
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "after the 504: $out"
echo "ok: slow upstream -> 504 after upstream_ms ($el ms)"

# ---- https:// and unix: upstreams ---------------------------------------------------------------
gate_audit_mark
out=$(on "${ports[0]}" alice req /echo)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "https upstream: $out"
[[ $(jq -r .body <<<"$out" | jq -r .path) == /echo ]] || tg_fail "https upstream echo: $out"
grep -q '"path": "/echo"' up-tls.jsonl || tg_fail "the https upstream did not get the request"
gate_audit_expect event=$GATE_EV_REQ decision=allow listener=tls-up route=echo
# large bodies over TLS: many records, each read in pieces smaller than a record
big_ok "${ports[0]}" "big over the https upstream" 'bytes=3000000' 'bytes=2000000&chunked=1'
gate_audit_mark
out=$(on "${ports[3]}" alice req /echo)
[[ $(jq -r .status <<<"$out") == 502 ]] || tg_fail "https upstream with a certificate upstream_ca does not vouch for: want 502, got $out"
! grep -q '"path": "/echo"' up-rogue.jsonl 2>/dev/null || tg_fail "the request reached an unverified https upstream"
gate_audit_expect event=$GATE_EV_UPERR status=502 listener=rogue-up
echo "ok: https upstream verified against upstream_ca"
gate_audit_mark
out=$(on "${ports[1]}" alice req -X POST -d unix-body /echo)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "unix upstream: $out"
[[ $(jq -r .body <<<"$out" | jq -r .body_length) == 9 ]] || tg_fail "unix upstream body: $out"
grep -q '"path": "/echo"' up-unix.jsonl || tg_fail "the unix upstream did not get the request"
gate_audit_expect event=$GATE_EV_REQ decision=allow listener=unix-up route=echo method=POST
echo "ok: unix: upstream"

gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: streaming and upstreams"
