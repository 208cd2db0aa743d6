#!/usr/bin/env bash
# test_gate_smoke.sh — the `tokengate gate` process end to end in tcp mode,
# with nothing mocked: a CA made by `tokengate ca init`, a client
# certificate it issued for a SoftHSM2 key (enroll + ca issue), real curl
# using that key through OpenSSL's pkcs11 engine, the gate with a PEM
# server key splicing to a small python upstream. Checks: --help; --check
# (a summary, or the error and exit 1); start ("ready"); a second gate on
# the same port refused; an allowed connection spliced both ways (a 2 MiB
# upload through the backpressure path, its SHA-256 echoed back) with its
# "connect" and "close" records; a handshake without a client certificate
# refused with a "tls-reject" record; SIGHUP with a broken policy keeping
# the old one; SIGHUP with a policy that denies while a connection in
# flight completes; SIGTERM exiting 0; the
# audit chain intact; the gate again with its server key on SoftHSM2
# (signing off the loop) serving four clients at once; the CRL file
# replaced on disk loaded without SIGHUP (the revoked client refused); an
# unwritable audit log (a file size limit) failing closed, then recovering
# after rotation and SIGHUP; SIGTERM letting a connection in flight
# finish; limits from a --config file: max_conns, the
# handshake timeout and the tcp idle timeout, each with its record.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
tg_require_cmd pkcs11-tool openssl curl python3 jq
ENGINE=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
[[ -f $ENGINE ]] || tg_skip "OpenSSL's pkcs11 engine ($ENGINE) is missing; install libengine-pkcs11-openssl"
cd "$TG_TMP"
TD=example.org
ID="spiffe://$TD/svc/api"

# ---- a real CA, a client certificate for a SoftHSM2 key -------------------
tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust ca
KEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private?module-path=$TG_SOFTHSM2_MODULE"
"$TG" enroll --key "$KEY" --id "$ID" --out-dir req >/dev/null
"$TG" ca issue --dir ca --csr req/csr.pem --id "$ID" --hsm-key "$KEY" --out client.pem >/dev/null
# the gate's own server certificate and PEM key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
	-out srv.pem -days 1 -subj /CN=gate -addext subjectAltName=IP:127.0.0.1 2>/dev/null
chmod 600 srv.key
# curl signs with the token key through the engine
cat >engine.cnf <<EOF
openssl_conf = oc
[oc]
engines = es
[es]
pkcs11 = p11
[p11]
engine_id = pkcs11
MODULE_PATH = $TG_SOFTHSM2_MODULE
init = 0
EOF
CKEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private;pin-value=$TG_SOFTHSM_PIN"

# ---- the upstream: reads an HTTP request with a body, answers with the
# body's length and SHA-256, then closes ----------------------------------
cat >upstream.py <<'EOF'
import hashlib, socket, sys, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def serve(c):
    data = b""
    while b"\r\n\r\n" not in data:
        b = c.recv(65536)
        if not b:
            return c.close()
        data += b
    head, body = data.split(b"\r\n\r\n", 1)
    if b" /silent " in head.split(b"\r\n")[0]:
        time.sleep(60)  # never answers: the gate's idle timeout ends it
    if b" /slow" in head.split(b"\r\n")[0]:
        time.sleep(2)  # a connection still in flight at a reload or a stop
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        b = c.recv(65536)
        if not b:
            break
        body += b
    msg = b"%s %d %s\n" % (head.split(b"\r\n")[0], len(body), hashlib.sha256(body).hexdigest().encode())
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(msg), msg))
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
setpriv --pdeathsig TERM python3 upstream.py up.port &
UP_PID=$!
tg_on_exit kill "$UP_PID"
tg_wait_until 10 test -s up.port || tg_fail "the upstream did not start"
UPORT=$(cat up.port)

PORT=$(tg_free_port_pair)
APORT=$((PORT + 1))
cat >policy.yaml <<EOF
routes:
  - name: tunnel
    paths: ["/"]
    allow:
      - identity: "$ID"
EOF
cp policy.yaml good-policy.yaml
"$TG" ca crl --dir ca --out crl.pem
GATE=(--crl crl.pem --listen "127.0.0.1:$PORT" --mode tcp --cert srv.pem --key srv.key --client-ca ca/ca.pem
	--upstream "tcp://127.0.0.1:$UPORT" --policy policy.yaml --audit audit.log
	--admin "127.0.0.1:$APORT" --workers 2)

