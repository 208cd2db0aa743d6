#!/usr/bin/env python3
"""gate_client.py — a small mTLS HTTP/1.1 client for the gate's tests
(python3 standard library only), for what curl cannot do: raw malformed
requests, several requests on one connection, arrival times of streamed
events, WebSocket frames, session resumption.

    gate_client.py --addr HOST:PORT --cert PEM --key PEM [--ca PEM]
                   [--timeout S] [--tls12] CMD ...

The client key must be a file (software key); keys on a token go through
curl or openssl s_client with the pkcs11 engine (gate_lib.sh).

Commands (one JSON line per response on stdout):
  req [-X M] [-H 'N: V']... [-d BODY] [-n] PATH [PATH...]
        one request per PATH, all on one keep-alive connection; each line
        {"status", "reason", "headers": [[n, v]...], "body", "tls",
         "resumed", "t_ms"}; stops at the first connection error.
        -n: a new connection per PATH, an error line for each failure.
  loop PATH --stop-file F [--per-conn N]
        GET PATH again and again (a new connection every N requests) until
        F exists; then {"ok": N, "fail": M, "failures": [...]}.
  raw TEXT [TEXT...]
        sends each TEXT (Python escapes: \\r \\n \\t \\x00 ...) as bytes on one
        connection, then reads responses until the peer closes (or
        --timeout); a line per response, then {"closed": true|false}.
  sse PATH
        GET PATH; prints {"t_ms": arrival ms since the request, "data": event
        text} per server-sent event as it arrives, then the response line.
  ws PATH MSG...
        WebSocket handshake on PATH (prints the 101 line), sends each MSG as
        a text frame and prints {"echo": text} for each, then a close.
  resume PATH [--wait-file F]
        two connections: a request on a full handshake, then (after F exists,
        when given; "first-done" is printed before waiting) a request on a
        connection that offers the first session. Lines as req, with
        "resumed".

`gate_client.py serve` reads command lines (arguments separated by \\x1f)
from stdin and runs each in this one process, ending each output with a
line "@@end STATUS" (tests/lib/gate_lib.sh uses it as a coprocess).

A TLS failure prints {"error": "tls", "detail": ...} and exits 3; a
connection closed before any response {"error": "eof"} exits 4; refused or
timed out {"error": "connect"|"timeout", ...} exits 5.
"""
import argparse
import base64
import codecs
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import time

