#!/usr/bin/env python3
"""gate_proxy_peer.py — both ends around `tokengate gate` in http mode, for
tests/integration/test_gate_proxy.sh.

  gate_proxy_peer.py upstream PORTFILE
      A raw HTTP/1.1 upstream on 127.0.0.1 (port written to PORTFILE):
        /echo...   200 JSON: the upstream connection's number and the
                   request's number on it, method, target, headers,
                   whether the body came chunked, its length and SHA-256
                   (answers Expect: 100-continue with a 100 first)
        /close...  a body without framing, ended by closing
        /big?n=N   N bytes of 'x' with Content-Length
        /slow?s=S  answers after S seconds
        /stall?s=S half of the body, S seconds of silence, the rest
        /abort     closes the connection without an answer
        /sse       three server-sent events 0.4 s apart (chunked)
        /ws        101 Switching Protocols, then echoes bytes until EOF

  gate_proxy_peer.py client --port P --cert C --key K --ca CA [--gate-pid PID] SCENARIO...
      Each scenario talks TLS with the client certificate to the gate,
      checks what comes back and prints "ok: ..." or exits 1 with the
      reason. Request ids the test checks in the audit log are printed
      as "id NAME ID".
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time

# ---------------------------------------------------------------- upstream


class Conn:
    """A buffered reader over a socket (plain or TLS)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError("connection closed")
        self.buf += b

    def until(self, sep):
        while sep not in self.buf:
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        try:
            while True:
                self.fill()
        except (EOFError, ConnectionResetError):
            pass
        out, self.buf = self.buf, b""
        return out


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
    return first, headers