# ---- --help, --check ------------------------------------------------------
"$TG" gate --help >out 2>err || tg_fail "gate --help failed: $(cat err)"
grep -q -- "--listen" out || tg_fail "gate --help does not show --listen: $(cat out)"
"$TG" gate "${GATE[@]}" --check >out 2>err || tg_fail "gate --check failed: $(cat err)"
grep -qF "configuration OK: 1 listener (main on 127.0.0.1:$PORT, mode tcp" out ||
	tg_fail "gate --check summary: $(cat out)"
echo "ok: --check: $(cat out)"
[[ ! -e audit.log ]] || tg_fail "--check created the audit log"
printf 'routes:\n  - name: x\n    paths: ["/"]\n    allow: []\n' >bad-policy.yaml
tg_expect_exit 1 "bad-policy.yaml line" "$TG" gate "${GATE[@]/policy.yaml/bad-policy.yaml}" --check
tg_expect_exit 2 "tokengate gate" "$TG" gate --no-such-flag

# ---- start ---------------------------------------------------------------
setpriv --pdeathsig TERM "$TG" gate "${GATE[@]}" 2>gate.log &
GPID=$!
stop_gate() { kill -9 "$GPID" 2>/dev/null || true; }
tg_on_exit stop_gate
# term_gate: SIGTERM must stop the gate with exit 0
term_gate() {
	local rc=0
	kill -TERM "$GPID"
	wait "$GPID" || rc=$?
	[[ $rc -eq 0 ]] || tg_fail "gate exited $rc on SIGTERM: $(cat gate.log)"
}
tg_wait_until 20 grep -q "tokengate gate: ready" gate.log || tg_fail "gate not ready: $(cat gate.log)"
grep -qF "tokengate gate: listener main on 127.0.0.1:$PORT (mode tcp, upstream tcp://127.0.0.1:$UPORT)" gate.log ||
	tg_fail "no listener line: $(cat gate.log)"
curl -fsS "http://127.0.0.1:$APORT/readyz" >/dev/null || tg_fail "/readyz is not 200"
# SO_REUSEPORT must not let a second gate share the port
tg_expect_exit 1 "cannot listen on 127.0.0.1:$PORT: Address already in use" \
	"$TG" gate "${GATE[@]/audit.log/audit2.log}"
[[ ! -e audit2.log ]] || tg_fail "a gate refused for its port opened its audit log"

client() {
	OPENSSL_CONF=$TG_TMP/engine.cnf curl -sS --max-time 20 --cacert srv.pem --engine pkcs11 \
		--key-type ENG --key "$CKEY" --cert client.pem "$@"
}
# the n-th record with event $1 (jq selection over the audit log)
records() { jq -c "select(.event == \"$1\")" audit.log; }

# ---- an allowed connection, both ways, 2 MiB up --------------------------
head -c $((2 * 1024 * 1024)) /dev/urandom >big
want="POST /upload HTTP/1.1 2097152 $(sha256sum big | cut -d' ' -f1)"
client --data-binary @big "https://127.0.0.1:$PORT/upload" >out 2>err || tg_fail "curl through the gate: $(cat err)"
[[ $(cat out) == "$want" ]] || tg_fail "spliced answer: got '$(cat out)', want '$want'"
tg_wait_until 10 grep -q '"event":"close"' audit.log || tg_fail "no close record: $(cat audit.log)"
records connect | tail -1 >rec
jq -e --arg id "$ID" '.decision == "allow" and .route == "tunnel" and .identity == $id and
	.provenance.level == "hsm-operator" and .method == "CONNECT" and .listener == "main"' rec >/dev/null ||
	tg_fail "connect record: $(cat rec)"
records close | tail -1 >rec
jq -e '.bytes_in > 2097152 and .bytes_out > 100 and .duration_ms >= 0' rec >/dev/null ||
	tg_fail "close record: $(cat rec)"
echo "ok: an allowed connection is spliced both ways and audited: $(cat rec)"

# ---- no client certificate: the handshake fails, one tls-reject record ---
rc=0
curl -sS --max-time 10 --cacert srv.pem "https://127.0.0.1:$PORT/" >out 2>err || rc=$?
[[ $rc -ne 0 ]] || tg_fail "a client without a certificate got through: $(cat out)"
tg_wait_until 10 grep -q '"event":"tls-reject"' audit.log || tg_fail "no tls-reject record: $(cat audit.log)"
records tls-reject | tail -1 >rec
jq -e '.identity == null and (.reason | length > 0) and .listener == "main"' rec >/dev/null ||
	tg_fail "tls-reject record: $(cat rec)"
echo "ok: no client certificate: curl exit $rc, $(cat rec)"

