#!/usr/bin/env python3
"""agent_client.py — a clear-text HTTP/1.1 client for the tests of
`tokengate agent` (python3 standard library only: http.client, the client a
Python SDK or notebook would use underneath).

    agent_client.py (--addr HOST:PORT | --unix PATH) COMMAND [ARGS]

Commands (each prints one JSON object on stdout, exit 0; exit 1 when an
expectation fails, with the reason on stderr):

  requests --path P --n N [--new-conn] [--expect CODE]
        N GET requests, all on one keep-alive connection (default) or each
        on a new connection (--new-conn). Prints {"n", "status": {code:
        count}, "errors", "conns" (connections opened), "ms": {"p50",
        "p99", "max"}, "seconds"}. --expect CODE: exit 1 unless every
        response had that status.
  loop --path P --seconds S [--interval-ms I]
        GET requests on one keep-alive connection, one every I ms (default
        20) for S seconds; prints {"n", "status", "errors", "lat": [[t_ms,
        latency_ms, status], ...], "start_epoch_ms"} with t_ms since the
        start (start_epoch_ms, wall clock).
  stream --path P [--max-seconds S] [--started-file F]
        one GET whose body arrives in pieces (server-sent events, chunked;
        F is created when the first piece has arrived, for a caller that
        must act while the stream flows):
        prints {"status", "chunks": [[t_ms, bytes], ...], "end_ms",
        "complete": true|false, "error"} where complete means the body's
        framing ended normally (the last chunk) and end_ms is when the body
        ended or broke, since the start (start_epoch_ms: the start, wall
        clock, in ms since the epoch).
  get --path P [--method M] [--header 'Name: value']...
        one request; prints {"status", "headers": [[k, v]...], "body"}.
"""
import argparse
import http.client
import json
import socket
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def new_conn(a):
    if a.unix:
        return UnixHTTPConnection(a.unix, a.timeout)
    host, _, port = a.addr.rpartition(":")
    return http.client.HTTPConnection(host, int(port), timeout=a.timeout)


def now_ms(t0):
    return (time.monotonic() - t0) * 1000.0


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * p))], 2)


def one(c, path, method="GET", headers=None):
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    return r, body


def cmd_requests(a):
    st, lat, errors, conns, first_err = {}, [], 0, 0, None
    t0 = time.monotonic()
    c = None
    for _ in range(a.n):
        if c is None:
            c = new_conn(a)
            conns += 1
        t = time.monotonic()
        try:
            r, _ = one(c, a.path)
            st[str(r.status)] = st.get(str(r.status), 0) + 1
            lat.append((time.monotonic() - t) * 1000.0)
            if a.new_conn or r.will_close:
                c.close()
                c = None
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            first_err = first_err or repr(e)
            c.close()
            c = None
    if c is not None:
        c.close()
    out = {"n": a.n, "status": st, "errors": errors, "conns": conns,
           "ms": {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
                  "max": round(max(lat), 2) if lat else None},
           "seconds": round(time.monotonic() - t0, 3)}
    if first_err:
        out["first_error"] = first_err
    print(json.dumps(out))
    if a.expect is not None and (errors or st != {str(a.expect): a.n}):
        print("agent_client: want %d x %d, got %s" % (a.n, a.expect, json.dumps(out)),
              file=sys.stderr)
        return 1
    return 0


def cmd_loop(a):
    st, lat, errors = {}, [], 0
    t0 = time.monotonic()
    start_epoch = round(time.time() * 1000.0, 1)
    c = new_conn(a)
    nxt = 0.0
    while now_ms(t0) < a.seconds * 1000:
        ts = now_ms(t0)
        try:
            r, _ = one(c, a.path)
            code = r.status
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            code = repr(e)
            c.close()
            c = new_conn(a)
        st[str(code)] = st.get(str(code), 0) + 1
        lat.append([round(ts, 1), round(now_ms(t0) - ts, 2), code])
        nxt += a.interval_ms
        wait = nxt - now_ms(t0)
        if wait > 0:
            time.sleep(wait / 1000.0)
    c.close()
    print(json.dumps({"n": len(lat), "status": st, "errors": errors, "lat": lat,
                      "start_epoch_ms": start_epoch}))
    return 0


def cmd_stream(a):
    t0 = time.monotonic()
    out = {"status": None, "chunks": [], "end_ms": None, "complete": False, "error": None,
           "start_epoch_ms": round(time.time() * 1000.0, 1)}
    c = new_conn(a)
    try:
        c.request("GET", a.path)
        r = c.getresponse()
        out["status"] = r.status
        while now_ms(t0) < a.max_seconds * 1000:
            b = r.read1(65536)
            if not b:
                # read1 returns b"" at the body's end; a connection cut
                # before the last chunk raises IncompleteRead instead
                out["complete"] = True
                break
            out["chunks"].append([round(now_ms(t0), 1), len(b)])
            if a.started_file and len(out["chunks"]) == 1 and r.status == 200:
                open(a.started_file, "w").close()  # the stream flows: the caller may act
    except (OSError, http.client.HTTPException) as e:
        out["error"] = repr(e)
    out["end_ms"] = round(now_ms(t0), 1)
    c.close()
    print(json.dumps(out))
    return 0


def cmd_get(a):
    hdrs = {}
    for h in a.header or []:
        k, _, v = h.partition(":")
        hdrs[k.strip()] = v.strip()
    c = new_conn(a)
    r, body = one(c, a.path, a.method, hdrs)
    c.close()
    print(json.dumps({"status": r.status, "headers": r.getheaders(),
                      "body": body.decode("utf-8", "replace")}))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--addr")
    g.add_argument("--unix")
    p.add_argument("--timeout", type=float, default=30)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("requests")
    s.add_argument("--path", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--new-conn", action="store_true")
    s.add_argument("--expect", type=int)
    s = sub.add_parser("loop")
    s.add_argument("--path", required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--interval-ms", type=float, default=20)
    s = sub.add_parser("stream")
    s.add_argument("--path", required=True)
    s.add_argument("--max-seconds", type=float, default=30)
    s.add_argument("--started-file", help="created when the first chunk has arrived")
    s = sub.add_parser("get")
    s.add_argument("--path", required=True)
    s.add_argument("--method", default="GET")
    s.add_argument("--header", action="append")
    a = p.parse_args()
    return {"requests": cmd_requests, "loop": cmd_loop, "stream": cmd_stream,
            "get": cmd_get}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
