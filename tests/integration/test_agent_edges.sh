#!/usr/bin/env bash
# test_agent_edges.sh — `tokengate agent` at the edges of its connections,
# each check trying to break it. The agent (SoftHSM2 key) talks to a
# stand-in gate (tests/lib/agent_standin.py: mutual TLS, misbehaving on
# purpose):
#   - retry: every pooled connection is closed by the stand-in as the next
#     request arrives, without a byte of response (a gate's idle timeout
#     hitting the very moment the agent sends): GET, HEAD, PUT and DELETE
#     without a body all get 200 (sent once more on a new connection, zero
#     502); a POST with a body, and a POST without one, get 502 with the
#     reason and reached the stand-in exactly once;
#   - response timeout: a request the stand-in never answers gets 504 with
#     a one-line reason after --response-timeout-ms, and is not sent twice;
#     a response whose head came in time is not cut while its body is slow;
#   - client timeout: a client that sends nothing is closed, one that stops
#     mid-head gets 408 (one line) and is closed, an idle keep-alive client
#     is closed, all after --client-timeout-ms; a prompt client is served;
#   - tcp mode half-close: the client sends 300 KB and shuts its write side;
#     the stand-in answers only after the end of the data (close_notify), and
#     the client reads that answer;
#   - configuration: the two timeouts in --config (top level and per
#     listener), bad values refused with the flag or the file and line;
#   - an exportable key is refused naming the agent's real fix, not a flag
#     the agent does not have.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
gate_require
agent_require
cd "$TG_TMP"

agent_hsm_pki
KEY=$AGENT_HSM_KEY
EXPKEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=exportable;type=private?$AGENT_HSM_QUERY"

standin_start() # NAME MODE: STANDIN_PORT, STANDIN_LOG
{
	STANDIN_LOG=$TG_TMP/standin.$1.log
	: >"$STANDIN_LOG"
	TG__LOGS+=("$TG_TMP/standin.$1.err")
	"${TG__PDEATH[@]}" python3 "$TG_FIXTURES/agent_standin.py" --cert "$PKI/server.pem" \
		--key "$PKI/server.key" --client-ca "$PKI/ca/ca.pem" --port-file "$TG_TMP/standin.$1.port" \
		--log "$STANDIN_LOG" --mode "$2" </dev/null >"$TG_TMP/standin.$1.err" 2>&1 &
	tg_on_exit gate__kill "$!"
	tg_wait_until 20 test -s "$TG_TMP/standin.$1.port" || tg_fail "the stand-in gate did not start"
	STANDIN_PORT=$(cat "$TG_TMP/standin.$1.port")
}
standin_count() # PATTERN (extended regex on the log lines)
{
	grep -Ec -- "$1" "$STANDIN_LOG" || true
}

# ---- exportable key: the refusal names the agent's fix -----------------
standin_start http http
export AGENT_UPSTREAM=https://127.0.0.1:$STANDIN_PORT
tg_expect_exit 1 "is refused (exportable)" "$TG" agent --listen 127.0.0.1:1 \
	--upstream "$AGENT_UPSTREAM" --key "$EXPKEY" --cert "$PKI/hsm-api.pem" --ca "$PKI/srvca.pem" --check
grep -qF -- "--allow-exportable" err && tg_fail "the agent names a flag it does not have: $(cat err)"
grep -qF "TG_P11_KEY_ALLOW" err && tg_fail "the agent names a library flag: $(cat err)"
grep -qF "tokengate enroll" err || tg_fail "the refusal does not name the fix (enroll a key generated on the token): $(cat err)"
echo "ok: exportable key refused with the agent's fix"

# ---- configuration of the timeouts --------------------------------------
tg_expect_exit 2 "--client-timeout-ms: '0' is not a number of milliseconds" "$TG" agent \
	--listen 127.0.0.1:1 --upstream "$AGENT_UPSTREAM" --key "$KEY" --ca "$PKI/srvca.pem" \
	--client-timeout-ms 0
tg_expect_exit 2 "--response-timeout-ms: '5s' is not a number of milliseconds" "$TG" agent \
	--listen 127.0.0.1:1 --upstream "$AGENT_UPSTREAM" --key "$KEY" --ca "$PKI/srvca.pem" \
	--response-timeout-ms 5s
tg_expect_exit 2 "--response-timeout-ms: '86400001' is not a number" "$TG" agent \
	--listen 127.0.0.1:1 --upstream "$AGENT_UPSTREAM" --key "$KEY" --ca "$PKI/srvca.pem" \
	--response-timeout-ms 86400001
