#!/usr/bin/env bash
# test_agent_faults.sh — `tokengate agent` (SoftHSM2 key) against gates
# that misbehave (tests/lib/agent_badgate.py) and clients that send what
# HTTP does not allow; every refusal checked for its status and its text.
#   - start refusals: a unix path that is a file, or in a directory that
#     is not there, or where another agent listens (a stale socket file is
#     taken over), a TCP port or admin port already taken, a listen host
#     that does not resolve, a CA file with no certificate, a certificate
#     of another key or none; --check's summary, and its refusal of a
#     gate's name that does not resolve (a run starts anyway: 502);
#   - the gate's side, one listener per fault in one --config: nothing
#     listening, a peer that is not TLS, one that closes before the
#     handshake, one that never answers (10 s), a certificate of an
#     unknown CA, a server_id or a server_name the gate's certificate does
#     not have (and one it has): 502 with the reason, counted as failed
#     handshakes and failed requests; a gate that sends no session ticket;
#     an HTTP answer that is not HTTP, a close before or in the middle of
#     the response, a bad status line or chunk, a 101 nobody asked for:
#     502 or a cut response; pooled connections the gate closes, writes
#     junk on or leaves bytes on: the next request still 200; what is
#     allowed and must pass: 100 Continue, a body delimited by the close,
#     chunked both ways, an HTTP/1.0 client (raw and curl --http1.0) given
#     a chunked or until-close body decoded, without Transfer-Encoding and
#     ended by the close (RFC 9112 6.1), kept alive with a Content-Length,
#     a WebSocket upgrade spliced, absolute-form
#     targets, Host added for HTTP/1.0 and set by host:; clients that
#     leave early (while the agent connects, in the middle of 3 MiB);
#   - the client's side: malformed heads, too long a request line or
#     head, unknown methods and CONNECT, HTTP/2.0, a missing or doubled
#     Host, two Content-Length fields, an unknown transfer coding, a bad
#     chunk size: each answered with its status and a one-line reason,
#     never forwarded;
#   - tcp mode towards a gate that refuses TLS: the client's connection
#     closed without a byte; towards a gate that echoes: bytes both ways,
#     the half-close passed on;
#   - the admin listener: /healthz, /metrics, 404 and 405; a WebSocket and
#     a tcp connection open at SIGTERM are closed, the sockets removed.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
gate_require
agent_require
cd "$TG_TMP"

agent_hsm_pki
KEY=$AGENT_HSM_KEY
CERT=$PKI/hsm-api.pem

# ---- the misbehaving gates ------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
	-out other.pem -subj /CN=localhost -days 2 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	2>/dev/null || tg_fail "openssl: the other CA's certificate"
# a server certificate of the gate's CA with a URI SAN (server_id)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout uri.key -out uri.csr \
	-subj /CN=localhost 2>/dev/null || tg_fail "openssl: the URI SAN certificate's request"
printf 'subjectAltName=URI:spiffe://example.org/svc/gate,DNS:localhost,IP:127.0.0.1\n' >uri.ext
openssl x509 -req -in uri.csr -CA "$PKI/srvca.pem" -CAkey "$PKI/srvca.key" -CAcreateserial \
	-days 2 -extfile uri.ext -out uri.pem 2>/dev/null || tg_fail "openssl: the URI SAN certificate"
TG__LOGS+=("$TG_TMP/badgate.err")
"${TG__PDEATH[@]}" python3 "$TG_FIXTURES/agent_badgate.py" --cert "$PKI/server.pem" \
	--key "$PKI/server.key" --client-ca "$PKI/ca/ca.pem" --other-cert other.pem \
	--other-key other.key --uri-cert uri.pem --uri-key uri.key --port-file badgate.ports </dev/null >badgate.out 2>badgate.err &
tg_on_exit gate__kill "$!"
tg_wait_until 20 test -s badgate.ports || tg_fail "the misbehaving gates did not start"
port() { jq -r ".$1" badgate.ports; }
p=$(tg_free_port_pair) || tg_fail "no free port"
DEAD_PORT=$p # nothing listens there
ADMIN=127.0.0.1:$((p + 1))

# ---- start refusals ---------------------------------------------------------
common=(--upstream "https://127.0.0.1:$(port http)" --key "$KEY" --cert "$CERT"
	--ca "$PKI/srvca.pem" --server-name localhost)
