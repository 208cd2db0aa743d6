#!/usr/bin/env bash
# test_gate_http.sh — `tokengate gate` in http mode against framing attacks
# sent raw over mTLS, each asserting the answer, the audit record and that
# nothing reached the upstream: Content-Length with Transfer-Encoding, two
# Content-Lengths, bad Content-Length, unknown transfer coding, bad chunk
# size, obs-fold, bare CR, bare LF, invalid header names -> 400 (501 for an
# unknown coding) and the connection closed; also over the limits (request
# line 414, header count 431), HTTP/2.0 (505), an unknown method (501), no
# or two Host fields (400). Paths and headers: test_gate_paths.sh.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
UPLOG=$TG_TMP/up-up.jsonl
gate_start

uplines() { if [[ -f $UPLOG ]]; then wc -l <"$UPLOG"; else echo 0; fi; }

# ---- framing attacks ------------------------------------------------------------
# attack NAME WANT_STATUS RAW: alice sends RAW (escapes as in Python); the
# gate answers WANT_STATUS, closes, records it, forwards nothing.
attack()
{
	local name=$1 want=$2 raw=$3 out n0 st closed nresp
	n0=$(uplines)
	gate_audit_mark
	out=$(gate_py alice --timeout 10 raw "$raw") || tg_fail "$name: client failed: $out"
	read -r st closed nresp < <(jq -rs '"\(.[0].status // "none") \(.[-1].closed) \(.[-1].responses)"' <<<"$out")
	[[ $st == "$want" ]] || tg_fail "$name: want HTTP $want, got: $out"
	[[ $closed == true ]] || tg_fail "$name: the gate kept the connection open after refusing the message: $out"
	[[ $nresp == 1 ]] || tg_fail "$name: more than one answer: $out"
	gate_audit_expect event=$GATE_EV_REQ decision=deny status="$want" reason!=null
	[[ $(uplines) == "$n0" ]] || tg_fail "$name: the upstream received a request: $(tail -n1 "$UPLOG")"
	echo "ok: $name -> $want"
}
H='Host: gate\r\n'
attack "Content-Length with Transfer-Encoding" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
attack "Transfer-Encoding before Content-Length" 400 \
	"POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
attack "two different Content-Lengths" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
attack "two equal Content-Lengths" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
attack "Content-Length list" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello"
attack "Content-Length not a number" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: 5x\r\n\r\nhello"
attack "negative Content-Length" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nhello"
attack "signed Content-Length" 400 \
	"POST /echo HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello"
attack "unknown transfer coding" 501 \
	"POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n"
attack "coding list ending in chunked" 501 \
	"POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
attack "bad chunk size" 400 \
	"POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
attack "obs-fold" 400 \
	"GET /echo HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\n\r\n"
attack "obs-fold with a tab" 400 \
	"GET /echo HTTP/1.1\r\n${H}X-A: 1\r\n\tfolded\r\n\r\n"
attack "bare CR in the request line" 400 \
	"GET /echo HTTP/1.1\r${H}\r\n"
attack "bare CR in a header value" 400 \
	"GET /echo HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n"
attack "bare LF line ends" 400 \
	"GET /echo HTTP/1.1\nHost: gate\n\n"
attack "bare LF after a header" 400 \
	"GET /echo HTTP/1.1\r\n${H}X-A: 1\nX-B: 2\r\n\r\n"
attack "space in a header name" 400 \
	"GET /echo HTTP/1.1\r\n${H}X A: 1\r\n\r\n"
attack "space before the colon" 400 \
	"GET /echo HTTP/1.1\r\n${H}X-A : 1\r\n\r\n"
attack "non-token header name" 400 \
	"GET /echo HTTP/1.1\r\n${H}X(A): 1\r\n\r\n"
attack "empty header name" 400 \
	"GET /echo HTTP/1.1\r\n${H}: 1\r\n\r\n"

# limits (defaults: request line 8192 bytes, 100 header fields) and versions
long=$(printf 'a%.0s' $(seq 1 9000))
attack "request line over the limit" 414 "GET /echo?$long HTTP/1.1\r\n${H}\r\n"
many=$(for i in $(seq 1 120); do printf 'X-H%d: %d\\r\\n' "$i" "$i"; done)
attack "more header fields than the limit" 431 "GET /echo HTTP/1.1\r\n${H}${many}\r\n"
attack "HTTP/2.0 request line" 505 "GET /echo HTTP/2.0\r\n${H}\r\n"
attack "unknown method" 501 "BREW /echo HTTP/1.1\r\n${H}\r\n"
attack "no Host in HTTP/1.1" 400 "GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n"
attack "two Host fields" 400 "GET /echo HTTP/1.1\r\n${H}${H}\r\n"

# a well-formed chunked body still goes through (the control for the above)
out=$(gate_py alice raw "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
[[ $(head -n1 <<<"$out" | jq -r .status) == 200 ]] || tg_fail "chunked body: $out"
[[ $(head -n1 <<<"$out" | jq -r .body | jq -r .body_sha256) == $(printf 'hello world' | sha256sum | cut -c1-64) ]] ||
	tg_fail "chunked body changed on the way: $out"
echo "ok: a chunked request body is streamed through intact"

# a target longer than the gate's stack buffer for it (1 KiB) reaches the
# upstream whole; so does a short one
for n in 3000 10; do
	q=$(printf 'q%.0s' $(seq 1 "$n"))
	out=$(gate_py alice raw "GET /echo?x=$q HTTP/1.1\r\n${H}Connection: close\r\n\r\n")
	[[ $(head -n1 <<<"$out" | jq -r .status) == 200 ]] || tg_fail "a $n-byte query: $out"
	[[ $(head -n1 <<<"$out" | jq -r .body | jq -r .path) == "/echo?x=$q" ]] ||
		tg_fail "a $n-byte query changed on the way: $(head -c 300 <<<"$out")"
done
echo "ok: targets with 3000- and 10-byte queries reach the upstream whole"

gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: HTTP framing"