# ---- SIGHUP with a broken policy: the old one stays ----------------------
cp bad-policy.yaml policy.yaml
kill -HUP "$GPID"
tg_wait_until 10 grep -q "reload (SIGHUP) refused, the previous configuration stays in use" gate.log ||
	tg_fail "a broken policy was not refused: $(cat gate.log)"
grep -q "policy.yaml line" gate.log || tg_fail "the refusal does not name the file and line: $(cat gate.log)"
client --data-binary x "https://127.0.0.1:$PORT/after-bad-reload" >out 2>err ||
	tg_fail "after a refused reload: $(cat err)"
grep -q "^POST /after-bad-reload" out || tg_fail "after a refused reload: $(cat out)"
echo "ok: a broken policy on SIGHUP keeps the old one"

# ---- SIGHUP with a policy that denies this identity ----------------------
# in_flight NAME: a slow request in the background, once the gate let it through
in_flight() {
	local n
	n=$(records connect | wc -l)
	client --data-binary x "https://127.0.0.1:$PORT/$1" >"$1.out" 2>"$1.err" &
	SLOW=$!
	tg_wait_until 10 more_connects "$n" || tg_fail "$1: no connect record"
}
more_connects() { (($(records connect | wc -l) > $1)); }
in_flight slow-reload
sed "s|$ID|spiffe://$TD/svc/other|" good-policy.yaml >policy.yaml
kill -HUP "$GPID"
tg_wait_until 10 grep -q "reload (SIGHUP): configuration 2 in use" gate.log ||
	tg_fail "reload not done: $(cat gate.log)"
wait "$SLOW" || tg_fail "a connection in flight did not survive the reload: $(cat slow-reload.err)"
grep -q "^POST /slow-reload " slow-reload.out || tg_fail "in flight across the reload: $(cat slow-reload.out)"
echo "ok: a connection in flight during the reload completes"
rc=0
client --data-binary x "https://127.0.0.1:$PORT/denied" >out 2>err || rc=$?
! grep -q "^POST" out || tg_fail "denied identity reached the upstream: $(cat out)"
records connect | tail -1 >rec
jq -e --arg id "$ID" '.decision == "deny" and .route == "tunnel" and .identity == $id and
	(.reason | contains("has no allow entry"))' rec >/dev/null || tg_fail "deny record: $(cat rec)"
echo "ok: after reload the identity is denied (curl exit $rc): $(cat rec)"
curl -fsS "http://127.0.0.1:$APORT/metrics" >metrics || tg_fail "/metrics"
grep -q '^tokengate_' metrics || tg_fail "no tokengate_ metrics: $(head metrics)"

# ---- SIGTERM: exit 0 -------------------------------------------------------
term_gate
grep -q "tokengate gate: stopped" gate.log || tg_fail "no stop line: $(cat gate.log)"
"$TG" audit verify --genesis audit.log || tg_fail "audit chain broken"
echo "ok: SIGTERM stops the gate with exit 0; the audit chain is intact"

# ---- the server key on SoftHSM2: handshakes sign off the loop ------------
# (SSL_MODE_ASYNC: conn.c waits on the signing job's fd); four clients at once
SKEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p384;type=private?module-path=$TG_SOFTHSM2_MODULE"
OPENSSL_CONF=$TG_TMP/engine.cnf openssl req -new -x509 -engine pkcs11 -keyform engine \
	-key "pkcs11:token=$TG_SOFTHSM_TOKEN;object=p384;type=private;pin-value=$TG_SOFTHSM_PIN" \
	-subj /CN=gate -addext subjectAltName=IP:127.0.0.1 -days 1 -out hsm-srv.pem 2>/dev/null
cp good-policy.yaml policy.yaml
HSM=("${GATE[@]/srv.pem/hsm-srv.pem}")
HSM=("${HSM[@]/srv.key/$SKEY}")
# the previous gate's "ready" must not count for this one
: >gate.log
setpriv --pdeathsig TERM "$TG" gate "${HSM[@]}" 2>gate.log &
GPID=$!
tg_wait_until 20 grep -q "tokengate gate: ready" gate.log || tg_fail "gate (HSM key) not ready: $(cat gate.log)"
# one curl, four connections at once (one engine: SoftHSM2 is not opened
# by four processes at the same time)
args=()
for i in 1 2 3 4; do
	args+=("https://127.0.0.1:$PORT/hsm$i" -o "hsm$i.out")
done
OPENSSL_CONF=$TG_TMP/engine.cnf curl -sS --max-time 20 --cacert hsm-srv.pem --engine pkcs11 \
	--key-type ENG --key "$CKEY" --cert client.pem --data-binary x -Z --parallel-immediate \
	"${args[@]}" 2>err || tg_fail "clients with the HSM server key: $(cat err)"