TLS_ERRORS = (ssl.SSLError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class Fail(Exception):
    def __init__(self, kind, detail, code):
        super().__init__(detail)
        self.kind, self.detail, self.code = kind, detail, code


def out(obj):
    print(json.dumps(obj), flush=True)


def make_ctx(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if a.ca:
        ctx.load_verify_locations(a.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    if a.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Conn:
    def __init__(self, a, ctx, session=None):
        host, _, port = a.addr.rpartition(":")
        try:
            raw = socket.create_connection((host.strip("[]"), int(port)), timeout=a.timeout)
        except socket.timeout as e:
            raise Fail("timeout", "connect: %s" % e, 5)
        except OSError as e:
            raise Fail("connect", str(e), 5)
        try:
            self.s = ctx.wrap_socket(raw, server_hostname=a.servername, session=session)
        except TLS_ERRORS as e:
            raise Fail("tls", str(e), 3)
        except socket.timeout as e:
            raise Fail("timeout", "handshake: %s" % e, 5)
        except OSError as e:
            raise Fail("tls", "handshake: %s" % e, 3)
        self.buf = bytearray()  # amortized appends and front deletes
        self.eof = False

    def send(self, data):
        try:
            self.s.sendall(data)
        except TLS_ERRORS as e:
            raise Fail("tls", str(e), 3)
        except OSError as e:
            raise Fail("eof", "send: %s" % e, 4)

    def fill(self):
        """Reads more bytes; False at EOF. TLS alerts raise Fail('tls')."""
        if self.eof:
            return False
        try:
            d = self.s.recv(65536)
        except TLS_ERRORS as e:
            if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                d = b""
            else:
                raise Fail("tls", str(e), 3)
        except socket.timeout:
            raise Fail("timeout", "read timed out", 5)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def line(self):
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                break
            start = max(0, len(self.buf) - 1)
            if not self.fill():
                return None
        ln = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return ln

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise Fail("eof", "body cut short", 4)
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def response(self, method="GET", on_chunk=None):
        """One response: dict, or None at a clean EOF before any byte."""
        t0 = time.monotonic()
        st = self.line()
        if st is None:
            if self.buf:
                raise Fail("eof", "partial status line %r" % bytes(self.buf), 4)
            return None
        parts = st.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        headers = []
        while True:
            ln = self.line()
            if ln is None:
                raise Fail("eof", "head cut short", 4)
            if ln == b"":
                break
            n, _, v = ln.decode("latin-1").partition(":")
            headers.append([n, v.strip()])
        h = {n.lower(): v for n, v in headers}
        parts_ = []
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif h.get("transfer-encoding", "").lower() == "chunked":
            while True:
                sz = self.line()
                if sz is None:
                    raise Fail("eof", "chunk size cut short", 4)
                n = int(sz.split(b";")[0], 16)
                if n == 0:
                    while self.line() not in (b"", None):
                        pass
                    break
                d = self.take(n)
                self.take(2)
                if on_chunk:
                    on_chunk(d)
                parts_.append(d)
        elif "content-length" in h:
            parts_.append(self.take(int(h["content-length"])))
        else:
            while self.fill():
                pass
            parts_.append(bytes(self.buf))
            del self.buf[:]
        body = b"".join(parts_)
        return {"status": status, "reason": parts[2] if len(parts) > 2 else "",
                "headers": headers, "body": body.decode("utf-8", "replace"),
                "tls": self.s.version(), "resumed": self.s.session_reused,
                "t_ms": round((time.monotonic() - t0) * 1000)}

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def build(method, path, headers, body, host="gate"):
    h = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    h += headers
    if body is not None:
        h.append("Content-Length: %d" % len(body))
    return ("\r\n".join(h) + "\r\n\r\n").encode("latin-1") + (body or b"")


def cmd_req(a, ctx):
    body = a.data.encode() if a.data is not None else None
    if a.new_conn:  # one connection per path; errors printed, not fatal
        bad = 0
        for p in a.paths:
            try:
                c = Conn(a, ctx)
                c.send(build(a.method, p, a.header, body))
                r = c.response(a.method)
                c.close()
                out(r if r is not None else {"error": "eof", "detail": "no response"})
            except Fail as f:
                bad += 1
                out({"error": f.kind, "detail": f.detail})
        return
    c = Conn(a, ctx)
    for p in a.paths:
        c.send(build(a.method, p, a.header, body))
        r = c.response(a.method)
        if r is None:
            raise Fail("eof", "connection closed before a response to %s" % p, 4)
        out(r)
    c.close()


def cmd_loop(a, ctx):
    """Requests PATH until STOP_FILE exists: a new connection every
    --per-conn requests. Prints {"ok": N, "fail": M, "failures": [...]}
    (a failure: any status but 200, or a connection error)."""
    ok = fail = 0
    failures = []
    c = None
    n_on_conn = 0
    # (and once the test's directory is gone: a test that failed before
    # writing the stop file must not leave a client spinning)
    stop_dir = os.path.dirname(os.path.abspath(a.stop_file))
    while not os.path.exists(a.stop_file) and os.path.isdir(stop_dir):
        try:
            if c is None:
                c = Conn(a, ctx)
                n_on_conn = 0
            c.send(build("GET", a.path, [], None))
            r = c.response()
            n_on_conn += 1
            if r is None:
                raise Fail("eof", "closed before a response", 4)
            if r["status"] == 200:
                ok += 1
            else:
                fail += 1
                failures.append({"status": r["status"], "body": r["body"][:200]})
            hdr = {n.lower(): v for n, v in r["headers"]}
            if n_on_conn >= a.per_conn or hdr.get("connection", "").lower() == "close":
                c.close()
                c = None
        except Fail as f:
            fail += 1
            failures.append({"error": f.kind, "detail": f.detail})
            if c is not None:
                c.close()
            c = None
    out({"ok": ok, "fail": fail, "failures": failures[:20]})


def cmd_raw(a, ctx):
    c = Conn(a, ctx)
    for t in a.texts:
        c.send(codecs.decode(t, "unicode_escape").encode("latin-1"))
    n = 0
    closed = False
    try:
        while True:
            r = c.response()
            if r is None:
                closed = True
                break
            n += 1
            out(r)
    except Fail as f:
        if f.kind == "timeout":
            closed = False
        elif f.kind == "eof":
            closed = True
        else:
            raise
    out({"closed": closed, "responses": n})
    c.close()


def cmd_sse(a, ctx):
    c = Conn(a, ctx)
    t0 = time.monotonic()
    c.send(build("GET", a.path, ["Accept: text/event-stream"], None))
    pending = [b""]

    def on_chunk(d):
        pending[0] += d
        while b"\n\n" in pending[0]:
            ev, pending[0] = pending[0].split(b"\n\n", 1)
            out({"t_ms": round((time.monotonic() - t0) * 1000),
                 "data": ev.decode("utf-8", "replace")})

    r = c.response("GET", on_chunk)
    if r is None:
        raise Fail("eof", "no response", 4)
    r["body"] = len(r["body"])
    out(r)
    c.close()


def ws_frame(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_recv(c):
    h = c.take(2)
    op, n = h[0] & 0x0F, h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.take(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.take(8))[0]
    mask = c.take(4) if h[1] & 0x80 else b"\0\0\0\0"
    d = c.take(n)
    return op, bytes(b ^ mask[i % 4] for i, b in enumerate(d))


def cmd_ws(a, ctx):
    c = Conn(a, ctx)
    key = base64.b64encode(os.urandom(16)).decode()
    c.send(build("GET", a.path, ["Upgrade: websocket", "Connection: Upgrade",
                                 "Sec-WebSocket-Key: " + key,
                                 "Sec-WebSocket-Version: 13"], None))
    st = c.line()
    if st is None:
        raise Fail("eof", "no response to the upgrade", 4)
    headers = []
    while True:
        ln = c.line()
        if ln is None:
            raise Fail("eof", "head cut short", 4)
        if ln == b"":
            break
        n, _, v = ln.decode("latin-1").partition(":")
        headers.append([n, v.strip()])
    status = int(st.split(b" ")[1])
    want = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    h = {n.lower(): v for n, v in headers}
    out({"status": status, "headers": headers,
         "accept_ok": h.get("sec-websocket-accept") == want})
    if status != 101:
        return
    for m in a.msgs:
        c.send(ws_frame(1, m.encode()))
        op, d = ws_recv(c)
        out({"opcode": op, "echo": d.decode("utf-8", "replace")})
    c.send(ws_frame(8, struct.pack("!H", 1000)))
    op, d = ws_recv(c)
    out({"opcode": op, "close": True})
    c.close()


def cmd_resume(a, ctx):
    c = Conn(a, ctx)
    c.send(build("GET", a.path, [], None))
    r = c.response()
    if r is None:
        raise Fail("eof", "no response on the first connection", 4)
    out(r)
    sess = c.s.session
    c.close()
    if a.wait_file:
        out({"first-done": True})
        while not os.path.exists(a.wait_file):
            time.sleep(0.05)
    c = Conn(a, ctx, session=sess)
    c.send(build("GET", a.path, [], None))
    r = c.response()
    if r is None:
        raise Fail("eof", "connection closed before a response (resumed=%s)"
                   % c.s.session_reused, 4)
    out(r)
    c.close()


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--servername", default="localhost")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--tls12", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("req")
    p.add_argument("-X", dest="method", default="GET")
    p.add_argument("-H", dest="header", action="append", default=[])
    p.add_argument("-d", dest="data")
    p.add_argument("-n", dest="new_conn", action="store_true",
                   help="a new connection per path; go on after errors")
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("loop")
    p.add_argument("path")
    p.add_argument("--stop-file", required=True)
    p.add_argument("--per-conn", type=int, default=1000000)
    p = sub.add_parser("raw")
    p.add_argument("texts", nargs="+")
    p = sub.add_parser("sse")
    p.add_argument("path")
    p = sub.add_parser("ws")
    p.add_argument("path")
    p.add_argument("msgs", nargs="*")
    p = sub.add_parser("resume")
    p.add_argument("path")
    p.add_argument("--wait-file")
    return ap


def run(argv):
    """Runs one command line; returns the exit status."""
    try:
        a = parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    ctx = make_ctx(a)
    fn = {"req": cmd_req, "loop": cmd_loop, "raw": cmd_raw, "sse": cmd_sse, "ws": cmd_ws,
          "resume": cmd_resume}[a.cmd]
    try:
        fn(a, ctx)
    except Fail as f:
        out({"error": f.kind, "detail": f.detail})
        return f.code
    return 0


def serve():
    """One process for many commands (python's start costs a second on a
    loaded machine): each stdin line is a command line, arguments separated
    by \\x1f; its output lines are followed by "@@end STATUS"."""
    for line in sys.stdin:
        argv = line.rstrip("\n").split("\x1f")
        if argv and argv[-1] == "":
            argv.pop()
        try:
            rc = run(argv)
        except Exception as e:  # a bug here must not hang the test
            out({"error": "client", "detail": repr(e)})
            rc = 1
        print("@@end %d" % rc, flush=True)


def main():
    if sys.argv[1:] == ["serve"]:
        serve()
        return
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
