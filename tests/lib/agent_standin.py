#!/usr/bin/env python3
"""agent_standin.py - a stand-in for the gate in tests of `tokengate agent`:
a TLS server (mutual TLS: it asks for the client certificate) whose
misbehaviour is chosen by the test, one thread per connection.

  agent_standin.py --cert PEM --key PEM --client-ca PEM --port-file F
                   --log F --mode http|tcp

http: HTTP/1.1 with Content-Length bodies. Each connection answers its
FIRST request only (200, keep-alive, body "ok CONN REQ\\n"); a later request
on the same connection is read whole and the connection closed without a
byte of response - what a gate does when its idle timeout closes a pooled
connection just as the agent sends on it. GET /hang is read and never
answered (the connection stays open); GET /slow answers its head at once
and its body 3 s later.
tcp: reads until the client's close_notify, then answers
"got N bytes SHA256\\n" and closes.

Every request (or tcp connection) is logged to --log, one line:
"CONN REQ METHOD PATH BODYLEN answered|closed|hang|slow" (tcp: "CONN tcp N").
"""
import argparse
import hashlib
import os
import socket
import ssl
import sys
import threading
import time

LOCK = threading.Lock()


def log(path, line):
    with LOCK:
        with open(path, "a") as f:
            f.write(line + "\n")


def read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            return None, buf
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def serve_http(s, conn, logf):
    buf = b""
    req = 0
    while True:
        head, buf = read_head(s, buf)
        if head is None:
            return
        req += 1
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        n = 0
        for l in lines[1:]:
            k, _, v = l.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v.strip())
        while len(buf) < n:
            b = s.recv(65536)
            if not b:
                return
            buf += b
        buf = buf[n:]
        if path.startswith("/hang"):
            log(logf, "%d %d %s %s %d hang" % (conn, req, method, path, n))
            while s.recv(65536):
                pass
            return
        if path.startswith("/slow"):
            log(logf, "%d %d %s %s %d slow" % (conn, req, method, path, n))
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            time.sleep(3)
            s.sendall(b"slow\n")
            return
        if req > 1:
            log(logf, "%d %d %s %s %d closed" % (conn, req, method, path, n))
            return
        body = b"ok %d %d\n" % (conn, req)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body if method != "HEAD" else b""))
        log(logf, "%d %d %s %s %d answered" % (conn, req, method, path, n))


def serve_tcp(s, conn, logf):
    h = hashlib.sha256()
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    log(logf, "%d tcp %d" % (conn, n))
    s.sendall(b"got %d bytes %s\n" % (n, h.hexdigest().encode()))


def handle(raw, ctx, conn, mode, logf):
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log(logf, "%d handshake-failed %s" % (conn, e))
        raw.close()
        return
    try:
        (serve_http if mode == "http" else serve_tcp)(s, conn, logf)
        try:
            s.unwrap()  # close_notify
        except (ssl.SSLError, OSError):
            pass
    except (ssl.SSLError, OSError) as e:
        log(logf, "%d error %s" % (conn, e))
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", choices=["http", "tcp"], default="http")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.num_tickets = 2
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, a.port_file)
    conn = 0
    while True:
        raw, _ = ls.accept()
        conn += 1
        threading.Thread(target=handle, args=(raw, ctx, conn, a.mode, a.log), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
