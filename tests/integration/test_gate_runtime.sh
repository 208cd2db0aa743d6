#!/usr/bin/env bash
# test_gate_runtime.sh — the running gate (proxy.c, server.c, conn.c,
# tcp.c, upstream.c) against upstreams that answer oddly and set-ups that
# cannot work, each case with the client's outcome, the audit record and,
# where the gate says it, its log line:
#   - an interim 103 is relayed to an HTTP/1.1 client before the 200 (not
#     to an HTTP/1.0 one);
#   - a 101 nobody asked for, a status line that is not HTTP: 502 with the
#     reason, an "upstream-error" record (kind broken) and the metric;
#   - a chunked body that breaks after the head: the client's connection is
#     cut, the record keeps the upstream's status;
#   - a listener on [::1]: the log names the bound address, the records the
#     client's [v6]:port; a SIGHUP rotation while a directory holds the audit
#     log's name: logged, records go on in the old file, the next rotation
#     recovers;
#   - a pooled upstream connection that closes, or sends bytes, while idle:
#     dropped, the next request gets a 200 on another connection;
#   - an upstream name that does not resolve: 502 naming it; an https
#     upstream that closes in the TLS handshake: 502 with OpenSSL's reason;
#   - tcp mode with an upstream that refuses: the client is closed, the
#     records say connect allow then upstream-error refused; one that
#     resets the tunnel: closed, its close record says the upstream broke;
#   - a listener address in use or unresolvable: exit 1 naming it; an
#     upstream CA file with no certificate: --check refuses it;
#   - a SIGHUP while the server key is not the certificate's: the reload is
#     refused (log and metric), the gate keeps serving with the old one.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
ID=spiffe://$TD/dev/alice

# ---- the odd upstream -------------------------------------------------------
setpriv --pdeathsig TERM "$GATE_PYTHON" "$TG_SOURCE_DIR/tests/integration/gate_runtime_upstream.py" \
	"$TG_TMP/raw.port" 2>raw.err &
RAW_PID=$!
tg_on_exit gate__kill "$RAW_PID"
tg_wait_until 30 test -s raw.port || tg_fail "the raw upstream did not start: $(cat raw.err)"
RAW_PORT=$(cat raw.port)
CLOSE_PORT=$(cat raw.port.close)
cat >policy.yaml <<EOF
upstreams:
  nohost: http://no-such-host.invalid:8080
  closer: https://127.0.0.1:$CLOSE_PORT
routes:
  - name: closer
    paths: ["/tlsclose"]
    upstream: closer
    allow:
      - identity: "spiffe://$TD/dev/*"
  - name: nohost
    paths: ["/nohost"]
    upstream: nohost
    allow:
      - identity: "spiffe://$TD/dev/*"
  - name: raw
    paths: ["/interim", "/unasked101", "/garbage", "/badchunk", "/ok", "/conn", "/idleclose", "/idlejunk"]
    allow:
      - identity: "spiffe://$TD/dev/*"
EOF
GATE_UPSTREAM=http://127.0.0.1:$RAW_PORT gate_start --upstream-ca "$PKI/srvca.pem"
UP=http://127.0.0.1:$RAW_PORT

