#!/usr/bin/env python3
"""abuse_clients.py — misbehaving clients for test_fault_clients.sh
(python3 standard library only). Runs KIND clients N at a time against
the gate and prints one JSON line per kind with what each client saw:

  hs-cut       connect, send the first half of a ClientHello, close
  hs-silent    connect, send nothing; wait for the gate to close
  req-cut      handshake, send half a request head, close
  body-cut     handshake, a POST head with Content-Length 1 MiB, 4 KiB of
               body, close
  slow-head    handshake, a request head one byte every 200 ms: the gate
               must answer 408 (or close) once limits.header_ms is over
  slow-body    handshake, a POST head with Content-Length 1 MiB, 1 KiB of
               body, then nothing: the gate must close it
  big-head     handshake, a request with a 64 KiB header: 431 and closed
  vanish       handshake, a full GET, close before reading the answer

  abuse_clients.py --addr HOST:PORT --cert C --key K --ca CA --kind KIND
                   [--count N] [--deadline S]

Each client's outcome is one of: "closed" (the gate closed the
connection), "status NNN" (the gate answered), "done" (the client left
as planned), "open" (still open at the deadline: a limit not enforced),
or "error: ..." (something unexpected on the client's side).
"""
import argparse
import json
import socket
import ssl
import sys
import threading
import time


def ctx_of(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    return ctx


def connect(a):
    host, _, port = a.addr.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=a.deadline)


def tls(a, ctx):
    return ctx.wrap_socket(connect(a), server_hostname="localhost")


def read_until_close(s, deadline):
    """'closed' or 'status NNN' (the first status line seen, then closed),
    'open' when neither came before the deadline."""
    data = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            if data.startswith(b"HTTP/1.1 "):
                return "status " + data[9:12].decode("latin-1")
            return "closed"
        data += d
    return "open"


def client_hello_half(a, ctx):
    """The first half of a real ClientHello (made by a TLS client on a
    socket pair)."""
    x, y = socket.socketpair()
    o = ssl.MemoryBIO()
    i = ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = o.read()
    x.close()
    y.close()
    return hello[: len(hello) // 2]


def run_one(a, ctx, kind, half_hello):
    s = None
    try:
        if kind == "hs-cut":
            s = connect(a)
            s.sendall(half_hello)
            s.close()
            return "done"
        if kind == "hs-silent":
            s = connect(a)
            return read_until_close(s, a.deadline)
        s = tls(a, ctx)
        if kind == "req-cut":
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: ")
            s.close()
            return "done"
        if kind == "body-cut":
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n")
            s.sendall(b"x" * 4096)
            s.close()
            return "done"
        if kind == "vanish":
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.close()
            return "done"
        if kind == "big-head":
            s.sendall(
                b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Big: "
                + b"a" * 65536
                + b"\r\n\r\n"
            )
            return read_until_close(s, a.deadline)
        if kind == "slow-head":
            head = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200
            end = time.monotonic() + a.deadline
            for b in head:
                if time.monotonic() > end:
                    return "open"
                try:
                    s.sendall(bytes([b]))
                except (ssl.SSLError, OSError):
                    return read_until_close(s, 1.0)
                s.settimeout(0.2)
                try:
                    d = s.recv(65536)
                    if not d:
                        return "closed"
                    if d.startswith(b"HTTP/1.1 "):
                        return "status " + d[9:12].decode("latin-1")
                except socket.timeout:
                    pass
                except (ssl.SSLError, ConnectionResetError):
                    return "closed"
            return "open"
        if kind == "slow-body":
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n")
            s.sendall(b"x" * 1024)
            return read_until_close(s, a.deadline)
        return "error: unknown kind " + kind
    except Exception as e:  # the outcome says what went wrong
        return "error: %s: %s" % (type(e).__name__, e)
    finally:
        if s is not None:
            try:
                s.close()
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--deadline", type=float, default=10.0)
    a = p.parse_args()
    ctx = ctx_of(a)
    half = client_hello_half(a, ctx)
    outcomes = {}
    lock = threading.Lock()

    def work():
        o = run_one(a, ctx, a.kind, half)
        with lock:
            outcomes[o] = outcomes.get(o, 0) + 1

    threads = [threading.Thread(target=work) for _ in range(a.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"kind": a.kind, "outcomes": outcomes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