def hget(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def read_body(c, headers):
    """The body after a head: (bytes, chunked?)."""
    if hget(headers, "transfer-encoding"):
        body = b""
        while True:
            size = int(c.until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                c.until(b"\r\n")
                return body, True
            body += c.exact(size)
            c.exact(2)
    n = int((hget(headers, "content-length") or ["0"])[0])
    return c.exact(n), False


def serve(sock, conn_no):
    c = Conn(sock)
    n = 0
    drop = False
    try:
        while True:
            first, headers = parse_head(c.until(b"\r\n\r\n"))
            method, target, _ = first.split(" ")
            n += 1
            if drop:
                return  # /dropnext: as if closed while idle in the gate's pool
            if [v for v in hget(headers, "expect") if v.lower() == "100-continue"]:
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body, chunked = read_body(c, headers)
            if target.startswith("/echo"):
                hd = {}
                for k, v in headers:
                    hd.setdefault(k.lower(), []).append(v)
                out = json.dumps({"conn": conn_no, "n": n, "method": method, "target": target,
                                  "headers": hd, "chunked": chunked, "body_len": len(body),
                                  "body_sha256": hashlib.sha256(body).hexdigest()}).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
            elif target.startswith("/close"):
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" +
                             b"until close\n" * 1000)
                return
            elif target.startswith("/big"):
                size = int(target.split("n=")[1])
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                chunk = b"x" * 65536
                while size > 0:
                    sock.sendall(chunk[:min(size, len(chunk))])
                    size -= min(size, len(chunk))
            elif target.startswith("/slow"):
                time.sleep(float(target.split("s=")[1]))
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
            elif target.startswith("/stall"):
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
                time.sleep(float(target.split("s=")[1]))
                sock.sendall(b"-late")
            elif target.startswith("/dropnext"):
                # answered with keep-alive; the next request on this
                # connection finds it closed
                out = json.dumps({"conn": conn_no}).encode()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
                drop = True
            elif target.startswith("/abort"):
                return  # closes without an answer
            elif target.startswith("/sse"):
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                for i in range(3):
                    ev = b"data: event %d\n\n" % i
                    sock.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                    time.sleep(0.4)
                sock.sendall(b"0\r\n\r\n")
            elif target.startswith("/ws"):
                key = hget(headers, "sec-websocket-key")[0]
                acc = base64.b64encode(hashlib.sha1(
                    (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
                if c.buf:
                    sock.sendall(c.buf)
                    c.buf = b""
                while True:
                    b = sock.recv(65536)
                    if not b:
                        return
                    sock.sendall(b)
            else:
                sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        sock.close()


def upstream(portfile):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    count = 0
    while True:
        c, _ = s.accept()
        count += 1
        threading.Thread(target=serve, args=(c, count), daemon=True).start()


# ------------------------------------------------------------------ client


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Client:
    def __init__(self, a):
        self.a = a

    def connect(self):
        ctx = ssl.create_default_context(cafile=self.a.ca)
        ctx.check_hostname = False
        ctx.load_cert_chain(self.a.cert, self.a.key)
        raw = socket.create_connection(("127.0.0.1", self.a.port), timeout=20)
        return ctx.wrap_socket(raw)

    @staticmethod
    def response(c, method="GET"):
        """(status, headers, body) of one response; 1xx are returned too."""
        first, headers = parse_head(c.until(b"\r\n\r\n"))
        status = int(first.split(" ")[1])
        if method == "HEAD" or status < 200 or status in (204, 304):
            return status, headers, b""
        if hget(headers, "transfer-encoding") or hget(headers, "content-length"):
            body, _ = read_body(c, headers)
        else:
            body = c.rest()
        return status, headers, body


def get(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: api\r\n%s\r\n" % (path, extra)).encode()


def sc_headers(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(get("/echo//a/./b/../c?q=1%2F&r=%7e",
                  "X-Tokengate-Identity: spiffe://example.org/svc/admin\r\n"
                  "X-Tokengate-Key: level=device-attested; pin=always; touch=always\r\n"
                  "x-tokengate-anything: spoofed\r\nX-Other: kept\r\n"))
    st, hd, body = cl.response(c)
    check(st == 200, "GET /echo: status %d %r" % (st, body))
    j = json.loads(body)
    h = j["headers"]
    check(j["target"] == "/echo/a/c?q=1%2F&r=%7e",
          "upstream target %r, want the normalized path and the raw query" % j["target"])
    check(h.get("x-tokengate-identity") == [a.identity],
          "X-Tokengate-Identity upstream: %r, want exactly [%r]" % (h.get("x-tokengate-identity"),
                                                                    a.identity))
    key = h.get("x-tokengate-key", [])
    check(len(key) == 1 and key[0].startswith("level=hsm-operator; pin=") and "serial=" in key[0],
          "X-Tokengate-Key upstream: %r" % key)
    check("x-tokengate-anything" not in h, "a client X-Tokengate-* header reached the upstream")
    rid = h.get("x-tokengate-request-id", [""])[0]
    check(len(rid) == 16, "X-Tokengate-Request-Id upstream: %r" % rid)
    check(h.get("x-other") == ["kept"], "X-Other was not passed: %r" % h)
    print("id headers %s" % rid)
    print("ok: identity and key headers set by the gate, client copies dropped, path "
          "normalized, query kept")


def sc_pool(cl, a):
    conns = set()
    for _ in range(2):
        s = cl.connect()
        c = Conn(s)
        for i in range(4):
            s.sendall(get("/echo/pool/%d" % i))
            st, hd, body = cl.response(c)
            check(st == 200, "pool: status %d" % st)
            conns.add(json.loads(body)["conn"])
        s.close()
    check(len(conns) == 1, "8 requests on 2 client connections used upstream connections %r; "
                           "want 1 (keep-alive pool)" % sorted(conns))
    print("ok: 8 requests over 2 client connections used one pooled upstream connection")


def sc_chunked(cl, a):
    s = cl.connect()
    c = Conn(s)
    body = b"".join(b"part %d;" % i for i in range(3))
    s.sendall(b"POST /echo/up HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n")
    for i in range(3):
        p = b"part %d;" % i
        s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
        time.sleep(0.1)
    s.sendall(b"0\r\n\r\n")
    st, hd, rb = cl.response(c, "POST")
    j = json.loads(rb)
    check(st == 200 and j["chunked"] and j["body_len"] == len(body) and
          j["body_sha256"] == hashlib.sha256(body).hexdigest(),
          "chunked upload: %d %r" % (st, rb))
    print("ok: a chunked request body reached the upstream re-chunked and intact")


def sc_expect(cl, a):
    s = cl.connect()
    c = Conn(s)
    body = b"y" * 5000
    s.sendall(b"POST /echo/expect HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    s.settimeout(3)
    st, hd, _ = cl.response(c, "POST")
    check(st == 100, "Expect: 100-continue: first answer %d, want 100" % st)
    s.sendall(body)
    st, hd, rb = cl.response(c, "POST")
    check(st == 200 and json.loads(rb)["body_len"] == len(body), "after 100: %d %r" % (st, rb))
    print("ok: Expect: 100-continue relayed the upstream's 100, then the body went up")


def sc_close(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(get("/close"))
    st, hd, body = cl.response(c)
    check(st == 200 and hget(hd, "transfer-encoding") == ["chunked"] and
          body == b"until close\n" * 1000,
          "a read-until-close response: %d %r, %d bytes" % (st, hd, len(body)))
    s.sendall(get("/echo/after"))
    st, hd, body = cl.response(c)
    check(st == 200, "the connection did not stay open after a re-chunked response")
    print("ok: a response ended by the upstream's close reached the client chunked, and the "
          "client connection stayed open")


def sc_pipeline(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(get("/echo/p1") + get("/admin/x") + get("/echo/p3"))
    got = []
    for _ in range(3):
        st, hd, body = cl.response(c)
        got.append((st, json.loads(body).get("target", json.loads(body).get("route"))))
    check(got == [(200, "/echo/p1"), (403, "admin"), (200, "/echo/p3")],
          "pipelined answers: %r" % got)
    # the same in three TLS records that arrive together (one TCP segment
    # when Nagle holds the later ones): the gate reads ahead, so records
    # wait inside its TLS library that no readable event announces
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    s.settimeout(10)
    for p in ("/echo/r1", "/echo/r2", "/echo/r3"):
        s.send(get(p))
    got = []
    for _ in range(3):
        st, hd, body = cl.response(c)
        got.append((st, json.loads(body).get("target")))
    check(got == [(200, "/echo/r1"), (200, "/echo/r2"), (200, "/echo/r3")],
          "pipelined answers, one TLS record each: %r" % got)
    print("ok: three pipelined requests (allow, deny, allow) answered in order on one "
          "connection, in one TLS record and in three")


def sc_deny_body(cl, a):
    s = cl.connect()
    c = Conn(s)
    body = b"z" * 300000
    s.sendall(b"POST /admin/upload HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n"
              % len(body))
    try:
        s.sendall(body)
    except OSError:
        pass
    st, hd, rb = cl.response(c, "POST")
    j = json.loads(rb)
    check(st == 403 and j["error"] == "forbidden" and j["route"] == "admin" and
          hget(hd, "connection") == ["close"],
          "denied upload: %d %r %r" % (st, hd, rb))
    check(j["reason"] == "route admin needs key level device-attested; the key is hsm-operator",
          "deny reason: %r" % j["reason"])
    s.settimeout(5)
    check(c.rest() == b"", "bytes after the 403")
    print("ok: a denied request with a body gets its 403 (Connection: close), then the "
          "connection closes")


def vm(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def sc_big(cl, a):
    n = 64 * 1024 * 1024
    s = cl.connect()
    c = Conn(s)
    base = vm(a.gate_pid, "VmRSS")
    s.sendall(get("/big?n=%d" % n))
    first, hd = parse_head(c.until(b"\r\n\r\n"))
    got = len(c.buf)
    c.buf = b""
    peak = 0
    while got < n:
        b = s.recv(262144)
        check(b, "the big body ended early at %d bytes" % got)
        got += len(b)
        if got % (4 << 20) < len(b):
            time.sleep(0.05)  # a slow reader: the gate must not buffer for it
            peak = max(peak, vm(a.gate_pid, "VmRSS"))
    check(peak - base < 24 * 1024, "the gate grew by %d KiB while relaying 64 MiB to a slow "
                                   "reader (want < 24 MiB: backpressure)" % (peak - base))
    print("ok: 64 MiB relayed to a slow reader with the gate growing %d KiB" % (peak - base))


def sc_slowloris(cl, a):
    s = cl.connect()
    c = Conn(s)
    t0 = time.time()
    s.sendall(b"GET /echo/slow HTTP/1.1\r\nHost: api\r\n")
    s.settimeout(a.header_s + 10)
    st, hd, body = cl.response(c)
    dt = time.time() - t0
    j = json.loads(body)
    check(st == 408 and j["error"] == "request timeout" and
          a.header_s * 0.8 < dt < a.header_s + 3,
          "slowloris: %d after %.1f s %r" % (st, dt, body))
    check(c.rest() == b"", "bytes after the 408")
    print("ok: an unfinished request head got 408 after %.1f s (header_ms) and the connection "
          "closed" % dt)


def sc_timeouts(cl, a):
    s = cl.connect()
    c = Conn(s)
    t0 = time.time()
    s.sendall(get("/slow?s=%g" % (a.upstream_s + 1.5)) + get("/echo/after-504"))
    st, hd, body = cl.response(c)
    dt = time.time() - t0
    j = json.loads(body)
    check(st == 504 and j["error"] == "upstream timeout" and
          j["reason"] == "the upstream sent no response head within %d ms (limits.upstream_ms)"
          % (a.upstream_s * 1000) and a.upstream_s * 0.8 < dt < a.upstream_s + 1.2,
          "slow upstream: %d after %.1f s %r" % (st, dt, body))
    st, hd, body = cl.response(c)
    check(st == 200, "no keep-alive after a 504: %d" % st)
    s.sendall(get("/stall?s=%g" % (a.upstream_s + 1.5)))
    first, hd = parse_head(c.until(b"\r\n\r\n"))
    check(first.split(" ")[1] == "200", "stall: %r" % first)
    s.settimeout(a.upstream_s + 5)
    got = c.rest()
    check(got == b"first", "a body that stalls for upstream_ms: got %r then the close" % got)
    print("ok: 504 after upstream_ms without a response head (keep-alive kept); a body that "
          "stalls longer than upstream_ms closes the client connection")


def sc_abort(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(get("/echo/warm"))  # the next request takes this pooled connection
    st, hd, body = cl.response(c)
    for path in ("/abort", "/abort?again"):
        s.sendall(get(path))
        s.settimeout(10)
        st, hd, body = cl.response(c)
        j = json.loads(body)
        check(st == 502 and j["reason"] == "the upstream closed the connection before its "
                                           "response head", "%s: %d %r" % (path, st, body))
    s.sendall(get("/echo/after-502"))
    st, hd, body = cl.response(c)
    check(st == 200, "no keep-alive after a 502: %d" % st)
    print("ok: an upstream closing without an answer gives 502 (pooled and new connections), "
          "keep-alive kept")


def drop_next(cl, s, c):
    """/dropnext on (s, c): the upstream closes that pooled connection, which
    the gate's next request on it finds closed; its upstream connection number"""
    s.sendall(get("/dropnext"))
    st, hd, body = cl.response(c)
    check(st == 200, "/dropnext: %d %r" % (st, body))
    return json.loads(body)["conn"]


def sc_retry(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.settimeout(10)
    first = drop_next(cl, s, c)
    # the next request takes that pooled connection, which closes: a GET
    # goes once more on a new connection
    s.sendall(get("/echo/retried"))
    st, hd, body = cl.response(c)
    check(st == 200, "a GET on a pooled connection found closed: want 200 after a retry, "
                     "got %d %r" % (st, body))
    j = json.loads(body)
    check(j["conn"] != first and j["n"] == 1,
          "the retry went on connection %d (request %d), want a new one (not %d)"
          % (j["conn"], j["n"], first))
    # a request with a body is never sent twice: 502
    drop_next(cl, s, c)
    s.sendall(b"POST /echo/once HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\n\r\nhi")
    st, hd, body = cl.response(c)
    check(st == 502, "a POST with a body on a closed pooled connection: want 502, got %d %r"
          % (st, body))
    # nor is a POST without one (not idempotent)
    s.close()
    s = cl.connect()
    c = Conn(s)
    s.settimeout(10)
    drop_next(cl, s, c)
    s.sendall(b"POST /echo/once HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\n\r\n")
    st, hd, body = cl.response(c)
    check(st == 502, "a POST without a body on a closed pooled connection: want 502, "
                     "got %d %r" % (st, body))
    s.close()
    print("ok: a GET whose pooled upstream connection was closed is retried once on a new "
          "connection; a POST (with or without a body) gets 502")


def sc_sse(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(get("/sse"))
    first, hd = parse_head(c.until(b"\r\n\r\n"))
    times = []
    t0 = time.time()
    while len(times) < 3:
        size = int(c.until(b"\r\n").split(b";")[0], 16)
        data = c.exact(size)
        c.exact(2)
        if data.startswith(b"data: event"):
            times.append(time.time() - t0)
    check(times[1] - times[0] > 0.25 and times[2] - times[1] > 0.25,
          "SSE events arrived at %r: not one by one" % times)
    print("ok: SSE events reached the client one by one (%s s)" %
          ", ".join("%.2f" % t for t in times))


def ws_get(path):
    return get(path, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def sc_ws(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(ws_get("/ws"))
    st, hd, _ = cl.response(c)
    check(st == 101 and hget(hd, "sec-websocket-accept") == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
          "WebSocket: %d %r" % (st, hd))
    for msg in (b"\x81\x05hello", b"x" * 100000):
        s.sendall(msg)
        check(c.exact(len(msg)) == msg, "the spliced bytes did not come back")
    s.close()
    s = cl.connect()
    c = Conn(s)
    s.sendall(ws_get("/echo/ws") + get("/echo/after-ws"))
    st, hd, body = cl.response(c)
    j = json.loads(body)
    check(st == 403 and j["route"] == "echo" and "does not allow WebSocket" in j["reason"],
          "upgrade on a route without websocket: true: %d %r" % (st, body))
    st, hd, body = cl.response(c)
    check(st == 200, "no keep-alive after the refused upgrade: %d" % st)
    print("ok: WebSocket spliced both ways on a websocket route; refused (403) elsewhere")


def sc_idle_stop(cl, a):
    s = cl.connect()
    c = Conn(s)
    s.sendall(get("/echo/before-stop"))
    st, hd, body = cl.response(c)
    check(st == 200 and hget(hd, "connection") != ["close"], "before the stop: %d %r" % (st, hd))
    print("idle", flush=True)
    s.settimeout(15)
    t0 = time.time()
    try:
        rest = c.rest()
    except socket.timeout:
        fail("an idle keep-alive connection stayed open 15 s after SIGTERM")
    check(rest == b"", "bytes on an idle connection: %r" % rest)
    print("ok: an idle keep-alive connection was closed %.1f s after the stop began" %
          (time.time() - t0))


SCENARIOS = {k[3:]: v for k, v in globals().items() if k.startswith("sc_")}


def client(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--identity", required=True)
    p.add_argument("--gate-pid", type=int, default=0)
    p.add_argument("--header-s", type=float, default=10)
    p.add_argument("--upstream-s", type=float, default=30)
    p.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    a = p.parse_args(argv)
    cl = Client(a)
    for name in a.scenarios:
        SCENARIOS[name](cl, a)


if __name__ == "__main__":
    if sys.argv[1:2] == ["upstream"]:
        upstream(sys.argv[2])
    else:
        client(sys.argv[2:] if sys.argv[1:2] == ["client"] else sys.argv[1:])
