#!/usr/bin/env bash
# test_gate_nginx.sh — one outcome table (gate_cases.tsv), two front ends:
# the gate alone (http mode) and a real nginx running
# examples/nginx-authz.conf (ports and paths substituted, nothing else) in
# front of `tokengate gate --mode authz`. Every row must have the same
# outcome through both (or the per-front-end one the table explains), each
# asserting the answer, the reason, the audit record and what reached the
# upstream. Then, through nginx only:
#   header smuggling: a client's own X-Tokengate-Client-Cert,
#   X-Tokengate-Identity, X-Tokengate-Key or Authorization has no effect on
#   the decision nor on what the upstream receives;
#   the injected Authorization reaches the upstream, never the client or
#   the logs; a route without injection keeps the client's Authorization;
#   `nginx -s reload` (and the endpoint's SIGHUP) while requests flow: not
#   one fails;
#   the endpoint stopped: nginx answers 500, nothing is forwarded.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/gate_cases.sh"
source "$TG_FIXTURES/gate_nginx.sh"
gate_require
nginx_require
# docs/nginx.md shows the configuration this test runs, exactly
doc=$TG_FIXTURES/../../docs/nginx.md
awk '/^```nginx$/ { f = 1; next } f && /^```$/ { exit } f' "$doc" >"$TG_TMP/doc.conf"
diff -u "$NGINX_EXAMPLE" "$TG_TMP/doc.conf" >"$TG_TMP/doc.diff" ||
	tg_fail "docs/nginx.md does not show examples/nginx-authz.conf as it is: $(cat "$TG_TMP/doc.diff")"
cd "$TG_TMP"
GATE_BAD=1 gate_pki
cp "$PKI/crl.pem" "$TG_TMP/gate.crl"
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
GATE_CASES_UPLOG=$TG_TMP/up-up.jsonl
gate_cases_load
[[ -z ${GATE_CASES_ONLY:-} ]] || gate_cases_select "$GATE_CASES_ONLY"

# ---- front end 1: the gate alone ---------------------------------------------
gate_start --crl "$TG_TMP/gate.crl"
gate_cases_run gate
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"

# ---- front end 2: nginx + the authorization endpoint ---------------------------
# (the help read whole: grep -q in a pipeline could end it early, and
# pipefail would count the SIGPIPE)
help=$("$TG" gate --help 2>&1) || true
[[ $help == *authz* ]] || tg_fail "this build's gate has no --mode authz"
authz_start --crl "$TG_TMP/gate.crl"
nginx_start
gate_cases_run nginx
NG=127.0.0.1:$NGINX_PORT
UPLOG=$GATE_CASES_UPLOG
uplines() { if [[ -f $UPLOG ]]; then wc -l <"$UPLOG"; else echo 0; fi; }
# ng LEAF ARGS...: gate_client as LEAF (none: no certificate) against nginx
ng()
{
	local leaf=$1
	shift
	if [[ $leaf == none ]]; then
		gate_client --addr "$NG" --ca "$PKI/srvca.pem" "$@"
	else
		gate_client --addr "$NG" --ca "$PKI/srvca.pem" --cert "$PKI/$leaf.pem" --key "$(gate_key_of "$leaf")" "$@"
	fi
}
hdr() { jq -r --arg n "$1" '[.headers[] | select(.[0] | ascii_downcase == $n) | .[1]] | join("|")' echo.json; }
rhdr() { jq -r --arg n "$2" '[.headers[] | select(.[0] | ascii_downcase == $n) | .[1]] | join("|")' <<<"$1"; }
GATE_AUDIT=$AUTHZ_AUDIT

# ---- header smuggling: what the client sends never stands for tokengate's -------
# the escaped PEM of bob (as nginx's $ssl_client_escaped_cert), which bob's
# key would have to prove; sent by alice, or by a client without any certificate
bobcert=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(open(sys.argv[1]).read(), safe=""))' "$PKI/bob.pem")
forge=(-H "X-Tokengate-Client-Cert: $bobcert" -H "X-Tokengate-Identity: spiffe://$TD/svc/root"
	-H "X-Tokengate-Key: level=device-attested; pin=always; touch=always; serial=1"
	-H "X-Original-URI: /echo" -H "X-Original-Method: GET" -H "X-Tokengate-Route: echo")
