#!/usr/bin/env bash
# test_agent.sh — `tokengate agent` end to end with nothing mocked: a
# client (curl, no certificate, plain HTTP on loopback or a unix socket)
# -> the agent (mutual TLS with the SoftHSM2 key enrolled by `tokengate
# enroll` + `tokengate ca issue`) -> `tokengate gate` -> the python
# upstream. Checks: --check (summary, and the exportable key refused with
# the reason); start; GET /echo (200, the gate saw the identity, Host kept);
# keep-alive requests reuse one upstream connection; a POST body (chunked)
# streamed; SSE chunks pass; a burst of new client connections costs at
# most a couple of full handshakes (the rest resume, /metrics); --host
# rewrites Host; a WebSocket upgrade passes through; unix socket mode 0600;
# tcp mode; a wrong server_id or server_name refused (502 with the reason),
# the right server_name accepted; /healthz,
# /metrics names and the token operation count; a cold burst costs one full
# handshake; presence (p11_watch_wrap hides the token): the open connection
# closed, 503 with a one-line reason, serving again after insertion;
# SIGTERM exits 0 and no sanitizer report.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"

tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
GATE_HSM=1 gate_pki || tg_fail "the PKI could not be made"
gate_policy_default "$TG_TMP/policy.yaml"
# a WebSocket route this identity may use (the default one is for dev/*)
gate_policy_first "$TG_TMP/policy.yaml" '  - name: ws-api
    paths: ["/ws-api"]
    websocket: true
    allow:
      - identity: "spiffe://example.org/svc/api"
'
gate_upstream_start main --listen 127.0.0.1:0
gate_start
KEY="$GATE_HSM_KEY?module-path=$TG_SOFTHSM2_MODULE"
EXPKEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=exportable;type=private?module-path=$TG_SOFTHSM2_MODULE"
# the gate's certificate names localhost and 127.0.0.1 (srvca.pem)
UPSTREAM="https://127.0.0.1:$GATE_PORT"

# ---- --check ------------------------------------------------------------
APORT=$(tg_free_port_pair)
AADMIN=127.0.0.1:$((APORT + 1))
"$TG" agent --listen "127.0.0.1:$APORT" --upstream "$UPSTREAM" --key "$KEY" \
	--cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --check >out 2>err ||
	tg_fail "agent --check failed: $(cat err)"
grep -q "configuration OK" out || tg_fail "agent --check printed no summary: $(cat out)"
tg_expect_exit 1 "exportable" "$TG" agent --listen "127.0.0.1:$APORT" --upstream "$UPSTREAM" \
	--key "$EXPKEY" --cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --check
tg_expect_exit 1 "--allow-remote" "$TG" agent --listen "0.0.0.0:$APORT" --upstream "$UPSTREAM" \
	--key "$KEY" --ca "$PKI/srvca.pem" --check

