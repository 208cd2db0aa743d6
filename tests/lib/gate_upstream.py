#!/usr/bin/env python3
"""gate_upstream.py — the HTTP/1.1 upstream the gate's tests put behind
`tokengate gate` (python3 standard library only).

    gate_upstream.py (--listen HOST:PORT | --unix PATH)
                     [--https CERT KEY] [--log FILE]

Prints "ready port=PORT" (or "ready unix=PATH") on stdout once it listens
(PORT 0 picks a free port). Keep-alive (HTTP/1.1); request bodies with
Content-Length or chunked framing are read (and hashed). Paths:

  /echo           200, JSON: method, path (the request-target exactly as
                  received), version, headers (list of [name, value] pairs,
                  in order, names as received), body_length, body_sha256,
                  conn (this connection's number), nreq (requests on it)
  /sse?n=N&ms=M   text/event-stream, chunked: N events (default 5), M ms
                  apart (default 300), each flushed on its own
  /slow?ms=N      sleeps N ms, then 200 {"slept_ms": N}
  /status/N       status N with a small JSON body
  /chunked?n=N    a chunked response of N chunks (default 4) "chunk i\\n"
  /big?bytes=N    N bytes ('x' ... ), streamed in 64 KiB writes, with
                  Content-Length (add &chunked=1 for chunked framing)
  /ws*            WebSocket (RFC 6455): handshake, echoes text and binary
                  frames, answers ping, echoes close and ends
  /count          200 {"requests": R, "connections": C} (/count itself is
                  not counted)
  /close          200, then closes the connection (Connection: close)
  /abort          closes the connection without any answer (a broken upstream)
  anything else   404 JSON

--log FILE appends one JSON line per request (method, path, headers) so a
test can assert what did (or did not) reach the upstream.
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

LOCK = threading.Lock()
STATE = {"requests": 0, "connections": 0}
LOG = None


def log_request(rec):
    if LOG is None:
        return
    with LOCK:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gate-upstream/1"
    sys_version = ""

    def setup(self):
        super().setup()
        with LOCK:
            STATE["connections"] += 1
            self.conn_no = STATE["connections"]
        self.nreq = 0

    def log_message(self, fmt, *args):  # quiet; unix sockets have no address
        pass

    # ---- helpers ----------------------------------------------------------
    def read_body(self):
        """The request body (Content-Length or chunked), as bytes."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None and te.strip().lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, extra=None):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or []):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # ---- dispatch -----------------------------------------------------------
    def handle_any(self):
        self.nreq += 1
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        if path != "/count":
            with LOCK:
                STATE["requests"] += 1
        headers = [[k, v] for k, v in self.headers.raw_items()]
        if path.startswith("/ws"):
            return self.websocket(headers)
        body = self.read_body()
        log_request({"method": self.command, "path": self.path, "headers": headers,
                     "body_length": len(body), "time": time.time()})
        if path == "/echo" or path.startswith("/echo/") or path.startswith("/v1/") \
                or path.startswith("/admin"):
            return self.send_json(200, {
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": headers,
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "conn": self.conn_no,
                "nreq": self.nreq,
            })
        if path == "/count":
            with LOCK:
                snap = dict(STATE)
            return self.send_json(200, snap)
        if path == "/slow":
            ms = int(q.get("ms", "1000"))
            time.sleep(ms / 1000.0)
            return self.send_json(200, {"slept_ms": ms})
        if path.startswith("/status/"):
            code = int(path[len("/status/"):])
            return self.send_json(code, {"status": code})
        if path == "/sse":
            return self.sse(int(q.get("n", "5")), int(q.get("ms", "300")))
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("n", "4"))):
                self.chunk(b"chunk %d\n" % i)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return None
        if path == "/big":
            return self.big(int(q.get("bytes", "1048576")), q.get("chunked") == "1")
        if path == "/abort":  # the upstream breaks: no answer at all
            self.close_connection = True
            return None
        if path == "/close":
            self.close_connection = True
            return self.send_json(200, {"closing": True}, [("Connection", "close")])
        return self.send_json(404, {"error": "no such path", "path": self.path})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def sse(self, n, ms):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for i in range(n):
            if i:
                time.sleep(ms / 1000.0)
            self.chunk(b"id: %d\ndata: event %d at %.3f\n\n" % (i, i, time.time()))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def big(self, n, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        piece = b"x" * 65536
        left = n
        while left > 0:
            part = piece[:min(left, len(piece))]
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            else:
                self.wfile.write(part)
            left -= len(part)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---- WebSocket ------------------------------------------------------------
    def websocket(self, headers):
        log_request({"method": self.command, "path": self.path, "headers": headers,
                     "body_length": 0, "time": time.time()})
        key = self.headers.get("Sec-WebSocket-Key")
        upg = (self.headers.get("Upgrade") or "").lower()
        conn = (self.headers.get("Connection") or "").lower()
        if not key or upg != "websocket" or "upgrade" not in conn:
            return self.send_json(400, {"error": "not a websocket handshake"})
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            frame = ws_read(self.rfile)
            if frame is None:
                return None
            op, payload = frame
            if op in (1, 2):
                ws_write(self.wfile, op, payload)
            elif op == 9:
                ws_write(self.wfile, 10, payload)
            elif op == 8:
                ws_write(self.wfile, 8, payload)
                return None


def ws_read(f):
    """One frame (opcode, unmasked payload) or None at EOF."""
    h = f.read(2)
    if len(h) < 2:
        return None
    op = h[0] & 0x0F
    masked = h[1] & 0x80
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", f.read(8))[0]
    mask = f.read(4) if masked else b"\0\0\0\0"
    data = f.read(n)
    if len(data) < n:
        return None
    return op, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def ws_write(f, op, payload, mask=None):
    """Writes one final frame; mask (4 bytes) for a client's frames."""
    n = len(payload)
    head = bytes([0x80 | op])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    f.write(head + payload)
    f.flush()


def quiet_error(request, client_address):
    """A peer that went away (or a failed TLS handshake) is not news."""
    exc = sys.exc_info()[1]
    if isinstance(exc, (OSError, ssl.SSLError, ConnectionError, ValueError)):
        return
    sys.stderr.write("gate_upstream: error serving %r: %r\n" % (client_address, exc))


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    ssl_ctx = None

    def handle_error(self, request, client_address):
        quiet_error(request, client_address)

    def get_request(self):
        sock, addr = super().get_request()
        # headers and body go out in separate writes: without NODELAY the
        # body waits for the peer's delayed ACK (40 ms per response)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_ctx is not None:
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
            sock.settimeout(10)
            try:
                sock.do_handshake()
            except (ssl.SSLError, OSError):
                sock.close()
                raise
            sock.settimeout(None)
        return sock, addr


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        quiet_error(request, client_address)


class UnixHandler(Handler):
    def setup(self):
        self.client_address = ("unix", 0)
        super().setup()


def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--listen", help="HOST:PORT (PORT 0: any free port)")
    g.add_argument("--unix", help="unix socket path")
    ap.add_argument("--https", nargs=2, metavar=("CERT", "KEY"),
                    help="serve TLS with this certificate and key (PEM)")
    ap.add_argument("--log", help="append one JSON line per request")
    a = ap.parse_args()
    LOG = a.log
    if a.unix:
        try:
            os.unlink(a.unix)
        except FileNotFoundError:
            pass
        srv = UnixServer(a.unix, UnixHandler)
        where = "unix=" + a.unix
    else:
        host, _, port = a.listen.rpartition(":")
        srv = TCPServer((host.strip("[]"), int(port)), Handler)
        if a.https:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(a.https[0], a.https[1])
            srv.ssl_ctx = ctx
        where = "port=%d" % srv.server_address[1]
    print("ready " + where, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