cat >t.yaml <<EOF
upstream: $AGENT_UPSTREAM
key: "$KEY"
cert: $PKI/hsm-api.pem
ca: $PKI/srvca.pem
client_timeout_ms: 2500
listeners:
  - listen: 127.0.0.1:1
    response_timeout_ms: 1500
  - listen: 127.0.0.1:2
    client_timeout_ms: -1
EOF
tg_expect_exit 1 "t.yaml line 10" "$TG" agent --config t.yaml --check
grep -qF "client_timeout_ms: '-1' is not a number of milliseconds from 1 to 86400000" err ||
	tg_fail "bad client_timeout_ms: $(cat err)"
sed -i '$d' t.yaml
"$TG" agent --config t.yaml --check >out 2>err || tg_fail "timeouts in --config: $(cat err)"
"$TG" agent --help | grep -q -- "--client-timeout-ms MS" || tg_fail "--help lacks --client-timeout-ms"
"$TG" agent --help | grep -q -- "--response-timeout-ms" || tg_fail "--help lacks --response-timeout-ms"
echo "ok: timeouts configurable by flag and file, bad values refused"

# ---- retry on a pooled connection the gate closed -----------------------
agent_start --key "$KEY" --cert "$PKI/hsm-api.pem" --response-timeout-ms 1500 --client-timeout-ms 1200
python3 - "$AGENT_PORT" <<'EOF' >retry.out || tg_fail "retry: $(cat retry.out)"
import http.client, sys
port = int(sys.argv[1])
codes = []
for i in range(12):
    for m in ("GET", "HEAD", "PUT", "DELETE"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.request(m, "/r?i=%d&m=%s" % (i, m), headers={"Content-Length": "0"} if m in ("PUT", "DELETE") else {})
        r = c.getresponse()
        body = r.read()
        codes.append((m, r.status, body[:200]))
        c.close()
bad = [x for x in codes if x[1] != 200]
assert not bad, bad
print("ok: %d idempotent requests without a body, all 200" % len(codes))
EOF
cat retry.out
closed=$(standin_count ' closed$')
((closed >= 40)) || tg_fail "the stand-in closed only $closed pooled connections under a request: the race was not exercised ($(tail -5 "$STANDIN_LOG"))"
for m in GET HEAD PUT DELETE; do
	# each request answered once; those that met a closed connection were seen twice
	for i in 0 5 11; do
		[[ $(standin_count " $m /r\\?i=$i&m=$m 0 answered\$") == 1 ]] ||
			tg_fail "$m /r?i=$i was answered $(standin_count " $m /r\\?i=$i&m=$m 0 answered\$") times"
	done
done
fwd=$(agent_metric 'tokengate_agent_requests_total{listener="main",result="forwarded"}')
[[ $fwd == 48 ]] || tg_fail "48 requests counted as $fwd forwarded (a retry is one request)"
failed=$(agent_metric 'tokengate_agent_requests_total{listener="main",result="failed"}')
[[ $failed == 0 ]] || tg_fail "$failed requests failed"
echo "ok: $closed pooled connections closed under a request, every one retried, zero 502"

# a POST is never sent twice: with a body, and without one
for body in 'x=1' ''; do
	curl -sS --max-time 20 -o /dev/null "$(agent_url /warm)" # a pooled connection the stand-in will close
	code=$(curl -sS --max-time 20 -o post.txt -w '%{http_code}' --data-binary "$body" \
		-H 'Content-Type: text/plain' "$(agent_url "/p?body=${#body}")")
	[[ $code == 502 ]] || tg_fail "POST (body '${body}') on a closed pooled connection: $code $(cat post.txt)"
	[[ $(grep -c . post.txt) == 1 ]] || tg_fail "the 502 is not one line: $(cat post.txt)"
	grep -q "is not sent again by the agent, as it might be applied twice" post.txt ||
		tg_fail "the 502 does not say why: $(cat post.txt)"
	[[ $(standin_count " POST /p\\?body=${#body} ") == 1 ]] ||
		tg_fail "POST (body '${body}') reached the stand-in $(standin_count " POST /p\\?body=${#body} ") times"
	echo "ok: POST (body '${body}') not retried: 502 $(cat post.txt)"
done
grep -q "request with a body is not sent again" <(curl -sS --max-time 20 -o /dev/null "$(agent_url /warm)"; curl -sS --max-time 20 --data-binary 'abc' "$(agent_url /p2)") ||
	tg_fail "the 502 of a POST with a body does not name the body"

# ---- response timeout ---------------------------------------------------
t0=$(tg__now_ms)
code=$(curl -sS --max-time 20 -o hang.txt -w '%{http_code}' "$(agent_url /hang)")
took=$(($(tg__now_ms) - t0))
[[ $code == 504 ]] || tg_fail "a request the gate never answers: $code $(cat hang.txt)"
[[ $(grep -c . hang.txt) == 1 ]] || tg_fail "the 504 is not one line: $(cat hang.txt)"
grep -q "no response within 1500 ms of the request (response timeout)" hang.txt || tg_fail "504 without the reason: $(cat hang.txt)"
((took >= 1400 && took < 5000)) || tg_fail "the 504 came after $took ms (want ~1500)"
[[ $(standin_count ' GET /hang ') == 1 ]] || tg_fail "GET /hang was sent $(standin_count ' GET /hang ') times (a timeout is not retried)"
echo "ok: no answer: 504 after $took ms: $(cat hang.txt)"
# a head in time and a slow body (3 s > the timeout): not cut
code=$(curl -sS --max-time 20 -o slow.txt -w '%{http_code}' "$(agent_url /slow)")
[[ $code == 200 && $(cat slow.txt) == slow ]] || tg_fail "a slow body after a prompt head was cut: $code $(cat slow.txt)"
echo "ok: a slow body after the head is not cut by the response timeout"

# ---- client timeout -----------------------------------------------------
python3 - "$AGENT_PORT" <<'EOF' || tg_fail "client timeout: see above"
import socket, sys, time
port = int(sys.argv[1])
def closed_after(s, limit=10):
    t0 = time.time()
    s.settimeout(limit)
    buf = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            return time.time() - t0, buf
        buf += b
# nothing sent
s = socket.create_connection(("127.0.0.1", port))
took, buf = closed_after(s)
assert buf == b"" and 1.0 <= took < 4, (took, buf)
print("ok: a silent client closed after %.2f s" % took)
# stops in the middle of its head
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /x HTTP/1.1\r\nHo")
took, buf = closed_after(s)
assert buf.startswith(b"HTTP/1.1 408 "), buf
body = buf.split(b"\r\n\r\n", 1)[1]
assert body.count(b"\n") == 1 and b"client timeout" in body, body
assert 1.0 <= took < 4, took
print("ok: a half head: %s after %.2f s" % (body.decode().strip(), took))
# a slow trickle of a head (slowloris): also cut, the time counts for the whole head
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
try:
    for ch in b"GET /trickle HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n":
        s.sendall(bytes([ch]))
        time.sleep(0.1)
except (BrokenPipeError, ConnectionResetError):
    pass
took, buf = closed_after(s)
assert buf.startswith(b"HTTP/1.1 408 "), buf
assert time.time() - t0 < 4, time.time() - t0
print("ok: a trickling head cut after %.2f s" % (time.time() - t0))
# served when prompt; then idle on keep-alive: closed
s = socket.create_connection(("127.0.0.1", port))
time.sleep(0.8)  # under the timeout
s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(10)
buf = b""
while b"ok " not in buf:
    b = s.recv(65536)
    assert b, buf
    buf += b
assert buf.startswith(b"HTTP/1.1 200"), buf
took, rest = closed_after(s)
assert rest == b"" and 1.0 <= took < 4, (took, rest)
print("ok: a prompt client served, then closed %.2f s into keep-alive idleness" % took)
EOF
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC"

# ---- tcp mode: the client's half-close reaches the gate -----------------
standin_start tcp tcp
AGENT_UPSTREAM=https://127.0.0.1:$STANDIN_PORT agent_start --key "$KEY" --cert "$PKI/hsm-api.pem" --mode tcp
python3 - "$AGENT_PORT" <<'EOF' || tg_fail "tcp half-close: see above; stand-in: $(cat "$STANDIN_LOG")"
import hashlib, os, socket, sys
data = os.urandom(300000)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    buf += b
want = b"got %d bytes %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
assert buf == want, (buf, want)
print("ok: tcp half-close passed on: %s" % buf.decode().strip())
EOF
[[ $(standin_count '^[0-9]+ tcp 300000$') == 1 ]] || tg_fail "the stand-in did not see the end of the data: $(cat "$STANDIN_LOG")"
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC"
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TG_TMP"/agent.*.log ||
	tg_fail "a sanitizer found a fault in the agent (above)"
echo PASS
