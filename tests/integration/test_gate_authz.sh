#!/usr/bin/env bash
# test_gate_authz.sh — `tokengate gate` in authz mode (nginx auth_request
# endpoint) asked by curl the way nginx asks, on a unix socket and on a
# loopback port: allowed (200 with the identity, key, route and injected
# headers), denied by the policy (403 with X-Tokengate-Reason and route),
# missing / garbage / oversized / doubled certificate header, a certificate
# of another CA, a bad URI, a revoked certificate after it was cached
# (refused once the new CRL is loaded, however its header is escaped), the
# audit records (front authz), the cache counters, keep-alive, pipelining
# (also beyond the socket's buffer: the endpoint waits for the client to
# read), a slow head, SIGHUP, the socket file (mode, group,
# removal, a stale one replaced, a live one kept), --dry-run, fail closed
# when the audit log cannot grow, and the configuration refusals (a
# non-loopback address, a group that does not exist or changes on reload).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
GATE_BAD=1 gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
cp "$PKI/crl0.pem" "$PKI/live.crl"

SOCK=$TG_TMP/authz.sock
gate_ports
GATE_CONFIG=$TG_TMP/gate.yaml
cat >"$GATE_CONFIG" <<EOF
listeners:
  - name: authz-unix
    listen: unix:$SOCK
    mode: authz
    group: $(id -gn)
  - name: authz-tcp
    listen: 127.0.0.1:$GATE_PORT
    mode: authz
tls:
  client_ca: [$PKI/ca/ca.pem]
  crl: $PKI/live.crl
policy: $TG_TMP/policy.yaml
audit: {file: $TG_TMP/audit.log}
admin: $GATE_ADMIN
workers: 2
limits: {header_ms: 1500, idle_ms: 20000}
EOF
gate_start

# esc NAME: $PKI/NAME.pem as nginx's $ssl_client_escaped_cert.
esc() { jq -sRr @uri <"$PKI/$1.pem"; }

