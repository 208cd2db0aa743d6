#!/usr/bin/env python3
"""llm-platform.py — a small stand-in "LLM platform" for `make demo`: the
kind of internal API tokengate's gate is put in front of (python3 standard
library only; not a real model, nothing is computed).

    llm-platform.py --listen HOST:PORT --provider-key-file FILE [--log FILE]
                    [--chunk-ms N]

Prints "ready port=PORT" on stdout once it listens (PORT 0 picks a free
port). HTTP/1.1 with keep-alive. Routes:

  GET  /v1/datasets                 the dataset names (JSON)
  GET  /v1/datasets/NAME            one dataset: a few rows (JSON)
  GET  /v1/models                   the model registry (JSON)
  GET  /v1/models/NAME              one model's card (JSON)
  POST /admin/models/NAME/promote   the registry's admin route: marks a
                                    model "production" (JSON)
  POST /v1/chat/completions         server-sent events (text/event-stream,
                                    chunked): one event per word of the
                                    answer, --chunk-ms apart (default
                                    250), then
                                    "data: [DONE]". Refused with 401 unless
                                    the request carries
                                    "Authorization: Bearer <provider key>",
                                    the key read from --provider-key-file
                                    (the gate injects it; clients never
                                    hold it).

Every answer names the caller the gate vouched for (X-Tokengate-Identity,
X-Tokengate-Key), so the demo can show who reached the platform. The
platform itself trusts those headers only because it listens on loopback
behind the gate. --log FILE appends one JSON line per request (method,
path, identity, whether the provider key was present — never the key).
"""
import argparse
import hmac
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

DATASETS = {
    "support-tickets": [
        {"id": 1, "text": "The export button does nothing", "label": "bug"},
        {"id": 2, "text": "How do I rotate my API key?", "label": "question"},
        {"id": 3, "text": "Please add SSO", "label": "feature"},
    ],
    "eval-prompts": [
        {"id": 1, "prompt": "Summarize this ticket in one line"},
        {"id": 2, "prompt": "Classify: bug, question or feature"},
    ],
}
MODELS = {
    "ticket-classifier": {"version": "3", "stage": "staging", "base": "small-llm-1b"},
    "support-assistant": {"version": "7", "stage": "production", "base": "chat-llm-8b"},
}
ANSWER = "Tokens sign, gates check, and the provider key never leaves the gate."

LOCK = threading.Lock()
OPTS = None


def log_request(rec):
    if not OPTS.log:
        return
    with LOCK:
        with open(OPTS.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-platform/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    # ---- helpers --------------------------------------------------------
    def caller(self):
        return {
            "identity": self.headers.get("X-Tokengate-Identity"),
            "key": self.headers.get("X-Tokengate-Key"),
        }

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj):
        body = (json.dumps(obj, indent=None) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def provider_key_ok(self):
        want = "Bearer " + OPTS.provider_key
        got = self.headers.get("Authorization", "")
        return hmac.compare_digest(got.encode(), want.encode())

    def record(self, status, key_present=None):
        rec = {"method": self.command, "path": self.path, "status": status}
        rec.update(self.caller())
        if key_present is not None:
            rec["provider_key"] = key_present
        log_request(rec)

    # ---- routes ---------------------------------------------------------
    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:2] == ["v1", "datasets"] and len(parts) == 2:
            self.record(200)
            return self.send_json(200, {"datasets": sorted(DATASETS), "served_to": self.caller()})
        if parts[:2] == ["v1", "datasets"] and len(parts) == 3 and parts[2] in DATASETS:
            self.record(200)
            return self.send_json(
                200, {"dataset": parts[2], "rows": DATASETS[parts[2]], "served_to": self.caller()}
            )
        if parts[:2] == ["v1", "models"] and len(parts) == 2:
            self.record(200)
            return self.send_json(200, {"models": MODELS, "served_to": self.caller()})
        if parts[:2] == ["v1", "models"] and len(parts) == 3 and parts[2] in MODELS:
            self.record(200)
            return self.send_json(
                200, {"model": parts[2], **MODELS[parts[2]], "served_to": self.caller()}
            )
        self.record(404)
        return self.send_json(404, {"error": "not found", "path": self.path})

    do_HEAD = do_GET

    def do_POST(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        body = self.read_body()
        if parts == ["v1", "chat", "completions"]:
            return self.completions(body)
        if len(parts) == 4 and parts[:2] == ["admin", "models"] and parts[3] == "promote":
            if parts[2] not in MODELS:
                self.record(404)
                return self.send_json(404, {"error": "no such model", "model": parts[2]})
            with LOCK:
                MODELS[parts[2]]["stage"] = "production"
            self.record(200)
            return self.send_json(200, {"model": parts[2], "stage": "production",
                                        "by": self.caller()})
        self.record(404)
        return self.send_json(404, {"error": "not found", "path": self.path})

    def completions(self, body):
        if not self.provider_key_ok():
            self.record(401, key_present=False)
            return self.send_json(401, {
                "error": "missing or wrong provider key (Authorization: Bearer ...); "
                         "call the platform through the gate, which holds the key"})
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            self.record(400, key_present=True)
            return self.send_json(400, {"error": "the body is not JSON"})
        self.record(200, key_present=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        model = req.get("model", "support-assistant")
        words = ANSWER.split(" ")
        for i, w in enumerate(words):
            ev = {"model": model, "index": i,
                  "choices": [{"delta": {"content": w if i == 0 else " " + w}}]}
            if i == 0:
                ev["provider_key_checked"] = True
                ev["served_to"] = self.caller()["identity"]
            self.chunk("data: " + json.dumps(ev) + "\n\n")
            time.sleep(OPTS.chunk_ms / 1000.0)
        self.chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global OPTS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default 127.0.0.1:0)")
    ap.add_argument("--provider-key-file", required=True,
                    help="file whose first line is the provider key the gate injects")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--chunk-ms", type=int, default=250,
                    help="milliseconds between two streamed events (default 250)")
    OPTS = ap.parse_args()
    if not 0 <= OPTS.chunk_ms <= 60000:
        ap.error("--chunk-ms must be 0 to 60000")
    try:
        with open(OPTS.provider_key_file, encoding="utf-8") as f:
            OPTS.provider_key = f.readline().strip()
    except OSError as e:
        sys.exit(f"llm-platform: cannot read the provider key: {e}; "
                 "give --provider-key-file a readable file")
    if not OPTS.provider_key:
        sys.exit("llm-platform: the provider key file is empty; write the key on its first line")
    host, _, port = OPTS.listen.rpartition(":")
    srv = Server((host, int(port)), Handler)
    print(f"ready port={srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