# bob may use /v1/pin/x, alice may not: alice with bob's certificate header is still alice
gate_audit_mark
n0=$(uplines)
out=$(ng alice req "${forge[@]}" /v1/pin/x)
[[ $(jq -r .status <<<"$out") == 403 ]] || tg_fail "alice with bob's certificate header: $out"
[[ $(rhdr "$out" x-tokengate-reason) == *"the key has once"* ]] || tg_fail "smuggled certificate: reason $(rhdr "$out" x-tokengate-reason)"
gate_audit_expect front=authz decision=deny route=pin-always identity=spiffe://$TD/dev/alice path=/v1/pin/x
gate_audit_none identity=spiffe://$TD/dev/bob
# the real URI decides, not a client's X-Original-URI
out=$(ng alice req "${forge[@]}" /admin/users)
[[ $(jq -r .status <<<"$out") == 403 ]] || tg_fail "alice on /admin with X-Original-URI: /echo: $out"
gate_audit_expect front=authz decision=deny route=admin path=/admin/users
[[ $(uplines) == "$n0" ]] || tg_fail "a smuggled request reached the upstream"
# no certificate at all, alice's certificate in the header
alicecert=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(open(sys.argv[1]).read(), safe=""))' "$PKI/alice.pem")
out=$(ng none req -H "X-Tokengate-Client-Cert: $alicecert" -H "X-Tokengate-Identity: spiffe://$TD/dev/alice" /echo)
[[ $(jq -r .status <<<"$out") == 403 ]] || tg_fail "no certificate, alice's in a header: $out"
gate_audit_none decision=allow
[[ $(uplines) == "$n0" ]] || tg_fail "a request without a certificate reached the upstream"
echo "ok: a client's own X-Tokengate-Client-Cert / X-Original-URI / identity headers change no decision"
# what the upstream receives: tokengate's identity and key, never the client's
out=$(ng alice req "${forge[@]}" -H "X-Tokengate-Request-Id: forged" -H "X-Other: kept" \
	-H "X-Forwarded-For: 10.6.6.6" -H "X-Real-IP: 10.6.6.6" -H "Forwarded: for=10.6.6.6" \
	-H "X-Forwarded-Host: evil.example" /echo)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "alice on /echo with forged headers: $out"
jq -r .body <<<"$out" >echo.json
[[ $(hdr x-tokengate-identity) == "spiffe://$TD/dev/alice" ]] ||
	tg_fail "X-Tokengate-Identity upstream: '$(hdr x-tokengate-identity)'"
[[ $(hdr x-tokengate-key) == "level=device-attested; pin=once; touch=never; serial=27182818" ]] ||
	tg_fail "X-Tokengate-Key upstream: '$(hdr x-tokengate-key)'"
for h in x-tokengate-client-cert x-tokengate-route; do
	[[ -z $(hdr $h) ]] || tg_fail "a client's $h reached the upstream: $(hdr $h)"
done
[[ $(hdr x-other) == kept ]] || tg_fail "an ordinary client header was dropped: $(cat echo.json)"
# the example's who-the-client-is fields, as the gate sets them
[[ $(hdr x-forwarded-for) == 127.0.0.1 && $(hdr x-real-ip) == 127.0.0.1 && $(hdr x-forwarded-proto) == https &&
	-z $(hdr forwarded) && -z $(hdr x-forwarded-host) ]] ||
	tg_fail "X-Forwarded-For/X-Real-IP/-Proto/Forwarded/X-Forwarded-Host upstream through nginx: $(cat echo.json)"
[[ $(jq -r .path echo.json) == /echo ]] || tg_fail "upstream path $(jq -r .path echo.json)"
gate_audit_expect front=authz decision=allow route=echo identity=spiffe://$TD/dev/alice
# the request id upstream is the one of the endpoint's record
rid=$(hdr x-tokengate-request-id)
[[ $rid != *forged* ]] && gate_audit_expect front=authz decision=allow route=echo request_id="$rid" ||
	tg_fail "X-Tokengate-Request-Id upstream: '$rid' (want the endpoint's record's)"
echo "ok: the upstream gets tokengate's X-Tokengate-Identity, -Key and -Request-Id; client copies are replaced or dropped"

# ---- the injected Authorization ----------------------------------------------------
out=$(ng alice req -X POST -H "Authorization: Bearer client-made-up-token" -d '{"model":"m"}' /v1/chat/completions)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "completions through nginx: $out"
jq -r .body <<<"$out" >echo.json
[[ $(hdr authorization) == "Bearer $GATE_SECRET" ]] ||
	tg_fail "Authorization upstream: '$(hdr authorization)', want exactly the injected one"
[[ $(jq -r .body_length echo.json) == 13 ]] || tg_fail "the POST body did not reach the upstream: $(cat echo.json)"
! jq -r '.headers[][]' <<<"$out" | grep -qF "$GATE_SECRET" || tg_fail "the injected secret is in a response header"
gate_audit_expect front=authz decision=allow route=completions method=POST
# a route without inject_headers keeps the client's Authorization
out=$(ng alice req -H "Authorization: Bearer mine" /echo)
jq -r .body <<<"$out" >echo.json
[[ $(hdr authorization) == "Bearer mine" ]] || tg_fail "Authorization on a route without injection: '$(hdr authorization)'"
# a denied completion: nothing injected, nothing forwarded
n0=$(uplines)
out=$(ng indexer req -X POST -d x /v1/chat/completions)
[[ $(jq -r .status <<<"$out") == 403 ]] || tg_fail "indexer on completions through nginx: $out"
[[ $(uplines) == "$n0" ]] || tg_fail "a denied completion was forwarded"
! grep -qF "$GATE_SECRET" <<<"$out" || tg_fail "the injected secret is in a 403 answer"
for f in "$AUTHZ_AUDIT" "$AUTHZ_LOG" "$NGINX_ACCESS" "$NGINX_DIR/logs/error.log"; do
	! grep -qF "$GATE_SECRET" "$f" || tg_fail "the injected secret is in $f"