# ask FRONT CERT METHOD URI [curl args...]: one subrequest; prints
# "STATUS" then the answer's headers (lower-cased names) in $TG_TMP/h.
ask()
{
	local front=$1 cert=$2 method=$3 uri=$4
	shift 4
	local -a c=(curl -sS --max-time 10 -o /dev/null -D "$TG_TMP/h" -w '%{http_code}')
	[[ -z $cert ]] || c+=(-H "X-Tokengate-Client-Cert: $cert")
	[[ -z $method ]] || c+=(-H "X-Original-Method: $method")
	[[ -z $uri ]] || c+=(-H "X-Original-URI: $uri")
	if [[ $front == unix ]]; then
		c+=(--unix-socket "$SOCK" "$@" http://authz/auth)
	else
		c+=("$@" "http://127.0.0.1:$GATE_PORT/auth")
	fi
	"${c[@]}"
}

# hdr NAME: the value of header NAME in the last answer ("" when absent).
hdr() { tr -d '\r' <"$TG_TMP/h" | awk -v n="${1,,}:" 'tolower($1) == n { sub(/^[^:]*: ?/, ""); print; exit }'; }

expect()
{
	local what=$1 want=$2 got=$3
	[[ $got == "$want" ]] || tg_fail "$what: want '$want', got '$got' (headers: $(tr -d '\r' <"$TG_TMP/h" | tr '\n' '|'))"
}

ALICE=$(esc alice)
for front in unix tcp; do
	# allowed: identity, key, route, injected credential
	gate_audit_mark
	st=$(ask $front "$ALICE" POST /v1/chat/completions)
	expect "$front allow" 200 "$st"
	expect "$front identity" "spiffe://$TD/dev/alice" "$(hdr X-Tokengate-Identity)"
	expect "$front key" "level=device-attested; pin=once; touch=never; serial=27182818" "$(hdr X-Tokengate-Key)"
	expect "$front route" completions "$(hdr X-Tokengate-Route)"
	expect "$front injected" "Bearer $GATE_SECRET" "$(hdr Authorization)"
	expect "$front no reason on allow" "" "$(hdr X-Tokengate-Reason)"
	gate_audit_expect event=request front=authz decision=allow route=completions method=POST \
		path=/v1/chat/completions identity="spiffe://$TD/dev/alice" provenance.level=device-attested \
		listener="authz-$front"
	echo "ok: $front: allowed with identity, key, route and the injected header"

	# the URI is normalized as the gate does
	st=$(ask $front "$ALICE" GET '/v1/datasets/../models/x?q=1')
	expect "$front normalized" 200 "$st"
	expect "$front normalized route" models "$(hdr X-Tokengate-Route)"

	# denied by the policy: 403, reason and route, no credential
	gate_audit_mark
	st=$(ask $front "$ALICE" GET /admin/users)
	expect "$front policy deny" 403 "$st"
	expect "$front deny reason" "route admin has no allow entry for spiffe://$TD/dev/alice" "$(hdr X-Tokengate-Reason)"
	expect "$front deny route" admin "$(hdr X-Tokengate-Route)"
	expect "$front deny identity" "" "$(hdr X-Tokengate-Identity)"
	gate_audit_expect event=request front=authz decision=deny route=admin status=403 path=/admin/users \
		identity="spiffe://$TD/dev/alice" 'reason~no allow entry'
	st=$(ask $front "$ALICE" GET /nowhere)
	expect "$front no route" 403 "$st"
	expect "$front no route reason" "no route matches GET /nowhere" "$(hdr X-Tokengate-Reason)"
	expect "$front no route header" "" "$(hdr X-Tokengate-Route)"
	echo "ok: $front: policy denials with reason and route"

	# the certificate header: missing, garbage, not escaped, oversized, two of them
	gate_audit_mark
	st=$(ask $front "" GET /echo)
	expect "$front missing cert" 403 "$st"
	expect "$front missing reason" "no client certificate: the gate requires a token-backed client certificate" "$(hdr X-Tokengate-Reason)"
	gate_audit_expect event=request front=authz decision=deny status=403 identity=null 'reason~no client certificate'
	st=$(ask $front "garbage" GET /echo)
	expect "$front garbage cert" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"does not start with -----BEGIN CERTIFICATE-----"* ]] ||
		tg_fail "$front garbage: reason $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$(tr -d '%' <<<"$ALICE")" GET /echo)
	expect "$front unescaped" 403 "$st"
	st=$(ask $front "${ALICE//%2B/+}" GET /echo)
	expect "$front raw plus" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"nginx escapes every other byte"* || $ALICE != *%2B* ]] ||
		tg_fail "$front raw plus: reason $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$ALICE$(esc bob)" GET /echo)
	expect "$front two certs in one header" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"more than one certificate"* ]] ||
		tg_fail "$front chain: reason $(hdr X-Tokengate-Reason)"
	big=$(printf '%%41%.0s' $(seq 1 4000))
	st=$(ask $front "$big" GET /echo)
	expect "$front oversized cert header" 403 "$st"
	# over the whole head's limit: the reader's refusal is a 403 too, never a 400/431
	huge=$(printf 'A%.0s' $(seq 1 17000))
	st=$(ask $front "$huge" GET /echo)
	expect "$front head over the limit" 403 "$st"
	[[ -n $(hdr X-Tokengate-Reason) ]] || tg_fail "$front head over the limit: no reason"
	# smuggling: a second certificate header (a client's copy) is a deny, either order
	gate_audit_mark
	st=$(ask $front "$ALICE" GET /echo -H "X-Tokengate-Client-Cert: $(esc bob)")
	expect "$front two cert headers" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"2 X-Tokengate-Client-Cert headers"* ]] ||
		tg_fail "$front two headers: reason $(hdr X-Tokengate-Reason)"
	gate_audit_expect event=request front=authz decision=deny identity=null 'reason~2 X-Tokengate-Client-Cert'
	# a client's own identity headers are ignored: only the certificate counts
	st=$(ask $front "$(esc indexer)" GET /v1/models/x -H "X-Tokengate-Identity: spiffe://$TD/dev/alice" \
		-H "X-Tokengate-Key: level=device-attested; pin=always; touch=always; serial=1")
	expect "$front forged identity header" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"needs key level device-attested"* ]] ||
		tg_fail "$front forged: reason $(hdr X-Tokengate-Reason)"
	echo "ok: $front: missing, garbage, oversized, doubled and smuggled certificate headers denied"

	# method and URI headers
	st=$(ask $front "$ALICE" "" /echo)
	expect "$front no method" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"X-Original-Method"* ]] || tg_fail "$front no method: $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$ALICE" GET "")
	expect "$front no uri" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"X-Original-URI"* ]] || tg_fail "$front no uri: $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$ALICE" GET /echo -H "X-Original-URI: /admin")
	expect "$front two uris" 403 "$st"
	gate_audit_mark
	st=$(ask $front "$ALICE" GET '/admin%2fx')
	expect "$front bad uri" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"%2F"* ]] || tg_fail "$front bad uri: $(hdr X-Tokengate-Reason)"
	gate_audit_expect event=request front=authz decision=deny status=403 path=null identity="spiffe://$TD/dev/alice"
	st=$(ask $front "$ALICE" GET '/v1/../../admin')
	expect "$front dot-dot above root" 403 "$st"
	echo "ok: $front: missing method/URI and bad URIs denied"

	# certificates the verifier refuses, with its reasons
	st=$(ask $front "$(esc otherca)" GET /echo)
	expect "$front other CA" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"was not issued by a configured tokengate CA"* ]] ||
		tg_fail "$front other CA: $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$(esc copied)" GET /echo)
	expect "$front copied provenance" 403 "$st"
	st=$(ask $front "$(esc expired)" GET /echo)
	expect "$front expired" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"has expired"* ]] || tg_fail "$front expired: $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$(esc noprov)" GET /echo)
	expect "$front no provenance" 403 "$st"
	st=$(ask $front "$(esc caleaf)" GET /echo)
	expect "$front CA as leaf" 403 "$st"
	st=$(ask $front "$(esc selfsigned)" GET /echo)
	expect "$front self-signed" 403 "$st"
	echo "ok: $front: certificates of another CA, expired, without provenance refused"