# rcurl ARGS... PATH: curl as alice (software key file) through the gate
rcurl()
{
	local -a a=("$@")
	local last=$((${#a[@]} - 1))
	a[last]=$(gate_url "${a[last]}")
	curl -sS --max-time 20 --cacert "$PKI/srvca.pem" --cert "$PKI/alice.pem" --key "$PKI/leaf.key" "${a[@]}"
}

# ---- an interim response ------------------------------------------------------
gate_audit_mark
code=$(rcurl -D hdr.txt -o body.txt -w '%{http_code}' /interim) || tg_fail "curl /interim failed"
[[ $code == 200 && $(cat body.txt) == final ]] || tg_fail "/interim: $code $(cat body.txt)"
grep -q '^HTTP/1.1 103' hdr.txt || tg_fail "the 103 was not relayed: $(cat hdr.txt)"
grep -qi '^link: </s.css>; rel=preload' hdr.txt || tg_fail "the 103's Link header is missing: $(cat hdr.txt)"
[[ $(grep -c '^HTTP/' hdr.txt) == 2 ]] || tg_fail "want 103 then 200: $(cat hdr.txt)"
gate_audit_expect event=$GATE_EV_RESP path=/interim status=200 route=raw identity=$ID
# HTTP/1.0 knows no interim responses: the client gets the 200 only
out=$(gate_py alice raw 'GET /interim HTTP/1.0\r\nHost: localhost\r\n\r\n')
[[ $(jq -sr 'map(select(.status) | .status) | join(" ")' <<<"$out") == 200 ]] ||
	tg_fail "HTTP/1.0 /interim: $out"
echo "ok: a 103 is relayed to HTTP/1.1 clients before the 200, not to HTTP/1.0 ones"

# ---- responses that cannot be relayed: 502 ---------------------------------------
n0=$(gate_metric "tokengate_upstream_errors_total{upstream=\"$UP\",kind=\"broken\"}")
n0=${n0:-0}
gate_audit_mark
code=$(rcurl -o body.json -w '%{http_code}' /unasked101) || tg_fail "curl /unasked101 failed"
[[ $code == 502 ]] || tg_fail "/unasked101: status $code, want 502: $(cat body.json)"
want="the upstream's response could not be relayed (or it switched protocols unasked)"
[[ $(jq -r .reason body.json) == "$want" ]] || tg_fail "/unasked101 body: $(cat body.json)"
gate_audit_expect event=$GATE_EV_UPERR path=/unasked101 kind=broken status=502 "upstream=$UP" \
	"reason=$want"
echo "ok: a 101 the request did not ask for is a 502 (broken), not a tunnel"

gate_audit_mark
code=$(rcurl -o body.json -w '%{http_code}' /garbage) || tg_fail "curl /garbage failed"
[[ $code == 502 ]] || tg_fail "/garbage: status $code, want 502: $(cat body.json)"
why=$(jq -r .reason body.json)
[[ $why == "the status line is malformed (want: HTTP/1.1 SP code SP reason)" ]] ||
	tg_fail "/garbage body: $(cat body.json)"
gate_audit_expect event=$GATE_EV_UPERR path=/garbage kind=broken status=502 "reason=$why"
echo "ok: an upstream that does not speak HTTP is a 502 with the reader's reason: $why"

gate_audit_mark
rc=0
code=$(rcurl -o body.txt -w '%{http_code}' /badchunk 2>curl.err) || rc=$?
# the head and the bad chunk came together: the client's connection is
# closed with no complete response (never a made-up 502 after the head)
[[ $rc == 52 || $rc == 18 || $rc == 56 ]] || tg_fail "/badchunk: curl exit $rc, status $code: want the connection cut"
[[ $code != 502 ]] || tg_fail "/badchunk: a 502 after the upstream's head"
gate_audit_expect event=$GATE_EV_UPERR path=/badchunk kind=broken status=200 "reason~chunk"
n1=$(gate_metric "tokengate_upstream_errors_total{upstream=\"$UP\",kind=\"broken\"}")
((n1 - n0 == 3)) || tg_fail "broken upstream responses counted $n0 -> $n1, want 3 more"
# the gate goes on serving on a new connection
[[ $(rcurl /ok) == ok ]] || tg_fail "the gate did not serve after the broken responses"
echo "ok: a chunked body that breaks after the head cuts the client's connection; 3 broken counted"

# ---- pooled upstream connections that close or talk while idle ---------------------------
for p in idleclose idlejunk; do
	first=$(rcurl "/$p") || tg_fail "curl /$p failed"
	[[ $first == c* ]] || tg_fail "/$p: $first"
	sleep 0.8 # the upstream closes, or sends bytes nobody asked for
	gate_audit_mark
	body=$(rcurl -w ' %{http_code}' /conn) || tg_fail "curl /conn after /$p failed"
	[[ $body == c*" 200" && ${body% 200} != "$first" ]] ||
		tg_fail "after /$p on upstream connection $first: /conn answered '$body'; want 200 on another one"
	gate_audit_expect event=$GATE_EV_RESP path=/conn status=200
	[[ $(gate__audit_new | jq -c "select(.event == \"$GATE_EV_UPERR\")") == "" ]] ||
		tg_fail "an upstream error after /$p: $(gate__audit_new)"
done
echo "ok: a pooled upstream connection closed or talking while idle is dropped, not reused"

# ---- an upstream name that does not resolve ---------------------------------------------
gate_audit_mark
code=$(rcurl --max-time 40 -o body.json -w '%{http_code}' /nohost) || tg_fail "curl /nohost failed"
[[ $code == 502 ]] || tg_fail "/nohost: status $code, want 502: $(cat body.json)"
why=$(jq -r .reason body.json)
[[ $why == "cannot resolve the upstream's host: "* ]] || tg_fail "/nohost body: $(cat body.json)"
gate_audit_expect event=$GATE_EV_UPERR path=/nohost route=nohost kind=refused status=502 \
	upstream=http://no-such-host.invalid:8080 "reason=$why"
echo "ok: an upstream whose name does not resolve: 502 naming it ($why)"

# ---- an https upstream that closes during the TLS handshake ------------------------------
gate_audit_mark
code=$(rcurl -o body.json -w '%{http_code}' /tlsclose) || tg_fail "curl /tlsclose failed"
[[ $code == 502 ]] || tg_fail "/tlsclose: status $code, want 502: $(cat body.json)"
why=$(jq -r .reason body.json)
[[ $why == "TLS handshake with the upstream failed: "*"unexpected eof while reading" ]] ||
	tg_fail "/tlsclose body: $(cat body.json)"
gate_audit_expect event=$GATE_EV_UPERR path=/tlsclose route=closer kind=refused status=502 \
	"upstream=https://127.0.0.1:$CLOSE_PORT" "reason=$why"
echo "ok: an https upstream that closes in the handshake: 502 ($why)"

# ---- a reload whose server key is not the certificate's -------------------------------
cp "$PKI/server.key" server.key.good
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/server.key" 2>/dev/null
chmod 600 "$PKI/server.key"
[[ $(gate_reload) == refused ]] || tg_fail "a reload with another server key was not refused: $(tail -3 "$GATE_LOG")"
grep -qF "refused, the previous configuration stays in use: server key '$PKI/server.key' is not the key of server certificate '$PKI/server.pem'" "$GATE_LOG" ||
	tg_fail "the log does not say why the reload was refused: $(tail -3 "$GATE_LOG")"
[[ $(gate_metric 'tokengate_reloads_total{result="failed"}') -ge 1 ]] ||
	tg_fail "the refused reload is not counted: $(curl -sS "http://$GATE_ADMIN/metrics" | grep reload)"
[[ $(rcurl /ok) == ok ]] || tg_fail "the gate stopped serving after a refused reload"
cp server.key.good "$PKI/server.key"
[[ $(gate_reload) == ok ]] || tg_fail "the reload with the right key again was refused: $(tail -3 "$GATE_LOG")"
echo "ok: a reload with a key that is not the certificate's is refused, the old set-up serves on"

# ---- start-up refusals ----------------------------------------------------------------
busy=$GATE_PORT
flags=(--cert "$PKI/server.pem" --key "$PKI/server.key" --client-ca "$PKI/ca/ca.pem"
	--upstream "$UP" --policy policy.yaml --audit "$TG_TMP/refused.log")
tg_expect_exit 1 "cannot listen on 127.0.0.1:$busy: Address already in use; stop what holds that address or choose another" \
	"$TG" gate --listen "127.0.0.1:$busy" "${flags[@]}" --upstream-ca "$PKI/srvca.pem"
tg_expect_exit 1 "cannot resolve no-such-host.invalid:4433: " \
	"$TG" gate --listen no-such-host.invalid:4433 "${flags[@]}" --upstream-ca "$PKI/srvca.pem"
grep -qF "give an address of this machine" err || tg_fail "no fix in: $(cat err)"
echo "-----BEGIN CERTIFICATE-----" >noca.pem
tg_expect_exit 1 "upstream CA file '$TG_TMP/noca.pem' holds no usable certificate; give a PEM bundle" \
	"$TG" gate --check --listen 127.0.0.1:1 "${flags[@]}" --upstream-ca "$TG_TMP/noca.pem"
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
[[ ! -e refused.log ]] || tg_fail "a gate that could not start wrote an audit log"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: a busy or unresolvable listener address and an empty upstream CA file are refused"

# ---- a listener on [::1] --------------------------------------------------------------
if python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	gate_ports
	P6=$(tg_free_port_pair)
	cat >v6.yaml <<EOF
listeners:
  - name: v6
    listen: "[::1]:$P6"
    upstream: $UP
tls: {cert: $PKI/server.pem, key: $PKI/server.key, client_ca: [$PKI/ca/ca.pem]}
policy: $TG_TMP/policy.yaml
upstream_ca: $PKI/srvca.pem
audit: {file: $TG_TMP/v6.log, fsync: never}
admin: $GATE_ADMIN
workers: 1
EOF
	GATE_AUDIT=$TG_TMP/v6.log
	GATE_PORT=$P6 GATE_CONFIG=$TG_TMP/v6.yaml gate_start
	grep -qF "listener v6 on [::1]:$P6 (mode http" "$GATE_LOG" ||
		tg_fail "the log does not name the bound [::1] address: $(cat "$GATE_LOG")"
	gate_audit_mark
	body=$(curl -sS --max-time 20 --cacert "$PKI/srvca.pem" --cert "$PKI/alice.pem" --key "$PKI/leaf.key" \
		--connect-to "localhost:$P6:[::1]:$P6" "https://localhost:$P6/ok") || tg_fail "curl over ::1 failed"
	[[ $body == ok ]] || tg_fail "over ::1: $body"
	gate_audit_expect event=$GATE_EV_RESP path=/ok status=200 listener=v6 "peer~[::1]:"
	# rotation while the new file cannot be opened (a directory took its
	# name): the reload is refused, the reopen too; the gate says both and
	# keeps writing the old file
	v6get() { curl -sS --max-time 20 --cacert "$PKI/srvca.pem" --cert "$PKI/alice.pem" \
		--key "$PKI/leaf.key" --connect-to "localhost:$P6:[::1]:$P6" "https://localhost:$P6$1"; }
	mv v6.log v6.log.1
	mkdir v6.log
	[[ $(gate_reload) == refused ]] || tg_fail "a reload with a directory as the audit log was not refused: $(tail -3 "$GATE_LOG")"
	grep -qF "refused, the previous configuration stays in use: $TG_TMP/v6.yaml line 8: audit.file: audit log '$TG_TMP/v6.log' is not a regular file" "$GATE_LOG" ||
		tg_fail "the log does not say why the reload was refused: $(tail -3 "$GATE_LOG")"
	grep -qF "tokengate gate: audit log not reopened, still writing the old file: cannot open audit log '$TG_TMP/v6.log': Is a directory" "$GATE_LOG" ||
		tg_fail "the log does not say the audit log was not reopened: $(tail -3 "$GATE_LOG")"
	GATE_AUDIT=$TG_TMP/v6.log.1
	gate_audit_mark
	[[ $(v6get /ok) == ok ]] || tg_fail "the gate stopped serving when the rotation failed"
	gate_audit_expect event=$GATE_EV_RESP path=/ok status=200 listener=v6
	rmdir v6.log
	[[ $(gate_reload) == ok ]] || tg_fail "the second reload was refused: $(tail -3 "$GATE_LOG")"
	[[ $(grep -c "audit log not reopened" "$GATE_LOG") == 1 ]] ||
		tg_fail "the second rotation failed too: $(tail -3 "$GATE_LOG")"
	n_old=$(wc -l <v6.log.1)
	[[ $(v6get /ok) == ok ]] || tg_fail "no answer after the rotation"
	GATE_AUDIT=$TG_TMP/v6.log
	GATE_AUDIT_MARK=0
	gate_audit_expect event=$GATE_EV_RESP path=/ok status=200 listener=v6
	[[ $(wc -l <v6.log.1) == "$n_old" ]] || tg_fail "records still went to the rotated file"
	gate_stop
	[[ $GATE_RC == 0 ]] || tg_fail "the [::1] gate exited $GATE_RC on SIGTERM"
	echo "ok: a listener on [::1]: bound address in the log, [v6]:port peers in the records;"
	echo "ok: a rotation that cannot open the new file keeps the old one, the next one recovers"
else
	echo "skipped: no IPv6 loopback here"
fi

# ---- tcp mode, the upstream refuses ----------------------------------------------------
cat >tcp.yaml <<EOF
routes:
  - name: tunnel
    paths: ["/"]
    allow:
      - identity: "spiffe://$TD/dev/*"
EOF
gate_ports
GATE_AUDIT=$TG_TMP/tcp.log GATE_POLICY=$TG_TMP/tcp.yaml GATE_UPSTREAM=tcp://127.0.0.1:1 gate_start --mode tcp
gate_audit_mark
rc=0
out=$(gate_py alice req /ok) || rc=$?
[[ $rc == 4 ]] || tg_fail "tcp mode, upstream refusing: want the connection closed (exit 4), got $rc: $out"
gate_audit_expect event=$GATE_EV_TCP decision=allow route=tunnel identity=$ID
gate_audit_expect event=$GATE_EV_UPERR kind=refused route=tunnel upstream=tcp://127.0.0.1:1 \
	"reason=cannot connect to the upstream: Connection refused"
[[ $(gate__audit_new | jq -c "select(.event == \"$GATE_EV_CLOSE\")") == "" ]] ||
	tg_fail "a close record for a tunnel that never opened: $(gate__audit_new)"
[[ $(gate_metric 'tokengate_upstream_errors_total{upstream="tcp://127.0.0.1:1",kind="refused"}') == 1 ]] ||
	tg_fail "the refused tunnel is not counted: $(curl -sS "http://$GATE_ADMIN/metrics" | grep upstream_errors)"
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the tcp gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: tcp mode with a refusing upstream: closed, connect allow then upstream-error refused"

# ---- tcp mode, the upstream resets the tunnel ---------------------------------------------
gate_ports
GATE_AUDIT=$TG_TMP/tcp2.log GATE_POLICY=$TG_TMP/tcp.yaml GATE_UPSTREAM=tcp://127.0.0.1:$RAW_PORT gate_start --mode tcp
gate_audit_mark
rc=0
out=$(gate_py alice raw 'GET /rst HTTP/1.1\r\nHost: localhost\r\n\r\n') || rc=$?
[[ $(jq -s 'map(select(.status)) | length' <<<"$out") == 0 ]] || tg_fail "a reset tunnel answered: $out"
gate_audit_expect event=$GATE_EV_TCP decision=allow route=tunnel identity=$ID
gate_audit_expect event=$GATE_EV_CLOSE route=tunnel "reason=the upstream connection broke"
[[ $(gate_metric "tokengate_upstream_errors_total{upstream=\"tcp://127.0.0.1:$RAW_PORT\",kind=\"broken\"}") == 1 ]] ||
	tg_fail "the reset tunnel is not counted: $(curl -sS "http://$GATE_ADMIN/metrics" | grep upstream_errors)"
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the tcp gate exited $GATE_RC on SIGTERM"
echo "ok: tcp mode, the upstream resets: the tunnel closed, its close record says the upstream broke"
