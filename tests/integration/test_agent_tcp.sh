#!/usr/bin/env bash
# test_agent_tcp.sh — tcp mode end to end, nothing stood in: a client ->
# `tokengate agent --mode tcp` (SoftHSM2 key) -> `tokengate gate --mode
# tcp` -> an upstream that reads to the end of its input before it
# answers. Each check tries to break the behaviour, and each gate outcome is
# also checked in the gate's audit log:
#   - half-close: the client sends 3 MB and shuts its write side; the
#     upstream sees the end (EOF), answers with the length and SHA-256 of
#     what it got, and that answer reaches the client; the gate's close
#     record counts the bytes both ways ("both sides closed"); the same
#     with 5 bytes and the end sent at once, before the agent's connection
#     to the gate is up (the agent once took that early end for a client
#     gone and closed it without an answer);
#   - the gate's idle timeout (limits.idle_ms 2000): a silent connection,
#     and one half-closed by the client and then quiet, are closed after it
#     (client sees the end; close record "idle timeout"),
#     while one whose client trickles a byte every 0.3 s for 3.6 s, or whose
#     upstream trickles to a silent client, is not cut;
#   - the agent's idle timeout (--idle-timeout-ms 1500, the gate's own at
#     60 s): a silent connection is closed by the agent (its log says why;
#     the gate's close record is not an idle timeout of its own), trickles
#     either way are not cut, a connection half-closed by the client and
#     then silent is cut too; the setting by flag and file, bad values
#     refused.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
gate_require
agent_require
cd "$TG_TMP"

agent_hsm_pki
KEY=$AGENT_HSM_KEY
API=spiffe://$TD/svc/api