done
echo "ok: the injected Authorization reaches the upstream only; a route without injection keeps the client's"

# ---- the path the upstream gets: nginx passes the raw request-target ----------------------
# (the gate sends the normal form: test_gate_paths.sh; docs/nginx.md, "What differs")
out=$(ng alice req '/v1/datasets/a/../b/./c?x=%2F..&y=1')
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "normalized allowed path through nginx: $out"
got=$(jq -r .body <<<"$out" | jq -r .path)
[[ $got == '/v1/datasets/a/../b/./c?x=%2F..&y=1' ]] || tg_fail "upstream got path '$got' through nginx, want the raw one"
gate_audit_expect front=authz decision=allow route=datasets-read path=/v1/datasets/b/c
echo "ok: through nginx the upstream gets the raw request-target; the decision was on /v1/datasets/b/c"

# ---- the deny reason in nginx's access log ---------------------------------------------
grep -qF 'reason="route admin has no allow entry for spiffe://'"$TD"'/dev/alice"' "$NGINX_ACCESS" ||
	tg_fail "nginx's access log has no deny reason: $(tail -n 5 "$NGINX_ACCESS")"
grep -qF 'identity="spiffe://'"$TD"'/dev/alice" route="echo"' "$NGINX_ACCESS" ||
	tg_fail "nginx's access log has no identity: $(tail -n 5 "$NGINX_ACCESS")"
echo "ok: nginx's access log names the identity, the route and the deny reason"

# ---- nginx reload (and the endpoint's) while requests flow ---------------------------------
# a new connection per request: a keep-alive connection nginx closes while
# idle at a reload is a retry for any HTTP client, not a refusal
stop=$TG_TMP/loop.stop
for n in 1 2; do
	GATE_CLIENT_DIRECT=1 ng alice loop /echo --stop-file "$stop" --per-conn 1 >"loop$n.out" 2>&1 &
	eval "loop${n}_pid=\$!"
done
GATE_CLIENT_DIRECT=1 ng bob loop /v1/models/m --stop-file "$stop" --per-conn 50 >loop3.out 2>&1 &
loop3_pid=$!
sleep 1
for r in 1 2 3; do
	nginx_reload || tg_fail "nginx reload $r"
	sleep 0.5
done
kill -HUP "$AUTHZ_PID"
tg_wait_until 20 grep -q 'reload (SIGHUP)' "$AUTHZ_LOG" || tg_fail "the endpoint did not log its reload"
grep -q 'reload (SIGHUP): configuration' "$AUTHZ_LOG" || tg_fail "the endpoint's reload: $(grep 'reload' "$AUTHZ_LOG")"
nginx_reload || tg_fail "nginx reload 4"
sleep 1
touch "$stop"
wait "$loop1_pid" "$loop2_pid" "$loop3_pid" || tg_fail "a client loop failed: $(cat loop*.out)"
for n in 1 2; do
	[[ $(jq -r .fail "loop$n.out") == 0 ]] || tg_fail "requests failed across nginx reloads: $(cat "loop$n.out")"
	[[ $(jq -r .ok "loop$n.out") -ge 10 ]] || tg_fail "too few requests during the reloads: $(cat "loop$n.out")"
done
# on kept-alive connections, a request lost when nginx closes an idle
# connection at a reload is a closed connection (a client retries), never
# a wrong answer
[[ $(jq -r '[.failures[] | select(.error != "eof")] | length' loop3.out) == 0 ]] ||
	tg_fail "a kept-alive request got a wrong answer across nginx reloads: $(cat loop3.out)"
[[ $(jq -r .ok loop3.out) -ge 10 ]] || tg_fail "too few kept-alive requests during the reloads: $(cat loop3.out)"
echo "ok: 4 nginx reloads and an endpoint reload under traffic: $(jq -r .ok loop1.out)+$(jq -r .ok loop2.out) requests, none failed; keep-alive: $(cat loop3.out)"

# ---- the endpoint gone: nginx fails closed -------------------------------------------------
kill -TERM "$AUTHZ_PID"
tg_wait_until 20 tg__not tg__pid_alive "$AUTHZ_PID" || tg_fail "the endpoint ignored SIGTERM"
n0=$(uplines)
out=$(ng alice req /echo)
[[ $(jq -r .status <<<"$out") == 500 ]] || tg_fail "the endpoint stopped: want nginx's 500, got: $out"
[[ $(uplines) == "$n0" ]] || tg_fail "the endpoint stopped, yet a request reached the upstream"
echo "ok: without the endpoint nginx answers 500 and forwards nothing"
kill -TERM "$NGINX_PID"
wait "$NGINX_PID" 2>/dev/null || true
"$TG" audit verify "$AUTHZ_AUDIT" >verify.out 2>&1 || tg_fail "audit verify (endpoint): $(cat verify.out)"
echo "---- outcomes, case by case"
gate_cases_report