# ---- start ---------------------------------------------------------------
AGENT_PID=
agent_start() # LOG ARGS...
{
	local log=$1
	shift
	local -a pre=()
	TG__LOGS+=("$log")
	# AGENT_ETC=DIR: DIR/hosts, DIR/gai.conf and DIR/resolv.conf are its
	# /etc/hosts, /etc/gai.conf and /etc/resolv.conf (bind mounts in a
	# private mount namespace)
	[[ -z ${AGENT_ETC:-} ]] ||
		pre=(unshare -m sh -c 'mount --make-rprivate / && mount --bind "$0/hosts" /etc/hosts &&
			mount --bind "$0/gai.conf" /etc/gai.conf &&
			mount --bind "$0/resolv.conf" /etc/resolv.conf && exec "$@"' "$AGENT_ETC")
	setpriv --pdeathsig TERM "${pre[@]}" "$TG" agent "$@" </dev/null >"$log" 2>&1 &
	AGENT_PID=$!
	tg_on_exit gate__kill "$AGENT_PID"
	tg_wait_until 30 grep -q 'tokengate agent: ready' "$log" || {
		tg__dump "$log" agent
		tg_fail "the agent did not become ready: $*"
	}
}
agent_metric() # NAME{LABELS}
{
	curl -sS --max-time 5 "http://$AADMIN/metrics" | awk -v k="$1" 'index($0, k) == 1 { print $NF; exit }'
}
agent_start agent.log --listen "127.0.0.1:$APORT" --upstream "$UPSTREAM" --key "$KEY" \
	--cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --admin "$AADMIN"
A="http://127.0.0.1:$APORT"
# a second agent whose admin address is taken: refused, saying why and the fix
tg_expect_exit 1 "admin listener $AADMIN: cannot listen: Address already in use (another process uses the port; pick another)" \
	"$TG" agent --listen "127.0.0.1:$(tg_free_port_pair)" --upstream "$UPSTREAM" --key "$KEY" \
	--cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --admin "$AADMIN"

# ---- one request ---------------------------------------------------------
code=$(curl -sS --max-time 20 -o r1.json -w '%{http_code}' -H 'Host: api.example' "$A/echo?x=1")
[[ $code == 200 ]] || tg_fail "GET /echo through the agent: $code $(cat r1.json)"
jq -e '.path == "/echo?x=1"' r1.json >/dev/null || tg_fail "the upstream saw another path: $(cat r1.json)"
jq -e '[.headers[] | select(.[0] | ascii_downcase == "host")][0][1] == "api.example"' r1.json >/dev/null ||
	tg_fail "Host was not kept: $(cat r1.json)"
jq -e '[.headers[] | select(.[0] == "X-Tokengate-Identity")][0][1] == "spiffe://example.org/svc/api"' r1.json >/dev/null ||
	tg_fail "the gate did not see the token identity: $(cat r1.json)"
echo "ok: GET /echo through agent and gate as spiffe://example.org/svc/api"
# a local client claiming another identity and key in the gate's own fields:
# the upstream sees only the token's identity and provenance, once each
code=$(curl -sS --max-time 20 -o forged.json -w '%{http_code}' \
	-H 'X-Tokengate-Identity: spiffe://example.org/ops/root' \
	-H 'X-Tokengate-Key: level=device-attested; pin=always; touch=always; serial=1' \
	-H 'x-tokengate-identity: spiffe://example.org/ops/root2' "$A/echo")
[[ $code == 200 ]] || tg_fail "GET /echo with forged X-Tokengate-* fields: $code $(cat forged.json)"
ids=$(jq -c '[.headers[] | select(.[0] | ascii_downcase == "x-tokengate-identity") | .[1]]' forged.json)
[[ $ids == '["spiffe://example.org/svc/api"]' ]] || tg_fail "forged identity fields reached the upstream: $ids"
keys=$(jq -c '[.headers[] | select(.[0] | ascii_downcase == "x-tokengate-key") | .[1]]' forged.json)
[[ $keys == '["level=hsm-operator; '* && $keys != *device-attested* ]] || tg_fail "a forged key field reached the upstream: $keys"
echo "ok: X-Tokengate-* fields a client sends through the agent never reach the upstream"
# the agent as a client's HTTP proxy (http_proxy=http://127.0.0.1:PORT):
# the absolute-form request goes to the gate in origin-form with the URL's
# authority as Host, decided on its normalized path; the proxy-only
# headers stop at the agent
code=$(curl -sS --max-time 20 -o r-proxy.json -w '%{http_code}' -x "$A" -U 'me:proxy-secret' \
	'http://api.example:8080/echo/a/../b?x=1')
[[ $code == 200 ]] || tg_fail "through the agent as an HTTP proxy: $code $(cat r-proxy.json)"
jq -e '.path == "/echo/b?x=1"' r-proxy.json >/dev/null || tg_fail "proxy request: the upstream saw $(jq -c .path r-proxy.json)"
jq -e '[.headers[] | select(.[0] | ascii_downcase == "host")] == [["Host", "api.example:8080"]]' r-proxy.json >/dev/null ||
	tg_fail "proxy request: Host upstream: $(jq -c '[.headers[] | select(.[0] | ascii_downcase == "host")]' r-proxy.json)"
! jq -e '.headers[] | select(.[0] | ascii_downcase | startswith("proxy-"))' r-proxy.json >/dev/null ||
	tg_fail "proxy request: a Proxy-* header reached the upstream: $(jq -c .headers r-proxy.json)"
echo "ok: the agent as an HTTP proxy: origin-form to the gate, the URL's host as Host, Proxy-* dropped"
# an https:// URL through the proxy asks for a tunnel (CONNECT): refused,
# saying what to send instead
ans=$(python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n")
out = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    out += d
sys.stdout.write(out.decode("latin-1"))' "$APORT")
[[ $ans == "HTTP/1.1 501 "* && $ans == *"CONNECT (a tunnel) is not supported: send the request itself"* ]] ||
	tg_fail "CONNECT through the agent: want 501 with the reason: $ans"
echo "ok: CONNECT through the agent: 501 naming what to send instead"

# ---- the gate's name with two addresses, the first refusing: the second used ----
# (an agent with its own /etc/hosts, and a gai.conf that sorts 127.0.0.2
# first, as glibc would otherwise put 127.0.0.1 first, in a private mount
# namespace)
if ! [[ -f /etc/gai.conf ]]; then
	echo "skipped: the gate name with two addresses (no /etc/gai.conf to stand in for)"
elif why=$(unshare -m true 2>&1); then
	mkdir etc.test
	{
		cat /etc/hosts
		printf '%s\n' "127.0.0.2 tg-gate.test" "127.0.0.1 tg-gate.test" \
			"127.0.0.4 tg-gate-silent.test" "127.0.0.1 tg-gate-silent.test"
	} >etc.test/hosts
	printf '%s\n' "precedence ::ffff:127.0.0.2/128 100" "precedence ::ffff:127.0.0.4/128 100" \
		"precedence ::/0 40" >etc.test/gai.conf
	# names not in hosts: a DNS server that is not there (refused at once),
	# so a lookup fails now rather than after the machine's DNS timeouts
	printf '%s\n' "nameserver 127.0.0.1" "options attempts:1 timeout:1" >etc.test/resolv.conf
	# --check fails on a gate name that does not resolve
	tg_expect_exit 1 "listener main: the gate's host 'tg-gate-late.test' does not resolve (" \
		unshare -m sh -c 'mount --make-rprivate / && mount --bind "$0/hosts" /etc/hosts &&
			mount --bind "$0/resolv.conf" /etc/resolv.conf && exec "$@"' "$TG_TMP/etc.test" \
		"$TG" agent --listen "127.0.0.1:$(tg_free_port_pair)" --upstream "https://tg-gate-late.test:$GATE_PORT" \
		--server-name localhost --key "$KEY" --cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --check
	P2=$(tg_free_port_pair) first=$AGENT_PID
	# an agent on 127.0.0.1:$P2 whose gate is NAME (the etc.test files)
	agent_on_name() { # LOG NAME
		AGENT_ETC=$TG_TMP/etc.test agent_start "$1" --listen "127.0.0.1:$P2" \
			--upstream "https://$2:$GATE_PORT" --server-name localhost --key "$KEY" \
			--cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem"
	}
	agent_on_name agent-names.log tg-gate.test
	code=$(curl -sS --max-time 20 -o r-names.json -w '%{http_code}' "http://127.0.0.1:$P2/echo")
	[[ $code == 200 ]] || tg_fail "through a gate name whose first address refuses: $code $(cat r-names.json)"
	gate__kill "$AGENT_PID"
	AGENT_PID=$first
	echo "ok: the agent tries the gate name's next address when the first refuses"
	# the first address never answers (a listener whose backlog of 0 is
	# full: SYNs are dropped): after its half of the agent's 10 s connect
	# limit the second is tried (the whole limit on it would fail)
	python3 -c 'import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.4", int(sys.argv[1]))); l.listen(0)
f = socket.create_connection(("127.0.0.4", int(sys.argv[1])))
print("ready", flush=True); time.sleep(600)' "$GATE_PORT" >silent.out 2>&1 &
	silent=$!
	tg_on_exit gate__kill "$silent"
	tg_wait_until 10 grep -q ready silent.out || tg_fail "the silent listener did not start: $(cat silent.out)"
	agent_on_name agent-silent.log tg-gate-silent.test
	code=$(curl -sS --max-time 20 -o r-silent.json -w '%{http_code}' "http://127.0.0.1:$P2/echo")
	[[ $code == 200 ]] || tg_fail "through a gate name whose first address never answers: $code $(cat r-silent.json)"
	gate__kill "$AGENT_PID"
	gate__kill "$silent"
	echo "ok: the agent gives a gate address that never answers its share of the time, then tries the next"
	# the gate's name does not resolve when the agent starts: it starts
	# anyway and says so; requests get 502 naming the lookup until the name
	# resolves. Then the name moves (its one address refuses, then it names
	# the gate): a connection refused by every address makes the next one
	# look the name up again. (hosts is rewritten in place: the agent's
	# /etc/hosts is a bind mount of that very file.)
	agent_on_name agent-late.log tg-gate-late.test
	grep -q "the gate's host 'tg-gate-late.test' does not resolve now (.*); starting anyway" agent-late.log ||
		tg_fail "the agent did not say that the gate's name does not resolve: $(cat agent-late.log)"
	late() { curl -sS --max-time 20 -o r-late.txt -w '%{http_code}' "http://127.0.0.1:$P2/echo"; }
	code=$(late)
	[[ $code == 502 ]] && grep -q "cannot resolve the gate's host 'tg-gate-late.test': .*; check the name and the network" r-late.txt ||
		tg_fail "a request while the gate's name does not resolve: want 502 naming the lookup: $code $(cat r-late.txt)"
	cp etc.test/hosts hosts.orig
	{ cat hosts.orig; echo "127.0.0.3 tg-gate-late.test"; } >etc.test/hosts
	code=$(late)
	[[ $code == 502 ]] && grep -q "cannot connect to the gate .*Connection refused" r-late.txt ||
		tg_fail "the gate's name on an address that refuses: want 502: $code $(cat r-late.txt)"
	{ cat hosts.orig; echo "127.0.0.1 tg-gate-late.test"; } >etc.test/hosts
	code=$(late)
	[[ $code == 200 ]] || tg_fail "the gate's name moved to the gate: want 200 (looked up again): $code $(cat r-late.txt)"
	cat hosts.orig >etc.test/hosts
	gate__kill "$AGENT_PID"
	AGENT_PID=$first
	echo "ok: a gate name that does not resolve at the start, then moves: found without a restart"
else
	echo "skipped: the gate name with two addresses (no private mount namespace: $why)"
fi

# ---- keep-alive: 1,000 requests, one upstream connection, no signature ----
hs0=$(agent_metric 'tokengate_agent_handshakes_total{result="ok"}')
ops0=$(agent_metric tokengate_agent_token_operations_total)
for i in $(seq 1 1000); do echo "url = \"$A/echo?i=$i\""; echo "output = /dev/null"; done >k.cfg
curl -sS --max-time 120 -K k.cfg -w '%{http_code}\n' >codes
[[ $(grep -c '^200$' codes) == 1000 ]] || tg_fail "1,000 keep-alive requests: $(sort codes | uniq -c)"
hs1=$(agent_metric 'tokengate_agent_handshakes_total{result="ok"}')
ops1=$(agent_metric tokengate_agent_token_operations_total)
((hs1 - hs0 <= 1)) || tg_fail "1,000 keep-alive requests cost $((hs1 - hs0)) handshakes (the pool is not used)"
((ops1 - ops0 <= 2)) || tg_fail "1,000 keep-alive requests cost $((ops1 - ops0)) token operations"
echo "ok: 1,000 keep-alive requests: $((hs1 - hs0)) new handshake(s), $((ops1 - ops0)) token operation(s)"

# ---- a burst of new client connections: the rest resume ------------------
for i in $(seq 1 20); do
	curl -sS --max-time 30 -o /dev/null -w '%{http_code}\n' "$A/echo?burst=$i" &
done >burst 2>&1
burst_done() { [[ $(grep -c '^200$' burst) -ge 20 ]]; }
tg_wait_until 60 burst_done || tg_fail "burst: $(sort burst | uniq -c)"
full=$(($(agent_metric 'tokengate_agent_handshakes_total{result="ok"}') - $(agent_metric 'tokengate_agent_resumptions_total')))
((full <= 2)) || tg_fail "the burst made $full full handshakes (token signatures); expected at most 2"
echo "ok: burst of 20 connections; full handshakes so far: $full, resumptions: $(agent_metric 'tokengate_agent_resumptions_total')"

# ---- bodies streamed both ways -------------------------------------------
head -c 3000000 /dev/urandom >body.bin
curl -sS --max-time 60 -o r2.json -H 'Transfer-Encoding: chunked' --data-binary @body.bin "$A/echo" ||
	tg_fail "chunked POST failed"
jq -e --arg h "$(sha256sum <body.bin | cut -c1-64)" '.body_sha256 == $h and .body_length == 3000000' r2.json >/dev/null ||
	tg_fail "the chunked body did not arrive whole: $(head -c 300 r2.json)"
curl -sS --max-time 60 -o big.bin "$A/big?bytes=5000000" || tg_fail "GET /big failed"
[[ $(stat -c %s big.bin) == 5000000 ]] || tg_fail "GET /big: $(stat -c %s big.bin) bytes"
[[ $(tr -d x <big.bin | wc -c) == 0 ]] || tg_fail "GET /big: bytes other than the upstream's 'x'"
# SSE: the events arrive one by one, not all at the end
python3 - "$APORT" <<'EOF' || tg_fail "SSE was buffered"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /sse?n=4&ms=400 HTTP/1.1\r\nHost: x\r\n\r\n")
t0 = time.time(); seen = []; buf = b""
while len(seen) < 4 and time.time() - t0 < 20:
    b = s.recv(65536)
    if not b: break
    buf += b
    n = buf.count(b"data:")
    while len(seen) < n: seen.append(time.time() - t0)
assert len(seen) == 4, seen
assert seen[3] - seen[0] > 0.8, seen  # spread over time: streamed
print("ok: SSE events at", ["%.2f" % x for x in seen])
EOF

# ---- --host, 404 passes through -----------------------------------------
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$A/admin/x")
[[ $code == 403 ]] || tg_fail "the gate's 403 for /admin did not pass through: $code"
echo "ok: the gate's 403 passes through"

# ---- WebSocket: the upgrade passes through, then bytes both ways ----------
cat >ws.py <<'EOF'
import base64, os, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws-api HTTP/1.1\r\nHost: w\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    b = s.recv(4096)
    assert b, buf
    buf += b
head, rest = buf.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 101"), head
for i in range(3):
    msg = b"hello through the agent %d" % i
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(c ^ mask[j % 4] for j, c in enumerate(msg)))
    while len(rest) < 2 + len(msg):
        b = s.recv(4096)
        assert b, rest
        rest += b
    assert rest[0] == 0x81 and rest[1] == len(msg) and rest[2:2 + len(msg)] == msg, rest
    rest = rest[2 + len(msg):]
print("ok: WebSocket upgraded through the agent, 3 frames echoed")
EOF
python3 ws.py "$APORT" || tg_fail "WebSocket through the agent"

# ---- metrics and health --------------------------------------------------
curl -sS --max-time 5 "http://$AADMIN/healthz" | grep -q ok || tg_fail "/healthz"
curl -sS --max-time 5 "http://$AADMIN/metrics" >metrics
for m in tokengate_agent_requests_total tokengate_agent_upstream_connections \
	tokengate_agent_handshakes_total tokengate_agent_resumptions_total \
	tokengate_agent_token_operations_total tokengate_agent_token_present; do
	grep -q "^$m" metrics || tg_fail "/metrics lacks $m: $(cat metrics)"
done
[[ $(agent_metric tokengate_agent_token_present) == 1 ]] || tg_fail "token_present is not 1"
ops=$(agent_metric tokengate_agent_token_operations_total)
((ops >= 1 && ops <= 2)) || tg_fail "token operations after ~1,030 requests and 30 connections: $ops (expected 1 or 2)"
echo "ok: /healthz and /metrics ($(agent_metric 'tokengate_agent_requests_total{listener="main",result="forwarded"}') requests forwarded)"
kill -TERM "$AGENT_PID"
tg_wait_until 20 tg__not tg__pid_alive "$AGENT_PID" || tg_fail "the agent ignored SIGTERM"
rc=0
wait "$AGENT_PID" || rc=$?
[[ $rc == 0 ]] || tg_fail "the agent exited $rc after SIGTERM"
grep -q 'tokengate agent: stopped' agent.log || tg_fail "no 'stopped' line"

# ---- a config file: unix socket (0600), --host, tcp mode, wrong server id --
TPORT=$(tg_free_port_pair)
TPORT2=$(tg_free_port_pair)
cat >agent.yaml <<EOF
upstream: $UPSTREAM
key: "$KEY"
cert: $PKI/hsm-api.pem
ca: $PKI/srvca.pem
admin: $AADMIN
listeners:
  - name: sock
    listen: unix:$TG_TMP/agent.sock
    host: rewritten.example
  - name: tunnel
    listen: 127.0.0.1:$TPORT
    mode: tcp
  - name: wrongid
    listen: 127.0.0.1:$((TPORT + 1))
    server_id: spiffe://example.org/svc/not-the-gate
  - name: wrongname
    listen: 127.0.0.1:$TPORT2
    server_name: not-the-gate.example
  - name: rightname
    listen: 127.0.0.1:$((TPORT2 + 1))
    server_name: localhost
EOF
"$TG" agent --config agent.yaml --check >out 2>err || tg_fail "agent --config --check: $(cat err)"
[[ $(grep -c '^listener ' out) == 5 ]] || tg_fail "agent --config --check: one line per listener expected: $(cat out)"
tg_expect_exit 2 "do not mix" "$TG" agent --config agent.yaml --listen 127.0.0.1:1
agent_start agent2.log --config agent.yaml
# a cold burst: no session yet; one full handshake runs, the others wait
# for its ticket and resume
: >burst2
for i in $(seq 1 10); do
	curl -sS --max-time 30 -o /dev/null -w '%{http_code}\n' --unix-socket "$TG_TMP/agent.sock" "http://x/echo?cold=$i" &
done >burst2 2>&1
burst2_done() { [[ $(grep -c '^200$' burst2) -ge 10 ]]; }
tg_wait_until 60 burst2_done || tg_fail "cold burst: $(sort burst2 | uniq -c)"
full=$(($(agent_metric 'tokengate_agent_handshakes_total{result="ok"}') - $(agent_metric 'tokengate_agent_resumptions_total')))
((full <= 1)) || tg_fail "a cold burst of 10 connections made $full full handshakes; expected 1"
echo "ok: cold burst of 10 connections: $full full handshake, $(agent_metric 'tokengate_agent_resumptions_total') resumptions"
[[ $(stat -c %a "$TG_TMP/agent.sock") == 600 ]] || tg_fail "the unix socket is mode $(stat -c %a "$TG_TMP/agent.sock")"
curl -sS --max-time 20 --unix-socket "$TG_TMP/agent.sock" -o r3.json "http://x/echo" || tg_fail "GET over the unix socket"
jq -e '[.headers[] | select(.[0] | ascii_downcase == "host")][0][1] == "rewritten.example"' r3.json >/dev/null ||
	tg_fail "host: did not set Host: $(cat r3.json)"
# the same listener as an HTTP proxy: the gate gets origin-form, and host:
# still names the Host (not the URL's authority)
printf 'GET http://api.example/echo/p?q=1 HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n' |
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.write(out.split(b"\r\n\r\n", 1)[1].decode())' "$TG_TMP/agent.sock" >r4.json
jq -e '.path == "/echo/p?q=1" and ([.headers[] | select(.[0] | ascii_downcase == "host")] == [["Host", "rewritten.example"]])' r4.json >/dev/null ||
	tg_fail "absolute-form through an agent with host:: $(cat r4.json)"
echo "ok: unix socket 0600, Host rewritten by host: (also for a proxy-style request)"
# tcp mode: the bytes of an HTTP request pass unchanged
printf 'GET /echo?tcp=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >req.txt
python3 - "$TPORT" <<'EOF' >tcp.out || tg_fail "tcp mode: $(cat tcp.out)"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(open("req.txt", "rb").read())
buf = b""
while True:
    b = s.recv(65536)
    if not b: break
    buf += b
print(buf.decode(errors="replace"))
assert buf.startswith(b"HTTP/1.1 200"), buf[:200]
EOF
grep -q '/echo?tcp=1' tcp.out || tg_fail "tcp mode: $(cat tcp.out)"
echo "ok: tcp mode spliced"
code=$(curl -sS --max-time 20 -o wrong.txt -w '%{http_code}' "http://127.0.0.1:$((TPORT + 1))/echo")
[[ $code == 502 ]] || tg_fail "a gate without the expected URI SAN: $code $(cat wrong.txt)"
grep -q "URI SAN spiffe://example.org/svc/not-the-gate" wrong.txt || tg_fail "502 without the reason: $(cat wrong.txt)"
echo "ok: wrong server_id refused: $(cat wrong.txt)"
code=$(curl -sS --max-time 20 -o wrong.txt -w '%{http_code}' "http://127.0.0.1:$TPORT2/echo")
[[ $code == 502 ]] || tg_fail "a gate certificate without the expected name: $code $(cat wrong.txt)"
grep -q "mismatch" wrong.txt || tg_fail "502 without the reason: $(cat wrong.txt)"
echo "ok: wrong server_name refused: $(cat wrong.txt)"
code=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((TPORT2 + 1))/echo")
[[ $code == 200 ]] || tg_fail "server_name localhost (in the gate's certificate): $code"
echo "ok: server_name localhost accepted"
kill -TERM "$AGENT_PID"
tg_wait_until 20 tg__not tg__pid_alive "$AGENT_PID" || tg_fail "the agent ignored SIGTERM"
[[ ! -e $TG_TMP/agent.sock ]] || tg_fail "the unix socket was left behind"

# ---- presence: the token removed and inserted again ----------------------
# p11_watch_wrap.so hides the SoftHSM2 token while $TG_WATCH_WRAP_CTL/absent exists
if [[ -z ${TG_WATCH_WRAP_MODULE:-} || ! -f $TG_WATCH_WRAP_MODULE ]]; then
	tg_fail "TG_WATCH_WRAP_MODULE (p11_watch_wrap) is not built"
fi
export TG_WATCH_WRAP_REAL=$TG_SOFTHSM2_MODULE TG_WATCH_WRAP_CTL=$TG_TMP/ctl
mkdir -p "$TG_WATCH_WRAP_CTL"
WKEY="$GATE_HSM_KEY?module-path=$TG_WATCH_WRAP_MODULE"
PPORT=$(tg_free_port_pair)
agent_start agent3.log --listen "127.0.0.1:$PPORT" --upstream "$UPSTREAM" --key "$WKEY" \
	--cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --admin "$AADMIN"
cat >presence.py <<'EOF'
import os, socket, sys, time
port, ctl = int(sys.argv[1]), sys.argv[2]
def request(s):
    s.sendall(b"GET /echo?p=1 HTTP/1.1\r\nHost: p\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            return None, ""
        buf += b
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b"\r\n")[0].decode(), body.decode(errors="replace")
keep = socket.create_connection(("127.0.0.1", port), timeout=20)
st, _ = request(keep)
assert st.startswith("HTTP/1.1 200"), st
open(os.path.join(ctl, "drop-login"), "w").close()
open(os.path.join(ctl, "absent"), "w").close()
t0 = time.time()
keep.settimeout(5)
try:
    gone = keep.recv(1) == b""
except (ConnectionResetError, socket.timeout):
    gone = True
took = time.time() - t0
assert gone and took < 1.5, "the connection authenticated with the token stayed open %.2f s" % took
print("ok: removal closed the open connection after %.2f s" % took)
s = socket.create_connection(("127.0.0.1", port), timeout=20)
st, body = request(s)
assert st.startswith("HTTP/1.1 503"), (st, body)
assert body.count("\n") == 1 and "token" in body, body
print("ok: while removed: %s: %s" % (st, body.strip()))
os.unlink(os.path.join(ctl, "absent"))
deadline = time.time() + 15
while True:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    st, body = request(s)
    if st.startswith("HTTP/1.1 200"):
        break
    assert time.time() < deadline, ("not serving again", st, body)
    time.sleep(0.2)
print("ok: inserted again: %s after %.2f s" % (st, time.time() - t0))
EOF
python3 presence.py "$PPORT" "$TG_WATCH_WRAP_CTL" || tg_fail "presence: see above; agent log: $(cat agent3.log)"
grep -q "the token is not available" agent3.log || tg_fail "no removal line in the agent's log: $(cat agent3.log)"
grep -q "is back" agent3.log || tg_fail "no insertion line in the agent's log: $(cat agent3.log)"
[[ $(agent_metric tokengate_agent_token_present) == 1 ]] || tg_fail "token_present is not 1 after the insertion"
echo "ok: token operations of this agent: $(agent_metric tokengate_agent_token_operations_total)"
kill -TERM "$AGENT_PID"
tg_wait_until 20 tg__not tg__pid_alive "$AGENT_PID" || tg_fail "the agent ignored SIGTERM"
rc=0
wait "$AGENT_PID" || rc=$?
[[ $rc == 0 ]] || tg_fail "the agent exited $rc after SIGTERM: $(tail -n 30 agent3.log)"
# a sanitizer build reports here what it found in any of the agents
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' agent.log agent2.log agent3.log ||
	tg_fail "a sanitizer found a fault in the agent (above)"
echo "PASS"