done

# keep-alive: several subrequests on one connection, as nginx's upstream keepalive sends them
out=$(curl -sS --max-time 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code} %{num_connects}\n' \
	-H "X-Tokengate-Client-Cert: $ALICE" -H "X-Original-Method: GET" -H "X-Original-URI: /echo" \
	http://authz/a http://authz/b http://authz/c)
[[ $(tr '\n' ' ' <<<"$out") == "200 1 200 0 200 0 " ]] || tg_fail "keep-alive: $out"
echo "ok: three subrequests on one kept-alive connection"

# pipelined subrequests in one write: answered in order; a slow head gets a 403 (header_ms), never a 400/408
export ALICE SOCK TD
"$GATE_PYTHON" - <<'PY' || tg_fail "pipelining / slow head (see above)"
import os, socket, time
def req(uri):
    return ("GET /auth HTTP/1.1\r\nHost: authz\r\nX-Tokengate-Client-Cert: %s\r\n"
            "X-Original-Method: GET\r\nX-Original-URI: %s\r\n\r\n" % (os.environ["ALICE"], uri)).encode()
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["SOCK"])
s.sendall(req("/echo") + req("/admin/x") + req("/echo/y"))
s.settimeout(10)
buf = b""
while buf.count(b"\r\n\r\n") < 3:
    d = s.recv(65536)
    if not d:
        break
    buf += d
heads = [h for h in buf.split(b"\r\n\r\n") if h]
codes = [h.split(b" ")[1] for h in heads]
assert codes == [b"200", b"403", b"200"], (codes, buf)
assert b"X-Tokengate-Route: admin" in heads[1], heads[1]
# a head that stops half-way: 403 with the reason once header_ms passes, then the close
s.sendall(b"GET /auth HTTP/1.1\r\nHost: authz\r\nX-Original-Method: GET\r\n")
t0 = time.time()
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
assert buf.startswith(b"HTTP/1.1 403 "), buf
assert b"X-Tokengate-Reason: the request head did not arrive within 1500 ms" in buf, buf
assert 1.0 < time.time() - t0 < 8, time.time() - t0
print("pipelined: 200 403 200; slow head: 403 after %.1f s" % (time.time() - t0))
PY
echo "ok: pipelined subrequests answered in order; a slow head refused with 403"

# a client that sends many subrequests without reading: the answers fill
# the socket, the gate must stop reading, keep what it has not written and
# go on once the client reads — every answer arrives, in order
"$GATE_PYTHON" - <<'PY' || tg_fail "pipelined subrequests beyond the socket's buffer (see above)"
import os, socket, threading, time
def req(uri):
    return ("GET /auth HTTP/1.1\r\nHost: authz\r\nX-Tokengate-Client-Cert: %s\r\n"
            "X-Original-Method: GET\r\nX-Original-URI: %s\r\n\r\n" % (os.environ["ALICE"], uri)).encode()
