#!/usr/bin/env python3
"""gate_runtime_upstream.py — a raw HTTP/1.1 upstream that answers the way
a broken or unusual server does, for tests/integration/test_gate_runtime.sh.

    gate_runtime_upstream.py PORTFILE

Listens on 127.0.0.1 (port written to PORTFILE) and answers by path:

  /interim     103 Early Hints (a Link header), then 200 "final"
  /unasked101  101 Switching Protocols to a request that asked for no
               upgrade, then holds the connection for 2 s
  /garbage     "SSH-2.0-nothttp": no HTTP status line at all
  /badchunk    200 chunked: one good chunk, then a chunk size "zz"
  /rst         resets the connection (RST: SO_LINGER 0), no answer
  /conn        200 "cN": N, the number of this connection (from 1)
  /idleclose   200 "cN" (keep-alive), then closes the idle connection
               0.3 s later
  /idlejunk    200 "cN" (keep-alive), then 0.3 s later sends bytes
               nobody asked for ("junk") and closes 1 s after
  anything     200 "ok" (Content-Length)

Keep-alive after the 200s; the connection is closed after the broken ones.
A second listener (port written to PORTFILE.close) reads what a client
sends first and closes the connection without sending any byte.
"""
import os
import socket
import socketserver
import struct
import sys
import threading
import time


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        global CONNS
        with LOCK:
            CONNS += 1
            me = b"c%d" % CONNS
        s = self.request
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                b = s.recv(65536)
                if not b:
                    return
                buf += b
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            if path == "/interim":
                s.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
                time.sleep(0.1)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
            elif path == "/unasked101":
                s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\n"
                          b"Connection: Upgrade\r\n\r\n")
                time.sleep(2)
                return
            elif path == "/garbage":
                s.sendall(b"SSH-2.0-nothttp\r\n\r\n")
                time.sleep(0.5)
                return
            elif path == "/rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                return
            elif path in ("/conn", "/idleclose", "/idlejunk"):
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(me), me))
                if path == "/conn":
                    continue
                time.sleep(0.3)
                if path == "/idlejunk":
                    s.sendall(b"junk")
                    time.sleep(1)
                return
            elif path == "/badchunk":
                s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\nzz\r\n")
                time.sleep(2)
                return
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


LOCK = threading.Lock()
CONNS = 0


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Closer(socketserver.BaseRequestHandler):
    def handle(self):
        # what the client sends first (a TLS ClientHello) is read, so the
        # close is a FIN, not a reset for unread bytes
        self.request.settimeout(0.3)
        try:
            while self.request.recv(65536):
                pass
        except OSError:
            pass
        # socketserver shuts the connection down when handle returns


def write_port(path, port):
    with open(path + ".tmp", "w", encoding="ascii") as f:
        f.write(str(port))
    os.rename(path + ".tmp", path)


def main():
    closer = Server(("127.0.0.1", 0), Closer)
    threading.Thread(target=closer.serve_forever, daemon=True).start()
    write_port(sys.argv[1] + ".close", closer.server_address[1])
    srv = Server(("127.0.0.1", 0), Handler)
    write_port(sys.argv[1], srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
