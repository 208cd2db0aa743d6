#!/usr/bin/env python3
"""agent_badgate.py - gates that misbehave, for the fault tests of
`tokengate agent` (tests/integration/test_agent_faults.sh). One process,
one listening port per mode (127.0.0.1), one thread per connection:

  agent_badgate.py --cert PEM --key PEM --client-ca PEM --other-cert PEM
                   --other-key PEM --uri-cert PEM --uri-key PEM --port-file F

Modes (their ports written to F as JSON {"mode": port, ...}):
  plain     not TLS: answers any byte with a plain-text HTTP 400 and closes
  close     closes every connection at once, before the TLS handshake
  silent    takes the connection and never answers (until the client closes)
  other     TLS with a certificate of a CA the agent does not trust
  http      mutual TLS (the client certificate required), then HTTP/1.1
            whose answer is chosen by the request path:
    /echo..., /    200, body: the request line, the Host field and the
                   body's length, one per line (Content-Length or chunked)
    /garbage       a response that is not HTTP, then close
    /close-before  the request read, the connection closed without a byte
    /close-mid     a head saying 100 bytes, 5 of them, then close
    /close-delim   a body delimited by the close (no length, not chunked)
    /interim       100 Continue, then 200 "ok"
    /switch        101 Switching Protocols to a request that asked for none
    /ws            101 to an Upgrade request, then every byte echoed
    /chunked       a chunked 200 "hello world"
    /bad-chunk     a chunked 200 whose second chunk size is not hex
    /bad-status    a status line with a four-digit code
    /then-close    200 (keep-alive), the connection closed 0.3 s later
    /then-junk     200 (keep-alive), bytes that are not HTTP 0.3 s later
    /extra         200 (keep-alive) and bytes after it in the same write
    /big           200 with a body of 3 MiB
  noticket  as http, but no TLS 1.3 session ticket is ever sent
  uri       as http, with a certificate whose URI SAN is
            spiffe://example.org/svc/gate (--uri-cert)
  tcp       mutual TLS, then echoes every byte back until the client's end,
            then a close_notify
Each request is logged to stderr: "MODE METHOD PATH".
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time


def read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            return None, buf
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def read_body(s, buf, fields):
    """The body after the head (Content-Length or chunked): (length, rest)."""
    if fields.get("transfer-encoding", "").lower() == "chunked":
        n = 0
        while True:
            while b"\r\n" not in buf:
                buf += s.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += s.recv(65536)
            n += size
            buf = buf[size + 2:]
            if size == 0:
                return n, buf
    n = int(fields.get("content-length", "0"))
    while len(buf) < n:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    return n, buf[n:]


def serve_http(s):
    buf = b""
    while True:
        head, buf = read_head(s, buf)
        if head is None:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        fields = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            fields[k.strip().lower()] = v.strip()
        n, buf = read_body(s, buf, fields)
        sys.stderr.write("http %s %s\n" % (method, path))
        sys.stderr.flush()
        if path.startswith("/echo") or path == "/":
            body = ("%s\nhost=%s\nbody=%d\n" % (lines[0], fields.get("host", "-"), n)).encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            continue
        if path in ("/then-close", "/then-junk", "/extra"):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n" +
                      (b"EXTRA BYTES" if path == "/extra" else b""))
            time.sleep(0.3)
            if path == "/then-junk":
                s.sendall(b"JUNK AFTER THE RESPONSE\r\n")
                time.sleep(0.3)
            return
        if path == "/big":
            chunk = b"0123456789abcdef" * 4096
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(chunk) * 48))
            for _ in range(48):
                s.sendall(chunk)
            continue
        if path == "/garbage":
            s.sendall(b"SSH-2.0-OpenSSH_9.2 not a gate\r\n\r\n")
        elif path == "/close-mid":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        elif path == "/close-delim":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close\n")
            try:
                s.unwrap()  # a clean end: close_notify
            except (ssl.SSLError, OSError):
                pass
        elif path == "/interim":
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            continue
        elif path == "/switch":
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
        elif path == "/ws":
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            if buf:
                s.sendall(buf)
            while True:
                b = s.recv(65536)
                if not b:
                    break
                s.sendall(b)
        elif path == "/chunked":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
            continue
        elif path == "/bad-chunk":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"6\r\nhello \r\nzz\r\nworld\r\n0\r\n\r\n")
        elif path == "/bad-status":
            s.sendall(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")
        # /close-before and the rest: nothing more
        return


def serve_tcp(s):
    while True:
        b = s.recv(65536)
        if not b:
            break
        s.sendall(b)
    try:
        s.unwrap()  # close_notify, after the client's
    except (ssl.SSLError, OSError):
        pass


def handle(raw, mode, ctxs):
    try:
        if mode == "close":
            raw.close()
            return
        if mode == "silent":
            while raw.recv(4096):
                pass
            raw.close()
            return
        if mode == "plain":
            raw.recv(4096)
            raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            raw.close()
            return
        try:
            s = ctxs[mode].wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("%s handshake failed: %s\n" % (mode, e))
            raw.close()
            return
        try:
            (serve_tcp if mode == "tcp" else serve_http)(s)
        finally:
            s.close()
    except (ssl.SSLError, OSError) as e:
        sys.stderr.write("%s error: %s\n" % (mode, e))


def listen_loop(ls, mode, ctxs):
    while True:
        raw, _ = ls.accept()
        threading.Thread(target=handle, args=(raw, mode, ctxs), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    for o in ("cert", "key", "client-ca", "other-cert", "other-key", "uri-cert", "uri-key",
              "port-file"):
        ap.add_argument("--" + o, required=True)
    a = ap.parse_args()
    mutual = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    mutual.load_cert_chain(a.cert, a.key)
    mutual.load_verify_locations(a.client_ca)
    mutual.verify_mode = ssl.CERT_REQUIRED
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    other.load_cert_chain(a.other_cert, a.other_key)
    noticket = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    noticket.load_cert_chain(a.cert, a.key)
    noticket.load_verify_locations(a.client_ca)
    noticket.verify_mode = ssl.CERT_REQUIRED
    noticket.num_tickets = 0
    uri = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    uri.load_cert_chain(a.uri_cert, a.uri_key)
    uri.load_verify_locations(a.client_ca)
    uri.verify_mode = ssl.CERT_REQUIRED
    ctxs = {"http": mutual, "tcp": mutual, "other": other, "noticket": noticket, "uri": uri}
    ports = {}
    for mode in ("plain", "close", "silent", "other", "http", "tcp", "noticket", "uri"):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        ports[mode] = ls.getsockname()[1]
        threading.Thread(target=listen_loop, args=(ls, mode, ctxs), daemon=True).start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.rename(tmp, a.port_file)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