N = 3000
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["SOCK"])
s.settimeout(60)
data = b"".join(req("/echo" if i % 2 == 0 else "/admin/x") for i in range(N))
t = threading.Thread(target=s.sendall, args=(data,))
t.start()
time.sleep(1.5)  # nothing read meanwhile: the answers back up
buf = b""
while buf.count(b"\r\n\r\n") < N:
    d = s.recv(1 << 16)
    if not d:
        break
    buf += d
t.join()
heads = [h for h in buf.split(b"\r\n\r\n") if h]
codes = [h.split(b" ")[1] for h in heads]
assert len(codes) == N, (len(codes), len(data))
assert codes == [b"200" if i % 2 == 0 else b"403" for i in range(N)], codes[:10]
print("%d pipelined subrequests (%d KiB of answers) answered in order" % (N, len(buf) // 1024))
PY
echo "ok: pipelined subrequests beyond the socket's buffer answered in order"

# the cache: the same certificate again is a hit
h0=$(gate_metric 'tokengate_authz_cache_total{result="hit"}')
m0=$(gate_metric 'tokengate_authz_cache_total{result="miss"}')
for i in 1 2 3 4 5 6; do ask unix "$ALICE" GET /echo >/dev/null; done
h1=$(gate_metric 'tokengate_authz_cache_total{result="hit"}')
m1=$(gate_metric 'tokengate_authz_cache_total{result="miss"}')
((h1 >= h0 + 4)) || tg_fail "cache: hits $h0 -> $h1, misses $m0 -> $m1"
((m1 - m0 <= 2)) || tg_fail "cache: misses $m0 -> $m1 for one certificate on two workers"
[[ -n $(gate_metric 'tokengate_requests_total{listener="authz-unix",route="echo",decision="allow"}') ]] ||
	tg_fail "no tokengate_requests_total for the authz listener"
echo "ok: cache hits $h0 -> $h1, misses $m0 -> $m1"

# revoked after caching: allowed (and cached) first, refused once the new CRL is loaded
# (also escaped another way — lower-case hex — a second cache key of the
# same certificate: neither may outlive the CRL)
REV=$(esc revoked)
# shellcheck disable=SC2001 # \L (lower case) has no ${//} form
REV_LOWER=$(sed 's/%\([0-9A-F][0-9A-F]\)/%\L\1/g' <<<"$REV")
[[ $REV_LOWER != "$REV" ]] || tg_fail "the lower-case escaping of the revoked certificate is the same text"
for i in 1 2 3 4; do
	st=$(ask tcp "$REV" GET /echo)
	expect "revoked before the CRL" 200 "$st"
	st=$(ask tcp "$REV_LOWER" GET /echo)
	expect "revoked before the CRL, escaped in lower case" 200 "$st"
done
n0=$(grep -c 'reload (the CRL file changed)' "$GATE_LOG" || true)
cp "$PKI/crl.pem" "$PKI/live.crl.new"
mv "$PKI/live.crl.new" "$PKI/live.crl"
tg_wait_until 20 bash -c "[[ \$(grep -c 'reload (the CRL file changed): configuration' '$GATE_LOG') -gt $n0 ]]" ||
	tg_fail "the gate did not reload the changed CRL: $(tail -n 5 "$GATE_LOG")"
gate_audit_mark
for front in tcp unix; do
	st=$(ask $front "$REV" GET /echo)
	expect "$front revoked after the CRL" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"is revoked by the configured CRL"* ]] ||
		tg_fail "revoked: $(hdr X-Tokengate-Reason)"
	st=$(ask $front "$REV_LOWER" GET /echo)
	expect "$front revoked after the CRL, escaped in lower case" 403 "$st"
	[[ $(hdr X-Tokengate-Reason) == *"is revoked by the configured CRL"* ]] ||
		tg_fail "revoked, lower case: $(hdr X-Tokengate-Reason)"
done
gate_audit_expect event=request front=authz decision=deny 'reason~revoked'
st=$(ask tcp "$ALICE" GET /echo)
expect "alice after the CRL" 200 "$st"
echo "ok: a cached certificate revoked by a new CRL is refused (however it is escaped)"