# ---- the upstream: reads to EOF, then answers "got N bytes SHA256"; a
# connection that starts with "TICK" gets a byte every 0.3 s for 3 s
# (bytes only towards the client) and then the upstream's end; one that
# starts with "HOLD" gets nothing after its EOF (the upstream keeps its
# side open for 8 s) ---------------------------------------------------
cat >upstream.py <<'EOF'
import hashlib, os, socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
log = open(sys.argv[2], "a", buffering=1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def serve(c, n):
    data = b""
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
            if data == b"TICK":
                for _ in range(10):
                    c.sendall(b".")
                    time.sleep(0.3)
                log.write("%d tick done\n" % n)
                return
        log.write("%d eof after %d\n" % (n, len(data)))
        if data.startswith(b"HOLD"):
            time.sleep(8)
            return
        c.sendall(b"got %d bytes %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))
        log.write("%d answered\n" % n)
    except OSError as e:
        log.write("%d error %s after %d\n" % (n, e, len(data)))
    finally:
        c.close()
n = 0
while True:
    c, _ = s.accept()
    n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
EOF
UPLOG=$TG_TMP/upstream.log
: >"$UPLOG"
"${TG__PDEATH[@]}" "$GATE_PYTHON" upstream.py up.port "$UPLOG" </dev/null >up.out 2>&1 &
tg_on_exit gate__kill "$!"
tg_wait_until 20 test -s up.port || tg_fail "the upstream did not start: $(cat up.out)"
UPORT=$(cat up.port)

cat >policy.yaml <<EOF
routes:
  - name: tunnel
    paths: ["/"]
    allow:
      - identity: "$API"
EOF
gate_config() # IDLE_MS: $TG_TMP/gate.yaml for a gate in tcp mode
{
	gate_ports
	cat >"$TG_TMP/gate.yaml" <<EOF
listeners:
  - name: db
    listen: 127.0.0.1:$GATE_PORT
    mode: tcp
    upstream: tcp://127.0.0.1:$UPORT
tls: {cert: $PKI/server.pem, key: $PKI/server.key, client_ca: [$PKI/ca/ca.pem]}
policy: $TG_TMP/policy.yaml
audit: {file: $TG_TMP/audit.log}
admin: $GATE_ADMIN
workers: 1
limits: {idle_ms: $1}
EOF
}

# client.py MODE PORT: one connection through the agent; prints one line
# "ok ..." or fails (exit 1) saying what it saw.
cat >client.py <<'EOF'
import hashlib, os, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
def until_end(limit=20):
    s.settimeout(limit)
    buf = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            return buf
        buf += b
def answer_of(data):
    return b"got %d bytes %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
t0 = time.time()
if mode == "halfclose":
    data = os.urandom(3000000)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    buf = until_end()
    assert buf == answer_of(data), (buf, answer_of(data))
    print("ok: %s" % buf.decode().strip())
elif mode == "halfclose-small":
    # the whole request and the end at once, before the agent's connection
    # to the gate is even there
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    buf = until_end()
    assert buf == answer_of(b"hello"), (buf, answer_of(b"hello"))
    print("ok: %s" % buf.decode().strip())
elif mode == "silent":
    buf = until_end()
    print("ok: closed after %.2f s, %d bytes" % (time.time() - t0, len(buf)))
    print("took %d" % int((time.time() - t0) * 1000))
elif mode == "halfclose-silent":
    # the client ends its side at once; the upstream then holds its
    # side open without a byte: nothing moves either way
    s.sendall(b"HOLD")
    s.shutdown(socket.SHUT_WR)
    buf = until_end()
    print("ok: closed after %.2f s: %r" % (time.time() - t0, buf))
    print("took %d" % int((time.time() - t0) * 1000))
elif mode == "trickle":
    # a byte every 0.3 s for 3.6 s: longer than any idle limit in the test,
    # each gap a fifth of the shortest
    data = b""
    for i in range(12):
        s.sendall(b"t")
        data += b"t"
        time.sleep(0.3)
    s.shutdown(socket.SHUT_WR)
    buf = until_end()
    assert buf == answer_of(data), ("cut while trickling", time.time() - t0, buf)
    print("ok: a byte every 0.3 s for %.1f s, then the answer" % (time.time() - t0))
elif mode == "tick":
    # silent client, the upstream trickles towards it for 3 s
    s.sendall(b"TICK")
    buf = until_end()
    assert buf == b"." * 10, ("cut while the upstream trickled", time.time() - t0, buf)
    print("ok: the upstream's trickle for %.1f s reached the silent client" % (time.time() - t0))
EOF
client() # MODE: client.py through the agent; output in client.out
{
	"$GATE_PYTHON" client.py "$1" "$AGENT_PORT" >client.out 2>&1 || tg_fail "$1: $(cat client.out)"
	head -n1 client.out
}
took_ms()
{
	sed -n 's/^took //p' client.out
}
close_record() # the last close record since the mark
{
	gate__audit_new | jq -c "select(.event == \"$GATE_EV_CLOSE\")" | tail -n1
}

# ---- the gate's idle timeout, and the half-close through the real gate ---
gate_config 2000
GATE_CONFIG=$TG_TMP/gate.yaml gate_start
agent_start --key "$KEY" --cert "$PKI/hsm-api.pem" --mode tcp

gate_audit_mark
client halfclose
gate_audit_expect event=$GATE_EV_TCP decision=allow route=tunnel identity=$API method=CONNECT path=/
gate_audit_expect event=$GATE_EV_CLOSE identity=$API bytes_in=3000000 bytes_out=83 "reason=both sides closed"
grep -q ' eof after 3000000$' "$UPLOG" || tg_fail "the upstream did not see the end of the 3 MB: $(cat "$UPLOG")"
gate_audit_mark
client halfclose-small
gate_audit_expect event=$GATE_EV_CLOSE identity=$API bytes_in=5 bytes_out=77 "reason=both sides closed"
echo "ok: the client's half-close passed through agent and gate: the upstream saw EOF, its answer arrived"

gate_audit_mark
client silent
took=$(took_ms)
((took >= 1900 && took < 10000)) || tg_fail "a silent connection was closed after $took ms (gate idle_ms 2000)"
gate_audit_expect event=$GATE_EV_CLOSE identity=$API "reason=idle timeout" bytes_in=0 bytes_out=0
jq -e '.duration_ms >= 2000' <<<"$(close_record)" >/dev/null || tg_fail "idle close record: $(close_record)"
echo "ok: the gate closed a silent tunnel after $took ms: $(close_record | jq -c '{reason, duration_ms}')"
# half-closed by the client (its end reached the upstream), then nothing
# either way: the gate's limit still ends it, before the upstream's 8 s
gate_audit_mark
client halfclose-silent
took=$(took_ms)
((took >= 1900 && took < 6000)) || tg_fail "a half-closed silent tunnel was closed after $took ms (gate idle_ms 2000)"
gate_audit_expect event=$GATE_EV_CLOSE identity=$API "reason=idle timeout" bytes_in=4 bytes_out=0
echo "ok: the gate closed a half-closed quiet tunnel after $took ms"

gate_audit_mark
client trickle
gate_audit_expect event=$GATE_EV_CLOSE identity=$API "reason=both sides closed" bytes_in=12
gate_audit_none event=$GATE_EV_CLOSE "reason=idle timeout"
gate_audit_mark
client tick
gate_audit_expect event=$GATE_EV_CLOSE identity=$API "reason=the upstream closed" bytes_in=4 bytes_out=10
gate_audit_none event=$GATE_EV_CLOSE "reason=idle timeout"
echo "ok: the gate's idle timeout counts bytes either way, not the connection's age"
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC"
gate_stop
((GATE_RC == 0)) || tg_fail "the gate exited $GATE_RC"

# ---- the agent's idle timeout ---------------------------------------------
tg_expect_exit 2 "--idle-timeout-ms: '0' is not a number of milliseconds" "$TG" agent \
	--listen 127.0.0.1:1 --upstream https://127.0.0.1:1 --key "$KEY" --ca "$PKI/srvca.pem" \
	--mode tcp --idle-timeout-ms 0
tg_expect_exit 2 "--idle-timeout-ms: '86400001' is not a number" "$TG" agent \
	--listen 127.0.0.1:1 --upstream https://127.0.0.1:1 --key "$KEY" --ca "$PKI/srvca.pem" \
	--mode tcp --idle-timeout-ms 86400001
cat >t.yaml <<EOF
upstream: https://127.0.0.1:1
key: "$KEY"
cert: $PKI/hsm-api.pem
ca: $PKI/srvca.pem
server_name: localhost
mode: tcp
idle_timeout_ms: 2500
listeners:
  - listen: 127.0.0.1:1
  - listen: 127.0.0.1:2
    idle_timeout_ms: 1s
EOF
tg_expect_exit 1 "t.yaml line 11" "$TG" agent --config t.yaml --check
grep -qF "idle_timeout_ms: '1s' is not a number of milliseconds from 1 to 86400000" err ||
	tg_fail "bad idle_timeout_ms: $(cat err)"
sed -i '$d' t.yaml
"$TG" agent --config t.yaml --check >out 2>err || tg_fail "idle_timeout_ms in --config: $(cat err)"
grep -q "idle timeout 2500 ms" err out || tg_fail "--check does not show the idle timeout: $(cat out err)"
"$TG" agent --help | grep -q -- "--idle-timeout-ms MS" || tg_fail "--help lacks --idle-timeout-ms"
echo "ok: the agent's idle timeout configurable by flag and file, bad values refused"

gate_config 60000
GATE_CONFIG=$TG_TMP/gate.yaml gate_start
agent_start --key "$KEY" --cert "$PKI/hsm-api.pem" --mode tcp --idle-timeout-ms 1500

gate_audit_mark
client silent
took=$(took_ms)
((took >= 1400 && took < 10000)) || tg_fail "a silent connection was closed after $took ms (agent --idle-timeout-ms 1500)"
tg_wait_until 10 grep -q "idle timeout" "$AGENT_LOG" || tg_fail "the agent's log does not say why it closed: $(cat "$AGENT_LOG")"
grep -q "listener main: tcp connection closed: no byte either way for 1500 ms (idle timeout, --idle-timeout-ms)" "$AGENT_LOG" ||
	tg_fail "the agent's idle line: $(grep idle "$AGENT_LOG")"
gate_audit_expect event=$GATE_EV_CLOSE identity=$API bytes_in=0
gate_audit_none event=$GATE_EV_CLOSE "reason=idle timeout"
echo "ok: the agent closed a silent tunnel after $took ms (the gate's close: $(close_record | jq -r .reason))"

# half-closed by the client, then nothing either way: still idle
gate_audit_mark
n0=$(grep -c ' eof after 4$' "$UPLOG" || true)
client halfclose-silent
took=$(took_ms)
# before the upstream's own end at 8 s: the agent's limit ended it
((took >= 1400 && took < 6000)) || tg_fail "a half-closed silent connection was closed after $took ms (agent --idle-timeout-ms 1500)"
(($(grep -c ' eof after 4$' "$UPLOG") == n0 + 1)) || tg_fail "the upstream did not see the client's end: $(cat "$UPLOG")"
# the gate saw the client's end (it read all of it) and records the
# connection once the upstream ends too
gate_audit_expect event=$GATE_EV_CLOSE identity=$API bytes_in=4 bytes_out=0
echo "ok: a half-closed tunnel with nothing moving is closed after $took ms too"

gate_audit_mark
client trickle
gate_audit_expect event=$GATE_EV_CLOSE identity=$API "reason=both sides closed" bytes_in=12
client tick
gate_audit_expect event=$GATE_EV_CLOSE identity=$API "reason=the upstream closed" bytes_in=4 bytes_out=10
echo "ok: the agent's idle timeout counts bytes either way, not the connection's age"
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC"
gate_stop
((GATE_RC == 0)) || tg_fail "the gate exited $GATE_RC"
"$TG" audit verify "$TG_TMP/audit.log" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TG_TMP"/agent.*.log "$TG_TMP"/gate.*.log ||
	tg_fail "a sanitizer found a fault (above)"
echo PASS