for i in 1 2 3 4; do
	grep -q "^POST /hsm$i HTTP/1.1 1 " "hsm$i.out" || tg_fail "client $i: $(cat "hsm$i.out")"
done
echo "ok: a server key on SoftHSM2 serves four clients at once"

# ---- the CRL file is watched: a revocation takes effect without SIGHUP -----
"$TG" ca revoke --dir ca --serial "$(openssl x509 -in client.pem -noout -serial | cut -d= -f2)" >/dev/null
"$TG" ca crl --dir ca --out crl.new
mv crl.new crl.pem
tg_wait_until 10 grep -q "reload (the CRL file changed): configuration 2 in use" gate.log ||
	tg_fail "the new CRL was not loaded: $(cat gate.log)"
rc=0
OPENSSL_CONF=$TG_TMP/engine.cnf curl -sS --max-time 20 --cacert hsm-srv.pem --engine pkcs11 \
	--key-type ENG --key "$CKEY" --cert client.pem --data-binary x "https://127.0.0.1:$PORT/revoked" \
	>out 2>err || rc=$?
! grep -q "^POST" out || tg_fail "a revoked certificate reached the upstream: $(cat out)"
tg_wait_until 10 grep -q 'is revoked by the configured CRL' audit.log || tg_fail "no revocation record: $(tail -2 audit.log)"
records tls-reject | grep 'is revoked by the configured CRL' | tail -1 >rec
jq -e '.reason | contains("is revoked by the configured CRL")' rec >/dev/null || tg_fail "revoked: $(cat rec)"
echo "ok: a CRL replaced on disk is loaded within seconds; the revoked client is refused: $(jq -r .reason rec)"
term_gate
"$TG" audit verify audit.log >/dev/null || tg_fail "audit chain broken across restarts"
echo "ok: the audit chain continues across restarts"

# ---- the audit log cannot be written: fail closed, then recover ----------
# A file size limit (EFBIG once the log reaches it) stands in for a full
# disk; rotating the log and SIGHUP let it write again.
"$TG" enroll --key "$KEY" --id "$ID" --out-dir req2 >/dev/null
"$TG" ca issue --dir ca --csr req2/csr.pem --id "$ID" --hsm-key "$KEY" --out client.pem >/dev/null
mv audit.log audit.old
: >gate.log
(
	ulimit -f 8
	exec setpriv --pdeathsig TERM "$TG" gate "${GATE[@]:2}" 2>gate.log
) &
GPID=$!
tg_wait_until 20 grep -q "tokengate gate: ready" gate.log || tg_fail "gate (limited) not ready: $(cat gate.log)"
refused=0
for ((i = 0; i < 40; i++)); do
	if ! client --data-binary x "https://127.0.0.1:$PORT/fill$i" >out 2>err || ! grep -q "^POST" out; then
		refused=1
		break
	fi
done
((refused)) || tg_fail "the gate never refused although its audit log cannot grow: $(ls -l audit.log)"
grep -qF "audit log cannot be written: cannot write to audit log 'audit.log'" gate.log ||
	tg_fail "no log line for the audit failure: $(cat gate.log)"
code=$(curl -sS -o ready.txt -w '%{http_code}' "http://127.0.0.1:$APORT/readyz")
[[ $code == 503 ]] && grep -q "audit log cannot be written" ready.txt ||
	tg_fail "/readyz while the audit log fails: $code $(cat ready.txt)"
curl -fsS "http://127.0.0.1:$APORT/metrics" >metrics
grep -Eq '^tokengate_audit_failures_total [1-9]' metrics || tg_fail "audit failures not counted: $(grep audit metrics)"
client --data-binary x "https://127.0.0.1:$PORT/still" >out 2>err || true
! grep -q "^POST" out || tg_fail "a connection was let through without its audit record"
echo "ok: an unwritable audit log refuses connections, says so in the log, /readyz and metrics"
mv audit.log audit.full
kill -HUP "$GPID"
tg_wait_until 10 grep -q "reload (SIGHUP): configuration 2 in use" gate.log || tg_fail "no reload: $(cat gate.log)"
client --data-binary x "https://127.0.0.1:$PORT/again" >out 2>err || tg_fail "after rotation: $(cat err)"
grep -q "^POST /again" out || tg_fail "after rotation: $(cat out)"
grep -q "audit log written again; serving requests" gate.log || tg_fail "no recovery line: $(cat gate.log)"
curl -fsS "http://127.0.0.1:$APORT/readyz" >/dev/null || tg_fail "/readyz not 200 after recovery"
# SIGTERM with a connection in flight: it finishes, then the gate exits 0
in_flight slow-stop
peer=$(records connect | tail -1 | jq -r .peer)
kill -TERM "$GPID"
# while it drains, the listening socket (shared by both workers) is closed:
# a new connection is refused at once, it neither hangs nor gets served
refused_at=
for _ in $(seq 50); do
	if ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
		refused_at=ok
		break
	fi
	sleep 0.02