# SIGHUP reloads the policy: a new generation, the decision follows
sed -i 's|paths: \["/echo", "/echo/\*\*"\]|paths: ["/echo2"]|' "$TG_TMP/policy.yaml"
[[ $(gate_reload) == ok ]] || tg_fail "reload refused: $(tail -n 3 "$GATE_LOG")"
st=$(ask unix "$ALICE" GET /echo)
expect "after reload" 403 "$st"
st=$(ask unix "$ALICE" GET /echo2)
expect "after reload, new path" 200 "$st"
echo "ok: SIGHUP reloads the policy for the authz listeners"

# the socket's group is fixed at start: a reload changing it is refused, the old configuration stays
other_group=$(getent group | awk -F: -v me="$(id -gn)" '$1 != me { print $1; exit }')
if [[ -n $other_group ]]; then
	sed -i "s|    group: $(id -gn)|    group: $other_group|" "$GATE_CONFIG"
	[[ $(gate_reload) == refused ]] || tg_fail "a reload changing the socket's group was accepted"
	grep -q "listener 'authz-unix': the socket's group changed from $(id -gn) to $other_group; that needs a restart" "$GATE_LOG" ||
		tg_fail "reload refusal: $(grep 'refused' "$GATE_LOG" | tail -n 1)"
	sed -i "s|    group: $other_group|    group: $(id -gn)|" "$GATE_CONFIG"
	st=$(ask unix "$ALICE" GET /echo2)
	expect "after the refused reload" 200 "$st"
	echo "ok: a reload changing the socket's group is refused"
fi

# the socket file: mode 0660, the gate's group
[[ $(stat -c %a "$SOCK") == 660 ]] || tg_fail "socket mode $(stat -c %a "$SOCK")"
[[ $(stat -c %G "$SOCK") == "$(id -gn)" ]] || tg_fail "socket group $(stat -c %G "$SOCK")"
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "gate exit $GATE_RC"
[[ ! -e $SOCK ]] || tg_fail "the socket file stayed after the stop"
echo "ok: socket 0660 with the configured group, removed at the stop"

# configuration refusals
tg_expect_exit 1 "listens on loopback or a unix socket only" \
	"$TG" gate --mode authz --listen 0.0.0.0:1 --client-ca "$PKI/ca/ca.pem" \
	--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a2.log" --check
tg_expect_exit 1 "group 'no-such-group-tg' does not exist" \
	"$TG" gate --mode authz --listen "unix:$TG_TMP/x.sock" --listen-group no-such-group-tg \
	--client-ca "$PKI/ca/ca.pem" --policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a2.log" --check
tg_expect_exit 1 "a group is given to a unix socket only" \
	"$TG" gate --mode authz --listen 127.0.0.1:1 --listen-group "$(id -gn)" \
	--client-ca "$PKI/ca/ca.pem" --policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a2.log" --check
"$TG" gate --mode authz --listen "[::1]:1" --client-ca "$PKI/ca/ca.pem" \
	--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a2.log" --check >"$TG_TMP/check.out" ||
	tg_fail "--check of an authz listener on [::1] failed: $(cat "$TG_TMP/check.out")"
grep -q 'mode authz' "$TG_TMP/check.out" || tg_fail "check: $(cat "$TG_TMP/check.out")"
# a file that is not a socket is not replaced
: >"$TG_TMP/notsock"
GATE_PORT=1 # unused: the start fails
tg_expect_exit 1 "exists and is not a socket" \
	"$TG" gate --mode authz --listen "unix:$TG_TMP/notsock" --client-ca "$PKI/ca/ca.pem" \
	--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a2.log"
[[ -f $TG_TMP/notsock ]] || tg_fail "the regular file was removed"
echo "ok: non-loopback address, unknown group, group on TCP, a non-socket file refused"

# a socket file left by a gate that died is replaced; one a gate answers on is not
SOCK2=$TG_TMP/authz2.sock
start_plain() # LOG: a flags-only authz gate on $SOCK2 in the background; its pid in $!
{
	"${TG__PDEATH[@]}" "$TG" gate --mode authz --listen "unix:$SOCK2" --client-ca "$PKI/ca/ca.pem" \
		--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a3.log" --workers 1 </dev/null >"$1" 2>&1 &
}
start_plain "$TG_TMP/g1.log"
G1=$!
tg_on_exit gate__kill "$G1"
tg_wait_until 30 grep -q 'tokengate gate: ready' "$TG_TMP/g1.log" || tg_fail "gate 1: $(cat "$TG_TMP/g1.log")"
tg_expect_exit 1 "something already answers on $SOCK2" \
	"$TG" gate --mode authz --listen "unix:$SOCK2" --client-ca "$PKI/ca/ca.pem" \
	--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a4.log"