: >notasocket
tg_expect_exit 1 "notasocket exists and is not a socket; remove it or choose another path" \
	timeout 30 "$TG" agent --listen "unix:$TG_TMP/notasocket" "${common[@]}"
tg_expect_exit 1 "cannot listen on unix:$TG_TMP/no/such/dir/a.sock" \
	timeout 30 "$TG" agent --listen "unix:$TG_TMP/no/such/dir/a.sock" "${common[@]}"
tg_expect_exit 1 "cannot listen on 127.0.0.1:$(port http): Address already in use; is another program on that port?" \
	timeout 30 "$TG" agent --listen "127.0.0.1:$(port http)" "${common[@]}"
tg_expect_exit 1 "admin listener 127.0.0.1:$(port http): cannot listen: Address already in use" \
	timeout 30 "$TG" agent --listen "unix:$TG_TMP/adm.sock" --admin "127.0.0.1:$(port http)" "${common[@]}"
[[ ! -e $TG_TMP/adm.sock ]] || tg_fail "a refused start left its unix socket behind"
tg_expect_exit 1 "listener main: no-such-host.invalid:1: " \
	timeout 30 "$TG" agent --listen no-such-host.invalid:1 --allow-remote "${common[@]}"
# a running start (not --check) refuses a CA file with nothing in it too
tg_expect_exit 1 "--ca /dev/null: no CA certificate could be read from it" \
	timeout 30 "$TG" agent --listen 127.0.0.1:1 --upstream "https://127.0.0.1:$(port http)" \
	--key "$KEY" --cert "$CERT" --ca /dev/null
tg_expect_exit 1 "--ca /dev/null: no CA certificate could be read from it" \
	timeout 30 "$TG" agent --listen 127.0.0.1:1 --upstream "https://127.0.0.1:$(port http)" \
	--key "$KEY" --cert "$CERT" --ca /dev/null --check
tg_expect_exit 1 "is not the key of client certificate '$PKI/srvca.pem'" \
	timeout 30 "$TG" agent --listen 127.0.0.1:1 --upstream "https://127.0.0.1:$(port http)" \
	--key "$KEY" --cert "$PKI/srvca.pem" --ca "$PKI/srvca.pem" --check
tg_expect_exit 1 "client certificate '$TG_TMP/nocert.pem' cannot be read" \
	timeout 30 "$TG" agent --listen 127.0.0.1:1 --upstream "https://127.0.0.1:$(port http)" \
	--key "$KEY" --cert "$TG_TMP/nocert.pem" --ca "$PKI/srvca.pem" --check
tg_expect_exit 1 "the gate's host 'no-such-gate.invalid' does not resolve" \
	timeout 30 "$TG" agent --listen 127.0.0.1:1 --upstream "https://no-such-gate.invalid:8443" \
	--key "$KEY" --cert "$CERT" --ca "$PKI/srvca.pem" --check
tg_expect_exit 2 "missing --key, --ca" timeout 30 "$TG" agent --listen 127.0.0.1:1 \
	--upstream "https://127.0.0.1:$(port http)"
"$TG" agent --listen 127.0.0.1:1 --upstream "https://127.0.0.1:$(port http)" --key "$KEY" \
	--cert "$CERT" --ca "$PKI/srvca.pem" --mode tcp --idle-timeout-ms 700 --server-id \
	spiffe://example.org/svc/gate --admin 127.0.0.1:2 --check >check.out 2>check.err ||
	tg_fail "--check: $(cat check.err)"
grep -qF "listener main: 127.0.0.1:1 (mode tcp, idle timeout 700 ms) -> https://127.0.0.1:$(port http)" check.out ||
	tg_fail "--check summary: $(cat check.out)"
grep -qF "as spiffe://example.org/svc/gate" check.out || tg_fail "--check summary: $(cat check.out)"
grep -qF "configuration OK; admin on 127.0.0.1:2" check.out || tg_fail "--check summary: $(cat check.out)"
grep -qF "pin-source=file:" check.out || tg_fail "--check does not show the key: $(cat check.out)"
echo "ok: start refusals and --check"