done
[[ -n $refused_at ]] || tg_fail "the gate still accepted connections 1 s after SIGTERM"
kill -0 "$SLOW" 2>/dev/null || tg_fail "the request in flight ended before the refusal was checked"
term_gate
wait "$SLOW" || tg_fail "a connection in flight was dropped by SIGTERM: $(cat slow-stop.err)"
grep -q "^POST /slow-stop " slow-stop.out || tg_fail "in flight across the stop: $(cat slow-stop.out)"
# its orderly end: the upstream closed after its answer, or curl, done,
# closed first (which comes first is the machine's timing)
jq -e --arg p "$peer" 'select(.event == "close" and .peer == $p and
	(.reason == "the upstream closed" or .reason == "both sides closed"))' audit.log >/dev/null ||
	tg_fail "no close record for the drained connection ($peer): $(records close | tail -2)"
echo "ok: SIGTERM refuses new connections, lets the one in flight finish, then exits 0"
"$TG" audit verify audit.full audit.log >/dev/null 2>err || tg_fail "chain across the rotation: $(cat err)"
echo "ok: after rotation and SIGHUP the gate writes and serves again; the chain spans both files"

# ---- limits from a configuration file: handshake time, connections, idle --
mv audit.log audit.2
cat >gate.yaml <<EOF
listeners:
  - name: main
    listen: 127.0.0.1:$PORT
    mode: tcp
    upstream: tcp://127.0.0.1:$UPORT
tls: {cert: srv.pem, key: srv.key, client_ca: [ca/ca.pem]}
policy: good-policy.yaml
audit: {file: audit.log}
admin: 127.0.0.1:$APORT
workers: 1
limits: {handshake_ms: 1500, idle_ms: 1000, max_conns: 2}
EOF
: >gate.log
setpriv --pdeathsig TERM "$TG" gate --config gate.yaml 2>gate.log &
GPID=$!
tg_wait_until 20 grep -q "tokengate gate: ready" gate.log || tg_fail "gate (gate.yaml) not ready: $(cat gate.log)"
# two silent clients hold both connections; a third is closed at once;
# the two are closed when their handshake time is up
cat >hold.py <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
time.sleep(0.3)
third = socket.create_connection(("127.0.0.1", port))
third.settimeout(1)
try:
    print("third:", "closed" if third.recv(1) == b"" else "data")
except socket.timeout:
    print("third: open")
except ConnectionResetError:
    print("third: closed")
held[0].settimeout(5)
try:
    print("held:", "closed" if held[0].recv(1) == b"" else "data")
except socket.timeout:
    print("held: open")
except ConnectionResetError:
    print("held: closed")
EOF
python3 hold.py "$PORT" >limits.out
grep -qx "third: closed" limits.out || tg_fail "max_conns 2: $(cat limits.out)"
grep -qx "held: closed" limits.out || tg_fail "handshake timeout: $(cat limits.out)"
curl -fsS "http://127.0.0.1:$APORT/metrics" >metrics
grep -q '^tokengate_connections_refused_total{reason="limit"} 1' metrics ||
	tg_fail "the refusal is not counted: $(grep refused metrics)"
tg_wait_until 10 grep -q "did not finish within 1500 ms" audit.log || tg_fail "no handshake timeout record"
# other connections of hold.py may be refused after the silent one: take the timeout's record
records tls-reject | grep 'did not finish within' | tail -1 >rec
jq -e '.reason == "the TLS handshake did not finish within 1500 ms" and .identity == null' rec >/dev/null ||
	tg_fail "handshake timeout record: $(cat rec)"
echo "ok: max_conns refuses a third connection; silent ones are closed: $(jq -r .reason rec)"
rc=0
client --max-time 10 --data-binary x "https://127.0.0.1:$PORT/silent" >out 2>err || rc=$?
[[ $rc -ne 0 && $rc -ne 28 ]] || tg_fail "idle connection: curl exit $rc (28: the gate did not close it)"
records close | tail -1 >rec
jq -e '.reason == "idle timeout" and .duration_ms >= 1000' rec >/dev/null || tg_fail "idle close record: $(cat rec)"
echo "ok: an idle tcp connection is closed after idle_ms: $(jq -c '{reason, duration_ms}' rec)"
term_gate