[[ -S $SOCK2 ]] || tg_fail "the refused gate removed the running gate's socket"
kill -KILL "$G1"
wait "$G1" 2>/dev/null || true
[[ -S $SOCK2 ]] || tg_fail "no socket file left after SIGKILL (the test needs one)"
start_plain "$TG_TMP/g2.log"
G2=$!
tg_on_exit gate__kill "$G2"
tg_wait_until 30 grep -q 'tokengate gate: ready' "$TG_TMP/g2.log" || tg_fail "gate 2 on a stale socket: $(cat "$TG_TMP/g2.log")"
st=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK2" \
	-H "X-Tokengate-Client-Cert: $ALICE" -H "X-Original-Method: GET" -H "X-Original-URI: /echo2" http://authz/)
expect "gate 2 answers" 200 "$st"
echo "ok: a stale socket file is replaced, a live one is refused"

# --dry-run: a policy deny is answered 200 (recorded dry-run); a bad certificate is still a 403
SOCK3=$TG_TMP/authz3.sock
"${TG__PDEATH[@]}" "$TG" gate --mode authz --listen "unix:$SOCK3" --client-ca "$PKI/ca/ca.pem" \
	--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a5.log" --workers 1 --dry-run </dev/null >"$TG_TMP/g3.log" 2>&1 &
G3=$!
tg_on_exit gate__kill "$G3"
tg_wait_until 30 grep -q 'tokengate gate: ready' "$TG_TMP/g3.log" || tg_fail "dry-run gate: $(cat "$TG_TMP/g3.log")"
SOCK_SAVE=$SOCK
SOCK=$SOCK3
GATE_AUDIT=$TG_TMP/a5.log
gate_audit_mark
st=$(ask unix "$ALICE" GET /admin/x)
expect "dry-run policy deny" 200 "$st"
expect "dry-run identity" "spiffe://$TD/dev/alice" "$(hdr X-Tokengate-Identity)"
expect "dry-run route" admin "$(hdr X-Tokengate-Route)"
gate_audit_expect event=request front=authz decision=dry-run route=admin 'reason~no allow entry'
st=$(ask unix "$(esc otherca)" GET /admin/x)
expect "dry-run other CA" 403 "$st"
st=$(ask unix "$ALICE" GET '/a%2fb')
expect "dry-run bad uri" 403 "$st"
echo "ok: --dry-run answers a policy deny with 200 (recorded dry-run), refuses bad certificates and URIs"

# fail closed: once the audit log cannot grow (file size limit), no 200 is given
SOCK=$TG_TMP/authz4.sock
(
	ulimit -f 8
	exec "${TG__PDEATH[@]}" "$TG" gate --mode authz --listen "unix:$SOCK" --client-ca "$PKI/ca/ca.pem" \
		--policy "$TG_TMP/policy.yaml" --audit "$TG_TMP/a6.log" --workers 1 </dev/null >"$TG_TMP/g4.log" 2>&1
) &
G4=$!
tg_on_exit gate__kill "$G4"
tg_wait_until 30 grep -q 'tokengate gate: ready' "$TG_TMP/g4.log" || tg_fail "limited gate: $(cat "$TG_TMP/g4.log")"
codes=""
for ((i = 0; i < 40; i++)); do
	codes+="$(ask unix "$ALICE" GET /echo2) "
	[[ $(hdr X-Tokengate-Reason) != *"cannot write its audit log"* ]] || break
done
[[ $codes =~ ^(200\ )+403\ $ ]] || tg_fail "want 200s, then a 403 once the audit log cannot grow: $codes"
st=$(ask unix "$ALICE" GET /echo2)
expect "still refused while the log cannot grow" 403 "$st"
grep -q "audit log cannot be written" "$TG_TMP/g4.log" || tg_fail "no log line: $(cat "$TG_TMP/g4.log")"
SOCK=$SOCK_SAVE
echo "ok: fail closed: 403 '$(hdr X-Tokengate-Reason)' once the audit log cannot be written"
echo "PASS"