# ---- one agent, one listener per fault --------------------------------------
S=$TG_TMP/s
mkdir -p "$S"
# server_name per listener: sid names the gate by a server_id its
# certificate does not carry, sname by a name it does not carry
L="server_name: localhost, upstream: \"https://127.0.0.1"
cat >faults.yaml <<EOF
key: "$KEY"
cert: $CERT
ca: $PKI/srvca.pem
response_timeout_ms: 5000
admin: $ADMIN
listeners:
  - {name: dead, listen: "unix:$S/dead", $L:$DEAD_PORT"}
  - {name: plain, listen: "unix:$S/plain", $L:$(port plain)"}
  - {name: close, listen: "unix:$S/close", $L:$(port close)"}
  - {name: other, listen: "unix:$S/other", $L:$(port other)"}
  - {name: sid, listen: "unix:$S/sid", upstream: "https://127.0.0.1:$(port http)",
     server_id: "spiffe://example.org/svc/not-this-gate"}
  - {name: sname, listen: "unix:$S/sname", upstream: "https://127.0.0.1:$(port http)",
     server_name: wrong.example}
  - {name: http, listen: "unix:$S/http", $L:$(port http)"}
  - {name: host, listen: "unix:$S/host", $L:$(port http)", host: api.internal}
  - {name: tcp, listen: "unix:$S/tcp", $L:$(port tcp)", mode: tcp}
  - {name: tcpdead, listen: "unix:$S/tcpdead", $L:$(port close)", mode: tcp}
  - {name: silent, listen: "unix:$S/silent", $L:$(port silent)"}
  - {name: silenttcp, listen: "unix:$S/silenttcp", $L:$(port silent)", mode: tcp}
  - {name: noticket, listen: "unix:$S/noticket", $L:$(port noticket)"}
  - {name: sidok, listen: "unix:$S/sidok", upstream: "https://127.0.0.1:$(port uri)",
     server_id: "spiffe://example.org/svc/gate"}
  - {name: sidbad, listen: "unix:$S/sidbad", upstream: "https://127.0.0.1:$(port uri)",
     server_id: "spiffe://example.org/svc/other"}
  - {name: nodns, listen: "unix:$S/nodns", upstream: "https://no-such-gate.invalid:8443"}
  - {name: stale, listen: "unix:$S/stale", $L:$(port http)"}
EOF
# a socket file left by a process that is gone: the agent takes the path over
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$S/stale"
[[ -S $S/stale ]] || tg_fail "no stale socket made"
# --check refuses the listener whose gate's name does not resolve
tg_expect_exit 1 "listener nodns: the gate's host 'no-such-gate.invalid' does not resolve" \
	"$TG" agent --config faults.yaml --check
AGENT_LOG=$TG_TMP/agent.faults.log
TG__LOGS+=("$AGENT_LOG")
"${TG__PDEATH[@]}" "$TG" agent --config faults.yaml </dev/null >"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
tg_on_exit gate__kill "$AGENT_PID"
tg_wait_until 30 grep -q "tokengate agent: ready" "$AGENT_LOG" || tg_fail "the agent did not start: $(cat "$AGENT_LOG")"
grep -qF "listener nodns: the gate's host 'no-such-gate.invalid' does not resolve now" "$AGENT_LOG" ||
	tg_fail "the agent did not say that nodns's gate does not resolve: $(cat "$AGENT_LOG")"
# a second agent on a path the first listens on
tg_expect_exit 1 "listener main: something already listens on $S/http (another agent?)" \
	timeout 30 "$TG" agent --listen "unix:$S/http" "${common[@]}"

python3 - "$S" "$(port http)" <<'EOF' || tg_fail "faults: see above; agent log: $(tail -40 "$AGENT_LOG")"
import os, socket, struct, sys, threading, time

S, HTTP_PORT = sys.argv[1], sys.argv[2]


def exchange(listener, data, close_write=False, limit=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(limit)
    s.connect("%s/%s" % (S, listener))
    try:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the agent closed first (tcp mode: the gate failed); read what came
    buf = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            break
        buf += b
    s.close()
    return buf


def parse(buf):
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/1.") else None
    fields = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        fields[k.strip().lower()] = v.strip()
    return status, fields, body


FAILED = []


def check(name, listener, data, status, text, **kw):
    """One exchange whose answer must have status and text (or one of a
    tuple of texts); a failure is reported, the others still run."""
    try:
        return check1(name, listener, data, status, text, **kw)
    except AssertionError as e:
        print("FAILED: %s: %s" % (name, e))
        FAILED.append(name)
        return {}, b""


def check1(name, listener, data, status, text, **kw):
    buf = exchange(listener, data, **kw)
    st, fields, body = parse(buf)
    assert st == status, (name, st, buf[:600])
    if text is not None:
        alts = (text,) if isinstance(text, str) else text
        assert any(a.encode() in body for a in alts), (name, text, body[:600])
    if status >= 400:
        # the agent's own answers: one line, closed
        assert body.count(b"\n") == 1 and body.endswith(b"\n"), (name, body)
        assert fields.get("connection") == "close", (name, fields)
        assert int(fields["content-length"]) == len(body), (name, fields, body)
    print("ok: %s: %d %s" % (name, st, body.decode("latin-1").strip()[:160]))
    return fields, body


GET = b"GET /echo HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"
# a gate that takes the connection and never answers: 502 after the
# connection limit (10 s), waited for in the background meanwhile
slow = {}
def silent_wait():
    slow["buf"] = exchange("silent", GET, limit=30)
waiter = threading.Thread(target=silent_wait)
waiter.start()
# a client that leaves while the agent still connects for it (http, tcp)
for l in ("silent", "silenttcp"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("%s/%s" % (S, l))
    if l == "silent":
        s.sendall(GET)
    time.sleep(0.3)
    s.close()

# ---- the gate's side: TLS -------------------------------------------------
check("nothing listens", "dead", GET, 502, "cannot connect to the gate https://127.0.0.1:")
check("nothing listens", "dead", GET, 502, "Connection refused; is it running?")
check("not TLS", "plain", GET, 502, "TLS handshake with the gate https://127.0.0.1:")
check("not TLS", "plain", GET, 502, "failed: wrong version number")
check("closed before the handshake", "close", GET, 502,
      "TLS handshake with the gate https://127.0.0.1:")
# the close comes before or after the ClientHello went out
check("closed before the handshake", "close", GET, 502,
      ("failed: unexpected eof while reading",
       "failed: the gate closed the connection during the handshake"))
check("unknown CA", "other", GET, 502,
      "the gate's certificate was refused: self-signed certificate (check --ca and --server-name)")
check("server_id", "sid", GET, 502,
      "the gate's certificate does not have the URI SAN spiffe://example.org/svc/not-this-gate; check --server-id")
check("server_name", "sname", GET, 502,
      "the gate's certificate was refused: hostname mismatch (check --ca and --server-name)")

check("server_id matches", "sidok", GET, 200, "GET /echo HTTP/1.1\nhost=api\n")
check("server_id does not", "sidbad", GET, 502,
      "the gate's certificate does not have the URI SAN spiffe://example.org/svc/other; check --server-id")
check("no DNS", "nodns", GET, 502,
      "cannot resolve the gate's host 'no-such-gate.invalid': ")
check("stale socket taken over", "stale", GET, 200, "GET /echo HTTP/1.1\n")
# no ticket after the first full handshake: the waiters go on after a while
res = []
def one_noticket(i):
    res.append(exchange("noticket", GET))
ts = [threading.Thread(target=one_noticket, args=(i,)) for i in range(4)]
for x in ts:
    x.start()
for x in ts:
    x.join()
assert len(res) == 4 and all(b.startswith(b"HTTP/1.1 200 ") for b in res), res
print("ok: a gate that sends no session ticket: 4 concurrent requests served")

# ---- the gate's side: HTTP --------------------------------------------------
def req(path, extra=b"", ver=b"HTTP/1.1", host=b"Host: api\r\n", method=b"GET", close=True):
    """A request head; HTTP/1.1 ones ask for the close (exchange reads to EOF)."""
    if close and ver == b"HTTP/1.1" and b"Connection:" not in extra:
        extra += b"Connection: close\r\n"
    return method + b" " + path + b" " + ver + b"\r\n" + host + extra + b"\r\n"

check("not HTTP", "http", req(b"/garbage"), 502,
      "the status line is malformed (want: HTTP/1.1 SP code SP reason)")
check("close before the response", "http", req(b"/close-before"), 502,
      "the gate closed the connection before its response")
check("bad status line", "http", req(b"/bad-status"), 502,
      "the status line has no valid status code (100 to 599)")
check("101 not asked for", "http", req(b"/switch"), 502, "the gate's response could not be relayed")
# cut in the middle: the head went out, then the client's connection is closed
buf = exchange("http", req(b"/close-mid"))
st, fields, body = parse(buf)
assert st == 200 and fields["content-length"] == "100" and body == b"short", buf
print("ok: a response cut in the middle: the client's connection closed after %d bytes" % len(body))
# a bad chunk size after the head: the connection closed, the response
# never complete (the head and the first chunk may or may not be out yet)
buf = exchange("http", req(b"/bad-chunk"))
assert buf == b"" or (buf.startswith(b"HTTP/1.1 200 ") and not buf.endswith(b"0\r\n\r\n")), buf
print("ok: a bad chunk size from the gate: the response cut (%d bytes)" % len(buf))
# allowed: passed on
buf = exchange("http", req(b"/interim"))
assert buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") and buf.endswith(b"\r\n\r\nok\n"), buf
print("ok: 100 Continue passed on before the 200")
buf = exchange("http", req(b"/interim", ver=b"HTTP/1.0"))
assert buf.startswith(b"HTTP/1.1 200 ") and b"100 Continue" not in buf, buf
print("ok: 100 Continue not passed to an HTTP/1.0 client")
fields, body = check("close-delimited body", "http", req(b"/close-delim"), 200, None)
assert b"until the close\n" in body, (fields, body)
fields, body = check("chunked", "http", req(b"/chunked"), 200, None)
assert fields.get("transfer-encoding") == "chunked" and b"hello " in body and b"world" in body, buf


def check10(name, path, want, extra=b""):
    """An HTTP/1.0 client reads no chunks (RFC 9112 6.1, 7): a chunked or
    until-close response reaches it decoded, without Transfer-Encoding or
    Content-Length, with Connection: close, the connection closed after the
    body; also when it asked for keep-alive."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect("%s/http" % S)
    s.sendall(req(path, ver=b"HTTP/1.0", extra=extra))
    buf, open_ = b"", False
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            open_ = True
            break
        if not b:
            break
        buf += b
    s.close()
    try:
        st, fields, body = parse(buf)
        assert st == 200, buf[:600]
        assert "transfer-encoding" not in fields, ("Transfer-Encoding to HTTP/1.0", buf[:600])
        assert "content-length" not in fields, buf[:600]
        assert fields.get("connection") == "close", ("no Connection: close", buf[:600])
        assert body == want, ("body is not the content", body)
        assert not open_, ("the connection stayed open after the body (5 s)", buf[:600])
    except AssertionError as e:
        print("FAILED: %s: %s" % (name, e))
        FAILED.append(name)
        return
    print("ok: %s: %r, Connection: close, no Transfer-Encoding" % (name, body))


check10("HTTP/1.0, chunked", b"/chunked", b"hello world")
check10("HTTP/1.0 keep-alive, chunked", b"/chunked", b"hello world",
        extra=b"Connection: keep-alive\r\n")
check10("HTTP/1.0, until the close", b"/close-delim", b"until the close\n")
check10("HTTP/1.0 keep-alive, until the close", b"/close-delim", b"until the close\n",
        extra=b"Connection: keep-alive\r\n")
# a response with a Content-Length keeps an HTTP/1.0 keep-alive connection
buf = exchange("http", req(b"/echo-k1", ver=b"HTTP/1.0", extra=b"Connection: keep-alive\r\n") +
               req(b"/echo-k2", ver=b"HTTP/1.0"))
first, _, second = buf.partition(b"\nbody=0\n")
assert first.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: keep-alive\r\n" in first and \
    b"GET /echo-k1 " in first and second.startswith(b"HTTP/1.1 200 ") and \
    b"GET /echo-k2 " in second and b"transfer-encoding" not in buf.lower(), buf
print("ok: HTTP/1.0 keep-alive with a Content-Length: two requests on one connection")
# the request's body, chunked towards the gate
_, body = check("chunked upload", "http",
                req(b"/echo-up", extra=b"Transfer-Encoding: chunked\r\n", method=b"POST") +
                b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n", 200, "body=7")
_, body = check("Content-Length upload", "http",
                req(b"/echo-up", extra=b"Content-Length: 5\r\n", method=b"PUT") +
                b"12345", 200, "body=5")
# Host: absolute-form, HTTP/1.0 without one, host:
_, body = check("absolute-form", "http", req(b"http://api.example:8080/echo-abs?q=1"), 200,
                "GET /echo-abs?q=1 HTTP/1.1\nhost=api.example:8080\n")
_, body = check("absolute-form, empty path", "http", req(b"http://api.example"), 200,
                "GET / HTTP/1.1\nhost=api.example\n")
_, body = check("HTTP/1.0 without Host", "http", req(b"/echo10", ver=b"HTTP/1.0", host=b""), 200,
                "GET /echo10 HTTP/1.1\nhost=127.0.0.1:%s\n" % HTTP_PORT)
_, body = check("host: set by the listener", "host", req(b"/echo-h"), 200, "host=api.internal\n")
# keep-alive: two requests on one connection, the second after the first's answer
buf = exchange("http", req(b"/echo-a", close=False) + req(b"/echo-b"))
assert buf.count(b"HTTP/1.1 200 ") == 2 and b"GET /echo-b " in buf, buf
print("ok: two pipelined requests answered in order")
# a WebSocket upgrade: 101, then the bytes spliced both ways
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect("%s/http" % S)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    b = s.recv(65536)
    assert b, buf
    buf += b
assert buf.startswith(b"HTTP/1.1 101 "), buf
rest = buf.split(b"\r\n\r\n", 1)[1]
s.sendall(b"ping over the splice")
while len(rest) < 20:
    b = s.recv(65536)
    assert b, rest
    rest += b
assert rest == b"ping over the splice", rest
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
s.close()
print("ok: an upgrade spliced both ways")

# pooled connections the gate closes, writes junk on, or left bytes on
for path in (b"/then-close", b"/then-junk", b"/extra"):
    check("pooled %s" % path.decode(), "http", req(path), 200, "ok")
    time.sleep(0.8)
    check("after %s" % path.decode(), "http", req(b"/echo-next"), 200, "GET /echo-next ")
# a client that leaves in the middle of a big response
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("%s/http" % S)
s.sendall(req(b"/big"))
time.sleep(1.0)  # not reading: the agent's writes to it fill the socket
assert s.recv(1000).startswith(b"HTTP/1.1 200 "), "no head of /big"
s.close()
time.sleep(0.3)
check("after a client left mid-response", "http", req(b"/echo-after"), 200, "GET /echo-after ")
# a client that reads late gets all of the 3 MiB (the gate's 64 KiB
# writes): the agent stops reading the gate while the client's side is
# full, then goes on to the last byte. Several runs: the end of the body
# once stayed decrypted inside OpenSSL (SSL_pending) when reading resumed
# with nothing new on the socket, ~15 KB short until the client gave up.
BIG = b"0123456789abcdef" * 4096 * 48
for i in range(6):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect("%s/http" % S)
    s.sendall(req(b"/big"))
    time.sleep(1.0)  # not reading: the agent's writes to it fill the socket
    buf, stuck = b"", False
    while True:
        try:
            b = s.recv(1 << 16)
        except socket.timeout:
            stuck = True
            break
        if not b:
            break
        buf += b
    s.close()
    st, fields, body = parse(buf)
    if st != 200 or fields.get("content-length") != str(len(BIG)) or len(body) != len(BIG) or \
            body != BIG:
        print("FAILED: late reader of /big, run %d: status %s, %d of %d body bytes%s%s" %
              (i + 1, st, len(body), len(BIG), " (no byte for 10 s)" if stuck else "",
               "" if body == BIG[:len(body)] else " (content differs)"))
        FAILED.append("late reader of /big, run %d" % (i + 1))
        break
else:
    print("ok: a client that read late got all %d bytes of /big, 6 runs" % len(BIG))

# ---- the client's side: refused by the agent, never forwarded ----------------
check("not HTTP", "http", b"HELLO\r\n\r\n", 400,
      "the request line is malformed (want: METHOD SP target SP HTTP/1.1)")
check("bare LF", "http", b"GET / HTTP/1.1\nHost: a\n\n", 400, None)
check("unknown method", "http", req(b"/", method=b"BREW"), 501, None)
check("CONNECT", "http", b"CONNECT api:443 HTTP/1.1\r\nHost: api:443\r\n\r\n", 501, None)
check("HTTP/2.0", "http", req(b"/", ver=b"HTTP/2.0"), 505, None)
check("no Host", "http", req(b"/", host=b""), 400, "Host")
check("two Host", "http", req(b"/", extra=b"Host: b\r\n"), 400, "Host")
check("two Content-Length", "http", req(b"/", extra=b"Content-Length: 1\r\nContent-Length: 2\r\n"),
      400, "Content-Length")
check("Content-Length and chunked", "http",
      req(b"/", extra=b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n"), 400, None)
check("gzip coding", "http", req(b"/", extra=b"Transfer-Encoding: gzip\r\n"), 501, None)
check("obs-fold", "http", req(b"/", extra=b"X-A: 1\r\n  folded\r\n"), 400, None)
check("request line too long", "http", req(b"/" + b"a" * 9000), 414, None)
check("too many fields", "http", req(b"/", extra=b"".join(b"X-%d: 1\r\n" % i for i in range(150))),
      431, None)
check("head too long", "http", req(b"/", extra=b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(80))),
      431, None)
check("bad chunk size", "http", req(b"/echo", extra=b"Transfer-Encoding: chunked\r\n", method=b"POST") +
      b"zz\r\n", 400, "chunk")
buf = exchange("http", b"GET /x HTTP/1.1\r\nHost: a\r\nX-Partial", close_write=True)
assert buf == b"", buf
print("ok: a client that ends in the middle of its head: closed without a word")
# a client that leaves before the answer: nothing to check but the agent going on
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("%s/http" % S)
s.sendall(req(b"/echo-gone"))
s.close()
time.sleep(0.3)

# ---- tcp mode ----------------------------------------------------------------
buf = exchange("tcpdead", b"hello", close_write=True)
assert buf == b"", buf
print("ok: tcp mode, a gate that closes before TLS: the client's connection closed, no byte")
data = bytes(range(256)) * 400
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect("%s/tcp" % S)
s.sendall(data)
buf = b""
while len(buf) < len(data):
    b = s.recv(65536)
    assert b, len(buf)
    buf += b
s.close()
assert buf == data, (len(buf), len(data))
print("ok: tcp mode: %d bytes both ways" % len(buf))
# 2 MiB each way to a client that reads late: the agent stops reading the
# gate while the client's side is full, then goes on
big = os.urandom(2 << 20)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect("%s/tcp" % S)
sender = threading.Thread(target=s.sendall, args=(big,))
sender.start()
time.sleep(1.0)
buf = b""
while len(buf) < len(big):
    b = s.recv(1 << 16)
    assert b, len(buf)
    buf += b
sender.join()
s.close()
assert buf == big, len(buf)
print("ok: tcp mode: 2 MiB echoed to a client that read late")
# a client that resets its connection in the middle: the splice ends
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect("%s/tcp" % S)
s.sendall(b"x" * 1000)
assert s.recv(10), "no echo"
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
time.sleep(0.3)
# the client's half-close passed on; the gate's echo and close_notify come back
for i in range(3):
    buf = exchange("tcp", data, close_write=True)
    assert buf == data, (i, len(buf), len(data))
print("ok: tcp mode: the client's half-close passed on, the whole echo delivered")
waiter.join()
st, _, body = parse(slow["buf"])
if st != 502 or b"the connection to the gate https://127.0.0.1:" not in body or \
        b"did not finish within 10000 ms" not in body:
    FAILED.append("silent gate: %r" % slow["buf"])
else:
    print("ok: a gate that never answers: 502 %s" % body.decode().strip())
assert not FAILED, FAILED
EOF

# curl as an HTTP/1.0 client of the agent (--raw: the bytes as they came): a
# chunked answer of the gate reaches it decoded, ended by the close
rc=0
curl -sS --http1.0 --raw --max-time 20 --unix-socket "$S/http" -D h10.txt -o b10.txt \
	http://api/chunked 2>c10.err || rc=$?
((rc == 0)) || tg_fail "HTTP/1.0 /chunked through the agent: curl exit $rc: $(cat c10.err)"
head -n1 h10.txt | grep -q ' 200 ' || tg_fail "HTTP/1.0 /chunked through the agent: $(cat h10.txt)"
! grep -qi '^transfer-encoding:' h10.txt ||
	tg_fail "the agent sent Transfer-Encoding to an HTTP/1.0 client: $(cat h10.txt)"
grep -qi '^connection: close' h10.txt ||
	tg_fail "HTTP/1.0 /chunked through the agent without Connection: close: $(cat h10.txt)"
printf 'hello world' >want10.txt
cmp -s b10.txt want10.txt ||
	tg_fail "HTTP/1.0 /chunked body through the agent is not the content: $(od -c b10.txt | head -5)"
echo "ok: curl --http1.0 through the agent: a chunked answer decoded, ended by the close"

# the failures were counted and logged with their listener
curl -sS --max-time 5 -o metrics.txt "http://$ADMIN/metrics" || tg_fail "/metrics"
metric() { awk -v k="$1" 'index($0, k) == 1 && (substr($0, length(k) + 1, 1) ~ /[ {]/) { print $NF; exit }' metrics.txt; }
hf=$(metric 'tokengate_agent_handshakes_total{result="failed"}')
((hf >= 7)) || tg_fail "$hf failed handshakes counted (want at least 7: plain, close x2, other, sid, sname, sidbad)"
for l in dead plain close other sid sname sidbad nodns silent http; do
	f=$(metric "tokengate_agent_requests_total{listener=\"$l\",result=\"failed\"}")
	((f >= 1)) || tg_fail "listener $l: '$f' failed requests counted"
done
f=$(metric 'tokengate_agent_requests_total{listener="noticket",result="forwarded"}')
[[ $f == 4 ]] || tg_fail "listener noticket: $f requests forwarded (want 4)"
grep -q '^tokengate_agent_token_present 1$' metrics.txt || tg_fail "/metrics: token_present"
grep -qF "tokengate agent: listener other: TLS handshake with the gate https://127.0.0.1:$(port other) failed: the gate's certificate was refused" "$AGENT_LOG" ||
	tg_fail "the agent did not log the refused certificate: $(cat "$AGENT_LOG")"
grep -qF "tokengate agent: listener dead: cannot connect to the gate https://127.0.0.1:$DEAD_PORT" "$AGENT_LOG" ||
	tg_fail "the agent did not log the refused connection"
echo "ok: failures counted per listener and logged ($hf failed handshakes)"

# ---- the admin listener ------------------------------------------------------
[[ $(curl -sS --max-time 5 "http://$ADMIN/healthz") == ok ]] || tg_fail "/healthz"
code=$(curl -sS --max-time 5 -o nf.txt -w '%{http_code}' "http://$ADMIN/nope")
[[ $code == 404 ]] && grep -qF "not found: /healthz or /metrics" nf.txt || tg_fail "admin /nope: $code $(cat nf.txt)"
code=$(curl -sS --max-time 5 -o na.txt -w '%{http_code}' -X POST -d x "http://$ADMIN/metrics")
[[ $code == 405 ]] && grep -qF "only GET and HEAD" na.txt || tg_fail "admin POST: $code $(cat na.txt)"
echo "ok: admin /healthz, /metrics, 404, 405"

# ---- stop: the unix sockets go with the agent ---------------------------------
# a WebSocket splice and a tcp connection open when the agent stops: closed
python3 - "$S" "$AGENT_PID" <<'EOF' || tg_fail "connections open at the stop: see above"
import os, signal, socket, sys, time
S, pid = sys.argv[1], int(sys.argv[2])
ws = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ws.settimeout(20)
ws.connect("%s/http" % S)
ws.sendall(b"GET /ws HTTP/1.1\r\nHost: api\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    b = ws.recv(65536)
    assert b, buf
    buf += b
assert buf.startswith(b"HTTP/1.1 101 "), buf
tc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
tc.settimeout(20)
tc.connect("%s/tcp" % S)
tc.sendall(b"echo me")
got = b""
while len(got) < 7:
    b = tc.recv(65536)
    assert b, got
    got += b
assert got == b"echo me", got
os.kill(pid, signal.SIGTERM)
for s, name in ((ws, "websocket"), (tc, "tcp")):
    rest = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            break
        rest += b
    assert rest == b"", (name, rest)
    print("ok: the %s connection closed at the stop" % name)
EOF
# the SIGTERM above stops it: wait for its exit (a second SIGTERM, as
# agent_stop sends, kills it outright while it frees everything, which
# takes longer in a TG_SANITIZE build: exit 143)
tg_wait_until 30 tg__not tg__pid_alive "$AGENT_PID" || tg_fail "the agent did not exit within 30 s of SIGTERM"
AGENT_RC=0
wait "$AGENT_PID" || AGENT_RC=$?
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC"
[[ -z $(ls -A "$S") ]] || tg_fail "sockets left behind: $(ls "$S")"
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$AGENT_LOG" ||
	tg_fail "a sanitizer found a fault in the agent (above)"
echo PASS
